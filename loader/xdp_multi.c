// SPDX-License-Identifier: GPL-2.0
/*
 * XDP in libxdp's multi-program dispatcher (loader/xdp_multi.h).
 *
 * libxdp loads a dispatcher (an XDP program with ten global functions
 * prog0..prog9 that call the programs in run-priority order) and links each
 * program to one slot with freplace. A new member means a new dispatcher,
 * swapped in atomically over netlink (XDP_FLAGS_REPLACE) with the others
 * re-linked to it; libxdp serialises this with a lock in its own bpffs
 * directory. pktlens hands libxdp its whole object (pl_xdp_disp_join():
 * the chain's stages share the entry's PROG_ARRAY), and libxdp loads the
 * entry as an extension program (BPF_PROG_TYPE_EXT) against its dispatcher
 * and links it there, live from then on: the rules and chains a re-attach
 * fills in afterwards are not in it yet (docs/RELIABILITY.md). The one-slot
 * stand-in built here only asks whether this kernel takes such a program
 * at all (pl_xdp_disp_probe(): freplace re-targeting, Linux 5.10).
 *
 * An extension program carries no multi-buffer flag (libxdp clears it: the
 * dispatcher has it or not), and a PROG_ARRAY takes programs of one frags
 * flag only, so an attachment in a dispatcher runs the plain "xdp" variant
 * of every program (pl_meta_xdp_frags()); libxdp then loads the dispatcher
 * without multi-buffer support, as it does whenever one member lacks it.
 *
 * Where the kernel refuses the tail-calling entry as a member (Linux 6.12
 * with libxdp 1.3), the loader joins with the object built without tail
 * calls instead (pktlens_xdp_notail); pl_xdp_prog_tail_calls() tells the
 * two apart afterwards by whether the entry uses the chain's PROG_ARRAY.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <pktlens/why.h>
#include <xdp/libxdp.h>

#include "features.h"
#include "loader.h"
#include "xdp_multi.h"

/* The stand-in's function: an extension program must name the function it replaces. */
#define SLOT_FUNC "pl_xdp_slot"
/* How our programs are named in the kernel (pktlens_xdp, pktlens_xdp_skb) */
#define OUR_PREFIX "pktlens_xdp"

/* libxdp's last warning, for our error lines; libxdp prints nothing itself. */
static char xdp_msg[200];

static int xdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	char *nl;

	if (level != LIBXDP_WARN)
		return 0;
	vsnprintf(xdp_msg, sizeof(xdp_msg), fmt, ap);
	if ((nl = strchr(xdp_msg, '\n')))
		*nl = '\0';
	return 0;
}

static void xdp_quiet(void)
{
	libxdp_set_print(xdp_print);
	xdp_msg[0] = '\0';
}

/* " (libxdp: ...)" when libxdp warned, else "" */
static const char *xdp_said(char *buf, size_t len)
{
	if (!xdp_msg[0])
		return "";
	snprintf(buf, len, " (libxdp: %s)", xdp_msg);
	return buf;
}

/*
 * BTF for `int NAME(struct xdp_md *ctx)` functions: the shape freplace
 * matches (argument kinds, the context struct's name, the return type).
 * Loaded into the kernel; @funcs[i] gets the FUNC id of @names[i].
 */
static struct btf *slot_btf(const char *const *names, int n, int *funcs)
{
	struct btf *btf = btf__new_empty();
	int ret, ctx, ptr, proto;

	if (!btf)
		return NULL;
	ret = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	ctx = btf__add_struct(btf, "xdp_md", 0);
	ptr = ctx < 0 ? ctx : btf__add_ptr(btf, ctx);
	proto = ret < 0 || ptr < 0 ? -EINVAL : btf__add_func_proto(btf, ret);
	if (proto < 0 || btf__add_func_param(btf, "ctx", ptr))
		goto err;
	for (int i = 0; i < n; i++)
		if ((funcs[i] = btf__add_func(btf, names[i], BTF_FUNC_GLOBAL, proto)) < 0)
			goto err;
	if (btf__load_into_kernel(btf))
		goto err;
	return btf;
err:
	btf__free(btf);
	return NULL;
}

