# SPDX-License-Identifier: GPL-2.0-only
"""Compare port-firewall's verdicts with the reference model (verdict.py) over
crafted packets for every parsing case, random packets, the reference
examples, hand-written filters touching every field and random filters.

  check_port_firewall.py --work DIR [--seed N] [--random-exprs N]
      [--random-packets N] [--real OBJECT EXPR]... [--pin PIN EXPR]...
      [--crafted-only]

--real/--pin name programs built and loaded through port-firewall/Makefile
with FILTER=EXPR.  Exit 0 when everything agrees, 1 on a disagreement (each
one printed with the expression, the packet in hex, its decoded fields and
both verdicts), 2 when something could not run.
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402

REF_EXAMPLES = ["icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)",
                "!udp || dst_port == 53"]

# Filters written by hand so that every field and operator is used.
HAND = [
    "len > 60 && len <= 100",
    "ip_proto == 17 || ip_proto == 47",
    "icmp && icmp_type == 8 && icmp_code == 0",
    "icmp_code != 0 || icmp_type == 3 || icmp_type == 129",
    "(tcp_flags & 0x12) == 0x12",
    "tcp_syn && !tcp_ack",
    "tcp_fin || tcp_rst || tcp_psh || tcp_urg",
    "frag ? ip : ipv6 && ttl > 1",
    "ttl >= 64 && ttl < 200",
    "src_port == 40000 ? dst_port != 22 : udp",
    "ipv6 && !frag && (src_port ^ dst_port) > 0x8000",
    "tcp && (dst_port == 80 || dst_port == 443) && tcp_flags != 0",
    "(len - 40) % 8 == 0x0",
    "-ttl > 0xff00 && 1 << (ttl & 7) >= 8",
    "len / 0 == 0 && len % 0 == len && 1 << 64 == 1 && ip_proto >> 65 == ip_proto >> 1",
    "tcp_urg + tcp_ack * 2 + tcp_psh * 4 == 2",
    "~ttl & 1 | ip_proto == 6",
    "ip + ipv6 * 2 + tcp * 4 + udp * 8 + icmp * 16 == 9",
    "0 - len < 0xffffffffffffff00",
    "tcp_psh >> tcp_fin",
    "frag",
    "icmp ? icmp_type : dst_port == 80 ? 1 : src_port < 1024",
    # the direction-free names: the same filter for both directions
    "tcp && local_port == 80",
    "udp && (remote_port == 53 || local_port == 53)",
    "local_port < remote_port && (local_port ^ remote_port) == (src_port ^ dst_port)",
]


def crafted():
    """(spec, what it tests) for every parsing case."""
    c = []
    add = lambda spec, why="": c.append((spec, why))
    # IPv4 without and with options, bad IHL, wrong version
    add("ip4 / tcp dport=80 flags=S", "IPv4 TCP to 80")
    add("ip4 / tcp dport=22 flags=S", "IPv4 TCP to 22")
    # both directions: local and remote swap with src and dst
    add("ingress ip4 / tcp sport=40000 dport=80 flags=S", "IPv4 TCP to 80, received")
    add("ip4 / tcp sport=80 dport=40000 flags=SA", "IPv4 TCP from 80, sent")
    add("ingress ip4 / tcp sport=80 dport=40000 flags=SA", "IPv4 TCP from 80, received")
    add("ingress ip6 / udp sport=53 dport=40000", "IPv6 UDP from 53, received")
    add("ip6 / udp sport=40000 dport=53", "IPv6 UDP to 53, sent")
    add("ingress ip6 / frag off=3 / udp sport=53 dport=53", "a later fragment, received: no ports")
    add("ingress ip4 / icmp type=8", "ICMP received: no ports")
    add("ip4 ttl=1 / tcp sport=443 dport=80 flags=SA / data 10")
    add("ip4 opts=4 / tcp dport=80 flags=A", "IPv4 4 bytes of options")
    add("ip4 opts=40 / udp dport=53", "IPv4 IHL 15")
    add("ip4 opts=40 / udp dport=54")
    add("ip4 ihl=4 / tcp dport=80", "IHL below 5")
    add("ip4 ihl=0 / udp dport=53")
    add("ip4 ihl=15 / udp dport=53", "IHL beyond the packet")
    add("ip4 opts=8 / udp dport=53 / cut 26", "options truncated")
    add("ip4 ver=6 / udp dport=53", "IPv4 ethertype, version 6")
    add("ip6 ver=4 / udp dport=53", "IPv6 ethertype, version 4")
    add("ip4 ttl=0 / udp dport=53")
    add("ip4 ttl=255 df=1 / udp sport=53 dport=20053")
    # IPv6 and its extension headers, chains of 1..8, then 9
    add("ip6 / tcp dport=80 flags=S")
    add("ip6 hlim=1 / udp dport=53")
    add("ip6 nh=59 / data 8", "no next header")
    add("ip6 / icmp6 type=128", "ICMPv6 echo request")
    add("ip6 / icmp6 type=1 code=4")
    kinds = ["hbh len=1", "rt len=2", "dst len=0", "mob len=0", "hip len=1",
             "shim6 len=0", "ah len=1", "frag off=0 m=1", "ah len=4"]
    for k in kinds:
        add("ip6 / %s / udp dport=53" % k, "one %s" % k.split()[0])
        add("ip6 / %s / tcp dport=22" % k)
    for n in range(1, 10):
        chain = " / ".join(kinds[(i + n) % len(kinds)] for i in range(n))
        add("ip6 / %s / udp dport=53 / data 4" % chain, "chain of %d" % n)
        add("ip6 / %s / tcp dport=80 flags=A" % chain)
    add("ip6 / hbh / hbh / hbh / hbh / hbh / hbh / hbh / hbh / icmp6 type=128", "8 hop-by-hop")
    add("ip6 / dst / dst / dst / dst / dst / dst / dst / dst / dst / icmp6", "9 dstopts")
    add("ip6 / hbh len=3 / udp dport=53 / cut 50", "extension header truncated")
    add("ip6 / ah len=6 / udp dport=53 / cut 60", "AH truncated")
    add("ip6 / frag / udp / cut 44", "fragment header truncated")
    add("ip6 / hbh / cut 41", "extension header of 1 byte")
    # fragments
    add("ip4 mf=1 / tcp dport=80 flags=S / data 40", "IPv4 first fragment")
    add("ip4 mf=1 / udp dport=53 / data 40")
    add("ip4 off=185 / tcp dport=80 flags=S", "IPv4 last fragment, looks like TCP")
    add("ip4 off=1 mf=1 / udp dport=53", "IPv4 middle fragment, looks like UDP 53")
    add("ip4 off=3 / icmp type=8", "IPv4 non-first ICMP")
    add("ip4 off=3 / tcp / cut 24", "IPv4 non-first fragment, 4 bytes")
    add("ip4 off=8191 / udp dport=53 / cut 20", "IPv4 non-first fragment, no payload")
    add("ip6 / frag off=0 m=1 / tcp dport=80 flags=S", "IPv6 first fragment")
    add("ip6 / frag off=0 m=0 / udp dport=53", "IPv6 atomic fragment")
    add("ip6 / frag off=100 m=1 / udp dport=53", "IPv6 non-first, looks like UDP 53")
    add("ip6 / frag off=5 / tcp dport=80 / cut 52", "IPv6 non-first, 4 bytes")
    add("ip6 / hbh / frag off=7 / icmp6 type=128", "IPv6 non-first ICMPv6")
    add("ip6 / frag off=7 nh=60 / dst / udp dport=53", "IPv6 non-first, next header dstopts")
    add("ip6 / hbh / rt / dst / mob / hip / shim6 / ah / frag off=9 / udp dport=53",
        "non-first fragment as 8th header")
    add("ip6 / hbh / rt / dst / mob / hip / shim6 / ah / dst / frag off=9 / udp dport=53",
        "non-first fragment as 9th header")
    # TCP
    for fl in ["S", "SA", "A", "PA", "FA", "R", "RA", "U", "UA", "0", "0xff", "EC"]:
        add("ip4 / tcp sport=20080 dport=80 flags=%s" % fl, "TCP flags %s" % fl)
    add("ip6 / tcp dport=443 flags=SA opts=12")
    add("ip4 / tcp dport=80 opts=40", "TCP data offset 15")
    add("ip4 / tcp dport=80 doff=15", "TCP data offset beyond the packet")
    add("ip4 / tcp dport=80 doff=6", "TCP data offset 6, 20 bytes")
    add("ip4 / tcp dport=80 doff=6 / data 4", "TCP data offset 6, 4 bytes of data")
    add("ip4 / tcp dport=80 doff=4 / data 8", "TCP data offset 4")
    add("ip4 / tcp dport=80 doff=0 / data 8", "TCP data offset 0")
    add("ip6 / tcp dport=80 doff=8 / data 11", "IPv6 TCP data offset beyond")
    add("ip4 / tcp dport=80 / cut 39", "TCP header truncated")
    add("ip4 / tcp dport=80 / cut 40", "TCP header exactly 20 bytes")
    add("ip6 / tcp dport=80 / cut 59")
    # UDP with 0..11 bytes of payload
    for n in range(12):
        add("ip4 / udp sport=20053 dport=53 / data %d" % n, "UDP %d bytes of payload" % n)
        add("ip6 / udp dport=53 / data %d" % n)
    add("ip4 / udp dport=53 ulen=0 / data 3", "UDP length field 0")
    add("ip4 / udp dport=53 / cut 27", "UDP header truncated")
    add("ip4 / udp dport=53 / cut 28", "UDP header exactly 8 bytes")
    add("ip6 / udp dport=53 / cut 47")
    # ICMP and ICMPv6
    add("ip4 / icmp type=8", "ICMP echo")
    add("ip4 / icmp type=0 code=0 / data 56")
    add("ip4 / icmp type=3 code=3")
    add("ip4 / icmp type=11 code=1 / cut 24", "ICMP exactly 4 bytes")
    add("ip4 / icmp type=8 / cut 23", "ICMP truncated")
    add("ip6 / icmp6 type=135 / cut 44", "ICMPv6 exactly 4 bytes")
    add("ip6 / icmp6 type=128 / cut 43", "ICMPv6 truncated")
    add("ip4 / l4 proto=58 n=8", "IPv4 with protocol 58 is not ICMP")
    add("ip6 / l4 proto=1 n=8", "IPv6 with next header 1 is not ICMP")
    add("ip4 / l4 proto=58 n=2", "IPv4 protocol 58, 2 bytes")
    # other protocols
    add("ip4 / gre / data 20", "GRE")
    add("ip6 / gre / data 20")
    add("ip4 / sctp dport=80 / data 16", "SCTP")
    add("ip6 / sctp dport=53")
    add("ip4 / l4 proto=255 n=0")
    add("ip4 / l4 proto=0 n=4", "IPv4 protocol 0")
    add("ip4 / l4 proto=51 n=12", "IPv4 AH is not followed")
    # truncated IP headers (the kernel refuses them in BPF_PROG_TEST_RUN)
    add("ip4 / tcp / cut 19", "IPv4 header truncated")
    add("ip4 / tcp / cut 1")
    add("ip6 / udp / cut 39", "IPv6 header truncated")
    add("ip4 / cut 20", "IPv4 header only, protocol 59")
    add("ip6 / cut 40", "IPv6 header only")
    # not IP
    add("ether type=0x0806 / data 28", "ARP")
    add("ether type=0x88cc / data 60", "LLDP")
    add("ether type=0x8100 / ip4 / udp dport=53", "VLAN tag, not followed")
    add("ether type=0x0040 / data 64", "802.3 length field")
    return c


def reference_selfcheck():
    """The reference decoder against values worked out by hand from the
    documentation; returns a list of problems."""
    want = [
        ("ip4 / tcp sport=1 dport=80 flags=SA", dict(ip=1, tcp=1, src_port=1, dst_port=80, len=40, ip_proto=6, tcp_flags=0x12, ttl=64)),
        ("ip4 opts=40 / udp dport=53 / data 3", dict(ip=1, udp=1, src_port=40000, dst_port=53, len=71, ip_proto=17, ttl=64)),
        ("ip4 off=1 mf=1 / udp dport=53", dict(ip=1, udp=1, frag=1, len=28, ip_proto=17, ttl=64)),
        ("ip6 hlim=7 / hbh / rt / dst / mob / hip / shim6 / ah / frag m=1 / udp dport=53",
         dict(ipv6=1, udp=1, frag=1, src_port=40000, dst_port=53, len=40 + 8 * 6 + 12 + 8 + 8, ip_proto=17, ttl=7)),
        ("ip6 / frag off=3 / icmp6 type=128", dict(ipv6=1, icmp=1, frag=1, len=56, ip_proto=58, ttl=64)),
        ("ip6 / ah len=4 / icmp6 type=129 code=2", dict(ipv6=1, icmp=1, icmp_type=129, icmp_code=2, len=40 + 24 + 8, ip_proto=58, ttl=64)),
        ("ip4 / udp dport=53 / cut 28", dict(ip=1, udp=1, src_port=40000, dst_port=53, len=28, ip_proto=17, ttl=64)),
        ("ether type=0x0806 / data 28", {}),
        ("ip6 / dst / dst / dst / dst / dst / dst / dst / dst / dst / icmp6", None),
        ("ip4 / tcp doff=15", None),
        ("ip4 / udp / cut 27", None),
        ("ip4 ihl=4 / udp", None),
    ]
    problems = []
    want += [
        ("ingress ip4 / tcp sport=1 dport=80 flags=SA",
         dict(ip=1, tcp=1, src_port=1, dst_port=80, len=40, ip_proto=6, tcp_flags=0x12, ttl=64,
              local_port=80, remote_port=1)),
        ("ingress ip6 / udp sport=53 dport=40001",
         dict(ipv6=1, udp=1, src_port=53, dst_port=40001, len=48, ip_proto=17, ttl=64,
              local_port=40001, remote_port=53)),
    ]
    for spec, w in want:
        got = V.decode(V.build(spec))
        if w is not None and not spec.startswith("ingress"):   # sent: local is src
            w = dict(w, local_port=w.get("src_port", 0), remote_port=w.get("dst_port", 0))
        if w is not None:
            w = dict(dict.fromkeys(V.FIELDS, 0), **w)
        if got != w:
            problems.append("reference decodes %r as %s, not %s" % (spec, got, w))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    ap.add_argument("--random-exprs", type=int, default=300)
    ap.add_argument("--random-packets", type=int, default=200)
    ap.add_argument("--real", nargs=2, action="append", default=[], metavar=("OBJECT", "EXPR"))
    ap.add_argument("--pin", nargs=2, action="append", default=[], metavar=("PIN", "EXPR"))
    ap.add_argument("--crafted-only", action="store_true",
                    help="only the --real and --pin programs on crafted packets")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    failures = []
    checks = 0

    def ok(msg):
        nonlocal checks
        checks += 1
        print("  ok - %s" % msg)

    def check(problems, msg):
        if problems:
            failures.extend(problems)
            print("  not ok - %s: %d problems" % (msg, len(problems)))
        else:
            ok(msg)

    print("  seed %d (set CGF_SEED to change)" % a.seed)
    check(reference_selfcheck(), "reference decoder matches hand-worked values")

    cr = crafted()
    specs = [s for s, _ in cr]
    why = {s: w for s, w in cr}
    if not a.crafted_only:
        specs += [V.random_packet(rng) for _ in range(a.random_packets)]
    frames = [V.build(s) for s in specs]
    fields = [V.decode(f) for f in frames]
    labels = ["%s%s" % (s, "   [%s]" % why[s] if why.get(s) else "") for s in specs]
    nmal = sum(f is None for f in fields)
    print("  %d packets (%d crafted), %d malformed, %d refused by BPF_PROG_TEST_RUN"
          % (len(frames), len(cr), nmal, sum(map(V.kernel_refuses, frames))))

    def judge(expr_text, got, what, need_both=True):
        e = V.Expr(expr_text)
        probs = V.compare(e, frames, got, labels, fields)
        if need_both and not ("0" in got and "1" in got):
            probs.append("%s %r: verdicts %s never both pass and drop: the harness "
                         "is not testing anything" % (what, expr_text, got))
        return probs

    # the programs built through the real Makefile
    real = {}
    if a.real or a.pin:
        got = V.run_frames(frames, objects=[o for o, _ in a.real], pins=[p for p, _ in a.pin],
                           workdir=a.work)
        for o, e in a.real:
            real[e] = got[(o, "port_firewall")]
            check(judge(e, real[e], "port-firewall"), "port-firewall %r (make FILTER=...)" % e)
        for p, e in a.pin:
            check(judge(e, got[("pin", p)], "pinned port-firewall"),
                  "pinned port-firewall %r (make load)" % e)
    if a.crafted_only:
        return finish(failures, checks)

    # a comparison that cannot fail is worth nothing: invert one verdict
    e0 = V.Expr(REF_EXAMPLES[0])
    good = "".join(V.expected_verdict(e0, f, fl) for f, fl in zip(frames, fields))
    bad = good[:3] + ("1" if good[3] == "0" else "0") + good[4:]
    check([] if V.compare(e0, frames, bad, labels, fields) else
          ["compare() did not notice an inverted verdict"], "compare() catches a wrong verdict")

    # everything else, batched: many programs per object
    randoms, trees = [], []
    for _ in range(a.random_exprs):
        t, tree = V.random_expr(rng)
        randoms.append(t)
        trees.append(tree)
    # the printed text must mean the generated tree (checks to_text and parse)
    probs = []
    for t, tree in zip(randoms, trees):
        e = V.Expr(t)
        for fl in fields[:60]:
            if fl is not None and e.value(fl) != V.eval_tree(tree, fl):
                probs.append("random expression %r does not parse back to its tree" % t)
                break
    check(probs, "%d random expressions print and parse back consistently" % len(randoms))

    texts = REF_EXAMPLES + HAND + randoms
    t0 = time.time()
    try:
        progs = V.compile_exprs(texts, os.path.join(a.work, "batch"))
    except RuntimeError as err:
        print("FAIL: %s" % err, file=sys.stderr)
        return 2
    t1 = time.time()
    got = V.run_frames(frames, objects=[o for o, _ in progs], workdir=a.work)
    t2 = time.time()
    print("  compiled %d expressions in %.1fs, ran %d x %d in %.1fs"
          % (len(texts), t1 - t0, len(texts), len(frames), t2 - t1))
    verdicts = [got[(o, n)] for o, n in progs]

    for e in REF_EXAMPLES:
        if e in real:
            check([] if verdicts[texts.index(e)] == real[e] else
                  ["batched %r gives %s, the Makefile-built program %s"
                   % (e, verdicts[texts.index(e)], real[e])],
                  "batched program agrees with the Makefile-built one for %r" % e)
    probs = []
    for i, t in enumerate(REF_EXAMPLES + HAND):
        probs += judge(t, verdicts[i], "hand-written filter")
    check(probs, "%d reference and hand-written filters" % len(REF_EXAMPLES + HAND))
    probs, both, npass, ndrop = [], 0, 0, 0
    base = len(REF_EXAMPLES + HAND)
    for i, t in enumerate(randoms):
        v = verdicts[base + i]
        probs += judge(t, v, "random filter", need_both=False)
        both += "0" in v and "1" in v
        npass += v.count("1")
        ndrop += v.count("0")
    check(probs, "%d random filters x %d packets" % (len(randoms), len(frames)))
    print("  random filters: %d of %d both pass and drop; %d passes, %d drops"
          % (both, len(randoms), npass, ndrop))
    check([] if both * 2 >= len(randoms) else
          ["only %d of %d random filters both pass and drop" % (both, len(randoms))],
          "random filters exercise both verdicts")
    return finish(failures, checks)


def finish(failures, checks):
    for f in failures[:20]:
        print("FAIL: " + f, file=sys.stderr)
    if failures:
        print("%d problems%s" % (len(failures), ", the first 20 shown" if len(failures) > 20 else ""),
              file=sys.stderr)
        return 1
    print("  %d checks passed" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
