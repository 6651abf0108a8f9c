#!/usr/bin/env bash
# Run every test: tests/[0-9][0-9]-*.sh in order.  Each says PASS, FAIL or
# SKIP; a SKIP is a failure when CGF_NO_SKIP=1 (CI runs as root and must run
# everything).  After each test the host must be as it was before: same pins,
# cgroups, cgroup attachments, network namespaces, mounts, files in /tmp and
# no leftover processes of ours; a difference fails the run.
#   tests/run.sh [PATTERN...]   only tests whose name contains a PATTERN
# A failing test's reason (its FAIL line, or the file, line and command that
# failed) is shown beside FAIL.  CGF_TEST_TIMEOUT (seconds, default 1200)
# stops a test that hangs; CGF_TEST_DIR runs the tests of another directory.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$PWD
export BUILD=${BUILD:-$TOP/build}

# One run at a time on a machine: the host check compares the whole host's
# pins, cgroups and mounts, and a second run's would show as a leak.
# A run inside a test of a run (tests/01-harness.sh runs this script) has
# it already: waiting for it would wait for itself.
if [ -z "${CGF_TESTS_LOCKED:-}" ]; then
	exec 9>/tmp/.cgfilter-tests.lock
	if ! flock -n 9; then
		echo "tests: waiting for another run of the tests to end (lock /tmp/.cgfilter-tests.lock)" >&2
		flock 9
	fi
	export CGF_TESTS_LOCKED=1
fi
# (each test runs without fd 9: a process it leaves behind, such as a
# daemon's cleaner, must not keep the lock)

