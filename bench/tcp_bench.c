// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_bench: what attach --tcp-passive (bpf/tcp.h) adds per packet to the
 * pktlens XDP program under BPF_PROG_TEST_RUN, side by side in one run.
 *
 *   tcp_bench [--rounds N] [--repeat N] [--flows N] [--cpu N]
 *
 * Two copies of pktlens_xdp: "off" as attach loads it without --tcp-passive
 * (pl_tcp_slots 0: the verifier drops the TCP code) and "on" with it (XDP
 * ingress analyses), each with its own maps. Frames: 1514-byte IPv4/TCP
 * segments with the timestamp option (NOP NOP TS), flow i from source port
 * 1024 + i % 50000 and address 198.18.0.1 + i / 50000.
 *
 *  1 flow    a call with .repeat = R (default 1e6) of the same segment, off and
 *            on alternating per round: ns = (wall(R) - wall(2)) / (R - 2). The
 *            connection exists after the first run: a state lookup, the
 *            option walk, the sequence checks (the segment repeats: a
 *            retransmission each time) and no timestamp insert (its TSval is
 *            the last one seen).
 *  F flows   one call per flow with .repeat = 1 (default F = 100000), the
 *            kernel's `duration` summed / F: the first pass creates each
 *            connection and remembers its TSval (an insert in tcp_state and
 *            tcp_ts), the second finds them.
 *
 * Medians over the rounds; exits 1 if a run returned anything but XDP_PASS or
 * the maps do not hold what was sent (every connection, F timestamps).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pktlens/pktlens.h"
#include "pktlens_xdp.skel.h"
#include "../loader/features.h"

#define FRAME 1514
#define MAX_ROUNDS 64

static uint8_t frame[FRAME];

static void build(uint32_t i)
{
	uint8_t *ip = frame + 14, *th = ip + 20;
	uint16_t sport = (uint16_t)(1024 + i % 50000);
	uint32_t src = 0xC6120001 + i / 50000, v;

	memset(frame, 0, sizeof(frame));
	memset(frame, 0x02, 12);
	frame[12] = 0x08;
	ip[0] = 0x45;
	v = htons(FRAME - 14);
	memcpy(ip + 2, &v, 2);
	ip[8] = 64;
	ip[9] = 6;
	v = htonl(src);
	memcpy(ip + 12, &v, 4);
	v = htonl(0xC6130001);
	memcpy(ip + 16, &v, 4);
	th[0] = (uint8_t)(sport >> 8);
	th[1] = (uint8_t)sport;
	th[3] = 80;
	v = htonl(1000);
	memcpy(th + 4, &v, 4);
	memcpy(th + 8, &v, 4);
	th[12] = 8 << 4;		/* 32 bytes: NOP NOP TS */
	th[13] = 0x10;			/* ACK */
	th[14] = 0xff;
	th[20] = 1;
	th[21] = 1;
	th[22] = 8;
	th[23] = 10;
	v = htonl(12345);
	memcpy(th + 24, &v, 4);
	v = htonl(777);
	memcpy(th + 28, &v, 4);
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int run(int fd, uint32_t repeat, uint32_t *duration, unsigned *bad)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = frame, .data_size_in = FRAME,
		    .repeat = (int)repeat);

	if (bpf_prog_test_run_opts(fd, &t))
		return -errno;
	*bad += t.retval != 2;	/* XDP_PASS */
	*duration = t.duration;
	return 0;
}

