#!/usr/bin/env bash
# cgfilter enable, disable and status in a private systemd (tests/sysd.sh),
# with the units `make install` puts in place and /etc/systemd/system and
# /etc/cgfilter of the namespace scratch directories of the test:
# - a running service: enable says which restart puts the filter in force,
#   status exits 1 until then (read from the kernel), the filter then drops
#   and passes loopback traffic as it says, a second enable changes it live
#   (same MainPID), status says NO GUARD or NOT CONFIGURED when a later
#   drop-in resets the ExecStartPre= check or a direction, disable leaves
#   the unit files exactly as they were;
# - a socket-activated service: enable gives its .socket unit the filter
#   too, which is the one on the connections it passes in;
# - bad input (a bad filter, no such unit, a file enable did not write, a
#   drop-in directory of the user's) changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_cmd make clang python3
PROBE=$BUILD/tools/cgfilter-probe
[ -x "$PROBE" ] || skip "$PROBE is not built (make tools)"

make_tmpdir TMP
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
CGF=/usr/local/bin/cgfilter

# /etc/cgfilter and /etc/systemd/system inside are scratch directories
ETC=$TMP/etc-cgfilter
SYS=$TMP/etc-systemd
mkdir "$ETC" "$SYS"
if [ ! -d /etc/cgfilter ]; then
	mkdir /etc/cgfilter
	at_exit rmdir /etc/cgfilter
fi
[ -d /etc/systemd/system ] || skip "/etc/systemd/system is not there to bind over"

PW=$(free_port)
PS=$(free_port)

# the user's units, in /etc/systemd/system as on a real system; a service
# with a drop-in directory and an ExecStartPre= of its own (as nginx -t)
cat >"$SYS/cgft-web.service" <<EOF
[Service]
ExecStartPre=/bin/true
ExecStart=/usr/local/bin/cgfilter-probe listen tcp $PW -a 127.0.0.1
EOF
mkdir "$SYS/cgft-web.service.d"
printf '[Service]\nEnvironment=USER_DROPIN=1\n' >"$SYS/cgft-web.service.d/user.conf"
cat >"$SYS/cgft-sk.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$PS
FileDescriptorName=sk
EOF
cat >"$SYS/cgft-sk.service" <<EOF
[Service]
ExecStart=/usr/bin/python3 /usr/local/share/cgft-echod.py
EOF
# a socket unit that nothing has loaded yet (never started): enable must
# find it by its name, or it would start its service unfiltered
PL=$(free_port)
cat >"$SYS/cgft-lazy.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$PL
EOF
cp "$SYS/cgft-sk.service" "$SYS/cgft-lazy.service"
# a name with dots, a unit that is not running; one whose filter has the same
# name; a user's drop-in named as enable's
cat >"$SYS/cgft.dot.service" <<EOF
[Service]
ExecStart=/bin/sleep 600
EOF
cp "$SYS/cgft.dot.service" "$SYS/cgft_dot.service"
cp "$SYS/cgft.dot.service" "$SYS/cgft-own.service"
mkdir "$SYS/cgft-own.service.d"
printf '[Service]\nIPEgressFilterPath=/sys/fs/bpf/mine\n' >"$SYS/cgft-own.service.d/cgfilter.conf"
mkdir -p "$DEST/usr/local/share"
cp "$TOP/tests/wrap/echod.py" "$DEST/usr/local/share/cgft-echod.py"

# what the files are now: paths, modes and contents
tree_state() { (cd "$1" && find . -printf '%p %M\n' | sort && find . -type f -exec sha256sum {} + | sort); }
sys0=$(tree_state "$SYS")
etc0=$(tree_state "$ETC")

sd_boot --bind "$DEST/usr/local" /usr/local --bind "$ETC" /etc/cgfilter \
	--bind "$SYS" /etc/systemd/system --unit-path /etc/systemd/system \
	"$DEST/usr/local/lib/systemd/system"
ok "systemd boots with the installed units and the user's units in /etc/systemd/system"

