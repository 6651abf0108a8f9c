#!/usr/bin/env bash
# exe: filters by the executable that made a packet's socket.  The
# differential test against the reference model (tests/verdict/check_exe.py:
# random filters with exe, each packet from a given executable); then real
# sockets on loopback: two copies of one client at two paths in one cgroup
# with a filter naming one, only it connects; the file renamed still does;
# replaced (a new inode, as a package upgrade) it does not until the filter
# is set again; a server's accepted connections carry its listener's
# executable; a socket made while nothing recorded matches none, and the
# map of executables outlives 'exe-ids stop' for the filters reading it,
# and goes with the last of them (unload, then stop at once);
# block mode works for a filter naming a file gone; named sets of
# executables edited live; bad input refused.  In the private
# systemd: 'systemctl reload cgfilter@NAME' makes a replaced file match
# again, and cgfilter-apps.service is an application firewall on
# user.slice (an allowed program connects, another is dropped, mode pass
# lets it through, stop detaches).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_sysd
need_bpffs
need_cmd python3 make
CGF=$BUILD/cgfilter/cgfilter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$CGF" "$PROBE" "$BUILD/tests/exe-run"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
PIN=/sys/fs/bpf/${T_ID}_exe
CG=$CG2/$T_ID-exe.service
make_cgroup "$CG"
# the recorder of executables is the host's: stop it at the end unless it ran
# before, and its map once no filter reads it (unload frees its filters at
# once; should one still outlive it, stop is tried again for up to 10 s)
stop_exe_ids() {
	local i
	for i in $(seq 100); do
		"$CGF" exe-ids stop --force >/dev/null 2>&1
		[ -e /sys/fs/bpf/cgfilter-exe ] || return 0
		sleep 0.1
	done
	echo "51-exe: /sys/fs/bpf/cgfilter-exe still there 10 s after the test's engines went" >&2
}
OURS_EXE=
if [ ! -e /sys/fs/bpf/cgfilter-exe/record ]; then
	OURS_EXE=1
	at_exit stop_exe_ids
fi
at_exit "$CGF" unload --detach "$PIN"

# ---- against the reference model --------------------------------------------------------------
python3 "$TOP/tests/verdict/check_exe.py" --work "$TMP" --pin "${PIN}_diff" ||
	fail "exe disagrees with the reference (see above)"
ok "random filters with exe, packets from five executables: as the reference says"

# ---- real sockets --------------------------------------------------------------------------------
echo_server tcp PT 22300 22399
echo_server udp PU 22400 22499
mkdir "$TMP/bin"
A=$TMP/bin/client-a
B=$TMP/bin/client-b
cp "$PROBE" "$A"
cp "$PROBE" "$B"
in_cg() { bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cg "$CG" "$@"; }
connects() { in_cg "$1" send tcp 127.0.0.1 "$PT" -t "${2:-2000}" >/dev/null 2>&1; }
"$CGF" load "$PIN" "exe == \"$A\"" || fail "load failed"
"$CGF" attach "$PIN" "$CG" || fail "attach failed"
"$CGF" exe-ids >"$TMP/ids" || fail "exe-ids says executables are not recorded: $(cat "$TMP/ids")"
connects "$A" || fail "the copy named by the filter did not connect"
connects "$B" 300 && fail "the other copy connected"
ok "two copies of one client in one cgroup: only the one the filter names connects"
# the drop event names the unit and the executable
"$CGF" monitor "$PIN" -c 1 -t 10000 --json >"$TMP/mon" 2>"$TMP/mon.err" &
mon=$!
for _ in $(seq 30); do
	connects "$B" 200 && fail "the other copy connected"
	kill -0 "$mon" 2>/dev/null || break
done
wait "$mon" || fail "the monitor saw no drop: $(cat "$TMP/mon.err")"
python3 - "$TMP/mon" "$B" "$(basename "$CG")" <<'EOF' || fail "the drop event is wrong: $(cat "$TMP/mon")"
import json, os, sys
ev = json.loads(open(sys.argv[1]).readline())
# the path while a process runs it, else its device and inode
st = os.stat(sys.argv[2])
other = "device %d:%d inode %d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
assert ev["verdict"] == "drop" and ev["exe"] in (sys.argv[2], other) and ev["unit"] == sys.argv[3], ev
EOF
ok "the drop event names the unit and the executable that made the socket"
mv "$A" "$A.renamed"
connects "$A.renamed" || fail "the file renamed no longer connects"
ok "the file renamed still matches (its identity, not its name)"
cp "$B" "$A.new" && mv "$A.new" "$A"      # a new inode at the path, as a package upgrade
connects "$A" 300 && fail "a new file at the path matched before the filter was set again"
"$CGF" set "$PIN" "exe == \"$A\"" || fail "set failed"
connects "$A" || fail "after set, the new file did not connect"
connects "$A.renamed" 300 && fail "after set, the old file still connected"
ok "a file replaced at the path (new inode) matches only once the filter is set again"

