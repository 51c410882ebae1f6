// SPDX-License-Identifier: GPL-2.0
/*
 * The policy rule grammar (cli/policy_rule.h): `policy add` words and
 * `policy load` lines to struct pl_rule, and back in `policy list`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pktlens/why.h>

#include "opt.h"
#include "policy_rule.h"
#include "util.h"
#include "../export/format.h"
#include "../loader/loader.h"
#include "../pcap/cbpf.h"

/* -EINVAL with the reason and its column in @e */
__attribute__((format(printf, 3, 4)))
static int perr(struct pl_rule_err *e, int col, const char *fmt, ...)
{
	va_list ap;
	int err;

	e->col = col;
	va_start(ap, fmt);
	err = pl_vwhy(e->msg, sizeof(e->msg), -EINVAL, fmt, ap);
	va_end(ap);
	return err;
}

/* "a.b.c.d[/n]" or "x::y[/n]" -> 16 bytes (IPv4 mapped), prefix length in that space */
static int parse_cidr(const char *s, __u8 addr[16], __u8 mask[16], __u8 *plen, bool *v4,
		      char *why, size_t whylen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned int max, len;
	struct in6_addr a6;
	struct in_addr a4;

	if (strlen(s) >= sizeof(buf))
		return pl_why(why, whylen, -EINVAL, "'%s': not an address", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		*v4 = true;
		max = 32;
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, buf, &a6) == 1) {
		*v4 = false;
		max = 128;
		memcpy(addr, &a6, 16);
	} else {
		return pl_why(why, whylen, -EINVAL, "'%s': not an IPv4 or IPv6 address", s);
	}
	len = max;
	if (slash) {
		uint32_t v;

		if (pl_parse_u32(slash, 0, max, &v))
			return pl_why(why, whylen, -EINVAL, "'%s': prefix length must be 0-%u", s,
				      max);
		len = v;
	}
	len += 128 - max;
	memset(mask, 0, 16);
	for (unsigned int i = 0; i < len; i++)
		mask[i / 8] |= (__u8)(0x80 >> (i % 8));
	for (int i = 0; i < 16; i++)
		if (addr[i] & ~mask[i])
			return pl_why(why, whylen, -EINVAL, "'%s': host bits set after /%u", s,
				      len - (128 - max));
	*plen = (__u8)len;
	return 0;
}

static int parse_ports(const char *s, __u16 *lo, __u16 *hi)
{
	char buf[16], *dash;
	uint32_t a, b;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = 0;
	if (pl_parse_u32(buf, 0, 65535, &a))
		return -EINVAL;
	b = a;
	if (dash && pl_parse_u32(dash, 0, 65535, &b))
		return -EINVAL;
	if (b < a)
		return -ERANGE;
	*lo = (__u16)a;
	*hi = (__u16)b;
	return 0;
}

static int parse_proto(const char *s, __u8 *proto)
{
	static const struct {
		const char *name;
		__u8 num;
	} names[] = { { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmp6", 58 },
		      { "icmpv6", 58 }, { "sctp", 132 }, { "gre", 47 }, { "esp", 50 } };
	uint32_t v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].name)) {
			*proto = names[i].num;
			return 0;
		}
	if (pl_parse_u32(s, 0, 255, &v))
		return -EINVAL;
	*proto = (__u8)v;
	return 0;
}

/* ---- --limit RATE [--burst N] [--per ...] [--per-size N] [--over ...] ---- */

/* The words of a limit, with their columns (0: not given). */
enum { LW_RATE, LW_BURST, LW_PER, LW_SIZE, LW_OVER, LW_OVER_ARG, LW_MAX };
static const char *const lw_opt[LW_MAX] = { "--limit", "--burst", "--per", "--per-size", "--over",
					    "--over" };

struct limit_words {
	const char *v[LW_MAX];
	int col[LW_MAX];	/* of the value */
	int ocol[LW_MAX];	/* of the option */
};

static const struct {
	const char *name;
	__u64 mul;		/* to packets/s or bits/s */
} rate_units[PL_LIM_UNIT_MAX] = {
	[PL_LIM_PPS] = { "pps", 1 }, [PL_LIM_BPS] = { "bps", 1 }, [PL_LIM_KBIT] = { "kbit", 1000 },
	[PL_LIM_MBIT] = { "mbit", 1000000 }, [PL_LIM_GBIT] = { "gbit", 1000000000 },
};

static const char *const per_names[PL_PER_MAX] = { "rule", "src", "dst", "flow" };

