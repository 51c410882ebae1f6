// SPDX-License-Identifier: GPL-2.0
/* Rule sets as text: `policy load` files and the rules of `pktlens apply` configs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pktlens/array.h>

#include "policy_file.h"
#include "policy_rule.h"
#include "util.h"
#include "../loader/ruleset.h"

/*
 * a rule as `policy list` prints it is at most PL_FILTER_EXPR_MAX + ~200
 * bytes; a line holds RULE_LINE_MAX bytes besides its end (LF or CR LF)
 */
#define RULE_LINE_MAX 8190
#define RULE_TOKS_MAX 256

int pl_rule_list_add_line(struct pl_rule_list *rl, char *line, const char *file, int lineno,
			  int col0, char *why, size_t whylen)
{
	struct pl_rule_tok toks[RULE_TOKS_MAX];
	struct pl_rule_err e = { 0 };
	struct pl_rule r;
	char *expr = NULL;
	int nt;

	nt = pl_rule_tokenize(line, toks, RULE_TOKS_MAX, &e);
	if (nt == 0)
		return 0;
	if (nt < 0 || pl_rule_parse(toks, nt, &r, &expr, &e)) {
		snprintf(why, whylen, "%s:%d:%d: %s", file, lineno, col0 + e.col - 1, e.msg);
		return -EINVAL;
	}
	if (rl->n == PL_POLICY_RULES_MAX) {
		free(expr);
		snprintf(why, whylen, "%s:%d:%d: more than %u rules: at most %u per interface", file,
			 lineno, col0 + toks[0].col - 1, PL_POLICY_RULES_MAX, PL_POLICY_RULES_MAX);
		return -EINVAL;
	}
	if (rl->n == rl->cap) {
		size_t cap = rl->cap ? rl->cap * 2 : 64;
		struct pl_rule *nr = realloc(rl->rules, cap * sizeof(*nr));
		struct pl_rule_origin *no;

		if (nr)
			rl->rules = nr;
		no = nr ? realloc(rl->orig, cap * sizeof(*no)) : NULL;
		if (!no) {
			free(expr);
			snprintf(why, whylen, "%s", strerror(ENOMEM));
			return -ENOMEM;
		}
		rl->orig = no;
		rl->cap = cap;
	}
	rl->orig[rl->n] = (struct pl_rule_origin){ r.id, file, lineno, col0 + toks[0].col - 1, 0, expr };
	for (int i = 0; i + 1 < nt; i++)
		if (!strcmp(toks[i].s, "--redirect"))
			rl->orig[rl->n].redirect_col = col0 + toks[i + 1].col - 1;
	rl->rules[rl->n++] = r;
	return 0;
}

/*
 * The next line of @f into @line (RULE_LINE_MAX + 3 bytes: the line, its CR
 * LF and a NUL), NUL-terminated: 1, or 0 at the end of the file. Bounded, so
 * a file without newlines (say /dev/zero) cannot eat memory; -E2BIG for a
 * longer line, -EILSEQ for a NUL byte (at *@nul, 1-based), -EIO for a read
 * error.
 */
static int next_line(FILE *f, char *line, int *nul)
{
	int c, len = 0;

	while ((c = getc(f)) != EOF) {
		if (c == 0) {
			*nul = len + 1;
			return -EILSEQ;
		}
		/* past the limit only the line's end: LF, or CR if LF follows */
		if (len >= RULE_LINE_MAX && c != '\n' && (len > RULE_LINE_MAX || c != '\r'))
			return -E2BIG;
		line[len++] = (char)c;
		if (c == '\n')
			break;
	}
	line[len] = 0;
	if (ferror(f))
		return -EIO;
	return len ? 1 : 0;
}

