/*
 * chat: see chat.h.
 *
 * Order of things in every operation: memberships and names change first,
 * then the events go out (to the bus, then the watchers), then on_join and
 * on_leave run, so that a hook that closes or moves clients finds the chat
 * settled.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "command.h"
#include "event.h"
#include "grow.h"
#include "history.h"
#include "presence.h"

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wschat__chat_init(struct wschat__chat *ch, struct wschat_server *srv,
                      wschat__deliver_fn deliver, void *user) {
  memset(ch, 0, sizeof(*ch));
  ch->srv = srv;
  ch->max_rooms = 20;
  ch->quiet_room = 500;
  if (wschat__rooms_init(&ch->rooms) != 0)
    return WSCHAT_ENOMEM;
  ch->presence = wschat__presence_local_new();
  ch->bus = wschat__bus_local_new(&ch->rooms, deliver, user);
  if (ch->presence == NULL || ch->bus == NULL) {
    wschat__chat_free(ch);
    return WSCHAT_ENOMEM;
  }
  return 0;
}

void wschat__chat_free(struct wschat__chat *ch) {
  for (size_t i = 0; i < ch->npending; i++)
    wschat__event_unref(ch->pending[i]);
  free(ch->pending);
  for (size_t i = 0; i < ch->ncommands; i++)
    free(ch->commands[i].help);
  free(ch->commands);
  free(ch->watchers);
  if (ch->bus)
    ch->bus->ops->free(ch->bus);
  if (ch->presence)
    ch->presence->ops->free(ch->presence);
  wschat__rooms_free(&ch->rooms);
  memset(ch, 0, sizeof(*ch));
}

/* ---- events ---- */

static int push_pending(struct wschat__chat *ch, struct wschat_event *ev) {
  void *grown = wschat__grow(ch->pending, ch->npending, &ch->cap_pending,
                             sizeof(*ch->pending), 8);
  if (grown == NULL)
    return -1;
  ch->pending = grown;
  ch->pending[ch->npending++] = wschat__event_ref(ev);
  return 0;
}

static void call_watchers(struct wschat__chat *ch, struct wschat_event *ev) {
  /* A watcher may add or remove watchers: go by index and re-read n. */
  for (size_t i = 0; i < ch->nwatchers; i++)
    if (ch->watchers[i].cb)
      ch->watchers[i].cb(ch->srv, ev, ch->watchers[i].user);
}

static void compact_watchers(struct wschat__chat *ch) {
  size_t k = 0;
  for (size_t i = 0; i < ch->nwatchers; i++)
    if (ch->watchers[i].cb)
      ch->watchers[k++] = ch->watchers[i];
  ch->nwatchers = k;
}

/* Watchers see events in the order they were made: one made inside a
 * watcher waits until every watcher has seen the one before it. */
static void watch(struct wschat__chat *ch, struct wschat_event *ev) {
  if (ch->nwatchers == 0)
    return;
  if (ch->watching) {
    push_pending(ch, ev); /* out of memory: that watch is lost, not more */
    return;
  }
  ch->watching = 1;
  call_watchers(ch, ev);
  for (size_t i = 0; i < ch->npending; i++) {
    call_watchers(ch, ch->pending[i]);
    wschat__event_unref(ch->pending[i]);
  }
  ch->npending = 0;
  ch->watching = 0;
  compact_watchers(ch);
}

static void stamp(struct wschat__chat *ch, struct wschat_event *ev) {
  if (ch->deferred) { /* the bus gives the id (see chat.h) */
    ev->ts = wall_ms();
    return;
  }
  struct wschat__history *h = ch->history;
  ev->id = h ? h->ops->next_id(h) : ch->next_event + 1;
  ch->next_event = ev->id;
  if (ch->first_event == 0)
    ch->first_event = ev->id;
  ev->ts = wall_ms();
}

/* Appends a room event to the store, if there is one. A refusal (queue
 * full, disk failed) is the store's to count and to log, and its reads
 * to report as incomplete: the chat goes on. */
