// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter wrap: create (or take over) a daemon's sockets, attach the
 * filter to each as classic BPF, lock it, give up every capability and
 * exec the daemon with the sockets in LISTEN_FDS (sd_listen_fds(3)).
 *
 * The order is the safety: a socket gets its filter before it is bound,
 * so no packet reaches it unfiltered; an inherited socket gets its filter
 * and then loses what was queued before; the daemon runs only when every
 * step worked, without capabilities and with no_new_privs.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/sock_diag.h>

#include "cgf_version.h"
#include "emit_cbpf.h"
#include "expr.h"
#include "say.h"
#include "wrap.h"

#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif
#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#define MAX_SOCKETS 64

struct sock {
	int fd;
	bool tcp, inherited;
	char name[256];         /* for LISTEN_FDNAMES (systemd: at most 255) */
	char where[80];         /* for messages: "127.0.0.1:8080/tcp", "fd 3 (web)" */
};

struct wrap {
	const char *prog;
	const char *listen[MAX_SOCKETS];
	int nlisten;
	const char *sets[MAX_SOCKETS];
	int nsets;
	const char *file, *expr;
	bool print, classic;
	bool ebpf;              /* the filter is eBPF (prog_fd), else classic (fp) */
	int prog_fd;
	struct sock_fprog fp;
	char **cmd;
	struct sock s[MAX_SOCKETS];
	int n;
};

