/*
 * api_probe: every public call of libwschat, as an embedding program sees
 * it. tests/e2e/test_api.py drives it; nothing else should.
 *
 *   api_probe [PORT [HISTORY]]   (0 or nothing: a free port; HISTORY: a
 *                                 SQLite file, opened as the server's
 *                                 history store)
 *
 * With WSCHAT_PROBE_JWT_SECRET set, identity is on with that HS256 secret
 * (tests/e2e/test_identity.py): on_connect then sees the token's name.
 *
 * It owns its libuv loop (uv_default_loop()), runs the chat on it, wires
 * every hook, three event watchers, its own commands and HTTP routes, and
 * logs as one line on stdout, flushed:
 *
 *   connect ID PATH QUERY|-          join ID NAME ROOM
 *   leave ID NAME ROOM REASON|-      disconnect ID NAME|- CODE
 *   message ID NAME|- text TEXT      message ID NAME|- binary LEN
 *   protocols ID OFFERED             (on_connect, when some were offered)
 *   set_name ID NAME CODE            set_room ID ROOM CODE   (on_connect)
 *   decide ID accept|reject|close|gone    (a deferred client's verdict)
 *   event ID KIND ROOM|- FROM|- CLIENT TO|- :TEXT-OR-REASON
 *   http METHOD PATH QUERY|-         error ID CODE  (an error reply)
 *   late post ran                    shutdown
 *   history final appended=N written=N   (with HISTORY: the counters after
 *                                        the shutdown)
 *   exit free=N loop=N
 *
 * Its on_message commands (DROPped, except /shout: rewritten and PASSed):
 *   /shout TEXT     wschat_message_replace() with TEXT upper-cased
 *   /drop           dropped silently
 *   /all TEXT       wschat_server_broadcast() to everyone but the sender
 *   /to ROOM TEXT   wschat_server_broadcast() to ROOM
 *   /move ROOM      wschat_client_move()
 *   /home           wschat_client_move() to lobby
 *   /rename NAME    wschat_client_rename()
 *   /kick NAME      wschat_server_find_client() + wschat_client_close(4002)
 *   /bye            wschat_client_close(4003) of the sender, then the
 *                   calls a closing client must refuse
 *   /list           wschat_server_rooms() + wschat_server_members()
 *   /whoami         id, name, room, peer, path, query, user data (X-Tag),
 *                   subprotocol
 *   /threads N      a pthread posts N lines to the sender's room
 *   /stop           a pthread calls wschat_server_post_shutdown()
 *   /halt           wschat_server_shutdown() from inside a hook
 *   /binary         wschat_client_send_binary() of 00 ff 01 80
 * Its registered commands (wschat_server_add_command(); /help lists them):
 *   /add ROOM       wschat_client_join(): one more room
 *   /unjoin [ROOM [REASON]]  wschat_client_leave() ("part" is a built-in)
 *   /myrooms        wschat_client_rooms()
 *   /say TEXT       wschat_server_say() as the reserved name "probebot"
 *   /keep ROOM, /unkeep ROOM   wschat_server_keep_room()
 *   /posts N        a pthread makes N wschat_server_post() calls, each
 *                   sending "* post I/N" to the sender (found by its id)
 *   /lookup ID      wschat_server_client()
 *   /quiet N        wschat_server_set_option(WSCHAT_OPT_QUIET_ROOM, N)
 *   /args ...       the wschat_command_*() accessors
 *   /latepost       on SIGTERM, a wschat_server_post() right after
 *                   wschat_server_shutdown(): it must run once ("late post
 *                   ran")
 *   /strerror       wschat_strerror() of every code: distinct texts
 *   /maybe          returns WSCHAT_PASS (the chat answers "unknown")
 *   /drop           registered too, but on_message drops it first
 *   /hstats         wschat_server_history_stats()
 *   /hread ROOM LIMIT [BEFORE]   wschat_server_read_history(); the answer
 *                   as one message: "* hread ROOM n=N complete=C err=E",
 *                   then a line "ID KIND FROM|- TO|- :TEXT" per event
 * Errors come back to the sender as "! " + wschat_strerror() (and an
 * "error ID CODE" line).
 *
 * Paths in on_connect: /reject-http (403 "go away"), /reject-ws (4001 "not
 * today"), /close-ws (wschat_client_close(4005, "closed early")), /halt
 * (wschat_server_shutdown() from on_connect), /as/NAME
 * (wschat_client_set_name()), /in/ROOM (wschat_client_set_room()),
 * /many-headers (16 added headers; the 17th is refused), /big-headers
 * (over 4 KiB in all is refused), /defer/accept, /defer/reject,
 * /defer/close (deferred; a pthread posts the verdict after 100 ms: accept
 * as "dfr-ID" in #den, 401 with WWW-Authenticate, or close 4006),
 * /defer/late (the verdict comes after the handshake timeout: the client
 * is gone, answered 503). Every answer carries "X-Probe-Id: ID"; a client
 * offering "probe.v2" (else "probe.v1") gets it as subprotocol.
 * Rooms in on_join: "trap" (the hook moves the client on to "jail"),
 * "doom" (the hook closes it, 4004). A MESSAGE "echo-me" makes the first
 * watcher say "echoed" as probebot (an event caused inside a watcher).
 * History: before listening, the argument checks of
 * wschat_server_open_history() (EINVAL, EIO for a file in a directory that
 * does not exist), wschat_server_set_history_store(),
 * wschat_server_read_history() and wschat_server_history_stats() (all
 * ENOHISTORY without a store); with HISTORY, the store is opened
 * (WSCHAT_OPT_HISTORY_REPLAY: 3) and a second one refused; once
 * listening, both ways of setting a store are refused (ESTATE), and so is
 * wschat_server_set_cluster() (a bad URL: EINVAL).
 * HTTP routes: /probe/status (200, X-Route), /probe/ and /probe/deep/
 * (prefixes), /probe/silent (no answer: 500), /probe/bad (404 "nope"),
 * /probe/cached (ETag "v1"; 304 to an If-None-Match naming it), and "/"
 * (the root only: /healthz and unknown paths keep the built-in answers).
 *
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
#include <strings.h>
#include <time.h>

#include <uv.h>
#include <wschat.h>

#define MAX_THREADS 32
#define MAX_BATCHES 64
#define MAX_MESSAGE 65536
#define MAX_ROOMS 4
#define HANDSHAKE_MS 2000
#define BOT "probebot"

enum work { WORK_LINES, WORK_SHUTDOWN, WORK_POSTS, WORK_DECIDE };

struct worker {
  pthread_t tid;
  int started, done, joined; /* done: under app.lock */
  enum work what;
  int n;             /* WORK_LINES, WORK_POSTS: how many */
  int batch;         /* WORK_POSTS: index in app.batches */
  unsigned delay_ms; /* WORK_DECIDE: before posting the verdict */
  uint64_t client;   /* WORK_POSTS, WORK_DECIDE: whose */
  char room[WSCHAT_ROOM_MAX + 1];
  char verdict[16]; /* WORK_DECIDE: accept, reject, close */
};

/* One /posts N on the loop side: the next number it must see. */
struct batch {
  int next, n;
};

struct app {
  uv_loop_t *loop;
  struct wschat_server *srv;
  uv_signal_t sigterm;
  uv_async_t worker_done; /* a worker finished: join it on the loop */
  pthread_mutex_t lock;
  struct worker workers[MAX_THREADS];
  struct batch batches[MAX_BATCHES];
  int nbatches;
  long live; /* connects minus disconnects */
  int own_closed;
  int failures;
  /* the watchers */
  uint64_t last_logged, last_counted; /* event ids */
  unsigned long logged, counted;
  uint64_t once_handle;
  int once_calls;
  int want_late_post;        /* /latepost: post when the shutdown begins */
  int late_posted, late_ran; /* that post was accepted; it ran */
  const char *history;       /* the SQLite file, or NULL: no store */
  const char *jwt_secret;    /* WSCHAT_PROBE_JWT_SECRET, or NULL */
  int in_read;               /* inside wschat_server_read_history() */
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

static unsigned long long idof(const struct wschat_client *c) {
  return (unsigned long long)wschat_client_id(c);
}

/* "! " + the error's description, to the client; "error ID CODE" logged. */
static void reply_error(struct wschat_client *c, int err) {
  char line[160];
  logf_("error %llu %d", idof(c), err);
  int n = snprintf(line, sizeof(line), "! %s", wschat_strerror(err));
  int r = wschat_client_send(c, line, (size_t)n);
  CHECK(r == 0, "send of an error line: %d", r);
}

static void reply(struct wschat_client *c, const char *line, size_t len) {
  int r = wschat_client_send(c, line, len);
  CHECK(r == 0, "wschat_client_send: %d", r);
}

static void replys(struct wschat_client *c, const char *line) {
  reply(c, line, strlen(line));
}

/* Copies len bytes of s into buf (NUL-ended, cut to fit). */
static const char *argz(char *buf, size_t cap, const char *s, size_t len) {
  if (len >= cap)
    len = cap - 1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return buf;
}

/* Text for a log line: controls as '?', cut at cap - 1 bytes. */
static const char *shown(char *buf, size_t cap, const char *s, size_t len) {
  argz(buf, cap, s, len);
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20)
      *p = '?';
  return buf;
}

/* ---- a client's rooms ---- */

struct roomlist {
  char text[1024];
  size_t len, n;
  const char *find; /* a room to look for (case-insensitively) */
  int found;
  char last[WSCHAT_ROOM_MAX + 1]; /* a copy: room is valid during the call */
};

static int collect_room(const char *room, size_t members, void *user) {
  struct roomlist *l = user;
  CHECK(room != NULL && members > 0, "room visitor: %s %zu", or_dash(room),
        members);
  l->n++;
  if (l->find && strcasecmp(l->find, room) == 0)
    l->found = 1;
  int w = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s%s",
                   l->len ? "," : "", room);
  if (w > 0 && (size_t)w < sizeof(l->text) - l->len)
    l->len += (size_t)w;
  snprintf(l->last, sizeof(l->last), "%s", room);
  return 0;
}

static int stop_at_once(const char *room, size_t members, void *user) {
  (void)room;
  (void)members;
  ++*(size_t *)user;
  return 1;
}

/* Lists c's rooms; checks the count forms and that the current one is last. */
static void rooms_of(struct wschat_client *c, struct roomlist *l) {
  size_t n = wschat_client_rooms(c, collect_room, l);
  size_t counted = wschat_client_rooms(c, NULL, NULL);
  CHECK(n == l->n && counted == n, "client_rooms: %zu visited, %zu, %zu", n,
        l->n, counted);
  const char *cur = wschat_client_room(c);
  CHECK((n == 0 && cur == NULL) || (n > 0 && cur && strcmp(cur, l->last) == 0),
        "current room %s is not the last of %s", or_dash(cur), l->text);
  if (n > 1) {
    size_t calls = 0;
    size_t r = wschat_client_rooms(c, stop_at_once, &calls);
    CHECK(r == 1 && calls == 1, "client_rooms stopping at once: %zu, %zu", r,
          calls);
  }
}

static int is_member(struct wschat_client *c, const char *room) {
  struct roomlist l = {.find = room};
  wschat_client_rooms(c, collect_room, &l);
  return l.found;
}

/* ---- checks that hold for any open client outside on_connect ---- */

