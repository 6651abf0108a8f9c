#!/usr/bin/env bash
# cgfilter run: CMD in a cgroup of its own with the filter on both
# directions before it executes.  Without systemd (a cgroup under the
# cgroup2 root) and inside the private systemd (a transient scope, as
# systemctl shows it): an allowed and a dropped flow on loopback; CMD's exit
# status and death by a signal; signals passed on; an interactive shell on a
# terminal; mode and list on a running CMD; nothing left behind after a
# normal end, after a failed start and after 'kill -9' of cgfilter run
# (once CMD ends); bad input refused, leaving nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_bpffs
need_cmd python3 script make
CGF=$BUILD/cgfilter/cgfilter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$CGF" "$PROBE"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
RUN=/sys/fs/bpf/cgfilter-run
N=$T_ID-run
# the parents stay (another run may be making its own there): ours to remove
[ -e "$RUN" ] || at_exit rmdir "$RUN"
at_exit rm -rf "$RUN/$N" "$RUN/${N}_maps" "$RUN/$N-k9" "$RUN/$N-k9_maps"
# a run's cgroup is made below the cgroup it is started from (this one's)
HERE=$(sed -n 's/^0:://p' /proc/self/cgroup)
HERE=${HERE%/}
RCG=$CG2$HERE/cgfilter-run-   # + NAME
at_exit rm_cgroup "$RCG$N"
at_exit rm_cgroup "$RCG$N-k9"

# wait_gone SECONDS PATH...: until none of them exists
wait_gone() {
	local t=$1 i p left
	shift
	for ((i = 0; i < t * 10; i++)); do
		left=
		for p in "$@"; do [ -e "$p" ] && left="$left $p"; done
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	fail "still there after ${t}s:$left"
}
left_behind() { # NAME: fail if the run's pin or cgroup is there
	local n=$1
	[ -e "$RUN/$n" ] || [ -e "$RUN/${n}_maps" ] && fail "the pin of run $n was left behind: $(ls "$RUN")"
	[ -e "$RCG$n" ] && fail "the cgroup of run $n was left behind"
	return 0
}

echo_server udp PU 21100 21199
echo_server tcp PT 21200 21299
FILTER="udp && (dst_port == $PU || src_port == $PU)"

# ---- without systemd --------------------------------------------------------------------------
export CGFILTER_RUN_NO_SYSTEMD=1
rc=0
"$CGF" run --name "$N" "$FILTER" -- sh -c "
	grep -qx '0::$HERE/cgfilter-run-$N' /proc/self/cgroup || { echo 'not in its cgroup:'; cat /proc/self/cgroup; exit 10; }
	[ -e '$RUN/$N' ] || { echo 'no pin'; exit 11; }
	'$PROBE' send udp 127.0.0.1 $PU -t 2000 >/dev/null || exit 12
	'$PROBE' send tcp 127.0.0.1 $PT -t 300 >/dev/null 2>&1 && exit 13
	exit 7" >"$TMP/out" 2>&1 || rc=$?
expect_eq "CMD's exit status, after its checks (10-13: a check failed)" "$rc" 7
left_behind "$N"
ok "no systemd: CMD runs in cgroup cgfilter-run-NAME below this one; UDP to the allowed port passes, TCP is dropped; nothing is left"

# a run inside a run (or inside any filtered cgroup) stays under the outer filter
rc=0
"$CGF" run --name "$N" "$FILTER" -- sh -c "
	'$CGF' run --name '$N-in' 1 -- sh -c \"
		'$PROBE' send udp 127.0.0.1 $PU -t 2000 >/dev/null || exit 10
		'$PROBE' send tcp 127.0.0.1 $PT -t 300 >/dev/null 2>&1 && exit 11
		exit 6\"" >"$TMP/nest" 2>&1 || rc=$?
expect_eq "a run inside a run with the filter 1 (10, 11: a check failed: $(cat "$TMP/nest"))" "$rc" 6
left_behind "$N"

