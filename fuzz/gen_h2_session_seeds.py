"""Write the seed corpus of fuzz/fuzz_h2_session.c into fuzz/corpus/h2_session/.

    .venv/bin/python fuzz/gen_h2_session_seeds.py   (needs h2, from requirements-test.txt)

Each seed is the target's five control bytes, then what an HTTP/2 client
sends after the connection preface (the target sends the preface itself).
Byte 0: bit 0 picks the worker with tight limits, bits 1-7 where the frames
are cut in two writes; bytes 1-4: the app's script (enum h2h_action in
tests/c/h2_harness.h, one per request in turn; bit 7 of byte 1: the client
reads nothing while it sends).  The conversations are made
by the h2 package's client (GET, POST with a body, many streams,
RST_STREAM, PING, SETTINGS, WINDOW_UPDATE, GOAWAY), plus a few built frame
by frame with hyperframe and hpack where h2 will not go (CONTINUATION,
malformed requests).  Deterministic: re-running rewrites the same files.
"""

from __future__ import annotations

import os

import hpack
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, SettingsFrame

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "h2_session")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# enum h2h_action (tests/c/h2_harness.h)
SMALL, TWO, REPLY500, ABORT, READ, LATER, BIG, TRAILERS, SHORT, LONG = range(10)
HOLD = 0x80  # in the first script byte: the client holds its reading


def control(script: list[int], tight: bool = False, cut: int = 0) -> bytes:
    """Byte 0 (cut: 0-127, the fraction of 128 sent in the first write) and the script."""
    assert len(script) == 4 and 0 <= cut < 128
    return bytes([(cut << 1) | int(tight)] + script)


def client() -> H2Connection:
    c = H2Connection(
        H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
    )
    c.initiate_connection()
    return c


def after_preface(c: H2Connection) -> bytes:
    out = c.data_to_send()
    assert out.startswith(PREFACE)
    return out[len(PREFACE) :]


def req(path: str = "/", method: str = "GET", extra: list | None = None) -> list:
    return [
        (b":method", method.encode()),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"test"),
    ] + (extra or [])


