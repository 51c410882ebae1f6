// SPDX-License-Identifier: GPL-2.0
/*
 * Reading the pinned state back: per-CPU sums and the merged flow table,
 * less what the last `stats --reset` left as the base.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>
#include <pktlens/clock.h>

#include "batch.h"
#include "loader.h"
#include "../cli/util.h"

#define BATCH 4096

int pl_pin_open(const char *dir, const char *name)
{
	const struct pl_map_def *d = pl_map_find(name);
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd >= 0 && d && !pl_map_fits(fd, d)) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

static bool type_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

int pl_map_sized(int fd, bool percpu, size_t ksize, size_t vsize)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	return type_percpu(info.type) != percpu || (ksize && info.key_size != ksize) ||
	       info.value_size != vsize ? -EPROTO : 0;
}

int pl_pin_link_open(const char *dir, const char *name, struct bpf_link_info *li)
{
	__u32 len = sizeof(*li);
	int fd = pl_pin_open(dir, name);

	memset(li, 0, sizeof(*li));
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, li, &len)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int pl_pin_replace(int fd, const char *dir, const char *name)
{
	char tmp[1024], path[1024];
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s/" PL_PIN_TMP_PREFIX "%s", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(tmp);	/* left by a change that was killed */
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
	}
	return err;
}

void pl_state_close(struct pl_state *st)
{
	int *fds[] = { &st->stats_fd, &st->flows_fd, &st->cache_fd, &st->meta_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	free(st->fbase);
	st->fbase = NULL;
	st->nfbase = 0;
}

static int flow_key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct pl_flow *)a)->key, &((const struct pl_flow *)b)->key,
		      sizeof(struct pl_flow_key));
}

static int read_bases(struct pl_state *st, const char *dir);

/*
 * Return once every BPF program running now has returned: the kernel waits
 * for an RCU grace period after an update of a map-in-map
 * (maybe_wait_bpf_programs(), Linux 4.20), and XDP and tc programs run in
 * RCU read-side sections. A throwaway pair of maps is the cheapest way to
 * ask for one.
 */
static int bpf_quiesce(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	int inner, outer, err = 0;
	__u32 key = 0;

	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, sizeof(__u32), sizeof(__u32), 1, NULL);
	if (inner < 0)
		return -errno;
	o.inner_map_fd = inner;
	outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, NULL, sizeof(__u32), sizeof(__u32), 1, &o);
	if (outer < 0 || bpf_map_update_elem(outer, &key, &inner, BPF_ANY))
		err = -errno;
	if (outer >= 0)
		close(outer);
	close(inner);
	return err;
}

/* A hold lasts until its reader lets go, or this long after it began at most. */
#define PL_CACHE_HOLD_NS (60ULL * 1000000000ULL)

struct cache_hold {
	int fd;			/* flow_ctl, -1: none (not pinned, or made before it) */
	__u64 until;		/* ours */
};

/*
 * Hold the flow caches still (struct pl_flow_ctl) for a reading of caches
 * and table: no cached delta moves into the table meanwhile, so the two
 * readings agree. Readers at once share the latest deadline; the last to
 * finish lets go (one that finishes while a later one reads leaves its
 * deadline in place).
 */
static int hold_set(const char *dir, struct cache_hold *h)
{
	struct pl_flow_ctl cur = {}, mine;
	__u32 zero = 0;

	h->fd = dir[0] ? pl_pin_open(dir, PL_MAP_FLOW_CTL) : -1;
	if (h->fd < 0)
		return 0;
	h->until = pl_mono_ns() + PL_CACHE_HOLD_NS;
	mine.hold_until_ns = h->until;
	if (!bpf_map_lookup_elem(h->fd, &zero, &cur) && cur.hold_until_ns > h->until)
		mine = cur;
	if (bpf_map_update_elem(h->fd, &zero, &mine, BPF_ANY))
		return -errno;
	return 1;
}

static int hold_begin(const struct pl_state *st, struct cache_hold *h)
{
	int err = hold_set(st->dir, h);

	return err > 0 ? bpf_quiesce() : err;
}

static void hold_end(struct cache_hold *h)
{
	struct pl_flow_ctl cur = {}, none = {};
	__u32 zero = 0;

	if (h->fd < 0)
		return;
	if (!bpf_map_lookup_elem(h->fd, &zero, &cur) && cur.hold_until_ns == h->until)
		bpf_map_update_elem(h->fd, &zero, &none, BPF_ANY);
	close(h->fd);
	h->fd = -1;
}

