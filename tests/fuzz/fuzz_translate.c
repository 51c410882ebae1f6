// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: random classic BPF programs through the translator and
 * the kernel verifier, run with BPF_PROG_TEST_RUN on a random packet; the
 * verdict must equal libpcap's bpf_filter(). Aborts (a finding) when the
 * translation of a valid program is refused by the verifier or disagrees.
 *
 * Input: byte 0 flags (bit 0: tc instead of XDP), byte 1 instruction count,
 * byte 2 extra wire length, then 8 bytes per instruction (mapped onto valid
 * opcodes and operands, jumps forward inside the program, last one a
 * return), then the packet. The program is prefixed with 16 `st M[i]` of A = 0:
 * libpcap 1.10's interpreter does not zero scratch memory, ours does.
 * Backward jumps are not generated: libpcap 1.10 follows loops without bound.
 *
 * Build and run (root):
 *   make .output/fuzz_translate   (links pcap/ without dump.c)
 *   mkdir -p .output/fuzz-corpus
 *   .output/fuzz_translate -max_len=2048 -max_total_time=300 .output/fuzz-corpus
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/filter.h>

#include "../../pcap/cbpf.h"

#define MAX_INSNS	96
#define SCRATCH		16

static const uint16_t opcodes[] = {
	BPF_RET | BPF_K, BPF_RET | BPF_A,
	BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_H | BPF_ABS, BPF_LD | BPF_B | BPF_ABS,
	BPF_LD | BPF_W | BPF_IND, BPF_LD | BPF_H | BPF_IND, BPF_LD | BPF_B | BPF_IND,
	BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN, BPF_LDX | BPF_B | BPF_MSH,
	BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM, BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM,
	BPF_ST, BPF_STX,
	BPF_JMP | BPF_JA, BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGT | BPF_K,
	BPF_JMP | BPF_JGE | BPF_K, BPF_JMP | BPF_JSET | BPF_K, BPF_JMP | BPF_JEQ | BPF_X,
	BPF_JMP | BPF_JGT | BPF_X, BPF_JMP | BPF_JGE | BPF_X, BPF_JMP | BPF_JSET | BPF_X,
	BPF_ALU | BPF_ADD | BPF_K, BPF_ALU | BPF_SUB | BPF_K, BPF_ALU | BPF_MUL | BPF_K,
	BPF_ALU | BPF_DIV | BPF_K, BPF_ALU | BPF_MOD | BPF_K, BPF_ALU | BPF_AND | BPF_K,
	BPF_ALU | BPF_OR | BPF_K, BPF_ALU | BPF_XOR | BPF_K, BPF_ALU | BPF_LSH | BPF_K,
	BPF_ALU | BPF_RSH | BPF_K, BPF_ALU | BPF_ADD | BPF_X, BPF_ALU | BPF_SUB | BPF_X,
	BPF_ALU | BPF_MUL | BPF_X, BPF_ALU | BPF_DIV | BPF_X, BPF_ALU | BPF_MOD | BPF_X,
	BPF_ALU | BPF_AND | BPF_X, BPF_ALU | BPF_OR | BPF_X, BPF_ALU | BPF_XOR | BPF_X,
	BPF_ALU | BPF_LSH | BPF_X, BPF_ALU | BPF_RSH | BPF_X, BPF_ALU | BPF_NEG,
	BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
};

#define NOPS (sizeof(opcodes) / sizeof(opcodes[0]))

/*
 * a load offset: mostly near the headers, sometimes anywhere (non-negative;
 * X-indexed loads: any k, as libpcap emits [x + -2])
 */
static uint32_t load_offset(uint8_t sel, uint32_t k, bool ind)
{
	switch (sel & 3) {
	case 0:
		return k % 80;
	case 1:
		return k % 1600;
	case 2:
		return k % 0x10010;
	}
	return ind ? k : k & 0x7fffffff;
}

/* instruction @i of @n from 8 input bytes */
static struct sock_filter make_insn(const uint8_t *b, size_t i, size_t n)
{
	struct sock_filter f = { .code = opcodes[b[0] % NOPS] };
	uint32_t k, room = (uint32_t)(n - i - 2);	/* insns between this one and the last */

