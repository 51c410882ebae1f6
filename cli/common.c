// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>

#include "common.h"
#include "util.h"
#include "../loader/xdp_multi.h"

int pl_detached_error(const char *cmd, const char *ifname)
{
	pl_err("%s: %s: detached meanwhile", cmd, ifname);
	return PL_EXIT_FAIL;
}

bool pl_iface_gone(uint32_t ifindex)
{
	char name[IF_NAMESIZE];

	return ifindex && !if_indextoname(ifindex, name) && (errno == ENXIO || errno == ENODEV);
}

int pl_iface_in_this_netns(void *arg)
{
	const struct pl_attachment *a = arg;
	struct pl_link_info li;

	return !pl_link_get(NULL, a->meta.ifindex, &li) && !strcmp(li.ifname, a->ifname);
}

bool pl_iface_still_here(const struct pl_attachment *a)
{
	struct pl_netns here;

	if (pl_netns_here(&here))
		return false;
	if (a->netns == here.ino)
		return pl_attachment_of(a, &here) && pl_iface_in_this_netns((void *)a) == 1;
	/* another namespace's: looked at from inside it, on a thread of its own */
	return !a->ns_gone && pl_netns_run(a->netns, pl_att_cookie(a), pl_iface_in_this_netns,
					    (void *)a) == 1;
}

/* An XDP hook in libxdp's dispatcher whose program still exists */
static bool in_disp(const struct pl_attachment *a)
{
	return a->meta_ok && a->meta.xdp_mode != PL_XDP_NONE && pl_xdp_prog_ext(a->meta.xdp_prog_id);
}

bool pl_moved_away(const struct pl_attachment *a)
{
	struct pl_moved w;

	return pl_attachment_moved(a, &w) == 1;
}

bool pl_disp_stale(const struct pl_attachment *a)
{
	struct pl_xdp_where w;

	return in_disp(a) && !pl_iface_still_here(a) && !pl_xdp_disp_where(a->meta.xdp_prog_id, &w);
}

/* As `list` says interface-gone: links holding no device, no such index, or the index reused */
static bool attachment_iface_gone(const struct pl_attachment *a)
{
	struct pl_link_info li;
	__u32 link_ifindex;

	if (!a->meta_ok)
		return false;
	/* XDP and tcx links outlive their device, holding index 0 (moved: another namespace's) */
	if (!pl_attachment_link_ifindex(a, &link_ifindex))
		return !link_ifindex && !pl_iface_still_here(a);
	/* one in libxdp's dispatcher that moved away runs on there, as a link's does */
	if (pl_iface_gone(a->meta.ifindex))
		return !pl_moved_away(a);
	/* clsact: another interface got the index (a rename keeps the programs running) */
	return !pl_link_get(NULL, a->meta.ifindex, &li) && strcmp(li.ifname, a->ifname) &&
	       !pl_meta_live(&a->meta);
}

int pl_refuse_gone(const char *cmd, const struct pl_attachment *a)
{
	if (!attachment_iface_gone(a))
		return PL_EXIT_OK;
	pl_err("%s: %s: the attached interface was deleted (its counters: pktlens stats %s; "
	       "pktlens detach %s removes them)", cmd, a->ifname, a->ifname, a->ifname);
	return PL_EXIT_USAGE;
}

/* The name @ifname's interface was attached as, before a rename: into @was; false if none */
static bool attached_before_rename(const char *ifname, char *was, size_t len)
{
	struct pl_attachment *v = NULL;
	struct pl_link_info li;
	size_t n = 0;
	bool found = false;

	if (pl_link_get(ifname, 0, &li) || pl_attachments_here(NULL, &v, &n))
		return false;
	/* its programs run on this very interface (an index reused by a new one has none) */
	for (size_t i = 0; i < n && !found; i++)
		if (v[i].meta_ok && (int)v[i].meta.ifindex == li.ifindex && strcmp(v[i].ifname, ifname) &&
		    pl_meta_live(&v[i].meta)) {
			snprintf(was, len, "%s", v[i].ifname);
			found = true;
		}
	free(v);
	return found;
}

int pl_dev_arg(const char *cmd, char **dev)
{
	static struct pl_link_info li;
	int err;

	/* a shorter name is the kernel's to resolve, or an attachment's (a renamed interface's) */
	if (strlen(*dev) < IFNAMSIZ)
		return PL_EXIT_OK;
	err = pl_link_get(*dev, 0, &li);
	if (err == -ENODEV) {
		pl_err("%s: %s: no such interface (names are at most %d bytes, and no interface has "
		       "it as an alternative name)", cmd, *dev, IFNAMSIZ - 1);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("%s: %s: cannot look the interface up: %s", cmd, *dev, strerror(-err));
		return PL_EXIT_FAIL;
	}
	*dev = li.ifname;
	return PL_EXIT_OK;
}