/* r0 = XDP_PASS; exit, as XDP (@target -1) or as an extension of @target's function @btf_id. */
static int load_pass(const struct btf *btf, int func, int target, int btf_id)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct bpf_func_info fi = { .insn_off = 0, .type_id = (__u32)func };
	LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_btf_fd = btf__fd(btf), .func_info = &fi,
		    .func_info_cnt = 1, .func_info_rec_size = sizeof(fi));

	if (target >= 0) {
		o.attach_prog_fd = target;
		o.attach_btf_id = btf_id;
	}
	return bpf_prog_load(target >= 0 ? BPF_PROG_TYPE_EXT : BPF_PROG_TYPE_XDP,
			     target >= 0 ? "pl_ext" : "pl_slot", "GPL", insns, 2, &o);
}

bool pl_xdp_disp_probe(void)
{
	const char *names[] = { SLOT_FUNC, "pl_ext" };
	int funcs[2], a = -1, b = -1, ext = -1, link = -1;
	struct btf *btf = slot_btf(names, 2, funcs);
	bool ok = false;

	if (!btf)
		return false;
	a = load_pass(btf, funcs[0], -1, 0);
	b = load_pass(btf, funcs[0], -1, 0);
	if (a >= 0 && b >= 0)
		ext = load_pass(btf, funcs[1], a, funcs[0]);
	if (ext >= 0) {
		/* linked to another program than it was loaded for: what libxdp does */
		LIBBPF_OPTS(bpf_link_create_opts, lo, .target_btf_id = funcs[0]);

		link = bpf_link_create(ext, b, 0, &lo);
		ok = link >= 0;
	}
	for (int *fd = (int[]){ link, ext, b, a }, i = 0; i < 4; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	btf__free(btf);
	return ok;
}

static void prog_of(struct xdp_program *p, struct pl_xdp_prog *out)
{
	memset(out, 0, sizeof(*out));
	out->id = xdp_program__id(p);
	out->prio = xdp_program__run_prio(p);
	snprintf(out->name, sizeof(out->name), "%s", xdp_program__name(p) ?: "");
	for (unsigned act = XDP_ABORTED; act <= XDP_REDIRECT; act++)
		if (xdp_program__chain_call_enabled(p, act))
			out->chain |= 1U << act;
}

void pl_xdp_prog_info(__u32 id, struct pl_xdp_prog *out)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	memset(out, 0, sizeof(*out));
	out->id = id;
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		snprintf(out->name, sizeof(out->name), "%s", info.name);
	if (fd >= 0)
		close(fd);
}

static void libxdp_dir(char *buf, size_t len);

/*
 * libxdp keeps a dispatcher's pins in its directory's dispatch-IFINDEX-ID,
 * IFINDEX its interface's when it was attached. An interface moved to
 * another namespace may get another index there: libxdp then finds no pins
 * for the dispatcher @id that runs on @ifindex, takes it for a program of
 * its own, and its members can be neither listed nor taken out (a detach in
 * the namespace it left said "detached" and left pktlens's program running
 * there). The pins follow the dispatcher to @ifindex, under libxdp's lock.
 */
static void disp_pins_follow(int ifindex, __u32 id)
{
	char root[512], want[600], from[1100];
	struct dirent *de;
	int lock;
	DIR *d;

	libxdp_dir(root, sizeof(root));
	snprintf(want, sizeof(want), "%s/dispatch-%d-%u", root, ifindex, id);
	if (!access(want, F_OK))
		return;
	lock = open(root, O_DIRECTORY | O_CLOEXEC);
	if (lock < 0)
		return;
	d = flock(lock, LOCK_EX) ? NULL : opendir(root);
	while (d && (de = readdir(d))) {
		__u32 did;
		int ifx;

		if (sscanf(de->d_name, "dispatch-%d-%u", &ifx, &did) != 2 || did != id ||
		    ifx == ifindex)
			continue;
		snprintf(from, sizeof(from), "%s/%s", root, de->d_name);
		rename(from, want);	/* else as before: libxdp finds no pins */
		break;
	}
	if (d)
		closedir(d);
	close(lock);
}

int pl_xdp_disp_read(int ifindex, struct pl_xdp_disp *d)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_multiprog *mp;
	struct xdp_program *p = NULL;
	int err;

	memset(d, 0, sizeof(*d));
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err)
		return err;
	if (!q.skb_prog_id && !q.drv_prog_id)
		return 0;	/* nothing (or offloaded only: not ours to share) */
	d->mode = q.skb_prog_id ? PL_XDP_SKB : PL_XDP_NATIVE;
	disp_pins_follow(ifindex, q.skb_prog_id ?: q.drv_prog_id);
	xdp_quiet();
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	err = libxdp_get_error(mp);
	if (err || !mp || xdp_multiprog__is_legacy(mp)) {
		/* not a dispatcher (or its pins are unreadable): a program on its own */
		pl_xdp_prog_info(q.skb_prog_id ?: q.drv_prog_id, &d->alone);
		if (!err)
			xdp_multiprog__close(mp);
		return 0;
	}
	d->id = xdp_program__id(xdp_multiprog__main_prog(mp));
	while ((p = xdp_multiprog__next_prog(p, mp)) && d->n < PL_XDP_DISP_MAX)
		prog_of(p, &d->prog[d->n++]);
	xdp_multiprog__close(mp);
	return 0;
}

