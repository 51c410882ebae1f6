// SPDX-License-Identifier: GPL-2.0
/* Unit tests: the sampler's one-line dissector, the pcap/pcapng writers and their output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "unit.h"
#include "../../export/pktline.h"
#include "../../pcap/dump.h"
#include "../../pcap/out.h"

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
	/* the snap length cut the Ethernet header or the tag: no ethertype to tell, as tcpdump says */
	pl_frame_dissect(tcp_vlan, 10, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "[|ether]");
	CHECK(d.cut == 1);
	pl_frame_dissect(tcp_vlan, 16, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "[|vlan]");
	CHECK(d.cut == 2);
	pl_frame_dissect(udp6_hbh, 14, &d);
	CHECK_STR(pl_frame_fmt(&d, b, sizeof(b)), "IP6, truncated or malformed");
	CHECK(d.cut == 0);
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

/* Write @n packets of @pk to @path in @fmt; 0 or -errno. */
static int dump_file(const char *path, enum pl_dump_fmt fmt, uint32_t snaplen,
		     const struct pl_dump_pkt *pk, int n, const struct pl_dump_if *ifs, size_t nifs)
{
	struct pl_out *o;
	struct pl_dump *d;
	uint64_t delivered, added;
	char why[128];
	int err = pl_out_open(path, PL_OUT_MODE, NULL, 0, NULL, &o, why, sizeof(why));

	if (err)
		return err;
	err = pl_dump_open(o, fmt, snaplen, ifs, nifs, &d);
	for (int i = 0; !err && i < n; i++)
		err = pl_dump_write(d, &pk[i]);
	err = err ?: pl_out_commit(o, why, sizeof(why));
	err = err ?: pl_out_finish(o, &delivered, &added);
	if (!err && (delivered != (uint64_t)n || added != (uint64_t)n))
		err = -EIO;
	pl_dump_free(d);
	pl_out_close(o);
	return err;
}

static void test_pcapng(void)
{
	char path[] = "/tmp/pktlens-unit-XXXXXX";
	struct pl_dump_pkt pk[3];
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
	CHECK(dump_file(path, PL_DUMP_PCAPNG, 262144, pk, 3, NULL, 0) == 0);
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
	CHECK(dump_file(path, PL_DUMP_PCAP, 128, pk, 1, NULL, 0) == 0);
	f = fopen(path, "rb");
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	CHECK(n == 24 + 16 + 40 && u32at(buf) == 0xA1B23C4DU && u32at(buf + 16) == 128);
	CHECK(u32at(buf + 28) == 123456789U);	/* the nanoseconds */
	unlink(path);
}

/* The interfaces a capture covers are declared at its start: a file without packets has its IDBs. */
static void test_pcapng_declared(void)
{
	char path[] = "/tmp/pktlens-unit-XXXXXX";
	const struct pl_dump_if ifs[2] = { { "veth7", 9, PL_HOOK_TC }, { "veth7", 9, PL_HOOK_XDP } };
	struct pl_dump_pkt pk = {
		.ts_ns = 1, .data = tcp_vlan, .caplen = 40, .wire_len = 40, .ifname = "veth7",
		.ifindex = 9, .hook = PL_HOOK_XDP, .dir = PL_DIR_IN,
	};
	uint8_t buf[4096];
	size_t n, off = 0, idbs = 0, epbs = 0;
	int fd = mkstemp(path);
	FILE *f;

	CHECK(fd >= 0);
	close(fd);
	for (int npk = 0; npk < 2; npk++) {
		CHECK(dump_file(path, PL_DUMP_PCAPNG, 262144, &pk, npk, ifs, 2) == 0);
		f = fopen(path, "rb");
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		for (off = 0, idbs = 0, epbs = 0; off + 12 <= n; off += u32at(buf + off + 4)) {
			uint32_t type = u32at(buf + off);

			CHECK(u32at(buf + off + 4) >= 12);
			if (u32at(buf + off + 4) < 12)
				break;
			idbs += type == 1;
			if (type == 6) {
				/* the XDP packet is interface 1: declared second, no IDB of its own */
				CHECK(u32at(buf + off + 8) == 1);
				epbs++;
			}
		}
		CHECK(off == n && idbs == 2 && epbs == (size_t)npk);
		CHECK(memmem(buf, n, "veth7@tc", 8) && memmem(buf, n, "veth7@xdp", 9));
	}
	unlink(path);
}

static size_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? (size_t)-1 : (size_t)st.st_size;
}

