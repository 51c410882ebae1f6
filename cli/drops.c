// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens drops: why the kernel dropped packets, from tracepoints
 * (probes/drops.c), for the lifetime of the command, beside pktlens's own
 * policy drops; and the per-interface summary `stats` shows for an
 * attachment with `attach --probes drops`.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pktlens/clock.h>

#include "cli.h"
#include "common.h"
#include "drops.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../export/json.h"
#include "../loader/features.h"
#include "../loader/loader.h"
#include "../probes/drops.h"
#include "../probes/tcp.h"

enum by { BY_REASON, BY_DEV, BY_PROTO, BY_FLOW, BY_LOCATION };
/* --by, in enum by order */
static const struct pl_choice by_keys[] = {
	{ "reason", BY_REASON, false }, { "dev", BY_DEV, false }, { "proto", BY_PROTO, false },
	{ "flow", BY_FLOW, false }, { "location", BY_LOCATION, false }, { NULL },
};

/* One output row: a pl_drop_row with the fields not grouped by zeroed (or a flow). */
struct group {
	struct pl_drop_key k;
	struct pl_drop_flow_key f;
	__u32 reason, kind;	/* flows: their latest drop's */
	__u64 packets, bytes;
};

struct opts {
	enum by by;
	__u32 top;
	struct pl_drop_cfg cfg;
	const char *dev;
};

static struct group norm(const struct pl_drop_row *r, enum by by)
{
	struct group g = { .packets = r->v.packets, .bytes = r->v.bytes };

	/* a rule id is one interface's: rules of two interfaces stay apart */
	if ((by == BY_REASON || by == BY_LOCATION) && r->k.kind == PL_DROP_POLICY) {
		g.k.netns = r->k.netns;
		g.k.ifindex = r->k.ifindex;
		memcpy(g.k.dev, r->k.dev, sizeof(g.k.dev));
	}
	switch (by) {
	case BY_REASON:
		g.k.kind = r->k.kind;
		g.k.reason = r->k.reason;
		break;
	case BY_DEV:
		g.k.netns = r->k.netns;
		g.k.ifindex = r->k.ifindex;
		memcpy(g.k.dev, r->k.dev, sizeof(g.k.dev));
		break;
	case BY_PROTO:
		g.k.l3 = r->k.l3;
		g.k.l4 = r->k.l4;
		break;
	case BY_LOCATION:
		g.k.kind = r->k.kind;
		g.k.location = pl_drop_func(r->k.location);
		if (r->k.kind != PL_DROP_KFREE)
			g.k.reason = r->k.reason;	/* XDP and policy drops have no location */
		break;
	case BY_FLOW:
		break;
	}
	return g;
}

static int cmp_key(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	int c = memcmp(&x->k, &y->k, sizeof(x->k));

	return c ? c : memcmp(&x->f, &y->f, sizeof(x->f));
}

static int cmp_packets(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->packets != y->packets)
		return x->packets < y->packets ? 1 : -1;
	return cmp_key(a, b);
}

/* Merge equal keys of @g (sorted by key); the count left. */
static size_t merge(struct group *g, size_t n)
{
	size_t out = 0;

	qsort(g, n, sizeof(*g), cmp_key);
	for (size_t i = 0; i < n; i++) {
		if (out && !cmp_key(&g[out - 1], &g[i])) {
			g[out - 1].packets += g[i].packets;
			g[out - 1].bytes += g[i].bytes;
			continue;
		}
		g[out++] = g[i];
	}
	return out;
}

