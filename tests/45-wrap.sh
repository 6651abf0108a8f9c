#!/usr/bin/env bash
# cgfilter wrap / cgfilter-wrap with real sockets, in a network namespace of
# the test's own: an ordinary user filters a UDP daemon with no privilege, a
# TCP daemon with a copy of cgfilter-wrap that carries cap_net_admin=ep, and
# the daemon runs with no capability; sockets inherited through LISTEN_FDS
# keep their names and get the filter; what cannot be filtered is refused
# and the daemon never runs.  Verdicts: the filters here pass 127.0.0.2 and
# fd00::2, the clients come from those and from 127.0.0.3 / fd00::3.
. "$(dirname "$0")/lib.sh"

need_root
need_cmd python3 setpriv setcap ip unshare strace
if [ -z "${T_NETNS:-}" ]; then
	# our own network namespace: loopback only, gone when the test ends
	T_NETNS=1 exec unshare -n -- "$0" "$@"
fi
ip link set lo up
ip -6 addr add fd00::2/128 dev lo nodad
ip -6 addr add fd00::3/128 dev lo nodad

WRAP_BIN=$BUILD/wrap/cgfilter-wrap
CGF=$BUILD/cgfilter/cgfilter
for p in "$WRAP_BIN" "$CGF"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
# what user nobody runs must be readable by it: copies in a directory of its own
chmod 755 "$TMP"
mkdir -m 1777 "$TMP/run"
cp "$WRAP_BIN" "$TMP/cgfilter-wrap"
cp "$WRAP_BIN" "$TMP/cgfilter-wrap-cap"
setcap cap_net_admin=ep "$TMP/cgfilter-wrap-cap" || skip "this file system keeps no file capabilities"
cp "$TOP/tests/wrap/echod.py" "$TMP/echod.py"
chmod 755 "$TMP"/cgfilter-wrap* "$TMP/echod.py"
NOBODY=(setpriv --reuid nobody --regid nogroup --clear-groups)
PORT=$((30000 + $$ % 2000))

# wclient PROTO SRC DST PORT: the echo's answer, or "timeout"
wclient() {
	python3 - "$@" <<-'EOF'
		import socket, sys
		proto, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
		s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET,
		                  socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
		s.settimeout(1.5)
		s.bind((src, 0))
		try:
		    if proto == "tcp":
		        s.connect((dst, port))
		        s.sendall(b"hi")
		    else:
		        s.sendto(b"hi", (dst, port))
		    print(s.recv(100).decode())
		except socket.timeout:
		    print("timeout")
		except OSError as e:
		    print("error %s" % e.strerror)
	EOF
}
# answers WHAT PROTO SRC DST PORT WANT: the client gets WANT
answers() { expect_eq "$1" "$(wclient "$2" "$3" "$4" "$5")" "$6"; }

