/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the translator (pcap/): what its files share. The public API is
 * cbpf.h; translate.c explains the generated program as a whole.
 *
 *   validate.c  which cBPF programs are accepted; backward jumps unrolled
 *   analyze.c   reachability, bounds of X, the up-front length check
 *   translate.c emission: loads, ALU, jumps, returns; pl_cbpf_translate()
 *   vlan.c      the tc copy for a VLAN tag held in skb metadata
 *   stage.c     translated programs wrapped as chain and expression stages
 *   run.c       loading, BPF_PROG_TEST_RUN of captured packets
 *   disasm.c    eBPF as text
 *
 * Internal names start with xl_. Emission errors are sticky: the first
 * failure (-E2BIG, -ENOMEM) is kept in xlate.ret, later emits do nothing,
 * and the caller checks once.
 */
#ifndef __PKTLENS_PCAP_XLATE_H
#define __PKTLENS_PCAP_XLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/bpf.h>
#include <linux/filter.h>

#include "cbpf.h"
#include "insn.h"

/* Registers of the translated program */
#define REG_PKT		R6	/* packet start */
#define REG_A		R7	/* cBPF A, zero-extended */
#define REG_X		R8	/* cBPF X, zero-extended */
#define REG_END		R9	/* packet end */

/* Stack layout (offsets from r10) */
#define OFF_BUF		(-8)	/* helper load buffer */
#define OFF_CTX		(-16)	/* saved ctx */
#define OFF_LEN		(-24)	/* wire length, u32 */
#define OFF_MEM		(-88)	/* M[0..15], u32 each, 8-aligned */
#define OFF_VHDR	(-112)	/* tc VLAN copy: virtual frame bytes 0..23 */
#define OFF_VLEN	(-120)	/* tc VLAN copy: virtual frame length, u32 */
#define OFF_VOFF	(-124)	/* tc VLAN copy: X + k of a load, u32, not 8-aligned */

/*
 * Largest end offset read directly: the verifier tracks packet ranges up to
 * MAX_PACKET_OFF (0xffff). Beyond, the helper reads.
 */
#define PKT_DIRECT_MAX	0xffffU
/* Largest offset handed to the load helpers (both refuse more than INT_MAX). */
#define PKT_HELPER_MAX	0x7fffffff

/* Bounds of A and X the translator tracks (analyze.c) */
#define BOUND_UNKNOWN	UINT32_MAX
/* Up-front linear length check for constant offsets: at most this many bytes */
#define FAST_WINDOW	64U

/* No local jump (translate.c) */
#define NO_JUMP		SIZE_MAX

struct fixup {
	size_t pos;		/* eBPF index of the jump */
	uint32_t target;	/* start[] index it goes to */
	bool hop;		/* goes to the trampoline at eBPF index @at instead (emit_variant()) */
	size_t at;
};

struct xlate {
	const struct sock_filter *prog;	/* forward-only (after unrolling) */
	size_t len;
	struct pl_filter_opts o;
	bool ind_helper;		/* X-indexed loads only through the helper */
	bool vlan;			/* emitting the tc VLAN copy (virtual frame) */
	bool *reach;			/* [len] */
	uint32_t *xmax;			/* [len]: largest X on entry (BOUND_UNKNOWN) */
	uint32_t fast_len;		/* linear bytes checked up front, this variant */
	uint32_t base;			/* start[] index of this variant's insn 0 */
	size_t *start;			/* [3 * (len + 1)]: eBPF index of each cBPF insn */
	struct bpf_insn *out;
	size_t cnt, cap;
	struct fixup *fix;
	size_t nfix, fixcap;
	size_t *open;			/* fix[] indices of ja's whose target is not emitted yet */
	size_t nopen, opencap;
	int ret;			/* the first emission error, sticky */
	char *err;
	size_t errlen;
};

/* ---- validate.c ---- */

/* A cBPF load from the packet (absolute, indexed, or the MSH idiom) */
bool xl_is_load(uint16_t code);
/*
 * A program with backward jumps (libpcap's protochain loops) repeated
 * PL_CBPF_MAX_LOOPS + 1 times, each backward ja going forward into the next
 * copy; the last copy's returns 0. 0 when @prog has none (*out NULL).
 */
int xl_unroll(const struct sock_filter *prog, size_t len, struct sock_filter **out,
	      size_t *out_len);

/* ---- analyze.c ---- */

/* x->reach[i]: some path reaches instruction i (the program only jumps forward). */
void xl_mark_reachable(struct xlate *x);
/* x->xmax[i]: the largest X on entry to instruction i, over all paths. */
int xl_bound_regs(struct xlate *x);
/* Bytes of linear data worth checking once up front (0: emit one variant). */
uint32_t xl_fast_window(const struct xlate *x);

/* ---- translate.c: emission ---- */

void xl_emit(struct xlate *x, struct bpf_insn insn);
/* A forward jump inside the current sequence: emitted now, land()ed later. Its position. */
size_t xl_jmp_local(struct xlate *x, struct bpf_insn jump);
/* Make the local jump at @at land on the next instruction emitted. */
void xl_land(struct xlate *x, size_t at);
/* A jump to instruction @target of the current variant, patched once all are emitted. */
void xl_jmp_to(struct xlate *x, struct bpf_insn jump, uint32_t target);
/* return 0 (no match) */
void xl_ret0(struct xlate *x);
/* ldx size for 1, 2, 4 bytes */
uint8_t xl_ld_size(unsigned int bytes);
/* dst = the big-endian value of @bytes bytes just loaded into dst */
void xl_to_host(struct xlate *x, uint8_t dst, unsigned int bytes);
/* dst = @bytes bytes at constant offset k of the packet */
void xl_load_abs(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst);
/* r1 = (u64)X + k */
void xl_x_plus_k(struct xlate *x, uint32_t k);
/* dst = @bytes bytes at offset r1 (any 64-bit value), the way x->ind_helper says */
void xl_load_r1_any(struct xlate *x, unsigned int bytes, uint8_t dst);

/* ---- vlan.c ---- */

/* dst = @bytes bytes at virtual offset k (@ind: X + k) of the tc VLAN copy */
void xl_vlan_load(struct xlate *x, unsigned int bytes, uint32_t k, bool ind, uint8_t dst);
/* tc: when the tag is in skb metadata, build the virtual frame and enter the VLAN copy */
void xl_vlan_dispatch(struct xlate *x, bool uses_len, uint32_t vlan_base);

/* ---- run.c ---- */

/* opts.test_vlan_meta: a caller in front that moves cb[] into the VLAN metadata */
int xl_vlan_meta_caller(struct xlate *x);

#endif /* __PKTLENS_PCAP_XLATE_H */