static void store(struct wschat__chat *ch, const struct wschat_event *ev) {
  struct wschat__history *h = ch->history;
  if (h != NULL && !ch->deferred && ev->room != NULL && ev->kind != WSCHAT_EVENT_NOTICE &&
      ev->kind != WSCHAT_EVENT_WHISPER)
    (void)h->ops->append(h, ev);
}

/* The watchers see ev now, or (deferred) when the bus has given it its
 * id: wschat__chat_done(). */
static void watched(struct wschat__chat *ch, struct wschat_event *ev) {
  if (!ch->deferred)
    watch(ch, ev);
}

void wschat__chat_done(struct wschat__chat *ch, struct wschat_event *ev) {
  if (ev->id > ch->next_event)
    ch->next_event = ev->id;
  if (ch->first_event == 0)
    ch->first_event = ev->id;
  watch(ch, ev);
}

/* Stamps ev, stores it, publishes it (to its room or everyone), lets the
 * watchers see it, and drops the caller's reference. */
static void emit(struct wschat__chat *ch, struct wschat_event *ev) {
  stamp(ch, ev);
  store(ch, ev);
  ch->bus->ops->publish(ch->bus, ev);
  watched(ch, ev);
  wschat__event_unref(ev);
}

/* The same for an event that goes to one member only (or nobody): stored
 * if keep (a quiet room's joins and leaves are not). */
static void emit_to(struct wschat__chat *ch, struct wschat_event *ev,
                    struct wschat__member *only, int keep) {
  stamp(ch, ev);
  if (keep)
    store(ch, ev);
  if (only || ch->deferred) /* deferred: the bus gives the id */
    ch->bus->ops->send(ch->bus, ev, only, WSCHAT__TO_RECIPIENT);
  watched(ch, ev);
  wschat__event_unref(ev);
}

static struct wschat_event *make(int kind, const struct wschat__member *m,
                                 const char *room, const char *to,
                                 const char *text, size_t len,
                                 const char *reason) {
  struct wschat_event *ev =
      wschat__event_new(kind, room, m ? m->name : NULL, to, text, len, reason);
  if (ev)
    ev->client = m ? m->id : 0;
  return ev;
}

static int quiet(const struct wschat__chat *ch, size_t members) {
  return ch->quiet_room > 0 && members > ch->quiet_room;
}

/* ---- names ---- */

int wschat__chat_enter(struct wschat__chat *ch, struct wschat__member *m,
                       const char *name, int force) {
  struct wschat__presence *p = ch->presence;
  char guest[WSCHAT_NAME_MAX + 1];
  if (name != NULL) {
    if (!wschat__name_valid(name, strlen(name)))
      return WSCHAT_ENAME;
  } else {
    for (;;) {
      snprintf(guest, sizeof(guest), "guest-%llu",
               (unsigned long long)++ch->next_guest);
      if (p->ops->find(p, guest) == NULL && !p->ops->reserved(p, guest))
        break;
    }
    name = guest;
  }
  int r = p->ops->claim(p, name, m, force);
  if (r != 0)
    return r;
  if (wschat__rooms_attach(&ch->rooms, m) != 0) {
    p->ops->release(p, name, m);
    return WSCHAT_ENOMEM;
  }
  snprintf(m->name, sizeof(m->name), "%s", name);
  p->ops->named(p, m);
  return 0;
}

