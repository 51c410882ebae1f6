/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Commands and their options, declared once (cli/opt.c runs them).
 *
 * Each command is one `struct pl_cmd` row: its name, its positional
 * arguments, its options (a `struct pl_opt` table), the struct the options
 * fill and its defaults, and the handler. That one row drives parsing
 * (getopt_long), value checking and its error messages, `pktlens CMD
 * --help`, the top-level usage (`pktlens --help`), the hidden option dump the
 * docs test reads (`pktlens help --options -j`) and the common options every
 * command takes after its name: -j/--json, -p/--pretty, -h/--help. An
 * object with sub-commands (filter, policy, tcp, export) lists them in
 * `subs`; commands and sub-commands are chosen by unambiguous prefix
 * (`pktlens pol li`), an ambiguous one names the candidates (exit 2).
 *
 * Adding an option is one row in the command's table plus the field it
 * fills in the command's config struct, e.g. in cli/attach.c:
 *
 *	{ .name = "xdp-priority", .type = PL_OPT_UINT, PL_FIELD(struct attach_cfg, prio),
 *	  .arg = "N", .min = 1, .max = 1000, .help = "..." },
 *
 * Its value is checked ("attach: --xdp-priority '0' is wrong: expected a
 * number from 1 to 1000"), and --help, `pktlens --help` and the test that
 * holds README.md and docs/pktlens.8 to the tables follow; document it in
 * both (the test says where it is missing).
 *
 * Adding a command is one `const struct pl_cmd pl_cmd_NAME` in its file
 * (declared in cli/cli.h) and its address in main.c's `pl_cmds[]` (a
 * sub-command: in its object's `subs`). It names its table, its config
 * struct and defaults, and its handler `int fn(void *cfg, int argc, char
 * **argv)`, which gets the filled config and the positional words only
 * (argv[0] is the first of them; argv[argc] is NULL).
 */
#ifndef __PKTLENS_CLI_OPT_H
#define __PKTLENS_CLI_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum pl_opt_type {
	PL_OPT_FLAG,		/* no value: stores .val into an int (|= with PL_OPT_OR) */
	PL_OPT_COUNT,		/* no value: counts into an int (-d, -dd, -ddd) */
	PL_OPT_UINT,		/* decimal in [.min, .max] into a uint32_t or uint64_t */
	PL_OPT_DURATION,	/* seconds, 1 s .. 366 days, into a uint64_t */
	PL_OPT_STRING,		/* the word itself, into a const char * */
	PL_OPT_CHOICE,		/* one of .choices, its .val into an int */
	PL_OPT_PARSE,		/* .parse() checks and stores it */
};

/* Option flags. */
#define PL_OPT_HIDDEN (1u << 0)		/* accepted, not documented (an alias) */
#define PL_OPT_REQUIRED (1u << 1)	/* must be given */
#define PL_OPT_OR (1u << 2)		/* FLAG: |= .val */
#define PL_OPT_SHORT (1u << 3)		/* named by its short form in messages and synopsis */
#define PL_OPT_NOPARSE (1u << 4)	/* documented here, parsed by the handler (policy rules) */
#define PL_OPT_STDOUT (1u << 5)		/* STRING: "-" sends the data to stdout: no JSON errors there */

struct pl_choice {
	const char *name;
	int val;
	bool hidden;		/* an alias: accepted, not listed */
};

struct pl_opt {
	const char *name;	/* long name without "--", or NULL */
	char short_name;	/* 'c' for -c, or 0 */
	enum pl_opt_type type;
	size_t off, size;	/* the field it fills in the config: PL_FIELD() */
	const char *arg;	/* value's name in --help: "N", "SECS" */
	/* one paragraph; --help wraps it and puts in {min}, {max}, {default} */
	const char *help;
	const char *syn;	/* synopsis text instead of the generated one; "" none */
	const char *only;	/* sub-commands it is documented for ("rtt connlat"); NULL: all */
	uint64_t min, max;	/* UINT */
	int val;		/* FLAG */
	const struct pl_choice *choices;	/* CHOICE: ends with { NULL } */
	/* PARSE: 0 or -errno; may say why in @why (else .bad is used) */
	int (*parse)(const char *s, void *field, char *why, size_t whylen);
	/*
	 * What follows "CMD: --opt 'VALUE'" when the value is wrong, a printf
	 * format given .min and .max as unsigned long long; NULL: " is wrong:
	 * expected ..." from the type, range or choices.
	 */
	const char *bad;
	const char *missing;	/* REQUIRED: the message when it is not given */
	/* the long name of an option of the same table it means nothing without, or NULL */
	const char *needs;
	unsigned flags;
};

