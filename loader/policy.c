// SPDX-License-Identifier: GPL-2.0
/*
 * Policy rule sets (bpf/policy.h). The rules of an attachment are kept in
 * its pinned policy_rules map (by id); judging packets is done by rule-set
 * programs built from them. pl_policy_commit() replaces the whole rule set:
 *
 *   1. check it (ids, limits, hooks, redirect targets);
 *   2. for every hook that judges a direction, load a fresh pktlens_*_policy
 *      program with its own rule maps (the shared counters, flows and stats
 *      are reused) and fill those maps;
 *   3. create zeroed counters for new rule ids, add redirect targets;
 *   4. swap each hook's POLICY slot (one map update), or empty it when a
 *      direction has no rules left;
 *   5. record the rules, drop the counters and targets of removed rules.
 *
 * A failure before step 4 changes nothing; a failure inside it puts the
 * previous programs back. Each packet meets one whole rule set: the one its
 * hook's slot held when the tail call was made.
 *
 * Ingress rules are judged at the first ingress hook (XDP if attached, else
 * tc ingress), so each packet is counted once by its rules; egress rules at
 * tc egress.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>

#include "loader.h"
#include "../pcap/cbpf.h"
#include "pktlens_xdp.skel.h"
#include "pktlens_tc.skel.h"

#define WHY(err, ...) ({ snprintf(why, whylen, __VA_ARGS__); (err); })

/* Entries per batch map call: each syscall costs tens of microseconds on slow hosts. */
#define PL_BATCH 8192U

/* bpf_map_update_batch() of @n entries in chunks; 0 or -errno. */
static int update_batch(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz,
			size_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int tries = 0;

	for (size_t i = 0; i < n;) {
		__u32 c = (__u32)(n - i < PL_BATCH ? n - i : PL_BATCH);
		int err = bpf_map_update_batch(fd, (const char *)keys + i * ksz,
					       (const char *)vals + i * vsz, &c, &opts) ? -errno : 0;

		i += c;		/* the kernel says how many went in, also on error */
		if (!err)
			continue;
		/* a full map is a runtime failure, not bad input (check()'s limits say E2BIG) */
		if (err == -E2BIG)
			return -ENOSPC;
		/*
		 * Maps without preallocation take elements from the BPF memory
		 * allocator, whose per-CPU caches refill asynchronously (irq_work):
		 * a burst of 100,000 inserts can find them empty for a moment.
		 */
		if (err != -ENOMEM || ++tries > 100)
			return err;
		usleep(1000);
	}
	return 0;
}

