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

case_kernel
