#!/usr/bin/env bash
# systemd before 243 has no IPEgressFilterPath=: a unit attaches the pinned
# port-firewall program to its own cgroup with bpftool in ExecStartPre=.  A
# real systemd (tests/sysd.sh) runs such units; traffic is real TCP on
# loopback.  Also: the same with IPAccounting=yes (systemd's programs next to
# ours), with and without Delegate=yes, across daemon-reload and set-property.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_cmd make clang bpftool
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || skip "$PROBE is not built (make tools)"
BPFTOOL=$(command -v bpftool)
PIN=/sys/fs/bpf/cgft-pf
SLICE=/sys/fs/cgroup/system.slice   # the unit cgroups, as the namespace sees them

# unit NAME: write /run/systemd/system/NAME from stdin and reload
unit() {
	sd_write "/run/systemd/system/$1"
	sd_ctl daemon-reload || fail "daemon-reload failed"
}
# progs UNIT: what is attached to the unit's cgroup, one "TYPE FLAGS NAME" a line, sorted
progs() {
	sd_exec "$BPFTOOL" cgroup show "$SLICE/$1" | awk 'NR > 1 { print $2, $3, $4 }' | sort
}
# prog_id UNIT NAME: the ID of the program NAME attached to the unit's cgroup
prog_id() {
	sd_exec "$BPFTOOL" cgroup show "$SLICE/$1" | awk -v n="$2" 'NR > 1 && $4 == n { print $1 }'
}
# send_from UNIT PORT: a TCP probe from a process in the unit's cgroup
send_from() {
	# shellcheck disable=SC2016 # expanded by the inner sh
	sd_exec sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" send tcp 127.0.0.1 "$3" -t 1000' \
		send_from "$SLICE/$1" /usr/local/bin/cgfilter-probe "$2" 2>&1
}
# filters UNIT WHAT: the unit reaches PA and not PB
filters() {
	local out
	out=$(send_from "$1" "$PA") || fail "$2: $1 cannot reach the allowed port $PA: $out"
	expect_eq "$2: $1 reaches the allowed port" "$out" "reply from 127.0.0.1 port $PA"
	if out=$(send_from "$1" "$PB"); then
		fail "$2: $1 reached the dropped port $PB: $out"
	fi
	expect_eq "$2: $1 does not reach the dropped port" "$out" \
		"cgfilter-probe: no connection to 127.0.0.1 port $PB: timed out"
}

# ---- install into a scratch DESTDIR; /usr/local inside is that ---------------
make_tmpdir TMP
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}

# ---- echo servers on the host (same network namespace), ports of our own -----
echo_server tcp PA 22000 22999   # the filter allows this port
echo_server tcp PB 22000 22999   # and drops this one
send_quiet() { "$PROBE" send tcp 127.0.0.1 "$1" -t 1000 >/dev/null 2>&1; }
expect_ok "echo servers answer without a filter" send_quiet "$PB"

# ---- boot, and pin the filter inside ----------------------------------------------
sd_boot --bind "$DEST/usr/local" /usr/local
sd_exec make --no-print-directory -C /usr/local/share/cgfilter/port-firewall O=/run/pf \
	"FILTER=tcp && dst_port == $PA" "PIN=$PIN" load >"$TMP/load.log" 2>&1 || {
	sed 's/^/    /' "$TMP/load.log" >&2
	fail "cannot load port-firewall at $PIN"
}
ok "port-firewall 'tcp && dst_port == $PA' pinned at $PIN"

ATTACH="$BPFTOOL cgroup attach $SLICE/%n egress pinned $PIN multi"
DETACH="$BPFTOOL cgroup detach $SLICE/%n egress pinned $PIN"

# ---- 1. the pre-243 workaround: ExecStartPre= attaches the pinned program --------
U=cgft-manual.service
unit $U <<EOF
[Service]
ExecStartPre=$ATTACH
ExecStart=/bin/sleep infinity
EOF
info "unit text: $(sd_exec cat /run/systemd/system/$U | tr '\n' '|')"
start_ok $U "a unit attaches the pinned program in ExecStartPre="
expect_eq "the program is attached to the unit's cgroup with the multi flag" \
	"$(progs $U)" "cgroup_inet_egress multi port_firewall"
filters $U "ExecStartPre= attach"

