// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's loop: one epoll over the signals (signalfd), inotify on
 * /run/netns, a link notification socket per covered namespace, the
 * exporters' clocks. Idle, nothing runs: every wakeup is an event. Each
 * wakeup gathers what changed and reconciles just that (service/plan.h),
 * under the change lock, through the loader's calls; the pins hold all the
 * state, so a restart adopts what is attached, counters and all.
 *
 * Logs: one line per event on stderr, "pktlens: daemon: ...", with a
 * syslog priority prefix when stderr is the journal (JOURNAL_STREAM).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "plan.h"
#include "watch.h"
#include "../cli/util.h"
#include "../export/format.h"
#include "../export/ipfix.h"
#include "../export/json.h"
#include "../export/serve.h"

#define LOCK_WAIT_MS 60000
#define RETRY_MS 20		/* a named namespace not mounted yet, a lock not had */
#define NS_RETRIES 250		/* 5 s of them */
#define LOCK_SAY_S 0.05		/* a wait for the change lock worth a mention */

/* Interfaces of one namespace that events named since the last reconcile. */
struct dirty {
	uint64_t netns;
	bool all;
	char (*names)[IF_NAMESIZE];
	int *idx;
	size_t n, cap;
};

/* A gone interface whose pins wait for the exporters to read them once more. */
struct pending {
	uint64_t netns;
	uint64_t cookie;	/* its namespace's (0: not known), which a new one with its inode has not */
	char ifname[IF_NAMESIZE];
	unsigned long scrapes, rounds;	/* renders begun and IPFIX rounds when it went */
};

struct daemon {
	const char *path;
	struct pl_config *c;
	struct pl_nsset ns;
	int ep, sigfd, inofd, scrapefd, ipfixfd, retryfd, trigfd;
	int lockfd;		/* instance_lock() of the config's owner */
	pid_t *tpid;		/* triggers: each one's `pktlens sample`, 0: not running */
	double *trestart;	/* when to start it again after it ended */
	size_t ntrig;
	struct pl_linkmon **mons;
	size_t nmons;
	struct dirty *dirty;
	size_t ndirty;
	bool full;		/* everything must be looked at */
	unsigned ns_retries;
	struct pl_prom_server *prom;
	char *prom_at;		/* the address it listens on */
	/*
	 * renders of /metrics begun, and the greatest number of one that was
	 * scraped whole (the server's threads count them): a gone interface's
	 * pins go once a render begun after it went was scraped
	 */
	atomic_ulong renders, scraped;
	struct pl_ipfix *ipfix;
	char *ipfix_to;		/* its collector, interval and observation domain */
	uint32_t ipfix_iv, ipfix_dom;
	unsigned long rounds;
	bool ipfix_failed;
	struct pending *pend;
	size_t npend;
	int *spfd;		/* pidfds of live `pktlens sample`s of managed attachments */
	pid_t *spid;
	size_t nsp;
	bool reap;		/* look for what dead samplers left (reap_samplers()) */
	bool reap_soft;		/* after a reconcile: at most once a second (a burst has many) */
	double reaped_at;
	bool journal;
	bool json;		/* -j: the first error before it is ready, as JSON on stdout too */
	bool stop;
	double lock_wait;	/* of the running pass, until its first step is logged */
};

/* tags of the fixed fds in epoll (monitors are tagged with their own pointer) */
static char tag_sig, tag_ino, tag_scrape, tag_ipfix, tag_retry, tag_trig, tag_sampler;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- logging ---- */

#define LOG_ERR 3
#define LOG_WARNING 4
#define LOG_INFO 6

__attribute__((format(printf, 3, 4)))
static void dlog(struct daemon *d, int prio, const char *fmt, ...)
{
	char line[4096], safe[4 * sizeof(line) + 5];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one line, no raw control character, whatever a name in it holds (as pl_err()) */
	pl_fmt_safe(line, safe, sizeof(safe));
	if (d->json && prio <= LOG_ERR) {
		char msg[sizeof(line) + 16];

		snprintf(msg, sizeof(msg), "daemon: %s", line);
		jw_error_doc(stdout, msg);
		d->json = false;	/* one JSON document */
	}
	if (d->journal)
		fprintf(stderr, "<%d>pktlens: daemon: %s\n", prio, safe);
	else
		fprintf(stderr, "pktlens: daemon: %s\n", safe);
}

/* systemd connects stderr to the journal and says so in JOURNAL_STREAM=dev:ino */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(STDERR_FILENO, &st) &&
	       st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

/* ---- exporters ---- */

static unsigned long on_rendering(void *ctx)
{
	struct daemon *d = ctx;

	return atomic_fetch_add(&d->renders, 1) + 1;
}

static void on_scraped(void *ctx, unsigned long render)
{
	struct daemon *d = ctx;
	unsigned long seen = atomic_load(&d->scraped);
	uint64_t one = 1;

	while (render > seen && !atomic_compare_exchange_weak(&d->scraped, &seen, render))
		;
	if (write(d->scrapefd, &one, sizeof(one)) < 0) {
		/* the counter is enough: the loop sees it at its next wakeup */
	}
}

/* libmicrohttpd's complaints, rate-limited by the server (from its threads) */
static void on_server_log(void *ctx, const char *line)
{
	dlog(ctx, LOG_WARNING, "prometheus: %s", line);
}

/* What the exporter sent, kept for the next one (pl_ipfix_save()): a restart sends only what is new */
static void ipfix_keep(struct daemon *d)
{
	char why[PL_WHY_LEN];

	if (d->ipfix && pl_ipfix_save(d->ipfix, why, sizeof(why)))
		dlog(d, LOG_WARNING, "ipfix: %s: the next exporter to %s sends every flow's whole "
		     "count again", why, d->ipfix_to);
}

