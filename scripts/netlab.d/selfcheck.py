#!/usr/bin/env python3
"""Checks the Capstan network lab from inside its namespace, without QEMU.

Run by `scripts/netlab --selfcheck` as `ip netns exec capstan-lab-PID selfcheck.py WWW SUMS`.
Every network operation has a timeout (0.4-30 s); the caller bounds the whole run.
Traffic goes only to 192.0.2.1 / 192.0.2.2 / 192.0.2.4 / 198.51.100.1 inside the namespace, plus raw
Ethernet frames written to tap0 and tap1, which is where the guest's NICs would sit (the DHCP/ARP/ICMP checks play the
guest's part on the tap's file descriptor, exactly as QEMU would).
Prints one line per check and ends with "N passed, N failed"; exits 1 on any failure.
"""
import fcntl
import hashlib
import http.client
import ipaddress
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time

GW = "192.0.2.1"
SILENT = "192.0.2.2"
GW2 = "198.51.100.1"  # the second link (tap1): DHCP, DNS, HTTP
WWW, SUMS = sys.argv[1], sys.argv[2]
SILENT_MODE = os.environ.get("NETLAB_SILENT_MODE", "nft")

results = {"passed": 0, "failed": 0, "skipped": 0}


def check(name, fn):
    try:
        detail = fn()
    except Exception as e:  # a check's exception is its failure reason
        results["failed"] += 1
        print("  FAILED  %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    if isinstance(detail, str) and detail.startswith("SKIP"):
        results["skipped"] += 1
        print("  skip    %s: %s" % (name, detail[5:]), flush=True)
        return
    results["passed"] += 1
    print("  ok      %s%s" % (name, ": " + detail if detail else ""), flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---------------------------------------------------------------- DNS

TYPES = {1: "A", 5: "CNAME", 16: "TXT", 28: "AAAA"}


def dns_name(msg, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            continue
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n
    return ".".join(labels), (end if jumped else off)


def dns_build(name, qtype, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return qid, q + struct.pack(">HH", qtype, 1)


def dns_parse(msg, qid=None):
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if qid is not None:
        expect(rid == qid, "reply id %d != query id %d" % (rid, qid))
    off = 12
    for _ in range(qd):
        _, off = dns_name(msg, off)
        off += 4
    question = msg[12:off]
    answers = []
    for _ in range(an):
        rname, off = dns_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == 1:
            value = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            value = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 5:
            value = dns_name(msg, off)[0]
        else:
            value = rdata
        off += rdlen
        answers.append((rname, TYPES.get(rtype, rtype), value))
    return {"id": rid, "rcode": flags & 0xF, "tc": bool(flags & 0x0200), "aa": bool(flags & 0x0400),
            "question": question, "answers": answers}


def dns_socket(server, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect((server, 53))
    return s


def dns_query(name, qtype, server=GW, timeout=2.0):
    qid, q = dns_build(name, qtype)
    s = dns_socket(server, timeout)
    try:
        s.send(q)
        msg = s.recv(4096)
    finally:
        s.close()
    return dns_parse(msg, qid)


def dns_a():
    r = dns_query("lab.capstan.test", 1)
    expect(r["rcode"] == 0, "rcode %d" % r["rcode"])
    expect(r["answers"] == [("lab.capstan.test", "A", GW)], "answers %r" % r["answers"])
    return "lab.capstan.test A %s" % GW


def dns_aaaa():
    r = dns_query("lab.capstan.test", 28)
    expect(r["answers"] == [("lab.capstan.test", "AAAA", "2001:db8::1")], "answers %r" % r["answers"])
    return "lab.capstan.test AAAA 2001:db8::1"


def dns_cname():
    r = dns_query("www.capstan.test", 1)
    expect(r["rcode"] == 0, "rcode %d" % r["rcode"])
    want = [("www.capstan.test", "CNAME", "alias.capstan.test"),
            ("alias.capstan.test", "CNAME", "lab.capstan.test"),
            ("lab.capstan.test", "A", GW)]
    expect(r["answers"] == want, "answers %r" % r["answers"])
    return "www -> alias -> lab A %s" % GW


def dns_nxdomain(name):
    def run():
        r = dns_query(name, 1)
        expect(r["rcode"] == 3, "rcode %d, answers %r" % (r["rcode"], r["answers"]))
        return "%s rcode 3 (NXDOMAIN)" % name
    return run


def dns_outside():
    # Not in capstan.test: dnsmasq has no upstream server, so it must refuse, not forward.
    r = dns_query("example.com", 1)
    expect(r["rcode"] != 0 and not r["answers"], "rcode %d answers %r" % (r["rcode"], r["answers"]))
    return "example.com rcode %d (not forwarded: no upstream exists)" % r["rcode"]


def dns_answers(name, qtype, want):
    def run():
        r = dns_query(name, qtype)
        expect(r["rcode"] == 0, "rcode %d" % r["rcode"])
        expect(sorted(r["answers"]) == sorted(want), "answers %r" % r["answers"])
        return "%s %s: %s" % (name, TYPES[qtype], ", ".join("%s %s" % a[1:] for a in want) or "NOERROR, no records")
    return run


def dns_aaaa_cname():
    r = dns_query("www.capstan.test", 28)
    want = [("www.capstan.test", "CNAME", "alias.capstan.test"),
            ("alias.capstan.test", "CNAME", "lab.capstan.test"),
            ("lab.capstan.test", "AAAA", "2001:db8::1")]
    expect(r["answers"] == want, "answers %r" % r["answers"])
    return "www -> alias -> lab AAAA 2001:db8::1"


def dns_truncated():
    r = dns_query("big.capstan.test", 16)
    expect(r["tc"], "TC bit not set (answers %d)" % len(r["answers"]))
    return "big.capstan.test TXT (> 512 bytes) over UDP without EDNS has TC set"


def dns_silent_udp():
    try:
        dns_query("lab.capstan.test", 1, server=SILENT, timeout=1.0)
    except socket.timeout:
        return "no reply from %s:53 within 1 s, and no ICMP error" % SILENT
    except ConnectionRefusedError:
        raise AssertionError("ICMP port unreachable came back: the server is not silent")
    raise AssertionError("%s:53 answered" % SILENT)


def dns_silent_tcp():
    if SILENT_MODE != "nft":
        return "SKIP without nft, TCP 53 on %s is refused rather than dropped" % SILENT
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect((SILENT, 53))
    except socket.timeout:
        return "TCP SYN to %s:53 dropped (connect timed out after 1 s)" % SILENT
    finally:
        s.close()
    raise AssertionError("TCP connect to %s:53 succeeded" % SILENT)


# ---------------------------------------------------------------- odd DNS (dnsd.py)

ODD = "192.0.2.4"


def odd_rcode(name, rcode, tc=False):
    def run():
        qid, q = dns_build(name, 1)
        r = dns_query_raw(q, qid)
        expect(r["rcode"] == rcode and r["tc"] == tc, "rcode %d tc %s" % (r["rcode"], r["tc"]))
        expect(r["question"] == q[12:], "question not echoed: %r" % r["question"])
        return "%s: rcode %d%s, question echoed" % (name, rcode, ", TC set" if tc else "")
    return run


def dns_query_raw(q, qid, timeout=2.0):
    s = dns_socket(ODD, timeout)
    try:
        s.send(q)
        return dns_parse(s.recv(4096), qid)
    finally:
        s.close()


def odd_drop(drops):
    # Plays a resolver with a 0.4 s retry: `drops` sends go unanswered, the next is answered
    # with 192.0.2.(200 + sends seen), i.e. the server counted every datagram.
    def run():
        name = "drop%d.host.odd.test" % drops
        qid, q = dns_build(name, 1)
        s = dns_socket(ODD, 0.4)
        try:
            for attempt in range(drops):
                s.send(q)
                try:
                    s.recv(4096)
                except socket.timeout:
                    continue
                raise AssertionError("send %d of %s was answered" % (attempt + 1, name))
            s.settimeout(2.0)
            s.send(q)
            r = dns_parse(s.recv(4096), qid)
        finally:
            s.close()
        want = "192.0.2.%d" % (201 + drops)
        expect(r["answers"] == [(name, "A", want)], "answers %r" % r["answers"])
        return "%d sends ignored, send %d answered with A %s" % (drops, drops + 1, want)
    return run


def odd_spoof():
    name = "spoof.host.odd.test"
    qid, q = dns_build(name, 1)
    s = dns_socket(ODD, 2.0)
    try:
        s.send(q)
        got = [s.recv(4096) for _ in range(4)]
    finally:
        s.close()
    first, by_type, by_name, real = (dns_parse(m) for m in got)
    expect(first["id"] != qid, "first reply has our id")
    expect(by_type["id"] == qid and by_type["question"][:-4] == q[12:-4] and by_type["question"][-4:] != q[-4:],
           "second reply does not echo another type: %r" % by_type["question"])
    expect(by_name["id"] == qid and by_name["question"][-4:] == q[-4:] and by_name["question"][:-4] != q[12:-4],
           "third reply does not echo another name: %r" % by_name["question"])
    expect(all(r["answers"][0][2] == "192.0.2.66" for r in (first, by_type, by_name)), "decoys' answers")
    expect(real["id"] == qid and real["question"] == q[12:] and real["answers"] == [(name, "A", GW)],
           "last reply %r" % real)
    return "wrong id, wrong type echoed, wrong name echoed (A 192.0.2.66), then A %s" % GW


def odd_hostile(name, check):
    def run():
        qid, q = dns_build(name, 1)
        s = dns_socket(ODD, 2.0)
        try:
            s.send(q)
            msg = s.recv(4096)
        finally:
            s.close()
        rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
        expect((rid, flags & 0xF, qd, an) == (qid, 0, 1, 1), "header %r" % ((rid, flags, qd, an),))
        return check(msg, len(q))  # the answer follows the echoed question
    return run


def loop_owner(msg, at):
    ptr = struct.unpack(">H", msg[at:at + 2])[0]
    expect(ptr == 0xC000 | at, "owner is %#x, not a pointer to itself (%d)" % (ptr, at))
    return "answer owner at offset %d is a pointer to offset %d" % (at, at)


def short_rdata(msg, at):
    rtype, _, _, rdlen = struct.unpack(">HHIH", msg[at + 2:at + 12])
    expect((rtype, rdlen, len(msg)) == (1, 3, at + 15), "type %d rdlength %d" % (rtype, rdlen))
    return "A record with RDLENGTH 3"


# ---------------------------------------------------------------- HTTP

def sums():
    out = {}
    with open(SUMS) as f:
        for line in f:
            digest, name = line.split()
            out[name] = digest
    return out


def get(path, port=80, timeout=10):
    c = http.client.HTTPConnection(GW, port, timeout=timeout)
    c.request("GET", path, headers={"Host": "lab.capstan.test"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def http_small():
    r, body = get("/small.txt")
    with open(os.path.join(WWW, "small.txt"), "rb") as f:
        want = f.read()
    expect(r.status == 200, "status %d" % r.status)
    expect(body == want, "body %r" % body[:80])
    expect(r.getheader("Content-Length") == str(len(want)), "Content-Length %s" % r.getheader("Content-Length"))
    return "200, %d bytes, Content-Length" % len(body)


def http_file(name, size):
    def run():
        t = time.monotonic()
        r, body = get("/" + name, timeout=30)
        dt = time.monotonic() - t
        expect(r.status == 200, "status %d" % r.status)
        expect(len(body) == size, "size %d != %d" % (len(body), size))
        digest = hashlib.sha256(body).hexdigest()
        expect(digest == sums()[name], "sha256 %s != files.sha256 %s" % (digest, sums()[name]))
        return "%d bytes, sha256 %s... matches (%.0f ms)" % (size, digest[:16], dt * 1000)
    return run


def http_redirect():
    r, _ = get("/redirect")
    expect(r.status == 302, "status %d" % r.status)
    expect(r.getheader("Location") == "/small.txt", "Location %r" % r.getheader("Location"))
    return "302 Location: /small.txt"


def http_chunked(port):
    def run():
        r, body = get("/chunked", port=port)
        with open(os.path.join(WWW, "chunk.txt"), "rb") as f:
            want = f.read()
        expect(r.status == 200, "status %d" % r.status)
        expect(r.getheader("Transfer-Encoding") == "chunked", "Transfer-Encoding %r" % r.getheader("Transfer-Encoding"))
        expect(r.getheader("Content-Length") is None, "has Content-Length")
        expect(body == want, "decoded body differs (%d bytes)" % len(body))
        return "Transfer-Encoding: chunked, %d bytes decoded" % len(body)
    return run


def raw_get(path, port):
    s = socket.create_connection((GW, port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: lab.capstan.test\r\nConnection: close\r\n\r\n" % path.encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def http_malformed():
    data = raw_get("/malformed", 8080)
    expect(not data.startswith(b"HTTP/1."), "status line looks valid: %r" % data[:40])
    try:
        get("/malformed", port=8080, timeout=5)
    except http.client.BadStatusLine:
        return "garbage status line %r, connection closed" % data.split(b"\r\n")[0].decode()
    raise AssertionError("http.client accepted the response")


def http_badchunk():
    try:
        get("/badchunk", port=8080, timeout=5)
    except (http.client.IncompleteRead, ValueError):
        return "invalid chunk size rejected"
    raise AssertionError("http.client accepted the response")


def http_truncated():
    try:
        get("/truncated", port=8080, timeout=5)
    except http.client.IncompleteRead as e:
        return "Content-Length 1000, %d bytes then close" % len(e.partial)
    raise AssertionError("http.client accepted the response")


def http_refused():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((GW, 81))
    except ConnectionRefusedError:
        return "%s:81 connection refused (RST)" % GW
    finally:
        s.close()
    raise AssertionError("port 81 accepted a connection")


# ---------------------------------------------------------------- containment

def only_lab_routes():
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=5).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    expect(names == ["lo", "tap0", "tap1"], "interfaces %r" % names)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                            timeout=5).stdout
    for line in routes.splitlines():
        dst = line.split()[0]
        if dst in ("local", "broadcast"):
            dst = line.split()[1]
        expect(dst != "default", "default route: %s" % line)
        net = ipaddress.ip_network(dst, strict=False)
        lab = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "127.0.0.0/8")]
        expect(any(net.subnet_of(n) for n in lab), "route outside the lab: %s" % line)
    return ("interfaces lo, tap0, tap1; IPv4 routes only 192.0.2.0/24, 198.51.100.0/24 and "
            "loopback, no default route")


# ---------------------------------------------------------------- DHCP, ARP, ICMP on tap0

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
CLIENT_MAC = bytes.fromhex("525400abcdef")  # not the guest's MAC: its lease is left alone


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), random.randrange(65536), 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


class Tap:
    def __init__(self, name="tap0"):
        self.fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        with open("/sys/class/net/%s/address" % name) as f:
            self.gw_mac = bytes.fromhex(f.read().strip().replace(":", ""))
        # Opening the tap raises its carrier, but the kernel activates the queue only when
        # the (rate-limited, up to 1 s) link watch runs: frames sent before are dropped.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with open("/sys/class/net/%s/operstate" % name) as f:
                if f.read().strip() == "up":
                    break
            time.sleep(0.05)
        time.sleep(0.2)

    def send(self, frame):
        os.write(self.fd, frame)

    def recv_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching frame within %.1f s" % timeout)
            if select.select([self.fd], [], [], left)[0]:
                frame = os.read(self.fd, 65536)
                out = pred(frame)
                if out is not None:
                    return out

    def close(self):
        os.close(self.fd)


def dhcp_packet(xid, msgtype, extra=b""):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                        b"\0" * 4, b"\0" * 4, CLIENT_MAC, b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, msgtype]) + extra + bytes([55, 4, 1, 3, 6, 51, 255])
    udp_payload = bootp + opts
    udp = struct.pack("!HHHH", 68, 67, 8 + len(udp_payload), 0) + udp_payload
    return eth(b"\xff" * 6, CLIENT_MAC, 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17, udp))


def dhcp_reply(xid):
    def pred(frame):
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return None
        ihl = (frame[14] & 0xF) * 4
        udp = frame[14 + ihl:]
        if struct.unpack("!H", udp[2:4])[0] != 68:
            return None
        bootp = udp[8:]
        if struct.unpack("!I", bootp[4:8])[0] != xid:
            return None
        yiaddr = socket.inet_ntoa(bootp[16:20])
        opts, i, raw = {}, 240, bootp
        while i < len(raw) and raw[i] != 255:
            if raw[i] == 0:
                i += 1
                continue
            opts[raw[i]] = raw[i + 2:i + 2 + raw[i + 1]]
            i += 2 + raw[i + 1]
        return yiaddr, opts
    return pred


def dhcp_and_ping(name="tap0", gw=GW):
    try:
        tap = Tap(name)
    except OSError as e:
        return "SKIP cannot open %s (%s): DHCP needs a client on the tap" % (name, e)
    try:
        xid = random.randrange(1 << 32)
        for attempt in range(4):  # a client retransmits; 4 x 1.5 s at most
            tap.send(dhcp_packet(xid, 1))
            try:
                offer, opts = tap.recv_until(dhcp_reply(xid), 1.5)
                break
            except TimeoutError:
                if attempt == 3:
                    raise
        expect(opts.get(53) == b"\x02", "not an OFFER: %r" % opts.get(53))
        server = opts[54]
        tap.send(dhcp_packet(xid, 3, bytes([50, 4]) + socket.inet_aton(offer) + bytes([54, 4]) + server))
        ack, opts = tap.recv_until(dhcp_reply(xid), 5)
        expect(opts.get(53) == b"\x05", "not an ACK: %r" % opts.get(53))
        expect(ack == offer, "ACK %s != OFFER %s" % (ack, offer))
        n = int(ack.split(".")[3])
        subnet = gw.rsplit(".", 1)[0] + "."
        expect(ack.startswith(subnet) and 50 <= n <= 99, "lease %s outside .50-.99" % ack)
        expect(socket.inet_ntoa(opts[3]) == gw, "router %r" % opts.get(3))
        expect(socket.inet_ntoa(opts[6]) == gw, "dns %r" % opts.get(6))
        expect(socket.inet_ntoa(opts[54]) == gw, "server id %r" % opts.get(54))
        lease = struct.unpack("!I", opts[51])[0]
        expect(lease <= 300, "lease %d s" % lease)

        # ICMP echo to the gateway from the leased address; answer the kernel's ARP for it.
        ident, seq = random.randrange(65536), 1
        icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"capstan-lab"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        tap.send(eth(tap.gw_mac, CLIENT_MAC, 0x0800, ipv4(ack, gw, 1, icmp)))
        mine = socket.inet_aton(ack)

        def pred(frame):
            if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01" and frame[38:42] == mine:
                reply = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, CLIENT_MAC, mine, frame[22:28],
                                    frame[28:32])
                tap.send(eth(frame[6:12], CLIENT_MAC, 0x0806, reply))
                return None
            if frame[12:14] == b"\x08\x00" and frame[23] == 1 and frame[30:34] == mine:
                ihl = (frame[14] & 0xF) * 4
                t, _, _, rid, rseq = struct.unpack("!BBHHH", frame[14 + ihl:14 + ihl + 8])
                if t == 0 and rid == ident and rseq == seq:
                    return True
            return None

        tap.recv_until(pred, 5)
        return "OFFER/ACK %s (router, DNS %s, lease %d s); ping %s from it answered" % (ack, gw, lease, gw)
    finally:
        tap.close()


