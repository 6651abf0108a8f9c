#!/usr/bin/env bash
# Dynamic sets: '@s = { } timeout N', filled by add(@s, x), emptied by
# del(@s, x), entries expiring.  Against the reference model, which keeps
# the sets from packet to packet (tests/verdict/check_dynamic.py): in the
# cgfilter engine (BPF_PROG_TEST_RUN, packets in order) and in cgfilter
# wrap's eBPF socket filter (a veth pair in a network namespace of the
# test's own); `show` lists the entries with the time they have left;
# classic BPF and the parser refuse what they must; and port knocking
# (examples/port-knocking.filter, timeouts shortened) with real connections
# on loopback: no knock, refused; wrong order, refused; right order,
# answered; after the timeout, refused again.
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cmd python3 ip unshare sysctl
if [ -z "${T_NETNS:-}" ]; then
	T_NETNS=1 exec unshare -n -- "$0" "$@"
fi
CGF=$BUILD/cgfilter/cgfilter
WRAP_BIN=$BUILD/wrap/cgfilter-wrap
for p in "$CGF" "$WRAP_BIN" "$BUILD/tests/verdict-run" "$BUILD/tests/cbpf-run"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
PIN=/sys/fs/bpf/${T_ID}_dyn
at_exit rm -rf "$PIN" "${PIN}_maps"

# ---- the engine and the socket filter against the reference -------------------------------
python3 "$TOP/tests/verdict/check_dynamic.py" --cgfilter "$CGF" --pin "$PIN" --work "$TMP" ||
	fail "the engine's dynamic sets disagree with the reference (see above)"
ok "engine: stateful filters over packets in order = reference"
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add cgf-send type veth peer name cgf-recv
ip link set cgf-send up
ip link set cgf-recv up
python3 "$TOP/tests/verdict/check_dynamic.py" --socket --send cgf-send --recv cgf-recv --work "$TMP" ||
	fail "the eBPF socket filter's dynamic sets disagree with the reference (see above)"
ok "cgfilter wrap's eBPF socket filter: the same"
ip link del cgf-send
sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
ip link set lo up

# ---- show: the entries, with the time they have left ----------------------------------------
"$CGF" load "$PIN" '@seen = { } timeout 60
@ports = { } timeout 5
add(@seen, src_ip) && add(@ports, dst_port)' || fail "cannot load a filter with dynamic sets"
PYTHONPATH=$TOP/tests/verdict python3 -c '
import verdict as V
for s in ["ip4 src=192.0.2.7 / udp dport=53", "ip6 src=2001:db8::7 / tcp dport=443 flags=S"]:
    print(V.build(s).hex())' >"$TMP/frames.hex"
"$BUILD/tests/verdict-run" -p "$TMP/frames.hex" --pin "$PIN" >/dev/null || fail "verdict-run failed"
"$CGF" show "$PIN" >"$TMP/show" || fail "show failed"
grep -Eq '^    @seen \(timeout 60 s, 2 entries\): 192\.0\.2\.7 \(([0-9.]+) s left\), 2001:db8::7 \(([0-9.]+) s left\)$|^    @seen \(timeout 60 s, 2 entries\): 2001:db8::7 \(([0-9.]+) s left\), 192\.0\.2\.7 \(([0-9.]+) s left\)$' "$TMP/show" ||
	fail "show does not list @seen's entries: $(cat "$TMP/show")"
grep -Eq '^    @ports \(timeout 5 s, 2 entries\): .*(53|443) \([0-5]\.[0-9] s left\)' "$TMP/show" ||
	fail "show does not list @ports's entries: $(cat "$TMP/show")"
ok "show lists each dynamic set's entries and the time they have left"
"$CGF" show --json "$PIN" | python3 -c '
import json, sys
j = json.load(sys.stdin)["dynamic_sets"]
assert j["seen"]["timeout"] == 60, j
assert sorted(e["item"] for e in j["seen"]["entries"]) == ["192.0.2.7", "2001:db8::7"], j
assert all(55000 < e["left_ms"] <= 60000 for e in j["seen"]["entries"]), j
assert sorted(e["item"] for e in j["ports"]["entries"]) == ["443", "53"], j' ||
	fail "show --json: $("$CGF" show --json "$PIN")"
