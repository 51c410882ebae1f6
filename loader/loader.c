// SPDX-License-Identifier: GPL-2.0
/*
 * attach/detach.
 *
 * XDP is attached with a bpf_link (BPF_LINK_CREATE, BPF_XDP) and tc with tcx
 * links (BPF_TCX_INGRESS/EGRESS, Linux 6.6+), all pinned in bpffs: the pins
 * own the attachments, so they survive the CLI, no other tool silently
 * replaces them, and if `attach` dies before pinning, the kernel detaches
 * when the link fds close. Where tcx is missing, tc falls back to a clsact
 * qdisc with a cls_bpf direct-action filter over netlink; its handle and
 * priority are recorded so detach removes exactly our filter (and the qdisc
 * only if we created it and nothing else uses it). A foreign XDP program
 * attached over netlink is found with bpf_xdp_query() and only replaced
 * with --force. Where the kernel allows it, XDP joins libxdp's dispatcher
 * instead of a bpf_link of its own (loader/xdp_multi.c).
 *
 * Atomicity: everything is pinned in a temporary directory first and renamed
 * into place as the last step, so bpffs shows a complete attachment or none;
 * leftovers of a killed attach are removed by pl_pins_gc().
 *
 * Why one file of ~1,100 lines: attach is one transaction over `struct
 * attach` (load, --force's carry-over of maps, flows, filter and rules, pin,
 * rename, and the unwinding of each step on failure). The carry-over steps
 * read and write that struct's fields between the others; apart, the struct
 * and the order of the steps would have to be shared by two files.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include "batch.h"
#include "features.h"
#include "loader.h"
#include "../cli/util.h"
#include "xdp_multi.h"
#include "pktlens_xdp.skel.h"
#include "pktlens_xdp_notail.skel.h"
#include "pktlens_tc.skel.h"
#include "../probes/drops.h"
#include "../probes/tcp.h"

#define PL_BPF_F_BEFORE (1U << 3)	/* UAPI of Linux 6.6 (our headers are older) */

/*
 * Counting must see every packet, so our tc programs go first: tcx links
 * are inserted before all others, clsact filters at priority 1. They return
 * TC_ACT_UNSPEC/TCX_NEXT, so whatever was there runs next, unchanged.
 */
#define PL_CLSACT_PRIO 1
#define PL_CLSACT_HANDLE 0x706c	/* "pl": a fixed handle lets us find our own filters */

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

const char *pl_tc_mech_name(int mech)
{
	switch (mech) {
	case PL_TC_TCX:
		return "tcx";
	case PL_TC_CLSACT:
		return "clsact";
	default:
		return "none";
	}
}

static const char *const tc_link_pin[2] = { PL_PIN_TC_IN_LINK, PL_PIN_TC_OUT_LINK };
static const char *const dir_name[2] = { "ingress", "egress" };

/* Flows copied into a new table of another size, per stats slot. */
struct carry {
	bool copied;
	__u64 pkts[PL_SLOT_MAX], bytes[PL_SLOT_MAX];	/* carried over */
	__u64 flows_lost[PL_SLOT_MAX];			/* flows that did not fit */
	struct pl_flow *fl;	/* the old flows as copied (packets 0: did not fit), by key */
	size_t n;
	struct pl_flow *left, *more, *moved;	/* for the IPFIX exporter, once attached: log_carry() */
	size_t nleft, nmore, nmoved;
};

static int key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct pl_flow *)a)->key, &((const struct pl_flow *)b)->key,
		      sizeof(struct pl_flow_key));
}

struct attach {
	const struct pl_attach_opts *o;
	struct pl_attach_info *info;
	struct pl_link_info li;
	struct pktlens_xdp *xskel;	/* the map owner, and the programs libxdp loads */
	struct pktlens_xdp *xentry;	/* XDP's entry program apart (xdp_open_prog()), or NULL */
	int open_err;		/* -errno of xdp_open_prog()'s or tc_open()'s failure */
	struct pktlens_xdp *xmain;	/* its MAIN twin apart, or NULL */
	struct pktlens_tc *tskel;
	struct pktlens_tc *tskel_out;	/* egress's programs apart (open_tc()), or NULL */
	struct pl_state old;
	struct pl_meta *m;
	char final[512];
	char tmp[600];
	char old_dir[512];	/* the attachment replaced: final, or its name's before a rename */
	char old_name[16];
	char old_now[16];	/* a live old one's interface renamed since: its name now, else "" */
	int old_ifindex;	/* the interface the old one records (0: unreadable) */
	bool old_gone;		/* the old one's hooks run nowhere: its interface was deleted */
	bool old_off;		/* ... though its interface is this one: its programs were taken off */
	bool old_moved;		/* the old one's interface moved to another namespace: */
	struct pl_moved old_where;	/* where its hooks run */
	bool have_old;
	bool tmp_made;
	int link_fd[3];		/* xdp, tc in, tc out */
	int swapped[3];		/* a place swapped in place (swap_hook()): the old program, or -1 */
	bool filter_made[2];	/* clsact filters of this attach */
	bool xdp_joined;	/* our program went into the dispatcher */
	bool notail;		/* the XDP object without tail calls (pktlens_xdp_notail) */
	bool policy_reused;	/* --force: the rules of the old attachment carried over */
	bool refilter;		/* chains a filter (refilter()): tc's MAIN programs loaded now */
	bool flows_reused;	/* --force, same table size: the flow maps carried over */
	bool tcp_fresh;		/* --tcp-passive: new tcp_state/tcp_ts, for the namespace's pins */
	bool old_touched;	/* the old hooks or probes are taken down: undo attaches it again */
	__u32 old_prio;		/* the old XDP's place in the dispatcher, if it had one */
	__u32 old_xdp_id;	/* the program the old XDP hook runs (old_xdp_prog()) */
	bool old_prio_ok;
	unsigned int cache_bits;	/* flow cache slots per CPU, a shift (bpf/flow.h) */
	uint64_t ns;
	struct carry carry;
	char *why;
	size_t whylen;
};

static int pin_fd(int fd, const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

static int prog_id(const struct bpf_program *prog, __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}

/*
 * Hooks by driver when not told: native XDP + tc egress on physical devices;
 * tc ingress + egress on virtual ones, where native XDP linearizes skbs and
 * loses GRO and generic XDP adds nothing over tc.
 */
const char *pl_attach_hooks(const struct pl_attach_opts *o, const struct pl_link_info *li,
			    int *xdp_mode, int *tc_hooks, int *tc_mech)
{
	bool virt = li->kind[0] || li->loopback;

	*xdp_mode = o->xdp_mode >= 0 ? o->xdp_mode : virt ? PL_XDP_NONE : PL_XDP_NATIVE;
	*tc_hooks = o->tc_hooks >= 0 ? o->tc_hooks : virt ? (int)(PL_TC_IN | PL_TC_OUT) : (int)PL_TC_OUT;
	*tc_mech = !*tc_hooks ? PL_TC_NONE : o->tc_mech >= 0 ? o->tc_mech :
		   pl_feature(PL_FEAT_TCX) ? PL_TC_TCX : PL_TC_CLSACT;
	if (o->xdp_mode >= 0 && o->tc_hooks >= 0)
		return "as requested";
	/* one of the two given: say why the other is what it is, not why both are */
	if (o->xdp_mode >= 0)
		return virt ? "--xdp as requested; virtual device: tc on ingress and egress by "
			      "default (override with --tc)" :
			      "--xdp as requested; physical device: tc for egress by default "
			      "(override with --tc)";
	if (o->tc_hooks >= 0)
		return virt ? "--tc as requested; virtual device: no XDP by default, native XDP "
			      "would linearize skbs and lose GRO (override with --xdp)" :
			      "--tc as requested; physical device: native XDP in the driver for "
			      "ingress by default (override with --xdp)";
	if (virt)
		return "virtual device: tc sees ingress and egress at no measurable cost, "
		       "native XDP would linearize skbs and lose GRO (override with --xdp, --tc)";
	return "physical device: native XDP in the driver for ingress, "
	       "tc for egress (override with --xdp, --tc)";
}

/* Refuse (or with --force remove) an XDP program that is not @ours. */
static int handle_foreign(struct attach *a, __u32 ours)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	const char *ifname = a->o->ifname;
	struct {
		__u32 id;
		__u32 flag;
		const char *name;
	} slots[3];
	struct pl_xdp_prog p;
	int err, i;

	if (a->info->xdp_disp)
		return pl_xdp_disp_check(a->li.ifindex, ifname, a->info->xdp_mode, ours,
					 a->o->force, &a->info->replaced_foreign, a->why, a->whylen);
	err = bpf_xdp_query(a->li.ifindex, 0, &q);
	if (err)
		return pl_why(a->why, a->whylen, err, "%s: cannot query XDP state: %s", ifname,
			      strerror(-err));
	slots[0].id = q.drv_prog_id, slots[0].flag = XDP_FLAGS_DRV_MODE, slots[0].name = "native";
	slots[1].id = q.skb_prog_id, slots[1].flag = XDP_FLAGS_SKB_MODE, slots[1].name = "skb";
	slots[2].id = q.hw_prog_id, slots[2].flag = XDP_FLAGS_HW_MODE, slots[2].name = "hw";
	for (i = 0; i < 3; i++) {
		if (!slots[i].id || slots[i].id == ours)
			continue;
		pl_xdp_prog_info(slots[i].id, &p);
		/* a capture-only sampler's link: not ours to take, even with --force */
		if (!a->o->force || !strcmp(p.name, PL_CAP_XDP_PROG))
			return pl_foreign_xdp_why(ifname, slots[i].id, slots[i].name, p.name, "",
						  a->why, a->whylen);
		err = bpf_xdp_detach(a->li.ifindex, slots[i].flag, NULL);
		if (err)
			return pl_why(a->why, a->whylen, err,
				      "%s: cannot remove XDP program id %u: %s%s", ifname,
				      slots[i].id, strerror(-err),
				      err == -EBUSY ?
				      " (it is owned by a bpf_link; detach it with its owner)" : "");
		a->info->replaced_foreign = true;
	}
	return 0;
}

/*
 * Copy merged flows into a fresh table (CPU 0 gets the sums), in batches;
 * from where a batch fails (the new table is smaller: full) one by one.
 * What did not fit is left out of @c's sums (see account_carry()). Keys
 * take @ifindex: an interface made again under the old name has another.
 */