mounted_bpffs=
if [ "$(id -u)" -eq 0 ] && [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
	mount -t bpf bpf /sys/fs/bpf && mounted_bpffs=1
fi
cleanup() {
	rm -rf "$REASONS"
	[ -z "$mounted_bpffs" ] || umount /sys/fs/bpf
}
trap cleanup EXIT

# a test that runs longer than this (seconds) is stopped and fails
T_TIMEOUT=${CGF_TEST_TIMEOUT:-1200}
REASONS=$(mktemp -d /tmp/cgf-run.XXXXXX)

# Processes a test leaves running: those of its process group (tests run
# under timeout(1), which makes one; tests/lib.sh writes its id to
# $T_REASON.pgid), and a private systemd's, which runs in a session of its own
WATCH='^(systemd|dbus-daemon|systemd-journal)$'

snapshot() {
	local cg2
	cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
	echo "## pins"; find /sys/fs/bpf 2>/dev/null | sort
	if [ -n "$cg2" ]; then
		echo "## cgroups"; find "$cg2" -type d 2>/dev/null | sort
		echo "## attachments"
		command -v bpftool >/dev/null && bpftool cgroup tree "$cg2" 2>/dev/null | awk '{ print $1, $2, $3, $4 }'
	fi
	echo "## netns"; ip netns list 2>/dev/null | sort
	echo "## mounts"; awk '{ print $2, $3 }' /proc/self/mounts | sort
}
# The files in /tmp now, but for a compiler's temporaries (ccXXXXXX.o and
# such: a build running beside the tests makes and removes them)
tmp_files() {
	find /tmp -mindepth 1 -maxdepth 1 ! -path "$REASONS" 2>/dev/null |
		grep -vE '^/tmp/cc[A-Za-z0-9]{6}\.[a-z0-9.]+$' | LC_ALL=C sort
}
# what is in /tmp now and was not before (one removed meanwhile, by
# something else on the machine, is no leak)
new_tmp() { LC_ALL=C comm -13 <(echo "$1") <(tmp_files); }
# processes of a private systemd running now, one "PID COMM" a line
procs() { ps -e -o pid=,comm= | awk -v re="$WATCH" '$2 ~ re { print $1, $2 }' | sort; }
# what the test left running: processes of its group, and private systemd
# processes that are there now and were not before (one that ended
# meanwhile, of something else on the machine, is no leak)
new_procs() {
	local pg
	pg=$(tr -d ' ' <"$T_REASON.pgid" 2>/dev/null)
	{
		[ -z "$pg" ] || ps -e -o pid=,pgid=,comm= | awk -v pg="$pg" '$2 == pg { print $1, $3 }'
		comm -13 <(echo "$1") <(procs)
	} | sort -u
}

pass=0 failn=0 skipn=0 failed=()
for t in "${CGF_TEST_DIR:-tests}"/[0-9][0-9]-*.sh; do
	name=$(basename "$t" .sh)
	if [ $# -gt 0 ]; then
		keep=
		for pat in "$@"; do case $name in *"$pat"*) keep=1 ;; esac; done
		[ -n "$keep" ] || continue
	fi
	before=$(snapshot)
	before_procs=$(procs)
	before_tmp=$(tmp_files)
	echo "=== $name"
	start=$(date +%s)
	# why it failed: the test's fail and error lines (tests/lib.sh) land here
	export T_REASON=$REASONS/$name
	: >"$T_REASON"
	# stderr also to a file: a shell error such as "unbound variable" ends
	# a test without a FAIL line, and its last line is then the reason
	# (not a pipe the runner waits on: a process the test left behind may
	# hold it open)
	timeout -k 30 "$T_TIMEOUT" bash "$t" 9>&- 2> >(tee "$T_REASON.stderr" >&2)
	rc=$?
	secs=$(( $(date +%s) - start ))
	[ $rc -ne 124 ] || echo "$t: stopped after ${T_TIMEOUT}s (CGF_TEST_TIMEOUT)" >>"$T_REASON"
	after=$(snapshot)
	left=$(new_procs "$before_procs")
	left_tmp=$(new_tmp "$before_tmp")
	if [ "$before" != "$after" ] || [ -n "$left" ] || [ -n "$left_tmp" ]; then
		sleep 2   # let the kernel free what is going away
		after=$(snapshot)
		left=$(new_procs "$before_procs")
		left_tmp=$(new_tmp "$before_tmp")
	fi
	if [ "$before" != "$after" ] || [ -n "$left" ] || [ -n "$left_tmp" ]; then
		echo "$name left the host changed (pins, cgroups, attachments, namespaces, mounts, /tmp or processes)" >>"$T_REASON"
		{
			diff <(echo "$before") <(echo "$after")
			[ -z "$left_tmp" ] || printf '## left in /tmp\n%s\n' "$left_tmp"
			[ -z "$left" ] || printf '## processes left running\n%s\n' "$left"
		} | sed 's/^/    /' | tee -a "$T_REASON"
		rc=1
	fi
	# what the test left of its process group goes now, not to disturb the next
	# (and is waited for: a signal sent is not yet a process gone)
	pg=$(tr -d ' ' <"$T_REASON.pgid" 2>/dev/null)
	if [ -n "$pg" ] && kill -9 -- "-$pg" 2>/dev/null; then
		for _ in $(seq 50); do
			kill -0 -- "-$pg" 2>/dev/null || break
			sleep 0.1
		done
	fi
	case $rc in
	0) echo "PASS: $name (${secs}s)"; pass=$((pass + 1)) ;;
	77)
		if [ "${CGF_NO_SKIP:-0}" = 1 ]; then
			echo "FAIL: $name skipped ($(head -n1 "$T_REASON")), and CGF_NO_SKIP=1 forbids skipping"
			failn=$((failn + 1)); failed+=("$name: skipped")
		else
			echo "SKIP: $name"; skipn=$((skipn + 1))
		fi ;;
	*)
		# the first recorded reason beside FAIL, the others below it
		why=$(head -n1 "$T_REASON")
		[ -n "$why" ] || { sleep 0.2; why=$(grep -v '^\s*$' "$T_REASON.stderr" | tail -n1); }
		echo "FAIL: $name (exit $rc): ${why:-no reason recorded: the test ended without a FAIL or error line}"
		tail -n +2 "$T_REASON" | head -n 20 | sed 's/^/    /'
		failn=$((failn + 1)); failed+=("$name: ${why:-exit $rc}") ;;
	esac
done
echo
echo "$pass passed, $failn failed, $skipn skipped"
if [ $failn -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
[ $((pass + skipn)) -gt 0 ] || { echo "no test matched"; exit 1; }
exit 0
