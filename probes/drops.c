// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include "drops.h"
#include "../export/format.h"
#include "../loader/features.h"
#include "../loader/loader.h"
#include "pktlens_drops.skel.h"
#include "probeset.h"

struct pl_drops {
	struct pktlens_drops *skel;
	struct ring_buffer *rb;
	pl_drop_event_fn fn;
	void *ctx;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct pl_drops *d = ctx;

	if (size < sizeof(struct pl_drop_event))
		return 0;
	return d->fn ? d->fn(d->ctx, data) : 0;
}

static const char *const link_pins[] = { PL_PIN_DROP_KFREE_LINK, PL_PIN_DROP_XDP_EXC_LINK,
					 PL_PIN_DROP_XDP_RDR_LINK, PL_PIN_DROP_XDP_RDRM_LINK };
static const char *const map_pins[] = { PL_MAP_DROP_STATS, PL_MAP_DROP_FLOWS, PL_MAP_DROP_LOST };

/*
 * one set per namespace: its drops whichever device, counted once however
 * many attachments; drop_lost is newer than the others
 */
const struct pl_probe_pins pl_drop_pins = {
	.links = link_pins, .nlinks = sizeof(link_pins) / sizeof(link_pins[0]),
	.maps = map_pins, .nmaps = sizeof(map_pins) / sizeof(map_pins[0]), .nmaps_new = 1,
	.per_ns = true,
};

