/* alcove backup FILE / alcove restore FILE: one encrypted file holding the
 * identity file, a consistent copy of the store and (inside it) the audit
 * log.  File layout (big-endian), like the identity file:
 *
 *   offset size
 *        0    8  format tag "ALCOVEBK"
 *        8    1  version = 1
 *        9    1  KDF = 1 (Argon2id v1.3)
 *       10    8  Argon2id opslimit
 *       18    8  Argon2id memlimit in bytes
 *       26   16  salt
 *       42   24  XChaCha20-Poly1305 nonce
 *       66    -  ciphertext||tag of alcove.local.Backup, AD = the 66 bytes
 *
 * Restore safety: the store copy inside the backup marks every session with
 * the sending ratchet key it had at that moment (Contact.restored_dh_pub);
 * a restored session sends nothing until that key has changed (outbox.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "err.h"
#include "keys_file.h"
#include "ratchet.h"
#include "render.h"

#define BK_TAG "ALCOVEBK"
#define BK_HEADER 66u
#define BK_KEY 32u
#define BK_MAX (2ull << 30) /* refuse larger files */
#define BK_OPS_DEFAULT 3u
#define BK_MEM_DEFAULT (256ull * 1024u * 1024u)

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The backup passphrase: $ALCOVE_BACKUP_PASSPHRASE, --backup-passphrase-file,
 * else the terminal (twice when confirm). */
static int backup_passphrase(app *a, const char *file, int confirm, char **out, size_t *len)
{
    const char *env = getenv("ALCOVE_BACKUP_PASSPHRASE");
    char saved[PATH_MAX];
    int rc;
    if (env != NULL) {
        /* app_passphrase reads ALCOVE_PASSPHRASE first: swap it in. */
        const char *old = getenv("ALCOVE_PASSPHRASE");
        char *keep = old ? strdup(old) : NULL;
        setenv("ALCOVE_PASSPHRASE", env, 1);
        rc = app_passphrase(a, "", 0, out, len);
        if (keep != NULL) {
            setenv("ALCOVE_PASSPHRASE", keep, 1);
            free(keep);
        } else
            unsetenv("ALCOVE_PASSPHRASE");
        return rc;
    }
    const char *old = getenv("ALCOVE_PASSPHRASE");
    char *keep = old ? strdup(old) : NULL;
    unsetenv("ALCOVE_PASSPHRASE");
    snprintf(saved, sizeof saved, "%s", a->passphrase_file);
    snprintf(a->passphrase_file, sizeof a->passphrase_file, "%s", file ? file : "");
    rc = app_passphrase(a, confirm ? "New backup passphrase: " : "Backup passphrase: ", confirm, out,
                        len);
    snprintf(a->passphrase_file, sizeof a->passphrase_file, "%s", saved);
    if (keep != NULL) {
        setenv("ALCOVE_PASSPHRASE", keep, 1);
        free(keep);
    }
    return rc;
}

