// SPDX-License-Identifier: GPL-2.0-only
/*
 * cbpf-run: run Ethernet frames through the socket filters of filters,
 * in the real kernel, for the differential test of the back ends that
 * 'cgfilter wrap' uses (tests/46-wrap-classic.sh): classic BPF, or with
 * -e the eBPF socket filter.
 *
 *   cbpf-run [-e] -p PACKETS -o SEND_IF -i RECV_IF FILTERS
 *
 * SEND_IF and RECV_IF are the two ends of a veth pair (in a network
 * namespace of the test's own).  Each filter (one a line in FILTERS) is
 * compiled for an AF_PACKET socket on RECV_IF and attached with
 * SO_ATTACH_FILTER (SO_ATTACH_BPF); each frame is sent from SEND_IF, and is
 * "passed" when that socket receives it.  A second socket without a filter
 * on RECV_IF says when the kernel has delivered the frame.  Output: a line
 * per filter, tab-separated:
 *   ok <TAB> VERDICTS (one character per frame: 1 passed, 0 dropped)
 *   refused <TAB> the back end's message
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emit_cbpf.h"
#include "expr.h"
#include "frames.h"
#include "wrap.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif

static int ebpf;

static void die(const char *what)
{
	fprintf(stderr, "cbpf-run: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int packet_socket(const char *ifname, int proto)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(proto) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(proto));
	int big = 4 << 20;

	if (fd < 0)
		die("socket(AF_PACKET)");
	a.sll_ifindex = (int)if_nametoindex(ifname);
	if (!a.sll_ifindex)
		die(ifname);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		die("bind");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

static void drain(int fd)
{
	unsigned char b[65536];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
}

/* did fd receive (now, without waiting) a frame equal to f? */
static int got(int fd, const struct frame *f)
{
	unsigned char b[65536];
	ssize_t n;
	int hit = 0;

	while ((n = recv(fd, b, sizeof(b), MSG_DONTWAIT)) >= 0)
		if ((size_t)n == f->len && !memcmp(b, f->data, f->len))
			hit = 1;
	return hit;
}

/* wait until the unfiltered socket has f: the kernel has run the filter */
static void wait_for(int fd, const struct frame *f, size_t i)
{
	unsigned char b[65536];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		ssize_t n;

		if (poll(&p, 1, 2000) <= 0) {
			fprintf(stderr, "cbpf-run: frame %zu never arrived on the other end\n", i);
			exit(1);
		}
		while ((n = recv(fd, b, sizeof(b), MSG_DONTWAIT)) >= 0)
			if ((size_t)n == f->len && !memcmp(b, f->data, f->len))
				return;
	}
}

static void run_filter(const char *text, const struct frames *fr, int out, int clock, int test)
{
	struct cgf_parse_opts o = { .dialect = CGF_DIALECT_FULL, .allow_decls = 1 };
	struct cgf_expr *e = NULL;
	struct cgf_error err;
	struct sock_filter *prog;
	struct sock_fprog fp;
	size_t n, i;
	char msg[512];

	if (cgf_expr_parse(text, &o, &e, &err)) {
		cgf_error_format(&err, msg, sizeof(msg));
		printf("refused\tparse: %s\n", msg);
		return;
	}
	if (ebpf) {
		char why[256];
		int fd;

		if (wrap_ebpf_load(e, CGF_SOCK_ETHERNET, stderr, &fd, why, sizeof(why))) {
			printf("refused\t%s\n", why);
			cgf_expr_free(e);
			return;
		}
		cgf_expr_free(e);
		if (setsockopt(test, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd))) {
			if (errno != ENOMEM)
				die("SO_ATTACH_BPF");
			/* as cgfilter wrap says it */
			printf("refused\ttoo large for a socket (net.core.optmem_max)\n");
			close(fd);
			return;
		}
		close(fd);
	} else {
		if (cgf_cbpf_compile(e, CGF_CBPF_ETHERNET, &prog, &n, &err)) {
			cgf_error_format(&err, msg, sizeof(msg));
			printf("refused\t%s\n", msg);
			cgf_expr_free(e);
			return;
		}
		cgf_expr_free(e);
		fp.len = (unsigned short)n;
		fp.filter = prog;
		if (setsockopt(test, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
			die("SO_ATTACH_FILTER");
		free(prog);
	}
	drain(test);
	drain(clock);
	printf("ok\t");
	for (i = 0; i < fr->n; i++) {
		if (send(out, fr->v[i].data, fr->v[i].len, 0) != (ssize_t)fr->v[i].len)
			die("send");
		wait_for(clock, &fr->v[i], i);
		putchar(got(test, &fr->v[i]) ? '1' : '0');
	}
	putchar('\n');
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *packets = NULL, *out_if = NULL, *in_if = NULL;
	struct frames fr = { 0 };
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int o, out, clock, test;

	while ((o = getopt(argc, argv, "ep:o:i:")) != -1) {
		if (o == 'e')
			ebpf = 1;
		else if (o == 'p')
			packets = optarg;
		else if (o == 'o')
			out_if = optarg;
		else if (o == 'i')
			in_if = optarg;
		else
			return 2;
	}
	if (!packets || !out_if || !in_if || optind != argc - 1) {
		fprintf(stderr, "usage: cbpf-run [-e] -p PACKETS -o SEND_IF -i RECV_IF FILTERS\n");
		return 2;
	}
	if (frames_read("cbpf-run", packets, 0, &fr))
		return 1;
	f = fopen(argv[optind], "r");
	if (!f)
		die(argv[optind]);
	out = packet_socket(out_if, 0);
	clock = packet_socket(in_if, ETH_P_ALL);
	test = packet_socket(in_if, ETH_P_ALL);
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		run_filter(line, &fr, out, clock, test);
	}
	free(line);
	fclose(f);
	frames_free(&fr);
	return 0;
}
