/*
 * client: the public functions on one client (wschat_client_*) and the
 * server's chat calls on behalf of the application. Thin: each checks its
 * arguments and state, then asks the session, conn or chat module.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "command.h"
#include "frame.h"
#include "http.h"
#include "presence.h"
#include "replay.h"
#include "route.h"
#include "server.h"
#include "session.h"
#include "utf8.h"

/* ---- what a client is ---- */

uint64_t wschat_client_id(const struct wschat_client *c) {
  return c->member.id;
}
const char *wschat_client_name(const struct wschat_client *c) {
  if (c->hs != NULL && c->hs->name[0] && !c->member.attached)
    return c->hs->name; /* set in on_connect, not in the chat yet */
  return c->member.name;
}
const char *wschat_client_room(const struct wschat_client *c) {
  struct wschat__room *r = wschat__member_room(&c->member);
  return r ? r->name : NULL;
}
const char *wschat_client_peer(const struct wschat_client *c) {
  if (c->path == NULL)
    return "";
  const char *q = c->path + strlen(c->path) + 1;
  return q + strlen(q) + 1;
}
const char *wschat_client_path(const struct wschat_client *c) {
  return c->path ? c->path : "";
}
const char *wschat_client_query(const struct wschat_client *c) {
  return c->path ? c->path + strlen(c->path) + 1 : "";
}
const char *wschat_client_protocol(const struct wschat_client *c) {
  return c->protocol ? c->protocol : "";
}
void wschat_client_set_data(struct wschat_client *c, void *data) {
  c->user_data = data;
}
void *wschat_client_get_data(const struct wschat_client *c) {
  return c->user_data;
}

struct wschat_client *wschat_server_client(struct wschat_server *srv,
                                           uint64_t id) {
  return srv ? wschat__server_client(srv, id) : NULL;
}

struct wschat_client *wschat_server_find_client(struct wschat_server *srv,
                                                const char *name) {
  if (srv == NULL || name == NULL)
    return NULL;
  struct wschat__presence *p = srv->chat.presence;
  struct wschat__member *m = p->ops->find(p, name);
  return m ? m->client : NULL;
}

/* ---- the decision on a new client ---- */

/* In on_connect, or deferred: the request is still there to decide on. */
static int deciding(const struct wschat_client *c) {
  return (c->in_connect || c->deferred) && c->hs != NULL &&
         c->conn.state == WSCHAT__CONN_HTTP;
}

int wschat_client_header(const struct wschat_client *c, const char *name,
                         char *buf, size_t cap) {
  if (name == NULL || (buf == NULL && cap > 0))
    return WSCHAT_EINVAL;
  if (c->conn.http == NULL || c->conn.state != WSCHAT__CONN_HTTP)
    return WSCHAT_ESTATE;
  int n = wschat__http_copy_header(c->conn.http, name, buf, cap);
  return n < 0 ? WSCHAT_ENOTFOUND : n;
}

static int valid_close_code(int code) {
  return code == 1000 || code == 1001 || code == 1008 || code == 1011 ||
         (code >= 3000 && code <= 4999);
}

static int valid_reason(const char *reason) {
  return reason == NULL || (strlen(reason) <= 123 &&
                            wschat__utf8_valid(reason, strlen(reason)));
}

int wschat_client_reject(struct wschat_client *c, int code,
                         const char *reason) {
  if (!deciding(c))
    return WSCHAT_ESTATE;
  if (!(code >= 400 && code <= 599) && !valid_close_code(code))
    return WSCHAT_EINVAL;
  if (!valid_reason(reason))
    return WSCHAT_EINVAL;
  char *copy = NULL;
  if (reason && (copy = strdup(reason)) == NULL)
    return WSCHAT_ENOMEM;
  free(c->hs->reject_reason);
  c->hs->reject_reason = copy;
  c->reject_code = (uint16_t)code;
  if (c->in_connect)
    c->deferred = 0; /* decided after all: answered when on_connect returns */
  else if (c->deferred)
    wschat__session_decide(c);
  return 0;
}

int wschat_client_defer(struct wschat_client *c) {
  if (!c->in_connect || !deciding(c))
    return WSCHAT_ESTATE;
  c->deferred = 1;
  return 0;
}

