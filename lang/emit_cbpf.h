/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The classic BPF back end of the filter language, for socket filters that
 * an ordinary user may attach (SO_ATTACH_FILTER): 'cgfilter wrap'.
 *
 * The program parses the packet as include/cgf_parse.bpf.h does (same
 * fields, same malformed packets dropped), reading the IP header through
 * the kernel's SKF_NET_OFF window, and evaluates the filter.  Classic BPF
 * has 32-bit registers, 16 scratch words, no maps and at most 4096
 * instructions, so the back end evaluates exactly what it can: a range
 * analysis over the fields' known ranges proves that every value whose
 * full 64 bits matter (compared, divided, shifted right, tested for truth)
 * fits in 32 bits, and computes the others (+ - * & | ^ ~ <<) modulo 2^32,
 * which is exact for their low 32 bits.  Literal sets become comparison
 * trees.  What it cannot evaluate (named sets, a value that may not fit,
 * too large a program) it refuses, naming the construct and its column.
 */
#ifndef CGF_EMIT_CBPF_H
#define CGF_EMIT_CBPF_H

#include <stddef.h>
#include <stdio.h>
#include <linux/filter.h>

#include "expr.h"

/* Where the packet data starts when the filter runs. */
enum cgf_cbpf_ctx {
	/* a TCP or UDP socket: at the transport header (len = skb->len plus
	 * the IP headers' length) */
	CGF_CBPF_SOCKET,
	/* an AF_PACKET socket on Ethernet: at the link header (len =
	 * skb->len - 14); for the tests, which feed crafted frames */
	CGF_CBPF_ETHERNET,
};

/* What a passed packet returns: keep all of it. */
#define CGF_CBPF_PASS 0xffffffffu

/*
 * Compile e.  Returns 0 with *prog (malloc'ed, *len instructions), or
 * -EINVAL with err filled in (the construct and its column), -E2BIG (too
 * many instructions, err says how many), -ENOMEM.
 */
int cgf_cbpf_compile(const struct cgf_expr *e, enum cgf_cbpf_ctx ctx, struct sock_filter **prog,
		     size_t *len, struct cgf_error *err);

/* One instruction a line, readable ("  12: jeq #0x800, 13, 40"). */
void cgf_cbpf_print(FILE *f, const struct sock_filter *prog, size_t len);

#endif /* CGF_EMIT_CBPF_H */
