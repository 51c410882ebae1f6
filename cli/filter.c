// SPDX-License-Identifier: GPL-2.0
/* pktlens filter compile | run: tcpdump expressions through the cBPF->eBPF translator */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pktlens/array.h>

#include "cli.h"
#include "common.h"
#include "print.h"
#include "util.h"
#include "../loader/features.h"
#include "../export/format.h"
#include "../pcap/cbpf.h"

/* An expression on its way into the kernel. */
struct built {
	struct pl_filter_prog p;
	int fd;
	char log[4096];		/* verifier log tail when fd < 0 */
};

/*
 * expression -> cBPF -> eBPF -> loaded program. Prints compile and
 * translation errors and returns their exit code. A refused load is not an
 * error here (compile still prints the listing): PL_EXIT_OK with b->fd =
 * -errno and b->log set.
 */
static int build(const char *verb, const char *expr, const struct pl_filter_opts *o,
		 struct built *b)
{
	char err[512];
	int ret;

	b->fd = -1;
	ret = pl_filter_build(expr, o, &b->p, err, sizeof(err));
	if (ret) {
		if (ret == -E2BIG)	/* no use repeating all of it */
			pl_err("filter %s: %s", verb, err);
		else
			pl_err("filter %s: expression '%s': %s", verb, expr, err);
		return PL_EXIT_CODE(ret, PL_ERR_INPUT);	/* it cannot run in-kernel */
	}
	b->fd = pl_ebpf_load(b->p.ebpf, b->p.ebpf_len, o->ctx, 0, b->log, sizeof(b->log));
	return PL_EXIT_OK;
}

static void built_free(struct built *b)
{
	if (b->fd >= 0)
		close(b->fd);
	pl_filter_prog_free(&b->p);
}

/* "filter VERB: loading the xdp program (N insns): why" */
static void load_error_msg(const char *verb, enum pl_filter_ctx ctx, const struct built *b,
			   char *msg, size_t len)
{
	snprintf(msg, len, "filter %s: loading the %s program (%zu insns): %s", verb,
		 pl_filter_ctx_name(ctx), b->p.ebpf_len, strerror(-b->fd));
}

/* "pktlens: filter VERB: loading ...", then the verifier log's tail */
static void load_error(const char *verb, enum pl_filter_ctx ctx, const struct built *b)
{
	char msg[256];

	load_error_msg(verb, ctx, b, msg, sizeof(msg));
	pl_err("%s", msg);
	if (!pl_g.json && b->log[0])
		fprintf(stderr, "verifier log (tail):\n%s\n", b->log);
}

static void print_cbpf(const struct built *b, int dump)
{
	char line[256];

	if (dump >= 3)
		printf("%zu\n", b->p.cbpf_len);
	for (size_t i = 0; i < b->p.cbpf_len; i++) {
		const struct sock_filter *f = &b->p.cbpf[i];

		if (dump == 2) {
			printf("{ 0x%x, %d, %d, 0x%08x },\n", f->code, f->jt, f->jf, f->k);
		} else if (dump >= 3) {
			printf("%u %u %u %u\n", f->code, f->jt, f->jf, f->k);
		} else {
			pl_cbpf_image(f, (int)i, line, sizeof(line));
			printf("%s\n", line);
		}
	}
}

static void print_compile_plain(const struct built *b, enum pl_filter_ctx ctx, int dump)
{
	char line[256];

	print_cbpf(b, dump);
	printf("\neBPF for %s: %zu instructions\n", pl_filter_ctx_name(ctx), b->p.ebpf_len);
	for (size_t i = 0; i < b->p.ebpf_len;) {
		int n = pl_ebpf_insn_str(b->p.ebpf, b->p.ebpf_len, i, line, sizeof(line));

		printf("%5zu: %s\n", i, line);
		i += (size_t)n;
	}
	if (b->fd >= 0)
		printf("\nverifier: accepted (%s program, %zu instructions)\n",
		       pl_filter_ctx_name(ctx), b->p.ebpf_len);
}

