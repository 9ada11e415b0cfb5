#!/usr/bin/env python3
"""Server memory per idle connection (issue 17; issue 14's TLS case as --tls).

    make bench-idle                                   # http, ws at 10,000; tls at 1,000
    .venv/bin/python bench/idle_rss.py                # http, 10,000 connections, every server
    .venv/bin/python bench/idle_rss.py --kind ws,h2 -n 2000 --servers pounce,granian
    .venv/bin/python bench/idle_rss.py --tls -n 1000 --servers pounce
    .venv/bin/python bench/idle_rss.py --render bench/results/<run>-idle-host.json

One server at a time, one worker, pinned to CPU 1 (`taskset -c 1`).  The
harness (the client) warms the server up with a few hundred requests on a
few connections, closes them and reads the server's RSS (VmRSS summed over
its process tree, /proc/PID/status): *before*.  It then opens N connections
(64 at a time from a thread pool, each a blocking socket), makes ONE small
request on each and reads the answer, and leaves them all open and idle.
Two seconds later it reads the RSS again: *after*.  (after - before) / N is
the memory one idle connection costs the server.  Last it checks that every
connection is still open (a non-blocking peek sees no EOF) and that a sample
of them (100, spread over the N) answers one more request.

Kinds (--kind, a comma list):
* http: `GET /` of bench/apps/plaintext.py (13 bytes) over keep-alive HTTP/1.1;
  pounce, uvicorn (httptools, uvloop), granian, hypercorn, and nginx
  (nginx-light, master + 1 worker, `return 200` of the same 13 bytes).
* ws: a WebSocket session of bench/apps/ws_echo.py (/echo): the handshake,
  one 32-byte text message echoed, then idle; pounce, uvicorn (`--ws
  websockets`), granian, hypercorn.
* h2: HTTP/2 by prior knowledge (cleartext), one GET / per connection (the h2
  package, pinned in bench/requirements-peers.txt); pounce (only once it has
  `--http`, i.e. its HTTP/2 transport: else *not run*), granian (`--http 2`),
  hypercorn.
* --tls: http over TLS 1.3 (a fresh P-256 certificate, bench/run.py's), the
  old bench/tls_idle_rss.py; every server above that takes a certificate.
  --before-request leaves each http/TLS connection before its first request.

Every server gets settings that keep idle connections open for the whole run
and accept them all: keep-alive timeouts of 600 s, listen backlog 4096,
pounce `--max-connections` N + 1000, no WebSocket pings (pounce
`--ws-ping-interval 0`, uvicorn pings every 3600 s), nginx
`worker_connections` N + 1000.  `ulimit -n` is raised to its hard limit
here; the servers inherit it.

Results: bench/results/<date>_<time>-idle-host.{json,md} and
latest-idle-host.md (the load average before and after is in both);
docs/benchmarks.md ("Idle connections") has the analysis.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import random
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import run, static_bench, ws_bench  # noqa: E402  (the path above makes bench importable)
from bench.run import (  # noqa: E402
    HOST_BENCH_VENV, REPO, RESULTS, SERVER_CPU, BenchError, Env, TlsCert, Workload, apt_install,
    ensure_venv, free_port, loadavg, log, machine_info)
from bench.tls_callgrind import REQ, read_response  # noqa: E402

KINDS = ("http", "ws", "h2", "tls")
SERVERS = ("pounce", "uvicorn", "granian", "hypercorn", "nginx")
KIND_SERVERS = {"http": SERVERS, "tls": SERVERS, "ws": ("pounce", "uvicorn", "granian", "hypercorn"),
                "h2": ("pounce", "granian", "hypercorn")}
GET = REQ + b"\r\n"  # GET / with Host, User-Agent, Accept: the same small request everywhere
WS_MESSAGE = b'{"id":42,"user":"user-0042","tag":"ping"}'[:32]
IN_FLIGHT = 64  # connections being opened at once
SAMPLE = 100  # connections that make one more request at the end
SETTLE = 2.0  # seconds between the last connection and the RSS reading
KEEP_ALIVE = 600  # seconds: longer than any run


def tree_rss_kib(pid: int) -> int:
    """VmRSS of pid and its descendants, KiB."""
    total = 0
    for p in run.process_tree(pid)[1]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass  # it exited between the listing and the read
    return total


# --------------------------------------------------------------------------
# Servers: bench/run.py's commands, plus what keeps N idle connections open


NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    keepalive_timeout {keep}s;
    keepalive_requests 100000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {certs}
        default_type text/plain;
        location / {{ return 200 "Hello, world!"; }}
    }}
}}
"""


