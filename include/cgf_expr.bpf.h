/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The operations of the C that cgfilter-expr writes for port-firewall
 * (lang/emit_c.c, cgf_expr_emit_c): comparisons, choices and division without a
 * branch, with the semantics of lang/expr.h, so that a filter of any size the
 * parser allows compiles and verifies.
 *
 * Why without a branch: BPF has no "set if" instruction, so clang compiles
 * every comparison, !, && and ?: to a jump, and the verifier follows both
 * sides of each.  A value built from n comparisons is then up to 2^n paths
 * for it: 20 comparisons XOR'ed were over its million instructions.  Here a
 * comparison is arithmetic on the top bit, and barrier_var() hides one
 * intermediate value from clang, which would otherwise recognise the pattern
 * and put the jump back.
 *
 * The verifier also forks its state by itself (maybe_fork_scalars(), in
 * recent kernels) on "value in [-1, 0] & constant" or "| constant", LLVM's
 * select idiom.  So the choices multiply by a 0-or-1 bit instead of masking,
 * and cgf_opaque() hides the literal operands of & | || and < from it.
 */
#ifndef CGF_EXPR_BPF_H
#define CGF_EXPR_BPF_H

#include "cgf_parse.bpf.h"	/* struct cgf_pkt, barrier_var() */

/* A field of the packet, read where it is used: clang would otherwise read
 * it once and keep it in a register or a spill slot of its own through the
 * whole filter, and with many fields used many times that overflows the 512
 * bytes of BPF stack. */
#define cgf_field(p, field) (*(volatile const __u64 *)&(p)->f[field])

/* barrier_var() for the generated code's temporaries: a copy clang cannot
 * see through, which keeps it from rebuilding the whole filter as one
 * expression.  Not barrier_var() itself, whose operand is tied: LLVM's
 * two-address pass takes time that grows with the square of the number of
 * tied inline-asm operands in a block (50000 '+ 1': 7 minutes, not 8 s).
 * It costs a register move each. */
#define cgf_keep(var) asm volatile("%0 = %1" : "=r"(var) : "r"(var))

/* Inlined, and without debug information: a big filter uses these tens of
 * thousands of times, and clang takes minutes over their debug information. */
#define CGF_EXPR_OP static __always_inline __attribute__((nodebug))

/* x != 0: 1 or 0.  For any x but 0, x or -x has the top bit set. */
CGF_EXPR_OP __u64 cgf_bool(__u64 x)
{
	__u64 neg = -x;

	barrier_var(neg);
	return (x | neg) >> 63;
}

/* a < b, unsigned: 1 or 0.  The borrow out of a - b (Hacker's Delight
 * 2-12). */
CGF_EXPR_OP __u64 cgf_less(__u64 a, __u64 b)
{
	__u64 diff = a - b;

	barrier_var(diff);
	return ((~a & b) | ((~a | b) & diff)) >> 63;
}

/* k, but not a constant for the verifier: f | ~f is all ones, which it
 * cannot know, since it knows nothing of the fields in the function the
 * filter runs in (port_firewall.bpf.c says why).  '-(ttl < 1) & 5' is
 * "[-1, 0] & constant", and 25 of them were 2^25 paths. */
CGF_EXPR_OP __u64 cgf_opaque(const struct cgf_pkt *p, __u64 k)
{
	__u64 f = cgf_field(p, 0), not_f = ~f;

	barrier_var(not_f);
	return k + (f | not_f) + 1;
}

/* c ? x : y.  barrier_var() keeps clang from making the multiplication the
 * mask it would fork on. */
CGF_EXPR_OP __u64 cgf_select(__u64 c, __u64 x, __u64 y)
{
	__u64 bit = cgf_bool(c);

	barrier_var(bit);
	return y + (x - y) * bit;
}

/* a / b, and 0 when b is 0, as BPF defines it */
CGF_EXPR_OP __u64 cgf_udiv(__u64 a, __u64 b)
{
	__u64 bit = cgf_bool(b);

	barrier_var(bit);
	return a / (b | (bit ^ 1)) * bit;
}

/* a % b, and a when b is 0, as BPF defines it */
CGF_EXPR_OP __u64 cgf_umod(__u64 a, __u64 b)
{
	__u64 zero = cgf_bool(b) ^ 1;

	barrier_var(zero);
	return a % (b | zero) + a * zero;
}

#endif /* CGF_EXPR_BPF_H */
