// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pktlens/array.h>
#include <pktlens/clock.h>
#include <pktlens/why.h>

#include "format.h"
#include "ipfix.h"
#include "serve.h"
#include "../loader/loader.h"

#define TPL_V4 256
#define TPL_V6 257
/* TCP flows of attach --tcp-passive: the same, then tcp_ies */
#define TPL_V4_TCP 258
#define TPL_V6_TCP 259
/* options: observationDomainName (IE 300) scoped by observationDomainId (IE 149) */
#define TPL_DOMAIN 260
#define MSG_MAX 1400		/* stay under a 1500-byte MTU */

/* Information elements (IANA) of both templates, after the addresses. */
static const uint16_t common_ies[][2] = {
	{ 7, 2 },	/* sourceTransportPort */
	{ 11, 2 },	/* destinationTransportPort */
	{ 4, 1 },	/* protocolIdentifier */
	{ 6, 2 },	/* tcpControlBits */
	{ 1, 8 },	/* octetDeltaCount */
	{ 2, 8 },	/* packetDeltaCount */
	{ 152, 8 },	/* flowStartMilliseconds */
	{ 153, 8 },	/* flowEndMilliseconds */
	{ 10, 4 },	/* ingressInterface */
	{ 14, 4 },	/* egressInterface */
	{ 61, 1 },	/* flowDirection: 0 ingress, 1 egress */
	{ 58, 2 },	/* vlanId */
};
#define NCOMMON (sizeof(common_ies) / sizeof(common_ies[0]))
#define REC_V4 (4 + 4 + 2 + 2 + 1 + 2 + 8 + 8 + 8 + 8 + 4 + 4 + 1 + 2)
#define REC_V6 (REC_V4 + 24)

/*
 * Passive TCP (attach --tcp-passive), of the flow's direction. IANA has
 * tcpRstTotalCount; RTT, retransmission, reordering and zero-window counts
 * have no IANA element, so they are enterprise-specific under PEN 32473,
 * the number IANA reserves for documentation (RFC 5612): pktlens has none of
 * its own, a collector keys them by (PEN, id). Ids: PL_IPFIX_PEN_* below.
 * RTTs in microseconds, 0 for none measured.
 */
#define PL_IPFIX_PEN 32473U
static const uint16_t tcp_ies[][3] = {	/* id (enterprise bit set: a PEN follows), length, PEN? */
	{ 220, 8, 0 },		/* tcpRstTotalCount (IANA) */
	{ 0x8000 | 1, 4, 1 },	/* rttSynMicroseconds: SYN -> SYN-ACK, the server's side */
	{ 0x8000 | 2, 4, 1 },	/* rttSynAckMicroseconds: SYN-ACK -> ACK, the client's side */
	{ 0x8000 | 3, 4, 1 },	/* rttMinMicroseconds: timestamps, here -> destination -> here */
	{ 0x8000 | 4, 4, 1 },	/* rttSmoothedMicroseconds */
	{ 0x8000 | 5, 4, 1 },	/* rttMaxMicroseconds */
	{ 0x8000 | 6, 8, 1 },	/* tcpRetransmittedSegmentTotalCount */
	{ 0x8000 | 7, 8, 1 },	/* tcpOutOfOrderSegmentTotalCount */
	{ 0x8000 | 8, 8, 1 },	/* tcpZeroWindowSegmentTotalCount */
};
#define NTCP (sizeof(tcp_ies) / sizeof(tcp_ies[0]))
#define REC_TCP (8 + 5 * 4 + 3 * 8)

/* A flow as last exported: its counters and times then. */
struct seen {
	uint64_t netns;
	struct pl_flow_key key;
	struct pl_flow_val val;
};

#define NS_UNSENT UINT64_MAX	/* a seen of x->now whose first record was not sent: left out */

/*
 * A data record not yet known to be sent: in buf, or refused by send(). A
 * table flow's (@now: its x->now entry) commits its reading to the baseline
 * once its message is sent, else keeps the old one, so that the next round
 * sends the delta; a removed flow's (@now SIZE_MAX: add_gone()) is kept in
 * x->carry to be sent then.
 */
struct pend {
	size_t now;
	uint64_t netns;
	struct pl_flow f;
	uint64_t dp, db;
};

#define PEND_MAX (MSG_MAX / REC_V4 + 1)	/* records in one message, at most */
#define CARRY_MAX 262144		/* removed flows' records kept unsent, at most */

/*
 * An observation domain (RFC 7011): one per network namespace, since the
 * interface indexes of two namespaces are alike. Templates and sequence
 * numbers are the domain's.
 */
struct domain {
	uint32_t id;
	uint32_t seq;		/* data records sent in it so far */
	uint64_t netns;		/* its namespace, whose name it sends (use_domain()) */
	bool tpl;		/* its templates go out before its next records */
	bool used;		/* this round sent it records (or templates) */
};

/*
 * A forgotten domain's sequence number (forget_domains()): RFC 7011 3.1 has
 * it go on increasing for the life of the exporter, so a namespace that
 * comes back (detach, then attach again) resumes it instead of starting at 0.
 * Also the state file's record of a domain.
 */
struct dom_seq {
	uint32_t id;
	uint32_t seq;
};

#define RETIRED_MAX 65536	/* forgotten domains kept, at most (512 KiB): the oldest go */

struct pl_ipfix {
	int fd;
	/*
	 * The collector, and whether fd is connected to it: not yet when there
	 * was no route to it at start (the service starts before the network
	 * is configured): each send connects first until one can.
	 */
	struct sockaddr_storage to;
	socklen_t tolen;
	bool connected;
	/*
	 * A collector's name that did not resolve at open (pl_ipfix_open()'s
	 * @later: DNS is not up at boot): resolved without blocking, one
	 * request in flight at a time, before each export until it does; fd
	 * is -1 until then.
	 */
	char host[256], port[32];
	struct addrinfo hints;	/* the request's, read by getaddrinfo_a()'s thread */
	struct gaicb gai, *gaip;
	bool resolving;
	int gai_last;		/* the last answer's EAI_* error, 0: none yet */
	uint32_t domain;	/* --observation-domain: the home namespace's */
	struct pl_netns home;	/* the exporter's namespace (-n's) */
	bool home_only;		/* its attachments alone (pl_ipfix_home_only()) */
	struct domain *doms;
	size_t ndoms, domcap;
	size_t cur;		/* the domain of the message in buf (doms[cur]) */
	struct dom_seq *retired;	/* forgotten domains' sequence numbers, oldest first */
	size_t nretired, retcap;
	struct seen *prev;
	size_t nprev;
	uint8_t buf[MSG_MAX];
	size_t len;		/* bytes in buf, message header included */
	size_t set_at;		/* offset of the open set's header, 0: none */
	uint16_t set_id;
	/* the round in progress (pl_ipfix_begin() .. pl_ipfix_end()) */
	struct seen *now;	/* every flow seen, the next baseline */
	size_t nnow;
	size_t sent;		/* data records sent */
	uint32_t in_msg;	/* data records in buf */
	struct pend pend[PEND_MAX];	/* those records */
	struct pend *carry;	/* removed flows' records no send took: sent next round */
	size_t ncarry, carrycap;
	int send_err;
	bool refused;		/* an earlier message was refused (ICMP unreachable) */
	bool failed;		/* the last round left records unsent or flows unread */
	bool locked;		/* the caller holds the change lock (pl_ipfix_locked()) */
	/* the template rounds (templates_due()) */
	uint32_t tpl_secs;	/* at least this often (pl_ipfix_template_refresh()) */
	uint32_t tpl_rounds;	/* rounds since the last template round */
	uint64_t tpl_ns;	/* when it was (pl_mono_ns()), 0: none yet */
	uint32_t interval;	/* s; 0: removed flows are not read (pl_ipfix_interval()) */
	uint64_t gone_since;	/* removals logged after this (CLOCK_MONOTONIC ns) are news */
	struct seen *counted;	/* flows copied to new keys, for the baseline (add_gones()) */
	size_t ncounted;
	char state[192];	/* where pl_ipfix_save() keeps the baseline (see resume()) */
};

