// SPDX-License-Identifier: GPL-2.0-only
/*
 * 'x in SET' as BPF instructions.
 *
 *  - A literal set of at most CGF_INLINE_ITEMS ranges (or prefixes)
 *    becomes arithmetic without a branch, and one test.
 *  - A larger literal integer set is a bitmap of 65536 bits in a map of
 *    its own: one lookup, one bit test.
 *  - A larger literal address set is, per family, its prefixes merged into
 *    sorted disjoint intervals in one array value, searched without a
 *    branch (3 probes a step, a quarter apart: 9 steps for 100,000
 *    intervals; see search()); it takes 8 bytes a prefix for IPv4, 16 or
 *    32 for IPv6.  From 64 intervals on, an index of up to 65,536 buckets
 *    (4 bytes each) first narrows the search to the few intervals of the
 *    address's bucket, when that is shorter (lit_index()): spread
 *    prefixes then cost the same at 1,000 as at 100,000.
 *  - A named address set is compiled in as a literal one, its addresses
 *    as they are when the filter is built (the engine builds the filters
 *    that use it again when it changes).  A named integer or executable
 *    set goes through its array of maps (cgf_abi.h): a bitmap, or a hash
 *    of identities, swapped whole by set-add.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* Whether s is looked up in a named set of the engine: a socket filter has
 * no engine, and a set declared in its text is literal there. */
static bool named(const struct gen *g, const struct cgf_set *s)
{
	return s->name[0] && !(g->sock && s->declared);
}

/* ---- integers ------------------------------------------------------------- */

/* jump to t if 0 <= r7 < 65536 has its bit set in the bitmap r0 points to */
static void bit_test(struct gen *g, uint32_t t, uint32_t f, uint32_t next)
{
	i_movr(g, BPF_REG_1, BPF_REG_7);
	i_alu(g, BPF_RSH, BPF_REG_1, 6);
	i_alu(g, BPF_LSH, BPF_REG_1, 3);
	i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_1);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_0, 0);
	i_movr(g, BPF_REG_1, BPF_REG_7);
	i_alu(g, BPF_AND, BPF_REG_1, 63);
	i_alur(g, BPF_RSH, BPF_REG_0, BPF_REG_1);
	i_alu(g, BPF_AND, BPF_REG_0, 1);
	gen_branch(g, BPF_JNE, false, 0, t, f, next);
}

/* r0 = lookup(map m, key 0); to f if there is none */
static void lookup0(struct gen *g, uint32_t m, uint32_t f)
{
	cgf_asm_ld_map(g->a, BPF_REG_1, m);
	i_fp(g, BPF_REG_2, FP_ZERO);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, f);
}

/* r0 = the inner map of the named set's array of maps m; to f if none */
static void named_inner(struct gen *g, uint32_t m, uint32_t f)
{
	lookup0(g, m, f);
}

static uint32_t add_lit(struct gen *g, const char *name, const char *note, const void *data,
			uint32_t size, const struct cgf_set *s)
{
	struct cgf_lit *l;
	uint32_t m;
	void *copy;
	size_t i;

	/* the same contents again (a set used twice, named or literal): the
	 * same map */
	for (i = 0; i < g->out->nlits; i++) {
		l = &g->out->lits[i];
		if (!l->dyn && l->data && l->value_size == size && !memcmp(l->data, data, size))
			return l->asm_map;
	}
	l = realloc(g->out->lits, (g->out->nlits + 1) * sizeof(*l));
	if (l)
		g->out->lits = l;
	copy = l ? malloc(size) : NULL;
	if (!copy) {
		gen_fail(g, -ENOMEM, "out of memory");
		return 0;
	}
	memcpy(copy, data, size);
	m = cgf_asm_add_map(g->a, -1, name, note);
	l = &g->out->lits[g->out->nlits++];
	memset(l, 0, sizeof(*l));
	l->asm_map = m;
	l->value_size = size;
	l->data = copy;
	snprintf(l->what, sizeof(l->what), "the literal set at line %d, column %d", s->line, s->col);
	return m;
}

/*
 * The few ranges of a small literal set, without a branch (gen.h says why):
 * r8 = the AND of one bit per range, 1 if the value in r7 is not in it, so
 * 0 if it is in one.  A range lo..hi holds x if x - lo <= hi - lo, unsigned.
 */
static void int_inline(struct gen *g, const struct cgf_set *s, uint32_t t, uint32_t f,
		       uint32_t next)
{
	size_t i;

	if (s->n == 1 && s->ranges[0].lo == s->ranges[0].hi) {
		gen_branch(g, BPF_JEQ, false, (int32_t)s->ranges[0].lo, t, f, next);
		return;
	}
	i_movr(g, BPF_REG_7, BPF_REG_0);
	i_mov(g, BPF_REG_8, 1);
	for (i = 0; i < s->n; i++) {
		const struct cgf_range *r = &s->ranges[i];

		i_movr(g, BPF_REG_1, BPF_REG_7);
		if (r->lo == r->hi) {
			i_alu(g, BPF_XOR, BPF_REG_1, (int32_t)r->lo);
			i_bool(g, BPF_REG_1);
		} else {
			i_alu(g, BPF_SUB, BPF_REG_1, (int32_t)r->lo);
			i_mov(g, BPF_REG_2, r->hi - r->lo);
			i_ltu(g, BPF_REG_1, BPF_REG_2, BPF_REG_1);
		}
		i_alur(g, BPF_AND, BPF_REG_8, BPF_REG_1);
	}
	i_movr(g, BPF_REG_0, BPF_REG_8);
	gen_branch(g, BPF_JEQ, false, 0, t, f, next);
}