ok "show --json: dynamic_sets with timeout, items and left_ms"
sleep 5.2
"$CGF" show "$PIN" | has '^    @ports (timeout 5 s, 0 entries): (empty)$' ||
	fail "an expired entry is still shown: $("$CGF" show "$PIN")"
ok "an entry that expired is gone from show"
"$CGF" set "$PIN" '@seen = { } timeout 60
src_ip in @seen' || fail "set failed"
"$CGF" show "$PIN" | has '^    @seen (timeout 60 s, 0 entries): (empty)$' ||
	fail "after set, the dynamic set is not empty: $("$CGF" show "$PIN")"
ok "set starts the filter's dynamic sets empty"

# ---- a full set makes room: expired entries never lock it -----------------------------------
# (a hash of 16,384 entries once kept its expired entries until del(): a
# flood of adds, spoofed sources say, shut everyone out for good)
"$CGF" set "$PIN" '@s = { } timeout 2
dst_port == 1 ? add(@s, src_ip) : src_ip in @s' || fail "set failed"
PYTHONPATH=$TOP/tests/verdict python3 -c '
import sys, verdict as V
base, dport = int(sys.argv[1]), int(sys.argv[2])
for i in range(base, base + 20000):
    print(V.build("ip6 src=2001:db8::%x:%x / tcp dport=%d flags=S" % (i >> 16, i & 0xffff, dport)).hex())' \
	0 1 >"$TMP/flood1.hex"
"$BUILD/tests/verdict-run" -p "$TMP/flood1.hex" --pin "$PIN" >/dev/null || fail "verdict-run failed"
sleep 2.5
PYTHONPATH=$TOP/tests/verdict python3 -c '
import sys, verdict as V
for i in range(100000, 120000):
    print(V.build("ip6 src=2001:db8::%x:%x / tcp dport=1 flags=S" % (i >> 16, i & 0xffff)).hex())
for i in range(119900, 120000):
    print(V.build("ip6 src=2001:db8::%x:%x / tcp dport=2 flags=S" % (i >> 16, i & 0xffff)).hex())' \
	>"$TMP/flood2.hex"