int wschat_client_accept(struct wschat_client *c) {
  if (!c->deferred || !deciding(c))
    return WSCHAT_ESTATE;
  if (c->in_connect) { /* decided after all: accepted when it returns */
    c->deferred = 0;
    return 0;
  }
  wschat__session_decide(c);
  wschat__conn_resume(&c->conn);
  return 0;
}

int wschat_client_set_name(struct wschat_client *c, const char *name) {
  if (name == NULL)
    return WSCHAT_EINVAL;
  if (!deciding(c))
    return WSCHAT_ESTATE;
  if (!wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  struct wschat__presence *p = c->srv->chat.presence;
  if (p->ops->find(p, name) != NULL)
    return WSCHAT_ENAMETAKEN;
  memcpy(c->hs->name, name, strlen(name) + 1); /* fits: a valid name */
  return 0;
}

int wschat_client_set_room(struct wschat_client *c, const char *room) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  if (!deciding(c))
    return WSCHAT_ESTATE;
  memcpy(c->hs->room, room, strlen(room) + 1); /* fits: a valid room */
  return 0;
}

const char *wschat_client_protocols(const struct wschat_client *c) {
  return c->hs && c->hs->protocols ? c->hs->protocols : "";
}

int wschat_client_set_protocol(struct wschat_client *c, const char *proto) {
  if (!deciding(c))
    return WSCHAT_ESTATE;
  if (proto == NULL) {
    free(c->protocol);
    c->protocol = NULL;
    return 0;
  }
  if (!wschat__http_header_has_token(c->conn.http, "Sec-WebSocket-Protocol",
                                     proto) ||
      wschat__ident_is_token_protocol(proto, strlen(proto)))
    return WSCHAT_EINVAL; /* a token entry is never echoed back */
  char *copy = strdup(proto);
  if (copy == NULL)
    return WSCHAT_ENOMEM;
  free(c->protocol);
  c->protocol = copy;
  return 0;
}

int wschat_client_add_header(struct wschat_client *c, const char *name,
                             const char *value) {
  if (!deciding(c))
    return WSCHAT_ESTATE;
  struct wschat__headers hs = {c->hs->headers, c->hs->headers_len,
                               c->hs->nheaders};
  int r = wschat__headers_add(&hs, name, value);
  c->hs->headers = hs.buf;
  c->hs->headers_len = hs.len;
  c->hs->nheaders = hs.n;
  return r;
}

/* ---- talking to a client ---- */

static int open_or_why(const struct wschat_client *c) {
  if (c->conn.state == WSCHAT__CONN_OPEN)
    return 0;
  return c->conn.state == WSCHAT__CONN_HTTP ? WSCHAT_ENOTOPEN : WSCHAT_ECLOSED;
}

static int send_frame(struct wschat_client *c, int opcode, const void *data,
                      size_t len) {
  int r = open_or_why(c);
  if (r != 0)
    return r;
  if (data == NULL && len > 0)
    return WSCHAT_EINVAL;
  struct wschat__frame *f = wschat__frame_new(opcode, data, len);
  if (f == NULL)
    return WSCHAT_ENOMEM;
  f = wschat__session_own(c, f);
  wschat__replay_send(c, f); /* after a pending replay, in order */
  wschat__frame_unref(f);
  return 0;
}

int wschat_client_send(struct wschat_client *c, const char *text, size_t len) {
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  return send_frame(c, WSCHAT__OP_TEXT, text, len);
}

int wschat_client_send_binary(struct wschat_client *c, const void *data,
                              size_t len) {
  return send_frame(c, WSCHAT__OP_BINARY, data, len);
}

