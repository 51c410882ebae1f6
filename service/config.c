// SPDX-License-Identifier: GPL-2.0
/*
 * The service config: YAML through libyaml's document loader (a node tree
 * with the line and column of every node), then one walk that knows every
 * key. Nothing here touches the kernel except the interface lookups of
 * `--redirect DEV2` rules (see check_rules()).
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "../cli/opt.h"
#include "../cli/policy_file.h"
#include "../cli/policy_rule.h"
#include "../cli/trigger.h"
#include "../cli/util.h"
#include "../pcap/cbpf.h"
#include "../export/ipfix.h"
#include "../export/serve.h"
#include "../loader/xdp_multi.h"

#define CONFIG_SIZE_MAX (4 << 20)	/* a config is small; a huge one is a mistake */
/* A config nests four levels (top, interfaces, an entry, its rules): deeper is a mistake. */
#define CONFIG_DEPTH_MAX 16
/*
 * Anchors and aliases (&name, *name) share rules and entries; bounded, so
 * that aliases of aliases cannot make a small file a huge config, and
 * libyaml's loader, which looks each alias up among all anchors, stays fast.
 */
#define CONFIG_ANCHORS_MAX 1024
#define CONFIG_ALIASES_MAX 65536
#define CONFIG_EXPANDED_MAX 1048576	/* nodes the aliases stand for, all told */
/* rules (from lists and files) and rules-file bytes read, all told: files are no nodes */
#define CONFIG_RULES_MAX CONFIG_EXPANDED_MAX
#define CONFIG_RULE_BYTES_MAX (16 * CONFIG_SIZE_MAX)
/*
 * Comparisons of names and namespaces spent finding shadowed entries
 * (find_shadows()): each entry against every earlier one is quadratic, and a
 * 4 MiB config of 200,000 entries took hours to load.
 */
#define CONFIG_SHADOW_WORK_MAX (1 << 22)

struct ctx {
	const char *path;
	char dir[PATH_MAX];	/* the config's directory, for relative rules-file paths */
	yaml_document_t doc;
	struct pl_config *c;
	char *why;
	size_t whylen;
	bool interfaces;	/* the config said which (`interfaces: []` for none) */
	size_t rules, rule_bytes;	/* CONFIG_RULES_MAX, CONFIG_RULE_BYTES_MAX */
	struct built *built;	/* expressions already built: a set, open addressing */
	size_t nbuilt, built_cap;
};

struct built {
	uint64_t hash;
	const char *expr;	/* an entry's own string, freed with the config */
};

