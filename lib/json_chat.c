/* json_chat: see json_chat.h. */
#include "json_chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "command.h"
#include "event.h"
#include "frame.h"
#include "history.h"
#include "http.h"
#include "json_proto.h"
#include "json_view.h"
#include "presence.h"
#include "roster.h"
#include "replay.h"
#include "session_env.h"
#include "utf8.h"

/* At most one typing notice per client and room in this many ms. */
#define TYPING_EVERY_MS 3000
/* A recipient with more than this share of its output cap queued gets no
 * typing notices (they are the first thing dropped under pressure). */
#define TYPING_PRESSURE_DIV 16

static struct wschat__chat *chat_of(const struct wschat_client *c) {
  return wschat__session_env(c)->chat;
}

/* Sends a new frame (consumed); NULL is out of memory. */
static void send_new(struct wschat_client *c, struct wschat__frame *f) {
  if (f == NULL) {
    wschat__conn_doom(&c->conn, 1011);
    return;
  }
  f = wschat__session_own(c, f);
  wschat__replay_send(c, f);
  wschat__frame_unref(f);
}

static void send_error(struct wschat_client *c, int code, const char *message,
                       json_t *ref) {
  send_new(c, wschat__json_error(code, message, ref));
}

/* An error for a chat-core refusal, with a message naming what. */
static void chat_error(struct wschat_client *c, int err, int room_context,
                       const char *what, json_t *ref) {
  int code = wschat__json_code_of(err, room_context);
  char msg[160];
  switch (code) {
  case WSCHAT__JERR_NAME_TAKEN:
    snprintf(msg, sizeof(msg), "name already taken: %s", what);
    break;
  case WSCHAT__JERR_NAME_RESERVED:
    snprintf(msg, sizeof(msg), "name reserved: %s", what);
    break;
  case WSCHAT__JERR_INVALID_NAME:
    snprintf(msg, sizeof(msg),
             "invalid name (use 1-32 letters, digits, - or _)");
    break;
  case WSCHAT__JERR_INVALID_ROOM:
    snprintf(msg, sizeof(msg),
             "invalid room name (use 1-64 letters, digits, -, _ or .)");
    break;
  case WSCHAT__JERR_NO_SUCH_USER:
    snprintf(msg, sizeof(msg), "no such user: %s", what);
    break;
  case WSCHAT__JERR_NO_SUCH_ROOM:
    snprintf(msg, sizeof(msg), "no such room: %s", what);
    break;
  case WSCHAT__JERR_NOT_MEMBER:
    snprintf(msg, sizeof(msg), "you are not in #%s", what);
    break;
  case WSCHAT__JERR_ALREADY_MEMBER:
    snprintf(msg, sizeof(msg), "you are already in #%s", what);
    break;
  case WSCHAT__JERR_TOO_MANY_ROOMS:
    snprintf(msg, sizeof(msg), "too many rooms: leave one first (at most %zu)",
             chat_of(c)->max_rooms);
    break;
  default:
    snprintf(msg, sizeof(msg), "%s", wschat_strerror(err));
    break;
  }
  send_error(c, code, msg, ref);
}

/* ---- open ---- */

static int welcome(struct wschat_client *c, const char *room) {
  char epoch[17];
  wschat__replay_epoch(c, epoch);
  const char *rooms[1] = {room};
  struct wschat__frame *f = wschat__json_welcome(
      c->member.name, room, rooms, 1, epoch[0] ? epoch : NULL);
  if (f == NULL)
    return -1;
  f = wschat__session_own(c, f);
  wschat__replay_send(c, f);
  wschat__frame_unref(f);
  return 0;
}

/* ?since= as a protocol integer: 0 .. 2^53 - 1, digits only. */
static int parse_since(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == '\0')
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > (uint64_t)WSCHAT__JSON_MAX_INT)
      return -1;
  }
  *out = v;
  return 0;
}

