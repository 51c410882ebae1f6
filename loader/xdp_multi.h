/* SPDX-License-Identifier: GPL-2.0 */
/*
 * XDP beside other programs (loader/xdp_multi.c): libxdp's multi-program
 * dispatcher. Where the kernel lets an extension program (freplace,
 * BPF_PROG_TYPE_EXT) replace a dispatcher slot, pktlens's XDP entry program
 * is loaded as one and joins the interface's dispatcher at a run priority,
 * going on to the next program for XDP_PASS only; other libxdp programs
 * (xdp-filter, xdp-loader) join and leave around it. Where the kernel
 * refuses, the loader attaches XDP alone with a bpf_link (loader/loader.c).
 *
 * Who owns what: libxdp pins the dispatcher's programs and their freplace
 * links under /sys/fs/bpf/xdp/dispatch-IFINDEX-ID/ (progN-prog, progN-link),
 * and those links keep pktlens's program running; pktlens pins only its
 * maps (and tc links) under PL_PIN_ROOT, as in bpf_link mode, and records
 * its program's id. Removing pktlens from the dispatcher is libxdp's
 * operation (a new dispatcher without it replaces the old one atomically).
 */
#ifndef __PKTLENS_XDP_MULTI_H
#define __PKTLENS_XDP_MULTI_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

struct bpf_object;
struct bpf_program;

/* Run priority in a dispatcher when not given: before xdp-filter (10) and libxdp's default (50). */
#define PL_XDP_PRIO_DEFAULT_N 1	/* for help texts (PL_STR) */
#define PL_XDP_PRIO_DEFAULT 1U
#define PL_XDP_PRIO_MAX 2147483647U
/* Programs a libxdp dispatcher holds at most */
#define PL_XDP_DISP_MAX 10

struct pl_xdp_prog {
	__u32 id;
	__u32 prio;		/* run priority: lower runs first */
	__u32 chain;		/* bit (1 << XDP_*) per action that goes on to the next program */
	char name[16];
};

/* What runs in XDP on an interface. */
struct pl_xdp_disp {
	__u32 id;		/* the dispatcher's program id; 0: no dispatcher */
	int mode;		/* enum pl_xdp_mode it runs in */
	size_t n;
	struct pl_xdp_prog prog[PL_XDP_DISP_MAX];	/* in run order */
	struct pl_xdp_prog alone;	/* a program attached without a dispatcher (id 0: none) */
};

/*
 * Whether this kernel lets pktlens join a dispatcher: a tiny extension
 * program loaded against one XDP program and linked to another, as libxdp
 * does (Linux 5.10; refused with EPERM on some kernels).
 */
bool pl_xdp_disp_probe(void);
/* Program @id's name (and id) from the kernel; the name "" if it is gone. */
void pl_xdp_prog_info(__u32 id, struct pl_xdp_prog *out);
/* Read what runs in XDP on @ifindex (this namespace). 0 or -errno. */
int pl_xdp_disp_read(int ifindex, struct pl_xdp_disp *d);
/* Whether program @id runs in the dispatcher of @ifindex, and at which *@prio (may be NULL). */
bool pl_xdp_disp_runs(int ifindex, __u32 id, __u32 *prio);
/* Whether program @id is an extension program (so it ran in a dispatcher). */
bool pl_xdp_prog_ext(__u32 id);
/*
 * Before joining @ifindex's XDP in @mode: a program attached without a
 * dispatcher is refused by name (-EBUSY), or removed with @force
 * (*@replaced set) unless it is @ours; a dispatcher in the other mode is
 * refused (-EBUSY); pktlens programs in the dispatcher that no attachment
 * of this namespace records (a killed attach's) are removed.
 */
int pl_xdp_disp_check(int ifindex, const char *ifname, int mode, __u32 ours, bool force,
		      bool *replaced, char *why, size_t whylen);
/*
 * Load @obj with @prog, its XDP entry, as an extension program into
 * @ifindex's dispatcher (made if missing) at priority @prio, going on to the
 * next program for XDP_PASS only; @next, the program @prog tail-calls,
 * loses its expected attach type like @prog (the kernel ties a PROG_ARRAY to
 * one). libxdp loads the object against the dispatcher. *@refused: the
 * kernel refused the object as a dispatcher's member, or the driver a
 * dispatcher without multi-buffer support at its MTU: attach alone instead,
 * with a new object.
 */
int pl_xdp_disp_join(struct bpf_object *obj, struct bpf_program *prog, struct bpf_program *next,
		     int ifindex, const char *ifname, int mode, __u32 prio, bool *refused, char *why,
		     size_t whylen);
/*
 * Why an attachment may run the XDP object built without tail calls
 * (pktlens_xdp_notail, -DPL_XDP_NO_TAIL): libxdp 1.3's dispatcher slots
 * do not "change packet data", and Linux 6.12 (a tail call counts as a
 * change since 6.13 and its stable backports) refuses an extension program
 * that does in place of one that does not (libxdp 1.5's dispatcher declares
 * it). Runtime-loaded stages (tcpdump filters, expression rules, sample
 * expressions) can only be reached by a tail call, so they are refused on
 * such an XDP hook; counting, plain sampling and field rules (a rule set in
 * the entry's policy_set, loader/policy.c) are compiled in.
 */
#define PL_XDP_NO_TAIL_WHY "Linux 6.12 and later refuse a tail-calling extension program in " \
	"the dispatcher of a libxdp without xdp-tools' fix of May 2025 (#509), such as 1.3"
/* Whether XDP program @id tail-calls through PROG_ARRAY @chain_fd (true when it cannot tell). */
bool pl_xdp_prog_tail_calls(__u32 id, int chain_fd);
/* A new fd of map @name of program @id, or -ENOENT (pktlens_xdp_notail's policy_set) */
int pl_xdp_prog_map_fd(__u32 id, const char *name);
/* -EBUSY with why "@what cannot run on XDP here: ..." (the way out) */
int pl_xdp_no_tail_why(const char *what, char *why, size_t whylen);
/*
 * The programs not pktlens's in @ifindex's libxdp dispatcher (0: none, or no
 * dispatcher), their names and ids into @names.
 */
size_t pl_xdp_disp_others(int ifindex, char *names, size_t len);
/* Where a dispatcher's member runs (pl_xdp_disp_where()). */
struct pl_xdp_where {
	__u64 netns;		/* the namespace's inode */
	int ifindex;
	char ifname[16];
};
/*
 * Where extension program @id's libxdp dispatcher (the one whose pins in
 * libxdp's bpffs directory hold it) is attached, in any network namespace
 * pl_netns_find() reaches: 1 and *@w; 0 when it is attached nowhere (its
 * interface was deleted: libxdp's pins alone keep it); -ENOENT when no
 * dispatcher's pins hold it.
 */
int pl_xdp_disp_where(__u32 id, struct pl_xdp_where *w);
/*
 * Remove the pins of the dispatcher of @id's that is attached nowhere we can
 * see (pl_xdp_disp_where() 0), as libxdp's own clean-up does: its programs
 * are freed. With other programs pinned there only @id's pins go (the device
 * may live on in a namespace we cannot enter, running them). 0 or -errno
 * with why (naming @ifname).
 */
int pl_xdp_disp_drop(__u32 id, const char *ifname, char *why, size_t whylen);
/* Take program @id out of @ifindex's dispatcher; 0 when it is not there. */
int pl_xdp_disp_leave(int ifindex, const char *ifname, __u32 id, char *why, size_t whylen);

#endif /* __PKTLENS_XDP_MULTI_H */
