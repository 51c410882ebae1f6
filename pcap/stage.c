// SPDX-License-Identifier: GPL-2.0
/*
 * Translated programs as stages of a pktlens hook's chain (bpf/chain.h):
 * a new main function calls each translated program as a BPF-to-BPF
 * subprogram, stores the verdict in a per-CPU map the hook reads back, and
 * tail-calls on. The subprograms follow the main function unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xlate.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* MAP_FD[KEY] of this CPU = SRC (a BPF_W or BPF_DW store), if the lookup finds it: 8 insns */
#define STORE_PERCPU(MAP_FD, KEY, SIZE, SRC)                                            \
	BPF_ST_MEM(BPF_W, R10, -4, (int32_t)(KEY)),                                     \
	BPF_LD_MAP_FD(R1, MAP_FD),                                                      \
	BPF_MOV64_REG(R2, R10),                                                         \
	BPF_ALU64_IMM(BPF_ADD, R2, -4),                                                 \
	BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem),                                      \
	BPF_JMP_IMM(BPF_JEQ, R0, 0, 1),                                                 \
	BPF_STX_MEM(SIZE, R0, SRC, 0)

/* tail call CHAIN_FD[SLOT] with the ctx kept in r6: 5 insns, falls through if empty */
#define TAIL_CALL(CHAIN_FD, SLOT)                                                       \
	BPF_MOV64_REG(R1, R6),                                                          \
	BPF_LD_MAP_FD(R2, CHAIN_FD),                                                    \
	BPF_MOV32_IMM(R3, (int32_t)(SLOT)),                                             \
	BPF_CALL_HELPER(BPF_FUNC_tail_call)

/* What a hook returns when the tail call finds an empty slot: the packet goes on. */
static int32_t pass_verdict(enum pl_filter_ctx ctx)
{
	return ctx == PL_FILTER_TC ? -1 /* TC_ACT_UNSPEC */ : XDP_PASS;
}

int pl_ebpf_chain(const struct bpf_insn *filter, size_t cnt, const struct pl_chain_target *t,
		  struct bpf_insn **out, size_t *out_len)
{
	/* what the translated program's caller is: see pl_ebpf_chain() in cbpf.h */
	const struct bpf_insn head[] = {
		BPF_MOV64_REG(R6, R1),			/* r6 = ctx */
		BPF_CALL_REL(0),			/* r0 = filter(ctx), imm set below */
		BPF_MOV32_REG(R7, R0),			/* w7 = verdict */
		STORE_PERCPU(t->res_fd, t->res_key, BPF_W, R7),	/* res[key] = w7 */
	};
	/* per next slot: TAIL_CALL() */
	const size_t nh = ARRAY_LEN(head), per = 5, nt = 2;
	size_t n, at;
	struct bpf_insn *p;

	if (!t->nnext || t->nnext > PL_CHAIN_NEXT_MAX)
		return -EINVAL;
	n = nh + per * t->nnext + nt;
	if (!cnt || cnt > PL_EBPF_MAX_INSNS - n)
		return -E2BIG;
	p = malloc((n + cnt) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, head, sizeof(head));
	p[1].imm = (int32_t)(n - 2);	/* the call goes to p[n]: pc + 1 + imm */
	at = nh;
	for (uint32_t i = 0; i < t->nnext; i++) {
		const struct bpf_insn tail_call[] = { TAIL_CALL(t->chain_fd, t->next[i]) };

		memcpy(p + at, tail_call, sizeof(tail_call));
		at += per;
	}
	/* only if every slot is empty: let the packet go */
	p[at++] = BPF_MOV64_IMM(R0, pass_verdict(t->ctx));
	p[at++] = BPF_EXIT_INSN();
	memcpy(p + n, filter, cnt * sizeof(*p));
	*out = p;
	*out_len = n + cnt;
	return 0;
}

int pl_ebpf_expr_stage(const struct bpf_insn *const *filters, const size_t *counts, size_t n,
		       const struct pl_expr_target *t, struct bpf_insn **out, size_t *out_len)
{
	/* per expression: r1 = r6; call; if r0 == 0 skip 3; r1 = 1; r1 <<= i; r7 |= r1 */
	const size_t per = 6;
	const struct bpf_insn tail[] = {
		STORE_PERCPU(t->bits_fd, t->bits_key, BPF_DW, R7),	/* bits[key] = r7 */
		TAIL_CALL(t->chain_fd, t->next_slot),
		/* the rule set's program is gone: let the packet go */
		BPF_MOV64_IMM(R0, pass_verdict(t->ctx)),
		BPF_EXIT_INSN(),
	};
	const size_t ntail = ARRAY_LEN(tail);
	size_t head, total, at;
	struct bpf_insn *p;

	if (!n || n > PL_EXPR_STAGE_MAX)
		return -EINVAL;
	head = 2 + per * n + ntail;
	total = head;
	for (size_t i = 0; i < n; i++) {
		if (!counts[i] || counts[i] > PL_EBPF_MAX_INSNS - total)
			return -E2BIG;
		total += counts[i];
	}
	p = malloc(total * sizeof(*p));
	if (!p)
		return -ENOMEM;
	p[0] = BPF_MOV64_REG(R6, R1);		/* r6 = ctx */
	p[1] = BPF_MOV64_IMM(R7, 0);		/* r7 = bits */
	at = head;
	for (size_t i = 0; i < n; i++) {
		const struct bpf_insn call[] = {
			BPF_MOV64_REG(R1, R6),
			BPF_CALL_REL((int32_t)(at - (2 + per * i + 1) - 1)),
			BPF_JMP_IMM(BPF_JEQ, R0, 0, 3),
			BPF_MOV64_IMM(R1, 1),
			BPF_ALU64_IMM(BPF_LSH, R1, (int32_t)i),
			BPF_ALU64_REG(BPF_OR, R7, R1),
		};

		memcpy(p + 2 + per * i, call, sizeof(call));
		memcpy(p + at, filters[i], counts[i] * sizeof(*p));
		at += counts[i];
	}
	memcpy(p + 2 + per * n, tail, sizeof(tail));
	*out = p;
	*out_len = total;
	return 0;
}
