#!/usr/bin/env bash
# Modes (cgfilter mode PIN enforce|observe|block|pass) and attach/detach:
# each mode's verdicts and counters against the reference model, kept by
# 'set', named sets kept by a mode change (tests/verdict/check_modes.py);
# observe mode streams "would-drop" events naming the unit; a running TCP
# connection lives through mode changes with no packet dropped; a shared
# engine's modes per registered cgroup and for all, with real traffic;
# 'cgfilter attach'/'detach' (relative cgroup paths, twice refused, what is
# not attached refused); bad input refused, changing nothing.
. "$(dirname "$0")/lib.sh"

need_root
need_cgroup2
need_bpffs
need_cmd python3 bpftool strace
CGF=$BUILD/cgfilter/cgfilter
PROBE=$BUILD/tools/cgfilter-probe
for p in "$CGF" "$PROBE" "$BUILD/tests/verdict-run"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
PIN=/sys/fs/bpf/${T_ID}_modes
SPIN=/sys/fs/bpf/${T_ID}_modes_shared
CG=$CG2/$T_ID-modes.service
CGA=$CG2/$T_ID-a.service
CGB=$CG2/$T_ID-b.service
for c in "$CG" "$CGA" "$CGB"; do make_cgroup "$c"; done
at_exit "$CGF" unload --detach "$PIN"
at_exit "$CGF" unload --detach "$SPIN"

# ---- verdicts and counters in each mode, against the reference --------------------------------
python3 "$TOP/tests/verdict/check_modes.py" --cgfilter "$CGF" --pin "$PIN" --work "$TMP" ||
	fail "the modes disagree with the reference (see above)"
ok "enforce/observe/block/pass: verdicts and counters as the reference says; kept by set"

# ---- bad input changes nothing -----------------------------------------------------------------
"$CGF" load "$PIN" 'udp' || fail "load failed"
expect_status "an unknown mode" 2 "no such mode: 'observ'" "$CGF" mode "$PIN" observ
expect_status "two modes" 2 "expected PIN" "$CGF" mode "$PIN" observe block
expect_status "--cgroup on a dedicated engine" 1 "dedicated engine" "$CGF" mode "$PIN" --cgroup "$CG" block
expect_status "no engine" 1 "/sys/fs/bpf/${T_ID}_none" "$CGF" mode "/sys/fs/bpf/${T_ID}_none" block
expect_eq "the mode after refusals" "$("$CGF" mode "$PIN")" enforce
ok "bad modes, directions and engines are refused; the mode is unchanged"

