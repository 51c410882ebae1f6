/* SPDX-License-Identifier: GPL-2.0 */
/* Per-packet accounting shared by the XDP and tc programs. */
#ifndef __PKTLENS_BPF_ACCOUNT_H
#define __PKTLENS_BPF_ACCOUNT_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "flow.h"

static __always_inline __u32 pl_rmon_bucket(__u32 len)
{
	if (len <= 64)
		return PL_RMON_64;
	if (len <= 127)
		return PL_RMON_65_127;
	if (len <= 255)
		return PL_RMON_128_255;
	if (len <= 511)
		return PL_RMON_256_511;
	if (len <= 1023)
		return PL_RMON_512_1023;
	if (len <= 1518)
		return PL_RMON_1024_1518;
	if (len <= 9216)
		return PL_RMON_1519_9216;
	return PL_RMON_OVER_9216;
}

/* floor(log2(len)) capped at PL_LOG2_MAX - 1; 0 for len 0 and 1. */
static __always_inline __u32 pl_log2_bucket(__u32 v)
{
	__u32 r, s;

	r = (v > 0xffff) << 4;
	v >>= r;
	s = (v > 0xff) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xf) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	r |= v >> 1;
	return r < PL_LOG2_MAX ? r : PL_LOG2_MAX - 1;
}

/* pl_account() flags */
#define PL_ACC_FILTER	1U	/* the chained filter expression matched (bpf/chain.h) */
#define PL_ACC_NOMATCH	2U	/* a policy judged it and no rule matched (bpf/policy.h) */
#define PL_ACC_NOFLOW	4U	/* a rule dropped it and keeps drops out of the flow table */

/* Count @p, seen at @slot, with @verdict (enum pl_verdict) and PL_ACC_* @flags. */
static __always_inline void pl_account(struct pl_pkt *p, __u32 slot, __u32 verdict, __u32 flags)
{
	struct pl_stats *s;
	__u32 len = p->len;

	s = bpf_map_lookup_elem(&stats, &slot);
	if (!s)
		return;
	if (verdict >= PL_VERDICT_MAX)
		verdict = PL_VERDICT_ABORTED;
	s->pkts[verdict]++;
	s->bytes[verdict] += len;
	if (flags & PL_ACC_FILTER) {
		s->filter_pkts++;
		s->filter_bytes += len;
	}
	if (flags & PL_ACC_NOMATCH) {
		s->nomatch_pkts++;
		s->nomatch_bytes += len;
	}
	s->rmon[pl_rmon_bucket(len)]++;
	s->log2[pl_log2_bucket(len)]++;
	if (p->l3 < PL_L3_MAX)
		s->l3[p->l3]++;
	if (p->l4 < PL_L4_MAX)
		s->l4[p->l4]++;
	if (p->vlans) {
		s->vlan++;
		if (p->vlans > 1)
			s->vlan2++;
	}
	if (p->frag)
		s->ip_frags++;
	if (p->opts)
		s->ip_opts++;
	if (p->err == PL_PERR_MALFORMED)
		s->parse_err++;
	else if (p->err == PL_PERR_TRUNCATED)
		s->truncated++;

	if (!(flags & PL_ACC_NOFLOW))
		pl_flow_account(&p->key, len, p->tcp_flags, s);
}

#endif /* __PKTLENS_BPF_ACCOUNT_H */
