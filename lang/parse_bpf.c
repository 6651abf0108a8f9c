// SPDX-License-Identifier: GPL-2.0-only
/*
 * The packet parser as BPF instructions: the same rules, step for step, as
 * include/cgf_parse.bpf.h, which port-firewall compiles with clang (the
 * differential test holds the two to the same verdicts).  Headers are read
 * into the stack buffer FP_BUF directly from the packet when they are in its
 * linear data, else with bpf_skb_load_bytes (which fails past the end of
 * the packet: malformed).  Flags such as tcp and icmp are computed without
 * branches, so the verifier does not explore a path for each.
 *
 * Registers while parsing: r6 the skb, r7 the offset of the next header,
 * r8 the protocol (next header), r9 non-zero for a non-first fragment.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <stddef.h>

#include "gen.h"

/* IPv6 extension headers the parser follows (cgf_parse.bpf.h) */
static const int ext_hdrs[] = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT,
				IPPROTO_AH, 135 /* mobility */, 139 /* HIP */, 140 /* shim6 */ };

/* n bytes at offset r7 (or k) into FP_BUF with a helper (a socket filter's
 * from the network header); malformed if the packet is shorter */
static void fetch_helper(struct gen *g, bool in_r7, int k, int n)
{
	i_movr(g, BPF_REG_1, R_CTX);
	if (in_r7)
		i_movr(g, BPF_REG_2, BPF_REG_7);
	else
		i_mov(g, BPF_REG_2, (uint64_t)k);
	i_fp(g, BPF_REG_3, FP_BUF);
	i_mov(g, BPF_REG_4, (uint64_t)n);
	if (g->sock)
		i_mov(g, BPF_REG_5, BPF_HDR_START_NET);
	i_call(g, g->sock ? BPF_FUNC_skb_load_bytes_relative : BPF_FUNC_skb_load_bytes);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, g->l_malformed);
}

/*
 * Read n bytes at packet offset r7 (or at the constant k when !in_r7) into
 * FP_BUF; a packet shorter than that is malformed.
 */
void gen_fetch(struct gen *g, bool in_r7, int k, int n)
{
	uint32_t direct = cgf_asm_label(g->a), done = cgf_asm_label(g->a);
	int off = 0;

	if (g->sock) { /* no direct access: the helper, from the network header */
		fetch_helper(g, in_r7, k, n);
		return;
	}
	i_ldx(g, BPF_W, BPF_REG_2, R_CTX, offsetof(struct __sk_buff, data));
	i_ldx(g, BPF_W, BPF_REG_3, R_CTX, offsetof(struct __sk_buff, data_end));
	if (in_r7)
		i_alur(g, BPF_ADD, BPF_REG_2, BPF_REG_7);
	else if (k)
		i_alu(g, BPF_ADD, BPF_REG_2, k);
	i_movr(g, BPF_REG_4, BPF_REG_2);
	i_alu(g, BPF_ADD, BPF_REG_4, n);
	cgf_asm_jmp_reg(g->a, BPF_JLE, BPF_REG_4, BPF_REG_3, direct);
	/* not in the linear data: the helper reads any part of the packet.
	 * This path comes first, so that the verifier, which walks it first,
	 * finds the direct path's state at done no different (the helper's
	 * bytes are as unknown as anything copied) and need not walk on. */
	fetch_helper(g, in_r7, k, n);
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, direct);
	while (off < n) {
		int left = n - off;
		uint8_t sz = left >= 8 ? BPF_DW : left >= 4 ? BPF_W : left >= 2 ? BPF_H : BPF_B;
		int bytes = sz == BPF_DW ? 8 : sz == BPF_W ? 4 : sz == BPF_H ? 2 : 1;

		i_ldx(g, sz, BPF_REG_5, BPF_REG_2, (int16_t)off);
		i_stx(g, sz, BPF_REG_10, (int16_t)(FP_BUF + off), BPF_REG_5);
		off += bytes;
	}
	cgf_asm_place(g->a, done);
}

