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

#include <stdbool.h>
#include <stdio.h>

#include "emit_bpf.h"
#include "expr.h"

/* prog: "cgfilter wrap" or "cgfilter-wrap", for messages; argv[0] is the
 * command's name.  Returns only on failure: the exit status. */
int cgf_wrap_main(const char *prog, int argc, char **argv);

#define CGF_WRAP_USAGE \
	"[--listen ADDR:PORT[/tcp|/udp]]... [--set @NAME=ITEM,...]... [--classic]\n" \
	"       (EXPR | -f FILE) -- CMD [ARG...]"

/* ebpf.c: the filter as an eBPF socket filter, with CAP_BPF (or
 * CAP_SYS_ADMIN) in the effective set.  wrap_ebpf_load(): 0 and the
 * program's fd, or -errno and why (the verifier's log, if any, to logf). */
bool wrap_can_ebpf(void);
int wrap_ebpf_load(const struct cgf_expr *e, enum cgf_sock_ctx ctx, FILE *logf, int *prog,
		   char *why, size_t whylen);
int wrap_ebpf_print(const struct cgf_expr *e, FILE *f, char *why, size_t whylen);

#endif /* CGF_WRAP_H */
