/*
 * Unit tests for pn_mime: the built-in table, mime.types syntax (comments,
 * blank lines, tabs, CRLF, long lines, invalid types, duplicates: the last
 * wins), lookup by the last extension ignoring case (dotfiles and trailing
 * dots have none), the charset rule, a table that grows, and the system's
 * /etc/mime.types when the machine has one.  Names are read from guard-page
 * copies, so an over-read crashes.
 */
#include "pn_mime.h"

#include "pn_test.h"

#include <stdio.h>
#include <string.h>

#define OCTET "application/octet-stream"

static void type_is(int line, const pn_mime_table *t, const char *name, const char *want)
{
    size_t n = 999;
    const char *got = pn_mime_lookup(t, pn_guard_copy(name, strlen(name)), strlen(name), &n);
    if (n != strlen(want) || memcmp(got, want, n) != 0) {
        fprintf(stderr, "  line %d: \"%s\" -> \"%.*s\", want \"%s\"\n", line, name, (int)n, got,
                want);
        pn_test_failed_checks++;
    } else {
        PN_CHECK(got[n] == '\0'); /* also usable as a C string */
    }
}

#define IS(t, name, want) type_is(__LINE__, t, name, want)

static pn_mime_table *table(const char *text)
{
    pn_mime_table *t = pn_mime_table_new(text, text ? strlen(text) : 0);
    PN_CHECK(t != NULL);
    return t;
}

PN_TEST(builtin)
{
    pn_mime_table *t = table(NULL);
    static const char *const want[][2] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"wasm", "application/wasm"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"ico", "image/vnd.microsoft.icon"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},
        {"otf", "font/otf"},
        {"pdf", "application/pdf"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
    };
    char name[64];
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(name, sizeof(name), "file.%s", want[i][0]);
        IS(t, name, want[i][1]);
    }
    IS(t, "file.exe", OCTET);
    pn_mime_table_free(t);
    pn_mime_table_free(NULL);
}

PN_TEST(extension_rules)
{
    pn_mime_table *t = table(NULL);
    IS(t, "a.tar.GZ", "application/gzip");
    IS(t, "a.gz.tar", OCTET);
    IS(t, "INDEX.HTML", "text/html; charset=utf-8");
    IS(t, "x.Css", "text/css; charset=utf-8");
    IS(t, "README", OCTET);
    IS(t, "", OCTET);
    IS(t, ".", OCTET);
    IS(t, "..", OCTET);
    IS(t, "a.", OCTET); /* trailing dot: empty extension */
    IS(t, "a.css.", OCTET);
    IS(t, ".bashrc", OCTET); /* a dotfile's name is not an extension */
    IS(t, ".css", OCTET);
    IS(t, "..css", OCTET);
    IS(t, ".bashrc.txt", "text/plain; charset=utf-8");
    IS(t, "...txt.css", "text/css; charset=utf-8");
    /* Only the last path component counts. */
    IS(t, "a/b.css", "text/css; charset=utf-8");
    IS(t, "dir.css/file", OCTET);
    IS(t, "dir.css/.js", OCTET);
    IS(t, "dir/", OCTET);
    IS(t, "a/b/c.d/e.png", "image/png");
    /* Bytes that are not ASCII letters are compared as they are. */
    IS(t, "a.cs\xd3", OCTET);
    IS(t, "a.CSS\n", OCTET);
    pn_mime_table_free(t);
    /* A NULL table answers octet-stream. */
    size_t n = 0;
    PN_CHECK(strcmp(pn_mime_lookup(NULL, "a.css", 5, &n), OCTET) == 0);
    PN_CHECK_EQ_INT(n, strlen(OCTET));
}

