/*
 * Unit tests: the chat core (lib/chat.c and what it stands on: rooms,
 * presence, the local bus, events, the text view) and the text protocol's
 * handling of lines (lib/text_proto.c), driven by plain calls: no sockets,
 * no libuv.
 *
 * Every test builds one chat (struct fx) whose delivery callback plays the
 * part of a client's output queue: it asks the text view for the frame the
 * member would be sent, keeps one reference to it and a copy of its
 * payload, so a test asserts the exact lines each member receives, in
 * order (EXPECT). A fake text io records the replies only the sender sees
 * (EXPECT_REPLIES), and the hooks and watchers write to logs. Each test
 * ends with fx_free(): every member exits, every reference is dropped, the
 * chat is freed (the ASan build of this test checks that nothing leaks).
 */
#include <check.h>

#include "check_run.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat.h"
#include "command.h"
#include "event.h"
#include "frame.h"
#include "presence.h"
#include "rate.h"
#include "room.h"
#include "text_proto.h"
#include "view.h"

#define MAX_USERS 8
#define MAX_GOT 64
#define MAX_LOG 64

/* One client of a test: the member the chat sees, and what it was sent. */
struct user {
  struct wschat__member m; /* first: the chat hands &u->m back */
  struct {
    char *line;                  /* the frame's payload, NUL-terminated */
    struct wschat__frame *frame; /* one reference, as a queue slot holds */
    uint64_t id;                 /* the event's */
    int variant;
  } got[MAX_GOT];
  size_t ngot;
  size_t hidden;          /* deliveries the view showed nothing for */
  char *replies[MAX_GOT]; /* text io replies */
  size_t nreplies;
  int quits; /* text io quit calls */
  char quit_reason[64];
};

/* What a watcher saw of one event (copies: the event lives for the call
 * only). Frame pointers are compared only while a member still holds a
 * reference to the frame. */
struct seen {
  int who;
  int kind;
  uint64_t id, client, group;
  int64_t ts;
  char *room, *from, *to, *reason, *text; /* copies, or NULL */
  size_t text_len;
  struct wschat__frame *frame[WSCHAT__VARIANTS];
  uint32_t refs[WSCHAT__VARIANTS];
};

/* What a watcher does besides recording. */
enum {
  W_RECORD,
  W_PING,          /* on the MESSAGE "ping": a notice "pong" */
  W_PONG,          /* on the NOTICE "pong": "pang" said as bot */
  W_UNWATCH_SELF,  /* unwatches itself on its first call */
  W_UNWATCH_OTHER, /* unwatches watcher `other` on its first call */
  W_RENAME_BOB,    /* on the first NICK by alice: renames bob to "robert" */
  W_EXIT_ALICE,    /* on alice leaving #dev: alice exits ("gone") */
};

struct watcher {
  int who, mode, other, calls;
  uint64_t handle;
};

static struct fx {
  struct wschat__chat ch;
  struct user u[MAX_USERS];
  size_t nu;
  struct wschat__text t;
  struct seen seen[MAX_LOG];
  size_t nseen;
  struct watcher w[5]; /* w[1]..w[4] */
  char hooks[MAX_LOG][128];
  size_t nhooks;
  /* the last registered command call */
  int roll_calls, roll_verdict;
  struct user *roll_client;
  char roll_name[64], roll_args[64], roll_arg[64], roll_rest[64];
} F;

static struct user *U(struct wschat_client *c) {
  return (struct user *)(void *)c;
}

/* ---- the fake delivery (a client's output queue) ---- */

static void deliver_one(void *user, struct wschat__member *m,
                        struct wschat_event *ev, int variant) {
  ck_assert_ptr_eq(user, &F);
  struct user *u = (struct user *)m;
  int oom = 0;
  struct wschat__frame *f = wschat__view_frame(m, ev, variant, NULL, &oom);
  ck_assert_int_eq(oom, 0);
  if (f == NULL) {
    u->hidden++;
    return;
  }
  ck_assert_uint_lt(u->ngot, MAX_GOT);
  size_t len;
  const uint8_t *p = wschat__frame_payload(f, &len);
  char *line = malloc(len + 1);
  ck_assert_ptr_nonnull(line);
  memcpy(line, p, len);
  line[len] = '\0';
  u->got[u->ngot].line = line;
  u->got[u->ngot].frame = wschat__frame_ref(f);
  u->got[u->ngot].id = ev->id;
  u->got[u->ngot].variant = variant;
  u->ngot++;
}

/* The bus hands a whole member array at once (wschat__deliver_fn). */
static void deliver(void *user, struct wschat__member *const *m, size_t n,
                    struct wschat_event *ev, int variant, uint64_t skip) {
  for (size_t i = 0; i < n; i++)
    if (m[i]->id != skip)
      deliver_one(user, m[i], ev, variant);
}

static void clear_got(struct user *u) {
  for (size_t i = 0; i < u->ngot; i++) {
    free(u->got[i].line);
    wschat__frame_unref(u->got[i].frame);
  }
  u->ngot = 0;
}

static void clear_replies(struct user *u) {
  for (size_t i = 0; i < u->nreplies; i++)
    free(u->replies[i]);
  u->nreplies = 0;
}

static void clear_all(void) {
  for (size_t i = 0; i < F.nu; i++) {
    clear_got(&F.u[i]);
    clear_replies(&F.u[i]);
  }
}

/* Asserts that u got exactly the lines in want (NULL-terminated), in
 * order, since the last check; then forgets them. */
static void expect_lines(int at, struct user *u, const char *const *want,
                         int replies) {
  size_t n = 0;
  while (want[n])
    n++;
  size_t have = replies ? u->nreplies : u->ngot;
  for (size_t i = 0; i < n && i < have; i++) {
    const char *got = replies ? u->replies[i] : u->got[i].line;
    ck_assert_msg(strcmp(got, want[i]) == 0,
                  "line %d: %s %s[%zu] is \"%s\", want \"%s\"", at, u->m.name,
                  replies ? "reply" : "line", i, got, want[i]);
  }
  ck_assert_msg(have == n, "line %d: %s has %zu %s, want %zu (first extra: %s)",
                at, u->m.name, have, replies ? "replies" : "lines", n,
                have > n ? (replies ? u->replies[n] : u->got[n].line) : "-");
  if (replies)
    clear_replies(u);
  else
    clear_got(u);
}

#define EXPECT(u, ...)                                                         \
  expect_lines(__LINE__, (u), (const char *const[]){__VA_ARGS__, NULL}, 0)
#define EXPECT_NONE(u)                                                         \
  expect_lines(__LINE__, (u), (const char *const[]){NULL}, 0)
#define EXPECT_REPLIES(u, ...)                                                 \
  expect_lines(__LINE__, (u), (const char *const[]){__VA_ARGS__, NULL}, 1)
#define EXPECT_NO_REPLIES(u)                                                   \
  expect_lines(__LINE__, (u), (const char *const[]){NULL}, 1)

/* ---- the fake text io ---- */

static void io_reply(void *user, struct wschat__member *m, const char *text,
                     size_t len) {
  ck_assert_ptr_eq(user, &F);
  struct user *u = (struct user *)m;
  ck_assert_uint_lt(u->nreplies, MAX_GOT);
  char *s = malloc(len + 1);
  ck_assert_ptr_nonnull(s);
  memcpy(s, text, len);
  s[len] = '\0';
  u->replies[u->nreplies++] = s;
}

static void io_quit(void *user, struct wschat__member *m, const char *reason) {
  ck_assert_ptr_eq(user, &F);
  struct user *u = (struct user *)m;
  u->quits++;
  snprintf(u->quit_reason, sizeof(u->quit_reason), "%s",
           reason ? reason : "(null)");
}

static const struct wschat__text_io io = {io_reply, io_quit, NULL};

/* ---- hooks ---- */

static void hook(const char *fmt, ...) {
  ck_assert_uint_lt(F.nhooks, MAX_LOG);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(F.hooks[F.nhooks++], sizeof(F.hooks[0]), fmt, ap);
  va_end(ap);
}

static void on_join(struct wschat_client *c, const char *room, void *user) {
  ck_assert_ptr_eq(user, &F);
  hook("join %s %s", U(c)->m.name, room);
}

static void on_leave(struct wschat_client *c, const char *room,
                     const char *reason, void *user) {
  ck_assert_ptr_eq(user, &F);
  hook("leave %s %s %s", U(c)->m.name, room, reason ? reason : "-");
}

static void expect_hooks(int at, const char *const *want) {
  size_t n = 0;
  while (want[n])
    n++;
  for (size_t i = 0; i < n && i < F.nhooks; i++)
    ck_assert_msg(strcmp(F.hooks[i], want[i]) == 0,
                  "line %d: hook[%zu] is \"%s\", want \"%s\"", at, i,
                  F.hooks[i], want[i]);
  ck_assert_msg(F.nhooks == n, "line %d: %zu hooks ran, want %zu", at, F.nhooks,
                n);
  F.nhooks = 0;
}