static int err_out(const struct wrap *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int err_out(const struct wrap *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cgf_vsay(w->prog, fmt, ap);
	va_end(ap);
	return 1;
}

static void usage(const char *prog, FILE *f)
{
	fprintf(f,
		"Usage: %s " CGF_WRAP_USAGE "\n"
		"Run CMD with sockets that carry a packet filter, passed as systemd passes\n"
		"sockets (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; sd_listen_fds(3)).\n\n"
		"  -l, --listen ADDR:PORT[/tcp|/udp]  create a socket: 127.0.0.1:8080, [::]:53/udp\n"
		"                       ([::] takes IPv4 too; TCP by default; repeatable)\n"
		"  -s, --set @NAME=ITEM,...  give a set its items (10.0.0.0/8,fd00::/8 or 22,80..90)\n"
		"  -f, --file FILE      read the filter from FILE ('-': standard input)\n"
		"  -c, --classic        classic BPF even with CAP_BPF\n"
		"  -p, --print          print the program and exit\n"
		"  -h, --help           this help\n"
		"      --version        the version\n\n"
		"Without --listen, the sockets inherited through LISTEN_FDS are filtered and\n"
		"passed on (under a .socket unit).  The filter is locked: CMD cannot remove it.\n"
		"A socket filter sees incoming packets only.  Without CAP_BPF it is classic\n"
		"BPF (32-bit values, no maps: what it cannot evaluate is refused); with it,\n"
		"eBPF and the whole language.  UDP needs no privilege; TCP needs CAP_NET_ADMIN\n"
		"(give it to cgfilter-wrap only: setcap cap_net_admin=ep).  CMD runs with no\n"
		"capability and no_new_privs.  The language is in cgfilter(8).\n\n"
		"Example: %s --listen [::]:4242 'src_ip in { 127.0.0.0/8, ::1 }' -- ./echod\n",
		prog, prog);
}

/* ---- the filter --------------------------------------------------------------- */

/* "@NAME=A,B" -> "@NAME = { A, B }\n" */
static int set_decl(struct wrap *w, const char *spec, char **text, size_t *len)
{
	const char *eq = strchr(spec, '=');
	size_t need = strlen(spec) * 2 + 16;
	char *t = realloc(*text, *len + need), *p;
	const char *s;
	bool addr = false;

	if (spec[0] != '@' || !eq || eq == spec + 1)
		return err_out(w, "--set %s: want @NAME=ITEM,ITEM...", spec);
	if (!t)
		return err_out(w, "out of memory");
	*text = t;
	p = t + *len;
	p += sprintf(p, "%.*s = { ", (int)(eq - spec), spec);
	/* each item checked here, so that an error names it and the option */
	for (s = eq + 1; *s;) {
		size_t n = strcspn(s, ",");
		char item[128], why[160];
		struct cgf_cidr c;
		struct cgf_range r;

		if (n == 0 || n >= sizeof(item))
			return err_out(w, "--set %.*s: an empty or overlong item", (int)(eq - spec), spec);
		memcpy(item, s, n);
		item[n] = 0;
		if (s == eq + 1) /* the first item decides the set's type (80..90 is a range) */
			addr = strchr(item, ':') || (strchr(item, '.') && !strstr(item, ".."));
		if (addr ? cgf_parse_cidr(item, &c, why, sizeof(why)) :
			   cgf_parse_range(item, &r, why, sizeof(why)))
			return err_out(w, "--set %.*s: bad item '%s': %s", (int)(eq - spec), spec, item,
				       why);
		p += sprintf(p, "%s%s", s == eq + 1 ? "" : ", ", item);
		s += n + (s[n] == ',');
	}
	p += sprintf(p, " }\n");
	*len = (size_t)(p - t);
	return 0;
}

/* the program of e, classic or eBPF, into w (or printed) */
static int build(struct wrap *w, const struct cgf_expr *e, struct cgf_error *err)
{
	char why[256];
	size_t n;
	int r;

	if (!w->ebpf) {
		r = cgf_cbpf_compile(e, CGF_CBPF_SOCKET, &w->fp.filter, &n, err);
		w->fp.len = (unsigned short)n;
		if (!r && w->print) {
			printf("%zu classic BPF instructions\n", n);
			cgf_cbpf_print(stdout, w->fp.filter, n);
		}
		return r;
	}
	r = w->print ? wrap_ebpf_print(e, stdout, why, sizeof(why)) :
		       wrap_ebpf_load(e, CGF_SOCK_TRANSPORT, stderr, &w->prog_fd, why, sizeof(why));
	if (r) {
		err_out(w, "%s", why);
		return -ECANCELED; /* said */
	}
	return 0;
}

static int compile(struct wrap *w)
{
	/* classic: a named set neither declared nor given gets the back
	 * end's word on why it cannot be */
	struct cgf_parse_opts o = { .dialect = CGF_DIALECT_FULL, .allow_decls = 1,
				    .any_set = !w->ebpf };
	char *text = NULL, *user, msg[400];
	size_t len = 0, n;
	struct cgf_expr *e;
	struct cgf_error err;
	int i, r;

	for (i = 0; i < w->nsets; i++)
		if (set_decl(w, w->sets[i], &text, &len)) {
			free(text);
			return 1;
		}
	user = w->file ? cgf_read_text(w->file, msg, sizeof(msg)) : strdup(w->expr);
	if (!user) {
		free(text);
		return err_out(w, "%s", w->file ? msg : "out of memory");
	}
	n = strlen(user);
	{
		char *t = realloc(text, len + n + 1);

		if (!t) {
			free(text);
			free(user);
			return err_out(w, "out of memory");
		}
		text = t;
		memcpy(text + len, user, n + 1);
	}
	r = cgf_expr_parse(text, &o, &e, &err);
	if (!r) {
		r = build(w, e, &err);
		cgf_expr_free(e);
	}
	if (r && r != -ECANCELED) {
		/* a place in the user's text, not in the --set lines before it */
		if (err.line > w->nsets) {
			err.line -= w->nsets;
			err.multiline = strchr(user, '\n') != NULL;
		} else if (err.line) {
			char m[sizeof(err.msg)];

			snprintf(m, sizeof(m), "%s", err.msg);
			snprintf(err.msg, sizeof(err.msg), "--set %.60s: %.180s", w->sets[err.line - 1], m);
			err.line = err.col = err.multiline = 0;
		}
		cgf_error_format(&err, msg, sizeof(msg));
		if (r == -ENOMEM)
			err_out(w, "out of memory");
		else if (strstr(msg, "classic BPF"))
			err_out(w, "cannot filter: %s%s", msg,
				wrap_can_ebpf() ? " (eBPF can: drop --classic)" :
						  " (eBPF, with CAP_BPF or as root, can)");
		else
			err_out(w, "bad filter: %s", msg);
		if (err.line)
			cgf_error_show_place(stderr, user, &err);
	}
	free(text);
	free(user);
	return r ? 1 : 0;
}

/* ---- sockets ------------------------------------------------------------------ */

static long optmem_max(void)
{
	FILE *f = fopen("/proc/sys/net/core/optmem_max", "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int attach(struct wrap *w, struct sock *s)
{
	int one = 1, locked = 0;
	socklen_t l = sizeof(locked);

	/* a filter locked before (say, by another wrap) cannot be replaced */
	if (!getsockopt(s->fd, SOL_SOCKET, SO_LOCK_FILTER, &locked, &l) && locked)
		return err_out(w, "cannot attach the filter to %s: it has a locked filter already "
				  "(wrapped twice?)", s->where);

	if (w->ebpf ? setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_BPF, &w->prog_fd, sizeof(w->prog_fd)) :
		      setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &w->fp, sizeof(w->fp))) {
		if (errno == EPERM && s->tcp)
			return err_out(w,
				       "cannot attach the filter to the TCP socket %s: the kernel "
				       "lets only a process with CAP_NET_ADMIN filter TCP sockets "
				       "(Linux commit 5d39580f68e6); UDP needs nothing.  An "
				       "administrator can grant it to cgfilter-wrap alone: setcap "
				       "cap_net_admin=ep PATH/cgfilter-wrap",
				       s->where);
		if (errno == ENOMEM)
			return err_out(w,
				       "cannot attach the filter to %s: too large for a socket (the "
				       "kernel charges it to the socket's option memory, at most "
				       "net.core.optmem_max = %ld bytes)",
				       s->where, optmem_max());
		return err_out(w, "cannot attach the filter to %s: %s", s->where, strerror(errno));
	}
	if (setsockopt(s->fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		return err_out(w, "cannot lock the filter of %s: %s", s->where, strerror(errno));
	return 0;
}

/* ADDR:PORT[/tcp|/udp]: IPv4 as is, IPv6 in [ ] */
static int parse_listen(struct wrap *w, const char *spec, struct sockaddr_in6 *a6,
			struct sockaddr_in *a4, bool *v6, bool *tcp)
{
	const char *slash = strrchr(spec, '/'), *colon, *host = spec;
	size_t len = slash ? (size_t)(slash - spec) : strlen(spec), hl;
	char h[INET6_ADDRSTRLEN], port[8], *end;
	unsigned long p;

	if (slash && strcmp(slash, "/tcp") && strcmp(slash, "/udp"))
		return err_out(w, "--listen %s: want /tcp or /udp after the port", spec);
	*tcp = !slash || !strcmp(slash, "/tcp");
	colon = memrchr(spec, ':', len);
	if (!colon || colon == spec || len - (size_t)(colon - spec) - 1 >= sizeof(port))
		return err_out(w, "--listen %s: want ADDR:PORT (127.0.0.1:8080, [::]:8080)", spec);
	hl = (size_t)(colon - spec);
	*v6 = spec[0] == '[';
	if (*v6) {
		if (hl < 3 || spec[hl - 1] != ']')
			return err_out(w, "--listen %s: want [IPv6]:PORT", spec);
		host++;
		hl -= 2;
	}
	if (hl >= sizeof(h))
		return err_out(w, "--listen %s: bad address", spec);
	memcpy(h, host, hl);
	h[hl] = 0;
	memcpy(port, colon + 1, len - (size_t)(colon - spec) - 1);
	port[len - (size_t)(colon - spec) - 1] = 0;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (port[0] < '1' || port[0] > '9' || *end || errno || p > 65535)
		return err_out(w, "--listen %s: bad port '%s' (1..65535, no leading zero)", spec, port);
	if (*v6) {
		*a6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)p) };
		if (inet_pton(AF_INET6, h, &a6->sin6_addr) != 1)
			return err_out(w, "--listen %s: bad IPv6 address '%s'", spec, h);
	} else {
		*a4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
		if (inet_pton(AF_INET, h, &a4->sin_addr) != 1)
			return err_out(w, "--listen %s: bad IPv4 address '%s' (IPv6 goes in [ ])", spec, h);
	}
	return 0;
}

