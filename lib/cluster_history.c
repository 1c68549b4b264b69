/*
 * cluster_history: the history store of a cluster node (see history.h):
 * each room's events are a Redis stream (wschat:hist:<room>), written by
 * the same script that gives the event its id and publishes it (so the
 * stream has exactly the room's published events, in their order, entry
 * id = event id), trimmed with MAXLEN ~ (--history-max-per-room). Every
 * node reads every room's history, so recovery with since works on
 * whichever node a client reconnects to.
 *
 * Honest reads: stream entries carry the room's seq, contiguous per room;
 * a read whose seqs are not contiguous from the one at or before since
 * (trimmed, or Redis lost it), or whose range meets an outage's gap
 * (wschat:gaps: ids that were delivered on one node only), says
 * complete = 0. Notices are in the stream (to keep seqs contiguous) but
 * never in a page.
 *
 * Owns: each read's state until its reply (hiredis calls back with no
 * reply when the connection goes: the read answers WSCHAT_EIO). append,
 * flush and close have nothing to do: the publishing script stored the
 * event already, and Redis keeps it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster.h"
#include "event.h"

static struct wschat__cluster *CL(struct wschat__history *h) {
  return (struct wschat__cluster *)((char *)h -
                                    offsetof(struct wschat__cluster,
                                             history));
}

struct read_ctx {
  struct wschat__cluster *cl;
  int kind;
  uint64_t id;
  int stale; /* AFTER with another epoch: the newest rows, incomplete */
  size_t limit;
  wschat__history_read_cb cb;
  void *user;
};

static int h_append(struct wschat__history *h, const struct wschat_event *ev) {
  (void)h;
  (void)ev;
  return 0; /* the publishing script stored it */
}

static uint64_t h_next_id(struct wschat__history *h) {
  struct wschat__cluster *cl = CL(h);
  return ++cl->max_id; /* not used: the cluster's events take Redis's */
}

static uint64_t h_epoch(const struct wschat__history *h) {
  const struct wschat__cluster *cl =
      (const struct wschat__cluster *)((const char *)h -
                                       offsetof(struct wschat__cluster,
                                                history));
  return cl->epoch ? cl->epoch : 1;
}

static uint64_t num(const redisReply *r) {
  if (r == NULL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER)
    return (uint64_t)(r->integer < 0 ? 0 : r->integer);
  if (r->type == REDIS_REPLY_STRING)
    return strtoull(r->str, NULL, 10);
  return 0;
}

static void answer(struct read_ctx *x, struct wschat__history_page *page) {
  page->cb = x->cb;
  page->user = x->user;
  page->epoch = x->cl->epoch ? x->cl->epoch : 1;
  x->cb(page, x->user);
}

