// SPDX-License-Identifier: GPL-2.0
/*
 * Capture-only tc programs: what `pktlens sample DEV` attaches for its own
 * duration on an interface pktlens has not attached (loader/capture.c).
 * They parse (for --per-flow's flow key), hand the packet to the sampler
 * (bpf/sample.h) and return TC_ACT_UNSPEC: no counters, no policy, no
 * change to any packet's fate. Chaining as the attached programs do: the
 * entry tail-calls the sampler's expression (SAMPLE slot), which goes on to
 * the MAIN slot, *_main here.
 */
#include "../bpf/common.h"
#include "../bpf/parse.h"
#define PL_SAMPLE_CTX struct __sk_buff
#define PL_SAMPLE_HOOK PL_HOOK_TC
#include "../bpf/sample.h"
#include "../bpf/skb.h"
#include "../bpf/chain.h"

PL_CHAIN_MAP(tc_chain);

#define TC_ACT_UNSPEC_ (-1)

static __always_inline int pl_cap_tc(struct __sk_buff *skb, __u32 slot, __u8 dir)
{
	struct pl_frame f = { .ctx = skb, .len = skb->len };
	struct pl_pkt p;

	pl_skb_parse(skb, &p, &f, dir);
	pl_sample(&f, &p, slot, PL_VERDICT_PASS, 0);
	return TC_ACT_UNSPEC_;
}

#define PL_CAP_TC_PROGS(name, slot, dir)						\
SEC("tc")										\
int name(struct __sk_buff *skb)								\
{											\
	PL_SAMPLE_STAGE(skb, tc_chain, slot, dir);					\
	return pl_cap_tc(skb, slot, dir);						\
}											\
											\
SEC("tc")										\
int name##_main(struct __sk_buff *skb)							\
{											\
	return pl_cap_tc(skb, slot, dir);						\
}

PL_CAP_TC_PROGS(pl_cap_tc_in, PL_SLOT_TC_IN, PL_DIR_IN)
PL_CAP_TC_PROGS(pl_cap_tc_out, PL_SLOT_TC_OUT, PL_DIR_OUT)

char LICENSE[] SEC("license") = "GPL";
