// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter show, list, stats.  What they print is read from the kernel:
 * the filter in force from the program in its slot, its named sets through
 * the maps that program uses, the cgroups from the cgroup tree.  show
 * prints the whole picture or nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cmd.h"
#include "emit_bpf.h"

/* ---- JSON ---------------------------------------------------------------------- */

size_t utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 :
	    s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms and surrogates */
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

void json_str(FILE *f, const char *s)
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
		p += n;
	}
	fputc('"', f);
}

/* ---- show ------------------------------------------------------------------------- */

struct show {
	const struct cgf_engine *e;
	FILE *f;
	bool json;
	int n;
	const char *indent;     /* of a set's lines (NULL: 4 spaces) */
};

/* the plural ending of a count */
#define PL(n) ((n) == 1 ? "" : "s")

struct items {
	FILE *f;
	int n, max;
	bool json, quote;       /* quote: executables, "PATH" as in a filter */
};

static int print_item(const char *item, void *ctx)
{
	struct items *p = ctx;

	if (p->max && p->n >= p->max) {
		fprintf(p->f, " ...");
		return 1;
	}
	if (p->json) {
		fputs(p->n ? "," : "", p->f);
		json_str(p->f, item);
	} else if (p->quote) {
		const char *c;

		fprintf(p->f, "%s\"", p->n ? ", " : " ");
		for (c = item; *c; c++)
			if (*c == '"' || *c == '\\')
				fprintf(p->f, "\\%c", *c);
			else if ((unsigned char)*c < 0x20 || *c == 0x7f)
				fprintf(p->f, "\\x%02x", (unsigned char)*c);
			else
				fputc(*c, p->f);
		fputc('"', p->f);
	} else {
		fprintf(p->f, "%s%s", p->n ? ", " : " ", item);
	}
	p->n++;
	return 0;
}

/* Host names with their addresses and when refresh resolves them again:
 * text lines under indent, or JSON ',"names":[...]'. */
static void print_names(FILE *f, bool json, const char *text, const char *indent)
{
	struct cgf_names t;
	uint64_t now = cgf_now();
	size_t i, j;
	char a[64];

	if (!text || cgf_names_parse(text, &t))
		return;
	if (json)
		fprintf(f, ",\"names\":[");
	for (i = 0; i < t.n; i++) {
		const struct cgf_name *n = &t.v[i];
		long long left = (long long)n->expires - (long long)now;

		if (json) {
			fputs(i ? "," : "", f);
			fprintf(f, "{\"name\":");
			json_str(f, n->name);
			fprintf(f, ",\"expires\":%llu,\"expires_in\":%lld,\"addresses\":[",
				(unsigned long long)n->expires, left);
		} else {
			fprintf(f, "%s%s:", indent, n->name);
		}
		for (j = 0; j < n->n; j++) {
			cgf_format_cidr(&n->addrs[j], a, sizeof(a));
			fprintf(f, json ? "%s\"%s\"" : "%s%s", j ? (json ? "," : ", ") : (json ? "" : " "), a);
		}
		if (json)
			fprintf(f, "]}");
		else if (left > 0)
			fprintf(f, " (resolved again in %lld s)\n", left);
		else
			fprintf(f, " (due: resolved again at the next refresh)\n");
	}
	if (json)
		fprintf(f, "]");
	cgf_names_free(&t);
}

