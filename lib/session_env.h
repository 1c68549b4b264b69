/*
 * session_env: what the clients of a server share and what each one is
 * (struct wschat_client, defined here), below the session that drives
 * them: the chat's limits and their options, the Origin allow-list, flood
 * control, and the identity declarations (session_ident.c). The modules
 * that act for a client (replay, json_chat, session_ident) need only this.
 *
 * Owns: in the env, the chat's limits, the Origin allow-list and the
 * identity keys (freed by wschat__session_env_free()).
 */
#ifndef WSCHAT_SESSION_ENV_H
#define WSCHAT_SESSION_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "deflate.h"
#include "rate.h"
#include "room.h"
#include "token.h"
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
struct wschat__ident;

/* The chat's default limits (WSCHAT_OPT_MAX_LINE, _RATE, _BURST). */
#define WSCHAT__MAX_LINE_DEFAULT 65536
#define WSCHAT__RATE_DEFAULT 20
#define WSCHAT__BURST_DEFAULT 40

/* Flood control: what a message costs. Every chat message takes a token
 * of WSCHAT__RATE_ANY; a change of room, a rename and a whisper take one
 * of their own tighter bucket too (their rates are in session.c). */
enum {
  WSCHAT__RATE_ANY = 0,
  WSCHAT__RATE_JOIN,    /* /join, /leave; JSON join, leave */
  WSCHAT__RATE_NICK,    /* /nick; JSON nick */
  WSCHAT__RATE_WHISPER, /* /whisper; JSON whisper */
  WSCHAT__RATE_KINDS
};

/* What wschat__session_admit() decided about one message. */
enum {
  WSCHAT__ADMIT = 0,    /* go on */
  WSCHAT__ADMIT_DROP,   /* drop it silently: the client was warned */
  WSCHAT__ADMIT_WARN,   /* drop it and warn the client (the caller does) */
  WSCHAT__ADMIT_CLOSED, /* dropped; the client is closing (1008) */
};

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
  /* The chat's limits (session.c). A line is at most max_line bytes (see
   * wschat__session_line_max()); every client may send rate messages a
   * second, burst at once (rate 0: no flood control at all). */
  size_t max_line;
  uint32_t rate, burst;
  /* The Origin allow-list (owned, each string owned): with any, an upgrade
   * request with an Origin header not in it is refused 403. */
  char **origins;
  size_t norigins, origins_cap;
  /* Identity (owned): with any key, every upgrade needs a valid token. */
  struct wschat__token_keys keys;
};

/* Sets the defaults of the session's own options (the server calls it
 * once, on a zeroed env). */
void wschat__session_env_init(struct wschat__session_env *env);
/* Frees what the env owns (the origins). */
void wschat__session_env_free(struct wschat__session_env *env);
/* The session's options: WSCHAT_OPT_MAX_LINE, WSCHAT_OPT_RATE,
 * WSCHAT_OPT_BURST. Returns 0 or WSCHAT_EINVAL (another option, or a value
 * out of range). */
int wschat__session_set_option(struct wschat__session_env *env, int opt,
                               int64_t v);
/* Adds origin (copied; a trailing '/' dropped) to the allow-list. Returns
 * 0, WSCHAT_EINVAL (not "null" nor SCHEME://HOST[:PORT], or over 255
 * bytes) or WSCHAT_ENOMEM. */
int wschat__session_add_origin(struct wschat__session_env *env,
                               const char *origin);
/* The most bytes of chat text a client may send in one line (a text
 * message, a JSON text): max_line, but never so much that its rendering
 * (a prefix of at most WSCHAT__LINE_OVERHEAD bytes; JSON escapes a
 * control character in six) would exceed max_message. At least 1. */
