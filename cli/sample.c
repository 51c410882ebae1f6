// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens sample DEV [-w FILE|-] [-c N] [--snaplen N] [--every N] [--in|--out] ['EXPR']
 *
 * Captures through the attached programs (bpf/sample.h, loader/sample.c):
 * no second program on the interface. Records come from a BPF ring buffer
 * and go to a pcap or pcapng file (pcap/dump.c) or, without -w, to one line
 * per packet. At the end every packet is accounted for: selected, sampled,
 * written, lost because the ring was full, and (-c) left unwritten.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "common.h"
#include "util.h"
#include "../export/format.h"
#include "../export/pktline.h"
#include "../pcap/cbpf.h"
#include "../pcap/dump.h"

#define SAMPLE_USAGE \
	"Usage: pktlens sample DEV [-w FILE|-] [-c N] [-s|--snaplen N] [--every N] [--in|--out]\n" \
	"                          [-B|--buffer-size KiB] [--pcapng] [--duration SECS] [-j]\n" \
	"                          ['EXPR' | --policy]\n"

#define DEFAULT_RING_KIB 4096U
#define POLL_MS 10			/* drain the ring at least this often */
#define FLUSH_NS 100000000ULL		/* and write the file out every 100 ms */
#define MAX_RING_KIB (1U << 20)

static void sample_usage(FILE *f)
{
	fputs(SAMPLE_USAGE, f);
	fprintf(f, "\nCapture packets in the kernel, through the programs `pktlens attach` put on DEV,\n"
	      "into a pcap file tcpdump and Wireshark read.\n\n"
	      "  -w FILE              write pcap (nanosecond timestamps) to FILE; '-': standard output;\n"
	      "                       FILE ending in .pcapng (or --pcapng): pcapng, with one interface\n"
	      "                       per hook (DEV@xdp, DEV@tc), direction and verdict per packet\n"
	      "                       without -w: one line per packet, like tcpdump -n (-j: JSON lines)\n"
	      "  -c N                 stop after writing N packets\n"
	      "  -s, --snaplen N      bytes kept per packet, 1..262144 (default 262144)\n"
	      "  --every N            keep 1 in N of the matching packets: every Nth on each CPU\n"
	      "  --in, --out          ingress or egress only (default both: ingress at XDP if\n"
	      "                       attached, else tc; egress at tc)\n"
	      "  -B, --buffer-size KiB  ring buffer size, rounded up to a power of two (default %u)\n"
	      "  --pcapng             write pcapng whatever FILE is called\n"
	      "  --duration SECS      stop after SECS seconds\n"
	      "  --policy             capture what policy --sample 1/N rules choose (tagged with the\n"
	      "                       rule id) instead of an own selection\n"
	      "  EXPR                 tcpdump filter expression, run in the kernel (default: all)\n\n"
	      "Ends on -c, --duration, Ctrl-C or SIGTERM, and then prints how many packets\n"
	      "matched, were sampled, were written and were lost because the ring was full.\n",
	      DEFAULT_RING_KIB);
}

struct run {
	const struct pl_attachment *a;
	struct pl_dump *dump;		/* NULL: print lines */
	uint32_t snaplen;
	uint64_t limit;			/* -c, 0: none */
	uint64_t written, unwritten, bad;
	int64_t mono_to_real;		/* ns */
	bool draining;			/* after the end: count, do not write */
	int write_err;
	struct jw w;
	uint8_t frame[PL_SNAPLEN_MAX + 4];
};

