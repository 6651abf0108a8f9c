// SPDX-License-Identifier: GPL-2.0-only
/*
 * The BPF back end: a filter into a whole cgroup_skb program (emit_bpf.h).
 *
 *   parse the packet (parse_bpf.c)  -> malformed: count, drop
 *   the filter, as jumps             -> pass: count, return 1
 *                                    -> drop: count, report, return 0
 *
 * In a test (the top, && || ! ?: and the comparisons under them) the filter
 * is jumps.  Where a value is needed it is computed into r0 without
 * branches (comparisons by the borrow of a subtraction, ?: by a mask), so
 * a program has few paths for the verifier to walk.  Intermediate values
 * wait in stack slots; the heavier operand goes first (Sethi-Ullman), so
 * the slots needed grow with the logarithm of the filter's size.  A chain
 * such as 'a || b || ... || z' or 'len + len + ... + len' is walked without
 * recursion: a filter nests only as deep as its parentheses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

void gen_fail(struct gen *g, int err, const char *fmt, ...)
{
	va_list ap;

	if (g->err)
		return;
	g->err = err;
	va_start(ap, fmt);
	vsnprintf(g->why, g->whylen, fmt, ap);
	va_end(ap);
}

/* r = (r != 0), using r5 */
void i_bool(struct gen *g, uint8_t r)
{
	i_movr(g, BPF_REG_5, r);
	i_neg(g, BPF_REG_5);
	i_alur(g, BPF_OR, BPF_REG_5, r);
	i_alu(g, BPF_RSH, BPF_REG_5, 63);
	i_movr(g, r, BPF_REG_5);
}

/* r = (r == 0) */
void i_not(struct gen *g, uint8_t r)
{
	i_bool(g, r);
	i_alu(g, BPF_XOR, r, 1);
}

/* ---- slots: how many temporaries a subtree needs --------------------------- */

/* A leaf: loaded straight into a register, no temporary. */
static bool simple(const struct cgf_node *n)
{
	return n->is_const || n->kind == CGF_N_FIELD;
}

static int slots(const struct cgf_node *n)
{
	return n ? n->aux : 0;
}

/* Temporaries to evaluate a node into r0 when the heavier operand goes
 * first and waits in a slot while the others are evaluated. */
static int count_slots(struct cgf_node *n, void *ctx)
{
	int a = slots(n->a), b = slots(n->b), c = slots(n->c), t;

	(void)ctx;
	if (simple(n)) {
		n->aux = 0;
	} else if (n->kind == CGF_N_COND) {
		/* sorted: a >= b >= c; then max(a, b + 1, c + 2) */
		if (a < b)
			t = a, a = b, b = t;
		if (b < c)
			t = b, b = c, c = t;
		if (a < b)
			t = a, a = b, b = t;
		n->aux = a > b + 1 ? a : b + 1;
		if (c + 2 > n->aux)
			n->aux = c + 2;
	} else if (n->kind == CGF_N_BINARY && !simple(n->b)) {
		n->aux = a == b ? a + 1 : a > b ? a : b;
	} else {
		n->aux = a;
	}
	return 0;
}

static void use_slot(struct gen *g, int d)
{
	if (d >= GEN_TEMPS)
		gen_fail(g, -E2BIG, "filter too complex: more than %d intermediate values at once",
			 GEN_TEMPS);
}

/* ---- values ---------------------------------------------------------------- */

static void value(struct gen *g, const struct cgf_node *n, int d);
static void cond(struct gen *g, const struct cgf_node *n, uint32_t t, uint32_t f, int d,
		 uint32_t next);

static bool fits_imm(uint64_t k)
{
	return (int64_t)k == (int64_t)(int32_t)k;
}

/* r = the opaque 0 (gen.h) */
static void i_opaque(struct gen *g, uint8_t r)
{
	gen_opaque(g, r);
}

