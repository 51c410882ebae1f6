// SPDX-License-Identifier: GPL-2.0
/*
 * pace_send IFACE FILE.pcap: send each frame of a pcap file out of IFACE
 * (AF_PACKET, through the qdisc, so a tcpdump on IFACE sees them) at its
 * time in the file, relative to the first frame: a paced replay, like
 * tcpreplay's default timing. Run inside the sending namespace, under
 * `timeout -s KILL`. Waits with clock_nanosleep(TIMER_ABSTIME) on
 * CLOCK_MONOTONIC, so a late wake-up sends the frames that are due at once
 * and the schedule never drifts. Prints "SENT LATE_MAX_US": frames sent and
 * the latest any frame went out past its time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rec {
	uint64_t at_ns;		/* since the first frame */
	uint32_t len;
	unsigned char *data;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The frames of classic pcap file @path (micro- or nanosecond, either byte order). */
static struct rec *load(const char *path, size_t *n)
{
	uint32_t hdr[6], rh[4], magic;
	struct rec *v = NULL;
	size_t cap = 0;
	uint64_t first = 0;
	int swap, nano;
	FILE *f = fopen(path, "rb");

	if (!f || fread(hdr, sizeof(hdr), 1, f) != 1)
		return NULL;
	magic = hdr[0];
	swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
	nano = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
	*n = 0;
	while (fread(rh, sizeof(rh), 1, f) == 1) {
		uint64_t t;

		for (int i = 0; swap && i < 4; i++)
			rh[i] = __builtin_bswap32(rh[i]);
		if (*n == cap) {
			struct rec *nv = realloc(v, (cap = cap ? 2 * cap : 1024) * sizeof(*v));

			if (!nv)
				return NULL;
			v = nv;
		}
		t = (uint64_t)rh[0] * 1000000000ULL + (uint64_t)rh[1] * (nano ? 1 : 1000);
		if (!*n)
			first = t;
		v[*n].at_ns = t - first;
		v[*n].len = rh[2];
		v[*n].data = malloc(rh[2] ? rh[2] : 1);
		if (!v[*n].data || fread(v[*n].data, rh[2], 1, f) != 1)
			return NULL;
		(*n)++;
	}
	fclose(f);
	return v;
}

static void free_recs(struct rec *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}

int main(int argc, char **argv)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	uint64_t t0, late_max = 0;
	struct rec *v;
	size_t n = 0, sent = 0;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: pace_send IFACE FILE.pcap\n");
		return 2;
	}
	v = load(argv[2], &n);
	if (!v) {
		fprintf(stderr, "pace_send: cannot read '%s'\n", argv[2]);
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "pace_send: %s: %s\n", argv[1], strerror(errno));
		free_recs(v, n);
		return 1;
	}
	t0 = now_ns() + 1000000;	/* 1 ms to settle */
	for (size_t i = 0; i < n; i++) {
		uint64_t at = t0 + v[i].at_ns, now = now_ns();

		if (now < at) {
			struct timespec ts = { .tv_sec = (time_t)(at / 1000000000ULL),
					       .tv_nsec = (long)(at % 1000000000ULL) };

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		} else if (now - at > late_max) {
			late_max = now - at;
		}
		/* a full device queue (ENOBUFS) is retried: every frame is sent */
		while (send(fd, v[i].data, v[i].len, 0) < 0) {
			if (errno != ENOBUFS && errno != EAGAIN) {
				fprintf(stderr, "pace_send: %s: %s\n", argv[1], strerror(errno));
				free_recs(v, n);
				return 1;
			}
			usleep(50);
		}
		sent++;
	}
	printf("%zu %llu\n", sent, (unsigned long long)(late_max / 1000));
	free_recs(v, n);
	close(fd);
	return 0;
}
