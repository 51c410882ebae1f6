// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens apply FILE [--dry-run] [-j]: make the attachments what the config
 * says, in one reconcile (service/plan.h), and say what changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../service/plan.h"

struct apply_cfg {
	int dry;
	int take_over;
};

struct out {
	struct jw w;
	size_t counts[4];	/* done, by enum pl_step_kind */
};

static void print_step(const struct pl_step *st, bool dry)
{
	char line[PL_WHY_LEN * 12], why[4 * sizeof(st->msg) + 5];

	pl_step_describe(st, line, sizeof(line));
	if (dry || (st->ran && st->ok)) {
		printf("%s %s%s%s\n", pl_step_verb(st), line, st->msg[0] && !dry ? "; " : "",
		       !dry ? st->msg : "");
		return;
	}
	/* line shows names already (pl_fmt_name()): the reason alone is escaped here */
	fprintf(stderr, "pktlens: apply: %s %s: failed: %s\n", pl_step_verb(st), line,
		pl_fmt_name(st->msg, why, sizeof(why)));
}

/* A removal's final totals that standard output did not take: to stderr, not lost with the pins. */
static void spill(const struct pl_step *st)
{
	char line[PL_WHY_LEN * 12];

	if (st->kind != PL_STEP_REMOVE || !st->ran || !st->ok || !st->msg[0])
		return;
	pl_step_describe(st, line, sizeof(line));
	fprintf(stderr, "pktlens: apply: %s %s; %s (standard output did not take it)\n",
		pl_step_verb(st), line, st->msg);
}

static void on_done(const struct pl_step *st, void *ctx)
{
	struct out *o = ctx;

	if (st->ran && st->ok)
		o->counts[st->kind]++;
	if (!pl_g.json) {
		print_step(st, false);
		if (pl_stdout_flush())
			spill(st);
	}
}

