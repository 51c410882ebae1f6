/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The network namespaces a config covers: the root one (the namespace
 * pktlens started in) and named ones (/run/netns, `ip netns add`), each held
 * open so that pktlens can enter it (setns: the network namespace only, so
 * bpffs stays ours) and leave it again.
 */
#ifndef __PKTLENS_SERVICE_NS_H
#define __PKTLENS_SERVICE_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PL_NETNS_DIR "/run/netns"

struct pl_ns {
	uint64_t ino;
	/*
	 * Its name in /run/netns, "" for none. The namespace pktlens runs in is
	 * covered as "/" (@slash) and by any name it has there that the config
	 * covers, as another one would be: `pktlens -n NS apply` covers NS by name.
	 */
	char name[256];
	bool slash;
	int fd;
};

struct pl_nsset {
	int root_fd;		/* where we started, and return to */
	uint64_t root_ino;
	struct pl_ns *ns;	/* covered by the config: the root one first, if it is */
	size_t n;
};

/* Call in the root namespace. 0, or -errno with @why. */
int pl_nsset_init(struct pl_nsset *s, char *why, size_t whylen);
/*
 * Make the set what @c covers now: open namespaces newly covered (a new
 * name in /run/netns, a changed config), close the others. *changed (may
 * be NULL) says whether the set changed. A name whose bind mount is not in
 * place yet (`ip netns add` creates the file, then mounts) is skipped and
 * counted in *pending (may be NULL).
 */
int pl_nsset_update(struct pl_nsset *s, const struct pl_config *c, bool *changed, size_t *pending);
const struct pl_ns *pl_nsset_find(const struct pl_nsset *s, uint64_t ino);
/* Enter @ns (setns); 0 or -errno. */
int pl_ns_enter(const struct pl_ns *ns);
/* Back to the root namespace. */
void pl_ns_leave(const struct pl_nsset *s);
void pl_nsset_free(struct pl_nsset *s);
/*
 * Every name of named namespace @ns in /run/netns (one namespace may have
 * several: `ip netns attach`, bind mounts); at least its own name.
 * 0, or -ENOMEM. Free with pl_ns_names_free().
 */
int pl_ns_names(const struct pl_ns *ns, char ***names, size_t *n);
void pl_ns_names_free(char **names, size_t n);
/* "root" or the name, for messages. */
const char *pl_ns_label(const struct pl_ns *ns);

#endif /* __PKTLENS_SERVICE_NS_H */
