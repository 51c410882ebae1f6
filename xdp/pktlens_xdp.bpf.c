// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens XDP programs: parse, account, pass.
 *
 * pktlens_xdp is "xdp.frags" so it also runs on multi-buffer (jumbo MTU)
 * drivers in native mode; headers are parsed from the first buffer and the
 * whole frame is counted (bpf_xdp_get_buff_len). pktlens_xdp_skb is the same
 * code for generic (skb) mode, deliberately without frags: on Linux 6.18 a
 * frags-capable generic XDP program makes the kernel copy the skb without its
 * MAC header length, and tc ingress programs after it then see the frame
 * from the network header on (measured with both pktlens hooks attached).
 *
 * Each has a *_main twin for filter chaining (bpf/chain.h): the entry
 * tail-calls a chained tcpdump expression if `filter set` put one in its
 * RULES slot, and the expression tail-calls the twin with its verdict. The
 * kernel ties a PROG_ARRAY to frags or no frags, so each variant has its own.
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"
#include "../bpf/chain.h"

PL_CHAIN_MAP(xdp_chain);
PL_CHAIN_MAP(xdp_skb_chain);

static __always_inline int pl_xdp(struct xdp_md *ctx, __u32 matched)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pl_pkt p;

	pl_parse(&p, data, data_end, (__u32)bpf_xdp_get_buff_len(ctx));
	p.key.ifindex = ctx->ingress_ifindex;
	p.key.dir = PL_DIR_IN;
	p.key.hook = PL_HOOK_XDP;
	pl_account(&p, PL_SLOT_XDP_IN, PL_VERDICT_PASS, matched);
	return XDP_PASS;
}

SEC("xdp.frags")
int pktlens_xdp(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &xdp_chain, PL_CHAIN_RULES(PL_DIR_IN));
	return pl_xdp(ctx, 0);
}

SEC("xdp.frags")
int pktlens_xdp_main(struct xdp_md *ctx)
{
	return pl_xdp(ctx, pl_chain_result(PL_SLOT_XDP_IN));
}

SEC("xdp")
int pktlens_xdp_skb(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &xdp_skb_chain, PL_CHAIN_RULES(PL_DIR_IN));
	return pl_xdp(ctx, 0);
}

SEC("xdp")
int pktlens_xdp_skb_main(struct xdp_md *ctx)
{
	return pl_xdp(ctx, pl_chain_result(PL_SLOT_XDP_IN));
}

char LICENSE[] SEC("license") = "GPL";
