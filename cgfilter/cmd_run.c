// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter run [--name NAME] (EXPR | -f FILE) -- CMD [ARG...]
 *
 * CMD runs in a cgroup of its own whose ingress and egress carry the filter
 * before CMD executes.  Three processes:
 *
 *  - this one (the parent): loads an engine at /sys/fs/bpf/cgfilter-run/NAME,
 *    makes the cgroup, starts CMD, passes signals on, exits with CMD's
 *    status;
 *  - the child: with systemd as PID 1, 'systemd-run --scope --unit NAME.scope
 *    -p IPIngressFilterPath=PIN -p IPEgressFilterPath=PIN' (a transient
 *    scope: systemctl shows it) runs 'cgfilter __run-exec', which checks that
 *    the filter is attached to its cgroup for both directions before it
 *    executes CMD (systemd attaches best effort: fail closed), and also
 *    that every cgroup_skb program in force where run was started is in
 *    force there (a run is no way out of a filter); without
 *    systemd the child joins a cgroup made below the caller's
 *    (cgfilter-run-NAME, so the caller's filters still apply) with the
 *    filter attached, checks the same, and
 *    executes CMD;
 *  - the cleaner, a daemon of its own session: when the cgroup is empty
 *    (CMD and all it started ended) it removes the cgroup it made and the
 *    pin (only the engine this run loaded: by program id).  It is forked
 *    first, so 'kill -9' of the parent at any point leaves nothing behind
 *    once CMD ends.
 *
 * The cleaner learns what to clean through a pipe, one line each:
 *   L <id>      the engine's entry program id (parent, after the load)
 *   G <path>    the cgroup the parent made (no systemd)
 *   C <path>    the cgroup CMD runs in, filter checked (the child, last)
 * EOF without C: the start failed; clean at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cmd.h"

#define RUN_DIR "/sys/fs/bpf/cgfilter-run"
#define NAME_MAX_LEN 200

static volatile pid_t child_pid;
static const int fwd_signals[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM,
				   SIGWINCH };
#define NFWD (sizeof(fwd_signals) / sizeof(fwd_signals[0]))

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static bool valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > NAME_MAX_LEN || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("_:-", s[i]))
			return false;
	return true;
}

static void say(int fd, char kind, const char *what)
{
	char line[PATH_MAX + 8];
	int n = snprintf(line, sizeof(line), "%c %s\n", kind, what);

	/* (a cleaner gone has nothing to be told) */
	if (n > 0 && n < (int)sizeof(line) && write(fd, line, (size_t)n) != n)
		return;
}

/* cgf_load_opts.before_pin: the cleaner learns the engine's id */
static void tell_id(uint32_t id, void *ctx)
{
	char ids[16];

	snprintf(ids, sizeof(ids), "%u", id);
	say(*(int *)ctx, 'L', ids);
}

/* This process's cgroup directory. */
static int my_cgroup(char *path, size_t len)
{
	char root[PATH_MAX], line[PATH_MAX + 8];
	FILE *f;
	int r = -ENOENT;

	if (cgf_cgroup2_root(root, sizeof(root)) || !(f = fopen("/proc/self/cgroup", "re")))
		return -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			if (snprintf(path, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "") < (int)len)
				r = 0;
		}
	fclose(f);
	return r;
}

/*
 * In the cgroup CMD is to run in: check that program id filters it in both
 * directions (attached here or above), tell the cleaner (fd), execute CMD.
 */
/* The cgroup_skb programs in force in cgroup cg for each direction, as
 * "INGRESS-IDS/EGRESS-IDS" (ids separated by ','): what CMD must stay
 * under.  -errno. */
static int effective(int cg, char *out, size_t len)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	size_t o = 0;
	int d;

	out[0] = 0;
	for (d = 0; d < 2; d++) {
		uint32_t ids[64], cnt = 64, flags = 0, i;

		if (bpf_prog_query(cg, dirs[d], BPF_F_QUERY_EFFECTIVE, &flags, ids, &cnt))
			return -errno;
		for (i = 0; i < cnt && o + 16 < len; i++)
			o += (size_t)snprintf(out + o, len - o, "%s%u", i ? "," : "", ids[i]);
		if (!d && o + 2 < len)
			out[o++] = '/', out[o] = 0;
	}
	return 0;
}

/* Whether every id of keep ("A,B/C,D") is in have, direction by direction;
 * *missing: the first that is not. */
