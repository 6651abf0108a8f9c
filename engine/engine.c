// SPDX-License-Identifier: GPL-2.0-only
/*
 * An engine's life: load, open (and check what PIN_maps/ holds belongs to
 * the program at PIN), repair, unload.  See engine.h and cgf_abi.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "emit_bpf.h"
#include "engine.h"
#include "expr.h"
#include "internal.h"

/* The engine's maps: the one list of them. */
const struct cgf_engine_map cgf_engine_maps[] = {
	{ "slots", BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 0, offsetof(struct cgf_engine, slots), false },
	{ "drops", BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 1, offsetof(struct cgf_engine, drops), false },
	{ "stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct cgf_stats), 1,
	  offsetof(struct cgf_engine, stats), false },
	{ "ctl", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct cgf_ctl), 1, offsetof(struct cgf_engine, ctl),
	  false },
	{ "ratelimit", BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct cgf_ratelimit), 1,
	  offsetof(struct cgf_engine, ratelimit), false },
	{ "events", BPF_MAP_TYPE_RINGBUF, 0, 0, CGF_EVENTS_BYTES, offsetof(struct cgf_engine, events),
	  false },
	{ "scratch", BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct cgf_exe_id), 1,
	  offsetof(struct cgf_engine, scratch), false },
	{ "cgroups", BPF_MAP_TYPE_CGROUP_STORAGE, sizeof(struct bpf_cgroup_storage_key), 4, 0,
	  offsetof(struct cgf_engine, cgroups), true },
};
const size_t cgf_engine_nmaps = sizeof(cgf_engine_maps) / sizeof(cgf_engine_maps[0]);

int *cgf_engine_map_fd(struct cgf_engine *e, size_t i)
{
	return (int *)((char *)e + cgf_engine_maps[i].fd_off);
}

void cgf_engine_init(struct cgf_engine *e)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	e->entry = e->lock = e->exe_test_fd = -1;
	for (i = 0; i < cgf_engine_nmaps; i++)
		*cgf_engine_map_fd(e, i) = -1;
}