static void put(struct pl_ipfix *x, const void *p, size_t n)
{
	memcpy(x->buf + x->len, p, n);
	x->len += n;
}

static void put8(struct pl_ipfix *x, uint8_t v) { put(x, &v, 1); }
static void put16(struct pl_ipfix *x, uint16_t v) { v = htons(v); put(x, &v, 2); }
static void put32(struct pl_ipfix *x, uint32_t v) { v = htonl(v); put(x, &v, 4); }
static void put64(struct pl_ipfix *x, uint64_t v)
{
	put32(x, (uint32_t)(v >> 32));
	put32(x, (uint32_t)v);
}

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->netns != y->netns)
		return x->netns < y->netns ? -1 : 1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static void close_set(struct pl_ipfix *x)
{
	uint16_t l;

	if (!x->set_at)
		return;
	l = htons((uint16_t)(x->len - x->set_at));
	memcpy(x->buf + x->set_at + 2, &l, 2);
	x->set_at = 0;
}

static void begin(struct pl_ipfix *x)
{
	x->len = 16;	/* header written by flush() */
	x->set_at = 0;
}

/*
 * A record that was not sent (its message refused, or none sent after a
 * failure): a table flow keeps its old baseline, so that the next round sends
 * what this one could not (a flow new since keeps none: it goes out in full);
 * a removed flow's record waits in x->carry.
 */
static void unsent(struct pl_ipfix *x, const struct pend *p)
{
	struct seen *s, *old;

	if (p->now == SIZE_MAX) {
		struct pend *c;

		if (x->ncarry >= CARRY_MAX)
			return;	/* lost, as a collector that never answers loses all */
		c = pl_grown(x->carry, &x->carrycap, x->ncarry, sizeof(*c), 64);
		if (!c)
			return;
		x->carry = c;
		x->carry[x->ncarry++] = *p;
		return;
	}
	s = &x->now[p->now];
	old = pl_bsearch(s, x->prev, x->nprev, sizeof(*s), seen_cmp);
	if (old)
		s->val = old->val;
	else
		s->netns = NS_UNSENT;
}

/* The message in buf, of domain @dom, its header written now: 0 or -errno. */
static int send_msg(struct pl_ipfix *x, const struct domain *dom)
{
	uint16_t v = htons(10), l = htons((uint16_t)x->len);
	uint32_t t = htonl((uint32_t)time(NULL)), s = htonl(dom->seq), d = htonl(dom->id);

	memcpy(x->buf, &v, 2);
	memcpy(x->buf + 2, &l, 2);
	memcpy(x->buf + 4, &t, 4);
	memcpy(x->buf + 8, &s, 4);	/* records sent before this message */
	memcpy(x->buf + 12, &d, 4);
	if (!x->connected && connect(x->fd, (struct sockaddr *)&x->to, x->tolen))
		return -errno;
	x->connected = true;
	return send(x->fd, x->buf, x->len, 0) < 0 ? -errno : 0;
}

/*
 * send_msg(), and once more after ECONNREFUSED: that answers an earlier
 * datagram (the kernel keeps the ICMP error until the next send, which it
 * fails unsent): said, and this one sent, which may well arrive.
 */
static int send_again_if_refused(struct pl_ipfix *x, const struct domain *dom)
{
	int err = send_msg(x, dom);

	if (err == -ECONNREFUSED) {
		x->refused = true;
		err = send_msg(x, dom);
	}
	return err;
}

static void templates(struct pl_ipfix *x);
static void domain_name(struct pl_ipfix *x, uint32_t id, uint64_t netns);

/*
 * A refusal (ECONNREFUSED) says that an earlier message found no collector
 * listening: one that listens now has (re)started since and knows none of
 * the templates, so the records in buf would be dropped by it. The current
 * domain's templates (and name) go first, in a message of their own, unless
 * buf begins with them; every other domain's before its next records. 0 or
 * the -errno of their send.
 */
static int templates_again(struct pl_ipfix *x)
{
	struct domain *dom = &x->doms[x->cur];
	uint8_t msg[MSG_MAX];
	size_t len = x->len;
	uint16_t first;
	int err;

	for (size_t i = 0; i < x->ndoms; i++)
		if (i != x->cur)
			x->doms[i].tpl = true;
	memcpy(&first, x->buf + 16, 2);
	if (ntohs(first) == 2)
		return 0;
	memcpy(msg, x->buf, len);
	begin(x);
	templates(x);
	domain_name(x, dom->id, dom->netns);
	err = send_again_if_refused(x, dom);
	if (!err)
		dom->seq++;	/* the domain's name: a data record */
	memcpy(x->buf, msg, len);
	x->len = len;
	x->set_at = 0;
	return err;
}

/*
 * Send the message in buf (if it has a set), then start a new one. Its
 * @records data records (the flows' in x->pend, x->in_msg, and a domain's
 * name) count as sent, in the sequence number and the baseline, only once
 * send() took it.
 */
static int flush(struct pl_ipfix *x, uint32_t records)
{
	struct domain *dom = &x->doms[x->cur];
	int err = 0;

	close_set(x);
	if (x->len > 16) {
		err = send_msg(x, dom);
		/*
		 * A refusal: the templates first (a collector back since has
		 * none), then this message again. Where the templates meet a
		 * refusal in turn (nothing listens yet) this goes out once more,
		 * as a message to a collector that is down does.
		 */
		if (err == -ECONNREFUSED) {
			x->refused = true;
			err = templates_again(x);
			if (!err)
				err = send_again_if_refused(x, dom);
		}
		if (!err) {
			dom->seq += records;
			x->sent += x->in_msg;
		}
	}
	for (uint32_t i = 0; err && i < x->in_msg; i++)
		unsent(x, &x->pend[i]);
	x->in_msg = 0;
	begin(x);
	return err;
}

