// SPDX-License-Identifier: GPL-2.0
/*
 * TCP probes on tracepoints (kprobes and fentry are not available here):
 * retransmits (tcp:tcp_retransmit_skb, tcp:tcp_retransmit_synack), smoothed
 * RTT per received segment (tcp:tcp_probe, aggregated here into log2
 * histograms) and connect latency (sock:inet_sock_set_state, SYN_SENT to
 * ESTABLISHED). tp_btf gives typed socket pointers, read with CO-RE, so each
 * record carries the socket's network namespace: connections with the same
 * 4-tuple in two namespaces stay apart, and tcp_cfg.netns keeps one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "pktlens/pktlens.h"

#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_SYN_RECV_ 3
#define TCP_CLOSE_ 7
#define EAGAIN_ 11
#define ENOMEM_ 12
#define EBUSY_ 16
#define ENOBUFS_ 105
#define EHOSTUNREACH_ 113

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_tcp_cfg);
} tcp_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} tcp_events SEC(".maps");

/* Retransmits per connection, for the join with the XDP/tc flows (pinned by attach --probes tcp). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pl_tcp_tuple);
	__type(value, struct pl_tcp_conn);
} conn_retrans SEC(".maps");

/*
 * Every segment retrans() counted, per CPU: the namespace's total,
 * which conn_retrans cannot give past 65,536 connections (an LRU: an
 * eviction takes its connection's count along). A counter that never goes
 * down while the probe runs (pktlens_tcp_retransmit_segments_total).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rtx_total SEC(".maps");

/*
 * Sockets that began while the retransmit probe ran (note_birth()), with
 * their tcp_sock.total_retrans then: all their retransmits since are the
 * probe's to count (rtx_segs()).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} rtx_born SEC(".maps");

/* Records the ring had no room for. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tcp_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pl_tcp_hist_key);
	__type(value, struct pl_tcp_hist);
} rtt_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_tcp_hist);
} connlat_hist SEC(".maps");

/* When each connection was born (its first state before FIN_WAIT1), for tcp life. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} born SEC(".maps");

/* When each connecting socket entered SYN_SENT. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} syn_sent SEC(".maps");

static __always_inline const struct pl_tcp_cfg *cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tcp_cfg, &zero);
}

/* Fill @t from @c; false when its namespace is not the one asked for. */
static __always_inline bool tuple(const struct sock_common *c, const struct pl_tcp_cfg *cf,
				  struct pl_tcp_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->netns = BPF_CORE_READ(c, skc_net.net, ns.inum);
	if (cf && cf->netns && cf->netns != t->netns)
		return false;
	t->family = BPF_CORE_READ(c, skc_family);
	t->lport = BPF_CORE_READ(c, skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
	if (t->family == AF_INET6_) {
		BPF_CORE_READ_INTO(&t->laddr, c, skc_v6_rcv_saddr);	/* all 16 bytes: &, not the array */
		BPF_CORE_READ_INTO(&t->raddr, c, skc_v6_daddr);
	} else {
		__u32 l = BPF_CORE_READ(c, skc_rcv_saddr), r = BPF_CORE_READ(c, skc_daddr);

		t->laddr[10] = t->laddr[11] = t->raddr[10] = t->raddr[11] = 0xff;
		__builtin_memcpy(t->laddr + 12, &l, 4);
		__builtin_memcpy(t->raddr + 12, &r, 4);
	}
	return true;
}

static __always_inline void emit(const struct pl_tcp_event *e)
{
	if (bpf_ringbuf_output(&tcp_events, (void *)e, sizeof(*e), 0)) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&tcp_lost, &zero);

		if (lost)
			(*lost)++;
	}
}

static __always_inline __u32 log2_us(__u64 us)
{
	__u32 k = 0;

#pragma unroll
	for (int i = 0; i < PL_TCP_HIST_SLOTS - 1; i++)
		if (us >> (i + 1))
			k = i + 1;
	return k;
}

static __always_inline void hist_add(struct pl_tcp_hist *h, __u64 us)
{
	__u32 k = log2_us(us);

	if (k < PL_TCP_HIST_SLOTS)
		h->slot[k]++;
	h->count++;
	h->sum_us += us;
	if (us > h->max_us)
		h->max_us = us;
}

/*
 * Segments the kernel counted in TcpRetransSegs for this retransmit of @sk,
 * and since its last one seen here: the socket's own total (tcp_sock.
 * total_retrans, which grows with TcpRetransSegs) less the total at its
 * last event, or at its start for a socket that began under the probe.
 * Exact whatever the error of the transmit, and also for retransmits the
 * tracepoint did not show (a kernel before 6.16 shows only those sent): the
 * next event makes up for them. A socket first seen here that began before
 * the probe counts this event's segments, when its error says the kernel
 * counted it (@counted).
 */