/* @error: why the kernel refused the program (b->fd < 0), else NULL */
static void print_compile_json(const struct built *b, const char *expr, enum pl_filter_ctx ctx,
			       const char *error)
{
	char line[256];
	struct jw w;

	jw_init(&w, stdout, pl_g.pretty);
	jw_obj_open(&w);
	jw_str_field(&w, "expression", expr);
	jw_str_field(&w, "ctx", pl_filter_ctx_name(ctx));
	jw_u64_field(&w, "cbpf_insns", b->p.cbpf_len);
	jw_key(&w, "cbpf");
	jw_arr_open(&w);
	for (size_t i = 0; i < b->p.cbpf_len; i++) {
		jw_obj_open(&w);
		jw_u64_field(&w, "code", b->p.cbpf[i].code);
		jw_u64_field(&w, "jt", b->p.cbpf[i].jt);
		jw_u64_field(&w, "jf", b->p.cbpf[i].jf);
		jw_u64_field(&w, "k", b->p.cbpf[i].k);
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	jw_u64_field(&w, "ebpf_insns", b->p.ebpf_len);
	jw_key(&w, "ebpf");
	jw_arr_open(&w);
	for (size_t i = 0; i < b->p.ebpf_len;) {
		i += (size_t)pl_ebpf_insn_str(b->p.ebpf, b->p.ebpf_len, i, line, sizeof(line));
		jw_str(&w, line);
	}
	jw_arr_close(&w);
	jw_bool_field(&w, "verifier_ok", b->fd >= 0);
	if (b->fd < 0) {
		jw_str_field(&w, "verifier_error", strerror(-b->fd));
		jw_str_field(&w, "verifier_log", b->log);	/* its tail; "" if it wrote none */
		jw_str_field(&w, "error", error);
	}
	jw_obj_close(&w);
	jw_end(&w);
}

struct filter_cfg {
	int ctx, dump, count, vlan_meta;
	const char *file;
};

static int do_compile(void *cfg, int argc, char **argv)
{
	const struct filter_cfg *c = cfg;
	struct pl_filter_opts o = { .ctx = c->ctx, .xdp_linear = pl_xdp_linear() };
	struct built b = { .fd = -1 };
	int dump = c->dump, ret;
	char *expr;

	if ((ret = pl_need_caps("filter compile", PL_NEED_BPF)))	/* it loads to verify */
		return ret;
	expr = pl_join_args(argc, argv, 0);
	if (!expr) {
		pl_err("filter compile: %s", strerror(ENOMEM));
		return PL_EXIT_FAIL;
	}
	if (!dump)
		dump = 1;
	ret = build("compile", expr, &o, &b);
	if (ret)
		goto out;
	if (pl_g.json && b.fd < 0) {
		/* one document: the listing with the verifier's verdict and its log */
		char msg[256];

		load_error_msg("compile", o.ctx, &b, msg, sizeof(msg));
		print_compile_json(&b, expr, o.ctx, msg);
		pl_warn("%s", msg);
	} else if (pl_g.json) {
		print_compile_json(&b, expr, o.ctx, NULL);
	} else {
		print_compile_plain(&b, o.ctx, dump);
	}
	if (b.fd < 0) {
		if (!pl_g.json)
			load_error("compile", o.ctx, &b);
		ret = PL_EXIT_FAIL;
	}
out:
	built_free(&b);
	free(expr);
	return ret;
}

/* A growing list of packet indexes (kept for -j only). */
struct idx_list {
	unsigned int *v;
	size_t n, cap;
};

struct run_result {
	unsigned int packets, count, skipped;
	struct idx_list matches, skips;
};

static int idx_add(struct idx_list *l, unsigned int idx)
{
	unsigned int *v = pl_grown(l->v, &l->cap, l->n, sizeof(*v), 256);

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = idx;
	return 0;
}

static void idx_json(struct jw *w, const char *key, const struct idx_list *l)
{
	jw_key(w, key);
	jw_arr_open(w);
	for (size_t i = 0; i < l->n; i++)
		jw_u64(w, l->v[i]);
	jw_arr_close(w);
}

/* Every packet of @p through the program; prints plain matches as they come. */
static int run_packets(struct pl_pcap *p, const char *file, int fd,
		       const struct pl_filter_opts *o, bool count_only, struct run_result *r)
{
	uint32_t caplen, wirelen;
	const uint8_t *data;
	char err[512];
	bool match;
	int ret;

	while ((ret = pl_pcap_next(p, &data, &caplen, &wirelen, err, sizeof(err))) == 1) {
		r->packets++;
		ret = pl_ebpf_run(fd, o, data, caplen, wirelen, &match);
		if (ret == -EMSGSIZE) {
			r->skipped++;
			if (pl_g.json && idx_add(&r->skips, r->packets))
				goto nomem;
			continue;
		}
		if (ret) {
			pl_err("filter run: '%s' packet %u: BPF_PROG_TEST_RUN: %s", file,
			       r->packets, strerror(-ret));
			return PL_EXIT_FAIL;
		}
		if (!match)
			continue;
		r->count++;
		if (pl_g.json && idx_add(&r->matches, r->packets))
			goto nomem;
		if (!pl_g.json && !count_only)
			printf("%u\n", r->packets);
	}
	if (ret < 0) {
		pl_err("filter run: '%s': %s (after %u packets)", file, err, r->packets);
		return PL_EXIT_USAGE;
	}
	return PL_EXIT_OK;
nomem:
	pl_err("filter run: %s", strerror(ENOMEM));
	return PL_EXIT_FAIL;
}

static void print_run_json(const struct run_result *r, const char *expr, const char *file,
			   enum pl_filter_ctx ctx)
{
	struct jw w;

	jw_init(&w, stdout, pl_g.pretty);
	jw_obj_open(&w);
	jw_str_field(&w, "expression", expr);
	jw_str_field(&w, "file", file);
	jw_str_field(&w, "ctx", pl_filter_ctx_name(ctx));
	idx_json(&w, "matches", &r->matches);
	jw_u64_field(&w, "count", r->count);
	jw_u64_field(&w, "packets", r->packets);
	jw_u64_field(&w, "skipped", r->skipped);
	idx_json(&w, "skipped_packets", &r->skips);
	jw_obj_close(&w);
	jw_end(&w);
}

static int open_capture(const char *file, struct pl_pcap **p)
{
	char err[512];
	int ret;

	ret = pl_pcap_open(file, p, err, sizeof(err));
	if (!ret)
		return PL_EXIT_OK;
	if (ret == -EPROTONOSUPPORT || ret == -EINVAL)
		pl_err("filter run: '%s': %s", file, err);
	else
		pl_err("filter run: cannot read '%s': %s", file, err);
	return PL_EXIT_CODE(ret, PL_ERR_INPUT);
}

static int do_run(void *cfg, int argc, char **argv)
{
	const struct filter_cfg *c = cfg;
	struct pl_filter_opts o = { .ctx = c->ctx, .test_wirelen = true, .test_vlan_meta = c->vlan_meta,
				    .xdp_linear = pl_xdp_linear(), .test_reach = true };
	struct run_result r = { 0 };
	struct built b = { .fd = -1 };
	const char *file = c->file;
	struct pl_pcap *p = NULL;
	bool count_only = c->count;
	char *expr = NULL;
	int ret;

	if (o.test_vlan_meta && o.ctx != PL_FILTER_TC) {
		pl_err("filter run: --vlan-meta needs --tc (XDP sees VLAN tags in the frame)");
		return PL_EXIT_USAGE;
	}
	/* before 5.14 an XDP test run takes no metadata to carry the wire length in */
	if (o.ctx == PL_FILTER_XDP && !pl_feature(PL_FEAT_XDP_TEST_META))
		o.test_wirelen = false;
	if ((ret = pl_need_caps("filter run", PL_NEED_BPF)))
		return ret;
	expr = pl_join_args(argc, argv, 0);
	if (!expr) {
		pl_err("filter run: %s", strerror(ENOMEM));
		return PL_EXIT_FAIL;
	}
	ret = build("run", expr, &o, &b);
	if (ret)
		goto out;
	if (b.fd < 0) {
		load_error("run", o.ctx, &b);
		ret = PL_EXIT_FAIL;
		goto out;
	}
	ret = open_capture(file, &p);
	if (ret)
		goto out;
	ret = run_packets(p, file, b.fd, &o, count_only, &r);
	if (ret)
		goto out;
	if (r.skipped)
		pl_info("filter run: '%s': %u of %u packets skipped (%s)", file, r.skipped,
			r.packets, o.ctx == PL_FILTER_TC ?
			"shorter than 14 bytes or its IP header, or longer than a page" :
			"shorter than 14 bytes, too long for a test run, or read past 64 KiB");
	if (pl_g.json)
		print_run_json(&r, expr, file, o.ctx);
	else if (count_only)
		printf("%u\n", r.count);
out:
	pl_pcap_close(p);
	built_free(&b);
	free(r.matches.v);
	free(r.skips.v);
	free(expr);
	return ret;
}

static void print_set(const struct pl_chain *c, const char *ifname, const char *old, bool set)
{
	const char *hooks[PL_SLOT_MAX];
	size_t n = pl_chain_hooks(c, hooks);

	pl_print_start();
	pl_print_obj_open(NULL);
	pl_print_name("interface", "%s: ", ifname);
	pl_print_str("expression", "filter '%s' chained on ", set ? c->meta.filter_expr : NULL);
	if (!set)
		pl_print_text(old ? "filter '%s' removed" : "no filter was set", old);
	pl_print_str("previous", NULL, old);
	pl_print_arr_open("hooks");
	for (size_t i = 0; i < n; i++) {
		pl_print_text("%s", set && i ? ", " : "");
		pl_print_str(NULL, set ? "%s" : NULL, hooks[i]);
	}
	pl_print_arr_close();
	if (set && old)
		pl_print_text(" (replaced '%s')", old);
	pl_print_text("\n");
	pl_print_obj_close();
	pl_print_end();
}

/* filter set DEV EXPR | filter clear DEV */
static int set_or_clear(int argc, char **argv, bool set)
{
	const char *verb = set ? "filter set" : "filter clear";
	struct pl_chain c = { -1, -1, -1, -1, {}, false, "" };
	struct pl_attachment *a = NULL;
	char why[PL_WHY_LEN * 4], *expr = NULL, *old = NULL;
	size_t n;
	int err, ret;

	if (set) {
		/* "--" ends the options (getopt stops at DEV, so it comes after DEV here) */
		int from = !strcmp(argv[1], "--") ? 2 : 1;

		if (from >= argc) {
			pl_err("%s: needs DEV and an expression", verb);
			return PL_EXIT_USAGE;
		}
		expr = pl_join_args(argc, argv, from);
		if (!expr) {
			pl_err("%s: %s", verb, strerror(ENOMEM));
			return PL_EXIT_FAIL;
		}
	}
	/* set loads the chain's counting programs */
	ret = pl_need_caps(verb, PL_NEED_BPF | (set ? PL_NEED_PERFMON : 0));
	if (!ret)
		ret = pl_lock_changes(verb);
	if (!ret)
		ret = pl_select(verb, argv[0], &a, &n);
	if (!ret && set)	/* nothing would run it; clear may tidy up */
		ret = pl_refuse_gone(verb, a);
	if (ret)
		goto out;
	err = pl_chain_open(a->dir, &c);
	if (err) {
		ret = pl_open_error(verb, a, err);
		goto out;
	}
	if (c.meta.filter_set)
		old = strdup(c.meta.filter_expr);
	err = set ? pl_chain_set(&c, expr, why, sizeof(why)) : pl_chain_clear(&c, why, sizeof(why));
	if (err) {
		if (err == -EINVAL || err == -EOPNOTSUPP)
			pl_err("%s: %s: expression '%s': %s", verb, a->ifname, expr, why);
		else
			pl_err("%s: %s: %s", verb, a->ifname, why);
		ret = PL_EXIT_CODE(err, EINVAL, EOPNOTSUPP, E2BIG);
		goto out;
	}
	print_set(&c, a->ifname, old, set);
out:
	pl_chain_close(&c);
	free(a);
	free(expr);
	free(old);
	return ret;
}

static int do_set(void *cfg, int argc, char **argv)
{
	(void)cfg;
	return set_or_clear(argc, argv, true);
}

static int do_clear(void *cfg, int argc, char **argv)
{
	(void)cfg;
	return set_or_clear(argc, argv, false);
}

static const struct pl_opt compile_opts[] = {
	{ .name = "tc", .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, ctx), .val = PL_FILTER_TC,
	  .help = "translate for tc (sched_cls) instead of XDP" },
	{ .name = "xdp", .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, ctx), .val = PL_FILTER_XDP,
	  .flags = PL_OPT_HIDDEN },	/* the default */
	{ .short_name = 'd', .type = PL_OPT_COUNT, PL_FIELD(struct filter_cfg, dump), .syn = "-d|-dd|-ddd",
	  .help = "-d, -dd or -ddd: classic BPF as tcpdump prints it (-dd: C array, -ddd: decimal)" },
	{ NULL },
};

