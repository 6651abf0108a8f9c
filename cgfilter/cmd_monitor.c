// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter monitor: dropped packets as they happen, from the engine's ring
 * buffer.  The filters make events only while a monitor's lease runs; this
 * renews it every second (cgf_abi.h), so events stop soon after the last
 * monitor ends, however it ends.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cmd.h"

static volatile sig_atomic_t stop;

struct jentry;

struct mon {
	unsigned long count, max;
	bool json;
	uint64_t start_ns;      /* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
	const char *pin;
	int journal;            /* --journal: the socket, else -1 */
	struct jentry *jentry;  /* the entry being made */
	int err;                /* a send to the journal failed */
	int werr;               /* errno of a failed write of the output */
};

static const char *proto_name(int family, int p, char *buf, size_t len)
{
	if (!family)
		return "non-ip";
	switch (p) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmpv6";
	}
	snprintf(buf, len, "proto-%d", p);
	return buf;
}

/* The systemd unit a cgroup path belongs to: its deepest component that
 * names a unit (a slice only when nothing below it does); NULL: none. */
const char *unit_of(const char *path, char *buf, size_t len)
{
	static const char *const kinds[] = { ".service", ".scope", ".socket", ".mount", ".swap" };
	const char *p = path, *best = NULL, *slice = NULL;
	size_t n, bl = 0, sl = 0, k;

	while (*p) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t kl = strlen(kinds[k]);

			if (n > kl && !memcmp(p + n - kl, kinds[k], kl)) {
				best = p;
				bl = n;
			}
		}
		if (n > 6 && !memcmp(p + n - 6, ".slice", 6)) {
			slice = p;
			sl = n;
		}
		p += n;
	}
	if (!best) {
		best = slice;
		bl = sl;
	}
	if (!best || bl >= len)
		return NULL;
	memcpy(buf, best, bl);
	buf[bl] = 0;
	return buf;
}

/* The path of an executable by its identity (cgf_abi.h): that of a
 * process running it now (/proc/PID/exe), else "device M:N inode I".
 * Found paths and misses are cached (misses for 10 s: a drop storm of an
 * exited program does not walk /proc for every event). */
static const char *exe_path(uint64_t dev, uint64_t ino, char *buf, size_t len)
{
	static struct { uint64_t dev, ino; time_t miss; char path[CGF_EXE_PATH_MAX]; } cache[32];
	static unsigned int next;
	struct dirent *d;
	time_t now = time(NULL);
	DIR *proc;
	size_t i;

	snprintf(buf, len, "device %" PRIu64 ":%" PRIu64 " inode %" PRIu64, dev >> 20, dev & 0xfffff, ino);
	for (i = 0; i < sizeof(cache) / sizeof(cache[0]); i++)
		if (cache[i].ino == ino && cache[i].dev == dev && ino) {
			if (!cache[i].miss)
				snprintf(buf, len, "%s", cache[i].path);
			if (!cache[i].miss || now - cache[i].miss < 10)
				return buf;
		}
	i = next++ % (sizeof(cache) / sizeof(cache[0]));
	cache[i].dev = dev;
	cache[i].ino = ino;
	cache[i].miss = now ? now : 1;
	proc = opendir("/proc");
	while (proc && (d = readdir(proc))) {
		char p[300], target[CGF_EXE_PATH_MAX];
		struct cgf_exe id;
		struct stat st;
		ssize_t n;
		int fd;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/exe", d->d_name);
		/* the inode first (cheap), then the kernel's identity */
		if (stat(p, &st) || st.st_ino != ino)
			continue;
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (cgf_exe_identify_fd(fd, &id)) {
			id.dev = (uint64_t)major(st.st_dev) << 20 | minor(st.st_dev);
			id.ino = st.st_ino;
		}
		close(fd);
		if (id.dev != dev || id.ino != ino)
			continue;
		n = readlink(p, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		snprintf(buf, len, "%s", target);
		snprintf(cache[i].path, sizeof(cache[i].path), "%s", target);
		cache[i].miss = 0;
		break;
	}
	if (proc)
		closedir(proc);
	return buf;
}

static const char *verdict_of(const struct cgf_event *ev)
{
	switch (ev->reason) {
	case CGF_WOULD_FILTER:
	case CGF_WOULD_MALFORMED: return "would-drop";
	case CGF_DROP_BLOCK: return "block";
	default: return "drop";
	}
}

/* ---- the journal ------------------------------------------------------------ */

/* The journal's native protocol (systemd's journal-native-protocol): one
 * datagram per entry, a field a line, KEY=VALUE; a value with a newline as
 * KEY, newline, its length (64 bits, little endian), the value, newline. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct jentry {
	char b[16384];
	size_t n;
	bool full;
};

static void jfield(struct jentry *j, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), i;
	uint64_t le = vl;

	if (j->full || j->n + kl + vl + 10 > sizeof(j->b)) {
		j->full = true;
		return;
	}
	memcpy(j->b + j->n, key, kl);
	j->n += kl;
	if (!strchr(val, '\n')) {
		j->b[j->n++] = '=';
	} else {
		j->b[j->n++] = '\n';
		for (i = 0; i < 8; i++, le >>= 8)
			j->b[j->n++] = (char)(le & 0xff);
	}
	memcpy(j->b + j->n, val, vl);
	j->n += vl;
	j->b[j->n++] = '\n';
}

/* A datagram socket connected to the journal: its fd, or -errno (said). */
static int journal_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return fd;
	r = -errno;
	if (fd >= 0)
		close(fd);
	cgf_err("cannot send drops to the journal, on %s: %s (is systemd-journald running?)",
		JOURNAL_SOCKET, strerror(-r));
	return r;
}