void cgf_engine_close(struct cgf_engine *e)
{
	size_t i;

	for (i = 0; i < cgf_engine_nmaps; i++) {
		int *fd = cgf_engine_map_fd(e, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	if (e->entry >= 0)
		close(e->entry);
	if (e->lock >= 0)
		close(e->lock);
	e->entry = e->lock = -1;
}

int cgf_engine_paths(struct cgf_engine *e, const char *pin)
{
	size_t n = strlen(pin);

	while (n > 1 && pin[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(e->pin) - 16) {
		cgf_err("bad pin path '%s'", pin);
		return -EINVAL;
	}
	memcpy(e->pin, pin, n);
	e->pin[n] = 0;
	snprintf(e->dir, sizeof(e->dir), "%s_maps", e->pin);
	return 0;
}

/* ---- the engine's programs --------------------------------------------------------- */

static void gen_env(const struct cgf_engine *e, struct cgf_gen_env *env)
{
	*env = (struct cgf_gen_env){ .stats_fd = e->stats, .slots_fd = e->slots, .drops_fd = e->drops,
				     .ctl_fd = e->ctl,
				     .ratelimit_fd = e->ratelimit, .events_fd = e->events,
				     .cgroups_fd = e->cgroups, .scratch_fd = e->scratch, .learn_fd = -1,
				     .exe_fd = -1 };
}

/* Load a program of the engine's (entry or drop); refusals say why. */
static int load_own(const struct cgf_gen *g, const char *name)
{
	size_t cap = 1u << 20;
	char *log = malloc(cap);
	int fd, r;

	if (!log)
		return -ENOMEM;
	fd = cgf_sys_prog_load(g->a.insn, g->a.n, name, log, (uint32_t)cap);
	if (fd < 0) {
		size_t n = strlen(log);

		r = fd;
		fputs(n > 20000 ? log + n - 20000 : log, stderr);
		cgf_err("the verifier refused the engine's program %s: %s (its log is above)", name,
			strerror(-r));
		free(log);
		return r;
	}
	free(log);
	return fd;
}

/*
 * The entry program (it parses each packet and tail-calls the filter in
 * force) and the drop program (slot 0: counts drops, reports them).
 */
static int programs_load(struct cgf_engine *e)
{
	struct cgf_gen_env env;
	struct cgf_gen g;
	char why[256];
	uint32_t slot = CGF_SLOT_DROP;
	int fd, r;

	gen_env(e, &env);
	/* the entry first: the first program to use the program array is its
	 * owner, and a shared engine's entry has cgroup storage, which the
	 * kernel then requires of no program in a slot */
	r = cgf_gen_entry(e->mode == CGF_MODE_SHARED, &env, &g, why, sizeof(why));
	if (r) {
		cgf_err("cannot make the entry program: %s", why);
		cgf_gen_free(&g);
		return r;
	}
	fd = load_own(&g, e->mode == CGF_MODE_SHARED ? CGF_ENTRY_SHARED : CGF_ENTRY_DEDICATED);
	cgf_gen_free(&g);
	if (fd < 0)
		return fd;
	e->entry = fd;
	/* the maps only the drop program uses, bound to the entry too: its
	 * map ids then name every map of the engine (cgf_engine_open checks) */
	if (bpf_prog_bind_map(fd, e->ctl, NULL) || bpf_prog_bind_map(fd, e->ratelimit, NULL) ||
	    bpf_prog_bind_map(fd, e->events, NULL) || bpf_prog_bind_map(fd, e->stats, NULL) ||
	    bpf_prog_bind_map(fd, e->drops, NULL) || bpf_prog_bind_map(fd, e->scratch, NULL)) {
		r = -errno;
		cgf_err("cannot bind the engine's maps to its entry program: %s", strerror(-r));
		return r;
	}
	r = cgf_gen_drop(&env, &g, why, sizeof(why));
	if (r) {
		cgf_err("cannot make the drop program: %s", why);
		cgf_gen_free(&g);
		return r;
	}
	fd = load_own(&g, CGF_DROP_NAME);
	cgf_gen_free(&g);
	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(e->slots, &slot, &fd, BPF_ANY) ||
	    bpf_map_update_elem(e->drops, &slot, &fd, BPF_ANY)) {
		r = -errno;
		cgf_err("cannot put the drop program in its slot: %s", strerror(-r));
	} else {
		r = 0;
	}
	close(fd);
	return r;
}

static int create_maps(struct cgf_engine *e, const struct cgf_load_opts *o)
{
	struct cgf_ctl ctl = { .events_per_sec = o->events_per_sec };
	uint32_t zero = 0;
	size_t i;

	for (i = 0; i < cgf_engine_nmaps; i++) {
		const struct cgf_engine_map *m = &cgf_engine_maps[i];
		uint32_t entries = m->entries;
		int fd;

		if (m->shared_only && e->mode != CGF_MODE_SHARED)
			continue;
		if (!entries && m->type == BPF_MAP_TYPE_PROG_ARRAY)
			entries = e->mode == CGF_MODE_SHARED ? CGF_SHARED_SLOTS : CGF_SLOT_DEDICATED + 1;
		fd = cgf_sys_map_create(m->type, m->name, m->key_size, m->value_size, entries, 0, -1);
		if (fd < 0) {
			int r = fd;

			cgf_err("cannot create the map %s: %s", m->name, strerror(-r));
			return r;
		}
		*cgf_engine_map_fd(e, i) = fd;
	}
	if (bpf_map_update_elem(e->ctl, &zero, &ctl, BPF_ANY)) {
		int r = -errno;

		cgf_err("cannot set up the map ctl: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* ---- leftovers ------------------------------------------------------------------- */

/*
 * Remove a PIN_maps/ that no engine owns (a load killed between its pins,
 * an unload killed half-way, or one whose PIN is gone or foreign): only its
 * pins, never what is below a subdirectory, saying what went.
 */
int cgf_clear_leftover(const char *dir, const char *why)
{
	char list[1024] = "", path[PATH_MAX + 300];
	struct dirent *de;
	size_t used = 0;
	DIR *d = opendir(dir);
	int r = 0, n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR) {
			r = -ENOTEMPTY;
			continue;
		}
		if (unlink(path)) {
			r = -errno;
			continue;
		}
		n++;
		if (used < sizeof(list) - 80)
			used += snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
					 de->d_name);
	}
	closedir(d);
	if (!r && rmdir(dir))
		r = -errno;
	if (r) {
		cgf_err("cannot remove %s/ (%s): %s", dir, why, strerror(-r));
		return r;
	}
	cgf_note("removed %s/ (%s)%s%s", dir, why, n ? ": " : ", empty", list);
	return 0;
}

/* ---- load -------------------------------------------------------------------------- */

static void unpin_dir(struct cgf_engine *e)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(e->dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_type != DT_DIR) {
			snprintf(path, sizeof(path), "%s/%s", e->dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(e->dir);
}

int cgf_engine_load(const char *pin, const char *text, const struct cgf_load_opts *o)
{
	struct cgf_built b = { .prog = -1 };
	struct cgf_engine e;
	bool made_dir = false;
	int r, lock = -1;
	size_t i;

	cgf_engine_init(&e);
	e.mode = o->shared ? CGF_MODE_SHARED : CGF_MODE_DEDICATED;
	if (o->exe_test)
		e.exe_test_fd = o->exe_test_fd;
	r = cgf_engine_paths(&e, pin);
	if (r)
		return r;
	r = cgf_check_pin_path(e.pin, false);
	if (r)
		return r;
	if (!access(e.pin, F_OK)) {
		cgf_err("cannot pin %s: File exists (use 'cgfilter set' to change its filter, or unload it)",
			e.pin);
		return -EEXIST;
	}
	r = create_maps(&e, o);
	if (r)
		goto out;
	r = programs_load(&e);
	if (r)
		goto out;
	if (text) {
		r = cgf_filter_build(&e, text, CGF_BUILD_DECLS, CGF_RUN_ENFORCE, -1, NULL, &b);
		if (!r)
			r = cgf_filter_seal(&b, text, 0, 1);
		if (r)
			goto out;
		r = cgf_slot_put(&e, CGF_SLOT_DEDICATED, b.prog);
		if (r)
			goto out;
	}
	/* whoever must clean up after us learns what is ours before anything
	 * is pinned (cgfilter run's cleaner) */
	if (o->before_pin) {
		uint32_t id = cgf_prog_id(e.entry);

		if (!id) {
			r = errno ? -errno : -EIO;
			cgf_err("cannot read the id of the entry program: %s", strerror(-r));
			goto out;
		}
		o->before_pin(id, o->ctx);
	}
	/* the maps first, the program last: a PIN is always complete; the
	 * parent directories only now, when there is something to pin */
	r = cgf_check_pin_path(e.pin, true);
	if (r)
		goto out;
	/* from here to the last pin, no other load or unload of PIN: one that
	 * came first is whole (PIN exists), or gone */
	lock = cgf_lock_pin_dir(e.pin);
	if (lock < 0) {
		r = lock;
		goto out;
	}
	if (!access(e.pin, F_OK)) {
		cgf_err("cannot pin %s: File exists (loaded meanwhile by another command)", e.pin);
		r = -EEXIST;
		goto out;
	}
	/* a PIN_maps/ without its PIN belongs to no engine */
	if (!access(e.dir, F_OK)) {
		r = cgf_clear_leftover(e.dir, "left over, without its program");
		if (r)
			goto out;
	}
	if (mkdir(e.dir, 0700)) {
		r = -errno;
		cgf_err("cannot create %s: %s", e.dir, strerror(-r));
		goto out;
	}
	made_dir = true;
	for (i = 0; i < cgf_engine_nmaps; i++) {
		char path[PATH_MAX + 80];
		int fd = *cgf_engine_map_fd(&e, i);

		if (fd < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", e.dir, cgf_engine_maps[i].name);
		if (bpf_obj_pin(fd, path)) {
			r = -errno;
			cgf_err("cannot pin %s: %s", path, strerror(-r));
			goto out;
		}
	}
	r = cgf_built_pin_sets(&e, &b);
	if (r)
		goto out;
	if (bpf_obj_pin(e.entry, e.pin)) {
		r = -errno;
		cgf_err("cannot pin %s: %s", e.pin, strerror(-r));
		goto out;
	}
	made_dir = false;
out:
	if (made_dir)
		unpin_dir(&e);
	if (lock >= 0)
		close(lock);
	cgf_built_free(&b);
	cgf_engine_close(&e);
	return r;
}

/* ---- open ----------------------------------------------------------------------------- */

static int entry_maps(int fd, uint32_t *ids, uint32_t *n)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	info.nr_map_ids = *n;
	info.map_ids = (uint64_t)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*n = info.nr_map_ids;
	return 0;
}

/*
 * What mode the program at fd is the entry of; 0 if it is not a cgfilter
 * engine, with what the object is (a map, a link, another program) in
 * what; or -errno if it cannot be read (which says nothing either way).
 */
static int entry_mode(int fd, char *what, size_t len)
{
	struct bpf_prog_info info = {};
	uint32_t l = sizeof(info);
	char link[64], target[64];
	ssize_t n;

	/* a pin may hold a map or a link: their info would read as a program's */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	if (n > 0 && strcmp(target, "anon_inode:bpf-prog")) {
		snprintf(what, len, "a BPF %s, not a program",
			 !strcmp(target, "anon_inode:bpf-map") ? "map" :
			 !strcmp(target, "anon_inode:bpf_link") ? "link" : "object");
		return 0;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &l))
		return -errno;
	if (info.type == BPF_PROG_TYPE_CGROUP_SKB && !strcmp(info.name, CGF_ENTRY_DEDICATED))
		return CGF_MODE_DEDICATED;
	if (info.type == BPF_PROG_TYPE_CGROUP_SKB && !strcmp(info.name, CGF_ENTRY_SHARED))
		return CGF_MODE_SHARED;
	snprintf(what, len, "a %s program named '%s'",
		 info.type == BPF_PROG_TYPE_CGROUP_SKB ? "cgroup_skb" : "BPF", info.name);
	return 0;
}

int cgf_pin_is_engine(const char *pin)
{
	char what[96];
	int fd = bpf_obj_get(pin), r;

	if (fd < 0)
		return -errno;
	r = entry_mode(fd, what, sizeof(what));
	close(fd);
	return r < 0 ? r : r > 0;
}

int cgf_engine_open(struct cgf_engine *e, const char *pin, bool lock)
{
	uint32_t ids[16], nids = 16, k;
	char what[96];
	size_t i;
	int r;

	cgf_engine_init(e);
	r = cgf_engine_paths(e, pin);
	if (r)
		return r;
	e->entry = bpf_obj_get(e->pin);
	if (e->entry < 0) {
		r = -errno;
		cgf_err("cannot open %s: %s", e->pin, cgf_pin_error(e->pin, -r));
		return r;
	}
	r = entry_mode(e->entry, what, sizeof(what));
	if (r < 0) {
		cgf_err("cannot read the program at %s: %s", e->pin, strerror(-r));
		goto fail;
	}
	e->mode = r;
	if (!e->mode) {
		cgf_err("%s is not a cgfilter engine (%s)", e->pin, what);
		r = -ENOMEDIUM;         /* (list and stats pass over it) */
		goto fail;
	}
	e->entry_id = cgf_prog_id(e->entry);
	if (!e->entry_id) {
		r = -errno;
		cgf_err("cannot read the program at %s: %s", e->pin, strerror(-r));
		goto fail;
	}
	r = entry_maps(e->entry, ids, &nids);
	if (r) {
		cgf_err("cannot read the program at %s: %s", e->pin, strerror(-r));
		goto fail;
	}
	for (i = 0; i < cgf_engine_nmaps; i++) {
		const struct cgf_engine_map *m = &cgf_engine_maps[i];
		char path[PATH_MAX + 80];
		uint32_t id;
		int fd;

		if (m->shared_only && e->mode != CGF_MODE_SHARED)
			continue;
		snprintf(path, sizeof(path), "%s/%s", e->dir, m->name);
		fd = bpf_obj_get(path);
		if (fd < 0) {
			r = -errno;
			/* (the hint only where the maps are gone: unload of a
			 * sound engine in use makes its cgroups drop everything) */
			if (r == -ENOENT)
				cgf_err("cannot open %s: %s (unload %s and load it again)", path,
					strerror(-r), e->pin);
			else
				cgf_err("cannot open %s: %s", path, strerror(-r));
			goto fail;
		}
		*cgf_engine_map_fd(e, i) = fd;
		id = cgf_map_id(fd);
		if (!id) {
			r = -errno;
			cgf_err("cannot read %s: %s", path, strerror(-r));
			goto fail;
		}
		for (k = 0; k < nids && ids[k] != id; k++)
			;
		if (k == nids) {
			cgf_err("%s does not belong to the program at %s: not trusted (unload %s and load it again)",
				path, e->pin, e->pin);
			r = -EINVAL;
			goto fail;
		}
	}
	if (lock) {
		r = cgf_engine_lock(e);
		if (r)
			goto fail;
	}
	return 0;
fail:
	cgf_engine_close(e);
	return r;
}

int cgf_engine_lock(struct cgf_engine *e)
{
	uint32_t id;
	int fd, r;

	if (e->lock >= 0)
		return 0;
	e->lock = cgf_lock_dir(e->dir);
	if (e->lock < 0) {
		r = e->lock;
		if (r == -ENOENT)
			cgf_err("cannot lock %s: %s", e->dir, strerror(-r));
		return r;
	}
	/* still the engine that was opened (not unloaded meanwhile) */
	fd = bpf_obj_get(e->pin);
	if (fd < 0 && errno != ENOENT) {
		r = -errno;
		cgf_err("cannot open %s: %s", e->pin, strerror(-r));
		return r;
	}
	id = fd < 0 ? 0 : cgf_prog_id(fd);
	r = -errno;
	if (fd >= 0)
		close(fd);
	if (fd >= 0 && !id) {
		cgf_err("cannot read the program at %s: %s", e->pin, strerror(-r));
		return r;
	}
	if (id != e->entry_id) {
		cgf_err("%s was unloaded or replaced meanwhile: nothing changed", e->pin);
		return -ESTALE;
	}
	return cgf_engine_repair(e); /* (said) */
}

/* ---- unload -------------------------------------------------------------------------- */

static int detach_cb(const char *path, enum bpf_attach_type dir, void *ctx)
{
	struct cgf_engine *e = ctx;
	char root[PATH_MAX], full[PATH_MAX * 2];
	int fd, r = 0;

	if (cgf_cgroup2_root(root, sizeof(root)))
		return 0;
	snprintf(full, sizeof(full), "%s%s", root, strcmp(path, "/") ? path : "");
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || bpf_prog_detach2(e->entry, fd, dir)) {
		r = -errno;
		cgf_err("cannot detach %s from %s: %s", e->pin, full, strerror(-r));
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * The program arrays of the entry program at fd, opened into fds (at most
 * max); how many.  Opened while they are still pinned, so that a map's
 * user count never goes from 0 to 1 and back (which, by a reading of the
 * kernel, could schedule its emptying twice and keep a reference).
 */
static int open_prog_arrays(int entry, int *fds, int max)
{
	uint32_t ids[16], n = 16, i;
	int k = 0;

	if (entry_maps(entry, ids, &n))
		return 0;
	for (i = 0; i < n && i < 16 && k < max; i++) {
		struct bpf_map_info mi = {};
		uint32_t len = sizeof(mi);
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &mi, &len) && mi.type == BPF_MAP_TYPE_PROG_ARRAY)
			fds[k++] = fd;
		else
			close(fd);
	}
	return k;
}

/*
 * Empty the n program arrays in fds, now, and close them.  Once nothing
 * holds them the kernel empties them anyway, but later, from a work queue;
 * until then the filters in them (and the maps they read, such as the
 * executables' ids) live on.  Emptied here, each filter is freed by the
 * delete itself, so the command that comes next finds it gone.  Called
 * once the pins are gone: a kill before this leaves the kernel to do it.
 */
static void empty_prog_arrays(int *fds, int n)
{
	struct bpf_map_info mi;
	uint32_t len, k;
	int i;

	for (i = 0; i < n; i++) {
		len = sizeof(mi);
		memset(&mi, 0, sizeof(mi));
		if (!bpf_obj_get_info_by_fd(fds[i], &mi, &len))
			for (k = 0; k < mi.max_entries; k++)
				bpf_map_delete_elem(fds[i], &k);
		close(fds[i]);
	}
}

/* Counts the cgroups of the attachments it is called for (a cgroup's two
 * directions come one after the other). */
struct cgroup_count {
	char last[PATH_MAX];
	int n;
};

static int count_cgroup(const char *path, enum bpf_attach_type dir, void *ctx)
{
	struct cgroup_count *c = ctx;

	(void)dir;
	if (!c->n || strcmp(c->last, path)) {
		snprintf(c->last, sizeof(c->last), "%s", path);
		c->n++;
	}
	return 0;
}

/*
 * After unload took the lock: PIN still holds the program it opened, and
 * the lock is on PIN_maps/ as it is now (no lock: there was none to take).
 * Another unload, or an unload then a load, may have run while it waited;
 * without this it would remove the engine loaded meanwhile.
 */
static int still_ours(const struct cgf_engine *e)
{
	uint32_t id;
	int fd = bpf_obj_get(e->pin), r;

	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			cgf_err("cannot unload %s: another command unloaded it meanwhile", e->pin);
		else
			cgf_err("cannot unload %s: %s", e->pin, strerror(-r));
		return r;
	}
	id = cgf_prog_id(fd);
	r = errno;
	close(fd);
	if (!id) {
		cgf_err("cannot unload %s: cannot read the program at it: %s", e->pin,
			strerror(r ? r : EIO));
		return r ? -r : -EIO;
	}
	if (id != e->entry_id || (e->lock >= 0 && !cgf_lock_is_current(e->lock, e->dir))) {
		cgf_err("%s was unloaded and loaded again meanwhile, by other commands: not removed",
			e->pin);
		return -ESTALE;
	}
	return 0;
}

