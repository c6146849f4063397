#!/usr/bin/env python3
"""User-mode driver figures: boots Capstan with init starting /bin/edu as a driver and
/bin/bench udrv as its run= program, and collects the restart figures.

    udrv.py OUT.json QEMU_COMMAND...

`bench udrv` kills the driver 20 times; each sample is the time from the kill until init
has a fresh /bin/edu running (restart_process) and until that driver holds an armed
interrupt line again (restart_ready): what a device is without a driver when one dies.
Issue 17's goal for a driver restart is under 200 ms. The host's load average is recorded
beside them (QEMU's TCG threads share the host's cores).
"""
import json
import os
import re
import subprocess
import sys

OUT, CMD = sys.argv[1], sys.argv[2:]
LINE = re.compile(r"bench udrv (\w+) n=(\d+) median_ns=(\d+) p99_ns=(\d+)")
APPEND = "edu=msi -- driver=/bin/edu@00:02.0,--dma-bits,40,--loop run=/bin/bench,udrv"

load_before = os.getloadavg()[0]
out = subprocess.run(CMD + ["-append", APPEND], stdin=subprocess.DEVNULL,
                     capture_output=True, timeout=600).stdout.decode(errors="replace")
results = {}
for m in LINE.finditer(out):
    results[m.group(1)] = {"n": int(m.group(2)), "median_ns": int(m.group(3)),
                           "p99_ns": int(m.group(4))}
if "bench udrv done" not in out or len(results) < 2:
    raise SystemExit(f"the benchmark did not finish:\n{out[-1500:]}")
report = {"benchmark": "udrv", "qemu": "virt, GICv2 (v2m MSI), cortex-a72, 1G, -smp 2, edu",
          "goal": "restart under 200 ms (issue 17)",
          "host_load_before": load_before, "host_load_after": os.getloadavg()[0],
          "results": results}
for name, r in results.items():
    print(f"  {name:<20} n={r['n']:<6} median {r['median_ns'] / 1e6:8.2f} ms"
          f"   p99 {r['p99_ns'] / 1e6:8.2f} ms")
print(f"  host load average {load_before:.2f} -> {report['host_load_after']:.2f}")
with open(OUT, "w") as f:
    json.dump(report, f, indent=2)
print(f"wrote {OUT}")