static void open_set(struct pl_ipfix *x, uint16_t id)
{
	close_set(x);
	x->set_at = x->len;
	x->set_id = id;
	put16(x, id);
	put16(x, 0);	/* length, by close_set() */
}

static void templates(struct pl_ipfix *x)
{
	open_set(x, 2);
	for (int t = 0; t < 4; t++) {
		bool v6 = t & 1, tcp = t >= 2;

		put16(x, (uint16_t)((tcp ? TPL_V4_TCP : TPL_V4) + v6));
		put16(x, (uint16_t)(2 + NCOMMON + (tcp ? NTCP : 0)));
		put16(x, v6 ? 27 : 8);		/* sourceIPv6Address / sourceIPv4Address */
		put16(x, v6 ? 16 : 4);
		put16(x, v6 ? 28 : 12);		/* destination... */
		put16(x, v6 ? 16 : 4);
		for (size_t i = 0; i < NCOMMON; i++) {
			put16(x, common_ies[i][0]);
			put16(x, common_ies[i][1]);
		}
		for (size_t i = 0; tcp && i < NTCP; i++) {
			put16(x, tcp_ies[i][0]);
			put16(x, tcp_ies[i][1]);
			if (tcp_ies[i][2])
				put32(x, PL_IPFIX_PEN);
		}
	}
	close_set(x);
}

/*
 * The options template naming domains, and the name of domain @id, of
 * namespace @netns: "netns INODE (NAME)" (NAME: in /run/netns), or "netns
 * INODE". One data record.
 */
static void domain_name(struct pl_ipfix *x, uint32_t id, uint64_t netns)
{
	char ns[320], name[256];
	int l;

	open_set(x, 3);
	put16(x, TPL_DOMAIN);
	put16(x, 2);		/* fields */
	put16(x, 1);		/* of which scope */
	put16(x, 149);		/* observationDomainId */
	put16(x, 4);
	put16(x, 300);		/* observationDomainName */
	put16(x, 0xffff);	/* variable length */
	pl_netns_fmt(netns, 0, false, ns, sizeof(ns));
	l = snprintf(name, sizeof(name), "netns %s", PL_SAFE(ns));
	l = l < 0 ? 0 : l > 254 ? 254 : l;	/* one length byte */
	/* a string is UTF-8 (RFC 7011 6.1.6): not a character cut in two, the whole one left out */
	while (l > 0 && ((unsigned char)name[l] & 0xc0) == 0x80)
		l--;
	open_set(x, TPL_DOMAIN);
	put32(x, id);
	put8(x, (uint8_t)l);
	put(x, name, (size_t)l);
	close_set(x);
}

/*
 * The observation domain of namespace @netns (an inode): --observation-domain
 * for the exporter's own, every other its inode, which is 32 bits (procfs
 * numbers namespaces with unsigned ints) and stays the namespace's while it
 * lives, whichever others come and go.
 */
static uint32_t domain_of(const struct pl_ipfix *x, uint64_t netns)
{
	return netns == x->home.ino ? x->domain : (uint32_t)netns;
}

/*
 * Messages from here on are of @netns's domain, its templates first where
 * they are due (a domain new to the exporter, or a round that sends them):
 * 0, or the -errno of a send, or -ENOMEM.
 */
static int use_domain(struct pl_ipfix *x, uint64_t netns)
{
	uint32_t id = domain_of(x, netns);
	size_t i;
	int err;

	if (x->doms[x->cur].id == id)	/* the usual: the flows of one namespace in a row */
		i = x->cur;
	else
		for (i = 0; i < x->ndoms && x->doms[i].id != id; i++)
			;
	if (i == x->ndoms) {	/* new (from 0), or forgotten (forget_domains()) and back */
		struct domain *d = pl_grown(x->doms, &x->domcap, x->ndoms, sizeof(*d), 4);
		uint32_t seq = 0;

		if (!d)
			return -ENOMEM;
		x->doms = d;
		for (size_t r = 0; r < x->nretired; r++)
			if (x->retired[r].id == id) {
				seq = x->retired[r].seq;
				memmove(&x->retired[r], &x->retired[r + 1],
					(--x->nretired - r) * sizeof(*x->retired));
				break;
			}
		x->doms[x->ndoms++] = (struct domain){ .id = id, .seq = seq, .tpl = true };
	}
	/* the message so far: another domain's, or records that go before the templates */
	if (i != x->cur || x->doms[i].tpl) {
		err = flush(x, x->in_msg);
		x->cur = i;
		if (err)
			return err;
	}
	x->doms[i].used = true;
	x->doms[i].netns = netns;
	if (!x->doms[i].tpl)
		return 0;
	x->doms[i].tpl = false;
	templates(x);
	domain_name(x, id, netns);
	return flush(x, 1);
}

static void record_tcp(struct pl_ipfix *x, const struct pl_tcp_state *t, int half)
{
	const struct pl_tcp_half *h = &t->h[half & 1];

	put64(x, h->rst);
	put32(x, t->rtt_syn_us);
	put32(x, t->rtt_synack_us);
	put32(x, h->rtt_samples ? h->rtt_min_us : 0);
	put32(x, h->rtt_samples ? h->rtt_srtt_us : 0);
	put32(x, h->rtt_samples ? h->rtt_max_us : 0);
	put64(x, h->retrans);
	put64(x, h->reorder);
	put64(x, h->zero_win);
}

static uint64_t epoch_ms(uint64_t mono_ns, __s64 offset_ns)
{
	return (uint64_t)(pl_mono_to_epoch(mono_ns, offset_ns) * 1000.0);
}

static void record(struct pl_ipfix *x, const struct pl_flow *f, uint64_t dp, uint64_t db)
{
	const struct pl_flow_key *k = &f->key;
	bool v6 = k->l3proto == 0x86dd;
	bool ports = k->l4proto == 6 || k->l4proto == 17 || k->l4proto == 132;
	__s64 epoch = pl_epoch_offset_ns();	/* one for start and end */

	if (v6) {
		put(x, k->saddr, 16);
		put(x, k->daddr, 16);
	} else {
		put(x, k->saddr + 12, 4);
		put(x, k->daddr + 12, 4);
	}
	/*
	 * ICMP: type and code as the IPFIX convention puts them, type * 256 + code
	 * in dport; a later fragment's (PL_ICMP_NONE) as 255/255, not Echo Reply's 0/0
	 */
	put16(x, ports ? k->sport : 0);
	put16(x, ports ? k->dport : (uint16_t)(k->sport << 8 | (k->dport & 0xff)));
	put8(x, k->l4proto);
	put16(x, k->l4proto == 6 ? f->val.tcp_flags : 0);
	put64(x, db);
	put64(x, dp);
	put64(x, epoch_ms(f->val.first_ns, epoch));
	put64(x, epoch_ms(f->val.last_ns, epoch));
	put32(x, k->dir == PL_DIR_IN ? k->ifindex : 0);
	put32(x, k->dir == PL_DIR_OUT ? k->ifindex : 0);
	put8(x, k->dir == PL_DIR_OUT);
	put16(x, k->vlan == PL_VLAN_NONE ? 0 : k->vlan);
}

