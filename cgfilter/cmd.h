/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The cgfilter command: one table of commands (main.c), each a function
 * over the parsed options, its usage and help.  The commands only parse,
 * call the engine library (engine/engine.h) and print.
 */
#ifndef CGF_CMD_H
#define CGF_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"

/* Options: each has a bit; a command lists the bits it takes. */
enum cgf_opt {
	OPT_FILE = 1 << 0,
	OPT_SHARED = 1 << 1,
	OPT_EVENTS = 1 << 2,
	OPT_JSON = 1 << 3,
	OPT_CODE = 1 << 4,
	OPT_DETACH = 1 << 5,
	OPT_CGROUP = 1 << 6,
	OPT_COUNT = 1 << 7,
	OPT_TIMEOUT = 1 << 8,
	OPT_QUIET = 1 << 9,
	OPT_CLASSIC = 1 << 10,
	/* the command parses its own arguments (argv: the command's name on) */
	OPT_RAW = 1 << 11,
	OPT_NAME = 1 << 12,
	/* what the command returns is the exit status (run: CMD's) */
	OPT_STATUS = 1 << 13,
	OPT_SECONDS = 1 << 14,
	OPT_FORCE = 1 << 15,
	OPT_INGRESS = 1 << 16,
	OPT_EGRESS = 1 << 17,
	OPT_PROMETHEUS = 1 << 18,
	OPT_OUTPUT = 1 << 19,
	OPT_JOURNAL = 1 << 20,
};

struct cmd_args {
	const char *name;       /* the command */
	char **argv;            /* its arguments, after the options */
	int argc;
	const char *file;
	const char *cgroup;
	const char *run_name;
	const char *output;
	bool shared, json, code, detach, quiet, classic, force, ingress, egress, prometheus, journal;
	unsigned long events_per_sec, count, timeout_ms, seconds;
};

struct cmd {
	const char *name;
	int (*run)(struct cmd_args *a);
	unsigned int opts;      /* OPT_* it takes */
	const char *args;       /* "PIN (EXPR | -f FILE)" */
	const char *summary;    /* one line, for the list of commands */
	const char *help;       /* what it does, for 'cgfilter CMD --help' */
	const char *example;
};

/* The commands (cmd_*.c). */
int cmd_load(struct cmd_args *a);
int cmd_set(struct cmd_args *a);
int cmd_register(struct cmd_args *a);
int cmd_unregister(struct cmd_args *a);
int cmd_mode(struct cmd_args *a);
int cmd_attach(struct cmd_args *a);
int cmd_detach(struct cmd_args *a);
int cmd_set_add(struct cmd_args *a);
int cmd_set_del(struct cmd_args *a);
int cmd_show(struct cmd_args *a);
int cmd_list(struct cmd_args *a);
int cmd_stats(struct cmd_args *a);
int cmd_monitor(struct cmd_args *a);
int cmd_check(struct cmd_args *a);
int cmd_unload(struct cmd_args *a);
int cmd_compile(struct cmd_args *a);
int cmd_wrap(struct cmd_args *a);
int cmd_run(struct cmd_args *a);
int cmd_learn(struct cmd_args *a);
int cmd_exe_ids(struct cmd_args *a);
int cmd_enable(struct cmd_args *a);
int cmd_disable(struct cmd_args *a);
int cmd_status(struct cmd_args *a);
/* stats --prometheus (cmd_metrics.c) */
int stats_prometheus(struct cmd_args *a);
int cmd_refresh(struct cmd_args *a);
int cgf_run_exec_main(int argc, char **argv);
int cgf_run_clean_main(int argc, char **argv);

/* Exit statuses */
#define EXIT_USAGE 2

/* A usage error of command a: the message, a hint, EXIT_USAGE. */
int usage_error(const struct cmd_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The filter text of a command: argument `at` or -f FILE (NULL: an error
 * was printed; *usage set for a usage error). */
char *filter_text(const struct cmd_args *a, int at, bool *usage);
/* Check a filter as it would be loaded and, with print, print the program
 * (classic: the classic BPF socket filter).  any_set: a named set the
 * filter does not declare is what its use says (else it is refused, as a
 * new engine, which has no sets, refuses it). */
int compile_filter(const char *text, bool classic, bool print, bool any_set);
/* A whole file ('-': standard input), at most CGF_EXPR_MAX_TEXT bytes. */
char *read_text_file(const char *path);

/* s as a JSON string (quotes, backslashes, control characters escaped;
 * bytes that are not UTF-8 as the code points of the same value). */
void json_str(FILE *f, const char *s);
/* Length of the valid UTF-8 sequence at s (1 to 4; shortest form, no
 * surrogates, at most U+10FFFF), or 0 if there is none. */
size_t utf8_len(const unsigned char *s);

/* Every engine pinned under dir (PIN where PIN_maps/ is), depth first, by
 * name: the sum of what fn returns (1: an engine, 0: skipped).  A directory
 * that cannot be read is said and counted in *errors. */
/* The engine at pin, for a listing: opened (0); passed over (1: not an
 * engine, or a PIN_maps/ left without its PIN); or -errno, said. */
int open_listed(struct cgf_engine *e, const char *pin);
int each_engine_pin(const char *dir, int (*fn)(const char *pin, void *ctx), void *ctx, int *errors);
/* The mode of a dedicated engine's filter: *m "enforce"... (NULL: shared,
 * or no filter in force); 0, or -errno (said) if it cannot be read. */
int dedicated_mode(const struct cgf_engine *e, const char **m);
/* The systemd unit a cgroup path belongs to (NULL: none), in buf. */
const char *unit_of(const char *path, char *buf, size_t len);

#endif /* CGF_CMD_H */
