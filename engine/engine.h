/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libcgfengine: the cgfilter engine as a library.  An engine is a pinned
 * entry program (PIN) and its maps (PIN_maps/), laid out in
 * include/cgf_abi.h.  The kernel owns the state: the filter in force is the
 * program in a slot of the entry program's program array, and everything a
 * filter is (its code, its literal sets, its text, its generation) hangs
 * off that program, so one update of the slot switches all of it, and the
 * kernel frees what the old program alone used.  A command killed at any
 * instant leaves the old filter whole or the new one whole; what it left
 * pinned half-way is repaired or cleared by the next command.
 *
 * Functions return 0 or -errno and print one line on what failed (through
 * cgf_err); changing functions need an engine opened with the lock.
 */
#ifndef CGF_ENGINE_H
#define CGF_ENGINE_H

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/bpf.h>

#include "cgf_abi.h"
#include "expr.h"
#include "say.h"

/* ---- messages ------------------------------------------------------------ */

extern const char *cgf_prog;    /* prefix of messages: "cgfilter" */
extern int cgf_verbose;
extern int cgf_quiet;           /* cgf_err prints nothing (list skips quietly) */
void cgf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A note on standard error: what was done besides the main result. */
void cgf_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- an engine ------------------------------------------------------------ */

enum cgf_mode {
	CGF_MODE_DEDICATED = 1, /* one filter for every cgroup it is attached to */
	CGF_MODE_SHARED = 2,    /* a filter per cgroup, registered by each unit */
};

#define CGF_SHARED_SLOTS 4096   /* cgroups a shared engine can hold */
#define CGF_EVENTS_BYTES (64 * 1024)

struct cgf_engine {
	char pin[PATH_MAX];
	char dir[PATH_MAX + 8];         /* PIN_maps */
	enum cgf_mode mode;
	int entry;                      /* the pinned entry program */
	uint32_t entry_id;
	int slots, drops, stats, ctl, ratelimit, events, cgroups; /* cgroups: shared only */
	int scratch;
	int lock;                       /* flock on dir, when changing */
	uint32_t gen;                   /* dedicated: of the filter in force, read
					 * when the lock was taken */
	int exe_test_fd;                /* tests only: cgf_load_opts (not owned) */
};

struct cgf_load_opts {
	bool shared;
	unsigned int events_per_sec;
	/* tests only (no command sets it): exe is read from this array of one
	 * struct cgf_exe_id, not from the packet's socket, so that
	 * BPF_PROG_TEST_RUN can give each packet an executable */
	bool exe_test;
	int exe_test_fd;
	/* called with the entry program's id before anything is pinned */
	void (*before_pin)(uint32_t prog_id, void *ctx);
	void *ctx;
};

/* Load an engine at pin (text: its filter; NULL for a shared engine). */
/* Parse a filter; a bad one is said (cgf_err), with the place. */
int cgf_filter_parse(const char *text, const struct cgf_parse_opts *po, struct cgf_expr **x);
/* Parse the text of a filter in force (stored: its host names as stored, its
 * executables not opened, so that a file gone since does not hide it);
 * failures said. */
int cgf_filter_parse_stored(const char *text, struct cgf_expr **x);
/* Whether a filter in force declares dynamic set @name: 1, 0, or -errno
 * (said).  A named set of that name would be another set beside it. */
int cgf_engine_has_dynamic(const struct cgf_engine *e, const char *name);
int cgf_engine_load(const char *pin, const char *text, const struct cgf_load_opts *o);
/* Open the engine at pin, checking that PIN_maps/ belongs to it; with lock,
 * take the engine's lock and repair what a killed command left half-way. */
int cgf_engine_open(struct cgf_engine *e, const char *pin, bool lock);
/* Whether pin holds a cgfilter engine's entry program: 1, 0, or -errno. */
int cgf_pin_is_engine(const char *pin);
void cgf_engine_init(struct cgf_engine *e);
void cgf_engine_close(struct cgf_engine *e);
/* Take the engine's lock (if not held), check it is still the engine that
 * was opened, and repair what a killed command left half-way. */
int cgf_engine_lock(struct cgf_engine *e);
/* Remove PIN and PIN_maps/ (a half-made or foreign PIN_maps/ too, saying
 * what was removed); detach: from every cgroup first. */
int cgf_engine_unload(const char *pin, bool detach);

