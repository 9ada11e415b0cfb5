/*
 * pn_test.h — a tiny C unit-test harness for the protocol core.
 *
 * Each test file is one program: define tests with PN_TEST(name), list them
 * in main() with PN_RUN(name), end with `return pn_test_summary();`.  The
 * summary prints "N passed, N failed" (the plain closing line CI reads).
 *
 * pn_guard_copy() places input bytes so that they END exactly at an
 * unreadable (PROT_NONE) page: any read past the input faults at once, which
 * is how the tests prove the parsers never over-read.
 */
#ifndef PN_TEST_H
#define PN_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int pn_test_failed_checks;
static int pn_tests_passed, pn_tests_failed;

#define PN_TEST(name) static void test_##name(void)
#define PN_RUN(name)                                                                               \
    do {                                                                                           \
        int before_ = pn_test_failed_checks;                                                       \
        test_##name();                                                                             \
        if (pn_test_failed_checks == before_) {                                                    \
            pn_tests_passed++;                                                                     \
        } else {                                                                                   \
            pn_tests_failed++;                                                                     \
            fprintf(stderr, "FAIL %s\n", #name);                                                   \
        }                                                                                          \
    } while (0)

#define PN_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            pn_test_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define PN_CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    a_, b_);                                                                       \
            pn_test_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

/* Compare a (ptr, len) slice with a C string. */
#define PN_CHECK_SLICE(ptr, len, str)                                                              \
    do {                                                                                           \
        size_t l_ = strlen(str);                                                                   \
        if ((size_t)(len) != l_ || memcmp((ptr), (str), l_) != 0) {                                \
            fprintf(stderr, "%s:%d: slice %s != \"%s\" (got \"%.*s\")\n", __FILE__, __LINE__,      \
                    #ptr, str, (int)(len), (const char *)(ptr));                                   \
            pn_test_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

/* Guard-page placement.  Returns a pointer to a copy of p[0..n) whose last
 * byte is the last readable byte before a PROT_NONE page.  Valid until the
 * next pn_guard_copy() call.  Aborts on mmap failure.  Inline so that a
 * test program with no parser input (test_timer, test_worker) need not
 * use it. */
static char *pn_guard_region;
static size_t pn_guard_region_len;

static inline char *pn_guard_copy(const void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (n + page - 1) / page;
    if (data_pages == 0)
        data_pages = 1;
    if (pn_guard_region)
        munmap(pn_guard_region, pn_guard_region_len);
    pn_guard_region_len = (data_pages + 1) * page;
    pn_guard_region =
        mmap(NULL, pn_guard_region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pn_guard_region == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    char *guard = pn_guard_region + data_pages * page;
    if (mprotect(guard, page, PROT_NONE) != 0) {
        perror("mprotect");
        abort();
    }
    char *dst = guard - n;
    if (n)
        memcpy(dst, p, n);
    return dst;
}

static int pn_test_summary(void)
{
    if (pn_guard_region)
        munmap(pn_guard_region, pn_guard_region_len);
    printf("%d passed, %d failed\n", pn_tests_passed, pn_tests_failed);
    return pn_tests_failed ? 1 : 0;
}

#endif