bool pl_holds_begin(struct pl_holds *hs, const struct pl_attachment *a, size_t n)
{
	bool set = false;

	hs->n = 0;
	hs->h = calloc(n ? n : 1, sizeof(*hs->h));
	if (!hs->h)
		return false;	/* none held: each reading holds its own */
	for (size_t i = 0; i < n; i++) {
		int err = hold_set(a[i].meta_ok ? a[i].dir : "", &hs->h[i]);

		if (err < 0)	/* not held: its reading holds (or not) by itself */
			hold_end(&hs->h[i]);
		set |= err > 0;
	}
	hs->n = n;
	if (set && bpf_quiesce()) {
		pl_holds_end(hs);	/* the wait failed: each reading waits for itself */
		return false;
	}
	return true;
}

void pl_holds_end(struct pl_holds *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		hold_end(&hs->h[i]);
	free(hs->h);
	hs->h = NULL;
	hs->n = 0;
}

int pl_state_open(const char *dir, struct pl_state *st)
{
	int err = 0;

	memset(st, 0, sizeof(*st));
	snprintf(st->dir, sizeof(st->dir), "%s", dir);
	st->stats_fd = pl_pin_open(dir, PL_MAP_STATS);
	st->flows_fd = pl_pin_open(dir, PL_MAP_FLOWS);
	st->cache_fd = pl_pin_open(dir, PL_MAP_FLOW_CACHE);
	st->meta_fd = pl_pin_open(dir, PL_MAP_META);
	if (st->stats_fd < 0 || st->flows_fd < 0 || st->cache_fd < 0 || st->meta_fd < 0)
		err = -errno;
	else
		err = pl_meta_read(st->meta_fd, &st->meta);
	if (!err)
		err = read_bases(st, dir);
	if (!err) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(st->stats_fd, &info, &len))
			err = -errno;
		st->stats_id = info.id;
	}
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

/* The kernel's counters as they are, summed over CPUs. */
static int stats_raw(const struct pl_state *st, struct pl_stats out[PL_SLOT_MAX])
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

/* @a - @b, counter by counter (modulo 2^64: a base may also add). */
static void stats_sub(struct pl_stats *a, const struct pl_stats *b)
{
	__u64 *x = (__u64 *)a;
	const __u64 *y = (const __u64 *)b;

	for (size_t w = 0; w < sizeof(*a) / sizeof(__u64); w++)
		x[w] -= y[w];
}

/* @a + @b, counter by counter. */
static void stats_add(struct pl_stats *a, const struct pl_stats *b)
{
	__u64 *x = (__u64 *)a;
	const __u64 *y = (const __u64 *)b;

	for (size_t w = 0; w < sizeof(*a) / sizeof(__u64); w++)
		x[w] += y[w];
}

int pl_state_stats(const struct pl_state *st, struct pl_stats out[PL_SLOT_MAX])
{
	int err = stats_raw(st, out);

	for (int sl = 0; !err && sl < PL_SLOT_MAX; sl++)
		stats_sub(&out[sl], &st->base[sl]);
	return err;
}

/*
 * @f less its base, if it has one (what the caches held at the last reset);
 * false when nothing is left: no packet of it came since.
 */
