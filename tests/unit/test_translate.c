// SPDX-License-Identifier: GPL-2.0
/*
 * cBPF -> eBPF translator, instruction class by instruction class: each
 * hand-written cBPF program is translated for XDP and tc, loaded, run with
 * BPF_PROG_TEST_RUN on a set of packets (every length from 14 to 80 bytes,
 * truncated captures, jumbo frames, VLAN-tagged frames) and its verdict
 * compared with libpcap's bpf_filter() on the same packet. tc programs run
 * twice: as the frame is, and with its outer VLAN tag moved into skb metadata
 * (pl_filter_opts.test_vlan_meta) as tc ingress gets tagged frames. Value tests check A (or X) bit by bit: one
 * program per bit ends in `jset #bit`, plus one that checks the body does not
 * return early.
 *
 * Prints one line per failure, then "N passed, M failed"; exits 1 on failure.
 * Needs root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/filter.h>

#include "../../pcap/cbpf.h"

#define MAX_PROG	12000
#define JUMBO		9000

struct pkt {
	uint8_t *data;
	uint32_t caplen, wirelen;
};

static struct pkt pkts[160];
static size_t npkts;
static unsigned int passed, failed;

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void add_pkt(uint32_t caplen, uint32_t wirelen, uint8_t seed)
{
	struct pkt *p = &pkts[npkts++];

	p->data = malloc(caplen);
	for (uint32_t i = 0; i < caplen; i++)
		p->data[i] = (uint8_t)(i * 37 + seed);
	/* some zero bytes for division by zero, some small ones for shifts */
	for (uint32_t i = 20; i < caplen; i += 9)
		p->data[i] = 0;
	for (uint32_t i = 22; i < caplen; i += 11)
		p->data[i] = (uint8_t)(i % 40);
	p->caplen = caplen;
	p->wirelen = wirelen;
}

static void make_packets(void)
{
	for (uint32_t len = 14; len <= 80; len++)
		add_pkt(len, len, (uint8_t)len);
	add_pkt(40, 100, 1);		/* truncated captures */
	add_pkt(20, 60, 2);
	add_pkt(64, 9000, 3);
	add_pkt(1514, 1514, 4);
	add_pkt(3000, 3000, 5);
	add_pkt(4000, 4000, 6);		/* beyond one page: XDP fragments */
	add_pkt(JUMBO, JUMBO, 7);
	/* outer 802.1Q / 802.1ad tags (TCI bytes from the pattern): tc gets them in metadata */
	for (uint32_t len = 18; len <= 40; len++) {
		add_pkt(len, len, (uint8_t)(len + 100));
		pkts[npkts - 1].data[12] = 0x81;
		pkts[npkts - 1].data[13] = len % 3 ? 0x00 : 0x81;	/* 0x8181: not a tag */
		if (len % 5 == 0) {
			pkts[npkts - 1].data[12] = 0x88;
			pkts[npkts - 1].data[13] = 0xa8;
		}
	}
	add_pkt(40, 90, 8);
	add_pkt(3000, 3000, 9);
	add_pkt(JUMBO, JUMBO, 10);
	for (size_t i = npkts - 3; i < npkts; i++) {
		pkts[i].data[12] = 0x81;
		pkts[i].data[13] = 0x00;
	}
}

/* The most a test run puts in one XDP buffer: a page less headroom and skb_shared_info. */
#define XDP_LINEAR_MAX 3500U

/*
 * Run @prog everywhere; true when the kernel agrees on every packet with
 * libpcap running @ref (normally @prog itself).
 */
