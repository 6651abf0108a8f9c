#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The fields the engine's entry program hands to a filter (skb->cb,
include/cgf_abi.h) against the reference decoder (verdict.py), for the
crafted packets and many random ones in both directions: a well-formed
packet reaches the filter with exactly the reference's fields, a malformed
one reaches it marked malformed.  The entry program reads most packets the
quick way and the rest with the full parser; both must give the same."""
import argparse
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402
import check_port_firewall as PF  # noqa: E402

REASON_MALFORMED, REASON_FILTER = 2, 3   # enum cgf_reason: malformed, for the filter


def packed(f):
    """skb->cb[0], [1], [2] and [4] as include/cgf_abi.h packs the fields"""
    flags = (f["ip"] | f["ipv6"] << 1 | f["tcp"] << 2 | f["udp"] << 3 | f["icmp"] << 4
             | f["frag"] << 5)
    family = 4 if f["ip"] else 6 if f["ipv6"] else 0
    return (f["src_port"] | f["dst_port"] << 16,
            f["ip_proto"] | f["icmp_type"] << 8 | f["icmp_code"] << 16 | f["tcp_flags"] << 24,
            f["ttl"] | flags << 8 | family << 16,
            f["len"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pin", required=True, help="an engine loaded with the filter 1")
    ap.add_argument("--shared", action="store_true",
                    help="the engine is shared, and the test runs in no cgroup with a filter:"
                    " every packet goes to the drop program")
    ap.add_argument("--runner", default=os.path.join(V.BUILD, "tests", "verdict-run"))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    ap.add_argument("--random-packets", type=int, default=3000)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    specs = [s for s, _ in PF.crafted()]
    specs += [("egress " if V._direction(s)[0] else "ingress ") + V._direction(s)[1]
              for s, _ in PF.crafted()]
    specs += [V.random_packet(rng) for _ in range(a.random_packets)]
    # the quick way's edges: plain extension headers (two, long ones, then
    # every transport) and what follows them cut short or too long
    for d in ("egress ", "ingress "):
        for l4 in ("tcp dport=80 flags=S", "udp dport=53", "icmp6 type=128", "tcp doff=15",
                   "tcp doff=4", "l4 proto=132 n=8", "frag off=0 m=1 / udp dport=53"):
            for exts in ("hbh len=30", "dst len=255 / rt len=1", "hip len=2 / shim6 len=0",
                         "mob len=0 / dst len=3 / hbh len=1", "hbh / ah len=1"):
                spec = "%sip6 / %s / %s" % (d, exts, l4)
                n = len(V.build(spec)) - 14
                specs += [spec] + ["%s / cut %d" % (spec, c) for c in (n - 1, n - 7, n - 19)]
    frames = [V.build(s) for s in specs]
    with tempfile.NamedTemporaryFile("w", suffix=".hex") as t:
        for fr in frames:
            t.write(fr.line() + "\n")
        t.flush()
        r = subprocess.run([a.runner, "--cb", "-p", t.name, "--pin", a.pin],
                           capture_output=True, text=True)
    if r.returncode:
        print("  not ok - verdict-run --cb failed: %s" % r.stderr.strip())
        return 1
    cbs, verdicts = {}, None
    for line in r.stdout.splitlines():
        w = line.split("\t")
        if w[0] == "cb":
            cbs[int(w[1]) - 1] = [int(x) for x in w[2].split()]
        else:
            verdicts = w[2]
    if verdicts is None or len(verdicts) != len(frames):
        print("  not ok - verdict-run gave no verdict line for every frame")
        return 1
    bad, n_ok, n_mal = [], 0, 0
    pass_ = "0" if a.shared else "1"
    for i, fr in enumerate(frames):
        if V.kernel_refuses(fr):
            if verdicts[i] != "x":
                bad.append((i, "the kernel was expected to refuse it"))
            continue
        f = V.decode(fr)
        cb = cbs.get(i)
        if cb is None:
            bad.append((i, "no cb"))
        elif f is None:
            n_mal += 1
            if verdicts[i] != "0" or cb[3] & 0xff != REASON_MALFORMED:
                bad.append((i, "malformed: want verdict 0 and reason %d, got %s and %d"
                            % (REASON_MALFORMED, verdicts[i], cb[3] & 0xff)))
        else:
            n_ok += 1
            want = packed(f)
            got = (cb[0], cb[1], cb[2], cb[4])
            if verdicts[i] != pass_ or cb[3] & 0xff != REASON_FILTER or got != want:
                bad.append((i, "want verdict %s, reason %d, cb %s; got %s, %d, %s"
                            % (pass_, REASON_FILTER, want, verdicts[i], cb[3] & 0xff, got)))
    for i, why in bad[:10]:
        print("  # packet %d: %s: %s" % (i + 1, specs[i], why))
        for line in V.explain(frames[i], specs[i]):
            print("  #   " + line)
    if bad:
        print("  not ok - entry program's fields: %d of %d packets differ from the reference"
              % (len(bad), len(frames)))
        return 1
    if n_ok < 1000 or n_mal < 50:
        print("  not ok - too few packets judged (%d well-formed, %d malformed)" % (n_ok, n_mal))
        return 1
    print("  ok - entry program's fields = reference's for %d well-formed packets, %d malformed"
          " marked so (seed %d)" % (n_ok, n_mal, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
