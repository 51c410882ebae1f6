/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's CLOCK_MONOTONIC in nanoseconds: the clock the BPF programs'
 * timestamps and deadlines use (bpf_ktime_get_ns()).
 */
#ifndef PKTLENS_CLOCK_H
#define PKTLENS_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * In a time namespace (time_namespaces(7): unshare -T, a container CRIU
 * restored) this process's CLOCK_MONOTONIC is the kernel's plus an offset,
 * which bpf_ktime_get_ns() does not have: the offset, in ns, read once from
 * /proc/self/timens_offsets (no such file, no /proc: 0, as outside one).
 */
static inline int64_t pl_timens_mono_offset_ns(void)
{
	static int64_t cached = INT64_MIN;
	int64_t off = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	char clock[16], line[96];
	long long sec;
	long nsec;
	FILE *f;

	if (off != INT64_MIN)
		return off;
	off = 0;
	f = fopen("/proc/self/timens_offsets", "re");
	while (f && fgets(line, sizeof(line), f))
		/* "monotonic SECS NSECS" (the clock's id, 1, on no kernel so far, taken too) */
		if (sscanf(line, "%15s %lld %ld", clock, &sec, &nsec) == 3 &&
		    (!strcmp(clock, "monotonic") || !strcmp(clock, "1")))
			off = (int64_t)sec * 1000000000LL + nsec;
	if (f)
		fclose(f);
	__atomic_store_n(&cached, off, __ATOMIC_RELAXED);
	return off;
}

static inline uint64_t pl_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec -
	       (uint64_t)pl_timens_mono_offset_ns();
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
