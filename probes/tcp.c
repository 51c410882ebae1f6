// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/why.h>

#include "tcp.h"
#include "../loader/features.h"
#include "../loader/loader.h"
#include "pktlens_tcp.skel.h"
#include "probeset.h"

struct pl_tcp {
	struct pktlens_tcp *skel;
	struct ring_buffer *rb;
	pl_tcp_event_fn fn;
	void *ctx;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct pl_tcp *t = ctx;

	if (size < sizeof(struct pl_tcp_event))
		return 0;
	return t->fn ? t->fn(t->ctx, data) : 0;
}

/* what pl_tcp_pin() pins: links (NULL when not loaded), then maps */
static const char *const link_pins[] = { PL_PIN_TCP_RTX_LINK, PL_PIN_TCP_RTX_SYNACK_LINK,
					 PL_PIN_TCP_RTT_LINK, PL_PIN_TCP_STATE_LINK };
static const char *const map_pins[] = { PL_MAP_CONN_RETRANS, PL_PIN_TCP_RTT_HIST,
					PL_PIN_TCP_CONNLAT_HIST, PL_PIN_TCP_RTX_TOTAL };

/* one set per attachment: each counts the namespace's TCP since its own attach */
const struct pl_probe_pins pl_tcp_pins = {
	.links = link_pins, .nlinks = sizeof(link_pins) / sizeof(link_pins[0]),
	.maps = map_pins, .nmaps = sizeof(map_pins) / sizeof(map_pins[0]),
};

static int add_conn_segs(const void *key, const void *val, int ncpu, void *ctx)
{
	(void)key, (void)ncpu;
	*(__u64 *)ctx += ((const struct pl_tcp_conn *)val)->segs;
	return 0;
}

/* The sum of a per-CPU u64 (PERCPU_ARRAY, key 0). */
static int percpu_u64(int fd, __u64 *out)
{
	int ncpu = libbpf_num_possible_cpus(), err = 0;
	__u32 zero = 0;
	__u64 *v;

	*out = 0;
	if (ncpu <= 0)
		return -EINVAL;
	err = pl_map_sized(fd, true, sizeof(zero), sizeof(*v));
	if (err)
		return err;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &zero, v))
		err = -errno;
	for (int c = 0; !err && c < ncpu; c++)
		*out += v[c];
	free(v);
	return err;
}

/*
 * A re-attach carrying the maps of an attachment made before rtx_total:
 * start the total at what its connections hold, so the exporter's counter
 * does not go back. Called once the old links are detached, before ours
 * attach: nothing counts meanwhile.
 */
static void seed_rtx_total(struct pktlens_tcp *s)
{
	int fd = bpf_map__fd(s->maps.rtx_total);
	__u64 have = 0, sum = 0, *v;
	int ncpu = libbpf_num_possible_cpus();
	__u32 zero = 0;

	if (percpu_u64(fd, &have) || have || ncpu <= 0)
		return;		/* its own: carried along, or nothing counted */
	if (pl_map_walk(bpf_map__fd(s->maps.conn_retrans), sizeof(struct pl_tcp_tuple),
			sizeof(struct pl_tcp_conn), false, add_conn_segs, &sum) || !sum)
		return;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return;
	v[0] = sum;
	bpf_map_update_elem(fd, &zero, v, BPF_ANY);
	free(v);
}

