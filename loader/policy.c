// SPDX-License-Identifier: GPL-2.0
/*
 * Policy rule sets (bpf/policy.h). The rules of an attachment are kept in
 * its pinned policy_rules map (by id); judging packets is done by rule-set
 * programs built from them. pl_policy_commit() replaces the whole rule set:
 *
 *   1. check it (ids, limits, hooks, redirect targets);
 *   2. for every hook that judges a direction, load a fresh pktlens_*_policy
 *      program with its own rule maps (the shared counters, flows and stats
 *      are reused) and fill those maps (loader/ruleset.c);
 *   3. pin the whole new record and the journal (see resolve()), before
 *      any of step 4's state, which the journal covers;
 *   4. create zeroed counters for new rule ids, add redirect targets;
 *   5. swap each hook's POLICY slot (one map update), or empty it when a
 *      direction has no rules left;
 *   6. drop the counters and targets of removed rules, rename the new
 *      record over the old one, remove the journal.
 *
 * A failure before step 5 changes nothing; a failure inside it puts the
 * previous programs back. Each packet meets one whole rule set: the one its
 * hook's slot held when the tail call was made. A kill at any point leaves
 * the journal, by which readers find the record of what runs and the next
 * commit settles it (pl_policy_settle()).
 *
 * Ingress rules are judged at the first ingress hook (XDP if attached, else
 * tc ingress), so each packet is counted once by its rules; egress rules at
 * tc egress.
 *
 * An XDP entry that cannot tail-call (pktlens_xdp_notail, in libxdp 1.3's
 * dispatcher on Linux 6.12) judges by itself: its rule set is one array of
 * the in rules in list order, built in step 2 (xdp_set_build()) and swapped
 * into the entry's policy_set in step 5 by one map update, so the same
 * guarantees hold. Expression rules, which need a compiled stage, are
 * refused there.
 */
#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include "batch.h"
#include "loader.h"
#include "xdp_multi.h"
#include "ruleset.h"
#include "features.h"

void pl_policy_close(struct pl_policy *p)
{
	pl_maps_close(p->fd);
	for (__u32 g = 0; g < PL_RULE_GENS; g++)
		if (p->gen_fd[g] >= 0) {
			close(p->gen_fd[g]);
			p->gen_fd[g] = -1;
		}
}

/*
 * The maps of the counter key generations (PL_RULE_GEN) @p has: a commit
 * makes one when it first hands out a key of it and takes it out again
 * once no rule counts there (gens_release()), so any may be missing. An
 * attachment whose rule_stats holds every key (made before generations)
 * has none.
 */
static int open_gens(struct pl_policy *p)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), id;

	if (p->fd[PL_MID_RULE_GENS] < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(p->fd[PL_MID_RULE_STATS], &info, &len))
		return -errno;
	p->gens = info.max_entries < PL_RULE_CTR_MAX;
	for (__u32 g = 1; p->gens && g < PL_RULE_GENS; g++) {
		if (bpf_map_lookup_elem(p->fd[PL_MID_RULE_GENS], &g, &id)) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		p->gen_fd[g] = bpf_map_get_fd_by_id(id);
		if (p->gen_fd[g] < 0 && errno != ENOENT)	/* ENOENT: released meanwhile */
			return -errno;
	}
	return 0;
}

static int resolve(struct pl_policy *p);

int pl_policy_open(const char *dir, struct pl_policy *p)
{
	int err;

	memset(p, 0, sizeof(*p));
	for (__u32 g = 0; g < PL_RULE_GENS; g++)
		p->gen_fd[g] = -1;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	err = pl_maps_open(dir, p->fd);
	if (err)
		return err;
	err = pl_meta_read(p->fd[PL_MID_META], &p->meta);
	/* before version 8 a rule (pl_rule) was smaller: never read or write those maps (8's are 9's) */
	if (!err && p->meta.version < 8)
		err = -EPROTO;
	err = err ?: open_gens(p);
	err = err ?: resolve(p);	/* a commit's journal: the record of what runs */
	if (err)
		pl_policy_close(p);
	return err;
}

/* The map of counter key @ctr's counters (-1: its generation has none yet) */
static int ctr_fd(const struct pl_policy *p, __u32 ctr)
{
	__u32 g = ctr / PL_RULE_GEN;

	return p->gens && g ? p->gen_fd[g < PL_RULE_GENS ? g : 0] : p->fd[PL_MID_RULE_STATS];
}

/*
 * A map for generation @g of counter keys, in rule_gens: before the keys
 * are handed to a rule set, so its programs find them there.
 */
static int make_gen(struct pl_policy *p, __u32 g)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	int fd;

	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "rule_gen", sizeof(__u32),
			    sizeof(struct pl_rule_stats), PL_RULE_GEN, &o);
	if (fd < 0)
		return -errno;
	if (bpf_map_update_elem(p->fd[PL_MID_RULE_GENS], &g, &fd, BPF_ANY)) {
		int err = -errno;

		close(fd);
		return err;
	}
	p->gen_fd[g] = fd;
	return 0;
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