static void check_open_client(struct wschat_client *c) {
  char buf[64];
  int r = wschat_client_reject(c, 403, "late");
  CHECK(r == WSCHAT_ESTATE, "reject outside on_connect: %d", r);
  r = wschat_client_defer(c);
  CHECK(r == WSCHAT_ESTATE, "defer outside on_connect: %d", r);
  r = wschat_client_accept(c);
  CHECK(r == WSCHAT_ESTATE, "accept of an open client: %d", r);
  r = wschat_client_set_name(c, "late-name");
  CHECK(r == WSCHAT_ESTATE, "set_name of an open client: %d", r);
  r = wschat_client_set_room(c, "late-room");
  CHECK(r == WSCHAT_ESTATE, "set_room of an open client: %d", r);
  r = wschat_client_set_protocol(c, NULL);
  CHECK(r == WSCHAT_ESTATE, "set_protocol of an open client: %d", r);
  r = wschat_client_add_header(c, "X-Late", "yes");
  CHECK(r == WSCHAT_ESTATE, "add_header to an open client: %d", r);
  r = wschat_client_header(c, "Host", buf, sizeof(buf));
  CHECK(r == WSCHAT_ESTATE, "header of an open client: %d", r);
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
  const char *cur = wschat_client_room(c);
  CHECK(cur != NULL, "an open chat client in no room");
  if (cur) {
    char room[WSCHAT_ROOM_MAX + 1];
    snprintf(room, sizeof(room), "%s", cur);
    r = wschat_client_join(c, room);
    CHECK(r == WSCHAT_ESAMEROOM, "join of its current room: %d", r);
    r = wschat_client_move(c, room);
    CHECK(r == WSCHAT_ESAMEROOM, "move to its current room: %d", r);
  }
  r = wschat_client_move(c, "bad room!");
  CHECK(r == WSCHAT_EROOM, "move to an invalid room: %d", r);
  r = wschat_client_leave(c, "bad room!", NULL);
  CHECK(r == WSCHAT_EROOM, "leave of an invalid room: %d", r);
  r = wschat_client_leave(c, "never-a-member-here", NULL);
  CHECK(r == WSCHAT_ENOTMEMBER, "leave of a room not joined: %d", r);
  r = wschat_client_rename(c, "no spaces allowed");
  CHECK(r == WSCHAT_ENAME, "rename to an invalid name: %d", r);
  r = wschat_client_rename(c, NULL);
  CHECK(r == WSCHAT_ENAME, "rename to NULL: %d", r);
  if (strcmp(wschat_client_name(c), BOT) != 0) {
    r = wschat_client_rename(c, BOT);
    CHECK(r == WSCHAT_ERESERVED, "rename to a reserved name: %d", r);
  }

  r = wschat_server_broadcast(app.srv, "bad room!", "x", 1, NULL);
  CHECK(r == WSCHAT_EROOM, "broadcast to an invalid room: %d", r);
  r = wschat_server_broadcast(app.srv, "no-such-room-here", "x", 1, NULL);
  CHECK(r == WSCHAT_ENOTFOUND, "broadcast to a missing room: %d", r);
  if (cur) {
    r = wschat_server_say(app.srv, cur, "bad name!", "x", 1);
    CHECK(r == WSCHAT_ENAME, "say as an invalid name: %d", r);
    r = wschat_server_say(app.srv, cur, BOT, "\xff", 1);
    CHECK(r == WSCHAT_EINVAL, "say of invalid UTF-8: %d", r);
  }
  r = wschat_server_say(app.srv, "bad room!", BOT, "x", 1);
  CHECK(r == WSCHAT_EROOM, "say to an invalid room: %d", r);
  r = wschat_server_say(app.srv, "no-such-room-here", BOT, "x", 1);
  CHECK(r == WSCHAT_ENOTFOUND, "say to a missing room: %d", r);

  CHECK(wschat_server_find_client(app.srv, wschat_client_name(c)) == c,
        "find_client(%s) is not the client", wschat_client_name(c));
  CHECK(wschat_server_client(app.srv, wschat_client_id(c)) == c,
        "server_client(%llu) is not the client", idof(c));
  CHECK(wschat_client_protocol(c) != NULL, "protocol of an open client");
  struct roomlist l = {.len = 0};
  rooms_of(c, &l);
  CHECK(l.n >= 1 && l.n <= MAX_ROOMS, "%zu rooms: %s", l.n, l.text);
  r = wschat_server_free(app.srv);
  CHECK(r == WSCHAT_ESTATE, "free with clients open: %d", r);
}

/* Calls a client must refuse while not open (on_connect, deferred). */
static void check_not_open(struct wschat_client *c) {
  int r = wschat_client_send(c, "early", 5);
  CHECK(r == WSCHAT_ENOTOPEN, "send before open: %d", r);
  r = wschat_client_send_binary(c, "early", 5);
  CHECK(r == WSCHAT_ENOTOPEN, "send_binary before open: %d", r);
  r = wschat_client_join(c, "den");
  CHECK(r == WSCHAT_ENOTOPEN, "join before open: %d", r);
  r = wschat_client_move(c, "den");
  CHECK(r == WSCHAT_ENOTOPEN, "move before open: %d", r);
  r = wschat_client_leave(c, NULL, NULL);
  CHECK(r == WSCHAT_ENOTOPEN, "leave before open: %d", r);
  r = wschat_client_rename(c, "someone-new");
  CHECK(r == WSCHAT_ENOTOPEN, "rename before open: %d", r);
  CHECK(wschat_client_room(c) == NULL, "room before open");
  CHECK(wschat_client_rooms(c, NULL, NULL) == 0, "rooms before open");
  CHECK(wschat_server_client(app.srv, wschat_client_id(c)) == c,
        "server_client of a client in its handshake");
  char buf[64];
  r = wschat_client_header(c, "Host", buf, sizeof(buf));
  CHECK(r > 0 && (size_t)r == strlen(buf), "header Host before open: %d", r);
  r = wschat_client_set_protocol(c, "never-offered-proto");
  CHECK(r == WSCHAT_EINVAL, "set_protocol of one not offered: %d", r);
  r = wschat_client_set_room(c, "bad room!");
  CHECK(r == WSCHAT_EROOM, "set_room of an invalid room: %d", r);
  r = wschat_client_set_name(c, "bad name!");
  CHECK(r == WSCHAT_ENAME, "set_name of an invalid name: %d", r);
}

/* ---- on_connect ---- */

static void on_shutdown(struct wschat_server *srv, void *user);
static int start_decide(uint64_t client, const char *verdict, unsigned ms);

/* Is proto one of the offered list ("a, b,c")? */
static int offered(const char *list, const char *proto) {
  size_t pl = strlen(proto);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (n == pl && strncmp(p, proto, pl) == 0)
      return 1;
    p += n;
  }
  return 0;
}

/* Copies the path segment after "/key/" into buf; 0 if found. */
static int path_arg(const char *path, const char *key, char *buf, size_t cap) {
  const char *p = strstr(path, key);
  if (p == NULL)
    return -1;
  p += strlen(key);
  argz(buf, cap, p, strcspn(p, "/"));
  return 0;
}

static void check_headers_in_on_connect(struct wschat_client *c) {
  char tag[64];
  int r = wschat_client_header(c, "x-tag", tag, sizeof(tag));
  if (r >= 0) {
    CHECK((size_t)r == strlen(tag), "header length %d for %s", r, tag);
    char small[2] = "?";
    int r2 = wschat_client_header(c, "X-TAG", small, sizeof(small));
    CHECK(r < 2 || (r2 == r && small[0] == '\0'),
          "header into a small buffer: %d (needs %d), buf %s", r2, r, small);
    r2 = wschat_client_header(c, "X-Tag", NULL, 0);
    CHECK(r2 == r, "header length query: %d, %d", r2, r);
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
  r = wschat_client_header(c, NULL, tag, sizeof(tag));
  CHECK(r == WSCHAT_EINVAL, "header NULL: %d", r);
  r = wschat_client_header(c, "Host", NULL, 8);
  CHECK(r == WSCHAT_EINVAL, "header into NULL with a capacity: %d", r);
}

static void add_headers(struct wschat_client *c, const char *path) {
  char v[32];
  snprintf(v, sizeof(v), "%llu", idof(c));
  int r = wschat_client_add_header(c, "X-Probe-Id", v);
  CHECK(r == 0, "add_header X-Probe-Id: %d", r);
  static const char *const owned[] = {"Upgrade", "connection",
                                      "Sec-WebSocket-Accept",
                                      "Sec-WebSocket-Protocol",
                                      "Content-Length"};
  for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
    r = wschat_client_add_header(c, owned[i], "x");
    CHECK(r == WSCHAT_EINVAL, "add_header %s: %d", owned[i], r);
  }
  r = wschat_client_add_header(c, "Bad Name", "v");
  CHECK(r == WSCHAT_EINVAL, "add_header with a space in the name: %d", r);
  r = wschat_client_add_header(c, "X-Split", "a\r\nX-Evil: 1");
  CHECK(r == WSCHAT_EINVAL, "add_header with CR LF in the value: %d", r);
  r = wschat_client_add_header(c, NULL, "v");
  CHECK(r == WSCHAT_EINVAL, "add_header NULL: %d", r);
  if (strcmp(path, "/many-headers") == 0) {
    for (int i = 1; i <= 15; i++) { /* 16 with X-Probe-Id */
      char name[16];
      snprintf(name, sizeof(name), "X-H%d", i);
      r = wschat_client_add_header(c, name, name);
      CHECK(r == 0, "add_header %s: %d", name, r);
    }
    r = wschat_client_add_header(c, "X-H16", "X-H16");
    CHECK(r == WSCHAT_ETOOMANY, "a 17th header: %d", r);
  } else if (strcmp(path, "/big-headers") == 0) {
    char big[3001];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r = wschat_client_add_header(c, "X-Big1", big);
    CHECK(r == 0, "a 3000-byte header: %d", r);
    r = wschat_client_add_header(c, "X-Big2", big); /* over 4 KiB in all */
    CHECK(r == WSCHAT_ETOOMANY || r == WSCHAT_EINVAL,
          "headers over 4 KiB in all: %d", r);
  }
}

static void choose_protocol(struct wschat_client *c) {
  const char *list = wschat_client_protocols(c);
  CHECK(list != NULL, "protocols NULL");
  if (list == NULL || list[0] == '\0')
    return;
  logf_("protocols %llu %s", idof(c), list);
  int r = wschat_client_set_protocol(c, "not-offered");
  CHECK(r == WSCHAT_EINVAL, "set_protocol not offered: %d", r);
  r = wschat_client_set_protocol(c, NULL);
  CHECK(r == 0, "set_protocol(NULL): %d", r);
  const char *want = offered(list, "probe.v2")   ? "probe.v2"
                     : offered(list, "probe.v1") ? "probe.v1"
                                                 : NULL;
  if (want) {
    r = wschat_client_set_protocol(c, want);
    CHECK(r == 0, "set_protocol(%s): %d", want, r);
  }
}

