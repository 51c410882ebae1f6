// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_bench: ns per packet of the pktlens XDP program under BPF_PROG_TEST_RUN,
 * against a floor measured the same way in the same run.
 *
 *   xdp_bench [--json[=FILE]] [--rounds N] [--repeat N] [--flows N] [--cpu N]
 *             [--clock wall|kernel] [--zipf-s S] [--cycle-obj FILE]
 *             [--obj FILE.bpf.o [--prog NAME]]
 *
 * Frames are built here: 64 B IPv4/UDP, 1514 B IPv4/TCP (a 1500-byte IP
 * packet) and 128 B IPv6/UDP. Flow i has source address 198.18.0.0 + i + 1
 * (IPv6: 2001:db8::i+1) and source port 1024 + i % 16384. Cases, each timed
 * for pktlens and for its floor, alternating, in every round:
 *
 *  repeat      1 flow; a call with .repeat = R (default 1e6) of pktlens_xdp
 *              and of bench_xdp_pass (bare XDP_PASS). ns = (wall(R) -
 *              wall(2)) / (R - 2), wall(2) being the same call with repeat
 *              = 2 just before: a call with repeat > 1 has a fixed cost of
 *              ~1.4 ms (the kernel swaps the program into the XDP
 *              dispatcher), 1.4 ns/pkt at R = 1e6, which this removes. The
 *              kernel's `duration` excludes it too but is an integer
 *              (truncated) average; it is kept in the JSON as a cross-check.
 *              --clock kernel times every long call by that duration instead:
 *              the kernel stops its clock while the test run is scheduled
 *              out, so on a busy host it is the steadier measure.
 *  rotate      1 or F flows (F = --flows, default 100000); timed like repeat,
 *              running bench_xdp_cycle (bench/cycle.bpf.c), which rewrites
 *              the frame to the next flow on every run and then tail-calls
 *              pktlens_xdp, or for the floor bench_xdp_pass_frags.
 *  zipf        F flows drawn from a Zipf distribution (s = --zipf-s, default
 *              1.1, a fixed seed; rank r has weight 1 / r^s, ranks placed on
 *              flows by a fixed shuffle): 2^20 draws that bench_xdp_cycle
 *              reads in turn; timed like rotate. Real traffic is heavy-tailed.
 *  tc          1 flow; timed like repeat, of pktlens_tc_in (tc/) against
 *              bench_tc_ok (returns TC_ACT_OK) as sched_cls programs: the
 *              kernel builds an skb around the frame for every run, so the
 *              floor is larger than XDP's.
 *  call        1 or F flows; F calls with .repeat = 1, call i carrying flow
 *              i, pktlens and bench_xdp_pass alternating call by call;
 *              ns = sum of the kernel-reported `duration` / F. Each call
 *              enters the kernel, so caches and TLB start cold-ish: an upper
 *              bound, and the floor here is mostly the kernel's own timing.
 *
 * In the rotate and zipf cases the references of issue 19 (bench/flowmon.bpf.c)
 * run through the same driver in the same round: a conventional flow monitor
 * (5-tuple PERCPU_HASH, updated in place, insert on a miss, ktime) and the
 * memory limit (one access into a per-CPU array of F + 1 cache lines); the
 * four programs take turns in a rotating order.
 *
 * Before the rounds one "call" pass over F flows inserts them into the table;
 * it is reported as "first sight". ratio = pktlens / floor of the same round;
 * the table shows medians over rounds and the min..max of the ratio. The
 * process is pinned to one CPU so the per-CPU flow cache is always the same.
 * The flow table is sized to hold every flow (F + 1), so nothing is lost; the
 * run ends with checks read back from the maps (every packet counted once, no
 * flow lost, F + 1 table entries, every retval XDP_PASS or for tc
 * TC_ACT_UNSPEC / TC_ACT_OK, every tc run counted on tc ingress) and fails if
 * one does not hold.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "pktlens_xdp.skel.h"
#include "pktlens_tc.skel.h"
#include "pass.skel.h"
#include "../cli/util.h"
#include "../export/json.h"
#include "../loader/features.h"
#include "../loader/loader.h"

#define TARGET_SINGLE 2.0
#define TARGET_CYCLING 3.0
#define TARGET_CONV_SINGLE 0.4	/* issue 19: pktlens / conventional monitor, 1 flow */
#define TARGET_CONV_MANY 0.5	/* F flows, uniform and Zipf */
#define TARGET_MEMLIMIT 1.5	/* pktlens / memory-limit program, F flows */
#define SEQ_MAX (1U << 20)	/* bench/cycle.bpf.c */
#define MAX_ROUNDS 64
#define MAX_FRAME 1514
#define MAX_FLOWS 131000	/* source addresses in 198.18.0.0/15 */
#define SINGLE_FLOW MAX_FLOWS	/* the "1 flow" of repeat and call: not one of F */
#define V4_BASE (198u << 24 | 18u << 16)

enum frame_kind {
	FR_V4_UDP_64 = 0,
	FR_V4_TCP_1514,
	FR_V6_UDP_128,
	FR_MAX,
};

static const struct frame_desc {
	const char *name;	/* JSON */
	const char *label;	/* table */
	unsigned int len;
	unsigned int addr_off;	/* low 4 bytes of the source address */
	unsigned int port_off;	/* source port */
} frames[FR_MAX] = {
	[FR_V4_UDP_64] = { "ipv4_udp_64", "IPv4/UDP   64 B", 64, 26, 34 },
	[FR_V4_TCP_1514] = { "ipv4_tcp_1514", "IPv4/TCP 1514 B", 1514, 26, 34 },
	[FR_V6_UDP_128] = { "ipv6_udp_128", "IPv6/UDP  128 B", 128, 34, 54 },
};

enum bench_case {
	C_REPEAT1 = 0,
	C_ROTATE1,
	C_ROTATEN,
	C_ZIPFN,
	C_CALL1,
	C_CALLN,
	C_MAX,
};

