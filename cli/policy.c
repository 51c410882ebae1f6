// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens policy add|list|del|flush|load: drop, pass, redirect, sample and
 * limit rules judged in the kernel (bpf/policy.h, loader/policy.c).
 *
 * One rule grammar for the command line and for rule files; `policy list`
 * prints rules in it, so its output loads back.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pktlens/array.h>
#include <pktlens/clock.h>

#include "cli.h"
#include "common.h"
#include "policy_file.h"
#include "policy_rule.h"
#include "print.h"
#include "util.h"
#include "../export/format.h"

static void policy_more(FILE *f)
{
	fprintf(f,
		"Rules that match on one address alone (plus --in/--out, --prio, an action\n"
		"other than --sample and --limit) go into an LPM trie: 100,000 cost one lookup.\n"
		"Others are tried in order, at most %u per direction, %u of them with an\n"
		"expression (every packet runs all expressions of its direction). Every\n"
		"change swaps the whole rule set in one step per hook; counters of rules\n"
		"that stay are kept.\n"
		"\n"
		"load replaces all rules of DEV with FILE's: one rule per line in the add\n"
		"syntax (without DEV), # starts a comment. Any error names FILE:LINE:COL\n"
		"and nothing changes. list prints rules that way (counters as comments),\n"
		"so `policy list DEV > FILE` saves a rule set that load restores. A FILE\n"
		"without rules is refused unless a line says '# DEV: 0 rules', as list\n"
		"prints for an empty set (flush empties one too).\n"
		"\n"
		"A --limit bucket is one for all CPUs (a spin lock), refilled from the\n"
		"kernel's clock; list shows conformed and exceeded packets and bytes, and\n"
		"for --per rules the keys tracked and evicted.\n",
		PL_POLICY_LIST_MAX, PL_POLICY_EXPRS_MAX);
}

/* ---- commands ---- */

struct target {
	struct pl_attachment *a;
	struct pl_policy p;
	bool open;
};

/*
 * @need: PL_NEED_PERFMON where the change loads rule-set programs; @live: the
 * change adds rules, refused on an interface that is gone
 */
static int open_target(const char *verb, const char *ifname, unsigned need, bool live,
		       struct target *t)
{
	size_t n;
	int ret, err;

	memset(t, 0, sizeof(*t));
	ret = pl_need_caps(verb, PL_NEED_BPF | PL_NEED_NET_ADMIN | need);
	if (!ret)
		ret = pl_lock_changes(verb);
	if (!ret)
		ret = pl_select(verb, ifname, &t->a, &n);
	/* rules added to an interface that is gone would judge nothing; del and flush tidy up */
	if (!ret && live)
		ret = pl_refuse_gone(verb, t->a);
	if (ret)
		return ret;
	err = pl_policy_open(t->a->dir, &t->p);
	if (err)
		return pl_open_error(verb, t->a, err);
	t->open = true;
	return PL_EXIT_OK;
}

static void close_target(struct target *t)
{
	if (t->open)
		pl_policy_close(&t->p);
	free(t->a);
}

/* Exit code of pl_policy_commit()'s error: bad rules exit 2, the kernel's failures 1. */
static int commit_exit(int err)
{
	return PL_EXIT_CODE(err, EEXIST, E2BIG, ENOTSUP, EINVAL, ERANGE);
}

/* Commit and report; an exit code. */
static int commit(const char *verb, struct target *t, struct pl_rule *rules, size_t n,
		  const struct pl_rule_text *texts, size_t ntexts)
{
	char why[PL_WHY_LEN * 8];
	int err = pl_policy_commit(&t->p, rules, n, texts, ntexts, why, sizeof(why));

	if (err)
		pl_err("%s: %s: %s", verb, t->a->ifname, why);
	return commit_exit(err);
}

/* The running rules and their expressions; prints the error. */
static int read_rules(const char *verb, struct target *t, struct pl_rule **rules, size_t *n,
		      struct pl_rule_text **texts, size_t *ntexts)
{
	int err = pl_policy_rules(&t->p, rules, n);