static void print_line(struct run *r, const struct pl_sample_hdr *h, const struct pl_dump_pkt *p)
{
	const char *hook = p->hook == PL_HOOK_XDP ? "xdp" : "tc";
	const char *dir = p->dir == PL_DIR_IN ? "In" : "Out";
	char desc[256], rule[32] = "";
	struct pl_frame_desc fd;
	time_t sec = (time_t)(p->ts_ns / 1000000000ULL);
	struct tm tm;

	pl_frame_dissect(p->data, p->caplen, &fd);
	pl_frame_fmt(&fd, desc, sizeof(desc));
	if (pl_g.json) {
		char a[PL_ADDR_STRLEN];

		jw_obj_open(&r->w);
		jw_u64_field(&r->w, "ts_ns", p->ts_ns);
		jw_name_field(&r->w, "ifname", p->ifname);
		jw_str_field(&r->w, "hook", hook);
		jw_str_field(&r->w, "direction", p->dir == PL_DIR_IN ? "in" : "out");
		jw_str_field(&r->w, "verdict", pl_verdict_names[h->verdict < PL_VERDICT_MAX ?
								 h->verdict : 0]);
		jw_key(&r->w, "rule");
		if (p->rule_id)
			jw_u64(&r->w, p->rule_id);
		else
			jw_null(&r->w);
		jw_u64_field(&r->w, "len", p->wire_len);
		jw_u64_field(&r->w, "caplen", p->caplen);
		jw_key(&r->w, "vlan");
		if (fd.key.vlan != PL_VLAN_NONE)
			jw_u64(&r->w, fd.key.vlan);
		else
			jw_null(&r->w);
		jw_u64_field(&r->w, "ethertype", fd.key.l3proto);
		if (fd.ip) {
			jw_str_field(&r->w, "src", pl_fmt_addr(fd.key.saddr, a, sizeof(a)));
			jw_str_field(&r->w, "dst", pl_fmt_addr(fd.key.daddr, a, sizeof(a)));
			jw_u64_field(&r->w, "proto", fd.key.l4proto);
			if (fd.ports) {
				jw_u64_field(&r->w, "sport", fd.key.sport);
				jw_u64_field(&r->w, "dport", fd.key.dport);
			}
		}
		jw_str_field(&r->w, "summary", desc);
		jw_obj_close(&r->w);
		jw_end(&r->w);
		return;
	}
	localtime_r(&sec, &tm);
	if (p->rule_id)
		snprintf(rule, sizeof(rule), " rule %u", p->rule_id);
	printf("%02d:%02d:%02d.%09llu %s@%s %s %s%s %s, length %u\n", tm.tm_hour, tm.tm_min,
	       tm.tm_sec, (unsigned long long)(p->ts_ns % 1000000000ULL), p->ifname, hook, dir,
	       pl_verdict_names[h->verdict < PL_VERDICT_MAX ? h->verdict : 0], rule, desc,
	       p->wire_len);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct run *r = ctx;
	const struct pl_sample_hdr *h = data;
	const uint8_t *bytes = (const uint8_t *)(h + 1);
	struct pl_dump_pkt p;
	uint32_t caplen;
	int err;

	if (size < sizeof(*h) || h->caplen > size - sizeof(*h) || h->slot >= PL_SLOT_MAX) {
		r->bad++;	/* cannot happen with our programs; counted, never trusted */
		return 0;
	}
	if (r->draining || (r->limit && r->written >= r->limit)) {
		r->unwritten++;
		return 0;
	}
	caplen = h->caplen;
	if (h->flags & PL_SAMPLE_R_VLAN_META && caplen >= 12) {
		/* tc had the tag in metadata: put it back where it was on the wire */
		memcpy(r->frame, bytes, 12);
		r->frame[12] = (uint8_t)(h->vlan_proto >> 8);
		r->frame[13] = (uint8_t)h->vlan_proto;
		r->frame[14] = (uint8_t)(h->vlan_tci >> 8);
		r->frame[15] = (uint8_t)h->vlan_tci;
		memcpy(r->frame + 16, bytes + 12, caplen - 12);
		caplen += 4;
		bytes = r->frame;
		if (caplen > r->snaplen)
			caplen = r->snaplen;
	}
	p = (struct pl_dump_pkt){
		.ts_ns = h->ts_ns + (uint64_t)r->mono_to_real,
		.data = bytes,
		.caplen = caplen,
		.wire_len = h->wire_len < caplen ? caplen : h->wire_len,
		.ifname = r->a->ifname,
		.ifindex = h->ifindex,
		.hook = h->slot == PL_SLOT_XDP_IN ? PL_HOOK_XDP : PL_HOOK_TC,
		.dir = h->slot == PL_SLOT_TC_OUT ? PL_DIR_OUT : PL_DIR_IN,
		.verdict = h->verdict,
		.rule_id = h->rule_id,
	};
	if (r->dump) {
		err = pl_dump_write(r->dump, &p);
		if (err) {
			r->write_err = err;
			return err;
		}
	} else {
		print_line(r, h, &p);
	}
	r->written++;
	return r->limit && r->written >= r->limit ? -ECANCELED : 0;
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static int64_t mono_to_real(void)
{
	struct timespec m, t;

	clock_gettime(CLOCK_REALTIME, &t);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)t.tv_sec - m.tv_sec) * 1000000000LL + (t.tv_nsec - m.tv_nsec);
}