static bool keeps(const char *keep, const char *have, unsigned long *missing)
{
	const char *k = keep, *hslash = strchr(have, '/');
	int d = 0;

	while (*k) {
		char *end;
		unsigned long id = strtoul(k, &end, 10);
		const char *h = d ? (hslash ? hslash + 1 : "") : have;
		const char *hend = d || !hslash ? h + strlen(h) : hslash;
		bool found = false;

		if (end == k) { /* '/' or ',' */
			if (*k == '/')
				d = 1;
			k++;
			continue;
		}
		while (h < hend) {
			char *e2;
			unsigned long x = strtoul(h, &e2, 10);

			if (e2 == h)
				break;
			found |= x == id;
			h = *e2 == ',' ? e2 + 1 : e2;
		}
		if (!found) {
			*missing = id;
			return false;
		}
		k = end;
	}
	return true;
}

static int run_exec(int fd, uint32_t id, const char *keep, char **cmd)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	char path[PATH_MAX], have[2048];
	unsigned long missing;
	int cg, d;

	if (my_cgroup(path, sizeof(path))) {
		cgf_say("cgfilter run", "cannot find my cgroup (is cgroup2 mounted?); not running %s",
			cmd[0]);
		return 1;
	}
	cg = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (d = 0; d < 2; d++) {
		uint32_t ids[64], cnt = 64, flags = 0, i;
		bool found = false;

		if (cg < 0 || bpf_prog_query(cg, dirs[d], BPF_F_QUERY_EFFECTIVE, &flags, ids, &cnt)) {
			cgf_say("cgfilter run", "cannot read the programs of cgroup %s: %s; not running %s",
				path, strerror(errno), cmd[0]);
			return 1;
		}
		for (i = 0; i < cnt; i++)
			found |= ids[i] == id;
		if (!found) {
			cgf_say("cgfilter run", "the filter is not attached to cgroup %s for %s; not running %s",
				path, d ? "egress" : "ingress", cmd[0]);
			return 1;
		}
	}
	/* the filters where cgfilter run was started apply here too: a run
	 * must not be a way out of them */
	missing = 0;
	if (effective(cg, have, sizeof(have)) || !keeps(keep, have, &missing)) {
		cgf_say("cgfilter run", "the cgroup cgfilter run was started in has a filter (program id %lu) that would not apply in %s: not running %s (a run must not be a way out of a filter; start it from a cgroup without one)",
			missing, path, cmd[0]);
		return 1;
	}
	close(cg);
	say(fd, 'C', path);
	close(fd);
	execvp(cmd[0], cmd);
	cgf_say("cgfilter run", "cannot run %s: %s", cmd[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* cgfilter __run-exec FD ID KEEP -- CMD...: the child's second half, in
 * the scope systemd-run made (KEEP: effective()'s ids of where run began). */
int cgf_run_exec_main(int argc, char **argv)
{
	char *end;
	long fd;
	unsigned long id;

	if (argc < 6 || strcmp(argv[4], "--"))
		return 2;
	fd = strtol(argv[1], &end, 10);
	if (*end || fd < 0)
		return 2;
	id = strtoul(argv[2], &end, 10);
	if (*end || !id || id > UINT32_MAX)
		return 2;
	return run_exec((int)fd, (uint32_t)id, argv[3], argv + 5);
}

/* ---- the cleaner -------------------------------------------------------------------- */

static bool populated(const char *cg, bool *gone)
{
	char p[PATH_MAX + 16], buf[256];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/cgroup.events", cg);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*gone = true;
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;   /* cannot tell: wait */
	buf[n] = 0;
	return !strstr(buf, "populated 0");
}

/* Remove the cgroup made (if any) and this run's engine: the one whose
 * entry program is id, pinned or half-made (a load killed before its pin);
 * never another run's.  (The parent directories stay: another run may be
 * making its own there right now.) */
static void clean(const char *pin, uint32_t id, const char *made)
{
	uint32_t now = 0;
	int i, fd;

	if (made[0])
		for (i = 0; i < 100 && rmdir(made) && errno == EBUSY; i++)
			usleep(50000);
	if (!id)
		return;
	fd = bpf_obj_get(pin);
	if (fd >= 0) {
		now = cgf_prog_id(fd);
		close(fd);
	}
	/* (no detach walk over the whole tree: the run's cgroup is gone, and
	 * one cgroup that cannot be read must not keep the pin forever) */
	if (fd < 0 ? errno == ENOENT : now == id) {
		cgf_quiet = 1;
		for (i = 0; i < 5 && cgf_engine_unload(pin, false) && !access(pin, F_OK); i++)
			sleep(1);
	}
}

/* Wait until cgroup cg is empty (or gone). */
static void wait_empty(const char *cg)
{
	char ev[PATH_MAX + 16];
	bool gone = false;
	int ino = inotify_init1(IN_CLOEXEC);

	snprintf(ev, sizeof(ev), "%s/cgroup.events", cg);
	if (ino >= 0 && inotify_add_watch(ino, ev, IN_MODIFY | IN_DELETE_SELF) < 0) {
		close(ino);
		ino = -1;
	}
	while (populated(cg, &gone) && !gone) {
		struct pollfd p = { .fd = ino, .events = POLLIN };
		char junk[4096];

		/* (a change between the read and the poll is seen within a
		 * second all the same) */
		if (ino < 0)
			sleep(1);
		else if (poll(&p, 1, 1000) > 0 && read(ino, junk, sizeof(junk)) < 0)
			sleep(1);
	}
	if (ino >= 0)
		close(ino);
}

/* With systemd: the rest of the wait in a transient service of its own, so
 * that it outlives the caller's unit (stopping a unit kills what it left). */
static bool hand_over(const char *self, const char *pin, uint32_t id, const char *cg)
{
	char ids[16], unit[PATH_MAX];
	const char *name = strrchr(pin, '/') + 1;
	int st;
	pid_t p;

	snprintf(ids, sizeof(ids), "%u", id);
	snprintf(unit, sizeof(unit), "%s-cleanup.service", name);
	p = fork();
	if (p < 0)
		return false;
	if (!p) {
		execlp("systemd-run", "systemd-run", "--quiet", "--collect", "--unit", unit,
		       "--description", "cgfilter run: remove the filter when the scope ends", "--",
		       self, "__run-clean", pin, ids, cg, (char *)NULL);
		_exit(127);
	}
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(st) && !WEXITSTATUS(st);
}

/* cgfilter __run-clean PIN ID CGROUP: the cleaner's last part, as a unit. */
int cgf_run_clean_main(int argc, char **argv)
{
	unsigned long id;
	char *end;

	if (argc != 4)
		return 2;
	id = strtoul(argv[2], &end, 10);
	if (*end || !id || id > UINT32_MAX)
		return 2;
	wait_empty(argv[3]);
	clean(argv[1], (uint32_t)id, "");
	return 0;
}

static void cleaner(int in, int done, const char *pin, const char *self, bool sd)
{
	char buf[2 * PATH_MAX + 64], made[PATH_MAX] = "", cg[PATH_MAX] = "";
	size_t len = 0;
	uint32_t id = 0;

	/* out of the caller's session and terminal: its signals are not ours */
	setsid();
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		ssize_t n = read(in, buf + len, sizeof(buf) - 1 - len);
		char *line, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
			*nl = 0;
			if (line[0] == 'L')
				id = (uint32_t)strtoul(line + 2, NULL, 10);
			else if (line[0] == 'G')
				snprintf(made, sizeof(made), "%s", line + 2);
			else if (line[0] == 'C')
				snprintf(cg, sizeof(cg), "%s", line + 2);
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		if (len == sizeof(buf) - 1)
			len = 0;
	}
	close(in);
	if (cg[0] && sd && id && hand_over(self, pin, id, cg)) {
		close(done);
		_exit(0);
	}
	if (cg[0]) /* CMD runs: wait until its cgroup is empty */
		wait_empty(cg);
	clean(pin, id, made);
	close(done);
	_exit(0);
}

/* Start the cleaner: returns the write end of its pipe (-1 on failure);
 * *done: the read end that reaches EOF when it has finished. */
static int start_cleaner(const char *pin, const char *self, bool sd, int *done)
{
	int in[2], out[2], st = 0;
	pid_t p;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	p = fork();
	if (p < 0)
		return -1;
	if (!p) {
		int devnull;

		close(in[1]);
		close(out[0]);
		switch (fork()) { /* the grandchild cleans: no one's child, init reaps it */
		case -1:
			_exit(1);
		case 0:
			break;
		default:
			_exit(0);
		}
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (!cgf_verbose)
				dup2(devnull, 2);
		}
		cleaner(in[0], out[1], pin, self, sd);
	}
	close(in[0]);
	close(out[1]);
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) { /* no cleaner: do nothing */
		close(in[1]);
		close(out[0]);
		errno = EAGAIN;
		return -1;
	}
	*done = out[0];
	return in[1];
}