static int on_connect(struct wschat_client *c, void *user) {
  CHECK(user == &app, "on_connect user pointer");
  app.live++;
  const char *path = wschat_client_path(c);
  logf_("connect %llu %s %s", idof(c), path, or_dash(wschat_client_query(c)));
  CHECK(app.jwt_secret || strcmp(wschat_client_name(c), "") == 0,
        "name in on_connect: %s", wschat_client_name(c));
  if (app.jwt_secret)
    logf_("token name %llu %s", idof(c), wschat_client_name(c));
  CHECK(wschat_client_get_data(c) == NULL, "data of a new client");
  check_not_open(c);
  check_headers_in_on_connect(c);
  choose_protocol(c);
  add_headers(c, path);

  int r = wschat_client_accept(c);
  CHECK(r == WSCHAT_ESTATE, "accept of a client not deferred: %d", r);
  r = wschat_client_reject(c, 200, "no");
  CHECK(r == WSCHAT_EINVAL, "reject with 200: %d", r);
  r = wschat_client_reject(c, 1005, "no");
  CHECK(r == WSCHAT_EINVAL, "reject with 1005: %d", r);

  char arg[128];
  if (path_arg(path, "/as/", arg, sizeof(arg)) == 0) {
    r = wschat_client_set_name(c, arg);
    logf_("set_name %llu %s %d", idof(c), arg, r);
    CHECK(r != 0 || strcmp(wschat_client_name(c), arg) == 0,
          "name after set_name: %s", wschat_client_name(c));
  }
  if (path_arg(path, "/in/", arg, sizeof(arg)) == 0) {
    r = wschat_client_set_room(c, arg);
    logf_("set_room %llu %s %d", idof(c), arg, r);
  }
  if (strcmp(path, "/reject-http") == 0) {
    r = wschat_client_add_header(c, "X-Reason", "probe");
    CHECK(r == 0, "add_header to a refusal: %d", r);
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
  } else if (strcmp(path, "/halt-defer") == 0) {
    /* A shutdown begun here, then a deferral: answered 503 at once. */
    r = wschat_server_shutdown(app.srv, on_shutdown, &app);
    CHECK(r == 0, "shutdown in on_connect: %d", r);
    r = wschat_client_defer(c);
    CHECK(r == 0, "defer after shutdown: %d", r);
  } else if (strcmp(path, "/undefer/accept") == 0 ||
             strcmp(path, "/undefer/reject") == 0) {
    /* A deferral taken back inside on_connect: answered when it returns. */
    r = wschat_client_defer(c);
    CHECK(r == 0, "defer: %d", r);
    if (path[9] == 'a') {
      r = wschat_client_accept(c);
      CHECK(r == 0, "accept inside on_connect after defer: %d", r);
    } else {
      r = wschat_client_reject(c, 403, "changed my mind");
      CHECK(r == 0, "reject inside on_connect after defer: %d", r);
    }
  } else if (strncmp(path, "/defer/", 7) == 0) {
    const char *verdict = path + 7;
    int late = strcmp(verdict, "late") == 0;
    r = start_decide(wschat_client_id(c), late ? "accept" : verdict,
                     late ? HANDSHAKE_MS + 600 : 100);
    if (r == 0) {
      r = wschat_client_defer(c);
      CHECK(r == 0, "defer: %d", r);
    } else {
      wschat_client_reject(c, 503, "no thread");
    }
  }
  return 0;
}

/* ---- the other hooks ---- */

static void on_disconnect(struct wschat_client *c, int code, void *user) {
  CHECK(user == &app, "on_disconnect user pointer");
  app.live--;
  const char *name = wschat_client_name(c);
  logf_("disconnect %llu %s %d", idof(c), or_dash(name), code);
  CHECK(wschat_client_room(c) == NULL, "still in #%s in on_disconnect",
        wschat_client_room(c));
  CHECK(wschat_client_rooms(c, NULL, NULL) == 0, "rooms in on_disconnect");
  CHECK(!name[0] || wschat_server_find_client(app.srv, name) != c,
        "a gone client is still found by name %s", name);
  int r = wschat_client_send(c, "late", 4);
  CHECK(r == WSCHAT_ECLOSED, "send in on_disconnect: %d", r);
  r = wschat_client_close(c, 1000, NULL);
  CHECK(r == WSCHAT_ECLOSED, "close in on_disconnect: %d", r);
  r = wschat_client_join(c, "elsewhere");
  CHECK(r == WSCHAT_ECLOSED, "join in on_disconnect: %d", r);
  r = wschat_client_move(c, "elsewhere");
  CHECK(r == WSCHAT_ECLOSED, "move in on_disconnect: %d", r);
  r = wschat_client_rename(c, "someone-else");
  CHECK(r == WSCHAT_ECLOSED, "rename in on_disconnect: %d", r);
  free(wschat_client_get_data(c));
  wschat_client_set_data(c, NULL);
}

static void on_join(struct wschat_client *c, const char *room, void *user) {
  CHECK(user == &app, "on_join user pointer");
  logf_("join %llu %s %s", idof(c), wschat_client_name(c), room);
  CHECK(wschat_client_room(c) && strcmp(wschat_client_room(c), room) == 0,
        "on_join(%s) but the current room is %s", room,
        or_dash(wschat_client_room(c)));
  CHECK(is_member(c, room), "on_join(%s) of a room it is not in", room);
  int r = wschat_client_join(c, room);
  CHECK(r == WSCHAT_ESAMEROOM, "join of the room it is in: %d", r);
  check_open_client(c);
  if (strcmp(room, "trap") == 0) {
    r = wschat_client_move(c, "jail");
    CHECK(r == 0, "move from on_join: %d", r);
  } else if (strcmp(room, "doom") == 0) {
    r = wschat_client_close(c, 4004, "doomed");
    CHECK(r == 0, "close from on_join: %d", r);
  }
}

static void on_leave(struct wschat_client *c, const char *room,
                     const char *reason, void *user) {
  CHECK(user == &app, "on_leave user pointer");
  logf_("leave %llu %s %s %s", idof(c), wschat_client_name(c), room,
        or_dash(reason));
  CHECK(!is_member(c, room), "on_leave(%s) but the client is still there",
        room);
  CHECK(!wschat_client_room(c) || strcmp(wschat_client_room(c), room) != 0,
        "on_leave(%s) but it is still the current room", room);
  if (reason && strcmp(reason, "close-me") == 0) {
    /* A close asked for while the client leaves its rooms (its own /quit):
     * refused, so on_disconnect cannot come before the last on_leave. */
    int r = wschat_client_close(c, 1000, "bye");
    CHECK(r == WSCHAT_ECLOSED, "close during the client's exit: %d", r);
    r = wschat_client_join(c, "elsewhere");
    CHECK(r == WSCHAT_ECLOSED, "join during the client's exit: %d", r);
  }
}

/* ---- the watchers ---- */