sd_ctl stop $U || fail "cannot stop $U"
! sd_exec test -e "$SLICE/$U" || fail "$SLICE/$U is still there after stop"
ok "stop removes the unit's cgroup, and the attachment with it"
start_ok $U "start after stop attaches again"
expect_eq "... exactly once" "$(progs $U)" "cgroup_inet_egress multi port_firewall"
start_ok $U "systemctl restart succeeds" restart
expect_eq "... and attaches exactly once" "$(progs $U)" "cgroup_inet_egress multi port_firewall"
filters $U "after restart"

# the kernel refuses the same program twice on one cgroup (EINVAL on 6.18); bpftool
# says only "failed to attach program"
if out=$(sd_exec "$BPFTOOL" cgroup attach "$SLICE/$U" egress pinned "$PIN" multi 2>&1); then
	fail "attaching $PIN a second time succeeded"
fi
expect_eq "attaching the same program twice (multi) fails" "$out" "Error: failed to attach program"
expect_eq "... and leaves one attachment" "$(progs $U)" "cgroup_inet_egress multi port_firewall"
sd_ctl stop $U || fail "cannot stop $U"

# with User=, the ExecStartPre= runs as that user and cannot open the pin: '+'
U=cgft-manual-user.service
unit $U <<EOF
[Service]
User=nobody
ExecStartPre=$ATTACH
ExecStart=/bin/sleep infinity
EOF
start_fails $U "with User=nobody, ExecStartPre= without '+' fails"
sd_journal $U | has -F "bpf obj get (/sys/fs/bpf): Permission denied" ||
	unit_fail $U "bpftool does not say 'Permission denied' on the pin"
ok "... bpftool: 'bpf obj get (/sys/fs/bpf): Permission denied'"
unit $U <<EOF
[Service]
User=nobody
ExecStartPre=+$ATTACH
ExecStart=/bin/sleep infinity
EOF
start_ok $U "with User=nobody, ExecStartPre=+ attaches"
filters $U "ExecStartPre=+ with User=nobody"
sd_ctl stop $U || fail "cannot stop $U"

# a cgroup that outlives stop (a process left behind, here by KillMode=process)
# keeps the program: the next start's attach fails, unless ExecStopPost= detaches
U=cgft-manual-linger.service
unit $U <<EOF
[Service]
KillMode=process
ExecStartPre=$ATTACH
ExecStart=/bin/sh -c 'sleep infinity & exec sleep infinity'
EOF
start_ok $U "a unit that leaves a process behind starts"
sd_ctl stop $U || fail "cannot stop $U"
sd_exec test -e "$SLICE/$U" || fail "$SLICE/$U went away although a process remains"
expect_eq "its cgroup survives stop, the program still attached" \
	"$(progs $U)" "cgroup_inet_egress multi port_firewall"
start_fails $U "the next start fails: the program is already attached"
sd_journal $U | has -F "Error: failed to attach program" ||
	unit_fail $U "bpftool does not say 'failed to attach program'"
ok "... bpftool: 'Error: failed to attach program'"
unit $U <<EOF
[Service]
KillMode=process
ExecStartPre=$ATTACH
ExecStopPost=-$DETACH
ExecStart=/bin/sh -c 'sleep infinity & exec sleep infinity'
EOF
sd_exec "$BPFTOOL" cgroup detach "$SLICE/$U" egress pinned "$PIN" || fail "cannot detach by hand"
start_ok $U "with ExecStopPost=-bpftool cgroup detach, the unit starts"
sd_ctl stop $U || fail "cannot stop $U"
expect_eq "stop detaches (the cgroup survives, empty of programs)" "$(progs $U)" ""
start_ok $U "... and starts again"
expect_eq "... attached once" "$(progs $U)" "cgroup_inet_egress multi port_firewall"
filters $U "ExecStopPost= detach"
sd_ctl stop $U || fail "cannot stop $U"

# ---- 2. IPAccounting=yes next to the manual attach, with and without Delegate= --
ALL="cgroup_inet_egress multi port_firewall
cgroup_inet_egress multi sd_fw_egress
cgroup_inet_ingress multi sd_fw_ingress"
for delegate in yes no; do
	U=cgft-acct-delegate-$delegate.service
	unit $U <<EOF