/* The rules of the record @fd, sorted (pl_policy_sort()). */
static int rules_of(int fd, struct pl_rule **out, size_t *n)
{
	struct pl_rule *v = NULL;
	__u32 *keys = NULL, chunk;
	char batch[PL_BATCH_TOKEN];
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
		err = pl_batch_lookup(fd, first ? NULL : batch, batch,
					  keys + cnt, sizeof(*keys), v + cnt, sizeof(*v), &chunk, false);
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

int pl_policy_rules(const struct pl_policy *p, struct pl_rule **out, size_t *n)
{
	return rules_of(p->fd[PL_MID_POLICY_RULES], out, n);
}

int pl_policy_rule_find(const struct pl_policy *p, __u32 id, struct pl_rule *out)
{
	struct pl_rule r;

	memset(&r, 0, sizeof(r));	/* filled by the kernel: zeroed for valgrind */
	if (bpf_map_lookup_elem(p->fd[PL_MID_POLICY_RULES], &id, &r))
		return -errno;
	if (out)
		*out = r;
	return 0;
}

int pl_policy_has_rule(const char *dir, __u32 id)
{
	struct pl_policy p;
	int err;

	if (!id || id > PL_POLICY_RULES_MAX)
		return -ENOENT;
	err = pl_policy_open(dir, &p);
	if (err)
		return err;
	err = pl_policy_rule_find(&p, id, NULL);
	pl_policy_close(&p);
	return err;
}

int pl_policy_rule_stats(const struct pl_policy *p, const struct pl_rule *r,
			 struct pl_rule_stats *sum)
{
	__u32 ctr = r->ctr, id = 0;
	int ncpu = libbpf_num_possible_cpus(), fd, late = -1;
	struct pl_rule_stats *v;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	fd = ctr_fd(p, ctr);
	/* a generation made since @p was opened: a commit's new rule, read from the record since */
	if (fd < 0 && !bpf_map_lookup_elem(p->fd[PL_MID_RULE_GENS], &(__u32){ ctr / PL_RULE_GEN },
					   &id))
		fd = late = bpf_map_get_fd_by_id(id);
	if (fd < 0 || bpf_map_lookup_elem(fd, &ctr, v)) {
		int err = fd < 0 ? -ENOENT : -errno;

		if (late >= 0)
			close(late);
		free(v);
		return err;
	}
	if (late >= 0)
		close(late);
	/*
	 * the first keys count in rule_ctrs (bpf/maps.h); rule_stats holds what
	 * they counted before (a rule set of an earlier pktlens): both added
	 */
	for (int pass = 0; pass < 2; pass++) {
		if (pass && (ctr >= PL_RULE_FAST_MAX || p->fd[PL_MID_RULE_CTRS] < 0 ||
			     bpf_map_lookup_elem(p->fd[PL_MID_RULE_CTRS], &ctr, v)))
			break;
		for (int c = 0; c < ncpu; c++) {
			sum->pkts += v[c].pkts;
			sum->bytes += v[c].bytes;
			if (v[c].last_ns > sum->last_ns)
				sum->last_ns = v[c].last_ns;
			sum->conf_pkts += v[c].conf_pkts;
			sum->conf_bytes += v[c].conf_bytes;
			sum->exc_pkts += v[c].exc_pkts;
			sum->exc_bytes += v[c].exc_bytes;
			sum->keys_new += v[c].keys_new;
		}
	}
	free(v);
	return 0;
}

/* The fd of the per-key LRU map of counter key @ctr, or -errno (-ENOENT: none). */
static int limit_keys_fd(const struct pl_policy *p, __u32 ctr)
{
	__u32 id = 0;
	int fd;

	if (bpf_map_lookup_elem(p->fd[PL_MID_LIMIT_KEYS], &ctr, &id))
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? -errno : fd;
}

static int count_key(const void *key, const void *vals, int ncpu, void *ctx)
{
	(void)key;
	(void)vals;
	(void)ncpu;
	(*(__u64 *)ctx)++;
	return 0;
}

int pl_policy_limit_keys(const struct pl_policy *p, const struct pl_rule *r, __u64 *keys)
{
	int fd, err;

	*keys = 0;
	if (r->action != PL_ACT_LIMIT || r->lim.per == PL_PER_RULE)
		return -ENOENT;
	fd = limit_keys_fd(p, r->ctr);
	if (fd < 0)
		return fd;
	err = pl_map_walk(fd, sizeof(struct pl_limit_key), sizeof(struct pl_limit_state), false,
			  count_key, keys);
	close(fd);
	return err;
}

bool pl_policy_redirect_gone(const struct pl_policy *p, const struct pl_rule *r)
{
	__u32 v;

	return r->action == PL_ACT_REDIRECT && r->dir == PL_DIR_IN &&
	       p->meta.xdp_mode != PL_XDP_NONE && p->fd[PL_MID_REDIRECT] >= 0 &&
	       bpf_map_lookup_elem(p->fd[PL_MID_REDIRECT], &r->arg, &v) && errno == ENOENT;
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

/* The texts of the expression record @fd, sorted by id. */
static int exprs_of(int fd, struct pl_rule_text **out, size_t *n)
{
	struct pl_rule_text *v = NULL;
	struct pl_rule_expr e;
	size_t cnt = 0;
	__u32 key, next;
	int err = 0;

	for (int ret = pl_map_first_key(fd, &next); !ret; ret = bpf_map_get_next_key(fd, &key, &next)) {
		struct pl_rule_text *nv;

		key = next;
		if (bpf_map_lookup_elem(fd, &key, &e))
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
	pl_policy_texts_sort(v, cnt);
	*out = v;
	*n = cnt;
	return 0;
}

int pl_policy_exprs(const struct pl_policy *p, struct pl_rule_text **out, size_t *n)
{
	return exprs_of(p->fd[PL_MID_POLICY_EXPRS], out, n);
}

void pl_policy_texts_sort(struct pl_rule_text *t, size_t n)
{
	pl_qsort(t, n, sizeof(*t), text_cmp);
}

const char *pl_policy_text(const struct pl_rule_text *t, size_t n, __u32 id)
{
	struct pl_rule_text key = { .id = id }, *hit;

	hit = pl_bsearch(&key, t, n, sizeof(*t), text_cmp);
	return hit ? hit->text : NULL;
}

static __u32 slot_prog_id(int chain_fd, __u32 slot);

/* The hooks that judge rules of @p's attachment, each with its direction. */
static size_t ruleset_hooks(const struct pl_policy *p, struct pl_ruleset rs[2])
{
	size_t n = 0;

	if (p->meta.xdp_mode != PL_XDP_NONE)
		rs[n++] = (struct pl_ruleset){ .hook = "xdp in", .chain_fd = p->fd[PL_MID_XDP_CHAIN],
					       .dir = PL_DIR_IN, .slot = PL_SLOT_XDP_IN,
					       .xdp_flags = pl_meta_xdp_load_flags(&p->meta) };
	else if (p->meta.tc_hooks & PL_TC_IN)
		rs[n++] = (struct pl_ruleset){ .hook = "tc in", .chain_fd = p->fd[PL_MID_TC_CHAIN],
					       .dir = PL_DIR_IN, .slot = PL_SLOT_TC_IN };
	if (p->meta.tc_hooks & PL_TC_OUT)
		rs[n++] = (struct pl_ruleset){ .hook = "tc out", .chain_fd = p->fd[PL_MID_TC_CHAIN],
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
	struct pl_ruleset rs[2];
	size_t n = ruleset_hooks(p, rs);

	for (size_t i = 0; i < n; i++)
		if ((int)rs[i].slot == slot)
			return true;
	return false;
}

bool pl_policy_has_dir(const struct pl_policy *p, int dir)
{
	struct pl_ruleset rs[2];
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

/*
 * The journal of a commit (pl_policy_commit()): before its swap, a commit
 * pins the whole new record beside the running one (policy_rules_next,
 * policy_exprs_next), then policy_next: what each hook's POLICY slot and
 * the XDP entry's policy_set held before (old) and will hold after (new)
 * the swap. After the swap it renames the new record over the old and
 * removes policy_next. Until then every reader (pl_policy_open()) compares
 * the hooks with policy_next and reads, for each direction, the record
 * whose rule set runs there: a kill -9 at any point leaves policy list,
 * stats and the exporters showing what runs, and the next commit settles
 * the journal to that (pl_policy_settle()).
 */
#define PL_POLICY_NEXT "policy_next"
#define PL_POLICY_RULES_NEXT PL_MAP_POLICY_RULES "_next"
#define PL_POLICY_EXPRS_NEXT PL_MAP_POLICY_EXPRS "_next"

/* What judges: the XDP chain's, tc's in and out POLICY slots, the XDP entry's policy_set. */
enum { H_XDP, H_TC_IN, H_TC_OUT, H_SET, H_MAX };
static const int h_dir[H_MAX] = { PL_DIR_IN, PL_DIR_IN, PL_DIR_OUT, PL_DIR_IN };

struct journal {
	__u32 old[H_MAX], new[H_MAX];	/* program ids (policy_set: the array's map id), 0: empty */
};

/* What @p's hooks hold now */
static void live_ids(const struct pl_policy *p, __u32 ids[H_MAX])
{
	__u32 zero = 0;
	int fd;

	memset(ids, 0, H_MAX * sizeof(*ids));
	if (p->fd[PL_MID_XDP_CHAIN] >= 0)
		ids[H_XDP] = slot_prog_id(p->fd[PL_MID_XDP_CHAIN], PL_CHAIN_POLICY(PL_DIR_IN));
	if (p->fd[PL_MID_TC_CHAIN] >= 0) {
		ids[H_TC_IN] = slot_prog_id(p->fd[PL_MID_TC_CHAIN], PL_CHAIN_POLICY(PL_DIR_IN));
		ids[H_TC_OUT] = slot_prog_id(p->fd[PL_MID_TC_CHAIN], PL_CHAIN_POLICY(PL_DIR_OUT));
	}
	if (p->meta.xdp_mode != PL_XDP_NONE &&
	    (fd = pl_xdp_prog_map_fd(p->meta.xdp_prog_id, "policy_set")) >= 0) {
		if (bpf_map_lookup_elem(fd, &zero, &ids[H_SET]))
			ids[H_SET] = 0;
		close(fd);
	}
}

/* The kernel's id of object @fd (0 for fd < 0) */
static __u32 obj_id(int fd, bool map)
{
	struct bpf_map_info mi = {};
	struct bpf_prog_info pi = {};
	__u32 len = map ? sizeof(mi) : sizeof(pi);

	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, map ? (void *)&mi : (void *)&pi, &len))
		return 0;
	return map ? mi.id : pi.id;
}

static void pin_path(char *path, size_t len, const struct pl_policy *p, const char *name)
{
	snprintf(path, len, "%s/%s", p->dir, name);
}

static void unpin(const struct pl_policy *p, const char *name)
{
	char path[sizeof(p->dir) + 32];

	pin_path(path, sizeof(path), p, name);
	unlink(path);
}

/* A fresh, unpinned record like @like (of @max rules at least) holding @rules */
static int record_new(int like, __u32 max, const struct pl_rule *rules, size_t n)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), *k;
	int fd, err;

	if (bpf_obj_get_info_by_fd(like, &info, &len))
		return -errno;
	o.map_flags = info.map_flags;
	fd = bpf_map_create(info.type, info.name, info.key_size, info.value_size,
			    max > info.max_entries ? max : info.max_entries, &o);
	if (fd < 0)
		return -errno;
	k = calloc(n ? n : 1, sizeof(*k));
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		k[i] = rules[i].id;
	err = pl_map_update_batch(fd, k, sizeof(*k), rules, sizeof(*rules), n);
	free(k);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* A fresh, unpinned expression record like @like holding the texts of @t that @rules' ids have */
static int exprs_new(int like, const struct pl_rule *rules, size_t n, const struct pl_rule_text *t,
		     size_t nt)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd;

	if (bpf_obj_get_info_by_fd(like, &info, &len))
		return -errno;
	o.map_flags = info.map_flags;
	fd = bpf_map_create(info.type, info.name, info.key_size, info.value_size, info.max_entries,
			    &o);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		const char *text = pl_policy_text(t, nt, rules[i].id);
		struct pl_rule_expr e = { { 0 } };

		if (!(rules[i].match & PL_M_EXPR) || !text)
			continue;
		snprintf(e.text, sizeof(e.text), "%s", text);
		if (bpf_map_update_elem(fd, &rules[i].id, &e, BPF_ANY)) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	return fd;
}

/*
 * Which directions run the journal's new rule set (@dn), from what the
 * hooks hold; how many directions it changes and how many of those run it.
 */
static void journal_dirs(const struct pl_policy *p, const struct journal *j, bool dn[2],
			 int *changed, int *done)
{
	__u32 live[H_MAX];
	int chg[2] = { 0, 0 }, sw[2] = { 0, 0 };

	live_ids(p, live);
	for (int h = 0; h < H_MAX; h++) {
		if (j->old[h] == j->new[h])
			continue;
		chg[h_dir[h]]++;
		sw[h_dir[h]] += live[h] == j->new[h];
	}
	*changed = *done = 0;
	for (int d = 0; d < 2; d++) {
		dn[d] = chg[d] && sw[d] == chg[d];
		*changed += chg[d] > 0;
		*done += dn[d];
	}
}

/*
 * Point @p's record (policy_rules, policy_exprs) at what runs, where a
 * commit's journal is there: the new record when its rule set runs on
 * every hook it changes, the old one when on none, else (a kill between
 * two hooks' swaps) a record made here of each direction's running rules.
 */
static int resolve(struct pl_policy *p)
{
	int mfd = pl_pin_open(p->dir, PL_POLICY_NEXT), nfd[2] = { -1, -1 }, err = 0;
	struct pl_rule *r[2] = { NULL, NULL }, *v = NULL;
	struct pl_rule_text *t[2] = { NULL, NULL }, *tv = NULL;
	size_t nr[2] = { 0, 0 }, nt[2] = { 0, 0 }, m = 0, mt = 0;
	struct journal j = { { 0 }, { 0 } };	/* filled by the kernel: zeroed for valgrind */
	int changed, done;
	bool dn[2];
	__u32 zero = 0;

	if (mfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_map_lookup_elem(mfd, &zero, &j)) {
		err = -errno;
		close(mfd);
		return err;
	}
	close(mfd);
	journal_dirs(p, &j, dn, &changed, &done);
	if (!done)
		return 0;	/* the old rule set runs: the record is */
	nfd[0] = pl_pin_open(p->dir, PL_POLICY_RULES_NEXT);
	nfd[1] = pl_pin_open(p->dir, PL_POLICY_EXPRS_NEXT);
	if (done == changed) {
		/* the new one runs; a new record already renamed in place is the record */
		for (int i = 0; i < 2; i++) {
			int mid = i ? PL_MID_POLICY_EXPRS : PL_MID_POLICY_RULES;

			if (nfd[i] < 0)
				continue;
			close(p->fd[mid]);
			p->fd[mid] = nfd[i];
		}
		return 0;
	}
	/* old rules of one direction, new ones of the other: a record of both */
	if (nfd[0] < 0 || nfd[1] < 0) {
		err = -ENOENT;
		goto out;
	}
	err = rules_of(p->fd[PL_MID_POLICY_RULES], &r[0], &nr[0]);
	err = err ?: rules_of(nfd[0], &r[1], &nr[1]);
	err = err ?: exprs_of(p->fd[PL_MID_POLICY_EXPRS], &t[0], &nt[0]);
	err = err ?: exprs_of(nfd[1], &t[1], &nt[1]);
	v = err ? NULL : calloc(nr[0] + nr[1] + 1, sizeof(*v));
	tv = err ? NULL : calloc(nt[0] + nt[1] + 1, sizeof(*tv));
	if (!err && (!v || !tv))
		err = -ENOMEM;
	for (int s = 0; s < 2 && !err; s++)
		for (size_t i = 0; i < nr[s]; i++) {
			const char *text;

			if (dn[r[s][i].dir] != (s == 1))
				continue;
			v[m++] = r[s][i];
			text = pl_policy_text(t[s], nt[s], r[s][i].id);
			if (text)
				tv[mt++] = (struct pl_rule_text){ .id = r[s][i].id, .text = (char *)text };
		}
	if (!err) {
		int rfd, efd;

		pl_policy_texts_sort(tv, mt);
		rfd = record_new(nfd[0], (__u32)m, v, m);
		efd = rfd < 0 ? rfd : exprs_new(nfd[1], v, m, tv, mt);
		if (rfd < 0 || efd < 0) {
			err = rfd < 0 ? rfd : efd;
			if (rfd >= 0)
				close(rfd);
		} else {
			close(p->fd[PL_MID_POLICY_RULES]);
			close(p->fd[PL_MID_POLICY_EXPRS]);
			p->fd[PL_MID_POLICY_RULES] = rfd;
			p->fd[PL_MID_POLICY_EXPRS] = efd;
		}
	}
out:
	for (int i = 0; i < 2; i++) {
		if (nfd[i] >= 0)
			close(nfd[i]);
		free(r[i]);
		pl_policy_texts_free(t[i], nt[i]);
	}
	free(v);
	free(tv);	/* its texts are t's */
	return err;
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* The end of the run of the @m sorted keys @k from @i on that are of k[i]'s generation */
static size_t gen_end(const __u32 *k, size_t i, size_t m)
{
	size_t j = i + 1;

	while (j < m && k[j] / PL_RULE_GEN == k[i] / PL_RULE_GEN)
		j++;
	return j;
}

/*
 * Delete counter keys @k (@m of them, sorted here) from the maps they are
 * in; one that is not there is no error.
 */
static void ctr_delete(const struct pl_policy *p, __u32 *k, size_t m)
{
	pl_qsort(k, m, sizeof(*k), u32_cmp);
	for (size_t i = 0, j; i < m; i = j) {
		j = gen_end(k, i, m);
		if (ctr_fd(p, k[i]) >= 0)
			pl_batch_delete(ctr_fd(p, k[i]), k + i, sizeof(*k), (__u32)(j - i));
	}
}

/* @id among @ids (sorted) */
static bool has_id(const __u32 *ids, size_t n, __u32 id)
{
	return pl_bsearch(&id, ids, n, sizeof(*ids), u32_cmp) != NULL;
}

/* A limit as the grammar makes them (cli/policy_rule.c); other rules have none. */
static bool limit_ok(const struct pl_rule *r)
{
	const struct pl_limit *l = &r->lim, zero = { 0 };

	if (r->action != PL_ACT_LIMIT)
		return !memcmp(l, &zero, sizeof(zero));
	return l->rate && l->rate <= (l->unit == PL_LIM_PPS ? PL_LIM_PPS_MAX : PL_LIM_BITS_MAX) &&
	       l->unit < PL_LIM_UNIT_MAX && l->burst && l->burst <= PL_LIM_BURST_MAX && l->tau &&
	       l->per < PL_PER_MAX &&
	       (l->per == PL_PER_RULE ? !l->keys : l->keys && l->keys <= PL_LIM_KEYS_MAX) &&
	       (l->over == PL_ACT_DROP || l->over == PL_ACT_PASS ||
		(l->over == PL_ACT_SAMPLE && l->over_arg)) &&
	       (l->over == PL_ACT_SAMPLE || !l->over_arg);
}

int pl_policy_bound(const struct pl_rule *rules, size_t n, int dir, char *why, size_t whylen)
{
	size_t list_n = 0;
	__u32 over = 0;
	char needs[128];

	if (pl_feature(PL_FEAT_BPF_LOOP))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (rules[i].dir == dir && pl_rule_lpm_field(&rules[i]) < 0 &&
		    ++list_n == PL_POLICY_LIST_BOUNDED + 1)
			over = rules[i].id;
	if (list_n <= PL_POLICY_LIST_BOUNDED)
		return 0;
	return pl_why(why, whylen, -ENOSYS, "rule %u: %zu %s rules with ports, protocol, VLAN, "
		      "both addresses, --sample or --limit: more than %u %s", over, list_n,
		      dir ? "egress" : "ingress", PL_POLICY_LIST_BOUNDED,
		      pl_feature_needs(PL_FEAT_BPF_LOOP, needs, sizeof(needs)));
}

static int check(const struct pl_policy *p, const struct pl_rule *rules, size_t n, char *why,
		 size_t whylen)
{
	size_t list_n[2] = { 0, 0 }, lpm_n[2][2] = { { 0, 0 }, { 0, 0 } }, expr_n[2] = { 0, 0 };
	/* XDP's redirect targets: the devmap holds twice as many, old and new set in a swap */
	__u32 targets[PL_REDIRECT_MAX];
	size_t ntargets = 0;
	/* the first rule past each limit */
	__u32 list_over[2] = { 0, 0 };
	__u32 lpm_over[2][2] = { { 0, 0 }, { 0, 0 } };
	/* the hooks, once: finding them asks the kernel (a rule set of 1,000 rules took 70 ms) */
	bool has_dir[2] = { pl_policy_has_dir(p, PL_DIR_IN), pl_policy_has_dir(p, PL_DIR_OUT) };
	int err;

	if (n > PL_POLICY_RULES_MAX)
		return pl_why(why, whylen, -E2BIG, "%zu rules: at most %u per interface", n,
			      PL_POLICY_RULES_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *r = &rules[i];
		int f = pl_rule_lpm_field(r);

		if (r->id > PL_POLICY_RULES_MAX)
			return pl_why(why, whylen, -ERANGE, "rule id %u: ids are 1-%u", r->id,
				      PL_POLICY_RULES_MAX);
		if (!r->id || r->dir > PL_DIR_OUT || !r->action || r->action >= PL_ACT_MAX ||
		    ((r->match & (PL_M_SRC | PL_M_DST)) && r->fam != PL_FAM_IPV4 &&
		     r->fam != PL_FAM_IPV6))
			return pl_why(why, whylen, -EINVAL, "rule %u: malformed", r->id);
		if (!limit_ok(r))
			return pl_why(why, whylen, -EINVAL, "rule %u: malformed limit", r->id);
		if (i && r->id == rules[i - 1].id)
			return pl_why(why, whylen, -EEXIST, "rule id %u given twice", r->id);
		if (!has_dir[r->dir])
			return pl_why(why, whylen, -ENOTSUP,
				      "rule %u: %s has no %s hook (pktlens attach %s --tc %s)",
				      r->id, p->meta.ifname,
				      r->dir == PL_DIR_IN ? "ingress" : "egress", p->meta.ifname,
				      r->dir == PL_DIR_IN ? "in" : "out");
		if (r->action == PL_ACT_REDIRECT && p->meta.xdp_mode != PL_XDP_NONE &&
		    r->dir == PL_DIR_IN && p->fd[PL_MID_REDIRECT] < 0)
			return pl_why(why, whylen, -ENOTSUP,
				      "rule %u: this attachment has no redirect map (re-attach)",
				      r->id);
		/* limits name the first rule past them ("rule N: "), where a file can point */
		if (r->action == PL_ACT_REDIRECT && p->meta.xdp_mode != PL_XDP_NONE &&
		    r->dir == PL_DIR_IN) {
			size_t t = 0;

			while (t < ntargets && targets[t] != r->arg)
				t++;
			if (t == ntargets && ntargets == PL_REDIRECT_MAX)
				return pl_why(why, whylen, -E2BIG,
					      "rule %u: more than %u interfaces to redirect to at xdp in",
					      r->id, PL_REDIRECT_MAX);
			if (t == ntargets)
				targets[ntargets++] = r->arg;
		}
		if ((r->match & PL_M_EXPR) && ++expr_n[r->dir] > PL_POLICY_EXPRS_MAX)
			return pl_why(why, whylen, -E2BIG,
				      "rule %u: more than %u %s rules with an expression", r->id,
				      PL_POLICY_EXPRS_MAX, r->dir ? "egress" : "ingress");
		if (f < 0) {
			if (++list_n[r->dir] == PL_POLICY_LIST_MAX + 1)
				list_over[r->dir] = r->id;
		} else if (++lpm_n[r->dir][f] == PL_POLICY_CIDRS_MAX + 1) {
			lpm_over[r->dir][f] = r->id;
		}
	}
	for (int d = 0; d < 2; d++) {
		if (list_n[d] > PL_POLICY_LIST_MAX)
			return pl_why(why, whylen, -E2BIG,
				      "rule %u: %zu %s rules with ports, protocol, VLAN, both "
				      "addresses, --sample or --limit: at most %u", list_over[d], list_n[d],
				      d ? "egress" : "ingress", PL_POLICY_LIST_MAX);
		if ((err = pl_policy_bound(rules, n, d, why, whylen)))
			return err;
		for (int f = 0; f < 2; f++)
			if (lpm_n[d][f] > PL_POLICY_CIDRS_MAX)
				return pl_why(why, whylen, -E2BIG,
					      "rule %u: %zu %s rules on a %s address alone: at most %u",
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

/* The rule of @old (sorted by ctr) whose counter key is @ctr, or NULL. */
static const struct pl_rule *by_ctr(const struct pl_rule *old, size_t nold, __u32 ctr)
{
	size_t lo = 0, hi = nold;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (old[mid].ctr == ctr)
			return &old[mid];
		if (old[mid].ctr < ctr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Whether @ctr is the counter key of one of @old (sorted by ctr). */
static bool has_ctr(const struct pl_rule *old, size_t nold, __u32 ctr)
{
	return by_ctr(old, nold, ctr) != NULL;
}

static int ctr_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule *)a)->ctr, y = ((const struct pl_rule *)b)->ctr;

	return x < y ? -1 : x > y;
}

/*
 * Counter keys of @rules: a rule that comes with the key of a rule of @old
 * keeps it (renumbered, pl_rule_list_finish()), the rule with the same id
 * in @old keeps its own (unless the caller said PL_RULE_CTR_NEW), except
 * that a rule that becomes a --limit rule counts afresh; every other rule
 * gets one that no rule of @old uses, so it never counts into a replaced rule's counters.
 * @old sorted by id; @byctr is @old sorted by counter key.
 */
static void assign_ctrs(struct pl_rule *rules, size_t n, const struct pl_rule *old, size_t nold,
			const struct pl_rule *byctr)
{
	__u32 next = 1;

	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *o = old_rule(old, nold, rules[i].id);
		const struct pl_rule *c = NULL;

		if (rules[i].ctr && rules[i].ctr != PL_RULE_CTR_NEW)
			c = by_ctr(byctr, nold, rules[i].ctr);	/* carried to a new id */
		else if (rules[i].ctr != PL_RULE_CTR_NEW && o && o->ctr)
			c = o;
		/* one that becomes a --limit rule: its conformed + exceeded are its matches */
		if (c && (c->action == PL_ACT_LIMIT || rules[i].action != PL_ACT_LIMIT)) {
			rules[i].ctr = c->ctr;
			continue;
		}
		while (has_ctr(byctr, nold, next))
			next++;
		rules[i].ctr = next++;	/* <= nold + n <= PL_RULE_CTR_MAX */
	}
}

/*
 * Zeroed per-CPU counters for the rules of @rules whose keys @old does not
 * use, each in the map of its key's generation (made here when new).
 */
static int new_counters(struct pl_policy *p, const struct pl_rule *rules, size_t n,
			const struct pl_rule *byctr, size_t nold, bool undo, char *why,
			size_t whylen)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vsz, m = 0;
	__u32 *k;
	void *v;
	int err = 0;

	if (ncpu <= 0)
		return pl_why(why, whylen, -EINVAL, "cannot count CPUs");
	vsz = sizeof(struct pl_rule_stats) * (size_t)ncpu;	/* 8-byte multiple already */
	k = calloc(n ? n : 1, sizeof(*k));
	v = calloc(n ? n : 1, vsz);
	if (!k || !v) {
		free(k);
		free(v);
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	}
	for (size_t i = 0; i < n; i++)
		if (!has_ctr(byctr, nold, rules[i].ctr))
			k[m++] = rules[i].ctr;
	/* undo: take them out again (a later step failed): nothing is left behind */
	if (undo) {
		ctr_delete(p, k, m);
		goto out;
	}
	pl_qsort(k, m, sizeof(*k), u32_cmp);
	for (size_t i = 0, j; i < m && !err; i = j) {
		__u32 g = k[i] / PL_RULE_GEN;

		j = gen_end(k, i, m);
		if (p->gens && g && p->gen_fd[g] < 0 && (err = make_gen(p, g)))
			break;
		err = pl_map_update_batch(ctr_fd(p, k[i]), k + i, sizeof(*k), v, vsz, j - i);
	}
	/* a key below PL_RULE_FAST_MAX counts in rule_ctrs: from zero, as a new hash entry */
	for (size_t i = 0; i < m && !err && p->fd[PL_MID_RULE_CTRS] >= 0; i++)
		if (k[i] < PL_RULE_FAST_MAX &&
		    bpf_map_update_elem(p->fd[PL_MID_RULE_CTRS], &k[i], v, BPF_ANY))
			err = -errno;
	if (err)
		ctr_delete(p, k, m);
out:
	free(k);
	free(v);
	return err ? pl_why(why, whylen, err, "cannot create rule counters: %s",
			    strerror(-err)) : 0;
}

/* A per-key LRU map for --per rule @r, empty: its --per-size keys (fd, or -errno) */
static int keys_map(const struct pl_rule *r)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "limit_keys_in", sizeof(struct pl_limit_key),
				sizeof(struct pl_limit_state), r->lim.keys, NULL);

	return fd < 0 ? -errno : fd;
}

