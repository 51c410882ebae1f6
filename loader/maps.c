// SPDX-License-Identifier: GPL-2.0
/*
 * The maps of an attachment, one row each (enum pl_map_id in loader.h):
 * attach (loader.c) creates, shares, pins and carries them over from this
 * table, rule-set objects (policy.c) reuse or drop them by it, and readers
 * open the pins by it. The BPF side defines them in bpf/maps.h,
 * bpf/policy.h, bpf/sample.h and the programs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pktlens/why.h>

#include "batch.h"
#include "loader.h"

#define BOTH (PL_OBJ_XDP | PL_OBJ_TC)
/*
 * a row: name, type, objects, shared, pin, keep, rules[, .optional, .pin_skb (the non-frags
 * variant's), SHAPE(key type, value type)]
 */
#define ROW(NAME, TYPE, OBJS, SHARED, PIN, KEEP, RULES, ...)                          \
	{ .name = (NAME), .type = (TYPE), .objs = (OBJS), .shared = (SHARED), .pin = (PIN), \
	  .keep = (KEEP), .rules = (RULES), __VA_ARGS__ }
#define SHAPE(K, V) .key_size = sizeof(K), .value_size = sizeof(V)

const struct pl_map_def pl_maps[PL_MID_MAX] = {
	/* counters and flows: kept across attach --force */
	[PL_MID_STATS] = ROW(PL_MAP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
			     PL_PIN_ALWAYS, PL_KEEP_ALWAYS, PL_RS_SHARED,
			     SHAPE(__u32, struct pl_stats)),
	[PL_MID_FLOWS] = ROW(PL_MAP_FLOWS, BPF_MAP_TYPE_PERCPU_HASH, BOTH, true,
			     PL_PIN_ALWAYS, PL_KEEP_FLOWS, PL_RS_SHARED,
			     SHAPE(struct pl_flow_key, struct pl_flow_val)),
	[PL_MID_FLOW_CACHE] = ROW(PL_MAP_FLOW_CACHE, BPF_MAP_TYPE_ARRAY, BOTH, true,
				  PL_PIN_ALWAYS, PL_KEEP_FLOWS, PL_RS_SHARED),
	/* what a reset holds still in the cache; optional: attachments made before it have none */
	[PL_MID_FLOW_CTL] = ROW(PL_MAP_FLOW_CTL, BPF_MAP_TYPE_ARRAY, BOTH, true,
				PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, .optional = true,
				SHAPE(__u32, struct pl_flow_ctl)),
	/* what cache slots held of the flows the last reset took out; optional as flow_ctl */
	[PL_MID_FLOW_DEBT] = ROW(PL_MAP_FLOW_DEBT, BPF_MAP_TYPE_PERCPU_HASH, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_FLOWS, PL_RS_SHARED, .optional = true,
				 SHAPE(struct pl_flow_key, struct pl_flow_debt)),
	/* what attach set up (the loader's, never read by BPF) */
	[PL_MID_META] = ROW(PL_MAP_META, BPF_MAP_TYPE_ARRAY, BOTH, true,
			    PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_NONE),
	/* filter chaining: a RULES stage's verdict per hook */
	[PL_MID_CHAIN_RES] = ROW(PL_MAP_CHAIN_RES, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, SHAPE(__u32, __u32)),
	/* policy rules: the record, their counters, redirect targets, expression texts */
	[PL_MID_POLICY_RULES] = ROW(PL_MAP_POLICY_RULES, BPF_MAP_TYPE_HASH, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_RECORD, PL_RS_NONE,
				    SHAPE(__u32, struct pl_rule)),
	[PL_MID_RULE_STATS] = ROW(PL_MAP_RULE_STATS, BPF_MAP_TYPE_PERCPU_HASH, BOTH, true,
				  PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED,
				  SHAPE(__u32, struct pl_rule_stats)),
	[PL_MID_REDIRECT] = ROW(PL_MAP_REDIRECT, BPF_MAP_TYPE_DEVMAP_HASH, PL_OBJ_XDP, true,
				PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED, .optional = true,
				SHAPE(__u32, __u32)),
	[PL_MID_POLICY_EXPRS] = ROW(PL_MAP_POLICY_EXPRS, BPF_MAP_TYPE_HASH, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_RECORD, PL_RS_NONE,
				    SHAPE(__u32, struct pl_rule_expr)),
	[PL_MID_EXPR_BITS] = ROW(PL_MAP_EXPR_BITS, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, SHAPE(__u32, __u64)),
	/* --limit rules: buckets by counter key, per-key LRU maps by counter key, their locks */
	[PL_MID_LIMIT_BUCKET] = ROW(PL_MAP_LIMIT_BUCKET, BPF_MAP_TYPE_HASH, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED,
				    SHAPE(__u32, struct pl_limit_bucket)),
	[PL_MID_LIMIT_KEYS] = ROW(PL_MAP_LIMIT_KEYS, BPF_MAP_TYPE_HASH_OF_MAPS, BOTH, true,
				  PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED, SHAPE(__u32, __u32)),
	[PL_MID_LIMIT_LOCKS] = ROW(PL_MAP_LIMIT_LOCKS, BPF_MAP_TYPE_ARRAY, BOTH, true,
				   PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED,
				   SHAPE(__u32, struct pl_limit_lock)),
	/* pcap samples */
	[PL_MID_SAMPLE_CFG] = ROW(PL_MAP_SAMPLE_CFG, BPF_MAP_TYPE_ARRAY, BOTH, true,
				  PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED,
				  SHAPE(__u32, struct pl_sample_cfg)),
	[PL_MID_SAMPLE_STATS] = ROW(PL_MAP_SAMPLE_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED,
				    SHAPE(__u32, struct pl_sample_stats)),
	[PL_MID_SAMPLE_RING] = ROW(PL_MAP_SAMPLE_RING, BPF_MAP_TYPE_ARRAY_OF_MAPS, BOTH, true,
				   PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, SHAPE(__u32, __u32)),
	[PL_MID_SAMPLE_RES] = ROW(PL_MAP_SAMPLE_RES, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				  PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, SHAPE(__u32, __u32)),
	/*
	 * --per-flow state: the sampler's table while it runs (an LRU_HASH of
	 * its own in attachments made before); optional: older ones have none
	 */
	[PL_MID_SAMPLE_FLOWS] = ROW(PL_MAP_SAMPLE_FLOWS, BPF_MAP_TYPE_ARRAY_OF_MAPS, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, .optional = true),
	/* the running sampler's lease (a deadline, bpf/sample.h); older attachments have none */
	[PL_MID_SAMPLE_LEASE] = ROW(PL_MAP_SAMPLE_LEASE, BPF_MAP_TYPE_ARRAY, BOTH, true,
				    PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, .optional = true,
				    SHAPE(__u32, __u64)),
	/* each hook's PROG_ARRAY; the kernel ties one to frags or not, so XDP has two */
	[PL_MID_XDP_CHAIN] = ROW(PL_MAP_XDP_CHAIN, BPF_MAP_TYPE_PROG_ARRAY, PL_OBJ_XDP, false,
				 PL_PIN_XDP, PL_KEEP_NONE, PL_RS_NONE, .optional = true,
				 .pin_skb = "xdp_skb_chain", SHAPE(__u32, __u32)),
	[PL_MID_XDP_SKB_CHAIN] = ROW("xdp_skb_chain", BPF_MAP_TYPE_PROG_ARRAY, PL_OBJ_XDP, false,
				     PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_NONE, SHAPE(__u32, __u32)),
	[PL_MID_TC_CHAIN] = ROW(PL_MAP_TC_CHAIN, BPF_MAP_TYPE_PROG_ARRAY, PL_OBJ_TC, false,
				PL_PIN_TC, PL_KEEP_NONE, PL_RS_NONE, .optional = true,
				SHAPE(__u32, __u32)),
	/* a rule set's own lookup maps (bpf/policy.h), sized when it is built */
	[PL_MID_POLICY_SRC4] = ROW("policy_src4", BPF_MAP_TYPE_LPM_TRIE, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_SRC6] = ROW("policy_src6", BPF_MAP_TYPE_LPM_TRIE, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_DST4] = ROW("policy_dst4", BPF_MAP_TYPE_LPM_TRIE, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_DST6] = ROW("policy_dst6", BPF_MAP_TYPE_LPM_TRIE, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_LIST] = ROW("policy_list", BPF_MAP_TYPE_ARRAY, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_CFG] = ROW("policy_cfg", BPF_MAP_TYPE_ARRAY, BOTH, false,
				  PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	/* passive TCP: the namespace's connections and timestamps (loader/tcp.c), the counters */
	[PL_MID_TCP_STATE] = ROW(PL_MAP_TCP_STATE, BPF_MAP_TYPE_HASH, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, .optional = true,
				 SHAPE(struct pl_tcp_key, struct pl_tcp_state)),
	[PL_MID_TCP_TS] = ROW(PL_MAP_TCP_TS, BPF_MAP_TYPE_HASH, BOTH, true,
			      PL_PIN_ALWAYS, PL_KEEP_NONE, PL_RS_SHARED, .optional = true,
			      SHAPE(struct pl_tcp_ts_key, __u64)),
	[PL_MID_TCP_STATS] = ROW(PL_MAP_TCP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_ALWAYS, PL_RS_SHARED, .optional = true,
				 SHAPE(__u32, struct pl_tcp_pstats)),
	/* per-CPU scratch of one program run: a sample's header, the bounded rule walk */
	[PL_MID_SAMPLE_HDR] = ROW("sample_hdr", BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, false,
				  PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_WALK] = ROW("policy_walk", BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	/* the coarse clock as last read on this CPU (bpf/maps.h): each program's own */
	[PL_MID_CLOCK] = ROW("pl_clock", BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, false,
			     PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	/* a rule set's lookup of policy_list by field (bpf/policy.h), and its per-CPU scratch */
	[PL_MID_POLICY_CLASS] = ROW("policy_class", BPF_MAP_TYPE_ARRAY, BOTH, false,
				    PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_BITS] = ROW("policy_bits", BPF_MAP_TYPE_ARRAY, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	[PL_MID_POLICY_CAND] = ROW("policy_cand", BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, false,
				   PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_OWN),
	/* rule counters by index for the first counter keys; optional: attachments made before it */
	[PL_MID_RULE_CTRS] = ROW(PL_MAP_RULE_CTRS, BPF_MAP_TYPE_PERCPU_ARRAY, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED, .optional = true,
				 SHAPE(__u32, struct pl_rule_stats)),
	/* counters of the keys of generation >= 1 (PL_RULE_GEN); optional: attachments made before */
	[PL_MID_RULE_GENS] = ROW(PL_MAP_RULE_GENS, BPF_MAP_TYPE_ARRAY_OF_MAPS, BOTH, true,
				 PL_PIN_ALWAYS, PL_KEEP_RULES, PL_RS_SHARED, .optional = true,
				 SHAPE(__u32, __u32)),
	/*
	 * pktlens_xdp_notail's rule set (xdp/pktlens_xdp.bpf.c): the entry's own;
	 * policy commits find it through the entry's maps (loader/xdp_multi.c)
	 */
	[PL_MID_POLICY_SET] = ROW("policy_set", BPF_MAP_TYPE_ARRAY_OF_MAPS, PL_OBJ_XDP, false,
				  PL_PIN_NEVER, PL_KEEP_NONE, PL_RS_NONE, .optional = true),
};

const struct pl_map_def *pl_map_find(const char *name)
{
	for (size_t i = 0; i < PL_MID_MAX; i++)
		if (pl_maps[i].name && !strcmp(pl_maps[i].name, name))
			return &pl_maps[i];
	return NULL;
}

enum pl_map_id pl_map_id(const struct pl_map_def *d)
{
	return (enum pl_map_id)(d - pl_maps);
}

int pl_maps_check(const struct bpf_object *obj, unsigned int obj_bit, char *why, size_t whylen)
{
	const struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *name = bpf_map__name(m);
		const struct pl_map_def *d = pl_map_find(name);

		if (bpf_map__is_internal(m))
			continue;	/* .rodata, .bss: the object's own */
		if (!d || !(d->objs & obj_bit) || d->type != bpf_map__type(m) ||
		    (d->key_size && (d->key_size != bpf_map__key_size(m) ||
				     d->value_size != bpf_map__value_size(m))))
			return pl_why(why, whylen, -EPROTO, "map %s of %s: %s (loader/maps.c)", name,
				      bpf_object__name(obj), !d ? "not in the map table" :
				      d->type != bpf_map__type(m) ? "another type than the table says" :
				      !(d->objs & obj_bit) ? "the table says this object lacks it" :
				      "another key or value size than the table says");
	}
	return 0;
}

unsigned int pl_flow_cache_bits(__u32 flows_max)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 want, n = ncpu > 0 ? (__u64)ncpu : 1;
	unsigned int bits = PL_FLOW_CACHE_MIN_BITS;

	want = (__u64)PL_FLOW_CACHE_SHARES * flows_max / n;
	while (bits < PL_FLOW_CACHE_MAX_BITS && (1ULL << bits) < want)
		bits++;
	/* the whole map within 2^25 slots (2 GiB): old kernels refuse arrays of 4 GiB */
	while (bits > PL_FLOW_CACHE_MIN_BITS && (n << bits) > (1ULL << 25))
		bits--;
	return bits;
}

int pl_flow_cache_set(struct bpf_object *obj, unsigned int bits)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, PL_MAP_FLOW_CACHE);
	int ncpu = libbpf_num_possible_cpus();

	if (!m)
		return -ENOENT;
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	return bpf_map__set_max_entries(m, (__u32)ncpu << bits);
}

