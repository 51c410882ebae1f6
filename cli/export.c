// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens export prometheus [--listen ADDR:PORT]: serve /metrics
 * (export/serve.c, export/prom.c), on loopback unless told otherwise.
 * pktlens export ipfix --collector HOST:PORT: send the flows (export/ipfix.c).
 * Both export every namespace's attachments; with -n NETNS (entered by
 * main.c before this runs) that namespace's alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pktlens/clock.h>

#include "cli.h"
#include "util.h"
#include "../export/ipfix.h"
#include "../export/prom.h"
#include "../export/serve.h"
#include "../loader/loader.h"


/* libmicrohttpd's complaints, rate-limited by the server */
static void on_server_log(void *ctx, const char *line)
{
	(void)ctx;
	pl_warn("export prometheus: %s", line);
}

struct export_cfg {
	const char *listen, *collector;
	uint32_t interval, domain, tpl_secs;
	uint64_t duration;
};

/* Sleep until @until_ns (pl_mono_ns()), at most 100 ms: the loop sees pl_stop meanwhile. */
static void nap_until(uint64_t until_ns)
{
	int ms = pl_deadline_ms(until_ns, 100);

	if (ms)
		usleep((useconds_t)ms * 1000);
}

static int do_prometheus(void *cfg, int argc, char **argv)
{
	const struct export_cfg *c = cfg;
	const char *listen = c->listen;
	struct pl_prom_hooks h = { .log = on_server_log };
	struct pl_prom_server *srv;
	struct sockaddr_storage ss;
	uint64_t duration = c->duration;
	char why[PL_WHY_LEN], url[128];
	socklen_t sl;
	uint64_t end_ns;
	int err;

	(void)argc, (void)argv;
	if (pl_listen_parse(listen, &ss, &sl, why, sizeof(why)) < 0) {
		pl_err("export prometheus: --listen '%s': %s", listen, why);
		return PL_EXIT_USAGE;
	}
	if (pl_need_caps("export", PL_NEED_BPF))
		return PL_EXIT_FAIL;
	/* -n: that namespace's attachments alone (serve.c renders them) */
	if (pl_g.netns && (err = pl_netns_here(&h.only))) {
		pl_err("export prometheus: netns '%s': %s", pl_g.netns, strerror(-err));
		return PL_EXIT_FAIL;
	}
	srv = pl_prom_serve(listen, &h, why, sizeof(why));
	if (!srv) {
		pl_err("export prometheus: %s", why);
		return PL_EXIT_FAIL;
	}
	pl_catch_stop();
	signal(SIGPIPE, SIG_IGN);
	pl_info("export prometheus: serving %s", pl_listen_url(listen, url, sizeof(url)));
	/* the whole --duration from now, not to the wall clock's next whole second */
	end_ns = pl_deadline_in(duration);
	while (!pl_stop && !pl_deadline_passed(end_ns))
		nap_until(end_ns);
	pl_prom_serve_stop(srv);
	return PL_EXIT_OK;
}

static int do_ipfix(void *cfg, int argc, char **argv)
{
	const struct export_cfg *c = cfg;
	const char *collector = c->collector;
	uint32_t interval = c->interval, domain = c->domain;
	uint64_t duration = c->duration;
	struct pl_ipfix *x = NULL;
	char why[256], said[256] = "";
	uint64_t t0, next, end;
	bool failed = false, was;
	size_t recs;
	int err;

	(void)argc, (void)argv;
	if (pl_need_caps("export", PL_NEED_BPF))
		return PL_EXIT_FAIL;
	err = pl_ipfix_open(collector, domain, false, &x, why, sizeof(why));
	if (err) {
		pl_err("export ipfix: --collector '%s': %s", collector, why);
		return PL_EXIT_CODE(err, EINVAL);
	}
	if (pl_g.netns)
		pl_ipfix_home_only(x);
	pl_ipfix_template_refresh(x, c->tpl_secs);
	if (pl_ipfix_interval(x, interval, why, sizeof(why)))
		pl_warn("export ipfix: %s: the flows removed between exports (stats --reset, "
			"detach) are not sent", why);
	pl_catch_stop();
	pl_info("export ipfix: to %s every %u s", collector, interval);
	/*
	 * Exports every --interval and at the end of the whole --duration from
	 * now, on the monotonic clock: the wall clock's next whole second cut
	 * --duration short by up to a second, and a clock step moved both.
	 */
	t0 = pl_mono_ns();
	next = t0 + interval * 1000000000ULL;
	end = t0 + duration * 1000000000ULL;
	for (;;) {
		uint64_t now = pl_mono_ns();
		bool last = pl_stop || (duration && now >= end);

		if (!last && now < next) {
			nap_until(duration && end < next ? end : next);
			continue;
		}
		next += interval * 1000000000ULL;
		/*
		 * A message send() refuses goes out, with the round's later
		 * records, at the next export (each delta once), the
		 * templates first.
		 */
		was = failed;
		failed = pl_ipfix_export(x, failed, &recs, why, sizeof(why)) != 0;
		/* as the daemon logs it: once, until the collector answers again (or fails otherwise) */
		if (failed && (!was || strcmp(why, said)))
			pl_err("export ipfix: %s: %s", collector, why);
		else if (!failed && was)
			pl_info("export ipfix: %s answers again", collector);
		snprintf(said, sizeof(said), "%s", failed ? why : "");
		if (last)
			break;
	}
	/* a last export that could not send: a failure (said above), its state kept all the same */
	failed = pl_ipfix_failed(x);
	if (pl_ipfix_save(x, why, sizeof(why)))
		pl_warn("export ipfix: %s: the next exporter to %s sends every flow's whole count "
			"again", why, collector);
	pl_ipfix_close(x);
	return failed ? PL_EXIT_FAIL : PL_EXIT_OK;
}

