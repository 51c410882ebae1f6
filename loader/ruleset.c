// SPDX-License-Identifier: GPL-2.0
/*
 * One hook's rule set (bpf/policy.h): a fresh pktlens_*_policy program with
 * its own lookup maps, sized and filled for the rules (LPM tries for rules
 * on one address, an ordered list for the rest), the attachment's counters
 * and flows shared (loader/maps.c), and for expression rules an expression
 * stage that judges every expression first (pcap/stage.c). Made live by
 * pl_policy_commit() (loader/policy.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include "features.h"
#include "ruleset.h"
#include "../pcap/cbpf.h"
#include "pktlens_xdp.skel.h"
#include "pktlens_tc.skel.h"

/* Rules that go into an LPM trie: one address field, a terminal action (not sample, limit). */
int pl_rule_lpm_field(const struct pl_rule *r)
{
	if (r->action == PL_ACT_SAMPLE || r->action == PL_ACT_LIMIT)
		return -1;
	if (r->match == PL_M_SRC)
		return 0;
	if (r->match == PL_M_DST)
		return 1;
	return -1;
}

/*
 * A prefix of an address rule: the family byte, then the address, so that
 * no prefix of one family contains one of the other (the tries of
 * bpf/policy.h are per family: fill_lpm() drops the byte).
 */
#define FAM_BITS 8

struct prefix {
	__u8 addr[1 + 16];
	unsigned int len;	/* FAM_BITS + the rule's prefix length (IPv4: 96 + it) */
	struct pl_rule_ref best;
};

static bool ref_before(const struct pl_rule_ref *a, const struct pl_rule_ref *b)
{
	return a->prio < b->prio || (a->prio == b->prio && a->id < b->id);
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, sizeof(x->addr));

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return ref_before(&x->best, &y->best) ? -1 : ref_before(&y->best, &x->best);
}

