// SPDX-License-Identifier: GPL-2.0
/*
 * The drop probes' metrics (attach --probes drops): the kernel's drops by
 * namespace, device (skb->dev when freed) and reason, XDP exceptions by
 * action and XDP redirect errors by errno, with the namespace's labels as
 * every other series (pl_prom_ns_labels()). The probes of one namespace
 * count all its drops, and its attachments that have them share one set
 * (probes/drops.c): a namespace is written once. Sets an older pktlens
 * pinned apart are merged taking each series' largest count (the oldest
 * set's), so one that counts from 0 does not make a counter go back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "prom.h"
#include "../probes/drops.h"

struct ns_rows {
	const struct pl_prom_att *t;	/* the namespace's first attachment with the probes */
	struct pl_drop_row *r;
	size_t n;
	uint64_t table_lost;	/* drops drop_stats had no room for */
	bool lost_ok;		/* table_lost read: not only sets without drop_lost */
};

static void family(FILE *f, const struct ns_rows *ns, size_t nns, const char *name,
		   const char *help, __u32 kind, const char *label, bool bytes)
{
	char buf[64];

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < nns; i++)
		for (size_t j = 0; j < ns[i].n; j++) {
			const struct pl_drop_row *r = &ns[i].r[j];

			if (r->k.kind != kind)
				continue;
			fprintf(f, "%s{", name);
			/* the device the packet was on: the namespace's labels as every series' */
			pl_prom_ns_labels(f, ns[i].t->a->ns, ns[i].t->netns_name, r->k.dev);
			fprintf(f, ",%s=\"", label);
			pl_prom_label(f, pl_drop_reason_name(kind, r->k.reason, buf, sizeof(buf)));
			fprintf(f, "\"} %llu\n", (unsigned long long)(bytes ? r->v.bytes : r->v.packets));
		}
}

/*
 * Another probe's rows of the same namespace (@r, merged) into @ns: per key
 * the larger count. Both count the same drops, the older one since earlier.
 */
static bool merge_max(struct ns_rows *ns, const struct pl_drop_row *r, size_t n)
{
	struct pl_drop_row *all;

	if (!n)		/* a probe that has counted nothing yet (@r NULL) */
		return true;
	all = realloc(ns->r, (ns->n + n + 1) * sizeof(*all));
	if (!all)
		return false;
	memcpy(all + ns->n, r, n * sizeof(*r));
	ns->r = all;
	ns->n = pl_drops_fold(all, ns->n + n, true);
	return true;
}

/*
 * Rows of a drop known by its device's index alone that pl_drops_read()
 * could not name (TCP's receive path, in a namespace not the exporter's):
 * the name of the attachment of that index in that namespace, so that the
 * device's drops are one series whichever namespace the exporter runs in.
 */
static void name_by_attachments(struct pl_drop_row *r, size_t nr, const struct pl_prom_att *at,
				size_t n)
{
	for (size_t j = 0; j < nr; j++) {
		if (r[j].k.dev[0] || !r[j].k.ifindex || r[j].k.kind != PL_DROP_KFREE)
			continue;
		for (size_t i = 0; i < n; i++)
			if (at[i].a->meta_ok && at[i].a->netns == r[j].k.netns &&
			    at[i].a->meta.ifindex == r[j].k.ifindex) {
				memcpy(r[j].k.dev, at[i].a->ifname, sizeof(r[j].k.dev));
				break;
			}
	}
}

void pl_prom_drops(FILE *f, const struct pl_prom_att *at, size_t n)
{
	struct ns_rows *ns = calloc(n ? n : 1, sizeof(*ns));
	size_t nns = 0;

	if (!ns)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct pl_attachment *a = at[i].a;
		uint64_t lost[PL_DROP_LOST_MAX];
		struct pl_drop_row *r = NULL;
		size_t nr = 0, k;
		bool lost_ok;
		int fd;

		if (!a->meta_ok || !(a->meta.probes & PL_PROBE_DROPS))
			continue;
		for (k = 0; k < nns && strcmp(ns[k].t->a->ns, a->ns); k++)
			;
		fd = pl_pin_open(a->dir, PL_MAP_DROP_STATS);
		if (fd < 0)
			continue;
		lost_ok = !pl_drops_pinned_lost(a->dir, lost);
		if (!pl_drops_read(fd, &r, &nr)) {
			name_by_attachments(r, nr, at, n);
			/*
			 * by device (its name: a device deleted and made anew
			 * under it has another ifindex, one series still) and
			 * reason only
			 */
			for (size_t j = 0; j < nr; j++) {
				r[j].k.ifindex = 0;
				r[j].k.location = 0;
				r[j].k.l3 = 0;
				r[j].k.l4 = 0;
			}
			nr = pl_drops_merge(r, nr);
			if (k == nns) {
				ns[nns++] = (struct ns_rows){ .t = &at[i], .r = r, .n = nr };
			} else {
				merge_max(&ns[k], r, nr);	/* no memory: the first's counts */
				free(r);
			}
			/* as the rows: the largest of the sets' counts */
			if (lost_ok && (!ns[k].lost_ok || lost[PL_DROP_LOST_TABLE] > ns[k].table_lost))
				ns[k].table_lost = lost[PL_DROP_LOST_TABLE];
			ns[k].lost_ok |= lost_ok;
		}
		close(fd);
	}
	family(f, ns, nns, "pktlens_kernel_drops_total",
	       "Packets the kernel dropped, by the device they were on when freed and the kernel's "
	       "drop reason (attach --probes drops).", PL_DROP_KFREE, "reason", false);
	family(f, ns, nns, "pktlens_kernel_drop_bytes_total",
	       "Bytes (from the network header) of the packets the kernel dropped "
	       "(attach --probes drops).", PL_DROP_KFREE, "reason", true);
	fputs("# HELP pktlens_kernel_drops_lost_total Packets the kernel dropped that "
	      "pktlens_kernel_drops_total could not count: the namespace's table of drop keys was "
	      "full (attach --probes drops).\n# TYPE pktlens_kernel_drops_lost_total counter\n", f);
	for (size_t i = 0; i < nns; i++)
		if (ns[i].lost_ok) {
			fputs("pktlens_kernel_drops_lost_total{", f);
			pl_prom_ns_labels(f, ns[i].t->a->ns, ns[i].t->netns_name, "");
			fprintf(f, "} %llu\n", (unsigned long long)ns[i].table_lost);
		}
	family(f, ns, nns, "pktlens_xdp_exceptions_total",
	       "XDP programs' exceptions (xdp:xdp_exception) by device and action "
	       "(attach --probes drops).", PL_DROP_XDP_EXCEPTION, "action", false);
	family(f, ns, nns, "pktlens_xdp_redirect_errors_total",
	       "XDP redirects that failed, by device and error (attach --probes drops).",
	       PL_DROP_XDP_REDIRECT, "error", false);
	for (size_t i = 0; i < nns; i++)
		free(ns[i].r);
	free(ns);
}