static int copy_flows(const struct pl_state *old, int new_fd, __u32 ifindex, struct carry *c)
{
	enum { CHUNK = 4096 };
	int ncpu = libbpf_num_possible_cpus();
	struct pl_flow_key *keys;
	struct pl_flow_val *vals;
	struct pl_flow *fl = NULL;
	size_t n = 0, i, j;
	int err;

	if (ncpu < 0)
		return ncpu;
	err = pl_state_flows(old, &fl, &n);
	if (err)
		return err;
	keys = calloc(CHUNK, sizeof(*keys));
	vals = calloc((size_t)CHUNK * ncpu, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		free(fl);
		return -ENOMEM;
	}
	c->copied = true;
	for (i = 0; i < n; i += CHUNK) {
		__u32 cnt = n - i < CHUNK ? (__u32)(n - i) : CHUNK, done = cnt;

		for (j = 0; j < cnt; j++) {
			keys[j] = fl[i + j].key;
			keys[j].ifindex = ifindex;
			vals[j * ncpu] = fl[i + j].val;
		}
		if (pl_batch_update(new_fd, keys, sizeof(*keys), vals, ncpu * sizeof(*vals),
				    &done, 0))
			for (j = done; j < cnt; j++)
				if (bpf_map_update_elem(new_fd, &keys[j], &vals[j * ncpu],
							BPF_NOEXIST))
					fl[i + j].val.packets = 0;	/* not carried */
		for (j = 0; j < cnt; j++) {
			int sl = pl_flow_slot(&fl[i + j].key);

			if (!fl[i + j].val.packets) {
				c->flows_lost[sl]++;
				continue;
			}
			c->pkts[sl] += fl[i + j].val.packets;
			c->bytes[sl] += fl[i + j].val.bytes;
		}
	}
	free(keys);
	free(vals);
	pl_qsort(fl, n, sizeof(*fl), key_cmp);
	c->fl = fl;
	c->n = n;
	return 0;
}

/*
 * For the IPFIX exporter (loader/gone.c), what the copy did not carry: a
 * flow that did not fit leaves with its last counts; one that fit lives on
 * in the new table, less what its old one took after the copy.
 * Logged once the attach is done (an attach undone leaves the old flows).
 */
static void log_carry(struct attach *a, const struct pl_flow *fl, size_t n)
{
	struct carry *cy = &a->carry;

	cy->left = calloc(n ? n : 1, sizeof(*cy->left));
	cy->more = calloc(n ? n : 1, sizeof(*cy->more));
	cy->moved = calloc(cy->n ? cy->n : 1, sizeof(*cy->moved));
	if (!cy->left || !cy->more || !cy->moved)
		return;
	if (a->old.meta.ifindex != (__u32)a->li.ifindex) {
		/*
		 * The interface was made again: the old keys leave with their
		 * last counts, the copies under the new index start from what
		 * was copied, which the exporter has counted (under the old keys)
		 */
		memcpy(cy->left, fl, n * sizeof(*fl));
		cy->nleft = n;
		for (size_t i = 0; i < cy->n; i++) {
			if (!cy->fl[i].val.packets)
				continue;
			cy->moved[cy->nmoved] = cy->fl[i];
			cy->moved[cy->nmoved].key.ifindex = (__u32)a->li.ifindex;
			cy->moved[cy->nmoved++].val.pad[0] = PL_GONE_COUNTED;
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_flow *c = pl_bsearch(&fl[i], cy->fl, cy->n, sizeof(*c), key_cmp);
		struct pl_flow *m = &cy->more[cy->nmore];

		if (!c || !c->val.packets) {
			cy->left[cy->nleft++] = fl[i];
		} else if (fl[i].val.packets > c->val.packets) {
			*m = fl[i];
			m->val.packets -= c->val.packets;
			m->val.bytes -= c->val.bytes < m->val.bytes ? c->val.bytes : m->val.bytes;
			m->val.pad[0] = PL_GONE_LIVES_ON;
			cy->nmore++;
		}
	}
}

/*
 * Once the old hooks are gone (and no packet is left in them), the old
 * flows hold everything they ever will: what the copy did not carry (flows
 * that did not fit, packets counted between the copy and the switch) is
 * counted as not recorded in flows, in the base of the counters, so that
 * flows + flow_lost == packets holds in the new attachment too.
 */
static int account_carry(struct attach *a, struct pl_stats base[PL_SLOT_MAX])
{
	struct pl_flow *fl = NULL;
	__u64 pk[PL_SLOT_MAX] = {}, by[PL_SLOT_MAX] = {};
	size_t n = 0;
	int err;

	pl_wait_for_packets();
	err = pl_state_flows(&a->old, &fl, &n);
	if (err)
		return pl_why(a->why, a->whylen, err, "%s: cannot read the old flows again: %s", a->o->ifname,
			    strerror(-err));
	for (size_t i = 0; i < n; i++) {
		int sl = pl_flow_slot(&fl[i].key);

		pk[sl] += fl[i].val.packets;
		by[sl] += fl[i].val.bytes;
	}
	log_carry(a, fl, n);
	free(fl);
	for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
		__u64 lost_pk = pk[sl] > a->carry.pkts[sl] ? pk[sl] - a->carry.pkts[sl] : 0;
		__u64 lost_by = by[sl] > a->carry.bytes[sl] ? by[sl] - a->carry.bytes[sl] : 0;

		/* the base is subtracted: lowering it adds */
		base[sl].flow_lost -= a->carry.flows_lost[sl];
		base[sl].flow_lost_pkts -= lost_pk;
		base[sl].flow_lost_bytes -= lost_by;
		a->info->flows_dropped += a->carry.flows_lost[sl];
		a->info->pkts_dropped += lost_pk;
	}
	return 0;
}

/*
 * A re-attach into a new table: the old flows copied into it, as late as
 * possible (everything verified and pinned, just before the hooks switch),
 * since what the old hooks count after the copy is not carried
 * (account_carry()).
 */
static int carry_flows(struct attach *a)
{
	int err;

	if (!a->info->reattached || a->flows_reused)
		return 0;
	err = copy_flows(&a->old, bpf_map__fd(a->xskel->maps.flows), (__u32)a->li.ifindex,
			 &a->carry);
	return err ? pl_why(a->why, a->whylen, err, "%s: cannot carry flows over: %s", a->o->ifname,
			    strerror(-err)) : 0;
}

/* --force: the old attachment's bases go with its counters (and flows, when reused). */
static int carry_bases(struct attach *a)
{
	struct pl_stats base[PL_SLOT_MAX], zero[PL_SLOT_MAX] = {};
	int err;

	memcpy(base, a->old.base, sizeof(base));
	if (a->carry.copied && (err = account_carry(a, base)))
		return err;
	if (!memcmp(base, zero, sizeof(base)) && !(a->flows_reused && a->old.nfbase))
		return 0;	/* never reset, nothing lost: no bases */
	err = a->flows_reused ? pl_state_base_pin(a->tmp, base, a->old.fbase, a->old.nfbase) :
				pl_state_base_pin(a->tmp, base, NULL, 0);
	return err ? pl_why(a->why, a->whylen, err, "%s: cannot carry the counters' base over: %s", a->o->ifname,
			  strerror(-err)) : 0;
}

/*
 * Whether this attach runs the frags variant: native mode where the kernel
 * has frags, unless in libxdp's dispatcher (loader/xdp_multi.c says why).
 */
static bool frags(const struct attach *a)
{
	return pl_xdp_frags(a->info->xdp_mode) && !a->info->xdp_disp;
}

/* The XDP program for the mode: frags-capable in native mode, where the kernel has frags. */
static struct bpf_program *xdp_prog(const struct attach *a)
{
	struct pktlens_xdp *x = a->xentry ? a->xentry : a->xskel;

	return frags(a) ? x->progs.pktlens_xdp : x->progs.pktlens_xdp_skb;
}

/* Its twin in the chain's MAIN slot */
static struct bpf_program *xdp_main_prog(const struct attach *a)
{
	struct pktlens_xdp *x = a->xmain ? a->xmain : a->xskel;

	return frags(a) ? x->progs.pktlens_xdp_main : x->progs.pktlens_xdp_skb_main;
}

/*
 * --force: the maps the table keeps (enum pl_map_keep) are the replaced
 * attachment's: counters always, the flow table and its cache when
 * @flows_reused, rules where it has them (attachments made before policies
 * existed have none to reuse; those before version 8 hold a smaller pl_rule).
 * The records of the rules are copies of the old ones (pl_map_clone()),
 * settled first where a killed policy change left its journal: the record
 * of what runs, without the counters of rules that do not run.
 */
static int reuse_old_maps(struct attach *a, bool flows_reused)
{
	struct pl_policy op;
	int err = 0;

	if (a->old.meta.version >= 8 && !pl_policy_open(a->old_dir, &op)) {
		char why[PL_WHY_LEN];

		err = pl_policy_settle(&op, why, sizeof(why));
		pl_policy_close(&op);
		if (err)
			return err;
	}

	for (size_t i = 0; i < PL_MID_MAX && !err; i++) {
		const struct pl_map_def *d = &pl_maps[i];
		bool rules = d->keep == PL_KEEP_RULES || d->keep == PL_KEEP_RECORD;
		int fd, copy;

		if (!(d->objs & PL_OBJ_XDP) || d->keep == PL_KEEP_NONE ||
		    (d->keep == PL_KEEP_FLOWS && !flows_reused))
			continue;
		/* before metadata version 8 a rule and its counters were smaller: not carried */
		if (rules && a->old.meta.version < 8)
			continue;
		fd = pl_pin_open(a->old_dir, d->name);
		/* EPROTO: another layout than this pktlens's, not carried (as rules before 8) */
		if (fd < 0 && (rules || errno == EPROTO || (d->optional && errno == ENOENT)))
			continue;
		if (fd < 0)
			return -errno;
		copy = d->keep == PL_KEEP_RECORD ? pl_map_clone(fd, 0) : fd;
		err = copy < 0 ? copy :
		      bpf_map__reuse_fd(bpf_object__find_map_by_name(a->xskel->obj, d->name), copy);
		if (copy != fd && copy >= 0)
			close(copy);
		close(fd);
		if (!err)
			a->policy_reused |= rules;
	}
	return err;
}

/*
 * Load the XDP object (it owns the maps), reusing the maps of the attachment
 * being replaced so counters survive. The flow table is reused only when its
 * capacity is unchanged; otherwise its merged contents are copied.
 */
static int loaded_xdp(struct attach *a, bool flows_reused);
static int join_xdp(struct attach *a, bool flows_reused);

/*
 * The object built without tail calls from the same source: same maps and
 * programs by name, so it opens into pktlens_xdp's skeleton.
 */
static struct pktlens_xdp *open_notail(void)
{
	struct pktlens_xdp *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	err = pktlens_xdp__create_skeleton(s);
	if (!err) {
		s->skeleton->data = pktlens_xdp_notail__elf_bytes(&s->skeleton->data_sz);
		err = bpf_object__open_skeleton(s->skeleton, NULL);
	}
	if (err) {
		pktlens_xdp__destroy(s);
		errno = -err;
		return NULL;
	}
	return s;
}

/*
 * An XDP object with one program of the attach to load, its entry or its
 * MAIN twin, and every map the owner's (a->xskel, loaded): load_programs()
 * verifies it beside the others. NULL with a->why.
 */
static struct pktlens_xdp *xdp_open_prog(struct attach *a, bool main)
{
	struct pktlens_xdp *x = a->notail ? open_notail() : pktlens_xdp__open();
	struct bpf_program *p;
	struct bpf_map *m;
	int err = 0;

