/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the running kernel can do, probed once per process (loader/features.c)
 * by asking it (a tiny program loaded, a query) and, for tracepoints, from
 * its BTF. The
 * loader picks program variants from this, never from the version number;
 * `pktlens --version` prints it. What the kernel lacks is refused with
 * -ENOSYS and a reason from pl_feature_needs(): a runtime failure (exit 1).
 */
#ifndef __PKTLENS_FEATURES_H
#define __PKTLENS_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

enum pl_feature {
	PL_FEAT_TCX,		/* tc hooks as tcx links, else clsact + cls_bpf */
	PL_FEAT_XDP_FRAGS,	/* multi-buffer XDP ("xdp.frags") in native mode */
	PL_FEAT_XDP_LOAD_BYTES,	/* bpf_xdp_load_bytes(): samples taken at XDP, filters past the linear part */
	PL_FEAT_BPF_LOOP,	/* bpf_loop(): PL_POLICY_LIST_MAX list rules, else PL_POLICY_LIST_BOUNDED */
	PL_FEAT_COARSE_CLOCK,	/* bpf_ktime_get_coarse_ns(): cheaper flow timestamps */
	PL_FEAT_RETRANS_ERR,	/* tcp_retransmit_skb's err: failed retransmits seen too */
	PL_FEAT_XDP_TEST_META,	/* XDP test runs take an xdp_md: filter run's len is the wire length */
	PL_FEAT_XDP_DISPATCHER,	/* freplace: XDP joins libxdp's dispatcher, else a bpf_link alone */
	PL_FEAT_DROP_REASON,	/* kfree_skb's reason (enum skb_drop_reason): drops by reason */
	PL_FEAT_DROP_RX_SK,	/* kfree_skb's rx_sk: a socket's drop without device in its namespace */
	PL_FEAT_MAX,
};

struct pl_feature_info {
	const char *name;	/* short, for --version and JSON */
	const char *since;	/* the Linux release that brought it */
	const char *what;	/* what pktlens does with it */
	const char *without;	/* and what it does without */
};

extern const struct pl_feature_info pl_feature_info[PL_FEAT_MAX];

/* Whether the running kernel has @f (probed on the first call). */
bool pl_feature(enum pl_feature f);
/* The helpers of PL_HELPER_* (include/pktlens/pktlens.h) the kernel has, less the masked features. */
__u32 pl_kernel_helpers(void);
struct bpf_object;
/*
 * Set the 32-bit .rodata variable @name of @obj (opened, not loaded) to @v:
 * 0, -ENOENT if @obj has none, -EINVAL if it is not 32 bits wide.
 */
int pl_obj_set_u32(struct bpf_object *obj, const char *name, __u32 v);
/*
 * Tell packet object @obj what the kernel has (pl_helpers, bpf/compat.h):
 * every packet object gets this between open and load.
 */
int pl_obj_kernel(struct bpf_object *obj);
/* Whether the kernel's BTF has tracepoint @tp (its btf_trace_@tp prototype), for tp_btf. */
bool pl_tracepoint_btf(const char *tp);
/*
 * Why the tracing programs of @obj, @what ("the TCP probes"), did not load:
 * @err from their skeleton's load. A tp_btf program whose tracepoint the
 * kernel's BTF lacks is named (libbpf's errno says "No such process"), else
 * the load's errno. Returns the error, the reason in @why.
 */
int pl_probes_load_why(const struct bpf_object *obj, int err, const char *what, char *why,
		       size_t whylen);
/* The running kernel's release (uname -r). */
const char *pl_kernel_release(void);
/*
 * Whether an attachment in XDP mode @xdp_mode runs the frags variant of the
 * XDP programs ("xdp.frags"): native mode on a kernel that has frags.
 */
bool pl_xdp_frags(int xdp_mode);
struct pl_meta;
/*
 * Whether attachment @m runs the frags variant: pl_xdp_frags() of its mode,
 * unless its XDP program is in libxdp's dispatcher (loader/xdp_multi.h).
 */
bool pl_meta_xdp_frags(const struct pl_meta *m);
/*
 * pl_ebpf_load()'s flags for an XDP program that @m's entry program
 * tail-calls: BPF_F_XDP_HAS_FRAGS with the frags variant,
 * PL_EBPF_F_NO_ATTACH_TYPE when the entry is an extension program.
 */
__u32 pl_meta_xdp_load_flags(const struct pl_meta *m);
/*
 * The translator's .xdp_linear for this kernel (pcap/cbpf.h): XDP filters
 * read only the linear packet data where bpf_xdp_load_bytes() is missing.
 */
bool pl_xdp_linear(void);
/* "needs Linux 5.18 (this is 5.10.0-35-cloud-amd64)" for @f, into @buf. */
const char *pl_feature_needs(enum pl_feature f, char *buf, size_t len);

#endif /* __PKTLENS_FEATURES_H */
