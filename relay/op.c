#include "op.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define REC_BYTES (32u + 16u + 32u + 8u + 8u + 8u)

relay_op *relay_op_new(relay_op_kind kind)
{
    relay_op *op = calloc(1, sizeof *op);
    if (op != NULL)
        op->kind = kind;
    return op;
}

void relay_op_free(relay_op *op)
{
    if (op == NULL)
        return;
    free(op->blob);
    free(op->gseqs);
    free(op);
}

void relay_op_free_list(relay_op *list)
{
    while (list != NULL) {
        relay_op *next = list->next;
        relay_op_free(list);
        list = next;
    }
}

int relay_op_apply(relay_store *st, const relay_op *op)
{
    int rc = 0;
    switch (op->kind) {
    case OP_CREATE:
    case OP_TOUCH:
        return relay_store_put_mbox(st, op->recv_id, &op->rec);
    case OP_SEND:
        return relay_store_append(st, op->gseq, op->recv_id, op->seq, op->received_at,
                                  op->blob, op->blob_len);
    case OP_TRIM:
    case OP_DELETE:
    case OP_PURGE:
        for (uint32_t i = 0; i < op->ngseqs && rc == 0; i++)
            rc = relay_store_del_log(st, op->gseqs[i]);
        if (rc != 0)
            return rc;
        if (op->kind == OP_TRIM)
            return relay_store_put_mbox(st, op->recv_id, &op->rec);
        if (op->kind == OP_DELETE)
            return relay_store_del_mbox(st, op->recv_id);
        return 0;
    }
    return ALCOVE_EINVAL;
}

int relay_op_adds_data(const relay_op *op)
{
    return op->kind == OP_SEND || op->kind == OP_CREATE || op->kind == OP_TOUCH;
}

/* --- journal encoding (big-endian, docs/protocol.md "Journal") ------------ */

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)(v >> 32));
    return put_u32(p, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

static int has_rec(relay_op_kind k) { return k == OP_CREATE || k == OP_TOUCH || k == OP_TRIM; }
static int has_gseqs(relay_op_kind k) { return k == OP_TRIM || k == OP_DELETE || k == OP_PURGE; }

size_t relay_op_encoded_size(const relay_op *op)
{
    size_t n = 1;
    if (op->kind != OP_PURGE)
        n += RELAY_ID_BYTES;
    if (has_rec(op->kind))
        n += REC_BYTES;
    if (op->kind == OP_SEND)
        n += 8 + 8 + 8 + 4 + (size_t)op->blob_len;
    if (has_gseqs(op->kind))
        n += 4 + 8 * (size_t)op->ngseqs;
    return n;
}

uint8_t *relay_op_encode(const relay_op *op, uint8_t *p)
{
    *p++ = (uint8_t)op->kind;
    if (op->kind != OP_PURGE) {
        memcpy(p, op->recv_id, RELAY_ID_BYTES);
        p += RELAY_ID_BYTES;
    }
    if (has_rec(op->kind)) {
        memcpy(p, op->rec.auth_pub, 32);
        memcpy(p + 32, op->rec.send_id, 16);
        memcpy(p + 48, op->rec.send_key_hash, 32);
        p = put_u64(p + 80, op->rec.created_at);
        p = put_u64(p, op->rec.last_seen);
        p = put_u64(p, op->rec.acked_seq);
    }
    if (op->kind == OP_SEND) {
        p = put_u64(p, op->gseq);
        p = put_u64(p, op->seq);
        p = put_u64(p, op->received_at);
        p = put_u32(p, op->blob_len);
        if (op->blob_len > 0)
            memcpy(p, op->blob, op->blob_len);
        p += op->blob_len;
    }
    if (has_gseqs(op->kind)) {
        p = put_u32(p, op->ngseqs);
        for (uint32_t i = 0; i < op->ngseqs; i++)
            p = put_u64(p, op->gseqs[i]);
    }
    return p;
}

/* Decode one op from [*pp, end); advances *pp. */
static int decode_one(const uint8_t **pp, const uint8_t *end, relay_op **out)
{
    const uint8_t *p = *pp;
    size_t left = (size_t)(end - p);
    if (left < 1)
        return ALCOVE_ECORRUPT;
    relay_op_kind kind = (relay_op_kind)*p++;
    left--;
    if (kind < OP_CREATE || kind > OP_PURGE)
        return ALCOVE_ECORRUPT;
    relay_op *op = relay_op_new(kind);
    if (op == NULL)
        return ALCOVE_ENOMEM;
    int rc = ALCOVE_ECORRUPT;
    if (kind != OP_PURGE) {
        if (left < RELAY_ID_BYTES)
            goto fail;
        memcpy(op->recv_id, p, RELAY_ID_BYTES);
        p += RELAY_ID_BYTES;
        left -= RELAY_ID_BYTES;
    }
    if (has_rec(kind)) {
        if (left < REC_BYTES)
            goto fail;
        memcpy(op->rec.auth_pub, p, 32);
        memcpy(op->rec.send_id, p + 32, 16);
        memcpy(op->rec.send_key_hash, p + 48, 32);
        op->rec.created_at = get_u64(p + 80);
        op->rec.last_seen = get_u64(p + 88);
        op->rec.acked_seq = get_u64(p + 96);
        p += REC_BYTES;
        left -= REC_BYTES;
    }
    if (kind == OP_SEND) {
        if (left < 28)
            goto fail;
        op->gseq = get_u64(p);
        op->seq = get_u64(p + 8);
        op->received_at = get_u64(p + 16);
        op->blob_len = get_u32(p + 24);
        p += 28;
        left -= 28;
        if (op->blob_len > left)
            goto fail;
        if (op->blob_len > 0) {
            if ((op->blob = malloc(op->blob_len)) == NULL) {
                rc = ALCOVE_ENOMEM;
                goto fail;
            }
            memcpy(op->blob, p, op->blob_len);
        }
        p += op->blob_len;
        left -= op->blob_len;
    }
    if (has_gseqs(kind)) {
        if (left < 4)
            goto fail;
        uint32_t n = get_u32(p);
        p += 4;
        left -= 4;
        if (n > left / 8)
            goto fail;
        if (n > 0) {
            if ((op->gseqs = malloc((size_t)n * sizeof *op->gseqs)) == NULL) {
                rc = ALCOVE_ENOMEM;
                goto fail;
            }
            for (uint32_t i = 0; i < n; i++)
                op->gseqs[i] = get_u64(p + 8 * (size_t)i);
        }
        op->ngseqs = n;
        p += 8 * (size_t)n;
    }
    *pp = p;
    *out = op;
    return 0;
fail:
    relay_op_free(op);
    return rc;
}

int relay_op_decode_list(const uint8_t *p, size_t len, relay_op **out)
{
    const uint8_t *end = p + len;
    relay_op *head = NULL, **tail = &head;
    *out = NULL;
    while (p < end) {
        relay_op *op = NULL;
        int rc = decode_one(&p, end, &op);
        if (rc != 0) {
            relay_op_free_list(head);
            return rc;
        }
        *tail = op;
        tail = &op->next;
    }
    *out = head;
    return 0;
}