#define EXPECT_HOOKS(...)                                                      \
  expect_hooks(__LINE__, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_NO_HOOKS() expect_hooks(__LINE__, (const char *const[]){NULL})

/* ---- watchers ---- */

/* The member called name (any case), or NULL. */
static struct wschat__member *find(const char *name) {
  return F.ch.presence->ops->find(F.ch.presence, name);
}

static char *dup_or_null(const char *s) {
  if (s == NULL)
    return NULL;
  char *d = strdup(s);
  ck_assert_ptr_nonnull(d);
  return d;
}

static void watcher(struct wschat_server *srv, const struct wschat_event *ev,
                    void *user) {
  ck_assert_ptr_null(srv);
  struct watcher *w = user;
  w->calls++;
  ck_assert_uint_lt(F.nseen, MAX_LOG);
  struct seen *s = &F.seen[F.nseen++];
  s->who = w->who;
  s->kind = wschat_event_kind(ev);
  s->id = wschat_event_id(ev);
  s->ts = wschat_event_time(ev);
  s->client = wschat_event_client(ev);
  s->group = ev->group;
  s->room = dup_or_null(wschat_event_room(ev));
  s->from = dup_or_null(wschat_event_from(ev));
  s->to = dup_or_null(wschat_event_to(ev));
  s->reason = dup_or_null(wschat_event_reason(ev));
  const char *text = wschat_event_text(ev, &s->text_len);
  s->text = malloc(s->text_len + 1);
  ck_assert_ptr_nonnull(s->text);
  memcpy(s->text, text, s->text_len + 1);
  for (int v = 0; v < WSCHAT__VARIANTS; v++) {
    s->frame[v] = ev->frames[0][WSCHAT__VIEW_TEXT][v];
    s->refs[v] = s->frame[v] ? s->frame[v]->refs : 0;
  }

  switch (w->mode) {
  case W_PING:
    if (s->kind == WSCHAT_EVENT_MESSAGE && strcmp(s->text, "ping") == 0)
      ck_assert_int_eq(wschat__chat_notice(&F.ch, "lobby", "pong", 4, 0), 0);
    break;
  case W_PONG:
    if (s->kind == WSCHAT_EVENT_NOTICE && strcmp(s->text, "pong") == 0)
      ck_assert_int_eq(wschat__chat_say_as(&F.ch, "lobby", "bot", "pang", 4),
                       0);
    break;
  case W_UNWATCH_SELF:
    if (w->calls == 1)
      ck_assert_int_eq(wschat__chat_unwatch(&F.ch, w->handle), 0);
    break;
  case W_UNWATCH_OTHER:
    if (w->calls == 1)
      ck_assert_int_eq(wschat__chat_unwatch(&F.ch, F.w[w->other].handle), 0);
    break;
  case W_EXIT_ALICE:
    if (s->kind == WSCHAT_EVENT_LEAVE && strcmp(s->from, "alice") == 0 &&
        strcmp(s->room, "dev") == 0 && find("alice") != NULL)
      wschat__chat_exit(&F.ch, find("alice"), "gone");
    break;
  case W_RENAME_BOB:
    if (s->kind == WSCHAT_EVENT_NICK && strcmp(s->from, "alice") == 0 &&
        find("bob") != NULL)
      ck_assert_int_eq(wschat__chat_rename(&F.ch, find("bob"), "robert"), 0);
    break;
  default:
    break;
  }
}

static struct watcher *watch(int who, int mode) {
  struct watcher *w = &F.w[who];
  w->who = who;
  w->mode = mode;
  ck_assert_int_eq(wschat__chat_watch(&F.ch, watcher, w, &w->handle), 0);
  return w;
}

static void clear_seen(void) {
  for (size_t i = 0; i < F.nseen; i++) {
    struct seen *s = &F.seen[i];
    free(s->room);
    free(s->from);
    free(s->to);
    free(s->reason);
    free(s->text);
  }
  F.nseen = 0;
}

/* ---- the fixture ---- */

static void fx_init(void) {
  memset(&F, 0, sizeof(F));
  ck_assert_int_eq(wschat__chat_init(&F.ch, NULL, deliver, &F), 0);
  F.ch.on_join = on_join;
  F.ch.on_join_user = &F;
  F.ch.on_leave = on_leave;
  F.ch.on_leave_user = &F;
  F.t.chat = &F.ch;
  F.t.io = &io;
  F.t.user = &F;
}

/* A new member, not in the chat yet. */
static struct user *new_user(void) {
  ck_assert_uint_lt(F.nu, MAX_USERS);
  struct user *u = &F.u[F.nu++];
  memset(u, 0, sizeof(*u));
  u->m.id = 100 + F.nu; /* distinct, never 0 */
  u->m.view = WSCHAT__VIEW_TEXT;
  u->m.client = (struct wschat_client *)(void *)u;
  return u;
}

/* A member in the chat as name (NULL: guest-N), in no room yet. */
static struct user *enter(const char *name) {
  struct user *u = new_user();
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &u->m, name, 0), 0);
  return u;
}

/* A member in the chat as name, in each of the rooms given, in order
 * (joined without telling itself, as a new client is). */
static struct user *member(const char *name, ...) {
  struct user *u = enter(name);
  va_list ap;
  va_start(ap, name);
  for (const char *r; (r = va_arg(ap, const char *)) != NULL;)
    ck_assert_int_eq(wschat__chat_join(&F.ch, &u->m, r, 0), 0);
  va_end(ap);
  return u;
}

/* A client opened through the text protocol with query. */
static struct user *open_text(const char *query) {
  struct user *u = new_user();
  ck_assert_int_eq(wschat__text_open(&F.t, &u->m, query, NULL, NULL), 0);
  return u;
}

static void line(struct user *u, const char *text) {
  wschat__text_line(&F.t, &u->m, text, strlen(text));
}

static void say(struct user *u, const char *text) {
  ck_assert_int_eq(
      wschat__chat_say(&F.ch, &u->m, WSCHAT_EVENT_MESSAGE, text, strlen(text)),
      0);
}

static struct wschat__room *room(const char *name) {
  return wschat__room_find(&F.ch.rooms, name);
}

static const char *current(const struct user *u) {
  struct wschat__room *r = wschat__member_room(&u->m);
  return r ? r->name : NULL;
}

/* Asserts that u's memberships are exactly the rooms given, in joining
 * order, and that each room's member array points back at u. */
static void expect_rooms(int at, const struct user *u,
                         const char *const *want) {
  size_t n = 0;
  while (want[n])
    n++;
  ck_assert_msg(u->m.nrooms == n, "line %d: %s is in %u rooms, want %zu", at,
                u->m.name, (unsigned)u->m.nrooms, n);
  for (size_t i = 0; i < n; i++) {
    const struct wschat__membership *ms = &u->m.rooms[i];
    ck_assert_msg(strcmp(ms->room->name, want[i]) == 0,
                  "line %d: %s's room %zu is %s, want %s", at, u->m.name, i,
                  ms->room->name, want[i]);
    ck_assert_msg(ms->room == room(want[i]), "line %d: %s not registered", at,
                  want[i]);
    ck_assert_msg(ms->idx < ms->room->n && ms->room->members[ms->idx] == &u->m,
                  "line %d: #%s does not point back at %s", at, want[i],
                  u->m.name);
  }
}

#define EXPECT_ROOMS(u, ...)                                                   \
  expect_rooms(__LINE__, (u), (const char *const[]){__VA_ARGS__, NULL})

static void fx_free(void) {
  F.ch.silent_leaves = 1;
  F.ch.on_join = NULL;
  F.ch.on_leave = NULL;
  for (size_t i = 0; i < F.nu; i++) {
    wschat__chat_exit(&F.ch, &F.u[i].m, NULL);
    wschat__member_free(&F.u[i].m);
  }
  clear_all();
  clear_seen();
  wschat__chat_free(&F.ch);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void expect_str(int at, const char *got, const char *want) {
  if (got == NULL || want == NULL)
    ck_assert_msg(got == want, "line %d: \"%s\", want \"%s\"", at,
                  got ? got : "(null)", want ? want : "(null)");
  else
    ck_assert_msg(strcmp(got, want) == 0, "line %d: \"%s\", want \"%s\"", at,
                  got, want);
}

/* Asserts what a watcher saw of one event. */
static void expect_event(int at, const struct seen *s, int kind,
                         const char *room, const char *from, const char *to,
                         const char *text, const char *reason,
                         uint64_t client) {
  ck_assert_msg(s->kind == kind, "line %d: kind %d, want %d", at, s->kind,
                kind);
  expect_str(at, s->room, room);
  expect_str(at, s->from, from);
  expect_str(at, s->to, to);
  expect_str(at, s->text, text);
  ck_assert_msg(s->text_len == strlen(text), "line %d: text_len %zu", at,
                s->text_len);
  expect_str(at, s->reason, reason);
  ck_assert_msg(s->client == client, "line %d: client %llu, want %llu", at,
                (unsigned long long)s->client, (unsigned long long)client);
}

#define EXPECT_EVENT(s, ...) expect_event(__LINE__, (s), __VA_ARGS__)

/* ---- events ---- */

/* Ids count from 1 with no gap, times come from the wall clock, and each
 * kind carries the fields wschat.h promises. */
START_TEST(event_fields) {
  fx_init();
  watch(1, W_RECORD);
  int64_t t0 = wall_ms();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "lobby", NULL);
  say(a, "hi");
  ck_assert_int_eq(
      wschat__chat_say(&F.ch, &b->m, WSCHAT_EVENT_ACTION, "waves", 5), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "dev", 0), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &b->m, "dev", 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &b->m, "dev", "bye", 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "dev", NULL, 0), 0);
  int64_t t1 = wall_ms();

  ck_assert_uint_eq(F.nseen, 8);
  for (size_t i = 0; i < F.nseen; i++) {
    ck_assert_uint_eq(F.seen[i].id, i + 1);
    ck_assert(F.seen[i].ts >= t0 && F.seen[i].ts <= t1);
  }
  uint64_t ia = a->m.id, ib = b->m.id;
  EXPECT_EVENT(&F.seen[0], WSCHAT_EVENT_JOIN, "lobby", "alice", NULL, "", NULL,
               ia);
  EXPECT_EVENT(&F.seen[1], WSCHAT_EVENT_JOIN, "lobby", "bob", NULL, "", NULL,
               ib);
  EXPECT_EVENT(&F.seen[2], WSCHAT_EVENT_MESSAGE, "lobby", "alice", NULL, "hi",
               NULL, ia);
  EXPECT_EVENT(&F.seen[3], WSCHAT_EVENT_ACTION, "lobby", "bob", NULL, "waves",
               NULL, ib);
  EXPECT_EVENT(&F.seen[4], WSCHAT_EVENT_JOIN, "dev", "alice", NULL, "", NULL,
               ia);
  EXPECT_EVENT(&F.seen[5], WSCHAT_EVENT_JOIN, "dev", "bob", NULL, "", NULL, ib);
  EXPECT_EVENT(&F.seen[6], WSCHAT_EVENT_LEAVE, "dev", "bob", NULL, "", "bye",
               ib);
  EXPECT_EVENT(&F.seen[7], WSCHAT_EVENT_LEAVE, "dev", "alice", NULL, "", NULL,
               ia);

  /* A joiner is not told of its own join (a client gets its welcome). */
  EXPECT(a, "* bob joined #lobby", "[lobby] alice: hi", "* bob waves",
         "* bob joined #dev", "* bob left #dev (bye)");
  EXPECT(b, "[lobby] alice: hi", "* bob waves");
  fx_free();
}
END_TEST

/* A rename is one NICK event per room of the member (from = old name, to =
 * the new one, one group), and each member sees it once. */
START_TEST(event_nick) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", NULL);
  struct user *b = member("bob", "lobby", "dev", NULL);
  struct user *c = member("carol", "dev", NULL);
  clear_all();
  watch(1, W_RECORD);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "alicia"), 0);
  ck_assert_str_eq(a->m.name, "alicia");
  ck_assert_uint_eq(F.nseen, 2);
  EXPECT_EVENT(&F.seen[0], WSCHAT_EVENT_NICK, "lobby", "alice", "alicia", "",
               NULL, a->m.id);
  EXPECT_EVENT(&F.seen[1], WSCHAT_EVENT_NICK, "dev", "alice", "alicia", "",
               NULL, a->m.id);
  ck_assert_uint_gt(F.seen[0].group, 0);
  ck_assert_uint_eq(F.seen[0].group, F.seen[1].group);
  ck_assert_uint_eq(F.seen[1].id, F.seen[0].id + 1);
  EXPECT(a, "* alice is now known as alicia");
  EXPECT(b, "* alice is now known as alicia");
  EXPECT(c, "* alice is now known as alicia");

  /* The next rename is a new group: seen again, once. */
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "al"), 0);
  ck_assert_uint_eq(F.nseen, 4);
  ck_assert_uint_eq(F.seen[2].group, F.seen[3].group);
  ck_assert_uint_ne(F.seen[2].group, F.seen[0].group);
  EXPECT(b, "* alicia is now known as al");
  EXPECT(c, "* alicia is now known as al");
  fx_free();
}
END_TEST

