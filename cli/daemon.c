// SPDX-License-Identifier: GPL-2.0
/* pktlens daemon [--config FILE]: the service (service/daemon.c) in the foreground. */
#include <stdio.h>

#include "cli.h"
#include "util.h"
#include "../service/config.h"
#include "../service/daemon.h"

struct daemon_cfg {
	const char *config;
};

static int do_daemon(void *cfgp, int argc, char **argv)
{
	const struct daemon_cfg *cfg = cfgp;
	int ret;

	(void)argc;
	(void)argv;
	ret = pl_need_caps("daemon", PL_NEED_BPF | PL_NEED_NET_ADMIN | PL_NEED_PERFMON);
	return ret ? ret : pl_daemon_run(cfg->config, pl_g.json);
}

static const struct pl_opt daemon_opts[] = {
	{ .name = "config", .type = PL_OPT_STRING, PL_FIELD(struct daemon_cfg, config), .arg = "FILE",
	  .help = "the config (YAML, see docs/pktlens.conf; default " PL_CONFIG_DEFAULT ")" },
	{ NULL },
};

static const struct daemon_cfg daemon_defaults = { .config = PL_CONFIG_DEFAULT };

const struct pl_cmd pl_cmd_daemon = {
	.name = "daemon", .opts = daemon_opts, .fn = do_daemon, .defaults = &daemon_defaults,
	.cfg_size = sizeof(struct daemon_cfg), .max_args = 0,
	.many = "what is '%s'? (see pktlens daemon --help)",
	.about = "Apply FILE (default " PL_CONFIG_DEFAULT ") as `pktlens apply` does, then\n"
		 "keep it applied, in the foreground (systemd: Type=notify, READY=1 once\n"
		 "applied): attach to every matching interface as it appears (rtnetlink), in\n"
		 "every matching named namespace as it appears (/run/netns), follow renames,\n"
		 "log a deleted interface's final totals. SIGHUP reloads FILE (a bad one is\n"
		 "reported and the running state stays); SIGTERM leaves the attachments\n"
		 "counting (on-stop: keep) or detaches them (on-stop: detach). The exporters\n"
		 "FILE names run in this process. One line per event on stderr.\n",
};
