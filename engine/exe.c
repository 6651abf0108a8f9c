// SPDX-License-Identifier: GPL-2.0-only
/*
 * Executables: who made a socket (cgf_abi.h).  Once for the host, the first
 * filter that names an executable sets up, under CGF_EXE_DIR:
 *
 *   ids      BPF_MAP_TYPE_SK_STORAGE of struct cgf_exe_id (BPF_F_CLONE:
 *            an accepted socket has its listener's)
 *   record   a cgroup/sock_create program attached to the cgroup2 root
 *            (with others): for every socket made from then on, the
 *            executable of the process making it, read through the task's
 *            mm->exe_file->f_inode; the offsets come from the kernel's own
 *            BTF (/sys/kernel/btf/vmlinux), so no compiler is needed
 *
 * The filters read ids; sockets made before 'record' ran have no entry,
 * and their packets equal no executable.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_asm.h"
#include "internal.h"

#define IDS CGF_EXE_DIR "/ids"
#define RECORD CGF_EXE_DIR "/record"

/* The byte offset of member name in struct sname, looking into anonymous
 * structs and unions; -1 if there is none (or it is a bit field). */
static long member_off(const struct btf *btf, __u32 type_id, const char *name)
{
	const struct btf_type *t = btf__type_by_id(btf, type_id);
	const struct btf_member *m;
	int i;

	while (t && btf_is_mod(t))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_composite(t))
		return -1;
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		const char *mn = btf__name_by_offset(btf, m->name_off);
		long sub;

		if (btf_member_bitfield_size(t, i))
			continue;
		if (mn && !strcmp(mn, name))
			return (long)(btf_member_bit_offset(t, i) / 8);
		if ((!mn || !mn[0]) && (sub = member_off(btf, m->type, name)) >= 0)
			return (long)(btf_member_bit_offset(t, i) / 8) + sub;
	}
	return -1;
}

static long offset_of(const struct btf *btf, const char *sname, const char *member)
{
	__s32 id = btf__find_by_name_kind(btf, sname, BTF_KIND_STRUCT);

	return id < 0 ? -1 : member_off(btf, (__u32)id, member);
}

struct offsets {
	long mm, exe_file, f_inode, i_ino, i_sb, s_dev;
};

static int read_offsets(struct offsets *o)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int r = 0;

	if (!btf) {
		r = -errno;
		cgf_err("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): %s; exe needs a kernel built with CONFIG_DEBUG_INFO_BTF",
			strerror(-r));
		return r;
	}
	o->mm = offset_of(btf, "task_struct", "mm");
	o->exe_file = offset_of(btf, "mm_struct", "exe_file");
	o->f_inode = offset_of(btf, "file", "f_inode");
	o->i_ino = offset_of(btf, "inode", "i_ino");
	o->i_sb = offset_of(btf, "inode", "i_sb");
	o->s_dev = offset_of(btf, "super_block", "s_dev");
	btf__free(btf);
	if (o->mm < 0 || o->exe_file < 0 || o->f_inode < 0 || o->i_ino < 0 || o->i_sb < 0 || o->s_dev < 0) {
		cgf_err("cannot find the executable of a task in this kernel's BTF (task_struct.mm, mm_struct.exe_file, file.f_inode, inode.i_ino, inode.i_sb, super_block.s_dev)");
		return -ENOENT;
	}
	return 0;
}

/* *(fp + to) = *(src + off), size bytes, by bpf_probe_read_kernel; to out
 * if it fails */
static void probe(struct cgf_asm *a, int16_t to, uint8_t src, long off, int size, uint32_t out)
{
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_3,
					   .src_reg = src });
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_3,
					   .imm = (int32_t)off });
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1,
					   .src_reg = BPF_REG_10 });
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1,
					   .imm = to });
	cgf_asm_mov64(a, BPF_REG_2, (uint64_t)size);
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_probe_read_kernel });
	cgf_asm_jmp_imm(a, BPF_JNE, BPF_REG_0, 0, out);
}

