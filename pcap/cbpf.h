/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcpdump expressions in the kernel: libpcap compiles an expression to
 * classic BPF (compile.c), translate.c turns that into a complete eBPF
 * program for XDP or tc and loads/runs it.
 *
 * Two headers both define `struct bpf_insn`: libpcap's <pcap/bpf.h> (cBPF)
 * and <linux/bpf.h> (eBPF). This API names cBPF `struct sock_filter`
 * (<linux/filter.h>, same layout as libpcap's) and eBPF `struct bpf_insn`,
 * always the <linux/bpf.h> one: only compile.c includes <pcap/pcap.h>, and it
 * never touches eBPF instructions.
 *
 * Return convention: 0 (or a count/fd) on success, -errno on failure; `err`
 * buffers receive one line of text saying why.
 */
#ifndef __PKTLENS_PCAP_CBPF_H
#define __PKTLENS_PCAP_CBPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/filter.h>

#include "pktlens/pktlens.h"	/* PL_POLICY_EXPRS_MAX */

struct bpf_insn;	/* eBPF, <linux/bpf.h> */

/* The program type a translation is for. */
enum pl_filter_ctx {
	PL_FILTER_XDP,		/* BPF_PROG_TYPE_XDP: struct xdp_md */
	PL_FILTER_TC,		/* BPF_PROG_TYPE_SCHED_CLS: struct __sk_buff */
};

/* How a program is translated (and test-run with pl_ebpf_run()). */
struct pl_filter_opts {
	enum pl_filter_ctx ctx;
	/*
	 * BPF_PROG_TEST_RUN of captured packets: `len` (BPF_LD|BPF_LEN) is the
	 * capture's wire length passed beside the packet by pl_ebpf_run() (XDP:
	 * 4 bytes of metadata; tc: __sk_buff->cb[4]) rather than what the
	 * kernel holds (caplen). Without metadata an XDP program falls back to
	 * the buffer length, so this is harmless live, but leave it off there.
	 * XDP test runs take metadata since Linux 5.14: before, leave it off
	 * (len is then the captured length).
	 */
	bool test_wirelen;
	/*
	 * tc, BPF_PROG_TEST_RUN of captured packets: hand the program each
	 * frame's outer VLAN tag in skb metadata, as the stack hands tagged
	 * frames to tc ingress. The translation gets a caller that moves a tag
	 * from __sk_buff->cb[0..2] into the metadata with bpf_skb_vlan_push();
	 * pl_ebpf_run() with this set cuts the tag out of the frame and passes
	 * it there.
	 */
	bool test_vlan_meta;
	/*
	 * XDP on a kernel without bpf_xdp_load_bytes()/bpf_xdp_get_buff_len()
	 * (before 5.18, which also have no multi-buffer frames): loads past the
	 * packet data the program can read directly fail (no match, as libpcap
	 * past the capture) and `len` is data_end - data.
	 */
	bool xdp_linear;
	/*
	 * XDP, BPF_PROG_TEST_RUN of captured packets: a load at an offset past
	 * 65535 that the frame holds returns PL_FILTER_UNREACHABLE instead of 0
	 * (bpf_xdp_load_bytes() takes no larger offset, so no XDP program can
	 * read those bytes; pl_ebpf_run() then skips the packet rather than
	 * give a verdict libpcap would not). Live, such a load is no match.
	 */
	bool test_reach;
};

/* what a program made with opts.test_reach returns for a load it cannot reach */
#define PL_FILTER_UNREACHABLE	3

/* Limits. */
#define PL_CBPF_MAX_INSNS	65536U		/* cBPF input */
#define PL_EBPF_MAX_INSNS	1000000U	/* eBPF output (BPF_COMPLEXITY_LIMIT_INSNS) */
#define PL_CBPF_MAX_LOOPS	200U		/* backward jumps taken per packet (ip6 protochain) */
#define PL_CBPF_SNAPLEN		262144U		/* pcap_open_dead() snaplen */

/* ---- cBPF -> eBPF, load, run (no libpcap; files in pcap/xlate.h) ---- */

/*
 * Check that @prog is a cBPF program libpcap's bpf_filter() runs with
 * defined results and the translator accepts: known opcodes only, scratch
 * index < 16, no constant division by 0 or shift by >= 32, jumps inside the
 * program (backward ones, as libpcap emits for protochain, are unrolled up to
 * PL_CBPF_MAX_LOOPS times), last instruction a return. -EOPNOTSUPP for
 * ancillary loads (constant negative offsets: SKF_AD_OFF, SKF_NET_OFF,
 * SKF_LL_OFF), which only the kernel's socket filters implement; -EINVAL
 * otherwise. X-indexed loads take any k: bpf_filter() adds X + k without
 * wrapping, so a k of 2^31 and more reads past the packet (no match).
 */
int pl_cbpf_validate(const struct sock_filter *prog, size_t len, char *err, size_t errlen);

/*
 * Translate @prog into a complete eBPF program for @o->ctx: returns 0 and a
 * malloc'd array in *out (free() it) of *out_len instructions. The program
 * returns 1 where the cBPF program returns non-zero (match), 0 otherwise
 * (no match, out-of-bounds load, division by zero). Errors: those of
 * pl_cbpf_validate(), -E2BIG (too large for the kernel), -ENOMEM.
 */
int pl_cbpf_translate(const struct sock_filter *prog, size_t len, const struct pl_filter_opts *o,
		      struct bpf_insn **out, size_t *out_len, char *err, size_t errlen);

/* A tcpdump expression on its way into the kernel (pl_filter_build()). */
struct pl_filter_prog {
	struct sock_filter *cbpf;	/* libpcap's program */
	size_t cbpf_len;
	struct bpf_insn *ebpf;		/* its translation */
	size_t ebpf_len;
};

/*
 * Compile @expr (pl_cbpf_compile()) and translate it for @o: 0, or -errno
 * with @err saying why and nothing held: -EINVAL a bad expression,
 * -EOPNOTSUPP it needs a live capture, -E2BIG too large, -ENOMEM.
 */
int pl_filter_build(const char *expr, const struct pl_filter_opts *o, struct pl_filter_prog *p,
		    char *err, size_t errlen);
void pl_filter_prog_free(struct pl_filter_prog *p);

/*
 * Where a chained program reports its verdict (include/pktlens, PL_CHAIN_*)
 * and where it goes on.
 */
#define PL_CHAIN_NEXT_MAX 3

struct pl_chain_target {
	enum pl_filter_ctx ctx;
	int res_fd;		/* PERCPU_ARRAY of u32: chain_res or sample_res */
	uint32_t res_key;	/* enum pl_slot of the hook */
	int chain_fd;		/* the hook's PROG_ARRAY */
	uint32_t next[PL_CHAIN_NEXT_MAX];	/* slots tail-called in this order */
	uint32_t nnext;		/* 1..PL_CHAIN_NEXT_MAX */
};

/*
 * Wrap a translated program (pl_cbpf_translate()) as a chain stage of a
 * pktlens hook: a new main function calls it as a BPF-to-BPF subprogram,
 * stores its 0/1 verdict in res[res_key] of this CPU and tail-calls
 * chain[next[0]], else chain[next[1]], ... (a RULES stage: the hook's rule
 * set, else its counting program). If every slot is empty the packet goes
 * on (XDP_PASS, TC_ACT_UNSPEC). Returns 0 and a malloc'd program in *out,
 * or -errno. Load it with pl_ebpf_load() while the map fds are open; the
 * program then holds its own references to both maps.
 */
int pl_ebpf_chain(const struct bpf_insn *filter, size_t cnt, const struct pl_chain_target *t,
		  struct bpf_insn **out, size_t *out_len);

/* Where an expression stage of policy rules reports (pl_ebpf_expr_stage()). */
struct pl_expr_target {
	enum pl_filter_ctx ctx;
	int bits_fd;		/* PERCPU_ARRAY of u64: bit i = expression i matched */
	uint32_t bits_key;	/* enum pl_slot of the hook */
	int chain_fd;		/* the hook's PROG_ARRAY */
	uint32_t next_slot;	/* the rule set's policy program */
};

/* Expression rules judged by one stage: a bit each in a u64 */
#define PL_EXPR_STAGE_MAX PL_POLICY_EXPRS_MAX
_Static_assert(PL_EXPR_STAGE_MAX <= 64, "one bit per expression in expr_bits (u64)");

/*
 * Policy rules with tcpdump expressions: one program that calls each of
 * @n (<= PL_EXPR_STAGE_MAX) translated programs as a BPF-to-BPF subprogram, sets bit i of a
 * u64 for each that matched, stores it in bits[bits_key] of this CPU and
 * tail-calls chain[next_slot]. Returns 0 and a malloc'd program, or -errno.
 */
int pl_ebpf_expr_stage(const struct bpf_insn *const *filters, const size_t *counts, size_t n,
		       const struct pl_expr_target *t, struct bpf_insn **out, size_t *out_len);

/*
 * Load a translated program with bpf_prog_load() as BPF_PROG_TYPE_XDP or
 * BPF_PROG_TYPE_SCHED_CLS, program name "pl_filter". @prog_flags goes to the
 * kernel (e.g. BPF_F_XDP_HAS_FRAGS to match a frags-aware caller of a tail
 * call). Returns the fd, or -errno; then @log (if given) holds the last
 * lines of the verifier's log (empty if it wrote none, e.g. for EPERM).
 */
int pl_ebpf_load(const struct bpf_insn *insns, size_t cnt, enum pl_filter_ctx ctx,
		 uint32_t prog_flags, char *log, size_t loglen);
/*
 * pktlens's own bit in pl_ebpf_load()'s @prog_flags, never passed to the
 * kernel: load an XDP program without expected_attach_type BPF_XDP, like
 * the extension program (libxdp's dispatcher) that tail-calls it; the
 * kernel lets a PROG_ARRAY hold programs of one expected_attach_type only.
 */
#define PL_EBPF_F_NO_ATTACH_TYPE (1U << 31)

/*
 * Run a loaded filter, translated with @o, once on one captured packet with
 * BPF_PROG_TEST_RUN: @caplen bytes at @pkt, original length @wirelen.
 * *match is set to whether it returned non-zero. -EMSGSIZE when the kernel
 * cannot build such a packet (shorter than an Ethernet header, or too long
 * for a tc test run), else 0 or -errno.
 */
int pl_ebpf_run(int prog_fd, const struct pl_filter_opts *o, const void *pkt, uint32_t caplen,
		uint32_t wirelen, bool *match);

/*
 * Instruction @i as text, opcode then verifier-log style: "(bf) r1 = r6".
 * Returns the number of slots it takes (2 for a 64-bit immediate load, else 1).
 */
int pl_ebpf_insn_str(const struct bpf_insn *insns, size_t cnt, size_t i, char *buf, size_t len);

/* "xdp" or "tc" */
const char *pl_filter_ctx_name(enum pl_filter_ctx ctx);

/* ---- compile.c: libpcap ---- */

/*
 * Compile a tcpdump expression for Ethernet (DLT_EN10MB, snaplen 262144,
 * optimizer on, netmask 0 as in tcpdump -r). Returns 0 and a malloc'd program in *out,
 * or -EINVAL with libpcap's error text in @err, -E2BIG for an expression
 * of PL_FILTER_EXPR_MAX bytes or more (what an attachment can keep).
 */
int pl_cbpf_compile(const char *expr, struct sock_filter **out, size_t *out_len,
		    char *err, size_t errlen);

/* libpcap's bpf_image(): one instruction like `tcpdump -d`, e.g. "(000) ldh [12]". */
void pl_cbpf_image(const struct sock_filter *insn, int n, char *buf, size_t len);

/*
 * libpcap's user-space interpreter bpf_filter(): the reference verdict.
 * @prog must pass pl_cbpf_validate() (bpf_filter() runs until a return).
 */
unsigned int pl_cbpf_filter(const struct sock_filter *prog, size_t len, const void *pkt,
			    uint32_t wirelen, uint32_t caplen);

/* A capture file being read (pcap or pcapng, Ethernet only). */
struct pl_pcap;

/*
 * Open @path. -errno from opening the file (err: its strerror), -EINVAL for
 * a file libpcap cannot read, -EPROTONOSUPPORT for a link type other than
 * Ethernet (err names it).
 */
int pl_pcap_open(const char *path, struct pl_pcap **out, char *err, size_t errlen);
/*
 * Next packet: 1 and its bytes (valid until the next call), 0 at the end,
 * -EIO for a damaged file (err says why).
 */
int pl_pcap_next(struct pl_pcap *p, const uint8_t **data, uint32_t *caplen, uint32_t *wirelen,
		 char *err, size_t errlen);
void pl_pcap_close(struct pl_pcap *p);

#endif /* __PKTLENS_PCAP_CBPF_H */
