/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy rules, shared by the XDP and tc programs (struct pl_rule in
 * include/pktlens/pktlens.h). A rule set of one direction lives in the four
 * maps below; every rule set gets a fresh instance of them, loaded with its
 * own pair of *_policy programs, and goes live by one PROG_ARRAY update
 * (loader/policy.c): a packet is judged by one whole rule set.
 *
 * Judging a packet: rules that match on nothing but one address field are
 * folded into an LPM trie per field and family, whose value is the first
 * (prio, id) of all those rules covering the longest matching prefix, so
 * 100,000 prefixes cost one lookup. When that candidate comes before the
 * first of all other rules, it decides (pl_policy()). Else the others, in
 * policy_list in (prio, id) order, are tried until one matches or the LPM
 * candidate comes first: with bpf_loop() only those the packet's ports,
 * VLAN and protocol select by lookup (policy_class, policy_bits below),
 * else all of them.
 */
#ifndef __PKTLENS_BPF_POLICY_H
#define __PKTLENS_BPF_POLICY_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#define PL_LPM_TRIE(name, ktype)						\
struct {									\
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);					\
	__uint(max_entries, 1);		/* set by the loader */			\
	__uint(map_flags, BPF_F_NO_PREALLOC);					\
	__type(key, struct ktype);						\
	__type(value, struct pl_rule_ref);					\
} name SEC(".maps")

/* one trie per field and family: an IPv4 key is 4 bytes, not 16 (2 ns a lookup) */
PL_LPM_TRIE(policy_src4, pl_lpm4_key);
PL_LPM_TRIE(policy_src6, pl_lpm6_key);
PL_LPM_TRIE(policy_dst4, pl_lpm4_key);
PL_LPM_TRIE(policy_dst6, pl_lpm6_key);

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

/*
 * policy_list looked up, not walked (PL_WALK_LOOP): for each field some
 * list rule matches on (pl_policy_cfg.lf_used), policy_class maps the
 * packet's value (at lf_base[field] + value) to a class and policy_bits a
 * class to the list rules that may match a packet of it: those that do not
 * match on the field and those whose value or range covers it (lf_none: the
 * packet lacks the field, only the former). The AND of the fields' bits is
 * a superset of the rules that match; its rules are tried in list order,
 * each matched in full as before (addresses, expressions), so the first
 * match by priority is the walk's. The candidates live in policy_cand while
 * bpf_loop() takes them one by one.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* set by the loader */
	__type(key, __u32);
	__type(value, __u32);
} policy_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* set by the loader */
	__type(key, __u32);
	__type(value, struct pl_rule_bits);
} policy_bits SEC(".maps");

/*
 * The candidates, and where taking them is: in a map, not in the walk's
 * state on the stack, so the verifier checks bpf_loop()'s callback once,
 * not once per word.
 */
struct pl_cand {
	struct pl_rule_bits b;
	struct pl_rule_bits m;	/* the rules the expression bits leave */
	__u32 nz;		/* bit i: b.w[i] may have a candidate (taken lowest first) */
	__u32 words;		/* pl_policy_cfg.words; 0: no lookup, every rule is tried */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_cand);
} policy_cand SEC(".maps");

/*
 * --limit rules (PL_ACT_LIMIT). Their state is the attachment's, by counter
 * key (pl_rule.ctr), so it outlives rule-set swaps as the counters do; the
 * loader creates and deletes the entries with the rules. A --per rule
 * bucket is one for all CPUs under its own spin lock; the buckets of --per
 * src|dst|flow keys are in an LRU map per rule, each key's updates under one
 * of PL_LIM_LOCKS locks picked by the key's hash (LRU maps cannot hold a
 * lock). One global bucket, not one per CPU: a per-CPU bucket would pass
 * the rate once per CPU the traffic is spread over.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PL_LIM_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct pl_limit_bucket);
} limit_bucket SEC(".maps");

struct pl_limit_inner {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);		/* each rule's own: --per-size */
	/* sizes, not types: clang leaves types seen through two pointers as forward declarations */
	__uint(key_size, sizeof(struct pl_limit_key));
	__uint(value_size, sizeof(struct pl_limit_state));
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, PL_LIM_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__array(values, struct pl_limit_inner);
} limit_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PL_LIM_LOCKS);
	__type(key, __u32);
	__type(value, struct pl_limit_lock);
} limit_locks SEC(".maps");

