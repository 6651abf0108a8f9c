// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter-probe: a tiny network client and echo server, so that the example
 * units, the demo and the tests need neither ping nor nc on the host.
 *
 *   cgfilter-probe listen tcp|udp PORT [-a ADDR] [-n COUNT]
 *   cgfilter-probe send tcp|udp HOST PORT [-t MS] [-m MESSAGE] [-b FROM]
 *   cgfilter-probe ping HOST [-c COUNT] [-i MS] [-t MS]
 *   cgfilter-probe stream HOST PORT [-i MS] [-t MS] [-c COUNT]
 *
 * send exits 0 when the server's echo came back, 1 when it did not (timeout,
 * refused, unreachable), 2 on bad usage.  ping exits 0 when at least one
 * reply came back.  stream keeps one TCP connection open and sends a line
 * every interval, printing "ok N" or "lost N" for each, until COUNT lines or
 * a signal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "cgfilter-probe";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s listen tcp|udp PORT [-a ADDR] [-n COUNT]\n"
		"       %s send tcp|udp HOST PORT [-t MS] [-m MESSAGE] [-b FROM]\n"
		"       %s ping HOST [-c COUNT] [-i MS] [-t MS]\n"
		"       %s stream HOST PORT [-i MS] [-t MS] [-c COUNT]\n"
		"A tiny client and echo server for testing packet filters.\n\n"
		"  listen   echo every TCP connection / UDP datagram back (COUNT: stop after\n"
		"           that many; ADDR: address to bind, default :: and 0.0.0.0)\n"
		"  send     send MESSAGE (default \"probe\") and wait up to MS (default 1000)\n"
		"           for the echo; exit 0 if it came back, 1 if not (FROM: the\n"
		"           source address)\n"
		"  ping     ICMP/ICMPv6 echo; exit 0 if any of COUNT (default 1) got a reply\n"
		"  stream   one TCP connection, a line every MS (default 200); prints\n"
		"           'ok N' or 'lost N' per line\n\n"
		"Examples:\n"
		"  %s listen udp 5353 &\n"
		"  %s send udp 127.0.0.1 5353 && echo passed\n",
		prog, prog, prog, prog, prog, prog);
}

static int parse_num(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s: invalid %s: %s (%ld..%ld)\n", prog, what, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int resolve(const char *host, const char *port, int socktype, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV };
	int r = getaddrinfo(host, port, &hints, res);

	if (r) {
		fprintf(stderr, "%s: cannot resolve %s: %s\n", prog, host, gai_strerror(r));
		return -1;
	}
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable (or writable) or timeout_ms passes. */
static int wait_fd(int fd, short events, long timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int listen_main(int argc, char **argv)
{
	const char *addr = NULL;
	long port, count = 0, served = 0;
	int opt, type, fds[2], nfds = 0, i;

	while ((opt = getopt(argc, argv, "a:n:")) != -1) {
		if (opt == 'a')
			addr = optarg;
		else if (opt == 'n') {
			if (parse_num("count", optarg, 1, 1000000000, &count))
				return 2;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "tcp"))
		type = SOCK_STREAM;
	else if (!strcmp(argv[optind], "udp"))
		type = SOCK_DGRAM;
	else {
		fprintf(stderr, "%s: unknown protocol %s (tcp or udp)\n", prog, argv[optind]);
		return 2;
	}
	if (parse_num("port", argv[optind + 1], 1, 65535, &port))
		return 2;

	/* one socket per family unless an address was given */
	for (i = 0; i < 2; i++) {
		const char *a = addr ? addr : (i == 0 ? "::" : "0.0.0.0");
		struct addrinfo *ai;
		char ps[8];
		int fd, one = 1;

		if (addr && i == 1)
			break;
		snprintf(ps, sizeof(ps), "%ld", port);
		if (resolve(a, ps, type, &ai))
			return 1;
		fd = socket(ai->ai_family, ai->ai_socktype, 0);
		if (fd < 0) {
			freeaddrinfo(ai);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) ||
		    (type == SOCK_STREAM && listen(fd, 64))) {
			fprintf(stderr, "%s: cannot listen on %s port %ld: %s\n", prog, a, port,
				strerror(errno));
			close(fd);
			freeaddrinfo(ai);
			if (addr)
				return 1;
			continue;
		}
		freeaddrinfo(ai);
		fds[nfds++] = fd;
	}
	if (!nfds)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* the per-connection children are reaped by the kernel: no zombies */
	signal(SIGCHLD, SIG_IGN);
	printf("listening on %s port %ld\n", argv[optind], port);
	fflush(stdout);
	while (!stop && (!count || served < count)) {
		struct pollfd p[2];
		char buf[2048];

		for (i = 0; i < nfds; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, nfds, -1) < 0)
			continue;
		for (i = 0; i < nfds; i++) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			ssize_t n;

			if (!(p[i].revents & POLLIN))
				continue;
			if (type == SOCK_DGRAM) {
				n = recvfrom(fds[i], buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
				if (n >= 0) {
					sendto(fds[i], buf, n, 0, (struct sockaddr *)&ss, sl);
					served++;
				}
				continue;
			}
			/* TCP: echo everything this connection sends, in a child */
			{
				int c = accept(fds[i], NULL, NULL);

				if (c < 0)
					continue;
				served++;
				if (fork() == 0) {
					/* a peer whose close a filter dropped would keep
					 * this child forever: give up after a quiet minute,
					 * and go with the server */
					struct timeval idle = { .tv_sec = 60 };

					setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					if (getppid() == 1)
						_exit(0);
					while ((n = read(c, buf, sizeof(buf))) > 0)
						if (write(c, buf, n) != n)
							break;
					_exit(0);
				}
				close(c);
			}
		}
	}
	return 0;
}

