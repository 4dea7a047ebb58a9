/* alcove-fsprobe: the physical limits of the filesystem the benchmarks write
 * to, each bounded by count and by time:
 *   - fdatasync/s of a 4 KiB overwrite in place (a durable commit's floor),
 *   - fdatasync/s of a 4 KiB append (the file grows: metadata too),
 *   - commits/s of LMDB's pattern: write data pages, fdatasync, write the
 *     meta page, fdatasync (two syncs per commit), into a growing file and
 *     into a preallocated one,
 *   - sequential write MB/s (1 MiB writes, then one fdatasync, counted in).
 *
 *   alcove-fsprobe [DIR] [SECONDS]      (default /tmp, 3 s per probe) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* kind 0: overwrite at 0; 1: append; 2: LMDB-style data + meta, two syncs,
 * the data appended (the file grows, as a fresh LMDB file does); 3: the same
 * two syncs into a preallocated (zero-written) file: no size change. */
static double sync_rate(const char *path, int kind, double secs, long *iters)
{
    static uint8_t page[4096];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    memset(page, 0xa5, sizeof page);
    if (pwrite_all(fd, page, sizeof page, 0) != 0 || fdatasync(fd) != 0) {
        close(fd);
        return -1;
    }
    long n = 0, max = 200000;
    off_t off = 4096;
    const off_t prealloc = 64 << 20;
    if (kind == 3) {
        static uint8_t zero[1 << 16];
        for (off_t o = 4096; o < prealloc; o += (off_t)sizeof zero)
            if (pwrite_all(fd, zero, sizeof zero, o) != 0) {
                close(fd);
                return -1;
            }
        if (fdatasync(fd) != 0) {
            close(fd);
            return -1;
        }
    }
    double t0 = now_s(), t;
    do {
        page[0] = (uint8_t)n;
        int rc;
        if (kind == 0) {
            rc = pwrite_all(fd, page, sizeof page, 0) || fdatasync(fd);
        } else if (kind == 1) {
            rc = pwrite_all(fd, page, sizeof page, off) || fdatasync(fd);
            off += 4096;
        } else {
            rc = pwrite_all(fd, page, sizeof page, off) || fdatasync(fd) ||
                 pwrite_all(fd, page, sizeof page, 0) || fdatasync(fd);
            off += 4096;
            if (kind == 3 && off >= prealloc)
                off = 4096;
        }
        if (rc != 0) {
            close(fd);
            return -1;
        }
        n++;
        t = now_s();
    } while (t - t0 < secs && n < max);
    close(fd);
    (void)unlink(path);
    *iters = n;
    return (double)n / (t - t0);
}

static double seq_write(const char *path, double secs, double *mib_out)
{
    const size_t chunk = 1u << 20;
    const long max_chunks = 2048; /* 2 GiB at most */
    uint8_t *buf = malloc(chunk);
    if (buf == NULL)
        return -1;
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        free(buf);
        return -1;
    }
    long n = 0;
    double t0 = now_s();
    while (now_s() - t0 < secs && n < max_chunks) {
        if (pwrite_all(fd, buf, chunk, (off_t)n * (off_t)chunk) != 0) {
            close(fd);
            free(buf);
            return -1;
        }
        n++;
    }
    int rc = fdatasync(fd);
    double t = now_s() - t0;
    close(fd);
    free(buf);
    (void)unlink(path);
    if (rc != 0)
        return -1;
    *mib_out = (double)n;
    return (double)n * (double)chunk / 1e6 / t;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    double secs = argc > 2 ? strtod(argv[2], NULL) : 3.0;
    if (!(secs > 0 && secs <= 60)) {
        fprintf(stderr, "usage: alcove-fsprobe [DIR] [SECONDS (0..60]]\n");
        return 2;
    }
    char path[4096];
    int pn = snprintf(path, sizeof path, "%s/alcove-fsprobe.%ld", dir, (long)getpid());
    if (pn < 0 || (size_t)pn >= sizeof path)
        return 2;
    long n0 = 0, n1 = 0, n2 = 0, n3 = 0;
    double mib = 0;
    double r0 = sync_rate(path, 0, secs, &n0);
    double r1 = sync_rate(path, 1, secs / 2, &n1);
    double r2 = sync_rate(path, 2, secs / 2, &n2);
    double r3 = sync_rate(path, 3, secs / 2, &n3);
    double mbps = seq_write(path, secs, &mib);
    if (r0 < 0 || r1 < 0 || r2 < 0 || r3 < 0 || mbps < 0) {
        fprintf(stderr, "alcove-fsprobe: I/O error in %s: %s\n", dir, strerror(errno));
        (void)unlink(path);
        return 1;
    }
    printf("result probe=fs dir=%s fdatasync_overwrite_per_s=%.0f fdatasync_append_per_s=%.0f "
           "lmdb_style_commits_per_s=%.0f lmdb_style_prealloc_commits_per_s=%.0f "
           "seq_write_mb_per_s=%.0f seq_write_mib=%.0f\n",
           dir, r0, r1, r2, r3, mbps, mib);
    fprintf(stderr,
            "fsprobe %s: %.0f fdatasync/s (4 KiB overwrite, %ld done), %.0f/s (4 KiB append), "
            "%.0f two-sync commits/s (growing file), %.0f (preallocated file); sequential "
            "write %.0f MB/s (%.0f MiB incl. final sync)\n",
            dir, r0, n0, r1, r2, r3, mbps, mib);
    return 0;
}
