// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <inttypes.h>

#include "format.h"
#include "json.h"

void jw_init(struct jw *w, FILE *f, bool pretty)
{
	w->f = f;
	w->pretty = pretty;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
}

static void jw_indent(struct jw *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("    ", w->f);
}

/* Separator and indentation before a value or a key. */
static void jw_sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth])
			fputc(',', w->f);
		jw_indent(w);
	}
	w->first[w->depth] = false;
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	fputc(c, w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	bool empty = w->first[w->depth];

	if (w->depth > 0)
		w->depth--;
	if (!empty)
		jw_indent(w);
	fputc(c, w->f);
}

void jw_obj_open(struct jw *w) { jw_open(w, '{'); }
void jw_obj_close(struct jw *w) { jw_close(w, '}'); }
void jw_arr_open(struct jw *w) { jw_open(w, '['); }
void jw_arr_close(struct jw *w) { jw_close(w, ']'); }

/*
 * Always valid JSON: controls (C0, DEL, C1) as \u escapes, and each byte
 * that is not part of valid UTF-8 as U+FFFD (the replacement character).
 */
static void jw_quoted(struct jw *w, const char *s)
{
	fputc('"', w->f);
	while (*s) {
		uint32_t cp = 0;
		size_t n = pl_utf8_seq(s, &cp);

		if (!n) {
			fputs("\\ufffd", w->f);
			s++;
			continue;
		}
		switch (cp) {
		case '"': fputs("\\\"", w->f); break;
		case '\\': fputs("\\\\", w->f); break;
		case '\n': fputs("\\n", w->f); break;
		case '\r': fputs("\\r", w->f); break;
		case '\t': fputs("\\t", w->f); break;
		case '\b': fputs("\\b", w->f); break;
		case '\f': fputs("\\f", w->f); break;
		default:
			if (PL_IS_CONTROL(cp))
				fprintf(w->f, "\\u%04x", (unsigned int)cp);
			else
				fwrite(s, 1, n, w->f);
		}
		s += n;
	}
	fputc('"', w->f);
}

void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	jw_quoted(w, key);
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
	jw_sep(w);
	if (s)
		jw_quoted(w, s);
	else
		fputs("null", w->f);
}

void jw_u64(struct jw *w, uint64_t v)
{
	jw_sep(w);
	fprintf(w->f, "%" PRIu64, v);
}

void jw_i64(struct jw *w, int64_t v)
{
	jw_sep(w);
	fprintf(w->f, "%" PRId64, v);
}

void jw_double(struct jw *w, double v)
{
	jw_sep(w);
	if (isfinite(v))
		fprintf(w->f, "%.9g", v);
	else
		fputs("null", w->f);
}

void jw_fixed(struct jw *w, double v, int decimals)
{
	jw_sep(w);
	if (isfinite(v))
		fprintf(w->f, "%.*f", decimals, v);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, bool v)
{
	jw_sep(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
	jw_sep(w);
	fputs("null", w->f);
}

void jw_end(struct jw *w)
{
	fputc('\n', w->f);
	fflush(w->f);
}

void jw_error_doc(FILE *f, const char *msg)
{
	struct jw w;

	jw_init(&w, f, false);
	jw_obj_open(&w);
	jw_str_field(&w, "error", msg);
	jw_obj_close(&w);
	jw_end(&w);
}

void jw_str_field(struct jw *w, const char *key, const char *s) { jw_key(w, key); jw_str(w, s); }
void jw_u64_field(struct jw *w, const char *key, uint64_t v) { jw_key(w, key); jw_u64(w, v); }
void jw_i64_field(struct jw *w, const char *key, int64_t v) { jw_key(w, key); jw_i64(w, v); }
void jw_double_field(struct jw *w, const char *key, double v) { jw_key(w, key); jw_double(w, v); }
void jw_bool_field(struct jw *w, const char *key, bool v) { jw_key(w, key); jw_bool(w, v); }
void jw_fixed_field(struct jw *w, const char *key, double v, int decimals) { jw_key(w, key); jw_fixed(w, v, decimals); }

void jw_name_field(struct jw *w, const char *key, const char *name)
{
	char buf[PL_NAME_TEXT];

	jw_key(w, key);
	jw_str(w, name ? pl_fmt_name(name, buf, sizeof(buf)) : NULL);
}
