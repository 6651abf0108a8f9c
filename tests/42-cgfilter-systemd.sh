#!/usr/bin/env bash
# cgfilter with a real systemd (tests/sysd.sh), units as `make install` puts
# them: cgfilter@NAME loads /etc/cgfilter/NAME.filter for a service that
# Requires/After it; a live TCP connection of that service follows every
# `systemctl reload cgfilter@NAME` and `cgfilter set` while its MainPID stays
# the same; the shared engine with two services registering different
# filters in one ExecStartPre= line each, a service without one failing
# closed and entries going away with their cgroups; `cgfilter check` keeping
# a unit with a missing or wrong-type pin from starting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_cmd make clang bpftool getcap
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || skip "$PROBE is not built (make tools)"

# wait_for SECONDS DESC CMD...: poll until CMD succeeds
wait_for() {
	local t=$1 what=$2 i
	shift 2
	for ((i = 0; i < t * 10; i++)); do
		"$@" && { ok "$what"; return 0; }
		sleep 0.1
	done
	fail "$what: not within ${t}s"
}

# ---- install into a scratch DESTDIR, bound over /usr/local inside ------------------
make_tmpdir TMP
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
UNITS=$DEST/usr/local/lib/systemd/system
for f in bin/cgfilter lib/systemd/system/cgfilter@.service lib/systemd/system/cgfilter-shared.service \
	share/man/man8/cgfilter.8; do
	[ -e "$DEST/usr/local/$f" ] || fail "make install did not install /usr/local/$f"
done
ok "make install installs cgfilter, its man page and units"
for f in bin/cgfilter-wrap share/man/man8/cgfilter-wrap.8 share/cgfilter/examples/port-knocking.filter \
	share/bash-completion/completions/cgfilter; do
	[ -e "$DEST/usr/local/$f" ] || fail "make install did not install /usr/local/$f"
done
getcap "$DEST/usr/local/bin/cgfilter-wrap" | has cap_net_admin &&
	fail "make install gave cgfilter-wrap a capability: that is install-wrap-cap's, opt-in"
make -C "$TOP" --no-print-directory install-wrap-cap DESTDIR="$DEST" >"$TMP/cap.log" 2>&1 ||
	fail "make install-wrap-cap failed: $(cat "$TMP/cap.log")"
getcap "$DEST/usr/local/bin/cgfilter-wrap" | has 'cap_net_admin=ep' ||
	fail "make install-wrap-cap did not give cgfilter-wrap cap_net_admin=ep: $(getcap "$DEST/usr/local/bin/cgfilter-wrap")"
ok "make install installs cgfilter-wrap (no capability), the examples and the completion; make install-wrap-cap gives it cap_net_admin=ep"
CGF=/usr/local/bin/cgfilter

# /etc/cgfilter inside the namespace is a scratch directory of ours; the bind
# needs a mount point, made here only if the host has none (and removed)
ETC=$TMP/etc-cgfilter
mkdir "$ETC"
if [ ! -d /etc/cgfilter ]; then
	mkdir /etc/cgfilter
	at_exit rmdir /etc/cgfilter
fi

# ---- echo servers on the host (same network namespace) ------------------------------
echo_server tcp PA 22000 22999
echo_server tcp PB 22000 22999
echo_server tcp PS 22000 22999   # the long-lived connection

sd_boot --bind "$DEST/usr/local" /usr/local --bind "$ETC" /etc/cgfilter "$UNITS"
ok "systemd boots with the installed units"

# ---- cgfilter@web and a service that uses it ------------------------------------------
printf '# the web service may talk to its stream port only\ntcp && dst_port == %s\n' "$PS" \
	>"$ETC/web.filter"
sd_write /run/systemd/system/cgft-web.service <<EOF
[Unit]
Requires=cgfilter@web.service
After=cgfilter@web.service
[Service]
IPEgressFilterPath=/sys/fs/bpf/cgfilter/web
ExecStartPre=$CGF check /sys/fs/bpf/cgfilter/web
ExecStart=/usr/local/bin/cgfilter-probe stream 127.0.0.1 $PS -i 100 -t 300
StandardOutput=append:/run/cgft-web.log
EOF
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok cgft-web.service "a service with Requires/After cgfilter@web starts"
expect_eq "cgfilter@web is active" "$(sd_ctl is-active cgfilter@web.service)" active
sd_exec "$CGF" show /sys/fs/bpf/cgfilter/web >"$TMP/show" || fail "cgfilter show failed"
grep -q "^    # the web service may talk" "$TMP/show" || fail "show: $(cat "$TMP/show")"
grep -q "^    /system.slice/cgft-web.service egress$" "$TMP/show" || fail "show: $(cat "$TMP/show")"
ok "cgfilter show names the filter file's text and the service's cgroup"
pid0=$(sd_ctl show -P MainPID cgft-web.service)
[ "$pid0" -gt 0 ] || fail "no MainPID"

