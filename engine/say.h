/* SPDX-License-Identifier: GPL-2.0-only */
/* Messages on standard error, escaped, one write each (say.c). */
#ifndef CGF_SAY_H
#define CGF_SAY_H

#include <stdarg.h>
#include <stdio.h>

/* "prefix: message\n" (the message alone if prefix is NULL) on stderr, its
 * control characters escaped */
void cgf_vsay(const char *prefix, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void cgf_say(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with its control characters written as \n, \t or \xNN */
void cgf_put_escaped(FILE *f, const char *s);

#endif /* CGF_SAY_H */
