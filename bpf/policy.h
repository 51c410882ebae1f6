/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy rules, shared by the XDP and tc programs (struct pl_rule in
 * include/pktlens/pktlens.h). A rule set of one direction lives in the four
 * maps below; every rule set gets a fresh instance of them, loaded with its
 * own pair of *_policy programs, and goes live by one PROG_ARRAY update
 * (loader/policy.c): a packet is judged by one whole rule set.
 *
 * Judging a packet: rules that match on nothing but one address field are
 * folded into an LPM trie per field, keyed by family and address, whose
 * value is the first (prio, id) of all those rules covering the longest
 * matching prefix, so 100,000 prefixes cost one lookup. All other rules are in policy_list in (prio, id) order
 * and are tried until one matches or the LPM candidate comes first.
 */
#ifndef __PKTLENS_BPF_POLICY_H
#define __PKTLENS_BPF_POLICY_H

#include "common.h"
#include "maps.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);		/* set by the loader */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pl_lpm_key);
	__type(value, struct pl_rule_ref);
} policy_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pl_lpm_key);
	__type(value, struct pl_rule_ref);
} policy_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_rule);
} policy_list SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_policy_cfg);
} policy_cfg SEC(".maps");

/* What the rule set decided for a packet. */
struct pl_judgement {
	__u32 action;		/* enum pl_action; PL_ACT_NONE: no rule matched */
	__u32 arg;
	__u32 rule;		/* id of the rule that decided, 0: none */
	__u32 sample_rule;	/* id of the first --sample rule whose 1/N chose it, 0: none */
};

static __always_inline int pl_addr_in(const __u8 *a, const __u8 *net, const __u8 *mask)
{
	__u64 a0, a1, n0, n1, m0, m1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&n0, net, 8);
	__builtin_memcpy(&n1, net + 8, 8);
	__builtin_memcpy(&m0, mask, 8);
	__builtin_memcpy(&m1, mask + 8, 8);
	return (a0 & m0) == n0 && (a1 & m1) == n1;
}

static __always_inline int pl_is_ip(const struct pl_pkt *p)
{
	return p->l3 == PL_L3_IPV4 || p->l3 == PL_L3_IPV6;
}

/* PL_FAM_* of an IP packet: an IPv4-mapped IPv6 source is still IPv6 */
static __always_inline __u8 pl_fam(const struct pl_pkt *p)
{
	return p->l3 == PL_L3_IPV4 ? PL_FAM_IPV4 : PL_FAM_IPV6;
}

static __always_inline int pl_rule_match(const struct pl_rule *r, const struct pl_pkt *p,
					 __u64 exprs)
{
	__u32 m = r->match;

	if ((m & PL_M_EXPR) && !((exprs >> (r->expr & 63)) & 1))
		return 0;
	if ((m & PL_M_VLAN) && p->key.vlan != r->vlan)
		return 0;
	if (!(m & (PL_M_SRC | PL_M_DST | PL_M_PROTO | PL_M_SPORT | PL_M_DPORT)))
		return 1;
	if (!pl_is_ip(p) || p->err == PL_PERR_MALFORMED)
		return 0;
	if ((m & (PL_M_SRC | PL_M_DST)) && r->fam != pl_fam(p))
		return 0;
	if ((m & PL_M_SRC) && !pl_addr_in(p->key.saddr, r->src, r->src_mask))
		return 0;
	if ((m & PL_M_DST) && !pl_addr_in(p->key.daddr, r->dst, r->dst_mask))
		return 0;
	if ((m & PL_M_PROTO) && p->key.l4proto != r->proto)
		return 0;
	if (m & (PL_M_SPORT | PL_M_DPORT)) {
		if (!p->ports)	/* not TCP/UDP/SCTP, or a later fragment */
			return 0;
		if ((m & PL_M_SPORT) && (p->key.sport < r->sport_lo || p->key.sport > r->sport_hi))
			return 0;
		if ((m & PL_M_DPORT) && (p->key.dport < r->dport_lo || p->key.dport > r->dport_hi))
			return 0;
	}
	return 1;
}

/* Count a hit of the rule with counters @ctr; its hits so far on this CPU. */
static __always_inline __u64 pl_rule_hit(__u32 ctr, __u32 len, __u64 now)
{
	struct pl_rule_stats *s = bpf_map_lookup_elem(&rule_stats, &ctr);

	if (!s)
		return 0;
	s->pkts++;
	s->bytes += len;
	s->last_ns = now;
	return s->pkts;
}

static __always_inline int pl_before(__u32 prio, __u32 id, const struct pl_rule_ref *best)
{
	return prio < best->prio || (prio == best->prio && id < best->id);
}

/* The LPM candidate of one address field, if better than *best. */
static __always_inline void pl_lpm_candidate(void *map, __u8 fam, const __u8 *addr,
					     struct pl_rule_ref *best)
{
	struct pl_lpm_key k = { .prefixlen = PL_LPM_FAM_BITS + 128, .fam = fam };
	struct pl_rule_ref *r;

	__builtin_memcpy(k.addr, addr, 16);
	r = bpf_map_lookup_elem(map, &k);
	if (r && pl_before(r->prio, r->id, best))
		*best = *r;
}