/*
 * The keys of kind @per (enum pl_lim_per) and their buckets of per-key LRU
 * map @from into @to, another map: a --per-size change keeps what the rule
 * tracks, a --per change only what it still keys by (nothing: keys of
 * another kind would never match again, yet be counted tracked). Into a
 * smaller map the LRU evicts what does not fit, and the rule counts them
 * evicted (keys_new less the keys there). A key the program adds to @from
 * (of @size keys) meanwhile may not be copied: evicted too, from the map the
 * rule uses from now on. @full: each key with a full bucket instead of its own.
 */
static void copy_keys(int from, __u32 size, __u8 per, int to, bool full)
{
	struct pl_limit_key k, next;
	struct pl_limit_state v;
	void *prev = NULL;

	/* at most twice its size: a walk restarts where the program evicted its place */
	for (__u64 i = 0; i < 2ULL * size && !bpf_map_get_next_key(from, prev, &next); i++) {
		k = next;
		prev = &k;
		if (k.per != per || bpf_map_lookup_elem(from, &k, &v))
			continue;
		if (full)
			v.tat = 0;
		bpf_map_update_elem(to, &k, &v, BPF_NOEXIST);
	}
}

/*
 * The keys counter key @ctr's --per rule @r inserted (keys_new) made the
 * keys of its map @fd, where its --per changed: the keys dropped with the
 * old kind were never evicted (pl_policy_limit_evicted() counts what the
 * LRU evicted). Subtracted on one CPU (the sum over CPUs wraps back): for
 * a key counting in rule_ctrs, from its rule_stats entry, which no program
 * writes; for another, from its entry in the map the programs count in, so
 * a hit on that CPU between the read and the write may go uncounted.
 */