/*
 * Malformed if the packet ends before offset r (a register, not r1-r5; r0
 * is lost in a socket filter):
 * compared with skb->len, or in a socket filter, whose skb->len does not
 * count from the IP header, by reading the byte before r (into FP_KEY).
 */
static void need_upto(struct gen *g, uint8_t r)
{
	if (!g->sock) {
		i_ldx(g, BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, len));
		cgf_asm_jmp_reg(g->a, BPF_JGT, r, BPF_REG_1, g->l_malformed);
		return;
	}
	i_movr(g, BPF_REG_1, R_CTX);
	i_movr(g, BPF_REG_2, r);
	i_alu(g, BPF_SUB, BPF_REG_2, 1);
	i_fp(g, BPF_REG_3, FP_KEY);
	i_mov(g, BPF_REG_4, 1);
	i_mov(g, BPF_REG_5, BPF_HDR_START_NET);
	i_call(g, BPF_FUNC_skb_load_bytes_relative);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, g->l_malformed);
}

/* r0 = the byte at FP_BUF + off */
static void buf_u8(struct gen *g, uint8_t dst, int off)
{
	i_ldx(g, BPF_B, dst, BPF_REG_10, (int16_t)(FP_BUF + off));
}

/* dst = the big-endian 16-bit value at FP_BUF + off, in host order */
static void buf_be16(struct gen *g, uint8_t dst, int off)
{
	i_ldx(g, BPF_H, dst, BPF_REG_10, (int16_t)(FP_BUF + off));
	i_be(g, dst, 16);
}

static void set_field(struct gen *g, int field, uint8_t src)
{
	i_stx(g, BPF_DW, BPF_REG_10, FP_FIELD(field), src);
}

/* field = (r8 == proto), without a branch */
static void set_is_proto(struct gen *g, int field, int proto)
{
	i_movr(g, BPF_REG_1, BPF_REG_8);
	i_alu(g, BPF_XOR, BPF_REG_1, proto);
	i_not(g, BPF_REG_1);
	set_field(g, field, BPF_REG_1);
}

/*
 * r0 = 1 if r8 (0..255) is an extension header the parser follows, else 0,
 * without a branch: a bit of a 64-bit mask for each quarter of the range
 * (a branch per header would give the verifier a state per header).
 */
static void is_ext(struct gen *g)
{
	uint64_t mask[4] = { 0 };
	size_t i;
	int q;

	for (i = 0; i < sizeof(ext_hdrs) / sizeof(ext_hdrs[0]); i++)
		mask[ext_hdrs[i] / 64] |= 1ULL << (ext_hdrs[i] % 64);
	i_mov(g, BPF_REG_0, 0);
	for (q = 0; q < 4; q++) {
		if (!mask[q])
			continue;
		/* r1 = (mask >> (r8 % 64)) & 1, if r8 / 64 == q */
		i_mov(g, BPF_REG_1, mask[q]);
		i_movr(g, BPF_REG_2, BPF_REG_8);
		i_alu(g, BPF_AND, BPF_REG_2, 63);
		i_alur(g, BPF_RSH, BPF_REG_1, BPF_REG_2);
		i_alu(g, BPF_AND, BPF_REG_1, 1);
		i_movr(g, BPF_REG_2, BPF_REG_8);
		i_alu(g, BPF_RSH, BPF_REG_2, 6);
		i_alu(g, BPF_XOR, BPF_REG_2, q);
		i_not(g, BPF_REG_2);
		i_alur(g, BPF_AND, BPF_REG_1, BPF_REG_2);
		i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_1);
	}
}

