/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small BPF assembler: an instruction buffer with forward labels, map
 * references and a disassembler that prints a program the way a reader
 * wants to see it ('cgfilter compile').  Used by the code generator
 * (lang/emit_bpf.c, lang/parse_bpf.c) and by the engine's entry programs.
 *
 * Errors are sticky: after the first one (too many instructions, out of
 * memory) every call does nothing and cgf_asm_finish() returns it.  Jumps
 * too far for 16 bits are made long in cgf_asm_finish().
 */
#ifndef CGF_BPF_ASM_H
#define CGF_BPF_ASM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/bpf.h>

/* The largest program the kernel takes (BPF_COMPLEXITY_LIMIT_INSNS); the
 * verifier may stop sooner, at a million instructions walked. */
#define CGF_ASM_MAX_INSNS 1000000

/* A map an instruction refers to: fd for the kernel, name and note for the
 * disassembler ("stats", "literal IPv4 set, 12 intervals"). */
struct cgf_asm_map {
	int fd;
	char name[32];
	char note[96];
};

struct cgf_asm {
	struct bpf_insn *insn;
	uint32_t n, cap;
	int32_t *label;         /* label -> instruction index, -1 until placed */
	uint32_t nlabels, caplabels;
	struct { uint32_t at, label; } *fix;
	uint32_t nfix, capfix;
	struct cgf_asm_map *maps;
	uint32_t nmaps;
	struct { uint32_t at, map; } *mref;   /* which map each ld_imm64 loads */
	uint32_t nmref, capmref;
	char **comment;         /* per instruction, for the disassembler */
	int err;                /* first error, -errno */
	char why[160];
};

void cgf_asm_init(struct cgf_asm *a);
void cgf_asm_free(struct cgf_asm *a);

/* A new label, placed later with cgf_asm_place(). */
uint32_t cgf_asm_label(struct cgf_asm *a);
void cgf_asm_place(struct cgf_asm *a, uint32_t label);

void cgf_asm_emit(struct cgf_asm *a, struct bpf_insn insn);
/* A note the disassembler prints on the next instruction emitted. */
void cgf_asm_note(struct cgf_asm *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Conditional jump to label: if (dst OP imm) or (dst OP src) goto label. */
void cgf_asm_jmp_imm(struct cgf_asm *a, uint8_t op, uint8_t dst, int32_t imm, uint32_t label);
void cgf_asm_jmp_reg(struct cgf_asm *a, uint8_t op, uint8_t dst, uint8_t src, uint32_t label);
void cgf_asm_ja(struct cgf_asm *a, uint32_t label);

/* dst = a 64-bit constant: one instruction when it fits in 32 signed bits. */
void cgf_asm_mov64(struct cgf_asm *a, uint8_t dst, uint64_t v);
/* dst = the map m (an index from cgf_asm_add_map) */
void cgf_asm_ld_map(struct cgf_asm *a, uint8_t dst, uint32_t m);
/* Register a map; returns its index for cgf_asm_ld_map. */
uint32_t cgf_asm_add_map(struct cgf_asm *a, int fd, const char *name, const char *note);

/* Resolve the labels; returns 0 or the first error (message in a->why). */
int cgf_asm_finish(struct cgf_asm *a);

/* Print the finished program, one instruction a line, jump targets as
 * instruction numbers, maps by name. */
void cgf_asm_print(const struct cgf_asm *a, FILE *f);

#endif /* CGF_BPF_ASM_H */
