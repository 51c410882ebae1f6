// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens tc programs: the same parse, policy and accounting as XDP (bpf/),
 * on tc ingress and egress. Without a rule that drops or redirects they
 * return TC_ACT_UNSPEC (TCX_NEXT): counting never changes a packet's fate
 * nor stops the filters and programs after us. Chaining as on XDP
 * (xdp/pktlens_xdp.bpf.c).
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"
#include "../bpf/chain.h"
#include "../bpf/policy.h"
#define PL_TCP_CTX struct __sk_buff
#define PL_TCP_GSO_SEGS(ctx) ((ctx)->gso_segs)
#define PL_TCP_IFINDEX(ctx) ((ctx)->ifindex)
#define PL_TCP_LEN(ctx) ((ctx)->len)
#include "../bpf/tcp.h"
#define PL_SAMPLE_CTX struct __sk_buff
#define PL_SAMPLE_HOOK PL_HOOK_TC
#include "../bpf/sample.h"
#include "../bpf/skb.h"
#include "../bpf/early.h"

PL_CHAIN_MAP(tc_chain);

#define TC_ACT_UNSPEC_ (-1)
#define TC_ACT_SHOT_ 2

/*
 * The early judgement (bpf/early.h) of @skb: its headers where they are
 * linear, else a copy of them (the copy's IP header 8-byte aligned), so
 * they are never pulled. A global function: checked once.
 */
__noinline int pl_tc_early(struct __sk_buff *skb, __u32 slot, __u32 flags)
{
	__u8 h[PL_EARLY_TCP6_B12 + 3] __attribute__((aligned(8)));
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	int b12 = -1;

	if (skb->vlan_present || skb->len < PL_EARLY_HDR)
		return PL_EARLY_NONE;
	if (data + PL_EARLY_HDR <= data_end) {
		if (data + PL_EARLY_TCP6_B12 + 1 <= data_end)
			b12 = ((__u8 *)data)[PL_EARLY_TCP6_B12];
		return pl_early(data, pl_skb_avail(skb), skb->len, slot, flags, b12);
	}
	/* the IPv6 TCP data offset's byte too when the frame has it */
	if (skb->len > PL_EARLY_TCP6_B12) {
		if (bpf_skb_load_bytes(skb, 0, h + 2, PL_EARLY_TCP6_B12 + 1))
			return PL_EARLY_NONE;
		b12 = h[2 + PL_EARLY_TCP6_B12];
	} else if (bpf_skb_load_bytes(skb, 0, h + 2, PL_EARLY_HDR)) {
		return PL_EARLY_NONE;
	}
	return pl_early(h + 2, pl_skb_avail(skb), skb->len, slot, flags, b12);
}

static __always_inline int pl_tc(struct __sk_buff *skb, __u32 slot, __u8 dir, __u32 flags,
				 const int policy)
{
	struct pl_frame f = { .ctx = skb, .len = skb->len };
	struct pl_judgement j = { PL_ACT_NONE, 0, 0, 0, 0 };
	__u32 verdict = PL_VERDICT_PASS;
	int ret = TC_ACT_UNSPEC_, early = PL_EARLY_NONE;
	struct pl_pkt p;

	if (policy && pl_early_wanted()) {
		early = pl_tc_early(skb, slot, flags);
		if (early == PL_EARLY_DROP)
			return TC_ACT_SHOT_;
	}
	pl_skb_parse(skb, &p, &f, dir);
	/* before the policy (bpf/tcp.h) */
	pl_tcp_passive(skb, &p, slot, skb->ingress_ifindex);
	if (policy) {
		j = pl_policy(&p, slot, policy, early);
		switch (j.action) {
		case PL_ACT_NONE:
			flags |= PL_ACC_NOMATCH;
			break;
		case PL_ACT_DROP:
			verdict = PL_VERDICT_DROP;
			ret = TC_ACT_SHOT_;
			if (!(j.flags & PL_RF_FLOWS))
				flags |= PL_ACC_NOFLOW;
			break;
		case PL_ACT_REDIRECT:
			verdict = PL_VERDICT_REDIRECT;
			ret = (int)bpf_redirect(j.arg, 0);	/* out of DEV2 */
			break;
		}
	}
	pl_account(&p, slot, verdict, flags);
	pl_sample(&f, &p, slot, verdict, policy ? &j : 0);
	return ret;
}

#define PL_TC_PROGS(name, slot, dir)							\
SEC("tc")										\
int name(struct __sk_buff *skb)								\
{											\
	PL_SAMPLE_STAGE(skb, tc_chain, slot, dir);					\
	bpf_tail_call(skb, &tc_chain, PL_CHAIN_RULES(dir));				\
	bpf_tail_call(skb, &tc_chain, PL_CHAIN_POLICY(dir));				\
	return pl_tc(skb, slot, dir, 0, PL_WALK_NONE);					\
}											\
											\
SEC("tc")										\
int name##_main(struct __sk_buff *skb)							\
{											\
	return pl_tc(skb, slot, dir, pl_chain_result(slot) ? PL_ACC_FILTER : 0,		\
		     PL_WALK_NONE);							\
}											\
											\
SEC("tc")										\
int name##_policy(struct __sk_buff *skb)						\
{											\
	return pl_tc(skb, slot, dir, pl_chain_result(slot) ? PL_ACC_FILTER : 0,		\
		     PL_WALK_LOOP);							\
}											\
											\
SEC("tc")										\
int name##_policy_bounded(struct __sk_buff *skb)					\
{											\
	return pl_tc(skb, slot, dir, pl_chain_result(slot) ? PL_ACC_FILTER : 0,		\
		     PL_WALK_BOUNDED);							\
}

PL_TC_PROGS(pktlens_tc_in, PL_SLOT_TC_IN, PL_DIR_IN)
PL_TC_PROGS(pktlens_tc_out, PL_SLOT_TC_OUT, PL_DIR_OUT)

char LICENSE[] SEC("license") = "GPL";