# ---- attach / detach ---------------------------------------------------------------------------
REL=${CG#"$CG2"}
expect_ok "attach by a path from the cgroup2 root" "$CGF" attach "$PIN" "$REL"
bpftool cgroup show "$CG" >"$TMP/bt"
[ "$(grep -c cgf_dedicated "$TMP/bt")" = 2 ] || fail "not attached for both directions: $(cat "$TMP/bt")"
expect_status "attach twice" 1 "already attached to cgroup $CG for ingress" "$CGF" attach "$PIN" "$CG"
expect_status "attach egress again" 1 "already attached to cgroup $CG for egress" "$CGF" attach "$PIN" "$CG" egress
expect_status "a bad direction" 2 "no such direction: 'out'" "$CGF" attach "$PIN" "$CG" out
expect_status "a cgroup that does not exist" 1 "cannot open cgroup $CG2/${T_ID}-none" \
	"$CGF" attach "$PIN" "${T_ID}-none"
expect_status "a directory that is no cgroup" 1 "not a cgroup2 directory" "$CGF" attach "$PIN" "$TMP"
expect_status "an empty cgroup (an unset variable)" 1 "no cgroup given ('')" "$CGF" attach "$PIN" ""
expect_status "'.' for a cgroup" 1 "no cgroup given ('.')" "$CGF" attach "$PIN" .
expect_ok "detach ingress" "$CGF" detach "$PIN" "$CG" ingress
expect_status "detach what is not attached" 1 "is not attached to cgroup $CG for ingress" \
	"$CGF" detach "$PIN" "$CG"
[ "$(bpftool cgroup show "$CG" | grep -c cgf_dedicated)" = 1 ] || fail "a refused detach changed the attachments"
expect_ok "attach ingress again" "$CGF" attach "$PIN" "$CG" ingress
"$CGF" show "$PIN" >"$TMP/show"
grep -q "$REL ingress" "$TMP/show" && grep -q "$REL egress" "$TMP/show" ||
	fail "show does not name both attachments: $(cat "$TMP/show")"
ok "attach/detach: by path or from the root, per direction, twice and absent refused"

# ---- observe mode with real traffic: passes, counts, streams would-drop naming the unit -------
in_cg() { local cg=$1; shift; bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cg "$cg" "$@"; }
echo_server udp PU 20100 20199
echo_server tcp PT 20200 20299
"$CGF" set "$PIN" "tcp && (dst_port == $PT || src_port == $PT)" || fail "set failed"
in_cg "$CG" "$PROBE" send udp 127.0.0.1 "$PU" -t 300 >/dev/null 2>&1 && fail "enforce: UDP passed"
"$CGF" mode "$PIN" observe || fail "mode observe failed"
"$CGF" monitor "$PIN" -c 1 -t 10000 --json >"$TMP/mon" 2>"$TMP/mon.err" &
mon=$!
# (the monitor holds its lease once it prints nothing yet: give it a moment, then send until seen)
for _ in $(seq 50); do
	in_cg "$CG" "$PROBE" send udp 127.0.0.1 "$PU" -t 300 >/dev/null 2>&1 || fail "observe: UDP dropped"
	kill -0 "$mon" 2>/dev/null || break
	sleep 0.1
done
wait "$mon" || fail "monitor saw no would-drop event: $(cat "$TMP/mon.err")"
python3 - "$TMP/mon" "$PU" "$(basename "$CG")" <<'EOF' || fail "the monitor's event is wrong: $(cat "$TMP/mon")"
import json, sys
ev = json.loads(open(sys.argv[1]).readline())
assert ev["verdict"] == "would-drop", ev
assert ev["proto"] == "udp" and ev["dport"] == int(sys.argv[2]), ev
assert ev["unit"] == sys.argv[3], ev
EOF
"$CGF" stats --json "$PIN" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["mode"] == "observe" and s["would_drop_packets"] >= 2 and s["would_drop_bytes"] > 0, s' ||
	fail "stats --json does not count would-drop packets"
ok "observe: traffic the filter drops passes; counted; monitor says would-drop and the unit"

# ---- a running connection through mode changes: nothing dropped --------------------------------
"$CGF" mode "$PIN" enforce || fail "mode enforce failed"
d0=$("$CGF" stats --json "$PIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped_packets"])')
in_cg "$CG" "$PROBE" stream 127.0.0.1 "$PT" -i 20 -c 150 >"$TMP/stream" 2>&1 &
st=$!
for i in $(seq 30); do
	"$CGF" mode "$PIN" "$( ((i % 3 == 0)) && echo pass || { ((i % 3 == 1)) && echo observe || echo enforce; })" ||
		fail "mode change $i failed"
done
"$CGF" mode "$PIN" enforce
wait "$st" || fail "the stream failed: $(tail -3 "$TMP/stream")"
grep -q lost "$TMP/stream" && fail "the stream lost lines: $(grep -c lost "$TMP/stream")"
[ "$(grep -c '^ok' "$TMP/stream")" = 150 ] || fail "the stream did not finish: $(tail -3 "$TMP/stream")"
d1=$("$CGF" stats --json "$PIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped_packets"])')
expect_eq "packets dropped during 30 mode changes" "$d0" "$d1"
ok "a TCP connection ran through 30 mode changes: every line echoed, no packet dropped"

# ---- block: an emergency stop; kept by set ----------------------------------------------------
"$CGF" mode "$PIN" block || fail "mode block failed"
in_cg "$CG" "$PROBE" send tcp 127.0.0.1 "$PT" -t 300 >/dev/null 2>&1 && fail "block: TCP passed"
"$CGF" set "$PIN" "tcp || udp" || fail "set failed"
expect_eq "the mode after set" "$("$CGF" mode "$PIN")" block
in_cg "$CG" "$PROBE" send udp 127.0.0.1 "$PU" -t 300 >/dev/null 2>&1 && fail "block after set: UDP passed"
"$CGF" mode "$PIN" pass
in_cg "$CG" "$PROBE" send udp 127.0.0.1 "$PU" -t 1000 >/dev/null 2>&1 || fail "pass: UDP dropped"
"$CGF" list /sys/fs/bpf | has "^$PIN  dedicated pass " || fail "list does not show the mode: $("$CGF" list)"
ok "block drops everything and set keeps it; pass passes; list shows the mode"

