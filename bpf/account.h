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

/*
 * Both size buckets of a frame shorter than PL_SIZE_TAB, one byte:
 * rmon << 4 | log2 (log2 <= 10, rmon <= 6 there). One load from .rodata
 * instead of the branch chain and the log2 steps above (the per-packet cost
 * of the histograms, issue 19); longer frames take those.
 */
#define PL_SIZE_TAB 2048
#define PL_SZ(rmon, log2) ((rmon) << 4 | (log2))

static const __u8 pl_size_tab[PL_SIZE_TAB] = {
	[0 ... 1]	= PL_SZ(PL_RMON_64, 0),
	[2 ... 3]	= PL_SZ(PL_RMON_64, 1),
	[4 ... 7]	= PL_SZ(PL_RMON_64, 2),
	[8 ... 15]	= PL_SZ(PL_RMON_64, 3),
	[16 ... 31]	= PL_SZ(PL_RMON_64, 4),
	[32 ... 63]	= PL_SZ(PL_RMON_64, 5),
	[64]		= PL_SZ(PL_RMON_64, 6),
	[65 ... 127]	= PL_SZ(PL_RMON_65_127, 6),
	[128 ... 255]	= PL_SZ(PL_RMON_128_255, 7),
	[256 ... 511]	= PL_SZ(PL_RMON_256_511, 8),
	[512 ... 1023]	= PL_SZ(PL_RMON_512_1023, 9),
	[1024 ... 1518]	= PL_SZ(PL_RMON_1024_1518, 10),
	[1519 ... 2047]	= PL_SZ(PL_RMON_1519_9216, 10),
};

_Static_assert(PL_RMON_MAX == 8, "rmon index masked with 7 in pl_account()");
_Static_assert(PL_L3_MAX == 4, "l3 index masked with 3 in pl_account()");
_Static_assert(PL_L4_MAX <= 8, "l4 index masked with 7 in pl_account()");

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
	/*
	 * pl_parse() sets l3 and l4 from enum pl_l3/pl_l4 only: the masks are
	 * for the verifier, never change an index.
	 */
	s->l3[p->l3 & (PL_L3_MAX - 1)]++;
	s->l4[p->l4 & 7]++;
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
		if (p->err == PL_PERR_MALFORMED)
			s->parse_err++;
		else if (p->err == PL_PERR_TRUNCATED)
			s->truncated++;
	}

	if (!(flags & PL_ACC_NOFLOW))
		pl_flow_account(&p->key, len, p->tcp_flags, s);
}

#endif /* __PKTLENS_BPF_ACCOUNT_H */
