// SPDX-License-Identifier: GPL-2.0
/*
 * Capture-only programs (xdp/pktlens_cap_xdp.bpf.c, tc/pktlens_cap_tc.bpf.c):
 * `pktlens sample DEV` on an interface pktlens has not attached loads them,
 * attaches them for the sampler's duration and hands the sampler their maps
 * as if they were an attachment's (struct pl_sampler), so everything else
 * in loader/sample.c works unchanged. Nothing is pinned: the links (XDP,
 * tcx) belong to the process, so even a kill -9 detaches them. While it
 * runs the sampler keeps a marker directory, PL_PIN_ROOT/cap:INO:DEV:PID
 * (the sampler's lock lives on it); a marker whose pid is dead is removed
 * by the next pktlens command (pl_cap_gc()), which also removes the clsact
 * filter such a sampler left on a kernel without tcx (before Linux 6.6:
 * clsact filters are not links and outlive their process).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/why.h>

#include "features.h"
#include "loader.h"
#include "pktlens_cap_xdp.skel.h"
#include "pktlens_cap_tc.skel.h"

#define CAP_PREFIX "cap:"
#define CAP_CLSACT_HANDLE 0x7063	/* "pc": ours, apart from attach's 0x706c */
#define CAP_CLSACT_PRIO 1
#define CAP_BPF_F_BEFORE (1U << 3)	/* UAPI of Linux 6.6 */

/* The maps the programs use; the others their headers define are not created. */
static bool needed(const char *name)
{
	static const char *const names[] = { PL_MAP_SAMPLE_CFG, PL_MAP_SAMPLE_STATS,
		PL_MAP_SAMPLE_RING, PL_MAP_SAMPLE_RES, PL_MAP_SAMPLE_FLOWS, PL_MAP_SAMPLE_LEASE, "sample_hdr",
		PL_MAP_XDP_CHAIN, PL_MAP_TC_CHAIN };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

static int trim_maps(struct bpf_object *obj)
{
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m) || needed(bpf_map__name(m)))
			continue;
		if ((err = bpf_map__set_autocreate(m, false)))
			return err;
	}
	return 0;
}

