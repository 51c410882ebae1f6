// SPDX-License-Identifier: GPL-2.0
/*
 * ns per packet of tcpdump expressions, three ways, in one run:
 *   translated  pcap/translate.c's XDP program, BPF_PROG_TEST_RUN
 *   hand C      the same filter written in C (bench/filter_ref.bpf.c), clang
 *   libpcap     bpf_filter(), libpcap's interpreter, in user space
 * Times are averages over REPEAT runs (one test-run syscall); "net" subtracts
 * the cost of a test run of a program that only returns (ref_nothing). Each
 * figure is the best of 3 rounds, the programs taking turns. Verdicts of all
 * three must agree with the expected match/miss (exit 1 if not).
 *
 *   filter_bench [-n REPEAT] [REF.bpf.o]     (default 1000000, .output/filter_ref.bpf.o)
 *
 * Build: clang -O2 -g -target bpf -c bench/filter_ref.bpf.c -o .output/filter_ref.bpf.o
 *        (or `make .output/filter_ref.bpf.o`), then link this file with
 *        the objects of pcap/ and -lbpf -lpcap -lelf -lz. Needs root.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../pcap/cbpf.h"

#define ROUNDS	3

enum { P_TCP4_SYN_443, P_TCP4_SYNACK_OTHER, P_UDP6_1500, P_TCP6_8080, P_MAX };

struct packet {
	const char *name;
	uint8_t data[128];
	uint32_t len;
};

static struct packet pkts[P_MAX];

struct bench_case {
	const char *label;
	const char *expr;
	const char *ref;		/* program in filter_ref.bpf.o */
	int match, miss;		/* packets */
};

