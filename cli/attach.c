// SPDX-License-Identifier: GPL-2.0
/* pktlens attach | detach */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <pktlens/why.h>

#include "cli.h"
#include "common.h"
#include "print.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../probes/tcp.h"
#include "../loader/xdp_multi.h"

struct attach_cfg {
	int xdp_mode, tc_hooks, tc_mech, force, probes, tcp_passive;
	uint32_t flows_max, tcp_ts_max;
	uint64_t xdp_prio;	/* XDP_PRIO_UNSET when not given */
};

#define XDP_PRIO_UNSET UINT64_MAX

static int do_attach(void *cfg, int argc, char **argv)
{
	const struct attach_cfg *c = cfg;
	struct pl_attach_opts o = { .ifname = argv[0], .xdp_mode = c->xdp_mode, .tc_hooks = c->tc_hooks,
				    .tc_mech = c->tc_mech, .flows_max = c->flows_max, .force = c->force,
				    .probes = (unsigned)c->probes,
				    .xdp_prio_set = c->xdp_prio != XDP_PRIO_UNSET,
				    .xdp_prio = (uint32_t)c->xdp_prio,
				    .tcp_passive = c->tcp_passive, .tcp_ts_max = c->tcp_ts_max };
	struct pl_attach_info info;
	/* a refused filter or rule says why and the way out (pl_xdp_no_tail_why()), then the restore */
	char why[PL_WHY_LEN * 8], hooks[128];
	int err;

	(void)argc;
	if ((err = pl_need_caps("attach", PL_NEED_BPF | PL_NEED_NET_ADMIN | PL_NEED_PERFMON)) ||
	    (err = pl_lock_changes("attach")))
		return err;

	err = pl_attach(&o, &info, why, sizeof(why));
	if (err) {
		pl_err("attach: %s", why);
		return PL_EXIT_CODE(err, ENODEV, ENETDOWN, EINVAL, ERANGE, ENOENT);
	}
	if (pl_g.json) {
		struct jw w;

		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_name_field(&w, "ifname", info.ifname);
		jw_u64_field(&w, "ifindex", info.ifindex);
		jw_key(&w, "hooks");
		pl_json_hooks(&w, &info.meta);
		jw_str_field(&w, "xdp_mode", pl_xdp_mode_name(info.xdp_mode));
		jw_str_field(&w, "tc_mech", pl_tc_mech_name(info.tc_mech));
		jw_str_field(&w, "reason", info.reason);
		jw_str_field(&w, "note", info.tc_note);
		jw_str_field(&w, "xdp_note", info.xdp_note);
		jw_str_field(&w, "xdp_attach", !info.xdp_mode ? NULL : info.xdp_disp ?
			     "libxdp-dispatcher" : "bpf_link");
		if (info.xdp_disp)
			jw_u64_field(&w, "xdp_priority", info.xdp_prio);
		else
			jw_key(&w, "xdp_priority"), jw_null(&w);
		jw_str_field(&w, "dispatcher_note", info.disp_note);
		jw_u64_field(&w, "flows_max", o.flows_max);
		jw_bool_field(&w, "tcp_passive", o.tcp_passive);
		if (o.tcp_passive)
			jw_u64_field(&w, "tcp_ts_max", info.tcp_ts_max);
		else
			jw_key(&w, "tcp_ts_max"), jw_null(&w);
		jw_bool_field(&w, "replaced_foreign", info.replaced_foreign);
		jw_bool_field(&w, "reattached", info.reattached);
		jw_bool_field(&w, "kept_counters", info.kept_counters);
		jw_u64_field(&w, "flows_dropped", info.flows_dropped);
		jw_u64_field(&w, "packets_dropped", info.pkts_dropped);
		jw_u64_field(&w, "rules_kept", info.rules_kept);
		jw_u64_field(&w, "rules_dropped", info.rules_dropped);
		jw_obj_close(&w);
		jw_end(&w);
		return PL_EXIT_OK;
	}
	pl_fmt_hooks(&info.meta, hooks, sizeof(hooks));
	printf("attached %s (ifindex %d): %s; %s; flow table %u\n", PL_NAME(info.ifname),
	       info.ifindex, hooks, info.reason, o.flows_max);
	if (o.tcp_passive)
		printf("passive TCP analysis on: handshake and timestamp RTT, retransmissions, "
		       "reordering (outstanding timestamps: %u)\n", info.tcp_ts_max);
	if (o.tcp_passive && info.xdp_mode == PL_XDP_NONE && !(info.tc_hooks & PL_TC_IN))
		printf("note: no ingress hook: --tcp-passive analyses only what this host sends "
		       "out of %s; arriving and forwarded segments are analysed at ingress hooks\n",
		       PL_NAME(info.ifname));
	if (o.tcp_passive && info.xdp_mode == PL_XDP_SKB && !(info.tc_hooks & PL_TC_IN))
		printf("note: XDP in skb mode sees a GSO or GRO skb as one frame: --tcp-passive counts "
		       "it as one segment there (add --tc in: tc ingress counts its segments)\n");
	if (o.tcp_passive && info.tcp_ts_max != info.meta.tcp_ts_max)
		printf("note: the namespace's outstanding-timestamp map is shared and was sized by its "
		       "first analysing attach: %u, not --tcp-ts-max %u (detach every --tcp-passive "
		       "attachment of the namespace to size it again)\n", info.tcp_ts_max,
		       info.meta.tcp_ts_max);
	if (info.tc_note)
		printf("note: %s\n", info.tc_note);
	if (info.xdp_note)
		printf("note: %s\n", info.xdp_note);
	if (info.disp_note)
		printf("note: %s\n", info.disp_note);
	if (info.xdp_disp)
		printf("XDP runs in libxdp's dispatcher at priority %u (pktlens list shows the "
		       "programs beside it)\n", info.xdp_prio);
	if (info.replaced_foreign)
		printf("replaced the foreign XDP program that was attached to %s (--force)\n",
		       PL_NAME(info.ifname));
	if (info.reattached && info.flows_dropped)
		printf("re-attached over the previous pktlens attachment; counters kept, but %llu "
		       "flows did not fit the new table: %llu packets counted as not recorded in "
		       "flows\n", (unsigned long long)info.flows_dropped,
		       (unsigned long long)info.pkts_dropped);
	else if (info.reattached && info.pkts_dropped)
		printf("re-attached over the previous pktlens attachment; counters kept, but %llu "
		       "packets the old hooks counted while they were switched are counted as not "
		       "recorded in flows\n", (unsigned long long)info.pkts_dropped);
	else if (info.reattached)
		printf("re-attached over the previous pktlens attachment; counters kept\n");
	if (info.rules_kept || info.rules_dropped)
		printf("policy: %zu rule%s packets again", info.rules_kept,
		       info.rules_kept == 1 ? " judges" : "s judge");
	if (info.rules_dropped)
		printf("; %zu rule%s dropped: their direction has no hook now", info.rules_dropped,
		       info.rules_dropped == 1 ? "" : "s");
	if (info.rules_kept || info.rules_dropped)
		printf("\n");
	return PL_EXIT_OK;
}