int wschat__chat_rename(struct wschat__chat *ch, struct wschat__member *m,
                        const char *name) {
  if (name == NULL || !wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  struct wschat__presence *p = ch->presence;
  /* The new name is claimed before the old one is given back: if the
   * claim fails, the member keeps its name. */
  int r = p->ops->claim(p, name, m, 0);
  if (r != 0)
    return r;
  char old[WSCHAT_NAME_MAX + 1];
  memcpy(old, m->name, sizeof(old));
  if (strcasecmp(old, name) != 0)
    p->ops->release(p, old, m);
  snprintf(m->name, sizeof(m->name), "%s", name);
  p->ops->named(p, m);
  uint64_t group = ++ch->next_group;
  /* One event per room (each room's history has it); a view shows each
   * recipient one of them (see group). All are published before any
   * watcher runs, so that a watcher's own rename cannot come between two
   * events of this one. The rooms are walked from a copy of their names. */
  size_t n = m->nrooms, k = 0;
  struct wschat_event **evs = malloc((n ? n : 1) * sizeof(*evs));
  if (evs == NULL)
    return 0; /* renamed; the rooms are not told */
  for (size_t i = 0; i < n; i++) {
    struct wschat_event *ev = wschat__event_new(
        WSCHAT_EVENT_NICK, m->rooms[i].room->name, old, name, NULL, 0, NULL);
    if (ev == NULL)
      break;
    ev->client = m->id;
    ev->group = group;
    stamp(ch, ev);
    store(ch, ev);
    evs[k++] = ev;
  }
  for (size_t i = 0; i < k; i++)
    ch->bus->ops->publish(ch->bus, evs[i]);
  for (size_t i = 0; i < k; i++) {
    watched(ch, evs[i]);
    wschat__event_unref(evs[i]);
  }
  free(evs);
  return 0;
}

/* ---- rooms ---- */

static void hook_join(struct wschat__chat *ch, struct wschat__member *m,
                      const char *room) {
  if (ch->on_join && m->attached &&
      wschat__member_index(m, wschat__room_find(&ch->rooms, room)) >= 0)
    ch->on_join(m->client, room, ch->on_join_user);
}

static void hook_leave(struct wschat__chat *ch, struct wschat__member *m,
                       const char *room, const char *reason) {
  if (ch->on_leave)
    ch->on_leave(m->client, room, reason, ch->on_leave_user);
}

/* Membership only: m into room r. */
static int add(struct wschat__chat *ch, struct wschat__member *m,
               struct wschat__room *r) {
  int rc = wschat__room_add(r, m);
  if (rc != 0) {
    wschat__room_reap(&ch->rooms, r);
    return rc;
  }
  ch->presence->ops->joined(ch->presence, r, m);
  return 0;
}

/* m is (still) a member of the room called name: hooks and watchers may
 * have closed or moved it meanwhile. */
static struct wschat__room *still_in(struct wschat__chat *ch,
                                     const struct wschat__member *m,
                                     const char *name) {
  struct wschat__room *r = wschat__room_find(&ch->rooms, name);
  return m->attached && r != NULL && wschat__member_index(m, r) >= 0 ? r : NULL;
}

/* The join event of m into room r (a member now). */
static void tell_join(struct wschat__chat *ch, struct wschat__member *m,
                      struct wschat__room *r, int flags) {
  if (ch->on_enter)
    ch->on_enter(ch->on_enter_user, m, r->name);
  struct wschat_event *ev =
      make(WSCHAT_EVENT_JOIN, m, r->name, NULL, NULL, 0, NULL);
  if (ev == NULL)
    return;
  int self = (flags & WSCHAT__JOIN_TELL_SELF) != 0;
  if (quiet(ch, r->n)) {
    emit_to(ch, ev, self ? m : NULL, 0);
    return;
  }
  if (!self)
    ev->skip = m->id;
  emit(ch, ev);
}

/* Membership only: m out of r; the room is reaped if empty. Stores the
 * size it had in *was. */
static void remove_from(struct wschat__chat *ch, struct wschat__member *m,
                        struct wschat__room *r, size_t *was) {
  *was = r->n;
  wschat__room_remove(r, m);
  ch->presence->ops->left(ch->presence, r, m);
  wschat__room_reap(&ch->rooms, r);
}

/* The leave event of m from room (by name: it may be gone). */
static void tell_leave(struct wschat__chat *ch, struct wschat__member *m,
                       const char *room, size_t was, const char *reason,
                       int self) {
  if (ch->silent_leaves && ch->remote_only == NULL)
    return; /* a shutdown: N clients told of N-1 others is N*N/2 frames */
  struct wschat_event *ev = make(WSCHAT_EVENT_LEAVE, m, room, NULL, NULL, 0,
                                 reason && reason[0] ? reason : NULL);
  if (ev == NULL)
    return;
  if (ch->silent_leaves) { /* a cluster: the other nodes' members hear it */
    stamp(ch, ev);
    ch->remote_only(ch->remote_user, ev);
    wschat__event_unref(ev);
    return;
  }
  if (quiet(ch, was)) {
    emit_to(ch, ev, self ? m : NULL, 0);
  } else if (self || wschat__room_find(&ch->rooms, room) == NULL) {
    /* m is out of the room already: a publish would miss it. */
    stamp(ch, ev);
    store(ch, ev);
    ch->bus->ops->publish(ch->bus, ev);
    if (self)
      ch->bus->ops->send(ch->bus, ev, m, WSCHAT__TO_RECIPIENT);
    watched(ch, ev);
    wschat__event_unref(ev);
  } else {
    emit(ch, ev);
  }
}

int wschat__chat_join(struct wschat__chat *ch, struct wschat__member *m,
                      const char *room, int flags) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  struct wschat__room *r = wschat__room_find(&ch->rooms, room);
  if (r != NULL && wschat__member_index(m, r) >= 0)
    return WSCHAT_ESAMEROOM;
  if (m->nrooms >= ch->max_rooms)
    return WSCHAT_ETOOMANY;
  if (r == NULL && (r = wschat__room_open(&ch->rooms, room)) == NULL)
    return WSCHAT_ENOMEM;
  int rc = add(ch, m, r);
  if (rc != 0)
    return rc;
  char name[WSCHAT_ROOM_MAX + 1];
  memcpy(name, r->name, sizeof(name));
  tell_join(ch, m, r, flags);
  hook_join(ch, m, name);
  return 0;
}