static const struct case_desc {
	const char *key;	/* JSON */
	const char *what;	/* table: method */
	const char *floor;	/* the floor program */
	bool many;		/* F flows */
	double target;		/* max ratio, 0: none */
} cases[C_MAX] = {
	[C_REPEAT1] = { "single_flow_repeat", "repeat", "bench_xdp_pass", false,
			TARGET_SINGLE },
	[C_ROTATE1] = { "single_flow_rotate", "rotate", "bench_xdp_cycle+pass", false,
			0 },
	[C_ROTATEN] = { "flows_rotate", "rotate", "bench_xdp_cycle+pass", true,
			TARGET_CYCLING },
	[C_ZIPFN] = { "flows_zipf", "zipf", "bench_xdp_cycle+pass", true, 0 },
	[C_CALL1] = { "single_flow_call", "call", "bench_xdp_pass", false, 0 },
	[C_CALLN] = { "flows_call", "call", "bench_xdp_pass", true, TARGET_CYCLING },
};

/* One round's numbers for one frame, ns/pkt. */
struct sample {
	double floor[C_MAX], prog[C_MAX];
	double conv[C_MAX], mem[C_MAX];	/* rotate, zipf: the references */
	double floor_k, prog_k;		/* repeat: the kernel's duration */
	double tc_floor, tc_prog;	/* tc: pktlens_tc_in vs bench_tc_ok */
};

struct summary {
	double ns, floor_ns, ratio, ratio_min, ratio_max;
};

struct checks {
	unsigned long long pkts, expected, flow_lost;
	unsigned long long tc_pkts, tc_expected;
	size_t entries;
	bool ok;
};

struct bench {
	struct pass *pass;
	struct pktlens_tc *tc;	/* all frames share it: only its counters are checked */
	int tc_floor_fd, tc_fd;
	unsigned long long tc_runs[FR_MAX];
	struct bpf_object *cycle, *obj[FR_MAX], *mon[FR_MAX];
	int conv_fd[FR_MAX], mem_fd[FR_MAX];
	const char *mon_file;
	double zipf_s;
	bool kernel_clock;	/* --clock kernel: ns = the kernel's duration */
	unsigned int seq_len;
	int floor_fd, floor_frags_fd, cycle_fd, cfg_fd, target_fd;
	int prog_fd[FR_MAX];
	const char *obj_file, *prog_name, *cycle_file;
	unsigned int rounds, flows, cpu;
	unsigned long long repeat;
	unsigned long long runs[FR_MAX];	/* packets run through pktlens, per object */
	unsigned long long bad_retval;
	unsigned char buf[MAX_FRAME];
	struct sample s[MAX_ROUNDS][FR_MAX];
	double ins_floor[FR_MAX], ins_prog[FR_MAX];
};

/* Must match bench/cycle.bpf.c. */
struct cycle_cfg {
	uint32_t flows, next, addr_off, port_off, addr_base, seq_len;
};

static void put16(unsigned char *p, unsigned int v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(unsigned char *p, unsigned int v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static void ipv4_csum(unsigned char *ip)
{
	unsigned int sum = 0;

	ip[10] = ip[11] = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (ip[i] << 8) | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, ~sum & 0xffff);
}

/* Frame @kind of flow @flow into @b. */
static void build_frame(unsigned char *b, enum frame_kind kind, unsigned int flow)
{
	const struct frame_desc *fd = &frames[kind];
	unsigned char *ip = b + 14, *l4;

	for (unsigned int i = 0; i < fd->len; i++)
		b[i] = (unsigned char)i;	/* payload; headers overwrite */
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	if (kind == FR_V6_UDP_128) {
		put16(b + 12, 0x86dd);
		memset(ip, 0, 40);
		ip[0] = 0x60;
		put16(ip + 4, fd->len - 14 - 40);
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, "\x20\x01\x0d\xb8", 4);		/* 2001:db8::flow+1 */
		memcpy(ip + 24, "\x20\x01\x0d\xb8\x00\x00\x00\x01", 8);
		ip[39] = 1;					/* 2001:db8:0:1::1 */
		l4 = ip + 40;
	} else {
		put16(b + 12, 0x0800);
		memset(ip, 0, 20);
		ip[0] = 0x45;
		put16(ip + 2, fd->len - 14);
		put16(ip + 6, 0x4000);				/* DF */
		ip[8] = 64;
		ip[9] = kind == FR_V4_TCP_1514 ? 6 : 17;
		put32(ip + 16, 198u << 24 | 19u << 16 | 1);	/* 198.19.0.1 */
		l4 = ip + 20;
	}
	memset(l4, 0, kind == FR_V4_TCP_1514 ? 20 : 8);
	if (kind == FR_V4_TCP_1514) {
		put16(l4 + 2, 5201);
		l4[7] = 1;		/* seq */
		l4[12] = 5 << 4;	/* data offset */
		l4[13] = 0x10;		/* ACK */
		put16(l4 + 14, 512);	/* window */
	} else {
		put16(l4 + 2, 9);
		put16(l4 + 4, fd->len - (unsigned int)(l4 - b));
	}
	/* the flow, exactly as bench_xdp_cycle writes it */
	put32(b + fd->addr_off, (kind == FR_V6_UDP_128 ? 1 : V4_BASE + 1) + flow);
	put16(b + fd->port_off, 1024 + (flow & 16383));
	if (kind != FR_V6_UDP_128)
		ipv4_csum(ip);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One test_run of @fd on b->buf; 0 or -errno, the kernel's duration in *d. */
static int run(struct bench *b, int fd, enum frame_kind k, unsigned long long repeat,
	       unsigned int *d)
{
	/* pktlens_tc_* return TC_ACT_UNSPEC (-1), bench_tc_ok TC_ACT_OK (0) */
	__u32 want = fd == b->tc_fd ? (__u32)-1 : fd == b->tc_floor_fd ? 0 : XDP_PASS;
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = b->buf, .data_size_in = frames[k].len,
		    .repeat = (int)repeat);

	if (bpf_prog_test_run_opts(fd, &t))
		return -errno;
	if (t.retval != want)
		b->bad_retval++;
	*d = t.duration;
	return 0;
}

/*
 * ns per run of @fd: a call with repeat = R minus the same call with repeat
 * = 2 just before (the fixed cost of a call), over R - 2. The kernel's
 * duration of the long call in *d.
 */
