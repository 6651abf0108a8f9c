#!/usr/bin/env bash
# Crash consistency: each changing command of cgfilter killed at each of its
# bpf() calls in turn (strace -e inject=bpf:signal=SIGKILL:when=N), and with
# an error injected at each (inject=bpf:error=ENOSPC:when=N).  After each,
# the engine shows the old state or the new one, whole, its verdicts are
# those of what it shows (tests/verdict/judge.py), and the next command
# succeeds and is exactly right.  (A kill is tried at the first of a run
# of calls that leave nothing behind: tests/crash.sh.  set-add and set-del
# on a shared engine: test 58.)  CGF_CRASH="set set-dyn set-add set-del
# load unload register" picks some; CGF_CRASH_STEP: tests/crash.sh.
. "$(dirname "$0")/lib.sh"
CRASH_ALL="set set-dyn set-add set-del load unload register"
. "$(dirname "$0")/crash.sh"

OLD='@ports = { 22, 80 } @nets = { 198.51.100.0/24 } tcp && dst_port in @ports || src_ip in { 192.0.2.0/24, 192.0.2.128/25, 10.0.0.0/8, 10.1.0.0/16, 10.2.0.0/16 }'
NEW='@ports = { 443, 8000..8100 } !(src_ip in @nets) && (dst_port in @ports || src_ip in { 203.0.113.0/24, 2001:db8::/32, 2001:db8:1::/48, 2001:db8:2::/48, 2001:db8:3::/48, fd00::/8 })'

# ---- set ------------------------------------------------------------------------------------
set_setup() {
	clean
	"$CGF" load "$PIN" "$OLD" >/dev/null || fail "cannot load $PIN"
}
set_check() { # WHAT RC HOW
	local st
	st=$(state) || fail "$1: show fails: $(cat "$TMP/show.err")"
	if [ "$st" = "$OLD_STATE" ]; then
		[ "$2" -eq 0 ] && [ "$3" != signal=SIGKILL ] &&
			fail "$1: exit 0, but the old filter is in force"
	elif [ "$st" = "$NEW_STATE" ]; then
		[ "$2" -ne 0 ] && [ "$3" = error=ENOSPC ] &&
			fail "$1: the new filter is in force, but set exited $2"
	else
		fail "$1: neither the old nor the new state: $st"
	fi
	agree "$st" "$1"
}
if want set; then
	set_setup
	remember OLD_STATE OLD_VERDICTS
	"$CGF" set "$PIN" "$NEW" || fail "cannot set the new filter"
	remember NEW_STATE NEW_VERDICTS
	sweep set set_setup set_check "$CGF" set "$PIN" "$NEW"
fi

# ---- set to a filter with dynamic sets: their maps are made with the filter ----------------------
# (no packet here adds to them: UDP to port 9 would, and neither PACKETS nor
# judge's own packets go there, so the reference's sets stay empty too)
DYN='@seen = { } timeout 60 @open = { } timeout 5 udp && dst_port == 9 && add(@seen, src_ip) && add(@open, dst_port) || src_ip in @seen || tcp && dst_port in @open || dst_port == 443'
if want set-dyn; then
	set_setup
	remember OLD_STATE OLD_VERDICTS
	"$CGF" set "$PIN" "$DYN" || fail "cannot set the filter with dynamic sets"
	remember NEW_STATE NEW_VERDICTS
	sweep set-dyn set_setup set_check "$CGF" set "$PIN" "$DYN"
fi

# ---- set-add, set-del --------------------------------------------------------------------------
add_setup() { set_setup; }
if want set-add; then
	add_setup
	remember OLD_STATE OLD_VERDICTS
	"$CGF" set-add "$PIN" @nets 192.0.2.1 2001:db8::/32 10.9.0.0/16 >/dev/null || fail "cannot set-add"
	remember NEW_STATE NEW_VERDICTS
	sweep set-add add_setup set_check "$CGF" set-add "$PIN" @nets 192.0.2.1 2001:db8::/32 10.9.0.0/16
fi

del_setup() {
	set_setup
	"$CGF" set-add "$PIN" @nets 192.0.2.1 2001:db8::/32 >/dev/null || fail "cannot set-add"
}
if want set-del; then
	del_setup
	remember OLD_STATE OLD_VERDICTS
	"$CGF" set-del "$PIN" @nets 198.51.100.0/24 2001:db8::/32 >/dev/null || fail "cannot set-del"
	remember NEW_STATE NEW_VERDICTS
	sweep set-del del_setup set_check "$CGF" set-del "$PIN" @nets 198.51.100.0/24 2001:db8::/32
fi

