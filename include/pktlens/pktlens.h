/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel/user ABI of pktlens: everything a BPF program writes into a map
 * and user space reads back. Plain C types only, no includes, so both
 * clang -target bpf and the user-side C11 code can include it.
 */
#ifndef __PKTLENS_PKTLENS_H
#define __PKTLENS_PKTLENS_H

/* Where a packet was seen: one stats slot per hook and direction. */
enum pl_slot {
	PL_SLOT_XDP_IN = 0,
	PL_SLOT_TC_IN,
	PL_SLOT_TC_OUT,
	PL_SLOT_MAX,
};

enum pl_hook {
	PL_HOOK_XDP = 0,
	PL_HOOK_TC,
};

enum pl_dir {
	PL_DIR_IN = 0,
	PL_DIR_OUT,
};

/* What happened to the packet; XDP and tc verdicts map onto these. */
enum pl_verdict {
	PL_VERDICT_PASS = 0,
	PL_VERDICT_DROP,
	PL_VERDICT_REDIRECT,
	PL_VERDICT_TX,
	PL_VERDICT_ABORTED,
	PL_VERDICT_MAX,
};

/* RMON etherStatsPkts* buckets (RFC 2819), extended for jumbo frames. */
enum pl_rmon {
	PL_RMON_64 = 0,		/*     <=   64 */
	PL_RMON_65_127,
	PL_RMON_128_255,
	PL_RMON_256_511,
	PL_RMON_512_1023,
	PL_RMON_1024_1518,
	PL_RMON_1519_9216,
	PL_RMON_OVER_9216,
	PL_RMON_MAX,
};

/* log2 buckets: bucket k counts lengths in [2^k, 2^(k+1)), k < 16; bucket 16 all from 65536 on. */
#define PL_LOG2_MAX 17

enum pl_l3 {
	PL_L3_IPV4 = 0,
	PL_L3_IPV6,
	PL_L3_ARP,
	PL_L3_OTHER,
	PL_L3_MAX,
};

enum pl_l4 {
	PL_L4_TCP = 0,
	PL_L4_UDP,
	PL_L4_ICMP,
	PL_L4_ICMPV6,
	PL_L4_SCTP,
	PL_L4_OTHER,	/* an IP protocol we do not parse further (GRE, ESP, ...) */
	PL_L4_NONE,	/* not IP, or the IP header itself is malformed/truncated */
	PL_L4_MAX,
};

/*
 * Per hook/direction counters, one PERCPU_ARRAY slot per enum pl_slot.
 * Every packet the program sees is counted exactly once in pkts/bytes (by
 * verdict), once in rmon[], once in log2[], once in l3[] and once in l4[].
 */
struct pl_stats {
	__u64 pkts[PL_VERDICT_MAX];
	__u64 bytes[PL_VERDICT_MAX];
	__u64 rmon[PL_RMON_MAX];
	__u64 log2[PL_LOG2_MAX];
	__u64 l3[PL_L3_MAX];
	__u64 l4[PL_L4_MAX];
	__u64 vlan;		/* frames with at least one VLAN tag */
	__u64 vlan2;		/* frames with two tags (QinQ) */
	__u64 ip_frags;		/* IPv4/IPv6 fragments, first or not */
	__u64 ip_opts;		/* IPv4 with options, IPv6 with extension headers */
	__u64 parse_err;	/* malformed headers (bad version, IHL < 5, ...) */
	__u64 truncated;	/* frame ends inside a header */
	__u64 flow_lost_pkts;	/* packets of flows the full table could not admit */
	__u64 flow_lost_bytes;
	__u64 flow_lost;	/* failed inserts */
	__u64 filter_pkts;	/* packets the live tcpdump expression matched */
	__u64 filter_bytes;
	__u64 nomatch_pkts;	/* judged by a policy, no rule matched: default action (pass) */
	__u64 nomatch_bytes;
};

/*
 * Flow key: 48 bytes, no implicit padding, compared as six u64 words.
 * Addresses are IPv6 or IPv4-mapped IPv6 (::ffff:a.b.c.d); all zero for
 * non-IP frames, which form one flow per ethertype and VLAN. ICMP and
 * ICMPv6 carry type and code in sport and dport. Ports are host order.
 */
struct pl_flow_key {
	__u32 ifindex;
	__u8 dir;		/* enum pl_dir */
	__u8 hook;		/* enum pl_hook */
	__u16 vlan;		/* outermost VLAN id, PL_VLAN_NONE if untagged */
	__u16 l3proto;		/* ethertype after VLAN tags, host order */
	__u8 l4proto;		/* IP protocol, 0 when not IP */
	__u8 pad;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
} __attribute__((aligned(8)));

#define PL_VLAN_NONE 0xffff
/*
 * pl_meta.filter_set while `filter set` swaps filter_expr in hook by hook:
 * a kill among the swaps leaves some hooks on the expression before it
 * (loader/chain.c). Older readers take it as set.
 */
#define PL_FILTER_SETTING 2
/*
 * An ICMP/ICMPv6 flow's sport and dport (its type and code) when the packet
 * has no ICMP header to read: a later fragment, or one cut before it. Not
 * 0/0, which is Echo Reply.
 */
#define PL_ICMP_NONE 0xffff

/*
 * A flow key's hash, for the programs' flow cache (bpf/flow.h, the top 32
 * bits) and user space's merge index (loader/state.c): three independent
 * 64-bit multiplies over pairs of the key's six words. Each pair's high
 * half is folded into its low half first: addresses are stored in network
 * byte order (ports in host order), so their fastest-changing bytes sit
 * high in a word, and a multiply only carries bits upwards (without the
 * fold 100,000 addresses in a row share half as many cache slots).
 */
static inline __attribute__((always_inline)) __u64 pl_flow_key_mix(const struct pl_flow_key *k)
{
	const __u64 *x = (const __u64 *)k;
	__u64 a = x[0] ^ x[3], b = x[1] ^ x[4], c = x[2] ^ x[5];

	a ^= a >> 32;
	b ^= b >> 32;
	c ^= c >> 32;
	return (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xc2b2ae3d27d4eb4fULL) ^
	       (c * 0x165667b19e3779f9ULL);
}

