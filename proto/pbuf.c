/* A ProtobufCAllocator with a byte budget.
 *
 * Each block is malloc'd with a header in front that records the block's
 * full size (header included), so free can give exactly that much back to
 * the budget.  The header is as large as max_align_t, so the pointer handed
 * to protobuf-c keeps malloc's alignment.
 *
 * Blocks from this allocator must be freed through it: pass &b->alloc to
 * *__free_unpacked() as well, never NULL. */
#include "pbuf.h"

#include <stdint.h>
#include <stdlib.h>

typedef union block_hdr {
    size_t size;
    max_align_t align;
} block_hdr;

static void *budget_alloc(void *data, size_t size)
{
    alcove_pb_budget *b = data;
    block_hdr *h;
    size_t total;

    if (size > SIZE_MAX - sizeof(block_hdr)) {
        b->exhausted = 1;
        return NULL;
    }
    total = size + sizeof(block_hdr);
    /* used <= budget always holds, so the subtraction cannot wrap. */
    if (total > b->budget - b->used) {
        b->exhausted = 1;
        return NULL;
    }
    h = malloc(total);
    if (h == NULL) {
        return NULL;
    }
    h->size = total;
    b->used += total;
    return h + 1;
}

static void budget_free(void *data, void *ptr)
{
    alcove_pb_budget *b = data;
    block_hdr *h;

    if (ptr == NULL) {
        return;
    }
    h = (block_hdr *)ptr - 1;
    b->used -= h->size;
    free(h);
}

void alcove_pb_budget_init(alcove_pb_budget *b, size_t budget)
{
    b->alloc.alloc = budget_alloc;
    b->alloc.free = budget_free;
    b->alloc.allocator_data = b;
    b->budget = budget;
    b->used = 0;
    b->exhausted = 0;
}

size_t alcove_pb_budget_for(size_t len)
{
    if (len > (SIZE_MAX - 4096) / 8) {
        return SIZE_MAX;
    }
    return 8 * len + 4096;
}