static void keys_reset(const struct pl_policy *p, const struct pl_rule *r, int fd)
{
	int ncpu = libbpf_num_possible_cpus(), sfd = ctr_fd(p, r->ctr);
	struct pl_rule_stats sum, *v;
	__u64 keys = 0;

	if (ncpu <= 0 || sfd < 0 || pl_policy_rule_stats(p, r, &sum) ||
	    pl_map_walk(fd, sizeof(struct pl_limit_key), sizeof(struct pl_limit_state), false,
			count_key, &keys) || sum.keys_new == keys)
		return;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (v && !bpf_map_lookup_elem(sfd, &r->ctr, v)) {
		v[0].keys_new -= sum.keys_new - keys;
		bpf_map_update_elem(sfd, &r->ctr, v, BPF_EXIST);
	}
	free(v);
}

/*
 * The generations of counter keys (rule_gens) none of @rules counts in,
 * taken out (a map goes with its last reference): after the swap, once no
 * packet runs a rule set before it (pl_wait_for_packets()), so nothing
 * counts there any more. An attachment with thousands of rules for a while
 * does not keep their maps after them.
 */
static void gens_release(struct pl_policy *p, const struct pl_rule *rules, size_t n)
{
	bool used[PL_RULE_GENS] = { false };

	if (!p->gens)
		return;
	for (size_t i = 0; i < n; i++)
		if (rules[i].ctr / PL_RULE_GEN < PL_RULE_GENS)
			used[rules[i].ctr / PL_RULE_GEN] = true;
	for (__u32 g = 1; g < PL_RULE_GENS; g++) {
		if (used[g] || (bpf_map_delete_elem(p->fd[PL_MID_RULE_GENS], &g) && errno != ENOENT))
			continue;
		if (p->gen_fd[g] >= 0)
			close(p->gen_fd[g]);
		p->gen_fd[g] = -1;
	}
}

