// SPDX-License-Identifier: GPL-2.0
/*
 * /metrics over HTTP with libmicrohttpd. Every scrape reads the pinned maps
 * afresh (pl_prom_render()). A thread per connection serves concurrent
 * scrapes; idle or half-open clients are dropped after a timeout; other
 * paths get 404, other methods 405. A scrape of large tables takes memory
 * that glibc keeps unless told: malloc_trim() after each one brings a
 * long-running exporter back to its idle size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <pktlens/why.h>

#include "prom.h"
#include "serve.h"

#define CLIENT_TIMEOUT_S 10
/*
 * Clients that may connect and hang on without stopping scrapes, and the
 * scrapes served at once beside them. One thread per connection: the limit
 * is the server's, not split over a pool's threads (libmicrohttpd gives
 * each pool thread 1/Nth of it, so a few idle clients on one thread made it
 * refuse scrapes long before the limit).
 */
#define IDLE_CLIENTS_MAX 64
#define SCRAPES_MAX 16
#define LOG_EVERY_S 1		/* libmicrohttpd's complaints: at most a line a second */

struct pl_prom_server {
	struct MHD_Daemon *d;
	struct pl_prom_hooks h;
	/* libmicrohttpd's log, rate-limited */
	pthread_mutex_t lock;
	struct timespec last;
	unsigned long dropped;
	bool starting;		/* MHD_start_daemon(): its failure is ours to say */
};

int pl_port_parse(const char *s)
{
	unsigned long port;

	/* decimal digits only, as every number pktlens reads (020 is twenty) */
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	port = strtoul(s, NULL, 10);
	return port >= 1 && port <= 65535 ? (int)port : -EINVAL;
}

/*
 * A host name (localhost, this host's name): resolved, its first IPv4
 * address, else its first IPv6 one.
 */
static int host_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sl,
		     char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *p, *pick = NULL;
	int err;

	if (!*host || strchr(host, ':'))
		return pl_why(why, whylen, -EINVAL, "%s", PL_LISTEN_WANT);
	err = getaddrinfo(host, NULL, &hints, &ai);
	if (err)	/* the shape is right: say what is wrong with the name */
		return pl_why(why, whylen, -EINVAL, "%s: %s", host, gai_strerror(err));
	for (p = ai; p; p = p->ai_next)
		if ((p->ai_family == AF_INET && (!pick || pick->ai_family != AF_INET)) ||
		    (p->ai_family == AF_INET6 && !pick))
			pick = p;
	if (!pick || pick->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(ai);
		return pl_why(why, whylen, -EINVAL, "%s: no IPv4 or IPv6 address", host);
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*sl = pick->ai_addrlen;
	if (pick->ai_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	freeaddrinfo(ai);
	return ss->ss_family;
}

int pl_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sl, char *why,
		    size_t whylen)
{
	char host[256];	/* a DNS name is up to 253 bytes */
	const char *colon = strrchr(s, ':');
	int port;
	size_t hl;

	if (!colon)
		return pl_why(why, whylen, -EINVAL, "%s", PL_LISTEN_WANT);
	port = pl_port_parse(colon + 1);
	/* a number out of range (0, 65536): say so; else the shape is wrong */
	if (port < 0 && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
		return pl_why(why, whylen, -EINVAL, "port %s: not a port to listen on (1-65535)",
			      colon + 1);
	if (port < 0)
		return pl_why(why, whylen, -EINVAL, "%s", PL_LISTEN_WANT);
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return pl_why(why, whylen, -EINVAL, "%s", PL_LISTEN_WANT);
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (!hl) {
		/* ":PORT", as exporters write it: every address, both families ([::], dual stack) */
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		a6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a6);
		return AF_INET6;
	}
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return pl_why(why, whylen, -EINVAL, "%s", PL_LISTEN_WANT);
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
			return host_addr(host, port, ss, sl, why, whylen);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*a4);
		return AF_INET;
	}
}

const char *pl_listen_url(const char *listen, char *buf, size_t len)
{
	bool any = listen[0] == ':';

	snprintf(buf, len, "http://%s%s/metrics%s", any ? "[::]" : "", listen,
		 any ? " (every address, IPv4 and IPv6)" : "");
	return buf;
}

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

/*
 * A request's state (*state): NULL until its headers are in; a GET /metrics
 * whose render succeeded is SCRAPE, and counts as a scrape once its response
 * went out whole (on_completed()). Anything else (404, 400, 500, HEAD, a
 * client that went away) reads nothing for the daemon's removals.
 */
enum req_state { REQ_NONE, REQ_HEADERS, REQ_BODY, REQ_ANSWERED, REQ_SCRAPE };
/* a scrape's state carries its render's number above the state */
#define REQ_BITS 3
#define REQ_OF(st) ((uintptr_t)(st) & ((1U << REQ_BITS) - 1))
#define REQ(st) ((void *)(uintptr_t)(st))

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **state)
{
	const struct pl_prom_server *s = cls;
	unsigned long render = 0;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body = NULL;
	size_t len = 0;
	int err;

	(void)version;
	(void)data;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "GET, HEAD");
	if (!*state) {		/* first call: headers only; answer on the second */
		*state = REQ(REQ_HEADERS);
		return MHD_YES;
	}
	if (*data_size) {
		/*
		 * A body: libmicrohttpd takes no response while it still uploads
		 * (it would close the connection unanswered); drop it, answer after.
		 */
		*data_size = 0;
		*state = REQ(REQ_BODY);
		return MHD_YES;
	}
	if (*state == REQ(REQ_BODY)) {
		*state = REQ(REQ_ANSWERED);
		return reply(c, MHD_HTTP_BAD_REQUEST, "no body expected\n", NULL);
	}
	*state = REQ(REQ_ANSWERED);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
	/* numbered before it reads a map: a removal after this reads nothing of it */
	if (s->h.rendering)
		render = s->h.rendering(s->h.ctx);
	err = pl_prom_render(s->h.only.ino ? &s->h.only : NULL, &body, &len);
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
	if (ret == MHD_YES && !strcmp(method, "GET"))
		*state = (void *)(uintptr_t)(render << REQ_BITS | REQ_SCRAPE);
	return ret;
}

