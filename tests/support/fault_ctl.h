/* Test support: the control block shared between a test and the LD_PRELOAD
 * fault shim (tests/support/fault_shim.c) running inside a relay or client.
 *
 * The test creates a file holding one fault_ctl (fault_ctl_create in
 * fault_util.h) and passes its path in ALCOVE_FAULT_CTL; both sides map it
 * MAP_SHARED, so the test can switch faults on and off mid-run with a plain
 * store and read the shim's counters without any syscall in the hot path.
 *
 * Faults apply only to files whose path contains `match` (e.g. "data.mdb"),
 * as opened after the shim loaded.  Fields the shim writes are updated with
 * __atomic builtins. */
#ifndef ALCOVE_TEST_FAULT_CTL_H
#define ALCOVE_TEST_FAULT_CTL_H

#include <stdint.h>

#define FAULT_CTL_MAGIC 0x46434c41u /* "ALCF" */

typedef struct fault_ctl {
    uint32_t magic;
    /* Set by the test (read by the shim on every call): */
    uint32_t sync_eio;       /* != 0: fsync/fdatasync/msync on matched files -> EIO */
    uint32_t sync_fail_next; /* > 0: fail this many next syncs with EIO (one-shot) */
    uint32_t write_enospc;   /* != 0: write/pwrite/writev on matched files -> ENOSPC */
    char match[64];          /* path substring of the files to affect */
    /* Power-loss emulation, read once when the shim loads: if set, every
     * write to a matched file appends its old bytes to this undo log, and
     * every sync appends whether it succeeded (fault_powerloss_apply). */
    char undo_path[256];
    /* Written by the shim: */
    uint64_t syncs;          /* sync calls on matched files */
    uint64_t syncs_failed;   /* of which were failed on purpose */
    uint64_t writes;         /* write calls on matched files */
    uint64_t writes_failed;  /* of which were failed on purpose */
    uint32_t shim_loaded;    /* pid of the last process that mapped this */
    uint32_t pad;
} fault_ctl;

/* Undo-log records (native endianness; the log never leaves the machine). */
enum { FAULT_UNDO_WRITE = 1, FAULT_UNDO_SYNC_OK = 2, FAULT_UNDO_SYNC_FAIL = 3 };
typedef struct fault_undo_rec {
    uint32_t type;
    uint32_t len;      /* WRITE: bytes of old content that follow */
    uint64_t off;      /* WRITE: file offset */
    uint64_t old_size; /* WRITE: file size before the write */
    uint64_t t_us;     /* CLOCK_MONOTONIC: WRITE before it, syncs after they returned */
} fault_undo_rec;

#endif