/* pl_drops_open(), counting on in the maps pinned in @carry (a re-attach's old directory) */
static int open_drops(const struct pl_drop_cfg *cfg, const char *carry, pl_drop_event_fn fn,
		      void *ctx, struct pl_drops **out, char *why, size_t whylen)
{
	struct pl_drops *d = calloc(1, sizeof(*d));
	struct pktlens_drops *s;
	bool reason = pl_feature(PL_FEAT_DROP_REASON), rx_sk = pl_feature(PL_FEAT_DROP_RX_SK);
	__u32 zero = 0;
	int err;

	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->ctx = ctx;
	s = d->skel = pktlens_drops__open();
	if (!s) {
		err = pl_why(why, whylen, -errno, "cannot open the drop probes: %s", strerror(errno));
		goto fail;
	}
	/* kfree_skb's reason came with 5.17; xdp_redirect_map_err is gone from newer kernels */
	bpf_program__set_autoload(s->progs.pl_drop_kfree_sk, reason && rx_sk);
	bpf_program__set_autoload(s->progs.pl_drop_kfree, reason && !rx_sk);
	bpf_program__set_autoload(s->progs.pl_drop_kfree_noreason, !reason);
	bpf_program__set_autoload(s->progs.pl_drop_xdp_rdrm,
				  pl_tracepoint_btf("xdp_redirect_map_err"));
	if (carry) {
		struct bpf_map *maps[] = { s->maps.drop_stats, s->maps.drop_flows, s->maps.drop_lost };

		pl_pins_reuse_maps(carry, maps, map_pins, sizeof(map_pins) / sizeof(map_pins[0]));
	}
	err = pktlens_drops__load(s);
	if (err) {
		err = pl_probes_load_why(s->obj, err, "the drop probes", why, whylen);
		goto fail;
	}
	if (bpf_map_update_elem(bpf_map__fd(s->maps.drop_cfg), &zero, cfg, BPF_ANY)) {
		err = pl_why(why, whylen, -errno, "cannot configure the drop probes: %s",
			     strerror(errno));
		goto fail;
	}
	/* the old links stop before these start: no drop counted twice in shared maps */
	if (carry)
		pl_pins_unpin(carry, link_pins, sizeof(link_pins) / sizeof(link_pins[0]), NULL, 0);
	err = pktlens_drops__attach(s);
	if (err) {
		pl_why(why, whylen, err, "attaching the drop tracepoints failed: %s", strerror(-err));
		goto fail;
	}
	d->rb = fn ? ring_buffer__new(bpf_map__fd(s->maps.drop_events), on_record, d, NULL) : NULL;
	if (fn && !d->rb) {
		err = pl_why(why, whylen, -errno, "cannot map the event ring: %s", strerror(errno));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	pl_drops_close(d);
	return err;
}

int pl_drops_open(const struct pl_drop_cfg *cfg, pl_drop_event_fn fn, void *ctx,
		  struct pl_drops **out, char *why, size_t whylen)
{
	return open_drops(cfg, NULL, fn, ctx, out, why, whylen);
}

int pl_drops_poll(struct pl_drops *d, int timeout_ms)
{
	int n;

	if (!d->rb) {
		usleep((useconds_t)timeout_ms * 1000);
		return 0;
	}
	n = ring_buffer__poll(d->rb, timeout_ms);
	return n == -EINTR ? 0 : n;
}

int pl_drops_stats_fd(const struct pl_drops *d)
{
	return bpf_map__fd(d->skel->maps.drop_stats);
}

int pl_drops_flows_fd(const struct pl_drops *d)
{
	return bpf_map__fd(d->skel->maps.drop_flows);
}

/* drop_lost[] (@fd) summed over CPUs */
static void lost_read(int fd, uint64_t out[PL_DROP_LOST_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	memset(out, 0, sizeof(uint64_t) * PL_DROP_LOST_MAX);
	if (ncpu <= 0 || !(v = calloc((size_t)ncpu, sizeof(*v))))
		return;
	for (__u32 i = 0; i < PL_DROP_LOST_MAX; i++)
		if (!bpf_map_lookup_elem(fd, &i, v))
			for (int c = 0; c < ncpu; c++)
				out[i] += v[c];
	free(v);
}

void pl_drops_lost(const struct pl_drops *d, uint64_t out[PL_DROP_LOST_MAX])
{
	lost_read(bpf_map__fd(d->skel->maps.drop_lost), out);
}

int pl_drops_pinned_lost(const char *dir, uint64_t out[PL_DROP_LOST_MAX])
{
	int fd = pl_pin_open(dir, PL_MAP_DROP_LOST), err;

	if (fd < 0)
		return -errno;
	/* a pin of another layout is not read into ours, as every other pin (pl_map_sized()) */
	err = pl_map_sized(fd, true, sizeof(__u32), sizeof(uint64_t));
	if (!err)
		lost_read(fd, out);
	close(fd);
	return err;
}

void pl_drops_close(struct pl_drops *d)
{
	if (!d)
		return;
	ring_buffer__free(d->rb);
	pktlens_drops__destroy(d->skel);	/* detaches, unless pinned */
	free(d);
}

int pl_drops_pin(struct pl_drops *d, const char *dir, char *why, size_t whylen)
{
	struct bpf_link *links[] = { d->skel->links.pl_drop_kfree_sk ?: d->skel->links.pl_drop_kfree ?:
				     d->skel->links.pl_drop_kfree_noreason,
				     d->skel->links.pl_drop_xdp_exc, d->skel->links.pl_drop_xdp_rdr,
				     d->skel->links.pl_drop_xdp_rdrm };
	struct bpf_map *maps[] = { d->skel->maps.drop_stats, d->skel->maps.drop_flows,
				   d->skel->maps.drop_lost };
	char path[640];
	int err;

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (!links[i])
			continue;	/* not on this kernel */
		snprintf(path, sizeof(path), "%s/%s", dir, link_pins[i]);
		err = bpf_link__pin(links[i], path);
		if (err)
			return pl_why(why, whylen, err, "cannot pin %s: %s", path, strerror(-err));
		bpf_link__disconnect(links[i]);	/* the pin keeps it attached */
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_pins[i]);
		err = bpf_map__pin(maps[i], path);
		if (err)
			return pl_why(why, whylen, err, "cannot pin %s: %s", path, strerror(-err));
	}
	return 0;
}

void pl_drops_unpin(const char *dir)
{
	pl_probe_set_unpin(&pl_drop_pins, dir);
}

