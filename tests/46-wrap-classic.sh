#!/usr/bin/env bash
# Differential test of cgfilter wrap's two back ends, the classic BPF one
# and the eBPF socket filter: port-firewall's test filters, 1000 random
# filters and random filters of the whole language, over the crafted and
# random packets, run in the real kernel (an AF_PACKET socket with the
# filter, on one end of a veth pair in a network namespace of the test's
# own, fed from the other end): every filter a back end accepts gives the
# reference model's verdicts; what classic BPF refuses it refuses with a
# clear message, eBPF only what is too large (tests/verdict/check_classic.py).
# CGF_SEED=N changes the random filters and packets.
. "$(dirname "$0")/lib.sh"

need_root
need_cmd python3 ip unshare sysctl
if [ -z "${T_NETNS:-}" ]; then
	T_NETNS=1 exec unshare -n -- "$0" "$@"
fi
[ -x "$BUILD/tests/cbpf-run" ] || fail "$BUILD/tests/cbpf-run is not built (make)"
# no IPv6 on the pair: no neighbour discovery frames among the test's
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add cgf-send type veth peer name cgf-recv
ip link set cgf-send up
ip link set cgf-recv up
make_tmpdir WORK
for mode in classic ebpf; do
	if python3 "$TOP/tests/verdict/check_classic.py" --work "$WORK" --send cgf-send --recv cgf-recv \
		--random-exprs "${CGF_DIFF_EXPRS:-1000}" $([ $mode = classic ] || echo --ebpf); then
		ok "$mode socket filters in the kernel = reference model"
	else
		fail "the $mode back end disagrees with the reference (see above)"
	fi
done
