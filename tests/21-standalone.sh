#!/usr/bin/env bash
# load_and_control_filter end to end on the real kernel: load the MTU filter,
# attach it to a fresh cgroup, send loopback UDP/TCP from a process in that
# cgroup and check the exact counters and status lines; keys from a pipe and
# from a terminal, ingress and egress, reuse of an existing pin, --unload,
# the verifier-log path and the usage errors.
. "$(dirname "$0")/lib.sh"

need_root
need_cgroup2
need_bpffs
need_cmd bpftool script strace
LACF=$BUILD/standalone/load_and_control_filter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$LACF" "$PROBE"; do
	[ -x "$p" ] || skip "$p is not built (make standalone tools)"
done

make_tmpdir TMP
CG=$CG2/$T_ID-standalone
make_cgroup "$CG"
PIN=/sys/fs/bpf/${T_ID}_sa_egress
PIN_IN=/sys/fs/bpf/${T_ID}_sa_ingress

# remove a filter even if the tool itself is broken
rm_filter() {
	"$LACF" --unload -c "$CG" "$1" && return 0
	bpftool cgroup detach "$CG" egress pinned "$1"
	bpftool cgroup detach "$CG" ingress pinned "$1"
	rm -f "$1" "$1_map"
}
at_exit rm_filter "$PIN"
at_exit rm_filter "$PIN_IN"

# CMD... must succeed; its output is not part of the test's report
quiet() { "$@" >/dev/null 2>&1; }
# run CMD... in the test cgroup
in_cg() {
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cg "$CG" "$@"
}
# a message of N bytes: a UDP datagram of N + 28 bytes from the IPv4 header
msg() { head -c "$1" /dev/zero | tr '\0' x; }
status() { "$LACF" --once "$@" 2>/dev/null; }
line() { echo "dropped $1, forwarded $2, MTU $3 bytes"; }
# the number after WORD in a status line
field() { sed -n "s/.*$1 \([0-9]*\).*/\1/p" <<<"$2"; }

# ---- echo servers outside the cgroup, on a port of our own ------------------
start_listener() {
	local proto=$1 port out
	for port in $(seq $((21000 + $$ % 900)) $((21009 + $$ % 900))); do
		out=$TMP/listen-$proto
		"$PROBE" listen "$proto" "$port" -a 127.0.0.1 >"$out" 2>&1 &
		local pid=$!
		at_exit kill "$pid"
		for _ in $(seq 50); do
			grep -q listening "$out" && { eval "PORT_${proto^^}=$port"; return 0; }
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
	done
	fail "cannot start a $proto echo server on a port in 21000-21999"
}
start_listener udp
start_listener tcp
send_udp() { in_cg "$PROBE" send udp 127.0.0.1 "$PORT_UDP" -t 500 -m "$(msg "$1")" >/dev/null 2>&1; }
send_tcp() { in_cg "$PROBE" send tcp 127.0.0.1 "$PORT_TCP" -t 1000 -m "$(msg "$1")" >/dev/null 2>&1; }

# ---- usage ------------------------------------------------------------------
usage_rc() { local rc=0; "$LACF" "$@" >/dev/null 2>&1 || rc=$?; echo $rc; }
expect_eq "no PIN is a usage error" "$(usage_rc)" 2
expect_eq "unknown option is a usage error" "$(usage_rc --bogus "$PIN")" 2
expect_eq "bad -t is a usage error" "$(usage_rc -c "$CG" -t sideways "$PIN")" 2
expect_eq "MTU below the range is a usage error" "$(usage_rc -m 10 "$PIN")" 2
expect_eq "MTU not a number is a usage error" "$(usage_rc -m 1k "$PIN")" 2
expect_eq "PIN with '.' is a usage error" "$(usage_rc "/sys/fs/bpf/${T_ID}.x")" 2
expect_eq "--unload with -m is a usage error" "$(usage_rc --unload -m 500 "$PIN")" 2
err=$("$LACF" -m 10 "$PIN" 2>&1 >/dev/null || true)
expect_eq "usage error says what is wrong in one line" "$err" \
	"load_and_control_filter: invalid MTU: 10 (68..65535)"
expect_ok "--help shows examples" bash -c '"$1" --help | grep "^Examples:" >/dev/null' _ "$LACF"
[ ! -e "$PIN" ] && [ ! -e "${PIN}_map" ] || fail "a usage error pinned something"
ok "usage errors pin nothing"