/* A whisper has no room; its recipient reads "[whisper from A] x", its
 * sender "[whisper to B] x" (variant TO_SENDER); nobody else gets it. */
START_TEST(event_whisper) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "dev", NULL);
  struct user *c = member("carol", "lobby", NULL);
  clear_all();
  watch(1, W_RECORD);
  ck_assert_int_eq(wschat__chat_whisper(&F.ch, &a->m, "BOB", "psst\nx", 6), 0);
  ck_assert_uint_eq(F.nseen, 1);
  EXPECT_EVENT(&F.seen[0], WSCHAT_EVENT_WHISPER, NULL, "alice", "bob",
               "psst\nx", NULL, a->m.id);
  ck_assert_uint_eq(a->ngot, 1);
  ck_assert_uint_eq(b->ngot, 1);
  ck_assert_int_eq(b->got[0].variant, WSCHAT__TO_RECIPIENT);
  ck_assert_int_eq(a->got[0].variant, WSCHAT__TO_SENDER);
  /* One frame per variant, each the one cached on the event. */
  ck_assert_ptr_eq(b->got[0].frame, F.seen[0].frame[WSCHAT__TO_RECIPIENT]);
  ck_assert_ptr_eq(a->got[0].frame, F.seen[0].frame[WSCHAT__TO_SENDER]);
  ck_assert_ptr_ne(a->got[0].frame, b->got[0].frame);
  EXPECT(b, "[whisper from alice] psst x");
  EXPECT(a, "[whisper to bob] psst x");
  EXPECT_NONE(c);

  ck_assert_int_eq(wschat__chat_whisper(&F.ch, &a->m, "nobody", "x", 1),
                   WSCHAT_ENOTFOUND);
  ck_assert_uint_eq(F.nseen, 1); /* no event, no id used */
  say(a, "next");
  ck_assert_uint_eq(F.seen[1].id, F.seen[0].id + 1);
  fx_free();
}
END_TEST

/* A notice is the application's text as it is (control characters kept);
 * a line said as a name is rendered exactly like a member's line. */
START_TEST(event_notice_and_say_as) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "dev", NULL);
  struct user *c = enter("carol"); /* in the chat, in no room */
  clear_all();
  watch(1, W_RECORD);

  const char notice[] = "* server\x07 says\nhi";
  ck_assert_int_eq(
      wschat__chat_notice(&F.ch, "lobby", notice, sizeof(notice) - 1, 0), 0);
  EXPECT_EVENT(&F.seen[0], WSCHAT_EVENT_NOTICE, "lobby", NULL, NULL, notice,
               NULL, 0);
  EXPECT(a, "* server\x07 says\nhi");
  EXPECT_NONE(b);
  EXPECT_NONE(c);

  /* To everyone in the chat (in a room or not) but the one skipped. */
  ck_assert_int_eq(wschat__chat_notice(&F.ch, NULL, "all", 3, b->m.id), 0);
  EXPECT_EVENT(&F.seen[1], WSCHAT_EVENT_NOTICE, NULL, NULL, NULL, "all", NULL,
               0);
  EXPECT(a, "all");
  EXPECT_NONE(b);
  EXPECT(c, "all");
  ck_assert_int_eq(wschat__chat_notice(&F.ch, "nosuch", "x", 1, 0),
                   WSCHAT_ENOTFOUND);

  ck_assert_int_eq(wschat__chat_say_as(&F.ch, "LOBBY", "bot", "hi\x01!", 4), 0);
  EXPECT_EVENT(&F.seen[2], WSCHAT_EVENT_MESSAGE, "lobby", "bot", NULL,
               "hi\x01!", NULL, 0);
  say(a, "hi\x01!");
  EXPECT(a, "[lobby] bot: hi !", "[lobby] alice: hi !");
  EXPECT_NONE(b);
  ck_assert_int_eq(wschat__chat_say_as(&F.ch, "nosuch", "bot", "x", 1),
                   WSCHAT_ENOTFOUND);
  ck_assert_uint_eq(F.nseen, 4);
  fx_free();
}
END_TEST

/* One frame per event and view, shared by every recipient; an event that
 * reaches nobody is never rendered. */
START_TEST(frame_shared_once) {
  fx_init();
  watch(1, W_RECORD);
  struct user *a = member("alice", "lobby", NULL);
  /* alice's own join reached nobody: not rendered */
  ck_assert_uint_eq(F.nseen, 1);
  ck_assert_ptr_null(F.seen[0].frame[0]);
  ck_assert_ptr_null(F.seen[0].frame[1]);
  struct user *b = member("bob", "lobby", NULL);
  struct user *c = member("carol", "lobby", NULL);
  clear_all();
  clear_seen();

  say(a, "hi");
  ck_assert_uint_eq(F.nseen, 1);
  struct wschat__frame *f = F.seen[0].frame[WSCHAT__TO_RECIPIENT];
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_null(F.seen[0].frame[WSCHAT__TO_SENDER]);
  ck_assert_uint_eq(F.seen[0].refs[0], 1 + 3); /* the cache + 3 queues */
  ck_assert_ptr_eq(a->got[0].frame, f);
  ck_assert_ptr_eq(b->got[0].frame, f);
  ck_assert_ptr_eq(c->got[0].frame, f);
  clear_all();
  clear_seen();

  /* A join into a quiet room without TELL_SELF, and a leave from a room
   * that is gone: nobody receives them, nothing is rendered. */
  F.ch.quiet_room = 1;
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "q", 0), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &b->m, "q", 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "q", NULL, 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &b->m, "q", NULL, 0), 0);
  ck_assert_uint_eq(F.nseen, 4);
  for (size_t i = 0; i < F.nseen; i++) {
    ck_assert_ptr_null(F.seen[i].frame[0]);
    ck_assert_ptr_null(F.seen[i].frame[1]);
  }
  EXPECT_NONE(a);
  EXPECT_NONE(b);
  EXPECT_NONE(c);
  fx_free();
}
END_TEST

/* ---- rooms ---- */

/* join adds a membership and makes it current; the same room twice, too
 * many rooms and bad names are refused without changing anything. */
START_TEST(rooms_join) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "lobby", NULL);
  EXPECT_HOOKS("join alice lobby", "join bob lobby");
  clear_all();
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "dev", 0), 0);
  EXPECT_ROOMS(a, "lobby", "dev");
  ck_assert_str_eq(current(a), "dev");
  ck_assert_uint_eq(room("lobby")->n, 2);
  ck_assert_uint_eq(room("dev")->n, 1);
  EXPECT_HOOKS("join alice dev");
  ck_assert_int_eq(wschat__chat_join(&F.ch, &b->m, "Dev", 0), 0);
  EXPECT(a, "* bob joined #dev"); /* the room as first spelled */
  EXPECT_NONE(b);
  EXPECT_HOOKS("join bob dev");

  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "DEV", 0), WSCHAT_ESAMEROOM);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "lobby", 0),
                   WSCHAT_ESAMEROOM);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "bad room", 0),
                   WSCHAT_EROOM);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, NULL, 0), WSCHAT_EROOM);
  char long_room[WSCHAT_ROOM_MAX + 2];
  memset(long_room, 'r', sizeof(long_room) - 1);
  long_room[sizeof(long_room) - 1] = '\0';
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, long_room, 0), WSCHAT_EROOM);

  F.ch.max_rooms = 3;
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "ops", 0), 0);
  EXPECT_HOOKS("join alice ops");
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "more", 0), WSCHAT_ETOOMANY);
  ck_assert_ptr_null(room("more")); /* not created */
  EXPECT_ROOMS(a, "lobby", "dev", "ops");
  ck_assert_str_eq(current(a), "ops");
  EXPECT_NO_HOOKS();
  EXPECT_NONE(a);
  EXPECT_NONE(b);
  fx_free();
}
END_TEST

/* leave of a named room, of the current one, and of the last one (back to
 * lobby, with the join event); alone in lobby, a member stays there. */
START_TEST(rooms_leave) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", "ops", NULL);
  struct user *b = member("bob", "lobby", "dev", "ops", NULL);
  clear_all();
  F.nhooks = 0;

  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "DEV", "brb", 0), 0);
  EXPECT_ROOMS(a, "lobby", "ops");
  ck_assert_str_eq(current(a), "ops");
  EXPECT(b, "* alice left #dev (brb)");
  EXPECT_NONE(a);
  EXPECT_HOOKS("leave alice dev brb");
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "dev", NULL, 0),
                   WSCHAT_ENOTMEMBER);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "nosuch", NULL, 0),
                   WSCHAT_ENOTMEMBER);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "bad room", NULL, 0),
                   WSCHAT_EROOM);

  /* NULL: the current room; an empty reason is no reason. */
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, NULL, "", 0), 0);
  EXPECT_ROOMS(a, "lobby");
  EXPECT(b, "* alice left #ops");
  EXPECT_HOOKS("leave alice ops ");

  /* Alone in lobby: it stays, nobody is told. */
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, NULL, NULL, 0), 0);
  EXPECT_ROOMS(a, "lobby");
  EXPECT_NONE(b);
  EXPECT_NO_HOOKS();

  /* The last room: back in lobby, told to lobby and to the member. */
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "dev", 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "lobby", NULL, 0), 0);
  EXPECT_ROOMS(a, "dev");
  EXPECT(b, "* alice joined #dev", "* alice left #lobby");
  F.nhooks = 0;
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "dev", "done", 0), 0);
  EXPECT_ROOMS(a, "lobby");
  EXPECT(b, "* alice left #dev (done)", "* alice joined #lobby");
  EXPECT(a, "* alice joined #lobby");
  EXPECT_HOOKS("leave alice dev done", "join alice lobby");
  fx_free();
}
END_TEST

/* move is what /join does: the old room is told "left", the new one
 * "joined", the mover sees its own join; other memberships stay. */
