// SPDX-License-Identifier: GPL-2.0-only
/*
 * Filters: build a program from a filter's text, put it in force with one
 * update of a slot, and read back what runs.
 *
 * A filter program carries everything it is: its code and literal sets
 * (maps its instructions load), its text, generation and the named sets it
 * uses (the "cgf_info" map bound to it).  'show' reads the program in force,
 * so what it prints is what runs.  Nothing a command pins comes before the
 * switch, so a command killed before it changes nothing, and the kernel
 * frees what it had made when its descriptors close.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "emit_bpf.h"
#include "internal.h"

/* ---- reading a filter back -------------------------------------------------------- */

/* The info map of the program at prog_fd, or -ENOENT. */
static int info_map(int prog_fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info), n, i, *ids;
	int r = -ENOENT;

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	n = info.nr_map_ids;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = n;
	info.map_ids = (uint64_t)(unsigned long)ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len)) {
		free(ids);
		return -errno;
	}
	for (i = 0; i < info.nr_map_ids && i < n && r == -ENOENT; i++) {
		struct bpf_map_info mi = {};
		uint32_t ml = sizeof(mi);
		int fd = bpf_map_get_fd_by_id(ids[i]);

		/* (the program holds its maps: an id that cannot be opened or
		 * read is an error, such as too many open files, to say as it is) */
		if (fd < 0) {
			r = -errno;
			break;
		}
		if (bpf_obj_get_info_by_fd(fd, &mi, &ml)) {
			r = -errno;
			close(fd);
			break;
		}
		if (mi.type == BPF_MAP_TYPE_ARRAY && !strcmp(mi.name, CGF_INFO_NAME) &&
		    mi.value_size == CGF_INFO_CHUNK) {
			r = fd;
			continue;
		}
		close(fd);
	}
	free(ids);
	return r;
}

int cgf_filter_read(int prog_fd, struct cgf_filter_view *v)
{
	struct bpf_map_info mi = {};
	uint32_t ml = sizeof(mi), k;
	size_t need;
	char *buf = NULL;
	int fd, r = 0;

	memset(v, 0, sizeof(*v));
	v->prog_id = cgf_prog_id(prog_fd);
	if (!v->prog_id)
		return -errno;
	fd = info_map(prog_fd);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &mi, &ml)) {
		r = -errno;
		goto out;
	}
	buf = malloc((size_t)mi.max_entries * CGF_INFO_CHUNK + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (k = 0; k < mi.max_entries; k++)
		if (bpf_map_lookup_elem(fd, &k, buf + (size_t)k * CGF_INFO_CHUNK)) {
			r = -errno;
			goto out;
		}
	memcpy(&v->info, buf, sizeof(v->info));
	need = sizeof(v->info) + (size_t)v->info.nsets * sizeof(*v->sets) + v->info.text_len;
	if (v->info.magic != CGF_INFO_MAGIC || need > (size_t)mi.max_entries * CGF_INFO_CHUNK) {
		r = -EINVAL;
		goto out;
	}
	v->sets = calloc(v->info.nsets ? v->info.nsets : 1, sizeof(*v->sets));
	v->text = malloc(v->info.text_len + 1);
	if (!v->sets || !v->text) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(v->sets, buf + sizeof(v->info), (size_t)v->info.nsets * sizeof(*v->sets));
	memcpy(v->text, buf + sizeof(v->info) + (size_t)v->info.nsets * sizeof(*v->sets),
	       v->info.text_len);
	v->text[v->info.text_len] = 0;
	if (v->info.flags & CGF_INFO_NAMES) {
		size_t at = need;
		uint32_t nlen;

		if (at + 4 > (size_t)mi.max_entries * CGF_INFO_CHUNK) {
			r = -EINVAL;
			goto out;
		}
		memcpy(&nlen, buf + at, 4);
		if (at + 4 + nlen > (size_t)mi.max_entries * CGF_INFO_CHUNK ||
		    !(v->names = malloc(nlen + 1))) {
			r = at + 4 + nlen > (size_t)mi.max_entries * CGF_INFO_CHUNK ? -EINVAL : -ENOMEM;
			goto out;
		}
		memcpy(v->names, buf + at + 4, nlen);
		v->names[nlen] = 0;
		need = at + 4 + nlen;
	}
	if (v->info.flags & CGF_INFO_SNAPS) {
		uint32_t cnt;

		if (need + 4 > (size_t)mi.max_entries * CGF_INFO_CHUNK) {
			r = -EINVAL;
			goto out;
		}
		memcpy(&cnt, buf + need, 4);
		if (cnt != v->info.nsets || need + 4 + 4 * (size_t)cnt > (size_t)mi.max_entries * CGF_INFO_CHUNK) {
			r = -EINVAL;
			goto out;
		}
		v->snaps = calloc(cnt ? cnt : 1, sizeof(*v->snaps));
		if (!v->snaps) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(v->snaps, buf + need + 4, 4 * (size_t)cnt);
	}
out:
	free(buf);
	close(fd);
	if (r)
		cgf_filter_view_free(v);
	return r;
}

void cgf_filter_view_free(struct cgf_filter_view *v)
{
	free(v->sets);
	free(v->snaps);
	free(v->text);
	free(v->names);
	memset(v, 0, sizeof(*v));
}

int cgf_engine_filter(const struct cgf_engine *e, uint32_t slot, struct cgf_filter_view *v)
{
	uint32_t id;
	int fd, r, i;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < 100; i++) {
		if (bpf_map_lookup_elem(e->slots, &slot, &id))
			return errno == ENOENT ? 0 : -errno;  /* an empty slot: no filter */
		fd = bpf_prog_get_fd_by_id(id);
		if (fd >= 0) {
			r = cgf_filter_read(fd, v);
			close(fd);
			return r;
		}
		if (errno != ENOENT)
			return -errno;
		/* replaced (and freed) meanwhile: the slot again */
	}
	return -EAGAIN;
}

/* ---- building one ----------------------------------------------------------------- */

struct build_ctx {
	struct cgf_engine *e;
	struct cgf_built *b;
	struct cgf_names *names;
	bool keep_sets;
};

/* For the parser: the addresses of a host name.  A literal set's are the
 * filter's (c->names); a declared set's become the set's own (its trie
 * keeps them), or are the engine's set as it is (keep_sets). */
static int resolve_name(const char *name, const struct cgf_set *s, struct cgf_cidr **addrs,
			size_t *n, char *why, size_t whylen, void *ctx)
{
	struct build_ctx *c = ctx;

	if (s->name[0] && c->keep_sets) {
		*addrs = NULL;
		*n = 0;
		return 0;
	}
	if (s->name[0])
		return cgf_resolve_host(name, addrs, n, why, whylen);
	return cgf_names_get(c->names, name, addrs, n, why, whylen);
}

/* For the parser: the type of a named set the engine holds. */
static int lookup_type(const char *name, enum cgf_type *type, void *ctx)
{
	struct build_ctx *c = ctx;
	int outer;

	if (cgf_set_open(c->e, name, &outer, type))
		return -1;
	close(outer);
	return 0;
}

/* For the generator: the addresses of a named address set, now. */
static const struct cgf_set *named_addrs(const char *name, void *ctx)
{
	struct cgf_built *b = ctx;
	size_t i;

	for (i = 0; i < b->nsets; i++)
		if (!strcmp(b->sets[i].name, name) && b->sets[i].addrs)
			return b->sets[i].addrs;
	return NULL;
}

/* For the generator: the fd of a named set the filter uses. */
static int named_fd(const char *name, enum cgf_type type, void *ctx)
{
	struct cgf_built *b = ctx;
	size_t i;

	for (i = 0; i < b->nsets; i++)
		if (!strcmp(b->sets[i].name, name) && b->sets[i].type == type)
			return b->sets[i].outer;
	return -1;
}