# ---- the reference's first example: -t without -c -----------------------------
# `load_and_control_filter -m 100 -t ingress /sys/fs/bpf/ingressfilter`, the pin
# then named by IPIngressFilterPath= (tests/30-systemd-units.sh runs that part)
PIN_REF=/sys/fs/bpf/${T_ID}_sa_ref
at_exit rm_filter "$PIN_REF"
rc=0
printf q | "$LACF" -m 100 -t ingress "$PIN_REF" >"$TMP/ref.out" 2>"$TMP/ref.err" || rc=$?
expect_eq "-t without -c loads, as the reference did" "$rc" 0
expect_eq "... printing the status line" "$(head -n1 "$TMP/ref.out")" "$(line 0 0 100)"
grep -qx -- "-t ingress applies when attaching (-c CGROUP); without -c the pin serves either direction" \
	"$TMP/ref.err" || fail "no note about -t without -c: $(cat "$TMP/ref.err")"
ok "... and says in one line that -t applies when attaching"
expect_eq "... leaving a cgroup_skb program pinned" \
	"$(bpftool -j prog show pinned "$PIN_REF" | sed -n 's/.*"type":"\([a-z_]*\)".*/\1/p')" cgroup_skb
expect_eq "... attached to nothing" "$(bpftool cgroup show "$CG" | grep -c lacf || true)" 0

# ---- the verifier refusal ---------------------------------------------------
PIN_BAD=/sys/fs/bpf/${T_ID}_sa_bad
at_exit rm -f "$PIN_BAD" "${PIN_BAD}_map"
rc=0
"$LACF" --load-invalid -c "$CG" "$PIN_BAD" >"$TMP/bad.out" 2>"$TMP/bad.err" || rc=$?
expect_eq "a verifier refusal exits 1" "$rc" 1
expect_ok "the verifier log is printed" grep -q "^verifier log:" "$TMP/bad.err"
expect_ok "the log shows the refused instruction" \
	grep -q "R0 invalid mem access 'map_value_or_null'" "$TMP/bad.err"
expect_eq "the refusal ends in one error line" "$(tail -n 1 "$TMP/bad.err")" \
	"load_and_control_filter: cannot load the filter program: Permission denied"
[ ! -e "$PIN_BAD" ] && [ ! -e "${PIN_BAD}_map" ] || fail "a refused program left a pin"
ok "a refused program pins nothing"
expect_eq "a refused program attaches nothing" "$(bpftool cgroup show "$CG" | grep -c lacf || true)" 0

# ---- egress: load, attach, forward ------------------------------------------
expect_eq "a new filter starts at zero and MTU 1500" \
	"$("$LACF" --once -c "$CG" -t egress "$PIN" 2>"$TMP/load.err")" "$(line 0 0 1500)"
expect_ok "the load says where it pinned" grep -q "^loaded the filter: program at $PIN, counters at ${PIN}_map$" "$TMP/load.err"
expect_ok "it is pinned" quiet bpftool prog show pinned "$PIN"
expect_ok "its map is pinned beside it" quiet bpftool map show pinned "${PIN}_map"
expect_ok "it is attached to the cgroup on egress" \
	bash -c 'bpftool cgroup show "$1" | grep -E "cgroup_inet_egress +multi +lacf_mtu_filter" >/dev/null' _ "$CG"

expect_ok "a small UDP datagram passes" send_udp 5
expect_eq "it is counted as forwarded, exactly once" "$(status "$PIN")" "$(line 0 1 1500)"
expect_ok "a 1400-byte UDP datagram passes MTU 1500" send_udp 1372
expect_eq "forwarded again" "$(status "$PIN")" "$(line 0 2 1500)"
expect_ok "TCP passes" send_tcp 5
s=$(status "$PIN")
[ "$(field dropped "$s")" = 0 ] && [ "$(field forwarded "$s")" -ge 5 ] ||
	fail "TCP: want nothing dropped and at least 3 more forwarded, got '$s'"
ok "TCP segments are counted as forwarded ($s)"
fwd=$(field forwarded "$s")