/* unload of a PIN_maps/ without its PIN (a load or unload killed half-way),
 * unless a load made PIN meanwhile */
static int clear_leftover(struct cgf_engine *e)
{
	int lock = cgf_lock_pin_dir(e->pin), r;

	if (lock < 0)
		return lock;
	if (!access(e->pin, F_OK)) {
		cgf_err("cannot unload %s: another command loaded it meanwhile: not removed", e->pin);
		r = -ESTALE;
	} else {
		r = cgf_clear_leftover(e->dir, "left over, without its program");
	}
	close(lock);
	return r;
}

int cgf_engine_unload(const char *pin, bool detach)
{
	struct cgroup_count cg = { .n = 0 };
	struct cgf_engine e;
	int arrays[4], narrays;
	char what[96];
	int r, n, dirlock;

	cgf_engine_init(&e);
	r = cgf_engine_paths(&e, pin);
	if (r)
		return r;
	e.entry = bpf_obj_get(e.pin);
	if (e.entry < 0) {
		r = -errno;
		if (r == -ENOENT && !access(e.dir, F_OK))
			return clear_leftover(&e);
		cgf_err("cannot unload %s: %s", e.pin, cgf_pin_error(e.pin, -r));
		return r;
	}
	r = entry_mode(e.entry, what, sizeof(what));
	if (r < 0) {
		cgf_err("cannot unload %s: cannot read its program: %s", e.pin, strerror(-r));
		cgf_engine_close(&e);
		return r;
	}
	e.mode = r;
	if (!e.mode) {
		cgf_err("%s is not a cgfilter engine (%s): not removed", e.pin, what);
		if (!access(e.dir, F_OK))
			cgf_clear_leftover(e.dir, "not the maps of the program at PIN");
		cgf_engine_close(&e);
		return -EINVAL;
	}
	e.entry_id = cgf_prog_id(e.entry);
	if (!e.entry_id) {
		r = -errno;
		cgf_err("cannot unload %s: cannot read its program: %s", e.pin, strerror(-r));
		cgf_engine_close(&e);
		return r;
	}
	/* (with no PIN_maps/ left, there is nothing to lock) */
	e.lock = cgf_lock_dir(e.dir);
	if (e.lock < 0 && e.lock != -ENOENT) {
		r = e.lock;
		cgf_engine_close(&e);
		return r;
	}
	r = still_ours(&e);
	if (r) {
		cgf_engine_close(&e);
		return r;
	}
	if (detach)
		cgf_attachments(e.entry_id, detach_cb, &e);
	n = cgf_attachments(e.entry_id, count_cgroup, &cg);
	if (detach && n < 0) {
		cgf_err("%s not unloaded: cannot tell where it is attached: %s", e.pin, strerror(-n));
		cgf_engine_close(&e);
		return n;
	}
	if (detach && n > 0) {
		cgf_err("%s not unloaded: it is still attached to %d cgroup%s", e.pin, cg.n,
			cg.n == 1 ? "" : "s");
		cgf_engine_close(&e);
		return -EBUSY;
	}
	dirlock = cgf_lock_pin_dir(e.pin);
	if (dirlock < 0) {
		cgf_engine_close(&e);
		return dirlock;
	}
	/* (again: without a PIN_maps/ to lock, another unload, then a load,
	 * may have run meanwhile) */
	r = e.lock < 0 ? still_ours(&e) : 0;
	if (r) {
		close(dirlock);
		cgf_engine_close(&e);
		return r;
	}
	narrays = open_prog_arrays(e.entry, arrays, 4);
	if (unlink(e.pin)) {
		r = -errno;
		cgf_err("cannot remove %s: %s", e.pin, strerror(-r));
		while (narrays)
			close(arrays[--narrays]);
		close(dirlock);
		cgf_engine_close(&e);
		return r;
	}
	unpin_dir(&e);
	close(dirlock);
	if (!access(e.dir, F_OK))
		cgf_note("%s/ could not be removed whole", e.dir);
	empty_prog_arrays(arrays, narrays);
	if (n < 0)
		cgf_note("%s unpinned; cannot tell where it is attached (%s): any cgroup it is attached to now drops every packet until it goes away or it is detached (a unit that names %s in IP*FilterPath= is detached by systemd at its next daemon-reload, and runs unfiltered: stop it)",
			 e.pin, strerror(-n), e.pin);
	if (n > 0)
		cgf_note("%s unpinned; still attached to %d cgroup%s, which now drop%s every packet until %s away or %s detached (unload --detach; a unit that names %s in IP*FilterPath= is detached by systemd at its next daemon-reload, and runs unfiltered: stop it)",
			 e.pin, cg.n, cg.n == 1 ? "" : "s", cg.n == 1 ? "s" : "",
			 cg.n == 1 ? "it goes" : "they go", cg.n == 1 ? "it is" : "they are", e.pin);
	cgf_engine_close(&e);
	return 0;
}