static bool prefix_contains(const struct prefix *q, const struct prefix *p)
{
	unsigned int full = q->len / 8, rest = q->len % 8;

	if (q->len > p->len || memcmp(q->addr, p->addr, full))
		return false;
	return !rest || ((p->addr[full] ^ q->addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/*
 * The LPM entries of field @f (0 src, 1 dst) of @rules: each distinct prefix
 * with the first rule whose prefix covers it. Sorted by (address, length),
 * prefixes come in tree preorder, so a stack of the enclosing ones suffices.
 */
static int lpm_entries(const struct pl_rule *rules, size_t n, int f, struct prefix **out,
		       size_t *out_n)
{
	struct prefix *v, **stack;
	size_t cnt = 0, m = 0, depth = 0;

	for (size_t i = 0; i < n; i++)
		cnt += pl_rule_lpm_field(&rules[i]) == f;
	*out = NULL;
	*out_n = 0;
	if (!cnt)
		return 0;
	v = calloc(cnt, sizeof(*v));
	stack = calloc(cnt, sizeof(*stack));
	if (!v || !stack) {
		free(v);
		free(stack);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *r = &rules[i];

		if (pl_rule_lpm_field(r) != f)
			continue;
		v[m].addr[0] = r->fam;
		memcpy(v[m].addr + 1, f ? r->dst : r->src, 16);
		v[m].len = FAM_BITS + (f ? r->dst_len : r->src_len);
		v[m].best = (struct pl_rule_ref){ r->prio, r->id, r->action, r->arg, r->ctr,
						  r->flags };
		m++;
	}
	pl_qsort(v, m, sizeof(*v), prefix_cmp);
	/* same prefix: the first sorts first; keep it */
	cnt = 0;
	for (size_t i = 0; i < m; i++)
		if (!cnt || v[cnt - 1].len != v[i].len ||
		    memcmp(v[cnt - 1].addr, v[i].addr, sizeof(v[i].addr)))
			v[cnt++] = v[i];
	for (size_t i = 0; i < cnt; i++) {
		while (depth && !prefix_contains(stack[depth - 1], &v[i]))
			depth--;
		if (depth && ref_before(&stack[depth - 1]->best, &v[i].best))
			v[i].best = stack[depth - 1]->best;
		stack[depth++] = &v[i];
	}
	free(stack);
	*out = v;
	*out_n = cnt;
	return 0;
}

void pl_ruleset_free(struct pl_ruleset *rs)
{
	if (rs->stage_fd >= 0)
		close(rs->stage_fd);
	rs->stage_fd = -1;
	pktlens_xdp__destroy(rs->x);
	pktlens_tc__destroy(rs->t);
	rs->x = NULL;
	rs->t = NULL;
}

/* Whether the attachment pins map @d as the table has it (an older pktlens: absent, or another type) */
static bool pinned_as(const struct pl_policy *p, const struct pl_map_def *d)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = p->fd[pl_map_id(d)];

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == d->type;
}

/*
 * The maps of rule-set object @obj as the table says (enum pl_map_rules):
 * the attachment's where shared, none where its programs do not use them,
 * its own of @size[id] entries (0: as the object has it).
 */
static int prepare_maps(const struct pl_policy *p, struct bpf_object *obj,
			const __u32 size[PL_MID_MAX])
{
	struct bpf_map *m;
	int err = 0;

	bpf_object__for_each_map(m, obj) {
		const struct pl_map_def *d = pl_map_find(bpf_map__name(m));

		if (bpf_map__is_internal(m))
			continue;
		if (d->rules == PL_RS_SHARED && (!d->optional || pinned_as(p, d)))
			err = bpf_map__reuse_fd(m, p->fd[pl_map_id(d)]);
		else if (d->rules == PL_RS_SHARED)
			;	/* optional, and the attachment predates it (or this kind): its own */
		else if (d->rules == PL_RS_NONE)
			err = bpf_map__set_autocreate(m, false);
		else if (size[pl_map_id(d)])
			err = bpf_map__set_max_entries(m, size[pl_map_id(d)]);
		if (err)
			break;
	}
	return err;
}

/* The fd of map @id of a loaded object */
static int obj_map_fd(const struct bpf_object *obj, enum pl_map_id id)
{
	return bpf_map__fd(bpf_object__find_map_by_name(obj, pl_maps[id].name));
}

/* How many of the @n prefixes @v are IPv4's */
static size_t lpm_v4(const struct prefix *v, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += v[i].addr[0] == PL_FAM_IPV4;
	return c;
}

/* The @n prefixes @v into the IPv4 trie @fd4 and the IPv6 trie @fd6 */
static int fill_lpm(int fd4, int fd6, const struct prefix *v, size_t n)
{
	struct pl_lpm4_key *k4 = calloc(n ? n : 1, sizeof(*k4));
	struct pl_lpm6_key *k6 = calloc(n ? n : 1, sizeof(*k6));
	struct pl_rule_ref *r4 = calloc(n ? n : 1, sizeof(*r4));
	struct pl_rule_ref *r6 = calloc(n ? n : 1, sizeof(*r6));
	size_t n4 = 0, n6 = 0;
	int err = -ENOMEM;

	if (!k4 || !k6 || !r4 || !r6)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (v[i].addr[0] == PL_FAM_IPV4) {
			/* IPv4 rules hold ::ffff:a.b.c.d/96+len (cli/policy_rule.c) */
			k4[n4].prefixlen = v[i].len - FAM_BITS - 96;
			memcpy(k4[n4].addr, v[i].addr + 1 + 12, 4);
			r4[n4++] = v[i].best;
		} else {
			k6[n6].prefixlen = v[i].len - FAM_BITS;
			memcpy(k6[n6].addr, v[i].addr + 1, 16);
			r6[n6++] = v[i].best;
		}
	}
	err = pl_map_update_batch(fd4, k4, sizeof(*k4), r4, sizeof(*r4), n4);
	err = err ?: pl_map_update_batch(fd6, k6, sizeof(*k6), r6, sizeof(*r6), n6);
out:
	free(k4);
	free(k6);
	free(r4);
	free(r6);
	return err;
}

/* policy_list: the rules not in an LPM trie, in order */
static int fill_list(int fd, const struct pl_rule *rules, size_t n, size_t list_n)
{
	struct pl_rule *v = calloc(list_n ? list_n : 1, sizeof(*v));
	__u32 *k = calloc(list_n ? list_n : 1, sizeof(*k));
	size_t m = 0;
	int err;

	if (!v || !k) {
		free(v);
		free(k);
		return -ENOMEM;
	}
	__u8 e = 0;

	for (size_t i = 0; i < n; i++) {
		if (pl_rule_lpm_field(&rules[i]) >= 0)
			continue;
		k[m] = (__u32)m;
		v[m] = rules[i];
		if (v[m].match & PL_M_EXPR)
			v[m].expr = e++;	/* the order of build_stage() */
		m++;
	}
	err = pl_map_update_batch(fd, k, sizeof(*k), v, sizeof(*v), m);
	free(v);
	free(k);
	return err;
}

/* Field @f of list rule @r as a range [*lo, *hi]; false when @r does not match on it. */
static bool lf_range(const struct pl_rule *r, int f, __u32 *lo, __u32 *hi)
{
	switch (f) {
	case -1:	/* not a field: the expression (lookup_exprs()) */
		*lo = *hi = 0;
		return r->match & PL_M_EXPR;
	case PL_LF_SPORT:
		*lo = r->sport_lo;
		*hi = r->sport_hi;
		return r->match & PL_M_SPORT;
	case PL_LF_DPORT:
		*lo = r->dport_lo;
		*hi = r->dport_hi;
		return r->match & PL_M_DPORT;
	case PL_LF_VLAN:
		*lo = *hi = r->vlan;
		return r->match & PL_M_VLAN;
	default:
		*lo = *hi = r->proto;
		return r->match & PL_M_PROTO;
	}
}

/* Lists up to this long are walked rule by rule, not looked up */
#define PL_LIST_SHORT 4

/* Values a field takes in the packet (pl_pkt.key): ports and VLAN (PL_VLAN_NONE too) 16 bits */
static const __u32 lf_domain[PL_LF_MAX] = { 65536, 65536, 65536, 256 };

/* The lookup of policy_list by field (bpf/policy.h): classes and their rule bits */
struct lookup {
	__u32 *cls;			/* policy_class, lf_base[f] + value -> class */
	size_t ncls;
	struct pl_rule_bits *bits;	/* policy_bits, by class */
	size_t nbits, capbits;
};

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* A new class of @lk for field @f: the list rules that do not match on it, and those covering @v. */
static long lookup_class(struct lookup *lk, const struct pl_rule *const *list, size_t n, int f,
			 bool has, __u32 v)
{
	struct pl_rule_bits *b;
	__u32 lo, hi;

	b = pl_grown(lk->bits, &lk->capbits, lk->nbits, sizeof(*b), 64);
	if (!b)
		return -ENOMEM;
	lk->bits = b;
	b = &lk->bits[lk->nbits];
	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < n; i++)
		if (!lf_range(list[i], f, &lo, &hi) || (has && lo <= v && v <= hi)) {
			b->w[i / 64] |= 1ULL << (i % 64);
			b->nz |= 1U << (i / 64);
		}
	return (long)lk->nbits++;
}

