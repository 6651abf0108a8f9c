# SPDX-License-Identifier: GPL-2.0-only
"""Reference model of a port-firewall verdict, written from the documentation
(the header comments of include/cgf_vocab.h, include/cgf_parse.bpf.h and
lang/expr.h), never from the code under test, plus the machinery to run real
programs: batch compilation of many expressions into cgroup_skb objects and
build/tests/verdict-run.

Reusable by any test (import it with tests/verdict on sys.path):

    frame = build("ip4 ttl=64 / tcp dport=80 flags=S")   # Ethernet frame, sent
    frame = build("ingress ip4 / tcp dport=80")   # ... received
    fields = decode(frame)              # dict of the vocabulary, None = malformed
    expr = Expr("tcp && dst_port == 80")
    expected_verdict(expr, frame)       # '1' pass, '0' drop
    objs = compile_exprs(exprs, workdir)  # [(object, program)] per expression
    verdicts = run_frames(frames, objects=..., pins=...)
    problems = compare(exprs, frames, names, got)   # disagreements, explained

Everything is deterministic for a given random.Random seed.
"""
import ipaddress
import os
import random
import re
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

# a chain such as 'len + len + ... + len' is a tree as deep as it is long
sys.setrecursionlimit(max(sys.getrecursionlimit(), 50000))

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))

# ---- the vocabulary (include/cgf_vocab.h), in enum order -------------------
FIELDS = ["ip", "ipv6", "tcp", "udp", "icmp", "src_port", "dst_port", "len",
          "ip_proto", "icmp_type", "icmp_code", "tcp_flags", "frag", "ttl",
          # from the direction (cgf_vocab.h): received, local is dst and
          # remote src; sent, local is src and remote dst
          "local_port", "remote_port"]
FIELD_INDEX = {n: i for i, n in enumerate(FIELDS)}
TCP_FLAG_NAMES = {"tcp_fin": 0x01, "tcp_syn": 0x02, "tcp_rst": 0x04,
                  "tcp_psh": 0x08, "tcp_ack": 0x10, "tcp_urg": 0x20}
NAMES = FIELDS + list(TCP_FLAG_NAMES)

ETH_P_IP, ETH_P_IPV6, ETH_P_ARP = 0x0800, 0x86DD, 0x0806
MASK64 = (1 << 64) - 1

# ---- packet builder ---------------------------------------------------------
# A spec is layers separated by '/', each a word and key=value settings
# (numbers in decimal or 0x hex), outermost first, after the word "ingress"
# for a packet received (else it is one sent, "egress" if said):
#   ether type=N             the ethertype (default: from the next layer)
#   ip4 ttl= proto= ihl= ver= opts=BYTES mf=1 df=1 off=N(8-byte units) tlen=
#       src=ADDR dst=ADDR (default 10.0.0.1 -> 10.0.0.2)
#   ip6 hlim= nh= ver= plen= src=ADDR dst=ADDR (default fd00::1 -> fd00::2)
#   hbh|rt|dst|mob|hip|shim6 len= nh=     IPv6 extension, (len + 1) * 8 bytes
#   ah len= nh=                           (len + 2) * 4 bytes
#   frag off=N m=0|1 nh=                  8 bytes
#   tcp sport= dport= flags=N|letters(FSRPAUEC) doff= opts=BYTES
#   udp sport= dport= ulen=
#   icmp type= code=  /  icmp6 type= code=  (8 bytes)
#   gre  /  sctp sport= dport=  /  l4 proto=N n=BYTES
#   data N                   N payload bytes
#   cut N                    keep only the first N bytes after Ethernet
# Protocol numbers, lengths and next-header fields follow from the layers
# unless set.  Checksums are left 0: a cgroup_skb filter does not read them.

PROTO_OF = {"ip4": 4, "ip6": 41, "hbh": 0, "rt": 43, "dst": 60, "mob": 135,
            "hip": 139, "shim6": 140, "ah": 51, "frag": 44, "tcp": 6,
            "udp": 17, "icmp": 1, "icmp6": 58, "gre": 47, "sctp": 132}
EXT_SIZED8 = ("hbh", "rt", "dst", "mob", "hip", "shim6")
NO_NEXT = 59
TCP_FLAG_LETTERS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10,
                    "U": 0x20, "E": 0x40, "C": 0x80}


def _num(v):
    return int(v, 0)


def _parse_spec(spec):
    layers = []
    for part in spec.split("/"):
        words = part.split()
        if not words:
            raise ValueError("empty layer in spec %r" % spec)
        kind, args = words[0], {}
        for w in words[1:]:
            if "=" in w:
                k, v = w.split("=", 1)
                args[k] = v
            else:
                args["_"] = w
        layers.append((kind, args))
    return layers


def _u16(v):
    return bytes([(v >> 8) & 0xFF, v & 0xFF])


def _addr(a, key, family, default):
    """The address a[key] (or default) of an ip4/ip6 layer, as bytes."""
    ip = ipaddress.ip_address(a.get(key, default))
    if ip.version != family:
        raise ValueError("%s=%s is not an IPv%d address" % (key, ip, family))
    return ip.packed


