/* relay/keyfile: the relay's static X25519 key in <data>/relay.key.
 *
 * Format: the 8 bytes "ALCRK\0\0\1" (tag, version 1) then the 32-byte secret
 * key; 40 bytes, mode 0600.  The public key is derived from the secret. */
#ifndef ALCOVE_RELAY_KEYFILE_H
#define ALCOVE_RELAY_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_KEYFILE_NAME "relay.key"
#define RELAY_PUBLICFILE_NAME "public"

/* Create the data directory (0700; an existing one is tightened to 0700 only
 * if it is ours) and a new key file there.  Refuses to overwrite an existing
 * key (ALCOVE_EEXIST).  Returns 0 and the public key, or ALCOVE_EIO with
 * errno set. */
int relay_key_create(const char *dir, uint8_t pub[32]);

/* Load the key.  *secret is sodium_malloc'd (32 bytes, read-only after load);
 * free with sodium_free.  Returns 0, ALCOVE_ENOTFOUND (no key file: run
 * init), ALCOVE_EFORMAT, ALCOVE_EIO, ALCOVE_ENOMEM. */
int relay_key_load(const char *dir, uint8_t **secret, uint8_t pub[32]);

/* Store / read the HOST:PORT clients should use (written by init --public).
 * read returns 0, ALCOVE_ENOTFOUND, or ALCOVE_EIO. */
int relay_public_write(const char *dir, const char *hostport);
int relay_public_read(const char *dir, char *out, size_t cap);

#endif