static const char *kind_name(enum wschat_event_kind k) {
  switch (k) {
  case WSCHAT_EVENT_MESSAGE: return "message";
  case WSCHAT_EVENT_ACTION: return "action";
  case WSCHAT_EVENT_JOIN: return "join";
  case WSCHAT_EVENT_LEAVE: return "leave";
  case WSCHAT_EVENT_NICK: return "nick";
  case WSCHAT_EVENT_WHISPER: return "whisper";
  case WSCHAT_EVENT_NOTICE: return "notice";
  }
  return NULL;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What every event of a kind must carry (see the accessors' comments). */
static void check_event(const struct wschat_event *ev) {
  enum wschat_event_kind k = wschat_event_kind(ev);
  const char *room = wschat_event_room(ev), *from = wschat_event_from(ev);
  const char *to = wschat_event_to(ev), *reason = wschat_event_reason(ev);
  uint64_t client = wschat_event_client(ev);
  size_t len = 99;
  const char *text = wschat_event_text(ev, &len);
  CHECK(text != NULL && wschat_event_text(ev, NULL) == text, "event text");
  int64_t now = wall_ms(), t = wschat_event_time(ev);
  CHECK(t > now - 10000 && t <= now + 1000, "event time %lld, now %lld",
        (long long)t, (long long)now);
  CHECK(kind_name(k) != NULL, "event kind %d", (int)k);
  CHECK(k == WSCHAT_EVENT_LEAVE || reason == NULL, "a reason on a %s",
        or_dash(kind_name(k)));
  switch (k) {
  case WSCHAT_EVENT_MESSAGE:
  case WSCHAT_EVENT_ACTION:
    CHECK(room && from && !to, "%s: room %s from %s to %s", kind_name(k),
          or_dash(room), or_dash(from), or_dash(to));
    CHECK(client != 0 || (from && strcmp(from, BOT) == 0),
          "%s from %s without a client", kind_name(k), or_dash(from));
    break;
  case WSCHAT_EVENT_JOIN:
  case WSCHAT_EVENT_LEAVE:
    CHECK(room && from && !to && client != 0 && len == 0,
          "%s: room %s from %s to %s client %llu len %zu", kind_name(k),
          or_dash(room), or_dash(from), or_dash(to), (unsigned long long)client,
          len);
    break;
  case WSCHAT_EVENT_NICK:
    CHECK(room && from && to && client != 0 && len == 0,
          "nick: room %s from %s to %s", or_dash(room), or_dash(from),
          or_dash(to));
    break;
  case WSCHAT_EVENT_WHISPER:
    CHECK(!room && from && to && client != 0, "whisper: room %s from %s to %s",
          or_dash(room), or_dash(from), or_dash(to));
    break;
  case WSCHAT_EVENT_NOTICE:
    CHECK(!from && !to && client == 0, "notice: from %s to %s client %llu",
          or_dash(from), or_dash(to), (unsigned long long)client);
    break;
  }
}

/* Watcher 1: logs each event; says "echoed" after an "echo-me". */
static void log_event(struct wschat_server *srv, const struct wschat_event *ev,
                      void *user) {
  CHECK(srv == app.srv && user == &app, "watcher arguments");
  uint64_t id = wschat_event_id(ev);
  CHECK(id > app.last_logged, "event id %llu after %llu",
        (unsigned long long)id, (unsigned long long)app.last_logged);
  app.last_logged = id;
  app.logged++;
  check_event(ev);
  enum wschat_event_kind k = wschat_event_kind(ev);
  size_t len;
  const char *text = wschat_event_text(ev, &len);
  const char *tail = k == WSCHAT_EVENT_LEAVE ? wschat_event_reason(ev) : text;
  char buf[256];
  logf_("event %llu %s %s %s %llu %s :%s", (unsigned long long)id,
        or_dash(kind_name(k)), or_dash(wschat_event_room(ev)),
        or_dash(wschat_event_from(ev)),
        (unsigned long long)wschat_event_client(ev),
        or_dash(wschat_event_to(ev)),
        tail ? shown(buf, sizeof(buf), tail,
                     k == WSCHAT_EVENT_LEAVE ? strlen(tail) : len)
             : "");
  if (k == WSCHAT_EVENT_MESSAGE && wschat_event_client(ev) != 0 && len == 7 &&
      memcmp(text, "echo-me", 7) == 0) {
    /* An event made inside a watcher: watched after this one. */
    int r = wschat_server_say(srv, wschat_event_room(ev), BOT, "echoed", 6);
    CHECK(r == 0, "say from a watcher: %d", r);
  }
}

/* Watcher 2: sees the same events, in the same order. */
static void count_event(struct wschat_server *srv,
                        const struct wschat_event *ev, void *user) {
  (void)srv;
  CHECK(user == NULL, "second watcher's user pointer");
  uint64_t id = wschat_event_id(ev);
  CHECK(id > app.last_counted, "second watcher: id %llu after %llu",
        (unsigned long long)id, (unsigned long long)app.last_counted);
  CHECK(id == app.last_logged, "second watcher sees %llu, first saw %llu",
        (unsigned long long)id, (unsigned long long)app.last_logged);
  app.last_counted = id;
  app.counted++;
}

/* Watcher 3: removes itself on its first event. */
static void once_event(struct wschat_server *srv,
                       const struct wschat_event *ev, void *user) {
  (void)ev;
  (void)user;
  app.once_calls++;
  int r = wschat_server_unwatch(srv, app.once_handle);
  CHECK(r == 0, "unwatch from inside the watcher: %d", r);
  r = wschat_server_unwatch(srv, app.once_handle);
  CHECK(r == WSCHAT_ENOTFOUND, "second unwatch: %d", r);
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
  size_t counted = wschat_server_members(app.srv, room, NULL, NULL);
  CHECK(n == members && n == ns.n && counted == n,
        "room %s: %zu members, %zu visited, %zu, %zu counted", room, members,
        n, ns.n, counted);
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

static void cmd_list(struct wschat_client *c) {
  struct listing l = {.len = 0};
  add(&l, "* list");
  size_t rooms = wschat_server_rooms(app.srv, visit_room, &l);
  size_t counted = wschat_server_rooms(app.srv, NULL, NULL);
  CHECK(counted == rooms, "rooms(NULL) %zu, visited %zu", counted, rooms);
  struct names all = {.n = 0};
  size_t everyone = wschat_server_members(app.srv, NULL, collect_member, &all);
  size_t everyone_counted = wschat_server_members(app.srv, NULL, NULL, NULL);
  /* Each client once, in however many rooms. */
  CHECK(everyone <= l.members_seen && everyone == all.n &&
            everyone_counted == everyone,
        "members(NULL) %zu, %zu counted, sum of rooms %zu", everyone,
        everyone_counted, l.members_seen);
  char tail[64];
  snprintf(tail, sizeof(tail), " rooms=%zu everyone=%zu", rooms, everyone);
  add(&l, tail);

  /* Stopping early, and a room that does not exist. */
  size_t calls = 0;
  size_t r = wschat_server_rooms(app.srv, stop_at_once, &calls);
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
  CHECK(wschat_server_members(app.srv, "no-such-room", NULL, NULL) == 0,
        "count of a missing room");
  reply(c, l.line, l.len);
}

/* ---- threads: /threads, /stop, /posts, deferred verdicts ---- */

/* A posted call of /posts: sends "* post I/N" to the client. */
struct post {
  int batch, i;
  uint64_t client;
};

static void run_post(struct wschat_server *srv, void *arg) {
  struct post *p = arg;
  CHECK(srv == app.srv, "post callback server");
  struct batch *b = &app.batches[p->batch];
  CHECK(p->i == b->next, "post %d of batch %d ran when %d was due", p->i,
        p->batch, b->next);
  b->next = p->i + 1;
  struct wschat_client *c = wschat_server_client(srv, p->client);
  if (c) {
    char line[64];
    int n = snprintf(line, sizeof(line), "* post %d/%d", p->i, b->n);
    int r = wschat_client_send(c, line, (size_t)n);
    CHECK(r == 0 || r == WSCHAT_ECLOSED, "send from a post: %d", r);
  }
  free(p);
}

/* The verdict on a deferred client, run on the loop by a post. */
struct verdict {
  uint64_t client;
  char what[16];
};

static void run_verdict(struct wschat_server *srv, void *arg) {
  struct verdict *v = arg;
  unsigned long long id = (unsigned long long)v->client;
  struct wschat_client *c = wschat_server_client(srv, v->client);
  if (c == NULL) {
    logf_("decide %llu gone", id);
    free(v);
    return;
  }
  check_not_open(c);
  int r = wschat_client_defer(c);
  CHECK(r == WSCHAT_ESTATE, "defer while deferred, outside on_connect: %d", r);
  logf_("decide %llu %s", id, v->what);
  if (strcmp(v->what, "accept") == 0) {
    char name[32];
    snprintf(name, sizeof(name), "dfr-%llu", id);
    r = wschat_client_set_name(c, name);
    CHECK(r == 0, "set_name while deferred: %d", r);
    CHECK(strcmp(wschat_client_name(c), name) == 0, "name %s",
          wschat_client_name(c));
    r = wschat_client_set_room(c, "den");
    CHECK(r == 0, "set_room while deferred: %d", r);
    r = wschat_client_add_header(c, "X-Decided", "accept");
    CHECK(r == 0, "add_header while deferred: %d", r);
    r = wschat_client_accept(c);
    CHECK(r == 0, "accept: %d", r);
    r = wschat_client_accept(c);
    CHECK(r == WSCHAT_ESTATE, "second accept: %d", r);
    r = wschat_client_reject(c, 403, "too late");
    CHECK(r == WSCHAT_ESTATE, "reject after accept: %d", r);
    r = wschat_client_set_name(c, "other-name");
    CHECK(r == WSCHAT_ESTATE, "set_name after accept: %d", r);
    r = wschat_client_send(c, "* accepted", 10);
    CHECK(r == 0, "send after accept: %d", r);
  } else if (strcmp(v->what, "reject") == 0) {
    r = wschat_client_add_header(c, "WWW-Authenticate", "Bearer");
    CHECK(r == 0, "add_header WWW-Authenticate: %d", r);
    r = wschat_client_reject(c, 401, "bad token");
    CHECK(r == 0, "reject while deferred: %d", r);
    CHECK(wschat_server_client(srv, v->client) == NULL,
          "a rejected client is still found by id");
  } else if (strcmp(v->what, "close") == 0) {
    r = wschat_client_close(c, 4006, "closed while deferred");
    CHECK(r == 0, "close while deferred: %d", r);
  } else {
    CHECK(0, "unknown verdict %s", v->what);
  }
  free(v);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int r;
  switch (w->what) {
  case WORK_SHUTDOWN:
    r = wschat_server_post_shutdown(app.srv);
    CHECK(r == 0, "post_shutdown: %d", r);
    break;
  case WORK_LINES:
    for (int i = 1; i <= w->n; i++) {
      char line[64];
      int n = snprintf(line, sizeof(line), "* thread line %d/%d", i, w->n);
      r = wschat_server_post_broadcast(app.srv, w->room, line, (size_t)n);
      CHECK(r == 0 || r == WSCHAT_ECLOSED, "post_broadcast: %d", r);
    }
    r = wschat_server_post_broadcast(app.srv, NULL, "\xff", 1);
    CHECK(r == WSCHAT_EINVAL, "post_broadcast of invalid UTF-8: %d", r);
    r = wschat_server_post_broadcast(app.srv, "bad room!", "x", 1);
    CHECK(r == WSCHAT_EROOM, "post_broadcast to an invalid room: %d", r);
    break;
  case WORK_POSTS:
    for (int i = 1; i <= w->n; i++) {
      struct post *p = malloc(sizeof(*p));
      CHECK(p != NULL, "malloc");
      if (p == NULL)
        break;
      *p = (struct post){.batch = w->batch, .i = i, .client = w->client};
      r = wschat_server_post(app.srv, run_post, p);
      CHECK(r == 0 || r == WSCHAT_ECLOSED, "post: %d", r);
      if (r != 0) {
        free(p);
        break;
      }
    }
    break;
  case WORK_DECIDE: {
    sleep_ms(w->delay_ms);
    struct verdict *v = malloc(sizeof(*v));
    CHECK(v != NULL, "malloc");
    if (v == NULL)
      break;
    v->client = w->client;
    snprintf(v->what, sizeof(v->what), "%s", w->verdict);
    r = wschat_server_post(app.srv, run_verdict, v);
    CHECK(r == 0 || r == WSCHAT_ECLOSED, "post of a verdict: %d", r);
    if (r != 0)
      free(v);
    break;
  }
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

/* Starts a worker on a copy of job. */
static int start_worker(const struct worker *job) {
  if (app.own_closed)
    return WSCHAT_ECLOSED; /* nobody would join it */
  for (int i = 0; i < MAX_THREADS; i++) {
    struct worker *w = &app.workers[i];
    if (w->started)
      continue;
    *w = *job;
    w->started = w->done = w->joined = 0;
    if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
      return WSCHAT_EIO;
    w->started = 1;
    return 0;
  }
  return WSCHAT_ENOMEM;
}

static int start_decide(uint64_t client, const char *verdict, unsigned ms) {
  struct worker job = {.what = WORK_DECIDE, .client = client, .delay_ms = ms};
  snprintf(job.verdict, sizeof(job.verdict), "%s", verdict);
  return start_worker(&job);
}

/* ---- on_message: the probe's own commands ---- */

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
  /* The command, parsed again from the new text. */
  const struct wschat_command *cmd = wschat_message_command(m);
  CHECK((n > 1 && up[0] == '/' && up[1] != '/') == (cmd != NULL),
        "command of the replaced text: %p", (const void *)cmd);
  return WSCHAT_PASS;
}

/* wschat_message_command() against what the text says. */
static void check_message_command(struct wschat_message *m, const char *text,
                                  size_t len) {
  const struct wschat_command *cmd = wschat_message_command(m);
  int binary = wschat_message_is_binary(m);
  if (binary || len == 0 || text[0] != '/' || (len > 1 && text[1] == '/')) {
    CHECK(cmd == NULL, "a command in a plain line");
    return;
  }
  if (len < 2 || !isalpha((unsigned char)text[1]))
    return; /* "/" alone, "/ x", "/1": not stated either way */
  CHECK(cmd != NULL, "no command in %.*s", (int)len, text);
  if (cmd == NULL)
    return;
  size_t wl = 0; /* text is not NUL-terminated (wschat.h) */
  while (1 + wl < len && text[1 + wl] != ' ')
    wl++;
  const char *name = wschat_command_name(cmd);
  CHECK(strlen(name) == wl && memcmp(name, text + 1, wl) == 0,
        "command name %s in %.*s", name, (int)len, text);
  if (memchr(text, '\t', len) == NULL) { /* args: the rest, trimmed */
    const char *p = text + 1 + wl, *end = text + len;
    while (p < end && *p == ' ')
      p++;
    while (end > p && end[-1] == ' ')
      end--;
    size_t al;
    const char *args = wschat_command_args(cmd, &al);
    CHECK(al == (size_t)(end - p) && memcmp(args, p, al) == 0,
          "command args [%.*s] of %.*s", (int)al, args, (int)len, text);
  }
}

static int on_message(struct wschat_client *c, struct wschat_message *m,
                      void *user) {
  CHECK(user == &app, "on_message user pointer");
  size_t len;
  const char *text = wschat_message_text(m, &len);
  unsigned long long id = idof(c);
  const char *name = or_dash(wschat_client_name(c));
  if (wschat_message_is_binary(m)) {
    logf_("message %llu %s binary %zu", id, name, len);
    CHECK(wschat_message_command(m) == NULL, "a command in a binary message");
    return WSCHAT_PASS;
  }
  char buf[256];
  logf_("message %llu %s text %s", id, name, shown(buf, sizeof(buf), text, len));
  check_open_client(c);
  check_message_command(m, text, len);

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
    r = wschat_client_move(c, argz(a1, sizeof(a1), arg, al));
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/home", &arg, &al)) {
    r = wschat_client_move(c, "lobby");
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
    r = wschat_client_move(c, "elsewhere");
    CHECK(r == WSCHAT_ECLOSED, "move after close: %d", r);
    r = wschat_client_leave(c, NULL, NULL);
    CHECK(r == WSCHAT_ECLOSED, "leave after close: %d", r);
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
                     "query=%s tag=%s proto=%s",
                     id, wschat_client_name(c), or_dash(wschat_client_room(c)),
                     wschat_client_peer(c), wschat_client_path(c),
                     or_dash(wschat_client_query(c)),
                     or_dash(wschat_client_get_data(c)),
                     or_dash(wschat_client_protocol(c)));
    reply(c, line, (size_t)n);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/threads", &arg, &al)) {
    int n = atoi(argz(a1, sizeof(a1), arg, al));
    struct worker job = {.what = WORK_LINES, .n = n};
    snprintf(job.room, sizeof(job.room), "%s", wschat_client_room(c));
    r = n > 0 && n <= 100000 ? start_worker(&job) : WSCHAT_EINVAL;
    if (r != 0)
      reply_error(c, r);
    return WSCHAT_DROP;
  }
  if (is_cmd(text, len, "/stop", &arg, &al)) {
    struct worker job = {.what = WORK_SHUTDOWN};
    r = start_worker(&job);
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

/* ---- registered commands ---- */

/* The first argument as a C string (cut to fit). */
static const char *arg1(const struct wschat_command *cmd, char *buf,
                        size_t cap) {
  size_t n;
  const char *a = wschat_command_arg(cmd, &n);
  return argz(buf, cap, a, n);
}

static void check_command(const struct wschat_command *cmd) {
  size_t al, fl, rl;
  const char *args = wschat_command_args(cmd, &al);
  const char *first = wschat_command_arg(cmd, &fl);
  const char *rest = wschat_command_rest(cmd, &rl);
  CHECK(wschat_command_args(cmd, NULL) == args, "args with len NULL");
  CHECK(fl <= al && memcmp(args, first, fl) == 0, "arg is not args' start");
  CHECK(rl <= al && (rl == 0 || memcmp(args + al - rl, rest, rl) == 0),
        "rest is not args' end");
  CHECK((al == 0) == (fl == 0), "args %zu, arg %zu", al, fl);
}

static int cmd_add(struct wschat_client *c, const struct wschat_command *cmd,
                   void *user) {
  CHECK(user == &app, "command user pointer");
  check_command(cmd);
  char room[128];
  int r = wschat_client_join(c, arg1(cmd, room, sizeof(room)));
  if (r == WSCHAT_ETOOMANY)
    CHECK(wschat_client_rooms(c, NULL, NULL) == MAX_ROOMS, "ETOOMANY at %zu",
          wschat_client_rooms(c, NULL, NULL));
  if (r != 0)
    reply_error(c, r);
  return WSCHAT_DROP;
}

static int cmd_unjoin(struct wschat_client *c,
                      const struct wschat_command *cmd, void *user) {
  (void)user;
  check_command(cmd);
  char room[128], reason[128];
  size_t rl;
  const char *rest = wschat_command_rest(cmd, &rl);
  arg1(cmd, room, sizeof(room));
  argz(reason, sizeof(reason), rest, rl);
  int r = wschat_client_leave(c, room[0] ? room : NULL,
                              reason[0] ? reason : NULL);
  if (r != 0)
    reply_error(c, r);
  return WSCHAT_DROP;
}

static int cmd_myrooms(struct wschat_client *c,
                       const struct wschat_command *cmd, void *user) {
  (void)cmd;
  (void)user;
  struct roomlist l = {.len = 0};
  rooms_of(c, &l);
  char line[1200];
  int n = snprintf(line, sizeof(line), "* myrooms %s current=%s n=%zu",
                   l.text, or_dash(wschat_client_room(c)), l.n);
  reply(c, line, (size_t)n);
  return WSCHAT_DROP;
}

static int cmd_say(struct wschat_client *c, const struct wschat_command *cmd,
                   void *user) {
  (void)user;
  size_t len;
  const char *text = wschat_command_args(cmd, &len);
  int r = wschat_server_say(app.srv, wschat_client_room(c), BOT, text, len);
  if (r != 0)
    reply_error(c, r);
  return WSCHAT_DROP;
}

static int cmd_keep(struct wschat_client *c, const struct wschat_command *cmd,
                    void *user) {
  char room[128];
  int keep = strcasecmp(wschat_command_name(cmd), "keep") == 0;
  CHECK(user == (keep ? (void *)&app : NULL), "command user pointer");
  int r = wschat_server_keep_room(app.srv, arg1(cmd, room, sizeof(room)), keep);
  if (r != 0)
    reply_error(c, r);
  else
    replys(c, keep ? "* kept" : "* let go");
  return WSCHAT_DROP;
}

static int cmd_posts(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)user;
  char a[32];
  int n = atoi(arg1(cmd, a, sizeof(a)));
  int r = WSCHAT_EINVAL;
  if (n > 0 && n <= 100000 && app.nbatches < MAX_BATCHES) {
    int b = app.nbatches++;
    app.batches[b] = (struct batch){.next = 1, .n = n};
    struct worker job = {.what = WORK_POSTS, .n = n, .batch = b,
                         .client = wschat_client_id(c)};
    r = start_worker(&job);
  }
  if (r != 0)
    reply_error(c, r);
  return WSCHAT_DROP;
}

static int cmd_lookup(struct wschat_client *c,
                      const struct wschat_command *cmd, void *user) {
  (void)user;
  char a[32], line[128];
  uint64_t id = strtoull(arg1(cmd, a, sizeof(a)), NULL, 10);
  struct wschat_client *o = wschat_server_client(app.srv, id);
  int n = snprintf(line, sizeof(line), "* lookup %llu %s",
                   (unsigned long long)id, o ? wschat_client_name(o) : "-");
  CHECK(o == NULL || wschat_client_id(o) == id, "lookup of %llu",
        (unsigned long long)id);
  reply(c, line, (size_t)n);
  return WSCHAT_DROP;
}

static int cmd_quiet(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)user;
  char a[32];
  int r = wschat_server_set_option(app.srv, WSCHAT_OPT_QUIET_ROOM,
                                   atoll(arg1(cmd, a, sizeof(a))));
  if (r != 0)
    reply_error(c, r);
  else
    replys(c, "* quiet set");
  return WSCHAT_DROP;
}

static int cmd_args(struct wschat_client *c, const struct wschat_command *cmd,
                    void *user) {
  (void)user;
  check_command(cmd);
  size_t al, fl, rl;
  const char *args = wschat_command_args(cmd, &al);
  const char *first = wschat_command_arg(cmd, &fl);
  const char *rest = wschat_command_rest(cmd, &rl);
  char line[1024];
  int n = snprintf(line, sizeof(line),
                   "* args name=%s args=[%.*s] arg=[%.*s] rest=[%.*s]",
                   wschat_command_name(cmd), (int)al, args, (int)fl, first,
                   (int)rl, rest);
  reply(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
  return WSCHAT_DROP;
}

static int cmd_latepost(struct wschat_client *c,
                        const struct wschat_command *cmd, void *user) {
  (void)cmd;
  (void)user;
  app.want_late_post = 1;
  replys(c, "* will post during the shutdown");
  return WSCHAT_DROP;
}

/* "/strerror": every code its own text, never NULL or empty. */
static int cmd_strerror(struct wschat_client *c,
                        const struct wschat_command *cmd, void *user) {
  (void)cmd;
  (void)user;
  int before = app.failures;
  static const int codes[] = {
      WSCHAT_OK,      WSCHAT_EINVAL,     WSCHAT_ENAME,      WSCHAT_EROOM,
      WSCHAT_ETOOBIG, WSCHAT_ENAMETAKEN, WSCHAT_ENOTFOUND,  WSCHAT_ECLOSED,
      WSCHAT_ESTATE,  WSCHAT_ESAMEROOM,  WSCHAT_ENOTOPEN,   WSCHAT_ETOOMANY,
      WSCHAT_EEXIST,  WSCHAT_ERESERVED,  WSCHAT_ENOTMEMBER, WSCHAT_ENOMEM,
      WSCHAT_EIO,     WSCHAT_EADDR,      WSCHAT_ENOHISTORY, WSCHAT_ETLS};
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
  replys(c, app.failures == before ? "* strerror ok" : "! strerror");
  return WSCHAT_DROP;
}

static int cmd_maybe(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)c;
  (void)cmd;
  (void)user;
  return WSCHAT_PASS; /* the chat answers "unknown command" */
}

static int cmd_never(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)cmd;
  (void)user;
  CHECK(0, "a command that on_message dropped ran");
  replys(c, "* registered drop ran");
  return WSCHAT_DROP;
}

/* ---- history ---- */

static int cmd_hstats(struct wschat_client *c, const struct wschat_command *cmd,
                      void *user) {
  (void)cmd;
  CHECK(user == &app, "command user pointer");
  struct wschat_history_stats st;
  int r = wschat_server_history_stats(app.srv, &st);
  CHECK(r == (app.history ? 0 : WSCHAT_ENOHISTORY), "history_stats: %d", r);
  if (r != 0) {
    reply_error(c, r);
    return WSCHAT_DROP;
  }
  CHECK(st.written <= st.appended && st.queue_used <= st.queue_peak,
        "history counters: written %llu of %llu, queue %zu of peak %zu",
        (unsigned long long)st.written, (unsigned long long)st.appended,
        st.queue_used, st.queue_peak);
  char line[256];
  int n = snprintf(
      line, sizeof(line),
      "* hstats appended=%llu written=%llu dropped=%llu "
      "write_errors=%llu rows_lost=%llu read_errors=%llu",
      (unsigned long long)st.appended, (unsigned long long)st.written,
      (unsigned long long)st.dropped, (unsigned long long)st.write_errors,
      (unsigned long long)st.rows_lost, (unsigned long long)st.read_errors);
  reply(c, line, (size_t)n);
  return WSCHAT_DROP;
}

/* One /hread on its way: only the client's id (it may hang up). */
struct hread {
  uint64_t client;
  size_t limit;
  char room[WSCHAT_ROOM_MAX + 1];
};

static void on_hread(struct wschat_server *srv, const char *room,
                     const struct wschat_event *const *events, size_t n,
                     int complete, int err, void *user) {
  struct hread *h = user;
  CHECK(srv == app.srv, "history callback server");
  CHECK(!app.in_read, "the history answer came inside the read call");
  CHECK(room != NULL && strcmp(room, h->room) == 0, "history of %s, asked %s",
        or_dash(room), h->room);
  CHECK(n <= h->limit, "%zu events for a limit of %zu", n, h->limit);
  CHECK(err == 0 || (err == WSCHAT_EIO && n == 0 && !complete),
        "history answer: err %d, n %zu, complete %d", err, n, complete);
  size_t cap = 128 + WSCHAT_ROOM_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *reason = wschat_event_reason(events[i]);
    wschat_event_text(events[i], &len);
    cap += len + (reason ? strlen(reason) : 0) + 2 * WSCHAT_NAME_MAX + 64;
  }
  char *msg = malloc(cap);
  struct wschat_client *c = wschat_server_client(srv, h->client);
  if (msg == NULL || c == NULL) {
    CHECK(msg != NULL, "malloc");
    free(msg);
    free(h);
    return;
  }
  size_t used =
      (size_t)snprintf(msg, cap, "* hread %s n=%zu complete=%d err=%d", h->room,
                       n, complete, err);
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++) {
    const struct wschat_event *ev = events[i];
    enum wschat_event_kind k = wschat_event_kind(ev);
    uint64_t id = wschat_event_id(ev);
    const char *r = wschat_event_room(ev), *why = wschat_event_reason(ev);
    size_t len;
    const char *text = wschat_event_text(ev, &len);
    CHECK(id > last, "history ids: %llu after %llu", (unsigned long long)id,
          (unsigned long long)last);
    CHECK(r != NULL && strcasecmp(r, h->room) == 0, "an event of #%s in #%s",
          or_dash(r), h->room);
    CHECK(k >= WSCHAT_EVENT_MESSAGE && k <= WSCHAT_EVENT_NICK, "a stored %s",
          or_dash(kind_name(k)));
    CHECK(wschat_event_client(ev) == 0, "a stored event with a client id");
    last = id;
    /* The text of a leave is its reason. */
    if (why != NULL) {
      text = why;
      len = strlen(why);
    }
    used += (size_t)snprintf(msg + used, cap - used, "\n%llu %s %s %s :%.*s",
                             (unsigned long long)id, or_dash(kind_name(k)),
                             or_dash(wschat_event_from(ev)),
                             or_dash(wschat_event_to(ev)), (int)len, text);
  }
  reply(c, msg, used);
  free(msg);
  free(h);
}

