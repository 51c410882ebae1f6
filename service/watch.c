// SPDX-License-Identifier: GPL-2.0
/* rtnetlink link notifications (libnl-3) and inotify on /run/netns (service/watch.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <linux/rtnetlink.h>

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>

#include "watch.h"

/* Room for a burst: hundreds of interfaces created at once send thousands of messages. */
#define LINKMON_RCVBUF (16 << 20)

struct pl_linkmon {
	struct nl_sock *sk;
	uint64_t netns;
	void (*fn)(const struct pl_link_event *ev, void *ctx);
	void *ctx;
};

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct pl_linkmon *m = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	struct pl_link_event ev = { 0 };
	struct ifinfomsg *ifi;

	if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
		return NL_OK;
	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return NL_OK;
	ifi = nlmsg_data(h);
	ev.ifindex = ifi->ifi_index;
	ev.gone = h->nlmsg_type == RTM_DELLINK;
	if (tb[IFLA_IFNAME])
		snprintf(ev.ifname, sizeof(ev.ifname), "%s", nla_get_string(tb[IFLA_IFNAME]));
	if (m->fn)
		m->fn(&ev, m->ctx);
	return NL_OK;
}

int pl_linkmon_open(const struct pl_nsset *s, const struct pl_ns *ns, struct pl_linkmon **out)
{
	struct pl_linkmon *m = calloc(1, sizeof(*m));
	int err, size = LINKMON_RCVBUF;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->netns = ns->ino;
	m->sk = nl_socket_alloc();
	if (!m->sk) {
		free(m);
		return -ENOMEM;
	}
	nl_socket_disable_seq_check(m->sk);
	nl_socket_modify_cb(m->sk, NL_CB_VALID, NL_CB_CUSTOM, on_msg, m);
	/* the socket belongs to the namespace it is made in */
	err = pl_ns_enter(ns);
	if (!err && nl_connect(m->sk, NETLINK_ROUTE))
		err = -ECONNREFUSED;
	pl_ns_leave(s);
	if (!err && nl_socket_add_membership(m->sk, RTNLGRP_LINK))
		err = -EPROTO;
	if (!err && nl_socket_set_nonblocking(m->sk))
		err = -EPROTO;
	if (err) {
		nl_socket_free(m->sk);
		free(m);
		return err;
	}
	/* past net.core.rmem_max where we may (CAP_NET_ADMIN), else what it allows */
	if (setsockopt(nl_socket_get_fd(m->sk), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(nl_socket_get_fd(m->sk), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	*out = m;
	return 0;
}

int pl_linkmon_fd(const struct pl_linkmon *m)
{
	return nl_socket_get_fd(m->sk);
}

uint64_t pl_linkmon_netns(const struct pl_linkmon *m)
{
	return m->netns;
}

int pl_linkmon_read(struct pl_linkmon *m, void (*fn)(const struct pl_link_event *ev, void *ctx),
		    void *ctx, bool *lost)
{
	int err;

	*lost = false;
	m->fn = fn;
	m->ctx = ctx;
	for (;;) {
		err = nl_recvmsgs_default(m->sk);
		if (err >= 0)
			continue;
		if (err == -NLE_AGAIN)
			return 0;
		/* ENOBUFS (libnl says NLE_NOMEM): the kernel dropped messages; read on */
		*lost = true;
		if (err != -NLE_NOMEM && err != -NLE_MSG_OVERFLOW && err != -NLE_MSG_TRUNC &&
		    err != -NLE_DUMP_INTR)
			return -EIO;
	}
}

void pl_linkmon_close(struct pl_linkmon *m)
{
	if (!m)
		return;
	nl_socket_free(m->sk);
	free(m);
}

/* ---- /run/netns ---- */

#define NETNS_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
		      IN_DELETE_SELF | IN_MOVE_SELF)

/* The watch on /run, for /run/netns (re)appearing; one per process. */
static int run_wd = -1;

int pl_netns_watch_open(void)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* `ip netns add` makes /run/netns on first use: watch /run for it too */
	run_wd = inotify_add_watch(fd, "/run", IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	if (inotify_add_watch(fd, PL_NETNS_DIR, NETNS_EVENTS) < 0 && run_wd < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

bool pl_netns_watch_read(int fd)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t len;

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->wd != run_wd) {
				changed = true;
			} else if (ev->len && !strcmp(ev->name, "netns")) {
				inotify_add_watch(fd, PL_NETNS_DIR, NETNS_EVENTS);
				changed = true;
			}
		}
	}
	return changed;
}