static bool agrees_ref(const char *name, const struct sock_filter *prog,
		       const struct sock_filter *ref, size_t len)
{
	static const struct {
		struct pl_filter_opts o;
		const char *name;
	} modes[] = {
		{ { PL_FILTER_XDP, .test_wirelen = true }, "xdp" },
		{ { PL_FILTER_XDP, .test_wirelen = true, .xdp_linear = true }, "xdp-linear" },
		{ { PL_FILTER_TC, .test_wirelen = true }, "tc" },
		{ { PL_FILTER_TC, .test_wirelen = true, .test_vlan_meta = true }, "tc+vlan-meta" },
	};
	bool ok = true;

	for (size_t c = 0; c < sizeof(modes) / sizeof(modes[0]); c++) {
		const char *cn = modes[c].name;
		const struct pl_filter_opts *o = &modes[c].o;
		struct bpf_insn *e = NULL;
		char err[4096];
		size_t elen;
		int fd, ret;

		ret = pl_cbpf_translate(prog, len, o, &e, &elen, err, sizeof(err));
		if (ret) {
			fail("%s/%s: translate: %s", name, cn, err);
			return false;
		}
		fd = pl_ebpf_load(e, elen, o->ctx, 0, err, sizeof(err));
		free(e);
		if (fd < 0) {
			fail("%s/%s: load: %s", name, cn, err);
			return false;
		}
		for (size_t i = 0; i < npkts && ok; i++) {
			const struct pkt *p = &pkts[i];
			bool want = pl_cbpf_filter(ref, len, p->data, p->wirelen, p->caplen) != 0;
			bool got;

			/* kernels without bpf_xdp_load_bytes have no multi-buffer frames either */
			if (o->xdp_linear && p->caplen > XDP_LINEAR_MAX)
				continue;
			ret = pl_ebpf_run(fd, o, p->data, p->caplen, p->wirelen, &got);
			if (ret == -EMSGSIZE)
				continue;	/* tc: over a page */
			if (ret) {
				fail("%s/%s: test run on %u/%u bytes: %s", name, cn, p->caplen,
				     p->wirelen, strerror(-ret));
				ok = false;
			} else if (got != want) {
				fail("%s/%s: packet of %u/%u bytes: kernel %d, libpcap %d", name, cn,
				     p->caplen, p->wirelen, got, want);
				ok = false;
			}
		}
		close(fd);
	}
	return ok;
}

static bool agrees(const char *name, const struct sock_filter *prog, size_t len)
{
	return agrees_ref(name, prog, prog, len);
}

static void check(const char *name, const struct sock_filter *prog, size_t len)
{
	if (agrees(name, prog, len))
		passed++;
	else
		failed++;
}

#define CHECK(name, ...) do {						\
	const struct sock_filter p_[] = { __VA_ARGS__ };		\
	check(name, p_, sizeof(p_) / sizeof(p_[0]));			\
} while (0)

/* @body then a test of bit @bit of A (of X with @x); bit -1: "completes" */
static size_t bit_prog(struct sock_filter *prog, const struct sock_filter *body, size_t n,
		       bool x, int bit)
{
	memcpy(prog, body, n * sizeof(*body));
	if (bit < 0) {
		prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 1);
		return n;
	}
	if (x)
		prog[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 1U << bit, 0, 1);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 1);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	return n;
}

/*
 * The value of A after @body, bit by bit, against libpcap running @ref; @x:
 * of X instead. Also that the body completes (does not return) exactly when
 * libpcap's does.
 */
static void check_value_ref(const char *name, const struct sock_filter *body,
			    const struct sock_filter *ref, size_t n, bool x)
{
	struct sock_filter prog[64], rprog[64];
	bool ok = true;

	for (int bit = -1; bit < 32 && ok; bit++) {
		size_t len = bit_prog(prog, body, n, x, bit);

		bit_prog(rprog, ref, n, x, bit);
		ok = agrees_ref(name, prog, rprog, len);
	}
	if (ok)
		passed++;
	else
		failed++;
}

static void check_value(const char *name, const struct sock_filter *body, size_t n, bool x)
{
	check_value_ref(name, body, body, n, x);
}

#define VALUE(name, ...) do {						\
	const struct sock_filter v_[] = { __VA_ARGS__ };		\
	check_value(name, v_, sizeof(v_) / sizeof(v_[0]), false);	\
} while (0)

#define XVALUE(name, ...) do {						\
	const struct sock_filter v_[] = { __VA_ARGS__ };		\
	check_value(name, v_, sizeof(v_) / sizeof(v_[0]), true);	\
} while (0)

#define LD(sz, mode, k)	BPF_STMT(BPF_LD | (sz) | (mode), k)
#define LDXI(k)		BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, k)
#define LDI(k)		BPF_STMT(BPF_LD | BPF_W | BPF_IMM, k)
#define ALU(op, src, k)	BPF_STMT(BPF_ALU | (op) | (src), k)

static const char *size_name(int sz)
{
	return sz == BPF_W ? "w" : sz == BPF_H ? "h" : "b";
}

