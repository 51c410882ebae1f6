// SPDX-License-Identifier: GPL-2.0
/* pktlens daemon [--config FILE] (placeholder, filled in next) */
#include "cli.h"
#include "util.h"

int do_daemon(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return PL_EXIT_FAIL;
}