/* r = *(u64 *)(fp + off); to out if 0 */
static void load_ptr(struct cgf_asm *a, uint8_t r, int16_t off, uint32_t out)
{
	cgf_asm_emit(a, (struct bpf_insn){ .code = BPF_LDX | BPF_DW | BPF_MEM, .dst_reg = r,
					   .src_reg = BPF_REG_10, .off = off });
	cgf_asm_jmp_imm(a, BPF_JEQ, r, 0, out);
}

/* The cgroup/sock_create program: always lets the socket be made. */
static int record_prog(int ids, char *log, size_t loglen)
{
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE);
	struct offsets o = { 0 };
	struct cgf_asm a;
	uint32_t out, m;
	int fd, r;

	r = read_offsets(&o);
	if (r)
		return r;
	cgf_asm_init(&a);
	out = cgf_asm_label(&a);
	m = cgf_asm_add_map(&a, ids, "ids", NULL);
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_6,
					    .src_reg = BPF_REG_1 });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_ST | BPF_DW | BPF_MEM, .dst_reg = BPF_REG_10,
					    .off = -24, .imm = 0 });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_current_task });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_7,
					    .src_reg = BPF_REG_0 });
	probe(&a, -8, BPF_REG_7, o.mm, 8, out);           /* task->mm (none: a kernel thread) */
	load_ptr(&a, BPF_REG_7, -8, out);
	probe(&a, -8, BPF_REG_7, o.exe_file, 8, out);     /* mm->exe_file */
	load_ptr(&a, BPF_REG_7, -8, out);
	probe(&a, -8, BPF_REG_7, o.f_inode, 8, out);      /* ->f_inode */
	load_ptr(&a, BPF_REG_7, -8, out);
	probe(&a, -16, BPF_REG_7, o.i_ino, 8, out);       /* ->i_ino */
	probe(&a, -8, BPF_REG_7, o.i_sb, 8, out);         /* ->i_sb */
	load_ptr(&a, BPF_REG_7, -8, out);
	probe(&a, -24, BPF_REG_7, o.s_dev, 4, out);       /* ->s_dev */
	cgf_asm_ld_map(&a, BPF_REG_1, m);
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2,
					    .src_reg = BPF_REG_6 });
	cgf_asm_mov64(&a, BPF_REG_3, 0);
	cgf_asm_mov64(&a, BPF_REG_4, BPF_SK_STORAGE_GET_F_CREATE);
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_sk_storage_get });
	cgf_asm_jmp_imm(&a, BPF_JEQ, BPF_REG_0, 0, out);
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_LDX | BPF_DW | BPF_MEM, .dst_reg = BPF_REG_1,
					    .src_reg = BPF_REG_10, .off = -24 });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_STX | BPF_DW | BPF_MEM, .dst_reg = BPF_REG_0,
					    .src_reg = BPF_REG_1, .off = offsetof(struct cgf_exe_id, dev) });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_LDX | BPF_DW | BPF_MEM, .dst_reg = BPF_REG_1,
					    .src_reg = BPF_REG_10, .off = -16 });
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_STX | BPF_DW | BPF_MEM, .dst_reg = BPF_REG_0,
					    .src_reg = BPF_REG_1, .off = offsetof(struct cgf_exe_id, ino) });
	cgf_asm_place(&a, out);
	cgf_asm_mov64(&a, BPF_REG_0, 1);
	cgf_asm_emit(&a, (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT });
	if (cgf_asm_finish(&a)) {
		cgf_err("cannot make the program that records executables: %s", a.why);
		cgf_asm_free(&a);
		return -EINVAL;
	}
	po.log_buf = log;
	po.log_size = (__u32)loglen;
	po.log_level = 1;
	fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, "cgf_exe_record", "GPL", a.insn, a.n, &po);
	r = fd < 0 ? -errno : fd;
	cgf_asm_free(&a);
	return r;
}