/* GCRA: 1 when a packet of @cost ticks at @now exceeds, else 0 and the bucket takes it */
static __always_inline int pl_gcra(__u64 *tat, __u64 now, __u64 cost, __u64 tau)
{
	__u64 t = *tat > now ? *tat : now;

	if (t + cost - now > tau)
		return 1;
	*tat = t + cost;
	return 0;
}

/* The key of @p for a --per rule; @k zeroed by the caller. */
static __always_inline void pl_limit_key(struct pl_limit_key *k, __u8 per, const struct pl_pkt *p)
{
	k->per = per;
	k->l3 = p->l3;
	if (per != PL_PER_DST)
		__builtin_memcpy(k->saddr, p->key.saddr, 16);
	if (per != PL_PER_SRC)
		__builtin_memcpy(k->daddr, p->key.daddr, 16);
	if (per == PL_PER_FLOW) {
		k->l4proto = p->key.l4proto;
		k->sport = p->key.sport;
		k->dport = p->key.dport;
	}
}

/* Which of limit_locks guards key @k */
static __always_inline __u32 pl_limit_lock_of(const struct pl_limit_key *k)
{
	__u64 w[5], h = 0;

	__builtin_memcpy(w, k, sizeof(w));
	h = w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4];
	h ^= h >> 32;
	return (__u32)((h * 0x9e3779b97f4a7c15ULL) >> 56) & (PL_LIM_LOCKS - 1);
}

/*
 * 1 when @p exceeds the limit of rule @r, else 0; counts keys it inserts
 * into @s. The precise clock: the coarse one moves in jiffies, which would
 * cap a burst smaller than a jiffy's worth of rate at one packet a jiffy.
 * No state (an entry the loader did not make): exceeded.
 */
static __always_inline int pl_limit_over(const struct pl_rule *r, const struct pl_pkt *p,
					 struct pl_rule_stats *s)
{
	__u64 now = bpf_ktime_get_ns() << PL_LIM_TICK_SHIFT;
	__u64 c = r->lim.unit == PL_LIM_PPS ? 1 : (__u64)p->len * 8;
	__u64 cost = c * PL_LIM_TICKS_PER_SEC / r->lim.rate, tau = r->lim.tau;
	struct pl_limit_key k = {};
	struct pl_limit_state *st;
	struct pl_limit_lock *l;
	__u32 ctr = r->ctr, li;
	void *keys;
	int over;

	if (r->lim.per == PL_PER_RULE) {
		struct pl_limit_bucket *b = bpf_map_lookup_elem(&limit_bucket, &ctr);

		if (!b)
			return 1;
		bpf_spin_lock(&b->lock);
		over = pl_gcra(&b->tat, now, cost, tau);
		bpf_spin_unlock(&b->lock);
		return over;
	}
	keys = bpf_map_lookup_elem(&limit_keys, &ctr);
	if (!keys)
		return 1;
	pl_limit_key(&k, r->lim.per, p);
	st = bpf_map_lookup_elem(keys, &k);
	if (!st) {
		struct pl_limit_state fresh = { 0 };

		if (!bpf_map_update_elem(keys, &k, &fresh, BPF_NOEXIST) && s)
			s->keys_new++;
		st = bpf_map_lookup_elem(keys, &k);
		if (!st)
			return 1;
	}
	li = pl_limit_lock_of(&k);
	l = bpf_map_lookup_elem(&limit_locks, &li);
	if (!l)
		return 1;
	bpf_spin_lock(&l->lock);
	over = pl_gcra(&st->tat, now, cost, tau);
	bpf_spin_unlock(&l->lock);
	return over;
}

