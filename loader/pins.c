// SPDX-License-Identifier: GPL-2.0
/*
 * The bpffs layout: PL_PIN_ROOT/<netns inode>/<ifname>/{stats,flows,flow_cache,meta,xdp_link},
 * <ifname> as pl_pin_name() writes it ('.' as "%2e": bpffs refuses dots).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include "loader.h"
#include "../probes/probeset.h"
#include "xdp_multi.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static int mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	if (chmod(path, 0700))
		return -errno;
	return 0;
}

int pl_bpffs_ensure(char *why, size_t whylen)
{
	struct statfs sfs;
	int err;

	if (statfs(PL_BPFFS, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		if (mkdir(PL_BPFFS, 0700) && errno != EEXIST)
			return pl_why(why, whylen, -errno, "cannot create %s: %s", PL_BPFFS,
				      strerror(errno));
		if (mount("bpf", PL_BPFFS, "bpf", 0, "mode=0700"))
			return pl_why(why, whylen, -errno, "cannot mount bpffs on %s: %s%s", PL_BPFFS,
				      strerror(errno), errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	}
	err = mkdir_0700(PL_PIN_ROOT);
	return err ? pl_why(why, whylen, err, "cannot create %s: %s", PL_PIN_ROOT, strerror(-err)) : 0;
}

/*
 * flock() @op (LOCK_EX, LOCK_SH) on @fd, polling; *@waited counts the
 * milliseconds spent so far, up to @wait_ms. 0, or -EBUSY past @wait_ms.
 */
