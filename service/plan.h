/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reconcile: what a config wants (desired state) against what the pins say
 * (actual state), as a plan of steps, then the steps, through the loader's
 * own calls (pl_attach, pl_chain_set, pl_policy_commit, pl_detach): the
 * same code the CLI runs. The plan is made completely, in every namespace,
 * before anything changes; a step changes one attachment, and leaves it as
 * it was or as the config says.
 *
 * Ownership: an attachment records the config managing it
 * (pl_meta.managed_by) and that config's file (pl_meta.managed_file). Only
 * those are changed or removed, with those that record the config's file
 * under another name (its `name` changed since: the new one is recorded).
 * One made by hand is left alone unless the config covers it, and then
 * adopted with its counters; one of another config is left to it, and the
 * config's entry that matches it noted (blocked), unless PL_PLAN_TAKE_OVER.
 */
#ifndef __PKTLENS_SERVICE_PLAN_H
#define __PKTLENS_SERVICE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "config.h"
#include "ns.h"
#include "../cli/policy_file.h"
#include "../export/json.h"
#include "../loader/loader.h"

enum pl_step_kind {
	PL_STEP_REMOVE,		/* first: they free names others may need */
	PL_STEP_CHANGE,
	PL_STEP_ADOPT,		/* a CHANGE of an attachment not yet this config's */
	PL_STEP_ADD,
};

/* What a CHANGE or ADOPT changes. */
#define PL_CH_RENAME	(1u << 0)	/* the interface has a new name: pins follow */
#define PL_CH_HOOKS	(1u << 1)	/* XDP mode, tc hooks or tc mechanism */
#define PL_CH_FLOWS	(1u << 2)
#define PL_CH_FILTER	(1u << 3)
#define PL_CH_RULES	(1u << 4)
#define PL_CH_PROBES	(1u << 5)
#define PL_CH_OWNER	(1u << 6)
#define PL_CH_META	(1u << 7)	/* an older pktlens's metadata (no owner; smaller rules) */
/* changes made by attaching again (counters kept), all in one step */
#define PL_CH_REATTACH	(PL_CH_HOOKS | PL_CH_FLOWS | PL_CH_PROBES | PL_CH_META)

/* The settings of one attachment, wanted or found. */
struct pl_settings {
	int xdp_mode, tc_hooks, tc_mech;
	uint32_t flows;
	/*
	 * XDP's priority in libxdp's dispatcher: wanted (the config's
	 * `xdp-priority`, when xdp_prio_set), or where pktlens's program runs
	 * in one (xdp_prio_set: it does)
	 */
	bool xdp_prio_set;
	uint32_t xdp_prio;
	const char *filter;	/* NULL: none */
	unsigned probes;
	bool tcp_passive;	/* attach --tcp-passive ... */
	uint32_t tcp_ts_max;	/* ... --tcp-ts-max (0 without) */
	struct pl_rule *rules;	/* sorted by id */
	size_t nrules;
	struct pl_rule_text *texts;
	size_t ntexts;
};

struct pl_step {
	enum pl_step_kind kind;
	unsigned what;		/* PL_CH_* */
	uint64_t netns;
	char nsname[256];	/* "" for the root namespace or an unnamed one */
	char ifname[IF_NAMESIZE];	/* the interface's name (REMOVE: its pins') */
	char pinned[IF_NAMESIZE];	/* the name its pins are under now ("": none) */
	int ifindex;
	const char *why;	/* REMOVE: why (static) */
	bool gone;		/* REMOVE: the interface or its namespace is gone */
	bool clear_way;		/* REMOVE: stale pins an ADD needs the name of */
	bool moved;		/* REMOVE: the interface moved to another namespace, pktlens's
				 * XDP program with it: removed at once, exporters or not (it
				 * keeps the interface from being attached where it went) */
	bool replace;		/* ADD: over pins nothing can read */
	char prev_owner[PL_OWNER_MAX];	/* ADOPT: "" by hand, else the other config */
	struct pl_attachment att;	/* REMOVE, CHANGE, ADOPT */
	struct pl_settings have, want;
	size_t rules_kept;	/* rules whose id and counters stay */
	struct pl_rule_list rs;	/* owns want's rules and texts */
	struct pl_meta meta_have;	/* to print have's hooks */
	/* after pl_plan_run() */
	bool ran, ok;
	bool kept;		/* REMOVE of a gone interface left for now (PL_RUN_KEEP_GONE) */
	char msg[PL_WHY_LEN * 8 + 64];	/* what went wrong, or the final totals of a REMOVE */
	double secs;		/* how long the step took */
};

