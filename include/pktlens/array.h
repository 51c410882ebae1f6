/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Arrays: qsort() and bsearch() for arrays that may be empty (C leaves
 * passing them a NULL array undefined even with no element, UBSan says so,
 * and an empty array here is often a NULL one), and growing ones.
 */
#ifndef PKTLENS_ARRAY_H
#define PKTLENS_ARRAY_H

#include <stdint.h>
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

/*
 * The array @p of @size-byte elements and *@cap slots with room for element
 * @n: @p itself while @n < *@cap, else moved to twice as many slots (@first
 * when it has none) and *@cap updated. NULL when out of memory: @p and
 * *@cap stay as they were.
 *
 *	struct x *v = pl_grown(a->v, &a->cap, a->n, sizeof(*v), 64);
 *
 *	if (!v)
 *		return -ENOMEM;
 *	a->v = v;
 */
static inline void *pl_grown(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t c;

	if (n < *cap)
		return p;
	c = *cap ? *cap * 2 : first;
	if (c <= n || c > SIZE_MAX / size)
		return NULL;
	p = realloc(p, c * size);
	if (p)
		*cap = c;
	return p;
}

#endif
