// SPDX-License-Identifier: GPL-2.0
/*
 * Sample files: pcap (nanosecond timestamps, the format libpcap writes with
 * PCAP_TSTAMP_PRECISION_NANO) and pcapng (pcapng spec,
 * draft-ietf-opsawg-pcapng): a Section Header Block, an Interface
 * Description Block the first time an (interface, hook) pair shows up, then
 * one Enhanced Packet Block per packet. Little-endian host byte order, as
 * the magic numbers say. Each packet goes to the output as one record (with
 * its IDB, if it brings one), so a file cut short by a write error still
 * ends with a whole packet (pcap/out.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <linux/types.h>

#include "dump.h"
#include "../export/format.h"
#include "out.h"
#include "pktlens/pktlens.h"

#define MAX_IFS 32
#define PCAP_MAGIC_NS 0xA1B23C4DU
#define LINKTYPE_ETHERNET 1

struct pl_dump {
	enum pl_dump_fmt fmt;
	uint32_t snaplen;
	struct pl_out *out;
	struct {
		uint32_t ifindex;
		int hook;
	} ifs[MAX_IFS];
	uint32_t nifs;
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

/* Append block @type with @body (options included) to @rec, then free @body. */
static int add_block(struct blk *rec, uint32_t type, struct blk *body)
{
	uint32_t total = (uint32_t)(body->len + 12);
	int err = body->oom ? -ENOMEM : 0;

	if (!err) {
		put32(rec, type);
		put32(rec, total);
		put(rec, body->b, body->len);
		put32(rec, total);
		err = rec->oom ? -ENOMEM : 0;
	}
	free(body->b);
	memset(body, 0, sizeof(*body));
	return err;
}

/* @rec as one record of the output; frees it. */
static int emit(struct pl_dump *d, struct blk *rec, bool packet)
{
	struct iovec iov = { .iov_base = rec->b, .iov_len = rec->len };
	int err = rec->oom ? -ENOMEM : pl_out_rec(d->out, &iov, 1, packet);

	free(rec->b);
	memset(rec, 0, sizeof(*rec));
	return err;
}

/* The interface id of (@ifindex, @hook), or -1: it has no IDB in this file yet. */
static int64_t iface_find(const struct pl_dump *d, uint32_t ifindex, int hook)
{
	for (uint32_t i = 0; i < d->nifs; i++)
		if (d->ifs[i].ifindex == ifindex && d->ifs[i].hook == hook)
			return i;
	return -1;
}

/*
 * The IDB's if_name and if_description of @f: the name as pktlens shows it
 * everywhere (pl_fmt_name()), UTF-8 as pcapng's options must be.
 */
static void iface_names(const struct pl_dump_if *f, char *name, size_t nlen, char *desc,
			size_t dlen)
{
	const char *hook = f->hook == PL_HOOK_XDP ? "xdp" : "tc";
	const char *shown = PL_NAME(f->ifname);

	snprintf(name, nlen, "%s@%s", shown, hook);
	snprintf(desc, dlen, "pktlens %s hook of %s (ifindex %u)", hook, shown, f->ifindex);
}

/* The interface id of @f, adding its IDB to @rec the first time. */
static int iface_id(struct pl_dump *d, const struct pl_dump_if *f, struct blk *rec, uint32_t *id)
{
	struct blk k = { 0 };
	char name[PL_NAME_TEXT + 8], desc[PL_NAME_TEXT + 64];
	uint16_t lt[2] = { 1 /* LINKTYPE_ETHERNET */, 0 };
	uint8_t tsresol = 9;
	int64_t at = iface_find(d, f->ifindex, f->hook);
	int err;

	if (at >= 0) {
		*id = (uint32_t)at;
		return 0;
	}
	if (d->nifs == MAX_IFS)
		return -E2BIG;
	iface_names(f, name, sizeof(name), desc, sizeof(desc));
	put(&k, lt, 4);
	put32(&k, d->snaplen);
	put_opt(&k, IF_NAME, name, (uint16_t)strlen(name));
	put_opt(&k, IF_DESCRIPTION, desc, (uint16_t)strlen(desc));
	put_opt(&k, IF_TSRESOL, &tsresol, 1);
	put_opt(&k, OPT_END, NULL, 0);
	err = add_block(rec, BT_IDB, &k);
	if (err)
		return err;
	d->ifs[d->nifs].ifindex = f->ifindex;
	d->ifs[d->nifs].hook = f->hook;
	*id = d->nifs++;
	return 0;
}

