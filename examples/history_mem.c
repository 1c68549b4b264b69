/*
 * history_mem: the chat's history kept by the program, in memory.
 *
 *   history_mem [PORT [KEEP]]   (default 8765; 0 picks a free port;
 *                                KEEP: events kept per room, default 200)
 *
 * The library keeps history in SQLite (wschat_server_open_history()); a
 * program may keep it elsewhere by handing the server five functions
 * (wschat_server_set_history_store()):
 * - append: copy the event (the wschat_event_*() accessors), here into a
 *   ring of the last KEEP events of its room;
 * - next_id: hand out event ids, here from a counter that starts at
 *   FIRST_ID (so ids are plainly this store's);
 * - epoch: the name of this set of ids. The rows die with the process,
 *   so each run is a new "database": the epoch is made at start (the
 *   start time) and stays fixed while the program runs. A client that
 *   comes back after a restart with ?since=ID&epoch=OLD is told that its
 *   ids mean nothing here (complete = 0) instead of getting a wrong answer;
 * - read: answer LAST, BEFORE and AFTER at once, with
 *   wschat_history_reply_add() and wschat_history_reply_end(). complete
 *   is honest: a read whose range reaches an event the ring has already
 *   dropped says 0;
 * - close: free everything (once, at shutdown).
 * With a store, the chat replays a room's last events to each joiner
 * ("[history] " lines in the text protocol, a "history" object in JSON),
 * answers /history and recovers JSON clients that reconnect with
 * ?since=ID&epoch=E.
 *
 * The program also reads the store the way an application would, through
 * the server (wschat_server_read_history()): /recap [N] answers with the
 * last N events of the caller's room.
 *
 * The server runs on a loop of its own, as in bot.c. Then:
 * websocat ws://localhost:8765, say a few lines, reconnect: they come back.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* for <uv.h> under -std=c11 */
#endif
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>
#include <wschat.h>

#define FIRST_ID 1000000 /* the first id this store hands out */
#define RECAP_MAX 50     /* /recap N: at most this many events */

/* ---- the store ---- */

/* One event as the store keeps it: copies of its strings (NULL when the
 * event has none). The room is the log's. */
struct stored {
  enum wschat_event_kind kind;
  uint64_t id;
  int64_t time_ms;
  char *from, *to, *text, *reason;
  size_t len; /* of text */
};

/* The last `keep` events of one room, oldest first from head. */
struct room_log {
  struct room_log *next;
  char name[WSCHAT_ROOM_MAX + 1];
  struct stored *ring; /* keep slots */
  size_t head, n;
  uint64_t lost; /* the highest id this room no longer has (dropped from
                    the ring, or not kept for want of memory); 0: none */
};

/* Owned by the server once set (its close frees it). */
struct mem_store {
  struct room_log *rooms;
  size_t keep;
  uint64_t next_id, epoch;
  uint64_t lost_unlogged; /* the highest id lost with no log to note it in
                             (the room's log could not be made) */
};