bool pl_xdp_disp_runs(int ifindex, __u32 id, __u32 *prio)
{
	struct pl_xdp_disp d;

	if (!pl_xdp_prog_ext(id) || pl_xdp_disp_read(ifindex, &d))
		return false;
	for (size_t i = 0; i < d.n; i++)
		if (d.prog[i].id == id) {
			if (prio)
				*prio = d.prog[i].prio;
			return true;
		}
	return false;
}

static void prog_id_of(int fd, __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		*id = info.id;
}

bool pl_xdp_prog_ext(__u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = id ? bpf_prog_get_fd_by_id(id) : -1;
	bool ext;

	if (fd < 0)
		return false;
	ext = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_PROG_TYPE_EXT;
	close(fd);
	return ext;
}

/* Whether an attachment of this namespace records program @id on @ifindex. */
static bool recorded(int ifindex, __u32 id)
{
	struct pl_attachment *a = NULL;
	size_t n = 0;
	bool hit = false;

	if (pl_attachments_here(NULL, &a, &n))
		return true;	/* cannot tell: leave it */
	for (size_t i = 0; i < n && !hit; i++)
		hit = a[i].meta_ok && (int)a[i].meta.ifindex == ifindex && a[i].meta.xdp_prog_id == id;
	free(a);
	return hit;
}

int pl_xdp_disp_check(int ifindex, const char *ifname, int mode, __u32 ours, bool force,
		      bool *replaced, char *why, size_t whylen)
{
	struct pl_xdp_disp d;
	int err = pl_xdp_disp_read(ifindex, &d);
	char moved[PL_WHY_LEN * 2];
	size_t stay = 0;

	if (err)
		return pl_why(why, whylen, err, "%s: cannot query XDP state: %s", ifname,
			      strerror(-err));
	if (d.alone.id && d.alone.id != ours) {
		if (!force || !strcmp(d.alone.name, PL_CAP_XDP_PROG))
			return pl_foreign_xdp_why(ifname, d.alone.id, pl_xdp_mode_name(d.mode),
						  d.alone.name, ", not in a libxdp dispatcher", why,
						  whylen);
		err = bpf_xdp_detach(ifindex, d.mode == PL_XDP_SKB ? XDP_FLAGS_SKB_MODE :
				     XDP_FLAGS_DRV_MODE, NULL);
		if (err)
			return pl_why(why, whylen, err, "%s: cannot remove XDP program id %u: %s%s",
				      ifname, d.alone.id, strerror(-err), err == -EBUSY ?
				      " (it is owned by a bpf_link; detach it with its owner)" : "");
		*replaced = true;
		return 0;
	}
	if (!d.id)
		return 0;
	/* pktlens's own, of another namespace's attachment: the interface moved here from there */
	for (size_t i = 0; i < d.n; i++)
		if (!strncmp(d.prog[i].name, OUR_PREFIX, strlen(OUR_PREFIX)) &&
		    d.prog[i].id != ours && !recorded(ifindex, d.prog[i].id) &&
		    pl_xdp_moved_why(d.prog[i].id, moved, sizeof(moved)))
			return pl_why(why, whylen, -EBUSY, "%s: %s", ifname, moved);
	/* pktlens's own alone there (the program replaced, what a killed attach left): it leaves
	 * first (join_xdp()), the dispatcher with it, and the new one joins in its own mode */
	for (size_t i = 0; i < d.n && d.mode != mode; i++)
		if (d.prog[i].id != ours && (strncmp(d.prog[i].name, OUR_PREFIX, strlen(OUR_PREFIX)) ||
					     recorded(ifindex, d.prog[i].id)))
			return pl_why(why, whylen, -EBUSY, "%s: the libxdp dispatcher there runs in %s "
				      "mode (%zu programs): attach with --xdp %s to run beside them",
				      ifname, pl_xdp_mode_name(d.mode), d.n, pl_xdp_mode_name(d.mode));
	/* a pktlens attach killed after joining: its program, no attachment's */
	for (size_t i = 0; i < d.n; i++) {
		if (d.prog[i].id != ours)
			stay++;
		if (strncmp(d.prog[i].name, OUR_PREFIX, strlen(OUR_PREFIX)) ||
		    d.prog[i].id == ours || recorded(ifindex, d.prog[i].id))
			continue;
		err = pl_xdp_disp_leave(ifindex, ifname, d.prog[i].id, why, whylen);
		if (err)
			return err;
		stay--;
	}
	/* said before the old program leaves: libxdp would refuse the join with E2BIG */
	if (stay >= PL_XDP_DISP_MAX)
		return pl_why(why, whylen, -E2BIG, "%s: libxdp's dispatcher there is full: it runs %zu "
			      "programs, the most it takes (xdp-loader status %s lists them)", ifname,
			      stay, ifname);
	return 0;
}