	if (!x) {
		a->open_err = pl_why(a->why, a->whylen, -errno, "%s: cannot open the XDP object: %s",
				     a->o->ifname, strerror(errno));
		return NULL;
	}
	bpf_object__for_each_program(p, x->obj)
		if (!err)
			err = bpf_program__set_autoload(p, false);
	p = frags(a) ? (main ? x->progs.pktlens_xdp_main : x->progs.pktlens_xdp) :
		       (main ? x->progs.pktlens_xdp_skb_main : x->progs.pktlens_xdp_skb);
	if (!err)
		err = bpf_program__set_autoload(p, true);
	if (!err)
		err = pl_obj_kernel(x->obj);
	bpf_object__for_each_map(m, x->obj) {
		int fd;

		if (err || bpf_map__is_internal(m))
			continue;
		fd = bpf_map__fd(bpf_object__find_map_by_name(a->xskel->obj, bpf_map__name(m)));
		err = fd >= 0 ? bpf_map__reuse_fd(m, fd) : bpf_map__set_autocreate(m, false);
	}
	x->rodata->pl_tcp_slots = a->xskel->rodata->pl_tcp_slots;
	x->rodata->pl_flow_cache_bits = a->cache_bits;
	if (err) {
		a->open_err = pl_why(a->why, a->whylen, err, "%s: cannot prepare program %s: %s",
				     a->o->ifname, bpf_program__name(p), strerror(-err));
		pktlens_xdp__destroy(x);
		return NULL;
	}
	return x;
}

static int load_xdp(struct attach *a)
{
	const char *ifname = a->o->ifname;
	bool flows_reused = false, frag = frags(a);
	bool xdp = a->info->xdp_mode != PL_XDP_NONE;
	__u32 max = 0;
	int err;

	a->xskel = a->notail ? open_notail() : pktlens_xdp__open();
	if (!a->xskel)
		return pl_why(a->why, a->whylen, -errno, "%s: cannot open the XDP object: %s",
			      ifname, strerror(errno));
	err = pl_obj_kernel(a->xskel->obj);
	if (!err)
		err = bpf_map__set_max_entries(a->xskel->maps.flows, a->o->flows_max);
	if (!err)
		err = pl_flow_cache_size(a->xskel->obj, a->o->flows_max, &a->cache_bits);
	/* only the variant in use: each has its own PROG_ARRAY and *_main twin */
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp, xdp && frag);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_main, xdp && frag);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_skb, xdp && !frag);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_skb_main, xdp && !frag);
	/* rule-set programs are loaded by `policy` (loader/policy.c) */
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_policy, false);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_skb_policy, false);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_policy_bounded, false);
	if (!err)
		err = bpf_program__set_autoload(a->xskel->progs.pktlens_xdp_skb_policy_bounded, false);
	if (!err)
		err = pl_tcp_prepare(a->xskel->obj, a->ns, a->o->tcp_passive, a->o->flows_max,
				     a->o->tcp_ts_max ? a->o->tcp_ts_max : PL_TCP_TS_DEFAULT,
				     a->have_old ? a->old_dir : NULL, &a->tcp_fresh);
	if (!err) {
		a->xskel->rodata->pl_tcp_slots = pl_tcp_slots_for(a->info->xdp_mode, a->info->tc_hooks,
								  a->o->tcp_passive, true,
								  a->li.ifindex);
		a->xskel->rodata->pl_flow_cache_bits = a->cache_bits;
	}
	if (!err && a->info->reattached) {
		err = pl_map_max_entries(a->old.flows_fd, &max);
		/*
		 * an older pktlens's cache (another layout) is read and carried, not
		 * reused; so are the flows of a deleted interface's attachment, keyed
		 * by its index, for this one's
		 */
		flows_reused = !err && max == a->o->flows_max &&
			       pl_flow_cache_bits_of(a->old.cache_fd) == (int)a->cache_bits &&
			       a->old.meta.ifindex == (__u32)a->li.ifindex;
		err = err ?: reuse_old_maps(a, flows_reused);
	}
	if (err)
		return pl_why(a->why, a->whylen, err, "%s: cannot prepare maps: %s", ifname,
			      strerror(-err));
	err = pl_maps_check(a->xskel->obj, PL_OBJ_XDP, a->why, a->whylen);
	if (err)
		return err;
	if (a->info->xdp_disp)
		return join_xdp(a, flows_reused);
	/* the maps alone: the programs go in objects of their own, verified side by side */
	err = bpf_program__set_autoload(xdp_prog(a), false);
	if (!err)
		err = bpf_program__set_autoload(xdp_main_prog(a), false);
	if (!err)
		err = pktlens_xdp__load(a->xskel);
	if (err)
		return pl_why(a->why, a->whylen, pl_load_err(err), "%s: cannot create the maps: %s",
			      ifname, strerror(-err));
	if (xdp && (!(a->xentry = xdp_open_prog(a, false)) || !(a->xmain = xdp_open_prog(a, true))))
		return a->open_err ?: -EINVAL;		/* why: xdp_open_prog() */
	return loaded_xdp(a, flows_reused);
}

/*
 * Whether XDP must share the interface, so that the program without tail
 * calls is worth its loss (no filters, policy rules or sample expressions on
 * XDP): other programs already run in the dispatcher, or the user placed
 * pktlens in it (--xdp-priority, the config's xdp-priority). Otherwise the
 * tail-calling program is attached alone, with all it can do.
 */
static bool share_xdp(const struct attach *a)
{
	struct pl_xdp_disp d;

	if (a->o->xdp_prio_set)
		return true;
	return !pl_xdp_disp_read(a->li.ifindex, &d) && d.n > 0;
}

/*
 * In libxdp's dispatcher libxdp loads the object, against it, so the new
 * program runs from here on: the replaced one leaves first (no double
 * counting), from the dispatcher or, attached alone before, by its link. A
 * kernel that refuses the tail-calling program there (libxdp
 * 1.3's dispatcher on Linux 6.12) gets the object built without tail calls
 * (open_notail(), loader/xdp_multi.h says what it lacks) when XDP must be
 * shared (share_xdp()), else the tail-calling one attached alone; one that
 * refuses that too, or lacks the bpf_loop() it needs (5.10, whose verifier
 * refuses both), gets it attached alone, as where freplace is refused
 * altogether. The attach says which.
 *
 * So a re-attach in the dispatcher is not gapless: libxdp 1.3 adds programs to
 * a dispatcher or takes them out (xdp_program__attach_multi(),
 * __detach_multi(): each loads a new dispatcher and swaps it in
 * atomically), but has no call that replaces one member by another in one
 * swap, and a member's run priority and chain-call actions are fixed once it
 * is in (a new dispatcher copies them from the old one's config). Joining
 * the new program before the old one leaves would run both: with the new
 * one first and no action going on, the packet never reaches the old one,
 * but then neither the programs after pktlens until the old one leaves, and
 * the new one goes on with no action after that (it would shut out every
 * program behind it for good); with XDP_PASS going on, or at pktlens's own
 * priority (libxdp sorts a loaded program before an unloaded one of the same
 * priority and name: the old one first), every passed packet is counted
 * twice. Exactly once needs the packet to tell the second program that the
 * first counted it (a BPF change), so the old program leaves first.
 */
static int join_xdp(struct attach *a, bool flows_reused)
{
	static char note[PL_WHY_LEN * 4 + 256];
	bool refused, notail_left;
	char names[PL_WHY_LEN];
	size_t others;
	int err;

	if (a->info->reattached) {
		char path[700];

		/* the old hook is down from here: a failure after this attaches it again (restore_old()) */
		a->old_touched = true;
		/* alone, its link is in libxdp's way ("not using a dispatcher"): it goes too */
		snprintf(path, sizeof(path), "%s/%s", a->old_dir, PL_PIN_XDP_LINK);
		pl_pin_link_detach(path);
		pl_xdp_disp_leave((int)a->old.meta.ifindex, a->old.meta.ifname, a->old.meta.xdp_prog_id,
				  NULL, 0);
	}
	/* the plain variant (see frags()) and its twin in the chain */
	err = pl_xdp_disp_join(a->xskel->obj, xdp_prog(a), a->xskel->progs.pktlens_xdp_skb_main,
			       a->li.ifindex, a->o->ifname, a->info->xdp_mode, a->info->xdp_prio,
			       &refused, a->why, a->whylen);
	/*
	 * refused with tail calls, the one without not tried yet (not loaded
	 * either) and loadable here: its rule walk needs bpf_loop()
	 */
	notail_left = err && refused && !a->notail && bpf_program__fd(xdp_prog(a)) < 0 &&
		      pl_feature(PL_FEAT_BPF_LOOP);
	if (notail_left && share_xdp(a)) {
		/* the kernel refused the tail-calling program there: the one without */
		pktlens_xdp__destroy(a->xskel);
		a->xskel = NULL;
		a->notail = true;
		err = load_xdp(a);
		if (!err && a->info->xdp_disp) {
			a->info->disp_note = "pktlens's XDP program runs in libxdp's dispatcher without "
					     "tail calls (" PL_XDP_NO_TAIL_WHY "): XDP counts, "
					     "samples and applies field rules; tcpdump filters, "
					     "expression rules and sample expressions are refused "
					     "on its XDP hook";
		}
		return err;
	}
	if (err && refused && a->info->reattached &&
	    (others = pl_xdp_disp_others(a->li.ifindex, names, sizeof(names)))) {
		char joined[PL_WHY_LEN * 2];

		/* alone would remove the dispatcher with them: a re-attach's --force is not for them */
		snprintf(joined, sizeof(joined), "%s", a->why);
		return pl_why(a->why, a->whylen, -EBUSY, "%s; attaching XDP alone instead would remove "
			      "libxdp's dispatcher with the %zu other program%s in it (%s): not done",
			      joined, others, others == 1 ? "" : "s", names);
	}
	if (err && refused) {
		/* refused, and nothing to share with (the one without not tried) or refused too */
		snprintf(note, sizeof(note), "libxdp's dispatcher refused pktlens's program (%s): XDP "
			 "is attached alone with a bpf_link, no other XDP program runs beside it%s",
			 a->why, notail_left ? " (--xdp-priority joins the dispatcher without tail "
			 "calls: no filters, expression rules or sample expressions on XDP)" : "");
		pktlens_xdp__destroy(a->xskel);
		a->xskel = NULL;
		a->notail = false;
		a->info->xdp_disp = false;
		a->info->disp_note = note;
		err = handle_foreign(a, a->old_xdp_id);
		if (err) {
			size_t len = strlen(a->why);

			/* say why a dispatcher there is foreign now */
			snprintf(a->why + len, a->whylen - len, "; libxdp's dispatcher refused "
				 "pktlens's program");
			return err;
		}
		return load_xdp(a);
	}
	if (err)
		return err;
	a->xdp_joined = true;
	return loaded_xdp(a, flows_reused);
}

/* After the object loaded: our program's id (the flows are copied by carry_flows()). */
static int loaded_xdp(struct attach *a, bool flows_reused)
{
	a->flows_reused = flows_reused;
	/* programs apart are loaded later, by load_programs() */
	if (a->info->xdp_mode != PL_XDP_NONE && !a->xentry)
		return prog_id(xdp_prog(a), &a->m->xdp_prog_id);
	return 0;
}

