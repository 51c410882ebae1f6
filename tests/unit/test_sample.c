// SPDX-License-Identifier: GPL-2.0
/* Unit tests: the sampler's one-line dissector and the pcap/pcapng writers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "../../export/pktline.h"
#include "../../pcap/dump.h"

/* Ethernet + VLAN 10 + IPv4 (198.18.0.1 -> 198.18.0.2) + TCP 40000 -> 443, SYN|ACK */
static const uint8_t tcp_vlan[] = {
	2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00,
	0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
	0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
};

/* Ethernet + IPv6 + hop-by-hop + UDP 1000 -> 53 */
static const uint8_t udp6_hbh[] = {
	2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd,
	0x60, 0, 0, 0, 0, 16, 0, 64,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	17, 0, 1, 4, 0, 0, 0, 0,
	0x03, 0xe8, 0x00, 0x35, 0, 8, 0, 0,
};

static void test_dissect(void)
{
	struct pl_frame_desc d;
	char b[256];

	pl_frame_dissect(tcp_vlan, sizeof(tcp_vlan), &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)),
		  "vlan 10, IP 198.18.0.1.40000 > 198.18.0.2.443: tcp [S.]");
	pl_frame_dissect(udp6_hbh, sizeof(udp6_hbh), &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "IP6 2001:db8::1.1000 > 2001:db8::2.53: udp");
	/* cut short: the IP header is incomplete, then the ports are */
	pl_frame_dissect(tcp_vlan, 30, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "vlan 10, IP, truncated or malformed");
	pl_frame_dissect(tcp_vlan, 40, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "vlan 10, IP 198.18.0.1 > 198.18.0.2: tcp");
	pl_frame_dissect(tcp_vlan, 10, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "ethertype 0x0000");
	/* every prefix of both frames dissects without reading past it (ASan would tell) */
	for (uint32_t n = 0; n <= sizeof(udp6_hbh); n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, udp6_hbh, n);
		pl_frame_dissect(copy, n, &d);
		pl_frame_fmt(&d, b, sizeof(b));
		free(copy);
	}
	CHECK(1);
}

static uint32_t u32at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void test_pcapng(void)
{
	char path[] = "/tmp/pktlens-unit-XXXXXX";
	struct pl_dump_pkt pk[3];
	struct pl_dump *d;
	char why[128];
	uint8_t buf[4096];
	size_t n, off = 0, blocks = 0, idbs = 0, epbs = 0;
	int fd = mkstemp(path);
	FILE *f;

	CHECK(fd >= 0);
	close(fd);
	for (int i = 0; i < 3; i++)
		pk[i] = (struct pl_dump_pkt){
			.ts_ns = 1700000000123456789ULL + i, .data = tcp_vlan, .caplen = 40 + i,
			.wire_len = sizeof(tcp_vlan), .ifname = "eth0", .ifindex = 2,
			.hook = i == 2 ? PL_HOOK_TC : PL_HOOK_XDP, .dir = i == 2 ? PL_DIR_OUT : PL_DIR_IN,
			.verdict = PL_VERDICT_DROP, .rule_id = i == 1 ? 7 : 0,
		};
	CHECK(pl_dump_open(path, PL_DUMP_PCAPNG, 262144, &d, why, sizeof(why)) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(pl_dump_write(d, &pk[i]) == 0);
	CHECK(pl_dump_close(d) == 0);
	f = fopen(path, "rb");
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	/* walk the blocks: each length is a multiple of 4 and repeated at its end */
	while (off + 12 <= n) {
		uint32_t type = u32at(buf + off), len = u32at(buf + off + 4);

		if (len < 12 || len % 4 || off + len > n || u32at(buf + off + len - 4) != len)
			break;
		blocks++;
		idbs += type == 1;
		if (type == 6) {
			/* interface id, ts high/low in ns, caplen, wire length */
			uint32_t id = u32at(buf + off + 8), caplen = u32at(buf + off + 20);
			uint64_t ts = (uint64_t)u32at(buf + off + 12) << 32 | u32at(buf + off + 16);

			CHECK(id == (epbs == 2 ? 1U : 0U));
			CHECK(caplen == 40 + epbs);
			CHECK(u32at(buf + off + 24) == sizeof(tcp_vlan));
			CHECK(ts == 1700000000123456789ULL + epbs);
			CHECK(!memcmp(buf + off + 28, tcp_vlan, caplen));
			epbs++;
		}
		off += len;
	}
	CHECK(off == n && blocks == 6 && idbs == 2 && epbs == 3);
	CHECK(u32at(buf) == 0x0A0D0D0AU && u32at(buf + 8) == 0x1A2B3C4DU);
	CHECK(memmem(buf, n, "eth0@xdp", 8) && memmem(buf, n, "eth0@tc", 7));
	CHECK(memmem(buf, n, "pktlens rule 7", 14) != NULL);
	/* pcap: libpcap's nanosecond magic */
	CHECK(pl_dump_open(path, PL_DUMP_PCAP, 128, &d, why, sizeof(why)) == 0);
	CHECK(pl_dump_write(d, &pk[0]) == 0);
	CHECK(pl_dump_close(d) == 0);
	f = fopen(path, "rb");
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	CHECK(n == 24 + 16 + 40 && u32at(buf) == 0xA1B23C4DU && u32at(buf + 16) == 128);
	CHECK(u32at(buf + 28) == 123456789U);	/* the nanoseconds */
	unlink(path);
	/* an unwritable place fails with a reason */
	CHECK(pl_dump_open("/nonexistent-dir/x.pcap", PL_DUMP_PCAP, 128, &d, why, sizeof(why)) ==
	      -ENOENT);
	CHECK_STR(why, "No such file or directory");
}

int main(void)
{
	test_dissect();
	test_pcapng();
	return unit_report("test_sample");
}
