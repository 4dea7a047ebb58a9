/* Test support for the fault-injection and abuse tests (issue 5): the
 * LD_PRELOAD shim's control block, power-loss emulation, process figures
 * (CPU time, RSS), latency percentiles, and the short/long mode switch.
 *
 * Short mode (the default, what CI runs) keeps every test well under a
 * minute; ALCOVE_LONG=1 selects the long mode documented in docs/security.md. */
#ifndef ALCOVE_TEST_FAULT_UTIL_H
#define ALCOVE_TEST_FAULT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault_ctl.h"
#include "relayproc.h"

/* 1 when ALCOVE_LONG is set to something other than "" or "0". */
int fault_long_mode(void);
/* Integer from the environment, or def when unset or not a number. */
long fault_env_long(const char *name, long def);

/* Path of the shim ($ALCOVE_FAULT_SHIM, set by ctest); NULL if unset. */
const char *fault_shim_path(void);

/* Create (truncate) FILE holding a zeroed fault_ctl with the magic set and
 * map it shared.  match: the path substrings of the files to affect,
 * separated by '|' (e.g. "data.mdb", or "data.mdb|journal" for the relay's
 * store: file index 0 is data.mdb, 1 the journal; fault_match_index and
 * FAULT_FILE in fault_ctl.h name them, e.g. to set fault_files);
 * undo_path: NULL, or an undo log for the fault_powerloss_apply functions.
 * Aborts the test on failure.  Unmap with fault_ctl_unmap. */
fault_ctl *fault_ctl_create(const char *file, const char *match, const char *undo_path);
void fault_ctl_unmap(fault_ctl *c);

/* Start a relay as relayproc_start does, with the shim preloaded and
 * ALCOVE_FAULT_CTL=ctl_file (NULL: no control block).  extra_env is a
 * NULL-terminated list of NAME=value (may be NULL).  The test's own
 * environment is restored before returning.  Returns as relayproc_start. */
int fault_relay_start(relayproc *rp, const char *const *extra, const char *ctl_file,
                      const char *const *extra_env);

/* Emulate a power failure at time cut_us (CLOCK_MONOTONIC microseconds;
 * UINT64_MAX: after the last record) on the files of an undo log, whose
 * writer has since been killed.  files[i] is where the file of match index
 * i is now (NULL: leave it alone); every index in the log must be below
 * nfiles.  Per file, every write recorded after the cut is undone, and so
 * is every write before it not followed by a successful sync of THAT file
 * before the cut (or followed first by a failed one: after a failed fsync
 * Linux may drop the dirty pages and report success to the next one),
 * newest first, without touching bytes that a kept write settled; a file
 * that lost a write which grew it is cut back to its size before (unless a
 * kept write reaches further); a file whose name a rename created after the
 * cut (written under a temporary name and renamed into place) is removed.
 *
 * writeback: FAULT_FILE(i) bits of the files for which the kernel is taken
 * to have written back every write made before the cut, synced or not (even
 * one before a failed sync: only some of its writeback may have failed):
 * only their writes after the cut are undone.  The two extremes for a file
 * are writeback 0 and writeback FAULT_FILE(i); both are states a real power
 * cut can leave.
 *
 * Returns 0 and fills the counts, or -1 if a file cannot be read or
 * written. */
typedef struct fault_powerloss_stats {
    uint64_t writes, undone_writes, undone_bytes, syncs_ok, syncs_failed;
    uint64_t file_writes[FAULT_MAX_FILES], file_undone_writes[FAULT_MAX_FILES];
    uint64_t truncated; /* files cut back to an earlier size */
    uint64_t removed;   /* files whose name did not exist yet at the cut */
} fault_powerloss_stats;
int fault_powerloss_apply_files(const char *const *files, int nfiles, const char *undo_path,
                                uint64_t cut_us, uint32_t writeback, fault_powerloss_stats *st);
/* The same for the files dir/<pattern> for each pattern of match (the
 * relay's store: dir <data>/store, match "data.mdb|journal"). */
int fault_powerloss_apply_dir(const char *dir, const char *match, const char *undo_path,
                              uint64_t cut_us, uint32_t writeback, fault_powerloss_stats *st);
/* The same for a log of one file (match had one pattern), writeback 0. */
int fault_powerloss_apply(const char *data_file, const char *undo_path, uint64_t cut_us,
                          fault_powerloss_stats *st);

/* The sync records of an undo log, in log order: times (us), whether each
 * succeeded, and (file != NULL) the match index of the file synced.  *times,
 * *ok and *file are malloc'd.  Returns the count, or -1. */
long fault_undo_syncs(const char *undo_path, uint64_t **times, int **ok, int **file);

/* Message ids (the first `id_len` bytes of each blob) in the relay `log`
 * database of an LMDB data file, opened read-only without a lock file.
 * *ids is malloc'd (n * id_len bytes).  Returns the count, or -1 if the
 * environment does not open (*why says why). */
long fault_relay_log_ids(const char *data_file, size_t id_len, uint8_t **ids, const char **why);

/* Copy a file (blocks of zeros become holes).  Returns 0 or -1. */
int fault_copy_file(const char *from, const char *to);
/* Copy from_dir/<pattern> to to_dir/<pattern> for each pattern of match
 * (one absent in from_dir is removed from to_dir).  Returns 0 or -1. */
int fault_copy_store(const char *from_dir, const char *to_dir, const char *match);

/* User + system CPU time of a process in milliseconds, or -1. */
long fault_cpu_ms(pid_t pid);
/* Peak resident set size (VmHWM) in KiB, or -1. */
long fault_rss_peak_kib(pid_t pid);
/* Anonymous resident memory (RssAnon: heap, not the mapped store) in KiB,
 * or -1. */
long fault_rss_anon_kib(pid_t pid);
/* 1 in a sanitizer build (memory figures are then reported, not bounded). */
int fault_sanitized(void);

/* Raise this process's RLIMIT_NOFILE soft limit to at least want (up to the
 * hard limit; as root also the hard limit).  Returns the soft limit now. */
long fault_raise_nofile(long want);

/* p-th percentile (0..100) of v[0..n) (sorts v in place); 0 if n == 0. */
double fault_percentile(double *v, size_t n, double p);

/* Monotonic time in microseconds. */
uint64_t fault_now_us(void);

/* Count non-overlapping occurrences of needle in the file (0 if absent). */
int fault_file_count(const char *path, const char *needle);

#endif
