/*
 * store_probe: a chat server with a history store of the application's
 * (wschat_server_set_history_store()), kept in memory, for
 * tests/e2e/test_history_store.py.
 *
 *   store_probe now|later|never [PORT]     (0 or nothing: a free port)
 *
 * "now" answers each read from inside the store's read() (the API allows
 * it: "answer q through reply, now or later"); "later" answers it from a
 * wschat_server_post() callback, as a store with its own thread would.
 * Its on_join hook greets each joiner with wschat_client_send() of
 * {"type":"greeting","room":ROOM}.
 * Prints "listening on ws://127.0.0.1:PORT/" once listening; SIGTERM shuts
 * the server down, then it prints "exit free=N loop=N" and exits 0 when
 * both are 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "wschat.h"

struct row {
  enum wschat_event_kind kind;
  uint64_t id;
  int64_t ts;
  char *room, *from, *to, *text, *reason;
  size_t len;
};

struct store {
  struct row *rows;
  size_t n, cap;
  uint64_t next;
  int now;   /* answer inside read() */
  int never; /* never answer: replies are left to the server at close */
  struct wschat_server *srv;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int st_append(void *user, const struct wschat_event *ev) {
  struct store *s = user;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct row *v = realloc(s->rows, cap * sizeof(*v));
    if (v == NULL)
      return WSCHAT_ENOMEM;
    s->rows = v;
    s->cap = cap;
  }
  struct row *r = &s->rows[s->n++];
  size_t len;
  const char *text = wschat_event_text(ev, &len);
  r->kind = wschat_event_kind(ev);
  r->id = wschat_event_id(ev);
  r->ts = wschat_event_time(ev);
  r->room = dup_or_null(wschat_event_room(ev));
  r->from = dup_or_null(wschat_event_from(ev));
  r->to = dup_or_null(wschat_event_to(ev));
  r->reason = dup_or_null(wschat_event_reason(ev));
  r->text = malloc(len + 1);
  if (r->text != NULL && len > 0)
    memcpy(r->text, text, len);
  if (r->text != NULL)
    r->text[len] = '\0';
  r->len = len;
  return 0;
}

static uint64_t st_next_id(void *user) {
  return ++((struct store *)user)->next;
}

static uint64_t st_epoch(void *user) {
  (void)user;
  return 0x5eed;
}

/* Fills and ends reply with the rows q asks for. */
static void answer(struct store *s, int kind, const char *room, uint64_t id,
                   size_t limit, struct wschat_history_reply *reply) {
  size_t lo = 0, hi = s->n; /* the rows [lo, hi) of room, by position */
  size_t picked[10000], k = 0;
  if (kind == WSCHAT_HISTORY_AFTER) {
    for (size_t i = lo; i < hi && k < limit; i++)
      if (strcasecmp(s->rows[i].room, room) == 0 && s->rows[i].id > id)
        picked[k++] = i;
  } else {
    for (size_t i = hi; i-- > lo && k < limit;)
      if (strcasecmp(s->rows[i].room, room) == 0 &&
          (kind == WSCHAT_HISTORY_LAST || s->rows[i].id < id))
        picked[k++] = i;
    for (size_t a = 0, b = k; a + 1 < b; a++, b--) { /* oldest first */
      size_t t = picked[a];
      picked[a] = picked[b - 1];
      picked[b - 1] = t;
    }
  }
  for (size_t i = 0; i < k; i++) {
    const struct row *r = &s->rows[picked[i]];
    wschat_history_reply_add(reply, r->kind, r->id, r->ts, r->room, r->from,
                             r->to, r->text, r->len, r->reason);
  }
  wschat_history_reply_end(reply, 1, 0, 0);
}

struct later {
  struct store *s;
  int kind;
  char room[WSCHAT_ROOM_MAX + 1];
  uint64_t id;
  size_t limit;
  struct wschat_history_reply *reply;
};

static void on_later(struct wschat_server *srv, void *arg) {
  (void)srv;
  struct later *l = arg;
  answer(l->s, l->kind, l->room, l->id, l->limit, l->reply);
  free(l);
}

static int st_read(void *user, const struct wschat_history_query *q,
                   struct wschat_history_reply *reply) {
  struct store *s = user;
  if (q->limit > 10000)
    return WSCHAT_EINVAL;
  uint64_t id =
      q->kind == WSCHAT_HISTORY_AFTER && q->epoch != st_epoch(s) ? 0 : q->id;
  if (s->now) {
    answer(s, q->kind, q->room, id, q->limit, reply);
    return 0;
  }
  if (s->never)
    return 0; /* the server must end it at close */
  struct later *l = malloc(sizeof(*l));
  if (l == NULL)
    return WSCHAT_ENOMEM;
  l->s = s;
  l->kind = q->kind;
  snprintf(l->room, sizeof(l->room), "%s", q->room);
  l->id = id;
  l->limit = q->limit;
  l->reply = reply;
  int rc = wschat_server_post(s->srv, on_later, l);
  if (rc != 0)
    free(l);
  return rc;
}

static void st_close(void *user) {
  struct store *s = user;
  for (size_t i = 0; i < s->n; i++) {
    free(s->rows[i].room);
    free(s->rows[i].from);
    free(s->rows[i].to);
    free(s->rows[i].text);
    free(s->rows[i].reason);
  }
  free(s->rows);
  s->rows = NULL;
  s->n = s->cap = 0;
}

static void on_join(struct wschat_client *c, const char *room, void *user) {
  (void)user;
  char msg[128];
  int n = snprintf(msg, sizeof(msg), "{\"type\":\"greeting\",\"room\":\"%s\"}",
                   room);
  wschat_client_send(c, msg, (size_t)n);
}

static uv_signal_t sigterm;

static void on_shutdown(struct wschat_server *srv, void *user) {
  (void)srv;
  (void)user;
  uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_sigterm(uv_signal_t *h, int signum) {
  (void)signum;
  uv_signal_stop(h);
  wschat_server_shutdown(h->data, on_shutdown, NULL);
}

int main(int argc, char **argv) {
  static struct store s;
  static const struct wschat_history_store ops = {st_append, st_next_id,
                                                  st_epoch, st_read, st_close};
  if (argc < 2 || (strcmp(argv[1], "now") && strcmp(argv[1], "later") &&
                    strcmp(argv[1], "never"))) {
    fprintf(stderr, "usage: store_probe now|later|never [PORT]\n");
    return 2;
  }
  s.now = strcmp(argv[1], "now") == 0;
  s.never = strcmp(argv[1], "never") == 0;
  int port = argc > 2 ? atoi(argv[2]) : 0;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  int r = wschat_server_new(loop, &s.srv);
  if (r == 0)
    r = wschat_server_set_history_store(s.srv, &ops, &s);
  if (r == 0) {
    wschat_server_on_join(s.srv, on_join, NULL);
    r = wschat_server_listen(s.srv, "127.0.0.1", port);
  }
  if (r != 0) {
    fprintf(stderr, "store_probe: %s\n", wschat_strerror(r));
    return 1;
  }
  uv_signal_init(loop, &sigterm);
  sigterm.data = s.srv;
  uv_signal_start(&sigterm, on_sigterm, SIGTERM);
  printf("listening on ws://127.0.0.1:%d/\n", wschat_server_port(s.srv));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  int freed = wschat_server_free(s.srv);
  int closed = uv_loop_close(loop);
  printf("exit free=%d loop=%d\n", freed, closed);
  return freed == 0 && closed == 0 ? 0 : 1;
}