static int open_listen(struct wrap *w, const char *spec)
{
	struct sock *s = &w->s[w->n];
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	bool v6, any6;
	int one = 1, zero = 0;

	if (parse_listen(w, spec, &a6, &a4, &v6, &s->tcp))
		return 1;
	snprintf(s->where, sizeof(s->where), "%s", spec);
	snprintf(s->name, sizeof(s->name), "%s-%u", s->tcp ? "tcp" : "udp",
		 ntohs(v6 ? a6.sin6_port : a4.sin_port));
	/* high, out of the way of the LISTEN_FDS range it moves to */
	s->fd = socket(v6 ? AF_INET6 : AF_INET, (s->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return err_out(w, "cannot create a socket for %s: %s", spec, strerror(errno));
	w->n++;
	/* the filter first: nothing arrives before it */
	if (attach(w, s))
		return 1;
	any6 = v6 && IN6_IS_ADDR_UNSPECIFIED(&a6.sin6_addr);
	if (any6 && setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		return err_out(w, "cannot make %s take IPv4 too: %s", spec, strerror(errno));
	if (s->tcp && setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		return err_out(w, "cannot set SO_REUSEADDR on %s: %s", spec, strerror(errno));
	if (v6 ? bind(s->fd, (struct sockaddr *)&a6, sizeof(a6)) :
		 bind(s->fd, (struct sockaddr *)&a4, sizeof(a4)))
		return err_out(w, "cannot listen on %s: %s", spec, strerror(errno));
	if (s->tcp && listen(s->fd, SOMAXCONN))
		return err_out(w, "cannot listen on %s: %s", spec, strerror(errno));
	return 0;
}

/* accept(2): errors of a connection that failed, not of the listener */
static bool conn_error(int e)
{
	return e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT ||
	       e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == ENETUNREACH ||
	       e == EOPNOTSUPP;
}

/*
 * What an inherited socket queued before it had a filter never met it:
 * connections waiting in a listener's queue are reset, datagrams dropped.
 * At most what was queued when the filter was attached (a listener's
 * queue length; for datagrams, what the memory they hold can be): what
 * keeps arriving, filtered, does not keep the command from starting.
 */
static int discard_queued(struct wrap *w, struct sock *s)
{
	int n = 0, c;

	if (s->tcp) {
		struct linger l = { 1, 0 };
		struct tcp_info ti = { 0 };
		socklen_t tl = sizeof(ti);
		/* the socket's own flags are the daemon's: put back after */
		int fl = fcntl(s->fd, F_GETFL), e, max = INT_MAX, failed = 0;

		if (!getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) && ti.tcpi_state == TCP_LISTEN)
			max = (int)ti.tcpi_unacked;      /* the accept queue's length */
		if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK))
			return err_out(w, "cannot empty the queue of %s: %s", s->where, strerror(errno));
		errno = EAGAIN;
		while (n + failed < max) {
			c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0 && conn_error(errno)) {
				failed++;
				errno = EAGAIN;
				continue;
			}
			if (c < 0)
				break;
			setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(c);
			n++;
			errno = EAGAIN;
		}
		e = errno;
		if (fcntl(s->fd, F_SETFL, fl))
			return err_out(w, "cannot restore the flags of %s: %s", s->where, strerror(errno));
		errno = e;
	} else {
		uint32_t mem[SK_MEMINFO_VARS] = { 0 };
		socklen_t ml = sizeof(mem);
		long max = LONG_MAX;
		char b[1];

		/* (a datagram holds at least 256 bytes of the queue's memory) */
		if (!getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &ml))
			max = mem[SK_MEMINFO_RMEM_ALLOC] / 256 + 1;
		errno = EAGAIN;
		while (n < max && recv(s->fd, b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC) >= 0) {
			n++;
			errno = EAGAIN;
		}
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return err_out(w, "cannot empty the queue of %s: %s", s->where, strerror(errno));
	if (n)
		cgf_say(w->prog, "%s: %s %d %s that arrived before the filter was attached",
			s->where, s->tcp ? "reset" : "dropped", n,
			s->tcp ? (n == 1 ? "connection" : "connections") :
				 (n == 1 ? "datagram" : "datagrams"));
	return 0;
}

