/*
 * chat: see chat.h. Every event is rendered once into one text frame and
 * published through the bus; user text is copied once, into that frame,
 * where control characters are then blanked (so nobody can forge a second
 * line inside theirs).
 */
#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "conn.h"
#include "frame.h"
#include "http.h"
#include "room.h"
#include "server.h"
#include "utf8.h"

/* ---- rendering ---- */

#define MAX_PARTS 8

struct parts {
  const char *p[MAX_PARTS];
  size_t l[MAX_PARTS];
  size_t n;
};

static void add(struct parts *ps, const char *s, size_t len) {
  ps->p[ps->n] = s;
  ps->l[ps->n++] = len;
}

static void adds(struct parts *ps, const char *s) { add(ps, s, strlen(s)); }

/* Builds the frame of a line; blanks control characters. */
static struct wschat__frame *render(const struct parts *ps) {
  struct wschat__frame *f = wschat__frame_text_parts(ps->p, ps->l, ps->n);
  if (f != NULL) {
    size_t len;
    uint8_t *p = (uint8_t *)wschat__frame_payload(f, &len);
    for (size_t i = 0; i < len; i++)
      if (p[i] < 0x20 || p[i] == 0x7F)
        p[i] = ' ';
  }
  return f;
}

static void send_parts(struct wschat_client *c, const struct parts *ps) {
  struct wschat__frame *f = render(ps);
  if (f == NULL)
    return;
  wschat__conn_deliver(c, f);
  wschat__frame_unref(f);
}

/* To every member of room (NULL: everyone) but skip. */
static void publish_parts(struct wschat_server *srv, const char *room,
                          const struct wschat_client *skip,
                          const struct parts *ps) {
  struct wschat__frame *f = render(ps);
  if (f == NULL)
    return;
  srv->bus->ops->publish(srv->bus, room, f, skip);
  wschat__frame_unref(f);
}

void wschat__chat_reply(struct wschat_client *c, const char *line) {
  /* Server text: sent as it is (the help text has several lines). */
  struct wschat__frame *f =
      wschat__frame_new(WSCHAT__OP_TEXT, line, strlen(line));
  if (f == NULL)
    return;
  wschat__conn_deliver(c, f);
  wschat__frame_unref(f);
}

/* A short formatted line to one client (names and rooms only, so it
 * fits; longer output is cut, never overflowed). */
__attribute__((format(printf, 2, 3))) static void
replyf(struct wschat_client *c, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  /* clang-14's analyzer does not see va_start above: a false positive. */
  vsnprintf(buf, sizeof(buf), fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  wschat__chat_reply(c, buf);
}

/* A growable text buffer for listings. */
struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t len) {
  if (b->failed)
    return;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_send(struct wschat_client *c, struct sbuf *b) {
  if (!b->failed && b->p)
    wschat__chat_reply(c, b->p);
  free(b->p);
}

/* Shows a user-supplied token safely inside an error line. */
static void shown(char *out, size_t cap, const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 4 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    out[n++] = (ch >= 0x20 && ch < 0x7F) ? (char)ch : '?';
  }
  if (len > 0 && n + 4 >= cap && n >= 3)
    memcpy(out + n - 3, "...", 3);
  out[n] = '\0';
}

/* ---- names and rooms ---- */

static const char name_rule[] = "use 1-32 letters, digits, - or _";
static const char room_rule[] = "use 1-64 letters, digits, -, _ or .";

/* "* NAME joined #ROOM" to the client's room (the client too, or not). */
static void publish_join(struct wschat_client *c, int include_self) {
  struct parts ps = {.n = 0};
  adds(&ps, "* ");
  adds(&ps, c->name);
  adds(&ps, " joined #");
  adds(&ps, c->room->name);
  publish_parts(c->srv, c->room->name, include_self ? NULL : c, &ps);
}

/* "* NAME left #ROOM[ (REASON)]" to what is left of room, if anything.
 * Nothing during a shutdown: everybody is leaving, and telling each of N
 * clients about the N-1 others would cost N*N/2 frames. */
static void publish_leave(struct wschat_client *c, const char *room,
                          const char *reason) {
  struct wschat_server *srv = c->srv;
  if (srv->shutting_down || wschat__room_find(srv, room) == NULL)
    return;
  struct parts ps = {.n = 0};
  adds(&ps, "* ");
  adds(&ps, c->name);
  adds(&ps, " left #");
  adds(&ps, room);
  if (reason && reason[0]) {
    adds(&ps, " (");
    adds(&ps, reason);
    adds(&ps, ")");
  }
  publish_parts(srv, room, NULL, &ps);
}

