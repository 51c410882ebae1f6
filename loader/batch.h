/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Batched map commands with a fallback: a kernel whose map type has no batch
 * operations (arrays and LPM tries before 5.x; Debian 11's 5.10 answers
 * ENOTSUPP) gets the same result one element at a time. Same contract as
 * libbpf's bpf_map_*_batch(): 0, or -1 with errno set (ENOENT from a lookup:
 * the walk is over, *count entries were still returned); *count says how
 * many were done. Values are @vsz bytes per key (for a per-CPU map, all of
 * its CPUs' values). A lookup's token is the last key: @out_batch holds
 * PL_BATCH_TOKEN bytes.
 */
#ifndef __PKTLENS_BATCH_H
#define __PKTLENS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define PL_BATCH_TOKEN 64

int pl_batch_update(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz,
		    __u32 *count, __u64 elem_flags);
int pl_batch_lookup(int fd, void *in_batch, void *out_batch, void *keys, size_t ksz,
		    void *vals, size_t vsz, __u32 *count, bool del);
/*
 * Delete the @n keys at @keys (@ksz bytes each) from @fd; a key that is not
 * there is no error. 0, or -1 with errno set.
 */
int pl_batch_delete(int fd, const void *keys, size_t ksz, __u32 n);

#endif /* __PKTLENS_BATCH_H */
