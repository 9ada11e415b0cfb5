#!/usr/bin/env python3
"""Server-level WebSocket benchmark (issue 7): echo messages per second and a
broadcast to 100 clients, Pounce versus uvicorn (`--ws websockets`), in the
same run.

    make bench-ws                                  # quick, ~2 min
    .venv/bin/python bench/ws_bench.py --profile full

Servers run on the host's CPython: Pounce from .venv (`make build`), uvicorn
(uvloop, httptools, its `websockets` implementation) from .venv-bench
(bench/requirements-peers.txt, installed here when missing).  One worker
each, pinned to CPU 1; the app is bench/apps/ws_echo.py on both.

Client: a Python asyncio client per message would be slower than the
server, so the client side is several processes pinned to CPU 0, each
driving its share of the connections with non-blocking raw sockets.  Every
message is framed (and masked, and for permessage-deflate compressed) once,
before the run; during the run a connection sends a batch of B frames with
one send() whenever fewer than 2B of its messages are unanswered (a
pipelining window), and counts the echoed frames: by size when every frame
has the same size (no compression), else by parsing each frame header.  The
payloads are never inspected in the run; a check before it does that (echo
decoded and compared, with inflation for compressed frames, the accept key,
the negotiated extension).

Cases: text messages of 32 B and of 64 KiB (JSON-like, so deflate has work
to do), each without and with permessage-deflate (the client offers
`permessage-deflate; client_no_context_takeover`, so its pre-compressed
frames stay valid when replayed; the server keeps its own context and
window settings), and a broadcast: 100 subscriber connections, one
publisher sending 32 B messages as fast as TCP lets it, the app sending each
to every subscriber; we count the messages the subscribers receive.

Every case runs against both servers: a warm-up, then interleaved rounds
(order rotated each round).  Messages/s are those received by the clients
within the measured window; server CPU per message is utime+stime of the
server's process tree (/proc/PID/stat) over the same window divided by that
count (loopback softirq time is not in it).  Server CPU % near 100 means the
server was the bottleneck; the table shows it for every case.

Results: bench/results/<date>_<time>-websocket.{json,md} and
latest-websocket.md; the table goes into docs/websocket.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import re
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
DEFLATE_OFFER = "permessage-deflate; client_no_context_takeover"

# ---------------------------------------------------------------------------
# Frames and handshake (client side, RFC 6455 §5.2, RFC 7692 §7.2.1)


def make_messages(size: int, count: int) -> list[bytes]:
    """count different ASCII JSON-like texts of exactly size bytes (seeded)."""
    rnd = random.Random(size * 1000 + count)
    out = []
    for i in range(count):
        parts, n = [], 0
        while n < size:
            rec = json.dumps({"id": rnd.randrange(10**6), "user": f"user-{rnd.randrange(10**4):04d}",
                              "x": round(rnd.uniform(-180, 180), 4), "y": round(rnd.uniform(-90, 90), 4),
                              "tag": rnd.choice(("move", "chat", "ping", "join", "leave"))},
                             separators=(",", ":"))
            parts.append(rec)
            n += len(rec) + 1
        out.append((str(i % 10) + ",".join(parts))[:size].encode())
    return out


def deflate_message(payload: bytes) -> bytes:
    """One message compressed on its own (client_no_context_takeover), tail stripped."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4] or b"\x00"


def client_frame(payload: bytes, compressed: bool, rnd: random.Random) -> bytes:
    """A masked text frame (FIN, opcode 1, RSV1 when compressed)."""
    head = bytearray([0x81 | (0x40 if compressed else 0)])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    key = rnd.randbytes(4)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    masked = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big") if n else b""
    return bytes(head) + key + masked


def server_frame_size(n: int) -> int:
    """Wire size of an unmasked server frame with an n-byte payload."""
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


def handshake(port: int, path: str, deflate: bool, timeout: float = 10.0) -> tuple[socket.socket, bytes, str]:
    """Open a WebSocket; returns (socket, bytes read past the 101 head, extension header)."""
    key = base64.b64encode(os.urandom(16)).decode()
    ext = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if deflate else ""
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"{ext}\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(req)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError(f"{path}: connection closed during the handshake: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    if not text.startswith("HTTP/1.1 101"):
        raise RuntimeError(f"{path}: handshake answered {text.splitlines()[0]!r}")
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if not re.search(rf"(?im)^sec-websocket-accept:\s*{re.escape(want)}\s*$", text):
        raise RuntimeError(f"{path}: wrong or missing Sec-WebSocket-Accept")
    m = re.search(r"(?im)^sec-websocket-extensions:\s*(.*?)\s*$", text)
    agreed = m.group(1) if m else ""
    if deflate != agreed.startswith("permessage-deflate"):
        raise RuntimeError(f"{path}: offered deflate={deflate}, server agreed to {agreed!r}")
    return s, rest, agreed


