// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens tcp retrans|rtt|connlat: TCP retransmits, RTT and connect latency
 * from tracepoints (probes/), for the lifetime of the command, like bcc's
 * tcpretrans, tcprtt and tcpconnlat.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pktlens/array.h>
#include <pktlens/clock.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/json.h"
#include "../export/report.h"
#include "../probes/tcp.h"

static const char *const tcp_states[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};
static const char *const rtx_kinds[] = { "data", "syn", "synack" };

static const char *state_name(__u32 s)
{
	return s < sizeof(tcp_states) / sizeof(tcp_states[0]) ? tcp_states[s] : "?";
}

/* "198.18.0.1:80" or "[2001:db8::1]:80" */
static const char *endpoint(const __u8 addr[16], __u16 port, char *buf, size_t len)
{
	char a[PL_ADDR_STRLEN];
	bool v4 = addr[10] == 0xff && addr[11] == 0xff && !addr[0] && !addr[8];

	pl_fmt_addr(addr, a, sizeof(a));
	snprintf(buf, len, v4 ? "%s:%u" : "[%s]:%u", a, port);
	return buf;
}

/* Retransmits per connection, for the summary. */
struct conn {
	struct pl_tcp_tuple t;
	uint64_t events, segs;
};

struct run {
	const char *verb;
	struct jw w;
	struct conn *conns;
	size_t nconns, cap;
	uint64_t events;
	int err;
};

static void count_conn(struct run *r, const struct pl_tcp_event *e)
{
	struct conn *c;

	for (size_t i = 0; i < r->nconns; i++)
		if (!memcmp(&r->conns[i].t, &e->t, sizeof(e->t))) {
			r->conns[i].events++;
			r->conns[i].segs += e->segs;
			return;
		}
	c = pl_grown(r->conns, &r->cap, r->nconns, sizeof(*c), 64);
	if (!c) {
		r->err = -ENOMEM;
		return;
	}
	r->conns = c;
	r->conns[r->nconns++] = (struct conn){ e->t, 1, e->segs };
}

static void json_tuple(struct jw *w, const struct pl_tcp_tuple *t)
{
	char a[PL_ADDR_STRLEN];

	pl_json_netns(w, t->netns);
	jw_str_field(w, "laddr", pl_fmt_addr(t->laddr, a, sizeof(a)));
	jw_u64_field(w, "lport", t->lport);
	jw_str_field(w, "raddr", pl_fmt_addr(t->raddr, a, sizeof(a)));
	jw_u64_field(w, "rport", t->rport);
}

static int on_event(void *ctx, const struct pl_tcp_event *e)
{
	struct run *r = ctx;
	char l[64], rm[64], tm[16], ns[300];
	time_t now = time(NULL);
	struct tm lt;

	r->events++;
	if (e->type == PL_TCP_EV_RETRANS)
		count_conn(r, e);
	if (pl_g.json) {
		jw_obj_open(&r->w);
		jw_str_field(&r->w, "event", e->type == PL_TCP_EV_RETRANS ? "retransmit" :
					     e->type == PL_TCP_EV_CLOSE ? "close" : "connect");
		jw_u64_field(&r->w, "ts_ns", e->ts_ns);
		json_tuple(&r->w, &e->t);
		if (e->type == PL_TCP_EV_RETRANS) {
			jw_str_field(&r->w, "state", state_name(e->state));
			jw_str_field(&r->w, "kind", rtx_kinds[e->kind < 3 ? e->kind : 0]);
			jw_u64_field(&r->w, "segs", e->segs);
			jw_key(&r->w, "error");
			if (e->err)
				jw_str(&r->w, strerrorname_np(-e->err) ?: "?");
			else
				jw_null(&r->w);
		} else if (e->type == PL_TCP_EV_CLOSE) {
			jw_u64_field(&r->w, "tx_bytes", e->tx_bytes);
			jw_u64_field(&r->w, "rx_bytes", e->rx_bytes);
			jw_fixed_field(&r->w, "lifetime_ms", e->lat_ns / 1e6, 3);
		} else {
			jw_fixed_field(&r->w, "latency_ms", e->lat_ns / 1e6, 3);
		}
		jw_obj_close(&r->w);
		jw_end(&r->w);
		return 0;
	}
	localtime_r(&now, &lt);
	strftime(tm, sizeof(tm), "%H:%M:%S", &lt);
	endpoint(e->t.laddr, e->t.lport, l, sizeof(l));
	endpoint(e->t.raddr, e->t.rport, rm, sizeof(rm));
	pl_netns_fmt(e->t.netns, 0, false, ns, sizeof(ns));
	if (e->type == PL_TCP_EV_RETRANS)
		printf("%-8s %-12s %-30s -> %-30s %-12s %-6s %u%s%s%s\n", tm,
		       ns, l, rm, state_name(e->state),
		       rtx_kinds[e->kind < 3 ? e->kind : 0], e->segs,
		       e->err ? " (not sent: " : "", e->err ? strerror(-e->err) : "",
		       e->err ? ")" : "");
	else if (e->type == PL_TCP_EV_CLOSE)
		printf("%-8s %-12s %-30s -> %-30s %10.1f %10.1f %10.3f\n", tm,
		       ns, l, rm, e->tx_bytes / 1024.0,
		       e->rx_bytes / 1024.0, e->lat_ns / 1e6);
	else
		printf("%-8s %-12s %-30s -> %-30s %10.3f\n", tm, ns, l, rm, e->lat_ns / 1e6);
	return 0;
}

