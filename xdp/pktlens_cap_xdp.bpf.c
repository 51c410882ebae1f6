// SPDX-License-Identifier: GPL-2.0
/*
 * Capture-only XDP program: `pktlens sample DEV --xdp` on an interface
 * pktlens has not attached (loader/capture.c; the tc twin,
 * tc/pktlens_cap_tc.bpf.c, says more). It passes every packet. Not
 * "xdp.frags": in generic mode a frags program would change what tc
 * programs after it see (xdp/pktlens_xdp.bpf.c).
 */
#include "../bpf/common.h"
#include "../bpf/parse.h"
#define PL_SAMPLE_CTX struct xdp_md
#define PL_SAMPLE_HOOK PL_HOOK_XDP
#include "../bpf/sample.h"
#include "../bpf/chain.h"

PL_CHAIN_MAP(xdp_chain);

static __always_inline int cap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = pl_has_helper(xdp_get_buff_len) ? (__u32)bpf_xdp_get_buff_len(ctx) :
						      (__u32)(data_end - data);
	struct pl_frame f = { .ctx = ctx, .len = len };
	struct pl_pkt p;

	pl_parse(&p, data, data_end, len);
	p.key.ifindex = ctx->ingress_ifindex;
	p.key.dir = PL_DIR_IN;
	p.key.hook = PL_HOOK_XDP;
	pl_sample(&f, &p, PL_SLOT_XDP_IN, PL_VERDICT_PASS, 0);
	return XDP_PASS;
}

SEC("xdp")
int pl_cap_xdp(struct xdp_md *ctx)
{
	PL_SAMPLE_STAGE(ctx, xdp_chain, PL_SLOT_XDP_IN, PL_DIR_IN);
	return cap_xdp(ctx);
}

SEC("xdp")
int pl_cap_xdp_main(struct xdp_md *ctx)
{
	return cap_xdp(ctx);
}

char LICENSE[] SEC("license") = "GPL";
