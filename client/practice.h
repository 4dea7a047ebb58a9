/* client/practice: shared pieces of the practice commands (ask, answer,
 * scores, export, checkins): the scored answers of a thread. */
#ifndef ALCOVE_CLIENT_PRACTICE_H
#define ALCOVE_CLIENT_PRACTICE_H

#include <jansson.h>
#include <stdio.h>

#include "app.h"
#include "questionnaire.h"

typedef struct score_row {
    uint64_t at;          /* sender's clock, else the relay's */
    int outgoing;
    char instrument[QUEST_NAME_MAX + 1];
    quest_score sc;
    Alcove__Local__Message *m;   /* the Answers message (owned) */
    Alcove__E2e__Content *ct;    /* its content (owned) */
} score_row;

/* Every valid Answers in contact c's thread (either direction) that matches
 * its questionnaire, scored, oldest first.  Free with score_rows_free.
 * Returns 0 or a store error. */
int score_rows(cstore_txn *t, const Alcove__Local__Contact *c, uint64_t since, score_row **out,
               size_t *n);
void score_rows_free(score_row *v, size_t n);

/* The table (DATE INSTRUMENT TOTAL SEVERITY ITEMS) and, per instrument, a
 * chart of totals over time. */
void score_table(FILE *out, const score_row *v, size_t n);
void score_chart(FILE *out, const score_row *v, size_t n);
/* One row as JSON: {msg_id, questionnaire_id, instrument, direction,
 * sent_at, total, max_total, band, flagged, values}. */
json_t *score_json(const score_row *r);

/* "2024-06-01", "2024-06-01 17:00", "2024-06-01T17:00" (local time) or a
 * duration from now ("3d", "12h", "30m") -> Unix ms; 0 when it does not
 * parse. */
uint64_t parse_when(const char *s, uint64_t now);

#endif
