// SPDX-License-Identifier: GPL-2.0
/* pktlens list */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../loader/xdp_multi.h"

/* Is the namespace with @a's inode now another one (its own deleted, the inode reused)? */
static bool netns_reused(const struct pl_attachment *a)
{
	struct pl_netns_id any, its;

	if (!pl_att_cookie(a))
		return false;
	pl_netns_identify(a->netns, 0, true, &any);
	if (!any.name[0] && !any.pid)
		return false;	/* not found: it may live on unnamed, held by a mount or a file */
	pl_netns_identify(a->netns, pl_att_cookie(a), true, &its);
	return !its.name[0] && !its.pid;
}

/* In @arg's namespace: 2 a hook of it runs, 1 none does but its interface is there, 0 neither */
static int hooks_here(void *arg)
{
	const struct pl_attachment *a = arg;

	return pl_meta_live(&a->meta) ? 2 : pl_iface_in_this_netns(arg);
}

/*
 * An attachment of another namespace whose links (if any) hold a device, looked at from
 * inside that namespace; one nothing lets us enter (held by a bind mount elsewhere, an
 * open file): by whether the kernel still has its programs, which a deleted clsact
 * qdisc frees only after a grace period
 */
static const char *other_netns_state(const struct pl_attachment *a)
{
	switch (pl_netns_run(a->netns, pl_att_cookie(a), hooks_here, (void *)a)) {
	case 2:
		return "other-netns";
	case 1:
		return pl_moved_away(a) ? "interface-moved" : "program-gone";
	case 0:
		return pl_moved_away(a) ? "interface-moved" : "interface-gone";
	}
	return pl_attachment_progs_gone(a) ? "program-gone" : "other-netns";
}

/*
 * Of an attachment whose interface is here: attached (all its hooks run),
 * program-gone (none does), partial (not running: HOOKS) (some do; another
 * tool took the others off); interface-moved when none runs here but all
 * went along with the interface to another namespace.
 */
static const char *hooks_state(const struct pl_meta *m, const struct pl_attachment *a)
{
	static const char head[] = "partial (not running:";
	static char partial[80];
	unsigned int want = 0, run = 0;
	size_t len;

	for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
		if (!pl_slot_attached(m, sl))
			continue;
		want |= 1u << sl;
		if (pl_meta_slot_live(m, sl))
			run |= 1u << sl;
	}
	if (!run)
		return pl_moved_away(a) ? "interface-moved" : "program-gone";
	if (run == want)
		return "attached";
	len = (size_t)snprintf(partial, sizeof(partial), "%s", head);
	for (int sl = 0; sl < PL_SLOT_MAX; sl++)
		if ((want & ~run) & (1u << sl))
			len += (size_t)snprintf(partial + len, sizeof(partial) - len, "%s %s %s",
						len > sizeof(head) - 1 ? "," : "", pl_slot_hook[sl],
						pl_slot_dir[sl]);
	snprintf(partial + len, sizeof(partial) - len, ")");
	return partial;
}

/*
 * attached, interface-gone, interface-moved (to another namespace, its
 * programs still running there), interface-renamed (now NAME),
 * program-gone, netns-gone, other-netns, broken
 */
static const char *attach_state(const struct pl_attachment *a, const struct pl_netns *here)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct pl_link_info li;
	__u32 ifindex = 0;
	int err, lerr;

	if (!a->meta_ok)
		return "broken";
	if (a->ns_gone || (a->netns == here->ino && !pl_attachment_of(a, here)) ||
	    (a->netns != here->ino && netns_reused(a)))
		return "netns-gone";
	err = pl_attachment_link_ifindex(a, &ifindex);
	if (err && err != -ENOENT)
		return "unknown";
	if (!err && !ifindex)
		return pl_iface_still_here(a) ? "program-gone" : "interface-gone";
	if (a->netns != here->ino)
		return other_netns_state(a);
	lerr = pl_link_get(NULL, a->meta.ifindex, &li);
	/* its XDP link still holds a device this namespace has not: the interface moved away */
	if (!err && lerr == -ENODEV)
		return "interface-moved";
	/* the interface with that index must be the one attached, not a newer one */
	if (lerr ||
	    (!pl_meta_live(&a->meta) && strcmp(li.ifname, a->ifname)))
		/* no link: libxdp's dispatcher, wherever it runs, says where it went */
		return pl_moved_away(a) ? "interface-moved" : "interface-gone";
	if (strcmp(li.ifname, a->ifname)) {
		static char renamed[64];

		snprintf(renamed, sizeof(renamed), "interface-renamed (now %s)", PL_NAME(li.ifname));
		return renamed;
	}
	if (a->meta.xdp_mode != PL_XDP_NONE && bpf_xdp_query(a->meta.ifindex, 0, &q))
		return "unknown";
	return hooks_state(&a->meta, a);
}

