#!/usr/bin/env python3
"""The host side of the user network suite's server tests (run inside the lab namespace).

    peer.py CONSOLE_LOG GUEST_ADDR [LIMIT_S] [MARKER]

Follows the guest's console log. MARKER (default "nettest") starts the lines it acts on;
GUEST_ADDR "-" means the address the guest prints as "MARKER: address A.B.C.D" (the user
NIC suite's interface gets its address by DHCP). When the suite prints
  "nettest: udp echo on PORT"  it sends three datagrams and a last one ("capstan udp
                               done") to GUEST_ADDR:PORT and checks each comes back
                               unchanged (resending what does not);
  "nettest: tcp echo on PORT"  it connects, sends "hello capstan\\n", half-closes, and
                               checks the same line comes back before the guest's FIN.
Prints one "ok"/"FAILED" line per exchange; exits when both were served or after LIMIT_S
seconds (default 600): bounded, and only ever talks to the guest.
"""
import re
import socket
import sys
import time


def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for i in range(4):
        msg = b"capstan udp %d" % i if i < 3 else b"capstan udp done"
        data = None
        for attempt in range(5):  # the first may wait for ARP
            s.sendto(msg, (addr, port))
            try:
                while data != msg:  # skip late echoes of earlier resends
                    data, _ = s.recvfrom(2048)
                break
            except socket.timeout:
                data = None
        if data != msg:
            return "FAILED udp echo %d: got %r" % (i, data)
    return "ok udp echo"


def tcp(addr, port):
    for attempt in range(20):
        try:
            s = socket.create_connection((addr, port), timeout=5)
            break
        except OSError as e:
            err = e
            time.sleep(0.5)
    else:
        return "FAILED tcp echo: connect: %s" % err
    s.sendall(b"hello capstan\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return "ok tcp echo" if data == b"hello capstan\n" else "FAILED tcp echo: got %r" % data


def main():
    log, addr = sys.argv[1], sys.argv[2]
    limit = time.monotonic() + float(sys.argv[3] if len(sys.argv) > 3 else 600)
    marker = re.escape(sys.argv[4] if len(sys.argv) > 4 else "nettest")
    done = set()
    while len(done) < 2 and time.monotonic() < limit:
        try:
            text = open(log, errors="replace").read()
        except OSError:
            text = ""
        if addr == "-":
            found = re.search(r"\b%s: address (\d+\.\d+\.\d+\.\d+)" % marker, text)
            if not found:
                time.sleep(0.2)
                continue
            addr = found.group(1)
        for kind, port in re.findall(r"\b%s: (udp|tcp) echo on (\d+)" % marker, text):
            if kind in done:
                continue
            done.add(kind)
            try:
                result = (udp if kind == "udp" else tcp)(addr, int(port))
            except OSError as e:  # a reset, a refused connection: the guest's fault
                result = "FAILED %s echo: %s" % (kind, e)
            print(result, flush=True)
        time.sleep(0.2)
    if len(done) < 2:
        print("peer.py: not asked for %s" % sorted({"udp", "tcp"} - done), flush=True)


if __name__ == "__main__":
    main()
