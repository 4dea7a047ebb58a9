#include "keys_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

static const char TMP_SUFFIX[] = ".tmp.XXXXXX";

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return -1;
    r = fsync(fd);
    if (r != 0 && (errno == EINVAL || errno == EROFS))
        r = 0; /* some file systems cannot sync directories */
    close(fd);
    return r;
}

/* Splits path into a directory (malloc'd, "." when there is no slash) and
 * a temporary name "<dir>/.<base>.tmp.XXXXXX" (malloc'd). */
static int tmp_names(const char *path, size_t plen, char **dir_out,
                     char **tmp_out)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    size_t blen = plen - (size_t)(base - path);
    char *dir, *tmp;

    if (blen == 0)
        return ALCOVE_EINVAL; /* path ends in '/' */
    dir = malloc(dlen + 2);
    tmp = malloc(dlen + 2 + blen + sizeof TMP_SUFFIX + 1);
    if (dir == NULL || tmp == NULL) {
        free(dir);
        free(tmp);
        return ALCOVE_ENOMEM;
    }
    if (slash == NULL)
        memcpy(dir, ".", 2); /* dlen == 1: dir holds 3 bytes */
    else if (dlen == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    memcpy(tmp, path, (size_t)(base - path)); /* "<dir>/" or "" */
    tmp[base - path] = '.';
    memcpy(tmp + (base - path) + 1, base, blen);
    memcpy(tmp + (base - path) + 1 + blen, TMP_SUFFIX, sizeof TMP_SUFFIX);
    *dir_out = dir;
    *tmp_out = tmp;
    return 0;
}

int alcove_keys_file_write(const char *path, const uint8_t *data, size_t len,
                           int flags)
{
    char *dir = NULL, *tmp = NULL;
    int fd = -1, tmp_made = 0, saved = 0;
    int rc = ALCOVE_EINVAL;
    size_t plen;

    if (path == NULL || (data == NULL && len != 0) ||
        (flags & ~ALCOVE_KEYS_FILE_REPLACE) != 0)
        return ALCOVE_EINVAL;
    plen = strnlen(path, ALCOVE_KEYS_FILE_PATH_MAX + 1);
    if (plen == 0 || plen > ALCOVE_KEYS_FILE_PATH_MAX)
        return ALCOVE_EINVAL;
    rc = tmp_names(path, plen, &dir, &tmp);
    if (rc != 0)
        return rc;

    rc = ALCOVE_EIO;
    fd = mkstemp(tmp); /* O_EXCL, mode 0600 */
    if (fd < 0)
        goto out;
    tmp_made = 1;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || write_all(fd, data, len) != 0 ||
        fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;

    if (flags & ALCOVE_KEYS_FILE_REPLACE) {
        if (rename(tmp, path) != 0)
            goto out;
        tmp_made = 0;
    } else if (link(tmp, path) == 0) {
        (void)unlink(tmp); /* path keeps the data */
        tmp_made = 0;
    } else if (errno == EEXIST) {
        rc = ALCOVE_EEXIST;
        goto out;
    } else if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS ||
               errno == EMLINK) {
        struct stat st;
        /* No hard links here: not atomic against a concurrent creator,
         * but never replaces a file that existed before we looked. */
        if (lstat(path, &st) == 0) {
            rc = ALCOVE_EEXIST;
            goto out;
        }
        if (errno != ENOENT || rename(tmp, path) != 0)
            goto out;
        tmp_made = 0;
    } else {
        goto out;
    }
    if (fsync_dir(dir) != 0)
        goto out;
    rc = 0;
out:
    saved = errno;
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        (void)unlink(tmp);
    free(dir);
    free(tmp);
    errno = saved;
    return rc;
}

int alcove_keys_file_read(const char *path, uint8_t *buf, size_t cap,
                          size_t *len)
{
    struct stat st;
    size_t have = 0;
    int fd, rc = ALCOVE_EIO, saved;

    if (path == NULL || buf == NULL || len == NULL)
        return ALCOVE_EINVAL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? ALCOVE_ENOTFOUND : ALCOVE_EIO;
    if (fstat(fd, &st) != 0)
        goto out;
    if (!S_ISREG(st.st_mode)) {
        rc = ALCOVE_EINVAL;
        goto out;
    }
    for (;;) {
        uint8_t extra;
        ssize_t n;

        if (have == cap) {
            /* Full: one more byte means the file is too big. */
            do
                n = read(fd, &extra, 1);
            while (n < 0 && errno == EINTR);
            if (n < 0)
                goto out;
            rc = n == 0 ? 0 : ALCOVE_ETOOBIG;
            break;
        }
        n = read(fd, buf + have, cap - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        if (n == 0) {
            rc = 0;
            break;
        }
        have += (size_t)n;
    }
    if (rc == 0)
        *len = have;
out:
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
