// SPDX-License-Identifier: GPL-2.0-only
/*
 * load_and_control_filter: a self-contained MTU filter for a cgroup.  The
 * cgroup_skb program is assembled here from eBPF instructions (no compiler at
 * run time) and loaded through libbpf's low-level API; a live status line
 * shows what it dropped and forwarded, and + / - change its MTU.
 *
 *   load_and_control_filter [-m MTU] [-c CGROUP] [-t ingress|egress] PIN
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_insn.h"
#include "cgf_vocab.h"
#include "say.h"

static const char *prog = "load_and_control_filter";

/*
 * The state map: a BPF_MAP_TYPE_ARRAY of SLOT_COUNT entries, key a __u32
 * slot number, value a __u64 in HOST byte order.  The program adds to the
 * two counters atomically and only reads the MTU; this tool only writes the
 * MTU.  It is pinned at PIN followed by MAP_PIN_SUFFIX, e.g.
 * /sys/fs/bpf/web_mtu_map, so that `bpftool map dump pinned
 * /sys/fs/bpf/web_mtu_map` shows key 0 (dropped), 1 (forwarded), 2 (MTU).
 */
enum slot {
	SLOT_DROPPED = 0,   /* packets longer than the MTU, dropped */
	SLOT_FORWARDED = 1, /* packets no longer than the MTU, passed */
	SLOT_MTU = 2,       /* the largest skb->len that passes, in bytes */
	SLOT_COUNT
};
#define MAP_PIN_SUFFIX "_map"
/* how this tool recognises its own program and map in a pin it did not make
 * in this run (at most 15 characters: BPF_OBJ_NAME_LEN) */
#define PROG_NAME "lacf_mtu_filter"
#define MAP_NAME "lacf_mtu_state"

#define MTU_DEFAULT 1500
#define MTU_MIN 68 /* the smallest IPv4 MTU (RFC 791) */
#define MTU_MAX 65535
#define MTU_STEP 50
#define REFRESH_MS 1000

static bool verbose;

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cgf_vsay(prog, fmt, ap);
	va_end(ap);
}

/* what the tool did, on stderr so that stdout carries only status lines */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cgf_vsay(NULL, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-m MTU] [-c CGROUP] [-t ingress|egress] [--once] [-v] PIN\n"
		"       %s --unload [-c CGROUP] [-v] PIN\n"
		"Load a cgroup_skb filter that drops packets longer than MTU bytes (skb->len,\n"
		"counted from the IP header), pin it at PIN and its counters at PIN%s,\n"
		"attach it to CGROUP and show a live status line:\n"
		"  dropped N, forwarded M, MTU X bytes\n"
		"Keys: + raises the MTU by %d, - lowers it by %d (%d..%d), q quits; the\n"
		"filter stays loaded (pinned and attached).  If PIN is a filter made by this\n"
		"tool, it is controlled (and attached to CGROUP) instead of loaded again.\n"
		"Without a terminal, keys are read from standard input until q or end of file\n"
		"and a status line is printed for each key and whenever the counters change.\n\n"
		"  -m, --mtu MTU        set the MTU (default %d for a new filter)\n"
		"  -c, --cgroup CGROUP  attach to this cgroup2 directory (BPF_F_ALLOW_MULTI)\n"
		"  -t, --type TYPE      ingress or egress (default egress), used with -c; alone it\n"
		"                       is accepted, as the reference did, and changes nothing\n"
		"      --once           set up, print one status line and exit\n"
		"      --unload         detach the filter from -c CGROUP and from every cgroup\n"
		"                       it is attached to, then remove PIN and PIN%s\n"
		"      --load-invalid   test only: load a program the verifier must refuse\n"
		"                       (an unchecked map lookup), to show how the refusal and\n"
		"                       the verifier log are reported; nothing is pinned\n"
		"  -v, --verbose        show libbpf's messages and the steps taken\n"
		"  -h, --help           show this help\n\n"
		"Exit status: 0 success, 1 failure, 2 bad usage.\n\n"
		"Examples:\n"
		"  %s -c /sys/fs/cgroup/system.slice/web.service /sys/fs/bpf/web_mtu\n"
		"  %s -t ingress -m 576 -c /sys/fs/cgroup/app /sys/fs/bpf/app_in\n"
		"  printf -- '---q' | %s /sys/fs/bpf/web_mtu   # lower MTU by 150\n"
		"  %s --once /sys/fs/bpf/web_mtu               # print the counters\n"
		"  %s --unload /sys/fs/bpf/web_mtu\n",
		prog, prog, MAP_PIN_SUFFIX, MTU_STEP, MTU_STEP, MTU_MIN, MTU_MAX, MTU_DEFAULT,
		MAP_PIN_SUFFIX, prog, prog, prog, prog, prog);
}

