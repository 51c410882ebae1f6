/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where `sample` writes: a file, standard output, a FIFO or a device, in
 * whole records only, knowing how many reached their reader.
 *
 * A file is never opened before the caller has checked everything else: it
 * is created under a hidden temporary name in its directory (exclusively,
 * so never through a symbolic link, mode 0600 unless told otherwise) and
 * renamed over the final name by pl_out_commit(), once capturing has begun;
 * a refused or failed start leaves the final name as it was. Records are
 * collected in a buffer and written out whole: when a write fails (a full
 * disk), a regular file is cut back to the last record written completely,
 * so it always ends with a complete record. A pipe whose reader went away
 * counts as delivered only what the reader took: what it left unread in the
 * pipe is not "written".
 */
#ifndef __PKTLENS_PCAP_OUT_H
#define __PKTLENS_PCAP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

struct pl_out;

/* Default mode of a capture file: packets are private. */
#define PL_OUT_MODE 0600

/*
 * Check, creating and opening nothing, that @path ("-": standard output)
 * can be written: not a symbolic link (never followed), not a directory, in
 * a directory that exists and is writable, not being written by another
 * pktlens. 0, or -errno with @why: -EBUSY another pktlens writes it (a
 * runtime conflict); anything else is bad input.
 */
int pl_out_check(const char *path, char *why, size_t whylen);
/*
 * Open @path after pl_out_check(): a regular or new file under a temporary
 * name created with @mode (exactly: the umask does not apply), anything else
 * (a FIFO, a device, "-") as it is. A FIFO nobody reads yet is waited for
 * until *@stop is set or CLOCK_MONOTONIC passes @deadline_ns (0: none), which
 * gives -ENXIO (a stop, not a failure, for the caller to tell); meanwhile
 * @w->fn(@w->ctx), if any, is called every 100 ms (a sampler renews its
 * lease: the ring holds what comes until the reader does). 0, or -errno
 * with @why.
 */
struct pl_out_wait {
	void (*fn)(void *ctx);
	void *ctx;
};
int pl_out_open(const char *path, mode_t mode, volatile sig_atomic_t *stop, uint64_t deadline_ns,
		const struct pl_out_wait *w, struct pl_out **out, char *why, size_t whylen);
/*
 * Add one record made of @n pieces; @packet: it counts as a packet in
 * pl_out_packets() once delivered. Whole or not at all. 0, or the -errno of
 * the output (sticky: after an error nothing more is taken).
 */
struct iovec;
int pl_out_rec(struct pl_out *o, const struct iovec *iov, int n, bool packet);
/* Write out the records collected so far. 0, or -errno (-EPIPE: the reader went away). */
int pl_out_flush(struct pl_out *o);
/*
 * Once *@stop is set (pl_stop: SIGINT, SIGTERM), a write is given up when
 * its reader took nothing for a second (-ETIME; a pipe, which is written
 * without blocking) or when a signal interrupts it (-EINTR; anything else).
 */
void pl_out_stop_on(struct pl_out *o, volatile sig_atomic_t *stop);
/*
 * While a write waits for a full pipe to take more, call @fn(@ctx) every
 * 100 ms (a sampler renews its lease there: a slow reader leaves the
 * packets to the ring, which holds what it can and counts the rest lost).
 */
void pl_out_on_wait(struct pl_out *o, void (*fn)(void *ctx), void *ctx);
/* Give the file its final name (no-op for anything but a new file). 0, or -errno with @why. */
int pl_out_commit(struct pl_out *o, char *why, size_t whylen);
/* Whether the reader of a pipe or socket went away (poll() says POLLERR/POLLHUP). */
bool pl_out_gone(const struct pl_out *o);
/* Bytes taken so far: written out and collected (for `sample -C`). */
uint64_t pl_out_bytes(const struct pl_out *o);
/* Whether @o is a file created under a temporary name (rotation needs that). */
bool pl_out_is_file(const struct pl_out *o);
/* The output's first error (0: none). */
int pl_out_error(const struct pl_out *o);
/*
 * Flush, then count what the reader took: packets delivered, packets added
 * with pl_out_rec(). Call once at the end, before pl_out_close().
 */
int pl_out_finish(struct pl_out *o, uint64_t *delivered, uint64_t *added);
/* Close; a file never committed is removed. */
void pl_out_close(struct pl_out *o);

#endif /* __PKTLENS_PCAP_OUT_H */
