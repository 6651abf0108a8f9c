#!/usr/bin/env bash
# cgfilter on the real kernel: load, set, set-add/set-del, show, stats,
# monitor, check, unload; loopback traffic from a process in a cgroup follows
# every change; bad input (malformed filters, unknown sets, bad CIDRs, huge
# filters, bad set items) is refused with a clear message and changes
# nothing; concurrent 'set' commands are serialised.
. "$(dirname "$0")/lib.sh"

need_root
need_cgroup2
need_bpffs
need_cmd bpftool setpriv
CGF=$BUILD/cgfilter/cgfilter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$CGF" "$PROBE"; do
	[ -x "$p" ] || skip "$p is not built (make cgfilter tools)"
done

make_tmpdir TMP
CG=$CG2/$T_ID-cgfilter
make_cgroup "$CG"
PIN=/sys/fs/bpf/${T_ID}_cgf
rm_engine() {
	bpftool cgroup detach "$CG" egress pinned "$1" 2>/dev/null
	bpftool cgroup detach "$CG" ingress pinned "$1" 2>/dev/null
	rm -rf "$1" "$1_maps"
}
at_exit rm_engine "$PIN"

# expect_refused DESC EXPECTED-MESSAGE-PART CMD...: exit 1, message on stderr
expect_refused() {
	local what=$1 want=$2 rc=0
	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ $rc -eq 1 ] || fail "$what: exit $rc, want 1 ($(cat "$TMP/err"))"
	grep -qF -- "$want" "$TMP/err" || fail "$what: message lacks '$want': $(cat "$TMP/err")"
	ok "$what"
}
state() { "$CGF" show "$PIN" --code | grep -v -e '^  passed' -e '^  dropped'; }

# ---- usage ----------------------------------------------------------------------
for c in load set register unregister set-add set-del show list stats monitor check unload compile; do
	"$CGF" "$c" --help >"$TMP/help" || fail "cgfilter $c --help failed"
	grep -q "^Usage: cgfilter $c" "$TMP/help" || fail "cgfilter $c --help: no usage line"
done
ok "--help for every command"
rc=0; "$CGF" frobnicate >/dev/null 2>&1 || rc=$?
expect_eq "an unknown command exits 2" "$rc" 2
rc=0; "$CGF" load "$PIN" >/dev/null 2>&1 || rc=$?
expect_eq "load without a filter exits 2" "$rc" 2
rc=0; "$CGF" load --int-sets 0 "$PIN" tcp >/dev/null 2>&1 || rc=$?
expect_eq "a bad option value exits 2" "$rc" 2
rc=0; "$CGF" set --shared "$PIN" tcp 2>"$TMP/err" || rc=$?
expect_eq "an option of another command is refused" "$rc:$(cat "$TMP/err")" \
	"2:cgfilter set: option --shared does not apply to set (see 'cgfilter set --help')"
[ ! -e "$PIN" ] || fail "a usage error pinned something"

# ---- bad filters at load pin nothing ------------------------------------------------
expect_refused "load refuses a malformed filter" "column 8: unexpected ';'" \
	"$CGF" load "$PIN" 'tcp && ;'
[ ! -e "$PIN" ] && [ ! -e "${PIN}_maps" ] || fail "a refused load left pins"
ok "a refused load pins nothing"
expect_refused "a name with '.' is refused" "may not contain '.'" \
	"$CGF" load "/sys/fs/bpf/$T_ID.x" tcp

