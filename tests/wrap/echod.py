#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A socket-activated echo daemon for the wrap tests: serves every socket
passed in LISTEN_FDS (TCP listeners and UDP sockets), answering each
message with "NAME:" and the message, NAME from LISTEN_FDNAMES.  Writes
"ready PID FDS NAMES" to the file in ECHOD_READY when it serves."""
import os
import selectors
import socket
import sys


def main():
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        print("echod: LISTEN_PID is not mine", file=sys.stderr)
        return 1
    n = int(os.environ["LISTEN_FDS"])
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    sel = selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket(fileno=3 + i)
        sel.register(s, selectors.EVENT_READ, ("listen", names[i] if i < len(names) else "?"))
    ready = os.environ.get("ECHOD_READY")
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write("ready %d %d %s\n" % (os.getpid(), n, ":".join(names)))
        os.rename(ready + ".tmp", ready)
    while True:
        for key, _ in sel.select():
            s, (kind, name) = key.fileobj, key.data
            if kind == "listen" and s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                sel.register(c, selectors.EVENT_READ, ("conn", name))
            elif kind == "listen":
                data, peer = s.recvfrom(65536)
                s.sendto(name.encode() + b":" + data, peer)
            else:
                data = s.recv(65536)
                if not data:
                    sel.unregister(s)
                    s.close()
                else:
                    s.sendall(name.encode() + b":" + data)


if __name__ == "__main__":
    sys.exit(main())