static int add_set(struct cgf_built *b, const struct cgf_built_set *s)
{
	struct cgf_built_set *p = realloc(b->sets, (b->nsets + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	b->sets = p;
	b->sets[b->nsets++] = *s;
	return 0;
}

/* 0 if no named set of the engine has name, which a dynamic set declares
 * (one name, one set); else -EEXIST, or -errno, said. */
static int dynamic_name_free(struct cgf_engine *e, const char *name)
{
	enum cgf_type t;
	int fd, r = cgf_set_open(e, name, &fd, &t);

	if (!r) {
		close(fd);
		cgf_err("cannot make dynamic set @%s: the engine has a named set @%s (set-add): "
			"give the dynamic set another name", name, name);
		return -EEXIST;
	}
	if (r != -ENOENT) {
		cgf_err("cannot make dynamic set @%s: cannot tell whether the engine has a named set of that name: %s",
			name, strerror(-r));
		return r;
	}
	return 0;
}

static int add_dynamic(struct cgf_built *b, const char *name)
{
	char **d = realloc(b->dynamic, (b->ndynamic + 1) * sizeof(*d));

	if (!d)
		return -ENOMEM;
	b->dynamic = d;
	d[b->ndynamic] = strdup(name);
	if (!d[b->ndynamic])
		return -ENOMEM;
	b->ndynamic++;
	return 0;
}

/* The named sets of x: declared ones new, the others the engine's. */
static int open_sets(struct cgf_engine *e, const struct cgf_expr *x, struct cgf_built *b, bool keep)
{
	const struct cgf_set *s;
	int r;

	for (s = x->sets; s; s = s->next) {
		struct cgf_built_set bs = { .type = s->type, .fresh = s->declared && !keep };
		enum cgf_type t;

		if (s->name[0] && s->timeout) { /* (checked again under the lock) */
			r = dynamic_name_free(e, s->name);
			if (!r)
				r = add_dynamic(b, s->name);
			if (r)
				return r;
		}
		if (!s->name[0] || s->timeout) /* (a dynamic set is the filter's own map) */
			continue;
		snprintf(bs.name, sizeof(bs.name), "%s", s->name);
		if (named_fd(s->name, s->type, b) >= 0)
			continue;
		r = bs.fresh ? cgf_set_new(s, &bs.outer) : cgf_set_open(e, s->name, &bs.outer, &t);
		if (!r && !bs.fresh && t != s->type) {
			close(bs.outer);
			r = -EINVAL;
		}
		if (r) {
			cgf_err("cannot %s set @%s: %s", bs.fresh ? "make" : "open", s->name,
				r == -EINVAL ? "its type changed" : strerror(-r));
			return r;
		}
		bs.snap = -1;
		if (s->type == CGF_T_ADDR) {
			bs.addrs = calloc(1, sizeof(*bs.addrs));
			r = bs.addrs ? cgf_set_addrs(bs.outer, bs.addrs, &bs.snap) : -ENOMEM;
			if (r)
				cgf_err("cannot read set @%s: %s", s->name, strerror(-r));
		}
		if (!r)
			r = add_set(b, &bs);
		if (r) {
			close(bs.outer);
			if (bs.snap >= 0)
				close(bs.snap);
			if (bs.addrs)
				free(bs.addrs->cidrs);
			free(bs.addrs);
			return r;
		}
	}
	return 0;
}

/* The literal sets' maps: an array of one frozen value each. */
static int make_lits(struct cgf_gen *g)
{
	size_t i;

	for (i = 0; i < g->nlits; i++) {
		const struct cgf_lit *l = &g->lits[i];
		uint32_t zero = 0;
		int fd;

		if (l->dyn) { /* a dynamic set: the filter fills it */
			fd = cgf_sys_map_create(l->map_type, l->map_name, l->key_size, l->value_size,
						l->max_entries, l->map_flags, -1);
			if (fd < 0) {
				cgf_err("cannot make the map of %s: %s", l->what, strerror(-fd));
				return fd;
			}
			cgf_gen_bind(g, i, fd);
			continue;
		}
		fd = cgf_sys_map_create(BPF_MAP_TYPE_ARRAY, "cgf_lit", 4, l->value_size, 1,
					BPF_F_RDONLY_PROG, -1);
		if (fd < 0 || bpf_map_update_elem(fd, &zero, l->data, BPF_ANY) || bpf_map_freeze(fd)) {
			int r = fd < 0 ? fd : -errno;

			cgf_err("cannot make the map of %s (%u bytes): %s", l->what, l->value_size,
				strerror(-r));
			if (fd >= 0)
				close(fd);
			return r;
		}
		cgf_gen_bind(g, i, fd);
	}
	return 0;
}

static void close_lits(struct cgf_gen *g)
{
	size_t i;

	for (i = 0; i < g->nlits; i++)
		if (g->a.maps[g->lits[i].asm_map].fd >= 0)
			close(g->a.maps[g->lits[i].asm_map].fd);
}

/* Load the program; on refusal say why: too large, or the verifier's log. */
static int load_prog(const struct cgf_gen *g)
{
	size_t cap = 16u << 20;
	char *log;
	int fd, r;

	if (cgf_verbose > 1) { /* -vv: the verifier's counts */
		char stats[1024];

		fd = cgf_sys_prog_load(g->a.insn, g->a.n, CGF_FILTER_NAME, stats, sizeof(stats));
		fprintf(stderr, "cgfilter: %u instructions; the verifier: %s", g->a.n, stats);
		if (fd >= 0)
			return fd;
	}
	fd = cgf_sys_prog_load(g->a.insn, g->a.n, CGF_FILTER_NAME, NULL, 0);
	if (fd >= 0)
		return fd;
	r = fd;
	if (r == -ENOMEM || r == -EPERM) {
		cgf_err("cannot load the filter: %s", strerror(-r));
		return r;
	}
	/* again with the verifier's log, to say why */
	log = malloc(cap);
	if (log) {
		fd = cgf_sys_prog_load(g->a.insn, g->a.n, CGF_FILTER_NAME, log, (uint32_t)cap);
		if (fd >= 0) {
			free(log);
			return fd;
		}
		r = fd;
		if (strstr(log, "BPF program is too large") || strstr(log, "too complex") || r == -E2BIG) {
			size_t n = strlen(log);

			/* -v: the end of the verifier's log, its counts */
			if (cgf_verbose)
				fputs(n > 3000 ? log + n - 3000 : log, stderr);
			cgf_err("filter too large for the verifier: %s",
				strstr(log, "too complex") ? "more than 8192 tests waiting on one path" :
							     "more than 1000000 instructions to check");
		} else {
			size_t n = strlen(log);

			fputs(n > 20000 ? log + n - 20000 : log, stderr);
			cgf_err("the verifier refused the generated filter: %s (its log is above; this is a bug of cgfilter, please report it)",
				strerror(-r));
		}
		free(log);
	}
	return r;
}

/* The info map: struct cgf_info, the named sets, the text; frozen. */
static int make_info(const struct cgf_built *b, const char *text, uint64_t owner)
{
	struct cgf_info info = { .magic = CGF_INFO_MAGIC, .gen = b->gen, .owner = owner,
				 .mode = (uint32_t)b->mode, .flags = b->learning ? CGF_INFO_LEARNING : 0 };
	size_t tlen = strlen(text), nlen = b->names ? strlen(b->names) : 0, total, n, i;
	struct timespec ts;
	char *buf;
	int fd = -1, r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	info.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	info.text_len = (uint32_t)tlen;
	info.nsets = (uint32_t)b->nsets;
	if (b->names)
		info.flags |= CGF_INFO_NAMES;
	info.flags |= CGF_INFO_SNAPS;
	total = sizeof(info) + b->nsets * sizeof(struct cgf_info_set) + tlen + (b->names ? 4 + nlen : 0) +
		4 + 4 * b->nsets;
	n = (total + CGF_INFO_CHUNK - 1) / CGF_INFO_CHUNK;
	buf = calloc(n, CGF_INFO_CHUNK);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &info, sizeof(info));
	for (i = 0; i < b->nsets; i++) {
		struct cgf_info_set s = { .map_id = cgf_map_id(b->sets[i].outer),
					  .type = b->sets[i].type == CGF_T_ADDR };

		if (!s.map_id) {
			/* a description that names no set would be a lie */
			r = errno ? -errno : -EINVAL;
			goto out;
		}
		snprintf(s.name, sizeof(s.name), "%s", b->sets[i].name);
		memcpy(buf + sizeof(info) + i * sizeof(s), &s, sizeof(s));
	}
	memcpy(buf + sizeof(info) + b->nsets * sizeof(struct cgf_info_set), text, tlen);
	if (b->names) {
		uint32_t l32 = (uint32_t)nlen;
		char *at = buf + sizeof(info) + b->nsets * sizeof(struct cgf_info_set) + tlen;

		memcpy(at, &l32, 4);
		memcpy(at + 4, b->names, nlen);
	}
	{
		char *at = buf + sizeof(info) + b->nsets * sizeof(struct cgf_info_set) + tlen +
			   (b->names ? 4 + nlen : 0);
		uint32_t l32 = (uint32_t)b->nsets;

		memcpy(at, &l32, 4);
		for (i = 0; i < b->nsets && !r; i++) {
			uint32_t id = b->sets[i].snap >= 0 ? cgf_map_id(b->sets[i].snap) : 0;

			if (b->sets[i].snap >= 0 && !id)
				r = errno ? -errno : -EINVAL;
			memcpy(at + 4 + 4 * i, &id, 4);
		}
		if (r)
			goto out;
	}
	fd = cgf_sys_map_create(BPF_MAP_TYPE_ARRAY, CGF_INFO_NAME, 4, CGF_INFO_CHUNK, (uint32_t)n,
				BPF_F_RDONLY_PROG, -1);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	for (i = 0; i < n && !r; i++) {
		uint32_t k = (uint32_t)i;

		if (bpf_map_update_elem(fd, &k, buf + i * CGF_INFO_CHUNK, BPF_ANY))
			r = -errno;
	}
	if (!r && bpf_map_freeze(fd))
		r = -errno;
out:
	free(buf);
	if (r) {
		if (fd >= 0)
			close(fd);
		cgf_err("cannot store the filter's text: %s", strerror(-r));
		return r;
	}
	return fd;
}

static int has_exe(struct cgf_node *n, void *ctx)
{
	(void)ctx;
	return n->kind == CGF_N_EXE;
}

/* Whether the filter names an executable (its sets, declared or not, too). */
static bool uses_exe(const struct cgf_expr *x)
{
	return cgf_expr_postorder(x->root, has_exe, NULL) == 1;
}

int cgf_filter_parse(const char *text, const struct cgf_parse_opts *po, struct cgf_expr **x)
{
	struct cgf_error pe;
	char msg[400];
	int r = cgf_expr_parse(text, po, x, &pe);

	if (r == -EINVAL) {
		cgf_error_format(&pe, msg, sizeof(msg));
		cgf_err("bad filter: %s", msg);
		cgf_error_show_place(stderr, text, &pe);
	} else if (r) {
		cgf_err("cannot parse the filter: %s", strerror(-r));
	}
	return r;
}

/* (a stored text names files that may be gone: none is opened) */
static int resolve_none(const char *path, struct cgf_exe *out, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s", path);
	return 0;
}

int cgf_filter_parse_stored(const char *text, struct cgf_expr **x)
{
	struct cgf_names none = { 0 };
	struct cgf_parse_opts po = { .dialect = CGF_DIALECT_FULL, .allow_decls = 1, .any_set = 1,
				     .resolve_exe = resolve_none, .resolve_name = cgf_names_stored,
				     .resolve_ctx = &none };
	struct cgf_error pe;
	char msg[400];
	int r = cgf_expr_parse(text, &po, x, &pe);

	if (r == -EINVAL) {
		cgf_error_format(&pe, msg, sizeof(msg));
		cgf_err("cannot read the filter in force: its text does not parse: %s", msg);
	} else if (r) {
		cgf_err("cannot read the filter in force: %s", strerror(-r));
	}
	return r;
}

struct dyn_ctx {
	const struct cgf_engine *e;
	const char *name;
	uint32_t seen[64];
	unsigned int nseen;
	int found;
};

/* Whether the filter in slot declares dynamic set @name: 1, 0, -errno (said) */
static int slot_has_dynamic(const struct cgf_engine *e, uint32_t slot, const char *name)
{
	struct cgf_filter_view v;
	struct cgf_expr *x = NULL;
	const struct cgf_set *s;
	int r = cgf_engine_filter(e, slot, &v);

	if (r) {
		cgf_err("cannot read the filter in slot %u of %s: %s", slot, e->pin, strerror(-r));
		return r;
	}
	if (v.text) {
		r = cgf_filter_parse_stored(v.text, &x);
		for (s = x ? x->sets : NULL; s && !r; s = s->next)
			r = s->timeout && !strcmp(s->name, name);
		cgf_expr_free(x);
	}
	cgf_filter_view_free(&v);
	return r;
}

static int dyn_cgroup(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct dyn_ctx *c = ctx;
	unsigned int i;

	(void)cgid;
	(void)dir;
	for (i = 0; i < c->nseen && c->seen[i] != slot; i++)
		;
	if (!slot || i < c->nseen)
		return 0;
	if (c->nseen < 64)
		c->seen[c->nseen++] = slot;
	c->found = slot_has_dynamic(c->e, slot, c->name);
	return c->found;
}

int cgf_engine_has_dynamic(const struct cgf_engine *e, const char *name)
{
	struct dyn_ctx c = { .e = e, .name = name };
	int r;

	if (e->mode == CGF_MODE_DEDICATED)
		return slot_has_dynamic(e, CGF_SLOT_DEDICATED, name);
	r = cgf_engine_each_cgroup(e, dyn_cgroup, &c);
	if (r < 0 && !c.found) {
		cgf_err("cannot read the cgroups of %s: %s", e->pin, strerror(-r));
		return r;
	}
	return c.found;
}

int cgf_filter_build(struct cgf_engine *e, const char *text, unsigned int flags, int mode,
		     int learn_fd, struct cgf_names *names, struct cgf_built *b)
{
	struct cgf_names fresh = { .policy = CGF_NAMES_RESOLVE };
	struct build_ctx c = { .e = e, .b = b, .names = names ? names : &fresh,
			       .keep_sets = flags & CGF_BUILD_KEEP_SETS };
	struct cgf_parse_opts po = { .dialect = CGF_DIALECT_FULL, .lookup_set = lookup_type,
				     .lookup_ctx = &c, .allow_decls = flags & CGF_BUILD_DECLS,
				     .resolve_name = resolve_name, .resolve_ctx = &c };
	struct cgf_gen_env env = { .stats_fd = e->stats, .slots_fd = e->slots, .drops_fd = e->drops,
				   .ctl_fd = e->ctl,
				   .ratelimit_fd = e->ratelimit, .events_fd = e->events,
				   .cgroups_fd = e->cgroups, .named_set = named_fd, .ctx = b,
				   .mode = mode, .learn = learn_fd >= 0, .learn_fd = learn_fd,
				   .exe_fd = -1, .scratch_fd = e->scratch, .named_addrs = named_addrs };
	struct cgf_expr *x = NULL;
	struct cgf_gen g;
	char why[256];
	int r, exe_fd = -1, exe_lock = -1;

	memset(b, 0, sizeof(*b));
	memset(&g, 0, sizeof(g));
	b->prog = -1;
	b->mode = mode;
	/* the filter in force put in block or pass mode: its program reads
	 * nothing of the text, and the change must not fail for what the
	 * text names (a file gone, a set removed): an emergency stop works
	 * whatever the filter (its text is kept for the way back) */
	if ((flags & CGF_BUILD_KEEP_SETS) && (mode == CGF_RUN_BLOCK || mode == CGF_RUN_PASS)) {
		text = "1";
		po.allow_decls = 0;
		/* its names kept, as its text is, for the way back */
		r = cgf_names_keep_old(c.names);
		if (r)
			return r;
	}
	b->learning = learn_fd >= 0;
	r = cgf_filter_parse(text, &po, &x);
	if (r) {
		cgf_names_free(&fresh);
		return r;
	}
	if (c.names->n && !(b->names = cgf_names_format(c.names))) {
		r = -ENOMEM;
		goto out;
	}
	r = open_sets(e, x, b, flags & CGF_BUILD_KEEP_SETS);
	if (r == -ENOMEM)
		cgf_err("cannot build the filter: out of memory");
	if (r)
		goto out;
	if (uses_exe(x)) {
		if (e->exe_test_fd >= 0) {
			env.exe_fd = e->exe_test_fd;
			env.exe_test = true;
		} else {
			exe_fd = cgf_exe_ids(&exe_lock);
			if (exe_fd < 0) {
				r = exe_fd;
				goto out;
			}
			env.exe_fd = exe_fd;
		}
	}
	r = cgf_gen_filter(x, &env, &g, why, sizeof(why));
	if (r) {
		cgf_err("%s", why);
		goto out;
	}
	r = make_lits(&g);
	if (r)
		goto out;
	r = load_prog(&g);
	if (r < 0)
		goto out;
	b->prog = r;
	r = 0;
out:
	if (exe_lock >= 0)
		close(exe_lock);
	if (exe_fd >= 0)
		close(exe_fd);
	close_lits(&g);
	cgf_gen_free(&g);
	cgf_expr_free(x);
	cgf_names_free(&fresh);
	if (r)
		cgf_built_free(b);
	return r;
}

int cgf_filter_seal(struct cgf_built *b, const char *text, uint64_t owner, uint32_t gen)
{
	int info, r = 0;

	b->gen = gen;
	info = make_info(b, text, owner);
	if (info < 0)
		return info;
	/* the text and sets ride with the program: freed with it */
	if (bpf_prog_bind_map(b->prog, info, NULL)) {
		r = -errno;
		cgf_err("cannot bind the filter's text to it: %s", strerror(-r));
	}
	/* and the contents of the named address sets it compiled in */
	for (size_t i = 0; i < b->nsets && !r; i++)
		if (b->sets[i].snap >= 0 && bpf_prog_bind_map(b->prog, b->sets[i].snap, NULL)) {
			r = -errno;
			cgf_err("cannot bind set @%s's contents to the filter: %s", b->sets[i].name,
				strerror(-r));
		}
	close(info);
	return r;
}

void cgf_built_free(struct cgf_built *b)
{
	size_t i;

	for (i = 0; i < b->nsets; i++) {
		close(b->sets[i].outer);
		if (b->sets[i].snap >= 0)
			close(b->sets[i].snap);
		if (b->sets[i].addrs)
			free(b->sets[i].addrs->cidrs);
		free(b->sets[i].addrs);
	}
	for (i = 0; i < b->ndynamic; i++)
		free(b->dynamic[i]);
	free(b->dynamic);
	free(b->sets);
	free(b->names);
	if (b->prog >= 0)
		close(b->prog);
	memset(b, 0, sizeof(*b));
	b->prog = -1;
}

/* The mode of the filter in slot (enforce if there is none), or -errno. */
static int slot_mode(const struct cgf_engine *e, uint32_t slot)
{
	struct cgf_filter_view v;
	int m;

	m = cgf_engine_filter(e, slot, &v);
	if (m) {
		cgf_err("cannot read the filter in force in %s: %s", e->pin, strerror(-m));
		return m;
	}
	m = v.text && v.info.mode < CGF_RUN_NMODES ? (int)v.info.mode : CGF_RUN_ENFORCE;
	cgf_filter_view_free(&v);
	return m;
}

int cgf_built_pin_sets(struct cgf_engine *e, const struct cgf_built *b)
{
	size_t i;
	int r;

	for (i = 0; i < b->nsets; i++) {
		if (!b->sets[i].fresh)
			continue;
		r = cgf_set_pin(e, b->sets[i].name, b->sets[i].outer);
		if (r)
			return r;
	}
	return 0;
}

int cgf_slot_put(struct cgf_engine *e, uint32_t slot, int prog)
{
	if (bpf_map_update_elem(e->slots, &slot, &prog, BPF_ANY)) {
		int r = -errno;

		cgf_err("cannot put the filter in force in %s: %s", e->pin, strerror(-r));
		return r;
	}
	return 0;
}

/* ---- set, register -------------------------------------------------------------- */

/* Whether the named sets b uses (not declared by it) are still the ones
 * pinned: another command may have declared a new one since b was built. */
static bool sets_current(struct cgf_engine *e, const struct cgf_built *b)
{
	size_t i;

	for (i = 0; i < b->nsets; i++) {
		const struct cgf_built_set *s = &b->sets[i];
		enum cgf_type t;
		bool same;
		int fd;

		if (s->fresh)
			continue;
		if (cgf_set_open(e, s->name, &fd, &t))
			return false;
		same = cgf_map_id(fd) == cgf_map_id(s->outer) && t == s->type &&
		       /* an address set: the contents it compiled in */
		       (s->snap < 0 || cgf_set_contents_id(fd) == cgf_set_contents_id(s->snap));
		close(fd);
		if (!same)
			return false;
	}
	return true;
}

/* 0 if no named set of the engine has the name of any dynamic set b
 * declares; else -EEXIST, or -errno, said. */
static int dynamic_free(struct cgf_engine *e, const struct cgf_built *b)
{
	size_t i;
	int r = 0;

	for (i = 0; i < b->ndynamic && !r; i++)
		r = dynamic_name_free(e, b->dynamic[i]);
	return r;
}

/* The filter v built again from its text (its sets as they are), its host
 * names by names' policy (NULL: the addresses it has, resolving nothing). */
static int build_again(struct cgf_engine *e, const struct cgf_filter_view *v, unsigned int flags,
		       int mode, int learn_fd, struct cgf_names *names, struct cgf_built *b)
{
	struct cgf_names old = { 0 }, kept = { .policy = CGF_NAMES_KEEP };
	int r;

	if (!names)
		names = &kept;
	r = cgf_names_parse(v->names, &old);
	if (r)
		return r;
	names->old = &old;
	r = cgf_filter_build(e, v->text, flags, mode, learn_fd, names, b);
	names->old = NULL;
	cgf_names_free(&old);
	cgf_names_free(&kept);
	return r;
}

int cgf_engine_set(struct cgf_engine *e, const char *text, uint32_t *gen)
{
	struct cgf_built b;
	int r, mode;

	if (e->mode != CGF_MODE_DEDICATED) {
		cgf_err("%s is a shared engine: services register their filters with 'cgfilter register'",
			e->pin);
		return -EINVAL;
	}
	/* the heavy part (the verifier) before the lock: a huge filter does
	 * not hold up other commands on the engine; in the mode of the filter
	 * in force */
	mode = slot_mode(e, CGF_SLOT_DEDICATED);
	if (mode < 0)
		return mode;
	r = cgf_filter_build(e, text, CGF_BUILD_DECLS, mode, -1, NULL, &b);
	if (r)
		return r;
	r = cgf_engine_lock(e);
	if (r)
		goto out;
	mode = slot_mode(e, CGF_SLOT_DEDICATED);
	if (mode < 0) {
		r = mode;
		goto out;
	}
	/* a dynamic set it declares, whose name a set-add gave a named set
	 * meanwhile: refused (one name, one set) */
	r = dynamic_free(e, &b);
	if (r)
		goto out;
	if (!sets_current(e, &b) || b.mode != mode) {
		/* a set it names was replaced, or the mode changed, meanwhile:
		 * build again, locked */
		cgf_built_free(&b);
		r = cgf_filter_build(e, text, CGF_BUILD_DECLS, mode, -1, NULL, &b);
		if (r)
			goto out;
	}
	r = cgf_filter_seal(&b, text, 0, e->gen + 1);
	if (r)
		goto out;
	r = cgf_slot_put(e, CGF_SLOT_DEDICATED, b.prog);
	if (r)
		goto out;
	/* in force; the declared sets' pins follow (a kill here is repaired
	 * by the next command: cgf_engine_repair) */
	if (cgf_built_pin_sets(e, &b))
		cgf_note("%s: the new filter is in force; the next command will pin its sets", e->pin);
	if (gen)
		*gen = b.gen;
out:
	cgf_built_free(&b);
	return r;
}

/* The cgroup's id and which directions the engine is attached to it for:
 * the cgroup itself, or (without one given) this process's or a parent. */
static int find_cgroup(struct cgf_engine *e, const char *cgroup, char *path, size_t len,
		       uint64_t *cgid, bool present[2])
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	char root[PATH_MAX], line[PATH_MAX + 8];
	FILE *f;

	if (cgroup) {
		int r = cgf_cgroup_resolve(cgroup, path, len);

		if (r)
			return r;
	} else {
		int r = cgf_cgroup2_root(root, sizeof(root));

		if (r) {
			cgf_err("cannot find my cgroup: cannot find the cgroup2 mount: %s", cgf_root_error(r));
			return r;
		}
		if (!(f = fopen("/proc/self/cgroup", "r"))) {
			r = -errno;
			cgf_err("cannot find my cgroup: cannot read /proc/self/cgroup: %s", strerror(-r));
			return r;
		}
		path[0] = 0;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "0::", 3)) {
				line[strcspn(line, "\n")] = 0;
				if (snprintf(path, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "") >= (int)len)
					path[0] = 0;
			}
		fclose(f);
		if (!path[0]) {
			cgf_err("cannot find my cgroup in /proc/self/cgroup");
			return -ENOENT;
		}
	}
	for (;;) {
		struct stat st;
		struct statfs sf;
		char *slash;
		int d, n = 0;

		if (stat(path, &st)) {
			int r = -errno;

			cgf_err("cannot open cgroup %s: %s", path, strerror(-r));
			return r;
		}
		if (statfs(path, &sf) || sf.f_type != CGROUP2_SUPER_MAGIC) {
			cgf_err("cannot open cgroup %s: not a cgroup2 directory", path);
			return -ENOTDIR;
		}
		*cgid = st.st_ino;
		for (d = 0; d < 2; d++) {
			struct bpf_cgroup_storage_key k = { .cgroup_inode_id = *cgid, .attach_type = dirs[d] };
			uint32_t slot;

			present[d] = !bpf_map_lookup_elem(e->cgroups, &k, &slot);
			if (!present[d] && errno != ENOENT) {
				int r = -errno;

				cgf_err("cannot read the entry of cgroup %s in %s: %s", path, e->pin,
					strerror(-r));
				return r;
			}
			n += present[d];
		}
		if (n)
			return 0;
		slash = strrchr(path, '/');
		if (cgroup || !slash || slash == path || !strcmp(path, root)) {
			cgf_err("%s is not attached to %s%s: add IPIngressFilterPath=%s and/or IPEgressFilterPath=%s to the unit",
				e->pin, cgroup ? "cgroup " : "the cgroup of this process or a parent",
				cgroup ? cgroup : "", e->pin, e->pin);
			return -ENOENT;
		}
		*slash = 0;
	}
}