/* pl_tcp_open(), counting on in the maps pinned in @carry (a re-attach's old directory) */
static int open_tcp(unsigned progs, const struct pl_tcp_cfg *cfg, const char *carry,
		    pl_tcp_event_fn fn, void *ctx, struct pl_tcp **out, char *why, size_t whylen)
{
	struct pl_tcp *t = calloc(1, sizeof(*t));
	struct pktlens_tcp *s;
	struct pl_tcp_cfg c;
	__u32 zero = 0;
	int err;

	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->ctx = ctx;
	s = t->skel = pktlens_tcp__open();
	if (!s) {
		err = pl_why(why, whylen, -errno, "cannot open the TCP probes: %s", strerror(errno));
		goto fail;
	}
	/* the tracepoint's err argument is newer than the tracepoint (loader/features.c) */
	bpf_program__set_autoload(s->progs.pl_tcp_retransmit,
				  (progs & PL_TCP_P_RETRANS) && pl_feature(PL_FEAT_RETRANS_ERR));
	bpf_program__set_autoload(s->progs.pl_tcp_retransmit_noerr,
				  (progs & PL_TCP_P_RETRANS) && !pl_feature(PL_FEAT_RETRANS_ERR));
	bpf_program__set_autoload(s->progs.pl_tcp_retransmit_synack, progs & PL_TCP_P_RETRANS);
	bpf_program__set_autoload(s->progs.pl_tcp_rtt, progs & PL_TCP_P_RTT);
	/* the state tracepoint: connect latency and tcp life, and for retransmits, which sockets began */
	bpf_program__set_autoload(s->progs.pl_tcp_state, progs & (PL_TCP_P_CONNLAT | PL_TCP_P_RETRANS));
	if (carry) {
		struct bpf_map *maps[] = { s->maps.conn_retrans, s->maps.rtt_hist,
					   s->maps.connlat_hist, s->maps.rtx_total };

		pl_pins_reuse_maps(carry, maps, map_pins, sizeof(map_pins) / sizeof(map_pins[0]));
	}
	err = pktlens_tcp__load(s);
	if (err) {
		err = pl_probes_load_why(s->obj, err, "the TCP probes", why, whylen);
		goto fail;
	}
	c = *cfg;
	c.flags |= (progs & PL_TCP_P_CONNLAT ? PL_TCP_CFG_CONNLAT : 0) |
		   (progs & PL_TCP_P_RETRANS ? PL_TCP_CFG_RETRANS : 0);
	if (bpf_map_update_elem(bpf_map__fd(s->maps.tcp_cfg), &zero, &c, BPF_ANY)) {
		err = pl_why(why, whylen, -errno, "cannot configure the TCP probes: %s",
			     strerror(errno));
		goto fail;
	}
	/* the old links stop before these start: nothing counted twice in shared maps */
	if (carry) {
		pl_pins_unpin(carry, link_pins, sizeof(link_pins) / sizeof(link_pins[0]), NULL, 0);
		seed_rtx_total(s);
	}
	err = pktlens_tcp__attach(s);
	if (err) {
		pl_why(why, whylen, err, "attaching the TCP tracepoints failed: %s", strerror(-err));
		goto fail;
	}
	t->rb = fn ? ring_buffer__new(bpf_map__fd(s->maps.tcp_events), on_record, t, NULL) : NULL;
	if (fn && !t->rb) {
		err = pl_why(why, whylen, -errno, "cannot map the event ring: %s", strerror(errno));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	pl_tcp_close(t);
	return err;
}

int pl_tcp_open(unsigned progs, const struct pl_tcp_cfg *cfg, pl_tcp_event_fn fn, void *ctx,
		struct pl_tcp **out, char *why, size_t whylen)
{
	return open_tcp(progs, cfg, NULL, fn, ctx, out, why, whylen);
}

int pl_tcp_poll(struct pl_tcp *t, int timeout_ms)
{
	int n = ring_buffer__poll(t->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

uint64_t pl_tcp_lost(const struct pl_tcp *t)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sum = 0, *v;
	__u32 zero = 0;

	if (ncpu <= 0 || !(v = calloc((size_t)ncpu, sizeof(*v))))
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.tcp_lost), &zero, v))
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
	free(v);
	return sum;
}

struct conns_walk {
	pl_tcp_conn_fn fn;
	void *ctx;
};

static int walk_conn(const void *key, const void *val, int ncpu, void *ctx)
{
	const struct conns_walk *w = ctx;

	(void)ncpu;
	return w->fn(w->ctx, key, val);
}

int pl_tcp_conns(const struct pl_tcp *t, pl_tcp_conn_fn fn, void *ctx)
{
	struct conns_walk w = { fn, ctx };

	return pl_map_walk(bpf_map__fd(t->skel->maps.conn_retrans), sizeof(struct pl_tcp_tuple),
			   sizeof(struct pl_tcp_conn), false, walk_conn, &w);
}

static void hist_sum(struct pl_tcp_hist *out, const struct pl_tcp_hist *v, int ncpu)
{
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < ncpu; c++) {
		for (int i = 0; i < PL_TCP_HIST_SLOTS; i++)
			out->slot[i] += v[c].slot[i];
		out->count += v[c].count;
		out->sum_us += v[c].sum_us;
		if (v[c].max_us > out->max_us)
			out->max_us = v[c].max_us;
	}
}