class FrameCounter:
    """Counts complete data frames in a server's byte stream without copying payloads."""

    __slots__ = ("count", "skip", "hdr", "is_data")

    def __init__(self):
        self.count, self.skip, self.hdr, self.is_data = 0, 0, b"", False

    def feed(self, data) -> None:
        """data: bytes or a memoryview, only read during this call."""
        i, n = 0, len(data)
        if self.hdr:
            data = self.hdr + bytes(data)
            n = len(data)
            self.hdr = b""
        while i < n:
            if self.skip:
                take = min(self.skip, n - i)
                self.skip -= take
                i += take
                if self.skip == 0 and self.is_data:
                    self.count += 1
                continue
            if n - i < 2:
                self.hdr = bytes(data[i:])  # data may be a view of a reused buffer
                return
            b0, b1 = data[i], data[i + 1] & 0x7F
            hl = 2 if b1 < 126 else 4 if b1 == 126 else 10
            if n - i < hl:
                self.hdr = bytes(data[i:])
                return
            ln = b1 if b1 < 126 else int.from_bytes(data[i + 2:i + hl], "big")
            # FIN text/binary/continuation frames end a message; control frames do not.
            self.is_data = (b0 & 0x80) and (b0 & 0x0F) < 8
            i += hl
            if ln == 0:
                self.count += bool(self.is_data)
            else:
                self.skip = ln


def read_frame(s: socket.socket, buf: bytearray) -> tuple[int, bytes, int]:
    """(first byte, payload, wire size) of the next whole frame; blocking (the checks only)."""
    while True:
        if len(buf) >= 2:
            b1 = buf[1] & 0x7F
            hl = 2 if b1 < 126 else 4 if b1 == 126 else 10
            if len(buf) >= hl:
                ln = b1 if b1 < 126 else int.from_bytes(buf[2:hl], "big")
                if len(buf) >= hl + ln:
                    b0, payload = buf[0], bytes(buf[hl:hl + ln])
                    del buf[:hl + ln]
                    return b0, payload, hl + ln
        chunk = s.recv(1 << 18)
        if not chunk:
            raise RuntimeError("connection closed while waiting for a frame")
        buf += chunk


# ---------------------------------------------------------------------------
# The client process: python ws_bench.py --client '<json spec>'


class Conn:
    __slots__ = ("sock", "out", "sent", "counter", "fixed", "nbytes", "batch", "bsize", "publisher")

    def __init__(self, sock, rest, batch, bsize, fixed, publisher=False):
        self.sock, self.out, self.sent = sock, memoryview(b""), 0
        self.counter, self.fixed, self.nbytes = FrameCounter(), fixed, 0
        self.batch, self.bsize, self.publisher = batch, bsize, publisher
        self.account(rest)

    def account(self, data) -> None:
        if self.fixed:
            self.nbytes += len(data)
        else:
            self.counter.feed(data)

    def received(self) -> int:
        return self.nbytes // self.fixed if self.fixed else self.counter.count


