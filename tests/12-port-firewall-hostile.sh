#!/usr/bin/env bash
# port-firewall against a hostile PIN or FILTER, and against bad luck: each
# case is a way make once deleted or pinned what it should not, loaded the
# wrong filter, or refused a filter cgfilter takes.  Verdicts come from the
# pins themselves (build/tests/verdict-run, BPF_PROG_TEST_RUN).
#   tests/run.sh 12            all cases;  CASES="name ..." to pick some
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cmd make clang bpftool python3 flock strace
RUNNER=$BUILD/tests/verdict-run
EXPR_TOOL=$BUILD/tools/cgfilter-expr
for p in "$RUNNER" "$EXPR_TOOL"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done

make_tmpdir WORK
P=/sys/fs/bpf/${T_ID}
rm_pins() { rm -rf "$P"_*; }
at_exit rm_pins
# make in one build directory, with the checker already built
PF=(make -s --no-print-directory -C "$TOP/port-firewall" O="$WORK/o" EXPR_TOOL="$EXPR_TOOL")

# run CMD...: status in RC, stdout and stderr together in $WORK/out
run() { RC=0; "$@" >"$WORK/out" 2>&1 || RC=$?; }
# refused WHAT TEXT: the last command failed, saying TEXT on one line
refused() {
	[ "$RC" -ne 0 ] || fail "$1: exit 0, must fail"
	grep -qF -- "$2" "$WORK/out" || fail "$1: no '$2' in: $(cat "$WORK/out")"
	ok "$1: refused ($(grep -F -- "$2" "$WORK/out"))"
}
is_cgroup_skb() { bpftool -j prog show pinned "$1" 2>/dev/null | has '"type":"cgroup_skb"'; }
is_map() { bpftool -j map show pinned "$1" >/dev/null 2>&1; }
# frames FILE SPEC...: the frames tests/verdict/verdict.py builds for SPECs
frames() {
	local out=$1
	shift
	python3 - "$TOP/tests/verdict" "$@" >"$out" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import verdict as V
for spec in sys.argv[2:]:
    print(V.build(spec).hex())
EOF
}
# verdicts PIN FRAMES: the pinned program's verdicts, one digit per frame
verdicts() { "$RUNNER" -p "$2" --pin "$1" | cut -f3; }

# ---- 1. unload removes only a cgroup_skb program on a BPF filesystem --------
case_unload_file() {
	local f=$WORK/precious
	echo data >"$f"
	run "${PF[@]}" unload PIN="$f"
	refused "unload PIN=$f" "port-firewall: cannot unload $f: $WORK is not on a BPF filesystem"
	expect_eq "... and $f is still there" "$(cat "$f")" data
}

case_unload_map() {
	local m=${P}_map
	bpftool map create "$m" type array key 4 value 4 entries 1 name t || fail "cannot create map $m"
	run "${PF[@]}" unload PIN="$m"
	refused "unload PIN=<a map>" "port-firewall: cannot unload $m: it is a BPF map, not a cgroup_skb program"
	is_map "$m" || fail "unload removed the map $m"
	ok "... and the map is still pinned"
	rm -f "$m"
}

case_unload_other_program() {
	local x=${P}_xdp
	printf '%s\n' '__attribute__((section("xdp"), used)) int pass(void *ctx) { return 2; }' \
		'char LICENSE[] __attribute__((section("license"), used)) = "GPL";' >"$WORK/xdp.c"
	clang -O2 -target bpf -c "$WORK/xdp.c" -o "$WORK/xdp.o" || fail "cannot build an xdp program"
	bpftool prog load "$WORK/xdp.o" "$x" || fail "cannot pin an xdp program at $x"
	run "${PF[@]}" unload PIN="$x"
	refused "unload PIN=<an xdp program>" "cannot unload $x: it is a BPF program of type xdp"
	bpftool prog show pinned "$x" >/dev/null 2>&1 || fail "unload removed the xdp program"
	ok "... and the xdp program is still pinned"
	rm -f "$x"
}

# a pin bpftool cannot read (each process's first bpf() call fails, as
# for a user without the right): bpftool's own reason is said (it was
# "neither a BPF program nor a map"), and the program stays
case_unload_unreadable() {
	local x=${P}_ur
	"${PF[@]}" FILTER=tcp load PIN="$x" >/dev/null 2>&1 || fail "cannot load $x"
	run strace -f -qq -o /dev/null -e trace=bpf -e inject=bpf:error=EPERM:when=1 "${PF[@]}" unload PIN="$x"
	refused "unload PIN=<a pin bpftool cannot read>" \
		"port-firewall: cannot unload $x: it is something bpftool cannot read (Error: bpf obj get ($x): Operation not permitted), not a cgroup_skb program"
	is_cgroup_skb "$x" || fail "... and it removed the program"
	ok "... and the program is still pinned"
	rm -f "$x"
}

