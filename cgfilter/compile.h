/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The cgfilter compiler: a parsed filter expression (lib/expr.h) into the
 * engine's forward-only branching program (include/cgf_engine.h).
 */
#ifndef CGF_COMPILE_H
#define CGF_COMPILE_H

#include <stdio.h>

#include "cgf_engine.h"
#include "expr.h"

/* Literal integer sets of at most this many ranges are tested inline. */
#define CGF_INLINE_RANGES 4

/*
 * Mark the sets of e that the code tests inline (set->inlined = 1); the
 * others need set->id filled in by the caller before cgf_compile().
 */
void cgf_mark_inline_sets(struct cgf_expr *e);

/* Returns 0, or -E2BIG/-EINVAL with a one-line reason in why. */
int cgf_compile(const struct cgf_expr *e, struct cgf_code *out, char *why, size_t whylen);

/* Check what the engine relies on: jumps forward, registers in range. */
int cgf_code_valid(const struct cgf_code *c, char *why, size_t whylen);

/* Print the program, one instruction a line. */
void cgf_disasm(const struct cgf_code *c, FILE *f);

#endif /* CGF_COMPILE_H */
