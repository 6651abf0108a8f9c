// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter learn PIN [--seconds N] [--cgroup PATH]: record the flows a
 * filter sees (it must pass everything: observe or pass mode, or the filter
 * 1) and print the smallest filter that passes exactly them.
 *
 * Each flow is the service's side and the peer's (struct cgf_learn_key).
 * Which side serves: for TCP the side a SYN without ACK was sent to; else
 * the side whose port is outside the ephemeral range (the kernel's
 * ip_local_port_range), else the lower port.  A rule per served port (its
 * peers, either direction) and per port served by peers (the service's
 * connections out); ICMP by type and peer; other protocols by peer.  Peers
 * are listed as addresses, joined into a prefix only where every address of
 * the prefix was seen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cmd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct flow {
	struct cgf_learn_key k;
	struct cgf_learn_val v;
};

/* A peer's address as a prefix: family, 128 bits (IPv4 in the low 32). */
struct pfx {
	uint8_t family, len;
	unsigned __int128 a;
};

/* A rule: what it covers and its peers. */
struct rule {
	int kind;               /* R_SERVED, R_CLIENT, R_ICMP, R_OTHER */
	uint8_t proto;
	uint16_t port;          /* served port, the peers' port or the ICMP type */
	uint64_t packets;
	struct pfx *peers;
	size_t npeers;
	size_t naddrs;          /* peers seen, before they were joined */
};
enum { R_SERVED, R_CLIENT, R_ICMP_IN, R_ICMP_OUT, R_OTHER };

static unsigned __int128 addr_of(const struct cgf_learn_key *k)
{
	unsigned __int128 a = 0;
	int i, n = k->family == 4 ? 4 : 16;

	for (i = 0; i < n; i++)
		a = a << 8 | k->remote[i];
	return a;
}

static int bits(uint8_t family)
{
	return family == 4 ? 32 : 128;
}

static int pfx_cmp(const void *x, const void *y)
{
	const struct pfx *a = x, *b = y;

	if (a->family != b->family)
		return a->family - b->family;
	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	return a->len - b->len;
}

/* Join sibling prefixes into their parent while both halves are there: the
 * result covers exactly the addresses seen. */
static void aggregate(struct rule *r)
{
	bool changed = true;
	size_t i, j;

	qsort(r->peers, r->npeers, sizeof(*r->peers), pfx_cmp);
	/* duplicates out */
	for (i = j = 0; i < r->npeers; i++)
		if (!j || pfx_cmp(&r->peers[j - 1], &r->peers[i]))
			r->peers[j++] = r->peers[i];
	r->npeers = r->naddrs = j;
	while (changed) {
		changed = false;
		for (i = j = 0; i < r->npeers; i++) {
			struct pfx *p = &r->peers[i];
			int host = bits(p->family) - p->len;

			if (i + 1 < r->npeers && p->len > 0 && p[1].family == p->family && p[1].len == p->len &&
			    host < 127 && !((p->a >> host) & 1) && p[1].a == (p->a | ((unsigned __int128)1 << host))) {
				r->peers[j] = *p;
				r->peers[j].len--;
				j++;
				i++;
				changed = true;
			} else {
				r->peers[j++] = *p;
			}
		}
		r->npeers = j;
	}
}

static void print_pfx(FILE *f, const struct pfx *p)
{
	char s[INET6_ADDRSTRLEN];
	uint8_t b[16];
	int i, n = p->family == 4 ? 4 : 16;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(p->a >> (8 * (n - 1 - i)));
	inet_ntop(p->family == 4 ? AF_INET : AF_INET6, b, s, sizeof(s));
	fprintf(f, "%s", s);
	if (p->len != bits(p->family))
		fprintf(f, "/%u", p->len);
}

