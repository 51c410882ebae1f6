/* SPDX-License-Identifier: GPL-2.0 */
/* The command objects; each lives in cli/<object>.c. */
#ifndef __PKTLENS_CLI_CLI_H
#define __PKTLENS_CLI_CLI_H

int do_attach(int argc, char **argv);
int do_detach(int argc, char **argv);
int do_list(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_flows(int argc, char **argv);
int do_filter(int argc, char **argv);
int do_policy(int argc, char **argv);
int do_sample(int argc, char **argv);
int do_tcp(int argc, char **argv);
int do_drops(int argc, char **argv);
int do_export(int argc, char **argv);
int do_top(int argc, char **argv);

#endif /* __PKTLENS_CLI_CLI_H */
