// SPDX-License-Identifier: GPL-2.0
/*
 * Sample files: pcap by libpcap's pcap_dump(), pcapng by hand (pcapng spec,
 * draft-ietf-opsawg-pcapng): a Section Header Block, an Interface
 * Description Block the first time an (interface, hook) pair shows up, then
 * one Enhanced Packet Block per packet. Little-endian host byte order, as
 * the SHB's byte-order magic says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include <pcap/pcap.h>
#include <pktlens/why.h>

#include "dump.h"
#include "pktlens/pktlens.h"

#define MAX_IFS 32

struct pl_dump {
	enum pl_dump_fmt fmt;
	uint32_t snaplen;
	/* pcap */
	pcap_t *dead;
	pcap_dumper_t *dumper;
	/* pcapng */
	FILE *f;
	bool own_file;
	struct {
		uint32_t ifindex;
		int hook;
	} ifs[MAX_IFS];
	uint32_t nifs;
	bool failed;
};

/* ---- pcapng ---- */

#define BT_SHB 0x0A0D0D0AU
#define BT_IDB 0x00000001U
#define BT_EPB 0x00000006U
#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9
#define EPB_FLAGS 2
#define EPB_VERDICT 7
#define VERDICT_TC 1	/* epb_verdict type: Linux eBPF tc, 8 bytes */
#define VERDICT_XDP 2	/* Linux eBPF XDP, 8 bytes */

/* A block under construction, written whole. */
struct blk {
	uint8_t *b;
	size_t len, cap;
	bool oom;
};

static void put(struct blk *k, const void *p, size_t n)
{
	size_t pad = (4 - n % 4) % 4;

	if (k->oom)
		return;
	if (k->len + n + pad > k->cap) {
		size_t cap = (k->cap ? k->cap * 2 : 256) + n + pad;
		uint8_t *b = realloc(k->b, cap);

		if (!b) {
			k->oom = true;
			return;
		}
		k->b = b;
		k->cap = cap;
	}
	memcpy(k->b + k->len, p, n);
	memset(k->b + k->len + n, 0, pad);
	k->len += n + pad;
}

static void put32(struct blk *k, uint32_t v)
{
	put(k, &v, 4);
}

static void put_opt(struct blk *k, uint16_t code, const void *p, uint16_t n)
{
	uint16_t h[2] = { code, n };

	put(k, h, 4);
	if (n)
		put(k, p, n);
}

/* Write block @type with @body (options included). */
static int write_block(struct pl_dump *d, uint32_t type, struct blk *body)
{
	uint32_t total = (uint32_t)(body->len + 12);
	int err = 0;

	if (body->oom)
		err = -ENOMEM;
	else if (fwrite(&type, 4, 1, d->f) != 1 || fwrite(&total, 4, 1, d->f) != 1 ||
		 (body->len && fwrite(body->b, body->len, 1, d->f) != 1) ||
		 fwrite(&total, 4, 1, d->f) != 1)
		err = -EIO;
	free(body->b);
	memset(body, 0, sizeof(*body));
	return err;
}

static int write_shb(struct pl_dump *d)
{
	static const char appl[] = "pktlens";
	struct blk k = { 0 };
	uint16_t ver[2] = { 1, 0 };
	int64_t section_len = -1;

	put32(&k, 0x1A2B3C4DU);
	put(&k, ver, 4);
	put(&k, &section_len, 8);
	put_opt(&k, SHB_USERAPPL, appl, sizeof(appl) - 1);
	put_opt(&k, OPT_END, NULL, 0);
	return write_block(d, BT_SHB, &k);
}

/* The interface id of (@p->ifindex, @p->hook), writing its IDB the first time. */
static int iface_id(struct pl_dump *d, const struct pl_dump_pkt *p, uint32_t *id)
{
	struct blk k = { 0 };
	const char *hook = p->hook == PL_HOOK_XDP ? "xdp" : "tc";
	char name[64], desc[128];
	uint16_t lt[2] = { 1 /* LINKTYPE_ETHERNET */, 0 };
	uint8_t tsresol = 9;
	int err;

	for (uint32_t i = 0; i < d->nifs; i++)
		if (d->ifs[i].ifindex == p->ifindex && d->ifs[i].hook == p->hook) {
			*id = i;
			return 0;
		}
	if (d->nifs == MAX_IFS)
		return -E2BIG;
	snprintf(name, sizeof(name), "%s@%s", p->ifname, hook);
	snprintf(desc, sizeof(desc), "pktlens %s hook of %s (ifindex %u)", hook, p->ifname,
		 p->ifindex);
	put(&k, lt, 4);
	put32(&k, d->snaplen);
	put_opt(&k, IF_NAME, name, (uint16_t)strlen(name));
	put_opt(&k, IF_DESCRIPTION, desc, (uint16_t)strlen(desc));
	put_opt(&k, IF_TSRESOL, &tsresol, 1);
	put_opt(&k, OPT_END, NULL, 0);
	err = write_block(d, BT_IDB, &k);
	if (err)
		return err;
	d->ifs[d->nifs].ifindex = p->ifindex;
	d->ifs[d->nifs].hook = p->hook;
	*id = d->nifs++;
	return 0;
}

