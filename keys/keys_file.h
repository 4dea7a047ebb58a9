/* Key files on disk: atomic creation and bounded reading.
 *
 * A key file is written whole or not at all: the bytes go to a temporary file
 * (mode 0600, created with mkstemp in the target's directory so the final
 * rename/link cannot cross file systems), which is fsync'd, then moved into
 * place, then the directory is fsync'd.  Readers never see a partial file,
 * and a crash leaves either the old file or the new one (plus, at worst, a
 * stray ".<name>.tmp.XXXXXX" file). */
#ifndef ALCOVE_KEYS_FILE_H
#define ALCOVE_KEYS_FILE_H

#include <stddef.h>
#include <stdint.h>

/* alcove_keys_file_write flags. */
#define ALCOVE_KEYS_FILE_REPLACE 1 /* replace an existing file at path */

/* Longest path accepted (bytes, without the NUL). */
#define ALCOVE_KEYS_FILE_PATH_MAX 4000u

/* Write data[0..len) to path atomically with mode 0600.
 * Without ALCOVE_KEYS_FILE_REPLACE an existing path is never touched: the new
 * file is hard-linked into place (atomic "create if absent"); on file systems
 * without hard links this falls back to check-then-rename.
 * Returns 0, or
 *   ALCOVE_EINVAL  NULL path/data, empty or over-long path, unknown flags;
 *   ALCOVE_EEXIST  path exists and ALCOVE_KEYS_FILE_REPLACE was not given;
 *   ALCOVE_ENOMEM  out of memory;
 *   ALCOVE_EIO     any system call failed (errno is preserved for the
 *                  caller's message).
 * On failure the temporary file is removed and path is unchanged. */
int alcove_keys_file_write(const char *path, const uint8_t *data, size_t len,
                           int flags);

/* Read the whole regular file at path into buf[0..cap).
 * Returns 0 and *len, or
 *   ALCOVE_EINVAL    NULL arguments, or path is not a regular file;
 *   ALCOVE_ENOTFOUND path does not exist;
 *   ALCOVE_ETOOBIG   the file holds more than cap bytes (buf then holds
 *                    garbage the caller should wipe);
 *   ALCOVE_EIO       open/read failed (errno preserved). */
int alcove_keys_file_read(const char *path, uint8_t *buf, size_t cap,
                          size_t *len);

#endif
