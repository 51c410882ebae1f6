// SPDX-License-Identifier: GPL-2.0
/*
 * Reconcile a config with the pins: the plan and its steps (service/plan.h).
 * Running the steps (in their namespaces, by worker processes) is in
 * service/plan_run.c.
 */
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

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "plan.h"
#include "../loader/xdp_multi.h"
#include "../cli/policy_rule.h"
#include "../export/format.h"
#include "../export/report.h"
#include "../loader/features.h"
#include "../loader/xdp_multi.h"

/* ---- building the plan ---- */

static struct pl_step *step_new(struct pl_plan *p, enum pl_step_kind kind, const struct pl_ns *ns,
				uint64_t netns)
{
	struct pl_step *st;

	struct pl_step **s = pl_grown(p->s, &p->cap, p->n, sizeof(*s), 16);

	if (!s)
		return NULL;
	p->s = s;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->kind = kind;
	st->netns = ns ? ns->ino : netns;
	if (ns)
		snprintf(st->nsname, sizeof(st->nsname), "%s", ns->name);
	p->s[p->n++] = st;
	return st;
}

static void step_free(struct pl_step *st)
{
	if (!st)
		return;
	free(st->have.rules);
	pl_policy_texts_free(st->have.texts, st->have.ntexts);
	free(st->want.texts);	/* the texts are st->rs's */
	pl_rule_list_free(&st->rs);
	free(st);
}

/* Drop the last step (it turned out to change nothing). */
static void step_drop(struct pl_plan *p)
{
	step_free(p->s[--p->n]);
}

static int note(struct pl_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int note(struct pl_plan *p, const char *fmt, ...)
{
	char **n = realloc(p->notes, (p->nnotes + 1) * sizeof(*n));
	va_list ap;
	int len;

	if (!n)
		return -ENOMEM;
	p->notes = n;
	va_start(ap, fmt);
	len = vasprintf(&n[p->nnotes], fmt, ap);
	va_end(ap);
	if (len < 0)
		return -ENOMEM;
	p->nnotes++;
	p->blocked++;
	return 0;
}

void pl_plan_free(struct pl_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		step_free(p->s[i]);
	for (size_t i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->notes);
	free(p->s);
	memset(p, 0, sizeof(*p));
}

int pl_plan_remove_step(struct pl_plan *p, const struct pl_attachment *a, const char *why)
{
	struct pl_step *st = step_new(p, PL_STEP_REMOVE, NULL, a->netns);

	if (!st)
		return -ENOMEM;
	st->att = *a;
	st->gone = true;
	st->why = why;
	snprintf(st->ifname, sizeof(st->ifname), "%s", a->ifname);
	snprintf(st->pinned, sizeof(st->pinned), "%s", a->ifname);
	return 0;
}

/* Whether @a records @c's name: its own, nothing to record. */
static bool named(const struct pl_attachment *a, const struct pl_config *c)
{
	return a->meta_ok && !strcmp(a->meta.managed_by, c->owner);
}

bool pl_plan_manages(const struct pl_config *c, const struct pl_attachment *a)
{
	return named(a, c) || (a->meta_ok && c->file[0] && !strcmp(a->meta.managed_file, c->file));
}

/* Whether @a is another config's, left to it (adopted only with PL_PLAN_TAKE_OVER). */
static bool others(const struct pl_config *c, const struct pl_attachment *a, unsigned flags)
{
	return a->meta_ok && a->meta.managed_by[0] && !pl_plan_manages(c, a) &&
	       !(flags & PL_PLAN_TAKE_OVER);
}

static int rule_id_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct pl_rule *)a)->id, y = ((const struct pl_rule *)b)->id;

	return x < y ? -1 : x > y;
}

/* What the pins of @st->att say. */
static int read_have(struct pl_step *st)
{
	const struct pl_meta *m = &st->att.meta;
	struct pl_settings *h = &st->have;
	struct pl_policy pol;
	int err;

	h->xdp_mode = (int)m->xdp_mode;
	h->tc_hooks = (int)m->tc_hooks;
	h->tc_mech = m->tc_hooks ? (int)m->tc_mech : PL_TC_NONE;
	h->flows = m->flows_max;
	h->xdp_prio_set = m->xdp_mode != PL_XDP_NONE &&
			  pl_xdp_disp_runs((int)m->ifindex, m->xdp_prog_id, &h->xdp_prio);
	/* a filter set killed half-way (PL_FILTER_SETTING): equal to no config's, so set again */
	h->filter = m->filter_set == PL_FILTER_SETTING ? "(being set)" : m->filter_set ? m->filter_expr :
		    NULL;
	h->probes = m->probes;
	h->tcp_passive = m->tcp_passive;
	h->tcp_ts_max = m->tcp_passive ? m->tcp_ts_max : 0;
	st->meta_have = *m;
	err = pl_policy_open(st->att.dir, &pol);
	if (err == -ENOENT || err == -EPROTO) {
		pl_policy_close(&pol);
		return 0;	/* an older attachment: no rules */
	}
	if (!err)
		err = pl_policy_rules(&pol, &h->rules, &h->nrules);
	if (!err)
		err = pl_policy_exprs(&pol, &h->texts, &h->ntexts);
	pl_policy_close(&pol);
	if (!err && h->nrules)
		pl_qsort(h->rules, h->nrules, sizeof(*h->rules), rule_id_cmp);
	return err;
}

static const char *text_of(const struct pl_settings *x, __u32 id)
{
	return pl_policy_text(x->texts, x->ntexts, id);
}

/*
 * Rules of @want the same in @have (id, words, expression): they keep their
 * counters; with @renumbered also those given another id for the listed
 * order (pl_rule_list_finish()), which keep them too.
 */