static int take_inherited(struct wrap *w)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end;
	long n, i;

	if (!fds || !pid)
		return 0;
	errno = 0;
	if (strtol(pid, &end, 10) != getpid() || *end)
		return 0; /* not for this process */
	n = strtol(fds, &end, 10);
	if (*end || errno || n < 0 || n > MAX_SOCKETS)
		return err_out(w, "LISTEN_FDS=%s: want a number of sockets, 0..%d", fds, MAX_SOCKETS);
	/* before any socket is touched (its queue emptied, its filter set) */
	if (n + w->nlisten > MAX_SOCKETS)
		return err_out(w, "more than %d sockets: %ld inherited (LISTEN_FDS) and %d --listen",
			       MAX_SOCKETS, n, w->nlisten);
	for (i = 0; i < n; i++) {
		struct sock *s = &w->s[w->n];
		int type = 0, domain = 0, proto = 0, acc = 0;
		socklen_t l = sizeof(int);
		struct stat st;
		const char *nm = names;
		size_t k;

		s->fd = 3 + (int)i;
		s->inherited = true;
		for (k = 0; nm && k < (size_t)i; k++) {
			nm = strchr(nm, ':');
			nm = nm ? nm + 1 : NULL;
		}
		snprintf(s->name, sizeof(s->name), "%.*s", nm ? (int)strcspn(nm, ":") : 7,
			 nm ? nm : "unknown");
		snprintf(s->where, sizeof(s->where), "fd %d (%.*s)", s->fd,
			 nm ? (int)(strcspn(nm, ":") > 60 ? 60 : strcspn(nm, ":")) : 7, nm ? nm : "unknown");
		w->n++;
		if (fstat(s->fd, &st) || !S_ISSOCK(st.st_mode))
			return err_out(w, "%s, passed in LISTEN_FDS, is not a socket: cannot filter it",
				       s->where);
		if (getsockopt(s->fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) ||
		    getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &l) ||
		    getsockopt(s->fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) ||
		    getsockopt(s->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l))
			return err_out(w, "cannot inspect %s: %s", s->where, strerror(errno));
		if ((domain != AF_INET && domain != AF_INET6) ||
		    !((type == SOCK_STREAM && proto == IPPROTO_TCP) ||
		      (type == SOCK_DGRAM && proto == IPPROTO_UDP)))
			return err_out(w, "%s is not a TCP or UDP socket: cannot filter it", s->where);
		s->tcp = type == SOCK_STREAM;
		if (s->tcp && !acc) {
			struct sockaddr_storage peer;
			socklen_t pl = sizeof(peer);

			if (getpeername(s->fd, (struct sockaddr *)&peer, &pl))
				return err_out(w, "%s is a TCP socket that does not listen: nothing to "
						  "filter", s->where);
			return err_out(w,
				       "%s is a TCP connection (Accept=yes?), accepted before any "
				       "filter: filter the .socket unit instead (IPIngressFilterPath=)",
				       s->where);
		}
		if (attach(w, s) || discard_queued(w, s))
			return 1;
	}
	return 0;
}

