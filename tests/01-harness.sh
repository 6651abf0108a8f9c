#!/usr/bin/env bash
# The harness itself: nothing dies silently, and a slow machine is not a
# failure.  A failing command in a test, the demo, the bench or an install
# script prints its file, line and command; tests/run.sh shows that line
# beside FAIL; every bash script of the project loads that trap; and the
# private systemd boots when its launcher is slow to start (the race that
# made `make demo` fail on every fresh machine).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

make_tmpdir W

# ---- a failing command says where ----------------------------------------------
cat >"$W/script.sh" <<EOF
. "$TOP/tests/lib.sh"
T_NO_CHECKS_OK=1
helper() {
	local x
	x=\$(false | cat)
	echo "not reached \$x"
}
helper
EOF
rc=0
T_REASON='' bash "$W/script.sh" >"$W/out" 2>"$W/err" || rc=$?
expect_eq "a failing command ends the script with its status" "$rc" 1
grep -qxF "error: $W/script.sh:5 in helper (from $W/script.sh:8): exit 1: x=\$(false | cat)" "$W/err" ||
	fail "no error line naming file, line and command: $(cat "$W/err")"
ok "... and prints file, line, function, caller and command"
grep -q "not reached" "$W/out" && fail "the script went on after the failure"
ok "... and stops there"

cat >"$W/handled.sh" <<EOF
. "$TOP/tests/lib.sh"
T_NO_CHECKS_OK=1
set +e
false
rc=\$?
set -e
if ! false; then :; fi
false || true
echo "done \$rc"
EOF
expect_eq "a failure the script handles (set +e, if, ||) is not reported" \
	"$(T_REASON='' bash "$W/handled.sh" 2>&1)" "done 1"

# ---- tests/run.sh shows it beside FAIL --------------------------------------------
mkdir "$W/tests"
cat >"$W/tests/98-passes.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
EOF
cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
grep -q no-such-line /dev/null
ok "not reached"
EOF
rc=0
CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" >"$W/run" 2>&1 || rc=$?
expect_eq "the runner fails when a test fails" "$rc" 1
grep -qxF "FAIL: 99-dies (exit 1): error: $W/tests/99-dies.sh:3: exit 1: grep -q no-such-line /dev/null" "$W/run" ||
	fail "FAIL line without the failing command: $(cat "$W/run")"
ok "the runner prints the failing command beside FAIL"
grep -qx "PASS: 98-passes ([0-9]*s)" "$W/run" || fail "the passing test: $(cat "$W/run")"
ok "... and the passing test as PASS"
grep -qxF "  99-dies: error: $W/tests/99-dies.sh:3: exit 1: grep -q no-such-line /dev/null" "$W/run" ||
	fail "the summary lacks the reason: $(cat "$W/run")"
ok "... and repeats it in the summary"

cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
check() { fail "the answer is \$1, want 42"; }
check 41
EOF
CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" 99 >"$W/run" 2>&1 || true
grep -qxF "FAIL: 99-dies (exit 1): $W/tests/99-dies.sh:2 in check (from $W/tests/99-dies.sh:3): the answer is 41, want 42" "$W/run" ||
	fail "a fail message without its place: $(cat "$W/run")"
ok "a test's own FAIL message is shown with its place"

cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
echo "\$no_such_variable"
EOF
CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" 99 >"$W/run" 2>&1 || true
grep -qxF "FAIL: 99-dies (exit 1): $W/tests/99-dies.sh: line 3: no_such_variable: unbound variable" "$W/run" ||
	fail "a shell error without a FAIL line: $(cat "$W/run")"
ok "a shell error (unbound variable) is shown beside FAIL"

cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
sleep 30 &
EOF
CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" 99 >"$W/run" 2>&1 || true
grep -qxF "FAIL: 99-dies (exit 1): 99-dies left the host changed (pins, cgroups, attachments, namespaces, mounts, /tmp or processes)" "$W/run" &&
	grep -qE "^ +[0-9]+ sleep$" "$W/run" || fail "a process left running was not caught: $(cat "$W/run")"
ok "a process a test leaves running fails it"
pgrep -f "^sleep 30$" >/dev/null && fail "the runner did not stop the process the test left running"
ok "... and the runner stops it"

LEFT=$(mktemp -u /tmp/cgf-left.XXXXXX)
at_exit rm -f "$LEFT"
cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
: >"$LEFT"
EOF
CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" 99 >"$W/run" 2>&1 || true
grep -qxF "FAIL: 99-dies (exit 1): 99-dies left the host changed (pins, cgroups, attachments, namespaces, mounts, /tmp or processes)" "$W/run" &&
	grep -qE "^ +$LEFT\$" "$W/run" || fail "a file left in /tmp was not caught: $(cat "$W/run")"
ok "a file a test leaves in /tmp fails it, and is named"
rm -f "$LEFT"

cat >"$W/tests/99-dies.sh" <<EOF
. "$TOP/tests/lib.sh"
ok "one check"
sleep 60
EOF
CGF_TEST_TIMEOUT=1 CGF_TEST_DIR=$W/tests "$TOP/tests/run.sh" 99 >"$W/run" 2>&1 || true
grep -qxF "FAIL: 99-dies (exit 124): $W/tests/99-dies.sh: stopped after 1s (CGF_TEST_TIMEOUT)" "$W/run" ||
	fail "a hanging test: $(cat "$W/run")"
