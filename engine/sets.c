// SPDX-License-Identifier: GPL-2.0-only
/*
 * Named sets: PIN_maps/set_NAME, an array of maps with one slot holding the
 * set's contents (cgf_abi.h).  An edit builds the new contents whole, then
 * puts them in the slot with one update: a packet sees the old set or the
 * new one, an edit that does not fit changes nothing, and a command killed
 * half-way leaves the old set, since nothing was switched.
 *
 * Filters compile a named address set in (its addresses as a literal set's,
 * and the contents they were read from bound to the program): an edit of
 * one then builds those filters again (cgf_engine_sync), each put in force
 * with one update, and puts the old contents back if one cannot be built.
 * A kill between the two leaves the filters as they were, as 'show' says
 * (it lists the contents a filter keeps); the next command builds them.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"


/* An executable set: a hash of identities (struct cgf_exe_id), each with
 * the path it was named by, as big as it needs (entries). */
static int inner_new_exe(uint32_t entries)
{
	return cgf_sys_map_create(BPF_MAP_TYPE_HASH, "cgf_set", sizeof(struct cgf_exe_id),
				  CGF_EXE_PATH_MAX, entries ? entries : 1, BPF_F_NO_PREALLOC, -1);
}

static int inner_new(enum cgf_type type)
{
	if (type == CGF_T_EXE)
		return inner_new_exe(1);
	if (type == CGF_T_ADDR)
		return cgf_sys_map_create(BPF_MAP_TYPE_LPM_TRIE, "cgf_set", sizeof(struct cgf_lpm_key), 1,
					  CGF_LPM_MAX_PREFIXES, BPF_F_NO_PREALLOC, -1);
	return cgf_sys_map_create(BPF_MAP_TYPE_ARRAY, "cgf_set", 4, CGF_BITMAP_BYTES, 1, 0, -1);
}

static int outer_new(int inner)
{
	uint32_t zero = 0;
	int fd = cgf_sys_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "cgf_named_set", 4, 4, 1, 0, inner);

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &zero, &inner, BPF_ANY)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* The contents of a named set now (an fd of its inner map). */
static int inner_of(int outer)
{
	uint32_t zero = 0, id;
	int fd, i;

	/* a set-add or refresh may swap it, and the kernel free the one read,
	 * between the two calls: read it again */
	for (i = 0; i < 100; i++) {
		if (bpf_map_lookup_elem(outer, &zero, &id))
			return -errno;
		fd = bpf_map_get_fd_by_id(id);
		if (fd >= 0 || errno != ENOENT)
			return fd < 0 ? -errno : fd;
	}
	return -EAGAIN;
}

int cgf_set_type(int outer, enum cgf_type *type)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int fd = inner_of(outer), r = 0;

	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		r = -errno;
	else if (info.type == BPF_MAP_TYPE_LPM_TRIE)
		*type = CGF_T_ADDR;
	else if (info.type == BPF_MAP_TYPE_ARRAY && info.value_size == CGF_BITMAP_BYTES)
		*type = CGF_T_INT;
	else if (info.type == BPF_MAP_TYPE_HASH && info.key_size == sizeof(struct cgf_exe_id) &&
		 info.value_size == CGF_EXE_PATH_MAX)
		*type = CGF_T_EXE;
	else
		r = -EINVAL;
	close(fd);
	return r;
}

static void set_path(const struct cgf_engine *e, const char *prefix, const char *name, char *buf,
		     size_t len)
{
	snprintf(buf, len, "%s/%s%s", e->dir, prefix, name);
}