[Service]
IPAccounting=yes
Delegate=$delegate
ExecStartPre=$ATTACH
ExecStart=/bin/sleep infinity
EOF
	info "unit text: $(sd_exec cat /run/systemd/system/$U | tr '\n' '|')"
	start_ok $U "IPAccounting=yes, Delegate=$delegate: the unit starts"
	expect_eq "Delegate=$delegate: systemd's programs and ours are attached, all multi" \
		"$(progs $U)" "$ALL"
	sd_exec "$BPFTOOL" cgroup show "$SLICE/$U" | sed 's/ *$//; s/^/    /'
	filters $U "IPAccounting=yes, Delegate=$delegate"
	eg=$(sd_ctl show -P IPEgressPackets $U)
	in=$(sd_ctl show -P IPIngressPackets $U)
	info "$(sd_ctl show -p IPEgressPackets,IPIngressPackets $U | tr '\n' ' ')"
	[[ $eg =~ ^[0-9]+$ && $eg -gt 0 && $in =~ ^[0-9]+$ && $in -gt 0 ]] ||
		fail "Delegate=$delegate: IPEgressPackets='$eg' IPIngressPackets='$in', want counts > 0"
	ok "Delegate=$delegate: IPEgressPackets and IPIngressPackets count"

	pf=$(prog_id $U port_firewall)
	sdfw=$(prog_id $U sd_fw_egress)
	sd_ctl daemon-reload || fail "daemon-reload failed"
	expect_eq "Delegate=$delegate: after daemon-reload all three are attached" "$(progs $U)" "$ALL"
	expect_eq "... ours is the same program (ID $pf)" "$(prog_id $U port_firewall)" "$pf"
	[ "$(prog_id $U sd_fw_egress)" != "$sdfw" ] || fail "systemd did not re-install sd_fw_egress"
	ok "... systemd replaced only its own (sd_fw_egress $sdfw -> $(prog_id $U sd_fw_egress))"
	filters $U "Delegate=$delegate, after daemon-reload"

	sd_ctl set-property --runtime $U IPAddressDeny=192.0.2.1 2>/dev/null ||
		fail "set-property $U IPAddressDeny= failed"
	expect_eq "Delegate=$delegate: after set-property IPAddressDeny= all three are attached" \
		"$(progs $U)" "$ALL"
	expect_eq "... ours is the same program (ID $pf)" "$(prog_id $U port_firewall)" "$pf"
	filters $U "Delegate=$delegate, after set-property"
	start_ok $U "Delegate=$delegate: restart succeeds" restart
	expect_eq "... all three attached once" "$(progs $U)" "$ALL"
	sd_ctl stop $U 2>/dev/null || fail "cannot stop $U"
done

# ---- 3. why Delegate=yes matters on older systemd ---------------------------
# Older systemd (from source, not run here: versions that already had
# IP*FilterPath= still did this; 252 no longer does) attached its own programs
# with the multi flag only for slices and Delegate=yes units, without it
# otherwise.  The kernel refuses to mix the two modes on one cgroup and attach
# point; shown with bpftool on a scratch cgroup: another program attached
# without multi, then ours with multi.
K=/sys/fs/cgroup/cgft-mix
sd_exec "$BPFTOOL" prog load /run/pf/port_firewall.bpf.o "$PIN-other" type cgroup/skb ||
	fail "cannot load a second program at $PIN-other"
sd_exec mkdir "$K" || fail "cannot create $K"
sd_exec "$BPFTOOL" cgroup attach "$K" egress pinned "$PIN-other" || fail "cannot attach without multi"
if command -v strace >/dev/null; then
	out=$(sd_exec strace -e trace=bpf "$BPFTOOL" cgroup attach "$K" egress pinned "$PIN" multi 2>&1 |
		grep -o 'BPF_PROG_ATTACH.*= -1 [A-Z]*' || true)
	case $out in *"= -1 EPERM") ok "multi over a non-multi attachment: EPERM" ;;
	*) fail "multi over a non-multi attachment: got '$out', want EPERM" ;; esac
else
	expect_fail "multi over a non-multi attachment fails" \
		sd_exec "$BPFTOOL" cgroup attach "$K" egress pinned "$PIN" multi
fi
expect_eq "... and leaves the other program alone" \
	"$(sd_exec "$BPFTOOL" cgroup show "$K" | awk 'NR > 1 { print $2, $3, $4 }')" "cgroup_inet_egress port_firewall "
sd_exec "$BPFTOOL" cgroup detach "$K" egress pinned "$PIN-other" || fail "cannot detach from $K"
sd_exec rmdir "$K" || fail "cannot remove $K"
sd_exec rm "$PIN-other" || fail "cannot remove $PIN-other"
