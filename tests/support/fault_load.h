/* Test support: a continuous, mixed load against a real relay for the fault
 * tests, and the check that nothing acknowledged was lost.
 *
 * Load (forked processes; each exits when the relay goes away or it is told
 * to stop):
 *   senders  pipeline Sends (window requests in flight) round-robin over the
 *            load's mailboxes; each OK is appended to sent.bin, and every
 *            reply (any status) with its send and reply times to timing.bin;
 *   owner    logs in to every mailbox, fetches a batch, appends the batch's
 *            prefix to consumed.bin, acks it, appends the acked Ack;
 *   deleter  creates a mailbox, sends to it, deletes it, appends it.
 * Record files are O_APPEND and written before the next request, so they
 * hold exactly what the relay acknowledged.
 *
 * fault_load_check restarts nothing: it connects to a running relay, reads
 * every mailbox back and compares. */
#ifndef ALCOVE_TEST_FAULT_LOAD_H
#define ALCOVE_TEST_FAULT_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "address.h"
#include "wire.h"

#define FAULT_LOAD_MAX_MBOX 8
#define FAULT_LOAD_MAX_KIDS 16

typedef struct fault_msg_id {
    uint32_t mbox, sender, round, counter;
} fault_msg_id;

/* One reply to a Send: when it was sent and answered (monotonic us). */
typedef struct fault_timing {
    uint64_t t_send, t_reply;
    int32_t status; /* Status */
    uint32_t sender;
    fault_msg_id id;
} fault_timing;

typedef struct fault_load {
    char dir[256];
    int nmbox;
    test_mbox mbs[FAULT_LOAD_MAX_MBOX];
    /* Options (set after fault_load_init, before fault_load_start): */
    int nsenders;  /* default 4 */
    int window;    /* Sends in flight per sender, default 8 (at most 64) */
    int blob_len;  /* default 300 (at least 16) */
    int owner;     /* 1: run the owner (default 1) */
    int deleter;   /* 1: run the deleter (default 1) */
    int pause_ms;  /* senders pause this long between replies (default 0) */
    /* State: */
    int fd_sent, fd_cons, fd_ack, fd_del, fd_timing;
    pid_t kids[FAULT_LOAD_MAX_KIDS];
    int nkids;
} fault_load;

typedef struct fault_load_report {
    size_t sent;         /* acked Sends */
    size_t acks;         /* acked Acks */
    size_t deletes;      /* acked DeleteMailbox */
    size_t stored;       /* messages stored now */
    size_t lost;         /* acked Sends neither stored nor consumed */
    size_t resurrected;  /* stored messages at or below an acked Ack */
    size_t deleted_back; /* acked deletes whose mailbox logs in again */
    size_t conflicts;    /* (mailbox, seq) with two different messages */
    size_t duplicates;   /* one message under two seqs */
} fault_load_report;

/* Create nmbox mailboxes on the relay at addr and the record files in dir. */
void fault_load_init(fault_load *fl, const char *dir, const alcove_relay_addr *addr, int nmbox);
/* Fork the load processes against addr; round tags the messages. */
void fault_load_start(fault_load *fl, const alcove_relay_addr *addr, uint32_t round);
/* Wait (at most timeout_ms, then SIGKILL) for the load processes to exit:
 * they exit by themselves once the relay is gone. */
void fault_load_wait(fault_load *fl, int timeout_ms);
/* Tell the load processes to stop now (SIGTERM) and reap them. */
void fault_load_stop(fault_load *fl);
/* Read every mailbox back from the relay at addr and compare with what was
 * acknowledged.  Fills rep (fails the test only on transport errors). */
void fault_load_check(fault_load *fl, const alcove_relay_addr *addr, fault_load_report *rep);
/* Every Send reply so far (malloc'd; free it). */
fault_timing *fault_load_timings(fault_load *fl, size_t *n);
/* Close the record files. */
void fault_load_close(fault_load *fl);

#endif
