// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pktlens/clock.h>

#include "format.h"

const char *const pl_verdict_names[PL_VERDICT_MAX] = { "pass", "drop", "redirect", "tx", "aborted" };
const char *const pl_rmon_names[PL_RMON_MAX] = {
	"64", "65-127", "128-255", "256-511", "512-1023", "1024-1518", "1519-9216", ">9216",
};
const char *const pl_l3_names[PL_L3_MAX] = { "ipv4", "ipv6", "arp", "other" };
const char *const pl_l4_names[PL_L4_MAX] = { "tcp", "udp", "icmp", "icmpv6", "sctp", "other", "none" };
const char *const pl_slot_hook[PL_SLOT_MAX] = { "xdp", "tc", "tc" };
const char *const pl_slot_dir[PL_SLOT_MAX] = { "in", "in", "out" };

static const __u8 v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

const char *pl_fmt_addr(const __u8 addr[16], char *buf, size_t len)
{
	if (!memcmp(addr, v4mapped, sizeof(v4mapped)))
		return inet_ntop(AF_INET, addr + 12, buf, len) ? buf : "?";
	return inet_ntop(AF_INET6, addr, buf, len) ? buf : "?";
}

const char *pl_fmt_key_addr(const struct pl_flow_key *k, const __u8 addr[16], char *buf,
			    size_t len)
{
	if (k->l3proto == 0x86dd)	/* ::ffff:198.18.0.1 in an IPv6 header stays IPv6 */
		return inet_ntop(AF_INET6, addr, buf, len) ? buf : "?";
	if (k->l3proto == 0x0800)	/* a header too short for addresses: 0.0.0.0, not :: */
		return inet_ntop(AF_INET, addr + 12, buf, len) ? buf : "?";
	return pl_fmt_addr(addr, buf, len);
}

const char *pl_fmt_l3(__u16 ethertype, char *buf, size_t len)
{
	switch (ethertype) {
	case 0x0800:
		return "ipv4";
	case 0x86dd:
		return "ipv6";
	case 0x0806:
		return "arp";
	}
	snprintf(buf, len, "0x%04x", ethertype);
	return buf;
}

const char *pl_fmt_l4(const struct pl_flow_key *k, char *buf, size_t len)
{
	if (k->l3proto != 0x0800 && k->l3proto != 0x86dd)
		return "";
	switch (k->l4proto) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "icmpv6";
	case 132:
		return "sctp";
	}
	snprintf(buf, len, "%u", k->l4proto);
	return buf;
}

const char *pl_fmt_tcp_flags(__u8 f, char *buf, size_t len)
{
	/* tcpdump's letters: FIN SYN RST PSH ACK URG ECE CWR */
	static const char letters[8] = { 'F', 'S', 'R', 'P', '.', 'U', 'E', 'W' };
	size_t n = 0;

	for (int i = 0; i < 8 && n + 1 < len; i++)
		if (f & (1u << i))
			buf[n++] = letters[i];
	buf[n] = '\0';
	return buf;
}

__s64 pl_epoch_offset_ns(void)
{
	struct timespec mono, real;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	/* from the kernel's monotonic clock, which BPF reads, not a time namespace's */
	return ((__s64)real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec) +
	       pl_timens_mono_offset_ns();
}

double pl_mono_to_epoch(__u64 ns, __s64 offset_ns)
{
	return (double)((__s64)ns + offset_ns) / 1e9;
}

const char *pl_fmt_endpoint(const struct pl_flow_key *k, const __u8 *addr, __u16 port, char *buf,
			    size_t len)
{
	bool ip = k->l3proto == 0x0800 || k->l3proto == 0x86dd;
	bool ports = ip && (k->l4proto == 6 || k->l4proto == 17 || k->l4proto == 132);
	char a[PL_ADDR_STRLEN];

	if (!ip) {
		snprintf(buf, len, "-");
		return buf;
	}
	pl_fmt_key_addr(k, addr, a, sizeof(a));
	if (!ports)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, k->l3proto == 0x86dd ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

size_t pl_utf8_seq(const char *s, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c, min;
	size_t n;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, c = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, c = p[0] & 0x0f, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, c = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* the NUL ends it too */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static const char *fmt_text(const char *s, char *buf, size_t len, bool name)
{
	size_t o = 0;

	if (!len)
		return "";
	while (*s && o + 5 <= len) {
		uint32_t cp = 0;
		size_t n = pl_utf8_seq(s, &cp);

		if (n && !PL_IS_CONTROL(cp) && !(name && cp == '\\')) {
			memcpy(buf + o, s, n);
			o += n;
			s += n;
		} else if (n && cp == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
			s++;
		} else {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", (unsigned char)*s++);
		}
	}
	buf[o] = 0;
	return buf;
}

const char *pl_fmt_name(const char *name, char *buf, size_t len)
{
	return fmt_text(name, buf, len, true);
}

const char *pl_fmt_safe(const char *s, char *buf, size_t len)
{
	return fmt_text(s, buf, len, false);
}

int pl_parse_name(const char *text, char *name, size_t len)
{
	size_t o = 0;

	for (; *text; o++) {
		unsigned int hex;

		if (o + 1 >= len)
			return -EINVAL;
		if (text[0] != '\\') {
			name[o] = *text++;
		} else if (text[1] == '\\') {
			name[o] = '\\';
			text += 2;
		} else if (text[1] == 'x' && sscanf(text + 2, "%2x", &hex) == 1 && hex &&
			   isxdigit((unsigned char)text[2]) && isxdigit((unsigned char)text[3])) {
			name[o] = (char)hex;
			text += 4;
		} else {
			return -EINVAL;
		}
	}
	name[o] = 0;
	return 0;
}
