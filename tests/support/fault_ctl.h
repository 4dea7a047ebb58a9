/* Test support: the control block shared between a test and the LD_PRELOAD
 * fault shim (tests/support/fault_shim.c) running inside a relay or client.
 *
 * The test creates a file holding one fault_ctl (fault_ctl_create in
 * fault_util.h) and passes its path in ALCOVE_FAULT_CTL; both sides map it
 * MAP_SHARED, so the test can switch faults on and off mid-run with a plain
 * store and read the shim's counters without any syscall in the hot path.
 *
 * Faults apply only to files whose path contains one of the patterns of
 * `match`, a list separated by '|' (e.g. "data.mdb" or "data.mdb|journal"),
 * as opened after the shim loaded.  A file's index is the position of the
 * first pattern its path contains (0 for "data.mdb", 1 for "journal" in
 * "data.mdb|journal"); counters, undo records and sync markers are kept per
 * index, and fault_files selects the indexes the fault switches act on.
 * Fields the shim writes are updated with __atomic builtins. */
#ifndef ALCOVE_TEST_FAULT_CTL_H
#define ALCOVE_TEST_FAULT_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FAULT_CTL_MAGIC 0x46434c41u /* "ALCF" */
#define FAULT_MAX_FILES 4           /* patterns in match; later ones are ignored */
#define FAULT_FILE(i) (1u << (i))   /* a bit of fault_files */

typedef struct fault_ctl {
    uint32_t magic;
    /* Set by the test (read by the shim on every call): */
    uint32_t sync_eio;       /* != 0: fsync/fdatasync/msync on selected files -> EIO */
    uint32_t sync_fail_next; /* > 0: fail this many next syncs of selected files (one-shot) */
    uint32_t write_enospc;   /* != 0: write/pwrite/writev on selected files -> ENOSPC */
    uint32_t fault_files;    /* FAULT_FILE(i) bits: the files the three switches above act
                              * on; 0: every matched file */
    uint32_t pad0;
    char match[128];         /* '|'-separated path substrings of the files to affect */
    /* Power-loss emulation, read once when the shim loads: if set, every
     * write to a matched file appends its old bytes to this undo log, every
     * sync appends whether it succeeded, and a rename onto a matched name
     * appends when the name came to exist (fault_powerloss_apply_files). */
    char undo_path[256];
    /* Written by the shim (totals, then per file index): */
    uint64_t syncs;          /* sync calls on matched files */
    uint64_t syncs_failed;   /* of which were failed on purpose */
    uint64_t writes;         /* write calls on matched files */
    uint64_t writes_failed;  /* of which were failed on purpose */
    uint64_t file_syncs[FAULT_MAX_FILES];
    uint64_t file_syncs_failed[FAULT_MAX_FILES];
    uint64_t file_writes[FAULT_MAX_FILES];
    uint64_t file_writes_failed[FAULT_MAX_FILES];
    uint32_t shim_loaded;    /* pid of the last process that mapped this */
    uint32_t pad;
} fault_ctl;

/* The i-th pattern of a match list into out (cap bytes).  Returns its
 * length, or -1 if the list has no i-th (non-empty) pattern. */
static inline int fault_match_pattern(const char *match, int i, char *out, size_t cap)
{
    const char *p = match;
    for (int k = 0; p != NULL && k < i; k++) {
        p = strchr(p, '|');
        if (p != NULL)
            p++;
    }
    if (p == NULL || cap == 0)
        return -1;
    const char *bar = strchr(p, '|');
    size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return (int)n;
}

/* Index of the pattern equal to name in a match list, or -1. */
static inline int fault_match_index(const char *match, const char *name)
{
    char pat[128];
    for (int i = 0; i < FAULT_MAX_FILES; i++)
        if (fault_match_pattern(match, i, pat, sizeof pat) >= 0 && strcmp(pat, name) == 0)
            return i;
    return -1;
}

/* Undo-log records (native endianness; the log never leaves the machine and
 * its format is private to the shim and fault_util.c). */
enum {
    FAULT_UNDO_WRITE = 1,
    FAULT_UNDO_SYNC_OK = 2,
    FAULT_UNDO_SYNC_FAIL = 3,
    FAULT_UNDO_RENAME = 4 /* a rename made the file's name exist (or replaced it) */
};
typedef struct fault_undo_rec {
    uint32_t type;
    uint32_t len;      /* WRITE: bytes of old content that follow */
    uint64_t off;      /* WRITE: file offset */
    uint64_t old_size; /* WRITE: file size before the write; RENAME: size of the file
                        * the rename replaced, UINT64_MAX if the name was free */
    uint64_t t_us;     /* CLOCK_MONOTONIC: WRITE before it, syncs and renames after
                        * they returned */
    uint32_t file;     /* index of the file in the match list */
    uint32_t pad;
} fault_undo_rec;

#endif