static void parse_ipv4(struct gen *g, uint32_t common)
{
	cgf_asm_note(g->a, "IPv4: a header of 20 bytes at least, version 4, IHL 5 or more");
	gen_fetch(g, false, 0, 20);
	buf_u8(g, BPF_REG_0, 0);
	i_movr(g, BPF_REG_1, BPF_REG_0);
	i_alu(g, BPF_RSH, BPF_REG_1, 4);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_1, 4, g->l_malformed);
	i_alu(g, BPF_AND, BPF_REG_0, 15);
	cgf_asm_jmp_imm(g->a, BPF_JLT, BPF_REG_0, 5, g->l_malformed);
	i_movr(g, BPF_REG_7, BPF_REG_0);
	i_alu(g, BPF_LSH, BPF_REG_7, 2);
	need_upto(g, BPF_REG_7);
	i_st(g, BPF_DW, BPF_REG_10, FP_FAMILY, 4);
	i_st(g, BPF_DW, BPF_REG_10, FP_FIELD(CGF_F_IP), 1);
	buf_u8(g, BPF_REG_0, 8);
	set_field(g, CGF_F_TTL, BPF_REG_0);
	i_ldx(g, BPF_W, BPF_REG_0, BPF_REG_10, FP_BUF + 12);
	i_stx(g, BPF_W, BPF_REG_10, FP_SADDR, BPF_REG_0);
	i_ldx(g, BPF_W, BPF_REG_0, BPF_REG_10, FP_BUF + 16);
	i_stx(g, BPF_W, BPF_REG_10, FP_DADDR, BPF_REG_0);
	buf_u8(g, BPF_REG_8, 9);
	cgf_asm_note(g->a, "frag: MF or a fragment offset; a non-first fragment has no transport header");
	buf_be16(g, BPF_REG_0, 6);
	i_movr(g, BPF_REG_1, BPF_REG_0);
	i_alu(g, BPF_AND, BPF_REG_1, 0x3fff);
	i_bool(g, BPF_REG_1);
	set_field(g, CGF_F_FRAG, BPF_REG_1);
	i_movr(g, BPF_REG_9, BPF_REG_0);
	i_alu(g, BPF_AND, BPF_REG_9, 0x1fff);
	set_is_proto(g, CGF_F_ICMP, IPPROTO_ICMP);
	cgf_asm_ja(g->a, common);
}

/* One extension header of the chain; jumps to done when the chain ends. */
static void ext_header(struct gen *g, uint32_t done)
{
	uint32_t frag = cgf_asm_label(g->a), next = cgf_asm_label(g->a);

	is_ext(g);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, done);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, IPPROTO_FRAGMENT, frag);
	/* (len + 1) * 8 bytes, AH (len + 2) * 4, chosen by a mask (bounds the
	 * verifier keeps, for the offset it must check packet reads with) */
	gen_fetch(g, true, 0, 2);
	buf_u8(g, BPF_REG_0, 1);
	i_movr(g, BPF_REG_2, BPF_REG_0);
	i_alu(g, BPF_ADD, BPF_REG_0, 1);
	i_alu(g, BPF_LSH, BPF_REG_0, 3);        /* (len + 1) * 8 */
	i_alu(g, BPF_ADD, BPF_REG_2, 2);
	i_alu(g, BPF_LSH, BPF_REG_2, 2);        /* (len + 2) * 4 */
	i_movr(g, BPF_REG_1, BPF_REG_8);
	i_alu(g, BPF_XOR, BPF_REG_1, IPPROTO_AH);
	i_not(g, BPF_REG_1);
	i_neg(g, BPF_REG_1);                    /* all ones for AH */
	i_alur(g, BPF_AND, BPF_REG_2, BPF_REG_1);
	i_alu(g, BPF_XOR, BPF_REG_1, -1);
	i_alur(g, BPF_AND, BPF_REG_0, BPF_REG_1);
	i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_2);
	i_alur(g, BPF_ADD, BPF_REG_7, BPF_REG_0);
	buf_u8(g, BPF_REG_8, 0);
	need_upto(g, BPF_REG_7);
	cgf_asm_ja(g->a, next);
	/* fragment header: 8 bytes; a non-zero offset ends the chain */
	cgf_asm_place(g->a, frag);
	gen_fetch(g, true, 0, 8);
	i_st(g, BPF_DW, BPF_REG_10, FP_FIELD(CGF_F_FRAG), 1);
	buf_u8(g, BPF_REG_8, 0);
	i_alu(g, BPF_ADD, BPF_REG_7, 8);
	buf_be16(g, BPF_REG_0, 2);
	i_alu(g, BPF_AND, BPF_REG_0, 0xfff8);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, next);
	i_mov(g, BPF_REG_9, 1);
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, next);
}

