// SPDX-License-Identifier: GPL-2.0
/*
 * pktlens export prometheus [--listen ADDR:PORT]: serve /metrics (export/prom.c)
 * with libmicrohttpd, on loopback unless told otherwise. Every scrape reads
 * the pinned maps afresh. A thread per connection serves concurrent scrapes;
 * idle or half-open clients are dropped after a timeout; other paths get 404,
 * other methods 405.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli.h"
#include "util.h"
#include "../export/ipfix.h"
#include "../export/prom.h"

#define TEMPLATE_EVERY 10	/* intervals between template sets */
#define DEFAULT_LISTEN "127.0.0.1:9435"
#define CLIENT_TIMEOUT_S 10
/*
 * Clients that may connect and hang on without stopping scrapes, and the
 * scrapes served at once beside them. One thread per connection: the limit
 * is the daemon's, not split over a pool's threads (libmicrohttpd gives
 * each pool thread 1/Nth of it, so a few idle clients on one thread made it
 * refuse scrapes long before the limit).
 */
#define IDLE_CLIENTS_MAX 64
#define SCRAPES_MAX 16
#define LOG_EVERY_S 1		/* libmicrohttpd's complaints: at most a line a second */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text,
			     const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, "Allow", allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body = NULL;
	size_t len = 0;
	int err;

	(void)cls;
	(void)version;
	(void)data;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "GET, HEAD");
	if (!*state) {		/* first call: headers only; answer on the second */
		*state = (void *)1;
		return MHD_YES;
	}
	if (*data_size)
		return reply(c, MHD_HTTP_BAD_REQUEST, "no body expected\n", NULL);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
	err = pl_prom_render(&body, &len);
	if (err)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the pinned maps\n", NULL);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * libmicrohttpd's log (refused connections, bad requests): a client can
 * provoke a line per connection, so at most one line per LOG_EVERY_S in
 * pktlens's format, counting what was left out.
 */
static struct {
	pthread_mutex_t lock;
	struct timespec last;
	unsigned long dropped;
	bool starting;		/* MHD_start_daemon(): its failure is ours to say */
} mhd_log = { PTHREAD_MUTEX_INITIALIZER, { 0, 0 }, 0, false };

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	struct timespec now;
	size_t len;

	(void)cls;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&mhd_log.lock);
	if (mhd_log.starting) {
		pthread_mutex_unlock(&mhd_log.lock);
		return;
	}
	if (mhd_log.last.tv_sec && now.tv_sec - mhd_log.last.tv_sec < LOG_EVERY_S) {
		mhd_log.dropped++;
		pthread_mutex_unlock(&mhd_log.lock);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '.'))
		msg[--len] = '\0';
	if (mhd_log.dropped)
		pl_warn("export prometheus: %s (and %lu more such lines in %d s)", msg,
			mhd_log.dropped, (int)(now.tv_sec - mhd_log.last.tv_sec));
	else
		pl_warn("export prometheus: %s", msg);
	mhd_log.last = now;
	mhd_log.dropped = 0;
	pthread_mutex_unlock(&mhd_log.lock);
}

/* "127.0.0.1:9435", "[::1]:9435", "0.0.0.0:9435" */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	uint32_t port;
	size_t hl;

	if (!colon || pl_parse_u32(colon + 1, 1, 65535, &port))
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host) || !hl)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -EINVAL;
		if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
			/* an IPv6-only socket cannot bind it: the IPv4 address it maps */
			struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

			memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
			memset(ss, 0, sizeof(*ss));
			memcpy(ss, &a4, sizeof(a4));
			*sl = sizeof(a4);
			return AF_INET;
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a6);
		return AF_INET6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*a4);
		return AF_INET;
	}
}

struct export_cfg {
	const char *listen, *collector;
	uint32_t interval, domain;
	uint64_t duration;
};