/*
 * The expression rules' part of the lookup: a class of the list rules
 * without an expression, and which list rule each expression bit is (the
 * bits fill_list() gives, in list order).
 */
static long lookup_exprs(struct lookup *lk, const struct pl_rule *const *list, size_t n,
			 struct pl_policy_cfg *cfg)
{
	long c = lookup_class(lk, list, n, -1, false, 0);
	unsigned int e = 0;

	if (c < 0)
		return c;
	cfg->expr_none = (__u32)c;
	for (size_t i = 0; i < n; i++)
		if ((list[i]->match & PL_M_EXPR) && e < PL_POLICY_EXPRS_MAX)
			cfg->expr_idx[e++] = (__u16)i;
	return c;
}

/*
 * The lookup of the @n list rules @list (in list order) into @lk and @cfg:
 * per field some rule matches on, a class per stretch of values between
 * the rules' bounds, and one for packets without the field.
 */
static int lookup_build(struct lookup *lk, const struct pl_rule *const *list, size_t n,
			struct pl_policy_cfg *cfg)
{
	__u32 *bound = calloc(2 * n + 1, sizeof(*bound)), lo, hi;
	long c = 0;

	if (!bound)
		return -ENOMEM;
	/* a few rules: trying each costs less than looking them up (words 0: all are tried) */
	if (n <= PL_LIST_SHORT) {
		free(bound);
		return 0;
	}
	cfg->words = (__u32)((n + 63) / 64);
	for (int f = 0; f < PL_LF_MAX; f++) {
		size_t nb = 0, u = 0;
		__u32 *nc;

		for (size_t i = 0; i < n; i++) {
			if (!lf_range(list[i], f, &lo, &hi))
				continue;
			bound[nb++] = lo;
			if (hi + 1 < lf_domain[f])
				bound[nb++] = hi + 1;
		}
		if (!nb)
			continue;	/* no rule matches on it */
		bound[nb++] = 0;
		pl_qsort(bound, nb, sizeof(*bound), u32_cmp);
		for (size_t i = 0; i < nb; i++)
			if (!u || bound[i] != bound[u - 1])
				bound[u++] = bound[i];
		nc = realloc(lk->cls, (lk->ncls + lf_domain[f]) * sizeof(*nc));
		if (!nc) {
			free(bound);
			return -ENOMEM;
		}
		lk->cls = nc;
		cfg->lf_used |= 1U << f;
		cfg->lf_base[f] = (__u32)lk->ncls;
		c = lookup_class(lk, list, n, f, false, 0);
		if (c < 0)
			break;
		cfg->lf_none[f] = (__u32)c;
		for (size_t k = 0; k < u && c >= 0; k++) {
			__u32 end = k + 1 < u ? bound[k + 1] : lf_domain[f];

			c = lookup_class(lk, list, n, f, true, bound[k]);
			for (__u32 v = bound[k]; v < end && c >= 0; v++)
				lk->cls[lk->ncls + v] = (__u32)c;
		}
		if (c < 0)
			break;
		lk->ncls += lf_domain[f];
	}
	free(bound);
	if (c >= 0 && cfg->exprs)
		c = lookup_exprs(lk, list, n, cfg);
	return c < 0 ? -ENOMEM : 0;
}

