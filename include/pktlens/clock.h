/* SPDX-License-Identifier: GPL-2.0 */
/* CLOCK_MONOTONIC in nanoseconds: the clock the BPF programs' timestamps and deadlines use. */
#ifndef PKTLENS_CLOCK_H
#define PKTLENS_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t pl_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/*
 * --duration and other deadlines, on the same clock: a wall-clock second
 * (time()) ends at the next whole second and moves with a clock step.
 * A deadline of 0 is none: it never passes.
 */
static inline uint64_t pl_deadline_in(uint64_t secs)
{
	return secs ? pl_mono_ns() + secs * 1000000000ULL : 0;
}

static inline bool pl_deadline_passed(uint64_t deadline)
{
	return deadline && pl_mono_ns() >= deadline;
}

/*
 * How long a loop may wait (poll, sleep) and still stop at @deadline: at
 * most @max_ms, rounded up so that the deadline has passed after it; 0
 * once it has passed.
 */
static inline int pl_deadline_ms(uint64_t deadline, int max_ms)
{
	uint64_t now;

	if (!deadline)
		return max_ms;
	now = pl_mono_ns();
	if (now >= deadline)
		return 0;
	return deadline - now < (uint64_t)max_ms * 1000000ULL ?
		       (int)((deadline - now + 999999) / 1000000) : max_ms;
}

#endif
