#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Does a loaded cgfilter engine do what it shows?  Reads `cgfilter show
--json PIN` (the filter in force and every named set's items), computes with
the reference model (verdict.py, FullExpr) the verdict of each packet, runs
the packets through the pinned program with BPF_PROG_TEST_RUN
(build/tests/verdict-run) and compares.  Exit 0 when every verdict agrees,
1 (printing the disagreements) when one does not, 2 on bad usage.

  judge.py --cgfilter BIN --pin PIN [--want TEXT]... [SPEC]...
  judge.py --cgfilter BIN --pin PIN --expect SPEC...   the reference's verdicts
  judge.py --cgfilter BIN --pin PIN --frames FILE SPEC...   the frames, in hex
  judge.py --cgfilter BIN --pin PIN --only SPEC...   those packets only

SPEC: packets as verdict.py builds them ("ip4 src=192.0.2.1 / tcp dport=80");
besides them, every address the filter or its sets name is tried as source
and destination, with TCP and UDP to a few ports.  --want: the filter shown
must be one of these texts (say, the old or the new one).  --print prints the
filter shown, one line, and nothing else.  Dedicated engines only (a shared
engine's filters live in cgroup storage, which BPF_PROG_TEST_RUN does not
reach).
"""
import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402

# a filter of the parser's size is a tree 50000 deep
sys.setrecursionlimit(400000)

PORTS = [22, 53, 80, 443, 8080]


def addresses(text, sets):
    """Every address the filter text and the sets name, and neighbours."""
    words = re.findall(r"[0-9A-Fa-f:.]+(?:/[0-9]+)?", text)
    for items in sets.values():
        words += items
    out = set()
    for w in words:
        if not V._item_is_addr(w):
            continue
        try:
            net = ipaddress.ip_network(w, strict=False)
        except ValueError:
            continue
        first = net.network_address
        out.add(first)
        out.add(net.broadcast_address)
        if int(first) > 0:
            out.add(first - 1)
        if int(net.broadcast_address) < (1 << net.max_prefixlen) - 1:
            out.add(net.broadcast_address + 1)
    return sorted(out, key=lambda a: (a.version, int(a)))


def battery(addrs):
    specs = ["ip4 / tcp dport=80", "ip6 / udp dport=53", "ip4 / icmp", "ether type=0x0806 / data 30"]
    for a in addrs:
        layer = "ip4" if a.version == 4 else "ip6"
        for d in ("src", "dst"):
            for l4 in ["tcp dport=%d" % p for p in PORTS] + ["udp dport=53", "udp dport=8080"]:
                specs.append("%s %s=%s / %s" % (layer, d, a, l4))
    return specs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cgfilter", required=True)
    ap.add_argument("--pin", required=True)
    ap.add_argument("--want", action="append", default=[])
    ap.add_argument("--print", action="store_true", dest="print_filter")
    ap.add_argument("--expect", action="store_true",
                    help="print the reference's verdicts for the SPECs only (one digit each)")
    ap.add_argument("--frames", help="write the SPECs' frames, in hex, to this file and exit")
    ap.add_argument("--only", action="store_true",
                    help="judge the SPECs only, not every address the filter names (for huge sets)")
    ap.add_argument("specs", nargs="*")
    a = ap.parse_args()
    if a.frames:
        with open(a.frames, "w") as f:
            for spec in a.specs:
                f.write(V.build(spec).line() + "\n")
        return 0

    r = subprocess.run([a.cgfilter, "show", "--json", a.pin], capture_output=True, text=True)
    if r.returncode:
        print("judge: cgfilter show --json %s failed: %s" % (a.pin, r.stderr.strip()))
        return 1
    try:
        shown = json.loads(r.stdout)
    except ValueError as e:
        print("judge: show --json is not JSON (%s): %r" % (e, r.stdout[:300]))
        return 1
    if shown.get("engine") != "dedicated":
        print("judge: %s is not a dedicated engine" % a.pin)
        return 2
    text = shown["filter"]
    if a.print_filter:
        print(text if text is not None else "(none)")
        return 0
    sets = {name: s["items"] for name, s in shown["sets"].items()}
    if a.want and text not in a.want:
        print("judge: %s shows the filter %r, not one of %r" % (a.pin, text, a.want))
        return 1
    # a filter text's declarations gave the sets their first items; what the
    # engine holds now is in "sets"
    expr = V.FullExpr(text, sets, decls_only_new=True) if text is not None else None
    mode = shown.get("mode") or "enforce"

    def reference(fr):
        # the mode shown decides what the filter's verdict becomes
        if expr is None or mode == "block":
            return "0"
        if mode in ("observe", "pass"):
            return "1"
        return expr.verdict(fr)
    if a.expect:
        print("".join(reference(V.build(s)) for s in a.specs))
        return 0
    specs = list(a.specs) + ([] if a.only else battery(addresses(text or "", sets)))
    frames = [V.build(s) for s in specs]
    got = V.run_frames(frames, pins=[a.pin])[("pin", a.pin)]
    bad = []
    for spec, fr, g in zip(specs, frames, got):
        want = reference(fr)
        if g != want and not (g == "x" and V.kernel_refuses(fr)):
            bad.append("%s: program %s, reference %s" % (spec, g, want))
    if bad:
        print("judge: %s does not do what it shows (%r, sets %s): %d of %d packets differ:"
              % (a.pin, text, json.dumps(sets), len(bad), len(specs)))
        for b in bad[:10]:
            print("  " + b)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