/* ABS loads of each width at offsets around the end of short packets. */
static void test_ld_abs(void)
{
	static const uint32_t offs[] = { 0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 50, 58, 59, 60, 61, 62, 76, 77, 78, 79, 80,
					 1510, 2999, 3996, 5000, 8996, 8999, 9000, 0xfffb,
					 0xfffe, 0xffff, 0x10000, 0x7ffffffb, 0x7fffffff };
	static const int sizes[] = { BPF_W, BPF_H, BPF_B };
	char name[64];

	for (size_t s = 0; s < 3; s++) {
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			const struct sock_filter body[] = { LD(sizes[s], BPF_ABS, offs[o]) };

			snprintf(name, sizeof(name), "ld%s [%u]", size_name(sizes[s]), offs[o]);
			check_value(name, body, 1, false);
		}
	}
}

/* X-indexed loads: X + k at and across the end, and past 32 bits. */
static void test_ld_ind(void)
{
	static const uint32_t xs[] = { 0, 1, 11, 13, 14, 15, 17, 40, 62, 3990, 8990, 0xfff0, 0x7fffffff,
				       0x80000000, 0xfffffff0, 0xffffffff };
	static const uint32_t ks[] = { 0, 2, 14, 0xffff, 0x7fffffff };
	static const int sizes[] = { BPF_W, BPF_H, BPF_B };
	char name[64];

	for (size_t s = 0; s < 3; s++) {
		for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
			for (size_t j = 0; j < sizeof(ks) / sizeof(ks[0]); j++) {
				const struct sock_filter body[] = {
					LDXI(xs[i]), LD(sizes[s], BPF_IND, ks[j]),
				};

				snprintf(name, sizeof(name), "ld%s [x + %u], x = %u",
					 size_name(sizes[s]), ks[j], xs[i]);
				check_value(name, body, 2, false);
			}
		}
	}
	/* X bounded by the program (no clamp in the translation) and not */
	VALUE("ldh [x + 14], x = ldb [15] * 4 + 1", LD(BPF_B, BPF_ABS, 15), ALU(BPF_MUL, BPF_K, 4),
	      ALU(BPF_ADD, BPF_K, 1), BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_H, BPF_IND, 14));
	VALUE("ld [x + 0x7000], x = ldb [15] << 4", LD(BPF_B, BPF_ABS, 15), ALU(BPF_LSH, BPF_K, 4),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_W, BPF_IND, 0x7000));
	VALUE("ldb [x + 0xfff0], x = ldb [15]", LD(BPF_B, BPF_ABS, 15),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_B, BPF_IND, 0xfff0));
	VALUE("ldh [x + 3], x = ldh [16] & 0x3f", LD(BPF_H, BPF_ABS, 16), ALU(BPF_AND, BPF_K, 0x3f),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_H, BPF_IND, 3));
	VALUE("ldh [x + 3], x = ldh [16] >> 10", LD(BPF_H, BPF_ABS, 16), ALU(BPF_RSH, BPF_K, 10),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_H, BPF_IND, 3));
	VALUE("ld [x + 1], x = ldb [17] + ldb [18]", LD(BPF_B, BPF_ABS, 17),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_B, BPF_ABS, 18), ALU(BPF_ADD, BPF_X, 0),
	      BPF_STMT(BPF_MISC | BPF_TAX, 0), LD(BPF_W, BPF_IND, 1));
	VALUE("ldb [x + 2], x = M[1] (unbounded)", LD(BPF_B, BPF_ABS, 15), BPF_STMT(BPF_ST, 1),
	      BPF_STMT(BPF_LDX | BPF_MEM, 1), LD(BPF_B, BPF_IND, 2));
	/* X from the packet: every packet a different offset */
	VALUE("ldb [x + 10], x = ldb [13]", LD(BPF_B, BPF_ABS, 13), BPF_STMT(BPF_MISC | BPF_TAX, 0),
	      LD(BPF_B, BPF_IND, 10));
	VALUE("ld [x + 0], x = ldh [30]", LD(BPF_H, BPF_ABS, 30), BPF_STMT(BPF_MISC | BPF_TAX, 0),
	      LD(BPF_W, BPF_IND, 0));
	/*
	 * k of 2^31 and more, as libpcap emits (`mpls and geneve and ip`: [x + -2]):
	 * bpf_filter() does not wrap X + k, the load is past the packet. Reading at
	 * X + k mod 2^32 (X - 2, as the kernel's socket filters do) would differ.
	 */
	for (size_t s = 0; s < 3; s++) {
		static const uint32_t nx[] = { 0, 2, 14, 16 };
		static const uint32_t nk[] = { 0x80000000, (uint32_t)SKF_NET_OFF, 0xfffffff2,
					       0xfffffffe };

		for (size_t i = 0; i < sizeof(nx) / sizeof(nx[0]); i++) {
			for (size_t j = 0; j < sizeof(nk) / sizeof(nk[0]); j++) {
				const struct sock_filter body[] = {
					LDXI(nx[i]), LD(sizes[s], BPF_IND, nk[j]),
				};

				snprintf(name, sizeof(name), "ld%s [x + %d], x = %u",
					 size_name(sizes[s]), (int32_t)nk[j], nx[i]);
				check_value(name, body, 2, false);
			}
		}
	}
}

