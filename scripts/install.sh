#!/usr/bin/env bash
# Install (or remove) what `make` built: called by `make install` and
# `make uninstall` with the directories from the top Makefile.
#
#   install.sh [--uninstall] DESTDIR PREFIX BINDIR LIBEXECDIR PKGDATADIR MANDIR UNITDIR BUILD [BASHCOMPDIR]
#
#   BINDIR       cgfilter-probe, and load_and_control_filter, cgfilter and
#                cgfilter-wrap when they are built
#   LIBEXECDIR   cgfilter-expr (the FILTER checker port-firewall runs)
#   PKGDATADIR   port-firewall/ and bpf-program-only/ with the include/ and
#                mk/ they need, so that units can `make -C` them; the
#                installed port-firewall/Makefile runs LIBEXECDIR/cgfilter-expr
#   PKGDATADIR/examples  examples/*.filter
#   MANDIR/man8  man/*.8
#   UNITDIR      units/*.in with @BINDIR@ @LIBEXECDIR@ @PKGDATADIR@ filled in
#   BASHCOMPDIR  cgfilter/completion.bash as cgfilter (default
#                PREFIX/share/bash-completion/completions)
#
# Every file written is listed in PKGDATADIR/install-manifest (paths without
# DESTDIR), before it is written; --uninstall removes exactly those files,
# then the directories install created, if empty.  Installing again first
# removes the files of the previous install, also of one that failed or
# was killed halfway.
set -euo pipefail
CGF_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$CGF_TOP/scripts/errtrap.sh"

prog=install.sh
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
	echo "Usage: $prog [--uninstall] DESTDIR PREFIX BINDIR LIBEXECDIR PKGDATADIR MANDIR UNITDIR BUILD [BASHCOMPDIR]" >&2
	exit 2
}

uninstall=
if [ "${1:-}" = --uninstall ]; then
	uninstall=1
	shift