DAEMONS=()
stop_daemons() { local p; for p in "${DAEMONS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
at_exit stop_daemons
# daemon NAME CMD...: start CMD (a wrap around echod.py) and wait until
# echod serves; its pid in DPID; fails with wrap's message if it ends first
daemon() {
	local name=$1 i; shift
	rm -f "$TMP/run/$name"
	ECHOD_READY=$TMP/run/$name "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	DAEMONS+=($!)
	for i in $(seq 100); do
		[ -e "$TMP/run/$name" ] && break
		kill -0 $! 2>/dev/null || fail "$name did not start: $(cat "$TMP/$name.err")"
		sleep 0.05
	done
	[ -e "$TMP/run/$name" ] || fail "$name did not start in 5 s: $(cat "$TMP/$name.err")"
	read -r _ DPID _ <"$TMP/run/$name"
}
# no_caps PID: the daemon holds no capability and cannot gain one
no_caps() {
	local st
	st=$(grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' "/proc/$1/status" | tr -s '\t ' ' ')
	expect_eq "$2" "$st" "$(printf 'CapInh: 0000000000000000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapAmb: 0000000000000000\nNoNewPrivs: 1')"
}

FILTER='src_ip == 127.0.0.2 || src_ip == fd00::2'

# ---- UDP as nobody, with no privilege at all ---------------------------------
p=$PORT
daemon udp "${NOBODY[@]}" "$TMP/cgfilter-wrap" --listen "127.0.0.1:$p/udp" "$FILTER" -- "$TMP/echod.py"
answers "UDP, no privilege: 127.0.0.2 is answered" udp 127.0.0.2 127.0.0.1 $p "udp-$p:hi"
answers "UDP, no privilege: 127.0.0.3 is not" udp 127.0.0.3 127.0.0.1 $p timeout
no_caps "$DPID" "the UDP daemon holds no capability"
expect_eq "the daemon runs as nobody" "$(stat -c %U "/proc/$DPID")" nobody

# ---- TCP: refused without CAP_NET_ADMIN, saying why and what to grant ------------------
RC=0
ECHOD_READY=$TMP/run/never "${NOBODY[@]}" "$TMP/cgfilter-wrap" --listen "127.0.0.1:$((p + 1))" "$FILTER" \
	-- "$TMP/echod.py" 2>"$TMP/err" || RC=$?
expect_eq "TCP without the capability fails" "$RC" 1
grep -q 'CAP_NET_ADMIN' "$TMP/err" && grep -q 'setcap cap_net_admin=ep' "$TMP/err" &&
	grep -q '5d39580f68e6' "$TMP/err" ||
	fail "the message does not say why and what to grant: $(cat "$TMP/err")"
ok "the message says why (the kernel change) and what to grant: $(head -c 70 "$TMP/err")..."
[ ! -e "$TMP/run/never" ] || fail "the daemon ran although its socket has no filter"
ok "and the daemon never ran"

# ---- TCP with the capability on cgfilter-wrap only ---------------------------------
p=$((PORT + 2))
daemon tcp "${NOBODY[@]}" "$TMP/cgfilter-wrap-cap" --listen "127.0.0.1:$p" "$FILTER" -- "$TMP/echod.py"
answers "TCP with cap_net_admin on wrap: 127.0.0.2 is answered" tcp 127.0.0.2 127.0.0.1 $p "tcp-$p:hi"
answers "TCP: 127.0.0.3 is not (its SYN is dropped)" tcp 127.0.0.3 127.0.0.1 $p timeout
no_caps "$DPID" "the TCP daemon holds no capability, although wrap had one"

# ---- [::] takes IPv4 and IPv6, TCP and UDP ------------------------------------------
p=$((PORT + 3))
daemon dual "${NOBODY[@]}" "$TMP/cgfilter-wrap-cap" --listen "[::]:$p" --listen "[::]:$p/udp" "$FILTER" \
	-- "$TMP/echod.py"
answers "[::] TCP: IPv4 from 127.0.0.2 answered" tcp 127.0.0.2 127.0.0.1 $p "tcp-$p:hi"
answers "[::] TCP: IPv4 from 127.0.0.3 not" tcp 127.0.0.3 127.0.0.1 $p timeout
answers "[::] TCP: IPv6 from fd00::2 answered" tcp fd00::2 fd00::2 $p "tcp-$p:hi"
answers "[::] TCP: IPv6 from fd00::3 not" tcp fd00::3 fd00::2 $p timeout
answers "[::] UDP: IPv6 from fd00::2 answered" udp fd00::2 fd00::2 $p "udp-$p:hi"
answers "[::] UDP: IPv6 from fd00::3 not" udp fd00::3 fd00::2 $p timeout
answers "[::] UDP: IPv4 from 127.0.0.2 answered" udp 127.0.0.2 127.0.0.1 $p "udp-$p:hi"

# ---- the fields of a socket's packets mean what they mean everywhere -------------------
# "hi" over UDP: IPv4 20 + 8 + 2 bytes, IPv6 40 + 8 + 2
p=$((PORT + 4))
daemon len "${NOBODY[@]}" "$TMP/cgfilter-wrap" --listen "[::]:$p/udp" \
	"(ip && len == 30 && ttl == 64 || ipv6 && len == 50) && udp && dst_port == $p && src_port > 1023 && !frag" \
	-- "$TMP/echod.py"
answers "len, ttl and ports of a UDP socket's packets, IPv4" udp 127.0.0.3 127.0.0.1 $p "udp-$p:hi"
answers "and IPv6" udp fd00::3 fd00::2 $p "udp-$p:hi"
p=$((PORT + 5))
daemon len2 "${NOBODY[@]}" "$TMP/cgfilter-wrap" --listen "[::]:$p/udp" "len == 31 || len == 51" -- "$TMP/echod.py"
answers "a len one byte off drops, IPv4" udp 127.0.0.2 127.0.0.1 $p timeout
answers "and IPv6" udp fd00::2 fd00::2 $p timeout

# ---- the daemon cannot remove the filter ------------------------------------------------
p=$((PORT + 6))
RC=0
"${NOBODY[@]}" "$TMP/cgfilter-wrap" --listen "127.0.0.1:$p/udp" 'udp' -- python3 -c '
import socket, sys
s = socket.socket(fileno=3)
try:
    s.setsockopt(socket.SOL_SOCKET, 27, 0)   # SO_DETACH_FILTER
except PermissionError:
    sys.exit(3)
sys.exit(0)' 2>"$TMP/err" || RC=$?
expect_eq "the filter is locked: SO_DETACH_FILTER fails with EPERM in the daemon" "$RC" 3

# ---- inherited sockets: a .socket unit's, through LISTEN_FDS ------------------------------
# activate NAME CMD...: start a systemd-socket-activate CMD, which starts
# its command at the first packet: "$TMP/NAME.err" has its messages
activate() {
	local name=$1 i; shift
	rm -f "$TMP/run/$name"
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	DAEMONS+=($!)
	for i in $(seq 100); do
		grep -q 'Listening on' "$TMP/$name.err" && return 0
		sleep 0.05
	done
	fail "$name: systemd-socket-activate did not listen: $(cat "$TMP/$name.err")"
}
# started NAME: wait until echod of NAME serves
started() {
	local i
	for i in $(seq 100); do
		[ -e "$TMP/run/$1" ] && return 0
		sleep 0.05
	done
	fail "$1 did not start: $(cat "$TMP/$1.err")"
}
if command -v systemd-socket-activate >/dev/null; then
	p=$((PORT + 7))
	activate inh "${NOBODY[@]}" systemd-socket-activate -E ECHOD_READY=$TMP/run/inh -l "127.0.0.1:$p" \
		-l "127.0.0.1:$((p + 1))" --fdname=web:admin "$TMP/cgfilter-wrap-cap" "$FILTER" -- "$TMP/echod.py"
	# the connection that starts the service came before any filter: reset
	got=$(wclient tcp 127.0.0.3 127.0.0.1 $p)
	started inh
	case $got in
	"error Connection reset by peer" | timeout) ;;
	*) fail "the connection that started the service, from an address the filter drops, got '$got'" ;;
	esac
	grep -q 'reset 1 connection that arrived before the filter was attached' "$TMP/inh.err" ||
		fail "the queued connection was not reset, or not said: $(cat "$TMP/inh.err")"
	ok "the connection queued before the filter (it started the service) is reset, and said so"
	expect_eq "LISTEN_FDS passed on with the names" "$(cut -d' ' -f3- "$TMP/run/inh")" "2 web:admin"
	answers "an inherited socket gets the filter: 127.0.0.2 answered" tcp 127.0.0.2 127.0.0.1 $p "web:hi"
	answers "127.0.0.3 not" tcp 127.0.0.3 127.0.0.1 $p timeout
	answers "the second inherited socket too" tcp 127.0.0.3 127.0.0.1 $((p + 1)) timeout
	answers "and its name is kept" tcp 127.0.0.2 127.0.0.1 $((p + 1)) "admin:hi"

	# inherited and created: both, inherited first
	p=$((PORT + 9))
	activate mix "${NOBODY[@]}" systemd-socket-activate -E ECHOD_READY=$TMP/run/mix --datagram \
		-l "127.0.0.1:$p" --fdname=dns "$TMP/cgfilter-wrap" --listen "127.0.0.1:$((p + 1))/udp" \
		"$FILTER" -- "$TMP/echod.py"
	answers "the datagram that starts the service is dropped" udp 127.0.0.2 127.0.0.1 $p timeout
	started mix
	grep -q 'dropped 1 datagram that arrived before' "$TMP/mix.err" ||
		fail "the queued datagram was not dropped, or not said: $(cat "$TMP/mix.err")"
	expect_eq "inherited and --listen sockets together, in order" "$(cut -d' ' -f3- "$TMP/run/mix")" \
		"2 dns:udp-$((p + 1))"
	answers "the inherited UDP socket is filtered" udp 127.0.0.3 127.0.0.1 $p timeout
	answers "and serves" udp 127.0.0.2 127.0.0.1 $p "dns:hi"

	# Accept=yes hands over a connection that no filter judged: refused
	p=$((PORT + 11))
	"${NOBODY[@]}" systemd-socket-activate --accept -l "127.0.0.1:$p" \
		"$TMP/cgfilter-wrap-cap" "$FILTER" -- "$TMP/echod.py" >/dev/null 2>"$TMP/acc.err" &
	DAEMONS+=($!)
	sleep 0.3
	wclient tcp 127.0.0.3 127.0.0.1 $p >/dev/null
	for _ in $(seq 50); do grep -q . "$TMP/acc.err" && break; sleep 0.1; done
	grep -q 'is a TCP connection (Accept=yes?)' "$TMP/acc.err" ||
		fail "a connection passed in was not refused: $(cat "$TMP/acc.err")"
	ok "a connection passed in (Accept=yes) is refused: it was accepted before any filter"
