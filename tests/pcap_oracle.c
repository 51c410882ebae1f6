// SPDX-License-Identifier: GPL-2.0
/*
 * Test oracle: libpcap's own verdicts (pcap_offline_filter(), the user-space
 * interpreter) for tcpdump expressions on a capture, to compare with
 * `pktlens filter run`. Built and run by tests/test_filter.py.
 *
 *   pcap_oracle FILE < EXPRESSIONS      one expression per line
 *
 * Prints "PACKETS n", "CAPLEN c1 c2 ..." (caplen of each packet), then for
 * each expression one line: "OK i j ..." (1-based indexes of the packets it
 * matches) or "ERR libpcap's error text".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

struct pkt {
	struct pcap_pkthdr h;
	u_char *data;
};

static int read_all(const char *file, struct pkt **out, size_t *n)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	struct pkt *v = NULL;
	size_t cnt = 0, cap = 0;
	pcap_t *p;
	int r;

	p = pcap_open_offline(file, err);
	if (!p) {
		fprintf(stderr, "pcap_oracle: %s\n", err);
		return -1;
	}
	while ((r = pcap_next_ex(p, &h, &d)) == 1) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 256;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return -1;
		}
		v[cnt].h = *h;
		v[cnt].data = malloc(h->caplen ? h->caplen : 1);
		if (!v[cnt].data)
			return -1;
		memcpy(v[cnt].data, d, h->caplen);
		cnt++;
	}
	pcap_close(p);
	*out = v;
	*n = cnt;
	return r == PCAP_ERROR_BREAK ? 0 : -1;
}

static void one(pcap_t *dead, const char *expr, const struct pkt *v, size_t n)
{
	struct bpf_program fp;

	if (pcap_compile(dead, &fp, expr, 1, 0)) {
		printf("ERR %s\n", pcap_geterr(dead));
		return;
	}
	printf("OK");
	for (size_t i = 0; i < n; i++)
		if (pcap_offline_filter(&fp, &v[i].h, v[i].data))
			printf(" %zu", i + 1);
	printf("\n");
	pcap_freecode(&fp);
}

int main(int argc, char **argv)
{
	char line[65536];
	struct pkt *v = NULL;
	size_t n = 0;
	pcap_t *dead;

	if (argc != 2) {
		fprintf(stderr, "usage: pcap_oracle FILE < EXPRESSIONS\n");
		return 2;
	}
	if (read_all(argv[1], &v, &n))
		return 1;
	printf("PACKETS %zu\nCAPLEN", n);
	for (size_t i = 0; i < n; i++)
		printf(" %u", v[i].h.caplen);
	printf("\n");
	dead = pcap_open_dead(DLT_EN10MB, 262144);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		one(dead, line, v, n);
	}
	fflush(stdout);
	pcap_close(dead);
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
	return 0;
}
