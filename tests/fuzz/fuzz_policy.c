// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: random text as a `pktlens policy load` file, line by
 * line through the parser that command uses (cli/policy_rule.c), without a
 * kernel. Like policy load it stops at the first bad line. Every rule parsed
 * is checked for sanity, then printed the way `policy list` prints it and
 * parsed again: it must come back the same (`policy list DEV > FILE` output
 * is documented to load back). Aborts (a finding) otherwise.
 *
 *   make fuzz (builds .output/fuzz_policy; seeds in tests/fuzz/corpus/policy/)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../../cli/policy_rule.h"
#include "../../loader/loader.h"

#define MAX_TOKS 256	/* as policy load */

static void fail(const char *what, const char *line, const char *detail)
{
	fprintf(stderr, "fuzz_policy: %s\n  line: %s\n  %s\n", what, line, detail ? detail : "");
	abort();
}

static bool prefix_ok(const __u8 *addr, const __u8 *mask, __u8 len)
{
	for (unsigned int i = 0; i < 128; i++) {
		bool in = i < len, bit = mask[i / 8] & (0x80 >> (i % 8));

		if (in != bit)
			return false;
	}
	for (int i = 0; i < 16; i++)
		if (addr[i] & ~mask[i])
			return false;
	return true;
}

/* An IPv4 prefix lies in ::ffff:0:0/96 (IPv4-mapped); an IPv6 one anywhere. */
static bool family_ok(__u8 fam, const __u8 *addr, __u8 len)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return fam == PL_FAM_IPV6 || (len >= 96 && !memcmp(addr, mapped, sizeof(mapped)));
}

/* What a parsed rule must look like, whatever the text was. */
static void check_rule(const struct pl_rule *r, const char *expr, const char *line)
{
	char d[128];

	snprintf(d, sizeof(d), "id %u dir %u action %u match 0x%x", r->id, r->dir, r->action,
		 r->match);
	if (r->id > PL_POLICY_RULES_MAX || (r->dir != PL_DIR_IN && r->dir != PL_DIR_OUT))
		fail("bad id or direction", line, d);
	if (r->action == PL_ACT_NONE || r->action >= PL_ACT_MAX)
		fail("no valid action", line, d);
	if ((r->action == PL_ACT_REDIRECT || r->action == PL_ACT_SAMPLE) && !r->arg)
		fail("redirect/sample without an argument", line, d);
	if (r->match & ~(PL_M_SRC | PL_M_DST | PL_M_PROTO | PL_M_SPORT | PL_M_DPORT | PL_M_VLAN |
			 PL_M_EXPR))
		fail("unknown match bits", line, d);
	if ((r->match & (PL_M_SRC | PL_M_DST)) && r->fam != PL_FAM_IPV4 && r->fam != PL_FAM_IPV6)
		fail("address rule without a family", line, d);
	if (!(r->match & (PL_M_SRC | PL_M_DST)) && r->fam)
		fail("family without an address", line, d);
	if ((r->match & PL_M_SRC) && !family_ok(r->fam, r->src, r->src_len))
		fail("source prefix outside its family", line, d);
	if ((r->match & PL_M_DST) && !family_ok(r->fam, r->dst, r->dst_len))
		fail("destination prefix outside its family", line, d);
	if ((r->match & PL_M_SRC) && (r->src_len > 128 || !prefix_ok(r->src, r->src_mask,
								     r->src_len)))
		fail("source prefix not masked", line, d);
	if ((r->match & PL_M_DST) && (r->dst_len > 128 || !prefix_ok(r->dst, r->dst_mask,
								     r->dst_len)))
		fail("destination prefix not masked", line, d);
	if ((r->match & PL_M_SPORT) && r->sport_lo > r->sport_hi)
		fail("source port range inverted", line, d);
	if ((r->match & PL_M_DPORT) && r->dport_lo > r->dport_hi)
		fail("destination port range inverted", line, d);
	if ((r->match & PL_M_VLAN) && r->vlan > 4095)
		fail("VLAN id above 4095", line, d);
	if (!(r->match & PL_M_EXPR) != !expr)
		fail("expression flag and text disagree", line, d);
	if (expr && (strlen(expr) >= PL_FILTER_EXPR_MAX ||
		     r->expr_hash != pl_policy_expr_hash(expr)))
		fail("expression too long or hash wrong", line, expr);
}

/* Print @r as policy list does, parse that again: the same rule must come back. */
static void round_trip(const struct pl_rule *parsed, const char *expr, const char *line)
{
	char text[PL_FILTER_EXPR_MAX + 512], copy[sizeof(text)], *expr2 = NULL;
	struct pl_rule_tok toks[MAX_TOKS];
	struct pl_rule r = *parsed, r2;
	struct pl_rule_err e = { 0 };
	int n;

	if (!r.id)
		r.id = 1;	/* list shows the id load assigned */
	pl_rule_format(&r, expr, text, sizeof(text));
	if (strlen(text) >= sizeof(text) - 1)
		fail("formatted rule truncated", line, text);
	memcpy(copy, text, sizeof(text));
	n = pl_rule_tokenize(copy, toks, MAX_TOKS, &e);
	if (n <= 0 || pl_rule_parse(toks, n, &r2, &expr2, &e)) {
		fprintf(stderr, "fuzz_policy: listed rule does not load back: col %d: %s\n",
			n < 0 || n > 0 ? e.col : 0, n ? e.msg : "no words");
		fail("round trip", line, text);
	}
	if (memcmp(&r, &r2, sizeof(r)) || !expr != !expr2 || (expr && strcmp(expr, expr2))) {
		fprintf(stderr, "fuzz_policy: expression '%s' came back as '%s'\n",
			expr ? expr : "(none)", expr2 ? expr2 : "(none)");
		fail("listed rule loads back as another rule", line, text);
	}
	free(expr2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pl_rule_tok toks[MAX_TOKS];
	char *line = NULL, *orig = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct pl_rule_err e = { 0 };
		struct pl_rule r;
		char *expr = NULL, msg[512];
		int nt;

		free(orig);
		orig = strdup(line);	/* tokenizing works in place */
		if (!orig)
			abort();
		nt = pl_rule_tokenize(line, toks, MAX_TOKS, &e);
		if (nt == 0)
			continue;
		if (nt > 0) {
			for (int i = 0; i < nt; i++)
				if (toks[i].col < 1 || toks[i].col > len ||
				    (i && toks[i].col <= toks[i - 1].col))
					fail("word column out of order", orig, toks[i].s);
		}
		if (nt < 0 || pl_rule_parse(toks, nt, &r, &expr, &e)) {
			/* policy load prints FILE:LINE:COL: msg and stops */
			if (e.col < 1 || e.col > len + 1 || !memchr(e.msg, 0, sizeof(e.msg)) ||
			    !e.msg[0])
				fail("error without a column or message", orig, e.msg);
			snprintf(msg, sizeof(msg), "rules.txt:1:%d: %s", e.col, e.msg);
			if (expr)
				fail("expression returned with an error", orig, msg);
			break;
		}
		check_rule(&r, expr, orig);
		round_trip(&r, expr, orig);
		free(expr);
	}
	free(orig);
	free(line);
	fclose(f);
	return 0;
}
