// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens export prometheus [--listen ADDR:PORT]: serve /metrics
 * (export/serve.c, export/prom.c), on loopback unless told otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "../export/ipfix.h"
#include "../export/prom.h"
#include "../export/serve.h"
#include "../loader/loader.h"

#define EXPORT_USAGE \
	"Usage: pktlens export prometheus [--listen ADDR:PORT] [--duration SECS]\n" \
	"       pktlens export ipfix --collector HOST:PORT [--interval SECS] [--observation-domain N]\n" \
	"                            [--duration SECS]\n"
#define TEMPLATE_EVERY 10	/* intervals between template sets */

static void export_usage(FILE *f)
{
	fputs(EXPORT_USAGE, f);
	fputs("\nServe every attachment's counters (all network namespaces) at\n"
	      "http://ADDR:PORT/metrics in the Prometheus text format, until Ctrl-C or\n"
	      "--duration.\n\n"
	      "  --listen ADDR:PORT  address to listen on (default " PL_PROM_LISTEN_DEFAULT
	      "; [::1]:PORT for IPv6);\n"
	      "                      only loopback unless you name another address\n"
	      "  --duration SECS     stop after SECS seconds\n"
	      "\nipfix: send every attachment's flows to an IPFIX collector (RFC 7011, UDP)\n"
	      "every --interval seconds (default 10): the packets and bytes each flow gained\n"
	      "since the last export; templates first and every 10 intervals; a last export\n"
	      "at the end.\n"
	      "  --collector HOST:PORT  where to send ([v6]:PORT for IPv6)\n"
	      "  --observation-domain N  the observation domain id (default 0)\n", f);
}

/* libmicrohttpd's complaints, rate-limited by the server */
static void on_server_log(void *ctx, const char *line)
{
	(void)ctx;
	pl_warn("export prometheus: %s", line);
}

static int do_prometheus(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *listen = PL_PROM_LISTEN_DEFAULT;
	struct pl_prom_server *srv;
	struct sockaddr_storage ss;
	uint64_t duration = 0;
	char why[PL_WHY_LEN];
	socklen_t sl;
	time_t t0;
	int opt;

	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			if (pl_parse_duration("export prometheus", optarg, &duration))
				return PL_EXIT_USAGE;
			break;
		case 'h':
			export_usage(stdout);
			return PL_EXIT_OK;
		default:
			fputs(EXPORT_USAGE, stderr);
			return PL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pl_err("export prometheus: unexpected '%s'", argv[optind]);
		return PL_EXIT_USAGE;
	}
	if (pl_listen_parse(listen, &ss, &sl) < 0) {
		pl_err("export prometheus: --listen '%s': not ADDR:PORT (e.g. 127.0.0.1:9435, "
		       "[::1]:9435)", listen);
		return PL_EXIT_USAGE;
	}
	if (pl_need_caps("export", PL_NEED_BPF))
		return PL_EXIT_FAIL;
	srv = pl_prom_serve(listen, &(struct pl_prom_hooks){ .log = on_server_log }, why, sizeof(why));
	if (!srv) {
		pl_err("export prometheus: %s", why);
		return PL_EXIT_FAIL;
	}
	pl_catch_stop(false);
	signal(SIGPIPE, SIG_IGN);
	pl_info("export prometheus: serving http://%s/metrics", listen);
	t0 = time(NULL);
	while (!pl_stop && (!duration || (uint64_t)(time(NULL) - t0) < duration))
		usleep(100000);
	pl_prom_serve_stop(srv);
	return PL_EXIT_OK;
}

static int do_ipfix(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "collector", required_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' },
		{ "observation-domain", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *collector = NULL;
	uint32_t interval = 10, domain = 0;
	uint64_t duration = 0;
	struct pl_ipfix *x = NULL;
	char why[256];
	time_t t0, next;
	unsigned round = 0;
	bool failed = false;
	size_t recs;
	int opt, err;

	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			collector = optarg;
			break;
		case 'i':
			if (pl_parse_u32(optarg, 1, 86400, &interval)) {
				pl_err("export ipfix: --interval '%s': not 1..86400 seconds", optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 'o':
			if (pl_parse_u32(optarg, 0, UINT32_MAX, &domain)) {
				pl_err("export ipfix: --observation-domain '%s': not a 32-bit number",
				       optarg);
				return PL_EXIT_USAGE;
			}
			break;
		case 'd':
			if (pl_parse_duration("export ipfix", optarg, &duration))
				return PL_EXIT_USAGE;
			break;
		case 'h':
			export_usage(stdout);
			return PL_EXIT_OK;
		default:
			fputs(EXPORT_USAGE, stderr);
			return PL_EXIT_USAGE;
		}
	}
	if (!collector || optind < argc) {
		pl_err("export ipfix: %s", collector ? "unexpected arguments" :
			"--collector HOST:PORT is needed");
		return PL_EXIT_USAGE;
	}
	if (pl_need_caps("export", PL_NEED_BPF))
		return PL_EXIT_FAIL;
	err = pl_ipfix_open(collector, domain, &x, why, sizeof(why));
	if (err) {
		pl_err("export ipfix: --collector '%s': %s", collector, why);
		return PL_EXIT_CODE(err, EINVAL);
	}
	pl_catch_stop(false);
	pl_info("export ipfix: to %s every %u s", collector, interval);
	t0 = time(NULL);
	next = t0 + interval;
	for (;;) {
		bool last = pl_stop || (duration && (uint64_t)(time(NULL) - t0) >= duration);

		if (!last && time(NULL) < next) {
			usleep(100000);
			continue;
		}
		next += interval;
		/*
		 * A collector that is down loses this interval, not the next one's
		 * counts; once it answers again it gets the templates first.
		 */
		failed = pl_ipfix_export(x, failed || round++ % TEMPLATE_EVERY == 0, &recs, why,
					 sizeof(why)) != 0;
		if (failed)
			pl_err("export ipfix: %s: %s", collector, why);
		if (last)
			break;
	}
	pl_ipfix_close(x);
	return PL_EXIT_OK;
}

int do_export(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : NULL;

	if (!what || !strcmp(what, "-h") || !strcmp(what, "--help")) {
		export_usage(what ? stdout : stderr);
		return what ? PL_EXIT_OK : PL_EXIT_USAGE;
	}
	if (!strcmp(what, "prometheus"))
		return do_prometheus(argc - 1, argv + 1);
	if (!strcmp(what, "ipfix"))
		return do_ipfix(argc - 1, argv + 1);
	pl_err("export: what is '%s'? (prometheus or ipfix; see pktlens export --help)", what);
	return PL_EXIT_USAGE;
}