/* ---- the program ------------------------------------------------------- */

#define MAX_INSNS 64
struct insn_buf {
	struct bpf_insn insn[MAX_INSNS];
	int n;
};

/* Append instructions; returns the index of the first one. */
static int emit_n(struct insn_buf *b, const struct bpf_insn *insn, int n)
{
	int at = b->n;

	if (b->n + n > MAX_INSNS) {
		/* a fixed program: only a programming error gets here */
		err("program longer than %d instructions", MAX_INSNS);
		exit(1);
	}
	memcpy(&b->insn[b->n], insn, n * sizeof(*insn));
	b->n += n;
	return at;
}
#define EMIT(b, ...)                                                      \
	emit_n(b, (const struct bpf_insn[]){ __VA_ARGS__ },               \
	       sizeof((const struct bpf_insn[]){ __VA_ARGS__ }) / sizeof(struct bpf_insn))

/* Point the forward jump at index `from` to the next instruction emitted. */
static void jump_here(struct insn_buf *b, int from)
{
	b->insn[from].off = (__s16)(b->n - from - 1);
}

/*
 * r6 = ctx, r7 = skb->len, r8 = verdict, r9 = slot to count in.  In C:
 *
 *	mtu = lookup(map, SLOT_MTU);
 *	verdict = PASS, slot = SLOT_FORWARDED;
 *	if (mtu && skb->len > *mtu)
 *		verdict = DROP, slot = SLOT_DROPPED;
 *	if ((cnt = lookup(map, slot)))
 *		__sync_fetch_and_add(cnt, 1);
 *	return verdict;
 *
 * `broken` leaves out the NULL check on the first lookup, which the verifier
 * must refuse ("invalid mem access 'map_value_or_null'"): --load-invalid.
 */
static void build_prog(struct insn_buf *b, int map_fd, bool broken)
{
	int no_mtu = -1, fits, no_cnt;

	b->n = 0;
	EMIT(b, BPF_MOV64_REG(BPF_REG_6, BPF_REG_1),
	     BPF_LDX_MEM(BPF_W, BPF_REG_7, BPF_REG_6, offsetof(struct __sk_buff, len)),
	     BPF_ST_MEM(BPF_W, BPF_REG_10, -4, SLOT_MTU),
	     BPF_LD_MAP_FD(BPF_REG_1, map_fd),
	     BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
	     BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
	     BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem),
	     BPF_MOV64_IMM(BPF_REG_8, CGF_PASS),
	     BPF_MOV64_IMM(BPF_REG_9, SLOT_FORWARDED));
	if (!broken)
		no_mtu = EMIT(b, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0));
	EMIT(b, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_0, 0));
	fits = EMIT(b, BPF_JMP_REG(BPF_JLE, BPF_REG_7, BPF_REG_1, 0));
	EMIT(b, BPF_MOV64_IMM(BPF_REG_8, CGF_DROP),
	     BPF_MOV64_IMM(BPF_REG_9, SLOT_DROPPED));
	if (no_mtu >= 0)
		jump_here(b, no_mtu);
	jump_here(b, fits);
	EMIT(b, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_9, -4),
	     BPF_LD_MAP_FD(BPF_REG_1, map_fd),
	     BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
	     BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
	     BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem));
	no_cnt = EMIT(b, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0));
	EMIT(b, BPF_MOV64_IMM(BPF_REG_1, 1),
	     BPF_ATOMIC_OP(BPF_DW, BPF_ADD, BPF_REG_0, BPF_REG_1, 0));
	jump_here(b, no_cnt);
	EMIT(b, BPF_MOV64_REG(BPF_REG_0, BPF_REG_8),
	     BPF_EXIT_INSN());
}

