/* SPDX-License-Identifier: GPL-2.0 */
/* JSON documents for counters and flows, shared by the CLI, tests and exporters. */
#ifndef __PKTLENS_EXPORT_REPORT_H
#define __PKTLENS_EXPORT_REPORT_H

#include "json.h"
#include "../loader/loader.h"

/* "xdp/native in, tc/tcx in+out" */
const char *pl_fmt_hooks(const struct pl_meta *m, char *buf, size_t len);
/* [{"hook":"xdp","dir":"in","mode":"native","mechanism":"bpf_link","prog_id":N}, ...] */
void pl_json_hooks(struct jw *w, const struct pl_meta *m);
/* Whether @slot is attached per @m (shown even with no traffic). */
bool pl_slot_attached(const struct pl_meta *m, int slot);

struct pl_xdp_disp;
/*
 * The programs of libxdp dispatcher @d in run order, one line each after
 * @indent: position against pktlens's program @ours (before, pktlens,
 * after), priority, id, name, the actions that go on to the next program.
 */
void pl_print_xdp_disp(const struct pl_xdp_disp *d, __u32 ours, const char *indent);
/* The same as {"id":N,"mode":"skb","programs":[{"position":"before",...}]} */
void pl_json_xdp_disp(struct jw *w, const struct pl_xdp_disp *d, __u32 ours);
/*
 * The dispatcher pktlens's XDP program @m runs in, read into @d: false
 * when it runs alone (bpf_link) or not at all (then nothing to show).
 */
bool pl_meta_xdp_disp(const struct pl_meta *m, struct pl_xdp_disp *d);

/*
 * "tc in 4 packets, 340 bytes; tc out 3 packets, 246 bytes": the hooks
 * attached per @m (and any other that counted), into @buf.
 */
const char *pl_fmt_totals(const struct pl_meta *m, const struct pl_stats s[PL_SLOT_MAX], char *buf,
			  size_t len);
/*
 * "netns": inode, "netns_name": its /run/netns name or null, and for an
 * unnamed one "netns_pid"/"netns_comm" of a process inside it when found.
 */
void pl_json_netns(struct jw *w, uint64_t ino);
/*
 * The same for attachment @a, with "netns_id" (its directory: INODE, or
 * INODE:ID once set aside). A deleted namespace's attachment has no name
 * or process: its inode may be another namespace's now.
 */
void pl_json_att_netns(struct jw *w, const struct pl_attachment *a);
/*
 * @a's namespace for people: "INODE (name)", "INODE (pid P comm)" with
 * @pid, else "INODE"; a deleted namespace's "INODE:ID" alone.
 */
const char *pl_fmt_att_netns(const struct pl_attachment *a, bool pid, char *buf, size_t len);
/* Total packets and bytes over all verdicts. */
void pl_stats_totals(const struct pl_stats *s, __u64 *pkts, __u64 *bytes);
/*
 * What a slot counted between two readings of one attachment (the same
 * pl_state.stats_id), each given with the base of the stats --reset before it
 * (pl_state.base): the packets and bytes by verdict and the RMON buckets of
 * @d. The counters plus their base never go back: a reset between the
 * readings takes nothing away. @then NULL: all @now counted since attach.
 */
void pl_stats_since(const struct pl_stats *now, const struct pl_stats *now_base,
		    const struct pl_stats *then, const struct pl_stats *then_base,
		    struct pl_stats *d);
/* One hook/direction's counters as a JSON object. */
void pl_json_stats_slot(struct jw *w, const struct pl_stats *s, int slot, bool attached);
/* A flow key's fields (interface to ports) into the open object of @w, as flows -j has them. */
void pl_json_flow_key(struct jw *w, const char *ifname, const struct pl_flow_key *k);
/* "icmp_type", "icmp_code" of a flow key's @sport, @dport: null when PL_ICMP_NONE (no header read) */
void pl_json_icmp(struct jw *w, __u16 sport, __u16 dport);
/*
 * One flow object; rate in bytes per second; @retrans_segs < 0: no TCP
 * probes behind it (null); @drops < 0: no drop probes behind it (null).
 */
void pl_json_flow(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		  long long retrans_segs, long long drops);
/*
 * The same with the passive TCP fields of its connection (attach
 * --tcp-passive): @tcp (NULL: not analysed, "tcp": null), @half: which
 * end of @tcp sends the flow's packets.
 */
void pl_json_flow_tcp(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		      long long retrans_segs, long long drops, const struct pl_tcp_state *tcp,
		      int half);
/* A passive TCP RTT in microseconds, or 0 for none: the row's srtt, else the handshake's. */
__u32 pl_tcp_row_rtt(const struct pl_tcp_state *tcp, int half);
/* Bytes per second over the flow's lifetime, at least one second. */
double pl_flow_rate(const struct pl_flow_val *v);

#endif /* __PKTLENS_EXPORT_REPORT_H */
