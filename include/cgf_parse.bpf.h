/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one packet parser of the project, for cgroup_skb programs: it reads the
 * IP header, the IPv6 extension header chain and the transport header once
 * and fills struct cgf_pkt.  port-firewall and the cgfilter engine both use
 * it, so a filter means the same in both.
 *
 * What a cgroup_skb program sees starts at the IP header; skb->protocol says
 * which IP version it is.  Rules, as documented in the README and cgfilter(8):
 *  - IPv4 options are skipped using IHL; an IHL below 5 is malformed.
 *  - IPv6 extension headers are followed up to CGF_MAX_EXT_HDRS deep:
 *    hop-by-hop (0), routing (43), destination options (60), mobility (135),
 *    HIP (139) and shim6 (140) are (len + 1) * 8 bytes, AH (51) is
 *    (len + 2) * 4 bytes, fragment (44) is 8 bytes.
 *  - A fragment that is not the first one has no transport header: its
 *    ip_proto and tcp/udp/icmp are set from the header chain, its ports,
 *    ICMP type/code and TCP flags are 0, and frag is 1.
 *  - A packet whose headers end early (truncated IP header, options or
 *    extension header; TCP header shorter than 20 bytes or its data offset;
 *    UDP header shorter than 8; ICMP/ICMPv6 shorter than 4), a wrong IP
 *    version, or a chain deeper than CGF_MAX_EXT_HDRS is malformed:
 *    cgf_parse() returns -1 and the caller drops it, whatever the filter says.
 *  - A packet that is neither IPv4 nor IPv6 parses with every field 0.
 */
#ifndef CGF_PARSE_BPF_H
#define CGF_PARSE_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cgf_vocab.h"

/* IPv6 extension header numbers not in every <linux/in6.h>. */
#define CGF_NEXTHDR_MOBILITY 135
#define CGF_NEXTHDR_HIP 139
#define CGF_NEXTHDR_SHIM6 140
/* IPv4 frag_off bits (host order), from <net/ip.h> which is not UAPI */
#define CGF_IP_MF 0x2000
#define CGF_IP_OFFSET 0x1fff

/*
 * A user may reserve room after the fields (the cgfilter engine keeps its
 * scratch registers there) by defining CGF_PKT_REGS before the include;
 * cgf_parse() fills only the first CGF_NALLFIELDS.
 */
#ifndef CGF_PKT_REGS
#define CGF_PKT_REGS CGF_NALLFIELDS
#endif

struct cgf_pkt {
	__u32 family;          /* 4, 6, or 0 for a non-IP packet */
	__u32 saddr[4];        /* network order; IPv4 in saddr[0], rest 0 */
	__u32 daddr[4];
	__u32 pad;
	__u64 f[CGF_PKT_REGS]; /* enum cgf_field, host order */
};

static __always_inline int cgf_is_ext_hdr(__u32 proto)
{
	switch (proto) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
	case CGF_NEXTHDR_MOBILITY:
	case CGF_NEXTHDR_HIP:
	case CGF_NEXTHDR_SHIM6:
		return 1;
	}
	return 0;
}

/*
 * Follow the IPv6 extension header chain that starts at *off with next
 * header *proto.  Returns 1 if a non-first fragment ended it, 0 if a
 * transport (or unknown) protocol did, -1 if it is malformed.
 */
static __always_inline int cgf_parse_ext_hdrs(struct __sk_buff *skb, __u32 *off,
					      __u32 *proto, struct cgf_pkt *p)
{
	__u32 len = skb->len;
	int i;

#pragma unroll
	for (i = 0; i < CGF_MAX_EXT_HDRS; i++) {
		__u8 h[8];

		if (!cgf_is_ext_hdr(*proto))
			return 0;
		if (*proto == IPPROTO_FRAGMENT) {
			__u16 frag_off;

			if (bpf_skb_load_bytes(skb, *off, h, 8))
				return -1;
			p->f[CGF_F_FRAG] = 1;
			*proto = h[0];
			*off += 8;
			/* offset is the top 13 bits of bytes 2-3 */
			frag_off = ((__u16)h[2] << 8 | h[3]) & 0xfff8;
			if (frag_off)
				return 1;
			continue;
		}
		if (bpf_skb_load_bytes(skb, *off, h, 2))
			return -1;
		if (*proto == IPPROTO_AH)
			*off += ((__u32)h[1] + 2) * 4;
		else
			*off += ((__u32)h[1] + 1) * 8;
		*proto = h[0];
		if (*off > len)
			return -1;
	}
	return cgf_is_ext_hdr(*proto) ? -1 : 0;
}

