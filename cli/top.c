// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens top [DEV]: a live view, redrawn in place every --interval seconds
 * (ncurses only sends what changed, so nothing flickers): per interface,
 * hook and direction the packet and bit rates and drops, the top flows by
 * rate over the last interval, and the packet-size mix. q quits. Fits 80x24.
 */
#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <time.h>
#include <unistd.h>
#include <pktlens/array.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/json.h"
#include "../export/report.h"

#define JSON_FLOWS 10	/* -j: the flows with the most bytes in the interval */
_Static_assert(JSON_FLOWS == 10, "top's help says 10 flows");

struct flow_rate {
	struct pl_flow f;
	double bps;
};

/* One refresh's readings. */
struct snap {
	struct pl_attachment *a;
	size_t n;
	struct pl_stats (*s)[PL_SLOT_MAX];	/* since the last stats --reset, as stats shows */
	struct pl_stats (*base)[PL_SLOT_MAX];	/* that reset's base: s + base never goes back */
	__u32 *stats_id;	/* the stats map's id (0: unread): another map, another attachment */
	struct pl_flow *flows;	/* all attachments' flows, sorted by key */
	size_t nflows;
	double t;		/* CLOCK_MONOTONIC seconds */
	int tfd;		/* tcp_state of an attach --tcp-passive, -1 (0 before the first): none */
};

static int key_cmp(const void *x, const void *y)
{
	return memcmp(&((const struct pl_flow *)x)->key, &((const struct pl_flow *)y)->key,
		      sizeof(struct pl_flow_key));
}

static int rate_cmp(const void *x, const void *y)
{
	double a = ((const struct flow_rate *)x)->bps, b = ((const struct flow_rate *)y)->bps;

	return a < b ? 1 : a > b ? -1 : 0;
}

/* Min-heap on bps: the root is the slowest of those kept. */
static void sift_down(struct flow_rate *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct flow_rate t;

		if (l < n && h[l].bps < h[m].bps)
			m = l;
		if (r < n && h[r].bps < h[m].bps)
			m = r;
		if (m == i)
			return;
		t = h[i], h[i] = h[m], h[m] = t;
		i = m;
	}
}

/*
 * Put the @k fastest of @fr[0..n) first, fastest first, in place: a
 * bounded heap instead of sorting every flow when only a screenful shows.
 */
static size_t top_k(struct flow_rate *fr, size_t n, size_t k)
{
	if (k > n)
		k = n;
	for (size_t i = k / 2; i-- > 0;)
		sift_down(fr, k, i);
	for (size_t i = k; i < n; i++) {
		if (fr[i].bps <= fr[0].bps)
			continue;
		fr[0] = fr[i];
		sift_down(fr, k, 0);
	}
	pl_qsort(fr, k, sizeof(*fr), rate_cmp);
	return k;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void snap_free(struct snap *s)
{
	if (s->tfd > 0)
		close(s->tfd);
	free(s->a);
	free(s->s);
	free(s->base);
	free(s->stats_id);
	free(s->flows);
	memset(s, 0, sizeof(*s));
}

static int snap_take(const char *dev, struct snap *s)
{
	int err = pl_attachments_here(dev, &s->a, &s->n);

	s->tfd = -1;
	if (err)
		return err;
	s->s = calloc(s->n ? s->n : 1, sizeof(*s->s));
	s->base = calloc(s->n ? s->n : 1, sizeof(*s->base));
	s->stats_id = calloc(s->n ? s->n : 1, sizeof(*s->stats_id));
	if (!s->s || !s->base || !s->stats_id)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		struct pl_state st;
		struct pl_flow *fl = NULL, *grown;
		size_t nf = 0;

		if (pl_state_open(s->a[i].dir, &st))
			continue;	/* detached meanwhile: shows as zero */
		if (!pl_state_stats(&st, s->s[i]))
			s->stats_id[i] = st.stats_id;
		memcpy(s->base[i], st.base, sizeof(s->base[i]));
		/* the namespace's analysing attachments share one connection table */
		if (s->tfd < 0 && st.meta.tcp_passive)
			s->tfd = pl_pin_open(s->a[i].dir, PL_MAP_TCP_STATE);
		/* each arriving packet's flow once: XDP's where tc ingress counts it again */
		if (!pl_state_flows(&st, &fl, &nf))
			nf = pl_flows_first_hook_only(&st.meta, fl, nf);
		if (nf) {
			grown = realloc(s->flows, (s->nflows + nf) * sizeof(*grown));
			if (grown) {
				s->flows = grown;
				memcpy(s->flows + s->nflows, fl, nf * sizeof(*fl));
				s->nflows += nf;
			}
		}
		free(fl);
		pl_state_close(&st);
	}
	pl_qsort(s->flows, s->nflows, sizeof(*s->flows), key_cmp);
	s->t = now_s();
	return 0;
}