static void print_hist(const struct pl_tcp_hist *h, const char *indent)
{
	uint64_t max = 0;
	int last = -1;

	for (int i = 0; i < PL_TCP_HIST_SLOTS; i++) {
		max = h->slot[i] > max ? h->slot[i] : max;
		if (h->slot[i])
			last = i;
	}
	printf("%s%-24s : %-10s distribution\n", indent, "usecs", "count");
	for (int i = 0; i <= last; i++) {
		char range[48];
		int n = max ? (int)((h->slot[i] * 40 + max - 1) / max) : 0;

		snprintf(range, sizeof(range), "%llu -> %llu", i ? 1ULL << i : 0ULL,
			 (2ULL << i) - 1);
		printf("%s%-24s : %-10llu |%.*s%*s|\n", indent, range,
		       (unsigned long long)h->slot[i], n, "****************************************",
		       40 - n, "");
	}
}

static void print_pct(const struct pl_tcp_hist *h, const char *what)
{
	printf("%s: %llu samples, avg %.0f us, p50 %.0f us, p90 %.0f us, p99 %.0f us, max %llu us\n",
	       what, (unsigned long long)h->count, h->count ? (double)h->sum_us / h->count : 0.0,
	       pl_hist_percentile(h, 50), pl_hist_percentile(h, 90), pl_hist_percentile(h, 99),
	       (unsigned long long)h->max_us);
}

static void json_hist(struct jw *w, const struct pl_tcp_hist *h)
{
	int last = -1;

	for (int i = 0; i < PL_TCP_HIST_SLOTS; i++)
		if (h->slot[i])
			last = i;
	jw_u64_field(w, "count", h->count);
	jw_fixed_field(w, "avg_us", h->count ? (double)h->sum_us / h->count : 0.0, 1);
	jw_fixed_field(w, "p50_us", pl_hist_percentile(h, 50), 1);
	jw_fixed_field(w, "p90_us", pl_hist_percentile(h, 90), 1);
	jw_fixed_field(w, "p99_us", pl_hist_percentile(h, 99), 1);
	jw_u64_field(w, "max_us", h->max_us);
	jw_key(w, "buckets");
	jw_arr_open(w);
	for (int i = 0; i <= last; i++) {
		jw_obj_open(w);
		jw_u64_field(w, "lo_us", i ? 1ULL << i : 0);
		jw_u64_field(w, "hi_us", (2ULL << i) - 1);
		jw_u64_field(w, "count", h->slot[i]);
		jw_obj_close(w);
	}
	jw_arr_close(w);
}

static int conn_cmp(const void *a, const void *b)
{
	const struct conn *x = a, *y = b;

	return x->segs != y->segs ? (x->segs < y->segs ? 1 : -1) : 0;
}

static int tuple_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct conn *)a)->t, &((const struct conn *)b)->t,
		      sizeof(struct pl_tcp_tuple));
}

/* the summary's rows before the probe's counts are merged in, sorted by tuple */
struct merge {
	struct run *r;
	size_t sorted;
};

/*
 * A connection as the probe counted it: every retransmit, also those whose
 * events the ring had no room for (a reader that fell behind). Its rows'
 * counts are the larger of the two: the events keep a connection the map
 * evicted (an LRU), or one whose first count the map missed.
 */
