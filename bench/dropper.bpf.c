// SPDX-License-Identifier: GPL-2.0
/*
 * The reference for a drop by prefix (bench/policy_bench.py): the minimal
 * dropper a DDoS user writes by hand. Parse Ethernet and IPv4/IPv6 (no
 * VLAN, no options to walk), one LPM-trie lookup on the source
 * (bench_drop_src) or the destination (bench_drop_dst), one per-CPU counter
 * of packets and bytes, XDP_DROP; anything else XDP_PASS. The tries are
 * filled from user space (bpftool map update).
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

static __always_inline int drop(struct xdp_md *ctx, int dst)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	struct cnt *c;
	void *hit;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct key4 k = { .prefixlen = 32 };

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		__builtin_memcpy(k.addr, dst ? &ip->daddr : &ip->saddr, 4);
		hit = bpf_map_lookup_elem(dst ? (void *)&drop_dst4 : (void *)&drop_src4, &k);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct key6 k = { .prefixlen = 128 };

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		__builtin_memcpy(k.addr, dst ? &ip6->daddr : &ip6->saddr, 16);
		hit = bpf_map_lookup_elem(dst ? (void *)&drop_dst6 : (void *)&drop_src6, &k);
	} else {
		return XDP_PASS;
	}
	if (!hit)
		return XDP_PASS;
	c = bpf_map_lookup_elem(&drop_cnt, &zero);
	if (c) {
		c->pkts++;
		c->bytes += (__u64)(data_end - data);
	}
	return XDP_DROP;
}

SEC("xdp")
int bench_drop_src(struct xdp_md *ctx)
{
	return drop(ctx, 0);
}

SEC("xdp")
int bench_drop_dst(struct xdp_md *ctx)
{
	return drop(ctx, 1);
}

char LICENSE[] SEC("license") = "GPL";
