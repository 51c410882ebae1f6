// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests: the map table (loader/maps.c) against the packet objects.
 * Every map of pktlens_xdp and pktlens_tc has a row of its type, and the
 * rows agree with each other: what --force keeps and rule sets share is
 * pinned, names are unique. Opens the skeletons only (no root needed).
 * Also the interface names as bpffs names (loader/pins.c).
 */
#include <errno.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "unit.h"
#include "../../loader/loader.h"
#include "pktlens_xdp.skel.h"
#include "pktlens_tc.skel.h"

static void test_objects_match_the_table(void)
{
	struct pktlens_xdp *x = pktlens_xdp__open();
	struct pktlens_tc *t = pktlens_tc__open();
	char why[256] = "";

	CHECK(x && t);
	if (!x || !t)
		goto out;
	CHECK(pl_maps_check(x->obj, PL_OBJ_XDP, why, sizeof(why)) == 0);
	CHECK_STR(why, "");
	CHECK(pl_maps_check(t->obj, PL_OBJ_TC, why, sizeof(why)) == 0);
	CHECK_STR(why, "");
	/* the tc object has no redirect map: checked against the XDP row it fails */
	CHECK(pl_maps_check(x->obj, PL_OBJ_TC, why, sizeof(why)) == -EPROTO);
	CHECK(strstr(why, "redirect_map") || strstr(why, "xdp_chain") || strstr(why, "xdp_skb_chain"));
out:
	pktlens_xdp__destroy(x);
	pktlens_tc__destroy(t);
}

static void test_rows_agree(void)
{
	for (size_t i = 0; i < PL_MID_MAX; i++) {
		const struct pl_map_def *d = &pl_maps[i];

		CHECK(d->name && pl_map_find(d->name) == d && pl_map_id(d) == i);
		CHECK(d->objs && !(d->objs & ~(PL_OBJ_XDP | PL_OBJ_TC)));
		/* kept across --force or shared with rule sets: it must be found again */
		if (d->keep != PL_KEEP_NONE || d->rules == PL_RS_SHARED)
			CHECK(d->pin != PL_PIN_NEVER && d->shared);
		/* a rule set's own maps live with its program only */
		if (d->rules == PL_RS_OWN)
			CHECK(d->pin == PL_PIN_NEVER && !d->shared);
		if (d->pin_skb)
			CHECK(pl_map_find(d->pin_skb) && pl_map_find(d->pin_skb)->pin == PL_PIN_NEVER);
	}
	CHECK(pl_map_find("no_such_map") == NULL);
}

/* bpffs refuses '.': eth0.100 is pinned as eth0%2e100, and read back as itself */
static void test_pin_names(void)
{
	static const char *const names[] = { "eth0", "eth0.100", "a.b.c", ".x", "x.", "p%d.1",
					     "0123456789.abcd", "...............", "%%%" };
	char enc[PL_PIN_NAME_MAX], dec[16], dir[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK(pl_pin_name(enc, sizeof(enc), names[i]) == 0);
		CHECK(!strchr(enc, '.') && !strchr(enc, ':') && !strchr(enc, '/'));
		CHECK(pl_pin_name_ifname(dec, sizeof(dec), enc) == 0);
		CHECK_STR(dec, names[i]);
	}
	pl_pin_name(enc, sizeof(enc), "eth0.100");
	CHECK_STR(enc, "eth0%2e100");
	CHECK(pl_pin_dir(dir, sizeof(dir), 42, "vlan.7") == 0);
	CHECK_STR(dir, PL_PIN_ROOT "/42/vlan%2e7");
	/* too small a buffer is an error, never a cut name */
	CHECK(pl_pin_name(enc, 8, "eth0.100") == -ENAMETOOLONG);
	CHECK(pl_pin_name(enc, 5, "eth0") == 0 && pl_pin_name(enc, 4, "eth0") == -ENAMETOOLONG);
	/* names no interface has, as they could appear in bpffs: not an attachment */
	static const char *const bad[] = { "", "a.b", "tmp:x:1", "x%2", "x%41", "x%2E", "%",
					   "0123456789abcdef" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pl_pin_name_ifname(dec, sizeof(dec), bad[i]) < 0);
}

int main(void)
{
	libbpf_set_print(NULL);
	test_objects_match_the_table();
	test_rows_agree();
	test_pin_names();
	return unit_report("test_maps");
}
