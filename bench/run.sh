#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# What each filter costs, in one run (`make bench`): ns per packet through
# BPF_PROG_TEST_RUN, loopback TCP throughput, time to change and to load a
# filter, and memlock; written to $BENCH_OUT (bench/results): results.md,
# results.csv, nspkt.png and throughput.png.  Every figure is the median of
# BENCH_RUNS runs with min and max; a subject this machine lacks (systemd,
# nft, iperf3) is reported "missing" with the reason.  Needs root.
#
#   BENCH_QUICK=1     smoke settings: 1 run, small repeat, one set size
#   BENCH_RUNS=N      runs per figure (default 5; 1 when quick)
#   BENCH_REPEAT=N    BPF_PROG_TEST_RUN repeat (default 1000000; 1000 when quick)
#   BENCH_SECS=N      iperf3 seconds per run (default 2; 1 when quick)
#   BENCH_PLOTS=0     no PNG (default: plots when gnuplot is installed)
#   BENCH_OUT=DIR     where the results go (default bench/results)
# shellcheck disable=SC2034 # read by tests/lib.sh
T_NO_CHECKS_OK=1
. "$(dirname "$0")/../tests/lib.sh"

BENCH=$TOP/bench
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] || [ "$QUICK" = 1 ] || fail "BENCH_QUICK must be 0 or 1, not '$QUICK'"
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1} REPEAT=${BENCH_REPEAT:-1000} SECS=${BENCH_SECS:-1}
	CIDR_SIZES=(1) PORT_SIZES=(1)
else
	RUNS=${BENCH_RUNS:-5} REPEAT=${BENCH_REPEAT:-1000000} SECS=${BENCH_SECS:-2}
	CIDR_SIZES=(1 10 100 1000 10000 100000) PORT_SIZES=(1 100 10000)
fi
OUT=${BENCH_OUT:-$BENCH/results}
PLOTS=${BENCH_PLOTS:-1}
# the two reference examples of the README, as in the tests
REF1='icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)'
REF2='!udp || dst_port == 53'
PORT=$((23000 + $$ % 1000))

need_root
need_cgroup2
need_bpffs
need_cmd bpftool python3 make
CGFILTER=$BUILD/cgfilter/cgfilter
DROP_OBJ=$BUILD/bpf-program-only/cgroup_sock_drop.bpf.o
EXPR_TOOL=$BUILD/port-firewall/cgfilter-expr
for f in "$CGFILTER" "$DROP_OBJ" "$EXPR_TOOL"; do
	[ -e "$f" ] || fail "$f is missing: run make at the top first"
done
make --no-print-directory -s -C "$BENCH" O="$BUILD/bench" || fail "cannot build the bench tools"
PKTCOST=$BUILD/bench/pktcost

make_tmpdir WORK
PINS=/sys/fs/bpf/$T_ID-bench
mkdir "$PINS"
at_exit rm -rf "$PINS"
BCG=$CG2/$T_ID-bench
make_cgroup "$BCG"
mkdir "$BCG/cli" "$BCG/srv"
mkdir -p "$OUT"
CSV=$WORK/results.csv
echo "section,subject,variant,metric,unit,median,min,max,runs,note" >"$CSV"
python3 "$BENCH/gen.py" packets >"$WORK/packets.txt"
LABELS=$(awk '{ print $1 }' "$WORK/packets.txt")

log() { echo "bench: $*" >&2; }

# rec SECTION SUBJECT VARIANT METRIC UNIT MEDIAN MIN MAX RUNS [NOTE]
rec() {
	local note=${10:-}
	echo "$1,$2,$3,$4,$5,$6,$7,$8,$9,${note//,/;}" >>"$CSV"
}
# missing SECTION SUBJECT VARIANT METRIC UNIT WHY
missing() { rec "$1" "$2" "$3" "$4" "$5" missing missing missing 0 "$6"; }

