// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel drops on tracepoints (kprobes and fentry are not available here):
 * skb:kfree_skb with its drop reason (Linux 5.17+; before, the loader picks
 * the variant without it and drops count per location only), and the XDP
 * failures the stack never sees as skbs: xdp:xdp_exception and the redirect
 * errors. Counted here, per CPU, by namespace, device, reason, location and
 * protocol (drop_stats), optionally per flow (drop_flows); --events adds one
 * rate-limited ring record per drop. Skbs freed without a drop (consumed)
 * do not reach kfree_skb since 5.17 (consume_skb), and SKB_CONSUMED is
 * skipped where a kernel passes it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "pktlens/drops.h"
#include "pktlens/pktlens.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_SCTP_ 132
#define IPPROTO_ICMP_ 1
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IPV6_EXT_MAX 6
#define NO_HEADER 0xffff

/* An IPv6 extension header the walk in parse() steps over */
static __always_inline bool is_ipv6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_FRAGMENT_ ||
	       nh == IPPROTO_AH_ || nh == IPPROTO_DSTOPTS_;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_drop_cfg);
} drop_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pl_drop_key);
	__type(value, struct pl_drop_val);
} drop_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pl_drop_flow_key);
	__type(value, struct pl_drop_flow_val);
} drop_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} drop_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_DROP_LOST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_lost SEC(".maps");

/* --events rate limit: a one-second window per CPU */
struct rate {
	__u64 since_ns;
	__u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate);
} drop_rate SEC(".maps");

static __always_inline const struct pl_drop_cfg *cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&drop_cfg, &zero);
}

static __always_inline void lost(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&drop_lost, &which);

	if (v)
		(*v)++;
}

/*
 * The device's namespace, index and name into @k; false when cfg filters it
 * out. Without a device, the socket's namespace (@sk_netns) and the index of
 * the device the skb arrived on (@iif, skb->skb_iif: TCP's receive path lets
 * go of skb->dev, not of that), its name left to user space.
 */
static __always_inline bool dev_key(const struct net_device *dev, __u64 sk_netns, __u32 iif,
				    const struct pl_drop_cfg *cf, struct pl_drop_key *k)
{
	if (dev) {
		k->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
		k->ifindex = BPF_CORE_READ(dev, ifindex);
		BPF_CORE_READ_INTO(&k->dev, dev, name);
	} else {
		k->netns = sk_netns;
		k->ifindex = sk_netns ? iif : 0;	/* an index means nothing without its namespace */
	}
	if (cf->netns && cf->netns != k->netns)
		return false;
	return !cf->ifindex || cf->ifindex == k->ifindex;
}

static __always_inline void count(const struct pl_drop_key *k, __u64 bytes)
{
	struct pl_drop_val *v = bpf_map_lookup_elem(&drop_stats, k);

	if (v) {
		v->packets++;
		v->bytes += bytes;
		return;
	}
	{
		struct pl_drop_val n = { 1, bytes };

		if (!bpf_map_update_elem(&drop_stats, k, &n, BPF_NOEXIST))
			return;
	}
	v = bpf_map_lookup_elem(&drop_stats, k);	/* another CPU's update came first */
	if (v) {
		v->packets++;
		v->bytes += bytes;
	} else {
		lost(PL_DROP_LOST_TABLE);
	}
}

static __always_inline bool rate_ok(const struct pl_drop_cfg *cf)
{
	__u32 zero = 0;
	struct rate *r = bpf_map_lookup_elem(&drop_rate, &zero);
	__u64 now = bpf_ktime_get_ns();

	if (!r)
		return false;
	if (now - r->since_ns >= 1000000000ULL) {
		r->since_ns = now;
		r->n = 0;
	}
	if (r->n >= cf->events_per_sec) {
		lost(PL_DROP_LOST_RATE);
		return false;
	}
	r->n++;
	return true;
}

