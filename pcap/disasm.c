// SPDX-License-Identifier: GPL-2.0
/* eBPF instructions as text, like the verifier's log: "(bf) r1 = r6" (`filter compile`). */
#include <stdio.h>

#include <linux/bpf.h>

#include "cbpf.h"

static const char *const alu_ops[16] = {
	[BPF_ADD >> 4] = "+=", [BPF_SUB >> 4] = "-=", [BPF_MUL >> 4] = "*=",
	[BPF_DIV >> 4] = "/=", [BPF_OR >> 4] = "|=", [BPF_AND >> 4] = "&=",
	[BPF_LSH >> 4] = "<<=", [BPF_RSH >> 4] = ">>=", [BPF_MOD >> 4] = "%=",
	[BPF_XOR >> 4] = "^=", [BPF_MOV >> 4] = "=", [BPF_ARSH >> 4] = "s>>=",
};

static const char *const jmp_ops[16] = {
	[BPF_JEQ >> 4] = "==", [BPF_JGT >> 4] = ">", [BPF_JGE >> 4] = ">=",
	[BPF_JSET >> 4] = "&", [BPF_JNE >> 4] = "!=", [BPF_JSGT >> 4] = "s>",
	[BPF_JSGE >> 4] = "s>=", [BPF_JLT >> 4] = "<", [BPF_JLE >> 4] = "<=",
	[BPF_JSLT >> 4] = "s<", [BPF_JSLE >> 4] = "s<=",
};

static const char *size_name(uint8_t code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return "u8";
	case BPF_H:
		return "u16";
	case BPF_W:
		return "u32";
	}
	return "u64";
}

static const char *helper_name(int32_t id)
{
	switch (id) {
	case BPF_FUNC_skb_load_bytes:
		return "bpf_skb_load_bytes";
	case BPF_FUNC_xdp_load_bytes:
		return "bpf_xdp_load_bytes";
	case BPF_FUNC_xdp_get_buff_len:
		return "bpf_xdp_get_buff_len";
	}
	return "helper";
}

static void alu_str(const struct bpf_insn *i, char *buf, size_t len)
{
	char r = BPF_CLASS(i->code) == BPF_ALU64 ? 'r' : 'w';
	const char *op = alu_ops[BPF_OP(i->code) >> 4];

	if (BPF_OP(i->code) == BPF_END)
		snprintf(buf, len, "r%u = %s%d r%u", i->dst_reg,
			 BPF_SRC(i->code) == BPF_TO_BE ? "be" : "le", i->imm, i->dst_reg);
	else if (BPF_OP(i->code) == BPF_NEG)
		snprintf(buf, len, "%c%u = -%c%u", r, i->dst_reg, r, i->dst_reg);
	else if (!op)
		snprintf(buf, len, "alu? dst r%u src r%u imm %d", i->dst_reg, i->src_reg, i->imm);
	else if (BPF_SRC(i->code) == BPF_X)
		snprintf(buf, len, "%c%u %s %c%u", r, i->dst_reg, op, r, i->src_reg);
	else if (r == 'w' && (i->imm < -9 || i->imm > 9))
		snprintf(buf, len, "%c%u %s 0x%x", r, i->dst_reg, op, (uint32_t)i->imm);
	else
		snprintf(buf, len, "%c%u %s %d", r, i->dst_reg, op, i->imm);
}

static void jmp_str(const struct bpf_insn *i, char *buf, size_t len)
{
	char r = BPF_CLASS(i->code) == BPF_JMP32 ? 'w' : 'r';
	const char *op = jmp_ops[BPF_OP(i->code) >> 4];

	switch (BPF_OP(i->code)) {
	case BPF_JA:
		if (BPF_CLASS(i->code) == BPF_JMP32)
			snprintf(buf, len, "gotol pc%+d", i->imm);
		else
			snprintf(buf, len, "goto pc%+d", i->off);
		return;
	case BPF_CALL:
		snprintf(buf, len, "call %s#%d", helper_name(i->imm), i->imm);
		return;
	case BPF_EXIT:
		snprintf(buf, len, "exit");
		return;
	}
	if (!op)
		snprintf(buf, len, "jmp? dst r%u src r%u off %d imm %d", i->dst_reg, i->src_reg,
			 i->off, i->imm);
	else if (BPF_SRC(i->code) == BPF_X)
		snprintf(buf, len, "if %c%u %s %c%u goto pc%+d", r, i->dst_reg, op, r, i->src_reg,
			 i->off);
	else
		snprintf(buf, len, "if %c%u %s 0x%x goto pc%+d", r, i->dst_reg, op,
			 (uint32_t)i->imm, i->off);
}

int pl_ebpf_insn_str(const struct bpf_insn *insns, size_t cnt, size_t n, char *buf, size_t len)
{
	const struct bpf_insn *i = &insns[n];
	int w = snprintf(buf, len, "(%02x) ", i->code);

	if (w < 0 || (size_t)w >= len)
		return 1;
	buf += w;
	len -= (size_t)w;

	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		alu_str(i, buf, len);
		break;
	case BPF_JMP:
	case BPF_JMP32:
		jmp_str(i, buf, len);
		break;
	case BPF_LDX:
		snprintf(buf, len, "r%u = *(%s *)(r%u %+d)", i->dst_reg, size_name(i->code),
			 i->src_reg, i->off);
		break;
	case BPF_STX:
		snprintf(buf, len, "*(%s *)(r%u %+d) = r%u", size_name(i->code), i->dst_reg,
			 i->off, i->src_reg);
		break;
	case BPF_ST:
		snprintf(buf, len, "*(%s *)(r%u %+d) = %d", size_name(i->code), i->dst_reg,
			 i->off, i->imm);
		break;
	case BPF_LD:
		if (i->code == (BPF_LD | BPF_IMM | BPF_DW) && n + 1 < cnt) {
			snprintf(buf, len, "r%u = 0x%llx ll", i->dst_reg,
				 (unsigned long long)(uint32_t)i->imm |
				 (unsigned long long)(uint32_t)insns[n + 1].imm << 32);
			return 2;
		}
		/* fall through */
	default:
		snprintf(buf, len, "code 0x%02x dst r%u src r%u off %d imm %d", i->code,
			 i->dst_reg, i->src_reg, i->off, i->imm);
	}
	return 1;
}
