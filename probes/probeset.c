// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <pktlens/why.h>

#include "probeset.h"
#include "../loader/loader.h"

void pl_probe_set_unpin(const struct pl_probe_pins *p, const char *dir)
{
	pl_pins_unpin(dir, NULL, 0, p->links, p->nlinks);
	pl_pins_unpin(dir, NULL, 0, p->maps, p->nmaps);
}

bool pl_probe_link_shared(const char *name)
{
	const struct pl_probe_pins *sets[] = { &pl_drop_pins, &pl_tcp_pins };

	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
		for (size_t i = 0; i < sets[s]->nlinks; i++)
			if (!strcmp(name, sets[s]->links[i]))
				return true;
	return false;
}

/*
 * Whether @dir pins a whole set of @p (its first link and every map); the
 * id of its first map in @map_id.
 */
static bool pinned_set(const struct pl_probe_pins *p, const char *dir, __u32 *map_id)
{
	struct bpf_map_info mi = { 0 };
	__u32 mlen = sizeof(mi);
	char path[1024];
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, p->links[0]);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	close(fd);
	for (size_t i = 1; i < p->nmaps - p->nmaps_new; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, p->maps[i]);
		if (access(path, F_OK))
			return false;
	}
	fd = pl_pin_open(dir, p->maps[0]);
	if (fd < 0)
		return false;
	ok = !bpf_obj_get_info_by_fd(fd, &mi, &mlen);
	close(fd);
	*map_id = mi.id;
	return ok;
}

/* Pin the set pinned in @from (links and maps) in @to too: one more holder of it. */
static int repin(const struct pl_probe_pins *p, const char *from, const char *to, char *why,
		 size_t whylen)
{
	const char *const *names[] = { p->links, p->maps };
	size_t counts[] = { p->nlinks, p->nmaps };
	char src[1024], dst[1024];

	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < counts[t]; i++) {
			int fd, err = 0;

			snprintf(src, sizeof(src), "%s/%s", from, names[t][i]);
			snprintf(dst, sizeof(dst), "%s/%s", to, names[t][i]);
			fd = bpf_obj_get(src);
			if (fd < 0 && errno == ENOENT && t == 0)
				continue;	/* a tracepoint this kernel lacks */
			if (fd < 0 && errno == ENOENT && i >= counts[t] - p->nmaps_new)
				continue;	/* a map newer than the set (an older pktlens's) */
			if (fd < 0 || bpf_obj_pin(fd, dst))
				err = pl_why(why, whylen, -errno, "cannot pin %s as %s: %s", src, dst,
					     strerror(errno));
			if (fd >= 0)
				close(fd);
			if (err)
				return err;
		}
	return 0;
}

/* The running set @dir is to pin (pl_probe_set_pin()), into @from; false: none. */
static bool running_set(const struct pl_probe_pins *p, const char *nsdir, const char *dir,
			const char *carry, char *from, size_t fromlen)
{
	__u32 map, best = 0;
	struct dirent *de;
	char sub[800];
	DIR *d;

	if (!p->per_ns) {
		if (!carry || !pinned_set(p, carry, &map))
			return false;
		snprintf(from, fromlen, "%s", carry);
		return true;
	}
	d = opendir(nsdir);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", nsdir, de->d_name);
		if (strcmp(sub, dir) && pinned_set(p, sub, &map) && (!best || map < best)) {
			best = map;
			snprintf(from, fromlen, "%s", sub);
		}
	}
	closedir(d);
	return best != 0;
}

int pl_probe_set_pin(const struct pl_probe_pins *p, __u64 netns, const char *dir,
		     const char *carry, pl_probe_load_fn load, char *why, size_t whylen)
{
	char nsdir[512], from[800];
	char *slash;
	int lock = -1, err;

	snprintf(nsdir, sizeof(nsdir), "%s", dir);
	slash = strrchr(nsdir, '/');
	if (slash)
		*slash = '\0';
	/* a set of the attachment's own: no other attach looks for it, none to wait for */
	if (p->per_ns) {
		lock = open(nsdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lock < 0 || flock(lock, LOCK_EX)) {
			err = pl_why(why, whylen, -errno, "cannot lock %s: %s", nsdir,
				     strerror(errno));
			if (lock >= 0)
				close(lock);
			return err;
		}
	}
	if (running_set(p, nsdir, dir, carry, from, sizeof(from)))
		err = repin(p, from, dir, why, whylen);
	else
		err = load(netns, dir, carry, why, whylen);
	if (err)
		pl_probe_set_unpin(p, dir);
	if (lock >= 0)
		close(lock);
	return err;
}
