// SPDX-License-Identifier: GPL-2.0
/*
 * Classic BPF (as libpcap emits it) -> eBPF, a complete XDP or tc program.
 * This file emits; validate.c and analyze.c say what to emit, vlan.c adds
 * the tc copy for tags in skb metadata (see xlate.h for the whole map).
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
 * Jumps: cBPF jumps go forward by at most 255 instructions (conditional) or
 * 2^32 (ja). Every cBPF instruction is emitted with jumps to symbolic targets,
 * patched once all addresses are known; a ja too long for the 16-bit offset
 * hops through trampolines (trampolines()), and only where a stretch has no
 * place for one becomes a `gotol` (BPF_JMP32|BPF_JA, 32-bit offset, 6.6). Conditional jumps stay
 * within 255 * (longest expansion) instructions, well inside 16 bits.
 * Backward jumps (libpcap's protochain loops) are unrolled first
 * (validate.c). Instructions no path reaches are dropped (the verifier
 * refuses unreachable code).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pktlens/array.h>
#include <pktlens/why.h>

#include "xlate.h"

const char *pl_filter_ctx_name(enum pl_filter_ctx ctx)
{
	return ctx == PL_FILTER_TC ? "tc" : "xdp";
}

/* ---- the emitter ---- */

void xl_emit(struct xlate *x, struct bpf_insn i)
{
	struct bpf_insn *o;

	if (x->ret)
		return;
	if (x->cnt == x->cap && x->cnt >= PL_EBPF_MAX_INSNS) {
		x->ret = pl_why(x->err, x->errlen, -E2BIG,
				"translated program exceeds %u instructions", PL_EBPF_MAX_INSNS);
		return;
	}
	o = pl_grown(x->out, &x->cap, x->cnt, sizeof(*o), 256);
	if (!o) {
		x->ret = -ENOMEM;
		return;
	}
	x->out = o;
	x->out[x->cnt++] = i;
}

size_t xl_jmp_local(struct xlate *x, struct bpf_insn jump)
{
	size_t at = x->cnt;

	xl_emit(x, jump);
	return at;
}

void xl_land(struct xlate *x, size_t at)
{
	if (!x->ret)
		x->out[at].off = (int16_t)(x->cnt - at - 1);
}

/* Remember fix[@n], a ja, until its target is emitted (trampolines()). */
static void open_ja(struct xlate *x, size_t n)
{
	size_t *o = pl_grown(x->open, &x->opencap, x->nopen, sizeof(*o), 16);

	if (!o) {
		x->ret = -ENOMEM;
		return;
	}
	x->open = o;
	x->open[x->nopen++] = n;
}

void xl_jmp_to(struct xlate *x, struct bpf_insn jump, uint32_t target)
{
	struct fixup *f;

	if (x->ret)
		return;
	f = pl_grown(x->fix, &x->fixcap, x->nfix, sizeof(*f), 64);
	if (!f) {
		x->ret = -ENOMEM;
		return;
	}
	x->fix = f;
	x->fix[x->nfix++] = (struct fixup){ .pos = x->cnt, .target = x->base + target };
	if (jump.code == (BPF_JMP | BPF_JA))
		open_ja(x, x->nfix - 1);
	xl_emit(x, jump);
}

void xl_ret0(struct xlate *x)
{
	xl_emit(x, BPF_MOV32_IMM(R0, 0));
	xl_emit(x, BPF_EXIT_INSN());
}

uint8_t xl_ld_size(unsigned int bytes)
{
	return bytes == 4 ? BPF_W : bytes == 2 ? BPF_H : BPF_B;
}

void xl_to_host(struct xlate *x, uint8_t dst, unsigned int bytes)
{
	if (bytes > 1)
		xl_emit(x, BPF_ENDIAN(BPF_TO_BE, dst, (int32_t)bytes * 8));
}

/* ---- packet loads ---- */

/*
 * Whether the offset in r2 of a slow-path load can be past 65535, where
 * bpf_xdp_load_bytes() takes none (opts.test_reach).
 */
enum far { FAR_NEVER, FAR_MAYBE };

