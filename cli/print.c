// SPDX-License-Identifier: GPL-2.0
/* One call per value for text and JSON (cli/print.h). */
#include <stdarg.h>
#include <stdio.h>

#include "print.h"
#include "util.h"
#include "../export/format.h"

/* the formats are the callers' (one value each), as in iproute2's json_print.c */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static struct jw w;

void pl_print_start(void)
{
	jw_init(&w, stdout, pl_g.pretty);
}

void pl_print_end(void)
{
	if (pl_g.json)
		jw_end(&w);
}

struct jw *pl_print_jw(void)
{
	return pl_g.json ? &w : NULL;
}

static bool json_key(const char *key)
{
	if (!pl_g.json)
		return false;
	if (key)
		jw_key(&w, key);
	return true;
}

void pl_print_obj_open(const char *key)
{
	if (json_key(key))
		jw_obj_open(&w);
}

void pl_print_obj_close(void)
{
	if (pl_g.json)
		jw_obj_close(&w);
}

void pl_print_arr_open(const char *key)
{
	if (json_key(key))
		jw_arr_open(&w);
}

void pl_print_arr_close(void)
{
	if (pl_g.json)
		jw_arr_close(&w);
}

void pl_print_u64(const char *key, const char *fmt, uint64_t v)
{
	if (json_key(key))
		jw_u64(&w, v);
	else if (!pl_g.json && fmt)
		printf(fmt, (unsigned long long)v);
}

void pl_print_bool(const char *key, const char *fmt, bool v)
{
	if (json_key(key))
		jw_bool(&w, v);
	else if (!pl_g.json && fmt)
		printf(fmt, v ? "yes" : "no");
}

void pl_print_str(const char *key, const char *fmt, const char *s)
{
	if (json_key(key))
		jw_str(&w, s);
	else if (!pl_g.json && fmt && s)
		printf(fmt, s);
}

void pl_print_name(const char *key, const char *fmt, const char *name)
{
	if (pl_g.json && key)
		jw_name_field(&w, key, name);
	else if (!pl_g.json && fmt)
		printf(fmt, PL_NAME(name));
}

void pl_print_text(const char *fmt, ...)
{
	va_list ap;

	if (pl_g.json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}
