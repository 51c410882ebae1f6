// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens policy add|list|del|flush|load: drop, pass, redirect and sample
 * rules judged in the kernel (bpf/policy.h, loader/policy.c).
 *
 * One rule grammar for the command line and for rule files; `policy list`
 * prints rules in it, so its output loads back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../pcap/cbpf.h"

#define POLICY_USAGE \
	"Usage: pktlens policy add DEV [--in|--out] [--prio N] [--id N] MATCH... ACTION ['EXPR']\n" \
	"       pktlens policy list [DEV] [-j]\n" \
	"       pktlens policy del DEV ID\n" \
	"       pktlens policy flush DEV [--in|--out]\n" \
	"       pktlens policy load DEV FILE\n"

#define PRIO_DEFAULT 1000U

static void policy_usage(FILE *f)
{
	fprintf(f, POLICY_USAGE
		"\n"
		"Rules judge the packets of an attached interface in the kernel: ingress\n"
		"rules at its first ingress hook (XDP if attached, else tc ingress), egress\n"
		"rules at tc egress. Lower --prio first, then lower id; the first rule that\n"
		"matches decides. Packets no rule decides are passed and counted.\n"
		"\n"
		"MATCH (all given must match; none: every packet):\n"
		"  'EXPR'                   a tcpdump expression (words that are not options)\n"
		"  --src CIDR, --dst CIDR   IPv4 or IPv6 prefix (198.18.0.0/15, 2001:db8::/32)\n"
		"  --proto P                tcp, udp, icmp, icmp6, sctp or a number 0-255\n"
		"  --sport P[-P], --dport P[-P]\n"
		"                           TCP/UDP/SCTP port or range (not later fragments)\n"
		"  --vlan ID                outermost VLAN id, 0-4095\n"
		"ACTION (exactly one):\n"
		"  --drop                   drop the packet\n"
		"  --pass                   let it go, stop evaluating\n"
		"  --redirect DEV2          send it out of DEV2 (XDP: devmap; tc: bpf_redirect)\n"
		"  --sample 1/N             count it for sampling and go on evaluating\n"
		"\n"
		"  --in, --out   direction (default --in)\n"
		"  --prio N      0-4294967295 (default %u)\n"
		"  --id N        the rule's id (default: one above the highest)\n"
		"  -j, --json    list: JSON\n"
		"  -h, --help    this help\n"
		"\n"
		"Rules that match on one address alone (plus --in/--out, --prio, an action\n"
		"other than --sample) go into an LPM trie: 100,000 of them cost one lookup.\n"
		"Others are tried in order, at most %u per direction, %u of them with an\n"
		"expression (every packet runs all expressions of its direction). Every\n"
		"change swaps the whole rule set in one step per hook; counters of rules\n"
		"that stay are kept.\n"
		"\n"
		"load replaces all rules of DEV with FILE's: one rule per line in the add\n"
		"syntax (without DEV), # starts a comment. Any error names FILE:LINE:COL\n"
		"and nothing changes. list prints rules that way (counters as comments),\n"
		"so `policy list DEV > FILE` saves a rule set that load restores.\n",
		PRIO_DEFAULT, PL_POLICY_LIST_MAX, PL_POLICY_EXPRS_MAX);
}

/* ---- the rule grammar ---- */

struct tok {
	const char *s;
	int col;		/* 1-based column in the line (files), or argv position */
};

struct perr {
	int col;
	char msg[256];
};

__attribute__((format(printf, 3, 4)))
static int perr(struct perr *e, int col, const char *fmt, ...)
{
	va_list ap;

	e->col = col;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
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
		return snprintf(why, whylen, "'%s': not an address", s), -EINVAL;
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
		return snprintf(why, whylen, "'%s': not an IPv4 or IPv6 address", s), -EINVAL;
	}
	len = max;
	if (slash) {
		uint32_t v;

		if (pl_parse_u32(slash, 0, max, &v))
			return snprintf(why, whylen, "'%s': prefix length must be 0-%u", s, max),
			       -EINVAL;
		len = v;
	}
	len += 128 - max;
	memset(mask, 0, 16);
	for (unsigned int i = 0; i < len; i++)
		mask[i / 8] |= (__u8)(0x80 >> (i % 8));
	for (int i = 0; i < 16; i++)
		if (addr[i] & ~mask[i])
			return snprintf(why, whylen, "'%s': host bits set after /%u", s,
					len - (128 - max)), -EINVAL;
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