PN_TEST(syntax)
{
    pn_mime_table *t = table("# a comment line\n"
                             "\n"
                             "   \n"
                             "text/x-one\tone  one1\n"
                             "application/x-two two # a comment: notext\n"
                             "application/x-three\t\t\tthree\r\n"
                             "   application/x-four four\n"
                             "  # indented comment x-comment\n"
                             "application/x-hash h#sh\n"
                             "application/x-five\n" /* no extensions */
                             "image/X-Upper UPPER\n"
                             "TEXT/PLAIN shout\n"
                             "application/javascript oldjs\n"
                             "application/json jsonx\n"
                             "application/x-dotted a.b .c d/e\n"
                             "application/x-last last");
    IS(t, "a.one", "text/x-one; charset=utf-8");
    IS(t, "a.one1", "text/x-one; charset=utf-8");
    IS(t, "a.two", "application/x-two");
    IS(t, "a.notext", OCTET);
    IS(t, "a.comment:", OCTET);
    IS(t, "a.three", "application/x-three"); /* CRLF: the CR is whitespace */
    IS(t, "a.four", "application/x-four");
    IS(t, "a.x-comment", OCTET);
    IS(t, "a.h#sh", "application/x-hash"); /* '#' starts a comment only at a word's start */
    IS(t, "a.upper", "image/X-Upper");
    IS(t, "a.UpPeR", "image/X-Upper");
    IS(t, "a.shout", "TEXT/PLAIN; charset=utf-8");
    IS(t, "a.oldjs", "application/javascript; charset=utf-8");
    IS(t, "a.jsonx", "application/json");
    IS(t, "a.last", "application/x-last");       /* no final newline */
    IS(t, "a.html", "text/html; charset=utf-8"); /* the built-in table is still there */
    pn_mime_table_free(t);
}

PN_TEST(invalid_types_skipped)
{
    pn_mime_table *t = table("html bad1\n"
                             "text/ bad2\n"
                             "/html bad3\n"
                             "text/html/x bad4\n"
                             "text/ht(ml bad5\n"
                             "text/h\x01ml bad6\n"
                             "te\"xt/html bad7\n"
                             "text/html;charset=latin1 bad8\n"
                             "image/png good\n");
    for (int i = 1; i <= 8; i++) {
        char name[32];
        snprintf(name, sizeof(name), "x.bad%d", i);
        IS(t, name, OCTET);
    }
    IS(t, "x.good", "image/png");
    /* A NUL inside the text is a byte of a word like any other. */
    static const char nul[] = "image/png a\0b nulx\nimage/gif afternul\n";
    pn_mime_table *u = pn_mime_table_new(nul, sizeof(nul) - 1);
    PN_CHECK(u != NULL);
    IS(u, "x.nulx", "image/png");
    IS(u, "x.afternul", "image/gif");
    IS(u, "x.a", OCTET);
    pn_mime_table_free(u);
    pn_mime_table_free(t);
}

PN_TEST(duplicates_last_wins)
{
    pn_mime_table *t = table("text/x-first dup other\n"
                             "application/x-second dup\n"
                             "image/x-third DUP\n"
                             "text/x-mine html\n" /* overrides the built-in table */
                             "application/x-js js\n");
    IS(t, "a.dup", "image/x-third");
    IS(t, "a.other", "text/x-first; charset=utf-8");
    IS(t, "a.html", "text/x-mine; charset=utf-8");
    IS(t, "a.htm", "text/html; charset=utf-8");
    IS(t, "a.js", "application/x-js");
    IS(t, "a.mjs", "text/javascript; charset=utf-8");
    pn_mime_table_free(t);
}

