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
#include <sys/sysmacros.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "cmd.h"

static volatile sig_atomic_t stop;

struct mon {
	unsigned long count, max;
	bool json;
	uint64_t start_ns;      /* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
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

static int on_event(void *ctx, void *data, size_t len)
{
	const struct cgf_event *ev = data;
	struct mon *m = ctx;
	char sa[INET6_ADDRSTRLEN] = "-", da[INET6_ADDRSTRLEN] = "-", pb[16], cg[PATH_MAX], tb[32];
	char ub[256], eb[CGF_EXE_PATH_MAX + 64];
	const char *unit, *exe = NULL;
	struct timespec now;
	const char *proto;
	struct tm tm;
	time_t t;

	/* the ring may hold drops from before we started: not live */
	if (len < sizeof(*ev) || ev->time_ns < m->start_ns)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	t = now.tv_sec;
	localtime_r(&t, &tm);
	strftime(tb, sizeof(tb), "%H:%M:%S", &tm);
	if (ev->family == 4 || ev->family == 6) {
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->saddr, sa, sizeof(sa));
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->daddr, da, sizeof(da));
	}
	proto = proto_name(ev->family, ev->proto, pb, sizeof(pb));
	cgf_cgroup_path(ev->cgroup_id, cg, sizeof(cg));
	unit = unit_of(cg, ub, sizeof(ub));
	if (ev->exe_ino)
		exe = exe_path(ev->exe_dev, ev->exe_ino, eb, sizeof(eb));
	if (m->json) {
		printf("{\"time\":\"%s.%03ld\",\"verdict\":\"%s\",\"proto\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"len\":%u,\"malformed\":%u,\"cgroup\":",
		       tb, now.tv_nsec / 1000000, verdict_of(ev), proto, sa, ev->sport, da, ev->dport,
		       ev->len, ev->malformed);
		json_str(stdout, cg);
		printf(",\"unit\":");
		if (unit)
			json_str(stdout, unit);
		else
			printf("null");
		printf(",\"exe\":");
		if (exe)
			json_str(stdout, exe);
		else
			printf("null");
		printf("}\n");
	} else if (ev->proto == 6 || ev->proto == 17) {
		printf("%s.%03ld %s %s %s:%u -> %s:%u len %u%s cgroup %s%s%s%s%s\n", tb,
		       now.tv_nsec / 1000000, verdict_of(ev), proto, sa, ev->sport, da, ev->dport,
		       ev->len, ev->malformed ? " malformed" : "", cg, unit ? " unit " : "",
		       unit ? unit : "", exe ? " exe " : "", exe ? exe : "");
	} else {
		printf("%s.%03ld %s %s %s -> %s len %u%s cgroup %s%s%s%s%s\n", tb, now.tv_nsec / 1000000,
		       verdict_of(ev), proto, sa, da, ev->len, ev->malformed ? " malformed" : "", cg,
		       unit ? " unit " : "", unit ? unit : "", exe ? " exe " : "", exe ? exe : "");
	}
	fflush(stdout);
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
	struct mon m = { .max = a->count, .json = a->json };
	uint64_t st0[CGF_NSTATS], st[CGF_NSTATS];
	struct timespec t0, t, renewed;
	struct ring_buffer *rb;
	struct cgf_engine e;
	int r;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	r = cgf_engine_open(&e, a->argv[0], false);
	if (r)
		return r;
	rb = ring_buffer__new(e.events, on_event, &m, NULL);
	if (!rb) {
		r = -errno;
		cgf_err("cannot read the drop events of %s: %s", e.pin, strerror(-r));
		cgf_engine_close(&e);
		return r;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	r = cgf_engine_lease(&e);
	if (r) {
		cgf_err("cannot ask %s for drop events: %s", e.pin, strerror(-r));
		goto out;
	}
	cgf_engine_stats(&e, st0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	renewed = t0;
	m.start_ns = (uint64_t)t0.tv_sec * 1000000000ULL + t0.tv_nsec;
	if (!a->json)
		fprintf(stderr, "watching drops of %s (Ctrl-C to stop)\n", e.pin);
	while (!stop) {
		r = ring_buffer__poll(rb, 200);
		if (r < 0 && r != -EINTR) {
			cgf_err("cannot read the drop events of %s: %s", e.pin, strerror(-r));
			break;
		}
		r = 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (ms_between(&renewed, &t) >= 1000) {
			r = cgf_engine_lease(&e);
			if (r) {
				cgf_err("cannot ask %s for drop events: %s", e.pin, strerror(-r));
				break;
			}
			renewed = t;
		}
		if (a->timeout_ms && ms_between(&t0, &t) >= (long)a->timeout_ms)
			break;
	}
	cgf_engine_stats(&e, st);
	if (!a->json && st[CGF_ST_SUPPRESSED] > st0[CGF_ST_SUPPRESSED])
		fprintf(stderr, "%llu more drops not shown (rate limit, or the event ring was full)\n",
			(unsigned long long)(st[CGF_ST_SUPPRESSED] - st0[CGF_ST_SUPPRESSED]));
	if (!r && m.max && m.count < m.max) {
		cgf_err("%lu of %lu drops seen before %s", m.count, m.max,
			stop ? "the monitor was stopped" : "the timeout");
		r = -ETIMEDOUT;
	}
out:
	ring_buffer__free(rb);
	cgf_engine_close(&e);
	return r;
}
