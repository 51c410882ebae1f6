// SPDX-License-Identifier: GPL-2.0
/*
 * Test tool: fill a pinned flow table with N distinct flows from user space,
 * in batches (BPF_MAP_UPDATE_BATCH), for the scale tests.
 *
 *   fill_flows MAP_PATH IFINDEX N
 *
 * Flow i (0 <= i < N): ingress XDP, IPv4 UDP from 198.18.0.(i >> 16) port
 * (i & 0xffff) to 198.19.0.1 port 9; C + i % 1000 packets and 1000 + i
 * bytes in all (C: possible CPUs), spread over the CPUs (every CPU but the
 * last holds one packet and one byte, the last the rest), so the largest
 * flows by bytes are N-1,
 * N-2, ... and reading them back exercises the per-CPU merge. Prints
 * {"inserted": N, "ncpus": C, "seconds": S}.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pktlens/pktlens.h"

#define CHUNK 65536U

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void fill_key(struct pl_flow_key *k, __u32 ifindex, __u32 i)
{
	memset(k, 0, sizeof(*k));
	k->ifindex = ifindex;
	k->dir = PL_DIR_IN;
	k->hook = PL_HOOK_XDP;
	k->vlan = PL_VLAN_NONE;
	k->l3proto = 0x0800;
	k->l4proto = 17;
	k->sport = i & 0xffff;
	k->dport = 9;
	k->saddr[10] = k->saddr[11] = 0xff;
	k->saddr[12] = 198, k->saddr[13] = 18, k->saddr[14] = 0, k->saddr[15] = i >> 16;
	k->daddr[10] = k->daddr[11] = 0xff;
	k->daddr[12] = 198, k->daddr[13] = 19, k->daddr[14] = 0, k->daddr[15] = 1;
}

static void fill_vals(struct pl_flow_val *v, int ncpu, __u32 i, __u64 t0)
{
	__u64 pk = (__u64)ncpu + i % 1000, by = 1000ULL + i;

	memset(v, 0, sizeof(*v) * ncpu);
	for (int c = 0; c < ncpu; c++) {
		bool last = c == ncpu - 1;

		v[c].packets = last ? pk - (ncpu - 1) : 1;
		v[c].bytes = last ? by - (ncpu - 1) : 1;
		v[c].first_ns = t0 + c;
		v[c].last_ns = t0 + 1000000000ULL + c;
		v[c].tcp_flags = 0;
	}
}

int main(int argc, char **argv)
{
	struct pl_flow_key *keys = NULL;
	struct pl_flow_val *vals = NULL;
	unsigned long ifindex, n;
	int fd, ncpu, rc = 1;
	struct timespec mono;
	double t;
	__u64 t0;

	if (argc != 4) {
		fprintf(stderr, "usage: fill_flows MAP_PATH IFINDEX N\n");
		return 2;
	}
	ifindex = strtoul(argv[2], NULL, 0);
	n = strtoul(argv[3], NULL, 0);
	if (!n || n > (1UL << 24)) {
		fprintf(stderr, "fill_flows: N '%s' is wrong: expected 1..%lu\n", argv[3], 1UL << 24);
		return 2;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || ncpu >= 1000) {
		fprintf(stderr, "fill_flows: unsupported number of CPUs %d\n", ncpu);
		return 1;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "fill_flows: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	keys = calloc(CHUNK, sizeof(*keys));
	vals = calloc((size_t)CHUNK * ncpu, sizeof(*vals));
	if (!keys || !vals) {
		fprintf(stderr, "fill_flows: out of memory\n");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &mono);
	t0 = (__u64)mono.tv_sec * 1000000000ULL + (__u64)mono.tv_nsec;
	t = now_s();
	for (unsigned long base = 0; base < n; base += CHUNK) {
		__u32 cnt = n - base < CHUNK ? (__u32)(n - base) : CHUNK, done;
		LIBBPF_OPTS(bpf_map_batch_opts, o);

		for (__u32 j = 0; j < cnt; j++) {
			fill_key(&keys[j], (__u32)ifindex, (__u32)(base + j));
			fill_vals(&vals[(size_t)j * ncpu], ncpu, (__u32)(base + j), t0);
		}
		done = cnt;
		if (bpf_map_update_batch(fd, keys, vals, &done, &o)) {
			fprintf(stderr, "fill_flows: update at flow %lu (+%u of %u): %s\n", base, done,
				cnt, strerror(errno));
			goto out;
		}
	}
	printf("{\"inserted\": %lu, \"ncpus\": %d, \"seconds\": %.3f}\n", n, ncpu, now_s() - t);
	rc = 0;
out:
	free(keys);
	free(vals);
	close(fd);
	return rc;
}