#define WSCHAT__LINE_OVERHEAD 256
size_t wschat__session_line_max(const struct wschat__session_env *env);

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
  uint16_t nreads, nasked;    /* on that list: all, and the requests */
  /* The next replay (set just before a join): recover after since in the
   * store of epoch (0: the current one) instead of the last events. */
  uint64_t since, since_epoch;
  uint8_t has_since;
  /* Flood control (session.c): a bucket per WSCHAT__RATE_* kind; the
   * kinds (bits) whose refusal was warned about since they last let a
   * message through; the messages refused since the last warning; the
   * warnings of the window that began at warn_at. */
  struct wschat__bucket bucket[WSCHAT__RATE_KINDS];
  uint8_t warned;
  uint8_t warns;
  uint32_t refused;
  uint64_t warn_at;
  struct wschat__ident *ident; /* owned: the checked token, or NULL */
  uint8_t ident_start_refused; /* its ?room= was not among its rooms */
  void *user_data;     /* the embedder's; never touched */
};

static inline struct wschat_client *wschat__client_of(struct wschat__conn *c) {
  return (struct wschat_client *)c;
}

/* What to queue for c of a frame built for c alone (a reply, an echo, a
 * history line): takes the caller's reference and returns one to f, or to
 * its compressed copy if c negotiated permessage-deflate and it pays. */
static inline struct wschat__frame *
wschat__session_own(struct wschat_client *c, struct wschat__frame *f) {
  return c->member.zkey
             ? wschat__deflate_own(c->conn.env->deflate, c->member.zkey, f)
             : f;
}

static inline const struct wschat__session_env *
wschat__session_env(const struct wschat_client *c) {
  return (const struct wschat__session_env *)c->conn.env;
}

/*
 * Identity (session_ident.c). With a key configured, an upgrade request
 * must carry a valid token (Authorization: Bearer, an offered subprotocol
 * "wschat.token.TOKEN", or ?token=); see docs/PROTOCOL.md, "Identity".
 */
/* Close codes: no valid token (a browser's refusal; others get 401), the
 * token expired while connected (get a new one and reconnect), the
 * token's name is in use by another connection (others get 409). */
#define WSCHAT__CLOSE_UNAUTHORIZED 4001
#define WSCHAT__CLOSE_TOKEN_EXPIRED 4003
#define WSCHAT__CLOSE_NAME_IN_USE 4009
/* Finds and checks c's token (after the request is saved); cuts it out of
 * the stored query and offered subprotocols either way. Returns 0 (c->ident
 * set; its name and maybe its room chosen) or -1 with *why (static text,
 * never the token's) for the refusal. */
int wschat__ident_request(struct wschat_client *c, const char **why);
/* Just before c is opened: takes (and reserves) its token's name. Returns
 * 0, or -1 if another connection has that name. */
int wschat__ident_claim(struct wschat_client *c);
/* c is open: its expiry timer starts. */
void wschat__ident_opened(struct wschat_client *c);
/* May c join room? (Without identity, or for lobby: always.) */
int wschat__ident_may_join(const struct wschat_client *c, const char *room);
/* Is p (len bytes) the subprotocol entry that carries a token? */
int wschat__ident_is_token_protocol(const char *p, size_t len);
/* Frees c->ident (its timer closes later). */
void wschat__ident_free(struct wschat_client *c);

/*
 * Flood control: takes a token of kind (a WSCHAT__RATE_* value) for one
 * message of c, at the loop's time. Returns WSCHAT__ADMIT, or, when that
 * bucket is empty: WSCHAT__ADMIT_WARN for the first message it refuses
 * since it last let one through (the caller answers with a warning in c's
 * protocol), WSCHAT__ADMIT_DROP for the next ones, and
 * WSCHAT__ADMIT_CLOSED when c keeps going (the third warning within 10 s,
 * or 5 bursts refused since the last warning): c is closing with 1008
 * "rate limit". O(1); with a rate of 0 always WSCHAT__ADMIT.
 */
int wschat__session_admit(struct wschat_client *c, int kind);
/* The rate (a second) and burst of kind's bucket. */
void wschat__session_rate_of(const struct wschat__session_env *env, int kind,
                             uint32_t *rate, uint32_t *burst);

/* Does h's Origin (if any) pass env's allow-list? */
struct wschat__http;
int wschat__session_origin_allowed(const struct wschat__session_env *env,
                                   const struct wschat__http *h);

#endif
