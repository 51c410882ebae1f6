// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

int pl_detached_error(const char *cmd, const char *ifname)
{
	pl_err("%s: %s: detached meanwhile", cmd, ifname);
	return PL_EXIT_FAIL;
}

int pl_select(const char *cmd, const char *ifname, struct pl_attachment **a, size_t *n)
{
	int err = pl_attachments_here(ifname, a, n);

	if (err == -ENOENT && ifname) {
		pl_err("%s: %s: not attached (pktlens attach %s)", cmd, ifname, ifname);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("%s: cannot read %s: %s%s", cmd, PL_PIN_ROOT, strerror(-err),
		       err == -EACCES || err == -EPERM ? " (needs root or CAP_BPF)" : "");
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
	       " (attached by an older pktlens? pktlens attach --force)" :
	       err == -EACCES || err == -EPERM ? " (needs root or CAP_BPF)" : "");
	return PL_EXIT_FAIL;
}
