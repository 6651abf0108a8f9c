// SPDX-License-Identifier: GPL-2.0-only
/*
 * The classic BPF back end (emit_cbpf.h): a parsed filter into a socket
 * filter an ordinary user may attach.
 *
 * Scratch words: the parser leaves the fields in M[0..4] (FLAGS: ip, ipv6,
 * tcp, udp, icmp, frag as bits 0..5; PROTO; PORTS: src << 16 | dst; MISC:
 * ttl | tcp_flags << 8 | icmp_code << 16 | icmp_type << 24; LEN) and uses
 * M[5..7] while it parses; the filter then spills values to M[5..15].
 *
 * Headers are read at SKF_NET_OFF + offset.  A read past the end of the
 * packet ends a classic filter with 0 (drop), so "these bytes must be
 * there" is a read of the last of them: the same packets are malformed as
 * in include/cgf_parse.bpf.h, which compares offsets with skb->len.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "emit_cbpf.h"

enum { M_FLAGS, M_PROTO, M_PORTS, M_MISC, M_LEN, M_OFF, M_NONFIRST, M_TMP };
#define M_STACK 5               /* the filter's spills: M[5..15] */
#define STACK_SLOTS (BPF_MEMWORDS - M_STACK)
enum { B_IP, B_IPV6, B_TCP, B_UDP, B_ICMP, B_FRAG };
#define NET(k) ((uint32_t)(SKF_NET_OFF + (k)))

/* an instruction before layout: jumps name labels */
struct cins {
	uint16_t code;
	uint32_t k;
	uint32_t jt, jf;        /* labels (conditional jumps); jt for ja */
};

struct rng {
	uint64_t lo, hi;
	int need;               /* scratch words its evaluation spills */
};

struct cb {
	struct cins *ins;
	size_t n, cap;
	uint32_t *label;        /* instruction index a label is placed at */
	size_t nlabels, lcap;
	struct rng *r;          /* per node, by aux */
	size_t nr;
	int sp;
	enum cgf_cbpf_ctx ctx;
	uint32_t l_drop, l_filter;
	struct cgf_error *err;
	int failed;             /* 0, -EINVAL, -E2BIG, -ENOMEM */
};

#define U32_MAX_ 0xffffffffull

static void fail(struct cb *c, int err, const struct cgf_node *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct cb *c, int err, const struct cgf_node *n, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return;
	c->failed = err;
	c->err->line = n ? n->line : 0;
	c->err->col = n ? n->col : 0;
	va_start(ap, fmt);
	vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
	va_end(ap);
}

/* ---- the assembler: labels, and long jumps made of ja ---------------------- */

static uint32_t label(struct cb *c)
{
	if (!cgf_grow((void **)&c->label, c->nlabels, &c->lcap, sizeof(*c->label), 64)) {
		fail(c, -ENOMEM, NULL, "out of memory");
		return 0;
	}
	c->label[c->nlabels] = UINT32_MAX;
	return (uint32_t)c->nlabels++;
}

static void place(struct cb *c, uint32_t l)
{
	if (!c->failed)
		c->label[l] = (uint32_t)c->n;
}

static void emit(struct cb *c, uint16_t code, uint32_t k, uint32_t jt, uint32_t jf)
{
	if (c->failed)
		return;
	if (c->n > 4 * BPF_MAXINSNS) { /* refused below; stop growing */
		fail(c, -E2BIG, NULL, "too large for classic BPF (more than %d instructions)",
		     BPF_MAXINSNS);
		return;
	}
	if (!cgf_grow((void **)&c->ins, c->n, &c->cap, sizeof(*c->ins), 256)) {
		fail(c, -ENOMEM, NULL, "out of memory");
		return;
	}
	c->ins[c->n++] = (struct cins){ code, k, jt, jf };
}

static void op(struct cb *c, uint16_t code, uint32_t k) { emit(c, code, k, 0, 0); }
static void ld_imm(struct cb *c, uint32_t k) { op(c, BPF_LD | BPF_IMM, k); }
static void ld_mem(struct cb *c, uint32_t m) { op(c, BPF_LD | BPF_MEM, m); }
static void ldx_mem(struct cb *c, uint32_t m) { op(c, BPF_LDX | BPF_MEM, m); }
static void st(struct cb *c, uint32_t m) { op(c, BPF_ST, m); }
static void alu(struct cb *c, uint16_t o, uint32_t k) { op(c, BPF_ALU | o | BPF_K, k); }
static void alu_x(struct cb *c, uint16_t o) { op(c, BPF_ALU | o | BPF_X, 0); }
static void tax(struct cb *c) { op(c, BPF_MISC | BPF_TAX, 0); }
static void ja(struct cb *c, uint32_t l) { emit(c, BPF_JMP | BPF_JA, 0, l, 0); }
static void jmp(struct cb *c, uint16_t o, uint32_t k, uint32_t t, uint32_t f)
{
	emit(c, BPF_JMP | o | BPF_K, k, t, f);
}
static void jmp_x(struct cb *c, uint16_t o, uint32_t t, uint32_t f)
{
	emit(c, BPF_JMP | o | BPF_X, 0, t, f);
}

static bool is_cond(uint16_t code)
{
	return BPF_CLASS(code) == BPF_JMP && BPF_OP(code) != BPF_JA;
}

/* Lay out: a conditional jump whose target is more than 255 instructions
 * on becomes "jcc 0, 1; ja T; ja F".  Sizes only grow, so this ends. */
