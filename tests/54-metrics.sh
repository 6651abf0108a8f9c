#!/usr/bin/env bash
# Metrics and the journal.  `cgfilter stats --prometheus`: a dedicated, a
# shared and an odd-named engine with known loopback traffic; the text
# passes promtool, its values equal `stats --json` and the traffic sent,
# labels escaped, attachments and modes as info metrics; no engines is
# valid; --output replaces the file atomically (strace: temporary file in
# the same directory, fsync, rename; a reader never sees part of it) and a
# failed write keeps the old file; a killed writer's temporary file is
# removed by a later write once old.  In a private systemd (tests/sysd.sh):
# cgfilter-monitor@NAME puts each drop of a filtered service in the journal
# with fields equal to the packets sent, and cgfilter-metrics.timer writes
# the metrics file.  `monitor --journal` without a journal fails clearly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysd.sh"

need_root
need_cgroup2
need_bpffs
need_cmd python3 promtool strace unshare
CGF=$BUILD/cgfilter/cgfilter
[ -x "$CGF" ] || skip "$CGF is not built (make cgfilter)"
make_tmpdir TMP

# the engines of this test, under a directory of their own
DIR=/sys/fs/bpf/$T_ID-metrics
WEB=$DIR/web
SH=$DIR/shared
ODD=$DIR/$'odd"na\\me\nx'
at_exit rm -rf "$DIR"
for p in "$WEB" "$SH" "$ODD"; do at_exit "$CGF" unload --detach "$p"; done
CGW=$CG2/$T_ID-web.service
CGA=$CG2/$T_ID-a.service
CGB=$CG2/$T_ID-b.service
for c in "$CGW" "$CGA" "$CGB"; do make_cgroup "$c"; done

# send_udp CGROUP SPORT DPORT N: N datagrams of 10 bytes (38 with the IPv4
# and UDP headers) from 127.0.0.1:SPORT, inside CGROUP; drops are no error
# (CGROUP -: where the test runs)
send_udp() {
	bash -c '[ "$1" = - ] || echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cg "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
for _ in range(int(sys.argv[3])):
    try:
        s.sendto(b"0123456789", ("127.0.0.1", int(sys.argv[2])))
    except PermissionError:
        pass' "$2" "$3" "$4"
}
PASS=22$((100 + $$ % 400))
DROP=$((PASS + 1))
SPORT=$((PASS + 2))

# ---- no engines: valid, empty ------------------------------------------------------------
mkdir "$TMP/empty"
"$CGF" stats --prometheus "$TMP/empty" >"$TMP/empty.prom" || fail "stats --prometheus with no engines failed"
promtool check metrics <"$TMP/empty.prom" || fail "promtool rejects the output for no engines"
expect_eq "no engines: no samples" "$(grep -vc '^#' "$TMP/empty.prom" || true)" 0
expect_status "a directory that is not there" 1 "cannot read the engines under $TMP/none: No such file or directory" \
	"$CGF" stats --prometheus "$TMP/none"
expect_status "--output without --prometheus" 2 "--output goes with --prometheus" "$CGF" stats -o "$TMP/x" "$WEB"
expect_status "--json with --prometheus" 2 "give one" "$CGF" stats --json --prometheus

# ---- engines with known traffic --------------------------------------------------------------
"$CGF" load "$WEB" "udp && dst_port == $PASS" || fail "load $WEB failed"
"$CGF" attach "$WEB" "$CGW" egress || fail "attach failed"
"$CGF" load --shared "$SH" || fail "load --shared failed"
"$CGF" attach "$SH" "$CGA" egress || fail "attach failed"
"$CGF" attach "$SH" "$CGB" egress || fail "attach failed"
"$CGF" register "$SH" --cgroup "$CGA" "udp && dst_port == $PASS" || fail "register failed"
"$CGF" load "$ODD" 1 || fail "load of a pin with quotes, backslash and newline failed"
"$CGF" mode "$ODD" observe || fail "mode observe failed"
ok "a dedicated, a shared and an odd-named engine are loaded"
send_udp "$CGW" "$SPORT" "$PASS" 3
send_udp "$CGW" "$SPORT" "$DROP" 2
send_udp "$CGA" "$SPORT" "$PASS" 1
send_udp "$CGA" "$SPORT" "$DROP" 4
send_udp "$CGB" "$SPORT" "$PASS" 5   # no filter registered: dropped

