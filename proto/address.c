/* Relay addresses (DESIGN.md section 2), host:port pairs and base64url.
 *
 * Parsing is strict and every rejection comes with one sentence a person can
 * act on.  Base64url itself is libsodium's (constant time, rejects unused
 * non-zero bits); the character-by-character checks here only choose the
 * message for a relay key, which is public. */
#include "address.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"

#define SCHEME "alcove://"
#define SCHEME_LEN (sizeof SCHEME - 1)
#define KEY_CHARS 43u
#define LABEL_MAX 63u
#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

_Static_assert(ALCOVE_ADDR_KEY_BYTES == crypto_scalarmult_BYTES,
               "the relay key is an X25519 public key");
_Static_assert(sodium_base64_ENCODED_LEN(ALCOVE_ADDR_KEY_BYTES, B64_VARIANT) ==
                   KEY_CHARS + 1,
               "a 32-byte key is 43 base64url characters");
_Static_assert(ALCOVE_ADDR_STR_MAX >= SCHEME_LEN + KEY_CHARS + 1 +
                                          ALCOVE_ADDR_HOST_MAX + 2 + 6 + 1,
               "longest address fits");

/* --- base64url ------------------------------------------------------------ */

int alcove_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    if (n > SIZE_MAX / 2) {
        return ALCOVE_ETOOBIG;
    }
    /* sodium_bin2base64 aborts on a short buffer: check first. */
    if (out == NULL || out_cap < sodium_base64_ENCODED_LEN(n, B64_VARIANT)) {
        return ALCOVE_ETOOBIG;
    }
    if (n > 0 && in == NULL) {
        return ALCOVE_EINVAL;
    }
    (void)sodium_bin2base64(out, out_cap, in, n, B64_VARIANT);
    return 0;
}

int alcove_b64url_decode(const char *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len)
{
    size_t rem = in_len % 4, need, bin_len = 0;
    unsigned char high = 0;

    *out_len = 0;
    if (rem == 1) {
        return ALCOVE_EINVAL; /* 6 bits cannot make a byte */
    }
    need = in_len / 4 * 3 + (rem > 0 ? rem - 1 : 0);
    if (need > out_cap) {
        return ALCOVE_ETOOBIG;
    }
    if (in_len == 0) {
        return 0;
    }
    if (in == NULL || out == NULL) {
        return ALCOVE_EINVAL;
    }
    /* libsodium 1.0.18 (Debian 12) decodes every byte 0x80-0xFF as '_'
     * (value 63) instead of refusing it, so "AB\xC3..." would decode like
     * "AB_...": found by fuzz_address.  Refuse them first, without
     * branching on the (possibly secret, e.g. an invite code) text. */
    for (size_t i = 0; i < in_len; i++) {
        high |= (unsigned char)in[i];
    }
    if ((high & 0x80u) != 0) {
        return ALCOVE_EINVAL;
    }
    /* No characters ignored, no end pointer: any other byte outside the
     * alphabet, '=' included, fails; so does a tail with unused bits set. */
    if (sodium_base642bin(out, out_cap, in, in_len, NULL, &bin_len, NULL,
                          B64_VARIANT) != 0 ||
        bin_len != need) {
        sodium_memzero(out, need);
        return ALCOVE_EINVAL;
    }
    *out_len = bin_len;
    return 0;
}

/* --- pieces of an address ------------------------------------------------- */

static int is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int is_ldh_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* White space first (the most common paste accident), then anything that is
 * not printable ASCII. */
static const char *check_chars(const char *s)
{
    const char *p;

    for (p = s; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
            *p == '\v' || *p == '\f') {
            return "address contains white space (spaces, tabs or line "
                   "breaks are not allowed anywhere in it)";
        }
    }
    for (p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x21 || c > 0x7e) {
            return "address contains a character that is not printable ASCII";
        }
    }
    return NULL;
}

static const char *check_key(const char *k, size_t len,
                             uint8_t key[ALCOVE_ADDR_KEY_BYTES])
{
    size_t i, got = 0;

    if (len == 0) {
        return "relay key is empty (expected 43 base64url characters "
               "between alcove:// and '@')";
    }
    if (memchr(k, '=', len) != NULL) {
        return "relay key must not have '=' padding (it is exactly 43 "
               "base64url characters)";
    }
    for (i = 0; i < len; i++) {
        if (k[i] == '+' || k[i] == '/') {
            return "relay key uses standard base64 ('+' or '/'); it must be "
                   "base64url ('-' and '_')";
        }
        if (!is_b64url_char(k[i])) {
            return "relay key contains a character that is not base64url "
                   "(A-Z, a-z, 0-9, '-', '_')";
        }
    }
    if (len != KEY_CHARS) {
        return "relay key must be exactly 43 base64url characters "
               "(a 32-byte key)";
    }
    if (alcove_b64url_decode(k, len, key, ALCOVE_ADDR_KEY_BYTES, &got) != 0 ||
        got != ALCOVE_ADDR_KEY_BYTES) {
        return "relay key is not canonical base64url (its last character "
               "has unused bits set)";
    }
    return NULL;
}