/* The options and words of a rule (parse_rule()). */
static int parse_words(const struct tok *t, int n, struct pl_rule *r, char **x, size_t *xlen,
		       int *expr_col, bool *v4src_, bool *v4dst_, int *src_col_, int *dst_col_,
		       int *act_col_, char *why, size_t whylen, struct perr *e)
{
	bool v4src = false, v4dst = false;
	int src_col = 0, dst_col = 0, act_col = 0;

	memset(r, 0, sizeof(*r));
	r->prio = PRIO_DEFAULT;
	r->dir = PL_DIR_IN;
	for (int i = 0; i < n; i++) {
		const char *o = t[i].s;
		const char *v = i + 1 < n ? t[i + 1].s : NULL;
		int vcol = i + 1 < n ? t[i + 1].col : t[i].col;
		bool takes = !strcmp(o, "--prio") || !strcmp(o, "--id") || !strcmp(o, "--src") ||
			     !strcmp(o, "--dst") || !strcmp(o, "--proto") || !strcmp(o, "--sport") ||
			     !strcmp(o, "--dport") || !strcmp(o, "--vlan") ||
			     !strcmp(o, "--redirect") || !strcmp(o, "--sample");
		uint32_t u;

		if (takes && !v)
			return perr(e, t[i].col, "%s needs a value", o);
		if (!strcmp(o, "--in") || !strcmp(o, "--out")) {
			r->dir = o[2] == 'i' ? PL_DIR_IN : PL_DIR_OUT;
			continue;
		}
		if (!strcmp(o, "--drop") || !strcmp(o, "--pass") || !strcmp(o, "--redirect") ||
		    !strcmp(o, "--sample")) {
			if (act_col)
				return perr(e, t[i].col, "%s: a rule has one action (another at "
					    "column %d)", o, act_col);
			act_col = t[i].col;
		}
		if (!strcmp(o, "--drop")) {
			r->action = PL_ACT_DROP;
		} else if (!strcmp(o, "--pass")) {
			r->action = PL_ACT_PASS;
		} else if (!strcmp(o, "--prio")) {
			if (pl_parse_u32(v, 0, UINT32_MAX, &r->prio))
				return perr(e, vcol, "--prio '%s': not a number 0-4294967295", v);
			i++;
		} else if (!strcmp(o, "--id")) {
			if (pl_parse_u32(v, 1, PL_POLICY_RULES_MAX, &r->id))
				return perr(e, vcol, "--id '%s': not a number 1-%u", v,
					    PL_POLICY_RULES_MAX);
			i++;
		} else if (!strcmp(o, "--src") || !strcmp(o, "--dst")) {
			bool src = o[2] == 's';

			if (parse_cidr(v, src ? r->src : r->dst, src ? r->src_mask : r->dst_mask,
				       src ? &r->src_len : &r->dst_len, src ? &v4src : &v4dst,
				       why, whylen))
				return perr(e, vcol, "%s %s", o, why);
			r->match |= src ? PL_M_SRC : PL_M_DST;
			if (src)
				src_col = vcol;
			else
				dst_col = vcol;
			i++;
		} else if (!strcmp(o, "--proto")) {
			if (parse_proto(v, &r->proto))
				return perr(e, vcol, "--proto '%s': not tcp, udp, icmp, icmp6, sctp "
					    "or 0-255", v);
			r->match |= PL_M_PROTO;
			i++;
		} else if (!strcmp(o, "--sport") || !strcmp(o, "--dport")) {
			bool s = o[2] == 's';
			int err = parse_ports(v, s ? &r->sport_lo : &r->dport_lo,
					      s ? &r->sport_hi : &r->dport_hi);

			if (err)
				return perr(e, vcol, "%s '%s': %s", o, v, err == -ERANGE ?
					    "range ends below its start" :
					    "not a port 0-65535 or range LO-HI");
			r->match |= s ? PL_M_SPORT : PL_M_DPORT;
			i++;
		} else if (!strcmp(o, "--vlan")) {
			if (pl_parse_u32(v, 0, 4095, &u))
				return perr(e, vcol, "--vlan '%s': not a VLAN id 0-4095", v);
			r->vlan = (__u16)u;
			r->match |= PL_M_VLAN;
			i++;
		} else if (!strcmp(o, "--redirect")) {
			unsigned int idx = if_nametoindex(v);

			if (!idx)
				return perr(e, vcol, "--redirect '%s': no such interface", v);
			r->action = PL_ACT_REDIRECT;
			r->arg = idx;
			i++;
		} else if (!strcmp(o, "--sample")) {
			if (strncmp(v, "1/", 2) || pl_parse_u32(v + 2, 1, UINT32_MAX, &u))
				return perr(e, vcol, "--sample '%s': not 1/N with N >= 1", v);
			r->action = PL_ACT_SAMPLE;
			r->arg = u;
			i++;
		} else if (o[0] == '-' && o[1] == '-') {
			return perr(e, t[i].col, "unknown option '%s'", o);
		} else {
			size_t l = strlen(o);
			char *nx = realloc(*x, *xlen + l + 2);

			if (!nx)
				return perr(e, t[i].col, "%s", strerror(ENOMEM));
			if (!*x)
				*expr_col = t[i].col;
			else
				nx[(*xlen)++] = ' ';
			memcpy(nx + *xlen, o, l + 1);
			*xlen += l;
			*x = nx;
		}
	}
	*v4src_ = v4src;
	*v4dst_ = v4dst;
	*src_col_ = src_col;
	*dst_col_ = dst_col;
	*act_col_ = act_col;
	return 0;
}