static void int_in(struct gen *g, const struct cgf_set *s, uint32_t t, uint32_t f, uint32_t next)
{
	size_t i;

	if (!named(g, s) && s->n <= CGF_INLINE_ITEMS) {
		int_inline(g, s, t, f, next);
		return;
	}
	i_movr(g, BPF_REG_7, BPF_REG_0);
	cgf_asm_jmp_imm(g->a, BPF_JGT, BPF_REG_7, 65535, f);
	if (named(g, s)) {
		int fd = g->env->named_set ? g->env->named_set(s->name, CGF_T_INT, g->env->ctx) : -1;
		char name[80];

		snprintf(name, sizeof(name), "@%s", s->name);
		named_inner(g, cgf_asm_add_map(g->a, fd, name, "integer set"), f);
		i_movr(g, BPF_REG_1, BPF_REG_0);
		i_fp(g, BPF_REG_2, FP_ZERO);
		i_call(g, BPF_FUNC_map_lookup_elem);
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, f);
	} else {
		uint64_t *bits = calloc(CGF_BITMAP_BYTES / 8, sizeof(*bits));
		char note[64];
		uint32_t m;

		if (!bits) {
			gen_fail(g, -ENOMEM, "out of memory");
			return;
		}
		for (i = 0; i < s->n; i++)
			for (uint64_t v = s->ranges[i].lo; v <= s->ranges[i].hi && v < 65536; v++)
				bits[v / 64] |= 1ULL << (v % 64);
		snprintf(note, sizeof(note), "integer bitmap, %zu ranges", s->n);
		m = add_lit(g, "lit", note, bits, CGF_BITMAP_BYTES, s);
		free(bits);
		lookup0(g, m, f);
	}
	bit_test(g, t, f, next);
}

/* ---- addresses ------------------------------------------------------------- */

struct ival6 {
	uint64_t lo_h, lo_l, hi_h, hi_l;
};