def _layer_bytes(kind, a, nxt, payload):
    """Bytes of one layer followed by payload; nxt is the next layer's
    protocol number."""
    g = lambda k, d: _num(a[k]) if k in a else d
    if kind == "ip4":
        opts = g("opts", 0)
        ihl = g("ihl", 5 + opts // 4)
        tlen = g("tlen", 20 + opts + len(payload)) & 0xFFFF
        fo = (g("off", 0) & 0x1FFF) | (0x2000 if g("mf", 0) else 0) | \
             (0x4000 if g("df", 0) else 0)
        h = bytes([(g("ver", 4) << 4) | (ihl & 15), 0]) + _u16(tlen) + \
            _u16(0x1234) + _u16(fo) + bytes([g("ttl", 64), g("proto", nxt)]) + \
            _u16(0) + _addr(a, "src", 4, "10.0.0.1") + _addr(a, "dst", 4, "10.0.0.2")
        return h + bytes([1] * (opts - 1) + [0] if opts else []) + payload
    if kind == "ip6":
        plen = g("plen", len(payload)) & 0xFFFF
        h = bytes([(g("ver", 6) << 4), 0, 0, 0]) + _u16(plen) + \
            bytes([g("nh", nxt), g("hlim", 64)]) + \
            _addr(a, "src", 6, "fd00::1") + _addr(a, "dst", 6, "fd00::2")
        return h + payload
    if kind in EXT_SIZED8:
        n = g("len", 0)
        body = bytes([g("nh", nxt), n]) + bytes((n + 1) * 8 - 2)
        return body + payload
    if kind == "ah":
        n = g("len", 1)
        size = (n + 2) * 4
        body = bytes([g("nh", nxt), n]) + bytes(max(size - 2, 0))
        return body[:max(size, 2)] + payload
    if kind == "frag":
        fo = ((g("off", 0) & 0x1FFF) << 3) | (1 if g("m", 0) else 0)
        return bytes([g("nh", nxt), 0]) + _u16(fo) + bytes([0, 0, 0, 7]) + payload
    if kind == "tcp":
        opts = g("opts", 0)
        fl = a.get("flags", "0")
        if re.fullmatch(r"[FSRPAUEC]+", fl):
            flags = sum(TCP_FLAG_LETTERS[c] for c in set(fl))
        else:
            flags = _num(fl)
        doff = g("doff", 5 + opts // 4)
        h = _u16(g("sport", 40000)) + _u16(g("dport", 80)) + bytes(8) + \
            bytes([(doff & 15) << 4, flags & 0xFF]) + _u16(0xFFFF) + bytes(4)
        return h + bytes(opts) + payload
    if kind == "udp":
        ulen = g("ulen", 8 + len(payload)) & 0xFFFF
        return _u16(g("sport", 40000)) + _u16(g("dport", 53)) + _u16(ulen) + \
            _u16(0) + payload
    if kind in ("icmp", "icmp6"):
        return bytes([g("type", 8), g("code", 0), 0, 0, 0, 1, 0, 1]) + payload
    if kind == "gre":
        return bytes([0, 0, 0x08, 0x00]) + payload
    if kind == "sctp":
        return _u16(g("sport", 40000)) + _u16(g("dport", 80)) + bytes(8) + payload
    if kind == "l4":
        return bytes(i & 0xFF for i in range(g("n", 8))) + payload
    if kind == "data":
        return bytes((0xA0 + i) & 0xFF for i in range(_num(a.get("_", "0")))) + payload
    raise ValueError("unknown layer %r" % kind)


class Frame(bytes):
    """An Ethernet frame and its direction: ingress, received (the kernel's
    ingress_ifindex not 0), or sent."""

    def __new__(cls, data, ingress=False):
        f = super().__new__(cls, data)
        f.ingress = ingress
        return f

    def line(self):
        """The frame as a line of verdict-run's PACKETS file."""
        return ("ingress " if self.ingress else "") + self.hex()


def _direction(spec):
    """(ingress, the spec without its direction word)"""
    w = spec.split(None, 1)
    if w and w[0] in ("ingress", "egress"):
        return w[0] == "ingress", w[1] if len(w) > 1 else ""
    return False, spec


def received(spec):
    """The spec as a packet received (what a socket filter sees)."""
    return "ingress " + _direction(spec)[1]


def build(spec):
    """The Ethernet frame (Frame) a spec describes."""
    ingress, spec = _direction(spec)
    layers = _parse_spec(spec)
    cut = None
    if layers[-1][0] == "cut":
        cut = _num(layers[-1][1]["_"])
        layers = layers[:-1]
    ethertype = None
    if layers and layers[0][0] == "ether":
        ethertype = _num(layers[0][1].get("type", "0x0806"))
        layers = layers[1:]
    payload, nxt = b"", NO_NEXT
    for kind, a in reversed(layers):
        payload = _layer_bytes(kind, a, nxt, payload)
        nxt = _num(a["proto"]) if kind == "l4" else PROTO_OF.get(kind, NO_NEXT)
    if ethertype is None:
        first = layers[0][0] if layers else ""
        ethertype = ETH_P_IP if first == "ip4" else ETH_P_IPV6 if first == "ip6" else ETH_P_ARP
    if cut is not None:
        payload = payload[:cut]
    return Frame(bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]) + _u16(ethertype) + payload, ingress)


# ---- reference decoder ------------------------------------------------------
# From the documented rules: IPv4 options by IHL (IHL < 5 malformed); IPv6
# extension headers hop-by-hop, routing, dstopts, mobility, HIP, shim6 are
# (len + 1) * 8 bytes, AH (len + 2) * 4, fragment 8, followed at most 8 deep;
# a non-first fragment has no transport header; anything that ends early or
# has the wrong version is malformed (dropped whatever the filter says); a
# packet neither IPv4 nor IPv6 has every field 0.

V6_EXT = {0, 43, 60, 135, 139, 140, 51, 44}
MAX_EXT = 8


def decode(frame):
    """Vocabulary values (dict) of an Ethernet frame, or None if malformed.
    local_port and remote_port by the frame's direction."""
    f = _decode(frame)
    if f is not None:
        ports = (f["dst_port"], f["src_port"])
        f["local_port"], f["remote_port"] = ports if getattr(frame, "ingress", False) else ports[::-1]
    return f


def _decode(frame):
    f = dict.fromkeys(FIELDS, 0)
    etype = frame[12] << 8 | frame[13]
    p = frame[14:]
    n = len(p)
    nonfirst = False
    if etype == ETH_P_IP:
        if n < 20 or p[0] >> 4 != 4 or (p[0] & 15) < 5:
            return None
        off = (p[0] & 15) * 4
        if off > n:
            return None
        f["ip"] = 1
        f["ttl"] = p[8]
        proto = p[9]
        fo = p[6] << 8 | p[7]
        f["frag"] = int(bool(fo & 0x3FFF))    # MF or a fragment offset
        nonfirst = (fo & 0x1FFF) != 0
        icmp_proto = 1
    elif etype == ETH_P_IPV6:
        if n < 40 or p[0] >> 4 != 6:
            return None
        f["ipv6"] = 1
        f["ttl"] = p[7]
        proto, off, depth = p[6], 40, 0
        while proto in V6_EXT:
            if depth == MAX_EXT:
                return None
            depth += 1
            if proto == 44:
                if off + 8 > n:
                    return None
                f["frag"] = 1
                nonfirst = ((p[off + 2] << 8 | p[off + 3]) >> 3) != 0
                proto = p[off]
                off += 8
                if nonfirst:
                    break
                continue
            if off + 2 > n:
                return None
            size = (p[off + 1] + 2) * 4 if proto == 51 else (p[off + 1] + 1) * 8
            if off + size > n:
                return None
            proto = p[off]
            off += size
        icmp_proto = 58
    else:
        return f
    f["len"] = n
    f["ip_proto"] = proto
    f["tcp"] = int(proto == 6)
    f["udp"] = int(proto == 17)
    f["icmp"] = int(proto == icmp_proto)
    if nonfirst:
        return f
    t = p[off:]
    if proto == 6:
        if len(t) < 20:
            return None
        doff = (t[12] >> 4) * 4
        if doff < 20 or doff > len(t):
            return None
        f["src_port"], f["dst_port"] = t[0] << 8 | t[1], t[2] << 8 | t[3]
        f["tcp_flags"] = t[13]
    elif proto == 17:
        if len(t) < 8:
            return None
        f["src_port"], f["dst_port"] = t[0] << 8 | t[1], t[2] << 8 | t[3]
    elif proto == icmp_proto:
        if len(t) < 4:
            return None
        f["icmp_type"], f["icmp_code"] = t[0], t[1]
    return f


def kernel_refuses(frame):
    """BPF_PROG_TEST_RUN refuses (EINVAL) frames too short for their
    network header; such a packet never reaches a cgroup_skb program."""
    etype = frame[12] << 8 | frame[13]
    n = len(frame) - 14
    return n <= 0 or (etype == ETH_P_IP and n < 20) or (etype == ETH_P_IPV6 and n < 40)