/*
 * Programs with two or more constant loads within 64 bytes are emitted twice:
 * packets with that much linear data skip those loads' checks.
 */
static void test_fast_window(void)
{
	static const uint32_t ends[] = { 15, 40, 59, 60, 61, 64 };
	char name[64];

	for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
		const struct sock_filter w[] = {
			LD(BPF_H, BPF_ABS, 12), BPF_STMT(BPF_MISC | BPF_TAX, 0),
			LD(BPF_W, BPF_ABS, ends[e] - 4), ALU(BPF_XOR, BPF_X, 0),
		};
		const struct sock_filter b[] = {
			LD(BPF_B, BPF_ABS, ends[e] - 1), BPF_STMT(BPF_ST, 3), LD(BPF_B, BPF_ABS, 14),
			BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0x80, 0, 1), LD(BPF_H, BPF_ABS, 70),
			BPF_STMT(BPF_LDX | BPF_MEM, 3), ALU(BPF_ADD, BPF_X, 0),
		};

		snprintf(name, sizeof(name), "window %u: ldh [12], ld [%u]", ends[e], ends[e] - 4);
		check_value(name, w, 4, false);
		snprintf(name, sizeof(name), "window %u: ldb [%u], ldb [14], ldh [70]", ends[e],
			 ends[e] - 1);
		check_value(name, b, 7, false);
	}
}

static void test_msh(void)
{
	static const uint32_t offs[] = { 14, 22, 40, 79, 80, 4000, 9000, 0x7fffffff };
	char name[64];

	for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
		const struct sock_filter body[] = { BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, offs[o]) };

		snprintf(name, sizeof(name), "ldxb 4*([%u]&0xf)", offs[o]);
		check_value(name, body, 1, true);
	}
	VALUE("msh then ldh [x + 14]", BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14), LD(BPF_H, BPF_IND, 14));
}

static void test_len_imm(void)
{
	VALUE("ld len", LD(BPF_W, BPF_LEN, 0));
	XVALUE("ldx len", BPF_STMT(BPF_LDX | BPF_W | BPF_LEN, 0));
	VALUE("ld #0x80000001", LDI(0x80000001));
	XVALUE("ldx #0xffffffff", LDXI(0xffffffff));
	VALUE("A and X start at 0", ALU(BPF_ADD, BPF_X, 0));
	XVALUE("X starts at 0", LDI(5));
	CHECK("ret a (0)", BPF_STMT(BPF_RET | BPF_A, 0));
	CHECK("ret a (len)", LD(BPF_W, BPF_LEN, 0), BPF_STMT(BPF_RET | BPF_A, 0));
	CHECK("ret #0", BPF_STMT(BPF_RET | BPF_K, 0));
	CHECK("ret #262144", BPF_STMT(BPF_RET | BPF_K, 262144));
	CHECK("ret #0x80000000", BPF_STMT(BPF_RET | BPF_K, 0x80000000));
	CHECK("len > 60", LD(BPF_W, BPF_LEN, 0), BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 60, 0, 1),
	      BPF_STMT(BPF_RET | BPF_K, 1), BPF_STMT(BPF_RET | BPF_K, 0));
}

