/*
 * pn_compress — response encoders and request decoders (gzip, zstd, br),
 * and the decision of whether a response should be compressed at all.
 *
 * Protocol core: plain C, no Python.h.  Each codec is optional at build time
 * (PN_HAVE_ZLIB, PN_HAVE_ZSTD, PN_HAVE_BROTLI); without any of them the core
 * still compiles and every codec reports itself unavailable.
 *
 * Files: pn_compress.c (names, the pool, the decoders' life cycle), one file
 * per codec behind the ops table of pn_compress_codec.h (pn_codec_gzip.c,
 * pn_codec_zstd.c, pn_codec_br.c; a stub table when the library is absent),
 * and pn_compress_policy.c (should this response be compressed?).
 *
 * Threading and ownership
 * -----------------------
 * A pn_compress_pool belongs to ONE worker thread: the worker creates it at
 * start, and only that thread calls any function below with it or with an
 * encoder taken from it.  There is no global mutable state and no lock.  An
 * encoder is taken from the pool for one response and given back when that
 * response ends, so concurrent streaming responses on one worker each get
 * their own encoder; idle encoders are kept (at most `max_idle` per codec)
 * and reset, not re-created, for the next response.  After warm-up a
 * response therefore costs no allocation (see docs/compression.md for the
 * measured numbers).  Brotli has no reset call: its state is re-created per
 * response, but through an allocator that recycles the previous state's
 * blocks from a per-encoder cache, so that is allocation-free too.
 *
 * How the bridge uses this, per response
 * --------------------------------------
 *   Once per worker:
 *     pn_compress_pool_new(&pool, &opts)         opts from the config
 *   Once per config (validation, before workers start):
 *     pn_codec_parse_order(cfg->compression_order, order, &norder, ...)
 *     pn_compress_types_valid(cfg->compression_types)
 *
 *   On http.response.start (status, headers):
 *     pn_compress_resp r; pn_compress_resp_init(&r, status, is_head);
 *     for each response header: pn_compress_resp_header(&r, name, nlen, value, vlen);
 *   On the FIRST body message (the head is still unsent; single-message
 *   responses know their exact size there):
 *     r.body_size = more_body ? (declared Content-Length or -1) : len(body);
 *     if (cfg->compression && pn_compress_eligible(&policy, &r)) {
 *         add "Vary: Accept-Encoding" (unless pn_vary_has_accept_encoding)
 *         codec = pn_accept_encoding_choose(...) (pn_accept_encoding.h)
 *         if (codec != PN_CODEC_IDENTITY) {
 *             enc = pn_encoder_get(pool, codec, more_body ? PN_SIZE_UNKNOWN : len);
 *             NULL -> send uncompressed (out of memory is not the client's fault)
 *             add "Content-Encoding: <pn_codec_name(codec)>", drop the app's
 *             Content-Length, rewrite a strong ETag with pn_etag_weaken()
 *         }
 *     }
 *     A body that goes out unencoded (identity, NULL above, a file sent
 *     whole, the answer to a Range request) keeps the app's ETag and
 *     Content-Length exactly: so the bridge holds those two headers back
 *     until this point, and only then writes them in one form or the other.
 *   For each body message while enc != NULL:
 *     pn_encoder_write(enc, body, len, more_body ? PN_FLUSH_SYNC : PN_FLUSH_FINISH, &out)
 *     -> send the bytes appended to `out` (they may be empty for an empty
 *        flush; skip a zero-length chunk, which would end a chunked body).
 *     A single-message response: Content-Length = the bytes appended.
 *   When the response ends (finished, aborted, client gone):
 *     pn_encoder_put(enc)                        always, exactly once
 *
 * PN_FLUSH_SYNC makes everything written so far decodable by the client
 * before the stream ends (server-sent events keep working); PN_FLUSH_NONE
 * lets the encoder buffer (better ratio, use it when the bridge itself will
 * flush soon); PN_FLUSH_FINISH ends the stream.  After FINISH or an error the
 * encoder only accepts pn_encoder_put().
 *
 * Request bodies (--decompress-requests): pn_decoder_new() per request with
 * Content-Encoding gzip|zstd|br, pn_decoder_write() per received piece,
 * PN_DECODE_TOO_BIG -> 413, PN_DECODE_BAD -> 400, pn_decoder_free() at the
 * end.  Decoders are allocated per request: decompressing requests is opt-in
 * and rare, so they are not pooled.
 *
 * Errors: functions return 0 (or a documented non-negative status) or a
 * negative errno (-ENOMEM, -EINVAL).  Nothing here logs.
 */