# ---- keys from a pipe: 20 times '-' lowers the MTU from 1500 to 500 ---------
keys=$(printf -- '-%.0s' $(seq 20))
printf '%s\nq' "$keys" | "$LACF" "$PIN" >"$TMP/keys.out" 2>"$TMP/keys.err"
{
	line 0 "$fwd" 1500
	for m in $(seq 1450 -50 500); do line 0 "$fwd" "$m"; done
} >"$TMP/keys.want"
expect_ok "one status line per key, exactly" diff "$TMP/keys.want" "$TMP/keys.out"
expect_ok "keys from a pipe print nothing else" test ! -s "$TMP/keys.err"
expect_ok "q leaves it pinned" quiet bpftool prog show pinned "$PIN"
expect_ok "q leaves it attached" \
	bash -c 'bpftool cgroup show "$1" | grep -E "cgroup_inet_egress +multi +lacf_mtu_filter" >/dev/null' _ "$CG"

# skb->len of a UDP datagram over IPv4 is 28 + the message
expect_fail "a 501-byte packet is dropped at MTU 500" send_udp 473
expect_eq "counted as dropped" "$(status "$PIN")" "$(line 1 "$fwd" 500)"
expect_ok "a 500-byte packet passes at MTU 500" send_udp 472
expect_eq "counted as forwarded" "$(status "$PIN")" "$(line 1 $((fwd + 1)) 500)"
expect_fail "a 1400-byte packet is dropped at MTU 500" send_udp 1372
expect_eq "counted as dropped" "$(status "$PIN")" "$(line 2 $((fwd + 1)) 500)"
fwd=$((fwd + 1))

# ---- clamping, -m on an existing filter, end of file as q ---------------------
keys=$(printf -- '-%.0s' $(seq 20))
expect_eq "the MTU stops at 68" "$(printf '%s' "$keys" | "$LACF" "$PIN" 2>/dev/null | tail -n 1)" \
	"$(line 2 "$fwd" 68)"
expect_eq "-m sets the MTU of the existing filter" "$(status -m 65500 "$PIN")" "$(line 2 "$fwd" 65500)"
expect_eq "the MTU stops at 65535" "$(printf '+++' | "$LACF" "$PIN" 2>/dev/null | tail -n 1)" \
	"$(line 2 "$fwd" 65535)"
expect_eq "-m 500 again" "$(status -m 500 "$PIN")" "$(line 2 "$fwd" 500)"

# ---- live: a status line when the counters change -----------------------------
mkfifo "$TMP/keys"
"$LACF" "$PIN" <"$TMP/keys" >"$TMP/live.out" 2>&1 &
live=$!
at_exit kill "$live"
exec 3>"$TMP/keys"
for _ in $(seq 50); do
	[ -s "$TMP/live.out" ] && break
	sleep 0.1
done
expect_ok "a small UDP datagram passes" send_udp 5
for _ in $(seq 30); do
	[ "$(wc -l <"$TMP/live.out")" -ge 2 ] && break
	sleep 0.1
done
expect_eq "the change shows without a key" "$(cat "$TMP/live.out")" \
	"$(line 2 "$fwd" 500; line 2 $((fwd + 1)) 500)"
fwd=$((fwd + 1))
kill -TERM "$live"
rc=0
wait "$live" || rc=$?
exec 3>&-
expect_eq "SIGTERM ends it with exit 0" "$rc" 0
expect_ok "SIGTERM leaves it pinned and attached" \
	bash -c 'bpftool cgroup show "$1" | grep -E "cgroup_inet_egress +multi +lacf_mtu_filter" >/dev/null' _ "$CG"

# ---- on a terminal: raw keys, a line redrawn in place, the terminal restored ---
(sleep 0.5; printf -- '-'; sleep 0.3; printf 'q') |
	timeout 20 script -qec "$LACF $PIN; stty -a" /dev/null >"$TMP/tty.out" 2>&1 || true
expect_ok "on a terminal the status line is redrawn in place" \
	grep -q $'\r\033\\[Kdropped 2, forwarded '"$fwd"', MTU 450 bytes' "$TMP/tty.out"
expect_ok "q on a terminal says how to remove the filter" \
	grep -q "remove it with: load_and_control_filter --unload $PIN" "$TMP/tty.out"
expect_ok "the terminal is restored after q" \
	bash -c 'grep -qw icanon "$1" && grep -qw echo "$1" && ! grep -qw -- -icanon "$1"' _ "$TMP/tty.out"
timeout 20 script -qec "sh -c '$LACF $PIN </dev/tty & p=\$!; sleep 0.5; kill -INT \$p; wait \$p; echo rc=\$?; stty -a'" \
	/dev/null </dev/null >"$TMP/int.out" 2>&1 || true
