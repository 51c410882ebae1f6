// SPDX-License-Identifier: GPL-2.0
/* Unit tests: the size buckets the BPF programs count frames in (bpf/size.h), for every length. */
#include "unit.h"
#include "../../bpf/size.h"

/* RFC 2819 etherStatsPkts* upper bounds, extended for jumbo frames (enum pl_rmon) */
static unsigned rmon_def(unsigned len)
{
	static const unsigned upper[] = { 64, 127, 255, 511, 1023, 1518, 9216 };
	unsigned i;

	for (i = 0; i < sizeof(upper) / sizeof(upper[0]); i++)
		if (len <= upper[i])
			return i;
	return PL_RMON_OVER_9216;
}

/* floor(log2(len)), 0 for 0 and 1, at most PL_LOG2_MAX - 1 */
static unsigned log2_def(unsigned len)
{
	unsigned k = 0;

	while (k + 1 < PL_LOG2_MAX && len >> (k + 1))
		k++;
	return k;
}

int main(void)
{
	unsigned len, bad_fn = 0, bad_tab = 0;
	static const unsigned edges[] = { 0xfffffu, 0x7fffffffu, 0xffffffffu };

	for (len = 0; len < 300000; len++) {
		if (pl_rmon_bucket(len) != rmon_def(len) || pl_log2_bucket(len) != log2_def(len))
			bad_fn++;
		if (len < PL_SIZE_TAB && (pl_size_tab[len] >> 4 != rmon_def(len) ||
					  (pl_size_tab[len] & 15) != log2_def(len)))
			bad_tab++;
	}
	CHECK(bad_fn == 0);
	CHECK(bad_tab == 0);
	for (len = 0; len < sizeof(edges) / sizeof(edges[0]); len++)
		CHECK(pl_rmon_bucket(edges[len]) == PL_RMON_OVER_9216 &&
		      pl_log2_bucket(edges[len]) == PL_LOG2_MAX - 1);
	/* the table's byte: rmon in the high nibble, log2 in the low one, both in range */
	CHECK(pl_size_tab[PL_SIZE_TAB - 1] >> 4 < PL_RMON_MAX && (pl_size_tab[PL_SIZE_TAB - 1] & 15) < PL_LOG2_MAX);
	return unit_report("test_size");
}