/* "/hread ROOM LIMIT [BEFORE]": the arguments go to the API as given
 * (LIMIT 0 and over 10,000, and bad room names, are the API's to refuse). */
static int cmd_hread(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  CHECK(user == &app, "command user pointer");
  size_t len;
  const char *args = wschat_command_args(cmd, &len);
  char buf[256], room[128] = "";
  unsigned long long limit = 0, before = 0;
  argz(buf, sizeof(buf), args, len);
  if (sscanf(buf, "%127s %llu %llu", room, &limit, &before) < 2) {
    replys(c, "! usage: /hread ROOM LIMIT [BEFORE]");
    return WSCHAT_DROP;
  }
  struct hread *h = calloc(1, sizeof(*h));
  if (h == NULL) {
    reply_error(c, WSCHAT_ENOMEM);
    return WSCHAT_DROP;
  }
  h->client = wschat_client_id(c);
  h->limit = (size_t)limit;
  snprintf(h->room, sizeof(h->room), "%s", room);
  app.in_read = 1;
  int r = wschat_server_read_history(app.srv, room, (size_t)limit, before,
                                     on_hread, h);
  app.in_read = 0;
  if (r != 0) {
    free(h); /* the callback will not run */
    reply_error(c, r);
  }
  return WSCHAT_DROP;
}

