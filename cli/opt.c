// SPDX-License-Identifier: GPL-2.0
/* Commands and options from their tables (cli/opt.h): selection, parsing, help. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "opt.h"
#include "util.h"

#define SYN_WIDTH 90		/* synopsis lines wrap here */
#define HELP_WIDTH 80		/* option help wraps here */
#define HELP_COL_MAX 26		/* longer option names put their help on the next line */
#define PARTS_MAX 48
#define OPTS_MAX 64

/* The options every command takes. */
static const struct pl_opt common_opts[] = {
	{ .name = "json", .short_name = 'j', .help = "JSON output" },
	{ .name = "pretty", .short_name = 'p', .help = "pretty-printed JSON (implies -j)" },
	{ .name = "help", .short_name = 'h', .help = "this help" },
	{ NULL },
};

static bool takes_value(const struct pl_opt *o)
{
	return o->type != PL_OPT_FLAG && o->type != PL_OPT_COUNT;
}

/* Whether @o is documented for command @c (NULL: for some command) */
static bool documented_for(const struct pl_opt *o, const struct pl_cmd *c)
{
	size_t len = c ? strlen(c->name) : 0;

	if (o->flags & PL_OPT_HIDDEN)
		return false;
	if (!c || !o->only)
		return true;
	for (const char *p = o->only; (p = strstr(p, c->name)); p += len)
		if ((p == o->only || p[-1] == ' ') && (!p[len] || p[len] == ' '))
			return true;
	return false;
}

static bool documented(const struct pl_opt *o)
{
	return documented_for(o, NULL);
}

/* "--name", or "-c" for a short-only option or one named by its short form */
static const char *opt_name(const struct pl_opt *o, char *buf, size_t len)
{
	if (o->name && !(o->flags & PL_OPT_SHORT))
		snprintf(buf, len, "--%s", o->name);
	else
		snprintf(buf, len, "-%c", o->short_name);
	return buf;
}

/* "a|b|c" (sep "|") or "a, b or c" (sep ", ") of the documented choices */
static const char *choice_list(const struct pl_choice *c, bool words, char *buf, size_t len)
{
	size_t n = 0, k = 0, used = 0;

	for (const struct pl_choice *p = c; p->name; p++)
		n += !p->hidden;
	buf[0] = 0;
	for (const struct pl_choice *p = c; p->name && used < len; p++) {
		if (p->hidden)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 !k ? "" : !words ? "|" : k == n - 1 ? " or " : ", ", p->name);
		k++;
	}
	return buf;
}

/* The value's name: .arg, else the choices */
static const char *value_name(const struct pl_opt *o, char *buf, size_t len)
{
	if (o->arg)
		return o->arg;
	if (o->choices)
		return choice_list(o->choices, false, buf, len);
	return "VALUE";
}

/* The synopsis of @c as words ("DEV", "[--force]", ...) in @parts; their number. */
static int syn_parts(const struct pl_cmd *c, char parts[][160])
{
	int n = 0;

	if (c->args && *c->args && !c->args_last)
		snprintf(parts[n++], 160, "%s", c->args);
	for (const struct pl_opt *o = c->opts; o && (o->name || o->short_name) && n < PARTS_MAX - 1;
	     o++) {
		char name[64], val[128];
		bool req = o->flags & PL_OPT_REQUIRED;

		if (!documented_for(o, c) || (o->syn && !*o->syn))
			continue;
		if (o->syn) {
			snprintf(parts[n++], 160, "%s%s%s", req ? "" : "[", o->syn, req ? "" : "]");
			continue;
		}
		snprintf(parts[n++], 160, "%s%s%s%s%s", req ? "" : "[", opt_name(o, name, sizeof(name)),
			 takes_value(o) ? " " : "",
			 !takes_value(o) ? "" : o->choices ? choice_list(o->choices, false, val, sizeof(val)) :
			 value_name(o, val, sizeof(val)), req ? "" : "]");
	}
	if (c->args && *c->args && c->args_last)
		snprintf(parts[n++], 160, "%s", c->args);
	if (c->tail)
		snprintf(parts[n++], 160, "%s", c->tail);
	return n;
}