# the stream's log: 'ok N' when line N came back, 'lost N' when not
log_has_new() { # WORD SINCE: a line 'WORD N' after line SINCE of the log
	sd_exec tail -n "+$(($2 + 1))" /run/cgft-web.log 2>/dev/null | has "^$1 "
}
log_lines() { sd_exec sh -c 'wc -l </run/cgft-web.log'; }
wait_for 10 "the connection carries data through the filter" log_has_new ok 0

# narrow: the file now allows another port only; reload applies it live
printf 'tcp && dst_port == %s\n' "$PA" >"$ETC/web.filter"
sd_ctl reload cgfilter@web.service || unit_fail cgfilter@web.service "reload failed"
n=$(log_lines)
wait_for 10 "after 'systemctl reload' narrows the filter, the connection's data is dropped" \
	log_has_new lost "$n"
sleep 1
n=$(log_lines)
sleep 1
log_has_new ok "$n" && fail "data passed while the narrowed filter was in force"
ok "nothing passes while the narrowed filter is in force"
expect_eq "the service kept running (same MainPID)" "$(sd_ctl show -P MainPID cgft-web.service)" "$pid0"

# widen again through the file and reload: the same connection recovers
printf 'tcp && dst_port in { %s, %s }\n' "$PA" "$PS" >"$ETC/web.filter"
sd_ctl reload cgfilter@web.service || unit_fail cgfilter@web.service "reload failed"
n=$(log_lines)
wait_for 15 "after reload widens it, the same connection passes again" log_has_new ok "$n"
expect_eq "same MainPID after widening" "$(sd_ctl show -P MainPID cgft-web.service)" "$pid0"

# a direct 'cgfilter set' does the same
sd_exec "$CGF" set /sys/fs/bpf/cgfilter/web 'udp' || fail "cgfilter set failed"
n=$(log_lines)
wait_for 10 "after 'cgfilter set' narrows it, data is dropped" log_has_new lost "$n"
sd_exec "$CGF" set /sys/fs/bpf/cgfilter/web "tcp && dst_port == $PS" || fail "cgfilter set failed"
n=$(log_lines)
wait_for 15 "after 'cgfilter set' widens it, data passes" log_has_new ok "$n"
expect_eq "same MainPID after every change" "$(sd_ctl show -P MainPID cgft-web.service)" "$pid0"
expect_eq "the service never restarted" "$(sd_ctl show -P NRestarts cgft-web.service)" 0

# a bad file: reload fails and the running filter stays
printf 'tcp && dst_port == ;\n' >"$ETC/web.filter"
sd_ctl reload cgfilter@web.service 2>/dev/null && fail "reload accepted a bad filter"
expect_eq "a bad filter file leaves the running filter" \
	"$(sd_exec "$CGF" show /sys/fs/bpf/cgfilter/web | sed -n 's/^  filter: //p')" "tcp && dst_port == $PS"

sd_ctl stop cgfilter@web.service || fail "cannot stop cgfilter@web"
expect_eq "stopping cgfilter@web stops the service that requires it" \
	"$(sd_ctl is-active cgft-web.service)" inactive
sd_exec test -e /sys/fs/bpf/cgfilter/web && fail "cgfilter@web left its pin"
sd_exec test -e /sys/fs/bpf/cgfilter/web_maps && fail "cgfilter@web left its maps"
ok "stopping cgfilter@web unloads it"