/* Load the program; on a refusal print the verifier's log. */
static int load_prog(int map_fd, bool broken)
{
	static char log[64 * 1024];
	LIBBPF_OPTS(bpf_prog_load_opts, opts);
	struct insn_buf b;
	int fd;

	build_prog(&b, map_fd, broken);
	fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, PROG_NAME, "GPL", b.insn, b.n, &opts);
	if (fd >= 0)
		return fd;
	/* again with the log on, only now: a log costs time on every load */
	opts.log_buf = log;
	opts.log_size = sizeof(log);
	opts.log_level = 1;
	log[0] = 0;
	fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, PROG_NAME, "GPL", b.insn, b.n, &opts);
	if (fd >= 0)
		return fd;
	fd = -errno;
	if (log[0])
		fprintf(stderr, "verifier log:\n%s%s", log,
			log[strlen(log) - 1] == '\n' ? "" : "\n");
	err("cannot load the filter program: %s%s", strerror(-fd),
	    fd == -EPERM ? " (are you root?)" : "");
	return fd;
}

/* ---- the state map ------------------------------------------------------- */

struct status {
	__u64 dropped, forwarded, mtu;
};

static int read_status(int map_fd, struct status *s)
{
	__u32 k[SLOT_COUNT] = { SLOT_DROPPED, SLOT_FORWARDED, SLOT_MTU };
	__u64 *v[SLOT_COUNT] = { &s->dropped, &s->forwarded, &s->mtu };
	int i;

	for (i = 0; i < SLOT_COUNT; i++)
		if (bpf_map_lookup_elem(map_fd, &k[i], v[i]))
			return -errno;
	return 0;
}

static int set_mtu(int map_fd, __u64 mtu)
{
	__u32 k = SLOT_MTU;

	if (bpf_map_update_elem(map_fd, &k, &mtu, BPF_ANY)) {
		int e = -errno;

		err("cannot set the MTU: %s", strerror(-e));
		return e;
	}
	return 0;
}

/* ---- pins ------------------------------------------------------------------ */

/* Which kind of BPF object an fd is: "bpf-prog", "bpf-map", ... */
static bool fd_is(int fd, const char *kind)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strncmp(target, "anon_inode:", 11) && !strcmp(target + 11, kind);
}

/* Serialise two runs on pins in one directory: flock on the directory. */
static int lock_pin_dir(const char *pin)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", pin);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;

		err("cannot open %s: %s", dir, strerror(-e));
		return e;
	}
	{
		struct statfs st;

		if (fstatfs(fd, &st) == 0 && st.f_type != BPF_FS_MAGIC) {
			err("cannot pin %s: %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
			    pin, dir);
			close(fd);
			return -EINVAL;
		}
	}
	if (flock(fd, LOCK_EX)) {
		int e = -errno;

		err("cannot lock %s: %s", dir, strerror(-e));
		close(fd);
		return e;
	}
	return fd;
}

/* What is wrong with opening pin (e: -errno of bpf_obj_get): a directory
 * is named as one, not by the kernel's "permission denied" */
static const char *pin_error(const char *pin, int e)
{
	struct stat st;

	if (!stat(pin, &st) && S_ISDIR(st.st_mode))
		return "it is a directory, not a pinned filter";
	return strerror(-e);
}

struct filter {
	int prog_fd, map_fd;
	__u32 prog_id;
	bool created; /* loaded and pinned by this run */
};

/*
 * Open the filter pinned at pin, checking that this tool made it: a
 * cgroup_skb program named PROG_NAME using one array map named MAP_NAME of
 * the right shape.  The map pin is restored if it went missing.
 * -ENOENT: nothing pinned there; other errors are reported here.
 */
