// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter stats --prometheus: the counters of every engine under a
 * directory in the Prometheus text format, for node_exporter's textfile
 * collector (--output writes the file atomically: a reader sees the old
 * file or the new one, never part of one).
 *
 * The counters are the engine's own (one per engine, not per cgroup), so
 * they are labelled by pin only: summed over any label they count each
 * packet once.  Where an engine is attached, and the mode of each filter,
 * are info metrics (value 1) to join on pin.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

/* An engine as read, and its info samples, already formatted. */
struct prom_engine {
	char *pin;
	uint64_t st[CGF_NSTATS];
	char *attached, *filters;       /* sample lines of the info metrics */
	size_t attached_len, filters_len;
};

struct prom {
	struct prom_engine *e;
	size_t n, cap;
	int err;
};

/* A label: name="value" with backslash, double quote and newline escaped,
 * as the text format wants, and a byte that is not UTF-8 (a cgroup or pin
 * may have one) as U+FFFD: node_exporter refuses a file that is not UTF-8. */
static void prom_label(FILE *f, const char *name, const char *value, bool first)
{
	const unsigned char *p;
	size_t n;

	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (p = (const unsigned char *)(value ? value : ""); *p; p += n) {
		n = utf8_len(p);
		if (!n) {
			fputs("\xef\xbf\xbd", f);
			n = 1;
		} else if (*p == '\\' || *p == '"') {
			fprintf(f, "\\%c", *p);
		} else if (*p == '\n') {
			fputs("\\n", f);
		} else {
			fwrite(p, 1, n, f);
		}
	}
	fputc('"', f);
}

struct prom_ctx {
	const struct cgf_engine *e;
	FILE *f;
};

static const char *dir_name(enum bpf_attach_type dir)
{
	return dir == BPF_CGROUP_INET_INGRESS ? "ingress" : "egress";
}

/* cgfilter_attached_info{pin,cgroup,unit,direction} 1 */
static int prom_attach(const char *path, enum bpf_attach_type dir, void *ctx)
{
	struct prom_ctx *c = ctx;
	char ub[256];

	fputs("cgfilter_attached_info{", c->f);
	prom_label(c->f, "pin", c->e->pin, true);
	prom_label(c->f, "cgroup", path, false);
	prom_label(c->f, "unit", unit_of(path, ub, sizeof(ub)), false);
	prom_label(c->f, "direction", dir_name(dir), false);
	fputs("} 1\n", c->f);
	return 0;
}

/* Shared engine: cgfilter_filter_info{pin,cgroup,unit,direction,mode} 1 of
 * each registered cgroup (mode "none": it has no filter and drops). */
static int prom_cgroup(uint64_t cgid, enum bpf_attach_type dir, uint32_t slot, void *ctx)
{
	struct prom_ctx *c = ctx;
	struct cgf_filter_view v = { 0 };
	char path[PATH_MAX], ub[256];
	const char *mode = "none";
	int r = slot ? cgf_engine_filter(c->e, slot, &v) : 0;

	if (r)
		return r;
	if (v.text)
		mode = v.info.mode < CGF_RUN_NMODES ? cgf_run_modes[v.info.mode] : "unknown";
	cgf_cgroup_path(cgid, path, sizeof(path));
	fputs("cgfilter_filter_info{", c->f);
	prom_label(c->f, "pin", c->e->pin, true);
	prom_label(c->f, "cgroup", path, false);
	prom_label(c->f, "unit", unit_of(path, ub, sizeof(ub)), false);
	prom_label(c->f, "direction", dir_name(dir), false);
	prom_label(c->f, "mode", mode, false);
	fputs("} 1\n", c->f);
	cgf_filter_view_free(&v);
	return 0;
}

/* Read the engine at pin: its counters and info samples (quietly skip what
 * is not an engine; an engine that cannot be read is an error). */