/* ---- counters, events -------------------------------------------------------------- */

int cgf_engine_stats(const struct cgf_engine *e, uint64_t st[CGF_NSTATS])
{
	int ncpu = libbpf_num_possible_cpus(), c, i;
	struct cgf_stats *v;
	uint32_t zero = 0;
	int r = 0;

	memset(st, 0, CGF_NSTATS * sizeof(*st));
	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(e->stats, &zero, v))
		r = -errno;
	else
		for (c = 0; c < ncpu; c++)
			for (i = 0; i < CGF_NSTATS; i++)
				st[i] += v[c].v[i];
	free(v);
	return r;
}

static uint64_t mono_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
}

/* The lease c is this monitor's: its pid and the time it last wrote (a pid
 * alone is not: another pid namespace may give another monitor the same) */
static bool lease_mine(const struct cgf_ctl *c, const struct cgf_lease *l)
{
	return l->until && c->monitor_until_ns == l->until && c->monitor_pid == l->pid;
}

/* Take or renew: -EBUSY (*other: its pid) while another monitor's lease
 * runs.  Liveness is the lease's time alone, not a pid (which another pid
 * namespace numbers otherwise, and which a zombie or a new process keeps):
 * a monitor killed with SIGKILL holds it until it runs out. */
static int lease_write(const struct cgf_engine *e, struct cgf_lease *l, uint32_t *other)
{
	struct cgf_ctl c = { 0 };
	uint32_t zero = 0;

	*other = 0;
	if (bpf_map_lookup_elem(e->ctl, &zero, &c))
		return -errno;
	if (!lease_mine(&c, l) && c.monitor_until_ns > mono_ns()) {
		*other = c.monitor_pid;
		return -EBUSY;
	}
	c.monitor_until_ns = mono_ns() + CGF_MONITOR_LEASE_NS;
	c.monitor_pid = (uint32_t)getpid();
	if (bpf_map_update_elem(e->ctl, &zero, &c, BPF_ANY))
		return -errno;
	l->until = c.monitor_until_ns;
	l->pid = c.monitor_pid;
	return 0;
}