# a server: its accepted sockets carry the executable that listened
S=$TMP/bin/server
T=$TMP/bin/server-t
cp "$PROBE" "$S"
cp "$PROBE" "$T"
SP=$((PT + 1))
TP=$((PT + 2))
bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" listen tcp "$3" -a 127.0.0.1' _ "$CG" "$S" "$SP" >"$TMP/ls" 2>&1 &
at_exit kill $!
bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" listen tcp "$3" -a 127.0.0.1' _ "$CG" "$T" "$TP" >"$TMP/lt" 2>&1 &
at_exit kill $!
for _ in $(seq 40); do grep -qs listening "$TMP/ls" && grep -qs listening "$TMP/lt" && break; sleep 0.05; done
"$CGF" set "$PIN" "exe == \"$S\"" || fail "set failed"
"$PROBE" send tcp 127.0.0.1 "$SP" -t 2000 >/dev/null || fail "a client could not reach the server the filter names"
"$PROBE" send tcp 127.0.0.1 "$TP" -t 300 >/dev/null 2>&1 && fail "a client reached the server the filter does not name"
ok "a server: its handshake and accepted connection carry its executable; another server's do not"

# a socket made while nothing records executables: its packets match none.
# exe-ids stop removes the recorder but keeps the map the filter in force
# reads; the next filter naming an executable starts a recorder writing that
# same map, so the filter set before agrees with it
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
"$CGF" set "$PIN" "exe == \"$PY\"" || fail "set failed"
ids_id() { bpftool map show pinned /sys/fs/bpf/cgfilter-exe/ids | sed -n 's/^\([0-9]*\):.*/\1/p'; }
map0=$(ids_id)
expect_status "exe-ids stop while a filter reads executables" 1 \
	"1 filter program read the executables of sockets" "$CGF" exe-ids stop
"$CGF" exe-ids | has "recorded for every socket made" || fail "a refused stop stopped the recorder"
"$CGF" exe-ids stop --force >"$TMP/stop" || fail "exe-ids stop --force failed"
grep -q "kept /sys/fs/bpf/cgfilter-exe/ids: 1 filter program read it" "$TMP/stop" ||
	fail "exe-ids stop does not say the map is kept for the filter: $(cat "$TMP/stop")"
"$CGF" show "$PIN" | has "warning: the filter names executables, but none are recorded now" ||
	fail "show does not warn that no executables are recorded: $("$CGF" show "$PIN")"
"$CGF" exe-ids >"$TMP/st"
grep -q "not recorded" "$TMP/st" && grep -q "read by 1 filter program" "$TMP/st" ||
	fail "exe-ids after stop: $(cat "$TMP/st")"
in_cg "$PY" - "$PU" "$TMP/go" >"$TMP/py" 2>&1 <<'EOF' &
import os, socket, sys, time
port, go = int(sys.argv[1]), sys.argv[2]
def ask(s):
    s.settimeout(1.0)
    try:
        s.sendto(b"probe", ("127.0.0.1", port))
        s.recvfrom(100)
        return "answered"
    except (socket.timeout, PermissionError):  # (egress drops say EPERM)
        return "dropped"
old = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
print("old socket:", ask(old))
print("new socket:", ask(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)), flush=True)
EOF
py=$!
for _ in $(seq 100); do grep -qs ready "$TMP/py" && break; sleep 0.05; done
"$CGF" set "$PIN" "exe == \"$PY\" || exe == \"$A\"" || fail "set failed"
expect_eq "the map of executables after the recorder started again" "$(ids_id)" "$map0"
"$CGF" show "$PIN" >"$TMP/show.rec" || fail "show failed: $(cat "$TMP/show.rec")"
has "warning: the filter names executables" "$TMP/show.rec" && fail "show still warns once recording runs again"
touch "$TMP/go"
wait "$py" || fail "the python client failed: $(cat "$TMP/py")"
expect_eq "a socket made while nothing recorded, then one made after" "$(grep socket: "$TMP/py")" "old socket: dropped
new socket: answered"

