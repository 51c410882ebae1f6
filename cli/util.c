// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "util.h"
#include "../export/format.h"
#include "../loader/loader.h"

struct pl_globals pl_g;

/*
 * "pktlens: MSG" on stderr, one line whatever MSG holds, shown as interface
 * names are (pl_fmt_name(): controls as \xHH, a backslash as \\), so the
 * raw names messages hold never look alike: callers pass names raw.
 */
static void to_stderr(const char *msg)
{
	size_t len = 4 * strlen(msg) + 5;
	char *safe = malloc(len);

	fprintf(stderr, "pktlens: %s\n", safe ? pl_fmt_name(msg, safe, len) : "out of memory");
	free(safe);
}

/* The whole message, however long: a long expression must not cut off the reason after it */
static char *vformat(const char *fmt, va_list ap)
{
	char *msg = NULL;

	return vasprintf(&msg, fmt, ap) < 0 ? NULL : msg;
}

static char *last_err;	/* pl_err()'s last message */

void pl_err(const char *fmt, ...)
{
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	if (pl_g.json && !pl_g.data_on_stdout)
		jw_error_doc(stdout, msg ? msg : "out of memory");
	to_stderr(msg ? msg : "out of memory");
	free(last_err);
	last_err = msg;
}

const char *pl_err_last(void)
{
	return last_err ? last_err : "out of memory";
}

static void vlog(const char *fmt, va_list ap)
{
	char *msg = vformat(fmt, ap);

	to_stderr(msg ? msg : "out of memory");
	free(msg);
}

void pl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void pl_info(const char *fmt, ...)
{
	va_list ap;

	if (pl_g.json)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

int pl_exit_code(int err, const int *input)
{
	if (!err)
		return PL_EXIT_OK;
	for (; *input; input++)
		if (-err == *input || (*input == PL_ERR_INPUT && err != -ENOMEM))
			return PL_EXIT_USAGE;
	return PL_EXIT_FAIL;
}

int pl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* decimal digits only: 020 is twenty (not octal 16), 0x10 is not a number */
	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int pl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err = pl_parse_u64(s, min, max, &v);

	if (!err)
		*out = (uint32_t)v;
	return err;
}

void pl_getopt_reset(void)
{
	optind = 0;	/* glibc: full reinitialisation */
	opterr = 0;
}

static bool has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

int pl_need_caps(const char *cmd, unsigned need)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};
	char missing[64] = "";
	const char *sep = "";

	if (syscall(SYS_capget, &h, d))
		return PL_EXIT_OK;	/* cannot tell: let the kernel say no */
	if ((need & PL_NEED_BPF) && !has_cap(d, CAP_BPF) && !has_cap(d, CAP_SYS_ADMIN))
		strcat(missing, "CAP_BPF"), sep = ", ";
	if ((need & PL_NEED_NET_ADMIN) && !has_cap(d, CAP_NET_ADMIN))
		strcat(strcat(missing, sep), "CAP_NET_ADMIN"), sep = ", ";
	if ((need & PL_NEED_PERFMON) && !has_cap(d, CAP_PERFMON) && !has_cap(d, CAP_SYS_ADMIN))
		strcat(strcat(missing, sep), "CAP_PERFMON");
	if (!*missing)
		return PL_EXIT_OK;
	pl_err("%s: missing capability %s (run as root)", cmd, missing);
	return PL_EXIT_FAIL;
}

/* The change lock, exclusive or @shared, held for the rest of the process's life. */
static int lock_changes(const char *cmd, bool shared)
{
	static int fd = -1;
	char why[256];

	if (fd >= 0)
		return PL_EXIT_OK;
	fd = shared ? pl_change_lock_shared(60 * 1000, why, sizeof(why)) :
		      pl_change_lock(60 * 1000, why, sizeof(why));
	if (fd >= 0)
		return PL_EXIT_OK;
	pl_err("%s: %s", cmd, why);
	return PL_EXIT_FAIL;
}

int pl_lock_changes(const char *cmd)
{
	return lock_changes(cmd, false);
}

int pl_lock_view(const char *cmd)
{
	return lock_changes(cmd, true);
}

const char *pl_until(uint64_t duration, char *buf, size_t len)
{
	if (!duration)
		return "Ctrl-C to end";
	snprintf(buf, len, "for %llu s (Ctrl-C ends it sooner)", (unsigned long long)duration);
	return buf;
}

char *pl_join_args(int argc, char **argv, int from)
{
	size_t n = 1;
	char *s;

	for (int i = from; i < argc; i++)
		n += strlen(argv[i]) + 1;
	s = calloc(1, n);
	for (int i = from; s && i < argc; i++) {
		if (i > from)
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	/* libpcap's blanks, as policy rules keep them: a newline would split the lines
	 * `filter set`, `stats` and `sample` print the expression in */
	for (char *c = s; c && *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
	return s;
}

uint64_t pl_str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return h;
}

FILE *pl_fopen_nowait(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), err;
	FILE *f;

	if (fd < 0)
		return NULL;
	if (!fstat(fd, st)) {
		f = fdopen(fd, "r");
		if (f)
			return f;
	}
	err = errno;
	close(fd);
	errno = err;
	return NULL;
}

volatile sig_atomic_t pl_stop;

static void on_stop(int sig)
{
	(void)sig;
	pl_stop = 1;
}

void pl_catch_stop(void)
{
	struct sigaction sa = { .sa_handler = on_stop }, old;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a hang-up (the terminal gone) is a clean end too, unless ignored as nohup(1) asks */
	if (!sigaction(SIGHUP, NULL, &old) && old.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
}

int pl_parse_duration(const char *cmd, const char *arg, uint64_t *secs)
{
	if (!pl_parse_u64(arg, 1, 86400 * 366, secs))
		return PL_EXIT_OK;
	pl_err("%s: --duration '%s': not a number of seconds from 1 to 31622400 (366 days)", cmd, arg);
	return PL_EXIT_USAGE;
}
