/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bounded packet parser shared by the XDP and tc programs: Ethernet, up to
 * two VLAN tags (802.1Q/802.1ad), IPv4 (options, fragments), IPv6 (hop-by-hop,
 * routing, fragment, destination options and AH extension headers), then
 * TCP/UDP/SCTP ports, TCP flags, ICMP/ICMPv6 type and code.
 *
 * Every read is checked against data_end first; the parser never fails the
 * packet, it only records how far it got (err) for the counters.
 */
#ifndef __PKTLENS_BPF_PARSE_H
#define __PKTLENS_BPF_PARSE_H

#include "common.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_ARP_ 0x0806
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_IPV6_ 0x86DD

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_SCTP_ 132

/* How many IPv6 extension headers we walk before giving up on L4. */
#define PL_IPV6_EXT_MAX 6

enum pl_perr {
	PL_PERR_NONE = 0,
	PL_PERR_MALFORMED,	/* no usable IP header: no address matches a rule */
	PL_PERR_TRUNCATED,
	/*
	 * A header that cannot be, past the addresses: TCP's data offset below
	 * 5 words or past the IP length (tcpdump's "bad hdr length"), an IPv4
	 * total length below the header's own (tcpdump's "bad-len"; 0 is not:
	 * a TSO or BIG TCP packet's). Counted with the parse errors, while its
	 * addresses and ports are read and matched.
	 */
	PL_PERR_L4,
};

/* Parse result. key.ifindex/dir/hook are filled in by the caller. */
struct pl_pkt {
	struct pl_flow_key key;
	__u32 len;		/* wire length */
	__u8 l3;		/* enum pl_l3, nothing else (pl_account() indexes by it) */
	__u8 l4;		/* enum pl_l4, nothing else (as l3) */
	__u8 tcp_flags;
	__u8 ports;		/* TCP/UDP/SCTP header read: key.sport/dport are ports */
	union {
		struct {
			__u8 vlans;	/* 0, 1 or 2 */
			__u8 frag;	/* IP fragment (first or not) */
			__u8 opts;	/* IPv4 options or IPv6 extension headers present */
			__u8 err;	/* enum pl_perr */
		};
		__u32 rare;	/* any of them: pl_account()'s one test */
	};
	__u8 l3off;		/* offset of the IP header in the frame */
	__u16 l4off;		/* offset of the L4 header in the frame (ports set) */
	__u16 l4len;		/* IP payload from the L4 header on (IP lengths; 0 if unknown) */
};

/*
 * A 16-bit field in network order, from two byte loads: a 16-bit load and a
 * byte swap would be shorter, but the 5.10 verifier does not bound a byte
 * swap's result, and the tc rule-set programs then exceed its limit.
 */
static __always_inline __u16 pl_get16(const __u8 *b)
{
	return ((__u16)b[0] << 8) | b[1];
}

/*
 * Addresses a word at a time. They sit at 2-byte offsets (the Ethernet
 * header is 14 bytes), and through a __u8 pointer clang splits a 16-byte
 * copy into 16 byte loads with 15 shifts and ors (90 instructions for an
 * IPv6 header's two addresses, 8 with word loads). The JITs take unaligned
 * loads; where an arch wants aligned ones the verifier checks them assuming
 * the IP header aligned (NET_IP_ALIGN), which makes these aligned.
 */
typedef __u32 __attribute__((may_alias)) pl_u32_a;
typedef __u64 __attribute__((may_alias)) pl_u64_a;

/* A 16-byte address from the packet at @src to @dst (8-byte aligned), as it is */
static __always_inline void pl_copy_addr6(__u8 *dst, const __u8 *src)
{
	((pl_u64_a *)dst)[0] = ((const pl_u64_a *)src)[0];
	((pl_u64_a *)dst)[1] = ((const pl_u64_a *)src)[1];
}

/* An IPv4 address from the packet at @src to @dst (8-byte aligned) as ::ffff:a.b.c.d */
static __always_inline void pl_copy_addr4(__u8 *dst, const __u8 *src)
{
	__u64 a = *(const pl_u32_a *)src;

	((pl_u64_a *)dst)[0] = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	((pl_u64_a *)dst)[1] = a << 32 | 0xffff0000ULL;
#else
	((pl_u64_a *)dst)[1] = a | 0xffff00000000ULL;
#endif
}

struct pl_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline __u8 pl_l4_class(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP_:
		return PL_L4_TCP;
	case IPPROTO_UDP_:
		return PL_L4_UDP;
	case IPPROTO_ICMP_:
		return PL_L4_ICMP;
	case IPPROTO_ICMPV6_:
		return PL_L4_ICMPV6;
	case IPPROTO_SCTP_:
		return PL_L4_SCTP;
	default:
		return PL_L4_OTHER;
	}
}

/*
 * Bytes of @proto's header pl_parse_l4() reads: fewer left in the frame and
 * the packet is truncated (0: it reads none). bpf/early.h judges by it too.
 */