/* @a's index in @p if it is the same attachment there (the same stats map), else -1 */
static long prev_att(const struct snap *p, const struct snap *cur, size_t i)
{
	const struct pl_attachment *a = &cur->a[i];

	for (size_t j = 0; j < p->n; j++)
		if (p->a[j].netns == a->netns && !strcmp(p->a[j].ifname, a->ifname))
			return p->stats_id[j] && p->stats_id[j] == cur->stats_id[i] ? (long)j : -1;
	return -1;
}


static void fmt_rate(char *buf, size_t len, double v, const char *unit)
{
	const char *pfx[] = { "", "k", "M", "G", "T" };
	int i = 0;

	while (v >= 1000 && i < 4)
		v /= 1000, i++;
	snprintf(buf, len, "%.1f%s%s", v, pfx[i], unit);
}

/* One hook of one attachment over the interval. */
struct slot_rate {
	size_t att;		/* index in snap.a */
	int slot;
	__u64 packets, bytes;	/* its totals now */
	double pps, bps, drops_ps;
};

/* What a frame shows, for the screen and -j alike. */
struct frame {
	struct slot_rate *rows;
	size_t nrows;
	struct flow_rate *flows;	/* the top ones by bytes in the interval, most first */
	size_t nflows;
	__u64 rmon[PL_RMON_MAX];	/* packets by size in the interval */
	double secs;			/* the interval */
};

static void frame_free(struct frame *f)
{
	free(f->rows);
	free(f->flows);
}

/*
 * The interval from @prev to @cur, @secs long: per hook rates, the @kflows
 * flows with the most bytes, the size mix. Rates are what the kernel counted
 * in the interval, a `stats --reset` in it or not; an attachment new in the
 * interval (detach and attach too: other maps) counts from zero, so does a
 * flow new or counted afresh (pl_flow_val_afresh()).
 */
static int frame_take(const struct snap *cur, const struct snap *prev, double secs, size_t kflows,
		      struct frame *f)
{
	memset(f, 0, sizeof(*f));
	f->secs = secs;
	f->rows = calloc(cur->n * PL_SLOT_MAX + 1, sizeof(*f->rows));
	f->flows = calloc(cur->nflows + 1, sizeof(*f->flows));
	if (!f->rows || !f->flows) {
		frame_free(f);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cur->n; i++) {
		long pi = prev_att(prev, cur, i);

		for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
			const struct pl_stats *c = &cur->s[i][sl], *cb = &cur->base[i][sl];
			const struct pl_stats *p = pi >= 0 ? &prev->s[pi][sl] : NULL;
			const struct pl_stats *pb = pi >= 0 ? &prev->base[pi][sl] : NULL;
			struct slot_rate *r = &f->rows[f->nrows];
			struct pl_stats d;
			__u64 pk, by;

			if (!pl_slot_attached(&cur->a[i].meta, sl))
				continue;
			pl_stats_totals(c, &r->packets, &r->bytes);
			pl_stats_since(c, cb, p, pb, &d);
			pl_stats_totals(&d, &pk, &by);
			/* an arriving packet once: tc ingress also counts what XDP passed */
			for (int k = 0; k < PL_RMON_MAX; k++)
				f->rmon[k] += sl == PL_SLOT_TC_IN &&
					      cur->a[i].meta.xdp_mode != PL_XDP_NONE ? 0 : d.rmon[k];
			r->att = i;
			r->slot = sl;
			r->pps = (double)pk / secs;
			r->bps = (double)by * 8 / secs;
			r->drops_ps = (double)d.pkts[PL_VERDICT_DROP] / secs;
			f->nrows++;
		}
	}
	for (size_t i = 0; i < cur->nflows; i++) {
		const struct pl_flow *now = &cur->flows[i];
		const struct pl_flow *old = pl_bsearch(now, prev->flows, prev->nflows,
						    sizeof(*prev->flows), key_cmp);
		struct flow_rate *r = &f->flows[f->nflows];

		if (old && pl_flow_val_afresh(&old->val, &now->val))
			old = NULL;	/* counted afresh meanwhile (stats --reset, detach and attach) */
		if (now->val.bytes == (old ? old->val.bytes : 0))
			continue;
		r->f = *now;
		r->f.val.packets -= old ? old->val.packets : 0;
		r->f.val.bytes -= old ? old->val.bytes : 0;
		r->bps = (double)r->f.val.bytes * 8 / secs;
		f->nflows++;
	}
	f->nflows = top_k(f->flows, f->nflows, kflows);
	return 0;
}