static int open_filter(const char *pin, const char *map_pin, struct filter *f)
{
	struct bpf_prog_info pi = {};
	struct bpf_map_info mi = {};
	__u32 len, map_ids[4];
	int fd, mfd, pfd, e;

	fd = bpf_obj_get(pin);
	if (fd < 0) {
		e = -errno;
		if (e != -ENOENT)
			err("cannot open %s: %s", pin, pin_error(pin, e));
		return e;
	}
	len = sizeof(pi);
	pi.nr_map_ids = 4;
	pi.map_ids = (__u64)(unsigned long)map_ids;
	if (!fd_is(fd, "bpf-prog") || bpf_obj_get_info_by_fd(fd, &pi, &len) ||
	    pi.type != BPF_PROG_TYPE_CGROUP_SKB || strcmp(pi.name, PROG_NAME) ||
	    pi.nr_map_ids != 1) {
		err("%s is not a filter made by %s", pin, prog);
		close(fd);
		return -EINVAL;
	}
	mfd = bpf_map_get_fd_by_id(map_ids[0]);
	len = sizeof(mi);
	if (mfd < 0 || bpf_obj_get_info_by_fd(mfd, &mi, &len) || mi.type != BPF_MAP_TYPE_ARRAY ||
	    mi.key_size != 4 || mi.value_size != 8 || mi.max_entries != SLOT_COUNT ||
	    strcmp(mi.name, MAP_NAME)) {
		err("%s is not a filter made by %s (its map is not ours)", pin, prog);
		if (mfd >= 0)
			close(mfd);
		close(fd);
		return -EINVAL;
	}
	pfd = bpf_obj_get(map_pin);
	if (pfd < 0 && errno == ENOENT) {
		if (bpf_obj_pin(mfd, map_pin)) {
			e = -errno;
			err("cannot pin %s: %s", map_pin, strerror(-e));
			goto fail;
		}
		note("pinned the missing map of %s again at %s", pin, map_pin);
	} else {
		struct bpf_map_info pmi = {};

		len = sizeof(pmi);
		if (pfd < 0 || !fd_is(pfd, "bpf-map") || bpf_obj_get_info_by_fd(pfd, &pmi, &len) ||
		    pmi.id != mi.id) {
			err("%s is not the map of %s: remove it or choose another PIN", map_pin, pin);
			e = -EEXIST;
			if (pfd >= 0)
				close(pfd);
			goto fail;
		}
		close(pfd);
	}
	f->prog_fd = fd;
	f->map_fd = mfd;
	f->prog_id = pi.id;
	f->created = false;
	if (verbose)
		note("using program id %u and map id %u pinned at %s", pi.id, mi.id, pin);
	return 0;
fail:
	close(mfd);
	close(fd);
	return e;
}

/*
 * A map pinned at map_pin without its program at PIN (a run killed between
 * its two pins): removed, if it is this tool's, saying so (-ENOENT: none
 * there); another object there is refused, left alone.
 */
static int clear_orphan_map(const char *pin, const char *map_pin)
{
	struct bpf_map_info mi = {};
	__u32 len = sizeof(mi);
	int fd = bpf_obj_get(map_pin), e;

	if (fd < 0) {
		e = -errno;
		if (e != -ENOENT)
			err("cannot open %s: %s", map_pin, pin_error(map_pin, e));
		return e;
	}
	e = bpf_obj_get_info_by_fd(fd, &mi, &len) ? -errno : 0;
	close(fd);
	if (e || mi.type != BPF_MAP_TYPE_ARRAY || strcmp(mi.name, MAP_NAME) ||
	    mi.max_entries != SLOT_COUNT) {
		err("%s is there without %s, and is not the map of a filter made by %s: remove it or choose another PIN",
		    map_pin, pin, prog);
		return -EEXIST;
	}
	if (unlink(map_pin)) {
		e = -errno;
		err("cannot remove %s: %s", map_pin, strerror(-e));
		return e;
	}
	note("removed %s, left without %s by a run killed between its pins", map_pin, pin);
	return 0;
}

