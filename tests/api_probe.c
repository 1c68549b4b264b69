/*
 * api_probe: every public call of libwschat, as an embedding program sees
 * it. tests/e2e/test_api.py drives it; nothing else should.
 *
 *   api_probe [PORT]     (0 or nothing: a free port)
 *
 * It owns its libuv loop (uv_default_loop()), runs the chat on it, wires
 * every hook and logs each call as one line on stdout, flushed:
 *
 *   connect ID PATH QUERY|-          join ID NAME ROOM
 *   leave ID NAME ROOM REASON|-      disconnect ID NAME|- CODE
 *   message ID NAME|- text TEXT      message ID NAME|- binary LEN
 *   shutdown                         exit free=N loop=N
 *
 * Its own commands (DROPped, except /shout, which is rewritten and PASSed):
 *   /shout TEXT     wschat_message_replace() with TEXT upper-cased
 *   /drop           dropped silently
 *   /all TEXT       wschat_server_broadcast() to everyone but the sender
 *   /to ROOM TEXT   wschat_server_broadcast() to ROOM ("! ERROR" if none)
 *   /move ROOM      wschat_client_join()
 *   /home           wschat_client_leave()
 *   /rename NAME    wschat_client_rename()
 *   /kick NAME      wschat_server_find_client() + wschat_client_close(4002)
 *   /bye            wschat_client_close(4003) of the sender, then the
 *                   calls a closing client must refuse
 *   /list           wschat_server_rooms() + wschat_server_members()
 *   /whoami         id, name, room, peer, path, query, user data (X-Tag)
 *   /threads N      a pthread posts N lines to the sender's room
 *   /stop           a pthread calls wschat_server_post_shutdown()
 *   /binary         wschat_client_send_binary() of 00 ff 01 80
 * Errors come back to the sender as "! " + wschat_strerror().
 *
 *   /halt           wschat_server_shutdown() from inside a hook
 *
 * Paths in on_connect: /reject-http (403 "go away"), /reject-ws (4001 "not
 * today"), /close-ws (wschat_client_close(4005, "closed early")), /halt
 * (wschat_server_shutdown() from on_connect). Rooms in on_join: "trap" (the
 * hook moves the client on to "jail"), "doom" (the hook closes it, 4004).
 * Calls whose result the API states are checked where they are made; a
 * wrong result prints "check FAIL ..." (the tests require none).
 * SIGTERM shuts down; the exit status is 0 only if wschat_server_free() and
 * uv_loop_close() both return 0 (nothing leaked on the loop) and every
 * connect had its disconnect.
 */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <wschat.h>

#define MAX_THREADS 16
#define MAX_MESSAGE 65536

struct worker {
  pthread_t tid;
  int started, done, joined; /* done: under app.lock */
  int n;                     /* lines to post (0: post a shutdown instead) */
  char room[65];
};

struct app {
  uv_loop_t *loop;
  struct wschat_server *srv;
  uv_signal_t sigterm;
  uv_async_t worker_done; /* a worker finished: join it on the loop */
  pthread_mutex_t lock;
  struct worker workers[MAX_THREADS];
  long live; /* connects minus disconnects */
  int own_closed;
  int failures;
};

static struct app app;

/* ---- logging ---- */

__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap); // NOLINT(clang-analyzer-valist.*): clang-14 false positive
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      app.failures++;                                                          \
      printf("check FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
      logf_(__VA_ARGS__);                                                      \
    }                                                                          \
  } while (0)

static const char *or_dash(const char *s) { return s && s[0] ? s : "-"; }

/* "! " + the error's description, to the client. */
static void reply_error(struct wschat_client *c, int err) {
  char line[160];
  int n = snprintf(line, sizeof(line), "! %s", wschat_strerror(err));
  int r = wschat_client_send(c, line, (size_t)n);
  CHECK(r == 0, "send of an error line: %d", r);
}

static void reply(struct wschat_client *c, const char *line, size_t len) {
  int r = wschat_client_send(c, line, len);
  CHECK(r == 0, "wschat_client_send: %d", r);
}

/* ---- checks that hold for any open client outside on_connect ---- */

