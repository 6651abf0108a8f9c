// SPDX-License-Identifier: GPL-2.0-only
/*
 * The BPF assembler: instructions, labels, map references, disassembly.
 * See bpf_asm.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_asm.h"
#include "expr.h"

void cgf_asm_init(struct cgf_asm *a)
{
	memset(a, 0, sizeof(*a));
}

void cgf_asm_free(struct cgf_asm *a)
{
	uint32_t i;

	if (a->comment)
		for (i = 0; i < a->n; i++)
			free(a->comment[i]);
	free(a->comment);
	free(a->insn);
	free(a->label);
	free(a->fix);
	free(a->maps);
	free(a->mref);
	memset(a, 0, sizeof(*a));
}

static void fail(struct cgf_asm *a, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct cgf_asm *a, int err, const char *fmt, ...)
{
	va_list ap;

	if (a->err)
		return;
	a->err = err;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

/* Room for one more element of an array of *cap elements of size sz. */
static bool grow(struct cgf_asm *a, void **p, uint32_t n, uint32_t *cap, size_t sz)
{
	size_t c = *cap;

	if (!cgf_grow(p, n, &c, sz, 256) || c > UINT32_MAX) {
		fail(a, -ENOMEM, "out of memory");
		return false;
	}
	*cap = (uint32_t)c;
	return true;
}

uint32_t cgf_asm_label(struct cgf_asm *a)
{
	if (a->err || !grow(a, (void **)&a->label, a->nlabels, &a->caplabels, sizeof(*a->label)))
		return 0;
	a->label[a->nlabels] = -1;
	return a->nlabels++;
}

void cgf_asm_place(struct cgf_asm *a, uint32_t label)
{
	if (!a->err && label < a->nlabels)
		a->label[label] = (int32_t)a->n;
}

void cgf_asm_note(struct cgf_asm *a, const char *fmt, ...)
{
	uint32_t cap = a->cap;
	va_list ap;
	char *s;

	if (a->err)
		return;
	/* comment[] follows insn[]: make sure slot n exists */
	if (!grow(a, (void **)&a->insn, a->n, &a->cap, sizeof(*a->insn)))
		return;
	if (a->cap != cap || !a->comment) {
		char **c = realloc(a->comment, (size_t)a->cap * sizeof(*c));

		if (!c) {
			fail(a, -ENOMEM, "out of memory");
			return;
		}
		memset(c + (a->comment ? cap : 0), 0,
		       (size_t)(a->cap - (a->comment ? cap : 0)) * sizeof(*c));
		a->comment = c;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(a->comment[a->n]);
	a->comment[a->n] = s;
}

void cgf_asm_emit(struct cgf_asm *a, struct bpf_insn insn)
{
	uint32_t cap = a->cap;

	if (a->err)
		return;
	if (a->n >= CGF_ASM_MAX_INSNS) {
		fail(a, -E2BIG, "filter too large: more than %d BPF instructions", CGF_ASM_MAX_INSNS);
		return;
	}
	if (!grow(a, (void **)&a->insn, a->n, &a->cap, sizeof(*a->insn)))
		return;
	if (a->comment && a->cap != cap) {
		char **c = realloc(a->comment, (size_t)a->cap * sizeof(*c));

		if (!c) {
			fail(a, -ENOMEM, "out of memory");
			return;
		}
		memset(c + cap, 0, (size_t)(a->cap - cap) * sizeof(*c));
		a->comment = c;
	}
	a->insn[a->n++] = insn;
}

static void fixup(struct cgf_asm *a, uint32_t label)
{
	if (a->err || !grow(a, (void **)&a->fix, a->nfix, &a->capfix, sizeof(*a->fix)))
		return;
	a->fix[a->nfix].at = a->n;
	a->fix[a->nfix].label = label;
	a->nfix++;
}

void cgf_asm_jmp_imm(struct cgf_asm *a, uint8_t op, uint8_t dst, int32_t imm, uint32_t label)
{
	fixup(a, label);
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_JMP | op | BPF_K, .dst_reg = dst, .imm = imm });
}

