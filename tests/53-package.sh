#!/usr/bin/env bash
# The Debian package and the bash completion: `make deb` builds
# build/deb/cgfilter_VERSION_ARCH.deb; lintian finds no error in it; it holds
# the binaries, units, man pages, examples, /etc/cgfilter and the completion,
# at Debian's paths, with the version of include/cgf_version.h; extracted
# into a scratch root (never the host's /usr), its cgfilter@NAME.service and
# /usr/bin/cgfilter run in a private systemd (its /usr/bin is the package's
# over the host's) and filter a service on loopback, also after reload; its
# completion, sourced in bash, offers the commands, a command's options, a
# pin made here under /sys/fs/bpf, and a file after -f.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_bpffs
need_cmd dpkg dpkg-deb dpkg-buildpackage dh lintian bash
make_tmpdir TMP

# the reference: the version in the one place it is written
VERSION=$(sed -n 's/^#define CGF_VERSION "\(.*\)"$/\1/p' "$TOP/include/cgf_version.h")
[ -n "$VERSION" ] || fail "no CGF_VERSION in include/cgf_version.h"
ARCH=$(dpkg --print-architecture)
OUT=$TOP/build/deb
DEB=$OUT/cgfilter_${VERSION}_$ARCH.deb

# ---- make deb ---------------------------------------------------------------------
# (a file git does not track, beside the tree: not shipped)
STRAY=$TOP/cgft-stray-$$.txt
at_exit rm -f "$STRAY"
echo "not for the package" >"$STRAY"
make -C "$TOP" --no-print-directory deb >"$TMP/deb.log" 2>&1 || {
	sed 's/^/    /' "$TMP/deb.log" >&2
	fail "make deb failed"
}
expect_eq "make deb's last line names the package" "$(tail -n 1 "$TMP/deb.log")" \
	"  DEB      build/deb/cgfilter_${VERSION}_$ARCH.deb"
[ -f "$DEB" ] || fail "make deb made no $DEB"
tar -tJf "$OUT/cgfilter_$VERSION.tar.xz" >"$TMP/srcfiles" || fail "cannot list the source package"
has "cgft-stray-$$" "$TMP/srcfiles" && fail "the source package holds a file git does not track"
has 'engine/engine\.c$' "$TMP/srcfiles" || fail "the source package lacks engine/engine.c: $(head "$TMP/srcfiles")"
ok "the source package holds what git tracks, not a file left beside it"
expect_eq "the package's version is include/cgf_version.h's" "$(dpkg-deb -f "$DEB" Version)" "$VERSION"
expect_eq "the package's name" "$(dpkg-deb -f "$DEB" Package)" cgfilter

# ---- lintian ------------------------------------------------------------------------
# (its own TMPDIR: lintian leaves cache files, mldbm-elf-*, in it)
mkdir "$TMP/lintian-tmp"
TMPDIR=$TMP/lintian-tmp lintian "$OUT/cgfilter_${VERSION}_$ARCH.changes" >"$TMP/lintian" 2>&1 || true
if grep -q '^E: ' "$TMP/lintian"; then
	grep '^E: ' "$TMP/lintian" | sed 's/^/    /' >&2
	fail "lintian reports errors in the package (above)"
fi
# what else it says (warnings, notes), for the log
grep -v 'running with root privileges' "$TMP/lintian" | sed 's/^/    lintian: /' || true
ok "lintian reports no error (source and binary)"

# ---- what the package holds -----------------------------------------------------------
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' >"$TMP/contents"
in_package() { grep -qxF -- "$1" "$TMP/contents" || fail "the package has no $1"; }
for f in /usr/bin/cgfilter /usr/bin/cgfilter-wrap /usr/bin/cgfilter-probe \
	/usr/bin/load_and_control_filter /usr/libexec/cgfilter/cgfilter-expr \
	/usr/share/bash-completion/completions/cgfilter /etc/cgfilter \
	/usr/share/doc/cgfilter/copyright /usr/share/doc/cgfilter/examples \
	/usr/share/cgfilter/port-firewall/Makefile; do
	in_package "$f"
