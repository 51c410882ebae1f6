// SPDX-License-Identifier: GPL-2.0
/* pktlens attach | detach */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <pktlens/why.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../probes/drops.h"
#include "../probes/tcp.h"

static void attach_usage(FILE *f)
{
	fprintf(f,
		"Usage: pktlens attach DEV [--xdp native|skb|none] [--tc in,out|in|out|none]\n"
		"                      [--tc-mech tcx|clsact] [--flows N] [--probes tcp|drops|tcp,drops|none]\n"
		"                      [--force]\n"
		"\n"
		"Load the pktlens programs on DEV and pin their maps and links under\n"
		PL_PIN_ROOT "/<netns>/DEV so counters survive this command.\n"
		"Default hooks: native XDP ingress + tc egress on physical devices; tc\n"
		"ingress + egress on virtual devices such as veth.\n"
		"\n"
		"  --xdp MODE   XDP ingress: native (in the driver), skb (generic) or none\n"
		"  --tc HOOKS   tc hooks: in, out, in,out or none\n"
		"  --tc-mech M  tcx links (default, Linux 6.6+; clsact is used when the kernel\n"
		"               lacks tcx) or clsact (qdisc + cls_bpf filter over netlink)\n"
		"  --flows N    flow table capacity (default %u, %u..%u)\n"
		"  --probes tcp keep the TCP tracepoints attached (pinned beside the maps): flows\n"
		"               shows retransmits per flow, export prometheus the RTT and connect\n"
		"               latency; detach removes them\n"
		"  --probes drops  keep the kernel drop tracepoints attached (counting this\n"
		"               namespace's drops): stats shows the interface's drop reasons, flows\n"
		"               drops per flow, export prometheus pktlens_kernel_drops_total\n"
		"  --force      re-attach over an existing pktlens attachment (counters are kept),\n"
		"               replace a foreign XDP program, or attach to a down interface\n"
		"  -h, --help   this help\n",
		PL_FLOWS_DEFAULT, PL_FLOWS_MIN, PL_FLOWS_MAX);
}

/* Remove what attach_probes() may have pinned in @dir. */
static void unpin_probes(const char *dir)
{
	pl_drops_unpin(dir);
	const char *links[] = { PL_PIN_TCP_RTX_LINK, PL_PIN_TCP_RTX_SYNACK_LINK,
				PL_PIN_TCP_RTT_LINK, PL_PIN_TCP_STATE_LINK };
	const char *maps[] = { PL_MAP_CONN_RETRANS, PL_PIN_TCP_RTT_HIST, PL_PIN_TCP_CONNLAT_HIST };
	char path[640];

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, links[i]);
		pl_pin_link_detach(path);
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, maps[i]);
		unlink(path);
	}
}

/*
 * attach --probes tcp: load the TCP tracepoints for this namespace, quiet
 * (only maps: retransmits per connection, RTT and connect-latency
 * histograms for the exporter); --probes drops: the drop tracepoints for
 * this namespace, counting by reason and per flow. Pin links and maps
 * beside the attachment's maps and record them in the metadata. On
 * failure nothing of the probes is left; the attachment itself (and its
 * counters) stays.
 */
static int attach_probes(const char *ifname, unsigned which, struct pl_meta *m, char *why,
			 size_t whylen)
{
	struct pl_tcp_cfg cfg = { .flags = PL_TCP_CFG_QUIET };
	struct pl_drop_cfg dcfg = { .flags = PL_DROP_CFG_FLOWS };
	struct pl_attachment *a = NULL;
	struct pl_drops *d = NULL;
	struct pl_tcp *t = NULL;
	uint64_t ns = 0;
	__u32 key = 0;
	int err, fd = -1;
	size_t n;

	err = pl_netns_ino(&ns);
	cfg.netns = dcfg.netns = ns;
	if (!err)
		err = pl_attachments_here(ifname, &a, &n);
	if (err)
		return pl_why(why, whylen, err, "cannot find the attachment: %s", strerror(-err));
	if (which & PL_PROBE_TCP) {
		err = pl_tcp_open(PL_TCP_P_RETRANS | PL_TCP_P_RTT | PL_TCP_P_CONNLAT, &cfg, NULL, NULL,
				  &t, why, whylen);
		if (!err)
			err = pl_tcp_pin(t, a->dir, why, whylen);
	}
	if (!err && (which & PL_PROBE_DROPS)) {
		err = pl_drops_open(&dcfg, NULL, NULL, &d, why, whylen);
		if (!err)
			err = pl_drops_pin(d, a->dir, why, whylen);
	}
	if (!err) {
		fd = pl_pin_open(a->dir, PL_MAP_META);
		m->probes |= which;
		if (fd < 0 || bpf_map_update_elem(fd, &key, m, BPF_ANY)) {
			err = pl_why(why, whylen, -errno, "cannot record them in the metadata: %s",
				     strerror(errno));
			m->probes &= ~which;
		}
	}
	if (fd >= 0)
		close(fd);
	pl_tcp_close(t);
	pl_drops_close(d);
	if (err)
		unpin_probes(a->dir);
	free(a);
	return err;
}