/*
 * Enter the namespace with inode @ino if a name in /run/netns or a process
 * holds it. 0 when entered, -ENOENT when none does: it was deleted.
 */
static int enter_netns_ino(uint64_t ino)
{
	int fd = pl_netns_open(ino, 0), err;

	if (fd < 0)
		return fd;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

/*
 * `detach --netns NETNS DEV`: that one attachment, in any namespace. One
 * with clsact filters is detached from inside its namespace; when that
 * namespace is gone, so are its filters, and only the pins are left.
 */
static int select_in_netns(const char *ns, const char *dev, struct pl_attachment **a, size_t *n)
{
	struct pl_attachment *hit = NULL;
	struct pl_netns here;
	int err = pl_attachments(0, a, n);

	if (err) {
		pl_err("detach: cannot read %s: %s", PL_PIN_ROOT, strerror(-err));
		return PL_EXIT_FAIL;
	}
	for (size_t i = 0; i < *n && !hit; i++)
		if (!strcmp((*a)[i].ns, ns) && !strcmp((*a)[i].ifname, dev))
			hit = &(*a)[i];
	if (!hit) {
		pl_err("detach: --netns %s %s: no such attachment (see pktlens list)", ns, dev);
		return PL_EXIT_USAGE;
	}
	(*a)[0] = *hit;
	*n = 1;
	hit = &(*a)[0];
	if (hit->ns_gone || !hit->meta_ok || hit->meta.tc_mech != PL_TC_CLSACT)
		return PL_EXIT_OK;
	err = pl_netns_here(&here);
	if (!err && here.ino != hit->netns && !enter_netns_ino(hit->netns))
		err = pl_netns_here(&here);
	if (err) {
		pl_err("detach: --netns %s: %s", ns, strerror(-err));
		return PL_EXIT_FAIL;
	}
	if (here.ino != hit->netns || !pl_attachment_of(hit, &here))
		hit->ns_gone = true;	/* deleted: its filters went with it */
	return PL_EXIT_OK;
}

/*
 * Attachments in any namespace whose XDP or tcx link lost its interface,
 * whose namespace is gone, (clsact, no link) whose programs are gone, or
 * (libxdp's dispatcher, no link) whose dispatcher runs nowhere, its interface
 * deleted.
 */
static int select_stale(struct pl_attachment **a, size_t *n)
{
	size_t i, j;
	int err = pl_attachments(0, a, n);

	if (err) {
		pl_err("detach: cannot read %s: %s", PL_PIN_ROOT, strerror(-err));
		return PL_EXIT_FAIL;
	}
	for (i = 0, j = 0; i < *n; i++) {
		__u32 ifindex = 1;

		/* its filters went with their interface (not with a clsact qdisc deleted: list's
		 * program-gone, which detach DEV removes) */
		if (pl_attachment_progs_gone(&(*a)[i]) && !pl_iface_still_here(&(*a)[i]))
			(*a)[i].ns_gone = true;
		/* in libxdp's dispatcher (no link), its interface deleted: libxdp's pins keep it */
		if ((*a)[i].ns_gone || pl_disp_stale(&(*a)[i]) ||
		    ((*a)[i].meta_ok && !pl_attachment_link_ifindex(&(*a)[i], &ifindex) && !ifindex &&
		     !pl_iface_still_here(&(*a)[i])))
			(*a)[j++] = (*a)[i];
	}
	*n = j;
	return PL_EXIT_OK;
}

struct detach_cfg {
	int all, stale;
	const char *netns;
};

static int do_detach(void *cfg, int argc, char **argv)
{
	const struct detach_cfg *c = cfg;
	struct pl_attachment *a = NULL;
	const char *netns = c->netns;
	bool all = c->all, stale = c->stale;
	size_t n = 0;
	int rc, ret = PL_EXIT_OK;

	if (all + stale + argc != 1 || (netns && (all || stale))) {
		pl_err("detach: give one DEV, --all, --stale or --netns NETNS DEV (see pktlens "
		       "detach --help)");
		return PL_EXIT_USAGE;
	}
	/* a standard output closed before we start: the final totals would have nowhere to go */
	rc = pl_stdout_for_totals();
	if (rc) {
		pl_err("detach: cannot write to standard output: %s: nothing detached (the final "
		       "totals would be lost)", strerror(-rc));
		return PL_EXIT_FAIL;
	}
	/* --netns NETNS DEV: DEV is as list shows it, another namespace's: no altname of this one */
	if (argc && !netns && (rc = pl_dev_arg("detach", &argv[0])))
		return rc;
	rc = pl_need_caps("detach", PL_NEED_BPF | PL_NEED_NET_ADMIN);
	if (!rc)
		rc = pl_lock_changes("detach");
	if (rc)
		return rc;
	pl_pins_gc();	/* what an attach killed half-way left */
	pl_gone_gc();	/* and the log of removed flows a killed exporter left */
	rc = stale ? select_stale(&a, &n) : netns ? select_in_netns(netns, argv[0], &a, &n) :
	     pl_select("detach", all ? NULL : argv[0], &a, &n);
	if (rc) {
		free(a);	/* a selector that refused still holds what it read */
		return rc;
	}

	pl_print_start();
	pl_print_obj_open(NULL);
	pl_print_arr_open("detached");
	for (size_t i = 0; i < n; i++) {
		struct pl_stats s[PL_SLOT_MAX] = {};
		struct pl_state st;
		char why[PL_WHY_LEN];
		bool have = false, opened;

		/*
		 * The maps held open across the detach: the final totals are read
		 * once the hooks are off, so a packet counted while they came off is
		 * in them; the maps go when these last references close.
		 */
		rc = pl_state_open(a[i].dir, &st);
		opened = rc == 0;
		if (opened)	/* the reading before the hooks come off, where the last fails */
			rc = pl_state_stats(&st, s);
		/* counters that are there but cannot be read now are never detached away */
		if (pl_starved(rc)) {
			if (opened)
				pl_state_close(&st);
			pl_err("detach: %s: cannot read its counters: %s: not detached (the final "
			       "totals would be lost)", a[i].ifname, strerror(-rc));
			ret = PL_EXIT_FAIL;
			continue;
		}
		if (pl_detach(&a[i], why, sizeof(why))) {
			if (opened)
				pl_state_close(&st);
			pl_err("detach: %s", why);
			ret = PL_EXIT_FAIL;
			continue;
		}
		if (opened) {
			struct pl_stats after[PL_SLOT_MAX];

			have = !rc;
			if (pl_state_stats(&st, after) == 0) {
				memcpy(s, after, sizeof(after));
				have = true;
			}
			pl_state_close(&st);
		}
		pl_print_obj_open(NULL);
		pl_print_name("ifname", "detached %s", a[i].ifname);
		pl_print_arr_open("totals");
		for (int sl = 0, shown = 0; have && sl < PL_SLOT_MAX; sl++) {
			__u64 pk, by;

			pl_stats_totals(&s[sl], &pk, &by);
			if (!pk && !pl_slot_attached(&a[i].meta, sl))
				continue;
			pl_print_text("%s", shown++ ? ";" : ": final totals:");
			pl_print_obj_open(NULL);
			pl_print_str("hook", " %s", pl_slot_hook[sl]);
			pl_print_str("dir", " %s", pl_slot_dir[sl]);
			pl_print_u64("packets", " %llu packets,", pk);
			pl_print_u64("bytes", " %llu bytes", by);
			pl_print_obj_close();
		}
		pl_print_arr_close();
		pl_print_obj_close();
		pl_print_text("\n");
		/* the counters are gone with the pins: what stdout did not take goes to stderr */
		if (have && pl_stdout_flush()) {
			char totals[512];

			pl_fmt_totals(&a[i].meta, s, totals, sizeof(totals));
			fprintf(stderr, "pktlens: detach: detached %s: final totals: %s (standard output "
				"did not take them)\n", a[i].ifname, totals[0] ? totals : "none");
			ret = PL_EXIT_FAIL;
		}
	}
	pl_print_arr_close();
	pl_print_obj_close();
	pl_print_end();
	free(a);
	return ret;
}

static const struct pl_choice xdp_modes[] = {
	{ "native", PL_XDP_NATIVE, false }, { "skb", PL_XDP_SKB, false }, { "generic", PL_XDP_SKB, true },
	{ "none", PL_XDP_NONE, false }, { NULL },
};
static const struct pl_choice tc_hooks[] = {
	{ "in,out", PL_TC_IN | PL_TC_OUT, false }, { "out,in", PL_TC_IN | PL_TC_OUT, true },
	{ "in", PL_TC_IN, false }, { "out", PL_TC_OUT, false }, { "none", 0, false }, { NULL },
};
static const struct pl_choice tc_mechs[] = {
	{ "tcx", PL_TC_TCX, false }, { "clsact", PL_TC_CLSACT, false }, { NULL },
};
static const struct pl_choice probe_sets[] = {
	{ "tcp", PL_PROBE_TCP, false }, { "drops", PL_PROBE_DROPS, false },
	{ "tcp,drops", PL_PROBE_TCP | PL_PROBE_DROPS, false },
	{ "drops,tcp", PL_PROBE_TCP | PL_PROBE_DROPS, true }, { "none", 0, false }, { NULL },
};

static const struct pl_opt attach_opts[] = {
	{ .name = "xdp", .type = PL_OPT_CHOICE, PL_FIELD(struct attach_cfg, xdp_mode),
	  .choices = xdp_modes, .arg = "MODE",
	  .help = "XDP ingress: native (in the driver), skb (generic) or none" },
	{ .name = "tc", .type = PL_OPT_CHOICE, PL_FIELD(struct attach_cfg, tc_hooks),
	  .choices = tc_hooks, .arg = "HOOKS", .bad = " is wrong: expected in, out, in,out or none",
	  .help = "tc hooks: in, out, in,out or none" },
	{ .name = "tc-mech", .type = PL_OPT_CHOICE, PL_FIELD(struct attach_cfg, tc_mech),
	  .choices = tc_mechs, .arg = "M",
	  .help = "tcx links (default, Linux 6.6+; clsact is used when the kernel lacks tcx) or "
		  "clsact (qdisc + cls_bpf filter over netlink)" },
	{ .name = "flows", .type = PL_OPT_UINT, PL_FIELD(struct attach_cfg, flows_max),
	  .min = PL_FLOWS_MIN, .max = PL_FLOWS_MAX, .arg = "N",
	  .help = "flow table capacity (default {default}, {min}..{max})" },
	{ .name = "xdp-priority", .type = PL_OPT_UINT, PL_FIELD(struct attach_cfg, xdp_prio),
	  .min = 0, .max = PL_XDP_PRIO_MAX, .arg = "N",
	  .help = "run priority in libxdp's dispatcher, where XDP shares the interface with other "
		  "XDP programs (lower runs first; default " PL_STR(PL_XDP_PRIO_DEFAULT_N) ", a "
		  "re-attach keeps its own; {min}..{max})" },
	{ .name = "probes", .type = PL_OPT_CHOICE, PL_FIELD(struct attach_cfg, probes),
	  .choices = probe_sets, .arg = "SET",
	  .help = "keep tracepoints attached (pinned beside the maps; detach removes them): tcp, "
		  "the TCP ones: flows shows retransmits per flow, export prometheus the RTT and "
		  "connect latency; drops, the kernel drop ones (counting this namespace's drops): "
		  "stats shows the interface's drop reasons, flows drops per flow, export "
		  "prometheus pktlens_kernel_drops_total; tcp,drops both, or none" },
	{ .name = "tcp-passive", .type = PL_OPT_FLAG, PL_FIELD(struct attach_cfg, tcp_passive),
	  .val = 1,
	  .help = "measure TCP from the packets, forwarded ones too: handshake and timestamp RTT, "
		  "retransmissions, reordering, zero windows, RSTs per connection (flows, stats, "
		  "top, export); connections are matched across the namespace's analysing "
		  "interfaces" },
	{ .name = "tcp-ts-max", .type = PL_OPT_UINT, PL_FIELD(struct attach_cfg, tcp_ts_max),
	  .min = PL_TCP_TS_MIN, .max = PL_TCP_TS_MAX, .arg = "N", .needs = "tcp-passive",
	  .help = "--tcp-passive: TSvals waiting for their echo, for the whole namespace (default "
		  "{default}, {min}..{max}; the first analysing attach of the namespace sets it; "
		  "when full, RTT samples are missed and counted)" },
	{ .name = "force", .type = PL_OPT_FLAG, PL_FIELD(struct attach_cfg, force), .val = 1,
	  .help = "re-attach over an existing pktlens attachment (counters are kept), replace a "
		  "foreign XDP program, or attach to a down interface" },
	{ NULL },
};

static const struct attach_cfg attach_defaults = {
	.xdp_mode = -1, .tc_hooks = -1, .tc_mech = -1, .flows_max = PL_FLOWS_DEFAULT,
	.xdp_prio = XDP_PRIO_UNSET, .tcp_ts_max = PL_TCP_TS_DEFAULT,
};

const struct pl_cmd pl_cmd_attach = {
	.name = "attach", .args = "DEV", .opts = attach_opts, .fn = do_attach,
	.defaults = &attach_defaults, .cfg_size = sizeof(struct attach_cfg),
	.min_args = 1, .max_args = 1,
	.few = "which device? DEV is missing (see pktlens attach --help)",
	.many = "one DEV only; see pktlens attach --help",
	.about = "Load the pktlens programs on DEV and pin their maps and links under\n"
		 PL_PIN_ROOT "/<netns>/DEV so counters survive this command.\n"
		 "Default hooks: native XDP ingress + tc egress on physical devices; tc\n"
		 "ingress + egress on virtual devices such as veth.\n",
};

static const struct pl_opt detach_opts[] = {
	{ .name = "all", .syn = "", .type = PL_OPT_FLAG, PL_FIELD(struct detach_cfg, all), .val = 1,
	  .help = "every attachment in this network namespace" },
	{ .name = "stale", .syn = "", .type = PL_OPT_FLAG, PL_FIELD(struct detach_cfg, stale), .val = 1,
	  .help = "every attachment, in any namespace, whose interface or namespace is gone" },
	{ .name = "netns", .syn = "", .type = PL_OPT_STRING, PL_FIELD(struct detach_cfg, netns), .arg = "NETNS",
	  .help = "DEV's attachment in namespace NETNS as `pktlens list` shows it (INODE, or "
		  "INODE:ID for a deleted namespace's)" },
	{ NULL },
};

const struct pl_cmd pl_cmd_detach = {
	.name = "detach", .args = "DEV | --all | --stale | --netns NETNS DEV", .opts = detach_opts, .fn = do_detach,
	.cfg_size = sizeof(struct detach_cfg), .min_args = 0, .max_args = 1, .flags = PL_CMD_DEV_OWN,
	.many = "give one DEV, --all, --stale or --netns NETNS DEV; see pktlens detach --help",
	.about = "Print DEV's final totals, then remove its programs and pins.\n",
};