struct used_ctx {
	uint8_t *used;
	uint64_t cgid;
	uint32_t old;
	uint32_t olds[2];      /* its slots, ingress and egress (0: none) */
};

static int mark_used(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct used_ctx *c = ctx;

	if (slot < CGF_SHARED_SLOTS)
		c->used[slot] = 1;
	if (cgid == c->cgid && slot)
		c->old = slot;
	if (cgid == c->cgid)
		c->olds[dir == BPF_CGROUP_INET_EGRESS] = slot;
	return 0;
}

/*
 * Give cgroup cgid (attached for the directions in present) the filter
 * text in mode: a new program in a free slot, then the cgroup's entries
 * switched to it, one update per direction; text NULL removes its filter.
 * keep: the text is the one in force (a mode change): its sets as they are.
 * 0, or 1 if there was nothing to do (no filter to remove), or -errno.
 */
static int switch_cgroup(struct cgf_engine *e, const char *path, uint64_t cgid,
			 const bool present[2], const char *text, int mode, bool keep, int learn_fd,
			 struct cgf_names *names)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	struct used_ctx uc = { .cgid = cgid };
	struct cgf_filter_view cur = { 0 };
	struct cgf_built b = { .prog = -1 };
	uint32_t slot = 0;
	int r, d;

	uc.used = calloc(CGF_SHARED_SLOTS, 1);
	if (!uc.used)
		return -ENOMEM;
	r = cgf_engine_each_cgroup(e, mark_used, &uc);
	if (r) {
		cgf_err("cannot read the cgroups of %s: %s", e->pin, strerror(-r));
		goto out;
	}
	if (uc.old) {
		r = cgf_engine_filter(e, uc.old, &cur);
		if (r) {
			cgf_err("cannot read the filter of cgroup %s in %s: %s", path, e->pin,
				strerror(-r));
			goto out;
		}
	}
	if (keep) { /* the text in force, in another mode */
		if (!cur.text) {
			cgf_err("cgroup %s has no filter in %s: register one first", path, e->pin);
			r = -ENOENT;
			goto out;
		}
		text = cur.text;
	}
	if (!text && !uc.old) {
		cgf_note("cgroup %s has no filter in %s: nothing to unregister", path, e->pin);
		r = 1; /* (done: nothing) */
		goto out;
	}
	if (mode < 0) /* a new filter keeps the cgroup's mode */
		mode = cur.text && cur.info.mode < CGF_RUN_NMODES ? (int)cur.info.mode : CGF_RUN_ENFORCE;
	if (text) {
		r = keep ? build_again(e, &cur, CGF_BUILD_KEEP_SETS, mode, learn_fd, names, &b)
			 : cgf_filter_build(e, text, 0, mode, learn_fd, NULL, &b);
		if (!r)
			r = cgf_filter_seal(&b, text, cgid, cur.info.gen + 1);
		if (r)
			goto out;
		/* the cgroup's slot, if every direction it is attached for names
		 * the same one: the new filter in its place, one update for both
		 * directions, which a kill cannot cut in two */
		if (uc.old && (!present[0] || uc.olds[0] == uc.old) &&
		    (!present[1] || uc.olds[1] == uc.old)) {
			r = cgf_slot_put(e, uc.old, b.prog);
			goto out;
		}
		/* else a free slot: none names it (one a killed command left is reused) */
		for (slot = 1; slot < CGF_SHARED_SLOTS && uc.used[slot]; slot++)
			;
		if (slot == CGF_SHARED_SLOTS) {
			cgf_err("cannot register a filter in %s: all %d of its cgroup slots are in use",
				e->pin, CGF_SHARED_SLOTS - 1);
			r = -ENOSPC;
			goto out;
		}
		r = cgf_slot_put(e, slot, b.prog);
		if (r)
			goto out;
	}
	/* no filter: first the cgroup's slot emptied, if every direction names
	 * it (both drop at once), then the entries cleared */
	if (!text && uc.old && (!present[0] || uc.olds[0] == uc.old) &&
	    (!present[1] || uc.olds[1] == uc.old)) {
		uint32_t k = uc.old;

		if (bpf_map_delete_elem(e->slots, &k) && errno != ENOENT) {
			r = -errno;
			cgf_err("cannot remove the filter of cgroup %s in %s: %s", path, e->pin,
				strerror(-r));
			goto out;
		}
	}
	/* the switch, per direction */
	for (d = 0; d < 2; d++) {
		struct bpf_cgroup_storage_key k = { .cgroup_inode_id = cgid, .attach_type = dirs[d] };

		if (!present[d])
			continue;
		if (bpf_map_update_elem(e->cgroups, &k, &slot, BPF_EXIST)) {
			r = -errno;
			cgf_err("cannot set the %s filter of cgroup %s in %s: %s",
				d ? "egress" : "ingress", path, e->pin, strerror(-r));
			/* ingress done: back to its old filter, so that nothing
			 * changed (a kill between the two updates cannot be undone) */
			if (d == 1 && present[0]) {
				struct bpf_cgroup_storage_key k0 = { .cgroup_inode_id = cgid,
								     .attach_type = dirs[0] };
				uint32_t old = uc.olds[0];

				if (bpf_map_update_elem(e->cgroups, &k0, &old, BPF_EXIST)) {
					cgf_err("... and cannot put its ingress filter back: %s; ingress has the new filter, egress the old one",
						strerror(errno));
					goto out;
				}
			}
			/* nothing names the new slot now: empty it again */
			if (slot && slot != uc.olds[0] && slot != uc.olds[1]) {
				uint32_t k2 = slot;

				bpf_map_delete_elem(e->slots, &k2);
			}
			goto out;
		}
	}
	/* the old filter is no cgroup's any more: the kernel frees it */
	if (uc.old && uc.old != slot) {
		uint32_t k = uc.old;

		bpf_map_delete_elem(e->slots, &k);
	}