/* @path opened for reading: a regular file of at most @max bytes unless @max is 0 */
static FILE *open_rules(const char *path, size_t max, char *why, size_t whylen)
{
	struct stat st;
	FILE *f;

	if (!max) {
		f = fopen(path, "r");
		if (!f)
			snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
		return f;
	}
	f = pl_fopen_nowait(path, &st);
	if (!f)
		snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, whylen, "'%s': not a regular file", path);
	else if ((unsigned long long)st.st_size > max)
		snprintf(why, whylen, "'%s': larger than %zu %s: not a rules file", path,
			 max % (1U << 20) ? max : max >> 20, max % (1U << 20) ? "bytes" : "MiB");
	else
		return f;
	if (f)
		fclose(f);
	return NULL;
}

int pl_rules_file_each(const char *path, size_t regular_max,
		       int (*fn)(char *line, int lineno, void *ctx), void *ctx, char *why,
		       size_t whylen)
{
	int lineno = 0, err = 0, got, nul = 0;
	char *line;
	FILE *f;

	f = open_rules(path, regular_max, why, whylen);
	if (!f)
		return -EIO;
	line = malloc(RULE_LINE_MAX + 3);
	if (!line) {
		fclose(f);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	while (!err && (got = next_line(f, line, &nul)) != 0) {
		lineno++;
		if (got == -E2BIG) {
			snprintf(why, whylen, "%s:%d:%d: line longer than %d bytes", path, lineno,
				 RULE_LINE_MAX + 1, RULE_LINE_MAX);
			err = -EINVAL;
		} else if (got == -EILSEQ) {
			snprintf(why, whylen, "%s:%d:%d: a NUL byte (not a text file?)", path, lineno,
				 nul);
			err = -EINVAL;
		} else if (got < 0) {
			break;	/* ferror() below */
		} else {
			/* a UTF-8 byte order mark at the start: blanks, so columns stay bytes */
			if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3))
				memset(line, ' ', 3);
			line[strcspn(line, "\n")] = '\0';
			err = fn(line, lineno, ctx);
		}
	}
	if (!err && ferror(f)) {
		snprintf(why, whylen, "reading '%s': %s", path, strerror(errno));
		err = -EIO;
	}
	free(line);
	fclose(f);
	return err;
}

struct read_ctx {
	struct pl_rule_list *rl;
	const char *path;
	char *why;
	size_t whylen;
};

bool pl_rules_line_says_empty(const char *line)
{
	size_t name;

	line += strspn(line, " \t\r");
	if (*line++ != '#')
		return false;
	line += strspn(line, " \t");
	name = strcspn(line, " \t\r:");
	if (!name || strncmp(line + name, ": 0 rules", 9))
		return false;
	line += name + 9;
	return line[strspn(line, " \t\r")] == '\0';
}

static int read_line(char *line, int lineno, void *ctx)
{
	struct read_ctx *c = ctx;

	if (pl_rules_line_says_empty(line))
		c->rl->says_empty = true;

	return pl_rule_list_add_line(c->rl, line, c->path, lineno, 1, c->why, c->whylen);
}

int pl_rule_list_read(struct pl_rule_list *rl, const char *path, char *why, size_t whylen)
{
	struct read_ctx c = { rl, path, why, whylen };

	return pl_rules_file_each(path, 0, read_line, &c, why, whylen);
}

void pl_rule_list_free(struct pl_rule_list *rl)
{
	for (size_t i = 0; i < rl->n; i++)
		free(rl->orig[i].expr);
	free(rl->orig);
	free(rl->rules);
	memset(rl, 0, sizeof(*rl));
}

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

__u32 pl_rules_next_id(const struct pl_rule *rules, size_t n)
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

/* A rule by its content (id and counter key zeroed), for matching a set's rules with the running ones. */
struct by_content {
	struct pl_rule r;
	__u32 id;		/* 0 once taken */
	__u32 ctr;		/* the running rule's counter key */
	size_t line;		/* 1 + the set's rule that takes its id with other content, else 0 */
};

/* A rule of the set given its id with --id: the id and the rule's place. */
struct given_id {
	__u32 id;
	size_t i;
};

static int given_id_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct given_id *)a)->id, y = ((const struct given_id *)b)->id;

	return x < y ? -1 : x > y;
}

