// SPDX-License-Identifier: GPL-2.0
/*
 * What `pktlens apply` and `pktlens daemon` need beyond attach and detach:
 * the config that manages an attachment (pl_meta.managed_by) and following
 * an interface's new name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "loader.h"

/*
 * The metadata map of @dir, its contents, and whether its values hold
 * managed_by. A write of a whole pl_meta takes as much as its values hold.
 */
static int meta_open(const char *dir, struct pl_meta *m, bool *owned, char *why, size_t whylen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = pl_pin_open(dir, PL_MAP_META), err;

	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot open %s/%s: %s", dir, PL_MAP_META, strerror(-err));
		return err;
	}
	err = pl_meta_read(fd, m);
	if (!err && bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	if (err) {
		snprintf(why, whylen, "cannot read %s/%s: %s", dir, PL_MAP_META, strerror(-err));
		close(fd);
		return err;
	}
	*owned = info.value_size > PL_META_V6_SIZE;
	return fd;
}

static int meta_write(int fd, const struct pl_meta *m, const char *dir, char *why, size_t whylen)
{
	__u32 key = 0;
	int err = 0;

	if (bpf_map_update_elem(fd, &key, m, BPF_ANY)) {
		err = -errno;
		snprintf(why, whylen, "cannot write %s/%s: %s", dir, PL_MAP_META, strerror(-err));
	}
	return err;
}

int pl_meta_set_owner(const char *dir, const char *owner, const char *file, char *why,
		      size_t whylen)
{
	struct pl_meta m;
	bool owned;
	int fd, err;

	if (strlen(owner) >= sizeof(m.managed_by)) {
		snprintf(why, whylen, "config name longer than %zu bytes", sizeof(m.managed_by) - 1);
		return -ENAMETOOLONG;
	}
	fd = meta_open(dir, &m, &owned, why, whylen);
	if (fd < 0)
		return fd;
	if (!owned) {
		snprintf(why, whylen, "attached by an older pktlens (metadata version %u): it "
			 "must be attached again to record who manages it", m.version);
		close(fd);
		return -EPROTO;
	}
	snprintf(m.managed_by, sizeof(m.managed_by), "%s", owner);
	snprintf(m.managed_file, sizeof(m.managed_file), "%s", file ? file : "");
	err = meta_write(fd, &m, dir, why, whylen);
	close(fd);
	return err;
}

/* The attachment in @dir is now of interface @ifname: record it. */
static int meta_set_ifname(const char *dir, const char *ifname, char *why, size_t whylen)
{
	struct pl_meta m;
	bool owned;
	int fd, err;

	fd = meta_open(dir, &m, &owned, why, whylen);
	if (fd < 0)
		return fd;
	snprintf(m.ifname, sizeof(m.ifname), "%s", ifname);
	err = meta_write(fd, &m, dir, why, whylen);
	close(fd);
	return err;
}

int pl_attachment_rename(const struct pl_attachment *a, const char *ifname, char *why,
			 size_t whylen)
{
	char dir[512];
	struct pl_meta m;
	int err;

	err = pl_pin_dir(dir, sizeof(dir), a->netns, ifname);
	if (err || strlen(ifname) >= sizeof(m.ifname)) {
		snprintf(why, whylen, "%s: name too long", ifname);
		return -ENAMETOOLONG;
	}
	if (!access(dir, F_OK)) {
		snprintf(why, whylen, "%s: %s has pins already", a->ifname, dir);
		return -EEXIST;
	}
	if (rename(a->dir, dir)) {
		err = -errno;
		snprintf(why, whylen, "%s: cannot move %s to %s: %s", a->ifname, a->dir, dir,
			 strerror(-err));
		return err;
	}
	return meta_set_ifname(dir, ifname, why, whylen);
}

int pl_attachment_swap(const struct pl_attachment *a, const struct pl_attachment *b, char *why,
		       size_t whylen)
{
	int err;

	if (renameat2(AT_FDCWD, a->dir, AT_FDCWD, b->dir, RENAME_EXCHANGE)) {
		err = -errno;
		snprintf(why, whylen, "%s: cannot exchange %s and %s: %s", a->ifname, a->dir, b->dir,
			 strerror(-err));
		return err;
	}
	/* each directory holds the other's pins now: each records its directory's name */
	err = meta_set_ifname(b->dir, b->ifname, why, whylen);
	return err ?: meta_set_ifname(a->dir, a->ifname, why, whylen);
}