/* r0 = r0 OP r1 */
static void op_reg(struct gen *g, enum cgf_op op)
{
	if (op == CGF_OP_BAND || op == CGF_OP_BOR) {
		/* neither operand a constant, for the verifier (gen.h) */
		i_opaque(g, BPF_REG_2);
		i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_2);
		i_alur(g, BPF_ADD, BPF_REG_1, BPF_REG_2);
	}
	switch (op) {
	case CGF_OP_ADD: i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_SUB: i_alur(g, BPF_SUB, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_MUL: i_alur(g, BPF_MUL, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_DIV: i_alur(g, BPF_DIV, BPF_REG_0, BPF_REG_1); break; /* x / 0 == 0 */
	case CGF_OP_MOD: i_alur(g, BPF_MOD, BPF_REG_0, BPF_REG_1); break; /* x % 0 == x */
	case CGF_OP_BAND: i_alur(g, BPF_AND, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_BOR: i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_BXOR: i_alur(g, BPF_XOR, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_SHL:
	case CGF_OP_SHR:
		i_alu(g, BPF_AND, BPF_REG_1, 63);
		i_alur(g, op == CGF_OP_SHL ? BPF_LSH : BPF_RSH, BPF_REG_0, BPF_REG_1);
		break;
	case CGF_OP_EQ:
	case CGF_OP_NE:
		i_alur(g, BPF_XOR, BPF_REG_0, BPF_REG_1);
		if (op == CGF_OP_EQ)
			i_not(g, BPF_REG_0);
		else
			i_bool(g, BPF_REG_0);
		break;
	case CGF_OP_LT: i_ltu(g, BPF_REG_0, BPF_REG_0, BPF_REG_1); break;
	case CGF_OP_GT: i_ltu(g, BPF_REG_0, BPF_REG_1, BPF_REG_0); break;
	case CGF_OP_GE:
		i_ltu(g, BPF_REG_0, BPF_REG_0, BPF_REG_1);
		i_alu(g, BPF_XOR, BPF_REG_0, 1);
		break;
	case CGF_OP_LE:
		i_ltu(g, BPF_REG_0, BPF_REG_1, BPF_REG_0);
		i_alu(g, BPF_XOR, BPF_REG_0, 1);
		break;
	case CGF_OP_LAND:
	case CGF_OP_LOR:
		i_bool(g, BPF_REG_0);
		i_bool(g, BPF_REG_1);
		i_alur(g, op == CGF_OP_LAND ? BPF_AND : BPF_OR, BPF_REG_0, BPF_REG_1);
		break;
	default:
		gen_fail(g, -EINVAL, "internal error: operator %d", op);
	}
}

/* r0 = r0 OP k, for a constant right operand; field: r0 is a field, never
 * in [-1, 0] */
static void op_const(struct gen *g, enum cgf_op op, uint64_t k, bool field)
{
	uint8_t bop = 0;

	if ((op == CGF_OP_BAND || op == CGF_OP_BOR) && !field) {
		/* k plus the opaque 0: no constant for the verifier (gen.h) */
		i_opaque(g, BPF_REG_1);
		if (fits_imm(k)) {
			i_alu(g, BPF_ADD, BPF_REG_1, (int32_t)k);
		} else {
			i_mov(g, BPF_REG_2, k);
			i_alur(g, BPF_ADD, BPF_REG_1, BPF_REG_2);
		}
		i_alur(g, op == CGF_OP_BAND ? BPF_AND : BPF_OR, BPF_REG_0, BPF_REG_1);
		return;
	}
	switch (op) {
	case CGF_OP_ADD: bop = BPF_ADD; break;
	case CGF_OP_SUB: bop = BPF_SUB; break;
	case CGF_OP_MUL: bop = BPF_MUL; break;
	case CGF_OP_BAND: bop = BPF_AND; break;
	case CGF_OP_BOR: bop = BPF_OR; break;
	case CGF_OP_BXOR: bop = BPF_XOR; break;
	case CGF_OP_DIV:
		if (!k) { /* x / 0 == 0 (the verifier refuses a constant 0 divisor) */
			i_mov(g, BPF_REG_0, 0);
			return;
		}
		bop = BPF_DIV;
		break;
	case CGF_OP_MOD:
		if (!k) /* x % 0 == x */
			return;
		bop = BPF_MOD;
		break;
	case CGF_OP_SHL:
	case CGF_OP_SHR:
		if (k & 63)
			i_alu(g, op == CGF_OP_SHL ? BPF_LSH : BPF_RSH, BPF_REG_0, (int32_t)(k & 63));
		return;
	default:
		break;
	}
	if (bop && fits_imm(k)) {
		i_alu(g, bop, BPF_REG_0, (int32_t)k);
		return;
	}
	i_mov(g, BPF_REG_1, k);
	op_reg(g, op);
}

/* r1 = a leaf (constant or field) */
static void leaf(struct gen *g, uint8_t r, const struct cgf_node *n)
{
	if (n->is_const)
		i_mov(g, r, n->cval);
	else
		gen_field(g, r, n->field);
}

/* One binary node whose left operand's value is in r0. */
static void value_step(struct gen *g, const struct cgf_node *n, int d)
{
	if (n->b->is_const && n->op != CGF_OP_LAND && n->op != CGF_OP_LOR) {
		op_const(g, n->op, n->b->cval, n->a->kind == CGF_N_FIELD);
		return;
	}
	if (simple(n->b)) {
		leaf(g, BPF_REG_1, n->b);
	} else {
		use_slot(g, d);
		i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d), BPF_REG_0);
		value(g, n->b, d + 1);
		i_movr(g, BPF_REG_1, BPF_REG_0);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_TEMP(d));
	}
	op_reg(g, n->op);
}

/* Whether n is one step up a left spine evaluated without recursion: its
 * left operand is itself a binary node, evaluated first anyway. */
static bool on_spine(const struct cgf_node *n)
{
	return n->kind == CGF_N_BINARY && !n->is_const && n->a->kind == CGF_N_BINARY &&
	       !n->a->is_const && (simple(n->b) || slots(n->b) <= slots(n->a));
}

static void value_binary(struct gen *g, const struct cgf_node *n, int d)
{
	const struct cgf_node **spine = NULL, *x;
	size_t k = 0, cap = 0;

	if (on_spine(n)) {
		for (x = n; on_spine(x); x = x->a) {
			if (!cgf_grow((void **)&spine, k, &cap, sizeof(*spine), 64)) {
				free(spine);
				gen_fail(g, -ENOMEM, "out of memory");
				return;
			}
			spine[k++] = x;
		}
		value(g, x, d); /* the bottom: not on the spine */
		while (k-- && !g->err)
			value_step(g, spine[k], d);
		free(spine);
		return;
	}
	if ((n->op == CGF_OP_BAND || n->op == CGF_OP_BOR) && n->a->is_const) {
		/* 'k & x': 'x & k' */
		value(g, n->b, d);
		op_const(g, n->op, n->a->cval, n->b->kind == CGF_N_FIELD);
		return;
	}
	if (simple(n->b) || slots(n->a) >= slots(n->b) || n->effects) { /* (in order) */
		value(g, n->a, d);
		value_step(g, n, d);
		return;
	}
	/* the right operand is heavier: first */
	use_slot(g, d);
	value(g, n->b, d);
	i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d), BPF_REG_0);
	value(g, n->a, d + 1);
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_TEMP(d));
	op_reg(g, n->op);
}