/*
 * Line @row from column 0, cut at the screen's width. Not mvprintw(): its
 * buffer is the screen's size, (LINES + 1) * (COLS + 1), and a line longer
 * than a small screen (5x10) overran it.
 */
__attribute__((format(printf, 2, 3))) static void put_line(int row, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (row >= LINES || COLS <= 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mvaddnstr(row, 0, buf, COLS);
}

/* @f: the frame over @secs; @every: the redraw interval asked for. */
static void draw(const struct snap *cur, const struct frame *f, uint32_t every)
{
	int row = 0, rows = LINES, cols = COLS, aw, amin;
	__u64 rmax = 0;

	erase();
	attron(A_BOLD);
	put_line(row++, "pktlens top - %zu interface%s, every %u s - q quits", cur->n,
		 cur->n == 1 ? "" : "s", every);
	attroff(A_BOLD);
	/* IFNAMSIZ - 1 columns: an interface's whole name (two names may differ in the last) */
	put_line(row++, "%-15s %-3s %-3s %11s %11s %11s", "IFACE", "HK", "DIR", "PPS", "BPS",
		 "DROP/S");
	for (size_t i = 0; i < f->nrows && row < rows / 2; i++) {
		const struct slot_rate *r = &f->rows[i];
		char a[16], b[16], c[16];

		fmt_rate(a, sizeof(a), r->pps, "");
		fmt_rate(b, sizeof(b), r->bps, "b");
		fmt_rate(c, sizeof(c), r->drops_ps, "");
		put_line(row++, "%-15.15s %-3s %-3s %11s %11s %11s",
			 PL_NAME(cur->a[r->att].ifname), pl_slot_hook[r->slot], pl_slot_dir[r->slot],
			 a, b, c);
	}
	/* top flows by bytes over the interval, as many as the screen has rows for */
	row++;
	/* the address columns share what the others leave: 29 each in 80 columns, 21 with the RTT
	 * and retransmit columns; a wider terminal shows up to a whole [IPv6]:port (47) */
	amin = cur->tfd >= 0 ? 21 : 29;
	aw = (cols - 22 - (cur->tfd >= 0 ? 16 : 0)) / 2;
	if (aw < amin)
		aw = amin;
	if (aw > 47)
		aw = 47;
	put_line(row++, "%-6s %-3s %-*s %-*s %9s%s", "PROTO", "DIR", aw, "SOURCE", aw,
		 "DESTINATION", "BPS", cur->tfd >= 0 ? "  SRTT_MS   RETX" : "");
	for (size_t i = 0; i < f->nflows && row < rows - PL_RMON_MAX - 2; i++) {
		const struct pl_flow_key *k = &f->flows[i].f.key;
		char src[64], dst[64], p4[16], r[16], tcp[32] = "";
		const char *proto = pl_fmt_l4(k, p4, sizeof(p4));

		pl_fmt_endpoint(k, k->saddr, k->sport, src, sizeof(src));
		pl_fmt_endpoint(k, k->daddr, k->dport, dst, sizeof(dst));
		fmt_rate(r, sizeof(r), f->flows[i].bps, "b");
		/* attach --tcp-passive: the smoothed RTT (else the handshake's) and retransmits */
		if (cur->tfd >= 0) {
			struct pl_tcp_state t;
			int half = 0;

			if (k->l4proto == 6 && !pl_tcp_flow(cur->tfd, k, &t, &half))
				snprintf(tcp, sizeof(tcp), "  %7.2f %6u",
					 pl_tcp_row_rtt(&t, half) / 1000.0, t.h[half & 1].retrans);
			else
				snprintf(tcp, sizeof(tcp), "  %7s %6s", "-", "-");
		}
		put_line(row++, "%-6.6s %-3s %-*.*s %-*.*s %9s%s", *proto ? proto : "l2",
			 k->dir == PL_DIR_IN ? "in" : "out", aw, aw, src, aw, aw, dst, r, tcp);
	}
	/* size mix over the interval */
	for (int k = 0; k < PL_RMON_MAX; k++)
		rmax = f->rmon[k] > rmax ? f->rmon[k] : rmax;
	/* at the bottom; a short terminal shows what fits below the rest, not over it */
	row = rows - PL_RMON_MAX - 1 > row ? rows - PL_RMON_MAX - 1 : row;
	put_line(row++, "%-10s %9s  size mix (last interval)", "BYTES", "PKT/S");
	for (int k = 0; k < PL_RMON_MAX && row < rows; k++) {
		/* a terminal under 24 columns has no room for bars (not 2^32 of them) */
		char rate[16], bar[384];
		__u64 room = cols > 24 ? (__u64)(cols - 24) : 0;
		int w;

		/* bars up to the line's room, scaled alike (one over 400 columns: shorter bars) */
		room = room < sizeof(bar) - 1 ? room : sizeof(bar) - 1;
		w = rmax ? (int)(f->rmon[k] * room / rmax) : 0;
		fmt_rate(rate, sizeof(rate), (double)f->rmon[k] / f->secs, "");
		memset(bar, '#', (size_t)w);
		bar[w] = 0;
		put_line(row++, "%-10s %9s  %s", pl_rmon_names[k], rate, bar);
	}
	refresh();
}

/* The name of the attachment whose interface has @ifindex (flows carry the index only). */
static const char *flow_ifname(const struct snap *cur, __u32 ifindex)
{
	for (size_t i = 0; i < cur->n; i++)
		if (cur->a[i].meta_ok && cur->a[i].meta.ifindex == ifindex)
			return cur->a[i].ifname;
	return NULL;
}

/* -j: what a frame shows, as one JSON object (a line; -p: indented). */
static void json_frame(const struct snap *cur, const struct frame *f)
{
	struct timespec real;
	struct jw w;

	clock_gettime(CLOCK_REALTIME, &real);
	jw_init(&w, stdout, pl_g.pretty);
	jw_obj_open(&w);
	jw_fixed_field(&w, "time", (double)real.tv_sec + real.tv_nsec / 1e9, 6);
	jw_fixed_field(&w, "interval", f->secs, 6);
	jw_key(&w, "interfaces");
	jw_arr_open(&w);
	for (size_t i = 0; i < f->nrows; i++) {
		const struct slot_rate *r = &f->rows[i];

		jw_obj_open(&w);
		jw_name_field(&w, "ifname", cur->a[r->att].ifname);
		pl_json_att_netns(&w, &cur->a[r->att]);
		jw_str_field(&w, "hook", pl_slot_hook[r->slot]);
		jw_str_field(&w, "dir", pl_slot_dir[r->slot]);
		jw_double_field(&w, "pps", r->pps);
		jw_double_field(&w, "bps", r->bps);
		jw_double_field(&w, "drops_ps", r->drops_ps);
		jw_u64_field(&w, "packets", r->packets);
		jw_u64_field(&w, "bytes", r->bytes);
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	/* the flows with the most bytes over the interval, as the screen lists them */
	jw_key(&w, "flows");
	jw_arr_open(&w);
	for (size_t i = 0; i < f->nflows; i++) {
		const struct pl_flow_key *k = &f->flows[i].f.key;
		struct pl_tcp_state t;
		int half = 0;

		jw_obj_open(&w);
		pl_json_flow_key(&w, flow_ifname(cur, k->ifindex), k);
		jw_u64_field(&w, "packets", f->flows[i].f.val.packets);
		jw_u64_field(&w, "bytes", f->flows[i].f.val.bytes);
		jw_double_field(&w, "bps", f->flows[i].bps);
		/* attach --tcp-passive: the smoothed RTT (else the handshake's) and retransmits */
		if (cur->tfd >= 0) {
			bool tcp = k->l4proto == 6 && !pl_tcp_flow(cur->tfd, k, &t, &half);

			jw_key(&w, "srtt_ms");
			if (tcp)
				jw_fixed(&w, pl_tcp_row_rtt(&t, half) / 1000.0, 3);
			else
				jw_null(&w);
			jw_key(&w, "retrans");
			if (tcp)
				jw_u64(&w, t.h[half & 1].retrans);
			else
				jw_null(&w);
		}
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	/* the size mix over the interval: packets per second by RMON bucket */
	jw_key(&w, "sizes");
	jw_obj_open(&w);
	for (int k = 0; k < PL_RMON_MAX; k++)
		jw_double_field(&w, pl_rmon_names[k], (double)f->rmon[k] / f->secs);
	jw_obj_close(&w);
	jw_obj_close(&w);
	jw_end(&w);
}

/* The end of either view: the snapshots freed, @err reported. */
static int top_end(const char *dev, struct snap *prev, struct snap *cur, int err)
{
	snap_free(prev);
	snap_free(cur);
	if (err == -ENOENT && dev)	/* there at the start: pl_select() */
		return pl_detached_error("top", dev);
	if (err) {
		pl_err("top: %s: %s", dev ? dev : "attachments", strerror(-err));
		return PL_EXIT_FAIL;
	}
	return PL_EXIT_OK;
}

/* -j: a JSON object every @interval seconds, until a signal (or the reader goes away). */
static int top_json(const char *dev, uint32_t interval)
{
	struct snap prev = { 0 }, cur = { 0 };
	struct frame f;
	int err;

	pl_catch_stop();
	signal(SIGPIPE, SIG_IGN);
	err = snap_take(dev, &prev);
	while (!err && !pl_stop) {
		for (uint32_t slept = 0; slept < interval * 10 && !pl_stop; slept++)
			usleep(100000);
		if (pl_stop)
			break;
		err = snap_take(dev, &cur);
		if (err)
			break;
		err = frame_take(&cur, &prev, cur.t - prev.t > 0 ? cur.t - prev.t : 1, JSON_FLOWS,
				 &f);
		if (err)
			break;
		json_frame(&cur, &f);
		frame_free(&f);
		snap_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		if (ferror(stdout))
			break;	/* the reader went away */
	}
	return top_end(dev, &prev, &cur, err);
}

struct top_cfg {
	uint32_t interval;
};

static int do_top(void *cfg, int argc, char **argv)
{
	struct snap prev = { 0 }, cur = { 0 };
	const char *dev = argc ? argv[0] : NULL, *term;
	struct frame f;
	uint32_t interval = ((const struct top_cfg *)cfg)->interval;
	SCREEN *scr;
	FILE *tout = NULL;
	int tierr;
	double t0;
	int err, ret;

	ret = pl_need_caps("top", PL_NEED_BPF);
	if (!ret) {
		struct pl_attachment *a = NULL;
		size_t n;

		ret = pl_select("top", dev, &a, &n);	/* says "not attached" before the screen */
		free(a);
	}
	if (ret)
		return ret;
	if (pl_g.json)
		return top_json(dev, interval);
	/*
	 * newterm(), not initscr(): that one prints ncurses' own error and
	 * exits. setupterm() first: a newterm() that fails leaks its screen.
	 */
	term = getenv("TERM");
	scr = NULL;
	/* Ctrl-C and SIGTERM end the view as they end top -j (exit 0): ncurses leaves them ours */
	pl_catch_stop();
	if (term && *term && setupterm(NULL, STDOUT_FILENO, &tierr) == OK) {
		const char *cup = tigetstr("cup");
		bool moves = cup && cup != (char *)-1;

		del_curterm(cur_term);
		/* redrawn in place, or not at all: a terminal that cannot move the cursor (dumb) */
		if (!moves) {
			pl_err("top: cannot use the terminal: TERM '%s' cannot move the cursor (top -j "
			       "needs no terminal)", term);
			return PL_EXIT_USAGE;
		}
		/*
		 * The screen's terminal is standard output: ncurses sets its modes (cbreak) there,
		 * so with stdout a file or pipe the keyboard stays line-buffered, q never arrives
		 * and the file fills with escape sequences. Standard input may be anything: its
		 * end quits, as q does.
		 */
		if (!isatty(STDOUT_FILENO)) {
			pl_err("top: standard output is not a terminal (top -j needs none)");
			return PL_EXIT_USAGE;
		}
		/* a stream on descriptor 1: stdout is pktlens's checked one, without (cli/main.c) */
		tout = fdopen(dup(STDOUT_FILENO), "w");
		scr = tout ? newterm(NULL, tout, stdin) : NULL;
	}
	if (!scr) {
		if (tout)
			fclose(tout);
		if (term && *term)
			pl_err("top: cannot use the terminal: TERM '%s' is not known here", term);
		else
			pl_err("top: cannot use the terminal: TERM is not set");
		return PL_EXIT_USAGE;
	}
	cbreak();
	noecho();
	curs_set(0);
	keypad(stdscr, TRUE);
	timeout((int)interval * 1000);
	err = snap_take(dev, &prev);
	/* the first frame's rates over a quarter second at least, not the microseconds between two readings */
	napms(250);
	for (;;) {
		int ch;

		if (!err)
			err = snap_take(dev, &cur);
		if (err)
			break;
		err = frame_take(&cur, &prev, cur.t - prev.t > 0 ? cur.t - prev.t : 1,
				 LINES > 0 ? (size_t)LINES : 0, &f);
		if (err)
			break;
		draw(&cur, &f, interval);
		frame_free(&f);
		snap_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		t0 = now_s();
		ch = getch();
		if (ch == 'q' || ch == 'Q' || pl_stop)
			break;
		/*
		 * getch() gives up before the interval only when stdin has ended
		 * (a closed pipe, /dev/null): no q can come, so stop.
		 */
		if (ch == ERR && now_s() - t0 < interval / 2.0)
			break;
	}
	endwin();
	delscreen(scr);
	fclose(tout);
	return top_end(dev, &prev, &cur, err);
}

static const struct pl_opt top_opts[] = {
	{ .name = "interval", .type = PL_OPT_UINT, PL_FIELD(struct top_cfg, interval), .min = 1,
	  .max = 3600, .arg = "SECS", .bad = ": not %llu..%llu seconds",
	  .help = "redraw every SECS seconds (default {default})" },
	{ NULL },
};

static const struct top_cfg top_defaults = { .interval = 1 };

const struct pl_cmd pl_cmd_top = {
	.name = "top", .args = "[DEV]", .opts = top_opts, .fn = do_top, .defaults = &top_defaults,
	.cfg_size = sizeof(struct top_cfg), .max_args = 1, .many = "unexpected '%s'",
	.about = "A live view of rates, drops, top flows and packet sizes; q quits.\n"
		 "-j: instead, one JSON object per interval (the same numbers, the " "10" " flows\n"
		 "with the most bytes in it) until Ctrl-C or SIGTERM, no terminal needed.\n",
};