/* "@lead pktlens @path parts...", wrapped under the first part */
static void print_synopsis(FILE *f, const char *lead, const char *path, const struct pl_cmd *c)
{
	char parts[PARTS_MAX][160];
	int n = syn_parts(c, parts);
	int indent = (int)(strlen(lead) + strlen("pktlens ") + strlen(path));
	int col = indent;

	fprintf(f, "%spktlens %s", lead, path);
	for (int i = 0; i < n; i++) {
		int len = (int)strlen(parts[i]);

		if (i && col + 1 + len > SYN_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		fprintf(f, " %s", parts[i]);
		col += 1 + len;
	}
	fputc('\n', f);
}

/* "-s, --snaplen N" */
static const char *help_name(const struct pl_opt *o, char *buf, size_t len)
{
	char val[128];
	const char *v = takes_value(o) ? value_name(o, val, sizeof(val)) : NULL;

	if (o->short_name && o->name)
		snprintf(buf, len, "-%c, --%s%s%s", o->short_name, o->name, v ? " " : "", v ? v : "");
	else if (o->name)
		snprintf(buf, len, "--%s%s%s", o->name, v ? " " : "", v ? v : "");
	else
		snprintf(buf, len, "-%c%s%s", o->short_name, v ? " " : "", v ? v : "");
	return buf;
}

/* @text from column @col (at @indent after a break), words wrapped at HELP_WIDTH */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;

	while (*p) {
		size_t len = strcspn(p, " ");

		if (col > indent && col + 1 + (int)len > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, len, f);
		col += (int)len;
		p += len;
		p += strspn(p, " ");
	}
	fputc('\n', f);
}

static int help_width(const struct pl_opt *opts, int w)
{
	char name[160];

	for (const struct pl_opt *o = opts; o && (o->name || o->short_name); o++) {
		int len = (int)strlen(help_name(o, name, sizeof(name))) + 4;

		if (documented(o) && len > w && len <= HELP_COL_MAX)
			w = len;
	}
	return w;
}

/* @o's help with {min}, {max} and {default} (from @defaults) put in */
static const char *expand_help(const struct pl_opt *o, const void *defaults, char *buf, size_t len)
{
	const char *h = o->help ? o->help : "";
	size_t used = 0;

	while (*h && used + 1 < len) {
		unsigned long long v = 0;
		size_t k;

		if (!strncmp(h, "{min}", k = 5))
			v = o->min;
		else if (!strncmp(h, "{max}", k = 5))
			v = o->max;
		else if (!strncmp(h, "{default}", k = 9) && defaults)
			v = o->size == sizeof(uint64_t) ? *(const uint64_t *)((const char *)defaults + o->off) :
			    *(const uint32_t *)((const char *)defaults + o->off);
		else
			k = 0;
		if (!k) {
			buf[used++] = *h++;
			continue;
		}
		used += (size_t)snprintf(buf + used, len - used, "%llu", v);
		h += k;
	}
	buf[used < len ? used : len - 1] = 0;
	return buf;
}

static void print_opts(FILE *f, const struct pl_opt *opts, const void *defaults, int w)
{
	char name[160], help[1024];

	for (const struct pl_opt *o = opts; o && (o->name || o->short_name); o++) {
		int len;

		if (!documented(o))
			continue;
		len = fprintf(f, "  %s", help_name(o, name, sizeof(name)));
		if (len + 2 > w) {
			fprintf(f, "\n%*s", w, "");
			len = w;
		}
		fprintf(f, "%*s", w - len, "");
		wrap(f, expand_help(o, defaults, help, sizeof(help)), w, w);
	}
}