out:
	cgf_filter_view_free(&cur);
	cgf_built_free(&b);
	free(uc.used);
	return r;
}

int cgf_engine_register(struct cgf_engine *e, const char *cgroup, const char *text)
{
	char path[PATH_MAX];
	bool present[2] = { false, false };
	uint64_t cgid;
	int r;

	if (e->mode != CGF_MODE_SHARED) {
		cgf_err("%s is not a shared engine (load it with 'cgfilter load --shared'); use 'cgfilter set'",
			e->pin);
		return -EINVAL;
	}
	r = find_cgroup(e, cgroup, path, sizeof(path), &cgid, present);
	if (r)
		return r;
	r = switch_cgroup(e, path, cgid, present, text, -1, false, -1, NULL);
	if (!r && cgf_verbose)
		printf("%s cgroup %s\n", text ? "registered" : "unregistered", path);
	return r > 0 ? 0 : r;
}

int cgf_engine_cgroup_filter(struct cgf_engine *e, const char *cgroup, struct cgf_filter_view *v)
{
	struct bpf_cgroup_storage_key k = { .attach_type = BPF_CGROUP_INET_INGRESS };
	char path[PATH_MAX];
	bool present[2];
	uint32_t slot = 0;
	uint64_t cgid;
	int r;

	memset(v, 0, sizeof(*v));
	r = find_cgroup(e, cgroup, path, sizeof(path), &cgid, present);
	k.cgroup_inode_id = cgid;
	if (r)
		return r;
	if (!present[0])
		k.attach_type = BPF_CGROUP_INET_EGRESS;
	if (bpf_map_lookup_elem(e->cgroups, &k, &slot) || !slot || (r = cgf_engine_filter(e, slot, v))) {
		r = r ? r : -ENOENT;
		cgf_err("cgroup %s has no filter in %s%s%s", path, e->pin, r == -ENOENT ? "" : ": ",
			r == -ENOENT ? "" : strerror(-r));
		return r;
	}
	if (!v->text) {
		cgf_err("cgroup %s has no filter in %s", path, e->pin);
		return -ENOENT;
	}
	return 0;
}