# block mode works whatever the filter names: here a file gone since
cp "$PROBE" "$TMP/bin/gone"
"$CGF" set "$PIN" "exe == \"$TMP/bin/gone\" || exe == \"$A\"" || fail "set failed"
rm "$TMP/bin/gone"
"$CGF" mode "$PIN" block || fail "block mode failed for a filter naming a file gone"
connects "$A" 300 && fail "block mode: A connected"
rc=0; "$CGF" mode "$PIN" enforce 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot find executable \"$TMP/bin/gone\"" "$TMP/err" ||
	fail "enforce with a file gone: exit $rc: $(cat "$TMP/err")"
expect_eq "the mode after the refused enforce" "$("$CGF" mode "$PIN")" block
"$CGF" set "$PIN" "exe == \"$A\"" || fail "set failed"
"$CGF" mode "$PIN" enforce || fail "enforce failed"

# named sets, edited live
"$CGF" set "$PIN" "@apps = { \"$A\" } exe in @apps" || fail "set with a named set failed"
connects "$B" 300 && fail "B connected before it was added"
"$CGF" set-add "$PIN" @apps "$B" || fail "set-add failed"
connects "$B" || fail "B did not connect once added"
"$CGF" show "$PIN" | has -F "@apps (executables, 2 files): \"$A\", \"$B\"" ||
	fail "show does not list the set's files: $("$CGF" show "$PIN")"
"$CGF" set-del "$PIN" @apps "$B" || fail "set-del failed"
connects "$B" 300 && fail "B connected after it was removed"
ok "a named set of executables: set-add lets one in, set-del out, show lists them"

# bad input: refused, nothing changed
expect_status "a file that does not exist" 1 "cannot find executable \"$TMP/none\"" \
	"$CGF" set "$PIN" "exe == \"$TMP/none\""
expect_status "a relative path" 1 "an executable is named by its absolute path" "$CGF" set "$PIN" 'exe == "bin/sh"'
printf '#!/bin/sh\nexec true\n' >"$TMP/script.sh"
chmod +x "$TMP/script.sh"
expect_status "a script (#!: its sockets are its interpreter's, a block rule would block nothing)" 1 \
	"\"$TMP/script.sh\" is a script (#!): its sockets are its interpreter's, so it would match none" \
	"$CGF" set "$PIN" "!(exe == \"$TMP/script.sh\")"
expect_status "set-add of a script" 1 "is a script (#!)" "$CGF" set-add "$PIN" @apps "$TMP/script.sh"
expect_status "a directory" 1 "is not a regular file" "$CGF" set "$PIN" "exe == \"$TMP\""
expect_status "a string not closed" 1 "string not closed" "$CGF" set "$PIN" 'exe == "/bin/sh'
expect_status "a bad escape" 1 "bad escape in a string" "$CGF" set "$PIN" 'exe == "/bin\q"'
expect_status "a NUL byte" 1 "cannot hold a NUL byte" "$CGF" set "$PIN" 'exe == "/bin\x00"'
expect_status "exe in arithmetic" 1 "exe is an executable: compare it with" "$CGF" set "$PIN" 'exe + 1'
expect_status "exe compared with a number" 1 "an executable (\"PATH\") after" "$CGF" set "$PIN" 'exe == 1'
expect_status "a path in an address set" 1 "a string names an executable, but this set holds addresses" \
	"$CGF" set "$PIN" 'src_ip in { 10.0.0.1, "/bin/sh" }'
expect_status "exe in a dynamic set" 1 "not executables" "$CGF" set "$PIN" '@d = { } timeout 5 exe in @d'
expect_status "set-add of an address to a set of executables" 1 "@apps holds executables" \
	"$CGF" set-add "$PIN" @apps 10.0.0.1
expect_status "set-add of a file that does not exist" 1 "cannot find executable" \
	"$CGF" set-add "$PIN" @apps "$TMP/none"
expect_status "set-add of a quoted path of 300 bytes" 1 "a path longer than 255 bytes" \
	"$CGF" set-add "$PIN" @apps "\"/$(printf 'x%.0s' $(seq 300))\""
