/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A whole rule set as text: the lines of a `policy load` file, or the rules
 * of a config entry (`pktlens apply`), parsed with the rule grammar
 * (policy_rule.h) and given their final ids, so that a rule already running
 * unchanged keeps its id and its counters.
 */
#ifndef __PKTLENS_CLI_POLICY_FILE_H
#define __PKTLENS_CLI_POLICY_FILE_H

#include <stddef.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"
#include "../loader/loader.h"

/* Where a rule of a set came from, for errors. */
struct pl_rule_origin {
	const char *file;	/* not owned */
	int line, col;
	char *expr;		/* its tcpdump expression (owned), or NULL */
};

struct pl_ruleset {
	struct pl_rule *rules;
	struct pl_rule_origin *orig;
	size_t n, cap;
};

/*
 * Parse @line (modified: split in place), rule @lineno of @file whose text
 * starts at column @col0, and append it; blank lines and comments add
 * nothing. 0, or -EINVAL/-ENOMEM with "FILE:LINE:COL: why" in @why.
 */
int pl_ruleset_add_line(struct pl_ruleset *rs, char *line, const char *file, int lineno, int col0,
			char *why, size_t whylen);
/*
 * Call @fn with each line of the file @path (without its newline; at most
 * 8 KiB) and its number, until @fn returns nonzero (that is returned; @fn
 * fills @why). -EIO (with @why) when it cannot be read, -EINVAL for a line
 * too long.
 */
int pl_rules_file_each(const char *path, int (*fn)(char *line, int lineno, void *ctx), void *ctx,
		       char *why, size_t whylen);
/*
 * Every line of the file @path (one rule per line, # comments), as
 * pl_ruleset_add_line(); -EIO (with @why) when it cannot be read.
 */
int pl_ruleset_read(struct pl_ruleset *rs, const char *path, char *why, size_t whylen);
/*
 * Check the set (an id given twice: the later line is the error) and give
 * every rule without --id its id: that of an identical rule in @old (the
 * running set), else one above every id in use. *texts (malloc'd, sorted by
 * id; the texts stay the set's) gets the expression of each PL_M_EXPR rule.
 * 0, or -EINVAL/-ENOMEM with @why.
 */
int pl_ruleset_finish(struct pl_ruleset *rs, const struct pl_rule *old, size_t nold,
		      struct pl_rule_text **texts, size_t *ntexts, char *why, size_t whylen);
void pl_ruleset_free(struct pl_ruleset *rs);

/* One above the highest id of @rules (1 for none). */
__u32 pl_rules_next_id(const struct pl_rule *rules, size_t n);
/* Order of struct pl_rule_text by id, for pl_qsort()/pl_bsearch(). */
int pl_rule_text_cmp(const void *a, const void *b);

#endif /* __PKTLENS_CLI_POLICY_FILE_H */
