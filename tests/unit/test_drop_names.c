// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests: the names of XDP redirect errors (pl_drop_reason_name()) are the
 * pktlens_xdp_redirect_errors_total label: one name per errno, so no two series
 * of a device share a label set. Every errno without a name was "XDP redirect error".
 */
#include <errno.h>
#include <stdlib.h>

#include "unit.h"
#include "../../probes/drops.h"

int main(void)
{
	enum { N = 600 };	/* past the kernel's own errnos (ENOTSUPP 524, EIOCBQUEUED 529) */
	static char names[N][64];
	char buf[64];
	unsigned same = 0;

	for (unsigned e = 0; e < N; e++)
		snprintf(names[e], sizeof(names[e]), "%s",
			 pl_drop_reason_name(PL_DROP_XDP_REDIRECT, e, buf, sizeof(buf)));
	for (unsigned a = 0; a < N; a++)
		for (unsigned b = a + 1; b < N; b++)
			if (!strcmp(names[a], names[b])) {
				if (!same++)
					fprintf(stderr, "errno %u and %u: both '%s'\n", a, b,
						names[a]);
			}
	CHECK(same == 0);
	CHECK_STR(names[ENETDOWN], "XDP redirect ENETDOWN");
	CHECK_STR(names[524], "XDP redirect error 524");
	return unit_report("test_drop_names");
}
