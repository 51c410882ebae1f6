// SPDX-License-Identifier: GPL-2.0
/* Capture triggers: the grammar and the counters behind it (trigger.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <pktlens/clock.h>
#include <pktlens/drops.h>
#include <pktlens/why.h>

#include "trigger.h"
#include "../loader/loader.h"
#include "../probes/drops.h"

#define GRAMMAR "expected 'rule ID > Npps', 'dev pps > N' or 'drops [REASON] > N/s'"

/* The words of @s, at most @max; their number, or -1 if more. */
static int split(char *s, char **w, int max)
{
	int n = 0;

	for (char *tok = strtok(s, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (n == max)
			return -1;
		w[n++] = tok;
	}
	return n;
}

static int number(const char *s, const char *unit, uint64_t *v)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	return !*end || (unit && !strcmp(end, unit)) ? 0 : -EINVAL;
}

int pl_trig_parse(const char *s, struct pl_trig *t, char *why, size_t whylen)
{
	char buf[256], *w[8];
	int n, i = 0, err;
	uint64_t v;

	memset(t, 0, sizeof(*t));
	if (strlen(s) >= sizeof(buf))
		return pl_why(why, whylen, -EINVAL, "too long");
	snprintf(buf, sizeof(buf), "%s", s);
	n = split(buf, w, 8);
	/* "Npps" or "N pps", "N/s" or "N /s": one word */
	if (n >= 2 && (!strcmp(w[n - 1], "pps") || !strcmp(w[n - 1], "/s")))
		n--;
	if (n < 3)
		return pl_why(why, whylen, -EINVAL, GRAMMAR);
	if (!strcmp(w[0], "rule")) {
		if (n != 4 || number(w[1], NULL, &v) || strcmp(w[2], ">"))
			return pl_why(why, whylen, -EINVAL, GRAMMAR);
		if (!v || v > PL_POLICY_RULES_MAX)	/* policy's ids */
			return pl_why(why, whylen, -EINVAL, "rule %s: not a rule id in 1..%u", w[1],
				      PL_POLICY_RULES_MAX);
		t->kind = PL_TRIG_RULE;
		t->rule = (uint32_t)v;
		i = 3;
	} else if (!strcmp(w[0], "dev") || !strcmp(w[0], "pps")) {
		i = !strcmp(w[0], "dev");
		if (strcmp(w[i], "pps") || n != i + 3 || strcmp(w[i + 1], ">"))
			return pl_why(why, whylen, -EINVAL, GRAMMAR);
		t->kind = PL_TRIG_PPS;
		i += 2;
	} else if (!strcmp(w[0], "drops")) {
		t->kind = PL_TRIG_DROPS;
		/* the shape first ('drops > N', 'drops REASON > N'): then the reason, if any */
		if ((n != 3 && n != 4) || strcmp(w[n - 2], ">") || (n == 4 && !strcmp(w[1], ">")))
			return pl_why(why, whylen, -EINVAL, GRAMMAR);
		if (n == 4) {
			if (strlen(w[1]) >= sizeof(t->reason))
				return pl_why(why, whylen, -EINVAL, "drop reason '%s': too long", w[1]);
			snprintf(t->reason, sizeof(t->reason), "%s", w[1]);
			/* a name the kernel does not have would never match: wait forever */
			err = pl_drop_reason_known(t->reason);
			if (err == -ENOTSUP)
				return pl_why(why, whylen, -EINVAL, "drop reason '%s': this kernel has "
					      "no drop reasons (enum skb_drop_reason in its BTF)",
					      t->reason);
			if (err)
				return pl_why(why, whylen, -EINVAL, "no drop reason '%s' (pktlens drops "
					      "names those of this kernel)", t->reason);
		}
		i = n - 1;
	} else {
		return pl_why(why, whylen, -EINVAL, GRAMMAR);
	}
	if (number(w[i], t->kind == PL_TRIG_DROPS ? "/s" : "pps", &t->above))
		return pl_why(why, whylen, -EINVAL, "'%s': not a rate (%s)", w[i], GRAMMAR);
	if (t->kind == PL_TRIG_RULE)
		snprintf(t->text, sizeof(t->text), "rule %u > %llupps", t->rule,
			 (unsigned long long)t->above);
	else if (t->kind == PL_TRIG_PPS)
		snprintf(t->text, sizeof(t->text), "dev pps > %llu", (unsigned long long)t->above);
	else
		snprintf(t->text, sizeof(t->text), "drops%s%s > %llu/s", t->reason[0] ? " " : "",
			 t->reason, (unsigned long long)t->above);
	return 0;
}