/* The socket storage map, with the BTF the kernel wants for one. */
static int ids_map(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_NO_PREALLOC | BPF_F_CLONE);
	struct btf *btf = btf__new_empty();
	int key, u64, val, fd = -1, r = 0;

	if (!btf)
		return -errno;
	key = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	u64 = btf__add_int(btf, "unsigned long long", 8, 0);
	val = btf__add_struct(btf, "cgf_exe_id", sizeof(struct cgf_exe_id));
	if (key < 0 || u64 < 0 || val < 0 || btf__add_field(btf, "dev", u64, 0, 0) ||
	    btf__add_field(btf, "ino", u64, 64, 0) || btf__load_into_kernel(btf)) {
		r = -errno ? -errno : -EINVAL;
		goto out;
	}
	mo.btf_fd = (__u32)btf__fd(btf);
	mo.btf_key_type_id = (__u32)key;
	mo.btf_value_type_id = (__u32)val;
	fd = bpf_map_create(BPF_MAP_TYPE_SK_STORAGE, "cgf_exe_ids", sizeof(int),
			    sizeof(struct cgf_exe_id), 0, &mo);
	r = fd < 0 ? -errno : fd;
out:
	btf__free(btf);
	return r;
}

static int root_fd(char *path, size_t len)
{
	int fd;

	int r = cgf_cgroup2_root(path, len);

	if (r) {
		cgf_err("cannot find the cgroup2 mount: %s", cgf_root_error(r));
		return r;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		cgf_err("cannot open cgroup %s: %s", path, strerror(-r));
		return r;
	}
	return fd;
}

/* Whether prog is attached to cgroup fd for sock_create (1), not (0). */
static int attached(int cg, uint32_t id)
{
	uint32_t ids[64], cnt = 64, flags = 0, i;

	if (bpf_prog_query(cg, BPF_CGROUP_INET_SOCK_CREATE, 0, &flags, ids, &cnt))
		return -errno;
	for (i = 0; i < cnt; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* How many loaded programs other than skip use map id (-errno if the walk
 * fails). */
static int map_users(uint32_t map_id, uint32_t skip)
{
	uint32_t id = 0;
	int n = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info), ids[64], k;
		int fd;

		if (id == skip)
			continue;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;   /* gone meanwhile */
		info.nr_map_ids = 64;
		info.map_ids = (uint64_t)(unsigned long)ids;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len))
			for (k = 0; k < info.nr_map_ids && k < 64; k++)
				n += ids[k] == map_id;
		close(fd);
	}
	return errno == ENOENT ? n : -errno;
}

/*
 * Lock CGF_EXE_DIR (made if create): an fd, -ENOENT if there is none (not
 * create), or -errno (said).  The lock is on the directory as it is after
 * the lock is taken: an exe-ids stop that removed it meanwhile is seen, and
 * the lock taken again on the new one.
 */
static int lock_dir(bool create)
{
	int i, fd, r;

	for (i = 0; i < 10; i++) {
		if (create) {
			r = cgf_check_pin_path(IDS, true);  /* on a BPF filesystem */
			if (r)
				return r;
		}
		fd = cgf_lock_dir(CGF_EXE_DIR);
		if (fd == -ENOENT && create)
			continue;       /* removed meanwhile: made again */
		if (fd < 0)
			return fd;
		if (cgf_lock_is_current(fd, CGF_EXE_DIR))
			return fd;
		close(fd);
		if (!create && access(CGF_EXE_DIR, F_OK))
			return -ENOENT;
	}
	cgf_err("cannot lock %s: it keeps being removed and made again", CGF_EXE_DIR);
	return -EAGAIN;
}

/* Whether program fd uses map id (1), not (0), or -errno. */
static int prog_uses_map(int fd, uint32_t map_id)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info), ids[64], k;

	info.nr_map_ids = 64;
	info.map_ids = (uint64_t)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	for (k = 0; k < info.nr_map_ids && k < 64; k++)
		if (ids[k] == map_id)
			return 1;
	return 0;
}