/* The interface and hook @p came through. */
static struct pl_dump_if pkt_if(const struct pl_dump_pkt *p)
{
	return (struct pl_dump_if){ .ifname = p->ifname, .ifindex = p->ifindex, .hook = p->hook };
}

/* The section header and the IDBs of @ifs, as one record: a reader never sees one without the other. */
static int write_shb(struct pl_dump *d, const struct pl_dump_if *ifs, size_t nifs)
{
	static const char appl[] = "pktlens";
	struct blk k = { 0 }, rec = { 0 };
	uint16_t ver[2] = { 1, 0 };
	int64_t section_len = -1;
	uint32_t id;
	int err;

	put32(&k, 0x1A2B3C4DU);
	put(&k, ver, 4);
	put(&k, &section_len, 8);
	put_opt(&k, SHB_USERAPPL, appl, sizeof(appl) - 1);
	put_opt(&k, OPT_END, NULL, 0);
	err = add_block(&rec, BT_SHB, &k);
	for (size_t i = 0; !err && i < nifs; i++)
		err = iface_id(d, &ifs[i], &rec, &id);
	if (err) {
		free(rec.b);
		return err;
	}
	return emit(d, &rec, false);
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
	struct blk k = { 0 }, rec = { 0 };
	uint8_t verdict[9];
	uint32_t id, flags = p->dir == PL_DIR_IN ? 1 : 2;	/* inbound / outbound */
	int64_t act = hook_action(p);
	char comment[32];
	uint32_t nifs = d->nifs;
	struct pl_dump_if f = pkt_if(p);
	int err = iface_id(d, &f, &rec, &id);

	if (err) {
		free(rec.b);
		return err;
	}
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
	err = add_block(&rec, BT_EPB, &k);
	if (err)
		free(rec.b);
	else
		err = emit(d, &rec, true);
	if (err)
		d->nifs = nifs;	/* an IDB that went nowhere is written again with the next packet */
	return err;
}

/* ---- pcap ---- */

static int write_pcap_header(struct pl_dump *d)
{
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t thiszone;
		uint32_t sigfigs, snaplen, linktype;
	} h = { PCAP_MAGIC_NS, 2, 4, 0, 0, d->snaplen, LINKTYPE_ETHERNET };
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };

	return pl_out_rec(d->out, &iov, 1, false);
}

static int write_pcap_rec(struct pl_dump *d, const struct pl_dump_pkt *p)
{
	uint32_t h[4] = {
		(uint32_t)(p->ts_ns / 1000000000ULL), (uint32_t)(p->ts_ns % 1000000000ULL),
		p->caplen, p->wire_len,
	};
	struct iovec iov[2] = {
		{ .iov_base = h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)p->data, .iov_len = p->caplen },
	};

	return pl_out_rec(d->out, iov, 2, true);
}

/* ---- both ---- */

int pl_dump_open(struct pl_out *out, enum pl_dump_fmt fmt, uint32_t snaplen,
		 const struct pl_dump_if *ifs, size_t nifs, struct pl_dump **dp)
{
	struct pl_dump *d = calloc(1, sizeof(*d));
	int err;

	*dp = NULL;
	if (!d)
		return -ENOMEM;
	d->fmt = fmt;
	d->snaplen = snaplen;
	d->out = out;
	err = fmt == PL_DUMP_PCAPNG ? write_shb(d, ifs, nifs) : write_pcap_header(d);
	if (err) {
		free(d);
		return err;
	}
	*dp = d;
	return 0;
}

int pl_dump_write(struct pl_dump *d, const struct pl_dump_pkt *p)
{
	return d->fmt == PL_DUMP_PCAPNG ? write_epb(d, p) : write_pcap_rec(d, p);
}

void pl_dump_free(struct pl_dump *d)
{
	free(d);
}