/*
 * Slow path: offset in r2 (at most PKT_HELPER_MAX); read @bytes bytes with
 * the helper into dst, or return 0. Returns a jump to be landed on a
 * "return 0" (the caller emits it, shared with its own failures).
 */
static size_t emit_helper_load(struct xlate *x, unsigned int bytes, uint8_t dst, enum far far)
{
	int32_t helper = x->o.ctx == PL_FILTER_TC ? BPF_FUNC_skb_load_bytes :
						    BPF_FUNC_xdp_load_bytes;
	size_t fail;

	if (x->o.ctx == PL_FILTER_XDP && x->o.test_reach && !x->o.xdp_linear && far != FAR_NEVER) {
		/*
		 * opts.test_reach: past 65535 the helper fails; whether the frame
		 * has the bytes decides 0 (no match, as libpcap) or unreachable:
		 *   if r2 <= 0xffff goto call    (also for a constant: the helper call
		 *                                 stays reachable, the verifier prunes it)
		 *   buf = r2; r0 = bpf_xdp_get_buff_len(ctx); r2 = buf + bytes
		 *   if r2 > r0: return 0;  return PL_FILTER_UNREACHABLE
		 * Not in programs with loops (x->ind_helper): a branch on the
		 * offset there would keep the verifier from pruning their states.
		 */
		size_t j_near = xl_jmp_local(x, BPF_JMP_IMM(BPF_JLE, R2, PKT_DIRECT_MAX, 0));

		xl_emit(x, BPF_STX_MEM(BPF_W, R10, R2, OFF_BUF));
		xl_emit(x, BPF_LDX_MEM(BPF_DW, R1, R10, OFF_CTX));
		xl_emit(x, BPF_CALL_HELPER(BPF_FUNC_xdp_get_buff_len));
		xl_emit(x, BPF_LDX_MEM(BPF_W, R2, R10, OFF_BUF));
		xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R2, (int32_t)bytes));
		xl_emit(x, BPF_JMP_REG(BPF_JLE, R2, R0, 2));
		xl_ret0(x);
		xl_emit(x, BPF_MOV32_IMM(R0, PL_FILTER_UNREACHABLE));
		xl_emit(x, BPF_EXIT_INSN());
		xl_land(x, j_near);
	}
	xl_emit(x, BPF_LDX_MEM(BPF_DW, R1, R10, OFF_CTX));
	xl_emit(x, BPF_MOV64_REG(R3, R10));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R3, OFF_BUF));
	xl_emit(x, BPF_MOV64_IMM(R4, (int32_t)bytes));
	/*
	 * Without the helper the load fails as the helper would: the code stays
	 * (the verifier refuses unreachable instructions) but it prunes the path.
	 */
	if (x->o.ctx == PL_FILTER_XDP && x->o.xdp_linear)
		xl_emit(x, BPF_MOV64_IMM(R0, -1));
	else
		xl_emit(x, BPF_CALL_HELPER(helper));
	fail = xl_jmp_local(x, BPF_JMP_IMM(BPF_JNE, R0, 0, 0));
	xl_emit(x, BPF_LDX_MEM(xl_ld_size(bytes), dst, R10, OFF_BUF));
	xl_to_host(x, dst, bytes);
	return fail;
}

/*
 * The common end of a load, offset in r2 for the helper:
 *         <helper>; goto done
 *   fail: return 0                   (also where @j_fail2 jumps, if any)
 *   fast: dst = *(ptr + off)         (where @j_fast jumps, if any)
 *   done:
 */
static void emit_load_end(struct xlate *x, unsigned int bytes, uint8_t dst, size_t j_fast,
			  size_t j_fail2, uint8_t ptr, int16_t off, enum far far)
{
	size_t j_fail = emit_helper_load(x, bytes, dst, far);
	size_t j_done = xl_jmp_local(x, BPF_JMP_A(0));

	xl_land(x, j_fail);
	if (j_fail2 != NO_JUMP)
		xl_land(x, j_fail2);
	xl_ret0(x);
	if (j_fast != NO_JUMP) {
		xl_land(x, j_fast);
		xl_emit(x, BPF_LDX_MEM(xl_ld_size(bytes), dst, ptr, off));
		xl_to_host(x, dst, bytes);
	}
	xl_land(x, j_done);
}