# bpf-program-only's unload is the same
case_bpo_unload_map() {
	local m=${P}_bmap
	bpftool map create "$m" type array key 4 value 4 entries 1 name t || fail "cannot create map $m"
	run make -s --no-print-directory -C "$TOP/bpf-program-only" O="$WORK/bo" PIN="$m" unload
	refused "bpf-program-only unload PIN=<a map>" \
		"bpf-program-only: cannot unload $m: it is a BPF map, not a cgroup_skb program"
	is_map "$m" || fail "bpf-program-only unload removed the map $m"
	ok "... and the map is still pinned"
	rm -f "$m"
}

# (as the reference's rm -f: unload twice works, and says so)
case_unload_missing() {
	run "${PF[@]}" unload PIN="${P}_none"
	[ "$RC" -eq 0 ] || fail "unload of a missing pin: exit $RC: $(cat "$WORK/out")"
	grep -qF "nothing is pinned at ${P}_none" "$WORK/out" || fail "unload of a missing pin says nothing: $(cat "$WORK/out")"
	[ ! -e "${P}_none" ] || fail "unload of a missing pin made ${P}_none"
	ok "unload of a missing pin: exit 0 ($(cat "$WORK/out" | grep -F nothing))"
}

case_unload_program() {
	local pin=${P}_pf
	expect_ok "load a port-firewall pin" "${PF[@]}" FILTER='tcp' PIN="$pin" load
	expect_ok "unload it" "${PF[@]}" PIN="$pin" unload
	[ ! -e "$pin" ] || fail "unload left $pin"
	ok "... and it is gone"
}

# ---- 3. load pins only at a free name or over a cgroup_skb program ------------
case_load_into_directory() {
	local d=${P}_dir
	mkdir "$d"
	run "${PF[@]}" FILTER='tcp' PIN="$d" load
	refused "load PIN=<a directory>" "port-firewall: cannot pin $d: it is a directory"
	expect_eq "... and the directory is still empty" "$(ls -A "$d")" ""
	rmdir "$d"
}

case_load_over_map() {
	local m=${P}_lmap
	bpftool map create "$m" type array key 4 value 4 entries 1 name t || fail "cannot create map $m"
	run "${PF[@]}" FILTER='tcp' PIN="$m" load
	refused "load PIN=<a map>" "port-firewall: cannot pin $m: it is a BPF map"
	is_map "$m" || fail "load replaced the map $m"
	[ ! -e "$m-loading" ] || fail "load left $m-loading"
	ok "... and the map is still pinned, nothing else"
	rm -f "$m"
}

# ---- 2. concurrent loads with one build directory --------------------------------
# together FA PA FB PB: two loads at once with the caller's pf (make) in
# round r, FILTER=FA PIN=PA and FILTER=FB PIN=PB; after both ended, fails
# naming the one that failed
together() {
	local a b ra=0 rb=0
	"${pf[@]}" FILTER="$1" PIN="$2" load >"$WORK/a.log" 2>&1 &
	a=$!
	"${pf[@]}" FILTER="$3" PIN="$4" load >"$WORK/b.log" 2>&1 &
	b=$!
	wait $a || ra=$?
	wait $b || rb=$?
	[ $ra -eq 0 ] || fail "round $r: load of '$1' at $2 failed: $(cat "$WORK/a.log")"
	[ $rb -eq 0 ] || fail "round $r: load of '$3' at $4 failed: $(cat "$WORK/b.log")"
}

case_concurrent_loads() {
	local fa='tcp && dst_port == 1001' fb='udp && dst_port == 2002'
	local pa=${P}_ca pb=${P}_cb r
	# a fresh build directory: the first round builds the checker twice at once
	local pf=(make -s --no-print-directory -C "$TOP/port-firewall" O="$WORK/conc")
	frames "$WORK/conc.hex" "ip4 / tcp dport=1001" "ip4 / udp dport=2002"
	for r in $(seq 10); do
		together "$fa" "$pa" "$fb" "$pb"
		[ "$(verdicts "$pa" "$WORK/conc.hex")" = 10 ] ||
			fail "round $r: $pa passes $(verdicts "$pa" "$WORK/conc.hex") (tcp 1001, udp 2002), not 10: not '$fa'"
		[ "$(verdicts "$pb" "$WORK/conc.hex")" = 01 ] ||
			fail "round $r: $pb passes $(verdicts "$pb" "$WORK/conc.hex") (tcp 1001, udp 2002), not 01: not '$fb'"
	done
	ok "10 rounds of two loads at once: each pin holds its own filter"

	# two loads of one PIN at once share no temporary pin
	for r in $(seq 5); do
		together "$fa" "$pa" "$fb" "$pa"
		is_cgroup_skb "$pa" || fail "round $r: $pa is not a cgroup_skb program"
		[ ! -e "$pa-loading" ] || fail "round $r: $pa-loading left behind"
	done
	ok "5 rounds of two loads of one PIN at once: both succeed, nothing left behind"
	rm -f "$pa" "$pb"
}