static bool since_reset(const struct pl_state *st, struct pl_flow *f)
{
	const struct pl_flow *b;

	if (!f->val.packets)
		return false;
	b = pl_bsearch(f, st->fbase, st->nfbase, sizeof(*b), flow_key_cmp);
	if (!b)
		return true;
	if (f->val.packets <= b->val.packets)
		return false;
	f->val.packets -= b->val.packets;
	f->val.bytes = f->val.bytes > b->val.bytes ? f->val.bytes - b->val.bytes : 0;
	if (f->val.first_ns < b->val.first_ns)
		f->val.first_ns = b->val.first_ns;	/* the time of the reset */
	if (f->val.last_ns < f->val.first_ns)
		f->val.last_ns = f->val.first_ns;	/* a cache's time, rounded down */
	return true;
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

bool pl_flow_val_afresh(const struct pl_flow_val *then, const struct pl_flow_val *now)
{
	/* a flow that lives on keeps its first packet: the earliest of what it merges */
	return now->packets < then->packets || now->bytes < then->bytes ||
	       now->first_ns > then->last_ns;
}

struct flow_vec {
	struct pl_flow *v;
	size_t n, cap;
};

static int vec_push(struct flow_vec *fv, const struct pl_flow_key *k, const struct pl_flow_val *val)
{
	struct pl_flow *p = pl_grown(fv->v, &fv->cap, fv->n, sizeof(*p), 1024);

	if (!p)
		return -ENOMEM;
	fv->v = p;
	fv->v[fv->n].key = *k;
	fv->v[fv->n].val = *val;
	fv->n++;
	return 0;
}

/*
 * Walk a map in batches (BPF_MAP_LOOKUP_BATCH, or with @del
 * BPF_MAP_LOOKUP_AND_DELETE_BATCH); call @cb, if any, for each key with its
 * values (for a per-CPU map ncpu consecutive values of @vsize bytes, else
 * one). A hash table costs one syscall per BATCH entries instead of two per
 * entry (get_next_key + lookup); one bucket lock per bucket remains, about
 * half a microsecond per entry here.
 */
static int batch_walk(int fd, size_t ksize, size_t vsize, bool percpu, bool del, pl_walk_fn cb,
		      void *ctx)
{
	int n = percpu ? ncpus() : 1, err = 0;
	__u32 count;
	void *keys, *vals;
	bool first = true;
	char out_batch[PL_BATCH_TOKEN] = {};

	/*
	 * Zeroed, not just allocated: BPF_MAP_LOOKUP_BATCH fills them in the
	 * kernel, which memory checkers such as valgrind (3.19 does not know
	 * the command) cannot see, so they would take every key and value
	 * read back for uninitialised.
	 */
	err = pl_map_sized(fd, percpu, ksize, vsize);
	if (err)
		return err;
	keys = calloc(BATCH, ksize);
	vals = calloc((size_t)n * BATCH, vsize);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		count = BATCH;
		err = pl_batch_lookup(fd, first ? NULL : out_batch, out_batch, keys, ksize, vals,
					  (size_t)n * vsize, &count, del);
		if (err && errno != ENOENT) {
			err = -errno;
			goto out;
		}
		for (__u32 i = 0; cb && i < count; i++) {
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

static int percpu_walk(int fd, size_t ksize, size_t vsize, pl_walk_fn cb, void *ctx)
{
	return batch_walk(fd, ksize, vsize, true, false, cb, ctx);
}

int pl_map_walk(int fd, size_t ksize, size_t vsize, bool percpu, pl_walk_fn cb, void *ctx)
{
	return batch_walk(fd, ksize, vsize, percpu, false, cb, ctx);
}

/* The flow cache of an attachment made before the line-sized slots: a PERCPU_ARRAY. */
static int cache_v1_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	const struct pl_flow_slot_v1 *s = vals;
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

/* A slot's time (2^PL_FLOW_TSHIFT ns units, 32 bits) in ns: the latest such time not after @now. */
static __u64 slot_ns(__u32 t, __u64 now)
{
	__u32 back = (__u32)(now >> PL_FLOW_TSHIFT) - t;

	return ((now >> PL_FLOW_TSHIFT) - back) << PL_FLOW_TSHIFT;
}

/*
 * Whether slot time @t is after @now: a packet stamped it after @now was
 * read (the walk takes a while under traffic). slot_ns() would take it for
 * 2^32 units (208 days) earlier: last seen before first seen, lifetimes of
 * 10^10 s, rates of nothing.
 */
static bool slot_after(__u32 t, __u64 now)
{
	return (__s32)((__u32)(now >> PL_FLOW_TSHIFT) - t) < 0;
}

/*
 * Every slot of flow cache @fd that holds packets, as flows (bpf/flow.h),
 * into @out, a slot at a time; with @cpus,
 * the CPU of each (whose region holds the slot) into *@cpus, left NULL for
 * a cache of the old layout.
 */
static int cache_walk(int fd, struct flow_vec *out, __u32 **cpus)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	const struct pl_flow_slot *s;
	size_t size, region, cap = 0;
	__u64 now;
	int err = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type == BPF_MAP_TYPE_PERCPU_ARRAY && info.value_size == sizeof(struct pl_flow_slot_v1))
		return percpu_walk(fd, sizeof(__u32), sizeof(struct pl_flow_slot_v1), cache_v1_cb, out);
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(*s))
		return -EPROTO;
	/* the map is mmapable: read the slots in place, no copy of the whole cache */
	size = (size_t)info.max_entries * sizeof(*s);
	region = info.max_entries / (size_t)ncpus();
	s = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		return -errno;
	now = pl_mono_ns();
	for (size_t i = 0; i < info.max_entries && !err; i++) {
		struct pl_flow_slot c = s[i];	/* one read: the program may be changing it */
		struct pl_flow_val v;

		/* and c is that read: the compiler may not read the slot again for its fields */
		__asm__ __volatile__("" ::: "memory");

		if (!c.key.ifindex || !c.packets)
			continue;
		/* stamped since the clock was read: read it again, now after the stamps */
		if (slot_after(c.first, now) || slot_after(c.last, now))
			now = pl_mono_ns();
		v = (struct pl_flow_val){
			.packets = c.packets,
			.bytes = c.bytes,
			.first_ns = slot_ns(c.first, now),
			.last_ns = slot_ns(c.last, now),
			.tcp_flags = c.key.pad,
		};
		c.key.pad = 0;
		err = vec_push(out, &c.key, &v);
		if (!err && cpus && out->n > cap) {
			__u32 *p = realloc(*cpus, out->n * 2 * sizeof(**cpus));

			if (!p)
				err = -ENOMEM;
			else
				*cpus = p, cap = out->n * 2;
		}
		if (!err && cpus)
			(*cpus)[out->n - 1] = (__u32)(region ? i / region : 0);
	}
	munmap((void *)s, size);
	return err;
}