#define DURATION_OPT \
	{ .name = "duration", .type = PL_OPT_DURATION, PL_FIELD(struct export_cfg, duration), \
	  .arg = "SECS", .help = "stop after SECS seconds" }

static const struct pl_opt prometheus_opts[] = {
	{ .name = "listen", .type = PL_OPT_STRING, PL_FIELD(struct export_cfg, listen),
	  .arg = "ADDR:PORT",
	  .help = "address to listen on (default " PL_PROM_LISTEN_DEFAULT "; [::1]:PORT for IPv6); only "
		  "loopback unless you name another address" },
	DURATION_OPT,
	{ NULL },
};

static const struct pl_opt ipfix_opts[] = {
	{ .name = "collector", .type = PL_OPT_STRING, PL_FIELD(struct export_cfg, collector),
	  .arg = "HOST:PORT", .flags = PL_OPT_REQUIRED,
	  .help = "where to send ([v6]:PORT for IPv6)" },
	{ .name = "interval", .type = PL_OPT_UINT, PL_FIELD(struct export_cfg, interval), .min = 1,
	  .max = 86400, .arg = "SECS", .bad = ": not %llu..%llu seconds",
	  .help = "export every SECS seconds (default {default})" },
	{ .name = "template-refresh", .type = PL_OPT_UINT, PL_FIELD(struct export_cfg, tpl_secs),
	  .min = 1, .max = 86400, .arg = "SECS", .bad = ": not %llu..%llu seconds",
	  .help = "the templates again at least every SECS seconds (default {default}), and every "
		  PL_STR(PL_IPFIX_TEMPLATE_ROUNDS) " exports" },
	{ .name = "observation-domain", .type = PL_OPT_UINT, PL_FIELD(struct export_cfg, domain),
	  .max = UINT32_MAX, .arg = "N", .bad = ": not a 32-bit number",
	  .help = "the observation domain of this namespace's flows (default 0; every other "
		  "namespace's: its inode)" },
	DURATION_OPT,
	{ NULL },
};

static const struct export_cfg export_defaults = { .listen = PL_PROM_LISTEN_DEFAULT, .interval = 10,
						   .tpl_secs = PL_IPFIX_TEMPLATE_SECS };

static const struct pl_cmd export_prometheus = {
	.name = "prometheus", .opts = prometheus_opts, .fn = do_prometheus,
	.defaults = &export_defaults, .cfg_size = sizeof(struct export_cfg), .max_args = 0,
	.many = "unexpected '%s'",
	.about = "prometheus: serve every attachment's counters (all network namespaces; with\n"
		 "-n NETNS that namespace's alone, listening there) at\n"
		 "http://ADDR:PORT/metrics in the Prometheus text format, until Ctrl-C or\n"
		 "--duration.\n",
};

static const struct pl_cmd export_ipfix = {
	.name = "ipfix", .opts = ipfix_opts, .fn = do_ipfix, .defaults = &export_defaults,
	.cfg_size = sizeof(struct export_cfg), .max_args = 0, .many = "unexpected '%s'",
	.about = "ipfix: send every attachment's flows (with -n NETNS that namespace's alone,\n"
		 "sending from there) to an IPFIX collector (RFC 7011, UDP) every --interval\n"
		 "seconds: the packets and bytes each flow gained since the last export;\n"
		 "templates first, then every " PL_STR(PL_IPFIX_TEMPLATE_ROUNDS) " exports or "
		 "--template-refresh seconds; a last\nexport at the end. Each namespace is an "
		 "observation domain: this one's\n--observation-domain, another's its inode.\n",
};

const struct pl_cmd pl_cmd_export = {
	.name = "export", .flags = PL_CMD_NAME_SUBS,
	.subs = (const struct pl_cmd *const[]){ &export_prometheus, &export_ipfix, NULL },
};
