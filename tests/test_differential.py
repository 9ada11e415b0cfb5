"""Differential test: Pounce's C request parser against h11.

The same generated and mutated byte strings go to both parsers; each says
whether the first request in them is valid, where it ends (head plus body)
and what its decoded body is.  Any disagreement fails, except where Pounce
is deliberately stricter than h11; those exceptions are keyed by Pounce's
own error reason and listed in STRICTER with the rule that justifies them
(docs/http1-policy.md has the whole policy).  Pounce accepting what h11
refuses is never excused.

The C side is csrc/core/pn_http1_parse.c + pn_buf.c, built here with cc into
a small shared library (plus a test-only shim, SHIM below) and called
through ctypes, so the bridge is not involved.  Under `make asan`
(POUNCE_ASAN=1) the library is built with ASan+UBSan too.

Bounded: a fixed seed and at most DIFF_CASES cases or DIFF_SECONDS seconds
(POUNCE_DIFF_SEED, POUNCE_DIFF_CASES, POUNCE_DIFF_SECONDS override them).
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import subprocess
import time
from pathlib import Path

import pytest

h11 = pytest.importorskip("h11", reason="h11 is pinned in requirements-test.txt")

ROOT = Path(__file__).resolve().parent.parent
DIFF_CASES = int(os.environ.get("POUNCE_DIFF_CASES", "20000"))
DIFF_SEED = int(os.environ.get("POUNCE_DIFF_SEED", "20261126"))
DIFF_SECONDS = float(os.environ.get("POUNCE_DIFF_SECONDS", "10"))

SHIM = r"""
#include "pn_http1_parse.h"
#include <string.h>

/* Frame the first request in buf[0..len): 0 = complete (*end, body copied
 * to out), 1 = incomplete, -1 = error (*status, *reason). */