static void test_scratch(void)
{
	char name[64];

	/*
	 * Uninitialised M[] reads 0 (libpcap >= 1.10.5 zeroes it too; 1.10.3's
	 * interpreter reads stack garbage, so compare with an explicit 0).
	 */
	for (uint32_t i = 0; i < 16; i++) {
		const struct sock_filter a[] = { LDI(7), BPF_STMT(BPF_LD | BPF_MEM, i) };
		const struct sock_filter a0[] = { LDI(7), LDI(0) };
		const struct sock_filter x[] = { LDXI(7), BPF_STMT(BPF_LDX | BPF_MEM, i) };
		const struct sock_filter x0[] = { LDXI(7), LDXI(0) };
		const struct sock_filter st[] = {
			LD(BPF_W, BPF_ABS, 14), BPF_STMT(BPF_ST, i), LDI(0),
			BPF_STMT(BPF_STX, (i + 1) % 16), BPF_STMT(BPF_LD | BPF_MEM, i),
		};
		const struct sock_filter stx[] = {
			LD(BPF_W, BPF_LEN, 0), BPF_STMT(BPF_MISC | BPF_TAX, 0),
			BPF_STMT(BPF_STX, i), LDXI(1), BPF_STMT(BPF_LDX | BPF_MEM, i),
		};

		snprintf(name, sizeof(name), "ld M[%u] uninitialised", i);
		check_value_ref(name, a, a0, 2, false);
		snprintf(name, sizeof(name), "ldx M[%u] uninitialised", i);
		check_value_ref(name, x, x0, 2, true);
		snprintf(name, sizeof(name), "st M[%u]; ld M[%u]", i, i);
		check_value(name, st, 5, false);
		snprintf(name, sizeof(name), "stx M[%u]; ldx M[%u]", i, i);
		check_value(name, stx, 5, true);
	}
}

static void test_alu(void)
{
	static const struct { uint8_t op; const char *name; } ops[] = {
		{ BPF_ADD, "add" }, { BPF_SUB, "sub" }, { BPF_MUL, "mul" }, { BPF_DIV, "div" },
		{ BPF_MOD, "mod" }, { BPF_AND, "and" }, { BPF_OR, "or" }, { BPF_XOR, "xor" },
		{ BPF_LSH, "lsh" }, { BPF_RSH, "rsh" },
	};
	static const uint32_t ks[] = { 1, 3, 31, 0x7fffffff, 0x80000000, 0xffffffff };
	char name[64];

	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (size_t k = 0; k < sizeof(ks) / sizeof(ks[0]); k++) {
			const struct sock_filter body[] = {
				LD(BPF_W, BPF_ABS, 20), ALU(ops[o].op, BPF_K, ks[k]),
			};

			if ((ops[o].op == BPF_LSH || ops[o].op == BPF_RSH) && ks[k] >= 32)
				continue;
			snprintf(name, sizeof(name), "%s #0x%x", ops[o].name, ks[k]);
			check_value(name, body, 2, false);
		}
		/* X from the packet: zero for some packets (div/mod by 0 return 0), >= 32 for shifts */
		const struct sock_filter xb[] = {
			LD(BPF_B, BPF_ABS, 22), BPF_STMT(BPF_MISC | BPF_TAX, 0),
			LD(BPF_W, BPF_ABS, 16), ALU(ops[o].op, BPF_X, 0),
		};
		const struct sock_filter xw[] = {
			LD(BPF_W, BPF_ABS, 24), BPF_STMT(BPF_MISC | BPF_TAX, 0),
			LD(BPF_W, BPF_ABS, 16), ALU(ops[o].op, BPF_X, 0),
		};
		const struct sock_filter x0[] = { LDI(1000), ALU(ops[o].op, BPF_X, 0) };

		snprintf(name, sizeof(name), "%s x (x = byte)", ops[o].name);
		check_value(name, xb, 4, false);
		snprintf(name, sizeof(name), "%s x (x = word)", ops[o].name);
		check_value(name, xw, 4, false);
		snprintf(name, sizeof(name), "%s x (x = 0)", ops[o].name);
		check_value(name, x0, 2, false);
	}
	for (uint32_t sh = 30; sh <= 33; sh++) {
		const struct sock_filter l[] = { LDXI(sh), LDI(0xffffffff), ALU(BPF_LSH, BPF_X, 0) };
		const struct sock_filter r[] = { LDXI(sh), LDI(0xffffffff), ALU(BPF_RSH, BPF_X, 0) };

		snprintf(name, sizeof(name), "lsh x = %u", sh);
		check_value(name, l, 3, false);
		snprintf(name, sizeof(name), "rsh x = %u", sh);
		check_value(name, r, 3, false);
	}
	VALUE("neg", LD(BPF_W, BPF_ABS, 14), BPF_STMT(BPF_ALU | BPF_NEG, 0));
	VALUE("neg 0x80000000", LDI(0x80000000), BPF_STMT(BPF_ALU | BPF_NEG, 0));
	VALUE("tax; txa", LD(BPF_H, BPF_ABS, 14), BPF_STMT(BPF_MISC | BPF_TAX, 0), LDI(0),
	      BPF_STMT(BPF_MISC | BPF_TXA, 0));
	VALUE("div x = 0 returns 0", LDI(5), LDXI(0), ALU(BPF_DIV, BPF_X, 0), LDI(9));
	VALUE("mod x = 0 returns 0", LDI(5), LDXI(0), ALU(BPF_MOD, BPF_X, 0), LDI(9));
}