# ---- reference expression language (C dialect) ------------------------------
# C operators with C precedence, ?: right-associative; values are u64:
# arithmetic wraps, x / 0 == 0, x % 0 == x, shift counts mod 64, comparisons
# and ! && || give 0 or 1.

BINARY_PREC = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
               "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9,
               "-": 9, "*": 10, "/": 10, "%": 10}
UNARY = ("!", "~", "-", "+")
_OPS = sorted(list(BINARY_PREC) + ["!", "~", "?", ":", "(", ")"], key=len, reverse=True)


class ExprError(ValueError):
    pass


def _tokens(text):
    i, out = 0, []
    while i < len(text):
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c.isdigit():
            m = re.match(r"[0-9A-Za-z_.]+", text[i:])
            w = m.group(0)
            if re.fullmatch(r"0[xX][0-9a-fA-F]+", w):
                v = int(w, 16)
            elif re.fullmatch(r"0|[1-9][0-9]*", w):
                v = int(w)
            else:
                raise ExprError("bad number %r" % w)
            if v > MASK64:
                raise ExprError("number %r does not fit in 64 bits" % w)
            out.append(("num", v))
            i += len(w)
            continue
        m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
        if m:
            if m.group(0) not in NAMES:
                raise ExprError("unknown name %r" % m.group(0))
            out.append(("name", m.group(0)))
            i += len(m.group(0))
            continue
        for op in _OPS:
            if text.startswith(op, i):
                out.append(("op", op))
                i += len(op)
                break
        else:
            raise ExprError("unexpected %r at column %d" % (c, i + 1))
    return out


class _Parser:
    def __init__(self, text):
        self.t = _tokens(text)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else ("eof", None)

    def take(self, op=None):
        tok = self.peek()
        if op is not None and tok != ("op", op):
            raise ExprError("expected %r, got %r" % (op, tok[1]))
        self.i += 1
        return tok

    def cond(self):
        c = self.binary(1)
        if self.peek() == ("op", "?"):
            self.take()
            a = self.cond()
            self.take(":")
            b = self.cond()
            return ("?:", c, a, b)
        return c

    def binary(self, minprec):
        lhs = self.unary()
        while True:
            kind, op = self.peek()
            if kind != "op" or op not in BINARY_PREC or BINARY_PREC[op] < minprec:
                return lhs
            self.take()
            lhs = (op, lhs, self.binary(BINARY_PREC[op] + 1))

    def unary(self):
        kind, v = self.peek()
        if kind == "op" and v in UNARY:
            self.take()
            return ("u" + v, self.unary())
        return self.primary()

    def primary(self):
        kind, v = self.take()
        if kind == "num":
            return ("num", v)
        if kind == "name":
            return ("name", v)
        if (kind, v) == ("op", "("):
            e = self.cond()
            self.take(")")
            return e
        raise ExprError("unexpected %r" % (v,))


def parse_expr(text):
    p = _Parser(text)
    if not p.t:
        raise ExprError("empty expression")
    tree = p.cond()
    if p.peek()[0] != "eof":
        raise ExprError("unexpected %r after the expression" % (p.peek()[1],))
    return tree


def _div(a, b):
    return a // b if b else 0


def _mod(a, b):
    return a % b if b else a


_PY_BIN = {
    "+": "((%s + %s) & M)", "-": "((%s - %s) & M)", "*": "((%s * %s) & M)",
    "/": "_div(%s, %s)", "%": "_mod(%s, %s)",
    "<<": "((%s << (%s & 63)) & M)", ">>": "(%s >> (%s & 63))",
    "&": "(%s & %s)", "|": "(%s | %s)", "^": "(%s ^ %s)",
    "==": "(1 if %s == %s else 0)", "!=": "(1 if %s != %s else 0)",
    "<": "(1 if %s < %s else 0)", "<=": "(1 if %s <= %s else 0)",
    ">": "(1 if %s > %s else 0)", ">=": "(1 if %s >= %s else 0)",
    "&&": "(1 if (%s and %s) else 0)", "||": "(1 if (%s or %s) else 0)",
}


def _py(tree):
    k = tree[0]
    if k == "num":
        return str(tree[1])
    if k == "name":
        n = tree[1]
        if n in TCP_FLAG_NAMES:
            return "(1 if f[%d] & %d else 0)" % (FIELD_INDEX["tcp_flags"], TCP_FLAG_NAMES[n])
        return "f[%d]" % FIELD_INDEX[n]
    if k == "u!":
        return "(0 if %s else 1)" % _py(tree[1])
    if k == "u~":
        return "(~%s & M)" % _py(tree[1])
    if k == "u-":
        return "(-%s & M)" % _py(tree[1])
    if k == "u+":
        return _py(tree[1])
    if k == "?:":
        return "(%s if %s else %s)" % (_py(tree[2]), _py(tree[1]), _py(tree[3]))
    return _PY_BIN[k] % (_py(tree[1]), _py(tree[2]))


class Expr:
    """A filter expression: its text, its tree and a Python function of the
    field tuple (in enum cgf_field order) computing its u64 value."""

    def __init__(self, text):
        self.text = text
        self.tree = parse_expr(text)
        self.fn = eval("lambda f: " + _py(self.tree),
                       {"M": MASK64, "_div": _div, "_mod": _mod})

    def value(self, fields):
        return self.fn(tuple(fields[n] for n in FIELDS))


def expected_verdict(expr, frame, fields=None):
    """'1' pass or '0' drop: malformed drops, else non-zero passes."""
    if fields is None:
        fields = decode(frame)
    if fields is None:
        return "0"
    return "1" if expr.value(fields) else "0"


# ---- reference of the cgfilter language (the full dialect) -------------------
# From cgfilter(8), FILTER LANGUAGE and SETS: the C dialect above, plus '#'
# comments, set declarations '@name = { ITEMS } [;]' before the expression,
# 'x in SET' (1 if x is one of the set's values or ranges, integer sets hold
# 0..65535 only), and src_ip / dst_ip, which can only be tested: '== PREFIX'
# (the address is in the prefix), '!= PREFIX' (it is not) or 'in' a set of
# IPv4/IPv6 prefixes (longest prefix match: in any of them).  A packet that
# is not IP has no address: it is in no prefix.  The first item of a
# declaration decides its type; '@x = { }' is empty.


def decode_addrs(frame):
    """(source, destination) ipaddress objects of a well-formed IP frame,
    (None, None) for a frame that is not IPv4 or IPv6."""
    etype = frame[12] << 8 | frame[13]
    p = frame[14:]
    if etype == ETH_P_IP and len(p) >= 20:
        return ipaddress.IPv4Address(p[12:16]), ipaddress.IPv4Address(p[16:20])
    if etype == ETH_P_IPV6 and len(p) >= 40:
        return ipaddress.IPv6Address(p[8:24]), ipaddress.IPv6Address(p[24:40])
    return None, None


def _item_is_addr(text):
    return ":" in text or re.search(r"(?<!\.)\.(?!\.)", text) is not None


class ExeName(str):
    """A string literal of a filter: an executable's path."""


