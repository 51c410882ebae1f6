/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcap samples, shared by the XDP and tc programs (struct pl_sample_* in
 * include/pktlens/pktlens.h). While `pktlens sample` runs it sets
 * sample_cfg and puts a ring buffer of its own size in sample_ring; a
 * packet that its expression matched (the SAMPLE chain stage's verdict in
 * sample_res) or, with PL_SAMPLE_F_POLICY, that a --sample rule chose, and
 * that the 1-in-N counter keeps, is copied into the ring: a header, then up
 * to snaplen bytes from the Ethernet header on. No sampler: one array
 * lookup per packet; a sampler whose lease (sample_lease) has passed, a
 * lookup and a compare. The sampler's --verdict and --rule are checked first
 * (PL_SAMPLE_F_VERDICT, _RULE): a flood the policy drops is not copied when
 * only other verdicts are wanted. --per-flow N takes the first N packets of
 * each flow key (sample_flows) instead of 1 in N.
 *
 * The including program defines PL_SAMPLE_CTX (struct xdp_md or struct
 * __sk_buff) and PL_SAMPLE_HOOK (enum pl_hook) first.
 *
 * bpf_ringbuf_reserve() wants a constant size, so a record is reserved in
 * the smallest of a dozen steps that holds it and filled straight from the
 * frame with bpf_xdp_load_bytes()/bpf_skb_load_bytes(): one copy, no
 * per-CPU staging buffer, and multi-buffer XDP and non-linear skbs work.
 */
#ifndef __PKTLENS_BPF_SAMPLE_H
#define __PKTLENS_BPF_SAMPLE_H

#include "common.h"
#include "parse.h"
#include "policy.h"

/* The ring's template; the sampler creates the real one, of -B KiB. */
struct pl_sample_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct pl_sample_ring);
} sample_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_sample_cfg);
} sample_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, struct pl_sample_stats);
} sample_stats SEC(".maps");

/* The sampler's lease: until when (bpf_ktime_get_ns()) it is known to read the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sample_lease SEC(".maps");

/* The SAMPLE stage's verdict for the packet in flight, per hook; read and cleared. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} sample_res SEC(".maps");

/*
 * --per-flow: packets taken per flow (struct pl_flow_key). The table's
 * template: a sampler with --per-flow puts a fresh one of
 * PL_SAMPLE_FLOWS_MAX flows in sample_flows when it starts and takes it out
 * when it stops (loader/sample.c), so an attachment holds none (2 MB,
 * preallocated) while nobody samples per flow.
 */
struct pl_sample_flows {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, struct pl_flow_key);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct pl_sample_flows);
} sample_flows SEC(".maps");

/* Where the frame is and what the hook knows beside it. */
struct pl_frame {
	PL_SAMPLE_CTX *ctx;
	__u32 len;		/* bytes from the Ethernet header on (no metadata tag) */
	__u32 vlan_meta;	/* tc: skb->vlan_present */
	__u16 vlan_tci;
	__u16 vlan_proto;	/* host order */
};

/*
 * One size step. The verifier must see 1 <= length <= n at the call: the
 * bound is checked on length - 1 (an unsigned compare every verifier since
 * 5.10 learns from; `len < 1` compiles to `len == 0`, from which 6.1's
 * learns nothing), behind a barrier so clang keeps that form.
 */
#define PL_SAMPLE_STEP(n)							\
	if (caplen <= (n)) {							\
		struct {							\
			struct pl_sample_hdr h;					\
			__u8 data[n];						\
		} *rec = bpf_ringbuf_reserve(ring, sizeof(*rec), 0);		\
		__u64 last = caplen - 1;					\
									\
		if (!rec)							\
			return -1;						\
		__builtin_memcpy(&rec->h, h, sizeof(*h));			\
		barrier_var(last);						\
		if (last >= (n) || pl_load_bytes(ctx, rec->data, last + 1)) {	\
			bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);		\
			return -1;						\
		}								\
		bpf_ringbuf_submit(rec, wake);					\
		return 0;							\
	}