/* Hooks run last, after every membership change and notice is done, so a
 * hook that closes or moves clients finds the chat in a settled state. */
static void hook_join(struct wschat_client *c) {
  struct wschat_server *srv = c->srv;
  if (srv->on_join && c->state == WSCHAT__CONN_OPEN && c->room != NULL)
    srv->on_join(c, c->room->name, srv->on_join_user);
}

static void hook_leave(struct wschat_client *c, const char *room,
                       const char *reason) {
  struct wschat_server *srv = c->srv;
  if (srv->on_leave)
    srv->on_leave(c, room, reason, srv->on_leave_user);
}

/* Moves c to room (a valid name, not its current room): membership first,
 * then both notices, then the hooks. */
static int move(struct wschat_client *c, const char *room) {
  struct wschat__room *r = wschat__room_open(c->srv, room);
  if (r == NULL)
    return WSCHAT_ENOMEM;
  char old[65] = "";
  if (c->room != NULL) {
    memcpy(old, c->room->name, sizeof(old));
    /* May free the old room; r is another room, or lobby, never freed. */
    wschat__room_remove(c->srv, c);
  }
  wschat__room_add(r, c);
  if (old[0])
    publish_leave(c, old, NULL);
  publish_join(c, 1);
  struct wschat__room *now = c->room;
  if (old[0])
    hook_leave(c, old, NULL);
  if (c->room == now)
    hook_join(c);
  return 0;
}

static int rename_to(struct wschat_client *c, const char *name) {
  struct wschat_server *srv = c->srv;
  char old[33];
  memcpy(old, c->name, sizeof(old));
  wschat__map_del(&srv->names, c->name);
  snprintf(c->name, sizeof(c->name), "%s", name);
  if (wschat__map_put(&srv->names, c->name, c) != 0) {
    memcpy(c->name, old, sizeof(old));
    wschat__map_put(&srv->names, c->name, c);
    return WSCHAT_ENOMEM;
  }
  if (c->room) {
    struct parts ps = {.n = 0};
    adds(&ps, "* ");
    adds(&ps, old);
    adds(&ps, " is now known as ");
    adds(&ps, c->name);
    publish_parts(srv, c->room->name, NULL, &ps);
  }
  return 0;
}

static int check_new_name(struct wschat_client *c, const char *name,
                          size_t len) {
  if (!wschat__name_valid(name, len))
    return WSCHAT_ENAME;
  struct wschat_client *o = wschat__map_get(&c->srv->names, name);
  if (o != NULL && o != c)
    return WSCHAT_ENAMETAKEN;
  return 0;
}

int wschat__chat_open(struct wschat_client *c) {
  struct wschat_server *srv = c->srv;
  const char *q = wschat_client_query(c);
  size_t ql = strlen(q);
  char want[128], errs[2][200], show[64];
  int nerr = 0;

  int n = wschat__http_query_param(q, ql, "name", want, sizeof(want));
  if (n >= 0 || n == -2) {
    size_t len = n >= 0 ? (size_t)n : 0;
    shown(show, sizeof(show), want, n >= 0 ? len : 0);
    int r = n >= 0 ? check_new_name(c, want, len) : WSCHAT_ENAME;
    if (r == WSCHAT_ENAMETAKEN)
      snprintf(errs[nerr++], sizeof(errs[0]), "! name already taken: %s",
               show);
    else if (r != 0)
      snprintf(errs[nerr++], sizeof(errs[0]), "! invalid name: %s (%s)",
               show, name_rule);
    else
      memcpy(c->name, want, len + 1);
  }
  while (c->name[0] == '\0') {
    snprintf(c->name, sizeof(c->name), "guest-%llu",
             (unsigned long long)++srv->next_guest);
    if (wschat__map_get(&srv->names, c->name) != NULL)
      c->name[0] = '\0';
  }

  char room[65] = WSCHAT__LOBBY;
  n = wschat__http_query_param(q, ql, "room", want, sizeof(want));
  if (n >= 0 || n == -2) {
    size_t len = n >= 0 ? (size_t)n : 0;
    if (n >= 0 && wschat__room_valid(want, len)) {
      memcpy(room, want, len + 1);
    } else {
      shown(show, sizeof(show), want, len);
      snprintf(errs[nerr++], sizeof(errs[0]), "! invalid room name: %s (%s)",
               show, room_rule);
    }
  }

  if (wschat__map_put(&srv->names, c->name, c) != 0)
    return -1;
  struct wschat__room *r = wschat__room_open(srv, room);
  if (r == NULL) {
    wschat__map_del(&srv->names, c->name);
    return -1;
  }
  wschat__room_add(r, c);
  replyf(c, "* welcome, %s! you are in #%s; type /help for commands", c->name,
         r->name);
  for (int i = 0; i < nerr; i++)
    wschat__chat_reply(c, errs[i]);
  publish_join(c, 0);
  hook_join(c);
  return 0;
}