void cgf_asm_jmp_reg(struct cgf_asm *a, uint8_t op, uint8_t dst, uint8_t src, uint32_t label)
{
	fixup(a, label);
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_JMP | op | BPF_X, .dst_reg = dst, .src_reg = src });
}

void cgf_asm_ja(struct cgf_asm *a, uint32_t label)
{
	fixup(a, label);
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_JMP | BPF_JA });
}

void cgf_asm_mov64(struct cgf_asm *a, uint8_t dst, uint64_t v)
{
	if ((int64_t)v == (int64_t)(int32_t)v) {
		cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
						   .dst_reg = dst, .imm = (int32_t)v });
		return;
	}
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = dst,
					   .imm = (int32_t)(uint32_t)v });
	cgf_asm_emit(a, (struct bpf_insn){ .imm = (int32_t)(uint32_t)(v >> 32) });
}

uint32_t cgf_asm_add_map(struct cgf_asm *a, int fd, const char *name, const char *note)
{
	struct cgf_asm_map *m;

	if (a->err)
		return 0;
	m = realloc(a->maps, (a->nmaps + 1) * sizeof(*m));
	if (!m) {
		fail(a, -ENOMEM, "out of memory");
		return 0;
	}
	a->maps = m;
	m = &a->maps[a->nmaps];
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->note, sizeof(m->note), "%s", note ? note : "");
	return a->nmaps++;
}

void cgf_asm_ld_map(struct cgf_asm *a, uint8_t dst, uint32_t m)
{
	if (a->err)
		return;
	if (m >= a->nmaps) {
		fail(a, -EINVAL, "internal error: map %u not registered", m);
		return;
	}
	if (!grow(a, (void **)&a->mref, a->nmref, &a->capmref, sizeof(*a->mref)))
		return;
	a->mref[a->nmref].at = a->n;
	a->mref[a->nmref].map = m;
	a->nmref++;
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = dst,
					   .src_reg = BPF_PSEUDO_MAP_FD, .imm = a->maps[m].fd });
	cgf_asm_emit(a, (struct bpf_insn){ 0 });
}

