/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The probe sets that attachments pin (attach --probes: the drop and TCP
 * tracepoints): their pins by name, and how an attachment comes to pin one.
 * A set already running is pinned once more (its links never re-made: no
 * event missed or counted twice, no kill that leaves a holder without them);
 * only where there is none is a new one loaded. Links are shared by their
 * holders: unpinned, never detached, they stop with their last pin.
 */
#ifndef __PKTLENS_PROBES_PROBESET_H
#define __PKTLENS_PROBES_PROBESET_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct pl_probe_pins {
	/* links[0] is in every set; others may be missing (tracepoints the kernel lacks) */
	const char *const *links;
	size_t nlinks;
	/* all in every set; maps[0]'s id orders sets (ids grow: the lowest counted longest) */
	const char *const *maps;
	size_t nmaps;
	/* but the last nmaps_new of them, newer than some sets: one an older pktlens pinned lacks them */
	size_t nmaps_new;
	/* one set per namespace, pinned by each of its attachments with them; else per attachment */
	bool per_ns;
};

extern const struct pl_probe_pins pl_drop_pins, pl_tcp_pins;

/* Load a new set and pin it in @dir; with @carry, counting on in the maps pinned there. */
typedef int (*pl_probe_load_fn)(__u64 netns, const char *dir, const char *carry, char *why,
				size_t whylen);

/*
 * Pin in @dir (an attach's temporary directory, in its namespace's) the
 * running set of @p that another directory pins: with per_ns the
 * namespace's oldest (attachments, the one a re-attach replaces, the
 * temporary ones of attaches under way), else the one @carry (a re-attach's
 * old directory) pins. Where there is none, @load makes one, with @carry
 * (maps pinned there without their links: an older pktlens's, or one
 * killed half-way). per_ns: under a lock on the namespace's directory, so
 * attaches side by side (apply's workers) find each other's sets. On error
 * nothing of @p is left pinned in @dir.
 */
int pl_probe_set_pin(const struct pl_probe_pins *p, __u64 netns, const char *dir,
		     const char *carry, pl_probe_load_fn load, char *why, size_t whylen);
/* Unpin @p's links and maps from @dir, without detaching the links (other holders). */
void pl_probe_set_unpin(const struct pl_probe_pins *p, const char *dir);
/* Whether @name is a probe set's link pin: one its holders share. */
bool pl_probe_link_shared(const char *name);

#endif /* __PKTLENS_PROBES_PROBESET_H */