static int fill_array(int fd, const void *v, size_t vsz, size_t n)
{
	__u32 *k = calloc(n ? n : 1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		k[i] = (__u32)i;
	err = pl_map_update_batch(fd, k, sizeof(*k), v, vsz, n);
	free(k);
	return err;
}

/*
 * The expression stage of @rs: every PL_M_EXPR rule of @rules (its direction,
 * in list order, as fill_list() numbers them) compiled, translated and
 * called in turn; it tail-calls the rule set's program in slot rs->gen.
 */
static int build_stage(const struct pl_policy *p, struct pl_ruleset *rs,
		       const struct pl_rule *rules, size_t n, const struct pl_rule_text *texts,
		       size_t ntexts, char *why, size_t whylen)
{
	const struct pl_filter_opts o = {
		.ctx = strcmp(rs->hook, "xdp in") ? PL_FILTER_TC : PL_FILTER_XDP,
		.xdp_linear = pl_xdp_linear(),
	};
	struct bpf_insn *ebpf[PL_EXPR_STAGE_MAX] = { NULL }, *stage = NULL;
	size_t cnt[PL_EXPR_STAGE_MAX], ne = 0, slen;
	struct pl_expr_target t = {
		.ctx = o.ctx, .bits_fd = p->fd[PL_MID_EXPR_BITS], .bits_key = rs->slot, .chain_fd = rs->chain_fd,
		.next_slot = PL_CHAIN_POLICY_GEN(rs->dir, rs->gen),
	};
	char log[1024], err_text[512];
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		const struct pl_rule *r = &rules[i];
		struct pl_filter_prog fp;
		const char *text;

		if (r->dir != rs->dir || !(r->match & PL_M_EXPR))
			continue;
		text = pl_policy_text(texts, ntexts, r->id);
		if (!text) {
			err = pl_why(why, whylen, -EINVAL, "rule %u: its expression is missing",
				     r->id);
			break;
		}
		err = pl_filter_build(text, &o, &fp, err_text, sizeof(err_text));
		if (err) {
			/* the reason first: the text may fill @why */
			pl_why(why, whylen, err, "rule %u: %s (expression '%s')", r->id, err_text,
			       text);
			break;
		}
		ebpf[ne] = fp.ebpf;	/* kept, the rest freed */
		cnt[ne++] = fp.ebpf_len;
		fp.ebpf = NULL;
		pl_filter_prog_free(&fp);
	}
	if (!err && ne) {
		err = pl_ebpf_expr_stage((const struct bpf_insn *const *)ebpf, cnt, ne, &t, &stage,
					 &slen);
		if (err)
			pl_why(why, whylen, err, "%s: building the expression stage: %s", rs->hook,
			       strerror(-err));
	}
	if (!err && ne) {
		rs->stage_fd = pl_ebpf_load(stage, slen, o.ctx, rs->xdp_flags,
					    log, sizeof(log));
		if (rs->stage_fd < 0)
			err = pl_why(why, whylen, pl_load_err(rs->stage_fd),
				     "%s: the kernel refused the expression stage "
				     "(%zu expressions): %s%s%s", rs->hook, ne,
				     strerror(-rs->stage_fd), log[0] ? ": " : "", log);
	}
	for (size_t i = 0; i < ne; i++)
		free(ebpf[i]);
	free(stage);
	return err;
}