/*
 * The baseline across a restart: a collector sums the deltas it is sent,
 * so an exporter that started from nothing sent every flow's whole count
 * again (a daemon's restart doubled what the collector had). A clean stop
 * keeps what was sent (the baseline and each domain's sequence number), and
 * the records of removed flows that no send took (x->carry), in
 * a file of the collector's address, port and domain and the exporter's
 * namespace, under PL_IPFIX_STATE_DIR (a tmpfs: it goes at a reboot, as
 * the counters do); the next exporter of that identity goes on from there
 * and removes the file, so that an exporter that dies without a clean stop
 * leaves none to be taken stale (the next one sends the whole counts, as a
 * first one does).
 */
#define STATE_MAGIC "pktlens-ipfix-2"	/* -1 had no carry: taken as a foreign file */

/* then ndoms struct dom_seq, nprev struct seen, ncarry struct pend (of removed flows) */
struct state_head {
	char magic[16];
	uint32_t seen_size;	/* sizeof(struct seen): of this build's layout */
	uint32_t ndoms;
	uint64_t nprev;
	uint32_t pend_size;	/* sizeof(struct pend) */
	uint32_t ncarry;	/* removed flows' records no send took (x->carry) */
};

static void state_path(struct pl_ipfix *x, const struct sockaddr *sa, socklen_t salen)
{
	char host[INET6_ADDRSTRLEN + 8], port[16];

	if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return;	/* no name, no state: every start sends whole counts */
	snprintf(x->state, sizeof(x->state), "%s/ipfix-%s-%s-d%u-ns%llu", PL_IPFIX_STATE_DIR, host,
		 port, x->domain, (unsigned long long)x->home.ino);
}

/* Take up the state a clean stop of this identity left (see above), and remove it. */
static void resume(struct pl_ipfix *x)
{
	struct state_head h;
	struct dom_seq *d = NULL;
	struct seen *prev = NULL;
	struct pend *carry = NULL;
	struct stat st;
	FILE *f;
	int fd;

	if (!x->state[0])
		return;
	fd = open(x->state, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	unlink(x->state);	/* taken: a crash from here on leaves none */
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, STATE_MAGIC, sizeof(STATE_MAGIC)) ||
	    h.seen_size != sizeof(struct seen) || h.pend_size != sizeof(struct pend) ||
	    h.ndoms > 1U << 20 || h.nprev > 1ULL << 32 || h.ncarry > CARRY_MAX ||
	    (uint64_t)st.st_size != sizeof(h) + h.ndoms * sizeof(*d) + h.nprev * sizeof(*prev) +
				    h.ncarry * sizeof(*carry))
		goto out;
	d = calloc(h.ndoms + 1, sizeof(*d));
	prev = calloc(h.nprev + 1, sizeof(*prev));
	carry = calloc(h.ncarry + 1, sizeof(*carry));
	if (!d || !prev || !carry || fread(d, sizeof(*d), h.ndoms, f) != h.ndoms ||
	    fread(prev, sizeof(*prev), h.nprev, f) != h.nprev ||
	    fread(carry, sizeof(*carry), h.ncarry, f) != h.ncarry)
		goto out;
	for (uint32_t i = 0; i < h.ndoms; i++) {
		struct domain *grown;

		if (d[i].id == x->domain) {
			x->doms[0].seq = d[i].seq;
			continue;
		}
		grown = pl_grown(x->doms, &x->domcap, x->ndoms, sizeof(*x->doms), 4);
		if (!grown)
			goto out;
		x->doms = grown;
		x->doms[x->ndoms++] = (struct domain){ .id = d[i].id, .seq = d[i].seq,
							.netns = d[i].id, .tpl = true };
	}
	pl_qsort(prev, h.nprev, sizeof(*prev), seen_cmp);
	free(x->prev);
	x->prev = prev;
	x->nprev = h.nprev;
	prev = NULL;
	for (uint32_t i = 0; i < h.ncarry; i++)
		carry[i].now = SIZE_MAX;	/* a removed flow's, whatever the file says */
	free(x->carry);
	x->carry = carry;
	x->carrycap = h.ncarry + 1;
	x->ncarry = h.ncarry;
	carry = NULL;
out:
	free(carry);
	free(prev);
	free(d);
	fclose(f);
}

int pl_ipfix_save(struct pl_ipfix *x, char *why, size_t whylen)
{
	struct state_head h = { .seen_size = sizeof(struct seen),
				.pend_size = sizeof(struct pend) };
	struct dom_seq *d;
	char tmp[sizeof(x->state) + 8];
	bool sent = x->nprev > 0;
	int fd, err = 0;
	FILE *f;

	if (!x->state[0])
		return 0;
	for (size_t i = 0; i < x->ndoms; i++)
		sent |= x->doms[i].seq > 0;
	sent |= x->nretired > 0 || x->ncarry > 0;
	if (!sent)
		return 0;	/* nothing sent or waiting, nothing to go on from */
	memcpy(h.magic, STATE_MAGIC, sizeof(STATE_MAGIC));
	/* the domains in use, and those forgotten (retire()): a namespace back resumes its own */
	h.ndoms = (uint32_t)(x->ndoms + x->nretired);
	h.nprev = x->nprev;
	h.ncarry = (uint32_t)x->ncarry;		/* at most CARRY_MAX */
	d = calloc(h.ndoms, sizeof(*d));
	if (!d)
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	for (size_t i = 0; i < x->ndoms; i++)
		d[i] = (struct dom_seq){ x->doms[i].id, x->doms[i].seq };
	if (x->nretired)
		memcpy(d + x->ndoms, x->retired, x->nretired * sizeof(*d));
	if (mkdir(PL_IPFIX_STATE_DIR, 0700) && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", x->state);
	fd = mkstemp(tmp);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		err = -errno;
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		goto out;
	}
	errno = 0;	/* a short write may set none: -EIO then (mkdir() left EEXIST) */
	/* x->prev is NULL while no flow was sent: fwrite() must not be handed it, even for 0 */
	if (fwrite(&h, sizeof(h), 1, f) != 1 || fwrite(d, sizeof(*d), h.ndoms, f) != h.ndoms ||
	    (x->nprev && fwrite(x->prev, sizeof(*x->prev), x->nprev, f) != x->nprev) ||
	    (x->ncarry && fwrite(x->carry, sizeof(*x->carry), x->ncarry, f) != x->ncarry))
		err = errno ? -errno : -EIO;
	if (fclose(f) && !err)
		err = errno ? -errno : -EIO;
	if (!err && rename(tmp, x->state))
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(d);
	return err ? pl_why(why, whylen, err, "cannot keep what was sent in %s: %s", x->state,
			    strerror(-err)) : 0;
}

