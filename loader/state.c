// SPDX-License-Identifier: GPL-2.0
/* Reading the pinned state back: per-CPU sums and the merged flow table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"

#define BATCH 4096

int pl_pin_open(const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

void pl_state_close(struct pl_state *st)
{
	int *fds[] = { &st->stats_fd, &st->flows_fd, &st->cache_fd, &st->meta_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int pl_state_open(const char *dir, struct pl_state *st)
{
	int err = 0;

	memset(st, 0, sizeof(*st));
	st->stats_fd = pl_pin_open(dir, PL_MAP_STATS);
	st->flows_fd = pl_pin_open(dir, PL_MAP_FLOWS);
	st->cache_fd = pl_pin_open(dir, PL_MAP_FLOW_CACHE);
	st->meta_fd = pl_pin_open(dir, PL_MAP_META);
	if (st->stats_fd < 0 || st->flows_fd < 0 || st->cache_fd < 0 || st->meta_fd < 0)
		err = -errno;
	else
		err = pl_meta_read(st->meta_fd, &st->meta);
	if (err)
		pl_state_close(st);
	return err;
}

int pl_map_first_key(int fd, void *key)
{
	/* not a tail call: valgrind must see this frame to know the NULL key */
	int err = bpf_map_get_next_key(fd, NULL, key);

	return err ? -errno : 0;
}

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

int pl_state_stats(const struct pl_state *st, struct pl_stats out[PL_SLOT_MAX])
{
	int n = ncpus();
	struct pl_stats *v = calloc(n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	memset(out, 0, sizeof(*out) * PL_SLOT_MAX);
	for (__u32 slot = 0; slot < PL_SLOT_MAX; slot++) {
		if (bpf_map_lookup_elem(st->stats_fd, &slot, v)) {
			int err = -errno;

			free(v);
			return err;
		}
		for (int c = 0; c < n; c++) {
			__u64 *dst = (__u64 *)&out[slot];
			const __u64 *src = (const __u64 *)&v[c];

			for (size_t w = 0; w < sizeof(*v) / sizeof(__u64); w++)
				dst[w] += src[w];
		}
	}
	free(v);
	return 0;
}

void pl_flow_val_merge(struct pl_flow_val *v, const struct pl_flow_val *d)
{
	if (!d->packets)
		return;
	if (!v->packets || d->first_ns < v->first_ns)
		v->first_ns = d->first_ns;
	if (d->last_ns > v->last_ns)
		v->last_ns = d->last_ns;
	v->packets += d->packets;
	v->bytes += d->bytes;
	v->tcp_flags |= d->tcp_flags;
}

struct flow_vec {
	struct pl_flow *v;
	size_t n, cap;
};

static int vec_push(struct flow_vec *fv, const struct pl_flow_key *k, const struct pl_flow_val *val)
{
	if (fv->n == fv->cap) {
		size_t cap = fv->cap ? fv->cap * 2 : 1024;
		struct pl_flow *p = realloc(fv->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		fv->v = p;
		fv->cap = cap;
	}
	fv->v[fv->n].key = *k;
	fv->v[fv->n].val = *val;
	fv->n++;
	return 0;
}

/*
 * Walk a per-CPU map in batches; call @cb for each key with its per-CPU
 * values (ncpu consecutive values of @vsize bytes).
 */
static int percpu_walk(int fd, size_t ksize, size_t vsize,
		       int (*cb)(const void *key, const void *vals, int ncpu, void *ctx), void *ctx)
{
	int n = ncpus(), err = 0;
	__u32 count;
	void *keys, *vals;
	bool first = true;
	char out_batch[64] = {};

	/*
	 * Zeroed, not just allocated: BPF_MAP_LOOKUP_BATCH fills them in the
	 * kernel, which memory checkers such as valgrind (3.19 does not know
	 * the command) cannot see, so they would take every key and value
	 * read back for uninitialised.
	 */
	keys = calloc(BATCH, ksize);
	vals = calloc((size_t)n * BATCH, vsize);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : out_batch, out_batch, keys, vals,
					   &count, NULL);
		if (err && errno != ENOENT) {
			err = -errno;
			goto out;
		}
		for (__u32 i = 0; i < count; i++) {
			int e = cb((char *)keys + i * ksize, (char *)vals + i * vsize * n, n, ctx);

			if (e) {
				err = e;
				goto out;
			}
		}
		if (err) {	/* ENOENT: that was the last batch */
			err = 0;
			break;
		}
		first = false;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int table_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	const struct pl_flow_val *v = vals;
	struct pl_flow_val sum = {};

	for (int c = 0; c < ncpu; c++)
		pl_flow_val_merge(&sum, &v[c]);
	if (!sum.packets)
		return 0;
	return vec_push(ctx, key, &sum);
}

static int cache_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	const struct pl_flow_slot *s = vals;
	int err;

	(void)key;
	for (int c = 0; c < ncpu; c++) {
		if (!s[c].key.ifindex || !s[c].val.packets)
			continue;
		err = vec_push(ctx, &s[c].key, &s[c].val);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(&((const struct pl_flow *)a)->key, &((const struct pl_flow *)b)->key,
		      sizeof(struct pl_flow_key));
}

int pl_state_flows(const struct pl_state *st, struct pl_flow **out, size_t *n)
{
	struct flow_vec fv = {};
	size_t i, j;
	int err;

	*out = NULL;
	*n = 0;
	err = percpu_walk(st->flows_fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val),
			  table_cb, &fv);
	if (!err)
		err = percpu_walk(st->cache_fd, sizeof(__u32), sizeof(struct pl_flow_slot),
				  cache_cb, &fv);
	if (err) {
		free(fv.v);
		return err;
	}
	if (fv.n > 1)
		qsort(fv.v, fv.n, sizeof(*fv.v), cmp_key);
	for (i = 0, j = 0; i < fv.n; i++) {
		if (j && !memcmp(&fv.v[j - 1].key, &fv.v[i].key, sizeof(fv.v[i].key)))
			pl_flow_val_merge(&fv.v[j - 1].val, &fv.v[i].val);
		else
			fv.v[j++] = fv.v[i];
	}
	*out = fv.v;
	*n = j;
	return 0;
}

static int count_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	(void)key, (void)vals, (void)ncpu;
	(*(size_t *)ctx)++;
	return 0;
}

int pl_state_flow_count(const struct pl_state *st, size_t *n)
{
	*n = 0;
	return percpu_walk(st->flows_fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val),
			   count_cb, n);
}

static int zero_array(int fd, __u32 entries, size_t vsize)
{
	void *zero = calloc(ncpus(), vsize);
	int err = 0;

	if (!zero)
		return -ENOMEM;
	for (__u32 i = 0; i < entries && !err; i++)
		if (bpf_map_update_elem(fd, &i, zero, BPF_ANY))
			err = -errno;
	free(zero);
	return err;
}

int pl_state_reset(const struct pl_state *st)
{
	struct pl_flow_key key, next;
	int err;

	err = zero_array(st->stats_fd, PL_SLOT_MAX, sizeof(struct pl_stats));
	if (!err)
		err = zero_array(st->cache_fd, PL_FLOW_CACHE_SLOTS, sizeof(struct pl_flow_slot));
	if (err)
		return err;
	/* Restarting from NULL after each delete keeps the walk valid. */
	while (!pl_map_first_key(st->flows_fd, &next)) {
		key = next;
		if (bpf_map_delete_elem(st->flows_fd, &key) && errno != ENOENT)
			return -errno;
	}
	return 0;
}