START_TEST(rooms_move) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "lobby", NULL);
  struct user *c = member("carol", "dev", NULL);
  clear_all();
  F.nhooks = 0;
  watch(1, W_RECORD);

  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "dev"), 0);
  EXPECT_ROOMS(a, "dev");
  EXPECT(a, "* alice joined #dev");
  EXPECT(b, "* alice left #lobby");
  EXPECT(c, "* alice joined #dev");
  EXPECT_HOOKS("leave alice lobby -", "join alice dev");
  ck_assert_uint_eq(F.nseen, 2);
  ck_assert_int_eq(F.seen[0].kind, WSCHAT_EVENT_LEAVE);
  ck_assert_int_eq(F.seen[1].kind, WSCHAT_EVENT_JOIN);

  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "DEV"), WSCHAT_ESAMEROOM);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "bad/room"), WSCHAT_EROOM);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, NULL), WSCHAT_EROOM);

  /* Into a new room; only the current membership is given up. */
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "x", 0), 0);
  EXPECT_ROOMS(a, "dev", "x");
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "y"), 0);
  EXPECT_ROOMS(a, "dev", "y");
  ck_assert_ptr_null(room("x")); /* empty: reaped */
  EXPECT(a, "* alice joined #y");
  EXPECT_NONE(b);
  EXPECT_NONE(c); /* dev was not left */
  fx_free();
}
END_TEST

/* Moving into a room the member is already in makes it current and leaves
 * the old one; nobody is told of a join. */
START_TEST(rooms_move_to_member_room) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", NULL);
  struct user *b = member("bob", "lobby", "dev", NULL);
  struct user *c = member("carol", "lobby", NULL);
  clear_all();
  F.nhooks = 0;
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "lobby"), 0);
  EXPECT_ROOMS(a, "lobby");
  EXPECT_ROOMS(b, "lobby", "dev");
  EXPECT_ROOMS(c, "lobby");
  ck_assert_uint_eq(room("lobby")->n, 3);
  ck_assert_uint_eq(room("dev")->n, 1);
  EXPECT(b, "* alice left #dev");
  EXPECT_NONE(a);
  EXPECT_NONE(c);
  EXPECT_HOOKS("leave alice dev -");
  fx_free();
}
END_TEST

/* lobby always exists and is never reaped; an empty room is, unless kept;
 * a room keeps its first spelling. */
START_TEST(rooms_lobby_and_reaping) {
  fx_init();
  ck_assert_ptr_nonnull(room("lobby"));
  ck_assert_uint_eq(F.ch.rooms.map.count, 1);
  struct user *a = member("alice", "lobby", NULL);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "Dev"), 0);
  ck_assert_ptr_nonnull(room("lobby"));
  ck_assert_uint_eq(room("lobby")->n, 0);
  struct user *b = member("bob", "dEV", NULL);
  ck_assert_ptr_eq(wschat__member_room(&b->m), room("dev"));
  ck_assert_str_eq(room("dev")->name, "Dev");
  ck_assert_uint_eq(room("dev")->n, 2);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "LOBBY"), 0);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &b->m, "lobby"), 0);
  ck_assert_ptr_null(room("dev"));
  ck_assert_uint_eq(F.ch.rooms.map.count, 1);

  /* A kept room stays while empty (what wschat_server_keep_room does). */
  struct wschat__room *hall = wschat__room_open(&F.ch.rooms, "hall");
  ck_assert_ptr_nonnull(hall);
  hall->keep = 1;
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "hall", 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "hall", NULL, 0), 0);
  ck_assert_ptr_eq(room("hall"), hall);
  ck_assert_uint_eq(hall->n, 0);
  hall->keep = 0;
  ck_assert_int_eq(wschat__room_reap(&F.ch.rooms, hall), 1);
  ck_assert_ptr_null(room("hall"));
  ck_assert_int_eq(wschat__room_reap(&F.ch.rooms, room("lobby")), 0);
  fx_free();
}
END_TEST

/* ---- quiet rooms ---- */

/* With quiet_room = 3, the 4th and later joins reach only the joiner (with
 * TELL_SELF) or nobody, leaves from a room above 3 reach nobody, lines
 * still reach everyone, and the counts stay exact. */
START_TEST(quiet_rooms) {
  fx_init();
  F.ch.quiet_room = 3;
  struct user *u[5];
  const char *names[] = {"u1", "u2", "u3", "u4", "u5"};
  const char *homes[] = {"h1", "h2", "h3", "h4", "h5"};
  for (int i = 0; i < 5; i++)
    u[i] = member(names[i], homes[i], NULL);
  watch(1, W_RECORD);

  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[0]->m, "big", 0), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[1]->m, "big", 0), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[2]->m, "big", 0), 0);
  EXPECT(u[0], "* u2 joined #big", "* u3 joined #big");
  EXPECT(u[1], "* u3 joined #big");
  EXPECT_NONE(u[2]);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[3]->m, "big", 0), 0);
  ck_assert_int_eq(
      wschat__chat_join(&F.ch, &u[4]->m, "big", WSCHAT__JOIN_TELL_SELF), 0);
  for (int i = 0; i < 4; i++)
    EXPECT_NONE(u[i]);
  EXPECT(u[4], "* u5 joined #big");
  ck_assert_uint_eq(room("big")->n, 5);
  ck_assert_uint_eq(F.nseen, 5); /* watchers see quiet joins too */

  say(u[0], "hello");
  for (int i = 0; i < 5; i++)
    EXPECT(u[i], "[big] u1: hello");

  ck_assert_int_eq(wschat__chat_leave(&F.ch, &u[4]->m, "big", NULL, 0), 0);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &u[3]->m, "big", NULL, 0), 0);
  for (int i = 0; i < 5; i++)
    EXPECT_NONE(u[i]);
  ck_assert_uint_eq(room("big")->n, 3);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &u[2]->m, "big", NULL, 0), 0);
  EXPECT(u[0], "* u3 left #big");
  EXPECT(u[1], "* u3 left #big");
  EXPECT_NONE(u[2]);
  ck_assert_uint_eq(room("big")->n, 2);

  /* A move into a quiet room: the mover sees its own join, only. */
  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[2]->m, "big", 0), 0);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &u[3]->m, "big", 0), 0);
  clear_all();
  ck_assert_int_eq(wschat__chat_move(&F.ch, &u[4]->m, "big"), 0);
  EXPECT(u[4], "* u5 joined #big");
  for (int i = 0; i < 4; i++)
    EXPECT_NONE(u[i]);
  ck_assert_uint_eq(room("big")->n, 5);
  fx_free();
}
END_TEST

/* quiet_room = 0: every join and leave is told, however big the room. */
START_TEST(quiet_never) {
  fx_init();
  F.ch.quiet_room = 0;
  struct user *u[6];
  const char *names[] = {"u1", "u2", "u3", "u4", "u5", "u6"};
  for (int i = 0; i < 6; i++) {
    u[i] = member(names[i], "big", NULL);
    char want[32];
    snprintf(want, sizeof(want), "* %s joined #big", names[i]);
    for (int k = 0; k < i; k++)
      EXPECT(u[k], want);
    EXPECT_NONE(u[i]);
  }
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &u[5]->m, "big", NULL, 0), 0);
  for (int k = 0; k < 5; k++)
    EXPECT(u[k], "* u6 left #big");
  ck_assert_uint_eq(room("big")->n, 5);
  fx_free();
}
END_TEST

/* ---- names ---- */

/* guest-N skips names that are used or reserved; names are unique
 * regardless of case; invalid names are refused. */
START_TEST(names_guest_and_taken) {
  fx_init();
  struct wschat__presence *p = F.ch.presence;
  struct user *g1 = enter(NULL);
  ck_assert_str_eq(g1->m.name, "guest-1");
  ck_assert_int_eq(p->ops->reserve(p, "guest-2"), 0);
  enter("GUEST-3");
  struct user *g4 = enter(NULL);
  ck_assert_str_eq(g4->m.name, "guest-4");
  ck_assert_ptr_eq(find("Guest-1"), &g1->m);

  struct user *a = enter("alice");
  struct user *x = new_user();
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "ALICE", 0),
                   WSCHAT_ENAMETAKEN);
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "ALICE", 1),
                   WSCHAT_ENAMETAKEN); /* force is about reserved names */
  ck_assert_int_eq(x->m.attached, 0);
  ck_assert_str_eq(x->m.name, "");
  ck_assert_ptr_eq(find("alice"), &a->m);
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "bad name", 0),
                   WSCHAT_ENAME);
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "", 0), WSCHAT_ENAME);
  ck_assert_int_eq(
      wschat__chat_enter(&F.ch, &x->m, "a23456789012345678901234567890123", 0),
      WSCHAT_ENAME);
  ck_assert_int_eq(
      wschat__chat_enter(&F.ch, &x->m, "a2345678901234567890123456789012", 0),
      0);
  ck_assert_uint_eq(F.ch.rooms.nall, 5);
  fx_free();
}
END_TEST

/* Reserved names are refused (ERESERVED) unless forced, on entry and on
 * rename. */
START_TEST(names_reserved) {
  fx_init();
  struct wschat__presence *p = F.ch.presence;
  ck_assert_int_eq(p->ops->reserve(p, "admin"), 0);
  ck_assert_int_eq(p->ops->reserve(p, "ADMIN"), WSCHAT_EEXIST);
  struct user *x = new_user();
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "Admin", 0),
                   WSCHAT_ERESERVED);
  ck_assert_int_eq(x->m.attached, 0);
  ck_assert_ptr_null(find("admin"));
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &x->m, "Admin", 1), 0);
  ck_assert_str_eq(x->m.name, "Admin");
  ck_assert_ptr_eq(find("admin"), &x->m);

  struct user *a = member("alice", "lobby", NULL);
  ck_assert_int_eq(p->ops->reserve(p, "root"), 0);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "Root"), WSCHAT_ERESERVED);
  ck_assert_str_eq(a->m.name, "alice");
  ck_assert_ptr_eq(find("alice"), &a->m);
  ck_assert_ptr_null(find("root"));
  ck_assert_int_eq(p->ops->unreserve(p, "ROOT"), 0);
  ck_assert_int_eq(p->ops->unreserve(p, "root"), WSCHAT_ENOTFOUND);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "root"), 0);
  ck_assert_ptr_eq(find("root"), &a->m);
  fx_free();
}
END_TEST

/* A rename claims the new name before it gives the old one back: a failed
 * rename leaves the old name registered; a good one frees it. */
START_TEST(names_rename) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  struct user *b = member("bob", "lobby", NULL);
  clear_all();
  watch(1, W_RECORD);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "BOB"), WSCHAT_ENAMETAKEN);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "no way"), WSCHAT_ENAME);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, NULL), WSCHAT_ENAME);
  ck_assert_str_eq(a->m.name, "alice");
  ck_assert_ptr_eq(find("ALICE"), &a->m);
  ck_assert_ptr_eq(find("bob"), &b->m);
  ck_assert_uint_eq(F.nseen, 0);
  EXPECT_NONE(b);

  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "alicia"), 0);
  ck_assert_ptr_null(find("alice"));
  ck_assert_ptr_eq(find("ALICIA"), &a->m);
  struct user *x = enter("alice"); /* free again */
  ck_assert_ptr_eq(find("alice"), &x->m);

  /* Only the case changes: still one owner of the name. */
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "Alicia"), 0);
  ck_assert_str_eq(a->m.name, "Alicia");
  ck_assert_ptr_eq(find("alicia"), &a->m);
  struct user *y = new_user();
  ck_assert_int_eq(wschat__chat_enter(&F.ch, &y->m, "ALICIA", 0),
                   WSCHAT_ENAMETAKEN);
  EXPECT(b, "* alice is now known as alicia",
         "* alicia is now known as Alicia");
  fx_free();
}
END_TEST

