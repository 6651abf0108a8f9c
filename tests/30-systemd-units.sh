#!/usr/bin/env bash
# The example units as installed by `make install`, run by a real systemd
# in private namespaces (tests/sysd.sh): bpf-firewall@ + service-with-filter@
# with escaped filters, bpf-make + my-filtered-ping, cgroup-sock-drop-filter
# + my-ping, transient units with IPIngressFilterPath=, and a unit whose pin
# is missing.  Traffic is real TCP and ICMP on loopback.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_cmd make clang bpftool systemd-escape
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || skip "$PROBE is not built (make tools)"

pin_exists() { sd_exec test -e "/sys/fs/bpf/$1"; }

# ---- install into a scratch DESTDIR; /usr/local inside is that ---------------
make_tmpdir TMP
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
UNITS=$DEST/usr/local/lib/systemd/system
[ -f "$UNITS/bpf-firewall@.service" ] || fail "make install put no units in $UNITS"
if grep -rIlF -e "$TOP" -e "$DEST" "$DEST"; then
	fail "installed files refer to the source tree or to DESTDIR"
fi
ok "make install DESTDIR=... installs units that refer only to /usr/local"
for p in '/opt/my cg' '/opt/cg%i'; do
	rc=0
	make -C "$TOP" --no-print-directory install DESTDIR="$TMP/bad" PREFIX="$p" >"$TMP/bad.log" 2>&1 || rc=$?
	[ "$rc" != 0 ] && grep -q "cannot install to '$p': a blank, %" "$TMP/bad.log" && [ ! -e "$TMP/bad" ] ||
		fail "make install PREFIX='$p': exit $rc, $(ls -A "$TMP/bad" 2>/dev/null | head -3): $(cat "$TMP/bad.log")"
done
ok "make install refuses a PREFIX that units and the installed Makefile would split or expand (a blank, %), writing nothing"

# ---- echo servers on the host (same network namespace), ports of our own -----
echo_server tcp PA 22000 22999   # the filters allow this port
echo_server tcp PB 22000 22999   # and drop this one
send_quiet() { "$PROBE" send tcp 127.0.0.1 "$1" -t 1000 >/dev/null 2>&1; }
expect_ok "echo servers answer without a filter" send_quiet "$PB"

# ---- boot ---------------------------------------------------------------------
sd_boot --bind "$DEST/usr/local" /usr/local "$UNITS"
ok "systemd boots in private namespaces with the installed units"
expect_eq "the namespace has its own empty bpffs" \
	"$(sd_exec find /sys/fs/bpf -mindepth 1 ! -name '*.debug' | wc -l)" 0

# ---- bpf-firewall@ + service-with-filter@, the filter in the instance name ----
F1="icmp || (tcp && dst_port == $PA)"
I1=$(systemd-escape "$F1")
# per-instance drop-in: replace the ping with two TCP probes, log to a file
sd_write "/run/systemd/system/service-with-filter@$I1.service.d/10-probe.conf" <<EOF
[Service]
ExecStart=
ExecStart=-/usr/local/bin/cgfilter-probe send tcp 127.0.0.1 $PA -t 1000 -m allowed
ExecStart=-/usr/local/bin/cgfilter-probe send tcp 127.0.0.1 $PB -t 1000 -m dropped
StandardOutput=append:/run/cgft-probe.log
StandardError=inherit
EOF
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok "service-with-filter@$I1.service" "service-with-filter@ starts with an escaped filter"
expect_eq "bpf-firewall@ is active" "$(sd_ctl is-active "bpf-firewall@$I1.service")" active
pin_exists "$I1" || fail "no pin at /sys/fs/bpf/$I1"
ok "bpf-firewall@ pins at /sys/fs/bpf/<escaped instance>"
# systemctl show quotes the path C-style: the backslashes are literal
expect_eq "the service uses that pin" \
	"$(sd_ctl show -P IPEgressFilterPath "service-with-filter@$I1.service")" \
	"\"/sys/fs/bpf/${I1//\\/\\\\}\""
log=$(sd_exec cat /run/cgft-probe.log)
expect_eq "the service reaches the allowed port, not the dropped one" "$log" \
	"reply from 127.0.0.1 port $PA
cgfilter-probe: no connection to 127.0.0.1 port $PB: timed out"
[ ! -e "/sys/fs/bpf/$I1" ] || fail "the pin leaked onto the host's bpffs"
ok "the pin stays in the namespace"
sd_ctl stop "bpf-firewall@$I1.service" || fail "cannot stop bpf-firewall@$I1.service"
! pin_exists "$I1" || fail "the pin /sys/fs/bpf/$I1 is still there after stop"
ok "stopping bpf-firewall@ removes its pin"

# '/' in a filter: systemd-escape makes it '-', %I gives it back, %i has none
F2="icmp && len / 2 > 10"
I2=$(systemd-escape "$F2")
start_ok "service-with-filter@$I2.service" "a filter with '/' loads (its default ping passes)"
pin_exists "$I2" || fail "no pin at /sys/fs/bpf/$I2"
ok "its pin is /sys/fs/bpf/$I2"
sd_ctl stop "bpf-firewall@$I2.service" || fail "cannot stop bpf-firewall@$I2.service"

F3="udp && dst_port == 53"
I3=$(systemd-escape "$F3")
start_fails "service-with-filter@$I3.service" "service-with-filter@ fails when its filter drops the ping"
expect_eq "... with the ping's exit code" "$(sd_result "service-with-filter@$I3.service")" exit-code
sd_ctl stop "bpf-firewall@$I3.service" || fail "cannot stop bpf-firewall@$I3.service"