static __always_inline __u32 pl_l4_need(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP_:
		return 20;
	case IPPROTO_UDP_:
		return 8;
	case IPPROTO_SCTP_:
		return 12;
	case IPPROTO_ICMP_:
	case IPPROTO_ICMPV6_:
		return 4;
	default:
		return 0;
	}
}

/* No L4 header read (a later fragment, one cut short): ICMP's type and code are unknown. */
static __always_inline void pl_no_l4_header(struct pl_pkt *p)
{
	if (p->l4 == PL_L4_ICMP || p->l4 == PL_L4_ICMPV6) {
		p->key.sport = PL_ICMP_NONE;
		p->key.dport = PL_ICMP_NONE;
	}
}

/*
 * Is TCP's data offset byte @b12 impossible: fewer than 5 words, or more
 * than the @l4len bytes the IP lengths leave (0: unknown, as in a BIG TCP
 * packet's)? bpf/early.h judges by it too.
 */
static __always_inline int pl_tcp_doff_bad(__u8 b12, __u32 l4len)
{
	__u32 doff = b12 >> 4;

	return doff < 5 || (l4len && doff * 4 > l4len);
}

/*
 * Is an IPv4 total length of @tot impossible for a header of @hlen bytes? 0
 * is not: a TSO or BIG TCP packet's, as tcpdump guesses. bpf/early.h judges
 * by it too.
 */
static __always_inline int pl_ipv4_len_bad(__u16 tot, __u32 hlen)
{
	return tot && tot < hlen;
}

/* L4 ports / ICMP type+code / TCP flags at @l4 (each bound a constant, for the verifier). */
static __always_inline void pl_parse_l4(struct pl_pkt *p, void *l4, void *data_end)
{
	__u8 *b = l4;

	switch (p->key.l4proto) {
	case IPPROTO_TCP_:
		if (b + pl_l4_need(IPPROTO_TCP_) > (__u8 *)data_end)
			goto trunc;
		p->tcp_flags = b[13];
		if (pl_tcp_doff_bad(b[12], p->l4len))
			p->err = PL_PERR_L4;
		break;
	case IPPROTO_UDP_:
		if (b + pl_l4_need(IPPROTO_UDP_) > (__u8 *)data_end)
			goto trunc;
		break;
	case IPPROTO_SCTP_:
		if (b + pl_l4_need(IPPROTO_SCTP_) > (__u8 *)data_end)
			goto trunc;
		break;
	case IPPROTO_ICMP_:
	case IPPROTO_ICMPV6_:
		if (b + pl_l4_need(IPPROTO_ICMP_) > (__u8 *)data_end) {
			pl_no_l4_header(p);
			goto trunc;
		}
		p->key.sport = b[0];
		p->key.dport = b[1];
		return;
	default:
		return;
	}
	p->key.sport = pl_get16(b);
	p->key.dport = pl_get16(b + 2);
	p->ports = 1;
	return;
trunc:
	p->err = PL_PERR_TRUNCATED;
}

static __always_inline void pl_parse_ipv4(struct pl_pkt *p, __u8 *ip, void *data_end)
{
	__u32 hlen;
	__u16 frag;

	p->l3 = PL_L3_IPV4;
	if (ip + 20 > (__u8 *)data_end)
		goto trunc;
	if ((ip[0] >> 4) != 4 || (ip[0] & 0xf) < 5) {
		p->err = PL_PERR_MALFORMED;
		return;
	}
	hlen = (ip[0] & 0xf) * 4;
	if (hlen > 20)
		p->opts = 1;
	if (pl_ipv4_len_bad(pl_get16(ip + 2), hlen))
		p->err = PL_PERR_L4;
	/* IPv4-mapped IPv6: ::ffff:a.b.c.d */
	pl_copy_addr4(p->key.saddr, ip + 12);
	pl_copy_addr4(p->key.daddr, ip + 16);
	p->key.l4proto = ip[9];
	p->l4 = pl_l4_class(ip[9]);
	frag = pl_get16(ip + 6);
	if (frag & 0x3fff)		/* MF or offset */
		p->frag = 1;
	if (frag & 0x1fff) {		/* not the first fragment: no L4 header */
		pl_no_l4_header(p);
		return;
	}
	if (ip + hlen > (__u8 *)data_end) {
		pl_no_l4_header(p);
		goto trunc;
	}
	{
		__u16 tot = pl_get16(ip + 2);

		p->l4len = tot > hlen ? tot - hlen : 0;
	}
	p->l4off += hlen;	/* pl_parse() set it to the IP header's offset */
	pl_parse_l4(p, ip + hlen, data_end);
	return;
trunc:
	p->err = PL_PERR_TRUNCATED;
}

/*
 * @v (below 2^16) as it is, but unknown to the verifier: two byte swaps it
 * does not follow. Where paths of different lengths meet (the IPv6
 * extension headers walked), their offsets become one unknown, so the rest
 * of the program is checked once for all of them, not once per path.
 */
static __always_inline __u32 pl_opaque16(__u32 v)
{
	asm volatile("%0 = be16 %0; %0 = be16 %0" : "+r"(v));
	return v;
}