/* What the program returned, as the hook's own action code. */
static int64_t hook_action(const struct pl_dump_pkt *p)
{
	static const int64_t xdp[PL_VERDICT_MAX] = { 2 /* PASS */, 1 /* DROP */, 4 /* REDIRECT */,
						     3 /* TX */, 0 /* ABORTED */ };
	static const int64_t tc[PL_VERDICT_MAX] = { -1 /* UNSPEC */, 2 /* SHOT */, 7 /* REDIRECT */,
						    -1, -1 };
	int v = p->verdict >= 0 && p->verdict < PL_VERDICT_MAX ? p->verdict : 0;

	return p->hook == PL_HOOK_XDP ? xdp[v] : tc[v];
}

static int write_epb(struct pl_dump *d, const struct pl_dump_pkt *p)
{
	struct blk k = { 0 };
	uint8_t verdict[9];
	uint32_t id, flags = p->dir == PL_DIR_IN ? 1 : 2;	/* inbound / outbound */
	int64_t act = hook_action(p);
	char comment[32];
	int err = iface_id(d, p, &id);

	if (err)
		return err;
	put32(&k, id);
	put32(&k, (uint32_t)(p->ts_ns >> 32));
	put32(&k, (uint32_t)p->ts_ns);
	put32(&k, p->caplen);
	put32(&k, p->wire_len);
	put(&k, p->data, p->caplen);
	put_opt(&k, EPB_FLAGS, &flags, 4);
	verdict[0] = p->hook == PL_HOOK_XDP ? VERDICT_XDP : VERDICT_TC;
	memcpy(verdict + 1, &act, 8);
	put_opt(&k, EPB_VERDICT, verdict, 9);
	if (p->rule_id) {
		snprintf(comment, sizeof(comment), "pktlens rule %u", p->rule_id);
		put_opt(&k, OPT_COMMENT, comment, (uint16_t)strlen(comment));
	}
	put_opt(&k, OPT_END, NULL, 0);
	return write_block(d, BT_EPB, &k);
}

/* ---- both ---- */

int pl_dump_open(const char *path, enum pl_dump_fmt fmt, uint32_t snaplen, struct pl_dump **out,
		 char *why, size_t whylen)
{
	bool std = !strcmp(path, "-");
	struct pl_dump *d = calloc(1, sizeof(*d));
	int err = 0;

	if (!d)
		return -ENOMEM;
	d->fmt = fmt;
	d->snaplen = snaplen;
	d->f = std ? stdout : fopen(path, "wb");
	d->own_file = !std;
	if (!d->f) {
		err = pl_why(why, whylen, -errno, "%s", strerror(errno));
		free(d);
		return err;
	}
	/* few large writes (the caller flushes every 100 ms anyway), no stdio locks: one thread */
	setvbuf(d->f, NULL, _IOFBF, 1U << 20);
	__fsetlocking(d->f, FSETLOCKING_BYCALLER);
	if (fmt == PL_DUMP_PCAPNG) {
		err = write_shb(d);
	} else {
		d->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, (int)snaplen,
							       PCAP_TSTAMP_PRECISION_NANO);
		d->dumper = d->dead ? pcap_dump_fopen(d->dead, d->f) : NULL;
		if (!d->dumper) {
			err = pl_why(why, whylen, -EIO, "%s",
				     d->dead ? pcap_geterr(d->dead) : strerror(ENOMEM));
		} else {
			d->f = NULL;	/* the dumper has it now */
		}
	}
	if (!err && (err = pl_dump_flush(d)))
		pl_why(why, whylen, err, "%s", strerror(-err));
	if (err) {
		pl_dump_close(d);
		return err;
	}
	*out = d;
	return 0;
}

int pl_dump_write(struct pl_dump *d, const struct pl_dump_pkt *p)
{
	int err = 0;

	if (d->fmt == PL_DUMP_PCAPNG) {
		err = write_epb(d, p);
	} else {
		struct pcap_pkthdr h = {
			.ts = { .tv_sec = (time_t)(p->ts_ns / 1000000000ULL),
				.tv_usec = (suseconds_t)(p->ts_ns % 1000000000ULL) },
			.caplen = p->caplen,
			.len = p->wire_len,
		};

		pcap_dump((u_char *)d->dumper, &h, p->data);
	}
	if (err)
		d->failed = true;
	return err;
}

int pl_dump_flush(struct pl_dump *d)
{
	int r = d->dumper ? pcap_dump_flush(d->dumper) : fflush(d->f);

	if (r || d->failed || (d->dumper ? ferror(pcap_dump_file(d->dumper)) : ferror(d->f)))
		return -EIO;
	return 0;
}

int pl_dump_close(struct pl_dump *d)
{
	int err;

	if (!d)
		return 0;
	err = pl_dump_flush(d);
	if (d->dumper) {
		/* pcap_dump_close() fcloses: keep stdout open for the summary */
		if (!d->own_file)
			fflush(pcap_dump_file(d->dumper));
		else
			pcap_dump_close(d->dumper);
	} else if (d->f && d->own_file && fclose(d->f)) {
		err = -EIO;
	}
	if (d->dead)
		pcap_close(d->dead);
	free(d);
	return err;
}
