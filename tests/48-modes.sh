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
need_cmd python3 bpftool
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
expect_refused() { # DESC STATUS MESSAGE-PART CMD...
	local desc=$1 st=$2 msg=$3 rc=0
	shift 3
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = "$st" ] || fail "$desc: exit $rc, expected $st: $(cat "$TMP/err")"
	grep -qF -- "$msg" "$TMP/err" || fail "$desc: the message does not say '$msg': $(cat "$TMP/err")"
}
expect_refused "an unknown mode" 2 "no such mode: 'observ'" "$CGF" mode "$PIN" observ
expect_refused "two modes" 2 "expected PIN" "$CGF" mode "$PIN" observe block
expect_refused "--cgroup on a dedicated engine" 1 "dedicated engine" "$CGF" mode "$PIN" --cgroup "$CG" block
expect_refused "no engine" 1 "/sys/fs/bpf/${T_ID}_none" "$CGF" mode "/sys/fs/bpf/${T_ID}_none" block
expect_eq "the mode after refusals" "$("$CGF" mode "$PIN")" enforce
ok "bad modes, directions and engines are refused; the mode is unchanged"

# ---- attach / detach ---------------------------------------------------------------------------
REL=${CG#"$CG2"}
expect_ok "attach by a path from the cgroup2 root" "$CGF" attach "$PIN" "$REL"
bpftool cgroup show "$CG" >"$TMP/bt"
[ "$(grep -c cgf_dedicated "$TMP/bt")" = 2 ] || fail "not attached for both directions: $(cat "$TMP/bt")"
expect_refused "attach twice" 1 "already attached to cgroup $CG for ingress" "$CGF" attach "$PIN" "$CG"
expect_refused "attach egress again" 1 "already attached to cgroup $CG for egress" "$CGF" attach "$PIN" "$CG" egress
expect_refused "a bad direction" 2 "no such direction: 'out'" "$CGF" attach "$PIN" "$CG" out
expect_refused "a cgroup that does not exist" 1 "cannot open cgroup $CG2/${T_ID}-none" \
	"$CGF" attach "$PIN" "${T_ID}-none"
expect_refused "a directory that is no cgroup" 1 "not a cgroup2 directory" "$CGF" attach "$PIN" "$TMP"
expect_ok "detach ingress" "$CGF" detach "$PIN" "$CG" ingress
expect_refused "detach what is not attached" 1 "is not attached to cgroup $CG for ingress" \
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
"$CGF" list /sys/fs/bpf | grep -q "^$PIN  dedicated pass " || fail "list does not show the mode: $("$CGF" list)"
ok "block drops everything and set keeps it; pass passes; list shows the mode"

# ---- a shared engine: per cgroup, and all ------------------------------------------------------
"$CGF" load --shared "$SPIN" || fail "load --shared failed"
"$CGF" attach "$SPIN" "$CGA" && "$CGF" attach "$SPIN" "$CGB" || fail "attach failed"
for c in "$CGA" "$CGB"; do
	"$CGF" register "$SPIN" --cgroup "$c" "tcp && (dst_port == $PT || src_port == $PT)" ||
		fail "register $c failed"
done
expect_refused "mode of a cgroup not attached" 1 "is not attached to cgroup $CG" \
	"$CGF" mode "$SPIN" --cgroup "$CG" observe
"$CGF" attach "$SPIN" "$CG" || fail "attach failed"
expect_refused "mode of a cgroup without a filter" 1 "cgroup $CG has no filter" \
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