# ---- a shared engine: per cgroup, and all ------------------------------------------------------
"$CGF" load --shared "$SPIN" || fail "load --shared failed"
"$CGF" attach "$SPIN" "$CGA" && "$CGF" attach "$SPIN" "$CGB" || fail "attach failed"
for c in "$CGA" "$CGB"; do
	"$CGF" register "$SPIN" --cgroup "$c" "tcp && (dst_port == $PT || src_port == $PT)" ||
		fail "register $c failed"
done
expect_status "mode of a cgroup not attached" 1 "is not attached to cgroup $CG" \
	"$CGF" mode "$SPIN" --cgroup "$CG" observe
"$CGF" attach "$SPIN" "$CG" || fail "attach failed"
expect_status "mode of a cgroup without a filter" 1 "cgroup $CG has no filter" \
	"$CGF" mode "$SPIN" --cgroup "$CG" observe
"$CGF" mode "$SPIN" --cgroup "$CGA" observe || fail "mode --cgroup failed"
expect_eq "A's mode" "$("$CGF" mode "$SPIN" --cgroup "$CGA")" observe
expect_eq "B's mode" "$("$CGF" mode "$SPIN" --cgroup "$CGB")" enforce
in_cg "$CGA" "$PROBE" send udp 127.0.0.1 "$PU" -t 1000 >/dev/null 2>&1 || fail "A in observe: UDP dropped"
in_cg "$CGB" "$PROBE" send udp 127.0.0.1 "$PU" -t 300 >/dev/null 2>&1 && fail "B in enforce: UDP passed"
"$CGF" register "$SPIN" --cgroup "$CGA" "tcp" || fail "register again failed"
expect_eq "A's mode after a new filter" "$("$CGF" mode "$SPIN" --cgroup "$CGA")" observe
"$CGF" show --json "$SPIN" | python3 -c '
import json, sys
s = json.load(sys.stdin)
m = {f["cgroup"].rsplit("/", 1)[1]: f["mode"] for f in s["filters"]}
assert sorted(m.items()) == [(sys.argv[1] + "-a.service", "observe"), (sys.argv[1] + "-b.service", "enforce"),
                             (sys.argv[1] + "-modes.service", None)], m' "$T_ID" || fail "show --json: per cgroup modes wrong"
"$CGF" mode "$SPIN" block || fail "mode of the whole shared engine failed"
"$CGF" mode "$SPIN" >"$TMP/modes"
[ "$(grep -c '^block ' "$TMP/modes")" = 2 ] || fail "not every cgroup is in block mode: $(cat "$TMP/modes")"
in_cg "$CGA" "$PROBE" send tcp 127.0.0.1 "$PT" -t 300 >/dev/null 2>&1 && fail "A in block: TCP passed"
"$CGF" mode "$SPIN" enforce
in_cg "$CGB" "$PROBE" send tcp 127.0.0.1 "$PT" -t 1000 >/dev/null 2>&1 || fail "B back in enforce: TCP dropped"
ok "shared engine: a mode per registered cgroup, kept by register; all at once without --cgroup"

