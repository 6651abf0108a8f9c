// SPDX-License-Identifier: GPL-2.0-only
/* cgfilter set-add, set-del: items from the command line and/or a file. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

struct items {
	char **v;
	int n, cap;
};

static int push(struct items *it, const char *s)
{
	if (it->n == it->cap) {
		char **p = realloc(it->v, (it->cap = it->cap * 2 + 16) * sizeof(*p));

		if (!p)
			return -ENOMEM;
		it->v = p;
	}
	it->v[it->n] = strdup(s);
	return it->v[it->n++] ? 0 : -ENOMEM;
}

/* Items of a file: one a line, '#' starts a comment, blank lines skipped. */
static int read_items(const char *file, struct items *it)
{
	char *buf = read_text_file(file), *line, *save;

	if (!buf)
		return -EINVAL;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *h = strchr(line, '#'), *s = line, *e;

		if (h)
			*h = 0;
		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = 0;
		if (*s && push(it, s)) {
			free(buf);
			return -ENOMEM;
		}
	}
	free(buf);
	return 0;
}

/* -EINVAL, said, if a filter in force has a dynamic set of that name: the
 * filter changes it, set-add and set-del would make a named set beside it
 * (or an error, said, if the filters in force cannot be read) */
static int dynamic_in_force(const struct cgf_engine *e, const char *name)
{
	int r = cgf_engine_has_dynamic(e, name);

	if (r > 0) {
		cgf_err("@%s is a dynamic set of %s: its add() and del() change it, set-add and set-del cannot",
			name, e->mode == CGF_MODE_DEDICATED ? "the filter in force" : "a registered filter");
		return -EINVAL;
	}
	return r;
}

static int edit(struct cmd_args *a, bool add)
{
	struct items it = { 0 };
	struct cgf_engine e;
	int i, r = 0;

	if (a->argc < 2 || a->argv[1][0] != '@' || (a->argc < 3 && !a->file))
		return usage_error(a, "expected PIN @SET ITEM... (or -f FILE)");
	for (i = 2; i < a->argc && !r; i++)
		r = push(&it, a->argv[i]);
	if (!r && a->file)
		r = read_items(a->file, &it);
	if (r) {
		if (r == -ENOMEM)
			cgf_err("out of memory");
	} else if (!it.n) {
		cgf_err("no items to %s", add ? "add" : "del");
		r = -EINVAL;
	} else {
		r = cgf_engine_open(&e, a->argv[0], true);
		if (!r) {
			r = dynamic_in_force(&e, a->argv[1] + 1);
			if (!r)
				r = cgf_set_edit(&e, a->argv[1], it.v, it.n, add);
			cgf_engine_close(&e);
		}
	}
	for (i = 0; i < it.n; i++)
		free(it.v[i]);
	free(it.v);
	return r;
}

int cmd_set_add(struct cmd_args *a)
{
	return edit(a, true);
}

int cmd_set_del(struct cmd_args *a)
{
	return edit(a, false);
}