static int cmp4(const void *x, const void *y)
{
	const struct cgf_ival4 *a = x, *b = y;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int cmp6(const void *x, const void *y)
{
	const struct ival6 *a = x, *b = y;

	if (a->lo_h != b->lo_h)
		return a->lo_h < b->lo_h ? -1 : 1;
	return a->lo_l < b->lo_l ? -1 : a->lo_l > b->lo_l;
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* The IPv6 prefixes of s as sorted, merged intervals; *wide: some prefix is
 * longer than 64 bits, so the low half matters. */
static struct ival6 *intervals6(const struct cgf_set *s, size_t *n, bool *wide)
{
	struct ival6 *v = calloc(s->n ? s->n : 1, sizeof(*v));
	size_t i, k = 0;

	*wide = false;
	if (!v)
		return NULL;
	for (i = 0; i < s->n; i++) {
		const struct cgf_cidr *c = &s->cidrs[i];
		uint64_t h = be64_at(c->addr), l = be64_at(c->addr + 8);
		uint64_t mh = c->plen >= 64 ? ~0ULL : c->plen ? ~0ULL << (64 - c->plen) : 0;
		uint64_t ml = c->plen >= 128 ? ~0ULL : c->plen > 64 ? ~0ULL << (128 - c->plen) : 0;

		if (c->family != 6)
			continue;
		*wide |= c->plen > 64;
		v[k].lo_h = h & mh;
		v[k].lo_l = l & ml;
		v[k].hi_h = h | ~mh;
		v[k].hi_l = l | ~ml;
		k++;
	}
	qsort(v, k, sizeof(*v), cmp6);
	*n = 0;
	for (i = 0; i < k; i++) {
		struct ival6 *last = *n ? &v[*n - 1] : NULL;

		/* overlapping or adjacent: one interval */
		if (last && (v[i].lo_h < last->hi_h ||
			     (v[i].lo_h == last->hi_h && v[i].lo_l <= last->hi_l) ||
			     (last->hi_l == ~0ULL && last->hi_h + 1 == v[i].lo_h && v[i].lo_l == 0) ||
			     (v[i].lo_h == last->hi_h && last->hi_l + 1 == v[i].lo_l))) {
			if (v[i].hi_h > last->hi_h ||
			    (v[i].hi_h == last->hi_h && v[i].hi_l > last->hi_l)) {
				last->hi_h = v[i].hi_h;
				last->hi_l = v[i].hi_l;
			}
			continue;
		}
		v[(*n)++] = v[i];
	}
	return v;
}

struct cgf_ival4 *cgf_intervals4(const struct cgf_set *s, size_t *n)
{
	struct cgf_ival4 *v = calloc(s->n ? s->n : 1, sizeof(*v));
	size_t i, k = 0;

	if (!v)
		return NULL;
	for (i = 0; i < s->n; i++) {
		const struct cgf_cidr *c = &s->cidrs[i];
		uint32_t a, m;

		if (c->family != 4)
			continue;
		memcpy(&a, c->addr, 4);
		a = be32toh(a);
		m = c->plen ? ~0u << (32 - c->plen) : 0;
		v[k].lo = a & m;
		v[k].hi = a | ~m;
		k++;
	}
	qsort(v, k, sizeof(*v), cmp4);
	*n = 0;
	for (i = 0; i < k; i++) {
		struct cgf_ival4 *last = *n ? &v[*n - 1] : NULL;

		if (last && (v[i].lo <= last->hi || (last->hi != ~0u && v[i].lo == last->hi + 1))) {
			if (v[i].hi > last->hi)
				last->hi = v[i].hi;
			continue;
		}
		v[(*n)++] = v[i];
	}
	return v;
}

/* r = (a < b), 64-bit unsigned, without a branch; r, a, b not r3-r5 */
void i_ltu(struct gen *g, uint8_t r, uint8_t a, uint8_t b)
{
	/* the borrow of a - b: ((~a & b) | (~(a ^ b) & (a - b))) >> 63 */
	i_movr(g, BPF_REG_3, a);
	i_alu(g, BPF_XOR, BPF_REG_3, -1);
	i_alur(g, BPF_AND, BPF_REG_3, b);
	i_movr(g, BPF_REG_4, a);
	i_alur(g, BPF_XOR, BPF_REG_4, b);
	i_alu(g, BPF_XOR, BPF_REG_4, -1);
	i_movr(g, BPF_REG_5, a);
	i_alur(g, BPF_SUB, BPF_REG_5, b);
	i_alur(g, BPF_AND, BPF_REG_4, BPF_REG_5);
	i_alur(g, BPF_OR, BPF_REG_3, BPF_REG_4);
	i_alu(g, BPF_RSH, BPF_REG_3, 63);
	i_movr(g, r, BPF_REG_3);
}

/* r9 += c * step: c is 0 or 1 in r1 */
static void advance(struct gen *g, uint64_t step)
{
	if (!(step & (step - 1))) {
		int sh = __builtin_ctzll(step);

		if (sh)
			i_alu(g, BPF_LSH, BPF_REG_1, sh);
	} else {
		i_alu(g, BPF_MUL, BPF_REG_1, (int32_t)step);
	}
	i_alur(g, BPF_ADD, BPF_REG_9, BPF_REG_1);
}

/* r2 = r8 + r9 + off: the interval off bytes after base */
static void interval_ptr(struct gen *g, uint64_t off)
{
	i_movr(g, BPF_REG_2, BPF_REG_8);
	i_alur(g, BPF_ADD, BPF_REG_2, BPF_REG_9);
	if (off)
		i_alu(g, BPF_ADD, BPF_REG_2, (int32_t)off);
}

/* r2 = r8 + r9, and the offset off for a load from it: folded into the
 * load while it fits its 16 bits, else added */
static int16_t probe_ptr(struct gen *g, uint64_t off, int stride)
{
	if (off + stride > 32767) {
		interval_ptr(g, off);
		return 0;
	}
	interval_ptr(g, 0);
	return (int16_t)off;
}

/*
 * Branch-free search of n sorted intervals of stride bytes (the map value
 * r8 points to) for the last one that starts at or below the address:
 * r9 = its offset, r2 a pointer to it.  lo_le_a(g, off) must leave 1 in
 * r1 if the interval off bytes after r2 starts at or below the address,
 * else 0, and keep r2, and r3 when wide is false.
 *
 * The answer is in the window [r9, r9 + n) (in intervals).  While n >= 4
 * a step probes 3 intervals a quarter apart, independent loads the CPU
 * makes at once, and moves r9 by a quarter for each that starts at or
 * below the address; the window keeps the size of the last quarter, the
 * largest (intervals past the quarter it is really in start above the
 * address: sorted).  So a search waits on about log4(n) loads in a row,
 * not log2(n).  Below 4, or with wide intervals (whose test needs r3),
 * a step halves the window.
 */
static void search_from(struct gen *g, size_t n, int stride, bool wide,
			void (*lo_le_a)(struct gen *g, int16_t off))
{
	while (n > 1) {
		size_t q = n / 4, half = n / 2;
		bool near;
		int k;

		if (n < 4 || wide) {
			lo_le_a(g, probe_ptr(g, half * stride, stride));
			advance(g, half * stride);
			n -= half;
			continue;
		}
		near = 3 * q * stride + stride <= 32767;
		if (near) /* one pointer, the offsets in the loads (which keep r2) */
			interval_ptr(g, 0);
		for (k = 1; k <= 3; k++) {
			lo_le_a(g, near ? (int16_t)(k * q * stride) : probe_ptr(g, k * q * stride, stride));
			if (k == 1)
				i_movr(g, BPF_REG_3, BPF_REG_1);
			else
				i_alur(g, BPF_ADD, BPF_REG_3, BPF_REG_1);
		}
		i_movr(g, BPF_REG_1, BPF_REG_3);
		advance(g, q * stride);
		n -= 3 * q;
	}
	interval_ptr(g, 0);
}

static void search(struct gen *g, size_t n, int stride, bool wide,
		   void (*lo_le_a)(struct gen *g, int16_t off))
{
	i_mov(g, BPF_REG_9, 0);
	search_from(g, n, stride, wide, lo_le_a);
}

/* The loads in a row search_from() waits on for a window of n intervals. */
static int search_steps(size_t n, bool wide)
{
	int steps = 0;

	for (; n > 1; steps++)
		n -= n < 4 || wide ? n / 2 : 3 * (n / 4);
	return steps;
}

/*
 * An index for a large set, so that its search does not grow with it: the
 * span of the intervals' keys (an IPv4 address, or an IPv6 address's top 64
 * bits), from the first one's start k0 to the last one's end, cut into nb
 * buckets of 2^shift keys (nb at most 65,536 and at most the intervals).
 * start[b] is the first interval that ends in bucket b or after it: the one
 * that holds an address of bucket b, if one does, is among start[b] ..
 * start[b + 1] (those after start[b + 1] start above the bucket), so the
 * search runs in a window of w intervals from start[b], w the largest such
 * window.  Where the window passes the last interval it meets copies of it.
 */
struct lit_index {
	uint64_t k0, span;
	int shift;
	uint32_t nb, *start;
	size_t w;
};

#define CGF_LIT_VALUE_MAX (4u << 20)	/* an array map's largest value (KMALLOC_MAX_SIZE) */

/* Build the index of n intervals (keys lo[i] .. hi[i], sorted, apart) when
 * it makes the search shorter and fits in a map value with them; true if
 * it does (x->start then to be freed). */
static bool lit_index(const uint64_t *lo, const uint64_t *hi, size_t n, int stride, bool wide,
		      struct lit_index *x)
{
	uint32_t most = 2, b;
	size_t i = 0;

	memset(x, 0, sizeof(*x));
	if (n < 64)
		return false;
	while (most < 65536 && most * 2 <= n)
		most *= 2;
	x->k0 = lo[0];
	x->span = hi[n - 1] - lo[0];
	while (x->shift < 63 && (x->span >> x->shift) >= most)
		x->shift++;
	x->nb = (uint32_t)(x->span >> x->shift) + 1;
	x->start = calloc(x->nb, sizeof(*x->start));
	if (!x->start)
		return false;
	for (b = 0; b < x->nb; b++) {
		uint64_t from = x->k0 + ((uint64_t)b << x->shift);

		while (hi[i] < from)	/* hi[n - 1] >= from: i stays below n */
			i++;
		x->start[b] = (uint32_t)i;
	}
	for (b = 0; b < x->nb; b++) {
		size_t end = b + 1 < x->nb && x->start[b + 1] < n - 1 ? x->start[b + 1] : n - 1;

		if (end - x->start[b] + 1 > x->w)
			x->w = end - x->start[b] + 1;
	}
	if (search_steps(x->w, wide) + 2 > search_steps(n, wide) ||
	    (n + x->w - 1) * (size_t)stride + 4 * (size_t)x->nb > CGF_LIT_VALUE_MAX) {
		free(x->start);
		x->start = NULL;
		return false;
	}
	return true;
}

/* The map value of n intervals of stride bytes with the index x, if it
 * has one: the intervals, w - 1 copies of the last, the buckets' starts. */
static void *lit_value(const void *v, size_t n, int stride, const struct lit_index *x,
		       uint32_t *size)
{
	size_t pad = x->start ? x->w - 1 : 0, i;
	uint8_t *out;

	*size = (uint32_t)((n + pad) * stride + (x->start ? 4 * (size_t)x->nb : 0));
	out = malloc(*size);
	if (!out)
		return NULL;
	memcpy(out, v, n * stride);
	for (i = 0; i < pad; i++)
		memcpy(out + (n + i) * stride, (const uint8_t *)v + (n - 1) * stride, stride);
	if (x->start)
		memcpy(out + (n + pad) * stride, x->start, 4 * (size_t)x->nb);
	return out;
}

/*
 * The search through the index (r7 the address's key, r8 the value): to f
 * if the key is outside the intervals' span, else r9 = the start of its
 * bucket's window, then the window searched as search() does.
 */
static void search_index(struct gen *g, const struct lit_index *x, size_t n, int stride,
			 bool wide, void (*lo_le_a)(struct gen *g, int16_t off), uint32_t f)
{
	uint64_t table = (n + x->w - 1) * (uint64_t)stride;

	cgf_asm_note(g->a, "the address's bucket (%u of 2^%d %s from the first interval's start): its first interval",
		     x->nb, x->shift, stride == 8 ? "addresses" : "/64 prefixes");
	i_mov(g, BPF_REG_1, x->k0);
	i_movr(g, BPF_REG_2, BPF_REG_7);
	i_alur(g, BPF_SUB, BPF_REG_2, BPF_REG_1);
	i_mov(g, BPF_REG_1, x->span);
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_2, BPF_REG_1, f);
	if (x->shift)
		i_alu(g, BPF_RSH, BPF_REG_2, x->shift);
	i_alu(g, BPF_LSH, BPF_REG_2, 2);
	i_alur(g, BPF_ADD, BPF_REG_2, BPF_REG_8);
	if (table + 4 * (uint64_t)x->nb > 32767) {
		i_alu(g, BPF_ADD, BPF_REG_2, (int32_t)table);
		table = 0;
	}
	i_ldx(g, BPF_W, BPF_REG_9, BPF_REG_2, (int16_t)table);
	cgf_asm_jmp_imm(g->a, BPF_JGT, BPF_REG_9, (int32_t)(n - 1), f);
	i_alu(g, BPF_LSH, BPF_REG_9, __builtin_ctz((unsigned)stride));
	cgf_asm_note(g->a, "the last of its window of %zu intervals that starts at or below the address",
		     x->w);
	search_from(g, x->w, stride, wide, lo_le_a);
}

/* IPv4: the address (host order, below 2^32) in r7; lo <= a is
 * lo - a - 1 < 0, computed in 64 bits where it cannot wrap */
static void lo_le_a4(struct gen *g, int16_t off)
{
	i_ldx(g, BPF_W, BPF_REG_1, BPF_REG_2, off);
	i_alur(g, BPF_SUB, BPF_REG_1, BPF_REG_7);
	i_alu(g, BPF_SUB, BPF_REG_1, 1);
	i_alu(g, BPF_RSH, BPF_REG_1, 63);
}

/*
 * IPv6 by its top 64 bits, in r7, with r4 = a >> 1 and r5 = ~a & 1 (set by
 * lit6).  Unsigned 64-bit a < lo without a branch: with a = 2A + a0 and
 * lo = 2L + l0, a < lo <=> A - L - (~a0 & l0) < 0, which cannot wrap.
 */
static void lo_le_a6(struct gen *g, int16_t off)
{
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_2, off);
	i_movr(g, BPF_REG_0, BPF_REG_1);
	i_alur(g, BPF_AND, BPF_REG_0, BPF_REG_5);  /* ~a0 & l0 */
	i_alu(g, BPF_RSH, BPF_REG_1, 1);
	i_neg(g, BPF_REG_1);
	i_alur(g, BPF_ADD, BPF_REG_1, BPF_REG_4);  /* A - L */
	i_alur(g, BPF_SUB, BPF_REG_1, BPF_REG_0);
	i_alu(g, BPF_RSH, BPF_REG_1, 63);           /* a < lo */
	i_alu(g, BPF_XOR, BPF_REG_1, 1);
}

