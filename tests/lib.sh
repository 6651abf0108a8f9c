# Shared by the shell tests: results, cleanup that runs even on failure, and
# facts about the machine (where cgroup2 and bpffs are).  Source it first:
#   . "$(dirname "$0")/lib.sh"
# A test exits 0 (pass), 1 (fail) or 77 (skip, with the reason on stdout).

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
# a failing command says where it failed (scripts/errtrap.sh)
CGF_TOP=$TOP
. "$TOP/scripts/errtrap.sh"
T_NAME=$(basename "$0" .sh)
# unique per run, so that two runs never share a pin, cgroup or namespace
T_ID="cgft-$$"

# has GREP-ARGS: grep -q that reads all its input.  In a pipeline, grep -q
# quits at the first match and the writer dies writing the rest (SIGPIPE,
# 141), which pipefail makes the pipeline's status: a match read as none,
# whenever the writer is slower than grep (a fresh, loaded machine)
has() { grep "$@" >/dev/null; }

# ---- results -------------------------------------------------------------
# for tests/run.sh: our process group, whose members must be gone at the end
[ -z "${T_REASON:-}" ] || ps -o pgid= -p $$ >"$T_REASON.pgid" 2>/dev/null || true

skip() {
	echo "SKIP: $T_NAME: $*"
	[ -z "${T_REASON:-}" ] || echo "$*" >>"$T_REASON"
	exit 77
}
# fail MESSAGE: the test fails here; the message names the place that called
# fail (and that place's caller, for a helper like expect_ok).
fail() {
	local where
	where=$(_cgf_where 1)
	echo "FAIL: $T_NAME: $where: $*" >&2
	[ -z "${T_REASON:-}" ] || echo "$where: $*" >>"$T_REASON"
	exit 1
}
info() { echo "  $T_NAME: $*"; }
T_CHECKS=0
ok() { T_CHECKS=$((T_CHECKS + 1)); echo "  ok $T_CHECKS - $*"; }

# expect_ok DESCRIPTION CMD...     the command must succeed
expect_ok() {
	local what=$1; shift
	if "$@"; then ok "$what"; else fail "$what: '$*' failed (exit $?)"; fi
}
# expect_fail DESCRIPTION CMD...   the command must fail
expect_fail() {
	local what=$1; shift
	if "$@"; then fail "$what: '$*' succeeded but must fail"; else ok "$what"; fi
}

# expect_status DESCRIPTION STATUS MESSAGE CMD...   the command must exit
# STATUS and say MESSAGE (a fixed string) on standard error; its output and
# errors are left in $T_OUT and $T_ERR
expect_status() {
	local what=$1 st=$2 msg=$3 rc=0
	shift 3
	T_OUT=$(mktemp "/tmp/$T_ID.out.XXXXXX")
	T_ERR=$(mktemp "/tmp/$T_ID.err.XXXXXX")
	"$@" >"$T_OUT" 2>"$T_ERR" || rc=$?
	local err
	err=$(cat "$T_ERR")
	rm -f "$T_OUT" "$T_ERR"
	[ "$rc" = "$st" ] || fail "$what: exit $rc, expected $st: $err"
	grep -qF -- "$msg" <<<"$err" || fail "$what: the message does not say '$msg': $err"
}

# expect_eq DESCRIPTION GOT WANT   the two must be equal
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}

# ---- cleanup ---------------------------------------------------------------
# at_exit CMD...: run CMD when the test ends, pass or fail, newest first.
T_CLEANUP=()
at_exit() { T_CLEANUP+=("$(printf '%q ' "$@")"); }
_run_cleanup() {
	local rc=$? i
	set +e
	trap - ERR
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${T_CLEANUP[i]}" >/dev/null 2>&1
	done
	if [ $rc -eq 0 ] && [ "${T_CHECKS}" -eq 0 ] && [ -z "${T_NO_CHECKS_OK:-}" ]; then
		echo "FAIL: $T_NAME: finished without checking anything" >&2
		rc=1
	fi
	exit $rc
}
trap _run_cleanup EXIT
trap 'exit 130' INT TERM

# ---- machine facts -----------------------------------------------------------
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (BPF and cgroups)"; }

# Where cgroup2 is mounted (/sys/fs/cgroup on most systems); never assumed.
cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}
need_cgroup2() {
	CG2=$(cgroup2_root)
	[ -n "$CG2" ] || skip "cgroup2 is not mounted"
}

need_bpffs() {
	[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] ||
		skip "/sys/fs/bpf is not a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)"
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# make_cgroup PATH: create the cgroup PATH, removed at exit (its processes
# killed first).  Not in $(...): the cleanup must register in this shell.
make_cgroup() {
	mkdir "$1"
	at_exit rm_cgroup "$1"
}
rm_cgroup() {
	local cg=$1 d
	[ -d "$cg" ] || return 0
	if [ -e "$cg/cgroup.kill" ]; then
		echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
	else
		find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
	fi
	for _ in $(seq 50); do
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ -d "$cg" ] || return 0
		sleep 0.1
	done
	return 1
}

# make_tmpdir VAR: a scratch directory, its path in VAR, removed at exit.
make_tmpdir() {
	local -n _dir=$1
	_dir=$(mktemp -d "/tmp/$T_ID.XXXXXX")
	at_exit rm -rf "$_dir"
}

# echo_server PROTO VAR LO HI: start a cgfilter-probe echo server for PROTO
# on 127.0.0.1, on a free port in LO..HI (tried from a point that depends on
# this test's PID, so concurrent tests rarely collide); its port goes in
# VAR; it is stopped at exit.  Needs PROBE (the cgfilter-probe binary) and
# a scratch directory in TMP.
ECHO_SERVERS=0
echo_server() {
	local proto=$1 var=$2 lo=$3 hi=$4 span port out pid i
	span=$((hi - lo + 1))
	for ((i = 0; i < span; i++)); do
		port=$((lo + ($$ * 7 + ECHO_SERVERS * 31 + i) % span))
		out=$TMP/listen-$proto-$port
		"$PROBE" listen "$proto" "$port" -a 127.0.0.1 >"$out" 2>&1 &
		pid=$!
		for _ in $(seq 40); do
			if grep -qs listening "$out"; then
				at_exit kill "$pid"
				ECHO_SERVERS=$((ECHO_SERVERS + 1))
				printf -v "$var" %s "$port"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	fail "no free $proto port in $lo..$hi"
}

# client SRC PORT: a TCP connection from address SRC to 127.0.0.1:PORT
# sends "hi"; the echo's answer, or "timeout" / "error ..."
client() {
	python3 - "$@" <<-'PY'
		import socket, sys
		s = socket.socket()
		s.settimeout(1.5)
		s.bind((sys.argv[1], 0))
		try:
		    s.connect(("127.0.0.1", int(sys.argv[2])))
		    s.sendall(b"hi")
		    print(s.recv(100).decode() or "closed")
		except socket.timeout:
		    print("timeout")
		except OSError as e:
		    print("error %s" % e.strerror)
	PY
}
# answered SRC PORT WANT WHAT: poll until SRC gets WANT (the service may
# still be starting), at most 5 s
answered() {
	local i got
	for i in $(seq 10); do
		got=$(client "$1" "$2")
		[ "$got" = "$3" ] && { ok "$4"; return 0; }
		sleep 0.5
	done
	fail "$4: got '$got', want '$3'"
}
# free_port: a TCP port on 127.0.0.1 free now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