static void summary(const struct run *r, const char *ifname,
		    const struct pl_sample_stats c[PL_SLOT_MAX], bool to_stdout)
{
	uint64_t sel = 0, smp = 0, lost = 0;

	for (int i = 0; i < PL_SLOT_MAX; i++) {
		sel += c[i].selected;
		smp += c[i].sampled;
		lost += c[i].lost;
	}
	if (pl_g.json) {
		struct jw w;

		jw_init(&w, to_stdout ? stdout : stderr, pl_g.pretty);
		jw_obj_open(&w);
		jw_name_field(&w, "ifname", ifname);
		jw_u64_field(&w, "matched", sel);
		jw_u64_field(&w, "sampled", smp);
		jw_u64_field(&w, "written", r->written);
		jw_u64_field(&w, "lost", lost);
		jw_u64_field(&w, "unwritten", r->unwritten);
		jw_obj_close(&w);
		jw_end(&w);
		return;
	}
	fprintf(stderr, "pktlens: sample %s: %llu matched, %llu sampled, %llu written, "
		"%llu lost (ring full)", ifname, (unsigned long long)sel, (unsigned long long)smp,
		(unsigned long long)r->written, (unsigned long long)lost);
	if (r->unwritten)
		fprintf(stderr, ", %llu not written (-c %llu reached)",
			(unsigned long long)r->unwritten, (unsigned long long)r->limit);
	fputc('\n', stderr);
}

