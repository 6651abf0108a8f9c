// SPDX-License-Identifier: GPL-2.0-only
/*
 * Compile a filter expression into the cgfilter engine's code.  Boolean
 * context (the top, && || ! ?: and comparisons under them) becomes jumps,
 * so 'tcp && dst_port == 80' costs two compare-and-branch steps; arithmetic
 * computes into scratch registers, the child needing more registers first
 * (Sethi-Ullman), so CGF_NREGS - CGF_NFIELDS registers suffice for any
 * realistic filter.  Every jump goes forward.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"

#define L_PASS 0
#define L_DROP 1
#define NTEMPS (CGF_NREGS - CGF_NFIELDS)

struct comp {
	struct cgf_insn *insn; /* up to CGF_MAX_INSNS + 1: overflow is noticed */
	int *jt, *jf;          /* labels of each instruction's jumps */
	uint32_t n;
	int *label;            /* label -> instruction index, -1 if not placed */
	size_t nlabels, caplabels;
	uint32_t temps;        /* bit i: register CGF_NFIELDS + i in use */
	bool failed;
	char *why;
	size_t whylen;
};

static void fail(struct comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct comp *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return;
	c->failed = true;
	va_start(ap, fmt);
	vsnprintf(c->why, c->whylen, fmt, ap);
	va_end(ap);
}

static int new_label(struct comp *c)
{
	if (c->nlabels == c->caplabels) {
		size_t cap = c->caplabels ? c->caplabels * 2 : 64;
		int *l = realloc(c->label, cap * sizeof(*l));

		if (!l) {
			fail(c, "out of memory");
			return L_DROP;
		}
		c->label = l;
		c->caplabels = cap;
	}
	c->label[c->nlabels] = -1;
	return (int)c->nlabels++;
}

static void place(struct comp *c, int l)
{
	if (!c->failed)
		c->label[l] = (int)c->n;
}

static struct cgf_insn *emit(struct comp *c, uint8_t op, int dst, int a, int b, uint64_t k,
			     int jt, int jf)
{
	struct cgf_insn *in;

	if (c->failed)
		return NULL;
	if (c->n >= CGF_MAX_INSNS) {
		fail(c, "filter too large: more than %d engine instructions", CGF_MAX_INSNS);
		return NULL;
	}
	in = &c->insn[c->n];
	memset(in, 0, sizeof(*in));
	in->op = op;
	in->dst = (uint8_t)dst;
	in->a = (uint8_t)a;
	in->b = (uint8_t)b;
	in->k = k;
	c->jt[c->n] = jt;
	c->jf[c->n] = jf;
	c->n++;
	return in;
}

static int alloc_temp(struct comp *c)
{
	int i;

	for (i = 0; i < NTEMPS; i++)
		if (!(c->temps & (1u << i))) {
			c->temps |= 1u << i;
			return CGF_NFIELDS + i;
		}
	fail(c, "filter too complex: needs more than %d scratch registers", NTEMPS);
	return CGF_NFIELDS;
}

static bool is_temp(int r)
{
	return r >= CGF_NFIELDS;
}

static void free_reg(struct comp *c, int r)
{
	if (is_temp(r))
		c->temps &= ~(1u << (r - CGF_NFIELDS));
}

/* The value of a subtree without fields (the parser folded it). */
static bool const_value(const struct cgf_node *n, uint64_t *v)
{
	if (n->is_const)
		*v = n->cval; /* *v untouched otherwise: callers test one side, then the other */
	return n->is_const;
}

/* Registers a subtree needs (Sethi-Ullman number, roughly), computed once
 * for every node by annotate() into n->aux. */
static int need(const struct cgf_node *n)
{
	return n ? n->aux : 0;
}

static int annotate_node(struct cgf_node *n, void *ctx)
{
	int a, b;

	(void)ctx;
	if (n->kind == CGF_N_FIELD || n->kind == CGF_N_ADDR || n->is_const) {
		n->aux = 0;
		return 0;
	}
	a = need(n->a);
	b = need(n->b);
	if (n->kind == CGF_N_COND) {
		int x = need(n->c);

		b = b > x ? b : x;
		n->aux = 1 + (a > b ? a : b);
	} else {
		n->aux = a == b ? a + 1 : a > b ? a : b;
	}
	return 0;
}