static const char *check_ipv4(const char *h, size_t len)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;

    /* inet_pton takes exactly four decimal parts 0-255 without leading zeros. */
    if (len >= sizeof buf) {
        return "bad IPv4 address (expected four numbers 0-255 separated by "
               "dots, e.g. 192.0.2.7)";
    }
    memcpy(buf, h, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1) {
        return "bad IPv4 address (expected four numbers 0-255 separated by "
               "dots, e.g. 192.0.2.7)";
    }
    return NULL;
}

static const char *check_ipv6(const char *h, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (len >= sizeof buf) {
        return "bad IPv6 address between '[' and ']'";
    }
    memcpy(buf, h, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET6, buf, &a) != 1) {
        return "bad IPv6 address between '[' and ']' (zone ids like %eth0 "
               "are not allowed)";
    }
    return NULL;
}

/* A DNS name or a dotted-quad IPv4 address (anything of digits and dots). */
static const char *check_host(const char *h, size_t len)
{
    size_t i, start = 0, all_digits = 1;

    if (len == 0) {
        return "host is empty (expected a name, an IPv4 address or "
               "[IPv6] before ':')";
    }
    if (len > ALCOVE_ADDR_HOST_MAX) {
        return "host name is longer than 253 characters";
    }
    for (i = 0; i < len; i++) {
        if (h[i] != '.' && !is_digit(h[i])) {
            all_digits = 0;
        }
        if (h[i] != '.' && !is_ldh_char(h[i])) {
            return "host may contain only letters, digits, '-' and '.' "
                   "(put an IPv6 address in brackets)";
        }
    }
    if (all_digits) {
        return check_ipv4(h, len);
    }
    for (i = 0; i <= len; i++) {
        if (i < len && h[i] != '.') {
            continue;
        }
        if (i == start) {
            return "host has an empty label (a leading, trailing or doubled "
                   "'.')";
        }
        if (i - start > LABEL_MAX) {
            return "a host label (a part between dots) is longer than 63 "
                   "characters";
        }
        if (h[start] == '-' || h[i - 1] == '-') {
            return "a host label cannot start or end with '-'";
        }
        all_digits = 1;
        for (size_t j = start; j < i; j++) {
            all_digits &= (size_t)is_digit(h[j]);
        }
        start = i + 1;
    }
    if (all_digits) { /* the last label, by the loop's end */
        return "the last label of a host name cannot be all digits (a "
               "mistyped IPv4 address?)";
    }
    return NULL;
}

static const char *parse_port(const char *p, int allow_port0, uint16_t *port)
{
    size_t n = 0;
    unsigned long v = 0;

    if (*p == '\0') {
        return "port is missing after ':'";
    }
    if (!is_digit(*p)) {
        return "port must be a decimal number";
    }
    while (is_digit(p[n])) {
        if (n < 6) {
            v = v * 10 + (unsigned long)(p[n] - '0');
        }
        n++;
    }
    if (p[n] != '\0') {
        return "unexpected characters after the port";
    }
    if (n > 1 && p[0] == '0') {
        return "port must not have leading zeros";
    }
    if (n > 5 || v > 65535) {
        return allow_port0 ? "port must be between 0 and 65535"
                           : "port must be between 1 and 65535";
    }
    if (v == 0 && !allow_port0) {
        return "port 0 is not allowed here (use a port between 1 and 65535)";
    }
    *port = (uint16_t)v;
    return NULL;
}

