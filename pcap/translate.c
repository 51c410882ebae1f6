// SPDX-License-Identifier: GPL-2.0
/*
 * Classic BPF (as libpcap emits it) -> eBPF, a complete XDP or tc program.
 *
 * Registers: r6 packet start, r9 packet end (direct packet access), r7 A,
 * r8 X (both kept zero-extended: every ALU op is 32-bit), r0-r5 scratch.
 * Stack: ctx pointer, `len`, a load buffer for helpers, scratch M[0..15].
 *
 * Loads are big-endian and bounds-checked like libpcap's bpf_filter(): the
 * fast path reads the packet directly after comparing against data_end; when
 * that fails (end of the linear part, or the offset is too large for the
 * verifier's packet range), bpf_xdp_load_bytes()/bpf_skb_load_bytes() reads
 * the rest of a multi-buffer frame or non-linear skb, and if that fails too
 * the program returns 0 (no match), as libpcap does. Division by X == 0 also
 * returns 0. A, X and M[] start at 0.
 *
 * Speed: a program with two or more constant-offset loads within the first
 * 64 bytes is emitted twice; one check up front picks the copy without
 * per-load checks for those offsets when the linear data is long enough.
 * X-indexed loads skip the 64-bit clamp of X + k when the program itself
 * bounds X (e.g. `ldxb 4*([14]&0xf)`), as the verifier knows the same bound.
 *
 * VLAN tags on tc: the stack moves a packet's outer VLAN tag into skb
 * metadata before tc ingress (and may on egress), while libpcap's program
 * reads the frame as on the wire. A tc program therefore gets one more copy,
 * taken when skb->vlan_present: it reads a virtual frame with the tag put
 * back at offset 12. The first 20 virtual bytes (12 of MACs, the tag, 4 more
 * of the frame) are copied to the stack once; loads below offset 16 read
 * them there, loads from 16 on read the packet 4 bytes earlier, and `len`
 * and the bounds grow by the 4 tag bytes.
 *
 * Jumps: cBPF jumps go forward by at most 255 instructions (conditional) or
 * 2^32 (ja). Every cBPF instruction is emitted with jumps to symbolic targets,
 * patched once all addresses are known; a ja too long for the 16-bit offset
 * becomes a `gotol` (BPF_JMP32|BPF_JA, 32-bit offset). Conditional jumps stay
 * within 255 * (longest expansion) instructions, well inside 16 bits.
 * Backward jumps (libpcap's protochain loops) are unrolled first: the program
 * is repeated PL_CBPF_MAX_LOOPS + 1 times, each backward ja going forward into
 * the next copy; the last copy's backward ja returns 0. Instructions no path
 * reaches are dropped (the verifier refuses unreachable code).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>
#include <linux/filter.h>
#include <bpf/bpf.h>

#include "cbpf.h"

/* eBPF registers */
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
#define REG_PKT		R6
#define REG_A		R7
#define REG_X		R8
#define REG_END		R9

/* Stack layout (offsets from r10) */
#define OFF_BUF		(-8)	/* helper load buffer */
#define OFF_CTX		(-16)	/* saved ctx */
#define OFF_LEN		(-24)	/* wire length, u32 */
#define OFF_MEM		(-88)	/* M[0..15], u32 each, 8-aligned */
#define OFF_VHDR	(-112)	/* tc VLAN copy: virtual frame bytes 0..23 */
#define OFF_VLEN	(-120)	/* tc VLAN copy: virtual frame length, u32 */
#define OFF_VOFF	(-124)	/* tc VLAN copy: X + k of a load, u32, not 8-aligned */

/* tc VLAN copy: virtual offsets below this read the stack copy */
#define VHDR_SPLIT	16U
/* ... of which the frame itself fills this many for sure (14-byte header + tag) */
#define VHDR_SURE	18U

/*
 * Largest end offset read directly: the verifier tracks packet ranges up to
 * MAX_PACKET_OFF (0xffff). Beyond, the helper reads.
 */
#define PKT_DIRECT_MAX	0xffffU
/* Largest offset handed to the load helpers (both refuse more than INT_MAX). */
#define PKT_HELPER_MAX	0x7fffffff

/* Bounds of A and X the translator tracks (bound_regs()) */
#define BOUND_UNKNOWN	UINT32_MAX
/* Up-front linear length check for constant offsets: at most this many bytes */
#define FAST_WINDOW	64U

struct fixup {
	size_t pos;		/* eBPF index of the jump */
	uint32_t target;	/* start[] index it goes to */
};

struct xlate {
	const struct sock_filter *prog;	/* forward-only (after unrolling) */
	size_t len;
	enum pl_filter_ctx ctx;
	unsigned int flags;
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
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *pl_filter_ctx_name(enum pl_filter_ctx ctx)
{
	return ctx == PL_FILTER_TC ? "tc" : "xdp";
}

/* ---- validation ---- */

static bool is_load(uint16_t code)
{
	switch (code) {
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_H | BPF_ABS:
	case BPF_LD | BPF_B | BPF_ABS:
	case BPF_LD | BPF_W | BPF_IND:
	case BPF_LD | BPF_H | BPF_IND:
	case BPF_LD | BPF_B | BPF_IND:
	case BPF_LDX | BPF_B | BPF_MSH:
		return true;
	}
	return false;
}

/* 0, or why @f is not an instruction we (and bpf_filter()) handle */
static const char *insn_invalid(const struct sock_filter *f)
{
	switch (f->code) {
	case BPF_RET | BPF_K:
	case BPF_RET | BPF_A:
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_H | BPF_ABS:
	case BPF_LD | BPF_B | BPF_ABS:
	case BPF_LD | BPF_W | BPF_LEN:
	case BPF_LDX | BPF_W | BPF_LEN:
	case BPF_LD | BPF_W | BPF_IND:
	case BPF_LD | BPF_H | BPF_IND:
	case BPF_LD | BPF_B | BPF_IND:
	case BPF_LDX | BPF_B | BPF_MSH:
	case BPF_LD | BPF_IMM:
	case BPF_LDX | BPF_IMM:
	case BPF_JMP | BPF_JA:
	case BPF_JMP | BPF_JEQ | BPF_K:
	case BPF_JMP | BPF_JGT | BPF_K:
	case BPF_JMP | BPF_JGE | BPF_K:
	case BPF_JMP | BPF_JSET | BPF_K:
	case BPF_JMP | BPF_JEQ | BPF_X:
	case BPF_JMP | BPF_JGT | BPF_X:
	case BPF_JMP | BPF_JGE | BPF_X:
	case BPF_JMP | BPF_JSET | BPF_X:
	case BPF_ALU | BPF_ADD | BPF_K:
	case BPF_ALU | BPF_SUB | BPF_K:
	case BPF_ALU | BPF_MUL | BPF_K:
	case BPF_ALU | BPF_AND | BPF_K:
	case BPF_ALU | BPF_OR | BPF_K:
	case BPF_ALU | BPF_XOR | BPF_K:
	case BPF_ALU | BPF_ADD | BPF_X:
	case BPF_ALU | BPF_SUB | BPF_X:
	case BPF_ALU | BPF_MUL | BPF_X:
	case BPF_ALU | BPF_DIV | BPF_X:
	case BPF_ALU | BPF_MOD | BPF_X:
	case BPF_ALU | BPF_AND | BPF_X:
	case BPF_ALU | BPF_OR | BPF_X:
	case BPF_ALU | BPF_XOR | BPF_X:
	case BPF_ALU | BPF_LSH | BPF_X:
	case BPF_ALU | BPF_RSH | BPF_X:
	case BPF_ALU | BPF_NEG:
	case BPF_MISC | BPF_TAX:
	case BPF_MISC | BPF_TXA:
		return NULL;
	case BPF_LD | BPF_MEM:
	case BPF_LDX | BPF_MEM:
	case BPF_ST:
	case BPF_STX:
		return f->k < 16 ? NULL : "scratch memory index out of range (M[0..15])";
	case BPF_ALU | BPF_DIV | BPF_K:
	case BPF_ALU | BPF_MOD | BPF_K:
		return f->k ? NULL : "division by constant 0";
	case BPF_ALU | BPF_LSH | BPF_K:
	case BPF_ALU | BPF_RSH | BPF_K:
		return f->k < 32 ? NULL : "shift by a constant of 32 or more";
	}
	return "unknown opcode";
}

static const char *ancillary_name(uint32_t k)
{
	if (k >= (uint32_t)SKF_AD_OFF) {
		switch (k - (uint32_t)SKF_AD_OFF) {
		case SKF_AD_PKTTYPE:
			return "SKF_AD_PKTTYPE ('inbound'/'outbound')";
		case SKF_AD_IFINDEX:
			return "SKF_AD_IFINDEX ('ifindex')";
		case SKF_AD_VLAN_TAG:
			return "SKF_AD_VLAN_TAG";
		case SKF_AD_VLAN_TAG_PRESENT:
			return "SKF_AD_VLAN_TAG_PRESENT";
		case SKF_AD_PROTOCOL:
			return "SKF_AD_PROTOCOL";
		}
		return "SKF_AD_OFF";
	}
	if (k >= (uint32_t)SKF_NET_OFF)
		return "SKF_NET_OFF";
	if (k >= (uint32_t)SKF_LL_OFF)
		return "SKF_LL_OFF";
	return "a negative offset";
}

static int check_jumps(const struct sock_filter *f, size_t i, size_t len, char *err, size_t errlen)
{
	if (f->code == (BPF_JMP | BPF_JA)) {
		int64_t to = (int64_t)i + 1 + (int32_t)f->k;

		if ((int32_t)f->k >= 0)
			to = (int64_t)i + 1 + f->k;
		if (to < 0 || to >= (int64_t)len) {
			set_err(err, errlen, "cBPF insn %zu: jump out of the program", i);
			return -EINVAL;
		}
		if (to == (int64_t)i) {
			set_err(err, errlen, "cBPF insn %zu: jump to itself (endless loop)", i);
			return -EINVAL;
		}
		return 0;
	}
	if (BPF_CLASS(f->code) == BPF_JMP &&
	    (i + 1 + f->jt >= len || i + 1 + f->jf >= len)) {
		set_err(err, errlen, "cBPF insn %zu: jump out of the program", i);
		return -EINVAL;
	}
	return 0;
}

int pl_cbpf_validate(const struct sock_filter *prog, size_t len, char *err, size_t errlen)
{
	const char *why;
	int ret;

	if (!prog || !len || len > PL_CBPF_MAX_INSNS) {
		set_err(err, errlen, "cBPF program of %zu instructions (1..%u)", len,
			PL_CBPF_MAX_INSNS);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		const struct sock_filter *f = &prog[i];

		why = insn_invalid(f);
		if (why) {
			set_err(err, errlen, "cBPF insn %zu (code 0x%02x k 0x%x): %s", i,
				f->code, f->k, why);
			return -EINVAL;
		}
		if (is_load(f->code) && (int32_t)f->k < 0) {
			set_err(err, errlen,
				"cBPF insn %zu: load from %s (0x%x): ancillary data loads are not supported in-kernel",
				i, ancillary_name(f->k), f->k);
			return -EOPNOTSUPP;
		}
		ret = check_jumps(f, i, len, err, errlen);
		if (ret)
			return ret;
	}
	if (BPF_CLASS(prog[len - 1].code) != BPF_RET) {
		set_err(err, errlen, "cBPF program does not end with a return");
		return -EINVAL;
	}
	return 0;
}

/* ---- unrolling backward jumps ---- */

static bool has_backward_jump(const struct sock_filter *prog, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (prog[i].code == (BPF_JMP | BPF_JA) && (int32_t)prog[i].k < 0)
			return true;
	return false;
}

/*
 * Copy c of the program sits at [c * len, (c + 1) * len). A backward ja in
 * copy c lands in copy c + 1; in the last copy it returns 0 (the loop ran
 * more than PL_CBPF_MAX_LOOPS times).
 */
static int unroll(const struct sock_filter *prog, size_t len, struct sock_filter **out,
		  size_t *out_len)
{
	size_t copies = PL_CBPF_MAX_LOOPS + 1, n = len * copies;
	struct sock_filter *u;

	u = calloc(n, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (size_t c = 0; c < copies; c++) {
		for (size_t i = 0; i < len; i++) {
			struct sock_filter f = prog[i];

			if (f.code == (BPF_JMP | BPF_JA) && (int32_t)f.k < 0) {
				if (c + 1 == copies) {
					f = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
				} else {
					/* i + 1 + k (k < 0), in the next copy */
					f.k = (uint32_t)((int64_t)len + (int32_t)f.k);
				}
			}
			u[c * len + i] = f;
		}
	}
	*out = u;
	*out_len = n;
	return 0;
}

/* ---- emission ---- */

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src,
				  .off = off, .imm = imm };
}

