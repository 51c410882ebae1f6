/* SPDX-License-Identifier: GPL-2.0 */
/* Per-packet accounting shared by the XDP and tc programs. */
#ifndef __PKTLENS_BPF_ACCOUNT_H
#define __PKTLENS_BPF_ACCOUNT_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "flow.h"
#include "size.h"

_Static_assert(PL_RMON_MAX == 8, "rmon index masked with 7 in pl_account()");
_Static_assert(PL_L3_MAX == 4, "l3 index masked with 3 in pl_account()");
_Static_assert(PL_L4_MAX <= 8, "l4 index masked with 7 in pl_account()");

/* pl_account() flags */
#define PL_ACC_FILTER	1U	/* the chained filter expression matched (bpf/chain.h) */
#define PL_ACC_NOMATCH	2U	/* a policy judged it and no rule matched (bpf/policy.h) */
#define PL_ACC_NOFLOW	4U	/* a rule dropped it and keeps drops out of the flow table */

/*
 * The counts every packet gets: @len bytes seen at @slot with @verdict (enum
 * pl_verdict), PL_ACC_* @flags, of classes @l3 and @l4 (enum pl_l3, pl_l4:
 * the masks are for the verifier, never change an index). The stats, or NULL.
 */
static __always_inline struct pl_stats *pl_count(__u32 slot, __u32 len, __u32 verdict,
						 __u32 flags, __u8 l3, __u8 l4)
{
	struct pl_stats *s;

	s = bpf_map_lookup_elem(&stats, &slot);
	if (!s)
		return 0;
	if (verdict >= PL_VERDICT_MAX)
		verdict = PL_VERDICT_ABORTED;
	s->pkts[verdict]++;
	s->bytes[verdict] += len;
	if (flags & (PL_ACC_FILTER | PL_ACC_NOMATCH)) {
		if (flags & PL_ACC_FILTER) {
			s->filter_pkts++;
			s->filter_bytes += len;
		}
		if (flags & PL_ACC_NOMATCH) {
			s->nomatch_pkts++;
			s->nomatch_bytes += len;
		}
	}
	if (len < PL_SIZE_TAB) {
		__u64 b = pl_size_tab[len];

		s->rmon[(b >> 4) & (PL_RMON_MAX - 1)]++;
		s->log2[b & 15]++;
	} else {
		s->rmon[pl_rmon_bucket(len)]++;
		s->log2[pl_log2_bucket(len)]++;
	}
	s->l3[l3 & (PL_L3_MAX - 1)]++;
	s->l4[l4 & 7]++;
	return s;
}

/* Count @p, seen at @slot, with @verdict (enum pl_verdict) and PL_ACC_* @flags. */
static __always_inline void pl_account(struct pl_pkt *p, __u32 slot, __u32 verdict, __u32 flags)
{
	struct pl_stats *s;
	__u32 len = p->len;

	/* pl_parse() sets l3 and l4 from enum pl_l3/pl_l4 only */
	s = pl_count(slot, len, verdict, flags, p->l3, p->l4);
	if (!s)
		return;
	if (p->rare) {		/* vlans, frag, opts, err: one load, one branch */
		if (p->vlans) {
			s->vlan++;
			if (p->vlans > 1)
				s->vlan2++;
		}
		if (p->frag)
			s->ip_frags++;
		if (p->opts)
			s->ip_opts++;
		if (p->err == PL_PERR_MALFORMED || p->err == PL_PERR_L4)
			s->parse_err++;
		else if (p->err == PL_PERR_TRUNCATED)
			s->truncated++;
	}

	if (!(flags & PL_ACC_NOFLOW))
		pl_flow_account(&p->key, len, p->tcp_flags, s);
}

#endif /* __PKTLENS_BPF_ACCOUNT_H */
