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
/* Exit code for a -errno from the loader. */
int pl_exit_code(int err);

#endif /* __PKTLENS_CLI_COMMON_H */