/* getopt's value of the long form of the common options: -j is 'j', --json PL_OPT_LONG + 'j' */
#define PL_OPT_LONG 1024

/* A number macro as a string, for help texts */
#define PL_STR_(x) #x
#define PL_STR(x) PL_STR_(x)

/* .off and .size of @member of config struct @type */
#define PL_FIELD(type, member) .off = offsetof(type, member), .size = sizeof(((type *)0)->member)

/* Command flags. */
#define PL_CMD_STOP (1u << 0)	/* options only before the first positional (and a trailing -j or -p) */
#define PL_CMD_RAW (1u << 1)	/* the handler parses its words (-h anywhere; -j, -p first or last) */
#define PL_CMD_NAME_SUBS (1u << 2)	/* "what is 'x'?" names the sub-commands */
/* DEV is not always this namespace's interface: the handler calls pl_dev_arg() when it is */
#define PL_CMD_DEV_OWN (1u << 3)

struct pl_cmd {
	const char *name;
	const char *args;	/* positionals for the synopsis: "DEV", "[DEV]", "'EXPR'" */
	bool args_last;		/* synopsis: positionals after the options */
	const char *tail;	/* synopsis: words after the options, or NULL */
	const char *about;	/* what it does, for --help; paragraphs end in \n */
	const char *more;	/* --help text after the options, or NULL */
	void (*print_more)(FILE *f);	/* or this prints it (numbers from macros) */
	const struct pl_opt *opts;	/* ends with { NULL }; NULL: none */
	const void *defaults;	/* the config before parsing, or NULL: zeroes */
	size_t cfg_size;
	int min_args, max_args;	/* positionals; max -1: any number */
	const char *few;	/* message for too few (after "CMD: "); NULL: generated */
	/* too many: a format given the first extra word, or a hint after "what is 'WORD'?"; NULL: generated */
	const char *many;
	int (*fn)(void *cfg, int argc, char **argv);
	const struct pl_cmd *const *subs;	/* sub-commands, NULL-terminated */
	unsigned flags;
};

/* Every command (cli/main.c), NULL-terminated. */
extern const struct pl_cmd *const pl_cmds[];

/*
 * Run `pktlens ...` from @argv[0] == the command's word: pick the command
 * by prefix from @cmds, parse, check, then run its handler (after @enter,
 * called with the command's name, e.g. to enter --netns; non-zero stops).
 */
int pl_cmd_run(const struct pl_cmd *const *cmds, int argc, char **argv, int (*enter)(const char *name));
/* -j, --json, -p or --pretty: sets the output and says whether @s was one */
bool pl_json_word(const char *s);
/*
 * After getopt_long() returned @opt for the argument @word: the length of
 * "--NAME" when @word is --NAME=VALUE for an option that takes no value (its
 * error says so, not "unknown option"), else 0.
 */
int pl_opt_no_value(int opt, const char *word);

/*
 * The sub-command of @parent (NULL: the commands @cmds at the top) that
 * @word names: its exact name, else the only one it begins. NULL after
 * printing why (unknown, or ambiguous: the candidates).
 */
const struct pl_cmd *pl_cmd_select(const struct pl_cmd *parent, const struct pl_cmd *const *cmds,
				   const char *word);

/* `pktlens --help`: every command's synopsis. */
void pl_cmd_usage(FILE *f, const struct pl_cmd *const *cmds);
/* `pktlens help --options [-j]`: every command's options, for the docs test. */
void pl_cmd_dump(const struct pl_cmd *const *cmds);

#endif /* __PKTLENS_CLI_OPT_H */
