/* SPDX-License-Identifier: GPL-2.0 */
/*
 * eBPF instructions as expressions, named after the kernel's own
 * (include/linux/filter.h, which is not UAPI): BPF_MOV64_REG(R1, R6),
 * BPF_JMP_IMM(BPF_JEQ, R0, 0, 2), ... Each is one struct bpf_insn, except
 * BPF_LD_IMM64_RAW() and BPF_LD_MAP_FD(): two, for array initialisers.
 * Operands in the kernel's order: destination first, jump offset last.
 */
#ifndef __PKTLENS_PCAP_INSN_H
#define __PKTLENS_PCAP_INSN_H

#include <linux/bpf.h>

/* eBPF registers (r10: the read-only frame pointer) */
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

#define BPF_RAW_INSN(CODE, DST, SRC, OFF, IMM)                                  \
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), \
			    .off = (OFF), .imm = (IMM) })

/* dst op= src, dst op= imm (64-bit; the 32-bit forms zero the upper half) */
#define BPF_ALU64_REG(OP, DST, SRC)	BPF_RAW_INSN(BPF_ALU64 | BPF_OP(OP) | BPF_X, DST, SRC, 0, 0)
#define BPF_ALU32_REG(OP, DST, SRC)	BPF_RAW_INSN(BPF_ALU | BPF_OP(OP) | BPF_X, DST, SRC, 0, 0)
#define BPF_ALU64_IMM(OP, DST, IMM)	BPF_RAW_INSN(BPF_ALU64 | BPF_OP(OP) | BPF_K, DST, 0, 0, IMM)
#define BPF_ALU32_IMM(OP, DST, IMM)	BPF_RAW_INSN(BPF_ALU | BPF_OP(OP) | BPF_K, DST, 0, 0, IMM)
#define BPF_MOV64_REG(DST, SRC)		BPF_ALU64_REG(BPF_MOV, DST, SRC)
#define BPF_MOV32_REG(DST, SRC)		BPF_ALU32_REG(BPF_MOV, DST, SRC)
#define BPF_MOV64_IMM(DST, IMM)		BPF_ALU64_IMM(BPF_MOV, DST, IMM)
#define BPF_MOV32_IMM(DST, IMM)		BPF_ALU32_IMM(BPF_MOV, DST, IMM)
/* dst = dst in big-endian (BPF_TO_BE) or little-endian (BPF_TO_LE) order, LEN bits */
#define BPF_ENDIAN(TYPE, DST, LEN)	BPF_RAW_INSN(BPF_ALU | BPF_END | (TYPE), DST, 0, 0, LEN)

/* dst = *(size *)(src + off); *(size *)(dst + off) = src or imm */
#define BPF_LDX_MEM(SIZE, DST, SRC, OFF) \
	BPF_RAW_INSN(BPF_LDX | BPF_SIZE(SIZE) | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_STX_MEM(SIZE, DST, SRC, OFF) \
	BPF_RAW_INSN(BPF_STX | BPF_SIZE(SIZE) | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_ST_MEM(SIZE, DST, OFF, IMM) \
	BPF_RAW_INSN(BPF_ST | BPF_SIZE(SIZE) | BPF_MEM, DST, 0, OFF, IMM)

/* dst = a 64-bit immediate (SRC: BPF_PSEUDO_MAP_FD makes it a map); two slots */
#define BPF_LD_IMM64_RAW(DST, SRC, IMM)                                                    \
	BPF_RAW_INSN(BPF_LD | BPF_DW | BPF_IMM, DST, SRC, 0, (__s32)(__u32)(IMM)),         \
	BPF_RAW_INSN(0, 0, 0, 0, (__s32)((__u64)(IMM) >> 32))
#define BPF_LD_MAP_FD(DST, FD)		BPF_LD_IMM64_RAW(DST, BPF_PSEUDO_MAP_FD, FD)

/* if (dst op src|imm) goto pc + 1 + off; JMP32 compares the lower halves */
#define BPF_JMP_REG(OP, DST, SRC, OFF)	BPF_RAW_INSN(BPF_JMP | BPF_OP(OP) | BPF_X, DST, SRC, OFF, 0)
#define BPF_JMP_IMM(OP, DST, IMM, OFF)	BPF_RAW_INSN(BPF_JMP | BPF_OP(OP) | BPF_K, DST, 0, OFF, IMM)
#define BPF_JMP32_REG(OP, DST, SRC, OFF) \
	BPF_RAW_INSN(BPF_JMP32 | BPF_OP(OP) | BPF_X, DST, SRC, OFF, 0)
#define BPF_JMP32_IMM(OP, DST, IMM, OFF) \
	BPF_RAW_INSN(BPF_JMP32 | BPF_OP(OP) | BPF_K, DST, 0, OFF, IMM)
/* goto pc + 1 + off (16-bit); gotol: 32-bit offset in imm */
#define BPF_JMP_A(OFF)			BPF_RAW_INSN(BPF_JMP | BPF_JA, 0, 0, OFF, 0)
#define BPF_JMP32_A(IMM)		BPF_RAW_INSN(BPF_JMP32 | BPF_JA, 0, 0, 0, IMM)

/* r0 = helper(r1, ..., r5); r0 = the subprogram at pc + 1 + imm (BPF-to-BPF call) */
#define BPF_CALL_HELPER(ID)		BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define BPF_CALL_REL(IMM)		BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, IMM)
#define BPF_EXIT_INSN()			BPF_RAW_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#endif /* __PKTLENS_PCAP_INSN_H */
