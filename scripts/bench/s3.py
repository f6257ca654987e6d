#!/usr/bin/env python3
"""S3 helpers for scripts/bench.sh: a counting proxy and a few signed requests.

  s3.py proxy --upstream http://127.0.0.1:PORT --port-file F [--delay-ms N]
        An HTTP/1.1 proxy on a free loopback port (written to F once listening) that
        forwards every request unchanged (keep-alive both ways, bodies streamed) and
        tallies requests by kind: GET, PUT, LIST, HEAD, DELETE, POST, OTHER, plus bytes
        in and out. `GET /__bench_counts` answers the tally as JSON (`?reset=1` zeroes it);
        that path is never forwarded (no bucket name has an underscore). --delay-ms N
        (default 0) adds one round trip of N ms to every forwarded request: it waits N ms
        before answering, as a store that far away would (requests in flight at once
        wait side by side, as on a real network).
  s3.py counts --proxy URL [--reset]     prints the proxy's tally as one JSON line
  s3.py probe --endpoint URL --bucket B  exit 0 when a signed PUT+GET+DELETE of a probe works
  s3.py size --endpoint URL --bucket B --prefix P      bytes stored under P
  s3.py delete --endpoint URL --bucket B --prefix P    deletes everything under P

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region AWS_REGION
(default us-east-1). Requests for `probe`, `size` and `delete` go straight to the server,
never through the proxy, so they are not counted.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "expect"}
KINDS = ["GET", "PUT", "LIST", "HEAD", "DELETE", "POST", "OTHER"]
BUF = 1 << 20
IDLE = 2.0  # seconds an upstream connection may sit idle before a fresh one


def kind_of(method, target):
    path, _, query = target.partition("?")
    if method == "GET":
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        # A GET of a bucket (path /BUCKET or /BUCKET/) is a listing (v1 or list-type=2).
        if "list-type" in params or path.strip("/").count("/") == 0:
            return "LIST"
        return "GET"
    return method if method in KINDS else "OTHER"


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.counts = {k: 0 for k in KINDS}
        self.bytes_in = self.bytes_out = 0

    def add(self, kind, up, down):
        with self.lock:
            self.counts[kind] += 1
            self.bytes_in += up
            self.bytes_out += down

    def snapshot(self, reset):
        with self.lock:
            out = dict(self.counts, total=sum(self.counts.values()),
                       bytes_up=self.bytes_in, bytes_down=self.bytes_out)
            if reset:
                self.reset()
            return out


def make_handler(upstream, tally, delay):
    up = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def setup(self):
            super().setup()
            # Small writes (headers, then the body) must not wait for delayed ACKs.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = None
            self.used = 0.0

        def upstream_conn(self):
            # A kept-alive upstream connection idle for a while may have been closed by
            # the server: start a fresh one rather than fail a request that has a body.
            if self.conn is not None and time.monotonic() - self.used > IDLE:
                self.conn.close()
                self.conn = None
            if self.conn is None:
                self.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=600)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self.conn

        def body_iter(self):
            te = self.headers.get("Transfer-Encoding", "").lower()
            if "chunked" in te:
                while True:
                    line = self.rfile.readline(65537)
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    yield from self.read_exactly(size)
                    self.rfile.readline(3)
            else:
                yield from self.read_exactly(int(self.headers.get("Content-Length") or 0))

        def read_exactly(self, left):
            while left:
                b = self.rfile.read(min(left, BUF))
                if not b:
                    raise ConnectionError("client closed mid-body")
                left -= len(b)
                yield b

        def counts(self):
            reset = "reset=1" in self.path
            body = json.dumps(tally.snapshot(reset)).encode()
            for _ in self.body_iter():
                pass
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def forward(self):
            if self.path.startswith("/__bench_counts"):
                return self.counts()
            if delay:
                time.sleep(delay)
            try:
                self.relay()
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.close_connection = True
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                sys.stderr.write(f"s3.py proxy: {self.command} {self.path}: {e!r}\n")

        def send_request(self, method, headers, chunked, body):
            """Sends the request upstream; one fresh try for a body-less request whose
            kept-alive connection turns out closed."""
            for attempt in (0, 1):
                conn = self.upstream_conn()
                try:
                    conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in headers:
                        conn.putheader(k, v)
                    if chunked:
                        conn.putheader("Transfer-Encoding", "chunked")
                    conn.endheaders()
                    for b in body:
                        conn.send(b"%x\r\n" % len(b) + b + b"\r\n" if chunked else b)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
                    return conn, conn.getresponse()
                except (ConnectionError, http.client.RemoteDisconnected, BrokenPipeError):
                    conn.close()
                    self.conn = None
                    if attempt or body:
                        raise
            raise AssertionError("unreachable")

        def relay(self):
            method = self.command
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP]
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            has_body = chunked or int(self.headers.get("Content-Length") or 0) > 0
            sent = [0]

            def counted():
                for b in self.body_iter():
                    sent[0] += len(b)
                    yield b

            conn, resp = self.send_request(method, headers, chunked, counted() if has_body else ())
            self.send_response_only(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            if not no_body and length is None:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            got = 0
            if not no_body:
                while True:
                    b = resp.read1(BUF) if length is None else resp.read(BUF)
                    if not b:
                        break
                    got += len(b)
                    if length is None:
                        self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n")
                    else:
                        self.wfile.write(b)
                if length is None:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            resp.close()
            if resp.will_close:
                conn.close()
                self.conn = None
            self.used = time.monotonic()
            tally.add(kind_of(method, self.path), sent[0], got)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = forward

    return Handler


def cmd_proxy(args):
    tally = Tally()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.upstream, tally,
                                                             args.delay_ms / 1000))
    srv.daemon_threads = True
    srv.request_queue_size = 128
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, args.port_file)
    srv.serve_forever()


def cmd_counts(args):
    u = urllib.parse.urlsplit(args.proxy)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", "/__bench_counts" + ("?reset=1" if args.reset else ""))
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"s3.py: the proxy answered {r.status}")
    print(body.decode())


# ---------------------------------------------------------------- signed requests (SigV4)
def sign(method, url, body=b"", headers=None):
    key = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    u = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    h = {"host": u.netloc, "x-amz-date": amz, "x-amz-content-sha256": payload}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    cq = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(q))
    names = sorted(h)
    canon = "\n".join([method, urllib.parse.quote(u.path or "/", safe="/-_.~"), cq,
                       "".join(f"{n}:{h[n].strip()}\n" for n in names), ";".join(names),
                       payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                          f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return h


def request(method, url, body=b"", headers=None):
    u = urllib.parse.urlsplit(url)
    h = sign(method, url, body, headers)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    c.request(method, target, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def strip_ns(root):
    for e in root.iter():
        e.tag = re.sub(r"^\{.*\}", "", e.tag)
    return root


def objects(endpoint, bucket, prefix):
    token = None
    while True:
        q = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
        if token:
            q["continuation-token"] = token
        url = f"{endpoint}/{bucket}?{urllib.parse.urlencode(q, quote_via=urllib.parse.quote)}"
        status, data = request("GET", url)
        if status != 200:
            raise SystemExit(f"s3.py: listing {bucket}/{prefix} answered {status}: {data[:300]!r}")
        root = strip_ns(ET.fromstring(data))
        for c in root.findall("Contents"):
            yield c.findtext("Key"), int(c.findtext("Size") or 0)
        if root.findtext("IsTruncated") != "true":
            return
        token = root.findtext("NextContinuationToken")


def cmd_probe(args):
    url = f"{args.endpoint}/{args.bucket}/.bench-probe-{os.getpid()}"
    try:
        ok = request("PUT", url, b"ready")[0] == 200 and request("GET", url) == (200, b"ready")
        request("DELETE", url)
    except (OSError, http.client.HTTPException):
        ok = False
    sys.exit(0 if ok else 1)


def cmd_size(args):
    print(sum(size for _, size in objects(args.endpoint, args.bucket, args.prefix)))


def cmd_delete(args):
    n = 0
    for key, _ in list(objects(args.endpoint, args.bucket, args.prefix)):
        status, data = request("DELETE", f"{args.endpoint}/{args.bucket}/"
                               + urllib.parse.quote(key, safe="/-_.~"))
        if status not in (200, 204):
            raise SystemExit(f"s3.py: deleting {key} answered {status}: {data[:200]!r}")
        n += 1
    print(f"deleted {n} objects under {args.bucket}/{args.prefix}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("proxy")
    s.add_argument("--upstream", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--delay-ms", type=float, default=0.0)
    s = sub.add_parser("counts")
    s.add_argument("--proxy", required=True)
    s.add_argument("--reset", action="store_true")
    for name in ("probe", "size", "delete"):
        s = sub.add_parser(name)
        s.add_argument("--endpoint", required=True)
        s.add_argument("--bucket", required=True)
        if name != "probe":
            s.add_argument("--prefix", required=True)
    args = p.parse_args()
    socket.setdefaulttimeout(600)
    {"proxy": cmd_proxy, "counts": cmd_counts, "probe": cmd_probe, "size": cmd_size,
     "delete": cmd_delete}[args.cmd](args)


if __name__ == "__main__":
    main()