fi
[ $# -eq 8 ] || [ $# -eq 9 ] || usage
DESTDIR=$1 PREFIX=$2 BINDIR=$3 LIBEXECDIR=$4 PKGDATADIR=$5 MANDIR=$6 UNITDIR=$7 BUILD=$8
BASHCOMPDIR=${9:-$PREFIX/share/bash-completion/completions}
for d in "$PREFIX" "$BINDIR" "$LIBEXECDIR" "$PKGDATADIR" "$MANDIR" "$UNITDIR" "$BASHCOMPDIR"; do
	case $d in
	/*) ;;
	*) die "cannot install to '$d': directories must be absolute paths" ;;
	esac
	# (units and the installed Makefile name these paths unquoted: systemd
	# would split them at a blank and expand a %, make at a blank or a $)
	case $d in
	*[[:space:]%\$\\\"\']*)
		die "cannot install to '$d': a blank, %, \$, a quote or a backslash in an installed path would break the units and the installed Makefile" ;;
	esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST=$PKGDATADIR/install-manifest

# Remove what a manifest lists: "f PATH" files, then "d PATH" directories
# (deepest first) if they are empty.  Paths are without DESTDIR.
remove_manifest() {
	[ -f "$DESTDIR$MANIFEST" ] || return 0
	m=$(cat "$DESTDIR$MANIFEST")
	printf '%s\n' "$m" | sed -n 's/^f //p' | while IFS= read -r p; do
		[ "$p" = "$MANIFEST" ] || rm -f "$DESTDIR$p"
	done
	# what the installed Makefiles built in place (make -C
	# PKGDATADIR/port-firewall FILTER=... load writes its default O=build)
	rm -rf -- "$DESTDIR$PKGDATADIR/port-firewall/build" "$DESTDIR$PKGDATADIR/bpf-program-only/build"
	# the directories (all but the manifest's own, not empty yet), then the
	# manifest, then its directories: killed before the manifest goes, the
	# next run removes the rest
	rmdirs "$m"
	rm -f "$DESTDIR$MANIFEST"
	rmdirs "$m"
}
# rmdirs MANIFEST-TEXT: its "d PATH" directories, deepest first, if empty
rmdirs() {
	printf '%s\n' "$1" | sed -n 's/^d //p' | sort -r | while IFS= read -r p; do
		rmdir "$DESTDIR$p" 2>/dev/null || true
	done
}

if [ -n "$uninstall" ]; then
	[ -f "$DESTDIR$MANIFEST" ] || { echo "$prog: nothing to uninstall: no $DESTDIR$MANIFEST"; exit 0; }
	n=$(grep -c '^f ' "$DESTDIR$MANIFEST" || true)
	remove_manifest
	echo "  UNINST   $n files listed in $DESTDIR$MANIFEST"
	exit 0
fi

# ---- install ---------------------------------------------------------------
for f in tools/cgfilter-probe tools/cgfilter-expr; do
	[ -x "$BUILD/$f" ] || die "$BUILD/$f is not built: run make first"
done

# a previous install's files go first, so nothing stale stays behind
remove_manifest

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The manifest is written as install goes, each path before the file or
# directory is made, so that uninstall removes what an install stopped at
# any point (failed, or killed) put.  Until it exists, the directories
# made for it wait in $pending.
pending=
record() {
	if [ -f "$DESTDIR$MANIFEST" ]; then
		echo "$1" >>"$DESTDIR$MANIFEST" || die "cannot write $DESTDIR$MANIFEST"
	else
		pending+="$1"$'\n'
	fi
}

# mkdir_p DIR: create DIR (under DESTDIR), recording each level created
mkdir_p() {
	[ -d "$DESTDIR$1" ] && return 0
	[ "$1" != / ] || { mkdir -p "$DESTDIR" || die "cannot create $DESTDIR"; return 0; }
	mkdir_p "$(dirname "$1")"
	record "d $1"
	mkdir "$DESTDIR$1" || die "cannot create $DESTDIR$1"
}

mkdir_p "$PKGDATADIR"
{ echo "f $MANIFEST"; printf '%s' "$pending"; } >"$DESTDIR$MANIFEST" &&
	chmod 0644 "$DESTDIR$MANIFEST" || die "cannot write $DESTDIR$MANIFEST"

# sed_repl TEXT: TEXT as a sed replacement with '|' as the delimiter
sed_repl() { printf '%s\n' "$1" | sed 's/[|&\\]/\\&/g'; }

# put MODE SRC DEST: install one file
put() {
	mkdir_p "$(dirname "$3")"
	record "f $3"
	install -m "$1" "$2" "$DESTDIR$3" || die "cannot install $2 as $DESTDIR$3"
	echo "  INSTALL  $DESTDIR$3"
}

put 0755 "$BUILD/tools/cgfilter-probe" "$BINDIR/cgfilter-probe"
# the other tools, if this build has them
for f in standalone/load_and_control_filter cgfilter/cgfilter wrap/cgfilter-wrap; do
	if [ -x "$BUILD/$f" ]; then
		put 0755 "$BUILD/$f" "$BINDIR/$(basename "$f")"
	else
		echo "$prog: $BUILD/$f is not built: not installed" >&2
	fi
done
put 0755 "$BUILD/tools/cgfilter-expr" "$LIBEXECDIR/cgfilter-expr"

# The sources the units build.  Nothing here refers back to the checkout.
for f in "$SRC"/include/*.h "$SRC"/mk/*.mk \
	"$SRC"/bpf-program-only/Makefile "$SRC"/bpf-program-only/*.bpf.c \
	"$SRC"/port-firewall/*.bpf.c; do
	[ -f "$f" ] || continue
	put 0644 "$f" "$PKGDATADIR/${f#"$SRC"/}"
done
# port-firewall/Makefile, running the installed checker
mf=$tmp/Makefile
sed "s|^EXPR_TOOL ?= .*|EXPR_TOOL ?= $(sed_repl "$LIBEXECDIR")/cgfilter-expr|" \
	"$SRC/port-firewall/Makefile" >"$mf"
grep -qxF "EXPR_TOOL ?= $LIBEXECDIR/cgfilter-expr" "$mf" ||
	die "cannot point port-firewall/Makefile at the installed cgfilter-expr: no 'EXPR_TOOL ?=' line"
put 0644 "$mf" "$PKGDATADIR/port-firewall/Makefile"

# example filters (cgfilter(8), cgfilter-wrap(8))
for f in "$SRC"/examples/*.filter; do
	[ -f "$f" ] || continue
	put 0644 "$f" "$PKGDATADIR/examples/$(basename "$f")"
done

for f in "$SRC"/man/*.8; do
	[ -f "$f" ] || continue
	put 0644 "$f" "$MANDIR/man8/$(basename "$f")"
done

put 0644 "$SRC/cgfilter/completion.bash" "$BASHCOMPDIR/cgfilter"

for f in "$SRC"/units/*.in; do
	[ -f "$f" ] || continue
	u=$tmp/$(basename "$f" .in)
	sed -e "s|@BINDIR@|$(sed_repl "$BINDIR")|g" \
		-e "s|@LIBEXECDIR@|$(sed_repl "$LIBEXECDIR")|g" \
		-e "s|@PKGDATADIR@|$(sed_repl "$PKGDATADIR")|g" "$f" >"$u"
	! grep -q '@[A-Z_]*@' "$u" || die "$f: unknown @NAME@ left after substitution"
	put 0644 "$u" "$UNITDIR/$(basename "$f" .in)"
done

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
	echo "Units installed in $UNITDIR: run 'systemctl daemon-reload' to use them."
fi
