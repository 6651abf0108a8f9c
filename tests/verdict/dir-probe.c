// SPDX-License-Identifier: GPL-2.0-only
/*
 * dir-probe CGROUP BPF_OBJECT: join CGROUP, attach dir-probe.bpf.c's two
 * programs to its ingress and egress, make TCP (SYN, SYN-ACK, data, FIN,
 * RST) and UDP traffic over 127.0.0.1 and ::1 between sockets of this
 * process, and print what ingress_ifindex was on each hook:
 *   HOOK ingress_ifindex=ZERO|NONZERO FAMILY KIND COUNT
 * (tests/52-direction.sh checks that it is 0 exactly on egress).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static const char *const kinds[] = { "syn", "syn-ack", "data", "fin", "rst", "udp", "ack", "other" };

static void die(const char *what)
{
	fprintf(stderr, "dir-probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static socklen_t addr_of(int fam, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	a->sin6_addr = in6addr_loopback;
	return sizeof(*a);
}

static int bound(int fam, int type, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_of(fam, 0, &ss);
	int s = socket(fam, type, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) || getsockname(s, (struct sockaddr *)&ss, &len))
		die("socket");
	*port = ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
			((struct sockaddr_in6 *)&ss)->sin6_port);
	return s;
}

/* one connection: data both ways, then closed with FINs, or reset */
static void tcp_once(int fam, int reset)
{
	struct sockaddr_storage ss;
	char buf[200] = "hello";
	int port, l = bound(fam, SOCK_STREAM, &port), c, a;
	socklen_t len = addr_of(fam, port, &ss);

	if (listen(l, 1))
		die("listen");
	c = socket(fam, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len) || (a = accept(l, NULL, NULL)) < 0)
		die("connect");
	if (write(c, buf, 100) != 100 || read(a, buf, sizeof(buf)) <= 0 || write(a, buf, 100) != 100 ||
	    read(c, buf, sizeof(buf)) <= 0)
		die("data");
	if (reset) {
		struct linger lg = { 1, 0 };

		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else {
		shutdown(a, SHUT_WR);
	}
	close(c);
	usleep(50000);
	close(a);
	close(l);
	/* a SYN to a closed port: the kernel answers with a RST of no socket */
	c = socket(fam, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&ss, len) == 0 || errno != ECONNREFUSED)
		die("connect to a closed port");
	close(c);
}

static void udp_once(int fam)
{
	struct sockaddr_storage ss, from;
	socklen_t fl = sizeof(from);
	char buf[64] = "ping";
	int port, s = bound(fam, SOCK_DGRAM, &port), cport, c = bound(fam, SOCK_DGRAM, &cport);
	socklen_t len = addr_of(fam, port, &ss);

	if (sendto(c, buf, 4, 0, (struct sockaddr *)&ss, len) != 4 ||
	    recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) != 4 ||
	    sendto(s, buf, 4, 0, (struct sockaddr *)&from, fl) != 4 || recv(c, buf, sizeof(buf), 0) != 4)
		die("udp");
	close(s);
	close(c);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	int cg, fd, fam, map;
	char procs[4096];
	__u32 k;

	if (argc != 3) {
		fprintf(stderr, "usage: dir-probe CGROUP BPF_OBJECT\n");
		return 2;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", argv[1]);
	fd = open(procs, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1)
		die(procs);
	close(fd);
	cg = open(argv[1], O_RDONLY | O_DIRECTORY);
	obj = bpf_object__open_file(argv[2], NULL);
	if (cg < 0 || !obj || bpf_object__load(obj))
		die("load");
	bpf_object__for_each_program(p, obj)
		if (!bpf_program__attach_cgroup(p, cg))
			die("attach");
	for (fam = AF_INET; fam; fam = fam == AF_INET ? AF_INET6 : 0) {
		tcp_once(fam, 0);
		tcp_once(fam, 1);
		udp_once(fam);
	}
	map = bpf_object__find_map_fd_by_name(obj, "counts");
	for (k = 0; k < 64; k++) {
		__u64 v = 0;

		if (bpf_map_lookup_elem(map, &k, &v) || !v)
			continue;
		printf("%s ingress_ifindex=%s %s %s %llu\n", k & 32 ? "egress" : "ingress",
		       k & 16 ? "NONZERO" : "ZERO", k & 8 ? "ipv6" : "ipv4", kinds[k & 7],
		       (unsigned long long)v);
	}
	return 0;
}
