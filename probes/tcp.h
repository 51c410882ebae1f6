/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The TCP probes' user side: load and attach the tracepoint programs of
 * pktlens_tcp.bpf.c for the lifetime of the caller, read their events and
 * histograms. Functions return 0 or -errno with a reason in `why`.
 */
#ifndef __PKTLENS_PROBES_TCP_H
#define __PKTLENS_PROBES_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

/* Which programs to attach. */
#define PL_TCP_P_RETRANS (1U << 0)
#define PL_TCP_P_RTT (1U << 1)
#define PL_TCP_P_CONNLAT (1U << 2)	/* also tcp life: the same state tracepoint */

struct pl_tcp;

/* Called per ring record; non-zero stops the current read. */
typedef int (*pl_tcp_event_fn)(void *ctx, const struct pl_tcp_event *e);

int pl_tcp_open(unsigned progs, const struct pl_tcp_cfg *cfg, pl_tcp_event_fn fn, void *ctx,
		struct pl_tcp **out, char *why, size_t whylen);
/* Wait up to @timeout_ms for records and hand them to fn; records read, or -errno. */
int pl_tcp_poll(struct pl_tcp *t, int timeout_ms);
/* Records the ring had no room for. */
uint64_t pl_tcp_lost(const struct pl_tcp *t);
/*
 * Each connection's retransmits as the retransmit probe counted them
 * (conn_retrans: every counted one, also those the ring had no room for; an
 * LRU of 65,536 connections). Non-zero from fn stops the walk and is returned.
 */
typedef int (*pl_tcp_conn_fn)(void *ctx, const struct pl_tcp_tuple *t, const struct pl_tcp_conn *c);
int pl_tcp_conns(const struct pl_tcp *t, pl_tcp_conn_fn fn, void *ctx);
/* RTT histograms summed over CPUs, by key. Caller frees *keys and *hists. */
int pl_tcp_rtt(const struct pl_tcp *t, struct pl_tcp_hist_key **keys, struct pl_tcp_hist **hists,
	       size_t *n);
int pl_tcp_connlat(const struct pl_tcp *t, struct pl_tcp_hist *out);
void pl_tcp_close(struct pl_tcp *t);

/*
 * Pin the loaded programs' links, the per-connection retransmit map and the
 * RTT and connect-latency histograms in @dir (attach --probes tcp): they
 * then outlive @t, until the pins are removed.
 */
int pl_tcp_pin(struct pl_tcp *t, const char *dir, char *why, size_t whylen);
/*
 * `attach --probes tcp`: pin in @dir (a temporary directory in the
 * namespace's) the retransmit, RTT and connect-latency tracepoints of
 * network namespace @netns, quiet (maps only, for flows and the exporters):
 * with @carry (a re-attach's old directory), the running ones pinned there,
 * else new ones. New ones count on in maps @carry pins without their links
 * (those of an attachment made before tcp_rtx_total too: its links are
 * detached just before these attach). On error nothing of them is left
 * pinned in @dir.
 */
int pl_tcp_pin_quiet(__u64 netns, const char *dir, const char *carry, char *why,
		     size_t whylen);
/* A histogram pinned by pl_tcp_pin() in @dir (PL_PIN_TCP_*_HIST), summed over CPUs. */
int pl_tcp_pinned_hist(const char *dir, const char *name, struct pl_tcp_hist *out);
/*
 * Segments the retransmit probe pinned in @dir counted since attach (its
 * rtx_total; for an attachment made before it, the sum over conn_retrans,
 * which an eviction lowers).
 */
int pl_tcp_pinned_rtx(const char *dir, __u64 *segs);
/* Retransmits of connection @tuple from the map pinned in an attachment (@fd); -ENOENT: none. */
int pl_tcp_conn_lookup(int fd, const struct pl_tcp_tuple *tuple, struct pl_tcp_conn *out);

/*
 * Network namespace inode of a name (in /run/netns), a path (/run/netns/X,
 * /proc/PID/ns/net) or a pid; -EINVAL when it is not a network namespace.
 */
int pl_netns_of(const char *name_path_or_pid, __u64 *ino);

/* The option parser (struct pl_opt .parse) of the probe commands' --netns NAME|PATH|PID. */
int pl_netns_opt(const char *arg, void *field, char *why, size_t whylen);

/* The value below which @pct percent of the histogram's samples fall (us, interpolated). */
double pl_hist_percentile(const struct pl_tcp_hist *h, double pct);

#endif /* __PKTLENS_PROBES_TCP_H */