static int send_main(int argc, char **argv)
{
	const char *msg = "probe", *from = NULL;
	long timeout = 1000, deadline;
	struct addrinfo *ai, *bi = NULL;
	char buf[2048];
	int opt, type, fd, r = 1;
	ssize_t n;

	while ((opt = getopt(argc, argv, "t:m:b:")) != -1) {
		if (opt == 't') {
			if (parse_num("timeout", optarg, 1, 3600000, &timeout))
				return 2;
		} else if (opt == 'm')
			msg = optarg;
		else if (opt == 'b')
			from = optarg;
		else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 3) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "tcp"))
		type = SOCK_STREAM;
	else if (!strcmp(argv[optind], "udp"))
		type = SOCK_DGRAM;
	else {
		fprintf(stderr, "%s: unknown protocol %s (tcp or udp)\n", prog, argv[optind]);
		return 2;
	}
	{
		long port;

		if (parse_num("port", argv[optind + 2], 1, 65535, &port))
			return 2;
	}
	if (resolve(argv[optind + 1], argv[optind + 2], type, &ai))
		return 2;
	deadline = now_ms() + timeout;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create socket: %s\n", prog, strerror(errno));
		goto out;
	}
	if (from && (resolve(from, "0", type, &bi) || bind(fd, bi->ai_addr, bi->ai_addrlen))) {
		fprintf(stderr, "%s: cannot send from %s: %s\n", prog, from, bi ? strerror(errno) :
			"no such address");
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		fprintf(stderr, "%s: cannot connect to %s port %s: %s\n", prog, argv[optind + 1],
			argv[optind + 2], strerror(errno));
		goto out;
	}
	if (type == SOCK_STREAM) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (wait_fd(fd, POLLOUT, deadline - now_ms()) ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
			fprintf(stderr, "%s: no connection to %s port %s: %s\n", prog,
				argv[optind + 1], argv[optind + 2], err ? strerror(err) : "timed out");
			goto out;
		}
	}
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "%s: cannot send to %s port %s: %s\n", prog, argv[optind + 1],
			argv[optind + 2], strerror(errno));
		goto out;
	}
	while (now_ms() < deadline) {
		if (wait_fd(fd, POLLIN, deadline - now_ms()))
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: no reply from %s port %s: %s\n", prog,
				argv[optind + 1], argv[optind + 2], strerror(errno));
			goto out;
		}
		if (n > 0) {
			printf("reply from %s port %s\n", argv[optind + 1], argv[optind + 2]);
			r = 0;
			goto out;
		}
		break;
	}
	fprintf(stderr, "%s: no reply from %s port %s within %ld ms\n", prog, argv[optind + 1],
		argv[optind + 2], timeout);
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	if (bi)
		freeaddrinfo(bi);
	return r;
}