static int emit(struct xlate *x, struct bpf_insn i)
{
	if (x->cnt == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct bpf_insn *o;

		if (x->cnt >= PL_EBPF_MAX_INSNS) {
			set_err(x->err, x->errlen, "translated program exceeds %u instructions",
				PL_EBPF_MAX_INSNS);
			return -E2BIG;
		}
		o = realloc(x->out, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		x->out = o;
		x->cap = cap;
	}
	x->out[x->cnt++] = i;
	return 0;
}

/* shorthands; each returns 0 or -errno */
static int alu32_imm(struct xlate *x, uint8_t op, uint8_t dst, uint32_t imm)
{
	return emit(x, insn(BPF_ALU | op | BPF_K, dst, 0, 0, (int32_t)imm));
}

static int alu32_reg(struct xlate *x, uint8_t op, uint8_t dst, uint8_t src)
{
	return emit(x, insn(BPF_ALU | op | BPF_X, dst, src, 0, 0));
}

static int alu64_imm(struct xlate *x, uint8_t op, uint8_t dst, int32_t imm)
{
	return emit(x, insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm));
}

static int alu64_reg(struct xlate *x, uint8_t op, uint8_t dst, uint8_t src)
{
	return emit(x, insn(BPF_ALU64 | op | BPF_X, dst, src, 0, 0));
}

static int ldx(struct xlate *x, uint8_t size, uint8_t dst, uint8_t src, int16_t off)
{
	return emit(x, insn(BPF_LDX | size | BPF_MEM, dst, src, off, 0));
}

static int stx(struct xlate *x, uint8_t size, uint8_t dst, uint8_t src, int16_t off)
{
	return emit(x, insn(BPF_STX | size | BPF_MEM, dst, src, off, 0));
}

static int call(struct xlate *x, int32_t helper)
{
	return emit(x, insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper));
}

/* return 0 (no match) */
static int ret0(struct xlate *x)
{
	int err = alu32_imm(x, BPF_MOV, R0, 0);

	return err ?: emit(x, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

/*
 * A forward jump inside the current sequence: emit now, land() later.
 * *at receives its position.
 */
static int jmp_local(struct xlate *x, uint8_t code, uint8_t dst, uint8_t src, int32_t imm,
		     size_t *at)
{
	*at = x->cnt;
	return emit(x, insn(code, dst, src, 0, imm));
}

/* Make the local jump at @at land on the next instruction emitted. */
static void land(struct xlate *x, size_t at)
{
	x->out[at].off = (int16_t)(x->cnt - at - 1);
}

/* A jump to cBPF instruction @target, patched in patch_jumps(). */
static int jmp_to(struct xlate *x, uint8_t code, uint8_t dst, uint8_t src, int32_t imm,
		  uint32_t target)
{
	if (x->nfix == x->fixcap) {
		size_t cap = x->fixcap ? x->fixcap * 2 : 64;
		struct fixup *f = realloc(x->fix, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		x->fix = f;
		x->fixcap = cap;
	}
	x->fix[x->nfix++] = (struct fixup){ .pos = x->cnt, .target = x->base + target };
	return emit(x, insn(code, dst, src, 0, imm));
}

static uint8_t ld_size(unsigned int bytes)
{
	return bytes == 4 ? BPF_W : bytes == 2 ? BPF_H : BPF_B;
}

/* dst = big-endian value of @bytes bytes just loaded into dst */
static int to_host(struct xlate *x, uint8_t dst, unsigned int bytes)
{
	if (bytes == 1)
		return 0;
	return emit(x, insn(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, (int32_t)bytes * 8));
}

/*
 * Slow path: offset in r2 (at most PKT_HELPER_MAX); read @bytes bytes with
 * the helper into dst, or return 0. *fail gets a jump to be landed on a
 * "return 0" (the caller emits it, shared with its own failures).
 */
static int emit_helper_load(struct xlate *x, unsigned int bytes, uint8_t dst, size_t *fail)
{
	int32_t helper = x->ctx == PL_FILTER_TC ? BPF_FUNC_skb_load_bytes : BPF_FUNC_xdp_load_bytes;
	int err;

	err = ldx(x, BPF_DW, R1, R10, OFF_CTX);
	err = err ?: alu64_reg(x, BPF_MOV, R3, R10);
	err = err ?: alu64_imm(x, BPF_ADD, R3, OFF_BUF);
	err = err ?: alu64_imm(x, BPF_MOV, R4, (int32_t)bytes);
	err = err ?: call(x, helper);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, fail);
	err = err ?: ldx(x, ld_size(bytes), dst, R10, OFF_BUF);
	return err ?: to_host(x, dst, bytes);
}

/*
 * The common end of a load, offset in r2 for the helper:
 *         <helper>; goto done
 *   fail: return 0                   (also where *j_fail2 jumps, if any)
 *   fast: dst = *(ptr + off)         (where *j_fast jumps, if any)
 *   done:
 */
static int emit_load_end(struct xlate *x, unsigned int bytes, uint8_t dst, size_t j_fast,
			 size_t j_fail2, uint8_t ptr, int16_t off)
{
	size_t j_fail, j_done;
	int err;

	err = emit_helper_load(x, bytes, dst, &j_fail);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JA, 0, 0, 0, &j_done);
	if (err)
		return err;
	land(x, j_fail);
	if (j_fail2 != SIZE_MAX)
		land(x, j_fail2);
	err = ret0(x);
	if (!err && j_fast != SIZE_MAX) {
		land(x, j_fast);
		err = ldx(x, ld_size(bytes), dst, ptr, off);
		err = err ?: to_host(x, dst, bytes);
	}
	land(x, j_done);
	return err;
}

/*
 * dst = @bytes bytes at constant offset k:
 *   k + n <= fast_len (checked up front):  dst = *(r6 + k)
 *   k + n <= 0xffff:  r1 = r6 + k + n; if r1 <= r9 goto fast; r2 = k; <end>
 *   beyond:           r2 = k; <helper>
 */
static int emit_load_abs(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	size_t j_fast = SIZE_MAX;
	int err = 0;

	if ((uint64_t)k + bytes <= x->fast_len) {
		err = ldx(x, ld_size(bytes), dst, REG_PKT, (int16_t)k);
		return err ?: to_host(x, dst, bytes);
	}
	if ((uint64_t)k + bytes <= PKT_DIRECT_MAX) {
		err = alu64_reg(x, BPF_MOV, R1, REG_PKT);
		err = err ?: alu64_imm(x, BPF_ADD, R1, (int32_t)(k + bytes));
		err = err ?: jmp_local(x, BPF_JMP | BPF_JLE | BPF_X, R1, REG_END, 0, &j_fast);
	}
	err = err ?: alu64_imm(x, BPF_MOV, R2, (int32_t)k);
	return err ?: emit_load_end(x, bytes, dst, j_fast, SIZE_MAX, R1, -(int16_t)bytes);
}

/* r1 = (u64)X + k: never wraps */
static int emit_x_plus_k(struct xlate *x, uint32_t k)
{
	int err;

	if (!k)
		return alu64_reg(x, BPF_MOV, R1, REG_X);
	err = alu32_imm(x, BPF_MOV, R1, k);
	return err ?: alu64_reg(x, BPF_ADD, R1, REG_X);
}

/*
 * dst = @bytes bytes at X + k, X + k + n <= 0xffff known from the program
 * (bound_regs()): the verifier knows X's bound too, so the packet pointer
 * needs no clamp.
 *   r2 = r6 + X; r3 = r2 + k + n; if r3 <= r9 goto fast; r2 = X + k; <end>
 *   fast: dst = *(r2 + k)
 */
static int emit_load_ind_bounded(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	size_t j_fast;
	int err;

	err = alu64_reg(x, BPF_MOV, R2, REG_PKT);
	err = err ?: alu64_reg(x, BPF_ADD, R2, REG_X);
	err = err ?: alu64_reg(x, BPF_MOV, R3, R2);
	err = err ?: alu64_imm(x, BPF_ADD, R3, (int32_t)(k + bytes));
	err = err ?: jmp_local(x, BPF_JMP | BPF_JLE | BPF_X, R3, REG_END, 0, &j_fast);
	err = err ?: alu64_reg(x, BPF_MOV, R2, REG_X);
	if (!err && k)
		err = alu64_imm(x, BPF_ADD, R2, (int32_t)k);
	return err ?: emit_load_end(x, bytes, dst, j_fast, SIZE_MAX, R2, (int16_t)k);
}

/*
 * dst = @bytes bytes at offset r1 (any 64-bit value):
 *   if r1 > 0xffff - n goto slow
 *   r2 = r6 + r1; r3 = r2 + n; if r3 <= r9 goto fast
 *   slow: if r1 > INT_MAX goto fail; r2 = r1; <end>
 *   fast: dst = *(r2 + 0)
 */
static int emit_load_r1(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	size_t j_fast, j_slow, j_big;
	int err;

	err = jmp_local(x, BPF_JMP | BPF_JGT | BPF_K, R1, 0,
			(int32_t)(PKT_DIRECT_MAX - bytes), &j_slow);
	err = err ?: alu64_reg(x, BPF_MOV, R2, REG_PKT);
	err = err ?: alu64_reg(x, BPF_ADD, R2, R1);
	err = err ?: alu64_reg(x, BPF_MOV, R3, R2);
	err = err ?: alu64_imm(x, BPF_ADD, R3, (int32_t)bytes);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JLE | BPF_X, R3, REG_END, 0, &j_fast);
	if (err)
		return err;
	land(x, j_slow);
	err = jmp_local(x, BPF_JMP | BPF_JGT | BPF_K, R1, 0, PKT_HELPER_MAX, &j_big);
	err = err ?: alu64_reg(x, BPF_MOV, R2, R1);
	return err ?: emit_load_end(x, bytes, dst, j_fast, j_big, R2, 0);
}