/* ---- giving up privileges, and the daemon ------------------------------------- */

static int drop_privileges(struct wrap *w)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	int cap;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return err_out(w, "cannot clear the ambient capabilities: %s", strerror(errno));
	/* the bounding set as far as allowed (needs CAP_SETPCAP) */
	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &h, d))
		return err_out(w, "cannot drop capabilities: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return err_out(w, "cannot set no_new_privs: %s", strerror(errno));
	/* and check: the daemon must not run with anything left */
	if (syscall(SYS_capget, &h, d) || d[0].effective || d[0].permitted || d[0].inheritable ||
	    d[1].effective || d[1].permitted || d[1].inheritable)
		return err_out(w, "capabilities remain after dropping them: not running the command");
	return 0;
}

/*
 * An IP socket the daemon would inherit besides those passed (a socket of
 * another's LISTEN_FDS, stdin under inetd, a leaked one) would reach it
 * unfiltered: refuse to run.  Called once the sockets are in place.
 */
static int no_stray_sockets(struct wrap *w)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int r = 0;

	if (!d)
		return err_out(w, "cannot list the open files (/proc/self/fd): %s", strerror(errno));
	while (!r && (de = readdir(d))) {
		int fd = atoi(de->d_name), domain = 0, flags;
		socklen_t l = sizeof(domain);
		struct stat st;

		if (de->d_name[0] == '.' || fd == dirfd(d) || (fd >= 3 && fd < 3 + w->n))
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags < 0 || (flags & FD_CLOEXEC) || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		if (!getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) &&
		    (domain == AF_INET || domain == AF_INET6 || domain == AF_PACKET))
			r = err_out(w, "fd %d is a network socket the command would inherit without a "
				       "filter (it gets %d, at fd 3%s): close it before %s, or hand it "
				       "to %s in LISTEN_FDS to be filtered", fd, w->n,
				       w->n > 1 ? " on" : "", w->prog, w->prog);
	}
	closedir(d);
	return r;
}

