// SPDX-License-Identifier: GPL-2.0
/*
 * Which classic BPF programs the translator takes (those libpcap's
 * bpf_filter() runs with defined results), and the unrolling of backward
 * jumps, which libpcap emits for `protochain` loops.
 */
#include <errno.h>
#include <stdlib.h>

#include <pktlens/why.h>

#include "xlate.h"

bool xl_is_load(uint16_t code)
{
	switch (code) {
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_H | BPF_ABS:
	case BPF_LD | BPF_B | BPF_ABS:
	case BPF_LD | BPF_W | BPF_IND:
	case BPF_LD | BPF_H | BPF_IND:
	case BPF_LD | BPF_B | BPF_IND:
	case BPF_LDX | BPF_B | BPF_MSH:
		return true;
	}
	return false;
}

/* 0, or why @f is not an instruction we (and bpf_filter()) handle */
static const char *insn_invalid(const struct sock_filter *f)
{
	switch (f->code) {
	case BPF_RET | BPF_K:
	case BPF_RET | BPF_A:
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_H | BPF_ABS:
	case BPF_LD | BPF_B | BPF_ABS:
	case BPF_LD | BPF_W | BPF_LEN:
	case BPF_LDX | BPF_W | BPF_LEN:
	case BPF_LD | BPF_W | BPF_IND:
	case BPF_LD | BPF_H | BPF_IND:
	case BPF_LD | BPF_B | BPF_IND:
	case BPF_LDX | BPF_B | BPF_MSH:
	case BPF_LD | BPF_IMM:
	case BPF_LDX | BPF_IMM:
	case BPF_JMP | BPF_JA:
	case BPF_JMP | BPF_JEQ | BPF_K:
	case BPF_JMP | BPF_JGT | BPF_K:
	case BPF_JMP | BPF_JGE | BPF_K:
	case BPF_JMP | BPF_JSET | BPF_K:
	case BPF_JMP | BPF_JEQ | BPF_X:
	case BPF_JMP | BPF_JGT | BPF_X:
	case BPF_JMP | BPF_JGE | BPF_X:
	case BPF_JMP | BPF_JSET | BPF_X:
	case BPF_ALU | BPF_ADD | BPF_K:
	case BPF_ALU | BPF_SUB | BPF_K:
	case BPF_ALU | BPF_MUL | BPF_K:
	case BPF_ALU | BPF_AND | BPF_K:
	case BPF_ALU | BPF_OR | BPF_K:
	case BPF_ALU | BPF_XOR | BPF_K:
	case BPF_ALU | BPF_ADD | BPF_X:
	case BPF_ALU | BPF_SUB | BPF_X:
	case BPF_ALU | BPF_MUL | BPF_X:
	case BPF_ALU | BPF_DIV | BPF_X:
	case BPF_ALU | BPF_MOD | BPF_X:
	case BPF_ALU | BPF_AND | BPF_X:
	case BPF_ALU | BPF_OR | BPF_X:
	case BPF_ALU | BPF_XOR | BPF_X:
	case BPF_ALU | BPF_LSH | BPF_X:
	case BPF_ALU | BPF_RSH | BPF_X:
	case BPF_ALU | BPF_NEG:
	case BPF_MISC | BPF_TAX:
	case BPF_MISC | BPF_TXA:
		return NULL;
	case BPF_LD | BPF_MEM:
	case BPF_LDX | BPF_MEM:
	case BPF_ST:
	case BPF_STX:
		return f->k < 16 ? NULL : "scratch memory index out of range (M[0..15])";
	case BPF_ALU | BPF_DIV | BPF_K:
	case BPF_ALU | BPF_MOD | BPF_K:
		return f->k ? NULL : "division by constant 0";
	case BPF_ALU | BPF_LSH | BPF_K:
	case BPF_ALU | BPF_RSH | BPF_K:
		return f->k < 32 ? NULL : "shift by a constant of 32 or more";
	}
	return "unknown opcode";
}

static const char *ancillary_name(uint32_t k)
{
	if (k >= (uint32_t)SKF_AD_OFF) {
		switch (k - (uint32_t)SKF_AD_OFF) {
		case SKF_AD_PKTTYPE:
			return "SKF_AD_PKTTYPE ('inbound'/'outbound')";
		case SKF_AD_IFINDEX:
			return "SKF_AD_IFINDEX ('ifindex')";
		case SKF_AD_VLAN_TAG:
			return "SKF_AD_VLAN_TAG";
		case SKF_AD_VLAN_TAG_PRESENT:
			return "SKF_AD_VLAN_TAG_PRESENT";
		case SKF_AD_PROTOCOL:
			return "SKF_AD_PROTOCOL";
		}
		return "SKF_AD_OFF";
	}
	if (k >= (uint32_t)SKF_NET_OFF)
		return "SKF_NET_OFF";
	if (k >= (uint32_t)SKF_LL_OFF)
		return "SKF_LL_OFF";
	return "a negative offset";
}

