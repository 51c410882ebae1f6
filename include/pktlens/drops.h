/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel/user ABI of the drop probes (probes/pktlens_drops.bpf.c,
 * probes/drops.c, cli/drops.c): why the kernel dropped packets, counted in
 * the kernel by reason, namespace, device, protocol and location. Plain C
 * types only, like pktlens.h.
 */
#ifndef __PKTLENS_DROPS_H
#define __PKTLENS_DROPS_H

/* Which tracepoint saw the drop. */
enum pl_drop_kind {
	PL_DROP_KFREE = 1,	/* skb:kfree_skb; reason: enum skb_drop_reason */
	PL_DROP_XDP_EXCEPTION,	/* xdp:xdp_exception; reason: the XDP action */
	PL_DROP_XDP_REDIRECT,	/* xdp:xdp_redirect_err / _map_err; reason: errno */
	PL_DROP_POLICY,		/* user space only: a pktlens policy rule; reason: rule id */
};

/* kfree_skb on a kernel whose tracepoint has no reason (before 5.17). */
#define PL_DROP_NO_REASON 0xffffffffU

/*
 * One aggregate of drop_stats. The device is skb->dev when the skb was
 * freed (the device it arrived on for a drop on receive, the one it was
 * to leave by on transmit), its name copied then, so devices of other
 * namespaces and deleted ones keep their names; netns: that device's
 * namespace (the socket's when the skb has no device, 0: neither). An skb
 * without a device but with a socket (TCP's receive path lets go of
 * skb->dev): ifindex is the device it arrived on (skb->skb_iif), dev empty
 * (pl_drops_read() names it where it can).
 */
struct pl_drop_key {
	__u64 netns;		/* namespace inode */
	__u64 location;		/* kfree_skb: kernel address that freed it; 0 otherwise */
	__u32 ifindex;		/* 0: no device */
	__u32 reason;
	char dev[16];
	__u16 l3;		/* ethertype (skb->protocol), host order; 0: unknown */
	__u8 l4;		/* IP protocol of IPv4/IPv6, else 0 */
	__u8 kind;		/* enum pl_drop_kind */
	__u32 pad;
};

struct pl_drop_val {
	__u64 packets;
	__u64 bytes;		/* skb->len (from the network header); XDP: 0, the tracepoints carry no length */
};

/* drop_flows: drops per flow of IPv4/IPv6 (v4 mapped into IPv6), as the packet carries it. */
struct pl_drop_flow_key {
	__u64 netns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;		/* host order; ICMP: type, code */
	__u16 dport;
	__u8 l4;
	__u8 pad[3];
};

struct pl_drop_flow_val {
	__u64 packets;
	__u64 bytes;
	__u32 reason;		/* the latest drop's (on this CPU) */
	__u32 ifindex;
	__u64 last_ns;		/* CLOCK_MONOTONIC of that drop: the latest of the CPUs' is the flow's */
};

/* drop_flows' value pinned by pktlens before last_ns (readers take the last CPU's reason). */
struct pl_drop_flow_val_v1 {
	__u64 packets;
	__u64 bytes;
	__u32 reason;
	__u32 ifindex;
};

/* drop_cfg[0], written before the probes are attached. */
struct pl_drop_cfg {
	__u64 netns;		/* only this namespace; 0: all */
	__u32 ifindex;		/* only this device (of netns); 0: all */
	__u32 flags;		/* PL_DROP_CFG_* */
	__u32 events_per_sec;	/* PL_DROP_CFG_EVENTS: at most this many per CPU and second */
	__u32 pad;
};

#define PL_DROP_CFG_FLOWS 1U	/* count per flow in drop_flows */
#define PL_DROP_CFG_EVENTS 2U	/* one ring record per drop (rate-limited) */

/* drop_lost[]: events not delivered */
#define PL_DROP_LOST_RING 0	/* the ring was full */
#define PL_DROP_LOST_RATE 1	/* over events_per_sec */
#define PL_DROP_LOST_TABLE 2	/* drops drop_stats had no room for (not events: counts) */
#define PL_DROP_LOST_MAX 3

#define PL_DROP_SNAP 96		/* header bytes per event, from the network header */

/* Ring record of --events. */
struct pl_drop_event {
	__u64 ts_ns;		/* CLOCK_MONOTONIC */
	struct pl_drop_key k;
	__u32 len;		/* skb->len */
	__u32 caplen;		/* bytes of data[] that are the packet's */
	__u8 data[PL_DROP_SNAP];
};

/* Pins in the attachment's directory (attach --probes drops). */
#define PL_MAP_DROP_STATS "drop_stats"
#define PL_MAP_DROP_FLOWS "drop_flows"
/* drop_lost[]: PL_DROP_LOST_TABLE, drops drop_stats had no room for (older pktlens: not pinned) */
#define PL_MAP_DROP_LOST "drop_lost"
#define PL_PIN_DROP_KFREE_LINK "drop_kfree_link"
#define PL_PIN_DROP_XDP_EXC_LINK "drop_xdp_exc_link"
#define PL_PIN_DROP_XDP_RDR_LINK "drop_xdp_rdr_link"
#define PL_PIN_DROP_XDP_RDRM_LINK "drop_xdp_rdrm_link"

#endif /* __PKTLENS_DROPS_H */