int shim_frame(const char *buf, size_t len, size_t *end, char *out, size_t *out_len,
               int *status, const char **reason)
{
    pn_http1_limits lim = {16384, 65536, 200, 0};
    pn_http1_header hs[200];
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hs);
    int rc = pn_http1_parse_head(&p, buf, len, &r);
    if (rc == PN_HTTP1_ERROR) {
        *status = p.error_status;
        *reason = p.error_reason;
        return -1;
    }
    if (rc != PN_HTTP1_OK)
        return 1;
    pn_http1_body b;
    pn_http1_body_init(&b, &r, 0, 16384);
    size_t pos = r.head_len;
    *out_len = 0;
    while (!pn_http1_body_done(&b)) {
        size_t used = 0, dlen = 0;
        const char *d = NULL;
        int brc = pn_http1_body_next(&b, buf + pos, len - pos, &used, &d, &dlen);
        pos += used;
        if (brc == PN_HTTP1_ERROR) {
            *status = b.error_status;
            *reason = b.error_reason;
            return -1;
        }
        if (dlen > 0) {
            memcpy(out + *out_len, d, dlen);
            *out_len += dlen;
        }
        if (brc == PN_BODY_DONE)
            break;
        if (brc == PN_HTTP1_INCOMPLETE)
            return 1;
    }
    *end = pos;
    return 0;
}
"""

# Pounce error reasons where it is deliberately stricter than h11, with the
# rule (RFC 9112 unless noted).  Any other Pounce rejection of a request
# h11 accepts is a failure.
STRICTER = {
    "bare LF": "§2.2: CRLF only; h11 accepts a bare LF as a line end",
    "line folding or leading whitespace": "§5.2: obs-fold rejected; h11 unfolds it",
    "duplicate Content-Length": "§6.3: refused even when equal; h11 merges equal values",
    "invalid Content-Length": "§6.2: a list '5, 5' is refused; h11 merges equal members",
    "duplicate Host": "§3.2: exactly one Host; h11 does not check",
    "invalid Host": "RFC 9110 §7.2 uri-host[:port]; h11 does not check the value",
    "invalid request target": "§3.2: the four target forms only; h11 takes any VCHAR run",
    "asterisk-form target needs OPTIONS": "§3.2.4",
    "CONNECT needs host:port target": "§3.2.3",
    "invalid authority in request target": "§3.2.2 + RFC 9110 §4.2.4 (no userinfo)",
    "HTTP version not supported": "RFC 9110 §15.6.6: 505 for HTTP/x.y other than 1.0/1.1",
    "Transfer-Encoding in HTTP/1.0": "§6.1: faulty framing in a 1.0 request",
    "duplicate Transfer-Encoding": "§6.1: two Transfer-Encoding fields are refused, not merged",
    "too many empty lines before request": "§2.2: at most four leading CRLFs",
    "invalid chunk extension": "§7.1.1: extensions are parsed; h11 skips ';.*'",
    "chunk-size line too long": "bounded chunk-size line (4 KiB)",
    "bare CR in chunk-size line": "§7.1: CRLF ends the size line",
    "invalid character in header value": "RFC 9110 §5.5: CTLs and DEL refused; h11 lets "
    "through every byte but NUL and whitespace ([^\\x00\\s])",
    "invalid trailer field": "§7.1.2: trailers follow the field syntax (h11 is looser)",
    "bare CR in trailer": "§7.1.2: CRLF ends a trailer line",
    "bare CR after trailers": "§7.1: CRLF ends the trailer section",
}

# h11 answers "incomplete" for some heads Pounce already refuses (h11 looks
# for a blank line first); that is not a framing disagreement when Pounce's
# reason is a rule h11 does not check at all.
STRICTER_EARLY = {"bare LF", "too many empty lines before request", "bare CR in trailer",
                  "bare CR after trailers", "bare CR in chunk-size line"}

# Where h11 is stricter than RFC 9112 and Pounce follows the RFC (and nginx):
# BWS between chunk-size and ";" (§7.1.1: chunk-ext = *( BWS ";" ... )).
# h11's chunk-header pattern allows no whitespace before the ";".
H11_STRICTER_THAN_RFC = re.compile(r"illegal chunk header: bytearray\(b'[0-9A-Fa-f]+(\\t| )+;")


@pytest.fixture(scope="module")
def cparser(tmp_path_factory):
    out = tmp_path_factory.mktemp("cparser")
    shim = out / "shim.c"
    shim.write_text(SHIM)
    lib = out / "libpnparse.so"
    cc = os.environ.get("CC", "cc")
    flags = ["-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-fPIC", "-shared", "-Wall", "-Wextra",
             "-Werror"]
    if os.environ.get("POUNCE_ASAN") == "1":
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    cmd = [cc, *flags, "-I", str(ROOT / "csrc"), "-I", str(ROOT / "csrc/core"), "-o", str(lib),
           str(shim), str(ROOT / "csrc/core/pn_http1_parse.c"), str(ROOT / "csrc/core/pn_buf.c")]
    # Under `make asan` the ASan runtime is preloaded into every child;
    # the compiler is not instrumented, so it runs without it.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    so = ctypes.CDLL(str(lib))
    f = so.shim_frame
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                  ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                  ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p)]

    def frame(data: bytes):
        end = ctypes.c_size_t(0)
        out = ctypes.create_string_buffer(len(data) + 1)
        out_len = ctypes.c_size_t(0)
        status = ctypes.c_int(0)
        reason = ctypes.c_char_p()
        rc = f(data, len(data), ctypes.byref(end), out, ctypes.byref(out_len),
               ctypes.byref(status), ctypes.byref(reason))
        if rc == 0:
            return ("ok", end.value, out.raw[:out_len.value])
        if rc == 1:
            return ("incomplete",)
        return ("error", status.value, reason.value.decode())

    return frame


def h11_frame(data: bytes):
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    # the request line; h11 does not, so the (at most four, Pounce's bound)
    # leading CRLFs are skipped for it and counted back into the end offset.
    skip = 0
    while skip < 8 and data[skip:skip + 2] == b"\r\n":
        skip += 2
    res = _h11_frame(data[skip:])
    return ("ok", res[1] + skip, res[2]) if res[0] == "ok" else res


def _h11_frame(data: bytes):
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=65536)
    conn.receive_data(data)
    body = []
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                return ("incomplete",)
            if isinstance(ev, h11.Data):
                body.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                return ("ok", len(data) - len(conn.trailing_data[0]), b"".join(body))
    except h11.RemoteProtocolError as e:
        return ("error", e.error_status_hint, str(e))


# -- generation -------------------------------------------------------------------

TCHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
INTERESTING = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b";", b"=", b'"', b"\\",
               b"\x0b", b"\x7f", b"\xff", b"0", b"5", b"a", b"f", b"g", b",", b"/", b"?", b"#",
               b"@", b"\r\n ", b"\r\n\r\n", b"-", b"+", b"x"]


def gen_request(rng: random.Random) -> bytes:
    method = rng.choice([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"get",
                         b"PATCH", b"X-" + rng.choice(TCHARS).encode()])
    target = rng.choice([b"/", b"/a/b?c=d", b"/%41", b"/" + bytes(rng.choice(b"abc/") for _ in
                         range(rng.randint(0, 20))), b"*", b"http://h/x", b"h:80", b"/?q"])
    version = rng.choice([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/1.2"])
    lines = [method + b" " + target + b" " + version]
    headers = []
    if rng.random() < 0.95:
        headers.append((b"Host", rng.choice([b"example.com", b"h:8080", b"[::1]", b"a.b"])))
    for _ in range(rng.randint(0, 4)):
        name = "".join(rng.choice(TCHARS) for _ in range(rng.randint(1, 12))).encode()
        value = bytes(rng.choice(b"abc xyz,;=/0123\t\x80") for _ in range(rng.randint(0, 20)))
        headers.append((name, value.strip(b" \t")))
    if rng.random() < 0.2:
        headers.append((b"Connection", rng.choice([b"close", b"keep-alive", b"upgrade"])))
    body = b""
    kind = rng.choice(["none", "cl", "chunked", "chunked"])
    if kind == "cl":
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        headers.append((b"Content-Length", str(len(payload)).encode()))
        body = payload
    elif kind == "chunked":
        headers.append((b"Transfer-Encoding", rng.choice([b"chunked", b"Chunked"])))
        for _ in range(rng.randint(0, 3)):
            n = rng.randint(1, 20)
            ext = rng.choice([b"", b"", b";a", b";a=b", b';a="q"', b";x=1;y"])
            size = (b"%x" if rng.random() < 0.5 else b"%X") % n
            body += size + ext + b"\r\n" + bytes(rng.randrange(256) for _ in range(n)) + b"\r\n"
        body += b"0\r\n"
        if rng.random() < 0.3:
            body += b"X-Trailer: v\r\n"
        body += b"\r\n"
    rng.shuffle(headers)
    head = b"\r\n".join(lines + [k + b": " + v for k, v in headers]) + b"\r\n\r\n"
    if rng.random() < 0.05:
        head = b"\r\n" + head
    return head + body


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not b:
            break
        op = rng.randrange(6)
        i = rng.randrange(len(b))
        if op == 0:
            b[i:i + 1] = rng.choice(INTERESTING)
        elif op == 1:
            b[i:i] = rng.choice(INTERESTING)
        elif op == 2:
            del b[i:i + rng.randint(1, 3)]
        elif op == 3:
            # duplicate a line (a second Host, Content-Length, ...)
            s = b.rfind(b"\n", 0, i) + 1
            e = b.find(b"\n", i)
            if e > 0:
                b[s:s] = b[s:e + 1]
        elif op == 4:
            b[i] = rng.randrange(256)
        else:
            # change a number (lengths, chunk sizes)
            digits = [j for j, c in enumerate(b) if 0x30 <= c <= 0x39]
            if digits:
                j = rng.choice(digits)
                b[j] = rng.choice(b"0123456789")
    return bytes(b)


# Tails that complete a head, a chunk line, a last-chunk or a trailer section.
COMPLETIONS = (b"\r\n\r\n", b"\r\n0\r\n\r\n", b"0\r\n\r\n", b"\n\r\n", b"\r\n")


def compare(pounce, ref, data=None, cparser=None):
    """None when the outcomes agree (or differ only as documented)."""
    kind = pounce[0]
    if kind == "incomplete" and ref[0] == "error" and cparser is not None:
        # Pounce decides only once the head is complete (so the answer does
        # not depend on how the bytes arrived; bounded by --max-header-size
        # and the header deadline).  Completing the head must then refuse.
        done = cparser(data + b"\r\n\r\n")
        if done[0] == "error":
            return None
        return f"Pounce wants more bytes, h11 says {ref}; completed head gives {done}"
    if kind == "ok" and ref[0] == "error" and H11_STRICTER_THAN_RFC.search(ref[2]):
        return None
    if kind == ref[0] == "ok":
        return None if pounce[1:] == ref[1:] else "different framing"
    if kind == ref[0]:
        return None
    if kind == "error":
        reason = pounce[2]
        if ref[0] == "ok" and reason in STRICTER:
            return None
        if ref[0] == "incomplete":
            if reason in STRICTER_EARLY or reason in STRICTER:
                return None
            # Pounce refused bytes h11 has not judged yet.  That is a
            # disagreement only if some completion makes them a request h11
            # accepts (Pounce's answer on a prefix is final).
            for tail in COMPLETIONS:
                if data is not None and h11_frame(data + tail)[0] == "ok":
                    return (f"Pounce refuses ({pounce[1]} {reason}) a prefix of what h11 "
                            f"accepts with {tail!r} added")
            return None
        return f"Pounce refuses ({pounce[1]} {reason}), h11 says {ref[0]}"
    if kind == "ok":
        return f"Pounce accepts, h11 says {ref}"
    return f"Pounce wants more bytes, h11 says {ref}"


def test_shim_and_h11_agree_on_basics(cparser):
    req = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET"
    assert cparser(req) == ("ok", len(req) - 3, b"abc")
    assert h11_frame(req) == ("ok", len(req) - 3, b"abc")
    chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nX"
    assert cparser(chunked) == ("ok", len(chunked) - 1, b"abc")
    assert h11_frame(chunked) == ("ok", len(chunked) - 1, b"abc")
    bad = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n"
    assert cparser(bad)[0] == "error" and h11_frame(bad)[0] == "error"
    assert cparser(b"GET / HTTP/1.1\r\nHo") == ("incomplete",)
    # compare() must flag a real disagreement
    assert compare(("ok", 10, b""), ("ok", 11, b"")) is not None
    assert compare(("ok", 10, b""), ("error", 400, "x")) is not None
    assert compare(("error", 400, "invalid method"), ("ok", 10, b"")) is not None


def test_differential_against_h11(cparser):
    rng = random.Random(DIFF_SEED)
    deadline = time.monotonic() + DIFF_SECONDS
    failures = []
    stats = {"cases": 0, "agree_ok": 0, "agree_err": 0, "stricter": {}}
    trailer = b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n"
    while stats["cases"] < DIFF_CASES and time.monotonic() < deadline:
        req = gen_request(rng)
        if rng.random() < 0.7:
            req = mutate(rng, req)
        data = req + trailer if rng.random() < 0.5 else req
        p, r = cparser(data), h11_frame(data)
        stats["cases"] += 1
        why = compare(p, r, data, cparser)
        if why:
            failures.append((why, data))
        elif p[0] == r[0] == "ok":
            stats["agree_ok"] += 1
        elif p[0] == r[0] == "error":
            stats["agree_err"] += 1
        elif p[0] == "error":
            stats["stricter"][p[2]] = stats["stricter"].get(p[2], 0) + 1
    print(f"\ndifferential: {stats['cases']} cases, both accept {stats['agree_ok']}, "
          f"both refuse {stats['agree_err']}, Pounce stricter {sum(stats['stricter'].values())}")
    for reason, n in sorted(stats["stricter"].items(), key=lambda kv: -kv[1]):
        print(f"  stricter: {n:6d}  {reason}  ({STRICTER.get(reason, '')})")
    assert stats["cases"] >= 2000, "too few cases ran to mean anything"
    assert stats["agree_ok"] > stats["cases"] // 10
    assert not failures, "\n".join(f"{w}: {d[:300]!r}" for w, d in failures[:8]) + \
        f"\n({len(failures)} disagreements)"