static int rule_count(const struct pl_trig *t, const char *dir, uint64_t *count, char *why,
		      size_t whylen)
{
	struct pl_rule_stats st;
	struct pl_policy p;
	struct pl_rule rule;
	int err;

	if (!dir)
		return pl_why(why, whylen, -ENOENT, "'%s': the interface is not attached, so it has "
			      "no rules", t->text);
	err = pl_policy_open(dir, &p);
	if (err)
		return pl_why(why, whylen, err, "cannot open the policy: %s", strerror(-err));
	err = pl_policy_rule_find(&p, t->rule, &rule);
	*count = 0;
	if (!err)
		err = pl_policy_rule_stats(&p, &rule, &st);
	if (!err)
		*count = st.pkts;
	pl_policy_close(&p);
	if (err == -ENOENT)
		return pl_why(why, whylen, err, "'%s': no rule %u", t->text, t->rule);
	return err ? pl_why(why, whylen, err, "cannot read rule %u: %s", t->rule,
			    strerror(-err)) : 0;
}

static int drop_count(const struct pl_trig *t, const char *ifname, __u32 ifindex,
		      const char *dir, uint64_t *count, char *why, size_t whylen)
{
	struct pl_drop_row *rows = NULL;
	char name[96];
	size_t n = 0;
	int fd, err;

	fd = dir ? pl_pin_open(dir, PL_MAP_DROP_STATS) : -1;
	if (fd < 0)
		return pl_why(why, whylen, -ENOENT, "'%s': needs the drop probes (pktlens attach "
			      "%s --probes drops)", t->text, ifname);
	err = pl_drops_read(fd, &rows, &n);
	close(fd);
	if (err)
		return pl_why(why, whylen, err, "cannot read %s: %s", PL_MAP_DROP_STATS,
			      strerror(-err));
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		/* the probes count the attachment's namespace: an index is its interface */
		if (ifindex ? rows[i].k.ifindex != ifindex :
			      strncmp(rows[i].k.dev, ifname, sizeof(rows[i].k.dev)))
			continue;
		if (t->reason[0] && strcasecmp(pl_drop_reason_name(rows[i].k.kind, rows[i].k.reason,
								  name, sizeof(name)), t->reason))
			continue;
		*count += rows[i].v.packets;
	}
	free(rows);
	return 0;
}

int pl_trig_look(struct pl_trig *t, const char *ifname, __u32 ifindex, const char *dir,
		 uint64_t *rate, char *why, size_t whylen)
{
	struct pl_link_info li = { 0 };
	uint64_t count = 0, dt;
	unsigned last;
	int err;

	switch (t->kind) {
	case PL_TRIG_RULE:
		err = rule_count(t, dir, &count, why, whylen);
		break;
	case PL_TRIG_DROPS:
		err = drop_count(t, ifname, ifindex, dir, &count, why, whylen);
		break;
	default:
		err = pl_link_get(ifindex ? NULL : ifname, (int)ifindex, &li);
		if (err)
			pl_why(why, whylen, err, "%s: %s", ifname, strerror(-err));
		count = li.rx_packets + li.tx_packets;
		break;
	}
	if (err)
		return err;
	/* the window: slide when full */
	if (t->n == PL_TRIG_WINDOW + 1) {
		memmove(t->hist, t->hist + 1, PL_TRIG_WINDOW * sizeof(t->hist[0]));
		memmove(t->at, t->at + 1, PL_TRIG_WINDOW * sizeof(t->at[0]));
		t->n--;
	}
	t->hist[t->n] = count;
	t->at[t->n++] = pl_mono_ns();
	*rate = 0;
	if (t->n < 2)
		return 0;
	last = t->n - 1;
	dt = t->at[last] - t->at[0];
	/*
	 * over the last second: a window not a second long yet (the first second of
	 * waiting, or of waiting again) is what it counted, not scaled up to a
	 * second (a burst of 100 in its first 100 ms is 100/s, not 1000/s)
	 */
	if (dt < 1000000000ULL)
		dt = 1000000000ULL;
	if (t->hist[last] > t->hist[0])
		*rate = (t->hist[last] - t->hist[0]) * 1000000000ULL / dt;
	return 0;
}