PN_TEST(long_lines_and_many_entries)
{
    /* One line of 20000 extensions, then one too long to keep. */
    size_t cap = 20000 * 8 + 4096, n = 0;
    char *text = malloc(cap);
    PN_CHECK(text != NULL);
    if (!text)
        return;
    n += (size_t)snprintf(text + n, cap - n, "application/x-many");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(text + n, cap - n, "\te%d", i);
    n += (size_t)snprintf(text + n, cap - n, "\nimage/x-long ");
    for (int i = 0; i < 65; i++)
        text[n++] = 'q';
    n += (size_t)snprintf(text + n, cap - n, " short\n");
    pn_mime_table *t = pn_mime_table_new(text, n);
    PN_CHECK(t != NULL);
    char name[32];
    for (int i = 0; i < 20000; i += 7) {
        snprintf(name, sizeof(name), "f.E%d", i);
        IS(t, name, "application/x-many");
    }
    IS(t, "f.e19999", "application/x-many");
    IS(t, "f.e20000", OCTET);
    IS(t, "f.short", "image/x-long");
    char longname[80] = "f.";
    memset(longname + 2, 'q', 65);
    longname[67] = '\0';
    IS(t, longname, OCTET);
    longname[66] = '\0'; /* 64 bytes: the longest kept, and not in the table */
    IS(t, longname, OCTET);
    IS(t, "a.png", "image/png");
    pn_mime_table_free(t);
    free(text);
}

/* ASCII case-insensitive equality (no locale). */
static int same_ext(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* The system's table (Debian's media-types, which `make deps` installs). */
PN_TEST(system_mime_types)
{
    FILE *f = fopen("/etc/mime.types", "rb");
    if (!f) {
        printf("skip system_mime_types: no /etc/mime.types\n");
        return;
    }
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text), f);
    fclose(f);
    PN_CHECK(n > 0 && n < sizeof(text));
    pn_mime_table *t = pn_mime_table_new(text, n);
    PN_CHECK(t != NULL);
    if (!t)
        return;
    IS(t, "index.html", "text/html; charset=utf-8");
    IS(t, "app.js", "text/javascript; charset=utf-8");
    IS(t, "doc.pdf", "application/pdf");
    IS(t, "a.PNG", "image/png");
    IS(t, "a.unknownext", OCTET);
    IS(t, "a.cwl.json", "application/json");
    IS(t, "a.pcf.Z", OCTET); /* "Z" is not an extension of its own there */
    /* Every extension listed there has the type of the last line that lists it. */
    static struct {
        char ext[65], type[128];
    } pairs[8192];
    int exts = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *ws = NULL, *type = strtok_r(l, " \t\r", &ws);
        if (!type || type[0] == '#' || strlen(type) >= sizeof(pairs[0].type))
            continue;
        for (char *e = strtok_r(NULL, " \t\r", &ws); e; e = strtok_r(NULL, " \t\r", &ws)) {
            if (e[0] == '#')
                break;
            if (strchr(e, '.') || strlen(e) >= sizeof(pairs[0].ext) || exts == 8192)
                continue; /* "cwl.json": only last extensions are looked up */
            strcpy(pairs[exts].ext, e);
            strcpy(pairs[exts].type, type);
            exts++;
        }
    }
    for (int i = 0; i < exts; i++) {
        int later = 0;
        for (int j = i + 1; j < exts && !later; j++)
            later = same_ext(pairs[i].ext, pairs[j].ext);
        if (later)
            continue;
        char name[80];
        snprintf(name, sizeof(name), "x.%s", pairs[i].ext);
        size_t tn;
        const char *got = pn_mime_lookup(t, name, strlen(name), &tn);
        size_t want = strlen(pairs[i].type);
        if (tn < want || memcmp(got, pairs[i].type, want) != 0) {
            fprintf(stderr, "  %s: %s, want %s\n", name, got, pairs[i].type);
            PN_CHECK(0);
        }
    }
    PN_CHECK(exts > 1000);
    pn_mime_table_free(t);
}

int main(void)
{
    PN_RUN(builtin);
    PN_RUN(extension_rules);
    PN_RUN(syntax);
    PN_RUN(invalid_types_skipped);
    PN_RUN(duplicates_last_wins);
    PN_RUN(long_lines_and_many_entries);
    PN_RUN(system_mime_types);
    return pn_test_summary();
}
