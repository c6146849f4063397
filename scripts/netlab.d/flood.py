#!/usr/bin/env python3
"""Floods the guest from inside the lab namespace, then injects malformed frames.

    flood.py IFACE GUEST_MAC GUEST_IP COUNT SECONDS EACH

Sends, as raw Ethernet frames on IFACE (the tap QEMU reads):
  1. COUNT small UDP datagrams to the guest's discard port 9 as fast as Python can, stopping
     early after SECONDS (bounded in count and time);
  2. after a pause, EACH frames of every malformed kind the kernel counts by name
     (kernel/src/net/ingress.rs), paced so none is lost in a queue:
       ip-header    IPv4 EtherType with a 10-byte IP header
       ip-checksum  valid datagram, IP header checksum wrong
       ip-length    IP total length past the end of the frame
       l4-header    UDP length field larger than the datagram
       l4-checksum  UDP checksum wrong
       oversized    a 1600-byte UDP datagram (IFACE's MTU is raised for it, then restored):
                    with mergeable buffers the guest receives it whole (the discard service
                    counts it as large), without them the device cannot place it
  3. one datagram to port 9 with the payload b"capstan-flood-end" (the kernel test waits
     for it).
Every frame goes to GUEST_MAC from IFACE's own MAC and 192.0.2.1 (the lab gateway).
Prints one line: "flood sent=N errors=E seconds=S malformed=K each".
"""

import socket
import struct
import subprocess
import sys
import time

GATEWAY = "192.0.2.1"
DISCARD = 9
END = b"capstan-flood-end"


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(dst_mac, src_mac, dst_ip, payload, *, ip_csum_ok=True, udp_csum_ok=True,
              total_extra=0, udp_len_extra=0):
    src, dst = socket.inet_aton(GATEWAY), socket.inet_aton(dst_ip)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", 40000, DISCARD, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    if not udp_csum_ok:
        c ^= 0x0101
    udp = struct.pack("!HHHH", 40000, DISCARD, udp_len + udp_len_extra, c) + payload
    total = 20 + len(udp) + total_extra
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 17, 0, src, dst)
    c = csum(ip)
    if not ip_csum_ok:
        c ^= 0x0101
    ip = ip[:10] + struct.pack("!H", c) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


def set_mtu(iface, mtu):
    subprocess.run(["ip", "link", "set", iface, "mtu", str(mtu)], check=True)


def main():
    iface, guest_mac, guest_ip = sys.argv[1], sys.argv[2], sys.argv[3]
    count, seconds, each = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    dst_mac = bytes.fromhex(guest_mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4][:6]

    frame = udp_frame(dst_mac, src_mac, guest_ip, b"flood!" * 3)
    sent = errors = 0
    start = time.monotonic()
    stop = start + seconds
    while sent + errors < count:
        try:
            s.send(frame)
            sent += 1
        except OSError:  # ENOBUFS: the queue to QEMU is full; back off a little
            errors += 1
            time.sleep(0.0005)
        if (sent & 1023) == 0 and time.monotonic() > stop:
            break
    elapsed = time.monotonic() - start
    time.sleep(1.0)  # let the guest drain before the counted frames

    bad = []
    payload = b"malformed test payload"
    truncated_ip = dst_mac + src_mac + b"\x08\x00" + b"\x45" + b"\0" * 9
    bad.append(truncated_ip)
    bad.append(udp_frame(dst_mac, src_mac, guest_ip, payload, ip_csum_ok=False))
    bad.append(udp_frame(dst_mac, src_mac, guest_ip, payload, total_extra=40))
    bad.append(udp_frame(dst_mac, src_mac, guest_ip, payload, udp_len_extra=30))
    bad.append(udp_frame(dst_mac, src_mac, guest_ip, payload, udp_csum_ok=False))
    for f in bad:
        for _ in range(each):
            s.send(f)
            time.sleep(0.005)
    big = udp_frame(dst_mac, src_mac, guest_ip, b"\xab" * (1600 - 14 - 28))
    set_mtu(iface, 1700)
    try:
        for _ in range(each):
            s.send(big)
            time.sleep(0.005)
    finally:
        set_mtu(iface, 1500)
    time.sleep(0.2)
    s.send(udp_frame(dst_mac, src_mac, guest_ip, END))
    print(f"flood sent={sent} errors={errors} seconds={elapsed:.2f} malformed={len(bad) + 1}x{each}")


if __name__ == "__main__":
    main()