static __always_inline __u32 rtx_segs(const struct sock *sk, const struct sk_buff *skb,
				      const struct pl_tcp_conn *c, __u32 total, bool counted)
{
	const struct tcp_skb_cb *cb = (const void *)&skb->cb[0];
	__u64 key = (__u64)(unsigned long)sk;
	__u32 segs, *born;

	if (c && c->sk == key && (__s32)(total - c->total) >= 0)
		return total - c->total;
	born = bpf_map_lookup_elem(&rtx_born, &key);
	if (born && (__s32)(total - *born) >= 0)
		return total - *born;
	if (!counted)
		return 0;
	segs = BPF_CORE_READ(cb, tcp_gso_segs);	/* tcp_skb_pcount() */
	return segs ? segs : 1;
}

static __always_inline int retrans(const struct sock *sk, const struct sk_buff *skb, __u32 kind,
				   int err, bool counted)
{
	const struct pl_tcp_cfg *cf = cfg();
	struct pl_tcp_conn *c;
	struct pl_tcp_event e;
	__u32 segs = 1, total = 0, zero = 0;
	__u64 *all;

	if (!tuple(&sk->__sk_common, cf, &e.t))
		return 0;
	c = bpf_map_lookup_elem(&conn_retrans, &e.t);
	if (skb) {
		total = BPF_CORE_READ((const struct tcp_sock *)sk, total_retrans);
		segs = rtx_segs(sk, skb, c, total, counted);
		if (!segs)
			return 0;	/* not sent, and not counted: the kernel tries again */
	}
	all = bpf_map_lookup_elem(&rtx_total, &zero);
	if (all)	/* atomic: the SYN-ACK program may run nested on this CPU */
		__sync_fetch_and_add(all, segs);
	if (c) {
		__sync_fetch_and_add(&c->retrans, 1);
		__sync_fetch_and_add(&c->segs, segs);
		if (skb) {
			c->sk = (__u64)(unsigned long)sk;
			c->total = total;
		}
	} else {
		struct pl_tcp_conn n = { .retrans = 1, .segs = segs, .total = total };

		if (skb)
			n.sk = (__u64)(unsigned long)sk;
		bpf_map_update_elem(&conn_retrans, &e.t, &n, BPF_NOEXIST);
	}
	if (cf && (cf->flags & PL_TCP_CFG_QUIET))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.type = PL_TCP_EV_RETRANS;
	e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e.kind = kind == PL_TCP_RTX_DATA && e.state == TCP_SYN_SENT_ ? PL_TCP_RTX_SYN : kind;
	e.segs = segs;
	e.lat_ns = 0;
	e.tx_bytes = e.rx_bytes = 0;
	e.err = err;
	e.pad = 0;
	emit(&e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(pl_tcp_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	/*
	 * The tracepoint fires for every try. These errors end it before the
	 * kernel counts TcpRetransSegs (still in the host queue, no memory, no
	 * window, no route); a transmit that fails after (a firewall drop, no
	 * buffers) is counted, and reported here with its error. rtx_segs()
	 * goes by the socket's own count where it can.
	 *
	 * A positive err is no errno but the device queue's NET_XMIT_DROP (a
	 * qdisc or tc egress drop, a full veth peer), which tcp_transmit_skb()
	 * passes up raw: -ENOBUFS, as the kernel's net_xmit_errno() names it.
	 */
	if (err > 0)
		err = -ENOBUFS_;
	return retrans(sk, skb, PL_TCP_RTX_DATA, err,
		       err != -EBUSY_ && err != -ENOMEM_ && err != -EAGAIN_ && err != -EHOSTUNREACH_);
}

/*
 * The same on kernels whose tracepoint has no err argument (before 6.16):
 * there it fires only for a retransmit that was sent (the loader picks the
 * variant from the kernel's BTF, loader/features.c); one counted but not
 * sent shows in the socket's count at its next event.
 */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(pl_tcp_retransmit_noerr, const struct sock *sk, const struct sk_buff *skb)
{
	return retrans(sk, skb, PL_TCP_RTX_DATA, 0, true);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(pl_tcp_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	/* the request's own addresses and ports, not the listener's; one segment */
	return retrans((const struct sock *)req, NULL, PL_TCP_RTX_SYNACK, 0, true);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(pl_tcp_rtt, struct sock *sk, struct sk_buff *skb)
{
	const struct pl_tcp_cfg *cf = cfg();
	struct pl_tcp_hist_key k = {};
	struct pl_tcp_hist *h;
	struct pl_tcp_tuple t;
	__u32 srtt;

	srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;
	if (!srtt || !cf || !tuple(&sk->__sk_common, cf, &t))
		return 0;
	if (cf->rtt_by == PL_TCP_BY_RADDR) {
		k.netns = t.netns;
		__builtin_memcpy(k.raddr, t.raddr, 16);
	} else if (cf->rtt_by == PL_TCP_BY_RPORT) {
		k.netns = t.netns;
		k.rport = t.rport;
	}
	h = bpf_map_lookup_elem(&rtt_hist, &k);
	if (!h) {
		struct pl_tcp_hist zero = {};

		bpf_map_update_elem(&rtt_hist, &k, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&rtt_hist, &k);
		if (!h)
			return 0;
	}
	hist_add(h, srtt);
	return 0;
}

#define TCP_FIN_WAIT1_ 4

/* tcp life: note a connection's birth, and report it when it closes. */
static __always_inline void life(const struct sock *sk, int newstate, __u64 now,
				 const struct pl_tcp_cfg *cf)
{
	__u64 key = (__u64)sk, *b;
	struct pl_tcp_event e;

	if (newstate < TCP_FIN_WAIT1_) {
		bpf_map_update_elem(&born, &key, &now, BPF_NOEXIST);
		return;
	}
	if (newstate != TCP_CLOSE_)
		return;
	b = bpf_map_lookup_elem(&born, &key);
	if (!b)
		return;		/* born before we were attached */
	e.lat_ns = now - *b;
	bpf_map_delete_elem(&born, &key);
	if (!tuple(&sk->__sk_common, cf, &e.t))
		return;
	/* the local port is released (skc_num = 0) by now; inet_sport stays */
	e.t.lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e.ts_ns = now;
	e.type = PL_TCP_EV_CLOSE;
	e.kind = 0;
	e.state = newstate;
	e.segs = 0;
	e.tx_bytes = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_acked);
	e.rx_bytes = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_received);
	e.err = 0;
	e.pad = 0;
	emit(&e);
}

/*
 * rtx_born: a socket begins or ends. A connecting one at SYN_SENT; an
 * accepted one once ESTABLISHED, when its total has taken in the SYN-ACK's
 * retransmits (counted here already, as the request's). One that ends is
 * forgotten in its connection's entry too: a new socket of the same 4-tuple
 * (a port bound again) often gets the same address, and counted from the
 * old socket's total (rtx_segs()) its retransmits would be lost.
 */
static __always_inline void note_birth(const struct sock *sk, int oldstate, int newstate,
				       const struct pl_tcp_cfg *cf)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct pl_tcp_tuple t;
	struct pl_tcp_conn *c;

	if (newstate == TCP_SYN_SENT_ ||
	    (oldstate == TCP_SYN_RECV_ && newstate == TCP_ESTABLISHED_)) {
		__u32 total = BPF_CORE_READ((const struct tcp_sock *)sk, total_retrans);

		bpf_map_update_elem(&rtx_born, &key, &total, BPF_ANY);
		return;
	}
	if (newstate != TCP_CLOSE_)
		return;
	bpf_map_delete_elem(&rtx_born, &key);
	if (!tuple(&sk->__sk_common, cf, &t))
		return;
	/* as in life(): the local port may be released (skc_num = 0) by now */
	t.lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	c = bpf_map_lookup_elem(&conn_retrans, &t);
	if (c && c->sk == key)
		c->sk = 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pl_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	const struct pl_tcp_cfg *cf;
	__u64 key = (__u64)sk, now, *start;
	struct pl_tcp_event e;
	struct pl_tcp_hist *h;
	__u32 zero = 0;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	now = bpf_ktime_get_ns();
	cf = cfg();
	if (!cf)
		return 0;
	if (cf->flags & PL_TCP_CFG_RETRANS)
		note_birth(sk, oldstate, newstate, cf);
	if (cf->flags & PL_TCP_CFG_LIFE)
		life(sk, newstate, now, cf);
	if (!(cf->flags & PL_TCP_CFG_CONNLAT))
		return 0;
	if (newstate == TCP_SYN_SENT_) {
		bpf_map_update_elem(&syn_sent, &key, &now, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT_)
		return 0;
	start = bpf_map_lookup_elem(&syn_sent, &key);
	if (!start)
		return 0;	/* connecting since before we were attached */
	e.lat_ns = now - *start;
	e.tx_bytes = e.rx_bytes = 0;
	e.err = 0;
	e.pad = 0;
	bpf_map_delete_elem(&syn_sent, &key);
	if (newstate != TCP_ESTABLISHED_ || !tuple(&sk->__sk_common, cf, &e.t))
		return 0;
	h = bpf_map_lookup_elem(&connlat_hist, &zero);
	if (h)
		hist_add(h, e.lat_ns / 1000);
	if (e.lat_ns < cf->min_lat_ns || (cf->flags & PL_TCP_CFG_QUIET))
		return 0;
	e.ts_ns = now;
	e.type = PL_TCP_EV_CONNLAT;
	e.kind = 0;
	e.state = newstate;
	e.segs = 0;
	emit(&e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
