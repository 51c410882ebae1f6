// SPDX-License-Identifier: GPL-2.0
/* Batched map commands with a per-element fallback (loader/batch.h). */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "batch.h"

#define ENOTSUPP_ 524	/* the kernel's "operation not supported" for missing map ops */

/* Whether the kernel has no batch command for this map (as opposed to a real failure). */
static bool unsupported(int e)
{
	return e == ENOTSUPP_ || e == EOPNOTSUPP || e == EINVAL;
}

int pl_batch_update(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz,
		    __u32 *count, __u64 elem_flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags);
	__u32 n = *count;

	if (!bpf_map_update_batch(fd, keys, vals, count, &opts))
		return 0;
	if (!unsupported(errno))
		return -1;	/* *count were done */
	for (*count = 0; *count < n; (*count)++)
		if (bpf_map_update_elem(fd, (const char *)keys + *count * ksz,
					(const char *)vals + *count * vsz, elem_flags))
			return -1;
	return 0;
}

int pl_batch_delete(int fd, const void *keys, size_t ksz, __u32 n)
{
	__u32 i = 0, done;

	while (i < n) {
		done = n - i;
		if (!bpf_map_delete_batch(fd, (const char *)keys + i * ksz, &done, NULL))
			return 0;
		if (errno == ENOENT) {
			i += done + 1;	/* the kernel stopped at a key that was not there */
			continue;
		}
		if (!unsupported(errno))
			return -1;
		for (; i < n; i++)
			if (bpf_map_delete_elem(fd, (const char *)keys + i * ksz) && errno != ENOENT)
				return -1;
	}
	return 0;
}

int pl_batch_lookup(int fd, void *in_batch, void *out_batch, void *keys, size_t ksz,
		    void *vals, size_t vsz, __u32 *count, bool del)
{
	char prev[PL_BATCH_TOKEN];
	__u32 n = *count, got = 0;
	int err;

	err = del ? bpf_map_lookup_and_delete_batch(fd, in_batch, out_batch, keys, vals, count, NULL) :
		    bpf_map_lookup_batch(fd, in_batch, out_batch, keys, vals, count, NULL);
	if (!err || !unsupported(errno) || ksz > PL_BATCH_TOKEN)
		return err;
	if (in_batch)
		memcpy(prev, in_batch, ksz);
	while (got < n) {
		char *k = (char *)keys + got * ksz;

		if (bpf_map_get_next_key(fd, in_batch ? prev : NULL, k)) {
			*count = got;
			return -1;	/* errno ENOENT: the end */
		}
		memcpy(prev, k, ksz);
		in_batch = prev;
		if (bpf_map_lookup_elem(fd, k, (char *)vals + got * vsz))
			continue;	/* deleted meanwhile */
		/* deleting the key leaves get_next_key() to start over: the rest follows */
		if (del && bpf_map_delete_elem(fd, k)) {
			*count = got;
			return -1;
		}
		got++;
	}
	memcpy(out_batch, prev, ksz);
	*count = got;
	return 0;
}