def client_main(spec: dict) -> int:
    rnd = random.Random(spec["seed"])
    port, deflate, size, bsize = spec["port"], spec["deflate"], spec["size"], spec["batch"]
    msgs = make_messages(size, 8)
    frames = [client_frame(deflate_message(m) if deflate else m, deflate, rnd) for m in msgs]
    batch = b"".join(frames[i % len(frames)] for i in range(bsize))
    fixed = 0 if deflate else server_frame_size(size)
    conns = []
    if spec["mode"] == "echo":
        for _ in range(spec["conns"]):
            s, rest, _ = handshake(port, "/echo", deflate)
            conns.append(Conn(s, rest, batch, bsize, fixed))
    else:
        for _ in range(spec["conns"]):
            s, rest, _ = handshake(port, "/sub", False)
            conns.append(Conn(s, rest, b"", 0, fixed))
        if spec["publisher"]:
            s, rest, _ = handshake(port, "/pub", False)
            conns.append(Conn(s, rest, batch, bsize, 0, publisher=True))
    # One receive buffer for every connection: no allocation per recv.
    rbuf = bytearray(1 << 18)
    rview = memoryview(rbuf)
    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    print("READY", flush=True)
    start, end = (float(x) for x in sys.stdin.readline().split())
    base = 0
    counting = False

    def want_send(c: Conn) -> bool:
        if c.out or not c.batch:
            return False
        # Publisher: keep its socket full (TCP and the app's queue push back).
        return c.publisher or c.sent - c.received() < 2 * c.bsize

    def pump(c: Conn) -> None:
        while True:
            if not c.out:
                if not want_send(c):
                    break
                c.out = memoryview(c.batch)
                c.sent += c.bsize
            try:
                k = c.sock.send(c.out)
            except BlockingIOError:
                break
            c.out = c.out[k:]
        sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)

    for c in conns:
        pump(c)
    while True:
        now = time.monotonic()
        if not counting and now >= start:
            counting = True
            base = sum(c.received() for c in conns if not c.publisher)
        if now >= end:
            break
        for key, ev in sel.select(timeout=min(0.05, max(0.0, end - now))):
            c = key.data
            if ev & selectors.EVENT_READ:
                try:
                    k = c.sock.recv_into(rbuf)
                except BlockingIOError:
                    k = -1
                if k == 0:
                    print(json.dumps({"error": "server closed a connection"}), flush=True)
                    return 1
                if k > 0:
                    c.account(rview[:k])
            pump(c)
    total = sum(c.received() for c in conns if not c.publisher) - base
    for c in conns:
        c.sock.close()
    print(json.dumps({"messages": total if counting else 0}), flush=True)
    return 0


# ---------------------------------------------------------------------------
# The parent: servers, checks, rounds, tables


def bench_imports():
    sys.path.insert(0, REPO)
    import bench.run as r
    return r


CASES = {
    # name: (mode, message size, deflate, connections, batch per send)
    "echo 32 B": ("echo", 32, False, 16, 32),
    "echo 32 B, deflate": ("echo", 32, True, 16, 32),
    "echo 64 KiB": ("echo", 65536, False, 8, 2),
    "echo 64 KiB, deflate": ("echo", 65536, True, 8, 2),
    "broadcast 32 B to 100": ("broadcast", 32, False, 100, 32),
}

PROFILES = {
    "quick": {"rounds": 3, "duration": 2.0, "warmup": 0.5, "procs": 4},
    "full": {"rounds": 5, "duration": 5.0, "warmup": 2.0, "procs": 4},
}


def check_echo(port: int, size: int, deflate: bool) -> None:
    """Echo of three different messages, decoded and compared."""
    rnd = random.Random(7)
    s, rest, agreed = handshake(port, "/echo", deflate)
    buf = bytearray(rest)
    inflater = zlib.decompressobj(-15)
    no_ctx = "server_no_context_takeover" in agreed
    try:
        for m in make_messages(size, 3):
            s.sendall(client_frame(deflate_message(m) if deflate else m, deflate, rnd))
            b0, payload, wire = read_frame(s, buf)
            if b0 & 0x0F != 1 or not b0 & 0x80:
                raise RuntimeError(f"echo {size} B: frame 0x{b0:02x}, want a FIN text frame")
            if bool(b0 & 0x40) != deflate:
                raise RuntimeError(f"echo {size} B: RSV1={bool(b0 & 0x40)} with deflate={deflate}")
            if deflate:
                if no_ctx:
                    inflater = zlib.decompressobj(-15)
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            elif wire != server_frame_size(size):
                # The run counts uncompressed echoes by size: it must be exact.
                raise RuntimeError(f"echo {size} B: a {wire}-byte frame, want {server_frame_size(size)}")
            if payload != m:
                raise RuntimeError(f"echo {size} B deflate={deflate}: echoed payload differs")
    finally:
        s.close()


def check_broadcast(port: int) -> None:
    subs = [handshake(port, "/sub", False) for _ in range(2)]
    pub, _, _ = handshake(port, "/pub", False)
    try:
        time.sleep(0.3)  # the app registers a subscriber after its accept
        msg = make_messages(32, 1)[0]
        pub.sendall(client_frame(msg, False, random.Random(1)))
        for s, rest, _ in subs:
            b0, payload, wire = read_frame(s, bytearray(rest))
            if payload != msg or b0 != 0x81 or wire != server_frame_size(32):
                raise RuntimeError("broadcast: a subscriber got the wrong frame")
    finally:
        for s, _, _ in subs:
            s.close()
        pub.close()
    time.sleep(0.2)


