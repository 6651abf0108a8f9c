// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup2: where it is mounted, which cgroups a program is attached to,
 * and the path of a cgroup id.  One walk of the hierarchy serves both.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "engine.h"

/* A path of /proc/self/mountinfo with its \ooo escapes (space, tab,
 * newline, backslash) decoded, in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = 0;
}

/*
 * Where the cgroup2 hierarchy is mounted: of the mounts that are reachable
 * (inside a container an outer mount can be listed first, hidden under a
 * later one), the one of the most of it, the shortest root ('/' in a
 * mount of the whole, '/system.slice/x' in a bind mount of a cgroup, as a
 * container without a cgroup namespace has); of those, the last.  A bind
 * mount of a cgroup beside a mount of the whole would make every walk,
 * attach to '/' and the recorder of executables cover only that cgroup.
 */
int cgf_cgroup2_root(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0, best = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *field[5], *sep = strstr(line, " - "), *save = NULL, *type;
		struct statfs st;
		int i;

		if (!sep)
			continue;
		*sep = 0;
		type = strtok_r(sep + 3, " \n", &save);
		save = NULL;
		for (i = 0; i < 5; i++)
			field[i] = strtok_r(i ? NULL : line, " \n", &save);
		if (!type || strcmp(type, "cgroup2") || !field[4])
			continue;
		unescape(field[3]);
		unescape(field[4]);
		if ((found && strlen(field[3]) > best) || statfs(field[4], &st) ||
		    st.f_type != CGROUP2_SUPER_MAGIC)
			continue;
		snprintf(buf, len, "%s", field[4]);
		best = strlen(field[3]);
		found = 1;
	}
	free(line);
	fclose(f);
	return found ? 0 : -ENOENT;
}

const char *cgf_root_error(int r)
{
	return r == -ENOENT ? "none is reachable (is cgroup2 mounted?)" : strerror(-r);
}

/* A walk: fn(path, dirfd, ctx) returns non-zero to stop it; skipped, the
 * cgroups that could not be read (and their subtrees), err the last why. */
struct walk {
	int (*fn)(const char *path, int dfd, void *ctx);
	void *ctx;
	dev_t dev;
	int skipped, err;
};

/* Walk the directories below path (depth first, without following mounts
 * or links).  A cgroup gone meanwhile is passed over; one that cannot be
 * read (too many open files, a path too long: a delegated subtree can be
 * made so by its user) is counted, not a failure of the walk, which would
 * let any user with a subtree of their own stop every show and unload. */
static int walk(char *path, size_t len, size_t cap, struct walk *w)
{
	struct dirent *de;
	DIR *d;
	int fd, r;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			w->skipped++;
			w->err = errno;
		}
		return 0;
	}
	r = w->fn(path, fd, w->ctx);
	if (r) {
		close(fd);
		return r;
	}
	d = fdopendir(fd);
	if (!d) {
		w->skipped++;
		w->err = errno;
		close(fd);
		return 0;
	}
	while (!r && (de = readdir(d))) {
		struct stat st;
		size_t n = strlen(de->d_name);

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len + 1 + n + 1 > cap) {
			w->skipped++;
			w->err = ENAMETOOLONG;
			continue;
		}
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, n + 1);
		if (!lstat(path, &st) && S_ISDIR(st.st_mode) && st.st_dev == w->dev)
			r = walk(path, len + 1 + n, cap, w);
		path[len] = 0;
	}
	closedir(d);
	return r;
}

static int walk_root(struct walk *w, size_t *rootlen)
{
	char path[PATH_MAX];
	struct stat st;
	int r = cgf_cgroup2_root(path, sizeof(path));

	if (r)
		return r;
	if (stat(path, &st))
		return -errno;
	*rootlen = strlen(path);
	w->dev = st.st_dev;
	return walk(path, *rootlen, sizeof(path), w);
}

struct attach_ctx {
	uint32_t prog_id;
	size_t rootlen;
	int count;
	int (*fn)(const char *path, enum bpf_attach_type dir, void *ctx);
	void *ctx;
};

static int attach_cb(const char *path, int dfd, void *ctx)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	struct attach_ctx *c = ctx;
	int d, r = 0;

	for (d = 0; d < 2 && !r; d++) {
		uint32_t ids[64], cnt = 64, flags = 0, i;

		/* (64 is the kernel's limit per cgroup and direction) */
		if (bpf_prog_query(dfd, dirs[d], 0, &flags, ids, &cnt))
			return -errno;
		for (i = 0; i < cnt && !r; i++) {
			if (ids[i] != c->prog_id)
				continue;
			c->count++;
			if (c->fn)
				r = c->fn(path[c->rootlen] ? path + c->rootlen : "/", dirs[d], c->ctx);
		}
	}
	return r;
}

int cgf_attachments(uint32_t prog_id,
		    int (*fn)(const char *path, enum bpf_attach_type dir, void *ctx), void *ctx)
{
	struct attach_ctx c = { .prog_id = prog_id, .fn = fn, .ctx = ctx };
	struct walk w = { .fn = attach_cb, .ctx = &c };
	int r = walk_root(&w, &c.rootlen);

	if (r >= 0 && w.skipped)
		cgf_note("%d cgroup%s could not be read (%s): what is attached below %s is not known",
			 w.skipped, w.skipped == 1 ? "" : "s", strerror(w.err),
			 w.skipped == 1 ? "it" : "them");
	return r < 0 ? r : c.count;
}

struct find_ctx {
	uint64_t id;
	size_t rootlen;
	char *buf;
	size_t len;
};

