// SPDX-License-Identifier: GPL-2.0
/*
 * Filter chaining (PL_CHAIN_* in include/pktlens/pktlens.h): a tcpdump
 * expression, translated by pcap/, becomes the RULES program of every hook
 * of an attachment. All programs are built and verified first; only then is
 * each hook's RULES slot replaced, one map update per hook, so a packet is
 * judged by the old expression or the new one. Counters live in the stats
 * map, which nothing here touches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>

#include <pktlens/why.h>

#include "features.h"
#include "loader.h"
#include "ruleset.h"
#include "xdp_multi.h"
#include "../pcap/cbpf.h"

void pl_chain_close(struct pl_chain *c)
{
	int *fds[] = { &c->res_fd, &c->xdp_fd, &c->tc_fd, &c->meta_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int pl_chain_open(const char *dir, struct pl_chain *c)
{
	int err = 0;

	memset(c, 0, sizeof(*c));
	c->xdp_fd = c->tc_fd = -1;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	c->res_fd = pl_pin_open(dir, PL_MAP_CHAIN_RES);
	c->meta_fd = pl_pin_open(dir, PL_MAP_META);
	if (c->res_fd < 0 || c->meta_fd < 0)
		err = -errno;
	else
		err = pl_meta_read(c->meta_fd, &c->meta);
	if (!err && c->meta.xdp_mode != PL_XDP_NONE &&
	    (c->xdp_fd = pl_pin_open(dir, PL_MAP_XDP_CHAIN)) < 0)
		err = -errno;
	if (!err && c->meta.tc_hooks && (c->tc_fd = pl_pin_open(dir, PL_MAP_TC_CHAIN)) < 0)
		err = -errno;
	if (!err && c->xdp_fd >= 0)
		c->xdp_no_tail = !pl_xdp_prog_tail_calls(c->meta.xdp_prog_id, c->xdp_fd);
	if (err)
		pl_chain_close(c);
	return err;
}

/* The hooks of @m, each with what its RULES program needs. */
struct hook {
	const char *name;
	struct pl_chain_target t;
	__u32 rules_slot;
	__u32 prog_flags;
};

static size_t hooks_of(const struct pl_chain *c, struct hook h[PL_SLOT_MAX])
{
	size_t n = 0;

	if (c->meta.xdp_mode != PL_XDP_NONE)
		h[n++] = (struct hook){
			.name = "xdp in",
			.t = { PL_FILTER_XDP, c->res_fd, PL_SLOT_XDP_IN, c->xdp_fd,
			       { PL_CHAIN_POLICY(PL_DIR_IN), PL_CHAIN_MAIN(PL_DIR_IN) }, 2 },
			.rules_slot = PL_CHAIN_RULES(PL_DIR_IN),
			/* the entry program's PROG_ARRAY wants the same frags flag */
			.prog_flags = pl_meta_xdp_load_flags(&c->meta),
		};
	for (int dir = 0; dir < 2; dir++)
		if (c->meta.tc_hooks & (1u << dir))
			h[n++] = (struct hook){
				.name = dir == PL_DIR_IN ? "tc in" : "tc out",
				.t = { PL_FILTER_TC, c->res_fd,
				       dir == PL_DIR_IN ? PL_SLOT_TC_IN : PL_SLOT_TC_OUT, c->tc_fd,
				       { PL_CHAIN_POLICY(dir), PL_CHAIN_MAIN(dir) }, 2 },
				.rules_slot = PL_CHAIN_RULES(dir),
			};
	return n;
}

/* @c's metadata as it is, into its map; 0 or -errno */
static int put_meta(const struct pl_chain *c)
{
	__u32 key = 0;

	return bpf_map_update_elem(c->meta_fd, &key, &c->meta, BPF_ANY) ? -errno : 0;
}

static int write_meta(struct pl_chain *c, const char *expr, __u32 state)
{
	c->meta.filter_set = expr ? state : 0;
	memset(c->meta.filter_expr, 0, sizeof(c->meta.filter_expr));
	if (expr)
		memcpy(c->meta.filter_expr, expr, strlen(expr));
	return put_meta(c);
}