/* `pktlens OBJ --help`: every sub-command's synopsis, what they do and their options */
static void print_help(FILE *f, const struct pl_cmd *obj)
{
	const struct pl_cmd *c;
	int w = help_width(common_opts, 0);

	if (obj->subs)
		for (const struct pl_cmd *const *p = obj->subs; (c = *p); p++) {
			char path[128];

			snprintf(path, sizeof(path), "%s %s", obj->name, c->name);
			print_synopsis(f, p == obj->subs ? "Usage: " : "       ", path, c);
			w = help_width(c->opts, w);
		}
	else
		print_synopsis(f, "Usage: ", obj->name, obj);
	w = help_width(obj->opts, w);
	if (obj->about)
		fprintf(f, "\n%s", obj->about);
	if (!obj->subs && obj->opts && (obj->opts->name || obj->opts->short_name)) {
		fputc('\n', f);
		print_opts(f, obj->opts, obj->defaults, w);
	}
	for (const struct pl_cmd *const *p = obj->subs; p && (c = *p); p++) {
		/* options a sub-command shares with the one before are listed once */
		bool same = p != obj->subs && c->opts == p[-1]->opts;

		if (!c->about && (same || !c->opts))
			continue;
		fputc('\n', f);
		if (c->about)
			fprintf(f, "%s", c->about);
		if (!same)
			print_opts(f, c->opts, c->defaults, w);
	}
	if (obj->print_more) {
		fputc('\n', f);
		obj->print_more(f);
	} else if (obj->more) {
		fprintf(f, "\n%s", obj->more);
	}
	fputc('\n', f);
	print_opts(f, common_opts, NULL, w);
}

/* The synopsis lines alone, for a command given without its sub-command */
static void print_usage(FILE *f, const struct pl_cmd *obj)
{
	for (const struct pl_cmd *const *p = obj->subs; p && *p; p++) {
		char path[128];

		snprintf(path, sizeof(path), "%s %s", obj->name, (*p)->name);
		print_synopsis(f, p == obj->subs ? "Usage: " : "       ", path, *p);
	}
}

void pl_cmd_usage(FILE *f, const struct pl_cmd *const *cmds)
{
	fprintf(f, "Usage: pktlens [-n NETNS] [-j] [-p] OBJECT [ARGS]\n\n");
	for (const struct pl_cmd *c; (c = *cmds); cmds++) {
		if (!c->subs) {
			print_synopsis(f, "       ", c->name, c);
			continue;
		}
		for (const struct pl_cmd *const *s = c->subs; *s; s++) {
			char path[128];

			snprintf(path, sizeof(path), "%s %s", c->name, (*s)->name);
			print_synopsis(f, "       ", path, *s);
		}
	}
}

const struct pl_cmd *pl_cmd_select(const struct pl_cmd *parent, const struct pl_cmd *const *cmds,
				   const char *word)
{
	const struct pl_cmd *hit = NULL;
	char names[256] = "", see[96];
	size_t n = 0, k = 0, total, used = 0, len = strlen(word);

	for (const struct pl_cmd *const *p = cmds; *p; p++) {
		const struct pl_cmd *c = *p;

		if (!strcmp(c->name, word))
			return c;
		if (len && !strncmp(c->name, word, len))
			hit = c, n++;
	}
	if (n == 1)
		return hit;
	snprintf(see, sizeof(see), "see pktlens %s%s--help", parent ? parent->name : "",
		 parent ? " " : "");
	total = n;
	for (const struct pl_cmd *const *p = cmds; !n && *p; p++)
		total++;
	for (const struct pl_cmd *const *p = cmds; *p && used < sizeof(names); p++) {
		const struct pl_cmd *c = *p;

		if (n && !(len && !strncmp(c->name, word, len)))
			continue;
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
					 !k ? "" : k == total - 1 ? " or " : ", ", c->name);
		k++;
	}
	if (n)
		pl_err("%s%s'%s' is ambiguous: %s (%s)", parent ? parent->name : "", parent ? ": " : "",
		       word, names, see);
	else if (parent && (parent->flags & PL_CMD_NAME_SUBS))
		pl_err("%s: what is '%s'? (%s; %s)", parent->name, word, names, see);
	else
		pl_err("%s%swhat is '%s'? (%s)", parent ? parent->name : "", parent ? ": " : "", word,
		       see);
	return NULL;
}

