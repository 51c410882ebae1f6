// SPDX-License-Identifier: GPL-2.0
/*
 * attach/detach. XDP is attached with a bpf_link (BPF_LINK_CREATE, BPF_XDP)
 * pinned in bpffs: the pin owns the attachment, so it survives the CLI, no
 * other tool can silently replace it, and if `attach` dies before pinning,
 * the kernel detaches the program when the link fd closes. A foreign program
 * attached over netlink is found with bpf_xdp_query() (netlink) and only
 * removed with --force.
 *
 * Atomicity: everything is pinned in a temporary directory first and renamed
 * into place as the last step, so bpffs shows a complete attachment or none;
 * leftovers of a killed attach are removed by pl_pins_gc().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pktlens_xdp.skel.h"

const char *pl_xdp_mode_name(int mode)
{
	switch (mode) {
	case PL_XDP_NATIVE:
		return "native";
	case PL_XDP_SKB:
		return "skb";
	default:
		return "none";
	}
}

static int pin_map(struct bpf_map *map, const char *dir)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	return bpf_map__pin(map, path);
}

static int prog_id(int fd, __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}

static int map_max_entries(int fd, __u32 *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*max = info.max_entries;
	return 0;
}

/* Choose native or generic XDP from the driver when not told. */
static int choose_mode(const struct pl_link_info *li, int asked, const char **reason)
{
	if (asked >= 0) {
		*reason = "as requested (--xdp)";
		return asked;
	}
	if (li->kind[0] || li->loopback) {
		*reason = "virtual device: native XDP there linearizes skbs and loses GRO, "
			  "generic XDP costs nothing measurable (override with --xdp native)";
		return PL_XDP_SKB;
	}
	*reason = "physical device: native XDP runs in the driver (override with --xdp skb)";
	return PL_XDP_NATIVE;
}

/* Refuse (or with --force remove) an XDP program that is not @ours. */
static int handle_foreign(int ifindex, const char *ifname, __u32 ours, bool force,
			  bool *replaced, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct {
		__u32 id;
		__u32 flag;
		const char *name;
	} slots[3];
	int err, i;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		snprintf(why, whylen, "%s: cannot query XDP state: %s", ifname, strerror(-err));
		return err;
	}
	slots[0].id = q.drv_prog_id, slots[0].flag = XDP_FLAGS_DRV_MODE, slots[0].name = "native";
	slots[1].id = q.skb_prog_id, slots[1].flag = XDP_FLAGS_SKB_MODE, slots[1].name = "skb";
	slots[2].id = q.hw_prog_id, slots[2].flag = XDP_FLAGS_HW_MODE, slots[2].name = "hw";
	for (i = 0; i < 3; i++) {
		if (!slots[i].id || slots[i].id == ours)
			continue;
		if (!force) {
			snprintf(why, whylen,
				 "%s: a foreign XDP program (id %u, %s mode) is attached; "
				 "--force replaces it", ifname, slots[i].id, slots[i].name);
			return -EBUSY;
		}
		err = bpf_xdp_detach(ifindex, slots[i].flag, NULL);
		if (err) {
			snprintf(why, whylen, "%s: cannot remove XDP program id %u: %s%s", ifname,
				 slots[i].id, strerror(-err),
				 err == -EBUSY ? " (it is owned by a bpf_link; detach it with its owner)" : "");
			return err;
		}
		*replaced = true;
	}
	return 0;
}

/*
 * Reuse the maps of the attachment being replaced (--force), so counters
 * survive. The flow table is reused only when its capacity is unchanged;
 * otherwise its merged contents are copied into the new table afterwards.
 */
static int reuse_old_maps(struct pktlens_xdp *skel, const struct pl_state *old, bool *flows_reused)
{
	__u32 max = 0;
	int err;

	err = bpf_map__reuse_fd(skel->maps.stats, old->stats_fd);
	if (err)
		return err;
	err = map_max_entries(old->flows_fd, &max);
	if (err)
		return err;
	*flows_reused = max == bpf_map__max_entries(skel->maps.flows);
	if (!*flows_reused)
		return 0;
	err = bpf_map__reuse_fd(skel->maps.flows, old->flows_fd);
	if (!err)
		err = bpf_map__reuse_fd(skel->maps.flow_cache, old->cache_fd);
	return err;
}