/* A member that exits gives its name back, once. */
START_TEST(names_exit_frees) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "alicia"), 0);
  wschat__chat_exit(&F.ch, &a->m, NULL);
  ck_assert_ptr_null(find("alicia"));
  ck_assert_ptr_null(find("alice"));
  ck_assert_int_eq(a->m.attached, 0);
  struct user *b = enter("Alicia");
  ck_assert_ptr_eq(find("alicia"), &b->m);
  wschat__chat_exit(&F.ch, &a->m, NULL); /* again: nothing happens */
  ck_assert_ptr_eq(find("alicia"), &b->m);
  ck_assert_uint_eq(F.ch.rooms.nall, 1);
  fx_free();
}
END_TEST

/* A member that shares three rooms with a renamed one sees one notice. */
START_TEST(nick_once_per_member) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", "ops", NULL);
  struct user *b = member("bob", "lobby", "dev", "ops", NULL);
  struct user *c = member("carol", "ops", NULL);
  clear_all();
  watch(1, W_RECORD);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "al"), 0);
  ck_assert_uint_eq(F.nseen, 3); /* one event per room */
  EXPECT(b, "* alice is now known as al");
  ck_assert_uint_eq(b->hidden, 2);
  EXPECT(a, "* alice is now known as al");
  EXPECT(c, "* alice is now known as al");
  ck_assert_uint_eq(c->hidden, 0);
  fx_free();
}
END_TEST

/* A watcher that renames someone while a rename's events go out: each
 * member still sees each rename once. */
START_TEST(nick_once_with_nested_rename) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", NULL);
  struct user *b = member("bob", "lobby", "dev", NULL);
  struct user *c = member("carol", "lobby", "dev", NULL);
  clear_all();
  watch(1, W_RENAME_BOB);
  ck_assert_int_eq(wschat__chat_rename(&F.ch, &a->m, "al"), 0);
  ck_assert_str_eq(b->m.name, "robert");
  EXPECT(c, "* alice is now known as al", "* bob is now known as robert");
  EXPECT(a, "* alice is now known as al", "* bob is now known as robert");
  EXPECT(b, "* alice is now known as al", "* bob is now known as robert");
  fx_free();
}
END_TEST

/* Asserts that u got first, then last, with at most mid between them:
 * the join may be told in its place or not at all, never after the
 * leave that undid it. */
static void expect_ordered(int at, struct user *u, const char *first,
                           const char *mid, const char *last) {
  char all[512] = "";
  for (size_t i = 0; i < u->ngot; i++) {
    size_t l = strlen(all);
    snprintf(all + l, sizeof(all) - l, "\"%s\" ", u->got[i].line);
  }
  int ok = (u->ngot == 2 || u->ngot == 3) &&
           strcmp(u->got[0].line, first) == 0 &&
           (u->ngot == 2 || strcmp(u->got[1].line, mid) == 0) &&
           strcmp(u->got[u->ngot - 1].line, last) == 0;
  ck_assert_msg(ok, "line %d: %s got %s; want \"%s\", [\"%s\",] \"%s\"", at,
                u->m.name, all, first, mid, last);
  clear_got(u);
}

/* A watcher may close the member whose leave it watches (wschat.h: "a
 * watcher may call any function of this API"): the rooms are then told of
 * the changes in the order they were made, never of a join into a room the
 * member has left already. */
START_TEST(watcher_exits_member_mid_leave) {
  fx_init();
  struct user *a = member("alice", "dev", NULL);
  struct user *b = member("bob", "lobby", "dev", NULL);
  clear_all();
  watch(1, W_EXIT_ALICE);
  /* alice leaves her last room: she is put in lobby, and the watcher of
   * her leave makes her exit */
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "dev", NULL, 0), 0);
  ck_assert_int_eq(a->m.attached, 0);
  ck_assert_uint_eq(room("lobby")->n, 1);
  expect_ordered(__LINE__, b, "* alice left #dev", "* alice joined #lobby",
                 "* alice left #lobby (gone)");
  fx_free();
}
END_TEST

/* The same through a move (/join): the new room is not told of a join
 * after the member has left it. */
START_TEST(watcher_exits_member_mid_move) {
  fx_init();
  struct user *a = member("alice", "dev", NULL);
  struct user *b = member("bob", "dev", "ops", NULL);
  clear_all();
  watch(1, W_EXIT_ALICE);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "ops"), 0);
  ck_assert_int_eq(a->m.attached, 0);
  ck_assert_uint_eq(room("ops")->n, 1);
  expect_ordered(__LINE__, b, "* alice left #dev", "* alice joined #ops",
                 "* alice left #ops (gone)");
  fx_free();
}
END_TEST

/* The same into a new room: the exit reaps it, so the move must not read
 * it afterwards (a use-after-free under ASan before the fix). */
START_TEST(watcher_exits_member_mid_move_to_new_room) {
  fx_init();
  struct user *a = member("alice", "dev", NULL);
  struct user *b = member("bob", "dev", NULL);
  clear_all();
  watch(1, W_EXIT_ALICE);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "brand-new"), 0);
  ck_assert_int_eq(a->m.attached, 0);
  ck_assert_ptr_null(wschat__room_find(&F.ch.rooms, "brand-new"));
  EXPECT(b, "* alice left #dev");
  fx_free();
}
END_TEST

/* ---- presence: told of every membership change, once ---- */

/* A presence that forwards to the local one and mirrors memberships the
 * way a cluster backend would: joined must add a membership it does not
 * have, left must remove one it has. */
struct mirror {
  struct wschat__presence base;
  struct wschat__presence *inner;
  struct {
    char room[WSCHAT_ROOM_MAX + 1];
    const struct wschat__member *m;
  } v[32];
  size_t n;
  char errors[512];
};

static struct mirror *MIR(struct wschat__presence *p) {
  return (struct mirror *)p;
}

static int mir_claim(struct wschat__presence *p, const char *name,
                     struct wschat__member *m, int force) {
  struct wschat__presence *in = MIR(p)->inner;
  return in->ops->claim(in, name, m, force);
}
static void mir_named(struct wschat__presence *p, struct wschat__member *m) {
  struct wschat__presence *in = MIR(p)->inner;
  in->ops->named(in, m);
}
static void mir_release(struct wschat__presence *p, const char *name,
                        struct wschat__member *m) {
  struct wschat__presence *in = MIR(p)->inner;
  in->ops->release(in, name, m);
}
static struct wschat__member *mir_find(struct wschat__presence *p,
                                       const char *name) {
  struct wschat__presence *in = MIR(p)->inner;
  return in->ops->find(in, name);
}
static int mir_reserve(struct wschat__presence *p, const char *name) {
  struct wschat__presence *in = MIR(p)->inner;
  return in->ops->reserve(in, name);
}
static int mir_unreserve(struct wschat__presence *p, const char *name) {
  struct wschat__presence *in = MIR(p)->inner;
  return in->ops->unreserve(in, name);
}
static int mir_reserved(struct wschat__presence *p, const char *name) {
  struct wschat__presence *in = MIR(p)->inner;
  return in->ops->reserved(in, name);
}

static int mir_index(struct mirror *x, const struct wschat__room *room,
                     const struct wschat__member *m) {
  for (size_t i = 0; i < x->n; i++)
    if (x->v[i].m == m && strcmp(x->v[i].room, room->name) == 0)
      return (int)i;
  return -1;
}

static void mir_error(struct mirror *x, const char *what,
                      const struct wschat__room *room,
                      const struct wschat__member *m) {
  size_t l = strlen(x->errors);
  snprintf(x->errors + l, sizeof(x->errors) - l, "%s %s #%s; ", what, m->name,
           room->name);
}

static void mir_joined(struct wschat__presence *p, struct wschat__room *room,
                       struct wschat__member *m) {
  struct mirror *x = MIR(p);
  if (mir_index(x, room, m) >= 0) {
    mir_error(x, "joined twice:", room, m);
    return;
  }
  ck_assert_uint_lt(x->n, 32);
  snprintf(x->v[x->n].room, sizeof(x->v[0].room), "%s", room->name);
  x->v[x->n++].m = m;
}

static void mir_left(struct wschat__presence *p, struct wschat__room *room,
                     struct wschat__member *m) {
  struct mirror *x = MIR(p);
  int i = mir_index(x, room, m);
  if (i < 0) {
    mir_error(x, "left but not joined:", room, m);
    return;
  }
  x->v[i] = x->v[--x->n];
}

static void mir_free(struct wschat__presence *p) {
  struct mirror *x = MIR(p);
  x->inner->ops->free(x->inner);
  free(x);
}

static const struct wschat__presence_ops mirror_ops = {
    mir_claim,    mir_named,   mir_release, mir_find, mir_reserve, mir_unreserve,
    mir_reserved, mir_joined,  mir_left, mir_free, NULL,
};

/* Asserts that the mirror holds exactly the memberships of every user. */
static void expect_mirror(int at, struct mirror *x) {
  ck_assert_msg(x->errors[0] == '\0', "line %d: %s", at, x->errors);
  size_t total = 0;
  for (size_t i = 0; i < F.nu; i++) {
    const struct user *u = &F.u[i];
    total += u->m.nrooms;
    for (size_t k = 0; k < u->m.nrooms; k++)
      ck_assert_msg(mir_index(x, u->m.rooms[k].room, &u->m) >= 0,
                    "line %d: presence does not know %s is in #%s", at,
                    u->m.name, u->m.rooms[k].room->name);
  }
  ck_assert_msg(x->n == total,
                "line %d: presence has %zu memberships, want %zu", at, x->n,
                total);
}

#define EXPECT_MIRROR(x) expect_mirror(__LINE__, (x))

