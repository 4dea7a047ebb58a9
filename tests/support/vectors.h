/* Test vectors in JSON, read without a JSON library.
 *
 * Just enough of JSON for the vector files we ship (objects, arrays, strings
 * without escapes we need to interpret, numbers, literals): a value is a span
 * of the document, and lookups walk spans.  Good for trusted test input only.
 */
#ifndef ALCOVE_TEST_VECTORS_H
#define ALCOVE_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vec_span {
    const char *p;   /* first character of the value ('{', '[', '"', ...) */
    const char *end; /* one past its last character */
} vec_span;

/* Read a vector file: ALCOVE_VECTORS_DIR/name, else
 * ALCOVE_TEST_VECTORS_FALLBACK/name.  Returns a NUL-terminated malloc'd
 * buffer (free it) and sets *len, or NULL if neither file can be read.
 * *path_out (if not NULL) is set to a static copy of the path that was used. */
char *vec_load(const char *name, size_t *len, const char **path_out);

/* The whole document as a span (leading and trailing white space skipped).
 * Returns 0, or -1 if it is not one well-formed value. */
int vec_root(const char *doc, size_t len, vec_span *root);

/* Member `key` of the object `obj`.  Returns 0, or -1 if obj is not an
 * object or has no such member. */
int vec_get(const vec_span *obj, const char *key, vec_span *val);

/* Number of elements of the array `arr` (-1 if not an array) and element i. */
long vec_array_len(const vec_span *arr);
int vec_array_at(const vec_span *arr, size_t i, vec_span *elem);

/* 1 if the string value `val` equals s exactly, else 0. */
int vec_str_eq(const vec_span *val, const char *s);

/* In the document's "vectors" array (or a top-level array), the object whose
 * "protocol_name" is exactly `name`.  Returns 0 or -1. */
int vec_find_by_protocol(const vec_span *root, const char *name, vec_span *obj);

/* Decode the hex string member `key` of obj into a malloc'd buffer (free
 * it; never NULL on success, even for "").  Returns 0 or -1. */
int vec_get_hex(const vec_span *obj, const char *key, uint8_t **out,
                size_t *out_len);

/* Lower-case hex of bytes as a malloc'd string, for assertions that print
 * both values (assert_string_equal).  Returns NULL only on ENOMEM. */
char *vec_hex(const uint8_t *bytes, size_t len);

#endif
