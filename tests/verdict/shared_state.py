#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The state of a shared cgfilter engine, for test 58's crash sweeps: each
cgroup's filter with the sets it uses (the engine's, or those it keeps
after a killed edit: kept_sets), checked against a state remembered before
and one after the command, with its verdicts run through the filter's own
program.  Exit 0 when all holds, 1 (one line saying what does not) if not,
2 on bad usage.

  shared_state.py remember FILE --cgfilter BIN --pin PIN SPEC...
      judges every cgroup's filter with judge.py (the reference model, every
      address it names) and writes its state and the reference's verdicts
      of the SPECs to FILE
  shared_state.py differ OLD NEW
      every filter's verdicts differ between the two remembered states (so
      that they tell one from the other)
  shared_state.py check --old FILE --new FILE --cgfilter BIN --pin PIN
                  --harness H --frames FRAMES --rc RC --how HOW --what WHAT
      every filter shows the old state or the new, and its verdicts (run
      after the entry of the dedicated engine H with the filter 1, as
      judge.py does) are that state's; the engine's own sets are old or
      new too.  rc 0 (and no kill): all new; an error injected and rc not
      0: all old; the sets the old: every filter old (an edit changes the
      set first, then builds the filters)
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("BUILD", os.path.join(HERE, "..", "..", "build"))


def show(cgfilter, pin):
    r = subprocess.run([cgfilter, "show", "--json", pin], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("show --json %s failed: %s" % (pin, r.stderr.strip()))
    return json.loads(r.stdout)


def states(shown):
    """{cgroup direction: (state, program id)}, and the engine's sets."""
    sets = {n: s["items"] for n, s in shown["sets"].items()}
    out = {}
    for f in shown["filters"]:
        uses = dict(sets)
        uses.update({n: s["items"] for n, s in f["kept_sets"].items()})
        st = json.dumps([f["filter"], f["mode"], uses], sort_keys=True)
        out["%s %s" % (f["cgroup"], f["direction"])] = (st, f["filter_program_id"])
    return out, json.dumps(sets, sort_keys=True)


def remember(a):
    shown = show(a.cgfilter, a.pin)
    got, sets = states(shown)
    rec = {"sets": sets, "filters": {}}
    for key, (st, _) in got.items():
        cg, d = key.rsplit(" ", 1)
        base = [sys.executable, os.path.join(HERE, "judge.py"), "--cgfilter", a.cgfilter,
                "--pin", a.pin, "--cgroup", cg, "--direction", d]
        r = subprocess.run(base + a.specs, capture_output=True, text=True)
        if r.returncode:
            print("%s: %s" % (key, (r.stdout + r.stderr).strip()))
            return 1
        r = subprocess.run(base + ["--expect"] + a.specs, capture_output=True, text=True)
        if r.returncode:
            print("%s: judge --expect: %s" % (key, (r.stdout + r.stderr).strip()))
            return 1
        rec["filters"][key] = {"state": st, "verdicts": r.stdout.strip()}
    with open(a.file, "w") as f:
        json.dump(rec, f)
    return 0


def load(path):
    with open(path) as f:
        return json.load(f)


def check(a):
    old, new = load(a.old), load(a.new)
    shown = show(a.cgfilter, a.pin)
    got, sets = states(shown)
    if set(got) != set(old["filters"]):
        print("%s: the filters are %s, not %s" % (a.what, sorted(got), sorted(old["filters"])))
        return 1
    if sets not in (old["sets"], new["sets"]):
        print("%s: the engine's sets are neither the old nor the new: %s" % (a.what, sets))
        return 1
    which = {}
    for key, (st, prog) in got.items():
        if st == old["filters"][key]["state"]:
            which[key], want = "old", old["filters"][key]["verdicts"]
        elif st == new["filters"][key]["state"]:
            which[key], want = "new", new["filters"][key]["verdicts"]
        else:
            print("%s: %s shows neither the old state nor the new: %s" % (a.what, key, st))
            return 1
        r = subprocess.run([os.path.join(BUILD, "tests", "verdict-run"), "-p", a.frames, "--pin",
                            a.harness, "--then-prog-id", str(prog)], capture_output=True, text=True)
        if r.returncode:
            print("%s: cannot run the filter of %s: %s" % (a.what, key, r.stderr.strip()))
            return 1
        v = r.stdout.split("\t")[2].strip()
        if v != want:
            print("%s: %s shows the %s state, but its verdicts are %s, not %s"
                  % (a.what, key, which[key], v, want))
            return 1
    is_new = sets == new["sets"] and set(which.values()) == {"new"}
    is_old = sets == old["sets"] and set(which.values()) == {"old"}
    if a.rc == 0 and a.how != "signal=SIGKILL" and not is_new:
        print("%s: exit 0, but not all new: sets %s, filters %s" % (a.what, sets, which))
        return 1
    if a.rc != 0 and a.how == "error=ENOSPC" and not is_old:
        print("%s: exit %d, but not all old: sets %s, filters %s" % (a.what, a.rc, sets, which))
        return 1
    if sets == old["sets"] and not is_old:
        print("%s: the engine's sets are the old ones, but filters are new: %s" % (a.what, which))
        return 1
    return 0


def differ(a):
    old, new = load(a.old), load(a.new)
    same = [k for k in old["filters"]
            if k in new["filters"] and old["filters"][k]["verdicts"] == new["filters"][k]["verdicts"]]
    if same or set(old["filters"]) != set(new["filters"]):
        print("the packets do not tell the old state from the new for %s"
              % (same or sorted(set(old["filters"]) ^ set(new["filters"]))))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("remember")
    r.add_argument("file")
    r.add_argument("--cgfilter", required=True)
    r.add_argument("--pin", required=True)
    r.add_argument("specs", nargs="+")
    c = sub.add_parser("check")
    for o in ("--old", "--new", "--cgfilter", "--pin", "--harness", "--frames", "--how", "--what"):
        c.add_argument(o, required=True)
    c.add_argument("--rc", type=int, required=True)
    d = sub.add_parser("differ")
    d.add_argument("old")
    d.add_argument("new")
    a = ap.parse_args()
    return {"remember": remember, "check": check, "differ": differ}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
