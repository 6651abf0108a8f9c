/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Inside the BPF back end: what its three parts share.  emit_bpf.c writes
 * the program around the filter and the filter's expression, parse_bpf.c
 * the packet parser, sets_bpf.c the set tests.
 *
 * Registers: r6 holds the skb for the whole program (helpers keep r6-r9);
 * r0-r5 are scratch within one step; r7-r9 hold values across a helper call
 * inside one step.  Everything else lives on the stack, laid out below.
 */
#ifndef CGF_GEN_H
#define CGF_GEN_H

#include <stddef.h>
#include <stdint.h>

#include <linux/bpf.h>

#include "bpf_asm.h"
#include "cgf_abi.h"
#include "cgf_vocab.h"
#include "emit_bpf.h"
#include "expr.h"

#define R_CTX BPF_REG_6

/*
 * The stack frame, from r10: the key of one-entry maps, the expression's
 * temporaries, the packet's fields (enum cgf_field, u64, host order: the
 * entry and drop programs), its addresses (network order) and family, the
 * buffer headers are read into, map keys.  What a filter program uses most
 * comes first: its frame is as deep as the deepest slot it touches (every
 * state of the verifier carries the whole frame; with 496 bytes, 49000
 * terms of '&&' were more states than the kernel would allocate).
 */
#define FP_ZERO       (-8)                          /* u64 0: the key of 1-entry maps */
#define FP_TEMP(d)    (-16 - 8 * (d))               /* expression temporaries */
#define GEN_TEMPS     32                            /* down to -264 */
#define FP_FIELD(i)   (-272 - 8 * (i))              /* -272 .. -376 */
#define FP_SADDR      (-392)                        /* 16 bytes */
#define FP_DADDR      (-408)                        /* 16 bytes */
#define FP_FAMILY     (-416)                        /* u64: 4, 6 or 0 */
#define FP_BUF        (-456)                        /* 40 bytes of header */
#define FP_KEY        (-488)                        /* 32 bytes: an LPM key */
#define FP_MALFORMED  (-496)                        /* u64: the drop was malformed */
#define FP_EXE        (-512)                        /* struct cgf_exe_id of the socket */
/* local_ip and remote_ip in a filter program, copied from the two above
 * (gen_local_remote()): in the fields' slots, which a filter program does
 * not use (it reads its fields from skb->cb, gen_field()) */
#define FP_LADDR      FP_FIELD(2)                   /* 16 bytes: -288 */
#define FP_RADDR      FP_FIELD(4)                   /* 16 bytes: -304 */

/*
 * Why an opaque 0: the verifier forks its state in two (maybe_fork_scalars(),
 * kernel 6.17 and later) for "x & k" or "x | k" where x is in [-1, 0] and k a
 * constant, as in '-(ttl < 1) & 5'; 25 of those are 2^25 states, past its
 * million instructions.  A constant plus the opaque 0 is no constant to it.
 * Likewise a truth value made by two paths ('x in SET' as a value) is 0 or 1
 * on both paths, not the constant 1 on one and 0 on the other: the states
 * meet there and the verifier walks on once, not twice per such value.
 */
struct gen {
	struct cgf_asm *a;
	struct cgf_gen *out;
	const struct cgf_gen_env *env;
	uint32_t l_pass, l_drop, l_malformed, l_filter;
	uint32_t m_stats, m_slots, m_drops, m_ctl, m_rl, m_events, m_cgroups; /* map indexes */
	uint32_t m_learn, m_exe, m_scratch;
	int err;
	char *why;
	size_t whylen;
	int deepest;            /* the deepest stack offset touched */
	/* a socket filter (cgf_gen_socket_filter()): headers only through
	 * bpf_skb_load_bytes_relative(), the packet's data starting at the
	 * transport header (socket) or the link header (Ethernet) */
	bool sock;
	enum cgf_sock_ctx sock_ctx;
	uint32_t deep_at;       /* the prologue's store there, set in gen_finish() */
};

/* The stack slot of address which (enum cgf_addr).  A socket filter only
 * sees packets received: there local is dst and remote is src. */
