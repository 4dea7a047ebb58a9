/* Fuzz target: a journal record's payload as the relay replays it at start
 * (relay/op.c relay_op_decode_list).  The journal is the relay's own file,
 * but a disk can return anything: a payload whose checksum happens to match
 * must still never be read past its end or make an allocation larger than
 * itself.
 *
 * Input: the payload bytes.  Checks: an accepted payload re-encodes to
 * exactly the input (the encoding is canonical); a refused one leaves the
 * output list empty. */
#include "fuzz_common.h"

#include "err.h"
#include "op.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    relay_op *list = (relay_op *)(uintptr_t)1;
    int rc = relay_op_decode_list(data, size, &list);
    if (rc != 0) {
        FUZZ_CHECK(rc == ALCOVE_ECORRUPT || rc == ALCOVE_ENOMEM);
        FUZZ_CHECK(list == NULL);
        return 0;
    }
    size_t n = 0;
    for (const relay_op *op = list; op != NULL; op = op->next)
        n += relay_op_encoded_size(op);
    FUZZ_CHECK(n == size);
    uint8_t *buf = malloc(n ? n : 1), *p = buf;
    FUZZ_CHECK(buf != NULL);
    for (const relay_op *op = list; op != NULL; op = op->next)
        p = relay_op_encode(op, p);
    FUZZ_CHECK((size_t)(p - buf) == size && (size == 0 || memcmp(buf, data, size) == 0));
    free(buf);
    relay_op_free_list(list);
    return 0;
}
