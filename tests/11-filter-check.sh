#!/usr/bin/env bash
# port-firewall's make targets and FILTER checking: usage without FILTER,
# refused filters (shell and make metacharacters, unknown names, octal,
# empty parentheses) named with their column and never reaching a shell or
# the pin, load / reload / unload with PIN=, and the default PIN.
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cmd clang bpftool python3

make_tmpdir WORK
O=$WORK/o
PIN=/sys/fs/bpf/$T_ID-pf
at_exit rm -f "$PIN" "$PIN-loading"
PF=(make -s --no-print-directory -C "$TOP/port-firewall" O="$O")

# prog_id PIN: the id of the program pinned at PIN; fails if it is not a
# cgroup_skb program
prog_id() {
	bpftool -j prog show pinned "$1" 2>/dev/null | python3 -c '
import json, sys
p = json.load(sys.stdin)
sys.exit(1) if p.get("type") != "cgroup_skb" else print(p["id"])'
}
our_pins() { find /sys/fs/bpf -maxdepth 1 -name "$T_ID*" | sort; }

# ---- no FILTER: usage with an example, exit 2 -------------------------------
set +e
"${PF[@]}" >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "make without FILTER exited $rc, not 2"
grep -q '^Usage: make -C port-firewall FILTER=' "$WORK/out" &&
	grep -q "^Example: make -C port-firewall FILTER='.*' load" "$WORK/out" ||
	{ cat "$WORK/out" >&2; fail "make without FILTER: no usage with an example"; }
ok "make without FILTER prints usage with an example and exits 2"
set +e
"${PF[@]}" FILTER='   ' load >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q '^Usage:' "$WORK/out" || fail "make load with a blank FILTER exited $rc"
ok "make load with a blank FILTER prints usage and exits 2"

# ---- load, reload, unload ------------------------------------------------------
expect_ok "make load PIN=$PIN" "${PF[@]}" FILTER='tcp && dst_port == 20080' PIN="$PIN" load
id1=$(prog_id "$PIN") || fail "$PIN is not a cgroup_skb program"
ok "$PIN is a cgroup_skb program (id $id1)"
expect_ok "reload with another FILTER" "${PF[@]}" FILTER='udp || icmp' PIN="$PIN" load
id2=$(prog_id "$PIN") || fail "$PIN is not a cgroup_skb program after reload"
[ "$id2" != "$id1" ] || fail "reload kept program id $id1"
[ ! -e "$PIN-loading" ] || fail "reload left $PIN-loading"
ok "reload replaced the program (id $id1 -> $id2)"

# ---- refused filters ---------------------------------------------------------------
# FILTER <TAB> the token the message must name <TAB> its column (or -)
M=$WORK/MARKER
REFUSED=(
	"tcp; udp	';'	4"
	"tcp # comment	'#'	5"
	"dst_port == {53}	'{'	13"
	"tcp }	'}'	5"
	"udp || 'x'	'''	8"
	"udp || \"x\"	'\"'	8"
	"tcp && dport == 80	'dport'	8"
	"\$(shell touch $M)	'\$'	1"
	"tcp && \`touch $M\`	'\`'	8"
	"'; touch $M; '	'''	1"
	"\$\$(touch $M)	'\$'	1"
	"dst_port == 053	'053'	13"
	"tcp && ()	')'	9"
	"()	')'	2"
	"\"; touch $M; \"	'\"'	1"
	"tcp && \$(touch $M)	'\$'	8"
)
for entry in "${REFUSED[@]}"; do
	IFS=$'\t' read -r filter token col <<<"$entry"
	set +e
	"${PF[@]}" FILTER="$filter" PIN="$PIN" load >"$WORK/out" 2>&1
	rc=$?
	set -e
	[ $rc -ne 0 ] || fail "FILTER=$filter was accepted"
	msg=$(grep -m1 'bad FILTER' "$WORK/out") ||
		{ cat "$WORK/out" >&2; fail "FILTER=$filter: no 'bad FILTER' message"; }
	case $msg in
	*"column $col: "*"$token"*) ;;
	*) fail "FILTER=$filter: message '$msg' does not name $token at column $col" ;;
	esac
	[ ! -e "$M" ] || fail "FILTER=$filter ran a command: $M exists"
	[ ! -e "$TOP/port-firewall/MARKER" ] || fail "FILTER=$filter ran a command in port-firewall/"
	id=$(prog_id "$PIN") || fail "FILTER=$filter: $PIN is gone"
	[ "$id" = "$id2" ] || fail "FILTER=$filter replaced the pinned program ($id2 -> $id)"
	[ "$(our_pins)" = "$PIN" ] || fail "FILTER=$filter left pins: $(our_pins)"
	ok "refused FILTER=$filter ($token at column $col), pin untouched"
done
# the same checks without load: building alone is refused too
set +e
"${PF[@]}" FILTER="tcp; touch $M" >"$WORK/out" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && [ ! -e "$M" ] && grep -q "column 4: unexpected ';'" "$WORK/out" ||
	fail "make FILTER='tcp; touch ...' (build only) was not refused (exit $rc)"
ok "build alone refuses a bad FILTER"

expect_ok "make unload PIN=$PIN" "${PF[@]}" PIN="$PIN" unload
[ ! -e "$PIN" ] || fail "make unload left $PIN"
ok "unload removed $PIN"
[ -z "$(our_pins)" ] || fail "pins left: $(our_pins)"

# ---- the default PIN --------------------------------------------------------------
DEF=/sys/fs/bpf/port-firewall
if [ -e "$DEF" ] || [ -e "$DEF-loading" ]; then
	info "$DEF exists (someone else's): default PIN not tested"
else
	at_exit rm -f "$DEF" "$DEF-loading"
	expect_ok "make load without PIN" "${PF[@]}" FILTER='icmp || (udp && dst_port == 53)' load
	prog_id "$DEF" >/dev/null || fail "$DEF is not a cgroup_skb program"
	ok "the default PIN is $DEF"
	expect_ok "make unload without PIN" "${PF[@]}" unload
	[ ! -e "$DEF" ] || fail "make unload left $DEF"
	ok "make unload without PIN removed $DEF"
fi