/* c ? a : b without a branch: b + (a - b) * (c != 0) (not with a mask,
 * -(c != 0), which the verifier forks on: gen.h) */
static void value_cond(struct gen *g, const struct cgf_node *n, int d)
{
	const struct cgf_node *kid[3] = { n->a, n->b, n->c };
	int order[3] = { 0, 1, 2 }, i, j, slot[3];

	/* heaviest first; the last one ends in r0 */
	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (slots(kid[order[j]]) > slots(kid[order[i]])) {
				int t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
	for (i = 0; i < 3; i++) {
		int k = order[i];

		value(g, kid[k], d + i);
		if (k == 0)
			i_bool(g, BPF_REG_0);
		if (i < 2) {
			use_slot(g, d + i);
			i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d + i), BPF_REG_0);
		}
		slot[k] = i;
	}
	/* r0 holds the last; the others come back from their slots */
	use_slot(g, d + 2);
	i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d + 2), BPF_REG_0);
	for (i = 0; i < 3; i++) {
		uint8_t r = i == 0 ? BPF_REG_1 : i == 1 ? BPF_REG_2 : BPF_REG_0;

		i_ldx(g, BPF_DW, r, BPF_REG_10, FP_TEMP(d + slot[i]));
	}
	i_alur(g, BPF_SUB, BPF_REG_2, BPF_REG_0);
	i_alur(g, BPF_MUL, BPF_REG_2, BPF_REG_1);
	i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_2);
}

/* r0 = 1 if n is not 0, else 0, through its test: as 'opaque 0 ^ 1 & 1' or
 * 'opaque 0 & 1', the same [0, 1] to the verifier on both paths (gen.h) */
static void truth(struct gen *g, const struct cgf_node *n, int d)
{
	uint32_t t = cgf_asm_label(g->a), f = cgf_asm_label(g->a), end = cgf_asm_label(g->a);

	cond(g, n, t, f, d, t);
	cgf_asm_place(g->a, t);
	i_opaque(g, BPF_REG_0);
	i_alu(g, BPF_XOR, BPF_REG_0, 1);
	i_alu(g, BPF_AND, BPF_REG_0, 1);
	cgf_asm_ja(g->a, end);
	cgf_asm_place(g->a, f);
	i_opaque(g, BPF_REG_0);
	i_alu(g, BPF_AND, BPF_REG_0, 1);
	cgf_asm_place(g->a, end);
}

/* ?:, && or || with a change of a set below: with branches, so that what
 * is not to be evaluated is not (r0 = the value, 0 or 1 for && ||) */
static void value_in_order(struct gen *g, const struct cgf_node *n, int d)
{
	if (n->kind == CGF_N_COND) {
		uint32_t t = cgf_asm_label(g->a), f = cgf_asm_label(g->a), end = cgf_asm_label(g->a);

		cond(g, n->a, t, f, d, t);
		cgf_asm_place(g->a, t);
		value(g, n->b, d);
		cgf_asm_ja(g->a, end);
		cgf_asm_place(g->a, f);
		value(g, n->c, d);
		cgf_asm_place(g->a, end);
		return;
	}
	truth(g, n, d);
}

/* r0 = the value of n (temporaries from slot d on) */
static void value(struct gen *g, const struct cgf_node *n, int d)
{
	if (g->err)
		return;
	if (n->is_const) {
		i_mov(g, BPF_REG_0, n->cval);
		return;
	}
	/* a change of a set below: evaluated in order, && || ?: short-circuit */
	if (n->effects && (n->kind == CGF_N_COND ||
			   (n->kind == CGF_N_BINARY && (n->op == CGF_OP_LAND || n->op == CGF_OP_LOR)))) {
		value_in_order(g, n, d);
		return;
	}
	switch (n->kind) {
	case CGF_N_FIELD:
		gen_field(g, BPF_REG_0, n->field);
		return;
	case CGF_N_SETOP:
		if (n->a->kind != CGF_N_ADDR && n->a->kind != CGF_N_EXE)
			value(g, n->a, d);
		gen_setop(g, n);
		return;
	case CGF_N_UNARY:
		value(g, n->a, d);
		if (n->op == CGF_OP_NOT)
			i_not(g, BPF_REG_0);
		else if (n->op == CGF_OP_BNOT)
			i_alu(g, BPF_XOR, BPF_REG_0, -1);
		else if (n->op == CGF_OP_NEG)
			i_neg(g, BPF_REG_0);
		return;
	case CGF_N_BINARY:
		value_binary(g, n, d);
		return;
	case CGF_N_COND:
		value_cond(g, n, d);
		return;
	case CGF_N_IN:
		truth(g, n, d);
		return;
	default:
		gen_fail(g, -EINVAL, "internal error: node kind %d", n->kind);
	}
}

/* ---- tests: jumps ------------------------------------------------------------- */

