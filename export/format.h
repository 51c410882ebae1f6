/* SPDX-License-Identifier: GPL-2.0 */
/* Turning ABI values into text: addresses, protocols, flags, times, names. */
#ifndef __PKTLENS_EXPORT_FORMAT_H
#define __PKTLENS_EXPORT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

#define PL_ADDR_STRLEN 46

/* IPv4-mapped addresses print as dotted quads, IPv6 compressed (RFC 5952). */
const char *pl_fmt_addr(const __u8 addr[16], char *buf, size_t len);
/* An address of flow @k: as pl_fmt_addr(), but always IPv6 for an IPv6 packet (mapped ones too) */
const char *pl_fmt_key_addr(const struct pl_flow_key *k, const __u8 addr[16], char *buf,
			    size_t len);
/* One end of a flow: "198.18.0.1:80", "[2001:db8::1]:80", the address alone without ports, "-" for non-IP. */
const char *pl_fmt_endpoint(const struct pl_flow_key *k, const __u8 *addr, __u16 port, char *buf,
			    size_t len);
/* "ipv4", "ipv6", "arp" or "0x88cc" */
const char *pl_fmt_l3(__u16 ethertype, char *buf, size_t len);
/* "tcp", "udp", "icmp", ... or the number; "" for non-IP */
const char *pl_fmt_l4(const struct pl_flow_key *k, char *buf, size_t len);
/* tcpdump-style flags: "S", "S.", "FP.", ... ("" when none) */
const char *pl_fmt_tcp_flags(__u8 flags, char *buf, size_t len);
/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns. Take it once for times shown
 * together (a flow's first and last seen): each reading of the two clocks
 * differs by their jitter, enough to put a one-packet flow's last_seen a
 * microsecond before its first_seen.
 */
__s64 pl_epoch_offset_ns(void);
/* CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns) to seconds since the epoch, by @offset_ns */
double pl_mono_to_epoch(__u64 ns, __s64 offset_ns);

/*
 * The length of the valid UTF-8 sequence at @s (1-4) with its code point in
 * *@cp, or 0 when @s does not start one (stray, overlong or truncated
 * bytes, surrogates, above U+10FFFF). @s is NUL-terminated.
 */
size_t pl_utf8_seq(const char *s, uint32_t *cp);
/* Characters that must not reach a terminal raw: C0 and C1 controls and DEL. */
#define PL_IS_CONTROL(cp) ((cp) < 0x20 || ((cp) >= 0x7f && (cp) < 0xa0))

/*
 * An interface name as text, the same on the terminal, in JSON and in
 * Prometheus labels: printable UTF-8 as it is, a backslash as \\, every
 * other byte (controls, bytes that are not UTF-8) as \xHH. One name, one
 * text: two interfaces never show the same. Room for any name: PL_NAME_TEXT.
 */
#define PL_NAME_TEXT 64
const char *pl_fmt_name(const char *name, char *buf, size_t len);
/* pl_fmt_name() into a buffer that lives until the end of the enclosing block */
#define PL_NAME(name) pl_fmt_name((name), (char[PL_NAME_TEXT]){ 0 }, PL_NAME_TEXT)
/* The name pl_fmt_name() showed as @text, into @name (IFNAMSIZ); 0 or -EINVAL. */
int pl_parse_name(const char *text, char *name, size_t len);
/* Any text for a terminal: as pl_fmt_name(), but a backslash stays one. */
const char *pl_fmt_safe(const char *s, char *buf, size_t len);
/* pl_fmt_safe() of a path or word (up to 4095 bytes shown) for the enclosing block */
#define PL_SAFE(s) pl_fmt_safe((s), (char[4 * 4096]){ 0 }, 4 * 4096)

extern const char *const pl_verdict_names[PL_VERDICT_MAX];
extern const char *const pl_rmon_names[PL_RMON_MAX];
extern const char *const pl_l3_names[PL_L3_MAX];
extern const char *const pl_l4_names[PL_L4_MAX];
extern const char *const pl_slot_hook[PL_SLOT_MAX];
extern const char *const pl_slot_dir[PL_SLOT_MAX];

#endif /* __PKTLENS_EXPORT_FORMAT_H */
