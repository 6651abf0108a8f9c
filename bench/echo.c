// SPDX-License-Identifier: GPL-2.0-only
/*
 * echo-bench: alfwrapper's speed test, for `make bench`: a loopback echo
 * daemon under cgfilter wrap against the same daemon unwrapped.
 *
 *   echo-bench serve [--port PORT]     echo every TCP connection and UDP
 *                                      datagram on the sockets in LISTEN_FDS
 *                                      (or its own on 127.0.0.1:PORT, TCP
 *                                      and UDP: the daemon unwrapped)
 *   echo-bench tcp PORT SECONDS        send 64 KiB blocks and read them
 *                                      back for SECONDS: prints MB/s
 *   echo-bench udp PORT SECONDS        64-byte requests, one at a time:
 *                                      prints round trips a second
 *   echo-bench sink [--port PORT]      hold the sockets in LISTEN_FDS (or,
 *                                      with --port, a UDP socket of its own
 *                                      whose filter drops at once) and read
 *                                      nothing: their filters drop
 *   echo-bench flood PORT SECONDS      send 64-byte datagrams as fast as it
 *                                      can: prints ns a datagram (on
 *                                      loopback the receiver's filter runs
 *                                      inside the send)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>

#define BLOCK 65536

static void die(const char *what)
{
	fprintf(stderr, "echo-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct sockaddr_in at(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int own_socket(int type, int port)
{
	struct sockaddr_in a = at(port);
	int fd = socket(AF_INET, type, 0), one = 1;

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || (type == SOCK_STREAM && listen(fd, 16)))
		die("own socket");
	return fd;
}

static void serve_conn(int c)
{
	static char buf[BLOCK];
	ssize_t n;

	while ((n = read(c, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));

			if (w <= 0)
				return;
			off += w;
		}
	}
}

static int serve(int argc, char **argv)
{
	struct pollfd p[16];
	int n = 0, i;

	if (argc == 4 && !strcmp(argv[2], "--port")) {
		p[n++].fd = own_socket(SOCK_STREAM, atoi(argv[3]));
		p[n++].fd = own_socket(SOCK_DGRAM, atoi(argv[3]));
	} else {
		const char *fds = getenv("LISTEN_FDS");

		n = fds ? atoi(fds) : 0;
		if (n < 1 || n > 16) {
			fprintf(stderr, "echo-bench: no sockets in LISTEN_FDS\n");
			return 1;
		}
		for (i = 0; i < n; i++)
			p[i].fd = 3 + i;
	}
	for (i = 0; i < n; i++)
		p[i].events = POLLIN;
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0)
			die("poll");
		for (i = 0; i < n; i++) {
			int type = 0;
			socklen_t l = sizeof(type);

			if (!(p[i].revents & POLLIN))
				continue;
			getsockopt(p[i].fd, SOL_SOCKET, SO_TYPE, &type, &l);
			if (type == SOCK_STREAM) {
				int c = accept(p[i].fd, NULL, NULL);

				if (c >= 0) {
					serve_conn(c);
					close(c);
				}
			} else {
				char buf[2048];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				ssize_t m = recvfrom(p[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

				if (m >= 0)
					sendto(p[i].fd, buf, (size_t)m, 0, (struct sockaddr *)&from, fl);
			}
		}
	}
}

static int tcp_client(int port, double secs)
{
	static char out[BLOCK], in[BLOCK];
	struct sockaddr_in a = at(port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	double t0, t;
	long long bytes = 0;

	memset(out, 'x', sizeof(out));
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	t0 = now();
	do {
		size_t got = 0;

		if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
			die("write");
		while (got < sizeof(in)) {
			ssize_t n = read(fd, in, sizeof(in) - got);

			if (n <= 0)
				die("read");
			got += (size_t)n;
		}
		bytes += BLOCK;
		t = now();
	} while (t - t0 < secs);
	printf("%.1f\n", (double)bytes / (t - t0) / 1e6);
	return 0;
}

static int udp_client(int port, double secs)
{
	struct sockaddr_in a = at(port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[64] = "echo-bench";
	struct timeval tv = { 1, 0 };
	double t0, t;
	long n = 0;

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		die("udp socket");
	t0 = now();
	do {
		if (send(fd, buf, sizeof(buf), 0) != sizeof(buf) || recv(fd, buf, sizeof(buf), 0) < 0)
			die("udp round trip");
		n++;
		t = now();
	} while (t - t0 < secs);
	printf("%.0f\n", (double)n / (t - t0));
	return 0;
}

static __attribute__((noreturn)) void sink(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[2], "--port")) {
		/* the floor: a filter that drops at once */
		struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
		struct sock_fprog fp = { 1, &drop };
		int fd = own_socket(SOCK_DGRAM, atoi(argv[3]));

		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
			die("SO_ATTACH_FILTER");
	}
	for (;;)
		pause();
}

static int flood(int port, double secs)
{
	struct sockaddr_in a = at(port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[64] = "echo-bench";
	double t0, t;
	long n = 0;

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("udp socket");
	t0 = now();
	do {
		int i;

		for (i = 0; i < 1000; i++)
			if (send(fd, buf, sizeof(buf), 0) != sizeof(buf))
				die("send");
		n += 1000;
		t = now();
	} while (t - t0 < secs);
	printf("%.1f\n", (t - t0) * 1e9 / (double)n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "tcp"))
		return tcp_client(atoi(argv[2]), atof(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "udp"))
		return udp_client(atoi(argv[2]), atof(argv[3]));
	if (argc >= 2 && !strcmp(argv[1], "sink"))
		sink(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "flood"))
		return flood(atoi(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: echo-bench serve [--port PORT] | tcp PORT SECONDS | udp PORT SECONDS\n"
			"       echo-bench sink [--port PORT] | flood PORT SECONDS\n");
	return 2;
}
