/* Checks shared by the protobuf unpacking targets (header only): unpack a
 * message under the relay's budget (proto/pbuf.h) exactly as the relay and
 * the client do, and hold the budget allocator to its promises. */
#ifndef ALCOVE_FUZZ_PB_H
#define ALCOVE_FUZZ_PB_H

#include "fuzz_common.h"

#include "pbuf.h"

/* An unlimited allocator that accounts blocks the way pbuf.c does (size
 * plus a max_align_t-sized header) and remembers the peak: protobuf-c
 * allocates scratch space while it parses (slabs of scanned fields, oneof
 * members it then replaces), so the peak, not what stays allocated, is what
 * a budget must cover. */
typedef struct fuzz_peak {
    ProtobufCAllocator alloc;
    size_t used, peak;
} fuzz_peak;

typedef union fuzz_peak_hdr {
    size_t size;
    max_align_t align;
} fuzz_peak_hdr;

static inline void *fuzz_peak_alloc(void *data, size_t size)
{
    fuzz_peak *pk = data;
    fuzz_peak_hdr *h = malloc(size + sizeof *h);
    if (h == NULL)
        return NULL;
    h->size = size + sizeof *h;
    pk->used += h->size;
    if (pk->used > pk->peak)
        pk->peak = pk->used;
    return h + 1;
}

static inline void fuzz_peak_free(void *data, void *ptr)
{
    fuzz_peak *pk = data;
    fuzz_peak_hdr *h;
    if (ptr == NULL)
        return;
    h = (fuzz_peak_hdr *)ptr - 1;
    pk->used -= h->size;
    free(h);
}

static inline void fuzz_peak_init(fuzz_peak *pk)
{
    pk->alloc.alloc = fuzz_peak_alloc;
    pk->alloc.free = fuzz_peak_free;
    pk->alloc.allocator_data = pk;
    pk->used = pk->peak = 0;
}

/* 1 when m or any message inside it kept an unknown field. */
/* NOLINTNEXTLINE(misc-no-recursion): bounded by protobuf-c's nesting limit */
static inline int fuzz_pb_has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    if (m->n_unknown_fields > 0)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const ProtobufCMessage *const *v = *(const ProtobufCMessage *const *const *)base;
            for (size_t k = 0; k < n; k++)
                if (fuzz_pb_has_unknown(v[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)base;
            if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
                continue;
            if (sub != NULL && sub != f->default_value && fuzz_pb_has_unknown(sub))
                return 1;
        }
    }
    return 0;
}

/* Unpack data[0..size) as `desc` under alcove_pb_budget_for(size), then
 * check:
 *  - the allocator never lets `used` pass `budget`, and gives every byte back
 *    when the message is freed (or when the unpack fails);
 *  - the budget only ever refuses, never changes, a parse: if it refuses,
 *    `exhausted` is set, and an unlimited unpack of the same bytes really
 *    needs more than the budget at its peak; if it accepts, the unlimited
 *    unpack gives the same message (compared by re-packing both) and never
 *    needed more than the budget;
 *  - a message that unpacks re-packs to bytes that unpack to the same
 *    message again (pack is deterministic on protobuf-c's own output).
 * On success returns the message unpacked under *b (free it with
 * protobuf_c_message_free_unpacked(m, &b->alloc)), else NULL. */
static inline ProtobufCMessage *fuzz_pb_unpack(const ProtobufCMessageDescriptor *desc,
                                               const uint8_t *data, size_t size,
                                               alcove_pb_budget *b)
{
    fuzz_peak big;
    ProtobufCMessage *m, *u;

    alcove_pb_budget_init(b, alcove_pb_budget_for(size));
    m = protobuf_c_message_unpack(desc, &b->alloc, size, data);
    FUZZ_CHECK(b->used <= b->budget);
    if (m == NULL)
        FUZZ_CHECK(b->used == 0);

    fuzz_peak_init(&big);
    u = protobuf_c_message_unpack(desc, &big.alloc, size, data);
    if (m == NULL) {
        if (u != NULL) {
            /* Only the budget can tell the two apart. */
            FUZZ_CHECK(b->exhausted);
            FUZZ_CHECK(big.peak > b->budget);
        }
    } else {
        FUZZ_CHECK(!b->exhausted);
        FUZZ_CHECK(u != NULL);
        FUZZ_CHECK(big.used == b->used);
        FUZZ_CHECK(big.peak <= b->budget);
    }
    if (u != NULL) {
        size_t n1 = protobuf_c_message_get_packed_size(u);
        uint8_t *p1 = malloc(n1 + 1), *p2 = NULL;
        FUZZ_CHECK(p1 != NULL);
        FUZZ_CHECK(protobuf_c_message_pack(u, p1) == n1);
        if (m != NULL) {
            size_t nm = protobuf_c_message_get_packed_size(m);
            uint8_t *pm = malloc(nm + 1);
            FUZZ_CHECK(pm != NULL);
            FUZZ_CHECK(protobuf_c_message_pack(m, pm) == nm);
            FUZZ_CHECK(nm == n1 && memcmp(pm, p1, n1) == 0);
            free(pm);
        }
        /* Round trip of the canonical form.  protobuf-c accepts field
         * number 0 when its tag is a non-minimal varint (0x80 0x00) and
         * keeps it as an unknown field, but refuses the minimal 0x00 it
         * packs it as: such a message does not survive the round trip.
         * That is protobuf-c's quirk and harmless here (nothing re-packs
         * what it received), so only messages that unpack again are
         * compared. */
        ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, n1, p1);
        if (again != NULL) {
            size_t n2 = protobuf_c_message_get_packed_size(again);
            p2 = malloc(n2 + 1);
            FUZZ_CHECK(p2 != NULL);
            FUZZ_CHECK(protobuf_c_message_pack(again, p2) == n2);
            FUZZ_CHECK(n2 == n1 && memcmp(p1, p2, n1) == 0);
            protobuf_c_message_free_unpacked(again, NULL);
        } else {
            FUZZ_CHECK(fuzz_pb_has_unknown(u));
        }
        free(p1);
        free(p2);
        protobuf_c_message_free_unpacked(u, &big.alloc);
        FUZZ_CHECK(big.used == 0);
    }
    return m;
}

static inline void fuzz_pb_free(ProtobufCMessage *m, alcove_pb_budget *b)
{
    if (m != NULL) {
        protobuf_c_message_free_unpacked(m, &b->alloc);
        FUZZ_CHECK(b->used == 0);
    }
}

#endif
