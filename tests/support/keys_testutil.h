/* Test helper for keys/ unit tests: compare alcove return codes and print
 * both sides by name ("got -990 (wrong passphrase), want 0 (success)")
 * instead of cmocka's hex.  Header only; include after <cmocka.h>. */
#ifndef ALCOVE_KEYS_TESTUTIL_H
#define ALCOVE_KEYS_TESTUTIL_H

#include "err.h"

#define assert_rc(expr, want)                                                  \
    do {                                                                       \
        int got_rc_ = (expr);                                                  \
        int want_rc_ = (want);                                                 \
        if (got_rc_ != want_rc_)                                               \
            fail_msg("%s: got %d (%s), want %d (%s)", #expr, got_rc_,          \
                     alcove_strerror(got_rc_), want_rc_,                       \
                     alcove_strerror(want_rc_));                               \
    } while (0)

#endif