v=$("$BUILD/tests/verdict-run" -p "$TMP/flood2.hex" --pin "$PIN") || fail "verdict-run failed"
v=${v##*$'\t'}
expect_eq "after 20,000 adds expired, 20,000 new ones: the last 100 are in the set" "${v: -100}" \
	"$(printf '1%.0s' $(seq 100))"
# (an LRU map makes room a batch at a time: about 16,384)
line=$("$CGF" show "$PIN" | grep '^    @s (timeout 2 s, ')
n=$(sed -n 's/^    @s (timeout 2 s, \([0-9]*\) entries): .* \.\.\.$/\1/p' <<<"$line")
[ -n "$n" ] && [ "$n" -ge 16000 ] && [ "$n" -le 16384 ] && [ "$(grep -o 's left)' <<<"$line" | wc -l)" -eq 20 ] ||
	fail "show does not count the entries, or lists more than 20: $(cut -c1-200 <<<"$line")"
ok "show counts the entries ($n: the set is full) and lists the first 20"

# ---- what is refused ---------------------------------------------------------------------------
refused() {
	local what=$1 want=$2 rc=0; shift 2
	"$@" >/dev/null 2>"$TMP/err" || rc=$?
	[ "$rc" -ne 0 ] || fail "$what: exit 0"
	grep -q -- "$want" "$TMP/err" || fail "$what: the message lacks '$want': $(cat "$TMP/err")"
	ok "$what: $(head -n1 "$TMP/err")"
}
refused "add() of a set without a timeout" "changes a dynamic set: declare it first" \
	"$CGF" compile '@s = { 1 } add(@s, dst_port)'
refused "a dynamic set declared with items" "must start empty" \
	"$CGF" compile '@s = { 1 } timeout 5 dst_port in @s'
refused "a timeout of 0" "want a timeout of 1 to 86400 seconds" \
	"$CGF" compile '@s = { } timeout 0 dst_port in @s'
refused "an address added to a set of ports" "is a set of integers, not addresses" \
	"$CGF" compile '@s = { } timeout 5 add(@s, dst_port) && add(@s, src_ip)'
refused "classic BPF and a dynamic set" "classic BPF has no maps" \
	"$CGF" compile --classic -f "$TOP/examples/port-knocking.filter"
refused "cgfilter-wrap --classic and a dynamic set" "classic BPF has no maps" \
	"$WRAP_BIN" --classic --listen 127.0.0.1:1/udp -f "$TOP/examples/port-knocking.filter" -- true

# one name, one set: a dynamic set of the filter and a named set of the engine
"$CGF" set "$PIN" -f "$TOP/examples/port-knocking.filter" || fail "set failed"
refused "set-add to a dynamic set of the filter in force" "is a dynamic set of the filter in force" \
	"$CGF" set-add "$PIN" @open 198.51.100.7
refused "set-del from it" "is a dynamic set of the filter in force" \
	"$CGF" set-del "$PIN" @open 198.51.100.7
"$CGF" show "$PIN" | has '^    (none)$' || fail "set-add made a named set beside the dynamic one"
"$CGF" set-add "$PIN" @named 10.0.0.0/8 >/dev/null || fail "set-add failed"
refused "a dynamic set named as a named set of the engine" "the engine has a named set @named" \
	"$CGF" set "$PIN" '@named = { } timeout 5
src_ip in @named'
grep -q 'knock1' <("$CGF" show "$PIN") || fail "the refused set changed the filter in force"
ok "... and the filter in force is the one before"

# ---- port knocking with real connections ---------------------------------------------------------
sed 's/timeout 10$/timeout 3/; s/timeout 30$/timeout 3/' "$TOP/examples/port-knocking.filter" \
	>"$TMP/knock.filter"
grep -c 'timeout 3$' "$TMP/knock.filter" | has -x 3 || fail "cannot shorten the example's timeouts"
PORT=$((30000 + $$ % 2000))
"$WRAP_BIN" --listen "127.0.0.1:$PORT" -f "$TMP/knock.filter" -- python3 "$TOP/tests/wrap/echod.py" \
	>"$TMP/knock.out" 2>"$TMP/knock.err" &
WPID=$!
at_exit kill "$WPID"
# knock SPORT...: connection attempts from these source ports (the filter
# drops them: each times out), then a connection from any port: its answer
knock() {
	python3 - "$PORT" "$@" <<-'EOF'
		import socket, sys
		port, knocks = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
		for p in knocks:
		    s = socket.socket()
		    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		    s.bind(("127.0.0.1", p))
		    s.settimeout(0.3)
		    try:
		        s.connect(("127.0.0.1", port))
		        print("knock %d was answered" % p)
		        sys.exit(0)
		    except (socket.timeout, OSError):
		        pass
		    s.close()
		s = socket.socket()
		s.settimeout(1)
		try:
		    s.connect(("127.0.0.1", port))
		    s.sendall(b"hi")
		    print(s.recv(100).decode())
		except (socket.timeout, OSError):
		    print("refused")
	EOF
}
for _ in $(seq 50); do [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && break; sleep 0.1; done
expect_eq "no knock: refused" "$(knock)" refused
expect_eq "knocks in the wrong order: refused" "$(knock 15001 15000 15002)" refused
expect_eq "a knock repeated: refused" "$(knock 15000 15002 15001)" refused
expect_eq "knocks 15000, 15001, 15002: answered" "$(knock 15000 15001 15002)" "tcp-$PORT:hi"
expect_eq "... and again within the timeout" "$(knock)" "tcp-$PORT:hi"
sleep 3.2
expect_eq "after the timeout: refused again" "$(knock)" refused
knock 15000 >/dev/null
sleep 3.2
expect_eq "knocks too slow (the first expired): refused" "$(knock 15001 15002)" refused
