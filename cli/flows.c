// SPDX-License-Identifier: GPL-2.0
/* pktlens flows */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pktlens/array.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../probes/drops.h"
#include "../probes/tcp.h"

enum sort_by { SORT_BYTES, SORT_PACKETS, SORT_RATE, SORT_RETRANS, SORT_DROPS, SORT_RTT };

struct row {
	struct pl_flow f;
	size_t att;		/* index of its attachment */
	double rate;
	long long retrans;	/* segments; -1: not known (no probes, not TCP) */
	long long drops;	/* packets the kernel dropped; -1: not known (no probes, not IP) */
	__u32 rtt;		/* --sort rtt: pl_tcp_row_rtt() (0: none) */
};

static enum sort_by sort_key;

static int cmp_rows(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	double va, vb;

	switch (sort_key) {
	case SORT_PACKETS:
		va = (double)a->f.val.packets, vb = (double)b->f.val.packets;
		break;
	case SORT_RATE:
		va = a->rate, vb = b->rate;
		break;
	case SORT_RETRANS:
		va = (double)a->retrans, vb = (double)b->retrans;
		break;
	case SORT_DROPS:
		va = (double)a->drops, vb = (double)b->drops;
		break;
	case SORT_RTT:
		va = a->rtt, vb = b->rtt;
		break;
	default:
		va = (double)a->f.val.bytes, vb = (double)b->f.val.bytes;
	}
	if (va != vb)
		return va < vb ? 1 : -1;
	/* ties (flows with no RTT, retransmits or drops among them): the larger first, then by key */
	if (a->f.val.bytes != b->f.val.bytes)
		return a->f.val.bytes < b->f.val.bytes ? 1 : -1;
	return memcmp(&a->f.key, &b->f.key, sizeof(a->f.key));
}

static bool is_v6(const struct pl_flow_key *k)
{
	return k->l3proto == 0x86dd;
}

static bool has_ports(const struct pl_flow_key *k)
{
	return (k->l3proto == 0x0800 || k->l3proto == 0x86dd) &&
	       (k->l4proto == 6 || k->l4proto == 17 || k->l4proto == 132);
}

/*
 * Retransmitted segments of the TCP connection a flow belongs to, from the
 * probes pinned with the attachment (-1: none pinned, or not TCP). The host's
 * own connections: egress flows start at the local end, ingress flows end there.
 */
static long long flow_retrans(int fd, uint64_t netns, const struct pl_flow_key *k)
{
	struct pl_tcp_tuple t = { .netns = netns };
	struct pl_tcp_conn c;
	bool out = k->dir == PL_DIR_OUT;

	if (fd < 0 || k->l4proto != 6 || !has_ports(k))
		return -1;
	t.family = is_v6(k) ? 10 : 2;
	memcpy(t.laddr, out ? k->saddr : k->daddr, 16);
	memcpy(t.raddr, out ? k->daddr : k->saddr, 16);
	t.lport = out ? k->sport : k->dport;
	t.rport = out ? k->dport : k->sport;
	if (!pl_tcp_conn_lookup(fd, &t, &c))
		return (long long)c.segs;
	/* an AF_INET6 socket talking IPv4 (v4-mapped) keys as family 10 */
	t.family = 10;
	return !is_v6(k) && !pl_tcp_conn_lookup(fd, &t, &c) ? (long long)c.segs : 0;
}

/*
 * Packets of the flow that the kernel dropped in the attachment's namespace,
 * from the drop probes pinned with it (-1: none pinned, or not IP): the
 * same addresses, ports and protocol, on any of its interfaces.
 */
static long long flow_drops(int fd, uint64_t netns, const struct pl_flow_key *k)
{
	struct pl_drop_flow_key d = { .netns = netns, .sport = k->sport, .dport = k->dport,
				      .l4 = k->l4proto };
	struct pl_drop_flow_val v;

	if (fd < 0 || (k->l3proto != 0x0800 && k->l3proto != 0x86dd))
		return -1;
	memcpy(d.saddr, k->saddr, 16);
	memcpy(d.daddr, k->daddr, 16);
	return pl_drops_flow_lookup(fd, &d, &v) ? 0 : (long long)v.packets;
}

