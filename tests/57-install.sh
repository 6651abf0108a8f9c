#!/usr/bin/env bash
# make install and make uninstall, into a scratch DESTDIR (never the host's
# /usr/local): install puts each file where PREFIX and the other directories
# say; uninstall removes every file and directory install made, also after
# an install run twice, one that failed, and one killed (SIGKILL, the whole
# process group) at files it writes, before or after writing one, and
# after an uninstall killed at files it removes; uninstall with nothing
# installed says so and exits 0.
. "$(dirname "$0")/lib.sh"

need_cmd install setsid ps
make_tmpdir TMP
mkdir "$TMP/t"
for f in tools/cgfilter-probe tools/cgfilter-expr cgfilter/cgfilter; do
	[ -x "$BUILD/$f" ] || fail "$BUILD/$f is not built: run make first"
done

DEST=$TMP/root
P=/opt/cgft
DIRS=("$P" "$P/bin" "$P/libexec/cgfilter" "$P/share/cgfilter" "$P/share/man"
	"$P/lib/systemd/system" "$P/share/bash-completion/completions")

# run_install [--uninstall]: scripts/install.sh into $DEST as make calls it,
# in a process group of its own (the fakes below kill it whole); its output
# in $TMP/log, its status in $RC
run_install() {
	RC=0
	# (its temporary directory in $TMP/t: one killed leaves it behind; the
	# subshell's bash says "Killed" into the log)
	(TMPDIR=$TMP/t setsid -w "$TOP/scripts/install.sh" "$@" "$DEST" "$P" "${DIRS[1]}" "${DIRS[2]}" \
		"${DIRS[3]}" "${DIRS[4]}" "${DIRS[5]}" "$BUILD" "${DIRS[6]}"
	 rc=$?; exit $rc) >"$TMP/log" 2>&1 || RC=$?
}
# left: what is under $DEST (nothing, after an uninstall)
left() { (cd "$DEST" 2>/dev/null && find . -mindepth 1 | sort | head -5); }
expect_empty() {
	local l
	l=$(left)
	[ -z "$l" ] || fail "$1: left under DESTDIR: $(echo $l)"
}

# ---- a whole install, and its uninstall -----------------------------------------
run_install
[ "$RC" = 0 ] || fail "install.sh into $DEST failed (exit $RC): $(cat "$TMP/log")"
for f in bin/cgfilter bin/cgfilter-probe libexec/cgfilter/cgfilter-expr \
	share/cgfilter/port-firewall/Makefile share/man/man8/cgfilter.8 \
	share/bash-completion/completions/cgfilter lib/systemd/system/cgfilter@.service \
	share/cgfilter/install-manifest; do
	[ -f "$DEST$P/$f" ] || fail "install put no $P/$f"
done
[ -z "$(find "$DEST" -mindepth 1 -maxdepth 1 ! -name opt)" ] || fail "install wrote outside PREFIX: $(ls "$DEST")"
has -F "EXPR_TOOL ?= $P/libexec/cgfilter/cgfilter-expr" "$DEST$P/share/cgfilter/port-firewall/Makefile" ||
	fail "the installed port-firewall/Makefile does not run the installed checker"
has -F "$P/bin/cgfilter" "$DEST$P/lib/systemd/system/cgfilter@.service" ||
	fail "the installed cgfilter@.service does not run $P/bin/cgfilter"
ok "install puts the binaries, checker, sources, man pages, completion and units under PREFIX"
find "$DEST" -type f | sort >"$TMP/files1"
NFILES=$(wc -l <"$TMP/files1")

run_install
[ "$RC" = 0 ] || fail "a second install failed (exit $RC): $(cat "$TMP/log")"
find "$DEST" -type f | sort >"$TMP/files2"
cmp -s "$TMP/files1" "$TMP/files2" || fail "a second install left other files: $(diff "$TMP/files1" "$TMP/files2" | head -5)"
ok "install over an install gives the same $NFILES files"