/*
 * @fmt into @buf with its "%llu"s replaced by @nums and its "%s"s by
 * @words, in order (the tables' messages: no printf on a table's text).
 */
static void subst(char *buf, size_t len, const char *fmt, const uint64_t *nums, const char **words)
{
	size_t used = 0;

	while (*fmt && used + 1 < len) {
		if (nums && !strncmp(fmt, "%llu", 4)) {
			used += (size_t)snprintf(buf + used, len - used, "%llu",
						 (unsigned long long)*nums++);
			fmt += 4;
		} else if (words && !strncmp(fmt, "%s", 2)) {
			used += (size_t)snprintf(buf + used, len - used, "%s", *words++);
			fmt += 2;
		} else {
			buf[used++] = *fmt++;
		}
	}
	buf[used < len ? used : len - 1] = 0;
}

/* Check and store @s for @o; an exit code, after the message */
static int set_opt(const struct pl_opt *o, const char *s, void *cfg, const char *path)
{
	void *field = (char *)cfg + o->off;
	char name[64], why[256] = "", bad[320];
	const char *fmt = o->bad;
	uint64_t v;
	int err = 0;

	switch (o->type) {
	case PL_OPT_FLAG:
		if (o->flags & PL_OPT_OR)
			*(int *)field |= o->val;
		else
			*(int *)field = o->val;
		return PL_EXIT_OK;
	case PL_OPT_COUNT:
		(*(int *)field)++;
		return PL_EXIT_OK;
	case PL_OPT_STRING:
		*(const char **)field = s;
		return PL_EXIT_OK;
	case PL_OPT_UINT:
	case PL_OPT_DURATION:
		if (o->type == PL_OPT_DURATION)
			err = pl_parse_u64(s, 1, 86400 * 366, &v);
		else
			err = pl_parse_u64(s, o->min, o->max, &v);
		if (!err && o->size == sizeof(uint32_t))
			*(uint32_t *)field = (uint32_t)v;
		else if (!err)
			*(uint64_t *)field = v;
		if (!fmt)
			fmt = o->type == PL_OPT_DURATION ?
			      ": not a number of seconds from 1 to 31622400 (366 days)" :
			      " is wrong: expected a number from %llu to %llu";
		break;
	case PL_OPT_CHOICE:
		err = -EINVAL;
		for (const struct pl_choice *c = o->choices; c->name && err; c++)
			if (!strcmp(c->name, s)) {
				*(int *)field = c->val;
				err = 0;
			}
		if (!fmt) {
			char list[200];

			snprintf(why, sizeof(why), " is wrong: expected %s",
				 choice_list(o->choices, true, list, sizeof(list)));
			fmt = why;
		}
		break;
	case PL_OPT_PARSE:
		err = o->parse(s, field, why, sizeof(why));
		if (err && *why) {
			snprintf(bad, sizeof(bad), ": %s", why);
			fmt = bad;
		}
		break;
	}
	if (!err)
		return PL_EXIT_OK;
	if (fmt != bad) {
		uint64_t range[2] = { o->min, o->max };

		subst(bad, sizeof(bad), fmt ? fmt : " is wrong", range, NULL);
	}
	pl_err("%s: %s '%s'%s", path, opt_name(o, name, sizeof(name)), s, bad);
	return PL_EXIT_USAGE;
}

/*
 * Does @argv give an option of @c that sends data to stdout ("-" for a
 * PL_OPT_STDOUT option: -w -, -w-, --write -, --write=-)? Looked for before
 * parsing, so that an error in any option, before it or after, leaves
 * stdout to the data's reader.
 */