static int read_all(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > BK_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    while (b != NULL && got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (b == NULL || got != n) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

static void rm_store_dir(const char *dir)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

/* Mark every session of the store copy in dir as restored (restore safety). */
static int mark_copy(app *a, const char *dir)
{
    cstore *s = NULL;
    cstore_txn *t = NULL;
    const char *why = NULL;
    Alcove__Local__Contact **v = NULL;
    size_t n = 0;
    uint8_t *val = NULL;
    size_t vlen = 0;
    int e = cstore_open(&s, dir, alcove_identity_store_key(a->id), &why);
    if (e == 0)
        e = cstore_begin(s, 1, &t);
    if (e == 0)
        e = contact_list(t, &v, &n);
    for (size_t i = 0; e == 0 && i < n; i++) {
        alcove_ratchet *r = NULL;
        uint8_t pub[32];
        if (session_load(t, v[i]->id.data, &r) != 0)
            continue;
        int ok = alcove_ratchet_sending_pub(r, pub) == 0;
        alcove_ratchet_free(r);
        if (!ok)
            continue;
        v[i]->has_restored_dh_pub = 1;
        v[i]->restored_dh_pub = (ProtobufCBinaryData){32, pub};
        e = contact_save(t, v[i]);
        v[i]->has_restored_dh_pub = 0;
        v[i]->restored_dh_pub = (ProtobufCBinaryData){0, NULL};
    }
    if (e == 0 && (e = cstore_get(t, CS_META, "meta", 4, &val, &vlen)) == 0) {
        Alcove__Local__Meta *m = alcove__local__meta__unpack(NULL, vlen, val);
        cstore_free_value(val, vlen);
        if (m == NULL)
            e = ALCOVE_ECORRUPT;
        else {
            m->has_restored_from = 1;
            m->restored_from = a->now();
            m->has_restore_logged = 1;
            m->restore_logged = 0;
            e = app_save_meta(t, m);
            alcove__local__meta__free_unpacked(m, NULL);
        }
    }
    if (e == 0) {
        e = cstore_commit(t);
        t = NULL;
    }
    cstore_abort(t);
    contact_list_free(v, n);
    cstore_close(s);
    return e;
}

int cmd_backup(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"backup-passphrase-file", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    const char *pfile = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p')
            pfile = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return usage_error("backup needs the FILE to write");
    const char *path = argv[optind];
    if (access(path, F_OK) == 0) {
        app_error("%s already exists; alcove does not overwrite backups", path);
        return EXIT_FAIL;
    }
    if (app_open(a) != 0)
        return EXIT_FAIL;
    char *pass = NULL, tmp[PATH_MAX + 32], idpath[PATH_MAX + 32], marker[PATH_MAX + 32],
         data[PATH_MAX + 64];
    size_t plen = 0, idlen = 0, slen = 0, blen = 0, n = 0;
    uint8_t *idbytes = NULL, *store = NULL, *plain = NULL, *file = NULL, key[BK_KEY];
    cstore_txn *t = NULL;
    int rc = EXIT_FAIL, e, made_tmp = 0;
    if (backup_passphrase(a, pfile, 1, &pass, &plen) != 0)
        return EXIT_FAIL;
    /* The backup's own creation is in the log it carries. */
    if ((e = cstore_begin(a->store, 1, &t)) != 0 ||
        (e = audit_append(t, a->now(), AUDIT_BACKUP_MADE, NULL)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_error("cannot record the backup in the audit log: %s", alcove_strerror(e));
        goto out;
    }
    t = NULL;
    app_path(a, ".backup-XXXXXX", tmp, sizeof tmp);
    if (mkdtemp(tmp) == NULL) {
        app_error("cannot make a temporary directory in %s: %s", a->home, strerror(errno));
        goto out;
    }
    made_tmp = 1;
    if ((e = cstore_copy(a->store, tmp)) != 0 || (e = mark_copy(a, tmp)) != 0) {
        app_error("cannot copy the local store: %s", alcove_strerror(e));
        goto out;
    }
    snprintf(data, sizeof data, "%s/data.mdb", tmp);
    app_path(a, "identity", idpath, sizeof idpath);
    app_path(a, "no-passphrase", marker, sizeof marker);
    if (read_all(data, &store, &slen) != 0 || read_all(idpath, &idbytes, &idlen) != 0) {
        app_error("cannot read the files to back up: %s", strerror(errno));
        goto out;
    }
    Alcove__Local__Backup bk = ALCOVE__LOCAL__BACKUP__INIT;
    bk.has_version = bk.has_created_at = bk.has_identity = bk.has_no_passphrase = bk.has_store = 1;
    bk.version = 1;
    bk.created_at = a->now();
    bk.identity = (ProtobufCBinaryData){idlen, idbytes};
    bk.no_passphrase = access(marker, F_OK) == 0;
    bk.store = (ProtobufCBinaryData){slen, store};
    n = alcove__local__backup__get_packed_size(&bk);
    blen = BK_HEADER + n + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if ((plain = malloc(n ? n : 1)) == NULL || (file = malloc(blen)) == NULL) {
        app_error("out of memory (the store is %zu bytes)", slen);
        goto out;
    }
    alcove__local__backup__pack(&bk, plain);
    /* No way to lower this: a backup file can be attacked offline. */
    const uint64_t ops = BK_OPS_DEFAULT, mem = BK_MEM_DEFAULT;
    memcpy(file, BK_TAG, 8);
    file[8] = 1;
    file[9] = 1;
    put64(file + 10, ops);
    put64(file + 18, mem);
    randombytes_buf(file + 26, 16);
    randombytes_buf(file + 42, 24);
    if (crypto_pwhash(key, sizeof key, pass, plen, file + 26, ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        app_error("not enough memory for the key derivation");
        goto out;
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt(file + BK_HEADER, NULL, plain, n, file, BK_HEADER,
                                               NULL, file + 42, key);
    if ((e = alcove_keys_file_write(path, file, blen, 0)) != 0) {
        app_error("cannot write %s: %s", path, e == ALCOVE_EEXIST ? "it exists" : strerror(errno));
        goto out;
    }
    if (a->json)
        printf("{\n  \"file\": \"%s\",\n  \"bytes\": %zu\n}\n", path, blen);
    else {
        printf("Wrote the backup %s (%zu bytes): your identity, every conversation and the audit "
               "log,\nencrypted under the backup passphrase.\n", path, blen);
        printf("Keep it somewhere safe, apart from this computer. Restore with: alcove restore "
               "FILE --home DIR\n");
    }
    rc = EXIT_OK;
out:
    cstore_abort(t);
    if (made_tmp)
        rm_store_dir(tmp);
    if (pass != NULL)
        sodium_free(pass);
    sodium_memzero(key, sizeof key);
    if (plain != NULL) {
        sodium_memzero(plain, n);
        free(plain);
    }
    free(file);
    free(store);
    if (idbytes != NULL) {
        sodium_memzero(idbytes, idlen);
        free(idbytes);
    }
    return rc;
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;
    if (d == NULL)
        return errno == ENOENT ? 1 : -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static int write_file(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, b + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

int cmd_restore(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"backup-passphrase-file", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    const char *pfile = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p')
            pfile = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return usage_error("restore needs the backup FILE");
    const char *path = argv[optind];
    uint8_t *file = NULL, *plain = NULL, key[BK_KEY];
    size_t flen = 0, plen = 0, n = 0;
    char *pass = NULL, stage[PATH_MAX + 64], p[PATH_MAX + 96];
    Alcove__Local__Backup *bk = NULL;
    int rc = EXIT_FAIL, staged = 0;
    stage[0] = '\0';
    int empty = dir_empty(a->home);
    if (empty != 1) {
        app_error("%s is not empty; restore writes a new home and never overwrites one",
                  a->home);
        app_hint("pass --home DIR with a new or empty directory");
        return EXIT_FAIL;
    }
    if (read_all(path, &file, &flen) != 0) {
        app_error("cannot read %s: %s", path, strerror(errno));
        return EXIT_FAIL;
    }
    if (flen < BK_HEADER + crypto_aead_xchacha20poly1305_ietf_ABYTES ||
        memcmp(file, BK_TAG, 8) != 0) {
        app_error("%s is not an alcove backup%s", path, flen >= 8 && memcmp(file, BK_TAG, 8) == 0
                                                         ? " (it is truncated)" : "");
        goto out;
    }
    uint64_t ops = get64(file + 10), mem = get64(file + 18);
    if (file[8] != 1 || file[9] != 1) {
        app_error("%s is a backup of an unsupported version", path);
        app_hint("restore it with a newer alcove");
        goto out;
    }
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 16 || mem < crypto_pwhash_MEMLIMIT_MIN ||
        mem > (1ull << 30)) {
        app_error("%s is damaged (its key derivation settings are out of range)", path);
        goto out;
    }
    if (backup_passphrase(a, pfile, 0, &pass, &plen) != 0)
        goto out;
    if (crypto_pwhash(key, sizeof key, pass, plen, file + 26, ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        app_error("not enough memory for the key derivation");
        goto out;
    }
    n = flen - BK_HEADER - crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if ((plain = malloc(n ? n : 1)) == NULL) {
        app_error("out of memory");
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, file + BK_HEADER,
                                                   flen - BK_HEADER, file, BK_HEADER, file + 42,
                                                   key) != 0) {
        app_error("wrong backup passphrase, or %s is damaged (it does not authenticate)", path);
        app_hint("nothing was written");
        goto out;
    }
    bk = alcove__local__backup__unpack(NULL, n, plain);
    if (bk == NULL || bk->version != 1 || bk->identity.len != ALCOVE_IDENTITY_FILE_BYTES ||
        memcmp(bk->identity.data, ALCOVE_IDENTITY_TAG, ALCOVE_IDENTITY_TAG_BYTES) != 0 ||
        bk->store.len < 4096) {
        app_error("%s authenticates but does not hold an alcove home (made by another version?)",
                  path);
        goto out;
    }
    /* Stage everything next to the home, then move it into place at once. */
    snprintf(stage, sizeof stage, "%s.restore-XXXXXX", a->home);
    if (mkdtemp(stage) == NULL) {
        app_error("cannot create a directory next to %s: %s", a->home, strerror(errno));
        stage[0] = '\0';
        goto out;
    }
    staged = 1;
    snprintf(p, sizeof p, "%s/identity", stage);
    if (write_file(p, bk->identity.data, bk->identity.len) != 0)
        goto io;
    if (bk->no_passphrase) {
        snprintf(p, sizeof p, "%s/no-passphrase", stage);
        if (write_file(p, (const uint8_t *)"", 0) != 0)
            goto io;
    }
    snprintf(p, sizeof p, "%s/store", stage);
    if (mkdir(p, 0700) != 0)
        goto io;
    snprintf(p, sizeof p, "%s/store/data.mdb", stage);
    if (write_file(p, bk->store.data, bk->store.len) != 0)
        goto io;
    if (chmod(stage, 0700) != 0)
        goto io;
    rmdir(a->home); /* an empty directory, or nothing */
    if (rename(stage, a->home) != 0)
        goto io;
    staged = 0;
    char when[32];
    render_time(bk->created_at, when, sizeof when);
    if (a->json)
        printf("{\n  \"home\": \"%s\",\n  \"backup_made_at\": %llu\n}\n", a->home,
               (unsigned long long)bk->created_at);
    else {
        printf("Restored the backup made %s into %s.\n", when, a->home);
        printf("Your identity and passphrase are the ones you had then.\n");
        printf("Every conversation re-keys before it sends again: run 'alcove fetch'; a contact\n"
               "whose app moved on since the backup needs 'alcove reinvite CONTACT'.\n");
    }
    rc = EXIT_OK;
    goto out;
io:
    app_error("cannot write the restored home: %s (nothing was kept)", strerror(errno));
out:
    if (staged && stage[0]) {
        snprintf(p, sizeof p, "%s/identity", stage);
        unlink(p);
        snprintf(p, sizeof p, "%s/no-passphrase", stage);
        unlink(p);
        snprintf(p, sizeof p, "%s/store", stage);
        rm_store_dir(p);
        rmdir(stage);
    }
    if (bk != NULL)
        alcove__local__backup__free_unpacked(bk, NULL);
    if (pass != NULL)
        sodium_free(pass);
    sodium_memzero(key, sizeof key);
    if (plain != NULL) {
        sodium_memzero(plain, n);
        free(plain);
    }
    free(file);
    return rc;
}
