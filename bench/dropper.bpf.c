// SPDX-License-Identifier: GPL-2.0
/*
 * The reference for a drop by prefix (bench/policy_bench.py): the minimal
 * dropper a DDoS user writes by hand. Parse Ethernet and IPv4/IPv6 (no
 * VLAN, no options to walk), one LPM-trie lookup on the source
 * (bench_drop_src) or the destination (bench_drop_dst), one per-CPU counter
 * of packets and bytes, XDP_DROP; anything else XDP_PASS. The same as a
 * tc program (bench_drop_src_tc, by source: TC_ACT_SHOT, else TC_ACT_OK)
 * for the live flood's tc hook. The tries are filled from user space (bpftool map update).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct key4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct cnt {
	__u64 pkts;
	__u64 bytes;
};

#define TRIE(name, ktype)						\
struct {							\
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);			\
	__uint(max_entries, 1024);				\
	__uint(map_flags, BPF_F_NO_PREALLOC);			\
	__type(key, struct ktype);				\
	__type(value, __u32);					\
} name SEC(".maps")

TRIE(drop_src4, key4);
TRIE(drop_src6, key6);
TRIE(drop_dst4, key4);
TRIE(drop_dst6, key6);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cnt);
} drop_cnt SEC(".maps");

/* Is the frame in [data, data_end) (@len on the wire) one to drop? Counted if so. */
/* A trie's answer @hit for a packet of @len bytes: counted when it is one to drop. */
static __always_inline int counted(void *hit, __u32 len)
{
	__u32 zero = 0;
	struct cnt *c;

	if (!hit)
		return 0;
	c = bpf_map_lookup_elem(&drop_cnt, &zero);
	if (c) {
		c->pkts++;
		c->bytes += len;
	}
	return 1;
}

static __always_inline int drop(void *data, void *data_end, __u32 len, int dst)
{
	struct ethhdr *eth = data;
	void *hit;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct key4 k = { .prefixlen = 32 };

		if ((void *)(ip + 1) > data_end)
			return 0;
		__builtin_memcpy(k.addr, dst ? &ip->daddr : &ip->saddr, 4);
		hit = bpf_map_lookup_elem(dst ? (void *)&drop_dst4 : (void *)&drop_src4, &k);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct key6 k = { .prefixlen = 128 };

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		__builtin_memcpy(k.addr, dst ? &ip6->daddr : &ip6->saddr, 16);
		hit = bpf_map_lookup_elem(dst ? (void *)&drop_dst6 : (void *)&drop_src6, &k);
	} else {
		return 0;
	}
	return counted(hit, len);
}

static __always_inline int xdp_drop(struct xdp_md *ctx, int dst)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return drop(data, data_end, (__u32)(data_end - data), dst) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int bench_drop_src(struct xdp_md *ctx)
{
	return xdp_drop(ctx, 0);
}

SEC("xdp")
int bench_drop_dst(struct xdp_md *ctx)
{
	return xdp_drop(ctx, 1);
}

/*
 * tc: the headers are read with bpf_skb_load_bytes(), not direct access: an
 * skb may hold only its Ethernet header in the linear part (a packet socket's
 * TX ring sends the rest as page fragments: trafgen's flood), and a copy of
 * what the lookup needs is cheaper than pulling the headers in.
 */
SEC("tc")
int bench_drop_src_tc(struct __sk_buff *skb)
{
	struct key6 k6 = { .prefixlen = 128 };
	struct key4 k4 = { .prefixlen = 32 };
	__be16 proto;
	void *hit;

	if (bpf_skb_load_bytes(skb, 12, &proto, 2))
		return 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 12, k4.addr, 4))
			return 0;
		hit = bpf_map_lookup_elem(&drop_src4, &k4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, k6.addr, 16))
			return 0;
		hit = bpf_map_lookup_elem(&drop_src6, &k6);
	} else {
		return 0;	/* TC_ACT_OK */
	}
	return counted(hit, skb->len) ? 2 /* TC_ACT_SHOT */ : 0;
}

char LICENSE[] SEC("license") = "GPL";