static int cmp_op(enum cgf_op op, bool jump)
{
	switch (op) {
	case CGF_OP_EQ: return jump ? CGF_JEQ : CGF_SEQ;
	case CGF_OP_NE: return jump ? CGF_JNE : CGF_SNE;
	case CGF_OP_LT: return jump ? CGF_JLT : CGF_SLT;
	case CGF_OP_LE: return jump ? CGF_JLE : CGF_SLE;
	case CGF_OP_GT: return jump ? CGF_JGT : CGF_SGT;
	case CGF_OP_GE: return jump ? CGF_JGE : CGF_SGE;
	default: return 0;
	}
}

/* a OP b == b MIRROR(OP) a */
static enum cgf_op mirror(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_LT: return CGF_OP_GT;
	case CGF_OP_LE: return CGF_OP_GE;
	case CGF_OP_GT: return CGF_OP_LT;
	case CGF_OP_GE: return CGF_OP_LE;
	default: return op;
	}
}

static int alu_op(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_ADD: return CGF_ADD;
	case CGF_OP_SUB: return CGF_SUB;
	case CGF_OP_MUL: return CGF_MUL;
	case CGF_OP_DIV: return CGF_DIV;
	case CGF_OP_MOD: return CGF_MOD;
	case CGF_OP_BAND: return CGF_AND;
	case CGF_OP_BOR: return CGF_OR;
	case CGF_OP_BXOR: return CGF_XOR;
	case CGF_OP_SHL: return CGF_LSH;
	case CGF_OP_SHR: return CGF_RSH;
	default: return 0;
	}
}

static bool commutative(enum cgf_op op)
{
	return op == CGF_OP_ADD || op == CGF_OP_MUL || op == CGF_OP_BAND || op == CGF_OP_BOR ||
	       op == CGF_OP_BXOR || op == CGF_OP_EQ || op == CGF_OP_NE;
}

static void cond(struct comp *c, const struct cgf_node *n, int t, int f);

/* Evaluate a and b of a binary node into registers, heavier first. */
static void operands(struct comp *c, int (*val)(struct comp *, const struct cgf_node *),
		     const struct cgf_node *n, int *ra, int *rb)
{
	if (need(n->b) > need(n->a)) {
		*rb = val(c, n->b);
		*ra = val(c, n->a);
	} else {
		*ra = val(c, n->a);
		*rb = val(c, n->b);
	}
}

/* A register to write a result of ra (and rb) into: reuse a temp. */
static int result_reg(struct comp *c, int ra, int rb)
{
	if (is_temp(ra)) {
		if (rb != ra)
			free_reg(c, rb);
		return ra;
	}
	if (is_temp(rb))
		return rb;
	return alloc_temp(c);
}

static int val(struct comp *c, const struct cgf_node *n);

/* The ALU or set-to-compare opcode of an arithmetic or comparison node. */
static int value_op(const struct cgf_node *n)
{
	int op;

	if (n->kind != CGF_N_BINARY || n->is_const)
		return 0;
	op = alu_op(n->op);
	return op ? op : cmp_op(n->op, false);
}

/* One arithmetic or comparison node whose left operand is already in ra. */
static int val_step(struct comp *c, const struct cgf_node *n, int ra)
{
	int op = value_op(n), rb, r;
	uint64_t k;

	if (const_value(n->b, &k)) {
		r = result_reg(c, ra, ra);
		emit(c, (uint8_t)op, r, ra, 0, k, 0, 0);
		return r;
	}
	rb = val(c, n->b);
	r = result_reg(c, ra, rb);
	emit(c, (uint8_t)(op | CGF_X), r, ra, rb, 0, 0, 0);
	return r;
}