void pl_policy_close(struct pl_policy *p)
{
	int *fds[] = { &p->rules_fd, &p->rstats_fd, &p->redirect_fd, &p->stats_fd, &p->flows_fd,
		       &p->cache_fd, &p->res_fd, &p->xdp_chain_fd, &p->tc_chain_fd, &p->exprs_fd,
		       &p->bits_fd, &p->sample_fd[0], &p->sample_fd[1], &p->sample_fd[2],
		       &p->sample_fd[3] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int pl_policy_open(const char *dir, struct pl_policy *p)
{
	struct {
		int *fd;
		const char *name;
		bool need;
	} pins[] = {
		{ &p->rules_fd, PL_MAP_POLICY_RULES, true },
		{ &p->rstats_fd, PL_MAP_RULE_STATS, true },
		{ &p->redirect_fd, PL_MAP_REDIRECT, false },
		{ &p->stats_fd, PL_MAP_STATS, true },
		{ &p->flows_fd, PL_MAP_FLOWS, true },
		{ &p->cache_fd, PL_MAP_FLOW_CACHE, true },
		{ &p->res_fd, PL_MAP_CHAIN_RES, true },
		{ &p->xdp_chain_fd, PL_MAP_XDP_CHAIN, false },
		{ &p->tc_chain_fd, PL_MAP_TC_CHAIN, false },
		{ &p->exprs_fd, PL_MAP_POLICY_EXPRS, true },
		{ &p->bits_fd, PL_MAP_EXPR_BITS, true },
		{ &p->sample_fd[0], PL_MAP_SAMPLE_CFG, true },
		{ &p->sample_fd[1], PL_MAP_SAMPLE_STATS, true },
		{ &p->sample_fd[2], PL_MAP_SAMPLE_RING, true },
		{ &p->sample_fd[3], PL_MAP_SAMPLE_RES, true },
	};
	int meta_fd, err = 0;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		*pins[i].fd = -1;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	meta_fd = pl_pin_open(dir, PL_MAP_META);
	if (meta_fd < 0)
		return -errno;
	err = pl_meta_read(meta_fd, &p->meta);
	close(meta_fd);
	for (size_t i = 0; !err && i < sizeof(pins) / sizeof(pins[0]); i++) {
		*pins[i].fd = pl_pin_open(dir, pins[i].name);
		if (*pins[i].fd < 0 && (pins[i].need || errno != ENOENT))
			err = -errno;
	}
	if (err)
		pl_policy_close(p);
	return err;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct pl_rule *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void pl_policy_sort(struct pl_rule *rules, size_t n)
{
	pl_qsort(rules, n, sizeof(*rules), rule_cmp);
}

int pl_policy_rules(const struct pl_policy *p, struct pl_rule **out, size_t *n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct pl_rule *v = NULL;
	__u32 *keys = NULL, batch = 0, chunk;
	size_t cnt = 0, cap = 0;
	bool first = true;
	int err = 0;

	/* the whole map, PL_BATCH entries a call */
	for (;;) {
		if (cap - cnt < PL_BATCH) {
			struct pl_rule *nv = realloc(v, (cap + PL_BATCH) * sizeof(*v));
			__u32 *nk = realloc(keys, (cap + PL_BATCH) * sizeof(*keys));

			if (nv)
				v = nv;
			if (nk)
				keys = nk;
			if (!nv || !nk) {
				err = -ENOMEM;
				break;
			}
			/* filled by BPF_MAP_LOOKUP_BATCH: zeroed for valgrind (see percpu_walk) */
			memset(v + cap, 0, PL_BATCH * sizeof(*v));
			memset(keys + cap, 0, PL_BATCH * sizeof(*keys));
			cap += PL_BATCH;
		}
		chunk = PL_BATCH;
		err = bpf_map_lookup_batch(p->rules_fd, first ? NULL : &batch, &batch, keys + cnt,
					   v + cnt, &chunk, &opts);
		first = false;
		cnt += chunk;
		if (err) {
			err = errno == ENOENT ? 0 : -errno;	/* ENOENT: that was the last batch */
			break;
		}
	}
	free(keys);
	if (err) {
		free(v);
		return err;
	}
	pl_policy_sort(v, cnt);
	*out = v;
	*n = cnt;
	return 0;
}

int pl_policy_rule_stats(const struct pl_policy *p, const struct pl_rule *r,
			 struct pl_rule_stats *sum)
{
	__u32 ctr = r->ctr;
	int ncpu = libbpf_num_possible_cpus();
	struct pl_rule_stats *v;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(p->rstats_fd, &ctr, v)) {
		int err = -errno;

		free(v);
		return err;
	}
	for (int c = 0; c < ncpu; c++) {
		sum->pkts += v[c].pkts;
		sum->bytes += v[c].bytes;
		if (v[c].last_ns > sum->last_ns)
			sum->last_ns = v[c].last_ns;
	}
	free(v);
	return 0;
}

__u32 pl_policy_expr_hash(const char *text)
{
	__u32 h = 2166136261u;

	for (; *text; text++)
		h = (h ^ (unsigned char)*text) * 16777619u;
	return h;
}

void pl_policy_texts_free(struct pl_rule_text *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free(t[i].text);
	free(t);
}

static int text_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule_text *)a)->id, y = ((const struct pl_rule_text *)b)->id;

	return x < y ? -1 : x > y;
}