/*
 * dst = @bytes bytes at offset r1 through the helper only, for programs with
 * loops: no branch depends on X, so the verifier need not track X precisely
 * and prunes the unrolled copies' states (else they multiply).
 *   r2 = r1, or ~0 (refused by the helper) past 32 bits; <helper>
 */
static int emit_helper_r1(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	int err;

	err = alu64_reg(x, BPF_MOV, R2, R1);
	err = err ?: alu64_imm(x, BPF_RSH, R2, 32);
	err = err ?: emit(x, insn(BPF_ALU64 | BPF_NEG, R2, 0, 0, 0));
	err = err ?: alu64_reg(x, BPF_OR, R2, R1);
	return err ?: emit_load_end(x, bytes, dst, SIZE_MAX, SIZE_MAX, 0, 0);
}

/* dst = @bytes bytes at X + k, X unbounded */
static int emit_load_ind(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	int err = emit_x_plus_k(x, k);

	if (err)
		return err;
	return x->ind_helper ? emit_helper_r1(x, bytes, dst) : emit_load_r1(x, bytes, dst);
}

/* ---- the tc VLAN copy: a virtual frame with the tag at offset 12 ---- */

/* if the virtual frame is shorter than r2 + 0 return 0 (r3 clobbered) */
static int emit_vlen_check(struct xlate *x)
{
	size_t j_ok;
	int err;

	err = ldx(x, BPF_W, R3, R10, OFF_VLEN);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JGE | BPF_X, R3, R2, 0, &j_ok);
	err = err ?: ret0(x);
	if (!err)
		land(x, j_ok);
	return err;
}

/* dst = @bytes bytes at constant virtual offset k < VHDR_SPLIT (the stack copy) */
static int emit_vhdr_load_abs(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	int16_t off = (int16_t)(OFF_VHDR + (int)k);
	int err = 0;

	if (k + bytes > VHDR_SURE) {
		err = alu64_imm(x, BPF_MOV, R2, (int32_t)(k + bytes));
		err = err ?: emit_vlen_check(x);
	}
	if (k % bytes == 0) {	/* the verifier wants stack loads aligned */
		err = err ?: ldx(x, ld_size(bytes), dst, R10, off);
		return err ?: to_host(x, dst, bytes);
	}
	err = err ?: ldx(x, BPF_B, dst, R10, off);
	for (unsigned int i = 1; !err && i < bytes; i++) {
		err = ldx(x, BPF_B, R1, R10, (int16_t)(off + (int)i));
		err = err ?: alu32_imm(x, BPF_LSH, dst, 8);
		err = err ?: alu32_reg(x, BPF_OR, dst, R1);
	}
	return err;
}

/*
 * dst = @bytes bytes at virtual offset r1 (X + k), the tc VLAN copy:
 *   r1 = (u32)(r1 | -(r1 >> 32)), through a 4-byte stack slot off the
 *        8-byte grid (see below)
 *   if r1 >= 16 goto real
 *   if vlen < r1 + n return 0
 *   each byte: r4 = the stack copy's 8-byte word (r1 + i) / 8 holding it,
 *     shifted down by 8 * ((r1 + i) % 8): constant stack offsets only
 *   goto done
 *   real: r1 -= 4; <load at r1>
 *   done:
 * The verifier does not track what a 4-byte store off the 8-byte grid holds,
 * so the reloaded offset carries no bounds of X: the branch above does not
 * make the verifier track X precisely, which in the unrolled copies of a
 * loop (see emit_helper_r1()) would keep it from pruning states. Offsets of
 * 2^32 and more become 0xffffffff, past any frame.
 */
static int emit_vhdr_load_ind(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	size_t j_real, j_done, j_word[2];
	int err;

	err = alu64_reg(x, BPF_MOV, R2, R1);
	err = err ?: alu64_imm(x, BPF_RSH, R2, 32);
	err = err ?: emit(x, insn(BPF_ALU64 | BPF_NEG, R2, 0, 0, 0));
	err = err ?: alu64_reg(x, BPF_OR, R1, R2);
	err = err ?: stx(x, BPF_W, R10, R1, OFF_VOFF);
	err = err ?: ldx(x, BPF_W, R1, R10, OFF_VOFF);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JGE | BPF_K, R1, 0, VHDR_SPLIT, &j_real);
	err = err ?: alu64_reg(x, BPF_MOV, R2, R1);
	err = err ?: alu64_imm(x, BPF_ADD, R2, (int32_t)bytes);
	err = err ?: emit_vlen_check(x);
	err = err ?: alu32_imm(x, BPF_MOV, R5, 0);
	for (unsigned int i = 0; !err && i < bytes; i++) {
		err = alu64_reg(x, BPF_MOV, R2, R1);
		if (!err && i)
			err = alu64_imm(x, BPF_ADD, R2, (int32_t)i);
		err = err ?: alu64_reg(x, BPF_MOV, R3, R2);
		err = err ?: alu64_imm(x, BPF_RSH, R3, 3);
		err = err ?: ldx(x, BPF_DW, R4, R10, OFF_VHDR);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 0, &j_word[0]);
		err = err ?: ldx(x, BPF_DW, R4, R10, OFF_VHDR + 8);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 1, &j_word[1]);
		err = err ?: ldx(x, BPF_DW, R4, R10, OFF_VHDR + 16);
		if (err)
			break;
		land(x, j_word[0]);
		land(x, j_word[1]);
		err = alu64_imm(x, BPF_AND, R2, 7);
		err = err ?: alu64_imm(x, BPF_LSH, R2, 3);
		err = err ?: alu64_reg(x, BPF_RSH, R4, R2);	/* little-endian words */
		err = err ?: alu32_imm(x, BPF_AND, R4, 0xff);
		err = err ?: alu32_imm(x, BPF_LSH, R5, 8);
		err = err ?: alu32_reg(x, BPF_OR, R5, R4);
	}
	err = err ?: alu32_reg(x, BPF_MOV, dst, R5);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JA, 0, 0, 0, &j_done);
	if (err)
		return err;
	land(x, j_real);
	err = alu64_imm(x, BPF_SUB, R1, (int32_t)(VHDR_SPLIT - 12));
	err = err ?: (x->ind_helper ? emit_helper_r1(x, bytes, dst) : emit_load_r1(x, bytes, dst));
	if (!err)
		land(x, j_done);
	return err;
}

