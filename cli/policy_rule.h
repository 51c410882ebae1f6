/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The policy rule grammar: the words of `pktlens policy add` and the lines
 * of `policy load` files become a struct pl_rule; `policy list` prints rules
 * back in it, so its output loads again. No kernel access (--redirect looks
 * interface names up).
 */
#ifndef __PKTLENS_CLI_POLICY_RULE_H
#define __PKTLENS_CLI_POLICY_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

#define PL_RULE_PRIO_DEFAULT_N 1000
#define PL_RULE_PRIO_DEFAULT 1000U
/* --per-size's bounds as text for the help (the numbers: pktlens.h) */
/* the highest rule id as text for the help (the number: pktlens.h) */
#define PL_POLICY_RULES_MAX_N 262144
_Static_assert(PL_POLICY_RULES_MAX_N == PL_POLICY_RULES_MAX, "PL_POLICY_RULES_MAX_N is PL_POLICY_RULES_MAX");
#define PL_RULE_KEYS_MAX_N 16777216
#define PL_RULE_KEYS_DEFAULT_N 65536
_Static_assert(PL_RULE_KEYS_MAX_N == PL_LIM_KEYS_MAX && PL_RULE_KEYS_DEFAULT_N == PL_LIM_KEYS_DEFAULT,
	       "--per-size's help says other bounds than PL_LIM_KEYS_*");

#include "opt.h"

/* The options of a rule (cli/opt.h), for `policy add` and its help; parsed here. */
extern const struct pl_opt pl_rule_opts[];

/* A word of a rule. */
struct pl_rule_tok {
	const char *s;
	int col;		/* 1-based column in the line (files), or argv position */
};

/* Where and why a rule is wrong. */
struct pl_rule_err {
	int col;
	bool args;	/* in: the words are arguments (col is one's number), not a line's */
	char msg[PL_FILTER_EXPR_MAX + 512];	/* room for an expression and the reason after it */
};

/*
 * Split @line into at most @max words in place (quotes '...' "..." keep
 * spaces); # starts a comment. The number of words, or -EINVAL with @e.
 */
int pl_rule_tokenize(char *line, struct pl_rule_tok *t, int max, struct pl_rule_err *e);
/* Whether @line has no words: blanks alone, or a comment (as pl_rule_tokenize() splits it). */
bool pl_rule_line_blank(const char *line);
/*
 * A rule from @n words; r->id 0 when no --id. Words that are not options
 * form a tcpdump expression, joined by spaces: *expr (malloc'd) or NULL.
 * 0, or -EINVAL/-ENOMEM with @e.
 */
int pl_rule_parse(const struct pl_rule_tok *t, int n, struct pl_rule *r, char **expr,
		  struct pl_rule_err *e);
/* The rule in `policy add` syntax, --id first; @expr: its expression or NULL. */
void pl_rule_format(const struct pl_rule *r, const char *expr, char *buf, size_t n);
/*
 * pl_rule_format(); with @target_gone a --redirect as `ifindex:N`, the way
 * a target that is gone is shown, whether or not an interface has N now
 * (pl_policy_redirect_gone()).
 */
void pl_rule_format_gone(const struct pl_rule *r, const char *expr, bool target_gone, char *buf,
			 size_t n);

/*
 * Whether @r redirects to an interface index that does not exist and that
 * none of the running rules @old redirects to: `ifindex:N` takes back a
 * target that is gone, it does not name a missing interface.
 */
bool pl_rule_redirect_missing(const struct pl_rule *r, const struct pl_rule *old, size_t nold);
/* "none", "pass", "drop", "redirect", "sample", "limit" (enum pl_action), or "?". */
const char *pl_rule_action_name(__u8 a);
/* "rule", "src", "dst", "flow" (enum pl_lim_per), or "?". */
const char *pl_rule_per_name(__u8 per);
/* A limit in the rule syntax: "--limit R --burst B --per P [--per-size N] --over A". */
void pl_rule_limit_format(const struct pl_limit *l, char *buf, size_t n);

#endif /* __PKTLENS_CLI_POLICY_RULE_H */
