/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qsort() and bsearch() for arrays that may be empty: C leaves passing them
 * a NULL array undefined even with no element (UBSan says so), and an empty
 * array here is often a NULL one.
 */
#ifndef PKTLENS_ARRAY_H
#define PKTLENS_ARRAY_H

#include <stdlib.h>

static inline void pl_qsort(void *base, size_t n, size_t size,
			    int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static inline void *pl_bsearch(const void *key, const void *base, size_t n, size_t size,
			       int (*cmp)(const void *, const void *))
{
	return n ? bsearch(key, base, n, size, cmp) : NULL;
}

#endif
