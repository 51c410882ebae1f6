/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Prometheus endpoint: /metrics over HTTP (libmicrohttpd, threads of its
 * own), for `pktlens export prometheus` and `pktlens daemon`.
 */
#ifndef __PKTLENS_EXPORT_SERVE_H
#define __PKTLENS_EXPORT_SERVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "../loader/loader.h"

#define PL_PROM_LISTEN_DEFAULT "127.0.0.1:9435"

/* A port number, decimal 1-65535 (no sign, no 0x): the port, or -EINVAL. */
int pl_port_parse(const char *s);
/*
 * "127.0.0.1:9435", "[::1]:9435", "0.0.0.0:9435", "localhost:9435" (a name:
 * its first IPv4 address, else IPv6): the address family, or -EINVAL with
 * @why: PL_LISTEN_WANT, or "HOST: " and why the name does not resolve.
 */
int pl_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sl, char *why,
		    size_t whylen);
/* "http://LISTEN/metrics", ":PORT" said as the every-address it is, into @buf */
const char *pl_listen_url(const char *listen, char *buf, size_t len);
/* What pl_listen_parse() takes, for the error that refuses the rest. */
#define PL_LISTEN_WANT "not ADDR:PORT (e.g. 127.0.0.1:9435, [::1]:9435, :9435 for every address)"

struct pl_prom_server;
/*
 * What the server serves, and tells its owner (each callback may be NULL;
 * called from server threads).
 */
struct pl_prom_hooks {
	/*
	 * a render of /metrics begins: a number for it, greater than that of
	 * every render begun before (the owner counts them)
	 */
	unsigned long (*rendering)(void *ctx);
	/*
	 * a scrape is over: a GET /metrics whose render (numbered @render by
	 * rendering(), 0 without it) succeeded and whose response went out whole
	 * (not a 404, 400, 500, HEAD or a client gone)
	 */
	void (*scraped)(void *ctx, unsigned long render);
	/* libmicrohttpd's complaints, at most one line a second (counting the rest) */
	void (*log)(void *ctx, const char *line);
	void *ctx;
	/* the attachments of this namespace alone (-n); ino 0: every namespace's */
	struct pl_netns only;
	/*
	 * listen on an address this host has yet to configure (IP_FREEBIND):
	 * the daemon, which starts before the network; the command says a
	 * mistyped address instead
	 */
	bool freebind;
};
/*
 * Serve the attachments' metrics (pl_prom_render()) at http://@listen/metrics:
 * a thread per connection, up to 64 idle clients beside 16 scrapes, idle or
 * half-open clients dropped after a timeout, 404 for other paths, 405 for
 * other methods. After each scrape the memory it took goes back to the
 * system. @h may be NULL. NULL with @why (and errno) on error.
 */
struct pl_prom_server *pl_prom_serve(const char *listen, const struct pl_prom_hooks *h,
				     char *why, size_t whylen);
void pl_prom_serve_stop(struct pl_prom_server *s);

#endif /* __PKTLENS_EXPORT_SERVE_H */
