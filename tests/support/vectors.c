/* A purpose-built JSON scanner for test vector files (see vectors.h). */
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ALCOVE_VECTORS_DIR
#define ALCOVE_VECTORS_DIR "../shared/vectors"
#endif
#ifndef ALCOVE_TEST_VECTORS_FALLBACK
#define ALCOVE_TEST_VECTORS_FALLBACK "tests/vectors"
#endif

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        goto out;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[size] = '\0';
    *len = (size_t)size;
out:
    if (fclose(f) != 0 && buf != NULL) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

char *vec_load(const char *name, size_t *len, const char **path_out)
{
    static char path[4096];
    const char *dirs[] = {ALCOVE_VECTORS_DIR, ALCOVE_TEST_VECTORS_FALLBACK};
    size_t i;

    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        int n = snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        char *doc;
        if (n < 0 || (size_t)n >= sizeof path) {
            continue;
        }
        doc = read_file(path, len);
        if (doc != NULL) {
            if (path_out != NULL) {
                *path_out = path;
            }
            return doc;
        }
    }
    return NULL;
}

/* --- scanning ------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* p at '"': returns one past the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* p at the start of a value: returns one past its end, or NULL. */
static const char *skip_value(const char *p, const char *end, int depth)
{
    if (p >= end || depth > 64) {
        return NULL;
    }
    if (*p == '"') {
        return skip_string(p, end);
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"' || (p = skip_string(p, end)) == NULL) {
                    return NULL;
                }
                p = skip_ws(p, end);
                if (p >= end || *p != ':') {
                    return NULL;
                }
                p = skip_ws(p + 1, end);
            }
            if ((p = skip_value(p, end, depth + 1)) == NULL) {
                return NULL;
            }
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            return p < end && *p == close ? p + 1 : NULL;
        }
    }
    /* number or literal */
    {
        const char *start = p;
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
               *p != '\t' && *p != '\n' && *p != '\r') {
            p++;
        }
        return p > start ? p : NULL;
    }
}

int vec_root(const char *doc, size_t len, vec_span *root)
{
    const char *end = doc + len;
    const char *p = skip_ws(doc, end);
    const char *v_end = skip_value(p, end, 0);

    if (v_end == NULL || skip_ws(v_end, end) != end) {
        return -1;
    }
    root->p = p;
    root->end = v_end;
    return 0;
}

int vec_str_eq(const vec_span *val, const char *s)
{
    size_t n = strlen(s);

    return val->end - val->p == (long)n + 2 && val->p[0] == '"' &&
           memcmp(val->p + 1, s, n) == 0 && val->p[n + 1] == '"';
}

int vec_get(const vec_span *obj, const char *key, vec_span *val)
{
    const char *p, *end = obj->end;

    if (obj->p >= end || obj->p[0] != '{') {
        return -1;
    }
    p = skip_ws(obj->p + 1, end);
    while (p < end && *p == '"') {
        vec_span k = {p, skip_string(p, end)};
        if (k.end == NULL) {
            return -1;
        }
        p = skip_ws(k.end, end);
        if (p >= end || *p != ':') {
            return -1;
        }
        p = skip_ws(p + 1, end);
        val->p = p;
        val->end = skip_value(p, end, 0);
        if (val->end == NULL) {
            return -1;
        }
        if (vec_str_eq(&k, key)) {
            return 0;
        }
        p = skip_ws(val->end, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
        }
    }
    return -1;
}

int vec_array_at(const vec_span *arr, size_t i, vec_span *elem)
{
    const char *p, *end = arr->end;
    size_t at = 0;

    if (arr->p >= end || arr->p[0] != '[') {
        return -1;
    }
    p = skip_ws(arr->p + 1, end);
    while (p < end && *p != ']') {
        const char *v_end = skip_value(p, end, 0);
        if (v_end == NULL) {
            return -1;
        }
        if (at++ == i) {
            elem->p = p;
            elem->end = v_end;
            return 0;
        }
        p = skip_ws(v_end, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
        }
    }
    return -1;
}

long vec_array_len(const vec_span *arr)
{
    vec_span e;
    long n = 0;

    if (arr->p >= arr->end || arr->p[0] != '[') {
        return -1;
    }
    while (vec_array_at(arr, (size_t)n, &e) == 0) {
        n++;
    }
    return n;
}

int vec_find_by_protocol(const vec_span *root, const char *name, vec_span *obj)
{
    vec_span arr, name_val;
    size_t i;

    if (vec_get(root, "vectors", &arr) != 0) {
        arr = *root;
    }
    for (i = 0; vec_array_at(&arr, i, obj) == 0; i++) {
        if (vec_get(obj, "protocol_name", &name_val) == 0 &&
            vec_str_eq(&name_val, name)) {
            return 0;
        }
    }
    return -1;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int vec_get_hex(const vec_span *obj, const char *key, uint8_t **out,
                size_t *out_len)
{
    vec_span v;
    size_t n, i;
    uint8_t *buf;

    if (vec_get(obj, key, &v) != 0 || v.p[0] != '"') {
        return -1;
    }
    n = (size_t)(v.end - v.p) - 2;
    if (n % 2 != 0) {
        return -1;
    }
    buf = malloc(n / 2 + 1);
    if (buf == NULL) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        int hi = hex_nibble(v.p[1 + 2 * i]), lo = hex_nibble(v.p[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(buf);
            return -1;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = buf;
    *out_len = n / 2;
    return 0;
}

char *vec_hex(const uint8_t *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    size_t i;

    if (s == NULL) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        s[2 * i] = digits[bytes[i] >> 4];
        s[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    s[2 * len] = '\0';
    return s;
}
