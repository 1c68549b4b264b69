/*
 * session: see session.h.
 *
 * An upgrade request: the path is kept, on_connect runs (it may name the
 * client, choose its room and subprotocol, add headers, refuse, or defer),
 * then the request is decided: refused with an HTTP status, or answered
 * 101 and the client enters the chat (welcome, room). A plain request goes
 * to the routes. A browser's upgrade from an origin off the allow-list is
 * refused 403 before on_connect. With identity configured, a request
 * without a valid token is refused next, also before on_connect: 401, or
 * for a browser (a request with an Origin header, which cannot read a
 * status) the upgrade and then a close with 4001.
 *
 * A message: on_message sees it first; then (chat mode) flood control
 * takes a token (wschat__session_admit()), a text line longer than
 * wschat__session_line_max() is refused, and the text or JSON protocol
 * handles it.
 */
#include "session.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "command.h"
#include "event.h"
#include "frame.h"
#include "grow.h"
#include "history.h"
#include "http.h"
#include "json_chat.h"
#include "json_view.h"
#include "replay.h"
#include "route.h"
#include "text_proto.h"
#include "utf8.h"
#include "view.h"

/* ---- requests ---- */

static void respond_status(struct wschat_client *c, int status,
                           const char *body) {
  char head[8192], text[512];
  snprintf(text, sizeof(text), "%s\n", body ? body : "");
  size_t bl = strlen(text);
  const char *extra = c->hs && c->hs->headers ? c->hs->headers : NULL;
  size_t hl = wschat__http_write_head(head, sizeof(head), status, NULL, bl,
                                      extra);
  char *out = malloc(hl + bl);
  if (hl == 0 || out == NULL) {
    free(out);
    wschat__conn_drop(&c->conn, status);
    return;
  }
  memcpy(out, head, hl);
  if (!(c->conn.http && c->conn.http->is_head))
    memcpy(out + hl, text, bl);
  else
    bl = 0;
  wschat__conn_respond(&c->conn, status, out, hl + bl);
  free(out);
}

static void plain_request(struct wschat_client *c) {
  char *out;
  size_t len;
  int status =
      wschat__routes_serve(wschat__session_env(c)->routes, c->conn.http, &out,
                           &len);
  if (status == 0) {
    wschat__conn_drop(&c->conn, 500);
    return;
  }
  wschat__conn_respond(&c->conn, status, out, len);
  free(out);
}

static int save_request(struct wschat_client *c) {
  const struct wschat__http *h = c->conn.http;
  size_t qlen = h->query ? h->query_len : 0;
  /* The peer's address is kept here too, not in every client: only
   * clients that reach on_connect can be asked for it. */
  char peer[64];
  wschat__conn_peer(&c->conn, peer, sizeof(peer));
  size_t plen = strlen(peer);
  c->path = malloc(h->path_len + qlen + plen + 3);
  c->hs = calloc(1, sizeof(*c->hs));
  if (c->path == NULL || c->hs == NULL)
    return -1;
  char *at = c->path;
  memcpy(at, h->path, h->path_len);
  at += h->path_len;
  *at++ = '\0';
  if (qlen)
    memcpy(at, h->query, qlen);
  at += qlen;
  *at++ = '\0';
  memcpy(at, peer, plen + 1);
  /* The offered subprotocols, as one list (repeated headers joined). */
  size_t total = 0;
  const struct wschat__http_header *p = NULL;
  while ((p = wschat__http_header_next(h, "Sec-WebSocket-Protocol", p)))
    total += p->value_len + 2;
  c->hs->protocols = malloc(total + 1);
  if (c->hs->protocols == NULL)
    return -1;
  size_t n = 0;
  while ((p = wschat__http_header_next(h, "Sec-WebSocket-Protocol", p))) {
    if (p->value_len == 0)
      continue;
    if (n) {
      memcpy(c->hs->protocols + n, ", ", 2);
      n += 2;
    }
    memcpy(c->hs->protocols + n, p->value, p->value_len);
    n += p->value_len;
  }
  c->hs->protocols[n] = '\0';
  return 0;
}

static void free_hs(struct wschat_client *c) {
  if (c->hs == NULL)
    return;
  free(c->hs->reject_reason);
  free(c->hs->protocols);
  free(c->hs->headers);
  free(c->hs);
  c->hs = NULL;
}