/*
 * Open a tc object for the directions in @hooks (PL_TC_*): every map of the
 * XDP object shared, tc_chain @chain_fd's where >= 0, only those
 * directions' programs loaded.
 */
static struct pktlens_tc *tc_open(struct attach *a, unsigned int hooks, int chain_fd)
{
	struct pktlens_xdp *x = a->xskel;
	struct pktlens_tc *t = pktlens_tc__open();
	int err;

	if (!t) {
		a->open_err = pl_why(a->why, a->whylen, -errno, "%s: cannot open the tc object: %s",
				     a->o->ifname, strerror(errno));
		return NULL;
	}
	err = pl_maps_check(t->obj, PL_OBJ_TC, a->why, a->whylen);
	if (err) {
		a->open_err = err;
		pktlens_tc__destroy(t);
		return NULL;
	}
	err = pl_obj_kernel(t->obj);
	for (size_t i = 0; i < PL_MID_MAX && !err; i++) {
		const struct pl_map_def *d = &pl_maps[i];

		if (d->shared && (d->objs & PL_OBJ_TC))
			err = bpf_map__reuse_fd(bpf_object__find_map_by_name(t->obj, d->name),
						bpf_map__fd(bpf_object__find_map_by_name(x->obj, d->name)));
	}
	if (!err && chain_fd >= 0)
		err = bpf_map__reuse_fd(t->maps.tc_chain, chain_fd);
	t->rodata->pl_tcp_slots = pl_tcp_slots_for(a->info->xdp_mode, a->info->tc_hooks,
						   a->o->tcp_passive, false, a->li.ifindex);
	t->rodata->pl_flow_cache_bits = a->cache_bits;	/* the XDP object's map */
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_in_policy, false);
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_out_policy, false);
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_in_policy_bounded, false);
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_out_policy_bounded, false);
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_in, hooks & PL_TC_IN);
	/* the chain's MAIN twins: here for a filter of this attach, else on first use (chain.c) */
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_in_main,
						a->refilter && (hooks & PL_TC_IN));
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_out, hooks & PL_TC_OUT);
	if (!err)
		err = bpf_program__set_autoload(t->progs.pktlens_tc_out_main,
						a->refilter && (hooks & PL_TC_OUT));
	if (err) {
		a->open_err = pl_why(a->why, a->whylen, err, "%s: cannot prepare the tc object: %s",
				     a->o->ifname, strerror(-err));
		pktlens_tc__destroy(t);
		return NULL;
	}
	return t;
}

/* The tc object with the programs of direction @dir (enum pl_dir) */
static struct pktlens_tc *tc_obj(const struct attach *a, int dir)
{
	return dir == PL_DIR_OUT && a->tskel_out ? a->tskel_out : a->tskel;
}

/*
 * The tc objects, sharing every map of the XDP object. With both directions
 * egress's programs are in an object of their own, so that load_programs()
 * verifies them beside ingress's; the two share tc_chain.
 */
static int open_tc(struct attach *a)
{
	unsigned int hooks = a->info->tc_hooks;
	bool split = hooks == (PL_TC_IN | PL_TC_OUT);
	int chain_fd = -1;

	if (split) {
		/* tc_chain as bpf/chain.h has it, made here so that both can share it */
		chain_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, PL_MAP_TC_CHAIN, sizeof(__u32),
					  sizeof(__u32), PL_CHAIN_SLOTS, NULL);
		if (chain_fd < 0)
			return pl_why(a->why, a->whylen, -errno, "%s: cannot create %s: %s",
				      a->o->ifname, PL_MAP_TC_CHAIN, strerror(errno));
	}
	a->tskel = tc_open(a, split ? PL_TC_IN : hooks, chain_fd);
	if (a->tskel && split)
		a->tskel_out = tc_open(a, PL_TC_OUT, chain_fd);
	if (chain_fd >= 0)
		close(chain_fd);	/* the objects hold it */
	return !a->tskel || (split && !a->tskel_out) ? a->open_err ?: -EINVAL : 0;	/* why: tc_open() */
}

struct obj_load {
	struct bpf_object_skeleton *s;
	const struct bpf_program *prog;	/* the program it is for, NULL: tc's */
	pthread_t th;
	bool thread;
	int err;
};

static void *obj_load_thread(void *arg)
{
	struct obj_load *l = arg;

	l->err = bpf_object__load_skeleton(l->s);
	return NULL;
}

/*
 * Load the attach's programs: XDP's entry and its MAIN twin where the owner
 * of the maps did not (xdp_open_prog()), tc's directions (open_tc()), each
 * object in a thread of its own on a machine of several CPUs. The verifier
 * takes most of an attach, and each program about as long.
 */
static int load_programs(struct attach *a)
{
	struct obj_load l[4];
	size_t n = 0;
	bool par = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	int err = 0;

	if (a->xentry) {
		l[n++] = (struct obj_load){ .s = a->xentry->skeleton, .prog = xdp_prog(a) };
		l[n++] = (struct obj_load){ .s = a->xmain->skeleton, .prog = xdp_main_prog(a) };
	}
	if (a->tskel)
		l[n++] = (struct obj_load){ .s = a->tskel->skeleton };
	if (a->tskel_out)
		l[n++] = (struct obj_load){ .s = a->tskel_out->skeleton };
	for (size_t i = 1; i < n && par; i++)
		l[i].thread = !pthread_create(&l[i].th, NULL, obj_load_thread, &l[i]);
	for (size_t i = 0; i < n; i++) {
		if (l[i].thread)
			pthread_join(l[i].th, NULL);
		else
			obj_load_thread(&l[i]);
	}
	for (size_t i = 0; i < n && !err; i++) {
		if (!l[i].err)
			continue;
		err = pl_load_err(l[i].err);
		if (l[i].prog)
			pl_why(a->why, a->whylen, err, "%s: the kernel refused program %s: %s",
			       a->o->ifname, bpf_program__name(l[i].prog), strerror(-l[i].err));
		else
			pl_why(a->why, a->whylen, err, "%s: the kernel refused the tc programs: %s",
			       a->o->ifname, strerror(-l[i].err));
	}
	if (!err && a->xentry)
		err = prog_id(xdp_prog(a), &a->m->xdp_prog_id);
	if (!err && (a->info->tc_hooks & PL_TC_IN))
		err = prog_id(tc_obj(a, PL_DIR_IN)->progs.pktlens_tc_in, &a->m->tc_prog_id[PL_DIR_IN]);
	if (!err && (a->info->tc_hooks & PL_TC_OUT))
		err = prog_id(tc_obj(a, PL_DIR_OUT)->progs.pktlens_tc_out,
			      &a->m->tc_prog_id[PL_DIR_OUT]);
	return err;
}

static struct bpf_map *xdp_chain(const struct attach *a)
{
	return frags(a) ? a->xskel->maps.xdp_chain :
						 a->xskel->maps.xdp_skb_chain;
}

/*
 * The MAIN slots: where a chained filter hands the packet back. XDP's always;
 * tc's when this attach chains a filter, else `filter set` or `sample` fills
 * them on first use (loader/chain.c): half of tc's verification saved.
 */
static int fill_chains(struct attach *a)
{
	__u32 slot = PL_CHAIN_MAIN(PL_DIR_IN);
	int fd, err = 0;

	if (a->info->xdp_mode != PL_XDP_NONE) {
		fd = bpf_program__fd(xdp_main_prog(a));
		if (bpf_map_update_elem(bpf_map__fd(xdp_chain(a)), &slot, &fd, BPF_ANY))
			err = -errno;
	}
	for (int dir = 0; dir < 2 && !err; dir++) {
		if (!(a->info->tc_hooks & (1u << dir)) || !a->refilter)
			continue;
		slot = PL_CHAIN_MAIN(dir);
		fd = bpf_program__fd(dir == PL_DIR_IN ? tc_obj(a, dir)->progs.pktlens_tc_in_main :
							tc_obj(a, dir)->progs.pktlens_tc_out_main);
		if (bpf_map_update_elem(bpf_map__fd(a->tskel->maps.tc_chain), &slot, &fd, BPF_ANY))
			err = -errno;
	}
	return err ? pl_why(a->why, a->whylen, err, "%s: cannot set up the filter chain: %s",
			    a->o->ifname, strerror(-err)) : 0;
}

/* Chain @expr into the new attachment: the replaced one's, or the one asked for. */
static int refilter(struct attach *a, const char *expr)
{
	struct pl_chain c = {
		.res_fd = bpf_map__fd(a->xskel->maps.chain_res),
		.xdp_fd = a->info->xdp_mode != PL_XDP_NONE ? bpf_map__fd(xdp_chain(a)) : -1,
		.tc_fd = a->info->tc_hooks ? bpf_map__fd(a->tskel->maps.tc_chain) : -1,
		.meta_fd = bpf_map__fd(a->xskel->maps.meta),
		.meta = *a->m,
		.xdp_no_tail = a->notail,
	};
	char why[PL_WHY_LEN * 4];	/* pl_xdp_no_tail_why()'s way out is 400 bytes and more */
	int err;

	err = pl_chain_set(&c, expr, why, sizeof(why));
	if (err)
		return pl_why(a->why, a->whylen, err, "%s: cannot chain the filter%s: %s",
			      a->o->ifname, a->o->set_filter ? "" : " again", why);
	*a->m = c.meta;
	return 0;
}

/*
 * --force over an attachment with rules: judge by them again on the new
 * hooks. Rules of a direction the new hooks lack are dropped (and said).
 * With set_rules, the rules asked for instead, all of them.
 */
static int repolicy(struct attach *a)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct pl_policy p;
	char why[PL_WHY_LEN * 4];
	size_t n = 0, kept = 0, ntexts = 0;
	bool has_dir[2];
	int err;

	err = pl_policy_open(a->tmp, &p);
	p.xdp_new = a->old.meta.xdp_mode == PL_XDP_NONE;
	if (!err && a->o->set_rules) {
		err = pl_policy_commit(&p, a->o->rules, a->o->nrules, a->o->texts, a->o->ntexts, why,
				       sizeof(why));
		a->info->rules_kept = a->o->nrules;
		pl_policy_close(&p);
		return err ? pl_why(a->why, a->whylen, err, "%s: %s", a->o->ifname, why) : 0;
	}
	if (!err)
		err = pl_policy_rules(&p, &rules, &n);
	if (err) {
		pl_policy_close(&p);	/* safe after a failed open: fds are -1 */
		return pl_why(a->why, a->whylen, err, "%s: cannot read the policy rules: %s",
			      a->o->ifname, strerror(-err));
	}
	has_dir[PL_DIR_IN] = pl_policy_has_dir(&p, PL_DIR_IN);	/* once: it asks the kernel */
	has_dir[PL_DIR_OUT] = pl_policy_has_dir(&p, PL_DIR_OUT);
	for (size_t i = 0; i < n; i++)
		if (rules[i].dir <= PL_DIR_OUT && has_dir[rules[i].dir])
			rules[kept++] = rules[i];
	a->info->rules_dropped = n - kept;
	a->info->rules_kept = kept;
	err = pl_policy_exprs(&p, &texts, &ntexts);
	if (err)
		pl_why(why, sizeof(why), err, "reading the expressions: %s", strerror(-err));
	else if (n)
		err = pl_policy_commit(&p, rules, kept, texts, ntexts, why, sizeof(why));
	pl_policy_texts_free(texts, ntexts);
	pl_policy_close(&p);
	free(rules);
	return err ? pl_why(a->why, a->whylen, err,
			    "%s: cannot judge by the policy rules again: %s", a->o->ifname,
			    why) : 0;
}

