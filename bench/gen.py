# SPDX-License-Identifier: GPL-2.0-only
"""Inputs of the bench (bench/run.sh), deterministic: the frames, the CIDR
and port sets, and the systemd units with IPAddressAllow= lists.

    gen.py packets            LABEL HEX lines for pktcost
    gen.py cidr N             N IPv4 /24 and N IPv6 /64 prefixes, one a line,
                              no two adjacent
    gen.py ports N            N ports, one a line
    gen.py allow-unit N       a unit: IPAddressDeny=any, IPAddressAllow= the
                              same 2N prefixes as `cidr N`
    gen.py allow-unit local   a unit: IPAddressDeny=any, IPAddressAllow=localhost
    gen.py filter-unit PIN    a unit filtered by the program pinned at PIN

The packets come from 10.0.0.1 and fd00::1 (tests/verdict/verdict.py); the
first prefixes of `cidr N`, 10.0.0.0/24 and fd00::/64, hold both sources,
so every CIDR set contains the packets' source.  `ports N` holds 80 and
N-1 odd ports from 20001 up (never adjacent, so no set stores them as a
range): the TCP frames (port 80) are in it, the UDP frame (port 53) is not.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "verdict"))
from verdict import build  # noqa: E402

PACKETS = [
    ("ipv4-tcp", "ip4 / tcp dport=80 flags=S"),
    ("ipv6-tcp-ext", "ip6 / hbh / dst / tcp dport=80 flags=S"),
    ("ipv4-udp", "ip4 / udp dport=53 / data 20"),
    ("ipv4-icmp", "ip4 / icmp type=8"),
]


def cidr(n):
    # every other /24 and /64: no two adjacent, so no set can merge them
    # into fewer intervals than prefixes (as systemd's trie cannot either)
    v4 = ["%d.%d.%d.0/24" % (10 + (j >> 16), (j >> 8) & 255, j & 255) for j in range(0, 2 * n, 2)]
    v6 = ["fd00:0:%x:%x::/64" % (j >> 16, j & 0xFFFF) for j in range(0, 2 * n, 2)]
    return v4 + v6


def ports(n):
    return [80] + [20001 + 2 * i for i in range(n - 1)]


def unit(lines):
    # no start limit: the bench restarts the unit more than 5 times in 10 s
    return "[Unit]\nDescription=cgfilter bench\nStartLimitIntervalSec=0\n\n" + \
        "[Service]\nExecStart=/bin/sleep infinity\n" + \
        "".join(l + "\n" for l in lines)


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "packets":
        for label, spec in PACKETS:
            print(label, build(spec).hex())
    elif what == "cidr":
        print("\n".join(cidr(int(argv[2]))))
    elif what == "ports":
        print("\n".join(str(p) for p in ports(int(argv[2]))))
    elif what == "allow-unit" and argv[2] == "local":
        sys.stdout.write(unit(["IPAddressDeny=any", "IPAddressAllow=localhost"]))
    elif what == "allow-unit":
        items = cidr(int(argv[2]))
        # many short lines: systemd refuses a unit line longer than 1 MB
        sys.stdout.write(unit(["IPAddressDeny=any"] + ["IPAddressAllow=" + " ".join(items[k:k + 1000])
                                                       for k in range(0, len(items), 1000)]))
    elif what == "filter-unit":
        sys.stdout.write(unit(["IPIngressFilterPath=" + argv[2], "IPEgressFilterPath=" + argv[2]]))
    else:
        sys.stderr.write("usage: gen.py packets | cidr N | ports N | allow-unit N|local | filter-unit PIN\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