/*
 * The flows of the per-CPU caches, merged by key, with an open-addressing
 * index: a table entry finds its cached delta in O(1), so merging cache and
 * table costs one pass over the table and no sort.
 */
struct cache_set {
	struct flow_vec fv;	/* merged cache flows */
	bool *seen;		/* fv.v[i] was merged into a table entry */
	__u32 *idx;		/* 1 + index into fv.v, 0: empty */
	size_t mask;
	/* cache_set_read(..., true): the slots as read, before the merge, and their CPUs */
	struct flow_vec slots;
	__u32 *cpu;		/* NULL: a cache of the old layout */
};

static size_t key_hash(const struct pl_flow_key *k)
{
	__u64 h = pl_flow_key_mix(k);	/* the programs' hash: low bits index here */

	return (size_t)(h ^ (h >> 29));
}

/* The index slot holding @k, or the empty slot where it belongs. */
static __u32 *cache_slot(const struct cache_set *cs, const struct pl_flow_key *k)
{
	for (size_t i = key_hash(k) & cs->mask;; i = (i + 1) & cs->mask) {
		__u32 *e = &cs->idx[i];

		if (!*e || !memcmp(&cs->fv.v[*e - 1].key, k, sizeof(*k)))
			return e;
	}
}

static void cache_set_free(struct cache_set *cs)
{
	free(cs->fv.v);
	free(cs->seen);
	free(cs->idx);
	free(cs->slots.v);
	free(cs->cpu);
	memset(cs, 0, sizeof(*cs));
}

/* @slots: the slots as read too (struct cache_set) */
static int cache_set_read(const struct pl_state *st, struct cache_set *cs, bool slots)
{
	struct flow_vec all = {};
	size_t size = 16;
	int err;

	memset(cs, 0, sizeof(*cs));
	err = cache_walk(st->cache_fd, &all, slots ? &cs->cpu : NULL);
	if (!err && slots && all.n) {
		cs->slots.v = malloc(all.n * sizeof(*all.v));
		if (!cs->slots.v)
			err = -ENOMEM;
		else
			memcpy(cs->slots.v, all.v, all.n * sizeof(*all.v));
		cs->slots.n = all.n;
	}
	if (err)
		goto fail;
	while (size < 2 * all.n)
		size *= 2;
	cs->mask = size - 1;
	cs->idx = calloc(size, sizeof(*cs->idx));
	cs->seen = calloc(all.n ? all.n : 1, sizeof(*cs->seen));
	if (!cs->idx || !cs->seen) {
		err = -ENOMEM;
		goto fail;
	}
	/* the same flow can sit in several CPUs' caches: one entry, summed */
	cs->fv = all;
	cs->fv.n = 0;
	for (size_t i = 0; i < all.n; i++) {
		__u32 *e = cache_slot(cs, &all.v[i].key);

		if (*e) {
			pl_flow_val_merge(&cs->fv.v[*e - 1].val, &all.v[i].val);
			continue;
		}
		cs->fv.v[cs->fv.n] = all.v[i];	/* compacts in place: fv.n <= i */
		*e = (__u32)++cs->fv.n;
	}
	return 0;
fail:
	free(all.v);
	free(cs->seen);
	free(cs->idx);
	free(cs->slots.v);
	free(cs->cpu);
	memset(cs, 0, sizeof(*cs));
	return err;
}

/* Add the cached delta of @f's flow, if any, to @f. */
static void cache_merge(struct cache_set *cs, struct pl_flow *f)
{
	__u32 *e;

	if (!cs->fv.n)
		return;
	e = cache_slot(cs, &f->key);
	if (*e) {
		pl_flow_val_merge(&f->val, &cs->fv.v[*e - 1].val);
		cs->seen[*e - 1] = true;
	}
}

struct table_walk {
	const struct pl_state *st;
	struct flow_vec fv;	/* pl_state_flows: everything */
	struct cache_set *cs;	/* pl_state_flows_each: merged on the way */
	pl_flow_fn fn;
	void *ctx;
	size_t entries;
};

