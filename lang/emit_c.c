// SPDX-License-Identifier: GPL-2.0-only
/*
 * The language's C back end: a parsed filter as C for port-firewall
 * (cgf_expr_emit_c, expr.h).  The BPF back end, for cgfilter, is
 * emit_bpf.c and the files it names.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

static const char *const field_enum[CGF_NALLFIELDS] = {
	[CGF_F_IP] = "CGF_F_IP",
	[CGF_F_IPV6] = "CGF_F_IPV6",
	[CGF_F_TCP] = "CGF_F_TCP",
	[CGF_F_UDP] = "CGF_F_UDP",
	[CGF_F_ICMP] = "CGF_F_ICMP",
	[CGF_F_SRC_PORT] = "CGF_F_SRC_PORT",
	[CGF_F_DST_PORT] = "CGF_F_DST_PORT",
	[CGF_F_LEN] = "CGF_F_LEN",
	[CGF_F_IP_PROTO] = "CGF_F_IP_PROTO",
	[CGF_F_ICMP_TYPE] = "CGF_F_ICMP_TYPE",
	[CGF_F_ICMP_CODE] = "CGF_F_ICMP_CODE",
	[CGF_F_TCP_FLAGS] = "CGF_F_TCP_FLAGS",
	[CGF_F_FRAG] = "CGF_F_FRAG",
	[CGF_F_TTL] = "CGF_F_TTL",
	[CGF_F_LOCAL_PORT] = "CGF_F_LOCAL_PORT",
	[CGF_F_REMOTE_PORT] = "CGF_F_REMOTE_PORT",
};

/* ---- C emitter (port-firewall) ---------------------------------------- */

/*
 * The expression becomes straight-line C: one temporary per node, each
 * naming only earlier ones, so nothing nests and clang takes any tree the
 * parser allows (nested parentheses stop at its bracket depth of 256: 129
 * OR'ed terms did).  There is no branch either: comparisons, ! && || ?: and
 * division are the helpers of include/cgf_expr.bpf.h, which says why.  Both
 * sides of && || ?: are computed: every operation is total and has no side
 * effect, so the value is the one C's short-circuit gives.
 *
 * Every temporary that is not a literal or a field passes through
 * cgf_keep(): without it clang rebuilds the whole expression as one and
 * spends minutes (and past the 512 bytes of BPF stack) rearranging it.  The
 * operand that needs more temporaries at once is written first
 * (Sethi-Ullman order, counted into n->aux), so that a tree of n nodes holds
 * about log2(n) of them at any point, not one per level of a long chain.
 */

/* A division by a literal is BPF's own: no test for 0, and no fix-up by the
 * kernel, which rewrites every division by a register (in time that grows
 * with the program, for each one). */
static bool const_divisor(const struct cgf_node *n)
{
	return n->kind == CGF_N_BINARY && (n->op == CGF_OP_DIV || n->op == CGF_OP_MOD) &&
	       n->b->is_const;
}

/* The operands written before n: its children, unless the parser folded n
 * or n divides by a literal (written in place). */
static int n_operands(const struct cgf_node *n)
{
	if (n->is_const)
		return 0;
	switch (n->kind) {
	case CGF_N_UNARY:
		return 1;
	case CGF_N_BINARY:
		return const_divisor(n) ? 1 : 2;
	case CGF_N_COND:
		return 3;
	default:
		return 0;
	}
}

static const char *c_op(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_BOR: return "|";
	case CGF_OP_BXOR: return "^";
	case CGF_OP_BAND: return "&";
	case CGF_OP_ADD: return "+";
	case CGF_OP_SUB: return "-";
	case CGF_OP_MUL: return "*";
	case CGF_OP_SHL: return "<<";
	case CGF_OP_SHR: return ">>";
	case CGF_OP_BNOT: return "~";
	case CGF_OP_NEG: return "-";
	default: return NULL;
	}
}

/* Operators whose literal operand the verifier must not see as one
 * (cgf_opaque() in include/cgf_expr.bpf.h says why). */