# ---- load, attach, traffic ------------------------------------------------------------
start_listener() { # PROTO PORT: an echo server outside the cgroup
	"$PROBE" listen "$1" "$2" -a 127.0.0.1 >"$TMP/listen-$1-$2" 2>&1 &
	at_exit kill $!
	for _ in $(seq 50); do
		grep -q listening "$TMP/listen-$1-$2" && return 0
		sleep 0.1
	done
	fail "no $1 listener on port $2"
}
P1=$((20000 + $$ % 400 * 2 + 1000))
P2=$((P1 + 1))
[ "$P2" -lt 22000 ] || P1=21990 P2=21991
start_listener udp "$P1"
start_listener udp "$P2"
start_listener tcp "$P1"
# in_cg CMD...: run CMD in the test cgroup
in_cg() { bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cg "$CG" "$@"; }
passes() { in_cg "$PROBE" send "$1" 127.0.0.1 "$2" -t 400 >/dev/null 2>&1; }
expect_pass() { if passes "$1" "$2"; then ok "$3"; else fail "$3: $1 to port $2 was dropped"; fi; }
expect_drop() { if passes "$1" "$2"; then fail "$3: $1 to port $2 passed"; else ok "$3"; fi; }

expect_ok "load a filter" "$CGF" load "$PIN" "udp && dst_port == $P1"
[ "$(bpftool -j prog show pinned "$PIN" | sed -n 's/.*"type":"\([a-z_]*\)".*/\1/p')" = cgroup_skb ] ||
	fail "the pin is not a cgroup_skb program"
ok "the pin is a cgroup_skb program"
expect_ok "cgfilter check accepts it" "$CGF" check -q "$PIN"
expect_ok "bpftool attaches the pin" bpftool cgroup attach "$CG" egress pinned "$PIN" multi
expect_pass udp "$P1" "the allowed port passes"
expect_drop udp "$P2" "another port is dropped"
expect_drop tcp "$P1" "tcp is dropped"

"$CGF" stats "$PIN" --json >"$TMP/stats"
grep -q '"passed_packets":1,' "$TMP/stats" || fail "stats: $(cat "$TMP/stats")"
grep -q '"dropped_packets":[1-9]' "$TMP/stats" || fail "stats: $(cat "$TMP/stats")"
ok "stats count the passed datagram and the drops"
"$CGF" show "$PIN" >"$TMP/show"
grep -q "^  filter: udp && dst_port == $P1\$" "$TMP/show" || fail "show: no filter: $(cat "$TMP/show")"
grep -q "^    /$T_ID-cgfilter egress\$" "$TMP/show" || fail "show: no cgroup: $(cat "$TMP/show")"
grep -q "(no cgroup)" "$TMP/show" && fail "show says '(no cgroup)' beside an attached one: $(cat "$TMP/show")"
ok "show names the filter and the attached cgroup"
"$CGF" list >"$TMP/list"
grep -q "^$PIN  dedicated" "$TMP/list" || fail "list does not show $PIN: $(cat "$TMP/list")"
ok "list shows the filter"

# ---- set changes what passes, live ------------------------------------------------------
expect_ok "set widens the filter" "$CGF" set "$PIN" "udp && dst_port in { $P1, $P2 } || tcp"
expect_pass udp "$P2" "after set, the second port passes"
expect_pass tcp "$P1" "after set, tcp passes"
expect_ok "set narrows it" "$CGF" set "$PIN" "tcp"
expect_drop udp "$P1" "after narrowing, udp is dropped"

# ---- named sets, edited live --------------------------------------------------------------
expect_ok "a filter with a declared address set" \
	"$CGF" set "$PIN" "@peers = { 10.0.0.0/8 } udp && dst_ip in @peers"
expect_drop udp "$P1" "127.0.0.1 is not in @peers"
expect_ok "set-add 127.0.0.1" "$CGF" set-add "$PIN" @peers 127.0.0.1
expect_pass udp "$P1" "after set-add, 127.0.0.1 passes"
"$CGF" show "$PIN" | has '^    @peers (addresses, 2 prefixes): 10.0.0.0/8, 127.0.0.1$' ||
	fail "show does not count @peers right: $("$CGF" show "$PIN")"