static char *dup_or_null(const char *s, size_t len) {
  if (s == NULL)
    return NULL;
  char *d = malloc(len + 1);
  if (d != NULL) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

static void stored_clear(struct stored *e) {
  free(e->from);
  free(e->to);
  free(e->text);
  free(e->reason);
  memset(e, 0, sizeof(*e));
}

/* The event at position i of the log (0: the oldest held). */
static struct stored *at(struct room_log *log, size_t keep, size_t i) {
  return &log->ring[(log->head + i) % keep];
}

/* Rooms are case-insensitive: "Dev" and "dev" are one room. */
static struct room_log *find_log(struct mem_store *st, const char *room) {
  for (struct room_log *l = st->rooms; l; l = l->next)
    if (strcasecmp(l->name, room) == 0)
      return l;
  return NULL;
}

static struct room_log *add_log(struct mem_store *st, const char *room) {
  struct room_log *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return NULL;
  l->ring = calloc(st->keep, sizeof(*l->ring));
  if (l->ring == NULL) {
    free(l);
    return NULL;
  }
  snprintf(l->name, sizeof(l->name), "%s", room);
  l->lost = st->lost_unlogged; /* any of those may have been this room's */
  l->next = st->rooms;
  st->rooms = l;
  return l;
}

/* Copies ev (valid during the call only). Never waits: the loop waits. */
static int mem_append(void *store, const struct wschat_event *ev) {
  struct mem_store *st = store;
  const char *room = wschat_event_room(ev);
  if (room == NULL) /* whispers and notices are never stored */
    return WSCHAT_EINVAL;
  struct room_log *log = find_log(st, room);
  uint64_t id = wschat_event_id(ev);
  if (log == NULL && (log = add_log(st, room)) == NULL) {
    st->lost_unlogged = id; /* reads will say so */
    return WSCHAT_ENOMEM;
  }
  size_t len;
  const char *text = wschat_event_text(ev, &len);
  const char *from = wschat_event_from(ev), *to = wschat_event_to(ev);
  const char *reason = wschat_event_reason(ev);
  struct stored e = {
      .kind = wschat_event_kind(ev),
      .id = id,
      .time_ms = wschat_event_time(ev),
      .from = dup_or_null(from, from ? strlen(from) : 0),
      .to = dup_or_null(to, to ? strlen(to) : 0),
      .text = dup_or_null(text, len),
      .reason = dup_or_null(reason, reason ? strlen(reason) : 0),
      .len = len,
  };
  if ((from && !e.from) || (to && !e.to) || !e.text || (reason && !e.reason)) {
    stored_clear(&e);
    log->lost = id; /* reads will say so */
    return WSCHAT_ENOMEM;
  }
  if (log->n == st->keep) { /* full: the oldest goes */
    struct stored *old = at(log, st->keep, 0);
    log->lost = old->id;
    stored_clear(old);
    log->head = (log->head + 1) % st->keep;
    log->n--;
  }
  *at(log, st->keep, log->n) = e;
  log->n++;
  return 0;
}

static uint64_t mem_next_id(void *store) {
  struct mem_store *st = store;
  return st->next_id++;
}

static uint64_t mem_epoch(void *store) {
  const struct mem_store *st = store;
  return st->epoch;
}

/* Answers q at once: the rows at positions [lo, hi) of the room's log. */
static int mem_read(void *store, const struct wschat_history_query *q,
                    struct wschat_history_reply *reply) {
  struct mem_store *st = store;
  struct room_log none = {.lost = st->lost_unlogged}; /* nothing kept yet */
  struct room_log *log = find_log(st, q->room);
  if (log == NULL)
    log = &none;
  size_t n = log->n, lo = 0, hi = n;
  uint64_t lost = log->lost;
  int complete;
  int after = q->kind == WSCHAT_HISTORY_AFTER && q->epoch == st->epoch;
  if (after) {
    /* The oldest limit events above q->id. Complete unless the ring
     * dropped one of them already. */
    while (lo < n && at(log, st->keep, lo)->id <= q->id)
      lo++;
    hi = n - lo > q->limit ? lo + q->limit : n;
    complete = lost <= q->id;
  } else {
    /* LAST, BEFORE, and AFTER with an epoch of another run (whose ids
     * mean nothing here: the newest events, never complete). */
    if (q->kind == WSCHAT_HISTORY_BEFORE)
      while (hi > 0 && at(log, st->keep, hi - 1)->id >= q->id)
        hi--;
    lo = hi > q->limit ? hi - q->limit : 0;
    /* The range asked for reaches down to the oldest row returned if the
     * limit was met, else to the room's beginning. */
    if (hi - lo == q->limit)
      complete = at(log, st->keep, lo)->id > lost;
    else
      complete = lost == 0;
    if (q->kind == WSCHAT_HISTORY_AFTER)
      complete = 0;
  }
  for (size_t i = lo; i < hi; i++) {
    const struct stored *e = at(log, st->keep, i);
    int r =
        wschat_history_reply_add(reply, e->kind, e->id, e->time_ms, log->name,
                                 e->from, e->to, e->text, e->len, e->reason);
    if (r != 0) { /* out of memory: the read failed */
      wschat_history_reply_end(reply, 0, 0, WSCHAT_EIO);
      return 0; /* the reply is used up: never an error after this */
    }
  }
  int more = after ? hi < n : lo > 0;
  wschat_history_reply_end(reply, complete, more, 0);
  return 0;
}

static void mem_close(void *store) {
  struct mem_store *st = store;
  while (st->rooms) {
    struct room_log *l = st->rooms;
    st->rooms = l->next;
    for (size_t i = 0; i < l->n; i++)
      stored_clear(at(l, st->keep, i));
    free(l->ring);
    free(l);
  }
  free(st);
}

static const struct wschat_history_store mem_ops = {
    mem_append, mem_next_id, mem_epoch, mem_read, mem_close};

/* ---- /recap: the store read through the server ---- */

/* Only the client's id crosses to the answer: it may be gone by then. */
struct recap {
  uint64_t client;
  size_t asked;
};

static const char *or_q(const char *s) { return s ? s : "?"; }

/* Writes "\nID WHO: WHAT" for ev at out (which has room: see on_recap);
 * returns its length. */
static size_t recap_line(char *out, const struct wschat_event *ev) {
  size_t len;
  const char *text = wschat_event_text(ev, &len);
  const char *from = or_q(wschat_event_from(ev));
  unsigned long long id = (unsigned long long)wschat_event_id(ev);
  int n = 0;
  switch (wschat_event_kind(ev)) {
  case WSCHAT_EVENT_MESSAGE:
    n = sprintf(out, "\n%llu %s: %.*s", id, from, (int)len, text);
    break;
  case WSCHAT_EVENT_ACTION:
    n = sprintf(out, "\n%llu * %s %.*s", id, from, (int)len, text);
    break;
  case WSCHAT_EVENT_JOIN:
    n = sprintf(out, "\n%llu %s joined", id, from);
    break;
  case WSCHAT_EVENT_LEAVE:
    n = sprintf(out, "\n%llu %s left", id, from);
    break;
  case WSCHAT_EVENT_NICK:
    n = sprintf(out, "\n%llu %s is now %s", id, from,
                or_q(wschat_event_to(ev)));
    break;
  default: /* never stored */
    break;
  }
  return n > 0 ? (size_t)n : 0;
}

static void on_recap(struct wschat_server *srv, const char *room,
                     const struct wschat_event *const *events, size_t n,
                     int complete, int err, void *user) {
  struct recap *rc = user; /* ours again */
  struct wschat_client *c = wschat_server_client(srv, rc->client);
  size_t asked = rc->asked;
  free(rc);
  if (c == NULL)
    return; /* hung up meanwhile */
  if (err != 0) {
    const char *line = "! recap: the history could not be read";
    wschat_client_send(c, line, strlen(line));
    return;
  }
  /* One message: a head line, then a line per event. Names are at most
   * WSCHAT_NAME_MAX bytes; 64 more covers an id and the words. */
  size_t cap = 200 + WSCHAT_ROOM_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    wschat_event_text(events[i], &len);
    cap += len + 2 * WSCHAT_NAME_MAX + 64;
  }
  char *msg = malloc(cap);
  if (msg == NULL)
    return;
  size_t used =
      (size_t)sprintf(msg, "* recap of #%s: %zu of the last %zu%s", room, n,
                      asked, complete ? "" : " (some are missing)");
  for (size_t i = 0; i < n; i++)
    used += recap_line(msg + used, events[i]);
  wschat_client_send(c, msg, used); /* whole UTF-8 texts: valid */
  free(msg);
}

