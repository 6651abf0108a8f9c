// SPDX-License-Identifier: GPL-2.0-only
/*
 * exe-run: the cgfilter engine's verdicts on frames that each come from a
 * socket made by a given executable, for the differential test of exe
 * (tests/verdict/check_exe.py).  BPF_PROG_TEST_RUN runs a packet without a
 * socket of a process, so the engine is loaded through its library with
 * cgf_load_opts.exe_test: its filters read the executable from a map this
 * program sets before each frame, where the real ones read the socket's
 * storage (that path is tested with real sockets: tests/51-exe.sh).  All
 * else is the engine as 'cgfilter load' makes it.
 *
 *   exe-run --pin PIN -p FRAMES -i IDS FILTERS
 *
 * IDS has a line per frame: "DEV INO" (0 0: no executable known).  FILTERS
 * has a filter a line.  Output, a line per filter, tab-separated:
 *   ok <TAB> VERDICTS (a character per frame: 0 drop, 1 pass, x refused
 *                      by the kernel as too short)
 *   refused <TAB> why
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "engine.h"
#include "frames.h"

static int print_none(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "pin", required_argument, NULL, 'P' }, { 0 } };
	const char *pin = NULL, *packets = NULL, *idsf = NULL;
	struct cgf_exe_id *ids = NULL;
	struct frames fr = { 0 };
	char *line = NULL, *out;
	size_t cap = 0, n = 0, i;
	FILE *f;
	int o, map;

	while ((o = getopt_long(argc, argv, "p:i:", lo, NULL)) != -1) {
		if (o == 'P')
			pin = optarg;
		else if (o == 'p')
			packets = optarg;
		else if (o == 'i')
			idsf = optarg;
		else
			return 2;
	}
	if (!pin || !packets || !idsf || optind != argc - 1) {
		fprintf(stderr, "usage: exe-run --pin PIN -p FRAMES -i IDS FILTERS\n");
		return 2;
	}
	libbpf_set_print(print_none);
	if (frames_read("exe-run", packets, 0, &fr))
		return 1;
	f = fopen(idsf, "r");
	ids = calloc(fr.n + 1, sizeof(*ids));
	out = calloc(fr.n + 1, 1);
	if (!f || !ids || !out) {
		fprintf(stderr, "exe-run: cannot read %s: %s\n", idsf, strerror(errno));
		return 1;
	}
	while (n < fr.n && fscanf(f, "%llu %llu", (unsigned long long *)&ids[n].dev,
				  (unsigned long long *)&ids[n].ino) == 2)
		n++;
	fclose(f);
	if (n != fr.n) {
		fprintf(stderr, "exe-run: %s has %zu identities for %zu frames\n", idsf, n, fr.n);
		return 1;
	}
	map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "exe_test", 4, sizeof(struct cgf_exe_id), 1, NULL);
	if (map < 0) {
		fprintf(stderr, "exe-run: cannot make the map: %s\n", strerror(errno));
		return 1;
	}
	f = fopen(argv[optind], "r");
	if (!f) {
		fprintf(stderr, "exe-run: cannot read %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	while (getline(&line, &cap, f) > 0) {
		struct cgf_load_opts lopts = { .events_per_sec = 0, .exe_test = true, .exe_test_fd = map };
		int prog, r;

		line[strcspn(line, "\n")] = 0;
		cgf_quiet = 1;
		cgf_engine_unload(pin, false);
		cgf_quiet = 0;
		r = cgf_engine_load(pin, line, &lopts);
		if (r) {
			printf("refused\t%s\n", strerror(-r));
			continue;
		}
		prog = bpf_obj_get(pin);
		if (prog < 0) {
			fprintf(stderr, "exe-run: cannot open %s: %s\n", pin, strerror(errno));
			return 1;
		}
		for (i = 0; i < fr.n; i++) {
			/* received or sent, as the frame says (frames.h) */
			struct __sk_buff ctx = { .ingress_ifindex = (__u32)fr.v[i].ingress };
			LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = fr.v[i].data,
				    .data_size_in = (__u32)fr.v[i].len, .repeat = 1, .ctx_in = &ctx,
				    .ctx_size_in = sizeof(ctx));
			uint32_t zero = 0;

			if (bpf_map_update_elem(map, &zero, &ids[i], BPF_ANY)) {
				fprintf(stderr, "exe-run: cannot set the executable: %s\n", strerror(errno));
				return 1;
			}
			r = bpf_prog_test_run_opts(prog, &t);
			if (r && errno == EINVAL) {
				out[i] = 'x';
				continue;
			}
			if (r || t.retval > 9) {
				fprintf(stderr, "exe-run: test run of frame %zu: %s (%u)\n", i + 1,
					strerror(errno), t.retval);
				return 1;
			}
			out[i] = (char)('0' + t.retval);
		}
		out[fr.n] = 0;
		printf("ok\t%s\n", out);
		fflush(stdout);
		close(prog);
	}
	cgf_quiet = 1;
	cgf_engine_unload(pin, false);
	fclose(f);
	free(line);
	free(ids);
	free(out);
	frames_free(&fr);
	return 0;
}