	memcpy(&k, b + 4, 4);
	f.k = k;
	if (i == n - 1) {
		f.code = b[0] & 1 ? BPF_RET | BPF_A : BPF_RET | BPF_K;
		return f;
	}
	switch (BPF_CLASS(f.code)) {
	case BPF_LD:
	case BPF_LDX:
		if (BPF_MODE(f.code) == BPF_MEM)
			f.k = k % 16;
		else if (BPF_MODE(f.code) != BPF_IMM)
			f.k = load_offset(b[3], k, BPF_MODE(f.code) == BPF_IND);
		break;
	case BPF_ST:
	case BPF_STX:
		f.k = k % 16;
		break;
	case BPF_ALU:
		if (BPF_OP(f.code) == BPF_LSH || BPF_OP(f.code) == BPF_RSH)
			f.k = BPF_SRC(f.code) == BPF_K ? k % 32 : k;
		else if ((BPF_OP(f.code) == BPF_DIV || BPF_OP(f.code) == BPF_MOD) && !f.k)
			f.k = 1;
		break;
	case BPF_JMP:
		f.jt = (uint8_t)(b[1] % (room < 255 ? room + 1 : 256));
		f.jf = (uint8_t)(b[2] % (room < 255 ? room + 1 : 256));
		if (BPF_OP(f.code) == BPF_JA)
			f.k = room ? k % (room + 1) : 0;
		break;
	case BPF_RET:
		f.k = b[3] & 1 ? k : 0;
		break;
	}
	return f;
}

static void dump(const struct sock_filter *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "{ 0x%x, %u, %u, 0x%08x },\n", p[i].code, p[i].jt, p[i].jf, p[i].k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sock_filter prog[SCRATCH + MAX_INSNS];
	struct pl_filter_opts o = { .test_wirelen = true };
	struct bpf_insn *e = NULL;
	uint8_t *pkt;
	size_t n, len, elen;
	uint32_t caplen, wirelen;
	char err[4096];
	bool got;
	int fd, ret;

	if (size < 3)
		return 0;
	o.ctx = data[0] & 1 ? PL_FILTER_TC : PL_FILTER_XDP;
	/* tc: bit 1 hands the outer VLAN tag over in skb metadata, bit 2 makes one */
	o.test_vlan_meta = o.ctx == PL_FILTER_TC && (data[0] & 2);
	n = data[1] % MAX_INSNS + 1;
	if (size < 3 + 8 * n)
		return 0;
	for (size_t i = 0; i < SCRATCH; i++)
		prog[i] = (struct sock_filter)BPF_STMT(BPF_ST, (uint32_t)i);
	for (size_t i = 0; i < n; i++)
		prog[SCRATCH + i] = make_insn(data + 3 + 8 * i, i, n);
	len = SCRATCH + n;
	caplen = (uint32_t)(size - 3 - 8 * n);
	wirelen = caplen + (data[2] & 0x80 ? data[2] & 0x7f : 0);
	if (caplen < 14 || pl_cbpf_validate(prog, len, err, sizeof(err)))
		return 0;
	ret = pl_cbpf_translate(prog, len, &o, &e, &elen, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "translate refused a valid program: %s\n", err);
		dump(prog, len);
		abort();
	}
	fd = pl_ebpf_load(e, elen, o.ctx, 0, err, sizeof(err));
	free(e);
	if (fd < 0) {
		fprintf(stderr, "verifier refused the %s translation: %s\n", pl_filter_ctx_name(o.ctx),
			err);
		dump(prog, len);
		abort();
	}
	pkt = malloc(caplen);
	if (!pkt)
		abort();
	memcpy(pkt, data + 3 + 8 * n, caplen);
	if ((data[0] & 6) == 6) {
		pkt[12] = 0x81;
		pkt[13] = 0x00;
	}
	ret = pl_ebpf_run(fd, &o, pkt, caplen, wirelen, &got);
	if (!ret) {
		bool want = pl_cbpf_filter(prog, len, pkt, wirelen, caplen) != 0;

		if (got != want) {
			fprintf(stderr, "%s: kernel %d, libpcap %d on %u/%u bytes\n",
				pl_filter_ctx_name(o.ctx), got, want, caplen, wirelen);
			dump(prog, len);
			abort();
		}
	} else if (ret != -EMSGSIZE) {
		fprintf(stderr, "test run: %s\n", strerror(-ret));
		abort();
	}
	free(pkt);
	close(fd);
	return 0;
}
