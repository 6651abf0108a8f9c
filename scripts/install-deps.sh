#!/usr/bin/env bash
# Install the dependencies that are missing, with apt-get (Debian, Ubuntu).
# Installs nothing that is already there; says what it installs and why it
# cannot.
#
#   install-deps.sh            what `make` needs to build (make deps, make demo)
#   install-deps.sh --tests    that, and what `make check` and `make bench`
#                              need to run every test (make check)
#
# As root it installs; otherwise it lists what is missing: for the build
# that is an error (exit 1), for the tests a warning (those tests then say
# SKIP and why).
set -euo pipefail
CGF_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$CGF_TOP/scripts/errtrap.sh"

prog=install-deps.sh
BUILD_PKGS="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev make gcc pkg-config iproute2 python3"
# the private systemd (systemd, dbus, util-linux's unshare/nsenter), ps,
# throughput (iperf3), the nftables row, the plots, fault injection (strace),
# script(1) for a terminal (bsdutils), the man page check (groff-base),
# file capabilities for the cgfilter-wrap test (libcap2-bin: setcap), the
# Debian package (make deb: debhelper, dpkg-dev; its test: lintian),
# promtool to check the Prometheus metrics (Debian's prometheus ships it)
TEST_PKGS="systemd dbus util-linux procps iperf3 nftables gnuplot-nox strace bsdutils groff-base libcap2-bin
	debhelper dpkg-dev lintian prometheus"

tests=
case ${1:-} in
--tests) tests=1 ;;
"") ;;
*) echo "usage: $prog [--tests]" >&2; exit 2 ;;
esac
PKGS=$BUILD_PKGS
what="Build dependencies"
if [ -n "$tests" ]; then
	PKGS="$PKGS $TEST_PKGS"
	what="Build and test dependencies"
fi

installed() {
	[ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
# bpftool works: on Ubuntu /usr/sbin/bpftool is a wrapper that fails when
# the kernel's linux-tools package is missing
bpftool_works() { bpftool version >/dev/null 2>&1; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	missing=
	for c in clang llc bpftool make gcc pkg-config ip python3; do
		command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
	done
	if [ -n "$missing" ]; then
		echo "$prog: no apt-get here; install these with your package manager:$missing" >&2
		echo "  (and the libbpf, libelf and zlib development headers)" >&2
		exit 1
	fi
	echo "$what: commands present (no apt-get to check the headers)."
	exit 0
fi

missing=
for p in $PKGS; do
	case $p in
	bpftool) bpftool_works && continue ;;
	*) installed "$p" && continue ;;
	esac
	missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "$what: all present."
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: missing:$missing" >&2
	echo "  run as root: apt-get install$missing" >&2
	for p in $missing; do
		case " $BUILD_PKGS " in *" $p "*) exit 1 ;; esac
	done
	echo "  (only test dependencies are missing: the tests that need them will SKIP)" >&2
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
updated=
# has_candidate PKG: apt knows a version of PKG it could install.  grep reads
# all of apt-cache's output: with -q it would quit at the match, apt-cache
# would die writing the rest (SIGPIPE), and pipefail would make that "no"
has_candidate() {
	apt-cache policy "$1" 2>/dev/null | grep 'Candidate: [^(]' >/dev/null
}
# apt_install PKG...: install, updating the package lists once if needed
apt_install() {
	apt-get install -y -q --no-install-recommends "$@" && return 0
	[ -z "$updated" ] || return 1
	apt-get update -q && updated=1 && apt-get install -y -q --no-install-recommends "$@"
}

# bpftool is its own package on Debian 12 and newer Ubuntu; older Ubuntu has
# it in linux-tools-common with the kernel's linux-tools-$(uname -r)
bpftool_pkgs=''
no_bpftool=''
case " $missing " in *" bpftool "*)
	missing=${missing/ bpftool/}
	if ! has_candidate bpftool && [ -z "$updated" ]; then
		apt-get update -q && updated=1
	fi
	if has_candidate bpftool; then
		bpftool_pkgs=bpftool
	elif has_candidate "linux-tools-$(uname -r)"; then
		bpftool_pkgs="linux-tools-common linux-tools-$(uname -r)"
	else
		no_bpftool=1
	fi
	;;
esac

if [ -n "$missing$bpftool_pkgs" ]; then
	echo "Installing missing dependencies:$missing $bpftool_pkgs"
	# shellcheck disable=SC2086 # word splitting wanted: a list of packages
	apt_install $missing $bpftool_pkgs || {
		echo "$prog: apt-get could not install:$missing $bpftool_pkgs" >&2
		exit 1
	}
fi
if [ -n "$no_bpftool" ]; then
	echo "$prog: no package provides bpftool for kernel $(uname -r) here;" \
		"install bpftool by hand (it loads the filters)" >&2
	exit 1
fi
if [ -n "$bpftool_pkgs" ] && ! bpftool_works; then
	echo "$prog: bpftool is installed but does not run: $(bpftool version 2>&1 | head -n1)" >&2
	exit 1
fi
echo "$what: all present."