/*
 * dst = @bytes bytes at virtual offset k (@ind: X + k) in the tc VLAN copy:
 * below VHDR_SPLIT from the stack copy, beyond from the packet 4 bytes earlier.
 */
static int emit_vlan_load(struct xlate *x, unsigned int bytes, uint32_t k, bool ind, uint8_t dst)
{
	int err;

	if (!ind) {
		if (k < VHDR_SPLIT)
			return emit_vhdr_load_abs(x, bytes, k, dst);
		return emit_load_abs(x, bytes, k - (VHDR_SPLIT - 12), dst);
	}
	err = emit_x_plus_k(x, k);
	if (err)
		return err;
	return emit_vhdr_load_ind(x, bytes, dst);
}

/*
 * tc only, r1 = ctx: if skb->vlan_present, fill the stack copy (frame bytes
 * 0..11, the tag, frame bytes 12..15 as far as there are any, zeros after),
 * the virtual length, `len` + 4, and go to the VLAN copy of the program.
 */
static int emit_vlan_dispatch(struct xlate *x, bool uses_len, uint32_t vlan_base)
{
	size_t j_none, j_short, j_four, j_fail;
	int err;

	err = ldx(x, BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_present));
	err = err ?: jmp_local(x, BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, &j_none);
	for (int i = 0; !err && i < 3; i++)
		err = emit(x, insn(BPF_ST | BPF_DW | BPF_MEM, R10, 0, (int16_t)(OFF_VHDR + 8 * i), 0));
	/* bytes 0..11: the MAC addresses */
	err = err ?: alu64_imm(x, BPF_MOV, R2, 0);
	err = err ?: alu64_reg(x, BPF_MOV, R3, R10);
	err = err ?: alu64_imm(x, BPF_ADD, R3, OFF_VHDR);
	err = err ?: alu64_imm(x, BPF_MOV, R4, 12);
	err = err ?: call(x, BPF_FUNC_skb_load_bytes);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JNE | BPF_K, R0, 0, 0, &j_fail);
	/* bytes 12..15: the tag; vlan_proto is network order, vlan_tci host order */
	err = err ?: ldx(x, BPF_DW, R1, R10, OFF_CTX);
	err = err ?: ldx(x, BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_proto));
	err = err ?: stx(x, BPF_H, R10, R0, OFF_VHDR + 12);
	err = err ?: ldx(x, BPF_W, R0, R1, offsetof(struct __sk_buff, vlan_tci));
	err = err ?: emit(x, insn(BPF_ALU | BPF_END | BPF_TO_BE, R0, 0, 0, 16));
	err = err ?: stx(x, BPF_H, R10, R0, OFF_VHDR + 14);
	/* virtual length; `len` */
	err = err ?: ldx(x, BPF_W, R4, R1, offsetof(struct __sk_buff, len));
	err = err ?: alu64_reg(x, BPF_MOV, R0, R4);
	err = err ?: alu64_imm(x, BPF_ADD, R0, 4);
	err = err ?: stx(x, BPF_W, R10, R0, OFF_VLEN);
	if (!err && uses_len) {
		err = ldx(x, BPF_W, R0, R10, OFF_LEN);
		err = err ?: alu32_imm(x, BPF_ADD, R0, 4);
		err = err ?: stx(x, BPF_W, R10, R0, OFF_LEN);
	}
	/* bytes 16..19: min(4, len - 12) frame bytes from 12 */
	err = err ?: alu64_imm(x, BPF_SUB, R4, 12);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JSLE | BPF_K, R4, 0, 0, &j_short);
	err = err ?: jmp_local(x, BPF_JMP | BPF_JLE | BPF_K, R4, 0, 4, &j_four);
	err = err ?: alu64_imm(x, BPF_MOV, R4, 4);
	if (err)
		return err;
	land(x, j_four);
	err = alu64_imm(x, BPF_MOV, R2, 12);
	err = err ?: alu64_reg(x, BPF_MOV, R3, R10);
	err = err ?: alu64_imm(x, BPF_ADD, R3, OFF_VHDR + 16);
	err = err ?: call(x, BPF_FUNC_skb_load_bytes);
	if (err)
		return err;
	land(x, j_short);
	err = ldx(x, BPF_DW, R1, R10, OFF_CTX);
	x->base = vlan_base;
	err = err ?: jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, 0);
	if (err)
		return err;
	land(x, j_fail);
	err = ret0(x);
	if (!err)
		land(x, j_none);
	return err;
}

/* dst = @bytes bytes (1, 2, 4) at k (@ind: X + k), big-endian; out of bounds returns 0 */
static int emit_load(struct xlate *x, uint32_t i, unsigned int bytes, uint32_t k, bool ind,
		     uint8_t dst)
{
	if (x->vlan)
		return emit_vlan_load(x, bytes, k, ind, dst);
	if (!ind)
		return emit_load_abs(x, bytes, k, dst);
	if (!x->ind_helper &&
	    (uint64_t)x->xmax[i] + k + bytes <= PKT_DIRECT_MAX && k + bytes <= INT16_MAX)
		return emit_load_ind_bounded(x, bytes, k, dst);
	return emit_load_ind(x, bytes, k, dst);
}

static int emit_ld(struct xlate *x, uint32_t i)
{
	const struct sock_filter *f = &x->prog[i];

	switch (f->code) {
	case BPF_LD | BPF_W | BPF_ABS:
		return emit_load(x, i, 4, f->k, false, REG_A);
	case BPF_LD | BPF_H | BPF_ABS:
		return emit_load(x, i, 2, f->k, false, REG_A);
	case BPF_LD | BPF_B | BPF_ABS:
		return emit_load(x, i, 1, f->k, false, REG_A);
	case BPF_LD | BPF_W | BPF_IND:
		return emit_load(x, i, 4, f->k, true, REG_A);
	case BPF_LD | BPF_H | BPF_IND:
		return emit_load(x, i, 2, f->k, true, REG_A);
	case BPF_LD | BPF_B | BPF_IND:
		return emit_load(x, i, 1, f->k, true, REG_A);
	case BPF_LD | BPF_W | BPF_LEN:
		return ldx(x, BPF_W, REG_A, R10, OFF_LEN);
	case BPF_LDX | BPF_W | BPF_LEN:
		return ldx(x, BPF_W, REG_X, R10, OFF_LEN);
	case BPF_LD | BPF_IMM:
		return alu32_imm(x, BPF_MOV, REG_A, f->k);
	case BPF_LDX | BPF_IMM:
		return alu32_imm(x, BPF_MOV, REG_X, f->k);
	case BPF_LD | BPF_MEM:
		return ldx(x, BPF_W, REG_A, R10, (int16_t)(OFF_MEM + 4 * (int)f->k));
	case BPF_LDX | BPF_MEM:
		return ldx(x, BPF_W, REG_X, R10, (int16_t)(OFF_MEM + 4 * (int)f->k));
	case BPF_LDX | BPF_B | BPF_MSH: {
		int err = emit_load(x, i, 1, f->k, false, REG_X);

		err = err ?: alu32_imm(x, BPF_AND, REG_X, 0xf);
		return err ?: alu32_imm(x, BPF_LSH, REG_X, 2);
	}
	}
	return -EINVAL;
}

static int emit_alu(struct xlate *x, const struct sock_filter *f)
{
	uint8_t op = BPF_OP(f->code);
	size_t j;
	int err;

	if (op == BPF_NEG)
		return emit(x, insn(BPF_ALU | BPF_NEG, REG_A, 0, 0, 0));
	if (BPF_SRC(f->code) == BPF_K)
		return alu32_imm(x, op, REG_A, f->k);	/* k != 0 and shifts < 32: validated */
	switch (op) {
	case BPF_DIV:
	case BPF_MOD:
		/* if X == 0 return 0 */
		err = jmp_local(x, BPF_JMP32 | BPF_JNE | BPF_K, REG_X, 0, 0, &j);
		err = err ?: ret0(x);
		if (err)
			return err;
		land(x, j);
		return alu32_reg(x, op, REG_A, REG_X);
	case BPF_LSH:
	case BPF_RSH: {
		size_t j_done;

		/* libpcap: a shift by 32 or more gives 0 */
		err = jmp_local(x, BPF_JMP32 | BPF_JLT | BPF_K, REG_X, 0, 32, &j);
		err = err ?: alu32_imm(x, BPF_MOV, REG_A, 0);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JA, 0, 0, 0, &j_done);
		if (err)
			return err;
		land(x, j);
		err = alu32_reg(x, op, REG_A, REG_X);
		land(x, j_done);
		return err;
	}
	}
	return alu32_reg(x, op, REG_A, REG_X);
}