static int jmp_op(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_EQ: return BPF_JEQ;
	case CGF_OP_NE: return BPF_JNE;
	case CGF_OP_LT: return BPF_JLT;
	case CGF_OP_LE: return BPF_JLE;
	case CGF_OP_GT: return BPF_JGT;
	case CGF_OP_GE: return BPF_JGE;
	case CGF_OP_BAND: return BPF_JSET;
	default: return -1;
	}
}

/* 'a || b || ... || z' (or &&): its operands along the left spine, tested
 * in order, each jumping to the end or on to the next. */
static void cond_chain(struct gen *g, const struct cgf_node *n, uint32_t t, uint32_t f, int d,
		       uint32_t next)
{
	const struct cgf_node **opnd = NULL, *x;
	size_t k = 0, cap = 0, i;
	bool lor = n->op == CGF_OP_LOR;

	for (x = n;; x = x->a) {
		bool more = x->kind == CGF_N_BINARY && x->op == n->op && !x->is_const;

		if (!cgf_grow((void **)&opnd, k, &cap, sizeof(*opnd), 64)) {
			free(opnd);
			gen_fail(g, -ENOMEM, "out of memory");
			return;
		}
		opnd[k++] = more ? x->b : x;
		if (!more)
			break;
	}
	for (i = k; i-- > 1 && !g->err;) {
		uint32_t l = cgf_asm_label(g->a);

		if (lor)
			cond(g, opnd[i], t, l, d, l);
		else
			cond(g, opnd[i], l, f, d, l);
		cgf_asm_place(g->a, l);
	}
	cond(g, opnd[0], t, f, d, next);
	free(opnd);
}

static int neg_jmp(int op)
{
	switch (op) {
	case BPF_JEQ: return BPF_JNE;
	case BPF_JNE: return BPF_JEQ;
	case BPF_JLT: return BPF_JGE;
	case BPF_JGE: return BPF_JLT;
	case BPF_JLE: return BPF_JGT;
	case BPF_JGT: return BPF_JLE;
	default: return -1; /* BPF_JSET has none */
	}
}

/* (gen.h) */
void gen_branch(struct gen *g, int jop, bool reg, int32_t imm, uint32_t t, uint32_t f,
		uint32_t next)
{
	int op = jop;
	uint32_t to = t, other = f;

	if (next == f && neg_jmp(jop) >= 0) {
		op = neg_jmp(jop);
		to = f;
		other = t;
	}
	if (reg)
		cgf_asm_jmp_reg(g->a, (uint8_t)op, BPF_REG_0, BPF_REG_1, to);
	else
		cgf_asm_jmp_imm(g->a, (uint8_t)op, BPF_REG_0, imm, to);
	if (other != next)
		cgf_asm_ja(g->a, other);
}

/* jump to t if n is not 0, else to f; next: the label placed right after
 * this code, if it is one of them (NO_LABEL otherwise) */
static void cond(struct gen *g, const struct cgf_node *n, uint32_t t, uint32_t f, int d,
		 uint32_t next)
{
	int jop;

	if (g->err)
		return;
	if (n->is_const) {
		if ((n->cval ? t : f) != next)
			cgf_asm_ja(g->a, n->cval ? t : f);
		return;
	}
	switch (n->kind) {
	case CGF_N_FIELD: {
		int bit = gen_field_test(g, BPF_REG_0, n->field);

		/* (JSET has no "if not set", for a jump to next == f) */
		if (bit && next == f) {
			i_alu(g, BPF_AND, BPF_REG_0, bit);
			bit = 0;
		}
		gen_branch(g, bit ? BPF_JSET : BPF_JNE, false, bit, t, f, next);
		return;
	}
	case CGF_N_UNARY:
		if (n->op == CGF_OP_NOT)
			cond(g, n->a, f, t, d, next);
		else if (n->op == CGF_OP_NEG || n->op == CGF_OP_NONE) /* -x != 0 iff x != 0 */
			cond(g, n->a, t, f, d, next);
		else
			break;
		return;
	case CGF_N_COND: {
		uint32_t lt = cgf_asm_label(g->a), lf = cgf_asm_label(g->a);

		cond(g, n->a, lt, lf, d, lt);
		cgf_asm_place(g->a, lt);
		cond(g, n->b, t, f, d, NO_LABEL);
		cgf_asm_place(g->a, lf);
		cond(g, n->c, t, f, d, next);
		return;
	}
	case CGF_N_IN:
		if (n->a->kind != CGF_N_ADDR && n->a->kind != CGF_N_EXE)
			value(g, n->a, d);
		gen_in(g, n, t, f, next);
		return;
	case CGF_N_BINARY:
		if (n->op == CGF_OP_LOR || n->op == CGF_OP_LAND) {
			cond_chain(g, n, t, f, d, next);
			return;
		}
		jop = jmp_op(n->op);
		if (jop < 0 || (jop == BPF_JSET && next == f)) /* (as for a field) */
			break;
		if (n->b->is_const && fits_imm(n->b->cval)) {
			value(g, n->a, d);
			gen_branch(g, jop, false, (int32_t)n->b->cval, t, f, next);
			return;
		}
		if (simple(n->b) || slots(n->a) >= slots(n->b) || n->effects) {
			value(g, n->a, d);
			if (simple(n->b)) {
				leaf(g, BPF_REG_1, n->b);
			} else {
				use_slot(g, d);
				i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d), BPF_REG_0);
				value(g, n->b, d + 1);
				i_movr(g, BPF_REG_1, BPF_REG_0);
				i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_TEMP(d));
			}
		} else {
			use_slot(g, d);
			value(g, n->b, d);
			i_stx(g, BPF_DW, BPF_REG_10, FP_TEMP(d), BPF_REG_0);
			value(g, n->a, d + 1);
			i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_TEMP(d));
		}
		gen_branch(g, jop, true, 0, t, f, next);
		return;
	default:
		break;
	}
	value(g, n, d);
	gen_branch(g, BPF_JNE, false, 0, t, f, next);
}

