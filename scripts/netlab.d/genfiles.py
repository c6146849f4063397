#!/usr/bin/env python3
"""Writes the lab's fixed HTTP files into DIR and their SHA-256 sums into SUMS.

Every byte is defined here, not by a random generator's implementation:
  small.txt  the SMALL_TEXT below
  1m.bin     1 MiB  = SHA-256 counter stream: block i = sha256(b"capstan-netlab:1m.bin:" + i as 8-byte BE)
  16m.bin    16 MiB = same construction with name "16m.bin"
  chunk.txt  the body nginx re-sends chunked at /chunked (64 numbered lines)
so a test (host or kernel) can recompute any of them. Files are written to a temporary
name and renamed, and skipped when already present with the right sum, so parallel
runs sharing build/netlab/www never see a half-written file.

usage: genfiles.py DIR SUMS
"""
import hashlib
import os
import sys

SMALL_TEXT = b"Hello from the Capstan network lab.\n"


def stream(name, size):
    out = bytearray()
    i = 0
    prefix = b"capstan-netlab:" + name.encode() + b":"
    while len(out) < size:
        out += hashlib.sha256(prefix + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:size])


def files():
    yield "small.txt", lambda: SMALL_TEXT
    yield "chunk.txt", lambda: b"".join(b"chunked line %02d of the Capstan lab\n" % i for i in range(64))
    yield "1m.bin", lambda: stream("1m.bin", 1 << 20)
    yield "16m.bin", lambda: stream("16m.bin", 16 << 20)


def main():
    directory, sums = sys.argv[1], sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    lines = []
    for name, make in files():
        data = make()
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(directory, name)
        current = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                current = hashlib.sha256(f.read()).hexdigest()
        if current != digest:
            tmp = "%s.tmp.%d" % (path, os.getpid())
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        lines.append("%s  %s\n" % (digest, name))
    tmp = "%s.tmp.%d" % (sums, os.getpid())
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, sums)


if __name__ == "__main__":
    main()