# (what the installed Makefiles build in place, with their default O=build)
mkdir -p "$DEST$P/share/cgfilter/port-firewall/build/x" "$DEST$P/share/cgfilter/bpf-program-only/build"
touch "$DEST$P/share/cgfilter/port-firewall/build/x/port_firewall.bpf.o" \
	"$DEST$P/share/cgfilter/bpf-program-only/build/cgroup_sock_drop.bpf.o"
run_install --uninstall
[ "$RC" = 0 ] || fail "uninstall failed (exit $RC): $(cat "$TMP/log")"
has -F "UNINST   $NFILES files listed in $DEST$P/share/cgfilter/install-manifest" "$TMP/log" ||
	fail "uninstall does not say how many files it removed: $(cat "$TMP/log")"
expect_empty "uninstall"
ok "uninstall removes every file and directory install made, and what the installed Makefiles built in place"

mkdir -p "$DEST"
run_install --uninstall
[ "$RC" = 0 ] && has -F "nothing to uninstall: no $DEST$P/share/cgfilter/install-manifest" "$TMP/log" ||
	fail "uninstall with nothing installed: exit $RC: $(cat "$TMP/log")"
ok "uninstall with nothing installed says so, exit 0"

# ---- install and uninstall stopped halfway ---------------------------------------------
# FAKE/install and FAKE/rm count their calls in $TMP/count.install and
# .rm; the one named FAKE_CMD, at its call FAKE_AT, fails (FAKE_DO=fail), or
# kills the whole process group before (kill-before) or after (kill-after)
# doing its work
FAKE=$TMP/fake
mkdir "$FAKE"
for c in install rm; do
	real=$(command -v "$c")
	cat >"$FAKE/$c" <<EOF
#!/usr/bin/env bash
n=\$((\$(cat "\$FAKE_COUNT.$c") + 1))
echo "\$n" >"\$FAKE_COUNT.$c"
if [ "\$FAKE_CMD" = $c ] && [ "\$n" = "\$FAKE_AT" ]; then
	case \$FAKE_DO in
	fail) echo "fake $c: failing" >&2; exit 1 ;;
	kill-before) kill -KILL -- -\$(ps -o pgid= -p \$\$ | tr -d ' ') ;;
	kill-after) $real "\$@"; kill -KILL -- -\$(ps -o pgid= -p \$\$ | tr -d ' ') ;;
	esac
fi
exec $real "\$@"
EOF
	chmod +x "$FAKE/$c"
done
# faked: CMD... with the fakes first in PATH
faked() {
	echo 0 >"$TMP/count.install"
	echo 0 >"$TMP/count.rm"
	PATH=$FAKE:$PATH FAKE_COUNT=$TMP/count "$@"
}

FAKE_CMD=install FAKE_AT=0 faked run_install
[ "$RC" = 0 ] || fail "install with the counting fakes failed: $(cat "$TMP/log")"
NPUT=$(cat "$TMP/count.install")
[ "$NPUT" = $((NFILES - 1)) ] || fail "install ran install(1) $NPUT times for $NFILES files (the manifest one of them)"
run_install --uninstall
expect_empty "uninstall after the counting run"

# points: the first calls, every 6th, the last two (every call the same way:
# record the path, then write it; a run takes a second or two)
points() { seq 1 "$1" | awk -v n="$1" '$1 <= 2 || $1 % 6 == 0 || $1 >= n - 1'; }
for mode in kill-before kill-after; do
	for at in $(points "$NPUT"); do
		FAKE_CMD=install FAKE_AT=$at FAKE_DO=$mode faked run_install
		[ "$RC" = 137 ] || fail "install with $mode at install call $at: exit $RC, not killed: $(cat "$TMP/log")"
		if ((at % 3)); then
			run_install --uninstall
			[ "$RC" = 0 ] || fail "uninstall after an install killed ($mode) at call $at: exit $RC: $(cat "$TMP/log")"
			expect_empty "uninstall after an install killed ($mode) at install call $at"
		else
			run_install
			[ "$RC" = 0 ] || fail "install after one killed ($mode) at call $at: exit $RC: $(cat "$TMP/log")"
			find "$DEST" -type f | sort >"$TMP/files3"
			cmp -s "$TMP/files1" "$TMP/files3" ||
				fail "install after one killed ($mode) at call $at: other files: $(diff "$TMP/files1" "$TMP/files3" | head -5)"
			run_install --uninstall
			expect_empty "install and uninstall after an install killed ($mode) at install call $at"
		fi
	done
	ok "install killed ($mode writing a file) at $(points "$NPUT" | wc -l) of its $NPUT files: uninstall, or install and uninstall, leave nothing"