/* ---- around the filter ----------------------------------------------------------- */

void gen_prologue(struct gen *g)
{
	cgf_asm_note(g->a, "r6 = the packet, for the whole program");
	i_movr(g, R_CTX, BPF_REG_1);
	/* the deepest slot first (gen_finish() says which): every state the
	 * verifier compares then has the whole frame (kernel 6.18 says
	 * "verifier bug: stack slot" when a helper's write grows the frame of
	 * one state and not another's) */
	g->deep_at = g->a->n;
	i_st(g, BPF_DW, BPF_REG_10, FP_ZERO, 0);
	i_st(g, BPF_DW, BPF_REG_10, FP_ZERO, 0);
	/* A shared engine's entry program has cgroup storage: the kernel
	 * lets programs tail-call one another only if they all name that map,
	 * so every program of the engine names it, unused. */
	if (g->env->cgroups_fd >= 0)
		cgf_asm_ld_map(g->a, BPF_REG_1, g->m_cgroups);
}

void gen_maps(struct gen *g)
{
	const struct cgf_gen_env *env = g->env;

	g->m_stats = cgf_asm_add_map(g->a, env->stats_fd, "stats", NULL);
	g->m_slots = cgf_asm_add_map(g->a, env->slots_fd, "slots", NULL);
	g->m_drops = cgf_asm_add_map(g->a, env->drops_fd, "drops", NULL);
	g->m_ctl = cgf_asm_add_map(g->a, env->ctl_fd, "ctl", NULL);
	g->m_rl = cgf_asm_add_map(g->a, env->ratelimit_fd, "ratelimit", NULL);
	g->m_events = cgf_asm_add_map(g->a, env->events_fd, "events", NULL);
	g->m_cgroups = cgf_asm_add_map(g->a, env->cgroups_fd, "cgroups", NULL);
	g->m_scratch = cgf_asm_add_map(g->a, env->scratch_fd, "scratch", NULL);
	if (env->learn)
		g->m_learn = cgf_asm_add_map(g->a, env->learn_fd, "learn", NULL);
}

/* *(u64 *)(dst + off) op= src, atomically */
static void i_atomic(struct gen *g, int op, uint8_t dst, int16_t off, uint8_t src)
{
	cgf_asm_emit(g->a, (struct bpf_insn){ .code = BPF_STX | BPF_DW | BPF_ATOMIC, .dst_reg = dst,
					      .src_reg = src, .off = off, .imm = op });
}

/*
 * cgfilter learn: the packet's flow (struct cgf_learn_key, the service's
 * side and the peer's) counted in the learn map.  Before the filter, after
 * the malformed check: every packet the filter sees.
 */
