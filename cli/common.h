/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the commands that read attachments. */
#ifndef __PKTLENS_CLI_COMMON_H
#define __PKTLENS_CLI_COMMON_H

#include "../loader/loader.h"

/*
 * The attachments a command works on in this network namespace: @ifname's,
 * or all. Prints the error and returns an exit code (0 on success).
 */
int pl_select(const char *cmd, const char *ifname, struct pl_attachment **a, size_t *n);
/* Open an attachment's maps, printing the error. Returns an exit code. */
int pl_open_state(const char *cmd, const struct pl_attachment *a, struct pl_state *st);
/*
 * A failed pl_*_open() of @a's pins: prints "CMD: IF: cannot open pinned maps
 * in DIR: why", with what to do for the likely causes ("CMD: IF: detached
 * meanwhile" when they are gone). Returns PL_EXIT_FAIL.
 */
int pl_open_error(const char *cmd, const struct pl_attachment *a, int err);
/* "CMD: IF: detached meanwhile": a view outlived its attachment. Returns PL_EXIT_FAIL. */
int pl_detached_error(const char *cmd, const char *ifname);

#endif /* __PKTLENS_CLI_COMMON_H */