/*
 * dst = @bytes bytes at constant offset k:
 *   k + n <= fast_len (checked up front):  dst = *(r6 + k)
 *   k + n <= 0xffff:  r1 = r6 + k + n; if r1 <= r9 goto fast; r2 = k; <end>
 *   beyond:           r2 = k; <helper>
 */
void xl_load_abs(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	size_t j_fast = NO_JUMP;

	if ((uint64_t)k + bytes <= x->fast_len) {
		xl_emit(x, BPF_LDX_MEM(xl_ld_size(bytes), dst, REG_PKT, (int16_t)k));
		xl_to_host(x, dst, bytes);
		return;
	}
	if ((uint64_t)k + bytes <= PKT_DIRECT_MAX) {
		xl_emit(x, BPF_MOV64_REG(R1, REG_PKT));
		xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R1, (int32_t)(k + bytes)));
		j_fast = xl_jmp_local(x, BPF_JMP_REG(BPF_JLE, R1, REG_END, 0));
	}
	xl_emit(x, BPF_MOV64_IMM(R2, (int32_t)k));
	emit_load_end(x, bytes, dst, j_fast, NO_JUMP, R1, -(int16_t)bytes,
		      k > PKT_DIRECT_MAX ? FAR_MAYBE : FAR_NEVER);
}

void xl_x_plus_k(struct xlate *x, uint32_t k)
{
	if (!k) {
		xl_emit(x, BPF_MOV64_REG(R1, REG_X));
		return;
	}
	xl_emit(x, BPF_MOV32_IMM(R1, (int32_t)k));	/* never wraps: 64-bit add of u32s */
	xl_emit(x, BPF_ALU64_REG(BPF_ADD, R1, REG_X));
}

/*
 * dst = @bytes bytes at X + k, X + k + n <= 0xffff known from the program
 * (analyze.c): the verifier knows X's bound too, so the packet pointer
 * needs no clamp.
 *   r2 = r6 + X; r3 = r2 + k + n; if r3 <= r9 goto fast; r2 = X + k; <end>
 *   fast: dst = *(r2 + k)
 */
static void emit_load_ind_bounded(struct xlate *x, unsigned int bytes, uint32_t k, uint8_t dst)
{
	size_t j_fast;

	xl_emit(x, BPF_MOV64_REG(R2, REG_PKT));
	xl_emit(x, BPF_ALU64_REG(BPF_ADD, R2, REG_X));
	xl_emit(x, BPF_MOV64_REG(R3, R2));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R3, (int32_t)(k + bytes)));
	j_fast = xl_jmp_local(x, BPF_JMP_REG(BPF_JLE, R3, REG_END, 0));
	xl_emit(x, BPF_MOV64_REG(R2, REG_X));
	if (k)
		xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R2, (int32_t)k));
	emit_load_end(x, bytes, dst, j_fast, NO_JUMP, R2, (int16_t)k, FAR_NEVER);
}

/*
 * dst = @bytes bytes at offset r1 (any 64-bit value):
 *   if r1 > 0xffff - n goto slow
 *   r2 = r6 + r1; r3 = r2 + n; if r3 <= r9 goto fast
 *   slow: if r1 > INT_MAX goto fail; r2 = r1; <end>
 *   fast: dst = *(r2 + 0)
 */
static void emit_load_r1(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	size_t j_fast, j_slow, j_big;

	j_slow = xl_jmp_local(x, BPF_JMP_IMM(BPF_JGT, R1, (int32_t)(PKT_DIRECT_MAX - bytes), 0));
	xl_emit(x, BPF_MOV64_REG(R2, REG_PKT));
	xl_emit(x, BPF_ALU64_REG(BPF_ADD, R2, R1));
	xl_emit(x, BPF_MOV64_REG(R3, R2));
	xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R3, (int32_t)bytes));
	j_fast = xl_jmp_local(x, BPF_JMP_REG(BPF_JLE, R3, REG_END, 0));
	xl_land(x, j_slow);
	j_big = xl_jmp_local(x, BPF_JMP_IMM(BPF_JGT, R1, PKT_HELPER_MAX, 0));
	xl_emit(x, BPF_MOV64_REG(R2, R1));
	emit_load_end(x, bytes, dst, j_fast, j_big, R2, 0, FAR_MAYBE);
}