/*
 * Load @prog[i] for each bit i of @which, the only programs of @x or @t (an
 * XDP or tc object just opened) to load, against attachment @p: its pinned
 * maps reused, the object's own sized by @size (0: as built), the
 * attachment's TCP analysis and flow cache in the read-only data, as attach
 * set them in its programs. @what names the programs in @why. 0, or -errno
 * with @why.
 */
static int load_against(const struct pl_policy *p, struct pktlens_xdp *x, struct pktlens_tc *t,
			struct bpf_program *const *prog, unsigned int which,
			const __u32 size[PL_MID_MAX], __u32 xdp_flags, const char *hook,
			const char *what, char *why, size_t whylen)
{
	struct bpf_object *obj = x ? x->obj : t->obj;
	struct bpf_program *q;
	int err, cbits;

	err = pl_maps_check(obj, x ? PL_OBJ_XDP : PL_OBJ_TC, why, whylen);
	if (err)
		return err;
	err = pl_obj_kernel(obj);
	bpf_object__for_each_program(q, obj) {
		bool load = false;

		for (unsigned int i = 0; which >> i; i++)
			load |= (which & (1u << i)) && q == prog[i];
		bpf_program__set_autoload(q, load);
	}
	/* beside an extension program (libxdp's dispatcher): as it is, no attach type */
	for (unsigned int i = 0; x && (xdp_flags & PL_EBPF_F_NO_ATTACH_TYPE) && !err && which >> i; i++)
		if (which & (1u << i))
			err = bpf_program__set_expected_attach_type(prog[i], 0);
	if (err)
		return pl_why(why, whylen, err, "%s: cannot prepare %s: %s", hook, what,
			      strerror(-err));
	/* analyses TCP as the attachment's programs do (bpf/tcp.h) */
	if (x)
		x->rodata->pl_tcp_slots = pl_tcp_slots_for((int)p->meta.xdp_mode,
							   (int)p->meta.tc_hooks,
							   p->meta.tcp_passive, true,
							   (int)p->meta.ifindex);
	else
		t->rodata->pl_tcp_slots = pl_tcp_slots_for((int)p->meta.xdp_mode,
							   (int)p->meta.tc_hooks,
							   p->meta.tcp_passive, false,
							   (int)p->meta.ifindex);
	/* the attachment's flow cache, its size as its programs have it */
	cbits = pl_flow_cache_bits_of(p->fd[PL_MID_FLOW_CACHE]);
	if (cbits < 0)
		return pl_why(why, whylen, cbits, "%s: the attachment's flow cache is %s; attach "
			      "--force makes it anew, keeping its counters", hook,
			      cbits == -EPROTO ? "an older pktlens's" : strerror(-cbits));
	if (x)
		x->rodata->pl_flow_cache_bits = (__u32)cbits;
	else
		t->rodata->pl_flow_cache_bits = (__u32)cbits;
	err = prepare_maps(p, obj, size);
	err = err ?: (x ? pktlens_xdp__load(x) : pktlens_tc__load(t));
	if (err)
		return pl_why(why, whylen, pl_load_err(err), "%s: loading %s failed: %s%s", hook,
			      what, strerror(-err), err == -E2BIG && p->meta.tcp_passive ?
			      " (rules and TCP analysis over this verifier's limit; attach without "
			      "--tcp-passive for rules)" : "");
	return 0;
}