int wschat__chat_leave(struct wschat__chat *ch, struct wschat__member *m,
                       const char *room, const char *reason, int flags) {
  struct wschat__room *r;
  if (room == NULL) {
    r = wschat__member_room(m);
  } else {
    if (!wschat__room_valid(room, strlen(room)))
      return WSCHAT_EROOM;
    r = wschat__room_find(&ch->rooms, room);
  }
  if (r == NULL || wschat__member_index(m, r) < 0)
    return WSCHAT_ENOTMEMBER;
  int to_lobby = m->nrooms == 1;
  struct wschat__room *lobby = NULL;
  if (to_lobby) {
    if (strcasecmp(r->name, WSCHAT__LOBBY) == 0)
      return 0; /* alone in lobby: it stays there */
    lobby = wschat__room_find(&ch->rooms, WSCHAT__LOBBY);
  }
  char name[WSCHAT_ROOM_MAX + 1];
  memcpy(name, r->name, sizeof(name));
  size_t was;
  remove_from(ch, m, r, &was);
  if (to_lobby && add(ch, m, lobby) != 0)
    to_lobby = 0; /* out of memory: in no room; lines get an error */
  tell_leave(ch, m, name, was, reason, flags & WSCHAT__LEAVE_TELL_SELF);
  if (to_lobby && (lobby = still_in(ch, m, WSCHAT__LOBBY)) != NULL)
    tell_join(ch, m, lobby, WSCHAT__JOIN_TELL_SELF);
  hook_leave(ch, m, name, reason);
  if (to_lobby)
    hook_join(ch, m, WSCHAT__LOBBY);
  return 0;
}

