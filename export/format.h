/* SPDX-License-Identifier: GPL-2.0 */
/* Turning ABI values into text: addresses, protocols, flags, times, names. */
#ifndef __PKTLENS_EXPORT_FORMAT_H
#define __PKTLENS_EXPORT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

#define PL_ADDR_STRLEN 46

/* IPv4-mapped addresses print as dotted quads, IPv6 compressed (RFC 5952). */
const char *pl_fmt_addr(const __u8 addr[16], char *buf, size_t len);
/* One end of a flow: "198.18.0.1:80", "[2001:db8::1]:80", the address alone without ports, "-" for non-IP. */
const char *pl_fmt_endpoint(const struct pl_flow_key *k, const __u8 *addr, __u16 port, char *buf,
			    size_t len);
/* "ipv4", "ipv6", "arp" or "0x88cc" */
const char *pl_fmt_l3(__u16 ethertype, char *buf, size_t len);
/* "tcp", "udp", "icmp", ... or the number; "" for non-IP */
const char *pl_fmt_l4(const struct pl_flow_key *k, char *buf, size_t len);
/* tcpdump-style flags: "S", "S.", "FP.", ... ("" when none) */
const char *pl_fmt_tcp_flags(__u8 flags, char *buf, size_t len);
/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns. Take it once for times shown
 * together (a flow's first and last seen): each reading of the two clocks
 * differs by their jitter, enough to put a one-packet flow's last_seen a
 * microsecond before its first_seen.
 */
__s64 pl_epoch_offset_ns(void);
/* CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns) to seconds since the epoch, by @offset_ns */
double pl_mono_to_epoch(__u64 ns, __s64 offset_ns);

extern const char *const pl_verdict_names[PL_VERDICT_MAX];
extern const char *const pl_rmon_names[PL_RMON_MAX];
extern const char *const pl_l3_names[PL_L3_MAX];
extern const char *const pl_l4_names[PL_L4_MAX];
extern const char *const pl_slot_hook[PL_SLOT_MAX];
extern const char *const pl_slot_dir[PL_SLOT_MAX];

#endif /* __PKTLENS_EXPORT_FORMAT_H */