/* See ruleset.h */
int pl_ruleset_build(const struct pl_policy *p, struct pl_ruleset *rs, const struct pl_rule *rules,
		     size_t n, const struct pl_rule_text *texts, size_t ntexts, char *why,
		     size_t whylen)
{
	struct prefix *lpm[2] = { NULL, NULL };
	struct lookup lk = { 0 };
	const struct pl_rule **list = NULL;
	size_t lpm_n[2] = { 0, 0 }, lpm4_n[2] = { 0, 0 }, list_n = 0, from = n, to = 0;
	__u32 size[PL_MID_MAX] = { 0 }, key = 0;
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct pl_policy_cfg cfg = { 0 };
	bool skb = !(rs->xdp_flags & BPF_F_XDP_HAS_FRAGS), xdp = !strcmp(rs->hook, "xdp in");
	bool loop = pl_feature(PL_FEAT_BPF_LOOP);
	int err;

	rs->prog_fd = -1;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].dir != rs->dir)
			continue;
		from = from < i ? from : i;
		to = i + 1;
		list_n += pl_rule_lpm_field(&rules[i]) < 0;
		cfg.exprs += !!(rules[i].match & PL_M_EXPR);
	}
	if (to == 0)
		return 0;	/* no rules: the slots are emptied */
	for (int f = 0; f < 2; f++) {
		err = lpm_entries(rules + from, to - from, f, &lpm[f], &lpm_n[f]);
		if (err)
			goto out;
	}
	list = calloc(list_n ? list_n : 1, sizeof(*list));
	if (!list) {
		err = -ENOMEM;
		goto out;
	}
	list_n = 0;
	for (size_t i = from; i < to; i++)
		if (rules[i].dir == rs->dir && pl_rule_lpm_field(&rules[i]) < 0)
			list[list_n++] = &rules[i];
	err = list_n <= PL_POLICY_LIST_MAX ? lookup_build(&lk, list, list_n, &cfg) : 0;
	if (err) {
		pl_why(why, whylen, err, "%s: building the rule lookup: %s", rs->hook, strerror(-err));
		goto out;
	}
	if (xdp && (rs->x = pktlens_xdp__open())) {
		obj = rs->x->obj;
		prog = skb ? loop ? rs->x->progs.pktlens_xdp_skb_policy :
				    rs->x->progs.pktlens_xdp_skb_policy_bounded :
			     loop ? rs->x->progs.pktlens_xdp_policy :
				    rs->x->progs.pktlens_xdp_policy_bounded;
	} else if (!xdp && (rs->t = pktlens_tc__open())) {
		obj = rs->t->obj;
		prog = rs->dir == PL_DIR_IN ?
			loop ? rs->t->progs.pktlens_tc_in_policy : rs->t->progs.pktlens_tc_in_policy_bounded :
			loop ? rs->t->progs.pktlens_tc_out_policy : rs->t->progs.pktlens_tc_out_policy_bounded;
	} else {
		err = pl_why(why, whylen, -errno, "%s: cannot open the %s object: %s", rs->hook,
			     xdp ? "XDP" : "tc", strerror(errno));
		goto out;
	}
	lpm4_n[0] = lpm_v4(lpm[0], lpm_n[0]);
	lpm4_n[1] = lpm_v4(lpm[1], lpm_n[1]);
	size[PL_MID_POLICY_SRC4] = lpm4_n[0] ? (__u32)lpm4_n[0] : 1;
	size[PL_MID_POLICY_SRC6] = lpm_n[0] > lpm4_n[0] ? (__u32)(lpm_n[0] - lpm4_n[0]) : 1;
	size[PL_MID_POLICY_DST4] = lpm4_n[1] ? (__u32)lpm4_n[1] : 1;
	size[PL_MID_POLICY_DST6] = lpm_n[1] > lpm4_n[1] ? (__u32)(lpm_n[1] - lpm4_n[1]) : 1;
	size[PL_MID_POLICY_LIST] = list_n ? (__u32)list_n : 1;
	size[PL_MID_POLICY_CLASS] = lk.ncls ? (__u32)lk.ncls : 1;
	size[PL_MID_POLICY_BITS] = lk.nbits ? (__u32)lk.nbits : 1;
	err = load_against(p, rs->x, rs->t, &prog, 1, size, rs->xdp_flags, rs->hook,
			   "the rule-set programs", why, whylen);
	if (err)
		goto out;
	err = fill_list(obj_map_fd(obj, PL_MID_POLICY_LIST), rules + from, to - from, list_n);
	err = err ?: fill_lpm(obj_map_fd(obj, PL_MID_POLICY_SRC4), obj_map_fd(obj, PL_MID_POLICY_SRC6),
			      lpm[0], lpm_n[0]);
	err = err ?: fill_lpm(obj_map_fd(obj, PL_MID_POLICY_DST4), obj_map_fd(obj, PL_MID_POLICY_DST6),
			      lpm[1], lpm_n[1]);
	err = err ?: fill_array(obj_map_fd(obj, PL_MID_POLICY_CLASS), lk.cls, sizeof(*lk.cls), lk.ncls);
	err = err ?: fill_array(obj_map_fd(obj, PL_MID_POLICY_BITS), lk.bits, sizeof(*lk.bits),
				lk.nbits);
	if (err) {
		pl_why(why, whylen, err, "%s: filling the rule maps failed: %s", rs->hook,
		       strerror(-err));
		goto out;
	}
	if (cfg.exprs && (err = build_stage(p, rs, rules + from, to - from, texts, ntexts, why,
					    whylen)))
		goto out;
	cfg.list_len = (__u32)list_n;
	cfg.fast = p->fd[PL_MID_RULE_CTRS] >= 0 ? PL_RULE_FAST_MAX : 0;
	cfg.src4_cidrs = (__u32)lpm4_n[0];
	cfg.src6_cidrs = (__u32)(lpm_n[0] - lpm4_n[0]);
	cfg.dst4_cidrs = (__u32)lpm4_n[1];
	cfg.dst6_cidrs = (__u32)(lpm_n[1] - lpm4_n[1]);
	cfg.first.prio = list_n ? list[0]->prio : ~0U;
	cfg.first.id = list_n ? list[0]->id : ~0U;
	if (bpf_map_update_elem(obj_map_fd(obj, PL_MID_POLICY_CFG), &key, &cfg, BPF_ANY)) {
		err = pl_why(why, whylen, -errno, "%s: filling the rule maps failed: %s", rs->hook,
			     strerror(errno));
		goto out;
	}
	rs->prog_fd = bpf_program__fd(prog);