static int lock_poll(int fd, int op, unsigned *waited, unsigned wait_ms)
{
	while (flock(fd, op | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (*waited >= wait_ms)
			return -EBUSY;
		usleep(10000);
		*waited += 10;
	}
	return 0;
}

/*
 * The change lock as flock() @op (LOCK_EX, LOCK_SH) takes it, waiting up to
 * @wait_ms. flock() prefers no one: exporters whose shared holds overlap
 * (a round each, on their own intervals) would keep a change out for good.
 * So every taker first passes a turnstile, an exclusive flock on the bpffs
 * root, which a change holds while it waits: sharers that come after it
 * wait behind it, those before it finish, and it gets in.
 */
static int change_lock(int op, unsigned wait_ms, char *why, size_t whylen)
{
	unsigned waited = 0;
	int fd, gate, err;

	err = pl_bpffs_ensure(why, whylen);
	if (err)
		return err;
	gate = open(PL_BPFFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (gate < 0)
		return pl_why(why, whylen, -errno, "cannot open %s: %s", PL_BPFFS, strerror(errno));
	fd = open(PL_PIN_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = pl_why(why, whylen, -errno, "cannot open %s: %s", PL_PIN_ROOT, strerror(errno));
		close(gate);
		return err;
	}
	err = lock_poll(gate, LOCK_EX, &waited, wait_ms);
	if (!err)
		err = lock_poll(fd, op, &waited, wait_ms);
	close(gate);	/* the turnstile is passed (or not): the next may come */
	if (!err)
		return fd;
	close(fd);
	if (err == -EBUSY)
		return pl_why(why, whylen, err, "another pktlens has been changing attachments for "
			      "%u s (it holds the lock on %s)", wait_ms / 1000, PL_PIN_ROOT);
	return pl_why(why, whylen, err, "cannot lock %s: %s", PL_PIN_ROOT, strerror(-err));
}

int pl_change_lock(unsigned wait_ms, char *why, size_t whylen)
{
	return change_lock(LOCK_EX, wait_ms, why, whylen);
}

int pl_change_lock_shared(unsigned wait_ms, char *why, size_t whylen)
{
	return change_lock(LOCK_SH, wait_ms, why, whylen);
}

int pl_netns_ino(uint64_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

int pl_netns_here(struct pl_netns *ns)
{
	socklen_t len = sizeof(ns->cookie);
	int fd, err;

	ns->cookie = 0;
	err = pl_netns_ino(&ns->ino);
	if (err)
		return err;
	/* a socket belongs to the namespace it is created in */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &ns->cookie, &len) || len != sizeof(ns->cookie))
		ns->cookie = 0;	/* ENOPROTOOPT before Linux 5.14: the inode alone */
	close(fd);
	return 0;
}

int pl_pin_name(char *buf, size_t len, const char *ifname)
{
	size_t o = 0;

	for (const char *c = ifname; *c; c++) {
		const char *put = *c == '.' ? "%2e" : *c == '%' ? "%25" : NULL;
		size_t k = put ? 3 : 1;

		if (o + k >= len)
			return -ENAMETOOLONG;
		memcpy(buf + o, put ? put : c, k);
		o += k;
	}
	if (o >= len)
		return -ENAMETOOLONG;
	buf[o] = '\0';
	return 0;
}

int pl_pin_name_ifname(char *buf, size_t len, const char *name)
{
	size_t o = 0;

	for (const char *c = name; *c; c++) {
		char ch = *c;

		if (ch == '%') {
			if (!strncmp(c, "%2e", 3))
				ch = '.';
			else if (!strncmp(c, "%25", 3))
				ch = '%';
			else
				return -EINVAL;
			c += 2;
		} else if (ch == '.' || ch == ':') {
			return -EINVAL;
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		buf[o++] = ch;
	}
	if (!o)
		return -EINVAL;
	buf[o] = '\0';
	return 0;
}

int pl_pin_dir(char *buf, size_t len, uint64_t netns, const char *ifname)
{
	char name[PL_PIN_NAME_MAX];
	int n;

	if (pl_pin_name(name, sizeof(name), ifname))
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "%s/%" PRIu64 "/%s", PL_PIN_ROOT, netns, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void pl_pin_link_detach(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
}

int pl_pins_reuse_maps(const char *dir, struct bpf_map *const *maps, const char *const *names,
		       size_t n)
{
	char path[1024];
	int reused = 0;

	for (size_t i = 0; i < n; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    info.type == (__u32)bpf_map__type(maps[i]) &&
		    info.map_flags == bpf_map__map_flags(maps[i]) &&
		    info.key_size == bpf_map__key_size(maps[i]) &&
		    info.value_size == bpf_map__value_size(maps[i]) &&
		    info.max_entries == bpf_map__max_entries(maps[i]) &&
		    !bpf_map__reuse_fd(maps[i], fd))
			reused++;
		close(fd);	/* bpf_map__reuse_fd() took a copy */
	}
	return reused;
}

void pl_pins_unpin(const char *dir, const char *const *links, size_t nlinks,
		   const char *const *maps, size_t nmaps)
{
	char path[1024];

	for (size_t i = 0; i < nlinks; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, links[i]);
		pl_pin_link_detach(path);
	}
	for (size_t i = 0; i < nmaps; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, maps[i]);
		unlink(path);
	}
}

static __u32 link_id(int fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) ? info.id : 0;
}

/*
 * Whether the link pinned as @dir/@name is also the one pinned under that
 * name in the attachment directory of the temporary one @dir
 * ("tmp:<name>:<pid>", see tmp_dir_is_stale()): a re-attach swaps the
 * program of the old links in place (loader.c, swap_hook()) and pins them
 * in both until the old directory goes. Detaching it then would take the
 * hook of the attachment that lives on.
 */
static bool link_pinned_beside(const char *dir, const char *name)
{
	const char *slash = strrchr(dir, '/'), *own, *colon;
	size_t plen = strlen(PL_PIN_TMP_PREFIX);
	char path[1024];
	__u32 id;
	int fd;

	if (!slash || strncmp(slash + 1, PL_PIN_TMP_PREFIX, plen))
		return false;
	own = slash + 1 + plen;
	colon = strrchr(own, ':');
	if (!colon)
		return false;
	snprintf(path, sizeof(path), "%.*s/%.*s/%s", (int)(slash - dir), dir, (int)(colon - own),
		 own, name);
	fd = bpf_obj_get(path);
	id = link_id(fd);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (id && link_id(fd) != id)
		id = 0;
	if (fd >= 0)
		close(fd);
	return id != 0;
}