int cgf_exe_ids(int *lockp)
{
	char root[PATH_MAX], log[65536];
	int lock, ids = -1, prog = -1, cg = -1, r, at;

	/* one at a time: two first filters with exe make one recorder; and
	 * no exe-ids stop until the caller's filter is loaded (and counted) */
	lock = lock_dir(true);
	if (lock < 0)
		return lock;
	cg = root_fd(root, sizeof(root));
	if (cg < 0) {
		r = cg;
		goto out;
	}
	/* the map: kept for good once made (filters hold it: a new one would
	 * leave them reading a map nothing writes) */
	ids = bpf_obj_get(IDS);
	if (ids >= 0) {
		struct bpf_map_info mi = {};
		uint32_t ml = sizeof(mi);

		if (bpf_obj_get_info_by_fd(ids, &mi, &ml) || mi.type != BPF_MAP_TYPE_SK_STORAGE ||
		    mi.value_size != sizeof(struct cgf_exe_id)) {
			cgf_err("%s is not cgfilter's map of executables: remove it", IDS);
			r = -EINVAL;
			goto out;
		}
	} else {
		ids = ids_map();
		if (ids < 0) {
			r = ids;
			cgf_err("cannot make the map of executables: %s", strerror(-r));
			goto out;
		}
		if (bpf_obj_pin(ids, IDS)) {
			r = -errno;
			cgf_err("cannot pin %s: %s", IDS, strerror(-r));
			goto out;
		}
	}
	/* the recorder, writing that map (one writing another, left by a
	 * stop that did not finish, is replaced) */
	prog = bpf_obj_get(RECORD);
	if (prog >= 0) {
		r = prog_uses_map(prog, cgf_map_id(ids));
		if (r < 0) {
			cgf_err("cannot read the program %s: %s", RECORD, strerror(-r));
			goto out;
		}
		if (!r) {
			uint32_t old_id = cgf_prog_id(prog);

			cgf_note("%s writes another map than %s: replaced", RECORD, IDS);
			at = old_id ? attached(cg, old_id) : -(errno ? errno : EIO);
			if (at < 0 || (at && bpf_prog_detach2(prog, cg, BPF_CGROUP_INET_SOCK_CREATE))) {
				r = at < 0 ? at : -errno;
				cgf_err("cannot detach %s from cgroup %s: %s", RECORD, root, strerror(-r));
				goto out;
			}
			if (unlink(RECORD)) {
				r = -errno;
				cgf_err("cannot remove %s: %s", RECORD, strerror(-r));
				goto out;
			}
			close(prog);
			prog = -1;
		}
	}
	if (prog < 0) {
		log[0] = 0;
		prog = record_prog(ids, log, sizeof(log));
		if (prog < 0) {
			r = prog;
			if (log[0])
				fputs(log, stderr);
			cgf_err("cannot load the program that records executables: %s", strerror(-r));
			goto out;
		}
		if (bpf_obj_pin(prog, RECORD)) {
			r = -errno;
			cgf_err("cannot pin %s: %s", RECORD, strerror(-r));
			goto out;
		}
	}
	at = attached(cg, cgf_prog_id(prog));
	if (at < 0) {
		r = at;
		cgf_err("cannot read the programs of cgroup %s: %s", root, strerror(-r));
		goto out;
	}
	if (!at && bpf_prog_attach(prog, cg, BPF_CGROUP_INET_SOCK_CREATE, BPF_F_ALLOW_MULTI)) {
		r = -errno;
		cgf_err("cannot attach the program that records executables to cgroup %s: %s", root,
			strerror(-r));
		goto out;
	}
	r = ids;
	ids = -1;
	*lockp = lock;
	lock = -1;
out:
	if (ids >= 0)
		close(ids);
	if (prog >= 0)
		close(prog);
	if (cg >= 0)
		close(cg);
	if (lock >= 0)
		close(lock);
	return r;
}