/* "/recap [N]": the last N (1-50, default 5) events of the caller's room. */
static int cmd_recap(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  struct wschat_server *srv = user;
  size_t len;
  const char *arg = wschat_command_arg(cmd, &len); /* not NUL-terminated */
  char num[8] = "5";
  if (len > 0 && len < sizeof(num)) {
    memcpy(num, arg, len);
    num[len] = '\0';
  }
  char *end;
  long n = strtol(num, &end, 10);
  const char *room = wschat_client_room(c);
  const char *usage = "! usage: /recap [N] (1-50 events of your room)";
  if (len >= sizeof(num) || *end != '\0' || n < 1 || n > RECAP_MAX) {
    wschat_client_send(c, usage, strlen(usage));
    return WSCHAT_DROP;
  }
  if (room == NULL) {
    const char *line = "! you are in no room";
    wschat_client_send(c, line, strlen(line));
    return WSCHAT_DROP;
  }
  struct recap *rc = malloc(sizeof(*rc));
  if (rc == NULL)
    return WSCHAT_DROP;
  *rc = (struct recap){.client = wschat_client_id(c), .asked = (size_t)n};
  /* The answer comes later, on this thread, to on_recap (which owns rc). */
  int r = wschat_server_read_history(srv, room, (size_t)n, 0, on_recap, rc);
  if (r != 0) {
    free(rc);
    char line[96];
    int m = snprintf(line, sizeof(line), "! recap: %s", wschat_strerror(r));
    wschat_client_send(c, line, (size_t)m);
  }
  return WSCHAT_DROP;
}

