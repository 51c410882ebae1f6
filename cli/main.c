// SPDX-License-Identifier: GPL-2.0
/* pktlens: XDP/tc packet analytics and filtering. `pktlens OBJECT ...` */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "opt.h"
#include "util.h"
#include "../loader/features.h"
#include "../loader/loader.h"
#include "../export/json.h"

#define PKTLENS_VERSION "0.1.0"

const struct pl_cmd *const pl_cmds[] = {
	&pl_cmd_attach, &pl_cmd_detach, &pl_cmd_list, &pl_cmd_stats, &pl_cmd_flows, &pl_cmd_filter,
	&pl_cmd_policy, &pl_cmd_sample, &pl_cmd_tcp, &pl_cmd_drops, &pl_cmd_export, &pl_cmd_top,
	&pl_cmd_apply, &pl_cmd_daemon, NULL,
};

static void usage(FILE *f)
{
	pl_cmd_usage(f, pl_cmds);
	fprintf(f, "\nGlobal options:\n"
		   "  -n, --netns NETNS  run in network namespace NETNS (a name in /run/netns, a path, or\n"
		   "                     the PID of a process in it;\n"
		   "                     also --netns=NETNS)\n"
		   "  -j, --json         print JSON\n"
		   "  -p, --pretty       pretty-print JSON (implies -j)\n"
		   "  -h, --help         this help; `pktlens OBJECT --help` for each command\n"
		   "  -V, --version      print the version\n"
		   "\nOBJECT may be shortened while it names one command: `pktlens pol li`.\n");
}

/*
 * Enter NETNS's network namespace only (not its mount namespace: bpffs pins
 * stay ours). Errors name the command @cmd.
 */