/* State of the walk over policy_list. */
struct pl_walk {
	const struct pl_pkt *p;		/* bpf_loop(): the packet; the bounded walk: unused */
	struct pl_rule_ref best;	/* the LPM candidate to beat */
	struct pl_judgement j;
	__u32 n;
	__u64 now;
	__u64 exprs;			/* bit i: expression i matched */
};

/* Try rule @i of the list on @p; 1 when the walk is over. */
static __always_inline long pl_walk_rule(__u32 i, struct pl_walk *w, const struct pl_pkt *p)
{
	const struct pl_rule *r;
	__u64 hits;

	if (i >= w->n)
		return 1;
	r = bpf_map_lookup_elem(&policy_list, &i);
	if (!r || !pl_before(r->prio, r->id, &w->best))
		return 1;
	if (!pl_rule_match(r, p, w->exprs))
		return 0;
	hits = pl_rule_hit(r->ctr, p->len, w->now);
	if (r->action == PL_ACT_SAMPLE) {
		/* every Nth hit on this CPU goes to a `sample --policy` (bpf/sample.h) */
		if (!w->j.sample_rule && r->arg && hits && hits % r->arg == 0)
			w->j.sample_rule = r->id;
		return 0;
	}
	w->j.action = r->action;
	w->j.arg = r->arg;
	w->j.rule = r->id;
	return 1;
}

/* bpf_loop() callback */
static long pl_walk_one(__u32 i, void *ctx)
{
	struct pl_walk *w = ctx;

	return pl_walk_rule(i, w, w->p);
}

/*
 * Kernels without bpf_loop() (before 5.17) walk a bounded loop instead. Its
 * body is a global function, which the verifier checks once on its own; as
 * such it takes no pointers before 5.12, so the walk's state and the packet
 * are in a per-CPU scratch map.
 */
struct pl_walk_scratch {
	struct pl_walk w;
	struct pl_pkt p;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_walk_scratch);
} policy_walk SEC(".maps");

__noinline int pl_walk_step(__u32 i)
{
	__u32 zero = 0;
	struct pl_walk_scratch *s = bpf_map_lookup_elem(&policy_walk, &zero);

	if (!s)
		return 1;
	return (int)pl_walk_rule(i, &s->w, &s->p);
}

/* The walk of @w over @p without bpf_loop(): PL_POLICY_LIST_BOUNDED rules at most. */
static __always_inline void pl_walk_bounded(struct pl_walk *w, const struct pl_pkt *p)
{
	__u32 zero = 0;
	struct pl_walk_scratch *s = bpf_map_lookup_elem(&policy_walk, &zero);

	if (!s)
		return;
	s->w = *w;
	s->p = *p;
	for (__u32 i = 0; i < PL_POLICY_LIST_BOUNDED; i++)
		if (pl_walk_step(i))
			break;
	w->j = s->w.j;
}

/* How a rule-set program walks policy_list (its *_policy and *_policy_bounded variants). */
enum pl_walk_mode {
	PL_WALK_NONE,		/* no rule set: count only */
	PL_WALK_LOOP,		/* bpf_loop() (Linux 5.17): up to PL_POLICY_LIST_MAX rules */
	PL_WALK_BOUNDED,	/* a bounded loop, any kernel: up to PL_POLICY_LIST_BOUNDED */
};

/*
 * Judge @p, seen at @slot, by this program's rule set; counts the rules that
 * matched. With bpf_loop() the verifier checks the body once, whatever the
 * length; kernels without it walk a bounded loop (pl_walk_bounded()), so
 * their lists are shorter (the loader refuses longer ones). Expression
 * rules use the bits the rule set's expression stage left in expr_bits just
 * before tail-calling us.
 */
static __always_inline struct pl_judgement pl_policy(const struct pl_pkt *p, __u32 slot,
						     const int walk)
{
	struct pl_walk w = {
		.p = p,
		.best = { .prio = 0xffffffff, .id = 0xffffffff, .ctr = 0 },
		.j = { PL_ACT_NONE, 0, 0, 0 },
	};
	const struct pl_policy_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	if (!cfg)
		return w.j;
	w.now = pl_now_coarse();
	if (cfg->exprs) {
		__u64 *bits = bpf_map_lookup_elem(&expr_bits, &slot);

		w.exprs = bits ? *bits : 0;
	}
	if (pl_is_ip(p) && p->err != PL_PERR_MALFORMED) {
		if (cfg->src_cidrs)
			pl_lpm_candidate(&policy_src, pl_fam(p), p->key.saddr, &w.best);
		if (cfg->dst_cidrs)
			pl_lpm_candidate(&policy_dst, pl_fam(p), p->key.daddr, &w.best);
	}
	w.n = cfg->list_len;
	if (w.n && walk == PL_WALK_LOOP) {
		bpf_loop(w.n < PL_POLICY_LIST_MAX ? w.n : PL_POLICY_LIST_MAX, pl_walk_one, &w, 0);
	} else if (w.n) {
		pl_walk_bounded(&w, p);
	}
	if (w.j.action == PL_ACT_NONE && w.best.id != 0xffffffff) {
		pl_rule_hit(w.best.ctr, p->len, w.now);
		w.j.action = w.best.action;
		w.j.arg = w.best.arg;
		w.j.rule = w.best.id;
	}
	return w.j;
}

#endif /* __PKTLENS_BPF_POLICY_H */