static const struct pl_opt run_opts[] = {
	{ .name = "read", .short_name = 'r', .type = PL_OPT_STRING, PL_FIELD(struct filter_cfg, file),
	  .arg = "FILE", .flags = PL_OPT_SHORT | PL_OPT_REQUIRED, .syn = "-r FILE.pcap",
	  .missing = "no capture file (-r FILE.pcap)",
	  .help = "capture to read (pcap or pcapng, Ethernet; - for stdin)" },
	{ .name = "count", .short_name = 'c', .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, count),
	  .val = 1, .help = "print only the number of matching packets" },
	{ .name = "tc", .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, ctx), .val = PL_FILTER_TC,
	  .syn = "--tc [--vlan-meta]", .help = "translate for tc (sched_cls) instead of XDP" },
	{ .name = "xdp", .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, ctx), .val = PL_FILTER_XDP,
	  .flags = PL_OPT_HIDDEN },
	{ .name = "vlan-meta", .type = PL_OPT_FLAG, PL_FIELD(struct filter_cfg, vlan_meta), .val = 1,
	  .syn = "",	/* in --tc's: [--tc [--vlan-meta]] */
	  .help = "with --tc: hand the program each frame's outer VLAN tag in skb metadata, as the "
		  "kernel does before tc ingress" },
	{ NULL },
};