static int check_jumps(const struct sock_filter *f, size_t i, size_t len, char *err, size_t errlen)
{
	if (f->code == (BPF_JMP | BPF_JA)) {
		int64_t to = (int64_t)i + 1 + (int32_t)f->k;

		if ((int32_t)f->k >= 0)
			to = (int64_t)i + 1 + f->k;
		if (to < 0 || to >= (int64_t)len)
			return pl_why(err, errlen, -EINVAL, "cBPF insn %zu: jump out of the program", i);
		if (to == (int64_t)i)
			return pl_why(err, errlen, -EINVAL,
				      "cBPF insn %zu: jump to itself (endless loop)", i);
		return 0;
	}
	if (BPF_CLASS(f->code) == BPF_JMP && (i + 1 + f->jt >= len || i + 1 + f->jf >= len))
		return pl_why(err, errlen, -EINVAL, "cBPF insn %zu: jump out of the program", i);
	return 0;
}

int pl_cbpf_validate(const struct sock_filter *prog, size_t len, char *err, size_t errlen)
{
	const char *why;
	int ret;

	if (!prog || !len || len > PL_CBPF_MAX_INSNS)
		return pl_why(err, errlen, -EINVAL, "cBPF program of %zu instructions (1..%u)", len,
			      PL_CBPF_MAX_INSNS);
	for (size_t i = 0; i < len; i++) {
		const struct sock_filter *f = &prog[i];

		why = insn_invalid(f);
		if (why)
			return pl_why(err, errlen, -EINVAL, "cBPF insn %zu (code 0x%02x k 0x%x): %s",
				      i, f->code, f->k, why);
		/*
		 * A constant offset of 2^31 and more is ancillary or header-relative
		 * data to the kernel's socket filters: refused. An X-indexed load's
		 * k of 2^31 and more is not: libpcap emits them (`mpls and geneve
		 * and ip` reads [x + -2]), and its bpf_filter() adds X + k without
		 * wrapping, so the load is past any packet and returns 0, as the
		 * translation's 64-bit X + k does.
		 */
		if (xl_is_load(f->code) && BPF_MODE(f->code) != BPF_IND && (int32_t)f->k < 0)
			return pl_why(err, errlen, -EOPNOTSUPP, "cBPF insn %zu: load from %s (0x%x): "
				      "ancillary data loads are not supported in-kernel",
				      i, ancillary_name(f->k), f->k);
		ret = check_jumps(f, i, len, err, errlen);
		if (ret)
			return ret;
	}
	if (BPF_CLASS(prog[len - 1].code) != BPF_RET)
		return pl_why(err, errlen, -EINVAL, "cBPF program does not end with a return");
	return 0;
}

static bool is_backward(const struct sock_filter *f)
{
	return f->code == (BPF_JMP | BPF_JA) && (int32_t)f->k < 0;
}

/*
 * Copy c of the program sits at [c * len, (c + 1) * len). A backward ja in
 * copy c lands in copy c + 1; in the last copy it returns 0 (the loop ran
 * more than PL_CBPF_MAX_LOOPS times).
 */
int xl_unroll(const struct sock_filter *prog, size_t len, struct sock_filter **out,
	      size_t *out_len)
{
	size_t copies = PL_CBPF_MAX_LOOPS + 1, n = len * copies, i = 0;
	struct sock_filter *u;

	*out = NULL;
	while (i < len && !is_backward(&prog[i]))
		i++;
	if (i == len)
		return 0;	/* no loop */
	u = calloc(n, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (size_t c = 0; c < copies; c++) {
		for (i = 0; i < len; i++) {
			struct sock_filter f = prog[i];

			if (is_backward(&f)) {
				if (c + 1 == copies) {
					f = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
				} else {
					/* i + 1 + k (k < 0), in the next copy */
					f.k = (uint32_t)((int64_t)len + (int32_t)f.k);
				}
			}
			u[c * len + i] = f;
		}
	}
	*out = u;
	*out_len = n;
	return 0;
}