else
	[ -z "${CGF_NO_SKIP:-}" ] || fail "systemd-socket-activate is missing (apt-get install systemd)"
	info "systemd-socket-activate is missing: inherited sockets are tested with python below only"
fi

# what was queued before the filter is dropped, not handed to the daemon
p=$((PORT + 12))
python3 - "$p" "$TMP" "${NOBODY[@]}" "$TMP/cgfilter-wrap" "$FILTER" -- "$TMP/echod.py" <<-'EOF' >"$TMP/q.out" 2>"$TMP/q.err" &
	import os, socket, sys
	port, tmp, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("127.0.0.1", port))
	c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	c.bind(("127.0.0.3", 0))
	c.sendto(b"early", ("127.0.0.1", port))   # queued before any filter
	if s.fileno() != 3:
	    os.dup2(s.fileno(), 3)
	os.set_inheritable(3, True)
	os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="early",
	                  ECHOD_READY=tmp + "/run/queued")
	os.execvp(cmd[0], cmd)
EOF
DAEMONS+=($!)
for _ in $(seq 100); do [ -e "$TMP/run/queued" ] && break; sleep 0.05; done
[ -e "$TMP/run/queued" ] || fail "the daemon on an inherited socket did not start: $(cat "$TMP/q.err")"
grep -q 'dropped 1 datagram that arrived before the filter was attached' "$TMP/q.err" ||
	fail "a datagram queued before the filter was not dropped, or not said: $(cat "$TMP/q.err")"
