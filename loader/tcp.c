// SPDX-License-Identifier: GPL-2.0
/*
 * Passive TCP analysis (attach --tcp-passive, bpf/tcp.h): which hooks
 * analyse, the namespace's shared tcp_state and tcp_ts maps, and reading
 * them back.
 *
 * The shared maps are pinned twice: in every attachment's directory (like
 * its other maps, so readers and rule sets find them there) and as
 * PL_PIN_ROOT/NETNS/tcp:state and tcp:ts, where the next attach in the
 * namespace finds them. Names with ':' are never interfaces'. The last
 * detach of an analysing attachment removes the namespace's pins.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"

__u32 pl_tcp_slots_for(int xdp_mode, int tc_hooks, bool tcp, bool xdp_obj, int ifindex)
{
	__u32 s = 0;

	/*
	 * XDP in skb mode sees a GSO or GRO skb linearized, one frame for its segments:
	 * tc ingress, where there is one, analyses instead (it counts skb->gso_segs)
	 */
	bool xdp_in = xdp_mode == PL_XDP_NATIVE || (xdp_mode == PL_XDP_SKB && !(tc_hooks & PL_TC_IN));

	if (!tcp)
		return 0;
	/*
	 * what lo sends out comes in again on lo: this host sent all of it, analysed once
	 * at egress where lo has that hook
	 */
	if (ifindex == PL_LOOPBACK_IFINDEX && (tc_hooks & PL_TC_OUT))
		return xdp_obj ? 0 : 1U << PL_SLOT_TC_OUT;
	if (xdp_obj)
		return xdp_in ? 1U << PL_SLOT_XDP_IN : 0;
	if (!xdp_in && (tc_hooks & PL_TC_IN))
		s |= 1U << PL_SLOT_TC_IN;
	if (tc_hooks & PL_TC_OUT)
		s |= 1U << PL_SLOT_TC_OUT;
	return s;
}

/* Whether the attachment pinned at @dir analyses TCP; its metadata into @m. */
static bool dir_meta_analyses(const char *dir, struct pl_meta *m)
{
	bool any;
	int fd = pl_pin_open(dir, PL_MAP_META);

	if (fd < 0)
		return false;
	any = !pl_meta_read(fd, m) && m->tcp_passive;
	close(fd);
	return any;
}

static bool dir_analyses(const char *dir)
{
	struct pl_meta m;

	return dir_meta_analyses(dir, &m);
}

/* Whether an attachment in PL_PIN_ROOT/@ns (other than @skip) analyses TCP. */
static bool ns_analyses(uint64_t ns, const char *skip)
{
	char path[512], sub[800];
	struct dirent *de;
	bool any = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%llu", PL_PIN_ROOT, (unsigned long long)ns);
	d = opendir(path);
	if (!d)
		return false;
	while (!any && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strchr(de->d_name, ':'))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (skip && !strcmp(sub, skip))
			continue;
		any = dir_analyses(sub);
	}
	closedir(d);
	return any;
}

/*
 * Whether the attachment pinned at @dir asked for these sizes: its maps may be
 * another's it shared (sized by the namespace's first analysing attach), and
 * the same command again keeps them as the first time.
 */
static bool asked_for(const char *dir, __u32 flows_max, __u32 ts_max)
{
	struct pl_meta m;

	return dir_meta_analyses(dir, &m) && m.flows_max == flows_max && m.tcp_ts_max == ts_max;
}

static void ns_pin_path(char *buf, size_t len, uint64_t ns, const char *name)
{
	snprintf(buf, len, "%s/%llu/%s", PL_PIN_ROOT, (unsigned long long)ns, name);
}