static void gen_learn(struct gen *g)
{
	const int16_t k = FP_KEY, v = FP_BUF;
	uint32_t out = cgf_asm_label(g->a), sent = cgf_asm_label(g->a), ports = cgf_asm_label(g->a);
	uint32_t fresh = cgf_asm_label(g->a), not_icmp = cgf_asm_label(g->a);
	int i;

	cgf_asm_note(g->a, "cgfilter learn: count the packet's flow");
	gen_unpack_cb(g, (1u << CGF_F_SRC_PORT) | (1u << CGF_F_DST_PORT) | (1u << CGF_F_IP_PROTO) |
			 (1u << CGF_F_TCP_FLAGS) | (1u << CGF_F_ICMP) | (1u << CGF_F_ICMP_TYPE) |
			 (1u << CGF_F_ICMP_CODE), GEN_SADDR | GEN_DADDR);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_FAMILY);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, out);
	i_st(g, BPF_DW, BPF_REG_10, k, 0);
	i_stx(g, BPF_B, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, family), BPF_REG_0);
	i_field(g, BPF_REG_0, CGF_F_IP_PROTO);
	i_stx(g, BPF_B, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, proto), BPF_REG_0);
	/* received: the kernel has set the interface it came in on */
	i_ldx(g, BPF_W, BPF_REG_7, R_CTX, offsetof(struct __sk_buff, ingress_ifindex));
	i_bool(g, BPF_REG_7);
	i_stx(g, BPF_B, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, ingress), BPF_REG_7);
	/* ports (ICMP: type and code), the peer's address */
	i_field(g, BPF_REG_1, CGF_F_DST_PORT);
	i_field(g, BPF_REG_2, CGF_F_SRC_PORT);
	i_field(g, BPF_REG_0, CGF_F_ICMP);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, not_icmp);
	i_field(g, BPF_REG_1, CGF_F_ICMP_TYPE);
	i_field(g, BPF_REG_2, CGF_F_ICMP_CODE);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, local_port), BPF_REG_1);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, remote_port), BPF_REG_2);
	cgf_asm_ja(g->a, ports);
	cgf_asm_place(g->a, not_icmp);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_7, 0, sent);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, local_port), BPF_REG_1);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, remote_port), BPF_REG_2);
	cgf_asm_ja(g->a, ports);
	cgf_asm_place(g->a, sent);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, local_port), BPF_REG_2);
	i_stx(g, BPF_H, BPF_REG_10, k + (int16_t)offsetof(struct cgf_learn_key, remote_port), BPF_REG_1);
	cgf_asm_place(g->a, ports);
	for (i = 0; i < 2; i++) {
		uint32_t from_d = cgf_asm_label(g->a), put = cgf_asm_label(g->a);

		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_7, 0, from_d);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(FP_SADDR + 8 * i));
		cgf_asm_ja(g->a, put);
		cgf_asm_place(g->a, from_d);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(FP_DADDR + 8 * i));
		cgf_asm_place(g->a, put);
		i_stx(g, BPF_DW, BPF_REG_10, (int16_t)(k + offsetof(struct cgf_learn_key, remote) + 8 * i),
		      BPF_REG_0);
	}
	/* a SYN without ACK: who opened the connection */
	i_field(g, BPF_REG_8, CGF_F_TCP_FLAGS);
	i_alu(g, BPF_AND, BPF_REG_8, 0x12);
	i_mov(g, BPF_REG_0, 0);
	{
		uint32_t no_syn = cgf_asm_label(g->a);

		cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, 0x02, no_syn);
		i_mov(g, BPF_REG_0, CGF_LEARN_SYN);
		cgf_asm_place(g->a, no_syn);
	}
	i_movr(g, BPF_REG_8, BPF_REG_0);
	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_learn);
	i_fp(g, BPF_REG_2, k);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, fresh);
	i_mov(g, BPF_REG_1, 1);
	i_atomic(g, BPF_ADD, BPF_REG_0, offsetof(struct cgf_learn_val, packets), BPF_REG_1);
	i_atomic(g, BPF_OR, BPF_REG_0, offsetof(struct cgf_learn_val, flags), BPF_REG_8);
	cgf_asm_ja(g->a, out);
	cgf_asm_place(g->a, fresh);
	i_st(g, BPF_DW, BPF_REG_10, v + (int16_t)offsetof(struct cgf_learn_val, packets), 1);
	i_stx(g, BPF_DW, BPF_REG_10, v + (int16_t)offsetof(struct cgf_learn_val, flags), BPF_REG_8);
	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_learn);
	i_fp(g, BPF_REG_2, k);
	i_fp(g, BPF_REG_3, v);
	i_mov(g, BPF_REG_4, BPF_ANY);
	i_call(g, BPF_FUNC_map_update_elem);
	cgf_asm_place(g->a, out);
}

void gen_count(struct gen *g, int idx, bool bytes)
{
	uint32_t skip = cgf_asm_label(g->a);

	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_stats);
	i_fp(g, BPF_REG_2, FP_ZERO);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, skip);
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, (int16_t)(8 * idx));
	i_alu(g, BPF_ADD, BPF_REG_1, 1);
	i_stx(g, BPF_DW, BPF_REG_0, (int16_t)(8 * idx), BPF_REG_1);
	if (bytes) {
		i_ldx(g, BPF_W, BPF_REG_2, R_CTX, offsetof(struct __sk_buff, len));
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, (int16_t)(8 * (idx + 1)));
		i_alur(g, BPF_ADD, BPF_REG_1, BPF_REG_2);
		i_stx(g, BPF_DW, BPF_REG_0, (int16_t)(8 * (idx + 1)), BPF_REG_1);
	}
	cgf_asm_place(g->a, skip);
}

void gen_tail_call(struct gen *g, uint32_t map, int slot, int reg)
{
	i_movr(g, BPF_REG_1, R_CTX);
	cgf_asm_ld_map(g->a, BPF_REG_2, map);
	if (reg >= 0) {
		i_movr(g, BPF_REG_3, (uint8_t)reg);
	} else if (slot != CGF_SLOT_DROP) {
		/* a constant: the JIT jumps straight there (and patches the
		 * jump when the slot changes) */
		i_mov(g, BPF_REG_3, (uint64_t)slot);
	} else {
		/* the drop program's slot as the verifier cannot know it
		 * (cgf_abi.h, cb[3]): a filter's load then patches nothing */
		i_ldx(g, BPF_W, BPF_REG_3, R_CTX, CB(3));
		i_alu(g, BPF_RSH, BPF_REG_3, CGF_CB_DROP_SHIFT);
	}
	i_call(g, BPF_FUNC_tail_call);
}

/* Which addresses the filter reads (GEN_SADDR, GEN_DADDR: local_ip and
 * remote_ip are either, by the packet's direction). */
static int note_addrs(struct cgf_node *n, void *ctx)
{
	if (n->kind == CGF_N_ADDR)
		*(unsigned *)ctx |= n->field == CGF_A_SRC ? GEN_SADDR :
				    n->field == CGF_A_DST ? GEN_DADDR : GEN_SADDR | GEN_DADDR;
	return 0;
}

/* Whether it reads local_ip or remote_ip. */
static int note_local_addrs(struct cgf_node *n, void *ctx)
{
	if (n->kind == CGF_N_ADDR && (n->field == CGF_A_LOCAL || n->field == CGF_A_REMOTE))
		*(bool *)ctx = true;
	return 0;
}

/* Whether it reads exe. */
static int note_exe(struct cgf_node *n, void *ctx)
{
	if (n->kind == CGF_N_EXE)
		*(bool *)ctx = true;
	return 0;
}

