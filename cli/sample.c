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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <pktlens/clock.h>
#include <pktlens/why.h>

#include "cli.h"
#include "common.h"
#include "rotate.h"
#include "trigger.h"
#include "util.h"
#include "../export/format.h"
#include "../export/pktline.h"
#include "../loader/features.h"
#include "../pcap/cbpf.h"
#include "../pcap/dump.h"
#include "../pcap/out.h"

#define DEFAULT_RING_KIB 4096U
#define POLL_MS 10			/* drain the ring at least this often */
#define FLUSH_NS 100000000ULL		/* and write the file out every 100 ms */
#define MAX_RING_KIB (1U << 20)

struct run {
	const struct pl_attachment *a;
	uint32_t ifindex;		/* a's interface, 0: not known */
	struct pl_out *out;		/* the file, pipe or terminal written */
	struct pl_dump *dump;		/* NULL: print lines */
	uint32_t snaplen;
	uint64_t limit;			/* -c, 0: none */
	uint64_t handed;		/* packets given to the output */
	uint64_t written, unwritten, bad;	/* written: what reached the file or reader */
	int64_t mono_to_real;		/* ns */
	bool draining;			/* after the end: count, do not write */
	bool no_reader;			/* the FIFO's reader never came before the end */
	uint64_t end_ns;		/* CLOCK_MONOTONIC: the capture ends (--duration, a stop); 0: not yet known */
	int write_err;			/* the output failed (-EPIPE: its reader went away) */
	struct pl_rot *rot;		/* -C/-G: out and dump are the current file's; else NULL */
	char rot_why[PL_WHY_LEN + 512];	/* why a rotation failed */
	uint64_t firings;		/* --when: times it fired */
	uint64_t skipped;		/* --when: firings another sampler had the interface for */
	bool busy;			/* --when: the last firing found it so (said once a streak) */
	const char *expr;		/* for the "capturing" line */
	bool policy;
	bool dirs_default;		/* no --in, --out or XDP hook: both directions wanted */
	bool hook_tc;			/* --hook tc: ingress at tc only */
	bool said_dirs;			/* a direction no hook takes was said (once) */
	struct pl_sampler *sampler;	/* renews its lease while the output waits too */
	uint8_t frame[PL_SNAPLEN_MAX + 4];
};

/* One line (-j: one JSON object) per packet, as one record of the output. */
static int print_line(struct run *r, const struct pl_sample_hdr *h, const struct pl_dump_pkt *p)
{
	const char *hook = p->hook == PL_HOOK_XDP ? "xdp" : "tc";
	const char *dir = p->dir == PL_DIR_IN ? "In" : "Out";
	char desc[256], rule[32] = "";
	struct pl_frame_desc fd;
	time_t sec = (time_t)(p->ts_ns / 1000000000ULL);
	struct tm tm;
	struct iovec iov = { 0 };
	FILE *f = open_memstream((char **)&iov.iov_base, &iov.iov_len);
	int err;

	if (!f)
		return -ENOMEM;
	pl_frame_dissect(p->data, p->caplen, &fd);
	pl_frame_fmt(&fd, desc, sizeof(desc));
	if (pl_g.json) {
		char a[PL_ADDR_STRLEN];
		struct jw w;

		jw_init(&w, f, false);
		jw_obj_open(&w);
		jw_u64_field(&w, "ts_ns", p->ts_ns);
		jw_name_field(&w, "ifname", p->ifname);
		jw_str_field(&w, "hook", hook);
		jw_str_field(&w, "direction", p->dir == PL_DIR_IN ? "in" : "out");
		jw_str_field(&w, "verdict", pl_verdict_names[h->verdict < PL_VERDICT_MAX ?
								 h->verdict : 0]);
		jw_key(&w, "rule");
		if (p->rule_id)
			jw_u64(&w, p->rule_id);
		else
			jw_null(&w);
		jw_u64_field(&w, "len", p->wire_len);
		jw_u64_field(&w, "caplen", p->caplen);
		jw_key(&w, "vlan");
		if (fd.key.vlan != PL_VLAN_NONE)
			jw_u64(&w, fd.key.vlan);
		else
			jw_null(&w);
		jw_key(&w, "ethertype");	/* null: the snap length cut it off */
		if (fd.cut)
			jw_null(&w);
		else
			jw_u64(&w, fd.key.l3proto);
		if (fd.ip) {
			jw_str_field(&w, "src", pl_fmt_key_addr(&fd.key, fd.key.saddr, a, sizeof(a)));
			jw_str_field(&w, "dst", pl_fmt_key_addr(&fd.key, fd.key.daddr, a, sizeof(a)));
			jw_u64_field(&w, "proto", fd.key.l4proto);
			/* ICMP has no ports: its type and code, named as flows -j names them */
			if (fd.ports && (fd.key.l4proto == 1 || fd.key.l4proto == 58)) {
				jw_u64_field(&w, "icmp_type", fd.key.sport);
				jw_u64_field(&w, "icmp_code", fd.key.dport);
			} else if (fd.ports) {
				jw_u64_field(&w, "sport", fd.key.sport);
				jw_u64_field(&w, "dport", fd.key.dport);
			}
		}
		jw_str_field(&w, "summary", desc);
		jw_obj_close(&w);
		jw_end(&w);
	} else {
		localtime_r(&sec, &tm);
		if (p->rule_id)
			snprintf(rule, sizeof(rule), " rule %u", p->rule_id);
		fprintf(f, "%02d:%02d:%02d.%09llu %s@%s %s %s%s %s, length %u\n", tm.tm_hour,
			tm.tm_min, tm.tm_sec, (unsigned long long)(p->ts_ns % 1000000000ULL),
			PL_NAME(p->ifname), hook, dir,
			pl_verdict_names[h->verdict < PL_VERDICT_MAX ? h->verdict : 0], rule, desc,
			p->wire_len);
	}
	err = fclose(f) ? -ENOMEM : pl_out_rec(r->out, &iov, 1, true);
	free(iov.iov_base);
	return err;
}

static int renew(struct run *r, struct pl_sampler *s);

/* A write waits for a slow reader: the sampler is still there, its lease goes on. */
static void renew_waiting(void *ctx)
{
	struct run *r = ctx;

	if (r->sampler)
		renew(r, r->sampler);
}

/* The output written from now on (@out, NULL: none left): renewing the lease while it waits. */
static void set_out(struct run *r, struct pl_out *out)
{
	r->out = out;
	if (out && r->sampler)
		pl_out_on_wait(out, renew_waiting, r);
}