def idle_options(name: str, kind: str, n: int) -> list[str]:
    """Options that let `name` hold n idle connections for the whole run."""
    if name == "pounce":
        return ["--keep-alive-timeout", str(KEEP_ALIVE), "--max-connections", str(n + 1000),
                "--backlog", "4096", "--ws-ping-interval", "0"] + (
                    # HTTP/2 closes a connection with no stream after 60 s by default;
                    # 0 = the keep-alive timeout.
                    ["--h2-idle-timeout", "0"] if kind == "h2" else [])
    if name == "uvicorn":
        return ["--timeout-keep-alive", str(KEEP_ALIVE), "--backlog", "4096",
                "--ws-ping-interval", "3600", "--ws-ping-timeout", "3600"]
    if name == "granian":
        # --backpressure: granian's cap on requests in flight per worker
        # (default backlog / workers); a WebSocket session is one for its life.
        return ["--backlog", "4096", "--backpressure", str(n + 1000)]
    if name == "hypercorn":
        return ["--keep-alive", str(KEEP_ALIVE), "--backlog", "4096"]
    raise BenchError(f"unknown server {name!r}")


def server_cmd(env: Env, name: str, kind: str, port: int, n: int, tls: TlsCert | None,
               tmp: str) -> tuple[list[str], dict]:
    """(command, extra environment) of one server for one kind."""
    if name == "nginx":
        conf = os.path.join(tmp, "nginx.conf")
        certs = f"ssl_certificate {tls.cert}; ssl_certificate_key {tls.key};" if tls else ""
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, ssl=" ssl" if tls else "", certs=certs,
                                      keep=KEEP_ALIVE, conns=n + 1000, nofile=2 * n + 2000))
        return [shutil.which("nginx") or "/usr/sbin/nginx", "-e", "stderr", "-p", tmp, "-c", conf], {}
    cmd = run.server_cmd(env, name, "ws_echo" if kind == "ws" else "plaintext", port, 1, tls)
    if name == "granian":
        # run.py's granian is HTTP/1 without WebSocket, the job of its workloads.
        if kind == "ws":
            cmd.remove("--no-ws")
        if kind == "h2":
            cmd[cmd.index("--http") + 1] = "2"
    cmd[1:1] = idle_options(name, kind, n)
    return cmd, {"UVICORN_WS": "websockets"} if name == "uvicorn" and kind == "ws" else {}


def unsupported(env: Env, name: str, kind: str) -> str | None:
    """Why `name` does not take part in `kind`, or None."""
    if name not in KIND_SERVERS[kind]:
        return {"ws": "not an ASGI server (no WebSocket app to echo)",
                "h2": "no HTTP/2 by prior knowledge here"}.get(kind, "not in this kind")
    if name == "nginx" and not shutil.which("nginx"):
        return "nginx is missing (Debian: nginx-light)"
    if kind == "tls" and name != "nginx":
        return run.tls_unsupported(env, name)
    if kind == "h2" and name == "pounce":
        help_text = env.run([env.bin("pounce", "pounce"), "--help"], "pounce --help")
        if not re.search(r"(?m)^\s*--http(?![-\w])", help_text):
            return ("this pounce has no --http: its HTTP/2 transport (branch h2-core) has not "
                    "landed on main yet")
    return None


