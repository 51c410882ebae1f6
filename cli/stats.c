// SPDX-License-Identifier: GPL-2.0
/* pktlens stats */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pktlens/why.h>

#include "cli.h"
#include "common.h"
#include "drops.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../loader/xdp_multi.h"

#define BAR_WIDTH 40

static bool slot_shown(const struct pl_meta *m, const struct pl_stats *s, int slot)
{
	__u64 pk, by;

	pl_stats_totals(s, &pk, &by);
	return pl_slot_attached(m, slot) || pk > 0;
}

static void bar(__u64 v, __u64 max)
{
	int n = max ? (int)((v * BAR_WIDTH + max - 1) / max) : 0;

	printf("|%.*s%*s|\n", n, "****************************************", BAR_WIDTH - n, "");
}

static void plain_hist(const struct pl_stats *s)
{
	__u64 max = 0;
	int last = -1;

	for (int i = 0; i < PL_RMON_MAX; i++)
		max = s->rmon[i] > max ? s->rmon[i] : max;
	printf("    %-19s : %-10s distribution\n", "size (bytes)", "count");
	for (int i = 0; i < PL_RMON_MAX; i++) {
		printf("    %-19s : %-10llu ", pl_rmon_names[i], s->rmon[i]);
		bar(s->rmon[i], max);
	}
	max = 0;
	for (int i = 0; i < PL_LOG2_MAX; i++) {
		max = s->log2[i] > max ? s->log2[i] : max;
		if (s->log2[i])
			last = i;
	}
	if (last < 0)
		return;
	printf("    %-19s : %-10s distribution\n", "log2 size (bytes)", "count");
	for (int i = 0; i <= last; i++) {
		char range[32];

		/* the last bucket is open: GSO/BIG TCP packets reach 512 KiB */
		if (i == PL_LOG2_MAX - 1)
			snprintf(range, sizeof(range), "%u and more", 1u << i);
		else
			snprintf(range, sizeof(range), "%u -> %u", i ? 1u << i : 0u, (2u << i) - 1);
		printf("    %-19s : %-10llu ", range, s->log2[i]);
		bar(s->log2[i], max);
	}
}

/*
 * @attached: the attachment has the hook, else these are its counts from before a re-attach
 * without it; @runs: its program runs there (another tool has not taken it off)
 */
static void plain_slot(const struct pl_stats *s, int slot, bool filter, bool attached, bool runs)
{
	__u64 pk, by;

	pl_stats_totals(s, &pk, &by);
	printf("  %s %-3s  packets %llu  bytes %llu", pl_slot_hook[slot], pl_slot_dir[slot],
	       pk, by);
	for (int v = 0; v < PL_VERDICT_MAX; v++)
		if (s->pkts[v])
			printf("  %s %llu/%llu", pl_verdict_names[v], s->pkts[v], s->bytes[v]);
	if (!attached)
		printf("  [not attached: counted before a re-attach]");
	else if (!runs)
		printf("  [not running: its program was taken off the interface]");
	printf("\n    l3:");
	for (int i = 0; i < PL_L3_MAX; i++)
		printf(" %s %llu", pl_l3_names[i], s->l3[i]);
	printf("\n    l4:");
	for (int i = 0; i < PL_L4_MAX; i++)
		printf(" %s %llu", pl_l4_names[i], s->l4[i]);
	printf("\n    vlan %llu (double %llu)  fragments %llu  ip options/ext %llu"
	       "  parse errors %llu  truncated %llu\n",
	       s->vlan, s->vlan2, s->ip_frags, s->ip_opts, s->parse_err, s->truncated);
	if (s->flow_lost || s->flow_lost_pkts)
		printf("    not recorded in flows: %llu packets (%llu bytes; the table refused %llu)\n",
		       s->flow_lost_pkts, s->flow_lost_bytes, s->flow_lost);
	if (filter || s->filter_pkts)
		printf("    filter matched %llu packets, %llu bytes\n", s->filter_pkts,
		       s->filter_bytes);
	if (s->nomatch_pkts)
		printf("    policy: no rule matched %llu packets, %llu bytes (passed)\n",
		       s->nomatch_pkts, s->nomatch_bytes);
	plain_hist(s);
}