/* The stats slot (enum pl_slot) of a flow's packets: the programs' and user space's. */
static inline __attribute__((always_inline)) int pl_flow_slot(const struct pl_flow_key *k)
{
	if (k->hook == PL_HOOK_XDP)
		return PL_SLOT_XDP_IN;
	return k->dir == PL_DIR_OUT ? PL_SLOT_TC_OUT : PL_SLOT_TC_IN;
}

struct pl_flow_val {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;		/* CLOCK_MONOTONIC (coarse: jiffy resolution) */
	__u64 last_ns;
	__u8 tcp_flags;		/* OR of all TCP flags seen */
	__u8 pad[7];
};

/*
 * A slot of the per-CPU flow cache (see bpf/flow.h): one 64-byte cache
 * line holding a flow's key and what the flow counted since the slot took
 * it. Counts and times are 32 bits to fit the line: the program folds the
 * slot into the table before its bytes would wrap (packets, never more
 * than bytes, cannot wrap first), and times are CLOCK_MONOTONIC in units
 * of 2^PL_FLOW_TSHIFT ns (4.19 ms, about one jiffy at HZ=250), which wrap
 * after 208 days: a reader takes the latest time not after now.
 */
struct pl_flow_slot {
	struct pl_flow_key key;	/* key.pad: OR of the TCP flags seen */
	__u32 packets;
	__u32 bytes;
	__u32 first;
	__u32 last;
};

#define PL_FLOW_TSHIFT 22

/* The slot of the flow cache before this layout (a PERCPU_ARRAY): still read. */
struct pl_flow_slot_v1 {
	struct pl_flow_key key;
	struct pl_flow_val val;
};

/*
 * The flow cache's control (flow_ctl, one entry): until hold_until_ns
 * (CLOCK_MONOTONIC) a flow that misses its slot does not take it over from
 * an idle flow, so no cached delta moves into the table while a reset reads
 * the caches and then empties the table (loader/state.c). A deadline, not a
 * flag: a reset that dies half-way holds the slots for a minute at most.
 */
struct pl_flow_ctl {
	__u64 hold_until_ns;
};

/*
 * What a CPU's cache slot held of a flow when the last reset took the
 * flow out of the table (flow_debt, a PERCPU_HASH by flow key: each CPU
 * its own slot's; loader/state.c): the flows' base counts it already. The
 * table the reset emptied may be full again when that slot folds; the
 * program then counts as not recorded in flows only what the slot counted
 * since, under the flow's own hook (bpf/flow.h). So a reset empties the
 * whole table, cached flows included.
 */
struct pl_flow_debt {
	__u64 packets;
	__u64 bytes;
};

/*
 * Flow cache slots per CPU: 2^bits, room for PL_FLOW_CACHE_SHARES times a
 * CPU's share of the flow table (loader: pl_flow_cache_bits()), within
 * these bounds. A flow looks for its slot among PL_FLOW_CACHE_WAYS
 * consecutive ones. Four shares keep a CPU's region at most half full
 * when every flow of a full table comes in on two CPUs, or on one (a
 * single-queue device) of any number: 1.3 lines per packet of a flow
 * under rotation where two shares took 2.2 (docs/BENCHMARKS.md).
 */
#define PL_FLOW_CACHE_SHARES 4
#define PL_FLOW_CACHE_MIN_BITS 10
#define PL_FLOW_CACHE_MAX_BITS 24
#define PL_FLOW_CACHE_WAYS 8

/* Default and limits for the flow table capacity (attach --flows). */
#define PL_FLOWS_DEFAULT 65536
#define PL_FLOWS_MIN 16
#define PL_FLOWS_MAX (1U << 24)

/*
 * Helpers the packet programs call only where the kernel has them: bits of
 * their .rodata constant pl_helpers (bpf/compat.h), which the loader sets
 * from its probes before each load (loader/features.c: pl_obj_kernel()).
 * Named as the helpers are, for pl_has_helper(name).
 */
#define PL_HELPER_ktime_get_coarse_ns (1U << 0)
#define PL_HELPER_jiffies64 (1U << 1)
#define PL_HELPER_xdp_load_bytes (1U << 2)
#define PL_HELPER_xdp_get_buff_len (1U << 3)
#define PL_HELPER_loop (1U << 4)
#define PL_HELPER_ALL ((1U << 5) - 1)

/* XDP attach modes as recorded in struct pl_meta. */
enum pl_xdp_mode {
	PL_XDP_NONE = 0,
	PL_XDP_NATIVE,
	PL_XDP_SKB,
};

/* How the tc programs are attached. */
enum pl_tc_mech {
	PL_TC_NONE = 0,
	PL_TC_TCX,		/* bpf_link, BPF_TCX_INGRESS/EGRESS (Linux 6.6+) */
	PL_TC_CLSACT,		/* clsact qdisc + cls_bpf direct-action filter, netlink */
};

/*
 * Filter chaining (`pktlens filter set`). Each hook's entry program
 * tail-calls its RULES slot; when the slot holds a translated tcpdump
 * expression, that program stores its verdict (0/1) in chain_res[enum
 * pl_slot] of this CPU and tail-calls the hook's MAIN slot, which parses and
 * counts with the verdict. An empty RULES slot: the tail call falls through
 * and the entry counts by itself. Replacing the RULES slot is one map update,
 * so a packet sees the old expression or the new one, never a mix. XDP and
 * tc have one PROG_ARRAY each (the kernel ties an array to one program type);
 * slots by enum pl_dir.
 */
