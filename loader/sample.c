// SPDX-License-Identifier: GPL-2.0
/*
 * pcap samples (bpf/sample.h): a sampler owns an attachment's sample maps
 * while it runs. Start: flock the pin directory (one sampler per
 * attachment; the kernel lets go of the lock if the sampler dies), create
 * a ring buffer of the size asked for and put it in sample_ring, chain the
 * expression's SAMPLE stage on each sampled hook, then write sample_cfg.
 * Stop is the reverse, followed by an RCU grace period, so that when the
 * caller drains the ring afterwards nothing more can arrive and every
 * sampled packet is either in the ring or counted as lost. While it runs
 * the sampler renews its lease (sample_lease): a sampler killed with -9
 * leaves one that runs out within PL_SAMPLE_LEASE_MS, after which the
 * programs take nothing, and the next command unchains what it left
 * (pl_sample_owner()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/clock.h>
#include <pktlens/why.h>

#include "features.h"
#include "loader.h"
#include "xdp_multi.h"
#include "../pcap/cbpf.h"

#define LOCK_TRIES 20	/* 10 ms apart */

/* Ring record sizes for the frame bytes: PL_SAMPLE_STEP()s of pl_sample_put(), bpf/sample.h. */
static const __u32 record_steps[] = { 128, 256, 512, 1024, 1536, 2048, 4096, 9216, 16384, 65536,
				      PL_SNAPLEN_MAX };

__u32 pl_sample_ring_min(__u32 snaplen)
{
	size_t i = 0;

	while (i + 1 < sizeof(record_steps) / sizeof(record_steps[0]) && record_steps[i] < snaplen)
		i++;
	/* the kernel's __bpf_ringbuf_reserve(): the record and its 8-byte header, 8-aligned */
	return (__u32)((sizeof(struct pl_sample_hdr) + record_steps[i] + 8 + 7) & ~7UL);
}

int pl_sample_open(const char *dir, struct pl_sampler *s)
{
	int *fds[] = { &s->cfg_fd, &s->stats_fd, &s->outer_fd, &s->res_fd };
	const char *names[] = { PL_MAP_SAMPLE_CFG, PL_MAP_SAMPLE_STATS, PL_MAP_SAMPLE_RING,
				PL_MAP_SAMPLE_RES };
	int err;

	memset(s, 0, sizeof(*s));
	s->dir_fd = s->ring_fd = s->flows_fd = s->lease_fd = -1;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		*fds[i] = -1;
	err = pl_chain_open(dir, &s->c);
	if (err) {
		s->c.res_fd = s->c.xdp_fd = s->c.tc_fd = s->c.meta_fd = -1;
		return err;
	}
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		*fds[i] = pl_pin_open(dir, names[i]);
		if (*fds[i] < 0) {
			err = -errno;
			pl_sample_close(s);
			return err;
		}
	}
	/* attachments made before --per-flow and --verdict have no sample_flows */
	s->flows_fd = pl_pin_open(dir, PL_MAP_SAMPLE_FLOWS);
	/* and before the lease: their programs sample until the sampler stops */
	s->lease_fd = pl_pin_open(dir, PL_MAP_SAMPLE_LEASE);
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		err = -errno;
		pl_sample_close(s);
		return err;
	}
	return 0;
}

/*
 * The hooks sampled for directions @dirs: XDP for ingress if attached (and
 * the kernel can copy frames there: 5.18), else tc.
 */
static __u32 slots_for(const struct pl_meta *m, __u32 dirs, __u32 hooks)
{
	bool xdp = m->xdp_mode != PL_XDP_NONE && pl_feature(PL_FEAT_XDP_LOAD_BYTES);
	__u32 slots = 0;

	if (!hooks)
		hooks = 1U << PL_HOOK_XDP | 1U << PL_HOOK_TC;
	if (dirs & (1U << PL_DIR_IN)) {
		/* both hooks allowed: XDP if it can, else tc; --hook tc: tc */
		if (xdp && (hooks & (1U << PL_HOOK_XDP)))
			slots |= 1U << PL_SLOT_XDP_IN;
		else if ((m->tc_hooks & PL_TC_IN) && (hooks & (1U << PL_HOOK_TC)))
			slots |= 1U << PL_SLOT_TC_IN;
	}
	if ((dirs & (1U << PL_DIR_OUT)) && (m->tc_hooks & PL_TC_OUT) && (hooks & (1U << PL_HOOK_TC)))
		slots |= 1U << PL_SLOT_TC_OUT;
	return slots;
}