static void print_peers(FILE *f, const struct rule *r)
{
	size_t i;

	fprintf(f, "{ ");
	for (i = 0; i < r->npeers; i++) {
		if (i)
			fprintf(f, ", ");
		print_pfx(f, &r->peers[i]);
	}
	fprintf(f, " }");
}

static const char *proto_name(uint8_t p)
{
	return p == 6 ? "tcp" : p == 17 ? "udp" : NULL;
}

static int find_rule(struct rule **rules, size_t *n, int kind, uint8_t proto, uint16_t port)
{
	struct rule *p;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*rules)[i].kind == kind && (*rules)[i].proto == proto && (*rules)[i].port == port)
			return (int)i;
	p = realloc(*rules, (*n + 1) * sizeof(*p));
	if (!p)
		return -1;
	*rules = p;
	memset(&p[*n], 0, sizeof(*p));
	p[*n].kind = kind;
	p[*n].proto = proto;
	p[*n].port = port;
	return (int)(*n)++;
}

static int add_peer(struct rule *r, const struct cgf_learn_key *k, uint64_t packets)
{
	struct pfx *p = realloc(r->peers, (r->npeers + 1) * sizeof(*p));

	if (!p)
		return -1;
	r->peers = p;
	p[r->npeers++] = (struct pfx){ .family = k->family, .len = (uint8_t)bits(k->family),
				       .a = addr_of(k) };
	r->packets += packets;
	return 0;
}

static void ephemeral(unsigned int *lo, unsigned int *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

	*lo = 32768;
	*hi = 60999;
	if (f) {
		if (fscanf(f, "%u %u", lo, hi) != 2) {
			*lo = 32768;
			*hi = 60999;
		}
		fclose(f);
	}
}

/* Whether the flow of k has a SYN without ACK sent to the service (1), by
 * it (2), or none (0). */
static int opened(const struct flow *fl, size_t n, const struct cgf_learn_key *k)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct cgf_learn_key *o = &fl[i].k;

		if (!(fl[i].v.flags & CGF_LEARN_SYN) || o->family != k->family || o->proto != k->proto ||
		    o->local_port != k->local_port || o->remote_port != k->remote_port ||
		    memcmp(o->remote, k->remote, 16))
			continue;
		return o->ingress ? 1 : 2;
	}
	return 0;
}

static int rule_cmp(const void *x, const void *y)
{
	const struct rule *a = x, *b = y;

	if (a->kind != b->kind)
		return a->kind - b->kind;
	if (a->proto != b->proto)
		return a->proto - b->proto;
	return a->port - b->port;
}

static const char *peers_text(const struct rule *r, char *buf, size_t len)
{
	if (r->npeers == r->naddrs)
		snprintf(buf, len, "%zu peer%s", r->naddrs, r->naddrs == 1 ? "" : "s");
	else
		snprintf(buf, len, "%zu peers as %zu prefix%s", r->naddrs, r->npeers,
			 r->npeers == 1 ? "" : "es");
	return buf;
}

