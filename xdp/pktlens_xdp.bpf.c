// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens XDP programs: parse, judge by policy, account, act.
 *
 * pktlens_xdp is "xdp.frags" so it also runs on multi-buffer (jumbo MTU)
 * drivers in native mode; headers are parsed from the first buffer and the
 * whole frame is counted (bpf_xdp_get_buff_len). pktlens_xdp_skb is the same
 * code for generic (skb) mode, deliberately without frags: on Linux 6.18 a
 * frags-capable generic XDP program makes the kernel copy the skb without its
 * MAC header length, and tc ingress programs after it then see the frame
 * from the network header on (measured with both pktlens hooks attached).
 *
 * After counting, a packet a running `pktlens sample` wants is copied into
 * its ring (bpf/sample.h).
 *
 * Chaining (bpf/chain.h, PL_CHAIN_* in include/pktlens/pktlens.h): the entry
 * tail-calls a sampler's expression (SAMPLE slot, which goes on as the entry
 * would), else a chained tcpdump expression (RULES slot), else the policy
 * (POLICY slot), else counts by itself and passes. The expression tail-calls
 * the policy too, else *_main (MAIN slot). The kernel ties a
 * PROG_ARRAY to frags or no frags, so each variant has its own programs.
 * Kernels before 5.18 have no frags: there the loader runs the "xdp"
 * variant in native mode too (loader/features.c).
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"
#include "../bpf/chain.h"
#include "../bpf/policy.h"
#define PL_TCP_CTX struct xdp_md
#include "../bpf/tcp.h"
#define PL_SAMPLE_CTX struct xdp_md
#define PL_SAMPLE_HOOK PL_HOOK_XDP
#include "../bpf/sample.h"

PL_CHAIN_MAP(xdp_chain);
PL_CHAIN_MAP(xdp_skb_chain);

/* Redirect targets of policy rules, by ifindex (loader/policy.c fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, PL_REDIRECT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} redirect_map SEC(".maps");

/* The whole frame, all buffers of a multi-buffer one (the first only before 5.18). */
static __always_inline __u32 pl_xdp_len(struct xdp_md *ctx)
{
	if (pl_has_helper(xdp_get_buff_len))
		return (__u32)bpf_xdp_get_buff_len(ctx);
	return (__u32)(ctx->data_end - ctx->data);
}

/*
 * @flags: PL_ACC_FILTER if the expression matched; @policy: judge by the
 * rule set, walked as enum pl_walk_mode says
 */
static __always_inline int pl_xdp(struct xdp_md *ctx, __u32 flags, const int policy)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pl_frame f = { .ctx = ctx, .len = pl_xdp_len(ctx) };
	struct pl_judgement j = { PL_ACT_NONE, 0, 0, 0, 0 };
	__u32 verdict = PL_VERDICT_PASS;
	int ret = XDP_PASS;
	struct pl_pkt p;

	pl_parse(&p, data, data_end, f.len);
	p.key.ifindex = ctx->ingress_ifindex;
	p.key.dir = PL_DIR_IN;
	p.key.hook = PL_HOOK_XDP;
	/* before the policy: fewer verifier states reach it (bpf/tcp.h) */
	pl_tcp_passive(ctx, &p, PL_SLOT_XDP_IN, 0);
	if (policy) {
		j = pl_policy(&p, PL_SLOT_XDP_IN, policy);
		switch (j.action) {
		case PL_ACT_NONE:
			flags |= PL_ACC_NOMATCH;
			break;
		case PL_ACT_DROP:
			verdict = PL_VERDICT_DROP;
			ret = XDP_DROP;
			if (!(j.flags & PL_RF_FLOWS))
				flags |= PL_ACC_NOFLOW;
			break;
		case PL_ACT_REDIRECT:
			/* a target that is gone drops: steered traffic never leaks in here */
			ret = (int)bpf_redirect_map(&redirect_map, j.arg, XDP_DROP);
			verdict = ret == XDP_REDIRECT ? PL_VERDICT_REDIRECT : PL_VERDICT_DROP;
			break;
		}
	}
	pl_account(&p, PL_SLOT_XDP_IN, verdict, flags);
	pl_sample(&f, &p, PL_SLOT_XDP_IN, verdict, policy ? &j : 0);
	return ret;
}

/*
 * PL_XDP_NO_TAIL builds pktlens_xdp_notail.bpf.o from this file: the same
 * programs and maps, but the entries do not tail-call, for libxdp 1.3's
 * dispatcher on kernels that refuse a tail-calling extension program there
 * (Linux 6.12: a tail call may change packet data, the dispatcher's slot
 * does not). It counts and samples; the chain's stages (filter, policy,
 * sample expressions) are loaded at run time and cannot be called without a
 * tail call, so the loader refuses them on such an attachment
 * (loader/xdp_multi.c).
 */
#ifdef PL_XDP_NO_TAIL
#define PL_XDP_CHAIN(ctx, chain) do { } while (0)
#else
#define PL_XDP_CHAIN(ctx, chain)							\
	do {										\
		bpf_tail_call(ctx, &chain, PL_CHAIN_SAMPLE(PL_DIR_IN));			\
		bpf_tail_call(ctx, &chain, PL_CHAIN_RULES(PL_DIR_IN));			\
		bpf_tail_call(ctx, &chain, PL_CHAIN_POLICY(PL_DIR_IN));			\
	} while (0)
#endif

#define PL_XDP_PROGS(sec, name, chain)							\
SEC(sec)										\
int name(struct xdp_md *ctx)								\
{											\
	PL_XDP_CHAIN(ctx, chain);							\
	return pl_xdp(ctx, 0, PL_WALK_NONE);						\
}											\
											\
SEC(sec)										\
int name##_main(struct xdp_md *ctx)							\
{											\
	return pl_xdp(ctx, pl_chain_result(PL_SLOT_XDP_IN) ? PL_ACC_FILTER : 0,		\
		      PL_WALK_NONE);							\
}											\
											\
SEC(sec)										\
int name##_policy(struct xdp_md *ctx)							\
{											\
	return pl_xdp(ctx, pl_chain_result(PL_SLOT_XDP_IN) ? PL_ACC_FILTER : 0,		\
		      PL_WALK_LOOP);							\
}											\
											\
SEC(sec)										\
int name##_policy_bounded(struct xdp_md *ctx)						\
{											\
	return pl_xdp(ctx, pl_chain_result(PL_SLOT_XDP_IN) ? PL_ACC_FILTER : 0,		\
		      PL_WALK_BOUNDED);							\
}

PL_XDP_PROGS("xdp.frags", pktlens_xdp, xdp_chain)
PL_XDP_PROGS("xdp", pktlens_xdp_skb, xdp_skb_chain)

char LICENSE[] SEC("license") = "GPL";