# ---- 4. filters cgfilter takes build and load, with the right verdicts ------------
# big FILTER PASS_SPEC DROP_SPEC: make load pins FILTER, which passes the
# first frame and drops the second
big() {
	local filter=$1 pin=${P}_big
	frames "$WORK/big.hex" "$2" "$3"
	run "${PF[@]}" FILTER="$filter" PIN="$pin" load
	[ "$RC" -eq 0 ] || fail "a ${#filter}-byte filter (${filter:0:40}...) does not load: $(tail -c 1000 "$WORK/out")"
	expect_eq "a ${#filter}-byte filter (${filter:0:40}...) loads; '$2' passes, '$3' not" \
		"$(verdicts "$pin" "$WORK/big.hex")" 10
	rm -f "$pin"
}

case_big_filters() {
	local f len k
	# 129 terms nested 129 parentheses deep in the C once: clang stops at 256
	f=$(python3 -c 'print(" || ".join("dst_port == %d" % i for i in range(129)))')
	big "$f" "ip4 / tcp dport=128" "ip4 / tcp dport=129"
	# 300 terms summed: sum == 300 * len for the first frame only
	len=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import verdict as V
print(V.decode(V.build("ip4 / udp dport=53"))["len"])' "$TOP/tests/verdict")
	k=$((300 * len))
	f=$(python3 -c 'import sys; print(" + ".join(["len"] * 300) + " == " + sys.argv[1])' "$k")
	big "$f" "ip4 / udp dport=53" "ip4 / udp dport=53 / data 4"
	# 199 '!' (odd): not tcp
	f="$(printf '!%.0s' $(seq 199))tcp"
	big "$f" "ip4 / udp dport=53" "ip4 / tcp dport=53"
	# 118 KB: FILTER near the kernel's 128 KiB for one argument
	f=$(python3 -c '
t, n = [], 0
while sum(map(len, t)) + 4 * len(t) < 118000:
    t.append("dst_port == %d" % n)
    n += 1
print(" || ".join(t))')
	big "$f" "ip4 / tcp dport=5000" "ip4 / tcp dport=60000"
}

# a refused 100 KB filter is not echoed whole, by the checker or by make
case_long_refusal() {
	local f
	f=$(python3 -c 'print(" || ".join("dst_port == %d" % i for i in range(5000)) + "; x")')
	run make --no-print-directory -C "$TOP/port-firewall" O="$WORK/o" EXPR_TOOL="$EXPR_TOOL" FILTER="$f"
	refused "a ${#f}-byte FILTER with a ';' at its end" "bad FILTER: column $((${#f} - 2)): unexpected ';'"
	[ "$(wc -c <"$WORK/out")" -lt 2048 ] || fail "the refusal is $(wc -c <"$WORK/out") bytes long"
	ok "... in $(wc -c <"$WORK/out") bytes"
}

# a PIN the BPF filesystem cannot take: refused by name, before anything is
# loaded (it used to blame a verifier log there was none of)
case_bad_pin_names() {
	local long
	long=$P"_$(printf 'x%.0s' $(seq 250))"
	run "${PF[@]}" FILTER=tcp PIN="$P.dot" load
	refused "load PIN=<a name with a dot>" "port-firewall: cannot pin $P.dot: a BPF filesystem name may not contain '.'"
	run "${PF[@]}" FILTER=tcp PIN="$P/" load
	refused "load PIN=<a path ending in />" "port-firewall: cannot pin $P/: give a name after the last '/'"
	run "${PF[@]}" FILTER=tcp PIN="$long" load
	refused "load PIN=<a name of ${#long} bytes>" "its name is longer than 247 bytes"
	grep -q verifier "$WORK/out" && fail "a bad PIN name still blames the verifier: $(cat "$WORK/out")"
	for f in "$P.dot" "$P.dot-loading" "$long" "$long-loading"; do
		[ ! -e "$f" ] || fail "a refused PIN left $f"
	done
}

CASES=${CASES:-unload_file unload_map unload_other_program unload_unreadable bpo_unload_map unload_missing unload_program
	load_into_directory load_over_map concurrent_loads big_filters long_refusal bad_pin_names}
for c in $CASES; do
	info "case $c"
	"case_$c"
done
