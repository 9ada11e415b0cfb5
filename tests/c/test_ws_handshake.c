/*
 * Unit tests for pn_ws_handshake: SHA-1 against the RFC 3174 vectors (and
 * every padding boundary), base64 against RFC 4648 §10, the RFC 6455 §1.3
 * accept example, request validation with exact statuses, subprotocol
 * lists, and permessage-deflate negotiation (RFC 7692 §7.1).  Requests are
 * parsed by pn_http1_parse_head from a guard-page copy, as the server does.
 */
#include "pn_ws_handshake.h"

#include "pn_test.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha1(const void *p, size_t n, const char *want)
{
    uint8_t d[20];
    char h[41];
    pn_sha1(n ? pn_guard_copy(p, n) : p, n, d);
    hex(d, 20, h);
    PN_CHECK_SLICE(h, 40, want);
}

PN_TEST(sha1_vectors)
{
    /* RFC 3174 §7.3 TEST1..TEST4, and the empty string. */
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
               "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    static char million[1000000];
    memset(million, 'a', sizeof million);
    check_sha1(million, sizeof million, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    char t4[640];
    for (int i = 0; i < 10; i++)
        memcpy(t4 + 64 * i, "0123456701234567012345670123456701234567012345670123456701234567", 64);
    check_sha1(t4, sizeof t4, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* Padding boundaries: 55/56 bytes (one or two final blocks), 63/64/65,
     * 119/120, 128.  Expected values from an independent implementation. */
    static const struct {
        size_t n;
        const char *want;
    } v[] = {
        {55, "ddf57317ef34bfee3b6df83d359098930eb278bc"},
        {56, "a0d492bb0fc889d0eca3bc137066ab6f4f74f369"},
        {63, "c55856749bef509bdfe6bfebfc7bf4e793e82132"},
        {64, "bede92be29c3874e1b54ddc77988d606fc857a8e"},
        {65, "b05a80522b053d6dc7e0a517d0e70212c7dad11f"},
        {119, "504e27376a6e0f0dba8295b85cb25dc4dfa17d23"},
        {120, "82134b02fb3f702491be9bed581eeab59334acb2"},
        {128, "a09133e6730ffe899efb70204cb5646cd5dc24ee"},
    };
    uint8_t buf[128];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)((i * 7 + 3) & 255);
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        check_sha1(buf, v[k].n, v[k].want);
}

PN_TEST(base64_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char b[16];
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(in[i]);
        size_t got = pn_base64_encode(n ? pn_guard_copy(in[i], n) : in[i], n, b);
        PN_CHECK_SLICE(b, got, out[i]);
        PN_CHECK_EQ_INT(b[got], 0);
    }
    static const uint8_t all[3] = {0xfb, 0xff, 0xbf};
    PN_CHECK_EQ_INT(pn_base64_encode(all, 3, b), 4);
    PN_CHECK_SLICE(b, 4, "+/+/");
}