/* The maps the table pins (enum pl_map_pin), under a.tmp */
static int pin_maps(struct attach *a)
{
	int err = 0;

	for (size_t i = 0; i < PL_MID_MAX && !err; i++) {
		const struct pl_map_def *d = &pl_maps[i];
		/* the non-frags variant's map (skb mode, or a kernel without frags) */
		const char *name = d->pin_skb && !frags(a) ? d->pin_skb :
										   d->name;
		const struct bpf_object *obj;

		if (d->pin == PL_PIN_NEVER ||
		    (d->pin == PL_PIN_XDP && a->info->xdp_mode == PL_XDP_NONE) ||
		    (d->pin == PL_PIN_TC && !a->info->tc_hooks))
			continue;
		/* the XDP object is always loaded (it owns the shared maps); tc with tc hooks */
		obj = d->objs & PL_OBJ_XDP ? a->xskel->obj : a->tskel->obj;
		err = pin_fd(bpf_map__fd(bpf_object__find_map_by_name(obj, name)), a->tmp, d->name);
	}
	return err;
}

static int attach_xdp(struct attach *a)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts);
	int mode = a->info->xdp_mode, err;

	if (a->info->xdp_disp)
		return 0;	/* joined the dispatcher when loaded (join_xdp()) */
	lopts.flags = mode == PL_XDP_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	a->link_fd[0] = bpf_link_create(bpf_program__fd(xdp_prog(a)), a->li.ifindex, BPF_XDP,
					&lopts);
	if (a->link_fd[0] < 0) {
		err = -errno;
		/* the kernel or driver refused: a runtime failure, whatever the errno */
		return pl_why(a->why, a->whylen, pl_load_err(err),
			      "%s: cannot attach XDP program %s in %s mode: %s%s", a->o->ifname,
			      bpf_program__name(xdp_prog(a)), pl_xdp_mode_name(mode), strerror(-err),
			      err == -EOPNOTSUPP ? PL_XDP_NO_NATIVE_HINT :
			      err == -EBUSY || err == -EEXIST ? " (another XDP program is attached)" :
			      (err == -EINVAL || err == -ERANGE) && mode == PL_XDP_NATIVE &&
			      !pl_xdp_frags(mode) ? " (an MTU over one page needs multi-buffer XDP, "
			      "Linux 5.18: lower the MTU or use --xdp skb)" : "");
	}
	err = pin_fd(a->link_fd[0], a->tmp, PL_PIN_XDP_LINK);
	return err ? pl_why(a->why, a->whylen, err, "%s: cannot pin XDP link: %s", a->o->ifname,
			    strerror(-err)) : 0;
}

static int clsact_detach_filter(int ifindex, int dir, __u32 handle, __u32 prio)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = prio);

	return bpf_tc_detach(&hook, &opts);
}

/*
 * The clsact qdisc of @hook's interface, made unless there is one (*@made).
 * The slot may hold the older ingress qdisc instead: its block takes every
 * filter whatever parent it names, so an egress filter would count ingress
 * packets; refused.
 */
int pl_clsact_hook(struct bpf_tc_hook *hook, const char *ifname, bool *made, char *why,
		   size_t whylen)
{
	char kind[32];
	int err;

	err = bpf_tc_hook_create(hook);
	*made = !err;
	if (err && err != -EEXIST)
		return pl_why(why, whylen, err, "%s: cannot create a clsact qdisc: %s", ifname,
			      strerror(-err));
	if (err && hook->attach_point == BPF_TC_EGRESS &&
	    !pl_ingress_qdisc_kind(hook->ifindex, kind, sizeof(kind)) && strcmp(kind, "clsact"))
		return pl_why(why, whylen, -EBUSY, "%s: cannot attach on tc egress: the %s qdisc "
			      "there is not clsact and has no egress hook (tc qdisc del dev %s %s)",
			      ifname, kind, ifname, kind);
	return 0;
}

/* Remove the clsact qdisc we created, unless someone else's filters are on it. */
static void clsact_release_qdisc(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int n = 1;

	if (!pl_clsact_filter_count(ifindex, &n) && n == 0)
		bpf_tc_hook_destroy(&hook);
}

/*
 * clsact filters cannot be pinned: a pktlens killed between creating one and
 * committing its pins leaves it behind. We hold the change lock and a
 * re-attach has taken the old hooks down already, so a pktlens program at
 * our handle and priority is such an orphan: remove it. Anyone else's stays.
 */
static int clsact_remove_orphan(struct attach *a, int dir, struct bpf_tc_hook *hook)
{
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = PL_CLSACT_HANDLE, .priority = PL_CLSACT_PRIO);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	if (bpf_tc_query(hook, &q))
		return 0;	/* no such filter */
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	err = fd < 0 ? -errno : bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (err || strncmp(info.name, "pktlens_tc", strlen("pktlens_tc")))
		return pl_why(a->why, a->whylen, -EEXIST,
			      "%s: the tc %s filter at handle %#x priority %u is another "
			      "program's (%s)", a->o->ifname, dir_name[dir], PL_CLSACT_HANDLE,
			      PL_CLSACT_PRIO, err ? strerror(-err) : info.name);
	return clsact_detach_filter(a->li.ifindex, dir, PL_CLSACT_HANDLE, PL_CLSACT_PRIO);
}

static int attach_tc_dir(struct attach *a, int dir)
{
	const struct bpf_program *prog = dir == PL_DIR_IN ? tc_obj(a, dir)->progs.pktlens_tc_in :
							    tc_obj(a, dir)->progs.pktlens_tc_out;
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->li.ifindex,
		    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog),
		    .handle = PL_CLSACT_HANDLE, .priority = PL_CLSACT_PRIO);
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = PL_BPF_F_BEFORE);
	bool made;
	int fd, err;

	if (a->info->tc_mech == PL_TC_TCX) {
		fd = bpf_link_create(bpf_program__fd(prog), a->li.ifindex,
				     dir == PL_DIR_IN ? PL_BPF_TCX_INGRESS : PL_BPF_TCX_EGRESS, &lopts);
		if (fd < 0) {
			err = -errno;
			return pl_why(a->why, a->whylen, pl_load_err(err),
				      "%s: cannot attach tc %s program with tcx: %s", a->o->ifname,
				      dir_name[dir], strerror(-err));
		}
		a->link_fd[1 + dir] = fd;
		err = pin_fd(fd, a->tmp, tc_link_pin[dir]);
		return err ? pl_why(a->why, a->whylen, err, "%s: cannot pin tc %s link: %s",
				    a->o->ifname, dir_name[dir], strerror(-err)) : 0;
	}

	err = pl_clsact_hook(&hook, a->o->ifname, &made, a->why, a->whylen);
	if (err)
		return err;
	if (made)
		a->m->tc_qdisc_created = 1;
	if ((err = clsact_remove_orphan(a, dir, &hook)))
		return err;
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return pl_why(a->why, a->whylen, err == -EINVAL ? -EBUSY : err,
			      "%s: cannot attach tc %s filter: %s", a->o->ifname, dir_name[dir],
			      err == -EINVAL ? PL_CLSACT_PRIO_TAKEN : strerror(-err));
	a->filter_made[dir] = true;
	a->m->tc_handle[dir] = opts.handle;
	a->m->tc_prio[dir] = opts.priority;
	return 0;
}

/*
 * Take down the hooks of the attachment being replaced (its maps live on),
 * each just before the new one of its place attaches: XDP, then tc per
 * direction. An XDP attach that fails (a driver without native XDP) then
 * leaves the old tc hooks counting, where they were all gone before it.
 */
static void detach_old_xdp(struct attach *a)
{
	const struct pl_meta *om = &a->old.meta;
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", a->old_dir, PL_PIN_XDP_LINK);
	pl_pin_link_detach(path);
	pl_xdp_disp_leave((int)om->ifindex, om->ifname, om->xdp_prog_id, NULL, 0);
}

static void detach_old_tc(struct attach *a, int dir)
{
	const struct pl_meta *om = &a->old.meta;
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", a->old_dir, tc_link_pin[dir]);
	pl_pin_link_detach(path);
	if (om->tc_mech == PL_TC_CLSACT && (om->tc_hooks & (1u << dir)))
		clsact_detach_filter(om->ifindex, dir, om->tc_handle[dir], om->tc_prio[dir]);
}

/* After the tc hooks: the clsact qdisc the old attachment created. */
static void old_qdisc(struct attach *a)
{
	const struct pl_meta *om = &a->old.meta;

	/* the qdisc we created before is still ours: keep it only if we use it */
	if (om->tc_mech == PL_TC_CLSACT && om->tc_qdisc_created) {
		if (a->info->tc_mech == PL_TC_CLSACT)
			a->m->tc_qdisc_created = 1;
		else
			clsact_release_qdisc(om->ifindex);
	}
}

/* The replaced attachment ran in this one's place: the same interface, under the same name. */
static bool same_place(const struct attach *a)
{
	return a->info->reattached && !a->old_gone && !strcmp(a->old_dir, a->final) &&
	       a->old.meta.ifindex == (__u32)a->li.ifindex;
}

/* The replaced attachment's XDP program ran alone (no dispatcher) in this place and mode. */
static bool old_xdp_alone(const struct attach *a)
{
	return same_place(a) && a->info->xdp_mode != PL_XDP_NONE &&
	       (int)a->old.meta.xdp_mode == a->info->xdp_mode && !pl_xdp_prog_ext(a->old_xdp_id);
}

/*
 * Whether place @i (0 XDP, 1 + enum pl_dir tc) of the replaced attachment
 * can take the new program in place: the same interface and name, XDP in
 * the same mode and alone (not in libxdp's dispatcher), tc in the same
 * direction by the same mechanism.
 */
static bool can_swap(const struct attach *a, int i)
{
	const struct pl_meta *om = &a->old.meta;
	unsigned int bit = i ? 1u << (i - 1) : 0;

	if (!i)
		return !a->info->xdp_disp && old_xdp_alone(a);
	return same_place(a) && (a->info->tc_hooks & bit) && (om->tc_hooks & bit) &&
	       (int)om->tc_mech == a->info->tc_mech;
}

/* clsact: the filter at the old attachment's handle and priority runs @prog_fd from now on */
static int clsact_replace(const struct attach *a, int dir, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->li.ifindex,
		    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE,
		    .handle = a->old.meta.tc_handle[dir], .priority = a->old.meta.tc_prio[dir]);

	return bpf_tc_attach(&hook, &opts);
}