int pl_policy_exprs(const struct pl_policy *p, struct pl_rule_text **out, size_t *n)
{
	struct pl_rule_text *v = NULL;
	struct pl_rule_expr e;
	size_t cnt = 0;
	__u32 key, next;
	int err = 0;

	for (int ret = pl_map_first_key(p->exprs_fd, &next); !ret;
	     ret = bpf_map_get_next_key(p->exprs_fd, &key, &next)) {
		struct pl_rule_text *nv;

		key = next;
		if (bpf_map_lookup_elem(p->exprs_fd, &key, &e))
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv) {
			err = -ENOMEM;
			break;
		}
		v = nv;
		e.text[sizeof(e.text) - 1] = 0;
		v[cnt].id = key;
		v[cnt].text = strdup(e.text);
		if (!v[cnt++].text) {
			err = -ENOMEM;
			break;
		}
	}
	if (err) {
		pl_policy_texts_free(v, cnt);
		return err;
	}
	if (cnt)
		pl_qsort(v, cnt, sizeof(*v), text_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

static const char *text_of(const struct pl_rule_text *t, size_t n, __u32 id)
{
	struct pl_rule_text key = { .id = id }, *hit;

	hit = pl_bsearch(&key, t, n, sizeof(*t), text_cmp);
	return hit ? hit->text : NULL;
}

/* ---- building a rule set ---- */

/* Rules that go into an LPM trie: one address field, a terminal action. */
static int lpm_field(const struct pl_rule *r)
{
	if (r->action == PL_ACT_SAMPLE)
		return -1;
	if (r->match == PL_M_SRC)
		return 0;
	if (r->match == PL_M_DST)
		return 1;
	return -1;
}

/* An LPM key's bits: the family byte, then the address (struct pl_lpm_key). */
struct prefix {
	__u8 addr[1 + 16];
	unsigned int len;	/* PL_LPM_FAM_BITS + the rule's prefix length */
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
		cnt += lpm_field(&rules[i]) == f;
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

		if (lpm_field(r) != f)
			continue;
		v[m].addr[0] = r->fam;
		memcpy(v[m].addr + 1, f ? r->dst : r->src, 16);
		v[m].len = PL_LPM_FAM_BITS + (f ? r->dst_len : r->src_len);
		v[m].best = (struct pl_rule_ref){ r->prio, r->id, r->action, r->arg, r->ctr };
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

/* One hook's rule set, loaded and filled, not yet live. */
struct ruleset {
	const char *hook;	/* "xdp in", "tc in", "tc out" */
	int chain_fd;
	__u32 dir;
	struct pktlens_xdp *x;
	struct pktlens_tc *t;
	int prog_fd;		/* pktlens_*_policy; -1: no rules */
	int stage_fd;		/* expression stage, -1 if the rules have none */
	__u32 gen;		/* its PL_CHAIN_POLICY_GEN slot */
	__u32 slot;		/* enum pl_slot */
	bool native;		/* XDP frags */
};

static void ruleset_free(struct ruleset *rs)
{
	if (rs->stage_fd >= 0)
		close(rs->stage_fd);
	rs->stage_fd = -1;
	pktlens_xdp__destroy(rs->x);
	pktlens_tc__destroy(rs->t);
	rs->x = NULL;
	rs->t = NULL;
}

/* Maps of the rule-set object: the attachment's own, or fresh ones for the rules. */
struct objmaps {
	struct bpf_map *stats, *flows, *cache, *res, *rstats, *redirect, *bits;
	struct bpf_map *sample[4];	/* as pl_policy.sample_fd */
	struct bpf_map *unused[5];
	struct bpf_map *src, *dst, *list, *cfg;
};

static int prepare_maps(const struct pl_policy *p, const struct objmaps *m, size_t src_n,
			size_t dst_n, size_t list_n)
{
	int err;

	err = bpf_map__reuse_fd(m->stats, p->stats_fd);
	err = err ?: bpf_map__reuse_fd(m->flows, p->flows_fd);
	err = err ?: bpf_map__reuse_fd(m->cache, p->cache_fd);
	err = err ?: bpf_map__reuse_fd(m->res, p->res_fd);
	err = err ?: bpf_map__reuse_fd(m->rstats, p->rstats_fd);
	err = err ?: bpf_map__reuse_fd(m->bits, p->bits_fd);
	for (size_t i = 0; !err && i < sizeof(m->sample) / sizeof(m->sample[0]); i++)
		err = bpf_map__reuse_fd(m->sample[i], p->sample_fd[i]);
	if (!err && m->redirect)
		err = bpf_map__reuse_fd(m->redirect, p->redirect_fd);
	for (size_t i = 0; !err && i < sizeof(m->unused) / sizeof(m->unused[0]); i++)
		if (m->unused[i])
			err = bpf_map__set_autocreate(m->unused[i], false);
	err = err ?: bpf_map__set_max_entries(m->src, src_n ? (__u32)src_n : 1);
	err = err ?: bpf_map__set_max_entries(m->dst, dst_n ? (__u32)dst_n : 1);
	return err ?: bpf_map__set_max_entries(m->list, list_n ? (__u32)list_n : 1);
}

static int fill_lpm(int fd, const struct prefix *v, size_t n)
{
	struct pl_lpm_key *k = calloc(n ? n : 1, sizeof(*k));
	struct pl_rule_ref *r = calloc(n ? n : 1, sizeof(*r));
	int err;

	if (!k || !r) {
		free(k);
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		k[i].prefixlen = v[i].len;
		k[i].fam = v[i].addr[0];
		memcpy(k[i].addr, v[i].addr + 1, 16);
		r[i] = v[i].best;
	}
	err = update_batch(fd, k, sizeof(*k), r, sizeof(*r), n);
	free(k);
	free(r);
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
		if (lpm_field(&rules[i]) >= 0)
			continue;
		k[m] = (__u32)m;
		v[m] = rules[i];
		if (v[m].match & PL_M_EXPR)
			v[m].expr = e++;	/* the order of build_stage() */
		m++;
	}
	err = update_batch(fd, k, sizeof(*k), v, sizeof(*v), m);
	free(v);
	free(k);
	return err;
}

/* Of @obj's programs, load only @prog. */
static void autoload_only(struct bpf_object *obj, struct bpf_program *prog)
{
	struct bpf_program *q;

	bpf_object__for_each_program(q, obj)
		bpf_program__set_autoload(q, q == prog);
}

/*
 * The expression stage of @rs: every PL_M_EXPR rule of @rules (its direction,
 * in list order, as fill_list() numbers them) compiled, translated and
 * called in turn; it tail-calls the rule set's program in slot rs->gen.
 */
static int build_stage(const struct pl_policy *p, struct ruleset *rs, const struct pl_rule *rules,
		       size_t n, const struct pl_rule_text *texts, size_t ntexts, char *why,
		       size_t whylen)
{
	enum pl_filter_ctx ctx = strcmp(rs->hook, "xdp in") ? PL_FILTER_TC : PL_FILTER_XDP;
	struct bpf_insn *ebpf[PL_POLICY_EXPRS_MAX] = { NULL }, *stage = NULL;
	size_t cnt[PL_POLICY_EXPRS_MAX], ne = 0, slen;
	struct pl_expr_target t = {
		.ctx = ctx, .bits_fd = p->bits_fd, .bits_key = rs->slot, .chain_fd = rs->chain_fd,
		.next_slot = PL_CHAIN_POLICY_GEN(rs->dir, rs->gen),
	};
	char log[1024], err_text[512];
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		const struct pl_rule *r = &rules[i];
		struct sock_filter *cbpf = NULL;
		size_t clen;
		const char *text;

		if (r->dir != rs->dir || !(r->match & PL_M_EXPR))
			continue;
		text = text_of(texts, ntexts, r->id);
		if (!text) {
			err = WHY(-EINVAL, "rule %u: its expression is missing", r->id);
			break;
		}
		err = pl_cbpf_compile(text, &cbpf, &clen, err_text, sizeof(err_text));
		if (!err)
			err = pl_cbpf_translate(cbpf, clen, ctx, &ebpf[ne], &cnt[ne], err_text,
						sizeof(err_text));
		free(cbpf);
		if (err) {
			/* the reason first: the text may fill @why */
			WHY(err, "rule %u: %s (expression '%s')", r->id, err_text, text);
			break;
		}
		ne++;
	}
	if (!err && ne) {
		err = pl_ebpf_expr_stage((const struct bpf_insn *const *)ebpf, cnt, ne, &t, &stage,
					 &slen);
		if (err)
			WHY(err, "%s: building the expression stage: %s", rs->hook, strerror(-err));
	}
	if (!err && ne) {
		rs->stage_fd = pl_ebpf_load(stage, slen, ctx, rs->native ? BPF_F_XDP_HAS_FRAGS : 0,
					    log, sizeof(log));
		if (rs->stage_fd < 0)
			err = WHY(rs->stage_fd, "%s: the kernel refused the expression stage "
				  "(%zu expressions): %s%s%s", rs->hook, ne, strerror(-rs->stage_fd),
				  log[0] ? ": " : "", log);
	}
	for (size_t i = 0; i < ne; i++)
		free(ebpf[i]);
	free(stage);
	return err;
}

