// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the Prometheus and IPFIX writers (export/prom.c,
 * export/ipfix.c) on attachments, counters and flow tables made from the
 * input, without maps: pl_prom_write() renders what pl_prom_render() would
 * have read, pl_ipfix_begin/add/end() export what pl_ipfix_export() would
 * have read, to a UDP socket on 127.0.0.1 this target reads back.
 *
 * Prometheus: valid UTF-8 without control characters (interface names are
 * any bytes the kernel allows), every line is a HELP/TYPE comment or
 * `name{labels} value`, label values escaped, each family declared once before its samples, no
 * series twice, histogram buckets cumulative with +Inf equal to _count.
 * IPFIX (RFC 7011): version 10, the length field equals the datagram, the
 * sets fill it exactly, no message above the 1400-byte budget the exporter
 * keeps, each namespace's records in its own observation domain (the
 * exporter's namespace the domain given, another its inode), sequence numbers
 * count the domain's data records before each message, the templates as
 * announced, with the options template and record naming the domain
 * (observationDomainName) alone in a message, in each domain before its
 * first records of a round that sends them, and the records carry exactly the packet and
 * byte deltas since the previous round (octets without Ethernet headers).
 *
 *   make fuzz (builds .output/fuzz_export; seeds in tests/fuzz/corpus/export/)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../export/format.h"
#include "../../export/ipfix.h"
#include "../../export/json.h"
#include "../../export/prom.h"

#define IPFIX_MSG_MAX 1400	/* export/ipfix.c MSG_MAX */
#define REC_V4 58
#define REC_V6 82
#define REC_TCP 52	/* 8 + 5 * 4 + 3 * 8 */
#define MAX_ATTS 4
#define MAX_RULES 6
#define MAX_FLOWS 48
#define MAX_ROUNDS 3

/* ---- the input ---- */

struct in {
	const uint8_t *p;
	size_t n;
};

/* @bytes big-endian bytes of the input, 0 once it is used up */
static uint64_t take(struct in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_export: %s\n  %s\n", what, detail ? detail : "");
	abort();
}

/* ---- Prometheus ---- */

struct series {
	char **v;
	size_t n, cap;
};

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void series_add(struct series *s, const char *key)
{
	if (s->n == s->cap) {
		char **nv;

		s->cap = s->cap ? 2 * s->cap : 64;
		nv = realloc(s->v, s->cap * sizeof(*nv));
		if (!nv)
			abort();
		s->v = nv;
	}
	s->v[s->n] = strdup(key);
	if (!s->v[s->n++])
		abort();
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* A metric or label name at *p; its length (0: none). */
static size_t name_len(const char *p, bool label)
{
	size_t n = 0;

	while (name_char(p[n], !n) && !(label && p[n] == ':'))
		n++;
	return n;
}

/* The family a histogram sample belongs to: @name less _bucket/_sum/_count. */
static bool hist_member(const char *name, const char *family, const char **suffix)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	size_t fl = strlen(family);

	if (strncmp(name, family, fl))
		return false;
	for (int i = 0; i < 3; i++)
		if (!strcmp(name + fl, sfx[i])) {
			*suffix = sfx[i];
			return true;
		}
	return false;
}

struct hist_state {
	char key[512];		/* family and labels other than le */
	double le, value, inf;
	bool have_inf;
};

