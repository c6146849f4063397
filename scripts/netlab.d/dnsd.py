#!/usr/bin/env python3
"""The lab's deliberately odd DNS server (192.0.2.4:53, UDP): replies dnsmasq will not produce.

Zone odd.test (the first label picks the behaviour; more labels may follow it, e.g.
drop1.host.odd.test, so that host and guest tests never share a name):

  servfail.odd.test  RCODE 2 (SERVFAIL), question echoed, no records
  tc.odd.test        over UDP: TC set, RCODE 0, no records (the answer "did not fit");
                     over TCP: A 192.0.2.7
  tctc.odd.test      TC set over UDP and over TCP alike
  dropN.odd.test     N = 1-3: the first N datagrams carrying one query id are ignored; the
                     next is answered with A 192.0.2.(200 + k), k = how many datagrams with
                     that id and question arrived (so N drops, then answered: .20(N+1)).
                     The client can tell exactly which send got the answer.
  spoof.odd.test     four replies: wrong id, our id with the question's type changed, our
                     id with another name echoed (all three: A 192.0.2.66), then the real
                     one, A 192.0.2.1
  loop.odd.test      one answer whose owner name is a compression pointer to itself
  short.odd.test     one A answer with 3 bytes of RDATA
  big.odd.test       150 A records 198.51.100.1-150 (about 2.4 KB: over UDP the reply
                     leaves in IPv4 fragments, so the client must reassemble it)
  other *.odd.test   NXDOMAIN;  any other name: REFUSED

Every query is logged to stdout: "id=... name=... type=... seen=K -> what".
TCP (same port, RFC 7766 framing) answers one query per connection the same way, except
tc.odd.test. Bounded: the per-query counters hold at most 4096 entries (cleared when full);
a TCP connection gets 5 s and at most 4 KiB.
usage: dnsd.py ADDR PORT
"""
import socket
import struct
import sys
import threading

QR, AA, TC, RD = 0x8000, 0x0400, 0x0200, 0x0100
seen = {}


def parse_query(msg):
    """(id, flags, question bytes, lower-case name, qtype), or None for junk."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    if flags & QR or qd != 1:
        return None
    labels, off = [], 12
    while off < len(msg) and msg[off] != 0:
        n = msg[off]
        if n > 63:
            return None  # the lab's clients never compress a question
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    if off + 5 > len(msg):
        return None
    qtype = struct.unpack(">H", msg[off + 1:off + 3])[0]
    return qid, flags, msg[12:off + 5], ".".join(labels), qtype


def message(qid, flags, question, answers=()):
    """A response: QR and AA, plus `flags` (the query's RD, an RCODE, TC)."""
    head = struct.pack(">HHHHHH", qid, QR | AA | flags, 1, len(answers), 0, 0)
    return head + question + b"".join(answers)


def a_record(owner, addr, rdata=None):
    data = socket.inet_aton(addr) if rdata is None else rdata
    return owner + struct.pack(">HHIH", 1, 1, 60, len(data)) + data


PTR_QNAME = b"\xc0\x0c"  # compression pointer to the question's name


def respond(msg, tcp=False):
    """The datagrams to send back (maybe none) and a log note."""
    q = parse_query(msg)
    if q is None:
        return [], "junk, ignored"
    qid, flags, question, name, qtype = q
    rd = flags & RD
    key = (qid, question.lower())
    if len(seen) >= 4096:
        seen.clear()
    seen[key] = seen.get(key, 0) + 1
    k = seen[key]
    labels = name.split(".")
    if not name.endswith(".odd.test") and name != "odd.test":
        return [message(qid, rd | 5, question)], "REFUSED"
    first = labels[0]
    if first == "servfail":
        return [message(qid, rd | 2, question)], "SERVFAIL"
    if first == "tc" and tcp:
        return [message(qid, rd, question, [a_record(PTR_QNAME, "192.0.2.7")])], "A 192.0.2.7 (TCP)"
    if first in ("tc", "tctc"):
        return [message(qid, rd | TC, question)], "TC"
    if len(first) == 5 and first.startswith("drop") and first[4] in "123":
        drops = int(first[4])
        if k <= drops:
            return [], "dropped (%d of %d)" % (k, drops)
        addr = "192.0.2.%d" % (200 + k)
        return [message(qid, rd, question, [a_record(PTR_QNAME, addr)])], "A %s" % addr
    if first == "spoof":
        bad = [a_record(PTR_QNAME, "192.0.2.66")]
        other_type = question[:-4] + struct.pack(">HH", 28 if qtype != 28 else 1, 1)
        other_name = b"\x05spoog" + question[6:]
        return [message(qid ^ 0xFFFF, rd, question, bad),
                message(qid, rd, other_type, bad),
                message(qid, rd, other_name, bad),
                message(qid, rd, question, [a_record(PTR_QNAME, "192.0.2.1")])], "spoofs, then A 192.0.2.1"
    if first == "loop":
        self_ptr = 12 + len(question)
        return [message(qid, rd, question, [a_record(struct.pack(">H", 0xC000 | self_ptr), "192.0.2.1")])], \
            "owner pointer loop"
    if first == "big":
        answers = [a_record(PTR_QNAME, "198.51.100.%d" % i) for i in range(1, 151)]
        return [message(qid, rd, question, answers)], "150 A records"
    if first == "short":
        return [message(qid, rd, question, [a_record(PTR_QNAME, "", b"\xc0\x00\x02")])], "A with 3-byte RDATA"
    return [message(qid, rd | 3, question)], "NXDOMAIN"


def serve_tcp(addr, port):
    """One query per connection, length-prefixed both ways (RFC 1035 4.2.2)."""
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(8)
    while True:
        conn, peer = t.accept()
        conn.settimeout(5)
        try:
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                chunk = conn.recv(4096)
                if not chunk or len(data) > 4096:
                    break
                data += chunk
            msg = data[2:]
            replies, note = respond(msg, tcp=True)
            print("tcp from=%s -> %s" % (peer[0], note), flush=True)
            for r in replies[-1:]:
                conn.sendall(struct.pack(">H", len(r)) + r)
        except OSError:
            pass
        finally:
            conn.close()


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    threading.Thread(target=serve_tcp, args=(sys.argv[1], int(sys.argv[2])), daemon=True).start()
    print("dnsd.py listening on %s:%s/udp and tcp" % (sys.argv[1], sys.argv[2]), flush=True)
    while True:
        msg, peer = s.recvfrom(4096)
        replies, note = respond(msg)
        q = parse_query(msg)
        if q:
            print("id=%d name=%s type=%d seen=%d from=%s -> %s"
                  % (q[0], q[3], q[4], seen.get((q[0], q[2].lower()), 0), peer[0], note), flush=True)
        for r in replies:
            s.sendto(r, peer)


if __name__ == "__main__":
    main()
