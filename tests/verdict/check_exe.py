#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Differential test of exe: random filters of the full language with exe
tests (== and != a path, literal sets, named sets declared in the text),
over crafted and random packets each made by one of a few executables (two
copies of a program, a hard link to one, a symbolic link to the other, an
unknown one, none), through the cgfilter engine (exe-run: the engine's
library with the executable given per packet) against the reference model.

  check_exe.py --work DIR --pin PIN [--filters N]
"""
import argparse
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as V  # noqa: E402

FIXED = [
    'exe == "{a}"',
    'exe != "{a}"',
    'exe in {{ "{a}", "{b}" }} && tcp',
    '@apps = {{ "{b}" }} exe in @apps || udp && exe == "{c}"',
    '!(exe in {{ "{d}" }}) && (tcp || icmp)',
    'exe == "{a}" ? dst_port == 80 : exe == "{b}" && src_ip in {{ 10.0.0.0/8 }}',
    '@e = {{ }} exe in @e || ttl > 10',
    # a path with a quote, a backslash and an escaped byte
    'exe == "{q}" || exe == "{qe}"',
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--pin", required=True)
    ap.add_argument("--filters", type=int, default=150)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CGF_SEED", "1")))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    d = os.path.join(a.work, "exes")
    os.makedirs(d, exist_ok=True)
    p = {k: os.path.join(d, k) for k in "abcd"}
    shutil.copy("/bin/true", p["a"])
    shutil.copy("/bin/true", p["b"])
    os.link(p["a"], p["c"])                 # the same file as a
    os.symlink(p["b"], p["d"])              # names b
    p["q"] = os.path.join(d, 'odd"name\\x')
    shutil.copy("/bin/true", p["q"])
    p["qe"] = p["q"]
    esc = {k: v.replace("\\", "\\\\").replace('"', '\\"') for k, v in p.items()}
    esc["qe"] = esc["q"].replace("x", "\\x78")  # the same path, with \x78 for x
    ids = [V.exe_id(p["a"]), V.exe_id(p["b"]), V.exe_id(p["q"]), None,
           (V.exe_id(p["a"])[0], 4242424242)]
    paths = [esc[k] for k in "abcd"]
    texts = [t.format(**esc) for t in FIXED]
    texts += [V.random_full_expr(rng, rng.randint(1, 6), paths) for _ in range(a.filters)]
    specs = ["ip4 / tcp dport=80 flags=S", "ip4 / udp dport=53", "ip6 / tcp dport=80 flags=S",
             "ip4 src=10.1.2.3 / udp dport=9", "ip4 ttl=64 / icmp type=8"]
    specs += [V.random_packet(rng) for _ in range(50)]
    frames, exes = [], []
    for s in specs:
        for e in ids:
            frames.append(V.build(s))
            exes.append(e)
    fpath = os.path.join(a.work, "exe-frames.hex")
    ipath = os.path.join(a.work, "exe-ids.txt")
    tpath = os.path.join(a.work, "exe-filters.txt")
    with open(fpath, "w") as f:
        f.write("".join(fr.line() + "\n" for fr in frames))
    with open(ipath, "w") as f:
        f.write("".join("%d %d\n" % (e if e else (0, 0)) for e in exes))
    with open(tpath, "w") as f:
        f.write("".join(t + "\n" for t in texts))
    r = subprocess.run([os.path.join(V.BUILD, "tests", "exe-run"), "--pin", a.pin, "-p", fpath,
                        "-i", ipath, tpath], capture_output=True, text=True)
    if r.returncode:
        print("check_exe: exe-run failed: %s" % r.stderr.strip())
        return 1
    got = [l.split("\t", 1) for l in r.stdout.splitlines()]
    if len(got) != len(texts):
        print("check_exe: exe-run gave %d results for %d filters: %s" % (len(got), len(texts), r.stderr))
        return 1
    probs, tested, with_exe = [], 0, 0
    for t, (status, v) in zip(texts, got):
        try:
            e = V.FullExpr(t)
        except V.ExprError as err:
            if status == "ok":
                probs.append("%r: the reference refuses it (%s), the engine took it" % (t[:80], err))
            continue
        if status != "ok":
            probs.append("%r: refused (%s), the reference takes it" % (t[:80], v))
            continue
        tested += 1
        with_exe += "exe" in t
        for j, fr in enumerate(frames):
            if v[j] == "x" and V.kernel_refuses(fr):
                continue
            want = e.verdict(fr, exes[j])
            if v[j] != want:
                probs.append("%r: packet %d (%s) from executable %s: got %s, reference %s"
                             % (t[:100], j, specs[j // len(ids)], exes[j], v[j], want))
                break
        if len(probs) > 5:
            break
    for m in probs:
        print("check_exe: " + m)
    if probs:
        return 1
    if with_exe < 50:
        print("check_exe: only %d filters tested exe" % with_exe)
        return 1
    print("check_exe: %d filters (%d with exe) x %d packets from %d executables: as the reference says"
          % (tested, with_exe, len(specs), len(ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