static int merge_conn(void *ctx, const struct pl_tcp_tuple *t, const struct pl_tcp_conn *c)
{
	struct merge *m = ctx;
	struct run *r = m->r;
	struct conn key = { .t = *t }, *have;

	if (!c->segs)
		return 0;
	have = pl_bsearch(&key, r->conns, m->sorted, sizeof(*r->conns), tuple_cmp);
	if (!have) {
		have = pl_grown(r->conns, &r->cap, r->nconns, sizeof(*have), 64);
		if (!have)
			return -ENOMEM;
		r->conns = have;
		have = &r->conns[r->nconns++];
		*have = key;
	}
	have->events = c->retrans > have->events ? c->retrans : have->events;
	have->segs = c->segs > have->segs ? c->segs : have->segs;
	return 0;
}

static int retrans_summary(struct run *r, const struct pl_tcp *t, uint64_t lost)
{
	struct merge m = { .r = r, .sorted = r->nconns };
	char l[64], rm[64], ns[300];
	int err;

	pl_qsort(r->conns, r->nconns, sizeof(*r->conns), tuple_cmp);
	err = pl_tcp_conns(t, merge_conn, &m);
	if (err)	/* the events' counts alone, and exit 1 */
		pl_err("tcp retrans: cannot read the connections' counts: %s", strerror(-err));
	pl_qsort(r->conns, r->nconns, sizeof(*r->conns), conn_cmp);
	if (pl_g.json) {
		jw_obj_open(&r->w);
		jw_key(&r->w, "connections");
		jw_arr_open(&r->w);
		for (size_t i = 0; i < r->nconns; i++) {
			jw_obj_open(&r->w);
			json_tuple(&r->w, &r->conns[i].t);
			jw_u64_field(&r->w, "retransmits", r->conns[i].events);
			jw_u64_field(&r->w, "segs", r->conns[i].segs);
			jw_obj_close(&r->w);
		}
		jw_arr_close(&r->w);
		jw_u64_field(&r->w, "lost", lost);
		jw_obj_close(&r->w);
		jw_end(&r->w);
		return err ? PL_EXIT_FAIL : PL_EXIT_OK;
	}
	printf("\n%-12s %-30s    %-30s %11s %8s\n", "NETNS", "LOCAL", "REMOTE", "RETRANSMITS",
	       "SEGS");
	for (size_t i = 0; i < r->nconns; i++)
		printf("%-12s %-30s -> %-30s %11llu %8llu\n",
		       pl_netns_fmt(r->conns[i].t.netns, 0, false, ns, sizeof(ns)),
		       endpoint(r->conns[i].t.laddr, r->conns[i].t.lport, l, sizeof(l)),
		       endpoint(r->conns[i].t.raddr, r->conns[i].t.rport, rm, sizeof(rm)),
		       (unsigned long long)r->conns[i].events, (unsigned long long)r->conns[i].segs);
	if (lost)
		printf("%llu events lost (ring full)\n", (unsigned long long)lost);
	return err ? PL_EXIT_FAIL : PL_EXIT_OK;
}

static int rtt_report(const struct pl_tcp *t, __u32 by, bool hist)
{
	struct pl_tcp_hist_key *keys = NULL;
	struct pl_tcp_hist *hs = NULL;
	struct jw w;
	size_t n = 0;
	int err = pl_tcp_rtt(t, &keys, &hs, &n);

	if (err) {
		pl_err("tcp rtt: cannot read the histograms: %s", strerror(-err));
		return PL_EXIT_FAIL;
	}
	jw_init(&w, stdout, pl_g.pretty);
	if (pl_g.json) {
		jw_obj_open(&w);
		jw_key(&w, "rtt");
		jw_arr_open(&w);
	}
	for (size_t i = 0; i < n; i++) {
		char a[PL_ADDR_STRLEN], what[400] = "rtt", ns[300];

		if (by)
			pl_netns_fmt(keys[i].netns, 0, false, ns, sizeof(ns));
		if (by == PL_TCP_BY_RADDR)
			snprintf(what, sizeof(what), "netns %s raddr %s", ns,
				 pl_fmt_addr(keys[i].raddr, a, sizeof(a)));
		else if (by == PL_TCP_BY_RPORT)
			snprintf(what, sizeof(what), "netns %s rport %u", ns, keys[i].rport);
		if (pl_g.json) {
			jw_obj_open(&w);
			if (by) {
				pl_json_netns(&w, keys[i].netns);
				if (by == PL_TCP_BY_RADDR)
					jw_str_field(&w, "raddr", a);
				else
					jw_u64_field(&w, "rport", keys[i].rport);
			}
			json_hist(&w, &hs[i]);
			jw_obj_close(&w);
			continue;
		}
		if (i)
			printf("\n");
		print_pct(&hs[i], what);
		if (hist)
			print_hist(&hs[i], "  ");
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
	} else if (!n) {
		printf("rtt: no samples\n");
	}
	free(keys);
	free(hs);
	return PL_EXIT_OK;
}