static void test_jmp(void)
{
	static const struct { uint8_t op; const char *name; } ops[] = {
		{ BPF_JEQ, "jeq" }, { BPF_JGT, "jgt" }, { BPF_JGE, "jge" }, { BPF_JSET, "jset" },
	};
	static const uint32_t ks[] = { 0, 1, 0x5b, 0x7fffffff, 0x80000000, 0xffffffff };
	static const uint8_t tf[][2] = { { 0, 1 }, { 1, 0 }, { 1, 2 }, { 2, 1 }, { 0, 0 }, { 2, 2 } };
	char name[64];

	for (size_t o = 0; o < 4; o++) {
		for (size_t t = 0; t < sizeof(tf) / sizeof(tf[0]); t++) {
			for (size_t k = 0; k < sizeof(ks) / sizeof(ks[0]); k++) {
				const struct sock_filter pk[] = {
					LD(BPF_B, BPF_ABS, 15),
					BPF_JUMP(BPF_JMP | ops[o].op | BPF_K, ks[k], tf[t][0], tf[t][1]),
					BPF_STMT(BPF_RET | BPF_K, 0), BPF_STMT(BPF_RET | BPF_K, 1),
					BPF_STMT(BPF_RET | BPF_K, 0),
				};
				const struct sock_filter px[] = {
					LD(BPF_W, BPF_ABS, 20), BPF_STMT(BPF_MISC | BPF_TAX, 0),
					LDI(ks[k]),
					BPF_JUMP(BPF_JMP | ops[o].op | BPF_X, 0, tf[t][0], tf[t][1]),
					BPF_STMT(BPF_RET | BPF_K, 0), BPF_STMT(BPF_RET | BPF_K, 1),
					BPF_STMT(BPF_RET | BPF_K, 0),
				};

				snprintf(name, sizeof(name), "%s #0x%x jt %u jf %u", ops[o].name, ks[k],
					 tf[t][0], tf[t][1]);
				check(name, pk, 5);
				snprintf(name, sizeof(name), "%s x (A = 0x%x) jt %u jf %u", ops[o].name,
					 ks[k], tf[t][0], tf[t][1]);
				check(name, px, 7);
			}
		}
	}
	CHECK("ja 0", BPF_STMT(BPF_JMP | BPF_JA, 0), BPF_STMT(BPF_RET | BPF_K, 1));
	CHECK("ja 1", BPF_STMT(BPF_JMP | BPF_JA, 1), BPF_STMT(BPF_RET | BPF_K, 0),
	      BPF_STMT(BPF_RET | BPF_K, 1));
}

