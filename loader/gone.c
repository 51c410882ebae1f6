// SPDX-License-Identifier: GPL-2.0
/*
 * The flows that left a flow table (stats --reset, detach), kept for the
 * IPFIX exporter: a flow removed between two exports had gained packets
 * since the first, which the second could no longer read. Whoever removes
 * flows appends each one's last reading here, under the change lock;
 * exporters read the log under the same lock (shared) and send what each
 * removed flow gained since their previous export.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <pktlens/array.h>
#include <pktlens/clock.h>

#include "loader.h"

static void gone_path(char *path, size_t len)
{
	snprintf(path, len, "%s/%s", PL_PIN_ROOT, PL_MAP_FLOWS_GONE);
}

static int gone_open(bool create)
{
	char path[256];
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	int fd;

	gone_path(path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/*
		 * A map of another layout there (another tool's pin): an update
		 * would copy its key and value sizes out of ours, past them
		 */
		int err = pl_map_sized(fd, false, sizeof(struct pl_gone_key),
				       sizeof(struct pl_flow_val));

		if (err)
			close(fd);
		return err ? err : fd;
	}
	if (!create || errno != ENOENT)
		return -errno;
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "pl_flows_gone", sizeof(struct pl_gone_key),
			    sizeof(struct pl_flow_val), PL_GONE_MAX + PL_GONE_READERS, &o);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

struct gone_vec {
	struct pl_gone *v;
	size_t n, cap;
};

static int read_cb(const void *key, const void *vals, int ncpu, void *ctx)
{
	struct gone_vec *g = ctx;
	struct pl_gone *p = pl_grown(g->v, &g->cap, g->n, sizeof(*p), 256);

	(void)ncpu;
	if (!p)
		return -ENOMEM;
	g->v = p;
	memcpy(&g->v[g->n].key, key, sizeof(g->v[g->n].key));
	memcpy(&g->v[g->n].val, vals, sizeof(g->v[g->n].val));
	g->n++;
	return 0;
}

int pl_gone_read(struct pl_gone **out, size_t *n)
{
	struct gone_vec g = {};
	int fd = gone_open(false), err;

	*out = NULL;
	*n = 0;
	if (fd == -ENOENT)
		return 0;	/* nothing ever left */
	if (fd < 0)
		return fd;
	err = pl_map_walk(fd, sizeof(struct pl_gone_key), sizeof(struct pl_flow_val), false,
			  read_cb, &g);
	close(fd);
	if (err) {
		free(g.v);
		return err;
	}
	*out = g.v;
	*n = g.n;
	return 0;
}

static bool is_reader(const struct pl_gone_key *k)
{
	return !k->id;
}

/* A reader's entry is stale once it missed two of its rounds and a minute. */
static __u64 reader_keep(const struct pl_flow_val *v)
{
	return 2 * v->packets + 60000000000ULL;
}

static __u64 pidns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) ? 0 : st.st_ino;
}

