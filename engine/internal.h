/* SPDX-License-Identifier: GPL-2.0-only */
/* Inside the engine library: what its files share (see engine.h). */
#ifndef CGF_ENGINE_INTERNAL_H
#define CGF_ENGINE_INTERNAL_H

#include "engine.h"
#include "sys_bpf.h"

#define CGF_ENTRY_DEDICATED "cgf_dedicated"  /* names of the entry programs */
#define CGF_ENTRY_SHARED "cgf_shared"
#define CGF_FILTER_NAME "cgf_filter"         /* of generated filter programs */
#define CGF_DROP_NAME "cgf_drop"
#define CGF_INFO_NAME "cgf_info"

/* The engine's maps (engine.c): name in PIN_maps/, shape, where its fd is. */
struct cgf_engine_map {
	const char *name;
	enum bpf_map_type type;
	uint32_t key_size, value_size, entries; /* entries 0: by mode */
	size_t fd_off;
	bool shared_only;
};
extern const struct cgf_engine_map cgf_engine_maps[];
extern const size_t cgf_engine_nmaps;
int *cgf_engine_map_fd(struct cgf_engine *e, size_t i);
int cgf_engine_paths(struct cgf_engine *e, const char *pin);

/* The key after cur (NULL: the first): 1, 0 at the end, -errno when the
 * walk failed (never to be taken for the end of the map). */
int cgf_next_key(int fd, const void *cur, void *next);
int cgf_clear_leftover(const char *dir, const char *why);

/* ---- a filter program being made (filter.c) ---- */

struct cgf_built_set {
	char name[CGF_SET_NAME_LEN];
	int outer;
	enum cgf_type type;
	bool fresh;             /* declared by this filter: pin it once in force */
	/* an address set: its addresses, compiled in, and the array of maps
	 * holding the contents they were read from (bound to the program) */
	struct cgf_set *addrs;
	int snap;
};
struct cgf_built {
	int prog;
	struct cgf_built_set *sets;
	size_t nsets;
	uint32_t gen;
	int mode;               /* enum cgf_run_mode */
	bool learning;          /* records flows (cgfilter learn) */
	char **dynamic;         /* the names of the dynamic sets it declares */
	size_t ndynamic;
	char *names;            /* its literal sets' host names (CGF_INFO_NAMES) */
};
/* cgf_filter_build(): declarations in the text make new sets; or are the
 * engine's sets as they are (a mode change rebuilds the filter in force) */
#define CGF_BUILD_DECLS 1
#define CGF_BUILD_KEEP_SETS 2
/* Parse, generate, create the literal sets, load: a program; nothing of
 * the engine changed (no lock needed: the verifier's time is spent here). */
/* names: how host names are resolved (NULL: all now) */
int cgf_filter_build(struct cgf_engine *e, const char *text, unsigned int flags, int mode,
		     int learn_fd, struct cgf_names *names, struct cgf_built *b);
/* Give it its text, owner and generation (the info map), to go in a slot. */
int cgf_filter_seal(struct cgf_built *b, const char *text, uint64_t owner, uint32_t gen);
/* Pin the sets the filter declared (once it is in force). */
int cgf_built_pin_sets(struct cgf_engine *e, const struct cgf_built *b);
void cgf_built_free(struct cgf_built *b);
/* slots[slot] = prog: the one update that switches a filter. */
int cgf_slot_put(struct cgf_engine *e, uint32_t slot, int prog);
/* Build again, and put in force, every filter that compiled in a named
 * address set whose contents changed since (locked). */
int cgf_engine_sync(struct cgf_engine *e);
/* Make the pins agree with the filters in force (after a killed command). */
int cgf_engine_repair(struct cgf_engine *e);

/* ---- named sets (sets.c) ---- */

#define SET_PREFIX "set_"       /* PIN_maps/set_NAME */

/* PIN_maps/set_NAME: -ENOENT if there is none (no message). */
int cgf_set_open(const struct cgf_engine *e, const char *name, int *outer, enum cgf_type *type);
/* A named address set's addresses now, and a new array of maps holding
 * the contents they were read from (cgf_built_set). */
int cgf_set_addrs(int outer, struct cgf_set *s, int *snap);
/* The id of the contents (inner map) a named set holds now, or 0. */
uint32_t cgf_set_contents_id(int outer);
/* A new set (array of maps and contents), not pinned. */
int cgf_set_new(const struct cgf_set *s, int *outer);
/* refresh: the named sets' host names that are due (all with force), each
 * set changed in one update; *changed counts them. */
int cgf_set_refresh(struct cgf_engine *e, bool force, int *changed);
/* Pin outer as set_NAME, replacing what is there in one step. */
int cgf_set_pin(const struct cgf_engine *e, const char *name, int outer);

#endif /* CGF_ENGINE_INTERNAL_H */
