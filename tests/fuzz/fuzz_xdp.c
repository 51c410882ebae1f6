// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: random frames through the packet programs with
 * BPF_PROG_TEST_RUN (root): pktlens_xdp (xdp.frags), pktlens_xdp_skb,
 * pktlens_tc_in and pktlens_tc_out, loaded once from the skeletons like
 * tests/bpf_run.c does, with no policy, filter or sampler chained in. Each
 * run must give the counting verdict (XDP_PASS; tc: TC_ACT_UNSPEC, which
 * leaves the packet to what follows) and count the frame exactly once: one
 * more packet and len more bytes as passed, one more in the size buckets
 * and in the network and transport protocol counters, nothing as no-match or
 * filtered. The kernel refuses some frames with EINVAL (refused()); that is
 * checked too, and such frames must not be counted.
 *
 * Every RESET_EVERY inputs, `stats --reset` (pl_state_reset()) runs between
 * two frames: it must print exactly the counters since the previous one,
 * leave them at zero, and keep the flows adding up to the counters (sum of
 * the flows of a hook + flow_lost_pkts == its packets) before and after.
 *
 * The BPF code is not instrumented; what the parser made of each frame (the
 * protocol, VLAN, fragment and error counters it bumped) is handed to
 * libFuzzer as extra coverage counters, so frames that reach new parser
 * outcomes stay in the corpus.
 *
 *   make fuzz (builds .output/fuzz_xdp; seeds in tests/fuzz/corpus/xdp/)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pktlens_tc.skel.h"
#include "pktlens_xdp.skel.h"
#include "../../loader/features.h"
#include "../../loader/loader.h"

#define ETH_HLEN_ 14
#define XDP_PASS_ 2
#define TC_ACT_UNSPEC_ ((__u32)-1)
#define MAX_FRAME 65536
#define RESET_EVERY 64

enum { P_XDP, P_XDP_SKB, P_TC_IN, P_TC_OUT, P_MAX };

struct prog {
	const char *name;
	int fd;
	struct pl_state *st;	/* its object's maps (both XDP programs share one) */
	__u32 slot;		/* enum pl_slot */
	__u32 retval;		/* the counting verdict */
	__u32 max_len;		/* longest frame the kernel takes */
	struct pl_stats last;	/* this slot's counters after the previous run */
};

static struct pktlens_xdp *xdp;
static struct pktlens_tc *tc;
static struct prog progs[P_MAX];
static struct pl_state xdp_st, tc_st;	/* not pinned: resets keep their bases here */

/* What the parser made of a frame, by program, as libFuzzer features. */
static uint8_t kcov[P_MAX][PL_L3_MAX][PL_L4_MAX][16][3]
	__attribute__((section("__libfuzzer_extra_counters"), used));

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void read_slot(struct prog *p, struct pl_stats *s)
{
	struct pl_stats all[PL_SLOT_MAX];
	int err = pl_state_stats(p->st, all);

	if (err) {
		fprintf(stderr, "fuzz_xdp: %s: reading stats: %s\n", p->name, strerror(-err));
		abort();
	}
	*s = all[p->slot];
}

static __u64 sum(const __u64 *v, int n)
{
	__u64 t = 0;

	for (int i = 0; i < n; i++)
		t += v[i];
	return t;
}

/* The index of the one counter of @n that grew by one, -1 if not exactly one did. */
static int grew(const __u64 *now, const __u64 *before, int n)
{
	int at = -1;

	for (int i = 0; i < n; i++) {
		if (now[i] == before[i])
			continue;
		if (now[i] != before[i] + 1 || at >= 0)
			return -1;
		at = i;
	}
	return at;
}

/* One test run of @p on a frame; 0 or -errno (the verdict does not matter here). */
static int run(struct prog *p, const uint8_t *data, size_t size)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = data, .data_size_in = (__u32)size,
		    .repeat = 1);

	return bpf_prog_test_run_opts(p->fd, &t) ? -errno : 0;
}

static void fail(const struct prog *p, size_t size, const char *what)
{
	fprintf(stderr, "fuzz_xdp: %s, %zu-byte frame: %s\n", p->name, size, what);
	abort();
}

/*
 * Frames BPF_PROG_TEST_RUN refuses (EINVAL): shorter than an Ethernet header,
 * longer than the program takes, and for skb (tc) runs IPv4 or IPv6 frames
 * that end inside the IP header (the kernel reads the addresses for its
 * socket).
 */
static bool refused(const struct prog *p, const uint8_t *data, size_t size)
{
	__u16 proto;

	if (size < ETH_HLEN_ || size > p->max_len)
		return true;
	if (p->slot == PL_SLOT_XDP_IN)
		return false;
	proto = (__u16)(data[12] << 8 | data[13]);
	return (proto == 0x0800 && size < ETH_HLEN_ + 20) ||
	       (proto == 0x86dd && size < ETH_HLEN_ + 40);
}