int wschat_client_close(struct wschat_client *c, int code,
                        const char *reason) {
  if (!valid_close_code(code) || !valid_reason(reason))
    return WSCHAT_EINVAL;
  if (c->conn.state == WSCHAT__CONN_CLOSING ||
      c->conn.state == WSCHAT__CONN_DEAD || c->member.exiting)
    return WSCHAT_ECLOSED; /* exiting: a close is under way (its walk of
                              the rooms runs the hooks that called us) */
  if (deciding(c))
    return wschat_client_reject(c, code, reason);
  if (c->conn.state != WSCHAT__CONN_OPEN)
    return WSCHAT_ECLOSED;
  /* The rooms see the reason (a kick), before the connection ends. */
  if (c->srv->sess.mode == WSCHAT_MODE_CHAT)
    wschat__chat_exit(&c->srv->chat, &c->member, reason);
  wschat__conn_close(&c->conn, code, reason);
  return 0;
}

/* ---- rooms and names ---- */

/* The state a chat call needs: open, in chat mode. */
static int chat_ready(const struct wschat_client *c) {
  int r = open_or_why(c);
  if (r != 0)
    return r;
  if (c->srv->sess.mode != WSCHAT_MODE_CHAT)
    return WSCHAT_ESTATE;
  if (!c->member.attached)
    return WSCHAT_ECLOSED; /* leaving the chat: a close is under way */
  return 0;
}

int wschat_client_join(struct wschat_client *c, const char *room) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  int r = chat_ready(c);
  return r ? r
           : wschat__chat_join(&c->srv->chat, &c->member, room,
                               WSCHAT__JOIN_TELL_SELF);
}

int wschat_client_leave(struct wschat_client *c, const char *room,
                        const char *reason) {
  if (room != NULL && !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  int r = chat_ready(c);
  if (r != 0)
    return r;
  char *why = NULL;
  if (reason) {
    size_t n = strlen(reason);
    if (!wschat__utf8_valid(reason, n))
      return WSCHAT_EINVAL;
    if ((why = strdup(reason)) == NULL)
      return WSCHAT_ENOMEM;
  }
  r = wschat__chat_leave(&c->srv->chat, &c->member, room, why, 0);
  free(why);
  return r;
}

int wschat_client_move(struct wschat_client *c, const char *room) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  int r = chat_ready(c);
  return r ? r : wschat__chat_move(&c->srv->chat, &c->member, room);
}