/* Load the programs of @rs for the rules of its direction in @rules (sorted) and fill their maps. */
static int ruleset_build(const struct pl_policy *p, struct ruleset *rs, const struct pl_rule *rules,
			 size_t n, const struct pl_rule_text *texts, size_t ntexts, char *why,
			 size_t whylen)
{
	struct prefix *lpm[2] = { NULL, NULL };
	size_t lpm_n[2] = { 0, 0 }, list_n = 0, from = n, to = 0;
	struct bpf_program *prog;
	struct pl_policy_cfg cfg = { 0 };
	struct objmaps m;
	bool skb = p->meta.xdp_mode == PL_XDP_SKB;
	__u32 key = 0;
	int err;

	rs->prog_fd = -1;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].dir != rs->dir)
			continue;
		from = from < i ? from : i;
		to = i + 1;
		list_n += lpm_field(&rules[i]) < 0;
		cfg.exprs += !!(rules[i].match & PL_M_EXPR);
	}
	if (to == 0)
		return 0;	/* no rules: the slots are emptied */
	for (int f = 0; f < 2; f++) {
		err = lpm_entries(rules + from, to - from, f, &lpm[f], &lpm_n[f]);
		if (err)
			goto out;
	}
	if (rs->t == NULL && !strcmp(rs->hook, "xdp in")) {
		struct pktlens_xdp *x = rs->x = pktlens_xdp__open();

		if (!x) {
			err = WHY(-errno, "%s: cannot open the XDP object: %s", rs->hook,
				  strerror(errno));
			goto out;
		}
		m = (struct objmaps){ x->maps.stats, x->maps.flows, x->maps.flow_cache,
				      x->maps.chain_res, x->maps.rule_stats, x->maps.redirect_map,
				      x->maps.expr_bits,
				      { x->maps.sample_cfg, x->maps.sample_stats, x->maps.sample_ring,
					x->maps.sample_res },
				      { x->maps.xdp_chain, x->maps.xdp_skb_chain, x->maps.meta,
					x->maps.policy_rules, x->maps.policy_exprs },
				      x->maps.policy_src, x->maps.policy_dst, x->maps.policy_list,
				      x->maps.policy_cfg };
		prog = skb ? x->progs.pktlens_xdp_skb_policy : x->progs.pktlens_xdp_policy;
		autoload_only(x->obj, prog);
		err = prepare_maps(p, &m, lpm_n[0], lpm_n[1], list_n);
		err = err ?: pktlens_xdp__load(x);
	} else {
		struct pktlens_tc *t = rs->t = pktlens_tc__open();

		if (!t) {
			err = WHY(-errno, "%s: cannot open the tc object: %s", rs->hook, strerror(errno));
			goto out;
		}
		m = (struct objmaps){ t->maps.stats, t->maps.flows, t->maps.flow_cache,
				      t->maps.chain_res, t->maps.rule_stats, NULL, t->maps.expr_bits,
				      { t->maps.sample_cfg, t->maps.sample_stats, t->maps.sample_ring,
					t->maps.sample_res },
				      { t->maps.tc_chain, t->maps.meta, t->maps.policy_rules,
					t->maps.policy_exprs, NULL },
				      t->maps.policy_src, t->maps.policy_dst, t->maps.policy_list,
				      t->maps.policy_cfg };
		prog = rs->dir == PL_DIR_IN ? t->progs.pktlens_tc_in_policy :
					      t->progs.pktlens_tc_out_policy;
		autoload_only(t->obj, prog);
		err = prepare_maps(p, &m, lpm_n[0], lpm_n[1], list_n);
		err = err ?: pktlens_tc__load(t);
	}
	if (err) {
		WHY(err, "%s: loading the rule-set programs failed: %s", rs->hook, strerror(-err));
		goto out;
	}
	err = fill_list(bpf_map__fd(m.list), rules + from, to - from, list_n);
	err = err ?: fill_lpm(bpf_map__fd(m.src), lpm[0], lpm_n[0]);
	err = err ?: fill_lpm(bpf_map__fd(m.dst), lpm[1], lpm_n[1]);
	if (err) {
		WHY(err, "%s: filling the rule maps failed: %s", rs->hook, strerror(-err));
		goto out;
	}
	if (cfg.exprs)
		err = build_stage(p, rs, rules + from, to - from, texts, ntexts, why, whylen);
	if (err)
		goto out;
	cfg.list_len = (__u32)list_n;
	cfg.src_cidrs = (__u32)lpm_n[0];
	cfg.dst_cidrs = (__u32)lpm_n[1];
	key = 0;
	if (!err && bpf_map_update_elem(bpf_map__fd(m.cfg), &key, &cfg, BPF_ANY))
		err = -errno;
	if (err) {
		WHY(err, "%s: filling the rule maps failed: %s", rs->hook, strerror(-err));
		goto out;
	}
	rs->prog_fd = bpf_program__fd(prog);
