// SPDX-License-Identifier: GPL-2.0-only
/*
 * verdict-run: run Ethernet frames through cgroup_skb programs with
 * BPF_PROG_TEST_RUN and print every verdict, for the verdict tests and the
 * differential test of cgfilter against port-firewall.
 *
 *   verdict-run -p PACKETS [--pin PATH]... [--then-prog-id ID] [OBJECT.bpf.o]...
 *
 * PACKETS has one frame per line in hex (whitespace inside is ignored; empty
 * lines and lines starting with '#' are skipped), after the word "ingress"
 * for a frame received (run with __sk_buff.ingress_ifindex 1), else sent
 * (ingress_ifindex 0).  Output: one line per
 * program, tab-separated:
 *   SOURCE <TAB> NAME <TAB> VERDICTS
 * (with --cb, after a line "cb <TAB> FRAME <TAB> CB0 CB1 CB2 CB3 CB4" per frame:
 * skb->cb as the program left it, FRAME counted from 1)
 * SOURCE is the object path or "pin", NAME the program's name or the pin
 * path, VERDICTS one character per packet, in order: the program's return
 * value as a decimal digit (cgroup_skb returns 0 = drop, 1 = pass, 2-3 with
 * congestion bits), or 'x' when the kernel refused to run the frame with
 * EINVAL: it does so for an IPv4 frame with less than 20 bytes after the
 * Ethernet header, IPv6 with less than 40, or nothing at all, which no real
 * cgroup_skb program ever sees.  Any other failure is an error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "frames.h"

static int verbose, print_cb, then_fd = -1;
static unsigned long then_id;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: verdict-run -p PACKETS [--pin PATH]... [--then-prog-id ID] [OBJECT.bpf.o]...\n"
		"Run every frame of PACKETS through every cgroup_skb program of each OBJECT\n"
		"and each pinned program, with BPF_PROG_TEST_RUN.\n\n"
		"  -p, --packets FILE  frames in hex, one per line ('-' for stdin); a line\n"
		"                      'ingress HEX' is a frame received, else one sent\n"
		"      --pin PATH      a pinned cgroup_skb program (repeatable)\n"
		"      --then-prog-id ID  run each frame on through the cgroup_skb program ID,\n"
		"                      with skb->cb as the program before left it (a cgfilter\n"
		"                      filter after an engine's entry): its verdicts are printed\n"
		"      --cb            also print skb->cb after each frame: a line\n"
		"                      'cb TAB FRAME TAB CB0 CB1 CB2 CB3 CB4' (decimal)\n"
		"  -v, --verbose       show libbpf's messages\n"
		"  -h, --help          this help\n\n"
		"Output, one line per program: SOURCE TAB NAME TAB VERDICTS, where VERDICTS\n"
		"has one digit per frame (0 drop, 1 pass), or x where the kernel refused the\n"
		"frame as too short for its ethertype.\n\n"
		"Example:\n"
		"  verdict-run -p frames.hex build/port-firewall/port_firewall.bpf.o\n");
}

static int run_prog(int fd, const char *source, const char *name, const struct frames *fr,
		    char *out)
{
	size_t i;

	for (i = 0; i < fr->n; i++) {
		/* the direction, as the kernel tells it (skb_iif): a frame
		 * received came in on an interface (1: loopback) */
		struct __sk_buff ctx = { .ingress_ifindex = (__u32)fr->v[i].ingress }, after = { 0 };
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr->v[i].data,
			    .data_size_in = (__u32)fr->v[i].len, .repeat = 1, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .ctx_out = &after, .ctx_size_out = sizeof(after));
		int r = bpf_prog_test_run_opts(fd, &opts);

		if (r && errno == EINVAL) {
			out[i] = 'x';
			continue;
		}
		if (r) {
			r = -errno;
			fprintf(stderr, "verdict-run: Failed to test-run %s %s on frame %zu (%zu bytes): %s\n",
				source, name, i + 1, fr->v[i].len, strerror(-r));
			return r;
		}
		if (opts.retval > 9) {
			fprintf(stderr, "verdict-run: %s %s returned %u on frame %zu, not a cgroup_skb verdict\n",
				source, name, opts.retval, i + 1);
			return -ERANGE;
		}
		if (then_fd >= 0 && opts.retval <= 1) {
			/* the program then_id, as the entry left skb->cb */
			struct __sk_buff ctx2 = { .ingress_ifindex = ctx.ingress_ifindex };
			LIBBPF_OPTS(bpf_test_run_opts, o2, .data_in = fr->v[i].data,
				    .data_size_in = (__u32)fr->v[i].len, .repeat = 1, .ctx_in = &ctx2,
				    .ctx_size_in = sizeof(ctx2));

			memcpy(ctx2.cb, after.cb, sizeof(ctx2.cb));
			if (bpf_prog_test_run_opts(then_fd, &o2) || o2.retval > 1) {
				r = o2.retval > 1 ? -ERANGE : -errno;
				fprintf(stderr, "verdict-run: Failed to test-run program %lu on frame %zu after %s %s: %s\n",
					then_id, i + 1, source, name, strerror(-r));
				return r;
			}
			opts.retval = o2.retval;
		}
		out[i] = (char)('0' + opts.retval);
		if (print_cb)
			printf("cb\t%zu\t%u %u %u %u %u\n", i + 1, after.cb[0], after.cb[1], after.cb[2],
			       after.cb[3], after.cb[4]);
	}
	out[fr->n] = 0;
	printf("%s\t%s\t%s\n", source, name, out);
	return 0;
}