static int prom_read(const char *pin, void *ctx)
{
	struct prom *p = ctx;
	struct prom_engine *pe;
	struct prom_ctx c;
	struct cgf_engine e;
	bool said = false;
	int r;

	r = open_listed(&e, pin);
	if (r > 0)
		return 0;
	if (r) {
		if (!p->err)
			p->err = r;
		return 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		void *ne = realloc(p->e, cap * sizeof(*p->e));

		if (!ne) {
			p->err = -ENOMEM;
			cgf_engine_close(&e);
			return 0;
		}
		p->e = ne;
		p->cap = cap;
	}
	pe = &p->e[p->n];
	memset(pe, 0, sizeof(*pe));
	c.e = &e;
	r = -ENOMEM;
	pe->pin = strdup(e.pin);
	if (pe->pin && (c.f = open_memstream(&pe->attached, &pe->attached_len))) {
		r = cgf_attachments(e.entry_id, prom_attach, &c);
		r = fclose(c.f) && r >= 0 ? -ENOMEM : r < 0 ? r : 0;
	}
	if (!r && (r = -ENOMEM, c.f = open_memstream(&pe->filters, &pe->filters_len))) {
		const char *m;

		r = dedicated_mode(&e, &m);
		if (r) {
			said = true; /* no sample: a mode not read is not "none" */
		} else if (e.mode == CGF_MODE_SHARED) {
			r = cgf_engine_each_cgroup(&e, prom_cgroup, &c);
		} else {
			fputs("cgfilter_filter_info{", c.f);
			prom_label(c.f, "pin", e.pin, true);
			prom_label(c.f, "mode", m ? m : "none", false);
			fputs("} 1\n", c.f);
		}
		if (fclose(c.f) && !r)
			r = -ENOMEM;
	}
	if (!r)
		r = cgf_engine_stats(&e, pe->st);
	p->n++;
	if (r && !p->err) {
		if (!said)
			cgf_err("cannot read %s: %s", e.pin, strerror(-r));
		p->err = r;
	}
	cgf_engine_close(&e);
	return 1;
}

static const struct {
	const char *name;
	int stat;
	const char *help;
} prom_counters[] = {
	{ "cgfilter_passed_packets_total", CGF_ST_PASS_PKTS, "Packets the filter passed." },
	{ "cgfilter_passed_bytes_total", CGF_ST_PASS_BYTES, "Bytes of the packets the filter passed." },
	{ "cgfilter_dropped_packets_total", CGF_ST_DROP_PKTS,
	  "Packets dropped (malformed and without a filter included)." },
	{ "cgfilter_dropped_bytes_total", CGF_ST_DROP_BYTES, "Bytes of the packets dropped." },
	{ "cgfilter_malformed_packets_total", CGF_ST_MALFORMED,
	  "Packets dropped because their headers are malformed." },
	{ "cgfilter_no_filter_packets_total", CGF_ST_NOFILTER,
	  "Packets dropped because no filter was in force for their cgroup." },
	{ "cgfilter_would_drop_packets_total", CGF_ST_WOULD_PKTS,
	  "Packets passed in observe mode that the filter would have dropped." },
	{ "cgfilter_would_drop_bytes_total", CGF_ST_WOULD_BYTES,
	  "Bytes of the packets passed in observe mode that the filter would have dropped." },
	{ "cgfilter_events_total", CGF_ST_EVENTS, "Drop events sent to monitors." },
	{ "cgfilter_events_suppressed_total", CGF_ST_SUPPRESSED,
	  "Drop events held back by the rate limit or a full event ring." },
};

/* Every family once, its samples together, as the text format wants. */
static void prom_print(FILE *f, const struct prom *p)
{
	size_t i, k;

	for (k = 0; k < sizeof(prom_counters) / sizeof(prom_counters[0]); k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", prom_counters[k].name,
			prom_counters[k].help, prom_counters[k].name);
		for (i = 0; i < p->n; i++) {
			fprintf(f, "%s{", prom_counters[k].name);
			prom_label(f, "pin", p->e[i].pin, true);
			fprintf(f, "} %" PRIu64 "\n", p->e[i].st[prom_counters[k].stat]);
		}
	}
	fputs("# HELP cgfilter_attached_info The cgroups (and their units) an engine is attached to.\n"
	      "# TYPE cgfilter_attached_info gauge\n", f);
	for (i = 0; i < p->n; i++)
		fputs(p->e[i].attached ? p->e[i].attached : "", f);
	fputs("# HELP cgfilter_filter_info The mode of each filter: a dedicated engine's, or each cgroup's of a shared engine.\n"
	      "# TYPE cgfilter_filter_info gauge\n", f);
	for (i = 0; i < p->n; i++)
		fputs(p->e[i].filters ? p->e[i].filters : "", f);
}