ok "show counts and lists @peers"
expect_ok "set-del 127.0.0.1" "$CGF" set-del "$PIN" @peers 127.0.0.1/32
expect_drop udp "$P1" "after set-del, it is dropped again"
expect_ok "set-add creates a port set" "$CGF" set-add "$PIN" @ports "$P2" 7..9
expect_ok "a filter using both sets, not declaring them" \
	"$CGF" set "$PIN" "udp && (dst_ip in @peers || dst_port in @ports)"
expect_pass udp "$P2" "a port in @ports passes"
expect_drop udp "$P1" "a port outside both sets is dropped"
"$CGF" show "$PIN" >"$TMP/show"
grep -q "@ports (integers, 4 values): 7..9, $P2" "$TMP/show" || fail "show sets: $(cat "$TMP/show")"
ok "show lists set contents"

# ---- bad input changes nothing --------------------------------------------------------------
before=$(state)
expect_refused "unknown name" "column 8: unknown name 'foo'" "$CGF" set "$PIN" 'tcp && foo'
expect_refused "unknown set" "unknown set @nope" "$CGF" set "$PIN" 'dst_port in @nope'
expect_refused "CIDR with host bits" "host bits" "$CGF" set "$PIN" 'src_ip in { 10.0.0.1/8 }'
expect_refused "IPv4 prefix too long" "10.0.0.0/33" "$CGF" set "$PIN" 'src_ip in { 10.0.0.0/33 }'
expect_refused "IPv6 prefix too long" "fd00::/129" "$CGF" set "$PIN" 'dst_ip in { fd00::/129 }'
expect_refused "port out of range" "70000" "$CGF" set "$PIN" 'dst_port in { 70000 }'
expect_refused "type mismatch" "is a set of addresses" "$CGF" set "$PIN" 'dst_port in @peers'
expect_refused "a quote" "column 1" "$CGF" set "$PIN" "'tcp'"
expect_refused "a prefix written with a space" "column 20: write a prefix without spaces" \
	"$CGF" set "$PIN" 'src_ip == 10.0.0.0 /8'
expect_refused "an empty filter" "empty filter" "$CGF" set "$PIN" ' # nothing'
python3 -c 'print(" || ".join("dst_port in { %d, %d, %d, %d, %d }" % tuple(range(5 * i, 5 * i + 5)) for i in range(70)))' >"$TMP/big"
expect_refused "a filter too large for the engine (70 literal sets: more maps than a program may have)" \
	"filter too large" "$CGF" set "$PIN" -f "$TMP/big"
python3 -c 'print("+".join(["len"] * 60000))' >"$TMP/big"
expect_refused "a filter too large for the language (120,000 terms)" "filter too large" \
	"$CGF" set "$PIN" -f "$TMP/big"
deep=$(printf '%.0s(' $(seq 300))tcp$(printf '%.0s)' $(seq 300))
expect_refused "a filter nested too deep" "nested" "$CGF" set "$PIN" "$deep"
expect_refused "set-add of a bad prefix" "host bits" "$CGF" set-add "$PIN" @peers 10.1.2.3/8
expect_refused "set-add of a port to an address set" "bad element" "$CGF" set-add "$PIN" @peers 80
expect_refused "set-add of an address to a port set" "holds integers" "$CGF" set-add "$PIN" @ports 10.0.0.1
expect_refused "set-del from an unknown set" "unknown set @nope" "$CGF" set-del "$PIN" @nope 1
expect_refused "load over an existing pin" "File exists" "$CGF" load "$PIN" tcp
expect_eq "refused commands changed nothing" "$(state)" "$before"
expect_pass udp "$P2" "and the filter still works"

# ---- concurrent commands are serialised ------------------------------------------------------
gen0=$("$CGF" show "$PIN" | sed -n "s/.*(generation \([0-9]*\).*/\1/p")
pids=()
for i in $(seq 20); do
	"$CGF" set "$PIN" "udp && dst_port in @ports || dst_port == $i" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent set failed"; done
gen1=$("$CGF" show "$PIN" | sed -n "s/.*(generation \([0-9]*\).*/\1/p")
expect_eq "20 concurrent sets each made one generation" "$gen1" $((gen0 + 20))
expect_pass udp "$P2" "after concurrent sets the set still works"

