#!/usr/bin/env bash
# port-firewall in the kernel: a real cgroup v2, real loopback TCP and UDP
# (IPv4 and IPv6) with cgfilter-probe, the program attached with bpftool.
# Egress: a client in the cgroup reaches the allowed port, not the denied
# one.  Ingress: a server in the cgroup is reachable on the allowed port
# only.  Everything is detached and removed at exit, also on failure.
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cgroup2
need_cmd clang bpftool
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || fail "$PROBE is not built (make tools)"

make_tmpdir WORK
SRV=$CG2/$T_ID-srv
CLI=$CG2/$T_ID-cli
PIN=/sys/fs/bpf/$T_ID-pf
make_cgroup "$SRV"
make_cgroup "$CLI"
at_exit rm -f "$PIN" "$PIN-loading"

# four ports of 20000-20999, different for concurrent runs
BASE=$((20000 + ($$ % 240) * 4))
AT=$BASE DT=$((BASE + 1)) AU=$((BASE + 2)) DU=$((BASE + 3))
FILTER="(tcp && dst_port == $AT) || (udp && dst_port == $AU)"

# in_cgroup CG CMD...: run CMD as a process of cgroup CG
in_cgroup() {
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cgroup "$@"
}
start_server() { # PROTO PORT
	in_cgroup "$SRV" "$PROBE" listen "$1" "$2" >"$WORK/srv-$1-$2.log" 2>&1 &
	for _ in $(seq 50); do
		grep -q '^listening' "$WORK/srv-$1-$2.log" && return 0
		sleep 0.1
	done
	cat "$WORK/srv-$1-$2.log" >&2
	fail "the $1 server on port $2 did not start"
}
# reaches PROTO HOST PORT: the client (in $CLI) gets the echo back
reaches() { in_cgroup "$CLI" "$PROBE" send "$1" "$2" "$3" -t "${T:-2000}" >/dev/null 2>&1; }
blocked() { ! T=800 reaches "$@"; }

for p in $AT $DT; do start_server tcp "$p"; done
for p in $AU $DU; do start_server udp "$p"; done
[ "$(cat "$SRV/cgroup.procs" | wc -l)" -ge 4 ] || fail "the servers are not in $SRV"

# without a filter every flow works: a later failure is the filter's doing
for h in 127.0.0.1 ::1; do
	for p in "tcp $AT" "tcp $DT" "udp $AU" "udp $DU"; do
		set -- $p
		expect_ok "no filter: $1 to $h port $2" reaches "$1" "$h" "$2"
	done
done

expect_ok "make load FILTER='$FILTER'" \
	make -s -C "$TOP/port-firewall" O="$WORK/o" FILTER="$FILTER" PIN="$PIN" load
id=$(bpftool -j prog show pinned "$PIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# ---- egress: the client's cgroup ------------------------------------------------
at_exit bpftool cgroup detach "$CLI" egress pinned "$PIN"
expect_ok "attach to $CLI egress" bpftool cgroup attach "$CLI" egress pinned "$PIN" multi
bpftool cgroup show "$CLI" | has -w "$id" || fail "program $id is not attached to $CLI"
for h in 127.0.0.1 ::1; do
	expect_ok "egress: allowed tcp to $h port $AT passes" reaches tcp "$h" "$AT"
	expect_ok "egress: denied tcp to $h port $DT is dropped" blocked tcp "$h" "$DT"
	expect_ok "egress: allowed udp to $h port $AU passes" reaches udp "$h" "$AU"
	expect_ok "egress: denied udp to $h port $DU is dropped" blocked udp "$h" "$DU"
done
expect_ok "detach from $CLI egress" bpftool cgroup detach "$CLI" egress pinned "$PIN"
expect_ok "after detach: tcp to port $DT passes again" reaches tcp 127.0.0.1 "$DT"

# ---- ingress: the server's cgroup -------------------------------------------------
at_exit bpftool cgroup detach "$SRV" ingress pinned "$PIN"
expect_ok "attach to $SRV ingress" bpftool cgroup attach "$SRV" ingress pinned "$PIN" multi
for h in 127.0.0.1 ::1; do
	expect_ok "ingress: tcp port $AT reachable on $h" reaches tcp "$h" "$AT"
	expect_ok "ingress: tcp port $DT not reachable on $h" blocked tcp "$h" "$DT"
	expect_ok "ingress: udp port $AU reachable on $h" reaches udp "$h" "$AU"
	expect_ok "ingress: udp port $DU not reachable on $h" blocked udp "$h" "$DU"
done
expect_ok "detach from $SRV ingress" bpftool cgroup detach "$SRV" ingress pinned "$PIN"
expect_ok "after detach: udp to port $DU reachable again" reaches udp 127.0.0.1 "$DU"