ok "a datagram queued before the filter is dropped, and said so"
answers "the inherited socket then serves what the filter passes" udp 127.0.0.2 127.0.0.1 $p "early:hi"

# ---- what cannot be filtered never runs the daemon ------------------------------------
refused() {
	local what=$1 want=$2; shift 2
	rm -f "$TMP/ran"
	RC=0
	"$@" 2>"$TMP/err" >/dev/null || RC=$?
	[ "$RC" -ne 0 ] || fail "$what: exit 0"
	[ ! -e "$TMP/ran" ] || fail "$what: the command ran"
	grep -q -- "$want" "$TMP/err" || fail "$what: the message lacks '$want': $(cat "$TMP/err")"
	[ "$(wc -l <"$TMP/err")" -le 3 ] || fail "$what: more than 3 lines: $(cat "$TMP/err")"
	ok "$what: $(head -n1 "$TMP/err")"
}
W=("${NOBODY[@]}" "$TMP/cgfilter-wrap")
RUN=(-- touch "$TMP/ran")
refused "a bad filter" "bad filter: column 7" "${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp 'udp &&' "${RUN[@]}"
refused "a value classic BPF cannot hold" "may not fit in 32 bits" \
	"${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp 'dst_port - 1 > 5' "${RUN[@]}"
refused "a named set without items" "classic BPF has no maps" \
	"${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp 'src_ip in @x' "${RUN[@]}"