int wschat__json_open(struct wschat_client *c, const char *query,
                      const char *name, const char *room) {
  struct wschat__chat *ch = chat_of(c);
  struct wschat__member *m = &c->member;
  size_t ql = query ? strlen(query) : 0;
  char want[128], where[WSCHAT_ROOM_MAX + 1];
  struct {
    int code;
    char msg[160];
  } errs[4];
  int nerr = 0, r = WSCHAT_ENAME;

  if (name != NULL) {
    r = wschat__chat_enter(ch, m, name, 1);
  } else {
    int n = wschat__http_query_param(query, ql, "name", want, sizeof(want));
    if (n >= 0 || n == -2) {
      size_t len = n >= 0 ? (size_t)n : 0;
      r = n >= 0 && wschat__name_valid(want, len)
              ? wschat__chat_enter(ch, m, want, 0)
              : WSCHAT_ENAME;
      if (r != 0) {
        errs[nerr].code = wschat__json_code_of(r, 0);
        snprintf(errs[nerr++].msg, sizeof(errs[0].msg),
                 r == WSCHAT_ENAMETAKEN  ? "name already taken: %s"
                 : r == WSCHAT_ERESERVED ? "name reserved: %s"
                 : r == WSCHAT_ENOMEM    ? "out of memory (%s)"
                                      : "invalid name (use 1-32 letters, "
                                           "digits, - or _): %s",
                 n >= 0 && wschat__utf8_valid(want, len) ? want : "?");
      }
    }
  }
  if (r != 0 && wschat__chat_enter(ch, m, NULL, 0) != 0)
    return WSCHAT_ENOMEM;

  snprintf(where, sizeof(where), "%s", room ? room : WSCHAT__LOBBY);
  if (room == NULL) {
    int n = wschat__http_query_param(query, ql, "room", want, sizeof(want));
    if (n >= 0 && wschat__room_valid(want, (size_t)n)) {
      memcpy(where, want, (size_t)n + 1);
    } else if (n >= 0 || n == -2) {
      errs[nerr].code = WSCHAT__JERR_INVALID_ROOM;
      snprintf(errs[nerr++].msg, sizeof(errs[0].msg),
               "invalid room name (use 1-64 letters, digits, -, _ or .); "
               "you are in #lobby");
    }
  }
  c->has_since = 0;
  int n = wschat__http_query_param(query, ql, "since", want, sizeof(want));
  if (n >= 0 && parse_since(want, &c->since) == 0) {
    c->has_since = 1;
    c->since_epoch = 0;
    if (wschat__http_query_param(query, ql, "epoch", want, sizeof(want)) >=
        0) {
      c->has_since = 2;
      c->since_epoch = wschat__replay_parse_epoch(want);
    }
  } else if (n >= 0 || n == -2) {
    errs[nerr].code = WSCHAT__JERR_BAD_FIELD;
    snprintf(errs[nerr++].msg, sizeof(errs[0].msg),
             "since must be an integer from 0 to 2^53 - 1");
  }

  if (c->has_since && room == NULL && strcmp(where, WSCHAT__LOBBY) == 0 &&
      wschat__http_query_param(query, ql, "room", want, sizeof(want)) != -1 &&
      strcasecmp(want, WSCHAT__LOBBY) != 0)
    c->has_since = 0; /* its ?room= was refused: since meant another room */
  struct wschat__room *r0 = wschat__room_find(&ch->rooms, where);
  if (welcome(c, r0 ? r0->name : where) != 0)
    return WSCHAT_ENOMEM;
  for (int i = 0; i < nerr; i++)
    send_error(c, errs[i].code, errs[i].msg, NULL);
  if (wschat__chat_join(ch, m, where, WSCHAT__JOIN_TELL_SELF) != 0) {
    c->has_since = 0;
    wschat__chat_exit(ch, m, NULL);
    return WSCHAT_ENOMEM;
  }
  c->has_since = 0;
  return 0;
}

/* ---- requests ---- */