# ---- learn: a service with known traffic, the learned filter enforced --------------------------
# the service (in CGL) serves TCP on PL1 and UDP on PL2 to peers 127.0.0.2 and 127.0.0.3 and
# also listens on TCP PL3, which nobody uses while it learns
LPIN=/sys/fs/bpf/${T_ID}_learn
CGL=$CG2/$T_ID-learn.service
make_cgroup "$CGL"
at_exit "$CGF" unload --detach "$LPIN"
in_cgl_bg() { bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CGL" "$@" & at_exit kill $!; }
PL1=$((PT + 1000)); PL2=$((PU + 1000)); PL3=$((PT + 1001))
in_cgl_bg "$PROBE" listen tcp "$PL1" -a 127.0.0.1 >"$TMP/l1"
in_cgl_bg "$PROBE" listen udp "$PL2" -a 127.0.0.1 >"$TMP/l2"
in_cgl_bg "$PROBE" listen tcp "$PL3" -a 127.0.0.1 >"$TMP/l3"
for _ in $(seq 40); do
	grep -qs listening "$TMP/l1" && grep -qs listening "$TMP/l2" && grep -qs listening "$TMP/l3" && break
	sleep 0.05
done
"$CGF" load "$LPIN" 'tcp && dst_port == 1' || fail "load failed"
"$CGF" attach "$LPIN" "$CGL" || fail "attach failed"
expect_status "learn in enforce mode" 1 "is in enforce mode: it would learn only what its filter passes" \
	"$CGF" learn "$LPIN" --seconds 1
expect_status "learn --seconds 0" 2 "invalid seconds: '0'" "$CGF" learn "$LPIN" --seconds 0
"$CGF" mode "$LPIN" observe || fail "mode observe failed"
traffic() { # FROM: a TCP connection to PL1 and a datagram to PL2 from FROM; prints what passed
	"$PROBE" send tcp 127.0.0.1 "$PL1" -b "$1" -t "${2:-2000}" >/dev/null 2>&1 && echo "tcp $1"
	"$PROBE" send udp 127.0.0.1 "$PL2" -b "$1" -t "${2:-2000}" >/dev/null 2>&1 && echo "udp $1"
	return 0
}
"$CGF" learn "$LPIN" --seconds 3 >"$TMP/learned" 2>"$TMP/learn.err" &
lp=$!
sleep 0.5
seen=$(traffic 127.0.0.2; traffic 127.0.0.3; traffic 127.0.0.2)
wait "$lp" || fail "learn failed: $(cat "$TMP/learn.err")"
expect_eq "all of the traffic passed while learning (observe mode)" "$seen" "tcp 127.0.0.2
udp 127.0.0.2
tcp 127.0.0.3
udp 127.0.0.3
tcp 127.0.0.2
udp 127.0.0.2"
grep -q "^# tcp port $PL1 served to 2 peers as 1 prefix (" "$TMP/learned" &&
	grep -q "^# udp port $PL2 served to 2 peers as 1 prefix (" "$TMP/learned" &&
	grep -q "dst_port == $PL1 && src_ip in { 127.0.0.2/31 }" "$TMP/learned" ||
	fail "the learned filter does not say what it covers: $(cat "$TMP/learned")"
grep -q "$PL3" "$TMP/learned" && fail "the learned filter names the port nobody used: $(cat "$TMP/learned")"
"$CGF" show --json "$LPIN" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["mode"] == "observe" and s["filter"] == "tcp && dst_port == 1", s' ||
	fail "learn did not leave the filter as it was"
"$CGF" set "$LPIN" -f "$TMP/learned" || fail "the learned filter does not load: $(cat "$TMP/learned")"
"$CGF" mode "$LPIN" enforce || fail "mode enforce failed"
expect_eq "enforced: the learned traffic passes again" "$(traffic 127.0.0.3; traffic 127.0.0.2)" "tcp 127.0.0.3
udp 127.0.0.3
tcp 127.0.0.2
udp 127.0.0.2"
expect_eq "enforced: a third peer is dropped" "$(traffic 127.0.0.4 300)" ""
"$PROBE" send tcp 127.0.0.1 "$PL3" -b 127.0.0.2 -t 300 >/dev/null 2>&1 &&
	fail "enforced: the third port passed"
ok "learn: observed two ports and two peers; enforced, the same traffic passes, a third peer and port are dropped"
# the learned rules open TCP connections only as they were seen: the service may answer from
# its port, not open a connection from it (a SYN without ACK); checked on crafted packets
# against the reference model, in a fresh engine with the learned filter
"$CGF" load "${LPIN}_chk" -f "$TMP/learned" || fail "the learned filter does not load alone"
at_exit "$CGF" unload "${LPIN}_chk"
PYTHONPATH=$TOP/tests/verdict python3 - "$TMP/learned" "$PL1" "$BUILD/tests/verdict-run" "${LPIN}_chk" <<'EOF' ||
import subprocess, sys, tempfile
import verdict as V
text, port, runner, pin = open(sys.argv[1]).read(), int(sys.argv[2]), sys.argv[3], sys.argv[4]
specs = ["ip4 src=127.0.0.1 dst=127.0.0.2 / tcp sport=%d dport=40000 flags=S" % port,    # opens: no
         "ip4 src=127.0.0.1 dst=127.0.0.2 / tcp sport=%d dport=40000 flags=SA" % port,   # answers: yes
         "ip4 src=127.0.0.2 dst=127.0.0.1 / tcp sport=40000 dport=%d flags=S" % port,    # a request: yes
         "ip4 src=127.0.0.4 dst=127.0.0.1 / tcp sport=40000 dport=%d flags=S" % port]    # a third peer: no
want = "0110"
frames = [V.build(s) for s in specs]
ref = "".join(V.FullExpr(text).verdict(f) for f in frames)
got = V.run_frames(frames, pins=[pin])[("pin", pin)]
if ref != want or got != want:
    sys.exit("learned filter: reference %s, engine %s, expected %s for %s" % (ref, got, want, specs))
EOF
	fail "the learned filter's TCP rules are wider than what was seen"
ok "the learned TCP rules answer from the served port but do not open connections from it"

# shared engine: learn one cgroup's filter
"$CGF" register "$SPIN" --cgroup "$CGA" 1 || fail "register 1 failed"
"$CGF" learn "$SPIN" --cgroup "$CGA" --seconds 1 >"$TMP/learned-a" 2>"$TMP/learn.err" &
lp=$!
sleep 0.3
in_cg "$CGA" "$PROBE" send udp 127.0.0.1 "$PU" -t 1000 >/dev/null 2>&1 || fail "A with filter 1: UDP dropped"
wait "$lp" || fail "learn --cgroup failed: $(cat "$TMP/learn.err")"
grep -q "^# udp to port $PU of 1 peer" "$TMP/learned-a" || fail "learn --cgroup: $(cat "$TMP/learned-a")"
expect_status "learn a shared engine without --cgroup" 1 "learn the filter of one cgroup (--cgroup PATH)" \
	"$CGF" learn "$SPIN" --seconds 1
ok "learn --cgroup: one cgroup of a shared engine"

# learn given an error at each bpf() call of its start and its stop: the
# filter no longer records flows after it, or learn said that it still
# does; "changed while it learned" only when another command did (a new
# filter's id not read was taken for another's, and recording stayed on,
# said as someone else's change)
QPIN=/sys/fs/bpf/${T_ID}_lq
"$CGF" load "$QPIN" 'tcp && dst_port == 8443' >/dev/null || fail "cannot load $QPIN"
at_exit "$CGF" unload "$QPIN"
"$CGF" mode "$QPIN" observe >/dev/null || fail "cannot set $QPIN to observe"
calls=$(strace -f -qq -e trace=bpf -o "$TMP/ltrace" "$CGF" learn "$QPIN" --seconds 1 >/dev/null 2>&1
	grep -c 'bpf(' "$TMP/ltrace")
[ "$calls" -gt 10 ] || fail "strace saw only $calls bpf() calls of learn"
for ((n = 1; n <= calls; n++)); do
	rc=0
	strace -f -qq -o /dev/null -e trace=bpf -e inject=bpf:error=ENOSPC:when=$n \
		"$CGF" learn "$QPIN" --seconds 1 >/dev/null 2>"$TMP/lq.err" || rc=$?
	has -F "was changed while it learned" "$TMP/lq.err" &&
		fail "learn with ENOSPC at bpf() call $n of $calls blames another command: $(cat "$TMP/lq.err")"
	if "$CGF" show "$QPIN" | has "recording the flows"; then
		has -F "still records flows" "$TMP/lq.err" ||
			fail "learn with ENOSPC at bpf() call $n of $calls (exit $rc) left the filter recording without a word: $(cat "$TMP/lq.err")"
		"$CGF" set "$QPIN" 'tcp && dst_port == 8443' >/dev/null || fail "set after learn failed"
	fi
	expect_eq "learn with ENOSPC at bpf() call $n of $calls keeps the mode" "$("$CGF" mode "$QPIN")" observe >/dev/null
done
ok "ENOSPC at each of the $calls bpf() calls of learn: it stops recording, or says it does not"

# a newline in the pin's name cannot end the learned file's comment (what
# followed it was filter text: '1 || # over 1 s...', a filter passing all)
LNP=/sys/fs/bpf/${T_ID}_ln$'\n1 || #'
"$CGF" load "$LNP" 'tcp' >/dev/null || fail "cannot load a pin whose name has a newline"
at_exit "$CGF" unload "$LNP"
"$CGF" mode "$LNP" observe >/dev/null || fail "cannot set observe mode"
"$CGF" learn "$LNP" --seconds 1 >"$TMP/learned-nl" 2>"$TMP/learn.err" || fail "learn failed: $(cat "$TMP/learn.err")"
expect_eq "a newline in the pin's name stays inside the learned file's comment (nothing seen: 0)" \
	"$(grep -v '^#' "$TMP/learned-nl")" 0
