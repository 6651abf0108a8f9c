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
		"      --vocab FORMAT   print the names: 'names' (one a line), 'man' (the\n"
		"                       man pages' list) or 'grammar'; with --addresses,\n"
		"                       src_ip, dst_ip, local_ip, remote_ip and exe (cgfilter's) too\n"
		"  -h, --help           this help\n\n"
		"Vocabulary:\n",
		prog);
	for (i = 0; i < cgf_vocab_len; i++)
		if (!cgf_vocab[i].addr)
			fprintf(f, "  %-11s %s\n", cgf_vocab[i].name, cgf_vocab[i].help);
	fprintf(f, "\nExample:\n  %s 'icmp || (udp && dst_port == 53)'\n", prog);
}

struct args {
	const char *out, *func, *name, *vocab;
	bool check_only, addrs;
};

/* --vocab FORMAT: the names of the one table (lang/vocab.c) */
static int print_vocab(const struct args *a, int nargs)
{
	static const char *const formats[] = { "names", "man", "grammar" };
	size_t k;

	for (k = 0; k < 3 && strcmp(a->vocab, formats[k]); k++)
		;
	if (k == 3 || nargs) {
		fprintf(stderr, "%s: --vocab takes names, man or grammar, and no FILTER\n", a->name);
		return 2;
	}
	cgf_vocab_print(stdout, (enum cgf_vocab_format)k, a->addrs);
	return fflush(stdout) ? 1 : 0;
}

/* Check the filter and write it as C (or only check it). */
static int check_and_emit(const struct args *a, const char *text)
{
	struct cgf_parse_opts opts = { .dialect = CGF_DIALECT_C };
	struct cgf_error err;
	struct cgf_expr *e;
	char msg[512];
	FILE *f;
	int r;

	r = cgf_expr_parse(text, &opts, &e, &err);
	if (r) {
		cgf_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "%s: bad FILTER: %s\n", a->name, msg);
		/* a window of the line, however long the filter */
		cgf_error_show_place(stderr, text, &err);
		return 1;
	}
	if (a->check_only) {
		cgf_expr_free(e);
		return 0;
	}
	f = a->out ? fopen(a->out, "w") : stdout;
	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", a->name, a->out, strerror(errno));
		cgf_expr_free(e);
		return 1;
	}
	r = cgf_expr_emit_c(e, a->func, f);
	cgf_expr_free(e);
	if (f != stdout && fclose(f))
		r = -errno;
	if (r) {
		fprintf(stderr, "%s: cannot write %s: %s\n", a->name, a->out ? a->out : "stdout",
			strerror(-r));
		if (a->out)
			unlink(a->out);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "function", required_argument, NULL, 'f' },
		{ "name", required_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'c' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "addresses", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct args a = { .func = "filter_expr", .name = "cgfilter-expr" };
	int c;

	while ((c = getopt_long(argc, argv, "o:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': a.out = optarg; break;
		case 'f': a.func = optarg; break;
		case 'n': a.name = optarg; break;
		case 'c': a.check_only = true; break;
		case 'V': a.vocab = optarg; break;
		case 'a': a.addrs = true; break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (a.vocab)
		return print_vocab(&a, argc - optind);
	if (optind != argc - 1) {
		fprintf(stderr, "%s: expected exactly one FILTER expression\n", a.name);
		usage(stderr, argv[0]);
		return 2;
	}
	return check_and_emit(&a, argv[optind]);
}
