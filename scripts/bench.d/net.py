"""Network benchmark, run inside the lab's namespace by `scripts/bench net`.

Boots the kernel (argv: the QEMU command line, then `--`, mode name) attached to
the lab's tap, waits for its DHCP lease, then measures from the host side a UDP
echo round trip (10 000 sequential 64-byte datagrams to the kernel's echo
service on port 7, 1 s timeout each), and from the guest side (monitor command
`netbench`) DNS query latency to dnsmasq and HTTP GET throughput. Interrupts per
packet come from the monitor's `net` counters. Prints figures, writes JSON.
"""
import json
import re
import socket
import statistics
import subprocess
import sys
import time

sep = sys.argv.index("--")
cmd, mode, out = sys.argv[1:sep], sys.argv[sep + 1], sys.argv[sep + 2]
# Polling at 100 Hz answers one datagram per tick: 10 000 of them take about 100 s.
ECHO_COUNT = 10_000

proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
buf = b""


def read_until(pattern, timeout):
    global buf
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = rx.search(buf)
        if m:
            return m
        import select
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
    raise SystemExit(f"timed out waiting for {pattern!r}; output tail: {buf[-600:]!r}")


def command(line, done_pattern, timeout=120):
    global buf
    buf = b""
    proc.stdin.write(line.encode() + b"\r")
    proc.stdin.flush()
    return read_until(done_pattern, timeout)


def net_counters():
    m = command("net", rb"rx: packets (\d+) .*\n", 10)
    packets = int(m.group(1))
    irqs = int(re.search(rb"rx interrupts (\d+)", buf).group(1))
    return packets, irqs


try:
    lease = read_until(rb"net: DHCP lease (192\.0\.2\.\d+)/", 60).group(1).decode()
    read_until(rb"capstan> ", 30)
    p0, i0 = net_counters()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    rtts, lost = [], 0
    payload = bytes(range(64))
    for i in range(ECHO_COUNT):
        t0 = time.perf_counter_ns()
        sock.sendto(payload, (lease, 7))
        try:
            data, _ = sock.recvfrom(2048)
            if data == payload:
                rtts.append((time.perf_counter_ns() - t0) / 1000)
            else:
                lost += 1
        except socket.timeout:
            lost += 1
        if (i + 1) % 2000 == 0:
            print(f"[{mode}] ... {i + 1} echoes, {lost} lost", file=sys.stderr, flush=True)
    p1, i1 = net_counters()
    m = command("netbench", rb"netbench done", 600)
    text = buf.decode(errors="replace")
    dns = re.search(r"netbench dns n=(\d+) errors=(\d+) median_us=(\d+) p99_us=(\d+)", text)
    http = {p: int(ms) for p, ms in re.findall(r"netbench http path=(\S+) bytes=\d+ ms=(\d+)", text)}
    sha = re.search(r"netbench sha256 bytes=(\d+) ms=(\d+)", text)
    p2, i2 = net_counters()
    drops = {
        "smoltcp_queue": int(re.search(rb"smoltcp queue drops (\d+)", buf).group(1)),
        "ingress": int(re.search(rb"ingress drops (\d+)", buf).group(1)),
    }
    command("poweroff", rb"powering off", 10)
finally:
    proc.kill()
    proc.wait()

rtts.sort()
echo_packets = p1 - p0
report = {
    "benchmark": "net",
    "mode": mode,
    "udp_echo": {
        "count": ECHO_COUNT, "lost": lost,
        "median_us": statistics.median(rtts) if rtts else None,
        "p99_us": rtts[int(len(rtts) * 0.99) - 1] if rtts else None,
        "rx_packets": echo_packets, "rx_interrupts": i1 - i0,
        "interrupts_per_packet": (i1 - i0) / echo_packets if echo_packets else None,
    },
    "dns": {
        "queries": int(dns.group(1)) if dns else 0, "errors": int(dns.group(2)) if dns else None,
        "median_us": int(dns.group(3)) if dns else None, "p99_us": int(dns.group(4)) if dns else None,
    },
    "http": {
        path: {"ms": ms, "MiB_per_s": (size / 2**20) / (ms / 1000) if ms else None}
        for path, size in (("/1m.bin", 2**20), ("/16m.bin", 16 * 2**20)) if (ms := http.get(path))
    },
    "netbench_rx_packets": p2 - p1, "netbench_rx_interrupts": i2 - i1,
    "netbench_interrupts_per_packet": (i2 - i1) / (p2 - p1) if p2 > p1 else None,
    "rx_drops": drops,
    "sha256_MiB_per_s": (int(sha.group(1)) / 2**20) / (int(sha.group(2)) / 1000) if sha and int(sha.group(2)) else None,
}
with open(out, "w") as f:
    json.dump(report, f, indent=2)
u = report["udp_echo"]
print(f"[{mode}] UDP echo x{ECHO_COUNT}: median {u['median_us']:.0f} us, p99 {u['p99_us']:.0f} us, "
      f"lost {lost}, {u['interrupts_per_packet'] if u['interrupts_per_packet'] is not None else 'n/a'} interrupts/packet")
d = report["dns"]
print(f"[{mode}] DNS x{d['queries']}: median {d['median_us']} us, p99 {d['p99_us']} us, errors {d['errors']}")
for path, h in report["http"].items():
    print(f"[{mode}] HTTP GET {path}: {h['ms']} ms, {h['MiB_per_s']:.1f} MiB/s")
print(f"[{mode}] during DNS+HTTP: {report['netbench_interrupts_per_packet']} interrupts/packet "
      f"({report['netbench_rx_interrupts']} for {report['netbench_rx_packets']} packets)")
if report["sha256_MiB_per_s"]:
    print(f"[{mode}] in-kernel SHA-256 (each download streams through it): {report['sha256_MiB_per_s']:.1f} MiB/s")
print(f"[{mode}] frames dropped in the guest: {drops['smoltcp_queue']} (smoltcp queue full), "
      f"{drops['ingress']} (malformed)")
print(f"wrote {out}")
