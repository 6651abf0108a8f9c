// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter enable, disable and status: a persistent filter for a systemd
 * unit in one command.
 *
 * enable UNIT writes the filter to /etc/cgfilter/UNIT.filter, which
 * cgfilter@UNIT.service loads at /sys/fs/bpf/cgfilter/UNIT, and a drop-in
 * /etc/systemd/system/UNIT.d/cgfilter.conf that requires that loader, names
 * the pin with IPIngressFilterPath=/IPEgressFilterPath= and guards the
 * start with `cgfilter check`; a service started by a .socket unit gets the
 * same drop-in for the socket unit, whose filter is the one that applies to
 * the sockets it passes in.  Each file says on its first line that enable
 * wrote it, and for which unit: disable removes exactly those files (and a
 * drop-in directory only where enable made it), and status finds the units
 * from them.  What status reports is read from the kernel: the programs in
 * force on the unit's cgroup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cmd.h"

#define CONF_DIR "/etc/cgfilter"
#define UNIT_DIR "/etc/systemd/system"
#define PIN_DIR "/sys/fs/bpf/cgfilter"
#define DROPIN "cgfilter.conf"
#define MARK "# Written by cgfilter enable "  /* + UNIT; disable removes it */
#define MADE_DIR "# cgfilter made this directory"

/* ---- small helpers --------------------------------------------------------------- */

/* Unit names as systemd takes them: [A-Za-z0-9:_.\\@-], at most 255
 * bytes, a name before the suffix; only services and sockets have the
 * IP filter settings and ExecStartPre= that enable writes. */