static size_t rules_kept(const struct pl_settings *want, const struct pl_settings *have,
			 bool renumbered)
{
	size_t kept = 0;

	for (size_t i = 0; i < want->nrules; i++) {
		const struct pl_rule *r = &want->rules[i];
		const struct pl_rule *o = pl_bsearch(r, have->rules, have->nrules, sizeof(*r),
						     rule_id_cmp);
		const char *a = text_of(want, r->id), *b = o ? text_of(have, r->id) : NULL;
		struct pl_rule x = *r, y;

		/* renumbered into the listed order, with the counter key of its running twin */
		if (renumbered && r->ctr && r->ctr != PL_RULE_CTR_NEW &&
		    (!o || o->ctr != r->ctr)) {
			kept++;
			continue;
		}
		if (!o)
			continue;
		/* the counter key is the loader's: a rule that keeps its id keeps it */
		y = *o;
		x.ctr = y.ctr = 0;
		if (!memcmp(&x, &y, sizeof(x)) && (a && b ? !strcmp(a, b) : a == b))
			kept++;
	}
	return kept;
}

/*
 * What the config wants of interface @li through entry @e: hooks as attach
 * would pick them, and the rules parsed here, in the interface's namespace
 * (--redirect looks names up), with ids that keep the counters of rules
 * already running (@have, may be NULL).
 */
static int resolve(const struct pl_config *c, const struct pl_cfg_entry *e,
		   const struct pl_link_info *li, struct pl_step *st, char *why, size_t whylen)
{
	struct pl_attach_opts o = { .xdp_mode = e->xdp_mode, .tc_hooks = e->tc_hooks,
				    .tc_mech = e->tc_mech };
	struct pl_settings *w = &st->want;
	int err = 0;

	pl_attach_hooks(&o, li, &w->xdp_mode, &w->tc_hooks, &w->tc_mech);
	w->flows = e->flows;
	w->xdp_prio_set = e->xdp_prio_set && w->xdp_mode != PL_XDP_NONE;
	w->xdp_prio = e->xdp_prio;
	w->filter = e->filter;
	w->probes = pl_config_probes(c, e);
	w->tcp_passive = e->tcp_passive;
	w->tcp_ts_max = e->tcp_passive ? e->tcp_ts_max : 0;
	st->rs.in_order = true;	/* first match wins in the order the config lists them */
	for (size_t i = 0; !err && i < e->nrules; i++) {
		char *line = strdup(e->rules[i].text);

		err = line ? pl_rule_list_add_line(&st->rs, line, e->rules[i].file, e->rules[i].line,
						 e->rules[i].col, why, whylen) : -ENOMEM;
		free(line);
	}
	/*
	 * A rule of a direction this interface gets no hook for would be
	 * refused by the commit, after earlier steps ran: an error of the
	 * plan, at the rule, as `policy add` refuses it (exit 2).
	 */
	for (size_t i = 0; !err && i < st->rs.n; i++) {
		const struct pl_rule_origin *src = &st->rs.orig[i];
		bool out = st->rs.rules[i].dir == PL_DIR_OUT;
		bool has = out ? (w->tc_hooks & PL_TC_OUT) :
				 (w->xdp_mode != PL_XDP_NONE || (w->tc_hooks & PL_TC_IN));

		if (!has) {
			snprintf(why, whylen, "%s:%d:%d: %s rule, but %s gets no %s hook (%s)", src->file,
				 src->line, src->col, out ? "an egress (--out)" : "an ingress",
				 li->ifname, out ? "egress" : "ingress",
				 out ? "tc: out or in,out" : "xdp: native or skb, or tc: in or in,out");
			err = -EINVAL;
		}
	}
	if (!err)
		err = pl_rule_list_finish(&st->rs, st->have.rules, st->have.nrules, &w->texts,
					&w->ntexts, why, whylen);
	if (err)
		return err;
	w->rules = st->rs.rules;
	w->nrules = st->rs.n;
	if (w->nrules)
		pl_qsort(w->rules, w->nrules, sizeof(*w->rules), rule_id_cmp);
	return 0;
}

/*
 * Whether @a is the attachment of interface @ifindex: indexes are not
 * reused in a namespace (they count up), so its recorded index says it,
 * whatever its links say (a killed re-attach can leave them detached).
 */
static bool alive_on(const struct pl_attachment *a, int ifindex)
{
	return a->meta_ok && (int)a->meta.ifindex == ifindex;
}

/*
 * Whether @a is the attachment of interface @li: alive_on() its index and,
 * under another name (a rename), its programs running there. An index comes
 * again in a namespace with an interface moved in from another one (it keeps
 * its index where that is free) or created with `ip link add ... index N`:
 * a deleted interface's pins are not a rename of that one.
 */
static bool att_of(const struct pl_attachment *a, const struct pl_link_info *li)
{
	return alive_on(a, li->ifindex) && (!strcmp(a->ifname, li->ifname) || pl_meta_live(&a->meta));
}

/*
 * Whether every hook @a records runs: its pinned XDP and tcx links on its
 * interface, or its XDP program in the interface's libxdp dispatcher.
 */
