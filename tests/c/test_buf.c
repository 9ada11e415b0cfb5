/*
 * Unit tests for pn_buf: the read cursor, reuse of consumed space before
 * growth, decimal formatting, and what shrink/clear keep.  Appended bytes
 * come from guard-page copies, so an append that reads past its input
 * faults.
 */
#include "pn_buf.h"

#include "pn_test.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static int append_guarded(pn_buf *b, const char *s)
{
    size_t n = strlen(s);
    return pn_buf_append(b, pn_guard_copy(s, n), n);
}

#define CHECK_LIVE(b, want) PN_CHECK_SLICE(pn_buf_head(&(b)), pn_buf_live(&(b)), want)

PN_TEST(appended_bytes_are_live_in_order)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(append_guarded(&b, "hello, "), 0);
    PN_CHECK_EQ_INT(append_guarded(&b, "world"), 0);
    PN_CHECK_EQ_INT(pn_buf_append_str(&b, "!"), 0);
    CHECK_LIVE(b, "hello, world!");
    PN_CHECK_EQ_INT(b.off, 0);
    PN_CHECK(b.cap >= b.len);
    PN_CHECK(pn_buf_tail(&b) == b.data + 13);
    PN_CHECK_EQ_INT(pn_buf_space(&b), b.cap - 13);
    pn_buf_free(&b);
}

PN_TEST(appending_nothing_allocates_nothing)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_buf_append(&b, "x", 0), 0);
    PN_CHECK_EQ_INT(pn_buf_append_str(&b, ""), 0);
    PN_CHECK(b.data == NULL);
    PN_CHECK_EQ_INT(b.cap, 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
}

PN_TEST(consume_moves_the_cursor_and_keeps_the_rest)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "GET / HTTP/1.1\r\n");
    char *before = b.data;
    pn_buf_consume(&b, 4);
    CHECK_LIVE(b, "/ HTTP/1.1\r\n");
    PN_CHECK_EQ_INT(b.off, 4);
    /* No copy: the bytes stay where they were (slices into them survive). */
    PN_CHECK(b.data == before);
    PN_CHECK(pn_buf_head(&b) == before + 4);
    pn_buf_free(&b);
}

PN_TEST(consuming_everything_resets_to_an_empty_buffer_at_offset_zero)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "abc");
    size_t cap = b.cap;
    pn_buf_consume(&b, 1);
    pn_buf_consume(&b, 2);
    PN_CHECK_EQ_INT(b.off, 0);
    PN_CHECK_EQ_INT(b.len, 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK_EQ_INT(pn_buf_space(&b), cap);
    /* The next append starts at the front again. */
    append_guarded(&b, "xy");
    PN_CHECK(pn_buf_head(&b) == b.data);
    CHECK_LIVE(b, "xy");
    pn_buf_free(&b);
}

PN_TEST(compact_moves_live_bytes_to_the_front)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "0123456789");
    pn_buf_consume(&b, 6);
    pn_buf_compact(&b);
    PN_CHECK_EQ_INT(b.off, 0);
    PN_CHECK_EQ_INT(b.len, 4);
    CHECK_LIVE(b, "6789");
    pn_buf_compact(&b); /* already at the front: nothing changes */
    CHECK_LIVE(b, "6789");
    pn_buf_free(&b);
}

PN_TEST(reserve_reuses_consumed_space_before_growing)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_buf_reserve(&b, 100), 0);
    size_t cap = b.cap;
    char fill[300];
    memset(fill, 'a', sizeof(fill));
    fill[cap - 1] = 'z';
    pn_buf_append(&b, fill, cap); /* full */
    pn_buf_consume(&b, cap - 1);  /* one live byte at the very end */
    PN_CHECK_EQ_INT(pn_buf_space(&b), 0);
    char *data = b.data;
    PN_CHECK_EQ_INT(pn_buf_reserve(&b, cap - 1), 0);
    /* No allocation (ASan's realloc always moves): the front was reclaimed. */
    PN_CHECK(b.data == data);
    PN_CHECK_EQ_INT(b.cap, cap);
    PN_CHECK_EQ_INT(b.off, 0);
    CHECK_LIVE(b, "z");
    PN_CHECK(pn_buf_space(&b) >= cap - 1);
    pn_buf_free(&b);
}

