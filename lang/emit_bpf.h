/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The BPF back end of the filter language: a parsed filter (expr.h) into a
 * cgroup_skb program, as instructions (bpf_asm.h), with no compiler.
 *
 * The program parses the packet exactly as include/cgf_parse.bpf.h does
 * for port-firewall (same fields, same malformed packets), evaluates the
 * filter, counts the verdict in the engine's stats and, while a monitor
 * holds the lease, reports drops to its ring buffer (include/cgf_abi.h).
 *
 * The generator creates no kernel object: the maps the program refers to
 * are the engine's (given as fds), the named sets' (looked up through a
 * callback) and the filter's literal sets, which it describes as map specs
 * (struct cgf_lit) for the caller to create, fill and freeze before the
 * fds are patched in with cgf_gen_bind().  'cgfilter compile' prints a
 * program without any of them (fds -1).
 */
#ifndef CGF_EMIT_BPF_H
#define CGF_EMIT_BPF_H

#include <stdbool.h>
#include <stddef.h>

#include "bpf_asm.h"
#include "expr.h"

/* A map a literal set needs: an array of one value holding data; or, for a
 * dynamic set (dyn), an empty hash map of this type and size that the
 * program fills (key: the value or family and address, value: when the
 * entry expires, in bpf_ktime_get_ns() time). */
struct cgf_lit {
	uint32_t asm_map;    /* its index in the program's maps */
	uint32_t value_size;
	void *data;          /* value_size bytes; NULL for a dynamic set */
	char what[64];       /* for messages: "literal IPv4 set at column 12" */
	const struct cgf_set *dyn;
	uint32_t map_type, key_size, max_entries, map_flags;
	char map_name[16];   /* "cgf_dyn0", ...: dynamic sets in the order declared */
};

/* Named sets: the outer map's fd and its type, or -1 if there is none. */
typedef int (*cgf_named_set_fn)(const char *name, enum cgf_type type, void *ctx);
/* A named address set's addresses as they are now, compiled into the
 * program as a literal set's are (NULL if there is none). */
typedef const struct cgf_set *(*cgf_named_addrs_fn)(const char *name, void *ctx);

/* The engine's maps (cgf_abi.h), -1 when only printing, and its named sets. */
struct cgf_gen_env {
	int stats_fd, slots_fd, drops_fd, ctl_fd, ratelimit_fd, events_fd, cgroups_fd;
	cgf_named_set_fn named_set;
	void *ctx;
	int mode;               /* enum cgf_run_mode of a filter program */
	bool learn;             /* record flows into learn_fd (cgf_abi.h) */
	int learn_fd;
	/* exe: the socket storage map of executables (cgf_abi.h); with
	 * exe_test, an array of one struct cgf_exe_id instead, which the
	 * tests fill (BPF_PROG_TEST_RUN has no socket of a process) */
	int exe_fd;
	bool exe_test;
	int scratch_fd;         /* PIN_maps/scratch */
	/* named address sets: their addresses now (NULL when only printing:
	 * the program then shows none, and says so) */
	cgf_named_addrs_fn named_addrs;
};
#define CGF_GEN_ENV_NONE { -1, -1, -1, -1, -1, -1, -1, NULL, NULL, 0, false, -1, -1, false, -1, NULL }

struct cgf_gen {
	struct cgf_asm a;
	struct cgf_lit *lits;
	size_t nlits;
};

/*
 * Generate the program of filter e.  Returns 0, or -E2BIG (too large),
 * -ENOENT (an unknown named set), -ENOMEM with the reason in why.
 */
int cgf_gen_filter(const struct cgf_expr *e, const struct cgf_gen_env *env, struct cgf_gen *g,
		   char *why, size_t whylen);

/*
 * The engine's own programs (entry_bpf.c): the entry program, which parses
 * the packet into skb->cb and tail-calls the filter in force (shared: the
 * one in its cgroup's storage), and the drop program, which counts a drop
 * and reports it to a monitor.  Both are made once, when an engine loads.
 */
int cgf_gen_entry(bool shared, const struct cgf_gen_env *env, struct cgf_gen *g, char *why,
		  size_t whylen);
int cgf_gen_drop(const struct cgf_gen_env *env, struct cgf_gen *g, char *why, size_t whylen);

/*
 * The filter e as one socket filter program (BPF_PROG_TYPE_SOCKET_FILTER),
 * for 'cgfilter wrap' with privileges: the same parser and filter as the
 * engine's, reading headers with bpf_skb_load_bytes_relative(); it returns
 * 0xffffffff (keep the packet) or 0 (drop), uses no engine map (env only
 * names the named sets) and counts nothing.  Where the packet data starts
 * when it runs: at the transport header on a TCP or UDP socket, at the link
 * header on an AF_PACKET socket over Ethernet (the tests).
 */
enum cgf_sock_ctx { CGF_SOCK_TRANSPORT, CGF_SOCK_ETHERNET };
int cgf_gen_socket_filter(const struct cgf_expr *e, enum cgf_sock_ctx ctx,
			  const struct cgf_gen_env *env, struct cgf_gen *g, char *why,
			  size_t whylen);

/* Give literal set i its map: patch fd into every instruction loading it. */
void cgf_gen_bind(struct cgf_gen *g, size_t i, int fd);

void cgf_gen_free(struct cgf_gen *g);

/* Small literal sets become comparisons: at most this many ranges or
 * prefixes (both families counted together); larger ones a map (one per
 * address family for addresses). */
#define CGF_INLINE_ITEMS 4

#endif /* CGF_EMIT_BPF_H */