/*
 * Passive TCP (attach --tcp-passive): the counters of every hook of the
 * attachment summed, and the log2 histogram of the RTT samples that
 * completed here (the RTT between this interface and the hosts behind it).
 * "tcp": null without. Not reset by --reset.
 */
static void tcp_summary(struct jw *w, const struct pl_attachment *a, const struct pl_meta *m)
{
	struct pl_tcp_pstats p[PL_SLOT_MAX], t;
	__u32 ts_max = m->tcp_ts_max;	/* asked for; the shared map's own size below */
	int hi = -1;

	if (!m->tcp_passive || pl_tcp_pstats_read(a->dir, p) || pl_tcp_ts_max_read(a->dir, &ts_max)) {
		if (w)
			jw_key(w, "tcp"), jw_null(w);
		return;
	}
	pl_tcp_pstats_sum(p, &t);
	for (int k = 0; k < PL_TCP_HIST_SLOTS; k++)
		if (t.rtt.slot[k])
			hi = k;
	if (w) {
		jw_key(w, "tcp");
		jw_obj_open(w);
		jw_u64_field(w, "segs", t.segs);
		jw_u64_field(w, "syn_samples", t.syn_samples);
		jw_u64_field(w, "ts_samples", t.ts_samples);
		jw_u64_field(w, "retrans", t.retrans);
		jw_u64_field(w, "reorder", t.reorder);
		jw_u64_field(w, "zero_win", t.zero_win);
		jw_u64_field(w, "rst", t.rst);
		jw_u64_field(w, "state_lost", t.state_lost);
		jw_u64_field(w, "ts_max", ts_max);
		jw_u64_field(w, "ts_full", t.ts_full);
		jw_u64_field(w, "ts_expired", t.ts_expired);
		jw_u64_field(w, "rtt_count", t.rtt.count);
		jw_u64_field(w, "rtt_sum_us", t.rtt.sum_us);
		jw_u64_field(w, "rtt_max_us", t.rtt.max_us);
		/* slot k: [2^k, 2^(k+1)) microseconds, slot 0 also 0 */
		jw_key(w, "rtt_log2_us");
		jw_arr_open(w);
		for (int k = 0; k < PL_TCP_HIST_SLOTS; k++)
			jw_u64(w, t.rtt.slot[k]);
		jw_arr_close(w);
		jw_obj_close(w);
		return;
	}
	printf("  tcp       segments %llu  retrans %llu  reorder %llu  zero-window %llu  rst %llu\n",
	       t.segs, t.retrans, t.reorder, t.zero_win, t.rst);
	printf("            RTT samples: handshake %llu, timestamps %llu; max %llu us\n",
	       t.syn_samples, t.ts_samples, t.rtt.max_us);
	if (t.state_lost || t.ts_full)
		printf("            not analysed: %llu segments (connection table full); "
		       "timestamps not remembered: %llu (%u outstanding at most)\n", t.state_lost,
		       t.ts_full, ts_max);
	if (hi < 0)
		return;
	printf("    %-19s : %-10s distribution\n", "rtt (us)", "count");
	{
		__u64 max = 0;

		for (int k = 0; k <= hi; k++)
			max = t.rtt.slot[k] > max ? t.rtt.slot[k] : max;
		for (int k = 0; k <= hi; k++) {
			char range[32];

			snprintf(range, sizeof(range), "%llu -> %llu", k ? 1ULL << k : 0ULL,
				 (2ULL << k) - 1);
			printf("    %-19s : %-10llu ", range, t.rtt.slot[k]);
			bar(t.rtt.slot[k], max);
		}
	}
}

