// SPDX-License-Identifier: GPL-2.0
/*
 * VLAN tags on tc: the stack moves a packet's outer VLAN tag into skb
 * metadata before tc ingress (and may on egress), while libpcap's program
 * reads the frame as on the wire. A tc program therefore gets one more copy,
 * taken when skb->vlan_present: it reads a virtual frame with the tag put
 * back at offset 12. The first 20 virtual bytes (12 of MACs, the tag, 4 more
 * of the frame) are copied to the stack once; loads below offset 16 read
 * them there, loads from 16 on read the packet 4 bytes earlier, and `len`
 * and the bounds grow by the 4 tag bytes.
 */
#include "xlate.h"

/* virtual offsets below this read the stack copy */
#define VHDR_SPLIT	16U
/* ... of which the frame itself fills this many for sure (14-byte header + tag) */
#define VHDR_SURE	18U

/* if the virtual frame is shorter than r2 + 0 return 0 (r3 clobbered) */
static void emit_vlen_check(struct xlate *x)
{
	size_t j_ok;

	xl_emit(x, BPF_LDX_MEM(BPF_W, R3, R10, OFF_VLEN));
	j_ok = xl_jmp_local(x, BPF_JMP_REG(BPF_JGE, R3, R2, 0));
	xl_ret0(x);
	xl_land(x, j_ok);
}

/* dst = @bytes bytes at constant virtual offset k < VHDR_SPLIT (the stack copy) */
static void emit_vhdr_load_abs(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	int16_t off = (int16_t)(OFF_VHDR + (int)k);

	if (k + bytes > VHDR_SURE) {
		xl_emit(x, BPF_MOV64_IMM(R2, (int32_t)(k + bytes)));
		emit_vlen_check(x);
	}
	if (k % bytes == 0) {	/* the verifier wants stack loads aligned */
		xl_emit(x, BPF_LDX_MEM(xl_ld_size(bytes), dst, R10, off));
		xl_to_host(x, dst, bytes);
		return;
	}
	xl_emit(x, BPF_LDX_MEM(BPF_B, dst, R10, off));
	for (unsigned int i = 1; i < bytes; i++) {
		xl_emit(x, BPF_LDX_MEM(BPF_B, R1, R10, (int16_t)(off + (int)i)));
		xl_emit(x, BPF_ALU32_IMM(BPF_LSH, dst, 8));
		xl_emit(x, BPF_ALU32_REG(BPF_OR, dst, R1));
	}
}

/*
 * dst = @bytes bytes at virtual offset r1 (X + k), the tc VLAN copy:
 *   r1 = (u32)(r1 | -(r1 >> 32)), through a 4-byte stack slot off the
 *        8-byte grid (see below)
 *   if r1 >= 16 goto real
 *   if vlen < r1 + n return 0
 *   each byte: r4 = the stack copy's 8-byte word (r1 + i) / 8 holding it,
 *     shifted down by 8 * ((r1 + i) % 8): constant stack offsets only
 *   goto done
 *   real: r1 -= 4; <load at r1>
 *   done:
 * The verifier does not track what a 4-byte store off the 8-byte grid holds,
 * so the reloaded offset carries no bounds of X: the branch above does not
 * make the verifier track X precisely, which in the unrolled copies of a
 * loop (translate.c, emit_helper_r1()) would keep it from pruning states.
 * Offsets of 2^32 and more become 0xffffffff, past any frame.
 */
static void emit_vhdr_load_ind(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	size_t j_real, j_done, j_word[2];

	xl_emit(x, BPF_MOV64_REG(R2, R1));
	xl_emit(x, BPF_ALU64_IMM(BPF_RSH, R2, 32));
	xl_emit(x, BPF_ALU64_IMM(BPF_NEG, R2, 0));
	xl_emit(x, BPF_ALU64_REG(BPF_OR, R1, R2));
	xl_emit(x, BPF_STX_MEM(BPF_W, R10, R1, OFF_VOFF));
	xl_emit(x, BPF_LDX_MEM(BPF_W, R1, R10, OFF_VOFF));
	j_real = xl_jmp_local(x, BPF_JMP_IMM(BPF_JGE, R1, VHDR_SPLIT, 0));
	xl_emit(x, BPF_MOV64_REG(R2, R1));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R2, (int32_t)bytes));
	emit_vlen_check(x);
	xl_emit(x, BPF_MOV32_IMM(R5, 0));
	for (unsigned int i = 0; i < bytes; i++) {
		xl_emit(x, BPF_MOV64_REG(R2, R1));
		if (i)
			xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R2, (int32_t)i));
		xl_emit(x, BPF_MOV64_REG(R3, R2));
		xl_emit(x, BPF_ALU64_IMM(BPF_RSH, R3, 3));
		xl_emit(x, BPF_LDX_MEM(BPF_DW, R4, R10, OFF_VHDR));
		j_word[0] = xl_jmp_local(x, BPF_JMP_IMM(BPF_JEQ, R3, 0, 0));
		xl_emit(x, BPF_LDX_MEM(BPF_DW, R4, R10, OFF_VHDR + 8));
		j_word[1] = xl_jmp_local(x, BPF_JMP_IMM(BPF_JEQ, R3, 1, 0));
		xl_emit(x, BPF_LDX_MEM(BPF_DW, R4, R10, OFF_VHDR + 16));
		xl_land(x, j_word[0]);
		xl_land(x, j_word[1]);
		xl_emit(x, BPF_ALU64_IMM(BPF_AND, R2, 7));
		xl_emit(x, BPF_ALU64_IMM(BPF_LSH, R2, 3));
		xl_emit(x, BPF_ALU64_REG(BPF_RSH, R4, R2));	/* little-endian words */
		xl_emit(x, BPF_ALU32_IMM(BPF_AND, R4, 0xff));
		xl_emit(x, BPF_ALU32_IMM(BPF_LSH, R5, 8));
		xl_emit(x, BPF_ALU32_REG(BPF_OR, R5, R4));
	}
	xl_emit(x, BPF_MOV32_REG(dst, R5));
	j_done = xl_jmp_local(x, BPF_JMP_A(0));
	xl_land(x, j_real);
	xl_emit(x, BPF_ALU64_IMM(BPF_SUB, R1, (int32_t)(VHDR_SPLIT - 12)));
	xl_load_r1_any(x, bytes, dst);
	xl_land(x, j_done);
}