int cgf_set_open(const struct cgf_engine *e, const char *name, int *outer, enum cgf_type *type)
{
	char path[PATH_MAX + 100];
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int fd, r;

	set_path(e, SET_PREFIX, name, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	r = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	if (!r && info.type != BPF_MAP_TYPE_ARRAY_OF_MAPS)
		r = -EINVAL; /* (not a named set) */
	if (!r)
		r = cgf_set_type(fd, type);
	if (r) {
		close(fd);
		return r;
	}
	*outer = fd;
	return 0;
}

int cgf_set_pin(const struct cgf_engine *e, const char *name, int outer)
{
	char path[PATH_MAX + 100], tmp[PATH_MAX + 100];

	set_path(e, SET_PREFIX, name, path, sizeof(path));
	set_path(e, "new_" SET_PREFIX, name, tmp, sizeof(tmp));
	unlink(tmp);
	if (bpf_obj_pin(outer, tmp) || rename(tmp, path)) {
		int r = -errno;

		unlink(tmp);
		cgf_err("cannot pin %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

/* The id of the contents a named set holds now (its inner map), or 0. */
uint32_t cgf_set_contents_id(int outer)
{
	uint32_t zero = 0, id;

	return bpf_map_lookup_elem(outer, &zero, &id) ? 0 : id;
}

/* The addresses of the contents inner (host names' included), added to the
 * literal set *s (its cidrs, to be freed). */
static int read_addrs(int inner, struct cgf_set *s)
{
	struct cgf_lpm_key k, next;
	int more, r = 0;

	for (more = cgf_next_key(inner, NULL, &next); more > 0 && !r; more = cgf_next_key(inner, &k, &next)) {
		struct cgf_cidr *c;

		k = next;
		if (k.family != 4 && k.family != 6)
			continue;       /* (its host names' records) */
		if (!cgf_grow((void **)&s->cidrs, s->n, &s->cap, sizeof(*s->cidrs), 64))
			return -ENOMEM;
		c = &s->cidrs[s->n++];
		memset(c, 0, sizeof(*c));
		c->family = k.family;
		c->plen = (uint8_t)(k.prefixlen - 32);
		memcpy(c->addr, k.addr, 16);
	}
	return more < 0 ? more : r;
}

int cgf_set_read_addrs(int outer, struct cgf_set *s)
{
	int inner = inner_of(outer), r;

	if (inner < 0)
		return inner;
	r = read_addrs(inner, s);
	close(inner);
	return r;
}

/*
 * A named address set's addresses now, as the literal set *s, for a filter
 * to compile in; and *snap, a new array of maps holding those very
 * contents, that the filter keeps (bound to it), so that 'show' reads what
 * it compiled even after the set changed.
 */
int cgf_set_addrs(int outer, struct cgf_set *s, int *snap)
{
	int inner = inner_of(outer), r;

	*snap = -1;
	if (inner < 0)
		return inner;
	r = read_addrs(inner, s);
	if (!r) {
		/* (frozen: nothing can put other contents in what show reads) */
		*snap = outer_new(inner);
		if (*snap < 0) {
			r = *snap;
		} else if (bpf_map_freeze(*snap)) {
			r = -errno;
			close(*snap);
			*snap = -1;
		}
	}
	close(inner);
	return r;
}

static int cmp_key(const void *x, const void *y);
static int addr_set_edit(int old, const struct cgf_set *s, char **hosts, int nhosts, bool add,
			 int *inner);
static int addr_set_new(const struct cgf_set *s, int *inner);

/* ---- contents ------------------------------------------------------------------- */

static void lpm_key_of(const struct cgf_cidr *c, struct cgf_lpm_key *k)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + c->plen;
	k->family = c->family;
	memcpy(k->addr, c->addr, c->family == 6 ? 16 : 4);
}

/* Add the items of s (or remove them) to the new contents inner. */
static int fill(int inner, enum cgf_type type, const struct cgf_set *s, bool add, uint64_t *bits)
{
	uint8_t one = 1;
	size_t i;

	if (type == CGF_T_EXE) {
		for (i = 0; i < s->n; i++) {
			const struct cgf_exe *x = &s->exes[i];
			struct cgf_exe_id k = { .dev = x->dev, .ino = x->ino }, cur, next;
			char path[CGF_EXE_PATH_MAX] = { 0 };
			bool found = false;
			int more;

			if (add) {
				snprintf(path, sizeof(path), "%s", x->path);
				if (bpf_map_update_elem(inner, &k, path, BPF_ANY))
					return -errno;
				continue;
			}
			/* remove: what was added by that path, or is that file now
			 * (the keys first, then the deletions: a walk of a hash
			 * does not survive deleting the key it stands on) */
			struct cgf_exe_id *gone = NULL;
			size_t ngone = 0, g;

			for (more = cgf_next_key(inner, NULL, &next); more > 0;
			     more = cgf_next_key(inner, &cur, &next)) {
				struct cgf_exe_id *p;

				cur = next;
				if (bpf_map_lookup_elem(inner, &cur, path))
					continue;
				if (strcmp(path, x->path) && (cur.ino != k.ino || cur.dev != k.dev || !k.ino))
					continue;
				p = realloc(gone, (ngone + 1) * sizeof(*p));
				if (!p) {
					free(gone);
					return -ENOMEM;
				}
				gone = p;
				gone[ngone++] = cur;
			}
			for (g = 0; more >= 0 && g < ngone; g++)
				if (bpf_map_delete_elem(inner, &gone[g]))
					more = -errno;
			free(gone);
			if (more < 0)
				return more;
			found = ngone > 0;
			if (!found)
				cgf_note("%s was not in the set", x->path);
		}
		return 0;
	}
	if (type == CGF_T_INT) {
		for (i = 0; i < s->n; i++)
			for (uint64_t v = s->ranges[i].lo; v <= s->ranges[i].hi && v < 65536; v++) {
				if (add)
					bits[v / 64] |= 1ULL << (v % 64);
				else
					bits[v / 64] &= ~(1ULL << (v % 64));
			}
		return 0;
	}
	for (i = 0; i < s->n; i++) {
		struct cgf_lpm_key k;

		lpm_key_of(&s->cidrs[i], &k);
		if (add ? bpf_map_update_elem(inner, &k, &one, BPF_ANY) : bpf_map_delete_elem(inner, &k)) {
			int r = -errno;

			if (!add && r == -ENOENT) {
				char buf[64];

				cgf_format_cidr(&s->cidrs[i], buf, sizeof(buf));
				cgf_note("%s was not in the set", buf);
				continue;
			}
			return r;
		}
	}
	return 0;
}

/* Copy the contents of old into the new inner (bits: the bitmap). */
static int copy(int old, int inner, enum cgf_type type, uint64_t *bits)
{
	struct cgf_lpm_key k, next;
	uint32_t zero = 0;
	uint8_t one = 1;
	int more;

	if (type == CGF_T_INT)
		return bpf_map_lookup_elem(old, &zero, bits) ? -errno : 0;
	if (type == CGF_T_EXE) {
		struct cgf_exe_id ek, en;
		char path[CGF_EXE_PATH_MAX];

		for (more = cgf_next_key(old, NULL, &en); more > 0; more = cgf_next_key(old, &ek, &en)) {
			ek = en;
			if (bpf_map_lookup_elem(old, &ek, path))
				continue;
			if (bpf_map_update_elem(inner, &ek, path, BPF_ANY))
				return -errno;
		}
		return more;
	}
	for (more = cgf_next_key(old, NULL, &next); more > 0; more = cgf_next_key(old, &k, &next)) {
		k = next;
		if (bpf_map_update_elem(inner, &k, &one, BPF_ANY))
			return -errno;
	}
	return more;
}

int cgf_set_new(const struct cgf_set *s, int *outer)
{
	uint64_t *bits = NULL;
	uint32_t zero = 0;
	int inner = -1, r = 0;

	if (s->type == CGF_T_ADDR && s->nhosts) {
		r = addr_set_new(s, &inner);
		if (!r) {
			int fd = outer_new(inner);

			r = fd < 0 ? fd : 0;
			if (!r)
				*outer = fd;
		}
		if (inner >= 0)
			close(inner);
		return r;
	}
	inner = s->type == CGF_T_EXE ? inner_new_exe((uint32_t)s->n) : inner_new(s->type);
	if (inner < 0)
		return inner;
	if (s->type == CGF_T_INT) {
		bits = calloc(CGF_BITMAP_BYTES, 1);
		if (!bits) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = fill(inner, s->type, s, true, bits);
	if (!r && bits && bpf_map_update_elem(inner, &zero, bits, BPF_ANY))
		r = -errno;
	if (!r) {
		int fd = outer_new(inner);

		if (fd < 0)
			r = fd;
		else
			*outer = fd;
	}
out:
	free(bits);
	close(inner);
	return r;
}

static bool good_name(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > CGF_SET_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!(name[i] >= 'a' && name[i] <= 'z') && !(name[i] >= 'A' && name[i] <= 'Z') &&
		    !(name[i] >= '0' && name[i] <= '9') && name[i] != '_')
			return false;
	return true;
}

static bool looks_like_addr(const char *s)
{
	return strchr(s, ':') || (strchr(s, '.') && !strstr(s, ".."));
}

/* An item of a set of executables: an absolute path ("PATH" taken too) */
static bool looks_like_exe(const char *s)
{
	return s[0] == '/' || s[0] == '"';
}

/* An IPv6 prefix inside ::ffff:0:0/96 (IPv4-mapped), at least /96 long */
static bool mapped4(const struct cgf_cidr *c)
{
	static const uint8_t pre[12] = { [10] = 0xff, [11] = 0xff };

	return c->family == 6 && c->plen >= 96 && !memcmp(c->addr, pre, 12);
}

static bool any_letter(const char *s)
{
	for (; *s; s++)
		if (isalpha((unsigned char)*s))
			return true;
	return false;
}

/* The items as a parsed set of type (each checked; the first bad one is
 * refused with its reason). */
static int parse_items(char **items, int n, enum cgf_type type, const char *name, bool add,
		       struct cgf_set *s, char **hosts, int *nhosts)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->type = type;
	s->cidrs = calloc(n ? n : 1, sizeof(*s->cidrs));
	s->ranges = calloc(n ? n : 1, sizeof(*s->ranges));
	s->exes = type == CGF_T_EXE ? calloc(n ? n : 1, sizeof(*s->exes)) : NULL;
	if (!s->cidrs || !s->ranges || (type == CGF_T_EXE && !s->exes))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		char why[512];
		int bad;

		if (!items[i][0]) {
			cgf_err("bad element '': an empty item is neither an address nor a number");
			return -EINVAL;
		}
		if (type == CGF_T_EXE) {
			char path[CGF_EXE_PATH_MAX + 2];
			size_t l;

			if (strlen(items[i]) >= sizeof(path)) {
				cgf_err("bad element '%.60s...': a path longer than %d bytes", items[i],
					CGF_EXE_PATH_MAX - 1);
				return -EINVAL;
			}
			/* a "PATH" as in a filter: the quotes off (no escapes here) */
			snprintf(path, sizeof(path), "%s", items[i]);
			l = strlen(path);
			if (l >= 2 && path[0] == '"' && path[l - 1] == '"') {
				memmove(path, path + 1, l - 2);
				path[l - 2] = 0;
			}
			bad = !looks_like_exe(items[i]) ?
				      (snprintf(why, sizeof(why), "@%s holds executables (absolute paths)", name), -1) :
				      cgf_exe_resolve(path, &s->exes[s->n], why, sizeof(why));
			if (bad && !add && path[0] == '/' && strlen(path) < CGF_EXE_PATH_MAX) {
				/* a file gone: removed by the path it was added by */
				memset(&s->exes[s->n], 0, sizeof(s->exes[s->n]));
				snprintf(s->exes[s->n].path, sizeof(s->exes[s->n].path), "%s", path);
				bad = 0;
			}
		} else if (looks_like_exe(items[i]))
			bad = (snprintf(why, sizeof(why), "@%s holds %s, not executables", name,
					type == CGF_T_ADDR ? "addresses" : "integers"), -1);
		else if (type == CGF_T_ADDR) {
			char hwhy[200];

			bad = cgf_parse_cidr(items[i], &s->cidrs[s->n], why, sizeof(why));
			if (bad && cgf_host_name_ok(items[i], hwhy, sizeof(hwhy))) {
				cgf_host_name_norm(items[i]);
				hosts[(*nhosts)++] = items[i];  /* resolved by the edit */
				continue;
			}
			if (bad && !strpbrk(items[i], ":/") && any_letter(items[i]) &&
			    strncasecmp(items[i], "0x", 2))
				snprintf(why, sizeof(why), "%s", hwhy); /* meant as a name */
			if (!bad && mapped4(&s->cidrs[s->n]))
				cgf_note("%s is an IPv4-mapped IPv6 address: it matches IPv6 packets only, not IPv4 packets from %u.%u.%u.%u (write that for those)",
					 items[i], s->cidrs[s->n].addr[12], s->cidrs[s->n].addr[13],
					 s->cidrs[s->n].addr[14], s->cidrs[s->n].addr[15]);
		}
		else if (looks_like_addr(items[i]))
			bad = (snprintf(why, sizeof(why), "@%s holds integers", name), -1);
		else
			bad = cgf_parse_range(items[i], &s->ranges[s->n], why, sizeof(why));
		if (bad) {
			cgf_err("bad element '%s': %s", items[i], why);
			return -EINVAL;
		}
		s->n++;
	}
	return 0;
}

/* Why the new contents of @name could not be made, naming the limit hit */
static void edit_error(const char *name, enum cgf_type type, int r)
{
	if ((r == -E2BIG || r == -ENOSPC) && type == CGF_T_ADDR)
		cgf_err("cannot change @%s: a named address set holds at most %u entries (a prefix is one, its host names take one per 16 bytes of their record); nothing was changed",
			name, CGF_LPM_MAX_PREFIXES);
	else if (r == -ENOMEM)
		cgf_err("cannot change @%s: out of memory (this process's, or the kernel's for maps: see ulimit -l and the memory cgroup's limit); nothing was changed",
			name);
	else
		cgf_err("cannot change @%s: %s; nothing was changed", name, strerror(-r));
}

/* The set's new contents, whole, in *inner (old: outer's, unless created);
 * what failed is said. */
static int new_contents(const struct cgf_engine *e, const char *name, int outer, bool created,
			enum cgf_type type, const struct cgf_set *s, char **hosts, int nhosts,
			bool add, int n, int *inner)
{
	uint64_t *bits = NULL;
	uint32_t zero = 0;
	int old = -1, r;

	if (type == CGF_T_ADDR) {
		/* addresses and host names: the new trie made whole from the old */
		old = created ? -1 : inner_of(outer);
		r = old < 0 && !created ? old : addr_set_edit(old, s, hosts, nhosts, add, inner);
		if (r && r != -EINVAL)   /* (-EINVAL: said) */
			edit_error(name, type, r);
		goto out;
	}
	if (type == CGF_T_EXE) {
		/* as big as it needs: what it holds and what comes */
		uint32_t held = 0;
		int cur = created ? -1 : inner_of(outer);

		if (cur >= 0) {
			struct cgf_exe_id k, nx;
			int more;

			for (more = cgf_next_key(cur, NULL, &nx); more > 0; more = cgf_next_key(cur, &k, &nx)) {
				k = nx;
				held++;
			}
			close(cur);
		}
		*inner = inner_new_exe(held + (add ? (uint32_t)n : 0));
	} else {
		*inner = inner_new(type);
	}
	bits = calloc(CGF_BITMAP_BYTES, 1);
	if (*inner < 0 || !bits) {
		r = *inner < 0 ? *inner : -ENOMEM;
		cgf_err("cannot make a set: %s", strerror(-r));
		goto out;
	}
	/* the new contents, whole, before anything switches */
	if (!created) {
		old = inner_of(outer);
		r = old < 0 ? old : copy(old, *inner, type, bits);
		if (r) {
			cgf_err("cannot read set @%s of %s: %s", name, e->pin, strerror(-r));
			goto out;
		}
	}
	r = fill(*inner, type, s, add, bits);
	if (!r && type == CGF_T_INT && bpf_map_update_elem(*inner, &zero, bits, BPF_ANY))
		r = -errno;
	if (r) {
		edit_error(name, type, r);
		goto out;
	}
out:
	free(bits);
	if (old >= 0)
		close(old);
	return r;
}

/* A set-add or set-del whose filters could not be made again: the set's
 * old contents back, and the filters made again with them (those made with
 * the new already), so that nothing changed; what fails is said. */
static void put_back(struct cgf_engine *e, const char *name, int outer, int old)
{
	uint32_t zero = 0;

	if (bpf_map_update_elem(outer, &zero, &old, BPF_ANY)) {
		cgf_err("... and @%s cannot be put back: %s; the filters that use it keep what they had, and the next command on %s makes them again with the set as it is now",
			name, strerror(errno), e->pin);
		return;
	}
	if (cgf_engine_sync(e))
		cgf_err("... and a filter made with the new @%s cannot be made again with the old: the next command on %s makes it again",
			name, e->pin);
	else
		cgf_err("@%s of %s is unchanged", name, e->pin);
}

int cgf_set_edit(struct cgf_engine *e, const char *name, char **items, int n, bool add)
{
	struct cgf_set s;
	enum cgf_type type;
	uint32_t zero = 0;
	int outer = -1, inner = -1, r, nhosts = 0;
	bool created = false;
	char **hosts = NULL;

	memset(&s, 0, sizeof(s));
	if (name[0] == '@')
		name++;
	if (!good_name(name)) {
		cgf_err("bad set name '@%s': 1 to %d letters, digits and '_'", name, CGF_SET_NAME_MAX);
		return -EINVAL;
	}
	r = cgf_set_open(e, name, &outer, &type);
	if (r == -ENOENT && add && n) {
		char hwhy[200];

		/* a new set: its type is that of its first item */
		type = looks_like_exe(items[0]) ? CGF_T_EXE :
		       looks_like_addr(items[0]) || cgf_host_name_ok(items[0], hwhy, sizeof(hwhy)) ?
				CGF_T_ADDR : CGF_T_INT;
		created = true;
		r = 0;
	} else if (r == -ENOENT) {
		cgf_err("unknown set @%s in %s", name, e->pin);
		return r;
	} else if (r) {
		cgf_err("cannot open set @%s of %s: %s", name, e->pin,
			r == -EINVAL ? "the object pinned there is not a named set" : strerror(-r));
		return r;
	}
	hosts = calloc(n ? n : 1, sizeof(*hosts));
	r = hosts ? parse_items(items, n, type, name, add, &s, hosts, &nhosts) : -ENOMEM;
	if (r == -ENOMEM)
		cgf_err("cannot change @%s: out of memory; nothing was changed", name);
	if (r)
		goto out;
	r = new_contents(e, name, outer, created, type, &s, hosts, nhosts, add, n, &inner);
	if (r)
		goto out;
	/* the switch: one update (or, for a new set, one pin) */
	if (created) {
		outer = outer_new(inner);
		r = outer < 0 ? outer : cgf_set_pin(e, name, outer); /* (pin: said) */
		if (outer < 0)
			cgf_err("cannot make set @%s: %s; nothing was changed", name, strerror(-r));
		if (!r)
			printf("created set @%s of %s\n", name,
			       type == CGF_T_ADDR ? "addresses" : type == CGF_T_EXE ? "executables" : "integers");
	} else {
		/* the old contents, to put back if the filters that use the
		 * set cannot be made again with the new */
		int old = type == CGF_T_ADDR ? inner_of(outer) : -1;

		if (type == CGF_T_ADDR && old < 0) {
			r = old;
			cgf_err("cannot read set @%s of %s: %s; nothing was changed", name, e->pin,
				strerror(-r));
		} else if (bpf_map_update_elem(outer, &zero, &inner, BPF_ANY)) {
			r = -errno;
			cgf_err("cannot change @%s of %s: %s", name, e->pin, strerror(-r));
		} else if (type == CGF_T_ADDR) {
			/* the filters that compiled the set in, made again */
			r = cgf_engine_sync(e);
			if (r)
				put_back(e, name, outer, old);
		}
		if (old >= 0)
			close(old);
	}
out:
	free(hosts);
	free(s.cidrs);
	free(s.ranges);
	free(s.exes);
	if (inner >= 0)
		close(inner);
	if (outer >= 0)
		close(outer);
	return r;
}

int cgf_set_each(const struct cgf_engine *e, const struct cgf_filter_view *v,
		 int (*fn)(const char *name, int outer, enum cgf_type type, void *ctx), void *ctx)
{
	struct dirent **names;
	uint32_t k;
	int n, i, r = 0;

	/* the sets the filter in force uses, as it uses them (a pin can lag
	 * behind after a killed command, until the next one repairs it) */
	for (k = 0; v && k < v->info.nsets && !r; k++) {
		enum cgf_type type;
		/* (an address set: the contents it compiled in) */
		uint32_t id = v->snaps && v->snaps[k] ? v->snaps[k] : v->sets[k].map_id;
		int outer = bpf_map_get_fd_by_id(id);

		if (outer < 0)
			return -errno;
		r = cgf_set_type(outer, &type);
		if (!r)
			r = fn(v->sets[k].name, outer, type, ctx);
		close(outer);
	}
	n = scandir(e->dir, &names, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		const char *f = names[i]->d_name, *name = f + strlen(SET_PREFIX);
		bool ours = !strncmp(f, SET_PREFIX, strlen(SET_PREFIX));
		enum cgf_type type;
		bool used = false;
		int outer;

		for (k = 0; ours && v && k < v->info.nsets; k++)
			used |= !strcmp(v->sets[k].name, name);
		/* (a set that cannot be opened fails the walk: shown as none,
		 * it would be a set missing without a word) */
		if (!r && !used && ours) {
			r = cgf_set_open(e, name, &outer, &type);
			if (!r) {
				r = fn(name, outer, type, ctx);
				close(outer);
			}
		}
		free(names[i]);
	}
	free(names);
	return r;
}

/* ---- listing ---------------------------------------------------------------------- */

static int cmp_key(const void *x, const void *y)
{
	const struct cgf_lpm_key *a = x, *b = y;
	int c = a->family - b->family;

	if (!c)
		c = memcmp(a->addr, b->addr, 16);
	if (!c)
		c = (int)a->prefixlen - (int)b->prefixlen;
	return c;
}

int cgf_set_items(int outer, enum cgf_type type, int (*fn)(const char *item, void *ctx), void *ctx,
		  uint64_t *count)
{
	int inner = inner_of(outer), more, r = 0;
	struct cgf_lpm_key k, next, *keys = NULL;
	size_t n = 0, cap = 0, i;
	char buf[64];

	*count = 0;
	if (inner < 0)
		return inner;
	if (type == CGF_T_EXE) {
		struct cgf_exe_id ek, en;
		char (*paths)[CGF_EXE_PATH_MAX] = NULL;

		for (more = cgf_next_key(inner, NULL, &en); more > 0; more = cgf_next_key(inner, &ek, &en)) {
			ek = en;
			if (n == cap) {
				char (*p)[CGF_EXE_PATH_MAX] = realloc(paths, (cap = cap ? cap * 2 : 16) * sizeof(*p));

				if (!p) {
					more = -ENOMEM;
					break;
				}
				paths = p;
			}
			if (!bpf_map_lookup_elem(inner, &ek, paths[n]))
				n++;
		}
		close(inner);
		if (more < 0) {
			free(paths);
			return more;
		}
		qsort(paths, n, sizeof(*paths), (int (*)(const void *, const void *))strcmp);
		*count = n;
		for (i = 0; i < n && !r && fn; i++)
			r = fn(paths[i], ctx);
		free(paths);
		return 0;
	}
	if (type == CGF_T_INT) {
		uint64_t *w = calloc(CGF_BITMAP_BYTES, 1);
		uint32_t zero = 0, v = 0;

		if (!w || bpf_map_lookup_elem(inner, &zero, w)) {
			r = w ? -errno : -ENOMEM;
			free(w);
			close(inner);
			return r;
		}
		while (v < 65536) {
			uint32_t lo;

			if (!(w[v / 64] >> (v % 64) & 1)) {
				v++;
				continue;
			}
			for (lo = v; v < 65536 && (w[v / 64] >> (v % 64) & 1); v++)
				(*count)++;
			if (lo == v - 1)
				snprintf(buf, sizeof(buf), "%u", lo);
			else
				snprintf(buf, sizeof(buf), "%u..%u", lo, v - 1);
			if (!r && fn)
				r = fn(buf, ctx);
		}
		free(w);
		close(inner);
		return 0;
	}
	for (more = cgf_next_key(inner, NULL, &next); more > 0; more = cgf_next_key(inner, &k, &next)) {
		k = next;
		if (k.family == CGF_LPM_NAMES) /* host names, not addresses */
			continue;
		if (n == cap) {
			struct cgf_lpm_key *p = realloc(keys, (cap = cap ? cap * 2 : 256) * sizeof(*p));

			if (!p) {
				more = -ENOMEM;
				break;
			}
			keys = p;
		}
		keys[n++] = k;
	}
	close(inner);
	if (more < 0) {
		free(keys);
		return more;
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	*count = n;
	for (i = 0; i < n && !r && fn; i++) {
		struct cgf_cidr c = { .family = keys[i].family, .plen = (uint8_t)(keys[i].prefixlen - 32) };

		memcpy(c.addr, keys[i].addr, 16);
		cgf_format_cidr(&c, buf, sizeof(buf));
		r = fn(buf, ctx);
	}
	free(keys);
	return 0;
}

/* ---- address sets with host names ----------------------------------------------- */

/* A set of trie keys: sorted and unique after keys_settle. */
struct keys {
	struct cgf_lpm_key *v;
	size_t n, cap;
};

static int keys_add(struct keys *k, const struct cgf_lpm_key *key)
{
	if (!cgf_grow((void **)&k->v, k->n, &k->cap, sizeof(*k->v), 64))
		return -ENOMEM;
	k->v[k->n++] = *key;
	return 0;
}

static void keys_settle(struct keys *k)
{
	size_t i, j;

	qsort(k->v, k->n, sizeof(*k->v), cmp_key);
	for (i = j = 0; i < k->n; i++)
		if (!j || cmp_key(&k->v[j - 1], &k->v[i]))
			k->v[j++] = k->v[i];
	k->n = j;
}

static struct cgf_lpm_key *keys_find(const struct keys *k, const struct cgf_lpm_key *key)
{
	return k->n ? bsearch(key, k->v, k->n, sizeof(*k->v), cmp_key) : NULL;
}

/* Remove key (sorted order kept); false if it was not there. */
static bool keys_del(struct keys *k, const struct cgf_lpm_key *key)
{
	struct cgf_lpm_key *p = keys_find(k, key);

	if (!p)
		return false;
	memmove(p, p + 1, (size_t)(k->v + k->n - p - 1) * sizeof(*p));
	k->n--;
	return true;
}

#define PLUS "+"        /* the names' addresses also added by themselves */

static bool is_name_entry(const struct cgf_name *n)
{
	return strcmp(n->name, PLUS) != 0;
}

/* The addresses of t's names (sorted, unique). */
static int names_owned(const struct cgf_names *t, struct keys *out)
{
	size_t i, j;

	for (i = 0; i < t->n; i++)
		for (j = 0; is_name_entry(&t->v[i]) && j < t->v[i].n; j++) {
			struct cgf_lpm_key k;

			lpm_key_of(&t->v[i].addrs[j], &k);
			if (keys_add(out, &k))
				return -ENOMEM;
		}
	keys_settle(out);
	return 0;
}

static int cmp_index(const void *x, const void *y)
{
	const struct cgf_lpm_key *a = x, *b = y;

	return memcmp(a->pad, b->pad, sizeof(a->pad));
}

/* The trie's addresses (lits) and its names (t), read from inner. */
static int read_addr_set(int inner, struct keys *lits, struct cgf_names *t)
{
	struct cgf_lpm_key k, next;
	struct keys rec = { 0 };
	char *text = NULL;
	int more, r = 0;
	size_t i;

	memset(t, 0, sizeof(*t));
	for (more = cgf_next_key(inner, NULL, &next); more > 0 && !r; more = cgf_next_key(inner, &k, &next)) {
		k = next;
		r = keys_add(k.family == CGF_LPM_NAMES ? &rec : lits, &k);
	}
	if (more < 0)
		r = more;
	/* the records by index */
	qsort(rec.v, rec.n, sizeof(*rec.v), cmp_index);
	if (!r && rec.n && !(text = calloc(rec.n * 16 + 1, 1)))
		r = -ENOMEM;
	for (i = 0; !r && i < rec.n; i++)
		memcpy(text + i * 16, rec.v[i].addr, 16);
	if (!r && text)
		r = cgf_names_parse(text, t);
	free(text);
	free(rec.v);
	keys_settle(lits);
	return r;
}

/* Fill a new trie: the keys, then t as records. */
static int write_addr_set(int inner, const struct keys *keys, const struct cgf_names *t)
{
	char *text = t->n ? cgf_names_format(t) : NULL;
	uint8_t one = 1;
	size_t i, len;
	int r = 0;

	if (t->n && !text)
		return -ENOMEM;
	len = text ? strlen(text) : 0;
	if (keys->n + (len + 15) / 16 > CGF_LPM_MAX_PREFIXES) {
		free(text);
		return -E2BIG;
	}
	for (i = 0; i < keys->n && !r; i++)
		if (bpf_map_update_elem(inner, &keys->v[i], &one, BPF_ANY))
			r = -errno;
	for (i = 0; !r && i * 16 < len; i++) {
		struct cgf_lpm_key k = { .prefixlen = 32 + 128, .family = CGF_LPM_NAMES,
					 .pad = { (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i } };

		memcpy(k.addr, text + i * 16, len - i * 16 < 16 ? len - i * 16 : 16);
		if (bpf_map_update_elem(inner, &k, &one, BPF_ANY))
			r = -errno;
	}
	free(text);
	return r;
}

/*
 * What an address set holds from what is added by itself (lits) and by
 * names (t, its PLUS entry ignored): both, and t's PLUS made the addresses
 * in both; keys: the union.
 */
static int addr_set_union(const struct keys *lits, struct cgf_names *t, struct keys *keys)
{
	struct keys owned = { 0 }, plus = { 0 };
	struct cgf_cidr *pa = NULL;
	size_t i, np = 0, cap = 0;
	int r;

	cgf_names_del(t, PLUS);
	r = names_owned(t, &owned);
	for (i = 0; !r && i < lits->n; i++) {
		r = keys_add(keys, &lits->v[i]);
		if (!r && keys_find(&owned, &lits->v[i]))
			r = keys_add(&plus, &lits->v[i]);
	}
	for (i = 0; !r && i < owned.n; i++)
		r = keys_add(keys, &owned.v[i]);
	keys_settle(keys);
	for (i = 0; !r && i < plus.n; i++) {
		if (!cgf_grow((void **)&pa, np, &cap, sizeof(*pa), 8)) {
			r = -ENOMEM;
			break;
		}
		memset(&pa[np], 0, sizeof(pa[np]));
		pa[np].family = plus.v[i].family;
		pa[np].plen = (uint8_t)(plus.v[i].prefixlen - 32);
		memcpy(pa[np].addr, plus.v[i].addr, 16);
		np++;
	}
	if (!r && np)
		r = cgf_names_put(t, PLUS, 0, pa, np);
	free(pa);
	free(owned.v);
	free(plus.v);
	return r;
}

/* Split the trie's keys into what was added by itself (lits) and t. */
static int addr_set_split(struct keys *lits, const struct cgf_names *t)
{
	struct keys owned = { 0 };
	const struct cgf_name *plus = cgf_names_find(t, PLUS);
	struct keys mine = { 0 };
	size_t i;
	int r = names_owned(t, &owned);

	for (i = 0; !r && i < lits->n; i++) {
		bool keep = !keys_find(&owned, &lits->v[i]);

		for (size_t j = 0; !keep && plus && j < plus->n; j++) {
			struct cgf_lpm_key k;

			lpm_key_of(&plus->addrs[j], &k);
			keep = !cmp_key(&k, &lits->v[i]);
		}
		if (keep)
			r = keys_add(&mine, &lits->v[i]);
	}
	free(owned.v);
	free(lits->v);
	*lits = mine;
	return r;
}

/* A new trie with lits and t's names (the switch is the caller's). */
static int addr_set_make(struct keys *lits, struct cgf_names *t, int *inner)
{
	struct keys keys = { 0 };
	int r = addr_set_union(lits, t, &keys);

	*inner = -1;
	if (!r) {
		*inner = inner_new(CGF_T_ADDR);
		r = *inner < 0 ? *inner : write_addr_set(*inner, &keys, t);
	}
	free(keys.v);
	return r;
}

/* The edit of an address set: items (s) and host names (hosts) added or
 * removed, into a new trie *inner built from old (-1: a new set). */
static int addr_set_edit(int old, const struct cgf_set *s, char **hosts, int nhosts, bool add,
			 int *inner)
{
	struct cgf_names t = { .policy = CGF_NAMES_RESOLVE };
	struct keys lits = { 0 };
	size_t i;
	int r = old >= 0 ? read_addr_set(old, &lits, &t) : 0;

	if (!r)
		r = addr_set_split(&lits, &t);
	keys_settle(&lits);
	for (i = 0; !r && i < s->n; i++) {
		struct cgf_lpm_key k;
		char buf[64];

		lpm_key_of(&s->cidrs[i], &k);
		if (add) {
			r = keys_add(&lits, &k);
		} else if (!keys_del(&lits, &k)) {
			struct keys owned = { 0 };

			/* (one a host name gives is said below, if it stays) */
			cgf_format_cidr(&s->cidrs[i], buf, sizeof(buf));
			r = names_owned(&t, &owned);
			if (!r && !keys_find(&owned, &k))
				cgf_note("%s was not in the set", buf);
			free(owned.v);
		}
	}
	keys_settle(&lits);
	for (i = 0; !r && i < (size_t)nhosts; i++) {
		struct cgf_cidr *a;
		size_t n;
		char why[300];

		if (!add) {
			if (!cgf_names_find(&t, hosts[i]))
				cgf_note("%s was not in the set", hosts[i]);
			cgf_names_del(&t, hosts[i]);
			continue;
		}
		if (cgf_resolve_host(hosts[i], &a, &n, why, sizeof(why))) {
			cgf_err("%s; nothing was changed", why);
			r = -EINVAL;
			break;
		}
		r = cgf_names_put(&t, hosts[i], cgf_name_expiry(hosts[i]), a, n);
		free(a);
	}
	if (!r)
		r = addr_set_make(&lits, &t, inner);
	if (!r && !add) { /* deleted, or not there, and a host name gives it */
		struct keys owned = { 0 };

		r = names_owned(&t, &owned);
		for (i = 0; !r && i < s->n; i++) {
			struct cgf_lpm_key k;
			char buf[64];

			lpm_key_of(&s->cidrs[i], &k);
			cgf_format_cidr(&s->cidrs[i], buf, sizeof(buf));
			if (keys_find(&owned, &k))
				cgf_note("%s stays in the set while a host name in it has that address", buf);
		}
		free(owned.v);
		if (r) {
			close(*inner);
			*inner = -1;
		}
	}
	free(lits.v);
	cgf_names_free(&t);
	return r;
}

int cgf_set_names(int outer, struct cgf_names *t)
{
	struct keys lits = { 0 };
	int inner = inner_of(outer), r;

	memset(t, 0, sizeof(*t));
	if (inner < 0)
		return inner;
	r = read_addr_set(inner, &lits, t);
	close(inner);
	free(lits.v);
	if (!r)
		cgf_names_del(t, PLUS);
	return r;
}

struct refresh_ctx {
	struct cgf_engine *e;
	bool force;
	int changed, r;
};

/* refresh of one set: its names resolved again if due, in one update. */
static int refresh_set(const char *name, int outer, enum cgf_type type, void *ctx)
{
	struct refresh_ctx *c = ctx;
	struct cgf_names t = { 0 }, names = { .old = &t, .policy = c->force ? CGF_NAMES_FORCE : CGF_NAMES_DUE };
	struct keys lits = { 0 };
	uint32_t zero = 0;
	int old, inner = -1, r;
	size_t i;

	if (type != CGF_T_ADDR)
		return 0;
	old = inner_of(outer);
	r = old < 0 ? old : read_addr_set(old, &lits, &t);
	if (old >= 0)
		close(old);
	if (!r)
		r = addr_set_split(&lits, &t);
	cgf_names_del(&t, PLUS);
	if (r || !cgf_names_due(&t, c->force))
		goto out;
	for (i = 0; !r && i < t.n; i++) {
		struct cgf_cidr *a = NULL;
		size_t n;
		char why[300];

		if (cgf_names_get(&names, t.v[i].name, &a, &n, why, sizeof(why)))
			r = -EINVAL;
		free(a);
	}
	if (!r)
		r = addr_set_make(&lits, &names, &inner);
	if (!r && bpf_map_update_elem(outer, &zero, &inner, BPF_ANY))
		r = -errno;
	if (!r)
		c->changed++;
out:
	if (r)
		cgf_err("cannot refresh the names of @%s of %s: %s; it is unchanged", name,
			c->e->pin, strerror(-r));
	if (inner >= 0)
		close(inner);
	free(lits.v);
	cgf_names_free(&t);
	cgf_names_free(&names);
	if (r && !c->r)
		c->r = r;
	return 0;
}

int cgf_set_refresh(struct cgf_engine *e, bool force, int *changed)
{
	struct refresh_ctx c = { .e = e, .force = force };
	struct dirent **names;
	int n, i, r;

	/* every set pinned (one that cannot be opened is said: cgf_set_each
	 * would pass over it) */
	n = scandir(e->dir, &names, NULL, alphasort);
	if (n < 0) {
		r = -errno;
		cgf_err("cannot read the sets of %s: %s", e->pin, strerror(-r));
		return r;
	}
	for (i = 0; i < n; i++) {
		const char *f = names[i]->d_name, *name = f + strlen(SET_PREFIX);
		enum cgf_type type;
		int outer;

		if (!strncmp(f, SET_PREFIX, strlen(SET_PREFIX))) {
			r = cgf_set_open(e, name, &outer, &type);
			if (r) {
				cgf_err("cannot open set @%s of %s: %s", name, e->pin, strerror(-r));
				c.r = c.r ? c.r : r;
			} else {
				refresh_set(name, outer, type, &c);
				close(outer);
			}
		}
		free(names[i]);
	}
	free(names);
	*changed += c.changed;
	return c.r;
}

/* A declared set's contents with its host names (s->hosts): a new trie. */
static int addr_set_new(const struct cgf_set *s, int *inner)
{
	struct cgf_names t = { 0 };
	struct keys lits = { 0 };
	size_t i, h;
	int r = 0;

	for (i = 0; !r && i < s->n; i++) {
		struct cgf_lpm_key k;
		bool named = false;

		for (h = 0; h < s->nhosts; h++)
			named |= i >= s->hosts[h].first && i < s->hosts[h].first + s->hosts[h].n;
		lpm_key_of(&s->cidrs[i], &k);
		if (!named)
			r = keys_add(&lits, &k);
	}
	keys_settle(&lits);
	for (h = 0; !r && h < s->nhosts; h++)
		r = cgf_names_put(&t, s->hosts[h].name, cgf_name_expiry(s->hosts[h].name),
				  s->cidrs + s->hosts[h].first, s->hosts[h].n);
	if (!r)
		r = addr_set_make(&lits, &t, inner);
	free(lits.v);
	cgf_names_free(&t);
	return r;
}

/* ---- dynamic sets: maps of the filter program ----------------------------------- */

/* The entries of one dynamic set's map, those not expired at now. */
static int dyn_entries(int fd, const struct bpf_map_info *mi, uint64_t now,
		       int (*fn)(unsigned int idx, const char *item, uint64_t left_ns, void *ctx),
		       unsigned int idx, void *ctx)
{
	uint8_t key[24], next[24];
	uint64_t expiry;
	char item[64];
	uint64_t steps = 2 * (uint64_t)mi->max_entries + 16;
	int more, r = 0;

	/* bounded: a key the filter removed meanwhile restarts the walk */
	more = cgf_next_key(fd, NULL, next);
	while (more > 0 && !r && steps--) {
		memcpy(key, next, sizeof(key));
		if (!bpf_map_lookup_elem(fd, key, &expiry) && expiry > now) {
			if (mi->key_size == 8) {
				uint64_t v;

				memcpy(&v, key, 8);
				snprintf(item, sizeof(item), "%llu", (unsigned long long)v);
			} else {
				struct cgf_cidr c = { .family = key[0] };

				c.plen = c.family == 4 ? 32 : 128;
				memcpy(c.addr, key + 8, 16);
				cgf_format_cidr(&c, item, sizeof(item));
			}
			r = fn(idx, item, expiry - now, ctx);
		}
		more = cgf_next_key(fd, key, next);
	}
	/* (steps run out: it changes faster than it can be read) */
	return r ? r : more < 0 ? more : more > 0 ? -EAGAIN : 0;
}

int cgf_dyn_each(uint32_t prog_id,
		 int (*fn)(unsigned int idx, const char *item, uint64_t left_ns, void *ctx), void *ctx)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info), n, i, *ids = NULL;
	int prog = bpf_prog_get_fd_by_id(prog_id), r = 0;
	struct timespec ts;
	uint64_t now;

	if (prog < 0)
		return -errno;
	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (bpf_obj_get_info_by_fd(prog, &info, &len)) {
		r = -errno;
		goto out;
	}
	n = info.nr_map_ids;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids) {
		r = -ENOMEM;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = n;
	info.map_ids = (uint64_t)(unsigned long)ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog, &info, &len)) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < info.nr_map_ids && i < n && !r; i++) {
		struct bpf_map_info mi = {};
		uint32_t ml = sizeof(mi);
		unsigned int idx;
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0) { /* (the program holds its maps: not gone) */
			r = -errno;
			break;
		}
		if (!bpf_obj_get_info_by_fd(fd, &mi, &ml) && mi.type == BPF_MAP_TYPE_LRU_HASH &&
		    sscanf(mi.name, "cgf_dyn%u", &idx) == 1 && (mi.key_size == 8 || mi.key_size == 24) &&
		    mi.value_size == 8)
			r = dyn_entries(fd, &mi, now, fn, idx, ctx);
		close(fd);
	}
out:
	free(ids);
	close(prog);
	return r;
}
