/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The start of every tc program (tc/): the headers made linear, parsed,
 * the tag the NIC took off (skb->vlan_*) put back in the key and the frame.
 * Include after bpf/sample.h with PL_SAMPLE_CTX struct __sk_buff.
 */
#ifndef __PKTLENS_BPF_SKB_H
#define __PKTLENS_BPF_SKB_H

#include "common.h"
#include "parse.h"

/* Enough linear data for Ethernet, two tags, IPv6 + extension headers, TCP. */
#define PL_SKB_PULL 128

/* The bytes of @skb pl_skb_parse() sees: its linear part, after the pull */
static __always_inline __u32 pl_skb_avail(struct __sk_buff *skb)
{
	__u32 linear = (__u32)((void *)(long)skb->data_end - (void *)(long)skb->data);

	if (linear < PL_SKB_PULL && skb->len > linear)
		return skb->len < PL_SKB_PULL ? skb->len : PL_SKB_PULL;
	return linear;
}

/* Parse @skb, seen on a tc hook in direction @dir, into @p; @f gets its VLAN metadata. */
static __always_inline void pl_skb_parse(struct __sk_buff *skb, struct pl_pkt *p,
					 struct pl_frame *f, __u8 dir)
{
	__u32 avail = pl_skb_avail(skb);
	void *data, *data_end;

	if (avail > (__u32)((void *)(long)skb->data_end - (void *)(long)skb->data))
		bpf_skb_pull_data(skb, avail);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	pl_parse_tags(p, data, data_end, skb->len, skb->vlan_present ? 1 : 2);
	if (skb->vlan_present) {
		pl_parse_hwvlan(p, skb->vlan_tci);
		f->vlan_meta = 1;
		f->vlan_tci = (__u16)skb->vlan_tci;
		f->vlan_proto = bpf_ntohs((__u16)skb->vlan_proto);
	}
	p->key.ifindex = skb->ifindex;
	p->key.dir = dir;
	p->key.hook = PL_HOOK_TC;
}

#endif /* __PKTLENS_BPF_SKB_H */