/*
 * A re-attach swaps the program of each place the old and the new
 * attachment share (can_swap()) in place, atomically: the old link's
 * (BPF_LINK_UPDATE, XDP and tcx) or the old clsact filter's (replaced at its
 * handle). Each packet meets the old program or the new one, never neither
 * and never both: taking the old hook down and attaching the new one missed
 * those of the 1-30 ms between (generic XDP's static key, veth's XDP queues
 * going down and up). The link is pinned in the new directory too (the old
 * one's removal leaves it: pl_pin_dir_remove()); the old program is held
 * for undo(), which swaps it back. False: not swapped, nothing changed.
 */
static bool swap_hook(struct attach *a, int i)
{
	const struct pl_meta *om = &a->old.meta;
	int dir = i - 1, new_fd, old_fd = -1, fd = -1;
	const char *pin = i ? tc_link_pin[dir] : PL_PIN_XDP_LINK;
	struct bpf_link_info li;
	char path[700];

	if (!can_swap(a, i))
		return false;
	new_fd = bpf_program__fd(!i ? xdp_prog(a) : dir == PL_DIR_IN ?
				 tc_obj(a, dir)->progs.pktlens_tc_in : tc_obj(a, dir)->progs.pktlens_tc_out);
	if (i && om->tc_mech == PL_TC_CLSACT) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->li.ifindex,
			    .attach_point = dir == PL_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = om->tc_handle[dir], .priority = om->tc_prio[dir]);

		/* the old filter, running the old program */
		if (bpf_tc_query(&hook, &q) || q.prog_id != om->tc_prog_id[dir] ||
		    (old_fd = bpf_prog_get_fd_by_id(q.prog_id)) < 0)
			return false;
		if (clsact_replace(a, dir, new_fd)) {
			close(old_fd);
			return false;
		}
		a->m->tc_handle[dir] = om->tc_handle[dir];
		a->m->tc_prio[dir] = om->tc_prio[dir];
		a->swapped[i] = old_fd;
		return true;
	}
	fd = pl_pin_link_open(a->old_dir, pin, &li);
	if (fd < 0 || (old_fd = bpf_prog_get_fd_by_id(li.prog_id)) < 0 || pin_fd(fd, a->tmp, pin)) {
		if (fd >= 0)
			close(fd);
		if (old_fd >= 0)
			close(old_fd);
		return false;
	}
	LIBBPF_OPTS(bpf_link_update_opts, u, .flags = BPF_F_REPLACE, .old_prog_fd = old_fd);
	if (bpf_link_update(fd, new_fd, &u)) {
		snprintf(path, sizeof(path), "%s/%s", a->tmp, pin);
		unlink(path);
		close(fd);
		close(old_fd);
		return false;
	}
	a->link_fd[i] = fd;
	a->swapped[i] = old_fd;
	return true;
}

/* undo(): the old programs back in the places swap_hook() gave the new ones */
static void swap_back(struct attach *a)
{
	for (int i = 0; i < 3; i++) {
		if (a->swapped[i] < 0)
			continue;
		if (i && a->old.meta.tc_mech == PL_TC_CLSACT)
			clsact_replace(a, i - 1, a->swapped[i]);
		else
			bpf_link_update(a->link_fd[i], a->swapped[i], NULL);
	}
}

/* attach --probes: each set's loader, which pins it in the new attachment's directory */
static const struct {
	unsigned bit;
	const char *name;
	int (*pin)(__u64 netns, const char *dir, const char *carry, char *why, size_t whylen);
} probe_sets[] = {
	{ PL_PROBE_TCP, "TCP", pl_tcp_pin_quiet },
	{ PL_PROBE_DROPS, "drop", pl_drops_pin_quiet },
};

static void undo(struct attach *a)
{
	swap_back(a);
	if (a->xdp_joined)
		pl_xdp_disp_leave(a->li.ifindex, a->o->ifname, a->m->xdp_prog_id, NULL, 0);
	for (int dir = 0; dir < 2; dir++)
		if (a->filter_made[dir])
			clsact_detach_filter(a->li.ifindex, dir, a->m->tc_handle[dir], a->m->tc_prio[dir]);
	if (a->m->tc_qdisc_created && (a->filter_made[0] || a->filter_made[1]))
		clsact_release_qdisc(a->li.ifindex);
	if (a->tmp_made)
		pl_pin_dir_remove(a->tmp);
	/* the namespace's TCP maps pinned for this attach, unless a live attachment uses them */
	if (a->tcp_fresh && a->o->tcp_passive) {
		if (a->have_old)
			pl_tcp_repin_ns(a->ns, a->old_dir);
		pl_tcp_release_ns(a->ns);
	}
}

/*
 * The attachment this attach replaces, if any: the interface's own by name,
 * or the one made before the interface was renamed (its hooks still run on
 * this ifindex). Without namespace cookies (before Linux 5.14) an
 * attachment of this name whose hooks all are gone may be a deleted
 * namespace's that had this inode: it is set aside, never inherited.
 */
static int find_old(struct attach *a, const struct pl_netns *here)
{
	struct pl_attachment *v = NULL, *hit = NULL;
	struct pl_link_info li;
	size_t n = 0;
	int err;

	err = pl_attachments_here(NULL, &v, &n);
	if (err)
		return pl_why(a->why, a->whylen, err, "%s: cannot read %s: %s", a->o->ifname, PL_PIN_ROOT, strerror(-err));
	for (size_t i = 0; i < n && !hit; i++)
		if (!strcmp(v[i].ifname, a->li.ifname))
			hit = &v[i];
	if (hit && hit->meta_ok && (!here->cookie || !hit->meta.netns_cookie) &&
	    !pl_meta_live(&hit->meta) && !pl_attachment_set_aside(hit))
		hit = NULL;
	for (size_t i = 0; i < n && !hit; i++)
		if (v[i].meta_ok && (int)v[i].meta.ifindex == a->li.ifindex && pl_meta_live(&v[i].meta))
			hit = &v[i];
	if (hit) {
		a->have_old = true;
		snprintf(a->old_dir, sizeof(a->old_dir), "%s", hit->dir);
		snprintf(a->old_name, sizeof(a->old_name), "%s", hit->ifname);
		a->old_ifindex = hit->meta_ok ? (int)hit->meta.ifindex : 0;
		a->old_gone = hit->meta_ok && !pl_meta_live(&hit->meta);
		/* not here, but its hooks run on where its interface moved: not deleted */
		if (a->old_gone && pl_attachment_moved(hit, &a->old_where) == 1) {
			a->old_gone = false;
			a->old_moved = true;
		}
		/* the same interface, still here: only its programs were taken off (tc, bpftool) */
		a->old_off = a->old_gone && (int)hit->meta.ifindex == a->li.ifindex;
		/* found by name, but its hooks run on another interface: ours took its old name */
		if (hit->meta_ok && !a->old_gone && (int)hit->meta.ifindex != a->li.ifindex &&
		    !pl_link_get(NULL, (int)hit->meta.ifindex, &li))
			snprintf(a->old_now, sizeof(a->old_now), "%s", li.ifname);
	}
	free(v);
	return 0;
}

/*
 * The program the replaced attachment's XDP hook runs: its pinned link's
 * (a re-attach killed between swap_hook() and its rename left the new
 * program in the old link, recorded nowhere), else the one it records.
 */
static __u32 old_xdp_prog(const struct attach *a)
{
	struct bpf_link_info li;
	__u32 id = a->old.meta.xdp_prog_id;
	int fd = pl_pin_link_open(a->old_dir, PL_PIN_XDP_LINK, &li);

	if (fd < 0)
		return id;
	close(fd);
	return li.prog_id ?: id;
}

/* The attachment's metadata as it stands (struct pl_meta) into its map. */
static int write_meta(struct attach *a)
{
	__u32 key = 0;

	if (bpf_map_update_elem(bpf_map__fd(a->xskel->maps.meta), &key, a->m, 0))
		return pl_why(a->why, a->whylen, -errno, "%s: cannot write attach metadata: %s",
			      a->o->ifname, strerror(errno));
	return 0;
}

static int restoring;	/* restore_old()'s pl_attach() is under way: none of its own */

/* After a failed re-attach: attach the one it replaced again as @om says; said in @why. */
static void restore_old(const struct pl_meta *om, bool prio_ok, __u32 prio, char *why,
			size_t whylen)
{
	struct pl_attach_opts o = {
		.ifname = om->ifname, .xdp_mode = om->xdp_mode, .tc_hooks = om->tc_hooks,
		.tc_mech = om->tc_hooks ? (int)om->tc_mech : -1, .flows_max = om->flows_max,
		.force = true, .reattach = true, .down_ok = true, .probes = om->probes,
		.xdp_prio_set = prio_ok, .xdp_prio = prio, .tcp_passive = om->tcp_passive,
		.tcp_ts_max = om->tcp_ts_max,
	};
	struct pl_attach_info info;
	char rwhy[PL_WHY_LEN * 4];
	size_t n = strlen(why);
	int err;

	if (restoring)
		return;
	restoring = 1;
	err = pl_attach(&o, &info, rwhy, sizeof(rwhy));
	restoring = 0;
	if (!err)
		snprintf(why + n, whylen > n ? whylen - n : 0,
			 "; the attachment it was to replace runs again as it was");
	else
		snprintf(why + n, whylen > n ? whylen - n : 0,
			 "; attaching the one it was to replace again failed too: %s", rwhy);
}

