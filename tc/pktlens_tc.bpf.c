// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens tc programs: the same parse and accounting as XDP (bpf/), on tc
 * ingress and egress. They return TC_ACT_UNSPEC (TCX_NEXT): counting never
 * changes a packet's fate nor stops the filters and programs after us.
 * Each has a *_main twin for filter chaining, as on XDP (bpf/chain.h).
 */
#include "../bpf/common.h"
#include "../bpf/maps.h"
#include "../bpf/parse.h"
#include "../bpf/account.h"
#include "../bpf/chain.h"

PL_CHAIN_MAP(tc_chain);

#define TC_ACT_UNSPEC_ (-1)

/* Enough linear data for Ethernet, two tags, IPv6 + extension headers, TCP. */
#define PL_TC_PULL 128

static __always_inline int pl_tc(struct __sk_buff *skb, __u32 slot, __u8 dir, __u32 matched)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct pl_pkt p;
	__u32 linear = (__u32)(data_end - data);

	if (linear < PL_TC_PULL && skb->len > linear) {
		bpf_skb_pull_data(skb, skb->len < PL_TC_PULL ? skb->len : PL_TC_PULL);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	pl_parse(&p, data, data_end, skb->len);
	if (skb->vlan_present)
		pl_parse_hwvlan(&p, skb->vlan_tci);
	p.key.ifindex = skb->ifindex;
	p.key.dir = dir;
	p.key.hook = PL_HOOK_TC;
	pl_account(&p, slot, PL_VERDICT_PASS, matched);
	return TC_ACT_UNSPEC_;
}

SEC("tc")
int pktlens_tc_in(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &tc_chain, PL_CHAIN_RULES(PL_DIR_IN));
	return pl_tc(skb, PL_SLOT_TC_IN, PL_DIR_IN, 0);
}

SEC("tc")
int pktlens_tc_in_main(struct __sk_buff *skb)
{
	return pl_tc(skb, PL_SLOT_TC_IN, PL_DIR_IN, pl_chain_result(PL_SLOT_TC_IN));
}

SEC("tc")
int pktlens_tc_out(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &tc_chain, PL_CHAIN_RULES(PL_DIR_OUT));
	return pl_tc(skb, PL_SLOT_TC_OUT, PL_DIR_OUT, 0);
}

SEC("tc")
int pktlens_tc_out_main(struct __sk_buff *skb)
{
	return pl_tc(skb, PL_SLOT_TC_OUT, PL_DIR_OUT, pl_chain_result(PL_SLOT_TC_OUT));
}

char LICENSE[] SEC("license") = "GPL";