static bool stdout_data(const struct pl_cmd *c, int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : "";

		for (const struct pl_opt *o = c->opts; o && (o->name || o->short_name); o++) {
			size_t n = o->name ? strlen(o->name) : 0;

			if (!(o->flags & PL_OPT_STDOUT))
				continue;
			if (o->short_name && a[0] == '-' && a[1] == o->short_name &&
			    (!strcmp(a + 2, "-") || (!a[2] && !strcmp(next, "-"))))
				return true;
			if (n && !strncmp(a, "--", 2) && !strncmp(a + 2, o->name, n) &&
			    (!strcmp(a + 2 + n, "=-") || (!a[2 + n] && !strcmp(next, "-"))))
				return true;
		}
	}
	return false;
}

/* Is @word one of @longopts, as --NAME or --NAME=VALUE? */
static bool long_opt(const struct option *longopts, const char *word)
{
	size_t len;

	if (strncmp(word, "--", 2))
		return false;
	word += 2;
	len = strcspn(word, "=");
	for (const struct option *l = longopts; l->name; l++)
		if (strlen(l->name) == len && !strncmp(l->name, word, len))
			return true;
	return false;
}

int pl_opt_no_value(int opt, const char *word)
{
	const char *eq = strchr(word, '=');

	/* getopt_long() knew the name (optopt: its value; 0 when unknown) but not a value for it */
	return opt == '?' && optopt && !strncmp(word, "--", 2) && eq ? (int)(eq - word) : 0;
}

/*
 * getopt's @opt when it is none of the command's: -j, -p (-1: go on), -h
 * (help: PL_EXIT_OK), or a missing value or an unknown option (PL_EXIT_USAGE)
 */
static int common_opt(int opt, const struct pl_cmd *obj, const char *path, char **argv)
{
	char name[64];
	const char *word = argv[optind - 1];
	int n = pl_opt_no_value(opt, word);

	if (n) {
		pl_err("%s: %.*s takes no value (see pktlens %s --help)", path, n, word, obj->name);
		return PL_EXIT_USAGE;
	}
	if (optopt && optopt < 256) {
		snprintf(name, sizeof(name), "-%c", optopt);
		word = name;
	}
	switch (opt) {
	case 'p':
		pl_g.pretty = true;
		/* fall through */
	case 'j':
		pl_g.json = true;
		return -1;
	case 'h':
		print_help(stdout, obj);
		return PL_EXIT_OK;
	case ':':
		pl_err("%s: %s needs a value (see pktlens %s --help)", path, word, obj->name);
		return PL_EXIT_USAGE;
	default:
		pl_err("%s: unknown option '%s' (see pktlens %s --help)", path, word, obj->name);
		return PL_EXIT_USAGE;
	}
}

/* -j or -p (as common_opt() takes them): sets the output and says whether @s was one */
bool pl_json_word(const char *s)
{
	if (!strcmp(s, "-p") || !strcmp(s, "--pretty"))
		pl_g.pretty = true;
	else if (strcmp(s, "-j") && strcmp(s, "--json"))
		return false;
	pl_g.json = true;
	return true;
}

/*
 * -j or -p anywhere among @c's options, before getopt reads them: an error
 * about an option before it (`flows eth0 --sort foo -j`) is then JSON too,
 * as with -j first. A word that is another option's value is not one.
 */
static void json_prescan(const struct pl_cmd *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		bool value = false;

		if (!strcmp(w, "--"))
			return;
		if (pl_json_word(w) || w[0] != '-' || !w[1])
			continue;
		for (const struct pl_opt *o = c->opts; o && (o->name || o->short_name); o++) {
			if (!takes_value(o) || (o->flags & PL_OPT_NOPARSE))
				continue;
			if (w[1] == '-' ? o->name && !strcmp(w + 2, o->name) :
			    o->short_name == w[1] && !w[2])
				value = true;
		}
		i += value;	/* "--collector X", "-w X": X is the value */
	}
}