expect_status "classic BPF" 1 "a socket filter cannot tell who made a packet's socket" \
	"$CGF" compile --classic "exe == \"$A\""
connects "$A" || fail "after the refusals, A no longer connects"
connects "$B" 300 && fail "after the refusals, B connects"
ok "bad paths, scripts, strings, types and back ends are refused; the filter in force is unchanged"

# unload, then at once exe-ids stop: the map goes with the last filter that
# read it.  (unload empties the engine's program arrays itself; left to the
# kernel, from a work queue, an unloaded filter lived on a moment, and stop
# kept the map for it, about once in twenty.)  Only if the test started the
# recorder: one that was running before is not the test's to stop.
if [ -n "$OURS_EXE" ]; then
	"$CGF" unload --detach "$PIN" || fail "unload $PIN failed"
	for i in $(seq 20); do
		if [ "$i" -gt 1 ]; then
			"$CGF" load "$PIN" "exe == \"$A\"" >/dev/null || fail "load $PIN failed (round $i)"
			"$CGF" unload "$PIN" || fail "unload $PIN failed (round $i)"
		fi
		"$CGF" exe-ids stop >"$TMP/stop" 2>&1 || fail "exe-ids stop right after unload failed: $(cat "$TMP/stop")"
		[ -e /sys/fs/bpf/cgfilter-exe ] &&
			fail "exe-ids stop right after unload kept the map (round $i): $(cat "$TMP/stop")"
	done
	ok "unload, then exe-ids stop at once, 20 times: the map of executables goes every time"
	# exe-ids stop while a set builds the first filter naming an executable
	# (held just after it took the lock of /sys/fs/bpf/cgfilter-exe: a
	# delay injected there): stop waits for its program to be loaded, then
	# counts it and refuses, and the filter reads the map the recorder writes
	"$CGF" load "$PIN" tcp >/dev/null && "$CGF" attach "$PIN" "$CG" || fail "load or attach $PIN failed"
	rm -f "$TMP/set.trace"
	strace -f -qq -o "$TMP/set.trace" -e trace=flock -e inject=flock:delay_exit=2000000:when=1 \
		"$CGF" set "$PIN" "exe == \"$A\"" >"$TMP/set.out" 2>&1 &
	pid=$!
	for _ in $(seq 200); do grep -q 'flock(' "$TMP/set.trace" 2>/dev/null && break; sleep 0.05; done
	grep -q 'flock(' "$TMP/set.trace" || fail "the held set did not reach its flock in 10 s"
	RC=0
	"$CGF" exe-ids stop >"$TMP/stop" 2>&1 || RC=$?
	wait "$pid" || fail "a set naming an executable failed beside exe-ids stop: $(cat "$TMP/set.out")"
	expect_eq "exe-ids stop while a set builds a filter naming an executable waits, counts it, and refuses" \
		"$RC:$(grep -c '1 filter program read the executables' "$TMP/stop")" "1:1"
	"$CGF" exe-ids >/dev/null || fail "after the refused stop, executables are not recorded"
	connects "$A" || fail "after the refused stop, the copy named by the filter did not connect"
	connects "$B" 300 && fail "after the refused stop, B connects"
	ok "... and the filter reads the map the recorder writes (A connects, B does not)"
	"$CGF" unload --detach "$PIN" || fail "unload $PIN failed"
fi

# a filter naming an executable gone since, with a dynamic set: set-add of
# that set's name is refused (it read the text, the parse failed on the
# missing file, and it made a named set beside the dynamic one, which show
# then hid), and show still lists the dynamic set
cp /bin/true "$TMP/gone-app"
"$CGF" load "$PIN" "@banned = { } timeout 3600
exe == \"$TMP/gone-app\" || !(src_ip in @banned)" >/dev/null || fail "cannot load a filter with a dynamic set"
rm -f "$TMP/gone-app"
expect_status "set-add to a dynamic set of a filter naming a file gone" 1 \
	"@banned is a dynamic set of the filter in force" "$CGF" set-add "$PIN" @banned 203.0.113.5
"$CGF" show "$PIN" >"$TMP/show" 2>&1 || fail "show of a filter naming a file gone failed: $(cat "$TMP/show")"
has '^    @banned (timeout 3600 s, 0 entries): (empty)$' "$TMP/show" && grep -A1 '^  sets:$' "$TMP/show" |
	has -x '    (none)' || fail "show does not list the dynamic set alone: $(cat "$TMP/show")"