static int run_object(const char *path, const struct frames *fr, char *out)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	int r, n = 0;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		r = -errno;
		fprintf(stderr, "verdict-run: Failed to open %s: %s\n", path, strerror(-r));
		return r;
	}
	bpf_object__for_each_program(prog, obj) {
		if (bpf_program__type(prog) != BPF_PROG_TYPE_CGROUP_SKB)
			bpf_program__set_autoload(prog, false);
	}
	r = bpf_object__load(obj);
	if (r) {
		fprintf(stderr, "verdict-run: Failed to load %s: %s\n", path, strerror(-r));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, obj) {
		if (bpf_program__type(prog) != BPF_PROG_TYPE_CGROUP_SKB)
			continue;
		r = run_prog(bpf_program__fd(prog), path, bpf_program__name(prog), fr, out);
		if (r)
			goto cleanup;
		n++;
	}
	if (!n) {
		fprintf(stderr, "verdict-run: Failed to run %s: it has no cgroup_skb program\n", path);
		r = -ENOENT;
	}
cleanup:
	bpf_object__close(obj);
	return r;
}

static int run_pin(const char *path, const struct frames *fr, char *out)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int fd, r;

	fd = bpf_obj_get(path);
	if (fd < 0) {
		r = -errno;
		fprintf(stderr, "verdict-run: Failed to open pin %s: %s\n", path, strerror(-r));
		return r;
	}
	r = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (r) {
		r = -errno;
		fprintf(stderr, "verdict-run: Failed to inspect pin %s: %s\n", path, strerror(-r));
	} else if (info.type != BPF_PROG_TYPE_CGROUP_SKB) {
		fprintf(stderr, "verdict-run: Failed to run pin %s: not a cgroup_skb program (type %u)\n",
			path, info.type);
		r = -EINVAL;
	} else {
		r = run_prog(fd, "pin", path, fr, out);
	}
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "packets", required_argument, NULL, 'p' },
		{ "pin", required_argument, NULL, 'P' },
		{ "cb", no_argument, NULL, 'c' },
		{ "then-prog-id", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *packets = NULL;
	struct frames fr = { 0 };
	const char **pins = NULL;
	int npins = 0, c, i, r = 0;
	char *out = NULL;

	pins = calloc((size_t)argc, sizeof(*pins));
	if (!pins)
		return 1;
	while ((c = getopt_long(argc, argv, "p:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			packets = optarg;
			break;
		case 'P':
			pins[npins++] = optarg;
			break;
		case 'c':
			print_cb = 1;
			break;
		case 'T': {
			char *end;

			errno = 0;
			then_id = strtoul(optarg, &end, 10);
			if (!then_id || *end || errno || then_id > UINT32_MAX) {
				fprintf(stderr, "verdict-run: --then-prog-id %s: not a program id\n", optarg);
				free(pins);
				return 2;
			}
			then_fd = bpf_prog_get_fd_by_id((__u32)then_id);
			if (then_fd < 0) {
				fprintf(stderr, "verdict-run: Failed to open program %lu: %s\n", then_id,
					strerror(errno));
				free(pins);
				return 1;
			}
			break;
		}
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			free(pins);
			return 0;
		default:
			usage(stderr);
			free(pins);
			return 2;
		}
	}
	if (!packets || (optind == argc && !npins)) {
		fprintf(stderr, "verdict-run: need -p PACKETS and at least one object or --pin\n");
		usage(stderr);
		free(pins);
		return 2;
	}
	libbpf_set_print(print_libbpf);
	r = frames_read("verdict-run", packets, 0, &fr);
	if (r)
		goto cleanup;
	if (!fr.n) {
		fprintf(stderr, "verdict-run: Failed to read %s: no frames\n", packets);
		r = -EINVAL;
		goto cleanup;
	}
	out = malloc(fr.n + 1);
	if (!out) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < npins && !r; i++)
		r = run_pin(pins[i], &fr, out);
	for (i = optind; i < argc && !r; i++)
		r = run_object(argv[i], &fr, out);
cleanup:
	frames_free(&fr);
	free(out);
	free(pins);
	if (fflush(stdout))
		r = -EIO;
	return r ? 1 : 0;
}