# stats V...: "MEDIAN MIN MAX"
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}
# rec_runs SECTION SUBJECT VARIANT METRIC UNIT V...: a figure from its runs
rec_runs() {
	local s
	s=$(stats "${@:6}")
	# shellcheck disable=SC2086 # three numbers
	rec "$1" "$2" "$3" "$4" "$5" $s $(($# - 5))
}

now() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }

# ---- 1 and 4: ns per packet and memlock ----------------------------------------
# pkt "SUBJECT|VARIANT|--pin PATH" ...: the programs measured in one pktcost
# run, taking turns run by run (so that ratios between them hold on a busy
# machine); a row per program and packet
pkt() {
	local args=() spec label med min max verdict prog
	declare -A who=()
	for spec in "$@"; do
		IFS='|' read -r subj var opt <<<"$spec"
		read -r o v <<<"$opt"
		args+=("$o" "$v")
		[ "$o" = --id ] && who["id:$v"]="$subj|$var" || who[$v]="$subj|$var"
	done
	"$PKTCOST" -p "$WORK/packets.txt" -r "$REPEAT" -n "$RUNS" "${args[@]}" >"$WORK/pkt.out" ||
		fail "pktcost failed on ${args[*]}"
	while IFS=$'\t' read -r prog label med min max verdict; do
		IFS='|' read -r subj var <<<"${who[$prog]}"
		rec pktcost "$subj" "$var" "$label" ns "$med" "$min" "$max" "$RUNS" "verdict $verdict"
	done <"$WORK/pkt.out"
}
# ratio SUBJECT VARIANT OVER_SUBJECT OVER_VARIANT: a row per packet, the
# median time of one over the other's (measured in one pkt run)
ratio() {
	python3 - "$CSV" "$@" <<-'EOF' >>"$CSV" || fail "cannot compute $1 $2 / $3 $4"
		import csv, sys
		path, s, v, os_, ov = sys.argv[1:]
		rows = {(r["subject"], r["variant"], r["metric"]): r for r in csv.DictReader(open(path))
		        if r["section"] == "pktcost"}
		for (rs, rv, m), r in list(rows.items()):
		    if (rs, rv) != (s, v):
		        continue
		    o = rows.get((os_, ov, m))
		    if not o or "missing" in (r["median"], o["median"]):
		        print("ratio,%s / %s,%s,%s,x,missing,missing,missing,0,%s" % (s, os_, v, m, "no figure"))
		        continue
		    q = float(r["median"]) / float(o["median"])
		    print("ratio,%s / %s,%s,%s,x,%.3f,%.3f,%.3f,1," % (s, os_, v, m, q, q, q))
	EOF
}
# mem SUBJECT VARIANT (pinned PATH | id ID) [NOTE]: memlock of the program and its maps
mem() {
	local r p m n
	r=$(python3 - "$3" "$4" <<-'EOF'
		import json, subprocess, sys
		show = lambda *a: json.loads(subprocess.check_output(["bpftool", *a, "-j"]))
		prog = show("prog", "show", *sys.argv[1:])
		ids = prog.get("map_ids", [])
		maps = sum(show("map", "show", "id", str(i))["bytes_memlock"] for i in ids)
		print(prog["bytes_memlock"], maps, len(ids))
	EOF
	) || fail "cannot read the memlock of $1 $2"
	read -r p m n <<<"$r"
	rec memlock "$1" "$2" prog bytes "$p" "$p" "$p" 1
	rec memlock "$1" "$2" maps bytes "$m" "$m" "$m" 1 "$n maps${5:+; $5}"
	rec memlock "$1" "$2" total bytes $((p + m)) $((p + m)) $((p + m)) 1
}
# cgf_mem SUBJECT VARIANT PIN [NOTE]: memlock of a whole cgfilter engine: the
# entry program, the programs in its slots (filters, drop program) and every
# map they use, with the contents of its named sets; the maps' bytes are
# left in CGF_MAPS_BYTES (a set's cost: what they grow by, its text included)
cgf_mem() {
	local r p m n sets
	r=$(python3 - "$3" <<-'EOF'
		import json, subprocess, sys
		pin = sys.argv[1]
		show = lambda *a: json.loads(subprocess.check_output(["bpftool", *a, "-j"]))
		entry = show("prog", "show", "pinned", pin)
		progs, maps = {entry["id"]: entry}, {}
		for m in ("slots", "drops"):
		    for e in show("map", "dump", "pinned", pin + "_maps/" + m):
		        v = e.get("value")
		        pid = v if isinstance(v, int) else int.from_bytes(bytes(int(x, 16) for x in v), "little")
		        progs.setdefault(pid, show("prog", "show", "id", str(pid)))
		todo = [i for p in progs.values() for i in p.get("map_ids", [])]
		while todo:
		    i = todo.pop()
		    if i in maps:
		        continue
		    maps[i] = show("map", "show", "id", str(i))
		    if maps[i]["type"] == "array_of_maps":
		        for e in show("map", "dump", "id", str(i)):
		            v = e.get("value")
		            todo.append(v if isinstance(v, int) else int.from_bytes(bytes(int(x, 16) for x in v), "little"))
		print(sum(p["bytes_memlock"] for p in progs.values()), sum(m["bytes_memlock"] for m in maps.values()),
		      len(maps))
	EOF
	) || fail "cannot read the memlock of $1 $2"
	read -r p m n <<<"$r"
	rec memlock "$1" "$2" prog bytes "$p" "$p" "$p" 1 "entry, drop and filter programs"
	rec memlock "$1" "$2" maps bytes "$m" "$m" "$m" 1 "$n maps${4:+; $4}"
	rec memlock "$1" "$2" total bytes $((p + m)) $((p + m)) $((p + m)) 1
	CGF_MAPS_BYTES=$m
}
# pkt_missing SUBJECT VARIANT WHY
pkt_missing() {
	local l
	for l in $LABELS; do missing pktcost "$1" "$2" "$l" ns "$3"; done
	for l in prog maps total; do missing memlock "$1" "$2" "$l" bytes "$3"; done
}

cgf_unload() { "$CGFILTER" unload "$1" --detach; }
# cgf_load PIN EXPR: a cgfilter filter, unloaded at exit
cgf_load() { # PIN FILTER [LOAD OPTIONS...]
	at_exit cgf_unload "$1"
	"$CGFILTER" load "${@:3}" "$1" "$2" >/dev/null || fail "cgfilter load $1 failed"
}
# pf_load NAME EXPR: port-firewall compiled and pinned at $PINS/NAME
pf_load() {
	make --no-print-directory -s -C "$TOP/port-firewall" O="$WORK/$1" EXPR_TOOL="$EXPR_TOOL" \
		FILTER="$2" PIN="$PINS/$1" load >/dev/null || fail "port-firewall make load failed for '$2'"
}

log "per-packet cost: repeat $REPEAT, $RUNS runs"
bpftool prog load "$BUILD/bench/empty.bpf.o" "$PINS/empty" type cgroup/skb || fail "cannot load the empty program"
bpftool prog load "$DROP_OBJ" "$PINS/dropall" type cgroup/skb || fail "cannot load $DROP_OBJ"
pf_load pf-ref1 "$REF1"
pf_load pf-ref2 "$REF2"
cgf_load "$PINS/cgf-ref1" "$REF1"
cgf_load "$PINS/cgf-ref2" "$REF2"
pkt "empty|-|--pin $PINS/empty" "bpf-program-only|-|--pin $PINS/dropall" \
	"port-firewall|ref1|--pin $PINS/pf-ref1" "cgfilter|ref1|--pin $PINS/cgf-ref1" \
	"port-firewall|ref2|--pin $PINS/pf-ref2" "cgfilter|ref2|--pin $PINS/cgf-ref2"
ratio cgfilter ref1 port-firewall ref1
ratio cgfilter ref2 port-firewall ref2
mem empty - pinned "$PINS/empty"
mem bpf-program-only - pinned "$PINS/dropall"
for ref in ref1 ref2; do
	mem port-firewall "$ref" pinned "$PINS/pf-$ref"
	cgf_mem cgfilter "$ref" "$PINS/cgf-$ref" "the whole engine: entry program maps and the filter's"
	# what a set adds is measured against an engine with a filter and no set
	[ "$ref" != ref1 ] || CGF_BASE_MAPS=$CGF_MAPS_BYTES
done

for n in "${PORT_SIZES[@]}"; do
	python3 "$BENCH/gen.py" ports "$n" >"$WORK/ports.txt"
	cgf_load "$PINS/cgf-ports" icmp
	"$CGFILTER" set-add "$PINS/cgf-ports" @ports -f "$WORK/ports.txt" >/dev/null || fail "cgfilter set-add of $n ports failed"
	"$CGFILTER" set "$PINS/cgf-ports" 'dst_port in @ports' || fail "cgfilter set 'dst_port in @ports' failed"
	pkt "cgfilter port set|$n|--pin $PINS/cgf-ports"
	cgf_mem "cgfilter port set" "$n" "$PINS/cgf-ports"
	cgf_unload "$PINS/cgf-ports"
done

# ---- the private systemd (tests/sysd.sh), held by bench/sysd-holder.sh ----------
# It runs in its own process so that a systemd that cannot boot here makes
# its rows "missing" instead of ending the bench.
mkdir "$WORK/units" "$WORK/sd"
for n in "${CIDR_SIZES[@]}"; do
	python3 "$BENCH/gen.py" allow-unit "$n" >"$WORK/units/bench-allow-$n.service"
done
python3 "$BENCH/gen.py" allow-unit local >"$WORK/units/bench-allow-local.service"
python3 "$BENCH/gen.py" filter-unit /sys/fs/bpf/pfbench >"$WORK/units/bench-pf.service"
SD_OK='' SD_WHY='' SD_HOLDER='' SD_PID='' SD_CG=''
sd_down() {
	[ -n "$SD_HOLDER" ] || return 0
	touch "$WORK/sd/stop"
	wait "$SD_HOLDER"
	SD_HOLDER=
}
sdx() { nsenter -t "$SD_PID" -m -p -u --wd=/ -- "$@"; }
# sd_prog UNIT ingress|egress: the id of systemd's IP firewall program on UNIT
sd_prog() {
	bpftool cgroup show "$SD_CG/system.slice/$1" -j | python3 -c '
import json, sys
ids = [p["id"] for p in json.load(sys.stdin)
       if p["attach_type"] == "cgroup_inet_" + sys.argv[1] and p["name"] == "sd_fw_" + sys.argv[1]]
print(ids[0] if ids else "")' "$2"
}
log "booting a private systemd"
at_exit sd_down
SD_TIMEOUT=180 bash "$BENCH/sysd-holder.sh" "$WORK/units" "$WORK/sd" $$ >"$WORK/sd/log" 2>&1 &
SD_HOLDER=$!
while [ ! -e "$WORK/sd/ready" ] && kill -0 "$SD_HOLDER" 2>/dev/null; do sleep 0.1; done
if [ -e "$WORK/sd/ready" ]; then
	. "$WORK/sd/env"
	SD_OK=1
else
	wait "$SD_HOLDER"
	SD_HOLDER=
	SD_WHY="no private systemd: $(grep -E 'SKIP|FAIL' "$WORK/sd/log" | tail -n1)"
	log "$SD_WHY"
fi

# CIDR sets of N IPv4 and N IPv6 prefixes: a cgfilter named set, a cgfilter
# literal set, and systemd's IPAddressAllow= program, in one pktcost run
SD_TPUT_IN='' SD_TPUT_OUT=''
for n in "${CIDR_SIZES[@]}"; do
	python3 "$BENCH/gen.py" cidr "$n" >"$WORK/cidr.txt"
	cgf_load "$PINS/cgf-named" icmp
	"$CGFILTER" set-add "$PINS/cgf-named" @big -f "$WORK/cidr.txt" >/dev/null ||
		fail "cgfilter set-add of $n + $n prefixes failed"
	"$CGFILTER" set "$PINS/cgf-named" 'src_ip in @big' || fail "cgfilter set 'src_ip in @big' failed"
	{ printf 'src_ip in { '; paste -sd, "$WORK/cidr.txt"; printf ' }\n'; } >"$WORK/literal.filter"
	cgf_load "$PINS/cgf-literal" icmp
	"$CGFILTER" set "$PINS/cgf-literal" -f "$WORK/literal.filter" ||
		fail "cgfilter set of a literal set of $n + $n prefixes failed"
	progs=("cgfilter named CIDR set|$n|--pin $PINS/cgf-named" "cgfilter literal CIDR set|$n|--pin $PINS/cgf-literal")
	subj="systemd IPAddressAllow" sd_id='' why=''
	if [ -z "$SD_OK" ]; then
		why=$SD_WHY
	else
		t0=$(now)
		if ! sdx systemctl start "bench-allow-$n.service" >"$WORK/sd/start.log" 2>&1; then
			why="systemd did not start a unit with $n+$n prefixes: $(head -n1 "$WORK/sd/start.log")"
		else
			log "systemd started the unit with $n+$n prefixes in $(ms_since "$t0") ms"
			sd_id=$(sd_prog "bench-allow-$n.service" ingress)
			[ -n "$sd_id" ] || why="systemd attached no sd_fw_ingress program"
		fi
	fi
	[ -z "$sd_id" ] || progs+=("$subj|$n|--id $sd_id")
	pkt "${progs[@]}"
	if [ -n "$sd_id" ]; then
		ratio "cgfilter named CIDR set" "$n" "$subj" "$n"
		ratio "cgfilter literal CIDR set" "$n" "$subj" "$n"
		mem "$subj" "$n" id "$sd_id" "$n IPv4 + $n IPv6 prefixes; ingress program (egress shares the maps)"
		per=$(awk -F, -v s="$subj" -v n="$n" '$1 == "memlock" && $2 == s && $3 == n && $4 == "maps" {
			printf "%.1f", $6 / (2 * n) }' "$CSV")
		rec memlock "$subj" "$n" "bytes a prefix" bytes "$per" "$per" "$per" 1 "its maps / $((2 * n))"
		sdx systemctl stop "bench-allow-$n.service"
	else
		pkt_missing "$subj" "$n" "$why"
	fi
	for kind in named literal; do
		cgf_mem "cgfilter $kind CIDR set" "$n" "$PINS/cgf-$kind" "$n IPv4 + $n IPv6 prefixes"
		per=$(awk -v m="$CGF_MAPS_BYTES" -v b="$CGF_BASE_MAPS" -v n="$n" 'BEGIN { printf "%.1f", (m - b) / (2 * n) }')
		rec memlock "cgfilter $kind CIDR set" "$n" "bytes a prefix" bytes "$per" "$per" "$per" 1 \
			"(its maps - the maps of cgfilter ref1) / $((2 * n))"
		cgf_unload "$PINS/cgf-$kind"
	done
done
if [ -n "$SD_OK" ] && sdx systemctl start bench-allow-local.service; then
	SD_TPUT_IN=$(sd_prog bench-allow-local.service ingress)
	SD_TPUT_OUT=$(sd_prog bench-allow-local.service egress)
fi

# ---- 2: loopback TCP throughput ----------------------------------------------------
# Client in $BCG/cli, server in $BCG/srv: egress filters the client's
# cgroup (it sends the data), ingress the server's.
NFT_TABLE=${T_ID//-/_}_bench
NFT_REL='' NFT_LEVEL=''
nft_down() { nft delete table inet "$NFT_TABLE"; }
# nft resolves "PATH" under /sys/fs/cgroup while the level counts from the
# cgroup2 root: both are worked out here, never assumed.
case $CG2 in
/sys/fs/cgroup) NFT_REL=${BCG#/sys/fs/cgroup/} ;;
/sys/fs/cgroup/*) NFT_REL=${BCG#/sys/fs/cgroup/} ;;
esac
NFT_LEVEL=$(($(tr -cd / <<<"${BCG#"$CG2"}" | wc -c) + 1))

# attach CFG DIR / detach CFG DIR
attach() {
	local cg=$BCG/cli hook=egress chain=output where=cli
	[ "$2" = egress ] || { cg=$BCG/srv hook=ingress chain=input where=srv; }
	case $1 in
	none) ;;
	empty) bpftool cgroup attach "$cg" "$hook" pinned "$PINS/empty" ;;
	port-firewall) bpftool cgroup attach "$cg" "$hook" pinned "$PINS/pf-ref2" ;;
	cgfilter) bpftool cgroup attach "$cg" "$hook" pinned "$PINS/cgf-ref2" ;;
	systemd) bpftool cgroup attach "$cg" "$hook" id "$([ "$2" = egress ] && echo "$SD_TPUT_OUT" || echo "$SD_TPUT_IN")" ;;
	nftables)
		nft -f - <<-EOF
			table inet $NFT_TABLE {
				chain c {
					type filter hook $chain priority 0; policy accept;
					socket cgroupv2 level $NFT_LEVEL "$NFT_REL/$where" meta l4proto udp udp dport != 53 drop
				}
			}
		EOF
		;;
	esac
}
detach() {
	local cg=$BCG/cli hook=egress
	[ "$2" = egress ] || { cg=$BCG/srv hook=ingress; }
	case $1 in
	none) ;;
	nftables) nft_down ;;
	*) bpftool cgroup show "$cg" -j | python3 -c 'import json,sys; [print(p["id"]) for p in json.load(sys.stdin)]' |
		while read -r id; do bpftool cgroup detach "$cg" "$hook" id "$id"; done ;;
	esac
}
# iperf_run: one client run from $BCG/cli, Gbit/s on stdout
iperf_run() {
	(echo "$BASHPID" >"$BCG/cli/cgroup.procs" && exec iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECS" -J) >"$WORK/iperf.json" ||
		fail "iperf3 client failed: $(head -c 300 "$WORK/iperf.json")"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9)' "$WORK/iperf.json"
}
CFGS=(none empty port-firewall cgfilter systemd nftables)
declare -A WHY=() GB=()
command -v nft >/dev/null || WHY[nftables]="nft is not installed (apt-get install nftables)"
[ -n "${WHY[nftables]:-}" ] || [ -n "$NFT_REL" ] ||
	WHY[nftables]="cgroup2 ($CG2) is not under /sys/fs/cgroup, where nft looks up cgroup paths"
[ -n "$SD_TPUT_IN" ] && [ -n "$SD_TPUT_OUT" ] || WHY[systemd]=${SD_WHY:-"systemd attached no IP firewall program"}
if ! command -v iperf3 >/dev/null; then
	for c in "${CFGS[@]}"; do WHY[$c]="iperf3 is not installed (apt-get install iperf3)"; done
else
	log "throughput: iperf3 -t $SECS, $RUNS runs, port $PORT"
	(echo "$BASHPID" >"$BCG/srv/cgroup.procs" && exec iperf3 -s -p "$PORT" >"$WORK/iperf-server.log" 2>&1) &
	SRV=$!
	at_exit kill "$SRV"
	for _ in $(seq 100); do
		ss -Hltn "sport = :$PORT" | has . && break
		sleep 0.05
	done
	[ -n "${WHY[nftables]:-}" ] || at_exit nft_down
	# runs outermost, so that drift hits every configuration alike
	for ((r = 0; r < RUNS; r++)); do
		for dir in egress ingress; do
			for c in "${CFGS[@]}"; do
				[ -z "${WHY[$c]:-}" ] || continue
				attach "$c" "$dir" || fail "cannot attach $c ($dir)"
				GB[$c,$dir]+=" $(iperf_run)"
				detach "$c" "$dir" || fail "cannot detach $c ($dir)"
			done
		done
	done
	kill "$SRV"
	wait "$SRV" 2>/dev/null || true
fi
for dir in egress ingress; do
	base=''
	# shellcheck disable=SC2086 # one number a run
	[ -z "${WHY[none]:-}" ] && base=$(stats ${GB[none,$dir]})
	for c in "${CFGS[@]}"; do
		if [ -n "${WHY[$c]:-}" ]; then
			missing throughput "$c" "$dir" gbit Gbit/s "${WHY[$c]}"
			missing throughput "$c" "$dir" ratio x "${WHY[$c]}"
			continue
		fi
		# shellcheck disable=SC2086 # one number a run
		rec_runs throughput "$c" "$dir" gbit Gbit/s ${GB[$c,$dir]}
		read -r bmed _ <<<"$base"
		ratios=()
		for v in ${GB[$c,$dir]}; do ratios+=("$(awk -v a="$v" -v b="$bmed" 'BEGIN { printf "%.4f", a / b }')"); done
		rec_runs throughput "$c" "$dir" ratio x "${ratios[@]}"
	done
done

# ---- 3: time to change a running service's filter, and to load one ------------------
log "time to change and to load a filter: $RUNS runs"
FILTERS=("$REF1" "$REF2")
# port-firewall: compile, load, restart of a unit using the pin, inside the
# private systemd (its bpffs is private); without it, compile and load on
# the host, and the restart is missing.
comp=() load=() rest=() total=() pin=$PINS/pf-change pfmake=(make)
pftop=$TOP pfbuild=$BUILD
if [ -n "$SD_OK" ]; then
	# inside, the trees are bound at /run (sysd-holder.sh)
	pin=/sys/fs/bpf/pfbench pfmake=(sdx make) pftop=/run/cgf-top pfbuild=/run/cgf-build
fi
pf_change_make() {
	"${pfmake[@]}" --no-print-directory -s -C "$pftop/port-firewall" O="$pfbuild/bench/pf-change" \
		EXPR_TOOL="$pfbuild/tools/cgfilter-expr" FILTER="$1" PIN="$pin" "${@:2}" >/dev/null
}
pf_change_make "$REF2" load || fail "port-firewall make load failed"
[ -n "$SD_OK" ] || at_exit rm -f "$pin"
if [ -n "$SD_OK" ]; then sdx systemctl start bench-pf.service || fail "bench-pf.service did not start"; fi
for ((r = 0; r < RUNS; r++)); do
	f=${FILTERS[r % 2]}
	t0=$(now)
	pf_change_make "$f" || fail "port-firewall make failed"
	comp+=("$(ms_since "$t0")")
	t1=$(now)
	pf_change_make "$f" load || fail "port-firewall make load failed"
	load+=("$(ms_since "$t1")")
	if [ -n "$SD_OK" ]; then
		t1=$(now)
		sdx systemctl restart bench-pf.service || fail "cannot restart bench-pf.service"
		rest+=("$(ms_since "$t1")")
	fi
	total+=("$(ms_since "$t0")")
done
rec_runs change port-firewall - "compile (make)" ms "${comp[@]}"
rec_runs change port-firewall - "load (make load; object up to date)" ms "${load[@]}"
if [ -n "$SD_OK" ]; then
	rec_runs change port-firewall - "restart (systemctl restart)" ms "${rest[@]}"
else
	missing change port-firewall - "restart (systemctl restart)" ms "$SD_WHY"
fi
rec_runs change port-firewall - "total" ms "${total[@]}"
cgf_load "$PINS/cgf-change" "$REF2"
set_t=() apply_t=()
for ((r = 0; r < RUNS; r++)); do
	t0=$(now)
	out=$("$CGFILTER" -v set "$PINS/cgf-change" "${FILTERS[r % 2]}") || fail "cgfilter set failed"
	set_t+=("$(ms_since "$t0")")
	# cgfilter's own clock: from opening the filter to the new one in force
	apply_t+=("$(sed -n 's/.* in force \([0-9.]*\) ms .*/\1/p' <<<"$out")")
done
rec_runs change cgfilter - "total (cgfilter set; process start included)" ms "${set_t[@]}"
rec_runs change cgfilter - "in force (cgfilter -v set: open; compile; switch)" ms "${apply_t[@]}"

pfl=() cgl=()
for ((r = 0; r < RUNS; r++)); do
	rm -rf "$WORK/pf-load"
	t0=$(now)
	pf_load pf-load "${FILTERS[r % 2]}"
	pfl+=("$(ms_since "$t0")")
	rm -f "$PINS/pf-load"
	t0=$(now)
	"$CGFILTER" load "$PINS/cgf-load" "${FILTERS[r % 2]}" >/dev/null || fail "cgfilter load failed"
	cgl+=("$(ms_since "$t0")")
	cgf_unload "$PINS/cgf-load"
done
rec_runs load port-firewall - "make load (check; compile; load)" ms "${pfl[@]}"
rec_runs load cgfilter - "cgfilter load" ms "${cgl[@]}"

# ---- 5: a daemon under cgfilter wrap (alfwrapper's speed test) ----------------------
# The same loopback echo daemon (build/bench/echo-bench) unwrapped, and
# under cgfilter wrap with a filter of 20 rules (classic and eBPF) and with
# a set of 10,000 prefixes: TCP echo MB/s, and as a ratio to unwrapped run
# by run.  The cost of the socket filter per packet: datagrams sent as fast
# as possible to a socket whose filter evaluates every rule and drops (on
# loopback the receiver's filter runs inside the send), against one whose
# filter drops at once, run by run; with 20 rules and with 300.
WRAP=$BUILD/wrap/cgfilter-wrap
ECHO=$BUILD/bench/echo-bench
EP=$((PORT + 500))
rules() { # N MATCH: N-1 port tests and an address test of MATCH
	local i
	for ((i = 1; i < $1; i++)); do printf 'dst_port == %d || ' $((1000 + i)); done
	echo "src_ip == $2"
}
RULES=$(rules 20 127.0.0.0/8)
{ printf '@big = { '; python3 "$BENCH/gen.py" cidr 5000 | paste -sd,; printf ', 127.0.0.0/8 }\nsrc_ip in @big\n'; } \
	>"$WORK/big.filter"
WRAPS=(plain classic-20 ebpf-20 classic-10k ebpf-10k)
SINKS=(floor classic-20 ebpf-20 classic-300 ebpf-300)
declare -A WT=() WF=() WWHY=() FWHY=()
# up CMD...: wait until something answers on $EP (UDP echo, or for a sink:
# the socket is bound)
up() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
echo_answers() { "$ECHO" udp "$EP" 0.01 >/dev/null 2>&1; }
sink_bound() { ss -Hlun "sport = :$EP" 2>/dev/null | has .; }
# wrap_daemon WHICH: becomes that daemon (exec: its pid is the one to kill)
wrap_daemon() {
	local l=(--listen "127.0.0.1:$EP" --listen "127.0.0.1:$EP/udp")
	case $1 in
	plain) exec "$ECHO" serve --port "$EP" ;;
	classic-20) exec "$WRAP" --classic "${l[@]}" "$RULES" -- "$ECHO" serve ;;
	ebpf-20) exec "$WRAP" "${l[@]}" "$RULES" -- "$ECHO" serve ;;
	classic-10k) exec "$WRAP" --classic "${l[@]}" -f "$WORK/big.filter" -- "$ECHO" serve ;;
	ebpf-10k) exec "$WRAP" "${l[@]}" -f "$WORK/big.filter" -- "$ECHO" serve ;;
	esac
}
sink_daemon() {
	local l=(--listen "127.0.0.1:$EP/udp") n=${1#*-} m=()
	[ "${1%-*}" = ebpf ] || m=(--classic)
	[ "$1" = floor ] && exec "$ECHO" sink --port "$EP"
	exec "$WRAP" "${m[@]}" "${l[@]}" "$(rules "$n" 10.0.0.0/8)" -- "$ECHO" sink
}
# start_one START NAME: daemon NAME in the background, its pid in wpid
start_one() {
	"$1" "$2" >"$WORK/wrap.log" 2>&1 &
	wpid=$!
}
stop_one() { kill "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; }
log "cgfilter wrap: echo daemon, $RUNS runs of ${SECS}s"
command -v ss >/dev/null || fail "ss is missing (iproute2)"
# measure START UP WHY OUT NAME CLIENT...: start daemon NAME with START,
# wait until UP answers, add what CLIENT prints to OUT[NAME], stop it; a
# daemon that does not come up gets the reason in WHY[NAME], once
measure() {
	local start=$1 upf=$2 name=$5
	local -n why=$3 out=$4
	shift 5
	[ -z "${why[$name]:-}" ] || return 0
	start_one "$start" "$name"
	if ! up "$upf"; then
		stop_one
		why[$name]="the daemon did not start: $(head -n1 "$WORK/wrap.log" | cut -c1-150)"
		log "$name: ${why[$name]}"
		return 0
	fi
	out[$name]+=" $("$@")" || fail "$* failed under $name"
	stop_one
}
for ((r = 0; r < RUNS; r++)); do
	for w in "${WRAPS[@]}"; do measure wrap_daemon echo_answers WWHY WT "$w" "$ECHO" tcp "$EP" "$SECS"; done
	for w in "${SINKS[@]}"; do measure sink_daemon sink_bound FWHY WF "$w" "$ECHO" flood "$EP" "$SECS"; done
done
for w in "${WRAPS[@]}"; do
	if [ -n "${WWHY[$w]:-}" ]; then
		missing wrap "$w" - "MB/s" MB/s "${WWHY[$w]}"
		missing wrap "$w" - ratio x "${WWHY[$w]}"
		continue
	fi
	# shellcheck disable=SC2086 # lists of numbers
	rec_runs wrap "$w" - "MB/s" MB/s ${WT[$w]}
	read -r -a t <<<"${WT[$w]}"; read -r -a tp <<<"${WT[plain]}"
	q=()
	for ((r = 0; r < ${#t[@]}; r++)); do
		q+=("$(awk -v a="${t[r]}" -v b="${tp[r]}" 'BEGIN { printf "%.3f", a / b }')")
	done
	rec_runs wrap "$w" - ratio x "${q[@]}"
done
for w in "${SINKS[@]}"; do
	if [ -n "${FWHY[$w]:-}" ]; then
		missing wrapcost "$w" - "ns a datagram" ns "${FWHY[$w]}"
		missing wrapcost "$w" - "over the floor" ns "${FWHY[$w]}"
		continue
	fi
	# shellcheck disable=SC2086 # lists of numbers
	rec_runs wrapcost "$w" - "ns a datagram" ns ${WF[$w]}
	read -r -a t <<<"${WF[$w]}"; read -r -a tp <<<"${WF[floor]}"
	q=()
	for ((r = 0; r < ${#t[@]}; r++)); do
		q+=("$(awk -v a="${t[r]}" -v b="${tp[r]}" 'BEGIN { printf "%.1f", a - b }')")
	done
	rec_runs wrapcost "$w" - "over the floor" ns "${q[@]}"
done

# ---- results -------------------------------------------------------------------------
cp "$CSV" "$OUT/results.csv"
python3 "$BENCH/report.py" "$OUT/results.csv" "$OUT/results.md" "$WORK" \
	"$(uname -r)" "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
	"$RUNS" "$REPEAT" "$SECS" "$REF1" "$REF2" || fail "cannot write $OUT/results.md"
if [ "$PLOTS" != 0 ] && command -v gnuplot >/dev/null; then
	gnuplot -e "dir='$WORK'; out='$OUT'" "$BENCH/plots.gp" || fail "gnuplot failed"
fi
log "results in $OUT"
