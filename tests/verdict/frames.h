/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading test frames, for the tools that run them through cgroup_skb
 * programs with BPF_PROG_TEST_RUN (tests/verdict/verdict-run.c,
 * bench/pktcost.c).  A frames file has one Ethernet frame per line in hex
 * (whitespace inside ignored), optionally after a LABEL word and then the
 * word "ingress": a frame received (run with __sk_buff.ingress_ifindex 1,
 * as loopback's), else one sent (ingress_ifindex 0); empty lines and lines
 * starting with '#' are skipped.
 */
#ifndef CGF_FRAMES_H
#define CGF_FRAMES_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct frame {
	char *label;            /* NULL when the file has no labels */
	int ingress;            /* received: ingress_ifindex 1 */
	unsigned char *data;
	size_t len;
};

struct frames {
	struct frame *v;
	size_t n, cap;
};

static int frames_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One line into fm; 0, or -EINVAL/-ENOMEM with the reason printed. */
static int frames_parse_line(const char *prog, const char *path, int lineno, char *p, int labelled,
			     struct frame *fm)
{
	int hi = -1;

	if (labelled) {
		char *label;

		p += strspn(p, " \t");
		label = p;
		p += strcspn(p, " \t\r\n");
		if (!*p || p == label || *p == '\r' || *p == '\n') {
			fprintf(stderr, "%s: Failed to read %s line %d: need LABEL HEX\n", prog, path,
				lineno);
			return -EINVAL;
		}
		*p++ = 0;
		fm->label = strdup(label);
		if (!fm->label)
			return -ENOMEM;
	}
	p += strspn(p, " \t");
	if (!strncmp(p, "ingress", 7) && (p[7] == ' ' || p[7] == '\t')) {
		fm->ingress = 1;
		p += 8;
	}
	fm->data = malloc(strlen(p) / 2 + 1);
	if (!fm->data)
		return -ENOMEM;
	for (; *p; p++) {
		int v = frames_hexval((unsigned char)*p);

		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			continue;
		if (v < 0) {
			fprintf(stderr, "%s: Failed to read %s line %d: '%c' is not hex\n", prog, path,
				lineno, *p);
			return -EINVAL;
		}
		if (hi < 0) {
			hi = v;
		} else {
			fm->data[fm->len++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0 || !fm->len) {
		fprintf(stderr, "%s: Failed to read %s line %d: %s\n", prog, path, lineno,
			fm->len ? "odd number of hex digits" : "no frame");
		return -EINVAL;
	}
	return 0;
}

static void frames_free(struct frames *fr)
{
	size_t i;

	for (i = 0; i < fr->n; i++) {
		free(fr->v[i].label);
		free(fr->v[i].data);
	}
	free(fr->v);
	memset(fr, 0, sizeof(*fr));
}

/* Read path ('-': stdin) into fr; 0 or -errno, with the reason printed. */
static int frames_read(const char *prog, const char *path, int labelled, struct frames *fr)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, r = 0;

	if (!f) {
		r = -errno;
		fprintf(stderr, "%s: Failed to open %s: %s\n", prog, path, strerror(errno));
		return r;
	}
	while (getline(&line, &cap, f) >= 0) {
		struct frame fm = { 0 };

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == 0)
			continue;
		r = frames_parse_line(prog, path, lineno, line, labelled, &fm);
		if (!r && fr->n == fr->cap) {
			size_t nc = fr->cap ? fr->cap * 2 : 64;
			struct frame *nv = realloc(fr->v, nc * sizeof(*nv));

			if (nv) {
				fr->v = nv;
				fr->cap = nc;
			} else {
				r = -ENOMEM;
			}
		}
		if (r) {
			free(fm.label);
			free(fm.data);
			break;
		}
		fr->v[fr->n++] = fm;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (r == -ENOMEM)
		fprintf(stderr, "%s: Failed to read %s: out of memory\n", prog, path);
	return r;
}

#endif /* CGF_FRAMES_H */
