#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Differential test of the classic BPF back end (lang/emit_cbpf.c): for
port-firewall's test filters, 1000 random filters and random filters of the
whole language (literal and declared sets), over the crafted and random
packets, the verdict of the classic program in the real kernel (an
AF_PACKET socket on one end of a veth pair, build/tests/cbpf-run) must be
the reference model's.  What the back end refuses must be refused with one
clear line that names classic BPF; how many it accepts is reported.

  check_classic.py --work DIR --send IF --recv IF [--seed N]
"""
import argparse
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402
import check_port_firewall as PF  # noqa: E402
import check_cgfilter as CG  # noqa: E402

# The receiving end strips a VLAN tag before any socket sees the frame, so
# such a frame is not what the reference judges: left out, and said so.
VLAN_TYPES = (0x8100, 0x88A8)

ADDR_FILTERS = [
    "src_ip in { 10.0.0.0/8, fd00::/16 } && tcp",
    "src_ip in { 192.168.0.0/16, 2001:db8::/32 } || udp",
    "dst_ip == 10.0.0.2 || dst_ip == fd00::2",
    "dst_ip != 10.0.0.2 && ip",
    "!(dst_ip in { 10.0.0.3/32, fd00::3/128 }) && udp",
    "@peers = { 10.0.0.0/30, fd00::/126 } src_ip in @peers && dst_ip in @peers && icmp",
    "src_ip in { 10.0.0.0/8, 10.0.0.0/16, 10.0.0.1/32, 0.0.0.0/0 } && dst_ip in { ::/0 }",
    "dst_ip in { 10.0.0.3/32, 10.0.0.0/31, 192.0.2.0/24, fd00::3/128, fd00::/127 } || udp",
    "src_ip in { 10.0.0.1, 10.0.0.3, 10.0.0.5, 10.0.0.7, 10.0.0.9, 10.0.0.11, 10.0.0.13 }",
    # a socket filter sees packets received: local is dst, remote src
    "local_ip in { 10.0.0.2, fd00::2 } && remote_ip == 10.0.0.1",
    "remote_ip != fd00::1 && local_port in { 80, 443 } || remote_port == 53",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--send", required=True)
    ap.add_argument("--recv", required=True)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    ap.add_argument("--random-exprs", type=int, default=1000)
    ap.add_argument("--random-packets", type=int, default=200)
    ap.add_argument("--random-full", type=int, default=200)
    ap.add_argument("--ebpf", action="store_true",
                    help="the eBPF socket filter (with privileges), which must accept everything"
                    " but what is too large")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print("  seed %d (set CGF_SEED to change)" % a.seed)

    specs = [s for s, _ in PF.crafted()] + [V.random_packet(rng) for _ in range(a.random_packets)]
    # every frame reaches the socket received: that is what the reference judges
    specs = [V.received(s) for s in specs]
    frames = [V.build(s) for s in specs]
    keep = [i for i, f in enumerate(frames) if (f[12] << 8 | f[13]) not in VLAN_TYPES]
    print("  %d packets (%d left out: a VLAN tag, which the receiving end strips)"
          % (len(keep), len(frames) - len(keep)))
    specs = [specs[i] for i in keep]
    frames = [frames[i] for i in keep]

    randoms = [V.random_expr(rng)[0] for _ in range(a.random_exprs)]
    fixed = PF.REF_EXAMPLES + PF.HAND + [t for t, _ in CG.SET_FILTERS] + ADDR_FILTERS
    fulls = [V.random_full_expr(rng) for _ in range(a.random_full)]
    texts = fixed + randoms + fulls
    for t in texts:
        if "\n" in t:
            raise SystemExit("a filter of several lines: %r" % t[:100])

    fpath = os.path.join(a.work, "frames.hex")
    with open(fpath, "w") as f:
        for fr in frames:
            f.write(fr.line() + "\n")
    tpath = os.path.join(a.work, "filters.txt")
    with open(tpath, "w") as f:
        for t in texts:
            f.write(t + "\n")
    t0 = time.time()
    r = subprocess.run([os.path.join(V.BUILD, "tests", "cbpf-run")] + (["-e"] if a.ebpf else [])
                       + ["-p", fpath, "-o", a.send, "-i", a.recv, tpath], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("cbpf-run failed: %s" % r.stderr.strip())
    lines = r.stdout.split("\n")[:-1]
    if len(lines) != len(texts):
        raise SystemExit("cbpf-run answered %d filters of %d" % (len(lines), len(texts)))
    print("  %d filters run in the kernel in %.1fs" % (len(texts), time.time() - t0))

    probs, ok, refused, reasons = [], {"fixed": 0, "random": 0, "full": 0}, {}, {}
    for i, (t, line) in enumerate(zip(texts, lines)):
        kind = "fixed" if i < len(fixed) else "random" if i < len(fixed) + len(randoms) else "full"
        status, out = line.split("\t", 1)
        if status == "refused":
            refused[kind] = refused.get(kind, 0) + 1
            if a.ebpf and "too large" not in out:
                probs.append("eBPF refused, not as too large: %s: %r" % (out[:300], t[:200]))
            if not a.ebpf and "classic BPF" not in out:
                probs.append("refused without naming classic BPF: %s: %r" % (out, t[:200]))
            why = re.sub(r"'[^']*'", "'X'", re.sub(r"(line [0-9]+, )?column [0-9]+: ", "", out))
            why = re.sub(r"[0-9]+", "N", why)
            reasons[why] = reasons.get(why, 0) + 1
            continue
        ok[kind] += 1
        e = V.FullExpr(t)
        for j, fr in enumerate(frames):
            want = e.verdict(fr)
            if out[j] != want:
                probs.append("%r: packet %s: classic %s, reference %s"
                             % (t[:200], specs[j], out[j], want))
                break
    print("  accepted: %d of %d fixed filters, %d of %d random, %d of %d of the whole language"
          % (ok["fixed"], len(fixed), ok["random"], len(randoms), ok["full"], len(fulls)))
    for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:8]:
        print("    refused %d: %s" % (n, why))
    # what classic BPF can evaluate exactly must be accepted; len is 32 bits
    # wide (BIG TCP), so len + 14 may not fit and must be refused
    for t in PF.REF_EXAMPLES + [t for t, _ in CG.SET_FILTERS if "len +" not in t] + ADDR_FILTERS:
        if lines[texts.index(t)].startswith("refused") and not a.ebpf:
            probs.append("refused a filter classic BPF can evaluate: %r: %s"
                         % (t, lines[texts.index(t)]))
    for t in [t for t, _ in CG.SET_FILTERS if "len +" in t]:
        if not a.ebpf and "may not fit in 32 bits" not in lines[texts.index(t)]:
            probs.append("%r must be refused (len + 14 may not fit in 32 bits): %s"
                         % (t, lines[texts.index(t)]))
    # the back end must evaluate most filters, not refuse its way to a pass
    if ok["random"] < len(randoms) * (0.99 if a.ebpf else 0.8):
        probs.append("only %d of %d random filters accepted" % (ok["random"], len(randoms)))
    for p in probs[:20]:
        print("FAIL: " + p, file=sys.stderr)
    if probs:
        print("%d problems" % len(probs), file=sys.stderr)
        return 1
    print("  ok - %s program = reference for every accepted filter" % ("eBPF" if a.ebpf else "classic"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