/* Cluster mode's rename: refused at once, or after the registry. */
static int nick_check(struct wschat__chat *ch, struct wschat__member *m,
                      const char *name) {
  if (!wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  struct wschat__presence *p = ch->presence;
  struct wschat__member *o = p->ops->find(p, name);
  if (o != NULL && o != m)
    return WSCHAT_ENAMETAKEN;
  if (o == NULL && p->ops->reserved(p, name))
    return WSCHAT_ERESERVED;
  return 0;
}

static void nick_drop(void *arg) {
  if (arg)
    json_decref(arg);
}

static void nick_done(struct wschat__member *m, const char *name, int rc,
                      void *arg) {
  json_t *ref = arg;
  struct wschat_client *c = m->client;
  if (rc == 0)
    rc = wschat__chat_rename(chat_of(c), m, name);
  if (rc != 0)
    chat_error(c, rc, 0, name, ref);
  nick_drop(ref);
}

static void req_users(struct wschat_client *c,
                      const struct wschat__json_req *q) {
  struct wschat__chat *ch = chat_of(c);
  struct wschat__room *r = NULL;
  if (q->room != NULL) {
    r = wschat__room_find(&ch->rooms, q->room);
    if (r == NULL && !ch->deferred) {
      chat_error(c, WSCHAT_ENOTFOUND, 1, q->room, q->ref);
      return;
    }
  }
  size_t n = 0;
  struct wschat__roster_user *v = wschat__roster_users(ch, q->room, &n);
  const char **names = malloc((n ? n : 1) * sizeof(*names));
  if (v == NULL || names == NULL) {
    free(v);
    free(names);
    send_error(c, WSCHAT__JERR_INTERNAL, "out of memory, try again", q->ref);
    return;
  }
  if (q->room != NULL && r == NULL && n == 0) { /* no such room anywhere */
    free(v);
    free(names);
    chat_error(c, WSCHAT_ENOTFOUND, 1, q->room, q->ref);
    return;
  }
  for (size_t i = 0; i < n; i++)
    names[i] = v[i].name;
  send_new(c, wschat__json_users(r ? r->name : q->room, names, n, q->ref));
  free(v);
  free(names);
}

static void req_rooms(struct wschat_client *c,
                      const struct wschat__json_req *q) {
  size_t n = 0;
  struct wschat__roster_room *v = wschat__roster_rooms(chat_of(c), &n);
  struct wschat__json_room *out = malloc((n ? n : 1) * sizeof(*out));
  if (v == NULL || out == NULL) {
    free(v);
    free(out);
    send_error(c, WSCHAT__JERR_INTERNAL, "out of memory, try again", q->ref);
    return;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = (struct wschat__json_room){v[i].name, v[i].n};
  send_new(c, wschat__json_rooms(out, n, q->ref));
  free(v);
  free(out);
}

/* The membership of m in room (by name), or NULL. */
static struct wschat__membership *membership(struct wschat_client *c,
                                             const char *room) {
  struct wschat__member *m = &c->member;
  if (room == NULL)
    return m->nrooms ? &m->rooms[m->nrooms - 1] : NULL;
  struct wschat__room *r = wschat__room_find(&chat_of(c)->rooms, room);
  int i = r ? wschat__member_index(m, r) : -1;
  return i >= 0 ? &m->rooms[i] : NULL;
}

static void req_history(struct wschat_client *c,
                        const struct wschat__json_req *q) {
  struct wschat__membership *ms = membership(c, q->room);
  if (ms == NULL) {
    chat_error(c, WSCHAT_ENOTMEMBER, 1, q->room, q->ref);
    return;
  }
  if (wschat__session_env(c)->history != NULL && !wschat__replay_can_ask(c)) {
    char msg[96];
    snprintf(msg, sizeof(msg),
             "too many history requests at once (at most %d): wait for "
             "their answers",
             WSCHAT__REPLAY_MAX_ASKED);
    send_error(c, WSCHAT__JERR_RATE_LIMITED, msg, q->ref);
    return;
  }
  struct wschat__history *h = wschat__session_env(c)->history;
  struct wschat__history_query hq = {
      .kind = q->has_after    ? WSCHAT__HISTORY_AFTER
              : q->has_before ? WSCHAT__HISTORY_BEFORE
                              : WSCHAT__HISTORY_LAST,
      .room = ms->room->name,
      .id = q->has_after ? q->after : q->before,
      .epoch = h ? h->ops->epoch(h) : 0,
      .limit = q->limit,
  };
  int rc = wschat__replay_start(c, &hq, WSCHAT__REPLAY_ASKED, q->ref);
  if (rc == WSCHAT_ENOHISTORY)
    send_error(c, WSCHAT__JERR_UNAVAILABLE,
               "this server keeps no history", q->ref);
  else if (rc == WSCHAT_ETOOMANY)
    send_error(c, WSCHAT__JERR_UNAVAILABLE,
               "the history store is busy, try again", q->ref);
  else if (rc != 0)
    send_error(c, WSCHAT__JERR_INTERNAL, wschat_strerror(rc), q->ref);
}

void wschat__json_typing_deliver(struct wschat__chat *ch, const char *room,
                                 const char *from,
                                 const struct wschat__member *sender) {
  struct wschat__room *r = wschat__room_find(&ch->rooms, room);
  if (r == NULL)
    return;
  struct wschat__frame *f = NULL;
  for (size_t i = 0; i < r->n; i++) {
    struct wschat__member *o = r->members[i];
    if (o == sender || o->view != WSCHAT__VIEW_JSON || o->client == NULL)
      continue; /* the sender, text clients, held clients */
    struct wschat_client *oc = o->client;
    size_t pressure = oc->conn.env->max_output / TYPING_PRESSURE_DIV;
    if (oc->conn.state != WSCHAT__CONN_OPEN || oc->conn.doom ||
        wschat__outq_backlog(&oc->conn.q) > pressure)
      continue;
    if (f == NULL && (f = wschat__json_typing(r->name, from)) == NULL)
      return; /* out of memory: an ephemeral notice is not worth a close */
    wschat__conn_deliver(&oc->conn, f);
  }
  wschat__frame_unref(f);
}

static void req_typing(struct wschat_client *c,
                       const struct wschat__json_req *q) {
  struct wschat__membership *ms = membership(c, q->room);
  if (ms == NULL) {
    chat_error(c, WSCHAT_ENOTMEMBER, 1, q->room, q->ref);
    return;
  }
  const struct wschat__session_env *env = wschat__session_env(c);
  uint64_t now = uv_now(env->conn.loop);
  if (ms->typing_ms != 0 && now - ms->typing_ms < TYPING_EVERY_MS)
    return; /* at most one every 3 s: dropped without an error */
  ms->typing_ms = now;
  struct wschat__chat *ch = chat_of(c);
  wschat__json_typing_deliver(ch, ms->room->name, c->member.name,
                              &c->member);
  if (ch->typing_out != NULL) /* the other nodes' members */
    ch->typing_out(ch->typing_user, ms->room->name, c->member.name);
}

static void req_join(struct wschat_client *c,
                     const struct wschat__json_req *q) {
  struct wschat__chat *ch = chat_of(c);
  if (membership(c, q->room) != NULL) {
    chat_error(c, WSCHAT_ESAMEROOM, 1, q->room, q->ref);
    return;
  }
  if (q->has_since) {
    c->since = q->since;
    c->has_since = q->epoch ? 2 : 1;
    c->since_epoch = q->epoch ? wschat__replay_parse_epoch(q->epoch) : 0;
  }
  int rc = wschat__chat_join(ch, &c->member, q->room, WSCHAT__JOIN_TELL_SELF);
  c->has_since = 0;
  if (rc != 0)
    chat_error(c, rc, 1, q->room, q->ref);
}

/* ---- flood control ---- */

static void slow_down(struct wschat_client *c, int kind, json_t *ref) {
  static const char *const what[WSCHAT__RATE_KINDS] = {
      [WSCHAT__RATE_ANY] = "messages",
      [WSCHAT__RATE_JOIN] = "joins and leaves",
      [WSCHAT__RATE_NICK] = "name changes",
      [WSCHAT__RATE_WHISPER] = "whispers",
  };
  uint32_t rate, burst;
  wschat__session_rate_of(wschat__session_env(c), kind, &rate, &burst);
  char msg[160];
  snprintf(msg, sizeof(msg),
           "slow down: at most %u %s a second (%u at once); more are "
           "dropped, and a client that keeps going is closed",
           (unsigned)rate, what[kind], (unsigned)burst);
  send_error(c, WSCHAT__JERR_RATE_LIMITED, msg, ref);
}

void wschat__json_slow_down(struct wschat_client *c, int kind) {
  slow_down(c, kind, NULL);
}

void wschat__json_forbidden(struct wschat_client *c, const char *message) {
  send_error(c, WSCHAT__JERR_FORBIDDEN, message, NULL);
}

/* The request's own bucket (joins, leaves, names, whispers): 1 if it goes
 * on. Every request took a token of the common bucket already. */
static int admitted(struct wschat_client *c, const struct wschat__json_req *q) {
  int kind = q->type == WSCHAT__JREQ_JOIN || q->type == WSCHAT__JREQ_LEAVE
                 ? WSCHAT__RATE_JOIN
             : q->type == WSCHAT__JREQ_NICK    ? WSCHAT__RATE_NICK
             : q->type == WSCHAT__JREQ_WHISPER ? WSCHAT__RATE_WHISPER
                                               : WSCHAT__RATE_ANY;
  if (kind == WSCHAT__RATE_ANY)
    return 1;
  int r = wschat__session_admit(c, kind);
  if (r == WSCHAT__ADMIT_WARN)
    slow_down(c, kind, q->ref);
  return r == WSCHAT__ADMIT;
}

static void dispatch(struct wschat_client *c, const struct wschat__json_req *q) {
  struct wschat__chat *ch = chat_of(c);
  struct wschat__member *m = &c->member;
  int rc = 0;
  if (!admitted(c, q))
    return;
  switch (q->type) {
  case WSCHAT__JREQ_MESSAGE:
    rc = wschat__chat_say_in(
        ch, m, q->room, q->action ? WSCHAT_EVENT_ACTION : WSCHAT_EVENT_MESSAGE,
        q->text, q->text_len);
    if (rc != 0)
      chat_error(c, rc, 1,
                 q->room ? q->room : (m->nrooms ? "?" : "any room"), q->ref);
    return;
  case WSCHAT__JREQ_JOIN:
    if (!wschat__ident_may_join(c, q->room)) {
      char msg[WSCHAT_ROOM_MAX + 48];
      snprintf(msg, sizeof(msg), "#%s is not among your token's rooms",
               q->room);
      send_error(c, WSCHAT__JERR_FORBIDDEN, msg, q->ref);
      return;
    }
    req_join(c, q);
    return;
  case WSCHAT__JREQ_LEAVE:
    rc = wschat__chat_leave(ch, m, q->room, NULL, WSCHAT__LEAVE_TELL_SELF);
    if (rc != 0)
      chat_error(c, rc, 1, q->room ? q->room : "any room", q->ref);
    return;
  case WSCHAT__JREQ_NICK:
    if (c->ident != NULL) {
      send_error(c, WSCHAT__JERR_FORBIDDEN, "your name comes from your token",
                 q->ref);
      return;
    }
    if (strcmp(q->name, m->name) == 0) {
      char msg[80];
      snprintf(msg, sizeof(msg), "you are already %s", m->name);
      send_error(c, WSCHAT__JERR_NAME_TAKEN, msg, q->ref);
      return;
    }
    if (ch->claim_async != NULL) { /* cluster mode: the registry first */
      json_t *ref = q->ref ? json_incref(q->ref) : NULL;
      rc = nick_check(ch, m, q->name);
      if (rc == 0)
        rc = ch->claim_async(ch->claim_user, m, q->name, nick_done, nick_drop,
                             ref);
      if (rc != 0) {
        chat_error(c, rc, 0, q->name, q->ref);
        if (ref)
          json_decref(ref);
      }
      return;
    }
    rc = wschat__chat_rename(ch, m, q->name);
    if (rc != 0)
      chat_error(c, rc, 0, q->name, q->ref);
    return;
  case WSCHAT__JREQ_WHISPER:
    rc = wschat__chat_whisper(ch, m, q->to, q->text, q->text_len);
    if (rc != 0)
      chat_error(c, rc, 0, q->to, q->ref);
    return;
  case WSCHAT__JREQ_USERS:
    req_users(c, q);
    return;
  case WSCHAT__JREQ_ROOMS:
    req_rooms(c, q);
    return;
  case WSCHAT__JREQ_HISTORY:
    req_history(c, q);
    return;
  case WSCHAT__JREQ_TYPING:
    req_typing(c, q);
    return;
  default:
    send_error(c, WSCHAT__JERR_INTERNAL, "unhandled request", q->ref);
    return;
  }
}

void wschat__json_message(struct wschat_client *c, const char *text,
                          size_t len, int binary) {
  if (binary) {
    send_error(c, WSCHAT__JERR_BAD_JSON,
               "binary messages are not supported: send JSON text", NULL);
    return;
  }
  struct wschat__json_req q;
  struct wschat__json_limits lim;
  wschat__json_limits_default(&lim);
  lim.max_text = wschat__session_line_max(wschat__session_env(c));
  if (wschat__json_parse(text, len, &q, &lim) != 0)
    send_error(c, q.code, q.message, q.ref);
  else
    dispatch(c, &q);
  wschat__json_req_free(&q);
}
