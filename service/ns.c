// SPDX-License-Identifier: GPL-2.0
/* The network namespaces a config covers, held open (service/ns.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <pktlens/array.h>

#include "ns.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int pl_nsset_init(struct pl_nsset *s, char *why, size_t whylen)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->root_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (s->root_fd < 0 || fstat(s->root_fd, &st)) {
		int err = -errno;

		snprintf(why, whylen, "cannot open /proc/self/ns/net: %s", strerror(-err));
		if (s->root_fd >= 0)
			close(s->root_fd);
		s->root_fd = -1;
		return err;
	}
	s->root_ino = st.st_ino;
	return 0;
}

const struct pl_ns *pl_nsset_find(const struct pl_nsset *s, uint64_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ns[i].ino == ino)
			return &s->ns[i];
	return NULL;
}

/* The covered namespaces as they are now: fd -1 for those to open. */
static int wanted(const struct pl_nsset *s, const struct pl_config *c, struct pl_ns **out,
		  size_t *n, size_t *pending)
{
	struct pl_ns *w = NULL;
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	*n = 0;
	if (pl_config_covers(c, NULL)) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		w[0] = (struct pl_ns){ .ino = s->root_ino, .fd = -1, .slash = true };
		*n = cap = 1;
	}
	d = opendir(PL_NETNS_DIR);
	while (d && (de = readdir(d))) {
		char path[512];
		struct pl_ns *p;
		struct statfs sfs;
		struct stat st;
		size_t i;

		if (de->d_name[0] == '.' || !pl_config_covers(c, de->d_name) ||
		    (size_t)snprintf(path, sizeof(path), PL_NETNS_DIR "/%s", de->d_name) >= sizeof(path))
			continue;
		if (statfs(path, &sfs) || stat(path, &st))
			continue;
		if ((unsigned long)sfs.f_type != NSFS_MAGIC) {
			if (pending)
				(*pending)++;	/* `ip netns add` has not mounted it yet */
			continue;
		}
		for (i = 0; i < *n && w[i].ino != st.st_ino; i++)
			;
		if (i < *n) {	/* two names, one namespace: the first in sort order */
			if (!w[i].name[0] || strcmp(de->d_name, w[i].name) < 0)
				snprintf(w[i].name, sizeof(w[i].name), "%s", de->d_name);
			continue;
		}
		p = pl_grown(w, &cap, *n, sizeof(*p), 16);
		if (!p) {
			free(w);
			closedir(d);
			return -ENOMEM;
		}
		w = p;
		w[*n] = (struct pl_ns){ .ino = st.st_ino, .fd = -1 };
		snprintf(w[*n].name, sizeof(w[*n].name), "%s", de->d_name);
		(*n)++;
	}
	if (d)
		closedir(d);
	*out = w;
	return 0;
}

int pl_nsset_update(struct pl_nsset *s, const struct pl_config *c, bool *changed, size_t *pending)
{
	struct pl_ns *w = NULL;
	size_t n = 0, kept = 0;
	int err;

	if (pending)
		*pending = 0;
	err = wanted(s, c, &w, &n, pending);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		const struct pl_ns *old = pl_nsset_find(s, w[i].ino);
		char path[512];

		if (old) {
			w[i].fd = dup(old->fd);
			kept++;
		} else if (w[i].slash || w[i].ino == s->root_ino) {
			w[i].fd = dup(s->root_fd);
		} else {
			snprintf(path, sizeof(path), PL_NETNS_DIR "/%s", w[i].name);
			w[i].fd = open(path, O_RDONLY | O_CLOEXEC);
		}
		if (w[i].fd < 0)
			w[i].ino = 0;	/* gone in between: dropped below */
	}
	if (changed)
		*changed = kept != s->n || n != s->n;
	for (size_t i = 0; i < s->n; i++)
		close(s->ns[i].fd);
	free(s->ns);
	s->ns = w;
	s->n = 0;
	for (size_t i = 0; i < n; i++)
		if (w[i].ino)
			w[s->n++] = w[i];
	return 0;
}

/* The inode of the network namespace this thread is in; 0 if unknown. */
static uint64_t here_ino(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) ? 0 : (uint64_t)st.st_ino;
}

/*
 * setns(2) needs CAP_SYS_ADMIN even into the namespace the thread is already
 * in, and pktlens.service has no CAP_SYS_ADMIN: a config of the root
 * namespace only must not need it, so the namespace we are in is not entered.
 */
int pl_ns_enter(const struct pl_ns *ns)
{
	if (ns->ino && ns->ino == here_ino())
		return 0;
	return setns(ns->fd, CLONE_NEWNET) ? -errno : 0;
}

void pl_ns_leave(const struct pl_nsset *s)
{
	if (s->root_ino && s->root_ino == here_ino())
		return;
	setns(s->root_fd, CLONE_NEWNET);
}

void pl_nsset_free(struct pl_nsset *s)
{
	for (size_t i = 0; i < s->n; i++)
		close(s->ns[i].fd);
	free(s->ns);
	if (s->root_fd >= 0)
		close(s->root_fd);
	memset(s, 0, sizeof(*s));
	s->root_fd = -1;
}

const char *pl_ns_label(const struct pl_ns *ns)
{
	return ns->name[0] ? ns->name : "root";
}

int pl_ns_names(const struct pl_ns *ns, char ***names, size_t *n)
{
	DIR *d = opendir(PL_NETNS_DIR);
	struct dirent *de;
	bool own = false;
	char **v = NULL;
	size_t k = 0;

	*names = NULL;
	*n = 0;
	while (d && (de = readdir(d))) {
		char path[512], **nv;
		struct statfs sfs;
		struct stat st;

		if (de->d_name[0] == '.' ||
		    (size_t)snprintf(path, sizeof(path), PL_NETNS_DIR "/%s", de->d_name) >= sizeof(path) ||
		    statfs(path, &sfs) || (unsigned long)sfs.f_type != NSFS_MAGIC || stat(path, &st) ||
		    st.st_ino != ns->ino)
			continue;
		nv = realloc(v, (k + 2) * sizeof(*v));
		if (!nv || !(nv[k] = strdup(de->d_name))) {
			v = nv ? nv : v;
			goto nomem;
		}
		v = nv;
		own |= !strcmp(v[k++], ns->name);
	}
	if (!own) {	/* gone from /run/netns in between: its own name still says it */
		char **nv = realloc(v, (k + 1) * sizeof(*v));

		if (!nv || !(nv[k] = strdup(ns->name))) {
			v = nv ? nv : v;
			goto nomem;
		}
		v = nv;
		k++;
	}
	if (d)
		closedir(d);
	*names = v;
	*n = k;
	return 0;
nomem:
	if (d)
		closedir(d);
	pl_ns_names_free(v, k);
	return -ENOMEM;
}

void pl_ns_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