ok "... and show lists the dynamic set, and no named set beside it"
"$CGF" unload "$PIN" || fail "unload $PIN failed"

# ---- the private systemd: reload, and the application firewall on user.slice -------------------
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
[ -f "$DEST/usr/local/lib/systemd/system/cgfilter-apps.service" ] || fail "make install did not install cgfilter-apps.service"
[ -f "$DEST/usr/local/share/cgfilter/examples/apps.filter" ] || fail "make install did not install examples/apps.filter"
ETC=$TMP/etc-cgfilter
mkdir "$ETC"
if [ ! -d /etc/cgfilter ]; then
	mkdir /etc/cgfilter
	at_exit rmdir /etc/cgfilter
fi
sd_boot --bind "$DEST/usr/local" /usr/local --bind "$ETC" /etc/cgfilter \
	--unit-path /usr/local/lib/systemd/system
SCGF=/usr/local/bin/cgfilter
sd_exec mkdir -p /run/x
# (the probe as installed: the build tree may be under /tmp, which is private inside)
sd_exec cp /usr/local/bin/cgfilter-probe /run/x/app
sd_exec cp /usr/local/bin/cgfilter-probe /run/x/other
printf 'exe == "/run/x/app"\n' >"$ETC/exe.filter"
sd_ctl start cgfilter@exe.service || unit_fail cgfilter@exe.service "cgfilter@exe did not start"
srun() { # PROGRAM: one TCP connection from PROGRAM in a unit filtered by cgfilter@exe
	sd_run --wait --quiet --pipe -p IPIngressFilterPath=/sys/fs/bpf/cgfilter/exe \
		-p IPEgressFilterPath=/sys/fs/bpf/cgfilter/exe -- "$1" send tcp 127.0.0.1 "$PT" -t "${2:-2000}" \
		>/dev/null 2>&1
}
srun /run/x/app || fail "systemd: the named program did not connect"
sd_exec sh -c 'cp /run/x/other /run/x/app.new && mv /run/x/app.new /run/x/app'
srun /run/x/app 300 && fail "systemd: a replaced file matched before the reload"
sd_ctl reload cgfilter@exe.service || unit_fail cgfilter@exe.service "reload failed"
srun /run/x/app || fail "systemd: after 'systemctl reload cgfilter@exe' the replaced file does not connect"
ok "systemd: 'systemctl reload cgfilter@exe' makes a replaced executable match again"

printf '# the test'"'"'s application firewall\nexe == "/run/x/app" && tcp || !(tcp || udp)\n' >"$ETC/apps.filter"
sd_ctl start cgfilter-apps.service || unit_fail cgfilter-apps.service "cgfilter-apps did not start"
sd_exec "$SCGF" show /sys/fs/bpf/cgfilter/apps >"$TMP/apps-show"
grep -q "^    /user.slice ingress$" "$TMP/apps-show" && grep -q "^    /user.slice egress$" "$TMP/apps-show" ||
	fail "cgfilter-apps is not attached to user.slice: $(cat "$TMP/apps-show")"
urun() { sd_run --wait --quiet --pipe --slice=user.slice -- "$1" send tcp 127.0.0.1 "$PT" -t "${2:-2000}" >/dev/null 2>&1; }
urun /run/x/app || fail "apps: the allowed program in user.slice did not connect"
urun /run/x/other 300 && fail "apps: another program in user.slice connected"
sd_run --wait --quiet --pipe -- /run/x/other send tcp 127.0.0.1 "$PT" -t 2000 >/dev/null 2>&1 ||
	fail "apps: a program outside user.slice was filtered"
sd_exec "$SCGF" mode /sys/fs/bpf/cgfilter/apps pass || fail "mode pass failed"
urun /run/x/other || fail "apps in pass mode: the other program was dropped"
sd_exec "$SCGF" mode /sys/fs/bpf/cgfilter/apps enforce
sd_ctl stop cgfilter-apps.service || fail "cannot stop cgfilter-apps"
sd_exec test -e /sys/fs/bpf/cgfilter/apps && fail "stop left the pin"
urun /run/x/other || fail "after stop, user.slice is still filtered"
ok "cgfilter-apps.service: an application firewall on user.slice (allowed, dropped, outside untouched, pass mode, stop)"