static int layout(struct cb *c, struct sock_filter **out, size_t *len)
{
	uint8_t *big = calloc(c->n + 1, 1);
	uint32_t *addr = calloc(c->n + 1, sizeof(*addr));
	struct sock_filter *p = NULL;
	bool changed = true;
	size_t i, total = 0;

	if (!big || !addr)
		goto nomem;
	while (changed) {
		changed = false;
		for (i = 0, total = 0; i <= c->n; i++) {
			addr[i] = (uint32_t)total;
			if (i < c->n)
				total += big[i] ? 3 : 1;
		}
		for (i = 0; i < c->n; i++) {
			if (!is_cond(c->ins[i].code) || big[i])
				continue;
			if (addr[c->label[c->ins[i].jt]] - addr[i] - 1 > 255 ||
			    addr[c->label[c->ins[i].jf]] - addr[i] - 1 > 255)
				big[i] = changed = true;
		}
	}
	if (total > BPF_MAXINSNS) {
		free(big);
		free(addr);
		fail(c, -E2BIG, NULL, "too large for classic BPF: %zu instructions (at most %d)", total,
		     BPF_MAXINSNS);
		return c->failed;
	}
	p = calloc(total, sizeof(*p));
	if (!p)
		goto nomem;
	for (i = 0; i < c->n; i++) {
		const struct cins *x = &c->ins[i];
		struct sock_filter *o = &p[addr[i]];
		uint32_t a = addr[i], t = addr[c->label[x->jt]], f = addr[c->label[x->jf]];

		if (BPF_CLASS(x->code) == BPF_JMP && BPF_OP(x->code) == BPF_JA) {
			*o = (struct sock_filter){ x->code, 0, 0, t - a - 1 };
		} else if (!is_cond(x->code)) {
			*o = (struct sock_filter){ x->code, 0, 0, x->k };
		} else if (!big[i]) {
			*o = (struct sock_filter){ x->code, (uint8_t)(t - a - 1), (uint8_t)(f - a - 1), x->k };
		} else {
			o[0] = (struct sock_filter){ x->code, 0, 1, x->k };
			o[1] = (struct sock_filter){ BPF_JMP | BPF_JA, 0, 0, t - a - 2 };
			o[2] = (struct sock_filter){ BPF_JMP | BPF_JA, 0, 0, f - a - 3 };
		}
	}
	free(big);
	free(addr);
	*out = p;
	*len = total;
	return 0;
nomem:
	free(big);
	free(addr);
	fail(c, -ENOMEM, NULL, "out of memory");
	return c->failed;
}

/* ---- the packet parser ------------------------------------------------------ */

/* A = the byte (BPF_B) or half word at net + k (+ X when ind) */
static void ld_net(struct cb *c, uint16_t size, bool ind, uint32_t k)
{
	op(c, BPF_LD | size | (ind ? BPF_IND : BPF_ABS), NET(k));
}

/* the bytes up to net + M_OFF + k must be there: read the last one */
static void need_off(struct cb *c, uint32_t k)
{
	ldx_mem(c, M_OFF);
	ld_net(c, BPF_B, true, k - 1);
}

static void set_bit(struct cb *c, int bit)
{
	ld_mem(c, M_FLAGS);
	alu(c, BPF_OR, 1u << bit);
	st(c, M_FLAGS);
}

/* A = proto: set the icmp bit if it is icmp_proto (A kept) */
static void icmp_bit(struct cb *c, uint32_t icmp_proto)
{
	uint32_t yes = label(c), no = label(c);

	ld_mem(c, M_PROTO);
	jmp(c, BPF_JEQ, icmp_proto, yes, no);
	place(c, yes);
	set_bit(c, B_ICMP);
	place(c, no);
}

static void parse_ipv4(struct cb *c, uint32_t common)
{
	uint32_t ok = label(c), ihl_ok = label(c), frag = label(c), nofrag = label(c);
	uint32_t first = label(c), nonfirst = label(c);

	ld_net(c, BPF_B, false, 19);            /* a header of 20 bytes */
	ld_net(c, BPF_B, false, 0);
	alu(c, BPF_AND, 0xf0);
	jmp(c, BPF_JEQ, 0x40, ok, c->l_drop);   /* version 4 */
	place(c, ok);
	ld_net(c, BPF_B, false, 0);
	alu(c, BPF_AND, 0xf);
	jmp(c, BPF_JGE, 5, ihl_ok, c->l_drop);  /* IHL 5 or more */
	place(c, ihl_ok);
	alu(c, BPF_LSH, 2);
	st(c, M_OFF);
	need_off(c, 0);                         /* options included */
	ld_imm(c, 1u << B_IP);
	st(c, M_FLAGS);
	ld_net(c, BPF_B, false, 8);
	st(c, M_MISC);                          /* ttl */
	ld_net(c, BPF_B, false, 9);
	st(c, M_PROTO);
	ld_net(c, BPF_H, false, 6);             /* MF or an offset: a fragment */
	alu(c, BPF_AND, 0x3fff);
	jmp(c, BPF_JEQ, 0, nofrag, frag);
	place(c, frag);
	set_bit(c, B_FRAG);
	place(c, nofrag);
	ld_net(c, BPF_H, false, 6);             /* an offset: not the first */
	alu(c, BPF_AND, 0x1fff);
	jmp(c, BPF_JEQ, 0, first, nonfirst);
	place(c, nonfirst);
	ld_imm(c, 1);
	st(c, M_NONFIRST);
	place(c, first);
	icmp_bit(c, IPPROTO_ICMP);
	ja(c, common);
}

/* the protocol in M_PROTO: to s8 for a header of (len + 1) * 8 bytes, ah,
 * frag, or no (not an extension header) */
static void is_ext(struct cb *c, uint32_t s8, uint32_t ah, uint32_t frag, uint32_t no)
{
	static const uint32_t sized8[] = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
					   135 /* mobility */, 139 /* HIP */, 140 /* shim6 */ };
	size_t i;

	ld_mem(c, M_PROTO);
	for (i = 0; i < sizeof(sized8) / sizeof(sized8[0]); i++) {
		uint32_t next = label(c);

		jmp(c, BPF_JEQ, sized8[i], s8, next);
		place(c, next);
	}
	{
		uint32_t next = label(c);

		jmp(c, BPF_JEQ, IPPROTO_AH, ah, next);
		place(c, next);
	}
	jmp(c, BPF_JEQ, IPPROTO_FRAGMENT, frag, no);
}

/* A = (the header's length byte + add) << shift, its size; X = M_OFF */
static void ext_size(struct cb *c, uint32_t add, uint32_t shift)
{
	need_off(c, 2);
	ld_net(c, BPF_B, true, 1);
	alu(c, BPF_ADD, add);
	alu(c, BPF_LSH, shift);
}

