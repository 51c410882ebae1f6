/* SPDX-License-Identifier: GPL-2.0 */
/* The Prometheus text exposition (format 0.0.4) of every pktlens attachment on the host. */
#ifndef __PKTLENS_EXPORT_PROM_H
#define __PKTLENS_EXPORT_PROM_H

#include <stddef.h>

/*
 * Render the metrics of all attachments (every network namespace) into a
 * malloc'd buffer. 0, or -errno (the buffer is then NULL).
 */
int pl_prom_render(char **out, size_t *len);

#endif /* __PKTLENS_EXPORT_PROM_H */
