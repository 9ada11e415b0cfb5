"""Request-smuggling and conformance corpus, run against the real server.

tests/corpus/http1_requests.txt holds the raw requests (see the format at
its top), each with the exact responses expected on one connection and
whether the server must then close it or keep serving.  The policy behind
every expectation is docs/http1-policy.md.

A case passes when, on a fresh connection:
  * the responses are exactly the listed statuses, in order (and, where
    given, with exactly the listed echoed body: that is where the server
    thought the request body ended);
  * "close": the server then closes with no further bytes;
  * "keep": a further GET on the same connection is answered 200.
And after each case the server still serves a new connection.
"""

from __future__ import annotations

import codecs
import re
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


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(corpus_server, case):
    with corpus_server.connect(timeout=5) as c:
        c.send(case.data)
        got = []
        for i, want in enumerate(case.statuses):
            try:
                resp = c.read_response()
            except ConnectionClosed as e:
                pytest.fail(f"{case.name}: closed after {got} (wanted {case.statuses}); "
                            f"partial {e.partial[:200]!r}; rule: {case.why}")
            got.append(resp.status)
            assert resp.status == want, (case.name, got, case.statuses, resp.body[:200], case.why)
            if case.bodies[i] is not None:
                assert resp.body == case.bodies[i], (case.name, resp.body[:200])
            if resp.status >= 400:
                assert (resp.header("connection") or "").lower() == "close", resp.headers
        if case.keep:
            c.send(build_request("GET", "/"))
            assert c.read_response().status == 200, case.name
        else:
            assert c.wait_closed(3), f"{case.name}: connection not closed ({case.why})"
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
TRICKLE = [c for c in CASES if len(c.data) < 600]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name) for c in TRICKLE],
)
def test_corpus_case_trickled(corpus_server, case):
    """The first answer is the same when the request arrives one byte per
    segment: the incremental parser must not depend on how bytes are split."""
    with corpus_server.connect(timeout=5) as c:
        for i in range(len(case.data)):
            try:
                c.send(case.data[i:i + 1])
            except OSError:
                break  # the server answered and closed early: fine
        try:
            resp = c.read_response()
        except ConnectionClosed as e:
            if _body_level_error(case) and not e.partial:
                pytest.fail(f"{case.name}: body error closed without its status")
            pytest.fail(f"{case.name}: closed without a response when trickled "
                        f"(partial {e.partial[:100]!r})")
        assert resp.status == case.statuses[0], (case.name, resp.status)
        if case.bodies[0] is not None:
            assert resp.body == case.bodies[0]


BODY_ERROR_CASES = [c for c in CASES if _body_level_error(c)]


@pytest.mark.parametrize("case", BODY_ERROR_CASES[:3], ids=[c.name for c in BODY_ERROR_CASES[:3]])
def test_body_error_after_dispatch_gets_status(corpus_server, case):
    """The head first; the bad body only once the app waits in receive()."""
    import time

    head, sep, body = case.data.partition(b"\r\n\r\n")
    with corpus_server.connect(timeout=5) as c:
        c.send(head + sep)
        time.sleep(0.3)
        c.send(body)
        resp = c.read_response()
        assert resp.status == case.statuses[0]
        assert c.wait_closed(3)