static const struct bench_case cases[] = {
	{ NULL, "tcp port 443", "ref_tcp_port_443", P_TCP4_SYN_443, P_UDP6_1500 },
	{ NULL, "host 198.18.0.1 and (tcp or udp)", "ref_host_tcp_udp", P_TCP4_SYN_443,
	  P_TCP4_SYNACK_OTHER },
	{ "tcp[tcpflags]&(syn|ack)==syn", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "ref_tcp_syn", P_TCP4_SYN_443,
	  P_TCP4_SYNACK_OTHER },
	{ NULL, "ip6 and udp portrange 1000-2000", "ref_ip6_udp_portrange", P_UDP6_1500, P_TCP4_SYN_443 },
	{ "tcp dst port 22 or ... (20 terms)", "tcp dst port 22 or tcp dst port 25 or tcp dst port 53 or tcp dst port 80 or "
	  "tcp dst port 110 or tcp dst port 123 or tcp dst port 143 or tcp dst port 161 or "
	  "tcp dst port 389 or tcp dst port 443 or tcp dst port 445 or tcp dst port 587 or "
	  "tcp dst port 993 or tcp dst port 995 or tcp dst port 1194 or tcp dst port 1433 or "
	  "tcp dst port 3306 or tcp dst port 5432 or tcp dst port 6379 or tcp dst port 8080",
	  "ref_or20", P_TCP6_8080, P_TCP4_SYNACK_OTHER },
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* Ethernet + IPv4 + TCP/UDP ports (+ TCP flags); checksums are not looked at */
static void ip4(struct packet *p, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
		uint16_t dport, uint8_t flags)
{
	uint8_t *d = p->data;

	memset(d, 0, sizeof(p->data));
	memcpy(d, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(d + 12, 0x0800);
	d[14] = 0x45;
	put16(d + 16, 40);
	d[22] = 64;
	d[23] = proto;
	put32(d + 26, src);
	put32(d + 30, dst);
	put16(d + 34, sport);
	put16(d + 36, dport);
	d[46] = 0x50;
	d[47] = flags;
	p->len = 60;
}

static void ip6(struct packet *p, uint8_t proto, uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint8_t *d = p->data;

	memset(d, 0, sizeof(p->data));
	memcpy(d, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(d + 12, 0x86dd);
	d[14] = 0x60;
	put16(d + 18, 20);
	d[20] = proto;
	d[21] = 64;
	put32(d + 22, 0x20010db8);
	d[37] = 1;
	put32(d + 38, 0x20010db8);
	d[53] = 2;
	put16(d + 54, sport);
	put16(d + 56, dport);
	d[66] = 0x50;
	d[67] = flags;
	p->len = 74;
}

static void make_packets(void)
{
	pkts[P_TCP4_SYN_443].name = "tcp4 syn :443";
	ip4(&pkts[P_TCP4_SYN_443], 6, 0xc6120002, 0xc6120001, 40000, 443, 0x02);
	pkts[P_TCP4_SYNACK_OTHER].name = "tcp4 syn-ack other";
	ip4(&pkts[P_TCP4_SYNACK_OTHER], 6, 0xc6120009, 0xc6120008, 443, 40000, 0x12);
	pkts[P_UDP6_1500].name = "udp6 :1500";
	ip6(&pkts[P_UDP6_1500], 17, 5353, 1500, 0);
	pkts[P_TCP6_8080].name = "tcp6 :8080";
	ip6(&pkts[P_TCP6_8080], 6, 40000, 8080, 0x10);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns of one run of @fd on @p, averaged over @repeat runs; -1 on error */
static double kernel_ns(int fd, const struct packet *p, unsigned int repeat, uint32_t *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = p->data, .data_size_in = p->len,
		    .repeat = repeat);
	double t0 = now_ns();

	if (bpf_prog_test_run_opts(fd, &t))
		return -1;
	*retval = t.retval;
	return (now_ns() - t0) / repeat;
}

/*
 * Best of ROUNDS for each of @n programs, taking turns so that they see the
 * same clock speed. Timed here rather than with the kernel's `duration`
 * (whole ns): one syscall per REPEAT runs adds a few ps per run.
 */
static int kernel_ns_n(const int *fds, int n, const struct packet *p, unsigned int repeat,
		       double *best, uint32_t *retval)
{
	for (int i = 0; i < n; i++)
		best[i] = -1;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < n; i++) {
			double ns = kernel_ns(fds[i], p, repeat, &retval[i]);

			if (ns < 0)
				return -errno;
			if (best[i] < 0 || ns < best[i])
				best[i] = ns;
		}
	}
	return 0;
}

static double user_ns(const struct sock_filter *prog, size_t len, const struct packet *p,
		      unsigned int repeat, unsigned int *verdict)
{
	volatile unsigned int sink = 0;
	double best = -1;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ns(), dt;

		for (unsigned int i = 0; i < repeat; i++)
			sink += pl_cbpf_filter(prog, len, p->data, p->len, p->len);
		dt = (now_ns() - t0) / repeat;
		if (best < 0 || dt < best)
			best = dt;
	}
	*verdict = pl_cbpf_filter(prog, len, p->data, p->len, p->len);
	(void)sink;
	return best;
}

static int load_translated(const char *expr, struct sock_filter **cbpf, size_t *cbpf_len,
			   size_t *ebpf_len)
{
	const struct pl_filter_opts xdp = { .ctx = PL_FILTER_XDP };
	struct pl_filter_prog p;
	char err[4096];
	int fd;

	if (pl_filter_build(expr, &xdp, &p, err, sizeof(err))) {
		fprintf(stderr, "filter_bench: '%s': %s\n", expr, err);
		return -EINVAL;
	}
	fd = pl_ebpf_load(p.ebpf, p.ebpf_len, PL_FILTER_XDP, 0, err, sizeof(err));
	*cbpf = p.cbpf;		/* the caller's, for the libpcap reference */
	*cbpf_len = p.cbpf_len;
	*ebpf_len = p.ebpf_len;
	free(p.ebpf);
	if (fd < 0)
		fprintf(stderr, "filter_bench: '%s': load: %s\n", expr, err);
	return fd;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!p) {
		fprintf(stderr, "filter_bench: no program %s in the reference object\n", name);
		return -ENOENT;
	}
	return bpf_program__fd(p);
}