static bool hides_literals(enum cgf_op op)
{
	switch (op) {
	case CGF_OP_BAND:
	case CGF_OP_BOR:
	case CGF_OP_LOR:
	case CGF_OP_LT:
	case CGF_OP_LE:
	case CGF_OP_GT:
	case CGF_OP_GE:
		return true;
	default:
		return false;
	}
}

/* Operand kid of n, written as temporary t, as C. */
static void operand(char *buf, size_t len, const struct cgf_node *n, const struct cgf_node *kid,
		    size_t t)
{
	if (hides_literals(n->op) && kid->is_const)
		snprintf(buf, len, "cgf_opaque(p, t%zu)", t);
	else
		snprintf(buf, len, "t%zu", t);
}

static int emit_binary(const struct cgf_node *n, const size_t *x, FILE *f)
{
	char a[48], b[48];
	uint64_t k = n->b->cval;

	operand(a, sizeof(a), n, n->a, x[0]);
	operand(b, sizeof(b), n, n->b, x[1]);
	switch (n->op) {
	case CGF_OP_LOR:
		fprintf(f, "cgf_bool(%s | %s)", a, b);
		return 0;
	case CGF_OP_LAND:
		fprintf(f, "cgf_bool(%s) & cgf_bool(%s)", a, b);
		return 0;
	case CGF_OP_EQ:
	case CGF_OP_NE:
		fprintf(f, "cgf_bool(%s ^ %s)%s", a, b, n->op == CGF_OP_EQ ? " ^ 1" : "");
		return 0;
	case CGF_OP_LT:
	case CGF_OP_GE:
		fprintf(f, "cgf_less(%s, %s)%s", a, b, n->op == CGF_OP_GE ? " ^ 1" : "");
		return 0;
	case CGF_OP_GT:
	case CGF_OP_LE:
		fprintf(f, "cgf_less(%s, %s)%s", b, a, n->op == CGF_OP_LE ? " ^ 1" : "");
		return 0;
	case CGF_OP_SHL:
	case CGF_OP_SHR:
		fprintf(f, "%s %s (%s & 63)", a, c_op(n->op), b);
		return 0;
	case CGF_OP_DIV:
	case CGF_OP_MOD:
		if (!const_divisor(n))
			fprintf(f, "cgf_u%s(%s, %s)", n->op == CGF_OP_DIV ? "div" : "mod", a, b);
		else if (k)
			fprintf(f, "%s %s 0x%" PRIx64 "ULL", a, n->op == CGF_OP_DIV ? "/" : "%", k);
		else    /* x / 0 == 0, x % 0 == x */
			fprintf(f, "%s%s", a, n->op == CGF_OP_DIV ? " & 0" : "");
		return 0;
	default:
		if (!c_op(n->op))
			return -EINVAL;
		fprintf(f, "%s %s %s", a, c_op(n->op), b);
		return 0;
	}
}

/* "tN = VALUE;" for node n, its operands being temporaries x[0..2]. */
static int emit_node(const struct cgf_node *n, size_t t, const size_t *x, FILE *f)
{
	int r = 0;

	fprintf(f, "\t__u64 t%zu = ", t);
	if (n->is_const) {
		fprintf(f, "0x%" PRIx64 "ULL;\n", n->cval);
		return 0;
	}
	switch (n->kind) {
	case CGF_N_FIELD:
		fprintf(f, "cgf_field(p, %s);\n", field_enum[n->field]);
		return 0;
	case CGF_N_UNARY:
		if (n->op == CGF_OP_NOT)
			fprintf(f, "cgf_bool(t%zu) ^ 1", x[0]);
		else if (c_op(n->op))
			fprintf(f, "%st%zu", c_op(n->op), x[0]);
		else
			r = -EINVAL;
		break;
	case CGF_N_BINARY:
		r = emit_binary(n, x, f);
		break;
	case CGF_N_COND:
		fprintf(f, "cgf_select(t%zu, t%zu, t%zu)", x[0], x[1], x[2]);
		break;
	default:
		/* sets and addresses are cgfilter's, never port-firewall's */
		r = -EINVAL;
	}
	fprintf(f, ";\n\tcgf_keep(t%zu);\n", t);
	return r;
}

