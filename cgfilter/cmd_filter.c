// SPDX-License-Identifier: GPL-2.0-only
/* cgfilter load, set, register, unregister, unload, check, compile. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cmd.h"
#include "emit_cbpf.h"
#include "wrap.h"
#include "emit_bpf.h"

/* ---- reading filters -------------------------------------------------------------- */

char *read_text_file(const char *path)
{
	char why[300];
	char *t = cgf_read_text(path, why, sizeof(why));

	if (!t)
		cgf_err("%s", why);
	return t;
}

char *filter_text(const struct cmd_args *a, int at, bool *usage)
{
	char *t;

	*usage = false;
	if (!a->file && a->argc > at + 1) {
		/* (words of a filter not quoted: one argument, quoted) */
		char words[72] = "";
		size_t len = 0;
		int i;

		for (i = at; i < a->argc && len < sizeof(words) - 1; i++)
			len += (size_t)snprintf(words + len, sizeof(words) - len, "%s%s", i > at ? " " : "",
						a->argv[i]);
		*usage = true;
		usage_error(a, "expected %sone filter, got %d words: quote the filter ('%s%s')",
			    at ? "PIN and " : "", a->argc - at, words, len >= sizeof(words) - 1 ? "..." : "");
		return NULL;
	}
	if (a->argc != at + (a->file ? 0 : 1)) {
		*usage = true;
		usage_error(a, "expected %s%s", at ? "PIN and " : "",
			    a->file ? "no filter argument with -f" : "a filter (or -f FILE)");
		return NULL;
	}
	if (a->file)
		return read_text_file(a->file);
	if (strlen(a->argv[at]) > CGF_EXPR_MAX_TEXT) {
		cgf_err("filter text too long: %zu bytes, at most %u (16 MiB)", strlen(a->argv[at]),
			CGF_EXPR_MAX_TEXT);
		return NULL;
	}
	t = strdup(a->argv[at]);
	if (!t)
		cgf_err("out of memory");
	return t;
}

/* ---- the commands ------------------------------------------------------------------ */

int cmd_load(struct cmd_args *a)
{
	struct cgf_load_opts o = { .shared = a->shared, .events_per_sec = (unsigned)a->events_per_sec };
	char *text = NULL;
	bool usage;
	int r;

	if (a->shared) {
		if (a->file)
			return usage_error(a, "a shared engine has no filter of its own: units register theirs (no -f)");
		if (a->argc != 1)
			return usage_error(a, "expected PIN and no filter (units register theirs)");
	} else {
		text = filter_text(a, 1, &usage);
		if (!text)
			return usage ? EXIT_USAGE : 1;
	}
	r = cgf_engine_load(a->argv[0], text, &o);
	free(text);
	return r;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

int cmd_set(struct cmd_args *a)
{
	struct timespec t0;
	struct cgf_engine e;
	uint32_t gen = 0;
	char *text;
	bool usage;
	int r;

	text = filter_text(a, 1, &usage);
	if (!text)
		return usage ? EXIT_USAGE : 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = cgf_engine_open(&e, a->argv[0], false);
	if (!r) {
		r = cgf_engine_set(&e, text, &gen);
		if (!r && cgf_verbose)
			printf("set %s: generation %u in force %.3f ms after the command opened the filter\n",
			       e.pin, gen, ms_since(&t0));
		cgf_engine_close(&e);
	}
	free(text);
	return r;
}

int cmd_register(struct cmd_args *a)
{
	struct cgf_engine e;
	char *text;
	bool usage;
	int r;

	text = filter_text(a, 1, &usage);
	if (!text)
		return usage ? EXIT_USAGE : 1;
	r = cgf_engine_open(&e, a->argv[0], true);
	if (!r) {
		r = cgf_engine_register(&e, a->cgroup, text);
		cgf_engine_close(&e);
	}
	free(text);
	return r;
}

int cmd_unregister(struct cmd_args *a)
{
	struct cgf_engine e;
	int r;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	r = cgf_engine_open(&e, a->argv[0], true);
	if (!r) {
		r = cgf_engine_register(&e, a->cgroup, NULL);
		cgf_engine_close(&e);
	}
	return r;
}

int cmd_unload(struct cmd_args *a)
{
	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	return cgf_engine_unload(a->argv[0], a->detach);
}

/* What kind of BPF object an fd is, from its anonymous inode's name. */
static bool is_prog_fd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:bpf-prog");
}