int pl_tcp_prepare(struct bpf_object *obj, uint64_t ns, bool on, __u32 flows_max, __u32 ts_max,
		   const char *replacing, bool *fresh)
{
	struct bpf_map *state = bpf_object__find_map_by_name(obj, PL_MAP_TCP_STATE);
	struct bpf_map *ts = bpf_object__find_map_by_name(obj, PL_MAP_TCP_TS);
	char p1[600], p2[600];
	int fd1, fd2, err;

	*fresh = false;
	if (!state || !ts)
		return -EPROTO;
	if (!on)	/* present (rule sets and readers expect them), one entry each */
		return bpf_map__set_max_entries(state, 1) ?: bpf_map__set_max_entries(ts, 1);
	ns_pin_path(p1, sizeof(p1), ns, PL_PIN_NS_TCP_STATE);
	ns_pin_path(p2, sizeof(p2), ns, PL_PIN_NS_TCP_TS);
	if (ns_analyses(ns, replacing)) {	/* shared with the namespace's other attachments */
		fd1 = bpf_obj_get(p1);
		fd2 = bpf_obj_get(p2);
	} else if (replacing && dir_analyses(replacing)) {
		/*
		 * the attachment this one replaces (attach --force, apply, or the restore of
		 * one a failed re-attach took down) is the namespace's only analysing one: its
		 * own maps, and so its connections, carry over unless another size is asked
		 * for; pinned again as the namespace's (a failed re-attach pinned its own there)
		 */
		__u32 m1 = 0, m2 = 0;

		fd1 = pl_pin_open(replacing, PL_MAP_TCP_STATE);
		fd2 = pl_pin_open(replacing, PL_MAP_TCP_TS);
		if (fd1 >= 0 && fd2 >= 0 && !asked_for(replacing, flows_max, ts_max) &&
		    (pl_map_max_entries(fd1, &m1) || m1 != flows_max ||
		     pl_map_max_entries(fd2, &m2) || m2 != ts_max)) {
			close(fd1);
			close(fd2);
			fd1 = fd2 = -1;
		}
		*fresh = true;
	} else {
		/* pins no live attachment uses (a deleted namespace's, with this inode): new maps */
		fd1 = fd2 = -1;
	}
	if (fd1 >= 0 && fd2 >= 0) {
		err = bpf_map__reuse_fd(state, fd1) ?: bpf_map__reuse_fd(ts, fd2);
	} else {
		*fresh = true;
		err = bpf_map__set_max_entries(state, flows_max) ?:
		      bpf_map__set_max_entries(ts, ts_max);
	}
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	return err;
}

int pl_tcp_pin_ns(struct bpf_object *obj, uint64_t ns)
{
	char p1[600], p2[600];

	ns_pin_path(p1, sizeof(p1), ns, PL_PIN_NS_TCP_STATE);
	ns_pin_path(p2, sizeof(p2), ns, PL_PIN_NS_TCP_TS);
	unlink(p1);
	unlink(p2);
	if (bpf_obj_pin(bpf_map__fd(bpf_object__find_map_by_name(obj, PL_MAP_TCP_STATE)), p1) ||
	    bpf_obj_pin(bpf_map__fd(bpf_object__find_map_by_name(obj, PL_MAP_TCP_TS)), p2)) {
		int err = -errno;

		unlink(p1);
		return err;
	}
	return 0;
}

void pl_tcp_repin_ns(uint64_t ns, const char *dir)
{
	char p1[600], p2[600];
	int fd1, fd2;

	if (!dir_analyses(dir))
		return;
	fd1 = pl_pin_open(dir, PL_MAP_TCP_STATE);
	fd2 = pl_pin_open(dir, PL_MAP_TCP_TS);
	if (fd1 >= 0 && fd2 >= 0) {
		ns_pin_path(p1, sizeof(p1), ns, PL_PIN_NS_TCP_STATE);
		ns_pin_path(p2, sizeof(p2), ns, PL_PIN_NS_TCP_TS);
		unlink(p1);
		unlink(p2);
		if (bpf_obj_pin(fd1, p1) || bpf_obj_pin(fd2, p2))
			unlink(p1);	/* one without the other: the next attach makes both */
	}
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
}