static void check_prom(const char *text, size_t len, size_t natts)
{
	char family[128] = "", type[16] = "", *copy, *line, *save = NULL;
	struct hist_state h = { .key = "" };
	struct series seen = { 0 }, families = { 0 };

	if (!len || text[len - 1] != '\n' || strlen(text) != len)
		fail("exposition empty, unterminated or with a NUL", NULL);
	copy = strdup(text);
	if (!copy)
		abort();
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], labels[512] = "", nole[512] = "", key[700], *end;
		const char *p = line, *suffix = NULL;
		double value, le = NAN;
		size_t l;

		if (line[0] == '#') {
			char kw[8], nm[128], rest[64];

			if (sscanf(line, "# %7s %127s %63s", kw, nm, rest) != 3 ||
			    (strcmp(kw, "HELP") && strcmp(kw, "TYPE")) ||
			    name_len(nm, false) != strlen(nm))
				fail("bad comment line", line);
			if (!strcmp(kw, "TYPE")) {
				if (strcmp(nm, family) || strcmp(type, "help"))
					fail("TYPE without its HELP just before", line);
				if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
				    strcmp(rest, "histogram"))
					fail("unknown metric type", line);
				snprintf(type, sizeof(type), "%s", rest);
				series_add(&families, nm);
			} else {
				snprintf(family, sizeof(family), "%s", nm);
				snprintf(type, sizeof(type), "help");
			}
			continue;
		}
		l = name_len(p, false);
		if (!l || l >= sizeof(name))
			fail("sample without a metric name", line);
		memcpy(name, p, l);
		name[l] = 0;
		p += l;
		if (!strcmp(type, "help"))
			fail("sample before its family's TYPE", line);
		if (strcmp(name, family) && !(!strcmp(type, "histogram") &&
					      hist_member(name, family, &suffix)))
			fail("sample outside its family", line);
		if (!strcmp(type, "histogram") && !suffix)
			fail("histogram sample without _bucket/_sum/_count", line);
		if (*p == '{') {
			char *lo = labels, *no = nole;
			char lnames[16][64];
			int nl = 0;

			p++;
			for (;;) {
				const char *ls = p;
				bool is_le;

				l = name_len(p, true);
				if (!l || l >= 64 || p[l] != '=' || p[l + 1] != '"')
					fail("bad label name", line);
				for (int i = 0; i < nl; i++)
					if (!strncmp(lnames[i], p, l) && !lnames[i][l])
						fail("label given twice", line);
				if (nl == 16)
					fail("too many labels", line);
				memcpy(lnames[nl], p, l);
				lnames[nl++][l] = 0;
				is_le = l == 2 && !strncmp(p, "le", 2);
				p += l + 2;
				while (*p != '"') {
					if (!*p)
						fail("label value not closed", line);
					if (*p == '\\') {
						if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
							fail("bad escape in a label value", line);
						p++;
					}
					p++;
				}
				p++;
				if ((size_t)(lo - labels) + (size_t)(p - ls) + 2 >= sizeof(labels))
					fail("labels too long", line);
				if (is_le) {
					char *e2;

					le = !strncmp(ls + 4, "+Inf\"", 5) ? INFINITY :
					     strtod(ls + 4, &e2);
					if (isnan(le) || (!isinf(le) && *e2 != '"'))
						fail("le is not a number", line);
				} else {
					if (no != nole)
						*no++ = ',';
					memcpy(no, ls, (size_t)(p - ls));
					no += p - ls;
				}
				if (lo != labels)
					*lo++ = ',';
				memcpy(lo, ls, (size_t)(p - ls));
				lo += p - ls;
				if (*p == '}')
					break;
				if (*p != ',')
					fail("labels not separated by commas", line);
				p++;
			}
			*lo = *no = 0;
			p++;
		}
		if (*p != ' ' || !p[1] || p[1] == ' ')
			fail("no single space before the value", line);
		value = strtod(p + 1, &end);
		if (*end || !isfinite(value) || value < 0)
			fail("value is not a finite number >= 0", line);
		snprintf(key, sizeof(key), "%s{%s}", name, labels);
		series_add(&seen, key);
		if (!strcmp(name, "pktlens_attachments") && value != (double)natts)
			fail("pktlens_attachments is not the number of attachments", line);
		if (suffix && !strcmp(suffix, "_bucket")) {
			char hk[sizeof(h.key)];

			if (isnan(le))
				fail("bucket without le", line);
			snprintf(hk, sizeof(hk), "%s{%s}", family, nole);
			if (strcmp(hk, h.key)) {
				snprintf(h.key, sizeof(h.key), "%s", hk);
				h.le = -INFINITY;
				h.value = 0;
				h.have_inf = false;
			}
			if (le <= h.le || value < h.value || h.have_inf)
				fail("buckets not cumulative in increasing le", line);
			h.le = le;
			h.value = value;
			if (isinf(le)) {
				h.have_inf = true;
				h.inf = value;
			}
		} else if (suffix && !strcmp(suffix, "_count")) {
			char hk[sizeof(h.key)];

			snprintf(hk, sizeof(hk), "%s{%s}", family, labels);
			if (strcmp(hk, h.key) || !h.have_inf || h.inf != value)
				fail("_count differs from the +Inf bucket (or has none)", line);
		}
	}
	qsort(seen.v, seen.n, sizeof(*seen.v), str_cmp);
	for (size_t i = 1; i < seen.n; i++)
		if (!strcmp(seen.v[i], seen.v[i - 1]))
			fail("series given twice", seen.v[i]);
	qsort(families.v, families.n, sizeof(*families.v), str_cmp);
	for (size_t i = 1; i < families.n; i++)
		if (!strcmp(families.v[i], families.v[i - 1]))
			fail("family declared twice", families.v[i]);
	for (size_t i = 0; i < seen.n; i++)
		free(seen.v[i]);
	for (size_t i = 0; i < families.n; i++)
		free(families.v[i]);
	free(seen.v);
	free(families.v);
	free(copy);
}