/* one row per packet; 0, or 1 when verdicts disagree or something fails */
static int bench_one(const struct bench_case *c, struct bpf_object *obj, int base_fd,
		     unsigned int repeat)
{
	const int which[2] = { c->match, c->miss };
	struct sock_filter *cbpf = NULL;
	size_t cbpf_len, ebpf_len;
	int fd, ref_fd, ret = 0;

	fd = load_translated(c->expr, &cbpf, &cbpf_len, &ebpf_len);
	ref_fd = prog_fd(obj, c->ref);
	if (fd < 0 || ref_fd < 0) {
		ret = 1;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		const struct packet *p = &pkts[which[i]];
		const int fds[3] = { fd, ref_fd, base_fd };
		uint32_t rv[3] = { 0 };
		double ns[3], t, h, b, u;
		unsigned int ru = 0;
		bool want = i == 0;

		if (kernel_ns_n(fds, 3, p, repeat, ns, rv)) {
			fprintf(stderr, "filter_bench: test run: %s\n", strerror(errno));
			ret = 1;
			break;
		}
		t = ns[0];
		h = ns[1];
		b = ns[2];
		u = user_ns(cbpf, cbpf_len, p, repeat, &ru);
		if ((rv[0] != 0) != want || (rv[1] != 0) != want || (ru != 0) != want) {
			fprintf(stderr, "filter_bench: '%s' on %s: translated %u, hand C %u, libpcap %u, want %d\n",
				c->expr, p->name, rv[0], rv[1], ru, want);
			ret = 1;
		}
		printf("%-34s %-19s %5zu %5zu %8.2f %8.2f %6.2fx %8.2f %6.2fx %8.2f\n",
		       i ? "" : c->label ? c->label : c->expr, p->name,
		       i ? 0 : cbpf_len, i ? 0 : ebpf_len, t, h, t / h, b,
		       h - b > 0 ? (t - b) / (h - b) : 0.0, u);
	}
out:
	if (fd >= 0)
		close(fd);
	free(cbpf);
	return ret;
}

int main(int argc, char **argv)
{
	const char *ref_path = ".output/filter_ref.bpf.o";
	unsigned int repeat = 1000000;
	struct bpf_object *obj;
	int c, err, base_fd, ret = 0;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n') {
			fprintf(stderr, "usage: filter_bench [-n REPEAT] [REF.bpf.o]\n");
			return 2;
		}
		repeat = (unsigned int)strtoul(optarg, NULL, 0);
	}
	if (optind < argc)
		ref_path = argv[optind];
	if (!repeat) {
		fprintf(stderr, "filter_bench: -n must be > 0\n");
		return 2;
	}
	make_packets();
	obj = bpf_object__open_file(ref_path, NULL);
	if (!obj) {
		fprintf(stderr, "filter_bench: %s: %s\n", ref_path, strerror(errno));
		return 1;
	}
	err = bpf_object__load(obj);
	base_fd = err ? -1 : prog_fd(obj, "ref_nothing");
	if (err || base_fd < 0) {
		fprintf(stderr, "filter_bench: loading %s: %s\n", ref_path, strerror(err ? -err : ENOENT));
		bpf_object__close(obj);
		return 1;
	}
	printf("ns per packet, BPF_PROG_TEST_RUN repeat %u, best of %d; net = minus an empty program\n",
	       repeat, ROUNDS);
	printf("%-34s %-19s %5s %5s %8s %8s %7s %8s %7s %8s\n", "expression", "packet", "cBPF",
	       "eBPF", "transl", "hand-C", "ratio", "empty", "net", "libpcap");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ret |= bench_one(&cases[i], obj, base_fd, repeat);
	bpf_object__close(obj);
	return ret;
}