START_TEST(presence_told_of_memberships) {
  fx_init();
  struct mirror *x = calloc(1, sizeof(*x));
  ck_assert_ptr_nonnull(x);
  x->base.ops = &mirror_ops;
  x->inner = F.ch.presence;
  F.ch.presence = &x->base;

  struct user *a = member("alice", "lobby", "dev", NULL);
  struct user *b = member("bob", "lobby", NULL);
  EXPECT_MIRROR(x);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "lobby", NULL, 0), 0);
  EXPECT_MIRROR(x);
  ck_assert_int_eq(wschat__chat_leave(&F.ch, &a->m, "dev", NULL, 0), 0);
  EXPECT_MIRROR(x); /* back in lobby */
  ck_assert_int_eq(wschat__chat_move(&F.ch, &b->m, "ops"), 0);
  EXPECT_MIRROR(x);
  ck_assert_int_eq(wschat__chat_join(&F.ch, &a->m, "ops", 0), 0);
  ck_assert_int_eq(wschat__chat_move(&F.ch, &a->m, "lobby"), 0);
  EXPECT_MIRROR(x); /* a move into a room it was already in */
  wschat__chat_exit(&F.ch, &b->m, NULL);
  EXPECT_MIRROR(x);
  fx_free();
}
END_TEST

/* ---- watchers ---- */

static void expect_watch_log(int at, const int (*want)[2], size_t n) {
  for (size_t i = 0; i < n && i < F.nseen; i++)
    ck_assert_msg(F.seen[i].who == want[i][0] &&
                      F.seen[i].id == (uint64_t)want[i][1],
                  "line %d: watch %zu was w%d of #%llu, want w%d of #%d", at, i,
                  F.seen[i].who, (unsigned long long)F.seen[i].id, want[i][0],
                  want[i][1]);
  ck_assert_msg(F.nseen == n, "line %d: %zu watches, want %zu", at, F.nseen, n);
}

#define EXPECT_WATCHES(...)                                                    \
  expect_watch_log(__LINE__, (const int[][2]){__VA_ARGS__},                    \
                   sizeof((const int[][2]){__VA_ARGS__}) / sizeof(int[2]))

/* Several watchers see every event, in the order they were added. */
START_TEST(watchers_in_order) {
  fx_init();
  struct watcher *w1 = watch(1, W_RECORD);
  watch(2, W_RECORD);
  struct user *a = member("alice", "lobby", NULL);
  say(a, "x");
  say(a, "y");
  EXPECT_WATCHES({1, 1}, {2, 1}, {1, 2}, {2, 2}, {1, 3}, {2, 3});
  clear_seen();
  ck_assert_int_eq(wschat__chat_watch(&F.ch, NULL, NULL, NULL), WSCHAT_EINVAL);
  ck_assert_int_eq(wschat__chat_unwatch(&F.ch, 999), WSCHAT_ENOTFOUND);
  ck_assert_int_eq(wschat__chat_unwatch(&F.ch, w1->handle), 0);
  ck_assert_int_eq(wschat__chat_unwatch(&F.ch, w1->handle), WSCHAT_ENOTFOUND);
  say(a, "z");
  EXPECT_WATCHES({2, 4});
  fx_free();
}
END_TEST

/* An event made inside a watcher is delivered at once but watched after
 * the current one, by every watcher: each sees ids in increasing order. */
START_TEST(watchers_nested_events) {
  fx_init();
  struct user *a = member("alice", "lobby", NULL); /* event 1 */
  watch(1, W_PING);
  watch(2, W_PONG);
  say(a, "ping"); /* 2; w1 makes the notice 3; w2 makes the line 4 */
  EXPECT_WATCHES({1, 2}, {2, 2}, {1, 3}, {2, 3}, {1, 4}, {2, 4});
  EXPECT(a, "[lobby] alice: ping", "pong", "[lobby] bot: pang");
  EXPECT_EVENT(&F.seen[2], WSCHAT_EVENT_NOTICE, "lobby", NULL, NULL, "pong",
               NULL, 0);
  EXPECT_EVENT(&F.seen[4], WSCHAT_EVENT_MESSAGE, "lobby", "bot", NULL, "pang",
               NULL, 0);
  clear_seen();
  say(a, "after"); /* the chat is out of its watchers again */
  EXPECT_WATCHES({1, 5}, {2, 5});
  ck_assert_uint_eq(F.ch.npending, 0);
  fx_free();
}
END_TEST

/* A watcher may unwatch itself or another one from inside its call; one
 * unwatched is not called again, not even for the current event. */
START_TEST(watchers_unwatch_inside) {
  fx_init();
  watch(1, W_UNWATCH_SELF);
  watch(2, W_RECORD);
  struct watcher *w3 = watch(3, W_UNWATCH_OTHER);
  w3->other = 4;
  watch(4, W_RECORD);
  struct user *a = member("alice", "lobby", NULL); /* event 1 */
  say(a, "x");                                     /* event 2 */
  EXPECT_WATCHES({1, 1}, {2, 1}, {3, 1}, {2, 2}, {3, 2});
  ck_assert_uint_eq(F.ch.nwatchers, 2);
  ck_assert_int_eq(wschat__chat_unwatch(&F.ch, F.w[1].handle),
                   WSCHAT_ENOTFOUND);
  fx_free();
}
END_TEST

/* ---- registered commands ---- */

static int roll_cb(struct wschat_client *c, const struct wschat_command *cmd,
                   void *user) {
  ck_assert_ptr_eq(user, &F);
  size_t n;
  const char *s;
  F.roll_calls++;
  F.roll_client = U(c);
  snprintf(F.roll_name, sizeof(F.roll_name), "%s", wschat_command_name(cmd));
  s = wschat_command_args(cmd, &n);
  snprintf(F.roll_args, sizeof(F.roll_args), "%.*s", (int)n, s);
  s = wschat_command_arg(cmd, &n);
  snprintf(F.roll_arg, sizeof(F.roll_arg), "%.*s", (int)n, s);
  s = wschat_command_rest(cmd, &n);
  snprintf(F.roll_rest, sizeof(F.roll_rest), "%.*s", (int)n, s);
  return F.roll_verdict;
}

/* add/remove; built-in names and duplicates are EEXIST, bad names and
 * help lines EINVAL. */
START_TEST(commands_register) {
  fx_init();
  struct wschat__chat *ch = &F.ch;
  ck_assert_int_eq(
      wschat__chat_add_command(ch, "roll", "NdM - roll dice", roll_cb, &F), 0);
  const struct wschat__command *c = wschat__chat_find_command(ch, "ROLL", 4);
  ck_assert_ptr_nonnull(c);
  ck_assert_str_eq(c->name, "roll");
  ck_assert_str_eq(c->help, "NdM - roll dice");
  ck_assert_ptr_eq(c->user, &F);
  ck_assert_ptr_null(wschat__chat_find_command(ch, "rol", 3));
  ck_assert_ptr_null(wschat__chat_find_command(ch, "rolls", 5));

  ck_assert_int_eq(wschat__chat_add_command(ch, "roll", NULL, roll_cb, &F),
                   WSCHAT_EEXIST);
  ck_assert_int_eq(wschat__chat_add_command(ch, "Roll", NULL, roll_cb, &F),
                   WSCHAT_EEXIST);
  static const char *const builtins[] = {
      "help",    "nick", "join", "leave", "part", "rooms", "users", "who",
      "whisper", "w",    "msg",  "me",    "quit", "HELP",  "Who"};
  for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
    ck_assert_msg(wschat__chat_add_command(ch, builtins[i], NULL, roll_cb,
                                           NULL) == WSCHAT_EEXIST,
                  "%s", builtins[i]);

  char help[202];
  memset(help, 'h', sizeof(help));
  help[201] = '\0'; /* 201 bytes */
  static const char *const bad_names[] = {
      "",      "a b",       "/roll",
      "r.oll", "r\xc3\xa9", "a23456789012345678901234567890123"};
  for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
    ck_assert_msg(wschat__chat_add_command(ch, bad_names[i], NULL, roll_cb,
                                           NULL) == WSCHAT_EINVAL,
                  "%s", bad_names[i]);
  ck_assert_int_eq(wschat__chat_add_command(ch, NULL, NULL, roll_cb, NULL),
                   WSCHAT_EINVAL);
  ck_assert_int_eq(wschat__chat_add_command(ch, "dice", NULL, NULL, NULL),
                   WSCHAT_EINVAL);
  ck_assert_int_eq(wschat__chat_add_command(ch, "dice", help, roll_cb, NULL),
                   WSCHAT_EINVAL);
  ck_assert_int_eq(
      wschat__chat_add_command(ch, "dice", "two\nlines", roll_cb, NULL),
      WSCHAT_EINVAL);
  ck_assert_int_eq(
      wschat__chat_add_command(ch, "dice", "a\ttab", roll_cb, NULL),
      WSCHAT_EINVAL);
  ck_assert_int_eq(
      wschat__chat_add_command(ch, "dice", "del\x7f", roll_cb, NULL),
      WSCHAT_EINVAL);
  ck_assert_uint_eq(ch->ncommands, 1);

  help[200] = '\0'; /* 200 bytes: fine */
  ck_assert_int_eq(wschat__chat_add_command(ch, "long", help, roll_cb, NULL),
                   0);
  ck_assert_int_eq(wschat__chat_add_command(ch, "ZAP_2", NULL, roll_cb, NULL),
                   0);
  ck_assert_str_eq(ch->commands[2].name, "zap_2");
  ck_assert_ptr_null(ch->commands[2].help);
  ck_assert_uint_eq(ch->ncommands, 3);

  ck_assert_int_eq(wschat__chat_remove_command(ch, "ROLL"), 0);
  ck_assert_int_eq(wschat__chat_remove_command(ch, "roll"), WSCHAT_ENOTFOUND);
  ck_assert_int_eq(wschat__chat_remove_command(ch, NULL), WSCHAT_ENOTFOUND);
  ck_assert_int_eq(wschat__chat_remove_command(ch, "help"), WSCHAT_ENOTFOUND);
  ck_assert_ptr_null(wschat__chat_find_command(ch, "roll", 4));
  ck_assert_uint_eq(ch->ncommands, 2);
  ck_assert_str_eq(ch->commands[0].name, "long");
  ck_assert_str_eq(ch->commands[1].name, "zap_2");
  /* removed, it may be added again */
  ck_assert_int_eq(wschat__chat_add_command(ch, "roll", NULL, roll_cb, NULL),
                   0);
  fx_free();
}
END_TEST

/* The text protocol hands "/roll ..." to the registered callback; PASS
 * lets the chat answer "! unknown command". */
