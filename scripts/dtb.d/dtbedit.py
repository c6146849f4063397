#!/usr/bin/env python3
"""Edits a flattened device tree for scripts/test's -dtb cases (no dtc needed).

  dtbedit.py IN OUT OP [OP...]
    del-prop NODE PROP        delete a property         (NODE: /pl011@9000000, / = root)
    del-node NODE             delete a node and its children
    set-str NODE PROP TEXT    set a string property
    truncate NODE PROP BYTES  cut a property's value to BYTES bytes
    flip SEED COUNT           flip COUNT random bits in property values (SEED: repeatable)

The tree is parsed and written back whole (Devicetree Specification v0.4 section 5), so
the result is a well-formed blob that QEMU's -dtb accepts; only values change.
"""
import random
import struct
import sys


def parse(blob):
    (magic, total, off_st, off_str, off_rsv, _ver, _last, _cpu, size_str,
     size_st) = struct.unpack(">10I", blob[:40])
    assert magic == 0xD00DFEED, "not a DTB"
    strings = blob[off_str:off_str + size_str]
    rsv = []
    at = off_rsv
    while True:
        a, s = struct.unpack(">QQ", blob[at:at + 16])
        at += 16
        if a == 0 and s == 0:
            break
        rsv.append((a, s))
    st = blob[off_st:off_st + size_st]
    at = 0
    stack = []
    root = None
    while at < len(st):
        tok = struct.unpack(">I", st[at:at + 4])[0]
        at += 4
        if tok == 1:
            end = st.index(b"\0", at)
            node = {"name": st[at:end].decode(), "props": [], "children": []}
            at = (end + 4) & ~3
            if stack:
                stack[-1]["children"].append(node)
            else:
                root = node
            stack.append(node)
        elif tok == 3:
            length, nameoff = struct.unpack(">II", st[at:at + 8])
            at += 8
            name = strings[nameoff:strings.index(b"\0", nameoff)].decode()
            stack[-1]["props"].append([name, bytearray(st[at:at + length])])
            at = (at + length + 3) & ~3
        elif tok == 2:
            stack.pop()
        elif tok == 4:
            continue
        elif tok == 9:
            break
    return root, rsv


def serialize(root, rsv):
    strings = bytearray()
    offsets = {}
    st = bytearray()

    def name_off(n):
        if n not in offsets:
            offsets[n] = len(strings)
            strings.extend(n.encode() + b"\0")
        return offsets[n]

    def emit(node):
        st.extend(struct.pack(">I", 1))
        st.extend(node["name"].encode() + b"\0")
        while len(st) % 4:
            st.append(0)
        for name, value in node["props"]:
            st.extend(struct.pack(">III", 3, len(value), name_off(name)))
            st.extend(value)
            while len(st) % 4:
                st.append(0)
        for child in node["children"]:
            emit(child)
        st.extend(struct.pack(">I", 2))

    emit(root)
    st.extend(struct.pack(">I", 9))
    off_rsv = 40
    rsv_bytes = b"".join(struct.pack(">QQ", a, s) for a, s in rsv + [(0, 0)])
    off_st = off_rsv + len(rsv_bytes)
    off_str = off_st + len(st)
    total = off_str + len(strings)
    header = struct.pack(">10I", 0xD00DFEED, total, off_st, off_str, off_rsv, 17, 16, 0,
                         len(strings), len(st))
    return header + rsv_bytes + bytes(st) + bytes(strings)


def find(root, path):
    node = root
    for part in [p for p in path.split("/") if p]:
        node = next(c for c in node["children"] if c["name"] == part)
    return node


def parent_of(root, path):
    parts = [p for p in path.split("/") if p]
    return find(root, "/" + "/".join(parts[:-1])), parts[-1]


def prop(node, name):
    return next(p for p in node["props"] if p[0] == name)


def main(argv):
    src, dst, ops = argv[1], argv[2], argv[3:]
    root, rsv = parse(open(src, "rb").read())
    while ops:
        op = ops.pop(0)
        if op == "del-prop":
            node, name = find(root, ops.pop(0)), ops.pop(0)
            node["props"] = [p for p in node["props"] if p[0] != name]
        elif op == "del-node":
            parent, name = parent_of(root, ops.pop(0))
            parent["children"] = [c for c in parent["children"] if c["name"] != name]
        elif op == "set-str":
            node, name, text = find(root, ops.pop(0)), ops.pop(0), ops.pop(0)
            node["props"] = [p for p in node["props"] if p[0] != name]
            node["props"].append([name, bytearray(text.encode() + b"\0")])
        elif op == "truncate":
            node, name, n = find(root, ops.pop(0)), ops.pop(0), int(ops.pop(0))
            p = prop(node, name)
            p[1] = p[1][:n]
        elif op == "flip":
            rng = random.Random(int(ops.pop(0)))
            count = int(ops.pop(0))
            values = []

            def walk(node):
                values.extend(p[1] for p in node["props"] if p[1])
                for c in node["children"]:
                    walk(c)

            walk(root)
            for _ in range(count):
                v = rng.choice(values)
                v[rng.randrange(len(v))] ^= 1 << rng.randrange(8)
        else:
            sys.exit(f"dtbedit: unknown operation {op}")
    open(dst, "wb").write(serialize(root, rsv))


if __name__ == "__main__":
    main(sys.argv)
