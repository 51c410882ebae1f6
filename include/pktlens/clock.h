/* SPDX-License-Identifier: GPL-2.0 */
/* CLOCK_MONOTONIC in nanoseconds: the clock the BPF programs' timestamps and deadlines use. */
#ifndef PKTLENS_CLOCK_H
#define PKTLENS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t pl_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

#endif