int pl_xdp_disp_join(struct bpf_object *obj, struct bpf_program *prog, struct bpf_program *next,
		     int ifindex, const char *ifname, int mode, __u32 prio, bool *refused, char *why,
		     size_t whylen)
{
	DECLARE_LIBXDP_OPTS(xdp_program_opts, o, .obj = obj, .prog_name = bpf_program__name(prog));
	struct xdp_program *p;
	char said[240];
	__u32 id = 0;
	int err;

	*refused = false;
	xdp_quiet();
	/* an extension program has no attach type: its tail calls' targets neither */
	err = bpf_program__set_expected_attach_type(next, 0);
	p = err ? NULL : xdp_program__create(&o);
	if (!err)
		err = libxdp_get_error(p);
	if (err)
		return pl_why(why, whylen, err, "%s: libxdp cannot take the XDP program: %s%s",
			      ifname, strerror(-err), xdp_said(said, sizeof(said)));
	/* what a policy drops, redirects or sends back ends the chain; a pass goes on */
	err = xdp_program__set_run_prio(p, prio);
	for (unsigned act = XDP_ABORTED; act <= XDP_REDIRECT && !err; act++)
		err = xdp_program__set_chain_call_enabled(p, act, act == XDP_PASS);
	if (!err)
		err = xdp_program__attach(p, ifindex, mode == PL_XDP_SKB ? XDP_MODE_SKB :
					  XDP_MODE_NATIVE, 0);
	xdp_program__close(p);
	if (err) {
		/*
		 * The kernel refused the program itself as a dispatcher's member
		 * (not loaded: the verifier's EINVAL or EACCES, freplace's EPERM,
		 * which libxdp turns into EOPNOTSUPP like a program too large); or
		 * the driver refused a dispatcher without multi-buffer support for
		 * its MTU (ERANGE): alone, pktlens can have frags. Anything else (a
		 * full dispatcher's E2BIG, maps that found no memory, EBUSY) is no
		 * reason to attach alone: attaching alone removes the dispatcher.
		 */
		*refused = err == -ERANGE ||
			   (bpf_program__fd(prog) < 0 && (err == -EINVAL || err == -EACCES ||
							  err == -EPERM || err == -EOPNOTSUPP));
		/*
		 * EOPNOTSUPP for a program the kernel took: the driver's, as the
		 * link attach of a program alone says it (loader.c: attach_xdp())
		 */
		return pl_why(why, whylen, pl_load_err(err), "%s: cannot join the libxdp dispatcher "
			      "in %s mode: %s%s%s", ifname, pl_xdp_mode_name(mode), strerror(-err),
			      err == -ERANGE ? ", an MTU over one page needs multi-buffer XDP, which "
			      "the dispatcher runs without" : err == -E2BIG ? " (the dispatcher is "
			      "full: it runs ten programs at most)" : err == -EOPNOTSUPP &&
			      !*refused && mode == PL_XDP_NATIVE ? PL_XDP_NO_NATIVE_HINT : "",
			      xdp_said(said, sizeof(said)));
	}
	prog_id_of(bpf_program__fd(prog), &id);
	if (!pl_xdp_prog_ext(id)) {
		/* libxdp attached it alone over netlink: not what was asked */
		bpf_xdp_detach(ifindex, mode == PL_XDP_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
			       NULL);
		*refused = true;
		return pl_why(why, whylen, -EOPNOTSUPP, "%s: libxdp did not use its dispatcher",
			      ifname);
	}
	return 0;
}