/* one step of the IPv6 extension header chain; goes to done when the
 * protocol in M_PROTO is not an extension header */
static void ext_step(struct cb *c, uint32_t done)
{
	uint32_t s8 = label(c), ah = label(c), frag = label(c), adv = label(c), next = label(c);

	is_ext(c, s8, ah, frag, done);
	place(c, frag);                         /* 8 bytes, maybe the end */
	need_off(c, 8);
	set_bit(c, B_FRAG);
	ldx_mem(c, M_OFF);
	ld_net(c, BPF_B, true, 0);
	st(c, M_PROTO);
	ld_net(c, BPF_H, true, 2);
	alu(c, BPF_AND, 0xfff8);
	st(c, M_TMP);
	ld_mem(c, M_OFF);
	alu(c, BPF_ADD, 8);
	st(c, M_OFF);
	ld_mem(c, M_TMP);
	{
		uint32_t later = label(c);

		jmp(c, BPF_JEQ, 0, next, later);
		place(c, later);
		ld_imm(c, 1);
		st(c, M_NONFIRST);
		ja(c, done);
	}

	place(c, ah);                           /* (len + 2) * 4 bytes */
	ext_size(c, 2, 2);
	ja(c, adv);
	place(c, s8);                           /* (len + 1) * 8 bytes */
	ext_size(c, 1, 3);
	place(c, adv);                          /* A = its size, X = M_OFF */
	st(c, M_TMP);
	ld_net(c, BPF_B, true, 0);
	st(c, M_PROTO);
	ld_mem(c, M_TMP);
	alu_x(c, BPF_ADD);
	st(c, M_OFF);
	need_off(c, 0);                         /* all of it */
	place(c, next);
}

static void parse_ipv6(struct cb *c, uint32_t common)
{
	uint32_t ok = label(c), done = label(c);
	int i;

	ld_net(c, BPF_B, false, 39);            /* a header of 40 bytes */
	ld_net(c, BPF_B, false, 0);
	alu(c, BPF_AND, 0xf0);
	jmp(c, BPF_JEQ, 0x60, ok, c->l_drop);
	place(c, ok);
	ld_imm(c, 1u << B_IPV6);
	st(c, M_FLAGS);
	ld_net(c, BPF_B, false, 7);
	st(c, M_MISC);                          /* hop limit */
	ld_net(c, BPF_B, false, 6);
	st(c, M_PROTO);
	ld_imm(c, 40);
	st(c, M_OFF);
	for (i = 0; i < CGF_MAX_EXT_HDRS; i++)
		ext_step(c, done);
	/* still an extension header: too deep */
	is_ext(c, c->l_drop, c->l_drop, c->l_drop, done);
	place(c, done);
	icmp_bit(c, IPPROTO_ICMPV6);
	ja(c, common);
}

/* the ports (and TCP flags or ICMP type and code) at M_OFF */
static void parse_l4(struct cb *c)
{
	uint32_t tcp = label(c), udp = label(c), n1 = label(c), n2 = label(c), icmp = label(c);
	uint32_t doff_ok = label(c), ports = label(c);

	/* by the protocol bits parse() set */
	ld_mem(c, M_FLAGS);
	jmp(c, BPF_JSET, 1u << B_TCP, tcp, n1);
	place(c, n1);
	jmp(c, BPF_JSET, 1u << B_UDP, udp, n2);
	place(c, n2);
	jmp(c, BPF_JSET, 1u << B_ICMP, icmp, c->l_filter);

	place(c, tcp);
	need_off(c, 20);
	ld_net(c, BPF_B, true, 12);             /* data offset, 20 bytes or more */
	alu(c, BPF_RSH, 4);
	alu(c, BPF_LSH, 2);
	jmp(c, BPF_JGE, 20, doff_ok, c->l_drop);
	place(c, doff_ok);
	alu_x(c, BPF_ADD);                      /* ... all there */
	tax(c);
	ld_net(c, BPF_B, true, (uint32_t)-1);
	ldx_mem(c, M_OFF);
	ld_net(c, BPF_B, true, 13);
	alu(c, BPF_LSH, 8);
	tax(c);
	ld_mem(c, M_MISC);
	alu_x(c, BPF_OR);
	st(c, M_MISC);
	ja(c, ports);

	place(c, udp);
	need_off(c, 8);
	place(c, ports);
	ldx_mem(c, M_OFF);
	ld_net(c, BPF_H, true, 0);
	alu(c, BPF_LSH, 16);
	st(c, M_TMP);
	ld_net(c, BPF_H, true, 2);
	ldx_mem(c, M_TMP);
	alu_x(c, BPF_OR);
	st(c, M_PORTS);
	ja(c, c->l_filter);

	place(c, icmp);
	need_off(c, 4);
	ld_net(c, BPF_B, true, 0);
	alu(c, BPF_LSH, 24);
	st(c, M_TMP);
	ld_net(c, BPF_B, true, 1);
	alu(c, BPF_LSH, 16);
	ldx_mem(c, M_TMP);
	alu_x(c, BPF_OR);
	tax(c);
	ld_mem(c, M_MISC);
	alu_x(c, BPF_OR);
	st(c, M_MISC);
	ja(c, c->l_filter);
}

