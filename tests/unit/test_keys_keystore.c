/* Identity keystore: round trip, wrong passphrase (file unchanged), every
 * truncation and every single-byte bit flip rejected, hostile Argon2
 * parameters refused before deriving, file mode 0600, no overwrite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keys_testutil.h"
#include "identity.h"
#include "keys_file.h"

#define OPS crypto_pwhash_OPSLIMIT_MIN
#define MEM crypto_pwhash_MEMLIMIT_MIN
#define PASS "correct horse battery staple"
#define PASS_LEN (sizeof PASS - 1)
#define FILE_BYTES ALCOVE_IDENTITY_FILE_BYTES

typedef struct fixture {
    char dir[64];
    char path[128];
    alcove_identity *id;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/alcove-keystore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/identity", f->dir);
    if (alcove_identity_generate(&f->id) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    unlink(f->path);
    rmdir(f->dir);
    alcove_identity_free(f->id);
    free(f);
    return 0;
}

static void read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    assert_rc(alcove_keys_file_read(path, buf, cap, len), 0);
}

static void assert_same_identity(const alcove_identity *a,
                                 const alcove_identity *b)
{
    assert_memory_equal(alcove_identity_sig_pub(a), alcove_identity_sig_pub(b),
                        ALCOVE_SIG_PUB_BYTES);
    assert_memory_equal(alcove_identity_dh_pub(a), alcove_identity_dh_pub(b),
                        ALCOVE_DH_BYTES);
    assert_memory_equal(alcove_identity_store_key(a),
                        alcove_identity_store_key(b), ALCOVE_STORE_KEY_BYTES);
}

static void save_then_load_round_trips(void **state)
{
    fixture *f = *state;
    alcove_identity *back = NULL;
    uint8_t sig[ALCOVE_SIG_BYTES];
    const uint8_t msg[] = "hello";
    uint8_t dh1[32], dh2[32];

    assert_rc(alcove_identity_save(f->id, f->path, PASS, PASS_LEN, OPS, MEM, 0),
              0);
    assert_rc(alcove_identity_load(f->path, PASS, PASS_LEN, &back), 0);
    assert_non_null(back);
    assert_same_identity(f->id, back);
    /* The loaded secret keys work: signature and DH agree. */
    assert_rc(alcove_identity_sign(back, msg, sizeof msg, sig), 0);
    assert_rc(crypto_sign_verify_detached(sig, msg, sizeof msg,
                                          alcove_identity_sig_pub(f->id)),
              0);
    assert_rc(alcove_identity_dh(back, alcove_identity_dh_pub(f->id), dh1), 0);
    assert_rc(alcove_identity_dh(f->id, alcove_identity_dh_pub(back), dh2), 0);
    assert_memory_equal(dh1, dh2, 32);
    alcove_identity_free(back);
}

static void empty_passphrase_round_trips(void **state)
{
    fixture *f = *state;
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_save(f->id, f->path, NULL, 0, OPS, MEM, 0), 0);
    assert_rc(alcove_identity_load(f->path, "", 0, &back), 0);
    assert_same_identity(f->id, back);
    alcove_identity_free(back);
    assert_rc(alcove_identity_load(f->path, "x", 1, &back), ALCOVE_EPASS);
    assert_null(back);
}

static void file_is_mode_0600_and_exact_size(void **state)
{
    fixture *f = *state;
    struct stat st;

    umask(022);
    assert_rc(alcove_identity_save(f->id, f->path, PASS, PASS_LEN, OPS, MEM, 0),
              0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, FILE_BYTES);
}

static void wrong_passphrase_is_epass_and_file_unchanged(void **state)
{
    fixture *f = *state;
    alcove_identity *back = (alcove_identity *)1;
    uint8_t before[FILE_BYTES + 1], after[FILE_BYTES + 1];
    size_t blen, alen;

    assert_rc(alcove_identity_save(f->id, f->path, PASS, PASS_LEN, OPS, MEM, 0),
              0);
    read_file(f->path, before, sizeof before, &blen);
    assert_rc(alcove_identity_load(f->path, "wrong", 5, &back), ALCOVE_EPASS);
    assert_null(back);
    read_file(f->path, after, sizeof after, &alen);
    assert_int_equal(blen, alen);
    assert_memory_equal(before, after, blen);
}

static void save_never_overwrites_unless_asked(void **state)
{
    fixture *f = *state;
    alcove_identity *other = NULL, *back = NULL;
    uint8_t before[FILE_BYTES + 1], after[FILE_BYTES + 1];
    size_t blen, alen;

    assert_rc(alcove_identity_generate(&other), 0);
    assert_rc(alcove_identity_save(f->id, f->path, PASS, PASS_LEN, OPS, MEM, 0),
              0);
    read_file(f->path, before, sizeof before, &blen);
    assert_rc(alcove_identity_save(other, f->path, PASS, PASS_LEN, OPS, MEM, 0),
              ALCOVE_EEXIST);
    read_file(f->path, after, sizeof after, &alen);
    assert_int_equal(blen, alen);
    assert_memory_equal(before, after, blen);
    assert_rc(alcove_identity_save(other, f->path, PASS, PASS_LEN, OPS, MEM,
                                   ALCOVE_IDENTITY_REPLACE),
              0);
    assert_rc(alcove_identity_load(f->path, PASS, PASS_LEN, &back), 0);
    assert_same_identity(other, back);
    alcove_identity_free(back);
    alcove_identity_free(other);
}

