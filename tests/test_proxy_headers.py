"""Proxy headers (issue 12, item 1): Forwarded and X-Forwarded-* from the
peers --forwarded-allow-ips trusts set the scope's client, scheme and Host
and the access log's client; from anyone else they change nothing.

Two halves:
  * direct, over a raw socket from 127.0.0.1: trusted, untrusted, spoofing,
    '*', CIDR, --no-proxy-headers, malformed headers, both families, the
    --x-forwarded-host opt-in, WebSocket scopes (ws / wss);
  * through a real nginx (nginx-light, `make deps`) started by the tests
    with its own nginx.conf: X-Forwarded-For/-Proto, Forwarded, a Unix
    socket upstream (the default list's 'unix'), WebSocket, and Django's
    is_secure() / build_absolute_uri().  The client connects to nginx from
    127.0.0.2 (all of 127/8 is loopback), an address the default list does
    not trust, so the resolved client is visibly not the proxy.
Under POUNCE_TEST_TLS=1 the direct clients speak TLS, the scheme a scope
keeps without trusted headers is https/wss, and nginx speaks TLS to Pounce
(checking its certificate against the test CA).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.server import TLS, get, tls_certs, tls_client_context

SCOPE_APP = "tests.apps.scope:app"
WS_APP = "tests.apps.ws_app:app"
DJANGO_APP = "tests.apps.proxy_django:app"
CLIENT_ADDR = "127.0.0.2"  # a loopback address the default list does not trust
# The scheme of the connection itself, which the scope keeps when no trusted
# header says otherwise: https/wss under POUNCE_TEST_TLS=1.
OWN = "https" if TLS else "http"
OWN_WS = "wss" if TLS else "ws"


def scope_of(srv, headers=(), target="/"):
    resp = get(srv, target, headers)
    assert resp.status == 200, (resp.status, resp.body)
    return json.loads(resp.body)


def host_values(scope):
    return [v for k, v in scope["headers"] if k == "host"]


def ws_scope(host, port, path="/scope", headers=(), source=None, tls=TLS):
    """A WebSocket handshake by hand (over TLS when tls); returns the scope
    the app sends back."""
    s = socket.create_connection((host, port), timeout=5, source_address=source)
    if tls:
        s = tls_client_context().wrap_socket(s, server_hostname=host)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers)
            + "\r\n"
        )
        s.sendall(head.encode("latin-1"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, buf
            buf += chunk
        resp_head, rest = buf.split(b"\r\n\r\n", 1)
        assert resp_head.startswith(b"HTTP/1.1 101"), resp_head

        def need(n):
            nonlocal rest
            while len(rest) < n:
                chunk = s.recv(65536)
                assert chunk, rest
                rest += chunk
            out, rest = rest[:n], rest[n:]
            return out

        b0, b1 = need(2)
        assert b0 & 0x0F == 1, b0  # a text frame
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(need(2), "big")
        elif n == 127:
            n = int.from_bytes(need(8), "big")
        return json.loads(need(n))
    finally:
        s.close()


# ---- direct: one server per option set ---------------------------------------


@pytest.fixture(scope="module")
def servers(module_server_factory):
    made = {}

    def server(*args):
        if args not in made:
            made[args] = module_server_factory(SCOPE_APP, *args)
        return made[args]

    return server


def test_trusted_peer_sets_client_and_scheme(servers):
    srv = servers()
    sc = scope_of(srv, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert sc["client"] == ["203.0.113.7", 0]
    assert sc["scheme"] == "https"
    # The headers themselves still reach the app.
    assert ["x-forwarded-for", "203.0.113.7"] in sc["headers"]
    srv.wait_log(r'(?m)^203\.0\.113\.7:0 - "GET / HTTP/1\.1" 200 ')


def test_no_headers_leave_the_peer(servers):
    srv = servers()
    sc = scope_of(srv)
    assert sc["client"][0] == "127.0.0.1" and sc["client"][1] > 0
    assert sc["scheme"] == OWN


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")],
        [("Forwarded", "for=203.0.113.8;proto=https;host=evil.example")],
    ],
    ids=["x-forwarded", "forwarded"],
)
def test_untrusted_peer_is_ignored(servers, headers):
    srv = servers("--forwarded-allow-ips", "10.0.0.1,unix")
    sc = scope_of(srv, headers, target="/untrusted")
    assert sc["client"][0] == "127.0.0.1" and sc["client"][1] > 0
    assert sc["scheme"] == OWN
    assert host_values(sc) == ["127.0.0.1"]
    srv.wait_log(r'(?m)^127\.0\.0\.1:\d+ - "GET /untrusted HTTP/1\.1" 200 ')
    assert "203.0.113" not in srv.log_text()


def test_spoofed_entries_left_of_the_proxy_are_not_believed(servers):
    srv = servers()
    # The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended what it saw.
    sc = scope_of(srv, [("X-Forwarded-For", "6.6.6.6, 203.0.113.7")])
    assert sc["client"] == ["203.0.113.7", 0]
    # Several field lines are one list.
    sc = scope_of(srv, [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.7")])
    assert sc["client"] == ["203.0.113.7", 0]


def test_cidr_hops_are_passed(servers):
    srv = servers("--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8")
    sc = scope_of(srv, [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3, 10.9.9.9")])
    assert sc["client"] == ["203.0.113.7", 0]
    # Every hop trusted: the leftmost.
    sc = scope_of(srv, [("X-Forwarded-For", "10.7.7.7, 10.1.2.3")])
    assert sc["client"] == ["10.7.7.7", 0]


def test_star_trusts_every_hop(servers):
    srv = servers("--forwarded-allow-ips", "*")
    sc = scope_of(srv, [("X-Forwarded-For", "6.6.6.6, 203.0.113.7")])
    assert sc["client"] == ["6.6.6.6", 0]


def test_no_proxy_headers(servers):
    srv = servers("--no-proxy-headers")
    sc = scope_of(srv, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert sc["client"][0] == "127.0.0.1"
    assert sc["scheme"] == OWN


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "203.0.113.7, garbage"), ("X-Forwarded-Proto", "https")],
        [("X-Forwarded-For", "203.0.113.7:99999"), ("X-Forwarded-Proto", "https")],
        [("Forwarded", 'for="203.0.113.7;proto=https')],
        [("Forwarded", "for=203.0.113.7;for=6.6.6.6;proto=https")],
        [("Forwarded", "for=[2001:db8::1];proto=https")],
        [("Forwarded", "for=203.0.113.7;proto=https;host=\"a/b\"")],
    ],
)
def test_malformed_is_ignored_whole(servers, headers):
    srv = servers()
    sc = scope_of(srv, headers)
    assert sc["client"][0] == "127.0.0.1" and sc["client"][1] > 0
    assert sc["scheme"] == OWN
    assert host_values(sc) == ["127.0.0.1"]


def test_forwarded(servers):
    srv = servers()
    sc = scope_of(
        srv, [("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;host="example.com:8443"')]
    )
    assert sc["client"] == ["2001:db8:cafe::17", 4711]
    assert sc["scheme"] == "https"
    assert host_values(sc) == ["example.com:8443"]
    # The element of the client, not the client's own claims left of it.
    sc = scope_of(
        srv,
        [
            ("Forwarded", "for=6.6.6.6;proto=http;host=evil.example"),
            ("Forwarded", "for=203.0.113.7;proto=https;host=good.example"),
        ],
    )
    assert sc["client"] == ["203.0.113.7", 0]
    assert sc["scheme"] == "https"
    assert host_values(sc) == ["good.example"]


def test_forwarded_unknown_and_obfuscated(servers):
    srv = servers()
    sc = scope_of(srv, [("Forwarded", "for=unknown;proto=https")], target="/unknown")
    assert sc["client"] is None
    assert sc["scheme"] == "https"
    srv.wait_log(r'(?m)^unknown - "GET /unknown HTTP/1\.1" 200 ')
    sc = scope_of(srv, [("Forwarded", 'for="_hidden:_port"')], target="/obf")
    assert sc["client"] == ["_hidden", 0]
    srv.wait_log(r'(?m)^_hidden:0 - "GET /obf HTTP/1\.1" 200 ')


def test_forwarded_host_is_added_to_a_request_without_host(servers):
    srv = servers()
    with srv.connect() as c:
        resp = c.request("GET", "/", [("Forwarded", "host=example.com")])
        # (HTTP/1.1 needs a Host: the helper adds one; test the HTTP/1.0 case raw.)
    assert json.loads(resp.body)["headers"][0] == ["host", "example.com"]
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.0\r\nForwarded: host=example.com\r\n\r\n")
        resp = c.read_response()
    assert host_values(json.loads(resp.body)) == ["example.com"]


def test_both_families_must_agree(servers):
    srv = servers()
    # A client's Forwarded against the proxy's X-Forwarded-For: neither.
    sc = scope_of(
        srv,
        [
            ("Forwarded", "for=6.6.6.6;proto=https;host=evil.example"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "http"),
        ],
    )
    assert sc["client"][0] == "127.0.0.1"
    assert sc["scheme"] == OWN
    assert host_values(sc) == ["127.0.0.1"]
    # The same account twice: applied, but the host only when both say it.
    sc = scope_of(
        srv,
        [
            ("Forwarded", 'for="203.0.113.7:5555";proto=https;host=evil.example'),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    assert sc["client"] == ["203.0.113.7", 5555]
    assert sc["scheme"] == "https"
    assert host_values(sc) == ["127.0.0.1"]


def test_x_forwarded_host_needs_the_opt_in(servers):
    headers = [
        ("X-Forwarded-Host", "example.com"),
        ("X-Forwarded-Port", "8443"),
        ("X-Forwarded-Proto", "https"),
    ]
    sc = scope_of(servers(), headers)
    assert host_values(sc) == ["127.0.0.1"]
    assert sc["scheme"] == "https"
    sc = scope_of(servers("--x-forwarded-host"), headers)
    assert host_values(sc) == ["example.com:8443"]
    opted_in = servers("--x-forwarded-host")
    sc = scope_of(opted_in, [("X-Forwarded-Port", "443"), ("X-Forwarded-Proto", "https")])
    assert host_values(sc) == ["127.0.0.1"]
    sc = scope_of(opted_in, [("X-Forwarded-Port", "8080")])
    assert host_values(sc) == ["127.0.0.1:8080"]


def test_websocket_scheme(module_server_factory):
    srv = module_server_factory(WS_APP)
    proxy = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7")]
    sc = ws_scope(srv.host, srv.port, headers=proxy)
    assert sc["scheme"] == "wss"
    assert sc["client"] == ["203.0.113.7", 0]
    assert ws_scope(srv.host, srv.port, headers=[("X-Forwarded-Proto", "wss")])["scheme"] == "wss"
    assert ws_scope(srv.host, srv.port, headers=[("X-Forwarded-Proto", "http")])["scheme"] == "ws"
    assert ws_scope(srv.host, srv.port, headers=[("Forwarded", "proto=https")])["scheme"] == "wss"
    assert ws_scope(srv.host, srv.port)["scheme"] == OWN_WS
    srv.wait_log(r'(?m)^203\.0\.113\.7:0 - "GET /scope HTTP/1\.1" 101 ')


def test_http_scope_maps_wss_to_https(servers):
    sc = scope_of(servers(), [("X-Forwarded-Proto", "wss")])
    assert sc["scheme"] == "https"
    sc = scope_of(servers(), [("X-Forwarded-Proto", "gopher")])
    assert sc["scheme"] == OWN


# ---- through a real nginx ----------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    {upstream_tls}
    server {{
        listen 127.0.0.1:{port};
        # A TLS-terminating proxy, modelled without TLS: the proto by hand.
        location /xff/ {{
            proxy_pass {up}://127.0.0.1:{scope_port}/;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
        location /fwd/ {{
            proxy_pass {up}://127.0.0.1:{scope_port}/;
            proxy_set_header Forwarded "for=$remote_addr;proto=https;host=\\"$http_host\\"";
        }}
        location /uds/ {{
            proxy_pass {up}://unix:{sock}:/;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
        location /django/ {{
            proxy_pass {up}://127.0.0.1:{django_port}/;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
        location /ws/ {{
            proxy_pass {up}://127.0.0.1:{ws_port}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def proxied(module_server_factory, tmp_path_factory):
    # (root's PATH has /usr/sbin; another user's may not.)
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx, "nginx is missing: `make deps` installs nginx-light"
    tmp = tmp_path_factory.mktemp("nginx")
    sock = str(tmp / "pounce.sock")
    scope_srv = module_server_factory(SCOPE_APP)
    uds_srv = module_server_factory(SCOPE_APP, "--uds", sock)
    django_srv = module_server_factory(DJANGO_APP)
    ws_srv = module_server_factory(WS_APP)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=tmp,
            port=port,
            scope_port=scope_srv.port,
            sock=sock,
            django_port=django_srv.port,
            ws_port=ws_srv.port,
            # POUNCE_TEST_TLS=1: nginx speaks TLS to Pounce and checks its
            # certificate against the test CA.
            up="https" if TLS else "http",
            upstream_tls=(f"proxy_ssl_verify on; proxy_ssl_trusted_certificate {tls_certs().ca}; "
                          "proxy_ssl_name localhost;") if TLS else "",
        )
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.poll() is not None else ""
                    raise AssertionError(f"nginx did not start: {err}")
                time.sleep(0.05)
        yield {
            "port": port,
            "scope": scope_srv,
            "uds": uds_srv,
            "django": django_srv,
            "ws": ws_srv,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def via_nginx(proxied, target, headers=None, host="www.example.com"):
    conn = http.client.HTTPConnection(
        "127.0.0.1", proxied["port"], timeout=5, source_address=(CLIENT_ADDR, 0)
    )
    try:
        hs = {"Host": host}
        hs.update(headers or {})
        conn.request("GET", target, headers=hs)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return json.loads(body)
    finally:
        conn.close()


def test_nginx_x_forwarded(proxied):
    sc = via_nginx(proxied, "/xff/a")
    assert sc["client"] == [CLIENT_ADDR, 0]
    assert sc["scheme"] == "https"
    assert host_values(sc) == ["www.example.com"]
    # Debian 12's nginx speaks HTTP/1.0 to the upstream by default, sid's HTTP/1.1.
    proxied["scope"].wait_log(r'(?m)^127\.0\.0\.2:0 - "GET /a HTTP/1\.[01]" 200 ')


def test_nginx_x_forwarded_spoofing(proxied):
    # nginx appends the address it saw to what the client claimed.
    sc = via_nginx(proxied, "/xff/b", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "http"})
    assert sc["client"] == [CLIENT_ADDR, 0]
    assert sc["scheme"] == "https"


def test_nginx_forwarded(proxied):
    sc = via_nginx(proxied, "/fwd/c", host="shop.example:8443")
    assert sc["client"] == [CLIENT_ADDR, 0]
    assert sc["scheme"] == "https"
    assert host_values(sc) == ["shop.example:8443"]
    proxied["scope"].wait_log(r'(?m)^127\.0\.0\.2:0 - "GET /c HTTP/1\.[01]" 200 ')


def test_nginx_forwarded_with_a_client_x_forwarded_for(proxied):
    # This location manages Forwarded only, so nginx passes the client's
    # X-Forwarded-For through: the two accounts disagree and neither is
    # believed.  The app sees the proxy, not the address the client chose.
    sc = via_nginx(proxied, "/fwd/d", {"X-Forwarded-For": "6.6.6.6"})
    assert sc["client"][0] == "127.0.0.1"
    assert sc["scheme"] == OWN  # nginx to Pounce: https under POUNCE_TEST_TLS


def test_nginx_over_unix_socket(proxied):
    sc = via_nginx(proxied, "/uds/e")
    assert sc["client"] == [CLIENT_ADDR, 0]
    assert sc["scheme"] == "https"
    proxied["uds"].wait_log(r'(?m)^127\.0\.0\.2:0 - "GET /e HTTP/1\.[01]" 200 ')


def test_nginx_websocket(proxied):
    sc = ws_scope("127.0.0.1", proxied["port"], path="/ws/scope", source=(CLIENT_ADDR, 0),
                  tls=False)
    assert sc["scheme"] == "wss"
    assert sc["client"] == [CLIENT_ADDR, 0]


def test_nginx_django(proxied):
    d = via_nginx(proxied, "/django/whoami", host="shop.example")
    assert d == {
        "secure": True,
        "uri": "https://shop.example/next",
        "host": "shop.example",
        "remote_addr": CLIENT_ADDR,
    }
