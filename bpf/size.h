/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Size buckets of a frame (RMON and log2, struct pl_stats), for pl_account().
 * Plain C on __u8/__u32: tests/unit/test_size.c checks the table against
 * the functions and both against the definitions, for every length.
 */
#ifndef __PKTLENS_BPF_SIZE_H
#define __PKTLENS_BPF_SIZE_H

#include <linux/types.h>
#include "pktlens/pktlens.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

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

#endif /* __PKTLENS_BPF_SIZE_H */
