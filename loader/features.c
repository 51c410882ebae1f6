// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel features (loader/features.h), probed in two groups, each on first
 * use. Helpers, tcx and the load flags are asked of the kernel itself: a
 * two-instruction program calling the helper (the verifier names a helper
 * it does not know), a tcx query on the loopback device, a program loaded
 * with the flag. That costs well under a millisecond; parsing the kernel's
 * BTF (/sys/kernel/btf/vmlinux, several megabytes) costs tens, so only a
 * tracepoint's arguments, which nothing else tells, are read from it, and
 * only by the commands that ask for them (the probes). The packet programs
 * get the helpers as a .rodata mask (pl_obj_kernel()), not as CO-RE
 * relocations: libbpf then has no reason to parse the BTF at every load.
 * Unprivileged, nothing can be loaded or queried: the BTF answers instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <pktlens/why.h>

#include "features.h"
#include "loader.h"
#include "xdp_multi.h"
#include "../pcap/cbpf.h"

const struct pl_feature_info pl_feature_info[PL_FEAT_MAX] = {
	[PL_FEAT_TCX] = { "tcx", "6.6", "tc hooks attached as tcx links (pinned, first in line)",
			  "clsact qdisc + cls_bpf filter at priority 1" },
	[PL_FEAT_XDP_FRAGS] = { "xdp-frags", "5.18", "native XDP on multi-buffer (jumbo) frames",
				"native XDP only where a frame fits one buffer (MTU ~3.5k on veth)" },
	[PL_FEAT_XDP_LOAD_BYTES] = { "xdp-load-bytes", "5.18",
				     "samples taken at XDP (bpf_xdp_load_bytes)",
				     "samples taken at tc only (ingress by the XDP policy refused)" },
	[PL_FEAT_BPF_LOOP] = { "bpf-loop", "5.17", "1024 list rules per direction (bpf_loop)",
			       "64 list rules per direction (prefix rules unlimited)" },
	[PL_FEAT_COARSE_CLOCK] = { "coarse-clock", "5.11", "flow timestamps from the coarse clock",
				   "flow timestamps from the precise clock (slower)" },
	[PL_FEAT_XDP_TEST_META] = { "xdp-test-meta", "5.14",
				    "filter run on XDP matches len against the wire length",
				    "filter run on XDP matches len against the captured length" },
	[PL_FEAT_XDP_DISPATCHER] = { "xdp-dispatcher", "5.10",
				     "XDP runs in libxdp's dispatcher beside other XDP programs",
				     "XDP attached alone with a bpf_link (other XDP programs refused)" },
	/* 6.12 lacks it, 6.18 has it */
	[PL_FEAT_RETRANS_ERR] = { "retrans-err", ">6.12",
				  "tcp retrans also sees retransmits that failed to send",
				  "tcp retrans sees retransmits that were sent" },
	[PL_FEAT_DROP_REASON] = { "drop-reason", "5.17", "drops shows why the kernel dropped (reasons)",
				  "drops counts by kernel location only (no reasons)" },
	[PL_FEAT_DROP_RX_SK] = { "drop-rx-sock", "6.11",
				 "a drop on a socket's receive path without a device (TCP's old or "
				 "out-of-window segments) counts in the socket's namespace",
				 "such a drop counts under no namespace (netns 0): drops --netns, "
				 "stats and flows miss it" },
};

static struct {
	bool probed, btf_probed;
	bool have[PL_FEAT_MAX];
	__u32 helpers;		/* PL_HELPER_* the kernel has */
	struct utsname uts;
} F;

static bool enum_has(const struct btf *btf, const char *type, const char *value)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t;
	const struct btf_enum *e;

	if (id < 0)
		return false;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), value))
			return true;
	return false;
}

/* Arguments of tracepoint @tp (its btf_trace_* typedef, less the hidden first), -1 if unknown. */
static int tp_args(const struct btf *btf, const char *tp)
{
	char name[128];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	while (t && (btf_is_typedef(t) || btf_is_ptr(t)))
		t = btf__type_by_id(btf, t->type);
	return t && btf_is_func_proto(t) ? btf_vlen(t) - 1 : -1;
}

/* The kernel's BTF, NULL without (quietly: a kernel without BTF is no error here). */
static struct btf *kernel_btf(void)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct btf *btf = btf__load_vmlinux_btf();

	libbpf_set_print(print);
	return libbpf_get_error(btf) ? NULL : btf;
}

/*
 * 1 if the kernel has helper @id for XDP programs, 0 if not, -errno if it
 * cannot say. The verifier names a helper it does not know ("invalid func",
 * or "unknown func" for one another program type has); any other refusal
 * (this call passes no arguments) means it knows it.
 */
static int helper(enum bpf_func_id id)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = id },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, o, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pl_helper", "GPL", insns, 3, &o);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (errno == EPERM)
		return -EPERM;
	return !strstr(log, "invalid func ") && !strstr(log, "unknown func ");
}

