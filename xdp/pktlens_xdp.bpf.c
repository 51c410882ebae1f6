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
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"

static __always_inline int pl_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pl_pkt p;

	pl_parse(&p, data, data_end, (__u32)bpf_xdp_get_buff_len(ctx));
	p.key.ifindex = ctx->ingress_ifindex;
	p.key.dir = PL_DIR_IN;
	p.key.hook = PL_HOOK_XDP;
	pl_account(&p, PL_SLOT_XDP_IN, PL_VERDICT_PASS);
	return XDP_PASS;
}

SEC("xdp.frags")
int pktlens_xdp(struct xdp_md *ctx)
{
	return pl_xdp(ctx);
}

SEC("xdp")
int pktlens_xdp_skb(struct xdp_md *ctx)
{
	return pl_xdp(ctx);
}

char LICENSE[] SEC("license") = "GPL";