def measure(r, srv, case: str, procs: int, warm: float, duration: float) -> dict:
    """One run: client processes connect, send for warm + duration seconds;
    messages and server CPU ticks are counted over the last duration seconds."""
    port = srv.port
    mode, size, deflate, conns, bsize = CASES[case]
    procs = min(procs, conns)
    children = []
    try:
        for i in range(procs):
            share = conns // procs + (1 if i < conns % procs else 0)
            spec = {"port": port, "mode": mode, "size": size, "deflate": deflate, "conns": share,
                    "batch": bsize, "seed": i, "publisher": mode == "broadcast" and i == 0}
            children.append(subprocess.Popen(
                ["taskset", "-c", r.CLIENT_CPU, sys.executable, os.path.abspath(__file__), "--client",
                 json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        for ch in children:
            line = ch.stdout.readline()
            if line.strip() != "READY":
                raise r.BenchError(f"{case}: a client failed to connect: {line}{ch.stderr.read()[-2000:]}")
        start = time.monotonic() + warm
        end = start + duration
        for ch in children:
            ch.stdin.write(f"{start} {end}\n")
            ch.stdin.flush()
        time.sleep(max(0.0, start - time.monotonic()))
        t0 = r.tree_cpu_ticks(srv.proc.pid)
        time.sleep(max(0.0, end - time.monotonic()))
        t1 = r.tree_cpu_ticks(srv.proc.pid)
        total = 0
        for ch in children:
            out, err = ch.communicate(timeout=warm + duration + 60)
            try:
                res = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise r.BenchError(f"{case}: client failed ({ch.returncode}): {err[-2000:]}") from None
            if "error" in res:
                raise r.BenchError(f"{case}: client: {res['error']}")
            total += res["messages"]
        if srv.proc.poll() is not None:
            raise r.BenchError(f"{srv.name} died during {case}:\n{srv.output()}")
        if total == 0:
            raise r.BenchError(f"{srv.name}: {case}: no message came back in the window")
        cpu_s = (t1 - t0) / os.sysconf("SC_CLK_TCK")
        return {"messages": total, "msgs_per_s": total / duration,
                "cpu_us_per_msg": cpu_s / total * 1e6, "cpu_pct": cpu_s / duration * 100,
                "load_after": r.loadavg()}
    finally:
        for ch in children:
            if ch.poll() is None:
                ch.kill()
                ch.wait()


def summarize(samples: list[dict]) -> dict:
    out = {}
    for key in ("msgs_per_s", "cpu_us_per_msg", "cpu_pct"):
        vals = [x[key] for x in samples]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


def markdown(doc: dict) -> str:
    lines = ["| case | server | messages/s | server CPU µs/msg | server CPU % | pounce × msg/s "
             "| pounce × CPU |", "|---|---|---:|---:|---:|---:|---:|"]
    for case, res in doc["cases"].items():
        summ = res["summary"]
        ref = summ.get("pounce")
        for name, m in summ.items():
            ratio = cpu = ""
            if ref and name != "pounce":
                ratio = f"{ref['msgs_per_s']['median'] / m['msgs_per_s']['median']:.2f}"
                cpu = f"{m['cpu_us_per_msg']['median'] / ref['cpu_us_per_msg']['median']:.2f}"
            mm = m["msgs_per_s"]
            cu = m["cpu_us_per_msg"]
            # Under 90% busy, the clients (or neighbours on CPU 0) set the pace.
            mark = " †" if m["cpu_pct"]["median"] < 90 else ""
            lines.append(f"| {case} | {name} | {mm['median']:,.0f}{mark} ({mm['min']:,.0f}–{mm['max']:,.0f}) | "
                         f"{cu['median']:.1f} ({cu['min']:.1f}–{cu['max']:.1f}) | "
                         f"{m['cpu_pct']['median']:.0f} | {ratio} | {cpu} |")
    lines += ["", "Median over rounds, (min–max) in brackets.  *messages/s*: echoes (or, for the "
              "broadcast, subscriber deliveries) received by the clients per second.  *server CPU %*: "
              "the server's CPU time over the window (100 = its one CPU busy; lower means the "
              "clients or other processes on the machine limited the run; † marks a median under "
              "90%: compare CPU per message there, not messages/s).  *pounce × msg/s* = "
              "Pounce's messages/s ÷ uvicorn's; *pounce × CPU* = uvicorn's CPU per message ÷ "
              "Pounce's (both > 1 when Pounce is better)."]
    return "\n".join(lines)


def parent_main(args) -> int:
    r = bench_imports()
    prof = PROFILES[args.profile]
    for k in ("rounds", "duration", "warmup", "procs"):
        if getattr(args, k) is None:
            setattr(args, k, prof[k])
    out_dir = args.out or r.RESULTS
    servers = [x for x in args.servers.split(",") if x]
    cases = [c.strip() for c in args.cases.split(",")] if args.cases else list(CASES)
    for c in cases:
        if c not in CASES:
            r.log(f"unknown case {c!r} (have: {', '.join(CASES)})")
            return 2
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    wl = r.Workload("ws_echo", expect_len=2)
    running = {}
    samples = {c: {s: [] for s in servers} for c in cases}
    try:
        if not os.path.exists(os.path.join(REPO, ".venv", "bin", "pounce")):
            raise r.BenchError(".venv/bin/pounce is missing: run `make build` first")
        if (os.cpu_count() or 1) < 2:
            raise r.BenchError("need at least 2 CPUs: server on CPU 1, clients on CPU 0")
        env = r.Env("host")
        # The venv bench/run.py makes for --python host (uvicorn, websockets).
        r.ensure_venv(env, r.HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
        load0 = r.loadavg()
        for name in servers:
            # uvicorn reads every option from UVICORN_* too: its websockets
            # implementation (not websockets-sansio or wsproto), default
            # permessage-deflate settings, as `uvicorn --ws websockets` runs.
            srv = r.Server(env, name, wl, r.SERVER_CPU,
                           extra_env={"UVICORN_WS": "websockets"} if name == "uvicorn" else None)
            running[name] = srv
            srv.wait_ready(60.0)
            for c in cases:
                mode, size, deflate, _, _ = CASES[c]
                try:
                    if mode == "echo":
                        check_echo(srv.port, size, deflate)
                    else:
                        check_broadcast(srv.port)
                except (OSError, RuntimeError) as e:
                    raise r.BenchError(f"{name}: {c}: check failed: {e}\n{srv.output()}") from e
            r.log(f"{name}: every case checked (echo decoded and compared, broadcast delivered)")
        for c in cases:
            for name in servers:
                if args.warmup:
                    measure(r, running[name], c, args.procs, 0.3, args.warmup)
            for rnd in range(args.rounds):
                order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
                for name in order:
                    res = measure(r, running[name], c, args.procs, 0.5, args.duration)
                    res["round"] = rnd + 1
                    samples[c][name].append(res)
                    r.log(f"  {c:24} r{rnd + 1} {name:8} {res['msgs_per_s']:>10,.0f} msg/s  "
                          f"{res['cpu_us_per_msg']:7.2f} µs CPU/msg  cpu {res['cpu_pct']:3.0f}%  "
                          f"load {res['load_after']:.2f}")
                    time.sleep(0.3)  # let the server finish closing the run's sockets
        vers = r.versions(env, servers)
    except r.BenchError as e:
        r.log(f"websocket bench: FAILED: {e}")
        return 1
    finally:
        for srv in running.values():
            srv.stop()
    doc = {"kind": "websocket", "started": started.isoformat(timespec="seconds"),
           "machine": r.machine_info(), "versions": vers,
           "command": "python bench/ws_bench.py " + " ".join(sys.argv[1:]),
           "method": (f"1 worker per server, `taskset -c {r.SERVER_CPU}` (uvicorn: --loop uvloop "
                      f"--http httptools --ws websockets); {args.procs} raw-socket client processes "
                      f"on `taskset -c {r.CLIENT_CPU}`, pipelined pre-built masked frames; per case "
                      f"{args.warmup:g} s warm-up per server, then {args.rounds} rounds alternating "
                      f"the servers, each 0.5 s of traffic then a {args.duration:g} s measured "
                      "window; server CPU from /proc/PID/stat of its process tree."),
           "load": {"start": load0, "end": r.loadavg()},
           "cases": {c: {"spec": dict(zip(("mode", "size", "deflate", "connections", "batch"), CASES[c])),
                         "samples": samples[c],
                         "summary": {s: summarize(v) for s, v in samples[c].items()}} for c in cases}}
    table = markdown(doc)
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"{stamp}-websocket")
    r.write_results(doc, table, base, os.path.join(out_dir, "latest-websocket"),
                    title="WebSocket bench")
    print(f"results: {os.path.relpath(base, REPO)}.json, .md")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds per measured window")
    ap.add_argument("--warmup", type=float, help="seconds of traffic before each window")
    ap.add_argument("--procs", type=int, help="client processes (all on CPU 0)")
    ap.add_argument("--servers", default="pounce,uvicorn")
    ap.add_argument("--cases", help="comma list from: " + ", ".join(CASES))
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.client:
        return client_main(json.loads(args.client))
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