static void ipfix_round(struct daemon *d);

/* The exporter ends (a reload changed it): its last export first, as `export ipfix` ends. */
static void ipfix_stop(struct daemon *d)
{
	struct itimerspec off = { 0 };

	timerfd_settime(d->ipfixfd, 0, &off, NULL);
	if (d->ipfix)
		ipfix_round(d);
	ipfix_keep(d);
	pl_ipfix_close(d->ipfix);
	d->ipfix = NULL;
	d->ipfix_to = NULL;	/* the caller's to free */
}

static bool same_str(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* Serve /metrics on @listen; 0 or -errno (said in the log either way). */
static int prom_start(struct daemon *d, const char *listen)
{
	struct pl_prom_hooks h = { .rendering = on_rendering, .scraped = on_scraped,
				   .log = on_server_log, .ctx = d, .freebind = true };
	char why[PL_WHY_LEN], url[128];
	int err;

	d->prom = pl_prom_serve(listen, &h, why, sizeof(why));
	if (!d->prom) {
		err = errno ? -errno : -EIO;
		dlog(d, LOG_ERR, "prometheus: %s", why);
		return err;
	}
	d->prom_at = strdup(listen);
	dlog(d, LOG_INFO, "prometheus: serving %s", pl_listen_url(listen, url, sizeof(url)));
	return 0;
}

/* Send flow records to @collector every @interval s; 0 or -errno (said in the log either way). */
static int ipfix_start(struct daemon *d, const char *collector, uint32_t interval, uint32_t domain)
{
	struct itimerspec every = {
		.it_interval = { .tv_sec = interval },
		.it_value = { .tv_sec = interval },
	};
	char why[PL_WHY_LEN];
	int err;

	/* a name that does not resolve yet (no DNS at boot) is resolved by the rounds */
	err = pl_ipfix_open(collector, domain, true, &d->ipfix, why, sizeof(why));
	if (err) {
		dlog(d, LOG_ERR, "ipfix: collector '%s': %s", collector, why);
		return err;
	}
	if (pl_ipfix_interval(d->ipfix, interval, why, sizeof(why)))
		dlog(d, LOG_WARNING, "ipfix: %s: the flows removed between exports (stats --reset, "
		     "detach) are not sent", why);
	d->ipfix_to = strdup(collector);
	d->ipfix_iv = interval;
	d->ipfix_dom = domain;
	d->ipfix_failed = false;
	timerfd_settime(d->ipfixfd, 0, &every, NULL);
	dlog(d, LOG_INFO, "ipfix: to %s every %u s%s", collector, interval,
	     pl_ipfix_resolved(d->ipfix) ? "" : " (once its name resolves)");
	return 0;
}

/*
 * Make the exporters what @c asks for, against what runs (not what the
 * previous config said: one that could not start is tried again). One
 * that cannot start leaves the one running before in place. 0 or -errno.
 */
static int exporters(struct daemon *d, const struct pl_config *c)
{
	int err = 0;

	if (!same_str(c->prom_listen, d->prom_at) || (c->prom_listen && !d->prom)) {
		char *was = d->prom_at;

		pl_prom_serve_stop(d->prom);
		d->prom = NULL;
		d->prom_at = NULL;
		if (c->prom_listen)
			err = prom_start(d, c->prom_listen);
		if (err && was)
			prom_start(d, was);
		free(was);
	}
	if (!same_str(c->ipfix_collector, d->ipfix_to) || (c->ipfix_collector && !d->ipfix) ||
	    (c->ipfix_collector && (c->ipfix_interval != d->ipfix_iv ||
				    c->ipfix_domain != d->ipfix_dom))) {
		char *was = d->ipfix_to;
		int e = 0;

		ipfix_stop(d);
		if (c->ipfix_collector)
			e = ipfix_start(d, c->ipfix_collector, c->ipfix_interval, c->ipfix_domain);
		if (e && was)
			ipfix_start(d, was, d->ipfix_iv, d->ipfix_dom);
		free(was);
		err = err ?: e;
	}
	if (d->ipfix && c->ipfix_collector)	/* a new one takes effect at once, no restart */
		pl_ipfix_template_refresh(d->ipfix, c->ipfix_tpl_secs);
	return err;
}

static void ipfix_round(struct daemon *d)
{
	char why[PL_WHY_LEN];
	size_t recs;
	bool failed;

	failed = pl_ipfix_export(d->ipfix, d->ipfix_failed, &recs, why, sizeof(why)) != 0;
	/*
	 * what a refused send could not send goes next round; once it answers it
	 * gets templates first. A name that does not resolve is asked again each
	 * round, said once.
	 */
	if (failed && !d->ipfix_failed)
		dlog(d, LOG_WARNING, "ipfix: %s: %s%s", d->ipfix_to, why,
		     pl_ipfix_resolved(d->ipfix) ? "" : " (asked again every round)");
	else if (!failed && d->ipfix_failed)
		dlog(d, LOG_INFO, "ipfix: %s answers again", d->ipfix_to);
	d->ipfix_failed = failed;
	d->rounds++;
	malloc_trim(0);
}

/* ---- namespaces and their monitors ---- */

static int watch_fd(struct daemon *d, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static struct dirty *dirty_ns(struct daemon *d, uint64_t netns)
{
	struct dirty *p;

	for (size_t i = 0; i < d->ndirty; i++)
		if (d->dirty[i].netns == netns)
			return &d->dirty[i];
	p = realloc(d->dirty, (d->ndirty + 1) * sizeof(*p));
	if (!p)
		return NULL;
	d->dirty = p;
	p = &d->dirty[d->ndirty++];
	memset(p, 0, sizeof(*p));
	p->netns = netns;
	return p;
}

static void dirty_clear(struct daemon *d)
{
	for (size_t i = 0; i < d->ndirty; i++) {
		free(d->dirty[i].names);
		free(d->dirty[i].idx);
	}
	free(d->dirty);
	d->dirty = NULL;
	d->ndirty = 0;
}

/* The monitors follow the namespace set: one per covered namespace. */
static void sync_monitors(struct daemon *d)
{
	size_t kept = 0;

	for (size_t i = 0; i < d->nmons; i++) {
		if (pl_nsset_find(&d->ns, pl_linkmon_netns(d->mons[i]))) {
			d->mons[kept++] = d->mons[i];
			continue;
		}
		/* our socket would keep the namespace alive: let it go */
		epoll_ctl(d->ep, EPOLL_CTL_DEL, pl_linkmon_fd(d->mons[i]), NULL);
		pl_linkmon_close(d->mons[i]);
	}
	d->nmons = kept;
	for (size_t i = 0; i < d->ns.n; i++) {
		const struct pl_ns *ns = &d->ns.ns[i];
		struct pl_linkmon *m, **p;
		bool have = false;
		int err;

		for (size_t k = 0; k < d->nmons && !have; k++)
			have = pl_linkmon_netns(d->mons[k]) == ns->ino;
		if (have)
			continue;
		p = realloc(d->mons, (d->nmons + 1) * sizeof(*p));
		if (!p)
			continue;
		d->mons = p;
		err = pl_linkmon_open(&d->ns, ns, &m);
		if (!err)
			err = watch_fd(d, pl_linkmon_fd(m), m);
		if (err) {
			dlog(d, LOG_ERR, "netns %s: cannot watch its interfaces: %s%s", pl_ns_label(ns),
			     strerror(-err), err == -EPERM ? " (entering it needs CAP_SYS_ADMIN: "
			     "pktlens.service has it only with a drop-in)" : "");
			pl_linkmon_close(m);
			continue;
		}
		d->mons[d->nmons++] = m;
	}
}

static void arm_retry(struct daemon *d)
{
	struct itimerspec once = { .it_value = { .tv_nsec = RETRY_MS * 1000000L } };

	timerfd_settime(d->retryfd, 0, &once, NULL);
}

/* /run/netns changed (or the config): the covered set, its monitors; a full look if it changed. */
static void namespaces(struct daemon *d)
{
	size_t before = d->ns.n, pending = 0;
	bool changed = false;
	int err;

	err = pl_nsset_update(&d->ns, d->c, &changed, &pending);
	if (err) {
		dlog(d, LOG_ERR, "cannot read %s: %s", PL_NETNS_DIR, strerror(-err));
		return;
	}
	if (changed) {
		sync_monitors(d);
		d->full = true;
		dlog(d, LOG_INFO, "network namespaces covered: %zu (were %zu)", d->ns.n, before);
	}
	/* `ip netns add` creates the name, then mounts the namespace on it */
	if (pending && d->ns_retries++ < NS_RETRIES)
		arm_retry(d);
	else if (!pending)
		d->ns_retries = 0;
}

/* ---- reconciling ---- */

/* The config exports (its exporters start after the first pass: that one's gone pins wait too). */
static bool exporting(const struct daemon *d)
{
	return d->c->prom_listen || d->c->ipfix_collector;
}

static struct pending *pending_find(struct daemon *d, uint64_t netns, const char *ifname)
{
	for (size_t i = 0; i < d->npend; i++)
		if (d->pend[i].netns == netns && !strcmp(d->pend[i].ifname, ifname))
			return &d->pend[i];
	return NULL;
}

static void on_step(const struct pl_step *st, void *ctx)
{
	struct daemon *d = ctx;
	char line[PL_WHY_LEN * 12];
	struct pending *p = st->kind == PL_STEP_REMOVE ?
			    pending_find(d, st->netns, st->ifname) : NULL;

	if (p && st->kept)
		return;		/* told already; still waiting for the exporters */
	if (p) {		/* the exporters have read its last counts: gone for good */
		*p = d->pend[--d->npend];
		return;
	}
	pl_step_describe(st, line, sizeof(line));
	if (st->kept) {
		struct pending *n = realloc(d->pend, (d->npend + 1) * sizeof(*n));

		dlog(d, LOG_INFO, "gone %s%s%s%s", line, st->msg[0] ? "; " : "", st->msg,
		     exporting(d) ? "; its pins stay until the exporters have read them" : "");
		if (!n)
			return;
		d->pend = n;
		n = &d->pend[d->npend++];
		n->netns = st->netns;
		n->cookie = pl_att_cookie(&st->att);
		snprintf(n->ifname, sizeof(n->ifname), "%s", st->ifname);
		n->scrapes = atomic_load(&d->renders);
		n->rounds = d->rounds;
		return;
	}
	if (!st->ok)
		dlog(d, LOG_ERR, "%s %s: failed: %s", pl_step_verb(st), line, st->msg);
	else if (d->lock_wait >= LOCK_SAY_S)
		dlog(d, LOG_INFO, "%s %s%s%s (%.2f s, after %.2f s waiting for the change lock)",
		     pl_step_verb(st), line, st->msg[0] ? "; " : "", st->msg, st->secs, d->lock_wait);
	else
		dlog(d, LOG_INFO, "%s %s%s%s (%.2f s)", pl_step_verb(st), line, st->msg[0] ? "; " : "",
		     st->msg, st->secs);
	d->lock_wait = 0;	/* said once per pass */
}

/*
 * Whether @p removes a gone interface's pins at once, the exporters'
 * reading or not: one created again under its name (the new attachment
 * needs the name) or moved to another namespace. Pins of an interface that
 * is just gone wait for the exporters (PL_RUN_KEEP_GONE).
 */
static bool unread_removes(const struct pl_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->s[i]->kind == PL_STEP_REMOVE && p->s[i]->gone &&
		    (p->s[i]->clear_way || p->s[i]->moved))
			return true;
	return false;
}

/*
 * One reconcile of @scope (NULL: everything) with @c. An IPFIX round runs
 * first when it removes pins the exporter has not read (unread_removes()):
 * the collector gets what they counted since the last round. -EINVAL: the config
 * does not hold in some namespace (nothing changed); else 0 or -errno.
 */
static int reconcile(struct daemon *d, const struct pl_config *c, const struct pl_scope *scope,
		     struct pl_plan *done_plan, const char *remove_why)
{
	char why[PL_WHY_LEN * 8];
	struct pl_plan p;
	int lock, err;

	double t0 = now_s();

	lock = pl_change_lock(LOCK_WAIT_MS, why, sizeof(why));
	if (lock < 0) {
		dlog(d, LOG_ERR, "%s; trying again", why);
		return lock;
	}
	/* others changing attachments (pktlens commands) hold the lock: say how long we waited */
	d->lock_wait = now_s() - t0;
	err = pl_plan_make(c, &d->ns, scope, 0, &p, why, sizeof(why));
	if (err) {
		close(lock);
		dlog(d, LOG_ERR, "%s", why);
		return err;
	}
	for (size_t i = 0; i < p.nnotes; i++)
		dlog(d, LOG_WARNING, "%s", p.notes[i]);
	for (size_t i = 0; remove_why && i < p.n; i++)
		if (p.s[i]->kind == PL_STEP_REMOVE)
			p.s[i]->why = remove_why;
	if (c == d->c && d->ipfix && unread_removes(&p)) {
		pl_ipfix_locked(d->ipfix, true);	/* ours, held */
		ipfix_round(d);
		pl_ipfix_locked(d->ipfix, false);
	}
	pl_plan_run(&p, c, &d->ns, c == d->c && exporting(d) ? PL_RUN_KEEP_GONE : 0, on_step, d);
	close(lock);
	if (done_plan)
		*done_plan = p;
	else
		pl_plan_free(&p);
	malloc_trim(0);
	return 0;
}

/* ---- samplers killed with -9: what they left taken out ---- */

static void sampler_watch(struct daemon *d, pid_t pid)
{
	int fd, *fds;
	pid_t *pids;

	for (size_t i = 0; i < d->nsp; i++)
		if (d->spid[i] == pid)
			return;
	fds = realloc(d->spfd, (d->nsp + 1) * sizeof(*fds));
	if (fds)
		d->spfd = fds;
	pids = fds ? realloc(d->spid, (d->nsp + 1) * sizeof(*pids)) : NULL;
	if (!pids)
		return;
	d->spid = pids;
	/* readable once it ends (Linux 5.3+; before, the next event's pass finds it) */
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return;
	if (watch_fd(d, fd, &tag_sampler)) {
		close(fd);
		return;
	}
	d->spfd[d->nsp] = fd;
	d->spid[d->nsp++] = pid;
}

/* Stop watching the samplers that ended; whether any did. */
static bool samplers_ended(struct daemon *d)
{
	size_t kept = 0;
	bool ended = false;

	for (size_t i = 0; i < d->nsp; i++) {
		struct pollfd p = { .fd = d->spfd[i], .events = POLLIN };

		if (poll(&p, 1, 0) == 0) {
			d->spfd[kept] = d->spfd[i];
			d->spid[kept++] = d->spid[i];
			continue;
		}
		epoll_ctl(d->ep, EPOLL_CTL_DEL, d->spfd[i], NULL);
		close(d->spfd[i]);
		ended = true;
	}
	d->nsp = kept;
	return ended;
}

/*
 * A `pktlens sample` killed with -9 leaves its settings, its expression's
 * stages and its ring in the attachment, and the sampled hooks pay for them
 * until something takes them out (stats, list, the next sample did). At the
 * events the daemon gets anyway (a scrape, an IPFIX round; a reconcile, at
 * most once a second, as a burst of new interfaces brings many) it
 * looks at the attachments its config manages: what a dead sampler left is
 * taken out, and a live one is watched (pidfd) so that its end, however it
 * comes, is seen at once.
 */
static void reap_samplers(struct daemon *d)
{
	struct pl_attachment *a = NULL;
	size_t n = 0;

	if (pl_attachments_in(NULL, &a, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct pl_sample_owner o;
		char ns[300];

		if (!a[i].meta_ok || a[i].ns_gone || !pl_plan_manages(d->c, &a[i]) ||
		    pl_sample_owner(a[i].dir, true, &o))
			continue;
		if (o.reaped) {
			pl_netns_fmt(a[i].netns, 0, true, ns, sizeof(ns));
			dlog(d, LOG_INFO, "%s (netns %s): pktlens sample (pid %u) is gone: took out "
			     "what it left (its settings, stages and ring)", a[i].ifname, ns, o.pid);
		} else if (o.live && o.pid) {
			sampler_watch(d, (pid_t)o.pid);
		}
	}
	free(a);
}

/* What the events of this wakeup named. */
static void reconcile_dirty(struct daemon *d)
{
	if (d->full) {
		d->full = false;
		dirty_clear(d);
		if (reconcile(d, d->c, NULL, NULL, NULL) == -EBUSY) {
			d->full = true;
			arm_retry(d);
		}
		return;
	}
	for (size_t i = 0; i < d->ndirty; i++) {
		const struct dirty *x = &d->dirty[i];
		struct pl_scope sc = {
			.netns = x->netns, .all = x->all,
			.names = (const char (*)[IF_NAMESIZE])x->names, .nnames = x->n,
			.ifindexes = x->idx, .nifindexes = x->n,
		};

		if (reconcile(d, d->c, &sc, NULL, NULL) == -EBUSY) {
			d->full = true;
			arm_retry(d);
		}
	}
	dirty_clear(d);
}

/* Whether every exporter running has read the counters since @pe went. */
static bool read_since(const struct daemon *d, const struct pending *pe)
{
	return (!d->prom || atomic_load(&d->scraped) > pe->scrapes) &&
	       (!d->ipfix || d->rounds > pe->rounds);
}

/* Gone interfaces whose pins every exporter has read since: remove them now. */
static void release_pending(struct daemon *d)
{
	struct pl_attachment *a = NULL;
	struct pl_plan p = { 0 };
	char why[PL_WHY_LEN];
	size_t na = 0;
	int lock;

	for (size_t i = 0; i < d->npend; i++)
		if (read_since(d, &d->pend[i]))
			goto due;
	return;
due:
	lock = pl_change_lock(LOCK_WAIT_MS, why, sizeof(why));
	if (lock < 0)
		return;
	if (pl_attachments(0, &a, &na))
		na = 0;
	for (size_t i = 0; i < d->npend;) {
		const struct pending *pe = &d->pend[i];
		__u32 on = 0;

		if (!read_since(d, pe)) {
			i++;
			continue;
		}
		/*
		 * a gone namespace's too, once set aside (<inode>:<cookie>) by an
		 * attach in a new namespace that got its inode: told apart from
		 * the new one's same name by its namespace's cookie, or where that
		 * is not known by its links, which hold no device (clsact has none:
		 * the new namespace's attachment went with it)
		 */
		for (size_t k = 0; k < na; k++) {
			uint64_t ck = pl_att_cookie(&a[k]);

			if (a[k].netns == pe->netns && !strcmp(a[k].ifname, pe->ifname) &&
			    pl_plan_manages(d->c, &a[k]) &&
			    (pe->cookie && ck ? ck == pe->cookie :
			     pl_attachment_link_ifindex(&a[k], &on) || !on))
				pl_plan_remove_step(&p, &a[k], "interface gone");
		}
		d->pend[i] = d->pend[--d->npend];
	}
	pl_plan_run(&p, d->c, &d->ns, 0, NULL, NULL);
	close(lock);
	pl_plan_free(&p);
	free(a);
	malloc_trim(0);
}

static void on_link(const struct pl_link_event *ev, void *ctx)
{
	struct dirty *x = ctx;

	if (!x || x->all)
		return;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		char (*n)[IF_NAMESIZE] = realloc(x->names, cap * sizeof(*n));
		int *idx = n ? realloc(x->idx, cap * sizeof(*idx)) : NULL;

		if (n)
			x->names = n;
		if (!idx) {
			x->all = true;	/* cannot say which: look at all of them */
			return;
		}
		x->idx = idx;
		x->cap = cap;
	}
	snprintf(x->names[x->n], IF_NAMESIZE, "%s", ev->ifname);
	x->idx[x->n++] = ev->ifindex;
}

/* ---- triggers: a `pktlens sample --when ... --rearm` each ---- */

#define TRIG_RESTART_S 5.0	/* a trigger's sampler that ended is started again after this */
#define TRIG_STOP_MS 5000	/* at stop, SIGKILL what SIGTERM did not end in this time */

static void trigger_spawn(struct daemon *d, size_t i)
{
	const struct pl_cfg_trigger *t = &d->c->trig[i];
	bool in_ns = t->netns && strcmp(t->netns, PL_NETNS_ROOT);
	char fors[16], keep[16], snap[16];
	const char *argv[24];
	pid_t pid, parent = getpid();
	sigset_t none;
	size_t n = 0;
	int err;

	snprintf(fors, sizeof(fors), "%u", t->for_secs);
	snprintf(keep, sizeof(keep), "%u", t->keep);
	snprintf(snap, sizeof(snap), "%u", t->snaplen);
	argv[n++] = "pktlens";
	if (in_ns) {
		argv[n++] = "-n";
		argv[n++] = t->netns;
	}
	argv[n++] = "sample";
	argv[n++] = t->dev;
	argv[n++] = "--when";
	argv[n++] = t->when;
	argv[n++] = "--for";
	argv[n++] = fors;
	argv[n++] = "--rearm";
	argv[n++] = "-w";
	argv[n++] = t->write;
	if (t->keep) {
		argv[n++] = "-W";
		argv[n++] = keep;
	}
	if (t->snaplen) {
		argv[n++] = "-s";
		argv[n++] = snap;
	}
	if (t->filter)
		argv[n++] = t->filter;
	argv[n] = NULL;
	/* the daemon blocks its signals for the signalfd: the sampler must get them */
	sigemptyset(&none);
	pid = fork();
	if (!pid) {
		static const int dfl[] = { SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD };
		struct sigaction sa = { .sa_handler = SIG_DFL };

		/* it ends with the daemon, even one killed with -9 (a restart starts its own) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		for (size_t k = 0; k < sizeof(dfl) / sizeof(dfl[0]); k++)
			sigaction(dfl[k], &sa, NULL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	err = pid < 0 ? errno : 0;
	if (err) {
		dlog(d, LOG_ERR, "trigger %s:%d (%s, '%s'): cannot start pktlens sample: %s",
		     d->c->path, t->line, t->dev, t->when, strerror(err));
		d->trestart[i] = now_s() + TRIG_RESTART_S;
		return;
	}
	d->tpid[i] = pid;
	dlog(d, LOG_INFO, "trigger %s:%d: %s%s%s: waiting for '%s', then capturing %u s into %s "
	     "(pktlens sample, pid %d)", d->c->path, t->line, in_ns ? t->netns : "",
	     in_ns ? "/" : "", t->dev, t->when, t->for_secs, t->write, (int)pid);
}

/*
 * Reap the samplers that ended (SIGCHLD), start again those whose time has
 * come, and set the clock for the next one due: no clock while all run.
 */
static void triggers_check(struct daemon *d)
{
	struct itimerspec at = { 0 };
	double next = 0;

	for (size_t i = 0; i < d->ntrig; i++) {
		int status;

		if (d->tpid[i] > 0 && waitpid(d->tpid[i], &status, WNOHANG) == d->tpid[i]) {
			const struct pl_cfg_trigger *t = &d->c->trig[i];

			dlog(d, LOG_WARNING, "trigger %s:%d: %s: pktlens sample (pid %d) ended (%s %d): "
			     "starting it again in %.0f s", d->c->path, t->line, t->dev,
			     (int)d->tpid[i], WIFEXITED(status) ? "exit" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     TRIG_RESTART_S);
			d->tpid[i] = 0;
			d->trestart[i] = now_s() + TRIG_RESTART_S;
		}
		if (!d->tpid[i] && now_s() >= d->trestart[i])
			trigger_spawn(d, i);
		if (!d->tpid[i] && (!next || d->trestart[i] < next))
			next = d->trestart[i];
	}
	if (next) {
		double in = next - now_s() > 0.001 ? next - now_s() : 0.001;

		at.it_value.tv_sec = (time_t)in;
		at.it_value.tv_nsec = (long)((in - (double)(time_t)in) * 1e9);
	}
	timerfd_settime(d->trigfd, 0, &at, NULL);
}

static void triggers_stop(struct daemon *d)
{
	double until = now_s() + TRIG_STOP_MS / 1000.0;
	bool left = true;

	for (size_t i = 0; i < d->ntrig; i++)
		if (d->tpid[i] > 0)
			kill(d->tpid[i], SIGTERM);
	while (left) {
		left = false;
		for (size_t i = 0; i < d->ntrig; i++) {
			if (d->tpid[i] <= 0)
				continue;
			if (waitpid(d->tpid[i], NULL, WNOHANG) == d->tpid[i]) {
				d->tpid[i] = 0;
				continue;
			}
			if (now_s() >= until) {
				kill(d->tpid[i], SIGKILL);
				waitpid(d->tpid[i], NULL, 0);
				d->tpid[i] = 0;
				continue;
			}
			left = true;
		}
		if (left)
			usleep(20000);
	}
	free(d->tpid);
	free(d->trestart);
	d->tpid = NULL;
	d->trestart = NULL;
	d->ntrig = 0;
}

/* (Re)start the samplers of @d->c's triggers (SIGCHLD tells when one ends). */
static int triggers_start(struct daemon *d)
{
	d->ntrig = d->c->ntrig;
	if (!d->ntrig)
		return timerfd_settime(d->trigfd, 0, &(struct itimerspec){ 0 }, NULL) ? -errno : 0;
	d->tpid = calloc(d->ntrig, sizeof(*d->tpid));
	d->trestart = calloc(d->ntrig, sizeof(*d->trestart));
	if (!d->tpid || !d->trestart) {
		free(d->tpid);
		free(d->trestart);
		d->tpid = NULL;
		d->trestart = NULL;
		d->ntrig = 0;
		return -ENOMEM;
	}
	triggers_check(d);
	return 0;
}

/* ---- reload and stop ---- */

/* Whether @a and @b trigger the same captures (their lines in the file may differ). */
static bool same_triggers(const struct pl_config *a, const struct pl_config *b)
{
	if (a->ntrig != b->ntrig)
		return false;
	for (size_t i = 0; i < a->ntrig; i++) {
		const struct pl_cfg_trigger *x = &a->trig[i], *y = &b->trig[i];

		if (!same_str(x->dev, y->dev) || !same_str(x->netns, y->netns) ||
		    !same_str(x->when, y->when) || !same_str(x->write, y->write) ||
		    !same_str(x->filter, y->filter) || x->for_secs != y->for_secs ||
		    x->keep != y->keep || x->snaplen != y->snaplen)
			return false;
	}
	return true;
}

/*
 * One daemon per config (its owner, the name attachments record): a second
 * would attach, export and sample everything twice, and its stop detach what
 * the first still manages. An flock() on /run/pktlens/daemon-HASH.lock, held
 * for the daemon's life (the kernel lets it go with the process, even on
 * kill -9); the file names the holder's pid. The fd, or -1 with @why.
 */
static int instance_lock(const char *owner, char *why, size_t whylen)
{
	char path[64], held[24] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PL_IPFIX_STATE_DIR "/daemon-%016" PRIx64 ".lock",
		 pl_str_hash(owner));
	if (mkdir(PL_IPFIX_STATE_DIR, 0700) && errno != EEXIST) {
		snprintf(why, whylen, "cannot make %s: %s", PL_IPFIX_STATE_DIR, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK) {
			snprintf(why, whylen, "cannot lock %s: %s", path, strerror(errno));
		} else {
			n = pread(fd, held, sizeof(held) - 1, 0);
			held[n > 0 ? n : 0] = '\0';
			held[strcspn(held, "\n")] = '\0';
			snprintf(why, whylen, "another pktlens daemon (pid %s) runs the config '%s' "
				 "(it holds %s)", held[0] ? held : "unknown", owner, path);
		}
		close(fd);
		return -1;
	}
	n = snprintf(held, sizeof(held), "%d\n", (int)getpid());
	if (!ftruncate(fd, 0))
		(void)!pwrite(fd, held, (size_t)n, 0);	/* the lock counts; the pid helps the message */
	return fd;
}

/* "N added, N changed, N removed, N unchanged[, N failed (logged above)]": what @p did */
static const char *plan_counts(const struct pl_plan *p, char *buf, size_t len)
{
	size_t failed = pl_plan_failed(p);
	int n;

	n = snprintf(buf, len, "%zu added, %zu changed, %zu removed, %zu unchanged",
		     pl_plan_count_ok(p, PL_STEP_ADD),
		     pl_plan_count_ok(p, PL_STEP_CHANGE) + pl_plan_count_ok(p, PL_STEP_ADOPT),
		     pl_plan_count_ok(p, PL_STEP_REMOVE), p->unchanged);
	if (failed && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", %zu failed (logged above)", failed);
	return buf;
}

/* The config's entries that never apply (the first entry that matches decides): said once. */
static void shadow_warn(struct daemon *d)
{
	char line[PL_WHY_LEN * 2];

	for (size_t j = 0; j < d->c->n; j++)
		if (pl_config_shadow_line(d->c, j, line, sizeof(line)))
			dlog(d, LOG_WARNING, "warning: %s", line);
}

static void reload(struct daemon *d)
{
	struct pl_config *c = NULL, *old = d->c;
	char why[PL_WHY_LEN * 8], counts[160];
	int err, lockfd = -1;
	struct pl_plan p;

	sd_notify(0, "RELOADING=1");
	err = pl_config_load(d->path, &c, why, sizeof(why));
	/* a config renamed: another daemon may run it already */
	if (!err && strcmp(c->owner, old->owner) && (lockfd = instance_lock(c->owner, why,
									     sizeof(why))) < 0) {
		pl_config_free(c);
		err = -EBUSY;
	}
	if (err) {
		dlog(d, LOG_ERR, "reload: %s; still running the previous config", why);
		sd_notify(0, "READY=1\nSTATUS=reload failed: the previous config runs");
		return;
	}
	d->c = c;
	shadow_warn(d);
	namespaces(d);
	err = reconcile(d, c, NULL, &p, NULL);
	d->full = false;
	if (err) {
		/* the plan failed before any change: back to the old config, as it was */
		d->c = old;
		namespaces(d);
		d->full = false;
		pl_config_free(c);
		if (lockfd >= 0)
			close(lockfd);
		dlog(d, LOG_ERR, "reload: %s: not applied; still running the previous config",
		     d->path);
		sd_notify(0, "READY=1\nSTATUS=reload failed: the previous config runs");
		return;
	}
	exporters(d, c);
	/* a capture in progress goes on when its trigger did not change */
	if (!same_triggers(old, c)) {
		triggers_stop(d);
		triggers_start(d);
	}
	dlog(d, LOG_INFO, "reloaded %s: %s", d->path, plan_counts(&p, counts, sizeof(counts)));
	pl_plan_free(&p);
	pl_config_free(old);
	if (lockfd >= 0) {
		close(d->lockfd);
		d->lockfd = lockfd;
	}
	sd_notifyf(0, "READY=1\nSTATUS=running %s", d->path);
}

static void stop(struct daemon *d)
{
	size_t detached = SIZE_MAX;	/* the reconcile failed (said) */

	sd_notify(0, "STOPPING=1");
	triggers_stop(d);
	if (d->c->detach_on_stop) {
		/* the same owner, nothing wanted: everything this config manages goes */
		struct pl_config none = { .path = d->c->path };
		struct pl_plan p;

		snprintf(none.owner, sizeof(none.owner), "%s", d->c->owner);
		snprintf(none.file, sizeof(none.file), "%s", d->c->file);
		d->npend = 0;
		/* their flows go to the log of removed flows, which our exporter still reads */
		if (!reconcile(d, &none, NULL, &p, "the daemon stops (on-stop: detach)")) {
			detached = pl_plan_count_ok(&p, PL_STEP_REMOVE);
			pl_plan_free(&p);
		}
	}
	/*
	 * a last export, as `export ipfix` ends: after the detach, so that what
	 * the hooks counted until they came off reaches the collector
	 */
	if (d->ipfix) {
		ipfix_round(d);
		ipfix_keep(d);
	}
	/* gone interfaces' pins that last round read: no pin left for an export that never comes */
	if (d->npend)
		release_pending(d);
	if (!d->c->detach_on_stop)
		dlog(d, LOG_INFO, "stopped: attachments left in place, counting (on-stop: keep)");
	else if (detached != SIZE_MAX)
		dlog(d, LOG_INFO, "stopped: detached %zu attachment%s (on-stop: detach)", detached,
		     detached == 1 ? "" : "s");
}

/* ---- the loop ---- */

static int setup(struct daemon *d)
{
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);	/* a trigger's sampler ended */
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->scrapefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->ipfixfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->retryfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->trigfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->inofd = pl_netns_watch_open();
	if (d->ep < 0 || d->sigfd < 0 || d->scrapefd < 0 || d->ipfixfd < 0 || d->retryfd < 0 ||
	    d->trigfd < 0)
		return -errno;
	if (d->inofd < 0)
		return d->inofd;
	err = watch_fd(d, d->sigfd, &tag_sig);
	err = err ?: watch_fd(d, d->inofd, &tag_ino);
	err = err ?: watch_fd(d, d->scrapefd, &tag_scrape);
	err = err ?: watch_fd(d, d->ipfixfd, &tag_ipfix);
	err = err ?: watch_fd(d, d->retryfd, &tag_retry);
	err = err ?: watch_fd(d, d->trigfd, &tag_trig);
	return err;
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

static void wakeup(struct daemon *d, void *tag)
{
	if (tag == &tag_sig) {
		struct signalfd_siginfo si;

		bool child = false;

		while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				reload(d);
			else if (si.ssi_signo == SIGCHLD)
				child = true;
			else
				d->stop = true;
		}
		if (child && !d->stop)
			triggers_check(d);
	} else if (tag == &tag_ino) {
		/* each change gets its own 5 s for a name to be mounted, whatever came before */
		if (pl_netns_watch_read(d->inofd)) {
			d->ns_retries = 0;
			namespaces(d);
		}
	} else if (tag == &tag_retry) {
		drain(d->retryfd);
		namespaces(d);
	} else if (tag == &tag_trig) {
		drain(d->trigfd);
		triggers_check(d);
	} else if (tag == &tag_scrape) {
		drain(d->scrapefd);
		d->reap = true;
	} else if (tag == &tag_ipfix) {
		drain(d->ipfixfd);
		if (d->ipfix)
			ipfix_round(d);
		d->reap = true;
	} else if (tag == &tag_sampler) {
		d->reap |= samplers_ended(d);
	} else {
		struct pl_linkmon *m = tag;
		struct dirty *x;
		bool lost = false, live = false;

		/* a reload or a namespace gone earlier in this wakeup may have closed it */
		for (size_t i = 0; i < d->nmons && !live; i++)
			live = d->mons[i] == m;
		if (!live)
			return;
		x = dirty_ns(d, pl_linkmon_netns(m));
		if (pl_linkmon_read(m, on_link, x, &lost) || lost || !x) {
			if (x)
				x->all = true;
			else
				d->full = true;
		}
	}
}

int pl_daemon_run(const char *path, bool json)
{
	struct daemon d = { .path = path, .json = json, .ep = -1, .sigfd = -1, .inofd = -1, .scrapefd = -1,
			    .ipfixfd = -1, .retryfd = -1, .trigfd = -1, .lockfd = -1 };
	char why[PL_WHY_LEN * 8], counts[160];
	struct pl_plan p;
	int err, ret = 1;

	d.journal = stderr_is_journal();
	d.ns.root_fd = -1;
	err = pl_config_load(path, &d.c, why, sizeof(why));
	if (err) {
		dlog(&d, LOG_ERR, "%s", why);
		return err == -ENOMEM ? 1 : 2;
	}
	d.lockfd = instance_lock(d.c->owner, why, sizeof(why));
	if (d.lockfd < 0) {
		dlog(&d, LOG_ERR, "not started: %s", why);
		pl_config_free(d.c);
		return 1;
	}
	shadow_warn(&d);
	err = pl_nsset_init(&d.ns, why, sizeof(why));
	if (err) {
		dlog(&d, LOG_ERR, "%s", why);
		goto out;
	}
	err = setup(&d);
	if (err) {
		dlog(&d, LOG_ERR, "cannot set up its event loop: %s", strerror(-err));
		goto out;
	}
	/* the exporters before any change: one that cannot start (a port in use, a collector
	 * that does not resolve) ends the daemon with nothing attached, adopted or removed */
	if (exporters(&d, d.c)) {
		dlog(&d, LOG_ERR, "not started: %s: nothing changed", path);
		goto out;
	}
	/* watch first, then look: nothing that happens in between is missed (namespaces() opens
	 * the monitors of the namespaces it finds) */
	namespaces(&d);
	err = reconcile(&d, d.c, NULL, &p, NULL);
	if (err == -EINVAL) {
		ret = 2;
		goto out;
	}
	if (err)
		goto out;
	d.full = false;
	if ((err = triggers_start(&d))) {
		dlog(&d, LOG_ERR, "cannot start the triggers: %s", strerror(-err));
		goto out;
	}
	dlog(&d, LOG_INFO, "ready: %s (%s): %s; %zu network namespace%s", path, d.c->owner,
	     plan_counts(&p, counts, sizeof(counts)), d.ns.n, d.ns.n == 1 ? "" : "s");
	pl_plan_free(&p);
	d.json = false;		/* running: its errors are log lines */
	sd_notifyf(0, "READY=1\nSTATUS=running %s\nMAINPID=%d", path, (int)getpid());
	d.reap = true;		/* a sampler killed while no daemon ran */

	while (!d.stop) {
		struct epoll_event ev[32];
		int n = epoll_wait(d.ep, ev, 32, -1);

		if (n < 0 && errno != EINTR) {
			dlog(&d, LOG_ERR, "epoll: %s", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n && !d.stop; i++)
			wakeup(&d, ev[i].data.ptr);
		if (d.stop)
			break;
		if (d.full || d.ndirty) {
			reconcile_dirty(&d);
			d.reap_soft = true;
		}
		if (d.npend)
			release_pending(&d);
		if (d.reap || (d.reap_soft && now_s() - d.reaped_at >= 1.0)) {
			d.reap = d.reap_soft = false;
			reap_samplers(&d);
			d.reaped_at = now_s();
		}
	}
	stop(&d);
	ret = 0;
out:
	triggers_stop(&d);	/* nothing left running, whatever went wrong */
	pl_prom_serve_stop(d.prom);
	free(d.prom_at);
	free(d.ipfix_to);
	pl_ipfix_close(d.ipfix);
	for (size_t i = 0; i < d.nmons; i++)
		pl_linkmon_close(d.mons[i]);
	for (size_t i = 0; i < d.nsp; i++)
		close(d.spfd[i]);
	free(d.spfd);
	free(d.spid);
	free(d.mons);
	dirty_clear(&d);
	free(d.pend);
	pl_nsset_free(&d.ns);
	pl_config_free(d.c);
	{
		int fds[] = { d.ep, d.sigfd, d.inofd, d.scrapefd, d.ipfixfd, d.retryfd, d.trigfd,
			      d.lockfd };

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return ret;
}