static void parse_ipv6(struct gen *g)
{
	uint32_t done = cgf_asm_label(g->a);
	int i;

	cgf_asm_note(g->a, "IPv6: a header of 40 bytes, version 6");
	gen_fetch(g, false, 0, 40);
	buf_u8(g, BPF_REG_0, 0);
	i_alu(g, BPF_RSH, BPF_REG_0, 4);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 6, g->l_malformed);
	i_st(g, BPF_DW, BPF_REG_10, FP_FAMILY, 6);
	i_st(g, BPF_DW, BPF_REG_10, FP_FIELD(CGF_F_IPV6), 1);
	buf_u8(g, BPF_REG_0, 7);
	set_field(g, CGF_F_TTL, BPF_REG_0);
	for (i = 0; i < 4; i++) {
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(FP_BUF + 8 + 8 * i));
		i_stx(g, BPF_DW, BPF_REG_10, (int16_t)((i < 2 ? FP_SADDR : FP_DADDR) + 8 * (i % 2)),
		      BPF_REG_0);
	}
	i_mov(g, BPF_REG_7, 40);
	buf_u8(g, BPF_REG_8, 6);
	i_mov(g, BPF_REG_9, 0);
	cgf_asm_note(g->a, "the extension header chain, followed %d deep", CGF_MAX_EXT_HDRS);
	for (i = 0; i < CGF_MAX_EXT_HDRS; i++)
		ext_header(g, done);
	/* still an extension header after CGF_MAX_EXT_HDRS: malformed */
	is_ext(g);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, g->l_malformed);
	cgf_asm_place(g->a, done);
	set_is_proto(g, CGF_F_ICMP, IPPROTO_ICMPV6);
}

static void parse_l4(struct gen *g)
{
	uint32_t not_tcp = cgf_asm_label(g->a), not_udp = cgf_asm_label(g->a);

	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_9, 0, g->l_filter);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, IPPROTO_TCP, not_tcp);
	cgf_asm_note(g->a, "TCP: 20 bytes at least, and the data offset within the packet");
	gen_fetch(g, true, 0, 20);
	buf_u8(g, BPF_REG_0, 12);
	i_alu(g, BPF_RSH, BPF_REG_0, 4);
	i_alu(g, BPF_LSH, BPF_REG_0, 2);
	cgf_asm_jmp_imm(g->a, BPF_JLT, BPF_REG_0, 20, g->l_malformed);
	i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_7);
	need_upto(g, BPF_REG_0);
	buf_be16(g, BPF_REG_0, 0);
	set_field(g, CGF_F_SRC_PORT, BPF_REG_0);
	buf_be16(g, BPF_REG_0, 2);
	set_field(g, CGF_F_DST_PORT, BPF_REG_0);
	buf_u8(g, BPF_REG_0, 13);
	set_field(g, CGF_F_TCP_FLAGS, BPF_REG_0);
	cgf_asm_ja(g->a, g->l_filter);

	cgf_asm_place(g->a, not_tcp);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, IPPROTO_UDP, not_udp);
	cgf_asm_note(g->a, "UDP: 8 bytes");
	gen_fetch(g, true, 0, 8);
	buf_be16(g, BPF_REG_0, 0);
	set_field(g, CGF_F_SRC_PORT, BPF_REG_0);
	buf_be16(g, BPF_REG_0, 2);
	set_field(g, CGF_F_DST_PORT, BPF_REG_0);
	cgf_asm_ja(g->a, g->l_filter);

	cgf_asm_place(g->a, not_udp);
	i_field(g, BPF_REG_0, CGF_F_ICMP);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, g->l_filter);
	cgf_asm_note(g->a, "ICMP or ICMPv6: 4 bytes");
	gen_fetch(g, true, 0, 4);
	buf_u8(g, BPF_REG_0, 0);
	set_field(g, CGF_F_ICMP_TYPE, BPF_REG_0);
	buf_u8(g, BPF_REG_0, 1);
	set_field(g, CGF_F_ICMP_CODE, BPF_REG_0);
	cgf_asm_ja(g->a, g->l_filter);
}