# ---- a running service ---------------------------------------------------------------
start_ok cgft-web.service "the user's service starts"
answered 127.0.0.3 "$PW" hi "without a filter, 127.0.0.3 is answered"

# the filter passes 127.0.0.2 only, both ways
F2='src_ip == 127.0.0.2 || dst_ip == 127.0.0.2'
sd_exec "$CGF" enable cgft-web.service "$F2" >"$TMP/out" 2>&1 || fail "enable failed: $(cat "$TMP/out")"
expect_eq "enable of a running service says which restart puts the filter in force" "$(cat "$TMP/out")" \
	"cgft-web.service runs without this filter: it applies after 'systemctl restart cgft-web.service'"
expect_eq "the filter file is the filter, marked as enable's" "$(cat "$ETC/cgft-web.filter")" \
	"# Written by cgfilter enable cgft-web.service
$F2"
d=$SYS/cgft-web.service.d/cgfilter.conf
grep -qx 'Requires=cgfilter@cgft-web.service' "$d" &&
	grep -qx 'After=cgfilter@cgft-web.service' "$d" &&
	grep -qx 'IPIngressFilterPath=/sys/fs/bpf/cgfilter/cgft-web' "$d" &&
	grep -qx 'IPEgressFilterPath=/sys/fs/bpf/cgfilter/cgft-web' "$d" &&
	grep -qx "ExecStartPre=$CGF check --quiet /sys/fs/bpf/cgfilter/cgft-web" "$d" ||
	fail "the drop-in: $(cat "$d")"
ok "the drop-in requires the loader, names the pin both ways and checks it"
expect_eq "systemd was reloaded: it names the pin" \
	"$(sd_ctl show -P IPIngressFilterPath cgft-web.service)" /sys/fs/bpf/cgfilter/cgft-web
expect_status "status: enabled but not in force is exit 1" 1 "" sd_exec "$CGF" status
sd_exec "$CGF" status >"$TMP/st" || true
grep -q '^cgft-web.service .* NOT ATTACHED (nothing at the pin: restart the unit)$' "$TMP/st" || fail "status: $(cat "$TMP/st")"
ok "status says the filter is not attached"

pid0=$(sd_ctl show -P MainPID cgft-web.service)
sd_ctl restart cgft-web.service || unit_fail cgfilter@cgft-web.service "restart failed"; ok "the service restarts with the filter (and its loader)"
expect_eq "the loader is active" "$(sd_ctl is-active cgfilter@cgft-web.service)" active
sd_exec "$CGF" status >"$TMP/st" || fail "status after the restart: exit $?: $(cat "$TMP/st")"
grep -q '^cgft-web.service  *active  *both  */sys/fs/bpf/cgfilter/cgft-web  *attached$' "$TMP/st" ||
	fail "status: $(cat "$TMP/st")"
ok "status: attached, exit 0"
# a later drop-in that resets the guard, makes its failure ignored, or
# runs another program with its words: the unit would start with a wrong
# object at the pin, unfiltered
override() { # TEXT: the override drop-in, read by systemd
	printf '[Service]\n%s\n' "$1" >"$SYS/cgft-web.service.d/zz-override.conf"
	sd_ctl daemon-reload || fail "daemon-reload failed"
}
GUARD="check --quiet /sys/fs/bpf/cgfilter/cgft-web"
for guard in "" "-$CGF $GUARD" "@/bin/true cgfilter $GUARD" "/bin/echo $GUARD ;"; do
	override "$(printf 'ExecStartPre=\nExecStartPre=%s' "$guard")"
	expect_status "status: the guard replaced by a later drop-in ('$guard') is exit 1" 1 "" \
		sd_exec "$CGF" status cgft-web.service
	sd_exec "$CGF" status cgft-web.service >"$TMP/st" || true
	grep -q '^cgft-web.service .* NO GUARD (ExecStartPre= does not run cgfilter check: reset by a later drop-in?)$' \
		"$TMP/st" || fail "status with the guard replaced ('$guard'): $(cat "$TMP/st")"