int pl_pin_dir_remove(const char *dir)
{
	char path[1024];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* now, not when bpffs lets go of it; unless another attachment uses it too */
		if (strstr(de->d_name, "_link") && !pl_probe_link_shared(de->d_name) &&
		    !link_pinned_beside(dir, de->d_name))
			pl_pin_link_detach(path);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT && !err)
		err = -errno;
	/* drop the per-netns directory once it is empty */
	snprintf(path, sizeof(path), "%s", dir);
	char *slash = strrchr(path, '/');
	if (slash) {
		*slash = '\0';
		if (strcmp(path, PL_PIN_ROOT))
			rmdir(path);
	}
	return err;
}

/*
 * Temporary attach directories are named "tmp:<ifname>:<pid>" (the name as
 * pl_pin_name() writes it): ':' cannot occur in an interface name.
 */
static bool tmp_dir_is_stale(const char *name)
{
	const char *colon = strrchr(name, ':');
	long pid;

	if (strncmp(name, PL_PIN_TMP_PREFIX, strlen(PL_PIN_TMP_PREFIX)) || !colon)
		return false;
	pid = strtol(colon + 1, NULL, 10);
	return pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH;
}

void pl_pins_gc(void)
{
	char path[512], sub[1024];
	struct pl_attachment *a = NULL;
	struct dirent *de, *e;
	struct pl_netns here;
	DIR *root, *d;
	size_t n = 0;

	/* a deleted namespace's attachments, where a new namespace with its inode looks */
	if (!pl_netns_here(&here) && here.cookie && !pl_attachments(here.ino, &a, &n))
		for (size_t i = 0; i < n; i++)
			if (!pl_attachment_of(&a[i], &here))
				pl_attachment_set_aside(&a[i]);
	free(a);

	root = opendir(PL_PIN_ROOT);
	if (!root)
		return;
	while ((de = readdir(root))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", PL_PIN_ROOT, de->d_name);
		d = opendir(path);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			if (!tmp_dir_is_stale(e->d_name))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			pl_pin_dir_remove(sub);
		}
		closedir(d);
		/*
		 * the namespace's TCP maps when no attachment analyses: a killed
		 * --tcp-passive attach pinned them (its tmp dir gone, here or by another's gc)
		 */
		if (strspn(de->d_name, "0123456789") == strlen(de->d_name)) {
			pl_tcp_release_ns(strtoull(de->d_name, NULL, 10));
			/*
			 * and the namespace's directory, if empty (its attachments set
			 * aside, or an older pktlens's leftover): a namespace made later
			 * with its inode would look attached-to (no pins left behind)
			 */
			rmdir(path);
		}
	}
	closedir(root);
}

int pl_meta_read(int fd, struct pl_meta *m)
{
	struct bpf_map_info info = {};
	__u32 key = 0, len = sizeof(info);

	/*
	 * Another pktlens's metadata may be larger: never read it into ours.
	 * Version 6's is a prefix of ours (no managed_by): read, the rest zero;
	 * 7's is ours (its rule maps are not: loader/policy.c). Every version's
	 * is an ARRAY (its row has no SHAPE(), so pl_pin_open() checks nothing):
	 * a per-CPU map of the same sizes would fill a value per CPU into @m.
	 */
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY)
		return -EPROTO;
	if (info.value_size != sizeof(*m) && info.value_size != PL_META_V9_SIZE &&
	    info.value_size != PL_META_V8_SIZE && info.value_size != PL_META_V6_SIZE)
		return -EPROTO;
	memset(m, 0, sizeof(*m));
	if (bpf_map_lookup_elem(fd, &key, m))
		return -errno;
	m->filter_expr[sizeof(m->filter_expr) - 1] = '\0';
	m->managed_by[sizeof(m->managed_by) - 1] = '\0';
	m->managed_file[sizeof(m->managed_file) - 1] = '\0';
	/*
	 * ours (10) has managed_file; 9 tcp_passive; 8 and 7 managed_by; 6 has
	 * not (its rules: pl_policy_open())
	 */
	if (info.value_size == sizeof(*m))
		return m->version == PL_META_VERSION ? 0 : -EPROTO;
	if (info.value_size == PL_META_V9_SIZE)
		return m->version == 9 ? 0 : -EPROTO;
	if (info.value_size == PL_META_V8_SIZE)
		return m->version == 8 || m->version == 7 ? 0 : -EPROTO;
	return m->version == PL_META_VERSION_MIN ? 0 : -EPROTO;
}

