// SPDX-License-Identifier: GPL-2.0
/*
 * A NIC's receive path for the live flood (bench/policy_bench.py): on a
 * veth, native XDP first copies each of trafgen's skbs into an XDP buffer,
 * which a NIC driver never does. This program, on the first veth pair's
 * receiving end, hands every frame on to the second pair (bench_fwd_tx[0],
 * an ifindex in its own namespace) with XDP_REDIRECT, so the second pair's
 * receiving end gets XDP frames, as from a driver's ring: its XDP program
 * runs on the frame, and without one the veth builds an skb for the stack
 * (tc, nftables). A frame it cannot hand on is dropped here.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_fwd_tx SEC(".maps");

SEC("xdp")
int bench_forward(struct xdp_md *ctx)
{
	return bpf_redirect_map(&bench_fwd_tx, 0, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