void gen_parse(struct gen *g)
{
	uint32_t ipv4 = cgf_asm_label(g->a), ipv6 = cgf_asm_label(g->a);
	uint32_t common = cgf_asm_label(g->a);
	int off;

	cgf_asm_note(g->a, "every field 0 until the packet says otherwise");
	for (off = FP_FAMILY; off <= FP_FIELD(0); off += 8) /* family, addresses, fields */
		i_st(g, BPF_DW, BPF_REG_10, (int16_t)off, 0);
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, protocol));
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, htons(ETH_P_IP), ipv4);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, htons(ETH_P_IPV6), ipv6);
	cgf_asm_note(g->a, "neither IPv4 nor IPv6: every field 0");
	cgf_asm_ja(g->a, g->l_filter);

	cgf_asm_place(g->a, ipv4);
	parse_ipv4(g, common);
	cgf_asm_place(g->a, ipv6);
	parse_ipv6(g);

	cgf_asm_place(g->a, common);
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, len));
	if (g->sock && g->sock_ctx == CGF_SOCK_TRANSPORT)
		i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_7); /* the IP headers before it */
	else if (g->sock)
		i_alu(g, BPF_SUB, BPF_REG_0, ETH_HLEN);
	set_field(g, CGF_F_LEN, BPF_REG_0);
	set_field(g, CGF_F_IP_PROTO, BPF_REG_8);
	set_is_proto(g, CGF_F_TCP, IPPROTO_TCP);
	set_is_proto(g, CGF_F_UDP, IPPROTO_UDP);
	parse_l4(g);
}

/* ---- skb->cb: the fields from the entry program to the filter ---------------------- */

static const struct {
	int field, cb, shift, bits;
} packing[] = {
	{ CGF_F_SRC_PORT, 0, 0, 16 },
	{ CGF_F_DST_PORT, 0, 16, 16 },
	{ CGF_F_IP_PROTO, 1, 0, 8 },
	{ CGF_F_ICMP_TYPE, 1, 8, 8 },
	{ CGF_F_ICMP_CODE, 1, 16, 8 },
	{ CGF_F_TCP_FLAGS, 1, 24, 8 },
	{ CGF_F_TTL, 2, 0, 8 },
	{ CGF_F_IP, 2, 8, 1 },
	{ CGF_F_IPV6, 2, 9, 1 },
	{ CGF_F_TCP, 2, 10, 1 },
	{ CGF_F_UDP, 2, 11, 1 },
	{ CGF_F_ICMP, 2, 12, 1 },
	{ CGF_F_FRAG, 2, 13, 1 },
	{ CGF_F_LEN, 4, 0, 32 },
};
#define NPACK (sizeof(packing) / sizeof(packing[0]))
#define FAMILY_SHIFT 16