#define TMP_PREFIX ".cgfilter-metrics."
/* A temporary file that no writer can still be writing lives this long */
#define TMP_STALE_SECS 600

/* Remove the temporary files of writers killed in dir before they renamed
 * them (a writer takes well under a second; one older than TMP_STALE_SECS
 * is no writer's now); only this user's. */
static void sweep_temporaries(const char *dir)
{
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	d = opendir(dir);
	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) &&
		    strlen(de->d_name) == strlen(TMP_PREFIX) + 6 &&
		    !fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid() && st.st_mtime < now - TMP_STALE_SECS)
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
}

/* Write len bytes of buf to path at once: a temporary file in the same
 * directory, written, synced, renamed over path, the directory synced.  On
 * failure path is left as it was. */
static int write_atomic(const char *path, const char *buf, size_t len)
{
	char tmp[PATH_MAX], copy[PATH_MAX], *dir;
	struct stat st;
	const char *step = "create a temporary file";
	size_t done = 0;
	int fd, dfd, r = 0;

	/* the rename would put a regular file in place of a device (-o
	 * /dev/null), a symbolic link or anything else at path */
	if (!lstat(path, &st) && !S_ISREG(st.st_mode)) {
		cgf_err("cannot write %s: it is %s, not a regular file (the file is replaced whole, by a rename)",
			path, S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory" :
			S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a file");
		return -EINVAL;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	dir = dirname(copy);
	if (snprintf(tmp, sizeof(tmp), "%s/" TMP_PREFIX "XXXXXX", dir) >= (int)sizeof(tmp)) {
		cgf_err("cannot write %s: the path is too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		cgf_err("cannot write %s: cannot %s in %s: %s", path, step, dir, strerror(-r));
		return r;
	}
	/* node_exporter reads it as another user */
	if (fchmod(fd, 0644))
		r = -errno, step = "make the temporary file readable";
	while (!r && done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO, step = "write the temporary file";
		else
			done += (size_t)n;
	}
	if (!r && fsync(fd))
		r = -errno, step = "sync the temporary file";
	if (close(fd) && !r)
		r = -errno, step = "close the temporary file";
	if (!r && rename(tmp, path))
		r = -errno, step = "rename the temporary file over it";
	if (r) {
		unlink(tmp);
		cgf_err("cannot write %s: cannot %s: %s (the old file is left as it was)", path, step,
			strerror(-r));
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) { /* the rename itself durable; the file is in place already */
		fsync(dfd);
		close(dfd);
	}
	sweep_temporaries(dir);
	return 0;
}

int stats_prometheus(struct cmd_args *a)
{
	const char *dir = a->argc ? a->argv[0] : "/sys/fs/bpf";
	struct prom p = { 0 };
	char *buf = NULL;
	size_t len = 0, i;
	int errors = 0, r = 0;
	struct stat st;
	FILE *f;

	if (a->argc > 1)
		return usage_error(a, "--prometheus takes at most one directory");
	if (a->json)
		return usage_error(a, "--json and --prometheus are two formats: give one");
	if (stat(dir, &st))
		r = -errno;
	else if (!S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (r) {
		cgf_err("cannot read the engines under %s: %s", dir, strerror(-r));
		return r;
	}
	each_engine_pin(dir, prom_read, &p, &errors);
	if (errors || p.err) {
		r = p.err ? p.err : -EACCES;
		goto out;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		r = -errno;
		cgf_err("cannot make the metrics: %s", strerror(-r));
		goto out;
	}
	prom_print(f, &p);
	if (fclose(f)) {
		r = -ENOMEM;
		cgf_err("cannot make the metrics: %s", strerror(-r));
		goto out;
	}
	if (a->output)
		r = write_atomic(a->output, buf, len);
	else
		fwrite(buf, 1, len, stdout);
out:
	for (i = 0; i < p.n; i++) {
		free(p.e[i].pin);
		free(p.e[i].attached);
		free(p.e[i].filters);
	}
	free(p.e);
	free(buf);
	return r;
}