/* Dedicated: make text the filter in force.  *gen: its generation. */
int cgf_engine_set(struct cgf_engine *e, const char *text, uint32_t *gen);
/* Shared: the filter of cgroup (NULL: of this process); text NULL removes it. */
int cgf_engine_register(struct cgf_engine *e, const char *cgroup, const char *text);
/* The mode (enum cgf_run_mode) of the filter in force: rebuilt from its text
 * in that mode and switched in one update.  Shared: of cgroup (a path), or
 * without one of every registered cgroup, each in its own update.
 * *changed: how many filters were switched. */
int cgf_engine_set_mode(struct cgf_engine *e, const char *cgroup, int mode, int *changed);
extern const char *const cgf_run_modes[CGF_RUN_NMODES];
/* cgfilter learn.  learn_fd >= 0: start; the filter in force (shared: of
 * cgroup), which must pass everything (observe or pass mode, or the filter
 * 1), rebuilt to record flows into learn_fd (struct cgf_learn_key, an LRU
 * hash); *prog_id: the recording program.  learn_fd < 0: stop; rebuilt
 * without recording if *prog_id is still in force, else left alone and 1
 * returned (the filter was changed meanwhile). */
int cgf_engine_learn(struct cgf_engine *e, const char *cgroup, int learn_fd, uint32_t *prog_id);


/* ---- what runs ------------------------------------------------------------- */

/* A filter program, read back from its info map. */
struct cgf_filter_view {
	uint32_t prog_id;
	struct cgf_info info;
	struct cgf_info_set *sets;
	uint32_t *snaps;        /* per set: the contents it compiled in (an array
				 * of maps' id), 0 if none; NULL: none at all */
	char *text;
	char *names;    /* its host names: "NAME EXPIRES ADDR ...\n" lines, or NULL */
};
/* The filter in slot (NULL text and prog_id 0 if the slot is empty). */
int cgf_engine_filter(const struct cgf_engine *e, uint32_t slot, struct cgf_filter_view *v);
void cgf_filter_view_free(struct cgf_filter_view *v);
/* Shared: the filter of cgroup (a path); -ENOENT, said, if it has none. */
int cgf_engine_cgroup_filter(struct cgf_engine *e, const char *cgroup, struct cgf_filter_view *v);
/* 1 if a named address set that filter v compiled in has changed since
 * (a command was killed before it built v again), 0 if not, or -errno. */
int cgf_engine_filter_stale(const struct cgf_engine *e, const struct cgf_filter_view *v);
/* fn(name, contents, CGF_T_ADDR, ctx) for each named address set that
 * filter v compiled in with other contents than the set pinned now has (a
 * command was killed before it built v again, which the next command
 * does); gone: those for which no address set of that name is pinned now
 * (removed by hand: v keeps its own until made again).  What v keeps.  0, or what fn returned, or -errno (said). */
int cgf_engine_filter_kept(const struct cgf_engine *e, const struct cgf_filter_view *v, bool gone,
			   int (*fn)(const char *name, int outer, enum cgf_type type, void *ctx),
			   void *ctx);
/* The program's own: 0, -ENOENT if fd is not a cgfilter filter. */
int cgf_filter_read(int prog_fd, struct cgf_filter_view *v);

/* Shared mode: each (cgroup, direction) with its slot; fn returns non-zero
 * to stop. */
int cgf_engine_each_cgroup(const struct cgf_engine *e,
			   int (*fn)(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx),
			   void *ctx);

int cgf_engine_stats(const struct cgf_engine *e, uint64_t st[CGF_NSTATS]);
/* The monitor's lease on drop events (cgf_abi.h), one monitor at a time;
 * l: what this monitor last wrote.  take: -EBUSY while another monitor's
 * lease runs (said, as every failure of take; -EINTR, unsaid, if *stop
 * while it waits for the engine's lock); renew: -EBUSY, *other its pid, if
 * another took it over; end: gives it up (events stop). */
struct cgf_lease {
	uint64_t until;
	uint32_t pid;
};
int cgf_engine_lease_take(const struct cgf_engine *e, struct cgf_lease *l,
			  const volatile sig_atomic_t *stop);
int cgf_engine_lease_renew(const struct cgf_engine *e, struct cgf_lease *l, uint32_t *other);
void cgf_engine_lease_end(const struct cgf_engine *e, const struct cgf_lease *l);

