/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small streaming JSON writer: objects, arrays, strings (escaped), numbers,
 * booleans and null. Keys are given with jw_key() or the *_field helpers.
 * Strings always come out valid: controls escaped, each byte that is not
 * UTF-8 as U+FFFD. Compact by default; `pretty` indents like `bpftool -p`.
 */
#ifndef __PKTLENS_EXPORT_JSON_H
#define __PKTLENS_EXPORT_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 32

struct jw {
	FILE *f;
	bool pretty;
	int depth;
	bool first[JW_MAX_DEPTH];	/* no member written yet at this depth */
	bool after_key;
};

void jw_init(struct jw *w, FILE *f, bool pretty);
void jw_obj_open(struct jw *w);
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w);
void jw_arr_close(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *s);
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_double(struct jw *w, double v);
/* fixed-point with @decimals digits, e.g. epoch seconds to the microsecond */
void jw_fixed(struct jw *w, double v, int decimals);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* End a document: newline and flush. */
void jw_end(struct jw *w);
/* A whole document of its own, {"error": @msg}: what fails under -j (pl_err(), the daemon). */
void jw_error_doc(FILE *f, const char *msg);

/* key + value in one call */
void jw_str_field(struct jw *w, const char *key, const char *s);
void jw_u64_field(struct jw *w, const char *key, uint64_t v);
void jw_i64_field(struct jw *w, const char *key, int64_t v);
void jw_double_field(struct jw *w, const char *key, double v);
void jw_fixed_field(struct jw *w, const char *key, double v, int decimals);
void jw_bool_field(struct jw *w, const char *key, bool v);
/* An interface name, as pl_fmt_name() shows it (NULL: null). */
void jw_name_field(struct jw *w, const char *key, const char *name);

#endif /* __PKTLENS_EXPORT_JSON_H */