static uint8_t jmp_invert(uint8_t op)
{
	switch (op) {
	case BPF_JEQ:
		return BPF_JNE;
	case BPF_JGT:
		return BPF_JLE;
	case BPF_JGE:
		return BPF_JLT;
	}
	return 0;	/* JSET: none */
}

/*
 * if (A op K|X) goto jt else goto jf, 32-bit unsigned compares. Falls
 * through where a target is the next instruction.
 */
static int emit_jmp(struct xlate *x, const struct sock_filter *f, uint32_t i)
{
	uint8_t op = BPF_OP(f->code), src = BPF_SRC(f->code);
	uint8_t sreg = src == BPF_X ? REG_X : 0;
	int32_t imm = src == BPF_K ? (int32_t)f->k : 0;
	uint32_t next = i + 1, t, e;
	size_t j;
	int err;

	if (op == BPF_JA) {
		t = next + f->k;	/* forward: unrolled */
		return t == next ? 0 : jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, t);
	}
	t = next + f->jt;
	e = next + f->jf;
	if (t == e)
		return t == next ? 0 : jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, t);
	if (e == next)
		return jmp_to(x, BPF_JMP32 | op | src, REG_A, sreg, imm, t);
	if (t == next && jmp_invert(op))
		return jmp_to(x, BPF_JMP32 | jmp_invert(op) | src, REG_A, sreg, imm, e);
	if (t == next) {
		/* JSET with jt == 0: if (A & K) skip the jump to jf */
		err = jmp_local(x, BPF_JMP32 | op | src, REG_A, sreg, imm, &j);
		err = err ?: jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, e);
		if (!err)
			land(x, j);
		return err;
	}
	err = jmp_to(x, BPF_JMP32 | op | src, REG_A, sreg, imm, t);
	return err ?: jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, e);
}

