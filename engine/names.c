// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host names in address sets: resolved with the system's resolver
 * (getaddrinfo: /etc/hosts, nsswitch, DNS) when a filter is set, kept with
 * what runs (a filter's info map, a named set's own trie) as text, one line
 * a name: "NAME EXPIRES ADDR ADDR ...\n" (EXPIRES: CLOCK_REALTIME seconds),
 * and re-resolved by cgfilter refresh once they expire.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

#define LIFETIME_MAX (86400 * 7)

/* $CGFILTER_NAME_LIFETIME: 0 if unset or empty, -1 if not 1..LIFETIME_MAX
 * written in decimal digits alone */
static long lifetime_env(void)
{
	const char *s = getenv("CGFILTER_NAME_LIFETIME");
	long v = 0;

	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > LIFETIME_MAX)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= LIFETIME_MAX ? v : -1;
}


uint32_t cgf_name_lifetime(void)
{
	long v = lifetime_env();

	return v > 0 ? (uint32_t)v : CGF_NAME_LIFETIME;
}

/* Whether the hosts file names this host (then DNS has no say in it). */
static bool in_hosts_file(const char *name)
{
	FILE *f = fopen("/etc/hosts", "re");
	char line[1024], *tok, *save;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "#\n")] = 0;
		tok = strtok_r(line, " \t", &save);   /* the address */
		while (!found && tok && (tok = strtok_r(NULL, " \t", &save)))
			found = !strcasecmp(tok, name);
	}
	fclose(f);
	return found;
}

/* The smallest TTL of the DNS answers for name, A and AAAA (0: none). */
static uint32_t dns_ttl(const char *name)
{
	static const int types[2] = { ns_t_a, ns_t_aaaa };
	unsigned char ans[4096];
	uint32_t best = 0;
	int t, i, len;

	for (t = 0; t < 2; t++) {
		ns_msg m;

		len = res_query(name, ns_c_in, types[t], ans, sizeof(ans));
		/* an answer cut to fit ans still says its whole length */
		if (len <= 0 || len > (int)sizeof(ans) || ns_initparse(ans, len, &m))
			continue;
		for (i = 0; i < ns_msg_count(m, ns_s_an); i++) {
			ns_rr rr;

			if (ns_parserr(&m, ns_s_an, i, &rr))
				break;
			if (!best || ns_rr_ttl(rr) < best)
				best = ns_rr_ttl(rr);
		}
	}
	return best;
}

uint64_t cgf_name_expiry(const char *name)
{
	char bare[CGF_HOST_MAX + 2];
	size_t l;
	uint32_t ttl;

	if (lifetime_env() > 0)
		return cgf_now() + cgf_name_lifetime();
	snprintf(bare, sizeof(bare), "%s", name);
	l = strlen(bare);
	if (l > 1 && bare[l - 1] == '.')
		bare[l - 1] = 0;
	ttl = in_hosts_file(bare) ? 0 : dns_ttl(bare);
	if (ttl > CGF_NAME_TTL_MAX)
		ttl = CGF_NAME_TTL_MAX;
	return cgf_now() + (ttl ? ttl : cgf_name_lifetime());
}

uint64_t cgf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct cgf_cidr *x = a, *y = b;

	if (x->family != y->family)
		return x->family - y->family;
	return memcmp(x->addr, y->addr, 16);
}

