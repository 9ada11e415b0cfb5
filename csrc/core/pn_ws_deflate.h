/*
 * pn_ws_deflate — the permessage-deflate extension (RFC 7692) with zlib raw
 * deflate: compress the messages we send, decompress the ones we receive.
 *
 * Protocol core: plain C, no Python.h.  The header does not include zlib.h;
 * the streams are opaque.  Built with zlib when PN_HAVE_ZLIB is defined (the
 * build defines it when pkg-config finds zlib); without it
 * pn_ws_deflate_available() is 0, the handshake never negotiates the
 * extension, and the other functions return PN_WS_DEFLATE_UNAVAILABLE.
 *
 * Ownership and threads: a pn_ws_deflate belongs to one connection and so
 * to the worker thread that owns it.  Its two zlib streams are allocated on
 * first use (a connection that never compresses pays nothing) and kept until
 * pn_ws_deflate_free(); per message they are only reset, never reallocated.
 *
 * Negotiated parameters (RFC 7692 §7.1), from the handshake:
 *   server_no_context_takeover  our compressor is reset after every message
 *   client_no_context_takeover  our decompressor is reset after every message
 *   server_max_window_bits      window of our compressor (9..15; zlib cannot
 *                               write raw deflate with an 8-bit window, so the
 *                               handshake never agrees to 8)
 *   client_max_window_bits      window the peer compresses with; we inflate
 *                               with at least 9 bits (a 2^N window always
 *                               reads data made with a smaller one)
 *
 * Memory per connection (zlib's formulas): compressor
 * 2^(server_max_window_bits+2) + 2^(mem_level+9) bytes, decompressor
 * 2^client_max_window_bits + ~7 KiB.  With 15 bits and mem_level 8 that is
 * ~256 KiB + ~40 KiB, so the default policy uses 12 bits and mem_level 5
 * (~32 KiB + ~11 KiB), the same trade-off the Python websockets library makes.
 */
#ifndef PN_WS_DEFLATE_H
#define PN_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "pn_buf.h"

enum {
    PN_WS_DEFLATE_OK = 0,
    PN_WS_DEFLATE_NOMEM = -1,       /* close with 1011 */
    PN_WS_DEFLATE_TOO_BIG = -2,     /* decompressed message over the cap: close 1009 */
    PN_WS_DEFLATE_BAD_DATA = -3,    /* not a valid deflate stream: close 1002 */
    PN_WS_DEFLATE_UNAVAILABLE = -4, /* built without zlib */
};

/* What the handshake agreed (RFC 7692 §7.1).  enabled = 0: not negotiated. */
typedef struct pn_ws_deflate_params {
    int enabled;
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits; /* 9..15 */
    int client_max_window_bits; /* 8..15 */
} pn_ws_deflate_params;

/* What the server is willing to agree to; see pn_ws_handshake_check(). */
typedef struct pn_ws_deflate_policy {
    int enabled;                    /* --ws-per-message-deflate */
    int server_no_context_takeover; /* 1: always reset our compressor */
    int client_no_context_takeover; /* 1: ask the client to reset its compressor */
    int server_max_window_bits;     /* largest window we compress with, 9..15 */
    int client_max_window_bits;     /* largest window we ask the client to use,
                                       when its offer lets us ask (8..15) */
} pn_ws_deflate_policy;

/* The default policy: see the memory note above. */
#define PN_WS_DEFLATE_POLICY_DEFAULT                                                               \
    {                                                                                              \
        1, 0, 0, 12, 12                                                                            \
    }
#define PN_WS_DEFLATE_LEVEL 6 /* zlib's default level (--ws-deflate-level's default) */
#define PN_WS_DEFLATE_MEM_LEVEL 5

typedef struct pn_ws_deflate {
    pn_ws_deflate_params params;
    int level, mem_level;
    void *tx;          /* z_stream *, compressor, NULL until first use */
    void *rx;          /* z_stream *, decompressor, NULL until first use */
    uint64_t rx_total; /* decompressed bytes of the current message */
    uint64_t rx_in;    /* compressed bytes of the current message */
} pn_ws_deflate;

int pn_ws_deflate_available(void);

/* Set up for one connection (allocates nothing yet).  level: zlib level
 * 1..9 (or -1 for zlib's default); mem_level: 1..9. */
void pn_ws_deflate_init(pn_ws_deflate *d, const pn_ws_deflate_params *params, int level,
                        int mem_level);
void pn_ws_deflate_free(pn_ws_deflate *d);

/* Compress one whole message in[0..n) and APPEND the frame payload to out:
 * deflate with a sync flush, the trailing 00 00 ff ff removed (RFC 7692
 * §7.2.1).  Send it as one frame (or several) with RSV1 on the first.  With
 * server_no_context_takeover the compressor is reset afterwards.  The
 * payload is never empty: an empty message gives at least 0x00 (§7.2.3.6). */
int pn_ws_deflate_message(pn_ws_deflate *d, const void *in, size_t n, pn_buf *out);

/* Decompress the next piece in[0..n) of a received compressed message and
 * APPEND the output to out.  fin = 1 on the message's last piece: the
 * 00 00 ff ff tail is fed too (RFC 7692 §7.2.2), and with
 * client_no_context_takeover the decompressor is reset.  More than
 * max_message decompressed bytes in this message (0 = no limit) stops at
 * once with PN_WS_DEFLATE_TOO_BIG: a small input cannot make us allocate
 * more than max_message (+ one step of 16 KiB).  After any error the
 * connection must be failed; the state is not usable for more messages. */
int pn_ws_inflate(pn_ws_deflate *d, const void *in, size_t n, int fin, pn_buf *out,
                  uint64_t max_message);

#endif
