// SPDX-License-Identifier: GPL-2.0
/*
 * The references for many flows (bench/xdp_bench.c, issue 19), both run by
 * bench_xdp_cycle's tail call exactly like pktlens_xdp:
 *
 * bench_flowmon: the conventional flow monitor. Parse Ethernet and
 * IPv4/IPv6 and the UDP/TCP ports, a 5-tuple key, one PERCPU_HASH lookup,
 * packets, bytes and bpf_ktime_get_ns() updated in place, an insert on a
 * miss; XDP_PASS.
 *
 * bench_memlimit: the memory limit of any exact per-flow counter. The same
 * parse, then exactly one access into a per-CPU array as large as the flow
 * table (one 64-byte line per flow, index = a hash of the 5-tuple), packets
 * and bytes added there; XDP_PASS. What a lookup costs beyond it is the
 * hash table's and the program's own work, not the cache miss every table
 * of that size pays.
 *
 * The tables are sized by xdp_bench before load (F + 1 entries).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct fkey {
	__u32 src[4], dst[4];
	__u16 sport, dport;
	__u8 proto, pad[3];
};

struct fval {
	__u64 pkts, bytes, last_ns;
};

struct line {
	__u64 pkts, bytes, pad[6];	/* one cache line */
};

/* mem_lines' entries, set by xdp_bench before load (the only .rodata) */
const volatile __u32 mem_entries = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1);		/* set by xdp_bench */
	__type(key, struct fkey);
	__type(value, struct fval);
} mon_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);		/* set by xdp_bench */
	__type(key, __u32);
	__type(value, struct line);
} mem_lines SEC(".maps");

/* Ethernet, IPv4 (any header length) or IPv6 (no extension headers), ports. */
static __always_inline int parse(struct xdp_md *ctx, struct fkey *k)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u16 *ports;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return -1;
		k->src[0] = ip->saddr;
		k->dst[0] = ip->daddr;
		k->proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(k->src, &ip6->saddr, 16);
		__builtin_memcpy(k->dst, &ip6->daddr, 16);
		k->proto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		return -1;
	}
	ports = l4;
	if ((k->proto == IPPROTO_UDP || k->proto == IPPROTO_TCP) && (void *)(ports + 2) <= data_end) {
		k->sport = ports[0];
		k->dport = ports[1];
	}
	return 0;
}

SEC("xdp.frags")
int bench_flowmon(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;
	struct fkey k = {};
	struct fval *v;

	if (parse(ctx, &k))
		return XDP_PASS;
	v = bpf_map_lookup_elem(&mon_flows, &k);
	if (v) {
		v->pkts++;
		v->bytes += len;
		v->last_ns = bpf_ktime_get_ns();
	} else {
		struct fval n = { 1, len, bpf_ktime_get_ns() };

		bpf_map_update_elem(&mon_flows, &k, &n, BPF_NOEXIST);
	}
	return XDP_PASS;
}

static __always_inline __u32 fmix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

SEC("xdp.frags")
int bench_memlimit(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;
	struct fkey k = {};
	struct line *l;
	__u32 h, i;

	if (parse(ctx, &k))
		return XDP_PASS;
	/*
	 * The fields that vary, mixed (murmur3's finalizer) onto the table's
	 * lines. A plain multiply is not enough: addresses and ports are read
	 * in network order, so the bytes that vary fastest sit at the top of
	 * the word, and a multiply only carries bits upwards. The former
	 * multiply-only hash put 100,000 cycling flows on about 13,000 lines,
	 * cached: no table-sized access at all.
	 */
	h = fmix32(k.src[0] ^ k.src[1] ^ k.src[2] ^ k.src[3]);
	h = fmix32(h ^ k.dst[0] ^ k.dst[1] ^ k.dst[2] ^ k.dst[3]);
	h = fmix32(h ^ ((__u32)k.sport << 16 | k.dport) ^ (__u32)k.proto << 8);
	i = (__u32)(((__u64)h * mem_entries) >> 32);
	l = bpf_map_lookup_elem(&mem_lines, &i);
	if (l) {
		l->pkts++;
		l->bytes += len;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
