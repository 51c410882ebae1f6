// SPDX-License-Identifier: GPL-2.0
/* pktlens daemon [--config FILE]: the service (service/daemon.c) in the foreground. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "util.h"
#include "../service/config.h"
#include "../service/daemon.h"

#define DAEMON_USAGE "Usage: pktlens daemon [--config FILE]\n"

static void daemon_usage(FILE *f)
{
	fprintf(f, DAEMON_USAGE
		"\n"
		"Apply FILE (default " PL_CONFIG_DEFAULT ") as `pktlens apply` does, then\n"
		"keep it applied, in the foreground (systemd: Type=notify, READY=1 once\n"
		"applied): attach to every matching interface as it appears (rtnetlink), in\n"
		"every matching named namespace as it appears (/run/netns), follow renames,\n"
		"log a deleted interface's final totals. SIGHUP reloads FILE (a bad one is\n"
		"reported and the running state stays); SIGTERM leaves the attachments\n"
		"counting (on-stop: keep) or detaches them (on-stop: detach). The exporters\n"
		"FILE names run in this process. One line per event on stderr.\n"
		"\n"
		"  --config FILE  the config (YAML, see docs/pktlens.conf)\n"
		"  -h, --help     this help\n");
}

int do_daemon(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *config = PL_CONFIG_DEFAULT;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			daemon_usage(stdout);
			return PL_EXIT_OK;
		default:
			pl_err("daemon: unknown option '%s' (see pktlens daemon --help)", argv[optind - 1]);
			return PL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pl_err("daemon: what is '%s'? (see pktlens daemon --help)", argv[optind]);
		return PL_EXIT_USAGE;
	}
	ret = pl_need_caps("daemon", PL_NEED_BPF | PL_NEED_NET_ADMIN);
	return ret ? ret : pl_daemon_run(config);
}