/* When process @pid started (clock ticks since boot, /proc/PID/stat), 0 if it is gone. */
static __u64 proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* after the command's name, which may hold anything */
	for (int field = 3; p && field <= 22; field++) {
		p = strchr(p, ' ');
		p = p ? p + 1 : NULL;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

/*
 * Whether a reader's entry still stands for a reader: a process of our pid
 * namespace is checked (a killed exporter is gone now, not in a minute);
 * one of another, or written by an older pktlens, by its time alone.
 */
static bool reader_live(const struct pl_gone *g, __u64 now)
{
	if (g->val.bytes && g->val.bytes == pidns_ino() &&
	    proc_start((pid_t)g->key.netns) != g->val.first_ns)
		return false;
	return now - g->val.last_ns <= reader_keep(&g->val);
}

/*
 * A log full of flows (PL_GONE_MAX + PL_GONE_READERS of them, as an older
 * pktlens filled it) has no room for a reader's entry: the oldest flow
 * goes, as it would for the next removal. 0 or -errno.
 */
static int drop_oldest(int fd)
{
	struct pl_gone *g = NULL, *old = NULL;
	size_t n = 0;
	int err = pl_gone_read(&g, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (!is_reader(&g[i].key) && (!old || g[i].key.id < old->key.id))
			old = &g[i];
	if (!err && old && bpf_map_delete_elem(fd, &old->key))
		err = -errno;
	if (!err && !old)
		err = -E2BIG;
	free(g);
	return err;
}

static void gone_unpin(void)
{
	char path[256];

	gone_path(path, sizeof(path));
	unlink(path);
}

/* Whether an exporter still reads the log (its entry not older than its rounds allow). */
static bool read_by_any(void)
{
	struct pl_gone *g = NULL;
	__u64 now = pl_mono_ns();
	size_t n = 0;
	bool read = false;

	if (pl_gone_read(&g, &n))
		return true;	/* not known: kept */
	for (size_t i = 0; i < n && !read; i++)
		read = is_reader(&g[i].key) && reader_live(&g[i], now);
	free(g);
	return read;
}

int pl_gone_reader(uint32_t interval_s)
{
	struct pl_gone_key k = { .netns = (__u64)getpid() };
	struct pl_flow_val v = {
		.packets = (__u64)interval_s * 1000000000ULL,
		.bytes = pidns_ino(),		/* who it is, for reader_live() */
		.first_ns = proc_start(getpid()),
	};
	char why[PL_WHY_LEN];
	int fd, err;

	err = pl_bpffs_ensure(why, sizeof(why));	/* the first attach may come later */
	if (err)
		return err;
	fd = gone_open(true);
	if (fd < 0)
		return fd;
	v.last_ns = pl_mono_ns();
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		err = -errno;
	if (err == -E2BIG) {	/* full: it made no room for readers (before PL_GONE_READERS) */
		err = drop_oldest(fd);
		if (!err && bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			err = -errno;
	}
	close(fd);
	return err;
}

static int id_cmp(const void *a, const void *b)
{
	const struct pl_gone *x = a, *y = b;

	return x->key.id < y->key.id ? -1 : x->key.id > y->key.id;
}

int pl_gone_log(uint64_t netns, const struct pl_meta *m, const struct pl_flow *fl, size_t n)
{
	struct pl_gone_key k = { .netns = netns };
	struct pl_gone *g = NULL;
	size_t ng = 0, flows = 0, lost = 0, limit = 0;
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	__u64 now = pl_mono_ns(), keep = 0;
	int fd, err;

	if (!n)
		return 0;
	fd = gone_open(false);
	if (fd == -ENOENT)
		return 0;	/* no exporter ever read it: nobody to keep them for */
	if (fd < 0)
		return fd;
	/*
	 * flows up to PL_GONE_MAX, the rest of the map kept for readers (a map an
	 * older pktlens made has room for PL_GONE_MAX entries in all)
	 */
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen) == 0 && info.max_entries > PL_GONE_READERS)
		limit = info.max_entries - PL_GONE_READERS;
	if (limit > PL_GONE_MAX)
		limit = PL_GONE_MAX;
	err = pl_gone_read(&g, &ng);
	if (err) {
		close(fd);
		return err;
	}
	/* who reads it: exporters that are alive keep what is as old as their rounds */
	for (size_t i = 0; i < ng; i++) {
		if (!is_reader(&g[i].key))
			flows++;
		else if (!reader_live(&g[i], now))
			bpf_map_delete_elem(fd, &g[i].key);
		else if (reader_keep(&g[i].val) > keep)
			keep = reader_keep(&g[i].val);
	}
	if (!keep) {	/* no exporter reads it any more: nothing to keep, no pin left behind */
		free(g);
		close(fd);
		gone_unpin();
		return 0;
	}
	pl_qsort(g, ng, sizeof(*g), id_cmp);
	/* older than any reader's round, or the oldest where there is no room */
	for (size_t i = 0; i < ng; i++) {
		if (is_reader(&g[i].key))
			continue;
		if (now - g[i].key.id <= keep && flows + n <= limit)
			break;
		bpf_map_delete_elem(fd, &g[i].key);
		flows--;
	}
	free(g);
	k.id = now;
	for (size_t i = 0; i < n; i++) {
		const struct pl_flow_key *f = &fl[i].key;

		if (!fl[i].val.packets || (f->l3proto != 0x0800 && f->l3proto != 0x86dd))
			continue;	/* the exporter sends IP flows */
		/* its one observation point per direction: XDP's, where tc ingress counts too */
		if (m && m->xdp_mode != PL_XDP_NONE && f->dir == PL_DIR_IN && f->hook == PL_HOOK_TC)
			continue;
		k.key = *f;
		if (flows >= limit) {	/* the rest of the map is the readers' */
			err = -E2BIG;
			lost++;
		} else if (bpf_map_update_elem(fd, &k, &fl[i].val, BPF_NOEXIST)) {
			err = -errno;
			lost++;
		} else {
			flows++;
		}
	}
	close(fd);
	return lost ? err : 0;
}

void pl_gone_gc(void)
{
	if (!read_by_any())
		gone_unpin();
}

void pl_gone_unread(void)
{
	struct pl_gone_key k = { .netns = (__u64)getpid() };
	char why[PL_WHY_LEN];
	int fd = gone_open(false), lock;

	if (fd < 0)
		return;
	/* exclusive: no exporter registers, no removal logs between the look and the unpin */
	lock = pl_change_lock(5000, why, sizeof(why));
	bpf_map_delete_elem(fd, &k);
	close(fd);
	if (lock < 0)
		return;		/* its entry is out; the next removal or detach unpins */
	pl_gone_gc();
	close(lock);
}