static bool xdp_frags_load(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_flags = BPF_F_XDP_HAS_FRAGS);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pl_frags", "GPL", insns, 2, &o);

	if (fd >= 0) {
		close(fd);
		return true;
	}
	return false;
}

/*
 * PKTLENS_NO_FEATURES=bpf-loop,tcx: act as if the kernel lacked these, so
 * the fallbacks can be tested on a kernel that has everything. Give every
 * command the same list: an attachment made with it is judged by the
 * programs it chose.
 */
static void mask(const char *list)
{
	char buf[256], *save = NULL;

	if (!list)
		return;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (int f = 0; f < PL_FEAT_MAX; f++)
			if (!strcmp(t, pl_feature_info[f].name))
				F.have[f] = false;
}

/*
 * Whether an XDP test run honours the xdp_md it is given (5.14): data 4
 * bytes in, the program returns data - data_meta (older kernels ignore
 * the context: 0).
 */
static bool xdp_test_meta(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, data) },
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, data_meta) },
		{ .code = BPF_ALU64 | BPF_SUB | BPF_X, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_2 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned char pkt[4 + 64] = { 0 };
	struct xdp_md md = { .data = 4, .data_end = sizeof(pkt) };
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .ctx_in = &md, .ctx_size_in = sizeof(md), .repeat = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pl_meta", "GPL", insns, 4, NULL);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_prog_test_run_opts(fd, &t) && t.retval == 4;
	close(fd);
	return ok;
}

/* The helpers of PL_HELPER_*, in the order of their bits: id, and name in enum bpf_func_id */
#define HELPER(n) { BPF_FUNC_##n, "BPF_FUNC_" #n }
static const struct {
	enum bpf_func_id id;
	const char *name;
} helpers[] = {
	HELPER(ktime_get_coarse_ns), HELPER(jiffies64), HELPER(xdp_load_bytes),
	HELPER(xdp_get_buff_len), HELPER(loop),
};
#undef HELPER
_Static_assert(PL_HELPER_ALL == (1U << (sizeof(helpers) / sizeof(helpers[0]))) - 1,
	       "one probe per PL_HELPER_* bit");

/* The features that are a helper: each is had exactly when its helper is */
static const struct {
	enum pl_feature feat;
	__u32 helper;
} helper_feats[] = {
	{ PL_FEAT_XDP_LOAD_BYTES, PL_HELPER_xdp_load_bytes },
	{ PL_FEAT_BPF_LOOP, PL_HELPER_loop },
	{ PL_FEAT_COARSE_CLOCK, PL_HELPER_ktime_get_coarse_ns },
};

/*
 * Whether loopback has a tcx query (6.6): 1, 0 (an older kernel refuses the
 * attach type), -errno if it cannot say.
 */
static int tcx_query(void)
{
	__u32 cnt = 0;

	if (!bpf_prog_query(1, PL_BPF_TCX_INGRESS, 0, NULL, NULL, &cnt))
		return 1;
	return errno == EINVAL ? 0 : -errno;
}

/* Everything but the tracepoints, without the kernel's BTF when the kernel can be asked. */
static void probe(void)
{
	struct btf *btf = NULL;
	int tcx, have[sizeof(helpers) / sizeof(helpers[0])];
	bool asked;

	F.probed = true;
	uname(&F.uts);
	tcx = tcx_query();
	asked = tcx >= 0;
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		asked &= (have[i] = helper(helpers[i].id)) >= 0;
	if (!asked && (btf = kernel_btf())) {
		if (tcx < 0)
			tcx = enum_has(btf, "bpf_attach_type", "BPF_TCX_INGRESS");
		for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
			if (have[i] < 0)
				have[i] = enum_has(btf, "bpf_func_id", helpers[i].name);
	}
	btf__free(btf);
	F.have[PL_FEAT_TCX] = tcx > 0;
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		if (have[i] > 0)
			F.helpers |= 1U << i;
	for (size_t i = 0; i < sizeof(helper_feats) / sizeof(helper_feats[0]); i++)
		F.have[helper_feats[i].feat] = F.helpers & helper_feats[i].helper;
	/* unprivileged, the load is refused whatever the kernel has: frags came with xdp_load_bytes */
	F.have[PL_FEAT_XDP_FRAGS] = xdp_frags_load() ||
				    (errno == EPERM && F.have[PL_FEAT_XDP_LOAD_BYTES]);
	F.have[PL_FEAT_XDP_TEST_META] = xdp_test_meta();
	F.have[PL_FEAT_XDP_DISPATCHER] = pl_xdp_disp_probe();
	mask(getenv("PKTLENS_NO_FEATURES"));
	/* the programs follow the mask too: what the loader thinks missing, they never call */
	for (size_t i = 0; i < sizeof(helper_feats) / sizeof(helper_feats[0]); i++)
		if (!F.have[helper_feats[i].feat])
			F.helpers &= ~helper_feats[i].helper;
}