PN_TEST(accept_key_rfc_example)
{
    char acc[29];
    pn_ws_accept_key(pn_guard_copy("dGhlIHNhbXBsZSBub25jZQ==", 24), 24, acc);
    PN_CHECK_SLICE(acc, strlen(acc), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- requests ---------------------------------------------------------- */

static pn_http1_header HS[32];
static pn_http1_request REQ;
static pn_ws_handshake H;

/* Parse `head` (must be a valid HTTP/1.x head) and run the check. */
static int check(const char *head, const pn_ws_deflate_policy *pol)
{
    pn_http1_limits lim = {8190, 65536, 32, 0};
    pn_http1_parser p;
    pn_http1_parser_init(&p, &lim, HS);
    size_t n = strlen(head);
    const char *g = pn_guard_copy(head, n);
    int rc = pn_http1_parse_head(&p, g, n, &REQ);
    PN_CHECK_EQ_INT(rc, PN_HTTP1_OK);
    if (rc != PN_HTTP1_OK)
        return 99;
    return pn_ws_handshake_check(&REQ, pol, &H);
}

#define BASE_NO_END                                                                                \
    "GET /chat HTTP/1.1\r\n"                                                                       \
    "Host: server.example.com\r\n"                                                                 \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Sec-WebSocket-Version: 13\r\n"

static const pn_ws_deflate_policy OFF = {0, 0, 0, 15, 15};

PN_TEST(rfc_example_request)
{
    /* RFC 6455 §1.3 (with §4.1's required fields). */
    PN_CHECK_EQ_INT(check(BASE_NO_END "Origin: http://example.com\r\n"
                                      "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
                          &OFF),
                    PN_WS_HS_OK);
    PN_CHECK_SLICE(H.accept, strlen(H.accept), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    PN_CHECK_EQ_INT(H.deflate.enabled, 0);
    PN_CHECK_EQ_INT(H.extensions_len, 0);
    pn_ws_list_iter it;
    const char *t;
    size_t tl;
    pn_ws_protocols_begin(&it, &REQ);
    PN_CHECK_EQ_INT(pn_ws_protocols_next(&it, &t, &tl), 1);
    PN_CHECK_SLICE(t, tl, "chat");
    PN_CHECK_EQ_INT(pn_ws_protocols_next(&it, &t, &tl), 1);
    PN_CHECK_SLICE(t, tl, "superchat");
    PN_CHECK_EQ_INT(pn_ws_protocols_next(&it, &t, &tl), 0);

    /* The 101 head, byte for byte. */
    pn_buf out = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_ws_handshake_write_101(&out, &H, "chat", 4), 0);
    PN_CHECK_SLICE(pn_buf_head(&out), pn_buf_live(&out),
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                   "Sec-WebSocket-Protocol: chat\r\n");
    pn_buf_clear(&out);
    PN_CHECK_EQ_INT(pn_ws_handshake_write_101(&out, &H, "bad proto", 9), PN_WS_HS_ERROR);
    PN_CHECK_EQ_INT(pn_buf_live(&out), 0);
    PN_CHECK_EQ_INT(pn_ws_handshake_write_101(&out, &H, NULL, 0), 0);
    PN_CHECK_SLICE(pn_buf_head(&out), pn_buf_live(&out),
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    pn_buf_free(&out);
}

PN_TEST(not_websocket)
{
    PN_CHECK_EQ_INT(check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &OFF), PN_WS_HS_NOT_WEBSOCKET);
    PN_CHECK_EQ_INT(
        check("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", &OFF),
        PN_WS_HS_NOT_WEBSOCKET);
    /* Upgrade lists (RFC 9110 §7.8) and case do not matter. */
    PN_CHECK_EQ_INT(check("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, WebSocket\r\n"
                          "Connection: keep-alive, UPGRADE\r\n"
                          "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          &OFF),
                    PN_WS_HS_OK);
}

static void expect_status(const char *head, int status)
{
    PN_CHECK_EQ_INT(check(head, &OFF), PN_WS_HS_ERROR);
    PN_CHECK_EQ_INT(H.status, status);
    PN_CHECK(H.reason != NULL);
}

PN_TEST(invalid_requests)
{
    expect_status("POST /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  "Content-Length: 0\r\n\r\n",
                  400);
    expect_status(
        "GET /chat HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        400);
    expect_status(
        "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        400);
    /* Version: anything but exactly one "13" → 426 (§4.2.2). */
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                  426);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                  426);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  426);
    expect_status(
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 130\r\n\r\n",
        426);
    /* Key: one, 24 characters, 22 base64 + "==" (16 bytes). */
    static const char *bad_keys[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZ===",
        "dGhlIHNhbXBsZSBub25j*Q==",
        "dGhlIHNhbXBsZSBub25jZQ-=",
        "dGhlIHNhbXBsZSBub25jZQAA", /* 18 bytes, no padding */
        "dGhlIHNhbXBsZQ==",         /* 10 bytes */
    };
    char head[512];
    for (size_t k = 0; k < sizeof bad_keys / sizeof bad_keys[0]; k++) {
        snprintf(head, sizeof head,
                 "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 bad_keys[k]);
        expect_status(head, 400);
    }
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400);
    expect_status(BASE_NO_END "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400);
    /* Subprotocols must be tokens. */
    expect_status(BASE_NO_END "Sec-WebSocket-Protocol: chat, super chat\r\n\r\n", 400);
    expect_status(BASE_NO_END "Sec-WebSocket-Protocol: \"chat\"\r\n\r\n", 400);
}

PN_TEST(subprotocol_lists)
{
    PN_CHECK_EQ_INT(check(BASE_NO_END "Sec-WebSocket-Protocol: a,, b ,\r\n"
                                      "X-Other: c\r\n"
                                      "Sec-WebSocket-Protocol: v2.chat\r\n\r\n",
                          &OFF),
                    PN_WS_HS_OK);
    const char *want[] = {"a", "b", "v2.chat"};
    pn_ws_list_iter it;
    const char *t;
    size_t tl;
    int k = 0;
    pn_ws_protocols_begin(&it, &REQ);
    while (pn_ws_protocols_next(&it, &t, &tl)) {
        PN_CHECK(k < 3);
        if (k < 3)
            PN_CHECK_SLICE(t, tl, want[k]);
        k++;
    }
    PN_CHECK_EQ_INT(k, 3);
    PN_CHECK_EQ_INT(check(BASE_NO_END "\r\n", &OFF), PN_WS_HS_OK);
    pn_ws_protocols_begin(&it, &REQ);
    PN_CHECK_EQ_INT(pn_ws_protocols_next(&it, &t, &tl), 0);
}

/* ---- permessage-deflate negotiation (RFC 7692 §7.1) -------------------- */

static const pn_ws_deflate_policy FULL = {1, 0, 0, 15, 15};
static const pn_ws_deflate_policy DEF = PN_WS_DEFLATE_POLICY_DEFAULT;

/* Negotiate `offer` under `pol`; check the response value (NULL = none). */
static void nego(const char *offer, const pn_ws_deflate_policy *pol, const char *want)
{
    char head[1024];
    snprintf(head, sizeof head, BASE_NO_END "Sec-WebSocket-Extensions: %s\r\n\r\n", offer);
    int rc = check(head, pol);
    PN_CHECK_EQ_INT(rc, PN_WS_HS_OK);
    if (rc != PN_WS_HS_OK)
        return;
    if (!want) {
        PN_CHECK_EQ_INT(H.deflate.enabled, 0);
        PN_CHECK_EQ_INT(H.extensions_len, 0);
        return;
    }
    PN_CHECK_EQ_INT(H.deflate.enabled, 1);
    if (!pn_ws_deflate_available())
        return;
    PN_CHECK_SLICE(H.extensions, H.extensions_len, want);
}

PN_TEST(deflate_negotiation)
{
    if (!pn_ws_deflate_available()) {
        /* Without zlib the extension is never agreed. */
        nego("permessage-deflate", &FULL, NULL);
        printf("deflate_negotiation: built without zlib, only the refusal is checked\n");
        return;
    }
    nego("permessage-deflate", &FULL, "permessage-deflate");
    PN_CHECK_EQ_INT(H.deflate.server_max_window_bits, 15);
    PN_CHECK_EQ_INT(H.deflate.client_max_window_bits, 15);
    PN_CHECK_EQ_INT(H.deflate.server_no_context_takeover, 0);
    PN_CHECK_EQ_INT(H.deflate.client_no_context_takeover, 0);
    /* What browsers send. */
    nego("permessage-deflate; client_max_window_bits", &FULL, "permessage-deflate");
    nego("permessage-deflate; client_max_window_bits", &DEF,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
    PN_CHECK_EQ_INT(H.deflate.server_max_window_bits, 12);
    PN_CHECK_EQ_INT(H.deflate.client_max_window_bits, 12);
    /* Without client_max_window_bits in the offer we may not limit the
     * client (§7.1.2.2), but we may announce our own window (§7.1.2.1). */
    nego("permessage-deflate", &DEF, "permessage-deflate; server_max_window_bits=12");
    PN_CHECK_EQ_INT(H.deflate.client_max_window_bits, 15);
    /* Offered limits are honoured: ours is lowered, never raised. */
    nego("permessage-deflate; server_max_window_bits=10", &FULL,
         "permessage-deflate; server_max_window_bits=10");
    nego("permessage-deflate; server_max_window_bits=14", &DEF,
         "permessage-deflate; server_max_window_bits=12");
    nego("permessage-deflate; client_max_window_bits=9", &DEF,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9");
    PN_CHECK_EQ_INT(H.deflate.client_max_window_bits, 9);
    nego("permessage-deflate; client_max_window_bits=15", &FULL,
         "permessage-deflate; client_max_window_bits=15");
    /* Quoted values are tokens once unescaped (RFC 6455 §9.1). */
    nego("permessage-deflate; server_max_window_bits=\"11\"", &FULL,
         "permessage-deflate; server_max_window_bits=11");
    nego("permessage-deflate; server_max_window_bits=\"1\\1\"", &FULL,
         "permessage-deflate; server_max_window_bits=11");
    /* Context takeover (§7.1.1). */
    nego("permessage-deflate; server_no_context_takeover; client_no_context_takeover", &FULL,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    PN_CHECK_EQ_INT(H.deflate.server_no_context_takeover, 1);
    PN_CHECK_EQ_INT(H.deflate.client_no_context_takeover, 1);
    static const pn_ws_deflate_policy NCT = {1, 1, 1, 15, 15};
    nego("permessage-deflate", &NCT,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    /* Case and whitespace. */
    nego(" Permessage-Deflate ;\tSERVER_NO_CONTEXT_TAKEOVER ", &FULL,
         "permessage-deflate; server_no_context_takeover");
    /* Declined offers (§7): unknown or duplicate parameters, bad values,
     * a value where none is allowed; the next offer is tried. */
    static const char *declined[] = {
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        /* zlib cannot write raw deflate with an 8-bit window */
        "permessage-deflate; server_max_window_bits=8",
        "x-webkit-deflate-frame",
    };
    for (size_t k = 0; k < sizeof declined / sizeof declined[0]; k++)
        nego(declined[k], &FULL, NULL);
    nego("permessage-deflate; server_max_window_bits=8, permessage-deflate; "
         "client_max_window_bits",
         &FULL, "permessage-deflate");
    nego("foo; bar=1, permessage-deflate", &FULL, "permessage-deflate");
    /* The first acceptable offer wins; later ones are only syntax-checked. */
    nego("permessage-deflate; server_max_window_bits=9, permessage-deflate", &FULL,
         "permessage-deflate; server_max_window_bits=9");
    /* Offers spread over two header lines. */
    PN_CHECK_EQ_INT(check(BASE_NO_END "Sec-WebSocket-Extensions: foo\r\n"
                                      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                          &FULL),
                    PN_WS_HS_OK);
    PN_CHECK_SLICE(H.extensions, H.extensions_len, "permessage-deflate");
    /* Client window 8 is fine (we inflate with a larger window). */
    nego("permessage-deflate; client_max_window_bits=8", &FULL,
         "permessage-deflate; client_max_window_bits=8");
    /* Policy off: nothing agreed, the header is still checked. */
    nego("permessage-deflate", &OFF, NULL);
    nego("permessage-deflate", NULL, NULL);

    /* The extension appears in the 101 head. */
    nego("permessage-deflate", &FULL, "permessage-deflate");
    pn_buf out = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_ws_handshake_write_101(&out, &H, NULL, 0), 0);
    PN_CHECK_SLICE(pn_buf_head(&out), pn_buf_live(&out),
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                   "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    pn_buf_free(&out);
}

PN_TEST(malformed_extensions_header)
{
    static const char *bad[] = {
        "permessage-deflate;",
        "permessage-deflate; ",
        "permessage-deflate; =1",
        "permessage-deflate; a=",
        "permessage-deflate; a=\"unterminated",
        "permessage-deflate; a=\"\"",
        "permessage deflate",
        ";",
        "foo; bar=\"a,b\"",
        "foo bar",
        "foo; a=1 b",
        "foo; a=\"x\\\"",
    };
    char head[512];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(head, sizeof head, BASE_NO_END "Sec-WebSocket-Extensions: %s\r\n\r\n", bad[k]);
        PN_CHECK_EQ_INT(check(head, &FULL), PN_WS_HS_ERROR);
        PN_CHECK_EQ_INT(H.status, 400);
        PN_CHECK_EQ_INT(H.deflate.enabled, 0);
        PN_CHECK_EQ_INT(H.extensions_len, 0);
    }
    /* Empty list elements are allowed (RFC 9110 §5.6.1). */
    PN_CHECK_EQ_INT(
        check(BASE_NO_END "Sec-WebSocket-Extensions: , foo ,, bar; x=\"y\"\r\n\r\n", &FULL),
        PN_WS_HS_OK);
}

int main(void)
{
    PN_RUN(sha1_vectors);
    PN_RUN(base64_vectors);
    PN_RUN(accept_key_rfc_example);
    PN_RUN(rfc_example_request);
    PN_RUN(not_websocket);
    PN_RUN(invalid_requests);
    PN_RUN(subprotocol_lists);
    PN_RUN(deflate_negotiation);
    PN_RUN(malformed_extensions_header);
    return pn_test_summary();
}
