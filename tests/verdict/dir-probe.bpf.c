// SPDX-License-Identifier: GPL-2.0-only
/*
 * dir-probe: what __sk_buff.ingress_ifindex holds on each hook of a cgroup
 * (tests/52-direction.sh).  Each packet counts once in counts[KEY]:
 * hook (0 ingress, 1 egress) << 5 | (ingress_ifindex != 0) << 4 |
 * (IPv6) << 3 | kind (enum in dir-probe.c).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int count(struct __sk_buff *skb, __u32 hook)
{
	__u8 h[40];
	__u32 key, kind = 7, v6 = 0, l4 = 0, proto = 0;
	__u64 *c;

	if (bpf_skb_load_bytes(skb, 0, h, 1))
		return 1;
	if ((h[0] >> 4) == 4) {
		if (bpf_skb_load_bytes(skb, 0, h, 20))
			return 1;
		proto = h[9];
		l4 = (h[0] & 15) * 4;
	} else if ((h[0] >> 4) == 6) {
		if (bpf_skb_load_bytes(skb, 0, h, 40))
			return 1;
		proto = h[6];
		l4 = 40;
		v6 = 1;
	}
	if (proto == 17) {
		kind = 5;
	} else if (proto == 6 && l4 >= 20 && l4 <= 60 && !bpf_skb_load_bytes(skb, l4 + 13, h, 1)) {
		__u8 f = h[0];

		if (f & 0x04)
			kind = 4;               /* RST */
		else if (f & 0x01)
			kind = 3;               /* FIN */
		else if ((f & 0x12) == 0x12)
			kind = 1;               /* SYN-ACK */
		else if (f & 0x02)
			kind = 0;               /* SYN */
		else if (skb->len > l4 + 60)
			kind = 2;               /* data */
		else
			kind = 6;               /* a bare ACK */
	}
	key = hook << 5 | (skb->ingress_ifindex != 0) << 4 | v6 << 3 | kind;
	c = bpf_map_lookup_elem(&counts, &key);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 1;
}

SEC("cgroup_skb/ingress")
int probe_ingress(struct __sk_buff *skb)
{
	return count(skb, 0);
}

SEC("cgroup_skb/egress")
int probe_egress(struct __sk_buff *skb)
{
	return count(skb, 1);
}

char LICENSE[] SEC("license") = "GPL";
