#!/usr/bin/env bash
# Build the Debian package (make deb): copy the tree to OUT/cgfilter-VERSION
# (dpkg-buildpackage writes beside its source), write debian/changelog there
# for VERSION, build with debhelper (debian/), and leave
# OUT/cgfilter_VERSION_ARCH.deb.  Nothing is written outside OUT.
#
#   deb.sh VERSION OUT      (VERSION: include/cgf_version.h's CGF_VERSION)
set -euo pipefail
CGF_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$CGF_TOP/scripts/errtrap.sh"

prog=deb
die() { echo "$prog: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: deb.sh VERSION OUT" >&2; exit 2; }
VERSION=$1 OUT=$2
case $VERSION in
[0-9]*) ;;
*) die "cannot build a package of version '$VERSION': no CGF_VERSION in include/cgf_version.h" ;;
esac
for c in dpkg-buildpackage:dpkg-dev dh:debhelper; do
	command -v "${c%%:*}" >/dev/null 2>&1 ||
		die "${c%%:*} not found: install it (apt-get install ${c#*:}, or make deps-tests)"
done

ARCH=$(dpkg --print-architecture)
SRC=$OUT/cgfilter-$VERSION
rm -rf "$OUT"
mkdir -p "$SRC"
# the tree without what builds make and git's files; in a git checkout,
# only what git tracks (a file left beside it, a log or a key, is not
# shipped in the source package)
if git -C "$CGF_TOP" rev-parse --show-toplevel >/dev/null 2>&1; then
	git -C "$CGF_TOP" ls-files -z --cached -- . ':!:debian/changelog' |
		tar -C "$CGF_TOP" --null --ignore-failed-read -T - -cf - | tar -C "$SRC" -xf -
else
	tar -C "$CGF_TOP" --exclude=./.git --exclude=build --exclude=./debian/changelog -cf - . |
		tar -C "$SRC" -xf -
fi

# the changelog of this version, by the maintainer in debian/control, dated
# by the last commit (a tree without git: now)
maint=$(sed -n 's/^Maintainer: //p' "$CGF_TOP/debian/control")
[ -n "$maint" ] || die "cannot write debian/changelog: no Maintainer: in debian/control"
when=$(git -C "$CGF_TOP" log -1 --format=%aD 2>/dev/null || true)
[ -n "$when" ] || when=$(date -R)
cat >"$SRC/debian/changelog" <<EOC
cgfilter ($VERSION) unstable; urgency=medium

  * cgfilter $VERSION (include/cgf_version.h).

 -- $maint  $when
EOC

echo "  DPKG     ${SRC#"$CGF_TOP"/} (log: ${OUT#"$CGF_TOP"/}/build.log)"
if ! (cd "$SRC" && dpkg-buildpackage -us -uc) >"$OUT/build.log" 2>&1; then
	tail -n 40 "$OUT/build.log" | sed 's/^/    /' >&2
	die "dpkg-buildpackage failed in $SRC (the whole log: $OUT/build.log)"
fi
deb=$OUT/cgfilter_${VERSION}_$ARCH.deb
[ -f "$deb" ] || die "dpkg-buildpackage made no $deb"
echo "  DEB      ${deb#"$CGF_TOP"/}"