rc=0; "$CGF" run "$FILTER" -- sh -c 'kill -TERM $$' || rc=$?
expect_eq "CMD killed by SIGTERM: cgfilter run dies of it" "$rc" 143
rc=0; "$CGF" run "$FILTER" -- sh -c 'kill -KILL $$' || rc=$?
expect_eq "CMD killed by SIGKILL" "$rc" 137
"$CGF" run --name "$N" "$FILTER" -- sh -c 'trap "exit 42" TERM USR1; echo ready; while :; do sleep 0.1; done' >"$TMP/sig" &
pid=$!
for _ in $(seq 50); do grep -q ready "$TMP/sig" && break; sleep 0.1; done
kill -USR1 "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "SIGUSR1 sent to cgfilter run reached CMD (its trap exits 42)" "$rc" 42
left_behind "$N"

# an interactive shell on a terminal; Ctrl-C reaches what it runs, not cgfilter run
rc=0
{ sleep 0.5; printf 'sleep 30\n'; sleep 1; printf '\003'; sleep 0.5
  printf '%s send udp 127.0.0.1 %s -t 2000 >/dev/null && echo UDP-PASSED\n' "$PROBE" "$PU"
  printf 'grep 0:: /proc/self/cgroup\n'; printf 'exit 3\n'; } |
	timeout 20 script -qec "$CGF run --name $N '$FILTER' -- bash --norc --noprofile -i" /dev/null >"$TMP/tty" 2>&1 || rc=$?
expect_eq "the interactive shell's exit status" "$rc" 3
grep -q UDP-PASSED "$TMP/tty" && grep -q "0::$HERE/cgfilter-run-$N" "$TMP/tty" ||
	fail "the interactive shell did not run filtered: $(cat "$TMP/tty")"
left_behind "$N"
ok "an interactive shell: filtered, Ctrl-C interrupts its command, its exit status"

# a running CMD: list shows it, mode changes it live
"$CGF" run --name "$N" "$FILTER" -- sh -c 'echo ready; while [ ! -e "$1/stop" ]; do sleep 0.1; done' sh "$TMP" >"$TMP/live" &
pid=$!
for _ in $(seq 50); do grep -q ready "$TMP/live" && break; sleep 0.1; done
"$CGF" list "$RUN" >"$TMP/list"
grep -q "^$RUN/$N  dedicated enforce" "$TMP/list" && grep -q "$HERE/cgfilter-run-$N ingress" "$TMP/list" ||
	fail "cgfilter list does not show the run: $(cat "$TMP/list")"
bash -c 'echo $$ >"$1/cgroup.procs"; exec "$2" send udp 127.0.0.1 "$3" -t 2000' _ "$RCG$N" "$PROBE" "$PU" >/dev/null ||
	fail "a process that joined the run's cgroup: UDP dropped"
"$CGF" mode "$RUN/$N" block || fail "mode block on the run failed"
bash -c 'echo $$ >"$1/cgroup.procs"; exec "$2" send udp 127.0.0.1 "$3" -t 300' _ "$RCG$N" "$PROBE" "$PU" >/dev/null 2>&1 &&
	fail "the run in block mode passed UDP"
touch "$TMP/stop"
wait "$pid" || fail "the live run failed"
left_behind "$N"
rm -f "$TMP/stop"
ok "a running CMD: cgfilter list shows it and its cgroup; 'cgfilter mode' changes it live"

# kill -9 of cgfilter run: CMD goes on; when it ends, everything goes
"$CGF" run --name "$N-k9" "$FILTER" -- sh -c 'echo ready; while [ ! -e "$1/stop" ]; do sleep 0.1; done; echo done >"$1/k9-done"' sh "$TMP" >"$TMP/k9" &
pid=$!
for _ in $(seq 50); do grep -q ready "$TMP/k9" && break; sleep 0.1; done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ -e "$RUN/$N-k9" ] && [ -d "$RCG$N-k9" ] || fail "the run's pin or cgroup went while CMD runs"
[ "$(wc -l <"$RCG$N-k9/cgroup.procs")" -ge 1 ] || fail "CMD died with cgfilter run"
touch "$TMP/stop"
wait_gone 10 "$RUN/$N-k9" "$RUN/$N-k9_maps" "$RCG$N-k9"
[ -e "$TMP/k9-done" ] || fail "CMD did not finish its work"
rm -f "$TMP/stop"
ok "kill -9 of cgfilter run: CMD runs on, filtered; when it ends, its cgroup and the filter go"