/* Everything counted so far, grouped (sorted by key). */
static int collect(const struct pl_drops *d, const struct opts *o, const struct pl_drop_row *base,
		   size_t nbase, struct group **out, size_t *n)
{
	struct pl_drop_row *rows = NULL, *pol = NULL;
	struct pl_drop_flow_row *frows = NULL;
	size_t nrows = 0, npol = 0, nf = 0, cnt = 0;
	struct group *g;
	int err;

	if (o->by == BY_FLOW) {
		err = pl_drops_read_flows(pl_drops_flows_fd(d), &frows, &nf);
		if (err)
			return err;
		g = calloc(nf ? nf : 1, sizeof(*g));
		if (!g) {
			free(frows);
			return -ENOMEM;
		}
		for (size_t i = 0; i < nf; i++) {
			g[i].f = frows[i].k;
			g[i].reason = frows[i].v.reason;
			g[i].kind = PL_DROP_KFREE;
			g[i].packets = frows[i].v.packets;
			g[i].bytes = frows[i].v.bytes;
		}
		free(frows);
		*out = g;
		*n = merge(g, nf);
		return 0;
	}
	err = pl_drops_read(pl_drops_stats_fd(d), &rows, &nrows);
	if (!err)
		err = pl_drops_policy(o->cfg.netns, o->cfg.ifindex, &pol, &npol);
	if (err) {
		free(rows);
		return err;
	}
	g = calloc(nrows + npol + 1, sizeof(*g));
	if (!g) {
		free(rows);
		free(pol);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nrows; i++)
		g[cnt++] = norm(&rows[i], o->by);
	for (size_t i = 0; i < npol; i++) {
		/* policy counters run since the rule was added: only what came since we started */
		for (size_t b = 0; b < nbase; b++)
			if (!memcmp(&base[b].k, &pol[i].k, sizeof(pol[i].k))) {
				pol[i].v.packets -= base[b].v.packets <= pol[i].v.packets ?
						    base[b].v.packets : pol[i].v.packets;
				pol[i].v.bytes -= base[b].v.bytes <= pol[i].v.bytes ?
						  base[b].v.bytes : pol[i].v.bytes;
			}
		if (pol[i].v.packets)
			g[cnt++] = norm(&pol[i], o->by);
	}
	free(rows);
	free(pol);
	*out = g;
	*n = merge(g, cnt);
	return 0;
}

static const char *kind_name(__u32 kind)
{
	return kind == PL_DROP_KFREE ? "kernel" : kind == PL_DROP_POLICY ? "pktlens" : "xdp";
}

/* A drop flow as a pl_flow_key, for the flow formatters. */
static struct pl_flow_key flow_key(const struct pl_drop_flow_key *f)
{
	struct pl_flow_key k = { .l4proto = f->l4, .sport = f->sport, .dport = f->dport };
	static const __u8 v4[12] = { [10] = 0xff, [11] = 0xff };

	k.l3proto = memcmp(f->saddr, v4, 12) ? 0x86dd : 0x0800;
	memcpy(k.saddr, f->saddr, 16);
	memcpy(k.daddr, f->daddr, 16);
	return k;
}

/* ICMP's type and code (in sport, dport) also named as flows -j and sample -j name them. */
static void json_icmp(struct jw *w, const struct pl_drop_flow_key *f)
{
	if (f->l4 == 1 || f->l4 == 58)
		pl_json_icmp(w, f->sport, f->dport);
}

/* A pktlens rule's interface (its id is that interface's). */
static void json_rule_dev(struct jw *w, const struct group *g)
{
	if (g->k.kind == PL_DROP_POLICY) {
		pl_json_netns(w, g->k.netns);
		jw_name_field(w, "device", g->k.dev);
	}
}

/* The reason column of text: "pktlens rule N (DEV)" for a rule, whose id is DEV's. */
static const char *text_reason(const struct group *g, char *buf, size_t len)
{
	char r[64];
	const char *name = pl_drop_reason_name(g->k.kind, g->k.reason, r, sizeof(r));

	if (g->k.kind == PL_DROP_POLICY)
		snprintf(buf, len, "%s (%s)", name, PL_NAME(g->k.dev));
	else
		snprintf(buf, len, "%s", name);
	return buf;
}

