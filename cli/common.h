/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the commands that read attachments. */
#ifndef __PKTLENS_CLI_COMMON_H
#define __PKTLENS_CLI_COMMON_H

#include "../export/json.h"
#include "../loader/loader.h"

/*
 * The attachments a command works on in this network namespace: @ifname's,
 * or all. Prints the error and returns an exit code (0 on success).
 */
int pl_select(const char *cmd, const char *ifname, struct pl_attachment **a, size_t *n);
/*
 * A command's DEV longer than an interface's name (IFNAMSIZ - 1 bytes) is an
 * alternative name (ip link property add ... altname, up to 127 bytes): @dev
 * is pointed at its interface's own name, which the command then acts on and
 * names. "CMD: DEV: no such interface (...)" and PL_EXIT_USAGE when no
 * interface of this namespace has it; else PL_EXIT_OK.
 */
int pl_dev_arg(const char *cmd, char **dev);
/*
 * The namespace a probe command (drops, tcp) traces, in @netns: the one its
 * --netns named (@netns non-zero already), else with -n NETNS the namespace
 * entered (as the exporters serve its alone), else 0: every namespace.
 * Prints "CMD: netns 'NETNS': why" and returns PL_EXIT_FAIL when the
 * current namespace cannot be read; else PL_EXIT_OK.
 */
int pl_probe_netns(const char *cmd, __u64 *netns);
/* What to say after an -errno of reading the pins (" (...)"), or "". */
const char *pl_pins_hint(int err);
/*
 * stats, list: who samples @a (loader's pl_sample_owner()), taking out what
 * a sampler killed with -9 left, which is said on stderr ("CMD: IF: ...").
 * Into @w a "sampler" object, null when none samples; without @w, with
 * @line a "  sampler ..." line on stdout, nothing when none samples.
 */
void pl_sampler_summary(struct jw *w, bool line, const char *cmd, const struct pl_attachment *a);
/* Open an attachment's maps, printing the error. Returns an exit code. */
int pl_open_state(const char *cmd, const struct pl_attachment *a, struct pl_state *st);
/*
 * A failed pl_*_open() of @a's pins: prints "CMD: IF: cannot open pinned maps
 * in DIR: why", with what to do for the likely causes ("CMD: IF: detached
 * meanwhile" when they are gone). Returns PL_EXIT_FAIL.
 */
int pl_open_error(const char *cmd, const struct pl_attachment *a, int err);
/* "CMD: IF: detached meanwhile": a view outlived its attachment. Returns PL_EXIT_FAIL. */
int pl_detached_error(const char *cmd, const char *ifname);
/*
 * Whether @a's interface was deleted (its pins and counters stay until detach):
 * then prints "CMD: IF: the attached interface was deleted (...)" and returns
 * PL_EXIT_USAGE, for the commands that would change what runs on it; else 0.
 * One moved to another namespace still runs its programs: not gone.
 */
int pl_refuse_gone(const char *cmd, const struct pl_attachment *a);
/*
 * @a's interface is still there: in @a's namespace (this one, or another entered
 * through its name or a process inside it) an interface has the index and the name
 * attached. When its XDP and tcx links hold no device (index 0) or its clsact
 * programs are gone, another tool took them off (bpftool link detach, tc qdisc del):
 * list's program-gone, not a deleted interface.
 */
bool pl_iface_still_here(const struct pl_attachment *a);
/*
 * 1: the namespace this thread is in has the interface of attachment @arg at its index
 * under its name, else 0 (pl_netns_run()'s form).
 */
int pl_iface_in_this_netns(void *arg);
/* Do @a's hooks run in another namespace, its interface moved there (pl_attachment_moved())? */
bool pl_moved_away(const struct pl_attachment *a);
/*
 * @a's XDP program was in libxdp's dispatcher of an interface deleted since:
 * the dispatcher runs nowhere, libxdp's pins alone keep the program (detach
 * --stale removes them with the attachment).
 */
bool pl_disp_stale(const struct pl_attachment *a);
/*
 * The interface with @ifindex is no longer in this namespace (deleted, or
 * moved away); false for index 0.
 */
bool pl_iface_gone(uint32_t ifindex);

/*
 * The attachments a view of several could not read. One that fails is left out
 * and the others are still shown: under -j its error goes to stderr alone while
 * the document is open (pl_view_errs_begin()), and the document ends with
 * "errors": [{"ifname": IF, "error": MESSAGE}, ...] when there were any
 * (pl_view_errs_end()), so it always parses.
 */
struct pl_view_errs {
	size_t n;
	char (*ifname)[16];
	char **msg;
	bool held;		/* pl_g.data_on_stdout before begin */
};
void pl_view_errs_begin(struct pl_view_errs *e);
/* After pl_err() said why @ifname could not be read: keeps that message */
void pl_view_errs_add(struct pl_view_errs *e, const char *ifname);
/* Under -j (@w open on the document's top object), the "errors" member; frees @e */
void pl_view_errs_end(struct pl_view_errs *e, struct jw *w);

#endif /* __PKTLENS_CLI_COMMON_H */