const char *pl_pins_hint(int err)
{
	/* the pins are root's, mode 0700: CAP_BPF alone does not open them for another user */
	if (err == -EACCES)
		return " (the pins are root's: run as root, or with CAP_DAC_OVERRIDE besides CAP_BPF)";
	return err == -EPERM ? " (needs root or CAP_BPF)" : "";
}

int pl_probe_netns(const char *cmd, __u64 *netns)
{
	uint64_t here;
	int err;

	if (*netns || !pl_g.netns)
		return PL_EXIT_OK;
	err = pl_netns_ino(&here);
	if (err) {
		pl_err("%s: netns '%s': %s", cmd, pl_g.netns, strerror(-err));
		return PL_EXIT_FAIL;
	}
	*netns = here;
	return PL_EXIT_OK;
}

int pl_select(const char *cmd, const char *ifname, struct pl_attachment **a, size_t *n)
{
	int err = pl_attachments_here(ifname, a, n);
	char was[IFNAMSIZ];

	if (err == -ENOENT && ifname && attached_before_rename(ifname, was, sizeof(was))) {
		pl_err("%s: %s: attached as %s, its name before a rename (use %s, or pktlens attach "
		       "%s --force to move it to this name)", cmd, ifname, was, was, ifname);
		return PL_EXIT_USAGE;
	}
	if (err == -ENOENT && ifname) {
		pl_err("%s: %s: not attached (pktlens attach %s)", cmd, ifname, ifname);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("%s: cannot read %s: %s%s", cmd, PL_PIN_ROOT, strerror(-err), pl_pins_hint(err));
		return PL_EXIT_FAIL;
	}
	return PL_EXIT_OK;
}

int pl_open_state(const char *cmd, const struct pl_attachment *a, struct pl_state *st)
{
	int err = pl_state_open(a->dir, st);

	return err ? pl_open_error(cmd, a, err) : PL_EXIT_OK;
}

int pl_open_error(const char *cmd, const struct pl_attachment *a, int err)
{
	/* its pins are gone since it was listed: detached while a view ran, not an old layout */
	if (err == -ENOENT && access(a->dir, F_OK))
		return pl_detached_error(cmd, a->ifname);
	pl_err("%s: %s: cannot open pinned maps in %s: %s%s", cmd, a->ifname, a->dir,
	       strerror(-err), err == -ENOENT || err == -EPROTO ?
	       " (attached by an older pktlens? pktlens attach --force)" : pl_pins_hint(err));
	return PL_EXIT_FAIL;
}

void pl_view_errs_begin(struct pl_view_errs *e)
{
	memset(e, 0, sizeof(*e));
	e->held = pl_g.data_on_stdout;
	pl_g.data_on_stdout = true;
}

void pl_view_errs_add(struct pl_view_errs *e, const char *ifname)
{
	char (*names)[16] = realloc(e->ifname, (e->n + 1) * sizeof(*names));
	char **msgs;

	if (names)
		e->ifname = names;
	msgs = names ? realloc(e->msg, (e->n + 1) * sizeof(*msgs)) : NULL;
	if (!msgs)
		return;	/* its line is on stderr; the exit code says it failed */
	e->msg = msgs;
	snprintf(e->ifname[e->n], sizeof(e->ifname[e->n]), "%s", ifname);
	e->msg[e->n] = strdup(pl_err_last());
	e->n++;
}

void pl_view_errs_end(struct pl_view_errs *e, struct jw *w)
{
	pl_g.data_on_stdout = e->held;
	if (pl_g.json && e->n) {
		jw_key(w, "errors");
		jw_arr_open(w);
		for (size_t i = 0; i < e->n; i++) {
			jw_obj_open(w);
			jw_name_field(w, "ifname", e->ifname[i]);
			jw_str_field(w, "error", e->msg[i] ? e->msg[i] : "out of memory");
			jw_obj_close(w);
		}
		jw_arr_close(w);
	}
	for (size_t i = 0; i < e->n; i++)
		free(e->msg[i]);
	free(e->msg);
	free(e->ifname);
	memset(e, 0, sizeof(*e));
}