/* "FILE:LINE:COL: what" for node @n; -EINVAL. */
__attribute__((format(printf, 3, 4)))
static int at(struct ctx *x, const yaml_node_t *n, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	len = (size_t)snprintf(x->why, x->whylen, "%s:%zu:%zu: ", x->path, n->start_mark.line + 1,
			       n->start_mark.column + 1);
	if (len < x->whylen) {
		va_start(ap, fmt);
		vsnprintf(x->why + len, x->whylen - len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int nomem(struct ctx *x)
{
	snprintf(x->why, x->whylen, "%s: %s", x->path, strerror(ENOMEM));
	return -ENOMEM;
}

static yaml_node_t *node(struct ctx *x, int i)
{
	return yaml_document_get_node(&x->doc, i);
}

static const char *kind(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? "a value" : n->type == YAML_SEQUENCE_NODE ? "a list" :
	       "a mapping";
}

/* A plain empty value, ~ or null: YAML's null. */
static bool is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static bool is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
		!strcmp(v, "NULL"));
}

/* The text of a scalar @n (the value of @key). */
static int scalar(struct ctx *x, const yaml_node_t *n, const char *key, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return at(x, n, "%s: expected a value, not %s", key, kind(n));
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return at(x, n, "%s: contains a NUL byte", key);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

/* Column of the first character of a scalar's text (after an opening quote). */
static int text_col(const yaml_node_t *n)
{
	bool quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		      n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;

	return (int)n->start_mark.column + 1 + quoted;
}

static int str_dup(struct ctx *x, const yaml_node_t *n, const char *key, char **out)
{
	const char *v = NULL;
	int err = scalar(x, n, key, &v);

	if (err)
		return err;
	free(*out);
	*out = strdup(v);
	return *out ? 0 : nomem(x);
}

static int number(struct ctx *x, const yaml_node_t *n, const char *key, uint32_t min, uint32_t max,
		  uint32_t *out)
{
	unsigned long long v;
	const char *s = NULL;
	char *end;
	int err = scalar(x, n, key, &s);

	if (err)
		return err;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *s == '+' || *s == ' ' || *end || errno || v < min || v > max)
		return at(x, n, "%s: '%s' is not a number from %u to %u", key, s, min, max);
	*out = (uint32_t)v;
	return 0;
}

/* The index of @s in @words (NULL-terminated), -1 when it is none of them. */
static int word_index(const char *s, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return i;
	return -1;
}

/* @s is one of @words (NULL-terminated): its index. */
static int one_of(struct ctx *x, const yaml_node_t *n, const char *key, const char *const *words,
		  int *out)
{
	char list[256] = "";
	const char *s = NULL;
	int err = scalar(x, n, key, &s);

	if (err)
		return err;
	if ((*out = word_index(s, words)) >= 0)
		return 0;
	for (int i = 0; words[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i ? (words[i + 1] ? ", " : " or ") : "", words[i]);
	return at(x, n, "%s: '%s' is not %s", key, s, list);
}

/* YAML's booleans (1.1: true, yes, on and false, no, off, in lower, Title or UPPER case). */
static int boolean(struct ctx *x, const yaml_node_t *n, const char *key, bool *out)
{
	static const char *const words[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off",
					     "OFF", "true", "True", "TRUE", "yes", "Yes", "YES", "on",
					     "On", "ON", NULL };
	const char *s = NULL;
	int err = scalar(x, n, key, &s), i;

	if (err)
		return err;
	if ((i = word_index(s, words)) < 0)
		return at(x, n, "%s: '%s' is not true or false", key, s);
	*out = i >= 9;	/* the first nine say false */
	return 0;
}

/* A value or a list of values: each appended to *out (which only str_list() fills). */
static int str_list(struct ctx *x, const yaml_node_t *n, const char *key, char ***out,
		    size_t *nout)
{
	const yaml_node_item_t *it, *start = NULL, *top = NULL;
	int single = 0;

	if (n->type == YAML_MAPPING_NODE)
		return at(x, n, "%s: expected a value or a list of values, not a mapping", key);
	if (n->type == YAML_SEQUENCE_NODE) {
		start = n->data.sequence.items.start;
		top = n->data.sequence.items.top;
	} else {
		single = 1;
	}
	for (it = start; single || it < top; it++) {
		const yaml_node_t *v = single ? n : node(x, *it);
		char **p;
		int err;

		single = 0;
		p = *out;
		/* room for twice as many whenever the count reaches a power of two, as add_rule() */
		if (!(*nout & (*nout - 1))) {
			p = realloc(*out, (*nout ? 2 * *nout : 1) * sizeof(*p));
			if (!p)
				return nomem(x);
			*out = p;
		}
		p[*nout] = NULL;
		err = str_dup(x, v, key, &p[*nout]);
		if (err)
			return err;
		(*nout)++;
		if (!start)
			break;
	}
	return 0;
}

/* The node of value @k of @n as str_list() read it (errors point at it, not at the list). */
static const yaml_node_t *item(struct ctx *x, const yaml_node_t *n, size_t k)
{
	return n->type == YAML_SEQUENCE_NODE ? node(x, n->data.sequence.items.start[k]) : n;
}

/*
 * Walk mapping @n, calling @fn for each key in @keys (NULL-terminated):
 * keys must be values, known, and given once.
 */
typedef int (*key_fn)(struct ctx *x, const char *key, yaml_node_t *val, void *obj);

static int mapping(struct ctx *x, const yaml_node_t *n, const char *what, const char *const *keys,
		   key_fn fn, void *obj)
{
	const yaml_node_pair_t *p, *q;

	if (n->type != YAML_MAPPING_NODE)
		return at(x, n, "%s: expected a mapping (key: value), not %s", what, kind(n));
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(x, p->key), *v = node(x, p->value);
		const char *name;
		size_t i;
		int err;

		if (k->type != YAML_SCALAR_NODE)
			return at(x, k, "%s: a key must be a word, not %s", what, kind(k));
		name = (const char *)k->data.scalar.value;
		if (strlen(name) != k->data.scalar.length)
			return at(x, k, "%s: a key contains a NUL byte", what);
		for (q = n->data.mapping.pairs.start; q < p; q++)
			if (!strcmp((const char *)node(x, q->key)->data.scalar.value, name))
				return at(x, k, "%s: '%s' is given twice (line %zu)", what, name,
					  node(x, q->key)->start_mark.line + 1);
		for (i = 0; keys[i] && strcmp(keys[i], name); i++)
			;
		if (!keys[i]) {
			char list[512] = "";

			for (i = 0; keys[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", keys[i]);
			return at(x, k, "%s: unknown key '%s' (known: %s)", what, name, list);
		}
		err = fn(x, name, v, obj);
		if (err)
			return err;
	}
	return 0;
}

/* ---- probes: [tcp, drops] ---- */

static int probes(struct ctx *x, const yaml_node_t *n, const char *key, unsigned *out)
{
	char **words = NULL;
	size_t nw = 0;
	int err = 0;

	*out = 0;
	if (is_null(n))
		return 0;
	err = str_list(x, n, key, &words, &nw);
	for (size_t i = 0; !err && i < nw; i++) {
		unsigned bit = !strcmp(words[i], "tcp") ? PL_PROBE_TCP :
			       !strcmp(words[i], "drops") ? PL_PROBE_DROPS : 0;

		if (!bit && strcmp(words[i], "none"))
			err = at(x, item(x, n, i), "%s: '%s' is not a probe (tcp, drops, or none)",
				 key, words[i]);
		/* as attach --probes: none stands alone, each probe once */
		else if ((bit & *out) || (nw > 1 && !bit))
			err = at(x, item(x, n, i), "%s: '%s' %s", key, words[i],
				 bit ? "is given twice" : "with other probes (none stands alone)");
		*out |= bit;
	}
	for (size_t i = 0; i < nw; i++)
		free(words[i]);
	free(words);
	return err;
}

/* ---- interfaces entries ---- */

static const char *const entry_keys[] = { "match", "netns", "xdp", "tc", "tc-mech", "flows",
					  "xdp-priority", "filter", "rules", "rules-file", "probes",
					  "tcp-passive", "tcp-ts-max", NULL };

/*
 * A rule's words must parse. `--redirect DEV2` names an interface of the
 * namespace the rule runs in: where that is another than ours, a lookup
 * here cannot tell, so such a rule is parsed for real only in its
 * namespace, when a plan is made (errors then name FILE:LINE:COL too).
 */
static int check_rule(struct ctx *x, const struct pl_cfg_entry *e, struct pl_rule_list *rs,
		      const struct pl_cfg_rule *r)
{
	bool elsewhere = false;
	char *line = strdup(r->text);
	int err;

	if (!line)
		return nomem(x);
	for (size_t i = 0; i < e->nnetns; i++)
		elsewhere |= strcmp(e->netns[i], PL_NETNS_ROOT) != 0;
	err = pl_rule_list_add_line(rs, line, r->file, r->line, r->col, x->why, x->whylen);
	free(line);
	if (err == -EINVAL && elsewhere && strstr(x->why, ": --redirect '") &&
	    strstr(x->why, "': no such interface"))
		err = 0;
	return err;
}

static int add_rule(struct pl_cfg_entry *e, const char *text, const char *file, int line, int col)
{
	struct pl_cfg_rule *p = e->rules;

	/* room for twice as many whenever the count reaches a power of two: files of many rules */
	if (!(e->nrules & (e->nrules - 1))) {
		p = realloc(e->rules, (e->nrules ? 2 * e->nrules : 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		e->rules = p;
	}
	p[e->nrules] = (struct pl_cfg_rule){ strdup(text), file, line, col };
	if (!p[e->nrules].text)
		return -ENOMEM;
	e->nrules++;
	return 0;
}

struct file_ctx {
	struct ctx *x;
	struct pl_cfg_entry *e;
	size_t rules;		/* lines of the file that are rules (not blank, not comments) */
	bool says_empty;	/* a line "# NAME: 0 rules" (pl_rules_line_says_empty()) */
};

/*
 * One more rule (@bytes read from a file for it): the whole config's rules and
 * rules-file bytes are bounded as its aliases are, for a file named by many
 * entries (or one entry's aliases) is read and checked once for each.
 */
static int charge(struct ctx *x, const char *file, size_t bytes)
{
	x->rule_bytes += bytes;
	if (++x->rules <= CONFIG_RULES_MAX && x->rule_bytes <= CONFIG_RULE_BYTES_MAX)
		return 0;
	snprintf(x->why, x->whylen, "%s: more than %s in the config all told (lists, rules-files "
		 "and what the aliases repeat of them)", file, x->rules > CONFIG_RULES_MAX ?
		 PL_STR(CONFIG_RULES_MAX) " rules" : "64 MiB of rules-files read");
	return -EINVAL;
}

/* Was @expr built already (1, or 0)? With @add, it is now (-ENOMEM when it cannot be kept). */
static int built(struct ctx *x, const char *expr, bool add)
{
	uint64_t h = pl_str_hash(expr);
	size_t i, mask = x->built_cap - 1;

	for (i = h & mask; x->built_cap && x->built[i].expr; i = (i + 1) & mask)
		if (x->built[i].hash == h && !strcmp(x->built[i].expr, expr))
			return 1;
	if (!add)
		return 0;
	if (2 * (x->nbuilt + 1) > x->built_cap) {	/* at most half full */
		size_t cap = x->built_cap ? 2 * x->built_cap : 64;
		struct built *t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t k = 0; k < x->built_cap; k++) {
			if (!x->built[k].expr)
				continue;
			for (i = x->built[k].hash & (cap - 1); t[i].expr; i = (i + 1) & (cap - 1))
				;
			t[i] = x->built[k];
		}
		free(x->built);
		x->built = t;
		x->built_cap = cap;
		for (i = h & (cap - 1); t[i].expr; i = (i + 1) & (cap - 1))
			;
	}
	x->built[i] = (struct built){ h, expr };
	x->nbuilt++;
	return 0;
}

static int file_rule(char *line, int lineno, void *ctx)
{
	struct file_ctx *f = ctx;

	if (!pl_rule_line_blank(line))
		f->rules++;
	else if (pl_rules_line_says_empty(line))
		f->says_empty = true;
	return charge(f->x, f->e->rules_file, strlen(line) + 1) ?:
	       add_rule(f->e, line, f->e->rules_file, lineno, 1) ? nomem(f->x) : 0;
}


/*
 * A filter's newlines, CRs and tabs made blanks (libpcap reads them so; a YAML
 * block scalar keeps them), as `filter set` and policy rules keep them: the
 * expression shows on one line wherever it is printed.
 */
static void blanks(char *expr)
{
	for (char *c = expr; *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
}

static int entry_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const xdp_words[] = { "auto", "native", "skb", "generic", "none", NULL };
	static const int xdp_modes[] = { -1, PL_XDP_NATIVE, PL_XDP_SKB, PL_XDP_SKB, PL_XDP_NONE };
	static const char *const tc_words[] = { "auto", "in,out", "out,in", "in", "out", "none", NULL };
	static const int tc_hooks[] = { -1, PL_TC_IN | PL_TC_OUT, PL_TC_IN | PL_TC_OUT, PL_TC_IN,
					PL_TC_OUT, 0 };
	static const char *const mech_words[] = { "auto", "tcx", "clsact", NULL };
	static const int mechs[] = { -1, PL_TC_TCX, PL_TC_CLSACT };
	struct pl_cfg_entry *e = obj;
	int i, err;

	if (!strcmp(key, "match")) {
		err = str_list(x, v, key, &e->match, &e->nmatch);
		for (size_t k = 0; !err && k < e->nmatch; k++) {
			const char *m = e->match[k];

			if (!*m)
				err = at(x, item(x, v, k), "match: an empty name");
			/* a name, or an alternative name (ip link property add ... altname) */
			else if (!strpbrk(m, "*?[") && strlen(m) >= PL_ALTIFNAMSIZ)
				err = at(x, item(x, v, k), "match: '%s' is longer than an interface "
					 "name can be (%d bytes, an alternative name %d)", m,
					 IF_NAMESIZE - 1, PL_ALTIFNAMSIZ - 1);
			else if (strpbrk(m, "/:"))
				err = at(x, item(x, v, k), "match: '%s': an interface name has no '%c'",
					 m, *strpbrk(m, "/:"));
			/* as the kernel has names (dev_valid_name()): such a pattern matches nothing */
			else if (strpbrk(m, " \t\n\v\f\r"))
				err = at(x, item(x, v, k), "match: '%s': an interface name has no white "
					 "space", m);
		}
		return err;
	}
	if (!strcmp(key, "netns")) {
		err = str_list(x, v, key, &e->netns, &e->nnetns);
		if (!err && !e->nnetns)
			err = at(x, v, "netns: an empty list (leave 'netns' out for the root namespace)");
		for (size_t k = 0; !err && k < e->nnetns; k++) {
			const char *m = e->netns[k];

			/* "." and ".." name no file in /run/netns: such an entry would match nothing */
			if (!*m || !strcmp(m, ".") || !strcmp(m, "..") ||
			    (strchr(m, '/') && strcmp(m, PL_NETNS_ROOT)))
				err = at(x, item(x, v, k), "netns: '%s' is not a name in /run/netns, "
					 "a glob over them, or \"/\" (the root namespace)", m);
			else if (m[0] == '.')
				err = at(x, item(x, v, k), "netns: '%s': names beginning with '.' are "
					 "hidden in /run/netns and never covered", m);
		}
		return err;
	}
	if (!strcmp(key, "xdp")) {
		err = one_of(x, v, key, xdp_words, &i);
		e->xdp_mode = err ? e->xdp_mode : xdp_modes[i];
		return err;
	}
	if (!strcmp(key, "tc")) {
		err = one_of(x, v, key, tc_words, &i);
		e->tc_hooks = err ? e->tc_hooks : tc_hooks[i];
		return err;
	}
	if (!strcmp(key, "tc-mech")) {
		err = one_of(x, v, key, mech_words, &i);
		e->tc_mech = err ? e->tc_mech : mechs[i];
		return err;
	}
	if (!strcmp(key, "flows"))
		return number(x, v, key, PL_FLOWS_MIN, PL_FLOWS_MAX, &e->flows);
	if (!strcmp(key, "tcp-passive"))
		return boolean(x, v, key, &e->tcp_passive);
	if (!strcmp(key, "tcp-ts-max")) {
		err = number(x, v, key, PL_TCP_TS_MIN, PL_TCP_TS_MAX, &e->tcp_ts_max);
		e->tcp_ts_max_set = !err;
		return err;
	}
	if (!strcmp(key, "xdp-priority")) {
		err = number(x, v, key, 0, PL_XDP_PRIO_MAX, &e->xdp_prio);
		e->xdp_prio_set = !err;
		return err;
	}
	if (!strcmp(key, "filter")) {
		const struct pl_filter_opts o = { .ctx = PL_FILTER_TC };
		struct pl_filter_prog p;
		char why[PL_WHY_LEN];

		if (is_null(v))
			return 0;
		err = str_dup(x, v, key, &e->filter);
		if (err)
			return err;
		blanks(e->filter);
		if (!*e->filter || strlen(e->filter) >= PL_FILTER_EXPR_MAX)
			return at(x, v, "filter: %s", *e->filter ? "longer than 2047 bytes" :
				  "an empty expression (leave filter out for none)");
		/* each expression is built once: aliases and entries may repeat it many times */
		if (built(x, e->filter, false))
			return 0;
		if (pl_filter_build(e->filter, &o, &p, why, sizeof(why)))
			return at(x, v, "filter '%s': %s", e->filter, why);
		pl_filter_prog_free(&p);
		return built(x, e->filter, true) < 0 ? nomem(x) : 0;
	}
	if (!strcmp(key, "rules")) {
		if (is_null(v))
			return 0;
		if (v->type != YAML_SEQUENCE_NODE)
			return at(x, v, "rules: expected a list of rules (`policy add` words), not %s",
				  kind(v));
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			yaml_node_t *r = node(x, *it);
			const char *text;

			err = scalar(x, r, "rules", &text) ?: charge(x, x->path, 0);
			if (!err && add_rule(e, text, x->path, (int)r->start_mark.line + 1, text_col(r)))
				err = nomem(x);
			if (err)
				return err;
		}
		return 0;
	}
	if (!strcmp(key, "rules-file")) {
		struct file_ctx f = { .x = x, .e = e };
		const char *p;

		err = scalar(x, v, key, &p);
		if (err)
			return err;
		if (!*p)
			return at(x, v, "rules-file: an empty path");
		free(e->rules_file);
		e->rules_file = malloc(strlen(x->dir) + strlen(p) + 2);
		if (!e->rules_file)
			return nomem(x);
		sprintf(e->rules_file, "%s%s%s", *p == '/' ? "" : x->dir, *p == '/' ? "" : "/", p);
		err = pl_rules_file_each(e->rules_file, CONFIG_SIZE_MAX, file_rule, &f, x->why,
					 x->whylen);
		if (err == -EIO) {
			char why[PL_WHY_LEN];

			snprintf(why, sizeof(why), "%s", x->why);
			return at(x, v, "rules-file: %s", why);
		}
		/*
		 * as policy load: a file without rules (a failed or half-done save, an
		 * editor's truncate before its write, met by a reload) would remove
		 * every rule of the entry's interfaces; one that means it says so
		 */
		if (!err && !f.rules && !f.says_empty)
			return at(x, v, "rules-file: %s: no rules: a file that empties the entry's rules "
				  "says so in a line '# NAME: 0 rules' (as `policy list` of an empty "
				  "set prints), or leave rules-file out", e->rules_file);
		return err;
	}
	/* probes */
	{
		unsigned pr;

		err = probes(x, v, key, &pr);
		e->probes = err ? e->probes : (int)pr;
		return err;
	}
}

static int entry(struct ctx *x, yaml_node_t *n, struct pl_cfg_entry *e)
{
	struct pl_rule_list rs = { .in_order = true };	/* as the plan reads them (plan.c) */
	struct pl_rule_text *texts = NULL;
	size_t ntexts = 0;
	int err;

	*e = (struct pl_cfg_entry){ .xdp_mode = -1, .tc_hooks = -1, .tc_mech = -1,
				    .flows = PL_FLOWS_DEFAULT, .probes = -1,
				    .tcp_ts_max = PL_TCP_TS_DEFAULT,
				    .line = (int)n->start_mark.line + 1,
				    .col = (int)n->start_mark.column + 1 };
	err = mapping(x, n, "interfaces entry", entry_keys, entry_key, e);
	if (err)
		return err;
	if (!e->nmatch)
		return at(x, n, "interfaces entry: 'match' is missing (an interface name or glob)");
	if (e->xdp_mode == PL_XDP_NONE && e->tc_hooks == 0)
		return at(x, n, "interfaces entry: nothing to attach (xdp: none and tc: none)");
	if (e->xdp_mode == PL_XDP_NONE && e->xdp_prio_set)
		return at(x, n, "interfaces entry: xdp-priority without an XDP hook (xdp: native "
			  "or skb)");
	/* as attach refuses --tcp-ts-max without --tcp-passive */
	if (e->tcp_ts_max_set && !e->tcp_passive)
		return at(x, n, "interfaces entry: tcp-ts-max without tcp-passive: true");
	/* rules must parse now (ids given twice or out of order too), however their namespace looks them up */
	for (size_t i = 0; !err && i < e->nrules; i++)
		err = check_rule(x, e, &rs, &e->rules[i]);
	if (!err)
		err = pl_rule_list_finish(&rs, NULL, 0, &texts, &ntexts, x->why, x->whylen);
	free(texts);
	pl_rule_list_free(&rs);
	return err;
}

static int interfaces(struct ctx *x, yaml_node_t *v)
{
	struct pl_config *c = x->c;
	size_t n;

	/* `interfaces:` with nothing after it: a file cut short as much as an empty one */
	if (is_null(v))
		return at(x, v, "interfaces: no entries (to manage nothing, write 'interfaces: []')");
	x->interfaces = true;
	if (v->type != YAML_SEQUENCE_NODE)
		return at(x, v, "interfaces: expected a list of entries (- match: ...), not %s",
			  kind(v));
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	c->e = calloc(n ? n : 1, sizeof(*c->e));
	if (!c->e)
		return nomem(x);
	for (size_t i = 0; i < n; i++) {
		int err = entry(x, node(x, v->data.sequence.items.start[i]), &c->e[i]);

		c->n = i + 1;	/* freed with the config, even half-read */
		if (err)
			return err;
	}
	return 0;
}

/* ---- export ---- */

static const char *const export_keys[] = { "prometheus", "ipfix", NULL };
static const char *const prom_keys[] = { "listen", NULL };
static const char *const ipfix_keys[] = { "collector", "interval", "observation-domain",
					   "template-refresh", NULL };

static int prom_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	struct sockaddr_storage ss;
	struct pl_config *c = obj;
	socklen_t sl;
	int err;

	(void)key;
	err = str_dup(x, v, "listen", &c->prom_listen);
	if (!err && pl_listen_parse(c->prom_listen, &ss, &sl, NULL, 0) < 0)
		err = at(x, v, "listen: '%s' is %s", c->prom_listen, PL_LISTEN_WANT);
	return err;
}

static int ipfix_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	struct pl_config *c = obj;
	char host[256], why[PL_WHY_LEN];
	const char *port;
	int err;

	if (!strcmp(key, "interval"))
		return number(x, v, key, 1, 86400, &c->ipfix_interval);
	if (!strcmp(key, "observation-domain"))
		return number(x, v, key, 0, UINT32_MAX, &c->ipfix_domain);
	if (!strcmp(key, "template-refresh"))
		return number(x, v, key, 1, 86400, &c->ipfix_tpl_secs);
	err = str_dup(x, v, key, &c->ipfix_collector);
	if (err)
		return err;
	/* as export ipfix --collector reads it; the host is resolved when the exporter starts */
	if (pl_ipfix_collector_split(c->ipfix_collector, host, sizeof(host), &port, why, sizeof(why)))
		return at(x, v, "collector: '%s': %s", c->ipfix_collector, why);
	return 0;
}

static int export_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	struct pl_config *c = obj;
	int err;

	if (!strcmp(key, "prometheus")) {
		err = is_null(v) ? 0 : mapping(x, v, "prometheus", prom_keys, prom_key, c);
		if (!err && !c->prom_listen && !(c->prom_listen = strdup(PL_PROM_LISTEN_DEFAULT)))
			err = nomem(x);
		return err;
	}
	err = mapping(x, v, "ipfix", ipfix_keys, ipfix_key, c);
	if (!err && !c->ipfix_collector)
		err = at(x, v, "ipfix: 'collector' is missing (HOST:PORT)");
	return err;
}

