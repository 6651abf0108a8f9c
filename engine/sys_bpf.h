/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The bpf() syscall itself (sys.c), without libbpf: for the engine, whose
 * 'set' has no millisecond to spare for libbpf's feature probes, and for
 * cgfilter-wrap, which does not link libbpf.  -errno on failure.
 */
#ifndef CGF_SYS_BPF_H
#define CGF_SYS_BPF_H

#include <stdint.h>
#include <linux/bpf.h>

/* log: the verifier's log (level 1) into log[log_size], or none. */
int cgf_sys_prog_load_type(enum bpf_prog_type type, const struct bpf_insn *insns, uint32_t n,
			   const char *name, char *log, uint32_t log_size);
/* a cgroup_skb program */
int cgf_sys_prog_load(const struct bpf_insn *insns, uint32_t n, const char *name, char *log,
		      uint32_t log_size);
int cgf_sys_map_create(enum bpf_map_type type, const char *name, uint32_t key, uint32_t value,
		       uint32_t entries, uint32_t flags, int inner_fd);
int cgf_sys_map_update(int fd, const void *key, const void *value, uint64_t flags);
int cgf_sys_map_freeze(int fd);

#endif /* CGF_SYS_BPF_H */