static int ping_main(int argc, char **argv)
{
	long count = 1, interval = 200, timeout = 1000, i, replies = 0;
	struct addrinfo *ai;
	int opt, fd, v6;

	while ((opt = getopt(argc, argv, "c:i:t:")) != -1) {
		if (opt == 'c') {
			if (parse_num("count", optarg, 1, 1000000, &count))
				return 2;
		} else if (opt == 'i') {
			if (parse_num("interval", optarg, 1, 3600000, &interval))
				return 2;
		} else if (opt == 't') {
			if (parse_num("timeout", optarg, 1, 3600000, &timeout))
				return 2;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	if (resolve(argv[optind], NULL, SOCK_DGRAM, &ai))
		return 2;
	v6 = ai->ai_family == AF_INET6;
	/* a ping socket needs no privilege where ping_group_range allows it;
	 * root falls back to a raw socket */
	fd = socket(ai->ai_family, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0)
		fd = socket(ai->ai_family, SOCK_RAW, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create an ICMP socket: %s\n", prog, strerror(errno));
		freeaddrinfo(ai);
		return 1;
	}
	for (i = 0; i < count && !stop; i++) {
		unsigned char pkt[64] = { 0 }, buf[1500];
		long deadline = now_ms() + timeout;
		int got = 0;

		pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
		pkt[7] = (unsigned char)i; /* sequence */
		if (!v6) { /* the kernel sums ICMPv6 and ping sockets, not raw ICMP */
			uint32_t sum = 0;
			size_t k;

			for (k = 0; k < sizeof(pkt); k += 2)
				sum += (uint32_t)pkt[k] << 8 | pkt[k + 1];
			while (sum >> 16)
				sum = (sum & 0xffff) + (sum >> 16);
			pkt[2] = (unsigned char)(~sum >> 8);
			pkt[3] = (unsigned char)~sum;
		}
		if (sendto(fd, pkt, sizeof(pkt), 0, ai->ai_addr, ai->ai_addrlen) < 0) {
			fprintf(stderr, "%s: cannot send to %s: %s\n", prog, argv[optind],
				strerror(errno));
		} else {
			while (!got && now_ms() < deadline) {
				ssize_t n;

				if (wait_fd(fd, POLLIN, deadline - now_ms()))
					break;
				n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (n <= 0)
					continue;
				/* a raw IPv4 socket also returns the IP header */
				if (!v6 && (buf[0] >> 4) == 4 && n > (buf[0] & 15) * 4)
					got = buf[(buf[0] & 15) * 4] == ICMP_ECHOREPLY;
				else
					got = buf[0] == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY);
			}
		}
		if (got) {
			replies++;
			printf("reply from %s: seq=%ld\n", argv[optind], i);
		} else {
			printf("no reply from %s: seq=%ld\n", argv[optind], i);
		}
		fflush(stdout);
		if (i + 1 < count)
			usleep(interval * 1000);
	}
	printf("%ld sent, %ld replies\n", i, replies);
	close(fd);
	freeaddrinfo(ai);
	return replies ? 0 : 1;
}

static int stream_main(int argc, char **argv)
{
	long interval = 200, timeout = 1000, count = 0, i;
	struct addrinfo *ai;
	int opt, fd;

	while ((opt = getopt(argc, argv, "i:t:c:")) != -1) {
		if (opt == 'i') {
			if (parse_num("interval", optarg, 1, 3600000, &interval))
				return 2;
		} else if (opt == 't') {
			if (parse_num("timeout", optarg, 1, 3600000, &timeout))
				return 2;
		} else if (opt == 'c') {
			if (parse_num("count", optarg, 1, 1000000000, &count))
				return 2;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (resolve(argv[optind], argv[optind + 1], SOCK_STREAM, &ai))
		return 2;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		fprintf(stderr, "%s: cannot connect to %s port %s: %s\n", prog, argv[optind],
			argv[optind + 1], strerror(errno));
		freeaddrinfo(ai);
		return 1;
	}
	freeaddrinfo(ai);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf("connected\n");
	fflush(stdout);
	for (i = 1; !stop && (!count || i <= count); i++) {
		char line[32], buf[256];
		long deadline = now_ms() + timeout;
		size_t want, got = 0;
		int ok = 0;

		want = (size_t)snprintf(line, sizeof(line), "%ld\n", i);
		if (send(fd, line, want, MSG_NOSIGNAL) < 0) {
			fprintf(stderr, "%s: connection lost: %s\n", prog, strerror(errno));
			return 1;
		}
		/* TCP retransmits what a filter dropped: a late echo of an
		 * earlier line counts for nothing, only this line's echo does */
		while (now_ms() < deadline) {
			ssize_t n;

			if (wait_fd(fd, POLLIN, deadline - now_ms()))
				break;
			n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
			if (n == 0) {
				fprintf(stderr, "%s: connection closed by peer\n", prog);
				return 1;
			}
			if (n < 0)
				continue;
			got += (size_t)n;
			buf[got] = 0;
			if (strstr(buf, line)) {
				ok = 1;
				break;
			}
			if (got > sizeof(buf) / 2) {
				/* keep the tail: the line may straddle */
				memmove(buf, buf + got - 32, 32);
				got = 32;
			}
		}
		printf("%s %ld\n", ok ? "ok" : "lost", i);
		fflush(stdout);
		if (ok)
			usleep(interval * 1000);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "listen"))
		return listen_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "send"))
		return send_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ping"))
		return ping_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stream"))
		return stream_main(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command %s\n", prog, argv[1]);
	usage(stderr);
	return 2;
}