int cgf_engine_lease_take(const struct cgf_engine *e, struct cgf_lease *l,
			  const volatile sig_atomic_t *stop)
{
	uint32_t other;
	int lock, r;

	/* under the engine's lock, so that of two monitors started at once one
	 * watches; waited for without blocking signals (a set may hold it) */
	lock = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0) {
		r = -errno;
		cgf_err("cannot lock %s: %s", e->dir, strerror(-r));
		return r;
	}
	while (flock(lock, LOCK_EX | LOCK_NB)) {
		r = -errno;
		if (r != -EWOULDBLOCK && r != -EINTR) {
			cgf_err("cannot lock %s: %s", e->dir, strerror(-r));
			close(lock);
			return r;
		}
		if (*stop) {
			close(lock);
			return -EINTR;
		}
		usleep(20000);
	}
	r = lease_write(e, l, &other);
	close(lock);
	if (r == -EBUSY)
		cgf_err("cannot watch %s: a cgfilter monitor (pid %u) watches it already, and two would split the drop events between them (one killed holds it %llu s)",
			e->pin, other, (unsigned long long)(CGF_MONITOR_LEASE_NS / 1000000000ULL));
	else if (r)
		cgf_err("cannot ask %s for drop events: %s", e->pin, strerror(-r));
	return r;
}