class IdleServer(run.Server):
    """run.Server (its readiness probe, output and stop) with this harness's
    command: one worker, pinned to CPU 1, in its own process group."""

    def __init__(self, env: Env, name: str, kind: str, n: int, tls: TlsCert | None, tmp: str):
        self.name, self.kind, self.tls = name, kind, tls
        self.wl = Workload("ws_echo", expect_len=2) if kind == "ws" else Workload("plaintext", expect_len=13)
        self.port = free_port()
        cmd, extra = server_cmd(env, name, kind, self.port, n, tls, tmp)
        kw = env.popen_args(cmd, extra)
        kw["args"] = ["taskset", "-c", SERVER_CPU, *kw["args"]]
        self.cmd = kw["args"]
        self.log = tempfile.NamedTemporaryFile(prefix=f"idle-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(**kw, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        if self.kind != "h2":
            return super().wait_ready(timeout)
        # granian --http 2 does not speak HTTP/1.1: the probe is one h2 GET.
        deadline, last = time.monotonic() + timeout, "no connection"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode} before "
                                 f"serving\ncommand: {' '.join(self.cmd)}\n--- output ---\n{self.output()}")
            try:
                c = Conn.open("h2", self.port, None, False)
                c.sock.close()
                return
            except (OSError, BenchError) as e:
                last = str(e)
            time.sleep(0.2)
        out = self.output()
        self.stop()
        raise BenchError(f"{self.name} did not answer an HTTP/2 GET within {timeout:.0f}s ({last})\n"
                         f"command: {' '.join(self.cmd)}\n--- output ---\n{out}")


# --------------------------------------------------------------------------
# Client connections: opened, one request, idle, checked


class Conn:
    """One client connection and what it needs for its next request (the
    bytes read past the last answer; the h2 connection state)."""

    __slots__ = ("kind", "sock", "buf", "h2")

    def __init__(self, kind: str, sock, buf=b"", h2=None):
        self.kind, self.sock, self.buf, self.h2 = kind, sock, buf, h2

    @classmethod
    def open(cls, kind: str, port: int, tls: TlsCert | None, no_request: bool,
             timeout: float = 30.0) -> Conn:
        try:
            return cls._open(kind, port, tls, no_request, timeout)
        except RuntimeError as e:  # ws_bench.handshake's way to say the answer was wrong
            raise BenchError(str(e)) from None

    @classmethod
    def _open(cls, kind: str, port: int, tls: TlsCert | None, no_request: bool, timeout: float) -> Conn:
        if kind == "ws":
            sock, rest, _ = ws_bench.handshake(port, "/echo", False, timeout)
            c = cls(kind, sock, bytearray(rest))
        else:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            if tls is not None:
                sock = tls_context(tls).wrap_socket(sock, server_hostname="127.0.0.1")
            c = cls(kind, sock)
            if kind == "h2":
                c.h2 = h2_connection()
            elif no_request:
                return c
        c.request()
        return c

    def request(self) -> None:
        """One request and its whole answer; BenchError when it goes wrong."""
        try:
            if self.kind == "ws":
                rnd = random.Random(len(self.buf))
                self.sock.sendall(ws_bench.client_frame(WS_MESSAGE, False, rnd))
                b0, payload, _ = ws_bench.read_frame(self.sock, self.buf)
                if b0 != 0x81 or payload != WS_MESSAGE:
                    raise BenchError(f"echo came back as {b0:#x} {payload[:40]!r}")
            elif self.kind == "h2":
                h2_get(self.sock, self.h2)
            else:
                self.buf = read_response_after(self.sock, GET, self.buf)
        except (SystemExit, AssertionError, RuntimeError, ssl.SSLError) as e:
            # tls_callgrind.read_response and ws_bench.read_frame say a
            # closed or wrong answer these ways.
            raise BenchError(f"{type(e).__name__}: {e}") from None

    def open_now(self) -> bool:
        """Whether the server has not closed it: a peek at the socket (the
        raw one under TLS) sees no EOF and no error.  Bytes waiting (an
        HTTP/2 PING or SETTINGS, a WebSocket ping) still mean open."""
        with socket.socket(fileno=os.dup(self.sock.fileno())) as raw:
            try:
                return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
            except BlockingIOError:
                return True
            except OSError:
                return False