START_TEST(text_command_dispatch) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  clear_all();
  ck_assert_int_eq(
      wschat__chat_add_command(&F.ch, "roll", "NdM - roll", roll_cb, &F), 0);
  F.roll_verdict = WSCHAT_DROP;
  line(a, "/roll   2d6  fast  ");
  ck_assert_int_eq(F.roll_calls, 1);
  ck_assert_ptr_eq(F.roll_client, a);
  ck_assert_str_eq(F.roll_name, "roll");
  ck_assert_str_eq(F.roll_args, "2d6  fast");
  ck_assert_str_eq(F.roll_arg, "2d6");
  ck_assert_str_eq(F.roll_rest, "fast");
  EXPECT_NO_REPLIES(a);
  EXPECT_NONE(a);
  EXPECT_NONE(b);

  line(b, "/ROLL");
  ck_assert_int_eq(F.roll_calls, 2);
  ck_assert_ptr_eq(F.roll_client, b);
  ck_assert_str_eq(F.roll_name, "ROLL"); /* as typed */
  ck_assert_str_eq(F.roll_args, "");
  ck_assert_str_eq(F.roll_arg, "");
  ck_assert_str_eq(F.roll_rest, "");
  EXPECT_NO_REPLIES(b);

  F.roll_verdict = WSCHAT_PASS;
  line(a, "/roll 1d4");
  ck_assert_int_eq(F.roll_calls, 3);
  EXPECT_REPLIES(a, "! unknown command /roll, try /help");

  ck_assert_int_eq(wschat__chat_remove_command(&F.ch, "roll"), 0);
  line(a, "/roll 1d4");
  ck_assert_int_eq(F.roll_calls, 3);
  EXPECT_REPLIES(a, "! unknown command /roll, try /help");
  line(a, "/foo");
  EXPECT_REPLIES(a, "! unknown command /foo, try /help");
  EXPECT_NONE(a);
  EXPECT_NONE(b);
  fx_free();
}
END_TEST

/* Splits s into lines (in place); returns how many. */
static size_t split_lines(char *s, char **out, size_t cap) {
  size_t n = 0;
  for (char *p = s; n < cap;) {
    out[n++] = p;
    char *nl = strchr(p, '\n');
    if (nl == NULL)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  return n;
}

/* /help lists the built-in commands, then "/NAME HELP" for each registered
 * one in the order added, then the last "Anything else ..." line. */
START_TEST(text_help_lists_commands) {
  fx_init();
  struct user *a = open_text("name=alice");
  clear_all();
  line(a, "/help");
  ck_assert_uint_eq(a->nreplies, 1);
  char *v[32];
  size_t n = split_lines(a->replies[0], v, 32);
  ck_assert_uint_ge(n, 3);
  ck_assert_str_eq(v[0], "* commands:");
  ck_assert_str_eq(v[1], "/help - this list");
  ck_assert_str_eq(v[n - 2], "/quit [REASON] - leave the chat");
  ck_assert(strncmp(v[n - 1], "Anything else ", 14) == 0);
  size_t builtin = n - 1;
  clear_replies(a);

  ck_assert_int_eq(
      wschat__chat_add_command(&F.ch, "roll", "NdM - roll dice", roll_cb, &F),
      0);
  ck_assert_int_eq(wschat__chat_add_command(&F.ch, "Zap", NULL, roll_cb, &F),
                   0);
  line(a, "/HELP");
  ck_assert_uint_eq(a->nreplies, 1);
  n = split_lines(a->replies[0], v, 32);
  ck_assert_uint_eq(n, builtin + 3);
  ck_assert_str_eq(v[builtin - 1], "/quit [REASON] - leave the chat");
  ck_assert_str_eq(v[builtin], "/roll NdM - roll dice");
  ck_assert_str_eq(v[builtin + 1], "/zap");
  ck_assert(strncmp(v[builtin + 2], "Anything else ", 14) == 0);
  clear_replies(a);
  EXPECT_NONE(a);
  fx_free();
}
END_TEST

/* ---- the text protocol's lines ---- */

START_TEST(text_lines) {
  fx_init();
  struct user *a = open_text("name=alice");
  EXPECT_REPLIES(a, "* welcome, alice! you are in #lobby; type /help for "
                    "commands");
  EXPECT_NONE(a);
  struct user *b = open_text("name=ALICE&room=Dev");
  EXPECT_REPLIES(b,
                 "* welcome, guest-1! you are in #Dev; type /help for "
                 "commands",
                 "! name already taken: ALICE");
  ck_assert_int_eq(wschat__chat_move(&F.ch, &b->m, "lobby"), 0);
  clear_all();
  watch(1, W_RECORD);

  line(a, "hi");
  EXPECT(a, "[lobby] alice: hi");
  EXPECT(b, "[lobby] alice: hi");
  line(a, "//x");
  EXPECT(b, "[lobby] alice: /x");
  line(a, "/ x");
  EXPECT(b, "[lobby] alice: / x");
  clear_all();
  clear_seen();

  line(a, "");
  line(a, "   ");
  line(a, "\t \t");
  EXPECT_NONE(a);
  EXPECT_NONE(b);
  EXPECT_NO_REPLIES(a);
  ck_assert_uint_eq(F.nseen, 0);

  /* Control characters are shown as spaces; the event keeps the text. */
  line(a, "a\rb\x01"
          "c\x7f"
          "d\ne");
  EXPECT(b, "[lobby] alice: a b c d e");
  ck_assert_uint_eq(F.nseen, 1);
  ck_assert_str_eq(F.seen[0].text, "a\rb\x01"
                                   "c\x7f"
                                   "d\ne");
  line(a, "/me waves\x1b[31m");
  EXPECT(b, "* alice waves [31m");
  line(a, "/me");
  EXPECT_REPLIES(a, "! usage: /me ACTION");
  clear_all();
  fx_free();
}
END_TEST

START_TEST(text_join) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  clear_all();
  line(a, "/join");
  EXPECT_REPLIES(a, "! usage: /join ROOM");
  line(a, "/join bad/room");
  EXPECT_REPLIES(
      a, "! invalid room name: bad/room (use 1-64 letters, digits, -, _ or .)");
  line(a, "/join LOBBY");
  EXPECT_REPLIES(a, "! you are already in #lobby");
  EXPECT_NONE(a);
  EXPECT_NONE(b);

  line(a, "/JOIN Dev");
  EXPECT(a, "* alice joined #Dev");
  EXPECT(b, "* alice left #lobby");
  EXPECT_ROOMS(a, "Dev");
  line(a, "/join dev");
  EXPECT_REPLIES(a, "! you are already in #Dev");
  line(a, "/leave");
  EXPECT(a, "* alice joined #lobby");
  EXPECT(b, "* alice joined #lobby");
  ck_assert_ptr_null(room("dev"));
  line(a, "/part");
  EXPECT_REPLIES(a, "! you are already in #lobby");
  EXPECT_NONE(a);
  EXPECT_NONE(b);
  fx_free();
}
END_TEST

/* /users, /users * and /rooms: sorted by name, whatever the case. */
START_TEST(text_users_and_rooms) {
  fx_init();
  struct user *c = open_text("name=carol");
  struct user *b = open_text("name=Bob&room=dev");
  struct user *a = open_text("name=alice");
  open_text("name=dave&room=zeta");
  clear_all();
  line(a, "/users");
  EXPECT_REPLIES(a, "* users in #lobby: alice, carol");
  line(a, "/who");
  EXPECT_REPLIES(a, "* users in #lobby: alice, carol");
  line(b, "/users");
  EXPECT_REPLIES(b, "* users in #dev: Bob");
  line(c, "/users *");
  EXPECT_REPLIES(c, "* users: alice (#lobby), Bob (#dev), carol (#lobby), "
                    "dave (#zeta)");
  line(c, "/users x");
  EXPECT_REPLIES(c, "! usage: /users or /users *");
  line(c, "/rooms");
  EXPECT_REPLIES(c, "* rooms: dev (1), lobby (2), zeta (1)");
  /* a member in two rooms is counted in each, listed once, by its
   * current room */
  ck_assert_int_eq(wschat__chat_join(&F.ch, &b->m, "Alpha", 0), 0);
  line(c, "/rooms");
  EXPECT_REPLIES(c, "* rooms: Alpha (1), dev (1), lobby (2), zeta (1)");
  line(c, "/users *");
  EXPECT_REPLIES(c, "* users: alice (#lobby), Bob (#Alpha), carol (#lobby), "
                    "dave (#zeta)");
  EXPECT_NONE(c);
  fx_free();
}
END_TEST

START_TEST(text_whisper_and_nick) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob&room=dev");
  clear_all();
  line(a, "/w nobody hi");
  EXPECT_REPLIES(a, "! no such user: nobody");
  line(a, "/w bob");
  EXPECT_REPLIES(a, "! usage: /whisper NAME TEXT");
  line(a, "/msg BOB  hi  there ");
  EXPECT(b, "[whisper from alice] hi  there");
  EXPECT(a, "[whisper to bob] hi  there");
  EXPECT_NO_REPLIES(a);

  struct wschat__presence *p = F.ch.presence;
  ck_assert_int_eq(p->ops->reserve(p, "admin"), 0);
  line(a, "/nick admin");
  EXPECT_REPLIES(a, "! name reserved: admin");
  line(a, "/nick BOB");
  EXPECT_REPLIES(a, "! name already taken: BOB");
  line(a, "/nick alice");
  EXPECT_REPLIES(a, "! you are already alice");
  line(a, "/nick");
  EXPECT_REPLIES(a, "! usage: /nick NAME");
  line(a, "/nick bad.name");
  EXPECT_REPLIES(a, "! invalid name: bad.name (use 1-32 letters, digits, - "
                    "or _)");
  ck_assert_str_eq(a->m.name, "alice");
  EXPECT_NONE(a);
  line(a, "/nick al");
  EXPECT(a, "* alice is now known as al");
  EXPECT_NONE(b); /* not in a room with her */
  EXPECT_NO_REPLIES(a);
  fx_free();
}
END_TEST

START_TEST(text_quit) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  clear_all();
  F.nhooks = 0;
  line(a, "/quit gone\x01"
          "fishing");
  EXPECT(b, "* alice left #lobby (gone fishing)");
  EXPECT_NONE(a);
  ck_assert_int_eq(a->quits, 1);
  ck_assert_str_eq(a->quit_reason, "gone fishing");
  ck_assert_int_eq(a->m.attached, 0);
  ck_assert_ptr_null(find("alice"));
  EXPECT_HOOKS("leave alice lobby gone fishing");
  line(b, "/quit");
  ck_assert_int_eq(b->quits, 1);
  ck_assert_str_eq(b->quit_reason, "(null)");
  fx_free();
}
END_TEST

/* ---- flood control's bucket ---- */