static double per_pkt(int fd, uint32_t repeat, unsigned *bad)
{
	uint32_t d;
	double t0, t1, t2;

	t0 = now_ns();
	run(fd, 2, &d, bad);
	t1 = now_ns();
	run(fd, repeat, &d, bad);
	t2 = now_ns();
	return ((t2 - t1) - (t1 - t0)) / (repeat - 2);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double pass(int fd, uint32_t flows, unsigned *bad)
{
	double sum = 0;

	for (uint32_t i = 0; i < flows; i++) {
		uint32_t d = 0;

		build(i);
		if (run(fd, 1, &d, bad))
			(*bad)++;
		sum += d;
	}
	return sum / flows;
}

static uint32_t entries(struct bpf_map *m, size_t ksz)
{
	uint8_t k[64], n[64];
	uint32_t c = 0;
	int fd = bpf_map__fd(m);

	if (bpf_map_get_next_key(fd, NULL, k))
		return 0;
	do {
		c++;
	} while (!bpf_map_get_next_key(fd, k, n) && (memcpy(k, n, ksz), 1));
	return c;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' }, { "repeat", required_argument, NULL, 'R' },
		{ "flows", required_argument, NULL, 'f' }, { "cpu", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned rounds = 5, repeat = 1000000, flows = 100000, cpu = 0, bad = 0;
	struct pktlens_xdp *s[2] = { NULL, NULL };
	double one[2][MAX_ROUNDS], first[2], again[2];
	cpu_set_t set;
	int c, fd[2], rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long v = strtoul(optarg, NULL, 10);

		switch (c) {
		case 'r': rounds = v < 1 ? 1 : v > MAX_ROUNDS ? MAX_ROUNDS : (unsigned)v; break;
		case 'R': repeat = v < 3 ? 3 : (unsigned)v; break;
		case 'f': flows = v < 1 ? 1 : v > 1000000 ? 1000000 : (unsigned)v; break;
		case 'c': cpu = (unsigned)v; break;
		default:
			fprintf(stderr, "usage: tcp_bench [--rounds N] [--repeat N] [--flows N] [--cpu N]\n");
			return 2;
		}
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	for (int k = 0; k < 2; k++) {
		s[k] = pktlens_xdp__open();
		if (!s[k])
			goto out;
		s[k]->rodata->pl_tcp_slots = k ? 1U << PL_SLOT_XDP_IN : 0;
		pl_obj_kernel(s[k]->obj);
		bpf_map__set_max_entries(s[k]->maps.flows, flows + 16);
		bpf_map__set_max_entries(s[k]->maps.tcp_state, flows + 16);
		bpf_map__set_max_entries(s[k]->maps.tcp_ts, flows + 16);
		if (pktlens_xdp__load(s[k])) {
			fprintf(stderr, "tcp_bench: cannot load pktlens_xdp: %s\n", strerror(errno));
			goto out;
		}
		fd[k] = bpf_program__fd(s[k]->progs.pktlens_xdp);
	}
	for (int k = 0; k < 2; k++) {
		first[k] = pass(fd[k], flows, &bad);
		again[k] = pass(fd[k], flows, &bad);
	}
	build(0);
	for (unsigned r = 0; r < rounds; r++)
		for (int k = 0; k < 2; k++)
			one[k][r] = per_pkt(fd[k], repeat, &bad);
	printf("tcp_bench: pktlens_xdp, 1514-byte IPv4/TCP segments with timestamps, CPU %u, "
	       "%u rounds, R = %u, F = %u\n", cpu, rounds, repeat, flows);
	printf("%-34s %10s %10s %8s\n", "case", "off ns", "on ns", "on/off");
	{
		double m0 = median(one[0], (int)rounds), m1 = median(one[1], (int)rounds);

		printf("%-34s %10.1f %10.1f %8.2f\n", "1 flow, repeat (median)", m0, m1, m1 / m0);
	}
	printf("%-34s %10.1f %10.1f %8.2f\n", "F flows, first sight (duration)", first[0], first[1],
	       first[1] / first[0]);
	printf("%-34s %10.1f %10.1f %8.2f\n", "F flows, again (duration)", again[0], again[1],
	       again[1] / again[0]);
	{
		uint32_t conns = entries(s[1]->maps.tcp_state, sizeof(struct pl_tcp_key));
		uint32_t ts = entries(s[1]->maps.tcp_ts, sizeof(struct pl_tcp_ts_key));
		uint32_t off = entries(s[0]->maps.tcp_state, sizeof(struct pl_tcp_key));

		printf("checks: retval XDP_PASS %s; connections %u (want %u), timestamps %u "
		       "(want %u), off: %u\n", bad ? "NO" : "yes", conns, flows, ts, flows, off);
		rc = bad || conns != flows || ts != flows || off != 0;
	}
out:
	pktlens_xdp__destroy(s[0]);
	pktlens_xdp__destroy(s[1]);
	return rc;
}