static int do_prometheus(void *cfg, int argc, char **argv)
{
	const struct export_cfg *c = cfg;
	const char *listen = c->listen;
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	uint64_t duration = c->duration;
	socklen_t sl;
	time_t t0;
	int fam;

	(void)argc, (void)argv;
	fam = parse_listen(listen, &ss, &sl);
	if (fam < 0) {
		pl_err("export prometheus: --listen '%s': not ADDR:PORT (e.g. 127.0.0.1:9435, "
		       "[::1]:9435)", listen);
		return PL_EXIT_USAGE;
	}
	if (pl_need_caps("export", PL_NEED_BPF))
		return PL_EXIT_FAIL;
	mhd_log.starting = true;
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
			     MHD_USE_ERROR_LOG | (fam == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, on_request, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,	/* first: all of it */
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CLIENT_TIMEOUT_S,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(IDLE_CLIENTS_MAX + SCRAPES_MAX),
			     MHD_OPTION_END);
	(void)sl;
	pthread_mutex_lock(&mhd_log.lock);
	mhd_log.starting = false;
	pthread_mutex_unlock(&mhd_log.lock);
	if (!d) {
		pl_err("export prometheus: cannot listen on %s: %s", listen, strerror(errno));
		return PL_EXIT_FAIL;
	}
	pl_catch_stop(false);
	signal(SIGPIPE, SIG_IGN);
	pl_info("export prometheus: serving http://%s/metrics", listen);
	t0 = time(NULL);
	while (!pl_stop && (!duration || (uint64_t)(time(NULL) - t0) < duration))
		usleep(100000);
	MHD_stop_daemon(d);
	if (mhd_log.dropped)
		pl_warn("export prometheus: %lu more lines of libmicrohttpd's left out", mhd_log.dropped);
	return PL_EXIT_OK;
}

static int do_ipfix(void *cfg, int argc, char **argv)
{
	const struct export_cfg *c = cfg;
	const char *collector = c->collector;
	uint32_t interval = c->interval, domain = c->domain;
	uint64_t duration = c->duration;
	struct pl_ipfix *x = NULL;
	char why[256];
	time_t t0, next;
	unsigned round = 0;
	bool failed = false;
	size_t recs;
	int err;

	(void)argc, (void)argv;
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

#define DURATION_OPT \
	{ .name = "duration", .type = PL_OPT_DURATION, PL_FIELD(struct export_cfg, duration), \
	  .arg = "SECS", .help = "stop after SECS seconds" }

static const struct pl_opt prometheus_opts[] = {
	{ .name = "listen", .type = PL_OPT_STRING, PL_FIELD(struct export_cfg, listen),
	  .arg = "ADDR:PORT",
	  .help = "address to listen on (default " DEFAULT_LISTEN "; [::1]:PORT for IPv6); only "
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
	{ .name = "observation-domain", .type = PL_OPT_UINT, PL_FIELD(struct export_cfg, domain),
	  .max = UINT32_MAX, .arg = "N", .bad = ": not a 32-bit number",
	  .help = "the observation domain id (default 0)" },
	DURATION_OPT,
	{ NULL },
};

static const struct export_cfg export_defaults = { .listen = DEFAULT_LISTEN, .interval = 10 };

static const struct pl_cmd export_prometheus = {
	.name = "prometheus", .opts = prometheus_opts, .fn = do_prometheus,
	.defaults = &export_defaults, .cfg_size = sizeof(struct export_cfg), .max_args = 0,
	.many = "unexpected '%s'",
	.about = "prometheus: serve every attachment's counters (all network namespaces) at\n"
		 "http://ADDR:PORT/metrics in the Prometheus text format, until Ctrl-C or\n"
		 "--duration.\n",
};

static const struct pl_cmd export_ipfix = {
	.name = "ipfix", .opts = ipfix_opts, .fn = do_ipfix, .defaults = &export_defaults,
	.cfg_size = sizeof(struct export_cfg), .max_args = 0, .many = "unexpected arguments",
	.about = "ipfix: send every attachment's flows to an IPFIX collector (RFC 7011, UDP)\n"
		 "every --interval seconds: the packets and bytes each flow gained since the last\n"
		 "export; templates first and every " PL_STR(TEMPLATE_EVERY) " intervals; a last "
		 "export at the end.\n",
};

const struct pl_cmd pl_cmd_export = {
	.name = "export", .flags = PL_CMD_NAME_SUBS,
	.subs = (const struct pl_cmd *const[]){ &export_prometheus, &export_ipfix, NULL },
};