int pl_tcp_rtt(const struct pl_tcp *t, struct pl_tcp_hist_key **keys, struct pl_tcp_hist **hists,
	       size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.rtt_hist), ncpu = libbpf_num_possible_cpus();
	struct pl_tcp_hist_key k, next, *ks = NULL;
	struct pl_tcp_hist *hs = NULL, *v;
	size_t cnt = 0, cap = 0;
	int err = 0;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* a few keys at most (one per address or port): get_next_key is enough */
	for (int r = pl_map_first_key(fd, &next); !r;
	     r = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		if (bpf_map_lookup_elem(fd, &k, v))
			continue;	/* removed meanwhile */
		if (cnt == cap) {
			size_t c2 = cap ? cap * 2 : 16;
			void *a = realloc(ks, c2 * sizeof(*ks)), *b;

			if (a)
				ks = a;
			b = a ? realloc(hs, c2 * sizeof(*hs)) : NULL;
			if (!a || !b) {
				err = -ENOMEM;
				break;
			}
			hs = b;
			cap = c2;
		}
		ks[cnt] = k;
		hist_sum(&hs[cnt++], v, ncpu);
	}
	free(v);
	if (err) {
		free(ks);
		free(hs);
		return err;
	}
	*keys = ks;
	*hists = hs;
	*n = cnt;
	return 0;
}

/* The per-CPU histogram at @key of @fd, summed; -ENOENT: no such key (no sample yet). */
static int percpu_hist(int fd, const void *key, struct pl_tcp_hist *out)
{
	int ncpu = libbpf_num_possible_cpus(), err = 0;
	struct pl_tcp_hist *v;

	if (ncpu <= 0)
		return -EINVAL;
	err = pl_map_sized(fd, true, 0, sizeof(*v));
	if (err)
		return err;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, v))
		err = -errno;
	else
		hist_sum(out, v, ncpu);
	free(v);
	return err;
}

int pl_tcp_connlat(const struct pl_tcp *t, struct pl_tcp_hist *out)
{
	__u32 zero = 0;

	return percpu_hist(bpf_map__fd(t->skel->maps.connlat_hist), &zero, out);
}

int pl_tcp_pin(struct pl_tcp *t, const char *dir, char *why, size_t whylen)
{
	struct bpf_link *links[] = { t->skel->links.pl_tcp_retransmit ?:
				     t->skel->links.pl_tcp_retransmit_noerr,
				     t->skel->links.pl_tcp_retransmit_synack,
				     t->skel->links.pl_tcp_rtt, t->skel->links.pl_tcp_state };
	struct bpf_map *maps[] = { t->skel->maps.conn_retrans, t->skel->maps.rtt_hist,
				   t->skel->maps.connlat_hist, t->skel->maps.rtx_total };
	char path[640];
	int err;

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (!links[i])
			continue;	/* not loaded */
		snprintf(path, sizeof(path), "%s/%s", dir, link_pins[i]);
		err = bpf_link__pin(links[i], path);
		if (err)
			return pl_why(why, whylen, err, "cannot pin %s: %s", path, strerror(-err));
		bpf_link__disconnect(links[i]);	/* the pin keeps it attached */
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_pins[i]);
		err = bpf_map__pin(maps[i], path);
		if (err)
			return pl_why(why, whylen, err, "cannot pin %s: %s", path, strerror(-err));
	}
	return 0;
}

/* A new set, pinned in @dir: pl_probe_set_pin()'s load */
static int load_quiet(__u64 netns, const char *dir, const char *carry, char *why, size_t whylen)
{
	struct pl_tcp_cfg cfg = { .flags = PL_TCP_CFG_QUIET, .netns = netns };
	struct pl_tcp *t = NULL;
	int err;

	err = open_tcp(PL_TCP_P_RETRANS | PL_TCP_P_RTT | PL_TCP_P_CONNLAT, &cfg, carry, NULL, NULL,
		       &t, why, whylen);
	if (!err)
		err = pl_tcp_pin(t, dir, why, whylen);
	pl_tcp_close(t);
	return err;
}

int pl_tcp_pin_quiet(__u64 netns, const char *dir, const char *carry, char *why,
		     size_t whylen)
{
	/* a re-attach pins the running probes of the one it replaces (probes/probeset.h) */
	return pl_probe_set_pin(&pl_tcp_pins, netns, dir, carry, load_quiet, why, whylen);
}