static int slot_dir(int slot)
{
	return slot == PL_SLOT_TC_OUT ? PL_DIR_OUT : PL_DIR_IN;
}

/*
 * Each slot's per-CPU values of the stats map @fd in turn: @fn sees them (one
 * entry per possible CPU) and, with @write, what it leaves is written back.
 */
static int each_slot(int fd, bool write,
		     void (*fn)(__u32 slot, struct pl_sample_stats *v, int ncpu, void *ctx), void *ctx)
{
	int ncpu = libbpf_num_possible_cpus(), err = 0;
	struct pl_sample_stats *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 slot = 0; !err && slot < PL_SLOT_MAX; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, v)) {
			err = -errno;
			break;
		}
		fn(slot, v, ncpu, ctx);
		if (write && bpf_map_update_elem(fd, &slot, v, BPF_ANY))
			err = -errno;
	}
	free(v);
	return err;
}

static void add_up(__u32 slot, struct pl_sample_stats *v, int ncpu, void *ctx)
{
	struct pl_sample_stats *out = ctx;

	for (int c = 0; c < ncpu; c++) {
		out[slot].selected += v[c].selected;
		out[slot].sampled += v[c].sampled;
		out[slot].lost += v[c].lost;
	}
}

int pl_sample_stats_read(int fd, struct pl_sample_stats out[PL_SLOT_MAX])
{
	memset(out, 0, PL_SLOT_MAX * sizeof(*out));
	return each_slot(fd, false, add_up, out);
}

static void zero_seq(__u32 slot, struct pl_sample_stats *v, int ncpu, void *ctx)
{
	(void)slot;
	(void)ctx;
	for (int c = 0; c < ncpu; c++)
		v[c].seq = 0;
}

/*
 * While sampling is off: the 1-in-N counters (seq, per CPU and slot) back to
 * 0, so that --every N keeps the Nth matching packet of this capture, not
 * one shifted by what an earlier sampler saw. The other counters go on.
 */
static int reset_seq(const struct pl_sampler *s)
{
	return each_slot(s->stats_fd, true, zero_seq, NULL);
}

static int read_counts(const struct pl_sampler *s, struct pl_sample_stats out[PL_SLOT_MAX])
{
	return pl_sample_stats_read(s->stats_fd, out);
}

int pl_sample_counts(const struct pl_sampler *s, struct pl_sample_stats out[PL_SLOT_MAX])
{
	int err = read_counts(s, out);

	for (int i = 0; !err && i < PL_SLOT_MAX; i++) {
		out[i].selected -= s->base[i].selected;
		out[i].sampled -= s->base[i].sampled;
		out[i].lost -= s->base[i].lost;
		out[i].seq = 0;
	}
	return err;
}

static int write_cfg(const struct pl_sampler *s, const struct pl_sample_cfg *cfg)
{
	__u32 zero = 0;

	return bpf_map_update_elem(s->cfg_fd, &zero, cfg, BPF_ANY) ? -errno : 0;
}

/* Zero the SAMPLE stages' verdicts on every CPU: none may be left from an earlier sampler. */
static int clear_res(const struct pl_sampler *s)
{
	int ncpu = libbpf_num_possible_cpus();
	__u32 *zeros;
	int err = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	zeros = calloc((size_t)ncpu, sizeof(*zeros));
	if (!zeros)
		return -ENOMEM;
	for (__u32 slot = 0; slot < PL_SLOT_MAX && !err; slot++)
		if (bpf_map_update_elem(s->res_fd, &slot, zeros, BPF_ANY))
			err = -errno;
	free(zeros);
	return err;
}

static void unstage(struct pl_sampler *s)
{
	for (int slot = 0; slot < PL_SLOT_MAX; slot++) {
		__u32 key = PL_CHAIN_SAMPLE(slot_dir(slot));
		int fd = pl_chain_fd(&s->c, slot);

		if (!s->staged[slot])
			continue;
		if (fd >= 0)	/* -1: the hook is not attached, no chain to clear */
			bpf_map_delete_elem(fd, &key);
		s->staged[slot] = false;
	}
}

/*
 * With the lock held: settings back to none but @owner's pid, and every
 * hook's SAMPLE stage unchained, whoever chained it (a sampler killed with
 * -9). 0 or -errno of the settings' write.
 */
static int clear_left(struct pl_sampler *s, __u32 owner)
{
	int err = write_cfg(s, &(struct pl_sample_cfg){ .owner = owner });

	if (!err)
		for (int slot = 0; slot < PL_SLOT_MAX; slot++)
			s->staged[slot] = true;	/* so that unstage() clears them all */
	unstage(s);
	return err;
}