void xl_vlan_load(struct xlate *x, unsigned int bytes, uint32_t k, bool ind, uint8_t dst)
{
	if (ind) {
		xl_x_plus_k(x, k);
		emit_vhdr_load_ind(x, bytes, dst);
	} else if (k < VHDR_SPLIT) {
		emit_vhdr_load_abs(x, bytes, k, dst);
	} else {
		xl_load_abs(x, bytes, k - (VHDR_SPLIT - 12), dst);
	}
}

/*
 * r1 = ctx: if skb->vlan_present, fill the stack copy (frame bytes 0..11,
 * the tag, frame bytes 12..15 as far as there are any, zeros after), the
 * virtual length, `len` + 4, and go to the VLAN copy of the program.
 */
void xl_vlan_dispatch(struct xlate *x, bool uses_len, uint32_t vlan_base)
{
	size_t j_none, j_short, j_four, j_fail;

	xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_present)));
	j_none = xl_jmp_local(x, BPF_JMP_IMM(BPF_JEQ, R0, 0, 0));
	for (int i = 0; i < 3; i++)
		xl_emit(x, BPF_ST_MEM(BPF_DW, R10, (int16_t)(OFF_VHDR + 8 * i), 0));
	/* bytes 0..11: the MAC addresses */
	xl_emit(x, BPF_MOV64_IMM(R2, 0));
	xl_emit(x, BPF_MOV64_REG(R3, R10));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R3, OFF_VHDR));
	xl_emit(x, BPF_MOV64_IMM(R4, 12));
	xl_emit(x, BPF_CALL_HELPER(BPF_FUNC_skb_load_bytes));
	j_fail = xl_jmp_local(x, BPF_JMP_IMM(BPF_JNE, R0, 0, 0));
	/* bytes 12..15: the tag; vlan_proto is network order, vlan_tci host order */
	xl_emit(x, BPF_LDX_MEM(BPF_DW, R1, R10, OFF_CTX));
	xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_proto)));
	xl_emit(x, BPF_STX_MEM(BPF_H, R10, R0, OFF_VHDR + 12));
	xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_tci)));
	xl_emit(x, BPF_ENDIAN(BPF_TO_BE, R0, 16));
	xl_emit(x, BPF_STX_MEM(BPF_H, R10, R0, OFF_VHDR + 14));
	/* virtual length; `len` */
	xl_emit(x, BPF_LDX_MEM(BPF_W, R4, R1, offsetof(struct __sk_buff, len)));
	xl_emit(x, BPF_MOV64_REG(R0, R4));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R0, 4));
	xl_emit(x, BPF_STX_MEM(BPF_W, R10, R0, OFF_VLEN));
	if (uses_len) {
		xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R10, OFF_LEN));
		xl_emit(x, BPF_ALU32_IMM(BPF_ADD, R0, 4));
		xl_emit(x, BPF_STX_MEM(BPF_W, R10, R0, OFF_LEN));
	}
	/* bytes 16..19: min(4, len - 12) frame bytes from 12 */
	xl_emit(x, BPF_ALU64_IMM(BPF_SUB, R4, 12));
	j_short = xl_jmp_local(x, BPF_JMP_IMM(BPF_JSLE, R4, 0, 0));
	j_four = xl_jmp_local(x, BPF_JMP_IMM(BPF_JLE, R4, 4, 0));
	xl_emit(x, BPF_MOV64_IMM(R4, 4));
	xl_land(x, j_four);
	xl_emit(x, BPF_MOV64_IMM(R2, 12));
	xl_emit(x, BPF_MOV64_REG(R3, R10));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R3, OFF_VHDR + 16));
	xl_emit(x, BPF_CALL_HELPER(BPF_FUNC_skb_load_bytes));
	xl_land(x, j_short);
	xl_emit(x, BPF_LDX_MEM(BPF_DW, R1, R10, OFF_CTX));
	x->base = vlan_base;
	xl_jmp_to(x, BPF_JMP_A(0), 0);
	xl_land(x, j_fail);
	xl_ret0(x);
	xl_land(x, j_none);
}