static int show_set(const char *name, int outer, enum cgf_type type, void *ctx)
{
	struct show *s = ctx;
	struct items it = { .f = s->f, .json = s->json, .max = s->json ? 0 : 20,
			    .quote = type == CGF_T_EXE };
	const char *tn = type == CGF_T_ADDR ? "addresses" : type == CGF_T_EXE ? "executables" : "integers";
	uint64_t count;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int r;

	if (!m)
		return -errno;
	it.f = m;
	r = cgf_set_items(outer, type, print_item, &it, &count);
	fclose(m);
	if (r) {
		free(buf);
		return r;
	}
	if (s->json) {
		fputs(s->n++ ? "," : "", s->f);
		json_str(s->f, name);
		fprintf(s->f, ":{\"type\":\"%s\",\"count\":%" PRIu64 ",\"items\":[%s]", tn, count,
			buf ? buf : "");
	} else {
		fprintf(s->f, "%s@%s (%s, %" PRIu64 " %s):%s\n", s->indent ? s->indent : "    ", name,
			tn, count,
			type == CGF_T_ADDR ? (count == 1 ? "prefix" : "prefixes") :
			type == CGF_T_EXE ? (count == 1 ? "file" : "files") :
			(count == 1 ? "value" : "values"), buf ? buf : "");
		s->n++;
	}
	if (type == CGF_T_ADDR) {
		struct cgf_names t;
		char *text;

		r = cgf_set_names(outer, &t);
		text = !r && t.n ? cgf_names_format(&t) : NULL;
		if (!r && t.n && !text)
			r = -ENOMEM;
		if (text) {
			char in[32];

			snprintf(in, sizeof(in), "%s    ", s->indent ? s->indent : "    ");
			if (!s->json)
				fprintf(s->f, "%s  host names:\n", s->indent ? s->indent : "    ");
			print_names(s->f, s->json, text, in);
			free(text);
		}
		cgf_names_free(&t);
		if (r) {
			free(buf);
			return r;
		}
	}
	if (s->json)
		fprintf(s->f, "}");
	free(buf);
	return 0;
}

/* ---- dynamic sets: the entries of the filter in force --------------------------- */

struct dyn_show {
	FILE *f;
	bool json;
	char **lines;           /* per set, what is printed of its entries */
	size_t *len;
	FILE **m;
	unsigned int *count;    /* per set, how many */
	unsigned int nsets;
};

static int dyn_entry(unsigned int idx, const char *item, uint64_t left_ns, void *ctx)
{
	struct dyn_show *d = ctx;
	FILE *m;

	if (idx >= d->nsets)
		return 0;
	m = d->m[idx];
	if (!d->json && d->count[idx]++ >= 20) /* as for named sets: the first 20 */
		return 0;
	if (d->json) {
		fputs(ftell(m) ? "," : "", m);
		fprintf(m, "{\"item\":");
		json_str(m, item);
		fprintf(m, ",\"left_ms\":%" PRIu64 "}", left_ns / 1000000);
	} else {
		fprintf(m, "%s%s (%.1f s left)", ftell(m) ? ", " : " ", item, (double)left_ns / 1e9);
	}
	return 0;
}

/*
 * The dynamic sets of the filter (text, program prog_id): each with its
 * timeout and the entries that have not expired, in the order declared.
 */
static int show_dynamic(FILE *f, bool json, const char *text, uint32_t prog_id)
{
	struct dyn_show d = { .f = f, .json = json };
	const struct cgf_set *sets[256], *s;
	struct cgf_expr *x = NULL;
	unsigned int i;
	int r = 0;

	if (text && (r = cgf_filter_parse_stored(text, &x)))
		return r;
	if (x)
		for (s = x->sets; s && d.nsets < 256; s = s->next)
			if (s->timeout)
				sets[d.nsets++] = s;
	if (!d.nsets) {
		cgf_expr_free(x);
		return 0;
	}
	d.lines = calloc(d.nsets, sizeof(*d.lines));
	d.len = calloc(d.nsets, sizeof(*d.len));
	d.m = calloc(d.nsets, sizeof(*d.m));
	d.count = calloc(d.nsets, sizeof(*d.count));
	for (i = 0; d.m && d.lines && d.len && d.count && i < d.nsets && !r; i++)
		if (!(d.m[i] = open_memstream(&d.lines[i], &d.len[i])))
			r = -errno;
	if (!d.m || !d.lines || !d.len || !d.count)
		r = -ENOMEM;
	if (!r)
		r = cgf_dyn_each(prog_id, dyn_entry, &d);
	for (i = 0; d.m && i < d.nsets; i++)
		if (d.m[i])
			fclose(d.m[i]);
	if (!r) {
		fprintf(f, json ? ",\"dynamic_sets\":{" : "  dynamic sets:\n");
		for (i = 0; i < d.nsets; i++) {
			if (json) {
				fputs(i ? "," : "", f);
				json_str(f, sets[i]->name);
				fprintf(f, ":{\"timeout\":%u,\"entries\":[%s]}", sets[i]->timeout,
					d.lines[i] ? d.lines[i] : "");
			} else {
				fprintf(f, "    @%s (timeout %u s, %u %s):%s%s\n", sets[i]->name,
					sets[i]->timeout, d.count[i], d.count[i] == 1 ? "entry" : "entries",
					d.lines[i] && d.lines[i][0] ? d.lines[i] : " (empty)",
					d.count[i] > 20 ? " ..." : "");
			}
		}
		if (json)
			fputs("}", f);
	}
	for (i = 0; d.lines && i < d.nsets; i++)
		free(d.lines[i]);
	free(d.lines);
	free(d.len);
	free(d.m);
	free(d.count);
	cgf_expr_free(x);
	if (r)
		cgf_err("cannot read the dynamic sets of program %u: %s", prog_id, strerror(-r));
	return r;
}