_TLS_CONTEXTS: dict[str, ssl.SSLContext] = {}


def tls_context(tls: TlsCert) -> ssl.SSLContext:
    """One client context per certificate (so its verify store is built once)."""
    if tls.host_cert not in _TLS_CONTEXTS:
        _TLS_CONTEXTS[tls.host_cert] = ssl.create_default_context(cafile=tls.host_cert)
    return _TLS_CONTEXTS[tls.host_cert]


def read_response_after(sock, req: bytes, buf: bytes) -> bytes:
    sock.sendall(req)
    return read_response(sock, buf)


def h2_connection():
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    return conn


def h2_get(sock, conn) -> None:
    """GET / on a new stream of conn; returns once the stream ended with a 200."""
    import h2.events
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                            (":authority", "127.0.0.1")], end_stream=True)
    sock.sendall(conn.data_to_send())
    status = None
    while True:
        data = sock.recv(65536)
        if not data:
            raise BenchError("the server closed the HTTP/2 connection")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                status = dict(ev.headers).get(":status")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise BenchError(f"HTTP/2: {ev}")
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                if status != "200":
                    raise BenchError(f"HTTP/2 status {status}")
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                return
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def open_many(kind: str, port: int, n: int, tls: TlsCert | None, no_request: bool,
              deadline: float) -> tuple[list[Conn], list[str]]:
    """n connections, IN_FLIGHT at a time; (the open ones, the errors)."""
    conns, errors = [], []

    def one(_: int) -> Conn | None:
        if time.monotonic() > deadline:
            raise BenchError("out of time")
        return Conn.open(kind, port, tls, no_request)

    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        for fut in [pool.submit(one, i) for i in range(n)]:
            try:
                conns.append(fut.result())
            except (OSError, BenchError) as e:
                errors.append(str(e)[:200])
    return conns, errors


def close_all(conns: list[Conn]) -> None:
    for c in conns:
        try:
            c.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# One server, one kind