/* Does the request come from a browser (which sends an Origin header with
 * every WebSocket upgrade, and cannot read the status of a refusal)? */
static int from_browser(const struct wschat__http *h) {
  return wschat__http_header_next(h, "Origin", NULL) != NULL;
}

/* Sets the refusal that open_client() sends after the upgrade. */
static void refuse_after_upgrade(struct wschat_client *c, int code,
                                 const char *reason) {
  c->reject_code = (uint16_t)code;
  free(c->hs->reject_reason);
  c->hs->reject_reason = strdup(reason); /* NULL: a close without reason */
}

static void open_client(struct wschat_client *c);

/* Refuses a request for its identity: status (with a WWW-Authenticate
 * header for 401), or, for a browser, the upgrade then a close with code;
 * reason says why (never quoting the token). */
static void refuse_identity(struct wschat_client *c, int status, int code,
                            const char *reason) {
  if (from_browser(c->conn.http)) {
    refuse_after_upgrade(c, code, reason);
    open_client(c);
    return;
  }
  if (status == 401) {
    struct wschat__headers hs = {c->hs->headers, c->hs->headers_len,
                                 c->hs->nheaders};
    if (wschat__headers_add(&hs, "WWW-Authenticate",
                            "Bearer realm=\"wschat\"") == 0) {
      c->hs->headers = hs.buf;
      c->hs->headers_len = hs.len;
      c->hs->nheaders = hs.n;
    }
  }
  respond_status(c, status, reason);
}

/* A text client is refused something its token does not allow. */
static void reply_forbidden(struct wschat_client *c, const char *what) {
  char line[160];
  int n = snprintf(line, sizeof(line), "! forbidden: %s", what);
  wschat__session_reply(NULL, &c->member, line, (size_t)n);
}

/* Accepts the upgrade: 101, then the chat (or echo) begins. */
static void open_client(struct wschat_client *c) {
  const struct wschat__session_env *env = wschat__session_env(c);
  const struct wschat__http *h = c->conn.http;
  char accept[29], buf[8192];
  /* A token's name is one connection's at a time. */
  if (c->ident && !c->reject_code && wschat__ident_claim(c) != 0) {
    if (!from_browser(h)) {
      respond_status(c, 409, "name in use");
      return;
    }
    refuse_after_upgrade(c, WSCHAT__CLOSE_NAME_IN_USE, "name in use");
  }
  /* A chat client offering the JSON subprotocol gets it, unless the
   * application chose a subprotocol itself. */
  if (env->mode == WSCHAT_MODE_CHAT && c->protocol == NULL &&
      wschat__http_header_has_token(h, "Sec-WebSocket-Protocol",
                                    WSCHAT__JSON_PROTOCOL) &&
      (c->protocol = strdup(WSCHAT__JSON_PROTOCOL)) == NULL) {
    wschat__conn_drop(&c->conn, 1011);
    return;
  }
  int json = c->protocol && strcmp(c->protocol, WSCHAT__JSON_PROTOCOL) == 0;
  struct wschat__pmd pmd;
  int z = wschat__session_deflate_agree(c, &pmd);
  char *extra = wschat__session_deflate_headers(c, z ? &pmd : NULL);
  wschat__ws_accept(h->key, h->key_len, accept);
  size_t n =
      accept[0] && (extra != NULL || !z)
          ? wschat__http_write_upgrade(buf, sizeof(buf), accept, c->protocol,
                                       z ? extra : c->hs->headers)
          : 0;
  free(extra);
  if (n == 0) {
    wschat__conn_drop(&c->conn, 1011);
    return;
  }
  if (z) /* before the upgrade feeds what arrived meanwhile */
    wschat__session_deflate_apply(c, &pmd);
  struct wschat__hs *hs = c->hs;
  c->hs = NULL; /* kept below until the chat has it */
  if (wschat__conn_upgrade(&c->conn, buf, n) != 0) {
    c->hs = hs;
    return;
  }
  const char *query = c->path + strlen(c->path) + 1;
  const char *name = hs->name[0] ? hs->name : NULL;
  const char *room = hs->room[0] ? hs->room : NULL;
  if (c->reject_code) {
    wschat__conn_close(&c->conn, c->reject_code, hs->reject_reason);
  } else if (env->mode == WSCHAT_MODE_CHAT) {
    c->member.view = json ? WSCHAT__VIEW_JSON : WSCHAT__VIEW_TEXT;
    int rc = json ? wschat__json_open(c, query, name, room)
                  : wschat__text_open(env->text, &c->member, query, name,
                                      room);
    if (rc != 0)
      wschat__conn_close(&c->conn, 1011, "out of memory");
    else if (c->ident_start_refused && json)
      wschat__json_forbidden(c, "your token does not allow that room; you "
                                "are in #lobby");
    else if (c->ident_start_refused)
      reply_forbidden(c, "your token does not allow that room; you are in "
                         "#lobby");
  }
  if (c->reject_code == 0)
    wschat__ident_opened(c);
  c->hs = hs;
  free_hs(c);
}

