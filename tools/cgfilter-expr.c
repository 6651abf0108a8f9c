// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter-expr: check a port-firewall FILTER and turn it into C.
 *
 * port-firewall's Makefile runs this before clang ever sees the filter: it
 * accepts only vocabulary names, integer literals, C operators and
 * parentheses, and writes a header with the expression as well-defined C.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "expr.h"

static void usage(FILE *f, const char *prog)
{
	size_t i;

	fprintf(f,
		"Usage: %s [-o FILE] [-f FUNCTION] [--name NAME] 'EXPR'\n"
		"Check a port-firewall FILTER expression and write it as C.\n\n"
		"  -o, --output FILE    write the C header to FILE (default: stdout)\n"
		"  -f, --function NAME  name of the generated function (default: filter_expr)\n"
		"      --name NAME      prefix of error messages (default: cgfilter-expr)\n"
		"      --check          only check, write nothing\n"
		"  -h, --help           this help\n\n"
		"Vocabulary:\n",
		prog);
	for (i = 0; i < cgf_vocab_len; i++)
		if (!cgf_vocab[i].addr)
			fprintf(f, "  %-10s %s\n", cgf_vocab[i].name, cgf_vocab[i].help);
	fprintf(f, "\nExample:\n  %s 'icmp || (udp && dst_port == 53)'\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "function", required_argument, NULL, 'f' },
		{ "name", required_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *out = NULL, *func = "filter_expr", *name = "cgfilter-expr";
	struct cgf_parse_opts opts = { .dialect = CGF_DIALECT_C };
	struct cgf_error err;
	struct cgf_expr *e;
	int c, r, check_only = 0;
	char msg[512];
	FILE *f;

	while ((c = getopt_long(argc, argv, "o:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'f':
			func = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'c':
			check_only = 1;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: expected exactly one FILTER expression\n", name);
		usage(stderr, argv[0]);
		return 2;
	}
	r = cgf_expr_parse(argv[optind], &opts, &e, &err);
	if (r) {
		cgf_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "%s: bad FILTER: %s\n", name, msg);
		/* a window of the line, however long the filter */
		cgf_error_show_place(stderr, argv[optind], &err);
		return 1;
	}
	if (check_only) {
		cgf_expr_free(e);
		return 0;
	}
	f = out ? fopen(out, "w") : stdout;
	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", name, out, strerror(errno));
		cgf_expr_free(e);
		return 1;
	}
	r = cgf_expr_emit_c(e, func, f);
	cgf_expr_free(e);
	if (f != stdout && fclose(f))
		r = -errno;
	if (r) {
		fprintf(stderr, "%s: cannot write %s: %s\n", name, out ? out : "stdout",
			strerror(-r));
		if (out)
			unlink(out);
		return 1;
	}
	return 0;
}