# ---- load, unload: the engine is there whole, or not at all ----------------------------------------
present_check() { # WHAT RC HOW: either no engine (and PIN absent) or the whole one
	local st
	if [ -e "$PIN" ]; then
		st=$(state) || fail "$1: $PIN is there, but show fails: $(cat "$TMP/show.err")"
		[ "$st" = "$NEW_STATE" ] || fail "$1: a PIN with a filter other than the one loaded: $st"
		agree "$st" "$1"
	fi
}
load_setup() { clean; }
# what a crashed load left (no PIN) stays for the load again to clear; a
# whole engine is unloaded, and unload clears all of it
load_check() {
	present_check "$@"
	[ -e "$PIN" ] || [ "$2" -ne 0 ] || fail "$1: load exited 0 and pinned nothing"
	if [ -e "$PIN" ]; then
		"$CGF" unload "$PIN" >/dev/null 2>"$TMP/unload.err" || fail "$1: cannot unload: $(cat "$TMP/unload.err")"
		[ ! -e "${PIN}_maps" ] || fail "$1: unload left ${PIN}_maps"
	fi
}
clean
"$CGF" load "$PIN" "$OLD" >/dev/null || fail "cannot load"
OLD_STATE=none OLD_VERDICTS=
remember NEW_STATE NEW_VERDICTS
! want load || sweep load load_setup load_check "$CGF" load "$PIN" "$OLD"

unload_setup() { clean; "$CGF" load "$PIN" "$OLD" >/dev/null || fail "cannot load"; }
# what a crashed unload left stays for the unload again, which must clear
# all of it (PIN and PIN_maps)
unload_check() {
	present_check "$@"
	[ "$2" -ne 0 ] || { [ ! -e "$PIN" ] && [ ! -e "${PIN}_maps" ]; } ||
		fail "$1: unload exited 0 and left $(ls -d "$PIN" "${PIN}_maps" 2>/dev/null)"
}
# (unload again where nothing is left is an error, rightly)
unload_again() { [ ! -e "$PIN" ] && [ ! -e "${PIN}_maps" ] || "$@"; }
! want unload || AGAIN=unload_again sweep unload unload_setup unload_check "$CGF" unload "$PIN"

# ---- register (shared): the cgroup's filter is the old one or the new one ----------------------------
CG=$CG2/$T_ID-crash
make_cgroup "$CG"
reg_setup() {
	# (--detach: or the cgroup fills up with old engines, 64 at most)
	"$CGF" unload --detach "$PIN" >/dev/null 2>&1 || true
	clean
	"$CGF" load --shared "$PIN" >/dev/null || fail "cannot load a shared engine"
	# (both directions: one register must switch both, or neither)
	bpftool cgroup attach "$CG" egress pinned "$PIN" multi || fail "cannot attach"
	bpftool cgroup attach "$CG" ingress pinned "$PIN" multi || fail "cannot attach"
	"$CGF" register "$PIN" --cgroup "$CG" 'tcp && dst_port == 1' || fail "cannot register"
}
# the filters registered, one per line (no python: it starts slowly)
cg_filter() {
	local j
	j=$("$CGF" show --json "$PIN" 2>"$TMP/show.err") || return 1
	j=${j#*\"filters\":}
	grep -o '"filter":"[^"]*"' <<<"${j%%\"sets\":*}"
}
reg_check() {
	local f
	f=$(cg_filter) || fail "$1: show fails: $(cat "$TMP/show.err")"
	[ "$(wc -l <<<"$f")" = 2 ] || fail "$1: not one filter a direction: $f"
	[ "$(sort -u <<<"$f" | wc -l)" = 1 ] || fail "$1: the two directions differ: $f"
	f=$(sort -u <<<"$f")
	case $f in
	'"filter":"tcp && dst_port == 1"') [ "$2" -ne 0 ] || [ "$3" = signal=SIGKILL ] ||
		fail "$1: exit 0, but the old filter is in force" ;;
	'"filter":"udp && dst_port == 2"') [ "$2" -eq 0 ] || [ "$3" != error=ENOSPC ] ||
		fail "$1: the new filter is in force, but register exited $2" ;;
	*) fail "$1: neither the old nor the new filter: $f" ;;
	esac
}
if want register; then
	at_exit bpftool cgroup detach "$CG" egress pinned "$PIN"
	at_exit bpftool cgroup detach "$CG" ingress pinned "$PIN"
	sweep register reg_setup reg_check "$CGF" register "$PIN" --cgroup "$CG" 'udp && dst_port == 2'
	bpftool cgroup detach "$CG" egress pinned "$PIN" || true
	bpftool cgroup detach "$CG" ingress pinned "$PIN" || true
fi
clean
