/*
 * json_chat: a client of the wschat.v1.json subprotocol (docs/PROTOCOL.md
 * section 2): its welcome, and each request it sends, decoded by
 * json_proto.c and turned into calls of the chat core, or answered with an
 * object of json_view.c (users, rooms, history, error). Events reach it
 * through the JSON view like any other delivery.
 *
 * Owns nothing (each request's tree lives for the call). Writes only
 * through wschat__replay_send(), so that its replies keep their place
 * behind a replay.
 */
#ifndef WSCHAT_JSON_CHAT_H
#define WSCHAT_JSON_CHAT_H

#include <stddef.h>

struct wschat_client;
struct wschat__chat;
struct wschat__member;

/* The subprotocol's name, as offered and echoed. */
#define WSCHAT__JSON_PROTOCOL "wschat.v1.json"

/*
 * An open JSON client enters the chat under name (the application's; NULL:
 * ?name=, else guest-N) in room (the application's; NULL: ?room=, else
 * lobby), with ?since= and ?epoch= recovering that room: it gets its
 * welcome, an error for each thing it asked for and could not have, then
 * (with a store) the room's history, then its own join. Returns 0 or
 * WSCHAT_ENOMEM (the caller closes the client).
 */
int wschat__json_open(struct wschat_client *c, const char *query,
                      const char *name, const char *room);

/* One message from an open JSON client (binary: answered bad_json). */
void wschat__json_message(struct wschat_client *c, const char *text,
                          size_t len, int binary);

/* The warning of flood control (wschat__session_admit() said
 * WSCHAT__ADMIT_WARN for a bucket of kind): an error rate_limited. */
void wschat__json_slow_down(struct wschat_client *c, int kind);

/* An error forbidden with message (what the client's token does not
 * allow), outside any request. */
void wschat__json_forbidden(struct wschat_client *c, const char *message);

/* A typing notice of from in room (any case): to the room's JSON members
 * here but sender (NULL: none), each open and not under pressure (its
 * queue above 1/16 of its output cap). Made here for a local sender, and
 * called by the cluster for another node's (through server_cluster.c).
 * Out of memory: nobody gets it (an ephemeral notice is not worth a
 * close). */
void wschat__json_typing_deliver(struct wschat__chat *ch, const char *room,
                                 const char *from,
                                 const struct wschat__member *sender);

#endif