/* refill_keys()' step in place: key @key of the LRU map *@ctx gets a full bucket */
static int refill_key(const void *key, const void *vals, int ncpu, void *ctx)
{
	struct pl_limit_state v = { 0 };

	(void)vals;
	(void)ncpu;
	bpf_map_update_elem(*(const int *)ctx, key, &v, BPF_EXIST);
	return 0;
}

/*
 * Every key of --per rule @r (counter key @ctr, its LRU map @fd) with a full
 * bucket: copied so into a new map that takes the old one's place. Updated
 * in place, an LRU map needs a free node for each update and, nearly full,
 * evicts other keys for them (a fifth of 1,000 keys in 1,024); the walk in
 * place (no map to be had) is a batch walk, which goes on from the next
 * hash bucket: an update puts its key first in its bucket, so the key
 * get_next_key() names after it is one already done.
 */
static void refill_keys(const struct pl_policy *p, const struct pl_rule *r, __u32 ctr, int fd)
{
	int nfd = keys_map(r);
	bool swapped = false;

	if (nfd >= 0) {
		copy_keys(fd, r->lim.keys, (__u8)r->lim.per, nfd, true);
		swapped = !bpf_map_update_elem(p->fd[PL_MID_LIMIT_KEYS], &ctr, &nfd, BPF_ANY);
		close(nfd);
	}
	if (!swapped)
		pl_map_walk(fd, sizeof(struct pl_limit_key), sizeof(struct pl_limit_state), false,
			    refill_key, &fd);
}

/*
 * Whether limit @o, kept by a rule whose limit is now @r (the same --per),
 * judges otherwise: its state is a time, the rate's and burst's, so a
 * bucket emptied at a low rate would hold the new one back until it passed.
 */
static bool limit_changed(const struct pl_limit *o, const struct pl_limit *r)
{
	return o->rate != r->rate || o->tau != r->tau ||
	       (o->unit == PL_LIM_PPS) != (r->unit == PL_LIM_PPS);
}

/*
 * The state of the --limit rules of @rules, before they go live: a bucket
 * for each --per rule rule that has none, an LRU map of its --per-size for
 * each --per key rule that has none of that size and kind (a kept counter
 * key's map of another size or --per is replaced by one its keys are copied
 * into, copy_keys()).
 * State already there carries over with the counter key. @undo: remove what
 * this made for counter keys @byctr (the running rules') does not have.
 */
static int limit_state(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
		       const struct pl_rule *byctr, size_t nold, bool undo, char *why, size_t whylen)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		const struct pl_rule *r = &rules[i];
		__u32 ctr = r->ctr;

		if (r->action != PL_ACT_LIMIT)
			continue;
		if (undo) {
			if (!has_ctr(byctr, nold, ctr)) {
				bpf_map_delete_elem(p->fd[PL_MID_LIMIT_BUCKET], &ctr);
				bpf_map_delete_elem(p->fd[PL_MID_LIMIT_KEYS], &ctr);
			}
			continue;
		}
		if (r->lim.per == PL_PER_RULE) {
			struct pl_limit_bucket b = { 0 };

			if (bpf_map_update_elem(p->fd[PL_MID_LIMIT_BUCKET], &ctr, &b, BPF_NOEXIST) &&
			    errno != EEXIST)
				err = -errno;
		} else {
			const struct pl_rule *o = by_ctr(byctr, nold, ctr);
			int fd = limit_keys_fd(p, ctr), nfd;
			struct bpf_map_info info = { 0 };
			__u32 len = sizeof(info);

			if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) &&
			    info.max_entries == r->lim.keys &&
			    (!o || (o->action == PL_ACT_LIMIT && o->lim.per == r->lim.per))) {
				close(fd);
				continue;
			}
			nfd = keys_map(r);
			if (nfd >= 0 && fd >= 0 && info.value_size == sizeof(struct pl_limit_state))
				copy_keys(fd, info.max_entries, (__u8)r->lim.per, nfd, false);
			if (nfd < 0)
				err = nfd;
			else if (bpf_map_update_elem(p->fd[PL_MID_LIMIT_KEYS], &ctr, &nfd, BPF_ANY))
				err = -errno;
			/* another --per (or none before): only the keys it starts with were inserted */
			else if (o && (o->action != PL_ACT_LIMIT || o->lim.per != r->lim.per))
				keys_reset(p, r, nfd);
			if (fd >= 0)
				close(fd);
			if (nfd >= 0)
				close(nfd);
		}
		if (err)
			pl_why(why, whylen, err, "rule %u: cannot make its limit's state: %s", r->id,
			       strerror(-err));
	}
	if (err)
		limit_state(p, rules, n, byctr, nold, true, why, 0);
	return err;
}