static int read_meta(const char *dir, struct pl_meta *m)
{
	int fd = pl_pin_open(dir, PL_MAP_META), err;

	if (fd < 0)
		return -errno;
	err = pl_meta_read(fd, m);
	close(fd);
	return err;
}

/* The attachments in PL_PIN_ROOT/@name ("INODE", or "INODE:ID" when set aside). */
static int add_netns_dir(const char *name, struct pl_attachment **out, size_t *n, size_t *cap)
{
	char path[256];
	struct dirent *de;
	int err;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", PL_PIN_ROOT, name);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct pl_attachment *a;

		char ifname[sizeof(a->ifname)];

		if (de->d_name[0] == '.' || strchr(de->d_name, ':') ||
		    pl_pin_name_ifname(ifname, sizeof(ifname), de->d_name))
			continue;
		a = pl_grown(*out, cap, *n, sizeof(*a), 8);
		if (!a) {
			closedir(d);
			return -ENOMEM;
		}
		*out = a;
		a = &(*out)[(*n)++];
		memset(a, 0, sizeof(*a));
		a->netns = strtoull(name, NULL, 10);
		snprintf(a->ns, sizeof(a->ns), "%s", name);
		a->ns_gone = strchr(name, ':') != NULL;
		snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
		snprintf(a->dir, sizeof(a->dir), "%s/%s", path, de->d_name);
		err = read_meta(a->dir, &a->meta);
		a->meta_ok = !err;
		/* this reading's failure, not a broken attachment */
		if (pl_starved(err)) {
			closedir(d);
			return err;
		}
	}
	closedir(d);
	return 0;
}

/* "INODE" or "INODE:ID", INODE all digits */
static bool is_netns_dir(const char *name)
{
	size_t digits = strspn(name, "0123456789");

	return digits && digits < 21 && (!name[digits] || (name[digits] == ':' && name[digits + 1] &&
							  strlen(name) < sizeof(((struct pl_attachment *)0)->ns)));
}

static int cmp_attachment(const void *x, const void *y)
{
	const struct pl_attachment *a = x, *b = y;

	if (a->netns != b->netns)
		return a->netns < b->netns ? -1 : 1;
	if (a->ns_gone != b->ns_gone)
		return a->ns_gone ? 1 : -1;
	return strcmp(a->ns, b->ns) ?: strcmp(a->ifname, b->ifname);
}

int pl_attachments(uint64_t netns, struct pl_attachment **out, size_t *n)
{
	size_t cap = 0;
	struct dirent *de;
	int err = 0;
	DIR *root;

	*out = NULL;
	*n = 0;
	if (netns) {
		char name[24];

		snprintf(name, sizeof(name), "%" PRIu64, netns);
		err = add_netns_dir(name, out, n, &cap);
	} else if ((root = opendir(PL_PIN_ROOT))) {
		while (!err && (de = readdir(root)))
			if (is_netns_dir(de->d_name))
				err = add_netns_dir(de->d_name, out, n, &cap);
		closedir(root);
	} else if (errno != ENOENT) {	/* none made yet: nothing attached; unreadable: not "none" */
		err = -errno;
	}
	if (err) {
		free(*out);
		*out = NULL;
		*n = 0;
		return err;
	}
	if (*n)
		pl_qsort(*out, *n, sizeof(**out), cmp_attachment);
	return 0;
}

/* @m's hook that runs program @id: "XDP", "tc in", "tc out"; NULL when none does */
static const char *hook_of(const struct pl_meta *m, __u32 id, bool tc)
{
	if (!tc)
		return m->xdp_prog_id == id ? "XDP" : NULL;
	if (m->tc_mech != PL_TC_TCX)
		return NULL;
	if ((m->tc_hooks & (1u << PL_DIR_IN)) && m->tc_prog_id[PL_DIR_IN] == id)
		return "tc in";
	if ((m->tc_hooks & (1u << PL_DIR_OUT)) && m->tc_prog_id[PL_DIR_OUT] == id)
		return "tc out";
	return NULL;
}