/* Copy merged flows into a fresh table (CPU 0 gets the sums). */
static int copy_flows(const struct pl_state *old, int new_fd, uint64_t *lost)
{
	int ncpu = libbpf_num_possible_cpus();
	struct pl_flow_val *vals;
	struct pl_flow *fl = NULL;
	size_t n = 0, i;
	int err;

	if (ncpu < 0)
		return ncpu;
	err = pl_state_flows(old, &fl, &n);
	if (err)
		return err;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals) {
		free(fl);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		vals[0] = fl[i].val;
		if (bpf_map_update_elem(new_fd, &fl[i].key, vals, BPF_NOEXIST))
			*lost += fl[i].val.packets;
	}
	free(vals);
	free(fl);
	return 0;
}

int pl_attach(const struct pl_attach_opts *o, struct pl_attach_info *info, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts);
	char final[512], tmp[600], path[700];
	struct pktlens_xdp *skel = NULL;
	struct pl_state old = { -1, -1, -1, -1, {} };
	struct pl_link_info li;
	struct pl_meta m = {};
	bool have_old, flows_reused = false, tmp_made = false;
	uint64_t ns, lost = 0;
	int link_fd = -1, err, mode;
	__u32 key = 0;

	memset(info, 0, sizeof(*info));
	err = pl_link_get(o->ifname, 0, &li);
	if (err) {
		snprintf(why, whylen, "%s: %s", o->ifname,
			 err == -ENODEV ? "no such interface" : strerror(-err));
		return err;
	}
	if (!li.up && !o->force) {
		snprintf(why, whylen, "%s: interface is down (ip link set %s up, or --force)",
			 o->ifname, o->ifname);
		return -ENETDOWN;
	}
	err = pl_bpffs_ensure(why, whylen);
	if (err)
		return err;
	pl_pins_gc();
	err = pl_netns_ino(&ns);
	if (!err)
		err = pl_pin_dir(final, sizeof(final), ns, li.ifname);
	if (err) {
		snprintf(why, whylen, "%s: %s", o->ifname, strerror(-err));
		return err;
	}
	have_old = access(final, F_OK) == 0;
	if (have_old && !o->force) {
		snprintf(why, whylen, "%s: already attached (pktlens detach %s, or --force to re-attach)",
			 o->ifname, o->ifname);
		return -EEXIST;
	}
	if (have_old && pl_state_open(final, &old) == 0)
		info->reattached = true;

	mode = choose_mode(&li, o->xdp_mode, &info->reason);
	info->xdp_mode = mode;
	info->ifindex = li.ifindex;
	err = handle_foreign(li.ifindex, o->ifname, info->reattached ? old.meta.xdp_prog_id : 0,
			     o->force, &info->replaced_foreign, why, whylen);
	if (err)
		goto out;

	skel = pktlens_xdp__open();
	if (!skel) {
		err = -errno;
		snprintf(why, whylen, "%s: cannot open the XDP object: %s", o->ifname, strerror(-err));
		goto out;
	}
	err = bpf_map__set_max_entries(skel->maps.flows, o->flows_max);
	if (!err && info->reattached)
		err = reuse_old_maps(skel, &old, &flows_reused);
	if (err) {
		snprintf(why, whylen, "%s: cannot prepare maps: %s", o->ifname, strerror(-err));
		goto out;
	}
	err = pktlens_xdp__load(skel);
	if (err) {
		snprintf(why, whylen, "%s: loading program pktlens_xdp failed: %s%s", o->ifname,
			 strerror(-err), err == -EPERM ? " (needs root or CAP_BPF+CAP_NET_ADMIN)" : "");
		goto out;
	}
	if (info->reattached && !flows_reused) {
		err = copy_flows(&old, bpf_map__fd(skel->maps.flows), &lost);
		if (err) {
			snprintf(why, whylen, "%s: cannot carry flows over: %s", o->ifname, strerror(-err));
			goto out;
		}
	}
	info->kept_counters = info->reattached && !lost;

	m.version = PL_META_VERSION;
	m.ifindex = li.ifindex;
	snprintf(m.ifname, sizeof(m.ifname), "%s", li.ifname);
	m.netns_ino = ns;
	m.attach_time = (__u64)time(NULL);
	m.xdp_mode = mode;
	m.flows_max = o->flows_max;
	err = prog_id(bpf_program__fd(skel->progs.pktlens_xdp), &m.xdp_prog_id);
	if (!err && bpf_map_update_elem(bpf_map__fd(skel->maps.meta), &key, &m, 0))
		err = -errno;
	if (err) {
		snprintf(why, whylen, "%s: cannot write attach metadata: %s", o->ifname, strerror(-err));
		goto out;
	}
	info->xdp_prog_id = m.xdp_prog_id;

	snprintf(tmp, sizeof(tmp), "%s/%llu/" PL_PIN_TMP_PREFIX "%s:%d", PL_PIN_ROOT,
		 (unsigned long long)ns, li.ifname, (int)getpid());
	snprintf(path, sizeof(path), "%s/%llu", PL_PIN_ROOT, (unsigned long long)ns);
	if ((mkdir(path, 0700) && errno != EEXIST) || mkdir(tmp, 0700)) {
		err = -errno;
		snprintf(why, whylen, "%s: cannot create %s: %s", o->ifname, tmp, strerror(-err));
		goto out;
	}
	tmp_made = true;
	err = pin_map(skel->maps.stats, tmp);
	if (!err)
		err = pin_map(skel->maps.flows, tmp);
	if (!err)
		err = pin_map(skel->maps.flow_cache, tmp);
	if (!err)
		err = pin_map(skel->maps.meta, tmp);
	if (err) {
		snprintf(why, whylen, "%s: cannot pin maps in %s: %s", o->ifname, tmp, strerror(-err));
		goto out;
	}

	/* The old link must go before the new one can attach. */
	if (have_old) {
		snprintf(path, sizeof(path), "%s/%s", final, PL_PIN_XDP_LINK);
		unlink(path);
	}
	if (mode != PL_XDP_NONE) {
		lopts.flags = mode == PL_XDP_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		link_fd = bpf_link_create(bpf_program__fd(skel->progs.pktlens_xdp), li.ifindex,
					  BPF_XDP, &lopts);
		if (link_fd < 0) {
			err = -errno;
			snprintf(why, whylen, "%s: cannot attach XDP program pktlens_xdp in %s mode: %s%s",
				 o->ifname, pl_xdp_mode_name(mode), strerror(-err),
				 err == -EOPNOTSUPP ? " (driver lacks native XDP; try --xdp skb)" :
				 err == -EBUSY || err == -EEXIST ? " (another XDP program is attached)" : "");
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", tmp, PL_PIN_XDP_LINK);
		if (bpf_obj_pin(link_fd, path)) {
			err = -errno;
			snprintf(why, whylen, "%s: cannot pin XDP link: %s", o->ifname, strerror(-err));
			goto out;
		}
	}
	if (have_old) {
		err = pl_pin_dir_remove(final);
		if (err) {
			snprintf(why, whylen, "%s: cannot remove old pins in %s: %s", o->ifname, final,
				 strerror(-err));
			goto out;
		}
	}
	if (rename(tmp, final)) {
		err = -errno;
		snprintf(why, whylen, "%s: cannot move pins into %s: %s", o->ifname, final, strerror(-err));
		goto out;
	}
	tmp_made = false;
	err = 0;
out:
	if (tmp_made)
		pl_pin_dir_remove(tmp);
	if (link_fd >= 0)
		close(link_fd);
	pktlens_xdp__destroy(skel);
	pl_state_close(&old);
	return err;
}

int pl_detach(const struct pl_attachment *a, char *why, size_t whylen)
{
	int err = pl_pin_dir_remove(a->dir);

	if (err)
		snprintf(why, whylen, "%s: cannot remove %s: %s", a->ifname, a->dir, strerror(-err));
	return err;
}
