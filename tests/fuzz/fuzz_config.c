// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: random bytes as a service config (`pktlens apply FILE`,
 * the daemon's start and SIGHUP), through the loader those use
 * (service/config.c: libyaml, the entry and trigger grammar, rule words,
 * tcpdump filters, rules files), without a kernel. The input is written to
 * a file in a private directory, so a relative `rules-file` (relative to
 * the config's directory) names the input itself or nothing. A refused config must
 * come with a reason naming a file, and no config; an accepted one is asked
 * which entry decides a few interfaces, then freed. ASan's leak check
 * runs on every input. Aborts (a finding) otherwise.
 *
 *   make fuzz FUZZ_TARGETS=config (builds .output/fuzz_config; seeds in tests/fuzz/corpus/config/)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../service/config.h"

static char dir[] = "/tmp/pktlens-fuzz-config-XXXXXX";
static char path[sizeof(dir) + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	return 0;
}

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_config: %s\n  why: %s\n", what, why ? why : "(none)");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "eth0", "veth1", "lo", "br-lan.100" };
	struct pl_config *c = NULL;
	char why[1024] = "";
	int fd, err;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd))
		abort();
	err = pl_config_load(path, &c, why, sizeof(why));
	if (err) {
		if (c)
			fail("a refused config came with a config", why);
		/* "FILE[:LINE:COL]: why" (control characters are escaped where it is printed) */
		if (!why[0] || why[0] == ':' || !strstr(why, ": "))
			fail("a refused config's reason names no file", why);
		return 0;
	}
	if (!c)
		fail("an accepted config is missing", why);
	(void)pl_config_covers(c, NULL);
	(void)pl_config_covers(c, "blue");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct pl_cfg_entry *e = pl_config_match(c, true, NULL, names[i]);

		if (e)
			(void)pl_config_probes(c, e);
		(void)pl_config_match(c, false, "blue", names[i]);
	}
	pl_config_free(c);
	return 0;
}
