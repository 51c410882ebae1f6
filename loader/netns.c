// SPDX-License-Identifier: GPL-2.0
/*
 * Who a network namespace is: pins are keyed by its inode, people know it
 * by its name in /run/netns (`ip netns add`), or for an unnamed one by a
 * process inside it. Both come from short directory walks, cached for a
 * second, shared by the threads of one process (the exporter's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/nsfs.h>

#include <pktlens/array.h>
#include <pktlens/clock.h>

#include "loader.h"

#define NETNS_RUN_DIR "/run/netns"
#define CACHE_NS 1000000000LL	/* how long a walk is trusted */

struct ns_entry {
	uint64_t ino;
	char name[256];		/* "" when only a process is known */
	int pid;
	char comm[16];
	uint64_t cookie;	/* of the namespace found there (0: no cookies) */
	int cookie_err;		/* reading it failed: -errno */
	bool cookie_read;	/* since the last walk */
};

static struct {
	pthread_mutex_t lock;
	struct ns_entry *e;
	size_t n, cap;
	long long names_at, pids_at;	/* CLOCK_MONOTONIC ns of the last walks, 0: never */
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct ns_entry *find(uint64_t ino)
{
	for (size_t i = 0; i < cache.n; i++)
		if (cache.e[i].ino == ino)
			return &cache.e[i];
	return NULL;
}

static struct ns_entry *add(uint64_t ino)
{
	struct ns_entry *e = find(ino);

	if (e)
		return e;
	e = pl_grown(cache.e, &cache.cap, cache.n, sizeof(*e), 32);
	if (!e)
		return NULL;
	cache.e = e;
	e = &cache.e[cache.n++];
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	return e;
}

/* Forget namespaces neither walk found any more (namespaces come and go). */
static void compact(void)
{
	size_t j = 0;

	for (size_t i = 0; i < cache.n; i++)
		if (cache.e[i].name[0] || cache.e[i].pid)
			cache.e[j++] = cache.e[i];
	cache.n = j;
}

/* /run/netns/NAME are nsfs bind mounts: their inode is the namespace's. */
static void walk_names(void)
{
	char path[512];
	struct dirent *de;
	struct stat st;
	DIR *d;

	for (size_t i = 0; i < cache.n; i++) {
		cache.e[i].name[0] = '\0';
		cache.e[i].cookie_read = false;
	}
	d = opendir(NETNS_RUN_DIR);
	if (!d) {
		compact();
		return;
	}
	while ((de = readdir(d))) {
		struct ns_entry *e;

		if (de->d_name[0] == '.' ||
		    (size_t)snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", de->d_name) >= sizeof(path) ||
		    stat(path, &st))
			continue;
		e = add(st.st_ino);
		/* two names for one namespace: the first in sort order, so it does not flap */
		if (e && (!e->name[0] || strcmp(de->d_name, e->name) < 0))
			snprintf(e->name, sizeof(e->name), "%s", de->d_name);
	}
	closedir(d);
	compact();
}

/* The lowest pid in each namespace, from /proc/PID/ns/net ("net:[INO]"). */
static void walk_pids(void)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;

	for (size_t i = 0; i < cache.n; i++) {
		cache.e[i].pid = 0;
		cache.e[i].cookie_read = false;
	}
	d = opendir("/proc");
	if (!d) {
		compact();
		return;
	}
	while ((de = readdir(d))) {
		unsigned long long ino;
		struct ns_entry *e;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		ssize_t len;
		FILE *f;

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "net:[%llu]", &ino) != 1)
			continue;
		e = add(ino);
		if (!e || (e->pid && e->pid < pid))
			continue;
		e->pid = (int)pid;
		e->comm[0] = '\0';
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(e->comm, sizeof(e->comm), f))
				e->comm[strcspn(e->comm, "\n")] = '\0';
			fclose(f);
		}
	}
	closedir(d);
	compact();
}

/*
 * The cookie of the namespace that the nsfs file @path holds into @cookie
 * (0 on a kernel without cookies), or -errno: this thread steps in, makes a
 * socket and steps back.
 */
static int cookie_at(const char *path, uint64_t *cookie)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	*cookie = 0;
	if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET)) {
		err = -errno;
	} else {
		socklen_t len = sizeof(*cookie);
		int sk = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		/* ENOPROTOOPT before Linux 5.14: the inode is all there is */
		if (sk < 0 || getsockopt(sk, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) ||
		    len != sizeof(*cookie))
			*cookie = 0;
		if (sk >= 0)
			close(sk);
		/* back where it was: every later socket of this thread depends on it */
		if (setns(self, CLONE_NEWNET)) {
			fprintf(stderr, "pktlens: cannot return to this thread's network namespace: "
				"%s\n", strerror(errno));
			abort();
		}
	}
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return err;
}

/* Is @e still the namespace of cookie @cookie (0: any), not a newer one with its inode? */
static bool same_netns(struct ns_entry *e, uint64_t cookie)
{
	char path[512];

	if (!cookie)
		return true;
	if (!e->cookie_read) {
		if (e->name[0])
			snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", e->name);
		else
			snprintf(path, sizeof(path), "/proc/%d/ns/net", e->pid);
		e->cookie_err = cookie_at(path, &e->cookie);
		e->cookie_read = true;
	}
	/* gone since the walk: not it; not readable (no privilege): the inode is all there is */
	if (e->cookie_err)
		return e->cookie_err != -ENOENT && e->cookie_err != -ESRCH;
	return !e->cookie || e->cookie == cookie;
}