static bool hooks_live(const struct pl_attachment *a)
{
	static const char *const pins[3] = { PL_PIN_XDP_LINK, PL_PIN_TC_IN_LINK, PL_PIN_TC_OUT_LINK };
	bool want[3] = { a->meta.xdp_mode != PL_XDP_NONE,
			 a->meta.tc_mech == PL_TC_TCX && (a->meta.tc_hooks & PL_TC_IN),
			 a->meta.tc_mech == PL_TC_TCX && (a->meta.tc_hooks & PL_TC_OUT) };

	for (int i = 0; i < 3; i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		char path[600];
		int fd;
		bool ok;

		if (!want[i] || (!i && pl_xdp_disp_runs((int)a->meta.ifindex, a->meta.xdp_prog_id, NULL)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", a->dir, pins[i]);
		fd = bpf_obj_get(path);
		/* xdp.ifindex and tcx.ifindex share their place in the union */
		ok = fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) &&
		     info.xdp.ifindex == a->meta.ifindex;
		if (fd >= 0)
			close(fd);
		if (!ok)
			return false;
	}
	/* clsact holds no link: its filter, with the program recorded (tc filter del takes it) */
	for (int dir = PL_DIR_IN; a->meta.tc_mech == PL_TC_CLSACT && dir <= PL_DIR_OUT; dir++)
		if ((a->meta.tc_hooks & (1u << dir)) && !pl_meta_tc_live(&a->meta, dir))
			return false;
	return true;
}

static unsigned differences(const struct pl_step *st, const struct pl_config *c)
{
	const struct pl_settings *h = &st->have, *w = &st->want;
	unsigned what = 0;

	/* hooks that should run and do not (a re-attach killed half-way): attached again */
	if (h->xdp_mode != w->xdp_mode || h->tc_hooks != w->tc_hooks || h->tc_mech != w->tc_mech ||
	    !hooks_live(&st->att))
		what |= PL_CH_HOOKS;
	/* another place in the dispatcher: attached again there (where it runs in one) */
	if (w->xdp_prio_set && h->xdp_prio_set && h->xdp_prio != w->xdp_prio)
		what |= PL_CH_HOOKS;
	if (h->flows != w->flows)
		what |= PL_CH_FLOWS;
	/* passive TCP analysis is how the programs were loaded: attached again */
	if (h->tcp_passive != w->tcp_passive || h->tcp_ts_max != w->tcp_ts_max)
		what |= PL_CH_HOOKS;
	if (h->filter && w->filter ? strcmp(h->filter, w->filter) : h->filter != w->filter)
		what |= PL_CH_FILTER;
	if (rules_kept(w, h, false) != w->nrules || h->nrules != w->nrules)
		what |= PL_CH_RULES;
	if ((h->probes & (PL_PROBE_TCP | PL_PROBE_DROPS)) != (w->probes & (PL_PROBE_TCP | PL_PROBE_DROPS)))
		what |= PL_CH_PROBES;
	/* another config's, by hand, or this file's under its previous name: recorded anew */
	if (!named(&st->att, c))
		what |= PL_CH_OWNER;
	/* version 6 records no owner; 6 and 7 hold rules of the smaller pl_rule (8's are 9's) */
	if (st->att.meta.version < 8)
		what |= PL_CH_META;
	if (strcmp(st->att.ifname, st->ifname))
		what |= PL_CH_RENAME;
	return what;
}

static bool in_names(const struct pl_scope *sc, const char *name)
{
	for (size_t i = 0; i < sc->nnames; i++)
		if (!strcmp(sc->names[i], name))
			return true;
	return false;
}

static bool in_ifindexes(const struct pl_scope *sc, int ifindex)
{
	for (size_t i = 0; i < sc->nifindexes; i++)
		if (sc->ifindexes[i] == ifindex)
			return true;
	return false;
}

/*
 * A scope grows: the pins of a named interface may sit under its old name
 * (a rename), and a name's pins may belong to another index.
 */
struct scope_x {
	const struct pl_scope *sc;
	char (*names)[IF_NAMESIZE];
	size_t nnames;
	int *idx;
	size_t nidx;
};

static bool scoped_att(const struct scope_x *x, const struct pl_attachment *a)
{
	if (!x->sc)
		return true;
	if (a->ns_gone || a->netns != x->sc->netns)
		return false;
	if (x->sc->all)
		return true;
	for (size_t i = 0; i < x->nnames; i++)
		if (!strcmp(x->names[i], a->ifname))
			return true;
	for (size_t i = 0; a->meta_ok && i < x->nidx; i++)
		if (x->idx[i] == (int)a->meta.ifindex)
			return true;
	return false;
}

static bool scoped_link(const struct scope_x *x, const struct pl_link_info *li)
{
	if (!x->sc || x->sc->all)
		return true;
	for (size_t i = 0; i < x->nnames; i++)
		if (!strcmp(x->names[i], li->ifname))
			return true;
	for (size_t i = 0; i < x->nidx; i++)
		if (x->idx[i] == li->ifindex)
			return true;
	return false;
}

static int scope_expand(struct scope_x *x, const struct pl_attachment *a, size_t n)
{
	const struct pl_scope *sc = x->sc;

	x->names = calloc(sc->nnames + n + 1, sizeof(*x->names));
	x->idx = calloc(sc->nifindexes + n + 1, sizeof(*x->idx));
	if (!x->names || !x->idx)
		return -ENOMEM;
	memcpy(x->names, sc->names, sc->nnames * sizeof(*x->names));
	x->nnames = sc->nnames;
	memcpy(x->idx, sc->ifindexes, sc->nifindexes * sizeof(*x->idx));
	x->nidx = sc->nifindexes;
	for (size_t i = 0; i < n; i++) {
		if (a[i].ns_gone || a[i].netns != sc->netns || !a[i].meta_ok)
			continue;
		if (in_names(sc, a[i].ifname))
			x->idx[x->nidx++] = (int)a[i].meta.ifindex;
		if (in_ifindexes(sc, (int)a[i].meta.ifindex))
			snprintf(x->names[x->nnames++], IF_NAMESIZE, "%s", a[i].ifname);
	}
	return 0;
}

/* Add @name and @ifindex (0: none) to the scope where missing; whether it grew. */
static bool scope_add(struct scope_x *x, const char *name, int ifindex)
{
	bool grew = false;
	size_t i;

	for (i = 0; i < x->nnames && strcmp(x->names[i], name); i++)
		;
	if (i == x->nnames) {
		snprintf(x->names[x->nnames++], IF_NAMESIZE, "%s", name);
		grew = true;
	}
	for (i = 0; ifindex && i < x->nidx && x->idx[i] != ifindex; i++)
		;
	if (ifindex && i == x->nidx) {
		x->idx[x->nidx++] = ifindex;
		grew = true;
	}
	return grew;
}

/*
 * Then, with the namespace's interfaces, to all that renames tie to it: an
 * interface in it brings its name and index, an attachment its name and
 * recorded index, until nothing more comes (names traded in a cycle, whose
 * events come in parts: pins under a new name may belong to an interface
 * no event of this pass named). 0 or -ENOMEM.
 */
static int scope_close(struct scope_x *x, const struct pl_link_info *links, size_t nl,
		       const struct pl_attachment *a, size_t na)
{
	char (*names)[IF_NAMESIZE];
	bool grew = true;
	int *idx;

	if (!x->sc || x->sc->all)
		return 0;
	names = realloc(x->names, (x->sc->nnames + nl + na + 1) * sizeof(*names));
	if (names)
		x->names = names;
	idx = realloc(x->idx, (x->sc->nifindexes + nl + na + 1) * sizeof(*idx));
	if (idx)
		x->idx = idx;
	if (!names || !idx)
		return -ENOMEM;
	while (grew) {
		grew = false;
		for (size_t l = 0; l < nl; l++)
			if (scoped_link(x, &links[l]))
				grew |= scope_add(x, links[l].ifname, links[l].ifindex);
		for (size_t i = 0; i < na; i++)
			if (scoped_att(x, &a[i]))
				grew |= scope_add(x, a[i].ifname, a[i].meta_ok ? (int)a[i].meta.ifindex : 0);
	}
	return 0;
}

/*
 * A foreign XDP program on @ifindex (not @ours): its id, else 0. Where
 * pktlens joins libxdp's dispatcher, the dispatcher is not in the way (the
 * attach joins it), only a program attached alone.
 */
static __u32 foreign_xdp(int ifindex, __u32 ours)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct pl_xdp_disp d;
	__u32 ids[3];

	if (pl_feature(PL_FEAT_XDP_DISPATCHER) && !pl_xdp_disp_read(ifindex, &d))
		return d.alone.id != ours ? d.alone.id : 0;
	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	ids[0] = q.drv_prog_id, ids[1] = q.skb_prog_id, ids[2] = q.hw_prog_id;
	for (int i = 0; i < 3; i++)
		if (ids[i] && ids[i] != ours)
			return ids[i];
	return 0;
}