static int enter_netns(const char *cmd, const char *ns)
{
	char path[4096];
	int fd, err = pl_netns_resolve(ns, path, sizeof(path));

	if (err == -ENAMETOOLONG) {
		pl_err("%s: netns: name longer than %d bytes", cmd,
		       strchr(ns, '/') ? (int)sizeof(path) - 1 : NAME_MAX);
		return PL_EXIT_USAGE;
	}
	if (err) {
		pl_err("%s: netns '%s': not a namespace name", cmd, ns);
		return PL_EXIT_USAGE;
	}
	fd = pl_netns_open_file(path);
	if (fd == -EINVAL) {
		pl_err("%s: netns '%s': not a network namespace", cmd, ns);
		return PL_EXIT_USAGE;
	}
	if (fd < 0) {
		pl_err("%s: netns '%s': %s", cmd, ns, strerror(-fd));
		return PL_EXIT_CODE(fd, ENOENT);
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = errno;
		pl_err("%s: netns '%s': setns: %s%s", cmd, ns, strerror(err),
		       err == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	}
	close(fd);
	return PL_EXIT_CODE(-err, EINVAL);
}

/* Before a command runs: -n NETNS, with errors naming the command */
static int enter(const char *name)
{
	int ret = pl_g.netns ? enter_netns(name, pl_g.netns) : PL_EXIT_OK;

	/* what a `sample` killed with -9 left on an interface it had not attached */
	if (!ret)
		pl_cap_gc();
	return ret;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* PKTLENS_DEBUG: libbpf's warnings and debug lines (its info lines are noise) */
	if (level != LIBBPF_INFO && getenv("PKTLENS_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* The version, and what the running kernel lets pktlens do (loader/features.h). */
static void print_version(void)
{
	struct jw w;

	if (!pl_g.json) {
		printf("pktlens %s\nkernel %s:\n", PKTLENS_VERSION, pl_kernel_release());
		for (int f = 0; f < PL_FEAT_MAX; f++) {
			const struct pl_feature_info *fi = &pl_feature_info[f];
			bool have = pl_feature(f);

			printf("  %-15s %-3s (Linux %s) %s\n", fi->name, have ? "yes" : "no", fi->since,
			       have ? fi->what : fi->without);
		}
		return;
	}
	jw_init(&w, stdout, pl_g.pretty);
	jw_obj_open(&w);
	jw_str_field(&w, "version", PKTLENS_VERSION);
	jw_str_field(&w, "kernel", pl_kernel_release());
	jw_key(&w, "features");
	jw_obj_open(&w);
	for (int f = 0; f < PL_FEAT_MAX; f++) {
		jw_key(&w, pl_feature_info[f].name);
		jw_obj_open(&w);
		jw_bool_field(&w, "available", pl_feature(f));
		jw_str_field(&w, "since", pl_feature_info[f].since);
		jw_str_field(&w, "with", pl_feature_info[f].what);
		jw_str_field(&w, "without", pl_feature_info[f].without);
		jw_obj_close(&w);
	}
	jw_obj_close(&w);
	jw_obj_close(&w);
	jw_end(&w);
}

static int run(int argc, char **argv)
{
	static const struct option longopts[] = {
		/* long ones above 255: an error names the word given, not its short form */
		{ "json", no_argument, NULL, PL_OPT_LONG + 'j' },
		{ "pretty", no_argument, NULL, PL_OPT_LONG + 'p' },
		{ "netns", required_argument, NULL, PL_OPT_LONG + 'n' },
		{ "help", no_argument, NULL, PL_OPT_LONG + 'h' },
		{ "version", no_argument, NULL, PL_OPT_LONG + 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool version = false;
	int i, n, opt;

	libbpf_set_print(libbpf_quiet);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* global options come before OBJECT, in getopt's forms as every command's (-jp, -nNS, --) */
	pl_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+:jpn:hV", longopts, NULL)) != -1) {
		const char *a = argv[optind - 1];
		char name[8];

		if (optopt && optopt < 256) {	/* a short one, maybe in a bundle */
			snprintf(name, sizeof(name), "-%c", optopt);
			a = name;
		}
		switch (opt >= PL_OPT_LONG ? opt - PL_OPT_LONG : opt) {
		case 'p':
			pl_g.pretty = true;
			/* fall through */
		case 'j':
			pl_g.json = true;
			break;
		case 'n':
			if (!*optarg) {
				pl_err("option '--netns' needs a network namespace");
				return PL_EXIT_USAGE;
			}
			/* as a command's options: a second one would silently win */
			if (pl_g.netns) {
				pl_err("%s given twice (see pktlens --help)", opt >= PL_OPT_LONG ? "--netns" : "-n");
				return PL_EXIT_USAGE;
			}
			pl_g.netns = optarg;
			break;
		case 'h':
			usage(stdout);
			return PL_EXIT_OK;
		case 'V':
			version = true;
			break;
		case ':':
			pl_err("option '%s' needs a network namespace", a);
			return PL_EXIT_USAGE;
		default:
			n = pl_opt_no_value(opt, argv[optind - 1]);
			if (n)
				pl_err("%.*s takes no value (see pktlens --help)", n, argv[optind - 1]);
			else
				pl_err("unknown option '%s' (see pktlens --help)", a);
			return PL_EXIT_USAGE;
		}
	}
	i = optind;
	if (version) {	/* -V wherever it came, -j makes it JSON */
		print_version();
		return PL_EXIT_OK;
	}
	if (i >= argc) {
		if (pl_g.json)
			pl_err("no command (see pktlens --help)");
		else
			usage(stderr);
		return PL_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		/* `help --options [-j]`: the tables' options, for the docs test */
		if (i + 1 < argc && !strcmp(argv[i + 1], "--options")) {
			if (i + 2 < argc && (!strcmp(argv[i + 2], "-j") || !strcmp(argv[i + 2], "--json")))
				pl_g.json = true;
			pl_cmd_dump(pl_cmds);
			return PL_EXIT_OK;
		}
		usage(stdout);
		return PL_EXIT_OK;
	}
	return pl_cmd_run(pl_cmds, argc - i, argv + i, enter);
}

static int stdout_errno;	/* why the first write to standard output failed */

/* stdout's writes, as stdio makes them, keeping the cause of the first failure */
static ssize_t stdout_write(void *cookie, const char *buf, size_t len)
{
	size_t done = 0;

	(void)cookie;
	while (done < len) {
		ssize_t n = write(STDOUT_FILENO, buf + done, len - done);
		struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };

		/*
		 * a signal (Ctrl-C, a stop) came while the reader was slow to take a
		 * write: the output goes on while the reader takes some within a
		 * second (a cut line of -j would not parse), else it is given up
		 */
		if (n < 0 && errno == EINTR) {
			int r = poll(&p, 1, 1000);

			if (r > 0 || (r < 0 && errno == EINTR))
				continue;
			errno = EINTR;
		}
		if (n <= 0) {
			if (!stdout_errno)
				stdout_errno = n < 0 ? errno : EIO;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)len;
}

/*
 * What was printed must have reached standard output: a full disk or a
 * closed descriptor is a failure (exit 1, said with its cause), never a
 * silent success that leaves a cut `policy list > f` to load. A reader that
 * went away (EPIPE, where SIGPIPE is ignored: sample) ended the output by
 * its own choice.
 */
int pl_stdout_flush(void)
{
	if (fflush(stdout) != EOF && !ferror(stdout) && !stdout_errno)
		return 0;
	if (!stdout_errno)
		stdout_errno = errno ? errno : EIO;
	return -stdout_errno;
}

int pl_stdout_for_totals(void)
{
	int err;

	signal(SIGPIPE, SIG_IGN);
	err = pl_stdout_flush();
	return err == -EPIPE ? 0 : err;
}

/* a command that failed has said why in its one line (-j: its error document failed too) */
static int close_stdout(int rc)
{
	int err = pl_stdout_flush();

	if (!err || err == -EPIPE || rc)
		return rc;
	pl_err("cannot write to standard output: %s", strerror(-err));
	return PL_EXIT_FAIL;
}

/*
 * Descriptors 0-2 closed by the caller (`pktlens detach eth0 >&-`) are
 * opened again, so that no file, map or socket opened later takes their
 * numbers (stdout's writes would go into it): stdin and stderr on
 * /dev/null, stdout on /dev/full, where every write fails as on the closed
 * descriptor; its cause stays EBADF (pl_stdout_flush()), never a success.
 */
static void std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int null;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		null = open(fd == STDOUT_FILENO ? "/dev/full" : "/dev/null", fd ? O_WRONLY : O_RDONLY);
		if (null >= 0 && null != fd) {
			dup2(null, fd);
			close(null);
		}
		if (fd == STDOUT_FILENO)
			stdout_errno = EBADF;
	}
}

int main(int argc, char **argv)
{
	FILE *out;
	int ncpu;

	std_fds();
	/*
	 * A file size limit (ulimit -f) makes a write fail (EFBIG) as a full disk
	 * does, said and handled as such: not a signal that kills a detach after
	 * its removal and before its final totals are written anywhere.
	 */
	signal(SIGXFSZ, SIG_IGN);
	/*
	 * libbpf reads the possible CPUs once and keeps the count: read now, while
	 * descriptors are free. Read later with none left (EMFILE), the count was 1
	 * where per-CPU buffers were sized, and the kernel wrote past them.
	 */
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		fprintf(stderr, "pktlens: cannot read the possible CPUs "
			"(/sys/devices/system/cpu/possible): %s\n", strerror(ncpu ? -ncpu : EINVAL));
		return PL_EXIT_FAIL;
	}
	out = fopencookie(NULL, "w", (cookie_io_functions_t){ .write = stdout_write });

	if (out)
		stdout = out;	/* `top` gives ncurses descriptor 1 itself */
	return close_stdout(run(argc, argv));
}