/* IPv6, 128 bits: top half in r7, low half at FP_KEY */
static void lo_le_a6w(struct gen *g, int16_t off)
{
	/* a < lo  <=>  a_h < lo_h  |  (a_h == lo_h & a_l < lo_l) */
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, (int16_t)(off + 8)); /* lo_l */
	i_ldx(g, BPF_DW, BPF_REG_2, BPF_REG_2, off);                /* lo_h */
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + 8, BPF_REG_0);
	i_ltu(g, BPF_REG_1, BPF_REG_7, BPF_REG_2);      /* a_h < lo_h */
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + 16, BPF_REG_1);
	i_alur(g, BPF_XOR, BPF_REG_2, BPF_REG_7);
	i_not(g, BPF_REG_2);                            /* a_h == lo_h */
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + 24, BPF_REG_2);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_KEY);      /* a_l */
	i_ldx(g, BPF_DW, BPF_REG_2, BPF_REG_10, FP_KEY + 8);  /* lo_l */
	i_ltu(g, BPF_REG_1, BPF_REG_0, BPF_REG_2);      /* a_l < lo_l */
	i_ldx(g, BPF_DW, BPF_REG_2, BPF_REG_10, FP_KEY + 24);
	i_alur(g, BPF_AND, BPF_REG_1, BPF_REG_2);
	i_ldx(g, BPF_DW, BPF_REG_2, BPF_REG_10, FP_KEY + 16);
	i_alur(g, BPF_OR, BPF_REG_1, BPF_REG_2);
	i_alu(g, BPF_XOR, BPF_REG_1, 1);
}

