// SPDX-License-Identifier: GPL-2.0
/* Capture files one after another: tcpdump's -C, -G, -W (rotate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <pktlens/clock.h>
#include <pktlens/why.h>

#include "rotate.h"
#include "../pcap/out.h"

static int period_name(const struct pl_rot *r, char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	if ((!r->secs && !r->each) || !strchr(r->pattern, '%')) {
		if ((size_t)snprintf(buf, len, "%s", r->pattern) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	/* -w is a strftime pattern by design, as tcpdump -G takes it */
	if (!strftime(buf, len, r->pattern, &tm) || !*buf)
		return -ENAMETOOLONG;
#pragma GCC diagnostic pop
	return 0;
}

static unsigned digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* The name of file @seq of @period. */
static int file_name(const struct pl_rot *r, const char *period, uint64_t seq, char *buf,
		     size_t len)
{
	int n;

	if (r->size && r->keep == 1)	/* tcpdump -C -W 1: one file, its name as given */
		n = snprintf(buf, len, "%s", period);
	else if (r->size && r->keep)
		n = snprintf(buf, len, "%s%0*llu", period, (int)digits(r->keep - 1),
			     (unsigned long long)(seq % r->keep));
	else if ((r->size || r->secs || r->each) && seq)
		n = snprintf(buf, len, "%s%llu", period, (unsigned long long)seq);
	else
		n = snprintf(buf, len, "%s", period);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pl_rot_first_name(const struct pl_rot *r, char *buf, size_t len)
{
	char period[PATH_MAX];
	int err = period_name(r, period, sizeof(period));

	return err ? err : file_name(r, period, 0, buf, len);
}

static ssize_t made_index(const struct pl_rot *r, const char *name)
{
	for (size_t i = 0; i < r->nmade; i++)
		if (!strcmp(r->made[i], name))
			return (ssize_t)i;
	return -1;
}

static void made_drop(struct pl_rot *r, size_t i)
{
	free(r->made[i]);
	memmove(r->made + i, r->made + i + 1, (r->nmade - i - 1) * sizeof(*r->made));
	r->nmade--;
}

int pl_rot_check(const char *name, char *why, size_t whylen)
{
	struct stat st;
	int err = pl_out_check(name, why, whylen);

	if (err)
		return err;
	/* not opened to find out: a FIFO's open() would wait for a reader */
	if (!lstat(name, &st) && !S_ISREG(st.st_mode))
		return pl_why(why, whylen, -EINVAL, "not a regular file: -C, -G and --rearm write "
			      "regular files only");
	return 0;
}

/* Whether the names do not depend on when a file is made (no strftime of FILE). */
static bool names_fixed(const struct pl_rot *r)
{
	return (!r->secs && !r->each) || !strchr(r->pattern, '%');
}

int pl_rot_check_start(const struct pl_rot *r, bool now, char *name, size_t namelen, char *why,
		       size_t whylen)
{
	char period[PATH_MAX];
	struct stat st;
	uint64_t last;
	int err = period_name(r, period, sizeof(period));

	if (!err)
		err = file_name(r, period, 0, name, namelen);
	if (err)
		return pl_why(why, whylen, err, "the file name is too long");
	err = pl_rot_check(name, why, whylen);
	/* --rearm numbers past what exists; --when's strftime names are made when it fires */
	if (err || r->each || (!now && !names_fixed(r)))
		return err;
	/*
	 * as pl_rot_open() will find them, said before anything is attached or
	 * printed: -C -W's ring, -C's next file (FILE1: an earlier run's), and
	 * -G's next one when its period's name cannot change
	 */
	last = r->size && r->keep ? r->keep - 1 : r->size || names_fixed(r) ? 1 : 0;
	for (uint64_t i = 0; i <= last; i++) {
		if ((err = file_name(r, period, i, name, namelen)))
			return pl_why(why, whylen, err, "the file name is too long");
		if (!i && !strcmp(name, r->pattern))
			continue;	/* FILE itself: the user's to replace */
		if (!lstat(name, &st))
			return pl_why(why, whylen, -EEXIST, "exists and this capture did not write "
				      "it: not replaced (remove it, or name another -w FILE)");
		/* one it could never make (FILE1 past NAME_MAX): now, not when it is due */
		if (errno != ENOENT)
			return pl_why(why, whylen, -errno, "%s", strerror(errno));
	}
	return 0;
}

/* Whether -G's period is over at @now_ns. */
static bool period_over(const struct pl_rot *r, uint64_t now_ns)
{
	return r->secs && now_ns - r->period_ns >= r->secs * 1000000000ULL;
}

int pl_rot_open(struct pl_rot *r, char *why, size_t whylen)
{
	char period[PATH_MAX], check[512], **m;
	uint64_t now = pl_mono_ns();
	struct stat st;
	bool foreign;
	ssize_t at;
	int err;

	/*
	 * A new period: the first file, each firing's, or -G's SECS over. A
	 * file -C starts within a period keeps its name (numbered) and clock.
	 */
	if (!r->total || r->each || period_over(r, now)) {
		err = period_name(r, period, sizeof(period));
		if (err)
			return pl_why(why, whylen, err, "-w '%s': the file name is too long", r->pattern);
		if (!r->total || r->each)
			r->period_ns = now;	/* sample's capture() sets its start once it runs */
		else	/* on the capture's grid, past periods no packet came in */
			r->period_ns += (now - r->period_ns) / (r->secs * 1000000000ULL) *
					(r->secs * 1000000000ULL);
		if (strcmp(period, r->period)) {	/* counting anew */
			snprintf(r->period, sizeof(r->period), "%s", period);
			r->seq = 0;
		}
	} else {
		snprintf(period, sizeof(period), "%s", r->period);
	}
	for (;;) {
		err = file_name(r, period, r->seq, r->name, sizeof(r->name));
		if (err)
			return pl_why(why, whylen, err, "-w '%s': the file name is too long",
				      r->pattern);
		at = made_index(r, r->name);
		/* FILE itself is the user's to replace, but not by --rearm's firings */
		foreign = at < 0 && (r->each || strcmp(r->name, r->pattern)) && !lstat(r->name, &st);
		/*
		 * --rearm: a firing never replaces what an earlier one wrote (unless -C -W
		 * makes a ring of them), nor a file of someone else: the next number, as -C.
		 * -G: a period whose name this capture wrote already (FILE without a
		 * pattern, or one coarser than SECS) neither: the next number too
		 */
		if ((r->size && r->keep) || (r->each ? at < 0 && !foreign : !r->secs || at < 0))
			break;
		r->seq++;
	}
	if (foreign)
		return pl_why(why, whylen, -EEXIST, "'%s' exists and this capture did not write it: "
			      "not replaced (remove it, or name another -w FILE)", r->name);
	if ((err = pl_rot_check(r->name, check, sizeof(check))))
		return pl_why(why, whylen, err, "'%s': %s", r->name, check);
	err = pl_out_open(r->name, r->mode, r->stop, 0, NULL, &r->out, why, whylen);
	if (err)
		return err;
	if (r->stop)
		pl_out_stop_on(r->out, r->stop);
	if (!pl_out_is_file(r->out))
		return pl_why(why, whylen, -EINVAL, "'%s': -C and -G write regular files only",
			      r->name);
	err = pl_dump_open(r->out, r->fmt, r->snaplen, r->ifs, r->nifs, &r->dump);
	if (!err)
		err = pl_out_flush(r->out);
	if (err)
		return pl_why(why, whylen, err, "'%s': %s", r->name, strerror(-err));
	if ((err = pl_out_commit(r->out, why, whylen)))
		return err;
	/* it is ours now; the ring keeps the newest r->keep */
	if (at >= 0)
		made_drop(r, (size_t)at);
	m = realloc(r->made, (r->nmade + 1) * sizeof(*m));
	if (!m)
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	r->made = m;
	r->made[r->nmade] = strdup(r->name);
	if (!r->made[r->nmade])
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	r->nmade++;
	while (r->keep && r->nmade > r->keep) {
		unlink(r->made[0]);
		made_drop(r, 0);
	}
	r->seq++;
	r->total++;
	r->opened_ns = pl_mono_ns();
	return 0;
}

bool pl_rot_due(const struct pl_rot *r, bool packet, uint64_t now_ns)
{
	if (!r->out)
		return false;
	if (period_over(r, now_ns))
		return true;
	/*
	 * tcpdump's -C: before a packet, the file is already past the size (its
	 * pcap_dump_ftell() > MB million); so the packet that crossed it is the
	 * last of its file, and a file no packet followed is not begun
	 */
	return packet && r->size && pl_out_bytes(r->out) > r->size;
}

int pl_rot_close(struct pl_rot *r)
{
	uint64_t delivered = 0, added = 0;
	int err;

	if (!r->out)
		return 0;
	err = pl_out_finish(r->out, &delivered, &added);
	r->delivered += delivered;
	r->added += added;
	pl_dump_free(r->dump);
	pl_out_close(r->out);
	r->dump = NULL;
	r->out = NULL;
	return err;
}

int pl_rot_next(struct pl_rot *r, char *why, size_t whylen)
{
	int err = pl_rot_close(r);

	if (err)
		return pl_why(why, whylen, err, "'%s': %s", r->name, strerror(-err));
	err = pl_rot_open(r, why, whylen);
	r->next_failed = err != 0;
	return err;
}

void pl_rot_free(struct pl_rot *r)
{
	pl_rot_close(r);
	for (size_t i = 0; i < r->nmade; i++)
		free(r->made[i]);
	free(r->made);
	r->made = NULL;
	r->nmade = 0;
}