# bad input: refused, nothing left
expect_status "a bad filter" 1 "bad filter" "$CGF" run --name "$N" 'udp &&' -- true
left_behind "$N"
expect_status "no --" 2 "expected (EXPR | -f FILE) -- CMD" "$CGF" run --name "$N" udp true
left_behind "$N"
expect_status "no command" 2 "expected (EXPR | -f FILE) -- CMD" "$CGF" run --name "$N" udp --
left_behind "$N"
expect_status "a bad name" 2 "invalid name 'a/b'" "$CGF" run --name a/b udp -- true
left_behind "$N"
expect_status "a command that does not exist" 127 "cannot run /nonexistent" \
	"$CGF" run --name "$N" udp -- /nonexistent
left_behind "$N"
"$CGF" run --name "$N" udp -- sleep 2 &
pid=$!
for _ in $(seq 50); do [ -e "$RUN/$N" ] && break; sleep 0.1; done
rc=0; "$CGF" run --name "$N" udp -- true 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "a run named $N exists" "$TMP/err" || fail "a second run of one name: exit $rc: $(cat "$TMP/err")"
[ -e "$RUN/$N" ] || fail "the refused second run removed the first one's pin"
wait "$pid"
left_behind "$N"
printf '# allowed\n%s\n' "$FILTER" >"$TMP/f"
"$CGF" run --name "$N" -f "$TMP/f" -- "$PROBE" send udp 127.0.0.1 "$PU" -t 2000 >/dev/null || fail "run -f FILE failed"
ok "bad filter, usage, name, missing command, a name in use: refused, nothing left; -f FILE works"

# an error injected at each bpf() call of run, then SIGKILL at each: CMD runs
# only filtered (the file it writes says which cgroup it ran in), and once it
# has ended nothing is left (the cleaner, a child of run, is not traced)
strace -qq -e trace=bpf -o "$TMP/count" "$CGF" run --name "$N" udp -- true || fail "run under strace failed"
n=$(grep -c 'bpf(' "$TMP/count")
for how in error=ENOSPC signal=SIGKILL; do
	for ((i = 1; i <= n; i++)); do
		rm -f "$TMP/ran"
		rc=0
		strace -qq -o /dev/null -e trace=bpf -e "inject=bpf:$how:when=$i" \
			"$CGF" run --name "$N" udp -- sh -c "cat /proc/self/cgroup >'$TMP/ran'" \
			>"$TMP/out" 2>&1 || rc=$?
		if [ -e "$TMP/ran" ] && ! grep -q "/cgfilter-run-$N\$" "$TMP/ran"; then
			fail "$how at bpf() call $i of $n: CMD ran outside the run's cgroup: $(cat "$TMP/ran")"
		fi
		[ "$rc" = 0 ] && [ ! -e "$TMP/ran" ] && fail "$how at bpf() call $i of $n: exit 0, and CMD did not run"
		[ "$rc" = 0 ] || [ "$how" = signal=SIGKILL ] || [ ! -e "$TMP/ran" ] ||
			fail "$how at bpf() call $i of $n: exit $rc, and CMD ran: $(cat "$TMP/out")"
		wait_gone 10 "$RUN/$N" "$RUN/${N}_maps" "$RCG$N"
	done
	ok "run with $how at each of its $n bpf() calls: CMD runs only filtered, and nothing is left"
done
unset CGFILTER_RUN_NO_SYSTEMD