void pl_wait_for_packets(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		usleep(100000);	/* nohz_full kernels refuse it: XDP/tc runs take microseconds */
}

/*
 * The tc hooks' MAIN slots, where their chain hands packets back to be
 * counted: attach fills them only when it chains a filter itself, so the
 * first filter or sample stage of an attachment loads them here, both
 * directions from one object (pl_chain_main_load()). XDP's is always there.
 */
static int need_mains(const struct pl_chain *c, char *why, size_t whylen)
{
	int fds[2] = { -1, -1 }, err = 0;
	unsigned int dirs = 0;
	__u32 slot, id;

	for (int d = 0; d < 2 && c->tc_fd >= 0; d++) {
		slot = PL_CHAIN_MAIN(d);
		if (!(c->meta.tc_hooks & (1u << d)) || !bpf_map_lookup_elem(c->tc_fd, &slot, &id))
			continue;
		if (errno != ENOENT)
			return pl_why(why, whylen, -errno, "tc: cannot read the filter chain: %s",
				      strerror(errno));
		dirs |= 1u << d;
	}
	if (!dirs)
		return 0;
	if (!c->dir[0])
		return pl_why(why, whylen, -ENOENT, "tc: the filter chain has no counting program");
	err = pl_chain_main_load(c->dir, dirs, fds, why, whylen);
	for (int d = 0; d < 2; d++) {
		if (fds[d] < 0)
			continue;
		slot = PL_CHAIN_MAIN(d);
		if (!err && bpf_map_update_elem(c->tc_fd, &slot, &fds[d], BPF_ANY))
			err = pl_why(why, whylen, -errno, "tc %s: cannot chain the counting program: %s",
				     d == PL_DIR_IN ? "in" : "out", strerror(errno));
		close(fds[d]);
	}
	return err;
}

/* Compile, translate, wrap and load @expr for hook @h; the program fd or -errno. */
static int load_rules(const struct hook *h, const char *expr, char *why, size_t whylen)
{
	const struct pl_filter_opts o = { .ctx = h->t.ctx, .xdp_linear = pl_xdp_linear() };
	struct pl_filter_prog p;
	struct bpf_insn *w = NULL;
	size_t wlen;
	char log[1024];
	int fd;

	fd = pl_filter_build(expr, &o, &p, why, whylen);
	if (fd)
		return fd;
	fd = pl_ebpf_chain(p.ebpf, p.ebpf_len, &h->t, &w, &wlen);
	if (fd) {
		pl_why(why, whylen, fd, "%s: %s", h->name, strerror(-fd));
		goto out;
	}
	fd = pl_ebpf_load(w, wlen, h->t.ctx, h->prog_flags, log, sizeof(log));
	if (fd < 0)
		fd = pl_why(why, whylen, pl_load_err(fd), "%s: the kernel refused the program: %s%s%s",
			    h->name, strerror(-fd), log[0] ? ": " : "", log);
out:
	pl_filter_prog_free(&p);
	free(w);
	return fd;
}

/* An fd of the program in @h's RULES slot, or -1 when it is empty. */
static int old_rules(const struct hook *h)
{
	__u32 id;

	if (bpf_map_lookup_elem(h->t.chain_fd, &h->rules_slot, &id))
		return -1;
	return bpf_prog_get_fd_by_id(id);
}

static void restore_rules(const struct hook *h, int old_fd)
{
	if (old_fd >= 0)
		bpf_map_update_elem(h->t.chain_fd, &h->rules_slot, &old_fd, BPF_ANY);
	else
		bpf_map_delete_elem(h->t.chain_fd, &h->rules_slot);
}

