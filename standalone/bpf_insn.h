/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Macros that build eBPF instructions in C, for programs assembled at run
 * time without a compiler.  The kernel has the same macros in
 * include/linux/filter.h, but that file is not UAPI, so they are written out
 * here with the same names and meaning (struct bpf_insn and the opcode bits
 * come from <linux/bpf.h>).
 */
#ifndef BPF_INSN_H
#define BPF_INSN_H

#include <linux/bpf.h>

/* DST = DST OP SRC (64-bit), e.g. BPF_ALU64_REG(BPF_ADD, BPF_REG_1, BPF_REG_2) */
#define BPF_ALU64_REG(OP, DST, SRC)                                                 \
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_OP(OP) | BPF_X,                 \
			    .dst_reg = DST, .src_reg = SRC, .off = 0, .imm = 0 })

/* DST = DST OP IMM (64-bit) */
#define BPF_ALU64_IMM(OP, DST, IMM)                                                 \
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_OP(OP) | BPF_K,                 \
			    .dst_reg = DST, .src_reg = 0, .off = 0, .imm = IMM })

/* DST = SRC */
#define BPF_MOV64_REG(DST, SRC)                                                     \
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,                     \
			    .dst_reg = DST, .src_reg = SRC, .off = 0, .imm = 0 })

/* DST = IMM (sign-extended to 64 bits) */
#define BPF_MOV64_IMM(DST, IMM)                                                     \
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,                     \
			    .dst_reg = DST, .src_reg = 0, .off = 0, .imm = IMM })

/* DST = *(SIZE *)(SRC + OFF), SIZE one of BPF_B, BPF_H, BPF_W, BPF_DW */
#define BPF_LDX_MEM(SIZE, DST, SRC, OFF)                                            \
	((struct bpf_insn){ .code = BPF_LDX | BPF_SIZE(SIZE) | BPF_MEM,              \
			    .dst_reg = DST, .src_reg = SRC, .off = OFF, .imm = 0 })

/* *(SIZE *)(DST + OFF) = SRC */
#define BPF_STX_MEM(SIZE, DST, SRC, OFF)                                            \
	((struct bpf_insn){ .code = BPF_STX | BPF_SIZE(SIZE) | BPF_MEM,              \
			    .dst_reg = DST, .src_reg = SRC, .off = OFF, .imm = 0 })

/* *(SIZE *)(DST + OFF) = IMM */
#define BPF_ST_MEM(SIZE, DST, OFF, IMM)                                             \
	((struct bpf_insn){ .code = BPF_ST | BPF_SIZE(SIZE) | BPF_MEM,               \
			    .dst_reg = DST, .src_reg = 0, .off = OFF, .imm = IMM })

/* atomically *(SIZE *)(DST + OFF) OP= SRC; OP BPF_ADD, BPF_AND, BPF_OR, BPF_XOR */
#define BPF_ATOMIC_OP(SIZE, OP, DST, SRC, OFF)                                      \
	((struct bpf_insn){ .code = BPF_STX | BPF_SIZE(SIZE) | BPF_ATOMIC,           \
			    .dst_reg = DST, .src_reg = SRC, .off = OFF, .imm = OP })

/* DST = the map behind file descriptor FD; takes two instruction slots */
#define BPF_LD_MAP_FD(DST, FD)                                                      \
	((struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = DST,       \
			    .src_reg = BPF_PSEUDO_MAP_FD, .off = 0, .imm = FD }),       \
	((struct bpf_insn){ .code = 0, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0 })

/* if (DST OP IMM) skip OFF instructions; OP e.g. BPF_JEQ, BPF_JGT */
#define BPF_JMP_IMM(OP, DST, IMM, OFF)                                              \
	((struct bpf_insn){ .code = BPF_JMP | BPF_OP(OP) | BPF_K,                   \
			    .dst_reg = DST, .src_reg = 0, .off = OFF, .imm = IMM })

/* if (DST OP SRC) skip OFF instructions (unsigned for BPF_JGT, BPF_JLE...) */
#define BPF_JMP_REG(OP, DST, SRC, OFF)                                              \
	((struct bpf_insn){ .code = BPF_JMP | BPF_OP(OP) | BPF_X,                   \
			    .dst_reg = DST, .src_reg = SRC, .off = OFF, .imm = 0 })

/* call helper FUNC (a BPF_FUNC_* number); arguments in R1-R5, result in R0 */
#define BPF_CALL_HELPER(FUNC)                                                       \
	((struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .dst_reg = 0, .src_reg = 0,  \
			    .off = 0, .imm = FUNC })

/* return R0 */
#define BPF_EXIT_INSN()                                                             \
	((struct bpf_insn){ .code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0,  \
			    .off = 0, .imm = 0 })

#endif /* BPF_INSN_H */