static int do_list(void *cfg, int argc, char **argv)
{
	struct pl_attachment *a = NULL;
	struct pl_netns here = { 0, 0 };
	struct pl_xdp_disp d;
	size_t n = 0;
	int nsw = 24, hw = 30;	/* the NETNS and HOOKS columns, at least */
	struct jw w;
	int err;

	(void)cfg, (void)argc, (void)argv;
	if ((err = pl_need_caps("list", PL_NEED_BPF)))
		return err;
	pl_netns_here(&here);
	err = pl_attachments(0, &a, &n);
	if (err) {
		pl_err("list: cannot read %s: %s%s", PL_PIN_ROOT, strerror(-err), pl_pins_hint(err));
		return PL_EXIT_FAIL;
	}
	if (pl_g.json) {
		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_key(&w, "attachments");
		jw_arr_open(&w);
		for (size_t i = 0; i < n; i++) {
			jw_obj_open(&w);
			jw_name_field(&w, "ifname", a[i].ifname);
			pl_json_att_netns(&w, &a[i]);
			jw_bool_field(&w, "this_netns", pl_attachment_of(&a[i], &here));
			jw_str_field(&w, "state", attach_state(&a[i], &here));
			jw_str_field(&w, "pins", a[i].dir);
			if (a[i].meta_ok) {
				jw_u64_field(&w, "ifindex", a[i].meta.ifindex);
				jw_key(&w, "hooks");
				pl_json_hooks(&w, &a[i].meta);
				jw_u64_field(&w, "flows_max", a[i].meta.flows_max);
				jw_u64_field(&w, "attach_time", a[i].meta.attach_time);
				jw_str_field(&w, "managed_by", a[i].meta.managed_by[0] ?
					     a[i].meta.managed_by : NULL);
				jw_key(&w, "probes");
				jw_arr_open(&w);
				if (a[i].meta.probes & PL_PROBE_TCP)
					jw_str(&w, "tcp");
				if (a[i].meta.probes & PL_PROBE_DROPS)
					jw_str(&w, "drops");
				jw_arr_close(&w);
				jw_key(&w, "xdp_dispatcher");
				if (pl_attachment_of(&a[i], &here) && pl_meta_xdp_disp(&a[i].meta, &d))
					pl_json_xdp_disp(&w, &d, a[i].meta.xdp_prog_id);
				else
					jw_null(&w);
				pl_sampler_summary(&w, false, "list", &a[i]);
			}
			jw_obj_close(&w);
		}
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
		free(a);
		return PL_EXIT_OK;
	}
	if (!n) {
		printf("no interfaces attached (pktlens attach DEV)\n");
		free(a);
		return PL_EXIT_OK;
	}
	/* columns as wide as their widest value: a namespace's name has no bound */
	for (size_t i = 0; i < n; i++) {
		char hooks[128] = "-", ns[300];
		int len = (int)strlen(pl_fmt_att_netns(&a[i], true, ns, sizeof(ns)));

		nsw = len > nsw ? len : nsw;
		if (a[i].meta_ok) {
			pl_fmt_hooks(&a[i].meta, hooks, sizeof(hooks));
			len = (int)strlen(hooks);
			hw = len > hw ? len : hw;
		}
	}
	printf("%-*s %-16s %7s %-*s %9s  %-19s %s\n", nsw, "NETNS", "IFACE", "IFINDEX", hw, "HOOKS",
	       "FLOWS", "ATTACHED", "STATE");
	for (size_t i = 0; i < n; i++) {
		char when[32] = "-", hooks[128] = "-", ns[300];

		if (a[i].meta_ok) {
			time_t t = (time_t)a[i].meta.attach_time;
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
			pl_fmt_hooks(&a[i].meta, hooks, sizeof(hooks));
		}
		printf("%-*s %-16s %7u %-*s %9u  %-19s %s%s%s%s\n",
		       nsw, pl_fmt_att_netns(&a[i], true, ns, sizeof(ns)), PL_NAME(a[i].ifname),
		       a[i].meta.ifindex, hw, hooks, a[i].meta.flows_max, when,
		       attach_state(&a[i], &here), pl_attachment_of(&a[i], &here) ? " (this netns)" : "",
		       a[i].meta.managed_by[0] ? ", managed by " : "", PL_SAFE(a[i].meta.managed_by));
		/* what runs before and after pktlens in XDP, so what it does not see */
		if (a[i].meta_ok && pl_attachment_of(&a[i], &here) && pl_meta_xdp_disp(&a[i].meta, &d))
			pl_print_xdp_disp(&d, a[i].meta.xdp_prog_id, "    ");
		if (a[i].meta_ok)
			pl_sampler_summary(NULL, true, "list", &a[i]);
	}
	free(a);
	return PL_EXIT_OK;
}

const struct pl_cmd pl_cmd_list = {
	.name = "list", .fn = do_list, .max_args = 0,
	.about = "List pktlens attachments in every network namespace: interface, hooks,\n"
		 "mode, program id, flow table size, and whether the program is still\n"
		 "attached (checked for the current namespace). NETNS is the namespace's\n"
		 "inode, INODE:ID for a deleted namespace's attachment (pktlens detach\n"
		 "--netns NETNS DEV removes one). Where XDP runs in libxdp's dispatcher,\n"
		 "the programs beside pktlens's follow, in run order, with their priority\n"
		 "and id: what one before it drops, pktlens does not see.\n"
		 "STATE: attached (every hook runs), partial (not running: HOOKS) (another\n"
		 "tool took those off), program-gone (none runs), interface-gone,\n"
		 "interface-moved (to another namespace, its hooks along), interface-renamed\n"
		 "(now NEW), netns-gone, other-netns (runs in another namespace), broken\n"
		 "(its metadata pin is missing, unreadable or another version's: detach\n"
		 "removes it), unknown (its links or XDP state could not be read).\n",
};
