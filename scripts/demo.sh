#!/usr/bin/env bash
# `make demo` (after the dependencies and the build): start
# service-with-filter@ for a filter, which loads bpf-firewall@ for the same
# filter, and show one connection allowed and one dropped; then stop it.
#
# With systemd as PID 1 the units are installed for real (make install, to
# /usr/local; `make uninstall` removes them) and run by the host's systemd;
# everything else the demo starts or writes is removed at the end.  Without
# it (containers, CI), a private systemd runs in throwaway namespaces
# (tests/sysd.sh) on a scratch install, and the host is left as it was.
TOP=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "make demo: needs root (it loads BPF programs into the kernel)" >&2; exit 1; }
# lib.sh: cleanup on exit (at_exit), T_ID for names, where cgroup2 is
. "$TOP/tests/lib.sh"
T_NO_CHECKS_OK=1
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || { echo "make demo: $PROBE is not built (run make)" >&2; exit 1; }
die() { echo "make demo: $*" >&2; exit 1; }

# ---- two echo servers on 127.0.0.1, on free ports in 22000-22999 ---------------
make_tmpdir TMP
PORTS=()
for port in $(seq $((22000 + $$ % 900)) 22999); do
	"$PROBE" listen tcp "$port" -a 127.0.0.1 >"$TMP/listen-$port" 2>&1 &
	pid=$!
	for _ in $(seq 40); do
		grep -qs listening "$TMP/listen-$port" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if grep -qs listening "$TMP/listen-$port"; then
		at_exit kill "$pid"
		PORTS+=("$port")
		[ ${#PORTS[@]} -lt 2 ] || break
	else
		kill "$pid" 2>/dev/null
	fi
done
[ ${#PORTS[@]} -eq 2 ] || die "no two free TCP ports in 22000-22999"
ALLOW=${PORTS[0]} DROP=${PORTS[1]}
for p in "$ALLOW" "$DROP"; do
	"$PROBE" send tcp 127.0.0.1 "$p" -t 1000 >/dev/null 2>&1 ||
		die "the echo server on port $p does not answer even without a filter"
done

FILTER="icmp || (tcp && dst_port == $ALLOW)"
INST=$(systemd-escape "$FILTER")
SERVICE="service-with-filter@$INST.service"
LOADER="bpf-firewall@$INST.service"

# ---- where systemd is -------------------------------------------------------------
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && [ -d /run/systemd/system ]; then
	MODE=host
	BINDIR=/usr/local/bin
	echo "cgfilter demo: systemd is PID 1: installing the units (make install, PREFIX=/usr/local)"
	make -C "$TOP" --no-print-directory install >"$TMP/install.log" 2>&1 ||
		{ cat "$TMP/install.log" >&2; die "make install failed"; }
	ctl() { systemctl "$@"; }
	in_sd() { "$@"; }
	systemctl daemon-reload
else
	MODE=ns
	echo "cgfilter demo: systemd is not PID 1 here: running a private systemd in throwaway namespaces"
	. "$TOP/tests/sysd.sh"
	need_sysd
	DEST=$TMP/dest
	make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 ||
		{ cat "$TMP/install.log" >&2; die "make install DESTDIR=$DEST failed"; }
	BINDIR=/usr/local/bin
	sd_boot --bind "$DEST/usr/local" /usr/local "$DEST/usr/local/lib/systemd/system"
	ctl() { sd_ctl "$@"; }
	in_sd() { sd_exec "$@"; }
fi

# The demo's own ExecStart: a runtime drop-in for this one instance, removed
# at the end.  The unit itself just pings.
DROPIN=/run/systemd/system/$SERVICE.d
LOG=/run/cgfilter-demo-$T_ID.log
undo() {
	ctl stop "$SERVICE" "$LOADER"
	ctl reset-failed "$SERVICE" "$LOADER"
	in_sd rm -rf "$DROPIN" "$LOG"
	ctl daemon-reload
}
at_exit undo
in_sd mkdir -p "$DROPIN"
# shellcheck disable=SC2016 # $1 is expanded by the inner sh
in_sd sh -c 'cat >"$1"' demo "$DROPIN/demo.conf" <<EOF
[Service]
ExecStart=
ExecStart=-$BINDIR/cgfilter-probe send tcp 127.0.0.1 $ALLOW -t 1000
ExecStart=-$BINDIR/cgfilter-probe send tcp 127.0.0.1 $DROP -t 1000
StandardOutput=append:$LOG
StandardError=inherit
EOF
ctl daemon-reload

echo
echo "  filter:    $FILTER"
echo "  instance:  $INST  (systemd-escape of the filter)"
echo "  start:     service-with-filter@<instance>.service"
ctl start "$SERVICE" || die "cannot start $SERVICE (see systemctl status)"
echo "             which started bpf-firewall@<instance>.service: pinned at /sys/fs/bpf/<instance>"
echo "  the service connects to two echo servers on 127.0.0.1:"
log=$(in_sd cat "$LOG")
for p in "$ALLOW" "$DROP"; do
	if grep -qx "reply from 127.0.0.1 port $p" <<<"$log"; then
		verdict="reply     -> allowed"
	else
		verdict="no reply  -> dropped"
	fi
	printf '    tcp port %s: %s\n' "$p" "$verdict"
done
ctl stop "$LOADER"
if in_sd test -e "/sys/fs/bpf/$INST"; then
	die "the pin /sys/fs/bpf/$INST is still there after stopping $LOADER"
fi
echo "  stop:      bpf-firewall@<instance>.service: pin removed"
echo
if ! grep -qx "reply from 127.0.0.1 port $ALLOW" <<<"$log" ||
	grep -qx "reply from 127.0.0.1 port $DROP" <<<"$log"; then
	die "unexpected result: $log"
fi
if [ $MODE = host ]; then
	echo "Done.  The units stay installed in /usr/local (make uninstall removes them)."
else
	echo "Done.  The namespaces now go away with all in them; the host is left as it was."
fi