# ---- the shared engine: one ExecStartPre= line per service ---------------------------
shared_unit() { # NAME ALLOWED-PORT|none
	{
		echo "[Unit]"
		echo "Requires=cgfilter-shared.service"
		echo "After=cgfilter-shared.service"
		echo "[Service]"
		echo "IPEgressFilterPath=/sys/fs/bpf/cgfilter/shared"
		[ "$2" = none ] ||
			echo "ExecStartPre=+$CGF register /sys/fs/bpf/cgfilter/shared 'tcp && dst_port == $2'"
		echo "ExecStart=/bin/sh -c 'for p in $PA $PB; do /usr/local/bin/cgfilter-probe send tcp 127.0.0.1 \$\$p -t 500 -m $1 || true; done; exec sleep 600'"
		echo "StandardOutput=append:/run/$1.log"
		echo "StandardError=append:/run/$1.log"
	} | sd_write "/run/systemd/system/$1.service"
}
shared_unit cgft-a "$PA"
shared_unit cgft-b "$PB"
shared_unit cgft-c none
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok cgft-a.service "service a registers its filter in the shared engine"
start_ok cgft-b.service "service b registers another"
start_ok cgft-c.service "service c names the engine but registers nothing"
done_probing() { [ "$(sd_exec cat "/run/$1.log" 2>/dev/null | wc -l)" -ge 2 ]; }
wait_for 10 "the three services have probed" eval 'done_probing cgft-a && done_probing cgft-b && done_probing cgft-c'
expect_eq "a reaches its port only" "$(sd_exec cat /run/cgft-a.log | sed 's/: .*//')" \
	"reply from 127.0.0.1 port $PA
cgfilter-probe"
expect_eq "b reaches its port only" "$(sd_exec cat /run/cgft-b.log | sed 's/: .*//')" \
	"cgfilter-probe
reply from 127.0.0.1 port $PB"
expect_eq "c, with no filter registered, reaches nothing (fails closed)" \
	"$(sd_exec cat /run/cgft-c.log | grep -c reply)" 0
sd_exec "$CGF" show /sys/fs/bpf/cgfilter/shared >"$TMP/show"
grep -q "^    /system.slice/cgft-a.service egress: tcp && dst_port == $PA$" "$TMP/show" &&
	grep -q "^    /system.slice/cgft-b.service egress: tcp && dst_port == $PB$" "$TMP/show" &&
	grep -q "^    /system.slice/cgft-c.service egress: (none: drop)$" "$TMP/show" ||
	fail "show of the shared engine: $(cat "$TMP/show")"
ok "cgfilter show lists each service's filter"
sd_ctl stop cgft-a.service cgft-b.service cgft-c.service || fail "cannot stop the services"
gone() {
	sd_exec "$CGF" show /sys/fs/bpf/cgfilter/shared >"$TMP/gone" 2>&1 || fail "show failed: $(cat "$TMP/gone")"
	! has "cgft-[abc].service" "$TMP/gone"
}
wait_for 10 "the entries of stopped services go away with their cgroups" gone
sd_ctl stop cgfilter-shared.service || fail "cannot stop cgfilter-shared"
sd_exec test -e /sys/fs/bpf/cgfilter/shared && fail "cgfilter-shared left its pin"
ok "stopping cgfilter-shared unloads it"

# ---- the guard: a missing or wrong-type pin keeps a unit from starting ------------------
# (the object is copied in: the build tree may be under the host's /tmp,
# which the namespace does not see)
sd_write /run/cgft-drop.bpf.o <"$BUILD/bpf-program-only/cgroup_sock_drop.bpf.o"
sd_exec bpftool prog load /run/cgft-drop.bpf.o /sys/fs/bpf/cgft-wrong type socket ||
	fail "cannot load a socket filter for the guard test"
guarded_unit() { # NAME PIN GUARD(yes|no)
	{
		echo "[Service]"
		echo "Type=oneshot"
		echo "IPEgressFilterPath=$2"
		[ "$3" = no ] || echo "ExecStartPre=$CGF check $2"
		echo "ExecStart=/bin/true"
	} | sd_write "/run/systemd/system/$1.service"
}
guarded_unit cgft-unguarded /sys/fs/bpf/cgft-wrong no
guarded_unit cgft-guarded /sys/fs/bpf/cgft-wrong yes
guarded_unit cgft-guarded-missing /sys/fs/bpf/cgft-missing yes
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok cgft-unguarded.service "without the guard, a wrong-type pin lets the unit run unfiltered (the hole)"
start_fails cgft-guarded.service "with 'cgfilter check', a wrong-type pin keeps the unit from starting"
expect_eq "... failing in ExecStartPre" "$(sd_result cgft-guarded.service)" exit-code
sd_journal cgft-guarded.service | has "is a socket_filter program, not cgroup_skb" ||
	unit_fail cgft-guarded.service "the journal does not say why"