def seeds() -> dict[str, bytes]:
    s: dict[str, bytes] = {}

    c = client()
    c.send_headers(1, req("/"), end_stream=True)
    s["get"] = control([SMALL] * 4) + after_preface(c)

    c = client()
    c.send_headers(1, req("/", "HEAD"), end_stream=True)
    c.send_headers(3, req("/short"), end_stream=True)
    c.send_headers(5, req("/long"), end_stream=True)
    s["head_short_long"] = control([SMALL, SHORT, LONG, ABORT]) + after_preface(c)

    c = client()
    for i in range(12):
        c.send_headers(1 + 2 * i, req(f"/many/{i}?q={i}"), end_stream=True)
    s["many_streams"] = control([SMALL, TWO, TRAILERS, REPLY500], cut=64) + after_preface(c)

    c = client()
    body = bytes(range(256)) * 12
    c.send_headers(1, req("/upload", "POST", [(b"content-length", str(len(body)).encode())]))
    c.send_data(1, body[:1000])
    c.send_data(1, body[1000:], end_stream=True)
    s["post_length"] = control([READ] * 4, cut=40) + after_preface(c)

    c = client()
    c.send_headers(1, req("/chunks", "POST", [(b"content-type", b"text/plain")]))
    for i in range(5):
        c.send_data(1, b"piece %d;" % i)
    c.end_stream(1)
    s["post_unknown_length"] = control([READ, SMALL, SMALL, SMALL]) + after_preface(c)

    c = client()
    expect = [(b"expect", b"100-continue"), (b"content-length", b"5")]
    c.send_headers(1, req("/continue", "POST", expect))
    s["expect_continue"] = control([READ] * 4) + after_preface(c)

    c = client()
    c.send_headers(1, req("/big", "POST", [(b"content-length", b"3000")]))
    c.send_data(1, b"x" * 3000, end_stream=True)
    s["tight_413"] = control([READ] * 4, tight=True) + after_preface(c)

    c = client()
    c.send_headers(1, req("/", extra=[(b"x-long", b"v" * 300)]), end_stream=True)
    c.send_headers(3, req("/", extra=[(b"x-%d" % i, b"1") for i in range(10)]), end_stream=True)
    c.send_headers(5, req("/ok"), end_stream=True)
    s["tight_431"] = control([SMALL] * 4, tight=True) + after_preface(c)

    c = client()
    c.send_headers(1, req("/held"), end_stream=True)
    c.send_headers(3, req("/reset"), end_stream=True)
    c.reset_stream(3, ErrorCodes.CANCEL)
    c.send_headers(5, req("/held2"), end_stream=True)
    s["rst_stream"] = control([LATER, LATER, SMALL, TWO], cut=60) + after_preface(c)

    c = client()
    c.send_headers(1, req("/body-then-reset", "POST"))
    c.send_data(1, b"abc")
    c.reset_stream(1, ErrorCodes.CANCEL)
    s["rst_while_reading"] = control([READ] * 4, cut=50) + after_preface(c)

    c = client()
    c.ping(b"12345678")
    c.send_headers(1, req("/"), end_stream=True)
    c.ping(b"abcdefgh")
    s["ping"] = control([SMALL] * 4) + after_preface(c)

    c = client()
    c.update_settings(
        {
            SettingCodes.INITIAL_WINDOW_SIZE: 100,
            SettingCodes.MAX_FRAME_SIZE: 20000,
            SettingCodes.HEADER_TABLE_SIZE: 0,
            SettingCodes.ENABLE_PUSH: 0,
            SettingCodes.MAX_CONCURRENT_STREAMS: 10,
        }
    )
    c.send_headers(1, req("/settings"), end_stream=True)
    c.send_headers(3, req("/settings2"), end_stream=True)
    s["settings"] = control([SMALL, BIG, SMALL, SMALL]) + after_preface(c)

    c = client()
    c.send_headers(1, req("/big"), end_stream=True)
    c.increment_flow_control_window(200000)
    c.increment_flow_control_window(200000, stream_id=1)
    s["window_update_big"] = control([BIG] * 4, cut=30) + after_preface(c)

    # HOLD (bit 7 of byte 1): the client reads nothing while it sends.
    c = client()
    c.increment_flow_control_window(1 << 20)
    for i in range(4):
        c.send_headers(1 + 2 * i, req(f"/big/{i}"), end_stream=True)
        c.increment_flow_control_window(1 << 20, stream_id=1 + 2 * i)
    s["hold_big"] = control([BIG | HOLD, BIG, BIG, BIG]) + after_preface(c)

    c = client()
    for i in range(200):
        c.ping(b"%08d" % i)
    s["hold_ping_flood"] = control([SMALL | HOLD, SMALL, SMALL, SMALL]) + after_preface(c)

    c = client()
    c.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.send_headers(1, req("/zero-window"), end_stream=True)
    s["zero_window"] = control([BIG, SMALL, SMALL, SMALL]) + after_preface(c)

    c = client()
    c.send_headers(1, req("/"), end_stream=True)
    c.send_headers(3, req("/later"), end_stream=True)
    c.close_connection()
    s["goaway"] = control([SMALL, LATER, SMALL, SMALL]) + after_preface(c)

    c = client()
    c.send_headers(
        1,
        req("/cookies", extra=[(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"te", b"trailers")]),
        end_stream=True,
    )
    c.send_headers(3, req("*", "OPTIONS"), end_stream=True)
    c.send_headers(5, [(b":method", b"CONNECT"), (b":authority", b"example:443")], end_stream=True)
    s["cookies_options_connect"] = control([SMALL, TWO, SMALL, SMALL]) + after_preface(c)

    # Built frame by frame: a header block in three CONTINUATIONs, and
    # malformed requests (uppercase name, connection-specific field,
    # missing :path, a DATA longer than content-length).
    enc = hpack.Encoder()
    frames = SettingsFrame(0).serialize()
    block = enc.encode(req("/continuation", extra=[(b"x-pad", b"p" * 60)]))
    third = len(block) // 3
    frames += HeadersFrame(1, block[:third], flags=["END_STREAM"]).serialize()
    frames += ContinuationFrame(1, block[third : 2 * third]).serialize()
    frames += ContinuationFrame(1, block[2 * third :], flags=["END_HEADERS"]).serialize()
    s["continuation"] = control([SMALL] * 4) + frames

    enc = hpack.Encoder()
    whole = ["END_HEADERS", "END_STREAM"]

    def head(sid: int, fields: list, flags: list) -> bytes:
        return HeadersFrame(sid, enc.encode(fields), flags=flags).serialize()

    frames = SettingsFrame(0).serialize()
    frames += head(1, req("/", extra=[(b"X-Upper", b"1")]), whole)
    frames += head(3, req("/", extra=[(b"connection", b"close")]), whole)
    frames += head(5, [(b":method", b"GET"), (b":scheme", b"http")], whole)
    frames += head(7, req("/cl", "POST", [(b"content-length", b"2")]), ["END_HEADERS"])
    frames += DataFrame(7, b"toolong", flags=["END_STREAM"]).serialize()
    frames += head(9, req("/fine"), whole)
    s["malformed"] = control([READ, SMALL, SMALL, SMALL]) + frames
    return s


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(seeds().items()):
        assert len(data) <= 4096, name  # fuzz/build.sh runs with -max_len=4096
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds())} seeds in {OUT}")


if __name__ == "__main__":
    main()