static void parse(struct cb *c)
{
	uint32_t v4 = label(c), v6 = label(c), n1 = label(c), common = label(c);
	uint32_t tcp = label(c), udp = label(c), flags = label(c), l4 = label(c);
	uint32_t n2 = label(c);
	int m;

	ld_imm(c, 0);
	for (m = 0; m <= M_TMP; m++)
		st(c, m);
	op(c, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL));
	jmp(c, BPF_JEQ, 0x0800, v4, n1);
	place(c, n1);
	jmp(c, BPF_JEQ, 0x86dd, v6, c->l_filter); /* neither: every field 0 */
	place(c, v4);
	parse_ipv4(c, common);
	place(c, v6);
	parse_ipv6(c, common);

	place(c, common);
	/* len: from the IP header on */
	op(c, BPF_LD | BPF_W | BPF_LEN, 0);
	if (c->ctx == CGF_CBPF_SOCKET) {
		ldx_mem(c, M_OFF);
		alu_x(c, BPF_ADD);
	} else {
		alu(c, BPF_SUB, 14);
	}
	st(c, M_LEN);
	ld_mem(c, M_PROTO);
	jmp(c, BPF_JEQ, IPPROTO_TCP, tcp, n2);
	place(c, n2);
	jmp(c, BPF_JEQ, IPPROTO_UDP, udp, flags);
	place(c, tcp);
	set_bit(c, B_TCP);
	ja(c, flags);
	place(c, udp);
	set_bit(c, B_UDP);
	place(c, flags);
	ld_mem(c, M_NONFIRST);                  /* no transport header */
	jmp(c, BPF_JEQ, 0, l4, c->l_filter);
	place(c, l4);
	parse_l4(c);
}

/* ---- ranges: what fits in 32 bits ------------------------------------------- */

/* A socket filter only sees packets received: local_port is dst_port and
 * remote_port src_port (local_ip dst_ip, remote_ip src_ip: in_set()). */
static const struct { uint64_t hi; uint8_t slot, shift; uint32_t mask; } fields[CGF_NALLFIELDS] = {
	[CGF_F_IP] = { 1, M_FLAGS, B_IP, 1 },
	[CGF_F_IPV6] = { 1, M_FLAGS, B_IPV6, 1 },
	[CGF_F_TCP] = { 1, M_FLAGS, B_TCP, 1 },
	[CGF_F_UDP] = { 1, M_FLAGS, B_UDP, 1 },
	[CGF_F_ICMP] = { 1, M_FLAGS, B_ICMP, 1 },
	[CGF_F_FRAG] = { 1, M_FLAGS, B_FRAG, 1 },
	[CGF_F_SRC_PORT] = { 65535, M_PORTS, 16, 0xffff },
	[CGF_F_DST_PORT] = { 65535, M_PORTS, 0, 0xffff },
	[CGF_F_LOCAL_PORT] = { 65535, M_PORTS, 0, 0xffff },
	[CGF_F_REMOTE_PORT] = { 65535, M_PORTS, 16, 0xffff },
	/* skb->len's 32 bits: segmentation offload (BIG TCP) makes packets
	 * longer than an IP length field can say */
	[CGF_F_LEN] = { 0xffffffff, M_LEN, 0, 0 },
	[CGF_F_IP_PROTO] = { 255, M_PROTO, 0, 0 },
	[CGF_F_TTL] = { 255, M_MISC, 0, 0xff },
	[CGF_F_TCP_FLAGS] = { 255, M_MISC, 8, 0xff },
	[CGF_F_ICMP_CODE] = { 255, M_MISC, 16, 0xff },
	[CGF_F_ICMP_TYPE] = { 255, M_MISC, 24, 0 },
};

#define FULL ((struct rng){ 0, UINT64_MAX, 0 })

static bool fits(const struct rng *r) { return r->hi <= U32_MAX_; }

static struct rng *R(struct cb *c, const struct cgf_node *n) { return &c->r[n->aux]; }

static int bits_of(uint64_t v)
{
	return v ? 64 - __builtin_clzll(v) : 0;
}

static struct rng range_binary(const struct cgf_node *n, const struct rng *a, const struct rng *b)
{
	uint64_t x, y;

	switch (n->op) {
	case CGF_OP_ADD:
		if (__builtin_add_overflow(a->hi, b->hi, &y))
			return FULL;
		return (struct rng){ a->lo + b->lo, y, 0 };
	case CGF_OP_SUB:
		if (a->lo < b->hi)
			return FULL;
		return (struct rng){ a->lo - b->hi, a->hi - b->lo, 0 };
	case CGF_OP_MUL:
		if (__builtin_mul_overflow(a->hi, b->hi, &y))
			return FULL;
		return (struct rng){ a->lo * b->lo, y, 0 };
	case CGF_OP_BAND:
		return (struct rng){ 0, a->hi < b->hi ? a->hi : b->hi, 0 };
	case CGF_OP_BOR:
	case CGF_OP_BXOR:
		x = a->hi > b->hi ? a->hi : b->hi;
		y = bits_of(x) == 64 ? UINT64_MAX : (1ULL << bits_of(x)) - 1;
		return (struct rng){ 0, y, 0 };
	case CGF_OP_SHL:
		if (b->hi > 63 || (b->hi && a->hi > (UINT64_MAX >> b->hi)))
			return FULL;
		return (struct rng){ a->lo << b->lo, a->hi << b->hi, 0 };
	case CGF_OP_SHR:
		if (b->hi > 63)
			return (struct rng){ 0, a->hi, 0 };
		return (struct rng){ a->lo >> b->hi, a->hi >> b->lo, 0 };
	case CGF_OP_DIV:
		if (b->lo)
			return (struct rng){ a->lo / b->hi, a->hi / b->lo, 0 };
		return (struct rng){ 0, a->hi, 0 };
	case CGF_OP_MOD:
		return (struct rng){ 0, b->lo && b->hi - 1 < a->hi ? b->hi - 1 : a->hi, 0 };
	default: /* comparisons, && || */
		return (struct rng){ 0, 1, 0 };
	}
}

static bool commutative(enum cgf_op op)
{
	return op == CGF_OP_ADD || op == CGF_OP_MUL || op == CGF_OP_BAND || op == CGF_OP_BOR ||
	       op == CGF_OP_BXOR || op == CGF_OP_EQ || op == CGF_OP_NE;
}

/* scratch words a binary node's evaluation needs (b first or a first) */
static int need2(int na, int nb)
{
	int x = na > nb + 1 ? na : nb + 1, y = nb > na + 1 ? nb : na + 1;

	return x < y ? x : y;
}