static int dup_map(const struct bpf_object *obj, const char *name)
{
	int fd = bpf_map__fd(bpf_object__find_map_by_name(obj, name));

	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* The sampler's view: the object's maps as an attachment's pins would give them. */
static int fill_sampler(struct pl_cap *cap, const struct bpf_object *obj, int chain_fd,
			struct pl_sampler *s)
{
	int *fds[] = { &s->cfg_fd, &s->stats_fd, &s->outer_fd, &s->res_fd, &s->flows_fd,
		       &s->lease_fd };
	const char *names[] = { PL_MAP_SAMPLE_CFG, PL_MAP_SAMPLE_STATS, PL_MAP_SAMPLE_RING,
				PL_MAP_SAMPLE_RES, PL_MAP_SAMPLE_FLOWS, PL_MAP_SAMPLE_LEASE };

	memset(s, 0, sizeof(*s));
	s->dir_fd = s->ring_fd = -1;
	s->c.res_fd = s->c.xdp_fd = s->c.tc_fd = s->c.meta_fd = -1;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		*fds[i] = -1;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if ((*fds[i] = dup_map(obj, names[i])) < 0)
			return -errno;
	if (cap->xdp) {
		s->c.meta.xdp_mode = PL_XDP_SKB;	/* the chain's programs: no frags */
		s->c.xdp_fd = fcntl(chain_fd, F_DUPFD_CLOEXEC, 3);
	} else {
		s->c.meta.tc_hooks = cap->dirs;
		s->c.tc_fd = fcntl(chain_fd, F_DUPFD_CLOEXEC, 3);
	}
	if ((cap->xdp ? s->c.xdp_fd : s->c.tc_fd) < 0)
		return -errno;
	s->c.meta.ifindex = (__u32)cap->ifindex;
	snprintf(s->c.meta.ifname, sizeof(s->c.meta.ifname), "%s", cap->ifname);
	s->dir_fd = open(cap->marker, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return s->dir_fd < 0 ? -errno : 0;
}

static int chain_main(int chain_fd, __u32 slot, const struct bpf_program *p)
{
	int fd = bpf_program__fd(p);

	return bpf_map_update_elem(chain_fd, &slot, &fd, BPF_ANY) ? -errno : 0;
}

static int attach_xdp(struct pl_cap *cap, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_link_create_opts, o);
	int prog = bpf_program__fd(cap->x->progs.pl_cap_xdp), err;

	/* native where the driver has it, else generic */
	o.flags = XDP_FLAGS_DRV_MODE;
	cap->link[0] = bpf_link_create(prog, cap->ifindex, BPF_XDP, &o);
	cap->xdp_mode = PL_XDP_NATIVE;
	if (cap->link[0] < 0 && errno != EBUSY && errno != EEXIST) {
		o.flags = XDP_FLAGS_SKB_MODE;
		cap->link[0] = bpf_link_create(prog, cap->ifindex, BPF_XDP, &o);
		cap->xdp_mode = PL_XDP_SKB;
	}
	if (cap->link[0] >= 0)
		return 0;
	err = -errno;
	return pl_why(why, whylen, pl_load_err(err), "%s: cannot attach the capture program "
		      "pl_cap_xdp: %s%s", cap->ifname, strerror(-err),
		      err == -EBUSY || err == -EEXIST ? " (another XDP program is attached: capture "
		      "at tc, without --xdp)" : "");
}

/* The pid of another live capture-only sampler of this interface (its marker), or 0. */
static long other_sampler(const struct pl_cap *cap)
{
	const char *mine = strrchr(cap->marker, '/') + 1, *colon = strrchr(mine, ':');
	size_t len = (size_t)(colon - mine) + 1;	/* "cap:INO:DEV:" */
	struct dirent *de;
	long pid = 0;
	DIR *root;

	root = opendir(PL_PIN_ROOT);
	if (!root)
		return 0;
	while (!pid && (de = readdir(root))) {
		long p;

		if (strncmp(de->d_name, mine, len) || !strcmp(de->d_name, mine))
			continue;
		p = strtol(de->d_name + len, NULL, 10);
		if (p > 0 && (!kill((pid_t)p, 0) || errno != ESRCH))
			pid = p;
	}
	closedir(root);
	return pid;
}

static int attach_tc(struct pl_cap *cap, int dir, char *why, size_t whylen)
{
	const struct bpf_program *p = dir == PL_DIR_IN ? cap->t->progs.pl_cap_tc_in :
							 cap->t->progs.pl_cap_tc_out;
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = cap->ifindex,
		    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(p),
		    .handle = CAP_CLSACT_HANDLE, .priority = CAP_CLSACT_PRIO);
	/* first in line, as tcpdump sees packets before tc ingress does */
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = CAP_BPF_F_BEFORE);
	const char *dname = dir == PL_DIR_IN ? "ingress" : "egress";
	long other;
	bool made;
	int err;

	if (cap->tcx) {
		cap->link[1 + dir] = bpf_link_create(bpf_program__fd(p), cap->ifindex,
						     dir == PL_DIR_IN ? PL_BPF_TCX_INGRESS :
									PL_BPF_TCX_EGRESS, &lo);
		if (cap->link[1 + dir] >= 0)
			return 0;
		err = -errno;
		return pl_why(why, whylen, pl_load_err(err), "%s: cannot attach the capture "
			      "program %s with tcx: %s", cap->ifname, bpf_program__name(p),
			      strerror(-err));
	}
	err = pl_clsact_hook(&hook, cap->ifname, &made, why, whylen);
	if (err)
		return err;
	if (made)
		cap->qdisc_made = true;
	err = bpf_tc_attach(&hook, &opts);
	if (err == -EEXIST && (other = other_sampler(cap)) > 0)	/* its filter is there */
		return pl_why(why, whylen, -EBUSY, "%s: pktlens sample (pid %ld) is sampling it "
			      "already", cap->ifname, other);
	if (err)
		return pl_why(why, whylen, err == -EINVAL ? -EBUSY : err, "%s: cannot attach the "
			      "capture program %s on tc %s: %s", cap->ifname, bpf_program__name(p),
			      dname, err == -EINVAL ? PL_CLSACT_PRIO_TAKEN : strerror(-err));
	cap->filter[dir] = true;
	return 0;
}

static void clsact_remove(int ifindex, int dir)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CAP_CLSACT_HANDLE, .priority = CAP_CLSACT_PRIO);

	bpf_tc_detach(&hook, &opts);
}