/*
 * Whether @host can be resolved at all: an address, or a name of labels of
 * 1-63 letters, digits, '-' or '_' between dots (RFC 1123, and the '_' some
 * use), 253 at most. A name that never could is a mistake to say now, not a
 * name the daemon waits to resolve.
 */
static bool host_syntax(const char *host)
{
	struct in6_addr a6;
	size_t label = 0, len = strlen(host);

	if (strchr(host, ':')) {	/* an IPv6 address, with a zone (%eth0) or not */
		char addr[INET6_ADDRSTRLEN];
		size_t n = strcspn(host, "%");

		if (n >= sizeof(addr) || (host[n] && !host[n + 1]))
			return false;
		memcpy(addr, host, n);
		addr[n] = '\0';
		return inet_pton(AF_INET6, addr, &a6) == 1;
	}
	if (!len || len > 253)
		return false;
	for (const char *c = host; *c; c++) {
		if (*c == '.') {
			if (!label && c[1])	/* "a..b", ".a"; a final dot is the root's */
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*c) || *c == '-' || *c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return strcmp(host, ".") != 0;
}

int pl_ipfix_collector_split(const char *collector, char *host, size_t hostlen,
			     const char **port, char *why, size_t whylen)
{
	const char *colon = strrchr(collector, ':');
	size_t hl = colon ? (size_t)(colon - collector) : 0;

	/* "[::1]": the last colon is the address's, no port follows */
	if (!colon || !hl || hl >= hostlen || !colon[1] || strchr(colon, ']'))
		return pl_why(why, whylen, -EINVAL, "not HOST:PORT");
	memcpy(host, collector, hl);
	host[hl] = '\0';
	if (host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	} else if (strchr(host, ':')) {
		/* "::1" would be host "::", port 1 */
		return pl_why(why, whylen, -EINVAL, "not HOST:PORT (an IPv6 address goes in "
			      "brackets: [ADDR]:PORT)");
	}
	if (!host_syntax(host))
		return pl_why(why, whylen, -EINVAL, "host '%s': not an address nor a host name "
			      "(letters, digits, '-', '_' and dots, labels of 1-63)", host);
	*port = colon + 1;
	/*
	 * a number 1-65535 or a service name ("ipfix"): getaddrinfo() would take
	 * 99999 as 99999 modulo 65536, and "+80" as 80
	 */
	if (!isalpha((unsigned char)colon[1]) && pl_port_parse(colon + 1) < 0)
		return pl_why(why, whylen, -EINVAL, "port %s: not a port to send to (1-65535)",
			      colon + 1);
	if (isalpha((unsigned char)colon[1]) && !getservbyname(colon + 1, "udp"))
		return pl_why(why, whylen, -EINVAL, "port %s: no such UDP service in /etc/services "
			      "(give the number: IPFIX's is 4739)", colon + 1);
	return 0;
}

/*
 * The collector's address found: its socket, connected if there is a route
 * (none yet: the network not configured; the sends connect, failing until
 * there is one), and the state a clean stop to it left. 0, or -errno with @why.
 */
static int use_address(struct pl_ipfix *x, const struct addrinfo *ai, char *why, size_t whylen)
{
	/* port 0 sends nowhere: connect() would pick nothing and every send fail */
	if ((ai->ai_family == AF_INET ? ((struct sockaddr_in *)ai->ai_addr)->sin_port :
	     ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port) == 0)
		return pl_why(why, whylen, -EINVAL, "port 0: not a port to send to (1-65535)");
	x->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return pl_why(why, whylen, -errno, "%s", strerror(errno));
	memcpy(&x->to, ai->ai_addr, ai->ai_addrlen);	/* getaddrinfo()'s fit a sockaddr_storage */
	x->tolen = ai->ai_addrlen;
	x->connected = !connect(x->fd, ai->ai_addr, ai->ai_addrlen);
	if (!x->connected && errno != ENETUNREACH && errno != EHOSTUNREACH && errno != ENETDOWN) {
		int err = pl_why(why, whylen, -errno, "%s", strerror(errno));

		close(x->fd);
		x->fd = -1;
	x->tpl_secs = PL_IPFIX_TEMPLATE_SECS;
		return err;
	}
	state_path(x, ai->ai_addr, ai->ai_addrlen);
	resume(x);
	return 0;
}

/* getaddrinfo()'s @err of @x->host as -errno with @why (-EINVAL: the port; -EAGAIN: the name) */
static int gai_why(const struct pl_ipfix *x, int err, char *why, size_t whylen)
{
	if (err == EAI_SERVICE)
		return pl_why(why, whylen, -EINVAL, "port %s: no such UDP service in /etc/services "
			      "(give the number: IPFIX's is 4739)", x->port);
	return pl_why(why, whylen, -EAGAIN, "%s: %s", x->host, gai_strerror(err));
}

#define RESOLVE_WAIT_NS 200000000	/* for an answer, at each export until the name resolves */

/*
 * A collector's name that did not resolve yet: take the answer of the
 * request in flight, or ask again and wait up to RESOLVE_WAIT_NS (an answer
 * slower than that is taken at the next call). 0 once the address is in
 * use, -EINPROGRESS while a request runs, or -errno with @why.
 */
static int resolve(struct pl_ipfix *x, char *why, size_t whylen)
{
	int err;

	if (x->fd >= 0)
		return 0;
	if (!x->resolving) {
		memset(&x->gai, 0, sizeof(x->gai));
		x->hints = (struct addrinfo){ .ai_socktype = SOCK_DGRAM };
		x->gai.ar_name = x->host;
		x->gai.ar_service = x->port;
		x->gai.ar_request = &x->hints;
		x->gaip = &x->gai;
		err = getaddrinfo_a(GAI_NOWAIT, &x->gaip, 1, NULL);
		if (err)
			return gai_why(x, err, why, whylen);
		x->resolving = true;
		gai_suspend((const struct gaicb *const *)&x->gaip, 1,
			    &(struct timespec){ .tv_nsec = RESOLVE_WAIT_NS });
	}
	err = gai_error(&x->gai);
	if (err == EAI_INPROGRESS)
		return x->gai_last ? gai_why(x, x->gai_last, why, whylen) :
		       pl_why(why, whylen, -EINPROGRESS, "%s: no answer yet", x->host);
	x->resolving = false;
	x->gai_last = err;
	if (err)
		return gai_why(x, err, why, whylen);
	err = use_address(x, x->gai.ar_result, why, whylen);
	freeaddrinfo(x->gai.ar_result);
	x->gai.ar_result = NULL;
	return err;
}

int pl_ipfix_open(const char *collector, uint32_t domain, bool later, struct pl_ipfix **out,
		  char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	const char *port;
	struct pl_ipfix *x;
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->fd = -1;
	x->domain = domain;
	err = pl_ipfix_collector_split(collector, x->host, sizeof(x->host), &port, why, whylen);
	if (!err && strlen(port) >= sizeof(x->port))
		err = pl_why(why, whylen, -EINVAL, "port %s: not a port to send to (1-65535)", port);
	if (err) {
		pl_ipfix_close(x);
		return err;
	}
	strcpy(x->port, port);
	x->doms = calloc(1, sizeof(*x->doms));
	err = x->doms ? pl_netns_here(&x->home) : -ENOMEM;
	if (err) {
		pl_ipfix_close(x);
		return pl_why(why, whylen, err, "cannot tell the current network namespace: %s",
			      strerror(-err));
	}
	x->doms[0] = (struct domain){ .id = domain, .netns = x->home.ino, .tpl = true };
	x->ndoms = x->domcap = 1;
	/* an address, or a name when the caller waits for it (@later: resolved by the exports) */
	if (later)
		hints.ai_flags = AI_NUMERICHOST;
	err = getaddrinfo(x->host, x->port, &hints, &ai);
	if (!err) {
		err = use_address(x, ai, why, whylen);
		freeaddrinfo(ai);
	} else if (later && err == EAI_NONAME) {
		err = resolve(x, why, whylen);
		if (err == -EAGAIN || err == -EINPROGRESS)
			err = 0;	/* said by the exports, until it resolves */
	} else {
		gai_why(x, err, why, whylen);
		err = -EINVAL;
	}
	if (err) {
		pl_ipfix_close(x);
		return err;
	}
	begin(x);
	*out = x;
	return 0;
}

bool pl_ipfix_resolved(const struct pl_ipfix *x)
{
	return x->fd >= 0;
}

void pl_ipfix_begin(struct pl_ipfix *x, bool tpl)
{
	free(x->now);
	x->now = NULL;
	x->nnow = 0;
	x->sent = 0;
	x->failed = false;
	x->in_msg = 0;
	x->send_err = 0;
	x->refused = false;
	begin(x);
	for (size_t i = 0; i < x->ndoms; i++)
		x->doms[i].used = false;
	if (tpl) {	/* the home domain's at once; every other's before its next records */
		for (size_t i = 0; i < x->ndoms; i++)
			x->doms[i].tpl = true;
		x->send_err = use_domain(x, x->home.ino);
	}
}

/*
 * One data record of @f's @dp packets and @db bytes (Ethernet headers
 * included), of x->now[@now] (SIZE_MAX: a removed flow's).
 */
static void send_flow(struct pl_ipfix *x, uint64_t netns, const struct pl_flow *f, uint64_t dp,
		      uint64_t db, int tcp_fd, size_t now)
{
	const struct pl_flow_key *k = &f->key;
	struct pend p = { now, netns, *f, dp, db };
	struct pl_tcp_state ts;
	int half = 0;
	uint16_t tpl;
	size_t need;
	bool tcp;

	if (!dp)
		return;
	if (x->send_err) {	/* after a failed send: count on, send it next round */
		unsent(x, &p);
		return;
	}
	x->send_err = use_domain(x, netns);
	if (x->send_err) {
		unsent(x, &p);
		return;
	}
	/* octetDeltaCount counts from the IP header on: no Ethernet header or tag */
	db -= dp * (14 + (k->vlan == PL_VLAN_NONE ? 0 : 4)) <= db ?
	      dp * (14 + (k->vlan == PL_VLAN_NONE ? 0 : 4)) : db;
	tcp = tcp_fd >= 0 && !pl_tcp_flow(tcp_fd, k, &ts, &half);
	tpl = (uint16_t)((tcp ? TPL_V4_TCP : TPL_V4) + (k->l3proto == 0x86dd));
	need = (k->l3proto == 0x86dd ? REC_V6 : REC_V4) + (tcp ? REC_TCP : 0) + 4;
	if (x->len + need > MSG_MAX || x->in_msg >= PEND_MAX) {
		x->send_err = flush(x, x->in_msg);
		if (x->send_err) {
			unsent(x, &p);
			return;
		}
	}
	if (!x->set_at || x->set_id != tpl)
		open_set(x, tpl);
	record(x, f, dp, db);
	if (tcp)
		record_tcp(x, &ts, half);
	x->pend[x->in_msg++] = p;
}

int pl_ipfix_add(struct pl_ipfix *x, uint64_t netns, const struct pl_flow *fl, size_t nf)
{
	return pl_ipfix_add_tcp(x, netns, fl, nf, -1);
}

int pl_ipfix_add_tcp(struct pl_ipfix *x, uint64_t netns, const struct pl_flow *fl, size_t nf,
		     int tcp_fd)
{
	struct seen *grown = realloc(x->now, (x->nnow + nf + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	x->now = grown;
	for (size_t f = 0; f < nf; f++) {
		const struct pl_flow_key *k = &fl[f].key;
		struct seen s = { netns, fl[f].key, fl[f].val };
		const struct seen *old;
		uint64_t dp, db;

		x->now[x->nnow++] = s;
		if (k->l3proto != 0x0800 && k->l3proto != 0x86dd)
			continue;	/* IPFIX records here are IP flows */
		old = pl_bsearch(&s, x->prev, x->nprev, sizeof(s), seen_cmp);
		/* counted afresh since (detach and attach, stats --reset): all of it is new */
		if (old && pl_flow_val_afresh(&old->val, &s.val))
			old = NULL;
		dp = old ? s.val.packets - old->val.packets : s.val.packets;
		db = old ? s.val.bytes - old->val.bytes : s.val.bytes;
		send_flow(x, netns, &fl[f], dp, db, tcp_fd, x->nnow - 1);
	}
	return 0;
}

/*
 * A flow that left its table (stats --reset, detach) since the last round,
 * as logged by whoever removed it (loader/gone.c): send what it gained
 * since the last export; what its key counts from now on is another flow.
 */
static void add_gone(struct pl_ipfix *x, const struct pl_gone *g)
{
	struct seen s = { g->key.netns, g->key.key, g->val };
	struct pl_flow f = { g->key.key, g->val };
	struct seen *old = pl_bsearch(&s, x->prev, x->nprev, sizeof(s), seen_cmp);
	/*
	 * Every removal is logged, and the exporter's reading is of the flow
	 * it removed, not counted afresh since: the removal's reading holds it
	 * (times aside: a flow only in a cache since a reset starts then)
	 */
	bool same = old && old->val.packets <= s.val.packets && old->val.bytes <= s.val.bytes;
	uint64_t dp, db;

	if (g->val.pad[0] & PL_GONE_LIVES_ON) {		/* what its old table took after a copy */
		send_flow(x, s.netns, &f, s.val.packets, s.val.bytes, -1, SIZE_MAX);
		return;
	}
	if (g->val.pad[0] & PL_GONE_COUNTED) {		/* copied from another key: sent there */
		s.val.pad[0] = 0;
		if (old) {
			old->val = s.val;
		} else {	/* the baseline takes it after this pass (add_gones()) */
			struct seen *c = realloc(x->counted, (x->ncounted + 1) * sizeof(*c));

			if (!c)
				return;	/* it goes out in full again */
			x->counted = c;
			x->counted[x->ncounted++] = s;
		}
		return;
	}
	dp = same ? s.val.packets - old->val.packets : s.val.packets;
	db = same ? s.val.bytes - old->val.bytes : s.val.bytes;

	if (old)
		memset(&old->val, 0, sizeof(old->val));	/* the key's next reading is all new */
	send_flow(x, s.netns, &f, dp, db, -1, SIZE_MAX);
}

int pl_ipfix_end(struct pl_ipfix *x, int err, size_t *records, char *why, size_t whylen)
{
	size_t m = 0, n;

	/* what is in buf is deltas of flows read, also in a round that ends in @err */
	if (!x->send_err)
		x->send_err = flush(x, x->in_msg);
	/*
	 * The new baseline: the readings whose records were sent (or that had
	 * nothing to send), and the old ones of flows whose records were not
	 * (unsent()), whose deltas the next round sends: each delta reaches the
	 * collector once, neither lost nor twice.
	 */
	for (size_t i = 0; i < x->nnow; i++)
		if (x->now[i].netns != NS_UNSENT)
			x->now[m++] = x->now[i];
	x->nnow = n = m;
	pl_qsort(x->now, x->nnow, sizeof(*x->now), seen_cmp);
	if (err) {
		/* flows not read (a table unreadable): their old readings, for the next round */
		struct seen *all = realloc(x->now, (n + x->nprev + 1) * sizeof(*all));

		if (!all) {	/* the old baseline: what this round sent may go again */
			free(x->now);
			x->now = NULL;
			return err;
		}
		x->now = all;
		for (size_t i = 0; i < x->nprev; i++)
			if (!pl_bsearch(&x->prev[i], x->now, n, sizeof(*x->now), seen_cmp))
				x->now[x->nnow++] = x->prev[i];
		pl_qsort(x->now, x->nnow, sizeof(*x->now), seen_cmp);
	}
	free(x->prev);
	x->prev = x->now;
	x->nprev = x->nnow;
	x->now = NULL;
	*records = x->sent;
	x->failed = err || x->send_err;
	if (err)
		return err;
	if (x->send_err)
		return pl_why(why, whylen, x->send_err, "cannot send: %s", strerror(-x->send_err));
	if (x->refused)		/* records went out; the collector may have missed templates */
		return pl_why(why, whylen, -ECONNREFUSED, "%s (an earlier message was refused: "
			      "is the collector listening?)", strerror(ECONNREFUSED));
	return 0;
}

/* by namespace (one domain's messages in a row), then by removal */
static int gone_cmp(const void *a, const void *b)
{
	const struct pl_gone *x = a, *y = b;

	if (x->key.netns != y->key.netns)
		return x->key.netns < y->key.netns ? -1 : 1;
	if (x->key.id != y->key.id)
		return x->key.id < y->key.id ? -1 : 1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

/*
 * The flows removed since the last round (of the home namespace alone with
 * home_only), oldest removal first (a key reset twice is two flows one
 * after the other). Read under the change
 * lock, which removals hold: a removal is wholly before this reading
 * (logged, its flows gone from the tables read next) or wholly after.
 */
static int add_gones(struct pl_ipfix *x)
{
	struct pl_gone *g = NULL;
	size_t n = 0;
	uint64_t since = x->gone_since;
	int err;

	if (x->ncarry) {	/* the records of removed flows that earlier rounds could not send */
		struct pend *c = x->carry;

		n = x->ncarry;
		x->carry = NULL;
		x->ncarry = x->carrycap = 0;
		for (size_t i = 0; i < n; i++)
			send_flow(x, c[i].netns, &c[i].f, c[i].dp, c[i].db, -1, SIZE_MAX);
		free(c);
		n = 0;
	}
	if (!x->interval)
		return 0;
	x->gone_since = pl_mono_ns();
	pl_gone_reader(x->interval);	/* still reading: removals keep logging */
	err = pl_gone_read(&g, &n);
	if (err) {
		x->gone_since = since;
		return err;
	}
	pl_qsort(g, n, sizeof(*g), gone_cmp);
	for (size_t i = 0; i < n; i++)
		if (g[i].key.id > since && g[i].key.id <= x->gone_since &&
		    (!x->home_only || g[i].key.netns == x->home.ino))
			add_gone(x, &g[i]);
	free(g);
	if (x->ncounted) {
		struct seen *p = realloc(x->prev, (x->nprev + x->ncounted) * sizeof(*p));

		if (p) {
			memcpy(p + x->nprev, x->counted, x->ncounted * sizeof(*p));
			x->prev = p;
			x->nprev += x->ncounted;
			pl_qsort(x->prev, x->nprev, sizeof(*x->prev), seen_cmp);
		}
		free(x->counted);
		x->counted = NULL;
		x->ncounted = 0;
	}
	return 0;
}

/* Remember forgotten domain @d's sequence number, the oldest remembered going at RETIRED_MAX. */
static void retire(struct pl_ipfix *x, const struct domain *d)
{
	struct dom_seq *r;

	if (!d->seq)
		return;		/* a domain back from 0 starts where it was */
	if (x->nretired == RETIRED_MAX)
		memmove(x->retired, x->retired + 1, --x->nretired * sizeof(*x->retired));
	r = pl_grown(x->retired, &x->retcap, x->nretired, sizeof(*r), 16);
	if (!r)
		return;		/* back, it starts at 0 */
	x->retired = r;
	x->retired[x->nretired++] = (struct dom_seq){ d->id, d->seq };
}

/*
 * Forget the domains of namespaces that have no attachment left (@a, @n: this
 * round's) and sent nothing this round (their removed flows went out in an
 * earlier one), so that a host that makes and deletes namespaces all day
 * does not grow the list; the home domain (doms[0]) stays. Their sequence
 * numbers are kept apart (retire()), for a namespace that comes back.
 */
static void forget_domains(struct pl_ipfix *x, const struct pl_attachment *a, size_t n)
{
	uint32_t cur = x->doms[x->cur].id;
	size_t m = 1;

	for (size_t i = 1; i < x->ndoms; i++) {
		bool keep = x->doms[i].used;

		for (size_t k = 0; k < n && !keep; k++)
			keep = !a[k].ns_gone && domain_of(x, a[k].netns) == x->doms[i].id;
		if (keep)
			x->doms[m++] = x->doms[i];
		else
			retire(x, &x->doms[i]);
	}
	x->ndoms = m;
	for (x->cur = 0; x->cur < m && x->doms[x->cur].id != cur; x->cur++)
		;
	if (x->cur == m)	/* its message was sent: nothing in buf */
		x->cur = 0;
}

/*
 * Whether this round is a template round: the first, one the caller asks
 * for (@asked: the last one failed), and otherwise every
 * PL_IPFIX_TEMPLATE_ROUNDS rounds or every tpl_secs seconds, whichever
 * comes first. A collector over UDP forgets templates it has not seen again
 * within their lifetime (RFC 6728's default: 1800 s), and one restarted
 * where no ICMP error comes back knows none: ten rounds of a long
 * --interval were longer than either. The seconds are counted to the
 * nearest round: a round that is late by less than half an interval
 * (x->interval) does not put the templates off by a whole one.
 */
static bool templates_due(struct pl_ipfix *x, bool asked)
{
	uint64_t now = pl_mono_ns(), half = x->interval * 500000000ULL;

	if (!asked && x->tpl_ns && ++x->tpl_rounds < PL_IPFIX_TEMPLATE_ROUNDS &&
	    now - x->tpl_ns + half < x->tpl_secs * 1000000000ULL)
		return false;
	x->tpl_rounds = 0;
	x->tpl_ns = now;
	return true;
}

void pl_ipfix_template_refresh(struct pl_ipfix *x, uint32_t secs)
{
	x->tpl_secs = secs;
}

int pl_ipfix_export(struct pl_ipfix *x, bool tpl, size_t *records, char *why, size_t whylen)
{
	struct pl_attachment *a = NULL;
	char lwhy[PL_WHY_LEN];	/* without the lock the round goes on: not said */
	struct pl_holds hs;
	bool held;
	size_t n = 0;
	int lock, err = pl_attachments_in(x->home_only ? &x->home : NULL, &a, &n);

	*records = 0;
	if (err) {
		x->failed = true;
		return pl_why(why, whylen, err, "cannot read %s: %s", PL_PIN_ROOT, strerror(-err));
	}
	/* a name not resolved yet: nothing read, the flows go out whole once it does */
	err = resolve(x, why, whylen);
	if (err) {
		x->failed = true;
		free(a);
		return err;
	}
	why[0] = '\0';
	pl_ipfix_begin(x, templates_due(x, tpl));
	/*
	 * The change lock, shared: no stats --reset or detach removes flows while
	 * this round reads the log of removed flows and the tables. A pktlens that
	 * holds it for long (an attach loading many programs) delays the round by
	 * up to 5 s; after that the round goes on without it.
	 */
	lock = x->locked ? -1 : pl_change_lock_shared(5000, lwhy, sizeof(lwhy));
	err = add_gones(x);
	if (err)
		pl_why(why, whylen, err, "cannot read %s/%s: %s", PL_PIN_ROOT, PL_MAP_FLOWS_GONE,
		       strerror(-err));
	held = pl_holds_begin(&hs, a, n);	/* every flow cache still, one wait for all */
	for (size_t i = 0; i < n && !err; i++) {
		struct pl_flow *fl = NULL;
		struct pl_state st;
		size_t nf = 0;
		int tfd;

		/* a deleted namespace's flows were exported while it lived; set aside, their key changed */
		if (!a[i].meta_ok || a[i].ns_gone || pl_state_open(a[i].dir, &st))
			continue;
		st.held = held;
		err = pl_state_flows(&st, &fl, &nf);
		pl_state_close(&st);
		if (err) {
			pl_why(why, whylen, err, "%s: cannot read flows: %s", a[i].ifname,
			       strerror(-err));
			break;
		}
		nf = pl_flows_first_hook_only(&a[i].meta, fl, nf);
		tfd = a[i].meta.tcp_passive ? pl_pin_open(a[i].dir, PL_MAP_TCP_STATE) : -1;
		err = pl_ipfix_add_tcp(x, a[i].netns, fl, nf, tfd);
		if (tfd >= 0)
			close(tfd);
		free(fl);
	}
	pl_holds_end(&hs);
	if (lock >= 0)
		close(lock);
	err = pl_ipfix_end(x, err, records, why, whylen);
	if (!err)
		forget_domains(x, a, n);
	free(a);
	return err;
}

int pl_ipfix_interval(struct pl_ipfix *x, uint32_t secs, char *why, size_t whylen)
{
	char lwhy[PL_WHY_LEN];	/* without the lock it registers all the same: not said */
	int lock = pl_change_lock_shared(5000, lwhy, sizeof(lwhy));
	int err = pl_gone_reader(secs);

	if (lock >= 0)
		close(lock);
	if (err)
		return pl_why(why, whylen, err, "cannot create %s/%s: %s", PL_PIN_ROOT,
			      PL_MAP_FLOWS_GONE, strerror(-err));
	x->interval = secs;
	x->gone_since = pl_mono_ns();	/* flows that left before are not this exporter's */
	return 0;
}

bool pl_ipfix_failed(const struct pl_ipfix *x)
{
	return x->failed;
}

void pl_ipfix_home_only(struct pl_ipfix *x)
{
	x->home_only = true;
}

void pl_ipfix_locked(struct pl_ipfix *x, bool locked)
{
	x->locked = locked;
}

void pl_ipfix_close(struct pl_ipfix *x)
{
	if (!x)
		return;
	if (x->interval)
		pl_gone_unread();	/* removals need not be logged for it any more */
	/* a request in flight writes into x: cancelled, or waited for */
	if (x->resolving && gai_cancel(&x->gai) != EAI_CANCELED)
		while (gai_error(&x->gai) == EAI_INPROGRESS)
			gai_suspend((const struct gaicb *const *)&x->gaip, 1, NULL);
	if (x->gai.ar_result)
		freeaddrinfo(x->gai.ar_result);
	if (x->fd >= 0)
		close(x->fd);
	free(x->now);
	free(x->prev);
	free(x->counted);
	free(x->carry);
	free(x->doms);
	free(x->retired);
	free(x);
}