static void check_open_client(struct wschat_client *c) {
  char buf[64];
  int r = wschat_client_reject(c, 403, "late");
  CHECK(r == WSCHAT_ESTATE, "reject outside on_connect: %d", r);
  r = wschat_client_header(c, "Host", buf, sizeof(buf));
  CHECK(r < 0, "header outside on_connect: %d", r);
  r = wschat_client_send(c, "\xff\xfe", 2);
  CHECK(r == WSCHAT_EINVAL, "send of invalid UTF-8: %d", r);
  r = wschat_client_send(c, "\xc3", 1); /* a cut 2-byte sequence */
  CHECK(r == WSCHAT_EINVAL, "send of cut UTF-8: %d", r);
  r = wschat_client_close(c, 1005, NULL); /* reserved: never sent */
  CHECK(r == WSCHAT_EINVAL, "close with 1005: %d", r);
  r = wschat_client_close(c, 2999, NULL);
  CHECK(r == WSCHAT_EINVAL, "close with 2999: %d", r);
  char longreason[130];
  memset(longreason, 'x', sizeof(longreason) - 1);
  longreason[sizeof(longreason) - 1] = '\0';
  r = wschat_client_close(c, 4000, longreason);
  CHECK(r == WSCHAT_EINVAL, "close with a 129-byte reason: %d", r);
  r = wschat_client_join(c, "bad room!");
  CHECK(r == WSCHAT_EROOM, "join of an invalid room: %d", r);
  r = wschat_client_join(c, NULL);
  CHECK(r == WSCHAT_EROOM, "join of NULL: %d", r);
  r = wschat_client_rename(c, "no spaces allowed");
  CHECK(r == WSCHAT_ENAME, "rename to an invalid name: %d", r);
  r = wschat_client_rename(c, NULL);
  CHECK(r == WSCHAT_ENAME, "rename to NULL: %d", r);
  CHECK(wschat_server_find_client(app.srv, wschat_client_name(c)) == c,
        "find_client(%s) is not the client", wschat_client_name(c));
  r = wschat_server_free(app.srv);
  CHECK(r == WSCHAT_ESTATE, "free with clients open: %d", r);
}

/* ---- hooks ---- */

static void on_shutdown(struct wschat_server *srv, void *user);

static int on_connect(struct wschat_client *c, void *user) {
  CHECK(user == &app, "on_connect user pointer");
  app.live++;
  const char *path = wschat_client_path(c);
  logf_("connect %llu %s %s", (unsigned long long)wschat_client_id(c), path,
        or_dash(wschat_client_query(c)));
  CHECK(strcmp(wschat_client_name(c), "") == 0, "name in on_connect: %s",
        wschat_client_name(c));
  CHECK(wschat_client_room(c) == NULL, "room in on_connect");
  CHECK(wschat_client_get_data(c) == NULL, "data of a new client");

  char tag[64];
  int r = wschat_client_header(c, "x-tag", tag, sizeof(tag));
  if (r >= 0) {
    CHECK((size_t)r == strlen(tag), "header length %d for %s", r, tag);
    char small[2];
    int r2 = wschat_client_header(c, "X-TAG", small, sizeof(small));
    CHECK(r < 2 || r2 == WSCHAT_EINVAL, "header into a small buffer: %d", r2);
    char *copy = strdup(tag);
    CHECK(copy != NULL, "strdup");
    wschat_client_set_data(c, copy);
  } else {
    CHECK(r == WSCHAT_ENOTFOUND, "header X-Tag absent: %d", r);
  }
  r = wschat_client_header(c, "Sec-WebSocket-Key", tag, sizeof(tag));
  CHECK(r > 0, "header Sec-WebSocket-Key: %d", r);
  r = wschat_client_header(c, "X-Not-Sent-By-Anyone", tag, sizeof(tag));
  CHECK(r == WSCHAT_ENOTFOUND, "header not sent: %d", r);

  r = wschat_client_reject(c, 200, "no");
  CHECK(r == WSCHAT_EINVAL, "reject with 200: %d", r);
  r = wschat_client_reject(c, 1005, "no");
  CHECK(r == WSCHAT_EINVAL, "reject with 1005: %d", r);
  if (strcmp(path, "/reject-http") == 0) {
    r = wschat_client_reject(c, 403, "go away");
    CHECK(r == 0, "reject 403: %d", r);
  } else if (strcmp(path, "/reject-ws") == 0) {
    r = wschat_client_reject(c, 4001, "not today");
    CHECK(r == 0, "reject 4001: %d", r);
  } else if (strcmp(path, "/close-ws") == 0) {
    r = wschat_client_close(c, 4005, "closed early");
    CHECK(r == 0, "close in on_connect: %d", r);
  } else if (strcmp(path, "/halt") == 0) {
    r = wschat_server_shutdown(app.srv, on_shutdown, &app);
    CHECK(r == 0, "shutdown in on_connect: %d", r);
  }
  return 0;
}