/* sockets to 3, 4, ... in order, without close-on-exec */
static int arrange_fds(struct wrap *w)
{
	int i, moved[MAX_SOCKETS];

	/* first out of the range, so that no dup2 overwrites a socket */
	for (i = 0; i < w->n; i++) {
		moved[i] = fcntl(w->s[i].fd, F_DUPFD_CLOEXEC, 3 + w->n);
		if (moved[i] < 0 && (errno == EINVAL || errno == EMFILE))
			return err_out(w, "cannot pass %d sockets from fd 3 on: the limit on open files "
					  "(ulimit -n) is too low", w->n);
		if (moved[i] < 0)
			return err_out(w, "cannot move %s: %s", w->s[i].where, strerror(errno));
	}
	for (i = 0; i < w->n; i++) {
		if (dup2(moved[i], 3 + i) < 0)
			return err_out(w, "cannot pass %s as fd %d: %s", w->s[i].where, 3 + i,
				       strerror(errno));
		close(moved[i]);
	}
	return 0;
}

static int run(struct wrap *w)
{
	char num[32], *names = NULL;
	size_t len = 0;
	int i;

	for (i = 0; i < w->n; i++)
		len += strlen(w->s[i].name) + 1;
	names = calloc(1, len + 1);
	if (!names)
		return err_out(w, "out of memory");
	for (i = 0; i < w->n; i++) {
		if (i)
			strcat(names, ":");
		strcat(names, w->s[i].name);
	}
	snprintf(num, sizeof(num), "%d", w->n);
	if (setenv("LISTEN_FDS", num, 1) || setenv("LISTEN_FDNAMES", names, 1))
		return err_out(w, "cannot set the environment: %s", strerror(errno));
	snprintf(num, sizeof(num), "%d", (int)getpid());
	if (setenv("LISTEN_PID", num, 1))
		return err_out(w, "cannot set the environment: %s", strerror(errno));
	free(names);
	execvp(w->cmd[0], w->cmd);
	err_out(w, "cannot run %s: %s", w->cmd[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* ---- the command line ----------------------------------------------------------- */

/* the index of the "--" that ends the options and the filter, or 0 */
static int find_dashdash(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			return i;
		if (!strcmp(a, "-l") || !strcmp(a, "--listen") || !strcmp(a, "-s") ||
		    !strcmp(a, "--set") || !strcmp(a, "-f") || !strcmp(a, "--file"))
			i++;
	}
	return 0;
}

/* 0, or 1 (said) if what was printed could not be written (/dev/full) */
static int written(const struct wrap *w)
{
	errno = 0;
	if (fflush(stdout) || ferror(stdout))
		return err_out(w, "cannot write the output: %s", strerror(errno ? errno : EIO));
	return 0;
}

static int parse_args(struct wrap *w, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' }, { "set", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },   { "print", no_argument, NULL, 'p' },
		{ "classic", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int dd = find_dashdash(argc, argv), o;
	char clip[256];

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(dd ? dd : argc, argv, ":l:s:f:pch", lo, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (w->nlisten == MAX_SOCKETS)
				return err_out(w, "more than %d --listen", MAX_SOCKETS);
			w->listen[w->nlisten++] = optarg;
			break;
		case 's':
			if (w->nsets == MAX_SOCKETS)
				return err_out(w, "more than %d --set", MAX_SOCKETS);
			w->sets[w->nsets++] = optarg;
			break;
		case 'f':
			if (w->file)
				return err_out(w, "-f/--file given twice: give one filter file (see '%s --help')",
					       w->prog);
			w->file = optarg;
			break;
		case 'p': w->print = true; break;
		case 'c': w->classic = true; break;
		case 'h': usage(w->prog, stdout); exit(written(w));
		case 'V': printf("cgfilter-wrap %s\n", CGF_VERSION); exit(written(w));
		case ':':
			return err_out(w, "missing value of %s (see '%s --help')", argv[optind - 1], w->prog);
		default:
			return err_out(w, "unknown option %s (a filter that starts with '-' goes in -f FILE; see '%s --help')",
				       cgf_clip(argv[optind - 1], clip, sizeof(clip)), w->prog);
		}
	}
	if (optind < (dd ? dd : argc) && !w->file)
		w->expr = argv[optind++];
	if (optind < (dd ? dd : argc))
		return err_out(w, "unexpected '%s' (the command goes after '--'; see '%s --help')",
			       cgf_clip(argv[optind], clip, sizeof(clip)), w->prog);
	if (!w->expr && !w->file)
		return err_out(w, "no filter: give EXPR or -f FILE (see '%s --help')", w->prog);
	if (!w->print && (!dd || dd + 1 >= argc))
		return err_out(w, "no command: give it after '--' (see '%s --help')", w->prog);
	w->cmd = dd ? argv + dd + 1 : NULL;
	return 0;
}

int cgf_wrap_main(const char *prog, int argc, char **argv)
{
	struct wrap w = { .prog = prog };
	int i;

	if (parse_args(&w, argc, argv))
		return 1;
	w.ebpf = !w.classic && wrap_can_ebpf();
	w.prog_fd = -1;
	if (compile(&w))
		return 1;
	if (w.print)
		return written(&w);
	if (take_inherited(&w))
		return 1;
	if (w.n + w.nlisten > MAX_SOCKETS)
		return err_out(&w, "more than %d sockets: %d inherited (LISTEN_FDS) and %d --listen",
			       MAX_SOCKETS, w.n, w.nlisten);
	for (i = 0; i < w.nlisten; i++)
		if (open_listen(&w, w.listen[i]))
			return 1;
	free(w.fp.filter);
	if (w.prog_fd >= 0)
		close(w.prog_fd);
	if (!w.n)
		return err_out(&w, "no socket to filter: give --listen, or run under a .socket unit "
				    "(LISTEN_FDS)");
	if (arrange_fds(&w) || no_stray_sockets(&w) || drop_privileges(&w))
		return 1;
	return run(&w);
}
