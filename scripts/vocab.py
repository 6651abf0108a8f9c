#!/usr/bin/env python3
"""Keep the man pages' lists of names made from the one vocabulary table
(lang/vocab.c): each region between
    .\\" BEGIN NAME: made by make vocab from lang/vocab.c (cgfilter-expr ARGS)
    .\\" END NAME
holds what `cgfilter-expr ARGS` prints.

  vocab.py CGFILTER-EXPR MANPAGE...           rewrite the regions
  vocab.py --check CGFILTER-EXPR MANPAGE...   fail, showing the difference,
                                              if one is not what it prints
"""
import difflib
import re
import subprocess
import sys

BEGIN = re.compile(r'^\.\\" BEGIN (\w+): made by make vocab from lang/vocab\.c \(cgfilter-expr ([^)]*)\)$')


def regions(lines):
    """(begin, end, name, args) of each region: lines begin+1 .. end-1."""
    out, i = [], 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if m:
            end = lines.index('.\\" END %s' % m.group(1), i)
            out.append((i, end, m.group(1), m.group(2).split()))
            i = end
        i += 1
    return out


def main(argv):
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool, pages, bad = argv[0], argv[1:], 0
    for page in pages:
        with open(page) as f:
            lines = f.read().split("\n")
        found = regions(lines)
        if not found:
            print("vocab: %s has no BEGIN ... END region" % page, file=sys.stderr)
            return 1
        for begin, end, name, args in reversed(found):
            r = subprocess.run([tool] + args, capture_output=True, text=True)
            if r.returncode:
                print("vocab: %s %s failed: %s" % (tool, " ".join(args), r.stderr.strip()),
                      file=sys.stderr)
                return 1
            want = r.stdout.rstrip("\n").split("\n")
            have = lines[begin + 1:end]
            if have != want:
                bad += 1
                if check:
                    print("vocab: %s, %s is not what cgfilter-expr %s prints (make vocab):"
                          % (page, name, " ".join(args)), file=sys.stderr)
                    sys.stderr.writelines(difflib.unified_diff(
                        [x + "\n" for x in have], [x + "\n" for x in want], page, "lang/vocab.c"))
                lines[begin + 1:end] = want
        if bad and not check:
            with open(page, "w") as f:
                f.write("\n".join(lines))
            print("vocab: rewrote %s" % page)
    return 1 if bad and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