/* Whether n is evaluated as one step up a left spine: its left operand is
 * itself such a node and is evaluated first anyway (the right one is not
 * heavier), exactly as the general rules below would. */
static bool on_spine(const struct cgf_node *n)
{
	return value_op(n) && value_op(n->a) && (n->b->is_const || need(n->b) <= need(n->a));
}

/*
 * A chain such as 'len + len + ... + len' is as deep as it is long: walk its
 * left spine without recursion, then evaluate it bottom up.
 */
static int val_chain(struct comp *c, const struct cgf_node *n)
{
	const struct cgf_node **spine = NULL, *x;
	size_t depth = 0, cap = 0;
	int r;

	for (x = n; on_spine(x); x = x->a) {
		if (depth == cap) {
			const struct cgf_node **p = realloc(spine, (cap = cap ? cap * 2 : 64) * sizeof(*p));

			if (!p) {
				fail(c, "out of memory");
				free(spine);
				return CGF_NFIELDS;
			}
			spine = p;
		}
		spine[depth++] = x;
	}
	r = val(c, x); /* the bottom: not on the spine, so no loop */
	while (depth-- && !c->failed)
		r = val_step(c, spine[depth], r);
	free(spine);
	return r;
}

/* Evaluate n into a register: a field register (read only) or a temp. */
static int val(struct comp *c, const struct cgf_node *n)
{
	int ra, rb, r, op, lt, lf, end;
	uint64_t k;

	if (c->failed)
		return CGF_NFIELDS;
	if (const_value(n, &k)) {
		r = alloc_temp(c);
		emit(c, CGF_MOV, r, 0, 0, k, 0, 0);
		return r;
	}
	switch (n->kind) {
	case CGF_N_FIELD:
		return n->field;
	case CGF_N_UNARY:
		ra = val(c, n->a);
		if (n->op == CGF_OP_NONE)
			return ra;
		r = result_reg(c, ra, ra);
		if (n->op == CGF_OP_NEG)
			emit(c, CGF_NEG, r, ra, 0, 0, 0, 0);
		else if (n->op == CGF_OP_BNOT)
			emit(c, CGF_XOR, r, ra, 0, ~0ULL, 0, 0);
		else
			emit(c, CGF_SEQ, r, ra, 0, 0, 0, 0);
		return r;
	case CGF_N_BINARY:
		op = alu_op(n->op);
		if (!op)
			op = cmp_op(n->op, false);
		if (!op)
			break; /* && || : boolean */
		if (on_spine(n))
			return val_chain(c, n);
		if (const_value(n->b, &k) ||
		    (commutative(n->op) && const_value(n->a, &k))) {
			const struct cgf_node *x = const_value(n->b, &k) ? n->a : n->b;

			ra = val(c, x);
			r = result_reg(c, ra, ra);
			emit(c, (uint8_t)op, r, ra, 0, k, 0, 0);
			return r;
		}
		if (cmp_op(n->op, false) && const_value(n->a, &k)) {
			ra = val(c, n->b);
			r = result_reg(c, ra, ra);
			emit(c, (uint8_t)cmp_op(mirror(n->op), false), r, ra, 0, k, 0, 0);
			return r;
		}
		operands(c, val, n, &ra, &rb);
		r = result_reg(c, ra, rb);
		emit(c, (uint8_t)(op | CGF_X), r, ra, rb, 0, 0, 0);
		return r;
	case CGF_N_COND:
		r = alloc_temp(c);
		lt = new_label(c);
		lf = new_label(c);
		end = new_label(c);
		cond(c, n->a, lt, lf);
		place(c, lt);
		ra = val(c, n->b);
		emit(c, CGF_MOV | CGF_X, r, 0, ra, 0, 0, 0);
		free_reg(c, ra);
		emit(c, CGF_JA, 0, 0, 0, 0, end, end);
		place(c, lf);
		ra = val(c, n->c);
		emit(c, CGF_MOV | CGF_X, r, 0, ra, 0, 0, 0);
		free_reg(c, ra);
		place(c, end);
		return r;
	default:
		break;
	}
	/* a boolean: jumps to set 1 or 0 */
	r = alloc_temp(c);
	lt = new_label(c);
	lf = new_label(c);
	end = new_label(c);
	cond(c, n, lt, lf);
	place(c, lt);
	emit(c, CGF_MOV, r, 0, 0, 1, 0, 0);
	emit(c, CGF_JA, 0, 0, 0, 0, end, end);
	place(c, lf);
	emit(c, CGF_MOV, r, 0, 0, 0, 0, 0);
	place(c, end);
	return r;
}