void wschat__session_decide(struct wschat_client *c) {
  if (c->conn.state != WSCHAT__CONN_HTTP)
    return;
  c->deferred = 0;
  if (wschat__session_env(c)->shutting_down) {
    wschat__metrics_refused(&c->conn, WSCHAT__REFUSED_OTHER, 503);
    respond_status(c, 503, "server shutting down");
    return;
  }
  if (c->reject_code >= 400 && c->reject_code <= 599) {
    wschat__metrics_refused(&c->conn, WSCHAT__REFUSED_OTHER, c->reject_code);
    respond_status(c, c->reject_code,
                   c->hs->reject_reason ? c->hs->reject_reason
                                        : "connection refused");
    return;
  }
  open_client(c);
}

/* Cluster mode: the name a client asks for at connect is looked up in the
 * cluster's registry first (another node may have taken it a moment ago
 * and this node's mirror not know yet); the client waits, deferred, for
 * the answer (and, on a node just started, for its first connection to
 * Redis, at most 2 s). Returns 1 if it waits. */
static void name_checked(struct wschat_client *c) {
  if (c->conn.state != WSCHAT__CONN_HTTP || !c->deferred)
    return;
  wschat__session_decide(c);
  wschat__conn_resume(&c->conn);
}

static int cluster_name_check(struct wschat_client *c) {
  const struct wschat__session_env *env = wschat__session_env(c);
  struct wschat__chat *ch = env->chat;
  if (ch == NULL || ch->name_check == NULL || env->mode != WSCHAT_MODE_CHAT)
    return 0;
  char want[WSCHAT_NAME_MAX + 1];
  const char *name = c->hs->name;
  if (name[0] == '\0') {
    const char *query = c->path + strlen(c->path) + 1;
    int n = wschat__http_query_param(query, strlen(query), "name", want,
                                     sizeof(want));
    /* no name (a guest): it still waits while a new node connects */
    name = n > 0 && wschat__name_valid(want, (size_t)n) ? want : "";
  }
  c->deferred = 1;
  if (ch->name_check(ch->claim_user, name, c->member.id, name_checked) != 0) {
    c->deferred = 0;
    return 0;
  }
  return 1;
}

void wschat__session_on_request(struct wschat__conn *conn) {
  struct wschat_client *c = wschat__client_of(conn);
  const struct wschat__session_env *env = wschat__session_env(c);
  const struct wschat__http *h = conn->http;
  if (wschat__http_state(h) == WSCHAT__HTTP_FAILED) {
    wschat__metrics_refused(conn, WSCHAT__REFUSED_OTHER, h->status);
    char buf[1024];
    size_t n =
        wschat__http_write_response(buf, sizeof(buf), h->status, h->error, 0);
    wschat__conn_respond(conn, h->status, buf, n);
    return;
  }
  if (!h->is_upgrade) {
    plain_request(c);
    return;
  }
  /* A browser from a page not on the allow-list: refused before the
   * application hears of it (no on_connect, no on_disconnect), like a
   * malformed request. Without --origin any page may connect; an
   * application can then judge wschat_client_header(c, "Origin") itself. */
  if (!wschat__session_origin_allowed(env, h)) {
    wschat__metrics_refused(conn, WSCHAT__REFUSED_ORIGIN, 403);
    respond_status(c, 403, "origin not allowed");
    return;
  }
  if (save_request(c) != 0) {
    wschat__metrics_refused(conn, WSCHAT__REFUSED_OTHER, 500);
    respond_status(c, 500, "out of memory");
    return;
  }
  const char *why;
  if (wschat__token_keys_any(&env->keys) &&
      wschat__ident_request(c, &why) != 0) {
    refuse_identity(c, 401, WSCHAT__CLOSE_UNAUTHORIZED, why);
    return;
  }
  conn->notify_end = 1; /* on_connect runs now: on_disconnect is owed */
  if (env->on_connect) {
    c->in_connect = 1;
    env->on_connect(c, env->on_connect_user);
    c->in_connect = 0;
  }
  if (conn->state != WSCHAT__CONN_HTTP)
    return; /* closed by the hook */
  if (c->deferred && !env->shutting_down)
    return; /* decided later (a shutdown answers 503 now) */
  if (cluster_name_check(c))
    return; /* decided when the cluster's registry answered */
  wschat__session_decide(c);
}