/* -C/-G: close the file and go on in the next one. */
static int rotate(struct run *r)
{
	int err = pl_rot_next(r->rot, r->rot_why, sizeof(r->rot_why));

	set_out(r, r->rot->out);
	r->dump = r->rot->dump;
	if (err)
		r->write_err = err;
	return err;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct run *r = ctx;
	const struct pl_sample_hdr *h = data;
	const uint8_t *bytes = (const uint8_t *)(h + 1);
	struct pl_dump_pkt p;
	uint64_t now;
	uint32_t caplen;
	int err;

	if (size < sizeof(*h) || h->caplen > size - sizeof(*h) || h->slot >= PL_SLOT_MAX) {
		r->bad++;	/* cannot happen with our programs; counted, never trusted */
		return 0;
	}
	if (r->draining || r->write_err || (r->limit && r->handed >= r->limit)) {
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
	/* -G: from the end on (what the ring holds then, the last moments' poll) no new file */
	now = pl_mono_ns();
	if (r->rot && r->end_ns && now >= r->end_ns)
		now = r->rot->period_ns;
	if (r->rot && pl_rot_due(r->rot, true, now) &&
	    (err = rotate(r))) {
		r->unwritten++;
		return err;
	}
	err = r->dump ? pl_dump_write(r->dump, &p) : print_line(r, h, &p);
	if (err) {
		r->unwritten++;
		r->write_err = err;
		return err;
	}
	r->handed++;
	return r->limit && r->handed >= r->limit ? -ECANCELED : 0;
}

/* Why packets were left unwritten, for the summary. */
static const char *unwritten_why(const struct run *r, char *buf, size_t len)
{
	if (r->no_reader)
		return "no reader opened the FIFO";
	if (r->write_err == -EPIPE)
		return "the reader went away";
	if (r->rot && r->rot->next_failed)
		return "the next file could not be made";
	if (r->write_err)
		return "the output failed";
	snprintf(buf, len, "-c %llu reached", (unsigned long long)r->limit);
	return buf;
}

/*
 * The summary: on stdout under -j, unless stdout carries the capture or its
 * reader is gone. With --when (@when) also how often it fired, none too.
 */
static void summary(const struct run *r, const char *ifname, const char *cap_desc,
		    const struct pl_sample_stats c[PL_SLOT_MAX], bool when, bool json, bool to_stdout)
{
	uint64_t sel = 0, smp = 0, lost = 0;
	char why[64];

	for (int i = 0; i < PL_SLOT_MAX; i++) {
		sel += c[i].selected;
		smp += c[i].sampled;
		lost += c[i].lost;
	}
	if (json) {
		struct jw w;

		jw_init(&w, to_stdout ? stdout : stderr, pl_g.pretty);
		jw_obj_open(&w);
		jw_name_field(&w, "ifname", ifname);
		/* not attached: what was attached for the capture (the first line without -j) */
		jw_bool_field(&w, "attached", !*cap_desc);
		if (*cap_desc)
			jw_str_field(&w, "capture_only", cap_desc);
		if (when) {
			jw_u64_field(&w, "firings", r->firings);
			jw_u64_field(&w, "firings_not_captured", r->skipped);
		}
		jw_u64_field(&w, "matched", sel);
		jw_u64_field(&w, "sampled", smp);
		jw_u64_field(&w, "written", r->written);
		jw_u64_field(&w, "lost", lost);
		jw_u64_field(&w, "unwritten", r->unwritten);
		if (r->unwritten)
			jw_str_field(&w, "unwritten_why", unwritten_why(r, why, sizeof(why)));
		jw_obj_close(&w);
		jw_end(&w);
		return;
	}
	fprintf(stderr, "pktlens: sample %s: %llu matched, %llu sampled, %llu written, "
		"%llu lost (ring full)", PL_NAME(ifname), (unsigned long long)sel, (unsigned long long)smp,
		(unsigned long long)r->written, (unsigned long long)lost);
	if (r->unwritten)
		fprintf(stderr, ", %llu not written (%s)", (unsigned long long)r->unwritten,
			unwritten_why(r, why, sizeof(why)));
	if (when)
		fprintf(stderr, "; --when fired %llu time%s", (unsigned long long)r->firings,
			r->firings == 1 ? "" : "s");
	if (when && r->skipped)
		fprintf(stderr, " (%llu while another sampler had the interface: not captured)",
			(unsigned long long)r->skipped);
	fputc('\n', stderr);
}

void pl_sampler_summary(struct jw *w, bool line, const char *cmd, const struct pl_attachment *a)
{
	static bool said;
	struct pl_sample_owner o;
	const char *state;
	int err = pl_sample_owner(a->dir, true, &o);

	/*
	 * -ENOENT: attached by a pktlens before samples; -EPROTO: another one's
	 * pins. Else said once a command: what fails for one attachment (no
	 * descriptor left) fails for the next, and the view goes on without it
	 */
	if (err && err != -ENOENT && err != -EPROTO && !said) {
		pl_err("%s: %s: cannot read who samples it: %s", cmd, a->ifname, strerror(-err));
		said = true;
	}
	if (o.reaped)
		pl_info("%s: %s: pktlens sample (pid %u) is gone (killed): its capture was left "
			"on the interface and is taken out now", cmd, a->ifname, o.pid);
	state = o.reaped ? "gone" : !o.live ? NULL : !o.sampling ? "starting" :
		o.late_ns ? "stalled" : "capturing";
	if (w) {
		jw_key(w, "sampler");
		if (!state) {
			jw_null(w);
			return;
		}
		jw_obj_open(w);
		jw_u64_field(w, "pid", o.pid);
		jw_str_field(w, "state", state);
		if (o.late_ns)
			jw_u64_field(w, "lease_late_ms", o.late_ns / 1000000);
		jw_obj_close(w);
		return;
	}
	if (!line)
		return;
	if (o.late_ns)
		printf("  sampler   pid %u stalled: its lease ran out %.1f s ago (stopped or stalled), "
		       "nothing captured since\n", o.pid, o.late_ns / 1e9);
	else if (state)
		printf("  sampler   pid %u %s%s\n", o.pid, state,
		       o.reaped ? " (killed): its capture was taken out now" : "");
}

/* Check the expression before anything is created: compile and translate. */
static int check_expr(const char *expr)
{
	const struct pl_filter_opts o = { .ctx = PL_FILTER_XDP, .xdp_linear = pl_xdp_linear() };
	struct pl_filter_prog p;
	char why[512];
	int err;

	err = pl_filter_build(expr, &o, &p, why, sizeof(why));
	pl_filter_prog_free(&p);
	if (err == -E2BIG) {	/* no use repeating all of it */
		pl_err("sample: %s", why);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("sample: expression '%s': %s", expr, why);
		return PL_EXIT_CODE(err, PL_ERR_INPUT);
	}
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

#define MODE_UNSET ((mode_t)-1)	/* no --mode: PL_OUT_MODE */

/* --mode: octal permission bits, as chmod takes them. */
static int parse_mode(const char *s, mode_t *mode)
{
	unsigned long v;
	char *end;

	if (!*s || strspn(s, "01234567") != strlen(s))
		return -EINVAL;
	v = strtoul(s, &end, 8);
	if (v > 0777)
		return -ERANGE;
	*mode = (mode_t)v;
	return 0;
}

/* Every ring buffer record of the snaplen must fit: a smaller ring would only count losses. */
static int check_ring(uint32_t ring_kib, uint32_t ring_bytes, uint32_t snaplen)
{
	uint32_t need = pl_sample_ring_min(snaplen), kib = 1;

	if (ring_bytes >= need)
		return 0;
	while (kib * 1024U < need)
		kib <<= 1;
	pl_err("sample: --buffer-size %u: a %u-byte ring cannot hold one packet of the snaplen "
	       "(%u bytes: a %u-byte record); use -B %u or more, or a smaller --snaplen", ring_kib,
	       ring_bytes, snaplen, need, kib);
	return PL_EXIT_USAGE;
}

/*
 * The directions a capture takes when told neither --in nor --out: both, but
 * on a loopback device every frame sent comes back in, so ingress alone sees
 * each once (libpcap skips loopback's outgoing copies for the same reason).
 * A --policy or --rule capture keeps both: an --out rule's samples and
 * judgements are taken on egress (and a frame is judged by a rule once).
 */
static __u32 default_dirs(const struct pl_link_info *li, bool policy)
{
	if (!policy && li && li->loopback)
		return 1U << PL_DIR_IN;
	return (1U << PL_DIR_IN) | (1U << PL_DIR_OUT);
}

/*
 * pl_iface_gone(), said for @ifname, gone while @doing: as tcpdump's "The
 * interface disappeared", nothing more can come.
 */
static bool dev_gone(uint32_t ifindex, const char *ifname, const char *doing)
{
	if (!pl_iface_gone(ifindex))
		return false;
	pl_err("sample: %s: the interface is gone (deleted, or moved to another network "
	       "namespace) while %s: stopped", ifname, doing);
	return true;
}

/*
 * Renew the sampler's lease (PL_SAMPLE_LEASE_MS, loader/sample.c). One
 * that had run out (this process was stopped, or stalled or kept waiting:
 * a slow reader, a FIFO's wait for one) means the programs took nothing in
 * the meantime: said, as the capture goes on.
 */
static int renew(struct run *r, struct pl_sampler *s)
{
	__u64 late;
	int err = pl_sample_renew(s, &late);

	if (err) {
		pl_err("sample: %s: cannot renew the capture's lease: %s", r->a->ifname,
		       strerror(-err));
		return PL_EXIT_FAIL;
	}
	if (late)
		pl_err("sample: %s: nothing captured for %.1f s: this sampler was stopped, "
		       "stalled or kept waiting past its %u ms lease; capturing again",
		       r->a->ifname, late / 1e9, PL_SAMPLE_LEASE_MS);
	return 0;
}

/* Drain the ring and write out every POLL_MS and FLUSH_NS until something ends the capture. */
static int capture(struct run *r, struct ring_buffer *rb, struct pl_sampler *s,
		   uint64_t duration)
{
	uint64_t t0, last_flush, last_renew;
	int err;

	if ((err = renew(r, s)))
		return err;
	r->sampler = s;
	set_out(r, r->out);
	t0 = last_flush = last_renew = pl_mono_ns();
	/* -G's periods count from here, as --duration does: they end together */
	if (r->rot)
		r->rot->period_ns = t0;
	r->end_ns = duration ? t0 + duration * 1000000000ULL : 0;	/* t0: as -G's */
	while (!pl_stop) {
		uint64_t now;

		/* the kernel wakes us only when the ring fills up: drain it every POLL_MS too */
		err = ring_buffer__poll(rb, pl_deadline_ms(r->end_ns, POLL_MS));
		if (err >= 0 || err == -EINTR)
			err = ring_buffer__consume(rb);
		if (err == -ECANCELED || r->write_err)
			return 0;
		if (err < 0 && err != -EINTR) {
			pl_err("sample: %s: reading the ring buffer: %s", r->a->ifname, strerror(-err));
			return PL_EXIT_FAIL;
		}
		/* a reader that went away ends the capture now, not at the next packet */
		if (pl_out_gone(r->out)) {
			r->write_err = -EPIPE;
			return 0;
		}
		now = pl_mono_ns();
		if (now - last_renew >= PL_SAMPLE_RENEW_MS * 1000000ULL) {
			if ((err = renew(r, s)))
				return err;
			last_renew = now;
		}
		/* the end first: --duration 2 -G 1 makes two files, not a third one left empty */
		if (pl_deadline_passed(r->end_ns))
			return 0;
		/* -G: the period is over, also when nothing arrives */
		if (r->rot && pl_rot_due(r->rot, false, now) && rotate(r))
			return 0;
		if (now - last_flush >= FLUSH_NS) {
			struct stat st;

			if ((err = pl_out_flush(r->out))) {
				r->write_err = err;
				return 0;
			}
			last_flush = now;
			/* detach or attach --force removed the pin directory we sample */
			if (!fstat(s->dir_fd, &st) && st.st_nlink == 0) {
				pl_err("sample: %s: detached or re-attached while sampling: stopped",
				       r->a->ifname);
				return PL_EXIT_FAIL;
			}
			if (dev_gone(r->ifindex, r->a->ifname, "sampling"))
				return PL_EXIT_FAIL;
		}
	}
	return 0;
}

/* pcapng: the interface and hooks @s samples, declared in every file's header. */
static size_t capture_ifs(const struct run *r, const struct pl_sampler *s,
			  struct pl_dump_if ifs[2])
{
	size_t n = 0;

	if (!r->ifindex)
		return 0;	/* each packet brings its IDB */
	if (s->slots & 1U << PL_SLOT_XDP_IN)
		ifs[n++] = (struct pl_dump_if){ r->a->ifname, r->ifindex, PL_HOOK_XDP };
	if (s->slots & (1U << PL_SLOT_TC_IN | 1U << PL_SLOT_TC_OUT))
		ifs[n++] = (struct pl_dump_if){ r->a->ifname, r->ifindex, PL_HOOK_TC };
	return n;
}

/*
 * Both directions wanted (@r->dirs_default) and a hook of the attachment missing
 * for one (XDP alone, --tc in or --tc out): said once, at the end of the
 * "capturing" line (@buf, "" otherwise), as tcpdump shows both directions
 * and a capture of one would look complete.
 */
static const char *missing_dirs(struct run *r, const struct pl_sampler *s, __u32 dirs,
				char *buf, size_t len)
{
	bool in = s->slots & (1U << PL_SLOT_XDP_IN | 1U << PL_SLOT_TC_IN);
	bool out = s->slots & 1U << PL_SLOT_TC_OUT;
	bool no_in = (dirs & 1U << PL_DIR_IN) && !in, no_out = (dirs & 1U << PL_DIR_OUT) && !out;

	*buf = 0;
	if (!r->dirs_default || r->said_dirs || (!no_in && !no_out))
		return buf;
	r->said_dirs = true;
	snprintf(buf, len, " (%s only: %s's attachment has no %s hook; see pktlens attach --tc)",
		 no_out ? "ingress" : "egress", r->a->ifname,
		 no_out ? "tc egress" : r->hook_tc ? "tc ingress" : "XDP or tc ingress");
	return buf;
}

/*
 * The capture ended while its FIFO waited for a reader: stop the sampler and
 * count what it took as not written (the summary says why). Exit 0.
 */
static int no_reader(struct run *r, struct pl_sampler *s, struct ring_buffer **rb,
		     const char *name)
{
	r->no_reader = true;
	if (!*rb)
		*rb = ring_buffer__new(s->ring_fd, on_record, r, NULL);
	pl_sample_stop(s);
	r->draining = true;
	if (*rb)
		ring_buffer__consume(*rb);
	if (!pl_g.json)
		pl_info("sample: %s: no reader opened '%s' before the capture ended: nothing "
			"written", r->a->ifname, name);
	return PL_EXIT_OK;
}

/*
 * Start the sampler, open the output, capture until the end, stop, drain,
 * close the output. The exit code, negated when it did not start (said why).
 */
static int one_capture(struct run *r, struct pl_sampler *s, const struct pl_sample_opts *so,
		       struct pl_rot *rot, struct ring_buffer **rb, uint64_t duration,
		       const char *name, mode_t mode, bool pcapng)
{
	const char *path = rot->pattern;
	char why[PL_WHY_LEN + 512], dirs_note[128];
	uint64_t added = 0, written = 0;
	/* every file of this capture counts, the ones -C/-G closed on the way (and -W removed) too */
	const uint64_t d0 = rot->delivered, a0 = rot->added;
	int err, ret;

	err = pl_sample_start(s, so, why, sizeof(why));
	/*
	 * A trigger that fires while another sampler has the interface (an
	 * operator's sample, the daemon's other trigger) waits for the next
	 * firing: ending would lose that one too (the daemon starts it again
	 * only 5 s later).
	 */
	if (err == -EBUSY && r->firings) {
		if (!r->busy)
			pl_err("sample: %s: fired, but %s: not captured; waiting to fire again",
			       r->a->ifname, why);
		r->busy = true;
		r->skipped++;
		return PL_EXIT_OK;
	}
	if (err) {
		pl_err("sample: %s: %s", r->a->ifname, why);
		return -PL_EXIT_CODE(err, EINVAL, ENOTSUP);
	}
	r->busy = false;
	/* every check passed: now the output (a file under a temporary name until it is complete) */
	rot->nifs = capture_ifs(r, s, rot->ifs);
	if (pl_rot_on(rot)) {
		r->rot = rot;
		err = pl_rot_open(rot, why, sizeof(why));
		r->out = rot->out;
		r->dump = rot->dump;
		if (err) {
			pl_err("sample: cannot write: %s", why);
			return -PL_EXIT_FAIL;
		}
	} else {
		uint64_t deadline = pl_deadline_in(duration);
		/* a FIFO's wait for its reader renews the lease: the ring holds what comes */
		struct pl_out_wait w = { .fn = renew_waiting, .ctx = r };

		r->sampler = s;

		err = pl_out_open(path ? path : "-", mode, &pl_stop, deadline, &w, &r->out, why,
				  sizeof(why));
		/* a FIFO nobody opened to read before the end (a signal, --duration): a stop */
		if (err == -ENXIO && (pl_stop || pl_deadline_passed(deadline)))
			return no_reader(r, s, rb, name);
		if (!err)
			pl_out_stop_on(r->out, &pl_stop);
		if (!err && path) {
			enum pl_dump_fmt fmt = pcapng || ends_with(path, ".pcapng") ?
					       PL_DUMP_PCAPNG : PL_DUMP_PCAP;

			err = pl_dump_open(r->out, fmt, so->snaplen, rot->ifs, rot->nifs, &r->dump);
			if (!err)
				err = pl_out_flush(r->out);
			/* a reader gone before the file's header reached it: as one gone later */
			if (err == -EPIPE) {
				r->write_err = -EPIPE;
				err = 0;
			}
			if (err)
				snprintf(why, sizeof(why), "%s", strerror(-err));
		}
		if (err) {
			pl_err("sample: cannot write '%s': %s", name, why);
			return -PL_EXIT_FAIL;
		}
	}
	if (!*rb)
		*rb = ring_buffer__new(s->ring_fd, on_record, r, NULL);
	if (!*rb) {
		pl_err("sample: %s: cannot map the ring buffer: %s", r->a->ifname, strerror(errno));
		return -PL_EXIT_FAIL;
	}
	err = r->rot ? 0 : pl_out_commit(r->out, why, sizeof(why));
	if (err) {
		pl_err("sample: cannot write '%s': %s", name, why);
		return -PL_EXIT_FAIL;
	}
	r->mono_to_real = pl_epoch_offset_ns();
	if (!pl_g.json)
		pl_info("sample: %s: capturing%s%s%s, snaplen %u%s%s%s%s", r->a->ifname,
			r->expr ? " '" : "", r->expr ? r->expr : "", r->expr ? "'" : "",
			so->snaplen, r->policy ? ", what policy --sample rules choose" : "",
			r->rot ? " into " : "", r->rot ? rot->name : "",
			missing_dirs(r, s, so->dirs, dirs_note, sizeof(dirs_note)));
	ret = capture(r, *rb, s, duration);
	r->sampler = NULL;	/* stopped next: what the drain waits for has no lease to keep */
	r->end_ns = pl_mono_ns();
	/* nothing more can arrive after stop: what is in the ring is all there is */
	pl_sample_stop(s);
	if (!r->write_err && !(r->limit && r->handed >= r->limit))
		ring_buffer__consume(*rb);
	r->draining = true;
	ring_buffer__consume(*rb);
	/* written: what reached the file or the reader; the rest of what was handed over was not */
	if (r->rot) {
		err = pl_rot_close(rot);
		r->out = NULL;
		r->dump = NULL;
		written = rot->delivered - d0;
		added = rot->added - a0;
		if (r->write_err && r->rot_why[0]) {	/* a rotation failed: say why, once */
			pl_err("sample: %s", r->rot_why);
			ret = PL_EXIT_FAIL;
		}
		name = rot->name;
	} else {
		err = pl_out_finish(r->out, &written, &added);
	}
	r->written += written;
	if (err && !r->write_err)
		r->write_err = err;
	r->unwritten += added - written;
	if (r->write_err && r->write_err != -EPIPE && !r->rot_why[0]) {
		pl_err("sample: cannot write '%s': %s", name, r->write_err == -ETIME ?
		       "its reader took nothing for a second after the stop" :
		       strerror(-r->write_err));
		ret = PL_EXIT_FAIL;
	}
	return ret;
}

struct sample_cfg {
	const char *path, *when;
	uint64_t for_secs;
	uint64_t count, duration, rot_mb, rot_secs;
	uint32_t snaplen, every, ring_kib, verdicts, rule, per_flow, rot_keep;
	int dirs, pcapng, policy, hook, xdp, rearm;
	mode_t mode;
};

/* --verdict NAME, repeatable: one more bit of the verdicts kept */
static int parse_verdict_opt(const char *s, void *field, char *why, size_t whylen)
{
	for (int v = 0; v < PL_VERDICT_MAX; v++)
		if (!strcmp(s, pl_verdict_names[v])) {
			*(uint32_t *)field |= 1U << v;
			return 0;
		}
	return pl_why(why, whylen, -EINVAL, "expected pass, drop, redirect, tx or aborted");
}

_Static_assert(PL_SAMPLE_FLOWS_MAX == 16384, "--per-flow's help says 16384 flows");

static const struct pl_choice hook_choices[] = {
	{ "xdp", 1 + PL_HOOK_XDP, false }, { "tc", 1 + PL_HOOK_TC, false }, { NULL, 0, false },
};

/*
 * --rule ID and --when 'rule ID ...' need that rule in DEV's policy, --when
 * 'drops ...' the drop probes: checked once before anything is attached or
 * printed (@dir: the attachment's, NULL: not attached). 0, or the exit code.
 */
static int check_names(const struct sample_cfg *c, struct pl_trig *t, const char *ifname,
		       const char *dir, __u32 dirs)
{
	char why[PL_WHY_LEN + 256];
	struct pl_policy p;
	struct pl_rule rule;
	uint64_t rate;
	int err;

	if (c->rule && dir) {
		err = pl_policy_has_rule(dir, c->rule);
		if (!err && !(err = pl_policy_open(dir, &p))) {
			err = pl_policy_rule_find(&p, c->rule, &rule);
			pl_policy_close(&p);
		}
		if (err == -ENOENT)
			pl_err("sample: %s: --rule %u: no rule %u", ifname, c->rule, c->rule);
		else if (err)
			pl_err("sample: %s: --rule %u: cannot read the policy: %s", ifname, c->rule,
			       strerror(-err));
		if (err)
			return PL_EXIT_CODE(err, ENOENT);
		/* XDP sees ingress only: its capture can never see an --out rule's packets */
		if (c->xdp || c->hook == 1 + PL_HOOK_XDP)
			dirs &= 1U << PL_DIR_IN;
		if (rule.dir < 2 && !(dirs & (1U << rule.dir))) {
			bool out = rule.dir == PL_DIR_OUT;

			pl_err("sample: %s: --rule %u: an --%s rule, and this capture takes %s only",
			       ifname, c->rule, out ? "out" : "in", out ? "ingress" : "egress");
			return PL_EXIT_USAGE;
		}
	}
	if (!c->when)
		return 0;
	err = pl_trig_look(t, ifname, 0, dir, &rate, why, sizeof(why));
	t->n = 0;	/* the window starts with the waiting */
	if (err) {
		pl_err("sample: %s: --when: %s", ifname, why);
		return PL_EXIT_CODE(err, ENOENT);
	}
	return 0;
}

/*
 * --when: look every PL_TRIG_STEP_MS until the condition holds (0) or a signal
 * ends it. @dir_fd: the attachment's pin directory (-1: capture-only). What
 * the condition names was there at the start (check_names()): a rule deleted,
 * a detach or re-attach meanwhile is a failure of the run (exit 1), said as such.
 */
static int wait_trigger(struct pl_trig *t, const char *ifname, uint32_t ifindex,
			const char *dir, int dir_fd, uint64_t fired, bool quiet)
{
	char why[PL_WHY_LEN + 256], waiting[sizeof(t->text) + 16];
	struct stat st;
	uint64_t rate;
	int err;

	/* @quiet: another sampler has the interface, which was said once (one_capture()) */
	snprintf(waiting, sizeof(waiting), "waiting for '%s'", t->text);
	if (!pl_g.json && !quiet)
		pl_info("sample: %s: %s", ifname, waiting);
	while (!pl_stop) {
		/* detach or attach --force removed the pin directory: nothing we set can fire */
		if (dir_fd >= 0 && !fstat(dir_fd, &st) && st.st_nlink == 0) {
			pl_err("sample: %s: detached or re-attached while %s: stopped", ifname,
			       waiting);
			return PL_EXIT_FAIL;
		}
		err = pl_trig_look(t, ifname, ifindex, dir, &rate, why, sizeof(why));
		if (dev_gone(ifindex, ifname, waiting))
			return PL_EXIT_FAIL;
		if (err) {
			pl_err("sample: %s: --when: %s (while waiting): stopped", ifname, why);
			return PL_EXIT_FAIL;
		}
		if (rate > t->above) {
			if (!pl_g.json && !quiet)
				pl_info("sample: %s: '%s' fired: %llu/s", ifname, t->text,
					(unsigned long long)rate);
			return 0;
		}
		usleep(PL_TRIG_STEP_MS * 1000);
	}
	if (!pl_g.json)
		pl_info("sample: %s: '%s' did not fire%s", ifname, t->text,
			fired ? " again" : ": nothing written");
	return 0;
}

/*
 * Frames are read, filtered and written as Ethernet (LINKTYPE_ETHERNET): an
 * interface whose frames have no Ethernet header would give files tcpdump
 * decodes as garbage. 0, or the exit code; an interface not found (@li NULL)
 * is left to the caller.
 */
static int check_ethernet(const struct pl_link_info *li, const char *ifname)
{
	char buf[96];

	if (!li || !pl_link_not_ethernet(li, buf, sizeof(buf)))
		return 0;
	pl_err("sample: %s: %s: pktlens captures Ethernet frames only", ifname, buf);
	return PL_EXIT_USAGE;
}

static int parse_mode_opt(const char *s, void *field, char *why, size_t whylen)
{
	(void)why, (void)whylen;
	return parse_mode(s, field);
}

static int do_sample(void *cfg, int argc, char **argv)
{
	const struct sample_cfg *c = cfg;
	/* -s 0: the largest, as tcpdump has it */
	struct pl_sample_opts so = { .every = c->every,
				     .snaplen = c->snaplen ? c->snaplen : PL_SNAPLEN_MAX,
				     .dirs = (__u32)c->dirs,
				     .policy = c->policy, .verdicts = c->verdicts, .rule = c->rule,
				     .hooks = c->hook ? 1U << (c->hook - 1) : 0 };
	struct pl_sample_stats counts[PL_SLOT_MAX], total[PL_SLOT_MAX] = { 0 };
	struct pl_sampler s;
	struct pl_cap cap;
	struct pl_rot rot = { 0 };
	struct pl_trig trig;
	char first[PATH_MAX], bad[PATH_MAX], cap_desc[128] = "";
	bool opened = false, cap_opened = false, json, data_on_stdout;
	bool cap_xdp = c->xdp || c->hook == 1 + PL_HOOK_XDP;
	struct pl_attachment *a = NULL;
	struct pl_link_info dev_li, *li = NULL;
	struct ring_buffer *rb = NULL;
	const char *path = c->path, *name;
	uint32_t ring_kib = c->ring_kib;
	uint64_t duration = c->duration;
	mode_t mode = c->mode == MODE_UNSET ? PL_OUT_MODE : c->mode;
	bool pcapng = c->pcapng;
	struct run *r = calloc(1, sizeof(*r));
	char why[PL_WHY_LEN + 512];
	char *expr = NULL;
	size_t n;
	int err, ret = PL_EXIT_OK;

	if (!r) {
		pl_err("sample: %s", strerror(ENOMEM));
		return PL_EXIT_FAIL;
	}
	r->limit = c->count;
	r->policy = c->policy;
	r->dirs_default = !c->dirs && !cap_xdp;
	r->hook_tc = c->hook == 1 + PL_HOOK_TC;
	/* a capture on stdout leaves no room for JSON there: errors and the summary on stderr */
	json = pl_g.json;
	data_on_stdout = !path || !strcmp(path, "-");
	if (path && !strcmp(path, "-"))
		pl_g.json = false;
	name = data_on_stdout ? "standard output" : path;
	/* closed by the caller (cli/main.c gave it /dev/null): nothing to capture into */
	if (data_on_stdout && pl_stdout_flush() == -EBADF) {
		pl_err("sample: cannot write to standard output: %s", strerror(EBADF));
		ret = PL_EXIT_FAIL;
		goto out;
	}
	/* DEV as the kernel has it now, for the checks below; NULL: none of that name */
	if (!pl_link_get(argv[0], 0, &dev_li))
		li = &dev_li;
	if (!so.dirs)
		so.dirs = default_dirs(li, so.policy || so.rule);
	if (argc > 1) {
		expr = pl_join_args(argc, argv, 1);
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
		r->expr = expr;
	}
	if (so.policy && so.every != 1) {
		pl_err("sample: --policy: the rules' --sample 1/N choose already, no --every");
		goto usage;
	}
	if (c->xdp && c->hook == 1 + PL_HOOK_TC) {
		pl_err("sample: --xdp and --hook tc: one or the other (--xdp is --hook xdp)");
		goto usage;
	}
	/* XDP sees ingress only, attached or capture-only alike */
	if (cap_xdp && so.dirs == (1U << PL_DIR_OUT)) {
		pl_err("sample: %s: %s captures ingress only, not --out", argv[0],
		       c->xdp ? "--xdp" : "--hook xdp");
		goto usage;
	}
	if (pcapng && !path) {
		pl_err("sample: --pcapng: needs -w FILE or -w - (without -w: one line per packet)");
		goto usage;
	}
	if (c->mode != MODE_UNSET && (!path || !strcmp(path, "-"))) {
		pl_err("sample: --mode: only with -w FILE (the permissions of the files it makes)");
		goto usage;
	}
	if (c->for_secs && !c->when) {
		pl_err("sample: --for %llu: only with --when", (unsigned long long)c->for_secs);
		goto usage;
	}
	if (c->when && (err = pl_trig_parse(c->when, &trig, why, sizeof(why)))) {
		pl_err("sample: --when '%s': %s", c->when, why);
		goto usage;
	}
	if (c->rearm && (!c->when || !c->for_secs || !path || !strcmp(path, "-"))) {
		pl_err("sample: --rearm: needs --when, --for and -w FILE");
		goto usage;
	}
	if (c->when && c->duration) {
		pl_err("sample: --when: --for says how long, not --duration");
		goto usage;
	}
	if (c->rot_keep && !c->rot_mb && !c->rot_secs && !c->rearm) {
		pl_err("sample: -W %u: rotates only with -C, -G or --rearm", c->rot_keep);
		goto usage;
	}
	if ((c->rot_mb || c->rot_secs) && (!path || !strcmp(path, "-"))) {
		pl_err("sample: -%c: needs -w FILE (a file to rotate)", c->rot_mb ? 'C' : 'G');
		goto usage;
	}
	if (c->per_flow && so.every != 1) {
		pl_err("sample: --per-flow %u and --every %u: one or the other", c->per_flow, so.every);
		goto usage;
	}
	if (c->per_flow) {
		so.per_flow = true;
		so.every = c->per_flow;
	}
	/* the ring: a power of two of pages */
	so.ring_bytes = (uint32_t)sysconf(_SC_PAGESIZE);
	while (so.ring_bytes < ring_kib * 1024U)
		so.ring_bytes <<= 1;
	if ((ret = check_ring(ring_kib, so.ring_bytes, so.snaplen)))
		goto out;
	r->snaplen = so.snaplen;
	rot.pattern = path;
	rot.each = c->rearm;
	if (c->rot_mb || c->rot_secs || c->rearm) {
		rot.size = c->rot_mb * 1000000ULL;
		rot.secs = c->rot_secs;
		rot.keep = c->rot_keep;
		rot.mode = mode;
		rot.fmt = pcapng || ends_with(path, ".pcapng") ? PL_DUMP_PCAPNG : PL_DUMP_PCAP;
		rot.snaplen = so.snaplen;
		rot.stop = &pl_stop;
		if ((err = pl_rot_first_name(&rot, first, sizeof(first)))) {
			pl_err("sample: -w '%s': %s", path, strerror(-err));
			goto usage;
		}
		name = first;
	}
	/* before -w FILE: a place we cannot write for want of privileges says so */
	ret = pl_need_caps("sample", PL_NEED_BPF | PL_NEED_PERFMON);
	if (ret)
		goto out;
	/*
	 * the file is looked at here, and created only once the sampler has started;
	 * so are the names a rotation will write that are known now
	 */
	if (path && (err = !pl_rot_on(&rot) ? pl_out_check(name, why, sizeof(why)) :
			    pl_rot_check_start(&rot, !c->when, bad, sizeof(bad), why, sizeof(why)))) {
		pl_err("sample: cannot write '%s': %s", pl_rot_on(&rot) ? bad : name, why);
		ret = err == -EBUSY ? PL_EXIT_FAIL : PL_EXIT_USAGE;
		goto out;
	}

	err = pl_attachments_here(argv[0], &a, &n);
	/* what --rule and --when name must exist: said now, before any other line */
	if ((!err || err == -ENOENT) && (ret = check_names(c, &trig, argv[0], err ? NULL : a->dir,
								  so.dirs)))
		goto out;
	if ((!err || err == -ENOENT) && (ret = check_ethernet(li, argv[0])))
		goto out;
	if (err == -ENOENT) {
		/* not attached: capture-only programs of our own, for as long as we run */
		if (so.policy || so.rule) {
			pl_err("sample: %s: not attached (pktlens attach %s): no policy, so no %s",
			       argv[0], argv[0], so.policy ? "--policy" : "--rule");
			goto usage;
		}
		/* the capture-only programs judge nothing: every packet passes */
		if (so.verdicts && !(so.verdicts & 1U << PL_VERDICT_PASS)) {
			int v = __builtin_ctz(so.verdicts);

			pl_err("sample: %s: not attached (pktlens attach %s): no policy, every packet "
			       "passes, so no --verdict %s", argv[0], argv[0],
			       v < PL_VERDICT_MAX ? pl_verdict_names[v] : "?");
			goto usage;
		}
		a = calloc(1, sizeof(*a));
		if (!a) {
			pl_err("sample: %s", strerror(ENOMEM));
			ret = PL_EXIT_FAIL;
			goto out;
		}
		/*
		 * the interface's own name, as attach pins under and an attached capture
		 * shows it: an alternative name (ip link property add ... altname) would
		 * name the marker, the lines and the pcapng interfaces otherwise, and a
		 * second sampler by the other name would not find this one
		 */
		snprintf(a->ifname, sizeof(a->ifname), "%s", li ? li->ifname : argv[0]);
		/* signals first: an interrupted start still goes through the cleanup below */
		pl_catch_stop();
		cap_opened = opened = true;
		err = pl_cap_open(a->ifname, cap_xdp, so.dirs, &cap, &s, why, sizeof(why));
		if (err) {
			pl_err("sample: %s", why);
			ret = PL_EXIT_CODE(err, ENODEV);
			goto out;
		}
		so.hooks = 0;
		pl_cap_desc(&cap, cap_desc, sizeof(cap_desc));
		if (!pl_g.json)
			pl_info("sample: %s: not attached: attached the capture-only %s until the "
				"capture ends", a->ifname, cap_desc);
	} else if (err) {
		ret = pl_select("sample", argv[0], &a, &n);
		goto out;
	} else {
		if (cap_xdp)
			so.hooks = 1U << PL_HOOK_XDP;
		err = pl_sample_open(a->dir, &s);
		opened = !err;
		if (err) {
			ret = pl_open_error("sample", a, err);
			goto out;
		}
		/* its counters stay readable, but no packet can come: refused, not waited on */
		ret = pl_refuse_gone("sample", a);
		if (ret)
			goto out;
	}
	r->a = a;
	r->ifindex = cap_opened ? (uint32_t)cap.ifindex : a->meta_ok ? a->meta.ifindex : 0;
	/* from here on a signal or a closed pipe ends the capture through the cleanup below */
	pl_catch_stop();
	signal(SIGPIPE, SIG_IGN);	/* a closed pipe is a write error (EPIPE), then the end */
	/* --rearm: wait, capture for --for, again and again, each firing into its own file */
	for (;;) {
		if (c->when) {
			ret = wait_trigger(&trig, a->ifname, r->ifindex, cap_opened ? NULL : a->dir,
					   cap_opened ? -1 : s.dir_fd, r->firings, r->busy);
			if (ret || pl_stop)
				break;
			duration = c->for_secs;
			r->firings++;
		}
		ret = one_capture(r, &s, &so, &rot, &rb, duration, name, mode, pcapng);
		if (ret < 0) {	/* did not start: nothing to count */
			ret = -ret;
			goto out;
		}
		if (r->busy) {	/* fired while another sampler had it: wait again */
			trig.n = 0;
			continue;
		}
		err = pl_sample_counts(&s, counts);
		if (err) {
			pl_err("sample: %s: cannot read %s: %s", a->ifname, PL_MAP_SAMPLE_STATS,
			       strerror(-err));
			ret = PL_EXIT_FAIL;
			goto out;
		}
		for (int i = 0; i < PL_SLOT_MAX; i++) {
			total[i].selected += counts[i].selected;
			total[i].sampled += counts[i].sampled;
			total[i].lost += counts[i].lost;
		}
		if (!c->rearm || pl_stop || ret || r->write_err || (r->limit && r->handed >= r->limit))
			break;
		r->draining = false;
		trig.n = 0;	/* a new window: the burst that fired must not fire again at once */
	}
	summary(r, a->ifname, cap_desc, total, c->when != NULL, json,
		!data_on_stdout || (!path && !r->write_err));
	goto out;
usage:
	ret = PL_EXIT_USAGE;
out:
	ring_buffer__free(rb);
	if (r && !r->rot) {
		pl_dump_free(r->dump);
		pl_out_close(r->out);	/* removes a file never committed */
	}
	pl_rot_free(&rot);
	if (opened)
		pl_sample_close(&s);
	if (cap_opened)
		pl_cap_close(&cap);
	free(a);
	free(expr);
	free(r);
	return ret;
}

static const struct pl_opt sample_opts[] = {
	{ .name = "write", .short_name = 'w', .type = PL_OPT_STRING, PL_FIELD(struct sample_cfg, path),
	  .arg = "FILE", .syn = "-w FILE|-", .flags = PL_OPT_SHORT | PL_OPT_STDOUT,
	  .help = "write pcap (nanosecond timestamps) to FILE; '-': standard output; FILE ending in "
		  ".pcapng (or --pcapng): pcapng, with one interface per hook (DEV@xdp, DEV@tc), "
		  "direction and verdict per packet; a new FILE replaces an old one once capturing "
		  "has begun, a symbolic link is not followed. Without -w: one line per packet, like "
		  "tcpdump -n (-j: JSON lines)" },
	{ .name = "count", .short_name = 'c', .type = PL_OPT_UINT, PL_FIELD(struct sample_cfg, count),
	  .min = 1, .max = UINT64_MAX, .arg = "N", .flags = PL_OPT_SHORT,
	  .bad = ": not a packet count in %llu..%llu", .help = "stop after writing N packets" },
	{ .name = "snaplen", .short_name = 's', .type = PL_OPT_UINT,
	  PL_FIELD(struct sample_cfg, snaplen), .min = 0, .max = PL_SNAPLEN_MAX, .arg = "N",
	  .syn = "-s|--snaplen N", .bad = ": not in %llu..%llu",
	  .help = "bytes kept per packet, 1..{max} (default {default}); 0: {max}, as tcpdump's -s 0" },
	{ .name = "every", .type = PL_OPT_UINT, PL_FIELD(struct sample_cfg, every), .min = 1,
	  .max = UINT32_MAX, .arg = "N", .bad = ": not a number in %llu..%llu",
	  .help = "keep 1 in N of the matching packets: every Nth on each CPU" },
	{ .name = "in", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, dirs), .val = 1 << PL_DIR_IN,
	  .flags = PL_OPT_OR, .syn = "--in|--out",
	  .help = "ingress only (default both, loopback ingress: ingress at XDP if attached, else tc)" },
	{ .name = "out", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, dirs), .val = 1 << PL_DIR_OUT,
	  .flags = PL_OPT_OR, .syn = "", .help = "egress only (at tc)" },
	{ .name = "buffer-size", .short_name = 'B', .type = PL_OPT_UINT,
	  PL_FIELD(struct sample_cfg, ring_kib), .min = 4, .max = MAX_RING_KIB, .arg = "KiB",
	  .syn = "-B|--buffer-size KiB", .bad = ": not in %llu..%llu KiB",
	  .help = "ring buffer size, rounded up to a power of two (default {default}); it must "
		  "hold one packet of the snaplen" },
	{ .name = "pcapng", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, pcapng), .val = 1,
	  .help = "write pcapng whatever FILE is called (-w FILE or -w -)" },
	{ .name = "mode", .type = PL_OPT_PARSE, PL_FIELD(struct sample_cfg, mode), .arg = "MODE",
	  .parse = parse_mode_opt, .bad = ": not octal permissions 0..0777",
	  .help = "permissions of FILE, octal like chmod (default 0600, whatever the umask)" },
	{ .name = "duration", .type = PL_OPT_DURATION, PL_FIELD(struct sample_cfg, duration),
	  .arg = "SECS", .help = "stop after SECS seconds" },
	{ .name = "file-size", .short_name = 'C', .type = PL_OPT_UINT,
	  PL_FIELD(struct sample_cfg, rot_mb), .min = 1, .max = 1000000, .arg = "MB",
	  .syn = "-C MB", .flags = PL_OPT_SHORT, .bad = ": not a size in %llu..%llu MB",
	  .help = "like tcpdump -C: a new file before a packet once this one is past MB million "
		  "bytes (the packet that took it past is its last); "
		  "the first is FILE, the next FILE1, FILE2, ... (with -W: FILE0.. in a ring). "
		  "Every file is complete on its own (pcapng: its own section and interface "
		  "blocks). A name that exists and was not made by this capture is never "
		  "replaced: refused before the start if it is known then (FILE1, -W's "
		  "FILE0..), else the capture stops there with an error" },
	{ .name = "rotate-seconds", .short_name = 'G', .type = PL_OPT_DURATION,
	  PL_FIELD(struct sample_cfg, rot_secs), .arg = "SECS", .syn = "-G SECS",
	  .flags = PL_OPT_SHORT,
	  .help = "like tcpdump -G: a new file every SECS seconds, named by strftime(FILE) in "
		  "local time (-w 'dns-%H%M%S.pcap'); a name this capture wrote already (no "
		  "pattern, or one coarser than SECS) gets 1, 2, ... appended, as -C numbers "
		  "files: unlike tcpdump, never replaced" },
	{ .name = "file-count", .short_name = 'W', .type = PL_OPT_UINT,
	  PL_FIELD(struct sample_cfg, rot_keep), .min = 1, .max = 1000000, .arg = "N",
	  .syn = "-W N", .flags = PL_OPT_SHORT, .bad = ": not a number of files in %llu..%llu",
	  .help = "with -C, -G or --rearm: keep the newest N files this capture wrote, removing "
		  "older ones (unlike tcpdump -G -W, the capture goes on; with -G -C, of all "
		  "periods, where tcpdump rings N within each)" },
	{ .name = "when", .type = PL_OPT_STRING, PL_FIELD(struct sample_cfg, when), .arg = "COND",
	  .help = "start capturing only once COND holds, looked at every 100 ms over the last "
		  "second: 'rule ID > Npps' (a policy rule's matches), 'dev pps > N' (DEV's "
		  "packets received + sent, attached or not), 'drops [REASON] > N/s' (kernel drops "
		  "on DEV, needs attach --probes drops; REASON: a name of the kernel's, as pktlens "
		  "drops shows them). Nothing is written before" },
	{ .name = "for", .type = PL_OPT_DURATION, PL_FIELD(struct sample_cfg, for_secs),
	  .arg = "SECS", .help = "with --when: capture for SECS seconds once it fired, then stop "
		  "(without it: until -c or a signal)" },
	{ .name = "rearm", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, rearm), .val = 1,
	  .help = "with --when and --for: afterwards wait for COND again, and so on until a "
		  "signal; each firing writes its own file (strftime patterns in FILE name it, -W N "
		  "keeps the newest N) and never replaces one an earlier firing wrote, nor one that "
		  "exists and is not this capture's (FILE too): such a name gets 1, 2, ... appended, "
		  "as -C "
		  "numbers files (FILE, FILE1, FILE2, ...)" },
	{ .name = "verdict", .type = PL_OPT_PARSE, PL_FIELD(struct sample_cfg, verdicts),
	  .arg = "VERDICT", .parse = parse_verdict_opt,
	  .help = "keep only packets with this fate: pass, drop, redirect, tx or aborted; "
		  "repeat for several. Decided in the kernel before the copy: a flood the policy "
		  "drops costs nothing when only other verdicts are kept. Not attached: every "
		  "packet passes (nothing judges it), so pass must be one of them" },
	{ .name = "hook", .type = PL_OPT_CHOICE, PL_FIELD(struct sample_cfg, hook),
	  .choices = hook_choices, .arg = "xdp|tc",
	  .help = "capture at this hook only (default: ingress at XDP if attached, else tc; "
		  "egress at tc); not with --xdp and --hook tc" },
	{ .name = "rule", .type = PL_OPT_UINT, PL_FIELD(struct sample_cfg, rule), .min = 1,
	  .max = PL_POLICY_RULES_MAX, .arg = "ID", .bad = ": not a rule id in %llu..%llu",
	  .help = "keep only packets policy rule ID ({min}..{max}, as policy's ids) judged (or its "
		  "--sample chose; of a --limit rule, the excess: what is within the rate goes on "
		  "to later rules), in the kernel; DEV's policy must have rule ID" },
	{ .name = "per-flow", .type = PL_OPT_UINT, PL_FIELD(struct sample_cfg, per_flow), .min = 1,
	  .max = UINT32_MAX, .arg = "N", .bad = ": not a packet count in %llu..%llu",
	  .help = "keep the first N matching packets of each flow instead of 1 in N (with "
		  "--policy: of what the rules' --sample chose). A flow is "
		  "what pktlens flows counts apart: interface, hook, direction, VLAN, ethertype, "
		  "addresses, protocol and ports (the two directions are two flows). The state "
		  "table holds " "16384" " flows; when it is full the flow "
		  "seen least recently is forgotten and, if it comes back, counted from 0 again" },
	{ .name = "xdp", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, xdp), .val = 1,
	  .help = "on an interface pktlens has not attached: capture at XDP (ingress) instead of "
		  "tc; on an attached one: --hook xdp" },
	{ .name = "policy", .type = PL_OPT_FLAG, PL_FIELD(struct sample_cfg, policy), .val = 1,
	  .syn = "", .help = "capture what policy --sample 1/N rules choose (tagged with the rule id) "
			     "instead of an own selection by EXPR" },
	{ NULL },
};