static void every_truncation_is_rejected(void **state)
{
    fixture *f = *state;
    uint8_t buf[FILE_BYTES];
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, MEM, buf), 0);
    for (size_t len = 0; len < FILE_BYTES; len++) {
        int rc = alcove_identity_decode(buf, len, PASS, PASS_LEN, &back);
        if (rc != ALCOVE_ETRUNC)
            fail_msg("length %zu: got %d (%s), want ALCOVE_ETRUNC", len, rc,
                     alcove_strerror(rc));
        assert_null(back);
    }
    /* A truncated file on disk, too. */
    assert_rc(alcove_keys_file_write(f->path, buf, 100, 0), 0);
    assert_rc(alcove_identity_load(f->path, PASS, PASS_LEN, &back),
              ALCOVE_ETRUNC);
}

static void trailing_bytes_are_corrupt(void **state)
{
    fixture *f = *state;
    uint8_t buf[FILE_BYTES + 1];
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, MEM, buf), 0);
    buf[FILE_BYTES] = 0;
    assert_rc(alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back),
              ALCOVE_ECORRUPT);
    assert_rc(alcove_keys_file_write(f->path, buf, sizeof buf, 0), 0);
    assert_rc(alcove_identity_load(f->path, PASS, PASS_LEN, &back),
              ALCOVE_ECORRUPT);
}

static void every_byte_bit_flip_is_rejected(void **state)
{
    fixture *f = *state;
    uint8_t good[FILE_BYTES], buf[FILE_BYTES];
    static const uint8_t masks[] = {0x01, 0x80};
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, MEM, good), 0);
    for (size_t m = 0; m < sizeof masks; m++) {
        for (size_t i = 0; i < FILE_BYTES; i++) {
            int rc;

            memcpy(buf, good, sizeof buf);
            buf[i] ^= masks[m];
            rc = alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back);
            if (rc != ALCOVE_EFORMAT && rc != ALCOVE_ECORRUPT &&
                rc != ALCOVE_EPASS)
                fail_msg("byte %zu ^ 0x%02x: got %d (%s)", i, masks[m], rc,
                         alcove_strerror(rc));
            assert_null(back);
            /* Header bytes: tag, version, KDF -> format errors. */
            if (i < 10)
                assert_int_equal(rc, ALCOVE_EFORMAT);
        }
    }
    /* Unchanged, it still decodes. */
    assert_rc(alcove_identity_decode(good, sizeof good, PASS, PASS_LEN, &back),
              0);
    alcove_identity_free(back);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void absurd_argon2_parameters_refused_before_deriving(void **state)
{
    fixture *f = *state;
    uint8_t buf[FILE_BYTES];
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, MEM, buf), 0);
    /* 64 GiB memlimit: would take minutes and all memory if derived. */
    put_be64(buf + 18, 64ull << 30);
    assert_rc(alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back),
              ALCOVE_ECORRUPT);
    put_be64(buf + 18, MEM);
    put_be64(buf + 10, 1000000); /* opslimit */
    assert_rc(alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back),
              ALCOVE_ECORRUPT);
    put_be64(buf + 10, 0);
    assert_rc(alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back),
              ALCOVE_ECORRUPT);
    /* And save refuses them too. */
    assert_rc(
        alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, 2ull << 30, buf),
        ALCOVE_EINVAL);
}

static void wrong_tag_and_version_are_format_errors(void **state)
{
    fixture *f = *state;
    uint8_t buf[FILE_BYTES];
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, OPS, MEM, buf), 0);
    assert_memory_equal(buf, "ALCOVEID", 8);
    assert_int_equal(buf[8], 1);
    buf[8] = 2;
    assert_rc(alcove_identity_decode(buf, sizeof buf, PASS, PASS_LEN, &back),
              ALCOVE_EFORMAT);
    assert_rc(alcove_identity_decode((const uint8_t *)"MINISIGN", 8, PASS,
                                     PASS_LEN, &back),
              ALCOVE_EFORMAT);
    assert_rc(alcove_identity_decode((const uint8_t *)"xyz", 3, PASS, PASS_LEN,
                                     &back),
              ALCOVE_EFORMAT);
}

static void missing_file_is_not_found(void **state)
{
    fixture *f = *state;
    alcove_identity *back = NULL;

    assert_rc(alcove_identity_load(f->path, PASS, PASS_LEN, &back),
              ALCOVE_ENOTFOUND);
    assert_rc(alcove_identity_load(f->dir, PASS, PASS_LEN, &back),
              ALCOVE_EINVAL); /* a directory */
}

static void default_cost_is_interactive(void **state)
{
    fixture *f = *state;
    uint8_t buf[FILE_BYTES];
    uint64_t ops = 0, mem = 0;

    assert_rc(alcove_identity_encode(f->id, PASS, PASS_LEN, 0, 0, buf), 0);
    for (int i = 0; i < 8; i++) {
        ops = ops << 8 | buf[10 + i];
        mem = mem << 8 | buf[18 + i];
    }
    assert_int_equal(ops, crypto_pwhash_OPSLIMIT_INTERACTIVE);
    assert_int_equal(mem, crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(save_then_load_round_trips),
        T(empty_passphrase_round_trips),
        T(file_is_mode_0600_and_exact_size),
        T(wrong_passphrase_is_epass_and_file_unchanged),
        T(save_never_overwrites_unless_asked),
        T(every_truncation_is_rejected),
        T(trailing_bytes_are_corrupt),
        T(every_byte_bit_flip_is_rejected),
        T(absurd_argon2_parameters_refused_before_deriving),
        T(wrong_tag_and_version_are_format_errors),
        T(missing_file_is_not_found),
        T(default_cost_is_interactive),
    };
#undef T
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