static void cond_in(struct comp *c, const struct cgf_node *n, int t, int f)
{
	const struct cgf_set *s = n->set;
	size_t i;
	int r;
	if (n->a->kind == CGF_N_ADDR) {
		emit(c, CGF_JIN_LPM, 0, n->a->field, 0, s->id, t, f);
		return;
	}
	r = val(c, n->a);
	if (!s->inlined) {
		emit(c, CGF_JIN_BITS, 0, r, 0, s->id, t, f);
	} else {
		for (i = 0; i < s->n; i++) {
			int next = i + 1 < s->n ? new_label(c) : f;
			const struct cgf_range *g = &s->ranges[i];

			if (g->lo == g->hi) {
				emit(c, CGF_JEQ, 0, r, 0, g->lo, t, next);
			} else {
				int mid = new_label(c);

				emit(c, CGF_JGE, 0, r, 0, g->lo, mid, next);
				place(c, mid);
				emit(c, CGF_JLE, 0, r, 0, g->hi, t, next);
			}
			if (i + 1 < s->n)
				place(c, next);
		}
		if (!s->n)
			emit(c, CGF_JA, 0, 0, 0, 0, f, f);
	}
	free_reg(c, r);
}

/*
 * 'a || b || ... || z' (or &&) is a left-deep tree as deep as it is long:
 * collect its operands along the left spine without recursion, then test
 * them in order, each jumping to the next or to the end.
 */
static void cond_chain(struct comp *c, const struct cgf_node *n, int t, int f)
{
	const struct cgf_node **opnd = NULL, *x;
	size_t k = 0, cap = 0, i;
	bool lor = n->op == CGF_OP_LOR;

	for (x = n;; x = x->a) {
		bool more = x->kind == CGF_N_BINARY && x->op == n->op && !x->is_const;

		if (k == cap) {
			const struct cgf_node **p = realloc(opnd, (cap = cap ? cap * 2 : 64) * sizeof(*p));

			if (!p) {
				fail(c, "out of memory");
				free(opnd);
				return;
			}
			opnd = p;
		}
		opnd[k++] = more ? x->b : x;
		if (!more)
			break;
	}
	/* opnd[] holds z, ..., b, a: test from the end */
	for (i = k; i-- > 1 && !c->failed;) {
		int l = new_label(c);

		if (lor)
			cond(c, opnd[i], t, l);
		else
			cond(c, opnd[i], l, f);
		place(c, l);
	}
	cond(c, opnd[0], t, f);
	free(opnd);
}

