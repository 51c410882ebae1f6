/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What wakes the daemon: rtnetlink link notifications (libnl-3), one
 * socket per covered network namespace, and inotify on /run/netns for named
 * namespaces coming and going. No polling.
 */
#ifndef __PKTLENS_SERVICE_WATCH_H
#define __PKTLENS_SERVICE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "ns.h"

/* Link notifications of one namespace. */
struct pl_linkmon;

/* A link that appeared, changed (renamed, up/down) or went away. */
struct pl_link_event {
	int ifindex;
	char ifname[IF_NAMESIZE];
	bool gone;		/* RTM_DELLINK */
};

/* Subscribe to @ns's link notifications (the socket is made inside it). 0 or -errno. */
int pl_linkmon_open(const struct pl_nsset *s, const struct pl_ns *ns, struct pl_linkmon **out);
int pl_linkmon_fd(const struct pl_linkmon *m);
uint64_t pl_linkmon_netns(const struct pl_linkmon *m);
/*
 * Read every pending notification, calling @fn for each link event. *lost:
 * the socket overflowed (events were dropped: look at everything again).
 * 0 or -errno.
 */
int pl_linkmon_read(struct pl_linkmon *m, void (*fn)(const struct pl_link_event *ev, void *ctx),
		    void *ctx, bool *lost);
void pl_linkmon_close(struct pl_linkmon *m);

/*
 * inotify on /run/netns (or on /run until /run/netns appears). The fd, or
 * -errno. pl_netns_watch_read() drains it; true when something changed.
 */
int pl_netns_watch_open(void);
bool pl_netns_watch_read(int fd);

#endif /* __PKTLENS_SERVICE_WATCH_H */
