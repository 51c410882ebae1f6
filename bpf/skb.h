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

/* Enough linear data for Ethernet, two tags, IPv4 with options or IPv6, TCP. */
#define PL_SKB_PULL 128

/*
 * The bytes of @skb pl_skb_parse() sees: its linear part, after the pull (an
 * IPv6 frame with extension headers may get more, see pl_skb_parse())
 */
static __always_inline __u32 pl_skb_avail(struct __sk_buff *skb)
{
	__u32 linear = (__u32)((void *)(long)skb->data_end - (void *)(long)skb->data);

	if (linear < PL_SKB_PULL && skb->len > linear)
		return skb->len < PL_SKB_PULL ? skb->len : PL_SKB_PULL;
	return linear;
}

/*
 * The bytes pl_parse_tags() reads of @skb (first bytes in [@data, @data_end))
 * when it is IPv6 with extension headers after the Ethernet header and up to
 * @tags VLAN tags: to its transport header's 20th byte, the extension headers
 * walked as pl_parse_ipv6() walks them, their lengths read with
 * bpf_skb_load_bytes() (at most 14 + 8 + 40 + 6 x 2048 + 20 bytes). 0 for any
 * other frame.
 */
static __always_inline __u32 pl_skb_ext6_need(struct __sk_buff *skb, const __u8 *data,
					      const void *data_end, int tags)
{
	const __u8 *b = data + 12;
	__u8 nh, e[2];
	__u32 h;
	int i;

#pragma unroll
	for (i = 0; i < 2; i++) {
		if (b + 2 > (const __u8 *)data_end)
			return 0;
		if (pl_get16(b) != ETH_P_8021Q_ && pl_get16(b) != ETH_P_8021AD_)
			break;
		if (i == 1 && tags < 2)
			break;
		b += 4;
	}
	/* b: the ethertype; the IPv6 header follows, its next header at 6 */
	if (b + 9 > (const __u8 *)data_end || pl_get16(b) != ETH_P_IPV6_ || !pl_ipv6_ext(b[8]))
		return 0;
	nh = b[8];
	h = (__u32)(b - data) + 2 + 40;
#pragma unroll
	for (i = 0; i < PL_IPV6_EXT_MAX; i++) {
		if (!pl_ipv6_ext(nh) || bpf_skb_load_bytes(skb, h, e, 2))
			break;
		if (nh == IPPROTO_FRAGMENT_)
			h += 8;
		else if (nh == IPPROTO_AH_)
			h += ((__u32)e[1] + 2) * 4;
		else
			h += ((__u32)e[1] + 1) * 8;
		nh = e[0];
	}
	return h + 20;
}

/* Parse @skb, seen on a tc hook in direction @dir, into @p; @f gets its VLAN metadata. */
static __always_inline void pl_skb_parse(struct __sk_buff *skb, struct pl_pkt *p,
					 struct pl_frame *f, __u8 dir)
{
	__u32 avail = pl_skb_avail(skb), linear;
	__u32 vlan = skb->vlan_present;
	int tags = vlan ? 1 : 2;
	void *data, *data_end;

	if (avail > (__u32)((void *)(long)skb->data_end - (void *)(long)skb->data))
		bpf_skb_pull_data(skb, avail);
	/*
	 * IPv6 extension headers can reach past those bytes (up to 2048 each) in
	 * a frame whose headers are not all linear (a packet socket's frame of
	 * more than a page has only its Ethernet header there): pull what the
	 * parse reads of them, else a whole frame would count as truncated, its
	 * ports unread, where XDP and tcpdump read them
	 */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	linear = (__u32)(data_end - data);
	if (skb->len > linear) {
		__u32 need = pl_skb_ext6_need(skb, data, data_end, tags);

		if (need > linear)
			bpf_skb_pull_data(skb, need < skb->len ? need : skb->len);
	}
	/* loaded again on both paths: one verifier state for the parse, no packet range kept */
	data = (void *)(long)*(volatile __u32 *)&skb->data;
	data_end = (void *)(long)*(volatile __u32 *)&skb->data_end;
	pl_parse_tags(p, data, data_end, skb->len, tags);
	if (vlan) {
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
