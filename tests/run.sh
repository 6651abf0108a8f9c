#!/usr/bin/env bash
# Run every test: tests/[0-9][0-9]-*.sh in order.  Each says PASS, FAIL or
# SKIP; a SKIP is a failure when CGF_NO_SKIP=1 (CI runs as root and must run
# everything).  After each test the host must be as it was before: same pins,
# cgroups, cgroup attachments, network namespaces, mounts and no leftover
# processes of ours; a difference fails the run.
#   tests/run.sh [PATTERN...]   only tests whose name contains a PATTERN
# A failing test's reason (its FAIL line, or the file, line and command that
# failed) is shown beside FAIL.  CGF_TEST_TIMEOUT (seconds, default 1200)
# stops a test that hangs; CGF_TEST_DIR runs the tests of another directory.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$PWD
export BUILD=${BUILD:-$TOP/build}

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

# processes a test may start and must stop
WATCH='^(systemd|dbus-daemon|systemd-journal|cgfilter|cgfilter-probe|load_and_contro|iperf3|unshare|nsenter|sleep)$'

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
	echo "## processes"
	ps -e -o pid=,comm= | awk -v re="$WATCH" '$2 ~ re { print }' | sort
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
	echo "=== $name"
	start=$(date +%s)
	# why it failed: the test's fail and error lines (tests/lib.sh) land here
	export T_REASON=$REASONS/$name
	: >"$T_REASON"
	timeout -k 30 "$T_TIMEOUT" bash "$t"
	rc=$?
	secs=$(( $(date +%s) - start ))
	[ $rc -ne 124 ] || echo "$t: stopped after ${T_TIMEOUT}s (CGF_TEST_TIMEOUT)" >>"$T_REASON"
	after=$(snapshot)
	if [ "$before" != "$after" ]; then
		sleep 2   # let the kernel free what is going away
		after=$(snapshot)
	fi
	if [ "$before" != "$after" ]; then
		echo "$name left the host changed (pins, cgroups, attachments, namespaces, mounts or processes)" >>"$T_REASON"
		diff <(echo "$before") <(echo "$after") | sed 's/^/    /' | tee -a "$T_REASON"
		rc=1
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
