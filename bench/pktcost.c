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

/* Measure every frame through the program fd and print its lines. */
static int measure(int fd, const char *name, const struct frames *fr, __u32 repeat, int runs)
{
	__u32 t[MAX_RUNS];
	size_t i;
	int k;

	for (i = 0; i < fr->n; i++) {
		__u32 retval = 0;

		for (k = 0; k < runs; k++) {
			LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr->v[i].data,
				    .data_size_in = (__u32)fr->v[i].len, .repeat = repeat);

			if (bpf_prog_test_run_opts(fd, &opts)) {
				int r = -errno;

				fprintf(stderr, "pktcost: Failed to test-run %s on %s: %s\n", name,
					fr->v[i].label, strerror(-r));
				return r;
			}
			t[k] = opts.duration;
			retval = opts.retval;
		}
		qsort(t, (size_t)runs, sizeof(t[0]), cmp_u32);
		/* the median of an even count is the mean of the middle two */
		printf("%s\t%s\t%.1f\t%u\t%u\t%u\n", name, fr->v[i].label,
		       runs % 2 ? (double)t[runs / 2] : (t[runs / 2 - 1] + (double)t[runs / 2]) / 2,
		       t[0], t[runs - 1], retval);
	}
	return 0;
}

/* fd is consumed; 0 or -errno. */
static int measure_fd(int fd, const char *name, const struct frames *fr, __u32 repeat, int runs)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int r;

	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		r = -errno;
		fprintf(stderr, "pktcost: Failed to inspect %s: %s\n", name, strerror(-r));
	} else if (info.type != BPF_PROG_TYPE_CGROUP_SKB) {
		fprintf(stderr, "pktcost: Failed to run %s: not a cgroup_skb program (type %u)\n",
			name, info.type);
		r = -EINVAL;
	} else {
		r = measure(fd, name, fr, repeat, runs);
	}
	close(fd);
	return r;
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
	long repeat = 1000000, runs = 5, id;
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
	for (i = 0; i < nprogs && !r; i++) {
		char name[64];
		int fd;

		if (progs[i].kind == 'P') {
			fd = bpf_obj_get(progs[i].arg);
			if (fd < 0) {
				r = -errno;
				fprintf(stderr, "pktcost: Failed to open pin %s: %s\n", progs[i].arg,
					strerror(-r));
				break;
			}
			r = measure_fd(fd, progs[i].arg, &fr, (__u32)repeat, (int)runs);
			continue;
		}
		if (parse_num("id", progs[i].arg, 1, UINT_MAX, &id)) {
			r = -EINVAL;
			break;
		}
		fd = bpf_prog_get_fd_by_id((__u32)id);
		if (fd < 0) {
			r = -errno;
			fprintf(stderr, "pktcost: Failed to open program id %ld: %s\n", id,
				strerror(-r));
			break;
		}
		snprintf(name, sizeof(name), "id:%ld", id);
		r = measure_fd(fd, name, &fr, (__u32)repeat, (int)runs);
	}
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