/* ---- the command -------------------------------------------------------------------- */

static bool systemd_booted(void)
{
	struct stat st;

	if (getenv("CGFILTER_RUN_NO_SYSTEMD"))
		return false;
	return !lstat("/run/systemd/system", &st) && S_ISDIR(st.st_mode);
}

static void default_name(const char *cmd, char *out, size_t len)
{
	const char *b = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	size_t i, n;

	n = (size_t)snprintf(out, len, "run-%.64s-%d", b, (int)getpid());
	for (i = 4; i < n && i < len; i++)
		if (!valid_name((char[]){ out[i], 0 }) && out[i] != '-')
			out[i] = '_';
}

static int wait_child(pid_t pid)
{
	int st;

	for (;;) {
		if (waitpid(pid, &st, 0) == pid)
			return st;
		if (errno != EINTR)
			return -1;
	}
}

/* Exit as CMD did: its status, or die of its signal (no core of ours). */
static int exit_like(int st)
{
	if (st < 0)
		return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		struct rlimit no_core = { 0, 0 };
		sigset_t s;

		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		return 128 + sig;
	}
	return 1;
}

int cmd_run(struct cmd_args *a)
{
	char name[NAME_MAX_LEN + 1], pin[PATH_MAX], made[PATH_MAX + 256] = "", self[PATH_MAX];
	char keep[2048], caller[PATH_MAX];
	struct cgf_load_opts lo = { .events_per_sec = (unsigned int)a->events_per_sec };
	struct cgf_engine e;
	char **cmd, *text;
	bool sd = systemd_booted(), fg_tty;
	ssize_t n;
	sigset_t block, old;
	int tell, done = -1, r, st;
	uint32_t id;
	size_t i;
	pid_t pid;

	/* (EXPR | -f FILE) -- CMD...: with -f, all that is left is CMD */
	if (a->file) {
		cmd = a->argv;
		if (a->argc && !strcmp(cmd[0], "--"))
			cmd++;
		if (!cmd[0])
			return usage_error(a, "expected a command after -f FILE");
		text = read_text_file(a->file);
	} else {
		if (a->argc < 3 || strcmp(a->argv[1], "--"))
			return usage_error(a, "expected (EXPR | -f FILE) -- CMD [ARG...]");
		cmd = a->argv + 2;
		text = strdup(a->argv[0]);
	}
	if (!text)
		return 1;
	if (a->run_name && !valid_name(a->run_name)) {
		free(text);
		return usage_error(a, "invalid name '%s' (1..%d of A-Z a-z 0-9 _ : -, not first -)",
				   a->run_name, NAME_MAX_LEN);
	}
	if (a->run_name)
		snprintf(name, sizeof(name), "%s", a->run_name);
	else
		default_name(cmd[0], name, sizeof(name));
	snprintf(pin, sizeof(pin), RUN_DIR "/%s", name);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		cgf_err("cannot find my own program: %s", strerror(errno));
		free(text);
		return 1;
	}
	self[n] = 0;

	/* the filters where we run now: CMD must stay under them */
	{
		char here[PATH_MAX];
		int cg;

		if (my_cgroup(here, sizeof(here)) ||
		    (cg = open(here, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			cgf_err("cannot open my cgroup (is cgroup2 mounted?)");
			free(text);
			return 1;
		}
		r = effective(cg, keep, sizeof(keep));
		close(cg);
		if (r) {
			cgf_err("cannot read the programs of cgroup %s: %s", here, strerror(-r));
			free(text);
			return 1;
		}
		snprintf(caller, sizeof(caller), "%s", here);
	}
	/* the cleaner first: whatever happens to us from here, it cleans up */
	signal(SIGPIPE, SIG_IGN);
	tell = start_cleaner(pin, self, sd, &done);
	if (tell < 0) {
		cgf_err("cannot start the cleaner: %s", strerror(errno));
		free(text);
		return 1;
	}
	lo.before_pin = tell_id;
	lo.ctx = &tell;
	r = cgf_engine_load(pin, text, &lo);
	free(text);
	if (r) {
		if (r == -EEXIST)
			cgf_err("a run named %s exists (give another --name)", name);
		close(tell);
		return 1;
	}
	r = cgf_engine_open(&e, pin, false);
	if (r) {
		close(tell);   /* the cleaner removes it */
		return 1;
	}
	id = e.entry_id;
	if (!sd) {
		/* below the cgroup we run in: its filters apply to CMD too */
		snprintf(made, sizeof(made), "%s/cgfilter-run-%s", caller, name);
		if (mkdir(made, 0755)) {
			cgf_err("cannot make cgroup %s: %s", made, strerror(errno));
			made[0] = 0;
			goto fail;
		}
		say(tell, 'G', made);
		if (cgf_engine_attach(&e, made, 3, true))
			goto fail;
	}

	/* the signals to pass on: held until the child runs and we handle them */
	sigemptyset(&block);
	for (i = 0; i < NFWD; i++)
		sigaddset(&block, fwd_signals[i]);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid < 0) {
		cgf_err("cannot fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto fail;
	}
	if (!pid) {
		char fds[16], ids[16], procs[PATH_MAX + 300];
		char **argv;
		int fd;

		for (i = 0; i < NFWD; i++)
			signal(fwd_signals[i], SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(done);
		cgf_engine_close(&e);
		/* the cleaner's pipe goes through systemd-run to __run-exec */
		fd = fcntl(tell, F_DUPFD, 3);
		if (fd < 0)
			_exit(1);
		if (!sd) {
			int p;

			snprintf(procs, sizeof(procs), "%s/cgroup.procs", made);
			p = open(procs, O_WRONLY | O_CLOEXEC);
			if (p < 0 || dprintf(p, "%d\n", (int)getpid()) < 0) {
				cgf_say("cgfilter run", "cannot join cgroup %s: %s", made,
					strerror(errno));
				_exit(1);
			}
			close(p);
			_exit(run_exec(fd, id, keep, cmd));
		}
		snprintf(fds, sizeof(fds), "%d", fd);
		snprintf(ids, sizeof(ids), "%u", id);
		for (n = 0; cmd[n]; n++)
			;
		argv = calloc((size_t)n + 20, sizeof(*argv));
		if (!argv)
			_exit(1);
		n = 0;
		argv[n++] = "systemd-run";
		argv[n++] = "--scope";
		argv[n++] = "--quiet";
		argv[n++] = "--collect";
		argv[n++] = "--unit";
		argv[n++] = strcat(strcpy(malloc(strlen(name) + 8), name), ".scope");
		argv[n++] = "--description";
		argv[n++] = "cgfilter run";
		argv[n++] = "-p";
		argv[n++] = strcat(strcpy(malloc(strlen(pin) + 32), "IPIngressFilterPath="), pin);
		argv[n++] = "-p";
		argv[n++] = strcat(strcpy(malloc(strlen(pin) + 32), "IPEgressFilterPath="), pin);
		argv[n++] = "--";
		argv[n++] = self;
		argv[n++] = "__run-exec";
		argv[n++] = fds;
		argv[n++] = ids;
		argv[n++] = keep;
		argv[n++] = "--";
		for (i = 0; cmd[i]; i++)
			argv[n++] = cmd[i];
		execvp(argv[0], argv);
		cgf_say("cgfilter run", "cannot run systemd-run: %s", strerror(errno));
		_exit(1);
	}
	child_pid = pid;
	close(tell);
	cgf_engine_close(&e);
	/* Ctrl-C and Ctrl-\ from the terminal reach CMD (our process group)
	 * already: passing them on would give it two */
	fg_tty = isatty(0) && tcgetpgrp(0) == getpgrp();
	for (i = 0; i < NFWD; i++) {
		struct sigaction sa = { .sa_handler = forward };

		if (fg_tty && (fwd_signals[i] == SIGINT || fwd_signals[i] == SIGQUIT))
			sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sigaction(fwd_signals[i], &sa, NULL);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	st = wait_child(pid);
	child_pid = 0;
	/* the cleaner removes the filter soon after CMD's cgroup empties:
	 * wait for that a little, so a normal end leaves nothing behind; what
	 * CMD left running keeps the cgroup and the filter until it ends */
	close(done);
	/* CMD left processes in its cgroup: they keep it, and the filter */
	if (made[0]) {
		bool gone = false;

		if (populated(made, &gone) && !gone)
			return exit_like(st);
	}
	/* (until the pin and its maps are both gone: the cleaner unpins the
	 * program first; or the name is another run's by now) */
	for (i = 0; i < 150; i++) {
		char maps[PATH_MAX + 8];
		int fd = bpf_obj_get(pin);
		uint32_t now = fd >= 0 ? cgf_prog_id(fd) : 0;

		if (fd >= 0)
			close(fd);
		snprintf(maps, sizeof(maps), "%s_maps", pin);
		if (fd >= 0 ? now != id : access(maps, F_OK))
			break;
		usleep(20000);
	}
	return exit_like(st);
fail:
	cgf_engine_close(&e);
	close(tell);   /* EOF without C: the cleaner removes what was made */
	{
		struct pollfd p = { .fd = done, .events = POLLIN };
		char c;

		while (poll(&p, 1, 5000) > 0 && read(done, &c, 1) > 0)
			;
	}
	close(done);
	return 1;
}