/*
 * Whether the interface of @a, not in its namespace, moved to another with
 * @a's XDP program: its pinned link still holds a device or, in libxdp's
 * dispatcher (no XDP link of ours: Debian's 6.1), the dispatcher that runs
 * the program is attached in another namespace. Taken for just gone, its
 * pins waited for the exporters, and the attach where it went refused the
 * program of theirs that runs on it.
 */
static bool moved_away(const struct pl_attachment *a)
{
	struct pl_xdp_where w;
	__u32 on = 0;

	if (!a->meta_ok || a->meta.xdp_mode == PL_XDP_NONE)
		return false;
	if (!pl_attachment_link_ifindex(a, &on))
		return on;
	return pl_xdp_prog_ext(a->meta.xdp_prog_id) &&
	       pl_xdp_disp_where(a->meta.xdp_prog_id, &w) == 1 && w.netns != a->netns;
}

/*
 * A REMOVE step for @a, an attachment of another namespace than the one
 * planned: named as its namespace is now (no name when it was deleted or
 * set aside: its inode may be another's), with what its pins say. @found
 * (or NULL): whether that namespace was found (by name, or a process in it).
 */
static struct pl_step *remove_step(struct pl_plan *p, const struct pl_attachment *a, bool *found)
{
	struct pl_step *st = step_new(p, PL_STEP_REMOVE, NULL, a->netns);
	struct pl_netns_id id;

	if (!st)
		return NULL;
	memset(&id, 0, sizeof(id));
	if (!a->ns_gone)
		pl_netns_identify(a->netns, pl_att_cookie(a), true, &id);
	snprintf(st->nsname, sizeof(st->nsname), "%s", id.name);
	st->att = *a;
	read_have(st);
	snprintf(st->ifname, sizeof(st->ifname), "%s", a->ifname);
	snprintf(st->pinned, sizeof(st->pinned), "%s", a->ifname);
	if (found)
		*found = id.name[0] || id.pid;
	return st;
}

/*
 * @li moved here from another namespace with the XDP program of an
 * attachment this config manages there: that one is removed first (in this
 * plan, whichever namespace is planned first), so that @st can attach. 1:
 * taken out of the way, 0: not such a program, -ENOMEM.
 */
static int take_moved(const struct pl_config *c, struct pl_attachment *a, size_t na, bool *marked,
		      struct pl_plan *p, const struct pl_step *st, const struct pl_link_info *li)
{
	struct pl_step *rm;
	size_t k;
	__u32 id;

	if (st->want.xdp_mode == PL_XDP_NONE ||
	    (st->kind != PL_STEP_ADD && !(st->what & PL_CH_REATTACH)))
		return 0;
	id = foreign_xdp(li->ifindex, st->kind == PL_STEP_ADD ? 0 : st->att.meta.xdp_prog_id);
	if (!id)
		return 0;
	for (k = 0; k < na; k++)
		if (a[k].meta_ok && a[k].meta.xdp_prog_id == id && pl_plan_manages(c, &a[k]) &&
		    strcmp(a[k].dir, st->att.dir))
			break;
	if (k == na)
		return 0;
	if (marked[k]) {	/* its namespace planned it already: a removal, now at once */
		for (size_t i = 0; i < p->n; i++)
			if (p->s[i]->kind == PL_STEP_REMOVE && !strcmp(p->s[i]->att.dir, a[k].dir))
				p->s[i]->moved = p->s[i]->gone = true;
		return 1;
	}
	rm = remove_step(p, &a[k], NULL);
	if (!rm)
		return -ENOMEM;
	rm->gone = rm->moved = true;
	rm->why = "interface moved to another network namespace";
	marked[k] = true;
	/* @st stays the last step (the plan is sorted once made) */
	p->s[p->n - 1] = p->s[p->n - 2];
	p->s[p->n - 2] = rm;
	return 1;
}