/* Check the expression before anything is created: compile and translate. */
static int check_expr(const char *expr)
{
	struct sock_filter *cbpf = NULL;
	struct bpf_insn *e = NULL;
	size_t n, en;
	char why[512];
	int err;

	err = pl_cbpf_compile(expr, &cbpf, &n, why, sizeof(why));
	if (!err)
		err = pl_cbpf_translate(cbpf, n, PL_FILTER_XDP, &e, &en, why, sizeof(why));
	free(cbpf);
	free(e);
	if (err == -E2BIG) {
		pl_err("sample: %s", why);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("sample: expression '%s': %s", expr, why);
		return err == -ENOMEM ? PL_EXIT_FAIL : PL_EXIT_USAGE;
	}
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

int do_sample(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "write", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "snaplen", required_argument, NULL, 's' },
		{ "every", required_argument, NULL, 'e' },
		{ "in", no_argument, NULL, 'I' },
		{ "out", no_argument, NULL, 'O' },
		{ "buffer-size", required_argument, NULL, 'B' },
		{ "pcapng", no_argument, NULL, 'g' },
		{ "duration", required_argument, NULL, 'd' },
		{ "policy", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pl_sample_opts so = { .every = 1, .snaplen = PL_SNAPLEN_MAX };
	struct pl_sample_stats counts[PL_SLOT_MAX];
	struct pl_sampler s;
	bool opened = false;
	struct pl_attachment *a = NULL;
	struct ring_buffer *rb = NULL;
	const char *path = NULL;
	uint32_t ring_kib = DEFAULT_RING_KIB;
	uint64_t duration = 0, u;
	bool pcapng = false, created = false;
	struct run *r = NULL;
	char why[PL_WHY_LEN + 512];
	char *expr = NULL;
	size_t n;
	int opt, err, ret = PL_EXIT_OK;
	uint64_t t0, last_flush;

	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "w:c:s:B:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			path = optarg;
			break;
		case 'c':
			if (pl_parse_u64(optarg, 1, UINT64_MAX, &u)) {
				pl_err("sample: -c '%s': not a packet count >= 1", optarg);
				return PL_EXIT_USAGE;
			}
			if (!r && !(r = calloc(1, sizeof(*r)))) {
				pl_err("sample: %s", strerror(ENOMEM));
				return PL_EXIT_FAIL;
			}
			r->limit = u;
			break;
		case 's':
			if (pl_parse_u32(optarg, 1, PL_SNAPLEN_MAX, &so.snaplen)) {
				pl_err("sample: --snaplen '%s': not in 1..%u", optarg, PL_SNAPLEN_MAX);
				goto usage;
			}
			break;
		case 'e':
			if (pl_parse_u32(optarg, 1, UINT32_MAX, &so.every)) {
				pl_err("sample: --every '%s': not a number in 1..%u", optarg, UINT32_MAX);
				goto usage;
			}
			break;
		case 'I':
			so.dirs |= 1U << PL_DIR_IN;
			break;
		case 'O':
			so.dirs |= 1U << PL_DIR_OUT;
			break;
		case 'B':
			if (pl_parse_u32(optarg, 4, MAX_RING_KIB, &ring_kib)) {
				pl_err("sample: --buffer-size '%s': not in 4..%u KiB", optarg,
				       MAX_RING_KIB);
				goto usage;
			}
			break;
		case 'g':
			pcapng = true;
			break;
		case 'd':
			if (pl_parse_duration("sample", optarg, &duration))
				goto usage;
			break;
		case 'P':
			so.policy = true;
			break;
		case 'j':
			pl_g.json = true;
			break;
		case 'h':
			free(r);
			sample_usage(stdout);
			return PL_EXIT_OK;
		default:
			fputs(SAMPLE_USAGE, stderr);
			goto usage;
		}
	}
	if (!r && !(r = calloc(1, sizeof(*r)))) {
		pl_err("sample: %s", strerror(ENOMEM));
		return PL_EXIT_FAIL;
	}
	if (optind >= argc) {
		pl_err("sample: needs DEV");
		goto usage;
	}
	if (!so.dirs)
		so.dirs = (1U << PL_DIR_IN) | (1U << PL_DIR_OUT);
	if (optind + 1 < argc) {
		expr = pl_join_args(argc, argv, optind + 1);
		if (!expr) {
			pl_err("sample: %s", strerror(ENOMEM));
			ret = PL_EXIT_FAIL;
			goto out;
		}
		if (so.policy) {
			pl_err("sample: --policy takes what the rules choose: no expression ('%s')",
			       expr);
			goto usage;
		}
		if ((ret = check_expr(expr)))
			goto out;
		so.expr = expr;
	}
	if (so.policy && so.every != 1) {
		pl_err("sample: --policy: the rules' --sample 1/N choose already, no --every");
		goto usage;
	}
	/* the ring: a power of two of pages */
	so.ring_bytes = (uint32_t)sysconf(_SC_PAGESIZE);
	while (so.ring_bytes < ring_kib * 1024U)
		so.ring_bytes <<= 1;
	r->snaplen = so.snaplen;

	ret = pl_need_caps("sample", PL_NEED_BPF);
	if (!ret)
		ret = pl_select("sample", argv[optind], &a, &n);
	if (ret)
		goto out;
	r->a = a;
	err = pl_sample_open(a->dir, &s);
	opened = !err;
	if (err) {
		pl_err("sample: %s: cannot open pinned maps in %s: %s%s", a->ifname, a->dir,
		       strerror(-err), err == -ENOENT ? " (attached by an older pktlens? "
		       "pktlens attach --force)" : "");
		ret = PL_EXIT_FAIL;
		goto out;
	}
	if (path) {
		enum pl_dump_fmt fmt = pcapng || ends_with(path, ".pcapng") ? PL_DUMP_PCAPNG :
									     PL_DUMP_PCAP;

		created = strcmp(path, "-") && access(path, F_OK);
		err = pl_dump_open(path, fmt, so.snaplen, &r->dump, why, sizeof(why));
		if (err) {
			pl_err("sample: cannot write '%s': %s", path, why);
			ret = PL_EXIT_USAGE;
			goto out;
		}
	}
	err = pl_sample_start(&s, &so, why, sizeof(why));
	if (err) {
		pl_err("sample: %s: %s", a->ifname, why);
		ret = err == -EINVAL || err == -ENOTSUP ? PL_EXIT_USAGE : PL_EXIT_FAIL;
		goto out;
	}
	rb = ring_buffer__new(s.ring_fd, on_record, r, NULL);
	if (!rb) {
		pl_err("sample: %s: cannot map the ring buffer: %s", a->ifname, strerror(errno));
		ret = PL_EXIT_FAIL;
		goto out;
	}
	r->mono_to_real = mono_to_real();
	jw_init(&r->w, stdout, false);
	pl_catch_stop(true);
	signal(SIGPIPE, SIG_IGN);	/* a closed pipe is a write error, then the end */
	if (!pl_g.json)
		pl_info("sample: %s: capturing%s%s%s, snaplen %u%s", a->ifname,
			expr ? " '" : "", expr ? expr : "", expr ? "'" : "", so.snaplen,
			so.policy ? ", what policy --sample rules choose" : "");
	t0 = last_flush = mono_ns();
	while (!pl_stop) {
		uint64_t now;

		/* the kernel wakes us only when the ring fills up: drain it every POLL_MS too */
		err = ring_buffer__poll(rb, POLL_MS);
		if (err >= 0 || err == -EINTR)
			err = ring_buffer__consume(rb);
		if (err == -ECANCELED || r->write_err)
			break;
		if (err < 0 && err != -EINTR) {
			pl_err("sample: %s: reading the ring buffer: %s", a->ifname, strerror(-err));
			ret = PL_EXIT_FAIL;
			break;
		}
		now = mono_ns();
		if (now - last_flush >= FLUSH_NS) {
			struct stat st;

			if (r->dump && pl_dump_flush(r->dump)) {
				r->write_err = -EIO;
				break;
			}
			last_flush = now;
			/* detach or attach --force removed the pin directory we sample */
			if (!fstat(s.dir_fd, &st) && st.st_nlink == 0) {
				pl_err("sample: %s: detached or re-attached while sampling: stopped",
				       a->ifname);
				ret = PL_EXIT_FAIL;
				break;
			}
		}
		if (duration && now - t0 >= duration * 1000000000ULL)
			break;
	}
	/* nothing more can arrive after stop: what is in the ring is all there is */
	pl_sample_stop(&s);
	if (!r->write_err && !(r->limit && r->written >= r->limit))
		ring_buffer__consume(rb);
	r->draining = true;
	ring_buffer__consume(rb);
	if (r->write_err) {
		pl_err("sample: cannot write '%s': %s", path, strerror(-r->write_err));
		ret = PL_EXIT_FAIL;
	}
	err = pl_sample_counts(&s, counts);
	if (err) {
		pl_err("sample: %s: cannot read %s: %s", a->ifname, PL_MAP_SAMPLE_STATS,
		       strerror(-err));
		ret = PL_EXIT_FAIL;
	} else {
		if (r->dump && (err = pl_dump_close(r->dump))) {
			pl_err("sample: cannot write '%s': %s", path, strerror(-err));
			ret = PL_EXIT_FAIL;
		}
		r->dump = NULL;
		summary(r, a->ifname, counts, !(path && !strcmp(path, "-")));
	}
	goto out;
usage:
	ret = PL_EXIT_USAGE;
out:
	ring_buffer__free(rb);
	if (r && r->dump)
		pl_dump_close(r->dump);
	if (created && ret != PL_EXIT_OK && (!r || !r->written))
		unlink(path);	/* failed before capturing anything: leave nothing behind */
	if (opened)
		pl_sample_close(&s);
	free(a);
	free(expr);
	free(r);
	return ret;
}