PN_TEST(reserve_grows_and_keeps_the_live_bytes)
{
    pn_buf b = PN_BUF_INIT;
    char fill[200];
    memset(fill, 'a', sizeof(fill));
    memcpy(fill + 198, "me", 2);
    pn_buf_append(&b, fill, sizeof(fill));
    pn_buf_consume(&b, 198); /* most of the buffer is consumed space */
    size_t cap = b.cap;
    /* Exactly what a doubled allocation holds besides the live bytes: only
     * true if the live bytes moved to the front as it grew. */
    size_t extra = 4 * cap - 2;
    PN_CHECK_EQ_INT(pn_buf_reserve(&b, extra), 0);
    PN_CHECK_EQ_INT(b.cap, 4 * cap);
    PN_CHECK(pn_buf_space(&b) >= extra);
    CHECK_LIVE(b, "me");
    /* Everything reserved can be appended without another allocation. */
    char *data = b.data;
    char *big = malloc(extra);
    memset(big, 'b', extra);
    PN_CHECK_EQ_INT(pn_buf_append(&b, big, extra), 0);
    PN_CHECK(b.data == data);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 2 + extra);
    PN_CHECK(memcmp(pn_buf_head(&b), "mebbb", 5) == 0);
    free(big);
    pn_buf_free(&b);
}

PN_TEST(an_impossible_reserve_fails_with_enomem_and_loses_nothing)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "still here");
    size_t cap = b.cap;
    /* Past what doubling can reach: refused before any allocation (a huge
     * realloc would abort under ASan). */
    PN_CHECK_EQ_INT(pn_buf_reserve(&b, SIZE_MAX / 2 + 2), -ENOMEM);
    PN_CHECK_EQ_INT(pn_buf_append(&b, "x", SIZE_MAX / 2 + 2), -ENOMEM);
    PN_CHECK_EQ_INT(b.cap, cap);
    CHECK_LIVE(b, "still here");
    pn_buf_free(&b);
}

PN_TEST(append_u64_writes_plain_decimal)
{
    pn_buf b = PN_BUF_INIT;
    pn_buf_append_u64(&b, 0);
    CHECK_LIVE(b, "0");
    pn_buf_clear(&b);
    pn_buf_append_u64(&b, 7);
    pn_buf_append_str(&b, ",");
    pn_buf_append_u64(&b, 10);
    pn_buf_append_str(&b, ",");
    pn_buf_append_u64(&b, 1234567890);
    CHECK_LIVE(b, "7,10,1234567890");
    pn_buf_clear(&b);
    pn_buf_append_u64(&b, UINT64_MAX);
    CHECK_LIVE(b, "18446744073709551615");
    pn_buf_free(&b);
}

PN_TEST(clear_empties_but_keeps_the_allocation)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "abcdef");
    pn_buf_consume(&b, 2);
    char *data = b.data;
    size_t cap = b.cap;
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK_EQ_INT(b.off, 0);
    PN_CHECK(b.data == data);
    PN_CHECK_EQ_INT(b.cap, cap);
    pn_buf_free(&b);
}

PN_TEST(shrink_frees_only_an_empty_buffer_larger_than_keep)
{
    pn_buf b = PN_BUF_INIT;
    pn_buf_reserve(&b, 4096);
    append_guarded(&b, "live");
    pn_buf_shrink(&b, 256); /* live bytes: kept */
    PN_CHECK(b.data != NULL);
    CHECK_LIVE(b, "live");
    pn_buf_consume(&b, 4);
    pn_buf_shrink(&b, b.cap); /* not larger than keep: kept */
    PN_CHECK(b.data != NULL);
    pn_buf_shrink(&b, 256); /* empty and larger: released */
    PN_CHECK(b.data == NULL);
    PN_CHECK_EQ_INT(b.cap, 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    /* Usable again afterwards. */
    append_guarded(&b, "again");
    CHECK_LIVE(b, "again");
    pn_buf_free(&b);
}

PN_TEST(free_releases_and_leaves_an_empty_buffer)
{
    pn_buf b = PN_BUF_INIT;
    append_guarded(&b, "x");
    pn_buf_free(&b);
    PN_CHECK(b.data == NULL);
    PN_CHECK_EQ_INT(b.off + b.len + b.cap, 0);
    pn_buf_free(&b); /* twice is harmless */
}

int main(void)
{
    PN_RUN(appended_bytes_are_live_in_order);
    PN_RUN(appending_nothing_allocates_nothing);
    PN_RUN(consume_moves_the_cursor_and_keeps_the_rest);
    PN_RUN(consuming_everything_resets_to_an_empty_buffer_at_offset_zero);
    PN_RUN(compact_moves_live_bytes_to_the_front);
    PN_RUN(reserve_reuses_consumed_space_before_growing);
    PN_RUN(reserve_grows_and_keeps_the_live_bytes);
    PN_RUN(an_impossible_reserve_fails_with_enomem_and_loses_nothing);
    PN_RUN(append_u64_writes_plain_decimal);
    PN_RUN(clear_empties_but_keeps_the_allocation);
    PN_RUN(shrink_frees_only_an_empty_buffer_larger_than_keep);
    PN_RUN(free_releases_and_leaves_an_empty_buffer);
    return pn_test_summary();
}
