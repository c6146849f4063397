#!/usr/bin/env python3
"""Names the functions behind a /proc/profile listing (docs/profiling.md).

usage: symbolize.py NM KERNEL_ELF USER_DIR [TOP] < listing

Kernel samples are looked up in KERNEL_ELF; a user sample carries its address space's
ASID in bits 48..63, which the listing's `asid A pid P /bin/NAME` lines map to a program,
looked up as USER_DIR/NAME. Prints the busiest functions of the kernel and of each program,
as shares of all samples (idle included).
"""
import bisect
import collections
import re
import subprocess
import sys


def symbols(nm, elf):
    try:
        out = subprocess.run([nm, "-n", "-C", "--defined-only", elf], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [], []
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), readable(parts[2])))
    return [a for a, _ in syms], [n for _, n in syms]


def readable(name):
    """A Rust symbol without its hash and with the legacy mangling's escapes undone."""
    name = re.sub(r"::h[0-9a-f]{16}( \(\.llvm\.\d+\))?$", "", name)
    for esc, ch in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","),
                    ("$RF$", "&"), ("$BP$", "*"), ("..", "::")):
        name = name.replace(esc, ch)
    return name.lstrip("_") if name.startswith("_<") else name


def name_of(table, pc):
    addrs, names = table
    i = bisect.bisect_right(addrs, pc) - 1
    return names[i] if i >= 0 else f"?{pc:#x}"


def main():
    nm, kernel_elf, user_dir = sys.argv[1:4]
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    text = sys.stdin.read()
    if "profiling is off" in text:
        sys.exit("the listing says profiling is off: boot with profile=HZ")
    m = re.search(r"^samples (\d+)", text, re.M)
    if not m:
        sys.exit("no 'samples N' line: not a /proc/profile listing")
    total = int(m.group(1)) or 1
    programs = {int(a): name.rsplit("/", 1)[-1]
                for a, name in re.findall(r"^asid (\d+) pid \d+ (\S+)", text, re.M)}
    groups = collections.defaultdict(collections.Counter)
    tables = {"kernel": symbols(nm, kernel_elf)}
    for pc, n in re.findall(r"^sample (0x[0-9a-f]+) (\d+)", text, re.M):
        pc, n = int(pc, 16), int(n)
        asid, addr = pc >> 48, pc & ((1 << 48) - 1)
        if asid == 0xFFFF:  # the kernel half
            groups["kernel"][name_of(tables["kernel"], pc)] += n
            continue
        prog = programs.get(asid, f"asid {asid} (exited)")
        if prog not in tables:
            tables[prog] = symbols(nm, f"{user_dir}/{prog}")
        groups[prog][name_of(tables[prog], addr)] += n
    hz = re.search(r"^hz (\d+)", text, re.M)
    print(f"{total} samples" + (f" at {hz.group(1)} Hz" if hz else ""))
    for group, counts in sorted(groups.items(), key=lambda g: -sum(g[1].values())):
        share = 100 * sum(counts.values()) / total
        print(f"\n{group}: {share:.1f}%")
        for name, n in counts.most_common(top):
            print(f"  {100 * n / total:5.1f}% {n:7d}  {name[:140]}")


if __name__ == "__main__":
    main()