#ifndef PN_COMPRESS_H
#define PN_COMPRESS_H

#include "pn_buf.h"

#include <stddef.h>
#include <stdint.h>

/* Content codings, RFC 9110 §8.4.1.  Values are stable (array indexes). */
typedef enum pn_codec {
    PN_CODEC_IDENTITY = 0,
    PN_CODEC_GZIP = 1,
    PN_CODEC_ZSTD = 2,
    PN_CODEC_BR = 3,
} pn_codec;
#define PN_CODEC_COUNT 4

#define PN_SIZE_UNKNOWN (-1)

/* "gzip", "zstd", "br", "identity" (the Content-Encoding token). */
const char *pn_codec_name(pn_codec c);
/* 1 if this build can encode and decode c (identity is always available). */
int pn_codec_available(pn_codec c);
/* The compiled-in codecs in the default preference order, comma-separated,
 * e.g. "zstd,br,gzip" ("" without any).  A static string; for
 * pounce._pounce.CODECS and `pounce --version`. */
const char *pn_compress_codecs(void);
/* Codec from a coding token (case-insensitive; "x-gzip" is gzip, RFC 9110
 * §8.4.1.3).  Returns -1 for an unknown token.  Identity is not a codec here. */
int pn_codec_from_token(const char *s, size_t n);

/* Parse --compression-order ("zstd, br ,gzip"): codecs in preference order.
 * Unknown names and duplicates are -EINVAL (and bad, badlen point at the
 * offending token); codecs this build lacks are accepted and left out, so one
 * config works with any build.  `order` needs PN_CODEC_COUNT entries. */
int pn_codec_parse_order(const char *s, pn_codec *order, size_t *norder, const char **bad,
                         size_t *badlen);

/* ---- Encoders --------------------------------------------------------- */

typedef struct pn_compress_opts {
    int gzip_level;     /* 1..9, zlib */
    int zstd_level;     /* 1..19 */
    int brotli_quality; /* 0..11 */
    int max_idle;       /* idle encoders kept per codec; 0 picks 4 */
} pn_compress_opts;

/* Defaults for dynamic content: cheap levels that still compress JSON/HTML
 * 5-10x (measured in docs/compression.md). */
#define PN_COMPRESS_OPTS_DEFAULT                                                                   \
    {                                                                                              \
        6, 3, 4, 4                                                                                 \
    }

/* Window for responses of unknown size (streams): 2^19 = 512 KiB, which
 * bounds the memory a long-lived stream holds (zstd's default would be 2 MiB
 * at level 3).  Responses of known size get windows fitted to the size. */
#define PN_COMPRESS_STREAM_WINDOW_LOG 19

typedef struct pn_compress_pool pn_compress_pool;
typedef struct pn_encoder pn_encoder;

typedef enum pn_flush {
    PN_FLUSH_NONE = 0,   /* buffer as the encoder likes */
    PN_FLUSH_SYNC = 1,   /* all input so far becomes decodable output now */
    PN_FLUSH_FINISH = 2, /* end of stream: write the trailer */
} pn_flush;

/* Create / destroy a worker's pool.  Levels are clamped to their ranges. */
int pn_compress_pool_new(pn_compress_pool **out, const pn_compress_opts *opts);
void pn_compress_pool_free(pn_compress_pool *pool);

/* Take an encoder for one response.  `size` is the EXACT total input size
 * when known (a single-message response), else PN_SIZE_UNKNOWN; it sizes
 * the window and zstd writes it into the frame header, so a body of another
 * size spread over several writes fails with -EINVAL (one FINISH write of
 * the whole body is always fine).  Returns NULL when the codec is
 * unavailable or memory runs out. */
pn_encoder *pn_encoder_get(pn_compress_pool *pool, pn_codec codec, int64_t size);

/* Compress p[0..n) and append the output to `out` (growing it).  0, or
 * -ENOMEM, or -EINVAL (codec error, write after finish, size mismatch);
 * on error the encoder is dead and `out` may hold a partial stream. */
int pn_encoder_write(pn_encoder *e, const void *p, size_t n, pn_flush mode, pn_buf *out);

/* Give the encoder back to its pool (finished or not). */
void pn_encoder_put(pn_encoder *e);

pn_codec pn_encoder_codec(const pn_encoder *e);

/* Counters for tests, benchmarks and metrics, since the pool was made:
 * encoders created, taken and destroyed, and the allocations zlib and brotli
 * made through the pool's allocator hooks (libzstd's are not visible
 * without its experimental API; bench/compress_micro.c counts every one). */
