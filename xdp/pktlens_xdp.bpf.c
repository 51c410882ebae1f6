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
#include "../bpf/early.h"

PL_CHAIN_MAP(xdp_chain);
PL_CHAIN_MAP(xdp_skb_chain);

/*
 * Redirect targets of policy rules, by ifindex (loader/policy.c fills it):
 * a rule set's and, while it is swapped for another, the other's.
 */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 2 * PL_REDIRECT_MAX);
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

/* The early judgement (bpf/early.h) of a frame of @len bytes on XDP. A global function: checked once. */
__noinline int pl_xdp_early(struct xdp_md *ctx, __u32 len, __u32 flags)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int b12 = -1;

	if (data + PL_EARLY_HDR > data_end)
		return PL_EARLY_NONE;
	if (data + PL_EARLY_TCP6_B12 + 1 <= data_end)
		b12 = ((__u8 *)data)[PL_EARLY_TCP6_B12];
	return pl_early(data, (__u32)(data_end - data), len, PL_SLOT_XDP_IN, flags, b12);
}

#ifdef PL_XDP_NO_TAIL
/*
 * The rule set of pktlens_xdp_notail (see PL_XDP_NO_TAIL below), which
 * cannot tail-call a rule-set program: the rules of the in direction, all
 * of them (address-only rules too: no LPM trie, no field lookup), in
 * (prio, id) order in one array, the one policy_set holds. A commit puts a
 * fresh array there by one map update (loader/policy.c), so each packet
 * meets one whole rule set, as with a PROG_ARRAY swap; the walk takes the
 * array once. Rules the loader refuses here: expressions (compiled code
 * needs a tail call), more than PL_POLICY_LIST_MAX. Needs bpf_loop() (5.17):
 * only Linux 6.12 and later run this object.
 */
struct pl_set_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* each set's own: its rules */
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct pl_rule));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct pl_set_inner);
} policy_set SEC(".maps");

struct pl_set_ctx {
	void *set;
};

/* bpf_loop() callback of pl_set_walk(): rule @i of the set, on policy_walk's copy */
static long pl_set_one(__u32 i, void *ctx)
{
	struct pl_set_ctx *c = ctx;
	struct pl_walk_scratch *s;
	const struct pl_rule *r;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return 1;
	r = bpf_map_lookup_elem(c->set, &i);
	if (!r)
		return 1;	/* past the last rule */
	return pl_walk_apply(r, &s->w, &s->p);
}

/* The walk over the set in policy_set; 0 when there is none. A global function: checked once. */
__noinline int pl_set_walk(__u32 n)
{
	struct pl_set_ctx c;
	__u32 zero = 0;

	c.set = bpf_map_lookup_elem(&policy_set, &zero);
	if (!c.set)
		return 0;
	bpf_loop(n < PL_POLICY_LIST_MAX ? n : PL_POLICY_LIST_MAX, pl_set_one, &c, 0);
	return 1;
}

/* Judge @p by the set in policy_set into *@j; 0 when there is none (no rules) */
static __always_inline int pl_xdp_set(const struct pl_pkt *p, struct pl_judgement *j)
{
	struct pl_walk_scratch *s;
	__u32 zero = 0;

	if (!bpf_map_lookup_elem(&policy_set, &zero))
		return 0;
	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->w, 0, sizeof(s->w));
	s->w.best.prio = 0xffffffff;
	s->w.best.id = 0xffffffff;
	s->w.j.action = PL_ACT_NONE;
	s->w.n = PL_POLICY_LIST_MAX;
	s->w.now = pl_now_coarse();
	s->p = *p;
	if (!pl_set_walk(PL_POLICY_LIST_MAX))
		return 0;
	*j = s->w.j;
	return 1;
}
#endif

/*
 * @flags: PL_ACC_FILTER if the expression matched; @policy: judge by the
 * rule set, walked as enum pl_walk_mode says (pktlens_xdp_notail: by the
 * set in policy_set, if there is one)
 */
static __always_inline int pl_xdp(struct xdp_md *ctx, __u32 flags, const int policy)
{
	struct pl_frame f = { .ctx = ctx, .len = pl_xdp_len(ctx) };
	struct pl_judgement j = { PL_ACT_NONE, 0, 0, 0, 0 };
	__u32 verdict = PL_VERDICT_PASS;
	int ret = XDP_PASS, judged = policy, early = PL_EARLY_NONE;
	struct pl_pkt p;

	if (policy && pl_early_wanted()) {
		early = pl_xdp_early(ctx, f.len, flags);
		if (early == PL_EARLY_DROP)
			return XDP_DROP;
	}
	pl_parse(&p, (void *)(long)ctx->data, (void *)(long)ctx->data_end, f.len);
	p.key.ifindex = ctx->ingress_ifindex;
	p.key.dir = PL_DIR_IN;
	p.key.hook = PL_HOOK_XDP;
	/* before the policy: fewer verifier states reach it (bpf/tcp.h) */
	pl_tcp_passive(ctx, &p, PL_SLOT_XDP_IN, 0);
#ifdef PL_XDP_NO_TAIL
	judged = pl_xdp_set(&p, &j);
#else
	if (policy)
		j = pl_policy(&p, PL_SLOT_XDP_IN, policy, early);
#endif
	if (judged) {
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
	pl_sample(&f, &p, PL_SLOT_XDP_IN, verdict, judged ? &j : 0);
	return ret;
}

/*
 * PL_XDP_NO_TAIL builds pktlens_xdp_notail.bpf.o from this file: the same
 * programs and maps, but the entries do not tail-call, for libxdp 1.3's
 * dispatcher on kernels that refuse a tail-calling extension program there
 * (Linux 6.12: a tail call may change packet data, the dispatcher's slot
 * does not). It counts, samples and judges by field rules (policy_set
 * above); the chain's stages (filter, expression rules, sample expressions)
 * are loaded at run time and cannot be called without a tail call, so the
 * loader refuses them on such an attachment (loader/xdp_multi.c).
 */
#ifdef PL_XDP_NO_TAIL
#define PL_XDP_CHAIN(ctx, chain) do { } while (0)
#else
#define PL_XDP_CHAIN(ctx, chain)							\
	do {										\
		PL_SAMPLE_STAGE(ctx, chain, PL_SLOT_XDP_IN, PL_DIR_IN);			\
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
