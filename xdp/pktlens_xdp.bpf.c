// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens XDP program: parse, account, pass.
 *
 * Loaded as "xdp.frags" so it also runs on multi-buffer (jumbo MTU) drivers;
 * headers are parsed from the first buffer, the length counted is the whole
 * frame (bpf_xdp_get_buff_len).
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"

SEC("xdp.frags")
int pktlens_xdp(struct xdp_md *ctx)
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

char LICENSE[] SEC("license") = "GPL";