/* A new set, pinned in @dir: pl_probe_set_pin()'s load */
static int load_quiet(__u64 netns, const char *dir, const char *carry, char *why, size_t whylen)
{
	struct pl_drop_cfg cfg = { .netns = netns, .flags = PL_DROP_CFG_FLOWS };
	struct pl_drops *d = NULL;
	int err;

	err = open_drops(&cfg, carry, NULL, NULL, &d, why, whylen);
	if (!err)
		err = pl_drops_pin(d, dir, why, whylen);
	pl_drops_close(d);
	return err;
}

int pl_drops_pin_quiet(__u64 netns, const char *dir, const char *carry, char *why,
		       size_t whylen)
{
	/*
	 * One probe set per namespace, pinned by each attachment that has the
	 * probes: it counts on while any of them is left (each pin holds it),
	 * however they come and go, a re-attach's too (probes/probeset.h).
	 */
	return pl_probe_set_pin(&pl_drop_pins, netns, dir, carry, load_quiet, why, whylen);
}

/* Rows being read: @size bytes each, the value's packets/bytes summed over CPUs by @sum. */
struct rows {
	char *v;
	size_t n, cap, size, ksize, vsize;
	void (*sum)(void *row, const void *vals, int ncpu, size_t vsize);
};

static void sum_stats(void *row, const void *vals, int ncpu, size_t vsize)
{
	struct pl_drop_row *r = row;
	const struct pl_drop_val *v = vals;

	(void)vsize;
	for (int c = 0; c < ncpu; c++) {
		r->v.packets += v[c].packets;
		r->v.bytes += v[c].bytes;
	}
}

/*
 * One flow's per-CPU values (@vsize bytes each) summed, with the reason and
 * device of its latest drop: the CPU's whose last_ns is the latest (the last
 * CPU that dropped it, in an older pktlens's map without last_ns).
 */
static void sum_flows(void *row, const void *vals, int ncpu, size_t vsize)
{
	struct pl_drop_flow_row *r = row;

	for (int c = 0; c < ncpu; c++) {
		struct pl_drop_flow_val v = { 0 };

		memcpy(&v, (const char *)vals + (size_t)c * vsize, vsize);
		r->v.packets += v.packets;
		r->v.bytes += v.bytes;
		if (v.packets && v.last_ns >= r->v.last_ns) {
			r->v.reason = v.reason;
			r->v.ifindex = v.ifindex;
			r->v.last_ns = v.last_ns;
		}
	}
}

/* drop_flows' value size: a map an older pktlens pinned has no last_ns. */
static size_t flow_vsize(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
	    info.value_size == sizeof(struct pl_drop_flow_val_v1))
		return sizeof(struct pl_drop_flow_val_v1);
	return sizeof(struct pl_drop_flow_val);
}

static int push_row(const void *key, const void *vals, int ncpu, void *ctx)
{
	struct rows *r = ctx;
	char *v = pl_grown(r->v, &r->cap, r->n, r->size, 64), *row;

	if (!v)
		return -ENOMEM;
	r->v = v;
	row = r->v + r->n * r->size;
	memset(row, 0, r->size);
	memcpy(row, key, r->ksize);
	r->sum(row, vals, ncpu, r->vsize);
	r->n++;
	return 0;
}

static int read_rows(int fd, struct rows *r, void **out, size_t *n, size_t vsize)
{
	int err;

	r->vsize = vsize;
	err = pl_map_walk(fd, r->ksize, vsize, true, push_row, r);
	if (err) {
		free(r->v);
		return err;
	}
	*out = r->v;
	*n = r->n;
	return 0;
}

/* pl_drops_name_dev() in the namespace of inode @here (0: not known) */
static bool name_dev_in(struct pl_drop_key *k, uint64_t here)
{
	char name[IF_NAMESIZE];

	if (k->dev[0] || !k->ifindex || !here || k->netns != here ||
	    !if_indextoname(k->ifindex, name))
		return false;	/* named, no device, another namespace's, or gone since */
	memcpy(k->dev, name, sizeof(k->dev));
	return true;
}

