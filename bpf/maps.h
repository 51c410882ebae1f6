/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps every pktlens packet program uses. Each attachment (netns,
 * interface) gets its own instance; XDP and tc programs of one attachment
 * share them (the loader reuses the first object's map fds).
 */
#ifndef __PKTLENS_BPF_MAPS_H
#define __PKTLENS_BPF_MAPS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, struct pl_stats);
} stats SEC(".maps");

/*
 * The flow table. A preallocated PERCPU_HASH rather than an LRU: when it is
 * full a new flow is refused (and counted in pl_stats.flow_lost*) instead of
 * silently evicting a flow already recorded, so every flow that is shown has
 * exact counts and sum(flows) + lost == packets. Capacity is set by the
 * loader (attach --flows). Hot flows are served by flow_cache below, so the
 * hash is only touched on a cache miss.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PL_FLOWS_DEFAULT);
	__type(key, struct pl_flow_key);
	__type(value, struct pl_flow_val);
} flows SEC(".maps");

/*
 * The per-CPU write-back cache in front of `flows` (bpf/flow.h): a region
 * of 2^pl_flow_cache_bits slots per possible CPU, sized by the loader.
 * Mmapable for its layout: the slots start page-aligned, a line each.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1U << PL_FLOW_CACHE_MIN_BITS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pl_flow_slot);
} flow_cache SEC(".maps");

/*
 * The coarse clock of this CPU as last read, and the jiffy it was read in
 * (pl_now_coarse()). The program's own (not pinned, not shared).
 */
struct pl_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_clock);
} pl_clock SEC(".maps");

/*
 * pl_ktime_coarse(), read once per jiffy and CPU: the coarse clock only
 * moves when the tick moves jiffies, and jiffies is one load (the verifier
 * inlines bpf_jiffies64() on 64-bit JITs) where the clock is a helper call,
 * a seqcount loop and a timespec conversion (1-2 ns of a 25 ns packet).
 * The tick advances jiffies just before the clock: a read in between keeps
 * the previous tick's time for the rest of this jiffy, still within the
 * clock's own resolution and never going back.
 */
static __always_inline __u64 pl_now_coarse(void)
{
	struct pl_clock *c;
	__u32 zero = 0;
	__u64 j;

	if (!pl_has_helper(ktime_get_coarse_ns) || !pl_has_helper(jiffies64))
		return pl_ktime_coarse();
	c = bpf_map_lookup_elem(&pl_clock, &zero);
	if (!c)
		return pl_ktime_coarse();
	j = bpf_jiffies64();
	if (c->jiffies != j) {
		__u64 ns = bpf_ktime_get_coarse_ns();

		if (ns > c->ns)
			c->ns = ns;
		c->jiffies = j;
	}
	return c->ns;
}

/* The cache's control: what a reset holds still (struct pl_flow_ctl, bpf/flow.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_flow_ctl);
} flow_ctl SEC(".maps");

/*
 * What cache slots held of the flows the last reset took out of the table
 * (struct pl_flow_debt): user space writes it while a reset holds the
 * caches, a fold into a full table reads it. Sized by the loader.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pl_flow_key);
	__type(value, struct pl_flow_debt);
} flow_debt SEC(".maps");

/*
 * Filter chaining: the verdict of the RULES program of a hook (enum
 * pl_slot) for the packet in flight on this CPU, read by that hook's MAIN
 * program right after the tail call (bpf/chain.h).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} chain_res SEC(".maps");

/*
 * Policy rules, as `policy add/load` left them (by id): the loader's record,
 * never read by BPF. The programs judge packets by the rule-set maps in
 * bpf/policy.h, built from this. Created small; a commit that needs more
 * room pins a larger copy in its place (loader/policy.c).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PL_POLICY_RULES_INIT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct pl_rule);
} policy_rules SEC(".maps");

/* Texts of expression rules, by rule id: the loader's record, never read by BPF. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * PL_POLICY_EXPRS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct pl_rule_expr);
} policy_exprs SEC(".maps");

/*
 * Verdicts of a rule set's expressions for the packet in flight, per hook
 * (enum pl_slot): written by the expression stage (pcap/, loader/policy.c)
 * right before it tail-calls the rule set's program, which reads them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_SLOT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} expr_bits SEC(".maps");

/*
 * Hits per rule, by pl_rule.ctr; kept across rule-set swaps. Keys below
 * PL_RULE_GEN here, the others in the map of their generation in rule_gens
 * (include/pktlens/pktlens.h).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PL_RULE_GEN);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct pl_rule_stats);
} rule_stats SEC(".maps");

struct pl_rule_gen {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PL_RULE_GEN);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	/* sizes, not types: clang leaves types seen through two pointers as forward declarations */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct pl_rule_stats));
};

/* Slot g: the counters of generation g's keys, once a commit made them; slot 0 unused. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, PL_RULE_GENS);
	__type(key, __u32);
	__array(values, struct pl_rule_gen);
} rule_gens SEC(".maps");

/*
 * The same counters in an array for counter keys below PL_RULE_FAST_MAX
 * (pl_policy_cfg.fast): an index instead of a hash lookup on the path of
 * every packet a rule decides. Keyed by pl_rule.ctr like rule_stats, shared
 * by every rule set of the attachment, so the counts carry over rule-set
 * swaps as rule_stats' do; readers add both (loader/policy.c). Attachments
 * made before it have none (fast == 0: every rule counts in rule_stats).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_RULE_FAST_MAX);
	__type(key, __u32);
	__type(value, struct pl_rule_stats);
} rule_ctrs SEC(".maps");

/* What attach set up; written by the loader, never by BPF. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_meta);
} meta SEC(".maps");

#endif /* __PKTLENS_BPF_MAPS_H */
