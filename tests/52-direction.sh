#!/usr/bin/env bash
# Direction-free names: local_port, remote_port, local_ip, remote_ip.  First
# what they rest on, checked on this kernel: a cgroup_skb program sees
# __sk_buff.ingress_ifindex non-zero on ingress and 0 on egress, for every
# TCP (SYN, SYN-ACK, data, FIN, RST) and UDP packet over IPv4 and IPv6 on
# loopback (tests/verdict/dir-probe.bpf.c counts them).  Then real sockets
# in a network namespace of the test's own: a server and a client, each in
# a cgroup of its own with one cgfilter engine attached to both directions,
# and filters written with the new names that pass and drop as meant.
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cgroup2
need_cmd ip unshare
if [ -z "${T_NETNS:-}" ]; then
	T_NETNS=1 exec unshare -n -- "$0" "$@"
fi
ip link set lo up
CGF=$BUILD/cgfilter/cgfilter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$CGF" "$PROBE" "$BUILD/tests/dir-probe" "$BUILD/tests/dir-probe.bpf.o"; do
	[ -e "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP

# ---- the kernel: ingress_ifindex is 0 exactly on egress ------------------------------------
case_kernel() {
	local cg=$CG2/${T_ID}_probe kind fam hook
	make_cgroup "$cg"
	"$BUILD/tests/dir-probe" "$cg" "$BUILD/tests/dir-probe.bpf.o" >"$TMP/probe" ||
		fail "dir-probe failed: $(cat "$TMP/probe")"
	info "$(tr '\n' ';' <"$TMP/probe")"
	! grep -E '^ingress ingress_ifindex=ZERO|^egress ingress_ifindex=NONZERO' "$TMP/probe" ||
		fail "ingress_ifindex does not tell the direction on this kernel"
	for hook in ingress egress; do
		for fam in ipv4 ipv6; do
			for kind in syn syn-ack data fin rst udp; do
				grep -q "^$hook ingress_ifindex=[A-Z]* $fam $kind " "$TMP/probe" ||
					fail "dir-probe saw no $fam $kind on $hook"
			done
		done
	done
	ok "ingress_ifindex: non-zero on every packet on ingress, 0 on every packet on egress (TCP SYN, SYN-ACK, data, FIN, RST; UDP; IPv4 and IPv6)"
}

# ---- real sockets: a server and a client, one engine each, on both directions ----------------
# in_cg CGROUP CMD...: CMD in CGROUP
in_cg() {
	local cg=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}
# talk WANT PROTO HOST [ARG...]: the client's echo to the server on HOST
# comes back (WANT ok) or does not (WANT dropped)
talk() {
	local want=$1 proto=$2 host=$3 got=ok t=3000 port
	shift 3
	[ "$want" = ok ] || t=700
	port=$PT
	[ "$proto" = tcp ] || port=$PU
	in_cg "$CLI" "$PROBE" send "$proto" "$host" "$port" -t "$t" "$@" >/dev/null 2>&1 || got=dropped
	[ "$got" = "$want" ] ||
		fail "server filter '$(cat "$TMP/srv.f")', client filter '$(cat "$TMP/cli.f")': $proto to $host $* $got, not $want"
}
filters() { # SERVER-FILTER CLIENT-FILTER
	"$CGF" set "$PS" "$1" || fail "cgfilter set $PS '$1' failed"
	"$CGF" set "$PC" "$2" || fail "cgfilter set $PC '$2' failed"
	echo "$1" >"$TMP/srv.f"
	echo "$2" >"$TMP/cli.f"
}

case_sockets() {
	PS=/sys/fs/bpf/${T_ID}_srv PC=/sys/fs/bpf/${T_ID}_cli
	SRV=$CG2/${T_ID}_srv CLI=$CG2/${T_ID}_cli
	PT=22052 PU=22053
	at_exit rm -rf "$PS" "${PS}_maps" "$PC" "${PC}_maps"
	"$CGF" load "$PS" 1 || fail "cannot load an engine at $PS"
	"$CGF" load "$PC" 1 || fail "cannot load an engine at $PC"
	make_cgroup "$SRV"
	make_cgroup "$CLI"
	"$CGF" attach "$PS" "$SRV" both || fail "cannot attach $PS to $SRV"
	"$CGF" attach "$PC" "$CLI" both || fail "cannot attach $PC to $CLI"
	in_cg "$SRV" "$PROBE" listen tcp "$PT" >"$TMP/ltcp" 2>&1 &
	in_cg "$SRV" "$PROBE" listen udp "$PU" >"$TMP/ludp" 2>&1 &
	for _ in $(seq 50); do
		grep -qs listening "$TMP/ltcp" && grep -qs listening "$TMP/ludp" && break
		sleep 0.1
	done
	grep -qs listening "$TMP/ltcp" && grep -qs listening "$TMP/ludp" || fail "the echo servers did not start"

	# the service's side: the same on its requests (in) and its answers (out)
	filters "tcp && local_port == $PT" 1
	talk ok tcp 127.0.0.1
	talk ok tcp ::1
	filters "tcp && remote_port == $PT" 1
	talk dropped tcp 127.0.0.1
	talk dropped tcp ::1
	filters "tcp && dst_port == $PT" 1
	talk dropped tcp 127.0.0.1
	ok "server 'tcp && local_port == P' answers on IPv4 and IPv6; 'remote_port == P' and 'dst_port == P' alone do not"
	filters 1 "tcp && remote_port == $PT"
	talk ok tcp 127.0.0.1
	talk ok tcp ::1
	filters 1 "tcp && local_port == $PT"
	talk dropped tcp ::1
	ok "client 'tcp && remote_port == P' connects; 'local_port == P' does not"
	filters "udp && local_port == $PU" "udp && remote_port == $PU"
	talk ok udp 127.0.0.1
	talk ok udp ::1
	filters "udp && remote_port == $PU" 1
	talk dropped udp 127.0.0.1
	filters 1 "udp && local_port == $PU"
	talk dropped udp ::1
	ok "UDP: server 'local_port == P' and client 'remote_port == P' pass both ways; the other way round drops"

	# the addresses: the service's and the peer's
	filters "local_ip == 127.0.0.1 && remote_ip == 127.0.0.2 || local_ip == ::1 && remote_ip == ::1" \
		"local_ip in { 127.0.0.2, ::1 } && remote_ip in { 127.0.0.1/32, ::1/128 }"
	talk ok tcp 127.0.0.1 -b 127.0.0.2
	talk ok udp 127.0.0.1 -b 127.0.0.2
	talk ok tcp ::1
	talk dropped tcp 127.0.0.1 -b 127.0.0.3
	talk dropped udp 127.0.0.1
	# the server's own address as the peer's: never on either direction
	filters "remote_ip == 127.0.0.1 || remote_ip == ::1 && local_ip != ::1" 1
	talk dropped tcp 127.0.0.1 -b 127.0.0.2
	talk dropped udp 127.0.0.1 -b 127.0.0.2
	talk dropped tcp ::1
	ok "local_ip, remote_ip: the server's and the peer's address on both directions (TCP, UDP, IPv4, IPv6)"
}

case_kernel
case_sockets