static int table_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	struct table_walk *tw = ctx;
	const struct pl_flow_val *v = vals;
	struct pl_flow f = { .key = *(const struct pl_flow_key *)key };

	tw->entries++;
	for (int c = 0; c < ncpu; c++)
		pl_flow_val_merge(&f.val, &v[c]);
	if (!tw->cs)	/* pl_state_flows: merged with the cache and based later */
		return vec_push(&tw->fv, &f.key, &f.val);
	cache_merge(tw->cs, &f);
	return since_reset(tw->st, &f) ? tw->fn(&f, tw->ctx) : 0;
}

int pl_state_flows(const struct pl_state *st, struct pl_flow **out, size_t *n)
{
	struct table_walk tw = { .st = st };
	struct cache_hold h;
	struct cache_set cs;
	size_t kept = 0;
	int err;

	*out = NULL;
	*n = 0;
	/*
	 * The table first, then the cache, held still (hold_begin()). Without
	 * a hold (attachments made before flow_ctl, or it failed) a delta the
	 * program folds from a cache slot into the table in between is missed
	 * once (it shows next time), never counted twice, so successive
	 * readings never shrink.
	 */
	h.fd = -1;
	if (!st->held && hold_begin(st, &h))
		hold_end(&h);
	err = percpu_walk(st->flows_fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val),
			  table_cb, &tw);
	if (!err)
		err = cache_set_read(st, &cs, false);
	hold_end(&h);
	if (err) {
		free(tw.fv.v);
		return err;
	}
	for (size_t i = 0; i < tw.fv.n; i++) {
		cache_merge(&cs, &tw.fv.v[i]);
		if (since_reset(st, &tw.fv.v[i]))
			tw.fv.v[kept++] = tw.fv.v[i];
	}
	tw.fv.n = kept;
	for (size_t i = 0; i < cs.fv.n && !err; i++)
		if (!cs.seen[i] && since_reset(st, &cs.fv.v[i]))	/* not (or no longer) in the table */
			err = vec_push(&tw.fv, &cs.fv.v[i].key, &cs.fv.v[i].val);
	cache_set_free(&cs);
	if (err) {
		free(tw.fv.v);
		return err;
	}
	*out = tw.fv.v;
	*n = tw.fv.n;
	return 0;
}

int pl_state_flows_each(const struct pl_state *st, pl_flow_fn fn, void *ctx, size_t *entries)
{
	struct table_walk tw = { .st = st, .fn = fn, .ctx = ctx };
	struct cache_hold h;
	struct cache_set cs;
	int err;

	if (entries)
		*entries = 0;
	/*
	 * The cache first, so the table streams by without being kept, both
	 * held still (hold_begin()). Without a hold a delta folded into the
	 * table meanwhile is counted twice in this reading (see
	 * pl_state_flows() for the other trade-off).
	 */
	h.fd = -1;
	if (!st->held && hold_begin(st, &h))
		hold_end(&h);
	err = cache_set_read(st, &cs, false);
	if (err) {
		hold_end(&h);
		return err;
	}
	tw.cs = &cs;
	err = percpu_walk(st->flows_fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val),
			  table_cb, &tw);
	hold_end(&h);
	for (size_t i = 0; i < cs.fv.n && !err; i++)
		if (!cs.seen[i] && since_reset(st, &cs.fv.v[i]))
			err = fn(&cs.fv.v[i], ctx);
	cache_set_free(&cs);
	if (!err && entries)
		*entries = tw.entries;
	return err;
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

static int live_cb(const struct pl_flow *f, void *ctx)
{
	(void)f;
	(*(size_t *)ctx)++;
	return 0;
}

int pl_state_flow_live(const struct pl_state *st, size_t *n)
{
	*n = 0;
	return pl_state_flows_each(st, live_cb, n, NULL);
}

/* ---- bases: what a reset leaves for readers to subtract ---- */

static int fbase_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	(void)ncpu;
	return vec_push(ctx, key, vals);
}

static int read_bases(struct pl_state *st, const char *dir)
{
	struct flow_vec fv = {};
	int fd, err = 0;

	fd = pl_pin_open(dir, PL_MAP_STATS_BASE);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* never reset */
	err = pl_map_sized(fd, false, sizeof(__u32), sizeof(st->base[0]));
	for (__u32 slot = 0; slot < PL_SLOT_MAX && !err; slot++)
		if (bpf_map_lookup_elem(fd, &slot, &st->base[slot]))
			err = -errno;
	close(fd);
	if (err)
		return err;
	fd = pl_pin_open(dir, PL_MAP_FLOWS_BASE);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = batch_walk(fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val), false, false,
			 fbase_cb, &fv);
	close(fd);
	if (err) {
		free(fv.v);
		return err;
	}
	pl_qsort(fv.v, fv.n, sizeof(*fv.v), flow_key_cmp);
	st->fbase = fv.v;
	st->nfbase = fv.n;
	return 0;
}

