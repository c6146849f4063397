#!/usr/bin/env python3
"""Types into Capstan's console through QEMU's stdio as a person pasting would.

    paste.py QEMU_COMMAND...

Boots the monitor, then:
  1. 20 bursts of 2 KiB with no pause: lines of printable text, each an unknown command,
     one of them longer than the monitor's 256-byte line limit;
  2. 100 `uptime` commands in one write;
  3. Ctrl-A x, which QEMU must still see (it stops reading stdin while the guest's UART
     is full, so a frozen console would keep QEMU running).
Checks that every line was answered, the echo is complete, the long line's excess was
reported as dropped, and QEMU quit. Prints one line per check and exits non-zero on failure.
"""
import os
import re
import select
import subprocess
import sys
import threading
import time

PROMPT = b"capstan> "
MAX_LINE = 256  # kernel/src/monitor.rs MAX_LINE


def main():
    qemu = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = bytearray()
    lock = threading.Lock()

    def reader():
        while True:
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                return
            with lock:
                out.extend(chunk)

    threading.Thread(target=reader, daemon=True).start()

    def wait_for(pattern, count, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            with lock:
                text = bytes(out).replace(b"\r", b"")
            if len(re.findall(pattern, text)) >= count:
                return text
            time.sleep(0.05)
        with lock:
            return bytes(out).replace(b"\r", b"")

    failures = []

    def check(name, ok, detail=""):
        print(("ok      " if ok else "FAILED  ") + name + ("" if ok else f": {detail}"))
        if not ok:
            failures.append(name)

    text = wait_for(re.escape(PROMPT), 1, 60)
    check("the monitor prompt appears", PROMPT in text)

    # 1. 20 bursts of 2 KiB, each made of whole lines; line 7 of burst 3 is too long.
    lines = []
    long_line = ""
    for burst in range(20):
        data = bytearray()
        i = 0
        while True:
            word = f"paste-{burst:02d}-{i:03d}-" + "x" * (20 + (burst * 7 + i * 13) % 40)
            if burst == 3 and i == 7:
                word = long_line = f"paste-{burst:02d}-{i:03d}-" + "y" * 400
            if len(data) + len(word) + 1 > 2048:
                break
            data += word.encode() + b"\r"
            lines.append(word)
            i += 1
        pad = 2048 - len(data) - 1  # pad the burst to exactly 2 KiB with one more line
        if pad > 0:
            data += b"z" * pad + b"\r"
            lines.append("z" * pad)
        qemu.stdin.write(bytes(data))
    qemu.stdin.flush()
    text = wait_for(rb"unknown command '", len(lines), 120)
    answered = re.findall(rb"unknown command '([^']*)'", text)
    expected = [w[:MAX_LINE].encode() for w in lines]
    check(f"every pasted line answered ({len(lines)} lines, 40 KiB)",
          answered == expected,
          f"{len(answered)} answers for {len(expected)} lines; first difference at "
          f"{next((k for k, (a, b) in enumerate(zip(answered, expected)) if a != b), min(len(answered), len(expected)))}")
    echoed = all((PROMPT + w + b"\n") in text for w in expected)
    check("the echo of every pasted line is complete", echoed)
    check("the over-long line's excess is reported as dropped",
          f"line too long: {len(long_line) - MAX_LINE} bytes past {MAX_LINE} dropped".encode()
          in text)

    # 2. 100 commands in one write.
    before = len(re.findall(rb"\nup \d+\.\d{6} s, ", text))
    qemu.stdin.write(b"uptime\r" * 100)
    qemu.stdin.flush()
    text = wait_for(rb"\nup \d+\.\d{6} s, ", before + 100, 60)
    got = len(re.findall(rb"\nup \d+\.\d{6} s, ", text)) - before
    check("100 commands in one write are all answered", got == 100, f"{got} answered")
    qemu.stdin.write(b"irqs\r")
    qemu.stdin.flush()
    text = wait_for(rb"console input: \d+ bytes lost", 1, 30)
    m = re.search(rb"console input: (\d+) bytes lost to UART overruns, (\d+) backpressure stalls", text)
    check("irqs reports console input figures (no bytes lost)", bool(m) and m.group(1) == b"0",
          m.group(0).decode() if m else "no line")
    if m:
        print(f"        {m.group(0).decode()}")

    # 3. Ctrl-A x must still quit QEMU.
    qemu.stdin.write(b"\x01x")
    qemu.stdin.flush()
    try:
        qemu.wait(timeout=20)
        quit_ok = True
    except subprocess.TimeoutExpired:
        quit_ok = False
        qemu.kill()
        qemu.wait()
    check("Ctrl-A x quits QEMU after the paste", quit_ok)
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