/*
 * dst = @bytes bytes at offset r1 through the helper only, for programs with
 * loops: no branch depends on X, so the verifier need not track X precisely
 * and prunes the unrolled copies' states (else they multiply).
 *   r2 = r1, or ~0 (refused by the helper) past 32 bits; <helper>
 */
static void emit_helper_r1(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	xl_emit(x, BPF_MOV64_REG(R2, R1));
	xl_emit(x, BPF_ALU64_IMM(BPF_RSH, R2, 32));
	xl_emit(x, BPF_ALU64_IMM(BPF_NEG, R2, 0));
	xl_emit(x, BPF_ALU64_REG(BPF_OR, R2, R1));
	emit_load_end(x, bytes, dst, NO_JUMP, NO_JUMP, 0, 0, FAR_NEVER);	/* loops: see emit_helper_load() */
}

void xl_load_r1_any(struct xlate *x, unsigned int bytes, uint8_t dst)
{
	if (x->ind_helper)
		emit_helper_r1(x, bytes, dst);
	else
		emit_load_r1(x, bytes, dst);
}

/* dst = @bytes bytes (1, 2, 4) at k (@ind: X + k), big-endian; out of bounds returns 0 */
static void emit_load(struct xlate *x, uint32_t i, unsigned int bytes, uint32_t k, bool ind,
		      uint8_t dst)
{
	if (x->vlan) {
		xl_vlan_load(x, bytes, k, ind, dst);
	} else if (!ind) {
		xl_load_abs(x, bytes, k, dst);
	} else if (!x->ind_helper &&
		   (uint64_t)x->xmax[i] + k + bytes <= PKT_DIRECT_MAX && k + bytes <= INT16_MAX) {
		emit_load_ind_bounded(x, bytes, k, dst);
	} else {
		xl_x_plus_k(x, k);
		xl_load_r1_any(x, bytes, dst);
	}
}

/* ---- instruction by instruction ---- */

static int16_t mem_off(uint32_t k)
{
	return (int16_t)(OFF_MEM + 4 * (int)k);
}

static void emit_ld(struct xlate *x, uint32_t i)
{
	const struct sock_filter *f = &x->prog[i];
	uint8_t dst = BPF_CLASS(f->code) == BPF_LDX ? REG_X : REG_A;
	unsigned int bytes = BPF_SIZE(f->code) == BPF_W ? 4 : BPF_SIZE(f->code) == BPF_H ? 2 : 1;

	switch (BPF_MODE(f->code)) {
	case BPF_ABS:
		emit_load(x, i, bytes, f->k, false, REG_A);
		return;
	case BPF_IND:
		emit_load(x, i, bytes, f->k, true, REG_A);
		return;
	case BPF_LEN:
		xl_emit(x, BPF_LDX_MEM(BPF_W, dst, R10, OFF_LEN));
		return;
	case BPF_IMM:
		xl_emit(x, BPF_MOV32_IMM(dst, (int32_t)f->k));
		return;
	case BPF_MEM:
		xl_emit(x, BPF_LDX_MEM(BPF_W, dst, R10, mem_off(f->k)));
		return;
	case BPF_MSH:	/* X = 4 * (pkt[k] & 0xf) */
		emit_load(x, i, 1, f->k, false, REG_X);
		xl_emit(x, BPF_ALU32_IMM(BPF_AND, REG_X, 0xf));
		xl_emit(x, BPF_ALU32_IMM(BPF_LSH, REG_X, 2));
		return;
	}
}