static void json_group(struct jw *w, const struct group *g, enum by by)
{
	char b1[64], b2[64];

	jw_obj_open(w);
	switch (by) {
	case BY_REASON:
		jw_str_field(w, "kind", kind_name(g->k.kind));
		jw_str_field(w, "reason", pl_drop_reason_name(g->k.kind, g->k.reason, b1, sizeof(b1)));
		json_rule_dev(w, g);
		break;
	case BY_DEV:
		pl_json_netns(w, g->k.netns);
		jw_name_field(w, "device", g->k.dev);
		jw_u64_field(w, "ifindex", g->k.ifindex);
		break;
	case BY_PROTO:
		jw_str_field(w, "l3", g->k.l3 ? pl_fmt_l3(g->k.l3, b1, sizeof(b1)) : "");
		jw_str_field(w, "l4", pl_drop_l4_name(g->k.l3, g->k.l4, b2, sizeof(b2)));
		break;
	case BY_LOCATION:
		jw_str_field(w, "kind", kind_name(g->k.kind));
		if (g->k.kind == PL_DROP_KFREE)
			jw_str_field(w, "location", pl_drop_location(g->k.location, b1, sizeof(b1)));
		else
			jw_str_field(w, "reason", pl_drop_reason_name(g->k.kind, g->k.reason, b1,
								      sizeof(b1)));
		json_rule_dev(w, g);
		break;
	case BY_FLOW: {
		struct pl_flow_key k = flow_key(&g->f);
		char a[PL_ADDR_STRLEN];

		pl_json_netns(w, g->f.netns);
		jw_str_field(w, "proto", pl_fmt_l4(&k, b1, sizeof(b1)));
		jw_str_field(w, "src", pl_fmt_addr(g->f.saddr, a, sizeof(a)));
		jw_u64_field(w, "sport", g->f.sport);
		jw_str_field(w, "dst", pl_fmt_addr(g->f.daddr, a, sizeof(a)));
		jw_u64_field(w, "dport", g->f.dport);
		json_icmp(w, &g->f);
		jw_str_field(w, "reason", pl_drop_reason_name(g->kind, g->reason, b2, sizeof(b2)));
		break;
	}
	}
	jw_u64_field(w, "packets", g->packets);
	jw_u64_field(w, "bytes", g->bytes);
	jw_obj_close(w);
}

/*
 * Text columns (their headings and least widths): each as wide as its widest
 * value, so that a long one (an [IPv6]:port, a rule's interface, a kernel
 * function) never pushes the counts out of line.
 */
#define TEXT_COLS 5
#define TEXT_CELL 320
static const struct {
	int n;
	const char *head[TEXT_COLS];
	int min[TEXT_COLS];
} text_cols[] = {
	[BY_REASON] = { 2, { "KIND", "REASON" }, { 8, 40 } },
	[BY_DEV] = { 2, { "NETNS", "DEVICE" }, { 12, 43 } },
	[BY_PROTO] = { 2, { "L3", "L4" }, { 8, 39 } },
	[BY_FLOW] = { 5, { "NETNS", "PROTO", "SOURCE", "DESTINATION", "REASON" }, { 12, 6, 29, 29, 24 } },
	[BY_LOCATION] = { 2, { "KIND", "LOCATION" }, { 8, 40 } },
};

/* @g's label columns as text, into @c (TEXT_COLS cells of TEXT_CELL bytes). */
static void text_cells(const struct group *g, enum by by, char c[][TEXT_CELL])
{
	char b1[128], b2[64];

	switch (by) {
	case BY_REASON:
		snprintf(c[0], TEXT_CELL, "%s", kind_name(g->k.kind));
		snprintf(c[1], TEXT_CELL, "%s", text_reason(g, b1, sizeof(b1)));
		break;
	case BY_DEV:
		pl_netns_fmt(g->k.netns, 0, false, c[0], TEXT_CELL);
		snprintf(c[1], TEXT_CELL, "%s", g->k.dev[0] ? PL_NAME(g->k.dev) : "-");
		break;
	case BY_PROTO: {
		const char *l4 = pl_drop_l4_name(g->k.l3, g->k.l4, b2, sizeof(b2));

		snprintf(c[0], TEXT_CELL, "%s", g->k.l3 ? pl_fmt_l3(g->k.l3, b1, sizeof(b1)) : "-");
		snprintf(c[1], TEXT_CELL, "%s", l4[0] ? l4 : "-");
		break;
	}
	case BY_LOCATION:
		snprintf(c[0], TEXT_CELL, "%s", kind_name(g->k.kind));
		snprintf(c[1], TEXT_CELL, "%s",
			 g->k.kind == PL_DROP_KFREE ? pl_drop_location(g->k.location, b1, sizeof(b1)) :
			 text_reason(g, b1, sizeof(b1)));
		break;
	case BY_FLOW: {
		struct pl_flow_key k = flow_key(&g->f);

		pl_netns_fmt(g->f.netns, 0, false, c[0], TEXT_CELL);
		snprintf(c[1], TEXT_CELL, "%s", pl_fmt_l4(&k, b1, sizeof(b1)));
		pl_fmt_endpoint(&k, k.saddr, k.sport, c[2], TEXT_CELL);
		pl_fmt_endpoint(&k, k.daddr, k.dport, c[3], TEXT_CELL);
		snprintf(c[4], TEXT_CELL, "%s", pl_drop_reason_name(g->kind, g->reason, b2, sizeof(b2)));
		break;
	}
	}
}