static inline int16_t fp_addr(const struct gen *g, int which)
{
	switch (which) {
	case CGF_A_SRC: return FP_SADDR;
	case CGF_A_DST: return FP_DADDR;
	case CGF_A_LOCAL: return g->sock ? FP_DADDR : FP_LADDR;
	default: return g->sock ? FP_SADDR : FP_RADDR;
	}
}

/* note a use of the stack at r10 + off */
static inline void gen_stack(struct gen *g, uint8_t reg, int16_t off)
{
	if (reg == BPF_REG_10 && off < g->deepest)
		g->deepest = off;
}

/* skb->cb[i] (cgf_abi.h says what the entry program leaves there) */
#define CB(i) ((int16_t)(offsetof(struct __sk_buff, cb) + 4 * (i)))

void gen_fail(struct gen *g, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- instructions ---------------------------------------------------------- */

static inline void i_mov(struct gen *g, uint8_t dst, uint64_t v)
{
	cgf_asm_mov64(g->a, dst, v);
}

static inline void i_movr(struct gen *g, uint8_t dst, uint8_t src)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = dst,
					      .src_reg = src });
}

static inline void i_alu(struct gen *g, uint8_t op, uint8_t dst, int32_t imm)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ALU64 | op | BPF_K, .dst_reg = dst,
					      .imm = imm });
}

static inline void i_alur(struct gen *g, uint8_t op, uint8_t dst, uint8_t src)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ALU64 | op | BPF_X, .dst_reg = dst,
					      .src_reg = src });
}

static inline void i_neg(struct gen *g, uint8_t dst)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_NEG, .dst_reg = dst });
}

/* dst = network order (big endian) of its low bits: 16, 32 or 64 */
static inline void i_be(struct gen *g, uint8_t dst, int bits)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ALU | BPF_END | BPF_TO_BE, .dst_reg = dst,
					      .imm = bits });
}

static inline void i_ldx(struct gen *g, uint8_t size, uint8_t dst, uint8_t src, int16_t off)
{
	gen_stack(g, src, off);
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_LDX | size | BPF_MEM, .dst_reg = dst,
					      .src_reg = src, .off = off });
}

static inline void i_stx(struct gen *g, uint8_t size, uint8_t dst, int16_t off, uint8_t src)
{
	gen_stack(g, dst, off);
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_STX | size | BPF_MEM, .dst_reg = dst,
					      .src_reg = src, .off = off });
}

static inline void i_st(struct gen *g, uint8_t size, uint8_t dst, int16_t off, int32_t imm)
{
	gen_stack(g, dst, off);
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_ST | size | BPF_MEM, .dst_reg = dst,
					      .off = off, .imm = imm });
}

static inline void i_call(struct gen *g, int32_t helper)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = helper });
}

static inline void i_exit(struct gen *g)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT });
}

/* r = field i (from the stack) */
static inline void i_field(struct gen *g, uint8_t dst, int field)
{
	i_ldx(g, BPF_DW, dst, BPF_REG_10, FP_FIELD(field));
}

/* r2 = r10 + off: a pointer to a stack slot, for a helper */
static inline void i_fp(struct gen *g, uint8_t dst, int16_t off)
{
	gen_stack(g, BPF_REG_10, off);
	i_movr(g, dst, BPF_REG_10);
	i_alu(g, BPF_ADD, dst, off);
}

/* Branch-free truth values (no diamond for the verifier to explore twice):
 * r = (r != 0), r = (r == 0), and r = (a < b) unsigned into r, using r3-r5. */
void i_bool(struct gen *g, uint8_t r);
void i_not(struct gen *g, uint8_t r);
void i_ltu(struct gen *g, uint8_t r, uint8_t a, uint8_t b);

/* ---- the parts ---------------------------------------------------------------- */

/* Set up g to write a program into out; finish it (labels resolved). */
int gen_begin(struct gen *g, struct cgf_gen *out, const struct cgf_gen_env *env);
int gen_finish(struct gen *g);
/* Start a program: r6 = the skb, the frame grown to the size it needs. */
void gen_prologue(struct gen *g);
/* Register the engine's maps with the program (those of env that are >= 0
 * or when printing). */
