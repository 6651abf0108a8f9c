// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter: load the cgfilter engine (cgfilter.bpf.c, built into this
 * binary) as a pinned cgroup_skb program and set, change and watch its
 * filter at run time through its maps.  See cgfilter(8).
 *
 * Layout of a loaded filter at PIN:
 *   PIN          the program (what IPIngressFilterPath= names)
 *   PIN_maps/    its maps (map_names[] below; cgfilter(8) says what each
 *                holds)
 * Commands that change a filter hold an flock on PIN_maps/, so two of them
 * never interleave.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgf_engine.h"
#include "compile.h"
#include "expr.h"
#include "cgfilter.skel.h"

#define PROG "cgfilter"
/* the "text" map holds the longest text the parser takes */
_Static_assert((unsigned long long)CGF_TEXT_CHUNKS * CGF_TEXT_CHUNK == CGF_EXPR_MAX_TEXT,
	       "the text map must hold CGF_EXPR_MAX_TEXT bytes");

static int verbose;
static volatile sig_atomic_t stop;

/* ---- messages ------------------------------------------------------------ */

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- JSON ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	if (!n || (n == 4 && s[0] > 0xf4))
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong or surrogate forms */
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* s as a JSON string: quotes, backslashes and control characters escaped,
 * valid UTF-8 kept, any other byte as the code point of the same value (a
 * path on Linux is bytes, a JSON string is Unicode). */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);

		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p);
		} else if (*p == '\n') {
			fputs("\\n", f);
		} else if (*p == '\t') {
			fputs("\\t", f);
		} else if (*p < 0x20 || *p == 0x7f || !n) {
			fprintf(f, "\\u%04x", *p);
			n = 1;
		} else {
			fwrite(p, 1, n, f);
		}
		p += n ? n : 1;
	}
	fputc('"', f);
}

/* libbpf's messages: shown with -v, else kept to show if a load fails. */
static char *libbpf_log;
static size_t libbpf_log_len;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf = NULL;
	int n;

	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	/* whole, however long: a verifier log says why at its end */
	n = vasprintf(&buf, fmt, ap);
	if (n < 0)
		return 0;
	if (verbose) {
		fputs(buf, stderr);
	} else if (libbpf_log_len + n < (64u << 20)) {
		char *p = realloc(libbpf_log, libbpf_log_len + n + 1);

		if (p) {
			memcpy(p + libbpf_log_len, buf, n + 1);
			libbpf_log = p;
			libbpf_log_len += n;
		}
	}
	free(buf);
	return n;
}

/* ---- reading a filter ------------------------------------------------------ */