static int range_of(struct cgf_node *n, void *ctx)
{
	struct cb *c = ctx;
	struct rng r = FULL;

	if (c->nr == SIZE_MAX)
		return -ENOMEM;
	n->aux = (int)c->nr;
	if (n->is_const) {
		r = (struct rng){ n->cval, n->cval, 0 };
	} else if (n->kind == CGF_N_FIELD) {
		r = (struct rng){ 0, fields[n->field].hi, 0 };
	} else if (n->kind == CGF_N_UNARY) {
		const struct rng *a = R(c, n->a);

		if (n->op == CGF_OP_NOT)
			r = (struct rng){ 0, 1, 0 };
		else if (n->op == CGF_OP_BNOT)
			r = (struct rng){ ~a->hi, ~a->lo, 0 };
		else if (a->lo) /* - */
			r = (struct rng){ -a->hi, -a->lo, 0 };
		r.need = a->need;
	} else if (n->kind == CGF_N_BINARY) {
		const struct rng *a = R(c, n->a), *b = R(c, n->b);

		r = range_binary(n, a, b);
		r.need = n->b->is_const ? a->need : need2(a->need, b->need);
	} else if (n->kind == CGF_N_COND) {
		const struct rng *a = R(c, n->a), *b = R(c, n->b), *d = R(c, n->c);

		r = (struct rng){ b->lo < d->lo ? b->lo : d->lo, b->hi > d->hi ? b->hi : d->hi, 0 };
		r.need = a->need > b->need ? a->need : b->need;
		r.need = r.need > d->need ? r.need : d->need;
	} else if (n->kind == CGF_N_IN || n->kind == CGF_N_SETOP) {
		r = (struct rng){ n->kind == CGF_N_SETOP, 1, n->a->kind == CGF_N_ADDR ? 0 : R(c, n->a)->need };
	} else { /* an address: only under 'in' */
		r = (struct rng){ 0, 0, 0 };
	}
	c->r[c->nr++] = r;
	return 0;
}

static const char *op_text(enum cgf_op op)
{
	static const char *const t[] = {
		[CGF_OP_LOR] = "||", [CGF_OP_LAND] = "&&", [CGF_OP_BOR] = "|", [CGF_OP_BXOR] = "^",
		[CGF_OP_BAND] = "&", [CGF_OP_EQ] = "==", [CGF_OP_NE] = "!=", [CGF_OP_LT] = "<",
		[CGF_OP_LE] = "<=", [CGF_OP_GT] = ">", [CGF_OP_GE] = ">=", [CGF_OP_SHL] = "<<",
		[CGF_OP_SHR] = ">>", [CGF_OP_ADD] = "+", [CGF_OP_SUB] = "-", [CGF_OP_MUL] = "*",
		[CGF_OP_DIV] = "/", [CGF_OP_MOD] = "%", [CGF_OP_NOT] = "!", [CGF_OP_BNOT] = "~",
		[CGF_OP_NEG] = "-",
	};

	return op < sizeof(t) / sizeof(t[0]) && t[op] ? t[op] : "?";
}

/* n's whole value is needed (compared, divided, tested): it must fit */
static bool want_fit(struct cb *c, const struct cgf_node *n, const struct cgf_node *user)
{
	char what[64];

	if (fits(R(c, n)))
		return true;
	if (n->is_const)
		snprintf(what, sizeof(what), "the number %" PRIu64, n->cval);
	else
		snprintf(what, sizeof(what), "the value of '%s'", op_text(n->op));
	if (user)
		fail(c, -EINVAL, n,
		     "classic BPF cannot compute this filter: %s may not fit in 32 bits, and "
		     "'%s' needs all of it", what,
		     user->kind == CGF_N_IN ? "in" : user->kind == CGF_N_COND ? "?:" :
						      op_text(user->op));
	else
		fail(c, -EINVAL, n,
		     "classic BPF cannot compute this filter: %s may not fit in 32 bits, and "
		     "the verdict needs all of it", what);
	return false;
}

/* ---- the filter: A = the value of a node ------------------------------------ */

static void value(struct cb *c, const struct cgf_node *n);

/* A = a value of n that is 0 exactly when n is (n tested for truth by user) */
static bool truth(struct cb *c, const struct cgf_node *n, const struct cgf_node *user)
{
	if (n->is_const) {
		ld_imm(c, n->cval != 0);
		return true;
	}
	if (!want_fit(c, n, user))
		return false;
	value(c, n);
	return true;
}

static void push(struct cb *c, const struct cgf_node *n)
{
	if (c->sp >= STACK_SLOTS) {
		fail(c, -EINVAL, n,
		     "nested too deeply for classic BPF's %d scratch words", STACK_SLOTS);
		return;
	}
	st(c, M_STACK + c->sp++);
}

/* A = 1 if the jump op (A against k or X) is taken, else 0 */
static void to_bool(struct cb *c, uint16_t o, bool x, uint32_t k, bool invert)
{
	uint32_t t = label(c), f = label(c), done = label(c);

	if (x)
		jmp_x(c, o, invert ? f : t, invert ? t : f);
	else
		jmp(c, o, k, invert ? f : t, invert ? t : f);
	place(c, f);
	ld_imm(c, 0);
	ja(c, done);
	place(c, t);
	ld_imm(c, 1);
	place(c, done);
}

/* A = a, X = b (b not a constant), in the order that spills least */
static void operands(struct cb *c, const struct cgf_node *a, const struct cgf_node *b)
{
	if (a->is_const) {
		value(c, b);
		tax(c);
		ld_imm(c, (uint32_t)a->cval);
	} else if (R(c, a)->need >= R(c, b)->need) {
		value(c, a);
		push(c, a);
		value(c, b);
		tax(c);
		ld_mem(c, M_STACK + --c->sp);
	} else {
		value(c, b);
		push(c, b);
		value(c, a);
		ldx_mem(c, M_STACK + --c->sp);
	}
}