bool pl_drops_name_dev(struct pl_drop_key *k)
{
	uint64_t here = 0;

	return !k->dev[0] && k->ifindex && !pl_netns_ino(&here) && name_dev_in(k, here);
}

/*
 * Rows whose drop had no device but the index of the one it arrived on
 * (TCP's receive path: skb->skb_iif, in the socket's namespace): that
 * device's name as another row of it has it (copied at its drop), else its
 * name now where the namespace is ours (another namespace's index cannot be
 * named from here: such a row keeps no name).
 */
static void name_arrivals(struct pl_drop_row *r, size_t n)
{
	uint64_t here = 0;	/* the namespace, asked once: at the first row that needs it */

	for (size_t i = 0; i < n; i++) {
		if (r[i].k.dev[0] || !r[i].k.ifindex)
			continue;
		for (size_t j = 0; j < n && !r[i].k.dev[0]; j++)
			if (r[j].k.dev[0] && r[j].k.ifindex == r[i].k.ifindex &&
			    r[j].k.netns == r[i].k.netns)
				memcpy(r[i].k.dev, r[j].k.dev, sizeof(r[i].k.dev));
		if (!r[i].k.dev[0] && (here || !pl_netns_ino(&here)))
			name_dev_in(&r[i].k, here);
	}
}

int pl_drops_read(int fd, struct pl_drop_row **out, size_t *n)
{
	struct rows r = { .size = sizeof(**out), .ksize = sizeof(struct pl_drop_key),
			  .sum = sum_stats };
	int err = read_rows(fd, &r, (void **)out, n, sizeof(struct pl_drop_val));

	if (!err)
		name_arrivals(*out, *n);
	return err;
}

int pl_drops_read_flows(int fd, struct pl_drop_flow_row **out, size_t *n)
{
	struct rows r = { .size = sizeof(**out), .ksize = sizeof(struct pl_drop_flow_key),
			  .sum = sum_flows };

	return read_rows(fd, &r, (void **)out, n, flow_vsize(fd));
}

int pl_drops_flow_lookup(int fd, const struct pl_drop_flow_key *k, struct pl_drop_flow_val *out)
{
	int ncpu = libbpf_num_possible_cpus(), err = 0;
	struct pl_drop_flow_row r = { 0 };
	size_t vsize = flow_vsize(fd);
	void *v;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpu, vsize);
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, k, v))
		err = -errno;
	else
		sum_flows(&r, v, ncpu, vsize);
	*out = r.v;
	free(v);
	return err;
}

/*
 * enum skb_drop_reason of the running kernel: its values and names as
 * pktlens shows them, read once from the kernel's BTF, which is then freed
 * (it is several megabytes: a daemon that kept it for the names after its
 * first scrape never got back to its idle size). Once for all threads: the
 * exporter's scrapes run in threads of their own.
 */
struct reason {
	__u32 val;
	char *name;
};

static struct {
	pthread_once_t once;
	struct reason *r;	/* NULL: the kernel's BTF has no skb_drop_reason */
	size_t n;
} R = { .once = PTHREAD_ONCE_INIT };

/* An enum skb_drop_reason name as pktlens shows it: without SKB_DROP_REASON_ (or SKB_). */
static const char *short_reason(const char *name)
{
	if (!strncmp(name, "SKB_DROP_REASON_", 16))
		return name + 16;
	return !strncmp(name, "SKB_", 4) ? name + 4 : name;
}

static void load_reasons_once(void)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t = NULL;
	const struct btf_enum *e;
	struct reason *r;
	int id, n;

	libbpf_set_print(print);
	if (libbpf_get_error(btf))
		return;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	n = t ? btf_vlen(t) : 0;
	r = n ? calloc((size_t)n, sizeof(*r)) : NULL;
	if (r) {
		e = btf_enum(t);
		for (int i = 0; i < n; i++, e++) {
			r[i].val = (__u32)e->val;
			r[i].name = strdup(short_reason(btf__name_by_offset(btf, e->name_off)));
			if (!r[i].name) {
				while (i--)
					free(r[i].name);
				free(r);
				r = NULL;
				break;
			}
		}
	}
	if (r) {
		R.r = r;
		R.n = (size_t)n;
	}
	btf__free(btf);
}