int pl_netns_resolve(const char *s, char *path, size_t len)
{
	size_t n = strspn(s, "0123456789");

	if (strchr(s, '/'))
		return (size_t)snprintf(path, len, "%s", s) >= len ? -ENAMETOOLONG : 0;
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return -EINVAL;
	if (strlen(s) > NAME_MAX || (size_t)snprintf(path, len, "/run/netns/%s", s) >= len)
		return -ENAMETOOLONG;
	if (n && !s[n] && access(path, F_OK) && errno == ENOENT)
		snprintf(path, len, "/proc/%s/ns/net", s);
	return 0;
}

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int pl_netns_open_file(const char *path)
{
	char self[64];
	struct statfs sfs;
	int at, fd, err = 0;

	/* O_PATH: found, not opened (a FIFO's open() would wait for a writer) */
	at = open(path, O_PATH | O_CLOEXEC);
	if (at < 0)
		return -errno;
	if (fstatfs(at, &sfs))
		err = -errno;
	else if ((unsigned long)sfs.f_type != NSFS_MAGIC)
		err = -EINVAL;
	/* that very file, now that it is a namespace's */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", at);
	fd = err ? -1 : open(self, O_RDONLY | O_CLOEXEC);
	/* no /proc here: the path again, checked below (a FIFO put there since cannot block) */
	if (!err && fd < 0 && errno == ENOENT)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (!err && fd < 0)
		err = -errno;
	close(at);
	if (!err && ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
		err = -EINVAL;
	if (err && fd >= 0)
		close(fd);
	return err ? err : fd;
}

void pl_netns_identify(uint64_t ino, uint64_t cookie, bool pid, struct pl_netns_id *id)
{
	long long now = (long long)pl_mono_ns();
	struct ns_entry *e;

	memset(id, 0, sizeof(*id));
	pthread_mutex_lock(&cache.lock);
	e = find(ino);
	/* a namespace named since the last walk is looked for again, at most every 100 ms */
	if (!cache.names_at || now - cache.names_at > CACHE_NS ||
	    ((!e || !e->name[0]) && now - cache.names_at > CACHE_NS / 10)) {
		walk_names();
		cache.names_at = now;
		e = find(ino);
	}
	if (pid && (!e || !e->name[0]) && (!cache.pids_at || now - cache.pids_at > CACHE_NS)) {
		walk_pids();
		cache.pids_at = now;
		e = find(ino);
	}
	if (e && (e->name[0] || (pid && e->pid)) && same_netns(e, cookie)) {
		snprintf(id->name, sizeof(id->name), "%s", e->name);
		if (pid && !e->name[0] && e->pid) {
			id->pid = e->pid;
			snprintf(id->comm, sizeof(id->comm), "%s", e->comm);
		}
	}
	pthread_mutex_unlock(&cache.lock);
}

const char *pl_netns_fmt(uint64_t ino, uint64_t cookie, bool pid, char *buf, size_t len)
{
	struct pl_netns_id id;

	pl_netns_identify(ino, cookie, pid, &id);
	if (id.name[0])
		snprintf(buf, len, "%" PRIu64 " (%s)", ino, id.name);
	else if (id.pid)
		snprintf(buf, len, "%" PRIu64 " (pid %d %s)", ino, id.pid, id.comm);
	else
		snprintf(buf, len, "%" PRIu64, ino);
	return buf;
}

int pl_netns_open(uint64_t ino, uint64_t cookie)
{
	struct pl_netns_id id;
	char path[300];
	struct stat st;
	int fd;

	pl_netns_identify(ino, cookie, true, &id);
	if (id.name[0])
		snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", id.name);
	else if (id.pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/net", id.pid);
	else
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	/* the name or the process moved on since the walk */
	if (fstat(fd, &st) || st.st_ino != ino) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

struct ns_job {
	int fd;
	int (*fn)(void *);
	void *arg;
	int ret;
};

static void *ns_job_run(void *p)
{
	struct ns_job *j = p;

	/* this thread's namespace alone: the caller's threads and sockets stay where they are */
	j->ret = setns(j->fd, CLONE_NEWNET) ? -errno : j->fn(j->arg);
	return NULL;
}

int pl_netns_run(uint64_t ino, uint64_t cookie, int (*fn)(void *), void *arg)
{
	struct ns_job j = { .fn = fn, .arg = arg };
	pthread_t t;
	int err;

	j.fd = pl_netns_open(ino, cookie);
	if (j.fd < 0)
		return j.fd;
	err = pthread_create(&t, NULL, ns_job_run, &j);
	if (!err)
		pthread_join(t, NULL);
	close(j.fd);
	return err ? -err : j.ret;
}

int pl_netns_find(int (*fn)(void *), void *arg, uint64_t *ino)
{
	uint64_t *inos;
	size_t n = 0;
	int ret = 0;

	pthread_mutex_lock(&cache.lock);
	/* fresh: the namespace an interface moved to may be new */
	walk_names();
	walk_pids();
	cache.names_at = cache.pids_at = (long long)pl_mono_ns();
	inos = calloc(cache.n + 1, sizeof(*inos));
	for (size_t i = 0; inos && i < cache.n; i++)
		inos[n++] = cache.e[i].ino;
	pthread_mutex_unlock(&cache.lock);
	if (!inos)
		return -ENOMEM;
	for (size_t i = 0; i < n && ret <= 0; i++) {
		ret = pl_netns_run(inos[i], 0, fn, arg);
		if (ret > 0)
			*ino = inos[i];
	}
	free(inos);
	return ret > 0 ? ret : 0;
}