/* What the rule set decided for a packet. */
struct pl_judgement {
	__u32 action;		/* enum pl_action; PL_ACT_NONE: no rule matched */
	__u32 arg;
	__u32 rule;		/* id of the rule that decided, 0: none */
	__u32 sample_rule;	/* id of the first --sample rule whose 1/N chose it, 0: none */
	__u32 flags;		/* the deciding rule's PL_RF_* */
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

/* One hit of @len bytes at @now in a rule's counters on this CPU */
static __always_inline void pl_rule_bump(struct pl_rule_stats *s, __u32 len, __u64 now)
{
	s->pkts++;
	s->bytes += len;
	s->last_ns = now;
}

/*
 * Count a hit of the rule with counters @ctr; its counters on this CPU, or
 * NULL. Keys below @fast (pl_policy_cfg.fast) count in the rule_ctrs array,
 * the others in rule_stats or their generation's map (PL_RULE_GEN).
 */
static __always_inline struct pl_rule_stats *pl_rule_hit(__u32 ctr, __u32 fast, __u32 len,
							 __u64 now)
{
	struct pl_rule_stats *s;

	if (ctr < fast) {
		s = bpf_map_lookup_elem(&rule_ctrs, &ctr);
		/*
		 * one lookup per map: merged into one call of a map chosen at
		 * run time, the verifier could inline neither lookup
		 */
		asm volatile("" : "+r"(s));
	} else {
		__u32 g = ctr / PL_RULE_GEN;
		void *m = g ? bpf_map_lookup_elem(&rule_gens, &g) : 0;

		/* no map of its generation: an attachment that keeps all keys in rule_stats */
		if (m) {
			s = bpf_map_lookup_elem(m, &ctr);
			asm volatile("" : "+r"(s));
		} else {
			s = bpf_map_lookup_elem(&rule_stats, &ctr);
		}
	}
	if (s)
		pl_rule_bump(s, len, now);
	return s;
}

/*
 * pl_rule_hit() of a rule that is not a --limit rule, in a global function:
 * the verifier checks the two maps' paths once, not once more for each
 * state of the caller (the bounded-walk programs are close to its limit).
 * 1 when @every (a --sample rule's N, else 0) says this hit on this CPU is
 * sampled.
 */
__noinline int pl_rule_count(__u32 ctr, __u32 fast, __u32 len, __u64 now, __u32 every)
{
	struct pl_rule_stats *s = pl_rule_hit(ctr, fast, len, now);

	return s && every && s->pkts % every == 0;
}

/*
 * A hit whose counters the caller does not use after: a key of the
 * rule_ctrs array counted inline (the drop by prefix of bpf/early.h), the
 * others by pl_rule_count(), whose map lookups the verifier checks once.
 */
static __always_inline void pl_rule_tally(__u32 ctr, __u32 fast, __u32 len, __u64 now)
{
	struct pl_rule_stats *s;

	if (ctr >= fast) {
		pl_rule_count(ctr, 0, len, now, 0);
		return;
	}
	s = bpf_map_lookup_elem(&rule_ctrs, &ctr);
	if (s)
		pl_rule_bump(s, len, now);
}

static __always_inline int pl_before(__u32 prio, __u32 id, const struct pl_rule_ref *best)
{
	return prio < best->prio || (prio == best->prio && id < best->id);
}

/* What the address rule @r decided: its action, as the judgement @j. */
static __always_inline void pl_judged_by(struct pl_judgement *j, const struct pl_rule_ref *r)
{
	j->action = r->action;
	j->arg = r->arg;
	j->rule = r->id;
	j->flags = r->flags;
}

/*
 * The LPM candidate of address @a in @map, if better than *best: 4 bytes at
 * @a for IPv4, 16 for IPv6, copied a word at a time (@a 4-byte aligned on
 * the stack, anything in a packet; the key's words are aligned).
 */
static __always_inline void pl_lpm_candidate(void *map, int v4, const __u8 *a,
					     struct pl_rule_ref *best)
{
	struct pl_lpm6_key k6 = { .prefixlen = 128 };
	struct pl_lpm4_key k4 = { .prefixlen = 32 };
	struct pl_rule_ref *r;