#define PL_CHAIN_RULES(dir) (2 * (dir))
#define PL_CHAIN_MAIN(dir) (2 * (dir) + 1)
/*
 * Policy (`pktlens policy`): when a direction has rules, its hook's POLICY
 * slot holds a program that parses, judges the packet by the rule set it was
 * loaded with, counts and acts. The entry tail-calls RULES, then POLICY; the
 * expression's program tail-calls POLICY, then MAIN. A new rule set is a new
 * program with its own rule maps. Whoever reads chain_res clears it, so a
 * verdict never outlives its packet.
 */
#define PL_CHAIN_POLICY(dir) (4 + (dir))
/*
 * With expression rules, the POLICY slot holds the rule set's expression
 * stage, which tail-calls the rule set's program in one of two slots per
 * direction (the other holds the previous set's until it is unused).
 */
#define PL_CHAIN_POLICY_GEN(dir, g) (6 + 2 * (dir) + (g))
/*
 * Sampling (`pktlens sample DEV 'EXPR'`): while a sampler with an expression
 * runs, the entry tail-calls SAMPLE first; that program (the translated
 * expression, pcap/) stores its verdict in sample_res and goes on to RULES,
 * POLICY, MAIN in that order, like the entry would.
 */
#define PL_CHAIN_SAMPLE(dir) (10 + (dir))
#define PL_CHAIN_SLOTS 12

/* Longest config identity pl_meta.managed_by keeps, with its NUL. */
#define PL_OWNER_MAX 256

/* Longest expression `filter set` keeps in pl_meta, with its NUL. */
#define PL_FILTER_EXPR_MAX 2048

/* One-entry array pinned beside the maps: what `attach` set up. */
struct pl_meta {
	__u32 version;		/* PL_META_VERSION */
	__u32 ifindex;
	char ifname[16];
	__u64 netns_ino;
	__u64 attach_time;	/* CLOCK_REALTIME, seconds */
	__u32 xdp_mode;		/* enum pl_xdp_mode */
	__u32 xdp_prog_id;
	__u32 flows_max;
	__u32 tc_hooks;		/* bit (1 << enum pl_dir) per tc hook */
	__u32 tc_mech;		/* enum pl_tc_mech */
	__u32 tc_prog_id[2];	/* by enum pl_dir */
	__u32 tc_handle[2];	/* clsact: our filter's handle and priority */
	__u32 tc_prio[2];
	__u32 tc_qdisc_created;	/* clsact: the qdisc is ours */
	__u32 filter_set;	/* a filter expression is chained in: 1, or PL_FILTER_SETTING */
	char filter_expr[PL_FILTER_EXPR_MAX];	/* NUL-terminated */
	__u32 probes;		/* PL_PROBE_*: attach --probes, pinned beside the maps */
	__u32 pad_probes;
	/*
	 * The namespace's cookie (SO_NETNS_COOKIE, Linux 5.14+; 0 before): unlike
	 * its inode, never reused, so a namespace that gets a deleted one's inode
	 * is told apart (loader/pins.c).
	 */
	__u64 netns_cookie;
	/*
	 * Version 7: which config manages the attachment (`pktlens apply`,
	 * `pktlens daemon`: its `name`, else the config file's absolute path);
	 * "" for one made by hand. Version 6 metadata is this struct without
	 * it: the loader reads both (managed_by then "").
	 */
	char managed_by[PL_OWNER_MAX];	/* NUL-terminated */
	/*
	 * Version 9: attach --tcp-passive (bpf/tcp.h): 1 when the hooks
	 * analyse TCP, and the capacity of the namespace's outstanding
	 * timestamp map it asked for. Versions 6-8 are this struct without
	 * them (PL_META_V8_SIZE): read with both 0.
	 */
	__u32 tcp_passive;
	__u32 tcp_ts_max;
	/*
	 * Version 10: the absolute path (as named) of the config file that
	 * attached the attachment or took it over, "" for one made by hand (or
	 * a path of 256 bytes or more). A config whose `name` changed finds
	 * what it managed under its old name by it. Versions 6-9 are this
	 * struct without it (PL_META_V9_SIZE): read as "".
	 */
	char managed_file[PL_OWNER_MAX];	/* NUL-terminated */
};

/*
 * 6: pl_rule.fam and .ctr, pl_lpm_key.fam, netns_cookie; 7: managed_by;
 * 8: pl_rule.lim, pl_rule_stats conformed/exceeded, limit maps;
 * 9: tcp_passive, tcp_ts_max (and the tcp_* maps, optional in older ones);
 * 10: managed_file
 */
#define PL_META_VERSION 10
/*
 * The oldest metadata the loader still reads: version 6 without managed_by,
 * 7 with it. Their rule maps hold the smaller pl_rule of before version 8:
 * pl_policy_open() refuses them (-EPROTO), attach --force makes them anew.
 */
#define PL_META_VERSION_MIN 6
#define PL_META_V6_SIZE __builtin_offsetof(struct pl_meta, managed_by)
#define PL_META_V8_SIZE __builtin_offsetof(struct pl_meta, tcp_passive)
#define PL_META_V9_SIZE __builtin_offsetof(struct pl_meta, managed_file)

#define PL_TC_IN (1u << PL_DIR_IN)
#define PL_TC_OUT (1u << PL_DIR_OUT)

/* ---- policy rules (bpf/policy.h, loader/policy.c, cli/policy.c) ---- */

enum pl_action {
	PL_ACT_NONE = 0,
	PL_ACT_PASS,		/* stop evaluating, let the packet go on */
	PL_ACT_DROP,
	PL_ACT_REDIRECT,	/* arg: ifindex; XDP through the redirect devmap */
	PL_ACT_SAMPLE,		/* arg: N of 1/N; counted, evaluation continues */
	PL_ACT_LIMIT,		/* token bucket (pl_rule.lim): within the rate evaluation
				 * continues, the excess gets lim.over */
	PL_ACT_MAX,
};

/* pl_limit.unit: how the rate was given; the rate is in packets/s or bits/s */
enum pl_lim_unit {
	PL_LIM_PPS = 0,
	PL_LIM_BPS,
	PL_LIM_KBIT,
	PL_LIM_MBIT,
	PL_LIM_GBIT,
	PL_LIM_UNIT_MAX,
};