def exe_id(path):
    """The identity the kernel records for an executable: (s_dev in the
    kernel's encoding, major << 20 | minor; inode number), as cgfilter
    resolves a path when a filter is set."""
    if not path.startswith("/"):
        raise ExprError("%r: an executable is named by its absolute path" % path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ExprError("cannot find executable %r: %s" % (path, e.strerror))
    if not stat.S_ISREG(st.st_mode):
        raise ExprError("%r is not a regular file" % path)
    return (os.major(st.st_dev) << 20 | os.minor(st.st_dev), st.st_ino)


def parse_items(items, want=None):
    """A set of item strings as ('int', [(lo, hi)]), ('addr', [networks]) or
    ('exe', {(dev, ino)}); want forces the type ('int', 'addr' or 'exe').
    An executable is a string literal (ExeName) or, in the sets given to
    FullExpr, an absolute path."""
    kind = want or ("exe" if items and (isinstance(items[0], ExeName) or items[0].startswith("/"))
                    else "addr" if items and _item_is_addr(items[0]) else "int")
    if kind == "exe":
        if any(not isinstance(it, ExeName) and not it.startswith("/") for it in items):
            raise ExprError("a set of executables holds \"PATH\"s")
        return kind, {exe_id(it) for it in items}
    out = []
    for it in items:
        if isinstance(it, ExeName):
            raise ExprError("a string in a set of %s" % ("addresses" if kind == "addr" else "integers"))
        if kind == "addr":
            if "/" in it:
                a, l = it.split("/", 1)
                if not re.fullmatch(r"0|[1-9][0-9]*", l):
                    raise ExprError("bad prefix length in %r" % it)
            out.append(ipaddress.ip_network(it, strict=True))
        else:
            if _item_is_addr(it):
                raise ExprError("%r is an address in an integer set" % it)
            lo, _, hi = it.partition("..")
            lo = _tokens(lo)[0][1]
            hi = _tokens(hi)[0][1] if hi else lo
            if lo > hi or hi > 65535:
                raise ExprError("bad integer set element %r" % it)
            out.append((lo, hi))
    return kind, out


class _FullParser:
    """Recursive descent over the text itself: set items are words of
    [0-9A-Za-z.:/] that only make sense where the grammar expects them."""

    def __init__(self, text, sets, decls_only_new=False):
        self.s = text
        self.i = 0
        self.sets = dict(sets or {})   # name -> (kind, elements)
        self.decls_only_new = decls_only_new

    def ws(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def peek_op(self, ops):
        self.ws()
        for op in sorted(ops, key=len, reverse=True):
            if self.s.startswith(op, self.i):
                # 'in' is a word
                if op.isalpha() and re.match(r"[A-Za-z0-9_]", self.s[self.i + len(op):self.i + len(op) + 1]):
                    continue
                return op
        return None

    def expect(self, op):
        if self.peek_op([op]) != op:
            raise ExprError("expected %r at %d" % (op, self.i))
        self.i += len(op)

    def word(self, pattern):
        self.ws()
        m = re.compile(pattern).match(self.s, self.i)
        if not m or not m.group(0):
            raise ExprError("expected %s at %d" % (pattern, self.i))
        self.i = m.end()
        return m.group(0)

    def string(self):
        """A string literal: escapes \\" \\\\ \\xHH, no NUL, one line."""
        self.ws()
        if not self.s.startswith('"', self.i):
            raise ExprError("expected a string at %d" % self.i)
        i, out = self.i + 1, bytearray()
        while True:
            if i >= len(self.s) or self.s[i] == "\n":
                raise ExprError("string not closed")
            c = self.s[i]
            if c == '"':
                break
            if c == "\\":
                e = self.s[i + 1:i + 2]
                if e in ('"', "\\"):
                    out += e.encode()
                    i += 2
                    continue
                m = re.match(r"x([0-9A-Fa-f]{2})", self.s[i + 1:i + 4])
                if not m or int(m.group(1), 16) == 0:
                    raise ExprError("bad escape in a string at %d" % i)
                out.append(int(m.group(1), 16))
                i += 4
                continue
            out += c.encode()
            i += 1
        self.i = i + 1
        if len(out) > 255:
            raise ExprError("string longer than 255 bytes")
        return ExeName(out.decode("utf-8", "surrogateescape"))

    def items(self):
        self.expect("{")
        out = []
        while self.peek_op(["}"]) is None:
            out.append(self.string() if self.peek_op(['"']) == '"' else self.word(r"[0-9A-Za-z.:/]+"))
            if self.peek_op([","]) == ",":
                self.i += 1
            elif self.peek_op(["}"]) is None:
                raise ExprError("expected ',' or '}' at %d" % self.i)
        self.i += 1
        return out

    def decls(self):
        while self.peek_op(["@"]) == "@":
            self.i += 1
            name = self.word(r"[A-Za-z0-9_]+")
            self.expect("=")
            its = self.items()
            if self.peek_op(["timeout"]) == "timeout":
                # a dynamic set: starts empty, filled by add(), emptied by del()
                self.i += len("timeout")
                t = _tokens(self.word(r"[0-9][0-9A-Za-z_]*"))[0][1]
                if its or not 1 <= t <= 86400:
                    raise ExprError("bad dynamic set @%s" % name)
                self.sets[name] = ("dyn", Dyn(name, t))
            elif not (self.decls_only_new and name in self.sets):
                self.sets[name] = parse_items(its) if its else ("empty", [])
            if self.peek_op([";"]) == ";":
                self.i += 1

    def setref(self, kind):
        if self.peek_op(["@"]) == "@":
            self.i += 1
            name = self.word(r"[A-Za-z0-9_]+")
            if name not in self.sets:
                raise ExprError("unknown set @%s" % name)
            k, el = self.sets[name]
            if k == "dyn":
                if kind == "exe":
                    raise ExprError("a dynamic set holds no executables")
                el.typed(kind)
                return el
            if k == "empty":
                return set() if kind == "exe" else []
            if k != kind:
                raise ExprError("@%s holds %s" % (name, k))
            return el
        return parse_items(self.items(), kind)[1]

    def cond(self):
        c = self.binary(1)
        if self.peek_op(["?"]) == "?":
            self.i += 1
            a = self.cond()
            self.expect(":")
            b = self.cond()
            return ("?:", c, a, b)
        return c

    BIN = sorted(list(BINARY_PREC) + ["in"], key=len, reverse=True)

    def binary(self, minprec):
        lhs = self.unary()
        while True:
            op = self.peek_op(self.BIN)
            # '|' must not match the start of '||' etc.: peek_op takes the longest
            prec = 7 if op == "in" else BINARY_PREC.get(op)
            if op is None or prec < minprec:
                return lhs
            self.i += len(op)
            if op == "in":
                if lhs[0] == "exe":
                    lhs = ("ein", self.setref("exe"))
                elif lhs[0] == "addr":
                    lhs = ("ain", lhs[1], self.setref("addr"))
                else:
                    lhs = ("iin", lhs, self.setref("int"))
                continue
            if lhs[0] == "exe":
                if op not in ("==", "!="):
                    raise ExprError("an executable can only be tested")
                lhs = ("ein", {exe_id(self.string())})
                if op == "!=":
                    lhs = ("u!", lhs)
                continue
            if lhs[0] == "addr":
                if op not in ("==", "!="):
                    raise ExprError("an address can only be tested")
                net = parse_items([self.word(r"[0-9A-Za-z.:/]+")], "addr")[1]
                lhs = ("ain", lhs[1], net)
                if op == "!=":
                    lhs = ("u!", lhs)
                continue
            rhs = self.binary(prec + 1)
            if rhs[0] in ("addr", "exe"):
                raise ExprError("an address can only be tested")
            lhs = (op, lhs, rhs)

    def unary(self):
        op = self.peek_op(["!", "~", "-", "+"])
        if op and not self.s.startswith(("!=",), self.i):
            self.i += 1
            a = self.unary()
            if a[0] in ("addr", "exe"):
                raise ExprError("an address can only be tested")
            return ("u" + op, a)
        return self.primary()

    def primary(self):
        self.ws()
        if self.peek_op(["("]) == "(":
            self.i += 1
            e = self.cond()
            self.expect(")")
            return e
        m = re.compile(r"[0-9][0-9A-Za-z_.]*|[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        if not m:
            raise ExprError("unexpected %r at %d" % (self.s[self.i:self.i + 1], self.i))
        w = m.group(0)
        self.i = m.end()
        if w in ("add", "del") and self.peek_op(["("]) == "(":
            self.i += 1
            self.expect("@")
            name = self.word(r"[A-Za-z0-9_]+")
            if self.sets.get(name, ("",))[0] != "dyn":
                raise ExprError("%s() of @%s, not a dynamic set" % (w, name))
            self.expect(",")
            v = self.cond()
            self.expect(")")
            d = self.sets[name][1]
            if v[0] == "exe":
                raise ExprError("add() and del() take no executable")
            d.typed("addr" if v[0] == "addr" else "int")
            return ("set" + w, d, v)
        if w[0].isdigit():
            return ("num", _tokens(w)[0][1])
        if w in ("src_ip", "dst_ip", "local_ip", "remote_ip"):
            return ("addr", w[0])
        if w == "exe":
            return ("exe",)
        if w not in NAMES:
            raise ExprError("unknown name %r" % w)
        return ("name", w)


class Dyn:
    """A dynamic set's entries: key -> when it expires; the time is the
    FullExpr's clock (now), 0 unless a test moves it."""

    def __init__(self, name, timeout):
        self.name, self.timeout, self.kind, self.entries, self.now = name, timeout, None, {}, 0.0

    def typed(self, kind):
        if self.kind not in (None, kind):
            raise ExprError("@%s holds %s" % (self.name, self.kind))
        self.kind = kind

    def key(self, v):
        # an address: (version, int); a packet that is not IP has none
        return None if v is None else (v.version, int(v)) if self.kind == "addr" else v

    def has(self, v):
        k = self.key(v)
        return k is not None and self.entries.get(k, -1) > self.now

    def change(self, v, add):
        k = self.key(v)
        if k is not None and add:
            self.entries[k] = self.now + self.timeout
        elif k is not None:
            self.entries.pop(k, None)
        return 1


# where an address is in the tuple FullExpr.value() passes: (src, dst, exe,
# local, remote)
ADDR_AT = {"s": 0, "d": 1, "l": 3, "r": 4}


def _fn(t):
    """A Python function (fields tuple, addresses) -> u64 of a full tree."""
    k = t[0]
    if k in ("setadd", "setdel"):
        d, add, v = t[1], k == "setadd", t[2]
        if v[0] == "addr":
            w = ADDR_AT[v[1]]
            return lambda f, a: d.change(a[w], add)
        x = _fn(v)
        return lambda f, a: d.change(x(f, a), add)
    if k == "num":
        v = t[1]
        return lambda f, a: v
    if k == "name":
        n = t[1]
        if n in TCP_FLAG_NAMES:
            i, m = FIELD_INDEX["tcp_flags"], TCP_FLAG_NAMES[n]
            return lambda f, a: 1 if f[i] & m else 0
        i = FIELD_INDEX[n]
        return lambda f, a: f[i]
    if k == "iin" and isinstance(t[2], Dyn):
        x, d = _fn(t[1]), t[2]
        return lambda f, a: 1 if d.has(x(f, a)) else 0
    if k == "ain" and isinstance(t[2], Dyn):
        w, d = ADDR_AT[t[1]], t[2]
        return lambda f, a: 1 if d.has(a[w]) else 0
    if k == "ein":
        # a[2]: the packet's executable, (dev, ino); None or (0, 0): none
        # known, in no set (no file has inode 0)
        ids = t[1]
        return lambda f, a: 1 if len(a) > 2 and a[2] is not None and a[2] in ids else 0
    if k == "iin":
        x, ranges = _fn(t[1]), t[2]
        return lambda f, a: 1 if any(lo <= x(f, a) <= hi for lo, hi in ranges) else 0
    if k == "ain":
        w, nets = ADDR_AT[t[1]], t[2]
        return lambda f, a: 1 if a[w] is not None and any(
            a[w].version == n.version and a[w] in n for n in nets) else 0
    if k == "?:":
        c, x, y = _fn(t[1]), _fn(t[2]), _fn(t[3])
        return lambda f, a: x(f, a) if c(f, a) else y(f, a)
    if k[0] == "u":
        x = _fn(t[1])
        return {"u!": lambda f, a: 0 if x(f, a) else 1,
                "u~": lambda f, a: ~x(f, a) & MASK64,
                "u-": lambda f, a: -x(f, a) & MASK64,
                "u+": x}[k]
    x, y = _fn(t[1]), _fn(t[2])
    ops = {
        "+": lambda p, q: (p + q) & MASK64, "-": lambda p, q: (p - q) & MASK64,
        "*": lambda p, q: (p * q) & MASK64, "/": _div, "%": _mod,
        "<<": lambda p, q: (p << (q & 63)) & MASK64, ">>": lambda p, q: p >> (q & 63),
        "&": lambda p, q: p & q, "|": lambda p, q: p | q, "^": lambda p, q: p ^ q,
        "==": lambda p, q: int(p == q), "!=": lambda p, q: int(p != q),
        "<": lambda p, q: int(p < q), "<=": lambda p, q: int(p <= q),
        ">": lambda p, q: int(p > q), ">=": lambda p, q: int(p >= q),
    }
    if k == "&&":
        return lambda f, a: 1 if x(f, a) and y(f, a) else 0
    if k == "||":
        return lambda f, a: 1 if x(f, a) or y(f, a) else 0
    op = ops[k]
    return lambda f, a: op(x(f, a), y(f, a))


class FullExpr:
    """A cgfilter filter (full dialect) with the engine's named sets given as
    {name: [item, ...]}: its value for a packet's fields and addresses.
    decls_only_new: a declaration in the text of a set given in sets does
    not replace its items (sets holds what the engine has now)."""

    def __init__(self, text, sets=None, decls_only_new=False):
        self.text = text
        p = _FullParser(text, {k: parse_items(v) if v else ("empty", []) for k, v in (sets or {}).items()},
                        decls_only_new)
        p.decls()
        p.ws()
        if p.i >= len(text):
            raise ExprError("empty filter")
        self.tree = p.cond()
        p.ws()
        if p.i != len(text):
            raise ExprError("unexpected %r at %d" % (text[p.i:p.i + 10], p.i))
        if self.tree[0] in ("addr", "exe"):
            raise ExprError("an address can only be tested")
        self.fn = _fn(self.tree)

    def value(self, fields, addrs, ingress=False):
        """addrs: (src, dst) or (src, dst, exe); ingress: the direction"""
        src, dst = addrs[0], addrs[1]
        exe = addrs[2] if len(addrs) > 2 else None
        a = (src, dst, exe) + ((dst, src) if ingress else (src, dst))
        return self.fn(tuple(fields[n] for n in FIELDS), a)

    def verdict(self, frame, exe=None):
        """'1' pass or '0' drop: malformed drops, else non-zero passes.
        exe: the executable that made the packet's socket, (dev, ino), or
        None if none is known."""
        fields = decode(frame)
        if fields is None:
            return "0"
        return "1" if self.value(fields, decode_addrs(frame) + (exe,),
                                 getattr(frame, "ingress", False)) else "0"


# ---- random expressions ----------------------------------------------------

PORTS = [0, 20, 22, 53, 80, 123, 443, 1024, 8080, 20053, 20080, 65535]
TTLS = [0, 1, 2, 63, 64, 128, 255]
PROTOS = [0, 1, 6, 17, 43, 44, 47, 51, 58, 59, 60, 132, 135]
ICMP_TYPES = [0, 3, 8, 11, 128, 129, 135, 255]
EDGE = [0, 1, 2, 3, 7, 8, 31, 32, 63, 64, 65, 127, 255, 256, 1500, 65535,
        0xFFFFFFFF, 1 << 63, MASK64]
CONSTS_FOR = {"src_port": PORTS, "dst_port": PORTS, "local_port": PORTS, "remote_port": PORTS,
              "ttl": TTLS,
              "ip_proto": PROTOS, "icmp_type": ICMP_TYPES, "icmp_code": [0, 1, 3, 4, 255],
              "tcp_flags": [0, 1, 2, 0x10, 0x12, 0x11, 0x04, 0x18, 0xFF],
              "len": [0, 20, 28, 40, 41, 48, 60, 64, 100, 128, 1500],
              "frag": [0, 1], "ip": [0, 1], "ipv6": [0, 1], "tcp": [0, 1],
              "udp": [0, 1], "icmp": [0, 1]}
BOOL_NAMES = ["ip", "ipv6", "tcp", "udp", "icmp", "frag"] + list(TCP_FLAG_NAMES)


def _const(rng, field=None):
    if field and field in CONSTS_FOR and rng.random() < 0.8:
        return ("num", rng.choice(CONSTS_FOR[field]))
    if rng.random() < 0.5:
        return ("num", rng.choice(EDGE))
    return ("num", rng.randrange(0, 1 << rng.choice([4, 8, 16, 64])))


def _gen_value(rng, depth):
    """Any integer expression, all operators."""
    r = rng.random()
    if depth <= 0 or r < 0.3:
        return ("name", rng.choice(NAMES)) if rng.random() < 0.6 else _const(rng)
    if r < 0.42:
        return ("u" + rng.choice(UNARY), _gen_value(rng, depth - 1))
    if r < 0.5:
        return ("?:", _gen_pred(rng, depth - 1), _gen_value(rng, depth - 1),
                _gen_value(rng, depth - 1))
    return (rng.choice(list(BINARY_PREC)), _gen_value(rng, depth - 1),
            _gen_value(rng, depth - 1))


def _gen_pred(rng, depth):
    """An expression that is often 0 and often not, on plausible packets."""
    r = rng.random()
    if depth <= 0 or r < 0.35:
        field = rng.choice(FIELDS)
        op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
        lhs = ("name", field)
        s = rng.random()
        if s < 0.15:
            lhs = (rng.choice(["&", "%", "+", "-", ">>", "^", "*", "/"]), lhs, _const(rng))
        elif s < 0.22:
            lhs = (rng.choice(["+", "-", "|", "*"]), lhs, ("name", rng.choice(FIELDS)))
        return (op, lhs, _const(rng, field))
    if r < 0.5:
        return ("name", rng.choice(BOOL_NAMES))
    if r < 0.58:
        return ("u!", _gen_pred(rng, depth - 1))
    if r < 0.85:
        return (rng.choice(["&&", "||", "&&", "||", "&", "|", "^", "==", "!="]),
                _gen_pred(rng, depth - 1), _gen_pred(rng, depth - 1))
    if r < 0.93:
        return ("?:", _gen_pred(rng, depth - 1), _gen_pred(rng, depth - 1),
                _gen_pred(rng, depth - 1))
    return _gen_value(rng, depth - 1)


def _prec(tree):
    k = tree[0]
    if k in ("num", "name"):
        return 100
    if k.startswith("u"):
        return 50
    if k == "?:":
        return 0
    return BINARY_PREC[k]


def to_text(tree, rng=None):
    """C text of a tree with only the parentheses C needs (and, given rng,
    some extra ones and varied spacing)."""
    def sp():
        return " " if rng is None or rng.random() < 0.7 else ""

    def wrap(t, need):
        s = to_text(t, rng)
        if need or (rng is not None and rng.random() < 0.1):
            return "(" + s + ")"
        return s

    k = tree[0]
    if k == "num":
        v = tree[1]
        return hex(v) if rng is not None and rng.random() < 0.3 else str(v)
    if k == "name":
        return tree[1]
    if k.startswith("u"):
        inner = wrap(tree[1], _prec(tree[1]) < 50)
        return k[1] + inner
    if k == "?:":
        return "%s%s?%s%s%s:%s%s" % (wrap(tree[1], _prec(tree[1]) <= 0), sp(), sp(),
                                     wrap(tree[2], False), sp(), sp(),
                                     wrap(tree[3], False))
    p = BINARY_PREC[k]
    lhs = wrap(tree[1], _prec(tree[1]) < p)
    rhs = wrap(tree[2], _prec(tree[2]) <= p)
    # no operator of the language is a prefix problem here: "a--b" and
    # "a<-b" lex as the two operators they are, so spaces are optional
    return lhs + sp() + k + sp() + rhs


def random_expr(rng, depth=4):
    """Text of a random expression (mostly predicates, some raw arithmetic)."""
    tree = _gen_pred(rng, depth) if rng.random() < 0.85 else _gen_value(rng, depth)
    return to_text(tree, rng), tree


# ---- random filters of the full language (sets, addresses) -------------------

# addresses near the builder's (10.0.0.1 -> 10.0.0.2, fd00::1 -> fd00::2)
# and far from them, so that address tests go both ways
ADDR_ITEMS = ["10.0.0.1", "10.0.0.2", "10.0.0.0/8", "10.0.0.0/31", "10.0.0.2/32",
              "192.0.2.0/24", "198.51.100.7", "0.0.0.0/0", "fd00::1", "fd00::2",
              "fd00::/16", "fd00::/127", "2001:db8::/32", "::/0", "2001:db8::1"]
PORT_ITEMS = ["22", "53", "80", "443", "0", "65535", "1..1023", "1024..65535",
              "8000..8100", "20053", "20080", "0x50", "123..123"]


def _rand_items(rng, pool, n):
    return ", ".join(rng.choice(pool) for _ in range(n))


def _exe_leaf(rng, sets, exes):
    """A test of exe: == or != a path, in a literal set or a named one."""
    r = rng.random()
    names = [n for n, k in sets.items() if k == "exe"]
    if names and r < 0.3:
        return "exe in @%s" % rng.choice(names)
    if r < 0.7:
        return 'exe %s "%s"' % (rng.choice(["==", "!="]), rng.choice(exes))
    return "exe in { %s }" % ", ".join('"%s"' % rng.choice(exes) for _ in range(rng.randint(1, 4)))


ADDR_NAMES = ["src_ip", "dst_ip", "local_ip", "remote_ip"]


def _full_leaf(rng, sets, exes=None):
    """One predicate of the full language: a set test, an address test or
    a random C predicate (and with exes, paths of executables, exe tests)."""
    if exes and rng.random() < 0.3:
        return _exe_leaf(rng, sets, exes)
    r = rng.random()
    if r < 0.2:
        f = rng.choice(ADDR_NAMES)
        if sets and rng.random() < 0.5:
            names = [n for n, k in sets.items() if k == "addr"]
            if names:
                return "%s in @%s" % (f, rng.choice(names))
        return "%s in { %s }" % (f, _rand_items(rng, ADDR_ITEMS, rng.randint(1, 6)))
    if r < 0.3:
        return "%s %s %s" % (rng.choice(ADDR_NAMES), rng.choice(["==", "!="]),
                             rng.choice(ADDR_ITEMS))
    if r < 0.5:
        f = rng.choice(["src_port", "dst_port", "local_port", "remote_port", "ttl", "ip_proto",
                        "icmp_type", "len"])
        names = [n for n, k in sets.items() if k == "int"]
        if names and rng.random() < 0.4:
            return "%s in @%s" % (f, rng.choice(names))
        # a few items are comparisons, many a map: both ways
        return "%s in { %s }" % (f, _rand_items(rng, PORT_ITEMS, rng.choice([1, 2, 3, 5, 9, 20])))
    return random_expr(rng, depth=rng.randint(0, 3))[0]


def _full_tree(rng, sets, n, exes=None):
    """Text of a balanced combination of n predicates."""
    if n <= 1:
        t = _full_leaf(rng, sets, exes)
        return "!(%s)" % t if rng.random() < 0.1 else "(%s)" % t
    k = rng.randint(1, n - 1)
    op = rng.choice(["&&", "||", "&&", "||", "&", "|", "^"])
    return "(%s %s %s)" % (_full_tree(rng, sets, k, exes), op, _full_tree(rng, sets, n - k, exes))


def random_full_expr(rng, terms=None, exes=None):
    """Text of a random filter of the full language: named sets declared
    first, then a balanced tree of TERMS predicates (random if None; now
    and then hundreds or thousands, to reach the engine's limits).  exes:
    paths of executables for exe tests (and sets of them)."""
    sets, decls = {}, []
    if exes:
        for i in range(rng.choice([0, 1, 2])):
            name = "x%d_exe" % i
            decls.append("@%s = { %s }" % (name, ", ".join('"%s"' % rng.choice(exes)
                                                          for _ in range(rng.randint(1, 3)))))
            sets[name] = "exe"
    for i in range(rng.choice([0, 0, 1, 2])):
        kind = rng.choice(["addr", "int"])
        name = "s%d_%s" % (i, kind)
        pool = ADDR_ITEMS if kind == "addr" else PORT_ITEMS
        decls.append("@%s = { %s }" % (name, _rand_items(rng, pool, rng.randint(1, 8))))
        sets[name] = kind
    if terms is None:
        r = rng.random()
        terms = rng.randint(1, 8) if r < 0.9 else rng.randint(100, 400) if r < 0.97 else rng.randint(1000, 4000)
    return " ".join(decls + [_full_tree(rng, sets, terms, exes)])


def eval_tree(tree, fields):
    """Evaluate a tree directly (used to check to_text against parse_expr)."""
    return eval("lambda f: " + _py(tree),
                {"M": MASK64, "_div": _div, "_mod": _mod})(tuple(fields[n] for n in FIELDS))


# ---- random packets ------------------------------------------------------------

def _l4_spec(rng, v6):
    kind = rng.choice(["tcp", "tcp", "udp", "udp", "icmp", "other"])
    port = lambda: rng.choice(PORTS[1:] + [rng.randrange(1, 65536)])
    if kind == "tcp":
        flags = rng.choice(["S", "SA", "A", "PA", "FA", "R", "RA", "0", "0xff", "U", "EC"])
        opts = rng.choice([0, 0, 0, 4, 12, 40])
        s = "tcp sport=%d dport=%d flags=%s" % (port(), port(), flags)
        if opts:
            s += " opts=%d" % opts
        return s + " / data %d" % rng.choice([0, 0, 1, 10, 100])
    if kind == "udp":
        return "udp sport=%d dport=%d / data %d" % (port(), port(), rng.choice([0, 1, 5, 11, 12, 64]))
    if kind == "icmp":
        return "%s type=%d code=%d / data %d" % ("icmp6" if v6 else "icmp",
                                                rng.choice(ICMP_TYPES), rng.choice([0, 0, 1, 3]),
                                                rng.choice([0, 8, 56]))
    return rng.choice(["gre / data 20", "sctp sport=%d dport=%d / data 16" % (port(), port()),
                       "l4 proto=%d n=%d" % (rng.choice([0, 2, 50, 89, 103, 250, 255]), rng.randrange(0, 30)),
                       "l4 proto=%d n=8" % rng.choice([1, 58])])


def _ext_spec(rng):
    k = rng.choice(["hbh", "rt", "dst", "mob", "hip", "shim6", "ah", "frag"])
    if k == "ah":
        return "ah len=%d" % rng.choice([1, 1, 4])
    if k == "frag":
        return "frag off=0 m=1"
    return "%s len=%d" % (k, rng.choice([0, 0, 1, 2]))


def random_packet(rng):
    """A spec: mostly well-formed packets, with edge cases mixed in, half
    of them received and half sent."""
    ingress = rng.random() < 0.5
    spec = _random_packet(rng)
    return ("ingress " if ingress else "egress ") + spec


def _random_packet(rng):
    r = rng.random()
    v6 = rng.random() < 0.4
    ttl = rng.choice(TTLS + [rng.randrange(256)])
    if r < 0.05:
        return "ether type=%s / data %d" % (rng.choice(["0x0806", "0x88cc", "0x8100", "0x0000"]),
                                            rng.choice([1, 28, 60]))
    if v6:
        ip = "ip6 hlim=%d" % ttl
        exts = [_ext_spec(rng) for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3, 7, 8, 9]))]
        if rng.random() < 0.1:
            exts.append("frag off=%d m=%d" % (rng.choice([1, 185, 8191]), rng.randrange(2)))
        layers = [ip] + exts
    else:
        ip = "ip4 ttl=%d" % ttl
        if rng.random() < 0.15:
            ip += " opts=%d" % rng.choice([4, 8, 40])
        fr = rng.random()
        if fr < 0.08:
            ip += " mf=1"
        elif fr < 0.16:
            ip += " off=%d mf=%d" % (rng.choice([1, 3, 185, 8191]), rng.randrange(2))
        elif fr < 0.2:
            ip += " df=1"
        if rng.random() < 0.04:
            ip += rng.choice([" ihl=%d" % rng.randrange(5), " ihl=15", " ver=%d" % rng.choice([0, 5, 6])])
        layers = [ip]
    if v6 and rng.random() < 0.03:
        layers[0] += " ver=%d" % rng.choice([4, 0, 7])
    spec = " / ".join(layers + [_l4_spec(rng, v6)])
    if rng.random() < 0.12:
        n = len(build(spec)) - 14
        spec += " / cut %d" % rng.randrange(max(n - 30, 0), n)
    return spec