int wschat_client_rename(struct wschat_client *c, const char *name) {
  if (name == NULL || !wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  int r = chat_ready(c);
  if (r != 0)
    return r;
  if (strcmp(name, c->member.name) == 0)
    return 0;
  return wschat__chat_rename(&c->srv->chat, &c->member, name);
}

size_t wschat_client_rooms(const struct wschat_client *c,
                           wschat_room_visit_cb cb, void *user) {
  size_t i = 0, n = c->member.nrooms;
  if (cb == NULL)
    return n;
  /* Copy the names: the visitor may be told not to, but one that moves
   * the client must not make us read freed rooms. */
  char(*names)[WSCHAT_ROOM_MAX + 1] = malloc((n ? n : 1) * sizeof(*names));
  size_t *counts = malloc((n ? n : 1) * sizeof(*counts));
  if (names == NULL || counts == NULL) {
    free(names);
    free(counts);
    return 0;
  }
  for (size_t k = 0; k < n; k++) {
    memcpy(names[k], c->member.rooms[k].room->name, sizeof(names[k]));
    counts[k] = c->member.rooms[k].room->n;
  }
  while (i < n && cb(names[i], counts[i], user) == 0)
    i++;
  free(names);
  free(counts);
  return i < n ? i + 1 : n;
}

static int room_arg(const char *room) {
  return room == NULL || wschat__room_valid(room, strlen(room));
}

int wschat_server_broadcast(struct wschat_server *srv, const char *room,
                            const char *text, size_t len,
                            const struct wschat_client *skip) {
  if (srv == NULL || (text == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (!room_arg(room))
    return WSCHAT_EROOM;
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  return wschat__chat_notice(&srv->chat, room, text, len,
                             skip ? skip->member.id : 0);
}

int wschat_server_say(struct wschat_server *srv, const char *room,
                      const char *name, const char *text, size_t len) {
  if (srv == NULL || (text == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (name == NULL || !wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  return wschat__chat_say_as(&srv->chat, room, name, text, len);
}

int wschat_server_add_origin(struct wschat_server *srv, const char *origin) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  return wschat__session_add_origin(&srv->sess, origin);
}

int wschat_server_set_jwt_secret(struct wschat_server *srv,
                                 const void *secret, size_t len) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  return wschat__token_set_secret(&srv->sess.keys, secret, len);
}

int wschat_server_set_jwt_public_key(struct wschat_server *srv,
                                     const char *pem, size_t len) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  return wschat__token_set_public_key(&srv->sess.keys, pem, len);
}

void wschat_server_clear_origins(struct wschat_server *srv) {
  if (srv == NULL)
    return;
  struct wschat__session_env *env = &srv->sess;
  for (size_t i = 0; i < env->norigins; i++)
    free(env->origins[i]);
  env->norigins = 0; /* the array is kept for the next list */
}

int wschat_server_reserve_name(struct wschat_server *srv, const char *name) {
  if (srv == NULL || name == NULL || !wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  struct wschat__presence *p = srv->chat.presence;
  return p->ops->reserve(p, name);
}

int wschat_server_release_name(struct wschat_server *srv, const char *name) {
  if (srv == NULL || name == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat__presence *p = srv->chat.presence;
  return p->ops->unreserve(p, name);
}

int wschat_server_keep_room(struct wschat_server *srv, const char *room,
                            int keep) {
  if (srv == NULL || room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  struct wschat__rooms *rs = &srv->chat.rooms;
  struct wschat__room *r = wschat__room_find(rs, room);
  if (!keep) {
    if (r == NULL)
      return WSCHAT_ENOTFOUND;
    if (strcasecmp(r->name, WSCHAT__LOBBY) != 0) {
      r->keep = 0;
      wschat__room_reap(rs, r);
    }
    return 0;
  }
  if (r == NULL && (r = wschat__room_open(rs, room)) == NULL)
    return WSCHAT_ENOMEM;
  r->keep = 1;
  return 0;
}

size_t wschat_server_rooms(struct wschat_server *srv, wschat_room_visit_cb cb,
                           void *user) {
  if (cb == NULL)
    return srv->chat.rooms.map.count;
  size_t n, i;
  struct wschat__room **v = wschat__rooms_sorted(&srv->chat.rooms, &n);
  for (i = 0; i < n; i++)
    if (cb(v[i]->name, v[i]->n, user) != 0) {
      i++;
      break;
    }
  free(v);
  return i;
}

size_t wschat_server_members(struct wschat_server *srv, const char *room,
                             wschat_client_visit_cb cb, void *user) {
  const struct wschat__rooms *rs = &srv->chat.rooms;
  struct wschat__member **m;
  size_t n;
  if (room == NULL) {
    m = rs->all;
    n = rs->nall;
  } else {
    struct wschat__room *r = wschat__room_find(rs, room);
    if (r == NULL)
      return 0;
    m = r->members;
    n = r->n;
  }
  if (cb == NULL)
    return n;
  size_t visited = 0;
  for (size_t i = 0; i < n; i++) {
    visited++;
    if (cb(m[i]->client, user) != 0)
      break;
  }
  return visited;
}

/* ---- watchers, commands, routes ---- */

int wschat_server_watch(struct wschat_server *srv, wschat_event_cb cb,
                        void *user, uint64_t *handle) {
  return srv ? wschat__chat_watch(&srv->chat, cb, user, handle)
             : WSCHAT_EINVAL;
}

int wschat_server_unwatch(struct wschat_server *srv, uint64_t handle) {
  return srv ? wschat__chat_unwatch(&srv->chat, handle) : WSCHAT_ENOTFOUND;
}

int wschat_server_add_command(struct wschat_server *srv, const char *name,
                              const char *help, wschat_command_cb cb,
                              void *user) {
  return srv ? wschat__chat_add_command(&srv->chat, name, help, cb, user)
             : WSCHAT_EINVAL;
}

int wschat_server_remove_command(struct wschat_server *srv, const char *name) {
  return srv ? wschat__chat_remove_command(&srv->chat, name)
             : WSCHAT_ENOTFOUND;
}

int wschat_server_route(struct wschat_server *srv, const char *path,
                        wschat_http_cb cb, void *user) {
  return srv ? wschat__routes_add(&srv->routes, path, cb, user)
             : WSCHAT_EINVAL;
}