/* An interface the config wants that cannot be attached as it says: a note, no step. */
static int blocked(const struct pl_config *c, const struct pl_cfg_entry *e, struct pl_plan *p,
		   const struct pl_step *st, const struct pl_link_info *li, bool xdp_freed)
{
	char nsbuf[300], moved[512];
	__u32 id;

	pl_netns_fmt(st->netns, 0, true, nsbuf, sizeof(nsbuf));
	if (pl_link_not_ethernet(li, moved, sizeof(moved)))
		return note(p, "%s (netns %s): %s: pktlens analyses Ethernet frames only",
			    li->ifname, nsbuf, moved) ?: 1;
	/* xdp: auto is none on a virtual device: with tc: none the entry gives it no hook */
	if (st->want.xdp_mode == PL_XDP_NONE && !st->want.tc_hooks)
		return note(p, "%s (netns %s): %s:%d:%d: nothing to attach (xdp: auto is none on a "
			    "virtual device, and tc: none)", li->ifname, nsbuf, c->path, e->line,
			    e->col) ?: 1;
	/* as attach --xdp-priority refuses a device it gives no XDP hook */
	if (e->xdp_prio_set && st->want.xdp_mode == PL_XDP_NONE)
		return note(p, "%s (netns %s): %s:%d:%d: xdp-priority, but no XDP hook (xdp: auto is "
			    "none on a virtual device: xdp: skb or native)", li->ifname, nsbuf,
			    c->path, e->line, e->col) ?: 1;
	if (st->want.tc_mech == PL_TC_TCX && !pl_feature(PL_FEAT_TCX)) {
		char needs[128];

		return note(p, "%s (netns %s): tc-mech tcx %s", li->ifname, nsbuf,
			    pl_feature_needs(PL_FEAT_TCX, needs, sizeof(needs))) ?: 1;
	}
	/* the rule walk's bound without bpf_loop(), as the commit would find it */
	for (int d = 0; d < 2; d++)
		if (pl_policy_bound(st->rs.rules, st->rs.n, d, moved, sizeof(moved)))
			return note(p, "%s (netns %s): %s:%d:%d: %s", li->ifname, nsbuf, c->path,
				    e->line, e->col, moved) ?: 1;
	if (!xdp_freed && st->want.xdp_mode != PL_XDP_NONE &&
	    (st->kind == PL_STEP_ADD || (st->what & PL_CH_REATTACH)) &&
	    (id = foreign_xdp(li->ifindex, st->kind == PL_STEP_ADD ? 0 : st->att.meta.xdp_prog_id))) {
		if (pl_xdp_moved_why(id, moved, sizeof(moved)))
			return note(p, "%s (netns %s): %s", li->ifname, nsbuf, moved) ?: 1;
		return note(p, "%s (netns %s): a foreign XDP program (id %u) is attached; pktlens "
			    "does not replace it (detach it, or use xdp: none)", li->ifname, nsbuf,
			    id) ?: 1;
	}
	return 0;
}

/*
 * Whether @e names @li exactly. A pattern covers the interfaces pktlens can
 * analyse: one without an Ethernet header (tun, wireguard) is covered only
 * where it is named, and then blocked, saying why.
 */
static bool named_exactly(const struct pl_cfg_entry *e, const struct pl_link_info *li)
{
	return pl_config_entry_if(e, li->ifname, li->altnames, true);
}

/*
 * Whether this plan moves @held, pins under a name that are the attachment of
 * @holder (renamed since), out of that name: renamed to @holder's name where an
 * entry matches it (adopted if made by hand, or another config's with
 * PL_PLAN_TAKE_OVER), removed where this config manages it.
 */
static bool moves_away(const struct pl_config *c, const struct scope_x *sx,
		       const struct pl_attachment *held, const struct pl_link_info *holder,
		       char **names, size_t nnames, bool root, unsigned flags)
{
	const struct pl_cfg_entry *e;
	char l2[96];

	if (!scoped_link(sx, holder) || others(c, held, flags))
		return false;
	if (pl_plan_manages(c, held))
		return true;
	e = pl_config_match_names(c, root, (const char *const *)names, nnames, holder->ifname,
				  holder->altnames);
	return e && !(pl_link_not_ethernet(holder, l2, sizeof(l2)) && !named_exactly(e, holder));
}

/*
 * @on, the attachment of @ifname (pinned under its name before a rename)
 * that entry @e matches, is managed by another config: a note naming
 * that config (its name, and its file where that is not its name), nothing
 * done. Two configs that matched one interface took it from each other on
 * every apply and every daemon event. 0 or -ENOMEM.
 */
static int claimed(const struct pl_config *c, const struct pl_cfg_entry *e, struct pl_plan *p,
		   const struct pl_attachment *on, const char *ifname, uint64_t netns)
{
	const char *owner = on->meta.managed_by, *file = on->meta.managed_file;
	bool own_file = file[0] && strcmp(file, owner);
	char nsbuf[300];

	pl_netns_fmt(netns, 0, true, nsbuf, sizeof(nsbuf));
	return note(p, "%s (netns %s): managed by the config '%s'%s%s%s, which %s:%d:%d matches "
		    "too: left to it (pktlens apply --take-over %s takes it over)",
		    PL_NAME(ifname), nsbuf, PL_SAFE(owner), own_file ? " (" : "",
		    own_file ? PL_SAFE(file) : "", own_file ? ")" : "", c->path, e->line, e->col,
		    c->path);
}