/* ---- modes ---------------------------------------------------------------------- */

const char *const cgf_run_modes[CGF_RUN_NMODES] = {
	[CGF_RUN_ENFORCE] = "enforce", [CGF_RUN_OBSERVE] = "observe",
	[CGF_RUN_BLOCK] = "block", [CGF_RUN_PASS] = "pass",
};

struct cg_list {
	uint64_t *ids;
	uint8_t *dirs;  /* bit 0 ingress, bit 1 egress */
	size_t n;
};

static int list_cgroup(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct cg_list *l = ctx;
	size_t i;

	if (!slot)
		return 0;
	for (i = 0; i < l->n && l->ids[i] != cgid; i++)
		;
	if (i == l->n) {
		uint64_t *ids = realloc(l->ids, (l->n + 1) * sizeof(*ids));
		uint8_t *dirs = ids ? realloc(l->dirs, l->n + 1) : NULL;

		if (ids)
			l->ids = ids;
		if (!dirs)
			return -ENOMEM;
		l->dirs = dirs;
		l->ids[l->n] = cgid;
		l->dirs[l->n++] = 0;
	}
	l->dirs[i] |= dir == BPF_CGROUP_INET_INGRESS ? 1 : 2;
	return 0;
}

/* The dedicated engine's filter in force; -ENOENT, said, if none. */
static int dedicated_view(struct cgf_engine *e, struct cgf_filter_view *v)
{
	int r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, v);

	if (r) {
		cgf_err("cannot read the filter in force in %s: %s", e->pin, strerror(-r));
		return r;
	}
	if (!v->text) {
		cgf_err("%s has no filter in force", e->pin);
		cgf_filter_view_free(v);
		return -ENOENT;
	}
	return 0;
}