def main():
    print("netlab self-check (inside the namespace, no QEMU):", flush=True)
    check("containment: nothing routes out of the namespace", only_lab_routes)
    check("dns: A", dns_a)
    check("dns: AAAA", dns_aaaa)
    check("dns: AAAA through the CNAME chain", dns_aaaa_cname)
    check("dns: two AAAA and an A for dual", dns_answers("dual.capstan.test", 28, [
        ("dual.capstan.test", "AAAA", "2001:db8::10"), ("dual.capstan.test", "AAAA", "2001:db8::11")]))
    check("dns: A for dual", dns_answers("dual.capstan.test", 1, [("dual.capstan.test", "A", "192.0.2.10")]))
    check("dns: A for v4only", dns_answers("v4only.capstan.test", 1, [("v4only.capstan.test", "A", "192.0.2.11")]))
    check("dns: AAAA for v4only is NODATA", dns_answers("v4only.capstan.test", 28, []))
    check("dns: AAAA for v6only", dns_answers("v6only.capstan.test", 28, [("v6only.capstan.test", "AAAA", "2001:db8::12")]))
    check("dns: A for v6only is NODATA", dns_answers("v6only.capstan.test", 1, []))
    check("dns: CNAME chain", dns_cname)
    check("dns: NXDOMAIN missing.capstan.test", dns_nxdomain("missing.capstan.test"))
    check("dns: NXDOMAIN for any unknown capstan.test name", dns_nxdomain("nope-%d.capstan.test" % random.randrange(10**6)))
    check("dns: names outside capstan.test are not forwarded", dns_outside)
    check("dns: truncation", dns_truncated)
    check("dns: silent server (UDP)", dns_silent_udp)
    check("dns: silent server (TCP)", dns_silent_tcp)
    check("odd dns: SERVFAIL", odd_rcode("servfail.odd.test", 2))
    check("odd dns: TC", odd_rcode("tc.odd.test", 0, tc=True))
    check("odd dns: NXDOMAIN inside odd.test", odd_rcode("nothing.odd.test", 3))
    check("odd dns: REFUSED outside odd.test", odd_rcode("lab.capstan.test", 5))
    check("odd dns: one dropped query, answered on retry", odd_drop(1))
    check("odd dns: two dropped queries, answered on the third send", odd_drop(2))
    check("odd dns: decoy replies before the real one", odd_spoof)
    check("odd dns: compression pointer loop", odd_hostile("loop.host.odd.test", loop_owner))
    check("odd dns: short RDATA", odd_hostile("short.host.odd.test", short_rdata))
    check("http: GET /small.txt", http_small)
    check("http: GET /1m.bin", http_file("1m.bin", 1 << 20))
    check("http: GET /16m.bin", http_file("16m.bin", 16 << 20))
    check("http: /redirect", http_redirect)
    check("http: nginx /chunked (port 80)", http_chunked(80))
    check("http: httpd.py /chunked (port 8080)", http_chunked(8080))
    check("http: /malformed (port 8080)", http_malformed)
    check("http: /badchunk (port 8080)", http_badchunk)
    check("http: /truncated (port 8080)", http_truncated)
    check("http: closed port 81", http_refused)
    check("dhcp + icmp on tap0 (plays the guest)", dhcp_and_ping)
    check("dhcp + icmp on tap1 (plays a user-driven NIC)", lambda: dhcp_and_ping("tap1", GW2))
    if results["skipped"]:
        print("%d skipped" % results["skipped"])
    print("%d passed, %d failed" % (results["passed"], results["failed"]), flush=True)
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