static void emit_alu(struct xlate *x, const struct sock_filter *f)
{
	uint8_t op = BPF_OP(f->code);
	size_t j, j_done;

	if (op == BPF_NEG) {
		xl_emit(x, BPF_ALU32_IMM(BPF_NEG, REG_A, 0));
		return;
	}
	if (BPF_SRC(f->code) == BPF_K) {
		/* k != 0 and shifts < 32: validated */
		xl_emit(x, BPF_ALU32_IMM(op, REG_A, (int32_t)f->k));
		return;
	}
	switch (op) {
	case BPF_DIV:
	case BPF_MOD:
		/* if X == 0 return 0 */
		j = xl_jmp_local(x, BPF_JMP32_IMM(BPF_JNE, REG_X, 0, 0));
		xl_ret0(x);
		xl_land(x, j);
		break;
	case BPF_LSH:
	case BPF_RSH:
		/* libpcap: a shift by 32 or more gives 0 */
		j = xl_jmp_local(x, BPF_JMP32_IMM(BPF_JLT, REG_X, 32, 0));
		xl_emit(x, BPF_MOV32_IMM(REG_A, 0));
		j_done = xl_jmp_local(x, BPF_JMP_A(0));
		xl_land(x, j);
		xl_emit(x, BPF_ALU32_REG(op, REG_A, REG_X));
		xl_land(x, j_done);
		return;
	}
	xl_emit(x, BPF_ALU32_REG(op, REG_A, REG_X));
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

/* if (A op K|X) goto +off, 32-bit unsigned */
static struct bpf_insn cond_jump(const struct sock_filter *f, uint8_t op)
{
	if (BPF_SRC(f->code) == BPF_X)
		return BPF_JMP32_REG(op, REG_A, REG_X, 0);
	return BPF_JMP32_IMM(op, REG_A, (int32_t)f->k, 0);
}

/*
 * if (A op K|X) goto jt else goto jf. Falls through where a target is the
 * next instruction.
 */
static void emit_jmp(struct xlate *x, const struct sock_filter *f, uint32_t i)
{
	uint8_t op = BPF_OP(f->code);
	uint32_t next = i + 1, t, e;
	size_t j;

	if (op == BPF_JA) {
		t = next + f->k;	/* forward: unrolled */
		if (t != next)
			xl_jmp_to(x, BPF_JMP_A(0), t);
		return;
	}
	t = next + f->jt;
	e = next + f->jf;
	if (t == e) {
		if (t != next)
			xl_jmp_to(x, BPF_JMP_A(0), t);
	} else if (e == next) {
		xl_jmp_to(x, cond_jump(f, op), t);
	} else if (t == next && jmp_invert(op)) {
		xl_jmp_to(x, cond_jump(f, jmp_invert(op)), e);
	} else if (t == next) {
		/* JSET with jt == 0: if (A & K) skip the jump to jf */
		j = xl_jmp_local(x, cond_jump(f, op));
		xl_jmp_to(x, BPF_JMP_A(0), e);
		xl_land(x, j);
	} else {
		xl_jmp_to(x, cond_jump(f, op), t);
		xl_jmp_to(x, BPF_JMP_A(0), e);
	}
}

/* return (A or K) != 0 */
static void emit_ret(struct xlate *x, const struct sock_filter *f)
{
	size_t j;

	if (BPF_RVAL(f->code) == BPF_K) {
		xl_emit(x, BPF_MOV32_IMM(R0, f->k ? 1 : 0));
		xl_emit(x, BPF_EXIT_INSN());
		return;
	}
	xl_emit(x, BPF_MOV32_IMM(R0, 0));
	j = xl_jmp_local(x, BPF_JMP32_IMM(BPF_JEQ, REG_A, 0, 0));
	xl_emit(x, BPF_MOV32_IMM(R0, 1));
	xl_land(x, j);
	xl_emit(x, BPF_EXIT_INSN());
}

static void emit_one(struct xlate *x, uint32_t i)
{
	const struct sock_filter *f = &x->prog[i];

	switch (BPF_CLASS(f->code)) {
	case BPF_LD:
	case BPF_LDX:
		emit_ld(x, i);
		break;
	case BPF_ST:
		xl_emit(x, BPF_STX_MEM(BPF_W, R10, REG_A, mem_off(f->k)));
		break;
	case BPF_STX:
		xl_emit(x, BPF_STX_MEM(BPF_W, R10, REG_X, mem_off(f->k)));
		break;
	case BPF_ALU:
		emit_alu(x, f);
		break;
	case BPF_JMP:
		emit_jmp(x, f, i);
		break;
	case BPF_RET:
		emit_ret(x, f);
		break;
	case BPF_MISC:
		if (BPF_MISCOP(f->code) == BPF_TAX)
			xl_emit(x, BPF_MOV32_REG(REG_X, REG_A));
		else
			xl_emit(x, BPF_MOV32_REG(REG_A, REG_X));
		break;
	}
}

/* ---- the program around the instructions ---- */

/* wire length -> OFF_LEN; r1 = ctx on entry and on exit */
static void emit_wire_len(struct xlate *x)
{
	size_t j_nometa, j_store = 0;

	if (x->o.ctx == PL_FILTER_TC) {
		/* test runs: cb[4], since __sk_buff->wire_len cannot exceed 64 KiB there */
		int16_t off = x->o.test_wirelen ? offsetof(struct __sk_buff, cb[4]) :
						  offsetof(struct __sk_buff, len);

		xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R1, off));
		xl_emit(x, BPF_STX_MEM(BPF_W, R10, R0, OFF_LEN));
		return;
	}
	if (x->o.test_wirelen) {
		/* 4 bytes of metadata, if present, hold the wire length */
		xl_emit(x, BPF_LDX_MEM(BPF_W, R2, R1, offsetof(struct xdp_md, data_meta)));
		xl_emit(x, BPF_LDX_MEM(BPF_W, R3, R1, offsetof(struct xdp_md, data)));
		xl_emit(x, BPF_MOV64_REG(R4, R2));
		xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R4, 4));
		j_nometa = xl_jmp_local(x, BPF_JMP_REG(BPF_JGT, R4, R3, 0));
		xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R2, 0));
		j_store = xl_jmp_local(x, BPF_JMP_A(0));
		xl_land(x, j_nometa);
	}
	if (x->o.xdp_linear) {
		/* pkt_end - pkt: a scalar for a privileged loader (allow_ptr_leaks) */
		xl_emit(x, BPF_LDX_MEM(BPF_W, R2, R1, offsetof(struct xdp_md, data)));
		xl_emit(x, BPF_LDX_MEM(BPF_W, R0, R1, offsetof(struct xdp_md, data_end)));
		xl_emit(x, BPF_ALU64_REG(BPF_SUB, R0, R2));
	} else {
		xl_emit(x, BPF_CALL_HELPER(BPF_FUNC_xdp_get_buff_len));
	}
	if (x->o.test_wirelen)
		xl_land(x, j_store);
	xl_emit(x, BPF_STX_MEM(BPF_W, R10, R0, OFF_LEN));
	xl_emit(x, BPF_LDX_MEM(BPF_DW, R1, R10, OFF_CTX));
}