static void load_reasons(void)
{
	pthread_once(&R.once, load_reasons_once);
}

static const char *kernel_reason(__u32 reason)
{
	load_reasons();
	for (size_t i = 0; i < R.n; i++)
		if (R.r[i].val == reason)
			return R.r[i].name;
	return NULL;
}

static const char *const xdp_acts[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					"XDP_REDIRECT" };

int pl_drop_reason_known(const char *name)
{
	for (size_t i = 0; i < sizeof(xdp_acts) / sizeof(xdp_acts[0]); i++)
		if (!strcasecmp(name, xdp_acts[i]))
			return 0;
	load_reasons();
	if (!R.r)
		return -ENOTSUP;
	for (size_t i = 0; i < R.n; i++)
		if (!strcasecmp(name, R.r[i].name))
			return 0;
	return -ENOENT;
}

const char *pl_drop_reason_name(__u32 kind, __u32 reason, char *buf, size_t len)
{
	const char *name;

	switch (kind) {
	case PL_DROP_KFREE:
		if (reason == PL_DROP_NO_REASON)
			return "unknown (no reasons before Linux 5.17)";
		name = kernel_reason(reason);
		if (name)
			return name;
		/* a subsystem's reason (its id in the high 16 bits), or newer than the BTF */
		snprintf(buf, len, "reason %u", reason);
		return buf;
	case PL_DROP_XDP_EXCEPTION:
		if (reason < sizeof(xdp_acts) / sizeof(xdp_acts[0]))
			return xdp_acts[reason];
		snprintf(buf, len, "XDP action %u", reason);
		return buf;
	case PL_DROP_XDP_REDIRECT:
		name = strerrorname_np((int)reason);
		/* one without a name (the kernel's own ENOTSUPP, 524): its number, a series each */
		if (name)
			snprintf(buf, len, "XDP redirect %s", name);
		else
			snprintf(buf, len, "XDP redirect error %u", reason);
		return buf;
	case PL_DROP_POLICY:
		snprintf(buf, len, "pktlens rule %u", reason);
		return buf;
	}
	snprintf(buf, len, "kind %u reason %u", kind, reason);
	return buf;
}

/* Text symbols of /proc/kallsyms, sorted by address (loaded once). */
struct ksym {
	__u64 addr;
	char *name;
};

static struct {
	bool loaded;
	struct ksym *s;
	size_t n;
} K;

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void load_kallsyms(void)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512], name[256], type;
	unsigned long long addr;
	size_t cap = 0;

	K.loaded = true;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || !addr ||
		    (type != 't' && type != 'T'))
			continue;
		if (K.n == cap) {
			size_t c = cap ? cap * 2 : 65536;
			struct ksym *s = realloc(K.s, c * sizeof(*s));

			if (!s)
				break;
			K.s = s;
			cap = c;
		}
		K.s[K.n].addr = addr;
		if (!(K.s[K.n].name = strdup(name)))
			break;
		K.n++;
	}
	fclose(f);
	qsort(K.s, K.n, sizeof(*K.s), cmp_ksym);
}