/*
 * Whether program @id (XDP, or tcx with @tc) is the hook of an attachment
 * of a namespace other than @here (any: NULL); the reason, into @why.
 */
static bool prog_moved_why(__u32 id, bool tc, const struct pl_netns *here, char *why, size_t whylen)
{
	struct pl_attachment *a = NULL;
	bool found = false;
	size_t n = 0;

	if (pl_attachments(0, &a, &n))
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		struct pl_netns_id nid;
		const char *hook;
		char ns[96];

		if (!a[i].meta_ok || !(hook = hook_of(&a[i].meta, id, tc)) ||
		    (here && pl_attachment_of(&a[i], here)))
			continue;
		pl_netns_identify(a[i].netns, pl_att_cookie(&a[i]), false, &nid);
		pl_netns_fmt(a[i].netns, pl_att_cookie(&a[i]), false, ns, sizeof(ns));
		/* its bpf_link holds it: only its owner's detach removes it, not --force */
		snprintf(why, whylen, "pktlens's %s program (id %u) of the attachment of %s in netns "
			 "%s runs on it: the interface moved here from there; detach that one first "
			 "(pktlens -n %s detach %s)", hook, id, a[i].ifname, ns,
			 nid.name[0] ? nid.name : "NETNS", a[i].ifname);
		found = true;
	}
	free(a);
	return found;
}

bool pl_xdp_moved_why(__u32 id, char *why, size_t whylen)
{
	return prog_moved_why(id, false, NULL, why, whylen);
}

bool pl_tc_moved_why(int ifindex, char *why, size_t whylen)
{
	static const int types[] = { PL_BPF_TCX_INGRESS, PL_BPF_TCX_EGRESS };
	struct pl_netns here;

	if (pl_netns_here(&here))
		return false;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		__u32 ids[64], cnt = 64;

		if (bpf_prog_query(ifindex, types[t], 0, NULL, ids, &cnt))
			continue;
		for (__u32 i = 0; i < cnt && i < 64; i++)
			if (prog_moved_why(ids[i], true, &here, why, whylen))
				return true;
	}
	return false;
}

int pl_foreign_xdp_why(const char *ifname, __u32 id, const char *mode, const char *prog,
		       const char *also, char *why, size_t whylen)
{
	char moved[512];

	/* pktlens's own, of an attachment elsewhere: the interface moved here from its namespace */
	if (pl_xdp_moved_why(id, moved, sizeof(moved)))
		return pl_why(why, whylen, -EBUSY, "%s: %s", ifname, moved);
	/* pktlens's own too: a capture-only sampler's, held by its bpf_link (loader/capture.c) */
	if (!strcmp(prog, PL_CAP_XDP_PROG))
		return pl_why(why, whylen, -EBUSY, "%s: a capture-only `pktlens sample --xdp` runs "
			      "XDP program %s (id %u) on it until its capture ends: end that capture "
			      "first, or attach with --xdp none", ifname, PL_CAP_XDP_PROG, id);
	return pl_why(why, whylen, -EBUSY, "%s: a foreign XDP program (id %u, %s mode) is attached; "
		      "--force replaces it (program '%s'%s)", ifname, id, mode, prog, also);
}

bool pl_attachment_of(const struct pl_attachment *a, const struct pl_netns *ns)
{
	if (a->ns_gone || a->netns != ns->ino)
		return false;
	return !a->meta_ok || !a->meta.netns_cookie || !ns->cookie || a->meta.netns_cookie == ns->cookie;
}

/* Those of @out's @n attachments that belong to @ns (all: NULL) and are @ifname (any: NULL). */
static size_t keep_of(const struct pl_netns *ns, const char *ifname, struct pl_attachment *a, size_t n)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if ((!ns || pl_attachment_of(&a[i], ns)) && (!ifname || !strcmp(a[i].ifname, ifname)))
			a[m++] = a[i];
	return m;
}

int pl_attachments_in(const struct pl_netns *ns, struct pl_attachment **out, size_t *n)
{
	int err = pl_attachments(ns ? ns->ino : 0, out, n);

	if (!err)
		*n = keep_of(ns, NULL, *out, *n);
	return err;
}