int cgf_resolve_host(const char *name, struct cgf_cidr **addrs, size_t *n, char *why,
		     size_t whylen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL, *ai;
	struct cgf_cidr *v = NULL;
	size_t cnt = 0, cap = 0, i, j;
	int r;

	char bare[CGF_HOST_MAX + 2];
	size_t l;

	*addrs = NULL;
	*n = 0;
	/* a name resolved is kept for its lifetime: none, none resolved */
	if (lifetime_env() < 0) {
		snprintf(why, whylen, "cannot resolve host name '%s': bad $CGFILTER_NAME_LIFETIME '%.40s': give whole seconds from 1 to %d, or unset it",
			 name, getenv("CGFILTER_NAME_LIFETIME"), LIFETIME_MAX);
		return -1;
	}
	/* "tcp." writes the host tcp (a field's name): /etc/hosts has it without the dot */
	snprintf(bare, sizeof(bare), "%s", name);
	l = strlen(bare);
	if (l > 1 && bare[l - 1] == '.')
		bare[l - 1] = 0;
	r = getaddrinfo(bare, NULL, &hints, &res);
	if (r) {
		snprintf(why, whylen, "cannot resolve host name '%s': %s", name,
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct cgf_cidr c = { 0 };

		if (ai->ai_family == AF_INET) {
			c.family = 4;
			c.plen = 32;
			memcpy(c.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			c.family = 6;
			c.plen = 128;
			memcpy(c.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		if (!cgf_grow((void **)&v, cnt, &cap, sizeof(*v), 4)) {
			free(v);
			freeaddrinfo(res);
			snprintf(why, whylen, "cannot resolve host name '%s': out of memory", name);
			return -1;
		}
		v[cnt++] = c;
	}
	freeaddrinfo(res);
	if (!cnt) {
		snprintf(why, whylen, "cannot resolve host name '%s': no IPv4 or IPv6 address", name);
		return -1;
	}
	qsort(v, cnt, sizeof(*v), cidr_cmp);
	for (i = j = 0; i < cnt; i++)
		if (!j || cidr_cmp(&v[j - 1], &v[i]))
			v[j++] = v[i];
	*addrs = v;
	*n = j;
	return 0;
}

/* ---- a table of names ---------------------------------------------------------- */

struct cgf_name *cgf_names_find(const struct cgf_names *t, const char *name)
{
	size_t i;

	for (i = 0; t && i < t->n; i++)
		if (!strcmp(t->v[i].name, name))
			return &t->v[i];
	return NULL;
}

int cgf_names_put(struct cgf_names *t, const char *name, uint64_t expires,
		  const struct cgf_cidr *addrs, size_t n)
{
	struct cgf_name *e = cgf_names_find(t, name);
	struct cgf_cidr *copy = malloc((n ? n : 1) * sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	memcpy(copy, addrs, n * sizeof(*copy));
	if (!e) {
		if (!cgf_grow((void **)&t->v, t->n, &t->cap, sizeof(*t->v), 4)) {
			free(copy);
			return -ENOMEM;
		}
		e = &t->v[t->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
	}
	free(e->addrs);
	e->addrs = copy;
	e->n = n;
	e->expires = expires;
	return 0;
}

void cgf_names_del(struct cgf_names *t, const char *name)
{
	struct cgf_name *e = cgf_names_find(t, name);

	if (!e)
		return;
	free(e->addrs);
	*e = t->v[--t->n];
}

void cgf_names_free(struct cgf_names *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].addrs);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

int cgf_names_parse(const char *text, struct cgf_names *t)
{
	char *copy = strdup(text ? text : ""), *line, *save = NULL;
	int r = 0;

	memset(t, 0, sizeof(*t));
	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		char *tok, *s2 = NULL, *name = strtok_r(line, " ", &s2);
		char *exp = strtok_r(NULL, " ", &s2), why[200];
		struct cgf_cidr *a = NULL;
		size_t n = 0, cap = 0;

		if (!name || !exp)
			continue;
		while (!r && (tok = strtok_r(NULL, " ", &s2))) {
			if (!cgf_grow((void **)&a, n, &cap, sizeof(*a), 4))
				r = -ENOMEM;
			else if (!cgf_parse_cidr(tok, &a[n], why, sizeof(why)))
				n++;
		}
		if (!r)
			r = cgf_names_put(t, name, strtoull(exp, NULL, 10), a, n);
		free(a);
	}
	free(copy);
	if (r)
		cgf_names_free(t);
	return r;
}

char *cgf_names_format(const struct cgf_names *t)
{
	char *buf = NULL, a[64];
	size_t len = 0, i, j;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (i = 0; i < t->n; i++) {
		fprintf(f, "%s %llu", t->v[i].name, (unsigned long long)t->v[i].expires);
		for (j = 0; j < t->v[i].n; j++) {
			cgf_format_cidr(&t->v[i].addrs[j], a, sizeof(a));
			fprintf(f, " %s", a);
		}
		fputc('\n', f);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- resolving, by policy ------------------------------------------------------- */

int cgf_names_get(struct cgf_names *t, const char *name, struct cgf_cidr **addrs, size_t *n,
		  char *why, size_t whylen)
{
	const struct cgf_name *old = cgf_names_find(t->old, name), *have = cgf_names_find(t, name);
	uint64_t now = cgf_now();
	char rwhy[300];
	int r;

	if (!have && old && (t->policy == CGF_NAMES_KEEP ||
			     (t->policy == CGF_NAMES_DUE && old->expires > now))) {
		if (cgf_names_put(t, name, old->expires, old->addrs, old->n))
			goto nomem;
		have = cgf_names_find(t, name);
	}
	if (!have) {
		struct cgf_cidr *a;
		size_t cnt;

		if (cgf_resolve_host(name, &a, &cnt, rwhy, sizeof(rwhy))) {
			if (!old || t->policy == CGF_NAMES_RESOLVE) {
				snprintf(why, whylen, "%s", rwhy);
				return -1;
			}
			/* a name that no longer resolves keeps its last addresses
			 * (and is tried again after a lifetime) */
			cgf_say(cgf_prog, "warning: %s; %s keeps its last addresses",
				rwhy, name);
			t->failed++;
			a = NULL;
			cnt = 0;
			r = cgf_names_put(t, name, now + cgf_name_lifetime(), old->addrs, old->n);
			/* (tried again after the default lifetime: no TTL to go by) */
		} else {
			r = cgf_names_put(t, name, cgf_name_expiry(name), a, cnt);
			if (!old || old->n != cnt || memcmp(old->addrs, a, cnt * sizeof(*a)))
				t->changed++;
		}
		free(a);
		if (r)
			goto nomem;
		t->resolved++;
		have = cgf_names_find(t, name);
	}
	*addrs = malloc((have->n ? have->n : 1) * sizeof(**addrs));
	if (!*addrs)
		goto nomem;
	memcpy(*addrs, have->addrs, have->n * sizeof(**addrs));
	*n = have->n;
	return 0;
nomem:
	snprintf(why, whylen, "cannot resolve host name '%s': out of memory", name);
	return -1;
}

int cgf_names_due(const struct cgf_names *t, bool force)
{
	uint64_t now = cgf_now();
	size_t i;
	int n = 0;

	for (i = 0; i < t->n; i++)
		n += force || t->v[i].expires <= now;
	return n;
}

int cgf_names_stored(const char *name, const struct cgf_set *s, struct cgf_cidr **addrs,
		     size_t *n, char *why, size_t whylen, void *ctx)
{
	const struct cgf_name *e = cgf_names_find(ctx, name);

	(void)s;
	*n = e ? e->n : 0;
	*addrs = malloc((*n ? *n : 1) * sizeof(**addrs));
	if (!*addrs) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (e)
		memcpy(*addrs, e->addrs, e->n * sizeof(**addrs));
	return 0;
}

int cgf_names_keep_old(struct cgf_names *t)
{
	size_t i;
	int r = 0;

	for (i = 0; t->old && i < t->old->n && !r; i++) {
		const struct cgf_name *o = &t->old->v[i];

		r = cgf_names_put(t, o->name, o->expires, o->addrs, o->n);
	}
	return r;
}
