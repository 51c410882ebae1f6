/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The service config (`pktlens apply FILE`, `pktlens daemon --config FILE`):
 * one YAML file declaring which interfaces of which network namespaces are
 * attached and how, their filters and rules, the TCP probes and the
 * exporters. Parsed with libyaml and checked completely (unknown keys,
 * values, rule grammar, filter expressions) before anything uses it; every
 * error names FILE:LINE:COL. docs/pktlens.conf documents every key.
 */
#ifndef __PKTLENS_SERVICE_CONFIG_H
#define __PKTLENS_SERVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

#define PL_CONFIG_DEFAULT "/etc/pktlens/pktlens.conf"
/* The root network namespace in `netns:` (a /run/netns name cannot contain '/'). */
#define PL_NETNS_ROOT "/"

/* One rule of an entry, in `policy add` words, and where it was written. */
struct pl_cfg_rule {
	char *text;
	const char *file;	/* the config's or the entry's rules-file path */
	int line, col;
};

/* An `interfaces:` entry: the first that matches an interface decides its settings. */
struct pl_cfg_entry {
	char **match;		/* interface name globs */
	size_t nmatch;
	char **netns;		/* /run/netns name globs, PL_NETNS_ROOT; none: the root namespace */
	size_t nnetns;
	int xdp_mode;		/* enum pl_xdp_mode, -1: auto (as attach) */
	int tc_hooks;		/* PL_TC_IN | PL_TC_OUT, -1: auto */
	int tc_mech;		/* enum pl_tc_mech, -1: auto (tcx where the kernel has it) */
	uint32_t flows;
	bool xdp_prio_set;	/* `xdp-priority` given: XDP's priority in libxdp's dispatcher */
	bool tcp_ts_max_set;	/* `tcp-ts-max` given (only with `tcp-passive: true`) */
	uint32_t xdp_prio;
	char *filter;		/* tcpdump expression, NULL: none */
	struct pl_cfg_rule *rules;	/* `rules:` then `rules-file:`'s */
	size_t nrules;
	char *rules_file;	/* as resolved (relative to the config's directory) */
	int probes;		/* PL_PROBE_*, -1: the top-level `probes` */
	bool tcp_passive;	/* `tcp-passive: true`: attach --tcp-passive */
	uint32_t tcp_ts_max;	/* `tcp-ts-max` */
	int line, col;
	long shadowed_by;	/* pl_config_shadowed()'s entry, -1: none (set by pl_config_load()) */
};

/*
 * A `triggers:` entry: the daemon runs `pktlens sample DEV --when WHEN --for
 * FOR --rearm -w WRITE [-W KEEP] [-s SNAPLEN] [FILTER]` in NETNS for as long
 * as it runs (cli/trigger.h has the grammar of WHEN).
 */
struct pl_cfg_trigger {
	char *dev;
	char *netns;		/* a /run/netns name, NULL: the root namespace */
	char *when;
	uint32_t for_secs;
	char *write;		/* absolute; strftime patterns name each firing's file */
	uint32_t keep;		/* files kept, 0: all */
	uint32_t snaplen;	/* 0: sample's default */
	char *filter;		/* tcpdump expression, NULL: every packet */
	int line, col;
};

struct pl_config {
	char *path;		/* as given */
	char owner[PL_OWNER_MAX];	/* `name`, else the file's absolute path */
	/*
	 * The file's absolute path as named (a symlink's own), recorded with
	 * the owner (pl_meta.managed_file): "" when 256 bytes or longer
	 */
	char file[PL_OWNER_MAX];
	struct pl_cfg_entry *e;
	size_t n;
	unsigned probes;	/* PL_PROBE_* */
	char *prom_listen;	/* NULL: no Prometheus exporter */
	char *ipfix_collector;	/* NULL: no IPFIX exporter */
	uint32_t ipfix_interval, ipfix_domain, ipfix_tpl_secs;
	bool detach_on_stop;	/* daemon: on SIGTERM, detach what the config manages */
	struct pl_cfg_trigger *trig;	/* triggers: */
	size_t ntrig;
};

/*
 * Read and check @path. 0 and *out, or -EINVAL ("FILE:LINE:COL: what"
 * in @why; a file that cannot be read: "FILE: why") or -ENOMEM.
 */
int pl_config_load(const char *path, struct pl_config **out, char *why, size_t whylen);
void pl_config_free(struct pl_config *c);

/* Whether entry @e covers network namespace @name (NULL: the root one). */
bool pl_config_entry_netns(const struct pl_cfg_entry *e, const char *name);
/* Whether any entry covers @name (NULL: the root namespace). */
bool pl_config_covers(const struct pl_config *c, const char *name);
/*
 * The entry that decides @ifname in the namespace named @name (NULL: none),
 * which is, with @root, the root one ("/": the one pktlens runs in), or NULL.
 */
const struct pl_cfg_entry *pl_config_match(const struct pl_config *c, bool root, const char *name,
					   const char *ifname);
/*
 * The same for a namespace with @nnames names in /run/netns (and, with
 * @root, "/"): the first entry that covers any of them and matches @ifname
 * or one of its @altnames (pl_link_info's list; NULL: none).
 */
const struct pl_cfg_entry *pl_config_match_names(const struct pl_config *c, bool root,
						 const char *const *names, size_t nnames,
						 const char *ifname, const char *altnames);
/* Whether a `match:` of @e names @ifname or one of @altnames (@exact: as written, no glob). */
bool pl_config_entry_if(const struct pl_cfg_entry *e, const char *ifname, const char *altnames,
			bool exact);
/*
 * The earlier entry that matches, first, every interface entry @j names in
 * every namespace it names (so @j never decides one), or NULL. Only what is
 * certain: names and namespaces without glob characters, or a glob equal to
 * an earlier one's. Decided once, at load, within a bounded number of
 * comparisons (a config of 100,000 entries would need billions): an entry
 * past them is not said to be shadowed.
 */
const struct pl_cfg_entry *pl_config_shadowed(const struct pl_config *c, size_t j);
/* Entry @j shadowed: what to say of it ("FILE:LINE:COL: ...") in @buf; false if not. */
bool pl_config_shadow_line(const struct pl_config *c, size_t j, char *buf, size_t len);
/* The probes of entry @e. */
unsigned pl_config_probes(const struct pl_config *c, const struct pl_cfg_entry *e);

#endif /* __PKTLENS_SERVICE_CONFIG_H */