done
# the same guard written otherwise is still the guard
override "$(printf 'ExecStartPre=\nExecStartPre=@%s cgfilter %s' "$CGF" "$GUARD")"
expect_ok "status: the guard as '@$CGF cgfilter $GUARD' is exit 0" sd_exec "$CGF" status cgft-web.service
# a later drop-in that takes one direction's filter away
override "IPIngressFilterPath="
expect_status "status: a later drop-in resetting IPIngressFilterPath= is exit 1" 1 "" \
	sd_exec "$CGF" status cgft-web.service
sd_exec "$CGF" status cgft-web.service >"$TMP/st" || true
grep -qF "NOT CONFIGURED (systemd names the pin for egress only, enable wrote both: a later drop-in?)" "$TMP/st" ||
	fail "status with ingress reset: $(cat "$TMP/st")"
rm "$SYS/cgft-web.service.d/zz-override.conf"
sd_ctl daemon-reload || fail "daemon-reload failed"
expect_ok "status: the override gone, exit 0 again" sd_exec "$CGF" status cgft-web.service
ok "status: a guard reset, ignored or replaced, or a direction taken away, by a later drop-in: exit 1, and why"
answered 127.0.0.2 "$PW" hi "127.0.0.2 is answered through the filter"
expect_eq "127.0.0.3 is dropped" "$(client 127.0.0.3 "$PW")" timeout
[ "$(sd_ctl show -P MainPID cgft-web.service)" != "$pid0" ] || fail "the service did not restart"

# enable again: a live change, no restart
pid1=$(sd_ctl show -P MainPID cgft-web.service)
F3='src_ip == 127.0.0.3 || dst_ip == 127.0.0.3'
# (files an enable killed before its renames left: this one removes them)
touch "$ETC/cgft-web.filter.cgf-Ab3dEf" "$SYS/cgft-web.service.d/cgfilter.conf.cgf-Ab3dEf"
sd_exec "$CGF" enable cgft-web.service "$F3" >"$TMP/out" 2>&1 || fail "enable failed: $(cat "$TMP/out")"
[ ! -e "$ETC/cgft-web.filter.cgf-Ab3dEf" ] && [ ! -e "$SYS/cgft-web.service.d/cgfilter.conf.cgf-Ab3dEf" ] ||
	fail "enable left the temporary files of a killed enable"
expect_eq "a second enable puts the new filter in force now" "$(cat "$TMP/out")" \
	"/sys/fs/bpf/cgfilter/cgft-web: the new filter of cgft-web.service is in force"
answered 127.0.0.3 "$PW" hi "127.0.0.3 is answered after the live change"
expect_eq "127.0.0.2 is dropped now" "$(client 127.0.0.2 "$PW")" timeout
expect_eq "same MainPID" "$(sd_ctl show -P MainPID cgft-web.service)" "$pid1"
sd_ctl reload cgfilter@cgft-web.service || fail "systemctl reload of the loader failed"
sd_exec "$CGF" show /sys/fs/bpf/cgfilter/cgft-web | has -F "$F3" ||
	fail "after reload, show: $(sd_exec "$CGF" show /sys/fs/bpf/cgfilter/cgft-web)"
ok "systemctl reload of the loader reads the file enable wrote"

# a mode other than enforce: status says so, exit 1; enable says the new
# filter is loaded but not in force (it said "in force", exit 0, while the
# engine passed everything)
W=/sys/fs/bpf/cgfilter/cgft-web
sd_exec "$CGF" mode "$W" pass >/dev/null || fail "mode pass failed"
expect_status "status: mode pass is exit 1" 1 "" sd_exec "$CGF" status cgft-web.service
sd_exec "$CGF" status cgft-web.service >"$TMP/st" || true
has -F "MODE PASS (it passes everything: cgfilter mode $W enforce)" "$TMP/st" ||
	fail "status in mode pass: $(cat "$TMP/st")"