/* ---- messages ---- */

struct wschat_message {
  const char *text;
  size_t len;
  size_t max; /* the server's max_message */
  int binary;
  int parsed; /* cmd holds the parse of text */
  struct wschat_command cmd;
  char *replaced; /* owned, from wschat_message_replace() */
};

/* Server text to a text client (out of memory: closed at the flush). */
static void reply_text(struct wschat_client *c, const char *text, size_t len) {
  wschat__session_reply(NULL, &c->member, text, len);
}

/* Flood control for c's message, warning it in its protocol: 1 if the
 * message goes on. */
static int admitted(struct wschat_client *c, int kind) {
  int r = wschat__session_admit(c, kind);
  if (r == WSCHAT__ADMIT_WARN) {
    if ((c->member.view & WSCHAT__VIEW_MASK) == WSCHAT__VIEW_JSON)
      wschat__json_slow_down(c, kind);
    else
      reply_text(c, "! slow down", 11);
  }
  return r == WSCHAT__ADMIT;
}

/* A line or command of a text client. */
static void text_message(struct wschat_client *c, const char *text,
                         size_t len) {
  const struct wschat__session_env *env = wschat__session_env(c);
  size_t max = wschat__session_line_max(env);
  if (len > max) {
    char line[80];
    int n = snprintf(line, sizeof(line), "! line too long (at most %zu bytes)",
                     max);
    reply_text(c, line, (size_t)n);
    return;
  }
  struct wschat__cmd cmd;
  wschat__cmd_parse(text, len, &cmd);
  int kind = cmd.kind == WSCHAT__CMD_JOIN || cmd.kind == WSCHAT__CMD_LEAVE
                 ? WSCHAT__RATE_JOIN
             : cmd.kind == WSCHAT__CMD_NICK    ? WSCHAT__RATE_NICK
             : cmd.kind == WSCHAT__CMD_WHISPER ? WSCHAT__RATE_WHISPER
                                               : WSCHAT__RATE_ANY;
  if (kind != WSCHAT__RATE_ANY && !admitted(c, kind))
    return;
  if (c->ident && cmd.kind == WSCHAT__CMD_NICK) {
    reply_forbidden(c, "your name comes from your token");
    return;
  }
  if (c->ident && cmd.kind == WSCHAT__CMD_JOIN &&
      wschat__room_valid(cmd.tail.p, cmd.tail.len)) {
    char room[WSCHAT_ROOM_MAX + 1], what[WSCHAT_ROOM_MAX + 48];
    memcpy(room, cmd.tail.p, cmd.tail.len);
    room[cmd.tail.len] = '\0';
    if (!wschat__ident_may_join(c, room)) {
      snprintf(what, sizeof(what), "#%s is not among your token's rooms",
               room);
      reply_forbidden(c, what);
      return;
    }
  }
  wschat__text_command(env->text, &c->member, &cmd);
}

/* Is text a /quit (any case, alone or with a reason)? */
static int is_quit(const char *text, size_t len) {
  return len >= 5 && strncasecmp(text, "/quit", 5) == 0 &&
         (len == 5 || text[5] == ' ' || text[5] == '\t');
}