int cmd_check(struct cmd_args *a)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	const char *pin;
	int fd, r = 0;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	pin = a->argv[0];
	fd = bpf_obj_get(pin);
	if (fd < 0) {
		r = -errno;
		cgf_err("%s: %s", pin, cgf_pin_error(pin, -r));
		return r;
	}
	if (!is_prog_fd(fd) || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		cgf_err("%s is not a BPF program (a map?): a unit naming it would run unfiltered", pin);
		r = -EINVAL;
	} else if (info.type != BPF_PROG_TYPE_CGROUP_SKB) {
		const char *t = libbpf_bpf_prog_type_str(info.type);

		cgf_err("%s is a %s program, not cgroup_skb: a unit naming it would run unfiltered", pin,
			t ? t : "unknown");
		r = -EINVAL;
	} else if (!a->quiet) {
		printf("%s: cgroup_skb program id %u\n", pin, info.id);
	}
	close(fd);
	return r;
}

static int compile_classic(const struct cgf_expr *x, const char *text)
{
	struct sock_filter *p;
	struct cgf_error e;
	char msg[400];
	size_t n;
	int r = cgf_cbpf_compile(x, CGF_CBPF_SOCKET, &p, &n, &e);

	if (r) {
		e.multiline = e.line && strchr(text, '\n');
		cgf_error_format(&e, msg, sizeof(msg));
		cgf_err("%s", msg);
		if (e.line)
			cgf_error_show_place(stderr, text, &e);
		return r;
	}
	printf("%zu classic BPF instructions\n", n);
	cgf_cbpf_print(stdout, p, n);
	free(p);
	return 0;
}

int compile_filter(const char *text, bool classic, bool print, bool any_set)
{
	struct cgf_parse_opts po = { .dialect = CGF_DIALECT_FULL, .allow_decls = 1 };
	struct cgf_gen_env env = CGF_GEN_ENV_NONE;
	struct cgf_expr *x = NULL;
	struct cgf_gen g;
	char why[256];
	int r;

	/* without an engine, a named set is what its use says */
	po.any_set = any_set;
	r = cgf_filter_parse(text, &po, &x); /* a bad filter is said */
	if (!r && classic) {
		r = compile_classic(x, text);
	} else if (!r) {
		r = cgf_gen_filter(x, &env, &g, why, sizeof(why));
		if (r) {
			cgf_err("%s", why);
		} else if (print) {
			printf("%u BPF instructions\n", g.a.n);
			cgf_asm_print(&g.a, stdout);
		}
		cgf_gen_free(&g);
	}
	cgf_expr_free(x);
	return r;
}

int cmd_compile(struct cmd_args *a)
{
	char *text;
	bool usage;
	int r;

	text = filter_text(a, 0, &usage);
	if (!text)
		return usage ? EXIT_USAGE : 1;
	r = compile_filter(text, a->classic, true, true);
	free(text);
	return r;
}

int cmd_wrap(struct cmd_args *a)
{
	return cgf_wrap_main("cgfilter wrap", a->argc, a->argv);
}

static int mode_of(const char *s)
{
	int m;

	for (m = 0; m < CGF_RUN_NMODES; m++)
		if (!strcmp(s, cgf_run_modes[m]))
			return m;
	return -1;
}

static const char *mode_name(uint32_t m)
{
	return m < CGF_RUN_NMODES ? cgf_run_modes[m] : "unknown";
}

struct mode_print {
	const struct cgf_engine *e;
	uint64_t seen[64];      /* cgroups printed (ids; after 64, maybe twice) */
	int n, r;               /* r: the first filter that could not be read */
};

static int print_cgroup_mode(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct mode_print *p = ctx;
	struct cgf_filter_view v;
	char path[PATH_MAX];
	int i, r;

	(void)dir;
	for (i = 0; i < p->n && i < 64; i++)
		if (p->seen[i] == cgid)
			return 0;
	if (!slot)
		return 0;
	if (p->n < 64)
		p->seen[p->n] = cgid;
	cgf_cgroup_path(cgid, path, sizeof(path));
	r = cgf_engine_filter(p->e, slot, &v);
	if (r) {
		cgf_note("cannot read the filter of cgroup %s in %s: %s", path,
			p->e->pin, strerror(-r));
		p->r = p->r ? p->r : r;
		return 0;
	}
	if (!v.text)
		return 0;
	printf("%s %s\n", mode_name(v.info.mode), path);
	p->n++;
	cgf_filter_view_free(&v);
	return 0;
}

