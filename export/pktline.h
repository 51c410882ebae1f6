/* SPDX-License-Identifier: GPL-2.0 */
/* One line per captured frame, like `tcpdump -n` (pktlens sample without -w). */
#ifndef __PKTLENS_EXPORT_PKTLINE_H
#define __PKTLENS_EXPORT_PKTLINE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

/* What a frame's headers say, as far as the captured bytes go. */
struct pl_frame_desc {
	struct pl_flow_key key;	/* l3proto, l4proto, addresses, ports; vlan */
	__u8 tcp_flags;
	__u8 ip;		/* 4 or 6; 0: not IP (or its header is cut off) */
	__u8 ports;		/* sport/dport are ports (or ICMP type/code) */
	__u8 frag;		/* a non-first IP fragment */
	__u8 cut;		/* 1: the Ethernet header is cut off, 2: a VLAN tag: no ethertype */
};

/* Dissect Ethernet, up to two VLAN tags, IPv4/IPv6 (extension headers), TCP/UDP/ICMP. */
void pl_frame_dissect(const uint8_t *d, uint32_t caplen, struct pl_frame_desc *o);
/* "IP 198.18.0.1.40000 > 198.18.0.2.80: tcp [S.]", "ARP", "ethertype 0x88cc", "[|ether]", ... */
const char *pl_frame_fmt(const struct pl_frame_desc *f, char *buf, size_t len);

#endif /* __PKTLENS_EXPORT_PKTLINE_H */