int wschat__chat_move(struct wschat__chat *ch, struct wschat__member *m,
                      const char *room) {
  if (room == NULL || !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  struct wschat__room *cur = wschat__member_room(m);
  struct wschat__room *r = wschat__room_find(&ch->rooms, room);
  if (r != NULL && wschat__member_index(m, r) >= 0) {
    if (r == cur)
      return WSCHAT_ESAMEROOM;
    /* Already a member: it becomes the current room, the old one is left. */
  }
  if (r == NULL && (r = wschat__room_open(&ch->rooms, room)) == NULL)
    return WSCHAT_ENOMEM;
  char old[WSCHAT_ROOM_MAX + 1] = "", name[WSCHAT_ROOM_MAX + 1];
  memcpy(name, r->name, sizeof(name));
  int was_member = wschat__member_index(m, r) >= 0;
  if (was_member) { /* make r the newest membership: out and in, silently */
    wschat__room_remove(r, m);
    ch->presence->ops->left(ch->presence, r, m);
  }
  int rc = add(ch, m, r); /* cannot fail for was_member: space is there */
  if (rc != 0)
    return rc;
  size_t was = 0;
  if (cur != NULL) {
    memcpy(old, cur->name, sizeof(old));
    remove_from(ch, m, cur, &was); /* r is not cur, so r stays */
  }
  if (old[0])
    tell_leave(ch, m, old, was, NULL, 0);
  if (!was_member && (r = still_in(ch, m, name)) != NULL)
    tell_join(ch, m, r, WSCHAT__JOIN_TELL_SELF);
  if (old[0])
    hook_leave(ch, m, old, NULL);
  if (!was_member)
    hook_join(ch, m, name);
  return 0;
}

void wschat__chat_exit(struct wschat__chat *ch, struct wschat__member *m,
                       const char *reason) {
  if (!m->attached)
    return;
  /* Out of the registry first: nothing is delivered to m from now on
   * through a broadcast to everyone. While the rooms are told (hooks and
   * watchers run), m is exiting: a close asked for meanwhile must wait for
   * the walk to end (see wschat_client_close()). */
  m->exiting = 1;
  wschat__rooms_detach(&ch->rooms, m);
  ch->presence->ops->release(ch->presence, m->name, m);
  while (m->nrooms > 0) {
    struct wschat__room *r = m->rooms[m->nrooms - 1].room;
    char name[WSCHAT_ROOM_MAX + 1];
    memcpy(name, r->name, sizeof(name));
    size_t was;
    remove_from(ch, m, r, &was);
    tell_leave(ch, m, name, was, reason, 0);
    hook_leave(ch, m, name, reason);
  }
  wschat__member_free(m);
  m->exiting = 0;
}

/* ---- saying things ---- */

int wschat__chat_say(struct wschat__chat *ch, struct wschat__member *m,
                     int kind, const char *text, size_t len) {
  struct wschat__room *r = wschat__member_room(m);
  if (r == NULL)
    return WSCHAT_ENOTMEMBER;
  struct wschat_event *ev = make(kind, m, r->name, NULL, text, len, NULL);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  emit(ch, ev);
  return 0;
}

int wschat__chat_say_in(struct wschat__chat *ch, struct wschat__member *m,
                        const char *room, int kind, const char *text,
                        size_t len) {
  if (room == NULL)
    return wschat__chat_say(ch, m, kind, text, len);
  if (!wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  struct wschat__room *r = wschat__room_find(&ch->rooms, room);
  if (r == NULL || wschat__member_index(m, r) < 0)
    return WSCHAT_ENOTMEMBER;
  struct wschat_event *ev = make(kind, m, r->name, NULL, text, len, NULL);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  emit(ch, ev);
  return 0;
}

int wschat__chat_whisper(struct wschat__chat *ch, struct wschat__member *m,
                         const char *to, const char *text, size_t len) {
  struct wschat__member *t = ch->presence->ops->find(ch->presence, to);
  if (t == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat_event *ev =
      make(WSCHAT_EVENT_WHISPER, m, NULL, t->name, text, len, NULL);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  stamp(ch, ev);
  ch->bus->ops->send(ch->bus, ev, t, WSCHAT__TO_RECIPIENT);
  ch->bus->ops->send(ch->bus, ev, m, WSCHAT__TO_SENDER);
  watched(ch, ev);
  wschat__event_unref(ev);
  return 0;
}

int wschat__chat_notice(struct wschat__chat *ch, const char *room,
                        const char *text, size_t len, uint64_t skip) {
  if (room && wschat__room_find(&ch->rooms, room) == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat_event *ev =
      make(WSCHAT_EVENT_NOTICE, NULL, room, NULL, text, len, NULL);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  ev->skip = skip;
  emit(ch, ev);
  return 0;
}

int wschat__chat_say_as(struct wschat__chat *ch, const char *room,
                        const char *name, const char *text, size_t len) {
  struct wschat__room *r = wschat__room_find(&ch->rooms, room);
  if (r == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat_event *ev = wschat__event_new(WSCHAT_EVENT_MESSAGE, r->name,
                                              name, NULL, text, len, NULL);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  emit(ch, ev);
  return 0;
}

/* ---- watchers ---- */

int wschat__chat_watch(struct wschat__chat *ch, wschat_event_cb cb, void *user,
                       uint64_t *handle) {
  if (cb == NULL)
    return WSCHAT_EINVAL;
  void *grown = wschat__grow(ch->watchers, ch->nwatchers, &ch->cap_watchers,
                             sizeof(*ch->watchers), 4);
  if (grown == NULL)
    return WSCHAT_ENOMEM;
  ch->watchers = grown;
  struct wschat__watcher *w = &ch->watchers[ch->nwatchers++];
  w->cb = cb;
  w->user = user;
  w->handle = ++ch->next_watch;
  if (handle)
    *handle = w->handle;
  return 0;
}

int wschat__chat_unwatch(struct wschat__chat *ch, uint64_t handle) {
  for (size_t i = 0; i < ch->nwatchers; i++)
    if (ch->watchers[i].cb && ch->watchers[i].handle == handle) {
      ch->watchers[i].cb = NULL;
      if (!ch->watching)
        compact_watchers(ch);
      return 0;
    }
  return WSCHAT_ENOTFOUND;
}

/* ---- registered commands ---- */

static const char *const builtin[] = {
    "help", "nick",    "join", "leave", "part", "rooms", "users",
    "who",  "whisper", "w",    "msg",   "me",   "quit"};

static int command_name_valid(const char *s, size_t len) {
  if (len == 0 || len > WSCHAT_NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return 0;
  }
  return 1;
}

const struct wschat__command *
wschat__chat_find_command(const struct wschat__chat *ch, const char *word,
                          size_t len) {
  for (size_t i = 0; i < ch->ncommands; i++)
    if (strlen(ch->commands[i].name) == len &&
        strncasecmp(ch->commands[i].name, word, len) == 0)
      return &ch->commands[i];
  return NULL;
}

int wschat__chat_add_command(struct wschat__chat *ch, const char *name,
                             const char *help, wschat_command_cb cb,
                             void *user) {
  if (name == NULL || cb == NULL || !command_name_valid(name, strlen(name)))
    return WSCHAT_EINVAL;
  if (help) {
    size_t hl = strlen(help);
    if (hl > 200)
      return WSCHAT_EINVAL;
    for (size_t i = 0; i < hl; i++)
      if ((unsigned char)help[i] < 0x20 || help[i] == 0x7F)
        return WSCHAT_EINVAL;
  }
  for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
    if (strcasecmp(builtin[i], name) == 0)
      return WSCHAT_EEXIST;
  if (wschat__chat_find_command(ch, name, strlen(name)) != NULL)
    return WSCHAT_EEXIST;
  void *grown = wschat__grow(ch->commands, ch->ncommands, &ch->cap_commands,
                             sizeof(*ch->commands), 4);
  if (grown == NULL)
    return WSCHAT_ENOMEM;
  ch->commands = grown;
  struct wschat__command *c = &ch->commands[ch->ncommands];
  c->help = help ? strdup(help) : NULL;
  if (help && c->help == NULL)
    return WSCHAT_ENOMEM;
  size_t i = 0;
  for (; name[i]; i++)
    c->name[i] =
        (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  c->name[i] = '\0';
  c->cb = cb;
  c->user = user;
  ch->ncommands++;
  return 0;
}

int wschat__chat_remove_command(struct wschat__chat *ch, const char *name) {
  if (name == NULL)
    return WSCHAT_ENOTFOUND;
  for (size_t i = 0; i < ch->ncommands; i++)
    if (strcasecmp(ch->commands[i].name, name) == 0) {
      free(ch->commands[i].help);
      memmove(ch->commands + i, ch->commands + i + 1,
              (ch->ncommands - i - 1) * sizeof(*ch->commands));
      ch->ncommands--;
      return 0;
    }
  return WSCHAT_ENOTFOUND;
}
