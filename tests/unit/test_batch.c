// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests: batched deletes (loader/batch.c) against real maps. A key that
 * is not there stops the kernel's batch; pl_batch_delete() goes on past it,
 * and deletes exactly the keys it was given, in a hash (batch command) and in
 * an LPM trie (the batch command where the kernel has one for it, else one
 * element at a time). Needs the bpf syscall (root): without it, nothing is
 * checked and it says so.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "unit.h"
#include "../../loader/batch.h"

static bool has(int fd, const void *key)
{
	__u32 v;

	return !bpf_map_lookup_elem(fd, key, &v);
}

static int count(int fd, size_t ksz)
{
	char k[16], next[16];
	int n = 0;

	for (void *prev = NULL; !bpf_map_get_next_key(fd, prev, next); prev = k, n++)
		memcpy(k, next, ksz);
	return n;
}

static void test_hash(int fd)
{
	const __u32 gone[] = { 1, 500, 2, 3, 600, 601, 4, 100 }, missing[] = { 700, 701 };
	__u32 v = 7;

	for (__u32 k = 1; k <= 100; k++)
		CHECK(!bpf_map_update_elem(fd, &k, &v, BPF_ANY));
	CHECK(pl_batch_delete(fd, gone, sizeof(gone[0]), 0) == 0 && count(fd, 4) == 100);
	CHECK(pl_batch_delete(fd, missing, sizeof(missing[0]), 2) == 0 && count(fd, 4) == 100);
	CHECK(pl_batch_delete(fd, gone, sizeof(gone[0]), sizeof(gone) / sizeof(gone[0])) == 0);
	CHECK(count(fd, 4) == 95);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		CHECK(!has(fd, &gone[i]));
	CHECK(has(fd, &(__u32){ 5 }) && has(fd, &(__u32){ 99 }));
	/* again: every key is missing now, still no error and nothing else goes */
	CHECK(pl_batch_delete(fd, gone, sizeof(gone[0]), sizeof(gone) / sizeof(gone[0])) == 0);
	CHECK(count(fd, 4) == 95);
}

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

static void test_lpm(int fd)
{
	const struct lpm_key in[] = { { 24, { 10, 0, 0, 0 } }, { 16, { 11, 0, 0, 0 } },
				      { 32, { 12, 0, 0, 1 } } };
	const struct lpm_key gone[] = { { 24, { 10, 0, 0, 0 } }, { 8, { 13, 0, 0, 0 } },
					{ 32, { 12, 0, 0, 1 } } };
	__u32 v = 1;

	for (size_t i = 0; i < 3; i++)
		CHECK(!bpf_map_update_elem(fd, &in[i], &v, BPF_ANY));
	CHECK(pl_batch_delete(fd, gone, sizeof(gone[0]), 3) == 0);
	CHECK(count(fd, sizeof(struct lpm_key)) == 1);
	CHECK(has(fd, &in[1]) && !has(fd, &in[0]) && !has(fd, &in[2]));
}

int main(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	int hash, lpm;

	libbpf_set_print(NULL);
	hash = bpf_map_create(BPF_MAP_TYPE_HASH, "pl_test_del", 4, 4, 1024, NULL);
	lpm = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "pl_test_lpm", sizeof(struct lpm_key), 4, 16, &o);
	if (hash < 0 && errno == EPERM) {
		printf("test_batch: skipped, no bpf syscall (not root)\n");
		return 0;
	}
	CHECK(hash >= 0 && lpm >= 0);
	if (hash >= 0)
		test_hash(hash);
	if (lpm >= 0)
		test_lpm(lpm);
	errno = 0;
	CHECK(pl_batch_delete(-1, &(__u32){ 1 }, 4, 1) == -1 && errno == EBADF);
	close(hash);
	close(lpm);
	return unit_report("test_batch");
}