# ---- bpf-make + my-filtered-ping ----------------------------------------------
start_ok my-filtered-ping.service "my-filtered-ping passes the default bpf-make filter (ICMP)"
expect_eq "bpf-make is active" "$(sd_ctl is-active bpf-make.service)" active
pin_exists bpf-make || fail "no pin at /sys/fs/bpf/bpf-make"
ok "bpf-make pins /sys/fs/bpf/bpf-make"
sd_exec grep -q CGF_F_DST_PORT /run/bpf-make/filter.h || fail "/run/bpf-make/filter.h lacks the default filter"
ok "bpf-make builds in its RuntimeDirectory"
sd_write /run/systemd/system/bpf-make.service.d/10-filter.conf <<'EOF'
[Service]
Environment="FILTER=udp && dst_port == 53"
EOF
sd_ctl daemon-reload || fail "daemon-reload failed"
sd_ctl restart bpf-make.service || unit_fail bpf-make.service "bpf-make does not restart with a new FILTER"
start_fails my-filtered-ping.service "my-filtered-ping fails once FILTER (from a drop-in) drops ICMP"
sd_ctl stop bpf-make.service || fail "cannot stop bpf-make.service"
! pin_exists bpf-make || fail "/sys/fs/bpf/bpf-make is still there after stop"
! sd_exec test -e /run/bpf-make || fail "/run/bpf-make is still there after stop"
ok "stopping bpf-make removes its pin and build directory"

# ---- cgroup-sock-drop-filter + my-ping ------------------------------------------
start_fails my-ping.service "my-ping fails: its ingress filter drops every reply"
expect_eq "... with the ping's exit code" "$(sd_result my-ping.service)" exit-code
expect_eq "cgroup-sock-drop-filter is active" \
	"$(sd_ctl is-active cgroup-sock-drop-filter.service)" active
pin_exists cgroup-sock-drop || fail "no pin at /sys/fs/bpf/cgroup-sock-drop"
ok "cgroup-sock-drop-filter pins /sys/fs/bpf/cgroup-sock-drop"
sd_ctl stop cgroup-sock-drop-filter.service || fail "cannot stop cgroup-sock-drop-filter"
! pin_exists cgroup-sock-drop || fail "/sys/fs/bpf/cgroup-sock-drop is still there after stop"
ok "stopping cgroup-sock-drop-filter removes its pin"

# ---- transient units: systemd-run -p IPIngressFilterPath= -------------------------
F4="tcp && src_port == $PA"   # on ingress the server's port is the source
I4=$(systemd-escape "$F4")
start_ok "bpf-firewall@$I4.service" "bpf-firewall@ loads an ingress filter"
run_send() {
	sd_run --quiet --wait --pipe -p "IPIngressFilterPath=/sys/fs/bpf/$I4" \
		/usr/local/bin/cgfilter-probe send tcp 127.0.0.1 "$1" -t 1000 </dev/null
}
out=$(run_send "$PA" 2>&1) || fail "systemd-run to the allowed port failed: $out"
expect_eq "a transient unit reaches the allowed port" "$out" "reply from 127.0.0.1 port $PA"
if out=$(run_send "$PB" 2>&1); then
	fail "a transient unit reached the dropped port: $out"
fi
ok "a transient unit does not reach the dropped port"
sd_ctl stop "bpf-firewall@$I4.service" || fail "cannot stop bpf-firewall@$I4.service"

# ---- the reference's first example, then IPIngressFilterPath= ---------------------
# load_and_control_filter -m 100 -t ingress PIN: packets longer than 100 bytes
# (from the IP header) that the unit receives are dropped
sd_exec sh -c 'printf q | /usr/local/bin/load_and_control_filter -m 100 -t ingress /sys/fs/bpf/ingressfilter' \
	>/dev/null 2>&1 || fail "load_and_control_filter -m 100 -t ingress /sys/fs/bpf/ingressfilter failed"
ok "load_and_control_filter -m 100 -t ingress PIN loads without -c"
mtu_send() {
	sd_run --quiet --wait --pipe -p IPIngressFilterPath=/sys/fs/bpf/ingressfilter \
		/usr/local/bin/cgfilter-probe send tcp 127.0.0.1 "$PA" -t 1000 -m "$1" </dev/null
}
out=$(mtu_send short 2>&1) || fail "a short echo through the MTU filter failed: $out"
expect_eq "IPIngressFilterPath= with that pin passes a short reply" "$out" "reply from 127.0.0.1 port $PA"
if out=$(mtu_send "$(head -c 200 /dev/zero | tr '\0' x)" 2>&1); then
	fail "a 200-byte echo passed an MTU of 100: $out"
fi
ok "... and drops a reply longer than the MTU"
sd_exec /usr/local/bin/load_and_control_filter --unload /sys/fs/bpf/ingressfilter >/dev/null 2>&1 ||
	fail "cannot unload /sys/fs/bpf/ingressfilter"

# ---- a missing pin: the unit does not start ------------------------------------
sd_write /run/systemd/system/cgft-missing-pin.service <<'EOF'
[Service]
Type=oneshot
IPEgressFilterPath=/sys/fs/bpf/cgft-no-such-pin
ExecStart=/bin/true
EOF
sd_ctl daemon-reload || fail "daemon-reload failed"
start_fails cgft-missing-pin.service "a unit whose pin is missing does not start"
expect_eq "... with result 'resources'" "$(sd_result cgft-missing-pin.service)" resources
if sd_run --quiet --unit=cgft-missing-run --wait \
	-p IPIngressFilterPath=/sys/fs/bpf/cgft-no-such-pin /bin/true 2>/dev/null; then
	fail "a transient unit with a missing pin ran"
fi
expect_eq "a transient unit with a missing pin fails with result 'resources'" \
	"$(sd_result cgft-missing-run.service)" resources