def measure(srv: IdleServer, kind: str, n: int, tls: TlsCert | None, args) -> dict:
    # Warm-up: the allocator's arenas, the app's first calls, the server's
    # lazily made buffers and caches, on a few connections, then closed.
    warm = [Conn.open(kind, srv.port, tls, False) for _ in range(args.warm_conns)]
    for _ in range(args.warm_requests // max(1, args.warm_conns)):
        for c in warm:
            c.request()
    close_all(warm)
    time.sleep(1.0)
    before = tree_rss_kib(srv.proc.pid)
    t0 = time.monotonic()
    conns, errors = open_many(kind, srv.port, n, tls, args.before_request, t0 + args.open_timeout)
    opened_s = time.monotonic() - t0
    try:
        if srv.proc.poll() is not None:
            raise BenchError(f"{srv.name} exited while the connections opened:\n{srv.output()}")
        time.sleep(SETTLE)
        after = tree_rss_kib(srv.proc.pid)
        alive = sum(c.open_now() for c in conns)
        step = max(1, len(conns) // SAMPLE)
        sample, answered, sample_errors = conns[::step][:SAMPLE], 0, []
        for c in sample:
            try:
                c.sock.settimeout(10.0)
                c.request()
                answered += 1
            except (OSError, BenchError) as e:
                sample_errors.append(str(e)[:200])
    finally:
        close_all(conns)
    res = {"n": n, "opened": len(conns), "open_errors": len(errors), "open_error_examples": errors[:3],
           "open_seconds": opened_s, "rss_before_kib": before, "rss_after_kib": after,
           "kib_per_conn": (after - before) / len(conns) if conns else None,
           "alive": alive, "sample": len(sample), "sample_answered": answered,
           "sample_error_examples": sample_errors[:3], "load_after": loadavg()}
    log(f"  {kind:4} {srv.name:9} {len(conns):,}/{n:,} open in {opened_s:.1f} s; RSS {before:,} -> "
        f"{after:,} KiB: {res['kib_per_conn'] or 0:.2f} KiB per connection; {alive:,} alive, "
        f"{answered}/{len(sample)} answered again; load {res['load_after']:.2f}")
    return res


def run_kind(env: Env, kind: str, servers: list[str], n: int, args, tmp: str) -> dict:
    out: dict = {"n": n, "results": {}, "failed": {}, "skipped": {}}
    tls, tls_dir = (run.make_tls_cert(env, "p256") if kind == "tls" else (None, None))
    try:
        for name in servers:
            why = unsupported(env, name, kind)
            if why:
                log(f"  {kind:4} {name:9} not run: {why}")
                out["skipped"][name] = why
                continue
            srv = IdleServer(env, name, "http" if kind == "tls" else kind, n, tls, tmp)
            try:
                srv.wait_ready(60.0)
                out["results"][name] = measure(srv, kind, n, tls, args)
            except (BenchError, OSError) as e:
                log(f"  {kind:4} {name:9} FAILED: {e}")
                out["failed"][name] = str(e).splitlines()[0][:300]
            finally:
                srv.stop()
                time.sleep(1.0)  # the kernel tears down N sockets
    finally:
        if tls_dir:
            shutil.rmtree(tls_dir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------
# Tables


TITLES = {"http": "HTTP/1.1 keep-alive, one `GET /` each", "ws": "WebSocket, handshake + one echo each",
          "h2": "HTTP/2 (prior knowledge), one `GET /` each", "tls": "HTTP/1.1 over TLS 1.3, one `GET /` each"}


def markdown(doc: dict) -> str:
    lines = []
    for kind, res in doc["kinds"].items():
        what = TITLES[kind]
        if doc.get("before_request") and kind in ("http", "tls"):
            what = what.replace("one `GET /` each", "no request yet")
        lines += [f"**{kind}**: {res['n']:,} idle connections, {what}.", "",
                  "| server | RSS before MiB | RSS after MiB | KiB per connection | alive at the end | "
                  "sample answered again | opened in s |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in res["results"].items():
            err = f" ({r['open_errors']:,} failed to open)" if r["open_errors"] else ""
            kib = f"{r['kib_per_conn']:.2f}" if r["kib_per_conn"] is not None else "–"
            lines.append(f"| {name} | {r['rss_before_kib'] / 1024:.1f} | {r['rss_after_kib'] / 1024:.1f} | "
                         f"**{kib}** | {r['alive']:,} / {r['n']:,}{err} | {r['sample_answered']} / "
                         f"{r['sample']} | {r['open_seconds']:.1f} |")
        for name, why in res["failed"].items():
            lines.append(f"| {name} | **failed**: {why} | – | – | – | – | – |")
        for name, why in res["skipped"].items():
            lines.append(f"| {name} | **not run**: {why} | – | – | – | – | – |")
        lines.append("")
    lines.append("RSS: VmRSS summed over the server's process tree (nginx: master + worker; the "
                 "ASGI servers: their main process + one worker), before the connections (after "
                 "the warm-up) and 2 s after the last one opened.  *KiB per connection* = "
                 "(after - before) / connections opened.  *alive*: connections the server had "
                 "not closed at the end (a peek sees no EOF); *sample answered again*: one more "
                 "request (or echo) on every k-th connection.")
    return "\n".join(lines)


def render(path: str) -> str:
    """The tables of a stored result, as the run printed them."""
    return markdown(run.load_result(path, "idle", "idle_rss.py"))


# --------------------------------------------------------------------------


def setup(servers: list[str], kinds: list[str]) -> Env:
    if "pounce" in servers and not os.path.exists(os.path.join(REPO, ".venv", "bin", "pounce")):
        raise BenchError(".venv/bin/pounce is missing: run `make build` first")
    if "nginx" in servers and not shutil.which("nginx"):
        apt_install("nginx-light")
    if not shutil.which("taskset"):
        raise BenchError("taskset (util-linux) is missing")
    env = Env("host")
    if any(s in ("uvicorn", "granian", "hypercorn") for s in servers) or "h2" in kinds:
        ensure_venv(env, HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", help="comma list from http, ws, h2 (default: http, or none with --tls)")
    ap.add_argument("--tls", action="store_true", help="also http over TLS (the old bench/tls_idle_rss.py)")
    ap.add_argument("-n", type=int, default=10_000, help="idle connections per server")
    ap.add_argument("--tls-n", type=int, help="idle connections per server over TLS (default: -n)")
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"comma list from: {', '.join(SERVERS)}")
    ap.add_argument("--before-request", action="store_true",
                    help="http and tls: leave each connection before its first request")
    ap.add_argument("--warm-conns", type=int, default=4)
    ap.add_argument("--warm-requests", type=int, default=400, help="spread over --warm-conns")
    ap.add_argument("--open-timeout", type=float, default=300.0,
                    help="seconds to open the n connections; the rest are counted as failed")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--render", metavar="RESULT.json", help="only print a stored result's tables")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    kinds = [k for k in (args.kind or ("" if args.tls else "http")).split(",") if k]
    for k in kinds:
        if k not in ("http", "ws", "h2"):
            ap.error(f"unknown kind {k!r} (http, ws, h2; --tls for TLS)")
    if args.tls:
        kinds.append("tls")
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r} (have {', '.join(SERVERS)})")
    if "h2" in kinds:
        try:
            import h2  # noqa: F401
        except ImportError:
            # Pinned in bench/requirements-peers.txt: the same host CPython's
            # .venv-bench has it.  Once requirements-test.txt pins it (the
            # HTTP/2 branch), .venv has it too and this is not needed.
            setup([], ["h2"])
            py = os.path.join(HOST_BENCH_VENV, "bin", "python")
            log(f"h2 is not importable here: running again under {py}")
            os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    n_of = {k: (args.tls_n or args.n) if k == "tls" else args.n for k in kinds}
    if max(n_of.values()) + 1000 > hard:
        ap.error(f"{max(n_of.values()):,} connections need more than the hard limit of {hard:,} files")
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    tmp = tempfile.mkdtemp(prefix="bench-idle-")
    os.chmod(tmp, 0o755)  # nginx's worker runs as nobody
    try:
        env = setup(servers, kinds)
        load0 = loadavg()
        doc = {"kind": "idle", "profile": "idle", "python": "host",
               "started": started.isoformat(timespec="seconds"), "machine": machine_info(),
               "command": "python bench/idle_rss.py " + " ".join(sys.argv[1:]), "servers": servers,
               "before_request": args.before_request,
               "method": (f"One server at a time, 1 worker, `taskset -c {SERVER_CPU}`; warm-up "
                          f"{args.warm_requests} requests on {args.warm_conns} connections, closed; RSS "
                          f"(VmRSS of the process tree) before, then N connections opened {IN_FLIGHT} at a "
                          f"time, one request each (ws: handshake + one echo; h2: prior knowledge), left "
                          f"idle; RSS {SETTLE:g} s after the last; every connection peeked for EOF, "
                          f"{SAMPLE} of them make one more request.  Keep-alive timeouts {KEEP_ALIVE} s, "
                          "WebSocket pings off, `ulimit -n` at its hard limit."),
               "kinds": {}}
        for k in kinds:
            log(f"{k}: {n_of[k]:,} idle connections per server")
            doc["kinds"][k] = run_kind(env, k, servers, n_of[k], args, tmp)
        vers = run.versions(env, [s for s in servers if s in run.SERVER_VENV])
        if "nginx" in servers and shutil.which("nginx"):
            vers["nginx"] = {"nginx": static_bench.nginx_version()}
        doc["versions"] = vers
        doc["load"] = {"start": load0, "end": loadavg(),
                       "max": max([load0] + [r["load_after"] for k in doc["kinds"].values()
                                             for r in k["results"].values()])}
    except BenchError as e:
        log(f"idle bench: FAILED: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run.save_result(doc, markdown(doc), args.out, stamp, "idle-host",
                    "Idle connections (issue 17), host CPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