out:
	free(lpm[0]);
	free(lpm[1]);
	return err;
}

static __u32 slot_prog_id(int chain_fd, __u32 slot);

/* The hooks that judge rules of @p's attachment, each with its direction. */
static size_t ruleset_hooks(const struct pl_policy *p, struct ruleset rs[2])
{
	size_t n = 0;

	if (p->meta.xdp_mode != PL_XDP_NONE)
		rs[n++] = (struct ruleset){ .hook = "xdp in", .chain_fd = p->xdp_chain_fd,
					    .dir = PL_DIR_IN, .slot = PL_SLOT_XDP_IN,
					    .native = p->meta.xdp_mode == PL_XDP_NATIVE };
	else if (p->meta.tc_hooks & PL_TC_IN)
		rs[n++] = (struct ruleset){ .hook = "tc in", .chain_fd = p->tc_chain_fd,
					    .dir = PL_DIR_IN, .slot = PL_SLOT_TC_IN };
	if (p->meta.tc_hooks & PL_TC_OUT)
		rs[n++] = (struct ruleset){ .hook = "tc out", .chain_fd = p->tc_chain_fd,
					    .dir = PL_DIR_OUT, .slot = PL_SLOT_TC_OUT };
	for (size_t i = 0; i < n; i++) {
		rs[i].stage_fd = -1;
		/* the free one of the two slots: the other may hold the running set's program */
		rs[i].gen = slot_prog_id(rs[i].chain_fd, PL_CHAIN_POLICY_GEN(rs[i].dir, 0)) ? 1 : 0;
	}
	return n;
}

bool pl_policy_judges(const struct pl_policy *p, int slot)
{
	struct ruleset rs[2];
	size_t n = ruleset_hooks(p, rs);

	for (size_t i = 0; i < n; i++)
		if ((int)rs[i].slot == slot)
			return true;
	return false;
}

bool pl_policy_has_dir(const struct pl_policy *p, int dir)
{
	struct ruleset rs[2];
	size_t n = ruleset_hooks(p, rs);

	for (size_t i = 0; i < n; i++)
		if ((int)rs[i].dir == dir)
			return true;
	return false;
}

/* Program id in @slot of @chain_fd (0: empty). */
static __u32 slot_prog_id(int chain_fd, __u32 slot)
{
	__u32 id = 0;

	if (bpf_map_lookup_elem(chain_fd, &slot, &id))
		return 0;
	return id;
}

/* @slot := program @fd, or empty for fd < 0 */
static int slot_set(int chain_fd, __u32 slot, int fd)
{
	if (fd < 0)
		return bpf_map_delete_elem(chain_fd, &slot) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(chain_fd, &slot, &fd, BPF_ANY) ? -errno : 0;
}