typedef struct pn_compress_stats {
    uint64_t created, taken, destroyed;
    uint64_t lib_allocs;
} pn_compress_stats;
void pn_compress_pool_stats(const pn_compress_pool *pool, pn_compress_stats *st);

/* ---- Decoders (request bodies) ---------------------------------------- */

typedef struct pn_decoder pn_decoder;

enum {
    PN_DECODE_MORE = 0,    /* consumed everything; the stream is not finished */
    PN_DECODE_DONE = 1,    /* the stream ended cleanly (at `last`) */
    PN_DECODE_TOO_BIG = 2, /* decoded size would exceed max_out: answer 413 */
    PN_DECODE_BAD = 3,     /* corrupt or truncated data, trailing garbage: 400 */
};

/* A decoder for one request body, producing at most max_out bytes in total
 * (0 = no cap; the bridge always passes --max-decompressed-size).  -EINVAL
 * for an unavailable codec, -ENOMEM.  zstd accepts RFC 8878 frames only
 * (no pre-1.0 legacy formats), and its verdict does not depend on how the
 * body is split across pn_decoder_write calls. */
int pn_decoder_new(pn_decoder **out, pn_codec codec, uint64_t max_out);
/* Feed the next received piece; `last` marks the end of the request body.
 * Appends decoded bytes to `out`.  Returns a PN_DECODE_* status or -ENOMEM.
 * A stream may hold several concatenated gzip members or zstd frames. */
int pn_decoder_write(pn_decoder *d, const void *p, size_t n, int last, pn_buf *out);
uint64_t pn_decoder_total(const pn_decoder *d);
void pn_decoder_free(pn_decoder *d);

/* ---- Should this response be compressed? ------------------------------ */

typedef struct pn_compress_policy {
    int64_t min_size; /* --compression-min-size */
    /* --compression-types: extra media types, comma-separated "type/sub";
     * a subtype "*" matches the whole type.  May be NULL. */
    const char *types;
} pn_compress_policy;

/* What the policy needs to know about a response; filled from its status
 * and headers.  Pointers are borrowed from the caller's header storage and
 * must stay valid while the struct is used. */
typedef struct pn_compress_resp {
    int status;
    int is_head;
    int has_content_encoding; /* the app already encoded it */
    int no_transform;         /* Cache-Control: no-transform, RFC 9111 §5.2.2.6 */
    int has_content_range;
    int64_t body_size;        /* exact total if known, else PN_SIZE_UNKNOWN */
    const char *content_type; /* NULL when absent */
    size_t content_type_len;
} pn_compress_resp;

void pn_compress_resp_init(pn_compress_resp *r, int status, int is_head);
/* Note one response header (name case-insensitive).  Sets the fields above
 * from Content-Encoding, Cache-Control, Content-Type, Content-Range and
 * Content-Length (the latter only as a size, when body_size is unknown). */
void pn_compress_resp_header(pn_compress_resp *r, const char *name, size_t nlen, const char *value,
                             size_t vlen);

/* 1 if compressing could help this response (independent of the client's
 * Accept-Encoding), 0 if it must go out unchanged.  When 1 the response must
 * carry Vary: Accept-Encoding even if this client gets identity (RFC 9110
 * §12.5.5), because a cache would otherwise serve one coding to everyone. */
int pn_compress_eligible(const pn_compress_policy *pol, const pn_compress_resp *r);

/* 1 if the media type (parameters allowed) is worth compressing: any text
 * type, JSON, +json, JavaScript, XML, +xml (incl. image/svg+xml), or one
 * listed in `extra`. */
int pn_compress_type_ok(const char *ct, size_t n, const char *extra);
/* 0 if every entry of a --compression-types value is a "type/sub" media
 * type without parameters (subtype "*" allowed; an empty list too), else
 * -EINVAL. */
int pn_compress_types_valid(const char *extra);

/* 1 if a Cache-Control value lists no-transform. */
int pn_cache_control_no_transform(const char *v, size_t n);
/* 1 if a Vary value already covers Accept-Encoding (listed, or "*"). */
int pn_vary_has_accept_encoding(const char *v, size_t n);
/* Append the ETag to send with a compressed body: a strong tag "x" becomes
 * W/"x" (RFC 9110 §8.8.3: the encoded bytes differ, so it can no longer be
 * strong), a weak one is copied unchanged.  0 or -ENOMEM. */
int pn_etag_weaken(const char *v, size_t n, pn_buf *out);

#endif
