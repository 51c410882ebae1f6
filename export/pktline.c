// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "pktline.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void l4(const uint8_t *b, const uint8_t *end, struct pl_frame_desc *o)
{
	switch (o->key.l4proto) {
	case 6:		/* TCP */
		if (end - b >= 14)
			o->tcp_flags = b[13];
		/* fall through */
	case 17:	/* UDP */
	case 132:	/* SCTP */
		if (end - b < 4)
			return;
		o->key.sport = be16(b);
		o->key.dport = be16(b + 2);
		o->ports = 1;
		break;
	case 1:		/* ICMP */
	case 58:	/* ICMPv6 */
		if (end - b < 2)
			return;
		o->key.sport = b[0];
		o->key.dport = b[1];
		o->ports = 1;
		break;
	}
}

void pl_frame_dissect(const uint8_t *d, uint32_t caplen, struct pl_frame_desc *o)
{
	const uint8_t *b = d + 14, *end = d + caplen;
	uint16_t proto;

	memset(o, 0, sizeof(*o));
	o->key.vlan = PL_VLAN_NONE;
	if (caplen < 14) {
		o->cut = 1;
		return;
	}
	proto = be16(d + 12);
	for (int i = 0; i < 2 && (proto == 0x8100 || proto == 0x88a8); i++) {
		if (end - b < 4) {
			o->cut = 2;
			return;
		}
		if (i == 0)
			o->key.vlan = be16(b) & 0x0fff;
		proto = be16(b + 2);
		b += 4;
	}
	o->key.l3proto = proto;
	if (proto == 0x0800 && end - b >= 20 && (b[0] >> 4) == 4 && (b[0] & 15) >= 5) {
		o->ip = 4;
		o->key.l4proto = b[9];
		o->key.saddr[10] = o->key.saddr[11] = 0xff;
		o->key.daddr[10] = o->key.daddr[11] = 0xff;
		memcpy(o->key.saddr + 12, b + 12, 4);
		memcpy(o->key.daddr + 12, b + 16, 4);
		o->frag = (be16(b + 6) & 0x1fff) != 0;
		if (!o->frag)
			l4(b + (b[0] & 15) * 4, end, o);
	} else if (proto == 0x86dd && end - b >= 40 && (b[0] >> 4) == 6) {
		uint8_t nh = b[6];

		o->ip = 6;
		memcpy(o->key.saddr, b + 8, 16);
		memcpy(o->key.daddr, b + 24, 16);
		b += 40;
		for (int i = 0; i < 6; i++) {
			if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {
				if (end - b < 2)
					break;
				nh = b[0];
				b += nh == 51 ? (b[1] + 2) * 4 : (b[1] + 1) * 8;
			} else if (nh == 44) {
				if (end - b < 8)
					break;
				o->frag = (be16(b + 2) & 0xfff8) != 0;
				nh = b[0];
				b += 8;
			} else {
				break;
			}
		}
		o->key.l4proto = nh;
		if (!o->frag && b <= end)
			l4(b, end, o);
	}
}

const char *pl_frame_fmt(const struct pl_frame_desc *f, char *buf, size_t len)
{
	char s[PL_ADDR_STRLEN], dst[PL_ADDR_STRLEN], nbuf[16], fl[16], vl[16] = "";
	const char *ip = f->ip == 4 ? "IP" : "IP6", *p4;

	if (f->key.vlan != PL_VLAN_NONE)
		snprintf(vl, sizeof(vl), "vlan %u, ", f->key.vlan);
	if (!f->ip) {
		if (f->cut)	/* as tcpdump marks a header the snap length cut */
			snprintf(buf, len, "%s[|%s]", vl, f->cut == 1 ? "ether" : "vlan");
		else if (f->key.l3proto == 0x0806)
			snprintf(buf, len, "%sARP", vl);
		else if (f->key.l3proto == 0x0800 || f->key.l3proto == 0x86dd)
			snprintf(buf, len, "%s%s, truncated or malformed",
				 vl, f->key.l3proto == 0x0800 ? "IP" : "IP6");
		else
			snprintf(buf, len, "%sethertype 0x%04x", vl, f->key.l3proto);
		return buf;
	}
	pl_fmt_key_addr(&f->key, f->key.saddr, s, sizeof(s));
	pl_fmt_key_addr(&f->key, f->key.daddr, dst, sizeof(dst));
	p4 = pl_fmt_l4(&f->key, nbuf, sizeof(nbuf));
	if (f->ports && (f->key.l4proto == 1 || f->key.l4proto == 58))
		snprintf(buf, len, "%s%s %s > %s: %s type %u code %u", vl, ip, s, dst, p4,
			 f->key.sport, f->key.dport);
	else if (f->ports)
		snprintf(buf, len, "%s%s %s.%u > %s.%u: %s%s%s%s", vl, ip, s, f->key.sport, dst,
			 f->key.dport, p4, f->key.l4proto == 6 ? " [" : "",
			 f->key.l4proto == 6 ? pl_fmt_tcp_flags(f->tcp_flags, fl, sizeof(fl)) : "",
			 f->key.l4proto == 6 ? "]" : "");
	else
		snprintf(buf, len, "%s%s %s > %s: %s%s", vl, ip, s, dst, p4, f->frag ? " (frag)" : "");
	return buf;
}
