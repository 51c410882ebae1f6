/* SPDX-License-Identifier: GPL-2.0 */
/* The command objects; each lives in cli/<object>.c. */
#ifndef __PKTLENS_CLI_CLI_H
#define __PKTLENS_CLI_CLI_H

#include "opt.h"

extern const struct pl_cmd pl_cmd_attach;
extern const struct pl_cmd pl_cmd_detach;
extern const struct pl_cmd pl_cmd_list;
extern const struct pl_cmd pl_cmd_stats;
extern const struct pl_cmd pl_cmd_flows;
extern const struct pl_cmd pl_cmd_filter;
extern const struct pl_cmd pl_cmd_policy;
extern const struct pl_cmd pl_cmd_sample;
extern const struct pl_cmd pl_cmd_tcp;
extern const struct pl_cmd pl_cmd_export;
extern const struct pl_cmd pl_cmd_top;
extern const struct pl_cmd pl_cmd_apply;
extern const struct pl_cmd pl_cmd_daemon;

#endif /* __PKTLENS_CLI_CLI_H */