static void compare(struct cb *c, const struct cgf_node *n)
{
	const struct rng *a = R(c, n->a), *b = R(c, n->b);
	/* decided by the ranges: 1 or 0 whatever the packet */
	int known = -1;

	switch (n->op) {
	case CGF_OP_EQ:
	case CGF_OP_NE:
		if (a->hi < b->lo || b->hi < a->lo)
			known = n->op == CGF_OP_NE;
		break;
	case CGF_OP_LT: known = a->hi < b->lo ? 1 : a->lo >= b->hi ? 0 : -1; break;
	case CGF_OP_GE: known = a->hi < b->lo ? 0 : a->lo >= b->hi ? 1 : -1; break;
	case CGF_OP_GT: known = a->lo > b->hi ? 1 : a->hi <= b->lo ? 0 : -1; break;
	case CGF_OP_LE: known = a->lo > b->hi ? 0 : a->hi <= b->lo ? 1 : -1; break;
	default: break;
	}
	if (known >= 0) {
		ld_imm(c, (uint32_t)known);
		return;
	}
	if (!want_fit(c, n->a, n) || !want_fit(c, n->b, n))
		return;
	{
		uint16_t o = n->op == CGF_OP_EQ || n->op == CGF_OP_NE ? BPF_JEQ :
			     n->op == CGF_OP_GT || n->op == CGF_OP_LE ? BPF_JGT : BPF_JGE;
		bool inv = n->op == CGF_OP_NE || n->op == CGF_OP_LE || n->op == CGF_OP_LT;

		if (n->b->is_const) {
			value(c, n->a);
			to_bool(c, o, false, (uint32_t)n->b->cval, inv);
		} else {
			operands(c, n->a, n->b);
			to_bool(c, o, true, 0, inv);
		}
	}
}

static uint16_t alu_op(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_ADD: return BPF_ADD;
	case CGF_OP_SUB: return BPF_SUB;
	case CGF_OP_MUL: return BPF_MUL;
	case CGF_OP_BAND: return BPF_AND;
	case CGF_OP_BOR: return BPF_OR;
	case CGF_OP_BXOR: return BPF_XOR;
	case CGF_OP_DIV: return BPF_DIV;
	case CGF_OP_MOD: return BPF_MOD;
	case CGF_OP_SHL: return BPF_LSH;
	default: return BPF_RSH;
	}
}

/* a / b, a % b (x / 0 == 0, x % 0 == x), a << b, a >> b (counts mod 64) */
static void divide_or_shift(struct cb *c, const struct cgf_node *n)
{
	bool shift = n->op == CGF_OP_SHL || n->op == CGF_OP_SHR;
	uint32_t zero = label(c), done = label(c), nz = label(c);

	if (n->op != CGF_OP_SHL && !want_fit(c, n->a, n))
		return;
	if (!shift && !want_fit(c, n->b, n))
		return;
	if (n->b->is_const) {
		uint64_t k = shift ? n->b->cval & 63 : n->b->cval;

		if (k == 0 && n->op == CGF_OP_DIV) {
			ld_imm(c, 0);
		} else if (shift && k >= 32) {
			ld_imm(c, 0); /* the low 32 bits of a << k; a >> k of an a that fits */
		} else {
			value(c, n->a);
			if (k)
				alu(c, alu_op(n->op), (uint32_t)k);
		}
		return;
	}
	value(c, n->a);
	push(c, n->a);
	value(c, n->b);
	if (shift) {
		alu(c, BPF_AND, 63);
		jmp(c, BPF_JGT, 31, zero, nz);
	} else {
		jmp(c, BPF_JEQ, 0, zero, nz);
	}
	place(c, nz);
	tax(c);
	ld_mem(c, M_STACK + c->sp - 1);
	alu_x(c, alu_op(n->op));
	ja(c, done);
	place(c, zero);
	if (n->op == CGF_OP_MOD)
		ld_mem(c, M_STACK + c->sp - 1);
	else
		ld_imm(c, 0);
	place(c, done);
	c->sp--;
}

/* && and ||: A = 0 or 1 */
static void logic(struct cb *c, const struct cgf_node *n)
{
	uint32_t done = label(c), one = label(c), more = label(c), last = label(c);

	if (!truth(c, n->a, n))
		return;
	if (n->op == CGF_OP_LAND)
		jmp(c, BPF_JEQ, 0, done, more); /* A = 0 */
	else
		jmp(c, BPF_JEQ, 0, more, one);
	place(c, more);
	if (!truth(c, n->b, n))
		return;
	jmp(c, BPF_JEQ, 0, done, last);
	place(c, last);
	place(c, one);
	ld_imm(c, 1);
	place(c, done);
}

static void binary(struct cb *c, const struct cgf_node *n)
{
	switch (n->op) {
	case CGF_OP_LAND:
	case CGF_OP_LOR:
		logic(c, n);
		return;
	case CGF_OP_EQ: case CGF_OP_NE: case CGF_OP_LT: case CGF_OP_LE: case CGF_OP_GT:
	case CGF_OP_GE:
		compare(c, n);
		return;
	case CGF_OP_DIV: case CGF_OP_MOD: case CGF_OP_SHL: case CGF_OP_SHR:
		divide_or_shift(c, n);
		return;
	default:
		break;
	}
	/* + - * & | ^: exact modulo 2^32 */
	if (n->b->is_const) {
		value(c, n->a);
		alu(c, alu_op(n->op), (uint32_t)n->b->cval);
	} else if (n->a->is_const && commutative(n->op)) {
		value(c, n->b);
		alu(c, alu_op(n->op), (uint32_t)n->a->cval);
	} else {
		operands(c, n->a, n->b);
		alu_x(c, alu_op(n->op));
	}
}

/* A in sorted, disjoint ranges v[i..j] (A kept): to t or f */
static void range_tree(struct cb *c, const struct cgf_ival4 *v, long i, long j, uint32_t t,
		       uint32_t f)
{
	long m;
	uint32_t right, left;

	if (i > j) {
		ja(c, f);
		return;
	}
	m = i + (j - i) / 2;
	right = label(c);
	left = label(c);
	if (v[m].hi == UINT32_MAX) {
		jmp(c, BPF_JGE, v[m].lo, t, left);
	} else {
		uint32_t low = label(c);

		jmp(c, BPF_JGT, v[m].hi, right, low);
		place(c, low);
		if (v[m].lo)
			jmp(c, BPF_JGE, v[m].lo, t, left);
		else
			ja(c, t);
		place(c, right);
		range_tree(c, v, m + 1, j, t, f);
	}
	place(c, left);
	range_tree(c, v, i, m - 1, t, f);
}

