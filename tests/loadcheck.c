// SPDX-License-Identifier: GPL-2.0
/*
 * Test tool: load every program of the given BPF objects through the running
 * kernel's verifier, one program at a time, and say which loaded. A program
 * that needs a feature the kernel lacks (loader/features.h) is skipped and
 * said so; any other refusal fails the run, with libbpf's verifier log on
 * stderr. The kernel matrix (tests/kernels/) runs it on every kernel, so a
 * change only the newest verifier accepts fails there.
 *
 * The packet objects' entry and main programs are loaded as attach
 * --tcp-passive loads them, with every hook analysing TCP (pl_tcp_slots,
 * bpf/tcp.h): the superset of what an attachment runs, the rule-set
 * programs (*_policy*) included.
 *
 *   loadcheck [-j] OBJ.bpf.o[:PROG,PROG...]...
 * With -j each result also says how many instructions the verifier
 * processed ("insns", from its statistics; null when it did not say), to
 * compare builds.
 * Exit: 0 every program loaded or was skipped for a missing feature, 1 not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../loader/features.h"

/*
 * Which programs need which feature; the loader picks the same (loader.c,
 * policy.c, probes/tcp.c): frags programs by their section, the bpf_loop
 * rule walk by name, the tracepoint with err by name.
 */
static int needs(const struct bpf_program *p, enum pl_feature *f)
{
	const char *name = bpf_program__name(p), *sec = bpf_program__section_name(p);
	size_t n = strlen(name);

	if (!strcmp(sec, "xdp.frags")) {
		*f = PL_FEAT_XDP_FRAGS;
		return 1;
	}
	if (n > 7 && !strcmp(name + n - 7, "_policy")) {
		*f = PL_FEAT_BPF_LOOP;
		return 1;
	}
	if (!strcmp(name, "pl_tcp_retransmit")) {
		*f = PL_FEAT_RETRANS_ERR;
		return 1;
	}
	return 0;
}

static int print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

/* The verifier's statistics line of a loaded program's log */
static char vlog[1 << 16];

static long processed(void)
{
	const char *s = strstr(vlog, "processed ");
	long n;

	return s && sscanf(s, "processed %ld insns", &n) == 1 ? n : -1;
}

static int load_one(const char *path, const char *name, bool json, bool *first)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *p, *want = NULL;
	const char *res, *need = NULL;
	enum pl_feature f;
	int err = 0;

	if (!obj) {
		fprintf(stderr, "loadcheck: %s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	bpf_object__for_each_program(p, obj) {
		bool me = !strcmp(bpf_program__name(p), name);

		bpf_program__set_autoload(p, me);
		if (me)
			want = p;
		if (me && json) {
			/* level 4: the statistics only, so the buffer never fills */
			vlog[0] = '\0';
			bpf_program__set_log_buf(p, vlog, sizeof(vlog));
			bpf_program__set_log_level(p, 4);
		}
	}
	pl_obj_kernel(obj);	/* as the loader does */
	pl_obj_set_u32(obj, "pl_tcp_slots", 7);	/* see the top */
	if (needs(want, &f) && !pl_feature(f)) {
		need = pl_feature_info[f].name;
		res = "skipped";
	} else {
		err = bpf_object__load(obj);
		res = err ? "refused" : "loaded";
	}
	if (json) {
		long insns = err || need ? -1 : processed();

		printf("%s{\"object\":\"%s\",\"program\":\"%s\",\"result\":\"%s\",\"needs\":%s%s%s,",
		       *first ? "" : ",", path, name, res, need ? "\"" : "", need ?: "null",
		       need ? "\"" : "");
		if (insns >= 0)
			printf("\"insns\":%ld}", insns);
		else
			printf("\"insns\":null}");
	}
	else
		printf("%-8s %s %s%s%s\n", res, path, name, need ? ": needs " : "", need ?: "");
	*first = false;
	bpf_object__close(obj);
	return err ? -1 : 0;
}

/* @name in the comma-separated @list */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *s = list; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
		if (!strncmp(s, name, n) && (s[n] == ',' || s[n] == '\0'))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	bool json = argc > 1 && !strcmp(argv[1], "-j"), first = true;
	int failed = 0;

	libbpf_set_print(print);
	if (json)
		printf("[");
	for (int i = 1 + json; i < argc; i++) {
		/* OBJ:PROG,PROG: only those programs of OBJ */
		char *only = strchr(argv[i], ':');
		struct bpf_object *obj;
		struct bpf_program *p;
		char names[64][64];
		int n = 0;

		if (only)
			*only++ = '\0';
		obj = bpf_object__open_file(argv[i], NULL);
		if (!obj) {
			fprintf(stderr, "loadcheck: %s: cannot open: %s\n", argv[i], strerror(errno));
			return 1;
		}
		bpf_object__for_each_program(p, obj)
			if (n < 64 && (!only || listed(only, bpf_program__name(p))))
				snprintf(names[n++], sizeof(names[0]), "%s", bpf_program__name(p));
		bpf_object__close(obj);
		if (!n) {
			fprintf(stderr, "loadcheck: %s: no program %s\n", argv[i], only ? only : "");
			return 1;
		}
		for (int k = 0; k < n; k++)
			failed += load_one(argv[i], names[k], json, &first) != 0;
	}
	if (json)
		printf("]\n");
	return failed ? 1 : 0;
}