/* ---- executables ---- */

/* The map of executables by socket (cgf_abi.h), set up and recording if it
 * was not: its fd, or -errno (said).  *lock: a lock that keeps exe-ids stop
 * from removing the map; to be closed once the program reading the map is
 * loaded (so that stop counts it). */
int cgf_exe_ids(int *lock);
/* Print whether executables are recorded (exit status: 0 if they are);
 * stop: detach and remove the recorder (filters naming executables then
 * see none for sockets made from then on): refused while filters read the
 * map, unless force. */
int cgf_exe_ids_status(bool stop, bool force);
/* 1 if the recorder runs (pinned and attached), else 0. */
int cgf_exe_recording(void);

/* ---- named sets -------------------------------------------------------------- */

/* Add (or remove) items, all or none, creating the set on the first add. */
int cgf_set_edit(struct cgf_engine *e, const char *name, char **items, int n, bool add);
/* Every named set of the engine: those the filter in force v uses (NULL:
 * none), as it uses them, then the other ones pinned, by name. */
int cgf_set_each(const struct cgf_engine *e, const struct cgf_filter_view *v,
		 int (*fn)(const char *name, int outer, enum cgf_type type, void *ctx), void *ctx);
/* The items of a set, as text ("10.0.0.0/8", "22", "8000..8100"), in order;
 * fn returns non-zero to stop.  *count: how many (all of them). */
int cgf_set_items(int outer, enum cgf_type type, int (*fn)(const char *item, void *ctx), void *ctx,
		  uint64_t *count);
/* The entries of the dynamic sets of filter program prog_id that have not
 * expired: fn gets the set's index (0, 1, ... in the order the filter
 * declares them), the item ("10.0.0.1", "22") and the ns it has left. */
int cgf_dyn_each(uint32_t prog_id,
		 int (*fn)(unsigned int idx, const char *item, uint64_t left_ns, void *ctx), void *ctx);
/* The type of a named set's array of maps: 0, or -errno. */
int cgf_set_type(int outer, enum cgf_type *type);
/* The addresses of address set outer (host names' included), added to the
 * literal set *s (its cidrs, to be freed). */
int cgf_set_read_addrs(int outer, struct cgf_set *s);

/* ---- host names (names.c) ------------------------------------------------------ */

/* How long a name's addresses hold before cgfilter refresh resolves it
 * again: the smallest TTL of its DNS answers (A, AAAA: res_query; at most
 * CGF_NAME_TTL_MAX) when the hosts file does not name it and DNS answers,
 * else CGF_NAME_LIFETIME seconds; $CGFILTER_NAME_LIFETIME (1 s to a week),
 * when set, for every name. */
#define CGF_NAME_LIFETIME 300
#define CGF_NAME_TTL_MAX 86400
uint32_t cgf_name_lifetime(void);           /* the default, in seconds */
uint64_t cgf_name_expiry(const char *name); /* when name, resolved now, expires */
uint64_t cgf_now(void);         /* CLOCK_REALTIME seconds */
struct cgf_name {
	char name[CGF_HOST_MAX + 2];
	uint64_t expires;       /* CLOCK_REALTIME seconds */
	struct cgf_cidr *addrs; /* sorted, /32 and /128 */
	size_t n;
};
enum cgf_names_policy {
	CGF_NAMES_RESOLVE,      /* every name resolved now; one that fails is an error */
	CGF_NAMES_KEEP,         /* the addresses in old (a mode change) */
	CGF_NAMES_DUE,          /* old's, resolved again once expired (refresh) */
	CGF_NAMES_FORCE,        /* every name resolved again (refresh --force) */
};
struct cgf_names {
	struct cgf_name *v;
	size_t n, cap;
	/* for cgf_names_get: */
	const struct cgf_names *old;   /* what runs now */
	int policy;                    /* enum cgf_names_policy */
	int resolved, changed, failed; /* names resolved, with new addresses, kept
					* after a failure (warned) */
};
/* The addresses of host name now: 0, or -1 with why (one line). */
int cgf_resolve_host(const char *name, struct cgf_cidr **addrs, size_t *n, char *why, size_t whylen);
/* The addresses of name by t's policy, remembered in t (*addrs: a copy). */
int cgf_names_get(struct cgf_names *t, const char *name, struct cgf_cidr **addrs, size_t *n,
		  char *why, size_t whylen);