/* The map of n intervals of stride bytes at v, their keys' spans lo[i] ..
 * hi[i], with an index if one shortens the search (x). */
static uint32_t lit_map(struct gen *g, const struct cgf_set *s, const char *note, const void *v,
			size_t n, int stride, bool wide, const uint64_t *lo, const uint64_t *hi,
			struct lit_index *x)
{
	char full[128];
	uint32_t size, m;
	void *value;

	if (!lit_index(lo, hi, n, stride, wide, x))
		x->start = NULL;
	value = lit_value(v, n, stride, x, &size);
	if (!value) {
		free(x->start);
		x->start = NULL;
		gen_fail(g, -ENOMEM, "out of memory");
		return 0;
	}
	if (x->start)
		snprintf(full, sizeof(full), "%s, an index of %u buckets", note, x->nb);
	else
		snprintf(full, sizeof(full), "%s", note);
	m = add_lit(g, "lit", full, value, size, s);
	free(value);
	return m;
}

/* After lit_map(): r9 and r2 at the last interval that starts at or below
 * the address (or to f, through the index) */
static void lit_search(struct gen *g, struct lit_index *x, size_t n, int stride, bool wide,
		       void (*lo_le_a)(struct gen *g, int16_t off), uint32_t f)
{
	if (x->start) {
		search_index(g, x, n, stride, wide, lo_le_a, f);
		free(x->start);
		x->start = NULL;
		return;
	}
	cgf_asm_note(g->a, "the last of %zu intervals that starts at or below the address", n);
	search(g, n, stride, wide, lo_le_a);
}

/* A literal set's IPv4 prefixes, n of them, merged into intervals in a map
 * and searched; the family is known; jump to t or f. */
static void lit4(struct gen *g, const struct cgf_set *s, int addr, size_t n, uint32_t t,
		 uint32_t f)
{
	struct cgf_ival4 *v = cgf_intervals4(s, &n);
	uint64_t *lo = calloc(n ? n : 1, sizeof(*lo)), *hi = calloc(n ? n : 1, sizeof(*hi));
	struct lit_index x;
	char note[64];
	uint32_t m;
	size_t i;

	if (!v || !lo || !hi) {
		free(v);
		free(lo);
		free(hi);
		gen_fail(g, -ENOMEM, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		lo[i] = v[i].lo;
		hi[i] = v[i].hi;
	}
	snprintf(note, sizeof(note), "IPv4 set: %zu intervals", n);
	m = lit_map(g, s, note, v, n, 8, false, lo, hi, &x);
	free(v);
	free(lo);
	free(hi);
	i_ldx(g, BPF_W, BPF_REG_7, BPF_REG_10, (int16_t)addr);
	i_be(g, BPF_REG_7, 32);
	lookup0(g, m, f);
	i_movr(g, BPF_REG_8, BPF_REG_0);
	lit_search(g, &x, n, 8, false, lo_le_a4, f);
	i_ldx(g, BPF_W, BPF_REG_0, BPF_REG_2, 0);
	cgf_asm_jmp_reg(g->a, BPF_JLT, BPF_REG_7, BPF_REG_0, f);
	i_ldx(g, BPF_W, BPF_REG_0, BPF_REG_2, 4);
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_7, BPF_REG_0, f);
	cgf_asm_ja(g->a, t);
}

/* The same for IPv6: 64-bit intervals when every prefix is /64 or shorter
 * (16 bytes each), else 128-bit ones (32 bytes). */
