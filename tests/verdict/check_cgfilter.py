#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Differential test of the cgfilter engine: for the port-firewall test
filters and many random filters of the shared vocabulary, over crafted and
random packets, the engine's verdict (cgfilter set on one pinned engine, run
with BPF_PROG_TEST_RUN) must equal the clang-built port-firewall program's
verdict and the reference evaluator's.  Any disagreement prints the filter
and the packet.  Also checks the additions the engine has over port-firewall
(address and port sets) against the reference."""
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

# Filters only cgfilter accepts, with their meaning in the reference's
# vocabulary: (cgfilter text, equivalent over crafted packets' addresses).
# The crafted packets use the builder's default addresses, so the address
# sets are checked against those (ip4: 10.0.0.1 -> 10.0.0.2, ip6: fd00::1 ->
# fd00::2, see verdict.py).
SET_FILTERS = [
    ("dst_port in { 22, 53, 8000..8100 }",
     "dst_port == 22 || dst_port == 53 || (dst_port >= 8000 && dst_port <= 8100)"),
    ("dst_port in { 1, 2, 3, 4, 5, 6, 53, 80, 443, 1000..2000 }",
     "(dst_port >= 1 && dst_port <= 6) || dst_port == 53 || dst_port == 80 || dst_port == 443"
     " || (dst_port >= 1000 && dst_port <= 2000)"),
    ("tcp && !(src_port in { 0..1023 })", "tcp && !(src_port <= 1023)"),
    ("icmp_type in { 0, 8, 128, 129 } && icmp", "icmp && (icmp_type == 0 || icmp_type == 8 ||"
     " icmp_type == 128 || icmp_type == 129)"),
    ("@web = { 80, 443 } tcp && dst_port in @web", "tcp && (dst_port == 80 || dst_port == 443)"),
    ("(len + 14) in { 60..100 }", "len + 14 >= 60 && len + 14 <= 100"),
    ("tcp && local_port in { 80, 443 }", "tcp && (local_port == 80 || local_port == 443)"),
    ("remote_port in { 53, 8000..8100 } || local_port in { 22 }",
     "remote_port == 53 || (remote_port >= 8000 && remote_port <= 8100) || local_port == 22"),
]

# Filters of the direction-free names, judged by the reference (FullExpr):
# the builder's packets go 10.0.0.1 -> 10.0.0.2 (fd00::1 -> fd00::2), so
# local_ip is 10.0.0.2 on those received and 10.0.0.1 on those sent.
DIR_FILTERS = [
    "local_ip == 10.0.0.2 || local_ip == fd00::2",
    "remote_ip in { 10.0.0.1/32, fd00::1/128 } && udp",
    "@peers = { 10.0.0.1, fd00::1 } remote_ip in @peers && !(local_ip in @peers)",
    "local_ip != 10.0.0.1 && tcp && local_port in { 80, 443, 22 }",
    "(remote_ip in { 10.0.0.0/31, fd00::/127 }) ^ (src_ip == 10.0.0.1)",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--pin", required=True, help="where to load the engine")
    ap.add_argument("--cgfilter", required=True)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    ap.add_argument("--random-exprs", type=int, default=1000)
    ap.add_argument("--random-packets", type=int, default=200)
    ap.add_argument("--random-full", type=int, default=300,
                    help="random filters of the whole language, refused only as too large")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    failures, checks = [], 0

    def check(problems, msg):
        nonlocal checks
        if problems:
            failures.extend(problems)
            print("  not ok - %s: %d problems" % (msg, len(problems)))
        else:
            checks += 1
            print("  ok - %s" % msg)

    print("  seed %d (set CGF_SEED to change)" % a.seed)
    cr = PF.crafted()
    specs = [s for s, _ in cr] + [V.random_packet(rng) for _ in range(a.random_packets)]
    frames = [V.build(s) for s in specs]
    fields = [V.decode(f) for f in frames]
    print("  %d packets (%d crafted)" % (len(frames), len(cr)))

    randoms = [V.random_expr(rng)[0] for _ in range(a.random_exprs)]
    texts = PF.REF_EXAMPLES + PF.HAND + randoms

    # the clang-built port-firewall programs, batched
    t0 = time.time()
    progs = V.compile_exprs(texts, os.path.join(a.work, "batch"))
    pf = V.run_frames(frames, objects=[o for o, _ in progs], workdir=a.work)
    pf = [pf[(o, n)] for o, n in progs]
    print("  port-firewall: %d filters compiled and run in %.1fs" % (len(texts), time.time() - t0))

    # the engine: one load, then 'cgfilter set' for each filter
    fpath = os.path.join(a.work, "frames.hex")
    with open(fpath, "w") as f:
        for fr in frames:
            f.write(fr.line() + "\n")
    runner = os.path.join(V.BUILD, "tests", "verdict-run")

    def engine(text):
        r = subprocess.run([a.cgfilter, "set", a.pin, "--", text], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("cgfilter set refused %r: %s" % (text, r.stderr.strip()))
        r = subprocess.run([runner, "-p", fpath, "--pin", a.pin], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("verdict-run failed: %s" % r.stderr.strip())
        return r.stdout.split("\t")[2].strip()

    subprocess.run([a.cgfilter, "load", a.pin, "0"], check=True)
    t0 = time.time()
    probs, agree_pf = [], 0
    for i, t in enumerate(texts):
        v = engine(t)
        e = V.Expr(t)
        p = V.compare(e, frames, v, specs, fields, limit=2)
        if p:
            probs += ["engine vs reference: " + x for x in p]
        if v != pf[i]:
            j = next(k for k in range(len(v)) if v[k] != pf[i][k])
            probs.append("engine vs port-firewall for %r: packet %s: engine %s, port-firewall %s"
                         % (t, specs[j], v[j], pf[i][j]))
        else:
            agree_pf += 1
    print("  engine: %d filters set and run in %.1fs" % (len(texts), time.time() - t0))
    check(probs, "engine = port-firewall = reference for %d filters (%d random) x %d packets"
          % (len(texts), len(randoms), len(frames)))

    # the engine's own additions, against their meaning in plain operators
    probs = []
    for text, meaning in SET_FILTERS:
        v = engine(text)
        p = V.compare(V.Expr(meaning), frames, v, specs, fields, limit=2)
        probs += ["%r: %s" % (text, x) for x in p]
        if not ("0" in v and "1" in v):
            probs.append("%r never both passes and drops" % text)
    check(probs, "%d filters with port sets, ranges and named sets" % len(SET_FILTERS))

    # address sets: every packet the builder makes goes 10.0.0.1 -> 10.0.0.2
    # or fd00::1 -> fd00::2 (verdict.py), so each address filter has a
    # meaning in plain fields over these packets
    probs = []
    for text, meaning in [
            ("src_ip in { 10.0.0.0/8, fd00::/16 } && tcp", "tcp"),
            ("src_ip in { 192.168.0.0/16, 2001:db8::/32 } || udp", "udp"),
            ("dst_ip == 10.0.0.2 || dst_ip == fd00::2", "ip || ipv6"),
            ("dst_ip != 10.0.0.2 && ip", "0"),
            ("!(dst_ip in { 10.0.0.3/32, fd00::3/128 }) && udp", "udp"),
            ("src_ip in { 10.0.0.1/32 } || dst_ip in { fd00::/8 }", "ip || ipv6"),
            ("@peers = { 10.0.0.0/30, fd00::/126 } src_ip in @peers && dst_ip in @peers && icmp",
             "icmp"),
            # several prefix lengths: one hash per length
            ("src_ip in { 10.0.0.0/8, 10.0.0.0/16, 10.0.0.0/24, 10.0.0.1/32, fd00::/8,"
             " fd00::/64, fd00::1/128 } && tcp", "tcp"),
            ("dst_ip in { 10.0.0.3/32, 10.0.0.0/31, 192.0.2.0/24, fd00::3/128, fd00::/127 } || udp",
             "udp"),
            ("dst_ip in { 10.0.0.0/30, fd00::2/128 } && udp", "udp"),
            # more lengths than the engine hashes: the trie answers
            ("src_ip in { 11.0.0.0/9, 12.0.0.0/10, 13.0.0.0/11, 14.0.0.0/12, 15.0.0.0/13,"
             " 16.0.0.0/14, 17.0.0.0/15, 18.0.0.0/16, 19.0.0.0/17, 10.0.0.0/29 } && udp",
             "ip && udp"),
            ("src_ip in { 2001:db8::/33, 2001:db8::/34, 2001:db8::/35, 2001:db8::/36,"
             " 2001:db8::/37, 2001:db8::/38, 2001:db8::/39, 2001:db8::/40, fd00::/127 } && tcp",
             "ipv6 && tcp")]:
        v = engine(text)
        probs += ["%r: %s" % (text, x) for x in V.compare(V.Expr(meaning), frames, v, specs, fields, limit=2)]
    check(probs, "address sets and address comparisons")

    # local_ip and remote_ip: dst_ip and src_ip on a packet received, src_ip
    # and dst_ip on one sent; the packets go both ways, the reference says
    probs = []
    for text in DIR_FILTERS:
        v = engine(text)
        e = V.FullExpr(text)
        for j, fr in enumerate(frames):
            if v[j] != e.verdict(fr) and not (v[j] == "x" and V.kernel_refuses(fr)):
                probs.append("%r: packet %s: engine %s, reference %s" % (text, specs[j], v[j],
                                                                       e.verdict(fr)))
                break
        if not ("0" in v and "1" in v):
            probs.append("%r never both passes and drops" % text)
    check(probs, "%d filters of local_ip, remote_ip, local_port, remote_port, both directions"
          % len(DIR_FILTERS))

    # random filters of the whole language (sets, addresses, named sets;
    # now and then thousands of terms): each loads and does what the
    # reference says, or is refused as too large, never by the verifier
    probs, loaded, large, reasons = [], 0, 0, {}
    sys.setrecursionlimit(20000)
    t0 = time.time()
    for _ in range(a.random_full):
        text = V.random_full_expr(rng)
        tpath = os.path.join(a.work, "filter.txt")
        with open(tpath, "w") as f:
            f.write(text)
        r = subprocess.run([a.cgfilter, "set", a.pin, "-f", tpath], capture_output=True, text=True)
        if r.returncode:
            msg = r.stderr.strip()
            if "too large" not in msg or "verifier" in msg or "\n" in msg:
                probs.append("refused, but not as too large (%d chars): %s: %s"
                             % (len(text), msg[:300], text[:200]))
            else:
                large += 1
                why = re.sub(r"[0-9]+", "N", msg.split(":", 1)[-1].split("(")[0].strip())
                reasons[why] = reasons.get(why, 0) + 1
            continue
        loaded += 1
        r = subprocess.run([runner, "-p", fpath, "--pin", a.pin], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("verdict-run failed: %s" % r.stderr.strip())
        v = r.stdout.split("\t")[2].strip()
        e = V.FullExpr(text)
        for j, fr in enumerate(frames):
            if v[j] != e.verdict(fr) and not (v[j] == "x" and V.kernel_refuses(fr)):
                probs.append("%r (%d chars): packet %s: engine %s, reference %s"
                             % (text[:200], len(text), specs[j], v[j], e.verdict(fr)))
                break
    print("  whole language: %d random filters in %.1fs: %d loaded, %d refused as too large%s"
          % (a.random_full, time.time() - t0, loaded, large,
             "".join("\n    %d: %s" % (n, w) for w, n in sorted(reasons.items()))))
    check(probs, "%d random filters of the whole language: engine = reference, or 'too large'"
          % a.random_full)
    if a.random_full and not loaded:
        check(["none of them loaded"], "random filters load")

    for f in failures[:20]:
        print("FAIL: " + f, file=sys.stderr)
    if failures:
        print("%d problems" % len(failures), file=sys.stderr)
        return 1
    print("  %d checks passed" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
