/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The drop probes' user side: load and attach the tracepoint programs of
 * pktlens_drops.bpf.c (for the caller's lifetime, or pinned by attach
 * --probes drops), read their per-CPU aggregates, name reasons from the
 * running kernel's BTF and locations from /proc/kallsyms. Functions return
 * 0 or -errno with a reason in `why`.
 */
#ifndef __PKTLENS_PROBES_DROPS_H
#define __PKTLENS_PROBES_DROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/drops.h"

struct pl_drops;

/* Called per --events record; non-zero stops the current read. */
typedef int (*pl_drop_event_fn)(void *ctx, const struct pl_drop_event *e);

/*
 * Load and attach kfree_skb (with or without its reason, as the kernel has
 * it) and the XDP failure tracepoints the kernel has, configured by @cfg.
 * With @fn, --events records are handed to it by pl_drops_poll().
 */
int pl_drops_open(const struct pl_drop_cfg *cfg, pl_drop_event_fn fn, void *ctx,
		  struct pl_drops **out, char *why, size_t whylen);
/* Wait up to @timeout_ms for events; records read, or -errno. */
int pl_drops_poll(struct pl_drops *d, int timeout_ms);
/* The loaded maps (drop_stats, drop_flows), for pl_drops_read*(). */
int pl_drops_stats_fd(const struct pl_drops *d);
int pl_drops_flows_fd(const struct pl_drops *d);
/* drop_lost[] summed over CPUs. */
void pl_drops_lost(const struct pl_drops *d, uint64_t out[PL_DROP_LOST_MAX]);
/*
 * The same of the set pinned in @dir (attach --probes drops); -ENOENT: a set
 * an older pktlens pinned, without drop_lost.
 */
int pl_drops_pinned_lost(const char *dir, uint64_t out[PL_DROP_LOST_MAX]);
void pl_drops_close(struct pl_drops *d);

/* Pin links and the stats, flow and lost maps in @dir (attach --probes drops); unpin them. */
int pl_drops_pin(struct pl_drops *d, const char *dir, char *why, size_t whylen);
void pl_drops_unpin(const char *dir);
/*
 * `attach --probes drops`: pin in @dir (a temporary directory in the
 * namespace's) the drop tracepoints of network namespace @netns, counting by
 * reason and per flow (no events): the namespace's oldest set that another of
 * its directories pins (a re-attach's old one too), else a new one. With
 * @carry (a re-attach's old directory), a new set counts on in the maps
 * pinned there (an old set whose links are gone).
 * On error nothing of them is left pinned in @dir.
 */
int pl_drops_pin_quiet(__u64 netns, const char *dir, const char *carry, char *why,
		       size_t whylen);

struct pl_drop_row {
	struct pl_drop_key k;
	struct pl_drop_val v;
};

struct pl_drop_flow_row {
	struct pl_drop_flow_key k;
	struct pl_drop_flow_val v;
};

/* Every aggregate of a drop_stats map (@fd), summed over CPUs. Caller frees *out. */
int pl_drops_read(int fd, struct pl_drop_row **out, size_t *n);
/*
 * A key with a device index but no name (a drop on TCP's receive path, of
 * the device it arrived on): that device's name now, where its namespace is
 * ours; false: none (@k unchanged).
 */
bool pl_drops_name_dev(struct pl_drop_key *k);
/* The same for drop_flows. */
int pl_drops_read_flows(int fd, struct pl_drop_flow_row **out, size_t *n);
/* One flow of drop_flows (@fd), summed; -ENOENT: no drop. */
int pl_drops_flow_lookup(int fd, const struct pl_drop_flow_key *k, struct pl_drop_flow_val *out);

/* Sort @r by key and sum the rows of equal keys; the rows left. */
size_t pl_drops_merge(struct pl_drop_row *r, size_t n);
/* The same, with @max: per key the larger count of the rows (two probes counting the same drops). */
size_t pl_drops_fold(struct pl_drop_row *r, size_t n, bool max);

/*
 * pktlens's own policy drops beside the kernel's: one row per drop rule
 * (--drop, or --limit ... --over drop: its excess) of every attachment of namespace @netns (0: all) and interface @ifindex
 * of the current namespace (0: all; the attachment that runs on it, whatever
 * name it was attached as), kind PL_DROP_POLICY, reason the rule id, counts
 * since the rule was added. Caller frees *out.
 */
int pl_drops_policy(uint64_t netns, __u32 ifindex, struct pl_drop_row **out, size_t *n);

/*
 * The reason's name: the kernel's own (enum skb_drop_reason in its BTF,
 * without the SKB_DROP_REASON_ prefix: NO_SOCKET), XDP_ABORTED for an XDP
 * exception, "redirect ENETDOWN" for a redirect error, "pktlens rule N",
 * "unknown (no reasons before Linux 5.17)" without reasons.
 */
const char *pl_drop_reason_name(__u32 kind, __u32 reason, char *buf, size_t len);
/*
 * Whether one word is a reason pl_drop_reason_name() can give, case aside: a
 * name of the kernel's enum skb_drop_reason (NO_SOCKET) or XDP_ABORTED ..
 * XDP_REDIRECT. 0, -ENOENT: not one, -ENOTSUP: the kernel has no such enum.
 */
int pl_drop_reason_known(const char *name);
/* The kernel function at @addr, from /proc/kallsyms ("udp_queue_rcv_one_skb"); "0x..." if unknown. */
const char *pl_drop_location(__u64 addr, char *buf, size_t len);
/* The start of that function (@addr itself when unknown): locations of one function group by it. */
__u64 pl_drop_func(__u64 addr);
/* "udp", "tcp", "icmp", ... or the number; "" when not IP (pl_fmt_l4()) */
const char *pl_drop_l4_name(__u16 l3, __u8 l4, char *buf, size_t len);

#endif /* __PKTLENS_PROBES_DROPS_H */
