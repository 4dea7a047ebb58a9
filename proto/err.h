/* alcove error codes: negative values, 0 is success.
 *
 * One X-macro table generates the enum and alcove_strerror(), so a code and
 * its message can never drift apart.  Library code returns these; only main()
 * turns one into a message and an exit code. */
#ifndef ALCOVE_ERR_H
#define ALCOVE_ERR_H

#define ALCOVE_ERRNO_MAP(X)                                              \
    X(EINVAL, "invalid argument")                                        \
    X(ENOMEM, "out of memory")                                           \
    X(EIO, "input/output error")                                         \
    X(EPROTO, "protocol violation")                                      \
    X(EDECRYPT, "decryption or authentication failed")                   \
    X(ETOOBIG, "too large")                                              \
    X(ETRUNC, "truncated input")                                         \
    X(EBADKEY, "bad key (low-order point or wrong size)")                \
    X(EADDR, "malformed relay address")                                  \
    X(ESTATE, "operation not valid in this state")                       \
    X(ENOTFOUND, "not found")                                            \
    X(EEXIST, "already exists")                                          \
    X(ETIMEDOUT, "timed out")                                            \
    X(ECLOSED, "connection closed")                                      \
    X(ECONNECT, "could not connect")                                     \
    X(EPASS, "wrong passphrase")                                         \
    X(EFORMAT, "unrecognised file format or version")                    \
    X(ECORRUPT, "corrupted data")                                        \
    X(EDUP, "duplicate")                                                 \
    X(ELIMIT, "limit exceeded")                                          \
    X(ESTORE, "storage error")                                           \
    X(ERELAY, "relay refused the request")                               \
    X(EMISTYPED, "mistyped")                                             \
    X(EMALFORMED, "malformed")                                           \
    X(EBADSIG, "bad signature")                                          \
    X(EVERSION, "unsupported version")                                   \
    X(EEXPIRED, "expired")                                               \
    X(ENOTINVITE, "not an alcove invite")

enum {
    ALCOVE_OK = 0,
    ALCOVE__ERR_BASE = -1000,
#define ALCOVE_ERR_ENUM(name, msg) ALCOVE_##name,
    ALCOVE_ERRNO_MAP(ALCOVE_ERR_ENUM)
#undef ALCOVE_ERR_ENUM
    ALCOVE__ERR_END
};

/* Returns a static, human-readable message for an alcove error code (or
 * "success" for 0, "unknown error" for anything else).  Never NULL. */
const char *alcove_strerror(int err);

#endif
