// SPDX-License-Identifier: GPL-2.0-only
/*
 * pktcost: the per-packet cost of cgroup_skb programs, measured by the kernel
 * with BPF_PROG_TEST_RUN over a large repeat, for the bench (bench/run.sh).
 *
 *   pktcost -p PACKETS [-r REPEAT] [-n RUNS] (--pin PATH | --id ID)...
 *
 * PACKETS has one frame per line: a label, then the frame in hex (whitespace
 * inside the hex is ignored; empty lines and lines starting with '#' are
 * skipped).  Each program runs each frame REPEAT times per run, RUNS runs;
 * the kernel reports the average duration of one run of the program in ns.
 * The programs take turns, run by run (measure_all says why).
 * Output, one line per program and frame, tab-separated:
 *   PROGRAM <TAB> LABEL <TAB> MEDIAN <TAB> MIN <TAB> MAX <TAB> VERDICT
 * PROGRAM is the pin path or "id:N", the times are ns per packet over the
 * RUNS runs, VERDICT the program's return value (0 drop, 1 pass).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "frames.h"

#define MAX_RUNS 1000

static int verbose;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pktcost -p PACKETS [-r REPEAT] [-n RUNS] (--pin PATH | --id ID)...\n"
		"Measure the ns per packet of cgroup_skb programs with BPF_PROG_TEST_RUN.\n\n"
		"  -p, --packets FILE  one frame per line: LABEL HEX ('-' for stdin)\n"
		"  -r, --repeat N      runs of the program per measurement (default 1000000)\n"
		"  -n, --runs N        measurements per frame, for median/min/max (default 5)\n"
		"      --pin PATH      a pinned cgroup_skb program (repeatable)\n"
		"      --id ID         a loaded cgroup_skb program by id (repeatable)\n"
		"  -v, --verbose       show libbpf's messages\n"
		"  -h, --help          this help\n\n"
		"Output, one line per program and frame, tab-separated:\n"
		"  PROGRAM LABEL MEDIAN_NS MIN_NS MAX_NS VERDICT\n\n"
		"Example:\n"
		"  pktcost -p frames.txt -r 100000 -n 5 --pin /sys/fs/bpf/web --id 42\n");
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* A program to measure: its fd, its name in the output, its times. */
struct prog {
	int fd;
	char name[PATH_MAX];
	__u32 *t;               /* [frame * runs + run] */
	__u32 *retval;          /* [frame] */
};

/* One run of every frame through p, as run k. */
static int run_once(struct prog *p, const struct frames *fr, __u32 repeat, int runs, int k)
{
	size_t i;

	for (i = 0; i < fr->n; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr->v[i].data,
			    .data_size_in = (__u32)fr->v[i].len, .repeat = repeat);

		if (bpf_prog_test_run_opts(p->fd, &opts)) {
			int r = -errno;

			fprintf(stderr, "pktcost: Failed to test-run %s on %s: %s\n", p->name,
				fr->v[i].label, strerror(-r));
			return r;
		}
		p->t[i * (size_t)runs + (size_t)k] = opts.duration;
		p->retval[i] = opts.retval;
	}
	return 0;
}

static void print_prog(struct prog *p, const struct frames *fr, int runs)
{
	size_t i;

	for (i = 0; i < fr->n; i++) {
		__u32 *t = p->t + i * (size_t)runs;

		qsort(t, (size_t)runs, sizeof(t[0]), cmp_u32);
		/* the median of an even count is the mean of the middle two */
		printf("%s\t%s\t%.1f\t%u\t%u\t%u\n", p->name, fr->v[i].label,
		       runs % 2 ? (double)t[runs / 2] : (t[runs / 2 - 1] + (double)t[runs / 2]) / 2,
		       t[0], t[runs - 1], p->retval[i]);
	}
}

/* Check that fd is a cgroup_skb program. */
static int check_fd(int fd, const char *name)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		int r = -errno;

		fprintf(stderr, "pktcost: Failed to inspect %s: %s\n", name, strerror(-r));
		return r;
	}
	if (info.type != BPF_PROG_TYPE_CGROUP_SKB) {
		fprintf(stderr, "pktcost: Failed to run %s: not a cgroup_skb program (type %u)\n",
			name, info.type);
		return -EINVAL;
	}
	return 0;
}

