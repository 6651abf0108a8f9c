// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter monitor: dropped packets as they happen, from the engine's ring
 * buffer.  The filters make events only while a monitor's lease runs; this
 * renews it every second (cgf_abi.h), so events stop soon after the last
 * monitor ends, however it ends.
 */
#include <arpa/inet.h>
#include <errno.h>
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
static const char *unit_of(const char *path, char *buf, size_t len)
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
	char ub[256];
	const char *unit;
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
		printf("}\n");
	} else if (ev->proto == 6 || ev->proto == 17) {
		printf("%s.%03ld %s %s %s:%u -> %s:%u len %u%s cgroup %s%s%s\n", tb,
		       now.tv_nsec / 1000000, verdict_of(ev), proto, sa, ev->sport, da, ev->dport,
		       ev->len, ev->malformed ? " malformed" : "", cg, unit ? " unit " : "",
		       unit ? unit : "");
	} else {
		printf("%s.%03ld %s %s %s -> %s len %u%s cgroup %s%s%s\n", tb, now.tv_nsec / 1000000,
		       verdict_of(ev), proto, sa, da, ev->len, ev->malformed ? " malformed" : "", cg,
		       unit ? " unit " : "", unit ? unit : "");
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