int pl_attach(const struct pl_attach_opts *o, struct pl_attach_info *info, char *why, size_t whylen)
{
	struct attach a = {
		.o = o, .info = info, .why = why, .whylen = whylen,
		.old = { .stats_fd = -1, .flows_fd = -1, .cache_fd = -1, .meta_fd = -1 },
		.link_fd = { -1, -1, -1 }, .swapped = { -1, -1, -1 },
	};
	const char *ifname = o->ifname;
	struct pl_meta *m = &info->meta;
	struct pl_netns here;
	char l2[96], nsbuf[640];
	uint64_t ns;
	int err;

	memset(info, 0, sizeof(*info));
	a.m = m;
	err = pl_link_get(ifname, 0, &a.li);
	if (err)
		return pl_why(a.why, a.whylen, err, "%s: %s", ifname,
			      err == -ENODEV ? "no such interface" : strerror(-err));
	if (o->ifindex && a.li.ifindex != o->ifindex)
		return pl_why(a.why, a.whylen, -ESTALE, "%s: another interface has this name now "
			      "(index %d, planned for index %d): renamed or created again meanwhile; "
			      "left as it was", ifname, a.li.ifindex, o->ifindex);
	if (!a.li.up && !o->force && !o->down_ok)
		return pl_why(a.why, a.whylen, -ENETDOWN,
			      "%s: interface is down (ip link set %s up, or --force)", ifname,
			      ifname);
	if (pl_link_not_ethernet(&a.li, l2, sizeof(l2)))
		return pl_why(a.why, a.whylen, -EINVAL, "%s: %s: pktlens analyses Ethernet "
			      "frames only", ifname, l2);
	info->reason = pl_attach_hooks(o, &a.li, &info->xdp_mode, &info->tc_hooks, &info->tc_mech);
	if (info->xdp_mode == PL_XDP_NONE && !info->tc_hooks)
		return pl_why(a.why, a.whylen, -EINVAL, o->xdp_mode < 0 ?
			      "%s: nothing to attach (--tc none, and a virtual device gets no XDP "
			      "unless --xdp skb or native)" :
			      "%s: nothing to attach (--xdp none and --tc none)", ifname);
	if (info->xdp_mode == PL_XDP_NATIVE && !pl_feature(PL_FEAT_XDP_FRAGS))
		info->xdp_note = "multi-buffer XDP needs Linux 5.18: attaching without it "
				 "(native XDP takes frames that fit one page)";
	info->xdp_disp = info->xdp_mode != PL_XDP_NONE && pl_feature(PL_FEAT_XDP_DISPATCHER);
	if (o->xdp_prio_set && info->xdp_mode == PL_XDP_NONE)
		return pl_why(a.why, a.whylen, -EINVAL, "%s: --xdp-priority without an XDP hook "
			      "(--xdp native|skb)", ifname);
	if (info->xdp_mode != PL_XDP_NONE && !info->xdp_disp)
		info->disp_note = "this kernel refuses libxdp's dispatcher (freplace): XDP is "
				  "attached alone with a bpf_link, no other XDP program runs beside it";
	if (info->tc_hooks && o->tc_mech < 0 && info->tc_mech == PL_TC_CLSACT)
		info->tc_note = "this kernel has no tcx links (Linux 6.6): using clsact";
	if (info->tc_mech == PL_TC_TCX && !pl_feature(PL_FEAT_TCX)) {
		char needs[128];

		return pl_why(a.why, a.whylen, -ENOSYS, "%s: --tc-mech tcx %s; use --tc-mech clsact",
			      ifname, pl_feature_needs(PL_FEAT_TCX, needs, sizeof(needs)));
	}
	info->ifindex = a.li.ifindex;
	snprintf(info->ifname, sizeof(info->ifname), "%s", a.li.ifname);

	err = pl_bpffs_ensure(why, whylen);
	if (err)
		return err;
	pl_pins_gc();
	err = pl_netns_here(&here);
	ns = here.ino;
	a.ns = ns;
	if (!err)
		err = pl_pin_dir(a.final, sizeof(a.final), ns, a.li.ifname);
	if (err)
		return pl_why(a.why, a.whylen, err, "%s: %s", ifname, strerror(-err));
	err = find_old(&a, &here);
	if (err)
		return err;
	if (o->ifindex && a.have_old && a.old_ifindex && a.old_ifindex != o->ifindex)
		return pl_why(a.why, a.whylen, -ESTALE, "%s: the attachment under this name is "
			      "another interface's now (index %d, planned for index %d): renamed "
			      "or attached again meanwhile; left as it was", ifname, a.old_ifindex,
			      o->ifindex);
	if (a.have_old && !o->force && !o->reattach && strcmp(a.old_name, a.li.ifname))
		return pl_why(a.why, a.whylen, -EEXIST, "%s: already attached as %s, its name before a rename "
			    "(pktlens detach %s, or --force to re-attach as %s)", ifname, a.old_name,
			    a.old_name, a.li.ifname);
	/*
	 * The attachment of this name runs on another interface, renamed since:
	 * --force cannot give it to this one (it would take the hooks off that
	 * interface and carry its counters over to a different one).
	 */
	if (a.have_old && !o->reattach && a.old_now[0])
		return pl_why(a.why, a.whylen, -EEXIST, "%s: the attachment named %s follows its interface, "
			    "renamed %s since (pktlens attach %s --force moves it to that name, pktlens "
			    "detach %s removes it)", ifname, ifname, a.old_now, a.old_now, ifname);
	/* --force would take its hooks off the moved interface and give its counters to this one */
	if (a.have_old && a.old_moved)
		return pl_why(a.why, a.whylen, -EEXIST, "%s: the attachment named %s follows its "
			    "interface, moved since: it is %s, where its hooks still run (pktlens "
			    "detach %s removes it, then %s can be attached)", ifname, ifname,
			    pl_moved_fmt(&a.old_where, nsbuf, sizeof(nsbuf)), ifname, ifname);
	if (a.have_old && !o->force && !o->reattach && a.old_off)
		return pl_why(a.why, a.whylen, -EEXIST, "%s: an earlier attachment whose programs no "
			    "longer run (something other than pktlens took them off %s) still holds "
			    "counters (pktlens detach %s drops them, --force attaches again and keeps "
			    "them)", ifname, ifname, ifname);
	if (a.have_old && !o->force && !o->reattach && a.old_gone)
		return pl_why(a.why, a.whylen, -EEXIST, "%s: an earlier attachment whose programs no "
			    "longer run (its interface was deleted) still holds counters (pktlens detach "
			    "%s drops them, --force carries them over to this one)", ifname, ifname);
	if (a.have_old && !o->force && !o->reattach)
		return pl_why(a.why, a.whylen, -EEXIST, "%s: already attached (pktlens detach %s, or --force to "
			    "re-attach)", ifname, ifname);
	/*
	 * Moved here with another namespace's attachment, whose tcx links hold
	 * their programs on it: a second attachment would count every packet
	 * twice (XDP: handle_foreign()). Only that one's detach frees it.
	 */
	if (pl_tc_moved_why(a.li.ifindex, nsbuf, sizeof(nsbuf)))
		return pl_why(a.why, a.whylen, -EBUSY, "%s: %s", ifname, nsbuf);
	if (a.have_old && pl_state_open(a.old_dir, &a.old) == 0)
		info->reattached = true;
	if (info->reattached)
		a.old_xdp_id = old_xdp_prog(&a);
	if (info->reattached && a.old.meta.xdp_mode != PL_XDP_NONE)
		a.old_prio_ok = pl_xdp_disp_runs((int)a.old.meta.ifindex, a.old.meta.xdp_prog_id,
						 &a.old_prio);
	/*
	 * pktlens's XDP program ran alone here, where libxdp's dispatcher could
	 * take it: the dispatcher refused it (5.10's verifier, native XDP at an
	 * MTU over a page, a tail call on 6.12). A re-attach keeps it alone
	 * and swaps the link's program in place (swap_hook()) unless
	 * --xdp-priority asks for the dispatcher: trying that took the old link
	 * down first (libxdp will not join beside a program attached alone), and
	 * when it refused again, what crossed until the new link was counted by
	 * neither hook.
	 */
	if (info->xdp_disp && !o->xdp_prio_set && old_xdp_alone(&a)) {
		info->xdp_disp = false;
		info->disp_note = "pktlens's XDP program ran alone here (a bpf_link): the re-attach "
				  "keeps it alone and replaces its program in place (--xdp-priority "
				  "tries libxdp's dispatcher)";
	}
	/* a re-attach keeps its place in the dispatcher unless told */
	info->xdp_prio = o->xdp_prio_set ? o->xdp_prio : PL_XDP_PRIO_DEFAULT;
	if (info->xdp_disp && !o->xdp_prio_set && info->reattached)
		pl_xdp_disp_runs((int)a.old.meta.ifindex, a.old.meta.xdp_prog_id, &info->xdp_prio);

	if (info->xdp_mode != PL_XDP_NONE) {
		err = handle_foreign(&a, a.old_xdp_id);
		if (err)
			goto out;
	}
	err = load_xdp(&a);
	if (!err && info->xdp_disp && info->xdp_mode == PL_XDP_NATIVE && !info->xdp_note)
		info->xdp_note = "libxdp's dispatcher runs pktlens without multi-buffer XDP "
				 "(native XDP takes frames that fit one page)";
	a.refilter = o->set_filter ? o->filter != NULL : info->reattached && a.old.meta.filter_set;
	if (!err && info->tc_hooks)
		err = open_tc(&a);
	if (!err)
		err = load_programs(&a);
	if (!err)
		err = fill_chains(&a);
	if (err)
		goto out;

	{
		char nsdir[512], name[PL_PIN_NAME_MAX];

		pl_pin_name(name, sizeof(name), a.li.ifname);	/* fits: pl_pin_dir() did above */
		snprintf(a.tmp, sizeof(a.tmp), "%s/%llu/" PL_PIN_TMP_PREFIX "%s:%d", PL_PIN_ROOT,
			 (unsigned long long)ns, name, (int)getpid());

		snprintf(nsdir, sizeof(nsdir), "%s/%llu", PL_PIN_ROOT, (unsigned long long)ns);
		if ((mkdir(nsdir, 0700) && errno != EEXIST) || mkdir(a.tmp, 0700)) {
			err = pl_why(a.why, a.whylen, -errno, "%s: cannot create %s: %s", ifname,
				     a.tmp, strerror(errno));
			goto out;
		}
	}
	a.tmp_made = true;
	err = pin_maps(&a);
	if (!err && o->tcp_passive && a.tcp_fresh)
		err = pl_tcp_pin_ns(a.xskel->obj, ns);
	if (err) {
		pl_why(a.why, a.whylen, err, "%s: cannot pin maps in %s: %s", ifname, a.tmp,
		       strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < sizeof(probe_sets) / sizeof(probe_sets[0]); i++) {
		char pwhy[PL_WHY_LEN];

		if (!(o->probes & probe_sets[i].bit))
			continue;
		/* a re-attach pins the old one's running probes (probes/probeset.h) */
		a.old_touched |= info->reattached && (a.old.meta.probes & probe_sets[i].bit);
		err = probe_sets[i].pin(ns, a.tmp,
					info->reattached && (a.old.meta.probes & probe_sets[i].bit) ?
					a.old_dir : NULL, pwhy, sizeof(pwhy));
		if (err) {
			pl_why(a.why, a.whylen, err, "%s: cannot attach the %s probes: %s", ifname,
			       probe_sets[i].name, pwhy);
			goto out;
		}
		m->probes |= probe_sets[i].bit;
	}

	/*
	 * The metadata, the filter and the rules before any hook runs the new
	 * programs: a program that went live first judged its first packets by
	 * no rule (a re-attach's swapped hook, a new attach's rules). The
	 * metadata is written again once the hooks are (clsact's handles).
	 */
	m->version = PL_META_VERSION;
	m->ifindex = a.li.ifindex;
	snprintf(m->ifname, sizeof(m->ifname), "%s", a.li.ifname);
	m->netns_ino = ns;
	m->netns_cookie = here.cookie;
	m->attach_time = (__u64)time(NULL);
	m->xdp_mode = info->xdp_mode;
	m->flows_max = o->flows_max;
	m->tc_hooks = info->tc_hooks;
	m->tc_mech = info->tc_mech;
	m->tcp_passive = o->tcp_passive;
	m->tcp_ts_max = o->tcp_passive ? (o->tcp_ts_max ? o->tcp_ts_max : PL_TCP_TS_DEFAULT) : 0;
	/* the namespace's map, which its first analysing attach sized: maybe not this one */
	info->tcp_ts_max = o->tcp_passive ? bpf_map__max_entries(a.xskel->maps.tcp_ts) : 0;
	snprintf(m->managed_by, sizeof(m->managed_by), "%s",
		 o->owner ? o->owner : info->reattached ? a.old.meta.managed_by : "");
	snprintf(m->managed_file, sizeof(m->managed_file), "%s",
		 o->owner ? (o->owner_file ? o->owner_file : "") :
		 info->reattached ? a.old.meta.managed_file : "");
	if ((err = write_meta(&a)))
		goto out;
	if (a.refilter && (err = refilter(&a, o->set_filter ? o->filter : a.old.meta.filter_expr)))
		goto out;
	if ((o->set_rules ? o->nrules || a.policy_reused : a.policy_reused) && (err = repolicy(&a)))
		goto out;
	if ((err = carry_flows(&a)))
		goto out;
	/*
	 * Each old hook takes the new program in place (swap_hook()), or goes
	 * just before the new one of its place attaches: no double counting.
	 */
	if (!swap_hook(&a, 0)) {
		if (info->reattached) {
			a.old_touched = true;
			detach_old_xdp(&a);
		}
		if (info->xdp_mode != PL_XDP_NONE && (err = attach_xdp(&a)))
			goto out;
	}
	for (int dir = 0; dir < 2; dir++) {
		if (swap_hook(&a, 1 + dir))
			continue;
		if (info->reattached) {
			a.old_touched |= (a.old.meta.tc_hooks & (1u << dir)) != 0;
			detach_old_tc(&a, dir);
		}
		if ((info->tc_hooks & (1u << dir)) && (err = attach_tc_dir(&a, dir)))
			goto out;
	}
	if (info->reattached)
		old_qdisc(&a);
	if (info->reattached && (err = carry_bases(&a)))
		goto out;
	info->kept_counters = info->reattached && !info->flows_dropped && !info->pkts_dropped;
	if ((err = write_meta(&a)))
		goto out;
	/*
	 * Over an old attachment in its place: swap the two directories in one
	 * step, so a kill leaves the old pins or the new ones in place, never
	 * neither (the counters of a re-attach live in both until the old go).
	 */
	if (a.have_old && !strcmp(a.old_dir, a.final)) {
		if (!renameat2(AT_FDCWD, a.tmp, AT_FDCWD, a.final, RENAME_EXCHANGE)) {
			a.tmp_made = false;
			pl_pin_dir_remove(a.tmp);	/* the old pins now; else a later pl_pins_gc() */
			err = 0;
			goto out;
		}
		/* only a kernel without RENAME_EXCHANGE goes on below: else undone */
		if (errno != EINVAL && errno != ENOSYS) {
			err = pl_why(a.why, a.whylen, -errno, "%s: cannot exchange %s and %s: %s",
				     ifname, a.tmp, a.final, strerror(errno));
			goto out;
		}
	}
	/* the links swapped in place (swap_hook()) are the new attachment's too: not detached */
	for (int i = 0; a.have_old && i < 3; i++) {
		char path[700];

		if (a.swapped[i] < 0 || (i && info->tc_mech == PL_TC_CLSACT))
			continue;
		snprintf(path, sizeof(path), "%s/%s", a.old_dir, i ? tc_link_pin[i - 1] : PL_PIN_XDP_LINK);
		unlink(path);
	}
	if (a.have_old && (err = pl_pin_dir_remove(a.old_dir))) {
		pl_why(a.why, a.whylen, err, "%s: cannot remove old pins in %s: %s", ifname, a.old_dir, strerror(-err));
		goto out;
	}
	if (rename(a.tmp, a.final)) {
		err = pl_why(a.why, a.whylen, -errno, "%s: cannot move pins into %s: %s", ifname,
			     a.final, strerror(errno));
		goto out;
	}
	a.tmp_made = false;
	err = 0;
out:
	if (err) {
		struct pl_link_info now;

		undo(&a);
		/* deleted under us: the kernel's errno for it (XDP: EINVAL) would name no cause */
		if (a.li.ifindex > 0 && pl_link_get(NULL, a.li.ifindex, &now) == -ENODEV)
			err = pl_why(a.why, a.whylen, -ENXIO, "%s: the interface was deleted during "
				     "the attach (%s): nothing attached", ifname, strerror(ENODEV));
	}
	/* over a --tcp-passive attachment without it: the namespace's TCP maps, if now unused */
	else if (a.have_old && a.old.meta.tcp_passive && !o->tcp_passive)
		pl_tcp_release_ns(ns);
	if (!err && (pl_gone_log(a.old.meta.netns_ino, &a.old.meta, a.carry.left, a.carry.nleft) ||
		     pl_gone_log(a.old.meta.netns_ino, &a.old.meta, a.carry.more, a.carry.nmore) ||
		     pl_gone_log(a.old.meta.netns_ino, &a.old.meta, a.carry.moved, a.carry.nmoved)))
		pl_warn("attach: %s: some flows' last counts were not kept for the IPFIX exporter",
			ifname);
	free(a.carry.fl);
	free(a.carry.left);
	free(a.carry.more);
	free(a.carry.moved);
	for (int i = 0; i < 3; i++) {
		if (a.link_fd[i] >= 0)
			close(a.link_fd[i]);
		if (a.swapped[i] >= 0)
			close(a.swapped[i]);
	}
	pktlens_tc__destroy(a.tskel_out);
	pktlens_tc__destroy(a.tskel);
	pktlens_xdp__destroy(a.xmain);
	pktlens_xdp__destroy(a.xentry);
	pktlens_xdp__destroy(a.xskel);
	/*
	 * A re-attach that failed once the old hooks (or probes) were down: the
	 * old one, as it was, again over its maps (counters, flows, rules kept),
	 * not left with nothing running.
	 */
	if (err && a.old_touched && !a.old_gone && !strcmp(a.old_dir, a.final) && err != -ENXIO)
		restore_old(&a.old.meta, a.old_prio_ok, a.old_prio, why, whylen);
	pl_state_close(&a.old);
	return err;
}

/* disp_detach(): pl_xdp_disp_leave() in the namespace the interface moved to */
struct leave_job {
	const struct pl_xdp_where *w;
	__u32 id;
	char *why;
	size_t whylen;
};

static int leave_there(void *arg)
{
	struct leave_job *j = arg;

	return pl_xdp_disp_leave(j->w->ifindex, j->w->ifname, j->id, j->why, j->whylen);
}

/*
 * pl_detach(): @att's XDP program out of libxdp's dispatcher, wherever that
 * runs, as a bpf_link's detach does: here, or in the namespace its
 * interface moved to (entered for it); on no interface (deleted: libxdp's
 * pins alone keep the program), those pins are removed, as libxdp's
 * clean-up would, so that the program is freed.
 */
static int disp_detach(const struct pl_attachment *att, char *why, size_t whylen)
{
	const struct pl_meta *m = &att->meta;
	struct pl_netns here = { 0, 0 };
	struct pl_xdp_where w;
	struct leave_job j = { .w = &w, .id = m->xdp_prog_id, .why = why, .whylen = whylen };
	char ns[300];
	int where, err;

	pl_netns_here(&here);
	if (!att->ns_gone && pl_attachment_of(att, &here) &&
	    pl_xdp_disp_runs((int)m->ifindex, m->xdp_prog_id, NULL))
		return pl_xdp_disp_leave((int)m->ifindex, att->ifname, m->xdp_prog_id, why, whylen);
	where = pl_xdp_disp_where(m->xdp_prog_id, &w);
	if (where == 1 && w.netns == here.ino)
		return leave_there(&j);
	if (where == 1) {
		if (whylen)
			why[0] = '\0';
		err = pl_netns_run(w.netns, 0, leave_there, &j);
		if (err && !why[0])	/* the namespace, not libxdp, failed */
			pl_why(why, whylen, err, "%s: cannot enter network namespace %s, where its "
			       "XDP program runs in libxdp's dispatcher on %s: %s", att->ifname,
			       pl_netns_fmt(w.netns, 0, true, ns, sizeof(ns)), w.ifname,
			       strerror(-err));
		return err;
	}
	if (!where)
		return pl_xdp_disp_drop(m->xdp_prog_id, att->ifname, why, whylen);
	/* no dispatcher's pins hold it (not libxdp's, or unreadable): as before */
	if (!att->ns_gone && !pl_attachment_of(att, &here))
		return pl_why(why, whylen, -EXDEV, "%s: its XDP program runs in libxdp's dispatcher "
			      "in network namespace %llu: run pktlens -n NETNS detach %s", att->ifname,
			      (unsigned long long)att->netns, att->ifname);
	return 0;
}

int pl_detach(const struct pl_attachment *att, char *why, size_t whylen)
{
	const struct pl_meta *m = &att->meta;
	struct pl_netns here = { 0, 0 };
	struct pl_state st;
	bool opened;
	int err;

	/*
	 * clsact filters are not pinned: remove them over netlink, in their
	 * namespace; a deleted namespace's went with it.
	 */
	if (att->meta_ok && m->tc_mech == PL_TC_CLSACT && !att->ns_gone) {
		pl_netns_here(&here);
		if (here.ino != att->netns) {
			return pl_why(why, whylen, -EXDEV, "%s: its clsact filters live in network "
				      "namespace %llu: run pktlens -n NETNS detach %s", att->ifname,
				      (unsigned long long)att->netns, att->ifname);
		}
		/* only our filters: the ifindex may be another interface's by now */
		bool found = false;

		for (int dir = 0; dir < 2 && pl_attachment_of(att, &here); dir++)
			if (pl_meta_tc_live(m, dir)) {
				clsact_detach_filter(m->ifindex, dir, m->tc_handle[dir], m->tc_prio[dir]);
				found = true;
			}
		if (m->tc_qdisc_created && found)
			clsact_release_qdisc(m->ifindex);
	}
	/* in libxdp's dispatcher: our program leaves it, the others stay */
	if (att->meta_ok && m->xdp_mode != PL_XDP_NONE && pl_xdp_prog_ext(m->xdp_prog_id)) {
		err = disp_detach(att, why, whylen);
		if (err)
			return err;
	}
	/*
	 * The flows leave with the maps: their last counts go to the log the
	 * IPFIX exporter reads (loader/gone.c), read once the pins are gone
	 * (the hooks with them), from the maps held open meanwhile. A deleted
	 * namespace's were set aside by the exporter already.
	 */
	opened = !att->ns_gone && pl_state_open(att->dir, &st) == 0;
	err = pl_pin_dir_remove(att->dir);
	if (opened) {
		struct pl_flow *fl = NULL;
		size_t nf = 0;

		if (!err && (pl_state_flows(&st, &fl, &nf) ||
			     pl_gone_log(att->netns, &st.meta, fl, nf)))
			pl_warn("detach: %s: some flows' last counts were not kept for the IPFIX "
				"exporter", att->ifname);
		free(fl);
		pl_state_close(&st);
	}
	/* a deleted namespace's too (detach --stale): no live attachment there uses them */
	if (!err && att->meta_ok && att->meta.tcp_passive)
		pl_tcp_release_ns(att->netns);
	return err ? pl_why(why, whylen, err, "%s: cannot remove %s: %s", att->ifname, att->dir,
			    strerror(-err)) : 0;
}
