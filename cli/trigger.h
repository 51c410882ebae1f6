/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capture triggers (`sample --when`, the daemon's `triggers:`), cli/trigger.c.
 * The grammar, one condition, words separated by blanks:
 *
 *	rule ID > N[pps]	policy rule ID's matches per second (DEV attached)
 *	[dev] pps > N		DEV's packets per second, received + sent, from the
 *				kernel's interface counters (attached or not)
 *	drops [REASON] > N[/s]	packets the kernel dropped on DEV per second, of
 *				drop reason REASON (NO_SOCKET, ...; `pktlens drops`
 *				names them) or of any; needs attach --probes drops
 *
 * A rate is the increase of its counter over the last second, looked at every
 * 100 ms: the condition holds from the first look where it exceeds N.
 */
#ifndef __PKTLENS_CLI_TRIGGER_H
#define __PKTLENS_CLI_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_TRIG_STEP_MS 100
#define PL_TRIG_WINDOW 10	/* steps: one second */

enum pl_trig_kind {
	PL_TRIG_RULE = 1,
	PL_TRIG_PPS,
	PL_TRIG_DROPS,
};

struct pl_trig {
	int kind;
	uint32_t rule;
	char reason[64];	/* drops: "" any */
	uint64_t above;		/* per second */
	char text[160];		/* as parsed, normalised */
	/* the window: counts at the last PL_TRIG_WINDOW + 1 looks */
	uint64_t hist[PL_TRIG_WINDOW + 1];
	uint64_t at[PL_TRIG_WINDOW + 1];	/* CLOCK_MONOTONIC ns */
	unsigned n;
};

/* Parse @s. 0, or -EINVAL with @why. */
int pl_trig_parse(const char *s, struct pl_trig *t, char *why, size_t whylen);
/*
 * Read the counter of @t for @ifname (@dir: its attachment's pin directory,
 * NULL when not attached) now and add it to the window. 0 and *@rate (per
 * second, over up to the last second; 0 until two looks), or -errno with @why.
 * @ifindex, when not 0, is the interface counted (@ifname names it in
 * messages): renamed, or its old name taken by another, it is still the one.
 */
int pl_trig_look(struct pl_trig *t, const char *ifname, __u32 ifindex, const char *dir,
		 uint64_t *rate, char *why, size_t whylen);

#endif /* __PKTLENS_CLI_TRIGGER_H */