static bool valid_unit(const char *u)
{
	const char *dot = strrchr(u, '.');
	size_t i;

	if (!*u || strlen(u) > 255 || !dot || dot == u)
		return false;
	for (i = 0; u[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.\\@-", u[i]))
			return false;
	return !strcmp(dot, ".service") || !strcmp(dot, ".socket");
}

static bool is_socket(const char *u)
{
	size_t n = strlen(u);

	return n > 7 && !strcmp(u + n - 7, ".socket");
}

/* Run argv; its standard output (at most len - 1 bytes) in out if out.
 * Returns the exit status, or -1 if it could not run (said). */
static int run(char *const argv[], char *out, size_t len)
{
	int p[2], st;
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
		fprintf(stderr, "%s: cannot run %s: %s\n", cgf_prog, argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(p[1]);
		while (len && (k = read(p[0], out + n, len - 1 - n)) > 0)
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

/* The .socket unit that starts service, "" if none (or -1, said). */
static int socket_of(const char *service, char *out, size_t len)
{
	char v[4096], *tok, *save;

	*out = 0;
	if (is_socket(service))
		return 0;
	if (unit_prop(service, "TriggeredBy", v, sizeof(v)))
		return -1;
	for (tok = strtok_r(v, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (is_socket(tok) && strlen(tok) < len) {
			strcpy(out, tok);
			break;
		}
	return 0;
}

/* The name of unit's filter: the unit's name without ".service", every
 * other '.' written '_' (a BPF filesystem name has no '.', and systemd
 * would undo an escape in ExecStart=); cgfilter@NAME loads
 * CONF_DIR/NAME.filter at PIN_DIR/NAME.  Two units with one name (a.b and
 * a_b): the second is refused, the filter file naming the first. */
static void filter_name(const char *unit, char *out, size_t len)
{
	size_t n = strlen(unit), i;

	if (n > 8 && !strcmp(unit + n - 8, ".service"))
		n -= 8;
	for (i = 0; i < n && i + 1 < len; i++)
		out[i] = unit[i] == '.' ? '_' : unit[i];
	out[i] = 0;
}

static void paths(const char *unit, char *filter, char *dropin_dir, char *dropin, char *pin)
{
	char name[1100];

	filter_name(unit, name, sizeof(name));
	snprintf(filter, PATH_MAX, CONF_DIR "/%s.filter", name);
	snprintf(dropin_dir, PATH_MAX, UNIT_DIR "/%s.d", unit);
	snprintf(dropin, PATH_MAX, UNIT_DIR "/%s.d/" DROPIN, unit);
	snprintf(pin, PATH_MAX, PIN_DIR "/%s", name);
}

/* The first line of path, "" if it is not there (or -1 if it cannot be
 * read, said). */
static int first_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");

	*out = 0;
	if (!f) {
		if (errno == ENOENT)
			return 0;
		cgf_err("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (!fgets(out, (int)len, f))
		*out = 0;
	out[strcspn(out, "\n")] = 0;
	fclose(f);
	return 0;
}

/* 1 if path was written by `cgfilter enable owner`, 0 if it is not there,
 * -1 if it is someone else's or unreadable (said). */
static int ours(const char *path, const char *owner)
{
	char line[512], want[512];

	if (first_line(path, line, sizeof(line)))
		return -1;
	if (!*line && access(path, F_OK))
		return 0;
	snprintf(want, sizeof(want), MARK "%s", owner);
	if (!strcmp(line, want))
		return 1;
	cgf_err("%s exists and cgfilter enable %s did not write it: move it away first", path, owner);
	return -1;
}

/* Write text to path atomically (a temporary file beside it, renamed). */
static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 16];
	size_t n = strlen(text);
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.cgf-tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		cgf_err("cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, text, n) != (ssize_t)n || fsync(fd))
		r = -1;
	if (close(fd))
		r = -1;
	if (!r && rename(tmp, path))
		r = -1;
	if (r) {
		cgf_err("cannot write %s: %s", path, strerror(errno ? errno : EIO));
		unlink(tmp);
	}
	return r;
}

/* ---- enable ------------------------------------------------------------------------ */

/* The drop-in of unit (the service or its socket) for the filter of owner. */
static char *dropin_text(const char *unit, const char *owner, unsigned int dirs, bool made_dir)
{
	char pin[PATH_MAX], self[PATH_MAX], name[1100], *t = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		cgf_err("cannot read /proc/self/exe: %s", strerror(errno));
		return NULL;
	}
	self[n] = 0;
	filter_name(owner, name, sizeof(name));
	snprintf(pin, sizeof(pin), PIN_DIR "/%s", name);
	if (asprintf(&t,
		     MARK "%s\n"
		     "%s"
		     "# The filter: " CONF_DIR "/%s.filter, loaded by cgfilter@%s.service.\n"
		     "# 'cgfilter disable %s' removes this file.\n"
		     "[Unit]\n"
		     "Requires=cgfilter@%s.service\n"
		     "After=cgfilter@%s.service\n\n"
		     "[%s]\n"
		     "%s%s%s%s%s%s"
		     "ExecStartPre=%s check --quiet %s\n",
		     owner, made_dir ? MADE_DIR "\n" : "", name, name, owner, name, name,
		     is_socket(unit) ? "Socket" : "Service",
		     dirs & 1 ? "IPIngressFilterPath=" : "", dirs & 1 ? pin : "", dirs & 1 ? "\n" : "",
		     dirs & 2 ? "IPEgressFilterPath=" : "", dirs & 2 ? pin : "", dirs & 2 ? "\n" : "",
		     self, pin) < 0)
		return NULL;
	return t;
}

static int write_dropin(const char *unit, const char *owner, unsigned int dirs)
{
	char f[PATH_MAX], dir[PATH_MAX], dropin[PATH_MAX], pin[PATH_MAX], line[512], *t;
	bool made = false;
	int r;

	paths(unit, f, dir, dropin, pin);
	r = ours(dropin, owner);
	if (r < 0)
		return -1;
	if (r == 1) { /* rewritten: keep what it says about the directory */
		FILE *in = fopen(dropin, "re");

		while (in && fgets(line, sizeof(line), in))
			if (!strncmp(line, MADE_DIR, strlen(MADE_DIR)))
				made = true;
		if (in)
			fclose(in);
	} else if (mkdir(dir, 0755) == 0) {
		made = true;
	} else if (errno != EEXIST) {
		cgf_err("cannot make %s: %s", dir, strerror(errno));
		return -1;
	}
	t = dropin_text(unit, owner, dirs, made);
	r = t ? write_file(dropin, t) : -1;
	free(t);
	if (r && made)
		rmdir(dir);
	return r;
}

/* Put text in force now in the loaded engine at pin (like 'cgfilter set'). */
static int set_live(const char *pin, const char *text)
{
	struct cgf_engine e;
	int r = cgf_engine_open(&e, pin, true);

	if (!r)
		r = cgf_engine_set(&e, text, NULL);
	cgf_engine_close(&e);
	return r;
}

static bool active(const char *unit)
{
	char v[64];

	return !unit_prop(unit, "ActiveState", v, sizeof(v)) &&
	       (!strcmp(v, "active") || !strcmp(v, "reloading") || !strcmp(v, "activating"));
}

static int attached_dirs(const char *unit, const char *pin, unsigned int dirs);

/* After the files are written and systemd has read them: the filter in
 * force now where it can be, else which restart puts it there. */
static int take_effect(const char *unit, const char *sock, const char *pin, const char *text,
		       unsigned int dirs)
{
	const char *units[2] = { unit, *sock ? sock : NULL };
	char loader[PATH_MAX + 32], restart[600] = "", name[1100];
	bool running = false;
	int r, i;

	filter_name(unit, name, sizeof(name));
	snprintf(loader, sizeof(loader), "cgfilter@%s.service", name);
	if (active(loader) && !access(pin, F_OK)) {
		r = set_live(pin, text);
		if (r)
			return r;
		printf("%s: the new filter of %s is in force\n", pin, unit);
	}
	for (i = 0; i < 2; i++) {
		if (!units[i] || !active(units[i]))
			continue;
		running = true;
		if (attached_dirs(units[i], pin, dirs) != (int)dirs)
			snprintf(restart + strlen(restart), sizeof(restart) - strlen(restart), " %s", units[i]);
	}
	if (!running)
		printf("%s is not running: the filter applies when it starts\n", unit);
	else if (*restart)
		printf("%s runs without this filter: it applies after 'systemctl restart%s'\n", unit, restart);
	return 0;
}

static int enable_files(const char *unit, const char *sock, const char *text, unsigned int dirs,
			char **old)
{
	char f[PATH_MAX], d[PATH_MAX], dropin[PATH_MAX], pin[PATH_MAX], *t;
	int r;

	paths(unit, f, d, dropin, pin);
	/* a filter file of ours without the drop-in: an enable cut short */
	if (ours(dropin, unit) < 0 || (r = ours(f, unit)) < 0)
		return -1;
	*old = r == 1 ? read_text_file(f) : NULL;
	if (mkdir(CONF_DIR, 0755) && errno != EEXIST) {
		cgf_err("cannot make " CONF_DIR ": %s", strerror(errno));
		return -1;
	}
	if (asprintf(&t, MARK "%s\n%s%s", unit, text, text[0] && text[strlen(text) - 1] != '\n' ? "\n" : "") < 0)
		return -1;
	r = write_file(f, t);
	free(t);
	if (!r)
		r = write_dropin(unit, unit, dirs);
	if (!r && *sock)
		r = write_dropin(sock, unit, dirs);
	return r;
}

int cmd_enable(struct cmd_args *a)
{
	char f[PATH_MAX], d[PATH_MAX], dropin[PATH_MAX], pin[PATH_MAX], sock[256], *text, *old = NULL;
	unsigned int dirs = a->ingress || a->egress ? (a->ingress ? 1 : 0) | (a->egress ? 2 : 0) : 3;
	const char *unit;
	char load[64];
	bool usage;
	int r;

	if (a->argc < 1)
		return usage_error(a, "expected UNIT and a filter");
	unit = a->argv[0];
	if (!valid_unit(unit))
		return usage_error(a, "'%s' is not the name of a .service or .socket unit", unit);
	if (access("/run/systemd/system", F_OK)) {
		cgf_err("cannot enable %s: systemd is not running here (no /run/systemd/system)", unit);
		return 1;
	}
	text = filter_text(a, 1, &usage);
	if (!text)
		return usage ? EXIT_USAGE : 1;
	paths(unit, f, d, dropin, pin);
	r = compile_filter(text, false, false);
	if (!r && (r = unit_prop(unit, "LoadState", load, sizeof(load))) == 0 && strcmp(load, "loaded")) {
		cgf_err("%s: no such unit (systemd says: %s)", unit, *load ? load : "nothing");
		r = -1;
	}
	if (!r)
		r = socket_of(unit, sock, sizeof(sock));
	if (!r)
		r = enable_files(unit, sock, text, dirs, &old);
	if (!r)
		r = systemctl("daemon-reload", NULL);
	if (!r) {
		r = take_effect(unit, sock, pin, text, dirs);
		if (r && old) { /* the old filter stays in force: so does its file */
			write_file(f, old);
			cgf_err("%s: kept the filter that was in force", f);
		}
	}
	free(old);
	free(text);
	return r ? 1 : 0;
}

/* ---- disable ----------------------------------------------------------------------- */

/* Remove the drop-in of unit written for owner (and its directory if
 * enable made it); 0 if there was none. */
static int remove_dropin(const char *unit, const char *owner, bool *removed)
{
	char f[PATH_MAX], dir[PATH_MAX], dropin[PATH_MAX], pin[PATH_MAX], line[512];
	bool made = false;
	FILE *in;
	int r;

	paths(unit, f, dir, dropin, pin);
	r = ours(dropin, owner);
	if (r <= 0)
		return r;
	in = fopen(dropin, "re");
	while (in && fgets(line, sizeof(line), in))
		if (!strncmp(line, MADE_DIR, strlen(MADE_DIR)))
			made = true;
	if (in)
		fclose(in);
	if (unlink(dropin)) {
		cgf_err("cannot remove %s: %s", dropin, strerror(errno));
		return -1;
	}
	printf("removed %s\n", dropin);
	*removed = true;
	if (made && rmdir(dir) == 0)
		printf("removed %s\n", dir);
	return 0;
}

/* Every drop-in written by `cgfilter enable owner` (owner NULL: by any
 * enable): fn gets the unit it is for and the owner.  Returns -1 if fn
 * did (or the directory cannot be read, said). */
static int each_dropin(const char *owner, int (*fn)(const char *unit, const char *owner, void *ctx),
		       void *ctx)
{
	char path[PATH_MAX], line[512], unit[256];
	struct dirent *de;
	DIR *dir = opendir(UNIT_DIR);
	int r = 0;

	if (!dir) {
		if (errno == ENOENT)
			return 0;
		cgf_err("cannot read " UNIT_DIR ": %s", strerror(errno));
		return -1;
	}
	while (!r && (de = readdir(dir))) {
		size_t n = strlen(de->d_name);

		if (n < 3 || n - 2 >= sizeof(unit) || strcmp(de->d_name + n - 2, ".d"))
			continue;
		snprintf(path, sizeof(path), UNIT_DIR "/%s/" DROPIN, de->d_name);
		if (first_line(path, line, sizeof(line)) || strncmp(line, MARK, strlen(MARK)))
			continue;
		if (owner && strcmp(line + strlen(MARK), owner))
			continue;
		memcpy(unit, de->d_name, n - 2);
		unit[n - 2] = 0;
		r = fn(unit, line + strlen(MARK), ctx);
	}
	closedir(dir);
	return r;
}

static int disable_one(const char *unit, const char *owner, void *ctx)
{
	return remove_dropin(unit, owner, ctx);
}

int cmd_disable(struct cmd_args *a)
{
	char f[PATH_MAX], d[PATH_MAX], dropin[PATH_MAX], pin[PATH_MAX], loader[PATH_MAX + 32], name[1100];
	bool removed = false;
	const char *unit;
	int r;

	if (a->argc != 1)
		return usage_error(a, "expected UNIT");
	unit = a->argv[0];
	if (!valid_unit(unit))
		return usage_error(a, "'%s' is not the name of a .service or .socket unit", unit);
	paths(unit, f, d, dropin, pin);
	r = ours(f, unit);
	if (r >= 0)
		r = each_dropin(unit, disable_one, &removed);
	if (r < 0)
		return 1;
	if (!removed && access(f, F_OK)) {
		cgf_err("%s has no filter of cgfilter enable", unit);
		return 1;
	}
	if (!access(f, F_OK)) {
		if (unlink(f)) {
			cgf_err("cannot remove %s: %s", f, strerror(errno));
			return 1;
		}
		printf("removed %s\n", f);
	}
	if (systemctl("daemon-reload", NULL))
		return 1;
	/* no unit requires the loader now: stopping it stops nothing else */
	filter_name(unit, name, sizeof(name));
	snprintf(loader, sizeof(loader), "cgfilter@%s.service", name);
	if (active(loader) && systemctl("stop", loader))
		return 1;
	if (active(unit))
		printf("%s keeps the filter it started with until 'systemctl restart %s'\n", unit, unit);
	return 0;
}

/* ---- status ------------------------------------------------------------------------ */

/* 1 if prog_id is in force on cgroup cg for the attach type, 0 if not. */
static int in_force(int cg, enum bpf_attach_type type, uint32_t prog_id)
{
	uint32_t ids[64], n = 64, i;
	LIBBPF_OPTS(bpf_prog_query_opts, q, .query_flags = BPF_F_QUERY_EFFECTIVE, .prog_ids = ids,
		    .prog_cnt = n);

	if (bpf_prog_query_opts(cg, type, &q))
		return 0;
	for (i = 0; i < q.prog_cnt && i < n; i++)
		if (ids[i] == prog_id)
			return 1;
	return 0;
}

/* Which directions (bit 0 ingress, bit 1 egress) of dirs have the program
 * pinned at pin in force on unit's cgroup; -1: unit has no cgroup now,
 * -2: nothing at pin. */
static int attached_dirs(const char *unit, const char *pin, unsigned int dirs)
{
	char cgpath[4096], root[PATH_MAX], full[PATH_MAX + 4096];
	int fd, cg, got = 0;
	uint32_t id;

	if (unit_prop(unit, "ControlGroup", cgpath, sizeof(cgpath)) || !*cgpath)
		return -1;
	fd = bpf_obj_get(pin);
	if (fd < 0)
		return -2;
	id = cgf_prog_id(fd);
	close(fd);
	if (cgf_cgroup2_root(root, sizeof(root)))
		return -1;
	snprintf(full, sizeof(full), "%s%s", root, cgpath);
	cg = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return -1;
	if ((dirs & 1) && in_force(cg, BPF_CGROUP_INET_INGRESS, id))
		got |= 1;
	if ((dirs & 2) && in_force(cg, BPF_CGROUP_INET_EGRESS, id))
		got |= 2;
	close(cg);
	return got;
}

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

/* The directions unit's configuration names pin for. */
static unsigned int wanted_dirs(const char *unit, const char *pin)
{
	char v[PATH_MAX];
	unsigned int d = 0;

	if (!unit_prop(unit, "IPIngressFilterPath", v, sizeof(v)) && has_word(v, pin))
		d |= 1;
	if (!unit_prop(unit, "IPEgressFilterPath", v, sizeof(v)) && has_word(v, pin))
		d |= 2;
	return d;
}

struct status {
	int bad;
	int n;
	bool header;
};

static const char *dirs_name(unsigned int d)
{
	return d == 3 ? "both" : d == 1 ? "ingress" : d == 2 ? "egress" : "none";
}

static int status_one(const char *unit, const char *owner, void *ctx)
{
	char pin[PATH_MAX], state[64] = "", name[1100];
	struct status *s = ctx;
	unsigned int want;
	const char *what;
	int got;

	filter_name(owner, name, sizeof(name));
	snprintf(pin, sizeof(pin), PIN_DIR "/%s", name);
	want = wanted_dirs(unit, pin);
	unit_prop(unit, "ActiveState", state, sizeof(state));
	if (!want) {
		what = "NOT CONFIGURED (systemctl daemon-reload?)";
		s->bad = 1;
	} else if (strcmp(state, "active") && strcmp(state, "reloading") && strcmp(state, "activating")) {
		what = "not running";
	} else if ((got = attached_dirs(unit, pin, want)) == -2) {
		what = "NOT ATTACHED (nothing at the pin: restart the unit)";
		s->bad = 1;
	} else if (got == -1) {
		what = "NOT ATTACHED (the unit has no cgroup)";
		s->bad = 1;
	} else if (got != (int)want) {
		what = got ? "PARTLY ATTACHED (restart the unit)" : "NOT ATTACHED (restart the unit)";
		s->bad = 1;
	} else {
		what = "attached";
	}
	if (!s->header)
		printf("%-24s %-10s %-8s %-40s %s\n", "UNIT", "STATE", "FILTERS", "PIN", "IN FORCE");
	s->header = true;
	printf("%-24s %-10s %-8s %-40s %s\n", unit, *state ? state : "?", dirs_name(want), pin, what);
	s->n++;
	return 0;
}

int cmd_status(struct cmd_args *a)
{
	struct status s = {};

	if (a->argc > 1)
		return usage_error(a, "expected at most one UNIT");
	if (a->argc == 1 && !valid_unit(a->argv[0]))
		return usage_error(a, "'%s' is not the name of a .service or .socket unit", a->argv[0]);
	if (each_dropin(a->argc ? a->argv[0] : NULL, status_one, &s))
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