int pl_state_base_pin(const char *dir, const struct pl_stats base[PL_SLOT_MAX],
		      const struct pl_flow *fbase, size_t nfbase)
{
	char path[1024];
	int fd, err = 0;

	/* the flows' base first: a reader between the two renames sees flows no larger */
	if (nfbase) {
		fd = bpf_map_create(BPF_MAP_TYPE_HASH, "pl_flows_base", sizeof(struct pl_flow_key),
				    sizeof(struct pl_flow_val), (__u32)nfbase, NULL);
		if (fd < 0)
			return -errno;
		for (size_t i = 0; i < nfbase && !err; i++)
			if (bpf_map_update_elem(fd, &fbase[i].key, &fbase[i].val, BPF_NOEXIST))
				err = -errno;
		err = err ?: pl_pin_replace(fd, dir, PL_MAP_FLOWS_BASE);
		close(fd);
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, PL_MAP_FLOWS_BASE);
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	if (err)
		return err;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pl_stats_base", sizeof(__u32),
			    sizeof(struct pl_stats), PL_SLOT_MAX, NULL);
	if (fd < 0)
		return -errno;
	for (__u32 slot = 0; slot < PL_SLOT_MAX && !err; slot++)
		if (bpf_map_update_elem(fd, &slot, &base[slot], BPF_ANY))
			err = -errno;
	err = err ?: pl_pin_replace(fd, dir, PL_MAP_STATS_BASE);
	close(fd);
	return err;
}

/* Packets and bytes of flow records per stats slot. */
struct flow_sums {
	__s64 pkts[PL_SLOT_MAX];
	__s64 bytes[PL_SLOT_MAX];
};

static void sums_add(struct flow_sums *s, const struct pl_flow_key *k, const struct pl_flow_val *v,
		     int sign)
{
	int sl = pl_flow_slot(k);

	s->pkts[sl] += sign * (__s64)v->packets;
	s->bytes[sl] += sign * (__s64)v->bytes;
}

struct removed {
	struct flow_sums gone;	/* per stats slot */
	struct flow_vec fv;	/* per flow, summed over CPUs */
};

static int removed_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	const struct pl_flow_val *v = vals;
	struct removed *r = ctx;
	struct pl_flow_val sum = {};

	for (int c = 0; c < ncpu; c++) {
		sums_add(&r->gone, key, &v[c], 1);
		pl_flow_val_merge(&sum, &v[c]);
	}
	return vec_push(&r->fv, key, &sum);
}

/*
 * The flows a reset took away, as readers showed them just before: the
 * table's entries it deleted with the cached deltas, less the old base.
 * Logged for the IPFIX exporter (loader/gone.c).
 */
static void log_removed(const struct pl_state *st, struct flow_vec *fv, struct cache_set *cs,
			__u64 *first)
{
	size_t kept = 0;

	/* the cached flows' own first packets, not the reset's time their base takes */
	for (size_t i = 0; first && i < cs->fv.n; i++) {
		__u64 t = cs->fv.v[i].val.first_ns;

		cs->fv.v[i].val.first_ns = first[i];
		first[i] = t;
	}

	for (size_t i = 0; i < fv->n; i++) {
		cache_merge(cs, &fv->v[i]);
		if (since_reset(st, &fv->v[i]))
			fv->v[kept++] = fv->v[i];
	}
	fv->n = kept;
	for (size_t i = 0; i < cs->fv.n; i++) {
		struct pl_flow f = cs->fv.v[i];

		if (!cs->seen[i] && since_reset(st, &f) && vec_push(fv, &f.key, &f.val))
			break;
	}
	if (!first || pl_gone_log(st->meta.netns_ino, &st->meta, fv->v, fv->n))
		pl_warn("%s: some flows' last counts were not kept for the IPFIX exporter",
			st->dir);
	for (size_t i = 0; first && i < cs->fv.n; i++)
		cs->fv.v[i].val.first_ns = first[i];
}

/*
 * Put @k back in the table at zero (@zero: a value per CPU): 0 also when it
 * is there (a packet put it back first) or the table is full (filled
 * meanwhile by new flows).
 */
static int keep_flow(int flows_fd, const struct pl_flow_key *k, const void *zero)
{
	if (bpf_map_update_elem(flows_fd, k, zero, BPF_NOEXIST) && errno != EEXIST && errno != E2BIG)
		return -errno;
	return 0;
}