expect_ok "SIGINT on a terminal exits 0" grep -q "^rc=0" "$TMP/int.out"
expect_ok "the terminal is restored after SIGINT" \
	bash -c 'grep -qw icanon "$1" && ! grep -qw -- -icanon "$1" && ! grep -qw -- -echo "$1"' _ "$TMP/int.out"
expect_eq "-m 500 again" "$(status -m 500 "$PIN")" "$(line 2 "$fwd" 500)"

# ---- ingress: a second filter on the same cgroup -------------------------------
expect_eq "an ingress filter loads with -m 200" \
	"$("$LACF" --once -c "$CG" -t ingress -m 200 "$PIN_IN" 2>/dev/null)" "$(line 0 0 200)"
expect_ok "it is attached on ingress" \
	bash -c 'bpftool cgroup show "$1" | grep -E "cgroup_inet_ingress +multi +lacf_mtu_filter" >/dev/null' _ "$CG"
# the request (472 + 28 = 500 bytes) leaves; its echo comes back too long
expect_fail "a 500-byte echo is dropped at ingress MTU 200" send_udp 472
expect_eq "the ingress filter counts one drop" "$(status "$PIN_IN")" "$(line 1 0 200)"
expect_eq "egress forwarded the request" "$(status "$PIN")" "$(line 2 $((fwd + 1)) 500)"
fwd=$((fwd + 1))
expect_ok "a 200-byte echo passes at ingress MTU 200" send_udp 172
expect_eq "the ingress filter counts it as forwarded" "$(status "$PIN_IN")" "$(line 1 1 200)"

# ---- a second run on an existing pin attaches it, nothing duplicated -----------
expect_eq "an existing filter keeps its counters" \
	"$("$LACF" --once -c "$CG" -t egress "$PIN" 2>/dev/null)" "$(line 2 $((fwd + 1)) 500)"
expect_eq "no second attachment" "$(bpftool cgroup show "$CG" | grep -c lacf_mtu_filter)" 2

# ---- pins that are not ours ---------------------------------------------------
OTHER=/sys/fs/bpf/${T_ID}_sa_other
at_exit rm -f "$OTHER" "${OTHER}_map"
quiet bpftool map create "$OTHER" type array key 4 value 8 entries 3 name other
rc=0
err=$("$LACF" --once "$OTHER" 2>&1 >/dev/null) || rc=$?
expect_eq "a pin that is not ours is refused" "$rc:$err" \
	"1:load_and_control_filter: $OTHER is not a filter made by load_and_control_filter"
rm -f "$OTHER"
quiet bpftool map create "${OTHER}_map" type array key 4 value 8 entries 3 name other
rc=0
err=$("$LACF" --once "$OTHER" 2>&1 >/dev/null) || rc=$?
expect_eq "a taken map pin is reported in one line" "$rc:$err" \
	"1:load_and_control_filter: ${OTHER}_map is there without $OTHER, and is not the map of a filter made by load_and_control_filter: remove it or choose another PIN"
[ ! -e "$OTHER" ] || fail "a failed load left $OTHER"
ok "a failed load leaves no program pin"
rm -f "${OTHER}_map"
# killed between its two pins: the map pinned, the program not; the next
# run removes that map (its own, by name and shape), saying so, and loads
n=$(strace -qq -e trace=bpf -o "$TMP/count" "$LACF" --once "$OTHER" >/dev/null 2>&1; grep -c 'bpf(' "$TMP/count")
"$LACF" --unload "$OTHER" >/dev/null 2>&1
pin_at=$(grep -n "BPF_OBJ_PIN, {pathname=\"$OTHER\"" "$TMP/count" | cut -d: -f1)
[ -n "$pin_at" ] || fail "no pin of $OTHER among the $n bpf() calls of a load"
strace -qq -o /dev/null -e trace=bpf -e inject=bpf:signal=SIGKILL:when="$pin_at" "$LACF" --once "$OTHER" \
	>/dev/null 2>&1 || true
[ -e "${OTHER}_map" ] && [ ! -e "$OTHER" ] || fail "the kill at the pin of $OTHER did not leave its map alone"
expect_eq "--unload of a map left alone removes it, saying so" "$("$LACF" --unload "$OTHER" 2>&1)" \
	"removed ${OTHER}_map, left without $OTHER by a run killed between its pins"