/* The filter in force v made again in mode (recording into learn_fd if
 * >= 0), its sets as they are, and put in force; *prog_id: the new one. */
static int rebuild_dedicated(struct cgf_engine *e, const struct cgf_filter_view *v, int mode,
			     int learn_fd, uint32_t *prog_id, struct cgf_names *names)
{
	struct cgf_built b;
	int r;

	r = build_again(e, v, CGF_BUILD_DECLS | CGF_BUILD_KEEP_SETS, mode, learn_fd, names, &b);
	if (!r)
		r = cgf_filter_seal(&b, v->text, 0, e->gen + 1);
	/* its id before it is in force: learn stops recording by it (0 would
	 * read as "changed by another command", and recording would stay) */
	if (!r && prog_id && !(*prog_id = cgf_prog_id(b.prog))) {
		r = -errno;
		cgf_err("cannot read the id of the new filter of %s: %s; nothing changed", e->pin,
			strerror(-r));
	}
	if (!r)
		r = cgf_slot_put(e, CGF_SLOT_DEDICATED, b.prog);
	cgf_built_free(&b);
	return r;
}

int cgf_engine_set_mode(struct cgf_engine *e, const char *cgroup, int mode, int *changed)
{
	struct cgf_filter_view v;
	int r;

	*changed = 0;
	r = cgf_engine_lock(e);
	if (r)
		return r;
	if (e->mode == CGF_MODE_SHARED) {
		char path[PATH_MAX];
		bool present[2] = { false, false };
		struct cg_list l = { 0 };
		uint64_t cgid;
		size_t i;
		int r_first = 0;

		if (cgroup) {
			r = find_cgroup(e, cgroup, path, sizeof(path), &cgid, present);
			if (!r)
				r = switch_cgroup(e, path, cgid, present, NULL, mode, true, -1, NULL);
			*changed = !r;
			return r;
		}
		/* every registered cgroup, one after the other; one that
		 * fails (gone meanwhile, say) does not stop the others */
		r = cgf_engine_each_cgroup(e, list_cgroup, &l);
		if (r)
			cgf_err("cannot read the cgroups of %s: %s", e->pin, strerror(-r));
		for (i = 0; !r && i < l.n; i++) {
			bool p[2] = { l.dirs[i] & 1, l.dirs[i] & 2 };
			int one;

			cgf_cgroup_path(l.ids[i], path, sizeof(path));
			one = switch_cgroup(e, path, l.ids[i], p, NULL, mode, true, -1, NULL);
			if (!one)
				(*changed)++;
			else if (!r_first)
				r_first = one;
		}
		if (!r && r_first) {
			cgf_err("%s: %zu of %zu cgroups changed to %s mode; the others kept theirs (see above)",
				e->pin, (size_t)*changed, l.n, cgf_run_modes[mode]);
			r = r_first;
		}
		free(l.ids);
		free(l.dirs);
		return r;
	}
	if (cgroup) {
		cgf_err("%s is a dedicated engine: its mode is the whole engine's (no --cgroup)", e->pin);
		return -EINVAL;
	}
	r = dedicated_view(e, &v);
	if (r)
		return r;
	r = rebuild_dedicated(e, &v, mode, -1, NULL, NULL);
	if (!r)
		*changed = 1;
	else
		cgf_err("%s: the filter in force cannot be made again in %s mode (above: why); it stays in %s mode (block and pass always work; 'set' gives it a new filter)",
			e->pin, cgf_run_modes[mode],
			v.info.mode < CGF_RUN_NMODES ? cgf_run_modes[v.info.mode] : "its");
	cgf_filter_view_free(&v);
	return r;
}

/* ---- repair --------------------------------------------------------------------- */

