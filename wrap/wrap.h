/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cgfilter wrap / cgfilter-wrap: filtered sockets for any daemon, passed
 * with the socket activation protocol (sd_listen_fds(3)).  One
 * implementation (wrap.c) for both: the separate program is what an
 * administrator may give the capability CAP_NET_ADMIN, which the kernel
 * requires to attach a filter to a TCP socket.
 */
#ifndef CGF_WRAP_H
#define CGF_WRAP_H

/* prog: "cgfilter wrap" or "cgfilter-wrap", for messages; argv[0] is the
 * command's name.  Returns only on failure: the exit status. */
int cgf_wrap_main(const char *prog, int argc, char **argv);

#define CGF_WRAP_USAGE \
	"[--listen ADDR:PORT[/tcp|/udp]]... [--set @NAME=ITEM,...]... (EXPR | -f FILE)\n" \
	"       -- CMD [ARG...]"

#endif /* CGF_WRAP_H */