/* Is @nh an IPv6 extension header pl_parse_ipv6() walks? */
static __always_inline int pl_ipv6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_ ||
	       nh == IPPROTO_AH_ || nh == IPPROTO_FRAGMENT_;
}

static __always_inline void pl_parse_ipv6(struct pl_pkt *p, __u8 *ip, void *data_end)
{
	__u8 *h = ip + 40;
	__u8 nh;
	int i;

	p->l3 = PL_L3_IPV6;
	if (ip + 40 > (__u8 *)data_end)
		goto trunc;
	if ((ip[0] >> 4) != 6) {
		p->err = PL_PERR_MALFORMED;
		return;
	}
	pl_copy_addr6(p->key.saddr, ip + 8);
	pl_copy_addr6(p->key.daddr, ip + 24);
	nh = ip[6];

#pragma unroll
	for (i = 0; i < PL_IPV6_EXT_MAX; i++) {
		switch (nh) {
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
			if (h + 2 > (__u8 *)data_end)
				goto trunc;
			p->opts = 1;
			nh = h[0];
			h += ((__u32)h[1] + 1) * 8;
			continue;
		case IPPROTO_AH_:
			if (h + 2 > (__u8 *)data_end)
				goto trunc;
			p->opts = 1;
			nh = h[0];
			h += ((__u32)h[1] + 2) * 4;
			continue;
		case IPPROTO_FRAGMENT_:
			if (h + 8 > (__u8 *)data_end)
				goto trunc;
			p->opts = 1;
			p->frag = 1;
			nh = h[0];
			if (pl_get16(h + 2) & 0xfff8) {
				/* not the first fragment: no L4 header */
				p->key.l4proto = nh;
				p->l4 = pl_l4_class(nh);
				pl_no_l4_header(p);
				return;
			}
			h += 8;
			continue;
		}
		break;
	}
	p->key.l4proto = nh;
	p->l4 = pl_l4_class(nh);
	/* a chain longer than we walk (six headers followed by L4 are walked) */
	if (i == PL_IPV6_EXT_MAX && pl_ipv6_ext(nh))
		return;
	{
		__u32 off = pl_opaque16((__u32)(h - ip)) & 0x3fff, plen = pl_get16(ip + 4);

		h = ip + off;
		p->l4len = plen > off - 40 ? (__u16)(plen - (off - 40)) : 0;
		p->l4off += (__u16)off;	/* from the IP header's offset */
	}
	pl_parse_l4(p, h, data_end);
	return;
trunc:
	p->err = PL_PERR_TRUNCATED;
}

/*
 * Parse the frame in [data, data_end); @len is the wire length. Of its VLAN
 * tags, @tags are walked: 2, or 1 on tc under the tag the stack took off
 * (pl_parse_hwvlan()), so that every hook sees the same two tags.
 */
static __always_inline void pl_parse_tags(struct pl_pkt *p, void *data, void *data_end,
					  __u32 len, int tags)
{
	__u8 *b = data;
	__u16 proto;
	int i;

	__builtin_memset(p, 0, sizeof(*p));
	p->len = len;
	p->l3 = PL_L3_OTHER;
	p->l4 = PL_L4_NONE;
	p->key.vlan = PL_VLAN_NONE;

	if (b + 14 > (__u8 *)data_end) {
		p->err = PL_PERR_TRUNCATED;
		return;
	}
	proto = pl_get16(b + 12);
	b += 14;

#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
			break;
		if (i == 1 && tags < 2)
			break;
		if (b + 4 > (__u8 *)data_end) {
			p->key.l3proto = proto;
			p->err = PL_PERR_TRUNCATED;
			return;
		}
		if (i == 0)
			p->key.vlan = pl_get16(b) & 0x0fff;
		p->vlans++;
		proto = pl_get16(b + 2);
		b += 4;
	}
	p->key.l3proto = proto;
	p->l4off = 14 + 4 * p->vlans;
	p->l3off = (__u8)p->l4off;

	switch (proto) {
	case ETH_P_IP_:
		pl_parse_ipv4(p, b, data_end);
		break;
	case ETH_P_IPV6_:
		pl_parse_ipv6(p, b, data_end);
		break;
	case ETH_P_ARP_:
		p->l3 = PL_L3_ARP;
		break;
	}
}

static __always_inline void pl_parse(struct pl_pkt *p, void *data, void *data_end, __u32 len)
{
	pl_parse_tags(p, data, data_end, len, 2);
}

/*
 * tc: the stack may have moved the outer VLAN tag into skb metadata. Put it
 * back in the picture as it was on the wire: it is the outermost tag, it
 * adds a tag to the count and 4 bytes to the length.
 */
static __always_inline void pl_parse_hwvlan(struct pl_pkt *p, __u32 tci)
{
	p->key.vlan = tci & 0x0fff;
	if (p->vlans < 2)
		p->vlans++;
	p->len += 4;
}

#endif /* __PKTLENS_BPF_PARSE_H */