int pl_tcp_pinned_hist(const char *dir, const char *name, struct pl_tcp_hist *out)
{
	struct pl_tcp_hist_key zero = { 0 };
	__u32 key0 = 0;
	int fd = pl_pin_open(dir, name), err;

	if (fd < 0)
		return -errno;
	/* rtt_hist is keyed by pl_tcp_hist_key (all zero without --by), connlat_hist by u32 0 */
	err = percpu_hist(fd, strcmp(name, PL_PIN_TCP_RTT_HIST) ? (void *)&key0 : (void *)&zero, out);
	if (err == -ENOENT) {
		memset(out, 0, sizeof(*out));	/* no sample yet */
		err = 0;
	}
	close(fd);
	return err;
}

int pl_tcp_pinned_rtx(const char *dir, __u64 *segs)
{
	int fd = pl_pin_open(dir, PL_PIN_TCP_RTX_TOTAL), err;

	*segs = 0;
	if (fd >= 0) {
		err = percpu_u64(fd, segs);
		close(fd);
		return err;
	}
	if (errno != ENOENT)
		return -errno;
	/* an attachment made before rtx_total: what its connections hold */
	fd = pl_pin_open(dir, PL_MAP_CONN_RETRANS);
	if (fd < 0)
		return -errno;
	err = pl_map_walk(fd, sizeof(struct pl_tcp_tuple), sizeof(struct pl_tcp_conn), false,
			  add_conn_segs, segs);
	close(fd);
	return err;
}

int pl_tcp_conn_lookup(int fd, const struct pl_tcp_tuple *tuple, struct pl_tcp_conn *out)
{
	return bpf_map_lookup_elem(fd, tuple, out) ? -errno : 0;
}

void pl_tcp_close(struct pl_tcp *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	pktlens_tcp__destroy(t->skel);	/* detaches: the probes live as long as we do */
	free(t);
}

int pl_netns_of(const char *s, __u64 *ino)
{
	char path[4096];
	struct stat st;
	int fd, err = pl_netns_resolve(s, path, sizeof(path));

	if (err)
		return err;
	s = path;
	fd = pl_netns_open_file(s);
	if (fd == -EACCES || fd == -EPERM) {
		char link[64] = "";

		/* a process we may not open: its /proc/PID/ns/net link says what it is */
		if (readlink(s, link, sizeof(link) - 1) < 0)
			return -errno;
		if (strncmp(link, "net:[", 5))
			return -EINVAL;
		return stat(s, &st) ? -errno : (*ino = st.st_ino, 0);
	}
	if (fd < 0)
		return fd;
	err = fstat(fd, &st) ? -errno : 0;
	close(fd);
	if (!err)
		*ino = st.st_ino;
	return err;
}

int pl_netns_opt(const char *arg, void *field, char *why, size_t whylen)
{
	int err;

	/* one namespace: a second --netns would silently replace the first */
	if (*(__u64 *)field) {
		snprintf(why, whylen, "--netns given twice (one namespace only)");
		return -EINVAL;
	}
	err = pl_netns_of(arg, field);

	if (err)
		snprintf(why, whylen, "%s", err == -EINVAL ? "not a network namespace" : strerror(-err));
	return err;
}

double pl_hist_percentile(const struct pl_tcp_hist *h, double pct)
{
	uint64_t total = 0, seen = 0;
	double want;

	for (int i = 0; i < PL_TCP_HIST_SLOTS; i++)
		total += h->slot[i];
	if (!total)
		return 0;
	want = total * pct / 100.0;
	for (int i = 0; i < PL_TCP_HIST_SLOTS; i++) {
		/*
		 * whole microseconds: slot i holds lo..hi, as its label says; up to
		 * 2^(i+1) would reach the next slot, which may hold no sample at all
		 */
		double lo = i ? (double)(1ULL << i) : 0, hi = (double)((2ULL << i) - 1);

		if (seen + h->slot[i] >= want && h->slot[i]) {
			double v = lo + (hi - lo) * (want - seen) / h->slot[i];

			return v > (double)h->max_us ? (double)h->max_us : v;
		}
		seen += h->slot[i];
	}
	return (double)h->max_us;
}
