/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `pktlens daemon`: apply the config, then keep applying it as interfaces
 * and named namespaces come and go (service/watch.h), reload it on SIGHUP,
 * run its exporters, and tell systemd when it is ready (sd_notify).
 */
#ifndef __PKTLENS_SERVICE_DAEMON_H
#define __PKTLENS_SERVICE_DAEMON_H

/* Run until SIGTERM or SIGINT; the exit code (0, 1 runtime failure, 2 a bad config). */
int pl_daemon_run(const char *config);

#endif /* __PKTLENS_SERVICE_DAEMON_H */