static void check(struct prog *p, const uint8_t *data, size_t size)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = data, .data_size_in = (__u32)size,
		    .repeat = 1);
	const struct pl_stats *b = &p->last;
	struct pl_stats s;
	int l3, l4, err = 0;
	char why[160];

	if (bpf_prog_test_run_opts(p->fd, &t))
		err = -errno;
	read_slot(p, &s);
	if (err || refused(p, data, size)) {
		bool want = refused(p, data, size);

		snprintf(why, sizeof(why), "test run: %s (%s)", strerror(-err),
			 want ? "EINVAL expected" : "no error expected");
		if (!want || err != -EINVAL)
			fail(p, size, why);
		if (memcmp(&s, b, sizeof(s)))
			fail(p, size, "a refused frame was counted");
		return;
	}
	if (t.retval != p->retval) {
		snprintf(why, sizeof(why), "verdict %d, not %d", (int)t.retval, (int)p->retval);
		fail(p, size, why);
	}
	if (sum(s.pkts, PL_VERDICT_MAX) != sum(b->pkts, PL_VERDICT_MAX) + 1 ||
	    s.pkts[PL_VERDICT_PASS] != b->pkts[PL_VERDICT_PASS] + 1)
		fail(p, size, "not counted as exactly one passed packet");
	if (sum(s.bytes, PL_VERDICT_MAX) != sum(b->bytes, PL_VERDICT_MAX) + size ||
	    s.bytes[PL_VERDICT_PASS] != b->bytes[PL_VERDICT_PASS] + size)
		fail(p, size, "bytes differ from the frame length");
	if (grew(s.rmon, b->rmon, PL_RMON_MAX) < 0 || grew(s.log2, b->log2, PL_LOG2_MAX) < 0)
		fail(p, size, "not in exactly one size bucket");
	l3 = grew(s.l3, b->l3, PL_L3_MAX);
	l4 = grew(s.l4, b->l4, PL_L4_MAX);
	if (l3 < 0 || l4 < 0)
		fail(p, size, "not in exactly one network and one transport protocol counter");
	if (s.nomatch_pkts != b->nomatch_pkts || s.filter_pkts != b->filter_pkts)
		fail(p, size, "counted as judged by a policy or a filter that is not there");
	if (s.vlan2 - b->vlan2 > s.vlan - b->vlan || s.vlan - b->vlan > 1 ||
	    s.ip_frags - b->ip_frags > 1 || s.ip_opts - b->ip_opts > 1 ||
	    (s.parse_err - b->parse_err) + (s.truncated - b->truncated) > 1)
		fail(p, size, "a flag counter grew by more than one");
	if ((s.flow_lost_pkts - b->flow_lost_pkts) > 1)
		fail(p, size, "flow_lost_pkts grew by more than one");
	kcov[p - progs][l3][l4][(s.vlan - b->vlan) | (s.vlan2 - b->vlan2) << 1 |
				(s.ip_frags - b->ip_frags) << 2 | (s.ip_opts - b->ip_opts) << 3]
		[s.parse_err != b->parse_err ? 1 : s.truncated != b->truncated ? 2 : 0]++;
	p->last = s;
}

/* The packets of @st's flows per slot, plus what was not recorded in flows, are its packets. */
static void check_flows(const struct pl_state *st, const char *when)
{
	__u64 in_flows[PL_SLOT_MAX] = {};
	struct pl_stats s[PL_SLOT_MAX];
	struct pl_flow *fl = NULL;
	size_t n = 0;
	int err = pl_state_flows(st, &fl, &n) ?: pl_state_stats(st, s);

	if (err) {
		fprintf(stderr, "fuzz_xdp: reading flows %s: %s\n", when, strerror(-err));
		abort();
	}
	for (size_t i = 0; i < n; i++)
		in_flows[pl_flow_slot(&fl[i].key)] += fl[i].val.packets;
	free(fl);
	for (int sl = 0; sl < PL_SLOT_MAX; sl++)
		if (in_flows[sl] + s[sl].flow_lost_pkts != sum(s[sl].pkts, PL_VERDICT_MAX)) {
			fprintf(stderr, "fuzz_xdp: slot %d %s: %llu in flows + %llu lost != %llu "
				"packets\n", sl, when, (unsigned long long)in_flows[sl],
				(unsigned long long)s[sl].flow_lost_pkts,
				(unsigned long long)sum(s[sl].pkts, PL_VERDICT_MAX));
			abort();
		}
}

