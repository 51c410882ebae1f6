// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens policy add|list|del|flush|load: drop, pass, redirect, sample and
 * limit rules judged in the kernel (bpf/policy.h, loader/policy.c).
 *
 * One rule grammar for the command line and for rule files; `policy list`
 * prints rules in it, so its output loads back.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pktlens/array.h>

#include "cli.h"
#include "common.h"
#include "policy_rule.h"
#include "util.h"
#include "../export/format.h"

#define POLICY_USAGE \
	"Usage: pktlens policy add DEV [--in|--out] [--prio N] [--id N] MATCH... ACTION [LIMIT] ['EXPR']\n" \
	"       pktlens policy list [DEV] [-j]\n" \
	"       pktlens policy del DEV ID\n" \
	"       pktlens policy flush DEV [--in|--out]\n" \
	"       pktlens policy load DEV FILE\n"

static void policy_usage(FILE *f)
{
	fprintf(f, POLICY_USAGE
		"\n"
		"Rules judge the packets of an attached interface in the kernel: ingress\n"
		"rules at its first ingress hook (XDP if attached, else tc ingress), egress\n"
		"rules at tc egress. Lower --prio first, then lower id; the first rule that\n"
		"matches decides. Packets no rule decides are passed and counted.\n"
		"\n"
		"MATCH (all given must match; none: every packet):\n"
		"  'EXPR'                   a tcpdump expression (words that are not options)\n"
		"  --src CIDR, --dst CIDR   IPv4 or IPv6 prefix (198.18.0.0/15, 2001:db8::/32)\n"
		"  --proto P                tcp, udp, icmp, icmp6, sctp or a number 0-255\n"
		"  --sport P[-P], --dport P[-P]\n"
		"                           TCP/UDP/SCTP port or range (not later fragments)\n"
		"  --vlan ID                outermost VLAN id, 0-4095\n"
		"ACTION (exactly one):\n"
		"  --drop                   drop the packet\n"
		"  --pass                   let it go, stop evaluating\n"
		"  --redirect DEV2          send it out of DEV2 (XDP: devmap; tc: bpf_redirect)\n"
		"  --sample 1/N             count it for sampling and go on evaluating\n"
		"  --limit RATE[pps|bps|kbit|mbit|gbit]\n"
		"                           token bucket (default pps): packets within the rate\n"
		"                           go on to the next rule (or pass), the excess gets --over\n"
		"LIMIT (with --limit):\n"
		"  --burst N[packets|bytes] bucket depth, in packets for pps, bytes for bit rates\n"
		"                           (default 100 ms of the rate; bytes at least 65536)\n"
		"  --per rule|src|dst|flow  one bucket for all the rule's packets (default), or one\n"
		"                           per source, destination or flow, in an LRU map\n"
		"  --per-size N             keys the LRU map holds, 1-%u (default %u)\n"
		"  --over drop|pass|sample 1/N\n"
		"                           what the excess gets (default drop); sample: counted,\n"
		"                           every Nth to a sampler, and evaluation goes on\n"
		"\n"
		"  --in, --out   direction (default --in)\n"
		"  --prio N      0-4294967295 (default %u)\n"
		"  --id N        the rule's id (default: one above the highest)\n"
		"  -j, --json    list: JSON\n"
		"  -h, --help    this help\n"
		"\n"
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
		"so `policy list DEV > FILE` saves a rule set that load restores.\n"
		"\n"
		"A --limit bucket is one for all CPUs (a spin lock), refilled from the\n"
		"kernel's clock; list shows conformed and exceeded packets and bytes, and\n"
		"for --per rules the keys tracked and evicted.\n",
		PL_LIM_KEYS_MAX, PL_LIM_KEYS_DEFAULT, PL_RULE_PRIO_DEFAULT, PL_POLICY_LIST_MAX,
		PL_POLICY_EXPRS_MAX);
}

