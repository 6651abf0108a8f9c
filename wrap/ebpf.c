// SPDX-License-Identifier: GPL-2.0-only
/*
 * wrap's eBPF filters: the engine's code generator as one socket filter
 * program (cgf_gen_socket_filter()), its literal sets in frozen maps,
 * loaded with the bpf() syscall.  Only with CAP_BPF (or CAP_SYS_ADMIN):
 * kernel.unprivileged_bpf_disabled is set on most systems.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "emit_bpf.h"
#include "sys_bpf.h"
#include "wrap.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

bool wrap_can_ebpf(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	/* the smallest socket filter, to be sure: CAP_SYS_ADMIN in a user
	 * namespace of its own (unshare -r, a rootless container) is not
	 * enough, and classic BPF is the choice there too */
	static const struct bpf_insn ret0[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd;

	if (syscall(SYS_capget, &h, d))
		return false;
	if (!(d[CAP_BPF / 32].effective & (1u << (CAP_BPF % 32))) &&
	    !(d[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32))))
		return false;
	/* (any failure: classic, which evaluates the filter exactly or
	 * refuses it, as eBPF would) */
	fd = cgf_sys_prog_load_type(BPF_PROG_TYPE_SOCKET_FILTER, ret0, 2, "cgf_probe", NULL, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void close_lits(struct cgf_gen *g)
{
	size_t i;

	for (i = 0; i < g->nlits; i++)
		if (g->a.maps[g->lits[i].asm_map].fd >= 0)
			close(g->a.maps[g->lits[i].asm_map].fd);
}

static int make_lits(struct cgf_gen *g, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < g->nlits; i++) {
		const struct cgf_lit *l = &g->lits[i];
		uint32_t zero = 0;
		int fd = l->dyn ? cgf_sys_map_create(l->map_type, l->map_name, l->key_size, l->value_size,
						     l->max_entries, l->map_flags, -1) :
				  cgf_sys_map_create(BPF_MAP_TYPE_ARRAY, "cgf_lit", 4, l->value_size, 1,
						     BPF_F_RDONLY_PROG, -1), r = fd;

		if (fd >= 0 && l->dyn)
			r = 0; /* the filter fills it */
		else if (fd >= 0 && !(r = cgf_sys_map_update(fd, &zero, l->data, BPF_ANY)))
			r = cgf_sys_map_freeze(fd);
		if (r < 0) {
			snprintf(why, whylen, "cannot make the map of %s (%u bytes): %s", l->what,
				 l->value_size, strerror(-r));
			if (fd >= 0)
				close(fd);
			return r;
		}
		cgf_gen_bind(g, i, fd);
	}
	return 0;
}

int wrap_ebpf_load(const struct cgf_expr *e, enum cgf_sock_ctx ctx, FILE *logf, int *prog,
		   char *why, size_t whylen)
{
	struct cgf_gen_env env = CGF_GEN_ENV_NONE;
	size_t cap = 4u << 20;
	struct cgf_gen g;
	char *log = NULL;
	int r, fd;

	r = cgf_gen_socket_filter(e, ctx, &env, &g, why, whylen);
	if (!r)
		r = make_lits(&g, why, whylen);
	if (r) {
		close_lits(&g);
		cgf_gen_free(&g);
		return r;
	}
	fd = cgf_sys_prog_load_type(BPF_PROG_TYPE_SOCKET_FILTER, g.a.insn, g.a.n, "cgf_wrap", NULL, 0);
	if (fd == -EACCES || fd == -EINVAL) { /* again, for the verifier's log */
		log = malloc(cap);
		if (log)
			fd = cgf_sys_prog_load_type(BPF_PROG_TYPE_SOCKET_FILTER, g.a.insn, g.a.n,
						    "cgf_wrap", log, (uint32_t)cap);
	}
	close_lits(&g);
	cgf_gen_free(&g);
	if (fd < 0) {
		snprintf(why, whylen, "the kernel refused the eBPF program: %s%s", strerror(-fd),
			 log && log[0] ? " (the verifier's log follows)" : "");
		if (log && log[0] && logf)
			fputs(log, logf);
		free(log);
		return fd;
	}
	free(log);
	*prog = fd;
	return 0;
}

int wrap_ebpf_print(const struct cgf_expr *e, FILE *f, char *why, size_t whylen)
{
	struct cgf_gen_env env = CGF_GEN_ENV_NONE;
	struct cgf_gen g;
	int r;

	r = cgf_gen_socket_filter(e, CGF_SOCK_TRANSPORT, &env, &g, why, whylen);

	if (!r) {
		fprintf(f, "%u eBPF instructions (a socket filter)\n", g.a.n);
		cgf_asm_print(&g.a, f);
	}
	cgf_gen_free(&g);
	return r;
}