/* Jumps far beyond eBPF's 16-bit offsets, and the longest conditional jumps. */
static void test_long_jumps(void)
{
	static struct sock_filter p[MAX_PROG];
	size_t n = 0, loads = 4000;

	/* if (pkt[15] & 1) skip 4000 loads (ja k = 4000 * 2) */
	p[n++] = (struct sock_filter)LD(BPF_B, BPF_ABS, 15);
	p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 1, 0, 1);
	p[n++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(loads * 2));
	for (size_t i = 0; i < loads; i++) {
		p[n++] = (struct sock_filter)LD(BPF_H, BPF_ABS, (uint32_t)(14 + i % 60));
		p[n++] = (struct sock_filter)BPF_STMT(BPF_ST, (uint32_t)(i % 16));
	}
	p[n++] = (struct sock_filter)LD(BPF_B, BPF_ABS, 16);
	p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	check("ja over 4000 loads", p, n);

	/* jt 255 / jf 255 over 255 X-indexed loads each */
	n = 0;
	p[n++] = (struct sock_filter)LD(BPF_B, BPF_ABS, 15);
	p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0x80, 255, 0);
	for (size_t i = 0; i < 255; i++)
		p[n++] = (struct sock_filter)LD(BPF_W, BPF_IND, (uint32_t)(14 + i % 40));
	p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 255);
	for (size_t i = 0; i < 255; i++)
		p[n++] = (struct sock_filter)LD(BPF_W, BPF_IND, (uint32_t)(1 + i));
	p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	check("jt/jf 255 over X-indexed loads", p, n);

	/*
	 * ja over 3000 tests that return: past 32,767 eBPF instructions, yet no
	 * gotol (which kernels before 6.6 refuse): the jump hops through
	 * trampolines put after the returns, every offset within 16 bits
	 */
	n = 0;
	p[n++] = (struct sock_filter)LD(BPF_B, BPF_ABS, 15);
	p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 1, 0, 1);
	p[n++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 3 * 3000);
	for (uint32_t i = 0; i < 3000; i++) {
		p[n++] = (struct sock_filter)LD(BPF_H, BPF_ABS, 14 + i % 60);
		p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x10000 + i, 0, 1);
		p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, i + 2);
	}
	p[n++] = (struct sock_filter)LD(BPF_B, BPF_ABS, 16);
	p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	check("ja over 3000 returns", p, n);
	{
		const struct pl_filter_opts o[] = { { .ctx = PL_FILTER_XDP }, { .ctx = PL_FILTER_TC } };

		for (size_t k = 0; k < 2; k++) {
			struct bpf_insn *e;
			size_t elen, far = 0, gotol = 0;
			char err[256];

			if (pl_cbpf_translate(p, n, &o[k], &e, &elen, err, sizeof(err))) {
				fail("ja over 3000 returns: %s", err);
				failed++;
				continue;
			}
			for (size_t i = 0; i < elen; i++) {
				gotol += e[i].code == (BPF_JMP32 | BPF_JA);
				far += e[i].code == (BPF_JMP | BPF_JA) && e[i].off > 16000;
			}
			free(e);
			if (elen > 40000 && !gotol && far >= 2) {
				passed++;
			} else {
				fail("ja over 3000 returns (%s): %zu insns, %zu gotol, %zu far hops",
				     k ? "tc" : "xdp", elen, gotol, far);
				failed++;
			}
		}
	}
}

/* Backward jumps (libpcap's protochain): unrolled up to PL_CBPF_MAX_LOOPS times. */
static void test_loops(void)
{
	char name[64];

	for (uint32_t n = 0; n <= PL_CBPF_MAX_LOOPS - 2; n += 99) {
		const struct sock_filter p[] = {
			LDI(0), ALU(BPF_ADD, BPF_K, 1), BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, n, 1, 0),
			BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)-3), BPF_STMT(BPF_RET | BPF_A, 0),
		};

		snprintf(name, sizeof(name), "loop %u times", n);
		check(name, p, 5);
	}
	/* more than PL_CBPF_MAX_LOOPS: no match (libpcap 1.10 would loop on) */
	const struct sock_filter p[] = {
		LDI(0), ALU(BPF_ADD, BPF_K, 1), BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 1000, 1, 0),
		BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)-3), BPF_STMT(BPF_RET | BPF_K, 1),
	};
	const struct pl_filter_opts xdp = { .ctx = PL_FILTER_XDP };
	struct bpf_insn *e;
	char err[256];
	size_t elen;
	bool got = true;
	int fd;

	if (pl_cbpf_translate(p, 5, &xdp, &e, &elen, err, sizeof(err))) {
		fail("loop 1000 times: %s", err);
		failed++;
		return;
	}
	fd = pl_ebpf_load(e, elen, PL_FILTER_XDP, 0, err, sizeof(err));
	free(e);
	if (fd < 0 || pl_ebpf_run(fd, &xdp, pkts[0].data, pkts[0].caplen, pkts[0].wirelen,
				  &got) || got) {
		fail("loop 1000 times: fd %d match %d", fd, got);
		failed++;
	} else {
		passed++;
	}
	if (fd >= 0)
		close(fd);
}

