/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Passive TCP analysis (attach --tcp-passive), shared by the XDP and tc
 * programs: handshake RTT, timestamp RTT (RFC 7323 TSval/TSecr, as pping
 * does it), retransmissions, reordering, zero windows and RSTs, per
 * connection and direction, from the packets alone.
 *
 * State: tcp_state (one entry per connection, keyed by struct pl_tcp_key,
 * so both directions meet) and tcp_ts (TSvals waiting for their echo, at
 * most one per direction of a connection) are shared by every attachment of
 * the namespace that analyses TCP (the loader pins them beside the
 * attachment directories), so a router sees a flow whose directions enter
 * on two interfaces. tcp_stats is the attachment's own.
 *
 * Each packet must be analysed once per namespace: the loader sets
 * pl_tcp_slots to XDP ingress where there is an XDP hook, else tc ingress
 * (also beside skb-mode XDP, which sees GSO/GRO skbs linearized), plus tc
 * egress; egress only analyses packets this host sent (no ingress
 * interface), as forwarded ones were analysed when they came in.
 *
 * A device stacked on another (a VLAN, macvlan or bridge on an attached
 * interface, attached too) passes each segment through two hooks. Each end
 * of a connection is analysed at one interface: the first whose hook saw
 * new sequence space or a new SYN of it (pl_tcp_half.ifindex); the others
 * skip its segments, which that hook has analysed already. A path that
 * moves to another interface hands the end on with its next new segment.
 *
 * Everything here runs after the packet was counted: it never changes flow
 * or interface counts. Both full maps are counted (state_lost, ts_full),
 * never evicted from.
 */
#ifndef __PKTLENS_BPF_TCP_H
#define __PKTLENS_BPF_TCP_H

#include "common.h"
#include "parse.h"

#ifndef PL_TCP_CTX
#error "define PL_TCP_CTX (struct xdp_md or struct __sk_buff) before including tcp.h"
#endif

/*
 * The wire segments @ctx carries: a GSO or GRO skb on tc stands for
 * gso_segs of them (the sender's TcpRetransSegs counts those), a frame on
 * XDP for one. The tc program defines it as its skb's gso_segs.
 */
#ifndef PL_TCP_GSO_SEGS
#define PL_TCP_GSO_SEGS(ctx) 1U
#endif

/* The bytes of @ctx from its data on (skb->len on tc: a GSO skb's every segment). */
#ifndef PL_TCP_LEN
#define PL_TCP_LEN(ctx) ((__u32)((ctx)->data_end - (ctx)->data))
#endif

/* The interface of the hook @ctx runs at (skb->ifindex on tc). */
#ifndef PL_TCP_IFINDEX
#define PL_TCP_IFINDEX(ctx) ((ctx)->ingress_ifindex)
#endif

/* bit (1 << enum pl_slot) per hook that analyses TCP; set by the loader */
const volatile __u32 pl_tcp_slots = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PL_FLOWS_DEFAULT);
	__type(key, struct pl_tcp_key);
	__type(value, struct pl_tcp_state);
} tcp_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PL_TCP_TS_DEFAULT);
	__type(key, struct pl_tcp_ts_key);
	__type(value, __u64);
} tcp_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, struct pl_tcp_pstats);
} tcp_stats SEC(".maps");

#define PL_TH_FIN 0x01
#define PL_TH_SYN 0x02
#define PL_TH_RST 0x04
#define PL_TH_ACK 0x10

/* sequence space comparisons (RFC 793, wrapping) */
#define pl_seq_lt(a, b) ((__s32)((a) - (b)) < 0)
#define pl_seq_le(a, b) ((__s32)((a) - (b)) <= 0)