/* ---- triggers ---- */

static const char *const trigger_keys[] = { "dev", "netns", "when", "for", "write", "keep",
					    "snaplen", "filter", NULL };

static int trigger_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	struct pl_cfg_trigger *t = obj;
	struct pl_trig tr;
	char why[PL_WHY_LEN];
	int err;

	if (!strcmp(key, "for"))
		return number(x, v, key, 1, 86400, &t->for_secs);
	if (!strcmp(key, "keep"))
		return number(x, v, key, 1, 1000000, &t->keep);
	if (!strcmp(key, "snaplen"))
		return number(x, v, key, 0, PL_SNAPLEN_MAX, &t->snaplen);	/* 0: 262144 */
	if (!strcmp(key, "dev")) {
		err = str_dup(x, v, key, &t->dev);
		/*
		 * as the kernel has names (dev_valid_name()): no '/', ':' or white space;
		 * an alternative name has up to 127 bytes (pktlens sample takes one)
		 */
		if (!err && (!*t->dev || strlen(t->dev) >= PL_ALTIFNAMSIZ || !strcmp(t->dev, ".") ||
			     !strcmp(t->dev, "..") || strpbrk(t->dev, "/: \t\n\v\f\r")))
			err = at(x, v, "dev: '%s' is not an interface name", t->dev);
		return err;
	}
	if (!strcmp(key, "netns")) {
		const char *m;

		err = str_dup(x, v, key, &t->netns);
		m = t->netns;
		if (!err && (!*m || !strcmp(m, ".") || !strcmp(m, "..") ||
			     (strchr(m, '/') && strcmp(m, PL_NETNS_ROOT))))
			err = at(x, v, "netns: '%s' is not a name in /run/netns or \"/\" (the root "
				 "namespace)", m);
		return err;
	}
	if (!strcmp(key, "write")) {
		const char *base;

		err = str_dup(x, v, key, &t->write);
		if (!err && t->write[0] != '/')
			return at(x, v, "write: '%s' is not an absolute path", t->write);
		/*
		 * a directory's name, as `sample -w` refuses it: the daemon would
		 * start a sampler that is refused every 5 s, forever
		 */
		base = err ? NULL : strrchr(t->write, '/') + 1;
		if (base && (!*base || !strcmp(base, ".") || !strcmp(base, "..") ||
			     (!strchr(t->write, '%') && is_dir(t->write))))
			err = at(x, v, "write: '%s' names a directory, not a file", t->write);
		return err;
	}
	if (!strcmp(key, "filter")) {
		const struct pl_filter_opts o = { .ctx = PL_FILTER_TC };
		struct pl_filter_prog p;

		err = str_dup(x, v, key, &t->filter);
		if (err)
			return err;
		blanks(t->filter);
		if (!*t->filter || strlen(t->filter) >= PL_FILTER_EXPR_MAX)
			return at(x, v, "filter: %s", *t->filter ? "longer than 2047 bytes" :
				  "an empty expression (leave filter out for every packet)");
		if (built(x, t->filter, false))
			return 0;
		if (pl_filter_build(t->filter, &o, &p, why, sizeof(why)))
			return at(x, v, "filter '%s': %s", t->filter, why);
		pl_filter_prog_free(&p);
		return built(x, t->filter, true) < 0 ? nomem(x) : 0;
	}
	err = str_dup(x, v, key, &t->when);
	if (!err && pl_trig_parse(t->when, &tr, why, sizeof(why)))
		err = at(x, v, "when: '%s': %s", t->when, why);
	return err;
}

