/*
 * pn_static_http — see pn_static_http.h.
 *
 * Dates are converted with the proleptic Gregorian calendar through a day
 * count (days since 1970-01-01) computed from 400-year eras, so no libc
 * time function, time zone or locale is involved and negative times work.
 */
#include "pn_static_http.h"

#include "pn_http_token.h"

#include <string.h>

/* ---- dates ------------------------------------------------------------ */

static const char wday3[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}; /* 1970-01-01 */
static const char *const wday_long[7] = {"Thursday", "Friday",  "Saturday", "Sunday",
                                         "Monday",   "Tuesday", "Wednesday"};
static const char month3[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The range pn_http_date_format can write: 0000-01-01 to 9999-12-31 23:59:59. */
#define DATE_MIN INT64_C(-62167219200)
#define DATE_MAX INT64_C(253402300799)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (m 1..12); eras of 400 years (146097
 * days) starting on March 1st, so the leap day is the last of its year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void pn_http_date_format(char out[PN_HTTP_DATE_LEN + 1], int64_t t)
{
    if (t < DATE_MIN)
        t = DATE_MIN;
    if (t > DATE_MAX)
        t = DATE_MAX;
    int64_t days = floor_div(t, 86400), secs = t - days * 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    /* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7 IMF-fixdate) */
    memcpy(out, wday3[(int)(days - floor_div(days, 7) * 7)], 3);
    memcpy(out + 3, ", ", 2);
    put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, month3[m - 1], 3);
    out[11] = ' ';
    put2(out + 12, (int)(y / 100));
    put2(out + 14, (int)(y % 100));
    out[16] = ' ';
    put2(out + 17, (int)(secs / 3600));
    out[19] = ':';
    put2(out + 20, (int)(secs / 60 % 60));
    out[22] = ':';
    put2(out + 23, (int)(secs % 60));
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* Exactly n ASCII digits at s, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned)((unsigned char)s[i] - '0');
        if (c > 9)
            return -1;
        v = v * 10 + (int)c;
    }
    return v;
}

/* The month of a 3-letter name (case-sensitive: RFC 9110 §5.6.7), 1..12, or -1. */
static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month3[i], 3) == 0)
            return i + 1;
    return -1;
}

static int is_wday3(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, wday3[i], 3) == 0)
            return 1;
    return 0;
}

/* "hh:mm:ss" (8 bytes) into seconds of the day, or -1.  A leap second
 * (:60) is accepted and counts as the next minute's first. */
