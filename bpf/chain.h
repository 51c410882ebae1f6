/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Filter chaining shared by the XDP and tc programs (PL_CHAIN_* in
 * include/pktlens/pktlens.h): every hook has an entry program, which
 * tail-calls the hook's RULES slot first, and a MAIN program, which the
 * RULES program (a translated tcpdump expression, pcap/) tail-calls after
 * storing its verdict in chain_res. Both count through the same code; only
 * where the verdict comes from differs.
 */
#ifndef __PKTLENS_BPF_CHAIN_H
#define __PKTLENS_BPF_CHAIN_H

#include "common.h"
#include "maps.h"

/* A PROG_ARRAY of PL_CHAIN_SLOTS; each program type needs its own. */
#define PL_CHAIN_MAP(name)                                \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY);    \
		__uint(max_entries, PL_CHAIN_SLOTS);      \
		__type(key, __u32);                       \
		__type(value, __u32);                     \
	} name SEC(".maps")

/*
 * The verdict the RULES program of @slot left for the packet in flight, and
 * cleared: a POLICY program is also reached straight from the entry (no
 * expression), and must not see the previous packet's verdict.
 */
static __always_inline __u32 pl_chain_result(__u32 slot)
{
	__u32 *r = bpf_map_lookup_elem(&chain_res, &slot);
	__u32 v = 0;

	if (r) {
		v = *r;
		*r = 0;
	}
	return v;
}

#endif /* __PKTLENS_BPF_CHAIN_H */