/* The map the ld_imm64 at instruction i loads, or -1. */
static int map_at(const struct cgf_asm *a, uint32_t i)
{
	uint32_t lo = 0, hi = a->nmref;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (a->mref[mid].at < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->nmref && a->mref[lo].at == i ? (int)a->mref[lo].map : -1;
}

/* The label jumped to by the instruction at i, or -1 (fix[] is sorted by
 * instruction, as emitted). */
static int64_t jump_target(const struct cgf_asm *a, uint32_t i)
{
	uint32_t lo = 0, hi = a->nfix;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (a->fix[mid].at < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < a->nfix && a->fix[lo].at == i && a->fix[lo].label < a->nlabels)
		return a->label[a->fix[lo].label];
	return -1;
}

/*
 * Drop what no path reaches (the verifier refuses unreachable code, and
 * constant folding leaves some: '1 || x' never tests x): a walk from the
 * first instruction, then the survivors moved down, labels and references
 * following them.
 */
static void drop_unreachable(struct cgf_asm *a)
{
	uint8_t *seen = calloc(a->n + 2, 1);
	uint32_t *stack = malloc((a->n + 1) * sizeof(*stack)), *to = malloc((a->n + 1) * sizeof(*to));
	uint32_t sp = 0, i, k;

	if (!seen || !stack || !to) {
		fail(a, -ENOMEM, "out of memory");
		goto out;
	}
	if (a->n)
		stack[sp++] = 0;
	while (sp) {
		uint32_t at = stack[--sp];

		while (at < a->n && !seen[at]) {
			const struct bpf_insn *in = &a->insn[at];
			uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
			int64_t t = cls == BPF_JMP && op != BPF_CALL && op != BPF_EXIT ? jump_target(a, at) : -1;

			seen[at] = 1;
			if (cls == BPF_LD && in->code == (BPF_LD | BPF_DW | BPF_IMM)) {
				seen[at + 1] = 1;
				at += 2;
				continue;
			}
			if (cls == BPF_JMP && op == BPF_EXIT)
				break;
			if (t >= 0 && !seen[t])
				stack[sp++] = (uint32_t)t;
			if (cls == BPF_JMP && op == BPF_JA)
				break;
			at++;
		}
	}
	/* new positions: to[i] = survivors before i */
	for (i = 0, k = 0; i <= a->n; i++) {
		to[i] = k;
		if (i < a->n && seen[i])
			k++;
	}
	for (i = 0; i < a->n; i++) {
		if (!seen[i]) {
			if (a->comment)
				free(a->comment[i]);
			continue;
		}
		a->insn[to[i]] = a->insn[i];
		if (a->comment)
			a->comment[to[i]] = a->comment[i];
	}
	for (i = 0; i < a->nlabels; i++)
		if (a->label[i] >= 0)
			a->label[i] = (int32_t)to[a->label[i]];
	for (i = 0, k = 0; i < a->nfix; i++)
		if (seen[a->fix[i].at]) {
			a->fix[k] = a->fix[i];
			a->fix[k++].at = to[a->fix[i].at];
		}
	a->nfix = k;
	for (i = 0, k = 0; i < a->nmref; i++)
		if (seen[a->mref[i].at]) {
			a->mref[k] = a->mref[i];
			a->mref[k++].at = to[a->mref[i].at];
		}
	a->nmref = k;
	a->n = to[a->n];
out:
	free(seen);
	free(stack);
	free(to);
}

/* Whether fix i is a conditional jump (not a ja). */
static bool is_cond(const struct cgf_asm *a, uint32_t i)
{
	return BPF_OP(a->insn[a->fix[i].at].code) != BPF_JA;
}

/*
 * Jumps farther than ASM_NEAR (a filter of more than 8191 instructions): a
 * 'goto' becomes a 'gotol' (BPF_JMP32 | BPF_JA, a 32-bit
 * offset in imm, Linux 6.4), and a conditional jump three instructions,
 * 'if (cond) goto +1; goto +1; gotol label'.  Growing moves other jumps
 * farther, so the far ones are found again until none is new; shift[i] is
 * then how many instructions are added before instruction i.
 */
/* How far a 16-bit jump may go here: a quarter of its reach, for the kernel
 * grows the program when it loads it (a division by a register gets a test
 * for 0, a map lookup is inlined...) and refuses a 16-bit jump over the
 * growth that no longer fits ("cannot be patched due to 16-bit range"). */
#define ASM_NEAR 8191

static int64_t far_offset(const struct cgf_asm *a, const uint32_t *shift, const uint8_t *far,
			  uint32_t i)
{
	uint32_t at = a->fix[i].at, to = (uint32_t)a->label[a->fix[i].label];
	int64_t from = (int64_t)at + shift[at] + (far[i] && is_cond(a, i) ? 2 : 0);

	return (int64_t)to + shift[to] - from - 1;
}

static void relax(struct cgf_asm *a, uint8_t *far)
{
	uint32_t *shift = calloc((size_t)a->n + 1, sizeof(*shift)), i, k, n;
	struct bpf_insn *insn = NULL;
	char **comment = NULL;
	bool grew = true;

	if (!shift)
		goto nomem;
	while (grew) {
		grew = false;
		for (i = 0, k = 0, n = 0; i <= a->n; i++) { /* shift[] from far[] */
			while (k < a->nfix && a->fix[k].at < i)
				n += far[k++] && is_cond(a, k - 1) ? 2 : 0;
			shift[i] = n;
		}
		for (i = 0; i < a->nfix; i++) {
			int64_t off = far_offset(a, shift, far, i);

			if (!far[i] && (off < -ASM_NEAR || off > ASM_NEAR)) {
				far[i] = 1;
				grew |= is_cond(a, i);
			}
		}
	}
	n = a->n + shift[a->n];
	if (n > CGF_ASM_MAX_INSNS) {
		fail(a, -E2BIG, "filter too large: more than %d BPF instructions", CGF_ASM_MAX_INSNS);
		goto out;
	}
	if (n == a->n)
		goto out;
	insn = calloc(n, sizeof(*insn));
	comment = a->comment ? calloc(n, sizeof(*comment)) : NULL;
	if (!insn || (a->comment && !comment))
		goto nomem;
	for (i = 0, k = 0; i < a->n; i++) {
		uint32_t at = i + shift[i];

		insn[at] = a->insn[i];
		if (comment)
			comment[at] = a->comment[i];
		while (k < a->nfix && a->fix[k].at < i)
			k++;
		if (k < a->nfix && a->fix[k].at == i && far[k] && is_cond(a, k)) {
			insn[at].off = 1;
			insn[at + 1] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = 1 };
		}
	}
	for (i = 0; i < a->nfix; i++) /* the jump to fix is the last of its three */
		a->fix[i].at += shift[a->fix[i].at] + (far[i] && is_cond(a, i) ? 2 : 0);
	for (i = 0; i < a->nlabels; i++)
		if (a->label[i] >= 0)
			a->label[i] += (int32_t)shift[a->label[i]];
	for (i = 0; i < a->nmref; i++)
		a->mref[i].at += shift[a->mref[i].at];
	free(a->insn);
	free(a->comment);
	a->insn = insn;
	a->comment = comment;
	a->n = a->cap = n;
	insn = NULL;
	comment = NULL;
	goto out;
nomem:
	fail(a, -ENOMEM, "out of memory");
out:
	free(shift);
	free(insn);
	free(comment);
}

