/* SPDX-License-Identifier: GPL-2.0 */
/*
 * IPFIX (RFC 7011) export of the flow tables over UDP: one template for IPv4
 * and one for IPv6 flows, data records with the packets and bytes each flow
 * gained since the previous export (so nothing is counted twice or lost
 * between intervals), templates sent again every few intervals. Each network
 * namespace is an observation domain of its own (its interface indexes are
 * its own): the exporter's namespace (the one it runs in: -n's, else the
 * root one) the domain given, every other the domain of its inode; each
 * domain has its own templates and sequence numbers, and with its templates
 * an options record naming it (observationDomainName: "netns INODE (NAME)").
 */
#ifndef __PKTLENS_EXPORT_IPFIX_H
#define __PKTLENS_EXPORT_IPFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pl_ipfix;
struct pl_flow;

/*
 * @collector as HOST:PORT or [IPV6]:PORT, resolving nothing: the host (brackets
 * off) in @host, the port's text in *port (1-65535, or a UDP service name that
 * /etc/services has). 0, or -EINVAL with @why. pl_ipfix_open() and the config's
 * check both read a collector so.
 */
int pl_ipfix_collector_split(const char *collector, char *host, size_t hostlen,
			     const char **port, char *why, size_t whylen);
/*
 * @collector: HOST:PORT ([v6]:PORT); @domain: the observation domain of the
 * current namespace's flows. A name that does not resolve is an error, unless
 * @later (the daemon: at boot DNS is not up yet): then it is resolved
 * without blocking before each pl_ipfix_export(), which fails (-EAGAIN,
 * -EINPROGRESS, with @why) until it does. 0, or -errno with @why.
 */
int pl_ipfix_open(const char *collector, uint32_t domain, bool later, struct pl_ipfix **out,
		  char *why, size_t whylen);
/* Whether the collector's address is known (a name that resolved). */
bool pl_ipfix_resolved(const struct pl_ipfix *x);
/*
 * Read every attachment's flows (pl_ipfix_home_only(): the current
 * namespace's) and send the deltas since the last call. The templates go
 * first in the first call, when @templates (the last call failed), and
 * then every PL_IPFIX_TEMPLATE_ROUNDS calls or pl_ipfix_template_refresh()
 * seconds, whichever comes first. Sets *records to the data records sent.
 * 0, or -errno with @why.
 */
int pl_ipfix_export(struct pl_ipfix *x, bool templates, size_t *records, char *why,
		    size_t whylen);
void pl_ipfix_close(struct pl_ipfix *x);
#define PL_IPFIX_TEMPLATE_ROUNDS 10
#define PL_IPFIX_TEMPLATE_SECS 600	/* the default of pl_ipfix_template_refresh() */
/* The templates at least every @secs seconds (pl_ipfix_export()). */
void pl_ipfix_template_refresh(struct pl_ipfix *x, uint32_t secs);
/*
 * At a clean stop: keep what was sent, so that the next exporter to the
 * same collector, domain and namespace sends only what is new since (it
 * sent every flow's whole count again). 0, or -errno with @why.
 */
int pl_ipfix_save(struct pl_ipfix *x, char *why, size_t whylen);
#define PL_IPFIX_STATE_DIR "/run/pktlens"
/* pl_ipfix_export() of the current namespace's attachments alone (-n), not every one's. */
void pl_ipfix_home_only(struct pl_ipfix *x);
/*
 * pl_ipfix_export() takes the change lock (shared) while it reads, so no
 * stats --reset or detach removes flows meanwhile: with @locked the caller
 * holds it already (a flock of another descriptor would wait on itself).
 */
void pl_ipfix_locked(struct pl_ipfix *x, bool locked);
/*
 * Rounds every @secs seconds, which also read the flows that left their
 * tables since the last round (stats --reset, detach: loader/gone.c) and
 * send what they gained: from now on removals log them (an exporter
 * without this sends what the tables hold alone). 0, or -errno with @why.
 */
int pl_ipfix_interval(struct pl_ipfix *x, uint32_t secs, char *why, size_t whylen);

/*
 * pl_ipfix_export() in steps, for flows read elsewhere: begin a round (the
 * templates first when @templates), add each attachment's flows (0 or
 * -ENOMEM), end it. pl_ipfix_end() sends what is left and sets *records
 * to the data records sent; with @err != 0 it keeps the old baseline of
 * flows not added this round (their deltas go next round) and returns @err,
 * else 0 or the -errno of a failed send, with @why. A record whose message
 * send() refused keeps its flow's old baseline: the next round sends it.
 */
void pl_ipfix_begin(struct pl_ipfix *x, bool templates);
int pl_ipfix_add(struct pl_ipfix *x, uint64_t netns, const struct pl_flow *flows, size_t n);
/*
 * The same; TCP flows with a connection in tcp_state @tcp_fd (attach
 * --tcp-passive; -1: none) go out with the TCP template (258/259).
 */
int pl_ipfix_add_tcp(struct pl_ipfix *x, uint64_t netns, const struct pl_flow *flows, size_t n,
		     int tcp_fd);
int pl_ipfix_end(struct pl_ipfix *x, int err, size_t *records, char *why, size_t whylen);
/*
 * Whether the last round failed: a send() that took no message (its records
 * wait for the next export) or flows it could not read. Not a refusal
 * noticed while its records went out (ECONNREFUSED of an earlier datagram).
 */
bool pl_ipfix_failed(const struct pl_ipfix *x);

#endif /* __PKTLENS_EXPORT_IPFIX_H */
