/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capture files one after another, as tcpdump's -C, -G and -W make them
 * (cli/rotate.c): for `sample` and the daemon's triggers. Every file is
 * complete on its own (its own pcap header, or pcapng section and interface
 * blocks) and appears under its name only once its header is written (out.h).
 *
 * Names: -G SECS: strftime(FILE) at each period's start (local time); the
 * periods count from the capture's start, whatever -C does in them. -C MB
 * without -W: the first file of a period is that name, the next ones get 1,
 * 2, ... appended (tcpdump's names, strftime of the period's start); with -W N: 0..N-1, zero-padded to the same width, in a
 * ring. -W N keeps the newest N files this capture made, removing older
 * ones. A name that exists and was not made by this capture is never
 * replaced (refused before the start when known then, pl_rot_check_start();
 * else the capture stops with an error), except FILE itself: that one the
 * user named. A file per pl_rot_open() (each: --rearm's firings) is
 * numbered as -C numbers them whenever the name is one this capture wrote
 * already or one that exists and is not its own, FILE itself included (a
 * standing trigger's sampler started again must not replace what the one
 * before it wrote): FILE, FILE1, FILE2, ...
 * -G's files too whenever the name is one this capture wrote already (a FILE
 * without a strftime pattern, or one coarser than SECS): never replaced.
 */
#ifndef __PKTLENS_CLI_ROTATE_H
#define __PKTLENS_CLI_ROTATE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../pcap/dump.h"

struct pl_out;

struct pl_rot {
	/* settings */
	const char *pattern;		/* -w FILE */
	uint64_t size;			/* -C: a file past it gets no more packets (tcpdump's), 0: no */
	uint64_t secs;			/* -G: seconds per file, 0: no */
	uint32_t keep;			/* -W: files kept, 0: all */
	bool each;			/* a file per pl_rot_open() (--rearm: per firing) */
	bool next_failed;		/* pl_rot_next() could not make the next file */
	mode_t mode;
	enum pl_dump_fmt fmt;
	uint32_t snaplen;
	struct pl_dump_if ifs[2];	/* pcapng: the IDBs every file begins with */
	size_t nifs;
	volatile sig_atomic_t *stop;
	/* state */
	struct pl_out *out;		/* the file being written, NULL between files */
	struct pl_dump *dump;
	char name[PATH_MAX];		/* its name */
	char period[PATH_MAX];		/* -G: the strftime name of the period */
	char **made;			/* files this capture made, oldest first */
	size_t nmade;
	uint64_t seq;			/* files made in this period */
	uint64_t total;			/* files made */
	uint64_t opened_ns;		/* CLOCK_MONOTONIC when the file began */
	uint64_t period_ns;		/* -G: when its period began: the capture's start, then every SECS */
	uint64_t delivered, added;	/* of the files closed */
};

/* Whether @r rotates at all (-C or -G). */
static inline bool pl_rot_on(const struct pl_rot *r)
{
	return r->size || r->secs || r->each;
}
/* The first name, for checks before capturing (strftime for now). */
int pl_rot_first_name(const struct pl_rot *r, char *buf, size_t len);
/*
 * Whether @name can be one of the files: pl_out_check(), and a regular file
 * if it exists (a FIFO or device cannot be rotated). 0, or -errno with @why.
 */
int pl_rot_check(const char *name, char *why, size_t whylen);
/*
 * Before the start: pl_rot_check() of the first name, and none of the names
 * the capture will write that are known now may exist, except FILE itself:
 * a name this capture did not make is never replaced. Known now (@now: the
 * capture starts now; else --when starts it later, and a strftime name is
 * known only then): -C -W N's FILE0..FILE(N-1), -C's FILE1, -G's strftime
 * name, and its next one when the name cannot change (FILE1). --rearm's
 * names number past what exists: only pl_rot_check(). 0, or -errno with
 * @why and the name in @name.
 */
int pl_rot_check_start(const struct pl_rot *r, bool now, char *name, size_t namelen, char *why,
		       size_t whylen);
/* Open the next file (header written, committed under its name). 0, or -errno with @why. */
int pl_rot_open(struct pl_rot *r, char *why, size_t whylen);
/*
 * Whether the next file begins now: -G's period is over at @now_ns, or
 * (@packet: before writing one) -C's file is past its size already.
 */
bool pl_rot_due(const struct pl_rot *r, bool packet, uint64_t now_ns);
/* Finish and close the file (counting what reached it). 0, or its write error. */
int pl_rot_close(struct pl_rot *r);
/* Close, then open the next (next_failed: that open failed, not the close). */
int pl_rot_next(struct pl_rot *r, char *why, size_t whylen);
/* Free everything (closes the file first). */
void pl_rot_free(struct pl_rot *r);

#endif /* __PKTLENS_CLI_ROTATE_H */