/* Whether the option of @opts named @name was given */
static bool seen_named(const struct pl_opt *opts, const bool *seen, const char *name)
{
	for (int i = 0; (opts[i].name || opts[i].short_name) && i < OPTS_MAX; i++)
		if (opts[i].name && !strcmp(opts[i].name, name))
			return seen[i];
	return false;
}

/* One command's options and positionals, then its handler */
static int run_leaf(const struct pl_cmd *c, const struct pl_cmd *obj, const char *path, int argc,
		    char **argv)
{
	struct option longopts[OPTS_MAX + 4];
	const struct pl_opt *by_val[OPTS_MAX] = { NULL };
	char shorts[2 * OPTS_MAX + 8], name[64];
	bool seen[OPTS_MAX] = { false };
	size_t nl = 0, ns = 0;
	void *cfg = calloc(1, c->cfg_size ? c->cfg_size : 1);
	int opt, i, n, ret = PL_EXIT_USAGE;
	char **pos;

	if (!cfg) {
		pl_err("%s: %s", path, strerror(ENOMEM));
		return PL_EXIT_FAIL;
	}
	if (c->defaults)
		memcpy(cfg, c->defaults, c->cfg_size);
	if (c->flags & PL_CMD_RAW) {
		for (i = 1; i < argc; i++)
			if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
				print_help(stdout, obj);
				ret = PL_EXIT_OK;
				goto out;
			}
		/* -j and -p after the command's name, as every command takes them */
		for (optind = 1; optind < argc && pl_json_word(argv[optind]); optind++)
			;
		goto positionals;
	}
	if (c->flags & PL_CMD_STOP)
		shorts[ns++] = '+';
	shorts[ns++] = ':';
	for (i = 0; c->opts && (c->opts[i].name || c->opts[i].short_name) && i < OPTS_MAX; i++) {
		const struct pl_opt *o = &c->opts[i];

		by_val[i] = o;
		if (o->flags & PL_OPT_NOPARSE)
			continue;
		if (o->name)
			longopts[nl++] = (struct option){ o->name, takes_value(o) ? required_argument :
							  no_argument, NULL, 256 + i };
		if (o->short_name) {
			shorts[ns++] = o->short_name;
			if (takes_value(o))
				shorts[ns++] = ':';
		}
	}
	for (const struct pl_opt *o = common_opts; o->name; o++) {
		longopts[nl++] = (struct option){ o->name, no_argument, NULL, PL_OPT_LONG + o->short_name };
		shorts[ns++] = o->short_name;
	}
	longopts[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns] = 0;
	pl_g.data_on_stdout = stdout_data(c, argc, argv);
	if (!(c->flags & PL_CMD_STOP))
		json_prescan(c, argc, argv);
	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		const struct pl_opt *o = NULL;

		if (opt >= PL_OPT_LONG)
			opt -= PL_OPT_LONG;	/* a common option's long form */
		if (opt >= 256) {
			o = by_val[opt - 256];
		} else {
			for (i = 0; i < OPTS_MAX && by_val[i]; i++)
				if (by_val[i]->short_name == opt && !(by_val[i]->flags & PL_OPT_NOPARSE))
					o = by_val[i];
		}
		if (o) {
			/*
			 * Each option at most once: a second value would silently win, a second
			 * flag says nothing more (repeatable: COUNT, -dd; PARSE, e.g. --verdict)
			 */
			if (seen[o - c->opts] && o->type != PL_OPT_COUNT && o->type != PL_OPT_PARSE) {
				pl_err("%s: %s given twice", path, opt_name(o, name, sizeof(name)));
				ret = PL_EXIT_USAGE;
				goto out;
			}
			seen[o - c->opts] = true;
			/* `--collector --duration 1`: the value was left out, not "--duration" */
			if (optarg && optarg == argv[optind - 1] && long_opt(longopts, optarg)) {
				pl_err("%s: %s needs a value before %s", path,
				       opt_name(o, name, sizeof(name)), optarg);
				ret = PL_EXIT_USAGE;
				goto out;
			}
			if ((ret = set_opt(o, optarg, cfg, path)))
				goto out;
			continue;
		}
		ret = common_opt(opt, obj, path, argv);
		if (ret >= 0)
			goto out;
	}
