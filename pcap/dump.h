/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writing samples: pcap through libpcap (nanosecond timestamps, DLT_EN10MB)
 * or pcapng written here, since libpcap 1.10 cannot: one interface block per
 * interface and hook (if_name "DEV@xdp", "DEV@tc"; if_tsresol 9), direction
 * in epb_flags, the program's verdict in epb_verdict and the policy rule in
 * a comment, as xdpdump does.
 */
#ifndef __PKTLENS_PCAP_DUMP_H
#define __PKTLENS_PCAP_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pl_dump_fmt {
	PL_DUMP_PCAP = 0,
	PL_DUMP_PCAPNG,
};

/* One packet to write. */
struct pl_dump_pkt {
	uint64_t ts_ns;		/* CLOCK_REALTIME */
	const uint8_t *data;
	uint32_t caplen;
	uint32_t wire_len;
	const char *ifname;
	uint32_t ifindex;
	int hook;		/* enum pl_hook */
	int dir;		/* enum pl_dir */
	int verdict;		/* enum pl_verdict */
	uint32_t rule_id;	/* 0: none */
};

struct pl_dump;

/*
 * Create @path ("-": standard output) for packets of up to @snaplen bytes.
 * 0, or -errno with @why (e.g. an unwritable path).
 */
int pl_dump_open(const char *path, enum pl_dump_fmt fmt, uint32_t snaplen, struct pl_dump **out,
		 char *why, size_t whylen);
/* 0, or -errno (-EIO: the file could not be written). */
int pl_dump_write(struct pl_dump *d, const struct pl_dump_pkt *p);
int pl_dump_flush(struct pl_dump *d);
/* Flush and close; 0, or -errno if anything could not be written. */
int pl_dump_close(struct pl_dump *d);

#endif /* __PKTLENS_PCAP_DUMP_H */