/* A zero value of the table for each CPU, for keep_flow(); NULL when out of memory */
static void *flow_zero(void)
{
	return calloc((size_t)ncpus(), (sizeof(struct pl_flow_val) + 7) & ~(size_t)7);
}

/*
 * Every flow a cache slot holds packets of back in the table, at zero, once
 * a reset emptied it. A flow sits in a cache only after the table took it
 * (bpf/flow.h), so folding its slot into the table never fails; a slot whose
 * flow the reset removed would break that: folded into a table full by
 * then, its whole delta, packets from before the reset included, would count
 * as not recorded in flows, and under the hook of whichever packet folded
 * it. The slots' flows fit: the table held every one of them. -errno of the
 * first failure other than "there already" (a packet put it back first) and
 * a table filled meanwhile by new flows; caches of the old layout (a
 * PERCPU_ARRAY) are left as they are.
 */
static int keep_cached_flows(const struct pl_state *st)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	const struct pl_flow_slot *s;
	void *zero;
	size_t size;
	int err = 0;

	if (bpf_obj_get_info_by_fd(st->cache_fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(*s))
		return 0;
	zero = flow_zero();
	if (!zero)
		return -ENOMEM;
	size = (size_t)info.max_entries * sizeof(*s);
	s = mmap(NULL, size, PROT_READ, MAP_SHARED, st->cache_fd, 0);
	if (s == MAP_FAILED) {
		free(zero);
		return -errno;
	}
	for (size_t i = 0; i < info.max_entries && !err; i++) {
		struct pl_flow_key k = s[i].key;	/* one read: the program may be changing it */

		/*
		 * a slot without packets since its last fold holds nothing from before
		 * the reset (the hold lets slots only count on): folding it later puts
		 * in the table only what came after, so its flow need not be there,
		 * and a table full of one-packet flows (a scan) is emptied
		 */
		if (!k.ifindex || !s[i].packets)
			continue;
		k.pad = 0;
		err = keep_flow(st->flows_fd, &k, zero);
	}
	munmap((void *)s, size);
	free(zero);
	return err;
}

/*
 * The debts of this reset (struct pl_flow_debt), in place of the last
 * one's: what each slot with packets held in the reading @cs made, by flow
 * and CPU. The table, emptied, keeps none of those flows: a fold into it
 * that fails later counts as not recorded in flows only what the slot
 * counted after the reading. A flow cached with packets on more than one
 * CPU, or whose debt finds no room, is put back in the table at zero
 * instead, as keep_cached_flows() does (its base is their sum: one fold
 * failing would take the others' part of it too). -ENOENT: the attachment
 * has no flow_debt (made before it) or its cache is of the old layout.
 */
static int put_debts(const struct pl_state *st, const struct cache_set *cs)
{
	size_t vsize = (sizeof(struct pl_flow_debt) + 7) & ~(size_t)7;
	int n = ncpus(), fd, err;
	unsigned char *ncpu = NULL;
	struct pl_flow_debt *d;
	void *zero;

	if (!st->dir[0] || (cs->slots.n && !cs->cpu))
		return -ENOENT;
	fd = pl_pin_open(st->dir, PL_MAP_FLOW_DEBT);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	d = calloc((size_t)n, vsize);
	zero = flow_zero();
	err = d && zero ? batch_walk(fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_debt), true, true,
			     NULL, NULL) : -ENOMEM;
	if (!err && cs->slots.n && !(ncpu = calloc(cs->fv.n ? cs->fv.n : 1, 1)))
		err = -ENOMEM;
	/* on how many CPUs each flow's slots hold packets */
	for (size_t i = 0; !err && i < cs->slots.n; i++) {
		__u32 e = *cache_slot(cs, &cs->slots.v[i].key);

		if (e && ncpu[e - 1] < 2)
			ncpu[e - 1]++;
	}
	for (size_t i = 0; !err && i < cs->slots.n; i++) {
		const struct pl_flow *f = &cs->slots.v[i];
		__u32 e = *cache_slot(cs, &f->key);
		struct pl_flow_debt *mine;

		if (!e || ncpu[e - 1] > 1 || cs->cpu[i] >= (__u32)n) {
			err = keep_flow(st->flows_fd, &f->key, zero);
			continue;
		}
		memset(d, 0, (size_t)n * vsize);
		mine = (struct pl_flow_debt *)((char *)d + cs->cpu[i] * vsize);
		mine->packets = f->val.packets;
		mine->bytes = f->val.bytes;
		if (bpf_map_update_elem(fd, &f->key, d, BPF_NOEXIST))
			err = keep_flow(st->flows_fd, &f->key, zero);
	}
	free(ncpu);
	free(zero);
	free(d);
	close(fd);
	return err;
}