/* A filter text after a label: on its line if it is one line, else below. */
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
		const char *end = memchr(p, '\n', text + n - p);

		if (!end)
			end = text + n;
		fprintf(f, "    %.*s\n", (int)(end - p), p);
		p = end + 1;
	}
}

static int has_exe(struct cgf_node *n, void *ctx)
{
	(void)ctx;
	return n->kind == CGF_N_EXE;
}

/* Whether a filter's text names executables. */
static bool names_exe(const char *text)
{
	struct cgf_expr *x;
	bool r;

	if (cgf_filter_parse_stored(text, &x))
		return false;
	r = cgf_expr_postorder(x->root, has_exe, NULL) == 1;
	cgf_expr_free(x);
	return r;
}

static const char *run_mode(uint32_t m);

/* The mode of a dedicated engine's filter: *m "enforce"... (NULL: shared,
 * or no filter in force); 0, or -errno (said) when the filter in force
 * cannot be read (a mode then is a guess: none is printed). */
int dedicated_mode(const struct cgf_engine *e, const char **m)
{
	struct cgf_filter_view v;
	int r;

	*m = NULL;
	if (e->mode != CGF_MODE_DEDICATED)
		return 0;
	r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, &v);
	if (r)
		cgf_err("cannot read the filter in force in %s: %s", e->pin, strerror(-r));
	else if (v.text)
		*m = run_mode(v.info.mode);
	cgf_filter_view_free(&v);
	return r;
}

static const char *run_mode(uint32_t m)
{
	return m < CGF_RUN_NMODES ? cgf_run_modes[m] : "unknown";
}