/* return (A or K) != 0 */
static int emit_ret(struct xlate *x, const struct sock_filter *f)
{
	size_t j;
	int err;

	if (BPF_RVAL(f->code) == BPF_K) {
		err = alu32_imm(x, BPF_MOV, R0, f->k ? 1 : 0);
		return err ?: emit(x, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	}
	err = alu32_imm(x, BPF_MOV, R0, 0);
	err = err ?: jmp_local(x, BPF_JMP32 | BPF_JEQ | BPF_K, REG_A, 0, 0, &j);
	err = err ?: alu32_imm(x, BPF_MOV, R0, 1);
	if (err)
		return err;
	land(x, j);
	return emit(x, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

static int emit_one(struct xlate *x, uint32_t i)
{
	const struct sock_filter *f = &x->prog[i];

	switch (BPF_CLASS(f->code)) {
	case BPF_LD:
	case BPF_LDX:
		return emit_ld(x, i);
	case BPF_ST:
		return stx(x, BPF_W, R10, REG_A, (int16_t)(OFF_MEM + 4 * (int)f->k));
	case BPF_STX:
		return stx(x, BPF_W, R10, REG_X, (int16_t)(OFF_MEM + 4 * (int)f->k));
	case BPF_ALU:
		return emit_alu(x, f);
	case BPF_JMP:
		return emit_jmp(x, f, i);
	case BPF_RET:
		return emit_ret(x, f);
	case BPF_MISC:
		if (BPF_MISCOP(f->code) == BPF_TAX)
			return alu32_reg(x, BPF_MOV, REG_X, REG_A);
		return alu32_reg(x, BPF_MOV, REG_A, REG_X);
	}
	return -EINVAL;
}

/* Which instructions some path reaches (the program only jumps forward). */
static void mark_reachable(struct xlate *x)
{
	const struct sock_filter *p = x->prog;

	x->reach[0] = true;
	for (size_t i = 0; i < x->len; i++) {
		uint8_t cls = BPF_CLASS(p[i].code);

		if (!x->reach[i] || cls == BPF_RET)
			continue;
		if (p[i].code == (BPF_JMP | BPF_JA)) {
			x->reach[i + 1 + p[i].k] = true;
		} else if (cls == BPF_JMP) {
			x->reach[i + 1 + p[i].jt] = true;
			x->reach[i + 1 + p[i].jf] = true;
		} else {
			x->reach[i + 1] = true;
		}
	}
}

/* wire length -> OFF_LEN; r1 = ctx on entry and on exit */
static int emit_wire_len(struct xlate *x)
{
	size_t j_nometa, j_store = 0;
	int err = 0;

	if (x->ctx == PL_FILTER_TC) {
		/* test runs: cb[4], since __sk_buff->wire_len cannot exceed 64 KiB there */
		int16_t off = x->flags & PL_CBPF_F_TEST_WIRELEN ?
			      offsetof(struct __sk_buff, cb[4]) : offsetof(struct __sk_buff, len);

		err = ldx(x, BPF_W, R0, R1, off);
		return err ?: stx(x, BPF_W, R10, R0, OFF_LEN);
	}
	if (x->flags & PL_CBPF_F_TEST_WIRELEN) {
		/* 4 bytes of metadata, if present, hold the wire length */
		err = ldx(x, BPF_W, R2, R1, offsetof(struct xdp_md, data_meta));
		err = err ?: ldx(x, BPF_W, R3, R1, offsetof(struct xdp_md, data));
		err = err ?: alu64_reg(x, BPF_MOV, R4, R2);
		err = err ?: alu64_imm(x, BPF_ADD, R4, 4);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JGT | BPF_X, R4, R3, 0, &j_nometa);
		err = err ?: ldx(x, BPF_W, R0, R2, 0);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JA, 0, 0, 0, &j_store);
		if (err)
			return err;
		land(x, j_nometa);
	}
	err = call(x, BPF_FUNC_xdp_get_buff_len);
	if (x->flags & PL_CBPF_F_TEST_WIRELEN)
		land(x, j_store);
	err = err ?: stx(x, BPF_W, R10, R0, OFF_LEN);
	return err ?: ldx(x, BPF_DW, R1, R10, OFF_CTX);
}

/* ctx, `len`, r6, r9, A, X, M[]; r1 = ctx after it. *reads: packet or `len` */
static int emit_prologue(struct xlate *x, bool *uses_len, bool *reads)
{
	bool tc = x->ctx == PL_FILTER_TC;
	unsigned int mem_read = 0;
	int err;

	*uses_len = *reads = false;
	for (size_t i = 0; i < x->len; i++) {
		uint16_t code = x->prog[i].code;

		if (!x->reach[i])
			continue;
		if (code == (BPF_LD | BPF_W | BPF_LEN) || code == (BPF_LDX | BPF_W | BPF_LEN))
			*uses_len = true;
		if (is_load(code))
			*reads = true;
		if (code == (BPF_LD | BPF_MEM) || code == (BPF_LDX | BPF_MEM))
			mem_read |= 1U << x->prog[i].k;
	}
	*reads |= *uses_len;
	err = stx(x, BPF_DW, R10, R1, OFF_CTX);
	if (!err && *uses_len)
		err = emit_wire_len(x);
	err = err ?: ldx(x, BPF_W, REG_PKT, R1,
			 tc ? offsetof(struct __sk_buff, data) : offsetof(struct xdp_md, data));
	err = err ?: ldx(x, BPF_W, REG_END, R1,
			 tc ? offsetof(struct __sk_buff, data_end) : offsetof(struct xdp_md, data_end));
	err = err ?: alu32_imm(x, BPF_MOV, REG_A, 0);
	err = err ?: alu32_imm(x, BPF_MOV, REG_X, 0);
	/* libpcap's interpreter starts with M[] zeroed; the verifier wants it written */
	for (int pair = 0; !err && pair < 8; pair++)
		if (mem_read & (3U << (2 * pair)))
			err = emit(x, insn(BPF_ST | BPF_DW | BPF_MEM, R10, 0,
					   (int16_t)(OFF_MEM + 8 * pair), 0));
	return err;
}

static int patch_jumps(struct xlate *x)
{
	for (size_t n = 0; n < x->nfix; n++) {
		struct bpf_insn *j = &x->out[x->fix[n].pos];
		int64_t off = (int64_t)x->start[x->fix[n].target] - (int64_t)x->fix[n].pos - 1;

		if (off <= INT16_MAX) {
			j->off = (int16_t)off;
		} else if (j->code == (BPF_JMP | BPF_JA) && off <= INT32_MAX) {
			*j = insn(BPF_JMP32 | BPF_JA, 0, 0, 0, (int32_t)off);	/* gotol */
		} else {
			set_err(x->err, x->errlen, "conditional jump too long (%lld)", (long long)off);
			return -E2BIG;
		}
	}
	return 0;
}

static uint32_t bound_sat(uint64_t v)
{
	return v >= BOUND_UNKNOWN ? BOUND_UNKNOWN : (uint32_t)v;
}

/*
 * Largest A after an ALU op, only where the verifier's own tracking is at
 * least as good (32-bit add, small products, and, shifts by constants).
 */
static uint32_t alu_bound(const struct sock_filter *f, uint32_t a, uint32_t xv)
{
	uint32_t s = BPF_SRC(f->code) == BPF_K ? f->k : xv;

	switch (BPF_OP(f->code)) {
	case BPF_ADD:
		return bound_sat((uint64_t)a + s);
	case BPF_MUL:
		return a <= 0xffff && s <= 0xffff ? bound_sat((uint64_t)a * s) : BOUND_UNKNOWN;
	case BPF_AND:
		return a < s ? a : s;
	case BPF_RSH:
		return BPF_SRC(f->code) == BPF_K ? a >> f->k : BOUND_UNKNOWN;
	case BPF_LSH:
		return BPF_SRC(f->code) == BPF_K ? bound_sat((uint64_t)a << f->k) : BOUND_UNKNOWN;
	}
	return BOUND_UNKNOWN;
}

/* A's and X's largest values after @f. 16/32-bit loads: bswap loses the bound. */
static void bound_step(const struct sock_filter *f, uint32_t *a, uint32_t *xv)
{
	switch (BPF_CLASS(f->code)) {
	case BPF_LD:
		if (BPF_MODE(f->code) == BPF_IMM)
			*a = f->k;
		else if (BPF_MODE(f->code) != BPF_LEN && BPF_MODE(f->code) != BPF_MEM &&
			 BPF_SIZE(f->code) == BPF_B)
			*a = 0xff;
		else
			*a = BOUND_UNKNOWN;
		break;
	case BPF_LDX:
		*xv = BPF_MODE(f->code) == BPF_MSH ? 60 :
		      BPF_MODE(f->code) == BPF_IMM ? f->k : BOUND_UNKNOWN;
		break;
	case BPF_ALU:
		*a = alu_bound(f, *a, *xv);
		break;
	case BPF_MISC:
		if (BPF_MISCOP(f->code) == BPF_TAX)
			*xv = *a;
		else
			*a = *xv;
		break;
	}
}

/*
 * Largest X on entry to each instruction, over all paths (the program only
 * jumps forward): X-indexed loads with a small X need no clamp.
 */
static int bound_regs(struct xlate *x)
{
	uint32_t *amax = malloc(x->len * sizeof(*amax));
	const struct sock_filter *p = x->prog;
	bool *seen = calloc(x->len, sizeof(*seen));
	int err = 0;

	if (!amax || !seen) {
		err = -ENOMEM;
		goto out;
	}
	amax[0] = x->xmax[0] = 0;
	seen[0] = true;
	for (size_t i = 0; i < x->len; i++) {
		uint32_t a = amax[i], xv = x->xmax[i], succ[2];
		size_t nsucc = 0;

		if (!seen[i] || BPF_CLASS(p[i].code) == BPF_RET)
			continue;
		bound_step(&p[i], &a, &xv);
		if (p[i].code == (BPF_JMP | BPF_JA)) {
			succ[nsucc++] = (uint32_t)(i + 1 + p[i].k);
		} else if (BPF_CLASS(p[i].code) == BPF_JMP) {
			succ[nsucc++] = (uint32_t)(i + 1 + p[i].jt);
			succ[nsucc++] = (uint32_t)(i + 1 + p[i].jf);
		} else {
			succ[nsucc++] = (uint32_t)(i + 1);
		}
		for (size_t n = 0; n < nsucc; n++) {
			uint32_t t = succ[n];

			if (!seen[t]) {
				seen[t] = true;
				amax[t] = a;
				x->xmax[t] = xv;
			} else {
				amax[t] = amax[t] > a ? amax[t] : a;
				x->xmax[t] = x->xmax[t] > xv ? x->xmax[t] : xv;
			}
		}
	}
out:
	free(amax);
	free(seen);
	return err;
}

/*
 * The end of the longest constant-offset load within FAST_WINDOW bytes, if
 * checking that many bytes once up front pays: a program with at least two
 * such loads is emitted twice, once for packets with that much linear data
 * (no checks on those loads) and once for the rest.
 */
static uint32_t fast_window(const struct xlate *x)
{
	uint32_t end = 0, loads = 0;

	if (x->ind_helper || x->len > 4096)
		return 0;	/* loops, huge programs: not twice */
	for (size_t i = 0; i < x->len; i++) {
		uint16_t code = x->prog[i].code;
		uint32_t n, e;

		if (!x->reach[i] || !is_load(code) || BPF_MODE(code) == BPF_IND)
			continue;
		n = BPF_SIZE(code) == BPF_W ? 4 : BPF_SIZE(code) == BPF_H ? 2 : 1;
		e = x->prog[i].k + n;
		if (e > FAST_WINDOW)
			continue;
		loads++;
		end = e > end ? e : end;
	}
	return loads >= 2 ? end : 0;
}

/* One copy of the program: cBPF insn i starts at start[base + i]. */
static int emit_variant(struct xlate *x, uint32_t base, uint32_t fast_len)
{
	int err = 0;

	x->base = base;
	x->fast_len = fast_len;
	for (uint32_t i = 0; !err && i < x->len; i++) {
		x->start[base + i] = x->cnt;
		if (x->reach[i])
			err = emit_one(x, i);
	}
	x->start[base + x->len] = x->cnt;
	return err;
}

static int translate(struct xlate *x)
{
	const uint32_t vlan_base = 2 * ((uint32_t)x->len + 1);
	bool uses_len, reads, vlan;
	uint32_t fast;
	size_t j;
	int err;

	x->reach = calloc(x->len, sizeof(*x->reach));
	x->xmax = calloc(x->len, sizeof(*x->xmax));
	x->start = calloc(3 * (x->len + 1), sizeof(*x->start));
	if (!x->reach || !x->xmax || !x->start)
		return -ENOMEM;
	mark_reachable(x);
	err = bound_regs(x);
	err = err ?: emit_prologue(x, &uses_len, &reads);
	if (err)
		return err;
	vlan = x->ctx == PL_FILTER_TC && reads;
	if (vlan) {
		err = emit_vlan_dispatch(x, uses_len, vlan_base);
		if (err)
			return err;
	}
	fast = fast_window(x);
	if (fast) {
		/* if (r6 + fast <= r9) fast variant, else careful variant (base len + 1) */
		err = alu64_reg(x, BPF_MOV, R1, REG_PKT);
		err = err ?: alu64_imm(x, BPF_ADD, R1, (int32_t)fast);
		err = err ?: jmp_local(x, BPF_JMP | BPF_JLE | BPF_X, R1, REG_END, 0, &j);
		x->base = (uint32_t)x->len + 1;
		err = err ?: jmp_to(x, BPF_JMP | BPF_JA, 0, 0, 0, 0);
		if (err)
			return err;
		land(x, j);
		err = emit_variant(x, 0, fast);
	}
	err = err ?: emit_variant(x, fast ? (uint32_t)x->len + 1 : 0, 0);
	if (!err && vlan) {
		x->vlan = true;
		err = emit_variant(x, vlan_base, 0);
	}
	return err ?: patch_jumps(x);
}

/*
 * PL_CBPF_F_TEST_VLAN_META: put a caller in front of the translated program
 * (x->out becomes its BPF-to-BPF subprogram):
 *   r6 = ctx; if cb[2] != 0: bpf_skb_vlan_push(ctx, cb[0], cb[1]) or return 2
 *   return filter(ctx)
 */
static int vlan_meta_caller(struct xlate *x)
{
	const struct bpf_insn head[] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0),
		insn(BPF_LDX | BPF_W | BPF_MEM, R2, R1, offsetof(struct __sk_buff, cb[2]), 0),
		insn(BPF_JMP | BPF_JEQ | BPF_K, R2, 0, 6, 0),
		insn(BPF_LDX | BPF_W | BPF_MEM, R2, R1, offsetof(struct __sk_buff, cb[0]), 0),
		insn(BPF_LDX | BPF_W | BPF_MEM, R3, R1, offsetof(struct __sk_buff, cb[1]), 0),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_skb_vlan_push),
		insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 2, 0),
		insn(BPF_ALU | BPF_MOV | BPF_K, R0, 0, 0, 2),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0),
		insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 1),	/* r0 = filter(ctx) */
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	const size_t n = sizeof(head) / sizeof(head[0]);
	struct bpf_insn *p;

	if (x->cnt > PL_EBPF_MAX_INSNS - n)
		return -E2BIG;
	p = malloc((n + x->cnt) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, head, sizeof(head));
	memcpy(p + n, x->out, x->cnt * sizeof(*p));
	free(x->out);
	x->out = p;
	x->cnt += n;
	x->cap = x->cnt;
	return 0;
}

int pl_cbpf_translate_flags(const struct sock_filter *prog, size_t len, enum pl_filter_ctx ctx,
			    unsigned int flags, struct bpf_insn **out, size_t *out_len,
			    char *err, size_t errlen)
{
	struct xlate x = { .ctx = ctx, .flags = flags, .err = err, .errlen = errlen };
	struct sock_filter *unrolled = NULL;
	int ret;

	if (!out || !out_len || (ctx != PL_FILTER_XDP && ctx != PL_FILTER_TC))
		return -EINVAL;
	ret = pl_cbpf_validate(prog, len, err, errlen);
	if (ret)
		return ret;
	x.prog = prog;
	x.len = len;
	if (has_backward_jump(prog, len)) {
		ret = unroll(prog, len, &unrolled, &x.len);
		if (ret)
			goto out;
		x.prog = unrolled;
		x.ind_helper = true;	/* see emit_helper_r1() */
	}
	ret = translate(&x);
	if (!ret && ctx == PL_FILTER_TC && (flags & PL_CBPF_F_TEST_VLAN_META))
		ret = vlan_meta_caller(&x);
	if (ret)
		goto out;
	*out = x.out;
	*out_len = x.cnt;
	x.out = NULL;
out:
	if (ret == -ENOMEM)
		set_err(err, errlen, "translating: %s", strerror(ENOMEM));
	free(x.out);
	free(x.fix);
	free(x.start);
	free(x.xmax);
	free(x.reach);
	free(unrolled);
	return ret;
}