struct cgf_name *cgf_names_find(const struct cgf_names *t, const char *name);
int cgf_names_put(struct cgf_names *t, const char *name, uint64_t expires,
		  const struct cgf_cidr *addrs, size_t n);
void cgf_names_del(struct cgf_names *t, const char *name);
int cgf_names_parse(const char *text, struct cgf_names *t);
char *cgf_names_format(const struct cgf_names *t);   /* NULL: out of memory */
void cgf_names_free(struct cgf_names *t);
/* For the parser (cgf_parse_opts.resolve_name, ctx a struct cgf_names):
 * the addresses a table holds for a name, none if it has none; for reading
 * a filter's text again as it was made, without resolving anything. */
int cgf_names_stored(const char *name, const struct cgf_set *s, struct cgf_cidr **addrs,
		     size_t *n, char *why, size_t whylen, void *ctx);
/* Every name of t->old into t as it is. */
int cgf_names_keep_old(struct cgf_names *t);
/* How many names are due (expired; every one with force). */
int cgf_names_due(const struct cgf_names *t, bool force);

/* cgfilter refresh: resolve again the names of the filters in force (every
 * cgroup's in a shared engine) and of the named sets that are due (all with
 * force), each filter switched, each set changed, in one update.  A name
 * that fails keeps its addresses, with a warning.  *changed: updates made. */
int cgf_engine_refresh(struct cgf_engine *e, bool force, int *changed);
/* A named set's host names (t zeroed if none): 0 or -errno. */
int cgf_set_names(int outer, struct cgf_names *t);

/* ---- cgroups ------------------------------------------------------------------ */

/* Where cgroup2 is mounted (the last reachable mount). */
int cgf_cgroup2_root(char *buf, size_t len);
/* Every (cgroup, direction) prog_id is attached to: fn gets the cgroup's
 * path below the root ("/" for the root).  Returns how many, or -errno. */
int cgf_attachments(uint32_t prog_id,
		    int (*fn)(const char *path, enum bpf_attach_type dir, void *ctx), void *ctx);
/* The path of the cgroup with this id below the root, or "cgroup ID". */
const char *cgf_cgroup_path(uint64_t id, char *buf, size_t len);
/* Open a cgroup given as an absolute path in the cgroup2 tree or one
 * relative to its root (its path in path); -errno, said. */
int cgf_cgroup_open(const char *cgroup, char *path, size_t len);
/* The same, only the path; -errno, said. */
int cgf_cgroup_resolve(const char *cgroup, char *path, size_t len);
/* Attach (or detach) the engine's entry program to cgroup for the
 * directions in dirs (bit 0 ingress, bit 1 egress), with other programs
 * (multi); all or nothing; attaching twice and detaching what is not
 * attached are refused. */
int cgf_engine_attach(const struct cgf_engine *e, const char *cgroup, unsigned int dirs, bool attach);

/* ---- small helpers -------------------------------------------------------------- */

uint32_t cgf_prog_id(int fd);
uint32_t cgf_map_id(int fd);
/* Check that the directory pin would be in is on a BPF filesystem and the
 * name can be a pin ('.' is not); with create, creates missing parents
 * (inside bpffs only). */
int cgf_check_pin_path(const char *pin, bool create);
/* Lock PIN's directory (an fd to close): load and unload hold it while
 * they make or remove the pins of an engine, so that neither takes the
 * other's PIN_maps/ in the making for a leftover.  A command that holds
 * an engine's lock (PIN_maps/) may take it; never the other way round. */
int cgf_lock_pin_dir(const char *pin);
/* Lock directory dir (an fd to close); -ENOENT, not said, if there is none;
 * other failures said. */
int cgf_lock_dir(const char *dir);
/* Whether the lock fd (cgf_lock_dir) is on dir as it is now: not on one
 * removed, or removed and made again, while the command waited for it. */
bool cgf_lock_is_current(int fd, const char *dir);
/* Why bpf_obj_get(path) failed with errno err, in words ("no such pin...",
 * "a directory, not a pin", "not a pin: it is not on a BPF filesystem") */
const char *cgf_pin_error(const char *path, int err);
/* Why cgf_cgroup2_root() failed (r), in words */
const char *cgf_root_error(int r);

#endif /* CGF_ENGINE_H */