"$CGF" stats --prometheus "$DIR" >"$TMP/m.prom" || fail "stats --prometheus failed"
promtool check metrics <"$TMP/m.prom" || fail "promtool rejects the output: $(cat "$TMP/m.prom")"
ok "promtool check metrics accepts the output"
for p in "$WEB" "$SH" "$ODD"; do "$CGF" stats --json "$p"; done >"$TMP/stats.json" || fail "stats --json failed"
python3 - "$TMP/stats.json" "$TMP/expect.json" "$WEB" "$SH" "$ODD" "$T_ID" <<'EOF' || fail "cannot make the expected values"
import json, sys
stats = [json.loads(l) for l in open(sys.argv[1])]
web, sh, odd, tid = sys.argv[3:7]
by = {s["pin"]: s for s in stats}
assert set(by) == {web, sh, odd}, by.keys()
e = {
    web: {"known": {"passed_packets": 3, "passed_bytes": 3 * 38, "dropped_packets": 2,
                    "dropped_bytes": 2 * 38, "no_filter": 0, "malformed": 0},
          "attached": [["/%s-web.service" % tid, "%s-web.service" % tid, "egress"]],
          "filters": [{"mode": "enforce"}]},
    sh: {"known": {"passed_packets": 1, "passed_bytes": 38, "dropped_packets": 9,
                   "dropped_bytes": 9 * 38, "no_filter": 5, "malformed": 0},
         "attached": [["/%s-a.service" % tid, "%s-a.service" % tid, "egress"],
                      ["/%s-b.service" % tid, "%s-b.service" % tid, "egress"]],
         "filters": [{"cgroup": "/%s-a.service" % tid, "unit": "%s-a.service" % tid,
                      "direction": "egress", "mode": "enforce"},
                     # attached, nothing registered: no filter, drops
                     {"cgroup": "/%s-b.service" % tid, "unit": "%s-b.service" % tid,
                      "direction": "egress", "mode": "none"}]},
    odd: {"known": {"passed_packets": 0, "dropped_packets": 0}, "attached": [],
          "filters": [{"mode": "observe"}]},
}
for p in e:
    e[p]["stats"] = by[p]
json.dump({"engines": e}, open(sys.argv[2], "w"))
EOF
python3 "$TOP/tests/verdict/check_prom.py" "$TMP/m.prom" "$TMP/expect.json" ||
	fail "the metrics differ from stats --json or the traffic sent: $(cat "$TMP/m.prom")"
ok "every counter equals stats --json and the traffic sent; attachments, units and modes as info metrics"
grep -qxF 'cgfilter_passed_packets_total{pin="'"$DIR"'/odd\"na\\me\nx"} 0' "$TMP/m.prom" ||
	fail "the odd pin is not escaped as the format says: $(grep odd "$TMP/m.prom")"
ok "label values escape backslash, double quote and newline"

# a pin that is not UTF-8: node_exporter refuses a file that is not, so the
# byte is U+FFFD (and a valid multi-byte name stays as it is)
DIR2=/sys/fs/bpf/$T_ID-metrics-utf8
mkdir "$DIR2"
at_exit rm -rf "$DIR2"
for p in "$DIR2/"$'bad\xffname' "$DIR2/"$'caf\xc3\xa9'; do
	at_exit "$CGF" unload "$p"
	"$CGF" load "$p" udp || fail "cannot load $p"
done
"$CGF" stats --prometheus "$DIR2" >"$TMP/u.prom" || fail "stats --prometheus $DIR2 failed"
promtool check metrics <"$TMP/u.prom" || fail "promtool rejects the output: $(cat "$TMP/u.prom")"
grep -qF 'cgfilter_passed_packets_total{pin="'"$DIR2"$'/bad\xef\xbf\xbdname"} 0' "$TMP/u.prom" &&
	grep -qF 'cgfilter_passed_packets_total{pin="'"$DIR2"$'/caf\xc3\xa9"} 0' "$TMP/u.prom" ||
	fail "labels of names that are not UTF-8: $(grep passed_packets "$TMP/u.prom")"
ok "a byte that is not UTF-8 is U+FFFD in a label; UTF-8 stays as it is"

