/* A budgeted ProtobufCAllocator: protobuf-c unpacking of outside input runs
 * under it, so no frame can make us allocate more than `budget` bytes in
 * total (a small multiple of the frame's length, chosen by the caller).
 * When the budget is exceeded the allocation fails, protobuf-c's unpack
 * returns NULL, and `exhausted` is set so the caller can count the reason. */
#ifndef ALCOVE_PBUF_H
#define ALCOVE_PBUF_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct alcove_pb_budget {
    ProtobufCAllocator alloc; /* pass &b->alloc to *__unpack() */
    size_t budget;
    size_t used;
    int exhausted;
} alcove_pb_budget;

/* Initialise with a total byte budget.  The allocator uses malloc/free and
 * accounts each block (with its size header) against the budget.  The
 * allocator points back at *b, so b must stay where it is while in use, and
 * a message unpacked with &b->alloc must be freed with
 * *__free_unpacked(msg, &b->alloc) (never NULL: the blocks carry a header).
 * A failed unpack frees what it allocated, leaving used back at 0. */
void alcove_pb_budget_init(alcove_pb_budget *b, size_t budget);

/* The budget the relay and client use for one message of `len` bytes:
 * 8 * len + 4096 (SIZE_MAX if that would overflow). */
size_t alcove_pb_budget_for(size_t len);

#endif