static struct cgf_ival4 *int_ranges(struct cb *c, const struct cgf_set *s, size_t *n)
{
	uint8_t *bit = calloc(CGF_INT_SET_MAX + 2, 1);
	struct cgf_ival4 *v = calloc(s->n + 1, sizeof(*v));
	size_t i;
	uint32_t x;

	if (!bit || !v) {
		free(bit);
		free(v);
		fail(c, -ENOMEM, NULL, "out of memory");
		return NULL;
	}
	for (i = 0; i < s->n; i++)
		for (x = (uint32_t)s->ranges[i].lo; x <= s->ranges[i].hi && x <= CGF_INT_SET_MAX; x++)
			bit[x] = 1;
	*n = 0;
	for (x = 0; x <= CGF_INT_SET_MAX; x++) {
		if (!bit[x])
			continue;
		if (*n && v[*n - 1].hi + 1 == x)
			v[*n - 1].hi = x;
		else
			v[(*n)++] = (struct cgf_ival4){ x, x };
	}
	free(bit);
	return v;
}

/* the IPv6 prefixes of s, one after the other: address word by word */
static void in6(struct cb *c, const struct cgf_set *s, uint32_t base, uint32_t t, uint32_t f)
{
	size_t i;
	int w;

	for (i = 0; i < s->n; i++) {
		const struct cgf_cidr *p = &s->cidrs[i];
		uint32_t next = label(c);

		if (p->family != 6)
			continue;
		for (w = 0; w < 4 && 32 * w < p->plen; w++) {
			int bits = p->plen - 32 * w >= 32 ? 32 : p->plen - 32 * w;
			uint32_t mask = bits == 32 ? UINT32_MAX : ~(UINT32_MAX >> bits);
			uint32_t word = (uint32_t)p->addr[4 * w] << 24 | p->addr[4 * w + 1] << 16 |
					p->addr[4 * w + 2] << 8 | p->addr[4 * w + 3];
			uint32_t go = label(c);

			op(c, BPF_LD | BPF_W | BPF_ABS, NET(base + 4 * (uint32_t)w));
			if (mask != UINT32_MAX)
				alu(c, BPF_AND, mask);
			jmp(c, BPF_JEQ, word & mask, go, next);
			place(c, go);
		}
		ja(c, t);
		place(c, next);
	}
	ja(c, f);
}

static void in_set(struct cb *c, const struct cgf_node *n)
{
	const struct cgf_set *s = n->set;
	uint32_t t = label(c), f = label(c), done = label(c);
	struct cgf_ival4 *v;
	size_t nv;

	if (s->timeout) {
		fail(c, -EINVAL, n, "dynamic set @%s: classic BPF has no maps", s->name);
		return;
	}
	if (n->a->kind == CGF_N_EXE) {
		fail(c, -EINVAL, n, "exe: a socket filter cannot tell who made a packet's socket (it is the daemon's own); cgroup filters can");
		return;
	}
	if (s->name[0] && !s->declared) {
		fail(c, -EINVAL, n,
		     "named set @%s: classic BPF has no maps: give its items in the filter "
		     "('@%s = { ... }') or with --set", s->name, s->name);
		return;
	}
	if (n->a->kind == CGF_N_ADDR) {
		uint32_t v4 = label(c), v6 = label(c), n1 = label(c);
		/* received: the local address is the destination */
		int dst = n->a->field == CGF_A_DST || n->a->field == CGF_A_LOCAL;

		ld_mem(c, M_FLAGS);
		jmp(c, BPF_JSET, 1u << B_IP, v4, n1);
		place(c, n1);
		jmp(c, BPF_JSET, 1u << B_IPV6, v6, f);
		place(c, v4);
		v = cgf_intervals4(s, &nv);
		if (!v) {
			fail(c, -ENOMEM, NULL, "out of memory");
			return;
		}
		op(c, BPF_LD | BPF_W | BPF_ABS, NET(dst ? 16 : 12));
		range_tree(c, v, 0, (long)nv - 1, t, f);
		free(v);
		place(c, v6);
		in6(c, s, dst ? 24 : 8, t, f);
	} else {
		if (!fits(R(c, n->a)) && R(c, n->a)->lo > CGF_INT_SET_MAX) {
			ld_imm(c, 0);
			return;
		}
		if (!want_fit(c, n->a, n))
			return;
		v = int_ranges(c, s, &nv);
		if (!v)
			return;
		value(c, n->a);
		range_tree(c, v, 0, (long)nv - 1, t, f);
		free(v);
	}
	place(c, f);
	ld_imm(c, 0);
	ja(c, done);
	place(c, t);
	ld_imm(c, 1);
	place(c, done);
}

static void cond_value(struct cb *c, const struct cgf_node *n)
{
	uint32_t yes = label(c), no = label(c), done = label(c);

	if (!truth(c, n->a, n))
		return;
	jmp(c, BPF_JEQ, 0, no, yes);
	place(c, yes);
	value(c, n->b);
	ja(c, done);
	place(c, no);
	value(c, n->c);
	place(c, done);
}

static void value(struct cb *c, const struct cgf_node *n)
{
	if (c->failed)
		return;
	if (n->is_const) {
		ld_imm(c, (uint32_t)n->cval);
		return;
	}
	switch (n->kind) {
	case CGF_N_FIELD:
		ld_mem(c, fields[n->field].slot);
		if (fields[n->field].shift)
			alu(c, BPF_RSH, fields[n->field].shift);
		if (fields[n->field].mask)
			alu(c, BPF_AND, fields[n->field].mask);
		return;
	case CGF_N_UNARY:
		if (n->op == CGF_OP_NOT) {
			if (!truth(c, n->a, n))
				return;
			to_bool(c, BPF_JEQ, false, 0, false);
			return;
		}
		value(c, n->a);
		if (n->op == CGF_OP_BNOT)
			alu(c, BPF_XOR, UINT32_MAX);
		else
			op(c, BPF_ALU | BPF_NEG, 0);
		return;
	case CGF_N_BINARY:
		binary(c, n);
		return;
	case CGF_N_COND:
		cond_value(c, n);
		return;
	case CGF_N_IN:
		in_set(c, n);
		return;
	case CGF_N_SETOP:
		fail(c, -EINVAL, n, "%s() changes dynamic set @%s: classic BPF has no maps",
		     n->val ? "add" : "del", n->set->name);
		return;
	default:
		fail(c, -EINVAL, n, "an address outside 'in'");
		return;
	}
}