# ---- --output: atomic ----------------------------------------------------------------------
OUT=$TMP/textfile/cgfilter.prom
mkdir "$TMP/textfile"
strace -f -o "$TMP/strace" -e trace=openat,fsync,rename,renameat,renameat2,unlink \
	"$CGF" stats --prometheus "$DIR" -o "$OUT" || fail "stats -o failed"
cmp -s "$OUT" "$TMP/m.prom" || fail "the file differs from the output: $(diff "$TMP/m.prom" "$OUT")"
expect_eq "the file is readable by node_exporter (0644)" "$(stat -c %a "$OUT")" 644
python3 - "$TMP/strace" "$OUT" <<'EOF' || fail "not a temporary file, fsync, rename: $(grep -v -e '/sys/' -e '/proc/' -e '\.so' "$TMP/strace")"
import re, sys
log, out = open(sys.argv[1]).read(), sys.argv[2]
d = out.rsplit("/", 1)[0]
m = re.search(r'openat\(AT_FDCWD, "(%s/[^"/]+)", [^)]*O_CREAT[^)]*\) = (\d+)' % re.escape(d), log)
assert m, "no temporary file created in " + d
tmp, fd = m.group(1), m.group(2)
rest = log[m.end():]
s = rest.find("fsync(%s)" % fd)
r = re.search(r'rename(at2?)?\([^)]*"%s"[^)]*"%s"[^)]*\) = 0' % (re.escape(tmp), re.escape(out)), rest)
assert s >= 0 and r and s < r.start(), "fsync of the temporary file, then rename over %s" % out
EOF
ok "--output writes a temporary file in the same directory, fsyncs it, renames it over the file"

# a reader never sees part of a file while the writer runs
cp "$OUT" "$TMP/want"
( for _ in $(seq 60); do "$CGF" stats --prometheus "$DIR" -o "$OUT" || exit 1; done ) &
writer=$!
reads=0
while kill -0 "$writer" 2>/dev/null; do
	cmp -s "$OUT" "$TMP/want" || fail "a reader saw a file that is not whole: $(wc -c <"$OUT") bytes"
	reads=$((reads + 1))
done
wait "$writer" || fail "the writer failed"
ok "$reads reads during 60 writes each saw the whole file"