int do_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "xdp", required_argument, NULL, 'x' },
		{ "tc", required_argument, NULL, 't' },
		{ "tc-mech", required_argument, NULL, 'm' },
		{ "flows", required_argument, NULL, 'f' },
		{ "force", no_argument, NULL, 'F' },
		{ "probes", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned probes = 0;
	struct pl_attach_opts o = { .xdp_mode = -1, .tc_hooks = -1, .tc_mech = -1,
				    .flows_max = PL_FLOWS_DEFAULT };
	struct pl_attach_info info;
	char why[PL_WHY_LEN], hooks[128];
	int c, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'x':
			if (!strcmp(optarg, "native"))
				o.xdp_mode = PL_XDP_NATIVE;
			else if (!strcmp(optarg, "skb") || !strcmp(optarg, "generic"))
				o.xdp_mode = PL_XDP_SKB;
			else if (!strcmp(optarg, "none"))
				o.xdp_mode = PL_XDP_NONE;
			else {
				pl_err("attach: --xdp '%s' is wrong: expected native, skb or none", optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 't':
			if (!strcmp(optarg, "none"))
				o.tc_hooks = 0;
			else if (!strcmp(optarg, "in"))
				o.tc_hooks = PL_TC_IN;
			else if (!strcmp(optarg, "out"))
				o.tc_hooks = PL_TC_OUT;
			else if (!strcmp(optarg, "in,out") || !strcmp(optarg, "out,in"))
				o.tc_hooks = PL_TC_IN | PL_TC_OUT;
			else {
				pl_err("attach: --tc '%s' is wrong: expected in, out, in,out or none", optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 'm':
			if (!strcmp(optarg, "tcx"))
				o.tc_mech = PL_TC_TCX;
			else if (!strcmp(optarg, "clsact"))
				o.tc_mech = PL_TC_CLSACT;
			else {
				pl_err("attach: --tc-mech '%s' is wrong: expected tcx or clsact", optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 'f':
			if (pl_parse_u32(optarg, PL_FLOWS_MIN, PL_FLOWS_MAX, &o.flows_max)) {
				pl_err("attach: --flows '%s' is wrong: expected a number from %u to %u",
				       optarg, PL_FLOWS_MIN, PL_FLOWS_MAX);
				return PL_EXIT_USAGE;
			}
			break;
		case 'F':
			o.force = true;
			break;
		case 'p':
			if (!strcmp(optarg, "tcp"))
				probes = PL_PROBE_TCP;
			else if (!strcmp(optarg, "drops"))
				probes = PL_PROBE_DROPS;
			else if (!strcmp(optarg, "tcp,drops") || !strcmp(optarg, "drops,tcp"))
				probes = PL_PROBE_TCP | PL_PROBE_DROPS;
			else if (!strcmp(optarg, "none"))
				probes = 0;
			else {
				pl_err("attach: --probes '%s' is wrong: expected tcp, drops, tcp,drops or none",
				       optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 'h':
			attach_usage(stdout);
			return PL_EXIT_OK;
		default:
			pl_err("attach: unknown option '%s' (see pktlens attach --help)", argv[optind - 1]);
			return PL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		pl_err("attach: %s (see pktlens attach --help)",
		       optind >= argc ? "which device? DEV is missing" : "too many arguments");
		return PL_EXIT_USAGE;
	}
	o.ifname = argv[optind];
	if ((err = pl_need_caps("attach", PL_NEED_BPF | PL_NEED_NET_ADMIN)) ||
	    (err = pl_lock_changes("attach")))
		return err;

	err = pl_attach(&o, &info, why, sizeof(why));
	if (err) {
		pl_err("attach: %s", why);
		return PL_EXIT_CODE(err, ENODEV, ENETDOWN, EINVAL, ERANGE, ENOENT);
	}
	if (probes && (err = attach_probes(o.ifname, probes, &info.meta, why, sizeof(why)))) {
		pl_err("attach: %s: attached, but without the %s probes: %s", o.ifname,
		       probes == PL_PROBE_DROPS ? "drop" : probes == PL_PROBE_TCP ? "TCP" : "TCP and drop",
		       why);
		return PL_EXIT_FAIL;
	}
	if (pl_g.json) {
		struct jw w;

		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_name_field(&w, "ifname", o.ifname);
		jw_u64_field(&w, "ifindex", info.ifindex);
		jw_key(&w, "hooks");
		pl_json_hooks(&w, &info.meta);
		jw_str_field(&w, "xdp_mode", pl_xdp_mode_name(info.xdp_mode));
		jw_str_field(&w, "tc_mech", pl_tc_mech_name(info.tc_mech));
		jw_str_field(&w, "reason", info.reason);
		jw_str_field(&w, "note", info.tc_note);
		jw_str_field(&w, "xdp_note", info.xdp_note);
		jw_u64_field(&w, "flows_max", o.flows_max);
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
	printf("attached %s (ifindex %d): %s; %s; flow table %u\n", PL_NAME(o.ifname), info.ifindex, hooks,
	       info.reason, o.flows_max);
	if (info.tc_note)
		printf("note: %s\n", info.tc_note);
	if (info.xdp_note)
		printf("note: %s\n", info.xdp_note);
	if (info.replaced_foreign)
		printf("replaced the foreign XDP program that was attached to %s (--force)\n",
		       PL_NAME(o.ifname));
	if (info.reattached && (info.flows_dropped || info.pkts_dropped))
		printf("re-attached over the previous pktlens attachment; counters kept, but %llu "
		       "flows did not fit the new table: %llu packets counted as not recorded in "
		       "flows\n", (unsigned long long)info.flows_dropped,
		       (unsigned long long)info.pkts_dropped);
	else if (info.reattached)
		printf("re-attached over the previous pktlens attachment; counters kept\n");
	if (info.rules_kept || info.rules_dropped)
		printf("policy: %zu rules judge packets again", info.rules_kept);
	if (info.rules_dropped)
		printf("; %zu rules dropped: their direction has no hook now", info.rules_dropped);
	if (info.rules_kept || info.rules_dropped)
		printf("\n");
	return PL_EXIT_OK;
}

static void detach_usage(FILE *f)
{
	fprintf(f,
		"Usage: pktlens detach DEV | --all | --stale | --netns NETNS DEV\n"
		"\n"
		"Print DEV's final totals, then remove its programs and pins.\n"
		"\n"
		"  --all          every attachment in this network namespace\n"
		"  --stale        every attachment, in any namespace, whose interface or\n"
		"                 namespace is gone\n"
		"  --netns NETNS  DEV's attachment in namespace NETNS as `pktlens list` shows it\n"
		"                 (INODE, or INODE:ID for a deleted namespace's)\n"
		"  -h, --help     this help\n");
}

/*
 * Enter the namespace with inode @ino if a name in /run/netns or a process
 * holds it. 0 when entered, -ENOENT when none does: it was deleted.
 */
static int enter_netns_ino(uint64_t ino)
{
	static const char *const dirs[] = { "/run/netns", "/proc" };
	char path[300];
	struct dirent *de;
	struct stat st;
	int err = -ENOENT;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && err == -ENOENT; i++) {
		DIR *d = opendir(dirs[i]);

		while (d && err == -ENOENT && (de = readdir(d))) {
			int fd;

			if (de->d_name[0] == '.' || (i && !isdigit((unsigned char)de->d_name[0])))
				continue;
			snprintf(path, sizeof(path), i ? "%s/%s/ns/net" : "%s/%s", dirs[i], de->d_name);
			if (stat(path, &st) || st.st_ino != ino)
				continue;
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			err = setns(fd, CLONE_NEWNET) ? -errno : 0;
			close(fd);
		}
		if (d)
			closedir(d);
	}
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

/* Attachments in any namespace whose XDP or tcx link lost its interface, or whose namespace is gone. */
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

		if ((*a)[i].ns_gone ||
		    ((*a)[i].meta_ok && !pl_attachment_link_ifindex(&(*a)[i], &ifindex) && !ifindex))
			(*a)[j++] = (*a)[i];
	}
	*n = j;
	return PL_EXIT_OK;
}

int do_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "stale", no_argument, NULL, 's' },
		{ "netns", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct pl_attachment *a = NULL;
	const char *netns = NULL;
	bool all = false, stale = false;
	struct jw w;
	size_t n = 0;
	int c, rc, ret = PL_EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 's':
			stale = true;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'h':
			detach_usage(stdout);
			return PL_EXIT_OK;
		default:
			pl_err("detach: unknown option '%s' (see pktlens detach --help)", argv[optind - 1]);
			return PL_EXIT_USAGE;
		}
	}
	if ((all + stale + (optind < argc)) != 1 || argc - optind > 1 || (netns && (all || stale))) {
		pl_err("detach: give one DEV, --all, --stale or --netns NETNS DEV (see pktlens "
		       "detach --help)");
		return PL_EXIT_USAGE;
	}
	rc = pl_need_caps("detach", PL_NEED_BPF | PL_NEED_NET_ADMIN);
	if (!rc)
		rc = pl_lock_changes("detach");
	if (rc)
		return rc;
	pl_pins_gc();	/* what an attach killed half-way left */
	rc = stale ? select_stale(&a, &n) : netns ? select_in_netns(netns, argv[optind], &a, &n) :
	     pl_select("detach", all ? NULL : argv[optind], &a, &n);
	if (rc) {
		free(a);	/* a selector that refused still holds what it read */
		return rc;
	}

	jw_init(&w, stdout, pl_g.pretty);
	if (pl_g.json) {
		jw_obj_open(&w);
		jw_key(&w, "detached");
		jw_arr_open(&w);
	}
	for (size_t i = 0; i < n; i++) {
		struct pl_stats s[PL_SLOT_MAX] = {};
		struct pl_state st;
		char why[PL_WHY_LEN];
		bool have = false;

		/* final totals first: the maps go away with the pins */
		if (pl_state_open(a[i].dir, &st) == 0) {
			have = pl_state_stats(&st, s) == 0;
			pl_state_close(&st);
		}
		if (pl_detach(&a[i], why, sizeof(why))) {
			pl_err("detach: %s", why);
			ret = PL_EXIT_FAIL;
			continue;
		}
		if (pl_g.json) {
			jw_obj_open(&w);
			jw_name_field(&w, "ifname", a[i].ifname);
			jw_key(&w, "totals");
			jw_arr_open(&w);
		} else {
			printf("detached %s", PL_NAME(a[i].ifname));
		}
		for (int sl = 0, shown = 0; have && sl < PL_SLOT_MAX; sl++) {
			__u64 pk, by;

			pl_stats_totals(&s[sl], &pk, &by);
			if (!pk && !pl_slot_attached(&a[i].meta, sl))
				continue;
			if (pl_g.json) {
				jw_obj_open(&w);
				jw_str_field(&w, "hook", pl_slot_hook[sl]);
				jw_str_field(&w, "dir", pl_slot_dir[sl]);
				jw_u64_field(&w, "packets", pk);
				jw_u64_field(&w, "bytes", by);
				jw_obj_close(&w);
			} else {
				printf("%s %s %s %llu packets, %llu bytes", shown++ ? ";" : ": final totals:",
				       pl_slot_hook[sl], pl_slot_dir[sl], pk, by);
			}
		}
		if (pl_g.json) {
			jw_arr_close(&w);
			jw_obj_close(&w);
		} else {
			putchar('\n');
		}
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
	}
	free(a);
	return ret;
}