/* The plan for one covered namespace; @a/@marked: every attachment, and which are taken. */
static int plan_ns(const struct pl_config *c, const struct pl_ns *ns, struct scope_x *sx,
		   struct pl_attachment *a, size_t na, bool *marked, struct pl_plan *p,
		   unsigned flags, char *why, size_t whylen)
{
	struct pl_link_info *links = NULL;
	struct pl_netns here = { .ino = ns->ino };
	size_t nl = 0, nnames = 0;
	char **names = NULL;
	int err;

	err = pl_ns_enter(ns);
	if (err) {
		note(p, "netns %s: cannot enter it: %s%s", pl_ns_label(ns), strerror(-err),
		     err == -EPERM ? " (that needs CAP_SYS_ADMIN: pktlens.service has it only "
		     "with a drop-in)" : "");
		return 0;
	}
	/* its cookie: pins of a deleted namespace that had its inode are not its own */
	if (pl_netns_here(&here) || here.ino != ns->ino)
		here = (struct pl_netns){ .ino = ns->ino };
	err = pl_links(&links, &nl);
	if (err) {
		snprintf(why, whylen, "netns %s: cannot list its interfaces: %s", pl_ns_label(ns),
			 strerror(-err));
		return err;
	}
	if (ns->name[0] && pl_ns_names(ns, &names, &nnames)) {
		free(links);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	if (scope_close(sx, links, nl, a, na)) {
		free(links);
		pl_ns_names_free(names, nnames);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (size_t l = 0; l < nl && !err; l++) {
		const struct pl_link_info *li = &links[l];
		const struct pl_cfg_entry *e;
		struct pl_attachment *on = NULL, *stale = NULL, *held = NULL;
		const struct pl_link_info *holder = NULL;
		struct pl_step *st;
		char l2[96];
		int b;

		if (!scoped_link(sx, li))
			continue;
		for (size_t i = 0; i < na; i++) {
			if (!pl_attachment_of(&a[i], &here))
				continue;
			if (att_of(&a[i], li))
				on = &a[i];
			else if (!strcmp(a[i].ifname, li->ifname))
				stale = &a[i];
		}
		/* pins under this name that belong to a live interface of another name: theirs */
		if (stale && stale->meta_ok) {
			for (size_t k = 0; stale && k < nl; k++)
				if (k != l && att_of(stale, &links[k])) {
					held = stale, holder = &links[k];
					stale = NULL;
				}
		}
		if (on)
			marked[on - a] = true;
		/* an entry may name the namespace by any of its names */
		e = pl_config_match_names(c, ns->slash, (const char *const *)names, nnames,
					  li->ifname, li->altnames);
		if (e && pl_link_not_ethernet(li, l2, sizeof(l2)) && !named_exactly(e, li))
			e = NULL;
		if (!e) {
			if (on && pl_plan_manages(c, on)) {
				st = step_new(p, PL_STEP_REMOVE, ns, 0);
				if (!st)
					goto nomem;
				st->att = *on;
				read_have(st);
				st->why = strcmp(on->ifname, li->ifname) ?
					  "renamed to a name the config does not match" :
					  "no longer matched by the config";
				snprintf(st->ifname, sizeof(st->ifname), "%s", on->ifname);
				snprintf(st->pinned, sizeof(st->pinned), "%s", on->ifname);
			} else if (on) {
				p->left_alone++;
			}
			continue;
		}
		/* another config's: left to it, unless taken over on purpose */
		if (on && others(c, on, flags)) {
			if (claimed(c, e, p, on, li->ifname, ns->ino))
				goto nomem;
			continue;
		}
		st = step_new(p, on ? PL_STEP_CHANGE : PL_STEP_ADD, ns, 0);
		if (!st)
			goto nomem;
		snprintf(st->ifname, sizeof(st->ifname), "%s", li->ifname);
		st->ifindex = li->ifindex;
		if (on) {
			st->att = *on;
			snprintf(st->pinned, sizeof(st->pinned), "%s", on->ifname);
			snprintf(st->prev_owner, sizeof(st->prev_owner), "%s", on->meta.managed_by);
			err = read_have(st);
			if (err) {
				snprintf(why, whylen, "%s (netns %s): cannot read its rules: %s",
					 on->ifname, pl_ns_label(ns), strerror(-err));
				break;
			}
		}
		err = resolve(c, e, li, st, why, whylen);
		if (err) {
			/* a rule that holds in one namespace may not in another: say where */
			size_t len = strlen(why);
			char nsbuf[300];

			pl_netns_fmt(ns->ino, 0, true, nsbuf, sizeof(nsbuf));
			if (len < whylen)
				snprintf(why + len, whylen - len, " (%s in netns %s)", li->ifname, nsbuf);
			break;
		}
		if (on) {
			st->rules_kept = rules_kept(&st->want, &st->have, true);
			st->what = differences(st, c);
			if (!pl_plan_manages(c, on))
				st->kind = PL_STEP_ADOPT;
			if (!st->what) {
				p->unchanged++;
				step_drop(p);
				continue;
			}
		}
		b = take_moved(c, a, na, marked, p, st, li);
		if (b < 0)
			goto nomem;
		b = blocked(c, e, p, st, li, b);
		/* attach would refuse: the name's pins are another interface's, left where they are */
		if (!b && st->kind == PL_STEP_ADD && held && !moves_away(c, sx, held, holder, names, nnames,
									  ns->slash, flags)) {
			char nsbuf[300];

			pl_netns_fmt(st->netns, 0, true, nsbuf, sizeof(nsbuf));
			b = note(p, "%s (netns %s): the pins named %s are the attachment of %s, renamed "
				 "since, which this config does not manage or match (pktlens attach %s "
				 "--force moves them to its name, pktlens detach %s removes them)",
				 li->ifname, nsbuf, li->ifname, holder->ifname, holder->ifname,
				 li->ifname) ?: 1;
		}
		if (b) {
			step_drop(p);
			if (b < 0)
				goto nomem;
			continue;
		}
		if (st->kind == PL_STEP_ADD && stale && !stale->meta_ok) {
			st->replace = true;	/* pins nothing can read: attached over */
			marked[stale - a] = true;
		} else if (stale && !marked[stale - a]) {
			/* a gone interface's pins under the name this one needs: out of the way first */
			struct pl_step *rm = step_new(p, PL_STEP_REMOVE, ns, 0);

			if (!rm)
				goto nomem;
			rm->att = *stale;
			read_have(rm);
			rm->gone = rm->clear_way = true;
			rm->why = "interface gone (a new one has its name)";
			snprintf(rm->ifname, sizeof(rm->ifname), "%s", stale->ifname);
			snprintf(rm->pinned, sizeof(rm->pinned), "%s", stale->ifname);
			marked[stale - a] = true;
		}
	}
	free(links);
	pl_ns_names_free(names, nnames);
	/* the rest of this namespace's attachments lost their interface */
	for (size_t i = 0; !err && i < na; i++) {
		struct pl_step *st;

		if (marked[i] || !pl_attachment_of(&a[i], &here) || !scoped_att(sx, &a[i]))
			continue;
		marked[i] = true;
		if (!pl_plan_manages(c, &a[i])) {
			p->left_alone++;
			continue;
		}
		st = step_new(p, PL_STEP_REMOVE, ns, 0);
		if (!st)
			return -ENOMEM;
		st->att = a[i];
		read_have(st);
		st->gone = true;
		st->moved = moved_away(&a[i]);
		st->why = st->moved ? "interface moved to another network namespace" : "interface gone";
		snprintf(st->ifname, sizeof(st->ifname), "%s", a[i].ifname);
		snprintf(st->pinned, sizeof(st->pinned), "%s", a[i].ifname);
	}
	return err;
nomem:
	free(links);
	pl_ns_names_free(names, nnames);
	return -ENOMEM;
}

static int kind_order(const void *x, const void *y)
{
	const struct pl_step *a = *(const struct pl_step *const *)x;
	const struct pl_step *b = *(const struct pl_step *const *)y;

	if (a->kind != b->kind)
		return (a->kind == PL_STEP_ADOPT ? PL_STEP_CHANGE : (int)a->kind) <
		       (b->kind == PL_STEP_ADOPT ? PL_STEP_CHANGE : (int)b->kind) ? -1 : 1;
	if (a->netns != b->netns)
		return a->netns < b->netns ? -1 : 1;
	return strcmp(a->ifname, b->ifname);
}

int pl_plan_make(const struct pl_config *c, const struct pl_nsset *s, const struct pl_scope *scope,
		 unsigned flags, struct pl_plan *p, char *why, size_t whylen)
{
	struct scope_x sx = { .sc = scope };
	struct pl_attachment *a = NULL;
	bool *marked = NULL;
	size_t na = 0;
	int err;

	memset(p, 0, sizeof(*p));
	err = pl_attachments(0, &a, &na);
	if (err) {
		snprintf(why, whylen, "cannot read %s: %s", PL_PIN_ROOT, strerror(-err));
		return err;
	}
	marked = calloc(na + 1, sizeof(*marked));
	if (!marked || (scope && scope_expand(&sx, a, na))) {
		err = -ENOMEM;
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		goto out;
	}
	for (size_t i = 0; !err && i < s->n; i++)
		if (!scope || scope->netns == s->ns[i].ino)
			err = plan_ns(c, &s->ns[i], &sx, a, na, marked, p, flags, why, whylen);
	pl_ns_leave(s);
	/* what the config manages in namespaces it no longer covers */
	for (size_t i = 0; !err && !scope && i < na; i++) {
		struct pl_step *st;
		bool found;

		if (marked[i] || !pl_plan_manages(c, &a[i]) || (!a[i].ns_gone && pl_nsset_find(s, a[i].netns)))
			continue;
		st = remove_step(p, &a[i], &found);
		if (!st) {
			err = -ENOMEM;
			break;
		}
		st->gone = !found;
		st->why = st->gone ? "network namespace gone" : "network namespace no longer covered";
	}
	if (err == -ENOMEM)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	if (!err && p->n)
		pl_qsort(p->s, p->n, sizeof(*p->s), kind_order);
out:
	if (err)
		pl_plan_free(p);
	free(sx.names);
	free(sx.idx);
	free(marked);
	free(a);
	return err;
}

/* ---- telling it ---- */

size_t pl_plan_count(const struct pl_plan *p, enum pl_step_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		n += p->s[i]->kind == k;
	return n;
}

size_t pl_plan_count_ok(const struct pl_plan *p, enum pl_step_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		n += p->s[i]->kind == k && p->s[i]->ok;
	return n;
}

size_t pl_plan_failed(const struct pl_plan *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		n += !p->s[i]->ok;
	return n;
}

const char *pl_step_verb(const struct pl_step *st)
{
	static const char *const verbs[] = { "remove", "change", "adopt", "add" };

	return verbs[st->kind];
}

static const char *hooks_str(const struct pl_settings *x, char *buf, size_t len)
{
	struct pl_meta m = { .xdp_mode = (__u32)x->xdp_mode, .tc_hooks = (__u32)x->tc_hooks,
			     .tc_mech = (__u32)x->tc_mech, .probes = x->probes };

	return pl_fmt_hooks(&m, buf, len);
}

#define ADD(...) (n < len ? (void)(n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__)) : (void)0)

/* "off", or "on" with the outstanding-timestamp map asked for */
static const char *tcp_str(const struct pl_settings *x, char *buf, size_t len)
{
	if (!x->tcp_passive)
		return "off";
	snprintf(buf, len, "on (tcp-ts-max %u)", x->tcp_ts_max);
	return buf;
}

static bool tcp_differs(const struct pl_settings *h, const struct pl_settings *w)
{
	return h->tcp_passive != w->tcp_passive || h->tcp_ts_max != w->tcp_ts_max;
}

const char *pl_step_describe(const struct pl_step *st, char *buf, size_t len)
{
	const struct pl_settings *h = &st->have, *w = &st->want;
	char nsbuf[300], a[128], b[128];
	const char *sep = "";
	size_t n = 0;

	buf[0] = '\0';
	if (st->nsname[0])
		snprintf(nsbuf, sizeof(nsbuf), "%" PRIu64 " (%s)", st->netns, st->nsname);
	else
		pl_netns_fmt(st->netns, pl_att_cookie(&st->att), true, nsbuf, sizeof(nsbuf));
	ADD("%s (netns %s): ", PL_NAME(st->ifname), nsbuf);
	switch (st->kind) {
	case PL_STEP_REMOVE:
		ADD("%s", st->why);
		break;
	case PL_STEP_ADD:
		ADD("%s, flows %u", hooks_str(w, a, sizeof(a)), w->flows);
		if (w->xdp_prio_set)
			ADD(", xdp priority %u", w->xdp_prio);
		if (w->tcp_passive)
			ADD(", tcp-passive %s", tcp_str(w, a, sizeof(a)));
		if (w->filter)
			ADD(", filter '%s'", w->filter);
		if (w->nrules)
			ADD(", %zu rule%s", w->nrules, w->nrules == 1 ? "" : "s");
		if (st->replace)
			ADD(" (over pins pktlens cannot read)");
		break;
	default:
		if (st->what & PL_CH_RENAME)
			ADD("%srenamed from %s", sep, PL_NAME(st->pinned)), sep = "; ";
		/*
		 * the hooks, unless they stay and what re-attaches is the priority or passive
		 * TCP, said below ("hooks tc/tcx in -> tc/tcx in" told nothing)
		 */
		if (st->what & (PL_CH_HOOKS | PL_CH_PROBES)) {
			bool prio = w->xdp_prio_set && h->xdp_prio_set && h->xdp_prio != w->xdp_prio;

			hooks_str(h, a, sizeof(a));
			hooks_str(w, b, sizeof(b));
			if (strcmp(a, b))
				ADD("%shooks %s -> %s", sep, a, b), sep = "; ";
			else if (!(prio || tcp_differs(h, w)))	/* the same hooks, not all running */
				ADD("%shooks %s (not all running: attached again)", sep, b), sep = "; ";
		}
		if ((st->what & PL_CH_HOOKS) && w->xdp_prio_set && h->xdp_prio_set &&
		    h->xdp_prio != w->xdp_prio)
			ADD("%sxdp priority %u -> %u", sep, h->xdp_prio, w->xdp_prio), sep = "; ";
		if ((st->what & PL_CH_HOOKS) && tcp_differs(h, w)) {
			ADD("%stcp-passive %s", sep, tcp_str(h, a, sizeof(a))), sep = "; ";
			ADD(" -> %s", tcp_str(w, b, sizeof(b)));
		}
		if (st->what & PL_CH_FLOWS)
			ADD("%sflows %u -> %u", sep, h->flows, w->flows), sep = "; ";
		if (st->what & PL_CH_FILTER) {
			ADD("%sfilter ", sep), sep = "; ";
			ADD(h->filter ? "'%s'" : "%s", h->filter ? h->filter : "none");
			ADD(" -> ");
			ADD(w->filter ? "'%s'" : "%s", w->filter ? w->filter : "none");
		}
		if (st->what & PL_CH_RULES)
			ADD("%srules: %zu kept, %zu new, %zu removed", sep, st->rules_kept,
			    w->nrules - st->rules_kept, h->nrules - st->rules_kept), sep = "; ";
		if (st->what & PL_CH_OWNER) {
			ADD("%snow managed by this config (", sep), sep = "; ";
			ADD(st->prev_owner[0] ? "was managed by %s" : "was attached by hand",
			    st->prev_owner);
			/* found by the file it records: this file's name before */
			ADD("%s)", st->kind == PL_STEP_CHANGE ? ", this file's previous name" : "");
		}
		if (st->what & PL_CH_META)
			ADD("%sattached again: its metadata is version %u, an older pktlens's", sep,
			    st->att.meta.version);
		break;
	}
	return buf;
}

static void settings_json(struct jw *w, const struct pl_settings *x)
{
	char line[PL_FILTER_EXPR_MAX + 512];

	jw_obj_open(w);
	jw_str_field(w, "xdp", pl_xdp_mode_name(x->xdp_mode));
	jw_str_field(w, "tc", x->tc_hooks == (PL_TC_IN | PL_TC_OUT) ? "in,out" :
			 x->tc_hooks == PL_TC_IN ? "in" : x->tc_hooks == PL_TC_OUT ? "out" : "none");
	jw_str_field(w, "tc_mech", pl_tc_mech_name(x->tc_mech));
	jw_u64_field(w, "flows", x->flows);
	jw_key(w, "xdp_priority");
	if (x->xdp_prio_set)
		jw_u64(w, x->xdp_prio);
	else
		jw_null(w);
	jw_str_field(w, "filter", x->filter);
	jw_bool_field(w, "tcp_passive", x->tcp_passive);
	jw_key(w, "tcp_ts_max");
	if (x->tcp_passive)
		jw_u64(w, x->tcp_ts_max);
	else
		jw_null(w);
	jw_key(w, "probes");
	jw_arr_open(w);
	if (x->probes & PL_PROBE_TCP)
		jw_str(w, "tcp");
	if (x->probes & PL_PROBE_DROPS)
		jw_str(w, "drops");
	jw_arr_close(w);
	jw_key(w, "rules");
	jw_arr_open(w);
	for (size_t i = 0; i < x->nrules; i++) {
		pl_rule_format(&x->rules[i], text_of(x, x->rules[i].id), line, sizeof(line));
		jw_str(w, line);
	}
	jw_arr_close(w);
	jw_obj_close(w);
}

void pl_step_json(struct jw *w, const struct pl_step *st, bool result)
{
	static const struct {
		unsigned bit;
		const char *name;
	} changes[] = {
		{ PL_CH_RENAME, "rename" }, { PL_CH_HOOKS, "hooks" }, { PL_CH_FLOWS, "flows" },
		{ PL_CH_FILTER, "filter" }, { PL_CH_RULES, "rules" }, { PL_CH_PROBES, "probes" },
		{ PL_CH_OWNER, "owner" }, { PL_CH_META, "metadata" },
	};

	jw_obj_open(w);
	jw_str_field(w, "action", pl_step_verb(st));
	jw_str_field(w, "ifname", st->ifname);
	jw_u64_field(w, "netns", st->netns);
	if (st->nsname[0]) {
		jw_str_field(w, "netns_name", st->nsname);
	} else {
		/* as the text names it (pl_step_describe()): the namespace pktlens runs in has one too */
		struct pl_netns_id id;

		memset(&id, 0, sizeof(id));
		pl_netns_identify(st->netns, pl_att_cookie(&st->att), true, &id);
		jw_str_field(w, "netns_name", id.name[0] ? id.name : NULL);
		if (id.pid) {
			jw_u64_field(w, "netns_pid", (uint64_t)id.pid);
			jw_str_field(w, "netns_comm", id.comm);
		}
	}
	if (st->kind == PL_STEP_REMOVE) {
		jw_str_field(w, "reason", st->why);
		jw_bool_field(w, "gone", st->gone);
	}
	if (st->kind == PL_STEP_CHANGE || st->kind == PL_STEP_ADOPT) {
		jw_key(w, "changes");
		jw_arr_open(w);
		for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
			if (st->what & changes[i].bit)
				jw_str(w, changes[i].name);
		jw_arr_close(w);
		jw_str_field(w, "pinned_as", st->pinned);
		jw_u64_field(w, "rules_kept", st->rules_kept);
	}
	if (st->what & PL_CH_OWNER)
		jw_str_field(w, "managed_by_before", st->prev_owner[0] ? st->prev_owner : NULL);
	if (st->kind != PL_STEP_ADD) {
		jw_key(w, "from");
		settings_json(w, &st->have);
	}
	if (st->kind != PL_STEP_REMOVE) {
		jw_key(w, "to");
		settings_json(w, &st->want);
	}
	if (result) {
		jw_bool_field(w, "done", st->ran && st->ok);
		jw_str_field(w, "error", st->ran && !st->ok ? st->msg : NULL);
		if (st->kind == PL_STEP_REMOVE)
			jw_str_field(w, "final_totals", st->ok && st->msg[0] ? st->msg : NULL);
		else
			jw_str_field(w, "note", st->ran && st->ok && st->msg[0] ? st->msg : NULL);
		jw_key(w, "seconds");
		jw_double(w, st->secs);
	}
	jw_obj_close(w);
}