ok "a test that hangs is stopped and says so"

# ---- every bash script of the project loads the trap --------------------------------
missing=()
while IFS= read -r f; do
	head -n1 "$f" | has bash || [[ $f == *.sh ]] || continue
	grep -qE '(scripts/errtrap\.sh|tests/lib\.sh|/lib\.sh"|errtrap\.sh)' "$f" || missing+=("${f#"$TOP"/}")
done < <(find "$TOP/scripts" "$TOP/tests" "$TOP/bench" "$TOP/.ci" -maxdepth 1 -type f \
	\( -name '*.sh' -o -name run \) ! -name errtrap.sh ! -name lib.sh ! -name sysd.sh)
expect_eq "every test, demo, bench, install and CI script loads scripts/errtrap.sh" "${missing[*]}" ""
for f in "$TOP"/scripts/*.sh; do
	head -n1 "$f" | has '^#!/usr/bin/env bash' || [ "$f" = "$TOP/scripts/errtrap.sh" ] ||
		fail "${f#"$TOP"/} is not a bash script: the trap needs bash"
done
ok "the install scripts are bash scripts"

# ---- no pipeline ends in grep -q ---------------------------------------------------
# Under pipefail, grep -q quits at the first match and the writer dies of
# SIGPIPE writing the rest: the pipeline fails although it matched (this
# made install-deps.sh find no bpftool package on a fresh machine).  A
# pipeline tests with has (tests/lib.sh) or grep >/dev/null.
# (grep -m N quits early too; a pipeline may go on on the next line)
pipe_lint() {
	perl -ne 'BEGIN { $/ = undef } s/(?<!\|)\|[ \t]*\\?\n[ \t]*/| /g;
	for (split /\n/) {
		print "$ARGV: $_\n" if /(?<!\|)\|(?!\|)\s*grep(\s+-\S+)*?\s+(-[a-zA-Z]*[qm]\S*|--quiet|--silent|--max-count\S*)/ }' "$@"
}
P='|' # (samples, written so that this file does not hold them)
printf '%s\n' "a $P grep -q x" "a $P grep -E -q x" "a $P" "	grep -m1 x" "a $P grep --quiet x" "a $P$P grep -q x" \
	"a $P grep x >/dev/null" >"$W/lint.sh"
expect_eq "the check finds grep -q, -E -q, -m1 on the next line, --quiet (not || grep -q)" \
	"$(pipe_lint "$W/lint.sh" | wc -l)" 4
bad=$(pipe_lint "$TOP"/scripts/*.sh "$TOP"/tests/*.sh "$TOP"/bench/*.sh "$TOP"/.ci/run "$TOP"/Makefile "$TOP"/mk/*.mk \
	"$TOP"/*/Makefile 2>/dev/null || true)
expect_eq "no pipeline ends in grep -q (it fails under pipefail when the writer is slower)" "$bad" ""
(
	set -o pipefail
	seq 100000 | has -x 1
) || fail "has does not read all its input"
ok "has matches under pipefail when the writer has more to write"
# a test that defines a function of lib.sh's name replaces it for every
# helper of lib.sh that calls it (53-package's own has() did)
libfns=$(sed -n 's/^\([a-z_][a-z_0-9]*\)() {.*/\1/p' "$TOP/tests/lib.sh" "$TOP/tests/sysd.sh" | sort -u)
clash=$(for f in "$TOP"/tests/[0-9]*.sh "$TOP"/tests/crash.sh; do
	sed -n 's/^[[:space:]]*\([a-z_][a-z_0-9]*\)() {.*/\1/p' "$f" | sort -u | comm -12 - <(echo "$libfns") |
		sed "s|^|${f#"$TOP"/}: |"
done)
expect_eq "no test defines a function of tests/lib.sh's or tests/sysd.sh's name" "$clash" ""
# a test of cases runs every case it defines (43 once defined one that its
# list left out: it never ran)
unlisted=$(for f in "$TOP"/tests/[0-9]*.sh; do
	grep -q '^CASES=${CASES:-' "$f" || continue
	sed -n '/^CASES=${CASES:-/,/}/p' "$f" | sed 's/^CASES=${CASES:-//; s/}.*//' | tr ' \t' '\n\n' |
		grep -v '^$' | sort -u >"$W/listed"
	sed -n 's/^case_\([a-z_0-9]*\)() {.*/\1/p' "$f" | sort -u | comm -23 - "$W/listed" |
		sed "s|^|${f#"$TOP"/}: case_|"
done)
expect_eq "every case_ function of a test is in its CASES list" "$unlisted" ""

# ---- the private systemd boots on a slow machine -------------------------------------
need_sysd
SD_START_DELAY=2 sd_boot
ok "systemd boots when its launcher starts 2 s late"
state=$(sd_ctl is-system-running 2>/dev/null || true)
case $state in running | degraded) ok "and runs ($state)" ;; *) fail "systemd is $state" ;; esac