/* Put program @id (0: none) back into @slot. */
static void slot_restore(int chain_fd, __u32 slot, __u32 id)
{
	int fd = id ? bpf_prog_get_fd_by_id(id) : -1;

	if (id && fd < 0)
		return;
	slot_set(chain_fd, slot, fd);
	if (fd >= 0)
		close(fd);
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* @id among @ids (sorted) */
static bool has_id(const __u32 *ids, size_t n, __u32 id)
{
	return pl_bsearch(&id, ids, n, sizeof(*ids), u32_cmp) != NULL;
}

static int check(const struct pl_policy *p, const struct pl_rule *rules, size_t n, char *why,
		 size_t whylen)
{
	size_t list_n[2] = { 0, 0 }, lpm_n[2][2] = { { 0, 0 }, { 0, 0 } }, expr_n[2] = { 0, 0 };
	__u32 list_over[2] = { 0, 0 }, lpm_over[2][2] = { { 0, 0 }, { 0, 0 } };	/* first rule past */

	if (n > PL_POLICY_RULES_MAX)
		return WHY(-E2BIG, "%zu rules: at most %u per interface", n, PL_POLICY_RULES_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *r = &rules[i];
		int f = lpm_field(r);

		if (r->id > PL_POLICY_RULES_MAX)
			return WHY(-ERANGE, "rule id %u: ids are 1-%u", r->id, PL_POLICY_RULES_MAX);
		if (!r->id || r->dir > PL_DIR_OUT || !r->action || r->action >= PL_ACT_MAX ||
		    ((r->match & (PL_M_SRC | PL_M_DST)) && r->fam != PL_FAM_IPV4 &&
		     r->fam != PL_FAM_IPV6))
			return WHY(-EINVAL, "rule %u: malformed", r->id);
		if (i && r->id == rules[i - 1].id)
			return WHY(-EEXIST, "rule id %u given twice", r->id);
		if (!pl_policy_has_dir(p, r->dir))
			return WHY(-ENOTSUP, "rule %u: %s has no %s hook (pktlens attach %s --tc %s)",
				   r->id, p->meta.ifname, r->dir == PL_DIR_IN ? "ingress" : "egress",
				   p->meta.ifname, r->dir == PL_DIR_IN ? "in" : "out");
		if (r->action == PL_ACT_REDIRECT && p->meta.xdp_mode != PL_XDP_NONE &&
		    r->dir == PL_DIR_IN && p->redirect_fd < 0)
			return WHY(-ENOTSUP, "rule %u: this attachment has no redirect map (re-attach)",
				   r->id);
		/* limits name the first rule past them ("rule N: "), where a file can point */
		if ((r->match & PL_M_EXPR) && ++expr_n[r->dir] > PL_POLICY_EXPRS_MAX)
			return WHY(-E2BIG, "rule %u: more than %u %s rules with an expression", r->id,
				   PL_POLICY_EXPRS_MAX, r->dir ? "egress" : "ingress");
		if (f < 0 && ++list_n[r->dir] == PL_POLICY_LIST_MAX + 1)
			list_over[r->dir] = r->id;
		else if (f >= 0 && ++lpm_n[r->dir][f] == PL_POLICY_CIDRS_MAX + 1)
			lpm_over[r->dir][f] = r->id;
	}
	for (int d = 0; d < 2; d++) {
		if (list_n[d] > PL_POLICY_LIST_MAX)
			return WHY(-E2BIG, "rule %u: %zu %s rules with ports, protocol, VLAN, both "
				   "addresses or --sample: at most %u", list_over[d], list_n[d],
				   d ? "egress" : "ingress", PL_POLICY_LIST_MAX);
		for (int f = 0; f < 2; f++)
			if (lpm_n[d][f] > PL_POLICY_CIDRS_MAX)
				return WHY(-E2BIG, "rule %u: %zu %s rules on a %s address alone: at most %u",
					   lpm_over[d][f], lpm_n[d][f], d ? "egress" : "ingress",
					   f ? "destination" : "source", PL_POLICY_CIDRS_MAX);
	}
	return 0;
}

/* Ids in @rules by id order, for the duplicate check. */
static int id_cmp(const void *a, const void *b)
{
	const struct pl_rule *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The old rule with @id, or NULL (@old sorted by id). */
static const struct pl_rule *old_rule(const struct pl_rule *old, size_t nold, __u32 id)
{
	struct pl_rule key = { .id = id };

	return pl_bsearch(&key, old, nold, sizeof(*old), id_cmp);
}

/* Whether @ctr is the counter key of one of @old (sorted by ctr). */
static bool has_ctr(const struct pl_rule *old, size_t nold, __u32 ctr)
{
	size_t lo = 0, hi = nold;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (old[mid].ctr == ctr)
			return true;
		if (old[mid].ctr < ctr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int ctr_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule *)a)->ctr, y = ((const struct pl_rule *)b)->ctr;

	return x < y ? -1 : x > y;
}

/*
 * Counter keys of @rules: the rule with the same id in @old keeps its own
 * (unless the caller said PL_RULE_CTR_NEW), every other rule gets one that
 * no rule of @old uses, so it never counts into a replaced rule's counters.
 * @old sorted by id; @byctr is @old sorted by counter key.
 */
static void assign_ctrs(struct pl_rule *rules, size_t n, const struct pl_rule *old, size_t nold,
			const struct pl_rule *byctr)
{
	__u32 next = 1;

	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *o = old_rule(old, nold, rules[i].id);

		if (rules[i].ctr != PL_RULE_CTR_NEW && o && o->ctr) {
			rules[i].ctr = o->ctr;
			continue;
		}
		while (has_ctr(byctr, nold, next))
			next++;
		rules[i].ctr = next++;	/* <= nold + n <= PL_RULE_CTR_MAX */
	}
}