struct pl_plan {
	struct pl_step **s;
	size_t n, cap;
	size_t unchanged;	/* attachments already as the config says */
	size_t left_alone;	/* attachments of others the config does not cover */
	size_t blocked;		/* interfaces the config covers but that cannot be attached */
	char **notes;		/* one line per blocked interface */
	size_t nnotes;
};

/* What a reconcile looks at: everything, or some interfaces of one namespace. */
struct pl_scope {
	uint64_t netns;
	bool all;		/* every interface of the namespace */
	const char (*names)[IF_NAMESIZE];
	size_t nnames;
	const int *ifindexes;
	size_t nifindexes;
};

/* pl_plan_make() flags */
#define PL_PLAN_TAKE_OVER	(1u << 0)	/* apply --take-over: adopt other configs' too */

/*
 * Make the plan that brings the attachments in @s's namespaces (and those
 * @c manages anywhere) to what @c says; @scope NULL: all of them. The
 * caller holds the change lock until the plan has run. 0, or -EINVAL (a
 * rule that does not parse in its namespace, FILE:LINE:COL in @why) or
 * -errno; then @p is empty.
 */
int pl_plan_make(const struct pl_config *c, const struct pl_nsset *s, const struct pl_scope *scope,
		 unsigned flags, struct pl_plan *p, char *why, size_t whylen);
/* Whether @c manages @a: it records @c's name, or @c's file (@c's name changed since). */
bool pl_plan_manages(const struct pl_config *c, const struct pl_attachment *a);
void pl_plan_free(struct pl_plan *p);
/* Add the removal of @a (its interface gone) to @p. 0 or -ENOMEM. */
int pl_plan_remove_step(struct pl_plan *p, const struct pl_attachment *a, const char *why);

/* pl_plan_run() flags */
#define PL_RUN_STOP_ON_ERROR	(1u << 0)	/* apply: stop at the first failed step */
#define PL_RUN_KEEP_GONE	(1u << 1)	/* daemon: leave pins of gone interfaces for now */

/*
 * Run the steps in order; @done (may be NULL) is told of each as it ends.
 * Returns the number of failed steps.
 */
size_t pl_plan_run(struct pl_plan *p, const struct pl_config *c, const struct pl_nsset *s,
		   unsigned flags, void (*done)(const struct pl_step *st, void *ctx), void *ctx);

/* Steps of kind @k. */
size_t pl_plan_count(const struct pl_plan *p, enum pl_step_kind k);
/* Steps of kind @k that did not fail (run, or kept by PL_RUN_KEEP_GONE). */
size_t pl_plan_count_ok(const struct pl_plan *p, enum pl_step_kind k);
/* Steps that failed (or, after a stop on error, did not run). */
size_t pl_plan_failed(const struct pl_plan *p);
/* "add", "change", "adopt", "remove" */
const char *pl_step_verb(const struct pl_step *st);
/* "veth3 (netns 4026532251 blue): tc/tcx in+out, flows 65536, 2 rules" */
const char *pl_step_describe(const struct pl_step *st, char *buf, size_t len);
/* The step as a JSON object; @result: with what running it did. */
void pl_step_json(struct jw *w, const struct pl_step *st, bool result);

#endif /* __PKTLENS_SERVICE_PLAN_H */
