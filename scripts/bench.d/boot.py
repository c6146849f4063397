"""Boot-time benchmark: QEMU start -> first console line -> end of kernel init.

Starts QEMU N times per configuration, timestamps (host monotonic clock) the
first byte of serial output and the "kernel init done" line, and also records
the kernel's own figure (generic-timer count since CPU reset). Reports median,
min and max; writes JSON.
"""
import json
import re
import statistics
import subprocess
import sys
import time

IMAGE, RUNS, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
INIT = re.compile(rb"kernel init done in (\d+) us \((\d+) us since CPU reset\)")


def one_boot(gic: str) -> dict:
    cmd = ["qemu-system-aarch64", "-M", f"virt,gic-version={gic}", "-cpu", "cortex-a72",
           "-m", "1G", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none", "-kernel", IMAGE]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    first = None
    result = None
    buf = b""
    deadline = start + 30
    try:
        while time.monotonic() < deadline:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            if first is None:
                first = time.monotonic() - start
            buf += chunk
            m = INIT.search(buf)
            if m:
                result = {
                    "first_output_ms": first * 1000,
                    "init_done_ms": (time.monotonic() - start) * 1000,
                    "kernel_init_us": int(m.group(1)),
                    "since_cpu_reset_us": int(m.group(2)),
                }
                break
    finally:
        proc.kill()
        proc.wait()
    if result is None:
        raise SystemExit(f"boot did not reach 'kernel init done' (GICv{gic}): {buf[-400:]!r}")
    return result


def summarize(samples: list, key: str) -> dict:
    values = [s[key] for s in samples]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


report = {"benchmark": "boot", "runs": RUNS, "qemu": "virt, cortex-a72, 1G, -smp 2",
          "configs": {}}
for gic in ("2", "3"):
    samples = [one_boot(gic) for _ in range(RUNS)]
    cfg = {k: summarize(samples, k)
           for k in ("first_output_ms", "init_done_ms", "kernel_init_us", "since_cpu_reset_us")}
    report["configs"][f"gicv{gic}"] = cfg
    print(f"GICv{gic} boot, median of {RUNS} (min..max):")
    print(f"  QEMU start -> first console line  {cfg['first_output_ms']['median']:8.1f} ms"
          f"  ({cfg['first_output_ms']['min']:.1f}..{cfg['first_output_ms']['max']:.1f})")
    print(f"  QEMU start -> kernel init done    {cfg['init_done_ms']['median']:8.1f} ms"
          f"  ({cfg['init_done_ms']['min']:.1f}..{cfg['init_done_ms']['max']:.1f})")
    print(f"  kernel_main -> init done (guest)  {cfg['kernel_init_us']['median']:8.0f} us")
    print(f"  CPU reset -> init done (guest)    {cfg['since_cpu_reset_us']['median']:8.0f} us")
with open(OUT, "w") as f:
    json.dump(report, f, indent=2)
print(f"wrote {OUT}")