/* non-constant nodes, each at least an instruction: a bound on the work */
static int count_nodes(struct cgf_node *n, void *ctx)
{
	if (!n->is_const)
		++*(size_t *)ctx;
	return 0;
}

int cgf_cbpf_compile(const struct cgf_expr *e, enum cgf_cbpf_ctx ctx, struct sock_filter **prog,
		     size_t *len, struct cgf_error *err)
{
	struct cb c = { .ctx = ctx, .err = err };
	uint32_t pass;
	size_t work = 0;
	int r;

	memset(err, 0, sizeof(*err));
	*prog = NULL;
	*len = 0;
	r = cgf_expr_postorder(e->root, count_nodes, &work);
	if (r)
		return r;
	if (work > BPF_MAXINSNS) {
		fail(&c, -E2BIG, NULL, "too large for classic BPF (more than %d instructions)",
		     BPF_MAXINSNS);
		return c.failed;
	}
	c.r = calloc(e->nnodes + 1, sizeof(*c.r));
	if (!c.r)
		return -ENOMEM;
	r = cgf_expr_postorder(e->root, range_of, &c);
	if (r) {
		free(c.r);
		return r;
	}
	c.l_drop = label(&c);
	c.l_filter = label(&c);
	pass = label(&c);
	parse(&c);
	place(&c, c.l_filter);
	if (truth(&c, e->root, NULL))
		jmp(&c, BPF_JEQ, 0, c.l_drop, pass);
	place(&c, pass);
	op(&c, BPF_RET | BPF_K, CGF_CBPF_PASS);
	place(&c, c.l_drop);
	op(&c, BPF_RET | BPF_K, 0);
	if (!c.failed)
		layout(&c, prog, len);
	free(c.r);
	free(c.ins);
	free(c.label);
	return c.failed;
}

/* ---- printing ---------------------------------------------------------------- */

static void operand_k(char *buf, size_t n, const struct sock_filter *x)
{
	int32_t k = (int32_t)x->k;

	if (BPF_MODE(x->code) == BPF_ABS && k >= SKF_AD_OFF && k < SKF_NET_OFF)
		snprintf(buf, n, "[ancillary %d]", k - SKF_AD_OFF);
	else if (BPF_MODE(x->code) == BPF_ABS && k >= SKF_NET_OFF && k < 0)
		snprintf(buf, n, "[net + %d]", k - SKF_NET_OFF);
	else if (BPF_MODE(x->code) == BPF_IND && k >= SKF_NET_OFF - 1 && k < 0)
		snprintf(buf, n, "[net + x + %d]", k - SKF_NET_OFF);
	else if (BPF_MODE(x->code) == BPF_IND)
		snprintf(buf, n, "[x + %d]", k);
	else
		snprintf(buf, n, "[%u]", x->k);
}

void cgf_cbpf_print(FILE *f, const struct sock_filter *p, size_t len)
{
	static const char *const alu[16] = { "add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
					     "neg", "mod", "xor" };
	static const char *const jmps[8] = { "ja", "jeq", "jgt", "jge", "jset" };
	static const char *const sz[4] = { "", "h", "b", "?" };
	size_t i;

	for (i = 0; i < len; i++) {
		const struct sock_filter *x = &p[i];
		char o[48];

		fprintf(f, "%5zu: ", i);
		switch (BPF_CLASS(x->code)) {
		case BPF_LD:
		case BPF_LDX: {
			const char *r = BPF_CLASS(x->code) == BPF_LD ? "ld" : "ldx";

			if (BPF_MODE(x->code) == BPF_IMM)
				fprintf(f, "%s #%#x\n", r, x->k);
			else if (BPF_MODE(x->code) == BPF_MEM)
				fprintf(f, "%s M[%u]\n", r, x->k);
			else if (BPF_MODE(x->code) == BPF_LEN)
				fprintf(f, "%s len\n", r);
			else {
				operand_k(o, sizeof(o), x);
				fprintf(f, "%s%s %s\n", r, sz[BPF_SIZE(x->code) >> 3], o);
			}
			break;
		}
		case BPF_ST:
		case BPF_STX:
			fprintf(f, "%s M[%u]\n", BPF_CLASS(x->code) == BPF_ST ? "st" : "stx", x->k);
			break;
		case BPF_ALU:
			if (BPF_OP(x->code) == BPF_NEG)
				fprintf(f, "neg\n");
			else if (BPF_SRC(x->code) == BPF_X)
				fprintf(f, "%s x\n", alu[BPF_OP(x->code) >> 4]);
			else
				fprintf(f, "%s #%#x\n", alu[BPF_OP(x->code) >> 4], x->k);
			break;
		case BPF_JMP:
			if (BPF_OP(x->code) == BPF_JA)
				fprintf(f, "ja %zu\n", i + 1 + x->k);
			else if (BPF_SRC(x->code) == BPF_X)
				fprintf(f, "%s x, %zu, %zu\n", jmps[BPF_OP(x->code) >> 4],
					i + 1 + x->jt, i + 1 + x->jf);
			else
				fprintf(f, "%s #%#x, %zu, %zu\n", jmps[BPF_OP(x->code) >> 4], x->k,
					i + 1 + x->jt, i + 1 + x->jf);
			break;
		case BPF_RET:
			fprintf(f, "ret #%#x\n", x->k);
			break;
		default:
			fprintf(f, "%s\n", BPF_MISCOP(x->code) == BPF_TAX ? "tax" : "txa");
		}
	}
}