void gen_pack_cb(struct gen *g)
{
	int c;
	size_t i;

	cgf_asm_note(g->a, "the fields into skb->cb, for the filter");
	for (c = 0; c < 5; c++) {
		if (c == 3)
			continue;
		i_mov(g, BPF_REG_1, 0);
		for (i = 0; i < NPACK; i++) {
			if (packing[i].cb != c)
				continue;
			i_field(g, BPF_REG_0, packing[i].field);
			if (packing[i].shift)
				i_alu(g, BPF_LSH, BPF_REG_0, packing[i].shift);
			i_alur(g, BPF_OR, BPF_REG_1, BPF_REG_0);
		}
		if (c == 2) {
			i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_FAMILY);
			i_alu(g, BPF_LSH, BPF_REG_0, FAMILY_SHIFT);
			i_alur(g, BPF_OR, BPF_REG_1, BPF_REG_0);
		}
		i_stx(g, BPF_W, R_CTX, CB(c), BPF_REG_1);
	}
}

/* The byte offset in skb of the bits [shift, shift + bits) of cb[c], bits
 * a multiple of 8 and shift too. */
static int16_t cb_byte(int c, int shift, int bits)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	(void)bits;
	return (int16_t)(CB(c) + shift / 8);
#else
	return (int16_t)(CB(c) + (32 - shift - bits) / 8);
#endif
}

static uint8_t load_size(int bits)
{
	return bits == 8 ? BPF_B : bits == 16 ? BPF_H : BPF_W;
}

/*
 * r = local_port or remote_port: the half of cb[0] (src_port | dst_port <<
 * 16) the direction picks, without a branch (see gen_field()): the
 * shift is 16 * (ingress_ifindex != 0) for local_port, the other half for
 * remote_port.  r5 is scratch (dst is r0 or r1).
 */
static void dir_port(struct gen *g, uint8_t dst, int field)
{
	bool local = field == CGF_F_LOCAL_PORT;

	if (g->sock) { /* a socket filter only sees packets received */
		gen_field(g, dst, local ? CGF_F_DST_PORT : CGF_F_SRC_PORT);
		return;
	}
	i_ldx(g, BPF_W, BPF_REG_5, R_CTX, offsetof(struct __sk_buff, ingress_ifindex));
	i_neg(g, BPF_REG_5);                    /* bit 63 set if it was not 0 */
	i_alu(g, BPF_RSH, BPF_REG_5, 63);
	i_alu(g, BPF_LSH, BPF_REG_5, 4);        /* 16 if received, else 0 */
	if (!local)
		i_alu(g, BPF_XOR, BPF_REG_5, 16);
	i_ldx(g, BPF_W, dst, R_CTX, CB(0));
	i_alur(g, BPF_RSH, dst, BPF_REG_5);
	i_alu(g, BPF_AND, dst, 0xffff);
}

/*
 * r = a field, read from skb->cb where it is used, not from a stack slot:
 *  - a read of the stack is work for the verifier's stack liveness, which
 *    it redoes over the whole program after each path it finishes (a chain
 *    of 5000 'tcp ||' took a second, and grew with the square);
 *  - a register filled from a slot shares an id with it, and a test of the
 *    register narrows the slot too ('ttl < 5' leaves ttl in [0, 4] on one
 *    path, [5, 255] on the other): with many tests the paths met with the
 *    slots in many ranges and the verifier could not merge them (a few
 *    hundred terms were past its million instructions).
 * A field of 8, 16 or 32 bits is one load; a flag is its byte, shifted and
 * masked.
 */
void gen_field(struct gen *g, uint8_t dst, int field)
{
	size_t i;

	if (field == CGF_F_LOCAL_PORT || field == CGF_F_REMOTE_PORT) {
		dir_port(g, dst, field);
		return;
	}

	for (i = 0; i < NPACK && packing[i].field != field; i++)
		;
	if (i == NPACK) {
		gen_fail(g, -EINVAL, "internal error: field %d", field);
		return;
	}
	if (packing[i].bits >= 8) {
		i_ldx(g, load_size(packing[i].bits), dst, R_CTX,
		      cb_byte(packing[i].cb, packing[i].shift, packing[i].bits));
		return;
	}
	i_ldx(g, BPF_B, dst, R_CTX, cb_byte(packing[i].cb, packing[i].shift & ~7, 8));
	if (packing[i].shift & 7)
		i_alu(g, BPF_RSH, dst, packing[i].shift & 7);
	i_alu(g, BPF_AND, dst, (1 << packing[i].bits) - 1);
}

