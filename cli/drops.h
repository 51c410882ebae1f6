/* SPDX-License-Identifier: GPL-2.0 */
/* What other commands show of the drop probes pinned by `attach --probes drops` (cli/drops.c). */
#ifndef __PKTLENS_CLI_DROPS_H
#define __PKTLENS_CLI_DROPS_H

#include "../export/json.h"
#include "../loader/loader.h"

/*
 * stats: the kernel's drops on @a's interface by reason since the probes
 * were attached, as a "kernel_drops" array into @w (null without the
 * probes), or a "  drops ..." line on stdout when @w is NULL (nothing
 * without the probes).
 */
void pl_drops_summary(struct jw *w, const struct pl_attachment *a);

#endif /* __PKTLENS_CLI_DROPS_H */