static void on_disconnect(struct wschat_client *c, int code, void *user) {
  CHECK(user == &app, "on_disconnect user pointer");
  app.live--;
  const char *name = wschat_client_name(c);
  logf_("disconnect %llu %s %d", (unsigned long long)wschat_client_id(c),
        or_dash(name), code);
  CHECK(wschat_client_room(c) == NULL, "still in #%s in on_disconnect",
        wschat_client_room(c));
  CHECK(!name[0] || wschat_server_find_client(app.srv, name) != c,
        "a gone client is still found by name %s", name);
  int r = wschat_client_send(c, "late", 4);
  CHECK(r == WSCHAT_ECLOSED, "send in on_disconnect: %d", r);
  r = wschat_client_close(c, 1000, NULL);
  CHECK(r == WSCHAT_ECLOSED, "close in on_disconnect: %d", r);
  r = wschat_client_join(c, "elsewhere");
  CHECK(r == WSCHAT_ECLOSED, "join in on_disconnect: %d", r);
  r = wschat_client_rename(c, "someone-else");
  CHECK(r == WSCHAT_ECLOSED, "rename in on_disconnect: %d", r);
  free(wschat_client_get_data(c));
  wschat_client_set_data(c, NULL);
}

static void on_join(struct wschat_client *c, const char *room, void *user) {
  CHECK(user == &app, "on_join user pointer");
  logf_("join %llu %s %s", (unsigned long long)wschat_client_id(c),
        wschat_client_name(c), room);
  CHECK(wschat_client_room(c) && strcmp(wschat_client_room(c), room) == 0,
        "on_join(%s) but the client is in %s", room,
        or_dash(wschat_client_room(c)));
  int r = wschat_client_join(c, room);
  CHECK(r == WSCHAT_ESAMEROOM, "join of the room it is in: %d", r);
  check_open_client(c);
  if (strcmp(room, "trap") == 0) {
    r = wschat_client_join(c, "jail");
    CHECK(r == 0, "join from on_join: %d", r);
  } else if (strcmp(room, "doom") == 0) {
    r = wschat_client_close(c, 4004, "doomed");
    CHECK(r == 0, "close from on_join: %d", r);
  }
}

static void on_leave(struct wschat_client *c, const char *room,
                     const char *reason, void *user) {
  CHECK(user == &app, "on_leave user pointer");
  logf_("leave %llu %s %s %s", (unsigned long long)wschat_client_id(c),
        wschat_client_name(c), room, or_dash(reason));
  CHECK(!wschat_client_room(c) || strcmp(wschat_client_room(c), room) != 0,
        "on_leave(%s) but the client is still there", room);
}

/* ---- /list: the visitors ---- */

struct listing {
  char line[2048];
  size_t len;
  size_t members_seen;
};

static void add(struct listing *l, const char *s) {
  int n = snprintf(l->line + l->len, sizeof(l->line) - l->len, "%s", s);
  if (n > 0)
    l->len += (size_t)n < sizeof(l->line) - l->len
                  ? (size_t)n
                  : sizeof(l->line) - l->len - 1;
}

struct names {
  const char *v[64];
  size_t n;
};

static int collect_member(struct wschat_client *c, void *user) {
  struct names *ns = user;
  if (ns->n < 64)
    ns->v[ns->n++] = wschat_client_name(c);
  return 0;
}

