/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flow accounting: a per-CPU write-back cache (flow_cache) in front of the
 * flow table (flows, a PERCPU_HASH).
 *
 * Why: a hash lookup that misses the CPU caches is three dependent misses
 * (bucket, element, per-CPU value) and a hash update costs several lookups,
 * so the hash is touched only when a flow is new to a CPU (or the cache has
 * no room for it), never for a flow a CPU's cache holds.
 *
 * The cache: one ARRAY map (mmapable, so page-aligned and every slot is
 * one 64-byte line), cut into a region of 2^pl_flow_cache_bits slots per
 * possible CPU. A flow's slot is one of PL_FLOW_CACHE_WAYS consecutive ones
 * from its hash (adjacent lines: the neighbours come with the first), so a
 * cached flow costs one line. The loader sizes the regions to four times a
 * CPU's share of the table (PL_FLOW_CACHE_SHARES, pl_flow_cache_bits()).
 *
 * Invariants:
 *  - A flow is in the cache only after it was admitted into `flows`, so the
 *    cache never holds more distinct flows than the table and a full table
 *    refuses a flow exactly once per packet, counted in flow_lost*
 *    (a reset since may have taken it out: below).
 *  - A slot holds the flow's counts since it was installed (a delta); the
 *    table holds the rest. User space sums table + every CPU's slots.
 *  - An occupied slot is handed to another flow only once its flow has been
 *    idle for PL_FLOW_IDLE_UNITS; its delta is then folded into the table.
 *    Flows that find no free or idle slot stay correct, just uncached.
 *  - A slot whose 32-bit byte count would wrap is folded into the table
 *    and starts again from zero.
 *  - While a reset holds the cache (flow_ctl), no slot changes hands or is
 *    folded: what user space read of the caches stays where it read it.
 *  - A reset may take a cached flow out of the table (its slot's count then
 *    is the flow's base, and the slot's debt in flow_debt): a fold that
 *    finds no entry puts the delta back only when it holds more than the
 *    debt, and counts as lost only that much when the table is full.
 */
#ifndef __PKTLENS_BPF_FLOW_H
#define __PKTLENS_BPF_FLOW_H

#include "common.h"
#include "maps.h"

/*
 * Timestamps come from pl_now_coarse() (CLOCK_MONOTONIC_COARSE, one
 * jiffy of resolution; the precise clock before Linux 5.11): the precise
 * clock costs ~23 ns per packet on a VM's kvm-clock, more than the rest of
 * the flow code. A slot keeps them in 2^PL_FLOW_TSHIFT ns units (4.19 ms).
 * The idle test needs a few jiffies of slack at HZ=100..1000: 5 units, 21 ms.
 */
#define PL_FLOW_IDLE_UNITS 5

/* Slots per CPU, as a shift: set by the loader from the map's size (loader/maps.c). */
const volatile __u32 pl_flow_cache_bits = PL_FLOW_CACHE_MIN_BITS;

/*
 * Cache index: the top bits of pl_flow_key_mix() (include/pktlens/pktlens.h).
 * Quality only affects the hit rate: a slot is always checked with
 * pl_flow_slot_eq().
 */
static __always_inline __u32 pl_flow_hash(const struct pl_flow_key *k)
{
	return (__u32)(pl_flow_key_mix(k) >> 32);
}