refused "a bad --listen" "want ADDR:PORT" "${W[@]}" --listen 8080 'udp' "${RUN[@]}"
refused "a bad port" "bad port" "${W[@]}" --listen 127.0.0.1:65536/udp 'udp' "${RUN[@]}"
refused "a bad --set item" "bad address" "${W[@]}" --set @a=10.0.0.0/8,nope --listen 127.0.0.1:1/udp \
	'src_ip in @a' "${RUN[@]}"
printf 'udp\0 || 1\n' >"$TMP/nul.filter"
refused "a filter file with a NUL byte (what follows it would be lost)" "contains a NUL byte" \
	"${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp -f "$TMP/nul.filter" "${RUN[@]}"
refused "no socket" "no socket to filter" "${W[@]}" 'udp' "${RUN[@]}"
refused "no command" "no command" "${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp 'udp'
refused "a port in use" "Address already in use" "${W[@]}" --listen "127.0.0.1:$PORT/udp" 'udp' "${RUN[@]}"
refused "a command that does not exist" "cannot run" "${W[@]}" --listen "127.0.0.1:$((PORT + 13))/udp" \
	'udp' -- "$TMP/no-such-daemon"
refused "wrapped twice: a locked filter is not replaced" "has a locked filter already" \
	"${W[@]}" --listen "127.0.0.1:$((PORT + 13))/udp" 'udp' -- "$TMP/cgfilter-wrap" 'ip' "${RUN[@]}"
refused "port 0 (a random port the daemon would not know)" "bad port '0'" \
	"${W[@]}" --listen 127.0.0.1:0/udp 'udp' "${RUN[@]}"
refused "a port with a leading zero" "bad port '010'" "${W[@]}" --listen 127.0.0.1:010/udp 'udp' "${RUN[@]}"
refused "too few open files allowed" "the limit on open files (ulimit -n) is too low" \
	bash -c 'ulimit -n 6; exec "$@"' - "${W[@]}" --listen 127.0.0.1:$((PORT + 13))/udp \
	--listen 127.0.0.1:$((PORT + 14))/udp --listen 127.0.0.1:$((PORT + 15))/udp 'udp' "${RUN[@]}"
