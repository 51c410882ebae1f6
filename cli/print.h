/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One print layer for text and JSON (as iproute2's print_uint(PRINT_ANY,
 * key, fmt, v)): a command prints each value once, with its JSON key and its
 * text format. Under -j the values go by key into one document on stdout
 * (export/json.h), else through the format; a NULL format prints the value
 * under -j only, a NULL key (pl_print_text) in text only. Objects and arrays
 * are JSON structure: nothing in text.
 */
#ifndef __PKTLENS_CLI_PRINT_H
#define __PKTLENS_CLI_PRINT_H

#include <stdbool.h>
#include <stdint.h>

#include "../export/json.h"

/* Begin and end a document (a JSON writer on stdout under -j; -p pretty). */
void pl_print_start(void);
void pl_print_end(void);
/* The writer, for JSON helpers (pl_json_hooks()); NULL in text. */
struct jw *pl_print_jw(void);

/* @key: the member's key inside an object, NULL inside an array */
void pl_print_obj_open(const char *key);
void pl_print_obj_close(void);
void pl_print_arr_open(const char *key);
void pl_print_arr_close(void);

void pl_print_u64(const char *key, const char *fmt, uint64_t v);	/* fmt: %llu */
void pl_print_bool(const char *key, const char *fmt, bool v);	/* fmt: %s, "yes"/"no" */
/* NULL @s: null in JSON, nothing in text */
void pl_print_str(const char *key, const char *fmt, const char *s);
/* An interface name: escaped as jw_name_field() and PL_NAME() do */
void pl_print_name(const char *key, const char *fmt, const char *name);
/* Text only */
__attribute__((format(printf, 1, 2))) void pl_print_text(const char *fmt, ...);

#endif /* __PKTLENS_CLI_PRINT_H */
