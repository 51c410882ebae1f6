/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flow accounting: a per-CPU direct-mapped write-back cache (flow_cache, an
 * array map) in front of the flow table (flows, a PERCPU_HASH).
 *
 * Why: under BPF_PROG_TEST_RUN a hash lookup costs about as much as the rest
 * of the program, and a hash *update* several times that, so a hash is only
 * touched on a cache miss and never updated for a flow that already exists.
 *
 * Invariants:
 *  - A flow is in the cache only after it was admitted into `flows`, so the
 *    cache never holds more distinct flows than the table and a full table
 *    refuses a flow exactly once per packet, counted in flow_lost*.
 *  - A slot holds the flow's counts since it was installed (a delta); the
 *    table holds the rest. User space sums table + every CPU's slots.
 *  - An occupied slot is handed to a colliding flow only once its flow has
 *    been idle for PL_FLOW_IDLE_NS; its delta is then folded into the table.
 *    Colliding flows that are both busy stay correct, just uncached.
 *  - While a reset holds the cache (flow_ctl), no slot changes hands: what
 *    user space read of the caches stays where it read it.
 */
#ifndef __PKTLENS_BPF_FLOW_H
#define __PKTLENS_BPF_FLOW_H

#include "common.h"
#include "maps.h"

/*
 * Timestamps come from pl_now_coarse() (CLOCK_MONOTONIC_COARSE, one
 * jiffy of resolution; the precise clock before Linux 5.11): the precise
 * clock costs ~23 ns per packet on a VM's kvm-clock, more than the rest of
 * the flow code. The idle test needs a few
 * jiffies of slack at HZ=100..1000, hence 20 ms.
 */
#define PL_FLOW_IDLE_NS 20000000ULL	/* 20 ms */

/*
 * Cache index: three independent 64-bit multiplies over pairs of the key's
 * six words, top bits of the sum. The former 12-round 32-bit mix was one
 * long dependency chain (~18 ns under test-run); this is ~4 ns. Quality
 * only affects hit rate: a slot is always checked with pl_flow_key_eq().
 */
static __always_inline __u32 pl_flow_hash(const struct pl_flow_key *k)
{
	const __u64 *x = (const __u64 *)k;
	__u64 h;

	h = (x[0] ^ x[3]) * 0x9e3779b97f4a7c15ULL;
	h ^= (x[1] ^ x[4]) * 0xc2b2ae3d27d4eb4fULL;
	h ^= (x[2] ^ x[5]) * 0x165667b19e3779f9ULL;
	return (__u32)(h >> 32);
}

static __always_inline int pl_flow_key_eq(const struct pl_flow_key *a, const struct pl_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		(x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5])) == 0;
}

static __always_inline void pl_flow_val_add(struct pl_flow_val *v, const struct pl_flow_val *d)
{
	v->packets += d->packets;
	v->bytes += d->bytes;
	if (!v->first_ns || d->first_ns < v->first_ns)
		v->first_ns = d->first_ns;
	if (d->last_ns > v->last_ns)
		v->last_ns = d->last_ns;
	v->tcp_flags |= d->tcp_flags;
}

static __always_inline void pl_flow_lost(struct pl_stats *s, __u64 pkts, __u64 bytes)
{
	s->flow_lost++;
	s->flow_lost_pkts += pkts;
	s->flow_lost_bytes += bytes;
}

/* A reset is reading the caches: leave the slots to their flows (struct pl_flow_ctl). */
static __always_inline int pl_flow_held(__u64 now)
{
	const struct pl_flow_ctl *ctl;
	__u32 zero = 0;

	ctl = bpf_map_lookup_elem(&flow_ctl, &zero);
	return ctl && now < ctl->hold_until_ns;
}

/*
 * Add @d to @key's entry in the table, inserting it when missing.
 * Returns 0, or -1 when the table is full (the loss is counted).
 */
static __always_inline int pl_flow_table_add(const struct pl_flow_key *key,
					     struct pl_flow_val *d, struct pl_stats *s)
{
	struct pl_flow_val *v;
	long err;

	v = bpf_map_lookup_elem(&flows, key);
	if (v) {
		pl_flow_val_add(v, d);
		return 0;
	}
	err = bpf_map_update_elem(&flows, key, d, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* another CPU inserted it meanwhile: our per-CPU value is zero */
		v = bpf_map_lookup_elem(&flows, key);
		if (v) {
			pl_flow_val_add(v, d);
			return 0;
		}
	}
	if (err) {
		pl_flow_lost(s, d->packets, d->bytes);
		return -1;
	}
	return 0;
}

static __always_inline void pl_flow_account(const struct pl_flow_key *key, __u32 len,
					    __u8 tcp_flags, struct pl_stats *s)
{
	struct pl_flow_slot *c;
	struct pl_flow_val d;
	__u64 now = pl_now_coarse();
	__u32 idx = pl_flow_hash(key) >> (32 - PL_FLOW_CACHE_BITS);

	c = bpf_map_lookup_elem(&flow_cache, &idx);
	if (!c)
		return;
	if (pl_flow_key_eq(&c->key, key)) {
		if (!c->val.packets)
			c->val.first_ns = now;
		c->val.packets++;
		c->val.bytes += len;
		c->val.last_ns = now;
		c->val.tcp_flags |= tcp_flags;
		return;
	}

	/* miss: count this packet in the table (admission) */
	d.packets = 1;
	d.bytes = len;
	d.first_ns = now;
	d.last_ns = now;
	d.tcp_flags = tcp_flags;
	if (pl_flow_table_add(key, &d, s))
		return;

	/* admitted: take over the slot if it is free or its flow went quiet */
	if (c->key.ifindex && now - c->val.last_ns < PL_FLOW_IDLE_NS)
		return;
	if (c->key.ifindex && c->val.packets) {
		if (pl_flow_held(now))
			return;
		pl_flow_table_add(&c->key, &c->val, s);
	}
	c->key = *key;
	__builtin_memset(&c->val, 0, sizeof(c->val));
	c->val.last_ns = now;
}

#endif /* __PKTLENS_BPF_FLOW_H */
