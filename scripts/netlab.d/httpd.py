#!/usr/bin/env python3
"""The lab's deliberately odd HTTP server (port 8080): responses nginx will not produce.

  GET /chunked    200, Transfer-Encoding: chunked, body = chunk.txt sent in 7 chunks of
                  uneven sizes, one with a chunk extension, then a trailer field
  GET /malformed  a garbage status line ("HTTX/9.9 banana"), then the connection closes
  GET /badchunk   200 chunked whose first chunk-size is not hex ("zz"), then closes
  GET /truncated  200 with Content-Length: 1000 but only 100 body bytes, then closes
  GET /small.txt  200 with Content-Length (a sanity baseline on this port)
  GET /gzip       200, small.txt gzip-compressed, Content-Encoding: gzip (whatever the
                  request's Accept-Encoding says: a server that ignores it)
  GET /excess     200 with Content-Length: 100, then 4096 bytes (i % 256), then closes
  GET /stall      200 with Content-Length: 1000, 10 body bytes, then nothing for 20 s
                  (a stalled server: the client's deadlines must end the fetch)
  anything else   404

Bounded: every connection has a 10 s socket timeout (/stall: 30 s) and one request per
connection.
usage: httpd.py ADDR PORT WWWDIR
"""
import gzip
import os
import socket
import socketserver
import time
import sys

WWW = sys.argv[3]


def read_file(name):
    with open(os.path.join(WWW, name), "rb") as f:
        return f.read()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 8192:
                chunk = s.recv(4096)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        try:
            path = data.split(b"\r\n", 1)[0].split(b" ")[1].decode("ascii", "replace")
        except IndexError:
            path = ""
        try:
            s.sendall(self.respond(path))
        except OSError:
            pass

    def respond(self, path):
        if path == "/chunked":
            body = read_file("chunk.txt")
            sizes = [1, 100, 17, 512, 333, 2, len(body)]
            out = [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n"]
            pos = 0
            for n, size in enumerate(sizes):
                piece = body[pos:pos + size]
                if not piece:
                    break
                ext = b";lab=ext" if n == 2 else b""
                out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
                pos += len(piece)
            out.append(b"0\r\nX-Lab-Trailer: done\r\n\r\n")
            return b"".join(out)
        if path == "/malformed":
            return b"HTTX/9.9 banana\r\n\x00\xff garbage without a header block\r\n"
        if path == "/badchunk":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    b"zz\r\nnot a chunk\r\n")
        if path == "/truncated":
            return (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + b"t" * 100)
        if path == "/gzip":
            body = gzip.compress(read_file("small.txt"), mtime=0)
            return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        if path == "/stall":
            try:
                s = self.request
                s.settimeout(30)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
                          + b"s" * 10)
                time.sleep(20)
            except OSError:
                pass
            return b""
        if path == "/excess":
            return (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
                    + bytes(i % 256 for i in range(4096)))
        if path == "/small.txt":
            body = read_file("small.txt")
            return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s" % (len(body), body))
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    with Server((sys.argv[1], int(sys.argv[2])), Handler) as srv:
        print("httpd.py listening on %s:%s" % (sys.argv[1], sys.argv[2]), flush=True)
        srv.serve_forever()