/* Dead code after a return: the verifier refuses unreachable eBPF, so it is dropped. */
static void test_unreachable(void)
{
	CHECK("dead code", LD(BPF_B, BPF_ABS, 14), BPF_STMT(BPF_RET | BPF_A, 0),
	      LD(BPF_W, BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_K, 1));
	CHECK("dead branch target", LD(BPF_B, BPF_ABS, 14), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 0),
	      BPF_STMT(BPF_RET | BPF_A, 0), BPF_STMT(BPF_RET | BPF_K, 1));
}

static void expect_reject(const char *name, const struct sock_filter *p, size_t n, int want)
{
	const struct pl_filter_opts xdp = { .ctx = PL_FILTER_XDP };
	struct bpf_insn *e = NULL;
	char err[256] = "";
	size_t elen;
	int ret = pl_cbpf_translate(p, n, &xdp, &e, &elen, err, sizeof(err));

	if (ret != want || !err[0]) {
		fail("%s: translate returned %d (%s), want %d", name, ret, err, want);
		failed++;
		free(e);
		return;
	}
	passed++;
}

#define REJECT(name, want, ...) do {					\
	const struct sock_filter r_[] = { __VA_ARGS__ };		\
	expect_reject(name, r_, sizeof(r_) / sizeof(r_[0]), want);	\
} while (0)

static void test_validation(void)
{
	const struct sock_filter ret1 = BPF_STMT(BPF_RET | BPF_K, 1);

	REJECT("ancillary SKF_AD_PKTTYPE", -EOPNOTSUPP, LD(BPF_B, BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE), ret1);
	REJECT("SKF_LL_OFF", -EOPNOTSUPP, LD(BPF_H, BPF_ABS, (uint32_t)SKF_LL_OFF + 12), ret1);
	REJECT("msh negative", -EOPNOTSUPP, BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, (uint32_t)SKF_NET_OFF), ret1);
	REJECT("div #0", -EINVAL, ALU(BPF_DIV, BPF_K, 0), ret1);
	REJECT("mod #0", -EINVAL, ALU(BPF_MOD, BPF_K, 0), ret1);
	REJECT("lsh #32", -EINVAL, ALU(BPF_LSH, BPF_K, 32), ret1);
	REJECT("ld M[16]", -EINVAL, BPF_STMT(BPF_LD | BPF_MEM, 16), ret1);
	REJECT("st M[16]", -EINVAL, BPF_STMT(BPF_ST, 16), ret1);
	REJECT("ldh M[0] (bad opcode)", -EINVAL, BPF_STMT(BPF_LD | BPF_H | BPF_MEM, 0), ret1);
	REJECT("ldx [k] (bad opcode)", -EINVAL, BPF_STMT(BPF_LDX | BPF_W | BPF_ABS, 0), ret1);
	REJECT("jump past the end", -EINVAL, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), ret1);
	REJECT("ja past the end", -EINVAL, BPF_STMT(BPF_JMP | BPF_JA, 1), ret1);
	REJECT("ja to itself", -EINVAL, BPF_STMT(BPF_JMP | BPF_JA, 0xffffffff), ret1);
	REJECT("ja before the start", -EINVAL, BPF_STMT(BPF_JMP | BPF_JA, 0xfffffffe), ret1);
	REJECT("no return at the end", -EINVAL, LDI(1));
	expect_reject("empty program", &ret1, 0, -EINVAL);
}

int main(void)
{
	if (geteuid()) {
		printf("test_translate: needs root (bpf)\n0 passed, 1 failed\n");
		return 1;
	}
	make_packets();
	test_validation();
	test_ld_abs();
	test_ld_ind();
	test_msh();
	test_fast_window();
	test_len_imm();
	test_scratch();
	test_alu();
	test_jmp();
	test_long_jumps();
	test_loops();
	test_unreachable();
	for (size_t i = 0; i < npkts; i++)
		free(pkts[i].data);
	printf("test_translate: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