/* Shared: empty the slots no cgroup names (a service stopped, its cgroup
 * and with it its entry went; or a register was killed before its switch),
 * so the kernel frees their programs and sets. */
static int sweep_slots(struct cgf_engine *e)
{
	struct used_ctx uc = { .cgid = 0 };
	uint32_t slot, id;
	int r;

	uc.used = calloc(CGF_SHARED_SLOTS, 1);
	if (!uc.used)
		return -ENOMEM;
	r = cgf_engine_each_cgroup(e, mark_used, &uc);
	for (slot = 1; !r && slot < CGF_SHARED_SLOTS; slot++)
		if (!uc.used[slot] && !bpf_map_lookup_elem(e->slots, &slot, &id) &&
		    bpf_map_delete_elem(e->slots, &slot) && errno != ENOENT)
			r = -errno;
	free(uc.used);
	return r;
}

static int stale(const struct cgf_engine *e, const struct cgf_filter_view *v);

/* A filter that compiled in a set a killed set-add changed: built again
 * now (what fails is said, and the filter stays as shown: no command is
 * stopped for it). */
static void sync_after_kill(struct cgf_engine *e)
{
	DIR *d = opendir(e->dir);
	struct dirent *de;
	bool sets = !d;         /* (cannot tell: look) */

	/* (no named set, nothing to look at: most engines, at no cost) */
	while (d && !sets && (de = readdir(d)))
		sets = !strncmp(de->d_name, SET_PREFIX, strlen(SET_PREFIX));
	if (d)
		closedir(d);
	if (sets && cgf_engine_sync(e))
		cgf_note("%s: a filter that uses a set changed since it was made could not be made again (see above): it keeps the set as it was; 'cgfilter show' shows what it uses",
			 e->pin);
}

int cgf_engine_repair(struct cgf_engine *e)
{
	struct cgf_filter_view v;
	uint32_t i;
	int r;

	if (e->mode == CGF_MODE_SHARED) {
		/* what no cgroup can run is garbage, not danger: say, go on */
		r = sweep_slots(e);
		if (r)
			cgf_note("%s: cannot free the filters of cgroups gone: %s", e->pin, strerror(-r));
		sync_after_kill(e);
		return 0;
	}
	if (e->mode != CGF_MODE_DEDICATED)
		return 0;
	r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, &v);
	if (r) {
		cgf_err("cannot read the filter in force of %s: %s", e->pin, strerror(-r));
		return r;
	}
	e->gen = v.info.gen;
	for (i = 0; i < v.info.nsets && !r; i++) {
		const struct cgf_info_set *s = &v.sets[i];
		enum cgf_type t;
		int fd;

		r = cgf_set_open(e, s->name, &fd, &t);
		if (!r) {
			bool same = cgf_map_id(fd) == s->map_id;

			close(fd);
			if (same)
				continue;
		} else if (r != -ENOENT && r != -EINVAL) {
			cgf_err("cannot open set @%s of %s: %s", s->name, e->pin, strerror(-r));
			break;
		}
		r = 0;
		/* the filter in force uses another set of that name than the
		 * pin says (a command was killed between switch and pin) */
		fd = bpf_map_get_fd_by_id(s->map_id);
		if (fd < 0) {
			r = -errno;
			cgf_err("%s: the filter in force uses another set @%s than the one pinned, and it cannot be opened: %s",
				e->pin, s->name, strerror(-r));
			break;
		}
		r = cgf_set_pin(e, s->name, fd); /* (said) */
		if (!r)
			cgf_note("%s: pinned set @%s as the filter in force uses it", e->pin, s->name);
		close(fd);
	}
	if (!r && stale(e, &v) > 0)
		sync_after_kill(e);
	cgf_filter_view_free(&v);
	return r;
}

/* ---- learn ------------------------------------------------------------------------ */

/* Whether a filter may be learned from: it passes everything it sees. */
static int learnable(const struct cgf_engine *e, const struct cgf_filter_view *v, const char *cgroup)
{
	const char *t = v->text;

	while (*t == ' ' || *t == '\n' || *t == '\t')
		t++;
	if (v->info.mode == CGF_RUN_OBSERVE || v->info.mode == CGF_RUN_PASS ||
	    (t[0] == '1' && !t[1 + strspn(t + 1, " \n\t")]))
		return 0;
	cgf_err("%s%s%s is in %s mode: it would learn only what its filter passes; put it in observe mode first (cgfilter mode %s%s%s observe), or give it the filter 1",
		e->pin, cgroup ? " for cgroup " : "", cgroup ? cgroup : "",
		cgf_run_modes[v->info.mode < CGF_RUN_NMODES ? v->info.mode : 0], e->pin,
		cgroup ? " --cgroup " : "", cgroup ? cgroup : "");
	return -EPERM;
}

int cgf_engine_learn(struct cgf_engine *e, const char *cgroup, int learn_fd, uint32_t *prog_id)
{
	struct cgf_filter_view v;
	int r;

	r = cgf_engine_lock(e);
	if (r)
		return r;
	if (e->mode == CGF_MODE_SHARED) {
		char path[PATH_MAX];
		bool present[2] = { false, false };
		uint64_t cgid;

		if (!cgroup) {
			cgf_err("%s is a shared engine: learn the filter of one cgroup (--cgroup PATH)", e->pin);
			return -EINVAL;
		}
		r = cgf_engine_cgroup_filter(e, cgroup, &v);
		if (r)
			return r;
		if (learn_fd >= 0 ? learnable(e, &v, cgroup) : v.prog_id != *prog_id) {
			r = learn_fd >= 0 ? -EPERM : 1;
			goto out;
		}
		r = find_cgroup(e, cgroup, path, sizeof(path), &cgid, present);
		if (!r)
			r = switch_cgroup(e, path, cgid, present, NULL, -1, true, learn_fd, NULL);
		if (!r && learn_fd >= 0) {
			cgf_filter_view_free(&v);
			r = cgf_engine_cgroup_filter(e, cgroup, &v);
			if (!r)
				*prog_id = v.prog_id;
			else
				cgf_err("the filter of %s now records flows for learn, but cannot be read back: %s; the next register or mode ends it",
					cgroup, strerror(-r));
		}
		goto out;
	}
	if (cgroup) {
		cgf_err("%s is a dedicated engine: no --cgroup", e->pin);
		return -EINVAL;
	}
	r = dedicated_view(e, &v);
	if (r)
		return r;
	if (learn_fd >= 0 ? learnable(e, &v, NULL) : v.prog_id != *prog_id) {
		/* stop: the filter changed meanwhile (set, mode): it stays */
		r = learn_fd >= 0 ? -EPERM : 1;
		goto out;
	}
	r = rebuild_dedicated(e, &v, (int)v.info.mode, learn_fd, learn_fd >= 0 ? prog_id : NULL,
			      NULL);
out:
	cgf_filter_view_free(&v);
	return r;
}

/* ---- named address sets compiled in ------------------------------------------------ */

typedef int (*filter_fn)(struct cgf_engine *e, const struct cgf_filter_view *v, const char *path,
			 uint64_t cgid, const bool present[2], void *ctx);

/* fn on every registered cgroup's filter, one after the other (one that
 * fails does not stop the others: the first failure is returned). */
