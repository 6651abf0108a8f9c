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
filter shown, one line, and nothing else.

A shared engine finds a cgroup's filter in cgroup storage, which
BPF_PROG_TEST_RUN does not reach: --cgroup CG (as show prints it, "/a/b")
judges the filter of that cgroup (--direction, ingress by default) against
what show says it uses (the sets as listed, but those it keeps other:
kept_sets).  Its program (show's filter_program_id) is run with skb->cb as
the entry of a dedicated engine left it, loaded beside PIN for the purpose
(PIN_judgePID, with the filter 1, unloaded after): both entries parse a
packet alike.
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


def run_via(cgfilter, pin, prog_id, frames):
    """The verdicts of filter program prog_id of a shared engine, run after
    the entry of a dedicated engine loaded at pin for it with the filter 1
    (which leaves skb->cb as the entry made it): a message if that cannot
    be done: (verdicts, None) or (None, message)."""
    r = subprocess.run([cgfilter, "load", pin, "1"], capture_output=True, text=True)
    if r.returncode:
        return None, "judge: cannot load %s to run program %d: %s" % (pin, prog_id, r.stderr.strip())
    try:
        return V.run_frames(frames, pins=[pin], then=["--then-prog-id", str(prog_id)])[("pin", pin)], None
    except RuntimeError as e:
        return None, "judge: cannot run program %d: %s" % (prog_id, e)
    finally:
        subprocess.run([cgfilter, "unload", pin], capture_output=True)


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
    ap.add_argument("--cgroup", help="a shared engine: the filter of this cgroup, as show prints it")
    ap.add_argument("--direction", default="ingress", choices=("ingress", "egress"))
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
    sets = {name: s["items"] for name, s in shown["sets"].items()}
    if shown.get("engine") == "shared":
        if not a.cgroup:
            print("judge: %s is a shared engine: name the cgroup (--cgroup)" % a.pin)
            return 2
        mine = [f for f in shown["filters"]
                if f["cgroup"] == a.cgroup and f["direction"] == a.direction]
        if len(mine) != 1:
            print("judge: %s shows %d filters for %s %s" % (a.pin, len(mine), a.cgroup, a.direction))
            return 1
        shown = mine[0]
        if "kept_sets" not in shown:
            print("judge: %s shows no kept_sets for %s" % (a.pin, a.cgroup))
            return 1
        sets.update({name: s["items"] for name, s in shown["kept_sets"].items()})
        run_pin = "%s_judge%d" % (a.pin, os.getpid())
    elif shown.get("engine") == "dedicated" and not a.cgroup:
        run_pin = a.pin
    else:
        print("judge: %s is not a %s engine" % (a.pin, "shared" if a.cgroup else "dedicated"))
        return 2
    text = shown["filter"]
    if a.print_filter:
        print(text if text is not None else "(none)")
        return 0
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
    if text is None and a.cgroup:
        print("judge: %s has no filter for %s: no program to run" % (a.pin, a.cgroup))
        return 1
    if run_pin == a.pin:
        got = V.run_frames(frames, pins=[a.pin])[("pin", a.pin)]
    else:
        got, why = run_via(a.cgfilter, run_pin, shown["filter_program_id"], frames)
        if why:
            print(why)
            return 1
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