int gen_begin(struct gen *g, struct cgf_gen *out, const struct cgf_gen_env *env)
{
	memset(out, 0, sizeof(*out));
	cgf_asm_init(&out->a);
	if (g->whylen)
		g->why[0] = 0;
	g->a = &out->a;
	g->out = out;
	g->env = env;
	gen_maps(g);
	g->l_pass = cgf_asm_label(g->a);
	g->l_drop = cgf_asm_label(g->a);
	g->l_malformed = cgf_asm_label(g->a);
	g->l_filter = cgf_asm_label(g->a);
	g->deepest = FP_ZERO;
	g->deep_at = UINT32_MAX;
	return 0;
}

/* The kernel's limit of maps per program (MAX_USED_MAPS). */
#define GEN_MAX_MAPS 64

int gen_finish(struct gen *g)
{
	uint32_t i, used = 0;
	uint8_t *seen;

	if (!g->err && g->deep_at < g->a->n)
		g->a->insn[g->deep_at].off = (int16_t)(g->deepest & ~7);
	if (!g->err && cgf_asm_finish(g->a))
		gen_fail(g, g->a->err, "%s", g->a->why);
	/* the maps the program names (those of the code left) */
	seen = g->err ? NULL : calloc(g->a->nmaps + 1, 1);
	if (!g->err && !seen)
		gen_fail(g, -ENOMEM, "out of memory");
	/* (a map the program names twice, say a named set used twice, is one) */
	for (i = 0; seen && i < g->a->nmref; i++) {
		uint32_t m = g->a->mref[i].map, k;
		int fd = g->a->maps[m].fd;

		if (seen[m]++)
			continue;
		for (k = 0; fd >= 0 && k < g->a->nmaps; k++)
			if (k != m && seen[k] && g->a->maps[k].fd == fd)
				break;
		if (fd < 0 || k == g->a->nmaps)
			used++;
	}
	free(seen);
	if (used > GEN_MAX_MAPS)
		gen_fail(g, -E2BIG, "filter too large: it uses %u maps, and the kernel allows %d in a program (each named integer, executable or dynamic set is one, each address set, named or literal, of more than %d items one per address family it holds, and a set used twice is counted once)",
			 used, GEN_MAX_MAPS, CGF_INLINE_ITEMS);
	if (!g->err && g->a->err)
		gen_fail(g, g->a->err, "%s", g->a->why);
	return g->err;
}

/* Start the program of filter e: sets g up, counts the temporaries;
 * *addrs: which addresses it reads (note_addrs()).  -ENOMEM with why. */
static int filter_begin(struct gen *g, const struct cgf_expr *e, struct cgf_gen *out,
			const struct cgf_gen_env *env, unsigned *addrs)
{
	*addrs = 0;
	gen_begin(g, out, env);
	if (cgf_expr_postorder(e->root, count_slots, NULL) ||
	    cgf_expr_postorder(e->root, note_addrs, addrs)) {
		snprintf(g->why, g->whylen, "out of memory");
		return -ENOMEM;
	}
	gen_prologue(g);
	gen_dyn_maps(g, e);
	return g->err;
}

