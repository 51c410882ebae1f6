// SPDX-License-Identifier: GPL-2.0
/* Interface lookup and the kernel's own link counters, via libnl-route-3. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <net/if_arp.h>

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/classifier.h>
#include <netlink/route/qdisc.h>
#include <linux/pkt_sched.h>

#include <pktlens/array.h>

#include "loader.h"

static int nl_to_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_INVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void link_info(struct rtnl_link *link, struct pl_link_info *li)
{
	const char *s;

	memset(li, 0, sizeof(*li));
	li->ifindex = rtnl_link_get_ifindex(link);
	s = rtnl_link_get_name(link);
	snprintf(li->ifname, sizeof(li->ifname), "%s", s ? s : "");
	li->up = rtnl_link_get_flags(link) & IFF_UP;
	li->loopback = rtnl_link_get_flags(link) & IFF_LOOPBACK;
	s = rtnl_link_get_type(link);
	snprintf(li->kind, sizeof(li->kind), "%s", s ? s : "");
	li->arptype = rtnl_link_get_arptype(link);
	li->rx_packets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
	li->rx_bytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
	li->rx_dropped = rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED);
	li->tx_packets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
	li->tx_bytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
	li->tx_dropped = rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED);
}

/* A connected NETLINK_ROUTE socket into *@sk: 0 or -errno. */
static int route_sock(struct nl_sock **sk)
{
	int err;

	*sk = nl_socket_alloc();
	if (!*sk)
		return -ENOMEM;
	err = nl_connect(*sk, NETLINK_ROUTE);
	if (err) {
		nl_socket_free(*sk);
		*sk = NULL;
		return nl_to_errno(err);
	}
	return 0;
}

const char *pl_link_not_ethernet(const struct pl_link_info *li, char *buf, size_t len)
{
	if (li->arptype == ARPHRD_ETHER || li->arptype == ARPHRD_LOOPBACK)
		return NULL;
	snprintf(buf, len, "not an Ethernet interface (ARPHRD %u%s)", li->arptype,
		 li->arptype == ARPHRD_NONE ? ": no link-layer header, as tun and wireguard" : "");
	return buf;
}

static void link_parsed(struct nl_object *o, void *arg)
{
	struct rtnl_link **link = arg;

	if (!*link) {
		nl_object_get(o);
		*link = (struct rtnl_link *)o;
	}
}

static int link_msg(struct nl_msg *msg, void *arg)
{
	return nl_msg_parse(msg, link_parsed, arg) < 0 ? NL_STOP : NL_OK;
}

/*
 * RTM_GETLINK by IFLA_ALT_IFNAME (Linux 5.5+): an alternative name longer
 * than IFLA_IFNAME takes (IFNAMSIZ - 1), which rtnl_link_get_kernel() sends.
 */
static int link_get_altname(struct nl_sock *sk, const char *altname, struct rtnl_link **link)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
	int err;

	if (!msg)
		return -NLE_NOMEM;
	err = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (!err)
		err = nla_put_string(msg, IFLA_ALT_IFNAME, altname);
	if (!err)
		err = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (err < 0)
		return err;
	err = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, link_msg, link);
	if (!err)
		err = nl_recvmsgs_default(sk);
	/* before 5.5 the kernel knows no IFLA_ALT_IFNAME (nor altnames): no interface has it */
	if ((!err && !*link) || err == -NLE_INVAL)
		err = -NLE_OBJ_NOTFOUND;
	return err;
}

int pl_link_get(const char *ifname, int ifindex, struct pl_link_info *li)
{
	struct rtnl_link *link = NULL;
	struct nl_sock *sk;
	int err;

	memset(li, 0, sizeof(*li));
	if (ifname && (!*ifname || strlen(ifname) >= PL_ALTIFNAMSIZ))
		return -ENODEV;
	err = route_sock(&sk);
	if (err)
		return err;
	/* a short name is looked up among real and alternative names alike */
	if (ifname && strlen(ifname) >= IFNAMSIZ)
		err = link_get_altname(sk, ifname, &link);
	else
		err = rtnl_link_get_kernel(sk, ifname ? 0 : ifindex, ifname, &link);
	if (err) {
		if (link)
			rtnl_link_put(link);
		err = nl_to_errno(err);
		goto out;
	}
	link_info(link, li);
	rtnl_link_put(link);
out:
	nl_socket_free(sk);
	return err;
}

/* pl_links()' dump so far: the interfaces, and their altnames (offsets into names) */
struct links_dump {
	struct pl_link_info *li;
	size_t n, cap;
	size_t *alt_at;
	char *names;
	size_t len, room;
	int err;
};

/* @n bytes of @s, then a NUL */
static int names_put(struct links_dump *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->room) {
		size_t room = (d->len + n + 1) * 2 + 256;
		char *p = realloc(d->names, room);

		if (!p)
			return -ENOMEM;
		d->names = p;
		d->room = room;
	}
	memcpy(d->names + d->len, s, n);
	d->len += n;
	d->names[d->len++] = '\0';
	return 0;
}