/* 0 if the new filter's program and map carry their names (else said) */
static int check_names(const struct filter *f)
{
	struct bpf_prog_info pi = {};
	struct bpf_map_info mi = {};
	__u32 len = sizeof(pi), mlen = sizeof(mi);
	int e;

	if (bpf_obj_get_info_by_fd(f->prog_fd, &pi, &len) || bpf_obj_get_info_by_fd(f->map_fd, &mi, &mlen)) {
		e = -errno;
		err("cannot read the new filter's program and map: %s; nothing was pinned", strerror(-e));
		return e;
	}
	if (strcmp(pi.name, PROG_NAME) || strcmp(mi.name, MAP_NAME)) {
		err("the new filter's program and map were made without their names (libbpf found no support for names in this kernel), by which a later run knows the filter as its own; nothing was pinned");
		return -EPROTO;
	}
	return 0;
}

/* Load a new filter and pin it at pin and map_pin. */
static int create_filter(const char *pin, const char *map_pin, __u64 mtu, bool broken,
			 struct filter *f)
{
	LIBBPF_OPTS(bpf_map_create_opts, mopts);
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(pi);
	int e;

	f->prog_fd = -1;
	e = clear_orphan_map(pin, map_pin);
	if (e && e != -ENOENT)
		return e;
	f->map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, MAP_NAME, sizeof(__u32), sizeof(__u64),
				   SLOT_COUNT, &mopts);
	if (f->map_fd < 0) {
		e = -errno;
		err("cannot create the state map: %s%s", strerror(-e),
		    e == -EPERM ? " (are you root?)" : "");
		return e;
	}
	e = set_mtu(f->map_fd, mtu);
	if (e)
		goto fail;
	f->prog_fd = load_prog(f->map_fd, broken);
	if (f->prog_fd < 0) {
		e = f->prog_fd;
		goto fail;
	}
	/* the names are how a later run knows the filter as its own: libbpf
	 * leaves them out when its probe of the kernel's support for names
	 * fails, and such a filter could then never be changed or unloaded */
	e = check_names(f);
	if (e)
		goto fail;
	if (bpf_obj_pin(f->map_fd, map_pin)) {
		e = -errno;
		err("cannot pin %s: %s", map_pin, strerror(-e));
		goto fail;
	}
	if (bpf_obj_pin(f->prog_fd, pin)) {
		e = -errno;
		err("cannot pin %s: %s", pin, strerror(-e));
		unlink(map_pin);
		goto fail;
	}
	if (!bpf_obj_get_info_by_fd(f->prog_fd, &pi, &len))
		f->prog_id = pi.id;
	f->created = true;
	if (verbose)
		note("loaded program id %u", f->prog_id);
	return 0;
fail:
	if (f->prog_fd >= 0)
		close(f->prog_fd);
	close(f->map_fd);
	return e;
}

/* ---- cgroups --------------------------------------------------------------- */

static const char *type_name(enum bpf_attach_type t)
{
	return t == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress";
}

static int open_cgroup(const char *path)
{
	struct statfs st;
	int fd, e;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		err("cannot open cgroup %s: %s", path, strerror(-e));
		return e;
	}
	if (fstatfs(fd, &st) || st.f_type != CGROUP2_SUPER_MAGIC) {
		err("cannot attach to %s: not a cgroup2 directory", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Whether program prog_id is attached to the cgroup cg on hook type. */
static bool is_attached(int cg, enum bpf_attach_type type, __u32 prog_id)
{
	__u32 ids[256], n = 256, flags = 0, i;

	if (bpf_prog_query(cg, type, 0, &flags, ids, &n))
		return false;
	for (i = 0; i < n; i++)
		if (ids[i] == prog_id)
			return true;
	return false;
}

static int attach(const struct filter *f, const char *cgroup, enum bpf_attach_type type)
{
	int cg, e = 0;

	cg = open_cgroup(cgroup);
	if (cg < 0)
		return cg;
	/* the kernel refuses the same program twice on one hook (EINVAL) */
	if (is_attached(cg, type, f->prog_id)) {
		if (verbose)
			note("already attached to %s (%s)", cgroup, type_name(type));
	} else if (bpf_prog_attach(f->prog_fd, cg, type, BPF_F_ALLOW_MULTI)) {
		e = -errno;
		err("cannot attach to %s (%s): %s%s", cgroup, type_name(type), strerror(-e),
		    e == -EPERM ? " (a program attached without BPF_F_ALLOW_MULTI is in the way?)" : "");
	} else {
		note("attached to %s (%s)", cgroup, type_name(type));
	}
	close(cg);
	return e;
}

/* Detach program prog_id from the cgroup at path, both hooks; count detaches. */
static int detach_from(const char *path, int prog_fd, __u32 prog_id, int *detached)
{
	static const enum bpf_attach_type types[] = { BPF_CGROUP_INET_INGRESS,
						      BPF_CGROUP_INET_EGRESS };
	unsigned int i;
	int cg, e = 0;

	cg = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return 0; /* removed while we walked: nothing attached there now */
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!is_attached(cg, types[i], prog_id))
			continue;
		if (bpf_prog_detach2(prog_fd, cg, types[i])) {
			e = -errno;
			err("cannot detach from %s (%s): %s", path, type_name(types[i]), strerror(-e));
		} else {
			note("detached from %s (%s)", path, type_name(types[i]));
			(*detached)++;
		}
	}
	close(cg);
	return e;
}

