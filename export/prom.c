// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus text exposition: counters end in _total, sizes are in bytes,
 * the packet-size histogram is a real histogram (cumulative _bucket{le},
 * _sum, _count) over the RMON bucket bounds. Labels: netns (inode),
 * netns_name and device, like node_exporter's node_network_*, written by
 * pl_prom_ns_labels() alone (the drop probes' series too), then direction,
 * hook, verdict.
 * Every metric family is written once with its HELP and TYPE, then its
 * samples for all attachments.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "format.h"
#include "prom.h"
#include "report.h"
#include "../probes/tcp.h"

static void esc(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

void pl_prom_label(FILE *f, const char *v)
{
	esc(f, v);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void pl_prom_ns_labels(FILE *f, const char *netns, const char *netns_name, const char *device)
{
	/* the inode, or INODE:ID for a deleted namespace's (pl_attachment.ns): unique */
	fprintf(f, "netns=\"%s\",", netns);
	if (netns_name[0]) {
		fputs("netns_name=\"", f);
		esc(f, PL_SAFE(netns_name));	/* valid UTF-8, whatever the name's bytes */
		fputs("\",", f);
	}
	fputs("device=\"", f);
	esc(f, device[0] ? PL_NAME(device) : "");	/* valid UTF-8, one text per name */
	fputc('"', f);
}

/* an attachment's series: its namespace's labels and its interface */
static void dev_labels(FILE *f, const struct pl_prom_att *t)
{
	pl_prom_ns_labels(f, t->a->ns, t->netns_name, t->a->ifname);
}

static void slot_labels(FILE *f, const struct pl_prom_att *t, int slot)
{
	dev_labels(f, t);
	fprintf(f, ",direction=\"%s\",hook=\"%s\"", pl_slot_dir[slot], pl_slot_hook[slot]);
}

#define FOR_SLOTS(atts, n, i, sl)						\
	for (size_t i = 0; i < (n); i++)					\
		for (int sl = 0; sl < PL_SLOT_MAX; sl++)			\
			if ((atts)[i].ok && pl_slot_attached(&(atts)[i].a->meta, sl))

static void read_att(struct pl_prom_att *t, bool held)
{
	struct pl_state st;
	struct pl_policy p;

	if (!t->a->ns_gone) {	/* a deleted namespace's inode may name another now */
		struct pl_netns_id id;

		pl_netns_identify(t->a->netns, pl_att_cookie(t->a), false, &id);
		snprintf(t->netns_name, sizeof(t->netns_name), "%s", id.name);
	}
	if (!t->a->meta_ok || pl_state_open(t->a->dir, &st))
		return;
	st.held = held;
	t->ok = !pl_state_stats(&st, t->s) && !pl_state_flow_live(&st, &t->flows);
	pl_state_close(&st);
	if (!t->ok)
		return;
	{
		int fd = pl_pin_open(t->a->dir, PL_MAP_SAMPLE_STATS);

		if (fd >= 0) {
			pl_sample_stats_read(fd, t->samples);
			close(fd);
		}
	}
	if (!pl_policy_open(t->a->dir, &p)) {
		if (!pl_policy_rules(&p, &t->rules, &t->nrules) && t->nrules) {
			t->rstats = calloc(t->nrules, sizeof(*t->rstats));
			t->rkeys = calloc(t->nrules, sizeof(*t->rkeys));
			for (size_t r = 0; t->rstats && r < t->nrules; r++)
				pl_policy_rule_stats(&p, &t->rules[r], &t->rstats[r]);
			for (size_t r = 0; t->rkeys && r < t->nrules; r++)
				if (pl_policy_limit_keys(&p, &t->rules[r], &t->rkeys[r]))
					t->rkeys[r] = PL_PROM_NO_KEYS;
		}
		/* held until every attachment is read: not the reading's spare room */
		if (!t->nrules) {
			free(t->rules);
			t->rules = NULL;
		} else {
			struct pl_rule *fit = realloc(t->rules, t->nrules * sizeof(*fit));

			t->rules = fit ? fit : t->rules;
		}
		pl_policy_close(&p);
	}
	if (t->a->meta.tcp_passive) {
		struct pl_tcp_pstats ps[PL_SLOT_MAX];

		t->passive = !pl_tcp_pstats_read(t->a->dir, ps);
		if (t->passive)
			pl_tcp_pstats_sum(ps, &t->ptcp);
	}
	if (t->a->meta.probes & PL_PROBE_TCP) {
		t->probes = !pl_tcp_pinned_rtx(t->a->dir, &t->retrans_segs);
		if (t->probes && (pl_tcp_pinned_hist(t->a->dir, PL_PIN_TCP_RTT_HIST, &t->rtt) ||
				  pl_tcp_pinned_hist(t->a->dir, PL_PIN_TCP_CONNLAT_HIST, &t->connlat)))
			t->probes = false;
	}
}

/*
 * A log2 microsecond histogram as a Prometheus histogram in seconds, fixed
 * buckets. Slot k holds the samples of [2^k, 2^(k+1)) us, whole microseconds
 * (struct pl_tcp_hist): up to 2^(k+1) - 1. `le` is inclusive, so slots 0..k
 * are exactly the samples <= 2^(k+1) - 1 us; a bound of 2^(k+1) us would
 * leave out the samples equal to it, which are in slot k + 1.
 */
#define PROM_TCP_BUCKETS 25	/* up to 2^25 - 1 us, 33.554431 s */

static void tcp_hist(FILE *f, const char *name, const struct pl_prom_att *a,
		     const struct pl_tcp_hist *h)
{
	__u64 cum = 0;

	for (int k = 0; k < PROM_TCP_BUCKETS; k++) {
		cum += h->slot[k];
		fprintf(f, "%s_bucket{", name);
		dev_labels(f, a);
		/* exact: "%g" would round 4.194303 to 4.1943, below the slot's edge */
		fprintf(f, ",le=\"%.10g\"} %llu\n", (double)((2ULL << k) - 1) / 1e6, cum);
	}
	/* +Inf and _count: every slot's, as the packet sizes' (h->count is counted apart) */
	for (int k = PROM_TCP_BUCKETS; k < PL_TCP_HIST_SLOTS; k++)
		cum += h->slot[k];
	fprintf(f, "%s_bucket{", name);
	dev_labels(f, a);
	fprintf(f, ",le=\"+Inf\"} %llu\n%s_sum{", cum, name);
	dev_labels(f, a);
	fprintf(f, "} %.6f\n%s_count{", h->sum_us / 1e6, name);
	dev_labels(f, a);
	fprintf(f, "} %llu\n", cum);
}

/* attach --tcp-passive: one counter family, a sample per analysing attachment */
static void passive_counter(FILE *f, const struct pl_prom_att *at, size_t n, const char *name,
			    const char *help, size_t off)
{
	head(f, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		if (at[i].passive) {
			fprintf(f, "%s{", name);
			dev_labels(f, &at[i]);
			fprintf(f, "} %llu\n", *(const __u64 *)((const char *)&at[i].ptcp + off));
		}
}

static void passive(FILE *f, const struct pl_prom_att *at, size_t n)
{
	head(f, "pktlens_tcp_passive_rtt_seconds", "histogram",
	     "RTT samples of TCP connections from the packets (attach --tcp-passive): handshake "
	     "halves and timestamp echoes that completed on this interface, i.e. between it and "
	     "the hosts behind it.");
	for (size_t i = 0; i < n; i++)
		if (at[i].passive)
			tcp_hist(f, "pktlens_tcp_passive_rtt_seconds", &at[i], &at[i].ptcp.rtt);
	passive_counter(f, at, n, "pktlens_tcp_passive_segments_total",
			"TCP segments analysed (attach --tcp-passive).",
			offsetof(struct pl_tcp_pstats, segs));
	passive_counter(f, at, n, "pktlens_tcp_passive_retrans_segments_total",
			"TCP segments that repeated sequence space already seen (attach --tcp-passive).",
			offsetof(struct pl_tcp_pstats, retrans));
	passive_counter(f, at, n, "pktlens_tcp_passive_reorder_segments_total",
			"TCP segments that filled a gap in the sequence space seen (out of order; "
			"attach --tcp-passive).", offsetof(struct pl_tcp_pstats, reorder));
	passive_counter(f, at, n, "pktlens_tcp_passive_zero_window_segments_total",
			"TCP segments advertising a zero window (attach --tcp-passive).",
			offsetof(struct pl_tcp_pstats, zero_win));
	passive_counter(f, at, n, "pktlens_tcp_passive_rst_segments_total",
			"TCP segments with RST (attach --tcp-passive).",
			offsetof(struct pl_tcp_pstats, rst));
	passive_counter(f, at, n, "pktlens_tcp_passive_unanalysed_segments_total",
			"TCP segments not analysed: the namespace's connection table was full.",
			offsetof(struct pl_tcp_pstats, state_lost));
	passive_counter(f, at, n, "pktlens_tcp_passive_timestamps_dropped_total",
			"TSvals not remembered for an RTT sample: the namespace's timestamp map was "
			"full (attach --tcp-ts-max).", offsetof(struct pl_tcp_pstats, ts_full));
}

/*
 * A counter family with one sample per attachment and attached hook: the
 * u64 at @off in the hook's struct pl_stats, or with @label the array of
 * @count u64s there, one sample per value named in @names.
 */
static void slot_counters(FILE *f, const struct pl_prom_att *at, size_t n, const char *name,
			  const char *help, size_t off, const char *label,
			  const char *const *names, int count)
{
	head(f, name, "counter", help);
	FOR_SLOTS(at, n, i, sl) {
		const __u64 *v = (const __u64 *)((const char *)&at[i].s[sl] + off);

		for (int k = 0; k < (label ? count : 1); k++) {
			fprintf(f, "%s{", name);
			slot_labels(f, &at[i], sl);
			if (label)
				fprintf(f, ",%s=\"%s\"", label, names[k]);
			fprintf(f, "} %llu\n", v[k]);
		}
	}
}

/* A per-rule metric: a counter of struct pl_rule_stats, or the keys of a --per limit. */
struct rule_metric_def {
	const char *name, *type, *help;
	size_t off;		/* of the __u64 in struct pl_rule_stats */
	int what;		/* RM_ALL, RM_LIMIT: --limit rules only, RM_KEYS/RM_EVICTED: --per keys */
};

enum { RM_ALL, RM_LIMIT, RM_KEYS, RM_EVICTED };

static const struct rule_metric_def rule_metrics[] = {
	{ "pktlens_policy_rule_packets_total", "counter", "Packets each policy rule matched.",
	  offsetof(struct pl_rule_stats, pkts), RM_ALL },
	{ "pktlens_policy_rule_bytes_total", "counter", "Bytes each policy rule matched.",
	  offsetof(struct pl_rule_stats, bytes), RM_ALL },
	{ "pktlens_policy_rule_conformed_packets_total", "counter",
	  "Packets of a --limit rule within its rate.", offsetof(struct pl_rule_stats, conf_pkts),
	  RM_LIMIT },
	{ "pktlens_policy_rule_conformed_bytes_total", "counter",
	  "Bytes of a --limit rule within its rate.", offsetof(struct pl_rule_stats, conf_bytes),
	  RM_LIMIT },
	{ "pktlens_policy_rule_exceeded_packets_total", "counter",
	  "Packets of a --limit rule over its rate (given its --over action).",
	  offsetof(struct pl_rule_stats, exc_pkts), RM_LIMIT },
	{ "pktlens_policy_rule_exceeded_bytes_total", "counter",
	  "Bytes of a --limit rule over its rate.", offsetof(struct pl_rule_stats, exc_bytes),
	  RM_LIMIT },
	{ "pktlens_policy_rule_keys", "gauge",
	  "Keys (sources, destinations, flows) a --limit --per rule tracks.", 0, RM_KEYS },
	{ "pktlens_policy_rule_keys_evicted_total", "counter",
	  "Keys a --limit --per rule's full LRU map evicted.", 0, RM_EVICTED },
};

static void rule_metric(FILE *f, const struct pl_prom_att *at, size_t n,
			const struct rule_metric_def *d)
{
	head(f, d->name, d->type, d->help);
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; at[i].rstats && r < at[i].nrules; r++) {
			const struct pl_rule_stats *s = &at[i].rstats[r];
			__u64 keys = at[i].rkeys ? at[i].rkeys[r] : PL_PROM_NO_KEYS, v;

			if (d->what == RM_LIMIT && at[i].rules[r].action != PL_ACT_LIMIT)
				continue;
			if (d->what >= RM_KEYS && keys == PL_PROM_NO_KEYS)
				continue;
			if (d->what == RM_KEYS)
				v = keys;
			else if (d->what == RM_EVICTED)
				v = pl_policy_limit_evicted(s, keys);
			else
				memcpy(&v, (const char *)s + d->off, sizeof(v));
			fprintf(f, "%s{", d->name);
			dev_labels(f, &at[i]);
			fprintf(f, ",rule=\"%u\"} %llu\n", at[i].rules[r].id, (unsigned long long)v);
		}
}

void pl_prom_write(FILE *f, const struct pl_prom_att *at, size_t n)
{
	static const __u32 le[PL_RMON_MAX - 1] = { 64, 127, 255, 511, 1023, 1518, 9216 };

	head(f, "pktlens_attachments", "gauge", "Interfaces pktlens is attached to, all namespaces.");
	fprintf(f, "pktlens_attachments %zu\n", n);
	head(f, "pktlens_attachment_info", "gauge",
	     "One per attachment: managed_by names the config (pktlens apply/daemon) managing it, "
	     "empty for one attached by hand.");
	for (size_t i = 0; i < n; i++) {
		fputs("pktlens_attachment_info{", f);
		dev_labels(f, &at[i]);
		fputs(",managed_by=\"", f);
		esc(f, PL_SAFE(at[i].a->meta_ok ? at[i].a->meta.managed_by : ""));
		fputs("\"} 1\n", f);
	}

	slot_counters(f, at, n, "pktlens_packets_total",
		      "Packets seen, by the verdict the program gave.",
		      offsetof(struct pl_stats, pkts), "verdict", pl_verdict_names, PL_VERDICT_MAX);
	slot_counters(f, at, n, "pktlens_bytes_total", "Bytes seen (wire length), by verdict.",
		      offsetof(struct pl_stats, bytes), "verdict", pl_verdict_names, PL_VERDICT_MAX);
	head(f, "pktlens_packet_size_bytes", "histogram",
	     "Packet sizes (wire length) in RMON buckets.");
	FOR_SLOTS(at, n, i, sl) {
		__u64 cum = 0, pk, by;

		pl_stats_totals(&at[i].s[sl], &pk, &by);
		for (int b = 0; b < PL_RMON_MAX - 1; b++) {
			cum += at[i].s[sl].rmon[b];
			fputs("pktlens_packet_size_bytes_bucket{", f);
			slot_labels(f, &at[i], sl);
			fprintf(f, ",le=\"%u\"} %llu\n", le[b], cum);
		}
		/*
		 * +Inf and _count: the buckets' own total, not the verdicts'. A
		 * packet's verdict is counted a few instructions before its size,
		 * so a reading (or the base a stats --reset took) under traffic
		 * can hold one without the other: +Inf below le="9216" is no
		 * histogram (histogram_quantile() says it is not monotonic).
		 */
		cum += at[i].s[sl].rmon[PL_RMON_MAX - 1];
		fputs("pktlens_packet_size_bytes_bucket{", f);
		slot_labels(f, &at[i], sl);
		fprintf(f, ",le=\"+Inf\"} %llu\n", cum);
		fputs("pktlens_packet_size_bytes_sum{", f);
		slot_labels(f, &at[i], sl);
		fprintf(f, "} %llu\npktlens_packet_size_bytes_count{", by);
		slot_labels(f, &at[i], sl);
		fprintf(f, "} %llu\n", cum);
	}
	slot_counters(f, at, n, "pktlens_l3_packets_total", "Packets by network protocol.",
		      offsetof(struct pl_stats, l3), "protocol", pl_l3_names, PL_L3_MAX);
	slot_counters(f, at, n, "pktlens_l4_packets_total", "Packets by transport protocol.",
		      offsetof(struct pl_stats, l4), "protocol", pl_l4_names, PL_L4_MAX);
	slot_counters(f, at, n, "pktlens_parse_errors_total", "Frames with malformed headers.",
		      offsetof(struct pl_stats, parse_err), NULL, NULL, 1);
	slot_counters(f, at, n, "pktlens_flow_lost_packets_total",
		      "Packets of flows the full flow table could not admit.",
		      offsetof(struct pl_stats, flow_lost_pkts), NULL, NULL, 1);
	slot_counters(f, at, n, "pktlens_policy_nomatch_packets_total",
		      "Packets a policy judged and no rule matched (passed).",
		      offsetof(struct pl_stats, nomatch_pkts), NULL, NULL, 1);
	head(f, "pktlens_samples_total", "counter", "Packets pktlens sample took (copied or lost).");
	FOR_SLOTS(at, n, i, sl) {
		fputs("pktlens_samples_total{", f);
		slot_labels(f, &at[i], sl);
		fprintf(f, "} %llu\n", at[i].samples[sl].sampled);
	}
	head(f, "pktlens_samples_lost_total", "counter",
	     "Samples lost because the sampler's ring buffer was full.");
	FOR_SLOTS(at, n, i, sl) {
		fputs("pktlens_samples_lost_total{", f);
		slot_labels(f, &at[i], sl);
		fprintf(f, "} %llu\n", at[i].samples[sl].lost);
	}
	head(f, "pktlens_flow_table_entries", "gauge",
	     "Flows in the flow table with packets since the last stats --reset (as flows lists them).");
	for (size_t i = 0; i < n; i++)
		if (at[i].ok) {
			fputs("pktlens_flow_table_entries{", f);
			dev_labels(f, &at[i]);
			fprintf(f, "} %zu\n", at[i].flows);
		}
	head(f, "pktlens_flow_table_size", "gauge", "Capacity of the flow table.");
	for (size_t i = 0; i < n; i++)
		if (at[i].ok) {
			fputs("pktlens_flow_table_size{", f);
			dev_labels(f, &at[i]);
			fprintf(f, "} %u\n", at[i].a->meta.flows_max);
		}
	for (size_t m = 0; m < sizeof(rule_metrics) / sizeof(rule_metrics[0]); m++)
		rule_metric(f, at, n, &rule_metrics[m]);
	head(f, "pktlens_tcp_retransmit_segments_total", "counter",
	     "TCP segments retransmitted by connections of the namespace (attach --probes tcp).");
	for (size_t i = 0; i < n; i++)
		if (at[i].probes) {
			fputs("pktlens_tcp_retransmit_segments_total{", f);
			dev_labels(f, &at[i]);
			fprintf(f, "} %llu\n", at[i].retrans_segs);
		}
	head(f, "pktlens_tcp_rtt_seconds", "histogram",
	     "Smoothed RTT of TCP connections of the namespace at every received segment "
	     "(attach --probes tcp).");
	for (size_t i = 0; i < n; i++)
		if (at[i].probes)
			tcp_hist(f, "pktlens_tcp_rtt_seconds", &at[i], &at[i].rtt);
	head(f, "pktlens_tcp_connect_latency_seconds", "histogram",
	     "SYN_SENT to ESTABLISHED of TCP connections of the namespace (attach --probes tcp).");
	for (size_t i = 0; i < n; i++)
		if (at[i].probes)
			tcp_hist(f, "pktlens_tcp_connect_latency_seconds", &at[i], &at[i].connlat);
	passive(f, at, n);
}

int pl_prom_render(const struct pl_netns *only, char **out, size_t *len)
{
	struct pl_attachment *a = NULL;
	struct pl_prom_att *at;
	size_t n = 0;
	FILE *f;
	int err = pl_attachments_in(only, &a, &n);

	*out = NULL;
	if (err)
		return err;
	at = calloc(n ? n : 1, sizeof(*at));
	if (!at) {
		free(a);
		return -ENOMEM;
	}
	{
		struct pl_holds hs;
		bool held = pl_holds_begin(&hs, a, n);	/* every flow cache still, one wait for all */

		for (size_t i = 0; i < n; i++) {
			at[i].a = &a[i];
			read_att(&at[i], held);
		}
		pl_holds_end(&hs);
	}
	f = open_memstream(out, len);
	if (f) {
		pl_prom_write(f, at, n);
		pl_prom_drops(f, at, n);
		if (fclose(f))
			err = -ENOMEM;
	} else {
		err = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		free(at[i].rules);
		free(at[i].rstats);
		free(at[i].rkeys);
	}
	free(at);
	free(a);
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}