/*
 * A rule from tokens; r->id 0 when no --id. Words that are not options form
 * a tcpdump expression, joined by spaces: *expr (malloc'd) or NULL.
 */
static int parse_rule(const struct tok *t, int n, struct pl_rule *r, char **expr, struct perr *e)
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

		if (xlen >= PL_FILTER_EXPR_MAX) {
			ret = perr(e, expr_col, "expression longer than %d bytes",
				   PL_FILTER_EXPR_MAX - 1);
			goto fail;
		}
		if (pl_cbpf_compile(x, &cbpf, &clen, err, sizeof(err)) ||
		    pl_cbpf_validate(cbpf, clen, err, sizeof(err))) {
			free(cbpf);
			ret = perr(e, expr_col, "expression '%s': %s", x, err);
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

static void fmt_addr(const __u8 *a, __u8 len, char *buf, size_t n)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char s[INET6_ADDRSTRLEN];

	if (!memcmp(a, mapped, 12) && len >= 96) {
		inet_ntop(AF_INET, a + 12, s, sizeof(s));
		snprintf(buf, n, "%s/%u", s, len - 96);
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

static const char *action_name(__u8 a)
{
	static const char *const names[PL_ACT_MAX] = { "none", "pass", "drop", "redirect", "sample" };

	return a < PL_ACT_MAX ? names[a] : "?";
}

/* The rule in `policy add` syntax, --id first; @expr: its expression or NULL. */
static void fmt_rule(const struct pl_rule *r, const char *expr, char *buf, size_t n)
{
	char a[64], ifn[IF_NAMESIZE];
	size_t off = 0;

#define ADD(...) (off += (size_t)snprintf(buf + off, off < n ? n - off : 0, __VA_ARGS__))
	ADD("--id %u %s --prio %u", r->id, r->dir == PL_DIR_IN ? "--in" : "--out", r->prio);
	if (r->match & PL_M_SRC) {
		fmt_addr(r->src, r->src_len, a, sizeof(a));
		ADD(" --src %s", a);
	}
	if (r->match & PL_M_DST) {
		fmt_addr(r->dst, r->dst_len, a, sizeof(a));
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
		if (if_indextoname(r->arg, ifn))
			ADD(" --redirect %s", ifn);
		else
			ADD(" --redirect ifindex:%u", r->arg);
		break;
	case PL_ACT_SAMPLE:
		ADD(" --sample 1/%u", r->arg);
		break;
	default:
		ADD(" --%s", action_name(r->action));
	}
	if (expr)
		ADD(strchr(expr, '\'') ? " \"%s\"" : " '%s'", expr);
#undef ADD
}

/* ---- commands ---- */

struct target {
	struct pl_attachment *a;
	struct pl_policy p;
	bool open;
};

static int open_target(const char *verb, const char *ifname, struct target *t)
{
	size_t n;
	int ret, err;

	memset(t, 0, sizeof(*t));
	ret = pl_need_caps(verb, PL_NEED_BPF | PL_NEED_NET_ADMIN);
	if (!ret)
		ret = pl_lock_changes(verb);
	if (!ret)
		ret = pl_select(verb, ifname, &t->a, &n);
	if (ret)
		return ret;
	err = pl_policy_open(t->a->dir, &t->p);
	if (err) {
		pl_err("%s: %s: cannot open pinned maps in %s: %s%s", verb, t->a->ifname, t->a->dir,
		       strerror(-err), err == -ENOENT || err == -EPROTO ?
		       " (attached by an older pktlens? attach --force)" : "");
		return PL_EXIT_FAIL;
	}
	t->open = true;
	return PL_EXIT_OK;
}

static void close_target(struct target *t)
{
	if (t->open)
		pl_policy_close(&t->p);
	free(t->a);
}

/* Commit and report; an exit code. */
static int commit(const char *verb, struct target *t, struct pl_rule *rules, size_t n,
		  const struct pl_rule_text *texts, size_t ntexts)
{
	char why[PL_WHY_LEN * 8];
	int err = pl_policy_commit(&t->p, rules, n, texts, ntexts, why, sizeof(why));

	if (!err)
		return PL_EXIT_OK;
	pl_err("%s: %s: %s", verb, t->a->ifname, why);
	return err == -EEXIST || err == -E2BIG || err == -ENOTSUP || err == -EINVAL ?
	       PL_EXIT_USAGE : PL_EXIT_FAIL;
}

static int text_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule_text *)a)->id, y = ((const struct pl_rule_text *)b)->id;

	return x < y ? -1 : x > y;
}