/*
 * A request is over (its response freed): hand the memory back; a scrape
 * (a GET /metrics rendered and sent whole) is told to the owner.
 */
static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode toe)
{
	struct pl_prom_server *s = cls;

	(void)c;
	if (!*state)
		return;
	malloc_trim(0);
	if (REQ_OF(*state) == REQ_SCRAPE && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK &&
	    s->h.scraped)
		s->h.scraped(s->h.ctx, (uintptr_t)*state >> REQ_BITS);
}

/*
 * libmicrohttpd's log (refused connections, bad requests): a client can
 * provoke a line per connection, so at most one line per LOG_EVERY_S,
 * counting what was left out.
 */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct pl_prom_server *s = cls;
	char msg[256], line[320];
	struct timespec now;
	size_t len;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&s->lock);
	if (s->starting) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (s->last.tv_sec && now.tv_sec - s->last.tv_sec < LOG_EVERY_S) {
		s->dropped++;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '.'))
		msg[--len] = '\0';
	if (s->dropped)
		snprintf(line, sizeof(line), "%s (and %lu more such lines in %d s)", msg, s->dropped,
			 (int)(now.tv_sec - s->last.tv_sec));
	else
		snprintf(line, sizeof(line), "%s", msg);
	s->last = now;
	s->dropped = 0;
	if (s->h.log)
		s->h.log(s->h.ctx, line);
	pthread_mutex_unlock(&s->lock);
}

/*
 * The listening socket on @ss; [::] takes IPv4 too (dual stack), as Linux
 * binds it by default. @freebind (IP_FREEBIND): an address the network has
 * yet to configure is bound all the same (the service starts before the
 * network); it answers once the address is there. -1 with errno.
 */
static int listen_on(int fam, const struct sockaddr_storage *ss, socklen_t sl, bool freebind)
{
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, err;
	int v6only = fam == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)ss)->sin6_addr);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (freebind && setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one))) ||
	    (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only))) ||
	    bind(fd, (const struct sockaddr *)ss, sl) || listen(fd, SOMAXCONN)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* The HTTP server on @fd (it closes it when it stops) */
static struct MHD_Daemon *start(struct pl_prom_server *s, int fd)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_POLL | MHD_USE_ERROR_LOG;

	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,	/* first: all of it */
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CLIENT_TIMEOUT_S,
				MHD_OPTION_CONNECTION_LIMIT,
				(unsigned int)(IDLE_CLIENTS_MAX + SCRAPES_MAX),
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_END);
}

struct pl_prom_server *pl_prom_serve(const char *listen, const struct pl_prom_hooks *h,
				     char *why, size_t whylen)
{
	struct pl_prom_server *s;
	struct sockaddr_storage ss;
	socklen_t sl;
	char bad[160];
	int fam = pl_listen_parse(listen, &ss, &sl, bad, sizeof(bad)), fd, err;

	if (fam < 0) {
		snprintf(why, whylen, "'%s': %s", listen, bad);
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	if (h)
		s->h = *h;
	pthread_mutex_init(&s->lock, NULL);
	/*
	 * One malloc arena, and large buffers mapped apart (a fixed threshold,
	 * not glibc's sliding one): malloc_trim() gives back all a scrape took.
	 * It cannot trim the top of a thread's own arena, where the scrapes of
	 * the server's threads would otherwise leave it (100 MB after scrapes
	 * of 200 attachments).
	 */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	s->starting = true;
	fd = listen_on(fam, &ss, sl, s->h.freebind);
	if (fd < 0 && errno == EAFNOSUPPORT && fam == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
		/* every address on a host without IPv6: every IPv4 one */
		struct sockaddr_in a4 = { .sin_family = AF_INET,
					  .sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port };

		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, &a4, sizeof(a4));
		fd = listen_on(AF_INET, &ss, sizeof(a4), s->h.freebind);
	}
	if (fd >= 0) {
		errno = 0;
		s->d = start(s, fd);
		if (!s->d) {
			err = errno;
			close(fd);
			errno = err;
		}
	}
	pthread_mutex_lock(&s->lock);
	s->starting = false;
	pthread_mutex_unlock(&s->lock);
	if (!s->d) {
		err = errno ? errno : EADDRINUSE;

		/* EACCES: a port below net.ipv4.ip_unprivileged_port_start (1024) */
		snprintf(why, whylen, "cannot listen on %s: %s%s", listen, strerror(err),
			 err == EACCES ? " (a privileged port: needs CAP_NET_BIND_SERVICE)" : "");
		pthread_mutex_destroy(&s->lock);
		free(s);
		errno = err;
		return NULL;
	}
	return s;
}

void pl_prom_serve_stop(struct pl_prom_server *s)
{
	char line[96];

	if (!s)
		return;
	MHD_stop_daemon(s->d);
	if (s->dropped && s->h.log) {
		snprintf(line, sizeof(line), "%lu more lines of libmicrohttpd's left out", s->dropped);
		s->h.log(s->h.ctx, line);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}