static int each_shared_filter(struct cgf_engine *e, filter_fn fn, void *ctx)
{
	static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };
	struct cg_list l = { 0 };
	char path[PATH_MAX];
	size_t i;
	int r, d, r_first = 0;

	r = cgf_engine_each_cgroup(e, list_cgroup, &l);
	if (r)
		cgf_err("cannot read the cgroups of %s: %s", e->pin, strerror(-r));
	for (i = 0; !r && i < l.n; i++) {
		bool p[2] = { l.dirs[i] & 1, l.dirs[i] & 2 };
		uint32_t seen = 0;

		cgf_cgroup_path(l.ids[i], path, sizeof(path));
		/* each direction's filter: one program mostly (then once), two
		 * after a register killed between the directions' switches */
		for (d = 0; d < 2; d++) {
			struct bpf_cgroup_storage_key k = { .cgroup_inode_id = l.ids[i],
							    .attach_type = dirs[d] };
			struct cgf_filter_view v = { 0 };
			uint32_t slot = 0;
			int one;

			if (!p[d])
				continue;
			one = bpf_map_lookup_elem(e->cgroups, &k, &slot) ? -errno : 0;
			if (one == -ENOENT || (!one && (!slot || slot == seen)))
				continue;       /* gone meanwhile, no filter, or seen */
			seen = slot;
			if (!one)
				one = cgf_engine_filter(e, slot, &v);
			if (one)
				cgf_err("cannot read the filter of cgroup %s in %s: %s", path, e->pin,
					strerror(-one));
			else if (v.text)
				one = fn(e, &v, path, l.ids[i], p, ctx);
			if (one && !r_first)
				r_first = one;
			cgf_filter_view_free(&v);
		}
	}
	free(l.ids);
	free(l.dirs);
	return r ? r : r_first;
}

/* Whether the named address set k that v compiled in holds other contents
 * now (a set-add, set-del or refresh changed it since): 1 or 0; 2 if no
 * such set is pinned now (the filter keeps its own); -errno if that cannot
 * be read (said).  *snap_fd: if not NULL, the contents it compiled in
 * (to be closed; -1 if it compiled none in). */
static int set_changed(const struct cgf_engine *e, const struct cgf_filter_view *v, uint32_t k,
		       int *snap_fd)
{
	enum cgf_type t;
	uint32_t was, now;
	int snap, cur, r;

	if (snap_fd)
		*snap_fd = -1;
	if (!v->snaps || !v->snaps[k])
		return 0;
	snap = bpf_map_get_fd_by_id(v->snaps[k]);
	if (snap < 0) {
		r = -errno;
		cgf_err("cannot read the contents of @%s a filter of %s was made with: %s",
			v->sets[k].name, e->pin, strerror(-r));
		return r;
	}
	was = cgf_set_contents_id(snap);
	if (!was) {
		r = -errno;
		cgf_err("cannot read the contents of @%s a filter of %s was made with: %s",
			v->sets[k].name, e->pin, strerror(-r));
		close(snap);
		return r;
	}
	r = cgf_set_open(e, v->sets[k].name, &cur, &t);
	if (r == -ENOENT || r == -EINVAL) {
		r = 2;          /* (no such set now: the filter keeps its own) */
	} else if (r) {
		cgf_err("cannot read set @%s of %s: %s", v->sets[k].name, e->pin, strerror(-r));
	} else {
		now = cgf_set_contents_id(cur);
		r = now ? 0 : -errno;
		close(cur);
		if (r)
			cgf_err("cannot read set @%s of %s: %s", v->sets[k].name, e->pin, strerror(-r));
		else
			r = t != CGF_T_ADDR ? 2 : now != was;
	}
	if (r >= 0 && snap_fd)
		*snap_fd = snap;
	else
		close(snap);
	return r;
}

/* Whether a named address set that v compiled in holds other contents now:
 * 1 or 0, or -errno if that cannot be read (said). */
static int stale(const struct cgf_engine *e, const struct cgf_filter_view *v)
{
	uint32_t k;
	int r;

	for (k = 0; v->snaps && k < v->info.nsets; k++) {
		r = set_changed(e, v, k, NULL);
		if (r < 0 || r == 1)
			return r;
	}
	return 0;
}

int cgf_engine_filter_kept(const struct cgf_engine *e, const struct cgf_filter_view *v, bool gone,
			   int (*fn)(const char *name, int outer, enum cgf_type type, void *ctx),
			   void *ctx)
{
	uint32_t k;
	int r = 0;

	for (k = 0; v->snaps && k < v->info.nsets && !r; k++) {
		int snap;

		r = set_changed(e, v, k, &snap);
		if (r == (gone ? 2 : 1))
			r = fn(v->sets[k].name, snap, CGF_T_ADDR, ctx);
		else if (r > 0)
			r = 0;
		if (snap >= 0)
			close(snap);
	}
	return r;
}

int cgf_engine_filter_stale(const struct cgf_engine *e, const struct cgf_filter_view *v)
{
	return stale(e, v);
}

static int sync_one(struct cgf_engine *e, const struct cgf_filter_view *v, const char *path,
		    uint64_t cgid, const bool present[2], void *ctx)
{
	int *changed = ctx;
	int r;

	/* (learn's recording filter is learn's to swap back, made anew) */
	if (v->info.flags & CGF_INFO_LEARNING)
		return 0;
	r = stale(e, v);
	if (r <= 0)
		return r;
	if (path)
		r = switch_cgroup(e, path, cgid, present, NULL, -1, true, -1, NULL);
	else
		r = rebuild_dedicated(e, v, (int)v->info.mode, -1, NULL, NULL);
	if (!r)
		(*changed)++;
	return r;
}

int cgf_engine_sync(struct cgf_engine *e)
{
	struct cgf_filter_view v;
	int r, changed = 0;

	if (e->mode == CGF_MODE_SHARED)
		return each_shared_filter(e, sync_one, &changed);
	r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, &v);
	if (r) {
		cgf_err("cannot read the filter in force in %s: %s", e->pin, strerror(-r));
		return r;
	}
	if (v.text) {
		r = sync_one(e, &v, NULL, 0, NULL, &changed);
		if (!r && changed)
			e->gen++;
	}
	cgf_filter_view_free(&v);
	return r;
}

/* ---- refresh (host names) ------------------------------------------------------ */

/* The filter v made again with its names resolved again if due (all with
 * force); *changed counts it.  mode < 0: a dedicated engine's. */
struct refresh_ctx {
	bool force;
	int *changed;
};

static int refresh_one(struct cgf_engine *e, const struct cgf_filter_view *v, const char *path,
		       uint64_t cgid, const bool present[2], void *ctx)
{
	struct refresh_ctx *c = ctx;
	bool force = c->force;
	int *changed = c->changed;
	struct cgf_names old = { 0 }, names = { .policy = force ? CGF_NAMES_FORCE : CGF_NAMES_DUE };
	int r, due;

	/* learn's recording filter is learn's to swap back; block and pass
	 * judge no address (their names are resolved when the mode changes) */
	if ((v->info.flags & CGF_INFO_LEARNING) || v->info.mode == CGF_RUN_BLOCK ||
	    v->info.mode == CGF_RUN_PASS)
		return 0;
	r = cgf_names_parse(v->names, &old);
	if (r)
		return r;
	due = cgf_names_due(&old, force);
	cgf_names_free(&old);
	if (!due)
		return 0;
	if (path)
		r = switch_cgroup(e, path, cgid, present, NULL, -1, true, -1, &names);
	else
		r = rebuild_dedicated(e, v, (int)v->info.mode, -1, NULL, &names);
	if (!r) {
		(*changed)++;
		if (cgf_verbose)
			printf("%s%s%s: %d name%s resolved again, %d with new addresses\n", e->pin,
			       path ? " cgroup " : "", path ? path : "", names.resolved,
			       names.resolved == 1 ? "" : "s", names.changed);
	}
	cgf_names_free(&names);
	return r;
}

int cgf_engine_refresh(struct cgf_engine *e, bool force, int *changed)
{
	struct refresh_ctx c = { .force = force, .changed = changed };
	struct cgf_filter_view v;
	int r, rs;

	*changed = 0;
	r = cgf_engine_lock(e);
	if (r)
		return r;
	rs = cgf_set_refresh(e, force, changed);
	/* the filters that compiled in a set it changed: made again */
	if (*changed) {
		r = cgf_engine_sync(e);
		rs = rs ? rs : r;
	}
	if (e->mode == CGF_MODE_SHARED) {
		r = each_shared_filter(e, refresh_one, &c);
		return r ? r : rs;
	}
	r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, &v);
	if (r) {
		cgf_err("cannot read the filter in force in %s: %s", e->pin, strerror(-r));
		return r;
	}
	if (v.text)
		r = refresh_one(e, &v, NULL, 0, NULL, &c);
	cgf_filter_view_free(&v);
	return r ? r : rs;
}
