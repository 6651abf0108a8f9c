#!/usr/bin/env python3
"""Check `cgfilter stats --prometheus` output against what the test knows.

  check_prom.py METRICS EXPECT.json

METRICS: the exposition text.  EXPECT: {"engines": {PIN: {"stats": the
engine's `cgfilter stats --json` object, "known": {"passed_packets": N,
...} from the traffic sent (only the keys given are checked),
"attached": [[cgroup, unit, direction], ...], "filters": [{label: value}]}}}.

The text is parsed here by the format's rules (a family's samples
together, after its HELP and TYPE; label values unescaped), not by
cgfilter.  Exits 1 with the reason on the first difference.
"""
import json
import re
import sys

LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')

# metric name -> key of `stats --json`
COUNTERS = {
    "cgfilter_passed_packets_total": "passed_packets",
    "cgfilter_passed_bytes_total": "passed_bytes",
    "cgfilter_dropped_packets_total": "dropped_packets",
    "cgfilter_dropped_bytes_total": "dropped_bytes",
    "cgfilter_malformed_packets_total": "malformed",
    "cgfilter_no_filter_packets_total": "no_filter",
    "cgfilter_would_drop_packets_total": "would_drop_packets",
    "cgfilter_would_drop_bytes_total": "would_drop_bytes",
    "cgfilter_events_total": "events",
    "cgfilter_events_suppressed_total": "events_suppressed",
}


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_labels(s):
    out, pos = {}, 0
    while pos < len(s):
        m = LABEL.match(s, pos)
        if not m:
            raise ValueError("bad labels at %r" % s[pos:])
        out[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return out


def parse(text):
    """{name: {"type": t, "help": h, "samples": [(labels, value)]}}"""
    fams, order, cur = {}, [], None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            if name not in fams:
                if name in order:
                    raise ValueError("line %d: family %s again" % (n, name))
                fams[name] = {"samples": []}
                order.append(name)
            fams[name][kind.lower()] = rest
            cur = name
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        name = m.group(1)
        if name != cur:
            raise ValueError("line %d: %s outside its family (after %s)" % (n, name, cur))
        fams[name]["samples"].append((parse_labels(m.group(3) or ""), float(m.group(4))))
    if not text.endswith("\n") and text:
        raise ValueError("the last line is not whole")
    return fams


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    want = json.load(open(sys.argv[2]))["engines"]
    fams = parse(text)
    for name, key in COUNTERS.items():
        f = fams.get(name)
        assert f and f.get("type") == "counter" and f.get("help"), "%s: no HELP/TYPE counter" % name
        got = {}
        for labels, v in f["samples"]:
            assert set(labels) == {"pin"}, "%s: labels %s (pin only)" % (name, labels)
            assert labels["pin"] not in got, "%s: %r twice" % (name, labels["pin"])
            got[labels["pin"]] = v
        assert set(got) == set(want), "%s: pins %s, want %s" % (name, sorted(got), sorted(want))
        for pin, w in want.items():
            assert got[pin] == w["stats"][key], "%s{pin=%r} = %s, stats --json says %s" % (
                name, pin, got[pin], w["stats"][key])
            known = w.get("known", {}).get(key)
            assert known is None or got[pin] == known, "%s{pin=%r} = %s, the traffic sent says %s" % (
                name, pin, got[pin], known)
    for name in ("cgfilter_attached_info", "cgfilter_filter_info"):
        assert fams.get(name, {}).get("type") == "gauge", "%s: no TYPE gauge" % name
    att = sorted((l["pin"], l["cgroup"], l["unit"], l["direction"])
                 for l, v in fams["cgfilter_attached_info"]["samples"] if v == 1)
    watt = sorted((p, *a) for p, w in want.items() for a in w["attached"])
    assert att == watt, "cgfilter_attached_info: %s, want %s" % (att, watt)
    fil = sorted(json.dumps(l, sort_keys=True) for l, v in fams["cgfilter_filter_info"]["samples"])
    wfil = sorted(json.dumps(dict(f, pin=p), sort_keys=True) for p, w in want.items() for f in w["filters"])
    assert fil == wfil, "cgfilter_filter_info: %s, want %s" % (fil, wfil)


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, ValueError) as e:
        print("check_prom: %s" % e, file=sys.stderr)
        sys.exit(1)