static void lit6(struct gen *g, const struct cgf_set *s, int addr, size_t n, uint32_t t,
		 uint32_t f)
{
	bool wide;
	struct ival6 *v = intervals6(s, &n, &wide);
	uint64_t *lo = calloc(n ? n : 1, sizeof(*lo)), *hi = calloc(n ? n : 1, sizeof(*hi));
	struct lit_index x;
	char note[64];
	uint32_t m;
	size_t i;

	if (!v || !lo || !hi) {
		free(v);
		free(lo);
		free(hi);
		gen_fail(g, -ENOMEM, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		lo[i] = v[i].lo_h;
		hi[i] = v[i].hi_h;
	}
	if (!wide) /* 16 bytes an interval: the top halves */
		for (i = 0; i < n; i++) {
			uint64_t *p = (uint64_t *)&v[0] + 2 * i;

			p[0] = lo[i];
			p[1] = hi[i];
		}
	snprintf(note, sizeof(note), "IPv6 set: %zu intervals of %d bits", n, wide ? 128 : 64);
	m = lit_map(g, s, note, v, n, wide ? 32 : 16, wide, lo, hi, &x);
	free(v);
	free(lo);
	free(hi);
	i_ldx(g, BPF_DW, BPF_REG_7, BPF_REG_10, (int16_t)addr);
	i_be(g, BPF_REG_7, 64);
	if (wide) {
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(addr + 8));
		i_be(g, BPF_REG_0, 64);
		i_stx(g, BPF_DW, BPF_REG_10, FP_KEY, BPF_REG_0);
	}
	lookup0(g, m, f);
	i_movr(g, BPF_REG_8, BPF_REG_0);
	if (!wide) {
		i_movr(g, BPF_REG_4, BPF_REG_7);
		i_alu(g, BPF_RSH, BPF_REG_4, 1);
		i_movr(g, BPF_REG_5, BPF_REG_7);
		i_alu(g, BPF_XOR, BPF_REG_5, -1);
		i_alu(g, BPF_AND, BPF_REG_5, 1);
	}
	lit_search(g, &x, n, wide ? 32 : 16, wide, wide ? lo_le_a6w : lo_le_a6, f);
	if (!wide) {
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 0);
		cgf_asm_jmp_reg(g->a, BPF_JLT, BPF_REG_7, BPF_REG_0, f);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 8);
		cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_7, BPF_REG_0, f);
		cgf_asm_ja(g->a, t);
	} else {
		uint32_t lo_ok = cgf_asm_label(g->a), hi_ok = cgf_asm_label(g->a);
		uint32_t lo_eq = cgf_asm_label(g->a), hi_eq = cgf_asm_label(g->a);

		/* lo <= a: a_h > lo_h, or equal and a_l >= lo_l */
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 0);
		cgf_asm_jmp_reg(g->a, BPF_JEQ, BPF_REG_7, BPF_REG_0, lo_eq);
		cgf_asm_jmp_reg(g->a, BPF_JLT, BPF_REG_7, BPF_REG_0, f);
		cgf_asm_ja(g->a, lo_ok);
		cgf_asm_place(g->a, lo_eq);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 8);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_KEY);
		cgf_asm_jmp_reg(g->a, BPF_JLT, BPF_REG_1, BPF_REG_0, f);
		cgf_asm_place(g->a, lo_ok);
		/* a <= hi */
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 16);
		cgf_asm_jmp_reg(g->a, BPF_JEQ, BPF_REG_7, BPF_REG_0, hi_eq);
		cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_7, BPF_REG_0, f);
		cgf_asm_ja(g->a, hi_ok);
		cgf_asm_place(g->a, hi_eq);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_2, 24);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_KEY);
		cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_1, BPF_REG_0, f);
		cgf_asm_place(g->a, hi_ok);
		cgf_asm_ja(g->a, t);
	}
}

/* The prefixes of one family of a large literal set (a small one is
 * addr_inline's); the family is known; jump to t or f. */
static void lit_family(struct gen *g, const struct cgf_set *s, int which, int fam,
		       uint32_t t, uint32_t f)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->cidrs[i].family == fam;
	if (n == 0)
		cgf_asm_ja(g->a, f);
	else if (fam == 4)
		lit4(g, s, fp_addr(g, which), n, t, f);
	else
		lit6(g, s, fp_addr(g, which), n, t, f);
}

/* mask and prefix of word w (0 or 1: 64 bits each; IPv4: w 0, 32 bits) of a
 * prefix, as loaded from the packet (network order bytes) */
static void cidr_word(const struct cgf_cidr *c, int w, uint64_t *mask, uint64_t *net)
{
	uint8_t mb[8] = { 0 }, nb[8] = { 0 };
	int bit, bytes = c->family == 4 ? 4 : 8;

	for (bit = 0; bit < bytes * 8; bit++)
		if (w * 64 + bit < c->plen)
			mb[bit / 8] |= 0x80 >> (bit % 8);
	for (bit = 0; bit < bytes; bit++)
		nb[bit] = c->addr[w * 8 + bit] & mb[bit];
	memcpy(mask, mb, 8);
	memcpy(net, nb, 8);
}

/*
 * The few prefixes of a small literal set, without a branch (gen.h says
 * why): for each, r0 = (family ^ its family) | ((address & mask) ^ prefix)
 * per word, 0 if the address is in it; r8 = the AND of (r0 != 0), 0 if the
 * address is in one.
 */
static void addr_inline(struct gen *g, const struct cgf_set *s, int which, uint32_t t,
			uint32_t f, uint32_t next)
{
	int addr = fp_addr(g, which);
	size_t i;

	if (s->n > 1)
		i_mov(g, BPF_REG_8, 1);
	for (i = 0; i < s->n; i++) {
		const struct cgf_cidr *c = &s->cidrs[i];
		int w;

		gen_family(g, BPF_REG_0);
		i_alu(g, BPF_XOR, BPF_REG_0, c->family);
		for (w = 0; w < (c->family == 4 ? 1 : 2); w++) {
			uint64_t mask, net;

			cidr_word(c, w, &mask, &net);
			if (!mask)
				continue;
			i_ldx(g, c->family == 4 ? BPF_W : BPF_DW, BPF_REG_1, BPF_REG_10,
			      (int16_t)(addr + 8 * w));
			if (~mask && (c->family == 6 || (uint32_t)~mask)) {
				i_mov(g, BPF_REG_2, mask);
				i_alur(g, BPF_AND, BPF_REG_1, BPF_REG_2);
			}
			if ((int64_t)net == (int32_t)net) {
				i_alu(g, BPF_XOR, BPF_REG_1, (int32_t)net);
			} else {
				i_mov(g, BPF_REG_2, net);
				i_alur(g, BPF_XOR, BPF_REG_1, BPF_REG_2);
			}
			i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_1);
		}
		if (s->n > 1) {
			i_bool(g, BPF_REG_0);
			i_alur(g, BPF_AND, BPF_REG_8, BPF_REG_0);
		}
	}
	if (s->n > 1)
		i_movr(g, BPF_REG_0, BPF_REG_8);
	gen_branch(g, BPF_JEQ, false, 0, t, f, next);
}

