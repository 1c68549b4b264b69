/*
 * server_history: the server's history store: opening the built-in SQLite
 * store or taking the application's (behind the same internal ops, see
 * history.h), wiring it to the chat (ids, appends, replays) and the
 * sessions, reading a room's history for the application, the counters,
 * and closing it at shutdown.
 *
 * Owns: the store (srv->history) until it is closed; each read made for
 * the application until its callback ran; each reply of an application's
 * store until it ends.
 */
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "event.h"
#include "history.h"
#include "server.h"
#include "utf8.h"

/* ---- wiring ---- */

static int post_fn(void *user, wschat_post_cb fn, void *arg) {
  struct wschat_server *srv = user;
  return wschat__post(&srv->posts, fn, arg, 0);
}

static int can_attach(const struct wschat_server *srv) {
  return !srv->listening && !srv->sess.shutting_down && srv->history == NULL &&
         !srv->history_closed;
}

static void attach(struct wschat_server *srv, struct wschat__history *h) {
  srv->history = h;
  srv->chat.history = h;
  srv->chat.on_enter = wschat__session_on_enter;
  srv->chat.on_enter_user = srv;
  srv->sess.history = h;
}

int wschat_server_open_history(struct wschat_server *srv,
                               const struct wschat_history_options *opt) {
  if (srv == NULL || opt == NULL || opt->path == NULL || opt->path[0] == '\0')
    return WSCHAT_EINVAL;
  if (!can_attach(srv))
    return WSCHAT_ESTATE;
  struct wschat__history_config cfg = {
      .path = opt->path,
      .flush_ms = opt->flush_ms,
      .sync_full = opt->sync_full != 0,
      .max_per_room = opt->max_per_room,
      .post = post_fn,
      .post_user = srv,
  };
  struct wschat__history *h;
  int rc = wschat__history_sqlite_open(&cfg, &h);
  if (rc != 0)
    return rc;
  attach(srv, h);
  srv->history_builtin = 1;
  return 0;
}

static void take_stats(struct wschat_server *srv) {
  struct wschat__history *h = srv->history;
  if (h == NULL || !srv->history_builtin)
    return;
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  struct wschat_history_stats *o = &srv->history_last;
  o->appended = st.appended;
  o->written = st.written;
  o->dropped = st.dropped;
  o->write_errors = st.write_errors;
  o->rows_lost = st.rows_lost;
  o->read_errors = st.read_errors;
  o->pruned = st.pruned;
  o->commits = st.commits;
  o->queue_used = st.queue_used;
  o->queue_peak = st.queue_peak;
}

int wschat_server_history_stats(struct wschat_server *srv,
                                struct wschat_history_stats *out) {
  if (srv == NULL || out == NULL)
    return WSCHAT_EINVAL;
  if (srv->history == NULL && !srv->history_closed)
    return WSCHAT_ENOHISTORY;
  if (srv->history != NULL)
    take_stats(srv);
  *out = srv->history_last;
  return 0;
}

void wschat__server_close_history(struct wschat_server *srv) {
  struct wschat__history *h = srv->history;
  if (h == NULL)
    return;
  /* Close frees the store: its last counters are taken after a flush
   * (everything accepted written), which is what close would write. */
  (void)h->ops->flush(h);
  take_stats(srv);
  srv->chat.history = NULL;
  srv->sess.history = NULL;
  srv->history = NULL;
  srv->history_closed = 1;
  h->ops->close(h);
}

/* ---- reading for the application ---- */

struct app_read {
  struct wschat_server *srv;
  wschat_history_cb cb;
  void *user;
  char room[WSCHAT_ROOM_MAX + 1];
};

static void on_app_page(struct wschat__history_page *page, void *user) {
  struct app_read *r = user;
  int complete = page->err == 0 && page->complete;
  r->cb(r->srv, r->room, (const struct wschat_event *const *)page->ev,
        page->n, complete, page->err, r->user);
  wschat__history_page_free(page);
  free(r);
}