int cgf_asm_finish(struct cgf_asm *a)
{
	uint8_t *far = NULL;
	uint32_t i;

	if (!a->err)
		drop_unreachable(a);
	for (i = 0; i < a->nfix && !a->err; i++) {
		uint32_t l = a->fix[i].label;

		if (l >= a->nlabels || a->label[l] < 0)
			fail(a, -EINVAL, "internal error: label %u used but not placed", l);
	}
	if (!a->err && a->nfix) {
		far = calloc(a->nfix, 1);
		if (!far)
			fail(a, -ENOMEM, "out of memory");
		else
			relax(a, far);
	}
	for (i = 0; i < a->nfix && !a->err; i++) {
		uint32_t at = a->fix[i].at;
		int64_t off = (int64_t)a->label[a->fix[i].label] - at - 1;

		if (far[i]) { /* gotol */
			a->insn[at] = (struct bpf_insn){ .code = BPF_JMP32 | BPF_JA, .imm = (int32_t)off };
			continue;
		}
		a->insn[at].off = (int16_t)off;
	}
	free(far);
	return a->err;
}

/* ---- disassembler ---------------------------------------------------------- */

static const char *alu_name(uint8_t op)
{
	switch (op) {
	case BPF_ADD: return "+=";
	case BPF_SUB: return "-=";
	case BPF_MUL: return "*=";
	case BPF_DIV: return "/=";
	case BPF_MOD: return "%=";
	case BPF_OR: return "|=";
	case BPF_AND: return "&=";
	case BPF_XOR: return "^=";
	case BPF_LSH: return "<<=";
	case BPF_RSH: return ">>=";
	case BPF_ARSH: return "s>>=";
	case BPF_MOV: return "=";
	default: return "?";
	}
}

static const char *jmp_name(uint8_t op)
{
	switch (op) {
	case BPF_JEQ: return "==";
	case BPF_JNE: return "!=";
	case BPF_JGT: return ">";
	case BPF_JGE: return ">=";
	case BPF_JLT: return "<";
	case BPF_JLE: return "<=";
	case BPF_JSET: return "&";
	case BPF_JSGT: return "s>";
	case BPF_JSGE: return "s>=";
	case BPF_JSLT: return "s<";
	case BPF_JSLE: return "s<=";
	default: return "?";
	}
}

static const char *size_name(uint8_t sz)
{
	switch (sz) {
	case BPF_B: return "u8";
	case BPF_H: return "u16";
	case BPF_W: return "u32";
	default: return "u64";
	}
}