static int triggers(struct ctx *x, yaml_node_t *v)
{
	struct pl_config *c = x->c;
	size_t n;

	if (is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return at(x, v, "triggers: expected a list of entries (- dev: ...), not %s", kind(v));
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	c->trig = calloc(n ? n : 1, sizeof(*c->trig));
	if (!c->trig)
		return nomem(x);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(x, v->data.sequence.items.start[i]);
		struct pl_cfg_trigger *t = &c->trig[i];
		int err;

		c->ntrig = i + 1;	/* freed with the config, even half-read */
		t->line = (int)e->start_mark.line + 1;
		t->col = (int)e->start_mark.column + 1;
		err = mapping(x, e, "triggers entry", trigger_keys, trigger_key, t);
		if (err)
			return err;
		if (!t->dev || !t->when || !t->for_secs || !t->write)
			return at(x, e, "triggers entry: '%s' is missing", !t->dev ? "dev" :
				  !t->when ? "when" : !t->for_secs ? "for" : "write");
	}
	return 0;
}

/* ---- the top level ---- */

static const char *const top_keys[] = { "name", "interfaces", "probes", "export", "on-stop",
					"triggers", NULL };

static int top_key(struct ctx *x, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const stop_words[] = { "keep", "detach", NULL };
	struct pl_config *c = obj;
	const char *s;
	int i, err;

	if (!strcmp(key, "name")) {
		err = scalar(x, v, key, &s);
		if (!err && (!*s || strlen(s) >= sizeof(c->owner)))
			err = at(x, v, "name: %s", *s ? "longer than 255 bytes" : "empty");
		for (const char *p = s; !err && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				err = at(x, v, "name: control characters are not allowed");
		if (!err)
			snprintf(c->owner, sizeof(c->owner), "%s", s);
		return err;
	}
	if (!strcmp(key, "interfaces"))
		return interfaces(x, v);
	if (!strcmp(key, "probes"))
		return probes(x, v, key, &c->probes);
	if (!strcmp(key, "export"))
		return is_null(v) ? 0 : mapping(x, v, "export", export_keys, export_key, c);
	if (!strcmp(key, "triggers"))
		return triggers(x, v);
	err = one_of(x, v, key, stop_words, &i);
	c->detach_on_stop = !err && i == 1;
	return err;
}

/*
 * libyaml's own complaint, with its position. Its reader (bytes that are
 * not UTF-8, control characters) gives a byte offset instead of a mark:
 * the line and column are counted in @f up to it.
 */
static int yaml_error(struct ctx *x, const yaml_parser_t *p, FILE *f)
{
	yaml_mark_t r = { 0 };
	const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->context_mark;

	if (p->error == YAML_READER_ERROR && !fseek(f, 0, SEEK_SET)) {
		unsigned char bom[3];
		size_t i = 0;

		/* a UTF-8 byte order mark is no column */
		if (fread(bom, 1, 3, f) == 3 && !memcmp(bom, "\xef\xbb\xbf", 3))
			i = 3;
		else
			fseek(f, 0, SEEK_SET);
		for (; i < p->problem_offset; i++) {
			int ch = getc(f);

			if (ch == EOF)
				break;
			if (ch == '\n') {
				r.line++;
				r.column = 0;
			} else if ((ch & 0xc0) != 0x80) {
				r.column++;	/* a character: not a UTF-8 continuation byte */
			}
		}
		m = &r;
	}
	snprintf(x->why, x->whylen, "%s:%zu:%zu: not YAML: %s%s%s", x->path, m->line + 1,
		 m->column + 1, p->problem ? p->problem : "cannot parse",
		 p->context ? " " : "", p->context ? p->context : "");
	return -EINVAL;
}

/* An anchor seen by limits_check(): its name and how many nodes it stands for. */
struct anchor {
	char *name;
	uint64_t nodes;
};

/*
 * Before the document is built, from its events: libyaml's scanner costs
 * time in the square of the nesting depth of flow collections ('[' 50,000
 * deep: seconds; the 4 MiB a config may have: hours), and aliases can make
 * a small file stand for billions of nodes. The first collection past
 * CONFIG_DEPTH_MAX levels, or alias past the limits above, is the error,
 * found after reading little more than itself. 0, or -EINVAL with @x->why.
 */
static int limits_check(struct ctx *x, FILE *f)
{
	struct anchor an[CONFIG_ANCHORS_MAX];
	struct {
		uint64_t at;	/* nodes before the collection */
		char *anchor;
	} open[CONFIG_DEPTH_MAX + 1];
	uint64_t nodes = 0, expanded = 0;
	size_t nan = 0, naliases = 0;
	int depth = 0, err = 0;
	yaml_parser_t p;
	yaml_event_t ev;

	if (!yaml_parser_initialize(&p))
		return nomem(x);
	yaml_parser_set_input_file(&p, f);
	for (;;) {
		const char *what = NULL;
		char *anchor = NULL;
		uint64_t size = 0;
		yaml_event_type_t type;

		if (!yaml_parser_parse(&p, &ev)) {
			err = yaml_error(x, &p, f);
			break;
		}
		type = ev.type;
		switch (type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			nodes++;
			if (++depth > CONFIG_DEPTH_MAX) {
				what = "nested deeper than " PL_STR(CONFIG_DEPTH_MAX) " levels";
				break;
			}
			open[depth].at = nodes;
			open[depth].anchor = (char *)(type == YAML_SEQUENCE_START_EVENT ?
						      ev.data.sequence_start.anchor :
						      ev.data.mapping_start.anchor);
			/* the event's anchor is freed with it: a copy until the collection ends */
			if (open[depth].anchor && !(open[depth].anchor = strdup(open[depth].anchor)))
				err = nomem(x);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0) {
				anchor = open[depth].anchor;
				size = nodes - open[depth].at + 1;
				depth--;
			}
			break;
		case YAML_SCALAR_EVENT:
			nodes++;
			if (ev.data.scalar.anchor && !(anchor = strdup((char *)ev.data.scalar.anchor)))
				err = nomem(x);
			size = 1;
			break;
		case YAML_ALIAS_EVENT:
			what = ++naliases > CONFIG_ALIASES_MAX ? "more than " PL_STR(CONFIG_ALIASES_MAX)
			       " aliases (*name)" : "an alias (*name) of no anchor before it (or of one it is inside)";
			for (size_t k = nan; k-- > 0 && naliases <= CONFIG_ALIASES_MAX;)
				if (!strcmp(an[k].name, (char *)ev.data.alias.anchor)) {
					/* counted into nodes: an alias inside an anchored node grows it */
					nodes += an[k].nodes;
					expanded += an[k].nodes;
					what = expanded > CONFIG_EXPANDED_MAX ? "aliases (*name) that stand "
					       "for more than " PL_STR(CONFIG_EXPANDED_MAX) " nodes" : NULL;
					break;
				}
			break;
		default:
			break;
		}
		if (anchor && nan == CONFIG_ANCHORS_MAX) {
			what = "more than " PL_STR(CONFIG_ANCHORS_MAX) " anchors (&name)";
			free(anchor);
		} else if (anchor) {
			an[nan++] = (struct anchor){ anchor, size };
		}
		if (what && !err) {
			snprintf(x->why, x->whylen, "%s:%zu:%zu: %s: not a pktlens config", x->path,
				 ev.start_mark.line + 1, ev.start_mark.column + 1, what);
			err = -EINVAL;
		}
		yaml_event_delete(&ev);
		if (err || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	/* the collections still open (one past the limit had no entry) */
	for (depth = depth > CONFIG_DEPTH_MAX ? CONFIG_DEPTH_MAX : depth; depth > 0; depth--)
		free(open[depth].anchor);
	while (nan)
		free(an[--nan].name);
	if (!err && fseek(f, 0, SEEK_SET)) {
		snprintf(x->why, x->whylen, "%s: cannot read it again: %s", x->path, strerror(errno));
		err = -EIO;
	}
	return err;
}

static int load(struct ctx *x, FILE *f)
{
	yaml_document_t extra;
	yaml_parser_t p;
	yaml_node_t *root;
	int err = 0;

	err = limits_check(x, f);
	if (err)
		return err;
	if (!yaml_parser_initialize(&p))
		return nomem(x);
	yaml_parser_set_input_file(&p, f);
	if (!yaml_parser_load(&p, &x->doc)) {
		err = yaml_error(x, &p, f);
		yaml_parser_delete(&p);
		return err;
	}
	/* one document: a second one would be silently ignored */
	if (!yaml_parser_load(&p, &extra)) {
		err = yaml_error(x, &p, f);
	} else {
		root = yaml_document_get_root_node(&extra);
		if (root)
			err = at(x, root, "a second YAML document: one config per file");
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&p);
	if (err)
		return err;
	root = yaml_document_get_root_node(&x->doc);
	/*
	 * Empty (or comments alone): the moment a config tool truncates the file
	 * before writing it, which a reload must not take for "remove everything";
	 * managing nothing is said in so many words.
	 */
	if (!root || is_null(root)) {
		snprintf(x->why, x->whylen, "%s: empty: no config in it (to manage nothing, write "
			 "'interfaces: []')", x->path);
		return -EINVAL;
	}
	err = mapping(x, root, "config", top_keys, top_key, x->c);
	/* a config of exporters or triggers alone manages nothing; one that does nothing at all is cut short */
	if (!err && !x->interfaces && !x->c->prom_listen && !x->c->ipfix_collector && !x->c->ntrig)
		err = at(x, root, "no 'interfaces' (to manage nothing, write 'interfaces: []')");
	return err;
}

/*
 * @path absolute (from the working directory) and plain, without ".", ".."
 * or empty parts, its symlinks as named: the config's name when it has none
 * (a symlink switched to another file is still the same config). 0 or
 * -ENAMETOOLONG.
 */
static int abs_path(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX] = "", buf[PATH_MAX * 2], *save = NULL;
	size_t n = 0;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", cwd, path) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		size_t l = strlen(p);

		if (!strcmp(p, "."))
			continue;
		if (!strcmp(p, "..")) {
			while (n && out[--n] != '/')
				;
			continue;
		}
		if (n + 1 + l >= len)
			return -ENAMETOOLONG;
		out[n++] = '/';
		memcpy(out + n, p, l);
		n += l;
	}
	if (!n)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

static void find_shadows(struct pl_config *c);

int pl_config_load(const char *path, struct pl_config **out, char *why, size_t whylen)
{
	struct ctx x = { .path = path, .why = why, .whylen = whylen };
	struct pl_config *c;
	char real[PATH_MAX];
	struct stat st;
	FILE *f;
	int err;

	*out = NULL;
	f = pl_fopen_nowait(path, &st);		/* a FIFO must not hang a reload */
	if (!f || !realpath(path, real)) {
		err = errno;
		snprintf(why, whylen, "%s: cannot read it: %s", path, strerror(err));
		if (f)
			fclose(f);
		return err == ENOMEM ? -ENOMEM : -EIO;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_SIZE_MAX) {
		snprintf(why, whylen, "%s: %s", path, S_ISREG(st.st_mode) ?
			 "larger than 4 MiB: not a config" : "not a regular file");
		fclose(f);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		fclose(f);
		snprintf(why, whylen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	c->ipfix_interval = 10;
	c->ipfix_tpl_secs = PL_IPFIX_TEMPLATE_SECS;
	x.path = c->path;	/* rules keep pointing at it */
	snprintf(x.dir, sizeof(x.dir), "%s", real);
	*strrchr(x.dir, '/') = '\0';
	x.c = c;
	memset(&x.doc, 0, sizeof(x.doc));
	err = load(&x, f);
	free(x.built);
	yaml_document_delete(&x.doc);
	fclose(f);
	if (!err && !abs_path(path, real, sizeof(c->file)))
		snprintf(c->file, sizeof(c->file), "%s", real);
	if (!err && !c->owner[0]) {
		if (!c->file[0]) {
			snprintf(why, whylen, "%s: its absolute path is longer than 255 bytes: give the "
				 "config a name (name: ...)", path);
			err = -EINVAL;
		} else {
			snprintf(c->owner, sizeof(c->owner), "%s", c->file);
		}
	}
	if (err) {
		pl_config_free(c);
		return err;
	}
	find_shadows(c);
	*out = c;
	return 0;
}

void pl_config_free(struct pl_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct pl_cfg_entry *e = &c->e[i];

		for (size_t k = 0; k < e->nmatch; k++)
			free(e->match[k]);
		for (size_t k = 0; k < e->nnetns; k++)
			free(e->netns[k]);
		for (size_t k = 0; k < e->nrules; k++)
			free(e->rules[k].text);
		free(e->match);
		free(e->netns);
		free(e->rules);
		free(e->filter);
		free(e->rules_file);
	}
	for (size_t i = 0; i < c->ntrig; i++) {
		struct pl_cfg_trigger *t = &c->trig[i];

		free(t->dev);
		free(t->netns);
		free(t->when);
		free(t->write);
		free(t->filter);
	}
	free(c->trig);
	free(c->e);
	free(c->prom_listen);
	free(c->ipfix_collector);
	free(c->path);
	free(c);
}

bool pl_config_entry_netns(const struct pl_cfg_entry *e, const char *name)
{
	if (!e->nnetns)
		return !name;
	for (size_t i = 0; i < e->nnetns; i++) {
		bool root = !strcmp(e->netns[i], PL_NETNS_ROOT);

		/* a name as it is, or a glob (a name may hold glob characters itself) */
		if (name ? !root && (!strcmp(e->netns[i], name) ||
				     !fnmatch(e->netns[i], name, FNM_PERIOD)) : root)
			return true;
	}
	return false;
}

bool pl_config_covers(const struct pl_config *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (pl_config_entry_netns(&c->e[i], name))
			return true;
	return false;
}

bool pl_config_entry_if(const struct pl_cfg_entry *e, const char *ifname, const char *altnames,
			bool exact)
{
	/* as `ip link show dev NAME` takes an alternative name where it takes a name */
	for (const char *n = ifname; n && *n; n = n == ifname ? altnames : n + strlen(n) + 1)
		for (size_t k = 0; k < e->nmatch; k++)
			if (!strcmp(e->match[k], n) || (!exact && !fnmatch(e->match[k], n, 0)))
				return true;
	return false;
}

const struct pl_cfg_entry *pl_config_match_names(const struct pl_config *c, bool root,
						 const char *const *names, size_t nnames,
						 const char *ifname, const char *altnames)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct pl_cfg_entry *e = &c->e[i];
		bool covers = root && pl_config_entry_netns(e, NULL);

		for (size_t k = 0; !covers && k < nnames; k++)
			covers = pl_config_entry_netns(e, names[k]);
		if (covers && pl_config_entry_if(e, ifname, altnames, false))
			return e;
	}
	return NULL;
}