# (act.py: sockets in LISTEN_FDS as a .socket unit would pass them, and
# then some that it would not)
cat >"$TMP/act.py" <<-'PY'
	import os, socket, sys
	# act.py [--pid N] [--fds N] SPEC... -- CMD: SPEC udp:PORT, tcp:PORT (listening),
	# tcp-idle, udplite:PORT; LISTEN_FDS counts the first N (default: all)
	args, pid, nfds = sys.argv[1:], None, None
	while args[0].startswith("--") and args[0] != "--":
	    if args[0] == "--pid": pid = args[1]
	    if args[0] == "--fds": nfds = int(args[1])
	    args = args[2:]
	specs, cmd = args[:args.index("--")], args[args.index("--") + 1:]
	socks = []
	for sp in specs:
	    kind, _, port = sp.partition(":")
	    if kind == "udp":
	        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(port)))
	    elif kind == "udplite":
	        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136); s.bind(("127.0.0.1", int(port)))
	    elif kind == "tcp":
	        s = socket.socket(); s.bind(("127.0.0.1", int(port))); s.listen()
	    else:
	        s = socket.socket()
	    socks.append(s)
	for i, s in enumerate(socks):  # (above 3 + len(socks): up to 64 of them)
	    os.dup2(s.fileno(), 200 + i)
	for i in range(len(socks)):
	    os.dup2(200 + i, 3 + i)
	    os.set_inheritable(3 + i, True)
	for i in range(len(socks)):
	    os.close(200 + i)
	os.environ.update(LISTEN_FDS=str(len(socks) if nfds is None else nfds),
	                  LISTEN_PID=pid or str(os.getpid()))
	os.execvp(cmd[0], cmd)
PY
A=(python3 "$TMP/act.py")
refused "an IP socket beyond LISTEN_FDS (it would reach the daemon unfiltered)" \
	"fd 4 is a network socket the command would inherit without a filter" \
	"${A[@]}" --fds 1 udp:$((PORT + 13)) udp:$((PORT + 14)) -- "${W[@]}" 'udp' "${RUN[@]}"
refused "another process's LISTEN_FDS: its sockets are not passed on unfiltered" \
	"fd 4 is a network socket the command would inherit without a filter" \
	"${A[@]}" --pid 1 udp:$((PORT + 13)) udp:$((PORT + 15)) -- "${W[@]}" \
	--listen 127.0.0.1:$((PORT + 14))/udp 'udp' "${RUN[@]}"
refused "a UDP-Lite socket in LISTEN_FDS" "is not a TCP or UDP socket" \
	"${A[@]}" udplite:$((PORT + 13)) -- "${W[@]}" 'udp' "${RUN[@]}"
refused "a TCP socket that does not listen" "a TCP socket that does not listen" \
	"${A[@]}" tcp-idle -- "${W[@]}" 'udp' "${RUN[@]}"
# (64 inherited and one --listen: the 65th socket was written past wrap's
# table of 64)
socks64=()
for i in $(seq 0 63); do socks64+=("udp:$((PORT + 200 + i))"); done
refused "64 inherited sockets and a --listen: more than wrap holds" \
	"more than 64 sockets: 64 inherited (LISTEN_FDS) and 1 --listen" \
	"${A[@]}" "${socks64[@]}" -- "${W[@]}" --listen "127.0.0.1:$((PORT + 13))/udp" 'udp' "${RUN[@]}"
refused "63 inherited sockets and two --listen" "more than 64 sockets: 63 inherited (LISTEN_FDS) and 2 --listen" \
	"${A[@]}" "${socks64[@]:1}" -- "${W[@]}" --listen "127.0.0.1:$((PORT + 13))/udp" \
	--listen "127.0.0.1:$((PORT + 14))/udp" 'udp' "${RUN[@]}"
echo 'src_ip == 127.0.0.2' >"$TMP/f1.filter"
echo 'src_ip == 127.0.0.3' >"$TMP/f2.filter"
refused "-f given twice (the first file was never read)" "-f/--file given twice" \
	"${W[@]}" --listen "127.0.0.1:$((PORT + 13))/udp" -f "$TMP/f1.filter" -f "$TMP/f2.filter" "${RUN[@]}"
exec 7<"$TMP/echod.py"
refused "a file passed as a socket" "is not a socket" env LISTEN_FDS=1 LISTEN_FDNAMES=x \
	bash -c 'export LISTEN_PID=$$; exec 3<&7; exec "$@"' - "${W[@]}" 'udp' "${RUN[@]}"
exec 7<&-

# ---- --set gives a set its items, as alfwrapper's --set did ------------------------------
p=$((PORT + 14))
daemon set "${NOBODY[@]}" "$TMP/cgfilter-wrap" --set @ok=127.0.0.2,fd00::2/128 --listen "[::]:$p/udp" \
	'src_ip in @ok' -- "$TMP/echod.py"