/* Load a SAMPLE stage for every sampled hook, then chain them all in. */
static int stage(struct pl_sampler *s, const char *expr, char *why, size_t whylen)
{
	int fds[PL_SLOT_MAX] = { -1, -1, -1 };
	int err = 0;

	for (int slot = 0; slot < PL_SLOT_MAX && !err; slot++) {
		int dir = slot_dir(slot);
		__u32 next[] = { PL_CHAIN_RULES(dir), PL_CHAIN_POLICY(dir), PL_CHAIN_MAIN(dir) };

		if (!(s->slots & (1U << slot)))
			continue;
		if (slot == PL_SLOT_XDP_IN && s->c.xdp_no_tail) {
			err = pl_xdp_no_tail_why("a sample expression", why, whylen);
			break;
		}
		fds[slot] = pl_chain_load_stage(&s->c, slot, s->res_fd, next, 3, expr, why, whylen);
		if (fds[slot] < 0)
			err = fds[slot];
	}
	if (!err)
		err = clear_res(s);
	for (int slot = 0; slot < PL_SLOT_MAX && !err; slot++) {
		__u32 key = PL_CHAIN_SAMPLE(slot_dir(slot));

		if (fds[slot] < 0)
			continue;
		if (bpf_map_update_elem(pl_chain_fd(&s->c, slot), &key, &fds[slot], BPF_ANY))
			err = pl_why(why, whylen, -errno, "cannot chain the sample stage: %s",
				     strerror(errno));
		else
			s->staged[slot] = true;
	}
	if (err)
		unstage(s);
	for (int slot = 0; slot < PL_SLOT_MAX; slot++)
		if (fds[slot] >= 0)
			close(fds[slot]);
	return err;
}

/* Forget what an earlier --per-flow sampler counted. */
static int clear_flows(int fd)
{
	struct pl_flow_key k;

	while (!bpf_map_get_next_key(fd, NULL, &k))
		if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
			return -errno;
	return errno == ENOENT ? 0 : -errno;
}

/*
 * --per-flow's table: a fresh one in the attachment's sample_flows for a
 * sampler that wants it, none otherwise (a sampler killed with -9 left its
 * own). An attachment of an older pktlens pins the table itself: emptied
 * instead.
 */
static int flows_table(const struct pl_sampler *s, bool want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0;
	int fd, err = 0;

	if (s->flows_fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(s->flows_fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY_OF_MAPS)
		return want ? clear_flows(s->flows_fd) : 0;
	if (!want)
		return bpf_map_delete_elem(s->flows_fd, &zero) && errno != ENOENT ? -errno : 0;
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "pl_sample_flows", sizeof(struct pl_flow_key),
			    sizeof(__u32), PL_SAMPLE_FLOWS_MAX, NULL);
	if (fd < 0)
		return -errno;
	if (bpf_map_update_elem(s->flows_fd, &zero, &fd, BPF_ANY))
		err = -errno;
	close(fd);	/* sample_flows holds it */
	return err;
}

int pl_sample_renew(struct pl_sampler *s, __u64 *late_ns)
{
	__u64 now = pl_mono_ns(), until = now + PL_SAMPLE_LEASE_MS * 1000000ULL;
	__u32 zero = 0;

	*late_ns = s->lease_until && now > s->lease_until ? now - s->lease_until : 0;
	if (s->lease_fd < 0)
		return 0;
	if (bpf_map_update_elem(s->lease_fd, &zero, &until, BPF_ANY))
		return -errno;
	s->lease_until = until;
	return 0;
}