ok "... and the journal says why"
start_fails cgft-guarded-missing.service "a missing pin keeps the unit from starting"

# ---- a .socket unit: its IPIngressFilterPath= covers the sockets it passes --------------
# (a service's own IP filters do not: systemd.resource-control(5)); and the
# other way, cgfilter-wrap under a .socket unit, as nobody with CAP_NET_ADMIN
# given by the unit and dropped before the daemon runs
sd_write /run/cgft-echod.py <"$TOP/tests/wrap/echod.py"
SP=$(free_port)
sd_exec "$CGF" load /sys/fs/bpf/cgft-sock 'src_ip == 127.0.0.2' || fail "cannot load the socket unit's filter"
at_exit sd_exec rm -rf /sys/fs/bpf/cgft-sock /sys/fs/bpf/cgft-sock_maps
sd_write /run/systemd/system/cgft-echo.socket <<EOF2
[Socket]
ListenStream=127.0.0.1:$SP
FileDescriptorName=echo
IPIngressFilterPath=/sys/fs/bpf/cgft-sock
ExecStartPre=$CGF check /sys/fs/bpf/cgft-sock
EOF2
sd_write /run/systemd/system/cgft-echo.service <<EOF2
[Service]
ExecStart=/usr/bin/python3 /run/cgft-echod.py
EOF2
WP=$(free_port)
sd_write /run/systemd/system/cgft-wrapped.socket <<EOF2
[Socket]
ListenStream=127.0.0.1:$WP
FileDescriptorName=web
EOF2
sd_write /run/systemd/system/cgft-wrapped.service <<EOF2
[Service]
User=nobody
AmbientCapabilities=CAP_NET_ADMIN
ExecStart=/usr/local/bin/cgfilter-wrap 'src_ip == 127.0.0.2' -- /usr/bin/python3 /run/cgft-echod.py
EOF2
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok cgft-echo.socket "a .socket unit with IPIngressFilterPath= naming a cgfilter pin starts"
# the first connection starts the service: from the address the filter passes
answered 127.0.0.2 "$SP" "echo:hi" "the socket unit's service answers 127.0.0.2"
expect_eq "... and not 127.0.0.3, whose SYN the socket unit's filter drops" "$(client 127.0.0.3 "$SP")" timeout
sd_exec "$CGF" show /sys/fs/bpf/cgft-sock | has '^    /system.slice/cgft-echo.socket ingress$' ||
	fail "show does not name the socket unit's cgroup: $(sd_exec "$CGF" show /sys/fs/bpf/cgft-sock)"
ok "cgfilter show names the socket unit's cgroup"

start_ok cgft-wrapped.socket "a .socket unit whose service runs cgfilter-wrap starts"
# the connection that starts the service came before the filter: reset
got=$(client 127.0.0.3 "$WP")
case $got in
"error Connection reset by peer" | timeout | closed) ;;
*) fail "the connection that started the wrapped service got '$got'" ;;
esac
answered 127.0.0.2 "$WP" "web:hi" "cgfilter-wrap under a .socket unit: 127.0.0.2 is answered"
expect_eq "... 127.0.0.3 is not" "$(client 127.0.0.3 "$WP")" timeout
sd_journal cgft-wrapped.service | has 'reset 1 connection that arrived before the filter' ||
	unit_fail cgft-wrapped.service "the journal does not say the first connection was reset"
ok "... and the journal says the connection that started it was reset"
mp=$(sd_ctl show -P MainPID cgft-wrapped.service)
caps=$(sd_exec grep -E '^(CapEff|CapPrm|CapAmb|NoNewPrivs):' "/proc/$mp/status" | tr -s '\t ' ' ' | paste -sd' ')
expect_eq "the daemon has none of the unit's CAP_NET_ADMIN" "$caps" \
	"CapPrm: 0000000000000000 CapEff: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1"
sd_ctl stop cgft-wrapped.socket cgft-wrapped.service cgft-echo.socket cgft-echo.service
sd_exec "$CGF" unload /sys/fs/bpf/cgft-sock >/dev/null
