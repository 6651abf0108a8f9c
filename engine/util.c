// SPDX-License-Identifier: GPL-2.0-only
/*
 * Messages, object ids and pin paths, for the engine library and the
 * commands on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "engine.h"

const char *cgf_prog = "cgfilter";
int cgf_verbose;
int cgf_quiet;

void cgf_err(const char *fmt, ...)
{
	va_list ap;

	if (cgf_quiet)
		return;
	va_start(ap, fmt);
	cgf_vsay(cgf_prog, fmt, ap);
	va_end(ap);
}

void cgf_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cgf_vsay(cgf_prog, fmt, ap);
	va_end(ap);
}

uint32_t cgf_prog_id(int fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

uint32_t cgf_map_id(int fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static int mkdir_p(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0700) && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int cgf_check_pin_path(const char *pin, bool create)
{
	char dir[PATH_MAX], anc[PATH_MAX];
	struct statfs st;
	char *slash, *cut;
	int r;

	if (snprintf(dir, sizeof(dir), "%s", pin) >= (int)sizeof(dir) - 16) {
		cgf_err("cannot pin %s: the path is too long", pin);
		return -ENAMETOOLONG;
	}
	slash = strrchr(dir, '/');
	if (!slash || slash == dir || !slash[1]) {
		cgf_err("cannot pin %s: give a path under a BPF filesystem such as /sys/fs/bpf", pin);
		return -EINVAL;
	}
	if (strchr(slash + 1, '.')) {
		cgf_err("cannot pin %s: a BPF filesystem name may not contain '.'", pin);
		return -EINVAL;
	}
	*slash = 0;
	/* parents are created only inside a BPF filesystem */
	snprintf(anc, sizeof(anc), "%s", dir);
	while (access(anc, F_OK) && (cut = strrchr(anc, '/')) && cut != anc)
		*cut = 0;
	if (statfs(anc, &st) || st.f_type != BPF_FS_MAGIC) {
		cgf_err("cannot pin %s: %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
			pin, anc);
		return -EINVAL;
	}
	if (!create && access(dir, F_OK))
		return 0;
	r = mkdir_p(dir);
	if (r) {
		cgf_err("cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	if (statfs(dir, &st) || st.f_type != BPF_FS_MAGIC) {
		cgf_err("cannot pin %s: %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
			pin, dir);
		return -EINVAL;
	}
	return 0;
}

int cgf_lock_pin_dir(const char *pin)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", pin);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = 0;
	else if (slash)
		slash[1] = 0;
	fd = cgf_lock_dir(dir);
	if (fd == -ENOENT)
		cgf_err("cannot lock %s: %s", dir, strerror(ENOENT));
	return fd;
}

int cgf_lock_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 || flock(fd, LOCK_EX)) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		cgf_err("cannot lock %s: %s", dir, strerror(-r));
		return r;
	}
	return fd;
}

bool cgf_lock_is_current(int fd, const char *dir)
{
	struct stat a, b;

	return !fstat(fd, &a) && !stat(dir, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

const char *cgf_pin_error(const char *path, int err)
{
	struct statfs sf;
	struct stat st;

	if (err == ENOENT)
		return "no such pin: the filter is not loaded";
	if (err == EACCES || err == EPERM) {
		if (!stat(path, &st) && S_ISDIR(st.st_mode))
			return "a directory, not a pin";
		if (!statfs(path, &sf) && sf.f_type != BPF_FS_MAGIC)
			return "not a pin: it is not on a BPF filesystem";
	}
	return strerror(err);
}