static const char *text_of(const struct pl_rule_text *t, size_t n, __u32 id)
{
	struct pl_rule_text key = { .id = id }, *hit;

	hit = n ? bsearch(&key, t, n, sizeof(*t), text_cmp) : NULL;
	return hit ? hit->text : NULL;
}

/* The running rules and their expressions; prints the error. */
static int read_rules(const char *verb, struct target *t, struct pl_rule **rules, size_t *n,
		      struct pl_rule_text **texts, size_t *ntexts)
{
	int err = pl_policy_rules(&t->p, rules, n);

	if (!err)
		err = pl_policy_exprs(&t->p, texts, ntexts);
	if (err)
		pl_err("%s: %s: reading the rules: %s", verb, t->a->ifname, strerror(-err));
	return err ? PL_EXIT_FAIL : PL_EXIT_OK;
}

static __u32 next_id(const struct pl_rule *rules, size_t n)
{
	__u32 max = 0;

	for (size_t i = 0; i < n; i++)
		max = rules[i].id > max ? rules[i].id : max;
	return max + 1;
}

static int do_add(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL, *nt;
	struct pl_rule *rules = NULL, *nr, r;
	size_t n = 0, ntexts = 0;
	struct target t = { 0 };
	char line[PL_FILTER_EXPR_MAX + 512], *expr = NULL;
	struct tok *toks;
	struct perr e;
	int ret;

	if (argc < 3) {
		pl_err("policy add: needs DEV and a rule (see pktlens policy --help)");
		return PL_EXIT_USAGE;
	}
	toks = calloc((size_t)argc, sizeof(*toks));
	if (!toks)
		return PL_EXIT_FAIL;
	for (int i = 2; i < argc; i++)
		toks[i - 2] = (struct tok){ argv[i], i - 1 };
	if (parse_rule(toks, argc - 2, &r, &expr, &e)) {
		pl_err("policy add: %s: argument %d: %s", argv[1], e.col, e.msg);
		free(toks);
		return PL_EXIT_USAGE;
	}
	free(toks);
	ret = open_target("policy add", argv[1], &t);
	if (!ret)
		ret = read_rules("policy add", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	if (!r.id)
		r.id = next_id(rules, n);
	for (size_t i = 0; i < n; i++)
		if (rules[i].id == r.id) {
			pl_err("policy add: %s: rule id %u exists (policy del %s %u first)", argv[1],
			       r.id, argv[1], r.id);
			ret = PL_EXIT_USAGE;
			goto out;
		}
	nr = realloc(rules, (n + 1) * sizeof(*rules));
	nt = realloc(texts, (ntexts + 1) * sizeof(*texts));
	if (nr)
		rules = nr;
	if (nt)
		texts = nt;
	if (!nr || !nt) {
		ret = PL_EXIT_FAIL;
		goto out;
	}
	rules[n++] = r;
	if (expr) {
		texts[ntexts++] = (struct pl_rule_text){ r.id, expr };
		expr = NULL;
		qsort(texts, ntexts, sizeof(*texts), text_cmp);
	}
	ret = commit("policy add", &t, rules, n, texts, ntexts);
	fmt_rule(&r, text_of(texts, ntexts, r.id), line, sizeof(line));
	if (!ret && !pl_g.json) {
		printf("%s: rule %u added: %s\n", t.a->ifname, r.id, line);
	} else if (!ret) {
		struct jw w;

		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_str_field(&w, "interface", t.a->ifname);
		jw_u64_field(&w, "id", r.id);
		jw_str_field(&w, "rule", line);
		jw_obj_close(&w);
		jw_end(&w);
	}
out:
	close_target(&t);
	free(rules);
	free(expr);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_del(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	uint32_t id;
	int ret;

	if (argc != 3) {
		pl_err("policy del: needs DEV and a rule id");
		return PL_EXIT_USAGE;
	}
	if (pl_parse_u32(argv[2], 1, UINT32_MAX, &id)) {
		pl_err("policy del: %s: '%s' is not a rule id", argv[1], argv[2]);
		return PL_EXIT_USAGE;
	}
	ret = open_target("policy del", argv[1], &t);
	if (!ret)
		ret = read_rules("policy del", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rules[i].id != id)
			rules[kept++] = rules[i];
	if (kept == n) {
		pl_err("policy del: %s: no rule %u (pktlens policy list %s)", argv[1], id, argv[1]);
		ret = PL_EXIT_USAGE;
		goto out;
	}
	ret = commit("policy del", &t, rules, kept, texts, ntexts);
	if (!ret && !pl_g.json)
		printf("%s: rule %u deleted\n", t.a->ifname, id);
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

static int do_flush(int argc, char **argv)
{
	struct pl_rule_text *texts = NULL;
	struct pl_rule *rules = NULL;
	struct target t = { 0 };
	size_t n = 0, kept = 0, ntexts = 0;
	int dir = -1, ret;

	if (argc == 3 && (!strcmp(argv[2], "--in") || !strcmp(argv[2], "--out")))
		dir = argv[2][2] == 'i' ? PL_DIR_IN : PL_DIR_OUT;
	else if (argc != 2) {
		pl_err("policy flush: needs DEV [--in|--out]");
		return PL_EXIT_USAGE;
	}
	ret = open_target("policy flush", argv[1], &t);
	if (!ret)
		ret = read_rules("policy flush", &t, &rules, &n, &texts, &ntexts);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (dir >= 0 && rules[i].dir != dir)
			rules[kept++] = rules[i];
	ret = commit("policy flush", &t, rules, kept, texts, ntexts);
	if (!ret && !pl_g.json)
		printf("%s: %zu rules removed\n", t.a->ifname, n - kept);
out:
	close_target(&t);
	free(rules);
	pl_policy_texts_free(texts, ntexts);
	return ret;
}

/* Split @line into tokens in place (quotes '...' "..." keep spaces); # starts a comment. */
static int tokenize(char *line, struct tok *t, int max, struct perr *e)
{
	char *p = line;
	int n = 0;

	for (;;) {
		char *start, *out;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p || *p == '#')
			return n;
		if (n == max)
			return perr(e, (int)(p - line) + 1, "too many words");
		start = out = p;
		t[n].col = (int)(p - line) + 1;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
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

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* A rule by its content (id zeroed), for matching a file's rules with the running ones. */
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
	__u32 next = next_id(old, nold), *ids;
	size_t nids = 0;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < nold; i++) {
		c[i].r = old[i];
		c[i].r.id = 0;
		c[i].id = old[i].id;
	}
	qsort(c, nold, sizeof(*c), content_cmp);
	/* ids given in the file are theirs: an old rule cannot lend such an id to another */
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
	qsort(ids, nids, sizeof(*ids), id_cmp);
	for (size_t j = 0; j < nold; j++)
		if (bsearch(&c[j].id, ids, nids, sizeof(*ids), id_cmp))
			c[j].id = 0;
	free(ids);
	for (size_t i = 0; i < n; i++) {
		struct by_content key = { .r = rules[i] }, *hit;

		if (rules[i].id)
			continue;
		hit = bsearch(&key, c, nold, sizeof(*c), content_cmp);
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

/* Where a rule of a file came from. */
struct origin {
	__u32 id;
	int line, col;
	char *expr;
};

static int origin_cmp(const void *a, const void *b)
{
	const struct origin *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int do_load(int argc, char **argv)
{
	struct pl_rule *rules = NULL, *old = NULL;
	struct pl_rule_text *texts = NULL;
	struct origin *orig = NULL;
	size_t n = 0, cap = 0, nold = 0, ntexts = 0;
	struct target t = { 0 };
	char *line = NULL;
	size_t linecap = 0;
	int lineno = 0, ret = PL_EXIT_OK;
	struct tok toks[256];
	ssize_t len;
	FILE *f;

	if (argc != 3) {
		pl_err("policy load: needs DEV and FILE");
		return PL_EXIT_USAGE;
	}
	f = fopen(argv[2], "r");
	if (!f) {
		pl_err("policy load: %s: cannot read '%s': %s", argv[1], argv[2], strerror(errno));
		return PL_EXIT_USAGE;
	}
	while ((len = getline(&line, &linecap, f)) >= 0) {
		struct pl_rule r;
		struct perr e;
		char *expr = NULL;
		int nt;

		lineno++;
		nt = tokenize(line, toks, 256, &e);
		if (nt == 0)
			continue;
		if (nt < 0 || parse_rule(toks, nt, &r, &expr, &e)) {
			pl_err("policy load: %s:%d:%d: %s", argv[2], lineno, e.col, e.msg);
			ret = PL_EXIT_USAGE;
			goto out;
		}
		if (n == cap) {
			struct pl_rule *nr;
			struct origin *no;

			cap = cap ? cap * 2 : 256;
			nr = realloc(rules, cap * sizeof(*rules));
			no = realloc(orig, cap * sizeof(*orig));
			if (nr)
				rules = nr;
			if (no)
				orig = no;
			if (!nr || !no) {
				free(expr);
				pl_err("policy load: %s", strerror(ENOMEM));
				ret = PL_EXIT_FAIL;
				goto out;
			}
		}
		orig[n] = (struct origin){ r.id, lineno, toks[0].col, expr };
		rules[n++] = r;
		ntexts += expr != NULL;
	}
	if (ferror(f)) {
		pl_err("policy load: %s: reading '%s': %s", argv[1], argv[2], strerror(errno));
		ret = PL_EXIT_USAGE;
		goto out;
	}
	/* ids given twice: the later line is the error */
	{
		struct origin *o = malloc((n ? n : 1) * sizeof(*o));
		size_t m = 0;

		if (!o) {
			ret = PL_EXIT_FAIL;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (orig[i].id)
				o[m++] = orig[i];
		qsort(o, m, sizeof(*o), origin_cmp);
		for (size_t i = 1; i < m; i++)
			if (o[i].id == o[i - 1].id) {
				pl_err("policy load: %s:%d:%d: rule id %u is given twice (line %d)",
				       argv[2], o[i].line, o[i].col, o[i].id, o[i - 1].line);
				ret = PL_EXIT_USAGE;
				break;
			}
		free(o);
		if (ret)
			goto out;
	}
	ret = open_target("policy load", argv[1], &t);
	if (ret)
		goto out;
	if (pl_policy_rules(&t.p, &old, &nold)) {
		pl_err("policy load: %s: cannot read the current rules", argv[1]);
		ret = PL_EXIT_FAIL;
		goto out;
	}
	texts = calloc(ntexts ? ntexts : 1, sizeof(*texts));
	if (!texts || assign_ids(rules, n, old, nold)) {
		pl_err("policy load: %s", strerror(ENOMEM));
		ret = PL_EXIT_FAIL;
		goto out;
	}
	ntexts = 0;
	for (size_t i = 0; i < n; i++)
		if (orig[i].expr)
			texts[ntexts++] = (struct pl_rule_text){ rules[i].id, orig[i].expr };
	qsort(texts, ntexts, sizeof(*texts), text_cmp);
	ret = commit("policy load", &t, rules, n, texts, ntexts);
	if (!ret && !pl_g.json)
		printf("%s: %zu rule%s loaded from %s\n", t.a->ifname, n, n == 1 ? "" : "s", argv[2]);
out:
	close_target(&t);
	for (size_t i = 0; i < n; i++)
		free(orig[i].expr);
	free(orig);
	free(texts);	/* its texts are orig's */
	free(line);
	free(rules);
	free(old);
	fclose(f);
	return ret;
}

static void list_one(struct jw *w, struct target *t, const struct pl_rule *rules, size_t n,
		     const struct pl_rule_text *texts, size_t ntexts)
{
	struct pl_stats st[PL_SLOT_MAX];
	struct pl_state s;
	struct timespec now;
	bool have_stats = false;
	char line[PL_FILTER_EXPR_MAX + 512];

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (pl_state_open(t->a->dir, &s) == 0) {
		have_stats = pl_state_stats(&s, st) == 0;
		pl_state_close(&s);
	}
	if (w) {
		jw_obj_open(w);
		jw_str_field(w, "interface", t->a->ifname);
		jw_key(w, "rules");
		jw_arr_open(w);
	} else {
		printf("# %s: %zu rule%s\n", t->a->ifname, n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *r = &rules[i];
		struct pl_rule_stats rs;
		double ago = -1;
		char ifn[IF_NAMESIZE] = "";

		if (pl_policy_rule_stats(&t->p, r->id, &rs))
			memset(&rs, 0, sizeof(rs));
		if (rs.pkts && rs.last_ns)
			ago = (double)now.tv_sec + now.tv_nsec / 1e9 - rs.last_ns / 1e9;
		fmt_rule(r, text_of(texts, ntexts, r->id), line, sizeof(line));
		if (!w) {
			printf("%s\n#   %llu packets, %llu bytes", line, (unsigned long long)rs.pkts,
			       (unsigned long long)rs.bytes);
			if (ago >= 0)
				printf(", last %.1f s ago", ago < 0 ? 0 : ago);
			printf("\n");
			continue;
		}
		jw_obj_open(w);
		jw_u64_field(w, "id", r->id);
		jw_str_field(w, "dir", r->dir == PL_DIR_IN ? "in" : "out");
		jw_u64_field(w, "prio", r->prio);
		jw_str_field(w, "action", action_name(r->action));
		if (r->action == PL_ACT_REDIRECT) {
			jw_str_field(w, "redirect", if_indextoname(r->arg, ifn) ? ifn : NULL);
			jw_u64_field(w, "redirect_ifindex", r->arg);
		}
		if (r->action == PL_ACT_SAMPLE)
			jw_u64_field(w, "sample_every", r->arg);
		jw_str_field(w, "expression", text_of(texts, ntexts, r->id));
		jw_str_field(w, "rule", line);
		jw_u64_field(w, "packets", rs.pkts);
		jw_u64_field(w, "bytes", rs.bytes);
		jw_key(w, "last_hit_s_ago");
		if (ago >= 0)
			jw_double(w, ago < 0 ? 0 : ago);
		else
			jw_null(w);
		jw_obj_close(w);
	}
	if (w) {
		jw_arr_close(w);
		jw_key(w, "no_match");
		jw_obj_open(w);
	}
	for (int slot = 0; have_stats && slot < PL_SLOT_MAX; slot++) {
		static const char *const names[PL_SLOT_MAX] = { "xdp in", "tc in", "tc out" };

		if (!st[slot].nomatch_pkts && !pl_policy_judges(&t->p, slot))
			continue;
		if (w) {
			jw_key(w, names[slot]);
			jw_obj_open(w);
			jw_u64_field(w, "packets", st[slot].nomatch_pkts);
			jw_u64_field(w, "bytes", st[slot].nomatch_bytes);
			jw_obj_close(w);
		} else if (st[slot].nomatch_pkts) {
			printf("# %s: no rule matched %llu packets, %llu bytes (passed)\n", names[slot],
			       (unsigned long long)st[slot].nomatch_pkts,
			       (unsigned long long)st[slot].nomatch_bytes);
		}
	}
	if (w) {
		jw_obj_close(w);
		jw_obj_close(w);
	}
}

static int do_policy_list(int argc, char **argv)
{
	struct pl_attachment *a = NULL;
	struct jw w;
	size_t n = 0;
	int ret;

	if (argc > 2) {
		pl_err("policy list: at most one DEV");
		return PL_EXIT_USAGE;
	}
	ret = pl_need_caps("policy list", PL_NEED_BPF);
	if (!ret)
		ret = pl_select("policy list", argc == 2 ? argv[1] : NULL, &a, &n);
	if (ret)
		return ret;
	if (pl_g.json) {
		jw_init(&w, stdout, pl_g.pretty);
		jw_obj_open(&w);
		jw_key(&w, "interfaces");
		jw_arr_open(&w);
	}
	for (size_t i = 0; i < n; i++) {
		struct target t = { .a = &a[i] };
		struct pl_rule_text *texts = NULL;
		struct pl_rule *rules = NULL;
		size_t nr = 0, ntexts = 0;
		int err = pl_policy_open(a[i].dir, &t.p);

		if (err) {
			pl_err("policy list: %s: cannot read the rules: %s%s", a[i].ifname,
			       strerror(-err), err == -ENOENT || err == -EPROTO ?
			       " (attached by an older pktlens? attach --force)" : "");
			ret = PL_EXIT_FAIL;
			continue;
		}
		t.open = true;
		if (read_rules("policy list", &t, &rules, &nr, &texts, &ntexts))
			ret = PL_EXIT_FAIL;
		else
			list_one(pl_g.json ? &w : NULL, &t, rules, nr, texts, ntexts);
		pl_policy_close(&t.p);
		free(rules);
		pl_policy_texts_free(texts, ntexts);
	}
	if (pl_g.json) {
		jw_arr_close(&w);
		jw_obj_close(&w);
		jw_end(&w);
	}
	free(a);
	return ret;
}

int do_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *verb;
	int opt;

	/* -j/-h only before the verb's own words, so rule options pass through */
	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			pl_g.json = true;
			break;
		case 'h':
			policy_usage(stdout);
			return PL_EXIT_OK;
		default:
			fputs(POLICY_USAGE, stderr);
			return PL_EXIT_USAGE;
		}
	}
	verb = optind < argc ? argv[optind] : NULL;
	if (!verb) {
		fputs(POLICY_USAGE, stderr);
		return PL_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	/* a trailing -j / --json on list */
	if (argc > 1 && (!strcmp(argv[argc - 1], "-j") || !strcmp(argv[argc - 1], "--json"))) {
		pl_g.json = true;
		argc--;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			policy_usage(stdout);
			return PL_EXIT_OK;
		}
	if (!strcmp(verb, "help")) {
		policy_usage(stdout);
		return PL_EXIT_OK;
	}
	if (!strcmp(verb, "add"))
		return do_add(argc, argv);
	if (!strcmp(verb, "list"))
		return do_policy_list(argc, argv);
	if (!strcmp(verb, "del"))
		return do_del(argc, argv);
	if (!strcmp(verb, "flush"))
		return do_flush(argc, argv);
	if (!strcmp(verb, "load"))
		return do_load(argc, argv);
	pl_err("policy: what is '%s'? (see pktlens policy --help)", verb);
	return PL_EXIT_USAGE;
}
