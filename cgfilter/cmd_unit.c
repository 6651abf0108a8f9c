// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter enable, disable and status: a persistent filter for a systemd
 * unit in one command.
 *
 * enable UNIT writes the filter to /etc/cgfilter/NAME.filter, which
 * cgfilter@NAME.service loads at /sys/fs/bpf/cgfilter/NAME, and a drop-in
 * /etc/systemd/system/UNIT.d/cgfilter.conf that requires that loader, names
 * the pin with IPIngressFilterPath=/IPEgressFilterPath= and guards the
 * start with `cgfilter check`; the .socket units that start a service get
 * the same drop-in, as their filter is the one on the sockets they pass in.
 * Each file says on its first line that enable wrote it, and for which
 * unit: disable removes exactly those files (and a drop-in directory only
 * where enable made it), and status finds the units from them.
 *
 * Order, so that a failure or a kill leaves a filter in force that some
 * file names: every check first (nothing written), then the new filter in
 * force if it is loaded (the verifier's word, atomic), then the files, each
 * replaced by a rename, then systemd reloaded.  status reads the kernel:
 * the programs in force on the unit's cgroup, and the text of the filter
 * in force, which must be the file's.  One enable or disable at a time
 * (a flock on /etc/systemd/system).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cmd.h"

#define CONF_DIR "/etc/cgfilter"
#define UNIT_DIR "/etc/systemd/system"
#define PIN_DIR "/sys/fs/bpf/cgfilter"
#define DROPIN "cgfilter.conf"
#define TMP_SUFFIX ".cgf-"                      /* + XXXXXX: a file being written */
#define MARK "# Written by cgfilter enable "  /* + UNIT; disable removes it */
#define MADE_DIR "# cgfilter made this directory"
#define MAX_SOCKETS 8
#define NAME_MAX_LEN 200

/* ---- names ------------------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && !strcmp(s + n - k, suffix);
}

/* Unit names as systemd takes them ([A-Za-z0-9:_.\\@-], a name before the
 * suffix); only services and sockets have the IP filter settings and
 * ExecStartPre= that enable writes; a template has no cgroup. */
static int check_unit(const struct cmd_args *a, const char *u)
{
	const char *dot = strrchr(u, '.');
	size_t i;

	if (strlen(u) > NAME_MAX_LEN)
		return usage_error(a, "unit name too long: %zu bytes, at most %d", strlen(u), NAME_MAX_LEN);
	for (i = 0; u[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.\\@-", u[i]))
			break;
	if (u[i] || !dot || dot == u || (!has_suffix(u, ".service") && !has_suffix(u, ".socket")))
		return usage_error(a, "'%s' is not the name of a .service or .socket unit", u);
	if (strstr(u, "@."))
		return usage_error(a, "%s is a template: name an instance (%.*s@NAME%s)", u,
				   (int)(strstr(u, "@.") - u), u, dot);
	return 0;
}

/* The name of unit's filter: the unit's name without ".service", every
 * character but [A-Za-z0-9:_@-] written '_' (a BPF filesystem name has no
 * '.', and systemd undoes a '\' escape in ExecStart=, which would make the
 * loader and the guard use another pin than IPIngressFilterPath=);
 * cgfilter@NAME loads CONF_DIR/NAME.filter at PIN_DIR/NAME.  Two units
 * with one name (a.b and a_b): the second is refused, the filter file
 * naming the first. */
static void filter_name(const char *unit, char *out, size_t len)
{
	size_t n = strlen(unit), i;

	if (has_suffix(unit, ".service"))
		n -= 8;
	for (i = 0; i < n && i + 1 < len; i++)
		out[i] = strchr(":_@-", unit[i]) || (unit[i] >= 'a' && unit[i] <= 'z') ||
				 (unit[i] >= 'A' && unit[i] <= 'Z') || (unit[i] >= '0' && unit[i] <= '9') ?
			 unit[i] : '_';
	out[i] = 0;
}

struct names {
	char name[NAME_MAX_LEN + 1];
	char filter[PATH_MAX];  /* CONF_DIR/NAME.filter */
	char pin[PATH_MAX];     /* PIN_DIR/NAME */
	char loader[NAME_MAX_LEN + 32];
};

static void names_of(const char *unit, struct names *n)
{
	filter_name(unit, n->name, sizeof(n->name));
	snprintf(n->filter, sizeof(n->filter), CONF_DIR "/%s.filter", n->name);
	snprintf(n->pin, sizeof(n->pin), PIN_DIR "/%s", n->name);
	snprintf(n->loader, sizeof(n->loader), "cgfilter@%s.service", n->name);
}

/* ---- systemctl --------------------------------------------------------------------- */

/* Run argv; its standard output (at most len - 1 bytes) in out if out.
 * Returns the exit status, or -1 if it could not run (said). */
static int run(char *const argv[], char *out, size_t len)
{
	int p[2] = { -1, -1 }, st;
	size_t n = 0;
	ssize_t k;
	pid_t pid;

	if (out && pipe2(p, O_CLOEXEC)) {
		cgf_err("cannot run %s: %s", argv[0], strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		cgf_err("cannot run %s: %s", argv[0], strerror(errno));
		if (out)
			close(p[0]), close(p[1]);
		return -1;
	}
	if (!pid) {
		if (out)
			dup2(p[1], 1);
		execvp(argv[0], argv);
		cgf_say(cgf_prog, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(p[1]);
		while (n + 1 < len && (k = read(p[0], out + n, len - 1 - n)) > 0)
			n += k;
		out[n] = 0;
		close(p[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int systemctl(const char *verb, const char *unit)
{
	char *argv[] = { "systemctl", (char *)verb, (char *)unit, NULL };
	int r = run(argv, NULL, 0);

	if (r)
		cgf_err("systemctl %s%s%s failed (exit status %d)", verb, unit ? " " : "", unit ? unit : "", r);
	return r ? -1 : 0;
}

/* Property prop of unit (systemctl show), "" if none; -1 if systemctl
 * failed (said). */
static int unit_prop(const char *unit, const char *prop, char *out, size_t len)
{
	char *argv[] = { "systemctl", "show", "--value", "-p", (char *)prop, "--", (char *)unit, NULL };
	int r = run(argv, out, len);

	if (r) {
		cgf_err("cannot read %s of %s: systemctl show failed (exit status %d)", prop, unit, r);
		return -1;
	}
	out[strcspn(out, "\n")] = 0;
	return 0;
}

/* 1 if unit is running (active, activating, reloading), 0 if not, -1 if
 * systemctl failed (said). */
static int running(const char *unit)
{
	char v[64];

	if (unit_prop(unit, "ActiveState", v, sizeof(v)))
		return -1;
	return !strcmp(v, "active") || !strcmp(v, "reloading") || !strcmp(v, "activating");
}

/* The .socket units that start service (none for a socket), into socks
 * (at most MAX_SOCKETS); how many, or -1 (said). */
static int sockets_of(const char *service, char socks[][NAME_MAX_LEN + 1])
{
	char v[4096], *tok, *save;
	int n = 0;

	if (has_suffix(service, ".socket"))
		return 0;
	if (unit_prop(service, "TriggeredBy", v, sizeof(v)))
		return -1;
	for (tok = strtok_r(v, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!has_suffix(tok, ".socket"))
			continue;
		if (n == MAX_SOCKETS || strlen(tok) > NAME_MAX_LEN) {
			cgf_err("%s: more than %d .socket units start it, or a name too long: not enabled",
				service, MAX_SOCKETS);
			return -1;
		}
		strcpy(socks[n++], tok);
	}
	/* a socket unit of its name that systemd has not loaded yet (not
	 * started: no TriggeredBy= names it) would start it unfiltered */
	if (strlen(service) - strlen(".service") + strlen(".socket") <= NAME_MAX_LEN) {
		char sock[NAME_MAX_LEN + 1], load[64], trig[4096];
		int i;

		snprintf(sock, sizeof(sock), "%.*s.socket", (int)(strlen(service) - strlen(".service")),
			 service);
		for (i = 0; i < n && strcmp(socks[i], sock); i++)
			;
		if (i == n && unit_prop(sock, "LoadState", load, sizeof(load)))
			return -1;
		if (i == n && !strcmp(load, "loaded")) {
			char *t;

			if (unit_prop(sock, "Triggers", trig, sizeof(trig)))
				return -1;

			for (t = strtok_r(trig, " ", &save); t && strcmp(t, service); t = strtok_r(NULL, " ", &save))
				;
			if (t && n == MAX_SOCKETS) {
				cgf_err("%s: more than %d .socket units start it: not enabled", service, MAX_SOCKETS);
				return -1;
			}
			if (t)
				strcpy(socks[n++], sock);
		}
	}
	return n;
}

/* ---- files ------------------------------------------------------------------------- */

static void dropin_path(const char *unit, char *dir, char *path)
{
	snprintf(dir, PATH_MAX, UNIT_DIR "/%s.d", unit);
	snprintf(path, PATH_MAX, UNIT_DIR "/%s.d/" DROPIN, unit);
}

/* The whole of path (NULL with *gone if it is not there; NULL and -1 in
 * *gone if it cannot be read, said). */
static char *slurp(const char *path, int *gone)
{
	struct stat st;

	*gone = 0;
	if (stat(path, &st)) {
		*gone = errno == ENOENT ? 1 : -1;
		if (*gone < 0)
			cgf_err("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	return read_text_file(path);
}

/* 1 if path was written by `cgfilter enable owner` (its text in *text if
 * text), 0 if it is not there, -1 if it is someone else's or unreadable
 * (said). */
static int ours(const char *path, const char *owner, char **text)
{
	size_t n = strlen(MARK) + strlen(owner);
	int gone;
	char *t = slurp(path, &gone);

	if (!t)
		return gone > 0 ? 0 : -1;
	if (strncmp(t, MARK, strlen(MARK)) || strncmp(t + strlen(MARK), owner, strlen(owner)) ||
	    (t[n] != '\n' && t[n])) {
		cgf_err("%s exists and cgfilter enable %s did not write it: move it away first", path, owner);
		free(t);
		return -1;
	}
	if (text)
		*text = t;
	else
		free(t);
	return 1;
}

/* Write text to path atomically: a temporary file beside it, renamed. */
static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 16];
	size_t n = strlen(text);
	int fd, r = 0, err = 0;

	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX "XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		cgf_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0644) || write(fd, text, n) != (ssize_t)n || fsync(fd))
		r = -1, err = errno ? errno : EIO;
	if (close(fd) && !r)
		r = -1, err = errno;
	if (!r && rename(tmp, path))
		r = -1, err = errno;
	if (r) {
		cgf_err("cannot write %s: %s", path, strerror(err));
		unlink(tmp);
	}
	return r;
}

/* Remove what a write_file() killed before its rename left in dir. */
static void remove_tmp(const char *dir, const char *base)
{
	char pre[NAME_MAX_LEN + 64], path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(dir);

	snprintf(pre, sizeof(pre), "%s" TMP_SUFFIX, base);
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, pre, strlen(pre)) && strlen(de->d_name) == strlen(pre) + 6) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
}

/* One enable or disable at a time: an flock on UNIT_DIR (fd, or -1). */
static int lock_units(void)
{
	int fd = open(UNIT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || flock(fd, LOCK_EX)) {
		cgf_err("cannot lock " UNIT_DIR ": %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- the filter in force ------------------------------------------------------------ */

/* 1 if a cgfilter engine is loaded at pin, 0 if nothing is there, -1 if
 * something else is (said). */
static int loaded(const char *pin)
{
	struct cgf_engine e;
	int r;

	if (access(pin, F_OK))
		return 0;
	r = cgf_engine_open(&e, pin, false);
	cgf_engine_close(&e);
	return r ? -1 : 1;
}

/* Put text in force now in the engine at pin (like 'cgfilter set'). */
static int set_live(const char *pin, const char *text)
{
	struct cgf_engine e;
	int r = cgf_engine_open(&e, pin, true);

	if (!r)
		r = cgf_engine_set(&e, text, NULL);
	cgf_engine_close(&e);
	return r;
}

/* The filter in force at pin: its text (NULL if none; free it) and mode;
 * or -errno (said) if the engine or its filter cannot be read. */
static int filter_in_force(const char *pin, char **text, unsigned int *mode)
{
	struct cgf_filter_view v = {};
	struct cgf_engine e;
	int r = cgf_engine_open(&e, pin, false);

	*text = NULL;
	*mode = CGF_RUN_ENFORCE;
	if (r)
		return r;
	if (e.mode == CGF_MODE_DEDICATED) {
		r = cgf_engine_filter(&e, CGF_SLOT_DEDICATED, &v);
		if (r)
			cgf_err("cannot read the filter in force of %s: %s", pin, strerror(-r));
	}
	if (!r && v.text) {
		*text = strdup(v.text);
		*mode = v.info.mode;
		if (!*text)
			r = -ENOMEM;
	}
	cgf_filter_view_free(&v);
	cgf_engine_close(&e);
	return r;
}

/* The mode of a filter in force other than enforce, in words; NULL: enforce */
static const char *mode_words(unsigned int mode)
{
	switch (mode) {
	case CGF_RUN_ENFORCE: return NULL;
	case CGF_RUN_PASS: return "MODE PASS (it passes everything";
	case CGF_RUN_OBSERVE: return "MODE OBSERVE (it passes everything, counting what it would drop";
	case CGF_RUN_BLOCK: return "MODE BLOCK (it drops everything";
	default: return "MODE UNKNOWN (";
	}
}

/* 1 if prog_id is in force on cgroup cg for the attach type, 0 if not,
 * -errno if the kernel cannot say. */
static int in_force(int cg, enum bpf_attach_type type, uint32_t prog_id)
{
	uint32_t ids[1024], i;
	LIBBPF_OPTS(bpf_prog_query_opts, q, .query_flags = BPF_F_QUERY_EFFECTIVE, .prog_ids = ids,
		    .prog_cnt = 1024);

	if (bpf_prog_query_opts(cg, type, &q))
		return -errno;
	for (i = 0; i < q.prog_cnt && i < 1024; i++)
		if (ids[i] == prog_id)
			return 1;
	return 0;
}

/* Which directions (bit 0 ingress, bit 1 egress) of dirs have the program
 * at pin in force on unit's cgroup; -ENOENT: nothing at pin, -ESRCH: the
 * unit has no cgroup now, other -errno: the kernel cannot say. */
/* unit's cgroup, open; -ESRCH: the unit has no cgroup now */
static int unit_cgroup(const char *unit)
{
	char cgpath[4096], root[PATH_MAX], full[PATH_MAX + 4096];
	int cg;

	if (unit_prop(unit, "ControlGroup", cgpath, sizeof(cgpath)))
		return -EIO;
	if (!*cgpath)
		return -ESRCH;
	if (cgf_cgroup2_root(root, sizeof(root)))
		return -ENODEV;
	snprintf(full, sizeof(full), "%s%s", root, cgpath);
	cg = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return cg;
}

static int attached_dirs(const char *unit, const char *pin, unsigned int dirs)
{
	int fd, cg, got = 0, r = 0;
	uint32_t id;

	fd = bpf_obj_get(pin);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	id = cgf_prog_id(fd);
	close(fd);
	cg = unit_cgroup(unit);
	if (cg < 0)
		return cg;
	if ((dirs & 1) && (r = in_force(cg, BPF_CGROUP_INET_INGRESS, id)) > 0)
		got |= 1;
	if (r >= 0 && (dirs & 2) && (r = in_force(cg, BPF_CGROUP_INET_EGRESS, id)) > 0)
		got |= 2;
	close(cg);
	return r < 0 ? r : got;
}

/* ---- enable ------------------------------------------------------------------------ */

struct dropin {
	char unit[NAME_MAX_LEN + 1];
	char dir[PATH_MAX], path[PATH_MAX];
	char *old;              /* its text, if enable wrote it before */
	bool made_dir;          /* enable made dir (now or before) */
	bool written;
};

struct plan {
	const char *unit;
	struct names n;
	unsigned int dirs;
	char *text;             /* the filter file: MARK UNIT, then the filter */
	char *old;              /* the filter file before, if enable wrote it */
	char self[PATH_MAX];    /* this program, for ExecStartPre= */
	struct dropin d[1 + MAX_SOCKETS]; /* the unit's, then its sockets' */
	int nd;
};

/* This program's path, for ExecStartPre=: refused if systemd would read it
 * as something else (a specifier, an escape, a space). */
static int self_path(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	size_t i;

	if (n <= 0) {
		cgf_err("cannot read /proc/self/exe: %s", strerror(errno));
		return -1;
	}
	out[n] = 0;
	for (i = 0; out[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-", out[i])) {
			cgf_err("cannot name %s in a unit file: its path has a '%c' (run an installed cgfilter)",
				out, out[i]);
			return -1;
		}
	return 0;
}

static char *dropin_text(const struct plan *p, const struct dropin *d)
{
	const char *pin = p->n.pin;
	char *t = NULL;

	if (asprintf(&t,
		     MARK "%s\n"
		     "%s"
		     "# The filter: %s, loaded by %s.\n"
		     "# 'cgfilter disable %s' removes this file.\n"
		     "[Unit]\n"
		     "Requires=%s\n"
		     "After=%s\n\n"
		     "[%s]\n"
		     "%s%s%s%s%s%s"
		     "ExecStartPre=%s check --quiet %s\n",
		     p->unit, d->made_dir ? MADE_DIR "\n" : "", p->n.filter, p->n.loader, p->unit, p->n.loader,
		     p->n.loader, has_suffix(d->unit, ".socket") ? "Socket" : "Service",
		     p->dirs & 1 ? "IPIngressFilterPath=" : "", p->dirs & 1 ? pin : "", p->dirs & 1 ? "\n" : "",
		     p->dirs & 2 ? "IPEgressFilterPath=" : "", p->dirs & 2 ? pin : "", p->dirs & 2 ? "\n" : "",
		     p->self, pin) < 0) {
		cgf_err("out of memory");
		return NULL;
	}
	return t;
}

/* Every check before anything is written: the files there are enable's
 * for this unit, or not there. */
static int plan_files(struct plan *p, char socks[][NAME_MAX_LEN + 1], int ns)
{
	struct stat st;
	int i;

	if (ours(p->n.filter, p->unit, &p->old) < 0)
		return -1;
	p->nd = 1 + ns;
	for (i = 0; i < p->nd; i++) {
		struct dropin *d = &p->d[i];

		snprintf(d->unit, sizeof(d->unit), "%s", i ? socks[i - 1] : p->unit);
		dropin_path(d->unit, d->dir, d->path);
		if (ours(d->path, p->unit, &d->old) < 0)
			return -1;
		d->made_dir = d->old && strstr(d->old, "\n" MADE_DIR "\n");
		if (stat(d->dir, &st) && errno != ENOENT) {
			cgf_err("cannot use %s: %s", d->dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Undo what write_files() wrote (best effort: each file back as it was). */
static void unwrite(struct plan *p, bool filter_written)
{
	int i;

	for (i = 0; i < p->nd; i++) {
		struct dropin *d = &p->d[i];

		if (d->written && !(d->old ? write_file(d->path, d->old) : unlink(d->path)) && !d->old &&
		    d->made_dir)
			rmdir(d->dir);
	}
	if (filter_written && (p->old ? write_file(p->n.filter, p->old) : unlink(p->n.filter)))
		cgf_err("%s: could not put it back as it was", p->n.filter);
}

static int write_files(struct plan *p)
{
	int i, r;

	if (mkdir(CONF_DIR, 0755) && errno != EEXIST) {
		cgf_err("cannot make " CONF_DIR ": %s", strerror(errno));
		return -1;
	}
	/* (what an enable killed before its renames left: the lock is ours) */
	remove_tmp(CONF_DIR, strrchr(p->n.filter, '/') + 1);
	if (write_file(p->n.filter, p->text))
		return -1;
	for (i = 0; i < p->nd; i++) {
		struct dropin *d = &p->d[i];
		char *t;

		remove_tmp(d->dir, DROPIN);

		if (!d->old) {
			if (!mkdir(d->dir, 0755))
				d->made_dir = true;
			else if (errno != EEXIST) {
				cgf_err("cannot make %s: %s", d->dir, strerror(errno));
				unwrite(p, true);
				return -1;
			}
		}
		t = dropin_text(p, d);
		r = t ? write_file(d->path, t) : -1;
		free(t);
		if (r) {
			if (!d->old && d->made_dir)
				rmdir(d->dir);
			unwrite(p, true);
			return -1;
		}
		d->written = true;
	}
	return 0;
}

/* The filter in force where a unit runs without it: which restart. */
static int say_restart(const struct plan *p)
{
	char socks[600] = "";
	int i, r, run_any = 0, need_unit = 0;

	for (i = 0; i < p->nd; i++) {
		int got;

		r = running(p->d[i].unit);
		if (r < 0)
			return -1;
		run_any |= r;
		if (!r)
			continue;
		got = attached_dirs(p->d[i].unit, p->n.pin, p->dirs);
		/* (-ENOENT: nothing at the pin yet; -ESRCH: no cgroup now) */
		if (got < 0 && got != -ESRCH && got != -ENOENT) {
			cgf_err("cannot tell whether %s runs with the filter of %s: %s (cgfilter status %s tells)",
				p->d[i].unit, p->n.pin, strerror(-got), p->unit);
			return -1;
		}
		if (got == (int)p->dirs)
			continue;
		if (!i)
			need_unit = 1;
		else
			snprintf(socks + strlen(socks), sizeof(socks) - strlen(socks), " %s", p->d[i].unit);
	}
	if (!run_any)
		printf("%s is not running: the filter applies when it starts\n", p->unit);
	else if (*socks) /* a socket cannot be restarted while its service holds it */
		printf("%s runs without this filter: it applies after 'systemctl stop %s && systemctl restart%s'\n",
		       p->unit, p->unit, socks);
	else if (need_unit)
		printf("%s runs without this filter: it applies after 'systemctl restart %s'\n", p->unit, p->unit);
	return 0;
}

static int do_enable(struct plan *p, const char *filter)
{
	char socks[MAX_SOCKETS][NAME_MAX_LEN + 1], load[64];
	int ns, live;

	if (asprintf(&p->text, MARK "%s\n%s%s", p->unit, filter,
		     *filter && filter[strlen(filter) - 1] != '\n' ? "\n" : "") < 0)
		return -1;
	if (compile_filter(p->text, false, false, false) || self_path(p->self, sizeof(p->self)) ||
	    unit_prop(p->unit, "LoadState", load, sizeof(load)))
		return -1;
	if (strcmp(load, "loaded")) {
		cgf_err("cannot enable %s: no such unit (systemd says: %s)", p->unit, *load ? load : "nothing");
		return -1;
	}
	ns = sockets_of(p->unit, socks);
	if (ns < 0 || plan_files(p, socks, ns))
		return -1;
	live = loaded(p->n.pin);
	if (live < 0 || (live && set_live(p->n.pin, p->text)))
		return -1;
	if (write_files(p)) {
		if (live && p->old && !set_live(p->n.pin, p->old))
			cgf_err("%s: the filter in force is the one before again", p->n.pin);
		return -1;
	}
	if (live) {
		char *t;
		unsigned int mode = CGF_RUN_ENFORCE;
		const char *m;

		if (filter_in_force(p->n.pin, &t, &mode)) {
			/* (said) set, but its mode unknown: not said to be in force */
			cgf_err("%s: the new filter of %s is set, but it cannot be read back: cgfilter show %s tells whether it is in force",
				p->n.pin, p->unit, p->n.pin);
			if (!systemctl("daemon-reload", NULL))
				say_restart(p);
			return -1;
		}
		free(t);
		if ((m = mode_words(mode)))
			printf("%s: the new filter of %s is loaded, but not in force: %s; cgfilter mode %s enforce puts it in force)\n",
			       p->n.pin, p->unit, m, p->n.pin);
		else
			printf("%s: the new filter of %s is in force\n", p->n.pin, p->unit);
	}
	if (systemctl("daemon-reload", NULL)) {
		cgf_err("the files are written, but systemd has not read them: run systemctl daemon-reload");
		return -1;
	}
	return say_restart(p);
}

/* The names of the pins and filter files of the units cgfilter ships:
 * enable refuses a unit whose filter would take them. */
static const char *const reserved[] = { "apps", "shared" };

int cmd_enable(struct cmd_args *a)
{
	struct plan p = { .dirs = a->ingress || a->egress ? (a->ingress ? 1u : 0) | (a->egress ? 2u : 0) : 3 };
	char *filter;
	bool usage;
	int r, lock, i;

	if (a->argc < 1)
		return usage_error(a, "expected UNIT and a filter (or -f FILE)");
	if (check_unit(a, a->argv[0]))
		return EXIT_USAGE;
	p.unit = a->argv[0];
	names_of(p.unit, &p.n);
	for (i = 0; i < (int)(sizeof(reserved) / sizeof(reserved[0])); i++)
		if (!strcmp(p.n.name, reserved[i])) {
			cgf_err("cannot enable %s: its filter would be %s, which cgfilter-%s.service loads, replaces and unloads: a unit of that name cannot have a filter of its own with enable (register it with the shared engine, or name in IPIngressFilterPath= a filter you load at another pin)",
				p.unit, p.n.pin, reserved[i]);
			return 1;
		}
	if (access("/run/systemd/system", F_OK)) {
		cgf_err("cannot enable %s: systemd is not running here (no /run/systemd/system)", p.unit);
		return 1;
	}
	filter = filter_text(a, 1, &usage);
	if (!filter)
		return usage ? EXIT_USAGE : 1;
	lock = lock_units();
	r = lock < 0 ? -1 : do_enable(&p, filter);
	if (lock >= 0)
		close(lock);
	for (i = 0; i < p.nd; i++)
		free(p.d[i].old);
	free(p.old);
	free(p.text);
	free(filter);
	return r ? 1 : 0;
}

/* ---- disable ----------------------------------------------------------------------- */

/* Every drop-in written by `cgfilter enable owner` (owner NULL: by any
 * enable): fn gets the unit it is for and the owner.  -1 if fn returned
 * it, or UNIT_DIR cannot be read (said). */
static int each_dropin(const char *owner, int (*fn)(const char *unit, const char *owner, void *ctx),
		       void *ctx)
{
	char path[PATH_MAX], line[NAME_MAX_LEN + 64], unit[NAME_MAX_LEN + 1];
	struct dirent *de;
	DIR *dir = opendir(UNIT_DIR);
	FILE *f;
	int r = 0;

	if (!dir) {
		if (errno == ENOENT)
			return 0;
		cgf_err("cannot read " UNIT_DIR ": %s", strerror(errno));
		return -1;
	}
	while (!r && (de = readdir(dir))) {
		size_t n = strlen(de->d_name);

		if (n < 3 || n - 2 > NAME_MAX_LEN || !has_suffix(de->d_name, ".d"))
			continue;
		snprintf(path, sizeof(path), UNIT_DIR "/%s/" DROPIN, de->d_name);
		f = fopen(path, "re");
		if (!f) {
			if (errno != ENOENT) {
				cgf_err("cannot read %s: %s", path, strerror(errno));
				r = -1;
			}
			continue;
		}
		if (!fgets(line, sizeof(line), f))
			*line = 0;
		fclose(f);
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, MARK, strlen(MARK)) || (owner && strcmp(line + strlen(MARK), owner)))
			continue;
		memcpy(unit, de->d_name, n - 2);
		unit[n - 2] = 0;
		r = fn(unit, line + strlen(MARK), ctx);
	}
	closedir(dir);
	return r;
}

/* Remove the drop-in of unit that `cgfilter enable owner` wrote (and its
 * directory where enable made it). */
static int remove_dropin(const char *unit, const char *owner, void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX], *t = NULL;
	bool made;
	int *removed = ctx;

	dropin_path(unit, dir, path);
	if (ours(path, owner, &t) <= 0)
		return -1;
	made = strstr(t, "\n" MADE_DIR "\n");
	free(t);
	if (unlink(path)) {
		cgf_err("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	printf("removed %s\n", path);
	(*removed)++;
	remove_tmp(dir, DROPIN);
	if (made && rmdir(dir) == 0)
		printf("removed %s\n", dir);
	return 0;
}

/* The program at pin detached from unit's cgroup, both directions (what
 * is not attached is passed over); -1 if that fails (said). */
static int detach_unit(const char *unit, const char *pin)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	int fd = bpf_obj_get(pin), cg, d, r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : (cgf_err("cannot open %s: %s", pin, strerror(errno)), -1);
	cg = unit_cgroup(unit);
	if (cg < 0) {
		close(fd);
		if (cg == -ESRCH)
			return 0;
		cgf_err("cannot open the cgroup of %s: %s", unit, strerror(-cg));
		return -1;
	}
	for (d = 0; d < 2 && !r; d++)
		if (bpf_prog_detach2(fd, cg, dirs[d]) && errno != ENOENT) {
			r = -1;
			cgf_err("cannot detach %s from %s (%s): %s", pin, unit, d ? "egress" : "ingress",
				strerror(errno));
		}
	close(cg);
	close(fd);
	return r;
}

static int do_disable(const char *unit, const struct names *n)
{
	char pin[PATH_MAX];
	int removed = 0, r;

	r = ours(n->filter, unit, NULL);
	if (r < 0 || each_dropin(unit, remove_dropin, &removed))
		return -1;
	if (r == 1) {
		if (unlink(n->filter)) {
			cgf_err("cannot remove %s: %s", n->filter, strerror(errno));
			return -1;
		}
		printf("removed %s\n", n->filter);
		removed++;
	}
	remove_tmp(CONF_DIR, strrchr(n->filter, '/') + 1);
	/* none: it has no filter; or a disable cut short, which the loader
	 * still running or systemd still naming the pin tell */
	if (!removed && running(n->loader) <= 0 &&
	    (unit_prop(unit, "IPIngressFilterPath", pin, sizeof(pin)) || !strstr(pin, n->pin)) &&
	    (unit_prop(unit, "IPEgressFilterPath", pin, sizeof(pin)) || !strstr(pin, n->pin))) {
		cgf_err("%s has no filter of cgfilter enable", unit);
		return -1;
	}
	if (systemctl("daemon-reload", NULL))
		return -1;
	/* a running unit: systemd may have detached the filter at the reload,
	 * or may keep it (it applies IP*FilterPath= when it realizes the
	 * cgroup); then the loader's stop would leave it on an engine
	 * unloaded, which drops everything.  Detached here: the unit runs
	 * without the filter now, as it will after a restart, either way. */
	r = running(unit);
	if (r < 0 || (r > 0 && detach_unit(unit, n->pin)))
		return -1;
	/* no unit requires the loader now: stopping it stops nothing else */
	r = running(n->loader);
	if (r < 0 || (r && systemctl("stop", n->loader)))
		return -1;
	if (running(unit) > 0)
		printf("%s runs without a filter now\n", unit);
	return 0;
}

int cmd_disable(struct cmd_args *a)
{
	struct names n;
	int lock, r;

	if (a->argc != 1)
		return usage_error(a, "expected UNIT");
	if (check_unit(a, a->argv[0]))
		return EXIT_USAGE;
	names_of(a->argv[0], &n);
	lock = lock_units();
	if (lock < 0)
		return 1;
	r = do_disable(a->argv[0], &n);
	close(lock);
	return r ? 1 : 0;
}

/* ---- status ------------------------------------------------------------------------ */

/* 1 if the space-separated list has the word w. */
static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	const char *p;

	for (p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ') && (!p[n] || p[n] == ' '))
			return true;
	return false;
}

/* The directions unit's configuration names pin for (-1: cannot say). */
static int wanted_dirs(const char *unit, const char *pin)
{
	char in[PATH_MAX], out[PATH_MAX];

	if (unit_prop(unit, "IPIngressFilterPath", in, sizeof(in)) ||
	    unit_prop(unit, "IPEgressFilterPath", out, sizeof(out)))
		return -1;
	return (has_word(in, pin) ? 1 : 0) | (has_word(out, pin) ? 2 : 0);
}

/* The value of field (such as "path=") in a line of systemctl show's
 * ExecStartPre=, "{ path=... ; argv[]=... ; ignore_errors=no ; ... }",
 * into out ("" if none). */
static void exec_field(const char *line, const char *field, char *out, size_t len)
{
	const char *p = strstr(line, field), *end;

	out[0] = 0;
	if (!p || (p > line && p[-1] != ' '))
		return;
	p += strlen(field);
	end = strstr(p, " ;");
	if (end && (size_t)(end - p) < len)
		snprintf(out, len, "%.*s", (int)(end - p), p);
}

/* Whether a line of ExecStartPre= is the guard enable writes: a program
 * named cgfilter run as 'ARGV0 check --quiet pin', its failure not
 * ignored. */
static bool is_guard(const char *line, const char *pin)
{
	char path[PATH_MAX], args[PATH_MAX + 64], want[PATH_MAX + 32], *base, *rest;

	exec_field(line, "path=", path, sizeof(path));
	exec_field(line, "argv[]=", args, sizeof(args));
	base = strrchr(path, '/');
	rest = strchr(args, ' ');
	snprintf(want, sizeof(want), "check --quiet %s", pin);
	return base && !strcmp(base + 1, "cgfilter") && rest && !strcmp(rest + 1, want) &&
	       strstr(line, " ignore_errors=no ;");
}

/* 1 if unit's ExecStartPre= runs 'cgfilter check --quiet pin' and stops
 * the unit when it fails (the guard enable writes), 0 if not (a later
 * drop-in, such as an override.conf with ExecStartPre= empty, reset it;
 * or a '-' before it; or it runs another program), -1 if systemctl failed
 * (said).  systemctl show prints each command on a line of its own. */
static int has_guard(const char *unit, const char *pin)
{
	char *argv[] = { "systemctl", "show", "--value", "-p", "ExecStartPre", "--", (char *)unit, NULL };
	static char v[65536];
	char *line, *save;
	int r = run(argv, v, sizeof(v));

	if (r) {
		cgf_err("cannot read ExecStartPre of %s: systemctl show failed (exit status %d)", unit, r);
		return -1;
	}
	for (line = strtok_r(v, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (is_guard(line, pin))
			return 1;
	return 0;
}

/* The directions unit's drop-in of enable names the pin for (0 if none) */
static int written_dirs(const char *unit)
{
	char dir[PATH_MAX], path[PATH_MAX], *t;
	int gone, d;

	dropin_path(unit, dir, path);
	t = slurp(path, &gone);
	if (!t)
		return 0;
	d = (strstr(t, "\nIPIngressFilterPath=") ? 1 : 0) | (strstr(t, "\nIPEgressFilterPath=") ? 2 : 0);
	free(t);
	return d;
}

struct status {
	int bad, n;
};

static const char *dirs_name(int d)
{
	return d == 3 ? "both" : d == 1 ? "ingress" : d == 2 ? "egress" : "none";
}

/* Whether the filter of the file is the one in force at pin, enforced. */
static const char *same_text(const struct names *n, char *buf, size_t len)
{
	int gone, r;
	unsigned int mode;
	char *file = slurp(n->filter, &gone), *live = NULL;
	const char *what = NULL, *m;

	r = filter_in_force(n->pin, &live, &mode);
	if (r) {
		snprintf(buf, len, "UNKNOWN (cannot read the filter in force: %s)", strerror(-r));
		what = buf;
	} else if (!file || !live || strcmp(file, live)) {
		what = !file ? "NOT THE FILE'S (the filter file is not there)" :
			       "NOT THE FILE'S (run cgfilter enable again)";
	} else if ((m = mode_words(mode))) {
		snprintf(buf, len, "%s: cgfilter mode %.150s enforce)", m, n->pin);
		what = buf;
	}
	free(file);
	free(live);
	return what;
}

static const char *judge(const char *unit, const struct names *n, int want, int state, char *buf,
			 size_t len)
{
	int got, wrote = written_dirs(unit);

	if (want < 0 || state < 0)
		return "UNKNOWN (systemctl failed)";
	if (!want)
		return "NOT CONFIGURED (systemd does not name the pin: systemctl daemon-reload?)";
	if (wrote & ~want) { /* a direction enable filters, no longer filtered */
		snprintf(buf, len, "NOT CONFIGURED (systemd names the pin for %s only, enable wrote %s: a later drop-in?)",
			 dirs_name(want), dirs_name(wrote));
		return buf;
	}
	got = has_guard(unit, n->pin);
	if (got < 0)
		return "UNKNOWN (systemctl failed)";
	if (!got)
		return "NO GUARD (ExecStartPre= does not run cgfilter check: reset by a later drop-in?)";
	if (!state)
		return NULL;
	got = attached_dirs(unit, n->pin, (unsigned int)want);
	if (got == -ENOENT)
		return "NOT ATTACHED (nothing at the pin: restart the unit)";
	if (got == -ESRCH)
		return "NOT ATTACHED (the unit has no cgroup)";
	if (got < 0) {
		snprintf(buf, len, "UNKNOWN (the kernel cannot say: %s)", strerror(-got));
		return buf;
	}
	if (got != want)
		return got ? "PARTLY ATTACHED (restart the unit)" : "NOT ATTACHED (restart the unit)";
	return same_text(n, buf, len);
}

static int status_one(const char *unit, const char *owner, void *ctx)
{
	struct status *s = ctx;
	struct names n;
	char buf[256], state[64] = "?";
	const char *what;
	int want, st;

	names_of(owner, &n);
	want = wanted_dirs(unit, n.pin);
	unit_prop(unit, "ActiveState", state, sizeof(state));
	st = running(unit);
	what = judge(unit, &n, want, st, buf, sizeof(buf));
	if (!what && !st) {
		/* not running, maybe because its loader failed (Requires=) */
		char ls[64] = "";

		if (unit_prop(n.loader, "ActiveState", ls, sizeof(ls)))
			what = "UNKNOWN (systemctl failed)";
		else if (!strcmp(ls, "failed")) {
			snprintf(buf, sizeof(buf), "LOADER FAILED (journalctl -u %.200s)", n.loader);
			what = buf;
		}
	}
	if (!what)
		what = st ? "attached" : "not running";
	else
		s->bad = 1;
	if (!s->n)
		printf("%-24s %-10s %-8s %-40s %s\n", "UNIT", "STATE", "FILTERS", "PIN", "IN FORCE");
	printf("%-24s %-10s %-8s %-40s %s\n", unit, state, dirs_name(want), n.pin, what);
	s->n++;
	return 0;
}

/* The sockets of owner that should have its drop-in and have none (an
 * enable cut short, or a socket unit added since). */
static int check_sockets(const char *owner, struct status *s)
{
	char socks[MAX_SOCKETS][NAME_MAX_LEN + 1], dir[PATH_MAX], path[PATH_MAX];
	int n = sockets_of(owner, socks), i;

	for (i = 0; i < n; i++) {
		dropin_path(socks[i], dir, path);
		if (access(path, F_OK)) {
			printf("%-24s %-10s %-8s %-40s %s\n", socks[i], "", "", "",
			       "NOT CONFIGURED (no drop-in: run cgfilter enable again)");
			s->bad = 1;
		}
	}
	return n < 0 ? -1 : 0;
}

static int status_owner(const char *unit, const char *owner, void *ctx)
{
	return strcmp(unit, owner) ? 0 : check_sockets(owner, ctx);
}

int cmd_status(struct cmd_args *a)
{
	struct status s = {};

	if (a->argc > 1)
		return usage_error(a, "expected at most one UNIT");
	if (a->argc == 1 && check_unit(a, a->argv[0]))
		return EXIT_USAGE;
	if (each_dropin(a->argc ? a->argv[0] : NULL, status_one, &s) ||
	    each_dropin(a->argc ? a->argv[0] : NULL, status_owner, &s))
		return 1;
	if (!s.n) {
		if (a->argc) {
			cgf_err("%s has no filter of cgfilter enable", a->argv[0]);
			return 1;
		}
		printf("no unit has a filter of cgfilter enable\n");
	}
	return s.bad;
}