int pl_sample_start(struct pl_sampler *s, const struct pl_sample_opts *o, char *why, size_t whylen)
{
	struct pl_sample_cfg cfg = {
		.every = o->every ? o->every : 1,
		.snaplen = o->snaplen,
		.flags = o->policy ? PL_SAMPLE_F_POLICY : o->expr ? PL_SAMPLE_F_EXPR : 0,
		.owner = (__u32)getpid(),
		.rule = o->rule,
	};
	__u32 zero = 0;
	int err;

	if (o->verdicts)
		cfg.flags |= PL_SAMPLE_F_VERDICT | (o->verdicts & 0xffU) << PL_SAMPLE_VERDICT_SHIFT;
	if (o->rule)
		cfg.flags |= PL_SAMPLE_F_RULE;
	if (o->per_flow)
		cfg.flags |= PL_SAMPLE_F_PER_FLOW;
	/* programs of before these options would ignore them and capture everything */
	if ((o->verdicts || o->rule || o->per_flow) && s->flows_fd < 0)
		return pl_why(why, whylen, -ENOTSUP, "--verdict, --rule and --per-flow need the "
			      "programs of this pktlens: pktlens attach --force");
	s->slots = slots_for(&s->c.meta, o->dirs, o->hooks);
	if (!s->slots && o->hooks == 1U << PL_HOOK_TC)
		return pl_why(why, whylen, -ENOTSUP, "--hook tc: no tc hook for the %s attached "
			      "(see pktlens attach --tc)", o->dirs == (1U << PL_DIR_OUT) ? "egress" :
			      o->dirs == (1U << PL_DIR_IN) ? "ingress" : "directions asked for");
	if (!s->slots && s->c.meta.xdp_mode != PL_XDP_NONE && (o->dirs & (1U << PL_DIR_IN)) &&
	    !pl_feature(PL_FEAT_XDP_LOAD_BYTES)) {
		char needs[128];

		return pl_why(why, whylen, -ENOSYS, "sampling at XDP %s: attach tc ingress too "
			      "(--tc in,out) to sample there",
			      pl_feature_needs(PL_FEAT_XDP_LOAD_BYTES, needs, sizeof(needs)));
	}
	/*
	 * ingress sampled at tc for want of bpf_xdp_load_bytes while XDP judges the
	 * in rules: what the policy drops, redirects or picks never reaches tc
	 */
	if ((s->slots & (1U << PL_SLOT_TC_IN)) && s->c.meta.xdp_mode != PL_XDP_NONE &&
	    !pl_feature(PL_FEAT_XDP_LOAD_BYTES) &&
	    (o->policy || o->rule || (o->verdicts & ~(1U << PL_VERDICT_PASS)))) {
		char needs[128];

		return pl_why(why, whylen, -ENOSYS, "%s on ingress: the policy judges it at XDP "
			      "here, and sampling at XDP %s (sample --out for egress alone)",
			      o->policy ? "--policy" : o->rule ? "--rule" : "--verdict",
			      pl_feature_needs(PL_FEAT_XDP_LOAD_BYTES, needs, sizeof(needs)));
	}
	if (!s->slots && o->hooks == 1U << PL_HOOK_XDP)
		return pl_why(why, whylen, -ENOTSUP, "--hook xdp: no XDP program of pktlens "
			      "that can copy frames (see pktlens attach --xdp)");
	if (!s->slots)
		return pl_why(why, whylen, -ENOTSUP,
			      "no hook for the %s attached (see pktlens attach --tc)",
			      o->dirs == (1U << PL_DIR_OUT) ? "egress" : "directions asked for");
	/* a command looking at a killed sampler's leftovers (pl_sample_owner()) holds it a moment */
	for (int i = 0; i < LOCK_TRIES && flock(s->dir_fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK;
	     i++)
		usleep(10000);
	if (flock(s->dir_fd, LOCK_EX | LOCK_NB)) {
		struct pl_sample_cfg cur = { 0 };

		err = -errno;
		bpf_map_lookup_elem(s->cfg_fd, &zero, &cur);
		/* owner 0: the other one took the lock a moment ago and has not written it yet */
		if (err == -EWOULDBLOCK && cur.owner)
			return pl_why(why, whylen, -EBUSY,
				      "pktlens sample (pid %u) is sampling it already", cur.owner);
		if (err == -EWOULDBLOCK)
			return pl_why(why, whylen, -EBUSY,
				      "another pktlens sample is sampling it already");
		return pl_why(why, whylen, err, "cannot lock %s: %s", "the pin directory",
			      strerror(-err));
	}
	/*
	 * a sampler killed with -9 may have left its settings: start from nothing
	 * but the owner, at once, for a sampler that finds the lock taken now
	 */
	err = clear_left(s, cfg.owner);
	if (err)
		return pl_why(why, whylen, err, "cannot write %s: %s", PL_MAP_SAMPLE_CFG,
			      strerror(-err));
	/* started again (sample --rearm): the same ring, the reader has it mapped */
	if (s->ring_fd < 0)
		s->ring_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "pl_sample_ring", 0, 0,
					    o->ring_bytes, NULL);
	if (s->ring_fd < 0)
		return pl_why(why, whylen, -errno, "cannot create a %u-byte ring buffer: %s",
			      o->ring_bytes, strerror(errno));
	if (bpf_map_update_elem(s->outer_fd, &zero, &s->ring_fd, BPF_ANY))
		return pl_why(why, whylen, -errno, "cannot install the ring buffer: %s",
			      strerror(errno));
	if (o->expr && !o->policy && (err = stage(s, o->expr, why, whylen)))
		return err;
	/* sampling is off (cfg zeroed above): nothing adds to the table while it is replaced */
	if ((err = flows_table(s, o->per_flow)))
		return pl_why(why, whylen, err, "cannot set up the --per-flow table (%s): %s",
			      PL_MAP_SAMPLE_FLOWS, strerror(-err));
	err = reset_seq(s);
	if (!err)
		err = read_counts(s, s->base);
	if (err)
		return pl_why(why, whylen, err, "cannot read %s: %s", PL_MAP_SAMPLE_STATS,
			      strerror(-err));
	/* a lease of its own, not one an earlier sampler left to run out */
	s->lease_until = 0;
	if ((err = pl_sample_renew(s, &(__u64){ 0 })))
		return pl_why(why, whylen, err, "cannot write %s: %s", PL_MAP_SAMPLE_LEASE,
			      strerror(-err));
	cfg.slots = s->slots;
	err = write_cfg(s, &cfg);
	if (err)
		return pl_why(why, whylen, err, "cannot write %s: %s", PL_MAP_SAMPLE_CFG,
			      strerror(-err));
	s->live = true;
	return 0;
}

