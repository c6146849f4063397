#!/usr/bin/env python3
"""Process figures: boots Capstan with init=/bin/bench and collects its lines.

    proc.py OUT.json QEMU_COMMAND...

The guest program times a null system call, spawn+wait of /bin/true, a notification
round trip between two processes, and a 1 MiB mem_map, each as median and p99 over
many samples (see userland/programs/src/bin/bench.rs). The host's load average is
recorded beside them: QEMU's TCG threads share the host's cores, so a loaded host
stretches the tail.
"""
import json
import os
import re
import subprocess
import sys

OUT, CMD = sys.argv[1], sys.argv[2:]
LINE = re.compile(r"bench proc (\w+) n=(\d+) median_ns=(\d+) p99_ns=(\d+)")

load_before = os.getloadavg()[0]
out = subprocess.run(CMD + ["-append", "init=/bin/bench"], stdin=subprocess.DEVNULL,
                     capture_output=True, timeout=600).stdout.decode(errors="replace")
results = {}
for m in LINE.finditer(out):
    results[m.group(1)] = {"n": int(m.group(2)), "median_ns": int(m.group(3)),
                           "p99_ns": int(m.group(4))}
if "bench proc done" not in out or len(results) < 4:
    raise SystemExit(f"the benchmark did not finish:\n{out[-1500:]}")
report = {"benchmark": "proc", "qemu": "virt, GICv2, cortex-a72, 1G, -smp 2",
          "host_load_before": load_before, "host_load_after": os.getloadavg()[0],
          "results": results}
for name, r in results.items():
    print(f"  {name:<20} n={r['n']:<6} median {r['median_ns'] / 1000:9.1f} us"
          f"   p99 {r['p99_ns'] / 1000:9.1f} us")
print(f"  host load average {load_before:.2f} -> {report['host_load_after']:.2f}")
with open(OUT, "w") as f:
    json.dump(report, f, indent=2)
print(f"wrote {OUT}")
