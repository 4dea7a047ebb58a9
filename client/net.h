/* client/net: the relay operations the commands need, on top of link.h,
 * with errors turned into sentences a person can act on. */
#ifndef ALCOVE_CLIENT_NET_H
#define ALCOVE_CLIENT_NET_H

#include <stddef.h>
#include <stdint.h>

#include "link.h"

#define NET_TIMEOUT_MS 15000

typedef struct net {
    alcove_link *link;
    Alcove__Wire__HelloResult hello;
    char relay[ALCOVE_ADDR_STR_MAX];
    int push_seen; /* a Push arrived while waiting for a reply */
} net;

/* Connect to a relay address and say Hello.  Prints an error and a hint and
 * returns -1 on failure, 0 on success. */
int net_open(net *n, const char *relay_address);
/* Close.  Safe on a zeroed or closed net. */
void net_close(net *n);

/* Each returns the reply Status (>= 0), or a negative alcove error when the
 * connection failed (already printed if `quiet` is 0). */
int net_create(net *n, const uint8_t auth_pk[32], const uint8_t send_secret[32],
               uint8_t recv_id[16], uint8_t send_id[16]);
int net_login(net *n, const uint8_t recv_id[16], const uint8_t auth_sk[64]);
int net_send(net *n, const uint8_t send_id[16], const uint8_t secret[32], const uint8_t *blob,
             size_t len);
/* *out is the RelayMessage (free with alcove__wire__relay_message__free_unpacked). */
int net_fetch(net *n, const uint8_t recv_id[16], uint64_t after, uint32_t max,
              Alcove__Wire__RelayMessage **out);
int net_ack(net *n, const uint8_t recv_id[16], uint64_t up_to);
int net_subscribe(net *n, const uint8_t recv_id[16]);
int net_delete(net *n, const uint8_t recv_id[16]);
int net_ping(net *n);

/* A few open connections keyed by relay address (a contact's mailbox may
 * live on another relay than yours). */
#define NETPOOL_MAX 8
typedef struct netpool {
    net conns[NETPOOL_MAX];
    int n;
} netpool;
/* The open connection to relay, opening it if needed; NULL after printing
 * an error (or when the pool is full). */
net *netpool_get(netpool *p, const char *relay);
void netpool_close(netpool *p);

/* 1 for a Status that will not change by retrying (the message can never
 * be delivered as it is), 0 for transient ones. */
int net_status_permanent(int status);

/* Human text for a Status. */
const char *net_status_text(int status);

#endif