# ---- a replaced filter's literal sets are freed -----------------------------------------------
# the kernel frees a program and the maps only it used when it is replaced
filter_maps() { # the map ids of the filter in force
	local id
	id=$("$CGF" show --json "$PIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["filter_program_id"])')
	bpftool -j prog show id "$id" | python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["map_ids"])))'
}
gone() { for id in "$@"; do ! bpftool map show id "$id" >/dev/null 2>&1 || return 1; done; }
expect_ok "a filter with literal sets" \
	"$CGF" set "$PIN" "src_ip in { 192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32, 203.0.113.0/24, 10.1.0.0/16, 10.2.0.0/16 } || dst_port in { 1, 2, 3, 4, 5, 6 }"
# its own maps (the engine's and @ports stay)
own=()
for id in $(filter_maps); do
	name=$(bpftool -j map show id "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
	case $name in cgf_lit | cgf_info) own+=("$id") ;; esac
done
[ ${#own[@]} -ge 3 ] || fail "the literal sets and text had no maps of their own: ${own[*]}"
expect_ok "replaced by one without" "$CGF" set "$PIN" "udp && dst_port in @ports"
for _ in $(seq 50); do gone "${own[@]}" && break; sleep 0.1; done
gone "${own[@]}" || fail "the maps of the replaced filter (${own[*]}) are still there"
ok "the maps only the replaced filter used went with it"

# ---- monitor shows drops, rate-limited ---------------------------------------------------------
"$CGF" monitor "$PIN" -c 1 -t 5000 --json >"$TMP/mon" 2>&1 &
mon=$!
sleep 0.5
passes udp "$P1" || true
wait "$mon" || fail "monitor saw no drop: $(cat "$TMP/mon")"
grep -q "\"proto\":\"udp\",\"src\":\"127.0.0.1\",\"sport\":[0-9]*,\"dst\":\"127.0.0.1\",\"dport\":$P1," "$TMP/mon" ||
	fail "monitor line: $(cat "$TMP/mon")"
grep -q "\"cgroup\":\"/$T_ID-cgfilter\"" "$TMP/mon" || fail "monitor cgroup: $(cat "$TMP/mon")"
ok "monitor shows the dropped datagram and its cgroup"

# a monitor watches the engine it opened: loaded again, the monitor says so
# and fails (its unit's Restart= then watches the new one)
PIN3=/sys/fs/bpf/${T_ID}_cgf_mon
at_exit rm_engine "$PIN3"
expect_ok "load an engine to watch" "$CGF" load "$PIN3" udp
"$CGF" monitor "$PIN3" -t 20000 >"$TMP/mon3" 2>&1 &
mon=$!
at_exit kill "$mon"
sleep 0.5
"$CGF" unload "$PIN3" && "$CGF" load "$PIN3" udp || fail "cannot load $PIN3 again"
rc=0
wait "$mon" || rc=$?
[ "$rc" = 1 ] && grep -q "$PIN3 is no longer the engine this monitor watches" "$TMP/mon3" ||
	fail "monitor of an engine loaded again: exit $rc: $(cat "$TMP/mon3")"
ok "a monitor of an engine loaded again says so and exits 1"

# ---- a flood of drops is rate-limited ---------------------------------------------------------
PIN2=/sys/fs/bpf/${T_ID}_cgf_rl
at_exit rm_engine "$PIN2"
expect_ok "load with 2 drop events per second and CPU" \
	"$CGF" load --events-per-sec 2 "$PIN2" "udp && dst_port == 1"
bpftool cgroup detach "$CG" egress pinned "$PIN" || fail "cannot detach the first engine"
expect_ok "attach it" bpftool cgroup attach "$CG" egress pinned "$PIN2" multi
flood() {
	in_cg bash -c 'for i in $(seq 50); do "$1" send udp 127.0.0.1 "$2" -t 1 >/dev/null 2>&1; done' \
		flood "$PROBE" "$P1" || true
}
flood
"$CGF" stats "$PIN2" --json >"$TMP/stats"
grep -q '"dropped_packets":50,.*"events":0,"events_suppressed":0' "$TMP/stats" ||
	fail "drops made events with no monitor running: $(cat "$TMP/stats")"
ok "with no monitor running, drops make no events"
"$CGF" monitor "$PIN2" -t 20000 --json >"$TMP/mon2" 2>&1 &
mon=$!
at_exit kill "$mon"
sleep 0.5
flood
kill -TERM "$mon"
wait "$mon" || fail "monitor did not exit 0 on SIGTERM"
"$CGF" stats "$PIN2" --json >"$TMP/stats"
ev=$(sed -n 's/.*"events":\([0-9]*\).*/\1/p' "$TMP/stats")
sup=$(sed -n 's/.*"events_suppressed":\([0-9]*\).*/\1/p' "$TMP/stats")
grep -q '"dropped_packets":100,' "$TMP/stats" || fail "100 datagrams, not 100 drops: $(cat "$TMP/stats")"
ncpu=$(nproc)
[ "$ev" -ge 1 ] && [ "$ev" -le $((2 * ncpu * 2)) ] && [ $((ev + sup)) -eq 50 ] ||
	fail "rate limit: $ev events, $sup suppressed for 50 drops on $ncpu CPUs"
expect_eq "monitor printed one line per event" "$(grep -c '"proto":"udp"' "$TMP/mon2")" "$ev"
ok "50 drops gave $ev events and $sup suppressed (limit 2 a second per CPU)"
bpftool cgroup detach "$CG" egress pinned "$PIN2" || fail "cannot detach"
bpftool cgroup attach "$CG" egress pinned "$PIN" multi || fail "cannot reattach"

# ---- list and stats cannot pass over an engine they cannot read ---------------------------------
for c in list "stats --prometheus"; do
	rc=0
	# shellcheck disable=SC2086
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CGF" $c >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 1 ] && ! grep -q "no cgfilter filters" "$TMP/out" ||
		fail "$c as nobody, who cannot read the engines: exit $rc: $(cat "$TMP/out" "$TMP/err")"
done
ok "list and stats --prometheus as a user who cannot read the engines fail, saying why"
# an engine whose PIN_maps/ was removed by hand: named, not passed over
PIN4=/sys/fs/bpf/${T_ID}_nomaps
at_exit rm -rf "$PIN4" "${PIN4}_maps"
"$CGF" load "$PIN4" udp >/dev/null || fail "cannot load $PIN4"
rm -rf "${PIN4}_maps"
for c in list "stats --prometheus"; do
	rc=0
	# shellcheck disable=SC2086
	"$CGF" $c >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 1 ] && has -xF "cgfilter: cannot read $PIN4: its maps (${PIN4}_maps/) are gone: unload it and load it again" "$TMP/err" ||
		fail "$c with an engine whose maps are gone: exit $rc: $(cat "$TMP/err")"
done
"$CGF" unload "$PIN4" >/dev/null 2>&1 || fail "cannot unload an engine whose maps are gone"
[ ! -e "$PIN4" ] || fail "unload left $PIN4"
ok "list and stats --prometheus name an engine whose maps are gone (exit 1); unload removes it"

# ---- check refuses what systemd would attach badly -----------------------------------------------
expect_refused "check: a missing pin" "no such pin" "$CGF" check "/sys/fs/bpf/${T_ID}_none"
expect_refused "check: a map" "not a BPF program" "$CGF" check "${PIN}_maps/stats"
WRONG=/sys/fs/bpf/${T_ID}_wrong
at_exit rm -f "$WRONG"
bpftool prog load "$BUILD/bpf-program-only/cgroup_sock_drop.bpf.o" "$WRONG" type socket ||
	fail "cannot load a socket filter for the check test"
expect_refused "check: a socket filter" "not cgroup_skb" "$CGF" check "$WRONG"

# ---- unload ------------------------------------------------------------------------------------
expect_ok "unload" "$CGF" unload "$PIN" --detach
[ ! -e "$PIN" ] && [ ! -e "${PIN}_maps" ] || fail "unload left pins"
bpftool cgroup show "$CG" | has . && fail "unload --detach left an attachment"
ok "unload --detach removed the pins and the attachment"
expect_refused "unload of a missing pin" "cannot unload $PIN: no such pin: the filter is not loaded" "$CGF" unload "$PIN"
expect_refused "show of a file that is not a pin" "cannot open /etc/passwd: not a pin: it is not on a BPF filesystem" \
	"$CGF" show /etc/passwd
expect_refused "check of a directory" "/sys/fs/bpf: a directory, not a pin" "$CGF" check /sys/fs/bpf

# ---- the environment and the output ---------------------------------------------------------------
LT=/sys/fs/bpf/${T_ID}_lt
at_exit "$CGF" unload "$LT"
for v in 0 604801 abc -5 1.5 ' 60' 99999999999999999999; do
	rc=0
	CGFILTER_NAME_LIFETIME=$v "$CGF" load "$LT" 'dst_ip in { localhost }' >/dev/null 2>"$TMP/err" || rc=$?
	expect_eq "CGFILTER_NAME_LIFETIME='$v': a filter naming a host is refused, saying why" \
		"$rc:$(grep -c "cannot resolve host name 'localhost': bad \$CGFILTER_NAME_LIFETIME '$v': give whole seconds from 1 to 604800, or unset it" "$TMP/err")" "1:1"
	[ ! -e "$LT" ] || fail "a load refused for CGFILTER_NAME_LIFETIME='$v' pinned $LT"
done
CGFILTER_NAME_LIFETIME=abc "$CGF" load "$LT" tcp >/dev/null || fail "CGFILTER_NAME_LIFETIME=abc refused a filter without names"
CGFILTER_NAME_LIFETIME=abc "$CGF" unload "$LT" || fail "CGFILTER_NAME_LIFETIME=abc refused an unload"
for v in 604800 ''; do
	CGFILTER_NAME_LIFETIME=$v "$CGF" load "$LT" 'dst_ip in { localhost }' >/dev/null ||
		fail "CGFILTER_NAME_LIFETIME='$v' refused"
	"$CGF" unload "$LT" || fail "cannot unload $LT"
done
ok "CGFILTER_NAME_LIFETIME: 1..604800 or empty taken; with another value no name resolves, and the rest works"
for args in --help --version "help run" "compile tcp" "wrap --print tcp"; do
	rc=0
	# shellcheck disable=SC2086
	"$CGF" $args >/dev/full 2>"$TMP/err" || rc=$?
	expect_eq "cgfilter $args to /dev/full fails" "$rc:$(grep -c 'cannot write the output: No space left on device' "$TMP/err")" "1:1"
done
rc=0
"$CGF" compile "$(printf -- '-%.0s' $(seq 10000))1" 2>"$TMP/err" || rc=$?
[ "$rc" = 2 ] && [ "$(wc -c <"$TMP/err")" -lt 300 ] ||
	fail "a 10,000-byte unknown option: exit $rc, a message of $(wc -c <"$TMP/err") bytes"
printf '\xff\x01 tcp' >"$TMP/bad.f"
"$CGF" compile -f "$TMP/bad.f" >/dev/null 2>"$TMP/err" && fail "a filter of bytes that are no text compiled"
LC_ALL=C grep -q "$(printf '[\001\377]')" "$TMP/err" && fail "the message shows raw bytes: $(od -c "$TMP/err" | head)"
grep -qxF '  ?? tcp' "$TMP/err" || fail "the excerpt does not show '??' for the bytes: $(cat "$TMP/err")"
ok "a huge option is not echoed whole; bytes that are no text are '?' in the excerpt"