/* How many temporaries computing n holds at once, into n->aux. */
static int count_need(struct cgf_node *n, void *ctx)
{
	const struct cgf_node *k[3] = { n->a, n->b, n->c };
	int i, j, need[3] = { 0, 0, 0 }, most = 1;

	(void)ctx;
	for (i = 0; i < n_operands(n); i++)
		need[i] = k[i]->aux;
	/* largest first: the i-th operand is computed holding i results */
	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (need[j] > need[i]) {
				int s = need[i];

				need[i] = need[j];
				need[j] = s;
			}
	for (i = 0; i < 3; i++)
		if (need[i] + i > most)
			most = need[i] + i;
	n->aux = most;
	return 0;
}

/* A node on the walk's stack: its operands in the order they are written
 * (largest need first), how many are written, and their temporaries by
 * position. */
struct emit_frame {
	const struct cgf_node *n;
	int order[3];
	int done;
	size_t x[3];
};

static int push_node(struct emit_frame **st, size_t *sp, size_t *cap, const struct cgf_node *n)
{
	const struct cgf_node *k[3] = { n->a, n->b, n->c };
	struct emit_frame *fr;
	int i, j;

	if (*sp == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct emit_frame *s = realloc(*st, ncap * sizeof(**st));

		if (!s)
			return -ENOMEM;
		*st = s;
		*cap = ncap;
	}
	fr = &(*st)[(*sp)++];
	*fr = (struct emit_frame){ .n = n, .order = { 0, 1, 2 } };
	for (i = 0; i < n_operands(n); i++)
		for (j = i + 1; j < n_operands(n); j++)
			if (k[fr->order[j]]->aux > k[fr->order[i]]->aux) {
				int s = fr->order[i];

				fr->order[i] = fr->order[j];
				fr->order[j] = s;
			}
	return 0;
}

/* One temporary per node, operands first, without recursion (a chain of
 * 100000 terms is a tree as deep); *last is the root's. */
static int emit_body(const struct cgf_node *root, FILE *f, size_t *last)
{
	struct emit_frame *st = NULL, *top;
	size_t sp = 0, cap = 0, t = 0;
	int r = push_node(&st, &sp, &cap, root);

	while (!r && sp) {
		top = &st[sp - 1];
		if (top->done < n_operands(top->n)) {
			const struct cgf_node *k[3] = { top->n->a, top->n->b, top->n->c };

			r = push_node(&st, &sp, &cap, k[top->order[top->done]]);
			continue;
		}
		r = emit_node(top->n, t, top->x, f);
		if (--sp) {
			top = &st[sp - 1];
			top->x[top->order[top->done++]] = t;
		}
		*last = t++;
	}
	free(st);
	return r;
}

int cgf_expr_emit_c(const struct cgf_expr *e, const char *func, FILE *f)
{
	size_t last = 0;
	int r;

	if (!e->root)
		return -EINVAL;
	r = cgf_expr_postorder(e->root, count_need, NULL);
	if (r)
		return r;
	fprintf(f,
		"/* Generated by cgfilter-expr: do not edit. */\n"
		"#include \"cgf_parse.bpf.h\"\n"
		"#include \"cgf_expr.bpf.h\"\n\n"
		"/* one temporary per node, operands first (lang/emit_c.c says why); no\n"
		" * debug information, which for 100000 temporaries takes clang minutes */\n"
		"static __always_inline __attribute__((nodebug)) __u64\n"
		"%s(const struct cgf_pkt *p)\n{\n",
		func);
	r = emit_body(e->root, f, &last);
	if (r)
		return r;
	fprintf(f, "\treturn t%zu;\n}\n", last);
	return ferror(f) ? -EIO : 0;
}