/* The passive TCP state of a flow's connection (tcp_state @fd, -1: none); NULL if none. */
static const struct pl_tcp_state *flow_tcp(int fd, const struct pl_flow_key *k,
					   struct pl_tcp_state *st, int *half)
{
	if (fd < 0 || k->l4proto != 6 || !has_ports(k))
		return NULL;
	return pl_tcp_flow(fd, k, st, half) ? NULL : st;
}

static void plain_ms(__u32 us, bool known, int width)
{
	if (known)
		printf(" %*.2f", width, us / 1000.0);
	else
		printf(" %*s", width, "-");
}

/* RTT_SRV RTT_CLI SRTT_MS RETX REORD ZWIN RST */
static void plain_tcp(const struct pl_tcp_state *t, int half)
{
	const struct pl_tcp_half *h;

	if (!t) {
		printf(" %8s %8s %8s %6s %6s %5s %4s", "-", "-", "-", "-", "-", "-", "-");
		return;
	}
	h = &t->h[half & 1];
	plain_ms(t->rtt_syn_us, t->rtt_syn_us != 0, 8);
	plain_ms(t->rtt_synack_us, t->rtt_synack_us != 0, 8);
	plain_ms(h->rtt_srtt_us, h->rtt_samples != 0, 8);
	printf(" %6u %6u %5u %4u", h->retrans, h->reorder, h->zero_win, h->rst);
}

static void plain_row(const struct row *r, const char *ifname, bool rtx, bool drops, int tfd)
{
	const struct pl_flow_key *k = &r->f.key;
	const struct pl_flow_val *v = &r->f.val;
	char src[64], dst[64], proto[24], l3[16], vlan[8] = "-", fl[16] = "";
	const char *p = pl_fmt_l4(k, proto, sizeof(proto));

	pl_fmt_endpoint(k, k->saddr, k->sport, src, sizeof(src));
	pl_fmt_endpoint(k, k->daddr, k->dport, dst, sizeof(dst));
	if (!*p)
		p = pl_fmt_l3(k->l3proto, l3, sizeof(l3));
	else if (k->l4proto == 1 || k->l4proto == 58)
		snprintf(proto, sizeof(proto), k->sport == PL_ICMP_NONE ? "%s -/-" : "%s %u/%u",
			 k->l4proto == 1 ? "icmp" : "icmp6", k->sport, k->dport), p = proto;
	if (k->vlan != PL_VLAN_NONE)
		snprintf(vlan, sizeof(vlan), "%u", k->vlan & 0xfff);
	if (k->l4proto == 6 && has_ports(k))
		pl_fmt_tcp_flags(v->tcp_flags, fl, sizeof(fl));
	printf("%-15s %-3s %-3s %4s %-11s %-45s %-45s %10llu %12llu %-6s %8.1f", PL_NAME(ifname),
	       k->hook == PL_HOOK_XDP ? "xdp" : "tc", k->dir == PL_DIR_IN ? "in" : "out",
	       vlan, p, src, dst, v->packets, v->bytes, fl, (v->last_ns - v->first_ns) / 1e9);
	if (rtx && r->retrans >= 0)
		printf(" %7lld", r->retrans);
	else if (rtx)
		printf(" %7s", "-");
	if (drops && r->drops >= 0)
		printf(" %7lld", r->drops);
	else if (drops)
		printf(" %7s", "-");
	if (tfd >= 0) {
		struct pl_tcp_state st;
		int half = 0;
		/* its own statement: an argument beside @half would be read unordered */
		const struct pl_tcp_state *t = flow_tcp(tfd, k, &st, &half);

		plain_tcp(t, half);
	}
	printf("\n");
}

/*
 * The flows to show, gathered while the tables stream by: all of them, or
 * with --top N only the best N so far in a bounded heap whose root is the
 * worst of them (O(flows log N) time, O(N) memory).
 */