void wschat__session_on_message(struct wschat__conn *conn, int opcode,
                                const uint8_t *msg, size_t len) {
  struct wschat_client *c = wschat__client_of(conn);
  const struct wschat__session_env *env = wschat__session_env(c);
  struct wschat_message m; /* m.cmd is filled only when asked for */
  m.parsed = 0;
  m.replaced = NULL;
  m.text = msg ? (const char *)msg : "";
  m.len = len;
  m.max = env->conn.max_message;
  m.binary = opcode == WSCHAT__OP_BINARY;
  if (env->on_message &&
      env->on_message(c, &m, env->on_message_user) == WSCHAT_DROP) {
    free(m.replaced);
    return;
  }
  if (conn->state != WSCHAT__CONN_OPEN) {
    free(m.replaced);
    return;
  }
  /* Flood control, once per message, after the application's hook (which
   * sees everything) and before any parse; a text client's /quit always
   * goes through. */
  if (env->mode == WSCHAT_MODE_CHAT && env->rate != 0 &&
      !((c->member.view & WSCHAT__VIEW_MASK) == WSCHAT__VIEW_TEXT &&
        !m.binary && is_quit(m.text, m.len)) &&
      !admitted(c, WSCHAT__RATE_ANY)) {
    free(m.replaced);
    return;
  }
  if (env->mode == WSCHAT_MODE_ECHO) {
    struct wschat__frame *f = wschat__frame_new(opcode, m.text, m.len);
    if (f == NULL) {
      wschat__conn_close(conn, 1011, "out of memory");
    } else {
      f = wschat__session_own(c, f);
      wschat__conn_deliver(conn, f);
      wschat__frame_unref(f);
    }
  } else if ((c->member.view & WSCHAT__VIEW_MASK) == WSCHAT__VIEW_JSON) {
    wschat__json_message(c, m.text, m.len, m.binary);
  } else if (m.binary) {
    static const char no[] = "! binary messages are not supported";
    struct wschat__frame *f = wschat__frame_new(WSCHAT__OP_TEXT, no,
                                                sizeof(no) - 1);
    if (f) {
      f = wschat__session_own(c, f);
      wschat__replay_send(c, f);
      wschat__frame_unref(f);
    }
  } else {
    text_message(c, m.text, m.len);
  }
  free(m.replaced);
}

const char *wschat_message_text(const struct wschat_message *msg,
                                size_t *len) {
  if (len)
    *len = msg->len;
  return msg->text;
}

int wschat_message_is_binary(const struct wschat_message *msg) {
  return msg->binary;
}

const struct wschat_command *
wschat_message_command(struct wschat_message *msg) {
  if (msg->binary)
    return NULL;
  if (!msg->parsed) {
    struct wschat__cmd cmd;
    wschat__cmd_parse(msg->text, msg->len, &cmd);
    msg->parsed = cmd.kind == WSCHAT__CMD_LINE ? -1 : 1;
    if (msg->parsed == 1)
      wschat__cmd_public(&cmd, &msg->cmd);
  }
  return msg->parsed == 1 ? &msg->cmd : NULL;
}

