"""Request-smuggling and conformance corpus, run against the real server.

tests/corpus/http1_requests.txt holds the raw requests (see the format at
its top), each with the exact responses expected on one connection and
whether the server must then close it or keep serving.  The policy behind
every expectation is docs/http1-policy.md.

A case passes when, on a fresh connection:
  * the responses are exactly the listed statuses, in order (and, where
    given, with exactly the listed echoed body: that is where the server
    thought the request body ended), every error with `Connection: close`;
  * "close": the server then closes with no further bytes;
  * "keep": a further GET on the same connection is answered 200.
And after each case the server still serves a new connection.

check_exchange() holds those checks, and every case runs through them in
two modes: the whole request in one send, and trickled (a byte or a small
group per send, with a pause after each, so the server parses it across
hundreds of reads).  The chunked-body errors also run a third way: the head
first, the body once the app waits for it.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import ConnectionClosed, assert_serving, build_request

APP = "tests.apps.hardening:app"
CORPUS = Path(__file__).parent / "corpus" / "http1_requests.txt"
LIMITS = ("--max-request-line=1024", "--max-header-size=4096", "--max-headers=20",
          "--max-request-size=1000")

pytestmark = pytest.mark.pounce_only("Pounce's strict HTTP/1.1 policy (docs/http1-policy.md)")


@dataclass
class Case:
    name: str
    data: bytes
    statuses: list[int]
    bodies: list[bytes | None]
    keep: bool
    why: str


def _unescape(text: str) -> bytes:
    text = re.sub(r"<<(\d+)\*(.*?)>>", lambda m: m.group(2) * int(m.group(1)), text)
    return codecs.decode(text, "unicode_escape").encode("latin-1")


def load_corpus(path: Path = CORPUS) -> list[Case]:
    cases: list[Case] = []
    header = None
    lines: list[str] = []

    def flush():
        if header is None:
            return
        name, expect, why = (part.strip() for part in header.split("|", 2))
        *responses, after = expect.split()
        assert after in ("close", "keep"), (name, expect)
        statuses, bodies = [], []
        for r in responses:
            code, eq, body = r.partition("=")
            statuses.append(int(code))
            bodies.append(_unescape(body) if eq else None)
        cases.append(Case(name, _unescape("".join(lines)), statuses, bodies, after == "keep", why))

    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("==="):
            flush()
            header, lines = raw[3:], []
        elif raw.startswith("#") or not raw.strip():
            continue
        else:
            lines.append(raw)
    flush()
    return cases


CASES = load_corpus()


def test_corpus_is_well_formed():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(CASES) >= 60
    for c in CASES:
        assert c.data and c.statuses, c.name
        # every rejection must close; keep-alive only after successes
        if any(s >= 400 for s in c.statuses):
            assert not c.keep, c.name


@pytest.fixture(scope="module")
def corpus_server(module_server_factory):
    return module_server_factory(APP, *LIMITS, "--no-access-log")


def check_exchange(conn, case: Case, how: str) -> None:
    """Everything a case expects on `conn`, once its bytes have been sent:
    exactly the listed statuses in order (the second answer of a pipelined
    case is where smuggling would show), the listed echoed bodies,
    `Connection: close` on every error, then the connection closed with no
    further bytes ("close") or still serving a further GET ("keep")."""
    got = []
    for i, want in enumerate(case.statuses):
        try:
            resp = conn.read_response()
        except ConnectionClosed as e:
            pytest.fail(f"{case.name} ({how}): closed after {got} (wanted {case.statuses}); "
                        f"partial {e.partial[:200]!r}; rule: {case.why}")
        got.append(resp.status)
        assert resp.status == want, (case.name, how, got, case.statuses, resp.body[:200], case.why)
        if case.bodies[i] is not None:
            assert resp.body == case.bodies[i], (case.name, how, resp.body[:200])
        if resp.status >= 400:
            assert (resp.header("connection") or "").lower() == "close", (case.name, how,
                                                                         resp.headers)
    if case.keep:
        conn.send(build_request("GET", "/"))
        assert conn.read_response().status == 200, (case.name, how)
    else:
        assert conn.wait_closed(3), f"{case.name} ({how}): connection not closed ({case.why})"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(corpus_server, case):
    with corpus_server.connect(timeout=5) as c:
        c.send(case.data)
        check_exchange(c, case, "whole")
    assert_serving(corpus_server)


# Trickled mode: one byte per send for the first TRICKLE_BYTES bytes of a
# case (all of every case but the four largest, so every split point of
# those is exercised), then the rest in at most TRICKLE_GROUPS groups, so
# the 5 KB cases take a tenth of a second.  RawConn sets TCP_NODELAY, so
# each send is its own segment, and the pause after each one lets the
# server read it before the next arrives (under strace, its recv() calls
# matched the sends one for one).  All 136 cases take about 3 s.
TRICKLE_BYTES = 256
TRICKLE_GROUPS = 64
TRICKLE_PAUSE = 0.0002


def trickle_pieces(data: bytes) -> list[bytes]:
    pieces = [data[i:i + 1] for i in range(min(len(data), TRICKLE_BYTES))]
    rest = data[TRICKLE_BYTES:]
    step = max(1, -(-len(rest) // TRICKLE_GROUPS))
    pieces += [rest[i:i + step] for i in range(0, len(rest), step)]
    return pieces


def test_trickle_pieces_cover_every_byte():
    for c in CASES:
        pieces = trickle_pieces(c.data)
        assert b"".join(pieces) == c.data, c.name
        assert len(pieces) >= min(len(c.data), TRICKLE_BYTES + 1), c.name
        assert len(pieces) <= TRICKLE_BYTES + TRICKLE_GROUPS, c.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_trickled(corpus_server, case):
    """The same answers, in full, when the request arrives a byte (or a small
    group) at a time with pauses: the incremental parser must not depend on
    how the bytes are split into reads."""
    with corpus_server.connect(timeout=5) as c:
        for piece in trickle_pieces(case.data):
            try:
                c.send(piece)
            except OSError:
                break  # the server answered an error and closed early: fine
            time.sleep(TRICKLE_PAUSE)
        check_exchange(c, case, "trickled")
    assert_serving(corpus_server)


def _body_level_error(case: Case) -> bool:
    """The head is valid and the error is in the chunked framing after it."""
    head = case.data.split(b"\r\n\r\n", 1)[0]
    return (case.name.startswith("chunk_") and case.statuses[0] >= 400
            and b"\r\nTransfer-Encoding: chunked" in head)


# A chunked body that turns out malformed (or over --max-request-size) after
# the head was dispatched gets its 400/413 when the app asks for the body
# (fixed in csrc/runtime/pn_worker.c, PN_CONN_REQUEST: the decode error no
# longer kills the connection before the bridge can answer).
BODY_ERROR_CASES = [c for c in CASES if _body_level_error(c)]


def test_body_error_cases_are_all_found():
    # The filter above must keep finding the corpus's chunked body errors.
    assert len(BODY_ERROR_CASES) >= 22, [c.name for c in BODY_ERROR_CASES]


@pytest.mark.parametrize("case", BODY_ERROR_CASES, ids=[c.name for c in BODY_ERROR_CASES])
def test_body_error_after_dispatch_gets_status(corpus_server, case):
    """The head first; the bad body only once the app waits in receive()."""
    head, sep, body = case.data.partition(b"\r\n\r\n")
    with corpus_server.connect(timeout=5) as c:
        c.send(head + sep)
        time.sleep(0.3)
        try:
            c.send(body)
        except OSError:
            pass  # answered and closed on the head alone: the checks below say so
        check_exchange(c, case, "body after dispatch")
