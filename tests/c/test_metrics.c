/*
 * Unit tests for the metrics table (pn_metrics.c): slots claimed and
 * released without losing totals, the histogram's bucket edges, method
 * names, counts written by a forked process seen by its parent, and two
 * threads each writing their own slot.
 */
#include "pn_metrics.h"

#include "pn_test.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

PN_TEST(methods_are_named_case_sensitively)
{
    PN_CHECK_EQ_INT(pn_metrics_method("GET", 3), PN_M_GET);
    PN_CHECK_EQ_INT(pn_metrics_method("HEAD", 4), PN_M_HEAD);
    PN_CHECK_EQ_INT(pn_metrics_method("POST", 4), PN_M_POST);
    PN_CHECK_EQ_INT(pn_metrics_method("PUT", 3), PN_M_PUT);
    PN_CHECK_EQ_INT(pn_metrics_method("DELETE", 6), PN_M_DELETE);
    PN_CHECK_EQ_INT(pn_metrics_method("PATCH", 5), PN_M_PATCH);
    PN_CHECK_EQ_INT(pn_metrics_method("OPTIONS", 7), PN_M_OPTIONS);
    PN_CHECK_EQ_INT(pn_metrics_method("get", 3), PN_M_OTHER);
    PN_CHECK_EQ_INT(pn_metrics_method("PROPFIND", 8), PN_M_OTHER);
    PN_CHECK_EQ_INT(pn_metrics_method("GETX", 4), PN_M_OTHER);
    PN_CHECK_EQ_INT(pn_metrics_class(204), 2);
    PN_CHECK_EQ_INT(pn_metrics_class(599), 5);
    PN_CHECK_EQ_INT(pn_metrics_class(0), 0);
    PN_CHECK_EQ_INT(pn_metrics_class(600), 0);
}

PN_TEST(durations_fall_into_le_buckets)
{
    pn_metrics *m = pn_metrics_new(2);
    PN_CHECK(m != NULL);
    int i = pn_metrics_claim(m);
    PN_CHECK_EQ_INT(i, 0);
    pn_metrics_slot *s = pn_metrics_slot_at(m, i);
    pn_metrics_request(s, PN_M_GET, 200, 1000000);       /* exactly 1 ms: le 0.001 */
    pn_metrics_request(s, PN_M_GET, 200, 1000001);       /* just over: le 0.0025 */
    pn_metrics_request(s, PN_M_POST, 404, 0);            /* le 0.001 */
    pn_metrics_request(s, PN_M_OTHER, 503, 11000000000); /* 11 s: +Inf */
    pn_metrics_request(s, 99, 0, 10000000000);           /* bad method: other; 10 s: le 10 */
    PN_CHECK_EQ_INT(pn_metrics_load(&s->duration[0]), 2);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->duration[1]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->duration[PN_M_NBUCKETS - 2]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->duration[PN_M_NBUCKETS - 1]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->requests[PN_M_GET][2]), 2);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->requests[PN_M_POST][4]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->requests[PN_M_OTHER][5]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->requests[PN_M_OTHER][0]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->duration_sum_ns), 1000000 + 1000001 + 21000000000ull);
    pn_metrics_free(m);
}

PN_TEST(a_released_slot_keeps_its_counters_and_clears_its_gauges)
{
    pn_metrics *m = pn_metrics_new(3);
    PN_CHECK_EQ_INT(pn_metrics_claim(m), 0);
    PN_CHECK_EQ_INT(pn_metrics_claim(m), 1);
    PN_CHECK_EQ_INT(pn_metrics_used(m), 2);
    pn_metrics_slot *s = pn_metrics_slot_at(m, 0);
    PN_CHECK(s != NULL);
    if (s == NULL)
        return;
    pn_metrics_bytes_in(s, 100);
    pn_metrics_conns(s, 3, 1);
    pn_metrics_set(&s->in_flight, 2);
    pn_metrics_early(s, 413);
    PN_CHECK_EQ_INT(pn_metrics_release(m, 0), 0);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->conns_open), 0);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->in_flight), 0);
    /* The replacement takes the lowest free slot and adds to its totals. */
    PN_CHECK_EQ_INT(pn_metrics_claim(m), 0);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->bytes_in), 100);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->conns_total), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->early[4]), 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->starts), 2);
    pn_metrics_bytes_in(s, 1);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->bytes_in), 101);
    PN_CHECK_EQ_INT(pn_metrics_claim(m), 2);
    PN_CHECK_EQ_INT(pn_metrics_claim(m), -1); /* all taken */
    PN_CHECK_EQ_INT(pn_metrics_release(m, 3), -1);
    PN_CHECK(pn_metrics_slot_at(m, 3) == NULL);
    pn_metrics_count_restart(m);
    PN_CHECK_EQ_INT(pn_metrics_restarts(m), 1);
    pn_metrics_free(m);
}

PN_TEST(the_hooks_do_nothing_without_a_slot)
{
    pn_metrics_bytes_in(NULL, 5);
    pn_metrics_bytes_out(NULL, 5);
    pn_metrics_conns(NULL, 1, 1);
    pn_metrics_early(NULL, 503);
    PN_CHECK(1);
}

PN_TEST(counts_written_by_a_forked_process_are_seen_by_its_parent)
{
    pn_metrics *m = pn_metrics_new(2);
    int i = pn_metrics_claim(m);
    pn_metrics_slot *s = pn_metrics_slot_at(m, i);
    pid_t pid = fork();
    if (pid == 0) {
        for (int k = 0; k < 1000; k++)
            pn_metrics_request(s, PN_M_PUT, 201, 2000);
        pn_metrics_bytes_out(s, 12345);
        _exit(0);
    }
    int status = 0;
    PN_CHECK(waitpid(pid, &status, 0) == pid);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->requests[PN_M_PUT][2]), 1000);
    PN_CHECK_EQ_INT(pn_metrics_load(&s->bytes_out), 12345);
    pn_metrics_free(m);
}

static void *writer(void *arg)
{
    pn_metrics_slot *s = arg;
    for (int k = 0; k < 100000; k++)
        pn_metrics_bytes_in(s, 1);
    return NULL;
}

PN_TEST(threads_writing_their_own_slots_lose_nothing)
{
    pn_metrics *m = pn_metrics_new(4);
    pthread_t t[2];
    pn_metrics_slot *s[2];
    for (int k = 0; k < 2; k++) {
        s[k] = pn_metrics_slot_at(m, pn_metrics_claim(m));
        pthread_create(&t[k], NULL, writer, s[k]);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    PN_CHECK_EQ_INT(pn_metrics_load(&s[0]->bytes_in) + pn_metrics_load(&s[1]->bytes_in), 200000);
    pn_metrics_free(m);
}

int main(void)
{
    PN_RUN(methods_are_named_case_sensitively);
    PN_RUN(durations_fall_into_le_buckets);
    PN_RUN(a_released_slot_keeps_its_counters_and_clears_its_gauges);
    PN_RUN(the_hooks_do_nothing_without_a_slot);
    PN_RUN(counts_written_by_a_forked_process_are_seen_by_its_parent);
    PN_RUN(threads_writing_their_own_slots_lose_nothing);
    return pn_test_summary();
}