int pl_flow_cache_size(struct bpf_object *obj, __u32 flows_max, unsigned int *bits)
{
	struct bpf_map *debt = bpf_object__find_map_by_name(obj, PL_MAP_FLOW_DEBT);
	int err;

	*bits = pl_flow_cache_bits(flows_max);
	err = pl_flow_cache_set(obj, *bits);
	/*
	 * a reset's debts (bpf/flow.h): a table's flows, twice for flows cached
	 * on two CPUs, within 2^20 (16 MiB of buckets); a reset keeps the flows
	 * past that in the table, as before flow_debt
	 */
	if (!err && debt)
		err = bpf_map__set_max_entries(debt, flows_max < (1U << 19) ? 2 * flows_max : 1U << 20);
	return err;
}

int pl_flow_cache_bits_of(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int ncpu = libbpf_num_possible_cpus();

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	/* an attachment made before the cache was an ARRAY of lines: not ours to share */
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(struct pl_flow_slot))
		return -EPROTO;
	for (unsigned int b = PL_FLOW_CACHE_MIN_BITS; b <= PL_FLOW_CACHE_MAX_BITS; b++)
		if (info.max_entries == (__u32)ncpu << b)
			return (int)b;
	return -EPROTO;
}

bool pl_map_fits(int fd, const struct pl_map_def *d)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (!d->key_size)
		return true;
	return !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == (__u32)d->type &&
	       info.key_size == d->key_size && info.value_size == d->value_size;
}