struct sel {
	struct row *rows;
	size_t n, cap;
	uint32_t top;		/* 0: keep all */
	size_t att;		/* attachment being read */
	int cfd;		/* its conn_retrans, -1: none */
	int dfd;		/* its drop_flows, -1: none */
	int tfd;		/* its tcp_state (attach --tcp-passive), -1: none */
	uint64_t netns;
	size_t nflows;		/* flows of that attachment */
};

static void heap_down(struct row *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct row t;

		if (l < n && cmp_rows(&h[l], &h[m]) > 0)
			m = l;
		if (r < n && cmp_rows(&h[r], &h[m]) > 0)
			m = r;
		if (m == i)
			return;
		t = h[i], h[i] = h[m], h[m] = t;
		i = m;
	}
}

static void heap_up(struct row *h, size_t i)
{
	while (i) {
		size_t p = (i - 1) / 2;
		struct row t;

		if (cmp_rows(&h[i], &h[p]) <= 0)
			return;
		t = h[i], h[i] = h[p], h[p] = t;
		i = p;
	}
}

static int sel_flow(const struct pl_flow *f, void *ctx)
{
	struct sel *s = ctx;
	struct row r = { .f = *f, .att = s->att, .retrans = -1, .drops = -1 };

	s->nflows++;
	r.rate = sort_key == SORT_RATE ? pl_flow_rate(&f->val) : 0;
	/* segments are looked up for the rows shown, unless they decide which */
	if (sort_key == SORT_RETRANS)
		r.retrans = flow_retrans(s->cfd, s->netns, &f->key);
	if (sort_key == SORT_DROPS)
		r.drops = flow_drops(s->dfd, s->netns, &f->key);
	if (sort_key == SORT_RTT) {
		struct pl_tcp_state st;
		int half = 0;
		const struct pl_tcp_state *t = flow_tcp(s->tfd, &f->key, &st, &half);

		r.rtt = t ? pl_tcp_row_rtt(t, half) : 0;
	}
	if (s->top && s->n == s->top) {
		if (cmp_rows(&r, &s->rows[0]) >= 0)
			return 0;	/* not better than the worst kept */
		s->rows[0] = r;
		heap_down(s->rows, s->n, 0);
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		struct row *p;

		if (s->top && cap > s->top)
			cap = s->top;
		p = realloc(s->rows, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->rows = p;
		s->cap = cap;
	}
	s->rows[s->n++] = r;
	if (s->top)
		heap_up(s->rows, s->n - 1);
	return 0;
}

/*
 * The rows of attachment @att out of @s again: its walk failed part-way (with --top, rows of
 * others it pushed out are not back: the table is read once).
 */
static void sel_drop_att(struct sel *s, size_t att)
{
	size_t k = 0;

	for (size_t j = 0; j < s->n; j++)
		if (s->rows[j].att != att)
			s->rows[k++] = s->rows[j];
	s->n = k;
	if (s->top)
		for (size_t j = s->n / 2; j-- > 0;)
			heap_down(s->rows, s->n, j);
}

struct flows_cfg {
	uint32_t top;
	int sort;
};

static int do_flows(void *cfg, int argc, char **argv)
{
	const struct flows_cfg *c = cfg;
	struct pl_attachment *a = NULL;
	struct sel sel = { .cfd = -1, .dfd = -1, .tfd = -1 };
	struct pl_view_errs errs = { 0 };
	int *cfds = NULL, *dfds = NULL, *tfds = NULL;
	size_t n = 0, nrows, i;
	bool rtx = false, drops = false, tcp = false;
	uint32_t top = c->top;
	struct jw w;
	int rc;

	sort_key = c->sort;
	rc = pl_need_caps("flows", PL_NEED_BPF);
	if (rc)
		return rc;
	rc = pl_select("flows", argc ? argv[0] : NULL, &a, &n);
	if (rc)
		return rc;

	cfds = malloc((n ? n : 1) * sizeof(*cfds));
	dfds = malloc((n ? n : 1) * sizeof(*dfds));
	tfds = malloc((n ? n : 1) * sizeof(*tfds));
	if (!cfds || !dfds || !tfds) {
		pl_err("flows: out of memory");
		rc = PL_EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < n; i++)
		cfds[i] = dfds[i] = tfds[i] = -1;
	sel.top = top;
	jw_init(&w, stdout, pl_g.pretty);
	if (pl_g.json) {
		jw_obj_open(&w);
		jw_key(&w, "interfaces");
		jw_arr_open(&w);
	}
	pl_view_errs_begin(&errs);
	for (i = 0; i < n; i++) {
		struct pl_stats s[PL_SLOT_MAX];
		struct pl_state st;
		size_t used = 0;
		__u64 lost = 0, lost_pk = 0, lost_by = 0;
		int err;

		/* one that cannot be read does not hide the others' flows */
		if ((err = pl_open_state("flows", &a[i], &st))) {
			pl_view_errs_add(&errs, a[i].ifname);
			rc = rc ? rc : err;
			continue;
		}
		if (st.meta.probes & PL_PROBE_TCP)
			cfds[i] = pl_pin_open(a[i].dir, PL_MAP_CONN_RETRANS);
		rtx |= cfds[i] >= 0;
		if (st.meta.probes & PL_PROBE_DROPS)
			dfds[i] = pl_pin_open(a[i].dir, PL_MAP_DROP_FLOWS);
		drops |= dfds[i] >= 0;
		if (st.meta.tcp_passive)
			tfds[i] = pl_pin_open(a[i].dir, PL_MAP_TCP_STATE);
		tcp |= tfds[i] >= 0;
		sel.tfd = tfds[i];
		sel.att = i;
		sel.cfd = cfds[i];
		sel.dfd = dfds[i];
		sel.netns = a[i].netns;
		sel.nflows = 0;
		/* one batched walk gives the flows and the table's entry count */
		err = pl_state_flows_each(&st, sel_flow, &sel, &used);
		if (!err)
			err = pl_state_stats(&st, s);
		if (err) {
			pl_err("flows: %s: cannot read maps: %s", a[i].ifname, strerror(-err));
			pl_view_errs_add(&errs, a[i].ifname);
			pl_state_close(&st);
			rc = PL_EXIT_FAIL;
			/* its flows read before the failure stay out of the table */
			sel_drop_att(&sel, i);
			continue;
		}
		for (int sl = 0; sl < PL_SLOT_MAX; sl++)
			lost += s[sl].flow_lost, lost_pk += s[sl].flow_lost_pkts,
				lost_by += s[sl].flow_lost_bytes;
		if (pl_g.json) {
			jw_obj_open(&w);
			jw_name_field(&w, "ifname", a[i].ifname);
			pl_json_att_netns(&w, &a[i]);
			jw_u64_field(&w, "flows", sel.nflows);
			jw_u64_field(&w, "table_entries", used);
			jw_u64_field(&w, "table_max", st.meta.flows_max);
			jw_u64_field(&w, "lost", lost);
			jw_u64_field(&w, "lost_packets", lost_pk);
			jw_u64_field(&w, "lost_bytes", lost_by);
			jw_obj_close(&w);
		} else if (lost) {
			/* lost while full: a table since made larger (attach --force --flows) is not */
			printf("%s: flow table %s (%zu/%u): %llu packets, %llu"
			       " bytes not recorded in flows\n", PL_NAME(a[i].ifname),
			       used < st.meta.flows_max ? "was full" : "full", used,
			       st.meta.flows_max, lost_pk, lost_by);
		} else if (lost_pk) {
			printf("%s: %llu packets, %llu bytes not recorded in flows (their records "
			       "were removed by stats --reset)\n", PL_NAME(a[i].ifname), lost_pk, lost_by);
		}
		pl_state_close(&st);
	}
	nrows = sel.n;
	if (nrows > 1)
		pl_qsort(sel.rows, nrows, sizeof(*sel.rows), cmp_rows);
	for (i = 0; i < nrows; i++) {
		struct row *r = &sel.rows[i];

		if (sort_key != SORT_RATE)
			r->rate = pl_flow_rate(&r->f.val);
		if (sort_key != SORT_RETRANS)
			r->retrans = flow_retrans(cfds[r->att], a[r->att].netns, &r->f.key);
		if (sort_key != SORT_DROPS)
			r->drops = flow_drops(dfds[r->att], a[r->att].netns, &r->f.key);
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_key(&w, "flows");
		jw_arr_open(&w);
		for (i = 0; i < nrows; i++) {
			const struct row *r = &sel.rows[i];
			const struct pl_tcp_state *t;
			struct pl_tcp_state st;
			int half = 0;

			if (!tcp) {
				pl_json_flow(&w, a[r->att].ifname, &r->f, r->rate, r->retrans, r->drops);
				continue;
			}
			t = flow_tcp(tfds[r->att], &r->f.key, &st, &half);
			pl_json_flow_tcp(&w, a[r->att].ifname, &r->f, r->rate, r->retrans, r->drops, t,
					 half);
		}
		jw_arr_close(&w);
		pl_view_errs_end(&errs, &w);
		jw_obj_close(&w);
		jw_end(&w);
	} else {
		pl_view_errs_end(&errs, &w);
		printf("%-15s %-3s %-3s %4s %-11s %-45s %-45s %10s %12s %-6s %8s%s%s%s\n", "IFACE", "HK",
		       "DIR", "VLAN", "PROTO", "SOURCE", "DESTINATION", "PACKETS", "BYTES", "FLAGS",
		       "SECS", rtx ? " RETRANS" : "", drops ? "   DROPS" : "",
		       tcp ? "  RTT_SRV  RTT_CLI  SRTT_MS   RETX  REORD  ZWIN  RST" : "");
		for (i = 0; i < nrows; i++)
			plain_row(&sel.rows[i], a[sel.rows[i].att].ifname, rtx, drops,
				  tcp ? tfds[sel.rows[i].att] : -1);
	}
out:
	for (i = 0; cfds && dfds && i < n; i++) {
		if (cfds[i] >= 0)
			close(cfds[i]);
		if (dfds[i] >= 0)
			close(dfds[i]);
		if (tfds && tfds[i] >= 0)
			close(tfds[i]);
	}
	free(cfds);
	free(dfds);
	free(tfds);
	free(sel.rows);
	free(a);
	return rc;
}

static const struct pl_choice sort_keys[] = {
	{ "bytes", SORT_BYTES, false }, { "packets", SORT_PACKETS, false }, { "rate", SORT_RATE, false },
	{ "retrans", SORT_RETRANS, false }, { "drops", SORT_DROPS, false }, { "rtt", SORT_RTT, false },
	{ NULL },
};

static const struct pl_opt flows_opts[] = {
	{ .name = "top", .type = PL_OPT_UINT, PL_FIELD(struct flows_cfg, top), .min = 1,
	  .max = UINT32_MAX, .arg = "N",
	  .help = "only the first N flows (default: all)" },
	{ .name = "sort", .type = PL_OPT_CHOICE, PL_FIELD(struct flows_cfg, sort), .choices = sort_keys,
	  .arg = "KEY",
	  .help = "bytes (default), packets, rate (bytes per second over the flow's lifetime, at "
		  "least one second) or retrans (TCP segments retransmitted on the flow's "
		  "connection: attach --probes tcp) or drops (its packets the kernel dropped: "
		  "attach --probes drops) or rtt (smoothed RTT from TCP timestamps, else the "
		  "handshake's: attach --tcp-passive)" },
	{ NULL },
};

const struct pl_cmd pl_cmd_flows = {
	.name = "flows", .args = "[DEV]", .opts = flows_opts, .fn = do_flows,
	.cfg_size = sizeof(struct flows_cfg), .max_args = 1,
	.about = "Flows (interface, hook, direction, VLAN, protocol, addresses, ports) with\n"
		 "packets, bytes, TCP flags and first/last seen, largest first. Non-IP frames\n"
		 "form one flow per ethertype; ICMP type/code stand in for ports.\n"
		 "With attach --tcp-passive, TCP flows add their connection's handshake RTT\n"
		 "(RTT_SRV: SYN to SYN-ACK, the server's side of this host; RTT_CLI: SYN-ACK\n"
		 "to ACK, the client's side), the smoothed RTT from timestamps of this\n"
		 "direction (from here to the destination and back), and its retransmitted,\n"
		 "out-of-order, zero-window and RST segments.\n",
};