void wschat__chat_detach(struct wschat_client *c, const char *reason) {
  struct wschat_server *srv = c->srv;
  if (c->name[0] && wschat__map_get(&srv->names, c->name) == c)
    wschat__map_del(&srv->names, c->name);
  if (c->room == NULL)
    return;
  char room[65];
  memcpy(room, c->room->name, sizeof(room));
  wschat__room_remove(srv, c);
  publish_leave(c, room, reason);
  hook_leave(c, room, reason);
}

void wschat__chat_free(struct wschat_server *srv) {
  wschat__room_free_all(srv);
  wschat__map_free(&srv->names);
}

/* ---- commands ---- */

static const char help_text[] =
    "* commands:\n"
    "/help - this list\n"
    "/nick NAME - change your name (1-32 letters, digits, - or _)\n"
    "/join ROOM - leave your room and enter ROOM (created if new)\n"
    "/leave - go back to #lobby\n"
    "/rooms - the rooms and how many are in each\n"
    "/users - who is in your room; /users * - everybody\n"
    "/whisper NAME TEXT - a private message (also /w and /msg)\n"
    "/me ACTION - tell your room what you are doing\n"
    "/quit [REASON] - leave the chat\n"
    "Anything else is said to your room; start a line with // to say "
    "something that begins with /.";

static void cmd_nick(struct wschat_client *c, const struct wschat__cmd *cmd) {
  char name[64], show[64];
  shown(show, sizeof(show), cmd->tail.p, cmd->tail.len);
  if (cmd->tail.len == 0) {
    wschat__chat_reply(c, "! usage: /nick NAME");
    return;
  }
  if (cmd->tail.len >= sizeof(name)) {
    replyf(c, "! invalid name: %s (%s)", show, name_rule);
    return;
  }
  memcpy(name, cmd->tail.p, cmd->tail.len);
  name[cmd->tail.len] = '\0';
  if (strcmp(name, c->name) == 0) {
    replyf(c, "! you are already %s", c->name);
    return;
  }
  int r = check_new_name(c, name, cmd->tail.len);
  if (r == WSCHAT_ENAMETAKEN)
    replyf(c, "! name already taken: %s", show);
  else if (r != 0)
    replyf(c, "! invalid name: %s (%s)", show, name_rule);
  else if (rename_to(c, name) != 0)
    wschat__chat_reply(c, "! out of memory, try again");
}

static void cmd_join(struct wschat_client *c, struct wschat__slice room) {
  char name[128], show[80];
  shown(show, sizeof(show), room.p, room.len);
  if (room.len == 0) {
    wschat__chat_reply(c, "! usage: /join ROOM");
    return;
  }
  if (!wschat__room_valid(room.p, room.len)) {
    replyf(c, "! invalid room name: %s (%s)", show, room_rule);
    return;
  }
  memcpy(name, room.p, room.len);
  name[room.len] = '\0';
  if (c->room && strcasecmp(c->room->name, name) == 0) {
    replyf(c, "! you are already in #%s", c->room->name);
    return;
  }
  if (move(c, name) != 0)
    wschat__chat_reply(c, "! out of memory, try again");
}

static void cmd_rooms(struct wschat_client *c) {
  size_t n;
  struct wschat__room **v = wschat__room_sorted(c->srv, &n);
  struct sbuf b = {0};
  sb_adds(&b, "* rooms:");
  for (size_t i = 0; i < n; i++) {
    char count[32];
    snprintf(count, sizeof(count), " (%zu)", v[i]->n);
    sb_adds(&b, i ? ", " : " ");
    sb_adds(&b, v[i]->name);
    sb_adds(&b, count);
  }
  free(v);
  sb_send(c, &b);
}

