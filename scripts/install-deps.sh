#!/bin/sh
# Install the build and test dependencies that are missing, with apt-get
# (Debian, Ubuntu).  Installs nothing that is already there; says what it
# installs and why it cannot.  Called by `make deps` and `make demo`.
set -eu

prog=install-deps.sh
PKGS="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev make gcc pkg-config iproute2 python3"

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
	echo "Build dependencies: commands present (no apt-get to check the headers)."
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
	echo "Build dependencies: all present."
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: missing:$missing" >&2
	echo "  run as root: apt-get install$missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=
# has_candidate PKG: apt knows a version of PKG it could install
has_candidate() {
	apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
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
	missing=$(echo "$missing" | sed 's/ bpftool//')
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
	echo "Installing missing build dependencies:$missing $bpftool_pkgs"
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
echo "Build dependencies: all present."
