# The crash sweeps of tests 44 and 58: source it after tests/lib.sh, with
# CRASH_ALL the commands the test sweeps (CGF_CRASH picks some of them).
#   CGF_CRASH_STEP=N   try every Nth call only, of those points() picks
#                      (default 1: all of them)
need_root
need_cgroup2
need_bpffs
need_cmd bpftool python3 strace
CGF=$BUILD/cgfilter/cgfilter
for p in "$CGF" "$BUILD/tests/verdict-run"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
STEP=${CGF_CRASH_STEP:-1}
# which commands: CGF_CRASH="..." (default: all the test's, CRASH_ALL)
CRASH=" ${CGF_CRASH:-$CRASH_ALL} "
want() { [[ $CRASH == *" $1 "* ]]; }
make_tmpdir TMP
PIN=/sys/fs/bpf/${T_ID}_c
clean() { "$CGF" unload "$PIN" >/dev/null 2>&1 || true; rm -rf "$PIN" "${PIN}_maps"; }
at_exit clean

# (python itself, not a wrapper that finds it: a version manager's shim
# takes a third of a second a run, and the sweeps run it thousands of times)
PY=$(python3 -c 'import sys; print(sys.executable)')
judge() { "$PY" "$TOP/tests/verdict/judge.py" --cgfilter "$CGF" --pin "$PIN" "$@"; }
# state: the filter and the sets shown (show --json from "filter" to the
# counters), for comparing
state() {
	local j
	j=$("$CGF" show --json "$PIN" 2>"$TMP/show.err") || return 1
	j=${j#*\"filter\":}
	echo "${j%%,\"passed_packets\"*}"
}
# the verdicts of the pin on PACKETS (BPF_PROG_TEST_RUN)
verdicts() { "$BUILD/tests/verdict-run" -p "$TMP/frames" --pin "$PIN" | cut -f3; }
# STATE VERDICTS: the reference's verdicts of the state now; the whole judge
# (every address the filter names, by the reference model) once a state
remember() {
	judge "${PACKETS[@]}" >"$TMP/judge" 2>&1 || fail "state $(state): $(cat "$TMP/judge")"
	printf -v "$1" %s "$(state)"
	printf -v "$2" %s "$(judge --expect "${PACKETS[@]}")"
}
# WHAT: the verdicts are those of the state shown, OLD or NEW
agree() {
	local st=$1 what=$2 want
	if [ "$st" = "$OLD_STATE" ]; then
		want=$OLD_VERDICTS
	elif [ "$st" = "$NEW_STATE" ]; then
		want=$NEW_VERDICTS
	else
		return 0
	fi
	[ "$(verdicts)" = "$want" ] || fail "$what: shows $st, but its verdicts are $(verdicts), not $want"
}
# CMD...: how many bpf() calls it makes, run on the current state; the
# trace ($TMP/trace) also has the calls that change files (pins too)
calls() {
	strace -f -qq -o "$TMP/trace" \
		-e trace=bpf,%file,ftruncate \
		"$@" >/dev/null 2>&1 || true
	grep -c 'bpf(BPF_' "$TMP/trace"
}
# HOW: the bpf() calls to stop at, from $TMP/trace: every one, except that
# of a run of map lookups (which change nothing: a shared engine's sweep of
# its 4096 slots) only the first two and the last are tried.  A kill (HOW
# signal=SIGKILL) is tried only at the first of a run of calls that change
# nothing the command leaves behind (reads; maps and programs made but not
# yet put anywhere, which die with it) with no file changed in between: a
# kill at the others leaves the same state.
points() {
	awk -v step="$STEP" -v how="$1" '
		function inert(c) {
			return c ~ /_(LOOKUP_ELEM|GET_NEXT_KEY|GET_INFO_BY_FD|GET_FD_BY_ID|OBJ_GET|PROG_QUERY|MAP_CREATE|PROG_LOAD|BTF_LOAD)$/
		}
		match($0, /bpf\(BPF_[A-Z_]*/) { cmd[++n] = substr($0, RSTART, RLENGTH); moved[n] = m; m = 0; next }
		/ (mkdir|mkdirat|rmdir|rename|renameat|renameat2|unlink|unlinkat|link|linkat|symlink|symlinkat|truncate|ftruncate)\(/ { m = 1 }
		/ openat\(.*O_CREAT/ { m = 1 }
		END {
			for (i = 1; i <= n; i++) {
				l = "bpf(BPF_MAP_LOOKUP_ELEM"
				if (cmd[i] == l && cmd[i - 1] == l && cmd[i - 2] == l && cmd[i + 1] == l)
					continue
				if (how == "signal=SIGKILL" && i > 1 && inert(cmd[i]) && inert(cmd[i - 1]) && !moved[i])
					continue
				if (k++ % step == 0)
					print i
			}
		}' "$TMP/trace"
}

# the packets whose verdicts are checked after each (besides judge's own,
# once a state)
PACKETS=("ip4 src=198.51.100.7 / tcp dport=443" "ip4 src=203.0.113.9 / udp dport=53"
	"ip6 src=2001:db8:1::5 / tcp dport=1" "ip4 src=10.1.2.3 / tcp dport=80" "ip4 / tcp dport=22")
judge --frames "$TMP/frames" "${PACKETS[@]}" || fail "cannot write the frames"

# sweep NAME SETUP CHECK CMD...: for each bpf() call N of CMD (made after
# SETUP), SETUP, CMD killed (or failing) at N, then CHECK with the exit
# status; finally the command again, unhindered, must give the new state.
# SETUP and CHECK are functions; OLD_STATE and NEW_STATE are set by them.
sweep() {
	local name=$1 setup=$2 check=$3 n total how rc at cut
	shift 3
	"$setup"
	total=$(calls "$@")
	[ "$total" -gt 3 ] || fail "$name: only $total bpf() calls"
	for how in signal=SIGKILL error=ENOSPC; do
		mapfile -t at < <(points "$how")
		# (CGF_CRASH_STEP: every Nth of them, at least one)
		[ "${#at[@]}" -gt $((STEP > 1 ? 0 : 3)) ] || fail "$name: only ${#at[@]} bpf() calls to try"
		for n in "${at[@]}"; do
			"$setup"
			rc=0
			# (in a subshell that reports "Killed" to /dev/null)
			(
				strace -f -qq -o /dev/null -e trace=bpf -e "inject=bpf:$how:when=$n" "$@" \
					>"$TMP/out" 2>"$TMP/err"
				exit $?
			) 2>/dev/null || rc=$?
			if [ "$how" = error=ENOSPC ] && [ $rc -ne 0 ] && [ ! -s "$TMP/err" ]; then
				fail "$name: ENOSPC at bpf() call $n: exit $rc without a message"
			fi
			"$check" "$name, $how at bpf() call $n of $total (exit $rc: $(head -c 200 "$TMP/err"))" "$rc" "$how"
			# the next command, unhindered, is exactly right
			"${AGAIN:-command}" "$@" >/dev/null 2>"$TMP/err2" ||
				fail "$name: after $how at call $n, the command again failed: $(cat "$TMP/err2")"
			"$check" "$name: the command again after $how at call $n" 0 none
		done
		cut=
		[ "$how" != signal=SIGKILL ] || cut=", and runs of calls that change nothing"
		ok "$name: $how at each of its $total bpf() calls (${#at[@]} tried: runs of lookups cut short$cut): old or new state, whole, as shown"
	done
}

