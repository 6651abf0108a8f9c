#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The modes of a cgfilter engine (cgfilter mode PIN enforce|observe|block|
pass) against the reference model: for each mode, in turn and back, the
verdict of every packet (BPF_PROG_TEST_RUN through the pinned entry
program) and what each counter gained (stats --json) must be what the mode
defines from the reference's verdict:

  enforce  the filter's verdict; malformed packets dropped and counted
  observe  every packet passes; the filter's drops counted as would-drop
  block    every packet dropped (malformed ones counted as malformed)
  pass     every packet passes

and the mode is kept by 'set', and by a mode change the named sets edited
with set-add stay as they are.

  check_modes.py --cgfilter BIN --pin PIN --work DIR
"""
import argparse
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402

FILTER = ("@web = { 80, 443 }\n"
          "tcp && dst_port in @web || udp && src_ip in { 10.0.0.0/8, fd00::/8 } && dst_port == 53"
          " || icmp")
FILTER2 = "udp || tcp && dst_port == 22"

CRAFTED = [
    "ip4 / tcp dport=80 flags=S", "ip4 / tcp dport=8080 flags=S", "ip6 / tcp dport=443 flags=S",
    "ip4 / udp dport=53", "ip4 src=192.0.2.1 / udp dport=53", "ip6 / udp dport=53",
    "ip4 / icmp type=8", "ip6 / icmp6 type=128", "ip4 / tcp dport=22 flags=S",
    "ip4 / tcp dport=80 flags=S / cut 10",        # malformed: short TCP header
    "ip4 ihl=3 / udp dport=53",                   # malformed: bad header length
    "ip6 / tcp dport=8081 flags=S / cut 5",       # malformed
]

COUNTERS = ["passed_packets", "passed_bytes", "dropped_packets", "dropped_bytes", "malformed",
            "would_drop_packets", "would_drop_bytes"]


def run(a, *args, check=True):
    r = subprocess.run([a.cgfilter] + list(args), capture_output=True, text=True)
    if check and r.returncode:
        raise SystemExit("check_modes: cgfilter %s failed (%d): %s"
                         % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def stats(a):
    return json.loads(run(a, "stats", "--json", a.pin).stdout)


def expected(mode, ref, malformed, length):
    """(verdict, counter gains) of one packet in mode, from the reference."""
    g = dict.fromkeys(COUNTERS, 0)
    if mode == "enforce":
        v = ref
    elif mode == "block":
        v = "0"
    else:
        v = "1"
    if v == "1":
        g["passed_packets"], g["passed_bytes"] = 1, length
    else:
        g["dropped_packets"], g["dropped_bytes"] = 1, length
        g["malformed"] = int(malformed)
    if mode == "observe" and ref == "0":
        g["would_drop_packets"], g["would_drop_bytes"] = 1, length
    return v, g


def check(a, mode, expr, frames, specs, probs):
    shown = run(a, "mode", a.pin).stdout.strip()
    if shown != mode:
        probs.append("'cgfilter mode PIN' says %r, expected %r" % (shown, mode))
    for what, js in (("show", json.loads(run(a, "show", "--json", a.pin).stdout)), ("stats", stats(a))):
        if js.get("mode") != mode:
            probs.append("%s --json says mode %r, expected %r" % (what, js.get("mode"), mode))
    before = stats(a)
    got = V.run_frames(frames, pins=[a.pin], workdir=a.work)[("pin", a.pin)]
    after = stats(a)
    want = dict.fromkeys(COUNTERS, 0)
    for j, fr in enumerate(frames):
        if got[j] == "x" and V.kernel_refuses(fr):
            continue
        ref = expr.verdict(fr)
        v, g = expected(mode, ref, V.decode(fr) is None, len(fr) - 14)
        for k in COUNTERS:
            want[k] += g[k]
        if got[j] != v:
            probs.append("mode %s, filter %r: packet %d (%s): got %s, expected %s (reference %s)"
                         % (mode, expr.text[:50], j, specs[j], got[j], v, ref))
            if len(probs) > 8:
                return
    for k in COUNTERS:
        if after[k] - before[k] != want[k]:
            probs.append("mode %s: %s grew by %d, expected %d" % (mode, k, after[k] - before[k], want[k]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cgfilter", required=True)
    ap.add_argument("--pin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    specs = CRAFTED + [V.random_packet(rng) for _ in range(300)]
    frames = [V.build(s) for s in specs]
    nmal = sum(1 for f in frames if V.decode(f) is None and not V.kernel_refuses(f))
    if nmal < 3:
        raise SystemExit("check_modes: only %d malformed packets: the test would not test them" % nmal)
    probs = []
    run(a, "unload", a.pin, check=False)
    run(a, "load", a.pin, "--", FILTER)
    e1 = V.FullExpr(FILTER)
    for mode in ["enforce", "observe", "block", "pass", "observe", "enforce"]:
        run(a, "mode", a.pin, mode)
        check(a, mode, e1, frames, specs, probs)
    # a mode is kept by set; the new filter runs in it
    run(a, "mode", a.pin, "observe")
    run(a, "set", a.pin, "--", FILTER2)
    e2 = V.FullExpr(FILTER2)
    check(a, "observe", e2, frames, specs, probs)
    run(a, "mode", a.pin, "enforce")
    check(a, "enforce", e2, frames, specs, probs)
    # a mode change keeps the named sets as they are (set-add after the
    # declaration): the filter is rebuilt from its text, not re-declared
    run(a, "set", a.pin, "--", FILTER)
    run(a, "set-add", a.pin, "@web", "8080")
    e3 = V.FullExpr(FILTER, {"web": ["80", "443", "8080"]}, decls_only_new=True)
    for mode in ["block", "enforce"]:
        run(a, "mode", a.pin, mode)
        check(a, mode, e3, frames, specs, probs)
    run(a, "unload", a.pin, check=False)
    for p in probs:
        print("check_modes: " + p)
    if probs:
        return 1
    print("check_modes: %d packets (%d malformed) in 4 modes, kept by set, sets kept by mode: "
          "as the reference says" % (len(frames), nmal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