void gen_maps(struct gen *g);
/* stats[idx] += 1 and, if bytes, stats[idx + 1] += skb->len */
void gen_count(struct gen *g, int idx, bool bytes);
/* tail-call slot (a constant, or the register when reg >= 0) of map */
void gen_tail_call(struct gen *g, uint32_t map, int slot, int reg);

/* parse_bpf.c: fill the fields from the packet; jump to g->l_malformed on a
 * malformed packet, fall through to the filter otherwise */
void gen_parse(struct gen *g);
/* r = a field (enum cgf_field) or the family (4, 6 or 0), read from
 * skb->cb in a filter program */
void gen_field(struct gen *g, uint8_t dst, int field);
void gen_family(struct gen *g, uint8_t dst);
/* sets_bpf.c: FP_EXE = the identity of the executable that made the
 * packet's socket (0, 0 if none is known) */
void gen_exe_fetch(struct gen *g);
/* r = an opaque 0 (see struct gen) */
void gen_opaque(struct gen *g, uint8_t dst);
/* for a test of a field: a flag's byte into dst and its bit returned (for
 * JSET), or the field into dst and 0 returned */
int gen_field_test(struct gen *g, uint8_t dst, int field);
/* the fields on the stack into skb->cb, and back; fields: a bit per field
 * wanted (1 << CGF_F_*), addrs: the addresses too, GEN_SADDR and/or
 * GEN_DADDR (read from the packet, with FP_FAMILY; to g->l_malformed if
 * they cannot be) */
#define GEN_SADDR 1u
#define GEN_DADDR 2u
void gen_pack_cb(struct gen *g);
void gen_unpack_cb(struct gen *g, uint32_t fields, unsigned addrs);
/* FP_LADDR and FP_RADDR from FP_SADDR and FP_DADDR (unpacked), by the
 * packet's direction: received (ingress_ifindex not 0), local is dst */
void gen_local_remote(struct gen *g);
/* read n bytes at packet offset r7 (or k) into FP_BUF; to g->l_malformed
 * if the packet is shorter */
void gen_fetch(struct gen *g, bool in_r7, int k, int n);

/* entry_bpf.c: report a drop to a monitor (the fields unpacked from skb->cb
 * and the packet first, only if one watches) */
void gen_report_drop(struct gen *g);

/* No label: for next, when the code that follows is neither t nor f. */
#define NO_LABEL UINT32_MAX

/*
 * if (r0 OP (r1 if reg, else imm)) goto t; else goto f; where next, if it
 * is t or f, is the label placed right after.  The conditional jump goes to
 * next, the fall-through to the other: the verifier walks the fall-through
 * first and keeps the jump's target for later, so in 'a || b || ... || z'
 * it finishes each 'goto t' at once and keeps one state waiting, not one per
 * term (it refuses more than 8192).  So a test in a chain must be code
 * without a branch and then this one branch.  JSET, which has no opposite,
 * comes here only with next == t.
 */
void gen_branch(struct gen *g, int jop, bool reg, int32_t imm, uint32_t t, uint32_t f,
		uint32_t next);

/* sets_bpf.c: dynamic sets.  The key of an address: the family (u64) and
 * 16 bytes; the value, at FP_KEY + DYN_ADDR_KEY, when it expires.  Their
 * maps, in the order declared; add() or del() for the SETOP node n, its
 * integer value in r0: r0 = 1 */
#define DYN_ADDR_KEY 24
void gen_dyn_maps(struct gen *g, const struct cgf_expr *e);
void gen_setop(struct gen *g, const struct cgf_node *n);

/* sets_bpf.c: 'x in SET' for the IN node n: the integer value is in r0 (not
 * for addresses); jump to t if it is in, else to f; next as for gen_branch */
void gen_in(struct gen *g, const struct cgf_node *n, uint32_t t, uint32_t f, uint32_t next);

#endif /* CGF_GEN_H */