/* nftw has no user pointer: the walk's state */
static struct {
	int prog_fd, detached, err;
	__u32 prog_id;
} walk;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_D && detach_from(path, walk.prog_fd, walk.prog_id, &walk.detached))
		walk.err = -EIO;
	return 0;
}

static int cgroup2_root(char *buf, size_t size)
{
	FILE *m = fopen("/proc/self/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	int r = -ENOENT;

	if (!m)
		return -errno;
	while (fscanf(m, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(buf, size, "%s", dir);
			r = 0;
			break;
		}
	}
	fclose(m);
	return r;
}

/* --unload: detach everywhere, then remove both pins. */
static int unload(const char *pin, const char *map_pin, const char *cgroup)
{
	struct filter f;
	char root[PATH_MAX];
	int e, lock;

	lock = lock_pin_dir(pin);
	if (lock < 0)
		return lock;
	e = open_filter(pin, map_pin, &f);
	if (e == -ENOENT) {
		/* nothing at PIN: its map alone, left by a killed run, goes */
		e = clear_orphan_map(pin, map_pin);
		if (e == -ENOENT)
			err("cannot unload %s: %s", pin, strerror(ENOENT));
		else if (!e)
			goto out;
		e = e ? e : -ENOENT;
	}
	if (e)
		goto out;
	walk.prog_fd = f.prog_fd;
	walk.prog_id = f.prog_id;
	walk.detached = 0;
	walk.err = 0;
	if (cgroup) {
		e = open_cgroup(cgroup);
		if (e < 0)
			goto close;
		close(e);
		if (detach_from(cgroup, f.prog_fd, f.prog_id, &walk.detached))
			walk.err = -EIO;
	}
	/* a program unpinned but still attached would filter on, out of reach */
	if (cgroup2_root(root, sizeof(root)) == 0)
		nftw(root, walk_one, 64, FTW_PHYS | FTW_MOUNT);
	e = walk.err;
	if (e) {
		err("cannot unload %s: still attached somewhere, pins kept", pin);
		goto close;
	}
	if (!walk.detached)
		note("%s was not attached to any cgroup", pin);
	if (unlink(pin) || unlink(map_pin)) {
		e = -errno;
		err("cannot remove the pins of %s: %s", pin, strerror(-e));
		goto close;
	}
	note("removed %s and %s", pin, map_pin);
close:
	close(f.prog_fd);
	close(f.map_fd);
out:
	close(lock);
	return e;
}

/* ---- the status loop ------------------------------------------------------- */

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct termios saved_tty;
static bool tty_raw;
static void restore_tty(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = false;
	}
}

/* Keys one at a time, no echo; ^C still raises SIGINT. */
static int raw_tty(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tty))
		return -errno;
	t = saved_tty;
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t))
		return -errno;
	tty_raw = true;
	atexit(restore_tty);
	return 0;
}