static void on_read(redisAsyncContext *ac, void *r, void *priv) {
  struct read_ctx *x = priv;
  redisReply *reply = r;
  (void)ac;
  struct wschat__history_page *page = calloc(1, sizeof(*page));
  if (page == NULL) {
    free(x);
    return; /* cb never runs: the replay's read stays open (as on a lost
               post); the client's next close frees it */
  }
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements != 4 || reply->element[0]->type != REDIS_REPLY_ARRAY) {
    page->err = WSCHAT_EIO;
    answer(x, page);
    free(x);
    return;
  }
  const redisReply *e = reply->element[0];
  int64_t prev = reply->element[1]->type == REDIS_REPLY_INTEGER
                     ? (int64_t)reply->element[1]->integer
                     : -1;
  uint64_t last = num(reply->element[2]), gap_end = num(reply->element[3]);
  size_t raw = e->elements;
  int reverse = x->kind != WSCHAT__HISTORY_AFTER;
  page->more = raw > x->limit;
  if (page->more)
    raw = x->limit; /* the extra one is the farthest: dropped */
  page->ev = calloc(raw ? raw : 1, sizeof(*page->ev));
  if (page->ev == NULL) {
    page->err = WSCHAT_EIO;
    answer(x, page);
    free(x);
    return;
  }
  int contiguous = 1;
  uint64_t expect = 0, oldest = 0;
  for (size_t k = 0; k < raw; k++) {
    /* oldest first */
    const redisReply *en = e->element[reverse ? raw - 1 - k : k];
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
        en->element[1]->type != REDIS_REPLY_ARRAY ||
        en->element[1]->elements != 6) {
      contiguous = 0;
      continue;
    }
    const redisReply *f = en->element[1];
    uint64_t id = strtoull(en->element[0]->str, NULL, 10);
    uint64_t seq = num(f->element[1]);
    if (k == 0)
      oldest = id;
    if (expect != 0 && seq != expect)
      contiguous = 0;
    expect = seq + 1;
    if (k == 0 && x->kind == WSCHAT__HISTORY_AFTER &&
        (prev < 0 || seq != (uint64_t)prev + 1))
      contiguous = 0;
    if (f->element[3]->len == 1 && f->element[3]->str[0] == '0')
      continue; /* a notice: not history */
    struct wschat__wire_meta meta;
    struct wschat_event *ev =
        wschat__wire_decode(f->element[5]->str, f->element[5]->len, &meta);
    if (ev == NULL) {
      contiguous = 0;
      continue;
    }
    ev->id = id;
    ev->client = ev->skip = ev->group = 0;
    page->ev[page->n++] = ev;
  }
  if (x->kind == WSCHAT__HISTORY_AFTER) {
    if (raw == 0 && (prev < 0 || (uint64_t)prev != last))
      contiguous = 0; /* something after since, and none of it is here */
    if (!page->more && raw > 0 && expect - 1 != last)
      contiguous = 0;
    if (gap_end > x->id)
      contiguous = 0;
  } else if (raw > 0 && gap_end >= oldest) {
    contiguous = 0;
  }
  page->complete = contiguous && !x->stale;
  answer(x, page);
  free(x);
}

static int h_read(struct wschat__history *h,
                  const struct wschat__history_query *q,
                  wschat__history_read_cb cb, void *user) {
  struct wschat__cluster *cl = CL(h);
  if (q == NULL || q->room == NULL || q->limit == 0 ||
      q->limit > WSCHAT__HISTORY_READ_MAX ||
      (q->kind != WSCHAT__HISTORY_LAST && q->kind != WSCHAT__HISTORY_BEFORE &&
       q->kind != WSCHAT__HISTORY_AFTER))
    return WSCHAT_EINVAL;
  struct read_ctx *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return WSCHAT_ENOMEM;
  x->cl = cl;
  x->kind = q->kind;
  x->id = q->id;
  x->limit = q->limit;
  x->cb = cb;
  x->user = user;
  if (q->kind == WSCHAT__HISTORY_AFTER && q->epoch != h_epoch(h)) {
    x->kind = WSCHAT__HISTORY_LAST;
    x->stale = 1;
  }
  char key[WSCHAT_ROOM_MAX + 1], id[24], lim[24];
  wschat__cluster_lower(key, sizeof(key), q->room);
  snprintf(id, sizeof(id), "%llu",
           (unsigned long long)(x->kind == WSCHAT__HISTORY_LAST ? 0 : q->id));
  snprintf(lim, sizeof(lim), "%zu", q->limit + 1);
  const char *kind = x->kind == WSCHAT__HISTORY_LAST     ? "last"
                     : x->kind == WSCHAT__HISTORY_BEFORE ? "before"
                                                         : "after";
  const char *a[] = {"EVALSHA", cl->sha[WSCHAT__SCRIPT_READ], "0", key, kind,
                     id, lim};
  if (wschat__cluster_cmd(cl, on_read, x, 7, a, NULL) != 0) {
    /* Redis is down: an empty answer that says so, soon (never from
     * inside read()). */
    free(x);
    return WSCHAT_ETOOMANY;
  }
  return 0;
}

static int h_flush(struct wschat__history *h) {
  (void)h;
  return 0;
}

static void h_stats(struct wschat__history *h,
                    struct wschat__history_stats *out) {
  (void)h;
  memset(out, 0, sizeof(*out));
}

static void h_close(struct wschat__history *h) {
  (void)h; /* the cluster frees itself */
}

static const struct wschat__history_ops cluster_history_ops = {
    h_append, h_next_id, h_epoch, h_read, h_flush, h_stats, h_close,
};

void wschat__cluster_history_init(struct wschat__cluster *cl) {
  cl->history.ops = &cluster_history_ops;
}
