// SPDX-License-Identifier: GPL-2.0
/* Run a plan (service/plan.h): each step in its namespace; new attachments by worker processes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <pktlens/array.h>
#include <pktlens/why.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "plan.h"
#include "../cli/policy_rule.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../loader/features.h"
#include "../loader/xdp_multi.h"

/* ---- running it ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Enter the namespace of @st: a covered one, else a named one found again; -1: stay. */
static int enter_for(const struct pl_step *st, const struct pl_nsset *s)
{
	const struct pl_ns *ns = pl_nsset_find(s, st->netns);
	char path[512];
	int fd, err;

	if (ns)
		return pl_ns_enter(ns);
	if (!st->nsname[0])
		return -ENOENT;
	snprintf(path, sizeof(path), PL_NETNS_DIR "/%s", st->nsname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

/* @state (opened before the detach, the maps held by it) read into @st's message; closed */
static void final_totals(struct pl_step *st, struct pl_state *state)
{
	struct pl_stats s[PL_SLOT_MAX];
	char totals[sizeof(st->msg) - 32];

	if (!pl_state_stats(state, s) && pl_fmt_totals(&st->att.meta, s, totals, sizeof(totals))[0])
		snprintf(st->msg, sizeof(st->msg), "final totals: %s", totals);
	pl_state_close(state);
}

static int run_remove(struct pl_step *st, const struct pl_nsset *s, unsigned flags)
{
	struct pl_attachment att = st->att;
	char why[PL_WHY_LEN * 2];
	struct pl_state state;
	bool disp, opened;
	int err;

	/* held open across the detach: the totals are read once the hooks are off (cli detach) */
	err = pl_state_open(st->att.dir, &state);
	opened = !err;
	/* counters that are there but cannot be read now are never removed (cli detach) */
	if (pl_starved(err)) {
		snprintf(st->msg, sizeof(st->msg), "cannot read its counters: %s: not removed (the "
			 "final totals would be lost)", strerror(-err));
		return err;
	}
	if (st->gone && !st->clear_way && !st->moved && (flags & PL_RUN_KEEP_GONE)) {
		if (opened)
			final_totals(st, &state);
		st->kept = true;
		return 0;
	}
	/*
	 * clsact filters and a program in libxdp's dispatcher die with their
	 * interface; elsewhere they are removed in their namespace. A
	 * dispatcher goes along with an interface moved to another namespace
	 * and runs on there: pl_detach() takes the program out where it runs.
	 */
	disp = att.meta.xdp_mode != PL_XDP_NONE && pl_xdp_prog_ext(att.meta.xdp_prog_id);
	if ((att.meta.tc_mech == PL_TC_CLSACT || disp) && (st->gone || enter_for(st, s))) {
		att.meta.tc_mech = att.meta.tc_mech == PL_TC_CLSACT ? PL_TC_NONE : att.meta.tc_mech;
		if (st->gone && !st->moved)
			att.meta.xdp_mode = PL_XDP_NONE;
	}
	/*
	 * Out of its place first, in one step, as a temporary directory of
	 * ours: killed from here on, the next apply's attach removes what is
	 * left (pl_pins_gc()), and no half attachment is ever seen.
	 */
	{
		const char *slash = strrchr(att.dir, '/');
		char aside[sizeof(att.dir)];

		if (slash && snprintf(aside, sizeof(aside), "%.*s/" PL_PIN_TMP_PREFIX "%s:%d",
				      (int)(slash - att.dir), att.dir, att.ifname, (int)getpid()) <
			     (int)sizeof(aside) && !rename(att.dir, aside))
			snprintf(att.dir, sizeof(att.dir), "%s", aside);
	}
	err = pl_detach(&att, why, sizeof(why));
	if (opened)
		final_totals(st, &state);
	if (err)
		snprintf(st->msg, sizeof(st->msg), "%s", why);
	return err;
}

static void attach_opts(const struct pl_step *st, const struct pl_config *c, bool reattach,
			struct pl_attach_opts *o)
{
	const struct pl_settings *w = &st->want;

	*o = (struct pl_attach_opts){
		.ifname = st->ifname, .xdp_mode = w->xdp_mode, .tc_hooks = w->tc_hooks,
		.tc_mech = w->tc_hooks ? w->tc_mech : -1, .flows_max = w->flows,
		.xdp_prio_set = w->xdp_prio_set, .xdp_prio = w->xdp_prio,
		.tcp_passive = w->tcp_passive, .tcp_ts_max = w->tcp_ts_max,
		.reattach = reattach, .down_ok = true, .probes = w->probes, .owner = c->owner,
		.owner_file = c->file[0] ? c->file : NULL,
		.set_filter = true, .filter = w->filter, .set_rules = true, .rules = w->rules,
		.nrules = w->nrules, .texts = w->texts, .ntexts = w->ntexts,
	};
}

/*
 * The step of @p yet to run whose pins are under @st's new name, to move
 * elsewhere themselves (interfaces that traded names, a chain of renames):
 * NULL if none.
 */
static struct pl_step *renamed_away(struct pl_plan *p, const struct pl_step *st)
{
	for (size_t i = 0; i < p->n; i++) {
		struct pl_step *o = p->s[i];

		if (o != st && !o->ran && (o->kind == PL_STEP_CHANGE || o->kind == PL_STEP_ADOPT) &&
		    (o->what & PL_CH_RENAME) && o->netns == st->netns &&
		    !strcmp(o->att.ifname, st->ifname) && strcmp(o->ifname, st->ifname))
			return o;
	}
	return NULL;
}

/*
 * Move @st's pins to its interface's new name. Where another step's pins
 * are there, still to move, the two exchange places in one step: that one
 * finds its pins under @st's old name (at its own new name when they
 * traded names).
 */
static int run_rename(struct pl_plan *p, struct pl_step *st, char *why, size_t whylen)
{
	struct pl_step *o;
	int err;

	if (!strcmp(st->att.ifname, st->ifname))
		return 0;	/* an exchange of another step put them in place */
	o = renamed_away(p, st);
	if (!o)
		return pl_attachment_rename(&st->att, st->ifname, why, whylen);
	err = pl_attachment_swap(&st->att, &o->att, why, whylen);
	if (err)
		return err;
	snprintf(o->att.dir, sizeof(o->att.dir), "%s", st->att.dir);
	snprintf(o->att.ifname, sizeof(o->att.ifname), "%s", st->att.ifname);
	return 0;
}

/* "note: WHAT" added to @st's message, after "; " when it has one already */
__attribute__((format(printf, 2, 3)))
static void add_note(struct pl_step *st, const char *fmt, ...)
{
	size_t n = strlen(st->msg);
	va_list ap;

	n += (size_t)snprintf(st->msg + n, sizeof(st->msg) - n, "%snote: ", n ? "; " : "");
	if (n >= sizeof(st->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(st->msg + n, sizeof(st->msg) - n, fmt, ap);
	va_end(ap);
}

/*
 * The notes `attach` gives: XDP attached alone where the config asked for libxdp's
 * dispatcher (the kernel refuses it), native XDP without multi-buffer, and the
 * namespace's outstanding-timestamp map keeping the size its first analysing attach gave it.
 */
static void attach_notes(struct pl_step *st, const struct pl_attach_opts *o,
			 const struct pl_attach_info *info)
{
	st->msg[0] = '\0';
	if (info->disp_note && o->xdp_prio_set)
		add_note(st, "%s", info->disp_note);
	if (info->xdp_note)
		add_note(st, "%s", info->xdp_note);
	if (o->tcp_passive && info->tcp_ts_max != info->meta.tcp_ts_max)
		add_note(st, "the namespace's outstanding-timestamp map was sized by its first "
			 "analysing attach: %u, not tcp-ts-max %u (detach every tcp-passive "
			 "attachment of the namespace to size it again)", info->tcp_ts_max,
			 info->meta.tcp_ts_max);
}

static int run_change(struct pl_plan *p, struct pl_step *st, const struct pl_config *c)
{
	struct pl_attach_opts o;
	struct pl_attach_info info;
	char why[PL_WHY_LEN * 8], dir[512];
	int err = 0;

	snprintf(dir, sizeof(dir), "%s", st->att.dir);
	if (st->what & PL_CH_RENAME) {
		err = run_rename(p, st, why, sizeof(why));
		if (err)
			goto out;
		pl_pin_dir(dir, sizeof(dir), st->netns, st->ifname);
	}
	if ((st->what & PL_CH_REATTACH) || ((st->what & PL_CH_FILTER) && (st->what & PL_CH_RULES))) {
		/* one step: the new attachment takes the old one's place with everything */
		attach_opts(st, c, true, &o);
		o.ifindex = st->ifindex;	/* the interface planned for, not a new one of its name */
		err = pl_attach(&o, &info, why, sizeof(why));
		if (!err)
			attach_notes(st, &o, &info);
		goto out;
	}
	if (st->what & PL_CH_FILTER) {
		struct pl_chain ch;

		err = pl_chain_open(dir, &ch);
		if (err)
			snprintf(why, sizeof(why), "cannot open its pins: %s", strerror(-err));
		else
			err = st->want.filter ? pl_chain_set(&ch, st->want.filter, why, sizeof(why)) :
			      pl_chain_clear(&ch, why, sizeof(why));
		pl_chain_close(&ch);
	}
	if (!err && (st->what & PL_CH_RULES)) {
		struct pl_policy pol;

		err = pl_policy_open(dir, &pol);
		if (err)
			snprintf(why, sizeof(why), "cannot open its rule maps: %s", strerror(-err));
		else
			err = pl_policy_commit(&pol, st->want.rules, st->want.nrules, st->want.texts,
					       st->want.ntexts, why, sizeof(why));
		pl_policy_close(&pol);
	}
	/* last: an attachment is this config's once it is as the config says */
	if (!err && (st->what & PL_CH_OWNER))
		err = pl_meta_set_owner(dir, c->owner, c->file, why, sizeof(why));
out:
	if (err)
		snprintf(st->msg, sizeof(st->msg), "%s", why);
	return err;
}

static int run_add(struct pl_step *st, const struct pl_config *c)
{
	struct pl_attach_opts o;
	struct pl_attach_info info;
	char why[PL_WHY_LEN * 8];
	int err;

	attach_opts(st, c, st->replace, &o);
	err = pl_attach(&o, &info, why, sizeof(why));
	if (err)
		snprintf(st->msg, sizeof(st->msg), "%s", why);
	else
		attach_notes(st, &o, &info);
	return err;
}

/* One step of @p, in its namespace; 0 or -errno, the result in @st. */
static int run_step(struct pl_plan *p, struct pl_step *st, const struct pl_config *c,
		    const struct pl_nsset *s, unsigned flags)
{
	double t0 = now_s();
	int err = 0;

	if (st->kind != PL_STEP_REMOVE || pl_nsset_find(s, st->netns))
		err = enter_for(st, s);
	if (err)
		snprintf(st->msg, sizeof(st->msg), "cannot enter network namespace %s: %s",
			 st->nsname[0] ? st->nsname : "root", strerror(-err));
	else if (st->kind == PL_STEP_REMOVE)
		err = run_remove(st, s, flags);
	else if (st->kind == PL_STEP_ADD)
		err = run_add(st, c);
	else
		err = run_change(p, st, c);
	pl_ns_leave(s);
	st->ran = !st->kept;
	st->ok = !err;
	st->secs = now_s() - t0;
	return err;
}

/*
 * Attaching is mostly the verifier's work, one CPU per program load: new
 * attachments (independent of each other, each made in one step) are made
 * by up to one worker process per CPU. They share the change lock (the
 * same open file), take step numbers from one pipe and send results back on
 * another, in records shorter than PIPE_BUF (written whole); they die with
 * their parent.
 */
#define WORKERS_MAX 4

struct result {
	__u32 idx;
	__u8 ok, ran, kept;
	double secs;
	char msg[sizeof(((struct pl_step *)0)->msg)];
};
_Static_assert(sizeof(struct result) <= PIPE_BUF, "results are written in one piece");

static void worker(struct pl_plan *p, const struct pl_config *c, const struct pl_nsset *s,
		   unsigned flags, int work, int res, volatile int *stop, pid_t parent)
{
	__u32 idx;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	while (!*stop && read(work, &idx, sizeof(idx)) == sizeof(idx)) {
		struct pl_step *st = p->s[idx];
		struct result r = { .idx = idx };
		int err = run_step(p, st, c, s, flags);

		r.ok = st->ok, r.ran = st->ran, r.kept = st->kept, r.secs = st->secs;
		memcpy(r.msg, st->msg, sizeof(r.msg));
		if (write(res, &r, sizeof(r)) != sizeof(r))
			_exit(1);
		if (err && (flags & PL_RUN_STOP_ON_ERROR))
			*stop = 1;
	}
	_exit(0);
}

/* Steps @from.. (all ADD) by @nw workers; the number that failed, or -1 if no worker started. */
static long run_parallel(struct pl_plan *p, size_t from, int nw, const struct pl_config *c,
			 const struct pl_nsset *s, unsigned flags,
			 void (*done)(const struct pl_step *st, void *ctx), void *ctx)
{
	volatile int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int work[2] = { -1, -1 }, res[2] = { -1, -1 }, started = 0, status, died = 0;
	pid_t parent = getpid(), pids[WORKERS_MAX];
	bool *reported = calloc(p->n, sizeof(*reported));
	struct result r;
	long failed = 0;

	if (stop == MAP_FAILED || !reported) {
		if (stop != MAP_FAILED)
			munmap((void *)stop, sizeof(int));
		free(reported);
		return -1;
	}
	*stop = 0;
	if (pipe2(work, O_CLOEXEC) || pipe2(res, O_CLOEXEC))
		goto out;
	for (size_t i = from; i < p->n; i++) {
		__u32 idx = (__u32)i;

		if (write(work[1], &idx, sizeof(idx)) != sizeof(idx))
			goto out;
	}
	close(work[1]);
	work[1] = -1;
	fflush(NULL);
	for (int w = 0; w < nw; w++) {
		pids[started] = fork();
		if (pids[started] == 0) {
			close(res[0]);
			worker(p, c, s, flags, work[0], res[1], stop, parent);
		}
		if (pids[started] > 0)
			started++;
	}
	if (!started)
		goto out;
	close(res[1]);
	res[1] = -1;
	while (read(res[0], &r, sizeof(r)) == sizeof(r)) {
		struct pl_step *st;

		if (r.idx < from || r.idx >= p->n)
			continue;
		st = p->s[r.idx];
		reported[r.idx] = true;
		st->ok = r.ok, st->ran = r.ran, st->kept = r.kept, st->secs = r.secs;
		memcpy(st->msg, r.msg, sizeof(st->msg));
		failed += !st->ok;
		if (done)
			done(st, ctx);
	}
	for (int w = 0; w < started; w++)
		if (waitpid(pids[w], &status, 0) == pids[w] && !(WIFEXITED(status) && !WEXITSTATUS(status)))
			died = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
	/*
	 * A worker that died took the step it was running with it, unreported: that
	 * step failed (its attachment is old or new, as after any failed step). Steps
	 * no worker took after a stop on error were not run, as in order.
	 */
	for (size_t i = from; i < p->n && (died || !*stop); i++) {
		struct pl_step *st = p->s[i];

		if (reported[i])
			continue;
		st->ok = 0;
		st->ran = 0;
		if (died > 0)
			snprintf(st->msg, sizeof(st->msg), "its worker process was killed (%s) before "
				 "it reported: the attachment is as it was or as planned, see 'pktlens list'",
				 strsignal(died));
		else
			snprintf(st->msg, sizeof(st->msg), "its worker process ended before it reported: "
				 "the attachment is as it was or as planned, see 'pktlens list'");
		failed++;
		if (done)
			done(st, ctx);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (work[i] >= 0)
			close(work[i]);
		if (res[i] >= 0)
			close(res[i]);
	}
	munmap((void *)stop, sizeof(int));
	free(reported);
	return started ? failed : -1;
}

size_t pl_plan_run(struct pl_plan *p, const struct pl_config *c, const struct pl_nsset *s,
		   unsigned flags, void (*done)(const struct pl_step *st, void *ctx), void *ctx)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t failed = 0;

	for (size_t i = 0; i < p->n; i++) {
		struct pl_step *st = p->s[i];
		size_t left = p->n - i;

		if (failed && (flags & PL_RUN_STOP_ON_ERROR))
			break;
		/* the rest are additions (they come last): in parallel, if that helps */
		if (st->kind == PL_STEP_ADD && left > 1 && cpus > 1) {
			int nw = (int)(cpus < WORKERS_MAX ? cpus : WORKERS_MAX);
			long f = run_parallel(p, i, left < (size_t)nw ? (int)left : nw, c, s, flags,
					      done, ctx);

			if (f >= 0)
				return failed + (size_t)f;
		}
		failed += run_step(p, st, c, s, flags) != 0;
		if (done)
			done(st, ctx);
	}
	return failed;
}