void pl_sample_stop(struct pl_sampler *s)
{
	bool any = s->live;

	for (int slot = 0; slot < PL_SLOT_MAX; slot++)
		any |= s->staged[slot];
	if (!any)
		return;
	if (s->live)
		write_cfg(s, &(struct pl_sample_cfg){ 0 });
	unstage(s);
	pl_wait_for_packets();
	if (s->live)
		flows_table(s, false);	/* unused now: its 2 MB back */
	s->live = false;
}

int pl_sample_owner(const char *dir, bool reap, struct pl_sample_owner *o)
{
	struct pl_sample_cfg cfg = { 0 };
	struct pl_sampler s;
	__u32 zero = 0;
	__u64 until = 0, now;
	int err;

	memset(o, 0, sizeof(*o));
	if ((err = pl_sample_open(dir, &s)))
		return err;
	if (bpf_map_lookup_elem(s.cfg_fd, &zero, &cfg)) {
		err = -errno;
		goto out;
	}
	o->pid = cfg.owner;
	o->sampling = cfg.slots != 0;
	if (!cfg.owner) {
		/* none samples; a --rearm sampler killed between firings left its ring, though */
		if (reap && !bpf_map_lookup_elem(s.outer_fd, &zero, &(__u32){ 0 }) &&
		    !flock(s.dir_fd, LOCK_EX | LOCK_NB) &&
		    !bpf_map_lookup_elem(s.cfg_fd, &zero, &cfg) && !cfg.owner) {
			if (bpf_map_delete_elem(s.outer_fd, &zero) && errno != ENOENT)
				err = -errno;
			if (!err)
				err = flows_table(&s, false);
		}
		goto out;
	}
	if (flock(s.dir_fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK) {
			err = -errno;
			goto out;
		}
		/* its lock is held: it runs; a lease run out says it is stopped or stalled */
		o->live = true;
		now = pl_mono_ns();
		if (o->sampling && s.lease_fd >= 0 && !bpf_map_lookup_elem(s.lease_fd, &zero, &until) &&
		    now > until)
			o->late_ns = now - until;
		goto out;
	}
	/* the kernel let go of a dead sampler's lock, unless it stopped and ended meanwhile */
	if (bpf_map_lookup_elem(s.cfg_fd, &zero, &cfg) || cfg.owner != o->pid) {
		o->pid = 0;
		goto out;
	}
	/* what it left is nobody's */
	if (!reap)
		goto out;
	err = clear_left(&s, 0);
	if (!err && bpf_map_delete_elem(s.outer_fd, &zero) && errno != ENOENT)
		err = -errno;	/* its ring, of -B KiB, back */
	if (!err)
		err = flows_table(&s, false);
	o->reaped = !err;
out:
	pl_sample_close(&s);	/* lets go of the lock */
	return err;
}

void pl_sample_close(struct pl_sampler *s)
{
	int *fds[] = { &s->cfg_fd, &s->stats_fd, &s->outer_fd, &s->res_fd, &s->ring_fd,
		       &s->dir_fd, &s->flows_fd, &s->lease_fd };
	__u32 zero = 0;

	pl_sample_stop(s);
	if (s->ring_fd >= 0 && s->outer_fd >= 0)
		bpf_map_delete_elem(s->outer_fd, &zero);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);	/* closing dir_fd releases the lock */
		*fds[i] = -1;
	}
	pl_chain_close(&s->c);
}
