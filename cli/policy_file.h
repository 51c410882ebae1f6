/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A whole rule set as text: the lines of a `policy load` file, or the rules
 * of a config entry (`pktlens apply`), parsed with the rule grammar
 * (policy_rule.h) and given their final ids, so that a rule already running
 * unchanged keeps its id and its counters.
 */
#ifndef __PKTLENS_CLI_POLICY_FILE_H
#define __PKTLENS_CLI_POLICY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"
#include "../loader/loader.h"

/* Where a rule of a set came from, for errors. */
struct pl_rule_origin {
	__u32 id;		/* the rule's id once pl_rule_list_finish() gave it */
	const char *file;	/* not owned */
	int line, col;
	int redirect_col;	/* of --redirect's value (0: none) */
	char *expr;		/* its tcpdump expression (owned), or NULL */
};

/* Rules parsed from text, each with its origin (not the loader's struct pl_ruleset). */
struct pl_rule_list {
	struct pl_rule *rules;
	struct pl_rule_origin *orig;
	size_t n, cap;
	bool in_order;		/* a config's rules: list order is run order (see _finish()) */
	/* pl_rule_list_read(): a line says the set is empty ("# DEV: 0 rules", as `policy list`) */
	bool says_empty;
	/* set by _finish() when a rule without --id runs before one listed above it, for a warning */
	char note[384];
};

/*
 * Parse @line (modified: split in place), rule @lineno of @file whose text
 * starts at column @col0, and append it; blank lines and comments add
 * nothing. 0, or -EINVAL/-ENOMEM with "FILE:LINE:COL: why" in @why (also
 * for a rule past PL_POLICY_RULES_MAX).
 */
int pl_rule_list_add_line(struct pl_rule_list *rl, char *line, const char *file, int lineno,
			  int col0, char *why, size_t whylen);
/*
 * Call @fn with each line of the file @path (without its newline; at most
 * 8 KiB; a UTF-8 byte order mark at its start blanked) and its number, until
 * @fn returns nonzero (that is returned; @fn fills @why). -EIO (with @why)
 * when it cannot be read, -EINVAL ("FILE:LINE[:COL]: why") for a line too
 * long or a NUL byte. @regular_max: 0 reads whatever @path is (a pipe, for
 * the command line); else @path must be a regular file of at most that many
 * bytes (-EIO otherwise), opened without blocking on a FIFO: a config's
 * rules file, read by a daemon that must never hang on a reload.
 */
int pl_rules_file_each(const char *path, size_t regular_max,
		       int (*fn)(char *line, int lineno, void *ctx), void *ctx, char *why,
		       size_t whylen);
/*
 * Every line of the file @path (one rule per line, # comments), as
 * pl_rule_list_add_line(); -EIO (with @why) when it cannot be read. A
 * comment line that is the header `policy list` prints for an empty set
 * ("# DEV: 0 rules") sets @rl->says_empty: a file without rules empties a
 * rule set only when it says so (a zero-byte file is more likely a failed
 * save than a wish to remove every rule).
 */
int pl_rule_list_read(struct pl_rule_list *rl, const char *path, char *why, size_t whylen);
/*
 * @line is "# NAME: 0 rules" (blanks around), the header `policy list`
 * prints for an empty set: a file of no rules that means to empty a set.
 */
bool pl_rules_line_says_empty(const char *line);
/*
 * Check the set (an id given twice: the later line is the error) and give
 * every rule without --id its id: that of an identical rule in @old (the
 * running set), else the lowest id in 1..PL_POLICY_RULES_MAX that neither
 * the set nor a running rule uses, else one of a running rule the set
 * replaces (with counters of its own: ctr PL_RULE_CTR_NEW). *texts
 * (malloc'd, sorted by id; the texts stay the set's) gets the expression of
 * each PL_M_EXPR rule. With @rl->in_order (a config's rules, run in the
 * order listed within a direction and priority): ids given with --id must
 * rise in list order there (else -EINVAL naming the later rule); where ids
 * kept so would run rules out of that order, the rules without --id are
 * numbered afresh, each between the rules around it in its priority,
 * keeping the counter key (ctr) of the identical running rule it matched,
 * the others PL_RULE_CTR_NEW (-EINVAL when the given ids around one leave
 * no id free). 0, or -EINVAL/-ENOMEM with @why. Without @rl->in_order (a
 * rules file), where the given ids leave no room to run a rule without
 * --id in list order, @rl->note says which ("FILE:LINE:COL: ...").
 */
int pl_rule_list_finish(struct pl_rule_list *rl, const struct pl_rule *old, size_t nold,
			struct pl_rule_text **texts, size_t *ntexts, char *why, size_t whylen);
/*
 * A pl_policy_commit() error that names a rule ("rule N: why"), as
 * "FILE:LINE:COL: why" of that rule of @rl, into @buf; NULL when it names
 * none of them. After pl_rule_list_finish() (the commit may sort the rules).
 */
const char *pl_rule_list_locate(const struct pl_rule_list *rl, const char *why, char *buf,
				size_t len);
void pl_rule_list_free(struct pl_rule_list *rl);

/*
 * The id for a new rule: one above the highest in use, or where that would
 * leave the range (ids are 1..PL_POLICY_RULES_MAX, so that `policy list`
 * output always loads back), the lowest free one. 0 when all are taken.
 */
__u32 pl_rules_next_id(const struct pl_rule *rules, size_t n);

#endif /* __PKTLENS_CLI_POLICY_FILE_H */