/* Does slot @c hold @k? Its key.pad holds TCP flags: not compared. */
static __always_inline int pl_flow_slot_eq(const struct pl_flow_slot *c, const struct pl_flow_key *k)
{
	const __u64 *x = (const __u64 *)&c->key, *y = (const __u64 *)k;

	return ((x[0] ^ y[0]) | ((x[1] ^ y[1]) & ~0xff000000ULL) | (x[2] ^ y[2]) |
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

/* Insert @d as @key's entry, which a lookup missed: 0, or -1 when the table is full. */
static __always_inline int pl_flow_table_insert(const struct pl_flow_key *key, struct pl_flow_val *d)
{
	struct pl_flow_val *v;
	long err;

	err = bpf_map_update_elem(&flows, key, d, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* another CPU inserted it meanwhile: our per-CPU value is zero */
		v = bpf_map_lookup_elem(&flows, key);
		if (v) {
			pl_flow_val_add(v, d);
			return 0;
		}
	}
	return err ? -1 : 0;
}

/* Add @d to @key's entry in the table, inserting it when missing: 0, or -1 when the table is full. */
static __always_inline int pl_flow_table_put(const struct pl_flow_key *key, struct pl_flow_val *d)
{
	struct pl_flow_val *v = bpf_map_lookup_elem(&flows, key);

	if (v) {
		pl_flow_val_add(v, d);
		return 0;
	}
	return pl_flow_table_insert(key, d);
}

/* pl_flow_table_put(), the loss counted in @s when the table is full */
static __always_inline int pl_flow_table_add(const struct pl_flow_key *key,
					     struct pl_flow_val *d, struct pl_stats *s)
{
	if (!pl_flow_table_put(key, d))
		return 0;
	pl_flow_lost(s, d->packets, d->bytes);
	return -1;
}

/*
 * Slot @c's delta @d of @key, whose flow a lookup did not find in the
 * table: a reset took it out (loader/state.c). What this CPU's slot held
 * then is the flow's base (flow_debt): a delta of nothing more is not put
 * back, so the flows of before a reset do not fill the table again; a
 * delta the full table does not take counts as not recorded in flows, less
 * that base, under the flow's own hook (the packet folding it may be
 * another hook's).
 */
static __always_inline void pl_flow_fold_new(const struct pl_flow_key *key, struct pl_flow_val *d)
{
	struct pl_flow_debt *b;
	struct pl_stats *s;
	__u64 pk = d->packets, by = d->bytes;
	__u32 slot = (__u32)pl_flow_slot(key);

	b = bpf_map_lookup_elem(&flow_debt, key);
	if (b) {	/* this CPU's value: its slot's */
		pk = pk > b->packets ? pk - b->packets : 0;
		by = by > b->bytes ? by - b->bytes : 0;
		b->packets = 0;
		b->bytes = 0;
		if (!pk && !by)
			return;
	}
	if (!pl_flow_table_insert(key, d))
		return;
	s = bpf_map_lookup_elem(&stats, &slot);
	if (s)
		pl_flow_lost(s, pk, by);
}

/* Fold slot @c's delta into the table (@d: room for it) and empty it; its flow stays. */
static __always_inline void pl_flow_slot_fold(struct pl_flow_slot *c, struct pl_flow_val *d)
{
	struct pl_flow_val *v;

	d->packets = c->packets;
	d->bytes = c->bytes;
	d->first_ns = (__u64)c->first << PL_FLOW_TSHIFT;
	d->last_ns = (__u64)c->last << PL_FLOW_TSHIFT;
	d->tcp_flags = c->key.pad;
	c->key.pad = 0;		/* the table's key */
	if (d->packets) {
		v = bpf_map_lookup_elem(&flows, &c->key);
		if (v)
			pl_flow_val_add(v, d);
		else
			pl_flow_fold_new(&c->key, d);
	}
	c->packets = 0;
	c->bytes = 0;
}

static __always_inline void pl_flow_account(const struct pl_flow_key *key, __u32 len,
					    __u8 tcp_flags, struct pl_stats *s)
{
	__u32 bits = pl_flow_cache_bits & 31, mask = (1U << bits) - 1;
	struct pl_flow_slot *c, *victim = NULL;
	__u64 now = pl_now_coarse();
	__u32 t = (__u32)(now >> PL_FLOW_TSHIFT);
	__u32 base = bpf_get_smp_processor_id() << bits;
	__u32 h = pl_flow_hash(key) >> (32 - bits);
	struct pl_flow_val d;

	for (int w = 0; w < PL_FLOW_CACHE_WAYS; w++) {
		__u32 idx = base | ((h + w) & mask);

		c = bpf_map_lookup_elem(&flow_cache, &idx);
		if (!c)
			break;	/* a CPU beyond the map (not sized by a loader) */
		if (pl_flow_slot_eq(c, key)) {
			if (c->bytes > 0xffffffffU - len) {
				if (pl_flow_held(now))
					break;	/* this packet to the table */
				pl_flow_slot_fold(c, &d);
			}
			if (!c->packets)
				c->first = t;
			c->packets++;
			c->bytes += len;
			c->last = t;
			c->key.pad |= tcp_flags;
			return;
		}
		if (!c->key.ifindex) {
			victim = c;
			break;	/* a flow is never installed past a free slot */
		}
		if (!victim && t - c->last >= PL_FLOW_IDLE_UNITS)
			victim = c;
	}

	/* not cached: count this packet in the table (admission) */
	d.packets = 1;
	d.bytes = len;
	d.first_ns = now;
	d.last_ns = now;
	d.tcp_flags = tcp_flags;
	if (pl_flow_table_add(key, &d, s) || !victim)
		return;

	/* admitted: take the free slot, or the idle one after folding it */
	c = victim;
	if (c->key.ifindex) {
		if (pl_flow_held(now))
			return;
		pl_flow_slot_fold(c, &d);
	}
	c->key = *key;
	c->packets = 0;
	c->bytes = 0;
	c->first = t;
	c->last = t;
}

#endif /* __PKTLENS_BPF_FLOW_H */