static int show_one(struct jw *w, const struct pl_attachment *a, bool reset)
{
	struct pl_stats s[PL_SLOT_MAX];
	struct pl_link_info li;
	struct pl_xdp_disp d;
	struct pl_state st;
	size_t used = 0;
	bool have_li, live = false, disp, runs[PL_SLOT_MAX], moved = false;
	struct pl_moved mv;
	int err, rc;

	rc = pl_open_state("stats", a, &st);
	if (rc)
		return rc;
	/* the (slow) count first: the reading and the reset follow each other closely */
	err = pl_state_flow_live(&st, &used);
	if (!err)
		err = pl_state_stats(&st, s);
	if (err) {
		pl_err("stats: %s: cannot read maps: %s", a->ifname, strerror(-err));
		pl_state_close(&st);
		return PL_EXIT_FAIL;
	}
	/*
	 * The kernel's counters of the interface attached, not of one that got its index since:
	 * it runs our programs, or (none runs: a `tc qdisc del ... clsact`, a link detached by
	 * another tool) has the name attached, as list's program-gone has it.
	 */
	for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
		runs[sl] = pl_slot_attached(&st.meta, sl) && pl_meta_slot_live(&st.meta, sl);
		live |= runs[sl];
	}
	/* none runs here: its interface may have moved to another namespace, its hooks along */
	if (!live && pl_attachment_moved(a, &mv) == 1) {
		moved = true;
		for (int sl = 0; sl < PL_SLOT_MAX; sl++)
			runs[sl] = pl_slot_attached(&st.meta, sl) && (mv.slots & (1u << sl));
		li = mv.li;	/* its kernel counters, as read there */
		have_li = true;
		disp = false;
	} else {
		err = pl_link_get(NULL, st.meta.ifindex, &li);
		if (pl_starved(err)) {	/* not "the interface is gone" */
			pl_err("stats: %s: cannot read the interface: %s", a->ifname, strerror(-err));
			pl_state_close(&st);
			return PL_EXIT_FAIL;
		}
		have_li = !err && (live || !strcmp(li.ifname, a->ifname));
		/* the XDP programs beside ours: what runs before it, pktlens does not see */
		disp = have_li && pl_meta_xdp_disp(&st.meta, &d);
	}

	if (pl_g.json) {
		jw_obj_open(w);
		jw_name_field(w, "ifname", a->ifname);
		jw_u64_field(w, "ifindex", st.meta.ifindex);
		pl_json_att_netns(w, a);
		jw_str_field(w, "xdp_mode", pl_xdp_mode_name(st.meta.xdp_mode));
		jw_str_field(w, "tc_mech", pl_tc_mech_name(st.meta.tc_mech));
		jw_u64_field(w, "flows", used);
		jw_u64_field(w, "flows_max", st.meta.flows_max);
		jw_bool_field(w, "reset", reset);
		jw_str_field(w, "filter", st.meta.filter_set ? st.meta.filter_expr : NULL);
		jw_bool_field(w, "filter_setting", st.meta.filter_set == PL_FILTER_SETTING);
		jw_key(w, "xdp_dispatcher");
		if (disp)
			pl_json_xdp_disp(w, &d, st.meta.xdp_prog_id);
		else
			jw_null(w);
		jw_key(w, "moved_to");
		if (moved) {
			jw_obj_open(w);
			jw_name_field(w, "ifname", mv.li.ifname);
			jw_u64_field(w, "ifindex", (__u64)mv.li.ifindex);
			jw_u64_field(w, "netns", mv.netns);
			jw_obj_close(w);
		} else {
			jw_null(w);
		}
		jw_key(w, "kernel");
		if (have_li) {
			jw_obj_open(w);
			jw_u64_field(w, "rx_packets", li.rx_packets);
			jw_u64_field(w, "rx_bytes", li.rx_bytes);
			jw_u64_field(w, "rx_dropped", li.rx_dropped);
			jw_u64_field(w, "tx_packets", li.tx_packets);
			jw_u64_field(w, "tx_bytes", li.tx_bytes);
			jw_u64_field(w, "tx_dropped", li.tx_dropped);
			jw_obj_close(w);
		} else {
			jw_null(w);
		}
		jw_key(w, "hooks");
		jw_arr_open(w);
		for (int sl = 0; sl < PL_SLOT_MAX; sl++)
			if (slot_shown(&st.meta, &s[sl], sl))
				pl_json_stats_slot(w, &s[sl], sl, runs[sl]);
		jw_arr_close(w);
		pl_drops_summary(w, a);
		tcp_summary(w, a, &st.meta);
		pl_sampler_summary(w, false, "stats", a);
		jw_obj_close(w);
	} else {
		char hooks[128];

		char ns[300];

		printf("%s (ifindex %u, netns %s): %s, flow table %zu/%u%s\n", PL_NAME(a->ifname),
		       st.meta.ifindex, pl_fmt_att_netns(a, true, ns, sizeof(ns)),
		       pl_fmt_hooks(&st.meta, hooks, sizeof(hooks)), used, st.meta.flows_max,
		       reset ? " [counters reset after this reading]" : "");
		if (moved)
			printf("  moved     to another namespace, its hooks along: it is %s in netns "
			       "%s\n", PL_NAME(mv.li.ifname), pl_netns_fmt(mv.netns, 0, false, ns,
								    sizeof(ns)));
		if (have_li)
			printf("  kernel    rx packets %llu  bytes %llu  dropped %llu"
			       "   tx packets %llu  bytes %llu\n", li.rx_packets,
			       li.rx_bytes, li.rx_dropped, li.tx_packets, li.tx_bytes);
		else
			printf("  kernel    interface index %u is gone\n", st.meta.ifindex);
		if (have_li && !live && !moved)
			printf("  state     program-gone: none of its programs runs on %s any more "
			       "(pktlens attach %s --force)\n", PL_NAME(a->ifname), PL_NAME(a->ifname));
		if (disp)
			pl_print_xdp_disp(&d, st.meta.xdp_prog_id, "  ");
		pl_drops_summary(NULL, a);
		if (st.meta.filter_set)
			printf("  filter    '%s'%s\n", st.meta.filter_expr,
			       st.meta.filter_set != PL_FILTER_SETTING ? "" : " (being set or cleared, "
			       "or its filter set or clear was killed: a hook may run what was there "
			       "before; pktlens filter set or clear sets them all again)");
		for (int sl = 0; sl < PL_SLOT_MAX; sl++)
			if (slot_shown(&st.meta, &s[sl], sl))
				plain_slot(&s[sl], sl, st.meta.filter_set,
					   pl_slot_attached(&st.meta, sl), runs[sl]);
		tcp_summary(NULL, a, &st.meta);
		pl_sampler_summary(NULL, true, "stats", a);
	}
	/*
	 * --reset: to the reading shown, and only once it is out: figures that
	 * could not be written (a full disk) leave the counters as they are
	 */
	if (reset && (err = pl_stdout_flush())) {
		pl_err("stats: %s: cannot write the reading: %s: counters not reset", a->ifname,
		       strerror(-err));
		rc = PL_EXIT_FAIL;
	} else if (reset && (err = pl_state_reset_to(&st, s))) {
		pl_err("stats: %s: cannot reset maps: %s: counters not reset, whatever the reading "
		       "says", a->ifname, strerror(-err));
		rc = PL_EXIT_FAIL;
	}
	pl_state_close(&st);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One attachment's reading: the counters, the base of the reset before them, the maps read. */