size_t pl_xdp_disp_others(int ifindex, char *names, size_t len)
{
	struct pl_xdp_disp d;
	size_t n = 0, at = 0;

	if (len)
		names[0] = '\0';
	if (pl_xdp_disp_read(ifindex, &d) || !d.id)
		return 0;
	for (size_t i = 0; i < d.n; i++) {
		if (!strncmp(d.prog[i].name, OUR_PREFIX, strlen(OUR_PREFIX)))
			continue;
		if (at < len)
			at += (size_t)snprintf(names + at, len - at, "%s%s id %u", n ? ", " : "",
					       d.prog[i].name, d.prog[i].id);
		n++;
	}
	return n;
}

int pl_xdp_disp_leave(int ifindex, const char *ifname, __u32 id, char *why, size_t whylen)
{
	struct xdp_program *p;
	struct pl_xdp_disp d;
	bool in = false;
	char said[240];
	int err;

	if (!pl_xdp_prog_ext(id) || pl_xdp_disp_read(ifindex, &d))
		return 0;
	for (size_t i = 0; i < d.n; i++)
		in |= d.prog[i].id == id;
	if (!in)
		return 0;
	xdp_quiet();
	p = xdp_program__from_id(id);
	err = libxdp_get_error(p);
	if (!err) {
		/* in its mode: libxdp would swap the dispatcher in another one, and fail */
		err = xdp_program__detach(p, ifindex, d.mode == PL_XDP_SKB ? XDP_MODE_SKB :
					  XDP_MODE_NATIVE, 0);
		xdp_program__close(p);
	}
	return err ? pl_why(why, whylen, err, "%s: cannot take XDP program %u out of the libxdp "
			    "dispatcher: %s%s", ifname, id, strerror(-err),
			    xdp_said(said, sizeof(said))) : 0;
}

bool pl_xdp_prog_tail_calls(__u32 id, int chain_fd)
{
	struct bpf_prog_info info = {};
	struct bpf_map_info mi = {};
	__u32 len = sizeof(info), mlen = sizeof(mi), ids[64];
	int fd;
	bool uses = true;	/* cannot tell: as the entry always did */

	if (!id || chain_fd < 0 || bpf_obj_get_info_by_fd(chain_fd, &mi, &mlen))
		return true;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return true;
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.nr_map_ids <= sizeof(ids) / sizeof(ids[0])) {
		uses = false;
		for (__u32 i = 0; i < info.nr_map_ids; i++)
			uses |= ids[i] == mi.id;
	}
	close(fd);
	return uses;
}

int pl_xdp_prog_map_fd(__u32 id, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64];
	int fd = id ? bpf_prog_get_fd_by_id(id) : -1, mfd = -ENOENT;

	if (fd < 0)
		return -ENOENT;
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.nr_map_ids <= sizeof(ids) / sizeof(ids[0])) {
		for (__u32 i = 0; i < info.nr_map_ids && mfd == -ENOENT; i++) {
			struct bpf_map_info mi = {};
			__u32 mlen = sizeof(mi);
			int m = bpf_map_get_fd_by_id(ids[i]);

			if (m < 0)
				continue;
			if (!bpf_obj_get_info_by_fd(m, &mi, &mlen) && !strcmp(mi.name, name))
				mfd = m;
			else
				close(m);
		}
	}
	close(fd);
	return mfd;
}

int pl_xdp_no_tail_why(const char *what, char *why, size_t whylen)
{
	/* the attachment's state, not the input: a runtime failure (exit 1) */
	return pl_why(why, whylen, -EBUSY, "%s cannot run on XDP here: it needs a tail call, and "
		      "pktlens's XDP program runs in libxdp's dispatcher without tail calls ("
		      PL_XDP_NO_TAIL_WHY "); attach XDP alone (no --xdp-priority, no other XDP "
		      "program there: a bpf_link), use a newer libxdp, or the tc hooks (--xdp none)",
		      what);
}

/* libxdp's bpffs directory, where libxdp finds it (LIBXDP_BPFFS, else /sys/fs/bpf) */
static void libxdp_dir(char *buf, size_t len)
{
	const char *env = secure_getenv(XDP_BPFFS_ENVVAR);

	snprintf(buf, len, "%s/xdp", env && *env ? env : "/sys/fs/bpf");
}

/*
 * Programs pinned in libxdp's dispatcher directory @path other than @id
 * (its "progN-prog" pins); @mine: the "progN" of @id's pins ("" if none).
 */