/* In place on a terminal, one line each otherwise. */
static bool inplace;
static void print_status(const struct status *s)
{
	if (inplace)
		printf("\r\033[Kdropped %llu, forwarded %llu, MTU %llu bytes",
		       (unsigned long long)s->dropped, (unsigned long long)s->forwarded,
		       (unsigned long long)s->mtu);
	else
		printf("dropped %llu, forwarded %llu, MTU %llu bytes\n",
		       (unsigned long long)s->dropped, (unsigned long long)s->forwarded,
		       (unsigned long long)s->mtu);
	fflush(stdout);
}

static int show(int map_fd, struct status *s)
{
	int e = read_status(map_fd, s);

	if (e)
		err("cannot read the counters: %s", strerror(-e));
	else
		print_status(s);
	return e;
}

/* The MTU by step, within MTU_MIN..MTU_MAX. */
static int step_mtu(int map_fd, int step)
{
	struct status s;
	long long mtu;
	int e;

	e = read_status(map_fd, &s);
	if (e) {
		err("cannot read the MTU: %s", strerror(-e));
		return e;
	}
	mtu = (long long)s.mtu + step;
	if (mtu < MTU_MIN)
		mtu = MTU_MIN;
	if (mtu > MTU_MAX)
		mtu = MTU_MAX;
	return set_mtu(map_fd, (__u64)mtu);
}

static int control(int map_fd, const sigset_t *unblocked)
{
	bool interactive = isatty(STDIN_FILENO);
	struct status last, now;
	int e;

	if (interactive) {
		e = raw_tty();
		if (e) {
			err("cannot set up the terminal: %s", strerror(-e));
			return e;
		}
		note("keys: + raise the MTU by %d, - lower it by %d, q quit (the filter stays loaded)",
		     MTU_STEP, MTU_STEP);
	}
	inplace = interactive && isatty(STDOUT_FILENO);
	e = show(map_fd, &last);
	while (!e && !stop) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		struct timespec ts = { REFRESH_MS / 1000, (REFRESH_MS % 1000) * 1000000L };
		char keys[64];
		ssize_t n, i;
		int r;

		r = ppoll(&p, 1, &ts, unblocked);
		if (r < 0 && errno != EINTR) {
			e = -errno;
			err("cannot wait for keys: %s", strerror(-e));
			break;
		}
		if (r <= 0) {
			/* timeout (or a signal): refresh; off a terminal only on change */
			e = read_status(map_fd, &now);
			if (e) {
				err("cannot read the counters: %s", strerror(-e));
				break;
			}
			if (inplace || now.dropped != last.dropped || now.forwarded != last.forwarded ||
			    now.mtu != last.mtu) {
				print_status(&now);
				last = now;
			}
			continue;
		}
		n = read(STDIN_FILENO, keys, sizeof(keys));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			e = -errno;
			err("cannot read keys: %s", strerror(-e));
			break;
		}
		if (n == 0)
			break; /* end of file: as q */
		for (i = 0; i < n && !stop; i++) {
			if (keys[i] == '+' || keys[i] == '-') {
				e = step_mtu(map_fd, keys[i] == '+' ? MTU_STEP : -MTU_STEP);
				if (!e)
					e = show(map_fd, &last);
				if (e)
					break;
			} else if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 4 /* ^D */) {
				stop = 1;
			}
			/* anything else (newlines from a pipe, stray keys) is ignored */
		}
	}
	if (inplace)
		putchar('\n');
	fflush(stdout);
	restore_tty();
	return e;
}

/* ---- main -------------------------------------------------------------------- */

static int parse_mtu(const char *s, __u64 *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < MTU_MIN || v > MTU_MAX) {
		err("invalid MTU: %s (%d..%d)", s, MTU_MIN, MTU_MAX);
		return -EINVAL;
	}
	*out = (__u64)v;
	return 0;
}