/*
 * "DIGITS[SUFFIX]": the number (strict, <= @max) and the suffix; -EINVAL
 * without digits, -ERANGE above @max (the suffix is set then too, so the
 * caller can name the unit the number was too large for)
 */
static int number_unit(const char *s, __u64 max, __u64 *num, const char **suffix)
{
	char buf[32];
	size_t d = strspn(s, "0123456789");
	uint64_t v = 0;
	int err;

	if (!d)
		return -EINVAL;
	*suffix = s + d;
	if (d >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, s, d);
	buf[d] = 0;
	err = pl_parse_u64(buf, 0, max, &v) ? -ERANGE : 0;
	*num = v;
	return err;
}

/* The limit of @lw into r->lim (r->action is PL_ACT_LIMIT) */
static int parse_limit(const struct limit_words *lw, struct pl_rule *r, struct pl_rule_err *e)
{
	struct pl_limit *l = &r->lim;
	const char *v = lw->v[LW_RATE], *suf;
	__u64 n, max, units;
	long double tau;
	int u, err;

	/* units as tc writes them, in any case: 20Mbit is 20mbit */
	err = number_unit(v, UINT64_MAX, &n, &suf);
	for (u = 0; err != -EINVAL && u < PL_LIM_UNIT_MAX && strcasecmp(suf, rate_units[u].name); u++)
		;
	if (err != -EINVAL && !*suf)
		u = PL_LIM_PPS;
	if (err == -EINVAL || u == PL_LIM_UNIT_MAX)
		return perr(e, lw->col[LW_RATE], "--limit '%s': not RATE[pps|bps|kbit|mbit|gbit] "
			    "(e.g. 1000pps, 20mbit)", v);
	max = u == PL_LIM_PPS ? PL_LIM_PPS_MAX : PL_LIM_BITS_MAX;
	if (err || n == 0 || n > max / rate_units[u].mul)
		return perr(e, lw->col[LW_RATE], "--limit '%s': the rate must be 1-%llu%s", v,
			    (unsigned long long)(max / rate_units[u].mul), rate_units[u].name);
	l->unit = (__u8)u;
	l->rate = n * rate_units[u].mul;
	/* the burst: in packets for a packet rate, bytes for a bit rate */
	v = lw->v[LW_BURST];
	if (v) {
		const char *want = u == PL_LIM_PPS ? "packets" : "bytes";

		err = number_unit(v, UINT64_MAX, &n, &suf);
		if (err == -EINVAL || (*suf && strcasecmp(suf, "packets") && strcasecmp(suf, "bytes")))
			return perr(e, lw->col[LW_BURST], "--burst '%s': not N[packets|bytes]", v);
		if (*suf && strcasecmp(suf, want))
			return perr(e, lw->col[LW_BURST], "--burst '%s': a %s rate takes a burst in %s",
				    v, u == PL_LIM_PPS ? "packet" : "bit", want);
		if (err || n == 0 || n > PL_LIM_BURST_MAX)
			return perr(e, lw->col[LW_BURST], "--burst '%s': must be 1-%llu %s", v,
				    (unsigned long long)PL_LIM_BURST_MAX, want);
		l->burst = n;
	} else if (u == PL_LIM_PPS) {
		/* default: 100 ms of the rate */
		l->burst = l->rate / 10 ? l->rate / 10 : 1;
	} else {
		/* 100 ms of the rate, at least the largest packet tc sees (GSO: 64 KiB) */
		l->burst = l->rate / 80 > 65536 ? l->rate / 80 : 65536;
	}
	if (l->burst > PL_LIM_BURST_MAX)	/* a default above 10 Gbit/s: at most 1 GB */
		l->burst = PL_LIM_BURST_MAX;
	units = u == PL_LIM_PPS ? l->burst : l->burst * 8;
	tau = (long double)units * PL_LIM_TICKS_PER_SEC / l->rate;
	if (tau > (long double)(1ULL << 62))	/* the state is a time: at most 2^56 ns of rate */
		return perr(e, lw->col[LW_BURST] ? lw->col[LW_BURST] : lw->col[LW_RATE],
			    "--burst %llu: more than 2^56 ns of traffic at %s (at most %llu %s)",
			    (unsigned long long)l->burst, lw->v[LW_RATE], (unsigned long long)
			    ((long double)(1ULL << 62) * l->rate / PL_LIM_TICKS_PER_SEC /
			     (u == PL_LIM_PPS ? 1 : 8)), u == PL_LIM_PPS ? "packets" : "bytes");
	l->tau = tau < 1 ? 1 : (__u64)tau;
	l->per = PL_PER_RULE;
	if ((v = lw->v[LW_PER])) {
		for (u = 0; u < PL_PER_MAX && strcmp(v, per_names[u]); u++)
			;
		if (u == PL_PER_MAX)
			return perr(e, lw->col[LW_PER], "--per '%s': not rule, src, dst or flow", v);
		l->per = (__u8)u;
	}
	if ((v = lw->v[LW_SIZE]) && l->per == PL_PER_RULE)
		return perr(e, lw->col[LW_SIZE], "--per-size: only with --per src, dst or flow");
	if (l->per != PL_PER_RULE) {
		l->keys = PL_LIM_KEYS_DEFAULT;
		if (v && pl_parse_u32(v, 1, PL_LIM_KEYS_MAX, &l->keys))
			return perr(e, lw->col[LW_SIZE], "--per-size '%s': not a number 1-%u", v,
				    PL_LIM_KEYS_MAX);
	}
	l->over = PL_ACT_DROP;
	if ((v = lw->v[LW_OVER])) {
		if (!strcmp(v, "drop") || !strcmp(v, "pass")) {
			l->over = v[0] == 'd' ? PL_ACT_DROP : PL_ACT_PASS;
		} else if (!strcmp(v, "sample") || !strncmp(v, "sample ", 7)) {
			/* "sample 1/N" in one word too, as --sample's value is one */
			int col = v[6] ? lw->col[LW_OVER] : lw->col[LW_OVER_ARG];

			v = v[6] ? v + 7 + strspn(v + 7, " ") : lw->v[LW_OVER_ARG];
			if (v && !*v)	/* "sample " in one word: no 1/N, as "sample" alone */
				v = NULL;
			if (!v || strncmp(v, "1/", 2) || pl_parse_u32(v + 2, 1, UINT32_MAX, &l->over_arg))
				return perr(e, v ? col : lw->col[LW_OVER],
					    "--over sample%s%s: not 1/N with N >= 1", v ? " " : "",
					    v ? v : "");
			l->over = PL_ACT_SAMPLE;
		} else {
			return perr(e, lw->col[LW_OVER], "--over '%s': not drop, pass or sample 1/N", v);
		}
	}
	return 0;
}