/* ctx, `len`, r6, r9, A, X, M[]; r1 = ctx after it. *reads: packet or `len` */
static void emit_prologue(struct xlate *x, bool *uses_len, bool *reads)
{
	bool tc = x->o.ctx == PL_FILTER_TC;
	unsigned int mem_read = 0;

	*uses_len = *reads = false;
	for (size_t i = 0; i < x->len; i++) {
		uint16_t code = x->prog[i].code;

		if (!x->reach[i])
			continue;
		if (code == (BPF_LD | BPF_W | BPF_LEN) || code == (BPF_LDX | BPF_W | BPF_LEN))
			*uses_len = true;
		if (xl_is_load(code))
			*reads = true;
		if (code == (BPF_LD | BPF_MEM) || code == (BPF_LDX | BPF_MEM))
			mem_read |= 1U << x->prog[i].k;
	}
	*reads |= *uses_len;
	xl_emit(x, BPF_STX_MEM(BPF_DW, R10, R1, OFF_CTX));
	if (*uses_len)
		emit_wire_len(x);
	xl_emit(x, BPF_LDX_MEM(BPF_W, REG_PKT, R1, tc ? offsetof(struct __sk_buff, data) :
							offsetof(struct xdp_md, data)));
	xl_emit(x, BPF_LDX_MEM(BPF_W, REG_END, R1, tc ? offsetof(struct __sk_buff, data_end) :
							offsetof(struct xdp_md, data_end)));
	xl_emit(x, BPF_MOV32_IMM(REG_A, 0));
	xl_emit(x, BPF_MOV32_IMM(REG_X, 0));
	/* libpcap's interpreter starts with M[] zeroed; the verifier wants it written */
	for (int pair = 0; pair < 8; pair++)
		if (mem_read & (3U << (2 * pair)))
			xl_emit(x, BPF_ST_MEM(BPF_DW, R10, (int16_t)(OFF_MEM + 8 * pair), 0));
}

