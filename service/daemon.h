/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `pktlens daemon`: apply the config, then keep applying it as interfaces
 * and named namespaces come and go (service/watch.h), reload it on SIGHUP,
 * run its exporters, and tell systemd when it is ready (sd_notify).
 */
#ifndef __PKTLENS_SERVICE_DAEMON_H
#define __PKTLENS_SERVICE_DAEMON_H

#include <stdbool.h>

/*
 * Run until SIGTERM or SIGINT; the exit code (0, 1 runtime failure, 2 a bad
 * config). @json (-j): the error that ends it before it is ready is also
 * written to stdout as {"error": ...}.
 */
int pl_daemon_run(const char *config, bool json);

#endif /* __PKTLENS_SERVICE_DAEMON_H */