int cmd_mode(struct cmd_args *a)
{
	struct cgf_engine e;
	struct cgf_filter_view v;
	int r, m = -1, changed = 0;

	if (a->argc < 1 || a->argc > 2)
		return usage_error(a, "expected PIN [enforce|observe|block|pass]");
	if (a->argc == 2 && (m = mode_of(a->argv[1])) < 0)
		return usage_error(a, "no such mode: '%s' (enforce, observe, block or pass)", a->argv[1]);
	r = cgf_engine_open(&e, a->argv[0], m >= 0);
	if (r)
		return r;
	if (m >= 0) {
		r = cgf_engine_set_mode(&e, a->cgroup, m, &changed);
		if (!r && e.mode == CGF_MODE_SHARED && !a->cgroup && !changed)
			cgf_note("%s: no cgroup has registered a filter: nothing changed",
				e.pin);
		if (!r && cgf_verbose)
			printf("%s: %s (%d filter%s switched)\n", e.pin, cgf_run_modes[m], changed,
			       changed == 1 ? "" : "s");
	} else if (e.mode == CGF_MODE_SHARED) {
		if (a->cgroup) {
			r = cgf_engine_cgroup_filter(&e, a->cgroup, &v);
			if (!r) {
				printf("%s\n", mode_name(v.info.mode));
				cgf_filter_view_free(&v);
			}
		} else {
			struct mode_print p = { .e = &e };

			r = cgf_engine_each_cgroup(&e, print_cgroup_mode, &p);
			if (r)
				cgf_note("cannot read the cgroups of %s: %s", e.pin,
					strerror(-r));
			else if (p.r)
				r = p.r;
			else if (!p.n)
				cgf_note("%s: no cgroup has registered a filter", e.pin);
		}
	} else {
		r = cgf_engine_filter(&e, CGF_SLOT_DEDICATED, &v);
		if (r)
			cgf_note("cannot read the filter in force in %s: %s", e.pin,
				strerror(-r));
		else if (!v.text) {
			cgf_note("%s has no filter in force", e.pin);
			r = -ENOENT;
		} else
			printf("%s\n", mode_name(v.info.mode));
		cgf_filter_view_free(&v);
	}
	cgf_engine_close(&e);
	return r;
}

static int attach_cmd(struct cmd_args *a, bool attach)
{
	struct cgf_engine e;
	unsigned int dirs = 3;
	int r;

	if (a->argc < 2 || a->argc > 3)
		return usage_error(a, "expected PIN CGROUP [ingress|egress|both]");
	if (a->argc == 3) {
		if (!strcmp(a->argv[2], "ingress"))
			dirs = 1;
		else if (!strcmp(a->argv[2], "egress"))
			dirs = 2;
		else if (strcmp(a->argv[2], "both"))
			return usage_error(a, "no such direction: '%s' (ingress, egress or both)", a->argv[2]);
	}
	r = cgf_engine_open(&e, a->argv[0], false);
	if (r)
		return r;
	r = cgf_engine_attach(&e, a->argv[1], dirs, attach);
	cgf_engine_close(&e);
	return r;
}

int cmd_attach(struct cmd_args *a)
{
	return attach_cmd(a, true);
}

int cmd_detach(struct cmd_args *a)
{
	return attach_cmd(a, false);
}

int cmd_exe_ids(struct cmd_args *a)
{
	if (a->argc > 1 || (a->argc == 1 && strcmp(a->argv[0], "status") && strcmp(a->argv[0], "stop")))
		return usage_error(a, "expected nothing, status or stop");
	if (a->force && !(a->argc == 1 && !strcmp(a->argv[0], "stop")))
		return usage_error(a, "--force goes with stop");
	return cgf_exe_ids_status(a->argc == 1 && !strcmp(a->argv[0], "stop"), a->force);
}

static bool refresh_force;
static int refresh_failed;

/* One engine refreshed (1: counted); a failure is said and counted. */
static int refresh_pin(const char *pin, void *ctx)
{
	struct cgf_engine e;
	int r, changed = 0;

	(void)ctx;
	r = cgf_engine_open(&e, pin, true);
	if (!r) {
		r = cgf_engine_refresh(&e, refresh_force, &changed);
		if (!r && cgf_verbose)
			printf("%s: %d update%s\n", pin, changed, changed == 1 ? "" : "s");
		cgf_engine_close(&e);
	}
	refresh_failed += r != 0;
	return 1;
}

int cmd_refresh(struct cmd_args *a)
{
	int i, errors = 0;

	refresh_force = a->force;
	for (i = 0; i < a->argc; i++) {
		struct stat st;

		/* a directory: every engine under it, as list DIR */
		if (!stat(a->argv[i], &st) && S_ISDIR(st.st_mode))
			each_engine_pin(a->argv[i], refresh_pin, NULL, &errors);
		else
			refresh_pin(a->argv[i], NULL);
	}
	if (!a->argc)
		each_engine_pin("/sys/fs/bpf", refresh_pin, NULL, &errors);
	return refresh_failed ? -EINVAL : errors ? -EACCES : 0;
}