/* @k[0..n): the __u32 at @off of each of @rules (id or ctr), sorted */
static void sorted_keys(__u32 *k, const struct pl_rule *rules, size_t n, size_t off)
{
	for (size_t i = 0; i < n; i++)
		memcpy(&k[i], (const char *)&rules[i] + off, sizeof(*k));
	pl_qsort(k, n, sizeof(*k), u32_cmp);
}

/*
 * The keys of @old (the __u32 at @off of each rule) that none of the @n
 * sorted keys @k (sorted_keys()) is, put at k + n; with @limits, only those
 * of --limit rules (the limit maps have no others). @k: room for n + nold.
 * Returns how many.
 */
static size_t unused_keys(__u32 *k, size_t n, const struct pl_rule *old, size_t nold,
			  size_t off, bool limits)
{
	size_t m = 0;

	for (size_t i = 0; i < nold; i++) {
		__u32 key;

		memcpy(&key, (const char *)&old[i] + off, sizeof(key));
		if ((!limits || old[i].action == PL_ACT_LIMIT) && !has_id(k, n, key))
			k[n + m++] = key;
	}
	return m;
}

/* Delete unused_keys() from @fd. */
static void delete_unused(int fd, __u32 *k, size_t n, const struct pl_rule *old, size_t nold,
			  size_t off, bool limits)
{
	pl_batch_delete(fd, k + n, sizeof(*k), (__u32)unused_keys(k, n, old, nold, off, limits));
}

/*
 * The counters, limit state and redirect targets of @old's rules that none
 * of @rules uses any more: once no rule set that runs has them.
 */
static int forget(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
		  const struct pl_rule *old, size_t nold)
{
	__u32 *k = calloc(n + nold + 1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	sorted_keys(k, rules, n, offsetof(struct pl_rule, ctr));
	ctr_delete(p, k + n, unused_keys(k, n, old, nold, offsetof(struct pl_rule, ctr), false));
	delete_unused(p->fd[PL_MID_LIMIT_BUCKET], k, n, old, nold, offsetof(struct pl_rule, ctr),
		      true);
	delete_unused(p->fd[PL_MID_LIMIT_KEYS], k, n, old, nold, offsetof(struct pl_rule, ctr),
		      true);
	free(k);
	if (p->fd[PL_MID_REDIRECT] < 0)
		return 0;
	for (size_t i = 0; i < nold; i++) {
		bool used = false;

		if (old[i].action != PL_ACT_REDIRECT)
			continue;
		for (size_t j = 0; j < n && !used; j++)
			used = rules[j].action == PL_ACT_REDIRECT && rules[j].arg == old[i].arg &&
			       rules[j].dir == PL_DIR_IN;
		if (!used)
			bpf_map_delete_elem(p->fd[PL_MID_REDIRECT], &old[i].arg);
	}
	return 0;
}

/* The limit state of a kept counter key whose rule (@old sorted by id) no longer limits that way */
static void limits_kept(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
			const struct pl_rule *old, size_t nold)
{
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *o = old_rule(old, nold, rules[i].id), *r = &rules[i];
		__u32 ctr = r->ctr;

		if (!o || o->ctr != ctr || o->action != PL_ACT_LIMIT)
			continue;
		if (r->action != PL_ACT_LIMIT || r->lim.per != PL_PER_RULE)
			bpf_map_delete_elem(p->fd[PL_MID_LIMIT_BUCKET], &ctr);
		if (r->action != PL_ACT_LIMIT || r->lim.per == PL_PER_RULE)
			bpf_map_delete_elem(p->fd[PL_MID_LIMIT_KEYS], &ctr);
		/* a rate or burst that changed: a full bucket (its keys' too), as tc's */
		if (r->action != PL_ACT_LIMIT || o->lim.per != r->lim.per ||
		    !limit_changed(&o->lim, &r->lim))
			continue;
		if (r->lim.per == PL_PER_RULE) {
			struct pl_limit_bucket b = { 0 };

			bpf_map_update_elem(p->fd[PL_MID_LIMIT_BUCKET], &ctr, &b,
					    BPF_EXIST | BPF_F_LOCK);
		} else {
			int fd = limit_keys_fd(p, ctr);

			if (fd >= 0) {
				refill_keys(p, r, ctr, fd);
				close(fd);
			}
		}
	}
}

/* The rules of the record pinned at @name in @p's directory (none: ENOENT) */
static int pinned_rules(const struct pl_policy *p, const char *name, struct pl_rule **out,
			size_t *n)
{
	int fd = pl_pin_open(p->dir, name), err;

	*out = NULL;
	*n = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = rules_of(fd, out, n);
	close(fd);
	if (!err)
		pl_qsort(*out, *n, sizeof(**out), id_cmp);
	return err;
}

/*
 * A journal left by a killed commit: remove the counters, limit state and
 * redirect targets of the rules of both records that do not run, pin the
 * record of what runs (@p's, resolve()) as the record, remove the journal.
 * Without a journal, the new records such a commit pinned before it.
 */
int pl_policy_settle(struct pl_policy *p, char *why, size_t whylen)
{
	struct pl_rule *now = NULL, *o[2] = { NULL, NULL };
	size_t nnow = 0, no[2] = { 0, 0 };
	int fd = pl_pin_open(p->dir, PL_POLICY_NEXT), err;

	if (fd < 0 && errno != ENOENT)
		return pl_why(why, whylen, -errno, "reading the journal of the rules: %s",
			      strerror(errno));
	if (fd < 0) {
		unpin(p, PL_POLICY_RULES_NEXT);
		unpin(p, PL_POLICY_EXPRS_NEXT);
		return 0;
	}
	close(fd);
	err = rules_of(p->fd[PL_MID_POLICY_RULES], &now, &nnow);
	err = err ?: pinned_rules(p, PL_MAP_POLICY_RULES, &o[0], &no[0]);
	err = err ?: pinned_rules(p, PL_POLICY_RULES_NEXT, &o[1], &no[1]);
	/* while the journal is there (a kill here: the next commit does it again) */
	for (int i = 0; i < 2 && !err; i++)
		err = forget(p, now, nnow, o[i], no[i]);
	/* exprs first: a reader meanwhile reads from the journal what it reads after */
	err = err ?: pl_pin_replace(p->fd[PL_MID_POLICY_EXPRS], p->dir, PL_MAP_POLICY_EXPRS);
	err = err ?: pl_pin_replace(p->fd[PL_MID_POLICY_RULES], p->dir, PL_MAP_POLICY_RULES);
	if (!err) {
		unpin(p, PL_POLICY_NEXT);
		unpin(p, PL_POLICY_RULES_NEXT);
		unpin(p, PL_POLICY_EXPRS_NEXT);
	}
	free(now);
	free(o[0]);
	free(o[1]);
	return err ? pl_why(why, whylen, err, "settling the journal of a killed policy change: %s",
			    strerror(-err)) : 0;
}

/*
 * The in rules for an XDP entry without tail calls (pktlens_xdp_notail,
 * xdp/pktlens_xdp.bpf.c): all of them, in list order, in a fresh array for
 * its policy_set; *@out -1 when there are none. Expression rules need a
 * tail call: refused.
 */