# ---- inside the private systemd: a transient scope ---------------------------------------------
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
sd_boot --bind "$DEST/usr/local" /usr/local
SCGF=/usr/local/bin/cgfilter
rc=0
sd_run --wait --pipe --quiet -- "$SCGF" run --name web "$FILTER" -- sh -c "
	grep -q '^0::.*/web.scope\$' /proc/self/cgroup || { echo 'not in web.scope:'; cat /proc/self/cgroup; exit 10; }
	[ \"\$(systemctl show -P IPIngressFilterPath web.scope)\" = $RUN/web ] || { systemctl show web.scope | grep -i filter; exit 11; }
	[ \"\$(systemctl show -P IPEgressFilterPath web.scope)\" = $RUN/web ] || exit 11
	systemctl is-active -q web.scope || exit 12
	/usr/local/bin/cgfilter-probe send udp 127.0.0.1 $PU -t 2000 >/dev/null || exit 13
	/usr/local/bin/cgfilter-probe send tcp 127.0.0.1 $PT -t 300 >/dev/null 2>&1 && exit 14
	$SCGF list $RUN | grep '/web.scope ingress' >/dev/null || exit 15
	exit 7" >"$TMP/sdout" 2>&1 || rc=$?
expect_eq "systemd: CMD's exit status, after its checks (10-15: a check failed: $(cat "$TMP/sdout"))" "$rc" 7
for _ in $(seq 50); do sd_exec test -e "$RUN/web" || break; sleep 0.1; done
sd_exec test -e "$RUN/web" && fail "systemd: the pin was left behind"
sd_ctl is-active -q web.scope && fail "systemd: web.scope is still active"
ok "systemd: CMD runs in the transient scope web.scope with IP*FilterPath= on the pin; UDP passes, TCP dropped; the scope and pin go"

# from a service with a filter of its own: the scope would be outside it, so run refuses
sd_exec "$SCGF" load /sys/fs/bpf/cgfilter/outer 1 || fail "cannot load the outer filter"
rc=0
sd_run --wait --pipe --quiet -p IPEgressFilterPath=/sys/fs/bpf/cgfilter/outer -- \
	"$SCGF" run --name escape 1 -- sh -c 'echo RAN' >"$TMP/esc" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "would not apply in" "$TMP/esc" && ! grep -q RAN "$TMP/esc" ||
	fail "systemd: a run from a filtered service was not refused: exit $rc: $(cat "$TMP/esc")"
for _ in $(seq 50); do sd_exec test -e "$RUN/escape" || break; sleep 0.1; done
sd_exec test -e "$RUN/escape" && fail "systemd: the refused run left its pin"
ok "systemd: a run started from a filtered service is refused (its scope would be outside that filter), leaving nothing"

# kill -9 of cgfilter run, run as a service: CMD goes on in its scope; then everything goes
sd_run --quiet --unit runner -- "$SCGF" run --name k9 "$FILTER" -- sh -c 'while [ ! -e /run/k9-stop ]; do sleep 0.1; done' ||
	fail "cannot start the runner"
for _ in $(seq 100); do sd_ctl is-active -q k9.scope && break; sleep 0.1; done
sd_ctl is-active -q k9.scope || fail "k9.scope did not start: $(sd_journal runner.service | tail -5)"
sleep 0.5   # (the cleaner hands over to its service)
sd_ctl kill -s KILL --kill-whom=main runner.service
for _ in $(seq 50); do sd_ctl is-active -q runner.service || break; sleep 0.1; done
sd_ctl is-active -q k9.scope || fail "k9.scope ended with cgfilter run"
sd_exec test -e "$RUN/k9" || fail "the pin went while CMD runs"
sd_exec touch /run/k9-stop
for _ in $(seq 100); do sd_exec test -e "$RUN/k9" || break; sleep 0.1; done
sd_exec test -e "$RUN/k9" && fail "systemd: after kill -9 and CMD's end the pin was left behind"
sd_ctl is-active -q k9.scope && fail "k9.scope is still active"
ok "systemd: kill -9 of cgfilter run: CMD runs on in its scope; when it ends, the scope and the pin go"