int alcove_hostport_parse(const char *s, char *host, size_t host_cap,
                          int *is_ipv6, uint16_t *port, int allow_port0,
                          const char **why)
{
    const char *msg = NULL, *h = NULL, *p = NULL;
    size_t hlen = 0;
    int v6 = 0;
    uint16_t portv = 0;

    if (s == NULL || *s == '\0') {
        msg = "host and port are missing (expected HOST:PORT)";
    } else if ((msg = check_chars(s)) != NULL) {
        /* msg set */
    } else if (s[0] == '[') {
        const char *close = strchr(s, ']');
        v6 = 1;
        if (close == NULL) {
            msg = "IPv6 address is missing its closing ']'";
        } else if (close == s + 1) {
            msg = "IPv6 address between '[' and ']' is empty";
        } else if (close[1] != ':') {
            msg = close[1] == '\0' ? "port is missing (expected [IPv6]:PORT)"
                                   : "expected ':' and a port after ']'";
        } else {
            h = s + 1;
            hlen = (size_t)(close - h);
            p = close + 2;
            msg = check_ipv6(h, hlen);
        }
    } else {
        const char *colon = strchr(s, ':');
        if (colon == NULL) {
            msg = "port is missing (expected HOST:PORT)";
        } else if (strchr(colon + 1, ':') != NULL) {
            msg = "an IPv6 address must be in brackets, e.g. [::1]:7700";
        } else {
            h = s;
            hlen = (size_t)(colon - s);
            p = colon + 1;
            msg = check_host(h, hlen);
        }
    }
    if (msg == NULL) {
        msg = parse_port(p, allow_port0, &portv);
    }
    if (msg == NULL && (host == NULL || hlen >= host_cap)) {
        msg = "host is too long";
    }
    if (msg != NULL) {
        if (why != NULL) {
            *why = msg;
        }
        return ALCOVE_EADDR;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (is_ipv6 != NULL) {
        *is_ipv6 = v6;
    }
    if (port != NULL) {
        *port = portv;
    }
    if (why != NULL) {
        *why = NULL;
    }
    return 0;
}

int alcove_addr_parse(const char *s, alcove_relay_addr *out, const char **why)
{
    alcove_relay_addr a;
    const char *msg = NULL;

    memset(&a, 0, sizeof a);
    if (s == NULL || *s == '\0') {
        msg = "relay address is empty";
    } else if ((msg = check_chars(s)) != NULL) {
        /* msg set */
    } else if (strncasecmp(s, SCHEME, SCHEME_LEN) == 0 &&
               strncmp(s, SCHEME, SCHEME_LEN) != 0) {
        msg = "relay address must start with alcove:// in lower case";
    } else if (strncmp(s, SCHEME, SCHEME_LEN) != 0) {
        msg = strstr(s, "://") != NULL
                  ? "relay address must start with alcove:// (it has another "
                    "scheme)"
                  : "relay address must start with alcove://";
    } else {
        const char *key = s + SCHEME_LEN;
        const char *at = strchr(key, '@');
        if (at == NULL) {
            msg = "relay address is missing the '@' between the relay key "
                  "and the host";
        } else if ((msg = check_key(key, (size_t)(at - key), a.key)) == NULL) {
            if (strchr(at + 1, '@') != NULL) {
                msg = "relay address has more than one '@'";
            } else {
                /* Sets msg on failure, leaves it NULL on success. */
                (void)alcove_hostport_parse(at + 1, a.host, sizeof a.host,
                                            &a.host_is_ipv6, &a.port, 0, &msg);
            }
        }
    }
    if (msg != NULL) {
        if (why != NULL) {
            *why = msg;
        }
        return ALCOVE_EADDR;
    }
    *out = a;
    if (why != NULL) {
        *why = NULL;
    }
    return 0;
}

int alcove_addr_format(const alcove_relay_addr *a, char *out, size_t cap)
{
    char key[KEY_CHARS + 1];
    size_t hlen;
    int n;

    if (a == NULL || out == NULL) {
        return ALCOVE_EINVAL;
    }
    hlen = strnlen(a->host, sizeof a->host);
    if (hlen == sizeof a->host || a->port == 0) {
        return ALCOVE_EINVAL;
    }
    if ((a->host_is_ipv6 ? check_ipv6(a->host, hlen)
                         : check_host(a->host, hlen)) != NULL) {
        return ALCOVE_EINVAL;
    }
    if (alcove_b64url_encode(a->key, sizeof a->key, key, sizeof key) != 0) {
        return ALCOVE_EINVAL;
    }
    n = snprintf(out, cap, "%s%s@%s%s%s:%u", SCHEME, key,
                 a->host_is_ipv6 ? "[" : "", a->host,
                 a->host_is_ipv6 ? "]" : "", (unsigned)a->port);
    if (n < 0) {
        return ALCOVE_EINVAL;
    }
    if ((size_t)n >= cap) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return ALCOVE_ETOOBIG;
    }
    return 0;
}