static int timed_run(struct bench *b, int fd, enum frame_kind k, double *ns, unsigned int *d)
{
	double t0, t1;
	int err;

	t0 = now_ns();
	err = run(b, fd, k, 2, d);
	t1 = now_ns();
	if (!err)
		err = run(b, fd, k, b->repeat, d);
	if (!err)
		*ns = b->kernel_clock ? *d : ((now_ns() - t1) - (t1 - t0)) / (b->repeat - 2);
	return err;
}

/*
 * repeat, rotate and zipf: one long call each of pktlens and the floor, and in
 * rotate and zipf of the two references too, in an order rotated by @r.
 */
static int measure_long(struct bench *b, enum frame_kind k, enum bench_case c, unsigned int r,
			struct sample *s)
{
	enum { P_PROG, P_FLOOR, P_CONV, P_MEM };
	const struct frame_desc *fd = &frames[k];
	struct cycle_cfg cfg = {
		.flows = cases[c].many ? b->flows : 1,
		.addr_off = fd->addr_off,
		.port_off = fd->port_off,
		.addr_base = k == FR_V6_UDP_128 ? 1 : V4_BASE + 1,
		.seq_len = c == C_ZIPFN ? b->seq_len : 0,
	};
	unsigned int d, zero = 0, n = c == C_REPEAT1 ? 2 : 4;
	double ns;
	int err;

	build_frame(b->buf, k, c == C_REPEAT1 ? SINGLE_FLOW : 0);
	for (unsigned int i = 0; i < n; i++) {
		unsigned int who = (i + r) % n;
		int fd_run = who == P_PROG ? b->prog_fd[k] : b->floor_fd;
		double *out[] = { &s->prog[c], &s->floor[c], &s->conv[c], &s->mem[c] };

		if (c != C_REPEAT1) {
			int target[] = { b->prog_fd[k], b->floor_frags_fd, b->conv_fd[k], b->mem_fd[k] };

			if (bpf_map_update_elem(b->cfg_fd, &zero, &cfg, BPF_ANY) ||
			    bpf_map_update_elem(b->target_fd, &zero, &target[who], BPF_ANY))
				return -errno;
			fd_run = b->cycle_fd;
		}
		err = timed_run(b, fd_run, k, &ns, &d);
		if (err)
			return err;
		*out[who] = ns;
		if (who == P_PROG)
			b->runs[k] += b->repeat + 2;
		if (c == C_REPEAT1 && who <= P_FLOOR)
			*(who == P_PROG ? &s->prog_k : &s->floor_k) = d;
	}
	return 0;
}

/* The references see every one of the F flows once before the rounds (inserts). */
static int warm_refs(struct bench *b, enum frame_kind k)
{
	const struct frame_desc *fd = &frames[k];
	struct cycle_cfg cfg = {
		.flows = b->flows,
		.addr_off = fd->addr_off,
		.port_off = fd->port_off,
		.addr_base = k == FR_V6_UDP_128 ? 1 : V4_BASE + 1,
	};
	int target[] = { b->conv_fd[k], b->mem_fd[k] };
	unsigned int d, zero = 0;

	build_frame(b->buf, k, 0);
	for (int i = 0; i < 2; i++) {
		int err;

		if (bpf_map_update_elem(b->cfg_fd, &zero, &cfg, BPF_ANY) ||
		    bpf_map_update_elem(b->target_fd, &zero, &target[i], BPF_ANY))
			return -errno;
		err = run(b, b->cycle_fd, k, b->flows, &d);
		if (err)
			return err;
	}
	return 0;
}

/* tc: like repeat, pktlens_tc_in against bench_tc_ok, in @flip order. */
static int measure_tc(struct bench *b, enum frame_kind k, bool flip, struct sample *s)
{
	unsigned int d;
	int err;

	build_frame(b->buf, k, SINGLE_FLOW);
	for (int i = 0; i < 2; i++) {
		bool prog = (i == 0) == flip;

		err = timed_run(b, prog ? b->tc_fd : b->tc_floor_fd, k,
				prog ? &s->tc_prog : &s->tc_floor, &d);
		if (err)
			return err;
		if (prog)
			b->tc_runs[k] += b->repeat + 2;
	}
	return 0;
}

/* call: F pairs of .repeat = 1 calls, floor and pktlens alternating. */
static int measure_calls(struct bench *b, enum frame_kind k, bool many, double *floor_ns,
			 double *prog_ns)
{
	unsigned long long fsum = 0, psum = 0;
	unsigned int d;
	int err;

	build_frame(b->buf, k, SINGLE_FLOW);
	for (unsigned int i = 0; i < b->flows; i++) {
		if (many)
			build_frame(b->buf, k, i);
		for (unsigned int j = 0; j < 2; j++) {
			bool prog = j == (i & 1);

			err = run(b, prog ? b->prog_fd[k] : b->floor_fd, k, 1, &d);
			if (err)
				return err;
			*(prog ? &psum : &fsum) += d;
		}
	}
	b->runs[k] += b->flows;
	*floor_ns = (double)fsum / b->flows;
	*prog_ns = (double)psum / b->flows;
	return 0;
}

