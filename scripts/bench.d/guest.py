"""Shared by proc.py and udrv.py: boot Capstan once, collect the guest program's
`bench GROUP NAME n=N median_ns=M p99_ns=P` lines, print them and write the JSON.

The host's load average is recorded beside them: QEMU's TCG threads share the host's
cores, so a loaded host stretches the tail.
"""
import json
import os
import re
import subprocess


def run(group, append, out_path, cmd, expected, meta, unit=("us", 1000)):
    """Boots `cmd` with `-append append`; needs `bench GROUP done` and `expected` results."""
    line = re.compile(rf"bench {group} (\w+) n=(\d+) median_ns=(\d+) p99_ns=(\d+)")
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd + ["-append", append], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=600).stdout.decode(errors="replace")
    results = {}
    for m in line.finditer(out):
        results[m.group(1)] = {"n": int(m.group(2)), "median_ns": int(m.group(3)),
                               "p99_ns": int(m.group(4))}
    if f"bench {group} done" not in out or len(results) < expected:
        raise SystemExit(f"the benchmark did not finish:\n{out[-1500:]}")
    report = {"benchmark": group, **meta, "host_load_before": load_before,
              "host_load_after": os.getloadavg()[0], "results": results}
    name_unit, scale = unit
    for name, r in results.items():
        print(f"  {name:<20} n={r['n']:<6} median {r['median_ns'] / scale:9.2f} {name_unit}"
              f"   p99 {r['p99_ns'] / scale:9.2f} {name_unit}")
    print(f"  host load average {load_before:.2f} -> {report['host_load_after']:.2f}")
    with open(out_path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out_path}")