int cgf_engine_lease_renew(const struct cgf_engine *e, struct cgf_lease *l, uint32_t *other)
{
	return lease_write(e, l, other);
}

void cgf_engine_lease_end(const struct cgf_engine *e, const struct cgf_lease *l)
{
	struct cgf_ctl c = { 0 };
	uint32_t zero = 0;

	if (!bpf_map_lookup_elem(e->ctl, &zero, &c) && lease_mine(&c, l)) {
		c.monitor_until_ns = 0;
		c.monitor_pid = 0;
		bpf_map_update_elem(e->ctl, &zero, &c, BPF_ANY);
	}
}

/*
 * The keys of the cgroups map, all of them.  The kernel drops a cgroup's
 * entry when the cgroup goes away, at any time; the next key after one that
 * went is "none" (ENOENT), which must not read as the end: the walk starts
 * again.  Missing an entry would let register take a slot in use, or the
 * sweep free a filter in force.
 */
static int cgroup_keys(int fd, struct bpf_cgroup_storage_key **out, size_t *n)
{
	struct bpf_cgroup_storage_key *keys = NULL, next;
	size_t cap = 0, restarts = 0;
	uint32_t slot;
	int more;

again:
	*n = 0;
	for (more = cgf_next_key(fd, NULL, &next); more > 0;
	     more = cgf_next_key(fd, &keys[*n - 1], &next)) {
		if (!cgf_grow((void **)&keys, *n, &cap, sizeof(*keys), 64)) {
			free(keys);
			return -ENOMEM;
		}
		keys[(*n)++] = next;
	}
	if (!more && *n && bpf_map_lookup_elem(fd, &keys[*n - 1], &slot) && errno == ENOENT) {
		/* the last key went meanwhile: the walk may have stopped early */
		if (++restarts < 1000)
			goto again;
		more = -EAGAIN;
	}
	if (more < 0) {
		free(keys);
		return more;
	}
	*out = keys;
	return 0;
}

int cgf_engine_each_cgroup(const struct cgf_engine *e,
			   int (*fn)(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx),
			   void *ctx)
{
	struct bpf_cgroup_storage_key *keys = NULL;
	size_t n = 0, i;
	int r;

	if (e->cgroups < 0)
		return 0;
	r = cgroup_keys(e->cgroups, &keys, &n);
	for (i = 0; !r && i < n; i++) {
		uint32_t slot;

		if (bpf_map_lookup_elem(e->cgroups, &keys[i], &slot)) {
			if (errno != ENOENT)
				r = -errno;
			continue; /* (ENOENT: went away meanwhile) */
		}
		r = fn(keys[i].cgroup_inode_id, (enum bpf_attach_type)keys[i].attach_type, slot, ctx);
	}
	free(keys);
	return r;
}

int cgf_next_key(int fd, const void *cur, void *next)
{
	if (!bpf_map_get_next_key(fd, cur, next))
		return 1;
	return errno == ENOENT ? 0 : -errno;
}