/* ---- start and stop ---- */

struct app {
  struct wschat_server *srv;
  uv_signal_t term, intr;
};

static void on_shutdown(struct wschat_server *srv, void *user) {
  (void)srv;
  struct app *app = user;
  uv_close((uv_handle_t *)&app->term, NULL);
  uv_close((uv_handle_t *)&app->intr, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  struct app *app = h->data;
  wschat_server_shutdown(app->srv, on_shutdown, app);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8765;
  long keep = argc > 2 ? atol(argv[2]) : 200;
  struct wschat_server *srv;
  signal(SIGPIPE, SIG_IGN);
  if (keep < 1 || keep > 100000) {
    fprintf(stderr, "history_mem: KEEP must be 1-100000\n");
    return 2;
  }

  int r = wschat_server_new(NULL, &srv);
  if (r != 0) {
    fprintf(stderr, "history_mem: %s\n", wschat_strerror(r));
    return 1;
  }
  struct mem_store *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    wschat_server_free(srv);
    return 1;
  }
  /* The epoch: the start time in microseconds, nonzero and another number
   * at each start (a constant would tell a client that ids of an earlier
   * run still mean the same events). */
  uv_timeval64_t now;
  uv_gettimeofday(&now);
  *st = (struct mem_store){.keep = (size_t)keep,
                           .next_id = FIRST_ID,
                           .epoch = (uint64_t)now.tv_sec * 1000000 +
                                    (uint64_t)now.tv_usec};
  r = wschat_server_set_history_store(srv, &mem_ops, st);
  if (r != 0) {
    free(st); /* not the server's: the call failed */
    fprintf(stderr, "history_mem: %s\n", wschat_strerror(r));
    wschat_server_free(srv);
    return 1;
  }
  /* From here on st is the server's: mem_close() frees it. */
  r = wschat_server_set_option(srv, WSCHAT_OPT_HISTORY_REPLAY, 20);
  if (r == 0)
    r = wschat_server_add_command(srv, "recap",
                                  "[N] - the last N events of your room "
                                  "(default 5)",
                                  cmd_recap, srv);
  if (r == 0)
    r = wschat_server_listen(srv, "127.0.0.1", port);
  if (r != 0) {
    fprintf(stderr, "history_mem: %s\n", wschat_strerror(r));
    wschat_server_free(srv);
    return 1;
  }

  struct app app = {.srv = srv};
  uv_loop_t *loop = wschat_server_loop(srv);
  uv_signal_init(loop, &app.term);
  uv_signal_init(loop, &app.intr);
  app.term.data = app.intr.data = &app;
  uv_signal_start(&app.term, on_signal, SIGTERM);
  uv_signal_start(&app.intr, on_signal, SIGINT);
  printf("listening on ws://127.0.0.1:%d/\n", wschat_server_port(srv));
  fflush(stdout);

  r = wschat_server_run(srv);
  int freed = wschat_server_free(srv);
  if (r != 0 || freed != 0) {
    fprintf(stderr, "history_mem: unclean exit (%s, %s)\n", wschat_strerror(r),
            wschat_strerror(freed));
    return 1;
  }
  return 0;
}
