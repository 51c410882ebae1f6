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

/* Parse @skb, seen on a tc hook in direction @dir, into @p; @f gets its VLAN metadata. */
static __always_inline void pl_skb_parse(struct __sk_buff *skb, struct pl_pkt *p,
					 struct pl_frame *f, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 linear = (__u32)(data_end - data);

	if (linear < PL_SKB_PULL && skb->len > linear) {
		bpf_skb_pull_data(skb, skb->len < PL_SKB_PULL ? skb->len : PL_SKB_PULL);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	pl_parse(p, data, data_end, skb->len);
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