static int64_t time_of_day(const char *s)
{
    if (s[2] != ':' || s[5] != ':')
        return -1;
    int h = digits(s, 2), mi = digits(s + 3, 2), sec = digits(s + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;
    return (int64_t)h * 3600 + mi * 60 + sec;
}

static int civil_time(int64_t y, int m, int d, int64_t tod, int64_t *out)
{
    if (y < 0 || m < 1 || d < 1 || d > days_in_month(y, m) || tod < 0)
        return -1;
    *out = days_from_civil(y, m, d) * 86400 + tod;
    return 0;
}

/* The weekday is checked to be a name but not against the date: a client's
 * wrong weekday names the same instant (as nginx and Python's email.utils
 * read it). */
int pn_http_date_parse(const char *s, size_t n, int64_t *unix_seconds)
{
    pn_http_trim(&s, &n);
    if (n == 29 && s[3] == ',') {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (!is_wday3(s) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
            memcmp(s + 25, " GMT", 4) != 0)
            return -1;
        return civil_time(digits(s + 12, 4), month_of(s + 8), digits(s + 5, 2), time_of_day(s + 17),
                          unix_seconds);
    }
    if (n == 24 && s[3] == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994" (day " 6" or "06") */
        if (!is_wday3(s) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
            return -1;
        int d = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
        return civil_time(digits(s + 20, 4), month_of(s + 4), d, time_of_day(s + 11), unix_seconds);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    for (int i = 0; i < 7; i++) {
        size_t w = strlen(wday_long[i]);
        if (n != w + 24 || memcmp(s, wday_long[i], w) != 0)
            continue;
        const char *p = s + w;
        if (p[0] != ',' || p[1] != ' ' || p[4] != '-' || p[8] != '-' || p[11] != ' ' ||
            memcmp(p + 20, " GMT", 4) != 0)
            return -1;
        /* A two-digit year: 70-99 is 19xx, 00-69 20xx.  RFC 9110 §5.6.7
         * asks for "not more than 50 years ahead of now"; a fixed pivot
         * keeps the parser free of the clock, and this form is long dead. */
        int yy = digits(p + 9, 2);
        if (yy < 0)
            return -1;
        return civil_time(yy + (yy >= 70 ? 1900 : 2000), month_of(p + 5), digits(p + 2, 2),
                          time_of_day(p + 12), unix_seconds);
    }
    return -1;
}

/* ---- ETag ------------------------------------------------------------- */

static size_t put_hex(char *p, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    memcpy(p, tmp + sizeof(tmp) - n, n);
    return n;
}

size_t pn_static_etag(char out[PN_ETAG_MAX], int64_t mtime_ns, uint64_t size)
{
    /* At most 1 + 16 + 1 + 16 + 1 = 35 bytes. */
    char *p = out;
    *p++ = '"';
    p += put_hex(p, (uint64_t)mtime_ns); /* before 1970: the two's complement */
    *p++ = '-';
    p += put_hex(p, size);
    *p++ = '"';
    return (size_t)(p - out);
}

/* ---- conditionals and Range --------------------------------------------- */

/* The first field line named `name` (case-insensitive) and how many there are. */
static const pn_http1_header *field(const pn_http1_header *h, size_t nh, const char *name,
                                    size_t name_len, size_t *count)
{
    const pn_http1_header *first = NULL;
    *count = 0;
    for (size_t i = 0; i < nh; i++) {
        if (pn_http_ieq(h[i].name, h[i].name_len, name, name_len)) {
            if (!first)
                first = &h[i];
            (*count)++;
        }
    }
    return first;
}

/* An entity-tag (RFC 9110 §8.8.3) split into weakness and opaque-tag. */
typedef struct {
    int weak;
    const char *tag; /* the opaque-tag, quotes included */
    size_t len;
} etag_ref;

static int is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f); /* %x21 / %x23-7E / obs-text */
}

/* Parse an entity-tag at v[*i..n); 0 and *i past it, or -1. */
static int etag_at(const char *v, size_t n, size_t *i, etag_ref *e)
{
    size_t p = *i;
    e->weak = 0;
    if (n - p >= 2 && v[p] == 'W' && v[p + 1] == '/') {
        e->weak = 1;
        p += 2;
    }
    if (p >= n || v[p] != '"')
        return -1;
    size_t q = p + 1;
    while (q < n && v[q] != '"') {
        if (!is_etagc((unsigned char)v[q]))
            return -1;
        q++;
    }
    if (q >= n)
        return -1;
    e->tag = v + p;
    e->len = q + 1 - p;
    *i = q + 1;
    return 0;
}

/* Whether a list field (If-Match, If-None-Match: "*" / #entity-tag) over
 * all its lines has "*" or an entity-tag matching m's (strong compare when
 * `strong`, RFC 9110 §8.8.3.2).  The list is scanned by hand because an
 * opaque-tag may contain ','.  A malformed element matches nothing; the
 * scan resumes after the next ','. */
static int list_matches(const pn_http1_header *h, size_t nh, const char *name, size_t name_len,
                        const etag_ref *mine, int strong)
{
    for (size_t k = 0; k < nh; k++) {
        if (!pn_http_ieq(h[k].name, h[k].name_len, name, name_len))
            continue;
        const char *v = h[k].value;
        size_t n = h[k].value_len, i = 0;
        while (i < n) {
            if (v[i] == ',' || pn_http_is_ows(v[i])) {
                i++;
                continue;
            }
            etag_ref e;
            size_t j = i;
            int ok;
            if (v[i] == '*') {
                j = i + 1;
                ok = 1;
                e.weak = 0;
                e.tag = NULL;
            } else {
                ok = etag_at(v, n, &j, &e) == 0;
            }
            /* The element must end here: OWS then ',' or the end. */
            while (j < n && pn_http_is_ows(v[j]))
                j++;
            if (j < n && v[j] != ',')
                ok = 0;
            if (ok) {
                if (!e.tag)
                    return 1; /* "*": the representation exists */
                if ((!strong || (!e.weak && !mine->weak)) &&
                    pn_http_eq(e.tag, e.len, mine->tag, mine->len))
                    return 1;
            }
            while (j < n && v[j] != ',')
                j++;
            i = j;
        }
    }
    return 0;
}

/* A date field with exactly one line holding a valid HTTP-date; 0 or -1
 * (absent, repeated or invalid: RFC 9110 §13.1.3 says to ignore it). */
static int date_field(const pn_http1_header *h, size_t nh, const char *name, size_t name_len,
                      int64_t *t)
{
    size_t count;
    const pn_http1_header *f = field(h, nh, name, name_len, &count);
    if (count != 1)
        return -1;
    return pn_http_date_parse(f->value, f->value_len, t);
}

enum { RANGE_IGNORE, RANGE_OK, RANGE_UNSATISFIABLE };

/* The Range field value v (RFC 9110 §14.1.2) against size: RANGE_OK with
 * [*off, *off + *len), RANGE_UNSATISFIABLE (416), or RANGE_IGNORE (not a
 * single well-formed byte range: the whole representation is sent). */
static int byte_range(const char *v, size_t n, uint64_t size, uint64_t *off, uint64_t *len)
{
    size_t p = pn_http_iprefix(v, n, PN_STRLIT("bytes="));
    if (!p)
        return RANGE_IGNORE;
    const char *spec = NULL, *el;
    size_t spec_len = 0, el_len, pos = 0;
    while (pn_http_list_next(v + p, n - p, &pos, &el, &el_len)) {
        if (el_len == 0)
            continue; /* empty list elements are allowed (RFC 9110 §5.6.1) */
        if (spec)
            return RANGE_IGNORE; /* several ranges: not served (documented) */
        spec = el;
        spec_len = el_len;
    }
    if (!spec)
        return RANGE_IGNORE;
    const char *dash = memchr(spec, '-', spec_len);
    if (!dash)
        return RANGE_IGNORE;
    size_t a_len = (size_t)(dash - spec), b_len = spec_len - a_len - 1;
    uint64_t a, b;
    if (a_len == 0) {
        /* suffix-range "-n": the last n bytes */
        if (pn_http_parse_u64(dash + 1, b_len, &b) != 0)
            return RANGE_IGNORE;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        if (b > size)
            b = size;
        *off = size - b;
        *len = b;
        return RANGE_OK;
    }
    if (pn_http_parse_u64(spec, a_len, &a) != 0)
        return RANGE_IGNORE;
    if (b_len == 0) {
        b = UINT64_MAX; /* "a-": to the end */
    } else {
        if (pn_http_parse_u64(dash + 1, b_len, &b) != 0 || a > b)
            return RANGE_IGNORE;
    }
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    if (b > size - 1)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return RANGE_OK;
}

/* If-Range (RFC 9110 §13.1.5): whether it lets the Range apply.  An
 * entity-tag must match strongly; a date must equal Last-Modified.  Several
 * lines or anything else: no. */
static int if_range_holds(const pn_http1_header *f, size_t count, const etag_ref *mine,
                          int64_t mtime)
{
    if (count != 1)
        return 0;
    const char *v = f->value;
    size_t n = f->value_len, i = 0;
    if (n && (v[0] == '"' || (n >= 2 && v[0] == 'W' && v[1] == '/'))) {
        etag_ref e;
        if (etag_at(v, n, &i, &e) != 0 || i != n)
            return 0;
        return !e.weak && !mine->weak && pn_http_eq(e.tag, e.len, mine->tag, mine->len);
    }
    int64_t t;
    return pn_http_date_parse(v, n, &t) == 0 && t == mtime;
}

void pn_static_eval(const pn_http1_header *h, size_t nh, int is_get, const pn_static_meta *m,
                    pn_static_result *r)
{
    etag_ref mine = {0, m->etag, m->etag_len};
    if (mine.len >= 2 && mine.tag[0] == 'W' && mine.tag[1] == '/') {
        mine.weak = 1;
        mine.tag += 2;
        mine.len -= 2;
    }
    size_t count;
    int64_t t;
    r->off = r->len = 0;

    /* RFC 9110 §13.2.2, steps 1-4. */
    if (field(h, nh, PN_STRLIT("if-match"), &count)) {
        if (!list_matches(h, nh, PN_STRLIT("if-match"), &mine, 1)) {
            r->status = 412;
            return;
        }
    } else if (date_field(h, nh, PN_STRLIT("if-unmodified-since"), &t) == 0 && m->mtime > t) {
        r->status = 412;
        return;
    }
    if (field(h, nh, PN_STRLIT("if-none-match"), &count)) {
        if (list_matches(h, nh, PN_STRLIT("if-none-match"), &mine, 0)) {
            r->status = 304;
            return;
        }
    } else if (date_field(h, nh, PN_STRLIT("if-modified-since"), &t) == 0 && m->mtime <= t) {
        r->status = 304;
        return;
    }

    /* Step 5: Range, for GET only (RFC 9110 §14.2), and a single Range line. */
    const pn_http1_header *range = field(h, nh, PN_STRLIT("range"), &count);
    if (is_get && range && count == 1) {
        size_t ir_count;
        const pn_http1_header *ir = field(h, nh, PN_STRLIT("if-range"), &ir_count);
        if (!ir || if_range_holds(ir, ir_count, &mine, m->mtime)) {
            uint64_t off = 0, len = 0;
            switch (byte_range(range->value, range->value_len, m->size, &off, &len)) {
            case RANGE_OK:
                r->status = 206;
                r->off = off;
                r->len = len;
                return;
            case RANGE_UNSATISFIABLE:
                r->status = 416;
                return;
            default:
                break;
            }
        }
    }
    r->status = 200;
    r->len = m->size;
}