void pl_maps_close(int fd[PL_MID_MAX])
{
	for (size_t i = 0; i < PL_MID_MAX; i++) {
		if (fd[i] >= 0)
			close(fd[i]);
		fd[i] = -1;
	}
}

int pl_maps_open(const char *dir, int fd[PL_MID_MAX])
{
	int err = 0;

	for (size_t i = 0; i < PL_MID_MAX; i++)
		fd[i] = -1;
	for (size_t i = 0; i < PL_MID_MAX && !err; i++) {
		if (pl_maps[i].pin == PL_PIN_NEVER)
			continue;
		fd[i] = pl_pin_open(dir, pl_maps[i].name);
		if (fd[i] < 0 && (!pl_maps[i].optional || errno != ENOENT))
			err = -errno;
	}
	if (err)
		pl_maps_close(fd);
	return err;
}

int pl_map_max_entries(int fd, __u32 *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*max = info.max_entries;
	return 0;
}

int pl_map_clone(int from, __u32 max)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char token[PL_BATCH_TOKEN];
	void *keys = NULL, *vals = NULL;
	int fd, err = 0;

	if (bpf_obj_get_info_by_fd(from, &info, &len))
		return -errno;
	if (info.key_size > PL_BATCH_TOKEN)
		return -EINVAL;
	o.map_flags = info.map_flags;
	fd = bpf_map_create(info.type, info.name, info.key_size, info.value_size,
			    max ? max : info.max_entries, &o);
	if (fd < 0)
		return -errno;
	keys = calloc(PL_BATCH, info.key_size);
	vals = calloc(PL_BATCH, info.value_size);
	if (!keys || !vals)
		err = -ENOMEM;
	for (bool first = true, end = false; !err && !end; first = false) {
		__u32 n = PL_BATCH;

		if (pl_batch_lookup(from, first ? NULL : token, token, keys, info.key_size, vals,
				    info.value_size, &n, false)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			end = true;	/* the last @n */
		}
		err = pl_map_update_batch(fd, keys, info.key_size, vals, info.value_size, n);
	}
	free(keys);
	free(vals);
	if (err)
		close(fd);
	return err ? err : fd;
}

int pl_map_update_batch(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz,
			size_t n)
{
	int tries = 0;

	for (size_t i = 0; i < n;) {
		__u32 c = (__u32)(n - i < PL_BATCH ? n - i : PL_BATCH);
		int err = pl_batch_update(fd, (const char *)keys + i * ksz, ksz,
					  (const char *)vals + i * vsz, vsz, &c, 0) ? -errno : 0;

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