/* stats --reset: prints what was counted since the last one, then counts from zero. */
static void reset(struct pl_state *st)
{
	struct pl_stats printed[PL_SLOT_MAX], zero = {};

	check_flows(st, "before a reset");
	if (pl_state_reset(st, printed)) {
		fprintf(stderr, "fuzz_xdp: reset failed\n");
		abort();
	}
	for (int i = 0; i < P_MAX; i++) {
		struct prog *p = &progs[i];
		struct pl_stats now;

		if (p->st != st)
			continue;
		if (memcmp(&printed[p->slot], &p->last, sizeof(zero)))
			fail(p, 0, "a reset printed other counters than those since the last one");
		read_slot(p, &now);
		if (memcmp(&now, &zero, sizeof(zero)))
			fail(p, 0, "counters not at zero after a reset");
		p->last = zero;
	}
	check_flows(st, "after a reset");
}

/* The longest frame @p's kernel test run takes (BPF_PROG_TEST_RUN refuses longer ones). */
static __u32 longest(struct prog *p)
{
	static uint8_t zero[MAX_FRAME];
	__u32 lo = ETH_HLEN_, hi = MAX_FRAME;

	if (run(p, zero, lo)) {
		fprintf(stderr, "fuzz_xdp: %s: a %u-byte frame fails: %s\n", p->name, lo,
			strerror(-run(p, zero, lo)));
		exit(1);
	}
	while (lo < hi) {
		__u32 mid = lo + (hi - lo + 1) / 2;

		if (!run(p, zero, mid))
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	libbpf_set_print(silent);
	xdp = pktlens_xdp__open();
	tc = pktlens_tc__open();
	/*
	 * The smallest flow cache (its default pl_flow_cache_bits) for every
	 * CPU: collisions, idle slots and folds come soon.
	 */
	if (xdp && tc &&
	    (pl_obj_kernel(xdp->obj) || pl_obj_kernel(tc->obj) ||
	     pl_flow_cache_set(xdp->obj, PL_FLOW_CACHE_MIN_BITS) ||
	     pl_flow_cache_set(tc->obj, PL_FLOW_CACHE_MIN_BITS) ||
	     pktlens_xdp__load(xdp) || pktlens_tc__load(tc)))
		xdp = NULL;
	if (!xdp || !tc) {
		fprintf(stderr, "fuzz_xdp: cannot load the packet programs: %s (root needed)\n",
			strerror(errno));
		exit(1);
	}
	progs[P_XDP] = (struct prog){ "pktlens_xdp", bpf_program__fd(xdp->progs.pktlens_xdp),
				      .slot = PL_SLOT_XDP_IN, .retval = XDP_PASS_ };
	progs[P_XDP_SKB] = (struct prog){ "pktlens_xdp_skb",
					  bpf_program__fd(xdp->progs.pktlens_xdp_skb),
					  .slot = PL_SLOT_XDP_IN, .retval = XDP_PASS_ };
	progs[P_TC_IN] = (struct prog){ "pktlens_tc_in", bpf_program__fd(tc->progs.pktlens_tc_in),
					.slot = PL_SLOT_TC_IN, .retval = TC_ACT_UNSPEC_ };
	progs[P_TC_OUT] = (struct prog){ "pktlens_tc_out",
					 bpf_program__fd(tc->progs.pktlens_tc_out),
					 .slot = PL_SLOT_TC_OUT, .retval = TC_ACT_UNSPEC_ };
	xdp_st = (struct pl_state){ .stats_fd = bpf_map__fd(xdp->maps.stats),
				    .flows_fd = bpf_map__fd(xdp->maps.flows),
				    .cache_fd = bpf_map__fd(xdp->maps.flow_cache), .meta_fd = -1 };
	tc_st = (struct pl_state){ .stats_fd = bpf_map__fd(tc->maps.stats),
				   .flows_fd = bpf_map__fd(tc->maps.flows),
				   .cache_fd = bpf_map__fd(tc->maps.flow_cache), .meta_fd = -1 };
	for (int i = 0; i < P_MAX; i++) {
		struct prog *p = &progs[i];

		p->st = i < P_TC_IN ? &xdp_st : &tc_st;
		p->max_len = longest(p);
	}
	/* after every probe run: both XDP programs count in one slot */
	for (int i = 0; i < P_MAX; i++)
		read_slot(&progs[i], &progs[i].last);
	fprintf(stderr, "fuzz_xdp: longest frames: xdp %u, xdp_skb %u, tc_in %u, tc_out %u\n",
		progs[P_XDP].max_len, progs[P_XDP_SKB].max_len, progs[P_TC_IN].max_len,
		progs[P_TC_OUT].max_len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned inputs;

	if (size > MAX_FRAME)
		return 0;
	if (++inputs % RESET_EVERY == 0) {
		reset(&xdp_st);
		reset(&tc_st);
	}
	for (int i = 0; i < P_MAX; i++) {
		check(&progs[i], data, size);
		/* pktlens_xdp and pktlens_xdp_skb count in one slot */
		if (i == P_XDP || i == P_XDP_SKB)
			read_slot(&progs[i == P_XDP ? P_XDP_SKB : P_XDP],
				  &progs[i == P_XDP ? P_XDP_SKB : P_XDP].last);
	}
	return 0;
}