int pl_cbpf_translate(const struct sock_filter *prog, size_t len, enum pl_filter_ctx ctx,
		      struct bpf_insn **out, size_t *out_len, char *err, size_t errlen)
{
	return pl_cbpf_translate_flags(prog, len, ctx, 0, out, out_len, err, errlen);
}

/* ---- chaining: a translated program as the RULES stage of a hook ---- */

int pl_ebpf_chain(const struct bpf_insn *filter, size_t cnt, const struct pl_chain_target *t,
		  struct bpf_insn **out, size_t *out_len)
{
	/* what the translated program's caller is: see pl_ebpf_chain() in cbpf.h */
	const struct bpf_insn head[] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0),		/* r6 = ctx */
		insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0),	/* r0 = filter(ctx) */
		insn(BPF_ALU | BPF_MOV | BPF_X, R7, R0, 0, 0),		/* w7 = verdict */
		insn(BPF_ST | BPF_W | BPF_MEM, R10, 0, -4, (int32_t)t->res_key),
		insn(BPF_LD | BPF_IMM | BPF_DW, R1, BPF_PSEUDO_MAP_FD, 0, t->res_fd),
		insn(0, 0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0),
		insn(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -4),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 1, 0),
		insn(BPF_STX | BPF_W | BPF_MEM, R0, R7, 0, 0),		/* res[key] = w7 */
	};
	/* per next slot: r1 = ctx; r2 = chain; w3 = slot; tail call */
	const size_t nh = sizeof(head) / sizeof(head[0]), per = 5, nt = 2;
	size_t n, at;
	struct bpf_insn *p;

	if (!t->nnext || t->nnext > PL_CHAIN_NEXT_MAX)
		return -EINVAL;
	n = nh + per * t->nnext + nt;
	if (!cnt || cnt > PL_EBPF_MAX_INSNS - n)
		return -E2BIG;
	p = malloc((n + cnt) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, head, sizeof(head));
	p[1].imm = (int32_t)(n - 2);	/* the call goes to p[n]: pc + 1 + imm */
	at = nh;
	for (uint32_t i = 0; i < t->nnext; i++) {
		p[at++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0);
		p[at++] = insn(BPF_LD | BPF_IMM | BPF_DW, R2, BPF_PSEUDO_MAP_FD, 0, t->chain_fd);
		p[at++] = insn(0, 0, 0, 0, 0);
		p[at++] = insn(BPF_ALU | BPF_MOV | BPF_K, R3, 0, 0, (int32_t)t->next[i]);
		p[at++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call);
	}
	/* only if every slot is empty: let the packet go */
	p[at++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0,
		       t->ctx == PL_FILTER_TC ? -1 /* TC_ACT_UNSPEC */ : XDP_PASS);
	p[at++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	memcpy(p + n, filter, cnt * sizeof(*p));
	*out = p;
	*out_len = n + cnt;
	return 0;
}

int pl_ebpf_expr_stage(const struct bpf_insn *const *filters, const size_t *counts, size_t n,
		       const struct pl_expr_target *t, struct bpf_insn **out, size_t *out_len)
{
	/* per expression: r1 = r6; call; if r0 == 0 skip 3; r1 = 1; r1 <<= i; r7 |= r1 */
	const size_t per = 6;
	const struct bpf_insn tail[] = {
		insn(BPF_ST | BPF_W | BPF_MEM, R10, 0, -4, (int32_t)t->bits_key),
		insn(BPF_LD | BPF_IMM | BPF_DW, R1, BPF_PSEUDO_MAP_FD, 0, t->bits_fd),
		insn(0, 0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0),
		insn(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -4),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 1, 0),
		insn(BPF_STX | BPF_DW | BPF_MEM, R0, R7, 0, 0),		/* bits[key] = r7 */
		insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0),
		insn(BPF_LD | BPF_IMM | BPF_DW, R2, BPF_PSEUDO_MAP_FD, 0, t->chain_fd),
		insn(0, 0, 0, 0, 0),
		insn(BPF_ALU | BPF_MOV | BPF_K, R3, 0, 0, (int32_t)t->next_slot),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call),
		/* the rule set's program is gone: let the packet go */
		insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0,
		     t->ctx == PL_FILTER_TC ? -1 /* TC_ACT_UNSPEC */ : XDP_PASS),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	const size_t ntail = sizeof(tail) / sizeof(tail[0]);
	size_t head, total, at;
	struct bpf_insn *p;

	if (!n || n > PL_EXPR_STAGE_MAX)
		return -EINVAL;
	head = 2 + per * n + ntail;
	total = head;
	for (size_t i = 0; i < n; i++) {
		if (!counts[i] || counts[i] > PL_EBPF_MAX_INSNS - total)
			return -E2BIG;
		total += counts[i];
	}
	p = malloc(total * sizeof(*p));
	if (!p)
		return -ENOMEM;
	p[0] = insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0);		/* r6 = ctx */
	p[1] = insn(BPF_ALU64 | BPF_MOV | BPF_K, R7, 0, 0, 0);		/* r7 = bits */
	at = head;
	for (size_t i = 0; i < n; i++) {
		size_t c = 2 + per * i;

		p[c] = insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0);
		p[c + 1] = insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0,
				(int32_t)(at - (c + 1) - 1));
		p[c + 2] = insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 3, 0);
		p[c + 3] = insn(BPF_ALU64 | BPF_MOV | BPF_K, R1, 0, 0, 1);
		p[c + 4] = insn(BPF_ALU64 | BPF_LSH | BPF_K, R1, 0, 0, (int32_t)i);
		p[c + 5] = insn(BPF_ALU64 | BPF_OR | BPF_X, R7, R1, 0, 0);
		memcpy(p + at, filters[i], counts[i] * sizeof(*p));
		at += counts[i];
	}
	memcpy(p + 2 + per * n, tail, sizeof(tail));
	*out = p;
	*out_len = total;
	return 0;
}

/* ---- load and run ---- */

/* The last lines of @log that fit @outlen bytes, starting on a line. */
static void log_tail(const char *log, char *out, size_t outlen)
{
	size_t n = strlen(log);
	const char *p = log;

	while (n && (log[n - 1] == '\n' || log[n - 1] == ' '))
		n--;
	if (n >= outlen) {
		p = log + n - (outlen - 1);
		const char *nl = memchr(p, '\n', n - (size_t)(p - log));

		if (nl)
			p = nl + 1;
	}
	snprintf(out, outlen, "%.*s", (int)(n - (size_t)(p - log)), p);
}

int pl_ebpf_load(const struct bpf_insn *insns, size_t cnt, enum pl_filter_ctx ctx,
		 uint32_t prog_flags, char *log, size_t loglen)
{
	enum bpf_prog_type type = ctx == PL_FILTER_TC ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP;
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .prog_flags = prog_flags);
	size_t vlen = 4U << 20;
	char *vlog = NULL;
	int fd, err;

	if (ctx == PL_FILTER_XDP)
		opts.expected_attach_type = BPF_XDP;
	fd = bpf_prog_load(type, "pl_filter", "GPL", insns, cnt, &opts);
	if (fd >= 0)
		return fd;
	err = -errno;
	if (!log || !loglen)
		return err;
	log[0] = 0;
	/* again, with the verifier's log */
	vlog = calloc(1, vlen);
	if (!vlog)
		return err;
	opts.log_buf = vlog;
	opts.log_size = (uint32_t)vlen;
	opts.log_level = 1;
	fd = bpf_prog_load(type, "pl_filter", "GPL", insns, cnt, &opts);
	if (fd >= 0) {	/* cannot happen twice in a row, but be tidy */
		free(vlog);
		return fd;
	}
	if (vlog[0])
		log_tail(vlog, log, loglen);
	free(vlog);
	return err;
}

#define ETH_HDR_LEN	14
#define META_LEN	4

static int run_xdp(int fd, const void *pkt, uint32_t caplen, uint32_t wirelen, uint32_t *ret)
{
	struct xdp_md md = { .data = META_LEN, .data_end = caplen + META_LEN };
	LIBBPF_OPTS(bpf_test_run_opts, t, .ctx_in = &md, .ctx_size_in = sizeof(md), .repeat = 1);
	uint8_t *buf;
	int err;

	buf = malloc((size_t)caplen + META_LEN);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &wirelen, META_LEN);
	memcpy(buf + META_LEN, pkt, caplen);
	t.data_in = buf;
	t.data_size_in = caplen + META_LEN;
	err = bpf_prog_test_run_opts(fd, &t);
	if (err)
		err = -errno;
	*ret = t.retval;
	free(buf);
	return err;
}

static int run_tc(int fd, const void *pkt, uint32_t caplen, uint32_t wirelen,
		  const struct __sk_buff *in, uint32_t *ret)
{
	/*
	 * The kernel refuses a wire_len below the packet or above 64 KiB, so
	 * the wire length goes to the program in cb[4] (PL_CBPF_F_TEST_WIRELEN).
	 */
	struct __sk_buff skb = *in;
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = caplen,
		    .ctx_in = &skb, .ctx_size_in = sizeof(skb), .repeat = 1);
	int err;

	skb.wire_len = wirelen >= caplen && wirelen <= 65536 ? wirelen : 0;
	skb.cb[4] = wirelen;
	err = bpf_prog_test_run_opts(fd, &t);
	if (err)
		err = -errno;
	*ret = t.retval;
	return err;
}

