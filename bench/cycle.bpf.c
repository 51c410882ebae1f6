// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_bench helper: many flows under one BPF_PROG_TEST_RUN call.
 *
 * With .repeat = N the kernel runs the program N times on the same frame.
 * bench_xdp_cycle rewrites the frame's source address and port before each
 * run (flow i of cycle_cfg.flows, round robin; the same flows xdp_bench
 * builds in user space), then tail-calls the program under test in
 * cycle_target[0]. The floor is the same driver tail-calling
 * bench_xdp_pass_frags, so driver and tail call cancel out of the ratio.
 * Both targets are "xdp.frags" like pktlens_xdp: a prog array only holds
 * programs whose frags flag matches its first user's.
 *
 * With cycle_cfg.seq_len > 0 run i carries flow cycle_seq[i % seq_len]
 * instead (a Zipf-distributed sequence xdp_bench draws): the floor reads
 * the same sequence, so its sequential read cancels out too.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct cycle_cfg {
	__u32 flows;		/* flows to rotate over, >= 1 */
	__u32 next;		/* flow of the next run */
	__u32 addr_off;		/* frame offset of the source address' low 4 bytes */
	__u32 port_off;		/* frame offset of the source port */
	__u32 addr_base;	/* address of flow 0, host order */
	__u32 seq_len;		/* > 0: the flows of cycle_seq[0 .. seq_len - 1] */
};

#define SEQ_MAX (1U << 20)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEQ_MAX);
	__type(key, __u32);
	__type(value, __u32);
} cycle_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cycle_cfg);
} cycle_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cycle_target SEC(".maps");

SEC("xdp.frags")
int bench_xdp_cycle(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cycle_cfg *c;
	__u32 zero = 0, i;
	__be32 *a;
	__be16 *p;

	c = bpf_map_lookup_elem(&cycle_cfg, &zero);
	if (!c)
		return XDP_ABORTED;
	i = c->next;
	c->next = i + 1 < (c->seq_len ? c->seq_len : c->flows) ? i + 1 : 0;
	if (c->seq_len) {
		__u32 *f = bpf_map_lookup_elem(&cycle_seq, &i);

		if (!f)
			return XDP_ABORTED;
		i = *f;
	}
	a = data + (c->addr_off & 0x7f);
	p = data + (c->port_off & 0x7f);
	if ((void *)(a + 1) > data_end || (void *)(p + 1) > data_end)
		return XDP_ABORTED;
	*a = bpf_htonl(c->addr_base + i);
	*p = bpf_htons(1024 + (i & 16383));
	bpf_tail_call(ctx, &cycle_target, 0);
	return XDP_ABORTED;
}

SEC("xdp.frags")
int bench_xdp_pass_frags(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