static void clsact_release(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int n = 1;

	if (!pl_clsact_filter_count(ifindex, &n) && n == 0)
		bpf_tc_hook_destroy(&hook);
}

int pl_cap_open(const char *ifname, bool xdp, __u32 dirs, struct pl_cap *cap,
		struct pl_sampler *s, char *why, size_t whylen)
{
	char name[PL_PIN_NAME_MAX];
	struct pl_netns here;
	const struct bpf_object *obj;
	int chain_fd, err;

	memset(cap, 0, sizeof(*cap));
	cap->link[0] = cap->link[1] = cap->link[2] = -1;
	cap->xdp = xdp;
	cap->dirs = xdp ? 1U << PL_DIR_IN : dirs;
	cap->tcx = pl_feature(PL_FEAT_TCX);
	snprintf(cap->ifname, sizeof(cap->ifname), "%s", ifname);
	/* sampler fds stay -1 until filled: pl_sample_close() is safe on failure */
	memset(s, 0, sizeof(*s));
	s->dir_fd = s->ring_fd = s->cfg_fd = s->stats_fd = s->outer_fd = s->res_fd = -1;
	s->flows_fd = s->c.res_fd = s->c.xdp_fd = s->c.tc_fd = s->c.meta_fd = -1;
	cap->ifindex = (int)if_nametoindex(ifname);
	if (!cap->ifindex)
		return pl_why(why, whylen, -ENODEV, "%s: %s", ifname, strerror(ENODEV));
	if (xdp && !pl_feature(PL_FEAT_XDP_LOAD_BYTES)) {
		char needs[128];

		return pl_why(why, whylen, -ENOSYS, "capturing at XDP %s: capture at tc (without "
			      "--xdp)", pl_feature_needs(PL_FEAT_XDP_LOAD_BYTES, needs,
							  sizeof(needs)));
	}
	if ((err = pl_bpffs_ensure(why, whylen)))
		return err;
	if ((err = pl_netns_here(&here)))
		return pl_why(why, whylen, err, "cannot tell the network namespace: %s",
			      strerror(-err));
	if ((err = pl_pin_name(name, sizeof(name), ifname)))
		return pl_why(why, whylen, err, "%s: %s", ifname, strerror(-err));
	snprintf(cap->marker, sizeof(cap->marker), "%s/" CAP_PREFIX "%llu:%s:%d", PL_PIN_ROOT,
		 (unsigned long long)here.ino, name, (int)getpid());
	if (mkdir(cap->marker, 0700))
		return pl_why(why, whylen, -errno, "cannot create %s: %s", cap->marker,
			      strerror(errno));
	cap->marker_made = true;
	if (xdp) {
		cap->x = pktlens_cap_xdp__open();
		obj = cap->x ? cap->x->obj : NULL;
	} else {
		cap->t = pktlens_cap_tc__open();
		obj = cap->t ? cap->t->obj : NULL;
	}
	if (!obj)
		return pl_why(why, whylen, -errno, "cannot open the capture program: %s",
			      strerror(errno));
	err = pl_obj_kernel((struct bpf_object *)obj);
	if (!err)
		err = trim_maps((struct bpf_object *)obj);
	if (!err)
		err = xdp ? pktlens_cap_xdp__load(cap->x) : pktlens_cap_tc__load(cap->t);
	if (err)
		return pl_why(why, whylen, pl_load_err(err), "the kernel refused the capture "
			      "program: %s (PKTLENS_DEBUG=1 shows the verifier's log)",
			      strerror(-err));
	if (xdp) {
		chain_fd = bpf_map__fd(cap->x->maps.xdp_chain);
		err = chain_main(chain_fd, PL_CHAIN_MAIN(PL_DIR_IN), cap->x->progs.pl_cap_xdp_main);
	} else {
		chain_fd = bpf_map__fd(cap->t->maps.tc_chain);
		err = chain_main(chain_fd, PL_CHAIN_MAIN(PL_DIR_IN), cap->t->progs.pl_cap_tc_in_main);
		if (!err)
			err = chain_main(chain_fd, PL_CHAIN_MAIN(PL_DIR_OUT),
					 cap->t->progs.pl_cap_tc_out_main);
	}
	if (!err)
		err = fill_sampler(cap, obj, chain_fd, s);
	if (err)
		return pl_why(why, whylen, err, "cannot set up the capture program: %s",
			      strerror(-err));
	/* sampling is off until the sampler writes sample_cfg: attaching changes nothing yet */
	if (xdp)
		return attach_xdp(cap, why, whylen);
	for (int dir = 0; dir < 2; dir++)
		if ((cap->dirs & (1U << dir)) && (err = attach_tc(cap, dir, why, whylen)))
			return err;
	return 0;
}

