// SPDX-License-Identifier: GPL-2.0
/*
 * Hand-written C equivalents of the tcpdump expressions bench/filter_bench.c
 * times, the yardstick for the translated programs (pcap/translate.c). Each
 * returns 1 for a match and 0 otherwise, like a translated program, and
 * follows libpcap's code for the expression (`tcpdump -d`): no VLAN tags, no
 * IPv6 extension headers, IPv4 fragments other than the first never match
 * ports. Equivalent on well-formed packets; on truncated ones these bail out
 * at the first incomplete header.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_FRAG_OFF_MASK	0x1fff

struct ports {
	__be16 src, dst;
};

/* IPv4 L4 header at @l4 if the packet is IPv4 @proto, first fragment; else NULL */
static __always_inline void *ipv4_l4(void *data, void *end, __u8 proto)
{
	struct iphdr *ip = data + ETH_HLEN;
	void *l4;

	if ((void *)(ip + 1) > end || ip->protocol != proto ||
	    (ip->frag_off & bpf_htons(IP_FRAG_OFF_MASK)))
		return NULL;
	l4 = (void *)ip + ip->ihl * 4;
	return l4;
}

static __always_inline __u16 eth_proto(void *data, void *end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	return bpf_ntohs(eth->h_proto);
}

/* TCP ports of an IPv4 (first fragment) or IPv6 (no extension header) packet; else NULL */
static __always_inline struct ports *tcp_ports(void *data, void *end)
{
	struct ports *p;

	switch (eth_proto(data, end)) {
	case ETH_P_IPV6: {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return NULL;
		p = (void *)(ip6 + 1);
		break;
	}
	case ETH_P_IP:
		p = ipv4_l4(data, end, IPPROTO_TCP);
		if (!p)
			return NULL;
		break;
	default:
		return NULL;
	}
	return (void *)(p + 1) > end ? NULL : p;
}

/* tcp port 443 */
SEC("xdp")
int ref_tcp_port_443(struct xdp_md *ctx)
{
	struct ports *p = tcp_ports((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	if (!p)
		return 0;
	return p->src == bpf_htons(443) || p->dst == bpf_htons(443);
}

/* host 198.18.0.1 and (tcp or udp) */
SEC("xdp")
int ref_host_tcp_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	const __be32 host = bpf_htonl(0xc6120001);

	if (eth_proto(data, end) != ETH_P_IP || (void *)(ip + 1) > end)
		return 0;
	if (ip->saddr != host && ip->daddr != host)
		return 0;
	return ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP;
}

/* tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn */
SEC("xdp")
int ref_tcp_syn(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *flags;

	if (eth_proto(data, end) != ETH_P_IP)
		return 0;
	flags = ipv4_l4(data, end, IPPROTO_TCP);
	if (!flags)
		return 0;
	flags += 13;
	if ((void *)(flags + 1) > end)
		return 0;
	return (*flags & 0x12) == 0x02;
}

/* ip6 and udp portrange 1000-2000 */
SEC("xdp")
int ref_ip6_udp_portrange(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct ports *p = (void *)(ip6 + 1);
	__u16 s, d;

	if (eth_proto(data, end) != ETH_P_IPV6 || (void *)(ip6 + 1) > end ||
	    ip6->nexthdr != IPPROTO_UDP || (void *)(p + 1) > end)
		return 0;
	s = bpf_ntohs(p->src);
	d = bpf_ntohs(p->dst);
	return (s >= 1000 && s <= 2000) || (d >= 1000 && d <= 2000);
}

/* tcp dst port 22 or tcp dst port 25 or ... (20 ports) */
static __always_inline int port20(__u16 port)
{
	switch (port) {
	case 22: case 25: case 53: case 80: case 110: case 123: case 143: case 161:
	case 389: case 443: case 445: case 587: case 993: case 995: case 1194:
	case 1433: case 3306: case 5432: case 6379: case 8080:
		return 1;
	}
	return 0;
}

SEC("xdp")
int ref_or20(struct xdp_md *ctx)
{
	struct ports *p = tcp_ports((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	if (!p)
		return 0;
	return port20(bpf_ntohs(p->dst));
}

/* baseline: the cost of a test run itself */
SEC("xdp")
int ref_nothing(struct xdp_md *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