# a failed write: the old file stays, nothing is left behind, one line says why
echo "old" >"$OUT"
for inject in write fsync rename; do
	sc=$inject
	[ "$inject" != rename ] || sc=rename,renameat,renameat2
	rc=0
	strace -f -o /dev/null -e inject="$sc":error=ENOSPC:when=1 -e trace="$sc" \
		"$CGF" stats --prometheus "$DIR" -o "$OUT" 2>"$TMP/err" || rc=$?
	[ "$rc" = 1 ] || fail "$inject failing: exit $rc, want 1"
	[ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^cgfilter: cannot write $OUT: .*No space left on device" "$TMP/err" ||
		fail "$inject failing: the message: $(cat "$TMP/err")"
	expect_eq "$inject failing keeps the old file" "$(cat "$OUT")" old
	expect_eq "$inject failing leaves no temporary file" "$(ls -A "$TMP/textfile")" cgfilter.prom
done
# a FILE that is not a regular file is refused, left as it was (a rename
# would put a regular file in place of /dev/null)
mknod "$TMP/textfile/dev" c 1 3
ln -s cgfilter.prom "$TMP/textfile/link"
for f in dev:"a device" link:"a symbolic link" .:"a directory"; do
	expect_status "-o $TMP/textfile/${f%%:*}" 1 \
		"cannot write $TMP/textfile/${f%%:*}: it is ${f#*:}, not a regular file" \
		"$CGF" stats --prometheus "$DIR" -o "$TMP/textfile/${f%%:*}"
done
[ -c "$TMP/textfile/dev" ] && [ -L "$TMP/textfile/link" ] || fail "a refused -o changed its FILE"
rm "$TMP/textfile/dev" "$TMP/textfile/link"
ok "-o with a device, a symbolic link or a directory is refused and leaves it as it was"

# a writer killed before its rename leaves its temporary file behind; a
# later write removes it once no writer can still be writing it (10 min),
# and leaves a recent one alone
strace -f -o /dev/null -e inject=rename,renameat,renameat2:signal=SIGKILL:when=1 \
	-e trace=rename,renameat,renameat2 "$CGF" stats --prometheus "$DIR" -o "$OUT" 2>/dev/null &&
	fail "the writer killed at its rename exited 0"
left=$(LC_ALL=C ls -A "$TMP/textfile" | grep '^\.cgfilter-metrics\.') ||
	fail "the writer killed at its rename left no temporary file: $(ls -A "$TMP/textfile")"
expect_eq "the killed writer kept the old file" "$(cat "$OUT")" old
touch -d '11 minutes ago' "$TMP/textfile/$left"
: >"$TMP/textfile/.cgfilter-metrics.recent"
"$CGF" stats --prometheus "$DIR" -o "$OUT" || fail "stats -o after a killed writer failed"
expect_eq "a later write removes the killed writer's old temporary file, not a recent one" \
	"$(LC_ALL=C ls -A "$TMP/textfile")" "$(printf '.cgfilter-metrics.recent\ncgfilter.prom')"
rm "$TMP/textfile/.cgfilter-metrics.recent"

# ---- drop events say their direction --------------------------------------------------------
"$CGF" attach "$WEB" "$CGW" ingress || fail "attach ingress failed"
RPORT=$((PASS + 3))
bash -c 'echo $$ >"$1/cgroup.procs" && exec python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((\"127.0.0.1\", $2))
time.sleep(20)"' rx "$CGW" "$RPORT" &
at_exit kill $!
"$CGF" monitor "$WEB" -c 2 -t 10000 --json >"$TMP/mon" 2>"$TMP/mon.err" &
mon=$!
sleep 0.5
send_udp "$CGW" "$SPORT" "$DROP" 1                                   # sent: egress
for _ in $(seq 50); do                                               # received: ingress
	send_udp - "$((PASS + 4))" "$RPORT" 1
	kill -0 "$mon" 2>/dev/null || break
	sleep 0.1
done
wait "$mon" || fail "monitor saw no drops: $(cat "$TMP/mon.err")"
python3 - "$TMP/mon" "$SPORT" "$DROP" "$RPORT" <<'PY' || fail "the events' directions: $(cat "$TMP/mon")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
sport, drop, rport = (int(a) for a in sys.argv[2:5])
assert [(e["direction"], e["sport"], e["dport"]) for e in ev] == [
    ("egress", sport, drop), ("ingress", sport + 2, rport)], ev
PY
ok "monitor: a dropped datagram sent is egress, one received is ingress"

# ---- monitor --journal without a journal ------------------------------------------------------
expect_status "monitor --journal without a journal" 1 \
	"cannot send drops to the journal, on /run/systemd/journal/socket" \
	unshare --mount sh -c 'mkdir -p /run/systemd && mount -t tmpfs none /run/systemd && exec "$@"' sh \
	"$CGF" monitor --journal "$WEB"
expect_status "--json with --journal" 2 "give one" "$CGF" monitor --json --journal "$WEB"

# ---- in a private systemd: the journal and the timer -------------------------------------------
need_sysd
DEST=$TMP/dest
make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 || {
	sed 's/^/    /' "$TMP/install.log" >&2
	fail "make install DESTDIR=$DEST failed"
}
UNITS=$DEST/usr/local/lib/systemd/system
for u in cgfilter-metrics.service cgfilter-metrics.timer cgfilter-monitor@.service; do
	[ -e "$UNITS/$u" ] || fail "make install did not install $u"
done
ok "make install installs cgfilter-metrics.service, .timer and cgfilter-monitor@.service"
ETC=$TMP/etc-cgfilter
mkdir "$ETC"
if [ ! -d /etc/cgfilter ]; then
	mkdir /etc/cgfilter
	at_exit rmdir /etc/cgfilter
fi
printf 'udp && dst_port == %s\n' "$PASS" >"$ETC/jt.filter"
sd_boot --bind "$DEST/usr/local" /usr/local --bind "$ETC" /etc/cgfilter "$UNITS"
CGFI=/usr/local/bin/cgfilter
N=4
sd_write /run/cgft-send.py <<EOF
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", $SPORT))
for _ in range($N):
    try:
        s.sendto(b"0123456789", ("127.0.0.1", $DROP))
    except PermissionError:
        pass
    time.sleep(0.1)
EOF
sd_write /run/systemd/system/cgft-jt.service <<EOF
[Unit]
Requires=cgfilter@jt.service
After=cgfilter@jt.service
[Service]
Type=oneshot
IPEgressFilterPath=/sys/fs/bpf/cgfilter/jt
ExecStartPre=$CGFI check /sys/fs/bpf/cgfilter/jt
ExecStart=python3 /run/cgft-send.py
EOF
sd_write /run/systemd/system/cgfilter-metrics.service.d/cgft.conf <<EOF
[Service]
Environment=CGFILTER_METRICS_FILE=/run/cgft-metrics/cgfilter.prom
EOF
sd_exec mkdir /run/cgft-metrics
sd_ctl daemon-reload || fail "daemon-reload failed"
start_ok cgfilter@jt.service "cgfilter@jt loads"
start_ok cgfilter-monitor@jt.service "cgfilter-monitor@jt starts"
watching() { sd_journal cgfilter-monitor@jt.service | has "watching drops of /sys/fs/bpf/cgfilter/jt, sending them to the journal"; }
for _ in $(seq 100); do watching && break; sleep 0.1; done
watching || unit_fail cgfilter-monitor@jt.service "the monitor does not say it watches"
start_ok cgft-jt.service "a service whose datagrams the filter drops runs"
entries() { sd_exec journalctl --no-pager -o json CGFILTER_PIN=/sys/fs/bpf/cgfilter/jt >"$TMP/journal.json"; }
for _ in $(seq 100); do
	entries
	[ "$(wc -l <"$TMP/journal.json")" -ge "$N" ] && break
	sleep 0.1
done
python3 - "$TMP/journal.json" "$N" "$SPORT" "$DROP" <<'EOF' || fail "the journal's drops differ from the packets sent: $(cat "$TMP/journal.json")"
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n, sport, dport = int(sys.argv[2]), sys.argv[3], sys.argv[4]
assert len(entries) == n, "%d entries, %d datagrams dropped" % (len(entries), n)
want = {
    "PRIORITY": "4", "SYSLOG_IDENTIFIER": "cgfilter", "CGFILTER_PIN": "/sys/fs/bpf/cgfilter/jt",
    "UNIT": "cgft-jt.service", "CGFILTER_CGROUP": "/system.slice/cgft-jt.service",
    "CGFILTER_PROTO": "udp", "CGFILTER_SRC": "127.0.0.1", "CGFILTER_DST": "127.0.0.1",
    "CGFILTER_SRC_PORT": sport, "CGFILTER_DST_PORT": dport, "CGFILTER_DIRECTION": "egress",
    "CGFILTER_VERDICT": "drop", "CGFILTER_LEN": "38",
    "MESSAGE": "drop udp 127.0.0.1:%s -> 127.0.0.1:%s len 38 cgroup /system.slice/cgft-jt.service unit cgft-jt.service" % (sport, dport),
}
for e in entries:
    for k, v in want.items():
        assert e.get(k) == v, "%s=%r, want %r" % (k, e.get(k), v)
    assert "CGFILTER_EXE" not in e, "an executable although the filter names none"
EOF
ok "cgfilter-monitor@jt put each dropped datagram in the journal, with fields equal to what was sent"

start_ok cgfilter-metrics.timer "cgfilter-metrics.timer starts"
for _ in $(seq 200); do sd_exec test -s /run/cgft-metrics/cgfilter.prom && break; sleep 0.1; done
sd_exec cat /run/cgft-metrics/cgfilter.prom >"$TMP/timer.prom" 2>/dev/null ||
	unit_fail cgfilter-metrics.service "the timer's service wrote no metrics file"
expect_eq "the timer's service succeeded" "$(sd_result cgfilter-metrics.service)" success
promtool check metrics <"$TMP/timer.prom" || fail "promtool rejects the timer's file"
grep -qxF "cgfilter_dropped_packets_total{pin=\"/sys/fs/bpf/cgfilter/jt\"} $N" "$TMP/timer.prom" ||
	fail "the timer's file does not count the drops: $(cat "$TMP/timer.prom")"
ok "cgfilter-metrics.timer runs the service, which writes the metrics of cgfilter@jt"
sd_ctl stop cgfilter-metrics.timer cgfilter-monitor@jt.service cgfilter@jt.service ||
	fail "cannot stop the units"