static int content_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct by_content *)a)->r, &((const struct by_content *)b)->r,
		      sizeof(struct pl_rule));
}

/*
 * Rules without --id take the id of an identical rule already there (so its
 * counters carry over; where a rule of the set gives that id with other
 * content, the counters and limit state carry over to another id, and that
 * rule counts afresh), else the lowest id that neither the set nor a
 * running rule uses, and only when none is left below PL_POLICY_RULES_MAX
 * one of a running rule the set replaces (with counters of its own). So
 * ids stay in range whatever the loads, and `policy list` output loads back.
 */
/* A rule of the set: its direction, priority, place in the list and id. */
struct placed {
	__u32 dir, prio, id;
	size_t i;
};

static int placed_cmp(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * The rules of @rules (@n) by direction and priority, each group in list
 * order (malloc'd), or NULL.
 */
static struct placed *by_group(const struct pl_rule *rules, size_t n)
{
	struct placed *p = malloc((n ? n : 1) * sizeof(*p));

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = (struct placed){ rules[i].dir, rules[i].prio, rules[i].id, i };
	pl_qsort(p, n, sizeof(*p), placed_cmp);
	return p;
}

static bool same_group(const struct placed *a, const struct placed *b)
{
	return a->dir == b->dir && a->prio == b->prio;
}

/* Whether the rules of each direction and priority have ids rising in list order; -ENOMEM. */
static int in_list_order(const struct pl_rule *rules, size_t n)
{
	struct placed *p = by_group(rules, n);
	int ok = 1;

	if (!p)
		return -ENOMEM;
	for (size_t k = 1; k < n && ok; k++)
		ok = !same_group(&p[k], &p[k - 1]) || p[k].id > p[k - 1].id;
	free(p);
	return ok;
}

/* Whether the ids given (@given) rise in list order within each direction and priority. */
static bool given_rise(const struct pl_rule *rules, size_t n, const bool *given)
{
	struct placed *p = by_group(rules, n);
	const struct placed *prev = NULL;
	bool ok = p != NULL;

	for (size_t k = 0; ok && k < n; k++) {
		if (prev && !same_group(prev, &p[k]))
			prev = NULL;
		if (!given[p[k].i])
			continue;
		ok = !prev || p[k].id > prev->id;
		prev = &p[k];
	}
	free(p);
	return ok;
}

/*
 * Rules without a given id numbered afresh so that each direction and
 * priority runs in list order: each takes the lowest id above the rule
 * before it in its group that no other rule has, below the next given id
 * of its group. Each keeps the counter key of the running rule it matched
 * (@carry), the others count afresh. 0, or -ERANGE with the index of a
 * rule no id fits in @bad[0] (the given ids of its group leave no room),
 * the ids below and above it in @bad[1], @bad[2] (0: none).
 */
static int renumber(struct pl_rule *rules, size_t n, const bool *given, const __u32 *carry,
		    size_t *bad)
{
	struct placed *p = by_group(rules, n);
	/* ids taken, one bit each (1..PL_POLICY_RULES_MAX): 32 KiB */
	uint64_t *used = calloc(PL_POLICY_RULES_MAX / 64 + 1, sizeof(*used));
	size_t *at = calloc(n ? n : 1, sizeof(*at));	/* list index -> place in p */
	__u32 *high = calloc(n ? n : 1, sizeof(*high));	/* the next given id of its group */
	int err = 0;

	if (!p || !used || !at || !high) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t k = n; k-- > 0;) {
		at[p[k].i] = k;
		high[k] = k + 1 < n && same_group(&p[k + 1], &p[k]) ?
			  (given[p[k + 1].i] ? rules[p[k + 1].i].id : high[k + 1]) :
			  PL_POLICY_RULES_MAX + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (given[i])
			used[rules[i].id / 64] |= 1ULL << (rules[i].id % 64);
	/* in list order, so a rule's group predecessor has its id when the rule takes one */
	for (size_t i = 0; i < n && !err; i++) {
		size_t k = at[i];
		__u32 low = 0, id;

		if (given[i])
			continue;
		if (k > 0 && same_group(&p[k - 1], &p[k]))
			low = rules[p[k - 1].i].id;
		for (id = low + 1; id < high[k] && (used[id / 64] >> (id % 64) & 1); id++)
			if (used[id / 64] == ~0ULL)
				id |= 63;	/* a word of taken ids at once */
		if (id >= high[k]) {
			bad[0] = i;
			bad[1] = low;
			bad[2] = high[k] > PL_POLICY_RULES_MAX ? 0 : high[k];
			err = -ERANGE;
			break;
		}
		rules[i].id = id;
		rules[i].ctr = carry[i] ? carry[i] : PL_RULE_CTR_NEW;
		used[id / 64] |= 1ULL << (id % 64);
	}
out:
	free(p);
	free(used);
	free(at);
	free(high);
	return err;
}

/* renumber(), or where the given ids leave no room the ids as they are (policy load). */
static int renumber_or_keep(struct pl_rule *rules, size_t n, const bool *given, const __u32 *carry,
			    size_t *bad)
{
	__u32 *ids = malloc((n ? n : 1) * sizeof(*ids)), *ctrs = malloc((n ? n : 1) * sizeof(*ctrs));
	int err = -ENOMEM;

	if (ids && ctrs) {
		for (size_t i = 0; i < n; i++)
			ids[i] = rules[i].id, ctrs[i] = rules[i].ctr;
		err = renumber(rules, n, given, carry, bad);
		if (err == -ERANGE) {
			for (size_t i = 0; i < n; i++)
				rules[i].id = ids[i], rules[i].ctr = ctrs[i];
			err = 0;
		}
	}
	free(ids);
	free(ctrs);
	return err;
}

static int assign_ids(struct pl_rule *rules, size_t n, const struct pl_rule *old, size_t nold,
		      bool in_order, size_t *bad)
{
	struct by_content *c = calloc(nold ? nold : 1, sizeof(*c));
	__u32 *taken = calloc(n + nold + 1, sizeof(*taken)), *was = NULL, next = 1;
	__u32 *carry = calloc(n ? n : 1, sizeof(*carry));
	bool *given = calloc(n ? n : 1, sizeof(*given));
	struct given_id *gv = NULL;
	size_t ntaken = 0, ngv = 0;
	int ordered, err = 0;

	if (!c || !taken || !carry || !given) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		given[i] = rules[i].id != 0;
	for (size_t i = 0; i < nold; i++) {
		c[i].r = old[i];
		c[i].r.id = 0;
		c[i].r.ctr = 0;
		c[i].id = old[i].id;
		c[i].ctr = old[i].ctr;
	}
	pl_qsort(c, nold, sizeof(*c), content_cmp);
	/* ids given in the set are theirs: an old rule cannot lend such an id to another */
	for (size_t i = 0; i < n; i++)
		if (rules[i].id)
			taken[ntaken++] = rules[i].id;
	pl_qsort(taken, ntaken, sizeof(*taken), id_cmp);
	/*
	 * a running rule whose id a rule of the set gives: that rule's own when
	 * they are equal; else an equal rule without --id takes its counters
	 * and limit state (under an id of its own) and the rule that gives the
	 * id starts at zero, as a rule with other content
	 */
	gv = calloc(n ? n : 1, sizeof(*gv));
	if (!gv) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (rules[i].id)
			gv[ngv++] = (struct given_id){ rules[i].id, i };
	pl_qsort(gv, ngv, sizeof(*gv), given_id_cmp);
	for (size_t j = 0; j < nold; j++) {
		struct given_id *g = pl_bsearch(&(struct given_id){ c[j].id, 0 }, gv, ngv, sizeof(*gv),
						given_id_cmp);
		struct pl_rule r;

		if (!g)
			continue;
		r = rules[g->i];
		r.id = r.ctr = 0;
		if (!memcmp(&r, &c[j].r, sizeof(r)))
			c[j].id = 0;
		else
			c[j].line = g->i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct by_content key = { .r = rules[i] }, *hit, *pick = NULL;

		if (rules[i].id)
			continue;
		hit = pl_bsearch(&key, c, nold, sizeof(*c), content_cmp);
		while (hit && hit > c && !content_cmp(hit - 1, &key))
			hit--;
		/* one whose id is free first: the rule keeps id and counters */
		for (; hit && hit < c + nold && !content_cmp(hit, &key); hit++)
			if (hit->id && (!pick || pick->line))
				pick = hit;
		if (!pick)
			continue;
		carry[i] = pick->ctr;
		if (pick->line) {
			rules[i].ctr = pick->ctr;	/* to another id (assign_ctrs()) */
			rules[pick->line - 1].ctr = PL_RULE_CTR_NEW;
		} else {
			rules[i].id = pick->id;
			taken[ntaken++] = pick->id;
		}
		pick->id = 0;
	}
	/* the rest: first ids nothing uses, then those of running rules that go */
	was = malloc((nold ? nold : 1) * sizeof(*was));
	if (!was) {
		err = -ENOMEM;
		goto out;
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
			if (pass && !carry[i])
				rules[i].ctr = PL_RULE_CTR_NEW;	/* another rule had this id */
		}
		/* pass 1 must not hand out an id pass 0 gave */
		for (size_t i = 0; i < n && !pass; i++)
			if (rules[i].id && !pl_bsearch(&rules[i].id, taken, ntaken, sizeof(*taken), id_cmp))
				taken[ntaken++] = rules[i].id;
		pl_qsort(taken, ntaken, sizeof(*taken), id_cmp);
	}
	/*
	 * A config's rules run in list order (its given ids were checked to rise);
	 * a rules file's too where the ids it gives rise in list order and leave
	 * room between them, else its given ids decide and the other rules keep
	 * the ids given above (policy load, as before).
	 */
	ordered = in_list_order(rules, n);
	if (ordered < 0)
		err = ordered;
	else if (ordered)
		err = 0;
	else if (in_order)
		err = renumber(rules, n, given, carry, bad);
	else
		err = given_rise(rules, n, given) ? renumber_or_keep(rules, n, given, carry, bad) : 0;
out:
	free(c);
	free(gv);
	free(was);
	free(taken);
	free(carry);
	free(given);
	return err;
}

/* By id, then by position: the later of two rules with one id comes second. */
struct at {
	__u32 id;
	size_t i;
};

static int at_cmp(const void *a, const void *b)
{
	const struct at *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * A config's rules run in the order listed within a direction and priority
 * (first match wins), and a priority's rules run by id: ids given with
 * --id must rise in list order there. 0, or -EINVAL with @why naming the
 * later of two rules that would run the other way round.
 */
static int given_in_order(const struct pl_rule_list *rl, char *why, size_t whylen)
{
	struct placed *p = by_group(rl->rules, rl->n);
	const struct placed *prev = NULL;
	int err = 0;

	if (!p) {
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (size_t k = 0; k < rl->n && !err; k++) {
		if (prev && !same_group(prev, &p[k]))
			prev = NULL;
		if (!rl->rules[p[k].i].id)
			continue;
		if (prev && p[k].id < prev->id) {
			const struct pl_rule_origin *a = &rl->orig[p[k].i], *b = &rl->orig[prev->i];

			snprintf(why, whylen, "%s:%d:%d: rule id %u is listed after rule id %u (%s%sline %d) "
				 "of the same priority, %u, but would run before it (ids run in order "
				 "within a priority): list it first, or give it an id above %u or "
				 "another --prio", a->file, a->line, a->col, p[k].id, prev->id,
				 strcmp(a->file, b->file) ? b->file : "", strcmp(a->file, b->file) ? " " : "",
				 b->line, p[k].prio, prev->id);
			err = -EINVAL;
		}
		prev = &p[k];
	}
	free(p);
	return err;
}

/*
 * A rule without --id that runs before a rule listed above it in its
 * direction and priority (the ids given leave it no id after that one) into
 * @rl->note. @given: the ids the lines gave (0: none).
 */
static int note_out_of_order(struct pl_rule_list *rl, const __u32 *given)
{
	struct placed *p = by_group(rl->rules, rl->n);
	const struct placed *all = NULL, *free_ = NULL;	/* the highest ids listed above */

	if (!p)
		return -ENOMEM;
	rl->note[0] = '\0';
	for (size_t k = 0; k < rl->n && !rl->note[0]; k++) {
		const struct placed *a = &p[k], *b;

		if (k && !same_group(a, &p[k - 1]))
			all = free_ = NULL;
		/* given ids out of list order decide by themselves, as they were given */
		b = given[a->i] ? free_ : all;
		if (!b || b->id < a->id) {
			if (!all || a->id > all->id)
				all = a;
			if (!given[a->i] && (!free_ || a->id > free_->id))
				free_ = a;
			continue;
		}
		snprintf(rl->note, sizeof(rl->note), "%s:%d:%d: rule id %u runs before rule id %u "
			 "(line %d), listed above it in priority %u: the ids given leave no room to "
			 "run them in list order (ids run in order within a priority); give them ids "
			 "further apart, or another --prio", rl->orig[a->i].file, rl->orig[a->i].line,
			 rl->orig[a->i].col, a->id, b->id, rl->orig[b->i].line, a->prio);
	}
	free(p);
	return 0;
}

int pl_rule_list_finish(struct pl_rule_list *rl, const struct pl_rule *old, size_t nold,
			struct pl_rule_text **texts, size_t *ntexts, char *why, size_t whylen)
{
	__u32 *given = NULL;
	struct at *o = malloc((rl->n ? rl->n : 1) * sizeof(*o));
	struct pl_rule_text *t;
	size_t m = 0, nt = 0, bad[3] = { 0 };
	int err = 0;

	*texts = NULL;
	*ntexts = 0;
	if (!o)
		goto nomem;
	/* ids given twice: the later line is the error */
	for (size_t i = 0; i < rl->n; i++)
		if (rl->rules[i].id)
			o[m++] = (struct at){ rl->rules[i].id, i };
	pl_qsort(o, m, sizeof(*o), at_cmp);
	for (size_t i = 1; i < m && !err; i++)
		if (o[i].id == o[i - 1].id) {
			const struct pl_rule_origin *a = &rl->orig[o[i].i], *b = &rl->orig[o[i - 1].i];

			snprintf(why, whylen, "%s:%d:%d: rule id %u is given twice (%s%sline %d)",
				 a->file, a->line, a->col, o[i].id, strcmp(a->file, b->file) ? b->file : "",
				 strcmp(a->file, b->file) ? " " : "", b->line);
			err = -EINVAL;
		}
	free(o);
	if (err)
		return err;
	if (rl->in_order && (err = given_in_order(rl, why, whylen)))
		return err;
	given = malloc((rl->n ? rl->n : 1) * sizeof(*given));
	if (!given)
		goto nomem;
	for (size_t i = 0; i < rl->n; i++)
		given[i] = rl->rules[i].id;
	err = assign_ids(rl->rules, rl->n, old, nold, rl->in_order, bad);
	if (!err && !rl->in_order)
		err = note_out_of_order(rl, given);
	free(given);
	if (err == -ERANGE) {
		const struct pl_rule_origin *a = &rl->orig[bad[0]];
		char room[64];

		if (bad[1] && bad[2])
			snprintf(room, sizeof(room), "between rule ids %zu and %zu", bad[1], bad[2]);
		else if (bad[2])
			snprintf(room, sizeof(room), "below rule id %zu", bad[2]);
		else
			snprintf(room, sizeof(room), "above rule id %zu", bad[1]);
		snprintf(why, whylen, "%s:%d:%d: no rule id is free %s, the rules listed around it "
			 "in priority %u (ids run in order within a priority): give it an --id, or "
			 "them ids further apart", a->file, a->line, a->col, room, rl->rules[bad[0]].prio);
		return -EINVAL;
	}
	if (err)
		goto nomem;
	for (size_t i = 0; i < rl->n; i++)
		nt += rl->orig[i].expr != NULL;
	t = calloc(nt ? nt : 1, sizeof(*t));
	if (!t)
		goto nomem;
	nt = 0;
	for (size_t i = 0; i < rl->n; i++) {
		rl->orig[i].id = rl->rules[i].id;	/* as assigned: errors name rules by it */
		if (rl->orig[i].expr)
			t[nt++] = (struct pl_rule_text){ rl->rules[i].id, rl->orig[i].expr };
	}
	pl_policy_texts_sort(t, nt);
	*texts = t;
	*ntexts = nt;
	return 0;
nomem:
	snprintf(why, whylen, "%s", strerror(ENOMEM));
	return -ENOMEM;
}

/*
 * Whether rules @a and @b count against one limit of the kinds the loader
 * checks: @kind 0 rules with an expression, 1 list rules, 2 address rules
 * of one field (pl_policy_commit()'s checks).
 */
static bool same_limit(const struct pl_rule *a, const struct pl_rule *b, int kind)
{
	if (a->dir != b->dir)
		return false;
	if (kind == 0)
		return (a->match & PL_M_EXPR) && (b->match & PL_M_EXPR);
	if (kind == 1)
		return pl_rule_lpm_field(a) < 0 && pl_rule_lpm_field(b) < 0;
	return pl_rule_lpm_field(a) >= 0 && pl_rule_lpm_field(a) == pl_rule_lpm_field(b);
}

static int rule_id_cmp(const void *a, const void *b)
{
	const struct pl_rule *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * A limit error names the first rule past the limit in id order; in a file
 * that is the first past it in the file's order (kept rules keep their ids,
 * new ones take free ids, so the two orders differ): the index in rl->orig
 * of that rule, or @at when @msg is no limit error. The rules are in id
 * order then (pl_policy_commit() sorts them before its checks).
 */
static size_t past_limit(const struct pl_rule_list *rl, size_t at, const char *msg)
{
	struct pl_rule key = { .id = rl->orig[at].id };
	const struct pl_rule *r, *x;
	size_t k = 0, seen = 0;
	int kind;

	if (strstr(msg, "rules with an expression"))
		kind = 0;
	else if (strstr(msg, "rules with ports, protocol, VLAN"))
		kind = 1;
	else if (strstr(msg, "rules on a ") && strstr(msg, " address alone"))
		kind = 2;
	else
		return at;
	r = pl_bsearch(&key, rl->rules, rl->n, sizeof(*r), rule_id_cmp);
	if (!r || !same_limit(r, r, kind))
		return at;
	for (size_t i = 0; i < rl->n; i++)
		k += same_limit(&rl->rules[i], r, kind) && rl->rules[i].id <= r->id;
	for (size_t i = 0; i < rl->n; i++) {
		key.id = rl->orig[i].id;
		x = pl_bsearch(&key, rl->rules, rl->n, sizeof(*x), rule_id_cmp);
		if (!x)
			return at;
		if (same_limit(x, r, kind) && ++seen == k)
			return i;
	}
	return at;
}

const char *pl_rule_list_locate(const struct pl_rule_list *rl, const char *why, char *buf,
				size_t len)
{
	unsigned int id;
	int used = 0;

	if (sscanf(why, "rule %u: %n", &id, &used) != 1 || !used)
		return NULL;
	for (size_t i = 0; i < rl->n; i++)
		if (rl->orig[i].id == id) {
			i = past_limit(rl, i, why + used);
			snprintf(buf, len, "%s:%d:%d: %s", rl->orig[i].file, rl->orig[i].line,
				 rl->orig[i].col, why + used);
			return buf;
		}
	return NULL;
}
