// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests: the exporter's TCP histograms (export/prom.c) against the
 * samples they hold. Samples at every power-of-two boundary are put in the
 * slots the probes use (struct pl_tcp_hist: slot k holds [2^k, 2^(k+1)) us,
 * slot 0 also 0, the last slot everything above); each exported bucket must
 * count exactly the samples <= its le (inclusive, as Prometheus reads it).
 */
#include <stdlib.h>

#include "unit.h"
#include "../../export/prom.h"

/* floor(log2(us)), 0 for 0, at most PL_TCP_HIST_SLOTS - 1: the probes' slot */
static int slot_of(__u64 us)
{
	int k = 0;

	while (k + 1 < PL_TCP_HIST_SLOTS && us >> (k + 1))
		k++;
	return k;
}

#define MAXS 200

static __u64 samples[MAXS];
static size_t nsamples;

static void add(struct pl_tcp_hist *h, __u64 us)
{
	h->slot[slot_of(us)]++;
	h->count++;
	h->sum_us += us;
	h->max_us = us > h->max_us ? us : h->max_us;
	samples[nsamples++] = us;
}

/* Every "NAME_bucket{...le="X"} N" line of @text: N must be the samples <= X s. */
static void check_family(const char *text, const char *name, int *buckets)
{
	char pfx[128];
	const char *p = text;

	snprintf(pfx, sizeof(pfx), "\n%s_bucket{", name);
	*buckets = 0;
	while ((p = strstr(p, pfx))) {
		const char *le = strstr(p, "le=\"");
		unsigned long long got, want = 0;
		char bound[32];
		int n;

		p += strlen(pfx);
		CHECK(le != NULL);
		if (!le || sscanf(le, "le=\"%31[^\"]\"} %llu%n", bound, &got, &n) != 2) {
			CHECK(!"a bucket line that does not parse");
			return;
		}
		for (size_t i = 0; i < nsamples; i++) {
			/* in whole us: the bound's decimal digits must be exact */
			if (!strcmp(bound, "+Inf") || (double)samples[i] <= strtod(bound, NULL) * 1e6 + 1e-6)
				want++;
		}
		if (strcmp(bound, "+Inf")) {
			double us = strtod(bound, NULL) * 1e6;

			double whole = (double)(long long)(us + 0.5);

			CHECK(us - whole < 1e-6 && whole - us < 1e-6);	/* a whole number of us */
		}
		if (got != want)
			fprintf(stderr, "%s le=%s: %llu, want %llu\n", name, bound, got, want);
		CHECK(got == want);
		(*buckets)++;
	}
}

int main(void)
{
	struct pl_attachment a = { .ns = "4026531840", .ifname = "eth0" };
	struct pl_prom_att at = { .a = &a, .probes = true, .passive = true };
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int buckets;

	/* 0, 1, then 2^j - 1, 2^j, 2^j + 1 for every j, and beyond the last bucket */
	add(&at.connlat, 0);
	add(&at.connlat, 1);
	for (int j = 1; j <= 33; j++) {
		add(&at.connlat, (1ULL << j) - 1);
		add(&at.connlat, 1ULL << j);
		add(&at.connlat, (1ULL << j) + 1);
	}
	at.rtt = at.connlat;
	at.ptcp.rtt = at.connlat;
	f = open_memstream(&text, &len);
	CHECK(f != NULL);
	if (!f)
		return unit_report("test_prom_hist");
	fputc('\n', f);
	pl_prom_write(f, &at, 1);
	fclose(f);
	check_family(text, "pktlens_tcp_connect_latency_seconds", &buckets);
	CHECK(buckets == 26);	/* 25 bounds and +Inf */
	check_family(text, "pktlens_tcp_rtt_seconds", &buckets);
	CHECK(buckets == 26);
	check_family(text, "pktlens_tcp_passive_rtt_seconds", &buckets);
	CHECK(buckets == 26);
	/* the bounds: 2^k - 1 us, from 1 us to 33.554431 s */
	CHECK(strstr(text, "pktlens_tcp_rtt_seconds_bucket{netns=\"4026531840\",device=\"eth0\",le=\"1e-06\"} 3\n") != NULL);
	CHECK(strstr(text, ",le=\"3e-06\"}") != NULL && strstr(text, ",le=\"7e-06\"}") != NULL);
	CHECK(strstr(text, ",le=\"33.554431\"}") != NULL && !strstr(text, ",le=\"2e-06\"}"));
	free(text);
	return unit_report("test_prom_hist");
}