sd_exec "$CGF" enable cgft-web.service "$F3" >"$TMP/out" 2>&1 || fail "enable failed: $(cat "$TMP/out")"
expect_eq "enable in mode pass says the new filter is not in force" "$(cat "$TMP/out")" \
	"$W: the new filter of cgft-web.service is loaded, but not in force: MODE PASS (it passes everything; cgfilter mode $W enforce puts it in force)"
sd_exec "$CGF" mode "$W" enforce >/dev/null || fail "mode enforce failed"
expect_ok "status: enforce again, exit 0" sd_exec "$CGF" status cgft-web.service

# bad input changes nothing
st=$(tree_state "$SYS")$(tree_state "$ETC")
expect_status "a bad filter is refused" 1 "bad filter" sd_exec "$CGF" enable cgft-web.service 'tcp &&'
expect_status "no such unit is refused" 1 "cgft-none.service: no such unit" \
	sd_exec "$CGF" enable cgft-none.service tcp
expect_status "a unit that is neither service nor socket is refused" 2 "not the name of a .service or .socket unit" \
	sd_exec "$CGF" enable cgft-web.timer tcp
for u in apps shared; do
	expect_status "$u.service is refused: its filter would be cgfilter-$u's" 1 \
		"its filter would be /sys/fs/bpf/cgfilter/$u, which cgfilter-$u.service loads" \
		sd_exec "$CGF" enable "$u.service" tcp
done
printf 'tcp\n' >"$ETC/cgft-sk.filter"
expect_status "a template is refused" 2 "cgft-x@.service is a template: name an instance" \
	sd_exec "$CGF" enable cgft-x@.service tcp
expect_status "a drop-in of the user's named cgfilter.conf is refused" 1 \
	"/etc/systemd/system/cgft-own.service.d/cgfilter.conf exists and cgfilter enable cgft-own.service did not write it" \
	sd_exec "$CGF" enable cgft-own.service tcp
expect_status "a named set the filter does not declare is refused (the loader could not load it)" 1 \
	"@nosuch" sd_exec "$CGF" enable cgft-web.service 'src_ip in @nosuch'
expect_status "a filter file enable did not write is refused" 1 \
	"/etc/cgfilter/cgft-sk.filter exists and cgfilter enable cgft-sk.service did not write it" \
	sd_exec "$CGF" enable cgft-sk.service tcp
rm "$ETC/cgft-sk.filter"
expect_eq "bad input changed no file" "$(tree_state "$SYS")$(tree_state "$ETC")" "$st"
answered 127.0.0.3 "$PW" hi "... and not the filter in force"

# ---- a socket-activated service ----------------------------------------------------------
start_ok cgft-sk.socket "the user's socket unit starts"
answered 127.0.0.3 "$PS" sk:hi "its service answers 127.0.0.3"
sd_exec "$CGF" enable cgft-sk.service "$F2" >"$TMP/out" 2>&1 || fail "enable failed: $(cat "$TMP/out")"
expect_eq "enable says how to restart the socket unit" "$(cat "$TMP/out")" \
	"cgft-sk.service runs without this filter: it applies after 'systemctl stop cgft-sk.service && systemctl restart cgft-sk.socket'"
grep -qx 'IPIngressFilterPath=/sys/fs/bpf/cgfilter/cgft-sk' "$SYS/cgft-sk.socket.d/cgfilter.conf" &&
	grep -qx '\[Socket\]' "$SYS/cgft-sk.socket.d/cgfilter.conf" ||
	fail "the socket unit's drop-in: $(cat "$SYS/cgft-sk.socket.d/cgfilter.conf")"
ok "the socket unit gets the drop-in too"
expect_status "status: exit 1 while the socket-activated service runs without it" 1 "" sd_exec "$CGF" status cgft-sk.service
after=$(sd_ctl show -P After cgfilter@cgft-sk.service)
case " $after " in *" basic.target "*) fail "the loader starts after basic.target, which a socket unit cannot wait for: $after" ;; esac
expect_eq "the loader has no default dependencies (a socket unit starts before basic.target)" \
	"$(sd_ctl show -P DefaultDependencies cgfilter@cgft-sk.service)" no