positionals:
	pos = argv + optind;
	n = argc - optind;
	/* a -j (or -p) after the words of a command whose options stop at the first word */
	if ((c->flags & (PL_CMD_STOP | PL_CMD_RAW)) && n > 0 && pl_json_word(pos[n - 1]))
		n--;
	for (i = 0; c->opts && (c->opts[i].name || c->opts[i].short_name) && i < OPTS_MAX; i++) {
		const struct pl_opt *o = &c->opts[i];

		if (seen[i] && o->needs && !seen_named(c->opts, seen, o->needs)) {
			pl_err("%s: %s: only with --%s", path, opt_name(o, name, sizeof(name)), o->needs);
			ret = PL_EXIT_USAGE;
			goto out;
		}
		if (!(o->flags & PL_OPT_REQUIRED) || seen[i])
			continue;
		if (o->missing)
			pl_err("%s: %s", path, o->missing);
		else
			pl_err("%s: %s %s is needed", path, opt_name(o, name, sizeof(name)), o->arg);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	if (n < c->min_args) {
		if (c->few)
			pl_err("%s: %s", path, c->few);
		else
			pl_err("%s: needs %s (see pktlens %s --help)", path, c->args, obj->name);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	if (c->max_args >= 0 && n > c->max_args) {
		char msg[512];

		const char *words[2] = { pos[c->max_args], obj->name };

		/* the extra word is always named: a .many without it is the hint after it */
		if (c->many && strstr(c->many, "%s"))
			subst(msg, sizeof(msg), c->many, NULL, words);
		else if (c->many)
			snprintf(msg, sizeof(msg), "what is '%s'? (%s)", words[0], c->many);
		else
			snprintf(msg, sizeof(msg), "what is '%s'? (see pktlens %s --help)", words[0], words[1]);
		pl_err("%s: %s", path, msg);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	/* an empty DEV would read as "no such interface ''" further on */
	if (n && !*pos[0] && c->args && !strncmp(c->args + (c->args[0] == '['), "DEV", 3)) {
		pl_err("%s: DEV is empty: an interface name is needed", path);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	if (n && c->args && !strncmp(c->args + (c->args[0] == '['), "DEV", 3) &&
	    !(c->flags & PL_CMD_DEV_OWN) && (ret = pl_dev_arg(path, &pos[0])))
		goto out;
	pos[n] = NULL;
	ret = c->fn(cfg, n, pos);
out:
	free(cfg);
	return ret;
}

/* An object's words up to its sub-command: the common options only */
static int run_obj(const struct pl_cmd *obj, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, PL_OPT_LONG + 'j' },
		{ "pretty", no_argument, NULL, PL_OPT_LONG + 'p' },
		{ "help", no_argument, NULL, PL_OPT_LONG + 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct pl_cmd *sub;
	char path[128];
	int opt;

	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+jph", longopts, NULL)) != -1) {
		int ret = common_opt(opt >= PL_OPT_LONG ? opt - PL_OPT_LONG : opt, obj, obj->name, argv);

		if (ret >= 0)
			return ret;
	}
	if (optind >= argc) {
		/* -j: a JSON error, as for `pktlens -j` without a command */
		if (pl_g.json)
			pl_err("%s: no sub-command (see pktlens %s --help)", obj->name, obj->name);
		else
			print_usage(stderr, obj);
		return PL_EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "help")) {
		print_help(stdout, obj);
		return PL_EXIT_OK;
	}
	sub = pl_cmd_select(obj, obj->subs, argv[optind]);
	if (!sub)
		return PL_EXIT_USAGE;
	snprintf(path, sizeof(path), "%s %s", obj->name, sub->name);
	argc -= optind;
	argv += optind;
	return run_leaf(sub, obj, path, argc, argv);
}

int pl_cmd_run(const struct pl_cmd *const *cmds, int argc, char **argv, int (*enter)(const char *name))
{
	const struct pl_cmd *c = pl_cmd_select(NULL, cmds, argv[0]);
	int ret;

	if (!c)
		return PL_EXIT_USAGE;
	if (enter && (ret = enter(c->name)))
		return ret;
	return c->subs ? run_obj(c, argc, argv) : run_leaf(c, c, c->name, argc, argv);
}

static const char *const type_names[] = {
	[PL_OPT_FLAG] = "flag", [PL_OPT_COUNT] = "count", [PL_OPT_UINT] = "unsigned",
	[PL_OPT_DURATION] = "duration", [PL_OPT_STRING] = "string", [PL_OPT_CHOICE] = "choice",
	[PL_OPT_PARSE] = "string",
};

static void dump_cmd(struct jw *w, const char *path, const struct pl_cmd *c)
{
	char parts[PARTS_MAX][160], name[64], syn[2048];
	int n = syn_parts(c, parts);
	size_t used = 0;

	used = (size_t)snprintf(syn, sizeof(syn), "pktlens %s", path);
	for (int i = 0; i < n && used < sizeof(syn); i++)
		used += (size_t)snprintf(syn + used, sizeof(syn) - used, " %s", parts[i]);
	if (!pl_g.json) {
		printf("%s\n", syn);
		return;
	}
	jw_obj_open(w);
	jw_str_field(w, "command", path);
	jw_str_field(w, "synopsis", syn);
	jw_key(w, "options");
	jw_arr_open(w);
	for (const struct pl_opt *o = c->opts; o && (o->name || o->short_name); o++) {
		jw_obj_open(w);
		snprintf(name, sizeof(name), "--%s", o->name ? o->name : "");
		jw_str_field(w, "long", o->name ? name : NULL);
		snprintf(name, sizeof(name), "-%c", o->short_name);
		jw_str_field(w, "short", o->short_name ? name : NULL);
		jw_str_field(w, "type", type_names[o->type]);
		jw_str_field(w, "arg", takes_value(o) ? (o->arg ? o->arg : "VALUE") : NULL);
		if (o->type == PL_OPT_UINT) {
			jw_u64_field(w, "min", o->min);
			jw_u64_field(w, "max", o->max);
		}
		if (o->choices) {
			jw_key(w, "choices");
			jw_arr_open(w);
			for (const struct pl_choice *ch = o->choices; ch->name; ch++)
				if (!ch->hidden)
					jw_str(w, ch->name);
			jw_arr_close(w);
		}
		jw_bool_field(w, "required", o->flags & PL_OPT_REQUIRED);
		jw_bool_field(w, "hidden", !documented_for(o, c));
		jw_str_field(w, "help", o->help);
		jw_obj_close(w);
	}
	jw_arr_close(w);
	jw_obj_close(w);
}

void pl_cmd_dump(const struct pl_cmd *const *cmds)
{
	struct jw w;

	jw_init(&w, stdout, pl_g.pretty);
	if (pl_g.json) {
		jw_obj_open(&w);
		jw_key(&w, "common");
		jw_arr_open(&w);
		for (const struct pl_opt *o = common_opts; o->name; o++) {
			char name[64];

			snprintf(name, sizeof(name), "--%s", o->name);
			jw_str(&w, name);
			snprintf(name, sizeof(name), "-%c", o->short_name);
			jw_str(&w, name);
		}
		jw_arr_close(&w);
		jw_key(&w, "commands");
		jw_arr_open(&w);
	}
	for (const struct pl_cmd *c; (c = *cmds); cmds++) {
		if (!c->subs) {
			dump_cmd(&w, c->name, c);
			continue;
		}
		for (const struct pl_cmd *const *s = c->subs; *s; s++) {
			char path[128];

			snprintf(path, sizeof(path), "%s %s", c->name, (*s)->name);
			dump_cmd(&w, path, *s);
		}
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
	}
}
