/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Prometheus endpoint: /metrics over HTTP (libmicrohttpd, threads of its
 * own), for `pktlens export prometheus` and `pktlens daemon`.
 */
#ifndef __PKTLENS_EXPORT_SERVE_H
#define __PKTLENS_EXPORT_SERVE_H

#include <stddef.h>
#include <sys/socket.h>

#define PL_PROM_LISTEN_DEFAULT "127.0.0.1:9435"

/* "127.0.0.1:9435", "[::1]:9435", "0.0.0.0:9435": the address family, or -EINVAL. */
int pl_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sl);

struct pl_prom_server;
/*
 * Serve every attachment's metrics (pl_prom_render()) at http://@listen/metrics:
 * a small thread pool, idle or half-open clients dropped after a timeout,
 * 404 for other paths, 405 for other methods. After each scrape the memory
 * it took goes back to the system, and @scraped (may be NULL) is called,
 * from a server thread. NULL with @why on error.
 */
struct pl_prom_server *pl_prom_serve(const char *listen, void (*scraped)(void *ctx), void *ctx,
				     char *why, size_t whylen);
void pl_prom_serve_stop(struct pl_prom_server *s);

#endif /* __PKTLENS_EXPORT_SERVE_H */
