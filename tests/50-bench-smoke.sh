#!/usr/bin/env bash
# The bench cannot rot: a quick run of bench/run.sh (tiny repeat, one set
# size, one run each) must write every expected row, each numeric, or
# "missing" only where this machine lacks the subject (systemd, nft).
# The numbers themselves are never checked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_root
need_cgroup2
need_bpffs
need_cmd bpftool python3 iperf3 ss

make_tmpdir W
# what may be missing: only subjects this machine cannot provide
may_miss_sd=
(need_sysd) >/dev/null 2>&1 || may_miss_sd=1
may_miss_nft=
command -v nft >/dev/null || may_miss_nft=1

expect_ok "bench runs (quick)" env BENCH_QUICK=1 BENCH_PLOTS=1 BENCH_OUT="$W/out" \
	bash "$TOP/bench/run.sh"
expect_ok "results.csv written" test -s "$W/out/results.csv"
expect_ok "results.md written" test -s "$W/out/results.md"
grep -q "^- kernel: $(uname -r)\$" "$W/out/results.md" || fail "results.md does not name the kernel"
ok "results.md names the kernel"

# every row the quick run must produce: section|subject|variant|metric|unit|allowed-missing
{
	for p in ipv4-tcp ipv6-tcp-ext ipv4-udp ipv4-icmp; do
		for sv in "empty|-" "bpf-program-only|-" "port-firewall|ref1" "port-firewall|ref2" \
			"cgfilter|ref1" "cgfilter|ref2" "cgfilter named CIDR set|1" \
			"cgfilter literal CIDR set|1" "cgfilter port set|1"; do
			echo "pktcost|$sv|$p|ns|"
		done
		echo "pktcost|systemd IPAddressAllow|1|$p|ns|$may_miss_sd"
		# the goals, as ratios within one pktcost run
		echo "ratio|cgfilter / port-firewall|ref1|$p|x|"
		echo "ratio|cgfilter / port-firewall|ref2|$p|x|"
		if [ -z "$may_miss_sd" ]; then
			echo "ratio|cgfilter named CIDR set / systemd IPAddressAllow|1|$p|x|"
			echo "ratio|cgfilter literal CIDR set / systemd IPAddressAllow|1|$p|x|"
		fi
	done
	for m in prog maps total; do
		for sv in "empty|-" "bpf-program-only|-" "port-firewall|ref1" "port-firewall|ref2" \
			"cgfilter|ref1" "cgfilter|ref2" "cgfilter named CIDR set|1" \
			"cgfilter literal CIDR set|1" "cgfilter port set|1"; do
			echo "memlock|$sv|$m|bytes|"
		done
		echo "memlock|systemd IPAddressAllow|1|$m|bytes|$may_miss_sd"
	done
	for sv in "cgfilter named CIDR set|1" "cgfilter literal CIDR set|1"; do
		echo "memlock|$sv|bytes a prefix|bytes|"
	done
	echo "memlock|systemd IPAddressAllow|1|bytes a prefix|bytes|$may_miss_sd"
	for d in egress ingress; do
		for mu in "gbit|Gbit/s" "ratio|x"; do
			for c in none empty port-firewall cgfilter; do echo "throughput|$c|$d|$mu|"; done
			echo "throughput|systemd|$d|$mu|$may_miss_sd"
			echo "throughput|nftables|$d|$mu|$may_miss_nft"
		done
	done
	echo "change|port-firewall|-|compile (make)|ms|"
	echo "change|port-firewall|-|load (make load; object up to date)|ms|"
	echo "change|port-firewall|-|restart (systemctl restart)|ms|$may_miss_sd"
	echo "change|port-firewall|-|total|ms|"
	echo "change|cgfilter|-|total (cgfilter set; process start included)|ms|"
	echo "change|cgfilter|-|in force (cgfilter -v set: open; compile; switch)|ms|"
	echo "load|port-firewall|-|make load (check; compile; load)|ms|"
	echo "load|cgfilter|-|cgfilter load|ms|"
} >"$W/expected"

python3 - "$W/out/results.csv" "$W/expected" <<'PY' || fail "results.csv lacks rows or has bad values (above)"
import csv, re, sys
rows = {}
for r in csv.DictReader(open(sys.argv[1])):
    rows[(r["section"], r["subject"], r["variant"], r["metric"])] = r
bad = 0
for line in open(sys.argv[2]):
    sec, subj, var, metric, unit, may_miss = line.rstrip("\n").split("|")
    r = rows.get((sec, subj, var, metric))
    what = f"{sec} / {subj} / {var} / {metric}"
    if r is None:
        print(f"  no row: {what}", file=sys.stderr); bad += 1; continue
    if r["unit"] != unit:
        print(f"  {what}: unit {r['unit']}, not {unit}", file=sys.stderr); bad += 1
    vals = [r["median"], r["min"], r["max"]]
    if vals == ["missing"] * 3:
        if not may_miss:
            print(f"  {what}: missing ({r['note']}), but this machine has its subject", file=sys.stderr); bad += 1
        continue
    if not all(re.fullmatch(r"[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?", v) for v in vals) or int(r["runs"]) < 1:
        print(f"  {what}: not numeric: {vals} runs {r['runs']}", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
PY
ok "every expected row is present and numeric (or missing where allowed)"
for f in nspkt.png throughput.png; do
	if command -v gnuplot >/dev/null; then
		expect_ok "$f drawn" test -s "$W/out/$f"
	fi
done