static int by_client_name(const void *a, const void *b) {
  return strcasecmp((*(struct wschat_client *const *)a)->name,
                    (*(struct wschat_client *const *)b)->name);
}

static void cmd_users(struct wschat_client *c, int everybody) {
  struct wschat_server *srv = c->srv;
  size_t n = 0, cap = everybody ? srv->nconns : c->room->n;
  struct wschat_client **v = malloc((cap ? cap : 1) * sizeof(*v));
  if (v == NULL) {
    wschat__chat_reply(c, "! out of memory, try again");
    return;
  }
  for (size_t i = 0; i < cap; i++) {
    struct wschat_client *o = everybody ? srv->conns[i] : c->room->members[i];
    if (o->room != NULL)
      v[n++] = o;
  }
  qsort(v, n, sizeof(*v), by_client_name);
  struct sbuf b = {0};
  if (everybody) {
    sb_adds(&b, "* users:");
  } else {
    sb_adds(&b, "* users in #");
    sb_adds(&b, c->room->name);
    sb_adds(&b, ":");
  }
  for (size_t i = 0; i < n; i++) {
    sb_adds(&b, i ? ", " : " ");
    sb_adds(&b, v[i]->name);
    if (everybody) {
      sb_adds(&b, " (#");
      sb_adds(&b, v[i]->room->name);
      sb_adds(&b, ")");
    }
  }
  free(v);
  sb_send(c, &b);
}

static void cmd_whisper(struct wschat_client *c,
                        const struct wschat__cmd *cmd) {
  char name[64], show[64];
  if (cmd->arg.len == 0 || cmd->rest.len == 0) {
    wschat__chat_reply(c, "! usage: /whisper NAME TEXT");
    return;
  }
  shown(show, sizeof(show), cmd->arg.p, cmd->arg.len);
  struct wschat_client *to = NULL;
  if (cmd->arg.len < sizeof(name)) {
    memcpy(name, cmd->arg.p, cmd->arg.len);
    name[cmd->arg.len] = '\0';
    to = wschat__map_get(&c->srv->names, name);
  }
  if (to == NULL) {
    replyf(c, "! no such user: %s", show);
    return;
  }
  struct parts ps = {.n = 0};
  adds(&ps, "[whisper from ");
  adds(&ps, c->name);
  adds(&ps, "] ");
  add(&ps, cmd->rest.p, cmd->rest.len);
  send_parts(to, &ps);
  ps.n = 0;
  adds(&ps, "[whisper to ");
  adds(&ps, to->name);
  adds(&ps, "] ");
  add(&ps, cmd->rest.p, cmd->rest.len);
  send_parts(c, &ps);
}

static void cmd_quit(struct wschat_client *c, struct wschat__slice reason) {
  char *r = NULL;
  if (reason.len > 0 && (r = malloc(reason.len + 1)) != NULL) {
    memcpy(r, reason.p, reason.len);
    r[reason.len] = '\0';
    for (size_t i = 0; i < reason.len; i++)
      if ((unsigned char)r[i] < 0x20 || r[i] == 0x7F)
        r[i] = ' ';
  }
  wschat__chat_detach(c, r);
  wschat__conn_close(c, 1000, r);
  free(r);
}

