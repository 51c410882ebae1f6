// SPDX-License-Identifier: GPL-2.0
/*
 * What the translator knows about a (forward-only) cBPF program before
 * emitting it: which instructions some path reaches, the largest X on entry
 * to each instruction (X-indexed loads with a small X need no clamp), and
 * whether checking a window of linear data once up front pays.
 */
#include <errno.h>
#include <stdlib.h>

#include "xlate.h"

/* The instructions @p[i] goes on to: 1 or 2 in @succ, 0 after a return. */
static size_t successors(const struct sock_filter *p, size_t i, uint32_t succ[2])
{
	if (BPF_CLASS(p[i].code) == BPF_RET)
		return 0;
	if (p[i].code == (BPF_JMP | BPF_JA)) {
		succ[0] = (uint32_t)(i + 1 + p[i].k);
		return 1;
	}
	if (BPF_CLASS(p[i].code) == BPF_JMP) {
		succ[0] = (uint32_t)(i + 1 + p[i].jt);
		succ[1] = (uint32_t)(i + 1 + p[i].jf);
		return 2;
	}
	succ[0] = (uint32_t)(i + 1);
	return 1;
}

void xl_mark_reachable(struct xlate *x)
{
	uint32_t succ[2];

	x->reach[0] = true;
	for (size_t i = 0; i < x->len; i++) {
		if (!x->reach[i])
			continue;
		for (size_t n = successors(x->prog, i, succ); n--;)
			x->reach[succ[n]] = true;
	}
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

int xl_bound_regs(struct xlate *x)
{
	uint32_t *amax = malloc(x->len * sizeof(*amax));
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

		if (!seen[i])
			continue;
		bound_step(&x->prog[i], &a, &xv);
		for (size_t n = 0, nsucc = successors(x->prog, i, succ); n < nsucc; n++) {
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
uint32_t xl_fast_window(const struct xlate *x)
{
	uint32_t end = 0, loads = 0;

	if (x->ind_helper || x->len > 4096)
		return 0;	/* loops, huge programs: not twice */
	for (size_t i = 0; i < x->len; i++) {
		uint16_t code = x->prog[i].code;
		uint32_t n, e;

		if (!x->reach[i] || !xl_is_load(code) || BPF_MODE(code) == BPF_IND)
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