int cgf_gen_filter(const struct cgf_expr *e, const struct cgf_gen_env *env, struct cgf_gen *out,
		   char *why, size_t whylen)
{
	static const int drop_reason[CGF_RUN_NMODES] = {
		[CGF_RUN_ENFORCE] = CGF_DROP_FILTER, [CGF_RUN_OBSERVE] = CGF_WOULD_FILTER,
		[CGF_RUN_BLOCK] = CGF_DROP_BLOCK, [CGF_RUN_PASS] = CGF_DROP_FILTER,
	};
	struct gen g = { .why = why, .whylen = whylen };
	uint32_t bad;
	unsigned addrs;
	bool exe = false;
	int mode = env->mode;

	if (mode < 0 || mode >= CGF_RUN_NMODES) {
		snprintf(why, whylen, "no such mode: %d", mode);
		return -EINVAL;
	}
	if (filter_begin(&g, e, out, env, &addrs))
		return g.err ? g.err : -ENOMEM;
	bad = cgf_asm_label(g.a);
	cgf_asm_note(g.a, "a malformed packet: the mode says");
	i_ldx(&g, BPF_W, BPF_REG_0, R_CTX, CB(3));
	cgf_asm_jmp_imm(g.a, BPF_JEQ, BPF_REG_0, CGF_DROP_MALFORMED, bad);
	if (env->learn)
		gen_learn(&g);
	if (mode != CGF_RUN_BLOCK && mode != CGF_RUN_PASS) {
		if (cgf_expr_postorder(e->root, note_exe, &exe))
			return -ENOMEM;
		if (exe)
			gen_exe_fetch(&g);
	}
	if (mode == CGF_RUN_BLOCK || mode == CGF_RUN_PASS) {
		cgf_asm_note(g.a, mode == CGF_RUN_BLOCK ? "block mode: drop everything" :
							  "pass mode: pass everything");
		cgf_asm_ja(g.a, mode == CGF_RUN_BLOCK ? g.l_drop : g.l_pass);
	} else {
		/* the entry program parsed the packet; the fields are read
		 * from skb->cb where they are used, the addresses from the
		 * packet */
		gen_unpack_cb(&g, 0, addrs);
		if (addrs) {
			bool lr = false;

			if (cgf_expr_postorder(e->root, note_local_addrs, &lr))
				return -ENOMEM;
			if (lr)
				gen_local_remote(&g);
		}
		cgf_asm_note(g.a, mode == CGF_RUN_OBSERVE ? "the filter (observe mode: it passes all)" :
							     "the filter");
		cond(&g, e->root, g.l_pass, g.l_drop, 0, g.l_pass);
	}

	cgf_asm_place(g.a, g.l_pass);
	cgf_asm_note(g.a, "pass");
	gen_count(&g, CGF_ST_PASS_PKTS, true);
	i_mov(&g, BPF_REG_0, 1);
	i_exit(&g);

	cgf_asm_place(g.a, bad);
	if (mode == CGF_RUN_PASS) {
		cgf_asm_ja(g.a, g.l_pass);
	} else {
		/* cb[3] says malformed (enforce, block) or would-be (observe) */
		if (mode == CGF_RUN_OBSERVE) {
			i_mov(&g, BPF_REG_0, CGF_WOULD_MALFORMED);
			i_stx(&g, BPF_W, R_CTX, CB(3), BPF_REG_0);
		}
		gen_tail_call(&g, g.m_drops, CGF_SLOT_DROP, -1);
		i_mov(&g, BPF_REG_0, 0);
		i_exit(&g);
	}

	/* (an address read that fails cannot happen: the entry program read
	 * the header; it would drop) */
	cgf_asm_place(g.a, g.l_malformed);
	cgf_asm_place(g.a, g.l_drop);
	cgf_asm_note(g.a, mode == CGF_RUN_OBSERVE ? "would drop: the drop program counts, reports, passes" :
						     "drop: the drop program counts and reports it");
	i_mov(&g, BPF_REG_0, drop_reason[mode]);
	if (exe) {
		uint32_t none = cgf_asm_label(g.a);
		int k;

		cgf_asm_note(g.a, "the executable, for the drop event");
		cgf_asm_ld_map(g.a, BPF_REG_1, g.m_scratch);
		i_fp(&g, BPF_REG_2, FP_ZERO);
		i_call(&g, BPF_FUNC_map_lookup_elem);
		i_movr(&g, BPF_REG_1, BPF_REG_0);
		i_mov(&g, BPF_REG_0, drop_reason[mode]);
		cgf_asm_jmp_imm(g.a, BPF_JEQ, BPF_REG_1, 0, none);
		for (k = 0; k < 2; k++) {
			i_ldx(&g, BPF_DW, BPF_REG_2, BPF_REG_10, (int16_t)(FP_EXE + 8 * k));
			i_stx(&g, BPF_DW, BPF_REG_1, (int16_t)(8 * k), BPF_REG_2);
		}
		i_mov(&g, BPF_REG_0, drop_reason[mode] | CGF_CB_EXE);
		cgf_asm_place(g.a, none);
	}
	i_stx(&g, BPF_W, R_CTX, CB(3), BPF_REG_0);
	gen_tail_call(&g, g.m_drops, CGF_SLOT_DROP, -1);
	i_mov(&g, BPF_REG_0, 0);
	i_exit(&g);
	return gen_finish(&g);
}

int cgf_gen_socket_filter(const struct cgf_expr *e, enum cgf_sock_ctx ctx,
			  const struct cgf_gen_env *env, struct cgf_gen *out, char *why,
			  size_t whylen)
{
	struct gen g = { .why = why, .whylen = whylen, .sock = true, .sock_ctx = ctx };
	unsigned addrs;

	if (filter_begin(&g, e, out, env, &addrs))
		return g.err ? g.err : -ENOMEM;
	{
		bool exe = false;

		if (cgf_expr_postorder(e->root, note_exe, &exe))
			return -ENOMEM;
		if (exe) {
			snprintf(why, whylen, "exe: a socket filter cannot tell who made a packet's socket (it is the daemon's own); cgroup filters can");
			return -EINVAL;
		}
	}
	gen_parse(&g);
	/* then as the engine's filter does after its entry program */
	cgf_asm_place(g.a, g.l_filter);
	gen_pack_cb(&g);
	gen_unpack_cb(&g, 0, addrs);
	cgf_asm_note(g.a, "the filter");
	cond(&g, e->root, g.l_pass, g.l_drop, 0, g.l_pass);
	cgf_asm_place(g.a, g.l_pass);
	cgf_asm_note(g.a, "pass: keep the whole packet");
	cgf_asm_emit(g.a, (struct bpf_insn){ .code = BPF_ALU | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
					     .imm = -1 });
	i_exit(&g);
	cgf_asm_place(g.a, g.l_malformed);
	cgf_asm_place(g.a, g.l_drop);
	cgf_asm_note(g.a, "drop");
	i_mov(&g, BPF_REG_0, 0);
	i_exit(&g);
	return gen_finish(&g);
}

void cgf_gen_bind(struct cgf_gen *g, size_t i, int fd)
{
	uint32_t m, k;

	if (i >= g->nlits)
		return;
	m = g->lits[i].asm_map;
	g->a.maps[m].fd = fd;
	for (k = 0; k < g->a.nmref; k++)
		if (g->a.mref[k].map == m)
			g->a.insn[g->a.mref[k].at].imm = fd;
}

void cgf_gen_free(struct cgf_gen *g)
{
	size_t i;

	for (i = 0; i < g->nlits; i++)
		free(g->lits[i].data);
	free(g->lits);
	cgf_asm_free(&g->a);
	memset(g, 0, sizeof(*g));
}