static int measure_round(struct bench *b, unsigned int r)
{
	int err = 0;

	/* rotate the frame order and flip floor/pktlens order every round */
	for (unsigned int i = 0; i < FR_MAX && !err; i++) {
		enum frame_kind k = (i + r) % FR_MAX;
		struct sample *s = &b->s[r][k];

		err = measure_long(b, k, C_REPEAT1, r, s);
		if (!err)
			err = measure_long(b, k, C_ROTATE1, r, s);
		if (!err)
			err = measure_long(b, k, C_ROTATEN, r, s);
		if (!err)
			err = measure_long(b, k, C_ZIPFN, r, s);
		if (!err)
			err = measure_calls(b, k, false, &s->floor[C_CALL1], &s->prog[C_CALL1]);
		if (!err)
			err = measure_calls(b, k, true, &s->floor[C_CALLN], &s->prog[C_CALLN]);
		if (!err && b->tc)
			err = measure_tc(b, k, r & 1, s);
	}
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Medians over @n rounds of program @p and floor @f; sorts them. */
static void summarize_rounds(double *p, double *f, unsigned int n, struct summary *out)
{
	double r[MAX_ROUNDS];

	for (unsigned int i = 0; i < n; i++)
		r[i] = p[i] / f[i];
	out->ns = median(p, n);
	out->floor_ns = median(f, n);
	out->ratio = median(r, n);
	out->ratio_min = r[0];
	out->ratio_max = r[n - 1];
}

/* pktlens against the program whose ns per round are struct sample's array at @ref */
static void summarize_vs(const struct bench *b, enum frame_kind k, enum bench_case c,
			 size_t ref, struct summary *out)
{
	double p[MAX_ROUNDS], f[MAX_ROUNDS];

	for (unsigned int i = 0; i < b->rounds; i++) {
		p[i] = b->s[i][k].prog[c];
		f[i] = ((const double *)((const char *)&b->s[i][k] + ref))[c];
	}
	summarize_rounds(p, f, b->rounds, out);
}

static void summarize(const struct bench *b, enum frame_kind k, enum bench_case c,
		      struct summary *out)
{
	summarize_vs(b, k, c, offsetof(struct sample, floor), out);
}

static void summarize_tc(const struct bench *b, enum frame_kind k, struct summary *out)
{
	double p[MAX_ROUNDS], f[MAX_ROUNDS];

	for (unsigned int i = 0; i < b->rounds; i++) {
		p[i] = b->s[i][k].tc_prog;
		f[i] = b->s[i][k].tc_floor;
	}
	summarize_rounds(p, f, b->rounds, out);
}

/* Every run of pktlens_tc_in, whatever the frame, counted once on tc ingress. */
static int read_tc_checks(const struct bench *b, struct checks *c)
{
	struct pl_stats s[PL_SLOT_MAX];
	struct pl_state st = {
		.stats_fd = bpf_map__fd(b->tc->maps.stats),
		.flows_fd = -1, .cache_fd = -1, .meta_fd = -1,
	};
	int err = pl_state_stats(&st, s);

	if (err)
		return err;
	c->tc_pkts = s[PL_SLOT_TC_IN].pkts[PL_VERDICT_PASS];
	c->tc_expected = 0;
	for (int k = 0; k < FR_MAX; k++)
		c->tc_expected += b->tc_runs[k];
	return 0;
}

static int read_checks(const struct bench *b, enum frame_kind k, struct checks *c)
{
	struct pl_stats s[PL_SLOT_MAX];
	struct pl_state st = {
		.stats_fd = bpf_object__find_map_fd_by_name(b->obj[k], PL_MAP_STATS),
		.flows_fd = bpf_object__find_map_fd_by_name(b->obj[k], PL_MAP_FLOWS),
		.cache_fd = bpf_object__find_map_fd_by_name(b->obj[k], PL_MAP_FLOW_CACHE),
		.meta_fd = bpf_object__find_map_fd_by_name(b->obj[k], PL_MAP_META),
	};
	int err;

	if (st.stats_fd < 0 || st.flows_fd < 0)
		return -ENOENT;
	err = pl_state_stats(&st, s);
	if (!err)
		err = pl_state_flow_count(&st, &c->entries);
	if (err)
		return err;
	c->pkts = s[PL_SLOT_XDP_IN].pkts[PL_VERDICT_PASS];
	c->expected = b->runs[k];
	c->flow_lost = s[PL_SLOT_XDP_IN].flow_lost;
	c->ok = c->pkts == c->expected && !c->flow_lost && c->entries == b->flows + 1ULL &&
		!b->bad_retval;
	return 0;
}

static void print_row(FILE *f, const char *frame, const char *what, const struct summary *s,
		      double target)
{
	char t[24] = "";

	if (target > 0)
		snprintf(t, sizeof(t), "<= %.1fx %s", target, s->ratio <= target ? "met" : "MISSED");
	fprintf(f, "%-16s %-24s %8.1f %8.1f %8.1f %7.2fx %6.2f..%-6.2f %s\n", frame, what, s->ns,
		s->floor_ns, s->ns - s->floor_ns, s->ratio, s->ratio_min, s->ratio_max, t);
}

static void json_summary(struct jw *w, const char *key, const struct summary *s,
			 const struct case_desc *c)
{
	jw_key(w, key);
	jw_obj_open(w);
	jw_fixed_field(w, "ns_per_pkt", s->ns, 2);
	jw_fixed_field(w, "floor_ns_per_pkt", s->floor_ns, 2);
	jw_fixed_field(w, "ratio", s->ratio, 3);
	jw_fixed_field(w, "ratio_min", s->ratio_min, 3);
	jw_fixed_field(w, "ratio_max", s->ratio_max, 3);
	if (c) {
		jw_str_field(w, "floor_prog", c->floor);
		if (c->target > 0) {
			jw_double_field(w, "target_ratio", c->target);
			jw_bool_field(w, "met", s->ratio <= c->target);
		}
	}
	jw_obj_close(w);
}

/* Entries of frame @k's conventional monitor: every one of the F flows, once. */
static size_t mon_entries(const struct bench *b, enum frame_kind k)
{
	int fd = bpf_object__find_map_fd_by_name(b->mon[k], "mon_flows");
	unsigned char key[64], next[64];
	size_t n = 0;

	if (fd < 0)
		return 0;
	for (void *prev = NULL; !bpf_map_get_next_key(fd, prev, next); prev = key, n++)
		memcpy(key, next, sizeof(key));
	return n;
}

/* The rotate and zipf cases against the references: pktlens / conventional, / memory limit. */
struct refs {
	struct summary conv, mem;
	double conv_target;
	bool met;
};

static void summarize_refs(const struct bench *b, enum frame_kind k, enum bench_case c,
			   struct refs *out)
{
	summarize_vs(b, k, c, offsetof(struct sample, conv), &out->conv);
	summarize_vs(b, k, c, offsetof(struct sample, mem), &out->mem);
	out->conv_target = cases[c].many ? TARGET_CONV_MANY : TARGET_CONV_SINGLE;
	out->met = out->conv.ratio <= out->conv_target &&
		   (!cases[c].many || out->mem.ratio <= TARGET_MEMLIMIT);
}

/* The memory limit against the conventional monitor: the least ratio to it an exact counter gets. */
static double least_ratio(const struct refs *f)
{
	return f->conv.floor_ns > 0 ? f->mem.floor_ns / f->conv.floor_ns : 0;
}

static bool has_refs(enum bench_case c)
{
	return c == C_ROTATE1 || c == C_ROTATEN || c == C_ZIPFN;
}

/* Table to @tf and/or JSON to @jf; returns whether the checks passed. */
static bool report(const struct bench *b, FILE *tf, FILE *jf)
{
	struct summary sum[FR_MAX][C_MAX], ins[FR_MAX], tc[FR_MAX];
	struct refs refs[FR_MAX][C_MAX] = {};
	bool refs_met = true, reachable = true;
	struct checks ck[FR_MAX] = {}, tck = {};
	bool met[C_MAX] = {}, all_ok = true;
	struct utsname u;
	struct jw w;

	uname(&u);
	for (int c = 0; c < C_MAX; c++)
		met[c] = true;
	for (int k = 0; k < FR_MAX; k++) {
		for (int c = 0; c < C_MAX; c++) {
			summarize(b, k, c, &sum[k][c]);
			met[c] &= sum[k][c].ratio <= cases[c].target;
			if (has_refs(c)) {
				summarize_refs(b, k, c, &refs[k][c]);
				refs_met &= refs[k][c].met;
			}
		}
		if (!b->obj_file && mon_entries(b, k) != b->flows)
			all_ok = false;
		ins[k] = (struct summary){
			.ns = b->ins_prog[k], .floor_ns = b->ins_floor[k],
			.ratio = b->ins_prog[k] / b->ins_floor[k],
		};
		ins[k].ratio_min = ins[k].ratio_max = ins[k].ratio;
		if (!b->obj_file && read_checks(b, k, &ck[k]))
			ck[k].ok = false;
		all_ok &= b->obj_file || ck[k].ok;
		summarize_tc(b, k, &tc[k]);
	}
	if (read_tc_checks(b, &tck))
		all_ok = false;
	all_ok &= tck.tc_pkts == tck.tc_expected;

	if (tf) {
		fprintf(tf, "xdp_bench: kernel %s, %ld CPUs, pinned to CPU %u, median of %u rounds, "
			"F = %u flows, R = %llu\n", u.release, sysconf(_SC_NPROCESSORS_ONLN), b->cpu,
			b->rounds, b->flows, b->repeat);
		if (b->obj_file)
			fprintf(tf, "variant: %s, program %s\n", b->obj_file, b->prog_name);
		if (b->kernel_clock)
			fprintf(tf, "clock: the kernel's duration of each long call (--clock kernel)\n");
		fprintf(tf, "  repeat: test_run with repeat=R; floor bench_xdp_pass; "
			"ns = (wall(R) - wall(2)) / (R - 2)\n"
			"  rotate: the same, of bench_xdp_cycle (next flow, then tail call); floor "
			"= it\n          tail-calling bench_xdp_pass_frags\n"
			"  call:   F test_runs, repeat=1, alternating with bench_xdp_pass; "
			"ns = sum(duration) / F\n"
			"  tc:     as repeat, of pktlens_tc_in; floor bench_tc_ok (sched_cls)\n"
			"  net = ns - floor; ratio = ns / floor per round: median, min..max\n\n");
		fprintf(tf, "%-16s %-24s %8s %8s %8s %8s %-14s %s\n", "frame", "case", "ns/pkt",
			"floor", "net", "ratio", "ratio range", "target");
		for (int k = 0; k < FR_MAX; k++) {
			char what[40];

			for (int c = 0; c < C_MAX; c++) {
				if (cases[c].many)
					snprintf(what, sizeof(what), "%u flows, %s", b->flows,
						 cases[c].what);
				else
					snprintf(what, sizeof(what), "1 flow, %s", cases[c].what);
				print_row(tf, c ? "" : frames[k].label, what, &sum[k][c],
					  cases[c].target);
			}
			snprintf(what, sizeof(what), "%u new flows, call", b->flows);
			print_row(tf, "", what, &ins[k], 0);
			print_row(tf, "", "tc: 1 flow, repeat", &tc[k], 0);
		}
		fprintf(tf, "\nchecks: ");
		for (int k = 0; k < FR_MAX && !b->obj_file; k++)
			fprintf(tf, "%s %llu/%llu pkts counted, %llu flows lost, %zu entries; ",
				frames[k].name, ck[k].pkts, ck[k].expected, ck[k].flow_lost,
				ck[k].entries);
		fprintf(tf, "tc %llu/%llu pkts counted; ", tck.tc_pkts, tck.tc_expected);
		fprintf(tf, "bad retvals %llu: %s\n", b->bad_retval,
			b->obj_file ? "(variant: counts not checked)" : all_ok ? "ok" : "FAILED");
		fprintf(tf, "targets: 1 flow <= %.1fx: %s; %u flows <= %.1fx: rotate %s, call %s\n",
			TARGET_SINGLE, met[C_REPEAT1] ? "met" : "NOT met", b->flows, TARGET_CYCLING,
			met[C_ROTATEN] ? "met" : "NOT met", met[C_CALLN] ? "met" : "NOT met");
		fprintf(tf, "\nagainst the references (bench/flowmon.bpf.c), same driver, same round "
			"(Zipf s = %.2f, %u draws):\n%-16s %-16s %8s %8s %8s %-16s %-16s %-8s %s\n",
			b->zipf_s, b->seq_len, "frame", "case", "pktlens", "conv.", "memlim.",
			"/conv. (range)", "/memlim. (range)", "least", "targets (issue 19)");
		for (int k = 0; k < FR_MAX; k++) {
			for (int c = 0; c < C_MAX; c++) {
				const struct refs *f = &refs[k][c];
				char t[48], r1[24], r2[24];

				if (!has_refs(c))
					continue;
				snprintf(r1, sizeof(r1), "%.2f (%.2f..%.2f)", f->conv.ratio,
					 f->conv.ratio_min, f->conv.ratio_max);
				snprintf(r2, sizeof(r2), "%.2f (%.2f..%.2f)", f->mem.ratio,
					 f->mem.ratio_min, f->mem.ratio_max);
				if (cases[c].many)
					snprintf(t, sizeof(t), "<= %.1f, <= %.1f %s", f->conv_target,
						 TARGET_MEMLIMIT, f->met ? "met" : "MISSED");
				else
					snprintf(t, sizeof(t), "<= %.1f %s", f->conv_target,
						 f->met ? "met" : "MISSED");
				fprintf(tf, "%-16s %-16s %8.1f %8.1f %8.1f %-16s %-16s %-8.2f %s\n",
					c == C_ROTATE1 ? frames[k].label : "",
					cases[c].many ? cases[c].what : "1 flow",
					f->conv.ns, f->conv.floor_ns, f->mem.floor_ns, r1, r2,
					least_ratio(f), t);
				reachable &= least_ratio(f) <= f->conv_target;
			}
		}
		fprintf(tf, "least: memlim. / conv., what a program that only parses, hashes the "
			"5-tuple and adds to\n  one line gets against the conventional monitor: the "
			"least any exact per-flow counter\n  can get on this host\n");
		if (!reachable)
			fprintf(tf, "  (a /conv. target is below it here: out of reach of any exact "
				"counter)\n");
		fprintf(tf, "targets against the references: %s\n", refs_met ? "met" : "NOT met");
	}
	if (!jf)
		return all_ok;

	jw_init(&w, jf, false);
	jw_obj_open(&w);
	jw_str_field(&w, "kernel", u.release);
	jw_i64_field(&w, "cpus", sysconf(_SC_NPROCESSORS_ONLN));
	jw_u64_field(&w, "pinned_cpu", b->cpu);
	jw_u64_field(&w, "rounds", b->rounds);
	jw_u64_field(&w, "repeat", b->repeat);
	jw_u64_field(&w, "flows", b->flows);
	jw_str_field(&w, "clock", b->kernel_clock ? "kernel" : "wall");
	jw_double_field(&w, "zipf_s", b->zipf_s);
	jw_u64_field(&w, "zipf_draws", b->seq_len);
	jw_str_field(&w, "object", b->obj_file ? b->obj_file : "pktlens_xdp.bpf.o");
	jw_str_field(&w, "prog", b->prog_name);
	jw_key(&w, "method");
	jw_obj_open(&w);
	jw_str_field(&w, "repeat", "test_run with repeat=R; ns = (wall(R) - wall(2)) / (R - 2), "
		     "wall(2) an adjacent call with repeat=2 (removes the fixed cost of a call)");
	jw_str_field(&w, "rotate", "as repeat, running bench_xdp_cycle, which rewrites the "
		     "frame to the next flow and tail-calls the program");
	jw_str_field(&w, "call", "F test_runs with repeat=1, call i carrying flow i, "
		     "alternating with the floor; ns = sum of kernel duration / F");
	jw_str_field(&w, "tc", "as repeat, pktlens_tc_in against bench_tc_ok (sched_cls)");
	jw_str_field(&w, "ratio", "pktlens / floor of the same round, median over rounds");
	jw_obj_close(&w);
	jw_key(&w, "results");
	jw_arr_open(&w);
	for (int k = 0; k < FR_MAX; k++) {
		double kp[MAX_ROUNDS], kf[MAX_ROUNDS];

		for (unsigned int i = 0; i < b->rounds; i++) {
			kp[i] = b->s[i][k].prog_k;
			kf[i] = b->s[i][k].floor_k;
		}
		jw_obj_open(&w);
		jw_str_field(&w, "frame", frames[k].name);
		jw_u64_field(&w, "len", frames[k].len);
		for (int c = 0; c < C_MAX; c++)
			json_summary(&w, cases[c].key, &sum[k][c], &cases[c]);
		jw_fixed_field(&w, "single_flow_repeat_kernel_duration_ns", median(kp, b->rounds), 1);
		jw_fixed_field(&w, "floor_repeat_kernel_duration_ns", median(kf, b->rounds), 1);
		json_summary(&w, "new_flows_call", &ins[k], NULL);
		for (int c = 0; c < C_MAX; c++) {
			char key[64];

			if (!has_refs(c))
				continue;
			snprintf(key, sizeof(key), "%s_vs_conventional", cases[c].key);
			json_summary(&w, key, &refs[k][c].conv, NULL);
			snprintf(key, sizeof(key), "%s_vs_memlimit", cases[c].key);
			json_summary(&w, key, &refs[k][c].mem, NULL);
			snprintf(key, sizeof(key), "%s_memlimit_vs_conventional", cases[c].key);
			jw_fixed_field(&w, key, least_ratio(&refs[k][c]), 3);
		}
		json_summary(&w, "tc_single_flow_repeat", &tc[k], NULL);
		if (!b->obj_file) {
			jw_key(&w, "checks");
			jw_obj_open(&w);
			jw_u64_field(&w, "pkts_counted", ck[k].pkts);
			jw_u64_field(&w, "pkts_run", ck[k].expected);
			jw_u64_field(&w, "flow_lost", ck[k].flow_lost);
			jw_u64_field(&w, "table_entries", ck[k].entries);
			jw_obj_close(&w);
		}
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	jw_u64_field(&w, "tc_pkts_counted", tck.tc_pkts);
	jw_u64_field(&w, "tc_pkts_run", tck.tc_expected);
	jw_u64_field(&w, "bad_retvals", b->bad_retval);
	jw_bool_field(&w, "checks_ok", all_ok);
	jw_key(&w, "targets_met");
	jw_obj_open(&w);
	jw_bool_field(&w, "single_flow_repeat", met[C_REPEAT1]);
	jw_bool_field(&w, "flows_rotate", met[C_ROTATEN]);
	jw_bool_field(&w, "flows_call", met[C_CALLN]);
	jw_bool_field(&w, "against_references", refs_met);
	jw_obj_close(&w);
	jw_obj_close(&w);
	jw_end(&w);
	return all_ok;
}

/* pktlens_xdp as built (the skeleton's ELF), or the --obj variant. */
static struct bpf_object *open_obj(const struct bench *b)
{
	LIBBPF_OPTS(bpf_object_open_opts, o, .object_name = "pktlens_xdp");
	const void *elf;
	size_t sz;

	if (b->obj_file)
		return bpf_object__open_file(b->obj_file, NULL);
	elf = pktlens_xdp__elf_bytes(&sz);
	return bpf_object__open_mem(elf, sz, &o);
}

/*
 * What the loader does to a packet object before its load: tell it what the
 * kernel has (pl_obj_kernel()), size the flow cache as attach does
 * (pl_flow_cache_size()) and tell the programs (pl_flow_cache_bits). An
 * object without these (an older variant given with --obj) keeps its own.
 */
static int prepare_obj(struct bpf_object *obj, uint32_t flows_max)
{
	unsigned int bits;
	int err = pl_obj_kernel(obj);

	if (!err || err == -ENOENT)
		err = pl_flow_cache_size(obj, flows_max, &bits);
	if (!err)
		err = pl_obj_set_u32(obj, "pl_flow_cache_bits", bits);
	return err == -ENOENT ? 0 : err;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	return p ? bpf_program__fd(p) : -ENOENT;
}

/* xorshift64*: the same draws in every run */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dULL;
}

/*
 * cycle_seq: SEQ_MAX flows drawn from Zipf(s) over F ranks (inverse of the
 * cumulative weights, a binary search per draw), rank r being flow perm[r], a
 * fixed shuffle, so the heavy flows are not neighbours in the address space.
 */
static int fill_zipf(struct bench *b)
{
	int fd = bpf_object__find_map_fd_by_name(b->cycle, "cycle_seq");
	uint32_t *perm = malloc(b->flows * sizeof(*perm)), *keys = malloc(SEQ_MAX * sizeof(*keys));
	uint32_t *seq = malloc(SEQ_MAX * sizeof(*seq)), count = SEQ_MAX;
	double *cdf = malloc(b->flows * sizeof(*cdf)), sum = 0;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	int err = fd < 0 ? -ENOENT : 0;

	if (!perm || !keys || !seq || !cdf)
		err = -ENOMEM;
	for (unsigned int r = 0; !err && r < b->flows; r++) {
		sum += pow(r + 1.0, -b->zipf_s);
		cdf[r] = sum;
		perm[r] = r;
	}
	for (unsigned int r = b->flows; !err && r > 1; r--) {
		unsigned int j = (unsigned int)(rnd(&x) % r);
		uint32_t t = perm[r - 1];

		perm[r - 1] = perm[j];
		perm[j] = t;
	}
	for (unsigned int i = 0; !err && i < SEQ_MAX; i++) {
		double u = (double)(rnd(&x) >> 11) / 9007199254740992.0 * sum;
		unsigned int lo = 0, hi = b->flows - 1;

		while (lo < hi) {
			unsigned int mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		keys[i] = i;
		seq[i] = perm[lo];
	}
	if (!err && bpf_map_update_batch(fd, keys, seq, &count, NULL))
		err = -errno;
	b->seq_len = SEQ_MAX;
	free(perm);
	free(keys);
	free(seq);
	free(cdf);
	return err;
}

/* flowmon.bpf.o for frame @k: its flow table and lines sized F + 1. */
static int load_mon(struct bench *b, enum frame_kind k)
{
	struct bpf_map *flows, *lines;
	uint32_t entries = b->flows + 1;
	int err;

	b->mon[k] = bpf_object__open_file(b->mon_file, NULL);
	if (!b->mon[k])
		return -errno;
	flows = bpf_object__find_map_by_name(b->mon[k], "mon_flows");
	lines = bpf_object__find_map_by_name(b->mon[k], "mem_lines");
	if (!flows || !lines)
		return -ENOENT;
	err = bpf_map__set_max_entries(flows, entries);
	if (!err)
		err = bpf_map__set_max_entries(lines, entries);
	if (!err)
		err = pl_obj_set_u32(b->mon[k], "mem_entries", entries);
	if (!err)
		err = bpf_object__load(b->mon[k]);
	if (err)
		return err;
	b->conv_fd[k] = prog_fd(b->mon[k], "bench_flowmon");
	b->mem_fd[k] = prog_fd(b->mon[k], "bench_memlimit");
	return b->conv_fd[k] < 0 || b->mem_fd[k] < 0 ? -ENOENT : 0;
}

static int load(struct bench *b)
{
	const char *what = "pass.bpf.o";
	struct bpf_map *flows;
	int err;

	b->pass = pass__open_and_load();
	if (!b->pass) {
		err = -errno;
		goto fail;
	}
	b->floor_fd = bpf_program__fd(b->pass->progs.bench_xdp_pass);
	b->tc_floor_fd = bpf_program__fd(b->pass->progs.bench_tc_ok);

	what = "pktlens_tc.bpf.o";
	b->tc = pktlens_tc__open();
	err = b->tc ? prepare_obj(b->tc->obj, PL_FLOWS_DEFAULT) : -errno;
	err = err ?: pktlens_tc__load(b->tc);
	if (err)
		goto fail;
	b->tc_fd = bpf_program__fd(b->tc->progs.pktlens_tc_in);

	what = b->cycle_file;
	b->cycle = bpf_object__open_file(b->cycle_file, NULL);
	if (!b->cycle) {
		err = -errno;
		goto fail;
	}
	err = bpf_object__load(b->cycle);
	if (err)
		goto fail;
	b->cycle_fd = prog_fd(b->cycle, "bench_xdp_cycle");
	b->floor_frags_fd = prog_fd(b->cycle, "bench_xdp_pass_frags");
	b->cfg_fd = bpf_object__find_map_fd_by_name(b->cycle, "cycle_cfg");
	b->target_fd = bpf_object__find_map_fd_by_name(b->cycle, "cycle_target");
	if (b->cycle_fd < 0 || b->floor_frags_fd < 0 || b->cfg_fd < 0 || b->target_fd < 0) {
		err = -ENOENT;
		goto fail;
	}

	what = "cycle_seq (Zipf draws)";
	err = fill_zipf(b);
	if (err)
		goto fail;

	what = b->mon_file;
	for (int k = 0; k < FR_MAX && !err; k++)
		err = load_mon(b, k);
	if (err)
		goto fail;

	/* one pktlens object per frame: each table holds its own F + 1 flows */
	what = b->obj_file ? b->obj_file : "pktlens_xdp.bpf.o";
	for (int k = 0; k < FR_MAX; k++) {
		b->obj[k] = open_obj(b);
		if (!b->obj[k]) {
			err = -errno;
			goto fail;
		}
		flows = bpf_object__find_map_by_name(b->obj[k], PL_MAP_FLOWS);
		err = flows ? bpf_map__set_max_entries(flows, b->flows + 1) : 0;
		if (!err)
			err = prepare_obj(b->obj[k], b->flows + 1);
		if (!err)
			err = bpf_object__load(b->obj[k]);
		if (err)
			goto fail;
		b->prog_fd[k] = prog_fd(b->obj[k], b->prog_name);
		if (b->prog_fd[k] < 0) {
			err = b->prog_fd[k];
			goto fail;
		}
	}
	return 0;
fail:
	fprintf(stderr, "xdp_bench: cannot load %s: %s\n", what, strerror(-err));
	return err;
}

static void unload(struct bench *b)
{
	for (int k = 0; k < FR_MAX; k++) {
		bpf_object__close(b->obj[k]);
		bpf_object__close(b->mon[k]);
	}
	bpf_object__close(b->cycle);
	pktlens_tc__destroy(b->tc);
	pass__destroy(b->pass);
}

static void usage(void)
{
	fprintf(stderr, "usage: xdp_bench [--json[=FILE]] [--rounds N] [--repeat N] [--flows N] "
		"[--cpu N]\n                 [--clock wall|kernel] [--zipf-s S] [--cycle-obj FILE] "
		"[--obj FILE.bpf.o [--prog NAME]]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", optional_argument, NULL, 'j' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "repeat", required_argument, NULL, 'R' },
		{ "flows", required_argument, NULL, 'f' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "cycle-obj", required_argument, NULL, 'C' },
		{ "obj", required_argument, NULL, 'o' },
		{ "prog", required_argument, NULL, 'p' },
		{ "zipf-s", required_argument, NULL, 'z' },
		{ "clock", required_argument, NULL, 'k' },
		{},
	};
	static char cycle_path[PATH_MAX], mon_path[PATH_MAX + 32];
	const char *json_file = NULL;
	bool json = false;
	uint64_t v;
	struct bench *b;
	FILE *jf = NULL;
	cpu_set_t set;
	ssize_t n;
	int c, err = 0, ret = 1;

	b = calloc(1, sizeof(*b));
	if (!b)
		return 1;
	b->prog_name = "pktlens_xdp";
	b->rounds = 5;
	b->repeat = 1000000;
	b->flows = 100000;
	b->zipf_s = 1.1;
	b->cpu = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	/* default: cycle.bpf.o in .output/, next to our own .output/bench/ */
	n = readlink("/proc/self/exe", cycle_path, sizeof(cycle_path) - 32);
	if (n > 0) {
		cycle_path[n] = '\0';
		dirname(cycle_path);
		snprintf(mon_path, sizeof(mon_path), "%s/../flowmon.bpf.o", cycle_path);
		strcat(cycle_path, "/../cycle.bpf.o");
		b->cycle_file = cycle_path;
		b->mon_file = mon_path;
	} else {
		b->cycle_file = ".output/cycle.bpf.o";
		b->mon_file = ".output/flowmon.bpf.o";
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			json_file = optarg;
			break;
		case 'r':
			err = pl_parse_u64(optarg, 1, MAX_ROUNDS, &v);
			b->rounds = v;
			break;
		case 'R':
			err = pl_parse_u64(optarg, 1000, INT_MAX, &v);
			b->repeat = v;
			break;
		case 'f':
			err = pl_parse_u64(optarg, 1, MAX_FLOWS, &v);
			b->flows = v;
			break;
		case 'c':
			err = pl_parse_u64(optarg, 0, CPU_SETSIZE - 1, &v);
			b->cpu = v;
			break;
		case 'C':
			b->cycle_file = optarg;
			break;
		case 'o':
			b->obj_file = optarg;
			break;
		case 'p':
			b->prog_name = optarg;
			break;
		case 'k':
			b->kernel_clock = !strcmp(optarg, "kernel");
			err = b->kernel_clock || !strcmp(optarg, "wall") ? 0 : -EINVAL;
			break;
		case 'z': {
			char *end;

			errno = 0;
			b->zipf_s = strtod(optarg, &end);
			err = errno || *end || end == optarg || !(b->zipf_s >= 0.5 && b->zipf_s <= 3.0)
				? -EINVAL : 0;
			break;
		}
		default:
			err = -EINVAL;
		}
		if (err)
			break;
	}
	if (err || optind != argc) {
		usage();
		ret = 2;
		goto out;
	}

	CPU_ZERO(&set);
	CPU_SET(b->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "xdp_bench: cannot pin to CPU %u: %s\n", b->cpu, strerror(errno));
		goto out;
	}
	libbpf_set_print(NULL);
	if (load(b))
		goto out;

	/* first sight: insert the F flows (and warm up) before the rounds */
	for (int k = 0; k < FR_MAX && !err; k++)
		err = measure_calls(b, k, true, &b->ins_floor[k], &b->ins_prog[k]);
	for (int k = 0; k < FR_MAX && !err; k++)
		err = warm_refs(b, k);
	for (unsigned int r = 0; r < b->rounds && !err; r++)
		err = measure_round(b, r);
	if (err) {
		fprintf(stderr, "xdp_bench: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		goto out;
	}

	if (json_file) {
		jf = fopen(json_file, "w");
		if (!jf) {
			fprintf(stderr, "xdp_bench: %s: %s\n", json_file, strerror(errno));
			goto out;
		}
	}
	/* a failed check (miscount, lost flow, bad retval) fails the run */
	if (report(b, json && !json_file ? NULL : stdout, json ? (jf ? jf : stdout) : NULL))
		ret = 0;
out:
	if (jf && fclose(jf))
		ret = 1;
	unload(b);
	free(b);
	return ret;
}
