// SPDX-License-Identifier: GPL-2.0
/* Unit tests: number parsing, address/flag formatting, JSON writer, flow merge and times, arrays. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pktlens/array.h>

#include "unit.h"
#include "../../cli/util.h"
#include "../../export/format.h"
#include "../../export/json.h"
#include "../../export/report.h"
#include "../../loader/loader.h"

static void test_parse_numbers(void)
{
	uint32_t v = 7;
	uint64_t w = 0;

	CHECK(pl_parse_u32("65536", 16, 1u << 24, &v) == 0 && v == 65536);
	CHECK(pl_parse_u32("16", 16, 100, &v) == 0 && v == 16);
	CHECK(pl_parse_u32("15", 16, 100, &v) == -ERANGE);
	CHECK(pl_parse_u32("101", 16, 100, &v) == -ERANGE);
	/* decimal only: a leading zero is not octal, 0x not hex */
	CHECK(pl_parse_u32("020", 16, 100, &v) == 0 && v == 20);
	CHECK(pl_parse_u32("0x20", 16, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("+5", 0, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("abc", 0, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("12abc", 0, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("", 0, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("-1", 0, UINT32_MAX, &v) == -EINVAL);
	CHECK(pl_parse_u32(" 5", 0, 100, &v) == -EINVAL);
	CHECK(pl_parse_u32("4294967296", 0, UINT32_MAX, &v) == -ERANGE);
	CHECK(pl_parse_u64("18446744073709551615", 0, UINT64_MAX, &w) == 0 && w == UINT64_MAX);
	CHECK(pl_parse_u64("18446744073709551616", 0, UINT64_MAX, &w) == -ERANGE);
	CHECK(pl_parse_u64(NULL, 0, 1, &w) == -EINVAL);
}

static void test_names(void)
{
	char b[PL_NAME_TEXT], raw[16];
	uint32_t cp = 0;

	CHECK(pl_utf8_seq("\xc3\xa9", &cp) == 2 && cp == 0xe9);
	CHECK(pl_utf8_seq("\xc0\xaf", &cp) == 0);		/* overlong */
	CHECK(pl_utf8_seq("\xed\xa0\x80", &cp) == 0);	/* a surrogate */
	CHECK(pl_utf8_seq("\xe2\x82", &cp) == 0);		/* cut short */
	CHECK(!strcmp(pl_fmt_name("eth0", b, sizeof(b)), "eth0"));
	CHECK(!strcmp(pl_fmt_name("\xff\xfe", b, sizeof(b)), "\\xff\\xfe"));
	CHECK(!strcmp(pl_fmt_name("a\x1b[2J\\\xc2\x85", b, sizeof(b)), "a\\x1b[2J\\\\\\xc2\\x85"));
	CHECK(!strcmp(pl_fmt_name("w\xc3\xa9", b, sizeof(b)), "w\xc3\xa9"));
	CHECK(!strcmp(pl_fmt_safe("a\\b\n", b, sizeof(b)), "a\\b\\x0a"));
	CHECK(pl_parse_name("\\xff\\\\x", raw, sizeof(raw)) == 0 && !strcmp(raw, "\xff\\x"));
	CHECK(pl_parse_name("\\q", raw, sizeof(raw)) == -EINVAL);
	CHECK(pl_parse_name("\\x00", raw, sizeof(raw)) == -EINVAL);
	/* the longest name: 15 bytes, each shown as \xHH */
	CHECK(strlen(pl_fmt_name("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b,
				 sizeof(b))) == 60);
}

static void test_addresses(void)
{
	char b[PL_ADDR_STRLEN];
	__u8 v4[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 18, [14] = 0, [15] = 1 };
	__u8 v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	__u8 zero[16] = {};
	__u8 v6b[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };

	CHECK_STR(pl_fmt_addr(v4, b, sizeof(b)), "198.18.0.1");
	CHECK_STR(pl_fmt_addr(v6, b, sizeof(b)), "2001:db8::1");
	CHECK_STR(pl_fmt_addr(zero, b, sizeof(b)), "::");
	CHECK_STR(pl_fmt_addr(v6b, b, sizeof(b)), "2001:db8:0:1::1");
	/* a flow's address by its packet's family: an IPv4-mapped one in IPv6 stays IPv6 */
	struct pl_flow_key k4 = { .l3proto = 0x0800, .l4proto = 17 }, k6 = { .l3proto = 0x86dd, .l4proto = 17 };
	char e[PL_ADDR_STRLEN + 16];

	CHECK_STR(pl_fmt_key_addr(&k4, v4, b, sizeof(b)), "198.18.0.1");
	CHECK_STR(pl_fmt_key_addr(&k6, v4, b, sizeof(b)), "::ffff:198.18.0.1");
	CHECK_STR(pl_fmt_key_addr(&k6, v6, b, sizeof(b)), "2001:db8::1");
	CHECK_STR(pl_fmt_endpoint(&k6, v4, 53, e, sizeof(e)), "[::ffff:198.18.0.1]:53");
	CHECK_STR(pl_fmt_endpoint(&k4, v4, 53, e, sizeof(e)), "198.18.0.1:53");
}

static void test_protocols(void)
{
	struct pl_flow_key k = { .l3proto = 0x0800, .l4proto = 6 };
	char b[16];

	CHECK_STR(pl_fmt_l4(&k, b, sizeof(b)), "tcp");
	k.l4proto = 47;
	CHECK_STR(pl_fmt_l4(&k, b, sizeof(b)), "47");
	k.l3proto = 0x0806;
	CHECK_STR(pl_fmt_l4(&k, b, sizeof(b)), "");
	CHECK_STR(pl_fmt_l3(0x86dd, b, sizeof(b)), "ipv6");
	CHECK_STR(pl_fmt_l3(0x88cc, b, sizeof(b)), "0x88cc");
	CHECK_STR(pl_fmt_tcp_flags(0x02, b, sizeof(b)), "S");
	CHECK_STR(pl_fmt_tcp_flags(0x12, b, sizeof(b)), "S.");
	CHECK_STR(pl_fmt_tcp_flags(0x19, b, sizeof(b)), "FP.");
	CHECK_STR(pl_fmt_tcp_flags(0xff, b, sizeof(b)), "FSRP.UEW");
	CHECK_STR(pl_fmt_tcp_flags(0, b, sizeof(b)), "");
}

static char *json_of(void (*fn)(struct jw *), bool pretty)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct jw w;

	jw_init(&w, f, pretty);
	fn(&w);
	fclose(f);
	return buf;
}

static void doc_nested(struct jw *w)
{
	jw_obj_open(w);
	jw_str_field(w, "s", "a\"b\\c\n\x01");
	jw_u64_field(w, "n", 18446744073709551615ull);
	jw_key(w, "a");
	jw_arr_open(w);
	jw_i64(w, -3);
	jw_null(w);
	jw_bool(w, true);
	jw_obj_open(w);
	jw_obj_close(w);
	jw_arr_close(w);
	jw_fixed_field(w, "t", 1.5, 3);
	jw_key(w, "e");
	jw_arr_open(w);
	jw_arr_close(w);
	jw_obj_close(w);
}

static void doc_bytes(struct jw *w)
{
	jw_obj_open(w);
	jw_str_field(w, "raw", "\xff\xfe\x7f\xc2\x85\xc3\xa9\xe2\x82");
	jw_name_field(w, "name", "v\xff\x1b");
	jw_obj_close(w);
}

static void test_json(void)
{
	/* any bytes: controls escaped, each byte that is not UTF-8 as U+FFFD */
	CHECK_STR(json_of(doc_bytes, false),
		  "{\"raw\":\"\\ufffd\\ufffd\\u007f\\u0085\xc3\xa9\\ufffd\\ufffd\","
		  "\"name\":\"v\\\\xff\\\\x1b\"}");
	CHECK_STR(json_of(doc_nested, false),
		  "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":18446744073709551615,"
		  "\"a\":[-3,null,true,{}],\"t\":1.500,\"e\":[]}");
	CHECK_STR(json_of(doc_nested, true),
		  "{\n    \"s\": \"a\\\"b\\\\c\\n\\u0001\",\n    \"n\": 18446744073709551615,\n"
		  "    \"a\": [\n        -3,\n        null,\n        true,\n        {}\n    ],\n"
		  "    \"t\": 1.500,\n    \"e\": []\n}");
}

static void test_flow_merge(void)
{
	struct pl_flow_val v = {}, a = { 2, 200, 50, 90, 0x02, {} }, b = { 3, 300, 40, 80, 0x10, {} };
	struct pl_flow_val empty = { 0, 0, 10, 1000, 0xff, {} };

	pl_flow_val_merge(&v, &a);
	CHECK(v.packets == 2 && v.bytes == 200 && v.first_ns == 50 && v.last_ns == 90);
	pl_flow_val_merge(&v, &b);
	CHECK(v.packets == 5 && v.bytes == 500 && v.first_ns == 40 && v.last_ns == 90);
	CHECK(v.tcp_flags == 0x12);
	/* a CPU slot with no packets contributes nothing, not even timestamps */
	pl_flow_val_merge(&v, &empty);
	CHECK(v.packets == 5 && v.first_ns == 40 && v.last_ns == 90 && v.tcp_flags == 0x12);
}

/*
 * A flow's first and last seen come from one reading of the clocks: equal
 * for a one-packet flow, never reordered (each used to read the clocks anew).
 */
static void test_flow_times(void)
{
	struct pl_flow f = { .key = { .l3proto = 0x0800, .l4proto = 17 },
			     .val = { .packets = 1, .bytes = 60 } };
	unsigned int wrong = 0;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned int i = 0; i < 20000; i++) {
		char *doc = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&doc, &len);
		double first, last;
		struct jw w;

		f.val.first_ns = (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec + i * 997ULL;
		f.val.last_ns = f.val.first_ns + (i & 1);	/* the same, or 1 ns later */
		jw_init(&w, m, false);
		pl_json_flow(&w, "h0", &f, 0, -1, -1);
		jw_end(&w);
		fclose(m);
		first = strtod(strstr(doc, "\"first_seen\":") + strlen("\"first_seen\":"), NULL);
		last = strtod(strstr(doc, "\"last_seen\":") + strlen("\"last_seen\":"), NULL);
		wrong += (i & 1) ? last < first : last != first;
		free(doc);
	}
	CHECK(wrong == 0);
}

static void test_abi(void)
{
	CHECK(sizeof(struct pl_flow_key) == 48);
	CHECK(sizeof(struct pl_flow_val) == 40);
	CHECK(sizeof(struct pl_flow_slot) == 64);	/* one cache line */
	CHECK(sizeof(struct pl_flow_slot_v1) == 88);	/* older attachments' caches */
	/* pl_flow_slot_eq() skips byte 3 of the second word, the TCP flags */
	CHECK(offsetof(struct pl_flow_key, pad) == 11);
	CHECK(sizeof(struct pl_stats) % 8 == 0);
	CHECK(PL_FLOW_CACHE_MIN_BITS <= PL_FLOW_CACHE_MAX_BITS && PL_FLOW_CACHE_MAX_BITS < 32);
}

static void test_grown(void)
{
	size_t cap = 0, n;
	int *v = NULL, *p;

	for (n = 0; n < 100; n++) {
		p = pl_grown(v, &cap, n, sizeof(*v), 4);
		CHECK(p != NULL);
		if (!p)
			break;
		v = p;
		v[n] = (int)n;
	}
	CHECK(cap == 128);	/* 4, doubled five times */
	for (n = 0; n < 100 && v; n++)
		CHECK(v[n] == (int)n);
	/* room left: the same array; too large to count: NULL, the array and cap kept */
	CHECK(pl_grown(v, &cap, 100, sizeof(*v), 4) == v && cap == 128);
	cap = SIZE_MAX / 2 + 1;
	CHECK(pl_grown(v, &cap, cap, sizeof(*v), 4) == NULL && cap == SIZE_MAX / 2 + 1);
	free(v);
}

int main(void)
{
	test_parse_numbers();
	test_names();
	test_addresses();
	test_protocols();
	test_json();
	test_flow_merge();
	test_flow_times();
	test_abi();
	test_grown();
	return unit_report("test_format");
}