out:
	free(lpm[0]);
	free(lpm[1]);
	free(list);
	free(lk.cls);
	free(lk.bits);
	return err;
}

/* See ruleset.h */
int pl_chain_main_load(const char *dir, unsigned int dirs, int fds[2], char *why, size_t whylen)
{
	const __u32 size[PL_MID_MAX] = { 0 };
	struct bpf_program *prog[2];
	struct pktlens_tc *t = NULL;
	struct pl_policy p;
	int err;

	fds[0] = fds[1] = -1;
	err = pl_policy_open(dir, &p);
	if (err)
		return pl_why(why, whylen, err, "tc: cannot open the attachment's maps in %s: %s",
			      dir, strerror(-err));
	t = pktlens_tc__open();
	if (!t) {
		err = pl_why(why, whylen, -errno, "tc: cannot open the tc object: %s", strerror(errno));
		goto out;
	}
	prog[PL_DIR_IN] = t->progs.pktlens_tc_in_main;
	prog[PL_DIR_OUT] = t->progs.pktlens_tc_out_main;
	err = load_against(&p, NULL, t, prog, dirs, size, 0, "tc",
			   "the filter chain's counting programs", why, whylen);
	for (int d = 0; d < 2 && !err; d++)
		if ((dirs & (1u << d)) && (fds[d] = dup(bpf_program__fd(prog[d]))) < 0)
			err = pl_why(why, whylen, -errno, "tc: %s", strerror(errno));
	if (err) {
		for (int d = 0; d < 2; d++)
			if (fds[d] >= 0)
				close(fds[d]);
		fds[0] = fds[1] = -1;
	}
out:
	pktlens_tc__destroy(t);
	pl_policy_close(&p);
	return err;
}