/* What may be written where: checked before anything is created. */
static void test_out_check(void)
{
	char dir[] = "/tmp/pktlens-unit-XXXXXX", path[128], link[128], why[160];
	uint64_t delivered, added;
	struct pl_out *o;
	mode_t old;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/f.pcap", dir);
	snprintf(link, sizeof(link), "%s/l.pcap", dir);
	CHECK(pl_out_check("-", why, sizeof(why)) == 0);
	CHECK(pl_out_check("/nonexistent-dir/x.pcap", why, sizeof(why)) == -ENOENT);
	CHECK_STR(why, "No such file or directory");
	CHECK(pl_out_check(dir, why, sizeof(why)) == -EISDIR);
	CHECK(pl_out_check(path, why, sizeof(why)) == 0 && file_size(path) == (size_t)-1);
	/* a symbolic link is never followed, not even to a file that may be written */
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, "keep", 4) == 4);
	close(fd);
	CHECK(symlink(path, link) == 0);
	CHECK(pl_out_check(link, why, sizeof(why)) == -ELOOP);
	CHECK(strstr(why, "symbolic link") != NULL);
	/* a file another sampler writes (locked) is not taken */
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
	CHECK(pl_out_check(path, why, sizeof(why)) == -EBUSY);
	close(fd);
	CHECK(pl_out_check(path, why, sizeof(why)) == 0);
	/* opened, written, not committed: the old file stays as it was, no temporary is left */
	CHECK(pl_out_open(path, PL_OUT_MODE, NULL, 0, NULL, &o, why, sizeof(why)) == 0);
	CHECK(pl_out_rec(o, &(struct iovec){ .iov_base = "new!", .iov_len = 4 }, 1, true) == 0);
	CHECK(pl_out_flush(o) == 0);
	pl_out_close(o);
	CHECK(file_size(path) == 4);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && read(fd, why, 4) == 4 && !memcmp(why, "keep", 4));
	close(fd);
	/* committed: replaced, 0600 even under umask 0, or the mode asked for */
	old = umask(0);
	for (int i = 0; i < 2; i++) {
		struct stat st;

		CHECK(pl_out_open(path, i ? 0640 : PL_OUT_MODE, NULL, 0, NULL, &o, why, sizeof(why)) == 0);
		CHECK(pl_out_rec(o, &(struct iovec){ .iov_base = "new!!", .iov_len = 5 }, 1, true) == 0);
		CHECK(pl_out_commit(o, why, sizeof(why)) == 0);
		CHECK(pl_out_finish(o, &delivered, &added) == 0 && delivered == 1 && added == 1);
		pl_out_close(o);
		CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
		CHECK((st.st_mode & 07777) == (i ? 0640U : 0600U));
		CHECK(st.st_size == 5);
	}
	umask(old);
	unlink(link);
	unlink(path);
	CHECK(rmdir(dir) == 0);	/* nothing else was left in it */
}

/* A file that cannot grow (RLIMIT_FSIZE: EFBIG, like a full disk) ends with a whole record. */
static void test_out_full(void)
{
	char path[] = "/tmp/pktlens-unit-XXXXXX";
	struct rlimit old, lim;
	uint8_t rec[100];
	struct pl_out *o;
	uint64_t delivered, added;
	char why[128];
	int fd = mkstemp(path), err = 0, i;

	CHECK(fd >= 0);
	close(fd);
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 1050;		/* ten records and half of the eleventh */
	CHECK(pl_out_open(path, PL_OUT_MODE, NULL, 0, NULL, &o, why, sizeof(why)) == 0);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	for (i = 0; i < 40 && !err; i++) {
		memset(rec, i, sizeof(rec));
		err = pl_out_rec(o, &(struct iovec){ .iov_base = rec, .iov_len = sizeof(rec) }, 1, true);
		if (!err && i % 7 == 6)
			err = pl_out_flush(o);	/* flushes of several records: the last one is cut */
	}
	CHECK(err == -EFBIG);
	CHECK(pl_out_error(o) == -EFBIG);
	CHECK(pl_out_rec(o, &(struct iovec){ .iov_base = rec, .iov_len = 1 }, 1, true) == -EFBIG);
	CHECK(pl_out_commit(o, why, sizeof(why)) == 0);
	CHECK(pl_out_finish(o, &delivered, &added) == -EFBIG);
	setrlimit(RLIMIT_FSIZE, &old);
	pl_out_close(o);
	/* the flush of records 7..13 failed inside record 10: the file keeps 0..9, whole */
	CHECK(delivered == 10 && added == 14);
	CHECK(file_size(path) == 1000);
	unlink(path);
}

/* A pipe whose reader read 150 bytes and went away: one 100-byte record was delivered. */
static void test_out_pipe(void)
{
	int p[2], saved = dup(STDOUT_FILENO);
	uint8_t rec[100] = { 0 }, got[150];
	struct pl_out *o;
	uint64_t delivered, added;
	char why[128];

	signal(SIGPIPE, SIG_IGN);
	CHECK(pipe(p) == 0);
	CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
	close(p[1]);
	CHECK(pl_out_open("-", PL_OUT_MODE, NULL, 0, NULL, &o, why, sizeof(why)) == 0);
	for (int i = 0; i < 30; i++)
		CHECK(pl_out_rec(o, &(struct iovec){ .iov_base = rec, .iov_len = 100 }, 1, true) == 0);
	CHECK(pl_out_flush(o) == 0 && !pl_out_gone(o));
	CHECK(read(p[0], got, sizeof(got)) == (ssize_t)sizeof(got));
	close(p[0]);
	CHECK(pl_out_gone(o));
	CHECK(pl_out_rec(o, &(struct iovec){ .iov_base = rec, .iov_len = 100 }, 1, true) == 0);
	CHECK(pl_out_finish(o, &delivered, &added) == -EPIPE);
	CHECK(delivered == 1 && added == 31);
	pl_out_close(o);
	dup2(saved, STDOUT_FILENO);
	close(saved);
}

int main(void)
{
	test_dissect();
	test_pcapng();
	test_pcapng_declared();
	test_out_check();
	test_out_full();
	test_out_pipe();
	return unit_report("test_sample");
}
