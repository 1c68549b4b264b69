/*
 * session: a client of the server: its connection (conn), its place in
 * the chat (member), and what binds them: the decision on its upgrade
 * request (the Origin allow-list, on_connect, deferral, name, room,
 * subprotocol, headers, and with identity configured its token: see
 * session_ident.c), its messages (on_message, then flood control and
 * the line limit, then echo, or the text or JSON protocol), and delivery
 * of events in the client's view. struct wschat_client and what clients
 * share are in session_env.h.
 *
 * Owns: the client's memory (freed in the conn's close callback, after
 * on_disconnect), its path and query, its negotiated subprotocol, its
 * identity (checked token, expiry timer) and, while it connects, its
 * handshake extras; in the env, the chat's limits, the Origin allow-list
 * and the identity keys.
 */
#ifndef WSCHAT_SESSION_H
#define WSCHAT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "session_env.h"

/* The conn upcalls (server.c installs them). */
void wschat__session_on_request(struct wschat__conn *c);
void wschat__session_on_message(struct wschat__conn *c, int opcode,
                                const uint8_t *msg, size_t len);
void wschat__session_on_end(struct wschat__conn *c, int code);

/* The chat's delivery (wschat__deliver_fn): ev in each member's view into
 * its queue. */
void wschat__session_deliver(void *user, struct wschat__member *const *m,
                             size_t n, struct wschat_event *ev, int variant,
                             uint64_t skip);

/* The text protocol's io (struct wschat__text_io; user is the server). */
void wschat__session_reply(void *user, struct wschat__member *m,
                           const char *text, size_t len);
void wschat__session_quit(void *user, struct wschat__member *m,
                          const char *reason);
/* /history: the last n events of m's room, answered later. Returns 0,
 * WSCHAT_ENOTMEMBER, WSCHAT_ENOHISTORY or the store's refusal. */
int wschat__session_history(void *user, struct wschat__member *m, unsigned n);

/* The chat's wschat__enter_fn: m just joined room; its replay (or
 * recovery, after c->since) is queued before the room is told. */
void wschat__session_on_enter(void *user, struct wschat__member *m,
                              const char *room);

/* Answers a decided upgrade (accept or refuse); for deferred clients. */
void wschat__session_decide(struct wschat_client *c);

/* permessage-deflate at the upgrade (session_deflate.c). */
struct wschat__pmd;
/* 1 with *p set if the server negotiates it (WSCHAT_OPT_DEFLATE) and c's
 * request offers it acceptably (the first acceptable offer of its
 * Sec-WebSocket-Extensions headers, in order: deflate.h). */
int wschat__session_deflate_agree(const struct wschat_client *c,
                                  struct wschat__pmd *p);
/* With p (an agreed offer): a new string (the caller frees it) of the
 * 101's extra headers, the Sec-WebSocket-Extensions answer then the
 * application's; NULL when out of memory. Without p: NULL. */
char *wschat__session_deflate_headers(const struct wschat_client *c,
                                      const struct wschat__pmd *p);
/* Makes c a deflate client: its frame cache key, its inflater, RSV1
 * allowed on its frames. Before any frame is read. */
void wschat__session_deflate_apply(struct wschat_client *c,
                                   const struct wschat__pmd *p);

/* Frees the client's own memory (not the conn's): from the close
 * callback. */
void wschat__session_free(struct wschat_client *c);

#endif