/* The tracepoints' arguments: only the kernel's BTF has them. */
static void probe_btf(void)
{
	struct btf *btf = kernel_btf();

	F.btf_probed = true;
	F.have[PL_FEAT_RETRANS_ERR] = btf && tp_args(btf, "tcp_retransmit_skb") >= 3;
	F.have[PL_FEAT_DROP_REASON] = btf && tp_args(btf, "kfree_skb") >= 3;
	F.have[PL_FEAT_DROP_RX_SK] = btf && tp_args(btf, "kfree_skb") >= 4;
	btf__free(btf);
	mask(getenv("PKTLENS_NO_FEATURES"));
}

bool pl_tracepoint_btf(const char *tp)
{
	struct btf *btf = kernel_btf();
	bool have = btf && tp_args(btf, tp) >= 0;

	btf__free(btf);
	return have;
}

/* The tracepoint of the first tp_btf program @obj would load that the kernel's BTF lacks */
static const char *tracepoints_missing(const struct bpf_object *obj)
{
	struct btf *btf = kernel_btf();
	struct bpf_program *p;
	const char *miss = NULL;

	bpf_object__for_each_program(p, obj) {
		const char *sec = bpf_program__section_name(p);

		if (!bpf_program__autoload(p) || strncmp(sec, "tp_btf/", 7))
			continue;
		if (!btf || tp_args(btf, sec + 7) < 0) {
			miss = sec + 7;
			break;
		}
	}
	btf__free(btf);
	return miss;
}

int pl_probes_load_why(const struct bpf_object *obj, int err, const char *what, char *why,
		       size_t whylen)
{
	const char *tp = tracepoints_missing(obj);

	if (tp)
		return pl_why(why, whylen, -ENOTSUP, "%s need tracepoint %s, which this kernel's "
			      "BTF (/sys/kernel/btf/vmlinux) does not have", what, tp);
	return pl_why(why, whylen, pl_load_err(err), "loading %s failed: %s%s", what,
		      strerror(-err), err == -EPERM ? " (needs root or CAP_BPF and CAP_PERFMON)" : "");
}

bool pl_feature(enum pl_feature f)
{
	if (!F.probed)
		probe();
	if ((f == PL_FEAT_RETRANS_ERR || f == PL_FEAT_DROP_REASON || f == PL_FEAT_DROP_RX_SK) &&
	    !F.btf_probed)
		probe_btf();
	return f < PL_FEAT_MAX && F.have[f];
}

__u32 pl_kernel_helpers(void)
{
	if (!F.probed)
		probe();
	return F.helpers;
}

/* See features.h */
int pl_obj_set_u32(struct bpf_object *obj, const char *name, __u32 v)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *t;
	const void *init;
	size_t sz = 0;
	void *data;
	int id, err = -ENOENT;

	if (!m || !btf || (id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC)) < 0)
		return -ENOENT;
	init = bpf_map__initial_value(m, &sz);
	if (!init || !(data = malloc(sz)))
		return -ENOMEM;
	memcpy(data, init, sz);
	t = btf__type_by_id(btf, (__u32)id);
	vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (!strcmp(btf__name_by_offset(btf, var->name_off), name)) {
			err = vs->size == sizeof(v) && vs->offset + sizeof(v) <= sz ? 0 : -EINVAL;
			if (!err)
				memcpy((char *)data + vs->offset, &v, sizeof(v));
			break;
		}
	}
	if (!err)
		err = bpf_map__set_initial_value(m, data, sz);
	free(data);
	return err;
}

/* See features.h */
int pl_obj_kernel(struct bpf_object *obj)
{
	return pl_obj_set_u32(obj, "pl_helpers", pl_kernel_helpers());
}

const char *pl_kernel_release(void)
{
	if (!F.probed)
		probe();
	return F.uts.release;
}

bool pl_xdp_frags(int xdp_mode)
{
	return xdp_mode == PL_XDP_NATIVE && pl_feature(PL_FEAT_XDP_FRAGS);
}

bool pl_meta_xdp_frags(const struct pl_meta *m)
{
	return pl_xdp_frags((int)m->xdp_mode) && !pl_xdp_prog_ext(m->xdp_prog_id);
}

__u32 pl_meta_xdp_load_flags(const struct pl_meta *m)
{
	if (m->xdp_mode != PL_XDP_NONE && pl_xdp_prog_ext(m->xdp_prog_id))
		return PL_EBPF_F_NO_ATTACH_TYPE;
	return pl_xdp_frags((int)m->xdp_mode) ? BPF_F_XDP_HAS_FRAGS : 0;
}

bool pl_xdp_linear(void)
{
	return !pl_feature(PL_FEAT_XDP_LOAD_BYTES);
}

const char *pl_feature_needs(enum pl_feature f, char *buf, size_t len)
{
	snprintf(buf, len, "needs Linux %s (this is %s)", pl_feature_info[f].since,
		 pl_kernel_release());
	return buf;
}
