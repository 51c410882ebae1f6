/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writing samples: pcap (nanosecond timestamps, DLT_EN10MB) or pcapng,
 * which libpcap 1.10 cannot write: one interface block per
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

/* An interface and hook a capture covers. */
struct pl_dump_if {
	const char *ifname;
	uint32_t ifindex;
	int hook;		/* enum pl_hook */
};

struct pl_dump;
struct pl_out;

/*
 * Start a capture of packets of up to @snaplen bytes on @out (pcap/out.h):
 * the file header goes out as its first record; pcapng: with an IDB for
 * each of the @nifs interfaces and hooks in @ifs, so that a file without
 * packets (yet) reads as one (libpcap refuses a section without IDBs). A
 * packet from a hook not among them brings its own IDB. 0, or -errno.
 */
int pl_dump_open(struct pl_out *out, enum pl_dump_fmt fmt, uint32_t snaplen,
		 const struct pl_dump_if *ifs, size_t nifs, struct pl_dump **d);
/* One packet, as one record of the output. 0, or -errno (the output's, pl_out_rec()). */
int pl_dump_write(struct pl_dump *d, const struct pl_dump_pkt *p);
/* Free @d (the output is the caller's). */
void pl_dump_free(struct pl_dump *d);

#endif /* __PKTLENS_PCAP_DUMP_H */