done

for at in 1 $((NPUT / 2)) "$NPUT"; do
	FAKE_CMD=install FAKE_AT=$at FAKE_DO=fail faked run_install
	[ "$RC" = 1 ] && has "^install.sh: cannot install .* as $DEST" "$TMP/log" ||
		fail "install failing at install call $at: exit $RC: $(cat "$TMP/log")"
	run_install --uninstall
	expect_empty "uninstall after an install that failed at install call $at"
done
ok "install that fails halfway says which file (exit 1), and uninstall removes what it put"

# uninstall killed at each file it removes: the next uninstall ends the work
run_install
[ "$RC" = 0 ] || fail "install failed: $(cat "$TMP/log")"
FAKE_CMD=rm FAKE_AT=0 faked run_install --uninstall
NRM=$(cat "$TMP/count.rm")
# (one rm a file, and one for the build/ the installed Makefiles make)
[ "$NRM" = $((NFILES + 1)) ] || fail "uninstall ran rm $NRM times for $NFILES files"
for mode in kill-before kill-after; do
	for at in $(points "$NRM"); do
		run_install
		[ "$RC" = 0 ] || fail "install failed: $(cat "$TMP/log")"
		FAKE_CMD=rm FAKE_AT=$at FAKE_DO=$mode faked run_install --uninstall
		[ "$RC" = 137 ] || fail "uninstall with a kill ($mode) at rm call $at: exit $RC, not killed: $(cat "$TMP/log")"
		run_install --uninstall
		[ "$RC" = 0 ] || fail "uninstall after one killed ($mode) at rm call $at: exit $RC: $(cat "$TMP/log")"
		if [ "$mode:$at" = "kill-after:$NRM" ]; then
			# killed right after the manifest went: what it listed is
			# gone but the (empty) directories that held it
			[ -z "$(find "$DEST" -mindepth 1 ! -type d)" ] &&
				[ "$(cd "$DEST" && find . -mindepth 1 | sort | tr '\n' ' ')" = "./opt ./opt/cgft ./opt/cgft/share ./opt/cgft/share/cgfilter " ] ||
				fail "uninstall killed right after removing its manifest left more than the manifest's directories: $(left)"
			rm -r "${DEST:?}/opt"
		fi
		expect_empty "uninstall after one killed ($mode) at rm call $at"
	done
	ok "uninstall killed ($mode removing a file) at $(points "$NRM" | wc -l) of its $NRM removals: the next uninstall leaves nothing"
done

# ---- make install / make uninstall, as the README says ------------------------------------
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" PREFIX=/usr BUILD="$BUILD" >"$TMP/log" 2>&1 ||
	fail "make install DESTDIR=$DEST PREFIX=/usr failed: $(tail -5 "$TMP/log")"
[ -x "$DEST/usr/bin/cgfilter" ] && [ -f "$DEST/usr/share/man/man8/cgfilter.8" ] ||
	fail "make install PREFIX=/usr put no /usr/bin/cgfilter or man page"
make -C "$TOP" --no-print-directory uninstall DESTDIR="$DEST" PREFIX=/usr BUILD="$BUILD" >"$TMP/log" 2>&1 ||
	fail "make uninstall failed: $(tail -5 "$TMP/log")"
expect_empty "make uninstall"
ok "make install DESTDIR=... PREFIX=/usr, then make uninstall, leaves nothing"