static __always_inline __u32 pl_be32(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

/*
 * floor(log2(v)) for v > 0, 0 for 0: slot of a pl_tcp_hist. Branches, not the
 * branch-free form: the 5.10 verifier loses the bounds of that one.
 */
static __always_inline __u32 pl_log2_u32(__u32 v)
{
	__u32 r = 0;

	if (v >= 1U << 16) {
		v >>= 16;
		r += 16;
	}
	if (v >= 1U << 8) {
		v >>= 8;
		r += 8;
	}
	if (v >= 1U << 4) {
		v >>= 4;
		r += 4;
	}
	if (v >= 1U << 2) {
		v >>= 2;
		r += 2;
	}
	if (v >= 2)
		r += 1;
	return r;
}

static __always_inline __u32 pl_ns_to_us(__u64 ns)
{
	__u64 us = ns / 1000;

	return us > 0xffffffffULL ? 0xffffffffU : (__u32)us;
}

static __always_inline void pl_tcp_hist_add(struct pl_tcp_pstats *s, __u32 us)
{
	s->rtt.slot[pl_log2_u32(us)]++;
	s->rtt.count++;
	s->rtt.sum_us += us;
	if (us > s->rtt.max_us)
		s->rtt.max_us = us;
}

/* A timestamp RTT sample of the segments @h sent. */
static __always_inline void pl_tcp_rtt(struct pl_tcp_half *h, __u32 us, struct pl_tcp_pstats *s)
{
	if (!h->rtt_samples || us < h->rtt_min_us)
		h->rtt_min_us = us;
	if (us > h->rtt_max_us)
		h->rtt_max_us = us;
	h->rtt_srtt_us = h->rtt_samples ? (__u32)(((__u64)h->rtt_srtt_us * 7 + us) / 8) : us;
	h->rtt_samples++;
	s->ts_samples++;
	pl_tcp_hist_add(s, us);
}

/*
 * The options in the TCP header at @th of @hl bytes: 0 and the timestamp
 * values if it has that option, else -1; *@sack set if it has SACK blocks.
 * Options are walked one by one (at most 10: 40 bytes of NOPs need more,
 * and no stack sends that).
 */
static __always_inline int pl_tcp_opts(__u8 *th, __u32 hl, void *data_end, __u32 *tsval,
				       __u32 *tsecr, int *sack)
{
	__u32 off = 20;
	int i, ts = -1;

#pragma unroll
	for (i = 0; i < 10; i++) {
		__u8 *o;

		if (off + 2 > hl || off > 60)
			break;
		o = th + off;
		if (o + 2 > (__u8 *)data_end)
			break;
		if (o[0] == 0)
			break;
		if (o[0] == 1) {
			off++;
			continue;
		}
		if (o[0] == 8 && o[1] == 10) {
			if (off + 10 > hl || o + 10 > (__u8 *)data_end)
				break;
			*tsval = pl_be32(o + 2);
			*tsecr = pl_be32(o + 6);
			ts = 0;
		} else if (o[0] == 5 && o[1] >= 10) {
			*sack = 1;
		}
		if (o[1] < 2)
			break;
		off += o[1];
	}
	return ts;
}

/* Forget @h's remembered TSval: @tk holds the connection's key. */
static __always_inline void pl_tcp_ts_forget(struct pl_tcp_ts_key *tk, struct pl_tcp_half *h,
					     __u32 half)
{
	tk->tsval = h->ts_pending;
	tk->half = half;
	bpf_map_delete_elem(&tcp_ts, tk);
	h->flags &= ~PL_TCPH_TS;
}

/* the clock, read once and only by the segments that need it (~25 ns on a VM) */
#define PL_NOW() (now ? now : (now = bpf_ktime_get_ns()))

/* a new connection's state: zero (global data, not the stack) */
static const struct pl_tcp_state pl_tcp_zero;

/* No gaps in @h's sequence space (a new one begins). */
static __always_inline void pl_tcp_gaps_clear(struct pl_tcp_half *h)
{
	int i;

#pragma unroll
	for (i = 0; i < PL_TCP_GAPS; i++)
		h->gap[i].lo = h->gap[i].hi = 0;
	h->flags &= ~(((1U << PL_TCP_GAPS) - 1) * PL_TCPH_GAP_REP);
}

/* The receiver acknowledged up to @ack and has more (SACK, dup ACK): @h's gaps above are reported. */
static __always_inline void pl_tcp_gaps_reported(struct pl_tcp_half *h, __u32 ack)
{
	int i;

#pragma unroll
	for (i = 0; i < PL_TCP_GAPS; i++)
		if (h->gap[i].lo != h->gap[i].hi && pl_seq_le(ack, h->gap[i].lo))
			h->flags |= PL_TCPH_GAP_REP << i;
}

/* A segment starting at @seq above @h's highest end, at @t: the gap below it. */
static __always_inline void pl_tcp_gap_open(struct pl_tcp_half *h, __u32 seq, __u32 t)
{
	__u32 i, slot = 0, oldest = 0;

	/* a free slot, else the oldest gap gives way */
#pragma unroll
	for (i = 0; i < PL_TCP_GAPS; i++) {
		__u32 age = h->gap[i].lo == h->gap[i].hi ? 0xffffffffU : t - h->gap[i].t;

		if (!i || age > oldest) {
			slot = i;
			oldest = age;
		}
	}
	slot &= PL_TCP_GAPS - 1;
	h->gap[slot].lo = h->hi;
	h->gap[slot].hi = seq;
	h->gap[slot].t = t;
	h->flags &= ~(PL_TCPH_GAP_REP << slot);
}

/*
 * A segment [@seq, @end) at or below @h's highest end:
 * 1 if it fills a gap and was not sent again (out of order), else 0 (a
 * retransmission). The part of the gap it filled is no longer one.
 */
static __always_inline int pl_tcp_gap_fill(struct pl_tcp_half *h, __u32 seq, __u32 end)
{
	__u32 i, g = PL_TCP_GAPS, lo, hi;
	struct pl_tcp_gap *p;
	int again;

#pragma unroll
	for (i = 0; i < PL_TCP_GAPS; i++)
		if (g == PL_TCP_GAPS && h->gap[i].lo != h->gap[i].hi &&
		    pl_seq_lt(seq, h->gap[i].hi) && pl_seq_lt(h->gap[i].lo, end))
			g = i;
	if (g >= PL_TCP_GAPS)
		return 0;
	p = &h->gap[g];
	lo = p->lo;
	hi = p->hi;
	again = (h->flags & (PL_TCPH_GAP_REP << g)) != 0;
	if (pl_seq_le(seq, lo)) {
		p->lo = pl_seq_lt(end, hi) ? end : hi;
	} else if (!pl_seq_lt(end, hi)) {
		p->hi = seq;
	} else {
		/* in the middle: the part above goes to a free slot, if there is one */
		__u32 j, f = PL_TCP_GAPS;

#pragma unroll
		for (j = 0; j < PL_TCP_GAPS; j++)
			if (f == PL_TCP_GAPS && h->gap[j].lo == h->gap[j].hi)
				f = j;
		p->hi = seq;
		if (f < PL_TCP_GAPS) {
			struct pl_tcp_gap *q = &h->gap[f];

			q->lo = end;
			q->hi = hi;
			q->t = p->t;
			if (h->flags & (PL_TCPH_GAP_REP << g))
				h->flags |= PL_TCPH_GAP_REP << f;
			else
				h->flags &= ~(PL_TCPH_GAP_REP << f);
		}
	}
	return !again;
}

union pl_tcp_addr {
	__u8 b[16];
	__u64 w[2];
};

/*
 * Analyse the TCP segment at @offs (the IP header's offset in bits 0-7, the
 * TCP header's in 16-31) of @l4len bytes (its IP payload), seen at hook
 * @slot. A global function: the verifier checks it once, apart from the
 * states of its callers (the rule-set programs are close to its limits
 * already), and its stack frame is its own; so it takes only the context
 * and numbers, and reads the addresses and ports again.
 */
__noinline int pl_tcp_segment(PL_TCP_CTX *ctx, __u32 offs, __u32 l4len, __u32 slot)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 seq, hl, len, seglen, end, tsval = 0, tsecr = 0, d, off = offs >> 16, n, ifx;
	struct pl_tcp_ts_key tk;	/* tk.k: the connection's key for tcp_state too */
	union pl_tcp_addr sa, da;
	struct pl_tcp_half *h, *o;
	struct pl_tcp_pstats *s;
	struct pl_tcp_state *st;
	__u16 sport, dport;
	__u8 *th, *ip, fl;
	__u64 now = 0;
	int ts, local, sack = 0;

	if (off > 256 || (offs & 0xff) > 64)
		return 0;
	ip = (__u8 *)data + (offs & 0xff);
	th = (__u8 *)data + off;
	if (ip + 20 > (__u8 *)data_end || th + 20 > (__u8 *)data_end)
		return 0;
	if ((ip[0] >> 4) == 4) {
		sa.w[0] = 0;
		da.w[0] = 0;
		sa.b[8] = sa.b[9] = da.b[8] = da.b[9] = 0;
		sa.b[10] = sa.b[11] = da.b[10] = da.b[11] = 0xff;
		__builtin_memcpy(&sa.b[12], ip + 12, 4);
		__builtin_memcpy(&da.b[12], ip + 16, 4);
	} else {
		if (ip + 40 > (__u8 *)data_end)
			return 0;
		__builtin_memcpy(sa.b, ip + 8, 16);
		__builtin_memcpy(da.b, ip + 24, 16);
	}
	sport = ((__u16)th[0] << 8) | th[1];
	dport = ((__u16)th[2] << 8) | th[3];
	n = PL_TCP_GSO_SEGS(ctx);
	if (!n)
		n = 1;
	s = bpf_map_lookup_elem(&tcp_stats, &slot);
	if (!s)
		return 0;
	seq = pl_be32(th + 4);
	fl = th[13];
	hl = (__u32)(th[12] >> 4) * 4;
	/*
	 * BIG TCP: a GSO skb above 64 KiB has IP length 0 (IPv4 tot_len, IPv6
	 * payload_len without a jumbo option); its length is the skb's
	 */
	if (!l4len && n > 1 && PL_TCP_LEN(ctx) > off)
		l4len = PL_TCP_LEN(ctx) - off;
	len = l4len > hl ? l4len - hl : 0;
	seglen = len + !!(fl & PL_TH_SYN) + !!(fl & PL_TH_FIN);
	ts = hl > 20 ? pl_tcp_opts(th, hl, data_end, &tsval, &tsecr, &sack) : -1;

	/* both directions under one key: end a sorts lower by (address as two u64, port) */
	d = sa.w[0] < da.w[0] || (sa.w[0] == da.w[0] && (sa.w[1] < da.w[1] ||
		(sa.w[1] == da.w[1] && sport <= dport))) ? 0 : 1;
	if (d == 0) {
		__builtin_memcpy(tk.k.a, sa.b, 16);
		__builtin_memcpy(tk.k.b, da.b, 16);
		tk.k.aport = sport;
		tk.k.bport = dport;
	} else {
		__builtin_memcpy(tk.k.a, da.b, 16);
		__builtin_memcpy(tk.k.b, sa.b, 16);
		tk.k.aport = dport;
		tk.k.bport = sport;
	}
	tk.k.pad = 0;

	st = bpf_map_lookup_elem(&tcp_state, &tk.k);
	if (!st) {
		bpf_map_update_elem(&tcp_state, &tk.k, &pl_tcp_zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tcp_state, &tk.k);
		if (!st) {
			s->segs += n;
			s->state_lost += n;
			return 0;
		}
	}
	/* the verifier wants constant offsets: two copies of the pointer pair */
	if (d == 0) {
		h = &st->h[0];
		o = &st->h[1];
	} else {
		h = &st->h[1];
		o = &st->h[0];
	}

	/* this end's segments are another interface's unless this one sees something new first */
	ifx = PL_TCP_IFINDEX(ctx);
	if (h->ifindex != ifx) {
		if (h->ifindex && (!seglen || (fl & PL_TH_RST) ||
		    ((h->flags & PL_TCPH_SEQ) && pl_seq_le(seq + seglen, h->hi))) &&
		    ((fl & (PL_TH_SYN | PL_TH_ACK)) != PL_TH_SYN ||
		     ((h->flags & PL_TCPH_ISN) && h->isn == seq)))
			return 0;
		h->ifindex = ifx;
	}
	s->segs += n;
	/*
	 * a segment this host sends completes no RTT sample on the interface: what it
	 * echoes came in here, the span is this host's own delay (ePPing leaves these
	 * out too); on lo, which analyses at egress alone, it is the arrival as well
	 */
	local = slot == PL_SLOT_TC_OUT && ifx != PL_LOOPBACK_IFINDEX;

	if (fl & PL_TH_RST) {
		h->rst++;
		s->rst++;
	} else if (!(fl & PL_TH_SYN) && !th[14] && !th[15]) {
		h->zero_win++;
		s->zero_win++;
	}

	/* handshake */
	if ((fl & (PL_TH_SYN | PL_TH_ACK)) == PL_TH_SYN) {
		/*
		 * the 4-tuple is used again: a new connection, after the old one closed or
		 * ended unseen, when either end has state of it (a SYN that is not a
		 * retransmission of the one seen: another ISN; the same SYN again, even
		 * after a FIN or RST, is one)
		 */
		if (!((h->flags & PL_TCPH_ISN) && h->isn == seq) &&
		    ((st->flags & PL_TCPS_CLOSING) || ((h->flags | o->flags) & PL_TCPH_SEQ))) {
			if (h->flags & PL_TCPH_TS)
				pl_tcp_ts_forget(&tk, h, d);
			if (o->flags & PL_TCPH_TS)
				pl_tcp_ts_forget(&tk, o, d ^ 1);
			h->flags = 0;
			o->flags = 0;
			o->syn_ns = 0;
			h->ts_last = 0;
			o->ts_last = 0;
			st->flags = 0;
			st->rtt_syn_us = 0;
			st->rtt_synack_us = 0;
		}
		h->syn_ns = PL_NOW();
		h->isn = seq;
		h->flags |= PL_TCPH_ISN;
		st->client = (__u8)(d + 1);
	} else if ((fl & (PL_TH_SYN | PL_TH_ACK)) == (PL_TH_SYN | PL_TH_ACK)) {
		if (st->client == 2 - d && o->syn_ns) {
			if (!st->rtt_syn_us) {
				st->rtt_syn_us = pl_ns_to_us(PL_NOW() - o->syn_ns);
				if (!local) {
					s->syn_samples++;
					pl_tcp_hist_add(s, st->rtt_syn_us);
				}
			}
			/*
			 * the client's ACK answers the first of SYN-ACKs sent close together (the
			 * server's timer and its answer to the client's SYN sent again cross):
			 * only one a retransmission timeout after the last replaces it
			 */
			if (!h->syn_ns || PL_NOW() - h->syn_ns >= PL_TCP_SYNACK_AGAIN_NS)
				h->syn_ns = PL_NOW();
			st->flags |= PL_TCPS_SYNACK;
		}
	} else if ((fl & PL_TH_ACK) && (st->flags & PL_TCPS_SYNACK) && st->client == d + 1 &&
		   o->syn_ns && !st->rtt_synack_us) {
		st->rtt_synack_us = pl_ns_to_us(PL_NOW() - o->syn_ns);
		st->flags &= ~PL_TCPS_SYNACK;
		if (!local) {
			s->syn_samples++;
			pl_tcp_hist_add(s, st->rtt_synack_us);
		}
	}

	/*
	 * this end's ACK tells of the other's gaps at or above it: with SACK blocks, or
	 * repeated by a segment that takes no sequence space, the other end learns of the
	 * hole and sends it again
	 */
	if ((fl & PL_TH_ACK) && !(fl & (PL_TH_SYN | PL_TH_RST))) {
		__u32 ack = pl_be32(th + 8);

		if (sack || (!seglen && (h->flags & PL_TCPH_ACK) && ack == h->last_ack))
			pl_tcp_gaps_reported(o, ack);
		h->last_ack = ack;
		h->flags |= PL_TCPH_ACK;
	}

	/* sequence space: new, a gap filled (reorder), or seen already (retrans); n segments each */
	if (seglen && !(fl & PL_TH_RST)) {
		end = seq + seglen;
		h->segs += n;
		if (!(h->flags & PL_TCPH_SEQ)) {
			h->hi = end;
			pl_tcp_gaps_clear(h);
			h->flags |= PL_TCPH_SEQ;
		} else if (pl_seq_lt(h->hi, end)) {
			if (pl_seq_lt(h->hi, seq))
				pl_tcp_gap_open(h, seq, (__u32)(PL_NOW() >> 10));
			h->hi = end;
		} else if (pl_tcp_gap_fill(h, seq, end)) {
			h->reorder += n;
			s->reorder += n;
		} else {
			h->retrans += n;
			s->retrans += n;
		}
	}

	/*
	 * a FIN: this end sends no more, its TSval is forgotten; the other may go on
	 * sending (a half-close: a request, then the answer), its TSvals echoed as before.
	 * An RST: neither end sends more.
	 */
	if (fl & (PL_TH_FIN | PL_TH_RST)) {
		st->flags |= PL_TCPS_CLOSING;
		h->flags |= PL_TCPH_FIN;
		if (h->flags & PL_TCPH_TS)
			pl_tcp_ts_forget(&tk, h, d);
		if (fl & PL_TH_RST) {
			o->flags |= PL_TCPH_FIN;
			if (o->flags & PL_TCPH_TS)
				pl_tcp_ts_forget(&tk, o, d ^ 1);
		}
	}
	if (ts)
		return 0;
	st->flags |= PL_TCPS_TS;

	/* this end echoes the other's TSval: an RTT sample of the other's segments */
	if ((o->flags & PL_TCPH_TS) && (fl & PL_TH_ACK) && pl_seq_le(o->ts_pending, tsecr)) {
		__u64 *t;

		tk.tsval = o->ts_pending;
		tk.half = d ^ 1;
		t = bpf_map_lookup_elem(&tcp_ts, &tk);

		if (t && tsecr == o->ts_pending && !local && PL_NOW() > *t)
			pl_tcp_rtt(o, pl_ns_to_us(PL_NOW() - *t), s);
		bpf_map_delete_elem(&tcp_ts, &tk);
		o->flags &= ~PL_TCPH_TS;
	}

	/*
	 * remember a new TSval of this end, one at a time: newer than every one seen
	 * (TSvals only grow: an older or repeated one was seen, maybe echoed already).
	 * A segment that takes sequence space replaces one that took none (a pure ACK):
	 * the other end echoes the newest TSval of its window (RFC 7323's TS.Recent), so
	 * an ACK's is echoed only if the other end sends before this end's next segment.
	 * A request after an ACK of the last answer (think time beyond the delayed-ACK
	 * timer) would otherwise find the ACK's TSval waiting, never echoed, for a second.
	 */
	if ((h->flags & PL_TCPH_FIN) || !tsval || (h->ts_last && pl_seq_le(tsval, h->ts_last)))
		return 0;
	h->ts_last = tsval;
	if (h->flags & PL_TCPH_TS) {
		if (PL_NOW() - h->ts_pending_ns < PL_TCP_TS_EXPIRE_NS) {
			if (!seglen || !(h->flags & PL_TCPH_TS_ACK))
				return 0;
		} else {
			s->ts_expired++;
		}
		pl_tcp_ts_forget(&tk, h, d);
	}
	{
		long err;

		tk.tsval = tsval;
		tk.half = d;
		PL_NOW();
		err = bpf_map_update_elem(&tcp_ts, &tk, &now, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			s->ts_full++;
			return 0;
		}
	}
	h->ts_pending = tsval;
	h->ts_pending_ns = PL_NOW();
	h->flags |= PL_TCPH_TS;
	if (seglen)
		h->flags &= ~PL_TCPH_TS_ACK;
	else
		h->flags |= PL_TCPH_TS_ACK;
	return 0;
}

/* Does the loader have TCP analysed at hook @slot (pl_tcp_slots)? */
static __always_inline int pl_tcp_at(__u32 slot)
{
	return (pl_tcp_slots & (1U << (slot & 31))) != 0;
}

/* Analyse @p at hook @slot if the loader said so (pl_tcp_slots): TCP with its header read. */
static __always_inline void pl_tcp_passive(PL_TCP_CTX *ctx, const struct pl_pkt *p, __u32 slot,
					   __u32 ingress_ifindex)
{
	if (!pl_tcp_at(slot) || p->key.l4proto != IPPROTO_TCP_ || !p->ports ||
	    p->frag)
		return;
	/* egress: only what this host sent, forwarded packets were analysed coming in */
	if (slot == PL_SLOT_TC_OUT && ingress_ifindex)
		return;
	pl_tcp_segment(ctx, (__u32)p->l3off | ((__u32)p->l4off << 16), p->l4len, slot);
}

#endif /* __PKTLENS_BPF_TCP_H */