/* For a test of a field: a flag's byte into r and its bit returned (test
 * it with JSET), or the field into r and 0 returned. */
int gen_field_test(struct gen *g, uint8_t dst, int field)
{
	size_t i;

	for (i = 0; i < NPACK && packing[i].field != field; i++)
		;
	if (i == NPACK || packing[i].bits != 1) {
		gen_field(g, dst, field);
		return 0;
	}
	i_ldx(g, BPF_B, dst, R_CTX, cb_byte(packing[i].cb, packing[i].shift & ~7, 8));
	return 1 << (packing[i].shift & 7);
}

/* r = 0, which the verifier does not know: the drop program's slot, bits
 * 16-31 of cb[3] (include/cgf_abi.h; why: gen.h) */
void gen_opaque(struct gen *g, uint8_t dst)
{
	i_ldx(g, BPF_H, dst, R_CTX, cb_byte(3, CGF_CB_DROP_SHIFT, 16));
}

/* r = the family: 4, 6 or 0 */
void gen_family(struct gen *g, uint8_t dst)
{
	i_ldx(g, BPF_B, dst, R_CTX, cb_byte(2, FAMILY_SHIFT, 8));
}

/*
 * The source and destination addresses (those of which), n bytes each (4
 * or 16) at offset k of the packet, into FP_SADDR and FP_DADDR: from its linear data, else
 * with bpf_skb_load_bytes; to g->l_malformed if the packet is shorter (the
 * entry program has checked it is not).
 */
static void copy_addrs(struct gen *g, int k, int n, unsigned which)
{
	uint32_t direct = cgf_asm_label(g->a), done = cgf_asm_label(g->a);
	int off, i;

	i_ldx(g, BPF_W, BPF_REG_2, R_CTX, offsetof(struct __sk_buff, data));
	i_ldx(g, BPF_W, BPF_REG_3, R_CTX, offsetof(struct __sk_buff, data_end));
	i_alu(g, BPF_ADD, BPF_REG_2, k);
	i_movr(g, BPF_REG_4, BPF_REG_2);
	i_alu(g, BPF_ADD, BPF_REG_4, 2 * n);
	cgf_asm_jmp_reg(g->a, BPF_JLE, BPF_REG_4, BPF_REG_3, direct);
	/* (first: see gen_fetch()) every address wanted is 0 until read:
	 * on a failure the drop program reports what it has */
	for (i = 0; i < 2; i++) {
		int16_t fp = i ? FP_DADDR : FP_SADDR;

		if (!(which & (i ? GEN_DADDR : GEN_SADDR)))
			continue;
		i_st(g, n == 4 ? BPF_W : BPF_DW, BPF_REG_10, fp, 0);
		if (n == 16)
			i_st(g, BPF_DW, BPF_REG_10, fp + 8, 0);
	}
	for (i = 0; i < 2; i++) {
		if (!(which & (i ? GEN_DADDR : GEN_SADDR)))
			continue;
		i_movr(g, BPF_REG_1, R_CTX);
		i_mov(g, BPF_REG_2, (uint64_t)(k + i * n));
		i_fp(g, BPF_REG_3, i ? FP_DADDR : FP_SADDR);
		i_mov(g, BPF_REG_4, (uint64_t)n);
		i_call(g, BPF_FUNC_skb_load_bytes);
		cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, g->l_malformed);
	}
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, direct);
	for (i = 0; i < 2; i++) {
		if (!(which & (i ? GEN_DADDR : GEN_SADDR)))
			continue;
		for (off = 0; off < n; off += n - off >= 8 ? 8 : 4) {
			uint8_t sz = n - off >= 8 ? BPF_DW : BPF_W;

			i_ldx(g, sz, BPF_REG_5, BPF_REG_2, (int16_t)(i * n + off));
			i_stx(g, sz, BPF_REG_10, (int16_t)((i ? FP_DADDR : FP_SADDR) + off), BPF_REG_5);
		}
	}
	cgf_asm_place(g->a, done);
}

