#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

static const uint8_t tag[8] = {'A', 'L', 'C', 'R', 'K', 0, 0, 1};

static int path_in(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? ALCOVE_EINVAL : 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ALCOVE_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ALCOVE_EIO;
    int rc = fsync(fd) == 0 ? 0 : ALCOVE_EIO;
    close(fd);
    return rc;
}

int relay_key_create(const char *dir, uint8_t pub[32])
{
    char path[PATH_MAX], tmp[PATH_MAX];
    uint8_t buf[40];
    int fd = -1, rc = ALCOVE_EIO;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ALCOVE_EIO;
    if (chmod(dir, 0700) != 0)
        return ALCOVE_EIO;
    if (path_in(path, sizeof path, dir, RELAY_KEYFILE_NAME) != 0 ||
        path_in(tmp, sizeof tmp, dir, RELAY_KEYFILE_NAME ".tmp") != 0)
        return ALCOVE_EINVAL;
    if (access(path, F_OK) == 0)
        return ALCOVE_EEXIST;
    memcpy(buf, tag, sizeof tag);
    randombytes_buf(buf + 8, 32);
    if (crypto_scalarmult_base(pub, buf + 8) != 0)
        goto out;
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    if (write_all(fd, buf, sizeof buf) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    /* link() fails if a key appeared meanwhile: never replace a key. */
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? ALCOVE_EEXIST : ALCOVE_EIO;
        goto out;
    }
    rc = fsync_dir(dir);
out:
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int relay_key_load(const char *dir, uint8_t **secret, uint8_t pub[32])
{
    char path[PATH_MAX];
    uint8_t buf[41];
    uint8_t *sk = NULL;
    ssize_t n = 0;
    int rc = ALCOVE_EIO;

    *secret = NULL;
    if (path_in(path, sizeof path, dir, RELAY_KEYFILE_NAME) != 0)
        return ALCOVE_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ALCOVE_ENOTFOUND : ALCOVE_EIO;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - (size_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        n += r;
        if ((size_t)n == sizeof buf)
            break;
    }
    if (n != 40 || memcmp(buf, tag, sizeof tag) != 0) {
        rc = ALCOVE_EFORMAT;
        goto out;
    }
    sk = sodium_malloc(32);
    if (sk == NULL) {
        rc = ALCOVE_ENOMEM;
        goto out;
    }
    memcpy(sk, buf + 8, 32);
    if (crypto_scalarmult_base(pub, sk) != 0) {
        rc = ALCOVE_EFORMAT;
        goto out;
    }
    sodium_mprotect_readonly(sk);
    *secret = sk;
    sk = NULL;
    rc = 0;
out:
    close(fd);
    sodium_memzero(buf, sizeof buf);
    if (sk != NULL)
        sodium_free(sk);
    return rc;
}

int relay_public_write(const char *dir, const char *hostport)
{
    char path[PATH_MAX];
    if (path_in(path, sizeof path, dir, RELAY_PUBLICFILE_NAME) != 0)
        return ALCOVE_EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ALCOVE_EIO;
    int rc = write_all(fd, (const uint8_t *)hostport, strlen(hostport));
    if (rc == 0)
        rc = write_all(fd, (const uint8_t *)"\n", 1);
    if (rc == 0 && fsync(fd) != 0)
        rc = ALCOVE_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = ALCOVE_EIO;
    return rc;
}

int relay_public_read(const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX];
    if (path_in(path, sizeof path, dir, RELAY_PUBLICFILE_NAME) != 0)
        return ALCOVE_EINVAL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? ALCOVE_ENOTFOUND : ALCOVE_EIO;
    int rc = fgets(out, (int)cap, f) ? 0 : ALCOVE_EIO;
    fclose(f);
    if (rc == 0)
        out[strcspn(out, "\r\n")] = '\0';
    return rc;
}
