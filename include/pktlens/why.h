/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one way to fail with a reason: write one line saying why into the
 * caller's buffer and return the error, so a failure is one statement:
 *
 *	return pl_why(why, whylen, -ENODEV, "%s: no such interface", ifname);
 *
 * A NULL or empty buffer drops the reason. User side only.
 */
#ifndef PKTLENS_WHY_H
#define PKTLENS_WHY_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

__attribute__((format(printf, 4, 0)))
static inline int pl_vwhy(char *why, size_t whylen, int err, const char *fmt, va_list ap)
{
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	return err;
}

__attribute__((format(printf, 4, 5)))
static inline int pl_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pl_vwhy(why, whylen, err, fmt, ap);
	va_end(ap);
	return err;
}

/*
 * Whether -errno @err is this process running out of descriptors or memory:
 * a reading that failed, not a broken or missing thing read. Counters that
 * cannot be read so are never removed, nor called gone.
 */
static inline bool pl_starved(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM;
}

#endif /* PKTLENS_WHY_H */