int wschat_message_replace(struct wschat_message *msg, const char *text,
                           size_t len) {
  if (text == NULL && len > 0)
    return WSCHAT_EINVAL;
  if (len > msg->max)
    return WSCHAT_ETOOBIG;
  if (!msg->binary && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return WSCHAT_ENOMEM;
  if (len)
    memcpy(copy, text, len);
  copy[len] = '\0';
  free(msg->replaced);
  msg->replaced = copy;
  msg->text = copy;
  msg->len = len;
  msg->parsed = 0;
  return 0;
}

/* ---- the end ---- */

void wschat__session_on_end(struct wschat__conn *conn, int code) {
  struct wschat_client *c = wschat__client_of(conn);
  const struct wschat__session_env *env = wschat__session_env(c);
  if (env->mode == WSCHAT_MODE_CHAT)
    wschat__chat_exit(env->chat, &c->member, NULL);
  if (env->on_disconnect)
    env->on_disconnect(c, code, env->on_disconnect_user);
}

void wschat__session_free(struct wschat_client *c) {
  wschat__ident_free(c);
  wschat__replay_detach(c);
  wschat__member_free(&c->member);
  free_hs(c);
  free(c->path);
  free(c->protocol);
}

/* ---- delivery ---- */

/* One member: the frame of its view (built once per event and view).
 * Returns 1 if the event was queued (or held behind a replay) for m. */
static int deliver_one(struct wschat__member *m, struct wschat_event *ev,
                       int variant) {
  struct wschat_client *c = m->client;
  if (c->conn.state != WSCHAT__CONN_OPEN || c->conn.doom)
    return 0;
  int oom;
  struct wschat__frame *f =
      wschat__view_frame(m, ev, variant, c->conn.env->deflate, &oom);
  if (f != NULL)
    wschat__replay_send(c, f); /* after its replay, if one is pending */
  else if (oom)
    wschat__conn_doom(&c->conn, 1011); /* closed at the flush */
  return f != NULL;
}

void wschat__session_deliver(void *user, struct wschat__member *const *m,
                             size_t n, struct wschat_event *ev, int variant,
                             uint64_t skip) {
  (void)user;
  /* The common case in a tight loop: a member of a plain view (not held
   * behind a replay), the frame of its view built already (by the first
   * recipient of that view), an event every member sees the same way.
   * Anything else goes through the view. */
  struct wschat__frame *(*frames)[WSCHAT__VIEWS][WSCHAT__VARIANTS] = ev->frames;
  int plain = ev->kind != WSCHAT_EVENT_NICK && variant == 0;
  size_t delivered = 0; /* counted here, added to the metrics once */
  struct wschat_client *c = NULL;
  for (size_t i = 0; i < n; i++) {
    struct wschat__member *mi = m[i];
    if (mi->id == skip)
      continue;
    /* The client around the member, without loading mi->client. */
    c = (struct wschat_client *)(void *)((char *)mi -
                                         offsetof(struct wschat_client,
                                                  member));
    unsigned v = mi->view, z = mi->zkey;
    if (plain && v < WSCHAT__VIEWS && frames[z][v][0] != NULL) {
      /* The test conn_deliver makes first (the compiler merges them). */
      if (c->conn.state != WSCHAT__CONN_OPEN || c->conn.doom)
        continue;
      delivered++;
      wschat__conn_deliver(&c->conn, frames[z][v][0]);
      continue;
    }
    delivered += (size_t)deliver_one(mi, ev, variant);
  }
  if (c != NULL)
    c->conn.env->metrics->deliveries += delivered;
}

/* ---- the text protocol's io ---- */

void wschat__session_reply(void *user, struct wschat__member *m,
                           const char *text, size_t len) {
  (void)user;
  struct wschat_client *c = m->client;
  struct wschat__frame *f = wschat__frame_new(WSCHAT__OP_TEXT, text, len);
  if (f == NULL) {
    wschat__conn_doom(&c->conn, 1011);
    return;
  }
  f = wschat__session_own(c, f);
  wschat__replay_send(c, f);
  wschat__frame_unref(f);
}

int wschat__session_history(void *user, struct wschat__member *m,
                            unsigned n) {
  (void)user;
  struct wschat__room *r = wschat__member_room(m);
  if (r == NULL)
    return WSCHAT_ENOTMEMBER;
  struct wschat__history_query q = {.kind = WSCHAT__HISTORY_LAST,
                                    .room = r->name,
                                    .limit = n};
  return wschat__replay_start(m->client, &q, WSCHAT__REPLAY_ASKED, NULL);
}

void wschat__session_on_enter(void *user, struct wschat__member *m,
                              const char *room) {
  (void)user;
  struct wschat_client *c = m->client;
  const struct wschat__session_env *env = wschat__session_env(c);
  struct wschat__history *h = env->history;
  int since = c->has_since;
  c->has_since = 0;
  if (h == NULL || c->conn.state != WSCHAT__CONN_OPEN ||
      (!since && env->replay == 0))
    return;
  struct wschat__history_query q = {
      .kind = since ? WSCHAT__HISTORY_AFTER : WSCHAT__HISTORY_LAST,
      .room = room,
      .id = c->since,
      .epoch = since == 2 ? c->since_epoch : h->ops->epoch(h),
      .limit = since ? WSCHAT__HISTORY_READ_MAX : env->replay,
  };
  if (wschat__replay_start(c, &q, WSCHAT__REPLAY_JOIN, NULL) != 0 &&
      (m->view & WSCHAT__VIEW_MASK) == WSCHAT__VIEW_JSON) {
    /* The store is busy (or out of memory): the client must not believe
     * it has seen everything. */
    struct wschat__frame *f = wschat__json_history(room, NULL, 0, 0, NULL);
    if (f != NULL) {
      f = wschat__session_own(c, f);
      wschat__replay_send(c, f);
      wschat__frame_unref(f);
    }
  }
}

void wschat__session_quit(void *user, struct wschat__member *m,
                          const char *reason) {
  (void)user;
  struct wschat_client *c = m->client;
  wschat__conn_close(&c->conn, 1000, reason);
}