static const struct pl_cmd filter_compile = {
	.name = "compile", .args = "'EXPR'", .args_last = true, .opts = compile_opts,
	.cfg_size = sizeof(struct filter_cfg), .min_args = 1, .max_args = -1,
	.few = "no expression (see pktlens filter --help)", .fn = do_compile,
	.about = "compile  print the classic BPF like tcpdump -d (-dd: C array, -ddd: decimal),\n"
		 "         then the eBPF, its instruction count, and whether the verifier\n"
		 "         accepts it (-j: {expression, cbpf, ebpf_insns, ebpf, verifier_ok, ...})\n",
};

static const struct pl_cmd filter_run = {
	.name = "run", .args = "'EXPR'", .args_last = true, .opts = run_opts,
	.cfg_size = sizeof(struct filter_cfg), .min_args = 1, .max_args = -1, .fn = do_run,
	.few = "no expression (see pktlens filter --help)",
	.about = "run      run the program on every packet of a capture with BPF_PROG_TEST_RUN\n"
		 "         and print the 1-based index of each match (-j: {matches, count,\n"
		 "         packets, skipped, skipped_packets})\n",
};

static const struct pl_cmd filter_set = {
	.name = "set", .args = "DEV 'EXPR'", .fn = do_set, .flags = PL_CMD_STOP,
	.min_args = 2, .max_args = -1, .few = "needs DEV and an expression",
	.about = "set      chain the expression into every hook pktlens has attached on DEV:\n"
		 "         `stats` then counts the packets and bytes it matches per hook.\n"
		 "         Replaces the previous expression in one step per hook; counters\n"
		 "         are kept. Traffic is never changed.\n",
};