static void addr_in(struct gen *g, const struct cgf_set *s, int which, uint32_t t, uint32_t f,
		    uint32_t next)
{
	uint32_t v4 = cgf_asm_label(g->a), v6 = cgf_asm_label(g->a);
	struct cgf_set now;

	if (named(g, s)) {
		/* its addresses as they are, compiled in as a literal set's: a
		 * set-add builds the filters that use it again */
		const struct cgf_set *c = g->env->named_addrs ?
						  g->env->named_addrs(s->name, g->env->ctx) : NULL;

		if (!c && g->env->named_addrs) {
			gen_fail(g, -ENOENT, "unknown set @%s", s->name);
			return;
		}
		if (!c && s->declared) /* (only printing: what it declares) */
			c = s;
		if (!c) {
			cgf_asm_note(g->a, "@%s: its addresses are compiled in when the filter is loaded (none here)",
				     s->name);
			if (f != next)
				cgf_asm_ja(g->a, f);
			return;
		}
		now = *c;
		now.name[0] = 0;
		now.line = s->line;
		now.col = s->col;
		cgf_asm_note(g->a, "@%s: its %zu prefixes as they are now", s->name, now.n);
		s = &now;
	}
	if (s->n == 0) { /* (an empty set holds no address) */
		if (f != next)
			cgf_asm_ja(g->a, f);
		return;
	}
	if (s->n <= CGF_INLINE_ITEMS) {
		addr_inline(g, s, which, t, f, next);
		return;
	}
	gen_family(g, BPF_REG_0);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 4, v4);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 6, v6);
	cgf_asm_ja(g->a, f); /* not IP: no address is in any set */
	cgf_asm_place(g->a, v4);
	lit_family(g, s, which, 4, t, f);
	cgf_asm_place(g->a, v6);
	lit_family(g, s, which, 6, t, f);
}

/* ---- dynamic sets ------------------------------------------------------------ */

/* The map of dynamic set s, made on first use (gen_dyn_maps() makes them
 * all first, in the order declared) */
static uint32_t dyn_map(struct gen *g, const struct cgf_set *s)
{
	struct cgf_lit *l;
	size_t i, ndyn = 0;
	char name[80];
	uint32_t m;

	for (i = 0; i < g->out->nlits; i++) {
		if (g->out->lits[i].dyn == s)
			return g->out->lits[i].asm_map;
		ndyn += g->out->lits[i].dyn != NULL;
	}
	l = realloc(g->out->lits, (g->out->nlits + 1) * sizeof(*l));
	if (!l) {
		gen_fail(g, -ENOMEM, "out of memory");
		return 0;
	}
	g->out->lits = l;
	snprintf(name, sizeof(name), "@%s", s->name);
	m = cgf_asm_add_map(g->a, -1, name, "dynamic set");
	l = &g->out->lits[g->out->nlits++];
	memset(l, 0, sizeof(*l));
	l->asm_map = m;
	l->dyn = s;
	/* LRU: a full set makes room by pushing out what was used least
	 * recently (expired entries, as a rule), never refusing new ones */
	l->map_type = BPF_MAP_TYPE_LRU_HASH;
	l->key_size = s->type == CGF_T_ADDR ? DYN_ADDR_KEY : 8;
	l->value_size = 8;
	l->max_entries = CGF_DYN_ENTRIES;
	l->map_flags = 0;
	snprintf(l->map_name, sizeof(l->map_name), "cgf_dyn%zu", ndyn);
	snprintf(l->what, sizeof(l->what), "the dynamic set @%.40s", s->name);
	return m;
}

void gen_dyn_maps(struct gen *g, const struct cgf_expr *e)
{
	const struct cgf_set *s;

	for (s = e->sets; s; s = s->next)
		if (s->timeout)
			dyn_map(g, s);
}

/* The key at FP_KEY: the integer in r0, or the family (u64) and the
 * address which; to none when the packet has no address. */
static void dyn_key(struct gen *g, const struct cgf_set *s, int which, uint32_t none)
{
	int addr = fp_addr(g, which);

	if (s->type == CGF_T_INT) {
		i_stx(g, BPF_DW, BPF_REG_10, FP_KEY, BPF_REG_0);
		return;
	}
	gen_family(g, BPF_REG_0);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, none);
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY, BPF_REG_0);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)addr);
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + 8, BPF_REG_0);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(addr + 8));
	i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + 16, BPF_REG_0);
}