static int patch_jumps(struct xlate *x)
{
	for (size_t n = 0; n < x->nfix; n++) {
		struct bpf_insn *j = &x->out[x->fix[n].pos];
		int64_t off = (int64_t)(x->fix[n].hop ? x->fix[n].at : x->start[x->fix[n].target]) -
			      (int64_t)x->fix[n].pos - 1;

		if (off <= INT16_MAX)
			j->off = (int16_t)off;
		else if (j->code == (BPF_JMP | BPF_JA) && off <= INT32_MAX)
			*j = BPF_JMP32_A((int32_t)off);		/* gotol */
		else
			return pl_why(x->err, x->errlen, -E2BIG, "conditional jump too long (%lld)",
				      (long long)off);
	}
	return 0;
}

/*
 * Trampolines: a ja whose target is still TRAMPOLINE_GAP instructions or
 * more ahead goes instead to a ja put here, at a point no instruction falls
 * through (after an exit or a ja), which goes on to the target or the next
 * such ja. So no jump needs more than the 16-bit offset every kernel takes:
 * a `gotol` (32-bit, Linux 6.6) only where a stretch of 32,767 instructions
 * has no such point. Jumping over a whole copy of a large program (the tc
 * VLAN copy, the fast copy) needed one, which 5.10 and 6.1 refuse.
 */
#define TRAMPOLINE_GAP 24000

/*
 * Whether no instruction of those from @from on goes on at the next one: the
 * last is an exit or a ja, and no local jump among them lands past it (a
 * skipped `return` lands there: xl_land()). Jumps to other cBPF instructions
 * are patched later (their off is 0 until then).
 */