/* Jump to t if n is non-zero, else to f. */
static void cond(struct comp *c, const struct cgf_node *n, int t, int f)
{
	int ra, rb, op;
	uint64_t k;

	if (c->failed)
		return;
	if (const_value(n, &k)) {
		emit(c, CGF_JA, 0, 0, 0, 0, k ? t : f, k ? t : f);
		return;
	}
	switch (n->kind) {
	case CGF_N_FIELD:
		emit(c, CGF_JNE, 0, n->field, 0, 0, t, f);
		return;
	case CGF_N_IN:
		cond_in(c, n, t, f);
		return;
	case CGF_N_COND: {
		int lt = new_label(c), lf = new_label(c);

		cond(c, n->a, lt, lf);
		place(c, lt);
		cond(c, n->b, t, f);
		place(c, lf);
		cond(c, n->c, t, f);
		return;
	}
	case CGF_N_UNARY:
		if (n->op == CGF_OP_NOT) {
			cond(c, n->a, f, t);
			return;
		}
		if (n->op == CGF_OP_NONE || n->op == CGF_OP_NEG) { /* -x != 0 iff x != 0 */
			cond(c, n->a, t, f);
			return;
		}
		break;
	case CGF_N_BINARY:
		if (n->op == CGF_OP_LOR || n->op == CGF_OP_LAND) {
			cond_chain(c, n, t, f);
			return;
		}
		op = cmp_op(n->op, true);
		if (!op && n->op == CGF_OP_BAND)
			op = CGF_JSET;
		if (!op)
			break;
		if (const_value(n->b, &k)) {
			ra = val(c, n->a);
			emit(c, (uint8_t)op, 0, ra, 0, k, t, f);
			free_reg(c, ra);
			return;
		}
		if (const_value(n->a, &k)) {
			ra = val(c, n->b);
			op = op == CGF_JSET ? CGF_JSET : cmp_op(mirror(n->op), true);
			emit(c, (uint8_t)op, 0, ra, 0, k, t, f);
			free_reg(c, ra);
			return;
		}
		operands(c, val, n, &ra, &rb);
		emit(c, (uint8_t)(op | CGF_X), 0, ra, rb, 0, t, f);
		free_reg(c, ra);
		free_reg(c, rb);
		return;
	default:
		break;
	}
	ra = val(c, n);
	emit(c, CGF_JNE, 0, ra, 0, 0, t, f);
	free_reg(c, ra);
}

void cgf_mark_inline_sets(struct cgf_expr *e)
{
	struct cgf_set *s;

	for (s = e->sets; s; s = s->next)
		s->inlined = !s->name[0] && s->type == CGF_T_INT && s->n <= CGF_INLINE_RANGES;
}