static int xdp_set_build(const struct pl_rule *rules, size_t n, int *out, char *why,
			 size_t whylen)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_INNER_MAP);
	struct pl_rule *v;
	__u32 *k;
	size_t m = 0;
	int fd, err;

	*out = -1;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].dir != PL_DIR_IN)
			continue;
		if (rules[i].match & PL_M_EXPR) {
			char what[64];

			snprintf(what, sizeof(what), "rule %u (an expression rule)", rules[i].id);
			return pl_xdp_no_tail_why(what, why, whylen);
		}
		m++;
	}
	if (!m)
		return 0;
	if (m > PL_POLICY_LIST_MAX)
		return pl_why(why, whylen, -E2BIG, "xdp in: %zu rules of the in direction; pktlens's "
			      "XDP program in libxdp's dispatcher without tail calls takes %u", m,
			      PL_POLICY_LIST_MAX);
	v = calloc(m, sizeof(*v));
	k = calloc(m, sizeof(*k));
	fd = v && k ? bpf_map_create(BPF_MAP_TYPE_ARRAY, "policy_list", sizeof(*k), sizeof(*v),
				     (__u32)m, &o) : -ENOMEM;
	if (fd < 0) {
		err = fd == -ENOMEM ? fd : -errno;
		free(v);
		free(k);
		return pl_why(why, whylen, err, "xdp in: cannot create the rule set: %s",
			      strerror(-err));
	}
	m = 0;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].dir != PL_DIR_IN)
			continue;
		k[m] = (__u32)m;
		v[m++] = rules[i];
	}
	err = pl_map_update_batch(fd, k, sizeof(*k), v, sizeof(*v), m);
	free(v);
	free(k);
	if (err) {
		close(fd);
		return pl_why(why, whylen, err, "xdp in: filling the rule set failed: %s",
			      strerror(-err));
	}
	*out = fd;
	return 0;
}

/* policy_set @set_fd := the array @list_fd, or none for -1 */
static int xdp_set_swap(int set_fd, int list_fd)
{
	__u32 zero = 0;

	if (list_fd < 0)
		return bpf_map_delete_elem(set_fd, &zero) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(set_fd, &zero, &list_fd, BPF_ANY) ? -errno : 0;
}

/* The journal's hook (H_*) of rule set hook @r */
static int ruleset_h(const struct pl_ruleset *r)
{
	if (r->slot == PL_SLOT_XDP_IN)
		return H_XDP;
	return r->dir == PL_DIR_IN ? H_TC_IN : H_TC_OUT;
}

/*
 * Before the swap: the whole new record (@rules, the texts of @texts or,
 * for a rule given none, the running one's) pinned beside the running one,
 * then the journal naming what each hook holds now and will hold after the
 * swap (@rs, and @list_fd in policy_set unless it is -2). A failure
 * removes what it pinned.
 */
static int journal_write(struct pl_policy *p, const struct pl_rule *rules, size_t n,
			 const struct pl_rule_text *texts, size_t ntexts,
			 const struct pl_ruleset *rs, size_t nrs, int list_fd, struct journal *j,
			 int *rec_fd, int *exprs_fd, int *jfd, char *why, size_t whylen)
{
	struct pl_rule_text *have = NULL, *tv = NULL;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), max, zero = 0;
	size_t nhave = 0, m = 0;
	char path[sizeof(p->dir) + 32];
	int err;

	live_ids(p, j->old);
	memcpy(j->new, j->old, sizeof(j->new));
	for (size_t h = 0; h < nrs; h++)
		j->new[ruleset_h(&rs[h])] = obj_id(rs[h].stage_fd >= 0 ? rs[h].stage_fd :
						   rs[h].prog_fd, false);
	if (list_fd != -2)
		j->new[H_SET] = obj_id(list_fd, true);
	/* the record starts small and grows twice as large or more, never smaller */
	if (bpf_obj_get_info_by_fd(p->fd[PL_MID_POLICY_RULES], &info, &len))
		return pl_why(why, whylen, -errno, "reading the rule record: %s", strerror(errno));
	for (max = info.max_entries ? info.max_entries : 1; max < n; max *= 2)
		;
	if (max > PL_POLICY_RULES_MAX)
		max = PL_POLICY_RULES_MAX;
	err = pl_policy_exprs(p, &have, &nhave);
	tv = err ? NULL : calloc(n + 1, sizeof(*tv));
	if (!err && !tv)
		err = -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		const char *t = pl_policy_text(texts, ntexts, rules[i].id);

		t = t ? t : pl_policy_text(have, nhave, rules[i].id);
		if ((rules[i].match & PL_M_EXPR) && t)
			tv[m++] = (struct pl_rule_text){ .id = rules[i].id, .text = (char *)t };
	}
	if (!err) {
		*rec_fd = record_new(p->fd[PL_MID_POLICY_RULES], max, rules, n);
		err = *rec_fd < 0 ? *rec_fd : 0;
	}
	if (!err) {
		pl_policy_texts_sort(tv, m);
		*exprs_fd = exprs_new(p->fd[PL_MID_POLICY_EXPRS], rules, n, tv, m);
		err = *exprs_fd < 0 ? *exprs_fd : 0;
	}
	free(tv);	/* its texts are have's and texts' */
	pl_policy_texts_free(have, nhave);
	if (!err) {
		*jfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, PL_POLICY_NEXT, sizeof(zero), sizeof(*j), 1,
				      NULL);
		err = *jfd < 0 || bpf_map_update_elem(*jfd, &zero, j, BPF_ANY) ? -errno : 0;
	}
	/* the journal last: a reader finds it with both records there */
	pin_path(path, sizeof(path), p, PL_POLICY_RULES_NEXT);
	err = err ?: bpf_obj_pin(*rec_fd, path) ? -errno : 0;
	pin_path(path, sizeof(path), p, PL_POLICY_EXPRS_NEXT);
	err = err ?: bpf_obj_pin(*exprs_fd, path) ? -errno : 0;
	pin_path(path, sizeof(path), p, PL_POLICY_NEXT);
	err = err ?: bpf_obj_pin(*jfd, path) ? -errno : 0;
	if (err) {
		unpin(p, PL_POLICY_RULES_NEXT);
		unpin(p, PL_POLICY_EXPRS_NEXT);
		return pl_why(why, whylen, err, "recording the rules: %s", strerror(-err));
	}
	return 0;
}

/* Take back journal_write() (the swap failed: the old rule set runs) */
static void journal_drop(const struct pl_policy *p)
{
	unpin(p, PL_POLICY_NEXT);
	unpin(p, PL_POLICY_RULES_NEXT);
	unpin(p, PL_POLICY_EXPRS_NEXT);
}

/*
 * XDP: whether the devmap entry of @r's target stays out. The kernel takes
 * an interface's entry out when it goes away; the index may be given to
 * another interface since, and a rule that ran with the old one must not
 * start redirecting to the new one because some other rule changed. A
 * rule new to the set (its counter key no running redirect to that index
 * has) names the interface that has the index now: that puts it back.
 */
static bool redirect_stays_gone(const struct pl_policy *p, const struct pl_rule *rules, size_t n,
				const struct pl_rule *r, const struct pl_rule *byctr, size_t nold)
{
	bool ran = false;

	if (p->xdp_new || !pl_policy_redirect_gone(p, r))
		return false;
	for (size_t i = 0; i < nold && !ran; i++)
		ran = byctr[i].action == PL_ACT_REDIRECT && byctr[i].dir == PL_DIR_IN &&
		      byctr[i].arg == r->arg;
	if (!ran)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct pl_rule *o;

		if (rules[i].action != PL_ACT_REDIRECT || rules[i].dir != PL_DIR_IN ||
		    rules[i].arg != r->arg)
			continue;
		o = has_ctr(byctr, nold, rules[i].ctr) ? by_ctr(byctr, nold, rules[i].ctr) : NULL;
		if (!o || o->action != PL_ACT_REDIRECT || o->dir != PL_DIR_IN || o->arg != r->arg)
			return false;
	}
	return true;
}

/*
 * After the swap: the new record renamed over the old one (expressions
 * first: a reader meanwhile reads the same from either), then the journal
 * removed; @p's record is the new one (*@rec_fd, *@exprs_fd taken).
 */
static int journal_done(struct pl_policy *p, int *rec_fd, int *exprs_fd, char *why,
			size_t whylen)
{
	const char *from[2] = { PL_POLICY_EXPRS_NEXT, PL_POLICY_RULES_NEXT };
	const char *to[2] = { PL_MAP_POLICY_EXPRS, PL_MAP_POLICY_RULES };
	char a[sizeof(p->dir) + 32], b[sizeof(p->dir) + 32];

	for (int i = 0; i < 2; i++) {
		pin_path(a, sizeof(a), p, from[i]);
		pin_path(b, sizeof(b), p, to[i]);
		if (rename(a, b))
			return pl_why(why, whylen, -errno, "recording the rules: %s",
				      strerror(errno));
	}
	unpin(p, PL_POLICY_NEXT);
	close(p->fd[PL_MID_POLICY_EXPRS]);
	close(p->fd[PL_MID_POLICY_RULES]);
	p->fd[PL_MID_POLICY_EXPRS] = *exprs_fd;
	p->fd[PL_MID_POLICY_RULES] = *rec_fd;
	*exprs_fd = *rec_fd = -1;
	return 0;
}

