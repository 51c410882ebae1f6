/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The early judgement of the rule-set programs (XDP and tc): a drop by an
 * address rule decided from the first PL_EARLY_HDR bytes of the frame,
 * before the parse, the tc header pull, the passive TCP code and the
 * sampler (issue 19: judge the policy before the parse finishes what it
 * need not). The usual DDoS drop by prefix then costs the address lookups
 * and the counters, not the whole pipeline.
 *
 * It takes a frame only when what it counts is exactly what the full path
 * would: plain Ethernet (no VLAN tag, none in skb metadata), IPv4 without
 * options and not a fragment, or IPv6 whose next header is not an extension
 * header, with the transport header's bytes the parse reads all there (so
 * none of vlan, ip_fragments, ip_options, parse_errors, truncated applies),
 * no sampler on the hook and no passive TCP analysis of a TCP segment. The
 * address rules' candidate is then looked up here, as pl_policy() would
 * (same tries, same rule order). A candidate that decides a drop without
 * --flows is counted (rule, interface: verdict, size, L3 and L4 classes) and
 * the program returns; any other candidate goes to pl_policy() through
 * policy_walk's early (PL_EARLY_BEST), and so does the lack of one
 * (PL_EARLY_NOBEST): no packet is looked up twice. A rule set without
 * address rules is not tried (pl_early_wanted()).
 *
 * Include after bpf/tcp.h and bpf/sample.h.
 */
#ifndef __PKTLENS_BPF_EARLY_H
#define __PKTLENS_BPF_EARLY_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "account.h"
#include "policy.h"

/* Ethernet and an IPv6 header (or an IPv4 one and 20 bytes of transport header) */
#define PL_EARLY_HDR 54

/* The byte of an IPv6 frame's TCP data offset (Ethernet, IPv6, TCP's 12th): callers read it */
#define PL_EARLY_TCP6_B12 66

/*
 * Judge the frame whose first PL_EARLY_HDR bytes are at @e (@avail of them
 * as the parse would see them, @len on the wire), seen at @slot with
 * PL_ACC_* @flags; @tcp6_b12: its byte at PL_EARLY_TCP6_B12, -1 when the
 * frame is shorter. Returns enum pl_early.
 */
static __always_inline int pl_early(const __u8 *e, __u32 avail, __u32 len, __u32 slot,
				    __u32 flags, int tcp6_b12)
{
	struct pl_rule_ref best = { .prio = 0xffffffff, .id = 0xffffffff, .ctr = 0 };
	const struct pl_policy_cfg *cfg;
	struct pl_walk_scratch *s;
	__u32 zero = 0, l4off;
	__u16 eth = pl_get16(e + 12);
	__u8 proto, l3;

	if (eth == ETH_P_IP_) {
		/* options, a fragment, a total length below 20: the parse counts them */
		if (e[14] != 0x45 || (pl_get16(e + 20) & 0x3fff) || pl_ipv4_len_bad(pl_get16(e + 16), 20))
			return PL_EARLY_NONE;
		proto = e[23];
		l3 = PL_L3_IPV4;
		l4off = 34;
	} else if (eth == ETH_P_IPV6_) {
		proto = e[20];
		if ((e[14] >> 4) != 6 || pl_ipv6_ext(proto))
			return PL_EARLY_NONE;
		l3 = PL_L3_IPV6;
		l4off = 54;
	} else {
		return PL_EARLY_NONE;
	}
	if (l4off + pl_l4_need(proto) > avail)
		return PL_EARLY_NONE;		/* truncated: the parse counts it */
	if (proto == IPPROTO_TCP_) {
		/* a bad data offset: the parse counts it (IPv6's is past these bytes: @tcp6_b12) */
		if (l3 == PL_L3_IPV4 ? pl_tcp_doff_bad(e[46], pl_get16(e + 16) > 20 ?
						       pl_get16(e + 16) - 20 : 0) :
		    tcp6_b12 < 0 || pl_tcp_doff_bad((__u8)tcp6_b12, pl_get16(e + 18)))
			return PL_EARLY_NONE;
	}

	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	if (!cfg)
		return PL_EARLY_NONE;
	/* the addresses: IPv4's at 26 and 30, IPv6's at 22 and 38 */
	if (l3 == PL_L3_IPV4)
		pl_lpm_best(cfg, 1, e + 26, e + 30, &best);
	else
		pl_lpm_best(cfg, 0, e + 22, e + 38, &best);
	if (best.id == 0xffffffff)
		return PL_EARLY_NOBEST;
	if (!pl_before(best.prio, best.id, &cfg->first) || best.action != PL_ACT_DROP ||
	    (best.flags & PL_RF_FLOWS))
		goto stash;
	/* the passive TCP analysis sees every segment, dropped or not */
	if (proto == IPPROTO_TCP_ && pl_tcp_at(slot))
		goto stash;
	/* a sampler on this hook may want the packet: pl_sample() decides */
	if (pl_sample_at(slot))
		goto stash;

	pl_rule_tally(best.ctr, cfg->fast, len, pl_now_coarse());
	pl_count(slot, len, PL_VERDICT_DROP, flags, l3, pl_l4_class(proto));
	return PL_EARLY_DROP;
stash:
	s = bpf_map_lookup_elem(&policy_walk, &zero);
	if (!s)
		return PL_EARLY_NONE;
	s->early = best;
	return PL_EARLY_BEST;
}

/*
 * Is the early judgement worth a try at all: has this rule set address rules?
 * One array lookup, inlined in the program, before the call.
 */
static __always_inline int pl_early_wanted(void)
{
	const struct pl_policy_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&policy_cfg, &zero);
	return cfg && (cfg->src4_cidrs | cfg->dst4_cidrs | cfg->src6_cidrs | cfg->dst6_cidrs);
}

#endif /* __PKTLENS_BPF_EARLY_H */
