// SPDX-License-Identifier: GPL-2.0-only
/*
 * Program loads and map creation by the bpf() syscall itself (sys_bpf.h):
 * libbpf's wrappers probe kernel features on first use by loading test
 * programs (two loads, about a millisecond), and 'cgfilter set' has no
 * millisecond to spare; cgfilter-wrap does not link libbpf at all.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys_bpf.h"

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	int r = (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return r < 0 ? -errno : r;
}

int cgf_sys_prog_load(const struct bpf_insn *insns, uint32_t n, const char *name, char *log,
		      uint32_t log_size)
{
	return cgf_sys_prog_load_type(BPF_PROG_TYPE_CGROUP_SKB, insns, n, name, log, log_size);
}

int cgf_sys_prog_load_type(enum bpf_prog_type type, const struct bpf_insn *insns, uint32_t n,
			   const char *name, char *log, uint32_t log_size)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = (uint64_t)(unsigned long)insns;
	a.insn_cnt = n;
	a.license = (uint64_t)(unsigned long)"GPL";
	if (log && log_size) {
		log[0] = 0;
		a.log_buf = (uint64_t)(unsigned long)log;
		a.log_size = log_size;
		/* (a log this small is for the counts only: -vv) */
		a.log_level = log_size < 4096 ? 4 : 1;
	}
	strncpy(a.prog_name, name, sizeof(a.prog_name) - 1);
	return sys_bpf(BPF_PROG_LOAD, &a);
}

int cgf_sys_map_create(enum bpf_map_type type, const char *name, uint32_t key, uint32_t value,
		       uint32_t entries, uint32_t flags, int inner_fd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = entries;
	a.map_flags = flags;
	a.inner_map_fd = inner_fd > 0 ? (uint32_t)inner_fd : 0;
	strncpy(a.map_name, name, sizeof(a.map_name) - 1);
	return sys_bpf(BPF_MAP_CREATE, &a);
}

int cgf_sys_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(unsigned long)key;
	a.value = (uint64_t)(unsigned long)value;
	a.flags = flags;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

int cgf_sys_map_freeze(int fd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	return sys_bpf(BPF_MAP_FREEZE, &a);
}