[ ! -e "${OTHER}_map" ] || fail "--unload left ${OTHER}_map"
strace -qq -o /dev/null -e trace=bpf -e inject=bpf:signal=SIGKILL:when="$pin_at" "$LACF" --once "$OTHER" \
	>/dev/null 2>&1 || true
"$LACF" --once "$OTHER" >/dev/null 2>"$TMP/again.err" || fail "a load after a killed one failed: $(cat "$TMP/again.err")"
grep -q "removed ${OTHER}_map, left without $OTHER" "$TMP/again.err" || fail "the load did not say it removed the map left alone"
"$LACF" --unload "$OTHER" >/dev/null 2>&1 || fail "cannot unload $OTHER"
ok "a run killed between its pins leaves a map the next load or --unload removes, saying so"
rc=0
err=$("$LACF" --once -c "$CG/nonexistent" "$OTHER" 2>&1 >/dev/null | tail -n 1) || rc=$?
expect_eq "a missing cgroup is reported" "$err" \
	"load_and_control_filter: cannot open cgroup $CG/nonexistent: No such file or directory"
[ ! -e "$OTHER" ] && [ ! -e "${OTHER}_map" ] || fail "a filter that could not attach stayed pinned"
ok "a new filter that cannot attach is removed again"
# a directory where a pin goes is named as one (the kernel says
# "Permission denied"), and a map pin that cannot be opened is said (it
# exited 1 without a word)
# dir_refused WHAT DIR: with a directory at DIR, a load of $OTHER fails naming it
dir_refused() {
	mkdir "$2"
	rc=0
	err=$("$LACF" --once "$OTHER" 2>&1 >/dev/null) || rc=$?
	rmdir "$2"
	expect_eq "$1" "$rc:$err" "1:load_and_control_filter: cannot open $2: it is a directory, not a pinned filter"
}
dir_refused "a directory at PIN is named as one" "$OTHER"
dir_refused "a directory at PIN_map is said, not a silent exit 1" "${OTHER}_map"
# an error at each bpf() call of a load: it fails, saying why and pinning
# nothing, or it loads a filter the next run knows as its own (libbpf's
# probe of names failing made one without names, which no later run could
# change or unload)
for ((i = 1; i <= n; i++)); do
	rc=0
	strace -qq -o /dev/null -e trace=bpf -e inject=bpf:error=ENOSPC:when=$i "$LACF" --once "$OTHER" \
		>/dev/null 2>"$TMP/inj.err" || rc=$?
	[ "$rc" = 0 ] || [ -s "$TMP/inj.err" ] || fail "ENOSPC at bpf() call $i of $n of a load: exit $rc without a word"
	# (a failure after the pins, reading the counters, leaves the filter
	# loaded, as it says)
	if [ -e "$OTHER" ]; then
		"$LACF" --once "$OTHER" >/dev/null 2>"$TMP/inj2.err" ||
			fail "ENOSPC at bpf() call $i of $n of a load (exit $rc): the next run does not know the filter it pinned: $(cat "$TMP/inj2.err")"
		"$LACF" --unload "$OTHER" >/dev/null 2>&1 || fail "ENOSPC at bpf() call $i: cannot unload what it loaded"
	else
		[ "$rc" != 0 ] && [ ! -e "${OTHER}_map" ] || fail "ENOSPC at bpf() call $i of $n: exit $rc, map pin left without the program"
	fi
done
ok "ENOSPC at each of the $n bpf() calls of a load: it fails saying why, or leaves a filter the next run knows and unloads"

# ---- unload ------------------------------------------------------------------
expect_ok "--unload the ingress filter" quiet "$LACF" --unload "$PIN_IN"
expect_ok "it found and detached the ingress attachment" \
	bash -c '! bpftool cgroup show "$1" | grep cgroup_inet_ingress >/dev/null' _ "$CG"
[ ! -e "$PIN_IN" ] && [ ! -e "${PIN_IN}_map" ] || fail "--unload left a pin"
ok "--unload removed both pins"
expect_ok "--unload -c the egress filter" quiet "$LACF" --unload -c "$CG" "$PIN"
expect_eq "nothing is attached any more" "$(bpftool cgroup show "$CG" | grep -c lacf || true)" 0
expect_eq "--unload of a missing pin fails" "$(usage_rc --unload "$PIN")" 1