static int disp_members(const char *path, __u32 id, char *mine, size_t len)
{
	char file[1200];
	struct dirent *de;
	int others = 0;
	DIR *d = opendir(path);

	mine[0] = '\0';
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		__u32 prog = 0;
		int fd;

		if (l < 5 || strcmp(de->d_name + l - 5, "-prog"))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		fd = bpf_obj_get(file);
		prog_id_of(fd, &prog);
		if (fd >= 0)
			close(fd);
		if (prog == id && l - 5 < len)
			snprintf(mine, len, "%.*s", (int)(l - 5), de->d_name);
		else
			others++;
	}
	if (d)
		closedir(d);
	return others;
}

/*
 * libxdp's directory dispatch-IFINDEX-ID whose progN-prog pins hold program
 * @id: its name into @name, the dispatcher's id into *@disp. -ENOENT: none.
 */
static int disp_dir_of(__u32 id, char *name, size_t len, __u32 *disp)
{
	char root[512], path[1024], mine[256];
	int found = -ENOENT;
	struct dirent *de;
	DIR *d;

	libxdp_dir(root, sizeof(root));
	d = opendir(root);
	if (!d)
		return -ENOENT;
	while (found && (de = readdir(d))) {
		__u32 did;
		int ifx;

		if (sscanf(de->d_name, "dispatch-%d-%u", &ifx, &did) != 2)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		disp_members(path, id, mine, sizeof(mine));
		if (!mine[0])
			continue;
		snprintf(name, len, "%s", de->d_name);
		*disp = did;
		found = 0;
	}
	closedir(d);
	return found;
}

struct disp_find {
	__u32 disp;		/* the dispatcher's program id */
	struct pl_xdp_where w;
};

/* In this thread's namespace: the interface dispatcher f->disp runs on (1), or none (0) */
static int disp_runs_here(void *arg)
{
	struct disp_find *f = arg;
	struct pl_link_info *li = NULL;
	size_t n = 0;
	int hit = 0;

	if (pl_links(&li, &n))
		return 0;
	for (size_t i = 0; i < n && !hit; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);

		if (bpf_xdp_query(li[i].ifindex, 0, &q) ||
		    (q.skb_prog_id != f->disp && q.drv_prog_id != f->disp))
			continue;
		f->w.ifindex = li[i].ifindex;
		snprintf(f->w.ifname, sizeof(f->w.ifname), "%s", li[i].ifname);
		hit = 1;
	}
	free(li);
	return hit;
}

int pl_xdp_disp_where(__u32 id, struct pl_xdp_where *w)
{
	struct disp_find f = { 0 };
	char name[300];
	uint64_t ino = 0;
	int ret;

	if (disp_dir_of(id, name, sizeof(name), &f.disp))
		return -ENOENT;
	ret = pl_netns_find(disp_runs_here, &f, &ino);
	if (ret <= 0)
		return ret;
	*w = f.w;
	w->netns = ino;
	return 1;
}

int pl_xdp_disp_drop(__u32 id, const char *ifname, char *why, size_t whylen)
{
	char root[512], name[300], path[820], file[1200], mine[256];
	struct dirent *de;
	__u32 disp;
	int lock, err = 0, others;
	DIR *d;

	libxdp_dir(root, sizeof(root));
	/* libxdp's lock: no libxdp call changes its pins meanwhile */
	lock = open(root, O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX)) {
		err = -errno;
		if (lock >= 0)
			close(lock);
		return err == -ENOENT ? 0 : pl_why(why, whylen, err, "%s: cannot lock libxdp's "
						   "directory %s: %s", ifname, root, strerror(-err));
	}
	if (disp_dir_of(id, name, sizeof(name), &disp)) {
		close(lock);
		return 0;	/* gone meanwhile */
	}
	snprintf(path, sizeof(path), "%s/%s", root, name);
	/*
	 * Other programs' pins there: the interface may live on in a namespace
	 * nothing lets us look into, their dispatcher with it. Only ours go (its
	 * freplace link and program: the dispatcher's slot falls back to its stub).
	 */
	others = disp_members(path, id, mine, sizeof(mine));
	d = opendir(path);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    (others && (strncmp(de->d_name, mine, strlen(mine)) ||
				de->d_name[strlen(mine)] != '-')))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if (unlink(file) && !err)
			err = -errno;
	}
	if (!d)
		err = -errno;
	else
		closedir(d);
	if (!err && !others && rmdir(path))
		err = -errno;
	close(lock);
	return err ? pl_why(why, whylen, err, "%s: cannot remove %s, libxdp's pins of the dispatcher "
			    "its XDP program ran in: %s", ifname, path, strerror(-err)) : 0;
}