/* --journal: the socket and an entry's buffer in m; 0 or -errno (said). */
static int journal_start(struct mon *m)
{
	m->jentry = malloc(sizeof(*m->jentry));
	if (!m->jentry) {
		cgf_err("cannot send drops to the journal: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	m->journal = journal_open();
	if (m->journal < 0) {
		free(m->jentry);
		m->jentry = NULL;
		return m->journal;
	}
	return 0;
}

/* What on_event found out about a drop. */
struct drop {
	const struct cgf_event *ev;
	const char *line, *verdict, *proto, *sa, *da, *cgroup, *unit, *exe;
};

static int journal_drop(struct mon *m, const struct drop *d)
{
	struct jentry *j = m->jentry;
	char num[16];
	int tries;

	j->n = 0;
	j->full = false;
	jfield(j, "MESSAGE", d->line);
	/* a drop is a warning; what observe mode would drop, a notice */
	jfield(j, "PRIORITY", !strcmp(d->verdict, "would-drop") ? "5" : "4");
	jfield(j, "SYSLOG_IDENTIFIER", "cgfilter");
	jfield(j, "CGFILTER_PIN", m->pin);
	if (d->unit)
		jfield(j, "UNIT", d->unit);
	jfield(j, "CGFILTER_CGROUP", d->cgroup);
	jfield(j, "CGFILTER_VERDICT", d->verdict);
	jfield(j, "CGFILTER_DIRECTION", d->ev->ingress ? "ingress" : "egress");
	jfield(j, "CGFILTER_PROTO", d->proto);
	if (d->ev->family) {
		jfield(j, "CGFILTER_SRC", d->sa);
		jfield(j, "CGFILTER_DST", d->da);
	}
	if (d->ev->proto == 6 || d->ev->proto == 17) {
		snprintf(num, sizeof(num), "%u", d->ev->sport);
		jfield(j, "CGFILTER_SRC_PORT", num);
		snprintf(num, sizeof(num), "%u", d->ev->dport);
		jfield(j, "CGFILTER_DST_PORT", num);
	}
	snprintf(num, sizeof(num), "%u", d->ev->len);
	jfield(j, "CGFILTER_LEN", num);
	if (d->exe)
		jfield(j, "CGFILTER_EXE", d->exe);
	/* a journald restarted meanwhile: connect again, once */
	for (tries = 0; tries < 2; tries++) {
		if (send(m->journal, j->b, j->n, MSG_NOSIGNAL) == (ssize_t)j->n)
			return 0;
		if (tries || (errno != ECONNREFUSED && errno != ENOTCONN && errno != ENOENT))
			break;
		close(m->journal);
		m->journal = journal_open();
		if (m->journal < 0) /* said; a unit's Restart=on-failure tries again */
			return m->err = m->journal;
	}
	m->err = -errno;
	cgf_err("cannot send a drop to the journal, on %s: %s", JOURNAL_SOCKET, strerror(errno));
	return m->err;
}

/* The id of the program pinned at pin now (0: none). */
static uint32_t pinned_id(const char *pin)
{
	int fd = bpf_obj_get(pin);
	uint32_t id;

	if (fd < 0)
		return 0;
	id = cgf_prog_id(fd);
	close(fd);
	return id;
}

/* ---- events ------------------------------------------------------------------- */

static void print_json(const struct drop *d, const char *tb, long ms)
{
	const struct cgf_event *ev = d->ev;

	printf("{\"time\":\"%s.%03ld\",\"verdict\":\"%s\",\"proto\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"len\":%u,\"malformed\":%u,\"cgroup\":",
	       tb, ms, d->verdict, d->proto, d->sa, ev->sport, d->da, ev->dport, ev->len, ev->malformed);
	json_str(stdout, d->cgroup);
	printf(",\"unit\":");
	if (d->unit)
		json_str(stdout, d->unit);
	else
		printf("null");
	printf(",\"exe\":");
	if (d->exe)
		json_str(stdout, d->exe);
	else
		printf("null");
	printf(",\"direction\":\"%s\"}\n", ev->ingress ? "ingress" : "egress");
}

static int on_event(void *ctx, void *data, size_t len)
{
	const struct cgf_event *ev = data;
	struct mon *m = ctx;
	char sa[INET6_ADDRSTRLEN] = "-", da[INET6_ADDRSTRLEN] = "-", pb[16], cg[PATH_MAX], tb[32];
	char ub[256], eb[CGF_EXE_PATH_MAX + 64], line[PATH_MAX + CGF_EXE_PATH_MAX + 512];
	struct drop d = { .ev = ev, .line = line, .sa = sa, .da = da, .cgroup = cg };
	struct timespec now;
	struct tm tm;
	time_t t;

	/* the ring may hold drops from before we started: not live; and once
	 * stopped (-c N seen, a write failed), the rest of the batch is not ours */
	if (stop || len < sizeof(*ev) || ev->time_ns < m->start_ns)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	t = now.tv_sec;
	localtime_r(&t, &tm);
	strftime(tb, sizeof(tb), "%H:%M:%S", &tm);
	if (ev->family == 4 || ev->family == 6) {
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->saddr, sa, sizeof(sa));
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->daddr, da, sizeof(da));
	}
	d.proto = proto_name(ev->family, ev->proto, pb, sizeof(pb));
	d.verdict = verdict_of(ev);
	cgf_cgroup_path(ev->cgroup_id, cg, sizeof(cg));
	d.unit = unit_of(cg, ub, sizeof(ub));
	if (ev->exe_ino)
		d.exe = exe_path(ev->exe_dev, ev->exe_ino, eb, sizeof(eb));
	if (ev->proto == 6 || ev->proto == 17)
		snprintf(line, sizeof(line), "%s %s %s:%u -> %s:%u len %u%s cgroup %s%s%s%s%s",
			 d.verdict, d.proto, sa, ev->sport, da, ev->dport, ev->len,
			 ev->malformed ? " malformed" : "", cg, d.unit ? " unit " : "",
			 d.unit ? d.unit : "", d.exe ? " exe " : "", d.exe ? d.exe : "");
	else
		snprintf(line, sizeof(line), "%s %s %s -> %s len %u%s cgroup %s%s%s%s%s", d.verdict,
			 d.proto, sa, da, ev->len, ev->malformed ? " malformed" : "", cg,
			 d.unit ? " unit " : "", d.unit ? d.unit : "", d.exe ? " exe " : "",
			 d.exe ? d.exe : "");
	if (m->journal >= 0) {
		if (journal_drop(m, &d)) {
			stop = 1;
			return 0;
		}
	} else if (m->json) {
		print_json(&d, tb, now.tv_nsec / 1000000);
	} else {
		printf("%s.%03ld %s\n", tb, now.tv_nsec / 1000000, line);
	}
	errno = 0;
	if (m->journal < 0 && (fflush(stdout) || ferror(stdout))) {
		/* (stdout to /dev/full, or a reader gone: said once, at the end) */
		m->werr = errno ? errno : EIO;
		stop = 1;
		return 0;
	}
	if (m->max && ++m->count >= m->max)
		stop = 1;
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

int cmd_monitor(struct cmd_args *a)
{
	struct mon m = { .max = a->count, .json = a->json, .journal = -1 };
	uint64_t st0[CGF_NSTATS], st[CGF_NSTATS];
	struct timespec t0, t, renewed;
	struct cgf_lease lease = { 0 };
	struct ring_buffer *rb;
	struct cgf_engine e;
	int r;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	if (a->json && a->journal)
		return usage_error(a, "--json and --journal are two outputs: give one");
	r = cgf_engine_open(&e, a->argv[0], false);
	if (r)
		return r;
	m.pin = e.pin;
	if (a->journal && (r = journal_start(&m))) {
		cgf_engine_close(&e);
		return r;
	}
	rb = ring_buffer__new(e.events, on_event, &m, NULL);
	if (!rb) {
		r = -errno;
		cgf_err("cannot read the drop events of %s: %s", e.pin, strerror(-r));
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	r = cgf_engine_lease_take(&e, &lease, &stop);
	if (r == -EINTR)
		cgf_err("stopped before watching %s (it waited for the engine's lock, which another command holds)",
			e.pin);
	if (r)
		goto out; /* (said) */
	cgf_engine_stats(&e, st0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	renewed = t0;
	m.start_ns = (uint64_t)t0.tv_sec * 1000000000ULL + t0.tv_nsec;
	if (!a->json)
		cgf_say(NULL, "watching drops of %s%s (Ctrl-C to stop)", e.pin,
			a->journal ? ", sending them to the journal" : "");
	while (!stop) {
		r = ring_buffer__poll(rb, 200);
		if (r < 0 && r != -EINTR) {
			cgf_err("cannot read the drop events of %s: %s", e.pin, strerror(-r));
			break;
		}
		r = 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (ms_between(&renewed, &t) >= 1000) {
			uint32_t other;

			r = cgf_engine_lease_renew(&e, &lease, &other);
			if (r == -EBUSY) {
				/* (stopped longer than its lease, and another took it) */
				cgf_err("another cgfilter monitor (pid %u) now watches %s: this one stops",
					other, e.pin);
				break;
			}
			if (r) {
				cgf_err("cannot ask %s for drop events: %s", e.pin, strerror(-r));
				break;
			}
			/* loaded again (unload, load): this monitor's maps are the old
			 * engine's, which sees no packet; say so and fail */
			if (pinned_id(e.pin) != e.entry_id) {
				cgf_err("%s is no longer the engine this monitor watches (unloaded or "
					"loaded again): run the monitor again", e.pin);
				r = -ESTALE;
				break;
			}
			renewed = t;
		}
		if (a->timeout_ms && ms_between(&t0, &t) >= (long)a->timeout_ms)
			break;
	}
	cgf_engine_stats(&e, st);
	if (m.werr) {
		/* the output lost: said with its cause, and what could not be
		 * written dropped (the exit's check would only say EIO) */
		cgf_err("cannot write the output: %s", strerror(m.werr));
		__fpurge(stdout);
		clearerr(stdout);
		r = -m.werr;
	}
	if (st[CGF_ST_SUPPRESSED] > st0[CGF_ST_SUPPRESSED])
		cgf_say(NULL, "%llu more drops not shown (rate limit, or the event ring was full)",
			(unsigned long long)(st[CGF_ST_SUPPRESSED] - st0[CGF_ST_SUPPRESSED]));
	if (!r && m.err)
		r = m.err;
	if (!r && m.max && m.count < m.max) {
		cgf_err("%lu of %lu drops seen before %s", m.count, m.max,
			stop ? "the monitor was stopped" : "the timeout");
		r = -ETIMEDOUT;
	}
	cgf_engine_lease_end(&e, &lease);
out:
	ring_buffer__free(rb);
	if (m.journal >= 0)
		close(m.journal);
	free(m.jentry);
	cgf_engine_close(&e);
	return r;
}