/* pl_limit.per: one bucket for the rule, or one per key of an LRU map */
enum pl_lim_per {
	PL_PER_RULE = 0,
	PL_PER_SRC,
	PL_PER_DST,
	PL_PER_FLOW,		/* addresses, protocol, ports as seen (one direction) */
	PL_PER_MAX,
};

/*
 * A token bucket, kept as GCRA (the theoretical arrival time of the next
 * conforming packet), in ticks of 1/64 ns: a packet of cost c (1 packet, or
 * its bits) takes c * PL_LIM_TICKS_PER_SEC / rate ticks; it conforms when
 * that leaves the bucket's time no more than tau (the burst) ahead of now.
 */
#define PL_LIM_TICK_SHIFT 6
#define PL_LIM_TICKS_PER_SEC (1000000000ULL << PL_LIM_TICK_SHIFT)
#define PL_LIM_PPS_MAX 1000000000ULL		/* 1 Gpps */
#define PL_LIM_BITS_MAX 1000000000000ULL	/* 1 Tbit/s */
#define PL_LIM_BURST_MAX 1000000000ULL		/* packets, or bytes */
#define PL_LIM_KEYS_DEFAULT 65536U		/* --per-size */
#define PL_LIM_KEYS_MAX (1U << 24)
#define PL_LIM_LOCKS 256U			/* spin locks for the per-key buckets */

struct pl_limit {
	__u64 rate;		/* packets/s (PL_LIM_PPS) or bits/s */
	__u64 burst;		/* packets (PL_LIM_PPS) or bytes */
	__u64 tau;		/* the burst in ticks: burst * PL_LIM_TICKS_PER_SEC / rate */
	__u32 keys;		/* --per src|dst|flow: LRU entries (--per-size) */
	__u8 unit;		/* enum pl_lim_unit */
	__u8 per;		/* enum pl_lim_per */
	__u8 over;		/* PL_ACT_DROP, PL_ACT_PASS or PL_ACT_SAMPLE */
	__u8 pad;
	__u32 over_arg;		/* --over sample 1/N: N */
	__u32 pad2;
};