done
ok "binaries in /usr/bin, cgfilter-expr in /usr/libexec, the completion, /etc/cgfilter"
for f in "$TOP"/units/*.in; do in_package "/lib/systemd/system/$(basename "$f" .in)"; done
ok "every unit of units/ in /lib/systemd/system"
for f in "$TOP"/man/*.8; do in_package "/usr/share/man/man8/$(basename "$f").gz"; done
ok "every man page of man/"
for f in "$TOP"/examples/*.filter; do in_package "/usr/share/cgfilter/examples/$(basename "$f")"; done
ok "every example filter"
grep -q '^/usr/local' "$TMP/contents" && fail "the package has files under /usr/local"
grep -q 'install-manifest' "$TMP/contents" && fail "the package ships make install's manifest"
# configuration: every file under /etc is a conffile (the project ships none)
mkdir "$TMP/ctrl"
dpkg-deb -e "$DEB" "$TMP/ctrl"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' | sed -n 's|^\./etc/|/etc/|p' | while read -r f; do
	grep -qxF "$f" "$TMP/ctrl/conffiles" 2>/dev/null || fail "$f is not a conffile"
done
ok "nothing under /usr/local, no manifest, every file under /etc a conffile"

ROOT=$TMP/root
dpkg -x "$DEB" "$ROOT"
expect_eq "the packaged cgfilter --version" "$("$ROOT/usr/bin/cgfilter" --version)" "cgfilter $VERSION"
expect_eq "the packaged cgfilter-wrap --version" "$("$ROOT/usr/bin/cgfilter-wrap" --version)" \
	"cgfilter-wrap $VERSION"
grep -l '@[A-Z]*@\|/usr/local' "$ROOT"/lib/systemd/system/* && fail "units with placeholders or /usr/local"
grep -q '^ExecStart=/usr/bin/cgfilter load /sys/fs/bpf/cgfilter/%i -f /etc/cgfilter/%i.filter$' \
	"$ROOT/lib/systemd/system/cgfilter@.service" || fail "cgfilter@.service does not run /usr/bin/cgfilter"
ok "the units name /usr/bin, no /usr/local and no @NAME@"

# ---- the completion, as packaged ------------------------------------------------------------
CGF=$ROOT/usr/bin/cgfilter
PIN=/sys/fs/bpf/$T_ID-comp
"$CGF" load "$PIN" 'tcp' || fail "cannot load a filter at $PIN"
at_exit "$CGF" unload "$PIN"
touch "$TMP/rules.filter"
# complete WORD...: COMPREPLY for the command line "cgfilter WORD..." (the
# last word the one completed), sorted, one a line
complete_words() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cgfilter
		printf "%s\n" "${COMPREPLY[@]}" | sort' complete \
		"$ROOT/usr/share/bash-completion/completions/cgfilter" "$CGF" "$@"
}
# the references: the help texts' lists, which come from other code
want=$({ "$CGF" --help | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f && /^  [a-z]/ { print $1 }'
	echo help; } | sort)
[ "$(wc -l <<<"$want")" -ge 10 ] || fail "cgfilter --help lists no commands: $want"
expect_eq "cgfilter <TAB>: the commands of cgfilter --help" "$(complete_words '')" "$want"
expect_eq "cgfilter se<TAB>" "$(complete_words se)" "$(grep '^se' <<<"$want")"
want=$({ "$CGF" monitor --help | awk '/^Options:/ { f = 1; next } /^$/ { f = 0 }
	f { for (i = 1; i <= NF; i++) if ($i ~ /^--/) { print $i; break } }'; echo --help; } | sort)
[ "$(wc -l <<<"$want")" -ge 3 ] || fail "cgfilter monitor --help lists no options: $want"
expect_eq "cgfilter monitor --<TAB>: the options of cgfilter monitor --help" \
	"$(complete_words monitor --)" "$want"
got=$(complete_words show "${PIN%-comp}-co")
grep -qxF "$PIN" <<<"$got" || fail "cgfilter show ${PIN%-comp}-co<TAB> does not offer $PIN: $got"
ok "cgfilter show PIN<TAB> offers the pin made here"
expect_eq "cgfilter load PIN -f FILE<TAB>: the file" \
	"$(complete_words load "$PIN" -f "$TMP/rul")" "$TMP/rules.filter"
expect_eq "cgfilter mode PIN ob<TAB>: the mode" "$(complete_words mode "$PIN" ob)" observe
expect_eq "cgfilter attach PIN CGROUP <TAB>: the directions" \
	"$(complete_words attach "$PIN" user.slice '')" "$(printf 'both\negress\ningress')"

# ---- the package's units and binary in a private systemd ----------------------------------
# /etc/cgfilter inside is a scratch directory; the bind needs a mount point,
# made here only if the host has none (and removed)
ETC=$TMP/etc-cgfilter
mkdir "$ETC"
if [ ! -d /etc/cgfilter ]; then
	mkdir /etc/cgfilter
	at_exit rmdir /etc/cgfilter
fi
PROBE=$ROOT/usr/bin/cgfilter-probe
echo_server tcp PA 22000 22999
echo_server tcp PB 22000 22999
printf '# the package test: port %s only\ntcp && (dst_port == %s || src_port == %s)\n' \
	"$PA" "$PA" "$PA" >"$ETC/web.filter"

sd_boot --bind "$ROOT" /run/cgf-pkg --bind "$ETC" /etc/cgfilter \
	--unit-path /run/cgf-pkg/lib/systemd/system
# the package's /usr over the host's, inside only: /usr/bin/cgfilter is
# the package's
sd_exec mount -t overlay cgf-pkg -o lowerdir=/run/cgf-pkg/usr:/usr /usr ||
	fail "cannot lay the package's /usr over /usr inside"
expect_eq "inside, /usr/bin/cgfilter is the package's" \
	"$(sd_exec sha256sum /usr/bin/cgfilter | cut -d' ' -f1)" "$(sha256sum "$CGF" | cut -d' ' -f1)"
expect_eq "inside, /usr/bin/cgfilter --version" "$(sd_exec /usr/bin/cgfilter --version)" "cgfilter $VERSION"

sd_write /run/systemd/system/cgft-pkg.service <<EOF
[Unit]
Requires=cgfilter@web.service
After=cgfilter@web.service
[Service]
Type=oneshot
IPIngressFilterPath=/sys/fs/bpf/cgfilter/web
IPEgressFilterPath=/sys/fs/bpf/cgfilter/web
ExecStartPre=/usr/bin/cgfilter check /sys/fs/bpf/cgfilter/web
ExecStart=/bin/sh -c 'for p in $PA $PB; do if /usr/bin/cgfilter-probe send tcp 127.0.0.1 \$\$p -t 500 >/dev/null 2>&1; then echo "\$\$p pass"; else echo "\$\$p drop"; fi; done >/run/cgft-pkg.log'
EOF
sd_ctl daemon-reload || fail "daemon-reload failed"
expect_eq "cgfilter@web.service is the package's unit" \
	"$(sd_ctl show -P FragmentPath cgfilter@web.service)" /run/cgf-pkg/lib/systemd/system/cgfilter@.service

# verdicts PORT: what the filter 'tcp && (dst_port == PORT || src_port ==
# PORT)' makes of a connection to PA and to PB (the reference model)
verdicts() {
	local p
	for p in "$PA" "$PB"; do
		if [ "$p" = "$1" ]; then echo "$p pass"; else echo "$p drop"; fi
	done
}
start_ok cgft-pkg.service "a service using the package's cgfilter@web starts"
# the completion's UNIT (enable, disable, status): the units of this systemd
for c in enable disable status; do
	expect_eq "cgfilter $c cgft-p<TAB>: the unit of this systemd" \
		"$(sd_exec bash -c '. /run/cgf-pkg/usr/share/bash-completion/completions/cgfilter
			COMP_WORDS=(/usr/bin/cgfilter "$1" cgft-p); COMP_CWORD=2; _cgfilter
			printf "%s\n" "${COMPREPLY[@]}"' complete "$c")" cgft-pkg.service
done
sd_ctl show -P ExecStart cgfilter@web.service | has 'path=/usr/bin/cgfilter ;' ||
	fail "cgfilter@web does not run /usr/bin/cgfilter: $(sd_ctl show -P ExecStart cgfilter@web.service)"
ok "cgfilter@web runs /usr/bin/cgfilter"
expect_eq "its connections pass and drop as /etc/cgfilter/web.filter says" \
	"$(sd_exec cat /run/cgft-pkg.log)" "$(verdicts "$PA")"

since=$(sd_ctl show -P ActiveEnterTimestampMonotonic cgfilter@web.service)
printf 'tcp && (dst_port == %s || src_port == %s)\n' "$PB" "$PB" >"$ETC/web.filter"
sd_ctl reload cgfilter@web.service || unit_fail cgfilter@web.service "reload failed"
expect_eq "reload keeps cgfilter@web running" \
	"$(sd_ctl show -P ActiveEnterTimestampMonotonic cgfilter@web.service)" "$since"
expect_eq "after reload, the filter in force is the edited file" \
	"$(sd_exec /usr/bin/cgfilter show /sys/fs/bpf/cgfilter/web | sed -n 's/^  filter: //p')" \
	"tcp && (dst_port == $PB || src_port == $PB)"
start_ok cgft-pkg.service "the service runs again" restart
expect_eq "after reload, its connections pass and drop as the edited file says" \
	"$(sd_exec cat /run/cgft-pkg.log)" "$(verdicts "$PB")"

sd_ctl stop cgfilter@web.service || fail "cannot stop cgfilter@web"
sd_exec test -e /sys/fs/bpf/cgfilter/web && fail "cgfilter@web left its pin"
ok "stopping the package's cgfilter@web unloads it"