const struct pl_cfg_entry *pl_config_match(const struct pl_config *c, bool root, const char *name,
					   const char *ifname)
{
	return pl_config_match_names(c, root, name ? &name : NULL, name ? 1 : 0, ifname, NULL);
}

static bool literal(const char *s)
{
	return !strpbrk(s, "*?[\\");
}

/* Whether @e covers every namespace that @ns (an entry's netns: NULL, "/", a name or glob) is. */
static bool covers_ns(const struct pl_cfg_entry *e, const char *ns)
{
	if (!ns || !strcmp(ns, PL_NETNS_ROOT))
		return pl_config_entry_netns(e, NULL);
	for (size_t i = 0; i < e->nnetns; i++)
		if (!strcmp(e->netns[i], ns))
			return true;
	return literal(ns) && pl_config_entry_netns(e, ns);
}

/* Whether @e matches every interface that @m (a name or glob) matches. */
static bool covers_if(const struct pl_cfg_entry *e, const char *m)
{
	for (size_t i = 0; i < e->nmatch; i++)
		if (!strcmp(e->match[i], m) || !strcmp(e->match[i], "*") ||
		    (literal(m) && !fnmatch(e->match[i], m, 0)))
			return true;
	return false;
}

/* Each entry's shadowed_by, within CONFIG_SHADOW_WORK_MAX comparisons in all. */
static void find_shadows(struct pl_config *c)
{
	size_t work = 0;

	for (size_t j = 0; j < c->n; j++)
		c->e[j].shadowed_by = -1;
	for (size_t j = 0; j < c->n && work <= CONFIG_SHADOW_WORK_MAX; j++) {
		struct pl_cfg_entry *e = &c->e[j];

		for (size_t i = 0; i < j && e->shadowed_by < 0 && work <= CONFIG_SHADOW_WORK_MAX; i++) {
			const struct pl_cfg_entry *f = &c->e[i];
			bool all = true;

			for (size_t k = 0; all && k < (e->nnetns ? e->nnetns : 1); k++) {
				work += f->nnetns + 1;
				all = work <= CONFIG_SHADOW_WORK_MAX &&
				      covers_ns(f, e->nnetns ? e->netns[k] : NULL);
			}
			for (size_t k = 0; all && k < e->nmatch; k++) {
				work += f->nmatch;
				all = work <= CONFIG_SHADOW_WORK_MAX && covers_if(f, e->match[k]);
			}
			if (all)
				e->shadowed_by = (long)i;
		}
	}
}

const struct pl_cfg_entry *pl_config_shadowed(const struct pl_config *c, size_t j)
{
	return c->e[j].shadowed_by >= 0 ? &c->e[c->e[j].shadowed_by] : NULL;
}

bool pl_config_shadow_line(const struct pl_config *c, size_t j, char *buf, size_t len)
{
	const struct pl_cfg_entry *f = pl_config_shadowed(c, j);

	if (!f)
		return false;
	snprintf(buf, len, "%s:%d:%d: this interfaces entry never applies: the entry at line %d "
		 "matches first every interface it names (the first entry that matches decides)",
		 c->path, c->e[j].line, c->e[j].col, f->line);
	return true;
}

unsigned pl_config_probes(const struct pl_config *c, const struct pl_cfg_entry *e)
{
	return e->probes >= 0 ? (unsigned)e->probes : c->probes;
}