/* ---- HTTP routes ---- */

static void route_status(struct wschat_http_request *req, void *user) {
  CHECK(user == &app, "route user pointer");
  const char *method = wschat_http_method(req), *path = wschat_http_path(req);
  const char *query = wschat_http_query(req);
  logf_("http %s %s %s", method, path, or_dash(query));
  char tag[64] = "";
  int r = wschat_http_header(req, "x-tag", tag, sizeof(tag));
  CHECK(r == WSCHAT_ENOTFOUND || (r >= 0 && (size_t)r == strlen(tag)),
        "http_header: %d", r);
  if (r > 1) {
    char small[2] = "?";
    int r2 = wschat_http_header(req, "X-Tag", small, sizeof(small));
    CHECK(r2 == r && small[0] == '\0', "http_header, small buffer: %d", r2);
  }
  r = wschat_http_header(req, NULL, tag + 32, 32);
  CHECK(r == WSCHAT_EINVAL, "http_header(NULL): %d", r);
  r = wschat_http_add_header(req, "X-Route", "status");
  CHECK(r == 0, "http_add_header: %d", r);
  r = wschat_http_add_header(req, "Content-Length", "1");
  CHECK(r == WSCHAT_EINVAL, "http_add_header Content-Length: %d", r);
  r = wschat_http_add_header(req, "X-Bad", "a\nb");
  CHECK(r == WSCHAT_EINVAL, "http_add_header with LF: %d", r);
  char body[256];
  int n = snprintf(body, sizeof(body),
                   "ok method=%s path=%s query=%s tag=%s rooms=%zu "
                   "clients=%zu\n",
                   method, path, or_dash(query), or_dash(tag),
                   wschat_server_rooms(app.srv, NULL, NULL),
                   wschat_server_members(app.srv, NULL, NULL, NULL));
  r = wschat_http_respond(req, 99, NULL, "x", 1);
  CHECK(r == WSCHAT_EINVAL, "respond 99: %d", r);
  r = wschat_http_respond(req, 600, NULL, "x", 1);
  CHECK(r == WSCHAT_EINVAL, "respond 600: %d", r);
  r = wschat_http_respond(req, 200, NULL, body, (size_t)n);
  CHECK(r == 0, "respond: %d", r);
  r = wschat_http_respond(req, 200, NULL, body, (size_t)n);
  CHECK(r == WSCHAT_ESTATE, "second respond: %d", r);
}

static void route_prefix(struct wschat_http_request *req, void *user) {
  char body[512];
  logf_("http %s %s %s", wschat_http_method(req), wschat_http_path(req),
        or_dash(wschat_http_query(req)));
  int n = snprintf(body, sizeof(body), "prefix %s path=%s", (const char *)user,
                   wschat_http_path(req));
  int r = wschat_http_respond(req, 200, "text/x-probe", body, (size_t)n);
  CHECK(r == 0, "respond: %d", r);
}

static void route_silent(struct wschat_http_request *req, void *user) {
  (void)user;
  logf_("http %s %s %s", wschat_http_method(req), wschat_http_path(req),
        or_dash(wschat_http_query(req)));
}

static void route_bad(struct wschat_http_request *req, void *user) {
  (void)user;
  logf_("http %s %s %s", wschat_http_method(req), wschat_http_path(req),
        or_dash(wschat_http_query(req)));
  int r = wschat_http_respond(req, 404, NULL, "nope", 4);
  CHECK(r == 0, "respond 404: %d", r);
}

/* A cached file: ETag "v1"; If-None-Match naming it gets 304, no body. */
static void route_cached(struct wschat_http_request *req, void *user) {
  (void)user;
  char inm[64];
  int r = wschat_http_add_header(req, "ETag", "\"v1\"");
  CHECK(r == 0, "add ETag: %d", r);
  int n = wschat_http_header(req, "If-None-Match", inm, sizeof(inm));
  if (n > 0 && strcmp(inm, "\"v1\"") == 0) {
    r = wschat_http_respond(req, 304, NULL, "x", 1);
    CHECK(r == WSCHAT_EINVAL, "respond 304 with a body: %d", r);
    r = wschat_http_respond(req, 304, NULL, NULL, 0);
    CHECK(r == 0, "respond 304: %d", r);
  } else {
    r = wschat_http_respond(req, 200, "text/css", "p{}", 3);
    CHECK(r == 0, "respond 200: %d", r);
  }
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

static void late_post(struct wschat_server *srv, void *arg) {
  CHECK(srv == app.srv && arg == &app, "late post arguments");
  app.late_ran++;
  logf_("late post ran");
}

static void on_shutdown(struct wschat_server *srv, void *user) {
  CHECK(srv == app.srv && user == &app, "shutdown callback arguments");
  logf_("shutdown");
  int r = wschat_server_post_broadcast(srv, NULL, "late", 4);
  CHECK(r == WSCHAT_ECLOSED, "post_broadcast after shutdown: %d", r);
  r = wschat_server_post_shutdown(srv);
  CHECK(r == WSCHAT_ECLOSED, "post_shutdown after shutdown: %d", r);
  r = wschat_server_post(srv, late_post, &app);
  CHECK(r == WSCHAT_ECLOSED, "post after shutdown: %d", r);
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
  if (app.want_late_post) {
    /* Posted while the shutdown goes on: it still runs, exactly once. */
    r = wschat_server_post(app.srv, late_post, &app);
    CHECK(r == 0, "post during the shutdown: %d", r);
    app.late_posted = r == 0;
  }
}

/* Calls that need no client: run once listening. */
static void check_static(void) {
  CHECK(wschat_version() == WSCHAT_VERSION_NUM, "version %x", wschat_version());
  char v[32];
  snprintf(v, sizeof(v), "%d.%d.%d", WSCHAT_VERSION_MAJOR, WSCHAT_VERSION_MINOR,
           WSCHAT_VERSION_PATCH);
  CHECK(strcmp(wschat_version_string(), v) == 0, "version string %s",
        wschat_version_string());

  CHECK(wschat_server_new(app.loop, NULL) == WSCHAT_EINVAL, "new(NULL out)");
  CHECK(wschat_server_client(app.srv, 0) == NULL, "client 0");
  CHECK(wschat_server_client(app.srv, 1) == NULL, "client 1 before any");
  int r = wschat_server_post(NULL, late_post, &app);
  CHECK(r == WSCHAT_EINVAL, "post to NULL: %d", r);
  r = wschat_server_post(app.srv, NULL, &app);
  CHECK(r == WSCHAT_EINVAL, "post of NULL: %d", r);
  r = wschat_server_post_broadcast(app.srv, "bad room!", "x", 1);
  CHECK(r == WSCHAT_EROOM, "post_broadcast to an invalid room: %d", r);

  /* A server on a loop of its own that never listens. */
  struct wschat_server *own;
  r = wschat_server_new(NULL, &own);
  CHECK(r == 0, "new on its own loop: %d", r);
  if (r == 0) {
    uv_loop_t *l = (uv_loop_t *)wschat_server_loop(own);
    CHECK(l != NULL && l != app.loop, "own loop");
    r = wschat_server_post(own, late_post, &app);
    CHECK(r == WSCHAT_ECLOSED, "post before listening: %d", r);
    r = wschat_server_post_broadcast(own, NULL, "x", 1);
    CHECK(r == WSCHAT_ECLOSED, "post_broadcast before listening: %d", r);
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
    r = wschat_server_post(bad, late_post, &app);
    CHECK(r == WSCHAT_ECLOSED, "post to a server not listening: %d", r);
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
      {WSCHAT_OPT_MAX_ROOMS, 0},
      {WSCHAT_OPT_MAX_ROOMS, 1001},
      {WSCHAT_OPT_QUIET_ROOM, -1},
      {WSCHAT_OPT_HISTORY_REPLAY, -1},
      {WSCHAT_OPT_HISTORY_REPLAY, 10001},
      {WSCHAT_OPT_MAX_LINE, 0},
      {WSCHAT_OPT_MAX_LINE, ((int64_t)1 << 31) + 1},
      {WSCHAT_OPT_RATE, -1},
      {WSCHAT_OPT_RATE, 1000001},
      {WSCHAT_OPT_BURST, 0},
      {WSCHAT_OPT_DEFLATE, 2},
      {WSCHAT_OPT_DEFLATE, -1},
      {WSCHAT_OPT_DEFLATE_THRESHOLD, -1},
      {WSCHAT_OPT_DEFLATE_THRESHOLD, ((int64_t)1 << 31) + 1},
      {(enum wschat_option)0, 1},
      {(enum wschat_option)999, 1},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r = wschat_server_set_option(srv, bad[i].opt, bad[i].value);
    CHECK(r == WSCHAT_EINVAL, "set_option(%d, %lld): %d", (int)bad[i].opt,
          (long long)bad[i].value, r);
  }
  static const struct {
    enum wschat_option opt;
    int64_t value;
  } good[] = {
      {WSCHAT_OPT_MODE, WSCHAT_MODE_CHAT},
      {WSCHAT_OPT_MAX_MESSAGE, MAX_MESSAGE},
      {WSCHAT_OPT_CLOSE_TIMEOUT_MS, 2000},
      {WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS, HANDSHAKE_MS},
      {WSCHAT_OPT_MAX_ROOMS, 1000},
      {WSCHAT_OPT_MAX_ROOMS, 1},
      {WSCHAT_OPT_MAX_ROOMS, MAX_ROOMS},
      {WSCHAT_OPT_QUIET_ROOM, 0},
      {WSCHAT_OPT_QUIET_ROOM, 500},
      {WSCHAT_OPT_HISTORY_REPLAY, 0},
      {WSCHAT_OPT_HISTORY_REPLAY, 10000},
      {WSCHAT_OPT_HISTORY_REPLAY, 3}, /* a joiner gets the last 3 events */
      {WSCHAT_OPT_MAX_LINE, 65536},
      {WSCHAT_OPT_RATE, 20},
      {WSCHAT_OPT_BURST, 40},
      {WSCHAT_OPT_DEFLATE, 0},
      {WSCHAT_OPT_DEFLATE, 1},
      {WSCHAT_OPT_DEFLATE_THRESHOLD, 0},
      {WSCHAT_OPT_DEFLATE_THRESHOLD, 128},
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    int r = wschat_server_set_option(srv, good[i].opt, good[i].value);
    CHECK(r == 0, "set_option(%d, %lld): %d", (int)good[i].opt,
          (long long)good[i].value, r);
  }
  /* Origins that are not SCHEME://HOST[:PORT] (none is added: the probe's
   * clients must stay welcome). */
  static const char *const bad_origins[] = {NULL,
                                            "",
                                            "example.com",
                                            "localhost:8080",
                                            "https://",
                                            "https:/x",
                                            "https://x.example/path",
                                            "https://a b",
                                            "https://\xc3\xa9.example"};
  for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
    int r = wschat_server_add_origin(srv, bad_origins[i]);
    CHECK(r == WSCHAT_EINVAL, "add_origin(%s): %d",
          bad_origins[i] ? bad_origins[i] : "NULL", r);
  }
  CHECK(wschat_server_add_origin(NULL, "https://x.example") == WSCHAT_EINVAL,
        "add_origin on no server");
}