int pl_policy_commit(struct pl_policy *p, struct pl_rule *rules, size_t n,
		     const struct pl_rule_text *texts, size_t ntexts, char *why, size_t whylen)
{
	struct pl_rule *old = NULL, *byctr = NULL;
	struct pl_ruleset rs[2];
	__u32 prev[2] = { 0, 0 }, targets[PL_REDIRECT_MAX];
	size_t nrs, nold = 0, swapped = 0, ntargets = 0, t;
	bool counters = false;
	/* XDP without tail calls: its rule set (xdp_set_build()), the entry's policy_set */
	int set_fd = -1, list_fd = -1, prev_fd = -1;
	__u32 prev_set = 0, zero = 0;
	bool xdp_set = false, journaled = false;
	/* the new record, its journal (see resolve()) */
	int rec_fd = -1, exprs_fd = -1, jfd = -1;
	struct journal j;
	int err;

	why[0] = 0;
	pl_qsort(rules, n, sizeof(*rules), id_cmp);
	err = check(p, rules, n, why, whylen);
	if (err)
		return err;
	if (p->meta.xdp_mode != PL_XDP_NONE &&
	    !pl_xdp_prog_tail_calls(p->meta.xdp_prog_id, p->fd[PL_MID_XDP_CHAIN])) {
		int fd = pl_xdp_prog_map_fd(p->meta.xdp_prog_id, "policy_set");

		for (size_t i = 0; i < n && fd < 0; i++)
			if (rules[i].dir == PL_DIR_IN)	/* an entry from before policy_set */
				return pl_xdp_no_tail_why("policy rules of the in direction", why,
							  whylen);
		xdp_set = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	pl_policy_sort(rules, n);
	err = pl_policy_settle(p, why, whylen);
	if (err)
		return err;
	err = pl_policy_rules(p, &old, &nold);
	if (err)
		return pl_why(why, whylen, err, "reading the current rules: %s", strerror(-err));
	pl_qsort(old, nold, sizeof(*old), id_cmp);
	byctr = malloc((nold ? nold : 1) * sizeof(*byctr));
	if (!byctr) {
		free(old);
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	}
	memcpy(byctr, old, nold * sizeof(*old));
	pl_qsort(byctr, nold, sizeof(*byctr), ctr_cmp);
	assign_ctrs(rules, n, old, nold, byctr);
	nrs = ruleset_hooks(p, rs);
	if (xdp_set) {
		set_fd = pl_xdp_prog_map_fd(p->meta.xdp_prog_id, "policy_set");
		err = set_fd < 0 ? pl_why(why, whylen, set_fd, "xdp in: the rule set's map is gone: "
					  "%s", strerror(-set_fd)) :
			xdp_set_build(rules, n, &list_fd, why, whylen);
		if (err) {
			nrs = 0;
			goto out;
		}
		if (!bpf_map_lookup_elem(set_fd, &zero, &prev_set) && prev_set)
			prev_fd = bpf_map_get_fd_by_id(prev_set);
	}
	if (set_fd >= 0 && nrs && rs[0].slot == PL_SLOT_XDP_IN) {
		/* judged by the set in policy_set, not by a program in the chain */
		for (size_t h = 1; h < nrs; h++)
			rs[h - 1] = rs[h];
		nrs--;
	}
	for (size_t h = 0; h < nrs && !err; h++)
		err = pl_ruleset_build(p, &rs[h], rules, n, texts, ntexts, why, whylen);
	/* the journal before the counters: killed from here on, the next commit finds them */
	err = err ?: journal_write(p, rules, n, texts, ntexts, rs, nrs, set_fd >= 0 ? list_fd : -2,
				   &j, &rec_fd, &exprs_fd, &jfd, why, whylen);
	if (err)
		goto out;
	journaled = true;

	/* counters of new rules, redirect targets */
	err = new_counters(p, rules, n, byctr, nold, false, why, whylen);
	counters = !err;
	if (!err && (err = limit_state(p, rules, n, byctr, nold, false, why, whylen)))
		new_counters(p, rules, n, byctr, nold, true, why, 0);
	counters = !err;
	for (size_t i = 0; i < n && !err; i++) {
		const struct pl_rule *r = &rules[i];
		char ifn[IF_NAMESIZE];
		int e;

		/* XDP's devmap (tc redirects by ifindex); check() made sure it is there */
		if (r->action != PL_ACT_REDIRECT || r->dir != PL_DIR_IN ||
		    p->meta.xdp_mode == PL_XDP_NONE)
			continue;
		/* once per target (many rules may share one): made, or left out as gone */
		for (t = 0; t < ntargets && targets[t] != r->arg; t++)
			;
		if (t < ntargets)
			continue;
		if (ntargets < PL_REDIRECT_MAX)	/* check() allowed no more */
			targets[ntargets++] = r->arg;
		if (redirect_stays_gone(p, rules, n, r, byctr, nold) ||
		    !bpf_map_update_elem(p->fd[PL_MID_REDIRECT], &r->arg, &r->arg, BPF_ANY))
			continue;
		e = errno;
		/* a target that is gone has no entry: its packets drop (bpf_redirect_map()) */
		if (!if_indextoname(r->arg, ifn))
			continue;
		err = pl_why(why, whylen, -e, "rule %u: cannot redirect to ifindex %u: %s", r->id,
			     r->arg, strerror(e));
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
	if (set_fd >= 0 && (err = xdp_set_swap(set_fd, list_fd))) {
		pl_why(why, whylen, err, "xdp in: cannot swap the rule set in: %s", strerror(-err));
		goto out;
	}
	for (swapped = 0; swapped < nrs && !err; swapped++) {
		struct pl_ruleset *r = &rs[swapped];

		if (r->stage_fd >= 0) {
			err = slot_set(r->chain_fd, PL_CHAIN_POLICY_GEN(r->dir, r->gen), r->prog_fd);
			err = err ?: slot_set(r->chain_fd, PL_CHAIN_POLICY(r->dir), r->stage_fd);
		} else {
			err = slot_set(r->chain_fd, PL_CHAIN_POLICY(r->dir), r->prog_fd);
		}
		if (err)
			pl_why(why, whylen, err, "%s: cannot swap the rule set in: %s", r->hook,
			       strerror(-err));
	}
	if (err) {
		if (set_fd >= 0)
			xdp_set_swap(set_fd, prev_fd);
		for (size_t h = 0; h < swapped; h++) {
			slot_restore(rs[h].chain_fd, PL_CHAIN_POLICY(rs[h].dir), prev[h]);
			if (rs[h].stage_fd >= 0)
				slot_set(rs[h].chain_fd, PL_CHAIN_POLICY_GEN(rs[h].dir, rs[h].gen), -1);
		}
		goto out;
	}
	counters = journaled = false;	/* live now: a failure below must not take them away */
	/* the previous set's program, if it sat behind an expression stage, once unused */
	pl_wait_for_packets();
	for (size_t h = 0; h < nrs; h++)
		for (__u32 g = 0; g < 2; g++)
			if (rs[h].stage_fd < 0 || g != rs[h].gen)
				slot_set(rs[h].chain_fd, PL_CHAIN_POLICY_GEN(rs[h].dir, g), -1);

	/*
	 * what no running rule uses, while the journal still names the old
	 * record (killed here, the next pl_policy_settle() does it again);
	 * then the new record in place of the old, the journal gone
	 */
	limits_kept(p, rules, n, old, nold);
	forget(p, rules, n, old, nold);
	gens_release(p, rules, n);
	err = journal_done(p, &rec_fd, &exprs_fd, why, whylen);
out:
	if (err && counters) {
		new_counters(p, rules, n, byctr, nold, true, why, 0);
		limit_state(p, rules, n, byctr, nold, true, why, 0);
	}
	if (err && journaled)
		journal_drop(p);	/* after the counters: the old rule set runs */
	for (size_t h = 0; h < nrs; h++)
		pl_ruleset_free(&rs[h]);
	for (int *fd = (int[]){ set_fd, list_fd, prev_fd, rec_fd, exprs_fd, jfd }, i = 0; i < 6; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	free(byctr);
	free(old);
	return err;
}