/* Zeroed per-CPU counters for the rules of @rules whose keys @old does not use. */
static int new_counters(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
			const struct pl_rule *byctr, size_t nold, bool undo, char *why,
			size_t whylen)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vsz, m = 0;
	__u32 *k;
	void *v;
	int err;

	if (ncpu <= 0)
		return WHY(-EINVAL, "cannot count CPUs");
	vsz = sizeof(struct pl_rule_stats) * (size_t)ncpu;	/* 8-byte multiple already */
	k = calloc(n ? n : 1, sizeof(*k));
	v = calloc(n ? n : 1, vsz);
	if (!k || !v) {
		free(k);
		free(v);
		return WHY(-ENOMEM, "%s", strerror(ENOMEM));
	}
	for (size_t i = 0; i < n; i++)
		if (!has_ctr(byctr, nold, rules[i].ctr))
			k[m++] = rules[i].ctr;
	/* undo: take them out again (a later step failed): nothing is left behind */
	if (undo) {
		for (size_t i = 0; i < m; i++)
			bpf_map_delete_elem(p->rstats_fd, &k[i]);
		err = 0;
	} else {
		err = update_batch(p->rstats_fd, k, sizeof(*k), v, vsz, m);
		if (err)
			for (size_t i = 0; i < m; i++)
				bpf_map_delete_elem(p->rstats_fd, &k[i]);
	}
	free(k);
	free(v);
	return err ? WHY(err, "cannot create rule counters: %s", strerror(-err)) : 0;
}

/*
 * Delete from @fd the keys of @old (the __u32 at @off of each rule: id or
 * ctr) that no rule of @rules has. @k: room for n keys.
 */
static void delete_unused(int fd, __u32 *k, const struct pl_rule *rules, size_t n,
			  const struct pl_rule *old, size_t nold, size_t off)
{
	for (size_t i = 0; i < n; i++)
		memcpy(&k[i], (const char *)&rules[i] + off, sizeof(*k));
	pl_qsort(k, n, sizeof(*k), u32_cmp);
	for (size_t i = 0; i < nold; i++) {
		__u32 key;

		memcpy(&key, (const char *)&old[i] + off, sizeof(key));
		if (!has_id(k, n, key))
			bpf_map_delete_elem(fd, &key);
	}
}

/*
 * policy_rules := @rules: write what changed, delete what is gone, and the
 * counters no rule of @rules uses any more.
 */
static int record(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
		  const struct pl_rule *old, size_t nold, char *why, size_t whylen)
{
	struct pl_rule *v = calloc(n ? n : 1, sizeof(*v));
	__u32 *k = calloc((n > nold ? n : nold) + 1, sizeof(*k));
	size_t m = 0;
	int err;

	if (!v || !k) {
		free(v);
		free(k);
		return WHY(-ENOMEM, "%s", strerror(ENOMEM));
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *o = old_rule(old, nold, rules[i].id);

		if (o && !memcmp(o, &rules[i], sizeof(*o)))
			continue;
		k[m] = rules[i].id;
		v[m++] = rules[i];
	}
	err = update_batch(p->rules_fd, k, sizeof(*k), v, sizeof(*v), m);
	if (err)
		WHY(err, "recording the rules: %s", strerror(-err));
	if (!err) {
		delete_unused(p->rules_fd, k, rules, n, old, nold, offsetof(struct pl_rule, id));
		delete_unused(p->rstats_fd, k, rules, n, old, nold, offsetof(struct pl_rule, ctr));
	}
	free(v);
	free(k);
	return err;
}

/* policy_exprs := the texts of @rules' expressions */
static int record_texts(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
			const struct pl_rule_text *texts, size_t ntexts, char *why, size_t whylen)
{
	struct pl_rule_text *have = NULL;
	size_t nhave = 0;
	int err;

	err = pl_policy_exprs(p, &have, &nhave);
	if (err)
		return WHY(err, "reading the expressions: %s", strerror(-err));
	for (size_t i = 0; i < n && !err; i++) {
		const char *t = text_of(texts, ntexts, rules[i].id), *h;
		struct pl_rule_expr e = { { 0 } };

		if (!(rules[i].match & PL_M_EXPR) || !t)
			continue;
		h = text_of(have, nhave, rules[i].id);
		if (h && !strcmp(h, t))
			continue;
		snprintf(e.text, sizeof(e.text), "%s", t);
		if (bpf_map_update_elem(p->exprs_fd, &rules[i].id, &e, BPF_ANY))
			err = WHY(-errno, "recording rule %u's expression: %s", rules[i].id,
				  strerror(errno));
	}
	for (size_t i = 0; i < nhave && !err; i++) {
		bool keep = false;

		for (size_t j = 0; j < n && !keep; j++)
			keep = rules[j].id == have[i].id && (rules[j].match & PL_M_EXPR);
		if (!keep)
			bpf_map_delete_elem(p->exprs_fd, &have[i].id);
	}
	pl_policy_texts_free(have, nhave);
	return err;
}