/* Frame bytes from the Ethernet header on; XDP needs bpf_xdp_load_bytes() (5.18). */
static __always_inline long pl_load_bytes(PL_SAMPLE_CTX *ctx, void *to, __u32 len)
{
	if (PL_SAMPLE_HOOK == PL_HOOK_TC)
		return bpf_skb_load_bytes((void *)ctx, 0, to, len);
	if (pl_has_helper(xdp_load_bytes))
		return bpf_xdp_load_bytes((void *)ctx, 0, to, len);
	return -1;
}

/* The record header of the packet in flight on this CPU, for pl_sample_put(). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_sample_hdr);
} sample_hdr SEC(".maps");

/*
 * Copy the header in sample_hdr and h->caplen (1..PL_SNAPLEN_MAX) bytes of
 * the frame into the sampler's ring; 0, or -1 when it is full (or gone). A
 * global function: the verifier checks it once, on its own, instead of once
 * per path of every program that samples. Its only argument is the context:
 * kernels before 5.12 take no other pointer into a global function.
 */
__noinline int pl_sample_put(PL_SAMPLE_CTX *ctx)
{
	const struct pl_sample_hdr *h;
	__u32 zero = 0, caplen;
	void *ring;
	__u64 wake;

	if (!ctx)
		return -1;
	h = bpf_map_lookup_elem(&sample_hdr, &zero);
	if (!h)
		return -1;
	ring = bpf_map_lookup_elem(&sample_ring, &zero);
	if (!ring)
		return -1;
	caplen = h->caplen;
	if (caplen < 1 || caplen > PL_SNAPLEN_MAX)
		return -1;
	/*
	 * Wake the reader only when a quarter of the ring is in use: it also
	 * drains every 10 ms on its own, and a wakeup per packet would cost
	 * more than the copy (irq_work here, a poll round trip there).
	 */
	wake = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >
	       bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) / 4 ? BPF_RB_FORCE_WAKEUP :
							       BPF_RB_NO_WAKEUP;
	PL_SAMPLE_STEP(128)
	PL_SAMPLE_STEP(256)
	PL_SAMPLE_STEP(512)
	PL_SAMPLE_STEP(1024)
	PL_SAMPLE_STEP(1536)
	PL_SAMPLE_STEP(2048)
	PL_SAMPLE_STEP(4096)
	PL_SAMPLE_STEP(9216)
	PL_SAMPLE_STEP(16384)
	PL_SAMPLE_STEP(65536)
	PL_SAMPLE_STEP(PL_SNAPLEN_MAX)
	return -1;
}

/*
 * The running sampler's settings when it samples @slot and its lease
 * (sample_lease, PL_SAMPLE_LEASE_MS in include/pktlens/pktlens.h) has not
 * passed, else NULL: a sampler killed with -9 (or stopped, or stalled)
 * costs a lookup and a compare per packet within a second, not a copy. An
 * expired lease also clears @slot's SAMPLE verdict, which the stage the
 * entry then skips leaves as it was (a renewal must not find it). The
 * entries call it before the SAMPLE stage, pl_sample() again after.
 */
static __always_inline struct pl_sample_cfg *pl_sample_at(__u32 slot)
{
	struct pl_sample_cfg *cfg;
	__u32 zero = 0, *res;
	__u64 *until;

	cfg = bpf_map_lookup_elem(&sample_cfg, &zero);
	if (!cfg || !(cfg->slots & (1U << (slot & 31))))
		return 0;
	until = bpf_map_lookup_elem(&sample_lease, &zero);
	if (until && bpf_ktime_get_ns() <= *until)
		return cfg;
	res = bpf_map_lookup_elem(&sample_res, &slot);
	if (res)
		*res = 0;
	return 0;
}