	if (v4) {
		*(pl_u32_a *)k4.addr = *(const pl_u32_a *)a;
		r = bpf_map_lookup_elem(map, &k4);
	} else {
		for (int i = 0; i < 4; i++)
			((pl_u32_a *)k6.addr)[i] = ((const pl_u32_a *)a)[i];
		r = bpf_map_lookup_elem(map, &k6);
	}
	if (r && pl_before(r->prio, r->id, best))
		*best = *r;
}

/*
 * The address rules' candidate for a packet of family @v4 (else IPv6) from
 * @src and @dst (4 or 16 bytes, as pl_lpm_candidate() takes them), into
 * *best: the tries of the rule set @cfg has entries in.
 */
static __always_inline void pl_lpm_best(const struct pl_policy_cfg *cfg, int v4, const __u8 *src,
					const __u8 *dst, struct pl_rule_ref *best)
{
	if (v4) {
		if (cfg->src4_cidrs)
			pl_lpm_candidate(&policy_src4, 1, src, best);
		if (cfg->dst4_cidrs)
			pl_lpm_candidate(&policy_dst4, 1, dst, best);
	} else {
		if (cfg->src6_cidrs)
			pl_lpm_candidate(&policy_src6, 0, src, best);
		if (cfg->dst6_cidrs)
			pl_lpm_candidate(&policy_dst6, 0, dst, best);
	}
}

/* State of the walk over policy_list. */
struct pl_walk {
	const struct pl_pkt *p;		/* bpf_loop(): the packet; the bounded walk: unused */
	struct pl_rule_ref best;	/* the LPM candidate to beat */
	struct pl_judgement j;
	__u32 n;
	__u32 fast;			/* pl_policy_cfg.fast */
	__u64 now;
	__u64 exprs;			/* bit i: expression i matched */
};

/* Try rule @r (the next of the list) on @p; 1 when the walk is over. */
static __always_inline long pl_walk_apply(const struct pl_rule *r, struct pl_walk *w,
					  const struct pl_pkt *p)
{
	struct pl_rule_stats *s;
	__u32 action, arg;
	int fire;		/* a --sample hit that is sampled */

	if (!pl_before(r->prio, r->id, &w->best))
		return 1;
	if (!pl_rule_match(r, p, w->exprs))
		return 0;
	action = r->action;
	arg = r->arg;
	if (action != PL_ACT_LIMIT) {
		fire = pl_rule_count(r->ctr, w->fast, p->len, w->now,
				     action == PL_ACT_SAMPLE ? arg : 0);
	} else {
		/* in rule_stats: readers add rule_ctrs' part (pkts, bytes) to it */
		s = pl_rule_hit(r->ctr, 0, p->len, w->now);
		if (!pl_limit_over(r, p, s)) {
			if (s) {
				s->conf_pkts++;
				s->conf_bytes += p->len;
			}
			return 0;	/* within the rate: on to the next rule */
		}
		if (s) {
			s->exc_pkts++;
			s->exc_bytes += p->len;
		}
		action = r->lim.over;
		arg = r->lim.over_arg;
		fire = s && arg && s->exc_pkts % arg == 0;
	}
	if (action == PL_ACT_SAMPLE) {
		/* every Nth hit (of a limit: excess) on this CPU goes to a `sample --policy` (bpf/sample.h) */
		if (!w->j.sample_rule && fire)
			w->j.sample_rule = r->id;
		return 0;
	}
	w->j.action = action;
	w->j.arg = arg;
	w->j.rule = r->id;
	w->j.flags = r->flags;
	return 1;
}

/* Try rule @i of the list on @p; 1 when the walk is over. */
static __always_inline long pl_walk_rule(__u32 i, struct pl_walk *w, const struct pl_pkt *p)
{
	const struct pl_rule *r;

	if (i >= w->n)
		return 1;
	r = bpf_map_lookup_elem(&policy_list, &i);
	if (!r)
		return 1;
	return pl_walk_apply(r, w, p);
}

/*
 * The index of the one bit set in @b: the bits below it counted, without a
 * branch (a branch per bit would have the verifier check the rule once per
 * index).
 */
static __always_inline __u32 pl_bit_index(__u64 b)
{
	__u64 x = b - 1;

	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((x * 0x0101010101010101ULL) >> 56);
}

/* The bits of field @f for a packet with value @v (@has: it has the field), or NULL */
static __always_inline const struct pl_rule_bits *pl_lf_bits(const struct pl_policy_cfg *cfg,
							     __u32 f, int has, __u32 v)
{
	__u32 cls = cfg->lf_none[f & 3], k;
	__u32 *c;

	if (has) {
		k = cfg->lf_base[f & 3] + v;
		c = bpf_map_lookup_elem(&policy_class, &k);
		if (!c)
			return 0;
		cls = *c;
	}
	return bpf_map_lookup_elem(&policy_bits, &cls);
}

/*
 * @c &= @b over its first cfg->words words (read from the map each time: a
 * bound kept in a register would leave the verifier one state per exit of
 * each of these loops, multiplied)
 */
static __always_inline void pl_cand_and(struct pl_cand *c, const struct pl_rule_bits *b,
					const struct pl_policy_cfg *cfg)
{
	for (__u32 i = 0; i < PL_POLICY_LIST_MAX / 64; i++) {
		if (i >= cfg->words)
			break;
		c->b.w[i] &= b->w[i];
	}
}

/*
 * Into @c->m: the rules without an expression and those whose expression
 * bit is set in @exprs, so that packets no expression matched never try an
 * expression rule.
 */
static __always_inline int pl_cand_exprs(struct pl_cand *c, const struct pl_policy_cfg *cfg,
					 __u64 exprs)
{
	const struct pl_rule_bits *b;
	__u32 k = cfg->expr_none;

	b = bpf_map_lookup_elem(&policy_bits, &k);
	if (!b)
		return -1;
	for (__u32 i = 0; i < PL_POLICY_LIST_MAX / 64; i++) {
		if (i >= cfg->words)
			break;
		c->m.w[i] = b->w[i];
	}
	c->m.nz = b->nz;
	for (__u32 i = 0; i < PL_POLICY_EXPRS_MAX && exprs; i++) {
		__u64 low = exprs & -exprs;
		__u32 idx = cfg->expr_idx[pl_bit_index(low) & 63];
		__u32 wi = (idx / 64) & (PL_POLICY_LIST_MAX / 64 - 1);

		exprs ^= low;
		c->m.w[wi] |= 1ULL << (idx & 63);
		c->m.nz |= 1U << wi;
	}
	return 0;
}

/*
 * The list rules that may match a packet into policy_cand; 1 when none
 * can, -1 when it cannot say (a map the loader did not fill): then every
 * rule is tried. The fields' word masks are intersected first: a packet no
 * rule can match (the common case of many port rules) costs a few loads,
 * and only words some rule may hit are intersected.
 * @has: bit (1 << enum pl_lfield) per field the packet has; @ports:
 * sport << 16 | dport; @pv: VLAN << 8 | IP protocol; @exprs: the
 * expression stage's bits. A global function, so the verifier checks it
 * once, whatever the caller's state.
 */
/* The fields' bits of a packet, ANDed into @c (@nz_only: only their word masks, into @nz) */
#define PL_CAND_FIELD(f, has_f, v)							\
	do {										\
		if (cfg->lf_used & (1U << (f))) {					\
			b = pl_lf_bits(cfg, (f), (has_f), (v));				\
			if (!b) {							\
				c->words = 0;	/* every rule is tried */		\
				return -1;						\
			}								\
			if (nz_only)							\
				nz &= b->nz;						\
			else								\
				pl_cand_and(c, b, cfg);					\
		}									\
	} while (0)

__noinline int pl_candidates(__u32 has, __u32 ports, __u32 pv, __u64 exprs)
{
	const struct pl_policy_cfg *cfg;
	const struct pl_rule_bits *b;
	struct pl_cand *c;
	__u32 zero = 0, nz;

	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	c = bpf_map_lookup_elem(&policy_cand, &zero);
	if (!c)
		return -1;
	c->words = 0;
	if (!cfg || !cfg->words)
		return -1;
	nz = cfg->words < 32 ? (1U << cfg->words) - 1 : ~0U;
	if (cfg->exprs) {
		if (pl_cand_exprs(c, cfg, exprs))
			return -1;
		nz &= c->m.nz;
	}
	/*
	 * twice: the masks first, then the words; keeping the fields' bits
	 * between the two would take stack the call chain does not have (512
	 * bytes in all on Linux 6.1)
	 */
	for (int nz_only = 1; nz_only >= 0; nz_only--) {
		PL_CAND_FIELD(PL_LF_PROTO, has & (1U << PL_LF_PROTO), pv & 0xff);
		PL_CAND_FIELD(PL_LF_DPORT, has & (1U << PL_LF_DPORT), ports & 0xffff);
		PL_CAND_FIELD(PL_LF_SPORT, has & (1U << PL_LF_SPORT), ports >> 16);
		PL_CAND_FIELD(PL_LF_VLAN, 1, pv >> 8);
		if (!nz_only)
			break;
		c->nz = nz;
		c->words = cfg->words;
		if (!nz)
			return 1;
		__builtin_memset(&c->b, 0xff, sizeof(c->b));
		if (cfg->exprs)
			pl_cand_and(c, &c->m, cfg);
	}
	return 0;
}
#undef PL_CAND_FIELD

/* pl_candidates() of @p, whose expression bits are @exprs */
static __always_inline int pl_candidates_of(const struct pl_pkt *p, __u64 exprs)
{
	__u32 ip = pl_is_ip(p) && p->err != PL_PERR_MALFORMED;
	__u32 has = ip ? 1U << PL_LF_PROTO : 0;

	if (ip && p->ports)
		has |= (1U << PL_LF_SPORT) | (1U << PL_LF_DPORT);
	return pl_candidates(has, (__u32)p->key.sport << 16 | p->key.dport,
			     (__u32)p->key.vlan << 8 | p->key.l4proto, exprs);
}

/*
 * The list index of the rule to try in iteration @it of the walk: the next
 * candidate of policy_cand (taken from it), or @it itself when the rule set
 * is not looked up; -1 when none is left. A global function like
 * pl_candidates(): checked once, and the walk's callback stays one path.
 */
__noinline int pl_next(__u32 it)
{
	struct pl_cand *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&policy_cand, &zero);
	if (!c || !c->words)
		return (int)(it & 0xffff);
	for (__u32 k = 0; k < PL_POLICY_LIST_MAX / 64; k++) {
		__u32 nz = c->nz, wi;
		__u64 m, low;

		if (!nz)
			return -1;
		wi = pl_bit_index((__u64)(nz & -nz)) & (PL_POLICY_LIST_MAX / 64 - 1);
		m = c->b.w[wi];
		if (m) {
			low = m & -m;
			c->b.w[wi] = m ^ low;
			if (m == low)
				c->nz = nz ^ (1U << wi);
			return (int)(wi * 64 + pl_bit_index(low));
		}
		c->nz = nz ^ (1U << wi);
	}
	return -1;
}

