/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The filter vocabulary as both sides see it: the numbered scalar fields
 * that the packet parser fills in and that filter expressions read.
 *
 * Shared by the BPF side (cgf_parse.bpf.h, the port-firewall program, the
 * cgfilter engine) and the user side (lang/).  The numbers are an ABI:
 * compiled cgfilter programs stored in maps refer to fields by number, so
 * new fields are only ever appended.
 *
 * Every field is an unsigned 64-bit integer in HOST byte order.  The parser
 * converts from network order; for example a TCP segment to port 53 arrives
 * with the bytes 0x00 0x35 and yields dst_port == 53.  A field that does not
 * apply to a packet is 0 (a UDP packet has tcp_flags == 0, an IPv6 packet
 * has ip == 0).
 *
 * Addresses are not scalar fields: see struct cgf_pkt in cgf_parse.bpf.h.
 */
#ifndef CGF_VOCAB_H
#define CGF_VOCAB_H

enum cgf_field {
	CGF_F_IP = 0,     /* 1 for IPv4, else 0 */
	CGF_F_IPV6,       /* 1 for IPv6, else 0 */
	CGF_F_TCP,        /* 1 for TCP (IPv4 or IPv6) */
	CGF_F_UDP,        /* 1 for UDP (IPv4 or IPv6) */
	CGF_F_ICMP,       /* 1 for ICMP on IPv4 or ICMPv6 on IPv6 */
	CGF_F_SRC_PORT,   /* TCP/UDP source port, 0 for other protocols */
	CGF_F_DST_PORT,   /* TCP/UDP destination port, 0 for other protocols */
	CGF_F_LEN,        /* bytes from the first byte of the IP header (skb->len) */
	CGF_F_IP_PROTO,   /* transport protocol number after IPv6 extension headers */
	CGF_F_ICMP_TYPE,  /* ICMP/ICMPv6 type, 0 for other protocols */
	CGF_F_ICMP_CODE,  /* ICMP/ICMPv6 code, 0 for other protocols */
	CGF_F_TCP_FLAGS,  /* TCP flags byte (FIN 0x01 ... CWR 0x80), 0 if not TCP */
	CGF_F_FRAG,       /* 1 if the packet is any fragment (first or later) */
	CGF_F_TTL,        /* IPv4 TTL or IPv6 hop limit */
	CGF_NFIELDS,
	/*
	 * Derived from the direction, not parsed (no room in skb->cb, none
	 * needed): the service's port and the peer's.  A packet is received
	 * when __sk_buff.ingress_ifindex is not 0 (the kernel's skb_iif; 1 on
	 * loopback), sent when it is 0; received, local_port is dst_port and
	 * remote_port src_port; sent, the other way round.  The same holds
	 * for local_ip and remote_ip (cgfilter's addresses).
	 */
	CGF_F_LOCAL_PORT = CGF_NFIELDS,
	CGF_F_REMOTE_PORT,
	CGF_NALLFIELDS
};

/* Verdicts of a cgroup_skb program. */
enum cgf_verdict {
	CGF_DROP = 0,
	CGF_PASS = 1,
};

/*
 * How deep the parser follows an IPv6 extension header chain.  A packet with
 * more extension headers than this before its transport header is dropped.
 */
#define CGF_MAX_EXT_HDRS 8

#endif /* CGF_VOCAB_H */