int cgf_compile(const struct cgf_expr *e, struct cgf_code *out, char *why, size_t whylen)
{
	struct comp c = { .why = why, .whylen = whylen };
	uint32_t i;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (cgf_expr_postorder(e->root, annotate_node, NULL)) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	c.insn = out->insn;
	c.jt = calloc(CGF_MAX_INSNS, sizeof(int));
	c.jf = calloc(CGF_MAX_INSNS, sizeof(int));
	if (!c.jt || !c.jf) {
		r = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	new_label(&c); /* L_PASS */
	new_label(&c); /* L_DROP */
	cond(&c, e->root, L_PASS, L_DROP);
	if (c.failed) {
		r = -E2BIG;
		goto out;
	}
	for (i = 0; i < c.n; i++) {
		int *lab[2] = { &c.jt[i], &c.jf[i] };
		uint16_t *pc[2] = { &out->insn[i].jt, &out->insn[i].jf };
		int j;

		for (j = 0; j < 2; j++) {
			int l = *lab[j];

			if (l == L_PASS)
				*pc[j] = CGF_PC_PASS;
			else if (l == L_DROP || c.label[l] < 0 || c.label[l] >= (int)c.n)
				*pc[j] = CGF_PC_DROP; /* unused, or falls off the end */
			else
				*pc[j] = (uint16_t)c.label[l];
		}
	}
	out->ninsn = c.n;
	r = cgf_code_valid(out, why, whylen);
out:
	free(c.jt);
	free(c.jf);
	free(c.label);
	return r;
}

static bool is_jump(uint8_t op)
{
	op &= ~CGF_X;
	return op >= CGF_JEQ && op <= CGF_JA;
}

int cgf_code_valid(const struct cgf_code *c, char *why, size_t whylen)
{
	uint32_t i;

	if (c->ninsn > CGF_MAX_INSNS) {
		snprintf(why, whylen, "%u instructions, at most %d", c->ninsn, CGF_MAX_INSNS);
		return -EINVAL;
	}
	for (i = 0; i < c->ninsn; i++) {
		const struct cgf_insn *in = &c->insn[i];
		uint8_t op = in->op & ~CGF_X;

		if (!op || op >= CGF_NOPCODES || in->a >= CGF_NREGS || in->b >= CGF_NREGS ||
		    in->dst >= CGF_NREGS || (!is_jump(in->op) && in->dst < CGF_NFIELDS)) {
			snprintf(why, whylen, "instruction %u is invalid", i);
			return -EINVAL;
		}
		if (is_jump(in->op) &&
		    ((in->jt <= i && in->jt < CGF_PC_DROP) || (in->jf <= i && in->jf < CGF_PC_DROP))) {
			snprintf(why, whylen, "instruction %u jumps backwards", i);
			return -EINVAL;
		}
	}
	return 0;
}

static const char *const op_names[CGF_NOPCODES] = {
	[CGF_JEQ] = "jeq", [CGF_JNE] = "jne", [CGF_JLT] = "jlt", [CGF_JLE] = "jle",
	[CGF_JGT] = "jgt", [CGF_JGE] = "jge", [CGF_JSET] = "jset", [CGF_JIN_BITS] = "jin",
	[CGF_JIN_LPM] = "jin", [CGF_JA] = "ja", [CGF_ADD] = "add", [CGF_SUB] = "sub",
	[CGF_MUL] = "mul", [CGF_DIV] = "div", [CGF_MOD] = "mod", [CGF_AND] = "and",
	[CGF_OR] = "or", [CGF_XOR] = "xor", [CGF_LSH] = "lsh", [CGF_RSH] = "rsh",
	[CGF_MOV] = "mov", [CGF_NEG] = "neg", [CGF_SEQ] = "seq", [CGF_SNE] = "sne",
	[CGF_SLT] = "slt", [CGF_SLE] = "sle", [CGF_SGT] = "sgt", [CGF_SGE] = "sge",
};

static void reg_name(int r, char *buf, size_t len)
{
	if (r < CGF_NFIELDS)
		snprintf(buf, len, "r%d (%s)", r, cgf_field_name(r));
	else
		snprintf(buf, len, "r%d", r);
}

static void target(uint16_t pc, char *buf, size_t len)
{
	if (pc == CGF_PC_PASS)
		snprintf(buf, len, "PASS");
	else if (pc == CGF_PC_DROP)
		snprintf(buf, len, "DROP");
	else
		snprintf(buf, len, "%u", pc);
}

void cgf_disasm(const struct cgf_code *c, FILE *f)
{
	uint32_t i;

	for (i = 0; i < c->ninsn && i < CGF_MAX_INSNS; i++) {
		const struct cgf_insn *in = &c->insn[i];
		uint8_t op = in->op & ~CGF_X;
		char a[40], b[40], d[40], t[8], e[8];
		const char *name = op < CGF_NOPCODES && op_names[op] ? op_names[op] : "?";

		reg_name(in->a, a, sizeof(a));
		reg_name(in->dst, d, sizeof(d));
		if (in->op & CGF_X)
			reg_name(in->b, b, sizeof(b));
		else
			snprintf(b, sizeof(b), "%" PRIu64, (uint64_t)in->k);
		target(in->jt, t, sizeof(t));
		target(in->jf, e, sizeof(e));
		if (op == CGF_JA)
			fprintf(f, "%4u: ja   %s\n", i, t);
		else if (op == CGF_JIN_LPM)
			fprintf(f, "%4u: jin  %s, address set %" PRIu64 "  -> %s, %s\n", i,
				in->a ? "dst_ip" : "src_ip", (uint64_t)in->k, t, e);
		else if (op == CGF_JIN_BITS)
			fprintf(f, "%4u: jin  %s, integer set %" PRIu64 "  -> %s, %s\n", i, a,
				(uint64_t)in->k, t, e);
		else if (is_jump(in->op))
			fprintf(f, "%4u: %-4s %s, %s  -> %s, %s\n", i, name, a, b, t, e);
		else if (op == CGF_MOV)
			fprintf(f, "%4u: mov  %s, %s\n", i, d, b);
		else if (op == CGF_NEG)
			fprintf(f, "%4u: neg  %s, %s\n", i, d, a);
		else
			fprintf(f, "%4u: %-4s %s, %s, %s\n", i, name, d, a, b);
	}
}
