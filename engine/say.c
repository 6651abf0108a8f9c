// SPDX-License-Identifier: GPL-2.0-only
/*
 * Messages on standard error, for cgfilter and for cgfilter-wrap (which
 * links this file alone of the engine): a control character in a message
 * (from a pin, cgroup or file name, an option's value) is written escaped,
 * so that one message is one line and cannot pass for another, and each
 * message is one write(2), so that lines of processes sharing a stderr do
 * not mix.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "say.h"

void cgf_put_escaped(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/* "PREFIX: message" (or the message alone, prefix NULL) on one line of
 * stderr, its control characters escaped. */
void cgf_vsay(const char *prefix, const char *fmt, va_list ap)
{
	char *msg = NULL, *line = NULL;
	size_t len = 0;
	FILE *f;

	if (vasprintf(&msg, fmt, ap) < 0) {
		fprintf(stderr, "%s: (out of memory for a message)\n", prefix ? prefix : "cgfilter");
		return;
	}
	/* the line whole, then one write: stderr is unbuffered, and lines of
	 * processes sharing it must not mix */
	f = open_memstream(&line, &len);
	if (f) {
		if (prefix)
			fprintf(f, "%s: ", prefix);
		cgf_put_escaped(f, msg);
		fputc('\n', f);
	}
	if (f && !fclose(f))
		fwrite(line, 1, len, stderr);
	else
		fprintf(stderr, "%s: (out of memory for a message)\n", prefix ? prefix : "cgfilter");
	free(line);
	free(msg);
}

void cgf_say(const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cgf_vsay(prefix, fmt, ap);
	va_end(ap);
}