static int do_apply(void *cfgp, int argc, char **argv)
{
	const struct apply_cfg *cfg = cfgp;
	struct pl_config *c = NULL;
	struct pl_nsset ns = { .root_fd = -1 };
	struct pl_plan p = { 0 };
	struct out o = { 0 };
	bool dry = cfg->dry;
	char why[PL_WHY_LEN * 8];
	size_t failed = 0;
	int err, ret;

	(void)argc;
	/* before FILE: a file we cannot read for want of privileges says so */
	ret = pl_need_caps("apply", PL_NEED_BPF | PL_NEED_NET_ADMIN | PL_NEED_PERFMON);
	if (ret)
		return ret;
	err = pl_config_load(argv[0], &c, why, sizeof(why));
	if (err) {
		pl_err("apply: %s", why);
		return err == -ENOMEM ? PL_EXIT_FAIL : PL_EXIT_USAGE;
	}
	/* an entry that can never decide an interface does nothing: say so (not an error) */
	for (size_t j = 0; j < c->n; j++)
		if (pl_config_shadow_line(c, j, why, sizeof(why)))
			pl_warn("apply: warning: %s", why);
	/* a standard output closed before we start: a removal's final totals would be lost */
	err = dry ? 0 : pl_stdout_for_totals();
	if (err) {
		pl_err("apply: cannot write to standard output: %s: nothing changed (the final "
		       "totals of what it removes would be lost)", strerror(-err));
		ret = PL_EXIT_FAIL;
		goto out;
	}
	/* a dry run changes nothing: it only keeps changes out while it plans */
	ret = dry ? pl_lock_view("apply") : pl_lock_changes("apply");
	if (ret)
		goto out;
	err = pl_nsset_init(&ns, why, sizeof(why));
	if (!err)
		err = pl_nsset_update(&ns, c, NULL, NULL);
	if (!err)
		err = pl_plan_make(c, &ns, NULL, cfg->take_over ? PL_PLAN_TAKE_OVER : 0, &p, why,
				   sizeof(why));
	if (err) {
		pl_err("apply: %s", why);
		ret = err == -EINVAL ? PL_EXIT_USAGE : PL_EXIT_FAIL;
		goto out;
	}
	/* an interface the config covers that cannot be attached: nothing changes */
	for (size_t i = 0; i < p.nnotes; i++)
		pl_warn("apply: %s", p.notes[i]);
	if (pl_g.json) {
		jw_init(&o.w, stdout, pl_g.pretty);
		jw_obj_open(&o.w);
		jw_str_field(&o.w, "config", c->path);
		jw_str_field(&o.w, "name", c->owner);
		jw_bool_field(&o.w, "dry_run", dry);
	}
	if (!dry && !p.blocked)
		failed = pl_plan_run(&p, c, &ns, PL_RUN_STOP_ON_ERROR, on_done, &o);
	else if (!pl_g.json)
		for (size_t i = 0; i < p.n; i++)
			print_step(p.s[i], true);
	if (pl_g.json) {
		jw_key(&o.w, "steps");
		jw_arr_open(&o.w);
		for (size_t i = 0; i < p.n; i++)
			pl_step_json(&o.w, p.s[i], !dry && !p.blocked);
		jw_arr_close(&o.w);
		jw_u64_field(&o.w, "unchanged", p.unchanged);
		jw_u64_field(&o.w, "left_alone", p.left_alone);
		jw_key(&o.w, "blocked");
		jw_arr_open(&o.w);
		for (size_t i = 0; i < p.nnotes; i++)
			jw_str(&o.w, p.notes[i]);
		jw_arr_close(&o.w);
		jw_bool_field(&o.w, "ok", !failed && !p.blocked);
		jw_obj_close(&o.w);
		jw_end(&o.w);
		if (pl_stdout_flush())
			for (size_t i = 0; i < p.n; i++)
				spill(p.s[i]);
	} else if (p.blocked) {
		pl_warn("apply: %zu interface%s %s covers cannot be attached as it says: nothing "
			    "changed", p.blocked, p.blocked == 1 ? "" : "s", c->path);
	} else if (dry) {
		printf("plan: %zu to add, %zu to change, %zu to remove, %zu unchanged "
		       "(--dry-run: nothing changed)\n",
		       pl_plan_count(&p, PL_STEP_ADD), pl_plan_count(&p, PL_STEP_CHANGE) +
		       pl_plan_count(&p, PL_STEP_ADOPT), pl_plan_count(&p, PL_STEP_REMOVE), p.unchanged);
	} else if (failed) {
		size_t done = 0;

		for (size_t i = 0; i < p.n; i++)
			done += p.s[i]->ran && p.s[i]->ok;
		pl_warn("apply: stopped after a failed step: %zu of %zu steps done; every "
			    "attachment is as it was or as %s says", done, p.n, c->path);
	} else if (!p.n) {
		printf("nothing to change: %zu attachment%s as %s says\n", p.unchanged,
		       p.unchanged == 1 ? "" : "s", c->path);
	} else {
		printf("applied: %zu added, %zu changed, %zu removed, %zu unchanged\n",
		       o.counts[PL_STEP_ADD], o.counts[PL_STEP_CHANGE] + o.counts[PL_STEP_ADOPT],
		       o.counts[PL_STEP_REMOVE], p.unchanged);
	}
	ret = failed || p.blocked ? PL_EXIT_FAIL : PL_EXIT_OK;
out:
	pl_plan_free(&p);
	pl_nsset_free(&ns);
	pl_config_free(c);
	return ret;
}

static const struct pl_opt apply_opts[] = {
	{ .name = "dry-run", .type = PL_OPT_FLAG, PL_FIELD(struct apply_cfg, dry), .val = 1,
	  .help = "print the plan, change nothing" },
	{ .name = "take-over", .type = PL_OPT_FLAG, PL_FIELD(struct apply_cfg, take_over), .val = 1,
	  .help = "adopt the attachments FILE matches that another config manages (else they "
		  "are left to it and nothing changes)" },
	{ NULL },
};

const struct pl_cmd pl_cmd_apply = {
	.name = "apply", .args = "FILE", .opts = apply_opts, .fn = do_apply,
	.cfg_size = sizeof(struct apply_cfg), .min_args = 1, .max_args = 1,
	.few = "which config? FILE is missing (see pktlens apply --help)",
	.many = "one FILE only; see pktlens apply --help",
	.about = "Make the attachments what FILE (YAML, see docs/pktlens.conf) says, in one\n"
		 "step: attach what it matches and is not attached, change what differs\n"
		 "(hooks, XDP mode, flow table size, filter, rules, probes), remove what it\n"
		 "manages and no longer matches; what FILE managed under a name it had\n"
		 "before is its own. Attachments made by hand are left alone unless FILE\n"
		 "matches them: then they are adopted, counters and all. One another\n"
		 "config manages that FILE matches is named and nothing changes, unless\n"
		 "--take-over. Counters, flows and per-rule hits are never reset.\n"
		 "A second apply of the same file changes nothing.\n"
		 "\n"
		 "The whole plan is made, in every namespace, before the first change; an\n"
		 "error in FILE (FILE:LINE:COL) or an interface that cannot be attached as\n"
		 "it says changes nothing. Each step leaves its attachment as it was or as\n"
		 "FILE says.\n",
};
