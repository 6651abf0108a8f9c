// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter: per-service packet filters for systemd units, changed at run
 * time.  The commands are one table: each row is the function, the options
 * it takes, its usage and help; the option parser, the list of commands
 * and every 'cgfilter CMD --help' come from it.  See cgfilter(8).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cgf_version.h"
#include "cmd.h"
#include "wrap.h"
#include "expr.h"


struct opt {
	unsigned int bit;
	const char *name;
	int shortopt;           /* 0: none */
	const char *arg;        /* NULL: a flag */
	const char *help;
};

/* Every option of every command: the one list. */
static const struct opt opts[] = {
	{ OPT_FILE, "file", 'f', "FILE", "read the filter (or items) from FILE ('-': standard input)" },
	{ OPT_SHARED, "shared", 0, NULL, "one engine for many units: each registers its own filter" },
	{ OPT_EVENTS, "events-per-sec", 0, "N",
	  "drop events per second and CPU for monitor (0..1000000, default 100)" },
	{ OPT_JSON, "json", 0, NULL, "JSON (stats, show: one object; monitor: one a line, for each drop)" },
	{ OPT_CODE, "code", 0, NULL, "the BPF instructions of the filter in force too" },
	{ OPT_DETACH, "detach", 0, NULL, "detach it from every cgroup first" },
	{ OPT_CGROUP, "cgroup", 0, "PATH",
	  "a cgroup2 directory, or a path from the root (the default: in the command's text)" },
	{ OPT_COUNT, "count", 'c', "N", "stop after N drops (1..1000000000)" },
	{ OPT_TIMEOUT, "timeout", 't', "MS", "stop after MS milliseconds (1..86400000)" },
	{ OPT_QUIET, "quiet", 'q', NULL, "print nothing, only the exit status" },
	{ OPT_CLASSIC, "classic", 0, NULL, "classic BPF, as 'cgfilter wrap' attaches to sockets" },
	{ OPT_SECONDS, "seconds", 0, "N", "record for N seconds (1..86400, default 60)" },
	{ OPT_FORCE, "force", 0, NULL, "exe-ids stop: even while filters read executables; refresh: every name now" },
	{ OPT_INGRESS, "ingress", 0, NULL, "the unit's incoming packets only" },
	{ OPT_EGRESS, "egress", 0, NULL, "the unit's outgoing packets only" },
	{ OPT_NAME, "name", 0, "NAME", "the run's name: unit NAME.scope, pin /sys/fs/bpf/cgfilter-run/NAME" },
	{ OPT_PROMETHEUS, "prometheus", 0, NULL,
	  "every engine under DIR (/sys/fs/bpf) in the Prometheus text format" },
	{ OPT_OUTPUT, "output", 'o', "FILE",
	  "with --prometheus: replace FILE atomically (temporary file, fsync, rename)" },
	{ OPT_JOURNAL, "journal", 0, NULL, "send each drop to the journal, with fields, not to standard output" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct cmd cmds[] = {
	{ "enable", cmd_enable, OPT_FILE | OPT_INGRESS | OPT_EGRESS,
	  "UNIT [--ingress|--egress] (EXPR | -f FILE)", "give a systemd unit a persistent filter",
	  "Give UNIT (a .service or .socket) this filter, for good.  Its NAME is UNIT\n"
	  "without .service, other characters than [A-Za-z0-9:_@-] as '_' (nginx.service:\n"
	  "nginx).  Write the filter to /etc/cgfilter/NAME.filter (cgfilter@NAME.service\n"
	  "loads it at /sys/fs/bpf/cgfilter/NAME) and a drop-in\n"
	  "/etc/systemd/system/UNIT.d/cgfilter.conf that requires the loader, names the pin\n"
	  "(IPIngressFilterPath=, IPEgressFilterPath=) and checks it before the unit\n"
	  "starts; the .socket units that start a service get it too (their filter is the\n"
	  "one on the sockets they pass in).  Then reload systemd.  A filter already\n"
	  "loaded changes now, atomically; a unit running without it gets it when\n"
	  "restarted, and the command says which restart.  Enabling again replaces the\n"
	  "filter.  A bad filter, or a file enable did not write, changes nothing.\n",
	  "cgfilter enable nginx.service 'tcp && local_port in { 80, 443 }'" },
	{ "disable", cmd_disable, 0, "UNIT", "remove what enable wrote",
	  "Remove exactly the files 'cgfilter enable UNIT' wrote (and a drop-in directory\n"
	  "it made), reload systemd and stop the loader.  A running unit keeps its filter\n"
	  "until it is restarted.\n",
	  NULL },
	{ "status", cmd_status, 0, "[UNIT]", "whether each enabled filter is in force now",
	  "For each unit given a filter by 'cgfilter enable' (or UNIT): whether the filter\n"
	  "is in force on the unit's cgroup now, for the directions it names, read from\n"
	  "the kernel.  Exit status 1 if a running unit's filter is not in force, if\n"
	  "systemd does not name the pin for each direction enable wrote (NOT\n"
	  "CONFIGURED), or if a later drop-in reset the ExecStartPre= check enable wrote\n"
	  "or ignores its failure (NO GUARD).\n",
	  "cgfilter status nginx.service" },
	{ "load", cmd_load, OPT_FILE | OPT_SHARED | OPT_EVENTS, "[--events-per-sec N] PIN (EXPR | -f FILE) | --shared [--events-per-sec N] PIN",
	  "load a filter, pin it at PIN",
	  "Load an engine with this filter and pin its entry program at PIN and its maps\n"
	  "in PIN_maps/.  PIN must not exist.  A bad filter changes nothing.  With --shared,\n"
	  "no filter: units register theirs, and a cgroup without one drops everything.\n",
	  "cgfilter load /sys/fs/bpf/web 'tcp && dst_port in { 80, 443 }'" },
	{ "set", cmd_set, OPT_FILE, "PIN (EXPR | -f FILE)", "replace the filter atomically",
	  "Replace the filter of an engine in one step: every packet sees the old or the\n"
	  "new filter, never a mix.  Units using PIN keep running.  A bad filter, or a\n"
	  "failure of any kind, changes nothing.  A set declaration ('@name = { ... }')\n"
	  "gives that named set these items, with the filter.\n",
	  "cgfilter set /sys/fs/bpf/web 'tcp && dst_port == 443'" },
	{ "register", cmd_register, OPT_FILE | OPT_CGROUP, "PIN [--cgroup PATH] (EXPR | -f FILE)",
	  "set the filter of this process's cgroup (shared)",
	  "Set the filter of this process's cgroup (or PATH) in a shared engine (load\n"
	  "--shared).  For a unit: IPIngressFilterPath=PIN and/or IPEgressFilterPath=PIN\n"
	  "and ExecStartPre=cgfilter register PIN 'EXPR'.  The filter goes with the cgroup.\n",
	  "cgfilter register /sys/fs/bpf/cgfilter/shared 'tcp && src_port == 80'" },
	{ "unregister", cmd_unregister, OPT_CGROUP, "PIN [--cgroup PATH]",
	  "remove it (the cgroup then drops everything)",
	  "Remove the filter of this process's cgroup (or PATH) from a shared engine: the\n"
	  "cgroup then drops every packet.\n",
	  NULL },
	{ "mode", cmd_mode, OPT_CGROUP, "PIN [--cgroup PATH] [enforce|observe|block|pass]",
	  "print or change what the filter does with its verdicts",
	  "enforce: pass what the filter passes, drop the rest (a new engine's mode).\n"
	  "observe: pass everything; count what the filter would drop (stats: would have\n"
	  "dropped) and stream it to 'cgfilter monitor' as would-drop: a dry run.\n"
	  "block: drop everything (an emergency stop).  pass: pass everything.\n"
	  "The change is atomic like 'set' (the filter is rebuilt in that mode and switched\n"
	  "in one update) and kept by 'set' and 'systemctl reload'.  Without a mode: print\n"
	  "it.  Shared engine: the mode of the cgroup PATH, or of every registered cgroup.\n",
	  "cgfilter mode /sys/fs/bpf/web observe" },
	{ "learn", cmd_learn, OPT_SECONDS | OPT_CGROUP, "PIN [--seconds N] [--cgroup PATH]",
	  "print the smallest filter that passes the traffic seen",
	  "Record the flows the filter at PIN sees for N seconds (or until Ctrl-C), then\n"
	  "print a filter file that passes them (and as little else as stateless rules\n"
	  "can), with comments saying what each rule covers: each port served, with its\n"
	  "peers; each port of peers connected to; ICMP by type and peer.  Peers are\n"
	  "joined into a prefix only where every address of it was seen.  The filter must\n"
	  "pass everything meanwhile: put it in observe mode first, or set it to 1.\n"
	  "Shared engine: --cgroup PATH.\n",
	  "cgfilter learn /sys/fs/bpf/web --seconds 600 > /etc/cgfilter/web.filter" },
	{ "set-add", cmd_set_add, OPT_FILE, "PIN @SET (ITEM... | -f FILE)",
	  "add addresses, ports or executables to a named set",
	  "Add items to a named set, creating it if needed (its type is that of the first\n"
	  "item).  Items: 10.0.0.0/8, 192.0.2.1, fd00::/8, host names (updates.example.org,\n"
	  "resolved now to their IPv4 and IPv6 addresses, again by 'cgfilter refresh');\n"
	  "22, 8000..8100; or executables by absolute path (/usr/bin/curl), resolved now;\n"
	  "-f FILE reads them one a line.  All items go in at once, or none: filters using\n"
	  "the set see the old set or the new one.  A name that does not resolve changes\n"
	  "nothing.\n",
	  "cgfilter set-add /sys/fs/bpf/web @trusted 10.0.0.0/8 fd00::/8" },
	{ "set-del", cmd_set_del, OPT_FILE, "PIN @SET (ITEM... | -f FILE)", "remove them",
	  "Remove items (prefixes exactly as added) from a named set, all at once.  A host\n"
	  "name takes its addresses with it, except those the set holds otherwise (added\n"
	  "by themselves or by another name).\n", NULL },
	{ "refresh", cmd_refresh, OPT_FORCE, "[--force] [PIN|DIR...]",
	  "resolve host names again, update what changed",
	  "Resolve again the host names of the filters in force (every cgroup's, in a\n"
	  "shared engine) and of the named sets of each engine at PIN, or under DIR\n"
	  "(default: every engine under /sys/fs/bpf), whose lifetime has passed\n"
	  "(--force: all of them), and put the new addresses in force as 'set' and\n"
	  "'set-add' do: each filter in one update, each set all at once.  Names are\n"
	  "resolved with getaddrinfo (/etc/hosts, DNS).  A name that no longer resolves\n"
	  "keeps its last addresses, with a warning, and the exit status stays 0; other\n"
	  "failures exit 1.\n"
	  "A name's lifetime is its DNS TTL, or 300 s for one from /etc/hosts\n"
	  "($CGFILTER_NAME_LIFETIME, when set, for every name); the timer\n"
	  "cgfilter-refresh.timer runs this every minute.\n",
	  "cgfilter refresh --force /sys/fs/bpf/web" },
	{ "attach", cmd_attach, 0, "PIN CGROUP [ingress|egress|both]",
	  "attach a filter to a cgroup (and all below it)",
	  "Attach the engine at PIN to CGROUP (a cgroup2 directory, or a path from the\n"
	  "cgroup2 root such as user.slice) for ingress, egress or both (the default),\n"
	  "beside other programs there.  It filters every process of the cgroup and of\n"
	  "the cgroups below it; a unit's own filter (IPIngressFilterPath=) runs too, and\n"
	  "a packet passes only if both pass it.  Attaching twice is refused.\n",
	  "cgfilter attach /sys/fs/bpf/apps user.slice" },
	{ "detach", cmd_detach, 0, "PIN CGROUP [ingress|egress|both]", "detach it",
	  "Detach the engine at PIN from CGROUP for the directions given (default: both);\n"
	  "refused, changing nothing, where it is not attached.\n", NULL },
	{ "show", cmd_show, OPT_CODE | OPT_JSON, "PIN [--code] [--json]",
	  "filter, sets, counters, attached cgroups",
	  "The filter in force (read from the program that runs), its named sets, the\n"
	  "counters and the cgroups the engine is attached to.\n",
	  NULL },
	{ "list", cmd_list, 0, "[DIR]", "every cgfilter engine under DIR (/sys/fs/bpf)",
	  "Every cgfilter engine pinned under DIR (default /sys/fs/bpf).\n", NULL },
	{ "stats", cmd_stats, OPT_JSON | OPT_PROMETHEUS | OPT_OUTPUT,
	  "PIN [--json] | --prometheus [-o FILE] [DIR]", "packets and bytes passed and dropped",
	  "Packets and bytes passed and dropped, summed over CPUs.  --prometheus: the\n"
	  "counters of every engine under DIR (default /sys/fs/bpf) in the Prometheus\n"
	  "text format, labelled by pin; cgfilter_attached_info names the cgroups and\n"
	  "units each is attached to, cgfilter_filter_info the mode of each filter.\n"
	  "-o FILE: write them to FILE for node_exporter's textfile collector, all at\n"
	  "once; a failed write leaves FILE as it was (cgfilter-metrics.timer does it).\n",
	  "cgfilter stats --prometheus -o /var/lib/prometheus/node-exporter/cgfilter.prom" },
	{ "monitor", cmd_monitor, OPT_COUNT | OPT_TIMEOUT | OPT_JSON | OPT_JOURNAL,
	  "PIN [-c N] [-t MS] [--json | --journal]", "stream dropped packets",
	  "Print dropped packets as they happen, at most --events-per-sec a second per\n"
	  "CPU (set at load).  -c: stop after N drops; -t: stop after MS ms; with -c, the\n"
	  "exit status is 1 if fewer than N were seen.  --journal: send each to the\n"
	  "journal instead, the line as MESSAGE with fields CGFILTER_PIN, UNIT,\n"
	  "CGFILTER_CGROUP, _PROTO, _SRC, _DST, _SRC_PORT, _DST_PORT, _DIRECTION,\n"
	  "_VERDICT, _LEN, _EXE\n"
	  "(cgfilter-monitor@NAME.service does it for /sys/fs/bpf/cgfilter/NAME).\n",
	  "journalctl -o json CGFILTER_PIN=/sys/fs/bpf/cgfilter/web" },
	{ "check", cmd_check, OPT_QUIET, "[-q] PIN",
	  "fail unless PIN is a loaded cgroup_skb program",
	  "Exit 0 if PIN is a loaded cgroup_skb program, else 1.  systemd attaches a\n"
	  "pinned program best effort and runs a unit unfiltered if it cannot, so guard\n"
	  "the unit: ExecStartPre=cgfilter check PIN\n",
	  NULL },
	{ "unload", cmd_unload, OPT_DETACH, "PIN [--detach]", "remove what load pinned",
	  "Remove PIN and PIN_maps/ (also a half-made or foreign PIN_maps/, saying what\n"
	  "went).  Cgroups it is still attached to then drop every packet (its filter\n"
	  "slots are emptied) until they go away or it is detached from them; --detach\n"
	  "detaches it from every cgroup first, which then run unfiltered.\n",
	  NULL },
	{ "exe-ids", cmd_exe_ids, OPT_FORCE, "[status | stop [--force]]", "whether executables of sockets are recorded",
	  "A filter that names an executable (exe) has every socket made from then on\n"
	  "recorded with the executable of the process that made it, by a program\n"
	  "attached to the cgroup2 root (" CGF_EXE_DIR "/record).  status (the\n"
	  "default): say whether it runs; exit 1 if it is pinned but not attached.  stop:\n"
	  "detach and remove it: sockets made from then on have no executable, for every\n"
	  "filter, until a filter with exe is set again (the map stays while one reads it).\n"
	  "While filters read executables, stop is refused without --force: a rule such\n"
	  "as !(exe == \"/usr/bin/nc\") would pass what nc makes then.\n",
	  NULL },
	{ "compile", cmd_compile, OPT_FILE | OPT_CLASSIC, "[--classic] (EXPR | -f FILE)",
	  "print the BPF program of a filter (no root)",
	  "Check a filter and print the BPF program cgfilter would load for it; needs no\n"
	  "privilege (maps are shown by name).  --classic: the classic BPF socket filter\n"
	  "that 'cgfilter wrap' attaches, or why classic BPF cannot evaluate the filter.\n",
	  "cgfilter compile 'tcp && dst_port == 80'" },
	{ "run", cmd_run, OPT_FILE | OPT_NAME | OPT_EVENTS | OPT_STATUS,
	  "[--name NAME] [--events-per-sec N] (EXPR | -f FILE) -- CMD [ARG...]",
	  "run a command with a filter of its own",
	  "Run CMD, and everything it starts, in a new cgroup whose ingress and egress\n"
	  "carry the filter before CMD executes: every socket it makes is filtered.  With\n"
	  "systemd, the cgroup is a transient scope, NAME.scope (systemctl status shows\n"
	  "it); without, cgfilter-run-NAME below the cgroup it is started from.  CMD runs\n"
	  "only where every filter in force where run started still applies.  Pinned\n"
	  "at /sys/fs/bpf/cgfilter-run/NAME while CMD runs: 'cgfilter set', 'mode',\n"
	  "'show' and 'monitor' work on it.  The exit status is CMD's (a CMD killed by a\n"
	  "signal: cgfilter run dies of it); signals sent to cgfilter run reach CMD.\n"
	  "When CMD's cgroup is empty, the cgroup and the filter go, also when cgfilter run\n"
	  "itself was killed.  Default NAME: run-CMD-PID.\n",
	  "cgfilter run 'tcp && (dst_port == 443 || src_port == 443) || udp && dst_port == 53' -- curl https://example.org" },
	{ "wrap", cmd_wrap, OPT_RAW, CGF_WRAP_USAGE, "run a daemon with filtered sockets (no root)",
	  "Create sockets (--listen) or take those of a .socket unit (LISTEN_FDS), attach\n"
	  "the filter to each (classic BPF; eBPF with CAP_BPF), lock it, and run CMD with\n"
	  "them, as systemd passes sockets, without capabilities.  UDP needs no privilege,\n"
	  "TCP needs CAP_NET_ADMIN (give it to cgfilter-wrap alone).  A socket filter sees\n"
	  "only packets received, and cannot tell who made a socket (no exe).  'cgfilter\n"
	  "wrap --help' has its options.\n",
	  "cgfilter wrap --listen 127.0.0.1:5353/udp 'src_ip == 127.0.0.2' -- ./daemon" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: cgfilter [-v] COMMAND [ARGS]\n"
		   "Per-service packet filters for systemd units, changed at run time.\n\nCommands:\n");
	for (i = 0; i < NCMDS; i++) {
		char left[160];

		char *nl;

		snprintf(left, sizeof(left), "%s %s", cmds[i].name, cmds[i].args);
		/* a usage of several lines, on one */
		while ((nl = strchr(left, '\n'))) {
			size_t sp = strspn(nl + 1, " ");

			*nl = ' ';
			memmove(nl + 1, nl + 1 + sp, strlen(nl + 1 + sp) + 1);
		}
		if (strlen(left) >= 40)
			fprintf(f, "  %s\n  %-40s %s\n", left, "", cmds[i].summary);
		else
			fprintf(f, "  %-40s %s\n", left, cmds[i].summary);
	}
	fprintf(f, "\n'cgfilter COMMAND --help' tells more; the language is in cgfilter(8).\n\n"
		   "Examples:\n"
		   "  cgfilter load /sys/fs/bpf/web 'tcp && dst_port in { 80, 443 } || icmp'\n"
		   "  cgfilter set /sys/fs/bpf/web 'tcp && dst_port == 443'\n"
		   "  cgfilter set-add /sys/fs/bpf/web @trusted 10.0.0.0/8 fd00::/8\n"
		   "  systemd-run -p IPIngressFilterPath=/sys/fs/bpf/web -p IPEgressFilterPath=/sys/fs/bpf/web CMD\n");
}

static void cmd_help(const struct cmd *c, FILE *f)
{
	size_t i;

	fprintf(f, "Usage: cgfilter %s %s\n%s", c->name, c->args, c->help);
	if (c->opts & ~OPT_RAW) {
		fprintf(f, "\nOptions:\n");
		for (i = 0; i < NOPTS; i++) {
			char left[64], sh[8] = "    ";

			if (!(c->opts & opts[i].bit))
				continue;
			if (opts[i].shortopt)
				snprintf(sh, sizeof(sh), "-%c, ", opts[i].shortopt);
			snprintf(left, sizeof(left), "%s--%s%s%s", sh, opts[i].name, opts[i].arg ? " " : "",
				 opts[i].arg ? opts[i].arg : "");
			fprintf(f, "  %-26s %s\n", left, opts[i].help);
		}
	}
	if (strstr(c->args, "EXPR")) { /* the names, from the language's one table */
		fprintf(f, "\nNames in a filter (cgfilter(8) has the language):\n");
		for (i = 0; i < cgf_vocab_len; i++)
			/* (a socket filter cannot tell who made a socket) */
			if (c->run != cmd_wrap || strcmp(cgf_vocab[i].name, "exe"))
				fprintf(f, "  %-11s %s\n", cgf_vocab[i].name, cgf_vocab[i].help);
	}
	if (c->example)
		fprintf(f, "\nExample: %s\n", c->example);
}

int usage_error(const struct cmd_args *a, const char *fmt, ...)
{
	va_list ap;

	char prefix[64], *msg = NULL;

	snprintf(prefix, sizeof(prefix), "cgfilter %s", a->name);
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	cgf_say(prefix, "%s (see 'cgfilter %s --help')", msg ? msg : "(out of memory for the message)", a->name);
	free(msg);
	return EXIT_USAGE;
}

/* A number of decimal digits only (strtoul takes spaces and signs) within
 * lo..hi. */
static int number(const struct cmd_args *a, const char *what, const char *s, unsigned long lo,
		  unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end || errno || v < lo || v > hi)
		return usage_error(a, "invalid %s: '%s' (%lu..%lu)", what, s, lo, hi);
	*out = v;
	return 0;
}

/* r, unless what was printed could not be written (a full disk, /dev/full):
 * a learned filter or a help text lost is no success */
static int written(const char *what, int r)
{
	int e;

	errno = 0;
	if (fflush(stdout) || ferror(stdout)) {
		e = errno ? errno : EIO;
		cgf_say(NULL, "cgfilter%s%s: cannot write the output: %s", what ? " " : "",
			what ? what : "", strerror(e));
		return 1;
	}
	return r;
}

static int parse_opts(const struct cmd *c, struct cmd_args *a, int argc, char **argv)
{
	struct option lo[NOPTS + 2];
	char shortopts[3 * NOPTS + 4] = "+h", clip[256];
	unsigned int given;
	size_t i, n = 0;
	int o;

	for (i = 0; i < NOPTS; i++) {
		lo[n].name = opts[i].name;
		lo[n].has_arg = opts[i].arg ? required_argument : no_argument;
		lo[n].flag = NULL;
		lo[n].val = 256 + (int)i;
		n++;
		if (opts[i].shortopt) {
			char s[3] = { (char)opts[i].shortopt, opts[i].arg ? ':' : 0, 0 };

			strcat(shortopts, s);
		}
	}
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ 0 };
	/* the command's own options may follow its arguments, as before;
	 * except run's: what follows the filter is CMD's */
	if (c->opts & OPT_STATUS)
		memmove(shortopts + 2, shortopts + 1, strlen(shortopts)), shortopts[0] = '+', shortopts[1] = ':';
	else
		shortopts[0] = ':';
	optind = 1;
	opterr = 0;
	given = 0;
	while ((o = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		const struct opt *p = NULL;

		if (o == 'h') {
			cmd_help(c, stdout);
			exit(written("help", 0));
		}
		if (o == ':' || (o == '?' && optopt >= 256))
			return usage_error(a, "%s %s", o == ':' ? "missing value of" : "unknown option",
					   cgf_clip(argv[optind - 1], clip, sizeof(clip)));
		if (o == '?' && optopt)
			/* a short option, maybe inside a word such as '-dst_port == 0' */
			return usage_error(a, "unknown option -%c (a filter that starts with '-' goes after '--')",
					   optopt);
		if (o == '?')
			return usage_error(a, "unknown option %s", cgf_clip(argv[optind - 1], clip, sizeof(clip)));
		if (o >= 256)
			p = &opts[o - 256];
		for (i = 0; !p && i < NOPTS; i++)
			if (opts[i].shortopt == o)
				p = &opts[i];
		if (!p)
			return usage_error(a, "bad option");
		if (!(c->opts & p->bit))
			return usage_error(a, "option --%s does not apply to %s", p->name, c->name);
		/* an option with a value given twice: which one was meant? */
		if (p->arg && (given & p->bit))
			return usage_error(a, "option --%s given twice", p->name);
		given |= p->bit;
		switch (p->bit) {
		case OPT_FILE: a->file = optarg; break;
		case OPT_SHARED: a->shared = true; break;
		case OPT_JSON: a->json = true; break;
		case OPT_CODE: a->code = true; break;
		case OPT_DETACH: a->detach = true; break;
		case OPT_QUIET: a->quiet = true; break;
		case OPT_CLASSIC: a->classic = true; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_INGRESS: a->ingress = true; break;
		case OPT_EGRESS: a->egress = true; break;
		case OPT_CGROUP: a->cgroup = optarg; break;
		case OPT_NAME: a->run_name = optarg; break;
		case OPT_PROMETHEUS: a->prometheus = true; break;
		case OPT_OUTPUT: a->output = optarg; break;
		case OPT_JOURNAL: a->journal = true; break;
		case OPT_EVENTS:
			if (number(a, "events per second", optarg, 0, 1000000, &a->events_per_sec))
				return EXIT_USAGE;
			break;
		case OPT_COUNT:
			if (number(a, "count", optarg, 1, 1000000000, &a->count))
				return EXIT_USAGE;
			break;
		case OPT_SECONDS:
			if (number(a, "seconds", optarg, 1, 86400, &a->seconds))
				return EXIT_USAGE;
			break;
		case OPT_TIMEOUT:
			if (number(a, "timeout", optarg, 1, 86400000, &a->timeout_ms))
				return EXIT_USAGE;
			break;
		}
	}
	a->argv = argv + optind;
	a->argc = argc - optind;
	return 0;
}

/* The option of a usage word ("--cgroup", "-f"), or NULL. */
static const struct opt *usage_opt(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if ((n == strlen(opts[i].name) + 2 && !strncmp(w + 2, opts[i].name, n - 2)) ||
		    (n == 2 && opts[i].shortopt == w[1]))
			return &opts[i];
	return NULL;
}

/* The positional arguments of a usage ("PIN [--cgroup PATH] [a|b]"), one a
 * line ("PIN", "a|b"): its words without brackets, options and their
 * values; "x | y" alternatives joined by '|'; nothing after "--". */
static void print_positionals(const char *args)
{
	const char *p = args;
	bool skip = false, alt = false, any = false;

	while (*p) {
		size_t n;

		p += strspn(p, " \n[]()");
		n = strcspn(p, " \n[]()");
		if (!n)
			continue;
		if (n == 2 && !strncmp(p, "--", 2))
			break;
		if (n == 1 && *p == '|') {
			alt = any;
		} else if (*p == '-') {
			const struct opt *o = usage_opt(p, n);

			skip = o && o->arg;
		} else if (skip) {
			skip = false;
		} else {
			printf("%s%.*s", alt ? "|" : any ? "\n" : "", (int)n, p);
			alt = false;
			any = true;
		}
		p += n;
	}
	if (any)
		putchar('\n');
}

/* cgfilter __complete commands | options CMD | args CMD: what the bash
 * completion (cgfilter/completion.bash) offers, from the one table: the
 * commands; a command's options, "--name ARG" when one takes a value; the
 * kinds of its positional arguments (PIN, CGROUP, UNIT, a|b...). */
static int complete_main(int argc, char **argv)
{
	const struct cmd *c = argc == 3 ? find_cmd(argv[2]) : NULL;
	size_t i;

	if (argc == 2 && !strcmp(argv[1], "commands")) {
		for (i = 0; i < NCMDS; i++)
			printf("%s\n", cmds[i].name);
		printf("help\n");
		return 0;
	}
	if (!c || (strcmp(argv[1], "options") && strcmp(argv[1], "args"))) {
		cgf_note("usage: cgfilter __complete commands | options CMD | args CMD");
		return EXIT_USAGE;
	}
	if (c->opts & OPT_RAW)
		return 0;
	if (!strcmp(argv[1], "args")) {
		print_positionals(c->args);
		return 0;
	}
	for (i = 0; i < NOPTS; i++) {
		if (!(c->opts & opts[i].bit))
			continue;
		printf("--%s%s%s\n", opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		if (opts[i].shortopt)
			printf("-%c%s%s\n", opts[i].shortopt, opts[i].arg ? " " : "",
			       opts[i].arg ? opts[i].arg : "");
	}
	printf("--help\n");
	return 0;
}

/* libbpf's messages: shown with -v only (the commands say what failed). */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!cgf_verbose)
		return 0;
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	struct cmd_args a = { .events_per_sec = 100, .seconds = 60 };
	const struct cmd *c;
	char clip[256];
	int r;

	/* global options before the command */
	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose")) {
			cgf_verbose++;
		} else if (!strcmp(argv[1], "-vv")) {
			cgf_verbose += 2;
		} else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			usage(stdout);
			return written(NULL, 0);
		} else if (!strcmp(argv[1], "--version")) {
			printf("cgfilter %s\n", CGF_VERSION);
			return written(NULL, 0);
		} else {
			cgf_note("unknown option %s (cgfilter --help lists them)",
				cgf_clip(argv[1], clip, sizeof(clip)));
			return EXIT_USAGE;
		}
		argv++;
		argc--;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "__run-exec")) /* cgfilter run's child, in its scope */
		return cgf_run_exec_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "__run-clean")) /* cgfilter run's cleaner, as a unit */
		return cgf_run_clean_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "__complete")) /* for the bash completion */
		return complete_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "help")) {
		if (argc > 3) {
			cgf_note("help takes at most one command");
			return EXIT_USAGE;
		}
		if (argc == 2) {
			usage(stdout);
			return written("help", 0);
		}
		c = find_cmd(argv[2]);
		if (!c) {
			cgf_note("unknown command '%s'", cgf_clip(argv[2], clip, sizeof(clip)));
			usage(stderr);
			return EXIT_USAGE;
		}
		cmd_help(c, stdout);
		return written("help", 0);
	}
	c = find_cmd(argv[1]);
	if (!c) {
		cgf_note("unknown command '%s'", cgf_clip(argv[1], clip, sizeof(clip)));
		usage(stderr);
		return EXIT_USAGE;
	}
	a.name = c->name;
	if (c->opts & OPT_RAW) {
		a.argc = argc - 1;
		a.argv = argv + 1;
		return c->run(&a);     /* (wrap says itself if its output is lost) */
	}
	r = parse_opts(c, &a, argc - 1, argv + 1);
	if (r)
		return r;
	libbpf_set_print(libbpf_print);
	r = c->run(&a);
	if (c->opts & OPT_STATUS)
		return r;
	return written(c->name, r == EXIT_USAGE ? EXIT_USAGE : r ? 1 : 0);
}