/* The symbol at or below @addr, NULL if none. */
static const struct ksym *ksym_of(__u64 addr)
{
	size_t lo = 0, hi;

	if (!K.loaded)
		load_kallsyms();
	hi = K.n;
	if (!addr || !K.n || addr < K.s[0].addr)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (K.s[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return &K.s[lo];
}

const char *pl_drop_location(__u64 addr, char *buf, size_t len)
{
	const struct ksym *s = ksym_of(addr);

	if (s)
		snprintf(buf, len, "%s", s->name);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
	return buf;
}

__u64 pl_drop_func(__u64 addr)
{
	const struct ksym *s = ksym_of(addr);

	return s ? s->addr : addr;
}

const char *pl_drop_l4_name(__u16 l3, __u8 l4, char *buf, size_t len)
{
	struct pl_flow_key k = { .l3proto = l3, .l4proto = l4 };

	return pl_fmt_l4(&k, buf, len);
}

int pl_drops_policy(uint64_t netns, __u32 ifindex, struct pl_drop_row **out, size_t *n)
{
	struct pl_attachment *a = NULL;
	struct pl_drop_row *rows = NULL;
	size_t na = 0, cnt = 0, cap = 0;
	int err = pl_attachments(netns, &a, &na);

	if (err)
		return err == -ENOENT ? (*out = NULL, *n = 0, 0) : err;
	for (size_t i = 0; i < na && !err; i++) {
		struct pl_rule *rules = NULL;
		struct pl_policy p;
		size_t nr = 0;

		/*
		 * @ifindex's by its index, not its name: the name it was
		 * attached as may be another now (a rename, an altname given)
		 */
		if (a[i].ns_gone || !a[i].meta_ok ||
		    (ifindex && (a[i].meta.ifindex != ifindex || !pl_meta_live(&a[i].meta))) ||
		    pl_policy_open(a[i].dir, &p))
			continue;
		if (!pl_policy_rules(&p, &rules, &nr))
			for (size_t r = 0; r < nr && !err; r++) {
				struct pl_rule_stats st;
				struct pl_drop_row *row;

				/* --drop, and the excess of a --limit that drops it */
				bool lim = rules[r].action == PL_ACT_LIMIT &&
					   rules[r].lim.over == PL_ACT_DROP;

				if ((rules[r].action != PL_ACT_DROP && !lim) ||
				    pl_policy_rule_stats(&p, &rules[r], &st))
					continue;
				if (cnt == cap) {
					size_t c = cap ? cap * 2 : 16;
					void *v = realloc(rows, c * sizeof(*rows));

					if (!v) {
						err = -ENOMEM;
						break;
					}
					rows = v;
					cap = c;
				}
				row = &rows[cnt++];
				memset(row, 0, sizeof(*row));
				row->k.netns = a[i].netns;
				row->k.ifindex = a[i].meta.ifindex;
				memcpy(row->k.dev, a[i].ifname, sizeof(row->k.dev));
				row->k.kind = PL_DROP_POLICY;
				row->k.reason = rules[r].id;
				row->v.packets = lim ? st.exc_pkts : st.pkts;
				row->v.bytes = lim ? st.exc_bytes : st.bytes;
			}
		free(rules);
		pl_policy_close(&p);
	}
	free(a);
	if (err) {
		free(rows);
		return err;
	}
	*out = rows;
	*n = cnt;
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	return memcmp(&((const struct pl_drop_row *)a)->k, &((const struct pl_drop_row *)b)->k,
		      sizeof(struct pl_drop_key));
}

size_t pl_drops_fold(struct pl_drop_row *r, size_t n, bool max)
{
	size_t out = 0;

	if (!n)		/* a map with no rows: @r may be NULL, which qsort() must not get */
		return 0;
	qsort(r, n, sizeof(*r), cmp_row);
	for (size_t i = 0; i < n; i++) {
		if (out && !cmp_row(&r[out - 1], &r[i])) {
			struct pl_drop_val *v = &r[out - 1].v;

			if (!max) {
				v->packets += r[i].v.packets;
				v->bytes += r[i].v.bytes;
			} else {
				if (r[i].v.packets > v->packets)
					v->packets = r[i].v.packets;
				if (r[i].v.bytes > v->bytes)
					v->bytes = r[i].v.bytes;
			}
			continue;
		}
		r[out++] = r[i];
	}
	return out;
}

size_t pl_drops_merge(struct pl_drop_row *r, size_t n)
{
	return pl_drops_fold(r, n, false);
}