int wschat_server_read_history(struct wschat_server *srv, const char *room,
                               size_t limit, uint64_t before,
                               wschat_history_cb cb, void *user) {
  if (srv == NULL || cb == NULL || room == NULL || limit < 1 ||
      limit > WSCHAT__HISTORY_READ_MAX)
    return WSCHAT_EINVAL;
  if (!wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  struct wschat__history *h = srv->history;
  if (h == NULL)
    return WSCHAT_ENOHISTORY;
  if (!srv->posts_open || srv->sess.shutting_down >= 2)
    return WSCHAT_ESTATE; /* answers come back through the post queue */
  struct app_read *r = malloc(sizeof(*r));
  if (r == NULL)
    return WSCHAT_ENOMEM;
  r->srv = srv;
  r->cb = cb;
  r->user = user;
  memcpy(r->room, room, strlen(room) + 1);
  struct wschat__history_query q = {
      .kind = before ? WSCHAT__HISTORY_BEFORE : WSCHAT__HISTORY_LAST,
      .room = room,
      .id = before,
      .limit = limit,
  };
  int rc = h->ops->read(h, &q, on_app_page, r);
  if (rc != 0)
    free(r);
  return rc;
}

/* ---- a store of the application's ---- */

struct ext {
  struct wschat__history base; /* first */
  struct wschat_history_store ops;
  void *store;
  struct wschat_server *srv; /* whose post queue delivers the answers */
  struct wschat_history_reply *open; /* replies not ended yet (owned) */
};

struct wschat_history_reply {
  struct ext *ext;
  struct wschat__history_page *page;
  size_t cap;
  struct wschat_history_reply *prev, *next; /* ext->open */
};

static void reply_finish(struct wschat_history_reply *reply, int complete,
                         int more, int err, uint64_t epoch);

static struct ext *E(struct wschat__history *h) { return (struct ext *)h; }

static int ext_append(struct wschat__history *h,
                      const struct wschat_event *ev) {
  return E(h)->ops.append(E(h)->store, ev);
}

static uint64_t ext_next_id(struct wschat__history *h) {
  return E(h)->ops.next_id(E(h)->store);
}

static uint64_t ext_epoch(const struct wschat__history *h) {
  const struct ext *e = (const struct ext *)h;
  return e->ops.epoch(e->store);
}

static int ext_read(struct wschat__history *h,
                    const struct wschat__history_query *q,
                    wschat__history_read_cb cb, void *user) {
  if (q->room == NULL || q->limit < 1 ||
      q->limit > WSCHAT__HISTORY_READ_MAX || q->kind < WSCHAT__HISTORY_LAST ||
      q->kind > WSCHAT__HISTORY_AFTER)
    return WSCHAT_EINVAL;
  struct wschat_history_reply *r = calloc(1, sizeof(*r));
  struct wschat__history_page *page = calloc(1, sizeof(*page));
  if (r == NULL || page == NULL) {
    free(r);
    free(page);
    return WSCHAT_ENOMEM;
  }
  page->cb = cb;
  page->user = user;
  r->ext = E(h);
  r->page = page;
  r->next = E(h)->open; /* linked first: the store may end it in read() */
  if (r->next)
    r->next->prev = r;
  E(h)->open = r;
  /* The kinds have the same numbers inside and out. */
  struct wschat_history_query pq = {q->kind, q->room, q->id, q->epoch,
                                    q->limit};
  int rc = E(h)->ops.read(E(h)->store, &pq, r);
  if (rc != 0) { /* refused: the reply was not used (see wschat.h) */
    if (r->prev)
      r->prev->next = r->next;
    else
      E(h)->open = r->next;
    if (r->next)
      r->next->prev = r->prev;
    wschat__history_page_free(page);
    free(r);
  }
  return rc;
}

static int ext_flush(struct wschat__history *h) {
  (void)h;
  return 0;
}

static void ext_stats(struct wschat__history *h,
                      struct wschat__history_stats *out) {
  (void)h;
  memset(out, 0, sizeof(*out));
}

static void ext_close(struct wschat__history *h) {
  struct ext *e = E(h);
  e->ops.close(e->store);
  /* Replies the store never ended are ended here, as failed reads: their
   * readers are waiting (and own memory until they are answered). */
  while (e->open != NULL)
    reply_finish(e->open, 0, 0, 1, 0);
  free(e);
}

static const struct wschat__history_ops ext_ops = {
    ext_append, ext_next_id, ext_epoch, ext_read, ext_flush, ext_stats,
    ext_close};

int wschat_server_set_history_store(struct wschat_server *srv,
                                    const struct wschat_history_store *ops,
                                    void *store) {
  if (srv == NULL || ops == NULL || ops->append == NULL ||
      ops->next_id == NULL || ops->epoch == NULL || ops->read == NULL ||
      ops->close == NULL)
    return WSCHAT_EINVAL;
  if (!can_attach(srv))
    return WSCHAT_ESTATE;
  struct ext *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return WSCHAT_ENOMEM;
  e->base.ops = &ext_ops;
  e->ops = *ops;
  e->store = store;
  e->srv = srv;
  attach(srv, &e->base);
  srv->history_builtin = 0;
  return 0;
}

/* An optional string of a stored event: NULL, or valid UTF-8. */
static int str_ok(const char *s) {
  return s == NULL || wschat__utf8_valid(s, strlen(s));
}

int wschat_history_reply_add(struct wschat_history_reply *reply,
                             enum wschat_event_kind kind, uint64_t id,
                             int64_t time_ms, const char *room,
                             const char *from, const char *to,
                             const char *text, size_t len,
                             const char *reason) {
  if (reply == NULL || room == NULL || kind < WSCHAT_EVENT_MESSAGE ||
      kind > WSCHAT_EVENT_NICK || (text == NULL && len > 0) ||
      !wschat__utf8_valid(text ? text : "", len) ||
      !wschat__room_valid(room, strlen(room)) || !str_ok(from) ||
      !str_ok(to) || !str_ok(reason))
    return WSCHAT_EINVAL;
  struct wschat__history_page *p = reply->page;
  if (p->n == reply->cap) {
    size_t cap = reply->cap ? reply->cap * 2 : 16;
    struct wschat_event **v = realloc(p->ev, cap * sizeof(*v));
    if (v == NULL)
      return WSCHAT_ENOMEM;
    p->ev = v;
    reply->cap = cap;
  }
  struct wschat_event *ev =
      wschat__event_new((int)kind, room, from, to, text, len, reason);
  if (ev == NULL)
    return WSCHAT_ENOMEM;
  ev->id = id;
  ev->ts = time_ms;
  p->ev[p->n++] = ev;
  return 0;
}

static void reply_finish(struct wschat_history_reply *reply, int complete,
                         int more, int err, uint64_t epoch) {
  struct ext *e = reply->ext;
  if (reply->prev)
    reply->prev->next = reply->next;
  else
    e->open = reply->next;
  if (reply->next)
    reply->next->prev = reply->prev;
  struct wschat__history_page *p = reply->page;
  p->err = err ? WSCHAT_EIO : 0;
  p->complete = !err && complete;
  p->more = more != 0;
  p->epoch = epoch;
  if (p->err) {
    for (size_t i = 0; i < p->n; i++)
      wschat__event_unref(p->ev[i]);
    p->n = 0;
  }
  struct wschat_server *srv = e->srv;
  free(reply);
  /* Never from inside the store's read(): a store may answer there, but
   * the readers (a client's replay, wschat_server_read_history()) are
   * promised their answer later, as the built-in store gives it: a replay
   * links its read after the read call returns. The post queue delivers it
   * on the next turn of the loop (and during a shutdown). A server that
   * cannot post (not listening yet) has no client reads: answer now. */
  if (wschat__post(&srv->posts, wschat__history_deliver, p, 0) != 0)
    p->cb(p, p->user);
}

void wschat_history_reply_end(struct wschat_history_reply *reply,
                              int complete, int more, int err) {
  if (reply == NULL)
    return;
  reply_finish(reply, complete, more, err,
               reply->ext->ops.epoch(reply->ext->store));
}