static __always_inline void event(const struct pl_drop_cfg *cf, const struct pl_drop_key *k,
				  __u32 len, const unsigned char *hdr, __u32 caplen)
{
	struct pl_drop_event *e;

	if (!(cf->flags & PL_DROP_CFG_EVENTS) || !rate_ok(cf))
		return;
	e = bpf_ringbuf_reserve(&drop_events, sizeof(*e), 0);
	if (!e) {
		lost(PL_DROP_LOST_RING);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->k = *k;
	e->len = len;
	e->caplen = hdr ? (caplen < PL_DROP_SNAP ? caplen : PL_DROP_SNAP) : 0;
	if (!hdr || bpf_probe_read_kernel(e->data, sizeof(e->data), hdr))
		__builtin_memset(e->data, 0, sizeof(e->data));
	bpf_ringbuf_submit(e, 0);
}

/* L3/L4 of @skb into @k, and its flow into @f; the length from the network header, or skb->len. */
static __always_inline __u32 parse(const struct sk_buff *skb, struct pl_drop_key *k,
				   struct pl_drop_flow_key *f, const unsigned char **hdr,
				   __u32 *caplen)
{
	unsigned char *head = BPF_CORE_READ(skb, head), *nhp;
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u32 len = BPF_CORE_READ(skb, len), tail = BPF_CORE_READ(skb, tail), l4off = 0;
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u16 ports[2] = { 0, 0 };

	k->l3 = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	*hdr = NULL;
	*caplen = 0;
	if (nh == NO_HEADER || !head)
		return len;
	nhp = head + nh;
	if (data >= nhp)
		len += data - nhp;	/* the IP layer pulled its header already */
	else if (nhp - data <= len)
		len -= nhp - data;	/* on transmit, data is still at the link-layer header */
	*hdr = nhp;
	*caplen = tail > nh ? tail - nh : 0;
	if (k->l3 == ETH_P_IP_) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), nhp) || ip.version != 4)
			return len;
		k->l4 = ip.protocol;
		f->daddr[10] = f->daddr[11] = f->saddr[10] = f->saddr[11] = 0xff;
		__builtin_memcpy(f->saddr + 12, &ip.saddr, 4);
		__builtin_memcpy(f->daddr + 12, &ip.daddr, 4);
		if (!(ip.frag_off & bpf_htons(0x1fff)))
			l4off = nh + ip.ihl * 4;
	} else if (k->l3 == ETH_P_IPV6_) {
		__u32 off = nh + sizeof(struct ipv6hdr);
		struct ipv6hdr ip6;
		__u8 nexthdr;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), nhp) || ip6.version != 6)
			return len;
		nexthdr = ip6.nexthdr;
		BPF_CORE_READ_INTO(&f->saddr, &ip6, saddr);
		BPF_CORE_READ_INTO(&f->daddr, &ip6, daddr);
		/*
		 * the protocol and ports past the extension headers, as the packet
		 * programs (bpf/parse.h) and the flow table have them; a later
		 * fragment has no ports
		 */
		for (int i = 0; i < IPV6_EXT_MAX; i++) {
			__u8 eh[4];

			if (!is_ipv6_ext(nexthdr) || bpf_probe_read_kernel(eh, sizeof(eh), head + off))
				break;
			if (nexthdr == IPPROTO_FRAGMENT_) {
				nexthdr = eh[0];
				if (((eh[2] << 8) | eh[3]) & 0xfff8) {
					off = 0;	/* not the first fragment */
					break;
				}
				off += 8;
			} else {
				off += nexthdr == IPPROTO_AH_ ? ((__u32)eh[1] + 2) * 4 :
				       ((__u32)eh[1] + 1) * 8;
				nexthdr = eh[0];
			}
		}
		k->l4 = nexthdr;
		l4off = is_ipv6_ext(nexthdr) ? 0 : off;	/* a chain longer than we walk: no ports */
	} else {
		return len;
	}
	f->l4 = k->l4;
	if (l4off && (k->l4 == IPPROTO_TCP_ || k->l4 == IPPROTO_UDP_ || k->l4 == IPPROTO_SCTP_ ||
		      k->l4 == IPPROTO_ICMP_ || k->l4 == IPPROTO_ICMPV6_) &&
	    !bpf_probe_read_kernel(ports, sizeof(ports), head + l4off)) {
		if (k->l4 == IPPROTO_ICMP_ || k->l4 == IPPROTO_ICMPV6_) {
			f->sport = ((__u8 *)ports)[0];	/* type, code, as the flow table has them */
			f->dport = ((__u8 *)ports)[1];
		} else {
			f->sport = bpf_ntohs(ports[0]);
			f->dport = bpf_ntohs(ports[1]);
		}
	} else if (k->l4 == IPPROTO_ICMP_ || k->l4 == IPPROTO_ICMPV6_) {
		f->sport = PL_ICMP_NONE;	/* no header read: not Echo Reply's 0/0 */
		f->dport = PL_ICMP_NONE;
	}
	return len;
}

