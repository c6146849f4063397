#!/usr/bin/env python3
"""A scripted session with Capstan's shell, typed into the serial console as a person would.

    shell.py QEMU_COMMAND...

Boots to the shell (init starts /bin/sh), then runs the steps below, each checked against
what the console shows between one prompt and the next. Prints one line per check,
"ok      NAME" or "FAILED  NAME: why" (scripts/test counts them), and exits non-zero on
failure. QEMU must power off at the end (the `poweroff` tool).
"""
import os
import re
import subprocess
import sys
import threading
import time

PROMPT = b"capstan$ "
TOOLS = ["cat", "echo", "false", "free", "irqs", "kill", "ls", "poweroff", "ps", "reboot",
         "sh", "sleep", "true", "uptime"]


class Console:
    def __init__(self, argv):
        self.qemu = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.out = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            chunk = os.read(self.qemu.stdout.fileno(), 65536)
            if not chunk:
                return
            with self.lock:
                self.out.extend(chunk)

    def text(self):
        with self.lock:
            return bytes(self.out).replace(b"\r", b"")

    def prompts(self):
        return self.text().count(PROMPT)

    def send(self, data):
        try:
            self.qemu.stdin.write(data)
            self.qemu.stdin.flush()
        except BrokenPipeError:
            pass

    def wait_prompts(self, n, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.prompts() >= n:
                return True
            if self.qemu.poll() is not None:
                time.sleep(0.2)
                return self.prompts() >= n
            time.sleep(0.02)
        return False

    def run(self, data, limit=30):
        """Sends `data` (a line, or raw bytes) and returns what came before the next prompt."""
        before = self.prompts()
        start = len(self.text())
        self.send(data if isinstance(data, bytes) else data.encode() + b"\r")
        self.wait_prompts(before + 1, limit)
        return self.text()[start:].decode(errors="replace")


def main():
    con = Console(sys.argv[1:])
    failures = []

    def check(name, ok, detail=""):
        print(("ok      " if ok else "FAILED  ") + name + ("" if ok else f": {detail!r}"[:600]))
        sys.stdout.flush()
        if not ok:
            failures.append(name)

    check("init starts the shell and its prompt appears", con.wait_prompts(1, 90),
          con.text()[-800:])
    if not failures:
        session(con, check)
    con.send(b"poweroff\r")
    try:
        rc = con.qemu.wait(30)
    except subprocess.TimeoutExpired:
        con.qemu.kill()
        rc = None
    check("poweroff switches the machine off (QEMU exits 0)", rc == 0, f"exit {rc}")
    log = os.environ.get("SHELL_LOG")
    if log:
        with open(log, "wb") as f:
            f.write(con.text())
    print(f"{len(failures)} checks failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


def session(con, check):
    out = con.run("ls /bin")
    missing = [t for t in TOOLS + ["init"] if not re.search(rf"\s{t}\n", out)]
    check("ls /bin lists init, the shell and every tool", not missing, f"missing {missing}: {out}")

    out = con.run("ls /")
    check("ls / shows bin/, etc/, proc/ and dev/",
          all(f"  {d}/\n" in out for d in ["bin", "etc", "proc", "dev"]), out)

    for tool in TOOLS:
        out = con.run(f"{tool} --help; echo rc=$?")
        check(f"{tool} --help prints its usage and exits 0", "usage:" in out and "rc=0" in out, out)

    out = con.run("echo hello   'quoted  text' \"status $?\"")
    check("echo joins words; quotes keep spaces; $? expands", "hello quoted  text status 0\n" in out, out)

    out = con.run("false; echo after-false=$?")
    check("$? is the previous command's status", "after-false=1" in out, out)

    out = con.run("nosuch-program")
    check("an unknown program is named", "sh: nosuch-program: not found" in out, out)
    out = con.run("echo $?")
    check("... and its status is 127", "127" in out, out)

    out = con.run("/etc/motd")
    check("a file that is not a program is refused", "not an executable" in out, out)

    out = con.run("echo 'unterminated")
    check("a syntax error says what and where", "unterminated ' opened at column 6" in out, out)

    out = con.run(b"x" * 65536 + b"\r", limit=120)
    check("a 64 KiB line is refused whole with a clear error",
          "line too long: 65536 bytes (at most 1024)" in out, out[-300:])
    out = con.run("echo still-alive")
    check("the shell still answers after the 64 KiB line", "still-alive" in out, out)

    out = con.run(b"\x00\x07\x1f\x1b[99;5Zecho ctl-ok\r")
    check("control bytes and unknown escapes are ignored", "\nctl-ok\n" in out, out)

    con.run("echo history-one")
    out = con.run(b"\x1b[A\r")
    check("Up recalls the last line", out.count("history-one") >= 2, out)
    out = con.run(b"echo abd\x1b[D\x1b[Dx\x1b[F!\r")
    check("cursor keys edit in the middle of the line", "axbd!" in out, out)
    out = con.run("history")
    check("history lists what was typed", re.search(r"\d+  echo history-one", out) is not None, out)

    out = con.run(b"half a line\x03")
    check("Ctrl-C at the prompt abandons the line", "^C" in out, out)

    before = con.prompts()
    con.send(b"sleep 100\r")
    time.sleep(2)
    interrupted = con.prompts() == before
    out = con.run(b"\x03", limit=20)
    check("Ctrl-C ends the foreground program, not the shell", interrupted and "^C" in out, out)
    out = con.run("echo $?")
    check("... with status 130", "130" in out, out)

    out = con.run("sleep 100 &")
    m = re.search(r"\[(\d+)\] (\d+)", out)
    check("& starts a background job and names it", m is not None, out)
    if m:
        pid = m.group(2)
        out = con.run("jobs")
        check("jobs lists it", f"{pid} running" in out, out)
        out = con.run("ps")
        check("ps shows init, the shell and the job",
              all(p in out for p in ["/bin/init", "/bin/sh", "/bin/sleep"]), out)
        out = con.run(f"kill {pid}; wait")
        check("kill ends it and wait reports status 137", f"{pid} done (status 137)" in out, out)

    out = con.run("sleep 0.2 & sleep 0.3 & wait")
    check("wait waits for every job", out.count("done (status 0)") == 2, out)

    out = con.run("sh -c 'exit 3'; echo sub=$?")
    check("sh -c runs a line and returns its status", "sub=3" in out, out)

    con.run("sh -c 'sleep 0.2 &'")
    time.sleep(1)
    out = con.run("ps")
    check("init reaps an orphaned process", "/bin/sleep" not in out, out)

    out = con.run("kill 1")
    check("init cannot be killed", "not permitted" in out, out)

    out = con.run("cat /etc/motd /proc/cmdline")
    check("cat prints initrd and /proc files (the command line scripts/test gave)",
          "Capstan" in out and "-- shell=/bin/sh" in out, out)
    out = con.run("cat /nonexistent")
    check("cat names a missing file", "cat: /nonexistent: not found (ENOENT)" in out, out)

    out = con.run("uptime")
    check("uptime", re.search(r"up [0-9.hms]+, \d+ processes running, cpu0 \d+% busy", out) is not None, out)
    out = con.run("free")
    check("free", re.search(r"frames +[0-9.]+ MiB +[0-9.]+ [KM]iB +[0-9.]+ MiB", out) is not None, out)
    out = con.run("irqs")
    check("irqs shows the console UART and the IPI row", "uart" in out and "IPI" in out, out)
    out = con.run("cat /proc/interrupts")
    check("cat /proc/interrupts", "INTID" in out and "uart" in out, out)

    out = con.run("exit 7", limit=30)
    check("exit ends the shell and init starts a new one",
          "init: /bin/sh" in out and "exited with status 7" in out, out)
    out = con.run("echo new-shell")
    check("the new shell answers", "new-shell" in out, out)

    out = con.run("reboot now; echo rc=$?")
    check("a tool refuses arguments it does not take (reboot now: status 2, still running)",
          "reboot: takes no arguments" in out and "rc=2" in out and con.qemu.poll() is None, out)


if __name__ == "__main__":
    main()
