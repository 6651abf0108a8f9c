#!/usr/bin/env bash
# Crash consistency of set-add and set-del on a shared engine, as test 44
# does for a dedicated one: killed at each of their bpf() calls in turn,
# and with an error injected at each.  CGF_CRASH="shared-set-add
# shared-set-del" picks some; CGF_CRASH_STEP: tests/crash.sh.
. "$(dirname "$0")/lib.sh"
CRASH_ALL="shared-set-add shared-set-del"
. "$(dirname "$0")/crash.sh"

# ---- set-add, set-del on a shared engine: each cgroup's filter built again ----------------------
# Two cgroups, three filters (A both ways, B ingress) that compile @nets in.
# After each kill or error, every filter shows the old state or the new (a
# filter a kill left behind lists the set it keeps: kept_sets), and runs as
# it shows: its own program, run after a dedicated engine's entry (H, the
# filter 1), as judge.py --cgroup does (BPF_PROG_TEST_RUN does not reach
# a shared engine's cgroup storage).
SA=$CG2/$T_ID-sa SB=$CG2/$T_ID-sb H=/sys/fs/bpf/${T_ID}_h
# packets whose verdicts each edit below changes, for each filter
PACKETS+=("ip4 src=192.0.2.1 / udp dport=53" "ip4 src=10.9.1.1 / tcp dport=1"
	"ip4 src=198.51.100.7 / udp dport=53" "ip6 src=2001:db8::5 / udp dport=53")
judge --frames "$TMP/frames" "${PACKETS[@]}" || fail "cannot write the frames"
shared_detach() {
	bpftool cgroup detach "$SA" ingress pinned "$PIN" 2>/dev/null || true
	bpftool cgroup detach "$SA" egress pinned "$PIN" 2>/dev/null || true
	bpftool cgroup detach "$SB" ingress pinned "$PIN" 2>/dev/null || true
}
shared_setup() {
	shared_detach
	clean
	"$CGF" load --shared "$PIN" >/dev/null || fail "cannot load a shared engine"
	bpftool cgroup attach "$SA" ingress pinned "$PIN" multi || fail "cannot attach to $SA"
	bpftool cgroup attach "$SA" egress pinned "$PIN" multi || fail "cannot attach to $SA"
	bpftool cgroup attach "$SB" ingress pinned "$PIN" multi || fail "cannot attach to $SB"
	"$CGF" set-add "$PIN" @nets 198.51.100.0/24 2001:db8::/32 203.0.113.0/24 >/dev/null ||
		fail "cannot make @nets"
	"$CGF" register "$PIN" --cgroup "$SA" 'tcp && dst_port in { 22, 80 } || src_ip in @nets' ||
		fail "cannot register $SA"
	"$CGF" register "$PIN" --cgroup "$SB" '!(src_ip in @nets) && udp' || fail "cannot register $SB"
}
shared_state() { "$PY" "$TOP/tests/verdict/shared_state.py" "$@"; }
shared_check() { # WHAT RC HOW
	shared_state check --old "$TMP/old.json" --new "$TMP/new.json" --cgfilter "$CGF" --pin "$PIN" \
		--harness "$H" --frames "$TMP/frames" --rc "$2" --how "$3" --what "$1" >"$TMP/check" 2>&1 ||
		fail "$(cat "$TMP/check")"
}
# shared_sweep NAME CMD...: remember the states before and after, then sweep
shared_sweep() {
	local name=$1
	shift
	shared_setup
	shared_state remember "$TMP/old.json" --cgfilter "$CGF" --pin "$PIN" "${PACKETS[@]}" >"$TMP/rem" 2>&1 ||
		fail "$name: the state before: $(cat "$TMP/rem")"
	"$@" >/dev/null || fail "$name: cannot $*"
	shared_state remember "$TMP/new.json" --cgfilter "$CGF" --pin "$PIN" "${PACKETS[@]}" >"$TMP/rem" 2>&1 ||
		fail "$name: the state after: $(cat "$TMP/rem")"
	# (else a filter's verdicts could not tell the old state from the new)
	shared_state differ "$TMP/old.json" "$TMP/new.json" >"$TMP/rem" 2>&1 || fail "$name: $(cat "$TMP/rem")"
	sweep "$name" shared_setup shared_check "$@"
}
if want shared-set-add || want shared-set-del; then
	make_cgroup "$SA"
	make_cgroup "$SB"
	at_exit shared_detach
	"$CGF" load "$H" 1 >/dev/null || fail "cannot load $H"
	at_exit "$CGF" unload "$H"
	! want shared-set-add ||
		shared_sweep shared-set-add "$CGF" set-add "$PIN" @nets 192.0.2.1 10.9.0.0/16 2001:db8:1::/48
	! want shared-set-del ||
		shared_sweep shared-set-del "$CGF" set-del "$PIN" @nets 198.51.100.0/24 2001:db8::/32
	shared_detach