/* add(@s, x) or del(@s, x) for the SETOP node n, the integer x in r0: r0 = 1 */
void gen_setop(struct gen *g, const struct cgf_node *n)
{
	const struct cgf_set *s = n->set;
	uint32_t done = cgf_asm_label(g->a), m = dyn_map(g, s);

	cgf_asm_note(g->a, "%s(@%s, ...)", n->val ? "add" : "del", s->name);
	dyn_key(g, s, n->a->kind == CGF_N_ADDR ? n->a->field : 0, done);
	if (n->val) {
		/* the entry expires timeout seconds from now */
		i_call(g, BPF_FUNC_ktime_get_ns);
		i_mov(g, BPF_REG_1, (uint64_t)s->timeout * 1000000000ULL);
		i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_1);
		i_stx(g, BPF_DW, BPF_REG_10, FP_KEY + DYN_ADDR_KEY, BPF_REG_0);
		cgf_asm_ld_map(g->a, BPF_REG_1, m);
		i_fp(g, BPF_REG_2, FP_KEY);
		i_fp(g, BPF_REG_3, FP_KEY + DYN_ADDR_KEY);
		i_mov(g, BPF_REG_4, BPF_ANY);
		i_call(g, BPF_FUNC_map_update_elem);
	} else {
		cgf_asm_ld_map(g->a, BPF_REG_1, m);
		i_fp(g, BPF_REG_2, FP_KEY);
		i_call(g, BPF_FUNC_map_delete_elem);
	}
	cgf_asm_place(g->a, done);
	i_mov(g, BPF_REG_0, 1);
}

/* x in @s, a dynamic set: an entry that has not expired */
static void dyn_in(struct gen *g, const struct cgf_set *s, int which, uint32_t t, uint32_t f,
		   uint32_t next)
{
	uint32_t m = dyn_map(g, s);

	dyn_key(g, s, which, f);
	cgf_asm_ld_map(g->a, BPF_REG_1, m);
	i_fp(g, BPF_REG_2, FP_KEY);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, f);
	i_ldx(g, BPF_DW, BPF_REG_7, BPF_REG_0, 0);
	i_call(g, BPF_FUNC_ktime_get_ns);
	i_movr(g, BPF_REG_1, BPF_REG_7);
	/* now < expiry */
	gen_branch(g, BPF_JLT, true, 0, t, f, next);
}

/* ---- executables ------------------------------------------------------------ */

void gen_exe_fetch(struct gen *g)
{
	uint32_t done = cgf_asm_label(g->a), have = cgf_asm_label(g->a);

	cgf_asm_note(g->a, "exe: the executable that made the packet's socket (0, 0: none known)");
	g->m_exe = cgf_asm_add_map(g->a, g->env->exe_fd, g->env->exe_test ? "exe_test" : "exe_ids",
				   g->env->exe_test ? "the tests' executable" : "socket storage");
	i_st(g, BPF_DW, BPF_REG_10, FP_EXE, 0);
	i_st(g, BPF_DW, BPF_REG_10, FP_EXE + 8, 0);
	if (g->env->exe_test) {
		lookup0(g, g->m_exe, done);
	} else {
		/* a full socket, or the listener of a request socket (a SYN-ACK) */
		i_ldx(g, BPF_DW, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, sk));
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_1, 0, done);
		i_call(g, BPF_FUNC_sk_fullsock);
		cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, have);
		i_ldx(g, BPF_DW, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, sk));
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_1, 0, done);
		i_call(g, BPF_FUNC_get_listener_sock);
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, done);
		cgf_asm_place(g->a, have);
		i_movr(g, BPF_REG_2, BPF_REG_0);
		cgf_asm_ld_map(g->a, BPF_REG_1, g->m_exe);
		i_mov(g, BPF_REG_3, 0);
		i_mov(g, BPF_REG_4, 0);
		i_call(g, BPF_FUNC_sk_storage_get);
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, done);
	}
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, offsetof(struct cgf_exe_id, dev));
	i_stx(g, BPF_DW, BPF_REG_10, FP_EXE, BPF_REG_1);
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, offsetof(struct cgf_exe_id, ino));
	i_stx(g, BPF_DW, BPF_REG_10, FP_EXE + 8, BPF_REG_1);
	cgf_asm_place(g->a, done);
}

/* exe in s: a literal set as comparisons (no file has inode 0: an unknown
 * executable is in none), a named set by its hash of identities */
static void exe_in(struct gen *g, const struct cgf_set *s, uint32_t t, uint32_t f, uint32_t next)
{
	size_t i;

	if (named(g, s)) {
		int fd = g->env->named_set ? g->env->named_set(s->name, CGF_T_EXE, g->env->ctx) : -1;
		char name[80];
		uint32_t m;

		snprintf(name, sizeof(name), "@%s", s->name);
		m = cgf_asm_add_map(g->a, fd, name, "executable set");
		named_inner(g, m, f);
		i_movr(g, BPF_REG_1, BPF_REG_0);
		i_fp(g, BPF_REG_2, FP_EXE);
		i_call(g, BPF_FUNC_map_lookup_elem);
		gen_branch(g, BPF_JNE, false, 0, t, f, next);
		return;
	}
	for (i = 0; i < s->n; i++) {
		uint32_t other = cgf_asm_label(g->a);

		cgf_asm_note(g->a, "exe == \"%s\"", s->exes[i].path);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_EXE + 8);
		i_mov(g, BPF_REG_2, s->exes[i].ino);
		cgf_asm_jmp_reg(g->a, BPF_JNE, BPF_REG_1, BPF_REG_2, other);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_10, FP_EXE);
		i_mov(g, BPF_REG_2, s->exes[i].dev);
		cgf_asm_jmp_reg(g->a, BPF_JEQ, BPF_REG_1, BPF_REG_2, t);
		cgf_asm_place(g->a, other);
	}
	if (f != next)
		cgf_asm_ja(g->a, f);
}

void gen_in(struct gen *g, const struct cgf_node *n, uint32_t t, uint32_t f, uint32_t next)
{
	if (n->a->kind == CGF_N_EXE) {
		exe_in(g, n->set, t, f, next);
		return;
	}
	if (n->set->timeout) {
		dyn_in(g, n->set, n->a->kind == CGF_N_ADDR ? n->a->field : 0, t, f, next);
		return;
	}
	if (n->a->kind == CGF_N_ADDR)
		addr_in(g, n->set, n->a->field, t, f, next);
	else
		int_in(g, n->set, t, f, next);
}