/* Reserved names, commands, watchers, routes, kept rooms: before listening. */
static void check_registries(struct wschat_server *srv) {
  int r = wschat_server_reserve_name(srv, BOT);
  CHECK(r == 0, "reserve_name: %d", r);
  r = wschat_server_reserve_name(srv, BOT);
  CHECK(r == WSCHAT_EEXIST, "reserve_name twice: %d", r);
  r = wschat_server_reserve_name(srv, "bad name!");
  CHECK(r == WSCHAT_ENAME, "reserve_name of an invalid name: %d", r);
  r = wschat_server_release_name(srv, "nobody-reserved-this");
  CHECK(r == WSCHAT_ENOTFOUND, "release_name not reserved: %d", r);
  r = wschat_server_reserve_name(srv, "temp-name");
  CHECK(r == 0, "reserve_name: %d", r);
  r = wschat_server_release_name(srv, "temp-name");
  CHECK(r == 0, "release_name: %d", r);
  r = wschat_server_release_name(srv, "temp-name");
  CHECK(r == WSCHAT_ENOTFOUND, "release_name twice: %d", r);

  static const struct {
    const char *name, *help;
    wschat_command_cb cb;
    void *user;
  } cmds[] = {
      {"add", "ROOM - also enter ROOM", cmd_add, &app},
      {"unjoin", "[ROOM [REASON]] - leave ROOM (your current room)",
       cmd_unjoin, &app},
      {"myrooms", "- the rooms you are in", cmd_myrooms, &app},
      {"say", "TEXT - probebot says TEXT", cmd_say, &app},
      {"keep", "ROOM - keep ROOM while empty", cmd_keep, &app},
      {"unkeep", NULL, cmd_keep, NULL},
      {"posts", "N - N posts from a thread", cmd_posts, &app},
      {"lookup", "ID - a client by id", cmd_lookup, &app},
      {"quiet", "N - WSCHAT_OPT_QUIET_ROOM", cmd_quiet, &app},
      {"args", "... - the accessors", cmd_args, &app},
      {"latepost", "- post during the shutdown", cmd_latepost, &app},
      {"strerror", "- every error code has its own text", cmd_strerror, &app},
      {"maybe", "- passes", cmd_maybe, &app},
      {"drop", "- never runs", cmd_never, &app},
      {"hstats", "- the history store's counters", cmd_hstats, &app},
      {"hread", "ROOM LIMIT [BEFORE] - read the history", cmd_hread, &app},
  };
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    r = wschat_server_add_command(srv, cmds[i].name, cmds[i].help, cmds[i].cb,
                                  cmds[i].user);
    CHECK(r == 0, "add_command(%s): %d", cmds[i].name, r);
  }
  static const char *const builtin[] = {"help",  "nick",  "join",    "leave",
                                        "rooms", "users", "whisper", "w",
                                        "msg",   "me",    "quit",    "add"};
  for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
    r = wschat_server_add_command(srv, builtin[i], NULL, cmd_maybe, NULL);
    CHECK(r == WSCHAT_EEXIST, "add_command(%s) taken: %d", builtin[i], r);
  }
  char toolong[34], longhelp[202];
  memset(toolong, 'x', sizeof(toolong) - 1);
  toolong[sizeof(toolong) - 1] = '\0';
  memset(longhelp, 'h', sizeof(longhelp) - 1);
  longhelp[sizeof(longhelp) - 1] = '\0'; /* 201 bytes */
  static const char *const badnames[] = {"", "/slash", "has space", "bad!"};
  for (size_t i = 0; i < sizeof(badnames) / sizeof(badnames[0]); i++) {
    r = wschat_server_add_command(srv, badnames[i], NULL, cmd_maybe, NULL);
    CHECK(r == WSCHAT_EINVAL, "add_command(\"%s\"): %d", badnames[i], r);
  }
  r = wschat_server_add_command(srv, toolong, NULL, cmd_maybe, NULL);
  CHECK(r == WSCHAT_EINVAL, "add_command of a 33-byte name: %d", r);
  r = wschat_server_add_command(srv, NULL, NULL, cmd_maybe, NULL);
  CHECK(r == WSCHAT_EINVAL, "add_command(NULL): %d", r);
  r = wschat_server_add_command(srv, "nocb", NULL, NULL, NULL);
  CHECK(r == WSCHAT_EINVAL, "add_command without a callback: %d", r);
  r = wschat_server_add_command(srv, "ctl", "two\nlines", cmd_maybe, NULL);
  CHECK(r == WSCHAT_EINVAL, "add_command, help with a newline: %d", r);
  r = wschat_server_add_command(srv, "long", longhelp, cmd_maybe, NULL);
  CHECK(r == WSCHAT_EINVAL, "add_command, help of 201 bytes: %d", r);
  longhelp[200] = '\0';
  toolong[32] = '\0';
  r = wschat_server_add_command(srv, "long", longhelp, cmd_maybe, NULL);
  CHECK(r == 0, "add_command, help of 200 bytes: %d", r);
  r = wschat_server_add_command(srv, toolong, NULL, cmd_maybe, NULL);
  CHECK(r == 0, "add_command of a 32-byte name: %d", r);
  r = wschat_server_remove_command(srv, "long");
  CHECK(r == 0, "remove_command: %d", r);
  r = wschat_server_remove_command(srv, "long");
  CHECK(r == WSCHAT_ENOTFOUND, "remove_command twice: %d", r);
  r = wschat_server_remove_command(srv, toolong);
  CHECK(r == 0, "remove_command: %d", r);
  r = wschat_server_remove_command(srv, "nick");
  CHECK(r == WSCHAT_ENOTFOUND, "remove_command of a built-in: %d", r);
  r = wschat_server_add_command(srv, "gone", "- removed at once", cmd_maybe,
                                NULL);
  CHECK(r == 0, "add_command(gone): %d", r);
  r = wschat_server_remove_command(srv, "gone");
  CHECK(r == 0, "remove_command(gone): %d", r);

  uint64_t h = 0, tmp = 0;
  r = wschat_server_watch(srv, NULL, NULL, &h);
  CHECK(r == WSCHAT_EINVAL, "watch(NULL): %d", r);
  r = wschat_server_watch(srv, log_event, &app, &h);
  CHECK(r == 0, "watch: %d", r);
  r = wschat_server_watch(srv, count_event, NULL, NULL); /* handle NULL */
  CHECK(r == 0, "watch without a handle: %d", r);
  r = wschat_server_watch(srv, once_event, NULL, &app.once_handle);
  CHECK(r == 0 && app.once_handle != h, "watch: %d", r);
  r = wschat_server_watch(srv, count_event, NULL, &tmp);
  CHECK(r == 0 && tmp != h && tmp != app.once_handle, "watch: %d", r);
  r = wschat_server_unwatch(srv, tmp);
  CHECK(r == 0, "unwatch: %d", r);
  r = wschat_server_unwatch(srv, tmp);
  CHECK(r == WSCHAT_ENOTFOUND, "unwatch twice: %d", r);
  r = wschat_server_unwatch(srv, 0xdeadbeef);
  CHECK(r == WSCHAT_ENOTFOUND, "unwatch of nothing: %d", r);

  static char deep[] = "/probe/deep/", prefix[] = "/probe/";
  r = wschat_server_route(srv, "/probe/status", route_status, &app);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, prefix, route_prefix, prefix);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, deep, route_prefix, deep);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, "/probe/silent", route_silent, NULL);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, "/probe/bad", route_bad, NULL);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, "/probe/cached", route_cached, NULL);
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, "/", route_prefix, "/");
  CHECK(r == 0, "route: %d", r);
  r = wschat_server_route(srv, "/probe/status", route_status, &app);
  CHECK(r == WSCHAT_EEXIST, "route twice: %d", r);
  r = wschat_server_route(srv, "no-slash", route_status, &app);
  CHECK(r == WSCHAT_EINVAL, "route without a slash: %d", r);
  char longpath[259];
  memset(longpath, 'p', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0'; /* 258 bytes */
  r = wschat_server_route(srv, longpath, route_status, &app);
  CHECK(r == WSCHAT_EINVAL, "route of 258 bytes: %d", r);

  size_t rooms = wschat_server_rooms(srv, NULL, NULL);
  r = wschat_server_keep_room(srv, "bad room!", 1);
  CHECK(r == WSCHAT_EROOM, "keep_room of an invalid room: %d", r);
  r = wschat_server_keep_room(srv, "never-made", 0);
  CHECK(r == WSCHAT_ENOTFOUND, "keep_room(0) of no room: %d", r);
  r = wschat_server_keep_room(srv, "kept", 1);
  CHECK(r == 0, "keep_room: %d", r);
  CHECK(wschat_server_rooms(srv, NULL, NULL) == rooms + 1, "a kept room");
  CHECK(wschat_server_members(srv, "kept", NULL, NULL) == 0, "kept members");
  r = wschat_server_keep_room(srv, "kept", 0);
  CHECK(r == 0, "keep_room(0): %d", r);
  CHECK(wschat_server_rooms(srv, NULL, NULL) == rooms, "an empty room let go");
}

