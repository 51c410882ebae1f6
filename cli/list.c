// SPDX-License-Identifier: GPL-2.0
/* pktlens list */
#include <errno.h>
#include <getopt.h>
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
#include "../export/report.h"

static void list_usage(FILE *f)
{
	fprintf(f,
		"Usage: pktlens list [-j]\n"
		"\n"
		"List pktlens attachments in every network namespace: interface, hooks,\n"
		"mode, program id, flow table size, and whether the program is still\n"
		"attached (checked for the current namespace).\n");
}

/* attached, interface-gone, interface-renamed (now NAME), program-gone, other-netns, broken */
static const char *attach_state(const struct pl_attachment *a, uint64_t here)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct pl_link_info li;
	__u32 ifindex = 0;
	int err;

	if (!a->meta_ok)
		return "broken";
	err = pl_attachment_link_ifindex(a, &ifindex);
	if (err && err != -ENOENT)
		return "unknown";
	if (!err && !ifindex)
		return "interface-gone";
	if (a->netns != here)
		return "other-netns";
	if (pl_link_get(NULL, a->meta.ifindex, &li))
		return "interface-gone";
	if (strcmp(li.ifname, a->ifname)) {
		static char renamed[64];

		snprintf(renamed, sizeof(renamed), "interface-renamed (now %s)", li.ifname);
		return renamed;
	}
	if (a->meta.xdp_mode == PL_XDP_NONE)
		return "attached";
	if (bpf_xdp_query(a->meta.ifindex, 0, &q))
		return "unknown";
	if (q.prog_id != a->meta.xdp_prog_id && q.skb_prog_id != a->meta.xdp_prog_id &&
	    q.drv_prog_id != a->meta.xdp_prog_id)
		return "program-gone";
	return "attached";
}

int do_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct pl_attachment *a = NULL;
	uint64_t here = 0;
	size_t n = 0;
	struct jw w;
	int c, err;

	while ((c = getopt_long(argc, argv, "hj", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			pl_g.json = true;
			break;
		case 'h':
			list_usage(stdout);
			return PL_EXIT_OK;
		default:
			pl_err("list: unknown option '%s' (see pktlens list --help)", argv[optind - 1]);
			return PL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pl_err("list: what is '%s'? (see pktlens list --help)", argv[optind]);
		return PL_EXIT_USAGE;
	}
	if ((err = pl_need_caps("list", PL_NEED_BPF)))
		return err;
	pl_netns_ino(&here);
	err = pl_attachments(0, &a, &n);
	if (err) {
		pl_err("list: cannot read %s: %s", PL_PIN_ROOT, strerror(-err));
		return PL_EXIT_FAIL;
	}
	if (pl_g.json) {
		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_key(&w, "attachments");
		jw_arr_open(&w);
		for (size_t i = 0; i < n; i++) {
			jw_obj_open(&w);
			jw_str_field(&w, "ifname", a[i].ifname);
			pl_json_netns(&w, a[i].netns);
			jw_bool_field(&w, "this_netns", a[i].netns == here);
			jw_str_field(&w, "state", attach_state(&a[i], here));
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
				jw_arr_close(&w);
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
	printf("%-24s %-16s %7s %-30s %9s  %-19s %s\n", "NETNS", "IFACE", "IFINDEX", "HOOKS",
	       "FLOWS", "ATTACHED", "STATE");
	for (size_t i = 0; i < n; i++) {
		char when[32] = "-", hooks[128] = "-", ns[300];

		if (a[i].meta_ok) {
			time_t t = (time_t)a[i].meta.attach_time;
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
			pl_fmt_hooks(&a[i].meta, hooks, sizeof(hooks));
		}
		printf("%-24s %-16s %7u %-30s %9u  %-19s %s%s%s%s\n",
		       pl_netns_fmt(a[i].netns, true, ns, sizeof(ns)), a[i].ifname,
		       a[i].meta.ifindex, hooks, a[i].meta.flows_max, when,
		       attach_state(&a[i], here), a[i].netns == here ? " (this netns)" : "",
		       a[i].meta.managed_by[0] ? ", managed by " : "", a[i].meta.managed_by);
	}
	free(a);
	return PL_EXIT_OK;
}