static int find_cb(const char *path, int dfd, void *ctx)
{
	struct find_ctx *c = ctx;
	struct stat st;

	if (fstat(dfd, &st) || (uint64_t)st.st_ino != c->id)
		return 0;
	snprintf(c->buf, c->len, "%s", path[c->rootlen] ? path + c->rootlen : "/");
	return 1;
}

const char *cgf_cgroup_path(uint64_t id, char *buf, size_t len)
{
	struct find_ctx c = { .id = id, .buf = buf, .len = len };
	struct walk w = { .fn = find_cb, .ctx = &c };

	if (walk_root(&w, &c.rootlen) != 1)
		snprintf(buf, len, "cgroup %" PRIu64, id);
	return buf;
}

/* A cgroup given as a path: "/" is the root; an absolute path in a
 * cgroup2 tree is taken as it is; anything else is from the root (so
 * /user.slice and user.slice are the slice).  An empty path, or one that is
 * the root only by "." and "/", is refused: an unset variable must not
 * make a unit's filter the whole host's. */
int cgf_cgroup_resolve(const char *cgroup, char *path, size_t len)
{
	char root[PATH_MAX], rel[PATH_MAX];
	struct statfs sf;
	int r;

	if (!cgroup[0] || (strcmp(cgroup, "/") && !cgroup[strspn(cgroup, "/.")])) {
		cgf_err("no cgroup given ('%s'): name one, or '/' for the root of the cgroup2 tree", cgroup);
		return -EINVAL;
	}
	r = cgf_cgroup2_root(root, sizeof(root));
	if (r) {
		cgf_err("cannot find the cgroup2 mount: %s", cgf_root_error(r));
		return r;
	}
	if (!strcmp(cgroup, "/")) {
		snprintf(path, len, "%s", root);
		return 0;
	}
	if (cgroup[0] == '/' && !statfs(cgroup, &sf) && sf.f_type == CGROUP2_SUPER_MAGIC) {
		snprintf(path, len, "%s", cgroup);
		return 0;
	}
	if (snprintf(rel, sizeof(rel), "%s/%s", root, cgroup[0] == '/' ? cgroup + 1 : cgroup) >=
	    (int)sizeof(rel))
		return -ENAMETOOLONG;
	/* an absolute path that exists elsewhere, when the root has none of
	 * that name: said to be no cgroup below */
	snprintf(path, len, "%s", cgroup[0] == '/' && access(rel, F_OK) && !access(cgroup, F_OK) ? cgroup : rel);
	return 0;
}

int cgf_cgroup_open(const char *cgroup, char *path, size_t len)
{
	struct statfs sf;
	int fd, r;

	r = cgf_cgroup_resolve(cgroup, path, len);
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		cgf_err("cannot open cgroup %s: %s", path, strerror(-r));
		return r;
	}
	if (fstatfs(fd, &sf) || sf.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		cgf_err("cannot open cgroup %s: not a cgroup2 directory", path);
		return -ENOTDIR;
	}
	return fd;
}

int cgf_engine_attach(const struct cgf_engine *e, const char *cgroup, unsigned int dirs, bool attach)
{
	static const enum bpf_attach_type types[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	static const char *const names[2] = { "ingress", "egress" };
	char path[PATH_MAX];
	bool there[2] = { false, false };
	int fd, d, r = 0;

	fd = cgf_cgroup_open(cgroup, path, sizeof(path));
	if (fd < 0)
		return fd;
	for (d = 0; d < 2; d++) {
		uint32_t ids[64], cnt = 64, flags = 0, i;

		if (bpf_prog_query(fd, types[d], 0, &flags, ids, &cnt)) {
			r = -errno;
			cgf_err("cannot read the programs of cgroup %s: %s", path, strerror(-r));
			goto out;
		}
		for (i = 0; i < cnt; i++)
			there[d] |= ids[i] == e->entry_id;
	}
	/* all or nothing: refuse before changing anything */
	for (d = 0; d < 2; d++) {
		if (!(dirs & (1u << d)))
			continue;
		if (attach && there[d]) {
			cgf_err("%s is already attached to cgroup %s for %s", e->pin, path, names[d]);
			r = -EEXIST;
			goto out;
		}
		if (!attach && !there[d]) {
			cgf_err("%s is not attached to cgroup %s for %s", e->pin, path, names[d]);
			r = -ENOENT;
			goto out;
		}
	}
	for (d = 0; d < 2; d++) {
		if (!(dirs & (1u << d)))
			continue;
		if (attach ? bpf_prog_attach(e->entry, fd, types[d], BPF_F_ALLOW_MULTI) :
			     bpf_prog_detach2(e->entry, fd, types[d])) {
			r = -errno;
			cgf_err("cannot %s %s %s cgroup %s for %s: %s%s", attach ? "attach" : "detach",
				e->pin, attach ? "to" : "from", path, names[d], strerror(-r),
				attach && r == -EPERM ? " (a program attached above without multi?)" : "");
			/* undo the direction done (ingress), so that nothing
			 * changed; a detach undone attaches ingress again, last
			 * among the cgroup's programs */
			if (d == 1 && (dirs & 1) &&
			    (attach ? bpf_prog_detach2(e->entry, fd, types[0]) :
				      bpf_prog_attach(e->entry, fd, types[0], BPF_F_ALLOW_MULTI)))
				cgf_err("... and cannot undo the %s for ingress: %s; %s is %s cgroup %s for ingress only",
					attach ? "attach" : "detach", strerror(errno), e->pin,
					attach ? "attached to" : "detached from", path);
			goto out;
		}
	}
out:
	close(fd);
	return r;
}