static int stop_at_first_member(struct wschat_client *c, void *user) {
  (void)c;
  ++*(size_t *)user;
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* " ROOM=N:a,b" for each room, members sorted (the API gives no order). */
static int visit_room(const char *room, size_t members, void *user) {
  struct listing *l = user;
  struct names ns = {.n = 0};
  size_t n = wschat_server_members(app.srv, room, collect_member, &ns);
  CHECK(n == members && n == ns.n, "room %s: %zu members, %zu visited, %zu",
        room, members, n, ns.n);
  qsort(ns.v, ns.n, sizeof(ns.v[0]), by_name);
  char head[96];
  snprintf(head, sizeof(head), " %s=%zu:", room, members);
  add(l, head);
  for (size_t i = 0; i < ns.n; i++) {
    if (i)
      add(l, ",");
    add(l, ns.v[i]);
  }
  l->members_seen += members;
  return 0;
}

static int stop_at_first_room(const char *room, size_t members, void *user) {
  (void)room;
  (void)members;
  ++*(size_t *)user;
  return 1;
}

static void cmd_list(struct wschat_client *c) {
  struct listing l = {.len = 0};
  add(&l, "* list");
  size_t rooms = wschat_server_rooms(app.srv, visit_room, &l);
  struct names all = {.n = 0};
  size_t everyone = wschat_server_members(app.srv, NULL, collect_member, &all);
  CHECK(everyone == l.members_seen && everyone == all.n,
        "members(NULL) %zu, sum of rooms %zu", everyone, l.members_seen);
  char tail[64];
  snprintf(tail, sizeof(tail), " rooms=%zu everyone=%zu", rooms, everyone);
  add(&l, tail);

  /* Stopping early, and a room that does not exist. */
  size_t calls = 0;
  size_t r = wschat_server_rooms(app.srv, stop_at_first_room, &calls);
  CHECK(r == 1 && calls == 1, "rooms visitor stopping at once: %zu, %zu", r,
        calls);
  calls = 0;
  r = wschat_server_members(app.srv, wschat_client_room(c),
                            stop_at_first_member, &calls);
  CHECK(r == 1 && calls == 1, "members visitor stopping at once: %zu, %zu", r,
        calls);
  calls = 0;
  r = wschat_server_members(app.srv, "no-such-room", stop_at_first_member,
                            &calls);
  CHECK(r == 0 && calls == 0, "members of a missing room: %zu, %zu", r, calls);
  reply(c, l.line, l.len);
}

/* ---- /threads and /stop: real threads ---- */

static void *worker_main(void *arg) {
  struct worker *w = arg;
  if (w->n == 0) {
    int r = wschat_server_post_shutdown(app.srv);
    CHECK(r == 0, "post_shutdown: %d", r);
  } else {
    for (int i = 1; i <= w->n; i++) {
      char line[64];
      int n = snprintf(line, sizeof(line), "* thread line %d/%d", i, w->n);
      int r = wschat_server_post_broadcast(app.srv, w->room, line, (size_t)n);
      CHECK(r == 0 || r == WSCHAT_ECLOSED, "post_broadcast: %d", r);
    }
    int r = wschat_server_post_broadcast(app.srv, NULL, "\xff", 1);
    CHECK(r == WSCHAT_EINVAL, "post_broadcast of invalid UTF-8: %d", r);
  }
  pthread_mutex_lock(&app.lock);
  w->done = 1;
  pthread_mutex_unlock(&app.lock);
  uv_async_send(&app.worker_done);
  return NULL;
}

/* Joins every finished worker (all of them if wait_all). */
static void join_workers(int wait_all) {
  for (int i = 0; i < MAX_THREADS; i++) {
    struct worker *w = &app.workers[i];
    pthread_mutex_lock(&app.lock);
    int ready = w->started && !w->joined && (w->done || wait_all);
    pthread_mutex_unlock(&app.lock);
    if (!ready)
      continue;
    pthread_join(w->tid, NULL);
    pthread_mutex_lock(&app.lock);
    w->joined = 1;
    w->started = 0;
    pthread_mutex_unlock(&app.lock);
  }
}

static void on_worker_done(uv_async_t *a) {
  (void)a;
  join_workers(0);
}

/* Starts a worker: n lines to room, or (n == 0) a posted shutdown. */
static int start_worker(int n, const char *room) {
  for (int i = 0; i < MAX_THREADS; i++) {
    struct worker *w = &app.workers[i];
    if (w->started)
      continue;
    memset(w, 0, sizeof(*w));
    w->n = n;
    snprintf(w->room, sizeof(w->room), "%s", room ? room : "");
    if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
      return WSCHAT_EIO;
    w->started = 1;
    return 0;
  }
  return WSCHAT_ENOMEM;
}

/* ---- on_message: the commands ---- */

/* Is text (len bytes) "/word" or "/word ARG"? Sets *arg, *arglen. */
static int is_cmd(const char *text, size_t len, const char *word,
                  const char **arg, size_t *arglen) {
  size_t wl = strlen(word);
  if (len < wl || memcmp(text, word, wl) != 0 || (len > wl && text[wl] != ' '))
    return 0;
  *arg = len > wl ? text + wl + 1 : text + len;
  *arglen = len > wl ? len - wl - 1 : 0;
  return 1;
}

/* Copies a command argument into buf (NUL-ended, cut to fit). */
static const char *argz(char *buf, size_t cap, const char *arg, size_t len) {
  if (len >= cap)
    len = cap - 1;
  memcpy(buf, arg, len);
  buf[len] = '\0';
  return buf;
}

static int cmd_shout(struct wschat_message *m, const char *arg, size_t len) {
  size_t olen;
  const char *orig = wschat_message_text(m, &olen);
  /* Failed replacements leave the message as it was. */
  int r = wschat_message_replace(m, "\xff", 1);
  CHECK(r == WSCHAT_EINVAL, "replace with invalid UTF-8: %d", r);
  char *big = malloc(MAX_MESSAGE + 1);
  CHECK(big != NULL, "malloc");
  if (big) {
    memset(big, 'a', MAX_MESSAGE + 1);
    r = wschat_message_replace(m, big, MAX_MESSAGE + 1);
    CHECK(r == WSCHAT_ETOOBIG, "replace over the maximum: %d", r);
    free(big);
  }
  size_t now;
  const char *t = wschat_message_text(m, &now);
  CHECK(t == orig && now == olen, "a failed replace changed the message");

  char up[512];
  size_t n = len < sizeof(up) ? len : sizeof(up);
  for (size_t i = 0; i < n; i++)
    up[i] = (char)toupper((unsigned char)arg[i]);
  r = wschat_message_replace(m, up, n);
  CHECK(r == 0, "replace: %d", r);
  t = wschat_message_text(m, &now);
  CHECK(now == n && memcmp(t, up, n) == 0, "text after replace");
  return WSCHAT_PASS;
}

static int on_message(struct wschat_client *c, struct wschat_message *m,
                      void *user) {
  CHECK(user == &app, "on_message user pointer");
  size_t len;
  const char *text = wschat_message_text(m, &len);
  unsigned long long id = (unsigned long long)wschat_client_id(c);
  const char *name = or_dash(wschat_client_name(c));
  if (wschat_message_is_binary(m)) {
    logf_("message %llu %s binary %zu", id, name, len);
    return WSCHAT_PASS;
  }
  char shown[256];
  size_t sl = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;
  for (size_t i = 0; i < sl; i++)
    shown[i] = (unsigned char)text[i] < 0x20 ? '?' : text[i];
  shown[sl] = '\0';
  logf_("message %llu %s text %s", id, name, shown);
  check_open_client(c);

  const char *arg;
  size_t al;
  char a1[128];
  int r;
  if (is_cmd(text, len, "/shout", &arg, &al))
    return cmd_shout(m, arg, al);
  if (is_cmd(text, len, "/drop", &arg, &al))
    return WSCHAT_DROP;
  if (is_cmd(text, len, "/all", &arg, &al)) {
    r = wschat_server_broadcast(app.srv, NULL, arg, al, c);
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/to", &arg, &al)) {
    const char *sp = memchr(arg, ' ', al);
    size_t rl = sp ? (size_t)(sp - arg) : al;
    argz(a1, sizeof(a1), arg, rl);
    const char *body = sp ? sp + 1 : arg + al;
    r = wschat_server_broadcast(app.srv, a1, body, (size_t)(arg + al - body),
                                NULL);
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/move", &arg, &al)) {
    r = wschat_client_join(c, argz(a1, sizeof(a1), arg, al));
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/home", &arg, &al)) {
    r = wschat_client_leave(c);
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/rename", &arg, &al)) {
    r = wschat_client_rename(c, argz(a1, sizeof(a1), arg, al));
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/kick", &arg, &al)) {
    struct wschat_client *o =
        wschat_server_find_client(app.srv, argz(a1, sizeof(a1), arg, al));
    r = o ? wschat_client_close(o, 4002, "kicked") : WSCHAT_ENOTFOUND;
    if (r == 0 && o != c) {
      int again = wschat_client_close(o, 4002, "kicked");
      CHECK(again == WSCHAT_ECLOSED, "second close: %d", again);
      again = wschat_client_send(o, "late", 4);
      CHECK(again == WSCHAT_ECLOSED, "send to a closing client: %d", again);
    }
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/bye", &arg, &al)) {
    r = wschat_client_close(c, 4003, "bye");
    CHECK(r == 0, "close of self: %d", r);
    r = wschat_client_close(c, 4003, "bye");
    CHECK(r == WSCHAT_ECLOSED, "second close of self: %d", r);
    r = wschat_client_send(c, "late", 4);
    CHECK(r == WSCHAT_ECLOSED, "send after close: %d", r);
    r = wschat_client_send_binary(c, "late", 4);
    CHECK(r == WSCHAT_ECLOSED, "send_binary after close: %d", r);
    r = wschat_client_join(c, "elsewhere");
    CHECK(r == WSCHAT_ECLOSED, "join after close: %d", r);
    r = wschat_client_rename(c, "someone-else");
    CHECK(r == WSCHAT_ECLOSED, "rename after close: %d", r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/list", &arg, &al)) {
    cmd_list(c);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/whoami", &arg, &al)) {
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "* whoami id=%llu name=%s room=%s peer=%s path=%s "
                     "query=%s tag=%s",
                     id, wschat_client_name(c), or_dash(wschat_client_room(c)),
                     wschat_client_peer(c), wschat_client_path(c),
                     or_dash(wschat_client_query(c)),
                     or_dash(wschat_client_get_data(c)));
    reply(c, line, (size_t)n);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/threads", &arg, &al)) {
    int n = atoi(argz(a1, sizeof(a1), arg, al));
    const char *room = wschat_client_room(c);
    r = n > 0 && n <= 100000 ? start_worker(n, room) : WSCHAT_EINVAL;
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/stop", &arg, &al)) {
    r = start_worker(0, NULL);
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/halt", &arg, &al)) {
    r = wschat_server_shutdown(app.srv, on_shutdown, &app);
    CHECK(r == 0, "shutdown from on_message: %d", r);
    r = wschat_client_send(c, "late", 4);
    CHECK(r == WSCHAT_ECLOSED, "send after the shutdown began: %d", r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/binary", &arg, &al)) {
    r = wschat_client_send_binary(c, "\x00\xff\x01\x80", 4);
    CHECK(r == 0, "send_binary: %d", r);
    return WSCHAT_DROP;
  }
  return WSCHAT_PASS;
}

/* ---- start and stop ---- */

static void close_own_handles(void) {
  if (app.own_closed)
    return;
  app.own_closed = 1;
  join_workers(1); /* none left running */
  uv_close((uv_handle_t *)&app.sigterm, NULL);
  uv_close((uv_handle_t *)&app.worker_done, NULL);
}

static void on_shutdown(struct wschat_server *srv, void *user) {
  CHECK(srv == app.srv && user == &app, "shutdown callback arguments");
  logf_("shutdown");
  int r = wschat_server_post_broadcast(srv, NULL, "late", 4);
  CHECK(r == WSCHAT_ECLOSED, "post_broadcast after shutdown: %d", r);
  r = wschat_server_post_shutdown(srv);
  CHECK(r == WSCHAT_ECLOSED, "post_shutdown after shutdown: %d", r);
  close_own_handles();
}

static void on_sigterm(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  int r = wschat_server_shutdown(app.srv, on_shutdown, &app);
  if (r == WSCHAT_ESTATE) {
    /* /stop started the shutdown (without our callback), or /halt did. */
    logf_("sigterm: already shutting down");
    close_own_handles();
    return;
  }
  CHECK(r == 0, "shutdown: %d", r);
  r = wschat_server_shutdown(app.srv, on_shutdown, &app);
  CHECK(r == WSCHAT_ESTATE, "second shutdown: %d", r);
  r = wschat_server_free(app.srv);
  CHECK(r == WSCHAT_ESTATE, "free during the shutdown: %d", r);
}

/* Calls that need no client: run before listening. */
static void check_static(void) {
  static const int codes[] = {
      WSCHAT_OK,      WSCHAT_EINVAL,     WSCHAT_ENAME,     WSCHAT_EROOM,
      WSCHAT_ETOOBIG, WSCHAT_ENAMETAKEN, WSCHAT_ENOTFOUND, WSCHAT_ECLOSED,
      WSCHAT_ESTATE,  WSCHAT_ESAMEROOM,  WSCHAT_ENOMEM,    WSCHAT_EIO,
      WSCHAT_EADDR};
  /* Never NULL, never empty; each code its own text, unknown ones too. */
  const size_t ncodes = sizeof(codes) / sizeof(codes[0]);
  const char *text[sizeof(codes) / sizeof(codes[0]) + 2];
  const int unknown[2] = {-999, 12345};
  for (size_t i = 0; i < ncodes + 2; i++) {
    int code = i < ncodes ? codes[i] : unknown[i - ncodes];
    text[i] = wschat_strerror(code);
    CHECK(text[i] && text[i][0], "strerror(%d) is empty", code);
    if (!text[i])
      text[i] = "";
  }
  for (size_t i = 0; i <= ncodes; i++)
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(text[i], text[j]) != 0, "strerror(%d) == strerror(%d)",
            i < ncodes ? codes[i] : unknown[0], codes[j]);

  CHECK(wschat_version() == WSCHAT_VERSION_NUM, "version %x", wschat_version());
  char v[32];
  snprintf(v, sizeof(v), "%d.%d.%d", WSCHAT_VERSION_MAJOR, WSCHAT_VERSION_MINOR,
           WSCHAT_VERSION_PATCH);
  CHECK(strcmp(wschat_version_string(), v) == 0, "version string %s",
        wschat_version_string());

  CHECK(wschat_server_new(app.loop, NULL) == WSCHAT_EINVAL, "new(NULL out)");

  /* A server on a loop of its own that never listens. */
  struct wschat_server *own;
  int r = wschat_server_new(NULL, &own);
  CHECK(r == 0, "new on its own loop: %d", r);
  if (r == 0) {
    uv_loop_t *l = (uv_loop_t *)wschat_server_loop(own);
    CHECK(l != NULL && l != app.loop, "own loop");
    r = wschat_server_shutdown(own, NULL, NULL);
    CHECK(r == 0, "shutdown of a server that never listened: %d", r);
    r = wschat_server_free(own);
    CHECK(r == 0, "free of a server that never listened: %d", r);
  }

  /* A server on our loop whose listen fails: the handle is closing until
   * the loop runs once, then it frees cleanly. */
  struct wschat_server *bad;
  r = wschat_server_new(app.loop, &bad);
  CHECK(r == 0, "new: %d", r);
  if (r == 0) {
    CHECK(wschat_server_run(bad) == WSCHAT_ESTATE, "run on the caller's loop");
    r = wschat_server_listen(bad, "not-an-address", 0);
    CHECK(r == WSCHAT_EADDR, "listen on a bad host: %d", r);
    r = wschat_server_listen(bad, "127.0.0.1", 70000);
    CHECK(r == WSCHAT_EINVAL || r == WSCHAT_EADDR, "listen on port 70000: %d",
          r);
    r = wschat_server_listen(bad, "127.0.0.1", wschat_server_port(app.srv));
    CHECK(r == WSCHAT_EADDR, "listen on a port in use: %d", r);
    r = wschat_server_free(bad);
    CHECK(r == WSCHAT_ESTATE, "free while the failed listener closes: %d", r);
    uv_run(app.loop, UV_RUN_NOWAIT);
    CHECK(wschat_server_port(bad) == 0, "port of a server not listening");
    r = wschat_server_free(bad);
    CHECK(r == 0, "free after a failed listen: %d", r);
  }
}

static void check_options(struct wschat_server *srv) {
  static const struct {
    enum wschat_option opt;
    int64_t value;
  } bad[] = {
      {WSCHAT_OPT_MODE, 7},
      {WSCHAT_OPT_MODE, -1},
      {WSCHAT_OPT_MAX_MESSAGE, 0},
      {WSCHAT_OPT_MAX_MESSAGE, -5},
      {WSCHAT_OPT_MAX_OUTPUT, 0},
      {WSCHAT_OPT_MAX_HEADER, 0},
      {WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS, 0},
      {WSCHAT_OPT_PING_INTERVAL_MS, -1},
      {WSCHAT_OPT_PING_TIMEOUT_MS, 0},
      {WSCHAT_OPT_CLOSE_TIMEOUT_MS, 0},
      {WSCHAT_OPT_BACKLOG, 0},
      {(enum wschat_option)0, 1},
      {(enum wschat_option)999, 1},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r = wschat_server_set_option(srv, bad[i].opt, bad[i].value);
    CHECK(r == WSCHAT_EINVAL, "set_option(%d, %lld): %d", (int)bad[i].opt,
          (long long)bad[i].value, r);
  }
  int r = wschat_server_set_option(srv, WSCHAT_OPT_MODE, WSCHAT_MODE_CHAT);
  CHECK(r == 0, "set_option(MODE, CHAT): %d", r);
  r = wschat_server_set_option(srv, WSCHAT_OPT_MAX_MESSAGE, MAX_MESSAGE);
  CHECK(r == 0, "set_option(MAX_MESSAGE): %d", r);
  r = wschat_server_set_option(srv, WSCHAT_OPT_CLOSE_TIMEOUT_MS, 2000);
  CHECK(r == 0, "set_option(CLOSE_TIMEOUT_MS): %d", r);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();
  pthread_mutex_init(&app.lock, NULL);

  int r = wschat_server_new(app.loop, &app.srv);
  if (r != 0) {
    fprintf(stderr, "api_probe: %s\n", wschat_strerror(r));
    return 1;
  }
  CHECK(wschat_server_loop(app.srv) == (struct uv_loop_s *)app.loop, "loop");
  CHECK(wschat_server_port(app.srv) == 0, "port before listen");
  check_options(app.srv);
  wschat_server_on_connect(app.srv, on_connect, &app);
  wschat_server_on_disconnect(app.srv, on_disconnect, &app);
  wschat_server_on_message(app.srv, on_message, &app);
  wschat_server_on_join(app.srv, on_join, &app);
  wschat_server_on_leave(app.srv, on_leave, &app);
  r = wschat_server_listen(app.srv, "127.0.0.1", port);
  if (r != 0) {
    fprintf(stderr, "api_probe: listen: %s\n", wschat_strerror(r));
    return 1;
  }
  CHECK(wschat_server_listen(app.srv, "127.0.0.1", 0) == WSCHAT_ESTATE,
        "listen twice");
  r = wschat_server_set_option(app.srv, WSCHAT_OPT_MODE, WSCHAT_MODE_ECHO);
  CHECK(r != 0, "mode changed while listening");
  check_static();

  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_start(&app.sigterm, on_sigterm, SIGTERM);
  uv_async_init(app.loop, &app.worker_done, on_worker_done);
  logf_("listening on ws://127.0.0.1:%d/", wschat_server_port(app.srv));

  uv_run(app.loop, UV_RUN_DEFAULT); /* ends when every handle is closed */
  int freed = wschat_server_free(app.srv);
  int closed = uv_loop_close(app.loop);
  CHECK(app.live == 0, "%ld connects without a disconnect", app.live);
  logf_("exit free=%d loop=%d", freed, closed);
  pthread_mutex_destroy(&app.lock);
  return freed == 0 && closed == 0 && app.failures == 0 ? 0 : 1;
}