int pl_chain_set(struct pl_chain *c, const char *expr, char *why, size_t whylen)
{
	int fds[PL_SLOT_MAX] = { -1, -1, -1 }, old[PL_SLOT_MAX] = { -1, -1, -1 };
	const struct pl_meta was = c->meta;
	struct hook h[PL_SLOT_MAX];
	size_t n = hooks_of(c, h);
	int err = 0;

	if (c->xdp_no_tail)
		return pl_xdp_no_tail_why("a tcpdump filter", why, whylen);
	/*
	 * pl_cbpf_compile() holds the one length limit (-E2BIG: too long to keep);
	 * every attachment has a hook (attach refuses none), so a bad expression fails here
	 */
	for (size_t i = 0; i < n && !err; i++) {
		fds[i] = load_rules(&h[i], expr, why, whylen);
		if (fds[i] < 0)
			err = fds[i];
	}
	if (!err)
		err = need_mains(c, why, whylen);
	/*
	 * every program passed the verifier: say what is being set, then swap hook
	 * by hook; killed among the swaps, the hooks run either expression and the
	 * metadata says so (PL_FILTER_SETTING) until a filter set or clear, or an
	 * attach --force, sets them all again
	 */
	if (!err && (err = write_meta(c, expr, PL_FILTER_SETTING)))
		pl_why(why, whylen, err, "cannot record the expression: %s", strerror(-err));
	for (size_t i = 0; i < n && !err; i++) {
		old[i] = old_rules(&h[i]);
		if (!bpf_map_update_elem(h[i].t.chain_fd, &h[i].rules_slot, &fds[i], BPF_ANY))
			continue;
		err = pl_why(why, whylen, -errno, "%s: cannot chain the program: %s", h[i].name,
			     strerror(errno));
		/* put back what the hooks already swapped had, and what the metadata said */
		while (i--)
			restore_rules(&h[i], old[i]);
		c->meta = was;
		put_meta(c);
	}
	if (!err && (err = write_meta(c, expr, 1)))
		pl_why(why, whylen, err, "cannot record the expression: %s", strerror(-err));
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		if (old[i] >= 0)
			close(old[i]);
	}
	return err;
}

int pl_chain_clear(struct pl_chain *c, char *why, size_t whylen)
{
	struct hook h[PL_SLOT_MAX];
	size_t n = hooks_of(c, h);
	int err;

	/* killed among the deletes, some hooks still run it: said as for filter set */
	if (c->meta.filter_set) {
		c->meta.filter_set = PL_FILTER_SETTING;
		if ((err = put_meta(c)))
			return pl_why(why, whylen, err, "cannot update the metadata: %s", strerror(-err));
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(h[i].t.chain_fd, &h[i].rules_slot) && errno != ENOENT)
			return pl_why(why, whylen, -errno, "%s: cannot unchain the filter: %s",
				      h[i].name, strerror(errno));
	err = write_meta(c, NULL, 0);
	return err ? pl_why(why, whylen, err, "cannot update the metadata: %s", strerror(-err)) : 0;
}

size_t pl_chain_hooks(const struct pl_chain *c, const char *names[PL_SLOT_MAX])
{
	struct hook h[PL_SLOT_MAX];
	size_t n = hooks_of(c, h);

	for (size_t i = 0; i < n; i++)
		names[i] = h[i].name;
	return n;
}

int pl_chain_fd(const struct pl_chain *c, int slot)
{
	return slot == PL_SLOT_XDP_IN ? c->xdp_fd : c->tc_fd;
}

int pl_chain_load_stage(const struct pl_chain *c, int slot, int res_fd, const __u32 *next,
			__u32 nnext, const char *expr, char *why, size_t whylen)
{
	struct hook h[PL_SLOT_MAX];
	size_t n = hooks_of(c, h);
	int err;

	if (nnext > PL_CHAIN_NEXT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (h[i].t.res_key != (__u32)slot)
			continue;
		err = h[i].t.ctx == PL_FILTER_TC ? need_mains(c, why, whylen) : 0;
		if (err)
			return err;
		h[i].t.res_fd = res_fd;
		memcpy(h[i].t.next, next, nnext * sizeof(*next));
		h[i].t.nnext = nnext;
		return load_rules(&h[i], expr, why, whylen);
	}
	return pl_why(why, whylen, -ENOENT, "no such hook");
}