static __always_inline void flow(const struct pl_drop_cfg *cf, struct pl_drop_flow_key *f,
				 const struct pl_drop_key *k, __u32 bytes)
{
	struct pl_drop_flow_val *v;

	if (!(cf->flags & PL_DROP_CFG_FLOWS) || !f->l4)
		return;
	f->netns = k->netns;
	v = bpf_map_lookup_elem(&drop_flows, f);
	if (v) {
		v->packets++;
		v->bytes += bytes;
		v->reason = k->reason;
		v->ifindex = k->ifindex;
		v->last_ns = bpf_ktime_get_ns();
	} else {
		struct pl_drop_flow_val n = { 1, bytes, k->reason, k->ifindex, bpf_ktime_get_ns() };

		bpf_map_update_elem(&drop_flows, f, &n, BPF_ANY);
	}
}

/*
 * @rx_sk: the socket the packet was received for, when the tracepoint says
 * (Linux 6.11 and later), else NULL: a drop without a device (TCP's receive
 * path has let go of it) counts in that socket's namespace.
 */
static __always_inline int kfree(const struct sk_buff *skb, __u64 location, __u32 reason,
				 const struct sock *rx_sk)
{
	const struct pl_drop_cfg *cf = cfg();
	struct pl_drop_flow_key f;
	struct pl_drop_key k;
	const unsigned char *hdr;
	__u32 bytes, caplen;
	__u64 sk_netns = 0;
	struct sock *sk;

	if (!cf)
		return 0;
	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memset(&f, 0, sizeof(f));
	sk = BPF_CORE_READ(skb, sk);
	if (!sk)
		sk = (struct sock *)rx_sk;
	if (sk)
		sk_netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!dev_key(BPF_CORE_READ(skb, dev), sk_netns, BPF_CORE_READ(skb, skb_iif), cf, &k))
		return 0;
	k.kind = PL_DROP_KFREE;
	k.reason = reason;
	k.location = location;
	bytes = parse(skb, &k, &f, &hdr, &caplen);
	count(&k, bytes);
	flow(cf, &f, &k, bytes);
	event(cf, &k, bytes, hdr, caplen);
	return 0;
}

static __always_inline bool consumed(enum skb_drop_reason reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED);
}

/* 5.17 to 6.10: a reason, no socket (probes/drops.c picks one of the three by the kernel's BTF) */
SEC("tp_btf/kfree_skb")
int BPF_PROG(pl_drop_kfree, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	if (consumed(reason))
		return 0;	/* freed, not dropped */
	return kfree(skb, (__u64)location, reason, NULL);
}

/* 6.11 and later: the socket a received packet was for, too */
SEC("tp_btf/kfree_skb")
int BPF_PROG(pl_drop_kfree_sk, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	if (consumed(reason))
		return 0;
	return kfree(skb, (__u64)location, reason, rx_sk);
}

/* Kernels before 5.17: the tracepoint has no reason (loader/features.c picks this one). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(pl_drop_kfree_noreason, struct sk_buff *skb, void *location)
{
	return kfree(skb, (__u64)location, PL_DROP_NO_REASON, NULL);
}

static __always_inline int xdp_fail(const struct net_device *dev, __u32 kind, __u32 reason)
{
	const struct pl_drop_cfg *cf = cfg();
	struct pl_drop_key k;

	if (!cf)
		return 0;
	__builtin_memset(&k, 0, sizeof(k));
	if (!dev_key(dev, 0, 0, cf, &k))
		return 0;
	k.kind = kind;
	k.reason = reason;
	count(&k, 0);
	event(cf, &k, 0, NULL, 0);
	return 0;
}

SEC("tp_btf/xdp_exception")
int BPF_PROG(pl_drop_xdp_exc, const struct net_device *dev, const struct bpf_prog *xdp, __u32 act)
{
	return xdp_fail(dev, PL_DROP_XDP_EXCEPTION, act);
}

SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(pl_drop_xdp_rdr, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err)
{
	return xdp_fail(dev, PL_DROP_XDP_REDIRECT, -err);
}

/* Gone from newer kernels (a map redirect's error is xdp_redirect_err there). */
SEC("tp_btf/xdp_redirect_map_err")
int BPF_PROG(pl_drop_xdp_rdrm, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err)
{
	return xdp_fail(dev, PL_DROP_XDP_REDIRECT, -err);
}

char LICENSE[] SEC("license") = "GPL";