static int links_msg(struct nl_msg *msg, void *arg)
{
	struct links_dump *d = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1], *alt;
	struct rtnl_link *link = NULL;
	struct pl_link_info *li;
	size_t *at;
	int rem;

	if (h->nlmsg_type != RTM_NEWLINK || nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX,
						      NULL) < 0)
		return NL_OK;
	if (nl_msg_parse(msg, link_parsed, &link) < 0 || !link)
		return NL_OK;
	li = pl_grown(d->li, &d->cap, d->n, sizeof(*li), 32);
	at = li ? realloc(d->alt_at, d->cap * sizeof(*at)) : NULL;
	if (li)
		d->li = li;
	if (!at) {
		rtnl_link_put(link);
		d->err = -ENOMEM;
		return NL_STOP;
	}
	d->alt_at = at;
	link_info(link, &d->li[d->n]);
	rtnl_link_put(link);
	d->alt_at[d->n++] = d->len;
	/* IFLA_PROP_LIST (Linux 5.5+), which libnl-route-3 does not read: an IFLA_ALT_IFNAME each */
	if (tb[IFLA_PROP_LIST]) {
		nla_for_each_nested(alt, tb[IFLA_PROP_LIST], rem) {
			size_t len = nla_len(alt) > 0 ? strnlen(nla_data(alt), nla_len(alt)) : 0;

			if (nla_type(alt) == IFLA_ALT_IFNAME && len && names_put(d, nla_data(alt), len)) {
				d->err = -ENOMEM;
				return NL_STOP;
			}
		}
	}
	if (names_put(d, "", 0)) {	/* the list's end */
		d->err = -ENOMEM;
		return NL_STOP;
	}
	return NL_OK;
}

int pl_links(struct pl_link_info **out, size_t *n)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct links_dump d = { 0 };
	struct nl_sock *sk;
	char *names;
	int err;

	*out = NULL;
	*n = 0;
	err = route_sock(&sk);
	if (err)
		return err;
	/*
	 * A dump the kernel's interfaces changed under (NLM_F_DUMP_INTR: one
	 * made, moved, or given a program meanwhile, as in a burst the daemon
	 * attaches to) is asked again, as libnl's caches do: failing it made
	 * every reconcile of a burst fail and wait for its retry.
	 */
	for (int tries = 0;; tries++) {
		err = nl_send_simple(sk, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
		if (err >= 0)
			err = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, links_msg, &d);
		if (err >= 0)
			err = nl_recvmsgs_default(sk);
		if (err != -NLE_DUMP_INTR || d.err || tries == 100)
			break;
		d.n = d.len = 0;
	}
	nl_socket_free(sk);
	err = d.err ?: err < 0 ? nl_to_errno(err) : 0;
	/* one allocation: the array, then the names its entries point into */
	*out = err ? NULL : malloc((d.n + 1) * sizeof(**out) + d.len + 1);
	if (!err && !*out)
		err = -ENOMEM;
	if (!err) {
		names = (char *)(*out + d.n + 1);
		if (d.len)
			memcpy(names, d.names, d.len);
		names[d.len] = '\0';
		memset(*out + d.n, 0, sizeof(**out));
		for (size_t i = 0; i < d.n; i++) {
			(*out)[i] = d.li[i];
			(*out)[i].altnames = names + d.alt_at[i];
		}
		*n = d.n;
	}
	free(d.li);
	free(d.alt_at);
	free(d.names);
	return err;
}

/* Filters on the clsact qdisc's ingress and egress hooks of @ifindex. */
int pl_clsact_filter_count(int ifindex, int *count)
{
	static const uint32_t parents[] = {
		TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
		TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS),
	};
	struct nl_sock *sk;
	int err;

	*count = 0;
	err = route_sock(&sk);
	if (err)
		return err;
	for (size_t i = 0; !err && i < sizeof(parents) / sizeof(parents[0]); i++) {
		struct nl_cache *cache = NULL;

		err = rtnl_cls_alloc_cache(sk, ifindex, parents[i], &cache);
		if (!err) {
			*count += nl_cache_nitems(cache);
			nl_cache_free(cache);
		}
	}
	nl_socket_free(sk);
	return err ? nl_to_errno(err) : 0;
}

/*
 * The kind of the qdisc in @ifindex's ingress slot ("clsact", or "ingress",
 * which has no egress hook) into @kind; "" when there is none.
 */
int pl_ingress_qdisc_kind(int ifindex, char *kind, size_t len)
{
	struct nl_cache *cache = NULL;
	struct rtnl_qdisc *q;
	struct nl_sock *sk;
	int err;

	snprintf(kind, len, "%s", "");
	err = route_sock(&sk);
	if (err)
		return err;
	err = rtnl_qdisc_alloc_cache(sk, &cache);
	if (!err && (q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_INGRESS))) {
		snprintf(kind, len, "%s", rtnl_tc_get_kind(TC_CAST(q)) ?: "");
		rtnl_qdisc_put(q);
	}
	nl_cache_free(cache);
	nl_socket_free(sk);
	return err ? nl_to_errno(err) : 0;
}