struct tcp_cfg {
	uint64_t duration, netns;
	const char *by, *min_ms;
	int hist;
};

static int tcp_run(const struct tcp_cfg *c, const char *verb)
{
	struct pl_tcp_cfg cfg = { .netns = c->netns };
	struct run r = { .verb = verb };
	struct pl_tcp *t = NULL;
	uint64_t duration = c->duration, u;
	char until[64];
	unsigned progs;
	bool hist = c->hist, life = false;
	char why[256];
	int err, ret = PL_EXIT_OK;
	uint64_t end_ns = 0;

	if (!strcmp(verb, "retrans"))
		progs = PL_TCP_P_RETRANS;
	else if (!strcmp(verb, "rtt"))
		progs = PL_TCP_P_RTT;
	else if (!strcmp(verb, "connlat"))
		progs = PL_TCP_P_CONNLAT;
	else {
		progs = PL_TCP_P_CONNLAT;	/* life: the same tracepoint, close events only */
		life = true;
		cfg.flags |= PL_TCP_CFG_LIFE;
		cfg.min_lat_ns = UINT64_MAX;
	}
	if (c->by && progs != PL_TCP_P_RTT) {
		pl_err("tcp %s: --by: only tcp rtt groups by raddr or rport", verb);
		return PL_EXIT_USAGE;
	}
	if (c->by && strcmp(c->by, "raddr") && strcmp(c->by, "rport")) {
		pl_err("tcp %s: --by '%s': not raddr or rport", verb, c->by);
		return PL_EXIT_USAGE;
	}
	if (c->by)
		cfg.rtt_by = strcmp(c->by, "raddr") ? PL_TCP_BY_RPORT : PL_TCP_BY_RADDR;
	if (hist && progs != PL_TCP_P_RTT && (progs != PL_TCP_P_CONNLAT || life)) {
		pl_err("tcp %s: --hist: only tcp rtt and tcp connlat draw histograms", verb);
		return PL_EXIT_USAGE;
	}
	if (c->min_ms && (progs != PL_TCP_P_CONNLAT || life)) {
		pl_err("tcp %s: --min-ms: only tcp connlat leaves out faster connections", verb);
		return PL_EXIT_USAGE;
	}
	if (c->min_ms) {
		if (pl_parse_u64(c->min_ms, 0, 3600000, &u)) {
			pl_err("tcp %s: --min-ms '%s': connlat takes 0..3600000", verb, c->min_ms);
			return PL_EXIT_USAGE;
		}
		cfg.min_lat_ns = u * 1000000ULL;
	}
	/* -n NETNS: that namespace's connections alone, as drops and the exporters */
	ret = pl_need_caps("tcp", PL_NEED_BPF | PL_NEED_PERFMON) ?: pl_probe_netns("tcp", &cfg.netns);
	if (ret)
		return ret;
	jw_init(&r.w, stdout, false);
	pl_catch_stop();	/* a stop once the probes are attached ends with the summary (as drops) */
	err = pl_tcp_open(progs, &cfg, on_event, &r, &t, why, sizeof(why));
	if (err) {
		pl_err("tcp %s: %s", verb, why);
		return PL_EXIT_FAIL;
	}
	pl_info("tcp %s: tracing%s, %s", verb, cfg.netns ? " one namespace" : "",
		pl_until(duration, until, sizeof(until)));
	if (!pl_g.json && progs == PL_TCP_P_RETRANS)
		printf("%-8s %-12s %-30s    %-30s %-12s %-6s %s\n", "TIME", "NETNS", "LOCAL", "REMOTE",
		       "STATE", "KIND", "SEGS");
	else if (!pl_g.json && life)
		printf("%-8s %-12s %-30s    %-30s %10s %10s %10s\n", "TIME", "NETNS", "LOCAL", "REMOTE",
		       "TX_KB", "RX_KB", "MS");
	else if (!pl_g.json && progs == PL_TCP_P_CONNLAT)
		printf("%-8s %-12s %-30s    %-30s %10s\n", "TIME", "NETNS", "LOCAL", "REMOTE", "LAT(ms)");
	/* the whole --duration from now, not to the wall clock's next whole second */
	end_ns = pl_deadline_in(duration);
	while (!pl_stop && !r.err && !pl_deadline_passed(end_ns)) {
		err = pl_tcp_poll(t, pl_deadline_ms(end_ns, 100));
		if (err < 0) {
			pl_err("tcp %s: reading events: %s", verb, strerror(-err));
			ret = PL_EXIT_FAIL;
			break;
		}
	}
	pl_tcp_poll(t, 0);	/* what is left */
	/* the events are JSON lines; the summary is pretty-printed under -p, as rtt's and drops' */
	jw_init(&r.w, stdout, pl_g.pretty);
	if (life) {
		if (pl_g.json) {
			jw_obj_open(&r.w);
			jw_u64_field(&r.w, "connections", r.events);
			jw_u64_field(&r.w, "lost", pl_tcp_lost(t));
			jw_obj_close(&r.w);
			jw_end(&r.w);
		} else {
			printf("\n%llu connections ended\n", (unsigned long long)r.events);
		}
	} else if (progs == PL_TCP_P_RETRANS) {
		ret = retrans_summary(&r, t, pl_tcp_lost(t)) ?: ret;
	} else if (progs == PL_TCP_P_RTT) {
		ret = rtt_report(t, cfg.rtt_by, hist) ?: ret;
	} else {
		struct pl_tcp_hist h;

		if (pl_tcp_connlat(t, &h)) {
			pl_err("tcp connlat: cannot read the histogram");
			ret = PL_EXIT_FAIL;
		} else if (pl_g.json) {
			jw_obj_open(&r.w);
			jw_key(&r.w, "connlat");
			jw_obj_open(&r.w);
			json_hist(&r.w, &h);
			jw_obj_close(&r.w);
			jw_u64_field(&r.w, "lost", pl_tcp_lost(t));
			jw_obj_close(&r.w);
			jw_end(&r.w);
		} else {
			printf("\n");
			print_pct(&h, "connlat");
			if (hist)
				print_hist(&h, "  ");
		}
	}
	pl_tcp_close(t);
	free(r.conns);
	return ret;
}

