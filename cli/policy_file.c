// SPDX-License-Identifier: GPL-2.0
/* Rule sets as text: `policy load` files and the rules of `pktlens apply` configs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pktlens/array.h>

#include "policy_file.h"
#include "policy_rule.h"

/* a rule as `policy list` prints it is at most PL_FILTER_EXPR_MAX + ~200 bytes */
#define RULE_LINE_MAX 8192
#define RULE_TOKS_MAX 256

int pl_ruleset_add_line(struct pl_ruleset *rs, char *line, const char *file, int lineno, int col0,
			char *why, size_t whylen)
{
	struct pl_rule_tok toks[RULE_TOKS_MAX];
	struct pl_rule_err e;
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
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct pl_rule *nr = realloc(rs->rules, cap * sizeof(*nr));
		struct pl_rule_origin *no;

		if (nr)
			rs->rules = nr;
		no = nr ? realloc(rs->orig, cap * sizeof(*no)) : NULL;
		if (!no) {
			free(expr);
			snprintf(why, whylen, "%s", strerror(ENOMEM));
			return -ENOMEM;
		}
		rs->orig = no;
		rs->cap = cap;
	}
	rs->orig[rs->n] = (struct pl_rule_origin){ file, lineno, col0 + toks[0].col - 1, expr };
	rs->rules[rs->n++] = r;
	return 0;
}

int pl_rules_file_each(const char *path, int (*fn)(char *line, int lineno, void *ctx), void *ctx,
		       char *why, size_t whylen)
{
	int lineno = 0, err = 0;
	char *line;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
		return -EIO;
	}
	line = malloc(RULE_LINE_MAX);
	if (!line) {
		fclose(f);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	/* a bounded line: a file without newlines (say /dev/zero) must not eat memory */
	while (!err && fgets(line, RULE_LINE_MAX, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(why, whylen, "%s:%d: line longer than %d bytes", path, lineno,
				 RULE_LINE_MAX - 2);
			err = -EINVAL;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		err = fn(line, lineno, ctx);
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
	struct pl_ruleset *rs;
	const char *path;
	char *why;
	size_t whylen;
};

static int read_line(char *line, int lineno, void *ctx)
{
	struct read_ctx *c = ctx;

	return pl_ruleset_add_line(c->rs, line, c->path, lineno, 1, c->why, c->whylen);
}

int pl_ruleset_read(struct pl_ruleset *rs, const char *path, char *why, size_t whylen)
{
	struct read_ctx c = { rs, path, why, whylen };

	return pl_rules_file_each(path, read_line, &c, why, whylen);
}

void pl_ruleset_free(struct pl_ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->orig[i].expr);
	free(rs->orig);
	free(rs->rules);
	memset(rs, 0, sizeof(*rs));
}

__u32 pl_rules_next_id(const struct pl_rule *rules, size_t n)
{
	__u32 max = 0;

	for (size_t i = 0; i < n; i++)
		max = rules[i].id > max ? rules[i].id : max;
	return max + 1;
}

int pl_rule_text_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule_text *)a)->id, y = ((const struct pl_rule_text *)b)->id;

	return x < y ? -1 : x > y;
}

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* A rule by its content (id zeroed), for matching a set's rules with the running ones. */
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
 * counters carry over), else a new one above every id in use.
 */
static int assign_ids(struct pl_rule *rules, size_t n, const struct pl_rule *old, size_t nold)
{
	struct by_content *c = calloc(nold ? nold : 1, sizeof(*c));
	__u32 next = pl_rules_next_id(old, nold), *ids;
	size_t nids = 0;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < nold; i++) {
		c[i].r = old[i];
		c[i].r.id = 0;
		c[i].id = old[i].id;
	}
	pl_qsort(c, nold, sizeof(*c), content_cmp);
	/* ids given in the set are theirs: an old rule cannot lend such an id to another */
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids) {
		free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		next = rules[i].id >= next ? rules[i].id + 1 : next;
		if (rules[i].id)
			ids[nids++] = rules[i].id;
	}
	pl_qsort(ids, nids, sizeof(*ids), id_cmp);
	for (size_t j = 0; j < nold; j++)
		if (pl_bsearch(&c[j].id, ids, nids, sizeof(*ids), id_cmp))
			c[j].id = 0;
	free(ids);
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
				hit->id = 0;
				break;
			}
		if (!rules[i].id)
			rules[i].id = next++;
	}
	free(c);
	return 0;
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

int pl_ruleset_finish(struct pl_ruleset *rs, const struct pl_rule *old, size_t nold,
		      struct pl_rule_text **texts, size_t *ntexts, char *why, size_t whylen)
{
	struct at *o = malloc((rs->n ? rs->n : 1) * sizeof(*o));
	struct pl_rule_text *t;
	size_t m = 0, nt = 0;
	int err = 0;

	*texts = NULL;
	*ntexts = 0;
	if (!o)
		goto nomem;
	/* ids given twice: the later line is the error */
	for (size_t i = 0; i < rs->n; i++)
		if (rs->rules[i].id)
			o[m++] = (struct at){ rs->rules[i].id, i };
	pl_qsort(o, m, sizeof(*o), at_cmp);
	for (size_t i = 1; i < m && !err; i++)
		if (o[i].id == o[i - 1].id) {
			const struct pl_rule_origin *a = &rs->orig[o[i].i], *b = &rs->orig[o[i - 1].i];

			snprintf(why, whylen, "%s:%d:%d: rule id %u is given twice (%s%sline %d)",
				 a->file, a->line, a->col, o[i].id, strcmp(a->file, b->file) ? b->file : "",
				 strcmp(a->file, b->file) ? " " : "", b->line);
			err = -EINVAL;
		}
	free(o);
	if (err)
		return err;
	if (assign_ids(rs->rules, rs->n, old, nold))
		goto nomem;
	for (size_t i = 0; i < rs->n; i++)
		nt += rs->orig[i].expr != NULL;
	t = calloc(nt ? nt : 1, sizeof(*t));
	if (!t)
		goto nomem;
	nt = 0;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->orig[i].expr)
			t[nt++] = (struct pl_rule_text){ rs->rules[i].id, rs->orig[i].expr };
	pl_qsort(t, nt, sizeof(*t), pl_rule_text_cmp);
	*texts = t;
	*ntexts = nt;
	return 0;
nomem:
	snprintf(why, whylen, "%s", strerror(ENOMEM));
	return -ENOMEM;
}