sd_exec sh -c 'systemctl stop cgft-sk.service && systemctl restart cgft-sk.socket' ||
	fail "the restart enable named failed"
ok "the restart enable names works"
answered 127.0.0.2 "$PS" sk:hi "the passed-in socket answers 127.0.0.2"
expect_eq "... and drops 127.0.0.3" "$(client 127.0.0.3 "$PS")" timeout
sd_exec "$CGF" status cgft-sk.service >"$TMP/st" || fail "status: exit $?: $(cat "$TMP/st")"
grep -q '^cgft-sk.socket .* attached$' "$TMP/st" && grep -q '^cgft-sk.service .* attached$' "$TMP/st" ||
	fail "status: $(cat "$TMP/st")"
ok "status: the socket unit and the service both have it"
sd_exec "$CGF" enable cgft-sk.service "$F3" >/dev/null || fail "the second enable failed"
answered 127.0.0.3 "$PS" sk:hi "a second enable changes the socket unit's filter live"
sd_exec "$CGF" enable cgft-lazy.service "$F2" >/dev/null || fail "enable of cgft-lazy.service failed"
grep -qx 'IPIngressFilterPath=/sys/fs/bpf/cgfilter/cgft-lazy' "$SYS/cgft-lazy.socket.d/cgfilter.conf" ||
	fail "a socket unit not loaded at enable got no drop-in: $(ls "$SYS")"
ok "a socket unit of the service's name, never started, gets the drop-in too"
sd_exec "$CGF" disable cgft-lazy.service >/dev/null || fail "disable of cgft-lazy.service failed"

# ---- a unit not running, with dots in its name, one direction; an enable cut short -----
# (its filter file written, its drop-in not: what a kill -9 between the two leaves)
printf '# Written by cgfilter enable cgft.dot.service\ntcp\n' >"$ETC/cgft_dot.filter"
sd_exec "$CGF" enable --ingress cgft.dot.service 'udp' >"$TMP/out" 2>&1 || fail "enable failed: $(cat "$TMP/out")"
expect_eq "enable of a unit not running" "$(cat "$TMP/out")" \
	"cgft.dot.service is not running: the filter applies when it starts"
expect_eq "a name with dots: its filter file has _ for them" "$(tail -n 1 "$ETC/cgft_dot.filter")" udp
grep -q '^IPEgressFilterPath=' "$SYS/cgft.dot.service.d/cgfilter.conf" && fail "--ingress wrote an egress filter"
start_ok cgft.dot.service "it starts with its filter"
sd_exec "$CGF" status cgft.dot.service >"$TMP/st" || fail "status: exit $?: $(cat "$TMP/st")"
grep -q '^cgft.dot.service  *active  *ingress  */sys/fs/bpf/cgfilter/cgft_dot  *attached$' "$TMP/st" ||
	fail "status: $(cat "$TMP/st")"
ok "status: the ingress filter of a unit with dots in its name is attached"
expect_status "a unit whose filter name is taken is refused" 1 \
	"/etc/cgfilter/cgft_dot.filter exists and cgfilter enable cgft_dot.service did not write it" \
	sd_exec "$CGF" enable cgft_dot.service tcp
[ -e "$SYS/cgft_dot.service.d" ] && fail "the refused enable wrote a drop-in"
# the file edited, not applied: status says the filter in force is not the file's
printf '# Written by cgfilter enable cgft.dot.service\nudp || icmp\n' >"$ETC/cgft_dot.filter"
expect_status "status: a filter file that is not the filter in force is exit 1" 1 "" \
	sd_exec "$CGF" status cgft.dot.service
