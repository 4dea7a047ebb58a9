/* Relay addresses: alcove://<base64url(relay static X25519 key)>@<host>:<port>
 *
 * The key is exactly 43 canonical base64url characters without padding.
 * host is a DNS name (letters, digits, '-', '.', labels 1..63 not starting or
 * ending with '-', total <= 253, last label not all digits), a dotted-quad
 * IPv4 address (anything of only digits and dots must be one), or a
 * bracketed IPv6 address ("[::1]", no zone id).  No white space anywhere.
 * port is decimal 1..65535 without sign or leading zeros. */
#ifndef ALCOVE_ADDRESS_H
#define ALCOVE_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_ADDR_KEY_BYTES 32u
#define ALCOVE_ADDR_HOST_MAX 253u
/* Longest printed address, with its terminating NUL. */
#define ALCOVE_ADDR_STR_MAX (9 + 43 + 1 + ALCOVE_ADDR_HOST_MAX + 2 + 6 + 1)

typedef struct alcove_relay_addr {
    uint8_t key[ALCOVE_ADDR_KEY_BYTES];
    char host[ALCOVE_ADDR_HOST_MAX + 1]; /* without brackets for IPv6 */
    int host_is_ipv6;
    uint16_t port;
} alcove_relay_addr;

/* Parse a NUL-terminated address.  On success returns 0 and fills *out.
 * On failure returns ALCOVE_EADDR and, if why != NULL, points *why at a
 * static sentence saying what is wrong (e.g. "relay key must be 43
 * base64url characters"). */
int alcove_addr_parse(const char *s, alcove_relay_addr *out, const char **why);

/* Print an address.  Returns 0, or ALCOVE_ETOOBIG if cap is too small,
 * ALCOVE_EINVAL for an invalid host or port 0. */
int alcove_addr_format(const alcove_relay_addr *a, char *out, size_t cap);

/* Parse "HOST:PORT" or "[V6]:PORT" (port 0 allowed when allow_port0) into
 * host/port.  Used for --listen and --public.  Returns 0 or ALCOVE_EADDR with
 * *why set as above. */
int alcove_hostport_parse(const char *s, char *host, size_t host_cap,
                          int *is_ipv6, uint16_t *port, int allow_port0,
                          const char **why);

/* base64url without padding (canonical: unused trailing bits must be 0).
 * encode: out_cap >= 4*ceil(n/3)+1; returns 0 or ALCOVE_ETOOBIG.
 * decode: returns 0 and *out_len, or ALCOVE_EINVAL on a bad character,
 * non-canonical tail or bad length, ALCOVE_ETOOBIG if out_cap too small. */
int alcove_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap);
int alcove_b64url_decode(const char *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len);

#endif