/*
 * The rule's options: `policy add`'s table (cli/opt.h) documents them, and
 * says which take a value; this grammar parses them, for files too.
 */
const struct pl_opt pl_rule_opts[] = {
	{ .name = "in", .type = PL_OPT_FLAG, .syn = "--in|--out", .flags = PL_OPT_NOPARSE,
	  .help = "judge ingress (the default) at the first ingress hook (XDP if attached, else tc)" },
	{ .name = "out", .type = PL_OPT_FLAG, .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "judge egress, at tc egress" },
	{ .name = "prio", .type = PL_OPT_STRING, .arg = "N", .flags = PL_OPT_NOPARSE,
	  .help = "0-4294967295, lower first (default " PL_STR(PL_RULE_PRIO_DEFAULT_N) ")" },
	{ .name = "id", .type = PL_OPT_STRING, .arg = "N", .flags = PL_OPT_NOPARSE,
	  .help = "the rule's id, 1-" PL_STR(PL_POLICY_RULES_MAX_N) " (default: one above the highest, or "
		  "the lowest free one when the highest is " PL_STR(PL_POLICY_RULES_MAX_N) ")" },
	{ .name = "src", .type = PL_OPT_STRING, .arg = "CIDR", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: IPv4 or IPv6 source prefix (198.18.0.0/15, 2001:db8::/32)" },
	{ .name = "dst", .type = PL_OPT_STRING, .arg = "CIDR", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: destination prefix" },
	{ .name = "proto", .type = PL_OPT_STRING, .arg = "P", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: tcp, udp, icmp, icmp6, sctp or a number 0-255" },
	{ .name = "sport", .type = PL_OPT_STRING, .arg = "P[-P]", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: TCP/UDP/SCTP source port or range (not later fragments)" },
	{ .name = "dport", .type = PL_OPT_STRING, .arg = "P[-P]", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: destination port or range" },
	{ .name = "vlan", .type = PL_OPT_STRING, .arg = "ID", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "match: outermost VLAN id, 0-4095" },
	{ .name = "drop", .type = PL_OPT_FLAG, .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "action: drop the packet" },
	{ .name = "flows", .type = PL_OPT_FLAG, .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "with --drop or --limit: count the packets the rule drops in the flow table too "
		  "(default: per rule and per interface only, so a dropped flood never fills it)" },
	{ .name = "pass", .type = PL_OPT_FLAG, .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "action: let it go, stop evaluating" },
	{ .name = "redirect", .type = PL_OPT_STRING, .arg = "DEV2", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "action: send it out of DEV2 (XDP: devmap; tc: bpf_redirect)" },
	{ .name = "sample", .type = PL_OPT_STRING, .arg = "1/N", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "action: count it for sampling (sample --policy) and go on evaluating" },
	{ .name = "limit", .type = PL_OPT_STRING, .arg = "RATE[pps|bps|kbit|mbit|gbit]", .syn = "",
	  .flags = PL_OPT_NOPARSE,
	  .help = "action: a token bucket (default pps): packets within the rate go on to the next "
		  "rule (or pass), the excess gets --over" },
	{ .name = "burst", .type = PL_OPT_STRING, .arg = "N[packets|bytes]", .syn = "",
	  .flags = PL_OPT_NOPARSE,
	  .help = "limit: bucket depth, in packets for pps, bytes for bit rates (default 100 ms of "
		  "the rate; bytes at least 65536)" },
	{ .name = "per", .type = PL_OPT_STRING, .arg = "rule|src|dst|flow", .syn = "",
	  .flags = PL_OPT_NOPARSE,
	  .help = "limit: one bucket for all the rule's packets (default), or one per source, "
		  "destination or flow, in an LRU map" },
	{ .name = "per-size", .type = PL_OPT_STRING, .arg = "N", .syn = "", .flags = PL_OPT_NOPARSE,
	  .help = "limit: keys the LRU map holds, 1-" PL_STR(PL_RULE_KEYS_MAX_N) " (default "
		  PL_STR(PL_RULE_KEYS_DEFAULT_N) ")" },
	{ .name = "over", .type = PL_OPT_STRING, .arg = "drop|pass|sample 1/N", .syn = "",
	  .flags = PL_OPT_NOPARSE,
	  .help = "limit: what the excess gets (default drop); sample: counted, every Nth to a "
		  "sampler, and evaluation goes on" },
	{ .name = NULL },
};

/* The row of rule option @o ("--src"), or NULL */
static const struct pl_opt *rule_opt(const char *o)
{
	if (strncmp(o, "--", 2))
		return NULL;
	for (const struct pl_opt *r = pl_rule_opts; r->name; r++)
		if (!strcmp(o + 2, r->name))
			return r;
	return NULL;
}

/*
 * Options a rule takes once: a second one would silently win. --in and
 * --out are one option, the direction.
 */
static const char *const once[] = { "--prio", "--id", "--src", "--dst", "--proto", "--sport",
				     "--dport", "--vlan", "--flows", "--burst", "--per", "--per-size",
				     "--over", "--in" };

/* What @e's positions count: a command line's arguments or a line's columns. */
static const char *pos_unit(const struct pl_rule_err *e)
{
	return e->args ? "argument" : "column";
}

/* Error for @o given again (0 the first time); @cols: column of each of once[]. */
static int check_once(const char *o, int col, int cols[], struct pl_rule_err *e)
{
	const char *key = !strcmp(o, "--out") ? "--in" : o;

	for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++) {
		if (strcmp(key, once[k]))
			continue;
		if (cols[k] && k == sizeof(once) / sizeof(once[0]) - 1)
			return perr(e, col, "%s: a rule has one direction (another at %s %d)", o,
				    pos_unit(e), cols[k]);
		if (cols[k])
			return perr(e, col, "%s given twice (also at %s %d)", o,
				    pos_unit(e), cols[k]);
		cols[k] = col;
	}
	return 0;
}

/* Word @w appended to the expression *@x (*@xlen long, begun at *@expr_col); 0 or -ENOMEM. */
static int add_expr_word(const struct pl_rule_tok *w, char **x, size_t *xlen, int *expr_col,
			 struct pl_rule_err *e)
{
	size_t l = strlen(w->s);
	char *nx = realloc(*x, *xlen + l + 2);

	if (!nx) {
		e->col = w->col;
		return pl_why(e->msg, sizeof(e->msg), -ENOMEM, "%s", strerror(ENOMEM));
	}
	if (!*x)
		*expr_col = w->col;
	else
		nx[(*xlen)++] = ' ';
	memcpy(nx + *xlen, w->s, l + 1);
	/* libpcap's blanks: a newline would split the rule `policy list` prints */
	for (char *c = nx + *xlen; *c; c++)
		if (strchr("\n\r\t", *c))
			*c = ' ';
	*xlen += l;
	*x = nx;
	return 0;
}

/* The options and words of a rule (pl_rule_parse()). */
static int parse_words(const struct pl_rule_tok *t, int n, struct pl_rule *r, char **x,
		       size_t *xlen, int *expr_col, bool *v4src_, bool *v4dst_, int *src_col_,
		       int *dst_col_, int *act_col_, char *why, size_t whylen,
		       struct pl_rule_err *e)
{
	struct limit_words lw = { { 0 }, { 0 }, { 0 } };
	int cols[sizeof(once) / sizeof(once[0])] = { 0 };
	bool v4src = false, v4dst = false;
	int src_col = 0, dst_col = 0, act_col = 0, proto_col = 0, flows_col = 0;
	const char *proto_word = NULL;
	bool ends = false;

	memset(r, 0, sizeof(*r));
	r->prio = PL_RULE_PRIO_DEFAULT;
	r->dir = PL_DIR_IN;
	for (int i = 0; i < n; i++) {
		const char *o = t[i].s, *eq = strncmp(o, "--", 2) ? NULL : strchr(o, '=');
		const char *v = i + 1 < n ? t[i + 1].s : NULL;
		int vcol = i + 1 < n ? t[i + 1].col : t[i].col, skip = 1;
		const struct pl_opt *ro;
		char name[32];
		bool takes;
		uint32_t u;

		/* as getopt takes them: "--" ends the options, "--opt=VALUE" is one word */
		if (ends || !strcmp(o, "--")) {
			if (ends && add_expr_word(&t[i], x, xlen, expr_col, e))
				return -ENOMEM;
			ends = true;
			continue;
		}
		if (eq && (size_t)(eq - o) < sizeof(name)) {
			memcpy(name, o, (size_t)(eq - o));
			name[eq - o] = 0;
			if (rule_opt(name)) {
				o = name;
				v = eq + 1;
				vcol = t[i].col;
				skip = 0;
			}
		}
		ro = rule_opt(o);
		takes = ro && ro->type != PL_OPT_FLAG;
		if (!skip && !takes)
			return perr(e, t[i].col, "%s takes no value", o);
		if (takes && !v)
			return perr(e, t[i].col, "%s needs a value", o);
		if (check_once(o, t[i].col, cols, e))
			return -EINVAL;
		if (!strcmp(o, "--in") || !strcmp(o, "--out")) {
			r->dir = o[2] == 'i' ? PL_DIR_IN : PL_DIR_OUT;
			continue;
		}
		if (!strcmp(o, "--drop") || !strcmp(o, "--pass") || !strcmp(o, "--redirect") ||
		    !strcmp(o, "--sample") || !strcmp(o, "--limit")) {
			if (act_col)
				return perr(e, t[i].col, "%s: a rule has one action (another at "
					    "%s %d)", o, pos_unit(e), act_col);
			act_col = t[i].col;
		}
		if (!strcmp(o, "--drop")) {
			r->action = PL_ACT_DROP;
		} else if (!strcmp(o, "--flows")) {
			r->flags |= PL_RF_FLOWS;
			flows_col = t[i].col;
		} else if (!strcmp(o, "--pass")) {
			r->action = PL_ACT_PASS;
		} else if (!strcmp(o, "--prio")) {
			if (pl_parse_u32(v, 0, UINT32_MAX, &r->prio))
				return perr(e, vcol, "--prio '%s': not a number 0-4294967295", v);
			i += skip;
		} else if (!strcmp(o, "--id")) {
			if (pl_parse_u32(v, 1, PL_POLICY_RULES_MAX, &r->id))
				return perr(e, vcol, "--id '%s': not a number 1-%u", v,
					    PL_POLICY_RULES_MAX);
			i += skip;
		} else if (!strcmp(o, "--src") || !strcmp(o, "--dst")) {
			bool src = o[2] == 's';

			if (parse_cidr(v, src ? r->src : r->dst, src ? r->src_mask : r->dst_mask,
				       src ? &r->src_len : &r->dst_len, src ? &v4src : &v4dst,
				       why, whylen))
				return perr(e, vcol, "%s %s", o, why);
			r->match |= src ? PL_M_SRC : PL_M_DST;
			r->fam = (src ? v4src : v4dst) ? PL_FAM_IPV4 : PL_FAM_IPV6;
			if (src)
				src_col = vcol;
			else
				dst_col = vcol;
			i += skip;
		} else if (!strcmp(o, "--proto")) {
			if (parse_proto(v, &r->proto))
				return perr(e, vcol, "--proto '%s': not tcp, udp, icmp, icmp6, sctp "
					    "or 0-255", v);
			r->match |= PL_M_PROTO;
			proto_word = v;
			proto_col = vcol;
			i += skip;
		} else if (!strcmp(o, "--sport") || !strcmp(o, "--dport")) {
			bool s = o[2] == 's';
			int err = parse_ports(v, s ? &r->sport_lo : &r->dport_lo,
					      s ? &r->sport_hi : &r->dport_hi);

			if (err)
				return perr(e, vcol, "%s '%s': %s", o, v, err == -ERANGE ?
					    "range ends below its start" :
					    "not a port 0-65535 or range LO-HI");
			r->match |= s ? PL_M_SPORT : PL_M_DPORT;
			i += skip;
		} else if (!strcmp(o, "--vlan")) {
			if (pl_parse_u32(v, 0, 4095, &u))
				return perr(e, vcol, "--vlan '%s': not a VLAN id 0-4095", v);
			r->vlan = (__u16)u;
			r->match |= PL_M_VLAN;
			i += skip;
		} else if (!strcmp(o, "--redirect")) {
			char raw[IF_NAMESIZE];
			struct pl_link_info li;
			/* the name, or as policy list shows odd ones (\xHH, \\) */
			unsigned int idx = if_nametoindex(v);

			/* an alternative name longer than a name (if_nametoindex() takes none) */
			if (!idx && strlen(v) >= IF_NAMESIZE && !pl_link_get(v, 0, &li))
				idx = (unsigned int)li.ifindex;
			if (!idx && !pl_parse_name(v, raw, sizeof(raw)))
				idx = if_nametoindex(raw);
			/* as policy list shows a target that is gone (no name has a ':') */
			if (!idx && !strncmp(v, "ifindex:", 8) &&
			    !pl_parse_u32(v + 8, 1, INT32_MAX, &u))
				idx = u;

			if (!idx)
				return perr(e, vcol, "--redirect '%s': no such interface", v);
			r->action = PL_ACT_REDIRECT;
			r->arg = idx;
			i += skip;
		} else if (!strcmp(o, "--sample")) {
			if (strncmp(v, "1/", 2) || pl_parse_u32(v + 2, 1, UINT32_MAX, &u))
				return perr(e, vcol, "--sample '%s': not 1/N with N >= 1", v);
			r->action = PL_ACT_SAMPLE;
			r->arg = u;
			i += skip;
		} else if (!strcmp(o, "--limit") || !strcmp(o, "--burst") || !strcmp(o, "--per") ||
			   !strcmp(o, "--per-size") || !strcmp(o, "--over")) {
			int w = 0;

			while (strcmp(o, lw_opt[w]))
				w++;
			if (w == LW_RATE)
				r->action = PL_ACT_LIMIT;
			lw.v[w] = v;
			lw.col[w] = vcol;
			lw.ocol[w] = t[i].col;
			i += skip;
			if (w == LW_OVER && !strcmp(v, "sample") && i + 1 < n) {
				lw.v[LW_OVER_ARG] = t[i + 1].s;
				lw.col[LW_OVER_ARG] = t[i + 1].col;
				i++;
			}
		} else if (o[0] == '-' && o[1] == '-' && !ro) {
			return perr(e, t[i].col, "unknown option '%s'", o);
		} else if (add_expr_word(&t[i], x, xlen, expr_col, e)) {
			return -ENOMEM;
		}
	}
	if ((r->match & (PL_M_SPORT | PL_M_DPORT)) && (r->match & PL_M_PROTO) && r->proto != 6 &&
	    r->proto != 17 && r->proto != 132)	/* ports are read for these only: never a match */
		return perr(e, proto_col, "--proto %s has no ports (--sport and --dport need tcp, "
			    "udp or sctp)", proto_word);
	if (flows_col && r->action != PL_ACT_DROP && r->action != PL_ACT_LIMIT)
		return perr(e, flows_col, "--flows: only with --drop or --limit (the packets a rule "
			    "passes or redirects are always in the flow table)");
	for (int w = LW_BURST; w < LW_OVER_ARG; w++)
		if (lw.ocol[w] && r->action != PL_ACT_LIMIT)
			return perr(e, lw.ocol[w], "%s: only with --limit", lw_opt[w]);
	if (r->action == PL_ACT_LIMIT && parse_limit(&lw, r, e))
		return -EINVAL;
	*v4src_ = v4src;
	*v4dst_ = v4dst;
	*src_col_ = src_col;
	*dst_col_ = dst_col;
	*act_col_ = act_col;
	return 0;
}

int pl_rule_parse(const struct pl_rule_tok *t, int n, struct pl_rule *r, char **expr,
		  struct pl_rule_err *e)
{
	bool v4src = false, v4dst = false;
	char why[200], *x = NULL;
	int src_col = 0, dst_col = 0, act_col = 0, expr_col = 0;
	size_t xlen = 0;
	int ret;

	*expr = NULL;
	ret = parse_words(t, n, r, &x, &xlen, &expr_col, &v4src, &v4dst, &src_col, &dst_col,
			  &act_col, why, sizeof(why), e);
	if (ret)
		goto fail;
	if (!act_col) {
		/* the words of older releases: scripts match them (--limit is in --help) */
		ret = perr(e, n ? t[n - 1].col : 1, "no action (--drop, --pass, --redirect DEV2 "
			   "or --sample 1/N)");
		goto fail;
	}
	if ((r->match & PL_M_SRC) && (r->match & PL_M_DST) && v4src != v4dst) {
		ret = perr(e, dst_col > src_col ? dst_col : src_col, "--src and --dst mix IPv4 "
			   "and IPv6");
		goto fail;
	}
	if (x) {
		struct sock_filter *cbpf = NULL;
		char err[512];
		size_t clen;

		int cerr = pl_cbpf_compile(x, &cbpf, &clen, err, sizeof(err));

		if (cerr || pl_cbpf_validate(cbpf, clen, err, sizeof(err))) {
			free(cbpf);
			ret = cerr == -E2BIG ? perr(e, expr_col, "%s", err) :
			      perr(e, expr_col, "expression '%s': %s", x, err);
			goto fail;
		}
		free(cbpf);
		r->match |= PL_M_EXPR;
		r->expr_hash = pl_policy_expr_hash(x);
		*expr = x;
	}
	return 0;
fail:
	free(x);
	return ret;
}

/* A prefix as it was given: IPv4 (mapped, len counted from ::ffff:0:0/96) or IPv6. */
static void fmt_addr(const __u8 *a, __u8 len, bool v4, char *buf, size_t n)
{
	char s[INET6_ADDRSTRLEN];

	if (v4) {
		inet_ntop(AF_INET, a + 12, s, sizeof(s));
		snprintf(buf, n, "%s/%u", s, len >= 96 ? len - 96 : 0);
	} else {
		inet_ntop(AF_INET6, a, s, sizeof(s));
		snprintf(buf, n, "%s/%u", s, len);
	}
}

static const char *proto_name(__u8 p)
{
	switch (p) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "icmp6";
	case 132:
		return "sctp";
	}
	return NULL;
}

static void fmt_ports(char *buf, size_t n, __u16 lo, __u16 hi)
{
	if (lo == hi)
		snprintf(buf, n, "%u", lo);
	else
		snprintf(buf, n, "%u-%u", lo, hi);
}

const char *pl_rule_per_name(__u8 per)
{
	return per < PL_PER_MAX ? per_names[per] : "?";
}

void pl_rule_limit_format(const struct pl_limit *l, char *buf, size_t n)
{
	const char *unit = l->unit < PL_LIM_UNIT_MAX ? rate_units[l->unit].name : "?";
	__u64 mul = l->unit < PL_LIM_UNIT_MAX ? rate_units[l->unit].mul : 1;
	int off;

	off = snprintf(buf, n, "--limit %llu%s --burst %llu%s --per %s",
		       (unsigned long long)(l->rate / mul), unit, (unsigned long long)l->burst,
		       l->unit == PL_LIM_PPS ? "packets" : "bytes", pl_rule_per_name(l->per));
	if (off >= 0 && (size_t)off < n && l->per != PL_PER_RULE)
		off += snprintf(buf + off, n - (size_t)off, " --per-size %u", l->keys);
	if (off >= 0 && (size_t)off < n && l->over == PL_ACT_SAMPLE)
		snprintf(buf + off, n - (size_t)off, " --over sample 1/%u", l->over_arg);
	else if (off >= 0 && (size_t)off < n)
		snprintf(buf + off, n - (size_t)off, " --over %s", pl_rule_action_name(l->over));
}

bool pl_rule_redirect_missing(const struct pl_rule *r, const struct pl_rule *old, size_t nold)
{
	char ifn[IF_NAMESIZE];

	if (r->action != PL_ACT_REDIRECT || if_indextoname(r->arg, ifn))
		return false;
	for (size_t i = 0; i < nold; i++)
		if (old[i].action == PL_ACT_REDIRECT && old[i].arg == r->arg)
			return false;
	return true;
}

const char *pl_rule_action_name(__u8 a)
{
	static const char *const names[PL_ACT_MAX] = { "none", "pass", "drop", "redirect", "sample",
							"limit" };

	return a < PL_ACT_MAX ? names[a] : "?";
}

/*
 * @s at *@off of @buf as one word pl_rule_tokenize() reads back as it is:
 * in '...' (each ' in it as '"'"'), always with @always, else only if it
 * holds a quote or '#' (an interface name has no white space)
 */
static void add_word(char *buf, size_t n, size_t *off, const char *s, bool always)
{
#define PUT(...) (*off += (size_t)snprintf(buf + *off, *off < n ? n - *off : 0, __VA_ARGS__))
	if (!always && !strpbrk(s, "'\"#")) {
		PUT(" %s", s);
		return;
	}
	PUT(" '");
	for (; *s; s++)
		if (*s == '\'')
			PUT("'\"'\"'");
		else
			PUT("%c", *s);
	PUT("'");
#undef PUT
}

void pl_rule_format(const struct pl_rule *r, const char *expr, char *buf, size_t n)
{
	pl_rule_format_gone(r, expr, false, buf, n);
}

void pl_rule_format_gone(const struct pl_rule *r, const char *expr, bool target_gone, char *buf,
			 size_t n)
{
	char a[192], ifn[IF_NAMESIZE];
	size_t off = 0;
	bool v4 = r->fam == PL_FAM_IPV4;

#define ADD(...) (off += (size_t)snprintf(buf + off, off < n ? n - off : 0, __VA_ARGS__))
	ADD("--id %u %s --prio %u", r->id, r->dir == PL_DIR_IN ? "--in" : "--out", r->prio);
	if (r->match & PL_M_SRC) {
		fmt_addr(r->src, r->src_len, v4, a, sizeof(a));
		ADD(" --src %s", a);
	}
	if (r->match & PL_M_DST) {
		fmt_addr(r->dst, r->dst_len, v4, a, sizeof(a));
		ADD(" --dst %s", a);
	}
	if (r->match & PL_M_PROTO) {
		if (proto_name(r->proto))
			ADD(" --proto %s", proto_name(r->proto));
		else
			ADD(" --proto %u", r->proto);
	}
	if (r->match & PL_M_SPORT) {
		fmt_ports(a, sizeof(a), r->sport_lo, r->sport_hi);
		ADD(" --sport %s", a);
	}
	if (r->match & PL_M_DPORT) {
		fmt_ports(a, sizeof(a), r->dport_lo, r->dport_hi);
		ADD(" --dport %s", a);
	}
	if (r->match & PL_M_VLAN)
		ADD(" --vlan %u", r->vlan);
	switch (r->action) {
	case PL_ACT_REDIRECT:
		if (!target_gone && if_indextoname(r->arg, ifn)) {
			ADD(" --redirect");
			add_word(buf, n, &off, PL_NAME(ifn), false);
		} else {
			ADD(" --redirect ifindex:%u", r->arg);
		}
		break;
	case PL_ACT_SAMPLE:
		ADD(" --sample 1/%u", r->arg);
		break;
	case PL_ACT_LIMIT:
		pl_rule_limit_format(&r->lim, a, sizeof(a));
		ADD(" %s", a);
		break;
	default:
		ADD(" --%s", pl_rule_action_name(r->action));
	}
	if (r->flags & PL_RF_FLOWS)
		ADD(" --flows");
	if (expr)
		add_word(buf, n, &off, expr, true);
#undef ADD
}

/* what separates the words of a rule line */
static bool rule_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool pl_rule_line_blank(const char *line)
{
	while (rule_space(*line))
		line++;
	return !*line || *line == '#';
}

int pl_rule_tokenize(char *line, struct pl_rule_tok *t, int max, struct pl_rule_err *e)
{
	char *p = line;
	int n = 0;

	for (;;) {
		char *start, *out;

		while (rule_space(*p))
			p++;
		if (pl_rule_line_blank(p))
			return n;
		if (n == max)
			return perr(e, (int)(p - line) + 1, "too many words");
		start = out = p;
		t[n].col = (int)(p - line) + 1;
		while (*p && !rule_space(*p)) {
			if (*p == '\'' || *p == '"') {
				char q = *p++;

				while (*p && *p != q)
					*out++ = *p++;
				if (!*p)
					return perr(e, t[n].col, "unterminated quote");
				p++;
				continue;
			}
			*out++ = *p++;
		}
		if (*p)
			p++;
		*out = 0;
		t[n++].s = start;
	}
}