/* ---- commands ---- */

struct target {
	struct pl_attachment *a;
	struct pl_policy p;
	bool open;
};

static int open_target(const char *verb, const char *ifname, struct target *t)
{
	size_t n;
	int ret, err;

	memset(t, 0, sizeof(*t));
	ret = pl_need_caps(verb, PL_NEED_BPF | PL_NEED_NET_ADMIN);
	if (!ret)
		ret = pl_lock_changes(verb);
	if (!ret)
		ret = pl_select(verb, ifname, &t->a, &n);
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

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/*
 * The id for a new rule: one above the highest in use, or where that would
 * leave the range (ids are 1..PL_POLICY_RULES_MAX, so that `policy list`
 * output always loads back), the lowest free one. 0 when all are taken.
 */
static __u32 next_id(const struct pl_rule *rules, size_t n)
{
	__u32 max = 0, *ids, id = 1;

	for (size_t i = 0; i < n; i++)
		max = rules[i].id > max ? rules[i].id : max;
	if (max < PL_POLICY_RULES_MAX)
		return max + 1;
	ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return 0;
	for (size_t i = 0; i < n; i++)
		ids[i] = rules[i].id;
	pl_qsort(ids, n, sizeof(*ids), id_cmp);
	for (size_t i = 0; i < n && ids[i] <= id; i++)
		id = ids[i] == id ? id + 1 : id;
	free(ids);
	return id <= PL_POLICY_RULES_MAX ? id : 0;
}

static int do_add(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL, *nt;
	struct pl_rule *rules = NULL, *nr, r;
	size_t n = 0, ntexts = 0;
	struct target t = { 0 };
	char line[PL_FILTER_EXPR_MAX + 512], *expr = NULL;
	struct pl_rule_tok *toks;
	struct pl_rule_err e;
	int ret;

	if (argc < 3) {
		pl_err("policy add: needs DEV and a rule (see pktlens policy --help)");
		return PL_EXIT_USAGE;
	}
	toks = calloc((size_t)argc, sizeof(*toks));
	if (!toks)
		return PL_EXIT_FAIL;
	for (int i = 2; i < argc; i++)
		toks[i - 2] = (struct pl_rule_tok){ argv[i], i - 1 };
	if (pl_rule_parse(toks, argc - 2, &r, &expr, &e)) {
		pl_err("policy add: %s: argument %d: %s", argv[1], e.col, e.msg);
		free(toks);
		return PL_EXIT_USAGE;
	}
	free(toks);
	ret = open_target("policy add", argv[1], &t);
	if (!ret)
		ret = read_rules("policy add", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	if (!r.id)
		r.id = next_id(rules, n);
	if (!r.id) {
		pl_err("policy add: %s: %u rules: at most %u per interface", argv[1], PL_POLICY_RULES_MAX,
		       PL_POLICY_RULES_MAX);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (rules[i].id == r.id) {
			pl_err("policy add: %s: rule id %u exists (policy del %s %u first)", argv[1],
			       r.id, argv[1], r.id);
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
	if (!ret && !pl_g.json) {
		printf("%s: rule %u added: %s\n", PL_NAME(t.a->ifname), r.id, line);
	} else if (!ret) {
		struct jw w;

		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_name_field(&w, "interface", t.a->ifname);
		jw_u64_field(&w, "id", r.id);
		jw_str_field(&w, "rule", line);
		jw_obj_close(&w);
		jw_end(&w);
	}
out:
	close_target(&t);
	free(rules);
	free(expr);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_del(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	uint32_t id;
	int ret;

	if (argc != 3) {
		pl_err("policy del: needs DEV and a rule id");
		return PL_EXIT_USAGE;
	}
	if (pl_parse_u32(argv[2], 1, UINT32_MAX, &id)) {
		pl_err("policy del: %s: '%s' is not a rule id", argv[1], argv[2]);
		return PL_EXIT_USAGE;
	}
	ret = open_target("policy del", argv[1], &t);
	if (!ret)
		ret = read_rules("policy del", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rules[i].id != id)
			rules[kept++] = rules[i];
	if (kept == n) {
		pl_err("policy del: %s: no rule %u (pktlens policy list %s)", argv[1], id, argv[1]);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	ret = commit("policy del", &t, rules, kept, texts, ntexts);
	if (!ret && !pl_g.json)
		printf("%s: rule %u deleted\n", PL_NAME(t.a->ifname), id);
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_flush(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	int dir = -1, ret;

	if (argc == 3 && (!strcmp(argv[2], "--in") || !strcmp(argv[2], "--out")))
		dir = argv[2][2] == 'i' ? PL_DIR_IN : PL_DIR_OUT;
	else if (argc != 2) {
		pl_err("policy flush: needs DEV [--in|--out]");
		return PL_EXIT_USAGE;
	}
	ret = open_target("policy flush", argv[1], &t);
	if (!ret)
		ret = read_rules("policy flush", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (dir >= 0 && rules[i].dir != dir)
			rules[kept++] = rules[i];
	ret = commit("policy flush", &t, rules, kept, texts, ntexts);
	if (!ret && !pl_g.json)
		printf("%s: %zu rules removed\n", PL_NAME(t.a->ifname), n - kept);
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

/* A rule by its content (id and counter key zeroed), for matching a file's rules with the running ones. */
struct by_content {
	struct pl_rule r;
	__u32 id;		/* 0 once taken */
};

static int content_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct by_content *)a)->r, &((const struct by_content *)b)->r,
		      sizeof(struct pl_rule));
}

/*
 * Rules without --id take the id of an identical rule already there (so its
 * counters carry over), else the lowest id that neither the file nor a
 * running rule uses, and only when none is left below PL_POLICY_RULES_MAX
 * one of a running rule the file replaces (with counters of its own). So
 * ids stay in range whatever the loads, and `policy list` output loads back.
 */
static int assign_ids(struct pl_rule *rules, size_t n, const struct pl_rule *old, size_t nold)
{
	struct by_content *c = calloc(nold ? nold : 1, sizeof(*c));
	__u32 *taken = calloc(n + nold + 1, sizeof(*taken)), *was = NULL, next = 1;
	size_t ntaken = 0;

	if (!c || !taken) {
		free(c);
		free(taken);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nold; i++) {
		c[i].r = old[i];
		c[i].r.id = 0;
		c[i].r.ctr = 0;
		c[i].id = old[i].id;
	}
	pl_qsort(c, nold, sizeof(*c), content_cmp);
	/* ids given in the file are theirs: an old rule cannot lend such an id to another */
	for (size_t i = 0; i < n; i++)
		if (rules[i].id)
			taken[ntaken++] = rules[i].id;
	pl_qsort(taken, ntaken, sizeof(*taken), id_cmp);
	for (size_t j = 0; j < nold; j++)
		if (pl_bsearch(&c[j].id, taken, ntaken, sizeof(*taken), id_cmp))
			c[j].id = 0;
	for (size_t i = 0; i < n; i++) {
		struct by_content key = { .r = rules[i] }, *hit;

		if (rules[i].id)
			continue;
		hit = pl_bsearch(&key, c, nold, sizeof(*c), content_cmp);
		while (hit && hit > c && !content_cmp(hit - 1, &key))
			hit--;
		for (; hit && hit < c + nold && !content_cmp(hit, &key); hit++)
			if (hit->id) {
				rules[i].id = hit->id;
				taken[ntaken++] = hit->id;
				hit->id = 0;
				break;
			}
	}
	free(c);
	/* the rest: first ids nothing uses, then those of running rules that go */
	was = malloc((nold ? nold : 1) * sizeof(*was));
	if (!was) {
		free(taken);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nold; i++)
		was[i] = old[i].id;
	pl_qsort(was, nold, sizeof(*was), id_cmp);
	pl_qsort(taken, ntaken, sizeof(*taken), id_cmp);
	for (int pass = 0; pass < 2; pass++) {
		next = 1;
		for (size_t i = 0; i < n; i++) {
			if (rules[i].id)
				continue;
			while (next <= PL_POLICY_RULES_MAX &&
			       (pl_bsearch(&next, taken, ntaken, sizeof(*taken), id_cmp) ||
				(!pass && pl_bsearch(&next, was, nold, sizeof(*was), id_cmp))))
				next++;
			if (next > PL_POLICY_RULES_MAX)
				break;
			rules[i].id = next++;
			if (pass)
				rules[i].ctr = PL_RULE_CTR_NEW;	/* another rule had this id */
		}
		/* pass 1 must not hand out an id pass 0 gave */
		for (size_t i = 0; i < n && !pass; i++)
			if (rules[i].id && !pl_bsearch(&rules[i].id, taken, ntaken, sizeof(*taken), id_cmp))
				taken[ntaken++] = rules[i].id;
		pl_qsort(taken, ntaken, sizeof(*taken), id_cmp);
	}
	free(was);
	free(taken);
	return 0;
}

/* Where a rule of a file came from. */
struct origin {
	__u32 id;
	int line, col;
	char *expr;
};

static int origin_cmp(const void *a, const void *b)
{
	const struct origin *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* a rule as `policy list` prints it is at most PL_FILTER_EXPR_MAX + ~200 bytes */
#define RULE_LINE_MAX 8192

/*
 * The next line of @f into @line (RULE_LINE_MAX), NUL-terminated: 1, or 0 at
 * the end of the file. Bounded, so a file without newlines (say /dev/zero)
 * cannot eat memory; -E2BIG for a longer line, -EILSEQ for a NUL byte (at
 * *@nul, 1-based), -EIO for a read error.
 */
static int read_line(FILE *f, char *line, int *nul)
{
	int c, len = 0;

	while ((c = getc(f)) != EOF) {
		if (len == RULE_LINE_MAX - 2)
			return -E2BIG;
		if (c == 0) {
			*nul = len + 1;
			return -EILSEQ;
		}
		line[len++] = (char)c;
		if (c == '\n')
			break;
	}
	line[len] = 0;
	if (ferror(f))
		return -EIO;
	return len ? 1 : 0;
}

/*
 * A commit error of `policy load`: one that names a rule ("rule N: why")
 * points into the file instead (FILE:LINE:COL: why).
 */
static void load_error(const char *file, const char *ifname, const char *why,
		       const struct origin *orig, size_t n)
{
	unsigned int id;
	int used = 0;

	if (sscanf(why, "rule %u: %n", &id, &used) == 1 && used)
		for (size_t i = 0; i < n; i++)
			if (orig[i].id == id) {
				pl_err("policy load: %s:%d:%d: %s", file, orig[i].line, orig[i].col,
				       why + used);
				return;
			}
	pl_err("policy load: %s: %s", ifname, why);
}

static int do_load(int argc, char **argv)
{
	struct pl_rule *rules = NULL, *old = NULL;
	struct pl_rule_text *texts = NULL;
	struct origin *orig = NULL;
	size_t n = 0, cap = 0, nold = 0, ntexts = 0;
	struct target t = { 0 };
	int lineno = 0, ret = PL_EXIT_OK;
	struct pl_rule_tok toks[256];
	char *line = NULL;
	FILE *f;

	if (argc != 3) {
		pl_err("policy load: needs DEV and FILE");
		return PL_EXIT_USAGE;
	}
	f = fopen(argv[2], "r");
	if (!f) {
		pl_err("policy load: %s: cannot read '%s': %s", argv[1], argv[2], strerror(errno));
		return PL_EXIT_USAGE;
	}
	line = malloc(RULE_LINE_MAX);
	if (!line) {
		pl_err("policy load: %s", strerror(ENOMEM));
		fclose(f);
		return PL_EXIT_FAIL;
	}
	for (;;) {
		struct pl_rule r;
		struct pl_rule_err e;
		char *expr = NULL;
		int nt, nul = 0, got = read_line(f, line, &nul);

		if (!got)
			break;
		lineno++;
		if (got == -E2BIG || got == -EILSEQ) {
			if (got == -E2BIG)
				pl_err("policy load: %s:%d: line longer than %d bytes", argv[2],
				       lineno, RULE_LINE_MAX - 2);
			else
				pl_err("policy load: %s:%d:%d: a NUL byte (not a text file?)", argv[2],
				       lineno, nul);
			ret = PL_EXIT_USAGE;
			goto out;
		}
		if (got < 0)
			break;	/* ferror() below */
		/* a UTF-8 byte order mark at the start: blanks, so columns stay bytes */
		if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3))
			memset(line, ' ', 3);
		nt = pl_rule_tokenize(line, toks, 256, &e);
		if (nt == 0)
			continue;
		if (nt < 0 || pl_rule_parse(toks, nt, &r, &expr, &e)) {
			pl_err("policy load: %s:%d:%d: %s", argv[2], lineno, e.col, e.msg);
			ret = PL_EXIT_USAGE;
			goto out;
		}
		if (n == PL_POLICY_RULES_MAX) {
			free(expr);
			pl_err("policy load: %s:%d:%d: more than %u rules: at most %u per interface",
			       argv[2], lineno, toks[0].col, PL_POLICY_RULES_MAX, PL_POLICY_RULES_MAX);
			ret = PL_EXIT_USAGE;
			goto out;
		}
		if (n == cap) {
			struct pl_rule *nr;
			struct origin *no;

			cap = cap ? cap * 2 : 256;
			nr = realloc(rules, cap * sizeof(*rules));
			no = realloc(orig, cap * sizeof(*orig));
			if (nr)
				rules = nr;
			if (no)
				orig = no;
			if (!nr || !no) {
				free(expr);
				pl_err("policy load: %s", strerror(ENOMEM));
				ret = PL_EXIT_FAIL;
				goto out;
			}
		}
		orig[n] = (struct origin){ r.id, lineno, toks[0].col, expr };
		rules[n++] = r;
		ntexts += expr != NULL;
	}
	if (ferror(f)) {
		pl_err("policy load: %s: reading '%s': %s", argv[1], argv[2], strerror(errno));
		ret = PL_EXIT_USAGE;
		goto out;
	}
	/* ids given twice: the later line is the error */
	{
		struct origin *o = malloc((n ? n : 1) * sizeof(*o));
		size_t m = 0;

		if (!o) {
			ret = PL_EXIT_FAIL;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (orig[i].id)
				o[m++] = orig[i];
		pl_qsort(o, m, sizeof(*o), origin_cmp);
		for (size_t i = 1; i < m; i++)
			if (o[i].id == o[i - 1].id) {
				pl_err("policy load: %s:%d:%d: rule id %u is given twice (line %d)",
				       argv[2], o[i].line, o[i].col, o[i].id, o[i - 1].line);
				ret = PL_EXIT_USAGE;
				break;
			}
		free(o);
		if (ret)
			goto out;
	}
	ret = open_target("policy load", argv[1], &t);
	if (ret)
		goto out;
	if (pl_policy_rules(&t.p, &old, &nold)) {
		pl_err("policy load: %s: cannot read the current rules", argv[1]);
		ret = PL_EXIT_FAIL;
		goto out;
	}
	texts = calloc(ntexts ? ntexts : 1, sizeof(*texts));
	if (!texts || assign_ids(rules, n, old, nold)) {
		pl_err("policy load: %s", strerror(ENOMEM));
		ret = PL_EXIT_FAIL;
		goto out;
	}
	ntexts = 0;
	for (size_t i = 0; i < n; i++) {
		orig[i].id = rules[i].id;	/* as assigned: errors name rules by it */
		if (orig[i].expr)
			texts[ntexts++] = (struct pl_rule_text){ rules[i].id, orig[i].expr };
	}
	pl_policy_texts_sort(texts, ntexts);
	{
		char why[PL_WHY_LEN * 8];
		int err = pl_policy_commit(&t.p, rules, n, texts, ntexts, why, sizeof(why));

		if (err)
			load_error(argv[2], t.a->ifname, why, orig, n);
		ret = commit_exit(err);
	}
	if (!ret && !pl_g.json)
		printf("%s: %zu rule%s loaded from %s\n", PL_NAME(t.a->ifname), n, n == 1 ? "" : "s",
		       PL_SAFE(argv[2]));
out:
	close_target(&t);
	for (size_t i = 0; i < n; i++)
		free(orig[i].expr);
	free(orig);
	free(texts);	/* its texts are orig's */
	free(line);
	free(rules);
	free(old);
	fclose(f);
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
	struct timespec now;
	bool have_stats = false;
	char line[PL_FILTER_EXPR_MAX + 512];

	clock_gettime(CLOCK_MONOTONIC, &now);
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
		bool hit, lim, keyed;

		if (pl_policy_rule_stats(&t->p, r, &rs))
			memset(&rs, 0, sizeof(rs));
		hit = rs.pkts && rs.last_ns;
		if (hit)
			ago = (double)now.tv_sec + now.tv_nsec / 1e9 - rs.last_ns / 1e9;
		if (ago < 0)	/* a hit just now may be stamped a tick ahead of our clock */
			ago = 0;
		pl_rule_format(r, pl_policy_text(texts, ntexts, r->id), line, sizeof(line));
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
			jw_name_field(w, "redirect", if_indextoname(r->arg, ifn) ? ifn : NULL);
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

static int do_policy_list(int argc, char **argv)
{
	struct pl_attachment *a = NULL;
	struct jw w;
	size_t n = 0;
	int ret;

	if (argc > 2) {
		pl_err("policy list: at most one DEV");
		return PL_EXIT_USAGE;
	}
	ret = pl_need_caps("policy list", PL_NEED_BPF);
	if (!ret)
		ret = pl_select("policy list", argc == 2 ? argv[1] : NULL, &a, &n);
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

int do_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *verb;
	int opt;

	/* -j/-h only before the verb's own words, so rule options pass through */
	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			pl_g.json = true;
			break;
		case 'h':
			policy_usage(stdout);
			return PL_EXIT_OK;
		default:
			fputs(POLICY_USAGE, stderr);
			return PL_EXIT_USAGE;
		}
	}
	verb = optind < argc ? argv[optind] : NULL;
	if (!verb) {
		fputs(POLICY_USAGE, stderr);
		return PL_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	/* a trailing -j / --json on list */
	if (argc > 1 && (!strcmp(argv[argc - 1], "-j") || !strcmp(argv[argc - 1], "--json"))) {
		pl_g.json = true;
		argc--;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			policy_usage(stdout);
			return PL_EXIT_OK;
		}
	if (!strcmp(verb, "help")) {
		policy_usage(stdout);
		return PL_EXIT_OK;
	}
	if (!strcmp(verb, "add"))
		return do_add(argc, argv);
	if (!strcmp(verb, "list"))
		return do_policy_list(argc, argv);
	if (!strcmp(verb, "del"))
		return do_del(argc, argv);
	if (!strcmp(verb, "flush"))
		return do_flush(argc, argv);
	if (!strcmp(verb, "load"))
		return do_load(argc, argv);
	pl_err("policy: what is '%s'? (see pktlens policy --help)", verb);
	return PL_EXIT_USAGE;
}