void pl_tcp_release_ns(uint64_t ns)
{
	char p[600], q[600];

	ns_pin_path(p, sizeof(p), ns, PL_PIN_NS_TCP_STATE);
	ns_pin_path(q, sizeof(q), ns, PL_PIN_NS_TCP_TS);
	/* pl_pins_gc() asks for every namespace: most have no TCP pins to read metas for */
	if ((access(p, F_OK) && access(q, F_OK)) || ns_analyses(ns, NULL))
		return;
	unlink(p);
	unlink(q);
	/* and the namespace's directory, when that was all it held (pl_pin_dir_remove() left it) */
	ns_pin_path(p, sizeof(p), ns, "");
	rmdir(p);
}

static void add(struct pl_tcp_pstats *o, const struct pl_tcp_pstats *i)
{
	for (int k = 0; k < PL_TCP_HIST_SLOTS; k++)
		o->rtt.slot[k] += i->rtt.slot[k];
	o->rtt.count += i->rtt.count;
	o->rtt.sum_us += i->rtt.sum_us;
	if (i->rtt.max_us > o->rtt.max_us)
		o->rtt.max_us = i->rtt.max_us;
	o->segs += i->segs;
	o->syn_samples += i->syn_samples;
	o->ts_samples += i->ts_samples;
	o->retrans += i->retrans;
	o->reorder += i->reorder;
	o->zero_win += i->zero_win;
	o->rst += i->rst;
	o->state_lost += i->state_lost;
	o->ts_full += i->ts_full;
	o->ts_expired += i->ts_expired;
}

void pl_tcp_pstats_sum(const struct pl_tcp_pstats in[PL_SLOT_MAX], struct pl_tcp_pstats *out)
{
	memset(out, 0, sizeof(*out));
	for (int sl = 0; sl < PL_SLOT_MAX; sl++)
		add(out, &in[sl]);
}

int pl_tcp_pstats_read(const char *dir, struct pl_tcp_pstats out[PL_SLOT_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	struct pl_tcp_pstats *v;

	memset(out, 0, sizeof(*out) * PL_SLOT_MAX);
	if (ncpu <= 0)
		return -EINVAL;
	fd = pl_pin_open(dir, PL_MAP_TCP_STATS);
	if (fd < 0)
		return -errno;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	for (__u32 slot = 0; slot < PL_SLOT_MAX && !err; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, v)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			add(&out[slot], &v[c]);
	}
	free(v);
	close(fd);
	return err;
}

int pl_tcp_ts_max_read(const char *dir, __u32 *max)
{
	int fd = pl_pin_open(dir, PL_MAP_TCP_TS), err;

	if (fd < 0)
		return -errno;
	err = pl_map_max_entries(fd, max);
	close(fd);
	return err;
}

void pl_tcp_key_of(const struct pl_flow_key *fk, struct pl_tcp_key *k, int *half)
{
	__u64 s0, s1, d0, d1;
	bool a;

	/* as the BPF side orders the ends: addresses as two native-endian u64 words */
	memcpy(&s0, fk->saddr, 8);
	memcpy(&s1, fk->saddr + 8, 8);
	memcpy(&d0, fk->daddr, 8);
	memcpy(&d1, fk->daddr + 8, 8);
	a = s0 < d0 || (s0 == d0 && (s1 < d1 || (s1 == d1 && fk->sport <= fk->dport)));
	memset(k, 0, sizeof(*k));
	memcpy(k->a, a ? fk->saddr : fk->daddr, 16);
	memcpy(k->b, a ? fk->daddr : fk->saddr, 16);
	k->aport = a ? fk->sport : fk->dport;
	k->bport = a ? fk->dport : fk->sport;
	*half = a ? 0 : 1;
}

int pl_tcp_flow(int state_fd, const struct pl_flow_key *fk, struct pl_tcp_state *st, int *half)
{
	struct pl_tcp_key k;

	if (state_fd < 0 || fk->l4proto != 6)
		return -ENOENT;
	pl_tcp_key_of(fk, &k, half);
	return bpf_map_lookup_elem(state_fd, &k, st) ? -errno : 0;
}
