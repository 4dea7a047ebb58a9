/* relay/hist: a fixed log2 histogram for metrics (batch sizes, latencies).
 *
 * Bucket i counts values v with 2^(i-1) < v <= 2^i (bucket 0: v <= 1); the
 * last bucket also takes everything larger.  Plain counters: the owner
 * provides any locking. */
#ifndef ALCOVE_RELAY_HIST_H
#define ALCOVE_RELAY_HIST_H

#include <stdint.h>

#define RELAY_HIST_BUCKETS 24

typedef struct relay_hist {
    uint64_t bucket[RELAY_HIST_BUCKETS];
    uint64_t count;
    uint64_t sum;
} relay_hist;

static inline void relay_hist_add(relay_hist *h, uint64_t v)
{
    unsigned i = 0;
    while (i < RELAY_HIST_BUCKETS - 1 && v > (1ull << i))
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

#endif