START_TEST(bucket_burst_then_rate) {
  struct wschat__bucket b = {0}; /* zeroed: full */
  uint64_t t = 5000000;
  for (int i = 0; i < 40; i++)
    ck_assert_int_eq(wschat__bucket_take(&b, 20, 40, t), 1);
  ck_assert_int_eq(wschat__bucket_take(&b, 20, 40, t), 0);
  ck_assert_int_eq(wschat__bucket_take(&b, 20, 40, t + 49), 0);
  ck_assert_int_eq(wschat__bucket_take(&b, 20, 40, t + 50), 1); /* 1/20 s */
  ck_assert_int_eq(wschat__bucket_take(&b, 20, 40, t + 50), 0);
  /* A refusal takes nothing: 10 tokens back after 500 ms. */
  int n = 0;
  while (wschat__bucket_take(&b, 20, 40, t + 550))
    n++;
  ck_assert_int_eq(n, 10);
  /* Never more than the burst, however long it rested (a day). */
  n = 0;
  while (wschat__bucket_take(&b, 20, 40, t + 86400000))
    n++;
  ck_assert_int_eq(n, 40);
  /* Slow rates keep their fractions: 1 a second, burst 1. */
  struct wschat__bucket s = {0};
  ck_assert_int_eq(wschat__bucket_take(&s, 1, 1, 1000), 1);
  for (uint64_t ms = 1000; ms < 2000; ms += 250)
    ck_assert_int_eq(wschat__bucket_take(&s, 1, 1, ms), 0);
  ck_assert_int_eq(wschat__bucket_take(&s, 1, 1, 2000), 1);
  /* The largest rate and burst do not overflow. */
  struct wschat__bucket big = {0};
  ck_assert_int_eq(wschat__bucket_take(&big, 1000000, 1000000, UINT64_MAX / 2),
                   1);
}
END_TEST

/* Code points that make a line read as something else are shown as one
 * space each, in lines, actions, whispers and leave reasons; the event
 * (what JSON clients and watchers get) keeps the text. */
START_TEST(text_invisible_blanked) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  clear_all();
  watch(1, W_RECORD);
  static const char *const bad[] = {
      "\xc2\x80",     "\xc2\x85",     "\xc2\x9f",     /* C1, NEL */
      "\xd8\x9c",                                     /* ALM */
      "\xe2\x80\x8b", "\xe2\x80\x8d", "\xe2\x80\x8f", /* ZWSP ZWJ RLM */
      "\xe2\x80\xa8", "\xe2\x80\xa9",                 /* LS PS */
      "\xe2\x80\xaa", "\xe2\x80\xae",                 /* LRE RLO */
      "\xe2\x81\xa0", "\xe2\x81\xa6", "\xe2\x81\xa9", /* WJ LRI PDI */
      "\xef\xbb\xbf",                                 /* BOM */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[32];
    snprintf(text, sizeof(text), "a%sb%s", bad[i], bad[i]);
    line(a, text);
    EXPECT(b, "[lobby] alice: a b ");
    ck_assert_str_eq(F.seen[F.nseen - 1].text, text);
  }
  /* Neighbours that stay: U+00A0, U+00E9, U+200A, U+2010, U+2027, U+202F,
   * U+205F, U+2070, U+FEFE, U+FFFD, an emoji. */
  static const char keep[] = "\xc2\xa0\xc3\xa9\xe2\x80\x8a\xe2\x80\x90\xe2\x80"
                             "\xa7\xe2\x80\xaf\xe2\x81\x9f\xe2\x81\xb0\xef\xbb"
                             "\xbe\xef\xbf\xbd\xf0\x9f\x98\x80";
  line(a, keep);
  char want[128];
  snprintf(want, sizeof(want), "[lobby] alice: %s", keep);
  EXPECT(b, want);
  line(a, "/me waves \xe2\x80\xae"
          "evil");
  EXPECT(b, "* alice waves  evil");
  line(a, "/w bob psst\xe2\x80\xa8[lobby] x");
  EXPECT(b, "[whisper from alice] psst [lobby] x");
  line(a, "/quit bye\xc2\x85* alice joined #lobby");
  EXPECT(b, "* alice left #lobby (bye * alice joined #lobby)");
  fx_free();
}
END_TEST

/* An action that would read exactly like a server notice is refused. */
START_TEST(text_me_forging_a_notice) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  clear_all();
  static const char *const forged[] = {
      "/me is now known as bob",
      "/me left #lobby",
      "/me left #lobby (gone fishing)",
      "/me joined #dev",
      "/me JOINED #dev",
      "/me  \x01"
      " joined #dev",
      "/me \xe2\x80\x8b"
      "left #dev",
      "/me \xef\xbb\xbf"
      "is now known as x",
  };
  for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
    line(a, forged[i]);
    EXPECT_REPLIES(a, "! that action would read like a server notice: say "
                      "it another way");
    EXPECT_NONE(b);
  }
  /* Close, but not the form of a notice: said. */
  static const char *const fine[][2] = {
      {"/me left", "* alice left"},
      {"/me joined", "* alice joined"},
      {"/me left the building", "* alice left the building"},
      {"/me is now known", "* alice is now known"},
      {"/me joined#dev", "* alice joined#dev"},
      {"/me in #dev: alice", "* alice in #dev: alice"},
  };
  for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
    line(a, fine[i][0]);
    EXPECT(b, fine[i][1]);
  }
  EXPECT_NO_REPLIES(a);
  /* The replies a client named after their first word could imitate. */
  line(a, "/nick users");
  line(b, "/nick no");
  clear_all();
  line(a, "/me in #lobby: alice, bob");
  EXPECT_REPLIES(a, "! that action would read like a server notice: say "
                    "it another way");
  line(b, "/me history in #lobby");
  EXPECT_REPLIES(b, "! that action would read like a server notice: say "
                    "it another way");
  line(b, "/me in #lobby: alice");
  EXPECT(a, "* no in #lobby: alice");
  fx_free();
}
END_TEST

/* A /quit reason is cut to what a close frame holds (123 bytes), at a
 * character's start, for the leave notice as for the close. */
START_TEST(text_quit_reason_bounded) {
  fx_init();
  struct user *a = open_text("name=alice");
  struct user *b = open_text("name=bob");
  struct user *c = open_text("name=carol");
  clear_all();
  char quit[600], want[200];
  memcpy(quit, "/quit ", 6);
  memset(quit + 6, 'r', 500);
  quit[506] = '\0';
  line(a, quit);
  snprintf(want, sizeof(want), "* alice left #lobby (%.123s)", quit + 6);
  EXPECT(b, want);
  EXPECT(c, want);
  /* e-acute is two bytes: 61 of them are 122 bytes; the 62nd would cut. */
  memcpy(quit, "/quit ", 6);
  for (int i = 0; i < 100; i++)
    memcpy(quit + 6 + 2 * i, "\xc3\xa9", 2);
  quit[206] = '\0';
  line(b, quit);
  snprintf(want, sizeof(want), "* bob left #lobby (%.122s)", quit + 6);
  EXPECT(c, want);
  fx_free();
}
END_TEST

/* ---- exit ---- */

/* Every room of a member that exits is told, with the reason, newest room
 * first; the member itself gets nothing more. */
START_TEST(exit_tells_every_room) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", "ops", NULL);
  struct user *b = member("bob", "lobby", "dev", "ops", NULL);
  struct user *c = member("carol", "dev", NULL);
  clear_all();
  F.nhooks = 0;
  wschat__chat_exit(&F.ch, &a->m, "kicked");
  EXPECT(b, "* alice left #ops (kicked)", "* alice left #dev (kicked)",
         "* alice left #lobby (kicked)");
  EXPECT(c, "* alice left #dev (kicked)");
  EXPECT_NONE(a);
  EXPECT_HOOKS("leave alice ops kicked", "leave alice dev kicked",
               "leave alice lobby kicked");
  ck_assert_int_eq(a->m.nrooms, 0);
  ck_assert_ptr_null(a->m.rooms);
  ck_assert_uint_eq(room("lobby")->n, 1);
  ck_assert_uint_eq(room("dev")->n, 2);
  ck_assert_uint_eq(F.ch.rooms.nall, 2);

  wschat__chat_exit(&F.ch, &a->m, "again");
  EXPECT_NONE(b);
  EXPECT_NO_HOOKS();
  wschat__chat_exit(&F.ch, &c->m, NULL);
  EXPECT(b, "* carol left #dev");
  fx_free();
}
END_TEST

/* Shutting down (silent_leaves): no leave is told, to anyone; the hooks
 * still run and the names are freed. */
START_TEST(exit_silent) {
  fx_init();
  struct user *a = member("alice", "lobby", "dev", NULL);
  struct user *b = member("bob", "lobby", "dev", NULL);
  clear_all();
  F.nhooks = 0;
  watch(1, W_RECORD);
  F.ch.silent_leaves = 1;
  wschat__chat_exit(&F.ch, &a->m, "bye");
  EXPECT_NONE(b);
  EXPECT_NONE(a);
  ck_assert_uint_eq(F.nseen, 0);
  EXPECT_HOOKS("leave alice dev bye", "leave alice lobby bye");
  ck_assert_ptr_null(find("alice"));
  ck_assert_uint_eq(room("lobby")->n, 1);
  ck_assert_uint_eq(room("dev")->n, 1);
  fx_free();
}
END_TEST

int main(void) {
  Suite *s = suite_create("chat");
  TCase *tc = tcase_create("chat");
  tcase_add_test(tc, event_fields);
  tcase_add_test(tc, event_nick);
  tcase_add_test(tc, event_whisper);
  tcase_add_test(tc, event_notice_and_say_as);
  tcase_add_test(tc, frame_shared_once);
  tcase_add_test(tc, rooms_join);
  tcase_add_test(tc, rooms_leave);
  tcase_add_test(tc, rooms_move);
  tcase_add_test(tc, rooms_move_to_member_room);
  tcase_add_test(tc, rooms_lobby_and_reaping);
  tcase_add_test(tc, quiet_rooms);
  tcase_add_test(tc, quiet_never);
  tcase_add_test(tc, names_guest_and_taken);
  tcase_add_test(tc, names_reserved);
  tcase_add_test(tc, names_rename);
  tcase_add_test(tc, names_exit_frees);
  tcase_add_test(tc, nick_once_per_member);
  tcase_add_test(tc, nick_once_with_nested_rename);
  tcase_add_test(tc, presence_told_of_memberships);
  tcase_add_test(tc, watchers_in_order);
  tcase_add_test(tc, watchers_nested_events);
  tcase_add_test(tc, watchers_unwatch_inside);
  tcase_add_test(tc, watcher_exits_member_mid_leave);
  tcase_add_test(tc, watcher_exits_member_mid_move);
  tcase_add_test(tc, watcher_exits_member_mid_move_to_new_room);
  tcase_add_test(tc, commands_register);
  tcase_add_test(tc, text_command_dispatch);
  tcase_add_test(tc, text_help_lists_commands);
  tcase_add_test(tc, text_lines);
  tcase_add_test(tc, text_join);
  tcase_add_test(tc, text_users_and_rooms);
  tcase_add_test(tc, text_whisper_and_nick);
  tcase_add_test(tc, text_quit);
  tcase_add_test(tc, text_quit_reason_bounded);
  tcase_add_test(tc, bucket_burst_then_rate);
  tcase_add_test(tc, text_invisible_blanked);
  tcase_add_test(tc, text_me_forging_a_notice);
  tcase_add_test(tc, exit_tells_every_room);
  tcase_add_test(tc, exit_silent);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