/* What the early judgement (bpf/early.h) made of a packet. */
enum pl_early {
	PL_EARLY_NONE,		/* nothing: the packet is judged from its parse */
	PL_EARLY_DROP,		/* dropped and counted: the program returns at once */
	PL_EARLY_BEST,		/* the address rules' candidate is in policy_walk's early */
	PL_EARLY_NOBEST,	/* the address rules have no candidate */
};

/*
 * Kernels without bpf_loop() (before 5.17) walk a bounded loop instead. Its
 * body is a global function, which the verifier checks once on its own; as
 * such it takes no pointers before 5.12, so the walk's state and the packet
 * are in a per-CPU scratch map.
 */
struct pl_walk_scratch {
	struct pl_walk w;
	struct pl_pkt p;
	struct pl_rule_ref early;	/* the candidate bpf/early.h found (PL_EARLY_BEST) */
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

/*
 * The walk without bpf_loop() over the walk and packet in policy_walk:
 * PL_POLICY_LIST_BOUNDED rules at most, @n tried.
 */
static __always_inline void pl_walk_bounded(__u32 n)
{
	for (__u32 i = 0; i < PL_POLICY_LIST_BOUNDED; i++)
		if (i >= n || pl_walk_step(i))
			break;
}

/* bpf_loop() callback of pl_walk_loop(): the next rule pl_next() picks, on the scratch copy */
static long pl_walk_one(__u32 it, void *ctx)
{
	struct pl_walk_scratch *s;
	__u32 zero = 0;
	int i;

	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return 1;
	i = pl_next(it);
	if (i < 0)
		return 1;
	return pl_walk_rule((__u32)i, &s->w, &s->p);
}

/*
 * The walk with bpf_loop() over the walk and packet in policy_walk, at most
 * @n rules tried. A global function: the verifier checks it and its
 * callback once, not once for every state the parser leaves (the program
 * as a whole is close to the verifier's limit of a million instructions).
 */
__noinline int pl_walk_loop(__u32 n)
{
	struct pl_walk_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return 0;
	if (pl_candidates_of(&s->p, s->w.exprs) == 1)
		return 0;	/* no list rule can match */
	bpf_loop(n < PL_POLICY_LIST_MAX ? n : PL_POLICY_LIST_MAX, pl_walk_one, 0, 0);
	return 0;
}

/* How a rule-set program walks policy_list (its *_policy and *_policy_bounded variants). */
enum pl_walk_mode {
	PL_WALK_NONE,		/* no rule set: count only */
	PL_WALK_LOOP,		/* bpf_loop() (Linux 5.17): up to PL_POLICY_LIST_MAX rules */
	PL_WALK_BOUNDED,	/* a bounded loop, any kernel: up to PL_POLICY_LIST_BOUNDED */
};

/*
 * Judge the packet in @s (policy_walk), seen at @slot, by this program's
 * rule set into @s->w.j; counts the rules that matched. With bpf_loop() the
 * verifier checks the walk's body once, whatever the length; kernels
 * without it walk a bounded loop (pl_walk_bounded()), so their lists are
 * shorter (the loader refuses longer ones). Expression rules use the bits
 * the rule set's expression stage left in expr_bits just before
 * tail-calling us.
 */
static __always_inline void pl_judge(struct pl_walk_scratch *s, __u32 slot, const int walk)
{
	const struct pl_pkt *p = &s->p;
	struct pl_walk w = {
		.p = p,
		.best = { .prio = 0xffffffff, .id = 0xffffffff, .ctr = 0 },
		.j = { PL_ACT_NONE, 0, 0, 0, 0 },
	};
	const struct pl_policy_cfg *cfg;
	__u32 zero = 0;

	s->w.j = w.j;
	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	if (!cfg)
		return;
	w.now = pl_now_coarse();
	if (cfg->exprs) {
		__u64 *bits = bpf_map_lookup_elem(&expr_bits, &slot);

		w.exprs = bits ? *bits : 0;
	}
	w.best = s->w.best;	/* pl_policy()'s */
	w.n = cfg->list_len;
	w.fast = cfg->fast;
	if (w.n) {
		s->w = w;
		if (walk == PL_WALK_LOOP)
			pl_walk_loop(w.n);
		else
			pl_walk_bounded(w.n);
		w.j = s->w.j;
	}
	if (w.j.action == PL_ACT_NONE && w.best.id != 0xffffffff) {
		pl_rule_tally(w.best.ctr, cfg->fast, p->len, w.now);
		pl_judged_by(&w.j, &w.best);
	}
	s->w.j = w.j;
}

/*
 * pl_judge() as global functions, one per walk: the verifier checks the
 * rule set's lookups and walk once, not once for every state the parser
 * leaves. Inlined, they took the tc rule-set programs to 949k (5.10,
 * bounded) and 705k (6.1, bpf_loop) of its million instructions, and over
 * with the passive TCP code beside them.
 */
__noinline int pl_judge_bounded(__u32 slot)
{
	struct pl_walk_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (s)
		pl_judge(s, slot, PL_WALK_BOUNDED);
	return 0;
}

__noinline int pl_judge_loop(__u32 slot)
{
	struct pl_walk_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (s)
		pl_judge(s, slot, PL_WALK_LOOP);
	return 0;
}

/*
 * Judge @p, seen at @slot, by this program's rule set. The address rules'
 * LPM candidate is looked up here, or was by the early judgement (@early:
 * enum pl_early, bpf/early.h, from the same header bytes); when it comes
 * before every list rule (the usual drop by prefix) it decides at once,
 * else pl_judge() walks the list (as @walk says) with it as the candidate to
 * beat.
 */
static __always_inline struct pl_judgement pl_policy(const struct pl_pkt *p, __u32 slot,
						     const int walk, int early)
{
	struct pl_judgement j = { PL_ACT_NONE, 0, 0, 0, 0 };
	struct pl_rule_ref best = { .prio = 0xffffffff, .id = 0xffffffff, .ctr = 0 };
	const struct pl_policy_cfg *cfg;
	struct pl_walk_scratch *s;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	if (!cfg)
		return j;
	if (early == PL_EARLY_BEST) {
		s = bpf_map_lookup_elem(&policy_walk, &zero);
		if (!s)
			return j;
		best = s->early;
	} else if (early == PL_EARLY_NOBEST) {
		/* looked up already: no address rule covers it */
	} else if (p->l3 == PL_L3_IPV4 && p->err != PL_PERR_MALFORMED) {
		/* an IPv4-mapped address in an IPv6 packet is IPv6's, as pl_fam() says */
		pl_lpm_best(cfg, 1, p->key.saddr + 12, p->key.daddr + 12, &best);
	} else if (p->l3 == PL_L3_IPV6 && p->err != PL_PERR_MALFORMED) {
		pl_lpm_best(cfg, 0, p->key.saddr, p->key.daddr, &best);
	}
	if (best.id != 0xffffffff && pl_before(best.prio, best.id, &cfg->first)) {
		pl_rule_tally(best.ctr, cfg->fast, p->len, pl_now_coarse());
		pl_judged_by(&j, &best);
		return j;
	}
	if (!cfg->list_len)
		return j;
	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return j;
	s->p = *p;
	s->w.best = best;
	if (walk == PL_WALK_BOUNDED)
		pl_judge_bounded(slot);
	else
		pl_judge_loop(slot);
	return s->w.j;
}

#endif /* __PKTLENS_BPF_POLICY_H */