static const struct pl_opt tcp_opts[] = {
	{ .name = "duration", .type = PL_OPT_DURATION, PL_FIELD(struct tcp_cfg, duration),
	  .arg = "SECS", .help = "stop after SECS seconds (default: at Ctrl-C)" },
	{ .name = "netns", .type = PL_OPT_PARSE, PL_FIELD(struct tcp_cfg, netns),
	  .arg = "NAME|PATH|PID", .parse = pl_netns_opt,
	  .help = "only this namespace (a name in /run/netns, a path or a process's PID)" },
	{ .name = "hist", .type = PL_OPT_FLAG, PL_FIELD(struct tcp_cfg, hist), .val = 1,
	  .only = "rtt connlat", .help = "rtt, connlat: a log2 histogram (us) too" },
	{ .name = "by", .type = PL_OPT_STRING, PL_FIELD(struct tcp_cfg, by), .arg = "raddr|rport",
	  .only = "rtt", .help = "rtt: one histogram per remote address or port" },
	{ .name = "min-ms", .type = PL_OPT_STRING, PL_FIELD(struct tcp_cfg, min_ms), .arg = "MS",
	  .only = "connlat", .help = "connlat: print connections of MS or more (0..3600000)" },
	{ NULL },
};

#define TCP_VERB(verb, text)									\
	static int do_##verb(void *cfg, int argc, char **argv)					\
	{											\
		(void)argc, (void)argv;								\
		return tcp_run(cfg, #verb);							\
	}											\
	static const struct pl_cmd tcp_##verb = {						\
		.name = #verb, .opts = tcp_opts, .fn = do_##verb, .about = text,		\
		.cfg_size = sizeof(struct tcp_cfg), .max_args = 0, .many = "unexpected '%s'",	\
	}

TCP_VERB(retrans, "retrans   one line per retransmit (time, netns, local -> remote, state, data/syn/\n"
		  "          synack, segments), then a summary per connection\n");
TCP_VERB(rtt, "rtt       smoothed RTT of every received segment: percentiles\n");
TCP_VERB(connlat, "connlat   SYN_SENT to ESTABLISHED: one line per connection, percentiles at the\n"
		  "          end\n");
TCP_VERB(life, "life      one line per connection that ends: lifetime and bytes sent (acked)\n"
	       "          and received, like tcplife\n");

const struct pl_cmd pl_cmd_tcp = {
	.name = "tcp", .flags = PL_CMD_NAME_SUBS,
	.subs = (const struct pl_cmd *const[]){ &tcp_retrans, &tcp_rtt, &tcp_connlat, &tcp_life, NULL },
	.about = "TCP from tracepoints, in every network namespace (or --netns's; with -n NETNS\n"
		 "and no --netns, NETNS's alone), until Ctrl-C or --duration (-j: one object per\n"
		 "event, then a summary object):\n",
};