static __always_inline int cgf_parse_l4(struct __sk_buff *skb, __u32 off, __u32 proto,
					struct cgf_pkt *p)
{
	__u8 h[20];

	if (proto == IPPROTO_TCP) {
		__u32 doff;

		if (bpf_skb_load_bytes(skb, off, h, 20))
			return -1;
		doff = (h[12] >> 4) * 4;
		if (doff < 20 || off + doff > skb->len)
			return -1;
		p->f[CGF_F_SRC_PORT] = (__u16)h[0] << 8 | h[1];
		p->f[CGF_F_DST_PORT] = (__u16)h[2] << 8 | h[3];
		p->f[CGF_F_TCP_FLAGS] = h[13];
	} else if (proto == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, off, h, 8))
			return -1;
		p->f[CGF_F_SRC_PORT] = (__u16)h[0] << 8 | h[1];
		p->f[CGF_F_DST_PORT] = (__u16)h[2] << 8 | h[3];
	} else if (p->f[CGF_F_ICMP]) {
		if (bpf_skb_load_bytes(skb, off, h, 4))
			return -1;
		p->f[CGF_F_ICMP_TYPE] = h[0];
		p->f[CGF_F_ICMP_CODE] = h[1];
	}
	return 0;
}

static __always_inline int cgf_parse_headers(struct __sk_buff *skb, struct cgf_pkt *p)
{
	__u32 off, proto;
	int nonfirst = 0;

	__builtin_memset(p, 0, __builtin_offsetof(struct cgf_pkt, f) + CGF_NALLFIELDS * 8);

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		if (ip.version != 4 || ip.ihl < 5)
			return -1;
		off = ip.ihl * 4;
		if (off > skb->len)
			return -1;
		p->family = 4;
		p->f[CGF_F_IP] = 1;
		p->f[CGF_F_TTL] = ip.ttl;
		p->saddr[0] = ip.saddr;
		p->daddr[0] = ip.daddr;
		proto = ip.protocol;
		if (ip.frag_off & bpf_htons(CGF_IP_MF | CGF_IP_OFFSET))
			p->f[CGF_F_FRAG] = 1;
		nonfirst = (ip.frag_off & bpf_htons(CGF_IP_OFFSET)) != 0;
		p->f[CGF_F_ICMP] = proto == IPPROTO_ICMP;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		int r;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return -1;
		if (ip6.version != 6)
			return -1;
		p->family = 6;
		p->f[CGF_F_IPV6] = 1;
		p->f[CGF_F_TTL] = ip6.hop_limit;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		off = sizeof(ip6);
		proto = ip6.nexthdr;
		r = cgf_parse_ext_hdrs(skb, &off, &proto, p);
		if (r < 0)
			return -1;
		nonfirst = r;
		p->f[CGF_F_ICMP] = proto == IPPROTO_ICMPV6;
	} else {
		return 0;
	}

	/* here, not above: a non-IP packet has every field 0, len too */
	p->f[CGF_F_LEN] = skb->len;
	p->f[CGF_F_IP_PROTO] = proto;
	p->f[CGF_F_TCP] = proto == IPPROTO_TCP;
	p->f[CGF_F_UDP] = proto == IPPROTO_UDP;
	if (nonfirst)
		return 0;
	return cgf_parse_l4(skb, off, proto, p);
}

/*
 * Fill *p from the packet; 0 on success, -1 if the packet is malformed.
 * local_port and remote_port by the direction: a packet received has an
 * incoming interface (ingress_ifindex, 1 on loopback), one sent has none.
 */
static __always_inline int cgf_parse(struct __sk_buff *skb, struct cgf_pkt *p)
{
	int r = cgf_parse_headers(skb, p);
	int received = skb->ingress_ifindex != 0;

	p->f[CGF_F_LOCAL_PORT] = received ? p->f[CGF_F_DST_PORT] : p->f[CGF_F_SRC_PORT];
	p->f[CGF_F_REMOTE_PORT] = received ? p->f[CGF_F_SRC_PORT] : p->f[CGF_F_DST_PORT];
	return r;
}

#endif /* CGF_PARSE_BPF_H */