/* Valid UTF-8, and no control character but the line ends. */
static void check_text(const char *text, size_t len, const char *what)
{
	for (size_t i = 0; i < len;) {
		uint32_t cp = 0;
		size_t n = pl_utf8_seq(text + i, &cp);

		if (!n)
			fail(what, "not UTF-8");
		if (PL_IS_CONTROL(cp) && cp != '\n')
			fail(what, "a raw control character");
		i += n;
	}
}

/*
 * The JSON writer on the names (and the raw names as plain strings): a
 * valid JSON document, every string escaped and UTF-8, and the names as
 * pl_fmt_name() shows them, so no two alike.
 */
static void check_json_names(const struct pl_attachment *atts, size_t n)
{
	char *out = NULL, *p;
	size_t len = 0;
	struct jw w;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		abort();
	jw_init(&w, f, false);
	jw_arr_open(&w);
	for (size_t i = 0; i < n; i++) {
		jw_obj_open(&w);
		jw_name_field(&w, "ifname", atts[i].ifname);
		jw_str_field(&w, "raw", atts[i].ifname);
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	if (fclose(f))
		abort();
	check_text(out, len, "JSON");
	/* strings: only \" \\ \n \r \t \b \f \uXXXX escapes */
	p = out;
	while ((p = strchr(p, '\\'))) {
		if (p[1] == 'u') {
			for (int k = 2; k < 6; k++)
				if (!isxdigit((unsigned char)p[k]))
					fail("JSON: bad \\u escape", out);
			p += 6;
		} else if (strchr("\"\\nrtbf", p[1]) && p[1]) {
			p += 2;
		} else {
			fail("JSON: bad escape", out);
		}
	}
	for (size_t i = 0; i < n; i++) {
		char a[PL_NAME_TEXT], back[IF_NAMESIZE];

		pl_fmt_name(atts[i].ifname, a, sizeof(a));
		if (pl_parse_name(a, back, sizeof(back)) || strcmp(back, atts[i].ifname))
			fail("a name's text does not give the name back", a);
		for (size_t j = 0; j < i; j++) {
			char b[PL_NAME_TEXT];

			if (strcmp(atts[i].ifname, atts[j].ifname) &&
			    !strcmp(a, pl_fmt_name(atts[j].ifname, b, sizeof(b))))
				fail("two names show as one", a);
		}
	}
	free(out);
}

/* Counters the way the programs keep them: each packet once by verdict and once by size. */
static void make_stats(struct in *in, struct pl_stats *s)
{
	__u64 total = 0, left;

	for (int b = 0; b < PL_RMON_MAX; b++) {
		s->rmon[b] = take(in, 2);
		total += s->rmon[b];
	}
	left = total;
	for (int v = 0; v < PL_VERDICT_MAX - 1; v++) {
		s->pkts[v] = left ? take(in, 2) % (left + 1) : 0;
		left -= s->pkts[v];
	}
	s->pkts[PL_VERDICT_MAX - 1] = left;
	for (int v = 0; v < PL_VERDICT_MAX; v++)
		s->bytes[v] = s->pkts[v] * (take(in, 1) + 60);
	for (int k = 0; k < PL_L3_MAX; k++)
		s->l3[k] = take(in, 2);
	for (int k = 0; k < PL_L4_MAX; k++)
		s->l4[k] = take(in, 2);
	s->parse_err = take(in, 1);
	s->flow_lost_pkts = take(in, 1);
	s->nomatch_pkts = take(in, 2);
	if (take(in, 1) == 0xff)	/* now and then, near the top of the range */
		s->bytes[0] = UINT64_MAX - take(in, 1);
}

static void make_hist(struct in *in, struct pl_tcp_hist *h)
{
	memset(h, 0, sizeof(*h));
	for (int k = 0; k < PL_TCP_HIST_SLOTS; k++) {
		h->slot[k] = k < 8 || take(in, 1) & 1 ? take(in, 1) : 0;
		h->count += h->slot[k];
	}
	h->sum_us = take(in, 4) * h->count;
}

static void fuzz_prom(struct in *in)
{
	struct pl_attachment atts[MAX_ATTS];
	struct pl_prom_att at[MAX_ATTS];
	size_t n = take(in, 1) % (MAX_ATTS + 1), len = 0;
	char *out = NULL;
	FILE *f;

	memset(atts, 0, sizeof(atts));
	memset(at, 0, sizeof(at));
	for (size_t i = 0; i < n; i++) {
		struct pl_attachment *a = &atts[i];
		struct pl_prom_att *t = &at[i];
		size_t nl = take(in, 1) % 16;
		__u32 id = 0;

		/*
		 * (netns, name) is unique; names are any bytes dev_valid_name()
		 * allows: not UTF-8, control characters, backslashes. Two
		 * namespaces, so that names alone must keep series apart.
		 */
		a->netns = 4026531840ULL + take(in, 1) % 2;
		snprintf(a->ns, sizeof(a->ns), "%llu", (unsigned long long)a->netns);
		for (size_t c = 0; c < nl; c++) {
			char ch = (char)(1 + take(in, 1) % 255);

			a->ifname[c] = ch == '/' || ch == ':' || isspace((unsigned char)ch) ? '_' : ch;
		}
		for (size_t j = 0; j < i; j++)
			if (atts[j].netns == a->netns && !strcmp(atts[j].ifname, a->ifname))
				a->ifname[0] = 0;
		if (!nl || !a->ifname[0] || !strcmp(a->ifname, ".") || !strcmp(a->ifname, ".."))
			snprintf(a->ifname, sizeof(a->ifname), "eth%zu", i);
		a->meta_ok = true;
		a->meta.xdp_mode = take(in, 1) % 3;
		a->meta.tc_hooks = take(in, 1) & 3;
		a->meta.flows_max = (__u32)take(in, 4);
		a->meta.probes = take(in, 1) & PL_PROBE_TCP;
		t->a = a;
		t->ok = take(in, 1) % 8 != 0;
		if (!t->ok)
			continue;	/* read_att() stops there */
		for (int sl = 0; sl < PL_SLOT_MAX; sl++) {
			make_stats(in, &t->s[sl]);
			t->samples[sl].sampled = take(in, 2);
			t->samples[sl].lost = take(in, 1);
		}
		t->flows = take(in, 3);
		t->nrules = take(in, 1) % (MAX_RULES + 1);
		if (t->nrules) {
			t->rules = calloc(t->nrules, sizeof(*t->rules));
			t->rstats = take(in, 1) % 8 ? calloc(t->nrules, sizeof(*t->rstats)) : NULL;
			if (!t->rules)
				abort();
			for (size_t r = 0; r < t->nrules; r++) {
				id += 1 + (__u32)take(in, 2);
				t->rules[r].id = id;
				if (t->rstats) {
					t->rstats[r].pkts = take(in, 3);
					t->rstats[r].bytes = take(in, 4);
				}
			}
		}
		t->probes = (a->meta.probes & PL_PROBE_TCP) && take(in, 1) % 4;
		if (t->probes) {
			t->retrans_segs = take(in, 3);
			make_hist(in, &t->rtt);
			make_hist(in, &t->connlat);
		}
	}
	f = open_memstream(&out, &len);
	if (!f)
		abort();
	pl_prom_write(f, at, n);
	if (fclose(f))
		abort();
	check_text(out, len, "exposition");
	check_prom(out, len, n);
	check_json_names(atts, n);
	free(out);
	for (size_t i = 0; i < n; i++) {
		free(at[i].rules);
		free(at[i].rstats);
	}
}

/* ---- IPFIX ---- */

static int collector = -1;
static char collector_addr[64];

static void collector_open(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t sl = sizeof(sa);
	int buf = 8 << 20;

	collector = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (collector < 0 || bind(collector, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(collector, (struct sockaddr *)&sa, &sl)) {
		perror("fuzz_export: collector socket");
		abort();
	}
	setsockopt(collector, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	snprintf(collector_addr, sizeof(collector_addr), "127.0.0.1:%u", ntohs(sa.sin_port));
}

/* A flow of an attachment as the generator keeps it across rounds. */
struct gflow {
	uint64_t netns;
	struct pl_flow f;
};

/* The model of the exporter's baseline: counters of every flow at the last round. */
struct base {
	uint64_t netns;
	struct pl_flow_key key;
	uint64_t packets, bytes;
};

static const struct base *base_find(const struct base *b, size_t n, uint64_t netns,
				    const struct pl_flow_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (b[i].netns == netns && !memcmp(&b[i].key, k, sizeof(*k)))
			return &b[i];
	return NULL;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/*
 * The template set pktlens sends: IPv4 (256) and IPv6 (257) flows of 14
 * fields, then the same for TCP flows of attach --tcp-passive (258, 259)
 * with 9 more: tcpRstTotalCount (IANA 220) and 8 enterprise elements of
 * PEN 32473, RTTs of 4 bytes, counts of 8.
 */
static void check_templates(const uint8_t *s, size_t len)
{
	static const uint16_t common[][2] = { { 7, 2 }, { 11, 2 }, { 4, 1 }, { 6, 2 }, { 1, 8 },
		{ 2, 8 }, { 152, 8 }, { 153, 8 }, { 10, 4 }, { 14, 4 }, { 61, 1 }, { 58, 2 } };
	static const uint16_t tcp[][2] = { { 220, 8 }, { 0x8001, 4 }, { 0x8002, 4 }, { 0x8003, 4 },
		{ 0x8004, 4 }, { 0x8005, 4 }, { 0x8006, 8 }, { 0x8007, 8 }, { 0x8008, 8 } };
	size_t off = 4;

	for (int t = 0; t < 4; t++) {
		bool v6 = t & 1, passive = t >= 2;
		unsigned int reclen = 0, nf = 14 + (passive ? 9 : 0);

		if (off + 4 + nf * 4 > len || rd16(s + off) != 256 + t || rd16(s + off + 2) != nf)
			fail("template record header wrong", NULL);
		off += 4;
		if (rd16(s + off) != (v6 ? 27 : 8) || rd16(s + off + 2) != (v6 ? 16 : 4) ||
		    rd16(s + off + 4) != (v6 ? 28 : 12) || rd16(s + off + 6) != (v6 ? 16 : 4))
			fail("template address fields wrong", NULL);
		reclen += 2 * rd16(s + off + 2);
		off += 8;
		for (int i = 0; i < 12; i++, off += 4) {
			if (rd16(s + off) != common[i][0] || rd16(s + off + 2) != common[i][1])
				fail("template field wrong", NULL);
			reclen += rd16(s + off + 2);
		}
		for (int i = 0; passive && i < 9; i++) {
			bool pen = tcp[i][0] & 0x8000;

			if (off + 4 + (pen ? 4 : 0) > len || rd16(s + off) != tcp[i][0] ||
			    rd16(s + off + 2) != tcp[i][1] || (pen && rd32(s + off + 4) != 32473))
				fail("TCP template field wrong", NULL);
			reclen += rd16(s + off + 2);
			off += pen ? 8 : 4;
		}
		if (reclen != (v6 ? REC_V6 : REC_V4) + (passive ? REC_TCP : 0))
			fail("template record length differs from the data records", NULL);
	}
	if (off != len)
		fail("template set has more than the four templates", NULL);
}

/* An observation domain as received */
struct rx_dom {
	uint32_t id;
	uint32_t seq;		/* data records received so far: the next sequence number */
	bool tpl;		/* its templates came, since the last round that sends them began */
};

struct rx {
	uint32_t domain;	/* the exporter's namespace's (home's) */
	uint64_t home;		/* its inode */
	struct rx_dom d[3];	/* home's, and those of the two namespaces flows come from */
	size_t nd;
	uint64_t records, packets, octets;	/* this round */
	bool templates;		/* this round, the home domain's */
	size_t messages;
};

/* The domain of namespace @netns's records (export/ipfix.c domain_of()). */
static uint32_t rx_domain_of(const struct rx *rx, uint64_t netns)
{
	return netns == rx->home ? rx->domain : (uint32_t)netns;
}

/* The domain @id as received, or NULL where no namespace of the input has it. */
static struct rx_dom *rx_dom(struct rx *rx, uint32_t id)
{
	for (size_t i = 0; i < rx->nd; i++)
		if (rx->d[i].id == id)
			return &rx->d[i];
	return NULL;
}

/* Domain @id, expected (once however many namespaces share it) */
static void rx_expect(struct rx *rx, uint32_t id)
{
	if (!rx_dom(rx, id))
		rx->d[rx->nd++] = (struct rx_dom){ .id = id };
}

/* Read and check every message the exporter sent. */
static void receive(struct rx *rx)
{
	static uint8_t m[65536];
	ssize_t got;
	char d[160];

	while ((got = recv(collector, m, sizeof(m), 0)) >= 0) {
		size_t off = 16, n = (size_t)got;
		struct rx_dom *dom;
		uint32_t recs = 0, named = 0;
		int sets = 0;	/* of the templates' message: templates, options template, name */

		snprintf(d, sizeof(d), "message %zu of the round, %zd bytes", rx->messages, got);
		rx->messages++;
		if (n < 16 + 4 || n > IPFIX_MSG_MAX)
			fail("message without a set or above the MTU budget", d);
		if (rd16(m) != 10 || rd16(m + 2) != n)
			fail("version or length field wrong", d);
		dom = rx_dom(rx, rd32(m + 12));
		if (!dom)
			fail("observation domain of no namespace", d);
		if (rd32(m + 8) != dom->seq)
			fail("sequence number wrong", d);
		while (off < n) {
			uint16_t id, len;

			if (off + 4 > n)
				fail("set header cut off", d);
			id = rd16(m + off);
			len = rd16(m + off + 2);
			if (len < 4 || off + len > n)
				fail("set length outside the message", d);
			if (sets && sets++ != (id == 3 ? 1 : id == 260 ? 2 : -1))
				fail("the templates' message not templates, options template, name", d);
			if (id == 2) {
				if (off != 16)
					fail("templates not first in their message", d);
				sets = 1;
				if (dom->tpl)
					fail("templates sent unasked (the domain has them)", d);
				if (dom->id == rx->domain && rx->messages != 1)
					fail("the home domain's templates not the round's first message", d);
				check_templates(m + off, len);
				dom->tpl = true;
				rx->templates |= dom->id == rx->domain;
			} else if (id == 3) {	/* observationDomainName scoped by observationDomainId */
				static const uint8_t opt[] = { 1, 4, 0, 2, 0, 1, 0, 149, 0, 4, 1, 44,
							       0xff, 0xff };

				if (sets != 2 || len != 4 + sizeof(opt) ||
				    memcmp(m + off + 4, opt, sizeof(opt)))
					fail("options template wrong", d);
			} else if (id == 260) {	/* the domain's name: "netns INODE..." */
				if (sets != 3 || len < 9 || len != 9 + m[off + 8] ||
				    rd32(m + off + 4) != dom->id ||
				    len < 9 + 6 || memcmp(m + off + 9, "netns ", 6))
					fail("domain name record wrong", d);
				named++;
			} else if (id == 256 || id == 257) {
				size_t rl = id == 257 ? REC_V6 : REC_V4, a = id == 257 ? 32 : 8;

				if (len == 4 || (len - 4) % rl)
					fail("data set length not whole records", d);
				if (!dom->tpl)
					fail("records before their domain's templates", d);
				for (size_t r = off + 4; r < off + len; r += rl) {
					rx->octets += rd64(m + r + a + 7);
					rx->packets += rd64(m + r + a + 15);
					if (!rd64(m + r + a + 15))
						fail("record without packets", d);
					recs++;
				}
			} else {
				fail("unknown set id", d);
			}
			off += len;
		}
		if (sets && sets != 3)
			fail("the templates' message without the domain's name", d);
		dom->seq += recs + named;	/* an options record is a data record */
		rx->records += recs;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		fail("recv", strerror(errno));
}

static void make_key(struct in *in, struct pl_flow_key *k)
{
	static const uint16_t l3[] = { 0x0800, 0x86dd, 0x0800, 0x86dd, 0x0806, 0x88cc };
	uint8_t sel = (uint8_t)take(in, 1);

	memset(k, 0, sizeof(*k));
	k->l3proto = sel < 240 ? l3[sel % 6] : (uint16_t)take(in, 2);
	k->ifindex = (__u32)take(in, 1);
	k->dir = sel & 0x10 ? PL_DIR_OUT : PL_DIR_IN;
	k->hook = sel & 0x20 ? PL_HOOK_TC : PL_HOOK_XDP;
	k->vlan = sel & 0x40 ? (uint16_t)(take(in, 2) & 0xfff) : PL_VLAN_NONE;
	if (k->l3proto == 0x0800 || k->l3proto == 0x86dd) {
		static const uint8_t l4[] = { 6, 17, 1, 58, 132, 47 };
		uint8_t p = (uint8_t)take(in, 1);

		k->l4proto = p < 250 ? l4[p % 6] : p;
		k->sport = (uint16_t)take(in, 2);
		k->dport = (uint16_t)take(in, 2);
		if (k->l3proto == 0x0800) {
			k->saddr[10] = k->saddr[11] = k->daddr[10] = k->daddr[11] = 0xff;
			for (int i = 12; i < 16; i++) {
				k->saddr[i] = (uint8_t)take(in, 1);
				k->daddr[i] = (uint8_t)take(in, 1);
			}
		} else {
			for (int i = 0; i < 16; i++) {
				k->saddr[i] = (uint8_t)take(in, 1);
				k->daddr[i] = (uint8_t)take(in, 1);
			}
		}
	}
}

static void fuzz_ipfix(struct in *in)
{
	struct gflow flows[MAX_ATTS * MAX_FLOWS];
	struct base *base = NULL, *next = NULL;
	size_t nflows = 0, nbase = 0, atts = take(in, 1) % (MAX_ATTS + 1);
	size_t start[MAX_ATTS + 1] = { 0 };
	int rounds = (int)(take(in, 1) % MAX_ROUNDS) + 1;
	struct rx rx = { .domain = (uint32_t)take(in, 4), .home = 4026531840ULL };
	struct pl_ipfix *x = NULL;
	char why[256];

	if (collector < 0)
		collector_open();
	receive(&rx);	/* nothing left over */
	if (rx.messages)
		fail("messages from an earlier input", NULL);
	if (pl_ipfix_open(collector_addr, rx.domain, false, &x, why, sizeof(why)))
		fail("pl_ipfix_open", why);
	/* this namespace's flows go out under the domain given, another's under its inode */
	if (pl_netns_ino(&rx.home))
		fail("pl_netns_ino", strerror(errno));
	rx_expect(&rx, rx.domain);
	/* the flow tables: a few attachments, some sharing a namespace, ours or another */
	for (size_t a = 0; a < atts; a++) {
		uint64_t netns = take(in, 1) % 2 ? rx.home : rx.home + 1;
		size_t nf = take(in, 1) % (MAX_FLOWS + 1);

		start[a] = nflows;
		for (size_t i = 0; i < nf; i++) {
			struct gflow *g = &flows[nflows];
			bool dup = false;

			g->netns = netns;
			rx_expect(&rx, rx_domain_of(&rx, netns));
			make_key(in, &g->f.key);
			for (size_t j = 0; j < nflows; j++)	/* keys are unique per namespace */
				dup |= flows[j].netns == netns &&
				       !memcmp(&flows[j].f.key, &g->f.key, sizeof(g->f.key));
			if (dup)
				continue;
			memset(&g->f.val, 0, sizeof(g->f.val));
			g->f.val.first_ns = take(in, 4) * 1000000ULL;
			g->f.val.last_ns = g->f.val.first_ns + take(in, 2) * 1000000ULL;
			g->f.val.tcp_flags = (uint8_t)take(in, 1);
			nflows++;
		}
	}
	start[atts] = nflows;
	for (int round = 0; round < rounds; round++) {
		bool tpl = round == 0 || take(in, 1) & 1, broken = take(in, 1) % 16 == 15;
		uint64_t want_pkts = 0, want_octets = 0, want_recs = 0;
		size_t records = 9999, nnext = 0;
		int err = 0;

		/* the counters grow; a flow that shrank was removed and came back */
		for (size_t i = 0; i < nflows; i++) {
			struct pl_flow_val *v = &flows[i].f.val;
			uint8_t c = (uint8_t)take(in, 1);

			if (c == 0xff) {
				v->packets = c & 1;
				v->bytes = v->packets * 60;
			} else if (c % 4) {
				uint64_t dp = take(in, 1) + (c & 0x80 ? take(in, 3) : 0);

				v->packets += dp;
				v->bytes += dp * (take(in, 1) + 14) + (c & 0x40 ? take(in, 1) : 0);
			}
		}
		next = calloc(nflows ? nflows : 1, sizeof(*next));
		if (!next)
			abort();
		for (size_t i = 0; i < nflows; i++) {
			const struct pl_flow *f = &flows[i].f;
			const struct base *old = base_find(base, nbase, flows[i].netns, &f->key);
			uint64_t dp = f->val.packets, db = f->val.bytes, hdr;

			next[nnext++] = (struct base){ flows[i].netns, f->key, dp, db };
			if (f->key.l3proto != 0x0800 && f->key.l3proto != 0x86dd)
				continue;
			/*
			 * a flow that shrank, in either counter, was removed and
			 * came back: both count whole, else the growth since
			 */
			if (old && dp >= old->packets && db >= old->bytes) {
				dp -= old->packets;
				db -= old->bytes;
			}
			if (!dp)
				continue;
			hdr = dp * (f->key.vlan == PL_VLAN_NONE ? 14 : 18);
			want_recs++;
			want_pkts += dp;
			want_octets += db > hdr ? db - hdr : 0;
		}
		rx.records = rx.packets = rx.octets = 0;
		rx.templates = false;
		rx.messages = 0;
		for (size_t i = 0; tpl && i < rx.nd; i++)
			rx.d[i].tpl = false;	/* each domain gets them again */
		pl_ipfix_begin(x, tpl);
		for (size_t a = 0; a < atts && !err; a++) {
			struct pl_flow fl[MAX_FLOWS];
			size_t nf = start[a + 1] - start[a];

			for (size_t i = 0; i < nf; i++)
				fl[i] = flows[start[a] + i].f;
			err = pl_ipfix_add(x, flows[start[a]].netns, fl, nf);
		}
		if (!err && broken)
			err = -EIO;	/* as when a flow table cannot be read */
		err = pl_ipfix_end(x, err, &records, why, sizeof(why));
		receive(&rx);
		if (rx.templates != tpl)
			fail(tpl ? "templates asked for, not sent" : "templates sent unasked",
			     NULL);
		/*
		 * a round that ends in an error after its flows were read sends
		 * them all the same, once: the next round sends what is new since
		 */
		if (broken ? err != -EIO : err != 0)
			fail("pl_ipfix_end", broken ? "the round's error not returned" : why);
		if (records != rx.records || records != want_recs || rx.packets != want_pkts ||
		    rx.octets != want_octets) {
			snprintf(why, sizeof(why), "records %zu sent %llu want %llu, packets %llu "
				 "want %llu, octets %llu want %llu", records,
				 (unsigned long long)rx.records, (unsigned long long)want_recs,
				 (unsigned long long)rx.packets, (unsigned long long)want_pkts,
				 (unsigned long long)rx.octets, (unsigned long long)want_octets);
			fail("the records are not the deltas since the last round", why);
		}
		free(base);
		base = next;
		nbase = nnext;
	}
	pl_ipfix_close(x);
	free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };

	/* byte 0 bit 0: Prometheus first, else IPFIX first; both always run */
	if (size && data[0] & 1) {
		in.p++;
		in.n--;
		fuzz_prom(&in);
		fuzz_ipfix(&in);
	} else {
		if (size) {
			in.p++;
			in.n--;
		}
		fuzz_ipfix(&in);
		fuzz_prom(&in);
	}
	return 0;
}