struct watch_read {
	struct pl_stats s[PL_SLOT_MAX];
	struct pl_stats base[PL_SLOT_MAX];
	__u32 stats_id;
};

static void watch_take(const struct pl_state *st, struct watch_read *r)
{
	pl_state_stats(st, r->s);
	memcpy(r->base, st->base, sizeof(r->base));
	r->stats_id = st->stats_id;
}

/*
 * Open @a's maps for --watch. Watching every interface (@named false), one detached
 * meanwhile is no longer watched (*@gone; the others go on) instead of ending the watch:
 * that is for the DEV the user named.
 */
static int watch_open(const struct pl_attachment *a, bool named, struct pl_state *st, bool *gone)
{
	int err = pl_state_open(a->dir, st);

	if (err && !named && err == -ENOENT && access(a->dir, F_OK)) {
		pl_info("stats: %s: detached meanwhile; watching the others", a->ifname);
		*gone = true;
		return PL_EXIT_OK;
	}
	return err ? pl_open_error("stats", a, err) : PL_EXIT_OK;
}

/* --watch: rates from the difference of two readings (pl_stats_since()). */
static int watch(const struct pl_attachment *a, size_t n, uint32_t secs, bool named)
{
	struct watch_read *prev = calloc(n, sizeof(*prev));
	bool *gone = calloc(n, sizeof(*gone));
	double t_prev = now_s();
	int rc = PL_EXIT_OK;

	if (!prev || !gone) {
		free(prev);
		free(gone);
		return PL_EXIT_FAIL;
	}
	pl_catch_stop();
	for (size_t i = 0; i < n; i++) {
		struct pl_state st;

		if ((rc = watch_open(&a[i], named, &st, &gone[i])))
			goto out;
		if (gone[i])
			continue;
		watch_take(&st, &prev[i]);
		pl_state_close(&st);
	}
	if (!pl_g.json)
		printf("%-8s %-16s %-3s %-3s %12s %14s %14s %16s\n", "TIME", "IFACE", "HK", "DIR",
		       "PPS", "BPS", "PACKETS", "BYTES");
	while (!pl_stop) {
		double t, dt;
		char when[16];
		struct timespec real;
		time_t wall;
		struct tm tm;

		for (uint32_t slept = 0; slept < secs * 10 && !pl_stop; slept++)
			usleep(100000);
		if (pl_stop)
			break;
		t = now_s();
		dt = t - t_prev;
		t_prev = t;
		clock_gettime(CLOCK_REALTIME, &real);
		wall = real.tv_sec;
		strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&wall, &tm));
		for (size_t i = 0; i < n; i++) {
			struct watch_read cur;
			struct pl_state st;
			bool same;

			if (gone[i])
				continue;
			if ((rc = watch_open(&a[i], named, &st, &gone[i])))
				goto out;
			if (gone[i])
				continue;
			watch_take(&st, &cur);
			/* the same maps, a stats --reset between or not; other ones: attached again */
			same = cur.stats_id == prev[i].stats_id;
			for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
				__u64 pk, by, dpk, dby;
				struct pl_stats d;

				if (!slot_shown(&st.meta, &cur.s[sl], sl))
					continue;
				pl_stats_totals(&cur.s[sl], &pk, &by);
				pl_stats_since(&cur.s[sl], &cur.base[sl], same ? &prev[i].s[sl] : NULL,
					       same ? &prev[i].base[sl] : NULL, &d);
				pl_stats_totals(&d, &dpk, &dby);
				if (pl_g.json) {
					struct jw w;

					jw_init(&w, stdout, false);
					jw_obj_open(&w);
					/* to the microsecond: %.9g would round it to 10 s */
					jw_fixed_field(&w, "time", (double)real.tv_sec +
						       real.tv_nsec / 1e9, 6);
					jw_name_field(&w, "ifname", a[i].ifname);
					jw_str_field(&w, "hook", pl_slot_hook[sl]);
					jw_str_field(&w, "dir", pl_slot_dir[sl]);
					jw_double_field(&w, "pps", dpk / dt);
					jw_double_field(&w, "bps", dby * 8 / dt);
					jw_u64_field(&w, "packets", pk);
					jw_u64_field(&w, "bytes", by);
					jw_obj_close(&w);
					jw_end(&w);
				} else {
					printf("%-8s %-16s %-3s %-3s %12.1f %14.0f %14llu %16llu\n",
					       when, PL_NAME(a[i].ifname), pl_slot_hook[sl], pl_slot_dir[sl],
					       dpk / dt, dby * 8 / dt, pk, by);
				}
			}
			prev[i] = cur;
			pl_state_close(&st);
		}
		fflush(stdout);
	}