	if (!err)
		err = pl_policy_exprs(&t->p, texts, ntexts);
	if (err)
		pl_err("%s: %s: reading the rules: %s", verb, t->a->ifname, strerror(-err));
	return err ? PL_EXIT_FAIL : PL_EXIT_OK;
}

/* Whether the word after @w is @w's value (a rule option that takes one, without "=") */
static bool value_of(const char *w)
{
	if (strncmp(w, "--", 2) || strchr(w, '='))
		return false;
	for (const struct pl_opt *o = pl_rule_opts; o->name; o++)
		if (!strcmp(o->name, w + 2))
			return o->type != PL_OPT_FLAG;
	return false;
}

static int do_add(void *cfg, int argc, char **argv)
{
	struct pl_rule_text *texts = NULL, *nt;
	struct pl_rule *rules = NULL, *nr, r;
	size_t n = 0, ntexts = 0;
	struct target t = { 0 };
	char line[PL_FILTER_EXPR_MAX + 512], *expr = NULL;
	struct pl_rule_tok *toks;
	struct pl_rule_err e = { .args = true };
	bool ends = false, auto_id;
	__u32 after = 0;	/* a rule of its priority it runs before, though added earlier */
	int ret, ntok = 0;

	(void)cfg;
	toks = calloc((size_t)argc, sizeof(*toks));
	if (!toks)
		return PL_EXIT_FAIL;
	for (int i = 1; i < argc; i++) {
		/* -j (-p) among the options, as other commands take it anywhere: not an
		 * expression word (after "--" every word is, and an option's value is its own) */
		if (!ends && !value_of(argv[i - 1]) && pl_json_word(argv[i]))
			continue;
		ends = ends || !strcmp(argv[i], "--");
		toks[ntok++] = (struct pl_rule_tok){ argv[i], i };
	}
	if (pl_rule_parse(toks, ntok, &r, &expr, &e)) {
		pl_err("policy add: %s: argument %d: %s", argv[0], e.col, e.msg);
		free(toks);
		return PL_EXIT_USAGE;
	}
	free(toks);
	ret = open_target("policy add", argv[0], PL_NEED_PERFMON, true, &t);
	if (!ret)
		ret = read_rules("policy add", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	if (pl_rule_redirect_missing(&r, rules, n)) {
		const char *v = argv[argc - 1];
		int a = argc - 1;

		for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
			if (!strcmp(argv[i], "--redirect") && i + 1 < argc)
				v = argv[a = i + 1];
			else if (!strncmp(argv[i], "--redirect=", 11))
				v = argv[a = i] + 11;
		pl_err("policy add: %s: argument %d: --redirect '%s': no such interface", argv[0], a,
		       v);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	auto_id = !r.id;
	if (auto_id)
		r.id = pl_rules_next_id(rules, n);
	/* the lowest free id, once the highest is taken: before rules of its priority added earlier */
	for (size_t i = 0; auto_id && i < n; i++)
		if (rules[i].dir == r.dir && rules[i].prio == r.prio && rules[i].id > r.id &&
		    rules[i].id > after)
			after = rules[i].id;
	if (!r.id) {
		pl_err("policy add: %s: %u rules: at most %u per interface", argv[0], PL_POLICY_RULES_MAX,
		       PL_POLICY_RULES_MAX);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (rules[i].id == r.id) {
			pl_err("policy add: %s: rule id %u exists (policy del %s %u first)", argv[0],
			       r.id, argv[0], r.id);
			ret = PL_EXIT_USAGE;
			goto out;
		}
	nr = realloc(rules, (n + 1) * sizeof(*rules));
	nt = realloc(texts, (ntexts + 1) * sizeof(*texts));
	if (nr)
		rules = nr;
	if (nt)
		texts = nt;
	if (!nr || !nt) {
		ret = PL_EXIT_FAIL;
		goto out;
	}
	rules[n++] = r;
	if (expr) {
		texts[ntexts++] = (struct pl_rule_text){ r.id, expr };
		expr = NULL;
		pl_policy_texts_sort(texts, ntexts);
	}
	ret = commit("policy add", &t, rules, n, texts, ntexts);
	pl_rule_format(&r, pl_policy_text(texts, ntexts, r.id), line, sizeof(line));
	if (!ret && after)
		pl_warn("policy add: %s: rule id %u runs before rule id %u, added before it in priority "
			"%u: no id is free after %u (ids run in order within a priority); give it an "
			"--id or another --prio to run it after", t.a->ifname, r.id, after, r.prio, after);
	if (!ret) {
		pl_print_start();
		pl_print_obj_open(NULL);
		pl_print_name("interface", "%s: ", t.a->ifname);
		pl_print_u64("id", "rule %llu added: ", r.id);
		pl_print_str("rule", "%s\n", line);
		pl_print_obj_close();
		pl_print_end();
	}
out:
	close_target(&t);
	free(rules);
	free(expr);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_del(void *cfg, int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	uint32_t id;
	int ret;

	(void)cfg, (void)argc;
	if (pl_parse_u32(argv[1], 1, UINT32_MAX, &id)) {
		pl_err("policy del: %s: '%s' is not a rule id", argv[0], argv[1]);
		return PL_EXIT_USAGE;
	}
	ret = open_target("policy del", argv[0], PL_NEED_PERFMON, false, &t);
	if (!ret)
		ret = read_rules("policy del", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rules[i].id != id)
			rules[kept++] = rules[i];
	if (kept == n) {
		pl_err("policy del: %s: no rule %u (pktlens policy list %s)", argv[0], id, argv[0]);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	ret = commit("policy del", &t, rules, kept, texts, ntexts);
	if (!ret) {
		pl_print_start();
		pl_print_obj_open(NULL);
		pl_print_name("interface", "%s: ", t.a->ifname);
		pl_print_u64("id", "rule %llu deleted\n", id);
		pl_print_obj_close();
		pl_print_end();
	}
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

struct flush_cfg {
	int dirs;	/* 1 << PL_DIR_*: --in, --out, both given (0: all) */
};

static int do_flush(void *cfg, int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	int dirs = ((const struct flush_cfg *)cfg)->dirs, ret;

	(void)argc;
	ret = open_target("policy flush", argv[0], 0, false, &t);
	if (!ret)
		ret = read_rules("policy flush", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (dirs && !(dirs & (1 << rules[i].dir)))
			rules[kept++] = rules[i];
	ret = commit("policy flush", &t, rules, kept, texts, ntexts);
	if (!ret) {
		pl_print_start();
		pl_print_obj_open(NULL);
		pl_print_name("interface", "%s: ", t.a->ifname);
		pl_print_u64("removed", "%llu rule", n - kept);
		pl_print_text("%s removed\n", n - kept == 1 ? "" : "s");
		pl_print_obj_close();
		pl_print_end();
	}
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_load(void *cfg, int argc, char **argv)
{
	struct pl_rule_list rl = { 0 };
	struct pl_rule_text *texts = NULL;
	struct pl_rule *old = NULL;
	size_t nold = 0, ntexts = 0;
	struct target t = { 0 };
	char why[PL_WHY_LEN * 8], at[PL_WHY_LEN * 8];
	int ret, err;

	(void)cfg, (void)argc;
	/* before FILE: a file we cannot read for want of privileges says so */
	ret = pl_need_caps("policy load", PL_NEED_BPF | PL_NEED_NET_ADMIN | PL_NEED_PERFMON);
	if (ret)
		goto out;
	err = pl_rule_list_read(&rl, argv[1], why, sizeof(why));
	if (err) {
		if (err == -EINVAL)
			pl_err("policy load: %s", why);
		else
			pl_err("policy load: %s: %s", argv[0], why);
		ret = err == -ENOMEM ? PL_EXIT_FAIL : PL_EXIT_USAGE;
		goto out;
	}
	if (!rl.n && !rl.says_empty) {
		pl_err("policy load: %s: no rules: a file that empties the rule set says so in a line "
		       "'# %s: 0 rules' (as `policy list` of an empty set prints); or `policy flush %s`",
		       PL_SAFE(argv[1]), PL_SAFE(argv[0]), PL_SAFE(argv[0]));
		ret = PL_EXIT_USAGE;
		goto out;
	}
	ret = open_target("policy load", argv[0], PL_NEED_PERFMON, true, &t);
	if (ret)
		goto out;
	if (pl_policy_rules(&t.p, &old, &nold)) {
		pl_err("policy load: %s: cannot read the current rules", argv[0]);
		ret = PL_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < rl.n; i++)
		if (pl_rule_redirect_missing(&rl.rules[i], old, nold)) {
			const struct pl_rule_origin *a = &rl.orig[i];

			pl_err("policy load: %s:%d:%d: --redirect 'ifindex:%u': no such interface",
			       a->file, a->line, a->redirect_col, rl.rules[i].arg);
			ret = PL_EXIT_USAGE;
			goto out;
		}
	err = pl_rule_list_finish(&rl, old, nold, &texts, &ntexts, why, sizeof(why));
	if (err) {
		pl_err("policy load: %s", why);
		ret = err == -ENOMEM ? PL_EXIT_FAIL : PL_EXIT_USAGE;
		goto out;
	}
	err = pl_policy_commit(&t.p, rl.rules, rl.n, texts, ntexts, why, sizeof(why));
	if (err && pl_rule_list_locate(&rl, why, at, sizeof(at)))
		pl_err("policy load: %s", at);	/* the rule's place in the file */
	else if (err)
		pl_err("policy load: %s: %s", t.a->ifname, why);
	ret = commit_exit(err);
	if (!ret && rl.note[0])
		pl_warn("policy load: %s", rl.note);
	if (!ret) {
		pl_print_start();
		pl_print_obj_open(NULL);
		pl_print_name("interface", "%s: ", t.a->ifname);
		pl_print_u64("rules", "%llu rule", rl.n);
		pl_print_text("%s loaded from %s\n", rl.n == 1 ? "" : "s", PL_SAFE(argv[1]));
		pl_print_str("file", NULL, argv[1]);
		pl_print_obj_close();
		pl_print_end();
	}
out:
	close_target(&t);
	free(texts);	/* its texts are the set's */
	pl_rule_list_free(&rl);
	free(old);
	return ret;
}

/* A --limit rule's settings and counters in `policy list -j`. */
static void list_limit(struct jw *w, const struct pl_rule *r, const struct pl_rule_stats *rs,
		       bool keyed, __u64 keys, __u64 evicted)
{
	const struct pl_limit *l = &r->lim;

	jw_key(w, "limit");
	jw_obj_open(w);
	jw_u64_field(w, "rate", l->rate);
	jw_str_field(w, "rate_unit", l->unit == PL_LIM_PPS ? "packets/s" : "bits/s");
	jw_u64_field(w, "burst", l->burst);
	jw_str_field(w, "burst_unit", l->unit == PL_LIM_PPS ? "packets" : "bytes");
	jw_str_field(w, "per", pl_rule_per_name(l->per));
	if (l->per != PL_PER_RULE)
		jw_u64_field(w, "per_size", l->keys);
	jw_str_field(w, "over", pl_rule_action_name(l->over));
	if (l->over == PL_ACT_SAMPLE)
		jw_u64_field(w, "over_sample_every", l->over_arg);
	jw_obj_close(w);
	jw_u64_field(w, "conformed_packets", rs->conf_pkts);
	jw_u64_field(w, "conformed_bytes", rs->conf_bytes);
	jw_u64_field(w, "exceeded_packets", rs->exc_pkts);
	jw_u64_field(w, "exceeded_bytes", rs->exc_bytes);
	if (l->per != PL_PER_RULE) {
		jw_key(w, "keys");
		if (keyed)
			jw_u64(w, keys);
		else
			jw_null(w);
		jw_u64_field(w, "keys_evicted", evicted);
	}
}

static void list_one(struct jw *w, struct target *t, const struct pl_rule *rules, size_t n,
		     const struct pl_rule_text *texts, size_t ntexts)
{
	struct pl_stats st[PL_SLOT_MAX];
	struct pl_state s;
	double now = (double)pl_mono_ns() / 1e9;	/* the clock rs.last_ns is on */
	bool have_stats = false;
	char line[PL_FILTER_EXPR_MAX + 512];

	if (pl_state_open(t->a->dir, &s) == 0) {
		have_stats = pl_state_stats(&s, st) == 0;
		pl_state_close(&s);
	}
	if (w) {
		jw_obj_open(w);
		jw_name_field(w, "interface", t->a->ifname);
		jw_key(w, "rules");
		jw_arr_open(w);
	} else {
		printf("# %s: %zu rule%s\n", PL_NAME(t->a->ifname), n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *r = &rules[i];
		struct pl_rule_stats rs;
		char ifn[IF_NAMESIZE] = "";
		__u64 keys = 0, evicted;
		double ago = 0;
		bool hit, lim, keyed, gone = pl_policy_redirect_gone(&t->p, r);

		if (pl_policy_rule_stats(&t->p, r, &rs))
			memset(&rs, 0, sizeof(rs));
		hit = rs.pkts && rs.last_ns;
		if (hit)
			ago = now - rs.last_ns / 1e9;
		if (ago < 0)	/* a hit just now may be stamped a tick ahead of our clock */
			ago = 0;
		pl_rule_format_gone(r, pl_policy_text(texts, ntexts, r->id), gone, line, sizeof(line));
		lim = r->action == PL_ACT_LIMIT;
		keyed = lim && r->lim.per != PL_PER_RULE &&
			!pl_policy_limit_keys(&t->p, r, &keys);
		evicted = keyed ? pl_policy_limit_evicted(&rs, keys) : 0;
		if (!w) {
			printf("%s\n#   %llu packets, %llu bytes", line, (unsigned long long)rs.pkts,
			       (unsigned long long)rs.bytes);
			if (hit)
				printf(", last %.1f s ago", ago);
			printf("\n");
			if (lim)
				printf("#   conformed %llu packets, %llu bytes; exceeded %llu packets, "
				       "%llu bytes\n", (unsigned long long)rs.conf_pkts,
				       (unsigned long long)rs.conf_bytes,
				       (unsigned long long)rs.exc_pkts, (unsigned long long)rs.exc_bytes);
			if (keyed)
				printf("#   %llu keys tracked of %u, %llu evicted\n",
				       (unsigned long long)keys, r->lim.keys, (unsigned long long)evicted);
			continue;
		}
		jw_obj_open(w);
		jw_u64_field(w, "id", r->id);
		jw_str_field(w, "dir", r->dir == PL_DIR_IN ? "in" : "out");
		jw_u64_field(w, "prio", r->prio);
		jw_str_field(w, "action", pl_rule_action_name(r->action));
		if (r->action == PL_ACT_REDIRECT) {
			jw_name_field(w, "redirect", !gone && if_indextoname(r->arg, ifn) ? ifn : NULL);
			jw_u64_field(w, "redirect_ifindex", r->arg);
		}
		if (r->action == PL_ACT_SAMPLE)
			jw_u64_field(w, "sample_every", r->arg);
		if (lim)
			list_limit(w, r, &rs, keyed, keys, evicted);
		jw_str_field(w, "expression", pl_policy_text(texts, ntexts, r->id));
		jw_str_field(w, "rule", line);
		jw_u64_field(w, "packets", rs.pkts);
		jw_u64_field(w, "bytes", rs.bytes);
		jw_key(w, "last_hit_s_ago");
		if (hit)
			jw_double(w, ago);
		else
			jw_null(w);
		jw_obj_close(w);
	}
	if (w) {
		jw_arr_close(w);
		jw_key(w, "no_match");
		jw_obj_open(w);
	}
	for (int slot = 0; have_stats && slot < PL_SLOT_MAX; slot++) {
		static const char *const names[PL_SLOT_MAX] = { "xdp in", "tc in", "tc out" };

		if (!st[slot].nomatch_pkts && !pl_policy_judges(&t->p, slot))
			continue;
		if (w) {
			jw_key(w, names[slot]);
			jw_obj_open(w);
			jw_u64_field(w, "packets", st[slot].nomatch_pkts);
			jw_u64_field(w, "bytes", st[slot].nomatch_bytes);
			jw_obj_close(w);
		} else if (st[slot].nomatch_pkts) {
			printf("# %s: no rule matched %llu packets, %llu bytes (passed)\n", names[slot],
			       (unsigned long long)st[slot].nomatch_pkts,
			       (unsigned long long)st[slot].nomatch_bytes);
		}
	}
	if (w) {
		jw_obj_close(w);
		jw_obj_close(w);
	}
}

static int do_policy_list(void *cfg, int argc, char **argv)
{
	struct pl_attachment *a = NULL;
	struct jw w;
	size_t n = 0;
	int ret;

	(void)cfg;
	ret = pl_need_caps("policy list", PL_NEED_BPF);
	if (!ret)
		ret = pl_select("policy list", argc ? argv[0] : NULL, &a, &n);
	if (ret)
		return ret;
	if (pl_g.json) {
		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_key(&w, "interfaces");
		jw_arr_open(&w);
	}
	for (size_t i = 0; i < n; i++) {
		struct target t = { .a = &a[i] };
		struct pl_rule_text *texts = NULL;
		struct pl_rule *rules = NULL;
		size_t nr = 0, ntexts = 0;
		int err = pl_policy_open(a[i].dir, &t.p);

		if (err) {
			ret = pl_open_error("policy list", &a[i], err);
			continue;
		}
		t.open = true;
		if (read_rules("policy list", &t, &rules, &nr, &texts, &ntexts))
			ret = PL_EXIT_FAIL;
		else
			list_one(pl_g.json ? &w : NULL, &t, rules, nr, texts, ntexts);
		pl_policy_close(&t.p);
		free(rules);
		pl_policy_texts_free(texts, ntexts);
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
	}
	free(a);
	return ret;
}

static const struct pl_cmd policy_add = {
	.name = "add", .args = "DEV", .tail = "MATCH... ACTION [LIMIT] ['EXPR']", .opts = pl_rule_opts, .fn = do_add, .flags = PL_CMD_RAW,
	.min_args = 2, .max_args = -1, .few = "needs DEV and a rule (see pktlens policy --help)",
	.about = "add: a rule is MATCH... (all given must match; none: every packet) and one\n"
		 "ACTION (--limit's LIMIT: --burst, --per, --per-size, --over); words that are\n"
		 "not options form a tcpdump expression ('EXPR') that must match too.\n",
};

static const struct pl_cmd policy_list = {
	.name = "list", .args = "[DEV]", .fn = do_policy_list, .max_args = 1,
	.many = "at most one DEV; see pktlens policy --help",
};

static const struct pl_cmd policy_del = {
	.name = "del", .args = "DEV ID", .fn = do_del, .min_args = 2, .max_args = 2,
	.few = "needs DEV and a rule id",
};

static const struct pl_opt flush_opts[] = {
	{ .name = "in", .type = PL_OPT_FLAG, PL_FIELD(struct flush_cfg, dirs), .val = 1 << PL_DIR_IN,
	  .flags = PL_OPT_OR, .syn = "--in|--out",
	  .help = "only the ingress rules (with --out: both, as without either)" },
	{ .name = "out", .type = PL_OPT_FLAG, PL_FIELD(struct flush_cfg, dirs), .val = 1 << PL_DIR_OUT,
	  .flags = PL_OPT_OR, .syn = "", .help = "only the egress rules" },
	{ NULL },
};

static const struct flush_cfg flush_defaults = { .dirs = 0 };

static const struct pl_cmd policy_flush = {
	.name = "flush", .args = "DEV", .opts = flush_opts, .fn = do_flush,
	.about = "flush: remove all rules of DEV, or of one direction:\n",
	.defaults = &flush_defaults, .cfg_size = sizeof(struct flush_cfg), .min_args = 1,
	.max_args = 1, .few = "needs DEV [--in|--out]",
};

static const struct pl_cmd policy_load = {
	.name = "load", .args = "DEV FILE", .fn = do_load, .min_args = 2, .max_args = 2,
	.few = "needs DEV and FILE",
};

const struct pl_cmd pl_cmd_policy = {
	.name = "policy", .print_more = policy_more,
	.subs = (const struct pl_cmd *const[]){ &policy_add, &policy_list, &policy_del, &policy_flush,
						&policy_load, NULL },
	.about = "Rules judge the packets of an attached interface in the kernel: ingress\n"
		 "rules at its first ingress hook (XDP if attached, else tc ingress), egress\n"
		 "rules at tc egress. Lower --prio first, then lower id; the first rule that\n"
		 "matches decides. Packets no rule decides are passed and counted.\n",
};