fi

# ---- a register killed between its two directions' switches: each filter built again --------------
# A registered while attached for egress only (slot s1), then attached for
# ingress too (no filter there): the next register needs a new slot,
# switched in for ingress, then egress.  Killed in between, A's ingress
# has T2 (which does not use @nets) and its egress T1 (which does).  A
# set-add of @nets must build the egress filter again too (it once looked
# at ingress only: egress kept the old @nets while show said the next
# command would build it), and show then lists no set kept.
T1='tcp && dst_port in { 22, 80 } || src_ip in @nets' T2='udp && dst_port == 53'
dir_setup() {
	shared_detach
	clean
	"$CGF" load --shared "$PIN" >/dev/null || fail "cannot load a shared engine"
	bpftool cgroup attach "$SA" egress pinned "$PIN" multi || fail "cannot attach to $SA"
	"$CGF" set-add "$PIN" @nets 198.51.100.0/24 >/dev/null || fail "cannot make @nets"
	"$CGF" register "$PIN" --cgroup "$SA" "$T1" || fail "cannot register $SA"
	bpftool cgroup attach "$SA" ingress pinned "$PIN" multi || fail "cannot attach to $SA"
}
# the filter texts of A, ingress then egress, and whether any filter keeps a set
a_filters() {
	"$CGF" show --json "$PIN" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
f = {x["direction"]: x for x in j["filters"] if x["cgroup"] == sys.argv[1]}
print("%s | %s | kept %s" % (f["ingress"]["filter"], f["egress"]["filter"],
      sorted(n for x in j["filters"] for n in x["kept_sets"])))' "${SA#"$CG2"}"
}
if want shared-set-add; then
	dir_setup
	strace -f -qq -e trace=bpf -o "$TMP/trace" "$CGF" register "$PIN" --cgroup "$SA" "$T2" ||
		fail "cannot register $T2"
	n=$(grep -o 'bpf(BPF_[A-Z_]*' "$TMP/trace" | grep -n 'BPF_MAP_UPDATE_ELEM$' | tail -n1 | cut -d: -f1)
	dir_setup
	# (in a subshell that reports "Killed" to /dev/null)
	(
		strace -f -qq -o /dev/null -e trace=bpf -e inject=bpf:signal=SIGKILL:when="$n" \
			"$CGF" register "$PIN" --cgroup "$SA" "$T2" >/dev/null 2>&1
		exit $?
	) 2>/dev/null || true
	expect_eq "register killed between its switches: A's ingress has the new filter, egress the old" \
		"$(a_filters)" "$T2 | $T1 | kept []"
	"$CGF" set-add "$PIN" @nets 192.0.2.1 >/dev/null || fail "cannot set-add"
	got=$(a_filters)
	case $got in
	"$T1 | $T1 | kept []" | "$T2 | $T2 | kept []") ok "a set-add builds A's filters again, one for both directions, keeping no set: $got" ;;
	*) fail "after set-add, A's filters are: $got" ;;
	esac
	for d in ingress egress; do
		judge --cgroup "${SA#"$CG2"}" --direction $d "${PACKETS[@]}" >"$TMP/judge" 2>&1 ||
			fail "A's $d filter: $(cat "$TMP/judge")"
	done
	ok "... and each does what show says"
	shared_detach
fi
clean