out:
	free(prev);
	free(gone);
	return rc;
}

struct stats_cfg {
	uint32_t watch;
	int reset;
};

static int do_stats(void *cfg, int argc, char **argv)
{
	const struct stats_cfg *c = cfg;
	struct pl_view_errs errs;
	struct pl_attachment *a = NULL;
	uint32_t secs = c->watch;
	bool reset = c->reset;
	size_t n = 0;
	struct jw w;
	int rc;

	if (secs && reset) {
		pl_err("stats: --watch and --reset do not go together");
		return PL_EXIT_USAGE;
	}
	rc = pl_need_caps("stats", PL_NEED_BPF);
	if (!rc && reset)
		rc = pl_lock_changes("stats --reset");
	if (rc)
		return rc;
	/* a reader gone before the reading is out: said, counters not reset (SIGPIPE said nothing) */
	if (reset)
		signal(SIGPIPE, SIG_IGN);
	rc = pl_select("stats", argc ? argv[0] : NULL, &a, &n);
	if (rc)
		return rc;
	if (secs) {
		rc = n ? watch(a, n, secs, argc > 0) : PL_EXIT_OK;
		if (!n)
			pl_info("no interfaces attached in this network namespace");
		free(a);
		return rc;
	}
	jw_init(&w, stdout, pl_g.pretty);
	if (pl_g.json) {
		jw_obj_open(&w);
		jw_key(&w, "interfaces");
		jw_arr_open(&w);
	} else if (!n) {
		printf("no interfaces attached in this network namespace (pktlens attach DEV)\n");
	}
	/* one that cannot be read (or reset) does not hide, or keep unreset, the others */
	pl_view_errs_begin(&errs);
	for (size_t i = 0; i < n; i++) {
		int r = show_one(&w, &a[i], reset);

		if (r) {
			pl_view_errs_add(&errs, a[i].ifname);
			rc = rc ? rc : r;
		}
	}
	if (pl_g.json)
		jw_arr_close(&w);
	pl_view_errs_end(&errs, &w);
	if (pl_g.json) {
		jw_obj_close(&w);
		jw_end(&w);
	}
	free(a);
	return rc;
}

static const struct pl_opt stats_opts[] = {
	{ .name = "watch", .type = PL_OPT_UINT, PL_FIELD(struct stats_cfg, watch), .min = 1,
	  .max = 86400, .arg = "SECS", .bad = " is wrong: expected seconds from %llu to %llu",
	  .help = "print packet and bit rates every SECS seconds until Ctrl-C (JSON lines with -j)" },
	{ .name = "reset", .type = PL_OPT_FLAG, PL_FIELD(struct stats_cfg, reset), .val = 1,
	  .help = "print the counters, then start them again from zero and empty the flow table "
		  "but for the flows whose packets a CPU's flow cache holds (nothing counted "
		  "meanwhile is lost)" },
	{ NULL },
};

const struct pl_cmd pl_cmd_stats = {
	.name = "stats", .args = "[DEV]", .opts = stats_opts, .fn = do_stats,
	.cfg_size = sizeof(struct stats_cfg), .max_args = 1,
	.about = "Per-interface counters: packets and bytes by hook, direction and verdict,\n"
		 "the packet-size histogram (RMON buckets and log2), protocol mix, parse\n"
		 "errors, flow-table use and losses, and the kernel's own rx counters.\n",
};