/*
 * The entries' first tail call: @slot's SAMPLE stage (a sampler's
 * expression, chain slot PL_CHAIN_SAMPLE(@dir) of @chain), only while a
 * sampler with a current lease samples there.
 */
#define PL_SAMPLE_STAGE(ctx, chain, slot, dir)					\
	do {									\
		if (pl_sample_at(slot))						\
			bpf_tail_call(ctx, &chain, PL_CHAIN_SAMPLE(dir));	\
	} while (0)

/*
 * After @p was judged (@j, NULL without a policy) and counted with @verdict
 * at @slot: hand it to the running sampler if it wants it.
 */
static __always_inline void pl_sample(const struct pl_frame *f, const struct pl_pkt *p,
				      __u32 slot, __u32 verdict, const struct pl_judgement *j)
{
	struct pl_sample_stats *st;
	struct pl_sample_cfg *cfg;
	struct pl_sample_hdr *h;
	__u32 zero = 0, every, rule;

	cfg = pl_sample_at(slot);
	if (!cfg)
		return;
	/* --verdict, --rule: decided here, so what is not wanted never costs a copy */
	if ((cfg->flags & PL_SAMPLE_F_VERDICT) &&
	    !(PL_SAMPLE_VERDICTS(cfg->flags) & (1U << (verdict & 7))))
		return;
	if ((cfg->flags & PL_SAMPLE_F_RULE) &&
	    (!j || (j->rule != cfg->rule && j->sample_rule != cfg->rule)))
		return;
	rule = j ? j->rule : 0;
	every = cfg->every;
	if (cfg->flags & PL_SAMPLE_F_POLICY) {
		if (!j || !j->sample_rule)
			return;
		rule = j->sample_rule;
		/* the rule's 1/N has chosen already; --per-flow N still takes N of each flow */
		if (!(cfg->flags & PL_SAMPLE_F_PER_FLOW))
			every = 1;
	} else if (cfg->flags & PL_SAMPLE_F_EXPR) {
		__u32 *res = bpf_map_lookup_elem(&sample_res, &slot);

		if (!res || !*res)
			return;
		*res = 0;
	}
	st = bpf_map_lookup_elem(&sample_stats, &slot);
	if (!st)
		return;
	st->selected++;
	if (cfg->flags & PL_SAMPLE_F_PER_FLOW) {
		void *flows = bpf_map_lookup_elem(&sample_flows, &zero);
		__u32 *n;

		if (!flows)
			return;		/* the sampler has not put its table in (yet) */
		n = bpf_map_lookup_elem(flows, &p->key);
		if (n) {
			if (*n >= every)
				return;
			__sync_fetch_and_add(n, 1);	/* no fetch: 5.10's XADD */
		} else {
			__u32 one = 1;

			/* another CPU may add it at the same moment: both take their packet */
			bpf_map_update_elem(flows, &p->key, &one, BPF_NOEXIST);
		}
	} else {
		st->seq++;
		if (every > 1 && st->seq % every)
			return;
	}
	st->sampled++;
	h = bpf_map_lookup_elem(&sample_hdr, &zero);
	if (!h) {
		st->lost++;
		return;
	}
	__builtin_memset(h, 0, sizeof(*h));
	h->rule_id = rule;
	h->ts_ns = bpf_ktime_get_ns();
	h->wire_len = p->len;
	h->caplen = f->len < cfg->snaplen ? f->len : cfg->snaplen;
	h->ifindex = p->key.ifindex;
	h->slot = slot;
	h->verdict = verdict;
	if (f->vlan_meta) {
		h->flags = PL_SAMPLE_R_VLAN_META;
		h->vlan_tci = f->vlan_tci;
		h->vlan_proto = f->vlan_proto;
	}
	if (pl_sample_put(f->ctx))
		st->lost++;
}

#endif /* __PKTLENS_BPF_SAMPLE_H */