sd_exec "$CGF" status cgft.dot.service >"$TMP/st" || true
grep -q "NOT THE FILE'S (run cgfilter enable again)$" "$TMP/st" || fail "status: $(cat "$TMP/st")"
ok "... and says so"
sd_ctl reload cgfilter@cgft_dot.service || fail "reload of the loader failed"
expect_ok "after the loader's reload, status is 0" sd_exec "$CGF" status cgft.dot.service
# the loader fails (a bad filter file, restarted): it stops the unit
# (Requires=); status names the loader, exit 1 (it said "not running", 0)
cp "$ETC/cgft_dot.filter" "$TMP/dot.filter"
printf '# Written by cgfilter enable cgft.dot.service\ntcp &&\n' >"$ETC/cgft_dot.filter"
sd_ctl restart cgfilter@cgft_dot.service 2>/dev/null && fail "the loader started with a bad filter"
expect_status "status: the loader failed is exit 1" 1 "" sd_exec "$CGF" status cgft.dot.service
sd_exec "$CGF" status cgft.dot.service >"$TMP/st" || true
has -F "LOADER FAILED (journalctl -u cgfilter@cgft_dot.service)" "$TMP/st" || fail "status: $(cat "$TMP/st")"
ok "... and names the loader"
cp "$TMP/dot.filter" "$ETC/cgft_dot.filter"
sd_ctl reset-failed cgfilter@cgft_dot.service || fail "reset-failed failed"
sd_ctl stop cgft.dot.service || fail "cannot stop cgft.dot.service"
sd_exec "$CGF" status cgft.dot.service | has ' not running$' || fail "status of a stopped unit"
expect_ok "status of an enabled unit that is not running: exit 0" sd_exec "$CGF" status cgft.dot.service
sd_exec "$CGF" disable cgft.dot.service >/dev/null || fail "disable of cgft.dot.service failed"

# ---- disable: exactly what enable wrote goes --------------------------------------------
expect_eq "before disable, the filter drops 127.0.0.2" "$(client 127.0.0.2 "$PW")" timeout
sd_exec "$CGF" disable cgft-web.service >"$TMP/out" || fail "disable failed"
grep -q "^cgft-web.service runs without a filter now$" "$TMP/out" ||
	fail "disable: $(cat "$TMP/out")"
ok "disable says the running service runs without a filter now"
answered 127.0.0.2 "$PW" hi "... and it does: 127.0.0.2, which its filter dropped, is answered"
sd_exec "$CGF" disable cgft-sk.service >"$TMP/out" || fail "disable failed"
expect_eq "disable leaves /etc/systemd/system exactly as before enable" "$(tree_state "$SYS")" "$sys0"
expect_eq "... and /etc/cgfilter" "$(tree_state "$ETC")" "$etc0"
expect_eq "the loader is stopped" "$(sd_ctl is-active cgfilter@cgft-web.service)" inactive
expect_eq "systemd no longer names the pin" "$(sd_ctl show -P IPIngressFilterPath cgft-web.service)" ""
expect_eq "the service kept running" "$(sd_ctl is-active cgft-web.service)" active
start_ok cgft-web.service "after a restart" restart
answered 127.0.0.2 "$PW" hi "the service runs unfiltered again"
expect_status "disable of a unit without a filter" 1 "cgft-web.service has no filter of cgfilter enable" \
	sd_exec "$CGF" disable cgft-web.service
expect_eq "status with nothing enabled" "$(sd_exec "$CGF" status)" "no unit has a filter of cgfilter enable"

# without systemd running (the host here, when PID 1 is not systemd): refused
# before anything is written
if [ ! -d /run/systemd/system ]; then
	expect_status "enable without systemd is refused" 1 "systemd is not running here" \
		"$BUILD/cgfilter/cgfilter" enable cgft-web.service tcp
	[ -e /etc/cgfilter/cgft-web.filter ] && fail "enable without systemd wrote /etc/cgfilter/cgft-web.filter"
	[ -e /etc/systemd/system/cgft-web.service.d ] && fail "enable without systemd wrote a drop-in"
	ok "... and writes nothing"
fi