enum { OPT_ONCE = 256, OPT_UNLOAD, OPT_LOAD_INVALID };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mtu", required_argument, NULL, 'm' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "type", required_argument, NULL, 't' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "unload", no_argument, NULL, OPT_UNLOAD },
		{ "load-invalid", no_argument, NULL, OPT_LOAD_INVALID },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	enum bpf_attach_type type = BPF_CGROUP_INET_EGRESS;
	bool once = false, do_unload = false, broken = false, have_mtu = false, have_type = false;
	const char *cgroup = NULL, *pin, *base;
	char map_pin[PATH_MAX];
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, unblocked;
	struct filter f;
	__u64 mtu = MTU_DEFAULT;
	int opt, e, lock;

	opterr = 0; /* our own messages, named after the tool, not argv[0] */
	while ((opt = getopt_long(argc, argv, ":m:c:t:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (parse_mtu(optarg, &mtu))
				return 2;
			have_mtu = true;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 't':
			if (!strcmp(optarg, "ingress"))
				type = BPF_CGROUP_INET_INGRESS;
			else if (!strcmp(optarg, "egress"))
				type = BPF_CGROUP_INET_EGRESS;
			else {
				err("invalid attach type: %s (ingress or egress)", optarg);
				return 2;
			}
			have_type = true;
			break;
		case OPT_ONCE:
			once = true;
			break;
		case OPT_UNLOAD:
			do_unload = true;
			break;
		case OPT_LOAD_INVALID:
			broken = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			err("option %s needs a value", argv[optind - 1]);
			fprintf(stderr, "Try '%s --help' for more information.\n", prog);
			return 2;
		default:
			if (optopt)
				err("unknown option: -%c", optopt);
			else
				err("unknown option: %s", argv[optind - 1]);
			fprintf(stderr, "Try '%s --help' for more information.\n", prog);
			return 2;
		}
	}
	if (argc - optind != 1) {
		err(argc - optind ? "too many arguments" : "missing PIN");
		fprintf(stderr, "Try '%s --help' for more information.\n", prog);
		return 2;
	}
	pin = argv[optind];
	/* the reference's own example: '-m 100 -t ingress PIN', then the pin
	 * named by IPIngressFilterPath=; the program serves either direction */
	if (have_type && !cgroup)
		note("-t %s applies when attaching (-c CGROUP); without -c the pin serves either direction",
		     type == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress");
	if (do_unload && (have_mtu || have_type || once || broken)) {
		err("--unload takes only -c and -v");
		return 2;
	}
	base = strrchr(pin, '/') ? strrchr(pin, '/') + 1 : pin;
	if (!*base || strchr(base, '.')) {
		err("invalid PIN: %s (a name on a BPF filesystem, without '.')", pin);
		return 2;
	}
	if (snprintf(map_pin, sizeof(map_pin), "%s%s", pin, MAP_PIN_SUFFIX) >= (int)sizeof(map_pin)) {
		err("invalid PIN: %s (too long)", pin);
		return 2;
	}
	libbpf_set_print(libbpf_print);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* signals only while waiting for keys: setup runs to its end */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (do_unload)
		return unload(pin, map_pin, cgroup) ? 1 : 0;

	lock = lock_pin_dir(pin);
	if (lock < 0)
		return 1;
	e = broken ? -ENOENT : open_filter(pin, map_pin, &f);
	if (e == -ENOENT)
		e = create_filter(pin, map_pin, mtu, broken, &f);
	else if (!e && have_mtu)
		e = set_mtu(f.map_fd, mtu);
	if (e) {
		close(lock);
		return 1;
	}
	if (cgroup) {
		e = attach(&f, cgroup, type);
		if (e && f.created) {
			/* a new filter that cannot do its job is not left behind */
			unlink(pin);
			unlink(map_pin);
		}
	}
	close(lock);
	if (!e && f.created)
		note("loaded the filter: program at %s, counters at %s", pin, map_pin);
	if (!e) {
		if (once) {
			struct status s;

			e = show(f.map_fd, &s);
		} else {
			e = control(f.map_fd, &unblocked);
			if (!e && isatty(STDIN_FILENO))
				note("the filter stays loaded at %s; remove it with: %s --unload %s",
				     pin, prog, pin);
		}
	}
	close(f.prog_fd);
	close(f.map_fd);
	return e ? 1 : 0;
}