static int attachments_named(const char *ifname, struct pl_attachment **out, size_t *n)
{
	struct pl_netns here;
	size_t m;
	int err;

	err = pl_netns_here(&here);
	if (!err)
		err = pl_attachments(here.ino, out, n);
	if (err)
		return err;
	*n = m = keep_of(&here, ifname, *out, *n);
	if (m || !ifname)
		return 0;
	free(*out);
	*out = NULL;
	return -ENOENT;
}

int pl_attachments_here(const char *ifname, struct pl_attachment **out, size_t *n)
{
	struct pl_link_info li;
	int err = attachments_named(ifname, out, n);

	/*
	 * An alternative name (ip link property add dev D altname A): the
	 * interface's own name, which attach resolves it to and pins under.
	 */
	if (err == -ENOENT && !pl_link_get(ifname, 0, &li) && strcmp(li.ifname, ifname))
		err = attachments_named(li.ifname, out, n);
	return err;
}

int pl_attachment_set_aside(struct pl_attachment *a)
{
	const struct pl_meta *m = &a->meta;
	char ns[48], dir[512];
	__u32 prog = m->xdp_prog_id ? m->xdp_prog_id : m->tc_prog_id[0] ? m->tc_prog_id[0] :
		     m->tc_prog_id[1];

	if (!a->meta_ok)
		return -EPROTO;
	if (m->netns_cookie)
		snprintf(ns, sizeof(ns), "%" PRIu64 ":%llu", a->netns,
			 (unsigned long long)m->netns_cookie);
	else
		snprintf(ns, sizeof(ns), "%" PRIu64 ":p%u", a->netns, prog);
	snprintf(dir, sizeof(dir), "%s/%s", PL_PIN_ROOT, ns);
	if (mkdir_0700(dir))
		return -errno;
	snprintf(dir, sizeof(dir), "%s/%s/%s", PL_PIN_ROOT, ns, strrchr(a->dir, '/') + 1);
	if (rename(a->dir, dir))
		return -errno;
	/* the inode's directory, once that was all it held (pl_pins_gc() says why) */
	*strrchr(a->dir, '/') = '\0';
	rmdir(a->dir);
	snprintf(a->ns, sizeof(a->ns), "%s", ns);
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	a->ns_gone = true;
	return 0;
}

bool pl_meta_tc_live(const struct pl_meta *m, int dir)
{
	__u32 id = m->tc_prog_id[dir];

	if (!(m->tc_hooks & (1u << dir)) || !id)
		return false;
	if (m->tc_mech == PL_TC_TCX) {
		__u32 ids[64], cnt = 64;

		if (bpf_prog_query((int)m->ifindex, dir == PL_DIR_IN ? PL_BPF_TCX_INGRESS :
				   PL_BPF_TCX_EGRESS, 0, NULL, ids, &cnt))
			return false;
		for (__u32 i = 0; i < cnt && i < 64; i++)
			if (ids[i] == id)
				return true;
		return false;
	}
	if (m->tc_mech == PL_TC_CLSACT) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)m->ifindex,
			    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = m->tc_handle[dir], .priority = m->tc_prio[dir]);

		return !bpf_tc_query(&hook, &q) && q.prog_id == id;
	}
	return false;
}

static bool xdp_live(const struct pl_meta *m)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (m->xdp_mode == PL_XDP_NONE || !m->xdp_prog_id)
		return false;
	if (!bpf_xdp_query((int)m->ifindex, 0, &q) &&
	    (q.prog_id == m->xdp_prog_id || q.skb_prog_id == m->xdp_prog_id ||
	     q.drv_prog_id == m->xdp_prog_id))
		return true;
	return pl_xdp_disp_runs((int)m->ifindex, m->xdp_prog_id, NULL);
}

bool pl_meta_live(const struct pl_meta *m)
{
	return xdp_live(m) || pl_meta_tc_live(m, PL_DIR_IN) || pl_meta_tc_live(m, PL_DIR_OUT);
}

bool pl_meta_slot_live(const struct pl_meta *m, int slot)
{
	switch (slot) {
	case PL_SLOT_XDP_IN:
		return xdp_live(m);
	case PL_SLOT_TC_IN:
		return pl_meta_tc_live(m, PL_DIR_IN);
	case PL_SLOT_TC_OUT:
		return pl_meta_tc_live(m, PL_DIR_OUT);
	}
	return false;
}