static const struct sample_cfg sample_defaults = {
	.every = 1, .snaplen = PL_SNAPLEN_MAX, .ring_kib = DEFAULT_RING_KIB, .mode = MODE_UNSET,
};

const struct pl_cmd pl_cmd_sample = {
	.name = "sample", .args = "DEV", .tail = "['EXPR' | --policy]", .opts = sample_opts,
	.fn = do_sample, .defaults = &sample_defaults, .cfg_size = sizeof(struct sample_cfg),
	.min_args = 1, .max_args = -1, .few = "needs DEV",
	.about = "Capture packets in the kernel, through the programs `pktlens attach` put on DEV,\n"
		 "into a pcap file tcpdump and Wireshark read. EXPR: a tcpdump filter expression,\n"
		 "run in the kernel (default: all packets). On a DEV pktlens has not attached, a\n"
		 "capture-only program of its own (tc, or --xdp) runs for the capture's duration\n"
		 "and is removed at its end (the first line says what was attached).\n",
	.more = "Ends on -c, --duration, --for, Ctrl-C, SIGTERM, SIGHUP, a write error, when the\n"
		"reader of a pipe goes away or the interface does (exit 1), and then prints how\n"
		"many packets matched, were sampled, were written (reached the file or the\n"
		"reader) and were lost because the ring was full; with --when also how often it\n"
		"fired (none: the same summary).\n",
};
