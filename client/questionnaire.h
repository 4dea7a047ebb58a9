/* client/questionnaire: the built-in instruments (PHQ-9, GAD-7), a
 * therapist's own questionnaire read from a small line format
 * (docs/questionnaires.md), and scoring with severity bands.
 *
 * Everything here is pure (no store, no network) except
 * quest_score_lookup, which reads a thread. */
#ifndef ALCOVE_CLIENT_QUESTIONNAIRE_H
#define ALCOVE_CLIENT_QUESTIONNAIRE_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

#define QUEST_MAX_ITEMS 50u
#define QUEST_MAX_LABELS 101u
#define QUEST_MAX_BANDS 16u
#define QUEST_TEXT_MAX 300u   /* item text, title */
#define QUEST_LABEL_MAX 60u
#define QUEST_NAME_MAX 40u    /* instrument */

typedef struct quest_band {
    uint32_t min, max;
    char label[QUEST_LABEL_MAX + 1];
} quest_band;

/* A questionnaire being built (ask) with its bands.  pb/items/item_ptrs are
 * a protobuf view over the strings below, filled by quest_view. */
typedef struct quest {
    char instrument[QUEST_NAME_MAX + 1];
    char title[QUEST_TEXT_MAX + 1];
    size_t n_items;
    struct {
        char text[QUEST_TEXT_MAX + 1];
        uint32_t min, max;
        size_t n_labels;
        char *labels[QUEST_MAX_LABELS]; /* malloc'd */
    } items[QUEST_MAX_ITEMS];
    size_t n_bands;
    quest_band bands[QUEST_MAX_BANDS];
    /* protobuf view */
    Alcove__E2e__Questionnaire pb;
    Alcove__E2e__Item pb_items[QUEST_MAX_ITEMS];
    Alcove__E2e__Item *pb_ptrs[QUEST_MAX_ITEMS];
} quest;

/* Fill q with a built-in instrument: "phq9"/"PHQ-9", "gad7"/"GAD-7" (case
 * and '-' ignored).  Returns 0, or ALCOVE_ENOTFOUND for another name.
 * Free with quest_free. */
int quest_builtin(const char *name, quest *q);

/* Parse a questionnaire file (format in docs/questionnaires.md).  Returns 0,
 * or -1 with a message "PATH:LINE: what is wrong" (or "PATH: ...") in err. */
int quest_parse_file(const char *path, quest *q, char *err, size_t errcap);

/* Set up q->pb (and the item views) from q's fields; valid until q changes. */
void quest_view(quest *q);

/* Release labels.  Safe on a zeroed quest. */
void quest_free(quest *q);

/* A scored set of answers. */
typedef struct quest_score {
    uint64_t total, max_total;
    char band[QUEST_LABEL_MAX + 1];  /* "" when the questionnaire has no bands */
    int flagged;                     /* PHQ-9 item 9 answered above 0 */
    uint32_t flag_value;
    int builtin;                     /* scored with the published PHQ-9/GAD-7 bands */
} quest_score;

/* Does `an` answer `q` (same number of values, each within its item's
 * range)?  NULL if it does, else a static reason. */
const char *quest_answers_mismatch(const Alcove__E2e__Questionnaire *q,
                                   const Alcove__E2e__Answers *an);

/* Score an against q (which it must match).  bands/nb: the local bands of a
 * custom questionnaire (from the sender's stored Message), may be NULL/0.
 * The published bands are used when q is PHQ-9 or GAD-7 exactly (instrument
 * name, item count, 0-3 ranges). */
void quest_score_of(const Alcove__E2e__Questionnaire *q, Alcove__Local__Band *const *bands,
                    size_t nb, const Alcove__E2e__Answers *an, quest_score *out);

/* The label of value v on item it ("" when it has none). */
const char *quest_item_label(const Alcove__E2e__Item *it, uint32_t v);

/* Find the questionnaire an answers (msg_id = an->questionnaire_id) in
 * contact c's thread and score an.  *qmsg and *qct receive the questionnaire's
 * message and content (to free with render_message_free and content_free) when
 * not NULL.  Returns 0, ALCOVE_ENOTFOUND (no such questionnaire in the
 * thread), ALCOVE_EMALFORMED (the answers do not match it), or a store error. */
int quest_score_lookup(cstore_txn *t, const Alcove__Local__Contact *c,
                       const Alcove__E2e__Answers *an, quest_score *out,
                       Alcove__Local__Message **qmsg, Alcove__E2e__Content **qct);

/* PHQ-9 item 9 (1-based) is the self-harm item. */
#define QUEST_PHQ9_FLAG_ITEM 9u

#endif
