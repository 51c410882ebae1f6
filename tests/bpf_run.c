// SPDX-License-Identifier: GPL-2.0
/*
 * Test tool: run the pktlens XDP program on every packet of a pcap file with
 * BPF_PROG_TEST_RUN (no network, nothing attached) and print what it counted
 * as one JSON document: {"runs", "rejected", "retvals", "stats", "flows", ...}.
 *
 *   bpf_run [--flows N] FILE.pcap
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pktlens_xdp.skel.h"
#include "../export/report.h"
#include "../loader/features.h"
#include "../cli/util.h"

/* Minimal classic-pcap reader (libpcap's header clashes with linux/bpf.h). */
struct rec {
	unsigned char data[262144];
	uint32_t caplen;
};

static uint32_t rd32(const unsigned char *b, int swap)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return swap ? __builtin_bswap32(v) : v;
}

static int next_rec(FILE *f, int swap, struct rec *r)
{
	unsigned char h[16];

	if (fread(h, 1, 16, f) != 16)
		return 0;
	r->caplen = rd32(h + 8, swap);
	if (r->caplen > sizeof(r->data) || fread(r->data, 1, r->caplen, f) != r->caplen)
		return -1;
	return 1;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(&((const struct pl_flow *)a)->key, &((const struct pl_flow *)b)->key,
		      sizeof(struct pl_flow_key));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "flows", required_argument, NULL, 'f' },
		{ "cache-bits", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'r' },
		{},
	};
	static struct rec r;
	unsigned char gh[24];
	uint32_t magic;
	int swap, more;
	FILE *p;
	struct pl_stats s[PL_SLOT_MAX];
	struct pktlens_xdp *skel;
	struct pl_flow *fl = NULL;
	struct pl_state st = { 0 };
	uint32_t flows_max = PL_FLOWS_DEFAULT;
	unsigned int cache_bits;
	uint32_t cache_force = 0, repeat = 1;	/* --repeat: each frame run N times */
	size_t nf = 0, used = 0;
	unsigned runs = 0, rejected = 0;
	struct jw w;
	int c, err, prog_fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if ((c == 'f' && !pl_parse_u32(optarg, PL_FLOWS_MIN, PL_FLOWS_MAX, &flows_max)) ||
		    (c == 'c' && !pl_parse_u32(optarg, PL_FLOW_CACHE_MIN_BITS, PL_FLOW_CACHE_MAX_BITS,
					       &cache_force)) ||
		    (c == 'r' && !pl_parse_u32(optarg, 1, UINT32_MAX, &repeat)))
			continue;
		fprintf(stderr, "usage: bpf_run [--flows N] [--cache-bits B] [--repeat N] FILE.pcap\n");
		return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: bpf_run [--flows N] [--cache-bits B] [--repeat N] FILE.pcap\n");
		return 2;
	}
	p = fopen(argv[optind], "rb");
	if (!p || fread(gh, 1, 24, p) != 24) {
		fprintf(stderr, "bpf_run: %s: cannot read a pcap header\n", argv[optind]);
		return 2;
	}
	memcpy(&magic, gh, 4);
	swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
	if (!swap && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) {
		fprintf(stderr, "bpf_run: %s: not a pcap file\n", argv[optind]);
		return 2;
	}
	/* sized as attach sizes it: the table and the flow cache */
	skel = pktlens_xdp__open();
	err = skel ? pl_obj_kernel(skel->obj) : -errno;
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.flows, flows_max);
	cache_bits = cache_force;	/* --cache-bits: a smaller cache, for collisions */
	if (!err)
		err = cache_bits ? pl_flow_cache_set(skel->obj, cache_bits) :
				   pl_flow_cache_size(skel->obj, flows_max, &cache_bits);
	if (!err) {
		skel->rodata->pl_flow_cache_bits = cache_bits;
		err = pktlens_xdp__load(skel);
	}
	if (err) {
		fprintf(stderr, "bpf_run: cannot load pktlens_xdp: %s\n", strerror(-err));
		return 1;
	}
	prog_fd = bpf_program__fd(skel->progs.pktlens_xdp);

	jw_init(&w, stdout, false);
	jw_obj_open(&w);
	jw_key(&w, "retvals");
	jw_arr_open(&w);
	while ((more = next_rec(p, swap, &r)) == 1) {
		LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = r.data, .data_size_in = r.caplen,
			    .repeat = repeat);

		err = bpf_prog_test_run_opts(prog_fd, &t);
		if (err) {
			rejected++;	/* the kernel refuses frames shorter than 14 bytes */
			jw_i64(&w, -errno);
			continue;
		}
		runs += repeat;
		jw_u64(&w, t.retval);
	}
	jw_arr_close(&w);
	fclose(p);
	if (more < 0) {
		fprintf(stderr, "bpf_run: %s: truncated record\n", argv[optind]);
		return 2;
	}

	st.stats_fd = bpf_map__fd(skel->maps.stats);
	st.flows_fd = bpf_map__fd(skel->maps.flows);
	st.cache_fd = bpf_map__fd(skel->maps.flow_cache);
	st.meta_fd = bpf_map__fd(skel->maps.meta);
	err = pl_state_stats(&st, s);
	if (!err)
		err = pl_state_flows(&st, &fl, &nf);
	if (!err)
		err = pl_state_flow_count(&st, &used);
	if (err) {
		fprintf(stderr, "bpf_run: cannot read maps: %s\n", strerror(-err));
		return 1;
	}
	if (nf > 1)	/* by key, as the output always was */
		qsort(fl, nf, sizeof(*fl), cmp_key);
	jw_u64_field(&w, "runs", runs);
	jw_u64_field(&w, "rejected", rejected);
	jw_u64_field(&w, "table_entries", used);
	jw_key(&w, "stats");
	pl_json_stats_slot(&w, &s[PL_SLOT_XDP_IN], PL_SLOT_XDP_IN, true);
	jw_key(&w, "flows");
	jw_arr_open(&w);
	for (size_t i = 0; i < nf; i++)
		pl_json_flow(&w, "test", &fl[i], pl_flow_rate(&fl[i].val), -1, -1);
	jw_arr_close(&w);
	jw_obj_close(&w);
	jw_end(&w);
	free(fl);
	pktlens_xdp__destroy(skel);
	return 0;
}