/* A store of ours, only ever refused: its functions must never run. */
static int never_append(void *store, const struct wschat_event *ev) {
  (void)store;
  (void)ev;
  CHECK(0, "a refused store's append ran");
  return WSCHAT_EIO;
}
static uint64_t never_next_id(void *store) {
  (void)store;
  CHECK(0, "a refused store's next_id ran");
  return 1;
}
static uint64_t never_epoch(void *store) {
  (void)store;
  CHECK(0, "a refused store's epoch ran");
  return 1;
}
static int never_read(void *store, const struct wschat_history_query *q,
                      struct wschat_history_reply *reply) {
  (void)store;
  (void)q;
  (void)reply;
  CHECK(0, "a refused store's read ran");
  return WSCHAT_EIO;
}
static void never_close(void *store) {
  (void)store;
  CHECK(0, "a refused store's close ran");
}
static const struct wschat_history_store never_ops = {
    never_append, never_next_id, never_epoch, never_read, never_close};

static void never_answered(struct wschat_server *srv, const char *room,
                           const struct wschat_event *const *events, size_t n,
                           int complete, int err, void *user) {
  (void)srv;
  (void)events;
  (void)complete;
  (void)err;
  (void)user;
  CHECK(0, "a refused read was answered: %s, %zu events", or_dash(room), n);
}

/* The history calls before listening; with app.history, opens it. */
static void check_history(struct wschat_server *srv) {
  struct wschat_history_stats st;
  int r = wschat_server_history_stats(srv, &st);
  CHECK(r == WSCHAT_ENOHISTORY, "history_stats without a store: %d", r);
  r = wschat_server_history_stats(srv, NULL);
  CHECK(r == WSCHAT_EINVAL, "history_stats into NULL: %d", r);
  static const struct {
    const char *room;
    size_t limit;
    int want;
  } reads[] = {
      {NULL, 5, WSCHAT_EINVAL},
      {"lobby", 0, WSCHAT_EINVAL},
      {"lobby", 10001, WSCHAT_EINVAL},
      {"bad room!", 5, WSCHAT_EROOM},
      {"", 5, WSCHAT_EROOM},
      {"lobby", 5, WSCHAT_ENOHISTORY},
      {"lobby", 10000, WSCHAT_ENOHISTORY},
  };
  for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
    r = wschat_server_read_history(srv, reads[i].room, reads[i].limit, 0,
                                   never_answered, NULL);
    CHECK(r == reads[i].want, "read_history(%s, %zu): %d",
          or_dash(reads[i].room), reads[i].limit, r);
  }
  r = wschat_server_read_history(srv, "lobby", 5, 0, NULL, NULL);
  CHECK(r == WSCHAT_EINVAL, "read_history without a callback: %d", r);

  r = wschat_server_set_history_store(srv, NULL, NULL);
  CHECK(r == WSCHAT_EINVAL, "set_history_store(NULL): %d", r);
  struct wschat_history_store ops[5]; /* each operation NULL in turn */
  for (size_t i = 0; i < 5; i++)
    ops[i] = never_ops;
  ops[0].append = NULL;
  ops[1].next_id = NULL;
  ops[2].epoch = NULL;
  ops[3].read = NULL;
  ops[4].close = NULL;
  for (size_t i = 0; i < 5; i++) {
    r = wschat_server_set_history_store(srv, &ops[i], &app);
    CHECK(r == WSCHAT_EINVAL, "set_history_store without operation %zu: %d", i,
          r);
  }

  r = wschat_server_open_history(srv, NULL);
  CHECK(r == WSCHAT_EINVAL, "open_history(NULL): %d", r);
  struct wschat_history_options opt = {.path = NULL};
  r = wschat_server_open_history(srv, &opt);
  CHECK(r == WSCHAT_EINVAL, "open_history without a path: %d", r);
  opt.path = "";
  r = wschat_server_open_history(srv, &opt);
  CHECK(r == WSCHAT_EINVAL, "open_history of \"\": %d", r);
  opt.path = "/nonexistent-wschat-probe-dir/history.db";
  r = wschat_server_open_history(srv, &opt); /* says why on stderr */
  CHECK(r == WSCHAT_EIO, "open_history in a missing directory: %d", r);
  r = wschat_server_history_stats(srv, &st);
  CHECK(r == WSCHAT_ENOHISTORY, "history_stats after a failed open: %d", r);
  if (app.history == NULL)
    return;

  opt = (struct wschat_history_options){.path = app.history, .flush_ms = 20};
  r = wschat_server_open_history(srv, &opt);
  CHECK(r == 0, "open_history(%s): %d", app.history, r);
  r = wschat_server_open_history(srv, &opt);
  CHECK(r == WSCHAT_ESTATE, "open_history twice: %d", r);
  r = wschat_server_set_history_store(srv, &never_ops, &app);
  CHECK(r == WSCHAT_ESTATE, "set_history_store with a store open: %d", r);
  memset(&st, 0xff, sizeof(st));
  r = wschat_server_history_stats(srv, &st);
  CHECK(r == 0 && st.appended == 0 && st.written == 0 && st.dropped == 0,
        "history_stats of a new store: %d, %llu appended", r,
        (unsigned long long)st.appended);
  r = wschat_server_read_history(srv, "bad room!", 5, 0, never_answered, NULL);
  CHECK(r == WSCHAT_EROOM, "read_history of a bad room with a store: %d", r);
  /* Not listening yet: no post queue to bring an answer back. */
  r = wschat_server_read_history(srv, "lobby", 5, 0, never_answered, NULL);
  CHECK(r == WSCHAT_ESTATE, "read_history before listening: %d", r);
}

/* Once listening, a store can no longer be set, either way. */
static void check_history_listening(struct wschat_server *srv) {
  struct wschat_history_options opt = {.path = "never-opened.db"};
  int r = wschat_server_open_history(srv, &opt);
  CHECK(r == WSCHAT_ESTATE, "open_history while listening: %d", r);
  r = wschat_server_set_history_store(srv, &never_ops, &app);
  CHECK(r == WSCHAT_ESTATE, "set_history_store while listening: %d", r);
  /* Cluster mode: a bad URL is EINVAL whatever the state; a good one
   * while listening is ESTATE (nothing connects). */
  struct wschat_cluster_options co = {.node_id = "probe", .history = 1};
  r = wschat_server_set_cluster(srv, "http://127.0.0.1:6379", &co);
  CHECK(r == WSCHAT_EINVAL, "set_cluster with an http URL: %d", r);
  r = wschat_server_set_cluster(srv, "redis://127.0.0.1:1", &co);
  CHECK(r == WSCHAT_ESTATE, "set_cluster while listening: %d", r);
  co.node_id = "has space";
  r = wschat_server_set_cluster(NULL, "redis://127.0.0.1:1", &co);
  CHECK(r == WSCHAT_EINVAL, "set_cluster of no server: %d", r);
  opt.path = NULL;
  r = wschat_server_open_history(srv, &opt);
  CHECK(r == WSCHAT_EINVAL, "open_history without a path: %d", r);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  app.history = argc > 2 ? argv[2] : NULL;
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
  check_registries(app.srv);
  check_history(app.srv);
  app.jwt_secret = getenv("WSCHAT_PROBE_JWT_SECRET");
  if (app.jwt_secret) {
    static const char pem[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                              "-----END PUBLIC KEY-----\n";
    CHECK(wschat_server_set_jwt_secret(NULL, "x", 1) == WSCHAT_EINVAL,
          "jwt secret on NULL");
    CHECK(wschat_server_set_jwt_secret(app.srv, "short", 5) == WSCHAT_EINVAL,
          "a short jwt secret");
    CHECK(wschat_server_set_jwt_public_key(app.srv, pem, sizeof(pem) - 1) ==
              WSCHAT_EINVAL,
          "a bad public key");
    CHECK(wschat_server_set_jwt_public_key(app.srv, NULL, 0) == 0,
          "no public key");
    r = wschat_server_set_jwt_secret(app.srv, app.jwt_secret,
                                     strlen(app.jwt_secret));
    CHECK(r == 0, "jwt secret: %d", r);
  }
  /* TLS: the calls' argument and state checks (test_tls.py serves it). */
  CHECK(wschat_server_set_tls(NULL, "c", "k", NULL) == WSCHAT_EINVAL,
        "tls on NULL");
  CHECK(wschat_server_set_tls(app.srv, NULL, "k", NULL) == WSCHAT_EINVAL,
        "tls without a certificate");
  CHECK(wschat_server_reload_tls(app.srv) == WSCHAT_ESTATE,
        "tls reload without tls");
  CHECK(wschat_server_set_tls(app.srv, "/nonexistent/c.pem",
                              "/nonexistent/k.pem", NULL) == WSCHAT_ETLS,
        "tls with missing files");
  CHECK(wschat_server_reload_tls(app.srv) == WSCHAT_ESTATE,
        "a failed set_tls leaves no tls");
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
  CHECK(wschat_server_set_tls(app.srv, "c", "k", NULL) == WSCHAT_ESTATE,
        "tls after listen");
  r = wschat_server_set_option(app.srv, WSCHAT_OPT_MODE, WSCHAT_MODE_ECHO);
  CHECK(r == WSCHAT_ESTATE, "mode changed while listening: %d", r);
  check_static();
  check_history_listening(app.srv);

  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_start(&app.sigterm, on_sigterm, SIGTERM);
  uv_async_init(app.loop, &app.worker_done, on_worker_done);
  logf_("listening on ws://127.0.0.1:%d/", wschat_server_port(app.srv));

  uv_run(app.loop, UV_RUN_DEFAULT); /* ends when every handle is closed */
  struct wschat_history_stats st;
  r = wschat_server_history_stats(app.srv, &st); /* the last counters */
  CHECK(r == (app.history ? 0 : WSCHAT_ENOHISTORY),
        "history_stats after the shutdown: %d", r);
  if (r == 0)
    logf_("history final appended=%llu written=%llu",
          (unsigned long long)st.appended, (unsigned long long)st.written);
  int freed = wschat_server_free(app.srv);
  int closed = uv_loop_close(app.loop);
  CHECK(app.live == 0, "%ld connects without a disconnect", app.live);
  CHECK(app.logged == app.counted, "watchers saw %lu and %lu events",
        app.logged, app.counted);
  CHECK(app.once_calls == (app.logged > 0), "self-removing watcher ran %d",
        app.once_calls);
  CHECK(app.late_ran == app.late_posted, "a post during the shutdown ran %d",
        app.late_ran);
  logf_("exit free=%d loop=%d", freed, closed);
  pthread_mutex_destroy(&app.lock);
  return freed == 0 && closed == 0 && app.failures == 0 ? 0 : 1;
}