int cgf_exe_ids_status(bool stop, bool force)
{
	char root[PATH_MAX];
	int prog, ids, cg, at = 0, users = 0, r = 0;
	int lock = stop ? lock_dir(false) : -1;  /* no filter naming exe built meanwhile */
	uint32_t prog_id;

	if (stop && lock == -ENOENT) {
		/* nothing recorded: nothing to stop (and a filter naming an
		 * executable may be making it right now: left alone) */
		printf("executables are not recorded: nothing to stop\n");
		return 0;
	}
	if (stop && lock < 0)
		return lock;
	prog = bpf_obj_get(RECORD);
	ids = bpf_obj_get(IDS);
	prog_id = prog >= 0 ? cgf_prog_id(prog) : 0;
	cg = root_fd(root, sizeof(root));
	if (cg < 0) {
		r = cg;
		goto out;
	}
	if (prog >= 0) {
		at = attached(cg, prog_id);
		if (at < 0) {
			r = at;
			cgf_err("cannot read the programs of cgroup %s: %s", root, strerror(-r));
			goto out;
		}
	}
	if (ids >= 0) {
		users = map_users(cgf_map_id(ids), prog_id);
		if (users < 0) {
			r = users;
			cgf_err("cannot walk the loaded programs: %s", strerror(-r));
			goto out;
		}
	}
	if (!stop) {
		if (prog < 0)
			printf("executables are not recorded (no filter has named one%s)\n",
			       ids >= 0 ? ", or exe-ids stop" : "");
		else if (at)
			printf("executables are recorded for every socket made: %s attached to cgroup %s\n",
			       RECORD, root);
		else
			printf("executables are NOT recorded: %s is pinned but not attached to cgroup %s (the next filter naming one attaches it)\n",
			       RECORD, root);
		if (ids >= 0)
			printf("%s: read by %d filter program%s\n", IDS, users, users == 1 ? "" : "s");
		if (prog >= 0 && !at)
			r = -ENOENT;
		goto out;
	}
	if (users && !force) {
		cgf_err("%d filter program%s read the executables of sockets: without the recorder, every socket made from now on has none, and a rule such as !(exe == \"PATH\") passes it; unload or set them first, or stop --force",
			users, users == 1 ? "" : "s");
		r = -EBUSY;
		goto out;
	}
	if (at && bpf_prog_detach2(prog, cg, BPF_CGROUP_INET_SOCK_CREATE)) {
		r = -errno;
		cgf_err("cannot detach %s from cgroup %s: %s", RECORD, root, strerror(-r));
		goto out;
	}
	if (prog >= 0 && unlink(RECORD)) {
		r = -errno;
		cgf_err("cannot remove %s: %s", RECORD, strerror(-r));
		goto out;
	}
	/* the map only once no filter reads it: a later recorder writes the
	 * one they hold */
	if (ids >= 0 && users) {
		printf("kept %s: %d filter program%s read it\n", IDS, users, users == 1 ? "" : "s");
	} else if ((ids >= 0 && unlink(IDS)) || (lock >= 0 && rmdir(CGF_EXE_DIR))) {
		r = -errno;
		cgf_err("cannot remove %s: %s", ids >= 0 && !access(IDS, F_OK) ? IDS : CGF_EXE_DIR,
			strerror(-r));
	}
out:
	if (lock >= 0)
		close(lock);
	if (prog >= 0)
		close(prog);
	if (ids >= 0)
		close(ids);
	if (cg >= 0)
		close(cg);
	return r;
}

int cgf_exe_recording(void)
{
	char root[PATH_MAX];
	int prog = bpf_obj_get(RECORD), cg, at = 0;

	if (prog < 0)
		return 0;
	cgf_quiet++;
	cg = root_fd(root, sizeof(root));
	cgf_quiet--;
	if (cg >= 0) {
		at = attached(cg, cgf_prog_id(prog)) > 0;
		close(cg);
	}
	close(prog);
	return at;
}