static const struct pl_cmd filter_clear = {
	.name = "clear", .args = "DEV", .fn = do_clear, .flags = PL_CMD_STOP,
	.min_args = 1, .max_args = 1, .few = "needs DEV",
	.about = "clear    unchain the expression from DEV\n",
};

const struct pl_cmd pl_cmd_filter = {
	.name = "filter",
	.subs = (const struct pl_cmd *const[]){ &filter_compile, &filter_run, &filter_set,
						&filter_clear, NULL },
	.about = "tcpdump expressions are compiled by libpcap for Ethernet into classic BPF,\n"
		 "translated to an eBPF program for XDP (default) or tc (--tc) and loaded\n"
		 "through the kernel verifier. A program returns 1 for a match, 0 otherwise.\n",
	.more = "Packets the kernel cannot test-run are skipped (never listed, counted as\n"
		"\"skipped\"): shorter than an Ethernet header (14 bytes; no XDP or tc\n"
		"program sees those), with XDP where the expression reads past 64 KiB of\n"
		"a longer frame (no XDP program can: bpf_xdp_load_bytes() takes offsets\n"
		"up to 65535), and with --tc longer than a page or cut inside the\n"
		"IPv4/IPv6 header. A truncated capture (caplen < length) runs on its\n"
		"captured bytes while `len` still gives the original length, as in libpcap.\n"
		"\n"
		"On tc the kernel may hold a frame's outer VLAN tag in skb metadata (always\n"
		"on ingress); the tc program then reads the frame with the tag put back, so\n"
		"it matches as libpcap does on the wire.\n",
};