int pl_policy_commit(struct pl_policy *p, struct pl_rule *rules, size_t n,
		     const struct pl_rule_text *texts, size_t ntexts, char *why, size_t whylen)
{
	struct pl_rule *old = NULL, *byctr = NULL;
	struct ruleset rs[2];
	__u32 prev[2] = { 0, 0 };
	size_t nrs, nold = 0, swapped = 0;
	bool counters = false;
	int err;

	why[0] = 0;
	pl_qsort(rules, n, sizeof(*rules), id_cmp);
	err = check(p, rules, n, why, whylen);
	if (err)
		return err;
	pl_policy_sort(rules, n);
	err = pl_policy_rules(p, &old, &nold);
	if (err)
		return WHY(err, "reading the current rules: %s", strerror(-err));
	pl_qsort(old, nold, sizeof(*old), id_cmp);
	byctr = malloc((nold ? nold : 1) * sizeof(*byctr));
	if (!byctr) {
		free(old);
		return WHY(-ENOMEM, "%s", strerror(ENOMEM));
	}
	memcpy(byctr, old, nold * sizeof(*old));
	pl_qsort(byctr, nold, sizeof(*byctr), ctr_cmp);
	assign_ctrs(rules, n, old, nold, byctr);
	nrs = ruleset_hooks(p, rs);
	for (size_t h = 0; h < nrs && !err; h++)
		err = ruleset_build(p, &rs[h], rules, n, texts, ntexts, why, whylen);
	if (err)
		goto out;

	/* counters of new rules, redirect targets */
	err = new_counters(p, rules, n, byctr, nold, false, why, whylen);
	counters = !err;
	for (size_t i = 0; i < n && !err; i++) {
		const struct pl_rule *r = &rules[i];

		if (r->action == PL_ACT_REDIRECT && p->redirect_fd >= 0 && r->dir == PL_DIR_IN &&
		    p->meta.xdp_mode != PL_XDP_NONE &&
		    bpf_map_update_elem(p->redirect_fd, &r->arg, &r->arg, BPF_ANY))
			err = WHY(-errno, "rule %u: cannot redirect to ifindex %u: %s", r->id, r->arg,
				  strerror(errno));
	}
	if (err)
		goto out;

	/*
	 * live: one slot update per hook. With expressions the program goes into
	 * the free generation slot first (nothing reaches it yet), then the
	 * expression stage that tail-calls it into POLICY.
	 */
	for (size_t h = 0; h < nrs; h++)
		prev[h] = slot_prog_id(rs[h].chain_fd, PL_CHAIN_POLICY(rs[h].dir));
	for (swapped = 0; swapped < nrs && !err; swapped++) {
		struct ruleset *r = &rs[swapped];

		if (r->stage_fd >= 0) {
			err = slot_set(r->chain_fd, PL_CHAIN_POLICY_GEN(r->dir, r->gen), r->prog_fd);
			err = err ?: slot_set(r->chain_fd, PL_CHAIN_POLICY(r->dir), r->stage_fd);
		} else {
			err = slot_set(r->chain_fd, PL_CHAIN_POLICY(r->dir), r->prog_fd);
		}
		if (err)
			WHY(err, "%s: cannot swap the rule set in: %s", r->hook, strerror(-err));
	}
	if (err) {
		for (size_t h = 0; h < swapped; h++) {
			slot_restore(rs[h].chain_fd, PL_CHAIN_POLICY(rs[h].dir), prev[h]);
			if (rs[h].stage_fd >= 0)
				slot_set(rs[h].chain_fd, PL_CHAIN_POLICY_GEN(rs[h].dir, rs[h].gen), -1);
		}
		goto out;
	}
	counters = false;	/* live now: a failure below must not take them away */
	/* the previous set's program, if it sat behind an expression stage, once unused */
	pl_wait_for_packets();
	for (size_t h = 0; h < nrs; h++)
		for (__u32 g = 0; g < 2; g++)
			if (rs[h].stage_fd < 0 || g != rs[h].gen)
				slot_set(rs[h].chain_fd, PL_CHAIN_POLICY_GEN(rs[h].dir, g), -1);

	/* the record; counters and redirect targets of rules that are gone */
	err = record(p, rules, n, old, nold, why, whylen);
	err = err ?: record_texts(p, rules, n, texts, ntexts, why, whylen);
	if (p->redirect_fd >= 0) {
		for (size_t i = 0; i < nold; i++) {
			bool used = false;

			if (old[i].action != PL_ACT_REDIRECT)
				continue;
			for (size_t j = 0; j < n && !used; j++)
				used = rules[j].action == PL_ACT_REDIRECT && rules[j].arg == old[i].arg &&
				       rules[j].dir == PL_DIR_IN;
			if (!used)
				bpf_map_delete_elem(p->redirect_fd, &old[i].arg);
		}
	}
out:
	if (err && counters)
		new_counters(p, rules, n, byctr, nold, true, why, 0);
	for (size_t h = 0; h < nrs; h++)
		ruleset_free(&rs[h]);
	free(byctr);
	free(old);
	return err;
}