const char *pl_cap_desc(const struct pl_cap *cap, char *buf, size_t len)
{
	if (cap->xdp)
		snprintf(buf, len, "XDP program pl_cap_xdp (%s mode)",
			 cap->xdp_mode == PL_XDP_NATIVE ? "native" : "generic");
	else
		snprintf(buf, len, "tc program%s %s%s%s (%s)", cap->dirs == 3 ? "s" : "",
			 cap->dirs & 1 ? "pl_cap_tc_in" : "", cap->dirs == 3 ? " and " : "",
			 cap->dirs & 2 ? "pl_cap_tc_out" : "", cap->tcx ? "tcx" : "clsact");
	return buf;
}

void pl_cap_close(struct pl_cap *cap)
{
	bool any = false;

	for (int i = 0; i < 3; i++) {
		if (cap->link[i] >= 0)
			close(cap->link[i]);	/* not pinned: the last reference detaches */
		cap->link[i] = -1;
	}
	for (int dir = 0; dir < 2; dir++)
		if (cap->filter[dir]) {
			clsact_remove(cap->ifindex, dir);
			cap->filter[dir] = false;
			any = true;
		}
	if (any && cap->qdisc_made)
		clsact_release(cap->ifindex);
	pktlens_cap_xdp__destroy(cap->x);
	pktlens_cap_tc__destroy(cap->t);
	cap->x = NULL;
	cap->t = NULL;
	if (cap->marker_made)
		rmdir(cap->marker);
	cap->marker_made = false;
}

/* A clsact filter of a dead capture on @ifname of this namespace: ours only if it is pl_cap_tc_*. */
static void gc_clsact(const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname), removed = 0;

	if (!ifindex)
		return;
	for (int dir = 0; dir < 2; dir++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = CAP_CLSACT_HANDLE,
			    .priority = CAP_CLSACT_PRIO);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd;

		if (bpf_tc_query(&hook, &q))
			continue;
		fd = bpf_prog_get_fd_by_id(q.prog_id);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    !strncmp(info.name, "pl_cap_tc", strlen("pl_cap_tc"))) {
			clsact_remove(ifindex, dir);
			removed++;
		}
		close(fd);
	}
	if (removed)
		clsact_release(ifindex);
}

static int gc_clsact_in(void *ifname)
{
	gc_clsact(ifname);
	return 0;
}

void pl_cap_gc(void)
{
	struct pl_netns here = { 0 };
	struct dirent *de;
	DIR *root;

	root = opendir(PL_PIN_ROOT);
	if (!root)
		return;
	pl_netns_here(&here);
	while ((de = readdir(root))) {
		unsigned long long ino;
		char name[PL_PIN_NAME_MAX], ifname[IF_NAMESIZE], path[600];
		const char *colon;
		long pid;
		int n = 0;

		if (strncmp(de->d_name, CAP_PREFIX, strlen(CAP_PREFIX)))
			continue;
		colon = strrchr(de->d_name, ':');
		pid = strtol(colon + 1, NULL, 10);
		if (pid <= 0 || !kill((pid_t)pid, 0) || errno != ESRCH)
			continue;	/* still running (or not ours to judge) */
		if (sscanf(de->d_name, CAP_PREFIX "%llu:%47[^:]:%n", &ino, name, &n) == 2 && n &&
		    !pl_pin_name_ifname(ifname, sizeof(ifname), name) && !pl_feature(PL_FEAT_TCX)) {
			if (ino == here.ino)
				gc_clsact(ifname);
			/*
			 * another namespace's: its filters are there, so removed from a
			 * thread inside it; the marker stays for a later command when
			 * that fails, but goes with a namespace that is gone (and its
			 * filters with it)
			 */
			else if ((n = pl_netns_run(ino, 0, gc_clsact_in, ifname)) && n != -ENOENT)
				continue;
		}
		snprintf(path, sizeof(path), "%s/%s", PL_PIN_ROOT, de->d_name);
		rmdir(path);
	}
	closedir(root);
}