/* Characters of UTF-8 text (interface names are shown as printable UTF-8). */
static int text_width(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* @s padded to @width characters, and the space after it */
static void text_cell(const char *s, int width)
{
	printf("%s%*s ", s, width > text_width(s) ? width - text_width(s) : 0, "");
}

/* The table of @g's first @n rows, columns as wide as they need. */
static void text_table(const struct group *g, size_t n, enum by by)
{
	char c[TEXT_COLS][TEXT_CELL];
	int w[TEXT_COLS];

	for (int j = 0; j < text_cols[by].n; j++)
		w[j] = text_cols[by].min[j];
	for (size_t i = 0; i < n; i++) {
		text_cells(&g[i], by, c);
		for (int j = 0; j < text_cols[by].n; j++)
			if (text_width(c[j]) > w[j])
				w[j] = text_width(c[j]);
	}
	for (int j = 0; j < text_cols[by].n; j++)
		text_cell(text_cols[by].head[j], w[j]);
	printf("%12s %14s\n", "PACKETS", "BYTES");
	for (size_t i = 0; i < n; i++) {
		text_cells(&g[i], by, c);
		for (int j = 0; j < text_cols[by].n; j++)
			text_cell(c[j], w[j]);
		printf("%12llu %14llu\n", (unsigned long long)g[i].packets,
		       (unsigned long long)g[i].bytes);
	}
}

/* Print @g (all rows, or the --top biggest); @prev: subtract an earlier reading (--watch). */
static void report(const struct opts *o, struct group *g, size_t n, const struct group *prev,
		   size_t nprev, const uint64_t lost[PL_DROP_LOST_MAX], double secs)
{
	uint64_t pk = 0, by = 0;
	size_t shown = 0;
	struct jw w;

	for (size_t i = 0; prev && i < n; i++) {
		const struct group *p = bsearch(&g[i], prev, nprev, sizeof(*prev), cmp_key);

		if (p) {
			g[i].packets -= p->packets <= g[i].packets ? p->packets : g[i].packets;
			g[i].bytes -= p->bytes <= g[i].bytes ? p->bytes : g[i].bytes;
		}
	}
	qsort(g, n, sizeof(*g), cmp_packets);
	for (size_t i = 0; i < n; i++) {
		pk += g[i].packets;
		by += g[i].bytes;
	}
	if (pl_g.json) {
		jw_init(&w, stdout, pl_g.pretty && !prev);
		jw_obj_open(&w);
		jw_str_field(&w, "by", by_keys[o->by].name);
		jw_fixed_field(&w, "seconds", secs, 3);
		jw_bool_field(&w, "reasons", pl_feature(PL_FEAT_DROP_REASON));
		jw_key(&w, "drops");
		jw_arr_open(&w);
		for (size_t i = 0; i < n && (!o->top || shown < o->top); i++)
			if (g[i].packets) {
				json_group(&w, &g[i], o->by);
				shown++;
			}
		jw_arr_close(&w);
		jw_u64_field(&w, "packets", pk);
		jw_u64_field(&w, "bytes", by);
		jw_key(&w, "lost");
		jw_obj_open(&w);
		jw_u64_field(&w, "events_ring", lost[PL_DROP_LOST_RING]);
		jw_u64_field(&w, "events_rate", lost[PL_DROP_LOST_RATE]);
		jw_u64_field(&w, "table", lost[PL_DROP_LOST_TABLE]);
		jw_obj_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
		fflush(stdout);
		return;
	}
	printf("%s%llu packets dropped in %.1f s", prev ? "\n" : "", (unsigned long long)pk, secs);
	if (!pl_feature(PL_FEAT_DROP_REASON))
		printf(" (Linux %s has no drop reasons: by location)", pl_kernel_release());
	printf("\n");
	/* sorted by packets: the rows with packets first, the --top biggest of them */
	while (shown < n && g[shown].packets && (!o->top || shown < o->top))
		shown++;
	text_table(g, shown, o->by);
	if (lost[PL_DROP_LOST_TABLE])
		printf("%llu drops not counted: the table was full\n",
		       (unsigned long long)lost[PL_DROP_LOST_TABLE]);
	if (lost[PL_DROP_LOST_RING] || lost[PL_DROP_LOST_RATE])
		printf("events lost: %llu (ring full), %llu (over --rate)\n",
		       (unsigned long long)lost[PL_DROP_LOST_RING],
		       (unsigned long long)lost[PL_DROP_LOST_RATE]);
	fflush(stdout);
}

/* An IPv6 extension header: hop-by-hop, routing, fragment, AH, destination options */
static bool ipv6_ext(__u8 nh)
{
	return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60;
}

/* The flow of an event's header bytes (IPv4/IPv6 from the network header). */
static bool event_flow(const struct pl_drop_event *e, struct pl_drop_flow_key *f)
{
	const __u8 *p = e->data;
	unsigned off;

	memset(f, 0, sizeof(*f));
	f->netns = e->k.netns;
	if (e->k.l3 == 0x0800 && e->caplen >= 20 && (p[0] >> 4) == 4) {
		f->saddr[10] = f->saddr[11] = f->daddr[10] = f->daddr[11] = 0xff;
		memcpy(f->saddr + 12, p + 12, 4);
		memcpy(f->daddr + 12, p + 16, 4);
		f->l4 = p[9];
		off = (p[0] & 15) * 4u;
		if ((p[6] & 0x1f) || p[7])
			off = 0;	/* a later fragment: no ports */
	} else if (e->k.l3 == 0x86dd && e->caplen >= 40 && (p[0] >> 4) == 6) {
		memcpy(f->saddr, p + 8, 16);
		memcpy(f->daddr, p + 24, 16);
		f->l4 = p[6];
		off = 40;
		/* past the extension headers, as the probe's counts have it */
		for (int i = 0; i < 6 && off && ipv6_ext(f->l4); i++) {
			if (off + 4 > e->caplen) {
				off = 0;
			} else if (f->l4 == 44) {	/* fragment: a later one has no ports */
				f->l4 = p[off];
				off = ((p[off + 2] << 8 | p[off + 3]) & 0xfff8) ? 0 : off + 8;
			} else {
				unsigned len = f->l4 == 51 ? (p[off + 1] + 2u) * 4 : (p[off + 1] + 1u) * 8;

				f->l4 = p[off];
				off += len;
			}
		}
		if (ipv6_ext(f->l4))
			off = 0;
	} else {
		return false;
	}
	if (off && off + 4 <= e->caplen) {
		if (f->l4 == 1 || f->l4 == 58) {
			f->sport = p[off];
			f->dport = p[off + 1];
		} else {
			f->sport = (__u16)(p[off] << 8 | p[off + 1]);
			f->dport = (__u16)(p[off + 2] << 8 | p[off + 3]);
		}
	} else if (f->l4 == 1 || f->l4 == 58) {
		f->sport = PL_ICMP_NONE;	/* no header (a later fragment): not Echo Reply's 0/0 */
		f->dport = PL_ICMP_NONE;
	}
	return true;
}

static int on_event(void *ctx, const struct pl_drop_event *ev)
{
	char r[64], loc[128], s[64], d[64], p[16], ns[300];
	struct pl_drop_event named = *ev, *e = &named;
	struct pl_drop_flow_key f;
	struct pl_flow_key k;
	bool ip = event_flow(e, &f);

	(void)ctx;
	pl_drops_name_dev(&e->k);	/* a drop on TCP's receive path: the device it arrived on */
	k = flow_key(&f);
	if (e->k.kind == PL_DROP_KFREE)
		pl_drop_location(e->k.location, loc, sizeof(loc));
	else
		snprintf(loc, sizeof(loc), "-");
	if (pl_g.json) {
		struct jw w;
		char a[PL_ADDR_STRLEN], hex[2 * PL_DROP_SNAP + 1];

		jw_init(&w, stdout, false);
		jw_obj_open(&w);
		jw_str_field(&w, "event", "drop");
		jw_u64_field(&w, "ts_ns", e->ts_ns);
		pl_json_netns(&w, e->k.netns);
		jw_name_field(&w, "device", e->k.dev);
		jw_str_field(&w, "kind", kind_name(e->k.kind));
		jw_str_field(&w, "reason", pl_drop_reason_name(e->k.kind, e->k.reason, r, sizeof(r)));
		jw_str_field(&w, "location", loc);
		jw_u64_field(&w, "len", e->len);
		if (ip) {
			jw_str_field(&w, "proto", pl_fmt_l4(&k, p, sizeof(p)));
			jw_str_field(&w, "src", pl_fmt_addr(f.saddr, a, sizeof(a)));
			jw_u64_field(&w, "sport", f.sport);
			jw_str_field(&w, "dst", pl_fmt_addr(f.daddr, a, sizeof(a)));
			jw_u64_field(&w, "dport", f.dport);
			json_icmp(&w, &f);
		}
		for (__u32 i = 0; i < e->caplen && i < PL_DROP_SNAP; i++)
			snprintf(hex + 2 * i, 3, "%02x", e->data[i]);
		hex[2 * (e->caplen < PL_DROP_SNAP ? e->caplen : PL_DROP_SNAP)] = '\0';
		jw_str_field(&w, "header", hex);
		jw_obj_close(&w);
		jw_end(&w);
	} else {
		printf("%-12s %-16s %-28s %-28s %s%s%s%s%s len %u\n",
		       pl_netns_fmt(e->k.netns, 0, false, ns, sizeof(ns)),
		       e->k.dev[0] ? PL_NAME(e->k.dev) : "-",
		       pl_drop_reason_name(e->k.kind, e->k.reason, r, sizeof(r)), loc,
		       ip ? pl_fmt_l4(&k, p, sizeof(p)) : "", ip ? " " : "",
		       ip ? pl_fmt_endpoint(&k, k.saddr, k.sport, s, sizeof(s)) : "",
		       ip ? " > " : "", ip ? pl_fmt_endpoint(&k, k.daddr, k.dport, d, sizeof(d)) : "",
		       e->len);
	}
	return 0;
}

void pl_drops_summary(struct jw *w, const struct pl_attachment *a)
{
	struct pl_drop_row *rows = NULL;
	struct group *g = NULL;
	uint64_t lost[PL_DROP_LOST_MAX];
	size_t n = 0, cnt = 0;
	int fd = -1, lost_known;

	if (a->meta.probes & PL_PROBE_DROPS)
		fd = pl_pin_open(a->dir, PL_MAP_DROP_STATS);
	if (fd >= 0 && !pl_drops_read(fd, &rows, &n) && (g = calloc(n + 1, sizeof(*g)))) {
		for (size_t i = 0; i < n; i++)
			if (rows[i].k.ifindex == a->meta.ifindex && rows[i].k.netns == a->netns)
				g[cnt++] = norm(&rows[i], BY_REASON);
		cnt = merge(g, cnt);
		qsort(g, cnt, sizeof(*g), cmp_packets);
	}
	if (fd >= 0)
		close(fd);
	/* drops the table had no room for: the namespace's, no device known (not in older sets) */
	lost_known = g && !pl_drops_pinned_lost(a->dir, lost);
	if (w) {
		jw_key(w, "kernel_drops");
		if (!g) {
			jw_null(w);
		} else {
			jw_arr_open(w);
			for (size_t i = 0; i < cnt; i++)
				json_group(w, &g[i], BY_REASON);
			jw_arr_close(w);
		}
		jw_key(w, "kernel_drops_lost");
		if (lost_known)
			jw_u64(w, lost[PL_DROP_LOST_TABLE]);
		else
			jw_null(w);
	} else if (g) {
		char r[64];

		printf("  drops    ");
		for (size_t i = 0; i < cnt; i++)
			printf(" %s %llu/%llu", pl_drop_reason_name(g[i].k.kind, g[i].k.reason, r,
								    sizeof(r)),
			       (unsigned long long)g[i].packets, (unsigned long long)g[i].bytes);
		printf("%s\n", cnt ? "" : " none");
		if (lost_known && lost[PL_DROP_LOST_TABLE])
			printf("  drops not counted (table full, any device of the namespace): %llu\n",
			       (unsigned long long)lost[PL_DROP_LOST_TABLE]);
	}
	free(rows);
	free(g);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * --watch: print the drops since the last call (@prev, @tw, @plost: that
 * reading, its time and its losses), the losses too of that interval alone.
 */
static int watch_report(const struct pl_drops *d, const struct opts *o,
			const struct pl_drop_row *base, size_t nbase, struct group **prev,
			size_t *nprev, double *tw, uint64_t plost[PL_DROP_LOST_MAX])
{
	uint64_t lost[PL_DROP_LOST_MAX], now_lost[PL_DROP_LOST_MAX];
	double now = mono_s();
	struct group *g = NULL, *keep;
	size_t n = 0;
	int err;

	err = collect(d, o, base, nbase, &g, &n);
	if (err)
		return err;
	pl_drops_lost(d, now_lost);
	for (int i = 0; i < PL_DROP_LOST_MAX; i++) {
		lost[i] = now_lost[i] - (plost[i] <= now_lost[i] ? plost[i] : now_lost[i]);
		plost[i] = now_lost[i];
	}
	keep = malloc((n ? n : 1) * sizeof(*g));
	if (!keep) {
		free(g);
		return -ENOMEM;
	}
	memcpy(keep, g, n * sizeof(*g));	/* sorted by key, for the next delta */
	report(o, g, n, *prev ? *prev : keep, *prev ? *nprev : 0, lost, now - *tw);
	free(*prev);
	free(g);
	*prev = keep;
	*nprev = n;
	*tw = now;
	return 0;
}

struct drops_cfg {
	uint64_t duration, netns;
	int by, events;
	uint32_t top, watch, rate;
};

static int do_drops(void *cfg, int argc, char **argv)
{
	const struct drops_cfg *c = cfg;
	struct opts o = { .by = c->by, .top = c->top, .cfg.netns = c->netns, .cfg.events_per_sec = 100 };
	struct pl_drop_row *base = NULL;
	struct group *prev = NULL, *g = NULL;
	size_t nbase = 0, nprev = 0, n = 0;
	uint64_t duration = c->duration, end_ns, lost[PL_DROP_LOST_MAX];
	uint64_t wlost[PL_DROP_LOST_MAX] = { 0 };	/* --watch: the losses of the last reading */
	char until[64];
	uint32_t watch = c->watch, rate = c->rate;
	struct pl_drops *d = NULL;
	bool events = c->events, gone = false;
	double t0, tw;
	char why[256];
	int err, ret = PL_EXIT_OK;

	if (rate && !events) {
		pl_err("drops: --rate: only with --events");
		return PL_EXIT_USAGE;
	}
	if (rate)
		o.cfg.events_per_sec = rate;
	if (argc) {
		uint64_t here;

		o.dev = argv[0];
		o.cfg.ifindex = if_nametoindex(o.dev);
		if (!o.cfg.ifindex) {
			pl_err("drops: %s: no such interface%s", o.dev,
			       pl_g.netns ? "" : " here (pktlens -n NETNS drops DEV for another namespace)");
			return PL_EXIT_USAGE;
		}
		if (pl_netns_ino(&here) || (o.cfg.netns && o.cfg.netns != here)) {
			pl_err("drops: %s: DEV is an interface of the current namespace: give its "
			       "namespace with pktlens -n NETNS, not --netns", o.dev);
			return PL_EXIT_USAGE;
		}
		o.cfg.netns = here;
	} else {
		ret = pl_probe_netns("drops", &o.cfg.netns);	/* -n NETNS: that one's alone */
		if (ret)
			return ret;
	}
	if (o.by == BY_FLOW)
		o.cfg.flags |= PL_DROP_CFG_FLOWS;
	if (events)
		o.cfg.flags |= PL_DROP_CFG_EVENTS;
	ret = pl_need_caps("drops", PL_NEED_BPF | PL_NEED_PERFMON);
	if (ret)
		return ret;
	/*
	 * Before the probes count: the rules' drops from here on, and a stop
	 * (Ctrl-C, a test's SIGINT once it sees the probes attached) that
	 * comes while they load ends with the counts, not killed; both were
	 * after the load, which takes seconds on a slow host or an emulated VM:
	 * the rules' drops meanwhile went into the base, or the stop killed it
	 */
	if (pl_drops_policy(o.cfg.netns, o.cfg.ifindex, &base, &nbase))
		nbase = 0;
	pl_catch_stop();
	err = pl_drops_open(&o.cfg, events ? on_event : NULL, NULL, &d, why, sizeof(why));
	if (err) {
		pl_err("drops: %s", why);
		free(base);
		return PL_EXIT_FAIL;
	}
	pl_info("drops: counting%s%s, %s", o.dev ? " on " : "",
		o.dev ? o.dev : o.cfg.netns ? " in one namespace" : "",
		pl_until(duration, until, sizeof(until)));
	if (events && !pl_g.json)
		printf("%-12s %-16s %-28s %-28s %s\n", "NETNS", "DEVICE", "REASON", "LOCATION",
		       "PACKET");
	end_ns = pl_deadline_in(duration);
	t0 = tw = mono_s();
	while (!pl_stop) {
		err = pl_drops_poll(d, pl_deadline_ms(end_ns, 100));
		if (err < 0) {
			pl_err("drops: reading events: %s", strerror(-err));
			ret = PL_EXIT_FAIL;
			break;
		}
		err = 0;	/* the number of events read */
		if (pl_deadline_passed(end_ns))
			break;
		/* as sample: nothing more can come (another device of its name is not DEV) */
		if (o.dev && pl_iface_gone(o.cfg.ifindex)) {
			pl_err("drops: %s: the interface is gone (deleted, or moved to another "
			       "network namespace): stopped", o.dev);
			gone = true;	/* what was counted is still printed */
			break;
		}
		if (watch && mono_s() - tw >= watch) {
			err = watch_report(d, &o, base, nbase, &prev, &nprev, &tw, wlost);
			if (err)
				break;
		}
	}
	pl_drops_poll(d, 0);	/* what is left */
	if (!err && watch)	/* the last interval, cut short by --duration or Ctrl-C */
		err = watch_report(d, &o, base, nbase, &prev, &nprev, &tw, wlost);
	if (!err && !watch) {
		/* the counting ends where the counters are read, not after their names are looked up */
		double took = mono_s() - t0;

		err = collect(d, &o, base, nbase, &g, &n);
		pl_drops_lost(d, lost);
		if (!err)
			report(&o, g, n, NULL, 0, lost, took);
	}
	if (err && ret == PL_EXIT_OK) {	/* else said already */
		pl_err("drops: reading the counters: %s", strerror(-err));
		ret = PL_EXIT_FAIL;
	}
	if (gone)
		ret = PL_EXIT_FAIL;
	free(g);
	free(prev);
	free(base);
	pl_drops_close(d);
	return ret;
}

static const struct pl_opt drops_opts[] = {
	{ .name = "duration", .type = PL_OPT_DURATION, PL_FIELD(struct drops_cfg, duration),
	  .arg = "SECS", .help = "stop after SECS seconds (default: at Ctrl-C)" },
	{ .name = "netns", .type = PL_OPT_PARSE, PL_FIELD(struct drops_cfg, netns),
	  .arg = "NAME|PATH|PID", .parse = pl_netns_opt,
	  .help = "only this namespace (a name in /run/netns, a path or a PID; default: every "
		  "namespace, told apart by their inode)" },
	{ .name = "by", .type = PL_OPT_CHOICE, PL_FIELD(struct drops_cfg, by), .choices = by_keys,
	  .arg = "KEY",
	  .help = "group by reason (default), dev (namespace and device), proto, flow (the "
		  "5-tuple) or location (the kernel function)" },
	{ .name = "top", .type = PL_OPT_UINT, PL_FIELD(struct drops_cfg, top), .min = 1,
	  .max = UINT32_MAX, .arg = "N",
	  .help = "only the N biggest groups" },
	{ .name = "watch", .type = PL_OPT_UINT, PL_FIELD(struct drops_cfg, watch), .min = 1,
	  .max = 86400, .arg = "SECS", .bad = " is wrong: expected seconds from %llu to %llu",
	  .help = "print the drops of every SECS seconds" },
	{ .name = "events", .type = PL_OPT_FLAG, PL_FIELD(struct drops_cfg, events), .val = 1,
	  .help = "also one line per drop with its addresses and ports (at most --rate per CPU "
		  "and second; the rest counted as lost)" },
	{ .name = "rate", .type = PL_OPT_UINT, PL_FIELD(struct drops_cfg, rate), .min = 1,
	  .max = 1000000, .arg = "N",
	  .bad = " is wrong: expected events per second from %llu to %llu",
	  .help = "--events: at most N per CPU and second (default 100)" },
	{ NULL },
};

const struct pl_cmd pl_cmd_drops = {
	.name = "drops", .args = "[DEV]", .opts = drops_opts, .fn = do_drops,
	.cfg_size = sizeof(struct drops_cfg), .max_args = 1,
	.many = "unexpected '%s' (see pktlens drops --help)",
	.about = "Packets the kernel dropped, and why, from the skb:kfree_skb tracepoint (its drop\n"
		 "reason, named from the kernel's BTF) and XDP failures (xdp:xdp_exception, redirect\n"
		 "errors), counted in the kernel until Ctrl-C or --duration; pktlens's own policy\n"
		 "drops in the same time are shown beside them as `pktlens rule N`. The device is\n"
		 "skb->dev when the skb was freed: the one it arrived on for drops on receive.\n"
		 "DEV: only drops on DEV, an interface of the current namespace (-n); DEV deleted\n"
		 "meanwhile: said, the counts printed, exit 1. -n NETNS without DEV or --netns:\n"
		 "NETNS's drops alone (else every namespace's). -j: one document (JSON lines with\n"
		 "--watch or --events).\n",
};