answers "--set: an item is answered" udp fd00::2 fd00::2 $p "udp-$p:hi"
answers "--set: others are not" udp 127.0.0.3 127.0.0.1 $p timeout
for spec in @x=80..90 @x=80..90,22 @x=0x10..0x20; do
	"$TMP/cgfilter-wrap" --print --classic --set "$spec" 'dst_port in @x' >"$TMP/print" 2>&1 ||
		fail "--set $spec (a range first: integers) refused: $(cat "$TMP/print")"
done
ok "--set: a set whose first item is a range (80..90) holds integers"

# ---- cgfilter wrap is the same command -----------------------------------------------------
p=$((PORT + 15))
daemon same "${NOBODY[@]}" "$CGF" wrap --listen "127.0.0.1:$p/udp" "$FILTER" -- "$TMP/echod.py"
answers "cgfilter wrap: 127.0.0.2 is answered" udp 127.0.0.2 127.0.0.1 $p "udp-$p:hi"
answers "cgfilter wrap: 127.0.0.3 is not" udp 127.0.0.3 127.0.0.1 $p timeout

# ---- with CAP_BPF (here: root), eBPF and the whole language --------------------------------
p=$((PORT + 16))
daemon ebpf "$TMP/cgfilter-wrap" --set @ok=127.0.0.2,fd00::2 --listen "[::]:$p" \
	'src_ip in @ok && (len * 0x100000000) >> 32 > 40' -- "$TMP/echod.py"
answers "eBPF (root): a filter classic BPF cannot hold, 127.0.0.2 answered" tcp 127.0.0.2 127.0.0.1 $p "tcp-$p:hi"
answers "eBPF: 127.0.0.3 not" tcp 127.0.0.3 127.0.0.1 $p timeout
answers "eBPF: fd00::2 answered" tcp fd00::2 fd00::2 $p "tcp-$p:hi"
no_caps "$DPID" "a daemon wrapped by root holds no capability either"
refused "--classic forces classic BPF, which refuses it" "may not fit in 32 bits" \
	"$TMP/cgfilter-wrap" --classic --listen "127.0.0.1:$((p + 1))" '(len * 0x100000000) >> 32 > 40' "${RUN[@]}"
grep -q 'eBPF can: drop --classic' "$TMP/err" || fail "the message does not say eBPF can: $(cat "$TMP/err")"
ok "... and says that eBPF can"
"$TMP/cgfilter-wrap" --print 'tcp' >"$TMP/print" || fail "--print failed"
head -n1 "$TMP/print" | has 'eBPF instructions (a socket filter)' ||
	fail "root's --print is not the eBPF program: $(head -n1 "$TMP/print")"
"${NOBODY[@]}" "$TMP/cgfilter-wrap" --print 'tcp' >"$TMP/print" || fail "--print failed as nobody"
head -n1 "$TMP/print" | has 'classic BPF instructions' ||
	fail "nobody's --print is not the classic program: $(head -n1 "$TMP/print")"
ok "--print shows the program each would attach: eBPF for root, classic for nobody"
# root of a user namespace of its own has CAP_SYS_ADMIN there, which the
# kernel does not take for eBPF (while kernel.unprivileged_bpf_disabled is
# set): classic, not a refused eBPF program
if [ "$(cat /proc/sys/kernel/unprivileged_bpf_disabled)" != 0 ]; then
	unshare -U -r "$TMP/cgfilter-wrap" --print 'tcp' >"$TMP/print" 2>&1 ||
		fail "--print failed in a user namespace: $(cat "$TMP/print")"
	head -n1 "$TMP/print" | has 'classic BPF instructions' ||
		fail "--print in a user namespace is not the classic program: $(head -n1 "$TMP/print")"
	ok "... and classic in a user namespace of its own (unshare -r), where the kernel refuses eBPF"
