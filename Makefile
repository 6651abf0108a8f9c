# cgfilter toolkit: per-service packet filters on cgroup_skb BPF and systemd.
#
#   make              build everything into build/
#   make check        install what the tests need, run every test (as root)
#   make demo         install what is missing, load a filter, show it working
#   make install      PREFIX=/usr/local DESTDIR=
#   make deb          the Debian package: build/deb/cgfilter_VERSION_ARCH.deb
#   make install-wrap-cap  give the installed cgfilter-wrap CAP_NET_ADMIN (opt-in:
#                     it lets any user filter TCP sockets of their daemons)
#   make bench        measure what filters cost
#   make vocab        rewrite the man pages' lists of names from lang/vocab.c
#
# V=1 shows full commands.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/cgfilter
PKGDATADIR ?= $(PREFIX)/share/cgfilter
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

BUILD := $(CURDIR)/build
# the one version (cgfilter --version, the package's)
VERSION := $(shell sed -n 's/^\#define CGF_VERSION "\(.*\)"$$/\1/p' include/cgf_version.h)
# the filter `make` builds port-firewall with, to show the toolchain works
EXAMPLE_FILTER := icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)

include mk/bpf.mk
include mk/user.mk

.PHONY: all port-firewall bpf-program-only standalone tools cgfilter wrap tests check demo \
	install install-wrap-cap uninstall deb bench clean deps deps-tests vocab

all: port-firewall bpf-program-only standalone tools cgfilter wrap tests

port-firewall:
	$(Q)$(MAKE) --no-print-directory -C port-firewall O=$(BUILD)/port-firewall \
		FILTER='$(EXAMPLE_FILTER)'

bpf-program-only:
	$(Q)$(MAKE) --no-print-directory -C bpf-program-only O=$(BUILD)/bpf-program-only

standalone:
	$(Q)$(MAKE) --no-print-directory -C standalone O=$(BUILD)/standalone

tools:
	$(Q)$(MAKE) --no-print-directory -C tools O=$(BUILD)/tools

cgfilter:
	$(Q)$(MAKE) --no-print-directory -C cgfilter O=$(BUILD)/cgfilter

wrap:
	$(Q)$(MAKE) --no-print-directory -C wrap O=$(BUILD)/wrap

# the man pages' lists of names, from the one table (lang/vocab.c);
# tests/02-vocab.sh fails when they differ
vocab: tools
	$(Q)scripts/vocab.py $(BUILD)/tools/cgfilter-expr man/port-firewall.8 man/cgfilter.8

tests: tools port-firewall bpf-program-only standalone cgfilter wrap
	$(Q)$(MAKE) --no-print-directory -C tests O=$(BUILD)/tests

# the test dependencies first (iperf3, nftables, strace, ...), as make demo
# installs the build dependencies: a fresh machine needs no other step
check:
	$(Q)scripts/install-deps.sh --tests
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh

# BENCH_QUICK=1 for a quick run; bench/run.sh tells its other settings
bench: all
	$(Q)bench/run.sh

deps:
	$(Q)scripts/install-deps.sh

deps-tests:
	$(Q)scripts/install-deps.sh --tests

demo:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# what install.sh installs (port-firewall's sources, not a build of them)
install: tools standalone cgfilter wrap
	$(Q)scripts/install.sh "$(DESTDIR)" "$(PREFIX)" "$(BINDIR)" "$(LIBEXECDIR)" \
		"$(PKGDATADIR)" "$(MANDIR)" "$(UNITDIR)" "$(BUILD)" "$(BASHCOMPDIR)"

# debhelper (debian/) in a copy of the tree under build/deb/: make deps-tests
# installs what it needs
deb:
	$(Q)scripts/deb.sh "$(VERSION)" "$(BUILD)/deb"

# The kernel lets only a process with CAP_NET_ADMIN attach a filter to a TCP
# socket; cgfilter-wrap uses it for that alone and drops it before it runs
# the daemon (cgfilter-wrap(8)).  Not part of install: an administrator's choice.
install-wrap-cap:
	$(Q)f='$(DESTDIR)$(BINDIR)/cgfilter-wrap'; \
	[ -x "$$f" ] || { echo "install-wrap-cap: $$f is not installed: run make install first" >&2; exit 1; }; \
	command -v setcap >/dev/null || { echo "install-wrap-cap: setcap is missing (apt-get install libcap2-bin)" >&2; exit 1; }; \
	setcap cap_net_admin=ep "$$f" || { echo "install-wrap-cap: setcap cap_net_admin=ep $$f failed (as root? a file system that keeps capabilities?)" >&2; exit 1; }; \
	echo "  SETCAP   cap_net_admin=ep $$f"

uninstall:
	$(Q)scripts/install.sh --uninstall "$(DESTDIR)" "$(PREFIX)" "$(BINDIR)" \
		"$(LIBEXECDIR)" "$(PKGDATADIR)" "$(MANDIR)" "$(UNITDIR)" "$(BUILD)" "$(BASHCOMPDIR)"

clean:
	$(Q)rm -rf $(BUILD) port-firewall/build bpf-program-only/build standalone/build \
		tools/build cgfilter/build tests/build
