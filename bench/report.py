# SPDX-License-Identifier: GPL-2.0-only
"""Turn the bench's results.csv into results.md and the data files of
bench/plots.gp (run by bench/run.sh):

    report.py CSV MD DATADIR KERNEL CPU RUNS REPEAT SECS REF1 REF2
"""
import csv
import os
import sys

PACKETS = ["ipv4-tcp", "ipv6-tcp-ext", "ipv4-udp", "ipv4-icmp"]


def num(s):
    if s == "missing":
        return s
    v = float(s)
    return str(int(v)) if v == int(v) and abs(v) >= 1000 else f"{v:.4g}"


def cell(r):
    if r is None:
        return "(no row)"
    if r["median"] == "missing":
        return "missing"
    if float(r["min"]) == float(r["max"]) == float(r["median"]):
        return num(r["median"])
    return f"{num(r['median'])} [{num(r['min'])}–{num(r['max'])}]"


def main(a):
    csv_path, md_path, datadir, kernel, cpu, runs, repeat, secs, ref1, ref2 = a[1:11]
    rows = list(csv.DictReader(open(csv_path)))
    get = {(r["section"], r["subject"], r["variant"], r["metric"]): r for r in rows}
    order = lambda sec: list(dict.fromkeys((r["subject"], r["variant"]) for r in rows
                                           if r["section"] == sec))
    why = {}  # reason -> footnote number

    def c(key):
        r = get.get(key)
        if r is not None and r["median"] == "missing" and r["note"]:
            n = why.setdefault(r["note"], len(why) + 1)
            return f"missing ({n})"
        return cell(r)

    md = ["# cgfilter bench", "",
          f"- kernel: {kernel}", f"- CPU: {cpu} ({os.cpu_count()} CPUs)",
          f"- every figure: median [min–max] of {runs} runs; BPF_PROG_TEST_RUN repeat {repeat}; "
          f"iperf3 {secs} s a run",
          f"- ref1 = `{ref1}`", f"- ref2 = `{ref2}`",
          "- packets from 10.0.0.1 / fd00::1 to port 80 (TCP), 53 (UDP); each CIDR set holds the "
          "source (10.0.0.0/24, fd00::/64) among N IPv4 /24 and N IPv6 /64 prefixes, no two adjacent; each port set "
          "holds 80 and N-1 other ports, not 53", ""]

    md += ["## 1. Per-packet cost (ns/packet, BPF_PROG_TEST_RUN)", "",
           "| program | variant | " + " | ".join(PACKETS) + " | verdicts |",
           "|---|---|" + "---:|" * len(PACKETS) + "---|"]
    for s, v in order("pktcost"):
        verdicts = " ".join((get.get(("pktcost", s, v, p)) or {}).get("note", "").replace("verdict ", "")
                            or "-" for p in PACKETS)
        md.append(f"| {s} | {v} | " + " | ".join(c(("pktcost", s, v, p)) for p in PACKETS) +
                  f" | {verdicts} |")

    md += ["", "### Ratios, from the same pktcost run (median time over median time)", "",
           "The goals: cgfilter at most 1.05x port-firewall on the reference filters; a CIDR set "
           "at most 1x systemd's IPAddressAllow= program, at every size.", "",
           "| ratio | variant | " + " | ".join(PACKETS) + " |", "|---|---|" + "---:|" * len(PACKETS)]
    for s, v in order("ratio"):
        md.append(f"| {s} | {v} | " + " | ".join(c(("ratio", s, v, p)) for p in PACKETS) + " |")

    md += ["", "## 2. Loopback TCP throughput (ratio to no filter; Gbit/s)", "",
           "Egress: the filter on the client's cgroup (it sends); ingress: on the server's.", "",
           "| filter | egress ratio | ingress ratio | egress Gbit/s | ingress Gbit/s |",
           "|---|---:|---:|---:|---:|"]
    tput = []
    for s, _ in dict.fromkeys((s, None) for s, _ in order("throughput")):
        md.append(f"| {s} | " + " | ".join(c(("throughput", s, d, m)) for m in ("ratio", "gbit")
                                            for d in ("egress", "ingress")) + " |")
        vals = [get.get(("throughput", s, d, "ratio"), {}).get("median", "missing") for d in ("egress", "ingress")]
        tput.append((s, [v if v != "missing" else "NaN" for v in vals]))

    md += ["", "## 3. Time to change a running service's filter, and to load one (ms)", "",
           "| what | subject | step | ms |", "|---|---|---|---:|"]
    for sec, title in (("change", "change"), ("load", "load")):
        for r in rows:
            if r["section"] == sec:
                md.append(f"| {title} | {r['subject']} | {r['metric']} | "
                          f"{c((sec, r['subject'], r['variant'], r['metric']))} |")

    md += ["", "## 4. Memlock (bytes: program, its maps)", "",
           "| filter | variant | program | maps | total | note |", "|---|---|---:|---:|---:|---|"]
    for s, v in order("memlock"):
        note = (get.get(("memlock", s, v, "maps")) or {}).get("note", "")
        if (get.get(("memlock", s, v, "maps")) or {}).get("median") == "missing":
            note = ""
        md.append(f"| {s} | {v} | " + " | ".join(c(("memlock", s, v, m)) for m in ("prog", "maps", "total"))
                  + f" | {note} |")
    per = [(s, v) for s, v in order("memlock") if ("memlock", s, v, "bytes a prefix") in get]
    if per:
        md += ["", "Address sets, bytes a prefix (the goal: at most 80 at 100,000 prefixes):", "",
               "| set | prefixes per family | bytes a prefix |", "|---|---:|---:|"]
        md += [f"| {s} | {v} | {c(('memlock', s, v, 'bytes a prefix'))} |" for s, v in per]

    if order("wrap"):
        md += ["", "## 5. A loopback echo daemon under cgfilter wrap (alfwrapper's speed test)", "",
               "TCP echo of 64 KiB blocks, MB/s and as a ratio to the same daemon unwrapped (run by "
               "run).  20 rules: 19 port tests and an address; 10k: a literal set of 10,001 prefixes.",
               "", "| daemon | MB/s | ratio |", "|---|---:|---:|"]
        for s, v in order("wrap"):
            md.append(f"| {s} | " + " | ".join(c(("wrap", s, v, m)) for m in ("MB/s", "ratio")) + " |")
        md += ["", "The socket filter's cost per packet: 64-byte datagrams sent as fast as possible to a "
               "socket whose filter tests every rule and drops (on loopback the receiver's filter runs "
               "inside the send), against the floor, a socket whose filter drops at once (run by run).",
               "", "| filter | ns a datagram | over the floor |", "|---|---:|---:|"]
        for s, v in order("wrapcost"):
            md.append(f"| {s} | " + " | ".join(c(("wrapcost", s, v, m)) for m in ("ns a datagram", "over the floor"))
                      + " |")

    if why:
        md += ["", "Missing:", ""] + [f"{n}. {w}" for w, n in why.items()]
    md.append("")
    open(md_path, "w").write("\n".join(md))

    # data for bench/plots.gp
    def series(subject, labels, name):
        with open(os.path.join(datadir, name), "w") as f:
            for s, v in order("pktcost"):
                if s != subject:
                    continue
                vals = [get[("pktcost", s, v, p)]["median"] for p in labels]
                f.write(v + " " + " ".join(x if x != "missing" else "NaN" for x in vals) + "\n")
    series("cgfilter named CIDR set", ["ipv4-tcp", "ipv6-tcp-ext"], "cidr.dat")
    series("cgfilter literal CIDR set", ["ipv4-tcp", "ipv6-tcp-ext"], "literal.dat")
    series("cgfilter port set", ["ipv4-tcp", "ipv4-udp"], "ports.dat")
    series("systemd IPAddressAllow", ["ipv4-tcp", "ipv6-tcp-ext"], "systemd.dat")
    with open(os.path.join(datadir, "tput.dat"), "w") as f:
        for s, (e, i) in tput:
            f.write(f'"{s}" {e} {i}\n')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