static void when(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	if (!ns) {
		snprintf(buf, len, "never");
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* A shared engine's cgroup filter v: the named address sets it compiled
 * in that it keeps other than the engine lists them (a set-add, set-del or
 * refresh was killed before it built v again), in text lines under a note,
 * or JSON ',"kept_sets":{...}' (always there). */
static int show_kept(const struct show *s, const struct cgf_filter_view *v)
{
	struct show k = { .e = s->e, .json = s->json, .indent = "        " };
	char *buf[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	int r = 0, g, n[2] = { 0, 0 };

	for (g = 0; g < 2 && !r; g++) {
		k.f = open_memstream(&buf[g], &len[g]);
		if (!k.f)
			return -errno;
		k.n = s->json ? n[0] : 0; /* (JSON: one object, commas between) */
		r = v->text ? cgf_engine_filter_kept(s->e, v, g, show_set, &k) : 0;
		n[g] = k.n;
		if (fclose(k.f) && !r)
			r = -ENOMEM;
	}
	if (!r && s->json) {
		fprintf(s->f, ",\"kept_sets\":{%s%s}", buf[0] ? buf[0] : "", buf[1] ? buf[1] : "");
	} else if (!r) {
		if (n[0])
			fprintf(s->f, "      note: a set it uses changed after it was made (a command was killed): it keeps these until the next command on %s builds it again:\n%s",
				s->e->pin, buf[0]);
		if (n[1])
			fprintf(s->f, "      note: %s has no address set of these names now (removed by hand?): it keeps them as it was made with until its filter is registered again:\n%s",
				s->e->pin, buf[1]);
	}
	free(buf[0]);
	free(buf[1]);
	return r;
}

static int show_cgroup(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct show *s = ctx;
	struct cgf_filter_view v;
	char path[PATH_MAX];
	int r = slot ? cgf_engine_filter(s->e, slot, &v) : 0;

	if (r)
		return r;
	if (!slot)
		memset(&v, 0, sizeof(v));
	cgf_cgroup_path(cgid, path, sizeof(path));
	if (s->json) {
		fprintf(s->f, "%s{\"cgroup\":", s->n++ ? "," : "");
		json_str(s->f, path);
		fprintf(s->f, ",\"direction\":\"%s\",\"generation\":%u,\"filter_program_id\":%u,",
			dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress", v.info.gen, v.prog_id);
		if (v.text)
			fprintf(s->f, "\"mode\":\"%s\",", run_mode(v.info.mode));
		else
			fprintf(s->f, "\"mode\":null,");
		fprintf(s->f, "\"filter\":");
		if (v.text)
			json_str(s->f, v.text);
		else
			fprintf(s->f, "null");
		print_names(s->f, true, v.names, "");
		r = show_kept(s, &v);
		fprintf(s->f, "}");
	} else {
		fprintf(s->f, "    %s %s%s%s: %s\n", path, dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress",
			v.text && v.info.mode ? ", mode " : "", v.text && v.info.mode ? run_mode(v.info.mode) : "",
			v.text ? v.text : "(none: drop)");
		if (v.names)
			fprintf(s->f, "      host names:\n");
		print_names(s->f, false, v.names, "        ");
		r = show_kept(s, &v);
		s->n++;
	}
	cgf_filter_view_free(&v);
	return r;
}

static int print_attach(const char *path, enum bpf_attach_type dir, void *ctx)
{
	struct show *s = ctx;

	if (s->json) {
		fprintf(s->f, "%s{\"cgroup\":", s->n++ ? "," : "");
		json_str(s->f, path);
		fprintf(s->f, ",\"direction\":\"%s\"}", dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress");
	} else {
		fprintf(s->f, "    %s %s\n", path, dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress");
		s->n++;
	}
	return 0;
}

/* For print_code: the addresses a named address set of the filter had
 * when it was made (the contents it keeps), read once. */
struct code_sets {
	const struct cgf_filter_view *v;
	struct cgf_set *read;   /* per set of v, once read */
};

static const struct cgf_set *code_addrs(const char *name, void *ctx)
{
	struct code_sets *c = ctx;
	uint32_t k;

	for (k = 0; c->read && c->v->snaps && k < c->v->info.nsets; k++) {
		int fd;

		if (strcmp(c->v->sets[k].name, name) || !c->v->snaps[k])
			continue;
		if (c->read[k].name[0])
			return &c->read[k];
		fd = bpf_map_get_fd_by_id(c->v->snaps[k]);
		if (fd < 0 || cgf_set_read_addrs(fd, &c->read[k])) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
		snprintf(c->read[k].name, sizeof(c->read[k].name), "%s", name);
		return &c->read[k];
	}
	return NULL;
}

/* The code of the filter in force, generated again from its text. */
static void print_code(FILE *f, const struct cgf_filter_view *v)
{
	struct code_sets cs = { .v = v };
	uint32_t k;
	struct cgf_names stored = { 0 };
	struct cgf_parse_opts po = { .dialect = CGF_DIALECT_FULL, .allow_decls = 1, .any_set = 1,
				     .resolve_name = cgf_names_stored, .resolve_ctx = &stored };
	struct cgf_gen_env env = CGF_GEN_ENV_NONE;
	struct cgf_expr *x;
	struct cgf_error pe;
	struct cgf_gen g;
	char why[256];

	if (!v->text)
		return;
	cs.read = calloc(v->info.nsets + 1, sizeof(struct cgf_set));
	/* (made again from the text: an executable it names must still be
	 * there, to be read; what cannot be made again is said, not hidden) */
	if (cgf_names_parse(v->names, &stored)) {
		fprintf(f, "  code: cannot be made again: cannot read its host names\n");
		free(cs.read);
		return;
	}
	if (cgf_expr_parse(v->text, &po, &x, &pe)) {
		cgf_error_format(&pe, why, sizeof(why));
		fprintf(f, "  code: cannot be made again: %s\n", why);
		cgf_names_free(&stored);
		free(cs.read);
		return;
	}
	memset(&g, 0, sizeof(g));
	env.mode = v->info.mode < CGF_RUN_NMODES ? (int)v->info.mode : CGF_RUN_ENFORCE;
	/* (a filter made by an older version looks its sets up: no snaps) */
	env.named_addrs = v->snaps ? code_addrs : NULL;
	env.ctx = &cs;
	if (!cs.read) {
		fprintf(f, "  code: cannot be made again: out of memory\n");
	} else if (!cgf_gen_filter(x, &env, &g, why, sizeof(why))) {
		fprintf(f, "  code (%u BPF instructions, as generated):\n", g.a.n);
		cgf_asm_print(&g.a, f);
	} else {
		fprintf(f, "  code: cannot be made again: %s\n", why);
	}
	cgf_gen_free(&g);
	cgf_expr_free(x);
	cgf_names_free(&stored);
	for (k = 0; cs.read && k < v->info.nsets; k++)
		free(cs.read[k].cidrs);
	free(cs.read);
}

/* (*said: the failure is said already) */
static int show_body(const struct cgf_engine *e, FILE *f, bool json, bool code, bool *said)
{
	struct show s = { .e = e, .f = f, .json = json };
	struct cgf_filter_view v = { 0 };
	uint64_t st[CGF_NSTATS];
	char t[64];
	int r = 0;

	if (e->mode == CGF_MODE_DEDICATED && (r = cgf_engine_filter(e, CGF_SLOT_DEDICATED, &v)))
		return r;
	if (v.text) { /* (a text that does not parse: said once, here) */
		struct cgf_expr *x = NULL;

		r = cgf_filter_parse_stored(v.text, &x);
		cgf_expr_free(x);
		if (r) {
			*said = true;
			cgf_filter_view_free(&v);
			return r;
		}
	}
	when(v.info.time_ns, t, sizeof(t));
	if (json) {
		fprintf(f, "{\"pin\":");
		json_str(f, e->pin);
		fprintf(f, ",\"engine\":\"%s\",\"program_id\":%u",
			e->mode == CGF_MODE_SHARED ? "shared" : "dedicated", e->entry_id);
	} else {
		fprintf(f, "%s: cgfilter %s engine, program id %u\n", e->pin,
			e->mode == CGF_MODE_SHARED ? "shared" : "dedicated", e->entry_id);
	}
	if (e->mode == CGF_MODE_DEDICATED) {
		if (json) {
			fprintf(f, ",\"generation\":%u,\"changed\":\"%s\",\"filter_program_id\":%u,",
				v.info.gen, t, v.prog_id);
			if (v.text)
				fprintf(f, "\"mode\":\"%s\",", run_mode(v.info.mode));
			else
				fprintf(f, "\"mode\":null,");
			fprintf(f, "\"filter\":");
			if (v.text)
				json_str(f, v.text);
			else
				fprintf(f, "null");
			print_names(f, true, v.names, "");
		} else {
			fprintf(f, "  changed: %s (generation %u, program id %u)\n", t, v.info.gen, v.prog_id);
			if (v.text && names_exe(v.text) && !cgf_exe_recording())
				fprintf(f, "  warning: the filter names executables, but none are recorded now: sockets made from now on have none (cgfilter exe-ids)\n");
			if (v.text && (v.info.flags & CGF_INFO_LEARNING))
				fprintf(f, "  recording the flows it sees for cgfilter learn\n");
			if (v.text && cgf_engine_filter_stale(e, &v) > 0)
				fprintf(f, "  note: a set it uses changed after it was made (a command was killed): it keeps the set as listed below until the next command on %s builds it again\n",
					e->pin);
			if (v.text)
				fprintf(f, "  mode: %s%s\n", run_mode(v.info.mode),
					v.info.mode == CGF_RUN_OBSERVE ? " (passes everything; counts what it would drop)" :
					v.info.mode == CGF_RUN_BLOCK ? " (drops everything)" :
					v.info.mode == CGF_RUN_PASS ? " (passes everything)" : "");
			print_text(f, "  filter:", v.text ? v.text : "(none: drop)");
			if (v.names)
				fprintf(f, "  host names (resolved by getaddrinfo; cgfilter refresh):\n");
			print_names(f, false, v.names, "    ");
		}
	} else {
		fprintf(f, json ? ",\"filters\":[" :
				  "  filters by cgroup (a cgroup without one drops everything):\n");
		r = cgf_engine_each_cgroup(e, show_cgroup, &s);
		if (r)
			goto out;
		if (json)
			fprintf(f, "]");
		else if (!s.n)
			fprintf(f, "    (none)\n");
	}
	fprintf(f, json ? ",\"sets\":{" : "  sets:\n");
	s.n = 0;
	r = cgf_set_each(e, e->mode == CGF_MODE_DEDICATED ? &v : NULL, show_set, &s);
	if (r)
		goto out;
	if (json)
		fprintf(f, "}");
	else if (!s.n)
		fprintf(f, "    (none)\n");
	if (e->mode == CGF_MODE_DEDICATED && v.prog_id &&
	    (r = show_dynamic(f, json, v.text, v.prog_id)))
		goto out;
	r = cgf_engine_stats(e, st);
	if (r)
		goto out;
	if (json) {
		fprintf(f, ",\"passed_packets\":%" PRIu64 ",\"passed_bytes\":%" PRIu64
			   ",\"dropped_packets\":%" PRIu64 ",\"dropped_bytes\":%" PRIu64
			   ",\"malformed\":%" PRIu64 ",\"no_filter\":%" PRIu64
			   ",\"would_drop_packets\":%" PRIu64 ",\"would_drop_bytes\":%" PRIu64 ",\"attached\":[",
			st[CGF_ST_PASS_PKTS], st[CGF_ST_PASS_BYTES], st[CGF_ST_DROP_PKTS],
			st[CGF_ST_DROP_BYTES], st[CGF_ST_MALFORMED], st[CGF_ST_NOFILTER],
			st[CGF_ST_WOULD_PKTS], st[CGF_ST_WOULD_BYTES]);
	} else {
		fprintf(f, "  passed: %" PRIu64 " packet%s, %" PRIu64 " byte%s\n",
			st[CGF_ST_PASS_PKTS], PL(st[CGF_ST_PASS_PKTS]), st[CGF_ST_PASS_BYTES],
			PL(st[CGF_ST_PASS_BYTES]));
		fprintf(f, "  dropped: %" PRIu64 " packet%s, %" PRIu64 " byte%s (%" PRIu64
			   " malformed, %" PRIu64 " without a filter)\n",
			st[CGF_ST_DROP_PKTS], PL(st[CGF_ST_DROP_PKTS]), st[CGF_ST_DROP_BYTES],
			PL(st[CGF_ST_DROP_BYTES]), st[CGF_ST_MALFORMED], st[CGF_ST_NOFILTER]);
		if (st[CGF_ST_WOULD_PKTS])
			fprintf(f, "  would have dropped (observe mode; passed): %" PRIu64 " packet%s, %" PRIu64
				   " byte%s\n", st[CGF_ST_WOULD_PKTS], PL(st[CGF_ST_WOULD_PKTS]),
				st[CGF_ST_WOULD_BYTES], PL(st[CGF_ST_WOULD_BYTES]));
		fprintf(f, "  attached to:\n");
	}
	s.n = 0;
	r = cgf_attachments(e->entry_id, print_attach, &s);
	if (r < 0) {
		cgf_err("cannot tell where %s is attached: %s", e->pin, strerror(-r));
		*said = true;
		goto out;
	}
	r = 0;
	if (json)
		fprintf(f, "]}\n");
	else if (!s.n)
		fprintf(f, "    (no cgroup)\n");
	if (code && !json)
		print_code(f, &v);
out:
	cgf_filter_view_free(&v);
	return r;
}

int cmd_show(struct cmd_args *a)
{
	struct cgf_engine e;
	char *buf = NULL;
	bool said = false;
	size_t len = 0;
	FILE *f;
	int r;

	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	r = cgf_engine_open(&e, a->argv[0], false);
	if (r)
		return r;
	/* (a filter replaced while show reads it: its maps may be gone, read
	 * again; quietly, but the last time) */
	for (int tries = 0; tries < 3; tries++) {
		int quiet = cgf_quiet;

		free(buf);
		buf = NULL;
		f = open_memstream(&buf, &len);
		if (!f) {
			r = -errno;
			break;
		}
		cgf_quiet = tries < 2 ? 1 : quiet;
		said = false;
		r = show_body(&e, f, a->json, a->code, &said);
		cgf_quiet = quiet;
		if (fclose(f) && !r)
			r = -ENOMEM;
		if (r != -ENOENT)
			break;
	}
	if (r) {
		if (!said)
			cgf_err("cannot show %s: cannot read it: %s", e.pin, strerror(-r));
	} else {
		fputs(buf, stdout);
	}
	free(buf);
	cgf_engine_close(&e);
	return r;
}

/* ---- stats ------------------------------------------------------------------------- */

int cmd_stats(struct cmd_args *a)
{
	uint64_t st[CGF_NSTATS];
	struct cgf_engine e;
	const char *m;
	int r;

	if (a->output && !a->output[0])
		return usage_error(a, "--output names no file (an empty word)");
	if (a->prometheus)
		return stats_prometheus(a);
	if (a->output)
		return usage_error(a, "--output goes with --prometheus");
	if (a->argc != 1)
		return usage_error(a, "expected PIN");
	r = cgf_engine_open(&e, a->argv[0], false);
	if (r)
		return r;
	r = cgf_engine_stats(&e, st);
	if (r) {
		cgf_err("cannot read the counters of %s: %s", e.pin, strerror(-r));
	} else if ((r = dedicated_mode(&e, &m))) {
		/* (said) */
	} else if (a->json) {
		printf("{\"pin\":");
		json_str(stdout, e.pin);
		if (m)
			printf(",\"mode\":\"%s\"", m);
		else
			printf(",\"mode\":null");
		printf(",\"passed_packets\":%" PRIu64 ",\"passed_bytes\":%" PRIu64
		       ",\"dropped_packets\":%" PRIu64 ",\"dropped_bytes\":%" PRIu64
		       ",\"malformed\":%" PRIu64 ",\"no_filter\":%" PRIu64 ",\"events\":%" PRIu64
		       ",\"events_suppressed\":%" PRIu64 ",\"would_drop_packets\":%" PRIu64
		       ",\"would_drop_bytes\":%" PRIu64 "}\n",
		       st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[CGF_ST_WOULD_PKTS],
		       st[CGF_ST_WOULD_BYTES]);
	} else {
		printf("passed %" PRIu64 " packet%s %" PRIu64 " byte%s, dropped %" PRIu64
		       " packet%s %" PRIu64 " byte%s", st[0], PL(st[0]), st[1], PL(st[1]), st[2],
		       PL(st[2]), st[3], PL(st[3]));
		if (st[CGF_ST_WOULD_PKTS] || (m && !strcmp(m, "observe")))
			printf(", would have dropped %" PRIu64 " packet%s %" PRIu64 " byte%s",
			       st[CGF_ST_WOULD_PKTS], PL(st[CGF_ST_WOULD_PKTS]), st[CGF_ST_WOULD_BYTES],
			       PL(st[CGF_ST_WOULD_BYTES]));
		printf("%s%s\n", m ? ", mode " : "", m ? m : "");
	}
	cgf_engine_close(&e);
	return r;
}

/* ---- list -------------------------------------------------------------------------- */

static int list_attach(const char *path, enum bpf_attach_type dir, void *ctx)
{
	fprintf(ctx, "    %s %s\n", path, dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress");
	return 0;
}

int open_listed(struct cgf_engine *e, const char *pin)
{
	char maps[PATH_MAX + 8];
	int r, saved = cgf_quiet;

	cgf_quiet = 1;
	r = cgf_engine_open(e, pin, false);
	cgf_quiet = saved;
	if (r == -ENOMEDIUM || (r == -ENOENT && access(pin, F_OK)))
		return 1;       /* not an engine, or a PIN_maps/ left without its PIN */
	if (!r)
		return 0;
	snprintf(maps, sizeof(maps), "%s_maps", pin);
	if (r == -ENOENT && access(maps, F_OK))
		cgf_err("cannot read %s: its maps (%s/) are gone: unload it and load it again", pin, maps);
	else
		cgf_err("cannot read %s: %s", pin, strerror(-r));
	return r;
}

/* An engine at pin (quietly skip what is not one: a PIN_maps/ beside
 * another object, or without its PIN); one that cannot be read is said and
 * counted in *(int *)ctx. */
static int list_one(const char *pin, void *ctx)
{
	uint64_t st[CGF_NSTATS];
	struct cgf_engine e;
	const char *m;
	int r, n;
	char *lines = NULL;
	size_t len = 0;
	FILE *f;

	r = open_listed(&e, pin);
	if (r > 0)
		return 0;
	if (r) {
		++*(int *)ctx;
		return 0;
	}
	r = cgf_engine_stats(&e, st);
	f = open_memstream(&lines, &len);
	n = !f ? -ENOMEM : r ? r : cgf_attachments(e.entry_id, list_attach, f);
	if (f && fclose(f) && n >= 0)
		n = -ENOMEM;
	if (n < 0) {
		cgf_err("cannot read %s: %s", e.pin, strerror(-n));
		++*(int *)ctx;
	} else if (dedicated_mode(&e, &m)) {
		++*(int *)ctx; /* (said) */
	} else {
		printf("%s  %s%s%s  passed %" PRIu64 " dropped %" PRIu64 "  attachments %d\n%s", e.pin,
		       e.mode == CGF_MODE_SHARED ? "shared" : "dedicated", m ? " " : "", m ? m : "",
		       st[CGF_ST_PASS_PKTS], st[CGF_ST_DROP_PKTS], n, lines ? lines : "");
	}
	free(lines);
	cgf_engine_close(&e);
	return 1;
}

/* fn(PIN, ctx) for every engine under dir (a PIN_maps/ directory), counted
 * by what fn returns; a directory that cannot be read is an error (a filter
 * may be there), said and counted in *errors. */
int each_engine_pin(const char *dir, int (*fn)(const char *pin, void *ctx), void *ctx, int *errors)
{
	struct dirent **names;
	int n, i, found = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		cgf_err("cannot list %s: %s", dir, strerror(errno));
		++*errors;
		return 0;
	}
	for (i = 0; i < n; i++) {
		char path[PATH_MAX];
		size_t l = strlen(names[i]->d_name);

		if (names[i]->d_type == DT_DIR && strcmp(names[i]->d_name, ".") &&
		    strcmp(names[i]->d_name, "..") &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path)) {
			if (l > 5 && !strcmp(names[i]->d_name + l - 5, "_maps")) {
				path[strlen(path) - 5] = 0;
				found += fn(path, ctx);
			} else {
				found += each_engine_pin(path, fn, ctx, errors);
			}
		} else if (names[i]->d_type == DT_REG &&
			   snprintf(path, sizeof(path), "%s/%s_maps", dir, names[i]->d_name) < (int)sizeof(path) &&
			   access(path, F_OK) && errno == ENOENT) {
			/* an engine whose PIN_maps/ is gone (removed by hand):
			 * fn says it cannot be read, not passed over */
			path[strlen(path) - 5] = 0;
			if (cgf_pin_is_engine(path) == 1)
				found += fn(path, ctx);
		}
		free(names[i]);
	}
	free(names);
	return found;
}

int cmd_list(struct cmd_args *a)
{
	const char *dir = a->argc ? a->argv[0] : "/sys/fs/bpf";
	struct stat st;
	int errors = 0;

	if (a->argc > 1)
		return usage_error(a, "expected at most one directory");
	if (!dir[0])
		return usage_error(a, "the directory is an empty word");
	if (stat(dir, &st)) {
		int r = -errno;

		cgf_err("cannot list %s: %s", dir, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		cgf_err("cannot list %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (!each_engine_pin(dir, list_one, &errors, &errors) && !errors)
		printf("no cgfilter filters under %s\n", dir);
	return errors ? -EACCES : 0;
}
