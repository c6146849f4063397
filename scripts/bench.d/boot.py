"""Boot-time benchmark: QEMU start -> first console line -> end of kernel init.

Starts QEMU N times per configuration -- both boot paths (the Image with -kernel,
and capstan.efi under EDK2, the UEFI + ACPI path) on both GIC versions --,
timestamps (host monotonic clock) the first byte of serial output, the loader's
first line and hand-over on the UEFI path, and the "kernel init done" line, and
records the kernel's own figure (generic-timer count since CPU reset). Reports
median, min and max; writes JSON.
"""
import json
import re
import statistics
import subprocess
import sys
import time

IMAGE, EFI, FIRMWARE = sys.argv[1], sys.argv[2], sys.argv[3]
RUNS, OUT = int(sys.argv[4]), sys.argv[5]
INIT = re.compile(rb"kernel init done in (\d+) us \((\d+) us since CPU reset\)")
LOADER = b"capstan.efi: UEFI"
HANDOVER = b"leaving UEFI"


def one_boot(path: str, gic: str) -> dict:
    cmd = ["qemu-system-aarch64", "-M", f"virt,gic-version={gic}", "-cpu", "cortex-a72",
           "-m", "1G", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none"]
    if path == "uefi":
        cmd += ["-bios", FIRMWARE, "-kernel", EFI]
    else:
        cmd += ["-kernel", IMAGE]
    start = time.monotonic()
    marks = {}
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
            for key, needle in (("loader_start_ms", LOADER), ("handover_ms", HANDOVER)):
                if key not in marks and needle in buf:
                    marks[key] = (time.monotonic() - start) * 1000
            m = INIT.search(buf)
            if m:
                result = {
                    "first_output_ms": first * 1000,
                    "init_done_ms": (time.monotonic() - start) * 1000,
                    "kernel_init_us": int(m.group(1)),
                    "since_cpu_reset_us": int(m.group(2)),
                    **marks,
                }
                break
    finally:
        proc.kill()
        proc.wait()
    if result is None:
        raise SystemExit(f"boot did not reach 'kernel init done' ({path}, GICv{gic}): "
                         f"{buf[-400:]!r}")
    return result


def summarize(samples: list, key: str) -> dict:
    values = [s[key] for s in samples]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


report = {"benchmark": "boot", "runs": RUNS, "qemu": "virt, cortex-a72, 1G, -smp 2",
          "configs": {}}
for path in ("kernel", "uefi"):
    for gic in ("2", "3"):
        samples = [one_boot(path, gic) for _ in range(RUNS)]
        keys = ["first_output_ms", "init_done_ms", "kernel_init_us", "since_cpu_reset_us"]
        if path == "uefi":
            keys += ["loader_start_ms", "handover_ms"]
        cfg = {k: summarize(samples, k) for k in keys}
        name = f"{path}-gicv{gic}"
        report["configs"][name] = cfg
        how = "-kernel Image" if path == "kernel" else "capstan.efi under EDK2"
        print(f"{how}, GICv{gic}: median of {RUNS} (min..max):")
        rows = [("QEMU start -> first console line", "first_output_ms")]
        if path == "uefi":
            rows += [("QEMU start -> capstan.efi runs", "loader_start_ms"),
                     ("QEMU start -> ExitBootServices", "handover_ms")]
        rows += [("QEMU start -> kernel init done", "init_done_ms")]
        for label, key in rows:
            v = cfg[key]
            print(f"  {label:34} {v['median']:8.1f} ms  ({v['min']:.1f}..{v['max']:.1f})")
        print(f"  {'kernel_main -> init done (guest)':34} {cfg['kernel_init_us']['median']:8.0f} us")
        print(f"  {'CPU reset -> init done (guest)':34} {cfg['since_cpu_reset_us']['median']:8.0f} us")
with open(OUT, "w") as f:
    json.dump(report, f, indent=2)
print(f"wrote {OUT}")