/*
 * FP_FAMILY, FP_SADDR and FP_DADDR, the addresses read from the packet
 * (network order, IPv4 in the first 4 bytes, the rest 0; 0 if neither
 * IPv4 nor IPv6), each stored once: in a filter program.  A socket filter
 * parsed the packet itself (gen_parse() stored them).
 */
static void unpack_addrs(struct gen *g, unsigned which)
{
	uint32_t v4 = cgf_asm_label(g->a), v6 = cgf_asm_label(g->a);
	uint32_t done = cgf_asm_label(g->a);
	int i;

	if (g->sock) /* its own gen_parse() left them there */
		return;
	cgf_asm_note(g->a, "the addresses, from the packet");
	i_ldx(g, BPF_B, BPF_REG_0, R_CTX, cb_byte(2, FAMILY_SHIFT, 8));
	i_stx(g, BPF_DW, BPF_REG_10, FP_FAMILY, BPF_REG_0);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 4, v4);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 6, v6);
	for (i = 0; i < 2; i++) {
		int16_t fp = i ? FP_DADDR : FP_SADDR;

		if (!(which & (i ? GEN_DADDR : GEN_SADDR)))
			continue;
		i_st(g, BPF_DW, BPF_REG_10, fp, 0);
		i_st(g, BPF_DW, BPF_REG_10, fp + 8, 0);
	}
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, v4);
	for (i = 0; i < 2; i++) {
		int16_t fp = i ? FP_DADDR : FP_SADDR;

		if (!(which & (i ? GEN_DADDR : GEN_SADDR)))
			continue;
		i_st(g, BPF_W, BPF_REG_10, fp + 4, 0);
		i_st(g, BPF_DW, BPF_REG_10, fp + 8, 0);
	}
	copy_addrs(g, 12, 4, which);
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, v6);
	copy_addrs(g, 8, 16, which);
	cgf_asm_place(g->a, done);
}

void gen_unpack_cb(struct gen *g, uint32_t fields, unsigned addrs)
{
	size_t i;

	for (i = 0; i < NPACK; i++) {
		if (!(fields & (1u << packing[i].field)))
			continue;
		i_ldx(g, BPF_W, BPF_REG_0, R_CTX, CB(packing[i].cb));
		if (packing[i].shift)
			i_alu(g, BPF_RSH, BPF_REG_0, packing[i].shift);
		if (packing[i].bits < 32)
			i_alu(g, BPF_AND, BPF_REG_0, (int32_t)((1u << packing[i].bits) - 1));
		set_field(g, packing[i].field, BPF_REG_0);
	}
	if (addrs)
		unpack_addrs(g, addrs);
}

void gen_local_remote(struct gen *g)
{
	uint32_t sent = cgf_asm_label(g->a), done = cgf_asm_label(g->a);
	int i, dir;

	cgf_asm_note(g->a, "local_ip, remote_ip: dst_ip, src_ip if received, else src_ip, dst_ip");
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, ingress_ifindex));
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, sent);
	for (dir = 0; dir < 2; dir++) {
		int16_t l = dir ? FP_SADDR : FP_DADDR, r = dir ? FP_DADDR : FP_SADDR;

		if (dir)
			cgf_asm_place(g->a, sent);
		for (i = 0; i < 2; i++) {
			i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(l + 8 * i));
			i_stx(g, BPF_DW, BPF_REG_10, (int16_t)(FP_LADDR + 8 * i), BPF_REG_0);
			i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(r + 8 * i));
			i_stx(g, BPF_DW, BPF_REG_10, (int16_t)(FP_RADDR + 8 * i), BPF_REG_0);
		}
		if (!dir)
			cgf_asm_ja(g->a, done);
	}
	cgf_asm_place(g->a, done);
}