static char *read_file(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	size_t len = 0, cap = 0;
	char *buf = NULL;

	if (!f) {
		err("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len + 4096 + 1 > cap) {
			char *p;

			cap = cap ? cap * 2 : 65536;
			p = realloc(buf, cap);
			if (!p) {
				err("cannot read %s: out of memory", path);
				goto fail;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len > CGF_EXPR_MAX_TEXT) {
			err("cannot read %s: larger than %u bytes", path, CGF_EXPR_MAX_TEXT);
			goto fail;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		err("cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	buf[len] = 0;
	if (strlen(buf) != len) {
		err("cannot read %s: it contains a NUL byte", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	return buf;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

static void print_parse_error(const char *text, const struct cgf_error *e)
{
	char msg[400];

	cgf_error_format(e, msg, sizeof(msg));
	err("bad filter: %s", msg);
	cgf_error_show_place(stderr, text, e);
}

/* ---- a loaded engine -------------------------------------------------------- */

struct engine {
	char pin[PATH_MAX];
	char dir[PATH_MAX + 8];
	int prog, code, grace, ctl, shared_code, lpm, ahash, alens, bits, stats, events, meta, text;
	int sets, active;
	int lock;
	struct cgf_meta m;
};

static const char *const map_names[] = {
	"code", "grace", "shared_code", "lpm", "ahash", "alens", "bits", "stats", "events",
	"ratelimit", "ctl", "meta", "text", "sets", "active",
};

static void engine_close(struct engine *e)
{
	int *fds[] = { &e->prog, &e->code, &e->grace, &e->ctl, &e->shared_code, &e->lpm, &e->ahash,
		       &e->alens, &e->active, &e->bits, &e->stats,
		       &e->events, &e->meta, &e->text, &e->sets, &e->lock };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static void engine_init(struct engine *e)
{
	memset(e, 0, sizeof(*e));
	e->prog = e->code = e->grace = e->ctl = e->shared_code = e->lpm = e->bits = e->stats = -1;
	e->events = e->ahash = e->alens = e->active = -1;
	e->meta = e->text = e->sets = e->lock = -1;
}

static int set_paths(struct engine *e, const char *pin)
{
	size_t n = strlen(pin);

	while (n > 1 && pin[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(e->pin) - 16) {
		err("bad pin path '%s'", pin);
		return -EINVAL;
	}
	memcpy(e->pin, pin, n);
	e->pin[n] = 0;
	snprintf(e->dir, sizeof(e->dir), "%s_maps", e->pin);
	return 0;
}

static int open_map(struct engine *e, const char *name, int *fd)
{
	char path[PATH_MAX + 80];

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		int r = -errno;

		err("cannot open %s: %s (is %s a filter loaded by cgfilter?)", path, strerror(errno),
		    e->pin);
		return r;
	}
	return 0;
}

static int read_meta(struct engine *e)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(e->meta, &zero, &e->m) || e->m.magic != CGF_MAGIC) {
		err("%s: not a cgfilter engine (bad metadata)", e->pin);
		return -EINVAL;
	}
	return 0;
}

/* Open the filter at pin; lock it when the caller will change it. */
static int engine_open(struct engine *e, const char *pin, bool lock)
{
	int r;

	engine_init(e);
	r = set_paths(e, pin);
	if (r)
		return r;
	e->prog = bpf_obj_get(e->pin);
	if (e->prog < 0) {
		r = -errno;
		err("cannot open %s: %s", e->pin, strerror(errno));
		return r;
	}
	if (lock) {
		e->lock = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (e->lock < 0 || flock(e->lock, LOCK_EX)) {
			r = -errno;
			err("cannot lock %s: %s", e->dir, strerror(errno));
			goto fail;
		}
	}
	if ((r = open_map(e, "code", &e->code)) || (r = open_map(e, "grace", &e->grace)) ||
	    (r = open_map(e, "ctl", &e->ctl)) || (r = open_map(e, "lpm", &e->lpm)) ||
	    (r = open_map(e, "ahash", &e->ahash)) || (r = open_map(e, "alens", &e->alens)) ||
	    (r = open_map(e, "active", &e->active)) ||
	    (r = open_map(e, "bits", &e->bits)) || (r = open_map(e, "stats", &e->stats)) ||
	    (r = open_map(e, "events", &e->events)) || (r = open_map(e, "meta", &e->meta)) ||
	    (r = open_map(e, "text", &e->text)) || (r = open_map(e, "sets", &e->sets)) ||
	    (r = open_map(e, "shared_code", &e->shared_code)) || (r = read_meta(e)))
		goto fail;
	return 0;
fail:
	engine_close(e);
	return r;
}

static int write_meta(struct engine *e)
{
	struct timespec ts;
	__u32 zero = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	e->m.set_time_ns = (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	if (bpf_map_update_elem(e->meta, &zero, &e->m, BPF_ANY)) {
		int r = -errno;

		err("cannot update the metadata of %s: %s", e->pin, strerror(errno));
		return r;
	}
	return 0;
}

/* ---- map walks ---------------------------------------------------------------- */

#define MAX_KEY 128

/*
 * The key after cur (NULL: the first) of map fd: 1 with next filled in, 0
 * at the end of the map, -errno when the walk failed, which must never be
 * taken for the end (a set would look smaller than it is).
 */
static int next_key(int fd, const void *cur, void *next)
{
	if (!bpf_map_get_next_key(fd, cur, next))
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/*
 * Delete every key of map fd (key_size bytes) that drop() chooses.  The
 * keys are collected first and deleted after the walk: deleting during a
 * get_next_key walk of a hash map can restart or skip it.  drop() may do
 * its own work on a chosen key (free what it refers to).
 */
static void delete_keys(int fd, size_t key_size, bool (*drop)(const void *key, void *ctx),
			void *ctx)
{
	unsigned char cur[MAX_KEY], next[MAX_KEY], *del = NULL;
	size_t n = 0, cap = 0, i;
	int more;

	if (key_size > MAX_KEY)
		return;
	for (more = next_key(fd, NULL, next); more > 0;
	     more = next_key(fd, cur, next)) {
		memcpy(cur, next, key_size);
		if (!drop(cur, ctx))
			continue;
		if (n == cap) {
			unsigned char *p = realloc(del, (cap = cap ? cap * 2 : 256) * key_size);

			if (!p)
				break;
			del = p;
		}
		memcpy(del + n++ * key_size, cur, key_size);
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, del + i * key_size);
	free(del);
}

/* ---- stored filter text --------------------------------------------------- */

struct text_gc_ctx {
	__u64 owner;
	__u32 keep;     /* generation to keep; 0 keeps none */
};

static bool text_not_kept(const void *key, void *ctx)
{
	const struct cgf_text_key *k = key;
	const struct text_gc_ctx *c = ctx;

	return k->owner == c->owner && k->gen != c->keep;
}

/* Delete the texts of owner but that of generation keep (0: all of them). */
static void text_gc(struct engine *e, __u64 owner, __u32 keep)
{
	struct text_gc_ctx c = { .owner = owner, .keep = keep };

	delete_keys(e->text, sizeof(struct cgf_text_key), text_not_kept, &c);
}

static void text_delete(struct engine *e, __u64 owner, __u32 gen)
{
	struct cgf_text_key k = { .owner = owner, .gen = gen };

	for (k.chunk = 0; k.chunk < CGF_TEXT_CHUNKS; k.chunk++)
		if (bpf_map_delete_elem(e->text, &k))
			break;
}

/* Store the text of owner's filter of generation gen (a new one: nothing
 * shows it until that generation is in force). */
static int text_store(struct engine *e, __u64 owner, __u32 gen, const char *s)
{
	struct cgf_text_key k = { .owner = owner, .gen = gen };
	struct cgf_text_chunk c;
	size_t len = strlen(s), off;

	for (off = 0; off < len || off == 0; off += CGF_TEXT_CHUNK, k.chunk++) {
		size_t n = len - off < CGF_TEXT_CHUNK ? len - off : CGF_TEXT_CHUNK;

		memset(&c, 0, sizeof(c));
		c.len = (__u32)n;
		memcpy(c.data, s + off, n);
		if (bpf_map_update_elem(e->text, &k, &c, BPF_ANY)) {
			int r = -errno;

			err("cannot store the filter text in %s: %s", e->dir, strerror(errno));
			text_delete(e, owner, gen);
			return r;
		}
		if (len == 0)
			break;
	}
	return 0;
}

/* The text of owner's filter of generation gen; NULL if there is none. */
static char *text_load(struct engine *e, __u64 owner, __u32 gen)
{
	struct cgf_text_key k = { .owner = owner, .gen = gen };
	struct cgf_text_chunk c;
	size_t len = 0;
	char *s = NULL;

	for (k.chunk = 0; !bpf_map_lookup_elem(e->text, &k, &c); k.chunk++) {
		size_t n = c.len < CGF_TEXT_CHUNK ? c.len : CGF_TEXT_CHUNK;
		char *p = realloc(s, len + n + 1);

		if (!p)
			break;
		s = p;
		memcpy(s + len, c.data, n);
		len += n;
		s[len] = 0;
	}
	return s;
}

/* ---- sets -------------------------------------------------------------------- */

static void set_key(struct cgf_set_key *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_key(struct cgf_set_key *k, const char *fmt, ...)
{
	va_list ap;

	memset(k, 0, sizeof(*k));
	va_start(ap, fmt);
	vsnprintf(k->name, sizeof(k->name), fmt, ap);
	va_end(ap);
}

static int find_named_set(struct engine *e, const char *name, struct cgf_set_rec *rec)
{
	struct cgf_set_key k;

	set_key(&k, "@%s", name);
	return bpf_map_lookup_elem(e->sets, &k, rec) ? -ENOENT : 0;
}

static int lookup_cb(const char *name, enum cgf_type *type, void *ctx)
{
	struct cgf_set_rec rec;

	if (find_named_set(ctx, name, &rec))
		return -1;
	*type = rec.type ? CGF_T_ADDR : CGF_T_INT;
	return 0;
}

/*
 * A fresh address set id, never handed out before.  The next free id is
 * written to the engine before this one is used, so that no later command
 * can hand it out again, whatever becomes of this one.
 */
static int alloc_addr_id(struct engine *e, __u32 *id)
{
	struct cgf_meta m = e->m;
	__u32 zero = 0;

	m.next_addr_set++;
	if (!m.next_addr_set) {
		err("cannot add an address set to %s: all 2^32 address set ids were used (load it again)",
		    e->pin);
		return -ENOSPC;
	}
	if (bpf_map_update_elem(e->meta, &zero, &m, BPF_ANY)) {
		int r = -errno;

		err("cannot record a new address set in %s: %s", e->pin, strerror(errno));
		return r;
	}
	*id = e->m.next_addr_set++;
	return 0;
}

/* A free integer set id: not used by any set record nor by ids taken now. */
static int alloc_int_id(struct engine *e, const uint8_t *taken, __u32 *id)
{
	uint8_t *used = calloc(e->m.int_sets, 1);
	struct cgf_set_key k, next;
	struct cgf_set_rec rec;
	__u32 i;
	int more;

	if (!used)
		return -ENOMEM;
	for (more = next_key(e->sets, NULL, &next); more > 0;
	     more = next_key(e->sets, &k, &next)) {
		k = next;
		if (bpf_map_lookup_elem(e->sets, &k, &rec)) {
			more = -errno;
			break;
		}
		if (rec.type == 0 && rec.id < e->m.int_sets)
			used[rec.id] = 1;
	}
	if (more < 0) {
		/* not knowing which ids are used, take none */
		free(used);
		return more;
	}
	for (i = 0; i < e->m.int_sets; i++)
		if (!used[i] && !(taken && taken[i])) {
			*id = i;
			free(used);
			return 0;
		}
	free(used);
	return -ENOSPC;
}

static int bits_read(struct engine *e, __u32 id, __u64 *w)
{
	__u32 i;

	for (i = 0; i < CGF_BITS_WORDS; i++) {
		__u32 k = id * CGF_BITS_WORDS + i;

		if (bpf_map_lookup_elem(e->bits, &k, &w[i]))
			return -errno;
	}
	return 0;
}

static int bits_write(struct engine *e, __u32 id, const __u64 *w)
{
	__u32 keys[CGF_BITS_WORDS], count = CGF_BITS_WORDS, i;

	for (i = 0; i < CGF_BITS_WORDS; i++)
		keys[i] = id * CGF_BITS_WORDS + i;
	if (!bpf_map_update_batch(e->bits, keys, w, &count, NULL))
		return 0;
	for (i = 0; i < CGF_BITS_WORDS; i++)
		if (bpf_map_update_elem(e->bits, &keys[i], &w[i], BPF_ANY))
			return -errno;
	return 0;
}

static void bits_set_range(__u64 *w, uint64_t lo, uint64_t hi, bool on)
{
	uint64_t v;

	for (v = lo; v <= hi && v <= 65535; v++) {
		if (on)
			w[v >> 6] |= 1ULL << (v & 63);
		else
			w[v >> 6] &= ~(1ULL << (v & 63));
	}
}

static __u64 bits_count(const __u64 *w)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < CGF_BITS_WORDS; i++)
		n += __builtin_popcountll(w[i]);
	return n;
}

static void lpm_key(struct cgf_lpm_key *k, __u32 id, const struct cgf_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + c->plen;
	k->tag = id * 2 + (c->family == 6);
	memcpy(k->addr, c->addr, c->family == 6 ? 16 : 4);
}

static void ahash_key(struct cgf_ahash_key *k, __u32 id, const struct cgf_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->tag = id * 2 + (c->family == 6);
	k->plen = c->plen;
	memcpy(k->addr, c->addr, c->family == 6 ? 16 : 4);
}

/* Add a prefix to address set id: to the trie and to the hashes. */
static int lpm_add(struct engine *e, __u32 id, const struct cgf_cidr *c)
{
	struct cgf_ahash_key hk;
	struct cgf_lpm_key k;
	__u8 one = 1;

	int r;

	lpm_key(&k, id, c);
	ahash_key(&hk, id, c);
	if (bpf_map_update_elem(e->lpm, &k, &one, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(e->ahash, &hk, &one, BPF_ANY)) {
		r = -errno;
		bpf_map_delete_elem(e->lpm, &k);
		return r;
	}
	return 0;
}

static bool lpm_has(struct engine *e, __u32 id, const struct cgf_cidr *c)
{
	struct cgf_lpm_key k;
	__u8 v;

	lpm_key(&k, id, c);
	return !bpf_map_lookup_elem(e->lpm, &k, &v);
}

/* How many prefixes the address sets of e can hold in all (--lpm-entries). */
static __u32 lpm_capacity(struct engine *e)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(e->lpm, &info, &len) ? 0 : info.max_entries;
}

/* The message for a prefix that does not fit. */
static void err_full(struct engine *e, const char *item, const char *set, int r)
{
	const char *at = set[0] == '(' ? "" : "@";

	if (r == -E2BIG || r == -ENOSPC || r == -ENOMEM)
		err("cannot add %s to %s%s: the address sets of %s are full: they hold at most %u prefixes in all (--lpm-entries when it was loaded)",
		    item, at, set, e->pin, lpm_capacity(e));
	else
		err("cannot add %s to %s%s: %s", item, at, set, strerror(-r));
}

/* Remove a prefix from address set id; -ENOENT if it was not there. */
static int lpm_del(struct engine *e, __u32 id, const struct cgf_cidr *c)
{
	struct cgf_ahash_key hk;
	struct cgf_lpm_key k;
	int r = 0;

	lpm_key(&k, id, c);
	ahash_key(&hk, id, c);
	if (bpf_map_delete_elem(e->lpm, &k))
		r = -errno;
	bpf_map_delete_elem(e->ahash, &hk);
	return r;
}

/*
 * Write which prefix lengths address set id holds, per family, so that the
 * engine knows which hashes to look in (after adding, before nothing: a
 * length listed before its prefixes are in only misses).
 */
static int alens_rebuild(struct engine *e, __u32 id, __u64 *nelem)
{
	unsigned int count[2][129];
	struct cgf_lpm_key k, next;
	int more, f;

	memset(count, 0, sizeof(count));
	for (more = next_key(e->lpm, NULL, &next); more > 0;
	     more = next_key(e->lpm, &k, &next)) {
		k = next;
		if (k.tag / 2 == id && k.prefixlen >= 32 && k.prefixlen - 32 <= 128)
			count[k.tag & 1][k.prefixlen - 32]++;
	}
	if (more < 0)
		return more; /* a half walk would index a set smaller than it is */
	if (nelem) {
		*nelem = 0;
		for (f = 0; f < 2; f++)
			for (int len = 0; len <= 128; len++)
				*nelem += count[f][len];
	}
	for (f = 0; f < 2; f++) {
		struct cgf_alens l;
		__u32 tag = id * 2 + f;
		int len, n = 0;

		memset(&l, 0, sizeof(l));
		for (len = 128; len >= 0; len--) {
			int w;

			if (!count[f][len])
				continue;
			if (n < CGF_MAX_PLENS) {
				l.len[n] = (__u8)len;
				for (w = 0; w < 4; w++) {
					int bits = len - w * 32;

					l.mask[n][w] = bits >= 32 ? 0xffffffffu :
						       bits <= 0  ? 0 :
						       htonl(0xffffffffu << (32 - bits));
				}
			}
			n++;
		}
		if (!n) {
			bpf_map_delete_elem(e->alens, &tag);
			continue;
		}
		l.n = n <= CGF_MAX_PLENS ? (__u8)n : CGF_PLENS_LPM;
		if (bpf_map_update_elem(e->alens, &tag, &l, BPF_ANY))
			return -errno;
	}
	return 0;
}

static bool lpm_key_in_set(const void *key, void *ctx)
{
	return ((const struct cgf_lpm_key *)key)->tag / 2 == *(__u32 *)ctx;
}

static bool ahash_key_in_set(const void *key, void *ctx)
{
	return ((const struct cgf_ahash_key *)key)->tag / 2 == *(__u32 *)ctx;
}

/* Remove every element of address set id. */
static void lpm_clear(struct engine *e, __u32 id)
{
	__u32 tag;

	/* first the lengths: the set then reads as empty */
	for (tag = id * 2; tag <= id * 2 + 1; tag++)
		bpf_map_delete_elem(e->alens, &tag);
	delete_keys(e->lpm, sizeof(struct cgf_lpm_key), lpm_key_in_set, &id);
	delete_keys(e->ahash, sizeof(struct cgf_ahash_key), ahash_key_in_set, &id);
}

/* Free the storage of a set record (after no program can use it). */
static void set_free(struct engine *e, const struct cgf_set_rec *rec)
{
	if (rec->type) {
		lpm_clear(e, rec->id);
	} else if (rec->id < e->m.int_sets) {
		static __u64 zero[CGF_BITS_WORDS];

		bits_write(e, rec->id, zero);
	}
}

/* Fill a new set's storage with the elements of s. */
static int set_fill(struct engine *e, const struct cgf_set *s, __u64 *nelem)
{
	size_t i;
	int r;

	if (s->type == CGF_T_ADDR) {
		for (i = 0; i < s->n; i++) {
			r = lpm_add(e, (__u32)s->id, &s->cidrs[i]);
			if (r) {
				char item[64];

				cgf_format_cidr(&s->cidrs[i], item, sizeof(item));
				err_full(e, item, s->name[0] ? s->name : "(a literal set)", r);
				return r;
			}
		}
		r = alens_rebuild(e, (__u32)s->id, nelem);
		if (r) {
			err("cannot index an address set of %s: %s", e->pin, strerror(-r));
			return r;
		}
		return 0;
	}
	{
		__u64 *w = calloc(CGF_BITS_WORDS, sizeof(*w));

		if (!w)
			return -ENOMEM;
		for (i = 0; i < s->n; i++)
			bits_set_range(w, s->ranges[i].lo, s->ranges[i].hi, true);
		*nelem = bits_count(w);
		r = bits_write(e, (__u32)s->id, w);
		free(w);
		if (r)
			err("cannot fill an integer set of %s: %s", e->pin, strerror(-r));
		return r;
	}
}

/*
 * New storage for the sets of a new filter: literal sets and declared named
 * sets get fresh ids (the running filter keeps the old ones until the swap);
 * named sets that are only referenced keep theirs.  New records are written
 * under the keys in new_keys, to be committed or rolled back.
 */
struct new_set {
	struct cgf_set_key key;
	struct cgf_set_rec rec;
};

static int sets_prepare(struct engine *e, struct cgf_expr *x, __u64 owner,
			struct new_set **out, size_t *nout)
{
	uint8_t *taken = calloc(e->m.int_sets ? e->m.int_sets : 1, 1);
	struct new_set *ns = NULL;
	struct cgf_set *s;
	size_t n = 0, lit = 0;
	int r = 0;

	if (!taken)
		return -ENOMEM;
	cgf_mark_inline_sets(x);
	for (s = x->sets; s; s = s->next) {
		struct cgf_set_rec old;
		struct new_set *p;

		if (s->inlined)
			continue;
		if (s->name[0] && !s->declared) {
			if (find_named_set(e, s->name, &old)) {
				err("unknown set @%s", s->name);
				r = -ENOENT;
				goto out;
			}
			s->id = old.id;
			continue;
		}
		p = realloc(ns, (n + 1) * sizeof(*ns));
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		ns = p;
		memset(&ns[n], 0, sizeof(ns[n]));
		if (s->type == CGF_T_INT) {
			__u32 id;

			r = alloc_int_id(e, taken, &id);
			if (r == -ENOSPC) {
				err("cannot add a set to %s: all %u integer sets are in use (--int-sets when it was loaded)",
				    e->pin, e->m.int_sets);
				goto out;
			} else if (r) {
				err("cannot read the sets of %s: %s", e->pin, strerror(-r));
				goto out;
			}
			taken[id] = 1;
			s->id = id;
		} else {
			__u32 id;

			r = alloc_addr_id(e, &id);
			if (r)
				goto out;
			s->id = id;
		}
		ns[n].rec.id = (__u32)s->id;
		ns[n].rec.type = s->type == CGF_T_ADDR;
		ns[n].rec.owner = s->name[0] ? 0 : owner;
		if (s->name[0])
			set_key(&ns[n].key, "@%s", s->name);
		else if (owner)
			set_key(&ns[n].key, "#%" PRIu64 ":%c%zu", (uint64_t)owner, s->type ? 'a' : 'i', lit++);
		else
			set_key(&ns[n].key, "#%c%zu", s->type ? 'a' : 'i', lit++);
		r = set_fill(e, s, &ns[n].rec.nelem);
		n++;
		if (r)
			goto out;
	}
out:
	free(taken);
	if (r) {
		size_t i;

		for (i = 0; i < n; i++)
			set_free(e, &ns[i].rec);
		free(ns);
		return r;
	}
	*out = ns;
	*nout = n;
	return 0;
}

struct commit_ctx {
	struct engine *e;
	__u64 owner;
	const struct new_set *ns;
	size_t n;
	bool free_old;  /* no packet can run the old filter any more */
};

/* Free a replaced set; drop its record if it was a literal set of owner. */
static bool replaced_set(const void *key, void *ctx)
{
	const struct cgf_set_key *k = key;
	struct commit_ctx *c = ctx;
	struct cgf_set_rec rec;
	bool literal_of_owner, redeclared = false;
	size_t i;

	if (bpf_map_lookup_elem(c->e->sets, k, &rec))
		return false;
	literal_of_owner = k->name[0] == '#' && rec.owner == c->owner;
	for (i = 0; i < c->n && !literal_of_owner; i++)
		if (k->name[0] == '@' && !strcmp(c->ns[i].key.name, k->name))
			redeclared = true;
	if ((literal_of_owner || redeclared) && c->free_old)
		set_free(c->e, &rec);
	return literal_of_owner;
}

/*
 * After the swap: free the replaced sets (literal sets of this owner that are
 * not in the new list, and old storage of redeclared named sets) and write
 * the new records.  Without free_old (no grace period could be waited for),
 * the old storage is left allocated: a packet may still be reading it, and
 * address set ids are never handed out again.
 */
static void sets_commit(struct engine *e, __u64 owner, const struct new_set *ns, size_t n,
			bool free_old)
{
	struct commit_ctx c = { .e = e, .owner = owner, .ns = ns, .n = n, .free_old = free_old };
	size_t i;

	delete_keys(e->sets, sizeof(struct cgf_set_key), replaced_set, &c);
	for (i = 0; i < n; i++)
		bpf_map_update_elem(e->sets, &ns[i].key, &ns[i].rec, BPF_ANY);
}

/* ---- compiling ---------------------------------------------------------------- */

/* Parse text for engine e (or for no engine); print errors. */
static int parse_filter(const char *text, struct engine *e, bool decls, struct cgf_expr **x)
{
	struct cgf_parse_opts o = {
		.dialect = CGF_DIALECT_FULL,
		.lookup_set = e ? lookup_cb : NULL,
		.lookup_ctx = e,
		.allow_decls = decls,
	};
	struct cgf_error pe;
	int r = cgf_expr_parse(text, &o, x, &pe);

	if (r == -EINVAL)
		print_parse_error(text, &pe);
	else if (r)
		err("cannot parse the filter: %s", strerror(-r));
	return r;
}

static int compile_filter(struct cgf_expr *x, struct cgf_code *code)
{
	char why[200];
	int r = cgf_compile(x, code, why, sizeof(why));

	if (r)
		err("cannot compile the filter: %s", why);
	return r;
}

/*
 * The grace period: an update of an array of maps returns only after an RCU
 * grace period, when no program can still be running an old filter.  The
 * inner map is opened before anything changes (grace_open), so that no
 * failure to open it (say, a full fd table) can come after the switch.
 */
static int grace_open(struct engine *e)
{
	__u32 zero = 0, id;
	int fd;

	if (bpf_map_lookup_elem(e->grace, &zero, &id) || (fd = bpf_map_get_fd_by_id(id)) < 0) {
		int r = -errno;

		err("cannot prepare the switch of %s's filter: %s", e->pin, strerror(errno));
		return r;
	}
	return fd;
}

static int grace_wait(struct engine *e, int inner)
{
	__u32 zero = 0;

	return bpf_map_update_elem(e->grace, &zero, &inner, BPF_ANY) ? -errno : 0;
}

/* The code of the filter in force (dedicated mode). */
static int read_code(struct engine *e, struct cgf_code *code)
{
	__u32 zero = 0, slot;

	if (bpf_map_lookup_elem(e->active, &zero, &slot))
		return -errno;
	slot &= 1;
	return bpf_map_lookup_elem(e->code, &slot, code) ? -errno : 0;
}

/*
 * Put code in the slot not in force and make it the one in force (dedicated
 * mode; under the lock).  Returns 0 when the new code is in force, -errno
 * (with a message) when nothing changed.
 */
static int swap_code(struct engine *e, const struct cgf_code *code)
{
	__u32 zero = 0, slot;
	int r;

	if (bpf_map_lookup_elem(e->active, &zero, &slot)) {
		r = -errno;
		err("cannot read the state of %s: %s", e->pin, strerror(errno));
		return r;
	}
	slot = !(slot & 1);
	if (bpf_map_update_elem(e->code, &slot, code, BPF_ANY)) {
		r = -errno;
		err("cannot write the filter of %s: %s", e->pin, strerror(errno));
		return r;
	}
	if (bpf_map_update_elem(e->active, &zero, &slot, BPF_ANY)) {
		r = -errno;
		err("cannot set the filter of %s: %s", e->pin, strerror(errno));
		return r;
	}
	return 0;
}

/* The generation of a new filter: above the one in force and every one
 * recorded, so that its text never takes the place of another's. */
static __u32 next_gen(struct engine *e, __u32 running)
{
	return (e->m.gen > running ? e->m.gen : running) + 1;
}

/* ---- load ------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int check_bpffs(const char *pin)
{
	char dir[PATH_MAX];
	struct statfs st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", pin);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		err("cannot pin %s: give a path under a BPF filesystem such as /sys/fs/bpf", pin);
		return -EINVAL;
	}
	*slash = 0;
	{
		/* create parents only inside a BPF filesystem */
		char anc[PATH_MAX];
		char *cut;

		snprintf(anc, sizeof(anc), "%s", dir);
		while (access(anc, F_OK) && (cut = strrchr(anc, '/')) && cut != anc)
			*cut = 0;
		if (statfs(anc, &st) || st.f_type != BPF_FS_MAGIC) {
			err("cannot pin %s: %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
			    pin, anc);
			return -EINVAL;
		}
	}
	if (mkdir_p(dir)) {
		err("cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (statfs(dir, &st) || st.f_type != BPF_FS_MAGIC) {
		err("cannot pin %s: %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
		    pin, dir);
		return -EINVAL;
	}
	if (strchr(slash + 1, '.')) {
		err("cannot pin %s: a BPF filesystem name may not contain '.'", pin);
		return -EINVAL;
	}
	return 0;
}

static void unpin_all(const char *pin, const char *dir)
{
	char path[PATH_MAX + 80];
	size_t i;

	unlink(pin);
	for (i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_names[i]);
		unlink(path);
	}
	rmdir(dir);
}

struct load_opts {
	bool shared;
	unsigned int int_sets;
	unsigned int lpm_entries;
	unsigned int events_per_sec;
};

/* Why the engine did not load: the verifier's log if it refused the
 * program, else libbpf's last line (a map it could not create) and the
 * setting that sized it. */
static void load_failed(int r, const struct load_opts *lo)
{
	const char *end, *line;

	if (libbpf_log && strstr(libbpf_log, "BEGIN PROG LOAD LOG")) {
		fputs(libbpf_log, stderr);
		err("cannot load the engine: the verifier refused it: %s (its log is above)",
		    strerror(-r));
		return;
	}
	/* the last non-empty line libbpf printed */
	end = libbpf_log ? libbpf_log + libbpf_log_len : NULL;
	while (end && end > libbpf_log && end[-1] == '\n')
		end--;
	line = end;
	while (line && line > libbpf_log && line[-1] != '\n')
		line--;
	if (line && line < end)
		fprintf(stderr, PROG ": libbpf: %.*s\n", (int)(end - line), line);
	if (r == -ENOMEM || r == -E2BIG || r == -EPERM)
		err("cannot load the engine: %s (its maps are sized by --lpm-entries %u and --int-sets %u: smaller values need less memory)",
		    strerror(-r), lo->lpm_entries, lo->int_sets);
	else
		err("cannot load the engine: %s", strerror(-r));
}

static int do_load(const char *pin, const char *text, const struct load_opts *lo)
{
	struct cgfilter_bpf *skel = NULL;
	struct cgf_code *code = NULL;
	struct cgf_expr *x = NULL;
	struct new_set *ns = NULL;
	struct engine e;
	struct bpf_map *m;
	size_t nns = 0;
	bool pinned = false;
	__u32 zero = 0;
	int r;

	engine_init(&e);
	r = set_paths(&e, pin);
	if (r)
		return r;
	code = calloc(1, sizeof(*code));
	if (!code)
		return -ENOMEM;
	if (text) {
		r = parse_filter(text, NULL, true, &x);
		if (r)
			goto out;
		/* ids are only known once the maps exist: compile once now to
		 * refuse a bad filter before anything is created */
		cgf_mark_inline_sets(x);
		r = compile_filter(x, code);
		if (r)
			goto out;
	}
	r = check_bpffs(e.pin);
	if (r)
		goto out;
	if (!access(e.pin, F_OK) || !access(e.dir, F_OK)) {
		err("cannot pin %s: File exists (use 'cgfilter set' to change its filter, or unload it)",
		    access(e.pin, F_OK) ? e.dir : e.pin);
		r = -EEXIST;
		goto out;
	}

	skel = cgfilter_bpf__open();
	if (!skel) {
		r = -errno;
		err("cannot open the engine: %s", strerror(errno));
		goto out;
	}
	skel->rodata->cfg.int_sets = lo->int_sets;
	skel->rodata->cfg.events_per_sec = lo->events_per_sec;
	bpf_map__set_max_entries(skel->maps.bits, lo->int_sets * CGF_BITS_WORDS);
	bpf_map__set_max_entries(skel->maps.lpm, lo->lpm_entries);
	bpf_map__set_max_entries(skel->maps.ahash, lo->lpm_entries);
	bpf_program__set_autoload(lo->shared ? skel->progs.cgf_filter : skel->progs.cgf_shared, false);
	r = cgfilter_bpf__load(skel);
	if (r) {
		load_failed(r, lo);
		goto out;
	}

	e.code = bpf_map__fd(skel->maps.code);
	e.grace = bpf_map__fd(skel->maps.grace);
	e.ctl = bpf_map__fd(skel->maps.ctl);
	e.shared_code = bpf_map__fd(skel->maps.shared_code);
	e.lpm = bpf_map__fd(skel->maps.lpm);
	e.ahash = bpf_map__fd(skel->maps.ahash);
	e.alens = bpf_map__fd(skel->maps.alens);
	e.bits = bpf_map__fd(skel->maps.bits);
	e.stats = bpf_map__fd(skel->maps.stats);
	e.events = bpf_map__fd(skel->maps.events);
	e.meta = bpf_map__fd(skel->maps.meta);
	e.text = bpf_map__fd(skel->maps.text);
	e.sets = bpf_map__fd(skel->maps.sets);
	e.m.magic = CGF_MAGIC;
	e.m.mode = lo->shared ? CGF_MODE_SHARED : CGF_MODE_DEDICATED;
	e.m.int_sets = lo->int_sets;

	if (x) {
		r = sets_prepare(&e, x, 0, &ns, &nns);
		if (r)
			goto out;
		r = compile_filter(x, code);
		if (r)
			goto out;
		code->gen = e.m.gen = 1;
		if (bpf_map_update_elem(e.code, &zero, code, BPF_ANY)) {
			r = -errno;
			err("cannot set the filter of %s: %s", e.pin, strerror(errno));
			goto out;
		}
		sets_commit(&e, 0, ns, nns, true);
		r = text_store(&e, 0, code->gen, text);
		if (r)
			goto out;
	}
	r = write_meta(&e);
	if (r)
		goto out;

	/* maps first, the program last: a pin at PIN is always complete */
	if (mkdir(e.dir, 0700)) {
		r = -errno;
		err("cannot create %s: %s", e.dir, strerror(errno));
		goto out;
	}
	pinned = true;
	bpf_object__for_each_map(m, skel->obj) {
		char path[PATH_MAX + 80];
		const char *name = bpf_map__name(m);
		size_t i;
		bool keep = false;

		for (i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++)
			keep |= !strcmp(name, map_names[i]);
		if (!keep)
			continue;
		snprintf(path, sizeof(path), "%s/%s", e.dir, name);
		r = bpf_map__pin(m, path);
		if (r) {
			err("cannot pin %s: %s", path, strerror(-r));
			goto out;
		}
	}
	{
		char path[PATH_MAX + 80];

		snprintf(path, sizeof(path), "%s/active", e.dir);
		r = bpf_map__pin(skel->maps.bss, path);
		if (r) {
			err("cannot pin %s: %s", path, strerror(-r));
			goto out;
		}
	}
	r = bpf_program__pin(lo->shared ? skel->progs.cgf_shared : skel->progs.cgf_filter, e.pin);
	if (r) {
		err("cannot pin %s: %s", e.pin, strerror(-r));
		goto out;
	}
	pinned = false;
out:
	if (pinned)
		unpin_all(e.pin, e.dir);
	free(ns);
	free(code);
	cgf_expr_free(x);
	cgfilter_bpf__destroy(skel);
	return r;
}

/* ---- set ---------------------------------------------------------------------- */

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6;
}

static int do_set(const char *pin, const char *text)
{
	struct cgf_code *code = calloc(1, sizeof(*code)), *old = calloc(1, sizeof(*old));
	struct timespec t0, t1, t2, t3;
	struct cgf_expr *x = NULL;
	struct new_set *ns = NULL;
	struct engine e;
	size_t nns = 0, i;
	int r, inner = -1, grace;

	engine_init(&e);
	if (!code || !old) {
		r = -ENOMEM;
		err("out of memory");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = engine_open(&e, pin, true);
	if (r)
		goto out;
	if (e.m.mode != CGF_MODE_DEDICATED) {
		err("%s is a shared engine: services register their filters with 'cgfilter register'",
		    e.pin);
		r = -EINVAL;
		goto out;
	}
	r = read_code(&e, old);
	if (r) {
		err("cannot read the filter of %s: %s", e.pin, strerror(-r));
		goto out;
	}
	r = parse_filter(text, &e, true, &x);
	if (r)
		goto out;
	r = sets_prepare(&e, x, 0, &ns, &nns);
	if (r)
		goto out;
	r = compile_filter(x, code);
	if (r)
		goto fail_sets;
	code->gen = next_gen(&e, old->gen);
	/* the text first, under the new generation: shown once that is in force */
	r = text_store(&e, 0, code->gen, text);
	if (r)
		goto fail_sets;
	inner = grace_open(&e);
	if (inner < 0) {
		r = inner;
		goto fail_text;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r = swap_code(&e, code);
	if (r)
		goto fail_text;
	clock_gettime(CLOCK_MONOTONIC, &t2);

	/* The new filter is in force.  From here on nothing it uses may be
	 * freed, and a failure can only leave the old filter's storage behind. */
	grace = grace_wait(&e, inner);
	clock_gettime(CLOCK_MONOTONIC, &t3);
	if (grace)
		fprintf(stderr,
			PROG ": %s: the new filter is in force, but the old one's sets stay allocated: cannot wait for it to finish: %s\n",
			e.pin, strerror(-grace));
	sets_commit(&e, 0, ns, nns, !grace);
	text_gc(&e, 0, code->gen);
	e.m.gen = code->gen;
	if (write_meta(&e))
		fprintf(stderr, PROG ": %s: the new filter is in force (generation %u)\n", e.pin,
			code->gen);
	if (verbose)
		printf("set %s: in force %.3f ms after the command opened the filter (compile %.3f ms, switch %.3f ms; then the grace period %.3f ms)\n",
		       e.pin, ms_between(&t0, &t2), ms_between(&t0, &t1), ms_between(&t1, &t2),
		       ms_between(&t2, &t3));
	r = 0;
	goto out;
fail_text:
	text_delete(&e, 0, code->gen);
fail_sets:
	for (i = 0; i < nns; i++)
		set_free(&e, &ns[i].rec);
out:
	if (inner >= 0)
		close(inner);
	free(ns);
	cgf_expr_free(x);
	engine_close(&e);
	free(code);
	free(old);
	return r;
}

/* ---- shared mode: register ------------------------------------------------------- */

/* Where cgroup2 is mounted: the last mount that is reachable (inside a
 * container an outer mount can be listed first, hidden under a later one). */
static int cgroup2_root(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[256], dir[PATH_MAX], type[64];
	int found = 0;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		struct statfs st;

		if (strcmp(type, "cgroup2") || statfs(dir, &st) || st.f_type != CGROUP2_SUPER_MAGIC)
			continue;
		snprintf(buf, len, "%s", dir);
		found = 1;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

static int own_cgroup(char *buf, size_t len)
{
	char root[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int r = -ENOENT;

	if (cgroup2_root(root, sizeof(root)))
		return -ENOENT;
	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		if (snprintf(buf, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "") >= (int)len)
			r = -ENAMETOOLONG;
		else
			r = 0;
	}
	fclose(f);
	return r;
}

static const enum bpf_attach_type dirs[2] = { BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS };

/* Does the shared engine have storage (is it attached) for cgroup id? */
static int storage_present(struct engine *e, __u64 cgid, bool *present)
{
	struct cgf_code *c = malloc(sizeof(*c));
	int i, n = 0;

	if (!c)
		return -ENOMEM;
	for (i = 0; i < 2; i++) {
		struct bpf_cgroup_storage_key k = { .cgroup_inode_id = cgid, .attach_type = dirs[i] };

		present[i] = !bpf_map_lookup_elem(e->shared_code, &k, c);
		n += present[i];
	}
	free(c);
	return n;
}

/* A literal set of a cgroup the engine no longer serves: free it. */
static bool orphan_set(const void *key, void *ctx)
{
	struct engine *e = ctx;
	struct cgf_set_rec rec;
	bool present[2];

	if (bpf_map_lookup_elem(e->sets, key, &rec) || !rec.owner ||
	    storage_present(e, rec.owner, present) != 0)
		return false;
	set_free(e, &rec);
	return true;
}

/* The text of a cgroup the engine no longer serves. */
static bool orphan_text(const void *key, void *ctx)
{
	const struct cgf_text_key *k = key;
	bool present[2];

	return k->owner && storage_present(ctx, k->owner, present) == 0;
}

/* Free the literal sets and texts of cgroups the engine no longer serves
 * (after a grace period: no packet of theirs can be running). */
static void shared_gc(struct engine *e)
{
	delete_keys(e->sets, sizeof(struct cgf_set_key), orphan_set, e);
	delete_keys(e->text, sizeof(struct cgf_text_key), orphan_text, e);
}

/* The generation of the filter a cgroup has now (0: none). */
static __u32 storage_gen(struct engine *e, __u64 cgid)
{
	struct cgf_code *c = malloc(sizeof(*c));
	__u32 gen = 0;
	int d;

	for (d = 0; c && d < 2; d++) {
		struct bpf_cgroup_storage_key k = { .cgroup_inode_id = cgid, .attach_type = dirs[d] };

		if (!bpf_map_lookup_elem(e->shared_code, &k, c) && c->gen > gen)
			gen = c->gen;
	}
	free(c);
	return gen;
}

static int do_register(const char *pin, const char *cgroup, const char *text, bool unregister)
{
	struct cgf_code *code = calloc(1, sizeof(*code));
	char path[PATH_MAX], *slash;
	struct cgf_expr *x = NULL;
	struct new_set *ns = NULL;
	bool present[2] = { false, false };
	size_t nns = 0, i;
	struct engine e;
	__u64 cgid = 0;
	int r, d, inner = -1, grace, switched = 0;

	if (!code)
		return -ENOMEM;
	r = engine_open(&e, pin, true);
	if (r)
		goto out_free;
	if (e.m.mode != CGF_MODE_SHARED) {
		err("%s is not a shared engine (load it with 'cgfilter load --shared'); use 'cgfilter set'",
		    e.pin);
		r = -EINVAL;
		goto out;
	}
	if (cgroup)
		snprintf(path, sizeof(path), "%s", cgroup);
	else if (own_cgroup(path, sizeof(path))) {
		err("cannot find my cgroup in /proc/self/cgroup (is cgroup2 mounted?)");
		r = -ENOENT;
		goto out;
	}
	/* the engine may be attached to this cgroup or to a parent of it */
	for (;;) {
		struct stat st;

		if (stat(path, &st)) {
			r = -errno;
			err("cannot open cgroup %s: %s", path, strerror(errno));
			goto out;
		}
		cgid = st.st_ino;
		if (storage_present(&e, cgid, present) > 0)
			break;
		slash = strrchr(path, '/');
		if (cgroup || !slash || slash == path) {
			err("%s is not attached to cgroup %s%s: add IPIngressFilterPath=%s and/or IPEgressFilterPath=%s to the unit",
			    e.pin, cgroup ? cgroup : "of this process", "", e.pin, e.pin);
			r = -ENOENT;
			goto out;
		}
		*slash = 0;
		{
			struct statfs sf;

			if (statfs(path, &sf) || sf.f_type != CGROUP2_SUPER_MAGIC) {
				err("%s is not attached to the cgroup of this process or a parent: add IPIngressFilterPath=%s and/or IPEgressFilterPath=%s to the unit",
				    e.pin, e.pin, e.pin);
				r = -ENOENT;
				goto out;
			}
		}
	}
	if (!unregister) {
		r = parse_filter(text, &e, false, &x);
		if (r)
			goto out;
		r = sets_prepare(&e, x, cgid, &ns, &nns);
		if (r)
			goto out;
		r = compile_filter(x, code);
		if (r)
			goto fail_sets;
		code->gen = next_gen(&e, storage_gen(&e, cgid));
		r = text_store(&e, cgid, code->gen, text);
		if (r)
			goto fail_sets;
	}
	inner = grace_open(&e);
	if (inner < 0) {
		r = inner;
		goto fail_text;
	}
	for (d = 0; d < 2; d++) {
		struct bpf_cgroup_storage_key k = { .cgroup_inode_id = cgid, .attach_type = dirs[d] };

		if (!present[d])
			continue;
		if (bpf_map_update_elem(e.shared_code, &k, code, BPF_EXIST)) {
			r = -errno;
			err("cannot set the %s filter of cgroup %s in %s: %s", d ? "egress" : "ingress",
			    path, e.pin, strerror(errno));
			if (!switched)
				goto fail_text;
			/* one direction has the new filter, the other the old:
			 * both stay whole, nothing is freed */
			sets_commit(&e, cgid, ns, nns, false);
			goto out;
		}
		switched++;
	}
	/* in force: from here nothing the new filter uses may be freed */
	grace = grace_wait(&e, inner);
	if (grace)
		fprintf(stderr,
			PROG ": %s: the new filter of cgroup %s is in force, but the old one's sets stay allocated: cannot wait for it to finish: %s\n",
			e.pin, path, strerror(-grace));
	sets_commit(&e, cgid, ns, nns, !grace);
	text_gc(&e, cgid, unregister ? 0 : code->gen);
	if (!grace)
		shared_gc(&e);
	if (code->gen > e.m.gen)
		e.m.gen = code->gen;
	write_meta(&e);
	if (verbose)
		printf("%s cgroup %s (id %" PRIu64 ")\n", unregister ? "unregistered" : "registered",
		       path, (uint64_t)cgid);
	r = 0;
	goto out;
fail_text:
	if (!unregister)
		text_delete(&e, cgid, code->gen);
fail_sets:
	for (i = 0; i < nns; i++)
		set_free(&e, &ns[i].rec);
out:
	if (inner >= 0)
		close(inner);
	free(ns);
	cgf_expr_free(x);
	engine_close(&e);
out_free:
	free(code);
	return r;
}

/* ---- set-add / set-del ---------------------------------------------------------- */

static bool looks_like_addr(const char *s)
{
	return strchr(s, ':') || (strchr(s, '.') && !strstr(s, ".."));
}

static int do_set_edit(const char *pin, const char *name, char **items, int nitems, bool add)
{
	struct cgf_set_rec rec;
	struct cgf_set_key k;
	struct engine e;
	__u64 *w = NULL;
	bool created = false;
	int i, r;

	if (name[0] == '@')
		name++;
	if (!*name || strlen(name) > CGF_SET_NAME_MAX) {
		err("bad set name '@%s'", name);
		return -EINVAL;
	}
	for (i = 0; name[i]; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_') {
			err("bad set name '@%s': letters, digits and '_' only", name);
			return -EINVAL;
		}
	r = engine_open(&e, pin, true);
	if (r)
		return r;
	set_key(&k, "@%s", name);
	if (find_named_set(&e, name, &rec)) {
		if (!add || !nitems) {
			err("unknown set @%s in %s", name, e.pin);
			r = -ENOENT;
			goto out;
		}
		/* set-add creates a set: its type is that of its first item */
		memset(&rec, 0, sizeof(rec));
		rec.type = looks_like_addr(items[0]);
		if (rec.type) {
			r = alloc_addr_id(&e, &rec.id);
			if (r)
				goto out;
		} else {
			r = alloc_int_id(&e, NULL, &rec.id);
			if (r == -ENOSPC) {
				err("cannot create set @%s: all %u integer sets of %s are in use (--int-sets when it was loaded)",
				    name, e.m.int_sets, e.pin);
				goto out;
			} else if (r) {
				err("cannot read the sets of %s: %s", e.pin, strerror(-r));
				goto out;
			}
		}
		created = true;
	}
	/* check every item before changing anything */
	for (i = 0; i < nitems; i++) {
		char why[200];
		struct cgf_cidr c;
		struct cgf_range g;

		if (!items[i][0]) {
			err("bad element '': an empty item is neither an address nor a number");
			r = -EINVAL;
			goto out;
		}

		if (rec.type ? cgf_parse_cidr(items[i], &c, why, sizeof(why))
			     : (looks_like_addr(items[i]) ?
					(snprintf(why, sizeof(why), "@%s holds integers", name), -1) :
					cgf_parse_range(items[i], &g, why, sizeof(why)))) {
			err("bad element '%s': %s", items[i], why);
			r = -EINVAL;
			goto out;
		}
	}
	if (rec.type) {
		/* all or nothing: what this command added goes again if one
		 * item does not fit */
		bool *added = calloc(nitems, sizeof(*added));

		if (!added) {
			r = -ENOMEM;
			goto out;
		}
		for (i = 0; i < nitems; i++) {
			struct cgf_cidr c;
			char why[8];

			cgf_parse_cidr(items[i], &c, why, sizeof(why));
			if (add) {
				if (lpm_has(&e, rec.id, &c))
					continue;
				r = lpm_add(&e, rec.id, &c);
				if (r) {
					err_full(&e, items[i], name, r);
					while (i-- > 0)
						if (added[i] && !cgf_parse_cidr(items[i], &c, why, sizeof(why)))
							lpm_del(&e, rec.id, &c);
					free(added);
					fprintf(stderr, PROG ": nothing was added to @%s\n", name);
					if (created)
						goto out;
					alens_rebuild(&e, rec.id, &rec.nelem);
					goto out_rec;
				}
				added[i] = true;
			} else if ((r = lpm_del(&e, rec.id, &c))) {
				if (r != -ENOENT) {
					err("cannot remove %s from @%s: %s", items[i], name, strerror(-r));
					goto out_rec;
				}
				r = 0;
				fprintf(stderr, PROG ": %s was not in @%s\n", items[i], name);
			}
		}
		free(added);
		r = alens_rebuild(&e, rec.id, &rec.nelem);
		if (r) {
			err("cannot index @%s: %s", name, strerror(-r));
			goto out_rec;
		}
	} else {
		w = calloc(CGF_BITS_WORDS, sizeof(*w));
		if (!w) {
			r = -ENOMEM;
			goto out;
		}
		if (!created && (r = bits_read(&e, rec.id, w))) {
			err("cannot read @%s: %s", name, strerror(-r));
			goto out;
		}
		for (i = 0; i < nitems; i++) {
			struct cgf_range g;
			char why[8];

			cgf_parse_range(items[i], &g, why, sizeof(why));
			bits_set_range(w, g.lo, g.hi, add);
		}
		r = bits_write(&e, rec.id, w);
		if (r) {
			err("cannot change @%s: %s", name, strerror(-r));
			goto out;
		}
		rec.nelem = bits_count(w);
	}
out_rec:
	if (bpf_map_update_elem(e.sets, &k, &rec, BPF_ANY) && !r) {
		r = -errno;
		err("cannot record @%s: %s", name, strerror(errno));
	}
	if (!r && created)
		printf("created set @%s of %s\n", name, rec.type ? "addresses" : "integers");
out:
	free(w);
	engine_close(&e);
	return r;
}

/* ---- show, stats, list ------------------------------------------------------------ */

static void read_stats(struct engine *e, __u64 *tot)
{
	int ncpu = libbpf_num_possible_cpus(), i, c;
	struct cgf_stats *v;
	__u32 zero = 0;

	memset(tot, 0, CGF_NSTATS * sizeof(*tot));
	if (ncpu <= 0)
		return;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return;
	if (!bpf_map_lookup_elem(e->stats, &zero, v))
		for (c = 0; c < ncpu; c++)
			for (i = 0; i < CGF_NSTATS; i++)
				tot[i] += v[c].v[i];
	free(v);
}

struct attach_walk {
	__u32 prog_id;
	size_t rootlen;
	int count;
	FILE *out;
	const char *indent;
	__u64 want_cgid;          /* find the path of this cgroup id */
	char found[PATH_MAX];
};
static struct attach_walk *walk;

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_D)
		return 0;
	if (walk->want_cgid) {
		if ((__u64)st->st_ino == walk->want_cgid) {
			snprintf(walk->found, sizeof(walk->found), "%s",
				 path[walk->rootlen] ? path + walk->rootlen : "/");
			return 1;
		}
		return 0;
	}
	{
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), d;

		if (fd < 0)
			return 0;
		for (d = 0; d < 2; d++) {
			__u32 ids[64], cnt = 64, flags = 0, i;

			if (bpf_prog_query(fd, dirs[d], 0, &flags, ids, &cnt))
				continue;
			for (i = 0; i < cnt; i++)
				if (ids[i] == walk->prog_id) {
					walk->count++;
					if (walk->out)
						fprintf(walk->out, "%s%s %s\n", walk->indent,
							path[walk->rootlen] ? path + walk->rootlen : "/",
							d ? "egress" : "ingress");
				}
		}
		close(fd);
	}
	return 0;
}

static int list_attachments(__u32 prog_id, FILE *out, const char *indent)
{
	struct attach_walk w = { .prog_id = prog_id, .out = out, .indent = indent };
	char root[PATH_MAX];

	if (cgroup2_root(root, sizeof(root)))
		return 0;
	w.rootlen = strlen(root);
	walk = &w;
	nftw(root, walk_cb, 32, FTW_PHYS | FTW_MOUNT);
	return w.count;
}

static const char *cgroup_path_of(__u64 cgid, char *buf, size_t len)
{
	struct attach_walk w = { .want_cgid = cgid };
	char root[PATH_MAX];

	snprintf(buf, len, "cgroup %" PRIu64, (uint64_t)cgid);
	if (cgroup2_root(root, sizeof(root)))
		return buf;
	w.rootlen = strlen(root);
	walk = &w;
	if (nftw(root, walk_cb, 32, FTW_PHYS | FTW_MOUNT) == 1)
		snprintf(buf, len, "%s", w.found);
	return buf;
}

static __u32 prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

/*
 * Call fn with each element of a set as text ("10.0.0.0/8", "22",
 * "8000..8100"), in order, until it returns non-zero.
 */
static int for_each_elem(struct engine *e, const struct cgf_set_rec *rec,
			 int (*fn)(const char *item, void *ctx), void *ctx)
{
	char buf[64];

	if (rec->type) {
		struct cgf_lpm_key k, nx;
		int more;

		for (more = next_key(e->lpm, NULL, &nx); more > 0;
		     more = next_key(e->lpm, &k, &nx)) {
			struct cgf_cidr c = { 0 };

			k = nx;
			if (k.tag / 2 != rec->id)
				continue;
			c.family = k.tag & 1 ? 6 : 4;
			c.plen = (uint8_t)(k.prefixlen - 32);
			memcpy(c.addr, k.addr, 16);
			cgf_format_cidr(&c, buf, sizeof(buf));
			if (fn(buf, ctx))
				return 0;
		}
		return more < 0 ? more : 0;
	} else {
		__u64 *w = calloc(CGF_BITS_WORDS, sizeof(*w));
		int v = 0;

		int r = !w ? -ENOMEM : rec->id >= e->m.int_sets ? -EINVAL : bits_read(e, rec->id, w);

		if (r) {
			free(w);
			return r;
		}
		while (v < 65536) {
			int lo;

			if (!(w[v >> 6] >> (v & 63) & 1)) {
				v++;
				continue;
			}
			lo = v;
			while (v < 65536 && (w[v >> 6] >> (v & 63) & 1))
				v++;
			if (lo == v - 1)
				snprintf(buf, sizeof(buf), "%d", lo);
			else
				snprintf(buf, sizeof(buf), "%d..%d", lo, v - 1);
			if (fn(buf, ctx))
				break;
		}
		free(w);
		return 0;
	}
}

struct elem_print {
	FILE *f;
	int n, max;     /* max 0: all */
	bool json;
};

static int print_elem(const char *item, void *ctx)
{
	struct elem_print *p = ctx;

	if (p->max && p->n >= p->max) {
		fprintf(p->f, " ...");
		return 1;
	}
	if (p->json) {
		fputs(p->n ? "," : "", p->f);
		json_str(p->f, item);
	} else {
		fprintf(p->f, "%s%s", p->n ? ", " : " ", item);
	}
	p->n++;
	return 0;
}

/* A filter text after a label: on the same line if it is one line, else
 * indented below it. */
static void print_text(FILE *f, const char *label, const char *text)
{
	size_t n = strlen(text);
	const char *p;

	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (!memchr(text, '\n', n)) {
		fprintf(f, "%s %.*s\n", label, (int)n, text);
		return;
	}
	fprintf(f, "%s\n", label);
	for (p = text; p < text + n;) {
		const char *e = memchr(p, '\n', text + n - p);

		if (!e)
			e = text + n;
		fprintf(f, "    %.*s\n", (int)(e - p), p);
		p = e + 1;
	}
}

/* The text of a filter in force, or a note that there is none. */
static char *shown_text(struct engine *e, __u64 owner, const struct cgf_code *c)
{
	char *t;

	if (!c->ninsn)
		return strdup("(none: drop)");
	t = text_load(e, owner, c->gen);
	if (!t && asprintf(&t, "(text of generation %u missing)", c->gen) < 0)
		t = NULL;
	return t;
}

static void show_stats_text(FILE *f, struct engine *e)
{
	__u64 st[CGF_NSTATS];

	read_stats(e, st);
	fprintf(f, "  passed: %" PRIu64 " packets, %" PRIu64 " bytes\n", (uint64_t)st[CGF_ST_PASS_PKTS],
	       (uint64_t)st[CGF_ST_PASS_BYTES]);
	fprintf(f, "  dropped: %" PRIu64 " packets, %" PRIu64 " bytes (%" PRIu64 " malformed, %" PRIu64
	       " without a filter)\n",
	       (uint64_t)st[CGF_ST_DROP_PKTS], (uint64_t)st[CGF_ST_DROP_BYTES],
	       (uint64_t)st[CGF_ST_MALFORMED], (uint64_t)st[CGF_ST_NOFILTER]);
}

/* Everything show --json prints, into f; -errno if a map could not be read. */
static int show_json(FILE *f, struct engine *e, const struct cgf_code *c, const char *tbuf)
{
	struct bpf_cgroup_storage_key sk, snx;
	struct cgf_set_key k, nx;
	struct cgf_set_rec rec;
	__u64 st[CGF_NSTATS];
	char path[PATH_MAX], *text;
	int more, n = 0, r = 0;

	fprintf(f, "{\"pin\":");
	json_str(f, e->pin);
	fprintf(f, ",\"mode\":\"%s\",\"program_id\":%u,\"generation\":%u,\"changed\":\"%s\"",
	       e->m.mode == CGF_MODE_SHARED ? "shared" : "dedicated", prog_id_of(e->prog),
	       c ? c->gen : e->m.gen, tbuf);
	if (c) {
		text = c->ninsn ? text_load(e, 0, c->gen) : NULL;
		fprintf(f, ",\"filter\":");
		if (text)
			json_str(f, text);
		else
			fprintf(f, "null");
		free(text);
	} else {
		fprintf(f, ",\"filters\":[");
		for (more = next_key(e->shared_code, NULL, &snx); more > 0;
		     more = next_key(e->shared_code, &sk, &snx)) {
			struct cgf_code *sc = malloc(sizeof(*sc));

			sk = snx;
			if (!sc || bpf_map_lookup_elem(e->shared_code, &sk, sc)) {
				free(sc);
				continue;
			}
			text = sc->ninsn ? text_load(e, sk.cgroup_inode_id, sc->gen) : NULL;
			fprintf(f, "%s{\"cgroup\":", n++ ? "," : "");
			json_str(f, cgroup_path_of(sk.cgroup_inode_id, path, sizeof(path)));
			fprintf(f, ",\"direction\":\"%s\",\"generation\":%u,\"filter\":",
			       sk.attach_type == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress", sc->gen);
			if (text)
				json_str(f, text);
			else
				fprintf(f, "null");
			fprintf(f, "}");
			free(text);
			free(sc);
		}
		if (more < 0)
			return more;
		fprintf(f, "]");
	}
	fprintf(f, ",\"sets\":{");
	n = 0;
	for (more = next_key(e->sets, NULL, &nx); more > 0;
	     more = next_key(e->sets, &k, &nx)) {
		struct elem_print p = { .f = f, .json = true };

		k = nx;
		if (k.name[0] != '@' || bpf_map_lookup_elem(e->sets, &k, &rec))
			continue;
		fprintf(f, "%s", n++ ? "," : "");
		json_str(f, k.name + 1);
		fprintf(f, ":{\"type\":\"%s\",\"count\":%" PRIu64 ",\"items\":[",
		       rec.type ? "addresses" : "integers", (uint64_t)rec.nelem);
		r = for_each_elem(e, &rec, print_elem, &p);
		if (r)
			return r;
		fprintf(f, "]}");
	}
	if (more < 0)
		return more;
	read_stats(e, st);
	fprintf(f, "},\"passed_packets\":%" PRIu64 ",\"passed_bytes\":%" PRIu64
	       ",\"dropped_packets\":%" PRIu64 ",\"dropped_bytes\":%" PRIu64
	       ",\"malformed\":%" PRIu64 ",\"no_filter\":%" PRIu64 "}\n",
	       (uint64_t)st[CGF_ST_PASS_PKTS], (uint64_t)st[CGF_ST_PASS_BYTES],
	       (uint64_t)st[CGF_ST_DROP_PKTS], (uint64_t)st[CGF_ST_DROP_BYTES],
	       (uint64_t)st[CGF_ST_MALFORMED], (uint64_t)st[CGF_ST_NOFILTER]);
	return 0;
}

static int do_show(const char *pin, bool show_code, bool json)
{
	struct cgf_code *c = NULL;
	struct cgf_set_key k, nx;
	struct cgf_set_rec rec;
	struct engine e;
	char tbuf[64], *text, *buf = NULL;
	size_t len = 0;
	struct tm tm;
	FILE *f = NULL;
	time_t t;
	int more, r;

	r = engine_open(&e, pin, false);
	if (r)
		return r;
	if (e.m.mode == CGF_MODE_DEDICATED) {
		c = malloc(sizeof(*c));
		r = c ? read_code(&e, c) : -ENOMEM;
		if (r)
			goto out;
	}
	t = (time_t)(e.m.set_time_ns / 1000000000ULL);
	localtime_r(&t, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S", &tm);
	/* into a buffer first: show prints the whole picture or nothing */
	f = open_memstream(&buf, &len);
	if (!f) {
		r = -errno;
		goto out;
	}
	if (json) {
		r = show_json(f, &e, c, tbuf);
		goto out;
	}
	fprintf(f, "%s: cgfilter %s engine, program id %u\n", e.pin,
		e.m.mode == CGF_MODE_SHARED ? "shared" : "dedicated", prog_id_of(e.prog));
	fprintf(f, "  changed: %s (generation %u)\n", tbuf, c ? c->gen : e.m.gen);
	if (c) {
		text = shown_text(&e, 0, c);
		print_text(f, "  filter:", text ? text : "?");
		free(text);
	} else {
		struct bpf_cgroup_storage_key sk, snx;
		int n = 0;

		fprintf(f, "  filters by cgroup (a cgroup without one drops everything):\n");
		for (more = next_key(e.shared_code, NULL, &snx); more > 0;
		     more = next_key(e.shared_code, &sk, &snx)) {
			struct cgf_code *sc = malloc(sizeof(*sc));
			char path[PATH_MAX];

			sk = snx;
			if (!sc || bpf_map_lookup_elem(e.shared_code, &sk, sc)) {
				free(sc);
				continue;
			}
			text = shown_text(&e, sk.cgroup_inode_id, sc);
			fprintf(f, "    %s %s: %s\n",
				cgroup_path_of(sk.cgroup_inode_id, path, sizeof(path)),
				sk.attach_type == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress",
				text ? text : "?");
			free(text);
			free(sc);
			n++;
		}
		if (more < 0) {
			r = more;
			goto out;
		}
		if (!n)
			fprintf(f, "    (none)\n");
	}
	fprintf(f, "  sets:\n");
	for (more = next_key(e.sets, NULL, &nx); more > 0; more = next_key(e.sets, &k, &nx)) {
		struct elem_print p = { .f = f, .max = 20 };

		k = nx;
		if (k.name[0] != '@' || bpf_map_lookup_elem(e.sets, &k, &rec))
			continue;
		fprintf(f, "    %s (%s, %" PRIu64 " %s):", k.name, rec.type ? "addresses" : "integers",
			(uint64_t)rec.nelem, rec.type ? "prefixes" : "values");
		r = for_each_elem(&e, &rec, print_elem, &p);
		if (r)
			goto out;
		fprintf(f, "\n");
	}
	if (more < 0) {
		r = more;
		goto out;
	}
	show_stats_text(f, &e);
	fprintf(f, "  attached to:\n");
	if (!list_attachments(prog_id_of(e.prog), f, "    "))
		fprintf(f, "    (no cgroup)\n");
	if (show_code && c) {
		fprintf(f, "  code (%u instructions):\n", c->ninsn);
		cgf_disasm(c, f);
	}
out:
	if (f && fclose(f) && !r)
		r = -ENOMEM;
	if (r)
		err("cannot show %s: cannot read its maps: %s", e.pin, strerror(-r));
	else
		fputs(buf, stdout);
	free(buf);
	free(c);
	engine_close(&e);
	return r;
}

static int do_stats(const char *pin, bool json)
{
	__u64 st[CGF_NSTATS];
	struct engine e;
	int r = engine_open(&e, pin, false);

	if (r)
		return r;
	read_stats(&e, st);
	if (json) {
		printf("{\"pin\":");
		json_str(stdout, e.pin);
		printf(",\"passed_packets\":%" PRIu64 ",\"passed_bytes\":%" PRIu64
		       ",\"dropped_packets\":%" PRIu64 ",\"dropped_bytes\":%" PRIu64
		       ",\"malformed\":%" PRIu64 ",\"no_filter\":%" PRIu64 ",\"events\":%" PRIu64
		       ",\"events_suppressed\":%" PRIu64 "}\n",
		       (uint64_t)st[0], (uint64_t)st[1], (uint64_t)st[2], (uint64_t)st[3],
		       (uint64_t)st[4], (uint64_t)st[5], (uint64_t)st[6], (uint64_t)st[7]);
	} else
		printf("passed %" PRIu64 " packets %" PRIu64 " bytes, dropped %" PRIu64
		       " packets %" PRIu64 " bytes\n",
		       (uint64_t)st[0], (uint64_t)st[1], (uint64_t)st[2], (uint64_t)st[3]);
	engine_close(&e);
	return 0;
}

static char list_root[PATH_MAX];
static int list_count;

static int list_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t n = strlen(path);
	char pin[PATH_MAX];
	struct engine e;
	__u64 s[CGF_NSTATS];

	(void)st;
	(void)ftw;
	if (type != FTW_D || n < 6 || strcmp(path + n - 5, "_maps"))
		return 0;
	snprintf(pin, sizeof(pin), "%.*s", (int)(n - 5), path);
	if (access(pin, F_OK))
		return 0;
	/* quietly skip what is not ours */
	{
		int saved = dup(2), null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2);
		n = engine_open(&e, pin, false);
		if (saved >= 0) {
			dup2(saved, 2);
			close(saved);
		}
		if (null >= 0)
			close(null);
	}
	if (n)
		return 0;
	read_stats(&e, s);
	printf("%s  %s  passed %" PRIu64 " dropped %" PRIu64 "  attachments %d\n", e.pin,
	       e.m.mode == CGF_MODE_SHARED ? "shared" : "dedicated", (uint64_t)s[0], (uint64_t)s[2],
	       list_attachments(prog_id_of(e.prog), NULL, ""));
	list_attachments(prog_id_of(e.prog), stdout, "    ");
	list_count++;
	engine_close(&e);
	return 0;
}

static int do_list(const char *root)
{
	struct stat st;

	snprintf(list_root, sizeof(list_root), "%s", root);
	list_count = 0;
	if (stat(root, &st)) {
		int r = -errno;

		err("cannot list %s: %s", root, strerror(errno));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		err("cannot list %s: not a directory", root);
		return -ENOTDIR;
	}
	if (nftw(root, list_cb, 32, FTW_PHYS | FTW_MOUNT) < 0) {
		int r = -errno;

		err("cannot read %s: %s", root, strerror(errno));
		return r;
	}
	if (!list_count)
		printf("no cgfilter filters under %s\n", root);
	return 0;
}

/* ---- monitor ---------------------------------------------------------------------- */

struct mon {
	long count, max;
	bool json;
	__u64 start_ns;  /* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
};

static const char *proto_name(int family, int p, char *buf, size_t len)
{
	if (!family)
		return "non-ip";
	switch (p) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmpv6";
	}
	snprintf(buf, len, "proto-%d", p);
	return buf;
}

static int on_event(void *ctx, void *data, size_t len)
{
	const struct cgf_event *ev = data;
	struct mon *m = ctx;
	char sa[INET6_ADDRSTRLEN] = "-", da[INET6_ADDRSTRLEN] = "-", pb[16], cg[PATH_MAX], tb[32];
	struct timespec now;
	const char *proto;
	struct tm tm;
	time_t t;

	/* the ring may hold drops from before we started: not live */
	if (len < sizeof(*ev) || ev->time_ns < m->start_ns)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	t = now.tv_sec;
	localtime_r(&t, &tm);
	strftime(tb, sizeof(tb), "%H:%M:%S", &tm);
	if (ev->family == 4 || ev->family == 6) {
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->saddr, sa, sizeof(sa));
		inet_ntop(ev->family == 4 ? AF_INET : AF_INET6, ev->daddr, da, sizeof(da));
	}
	proto = proto_name(ev->family, ev->proto, pb, sizeof(pb));
	cgroup_path_of(ev->cgroup_id, cg, sizeof(cg));
	if (m->json) {
		printf("{\"time\":\"%s.%03ld\",\"proto\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"len\":%u,\"malformed\":%u,\"cgroup\":",
		       tb, now.tv_nsec / 1000000, proto, sa, ev->sport, da, ev->dport, ev->len,
		       ev->malformed);
		json_str(stdout, cg);
		printf("}\n");
	} else if (ev->proto == 6 || ev->proto == 17)
		printf("%s.%03ld drop %s %s:%u -> %s:%u len %u%s cgroup %s\n", tb,
		       now.tv_nsec / 1000000, proto, sa, ev->sport, da, ev->dport, ev->len,
		       ev->malformed ? " malformed" : "", cg);
	else
		printf("%s.%03ld drop %s %s -> %s len %u%s cgroup %s\n", tb, now.tv_nsec / 1000000,
		       proto, sa, da, ev->len, ev->malformed ? " malformed" : "", cg);
	fflush(stdout);
	if (m->max && ++m->count >= m->max)
		stop = 1;
	return 0;
}

/*
 * Renew this monitor's lease on drop events: the engine produces them until
 * CGF_MONITOR_LEASE_NS from now.  A monitor renews it every second, so
 * events stop soon after the last monitor ends, however it ends.
 */
static int monitor_lease(struct engine *e)
{
	struct cgf_ctl c = { 0 };
	struct timespec now;
	__u32 zero = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	c.monitor_until_ns = (__u64)now.tv_sec * 1000000000ULL + now.tv_nsec + CGF_MONITOR_LEASE_NS;
	if (bpf_map_update_elem(e->ctl, &zero, &c, BPF_ANY)) {
		int r = -errno;

		err("cannot ask %s for drop events: %s", e->pin, strerror(errno));
		return r;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int do_monitor(const char *pin, long max, long timeout_ms, bool json)
{
	struct mon m = { .max = max, .json = json };
	struct ring_buffer *rb;
	struct engine e;
	struct timespec t0, t, renewed;
	__u64 st0[CGF_NSTATS], st[CGF_NSTATS];
	int r = engine_open(&e, pin, false);

	if (r)
		return r;
	rb = ring_buffer__new(e.events, on_event, &m, NULL);
	if (!rb) {
		r = -errno;
		err("cannot read the drop events of %s: %s", e.pin, strerror(errno));
		engine_close(&e);
		return r;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	/* the engine produces drop events only while someone watches */
	r = monitor_lease(&e);
	if (r) {
		ring_buffer__free(rb);
		engine_close(&e);
		return r;
	}
	read_stats(&e, st0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	renewed = t0;
	m.start_ns = (__u64)t0.tv_sec * 1000000000ULL + t0.tv_nsec;
	if (!json)
		fprintf(stderr, "watching drops of %s (Ctrl-C to stop)\n", e.pin);
	while (!stop) {
		r = ring_buffer__poll(rb, 200);
		if (r < 0 && r != -EINTR) {
			err("cannot read the drop events of %s: %s", e.pin, strerror(-r));
			break;
		}
		r = 0;
		if (m.max && m.count >= m.max)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec > renewed.tv_sec) {
			r = monitor_lease(&e);
			if (r)
				break;
			renewed = t;
		}
		if (timeout_ms && (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >=
					  timeout_ms)
			break;
	}
	read_stats(&e, st);
	if (!json && st[CGF_ST_SUPPRESSED] > st0[CGF_ST_SUPPRESSED])
		fprintf(stderr, "%" PRIu64 " more drops not shown (rate limit)\n",
			(uint64_t)(st[CGF_ST_SUPPRESSED] - st0[CGF_ST_SUPPRESSED]));
	ring_buffer__free(rb);
	engine_close(&e);
	if (!r && max && m.count < max) {
		err("%ld of %ld drops seen before %s", m.count, max,
		    stop ? "the monitor was stopped" : "the timeout");
		return -ETIMEDOUT;
	}
	return r;
}

/* ---- check, unload, compile --------------------------------------------------------- */

/* What kind of BPF object an fd is, from its anonymous inode's name. */
static bool is_prog_fd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:bpf-prog");
}

static int do_check(const char *pin, bool quiet)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(pin), r = 0;

	if (fd < 0) {
		r = -errno;
		err("%s: %s", pin, errno == ENOENT ? "no such pin: the filter is not loaded" :
							strerror(errno));
		return r;
	}
	if (!is_prog_fd(fd) || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err("%s is not a BPF program (a map?): a unit naming it would run unfiltered", pin);
		r = -EINVAL;
	} else if (info.type != BPF_PROG_TYPE_CGROUP_SKB) {
		const char *t = libbpf_bpf_prog_type_str(info.type);

		err("%s is a %s program, not cgroup_skb: a unit naming it would run unfiltered", pin,
		    t ? t : "unknown");
		r = -EINVAL;
	} else if (!quiet) {
		printf("%s: cgroup_skb program id %u\n", pin, info.id);
	}
	close(fd);
	return r;
}

static int do_unload(const char *pin, bool detach)
{
	struct engine e;
	__u32 id;
	int r = engine_open(&e, pin, true), n;

	if (r)
		return r;
	id = prog_id_of(e.prog);
	n = list_attachments(id, NULL, "");
	if (detach && n) {
		char root[PATH_MAX];

		/* detach from every cgroup it is attached to */
		if (!cgroup2_root(root, sizeof(root))) {
			struct attach_walk w = { .prog_id = id, .indent = "" };
			FILE *f = tmpfile();

			if (f) {
				char line[PATH_MAX + 32];

				w.out = f;
				w.rootlen = strlen(root);
				walk = &w;
				nftw(root, walk_cb, 32, FTW_PHYS | FTW_MOUNT);
				rewind(f);
				while (fgets(line, sizeof(line), f)) {
					char *sp = strrchr(line, ' '), path[PATH_MAX * 2];
					int fd;

					if (!sp)
						continue;
					*sp = 0;
					snprintf(path, sizeof(path), "%s%s", root,
						 strcmp(line, "/") ? line : "");
					fd = open(path, O_RDONLY | O_DIRECTORY);
					if (fd < 0)
						continue;
					if (bpf_prog_detach2(e.prog, fd,
							     strncmp(sp + 1, "ingress", 7) ?
								     BPF_CGROUP_INET_EGRESS :
								     BPF_CGROUP_INET_INGRESS)) {
						err("cannot detach %s from %s: %s", e.pin, path,
						    strerror(errno));
						r = -errno;
					}
					close(fd);
				}
				fclose(f);
			}
		}
		n = list_attachments(id, NULL, "");
	}
	if (r) {
		err("%s not unloaded: it is still attached to %d cgroup(s)", e.pin, n);
		engine_close(&e);
		return r;
	}
	unpin_all(e.pin, e.dir);
	if (n)
		fprintf(stderr,
			PROG ": %s unpinned; still attached to %d cgroup(s), which keep its last filter until they go away or are detached (unload --detach)\n",
			e.pin, n);
	engine_close(&e);
	return 0;
}

static int do_compile(const char *text)
{
	struct cgf_code *code = calloc(1, sizeof(*code));
	struct cgf_expr *x = NULL;
	struct cgf_set *s;
	int r, n = 0;

	if (!code)
		return -ENOMEM;
	r = parse_filter(text, NULL, true, &x);
	if (!r) {
		cgf_mark_inline_sets(x);
		for (s = x->sets; s; s = s->next)
			if (!s->inlined)
				s->id = n++;
		r = compile_filter(x, code);
	}
	if (!r) {
		printf("%u instructions\n", code->ninsn);
		cgf_disasm(code, stdout);
	}
	cgf_expr_free(x);
	free(code);
	return r;
}

/* ---- command line -------------------------------------------------------------------- */

static const char usage_text[] =
	"Usage: cgfilter [-v] COMMAND [ARGS]\n"
	"Per-service packet filters for systemd units, changed at run time.\n"
	"\n"
	"Commands:\n"
	"  load PIN (EXPR | -f FILE)        load a filter, pin it at PIN\n"
	"  load --shared PIN                load a shared engine (one filter per cgroup)\n"
	"  set PIN (EXPR | -f FILE)         replace the filter atomically\n"
	"  register PIN (EXPR | -f FILE)    set the filter of this process's cgroup (shared)\n"
	"  unregister PIN                   remove it (the cgroup then drops everything)\n"
	"  set-add PIN @SET ITEM...         add addresses/prefixes or ports/ranges to a set\n"
	"  set-del PIN @SET ITEM...         remove them\n"
	"  show PIN [--code] [--json]       filter, sets, counters, attached cgroups\n"
	"  list [DIR]                       every cgfilter filter under DIR (/sys/fs/bpf)\n"
	"  stats PIN [--json]               packets and bytes passed and dropped\n"
	"  monitor PIN [-c N] [-t MS] [--json]  stream dropped packets\n"
	"  check PIN                        fail unless PIN is a loaded cgroup_skb program\n"
	"  unload PIN [--detach]            remove what load pinned\n"
	"  compile (EXPR | -f FILE)         print the engine code of a filter (no root)\n"
	"\n"
	"'cgfilter COMMAND --help' tells more; the language is in cgfilter(8).\n"
	"\n"
	"Examples:\n"
	"  cgfilter load /sys/fs/bpf/web 'tcp && dst_port in { 80, 443 } || icmp'\n"
	"  cgfilter set /sys/fs/bpf/web 'tcp && dst_port == 443'\n"
	"  cgfilter set-add /sys/fs/bpf/web @trusted 10.0.0.0/8 fd00::/8\n"
	"  systemd-run -p IPIngressFilterPath=/sys/fs/bpf/web -p IPEgressFilterPath=/sys/fs/bpf/web CMD\n";

struct cmd_help {
	const char *name, *text;
};

static const struct cmd_help helps[] = {
	{ "load",
	  "Usage: cgfilter load [OPTIONS] PIN (EXPR | -f FILE)\n"
	  "       cgfilter load --shared [OPTIONS] PIN\n"
	  "Load the engine, set its filter and pin the program at PIN and its maps in\n"
	  "PIN_maps/.  PIN must not exist.  A bad filter changes nothing.\n"
	  "  -f FILE              read the filter from FILE ('-': stdin); '#' starts a comment\n"
	  "  --shared             one engine for many units: each registers its own filter\n"
	  "                       with 'cgfilter register'; a cgroup without one drops all\n"
	  "  --int-sets N         integer sets the engine can hold (default 64)\n"
	  "  --lpm-entries N      prefixes all address sets can hold (default 65536)\n"
	  "  --events-per-sec N   drop events per second and CPU for monitor (default 100,\n"
	  "                       0: none)\n"
	  "Example: cgfilter load /sys/fs/bpf/web 'tcp && dst_port in { 80, 443 }'\n" },
	{ "set",
	  "Usage: cgfilter set PIN (EXPR | -f FILE)\n"
	  "Replace the filter of a loaded engine atomically: every packet sees the old or\n"
	  "the new filter, never a mix.  Units using PIN keep running.  A bad filter\n"
	  "changes nothing.  Set declarations ('@name = { ... }') replace a set's contents.\n"
	  "Example: cgfilter set /sys/fs/bpf/web 'tcp && dst_port == 443'\n" },
	{ "register",
	  "Usage: cgfilter register PIN [--cgroup PATH] (EXPR | -f FILE)\n"
	  "Set the filter of this process's cgroup (or PATH) in a shared engine (load\n"
	  "--shared).  For a unit: IPIngressFilterPath=PIN and/or IPEgressFilterPath=PIN\n"
	  "and ExecStartPre=cgfilter register PIN 'EXPR'.  The kernel forgets the filter\n"
	  "when the unit's cgroup goes away.\n" },
	{ "unregister",
	  "Usage: cgfilter unregister PIN [--cgroup PATH]\n"
	  "Remove the filter of this process's cgroup (or PATH) from a shared engine: the\n"
	  "cgroup then drops every packet.\n" },
	{ "set-add",
	  "Usage: cgfilter set-add PIN @SET ITEM... | -f FILE\n"
	  "Add items to a named set, creating it if needed (its type is that of the first\n"
	  "item).  Items: 10.0.0.0/8, 192.0.2.1, fd00::/8 or 22, 8000..8100.  -f FILE reads\n"
	  "items one per line.  Filters using the set see each item as soon as it is added.\n"
	  "Example: cgfilter set-add /sys/fs/bpf/web @trusted 10.0.0.0/8 fd00::/8\n" },
	{ "set-del",
	  "Usage: cgfilter set-del PIN @SET ITEM... | -f FILE\n"
	  "Remove items (exactly as added) from a named set.\n" },
	{ "show",
	  "Usage: cgfilter show PIN [--code] [--json]\n"
	  "The filter in force, its sets, counters and the cgroups it is attached to;\n"
	  "--code adds the engine code; --json prints one JSON object with every set's\n"
	  "items.\n" },
	{ "list", "Usage: cgfilter list [DIR]\nEvery cgfilter filter pinned under DIR (default /sys/fs/bpf).\n" },
	{ "stats",
	  "Usage: cgfilter stats PIN [--json]\n"
	  "Packets and bytes passed and dropped, summed over CPUs.\n" },
	{ "monitor",
	  "Usage: cgfilter monitor PIN [-c COUNT] [-t MS] [--json]\n"
	  "Print dropped packets as they happen, at most --events-per-sec a second per\n"
	  "CPU (set at load).  -c: stop after COUNT drops; -t: stop after MS ms (exit 1\n"
	  "if fewer than COUNT were seen).\n" },
	{ "check",
	  "Usage: cgfilter check [-q] PIN\n"
	  "Exit 0 if PIN is a loaded cgroup_skb program, else 1.  systemd attaches a\n"
	  "pinned program best effort and runs a unit unfiltered if it cannot, so guard\n"
	  "the unit: ExecStartPre=cgfilter check PIN\n" },
	{ "unload",
	  "Usage: cgfilter unload PIN [--detach]\n"
	  "Remove PIN and PIN_maps/.  Cgroups it is attached to keep filtering with the\n"
	  "last filter until they go away; --detach detaches it from them first.\n" },
	{ "compile",
	  "Usage: cgfilter compile (EXPR | -f FILE)\n"
	  "Check a filter and print its engine code; needs no privilege.\n" },
};

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int cmd_help(const char *cmd, FILE *f)
{
	size_t i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (!strcmp(helps[i].name, cmd)) {
			if (f)
				fputs(helps[i].text, f);
			return 0;
		}
	return -1;
}

static int bad_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'cgfilter %s --help')\n", cmd);
	return 2;
}

static int parse_uint_arg(const char *cmd, const char *what, const char *s, unsigned long lo,
			  unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	/* strtoul takes leading space and a sign: a number is digits only */
	if (!isdigit((unsigned char)s[0]) || *end || errno || v < lo || v > hi) {
		bad_usage(cmd, "invalid %s: %s (%lu..%lu)", what, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* Items from argv and/or a file (one per line, '#' comments). */
static char **read_items(const char *file, char **argv, int argc, int *n)
{
	char **items = NULL, *buf = NULL, *line, *save;
	int cap = 0, i;

	*n = 0;
	if (file) {
		buf = read_file(file);
		if (!buf)
			return NULL;
	}
	for (i = 0; i < argc; i++) {
		if (*n == cap) {
			char **p = realloc(items, (cap = cap * 2 + 16) * sizeof(*p));

			if (!p)
				goto nomem;
			items = p;
		}
		items[(*n)++] = strdup(argv[i]);
	}
	for (line = buf ? strtok_r(buf, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *h = strchr(line, '#'), *s = line, *e;

		if (h)
			*h = 0;
		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = 0;
		if (!*s)
			continue;
		if (*n == cap) {
			char **p = realloc(items, (cap = cap * 2 + 16) * sizeof(*p));

			if (!p)
				goto nomem;
			items = p;
		}
		items[(*n)++] = strdup(s);
	}
	free(buf);
	if (!items)
		items = calloc(1, sizeof(*items));
	return items;
nomem:
	err("out of memory");
	free(buf);
	return NULL;
}

enum {
	OPT_SHARED = 256, OPT_INT_SETS, OPT_LPM, OPT_EVENTS, OPT_JSON, OPT_CODE, OPT_DETACH,
	OPT_CGROUP,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "file", required_argument, NULL, 'f' },
	{ "shared", no_argument, NULL, OPT_SHARED },
	{ "int-sets", required_argument, NULL, OPT_INT_SETS },
	{ "lpm-entries", required_argument, NULL, OPT_LPM },
	{ "events-per-sec", required_argument, NULL, OPT_EVENTS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "code", no_argument, NULL, OPT_CODE },
	{ "detach", no_argument, NULL, OPT_DETACH },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "count", required_argument, NULL, 'c' },
	{ "timeout", required_argument, NULL, 't' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{},
};

/* Which options each command takes: an option another command takes is
 * refused rather than silently ignored. */
static bool option_allowed(const char *cmd, int opt)
{
	static const struct {
		const char *cmd;
		int opts[6];
	} table[] = {
		{ "load", { 'f', OPT_SHARED, OPT_INT_SETS, OPT_LPM, OPT_EVENTS } },
		{ "set", { 'f' } },
		{ "register", { 'f', OPT_CGROUP } },
		{ "unregister", { OPT_CGROUP } },
		{ "set-add", { 'f' } },
		{ "set-del", { 'f' } },
		{ "show", { OPT_CODE, OPT_JSON } },
		{ "stats", { OPT_JSON } },
		{ "monitor", { 'c', 't', OPT_JSON } },
		{ "check", { 'q' } },
		{ "unload", { OPT_DETACH } },
		{ "compile", { 'f' } },
	};
	size_t i, j;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(table[i].cmd, cmd))
			continue;
		for (j = 0; j < sizeof(table[i].opts) / sizeof(table[i].opts[0]); j++)
			if (table[i].opts[j] == opt)
				return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	struct load_opts lo = { .int_sets = CGF_DEF_INT_SETS, .lpm_entries = CGF_DEF_LPM_ENTRIES,
				.events_per_sec = 100 };
	const char *file = NULL, *cgroup = NULL, *cmd;
	bool json = false, show_code = false, detach = false, quiet = false;
	unsigned long count = 0, timeout = 0, v;
	char *text = NULL;
	int opt, r = 0, nargs;
	char **args;

	/* global options before the command */
	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose")) {
			verbose = 1;
		} else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[1], "--version")) {
			printf("cgfilter 1.0\n");
			return 0;
		} else {
			fprintf(stderr, PROG ": unknown option %s\n", argv[1]);
			usage(stderr);
			return 2;
		}
		argv++;
		argc--;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "help")) {
		if (argc > 3) {
			fprintf(stderr, PROG ": help takes at most one command\n");
			return 2;
		}
		if (argc == 3 && cmd_help(argv[2], NULL)) {
			fprintf(stderr, PROG ": unknown command '%s'\n", argv[2]);
			usage(stderr);
			return 2;
		}
		if (argc == 3)
			cmd_help(argv[2], stdout);
		else
			usage(stdout);
		return 0;
	}
	if (cmd_help(cmd, NULL)) {
		fprintf(stderr, PROG ": unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	argv++;
	argc--;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hf:c:t:qv", long_opts, NULL)) != -1) {
		if (opt != 'h' && opt != 'v' && opt != '?' && !option_allowed(cmd, opt)) {
			const struct option *o;
			char name[40];

			snprintf(name, sizeof(name), "-%c", opt);
			for (o = long_opts; o->name; o++)
				if (o->val == opt && opt >= 256)
					snprintf(name, sizeof(name), "--%s", o->name);
			return bad_usage(cmd, "option %s does not apply to %s", name, cmd);
		}
		switch (opt) {
		case 'h':
			cmd_help(cmd, stdout);
			return 0;
		case 'f': file = optarg; break;
		case 'v': verbose = 1; break;
		case 'q': quiet = true; break;
		case OPT_SHARED: lo.shared = true; break;
		case OPT_JSON: json = true; break;
		case OPT_CODE: show_code = true; break;
		case OPT_DETACH: detach = true; break;
		case OPT_CGROUP: cgroup = optarg; break;
		case OPT_INT_SETS:
			if (parse_uint_arg(cmd, "number of integer sets", optarg, 1, 4096, &v))
				return 2;
			lo.int_sets = v;
			break;
		case OPT_LPM:
			if (parse_uint_arg(cmd, "number of prefixes", optarg, 1, 1u << 24, &v))
				return 2;
			lo.lpm_entries = v;
			break;
		case OPT_EVENTS:
			if (parse_uint_arg(cmd, "events per second", optarg, 0, 1000000, &v))
				return 2;
			lo.events_per_sec = v;
			break;
		case 'c':
			if (parse_uint_arg(cmd, "count", optarg, 1, 1000000000, &count))
				return 2;
			break;
		case 't':
			if (parse_uint_arg(cmd, "timeout", optarg, 1, 86400000, &timeout))
				return 2;
			break;
		default:
			return bad_usage(cmd, "bad option");
		}
	}
	args = argv + optind;
	nargs = argc - optind;
	libbpf_set_print(libbpf_print);

	/* the filter text: one argument or -f FILE */
	if (!strcmp(cmd, "load") || !strcmp(cmd, "set") || !strcmp(cmd, "register") ||
	    !strcmp(cmd, "compile")) {
		int want = strcmp(cmd, "compile") ? 1 : 0; /* PIN first */
		bool shared_load = !strcmp(cmd, "load") && lo.shared;

		if (shared_load && file)
			return bad_usage(cmd, "a shared engine has no filter of its own: units register theirs (no -f)");
		if (nargs < want + (file || shared_load ? 0 : 1) ||
		    nargs > want + (file || shared_load ? 0 : 1))
			return bad_usage(cmd, "expected %s%s", want ? "PIN and " : "",
					 shared_load ? "no filter (units register theirs)" :
					 file ? "no filter argument with -f" : "a filter (or -f FILE)");
		if (file) {
			text = read_file(file);
			if (!text)
				return 1;
		} else if (!shared_load) {
			text = strdup(args[want]);
		}
		if (text && strlen(text) > CGF_EXPR_MAX_TEXT) {
			err("filter text too long: %zu bytes, at most %u (16 MiB)", strlen(text),
			    CGF_EXPR_MAX_TEXT);
			free(text);
			return 1;
		}
		if (!strcmp(cmd, "load"))
			r = do_load(args[0], text, &lo);
		else if (!strcmp(cmd, "set"))
			r = do_set(args[0], text);
		else if (!strcmp(cmd, "register"))
			r = do_register(args[0], cgroup, text, false);
		else
			r = do_compile(text);
		free(text);
	} else if (!strcmp(cmd, "unregister")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_register(args[0], cgroup, NULL, true);
	} else if (!strcmp(cmd, "set-add") || !strcmp(cmd, "set-del")) {
		char **items;
		int n, i;

		if (nargs < 2 || args[1][0] != '@' || (nargs < 3 && !file))
			return bad_usage(cmd, "expected PIN @SET ITEM... (or -f FILE)");
		items = read_items(file, args + 2, nargs - 2, &n);
		if (!items)
			return 1;
		if (!n) {
			err("no items to %s", cmd + 4);
			r = -EINVAL;
		} else {
			r = do_set_edit(args[0], args[1], items, n, !strcmp(cmd, "set-add"));
		}
		for (i = 0; i < n; i++)
			free(items[i]);
		free(items);
	} else if (!strcmp(cmd, "show")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_show(args[0], show_code, json);
	} else if (!strcmp(cmd, "list")) {
		if (nargs > 1)
			return bad_usage(cmd, "expected at most one directory");
		r = do_list(nargs ? args[0] : "/sys/fs/bpf");
	} else if (!strcmp(cmd, "stats")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_stats(args[0], json);
	} else if (!strcmp(cmd, "monitor")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_monitor(args[0], (long)count, (long)timeout, json);
	} else if (!strcmp(cmd, "check")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_check(args[0], quiet);
	} else if (!strcmp(cmd, "unload")) {
		if (nargs != 1)
			return bad_usage(cmd, "expected PIN");
		r = do_unload(args[0], detach);
	}
	free(libbpf_log);
	return r ? 1 : 0;
}
