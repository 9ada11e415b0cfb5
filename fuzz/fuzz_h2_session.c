/*
 * fuzz_h2_session.c — libFuzzer target for the HTTP/2 session glue
 * (csrc/runtime/pn_h2.c): frames in, stream events out.  A real worker
 * (pn_worker.h, --http auto, cleartext) gets a connection that opens with
 * the HTTP/2 connection preface, then the fuzzer's bytes; a stub app
 * (tests/c/h2_harness.h, shared with tests/c/test_h2.c) answers the
 * requests through the streams' ops.
 *
 * Input: byte 0 picks the worker (bit 0: one with tight limits: 3 streams,
 * 1 KiB windows, 256-byte header lists, 8 fields, 2000-byte bodies, a
 * 4 KiB write buffer) and where the frames are cut in two writes (bits
 * 1-7: a fraction of their length; the worker runs between them); bytes
 * 1-4 are the app's script: each request takes the next of them (mod
 * H2H_NACTIONS) to choose how it is answered: at once (a small body; two
 * pieces; reply(500); abort; 100 KiB waiting on on_drain; trailers; a body
 * shorter or longer than its content-length), after reading its body, or
 * later, once the worker is quiet (with the next script byte); bit 7 of
 * byte 1 makes the client hold its reading until it has sent everything
 * (or both directions are stuck).  The rest is what the client sends after
 * the preface.
 *
 * Checked, besides ASan/UBSan/leaks (and the harness's checks of every
 * request that reaches the app and of every frame the server sends): the
 * server's frames are well-formed and no larger than the client allows,
 * its header blocks decode (nghttp2's HPACK inflater) to valid responses;
 * every stream the app holds is named by on_close once, or handed back;
 * and once the client has closed its socket the worker lets the
 * connection go within 2 s, with no stream left with the app.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A failed check names itself, then traps (libFuzzer saves the input). */
#define H2H_CHECK(c)                                                                               \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#include "../tests/c/h2_harness.h"

static h2h harnesses[2]; /* [1]: tight limits */

static void harness_start(h2h *h, int tight)
{
    pn_config_defaults(&h->cfg);
    h->cfg.access_log = 1; /* to the harness's sink */
    h->cfg.http = PN_HTTP_AUTO;
    if (tight) {
        h->cfg.h2_max_concurrent_streams = 3;
        h->cfg.h2_initial_window_size = 1024;
        h->cfg.max_header_size = 256;
        h->cfg.max_headers = 8;
        h->cfg.max_request_size = 2000;
        h->cfg.write_buffer_size = 4096;
    }
    h2h_start(h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    harness_start(&harnesses[0], 0);
    harness_start(&harnesses[1], 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    h2h *h = &harnesses[data[0] & 1];
    h->script = data + 1;
    h->script_len = 4;
    h->script_pos = 0;
    const uint8_t *frames = data + 5;
    size_t n = size - 5;
    size_t cut = n * (data[0] >> 1) / 128;

    h2h_connect(h);
    /* Bit 7 of the first script byte: the client reads nothing until the
     * server has taken all it sent (the server's output backs up). */
    h->hold = (data[1] & 0x80) != 0;
    if (h2h_send_raw(h, H2H_PREFACE, H2H_PREFACE_LEN) == 0 && h2h_send_raw(h, frames, cut) == 0) {
        h2h_pump(h, 0);
        h2h_send_raw(h, frames + cut, n - cut);
    }
    h2h_settle(h, 200);
    h->hold = 0;
    h2h_settle(h, 200);
    /* The app answers what it kept (as after an await), and the worker
     * sends it. */
    h2h_answer_later(h);
    h2h_settle(h, 200);
    /* The client goes away: whatever it sent, and whatever the app still
     * holds, the connection ends and every held stream hears of it. */
    shutdown(h->fd, SHUT_WR);
    h2h_settle(h, 50);
    h2h_close_client(h);
    uint64_t deadline = h2h_now_ms() + 2000;
    while (pn_worker_connections(h->w) > 0 && h2h_now_ms() < deadline)
        h2h_pump(h, 1);
    H2H_CHECK(pn_worker_connections(h->w) == 0);
    H2H_CHECK(h2h_held(h) == 0);
    h->script = NULL;
    return 0;
}