static bool nothing_falls_through(const struct xlate *x, size_t from)
{
	uint8_t last = x->cnt > from ? x->out[x->cnt - 1].code : 0;

	if (last != (BPF_JMP | BPF_EXIT) && last != (BPF_JMP | BPF_JA))
		return false;
	for (size_t p = from; p + 1 < x->cnt; p++) {
		uint8_t c = x->out[p].code, cls = BPF_CLASS(c), op = BPF_OP(c);

		if ((cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_CALL && op != BPF_EXIT &&
		    p + (size_t)(int64_t)x->out[p].off + 1 == x->cnt)
			return false;
	}
	return true;
}

/* Whether the oldest open ja (open[] is in emission order) may need a hop by now. */
static bool hop_due(const struct xlate *x)
{
	return x->nopen && x->cnt - x->fix[x->open[0]].pos >= TRAMPOLINE_GAP;
}

static void trampolines(struct xlate *x)
{
	size_t n0 = x->nopen, kept = 0;
	uint32_t base = x->base;

	for (size_t k = 0; k < n0 && !x->ret; k++) {
		size_t n = x->open[k];
		uint32_t t = x->fix[n].target;

		if (x->start[t])	/* emitted: its offset is known to fit, or gotol */
			continue;
		if (x->cnt - x->fix[n].pos < TRAMPOLINE_GAP) {
			x->open[kept++] = n;
			continue;
		}
		x->fix[n].hop = true;
		x->fix[n].at = x->cnt;
		x->base = 0;	/* t is a start[] index already */
		xl_jmp_to(x, BPF_JMP_A(0), t);	/* the next hop, opened past n0 */
	}
	x->base = base;
	if (x->ret)
		return;
	for (size_t k = n0; k < x->nopen; k++)
		x->open[kept++] = x->open[k];
	x->nopen = kept;
}

/* One copy of the program: cBPF insn i starts at start[base + i]. */
static void emit_variant(struct xlate *x, uint32_t base, uint32_t fast_len)
{
	x->base = base;
	x->fast_len = fast_len;
	for (uint32_t i = 0; !x->ret && i < x->len; i++) {
		x->start[base + i] = x->cnt;
		if (!x->reach[i])
			continue;
		emit_one(x, i);
		if (!x->ret && hop_due(x) && nothing_falls_through(x, x->start[base + i]))
			trampolines(x);
	}
	x->start[base + x->len] = x->cnt;
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
	xl_mark_reachable(x);
	err = xl_bound_regs(x);
	if (err)
		return err;
	emit_prologue(x, &uses_len, &reads);
	vlan = x->o.ctx == PL_FILTER_TC && reads;
	if (vlan)
		xl_vlan_dispatch(x, uses_len, vlan_base);
	fast = xl_fast_window(x);
	if (fast) {
		/* if (r6 + fast <= r9) fast variant, else careful variant (base len + 1) */
		xl_emit(x, BPF_MOV64_REG(R1, REG_PKT));
		xl_emit(x, BPF_ALU64_IMM(BPF_ADD, R1, (int32_t)fast));
		j = xl_jmp_local(x, BPF_JMP_REG(BPF_JLE, R1, REG_END, 0));
		x->base = (uint32_t)x->len + 1;
		xl_jmp_to(x, BPF_JMP_A(0), 0);
		xl_land(x, j);
		emit_variant(x, 0, fast);
	}
	emit_variant(x, fast ? (uint32_t)x->len + 1 : 0, 0);
	if (vlan) {
		x->vlan = true;
		emit_variant(x, vlan_base, 0);
	}
	return x->ret ?: patch_jumps(x);
}

int pl_cbpf_translate(const struct sock_filter *prog, size_t len, const struct pl_filter_opts *o,
		      struct bpf_insn **out, size_t *out_len, char *err, size_t errlen)
{
	struct xlate x = { .err = err, .errlen = errlen };
	struct sock_filter *unrolled = NULL;
	int ret;

	if (!o || !out || !out_len || (o->ctx != PL_FILTER_XDP && o->ctx != PL_FILTER_TC))
		return -EINVAL;
	x.o = *o;
	ret = pl_cbpf_validate(prog, len, err, errlen);
	if (ret)
		return ret;
	x.prog = prog;
	x.len = len;
	ret = xl_unroll(prog, len, &unrolled, &x.len);
	if (ret)
		goto out;
	if (unrolled) {
		x.prog = unrolled;
		x.ind_helper = true;	/* see emit_helper_r1() */
	}
	ret = translate(&x);
	if (!ret && o->ctx == PL_FILTER_TC && o->test_vlan_meta)
		ret = xl_vlan_meta_caller(&x);
	if (ret)
		goto out;
	*out = x.out;
	*out_len = x.cnt;
	x.out = NULL;
out:
	if (ret == -ENOMEM)
		pl_why(err, errlen, ret, "translating: %s", strerror(ENOMEM));
	free(x.out);
	free(x.fix);
	free(x.open);
	free(x.start);
	free(x.xmax);
	free(x.reach);
	free(unrolled);
	return ret;
}

/* ---- expression -> cBPF -> eBPF ---- */

int pl_filter_build(const char *expr, const struct pl_filter_opts *o, struct pl_filter_prog *p,
		    char *err, size_t errlen)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = pl_cbpf_compile(expr, &p->cbpf, &p->cbpf_len, err, errlen);
	if (!ret)
		ret = pl_cbpf_translate(p->cbpf, p->cbpf_len, o, &p->ebpf, &p->ebpf_len, err, errlen);
	if (ret)
		pl_filter_prog_free(p);
	return ret;
}

void pl_filter_prog_free(struct pl_filter_prog *p)
{
	free(p->cbpf);
	free(p->ebpf);
	memset(p, 0, sizeof(*p));
}