/*
 * PL_CBPF_F_TEST_VLAN_META: a frame with an outer 802.1Q or 802.1ad tag goes
 * in without it, the tag in cb[0] (TPID, network order) and cb[1] (TCI),
 * cb[2] = 1. Like skb_vlan_untag(), only frames with the two bytes after the
 * tag (20 bytes or more); the stack drops shorter tagged frames.
 */
static int run_tc_vlan_meta(int fd, const uint8_t *pkt, uint32_t caplen, uint32_t wirelen,
			    uint32_t *ret)
{
	struct __sk_buff in = { 0 };
	uint16_t tpid, tci;
	uint8_t *cut;
	int err;

	tpid = caplen >= ETH_HDR_LEN + 6 ? (uint16_t)(pkt[12] << 8 | pkt[13]) : 0;
	if (tpid != 0x8100 && tpid != 0x88a8)
		return run_tc(fd, pkt, caplen, wirelen, &in, ret);
	tci = (uint16_t)(pkt[14] << 8 | pkt[15]);
	cut = malloc(caplen - 4);
	if (!cut)
		return -ENOMEM;
	memcpy(cut, pkt, 12);
	memcpy(cut + 12, pkt + 16, caplen - 16);
	memcpy(&in.cb[0], &pkt[12], 2);		/* __be16 as the helper takes it */
	in.cb[1] = tci;
	in.cb[2] = 1;
	err = run_tc(fd, cut, caplen - 4, wirelen - 4, &in, ret);
	free(cut);
	if (!err && *ret == 2)
		err = -EIO;	/* bpf_skb_vlan_push() failed */
	return err;
}

int pl_ebpf_run(int prog_fd, enum pl_filter_ctx ctx, const void *pkt, uint32_t caplen,
		uint32_t wirelen, bool *match)
{
	return pl_ebpf_run_flags(prog_fd, ctx, 0, pkt, caplen, wirelen, match);
}

int pl_ebpf_run_flags(int prog_fd, enum pl_filter_ctx ctx, unsigned int flags, const void *pkt,
		      uint32_t caplen, uint32_t wirelen, bool *match)
{
	const struct __sk_buff none = { 0 };
	uint32_t ret = 0;
	int err;

	if (caplen < ETH_HDR_LEN)
		return -EMSGSIZE;
	if (ctx == PL_FILTER_TC && (flags & PL_CBPF_F_TEST_VLAN_META))
		err = run_tc_vlan_meta(prog_fd, pkt, caplen, wirelen, &ret);
	else if (ctx == PL_FILTER_TC)
		err = run_tc(prog_fd, pkt, caplen, wirelen, &none, &ret);
	else
		err = run_xdp(prog_fd, pkt, caplen, wirelen, &ret);
	/*
	 * The kernel refuses packets it cannot fit in a test buffer: EINVAL,
	 * or for XDP ENOMEM once the frame needs more than MAX_SKB_FRAGS pages
	 * (about 70 KiB).
	 */
	if (err == -EINVAL || (err == -ENOMEM && ctx == PL_FILTER_XDP && caplen > 4096))
		err = -EMSGSIZE;
	if (!err)
		*match = ret != 0;
	return err;
}

/* ---- disassembly ---- */

static const char *const alu_ops[16] = {
	[BPF_ADD >> 4] = "+=", [BPF_SUB >> 4] = "-=", [BPF_MUL >> 4] = "*=",
	[BPF_DIV >> 4] = "/=", [BPF_OR >> 4] = "|=", [BPF_AND >> 4] = "&=",
	[BPF_LSH >> 4] = "<<=", [BPF_RSH >> 4] = ">>=", [BPF_MOD >> 4] = "%=",
	[BPF_XOR >> 4] = "^=", [BPF_MOV >> 4] = "=", [BPF_ARSH >> 4] = "s>>=",
};

static const char *const jmp_ops[16] = {
	[BPF_JEQ >> 4] = "==", [BPF_JGT >> 4] = ">", [BPF_JGE >> 4] = ">=",
	[BPF_JSET >> 4] = "&", [BPF_JNE >> 4] = "!=", [BPF_JSGT >> 4] = "s>",
	[BPF_JSGE >> 4] = "s>=", [BPF_JLT >> 4] = "<", [BPF_JLE >> 4] = "<=",
	[BPF_JSLT >> 4] = "s<", [BPF_JSLE >> 4] = "s<=",
};

static const char *size_name(uint8_t code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return "u8";
	case BPF_H:
		return "u16";
	case BPF_W:
		return "u32";
	}
	return "u64";
}

static const char *helper_name(int32_t id)
{
	switch (id) {
	case BPF_FUNC_skb_load_bytes:
		return "bpf_skb_load_bytes";
	case BPF_FUNC_xdp_load_bytes:
		return "bpf_xdp_load_bytes";
	case BPF_FUNC_xdp_get_buff_len:
		return "bpf_xdp_get_buff_len";
	}
	return "helper";
}

static void alu_str(const struct bpf_insn *i, char *buf, size_t len)
{
	char r = BPF_CLASS(i->code) == BPF_ALU64 ? 'r' : 'w';
	const char *op = alu_ops[BPF_OP(i->code) >> 4];

	if (BPF_OP(i->code) == BPF_END)
		snprintf(buf, len, "r%u = %s%d r%u", i->dst_reg,
			 BPF_SRC(i->code) == BPF_TO_BE ? "be" : "le", i->imm, i->dst_reg);
	else if (BPF_OP(i->code) == BPF_NEG)
		snprintf(buf, len, "%c%u = -%c%u", r, i->dst_reg, r, i->dst_reg);
	else if (!op)
		snprintf(buf, len, "alu? dst r%u src r%u imm %d", i->dst_reg, i->src_reg, i->imm);
	else if (BPF_SRC(i->code) == BPF_X)
		snprintf(buf, len, "%c%u %s %c%u", r, i->dst_reg, op, r, i->src_reg);
	else if (r == 'w' && (i->imm < -9 || i->imm > 9))
		snprintf(buf, len, "%c%u %s 0x%x", r, i->dst_reg, op, (uint32_t)i->imm);
	else
		snprintf(buf, len, "%c%u %s %d", r, i->dst_reg, op, i->imm);
}

static void jmp_str(const struct bpf_insn *i, char *buf, size_t len)
{
	char r = BPF_CLASS(i->code) == BPF_JMP32 ? 'w' : 'r';
	const char *op = jmp_ops[BPF_OP(i->code) >> 4];

	switch (BPF_OP(i->code)) {
	case BPF_JA:
		if (BPF_CLASS(i->code) == BPF_JMP32)
			snprintf(buf, len, "gotol pc%+d", i->imm);
		else
			snprintf(buf, len, "goto pc%+d", i->off);
		return;
	case BPF_CALL:
		snprintf(buf, len, "call %s#%d", helper_name(i->imm), i->imm);
		return;
	case BPF_EXIT:
		snprintf(buf, len, "exit");
		return;
	}
	if (!op)
		snprintf(buf, len, "jmp? dst r%u src r%u off %d imm %d", i->dst_reg, i->src_reg,
			 i->off, i->imm);
	else if (BPF_SRC(i->code) == BPF_X)
		snprintf(buf, len, "if %c%u %s %c%u goto pc%+d", r, i->dst_reg, op, r, i->src_reg,
			 i->off);
	else
		snprintf(buf, len, "if %c%u %s 0x%x goto pc%+d", r, i->dst_reg, op,
			 (uint32_t)i->imm, i->off);
}

int pl_ebpf_insn_str(const struct bpf_insn *insns, size_t cnt, size_t n, char *buf, size_t len)
{
	const struct bpf_insn *i = &insns[n];
	int w = snprintf(buf, len, "(%02x) ", i->code);

	if (w < 0 || (size_t)w >= len)
		return 1;
	buf += w;
	len -= (size_t)w;

	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		alu_str(i, buf, len);
		break;
	case BPF_JMP:
	case BPF_JMP32:
		jmp_str(i, buf, len);
		break;
	case BPF_LDX:
		snprintf(buf, len, "r%u = *(%s *)(r%u %+d)", i->dst_reg, size_name(i->code),
			 i->src_reg, i->off);
		break;
	case BPF_STX:
		snprintf(buf, len, "*(%s *)(r%u %+d) = r%u", size_name(i->code), i->dst_reg,
			 i->off, i->src_reg);
		break;
	case BPF_ST:
		snprintf(buf, len, "*(%s *)(r%u %+d) = %d", size_name(i->code), i->dst_reg,
			 i->off, i->imm);
		break;
	case BPF_LD:
		if (i->code == (BPF_LD | BPF_IMM | BPF_DW) && n + 1 < cnt) {
			snprintf(buf, len, "r%u = 0x%llx ll", i->dst_reg,
				 (unsigned long long)(uint32_t)i->imm |
				 (unsigned long long)(uint32_t)insns[n + 1].imm << 32);
			return 2;
		}
		/* fall through */
	default:
		snprintf(buf, len, "code 0x%02x dst r%u src r%u off %d imm %d", i->code,
			 i->dst_reg, i->src_reg, i->off, i->imm);
	}
	return 1;
}