static int learn_print(FILE *f, const char *pin, const char *cgroup, const struct flow *fl, size_t n,
		       double seconds)
{
	unsigned int lo, hi;
	struct rule *rules = NULL;
	size_t nrules = 0, i;
	uint64_t total = 0;
	char when[64];
	time_t t = time(NULL);
	int first = 1;

	ephemeral(&lo, &hi);
	for (i = 0; i < n; i++) {
		const struct cgf_learn_key *k = &fl[i].k;
		int kind, ix, o;
		uint16_t port;

		total += fl[i].v.packets;
		if (k->family != 4 && k->family != 6)
			continue;
		if (k->proto == 6 || k->proto == 17) {
			bool leph = k->local_port >= lo && k->local_port <= hi;
			bool reph = k->remote_port >= lo && k->remote_port <= hi;

			o = k->proto == 6 ? opened(fl, n, k) : 0;
			if (o)
				kind = o == 1 ? R_SERVED : R_CLIENT;
			else if (leph != reph)
				kind = leph ? R_CLIENT : R_SERVED;
			else
				kind = k->local_port <= k->remote_port ? R_SERVED : R_CLIENT;
			port = kind == R_SERVED ? k->local_port : k->remote_port;
		} else if (k->proto == 1 || k->proto == 58) {
			kind = k->ingress ? R_ICMP_IN : R_ICMP_OUT;
			port = k->local_port; /* the type */
		} else {
			kind = R_OTHER;
			port = 0;
		}
		ix = find_rule(&rules, &nrules, kind, k->proto, port);
		if (ix < 0 || add_peer(&rules[ix], k, fl[i].v.packets))
			return -ENOMEM;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	/* (names escaped: a newline in one would end the comment, and what
	 * follows it would be filter text) */
	fputs("# learned by cgfilter learn from ", f);
	cgf_put_escaped(f, pin);
	if (cgroup) {
		fputs(" for cgroup ", f);
		cgf_put_escaped(f, cgroup);
	}
	fprintf(f, " over %.0f s, %s: %" PRIu64 " packets in %zu flows\n", seconds, when, total, n);
	fprintf(f, "# it passes the traffic seen (peers as seen: a prefix only where every address\n"
		   "# under it was seen; TCP connections opened only as they were; UDP by port and\n"
		   "# peer, without state); load it in enforce mode to drop everything else\n");
	if (!nrules) {
		fprintf(f, "# nothing was seen: drop everything\n0\n");
		return 0;
	}
	for (i = 0; i < nrules; i++)
		aggregate(&rules[i]);
	qsort(rules, nrules, sizeof(*rules), rule_cmp);
	for (i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		const char *pn = proto_name(r->proto);
		const char *or = first ? "" : "|| ";
		const char *pk = r->packets == 1 ? "" : "s";
		char pt[64];

		first = 0;
		switch (r->kind) {
		case R_SERVED:
			/* (answers never open a TCP connection: no SYN without
			 * ACK from the served port) */
			fprintf(f, "# %s port %u served to %s (%" PRIu64 " packet%s): requests in, answers out\n",
				pn, r->port, peers_text(r, pt, sizeof(pt)), r->packets, pk);
			fprintf(f, "%s%s && (dst_port == %u && src_ip in ", or, pn, r->port);
			print_peers(f, r);
			fprintf(f, "\n%*s|| src_port == %u && dst_ip in ", (int)(strlen(or) + strlen(pn) + 4), "", r->port);
			print_peers(f, r);
			fprintf(f, "%s)\n", r->proto == 6 ? " && !(tcp_syn && !tcp_ack)" : "");
			break;
		case R_CLIENT:
			fprintf(f, "# %s to port %u of %s (%" PRIu64 " packet%s): requests out, answers in\n",
				pn, r->port, peers_text(r, pt, sizeof(pt)), r->packets, pk);
			fprintf(f, "%s%s && (dst_port == %u && dst_ip in ", or, pn, r->port);
			print_peers(f, r);
			fprintf(f, "\n%*s|| src_port == %u && src_ip in ", (int)(strlen(or) + strlen(pn) + 4), "", r->port);
			print_peers(f, r);
			fprintf(f, "%s)\n", r->proto == 6 ? " && !(tcp_syn && !tcp_ack)" : "");
			break;
		case R_ICMP_IN:
		case R_ICMP_OUT:
			fprintf(f, "# %s type %u %s %s (%" PRIu64 " packet%s)\n",
				r->proto == 1 ? "ICMP" : "ICMPv6", r->port,
				r->kind == R_ICMP_IN ? "from" : "to", peers_text(r, pt, sizeof(pt)), r->packets, pk);
			fprintf(f, "%sicmp && ip_proto == %u && icmp_type == %u && %s in ", or, r->proto, r->port,
				r->kind == R_ICMP_IN ? "src_ip" : "dst_ip");
			print_peers(f, r);
			fprintf(f, "\n");
			break;
		default:
			fprintf(f, "# protocol %u with %s (%" PRIu64 " packet%s)\n", r->proto,
				peers_text(r, pt, sizeof(pt)), r->packets, pk);
			fprintf(f, "%sip_proto == %u && (src_ip in ", or, r->proto);
			print_peers(f, r);
			fprintf(f, " || dst_ip in ");
			print_peers(f, r);
			fprintf(f, ")\n");
		}
	}
	for (i = 0; i < nrules; i++)
		free(rules[i].peers);
	free(rules);
	return 0;
}

int cmd_learn(struct cmd_args *a)
{
	struct timespec t0, t1;
	struct cgf_engine e;
	struct sigaction sa = { .sa_handler = on_signal };
	struct cgf_learn_key k, next, *cur = NULL;
	struct flow *fl = NULL;
	size_t n = 0, steps = 0;
	uint32_t id = 0;
	int map, r, r2;
	double secs;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	r = cgf_engine_open(&e, a->argv[0], true);
	if (r)
		return r;
	map = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "cgf_learn", sizeof(struct cgf_learn_key),
			     sizeof(struct cgf_learn_val), CGF_LEARN_ENTRIES, NULL);
	if (map < 0) {
		r = -errno;
		cgf_err("cannot make the map to learn into: %s", strerror(-r));
		goto out;
	}
	/* (the handlers first: a signal during the start still ends with the
	 * filter restored) */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	r = cgf_engine_learn(&e, a->cgroup, map, &id);
	cgf_engine_close(&e);
	if (r)
		goto out;
	cgf_say("cgfilter learn", "recording what %s%s%s sees for %lu s (Ctrl-C ends it sooner)",
		a->argv[0], a->cgroup ? " for cgroup " : "", a->cgroup ? a->cgroup : "", a->seconds);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (stop || secs >= (double)a->seconds)
			break;
		usleep(20000);
	}
	/* stop recording (the filter as it was; left alone if changed since) */
	r = cgf_engine_open(&e, a->argv[0], true);
	if (!r) {
		r = cgf_engine_learn(&e, a->cgroup, -1, &id);
		cgf_engine_close(&e);
	}
	if (r > 0) {
		cgf_say("cgfilter learn", "the filter of %s was changed while it learned (set, mode, register): what it saw after that is missing",
			a->argv[0]);
		r = 0;
	} else if (r) {
		cgf_err("%s still records flows for learn (the next set or mode ends it)", a->argv[0]);
	}
	/* the flows (a walk that does not end: the map keeps changing, as it
	 * does if recording could not be stopped) */
	while (!(r2 = bpf_map_get_next_key(map, cur, &next))) {
		struct flow *p;

		if (++steps > 2 * (size_t)CGF_LEARN_ENTRIES) {
			r = -EAGAIN;
			cgf_err("cannot read the flows learned: the map of flows keeps changing");
			goto out;
		}
		p = realloc(fl, (n + 1) * sizeof(*p));

		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		fl = p;
		fl[n].k = next;
		if (bpf_map_lookup_elem(map, &next, &fl[n].v))
			continue; /* (gone meanwhile) */
		n++;
		k = next;
		cur = &k;
	}
	if (errno != ENOENT) {
		r = -errno;
		cgf_err("cannot read the flows learned: %s", strerror(-r));
		goto out;
	}
	/* (an LRU hash may forget before it is quite full) */
	if (n >= CGF_LEARN_ENTRIES * 9 / 10)
		cgf_say("cgfilter learn", "%zu flows, near the %d it keeps: some were forgotten, the filter may miss them (learn for less time)",
			n, CGF_LEARN_ENTRIES);
	r2 = learn_print(stdout, a->argv[0], a->cgroup, fl, n, secs);
	if (!r)
		r = r2;
out:
	if (map >= 0)
		close(map);
	free(fl);
	return r;
}