void wschat__chat_line(struct wschat_client *c, const char *text,
                       size_t len) {
  struct wschat__cmd cmd;
  wschat__cmd_parse(text, len, &cmd);
  struct parts ps = {.n = 0};
  char word[40];
  switch (cmd.kind) {
  case WSCHAT__CMD_LINE: {
    size_t i = 0;
    while (i < cmd.text.len && (cmd.text.p[i] == ' ' || cmd.text.p[i] == '\t'))
      i++;
    if (i == cmd.text.len)
      return; /* an empty line says nothing */
    adds(&ps, "[");
    adds(&ps, c->room->name);
    adds(&ps, "] ");
    adds(&ps, c->name);
    adds(&ps, ": ");
    add(&ps, cmd.text.p, cmd.text.len);
    publish_parts(c->srv, c->room->name, NULL, &ps);
    return;
  }
  case WSCHAT__CMD_HELP:
    wschat__chat_reply(c, help_text);
    return;
  case WSCHAT__CMD_NICK:
    cmd_nick(c, &cmd);
    return;
  case WSCHAT__CMD_JOIN:
    cmd_join(c, cmd.tail);
    return;
  case WSCHAT__CMD_LEAVE: {
    struct wschat__slice lobby = {WSCHAT__LOBBY, sizeof(WSCHAT__LOBBY) - 1};
    cmd_join(c, lobby);
    return;
  }
  case WSCHAT__CMD_ROOMS:
    cmd_rooms(c);
    return;
  case WSCHAT__CMD_USERS:
    if (cmd.tail.len == 1 && cmd.tail.p[0] == '*')
      cmd_users(c, 1);
    else if (cmd.tail.len == 0)
      cmd_users(c, 0);
    else
      wschat__chat_reply(c, "! usage: /users or /users *");
    return;
  case WSCHAT__CMD_WHISPER:
    cmd_whisper(c, &cmd);
    return;
  case WSCHAT__CMD_ME:
    if (cmd.tail.len == 0) {
      wschat__chat_reply(c, "! usage: /me ACTION");
      return;
    }
    adds(&ps, "* ");
    adds(&ps, c->name);
    adds(&ps, " ");
    add(&ps, cmd.tail.p, cmd.tail.len);
    publish_parts(c->srv, c->room->name, NULL, &ps);
    return;
  case WSCHAT__CMD_QUIT:
    cmd_quit(c, cmd.tail);
    return;
  case WSCHAT__CMD_UNKNOWN:
  default:
    shown(word, sizeof(word), cmd.word.p, cmd.word.len);
    replyf(c, "! unknown command %s, try /help", word);
    return;
  }
}

/* ---- public: chat ---- */

const char *wschat_client_room(const struct wschat_client *c) {
  return c->room ? c->room->name : NULL;
}

struct wschat_client *wschat_server_find_client(struct wschat_server *srv,
                                                const char *name) {
  return name ? wschat__map_get(&srv->names, name) : NULL;
}

int wschat_server_broadcast(struct wschat_server *srv, const char *room,
                            const char *text, size_t len,
                            const struct wschat_client *skip) {
  if (srv == NULL || (text == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  if (room && wschat__room_find(srv, room) == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat__frame *f = wschat__frame_new(WSCHAT__OP_TEXT, text, len);
  if (f == NULL)
    return WSCHAT_ENOMEM;
  int r = srv->bus->ops->publish(srv->bus, room, f, skip);
  wschat__frame_unref(f);
  return r;
}

int wschat_client_join(struct wschat_client *c, const char *room) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  if (c->state != WSCHAT__CONN_OPEN)
    return WSCHAT_ECLOSED;
  if (c->room == NULL)
    return WSCHAT_ESTATE; /* echo mode */
  if (strcasecmp(c->room->name, room) == 0)
    return WSCHAT_ESAMEROOM;
  return move(c, room);
}

int wschat_client_leave(struct wschat_client *c) {
  return wschat_client_join(c, WSCHAT__LOBBY);
}

int wschat_client_rename(struct wschat_client *c, const char *name) {
  if (name == NULL)
    return WSCHAT_ENAME;
  if (c->state != WSCHAT__CONN_OPEN)
    return WSCHAT_ECLOSED;
  if (c->room == NULL)
    return WSCHAT_ESTATE; /* echo mode */
  int r = check_new_name(c, name, strlen(name));
  return r != 0 ? r : rename_to(c, name);
}

size_t wschat_server_rooms(struct wschat_server *srv, wschat_room_visit_cb cb,
                           void *user) {
  size_t n, i;
  struct wschat__room **v = wschat__room_sorted(srv, &n);
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
  size_t visited = 0;
  if (room == NULL) {
    for (size_t i = 0; i < srv->nconns; i++) {
      struct wschat_client *o = srv->conns[i];
      if (o->room == NULL)
        continue;
      visited++;
      if (cb(o, user) != 0)
        break;
    }
    return visited;
  }
  struct wschat__room *r = wschat__room_find(srv, room);
  if (r == NULL)
    return 0;
  for (size_t i = 0; i < r->n; i++) {
    visited++;
    if (cb(r->members[i], user) != 0)
      break;
  }
  return visited;
}