/*
 * The reset proper. Steps 2 and 3 read the caches, then empty the table:
 * a slot handed to another flow in between would move its delta into the
 * table after it was read (counted twice) or behind the walk (shown twice),
 * which is what the hold of pl_state_reset() below prevents.
 */
/* @printed: the reading pl_state_stats() made, which the reset takes away */
static int state_reset(struct pl_state *st, const struct pl_stats printed[PL_SLOT_MAX])
{
	struct pl_stats base[PL_SLOT_MAX];
	struct removed r = {};		/* flow records the reset takes away, as shown before */
	struct flow_sums *gone = &r.gone;
	__u64 *first = NULL;		/* the cached flows' first packets (log_removed()) */
	struct cache_set cs = {};
	struct timespec now;
	int err;

	/* 1. the base from now on: what the reading showed and the old base */
	for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
		base[sl] = printed[sl];
		stats_add(&base[sl], &st->base[sl]);
	}
	/*
	 * 2. what the per-CPU caches hold becomes the flows' base: user space
	 * must not write the slots the programs keep counting in
	 */
	err = cache_set_read(st, &cs, true);
	if (err)
		return err;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	first = calloc(cs.fv.n ? cs.fv.n : 1, sizeof(*first));
	for (size_t i = 0; i < cs.fv.n; i++) {
		sums_add(gone, &cs.fv.v[i].key, &cs.fv.v[i].val, 1);
		if (first)
			first[i] = cs.fv.v[i].val.first_ns;
		cs.fv.v[i].val.first_ns = (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec;
	}
	/*
	 * 3. the table: one pass in batches (deleting key by key, each
	 * restarting get_next_key from the first bucket, is quadratic in the
	 * table size); flows that arrive behind the walk stay
	 */
	err = batch_walk(st->flows_fd, sizeof(struct pl_flow_key), sizeof(struct pl_flow_val),
			 true, true, removed_cb, &r);
	if (err)
		goto out;
	err = put_debts(st, &cs);
	if (err == -ENOENT)	/* an attachment made before flow_debt */
		err = keep_cached_flows(st);
	if (err)	/* the reset is half done: finish it */
		pl_warn("%s: flows some CPU's cache holds could not be put back in the table (%s): "
			"those the table has no room for later count as not recorded in flows",
			st->dir, strerror(-err));
	for (size_t i = 0; i < st->nfbase; i++)	/* what the old base hid was not shown */
		sums_add(gone, &st->fbase[i].key, &st->fbase[i].val, -1);
	/*
	 * 4. Flow records the reset took away of packets counted after the
	 * reading are no longer in any flow: count them as not recorded in
	 * flows (flow_lost_*), as if the table had refused them.
	 */
	for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
		const struct pl_stats *p = &printed[sl];
		__u64 pk = 0, by = 0;
		__s64 extra_pk, extra_by;

		for (int v = 0; v < PL_VERDICT_MAX; v++)
			pk += p->pkts[v], by += p->bytes[v];
		extra_pk = gone->pkts[sl] - (__s64)(pk - p->flow_lost_pkts);
		extra_by = gone->bytes[sl] - (__s64)(by - p->flow_lost_bytes);
		if (extra_pk > 0)
			base[sl].flow_lost_pkts -= (__u64)extra_pk;
		if (extra_by > 0)
			base[sl].flow_lost_bytes -= (__u64)extra_by;
	}
	err = st->dir[0] ? pl_state_base_pin(st->dir, base, cs.fv.v, cs.fv.n) : 0;
	if (err)
		goto out;
	if (st->dir[0])		/* before the old base goes: it is what readers subtracted */
		log_removed(st, &r.fv, &cs, first);
	memcpy(st->base, base, sizeof(base));
	pl_qsort(cs.fv.v, cs.fv.n, sizeof(*cs.fv.v), flow_key_cmp);
	free(st->fbase);
	st->fbase = cs.fv.v;
	st->nfbase = cs.fv.n;
	cs.fv.v = NULL;
out:
	free(first);
	free(r.fv.v);
	cache_set_free(&cs);
	return err;
}

int pl_state_reset(struct pl_state *st, struct pl_stats printed[PL_SLOT_MAX])
{
	/* attachments made before flow_ctl have none: their resets are as before */
	struct cache_hold h;
	int err = hold_begin(st, &h);

	if (!err)
		err = pl_state_stats(st, printed) ?: state_reset(st, printed);
	hold_end(&h);
	return err;
}

int pl_state_reset_to(struct pl_state *st, const struct pl_stats reading[PL_SLOT_MAX])
{
	struct cache_hold h;
	int err = hold_begin(st, &h);

	if (!err)
		err = state_reset(st, reading);
	hold_end(&h);
	return err;
}