static int parse_num(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "pktcost: invalid %s: %s (%ld..%ld)\n", what, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_num(const char *what, const char *s, long min, long max, long *out);

/* Open the program of a --pin PATH ('P') or --id ID ('I'). */
static int open_prog(struct prog *p, char kind, const char *arg, const struct frames *fr, int runs)
{
	long id;
	int r;

	if (kind == 'P') {
		p->fd = bpf_obj_get(arg);
		snprintf(p->name, sizeof(p->name), "%s", arg);
	} else {
		if (parse_num("id", arg, 1, UINT_MAX, &id))
			return -EINVAL;
		p->fd = bpf_prog_get_fd_by_id((__u32)id);
		snprintf(p->name, sizeof(p->name), "id:%ld", id);
	}
	if (p->fd < 0) {
		r = -errno;
		fprintf(stderr, "pktcost: Failed to open %s %s: %s\n", kind == 'P' ? "pin" : "program id",
			arg, strerror(-r));
		return r;
	}
	p->t = calloc(fr->n * (size_t)runs, sizeof(*p->t));
	p->retval = calloc(fr->n, sizeof(*p->retval));
	if (!p->t || !p->retval) {
		fprintf(stderr, "pktcost: out of memory\n");
		return -ENOMEM;
	}
	return check_fd(p->fd, p->name);
}

/*
 * Run k of every program, then run k + 1 of every one...: whatever this
 * machine is busy with meanwhile hits every program alike, so ratios of
 * their times within one invocation hold.
 */
static int measure_all(struct prog *ps, int n, const struct frames *fr, __u32 repeat, int runs)
{
	int i, k, r = 0;

	for (k = 0; k < runs && !r; k++)
		for (i = 0; i < n && !r; i++)
			r = run_once(&ps[i], fr, repeat, runs, k);
	for (i = 0; i < n && !r; i++)
		print_prog(&ps[i], fr, runs);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "packets", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "pin", required_argument, NULL, 'P' },
		{ "id", required_argument, NULL, 'I' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* programs in command-line order: 'P' pin path or 'I' id */
	struct { char kind; const char *arg; } *progs;
	long repeat = 1000000, runs = 5;
	struct prog *ps = NULL;
	const char *packets = NULL;
	struct frames fr = { 0 };
	int nprogs = 0, c, i, r = 0;

	progs = calloc((size_t)argc, sizeof(*progs));
	if (!progs)
		return 1;
	while ((c = getopt_long(argc, argv, "p:r:n:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			packets = optarg;
			break;
		case 'r':
			if (parse_num("repeat", optarg, 1, UINT_MAX, &repeat))
				goto usage_err;
			break;
		case 'n':
			if (parse_num("runs", optarg, 1, MAX_RUNS, &runs))
				goto usage_err;
			break;
		case 'P':
		case 'I':
			progs[nprogs].kind = (char)c;
			progs[nprogs++].arg = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			free(progs);
			return 0;
		default:
			goto usage_err;
		}
	}
	if (!packets || !nprogs || optind != argc) {
		fprintf(stderr, "pktcost: need -p PACKETS and at least one --pin or --id\n");
		goto usage_err;
	}
	libbpf_set_print(print_libbpf);
	r = frames_read("pktcost", packets, 1, &fr);
	if (!r && !fr.n) {
		fprintf(stderr, "pktcost: Failed to read %s: no frames\n", packets);
		r = -EINVAL;
	}
	ps = calloc((size_t)nprogs, sizeof(*ps));
	if (!r && !ps)
		r = -ENOMEM;
	for (i = 0; ps && i < nprogs; i++)
		ps[i].fd = -1;
	for (i = 0; i < nprogs && !r; i++)
		r = open_prog(&ps[i], progs[i].kind, progs[i].arg, &fr, (int)runs);
	if (!r)
		r = measure_all(ps, nprogs, &fr, (__u32)repeat, (int)runs);
	for (i = 0; ps && i < nprogs; i++) {
		if (ps[i].fd >= 0)
			close(ps[i].fd);
		free(ps[i].t);
		free(ps[i].retval);
	}
	free(ps);
	frames_free(&fr);
	free(progs);
	if (fflush(stdout))
		r = -EIO;
	return r ? 1 : 0;
usage_err:
	usage(stderr);
	free(progs);
	return 2;
}
