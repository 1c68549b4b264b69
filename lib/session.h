/*
 * session: a client of the server: its connection (conn), its place in
 * the chat (member), and what binds them: the decision on its upgrade
 * request (on_connect, deferral, name, room, subprotocol, headers), its
 * messages (on_message, then echo, or the text protocol), and delivery of
 * events in the client's view. struct wschat_client is defined here.
 *
 * Owns: the client's memory (freed in the conn's close callback, after
 * on_disconnect), its path and query, its negotiated subprotocol, and,
 * while it connects, its handshake extras.
 */
#ifndef WSCHAT_SESSION_H
#define WSCHAT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "room.h"
#include "wschat.h"

struct wschat_server;
struct wschat_event;
struct wschat__chat;
struct wschat__text;
struct wschat__routes;
struct wschat__history;
struct wschat__held;
struct wschat__read;
struct wschat__peer_count;

/* What every client of a server shares (owned by the server; the conn
 * env first, so a client reaches this through its conn's env pointer). */
struct wschat__session_env {
  struct wschat__conn_env conn;
  int mode;          /* enum wschat_mode */
  int shutting_down; /* 0; 1 closing clients; 2 closing handles; 3 done */
  wschat_connect_cb on_connect;
  void *on_connect_user;
  wschat_disconnect_cb on_disconnect;
  void *on_disconnect_user;
  wschat_message_cb on_message;
  void *on_message_user;
  struct wschat__chat *chat;
  const struct wschat__text *text;
  const struct wschat__routes *routes;
  struct wschat__history *history; /* the server's store, or NULL */
  unsigned replay;                 /* events replayed to a joiner */
};

/* What a client asked for and what the application decided, while it
 * connects (freed once it is open or gone). */
struct wschat__hs {
  char *reject_reason;                /* owned */
  char name[WSCHAT_NAME_MAX + 1];     /* set_name; "" if none */
  char room[WSCHAT_ROOM_MAX + 1];     /* set_room; "" if none */
  char *protocols;                    /* owned: the offered list, as sent */
  char *headers;                      /* owned: "Name: value\r\n"... */
  size_t headers_len;
  int nheaders;
};

struct wschat_client {
  struct wschat__conn conn;     /* first */
  struct wschat__member member; /* member.client == this */
  struct wschat_server *srv; /* for the public API; never read here */
  uint32_t idx;        /* in the server's connection array */
  uint8_t in_connect;  /* inside on_connect */
  uint8_t deferred;    /* on_connect deferred the decision */
  uint16_t reject_code;
  uint8_t admission;   /* server.c: 1 counted against the limits, 2
                          refused at accept (503, 429), 0 neither */
  struct wschat__peer_count *peer; /* server.c: this client's address in the
                                      per-address count, or NULL */
  char *path;          /* owned: "path\0query\0peer\0" */
  char *protocol;      /* owned, or NULL: the negotiated subprotocol */
  struct wschat__hs *hs; /* owned while connecting */
  struct wschat__held *held;  /* owned: what waits behind a replay */
  struct wschat__read *reads; /* reads in flight (owned by the store's
                                 callbacks; see replay.h) */
  /* The next replay (set just before a join): recover after since in the
   * store of epoch (0: the current one) instead of the last events. */
  uint64_t since, since_epoch;
  uint8_t has_since;
  void *user_data;     /* the embedder's; never touched */
};

static inline struct wschat_client *wschat__client_of(struct wschat__conn *c) {
  return (struct wschat_client *)c;
}

static inline const struct wschat__session_env *
wschat__session_env(const struct wschat_client *c) {
  return (const struct wschat__session_env *)c->conn.env;
}

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

/* Frees the client's own memory (not the conn's): from the close
 * callback. */
void wschat__session_free(struct wschat_client *c);

#endif
