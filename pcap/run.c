// SPDX-License-Identifier: GPL-2.0
/*
 * Translated programs into the kernel: bpf_prog_load() with the verifier's
 * log on refusal, and BPF_PROG_TEST_RUN of captured packets (`filter run`,
 * the tests, the fuzzer), including the caller that hands a tc program a
 * frame's VLAN tag in skb metadata.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "xlate.h"

#define ETH_HDR_LEN	14
#define META_LEN	4

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
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .prog_flags = prog_flags & ~PL_EBPF_F_NO_ATTACH_TYPE);
	size_t vlen = 4U << 20;
	char *vlog = NULL;
	int fd, err;

	if (ctx == PL_FILTER_XDP && !(prog_flags & PL_EBPF_F_NO_ATTACH_TYPE))
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

/*
 * opts.test_vlan_meta: put a caller in front of the translated program
 * (x->out becomes its BPF-to-BPF subprogram):
 *   r6 = ctx; if cb[2] != 0: bpf_skb_vlan_push(ctx, cb[0], cb[1]) or return 2
 *   return filter(ctx)
 */
int xl_vlan_meta_caller(struct xlate *x)
{
	const struct bpf_insn head[] = {
		BPF_MOV64_REG(R6, R1),
		BPF_LDX_MEM(BPF_W, R2, R1, offsetof(struct __sk_buff, cb[2])),
		BPF_JMP_IMM(BPF_JEQ, R2, 0, 6),
		BPF_LDX_MEM(BPF_W, R2, R1, offsetof(struct __sk_buff, cb[0])),
		BPF_LDX_MEM(BPF_W, R3, R1, offsetof(struct __sk_buff, cb[1])),
		BPF_CALL_HELPER(BPF_FUNC_skb_vlan_push),
		BPF_JMP_IMM(BPF_JEQ, R0, 0, 2),
		BPF_MOV32_IMM(R0, 2),
		BPF_EXIT_INSN(),
		BPF_MOV64_REG(R1, R6),
		BPF_CALL_REL(1),	/* r0 = filter(ctx) */
		BPF_EXIT_INSN(),
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

/* @meta: the wire length goes in 4 bytes of metadata (opts.test_wirelen), else nothing */
static int run_xdp(int fd, const void *pkt, uint32_t caplen, uint32_t wirelen, bool meta,
		   uint32_t *ret)
{
	uint32_t m = meta ? META_LEN : 0;
	struct xdp_md md = { .data = m, .data_end = caplen + m };
	LIBBPF_OPTS(bpf_test_run_opts, t, .repeat = 1);
	uint8_t *buf;
	int err;

	buf = malloc((size_t)caplen + m);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &wirelen, m);
	memcpy(buf + m, pkt, caplen);
	if (meta) {
		t.ctx_in = &md;
		t.ctx_size_in = sizeof(md);
	}
	t.data_in = buf;
	t.data_size_in = caplen + m;
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
	 * the wire length goes to the program in cb[4] (opts.test_wirelen).
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
 * opts.test_vlan_meta: a frame with an outer 802.1Q or 802.1ad tag goes in
 * without it, the tag in cb[0] (TPID, network order) and cb[1] (TCI),
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

int pl_ebpf_run(int prog_fd, const struct pl_filter_opts *o, const void *pkt, uint32_t caplen,
		uint32_t wirelen, bool *match)
{
	const struct __sk_buff none = { 0 };
	uint32_t ret = 0;
	int err;

	if (caplen < ETH_HDR_LEN)
		return -EMSGSIZE;
	if (o->ctx == PL_FILTER_TC && o->test_vlan_meta)
		err = run_tc_vlan_meta(prog_fd, pkt, caplen, wirelen, &ret);
	else if (o->ctx == PL_FILTER_TC)
		err = run_tc(prog_fd, pkt, caplen, wirelen, &none, &ret);
	else
		err = run_xdp(prog_fd, pkt, caplen, wirelen, o->test_wirelen, &ret);
	/*
	 * The kernel refuses packets it cannot fit in a test buffer: EINVAL,
	 * or for XDP ENOMEM once the frame needs more than MAX_SKB_FRAGS pages
	 * (about 70 KiB).
	 */
	if (err == -EINVAL || (err == -ENOMEM && o->ctx == PL_FILTER_XDP && caplen > 4096))
		err = -EMSGSIZE;
	/* a load past 64 KiB no XDP program can make (opts.test_reach) */
	if (!err && o->ctx == PL_FILTER_XDP && o->test_reach && ret == PL_FILTER_UNREACHABLE)
		err = -EMSGSIZE;
	if (!err)
		*match = ret != 0;
	return err;
}