static const char *helper_name(int32_t id)
{
	switch (id) {
	case BPF_FUNC_map_lookup_elem: return "map_lookup_elem";
	case BPF_FUNC_skb_load_bytes: return "skb_load_bytes";
	case BPF_FUNC_tail_call: return "tail_call";
	case BPF_FUNC_ktime_get_ns: return "ktime_get_ns";
	case BPF_FUNC_ringbuf_reserve: return "ringbuf_reserve";
	case BPF_FUNC_ringbuf_submit: return "ringbuf_submit";
	case BPF_FUNC_skb_cgroup_id: return "skb_cgroup_id";
	case BPF_FUNC_get_local_storage: return "get_local_storage";
	case BPF_FUNC_map_update_elem: return "map_update_elem";
	case BPF_FUNC_map_delete_elem: return "map_delete_elem";
	case BPF_FUNC_skb_load_bytes_relative: return "skb_load_bytes_relative";
	case BPF_FUNC_sk_fullsock: return "sk_fullsock";
	case BPF_FUNC_get_listener_sock: return "get_listener_sock";
	case BPF_FUNC_sk_storage_get: return "sk_storage_get";
	case BPF_FUNC_probe_read_kernel: return "probe_read_kernel";
	case BPF_FUNC_get_current_task: return "get_current_task";
	default: return "helper";
	}
}

void cgf_asm_print(const struct cgf_asm *a, FILE *f)
{
	uint32_t i;

	for (i = 0; i < a->n; i++) {
		const struct bpf_insn *in = &a->insn[i];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		char src[48];

		if (a->comment && a->comment[i])
			fprintf(f, "        ; %s\n", a->comment[i]);
		fprintf(f, "%5u: ", i);
		if (in->code & BPF_X && (cls == BPF_ALU64 || cls == BPF_JMP))
			snprintf(src, sizeof(src), "r%u", in->src_reg);
		else
			snprintf(src, sizeof(src), "%d", in->imm);
		switch (cls) {
		case BPF_ALU64:
		case BPF_ALU:
			if (op == BPF_NEG)
				fprintf(f, "r%u = -r%u\n", in->dst_reg, in->dst_reg);
			else if (op == BPF_END)
				fprintf(f, "r%u = be%d r%u\n", in->dst_reg, in->imm, in->dst_reg);
			else
				fprintf(f, "%sr%u %s %s\n", cls == BPF_ALU ? "w: " : "", in->dst_reg,
					alu_name(op), src);
			break;
		case BPF_JMP32:
			if (op == BPF_JA) {
				fprintf(f, "gotol %" PRId64 "\n", (int64_t)i + 1 + in->imm);
				break;
			}
			fprintf(f, "(code 0x%02x)\n", in->code);
			break;
		case BPF_JMP:
			if (op == BPF_JA)
				fprintf(f, "goto %u\n", i + 1 + in->off);
			else if (op == BPF_EXIT)
				fprintf(f, "exit\n");
			else if (op == BPF_CALL)
				fprintf(f, "call %s\n", helper_name(in->imm));
			else
				fprintf(f, "if r%u %s %s goto %u\n", in->dst_reg, jmp_name(op), src,
					i + 1 + in->off);
			break;
		case BPF_LDX:
			fprintf(f, "r%u = *(%s *)(r%u %+d)\n", in->dst_reg, size_name(BPF_SIZE(in->code)),
				in->src_reg, in->off);
			break;
		case BPF_STX:
			fprintf(f, "*(%s *)(r%u %+d) = r%u\n", size_name(BPF_SIZE(in->code)), in->dst_reg,
				in->off, in->src_reg);
			break;
		case BPF_ST:
			fprintf(f, "*(%s *)(r%u %+d) = %d\n", size_name(BPF_SIZE(in->code)), in->dst_reg,
				in->off, in->imm);
			break;
		case BPF_LD:
			if (i + 1 < a->n && in->src_reg == BPF_PSEUDO_MAP_FD) {
				int m = map_at(a, i);

				if (m >= 0)
					fprintf(f, "r%u = map %s%s%s%s\n", in->dst_reg, a->maps[m].name,
						a->maps[m].note[0] ? " (" : "", a->maps[m].note,
						a->maps[m].note[0] ? ")" : "");
				else
					fprintf(f, "r%u = map fd %d\n", in->dst_reg, in->imm);
			} else if (i + 1 < a->n) {
				fprintf(f, "r%u = 0x%" PRIx64 "\n", in->dst_reg,
					(uint64_t)(uint32_t)in->imm |
						(uint64_t)(uint32_t)a->insn[i + 1].imm << 32);
			}
			i++; /* the second half */
			break;
		default:
			fprintf(f, "(code 0x%02x)\n", in->code);
		}
	}
}
