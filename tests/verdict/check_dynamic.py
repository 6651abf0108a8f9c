#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Dynamic sets (add(), del(), 'in' a set with a timeout) against the
reference model, which keeps the sets' entries from packet to packet: each
filter is set on a fresh cgfilter engine (--pin) or compiled as the eBPF
socket filter of cgfilter wrap (--socket, frames through a veth pair), and
a sequence of packets runs through it in order; every verdict must be the
reference's.  The packets: port knocks in and out of order, from IPv4 and
IPv6 sources, with other traffic between.

  check_dynamic.py --cgfilter BIN --pin PIN
  check_dynamic.py --socket --send IF --recv IF --work DIR
"""
import argparse
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402

TOP = V.TOP
KNOCK = open(os.path.join(TOP, "examples", "port-knocking.filter")).read()

FILTERS = [
    KNOCK,
    # recently seen: a source passes once it has sent a SYN
    "@seen = { } timeout 60\nsrc_ip in @seen || (tcp_syn && add(@seen, src_ip) && 0)",
    # evaluation order: 'in' before add() in the same filter, left to right
    "@s = { } timeout 60\n(src_ip in @s) + add(@s, src_ip) == 1",
    "@s = { } timeout 60\nadd(@s, src_ip) + (src_ip in @s) == 2",
    # ... also where the right operand is the heavier one (a back end that
    # evaluates the heavier first must not, here)
    "@s = { } timeout 60\n(src_ip in @s) + add(@s, src_ip) * ((ttl + 1) * ((len + 1) * "
    "((ip_proto + 1) * (icmp_type + 1))) != 0) == 1",
    # && || ?: do not evaluate what they skip
    "@s = { } timeout 60\n(0 && add(@s, src_ip)) || (ip && 0 && add(@s, src_ip)) || src_ip in @s",
    "@s = { } timeout 60\nudp ? add(@s, src_ip) && 0 : src_ip in @s",
    # ... also where they are values, not tests
    "@s = { } timeout 60\n((udp && add(@s, src_ip)) + (tcp ? 0 : add(@s, dst_ip)) + "
    "(src_ip in @s) + (dst_ip in @s)) % 3 != 0",
    "@s = { } timeout 60\nudp && del(@s, src_ip) && 0 || tcp && src_ip in @s || icmp && add(@s, src_ip)",
    # integers: ports seen
    "@p = { } timeout 60\n(dst_port in @p) ^ add(@p, dst_port) ^ (udp && del(@p, dst_port + 1))",
    "@p = { } timeout 60\n@q = { } timeout 60\nadd(@p, ttl * 256 + ip_proto) && (len in @q || add(@q, len) && 0)",
    # the peer's side: a peer that sent to port 4242 (or was sent to from
    # it) may use any port
    "@peer = { } timeout 60\nremote_ip in @peer || (local_port == 4242 && add(@peer, remote_ip) && 0)"
    " || remote_port in { 53 } && add(@peer, local_ip) && 0",
]


def knock_seq(rng):
    """Specs: knocks right and wrong, SYNs after them, other packets."""
    out = []
    srcs4 = ["10.0.0.%d" % i for i in (1, 3, 5)]
    srcs6 = ["fd00::%d" % i for i in (1, 3)]

    def syn(src, sport, dport=4242):
        v = "ip6" if ":" in src else "ip4"
        return "%s src=%s / tcp sport=%d dport=%d flags=S" % (v, src, sport, dport)
    for src in srcs4 + srcs6:
        out.append(syn(src, 40000))                       # closed
        order = rng.choice([[15000, 15001, 15002], [15001, 15000, 15002],
                            [15000, 15002, 15001], [15000, 15001, 15001, 15002],
                            [15000, 15000, 15001, 15002]])
        for p in order:
            out.append(syn(src, p))
            if rng.random() < 0.3:
                out.append(V.random_packet(rng))
        out.append(syn(src, 40001))                       # open, if the order was right
        v = "ip6" if ":" in src else "ip4"
        out.append("%s src=%s / tcp sport=40001 dport=4242 flags=A / data 10" % (v, src))
        out.append("%s src=%s / udp sport=53 dport=4242" % (v, src))
        out.append("%s src=%s / icmp%s type=8" % (v, src, "6" if v == "ip6" else ""))
        out.append(syn(src, 15000))                       # starts over
        out.append(syn(src, 40002))
    # the knocks reach the server: received (the random packets go both ways)
    return [s if s.startswith(("ingress ", "egress ")) else "ingress " + s for s in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cgfilter")
    ap.add_argument("--pin")
    ap.add_argument("--socket", action="store_true")
    ap.add_argument("--send")
    ap.add_argument("--recv")
    ap.add_argument("--work")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    specs = knock_seq(rng) + [V.random_packet(rng) for _ in range(60)] + knock_seq(rng)
    if a.socket:   # a socket filter sees packets received
        specs = [V.received(s) for s in specs]
    frames = [V.build(s) for s in specs]
    probs, opened = [], 0
    if a.socket:
        fpath = os.path.join(a.work, "dyn-frames.hex")
        tpath = os.path.join(a.work, "dyn-filters.txt")
        with open(fpath, "w") as f:
            f.write("".join(fr.line() + "\n" for fr in frames))
        with open(tpath, "w") as f:
            # one filter a line: the harness reads lines
            f.write("".join(" ".join(t.split("\n")) + "\n" for t in
                            [" ".join(l for l in t.split("\n") if not l.lstrip().startswith("#"))
                             for t in FILTERS]))
        r = subprocess.run([os.path.join(V.BUILD, "tests", "cbpf-run"), "-e", "-p", fpath,
                            "-o", a.send, "-i", a.recv, tpath], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("cbpf-run failed: %s" % r.stderr.strip())
        got = [l.split("\t", 1) for l in r.stdout.split("\n")[:-1]]
    else:
        got = []
        for t in FILTERS:
            subprocess.run([a.cgfilter, "unload", a.pin], capture_output=True)
            r = subprocess.run([a.cgfilter, "load", a.pin, "--", t], capture_output=True, text=True)
            if r.returncode:
                got.append(("refused", r.stderr.strip()))
                continue
            fpath = os.path.join(a.work, "dyn-frames.hex")
            with open(fpath, "w") as f:
                f.write("".join(fr.line() + "\n" for fr in frames))
            r = subprocess.run([os.path.join(V.BUILD, "tests", "verdict-run"), "-p", fpath,
                                "--pin", a.pin], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit("verdict-run failed: %s" % r.stderr.strip())
            got.append(("ok", r.stdout.split("\t")[2].strip()))
        subprocess.run([a.cgfilter, "unload", a.pin], capture_output=True)
    for t, (status, v) in zip(FILTERS, got):
        if status != "ok":
            probs.append("%r refused: %s" % (t[:80], v))
            continue
        e = V.FullExpr(t)   # one object: its sets live from packet to packet
        for j, fr in enumerate(frames):
            want = e.verdict(fr)
            if v[j] == "x" and V.kernel_refuses(fr):
                continue
            if v[j] != want:
                probs.append("%r: packet %d (%s): got %s, reference %s (the packets before: %s)"
                             % (t[:60], j, specs[j], v[j], want, "; ".join(specs[max(0, j - 4):j])))
                break
        if t == KNOCK:
            opened = sum(1 for j, s in enumerate(specs) if "sport=40001" in s and "flags=S" in s
                         and v[j] == "1")
    if not opened:
        probs.append("no knock sequence opened the port: the test proves nothing")
    for p in probs:
        print("FAIL: " + p, file=sys.stderr)
    if probs:
        return 1
    print("  ok - %d stateful filters x %d packets in order = reference (%d knock sequences opened)"
          % (len(FILTERS), len(frames), opened))
    return 0


if __name__ == "__main__":
    sys.exit(main())
