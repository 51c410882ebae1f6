// SPDX-License-Identifier: GPL-2.0
/*
 * The libpcap side of tcpdump expressions: compile to classic BPF, print it
 * like `tcpdump -d`, interpret it (the reference verdict), read captures.
 * The only file that includes <pcap/pcap.h> (its struct bpf_insn is cBPF).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <pktlens/why.h>

#include "cbpf.h"
#include "pktlens/pktlens.h"

_Static_assert(sizeof(struct sock_filter) == sizeof(struct bpf_insn), "cBPF layouts");
_Static_assert(offsetof(struct sock_filter, k) == offsetof(struct bpf_insn, k), "cBPF layouts");

struct pl_pcap {
	pcap_t *p;
};

static struct bpf_insn to_pcap(const struct sock_filter *f)
{
	return (struct bpf_insn){ .code = f->code, .jt = f->jt, .jf = f->jf, .k = f->k };
}

/*
 * The same program as libpcap's type. The layouts are identical (asserted
 * above) and libpcap only reads it from its own shared object, so a cast
 * saves a copy per packet in tests, the fuzzer and the benchmark.
 */
static const struct bpf_insn *as_pcap(const struct sock_filter *prog)
{
	return (const struct bpf_insn *)(const void *)prog;
}

int pl_cbpf_compile(const char *expr, struct sock_filter **out, size_t *out_len,
		    char *err, size_t errlen)
{
	struct bpf_program fp = { 0 };
	struct sock_filter *f;
	pcap_t *p;
	int ret = 0;

	/* one limit for every command: what an attachment keeps (pl_meta.filter_expr) */
	if (strlen(expr) >= PL_FILTER_EXPR_MAX)
		return pl_why(err, errlen, -E2BIG, "expression is %zu bytes long, at most %d are kept",
			      strlen(expr), PL_FILTER_EXPR_MAX - 1);
	p = pcap_open_dead(DLT_EN10MB, PL_CBPF_SNAPLEN);
	if (!p)
		return pl_why(err, errlen, -ENOMEM, "pcap_open_dead: %s", strerror(ENOMEM));
	/*
	 * Netmask 0, as tcpdump -r (and tcpdump -i on an interface without an
	 * IPv4 address) compiles: `ip broadcast` then means a destination of
	 * 0.0.0.0 or 255.255.255.255, the same on every interface and whatever
	 * addresses it has later. PCAP_NETMASK_UNKNOWN would refuse it.
	 */
	if (pcap_compile(p, &fp, expr, 1, 0)) {
		ret = pl_why(err, errlen, -EINVAL, "%s", pcap_geterr(p));
		goto out_close;
	}
	f = calloc(fp.bf_len ? fp.bf_len : 1, sizeof(*f));
	if (!f) {
		ret = pl_why(err, errlen, -ENOMEM, "%s", strerror(ENOMEM));
		goto out_free;
	}
	for (u_int i = 0; i < fp.bf_len; i++)
		f[i] = (struct sock_filter){ .code = fp.bf_insns[i].code, .jt = fp.bf_insns[i].jt,
					     .jf = fp.bf_insns[i].jf, .k = fp.bf_insns[i].k };
	*out = f;
	*out_len = fp.bf_len;
out_free:
	pcap_freecode(&fp);
out_close:
	pcap_close(p);
	return ret;
}

void pl_cbpf_image(const struct sock_filter *insn, int n, char *buf, size_t len)
{
	struct bpf_insn i = to_pcap(insn);

	snprintf(buf, len, "%s", bpf_image(&i, n));
}

unsigned int pl_cbpf_filter(const struct sock_filter *prog, size_t len, const void *pkt,
			    uint32_t wirelen, uint32_t caplen)
{
	(void)len;	/* bpf_filter() runs until a return */
	return bpf_filter(as_pcap(prog), pkt, wirelen, caplen);
}

/* @path, or standard input for "-" as in tcpdump -r - (a copy of it: closing it leaves fd 0) */
static FILE *open_input(const char *path)
{
	FILE *f;
	int fd;

	if (strcmp(path, "-"))
		return fopen(path, "rb");
	fd = dup(STDIN_FILENO);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "rb");
	if (!f) {
		int err = errno;

		close(fd);
		errno = err;
	}
	return f;
}

int pl_pcap_open(const char *path, struct pl_pcap **out, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct pl_pcap *r;
	FILE *f;
	int dlt, ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return pl_why(err, errlen, -ENOMEM, "%s", strerror(ENOMEM));
	f = open_input(path);
	if (!f) {
		ret = pl_why(err, errlen, -errno, "%s", strerror(errno));
		goto err_free;
	}
	r->p = pcap_fopen_offline(f, ebuf);	/* owns f from here on */
	if (!r->p) {
		fclose(f);
		ret = pl_why(err, errlen, -EINVAL, "%s", ebuf[0] ? ebuf : "not a capture file");
		goto err_free;
	}
	dlt = pcap_datalink(r->p);
	if (dlt != DLT_EN10MB) {
		const char *name = pcap_datalink_val_to_name(dlt);

		ret = pl_why(err, errlen, -EPROTONOSUPPORT, "link type %s (%d) is not Ethernet (EN10MB)",
			     name ? name : "unknown", dlt);
		goto err_close;
	}
	*out = r;
	return 0;
err_close:
	pcap_close(r->p);
err_free:
	free(r);
	return ret;
}

int pl_pcap_next(struct pl_pcap *r, const uint8_t **data, uint32_t *caplen, uint32_t *wirelen,
		 char *err, size_t errlen)
{
	struct pcap_pkthdr *h;
	const u_char *d;
	int ret;

	ret = pcap_next_ex(r->p, &h, &d);
	if (ret == PCAP_ERROR_BREAK)
		return 0;
	if (ret != 1)
		return pl_why(err, errlen, -EIO, "%s", pcap_geterr(r->p));
	*data = d;
	*caplen = h->caplen;
	*wirelen = h->len;
	return 1;
}

void pl_pcap_close(struct pl_pcap *r)
{
	if (!r)
		return;
	pcap_close(r->p);
	free(r);
}