/* Key of a per-key bucket (limit_keys' inner LRU maps); unused fields 0. */
struct pl_limit_key {
	__u8 per;		/* enum pl_lim_per */
	__u8 l4proto;
	__u16 sport, dport;
	__u8 l3;		/* enum pl_l3: an IPv4 address and its IPv4-mapped IPv6 form differ */
	__u8 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* A per-key bucket: its updates are serialised by one of PL_LIM_LOCKS locks. */
struct pl_limit_state {
	__u64 tat;		/* ticks */
};

/* bpf_spin_lock: the verifier wants its type in the map value's BTF */
#ifdef __bpf__
#define PL_SPIN_LOCK struct bpf_spin_lock
#else
#define PL_SPIN_LOCK __u32
#endif

/* The bucket of a --per rule rule (limit_bucket, by pl_rule.ctr): one for all CPUs. */
struct pl_limit_bucket {
	PL_SPIN_LOCK lock;
	__u32 pad;
	__u64 tat;		/* ticks */
};

/* A lock of limit_locks, alone in its cache line. */
struct pl_limit_lock {
	PL_SPIN_LOCK lock;
	__u32 pad[15];
};

/* pl_rule.match: which fields a rule matches on */
#define PL_M_SRC	(1U << 0)
#define PL_M_DST	(1U << 1)
#define PL_M_PROTO	(1U << 2)
#define PL_M_SPORT	(1U << 3)
#define PL_M_DPORT	(1U << 4)
#define PL_M_VLAN	(1U << 5)
#define PL_M_EXPR	(1U << 6)	/* a tcpdump expression (text in policy_exprs) */

/*
 * A rule. Addresses are IPv6 or IPv4-mapped (::ffff:a.b.c.d), stored
 * already masked; *_len counts in that 128-bit space (IPv4 /24 = 120).
 * fam says which family the prefixes are: an IPv4 prefix matches only IPv4
 * packets and an IPv6 prefix (::/0 and ::ffff:0:0/96 too) only IPv6 ones,
 * as tcpdump's `src net` does; --src and --dst of one rule share it.
 * First match in (prio, id) order wins; sample rules count and go on.
 */
struct pl_rule {
	__u32 id;		/* stable, 1.. */
	__u32 prio;		/* lower first */
	__u8 dir;		/* enum pl_dir */
	__u8 action;		/* enum pl_action */
	__u8 proto;		/* IP protocol */
	__u8 src_len;
	__u8 dst_len;
	__u8 expr;		/* PL_M_EXPR: bit of the rule set's expression stage */
	__u8 fam;		/* PL_M_SRC/PL_M_DST: PL_FAM_IPV4 or PL_FAM_IPV6, else 0 */
	__u8 flags;		/* PL_RF_*; 0 in rules of pktlens before it (was padding) */
	__u32 match;		/* PL_M_* */
	__u32 arg;		/* redirect: ifindex; sample: N */
	__u32 expr_hash;	/* PL_M_EXPR: FNV-1a of the expression text */
	__u32 ctr;		/* key of its counters (PL_RULE_GEN), 1..PL_RULE_CTR_MAX (loader) */
	__u16 vlan;		/* outermost VLAN id */
	__u16 sport_lo, sport_hi, dport_lo, dport_hi;
	__u16 pad2;
	__u8 src[16], src_mask[16];
	__u8 dst[16], dst_mask[16];
	__u32 pad3;
	struct pl_limit lim;	/* PL_ACT_LIMIT, else zero */
};

/*
 * pl_rule.flags. PL_RF_FLOWS (--flows): the packets the rule drops are also
 * counted in the flow table; without it a drop is counted per rule and per
 * interface only, so a flood of random sources being dropped never fills
 * the flow table (bpf/account.h).
 */
#define PL_RF_FLOWS	(1U << 0)

#define PL_FAM_IPV4 4
#define PL_FAM_IPV6 6

/*
 * Keys of the address rules' LPM tries, one trie per field and family
 * (bpf/policy.h), so prefixes of one family never cover packets of the
 * other. IPv4: the address alone, prefixlen = the rule's *_len - 96 (the
 * rule holds it mapped, above); IPv6: prefixlen = *_len.
 */
struct pl_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct pl_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * LPM trie value: among the rules that match on this one address field
 * alone, the first (prio, id) whose prefix covers this prefix.
 */
struct pl_rule_ref {
	__u32 prio;
	__u32 id;
	__u32 action;
	__u32 arg;
	__u32 ctr;		/* pl_rule.ctr */
	__u32 flags;		/* pl_rule.flags */
};

/* How many rules of each kind a rule set of one direction has. */
struct pl_policy_cfg {
	__u32 list_len;		/* policy_list entries, in (prio, id) order */
	__u32 src4_cidrs;	/* policy_src4 entries (0: skip the lookup) */
	__u32 src6_cidrs;	/* policy_src6 */
	__u32 dst4_cidrs;
	__u32 dst6_cidrs;
	__u32 exprs;		/* expression rules: expr_bits holds their verdicts */
	/* looking policy_list up by field (bpf/policy.h, loader/ruleset.c) */
	__u32 words;		/* 64-bit words of a struct pl_rule_bits in use */
	__u32 lf_used;		/* bit (1 << enum pl_lfield): some list rule matches on it */
	__u32 lf_base[4];	/* policy_class index of the field's value 0 */
	__u32 lf_none[4];	/* policy_bits index when the packet lacks the field */
	__u32 fast;		/* counter keys below this count in rule_ctrs (0: none, an
				 * attachment made before it) */
	/*
	 * words != 0 and exprs != 0: a packet's candidates are the list rules
	 * without an expression (policy_bits[expr_none]) and those whose
	 * expression matched: expression bit e is list rule expr_idx[e]
	 */
	__u32 expr_none;
	__u16 expr_idx[64];	/* PL_POLICY_EXPRS_MAX */
	/*
	 * prio and id (the rest unused) of policy_list's first rule, ~0 both
	 * when it is empty: an LPM candidate before it decides without the
	 * walk (0, 0: never)
	 */
	struct pl_rule_ref first;
};

/*
 * The fields policy_list is looked up by: for each, policy_class maps a
 * value to a class, policy_bits a class to the list rules it may match
 * (bit i: list rule i, i.e. in (prio, id) order).
 */
enum pl_lfield {
	PL_LF_SPORT,
	PL_LF_DPORT,
	PL_LF_VLAN,
	PL_LF_PROTO,
	PL_LF_MAX,
};

struct pl_rule_bits {
	__u64 w[1024 / 64];	/* PL_POLICY_LIST_MAX bits */
	__u32 nz;		/* bit i: w[i] != 0 (the lookup skips empty words) */
	__u32 pad;
};

/* The text of an expression rule, by rule id (policy_exprs). */
struct pl_rule_expr {
	char text[PL_FILTER_EXPR_MAX];
};

/* Per rule, per CPU. */
struct pl_rule_stats {
	__u64 pkts;
	__u64 bytes;
	__u64 last_ns;		/* CLOCK_MONOTONIC (coarse) of the last hit */
	/* --limit rules: conformed + exceeded == pkts (and bytes) */
	__u64 conf_pkts;
	__u64 conf_bytes;
	__u64 exc_pkts;
	__u64 exc_bytes;
	__u64 keys_new;		/* --per keys inserted; evicted = keys_new - keys in the map */
};

#define PL_POLICY_RULES_MAX (1U << 18)	/* rules per interface, both directions; ids 1.. this */
/*
 * The rule record (policy_rules) of a new attachment: a commit that needs
 * more room replaces it with a larger copy, up to PL_POLICY_RULES_MAX
 * (loader/policy.c), so an attachment without rules does not carry the
 * hash buckets of 262,144 (4 MiB).
 */
#define PL_POLICY_RULES_INIT 1024U
/*
 * Counter keys: a rule that replaces another never shares its counters, even
 * with its id: while the old set still runs, the new one counts under keys
 * the old one does not use, so twice the rules.
 */
#define PL_RULE_CTR_MAX (2 * PL_POLICY_RULES_MAX)
/*
 * Counter keys come in generations of PL_RULE_GEN: keys below it count in
 * rule_stats, made with the attachment (256 KiB of hash buckets), and the
 * keys of generation g = ctr / PL_RULE_GEN >= 1 in rule_gens[g], a hash of
 * PL_RULE_GEN the loader makes when a commit first hands out one of its
 * keys (bpf/maps.h). A key stays in its map for as long as its rule lives,
 * so no counter is ever copied. An attachment whose rule_stats holds
 * PL_RULE_CTR_MAX (made before generations) keeps every key there.
 */
#define PL_RULE_GEN 16384U
#define PL_RULE_GENS (PL_RULE_CTR_MAX / PL_RULE_GEN + 1)
/*
 * Counter keys below this count in the rule_ctrs array instead of the
 * rule_stats hash (bpf/maps.h); keys are handed out from 1 up, so a rule set
 * of up to about half this many rules counts there entirely. 64 bytes per
 * key and CPU: 32 KB per CPU and attachment.
 */
#define PL_RULE_FAST_MAX 512U
#define PL_POLICY_CIDRS_MAX 262144U	/* LPM entries per direction and field */
#define PL_POLICY_LIST_MAX 1024U	/* rules evaluated in order, per direction */
_Static_assert(sizeof(((struct pl_rule_bits *)0)->w) * 8 == PL_POLICY_LIST_MAX, "a bit per list rule");
_Static_assert(sizeof(((struct pl_rule_bits *)0)->nz) * 8 >= PL_POLICY_LIST_MAX / 64, "a bit per word");
#define PL_POLICY_LIST_BOUNDED 64U	/* the same, on kernels without bpf_loop() (< 5.17) */
/* --limit rules' state (limit_bucket, limit_keys): both directions, old and new set in a swap */
#define PL_LIM_RULES_MAX (4 * PL_POLICY_LIST_MAX)
#define PL_REDIRECT_MAX 64U		/* redirect targets per interface */
#define PL_POLICY_EXPRS_MAX 64U		/* expression rules per direction */

/* ---- pcap samples (bpf/sample.h, loader/sample.c, cli/sample.c) ---- */

#define PL_SNAPLEN_MAX 262144U	/* as tcpdump's MAXIMUM_SNAPLEN */

/* sample_cfg[0]: what the running sampler wants; slots == 0: no sampler. */
struct pl_sample_cfg {
	__u32 slots;		/* bit (1 << enum pl_slot) per sampled hook */
	__u32 every;		/* 1 in N of the selected packets, per CPU (>= 1) */
	__u32 snaplen;		/* 1..PL_SNAPLEN_MAX */
	__u32 flags;		/* PL_SAMPLE_F_* */
	__u32 owner;		/* pid of the sampling pktlens */
	__u32 rule;		/* PL_SAMPLE_F_RULE: the rule id packets must carry */
};

#define PL_SAMPLE_F_EXPR	1U	/* select what the SAMPLE stage's expression matched */
#define PL_SAMPLE_F_POLICY	2U	/* select what policy --sample rules chose instead */
/* only packets whose verdict's bit (1 << enum pl_verdict) is in PL_SAMPLE_VERDICTS(flags) */
#define PL_SAMPLE_F_VERDICT	4U
#define PL_SAMPLE_F_RULE	8U	/* only what rule cfg.rule judged or --sample chose */
#define PL_SAMPLE_F_PER_FLOW	16U	/* every: the first N packets of each flow, not 1 in N */
#define PL_SAMPLE_VERDICT_SHIFT	8
#define PL_SAMPLE_VERDICTS(flags) (((flags) >> PL_SAMPLE_VERDICT_SHIFT) & 0xffU)
/*
 * --per-flow state (sample_flows, an LRU hash by struct pl_flow_key): how
 * many packets of a flow were taken. Full: the flow seen least recently is
 * forgotten, and counts from 0 again if it comes back.
 */
#define PL_SAMPLE_FLOWS_MAX 16384U

/*
 * sample_lease (an array of one __u64): the CLOCK_MONOTONIC ns
 * (bpf_ktime_get_ns()) until which the sampler in sample_cfg is known to be
 * reading. It renews it every PL_SAMPLE_RENEW_MS; once it has passed (the
 * sampler was killed, or is stopped or stalled) the programs take nothing
 * and call no SAMPLE stage, as if nobody sampled. Attachments made before
 * have no lease: their programs sample until the sampler stops.
 */
#define PL_SAMPLE_LEASE_MS 1000U
#define PL_SAMPLE_RENEW_MS 100U

/*
 * Per hook (enum pl_slot), per CPU. selected: packets the sampler's
 * expression (or, with PL_SAMPLE_F_POLICY, a --sample rule) chose;
 * sampled: those the 1-in-N counter kept; lost: sampled but the ring was
 * full. Whatever is sampled and not lost is in the ring for user space.
 */
struct pl_sample_stats {
	__u64 selected;
	__u64 sampled;
	__u64 lost;
	__u64 seq;		/* 1-in-N counter */
};

/* pl_sample_hdr.flags */
#define PL_SAMPLE_R_VLAN_META	1U	/* tc: the outer tag was in skb metadata (vlan_*) */

/*
 * A ring record: this header, then caplen bytes of the frame from its
 * Ethernet header on. The record may be longer than that (sizes come in
 * steps); caplen is what counts.
 */
struct pl_sample_hdr {
	__u64 ts_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 wire_len;		/* frame length on the wire, a metadata tag included */
	__u32 caplen;		/* bytes that follow */
	__u32 ifindex;
	__u32 rule_id;		/* the policy rule that judged or sampled it, 0: none */
	__u8 slot;		/* enum pl_slot */
	__u8 verdict;		/* enum pl_verdict */
	__u16 vlan_tci;		/* PL_SAMPLE_R_VLAN_META: host order */
	__u16 vlan_proto;	/* PL_SAMPLE_R_VLAN_META: ethertype, host order */
	__u16 flags;		/* PL_SAMPLE_R_* */
	__u32 pad;
};

/* ---- TCP probes (probes/pktlens_tcp.bpf.c, probes/tcp.c, cli/tcp.c) ---- */

enum pl_tcp_ev {
	PL_TCP_EV_RETRANS = 1,
	PL_TCP_EV_CONNLAT,
	PL_TCP_EV_CLOSE,	/* a connection ended: lifetime and bytes, like tcplife */
};

/* What was retransmitted. */
enum pl_tcp_rtx {
	PL_TCP_RTX_DATA = 0,	/* in any state but SYN_SENT */
	PL_TCP_RTX_SYN,		/* a SYN (the socket is in SYN_SENT) */
	PL_TCP_RTX_SYNACK,	/* a listener's SYN-ACK */
};

/* A connection as a probe sees it: local side first. */
struct pl_tcp_tuple {
	__u64 netns;		/* inode of its network namespace */
	__u8 laddr[16];		/* IPv6, or IPv4-mapped for AF_INET */
	__u8 raddr[16];
	__u16 lport;		/* host order */
	__u16 rport;
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 pad;
};

/* Ring record of the TCP probes. */
struct pl_tcp_event {
	__u64 ts_ns;		/* CLOCK_MONOTONIC */
	struct pl_tcp_tuple t;
	__u32 type;		/* enum pl_tcp_ev */
	__u32 kind;		/* retransmit: enum pl_tcp_rtx */
	__u32 state;		/* TCP state of the socket (1 ESTABLISHED, 2 SYN_SENT, ...) */
	__u32 segs;		/* retransmit: segments sent again, as TcpRetransSegs counts
				 * them (with any the socket's count gained unseen) */
	__u64 lat_ns;		/* connlat: SYN_SENT to ESTABLISHED; close: lifetime */
	__u64 tx_bytes;		/* close: bytes the peer acknowledged (tcp_sock.bytes_acked) */
	__u64 rx_bytes;		/* close: bytes received (tcp_sock.bytes_received) */
	__s32 err;		/* retransmit: 0, or -errno of a transmit that failed locally
				 * (e.g. -EPERM: a firewall dropped it; -ENOBUFS: a qdisc, tc or a
				 * full device queue, its NET_XMIT_DROP); counted by the kernel too */
	__u32 pad;
};

enum pl_tcp_rtt_by {
	PL_TCP_BY_NONE = 0,
	PL_TCP_BY_RADDR,
	PL_TCP_BY_RPORT,
};

/* tcp_cfg[0], written before the probes are attached. */
struct pl_tcp_cfg {
	__u64 netns;		/* only this namespace; 0: all */
	__u64 min_lat_ns;	/* connlat events from this latency on */
	__u32 rtt_by;		/* enum pl_tcp_rtt_by */
	__u32 flags;		/* PL_TCP_CFG_* */
};

#define PL_TCP_CFG_QUIET 1U	/* no ring events: only the maps (attach --probes tcp) */
#define PL_TCP_CFG_LIFE 2U	/* close events (tcp life) */
#define PL_TCP_CFG_CONNLAT 4U	/* connect latency (set by pl_tcp_open() from its programs) */
#define PL_TCP_CFG_RETRANS 8U	/* retransmits: the state probe notes sockets that begin (same) */

/* Retransmits per connection (conn_retrans, keyed by struct pl_tcp_tuple). */
struct pl_tcp_conn {
	__u64 retrans;		/* retransmit events */
	__u64 segs;		/* segments, as TcpRetransSegs counts them */
	__u64 sk;		/* the probe's: socket of the last event (its address) */
	__u32 total;		/* the probe's: that socket's tcp_sock.total_retrans then */
	__u32 pad;
};

/* pl_meta.probes */
#define PL_PROBE_TCP 1U
#define PL_PROBE_DROPS 2U	/* the drop tracepoints: include/pktlens/drops.h */

/* log2 histograms in microseconds: slot k counts [2^k, 2^(k+1)) us, slot 0 also 0. */
#define PL_TCP_HIST_SLOTS 32

struct pl_tcp_hist {
	__u64 slot[PL_TCP_HIST_SLOTS];
	__u64 count;
	__u64 sum_us;
	__u64 max_us;
};

/* RTT histograms by remote address or port (enum pl_tcp_rtt_by), per namespace. */
struct pl_tcp_hist_key {
	__u64 netns;
	__u8 raddr[16];
	__u16 rport;
	__u16 pad[3];
};

/* ---- passive TCP analysis (bpf/tcp.h, loader/tcp.c; attach --tcp-passive) ---- */

/*
 * A TCP connection whatever the direction and interface it is seen on: the
 * (address, port) end that sorts lower is a, the other b. Addresses as in
 * struct pl_flow_key. The namespace's tcp_state map is keyed by it, so the
 * two directions of a forwarded flow meet even when they pass two
 * interfaces.
 */
struct pl_tcp_key {
	__u8 a[16];
	__u8 b[16];
	__u16 aport;
	__u16 bport;
	__u32 pad;
};

/* pl_tcp_half.flags */
#define PL_TCPH_SEQ 1U		/* hi is valid */
#define PL_TCPH_TS 2U		/* ts_pending waits for its echo in tcp_ts */
#define PL_TCPH_ISN 4U		/* isn is this end's SYN's sequence number */
#define PL_TCPH_ACK 8U		/* last_ack is valid */
#define PL_TCPH_FIN 0x10U	/* this end sent its FIN (or an RST passed): no new TSvals */
#define PL_TCPH_TS_ACK 0x20U	/* ts_pending is a segment's that took no sequence space */
#define PL_TCPH_GAP_REP 0x100U	/* << i: the receiver reported gap[i] missing (SACK, dup ACK) */

/*
 * A SYN-ACK this long after the last one seen is sent again after a timeout (1 s
 * and more): the client's ACK answers it; one sooner crossed the client's SYN
 * sent again, and the ACK answers the first
 */
#define PL_TCP_SYNACK_AGAIN_NS 500000000ULL

/* gaps kept per direction: holes in the sequence space seen at once */
#define PL_TCP_GAPS 4

/*
 * A hole in one end's sequence space as seen here: [lo, hi) never passed, though
 * the segment at hi did (at t, ns >> 10); lo == hi: unused.
 */
struct pl_tcp_gap {
	__u32 lo, hi;
	__u32 t;
};

/*
 * What one end sent, as seen here (half [0]: sent by end a). Sequence
 * numbers: hi is the highest end (seq + payload + SYN + FIN) seen; a
 * segment starting above hi leaves a gap (PL_TCP_GAPS at once, the oldest
 * gives way). A later segment that fills a gap is out of order (reorder)
 * unless it was sent again: the receiver reported the gap missing (an ACK
 * at or below it with SACK blocks, or a duplicate ACK) before it came;
 * then, as any segment repeating bytes seen already, it is a
 * retransmission (retrans).
 * RTT: from this end's segment passing here until the other end's echo of
 * its TSval (RFC 7323) passes: the path from here to the other end and back.
 */
struct pl_tcp_half {
	__u32 hi;
	__u32 last_ack;		/* this end's last acknowledgement (PL_TCPH_ACK) */
	__u32 ts_pending;	/* TSval in tcp_ts (PL_TCPH_TS) */
	__u32 ts_last;		/* the last TSval seen: only a new one is remembered */
	__u32 flags;		/* PL_TCPH_* */
	__u32 pad;
	__u64 ts_pending_ns;	/* when it was remembered */
	__u64 syn_ns;		/* the latest SYN (client) or SYN-ACK (server) */
	__u32 segs;		/* segments that take sequence space */
	__u32 retrans;
	__u32 reorder;
	__u32 zero_win;		/* segments advertising a zero window (not SYN, not RST) */
	__u32 rst;
	__u32 rtt_samples;	/* timestamp RTT samples */
	__u32 rtt_min_us, rtt_srtt_us, rtt_max_us;	/* srtt: 7/8 old + 1/8 new */
	__u32 isn;		/* the SYN's sequence number (PL_TCPH_ISN) */
	__u32 ifindex;		/* the hook's interface that analyses this end's segments */
	struct pl_tcp_gap gap[PL_TCP_GAPS];
};

/* pl_tcp_state.flags */
#define PL_TCPS_TS 1U		/* timestamps seen */
#define PL_TCPS_SYNACK 2U	/* SYN-ACK seen, the client's ACK not yet */
#define PL_TCPS_CLOSING 4U	/* FIN or RST seen (a new SYN is a new connection) */

/* tcp_state value: one connection. */
struct pl_tcp_state {
	struct pl_tcp_half h[2];
	__u32 rtt_syn_us;	/* SYN -> SYN-ACK: from here to the server and back */
	__u32 rtt_synack_us;	/* SYN-ACK -> ACK: from here to the client and back */
	__u8 client;		/* 1 + the half that sent the SYN; 0: not seen */
	__u8 flags;		/* PL_TCPS_* */
	__u16 pad;
	__u32 pad2;
};

/* tcp_ts key: a TSval one end sent, waiting for its echo; the value is its time (ns). */
struct pl_tcp_ts_key {
	struct pl_tcp_key k;
	__u32 tsval;
	__u32 half;
};

/* A remembered TSval not echoed after this long gives way to a newer one (ts_expired). */
#define PL_TCP_TS_EXPIRE_NS 1000000000ULL
#define PL_TCP_TS_DEFAULT 16384U	/* attach --tcp-ts-max */
/* the loopback device's index in every namespace (the kernel's LOOPBACK_IFINDEX) */
#define PL_LOOPBACK_IFINDEX 1
#define PL_TCP_TS_MIN 16U
#define PL_TCP_TS_MAX (1U << 22)

/*
 * Per hook (enum pl_slot), per CPU: the passive TCP counters of the
 * attachment. rtt: every RTT sample that completed at this hook (handshake
 * halves and timestamp echoes), i.e. the RTT between here and the hosts
 * this hook's packets come from; in microseconds.
 */
struct pl_tcp_pstats {
	struct pl_tcp_hist rtt;
	__u64 segs;		/* TCP segments analysed */
	__u64 syn_samples;	/* handshake RTT samples */
	__u64 ts_samples;	/* timestamp RTT samples */
	__u64 retrans;
	__u64 reorder;
	__u64 zero_win;
	__u64 rst;
	__u64 state_lost;	/* segments of connections the full tcp_state could not admit */
	__u64 ts_full;		/* TSvals not remembered: tcp_ts was full */
	__u64 ts_expired;	/* remembered TSvals never echoed, given up (PL_TCP_TS_EXPIRE_NS) */
};

#define PL_MAP_TCP_STATE "tcp_state"
#define PL_MAP_TCP_TS "tcp_ts"
#define PL_MAP_TCP_STATS "tcp_stats"
/* The namespace's shared pins of tcp_state and tcp_ts, beside its attachment dirs. */
#define PL_PIN_NS_TCP_STATE "tcp:state"
#define PL_PIN_NS_TCP_TS "tcp:ts"

/* Map names, shared so user space finds the pins. */
#define PL_MAP_STATS "stats"
#define PL_MAP_FLOWS "flows"
#define PL_MAP_FLOW_CACHE "flow_cache"
#define PL_MAP_FLOW_CTL "flow_ctl"
#define PL_MAP_FLOW_DEBT "flow_debt"
#define PL_MAP_META "meta"
#define PL_MAP_CHAIN_RES "chain_res"
#define PL_MAP_XDP_CHAIN "xdp_chain"
#define PL_MAP_TC_CHAIN "tc_chain"
#define PL_MAP_POLICY_RULES "policy_rules"
#define PL_MAP_RULE_STATS "rule_stats"
#define PL_MAP_RULE_CTRS "rule_ctrs"
#define PL_MAP_RULE_GENS "rule_gens"
#define PL_MAP_REDIRECT "redirect_map"
#define PL_MAP_POLICY_EXPRS "policy_exprs"
#define PL_MAP_EXPR_BITS "expr_bits"
#define PL_MAP_LIMIT_BUCKET "limit_bucket"
#define PL_MAP_LIMIT_KEYS "limit_keys"
#define PL_MAP_LIMIT_LOCKS "limit_locks"
#define PL_MAP_SAMPLE_CFG "sample_cfg"
#define PL_MAP_SAMPLE_STATS "sample_stats"
#define PL_MAP_SAMPLE_RING "sample_ring"
#define PL_MAP_SAMPLE_RES "sample_res"
#define PL_MAP_SAMPLE_FLOWS "sample_flows"
#define PL_MAP_SAMPLE_LEASE "sample_lease"
#define PL_MAP_CONN_RETRANS "conn_retrans"
#define PL_PIN_TCP_RTX_LINK "tcp_rtx_link"
#define PL_PIN_TCP_RTX_SYNACK_LINK "tcp_rtx_synack_link"
#define PL_PIN_TCP_RTT_LINK "tcp_rtt_link"
#define PL_PIN_TCP_STATE_LINK "tcp_state_link"
#define PL_PIN_TCP_RTT_HIST "tcp_rtt_hist"
#define PL_PIN_TCP_CONNLAT_HIST "tcp_connlat_hist"
#define PL_PIN_TCP_RTX_TOTAL "tcp_rtx_total"	/* segments retransmitted, per CPU (never evicted) */

#endif /* __PKTLENS_PKTLENS_H */
