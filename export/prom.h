/* SPDX-License-Identifier: GPL-2.0 */
/* The Prometheus text exposition (format 0.0.4) of every pktlens attachment on the host. */
#ifndef __PKTLENS_EXPORT_PROM_H
#define __PKTLENS_EXPORT_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../loader/loader.h"

/*
 * Render the metrics of the attachments of namespace @only (NULL: of every
 * namespace; pl_attachments_in()), every family, the drop probes' too, into
 * a malloc'd buffer. 0, or -errno (the buffer is then NULL).
 */
int pl_prom_render(const struct pl_netns *only, char **out, size_t *len);

#define PL_PROM_NO_KEYS UINT64_MAX

/* What one attachment has to say, read once per scrape. */
struct pl_prom_att {
	const struct pl_attachment *a;
	struct pl_stats s[PL_SLOT_MAX];
	size_t flows;
	struct pl_rule *rules;
	struct pl_rule_stats *rstats;
	__u64 *rkeys;		/* per rule: keys a --per limit tracks; NULL, or PL_PROM_NO_KEYS: none */
	size_t nrules;
	__u64 retrans_segs;
	struct pl_tcp_hist rtt, connlat;
	struct pl_sample_stats samples[PL_SLOT_MAX];	/* since attach */
	bool ok, probes;	/* ok: stats and flow count read; probes: TCP ones too */
	bool passive;		/* attach --tcp-passive: ptcp read */
	struct pl_tcp_pstats ptcp;	/* every hook's summed */
	char netns_name[256];	/* its namespace's name in /run/netns, "" for none */
};

/* The exposition of @n attachments as pl_prom_render() read them (no map access). */
void pl_prom_write(FILE *f, const struct pl_prom_att *at, size_t n);

/* A label value, escaped (backslash, double quote, newline). */
void pl_prom_label(FILE *f, const char *v);
/*
 * The labels every series of a namespace begins with, as `netns="...",...`
 * (no braces, no comma after): netns (its inode, or INODE:ID for a deleted
 * namespace's), netns_name (when @netns_name, its name in /run/netns, is not
 * ""), device (@device, an interface name; "" for none). The one writer of
 * these labels, so the series of a namespace join on them.
 */
void pl_prom_ns_labels(FILE *f, const char *netns, const char *netns_name, const char *device);
/*
 * The drop probes' families for @n attachments as pl_prom_render() read them
 * (export/prom_drops.c; reads the probes' pinned maps).
 */
void pl_prom_drops(FILE *f, const struct pl_prom_att *at, size_t n);

#endif /* __PKTLENS_EXPORT_PROM_H */
