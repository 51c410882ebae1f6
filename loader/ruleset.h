/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the loader: building one hook's rule set (loader/ruleset.c) for
 * pl_policy_commit() (loader/policy.c).
 */
#ifndef __PKTLENS_LOADER_RULESET_H
#define __PKTLENS_LOADER_RULESET_H

#include "loader.h"

struct pktlens_xdp;
struct pktlens_tc;

/* One hook's rule set, loaded and filled, not yet live. */
struct pl_ruleset {
	const char *hook;	/* "xdp in", "tc in", "tc out" */
	int chain_fd;
	__u32 dir;
	struct pktlens_xdp *x;
	struct pktlens_tc *t;
	int prog_fd;		/* pktlens_*_policy; -1: no rules */
	int stage_fd;		/* expression stage, -1 if the rules have none */
	__u32 gen;		/* its PL_CHAIN_POLICY_GEN slot */
	__u32 slot;		/* enum pl_slot */
	__u32 xdp_flags;	/* pl_meta_xdp_load_flags() of the attachment (XDP frags, ...) */
};

/*
 * Load the programs of @rs for the rules of its direction in @rules (sorted
 * by pl_policy_sort()) and fill their maps; with expression rules, also the
 * expression stage. Nothing is live yet. 0, or -errno with @why.
 */
int pl_ruleset_build(const struct pl_policy *p, struct pl_ruleset *rs, const struct pl_rule *rules,
		     size_t n, const struct pl_rule_text *texts, size_t ntexts, char *why,
		     size_t whylen);
void pl_ruleset_free(struct pl_ruleset *rs);
/*
 * Load the tc counting programs that a filter chain hands packets back to
 * (PL_CHAIN_MAIN, *_main in tc/pktlens_tc.bpf.c), of each direction in the
 * bits @dirs (1 << PL_DIR_IN, 1 << PL_DIR_OUT), against the maps of the
 * attachment pinned in @dir, as attach would have, from one object. attach
 * loads them only when it chains a filter itself; `filter set` and `sample`
 * on first use (loader/chain.c). 0 and their fds in @fds (-1 for the
 * others), or -errno with @why.
 */
int pl_chain_main_load(const char *dir, unsigned int dirs, int fds[2], char *why, size_t whylen);
/* 0/1: the LPM trie of source/destination a rule goes into; -1: the ordered list */
int pl_rule_lpm_field(const struct pl_rule *r);

#endif /* __PKTLENS_LOADER_RULESET_H */