struct moved_find {
	struct pl_meta m;	/* its ifindex: the interface's where it runs now */
	struct pl_moved *w;
};

/* In each namespace (pl_netns_find()): do @arg's hooks run on its ifindex here? */
static int moved_runs_here(void *arg)
{
	struct moved_find *f = arg;
	unsigned int slots = 0;

	for (int s = 0; s < PL_SLOT_MAX; s++)
		if (pl_meta_slot_live(&f->m, s))
			slots |= 1u << s;
	if (!slots || pl_link_get(NULL, (int)f->m.ifindex, &f->w->li))
		return 0;
	f->w->slots = slots;
	return 1;
}

int pl_attachment_moved(const struct pl_attachment *a, struct pl_moved *w)
{
	struct moved_find f = { .w = w };
	struct pl_xdp_where xw;
	__u32 ifindex = 0;
	uint64_t ino = 0;
	int ret;

	memset(w, 0, sizeof(*w));
	if (!a->meta_ok)
		return 0;
	f.m = a->meta;
	if (!pl_attachment_link_ifindex(a, &ifindex) && ifindex) {
		/* a device holds its links: look for it in every namespace */
		f.m.ifindex = ifindex;
		ret = pl_netns_find(moved_runs_here, &f, &ino);
	} else if (a->meta.xdp_mode != PL_XDP_NONE && pl_xdp_prog_ext(a->meta.xdp_prog_id) &&
		   pl_xdp_disp_where(a->meta.xdp_prog_id, &xw) == 1) {
		f.m.ifindex = (__u32)xw.ifindex;
		ino = xw.netns;
		ret = pl_netns_run(ino, 0, moved_runs_here, &f);
	} else {
		return 0;
	}
	if (ret <= 0 || ino == a->netns) {
		memset(w, 0, sizeof(*w));
		return 0;
	}
	w->netns = ino;
	return 1;
}

const char *pl_moved_fmt(const struct pl_moved *w, char *buf, size_t len)
{
	char ns[300];

	snprintf(buf, len, "%s in netns %s", w->li.ifname, pl_netns_fmt(w->netns, 0, false, ns,
								       sizeof(ns)));
	return buf;
}

bool pl_attachment_progs_gone(const struct pl_attachment *a)
{
	const struct pl_meta *m = &a->meta;
	const __u32 ids[] = { m->xdp_mode != PL_XDP_NONE ? m->xdp_prog_id : 0,
			      m->tc_hooks & (1u << PL_DIR_IN) ? m->tc_prog_id[PL_DIR_IN] : 0,
			      m->tc_hooks & (1u << PL_DIR_OUT) ? m->tc_prog_id[PL_DIR_OUT] : 0 };
	bool any = false;
	__u32 ifindex;

	if (!a->meta_ok || pl_attachment_link_ifindex(a, &ifindex) != -ENOENT)
		return false;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int fd;

		if (!ids[i])
			continue;
		any = true;
		fd = bpf_prog_get_fd_by_id(ids[i]);
		if (fd >= 0) {
			close(fd);
			return false;
		}
		if (errno != ENOENT)
			return false;
	}
	return any;
}

/*
 * ifindex the pinned XDP or tcx links are attached to: 0 once the interface is
 * gone. One link detached alone (bpftool link detach) reads 0 too, so the
 * first that still holds a device answers.
 */
int pl_attachment_link_ifindex(const struct pl_attachment *a, __u32 *ifindex)
{
	static const char *const pins[] = { PL_PIN_XDP_LINK, PL_PIN_TC_IN_LINK, PL_PIN_TC_OUT_LINK };
	char path[600];
	int err = -ENOENT;

	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		int fd;

		snprintf(path, sizeof(path), "%s/%s", a->dir, pins[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/* xdp.ifindex and tcx.ifindex share their place in the union */
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			if (err)	/* no link read yet */
				err = -errno;
		} else {
			*ifindex = info.xdp.ifindex;
			err = 0;
		}
		close(fd);
		if (!err && *ifindex)
			break;
	}
	return err;
}