else
	[ -z "${CGF_NO_SKIP:-}" ] || fail "kernel.unprivileged_bpf_disabled is 0: the user namespace case cannot run"
	info "kernel.unprivileged_bpf_disabled is 0: eBPF works in a user namespace; that case is left out"
fi

# ---- len is skb->len's 32 bits: BIG TCP segments are longer than 65,575 bytes ----------------
# (the classic back end once took len for an IP length field, at most 65535
# + 40, and folded 'len < 65576' to 1: every segment passed)
if ip link set lo gso_max_size 196608 gro_max_size 196608 2>/dev/null; then
	# bulk PORT: echo 20 MB through the daemon (enough for the window to
	# grow to segments of more than 64 KiB); "done" or "stalled"
	bulk() {
		python3 - "$1" <<-'PY'
			import socket, sys, threading
			s = socket.create_connection(("::1", int(sys.argv[1])), timeout=3)
			data = b"x" * (20 << 20)
			threading.Thread(target=lambda: s.sendall(data), daemon=True).start()
			got = 0
			try:
			    while got < len(data):
			        n = len(s.recv(1 << 20))
			        if not n:
			            break
			        got += n
			except socket.timeout:
			    pass
			print("done" if got >= len(data) else "stalled")
		PY
	}
	for mode in classic ebpf; do
		p=$((PORT + 20 + ${#mode}))
		flags=(); [ $mode = ebpf ] || flags=(--classic)
		daemon "big-$mode" "$TMP/cgfilter-wrap" "${flags[@]}" --listen "[::1]:$p" 'len < 65576' \
			-- "$TMP/echod.py"
		expect_eq "$mode: BIG TCP segments (len > 65575) are judged by their real length" \
			"$(bulk $p 2>/dev/null)" stalled
		daemon "big2-$mode" "$TMP/cgfilter-wrap" "${flags[@]}" --listen "[::1]:$((p + 10))" \
			'len < 4294967295' -- "$TMP/echod.py"
		expect_eq "$mode: ... and pass when the filter allows them" "$(bulk $((p + 10)) 2>/dev/null)" done
	done
else
	# (CI must not pass without it)
	[ -z "${CGF_NO_SKIP:-}" ] || fail "this kernel has no BIG TCP on lo: the long-segment case cannot run"
	info "this kernel has no BIG TCP on lo: the long-segment case is left out"
fi

# ---- eBPF's bpf() calls killed or failing one at a time: the command never runs ----------------
p=$((PORT + 40))
WF='@seen = { } timeout 9 src_ip in { 10.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, fd00::/8 } || add(@seen, src_ip) && 0'
strace -f -qq -e trace=bpf -o "$TMP/wtrace" "$TMP/cgfilter-wrap" --listen "127.0.0.1:$p/udp" "$WF" \
	-- true || fail "cgfilter-wrap failed under strace"
n=$(grep -c 'bpf(' "$TMP/wtrace")
[ "$n" -ge 3 ] || fail "only $n bpf() calls: $(cat "$TMP/wtrace")"
for how in signal=SIGKILL error=ENOSPC; do
	for ((i = 1; i <= n; i++)); do
		rm -f "$TMP/ran"
		rc=0
		(strace -f -qq -o /dev/null -e trace=bpf -e "inject=bpf:$how:when=$i" "$TMP/cgfilter-wrap" \
			--listen "127.0.0.1:$p/udp" "$WF" -- touch "$TMP/ran" 2>"$TMP/err"; exit $?) 2>/dev/null ||
			rc=$?
		[ ! -e "$TMP/ran" ] || fail "$how at bpf() call $i of $n: the command ran"
		[ "$rc" -ne 0 ] || fail "$how at bpf() call $i of $n: exit 0"
		[ "$how" = signal=SIGKILL ] || has 'cgfilter-wrap: ' "$TMP/err" ||
			fail "$how at bpf() call $i: no message: $(cat "$TMP/err")"
	done
	ok "eBPF: $how at each of the $n bpf() calls: nothing runs, with a message for an error"
done