# ---- building and running real programs -------------------------------------

def _multiarch():
    for cmd in (["clang", "-print-multiarch"], ["gcc", "-dumpmachine"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
            if out:
                return out
        except OSError:
            pass
    return ""


# The program around each expression, as in port-firewall/port_firewall.bpf.c.
PROG_TEMPLATE = """
#define cgf_div cgf_div_{n}
#define cgf_mod cgf_mod_{n}
#include "{hdr}"
#undef cgf_div
#undef cgf_mod

SEC("cgroup/skb")
int {n}(struct __sk_buff *skb)
{{
	struct cgf_pkt p;
	__u64 v;

	if (cgf_parse(skb, &p))
		return CGF_DROP;
	v = {n}_filter(&p);
	barrier_var(v);
	return v ? CGF_PASS : CGF_DROP;
}}
"""


def compile_exprs(texts, workdir, expr_tool=None, per_object=40, jobs=None, include=None):
    """Compile every expression text into a cgroup_skb program, many programs
    per object.  Returns [(object path, program name)], one per text.
    include is the directory with cgf_parse.bpf.h (default: the tree's, or
    $CGF_INCLUDE).  Raises RuntimeError naming what cgfilter-expr or clang
    refused."""
    include = include or os.environ.get("CGF_INCLUDE") or os.path.join(TOP, "include")
    expr_tool = expr_tool or os.path.join(BUILD, "tools", "cgfilter-expr")
    jobs = jobs or os.cpu_count() or 2
    os.makedirs(workdir, exist_ok=True)
    names = ["e%d" % i for i in range(len(texts))]

    def gen(i):
        hdr = os.path.join(workdir, names[i] + ".h")
        r = subprocess.run([expr_tool, "-f", names[i] + "_filter", "-o", hdr, "--", texts[i]],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("cgfilter-expr refused %r: %s" % (texts[i], r.stderr.strip()))
        return hdr

    with ThreadPoolExecutor(jobs) as ex:
        hdrs = list(ex.map(gen, range(len(texts))))

    cflags = ["-g", "-O2", "-Wall", "-Werror", "-target", "bpf",
              "-idirafter", "/usr/include/" + _multiarch(),
              "-I", include, "-I", workdir]
    chunks = [range(i, min(i + per_object, len(texts))) for i in range(0, len(texts), per_object)]

    def cc(k):
        src = os.path.join(workdir, "batch%d.bpf.c" % k)
        obj = os.path.join(workdir, "batch%d.bpf.o" % k)
        with open(src, "w") as f:
            f.write("// Generated by tests/verdict/verdict.py\n#include \"cgf_parse.bpf.h\"\n")
            for i in chunks[k]:
                f.write(PROG_TEMPLATE.format(n=names[i], hdr=os.path.basename(hdrs[i])))
            f.write('\nchar LICENSE[] SEC("license") = "GPL";\n')
        r = subprocess.run(["clang"] + cflags + ["-c", src, "-o", obj],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("clang failed on %s:\n%s" % (src, r.stderr[-3000:]))
        return obj

    with ThreadPoolExecutor(jobs) as ex:
        objs = list(ex.map(cc, range(len(chunks))))
    out = []
    for k, ch in enumerate(chunks):
        out.extend((objs[k], names[i]) for i in ch)
    return out


def run_frames(frames, objects=(), pins=(), runner=None, workdir=None, jobs=None, then=()):
    """Run frames through every program of the objects and the pins.
    Returns {(source, name): verdict string}, source being the object path
    or "pin" and name the program name or the pin path.  then: more
    arguments of verdict-run (["--then-prog-id", ID])."""
    runner = runner or os.path.join(BUILD, "tests", "verdict-run")
    jobs = jobs or os.cpu_count() or 2
    fd, path = tempfile.mkstemp(prefix="frames", suffix=".hex", dir=workdir)
    with os.fdopen(fd, "w") as f:
        for fr in frames:
            f.write(Frame(fr, getattr(fr, "ingress", False)).line() + "\n")

    def one(args):
        r = subprocess.run([runner, "-p", path] + list(then) + args, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("verdict-run %s failed: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    calls = [["--pin", p] for p in pins] + [[o] for o in dict.fromkeys(objects)]
    try:
        with ThreadPoolExecutor(jobs) as ex:
            outs = list(ex.map(one, calls))
    finally:
        os.unlink(path)
    got = {}
    for text in outs:
        for line in text.splitlines():
            source, name, v = line.split("\t")
            if len(v) != len(frames):
                raise RuntimeError("verdict-run gave %d verdicts for %d frames" % (len(v), len(frames)))
            got[(source, name)] = v
    return got


def explain(frame, spec=None):
    """Lines describing a frame: its spec, hex and decoded fields."""
    lines = []
    if spec:
        lines.append("packet: %s" % spec)
    lines.append("hex:    %s (%s)" % (frame.hex(), "received" if getattr(frame, "ingress", False)
                                          else "sent"))
    f = decode(frame)
    if f is None:
        lines.append("fields: malformed (must be dropped)")
    else:
        lines.append("fields: " + " ".join("%s=%d" % (n, f[n]) for n in FIELDS))
    return lines


def compare(expr, frames, got, specs=None, fields=None, limit=5):
    """Disagreements between a program's verdict string and the reference,
    as a list of explanations (at most limit explained, all counted)."""
    problems, count = [], 0
    for j, fr in enumerate(frames):
        fl = fields[j] if fields is not None else decode(fr)
        want = expected_verdict(expr, fr, fl)
        g = got[j]
        if g == want or (g == "x" and kernel_refuses(fr) and fl is None):
            continue
        count += 1
        if len(problems) < limit:
            lines = ["expression: %s" % expr.text] + \
                explain(fr, specs[j] if specs else None)
            if fl is not None:
                lines.append("value:  %d" % expr.value(fl))
            lines.append("verdict: reference %s, program %s  (1 pass, 0 drop, x refused by the kernel)"
                         % (want, g))
            problems.append("\n    ".join(lines))
    if count > limit:
        problems.append("... and %d more disagreements for this expression" % (count - limit))
    return problems
