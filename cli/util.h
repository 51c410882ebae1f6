/* SPDX-License-Identifier: GPL-2.0 */
/* Shared CLI plumbing: errors, exit codes, global options, number parsing. */
#ifndef __PKTLENS_CLI_UTIL_H
#define __PKTLENS_CLI_UTIL_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../export/json.h"

/* Exit codes (pktlens(8), EXIT STATUS). */
enum pl_exit {
	PL_EXIT_OK = 0,
	PL_EXIT_FAIL = 1,	/* runtime failure */
	PL_EXIT_USAGE = 2,	/* bad usage or input */
};

/*
 * The exit code for -errno @err (0: PL_EXIT_OK): PL_EXIT_USAGE when it is
 * one of @input, the errors by which the call says its input was wrong
 * (0-terminated; PL_ERR_INPUT: any but ENOMEM, for a file or expression the
 * user named), else PL_EXIT_FAIL. PL_EXIT_CODE(err, EINVAL, E2BIG) lists them.
 */
int pl_exit_code(int err, const int *input);
#define PL_ERR_INPUT (-1)
#define PL_EXIT_CODE(err, ...) pl_exit_code((err), (const int[]){ __VA_ARGS__, 0 })

/* Global options, set once in main(). */
struct pl_globals {
	bool json;
	bool pretty;
	const char *netns;	/* -n NETNS, or NULL */
	bool data_on_stdout;	/* stdout carries data (sample -w -): -j's errors go to stderr alone */
};
extern struct pl_globals pl_g;

/*
 * One-line error: "pktlens: <what>: <why>" on stderr (or {"error": ...} on
 * stdout under -j). Returns nothing; callers return the exit code.
 */
__attribute__((format(printf, 1, 2))) void pl_err(const char *fmt, ...);
/* The message of the last pl_err() ("out of memory" when it could not be kept) */
const char *pl_err_last(void);
/*
 * Flush stdout: 0 once everything printed has been written, else -errno of
 * the first write that failed. cli/main.c checks it again at exit: a
 * command that ends with 0 then fails (exit 1) with that cause.
 */
int pl_stdout_flush(void);
/*
 * For a command whose output carries the final totals of what it removes
 * (detach, apply): a reader that goes away makes writes fail (EPIPE) rather
 * than SIGPIPE kill it between a removal and the totals' spill to stderr.
 * Then pl_stdout_flush(): 0 or the -errno of a stdout that cannot be written
 * before anything is removed (closed, full); a gone reader (-EPIPE) is 0.
 */
int pl_stdout_for_totals(void);
/* Informational line on stderr (silent under -j). */
__attribute__((format(printf, 1, 2))) void pl_info(const char *fmt, ...);
/*
 * "pktlens: ..." on stderr, under -j too: a running service's warnings, or
 * pl_err()'s line alone for a -j document that carries the error itself.
 */
__attribute__((format(printf, 1, 2))) void pl_warn(const char *fmt, ...);

/*
 * Strict number parsing: the whole string, decimal digits only (leading
 * zeros are decimal too: 020 is 20), in [min, max]. 0 or -EINVAL/-ERANGE.
 */
int pl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int pl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/* Capabilities a command needs (bit masks for pl_need_caps). */
#define PL_NEED_BPF (1u << 0)		/* CAP_BPF, or CAP_SYS_ADMIN */
#define PL_NEED_NET_ADMIN (1u << 1)	/* CAP_NET_ADMIN */
/* loads packet or tracing programs: CAP_PERFMON, or CAP_SYS_ADMIN (the verifier's
 * pointer arithmetic on packets, tracepoints) */
#define PL_NEED_PERFMON (1u << 2)
/* Print "CMD: missing capability ..." and return PL_EXIT_FAIL when lacking one. */
int pl_need_caps(const char *cmd, unsigned need);
/*
 * Take the lock that serialises changes to attachments, for the rest of the
 * process's life; another pktlens changing them makes us wait (up to 60 s).
 * PL_EXIT_OK, or prints "CMD: why" and returns PL_EXIT_FAIL.
 */
int pl_lock_changes(const char *cmd);
/*
 * The same lock shared, for a command that only reads the attachments
 * (apply --dry-run): it waits out a change in progress, as readers do,
 * and neither waits for nor holds up other readers.
 */
int pl_lock_view(const char *cmd);
/* How a live command ends, for its first line: @duration seconds (0: none given) or Ctrl-C. */
const char *pl_until(uint64_t duration, char *buf, size_t len);

/*
 * Long-running commands (stats --watch, sample, tcp, export) end their loop
 * when pl_stop is set: pl_catch_stop() makes SIGINT, SIGTERM and SIGHUP
 * (unless it was ignored, as under nohup) set it instead of killing the
 * process, so each ends as on Ctrl-C: state kept, capture-only programs off.
 */
extern volatile sig_atomic_t pl_stop;
void pl_catch_stop(void);
/* --duration SECS (1 s .. 366 days); on a bad value prints "CMD: --duration ..." and returns PL_EXIT_USAGE. */
int pl_parse_duration(const char *cmd, const char *arg, uint64_t *secs);

/*
 * The words argv[from..argc) joined by spaces (like tcpdump's expression), newlines,
 * CRs and tabs in them made blanks (libpcap reads them so). NULL on ENOMEM.
 */
char *pl_join_args(int argc, char **argv, int from);

/*
 * @path opened for reading without waiting for a FIFO's writer or a device
 * (O_NONBLOCK: a FIFO's open returns at once), its stat in @st for the caller
 * to judge the type and size before any read. NULL with errno set.
 */
FILE *pl_fopen_nowait(const char *path, struct stat *st);

/* FNV-1a of @s: for a set of strings or a name made from one (not for security) */
uint64_t pl_str_hash(const char *s);

/* getopt_long reset between commands */
void pl_getopt_reset(void);

#endif /* __PKTLENS_CLI_UTIL_H */
