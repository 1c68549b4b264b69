/*
 * history_writer: the writer thread of the SQLite history store (see
 * history_sqlite.c for the design and history_sqlite_int.h for what the
 * two halves share): batches of appends in one transaction, retention,
 * id reservations, reads, the gap list, and the database's setup at open.
 * Only this thread touches the SQLite connection after open and before
 * close.
 */
#include "history_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

/* ---- gaps: ranges of ids that may be missing ---- */

/* Adds lo..hi to a sorted, disjoint list of at most MAX_GAPS, merging what
 * touches it; when full, the two oldest merge (covering more is safe). */
void wschat__hsq_gap_add(struct gap *g, size_t *n, uint64_t lo, uint64_t hi) {
  if (lo > hi)
    return;
  size_t i = 0;
  while (i < *n && g[i].hi + 1 < lo)
    i++;
  if (i < *n && g[i].lo <= hi + 1) { /* overlaps or touches g[i] */
    if (lo < g[i].lo)
      g[i].lo = lo;
    if (hi > g[i].hi)
      g[i].hi = hi;
    while (i + 1 < *n && g[i + 1].lo <= g[i].hi + 1) {
      g[i].hi = umax(g[i].hi, g[i + 1].hi);
      memmove(&g[i + 1], &g[i + 2], (*n - i - 2) * sizeof(*g));
      (*n)--;
    }
    return;
  }
  if (*n == MAX_GAPS) { /* g[0] takes g[1]; lo..hi may fall inside */
    g[0].hi = g[1].hi;
    memmove(&g[1], &g[2], (*n - 2) * sizeof(*g));
    (*n)--;
    if (i == 1)
      return;
    if (i > 1)
      i--;
  }
  memmove(&g[i + 1], &g[i], (*n - i) * sizeof(*g));
  g[i].lo = lo;
  g[i].hi = hi;
  (*n)++;
}

static int gap_overlaps(const struct store *s, uint64_t lo, uint64_t hi) {
  for (size_t i = 0; i < s->ngaps; i++)
    if (s->gaps[i].lo <= hi && lo <= s->gaps[i].hi)
      return 1;
  return 0;
}

/* The writer takes the gaps the loop recorded (under lock). */
/* ---- the writer ---- */

int wschat__hsq_step_done(struct store *s, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    return 0;
  s->wst.last_error = rc;
  return rc;
}

static struct room_count *room_get(struct store *s, const char *room) {
  struct room_count *rc = wschat__map_get(&s->rooms, room);
  if (rc)
    return rc;
  size_t len = strlen(room) + 1;
  rc = malloc(sizeof(*rc) + len);
  if (rc == NULL)
    return NULL;
  rc->count = -1;
  rc->touched = NULL;
  rc->in_batch = 0;
  memcpy(rc->name, room, len);
  if (wschat__map_put(&s->rooms, rc->name, rc) != 0) {
    free(rc);
    return NULL;
  }
  return rc;
}

/* Hands the open batch's waiters their answer; the writer tells them
 * (done) at the end of its pass, after any reservation. */
static void finish_waiters(struct store *s, int err) {
  for (struct waiter *w = s->waiters, *next; w; w = next) {
    next = w->next;
    w->err = err;
    if (w->flush) {
      if (s->flush_err)
        w->err = WSCHAT_EIO;
      s->flush_err = 0;
    }
    w->next = s->finished;
    s->finished = w;
  }
  s->waiters = NULL;
}

static void end_batch(struct store *s, int err) {
  for (struct room_count *rc = s->touched, *next; rc; rc = next) {
    next = rc->touched;
    rc->touched = NULL;
    rc->in_batch = 0;
    if (err)
      rc->count = -1; /* what the rollback undid: count again */
  }
  s->touched = NULL;
  s->in_txn = 0;
  s->commit_now = 0;
  s->batch_rows = 0;
  finish_waiters(s, err);
}

/* A write failed (rc): the open batch (if any) is lost, and with it the
 * ids lo..hi, which become a gap. */
static void fail_batch(struct store *s, int rc, uint64_t lo, uint64_t hi) {
  if (!sqlite3_get_autocommit(s->db))
    (void)wschat__hsq_step_done(s, s->s_rollback);
  s->wst.write_errors++;
  s->wst.rows_lost += s->batch_rows;
  s->wst.last_error = rc;
  wschat__hsq_gap_add(s->gaps, &s->ngaps, lo, hi);
  s->gaps_dirty = 1;
  s->flush_err = 1;
  s->failed_batches++;
  s->failing = 1;
  uint64_t now = uv_hrtime();
  if (s->logged_ns == 0 || now - s->logged_ns >= LOG_EVERY_NS) {
    wschat__hsq_log_line(s,
             "%s: write failed: %s (%llu failed batches; rows are lost "
             "and counted until writes work again)",
             s->path, sqlite3_errstr(rc),
             (unsigned long long)s->failed_batches);
    s->logged_ns = now;
  }
  end_batch(s, WSCHAT_EIO);
}

/* A commit worked: say so if failures were logged (at the same pace). */
static void write_ok(struct store *s) {
  uint64_t now = uv_hrtime();
  if (s->failing && now - s->logged_ns >= LOG_EVERY_NS) {
    wschat__hsq_log_line(s, "%s: writes work again", s->path);
    s->logged_ns = now;
  }
  s->failing = 0;
}

static int bind_str(sqlite3_stmt *st, int i, const char *v) {
  return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC)
           : sqlite3_bind_null(st, i);
}

static void do_append(struct store *s, const struct rec *r) {
  const char *room = wschat__hsq_rec_str(r, S_ROOM);
  if (r->w) { /* answered with the batch, whatever becomes of it */
    r->w->next = s->waiters;
    s->waiters = r->w;
    s->commit_now = 1;
  }
  if (!s->in_txn) {
    int rc = wschat__hsq_step_done(s, s->s_begin);
    if (rc) {
      s->batch_rows = 1;
      fail_batch(s, rc, r->id, r->id);
      return;
    }
    s->in_txn = 1;
    s->deadline = r->ns + (uint64_t)s->cfg.flush_ms * 1000000u;
    s->batch_first = r->id;
    s->batch_rows = 0;
  }
  struct room_count *rc = room_get(s, room);
  int err = rc == NULL ? SQLITE_NOMEM : 0;
  if (!err && rc->count < 0) {
    sqlite3_bind_text(s->s_cnt, 1, room, -1, SQLITE_STATIC);
    err = sqlite3_step(s->s_cnt);
    if (err == SQLITE_ROW) {
      rc->count = sqlite3_column_int64(s->s_cnt, 0);
      err = 0;
    }
    sqlite3_reset(s->s_cnt);
  }
  if (!err) {
    sqlite3_stmt *st = s->s_ins;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->id);
    sqlite3_bind_int64(st, 2, r->ts);
    sqlite3_bind_int(st, 3, r->kind);
    bind_str(st, 4, room);
    bind_str(st, 5, wschat__hsq_rec_str(r, S_FROM));
    bind_str(st, 6, wschat__hsq_rec_str(r, S_TO));
    sqlite3_bind_blob(st, 7, wschat__hsq_rec_text(r), (int)r->text_len, SQLITE_STATIC);
    bind_str(st, 8, wschat__hsq_rec_str(r, S_REASON));
    err = wschat__hsq_step_done(s, st);
    sqlite3_clear_bindings(st);
  }
  s->batch_rows++;
  if (err) { /* this row is lost with the batch */
    fail_batch(s, err, s->batch_first, r->id);
    return;
  }
  s->batch_last = r->id;
  rc->count++;
  if (!rc->in_batch) {
    rc->in_batch = 1;
    rc->touched = s->touched;
    s->touched = rc;
  }
}

/* Retention for one room, inside the batch. Returns 0 or an SQLite code. */
static int prune(struct store *s, struct room_count *rc) {
  size_t max = s->cfg.max_per_room;
  if (rc->count < 0 || (uint64_t)rc->count <= max)
    return 0;
  sqlite3_stmt *st = s->s_cut;
  sqlite3_bind_text(st, 1, rc->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, rc->count - (int64_t)max - 1);
  int err = sqlite3_step(st);
  sqlite3_int64 cut = err == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (err != SQLITE_ROW)
    return err == SQLITE_DONE ? 0 : err;
  sqlite3_bind_text(s->s_del, 1, rc->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->s_del, 2, cut);
  if ((err = wschat__hsq_step_done(s, s->s_del)) != 0)
    return err;
  int64_t n = sqlite3_changes(s->db);
  sqlite3_bind_text(s->s_mark, 1, rc->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->s_mark, 2, cut);
  if ((err = wschat__hsq_step_done(s, s->s_mark)) != 0)
    return err;
  rc->count -= n;
  s->wst.pruned += (uint64_t)n;
  return 0;
}

/* Rewrites the gaps table from gaps[] (inside a transaction). */
int wschat__hsq_write_gaps(struct store *s) {
  int err = wschat__hsq_step_done(s, s->s_gdel);
  for (size_t i = 0; !err && i < s->ngaps; i++) {
    sqlite3_bind_int64(s->s_gins, 1, (sqlite3_int64)s->gaps[i].lo);
    sqlite3_bind_int64(s->s_gins, 2, (sqlite3_int64)s->gaps[i].hi);
    err = wschat__hsq_step_done(s, s->s_gins);
  }
  return err;
}

void wschat__hsq_commit(struct store *s) {
  int err = 0;
  for (struct room_count *rc = s->touched; rc && !err; rc = rc->touched)
    err = prune(s, rc);
  if (!err && s->gaps_dirty)
    err = wschat__hsq_write_gaps(s);
  if (!err)
    err = wschat__hsq_step_done(s, s->s_commit);
  if (err) {
    fail_batch(s, err, s->batch_first, s->batch_last);
    return;
  }
  s->gaps_dirty = 0;
  s->wst.written += s->batch_rows;
  s->wst.commits++;
  write_ok(s);
  end_batch(s, 0);
}

int wschat__hsq_meta_set(struct store *s, const char *key, uint64_t v) {
  sqlite3_bind_text(s->s_meta, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->s_meta, 2, (sqlite3_int64)v);
  return wschat__hsq_step_done(s, s->s_meta);
}

/* Raises the durable ceiling to target, synced (outside a batch). */
void wschat__hsq_reserve(struct store *s, uint64_t target) {
  int err = 0;
  if (!s->cfg.sync_full)
    err = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!err)
    err = wschat__hsq_step_done(s, s->s_begin);
  if (!err)
    err = wschat__hsq_meta_set(s, "ceiling", target);
  if (!err && s->gaps_dirty && (err = wschat__hsq_write_gaps(s)) == 0)
    s->gaps_dirty = 0;
  if (!err)
    err = wschat__hsq_step_done(s, s->s_commit);
  if (err && !sqlite3_get_autocommit(s->db))
    (void)wschat__hsq_step_done(s, s->s_rollback);
  if (!s->cfg.sync_full)
    (void)sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  if (err) {
    s->wst.write_errors++;
    s->wst.last_error = err;
    wschat__hsq_log_line(s, "%s: cannot reserve ids: %s", s->path, sqlite3_errstr(err));
    atomic_store(&s->reserve_failed_ns, uv_hrtime() | 1);
  } else {
    atomic_store(&s->reserve_failed_ns, 0);
    atomic_store(&s->ceiling, target);
  }
  atomic_store(&s->reserve_done, target);
}

/* Builds the page for a read record and posts it to the loop. */
static void do_read(struct store *s, const struct rec *r) {
  struct wschat__history_page *page = calloc(1, sizeof(*page));
  if (page == NULL) { /* nothing to answer with: the reader never hears */
    s->wst.read_errors++;
    s->wst.reads_undelivered++;
    wschat__hsq_log_line(s, "out of memory for a read");
    return;
  }
  page->cb = r->cb;
  page->user = r->user;
  page->epoch = s->epoch;
  const char *room = wschat__hsq_rec_str(r, S_ROOM);
  int kind = r->kind, foreign = 0;
  if (kind == WSCHAT__HISTORY_AFTER && r->epoch != s->epoch) {
    kind = WSCHAT__HISTORY_LAST;
    foreign = 1;
  }
  sqlite3_stmt *st = kind == WSCHAT__HISTORY_AFTER ? s->s_asc : s->s_desc;
  sqlite3_int64 bound = kind == WSCHAT__HISTORY_LAST ? INT64_MAX
                        : r->id > INT64_MAX          ? INT64_MAX
                                                     : (sqlite3_int64)r->id;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, bound);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)r->limit + 1);
  page->ev = malloc(r->limit * sizeof(*page->ev));
  int err = page->ev ? 0 : SQLITE_NOMEM;
  size_t bytes = 0;
  int cut = 0; /* ended by WSCHAT__HISTORY_PAGE_BYTES */
  while (!err) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW) {
      err = rc;
      break;
    }
    if (page->n == r->limit) {
      page->more = 1;
      break;
    }
    const void *text = sqlite3_column_blob(st, 6);
    size_t len = (size_t)sqlite3_column_bytes(st, 6);
    bytes += 112 + len;
    for (int col = 3; col <= 7; col += col == 5 ? 2 : 1)
      bytes += (size_t)sqlite3_column_bytes(st, col);
    if (page->n > 0 && bytes > WSCHAT__HISTORY_PAGE_BYTES) {
      page->more = 1;
      cut = 1;
      break;
    }
    struct wschat_event *ev = wschat__event_new(
        sqlite3_column_int(st, 2), (const char *)sqlite3_column_text(st, 3),
        (const char *)sqlite3_column_text(st, 4),
        (const char *)sqlite3_column_text(st, 5), text ? text : "", len,
        (const char *)sqlite3_column_text(st, 7));
    if (ev == NULL) {
      err = SQLITE_NOMEM;
      break;
    }
    ev->id = (uint64_t)sqlite3_column_int64(st, 0);
    ev->ts = sqlite3_column_int64(st, 1);
    page->ev[page->n++] = ev;
  }
  sqlite3_reset(st);
  uint64_t pruned = 0;
  if (!err) {
    sqlite3_bind_text(s->s_pruned, 1, room, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s->s_pruned);
    if (rc == SQLITE_ROW)
      pruned = (uint64_t)sqlite3_column_int64(s->s_pruned, 0);
    else if (rc != SQLITE_DONE)
      err = rc;
    sqlite3_reset(s->s_pruned);
  }
  if (err) {
    for (size_t i = 0; i < page->n; i++)
      wschat__event_unref(page->ev[i]);
    page->n = 0;
    page->more = 0;
    page->err = WSCHAT_EIO;
    s->wst.read_errors++;
    s->wst.last_error = err;
    wschat__hsq_log_line(s, "%s: read failed: %s", s->path, sqlite3_errstr(err));
  } else if (kind == WSCHAT__HISTORY_AFTER) {
    /* Rows after id were asked for: all of them, or up to the last one
     * returned when there are more. */
    page->complete =
        !cut && pruned <= r->id &&
        !gap_overlaps(s, r->id + 1,
                      page->more ? page->ev[page->n - 1]->id : UINT64_MAX);
  } else {
    /* The newest `limit` rows below bound: if there are that many, from
     * the oldest returned (the last of this descending scan); else every
     * row of the room below bound. */
    uint64_t hi = kind == WSCHAT__HISTORY_LAST ? UINT64_MAX
                  : r->id > 0                  ? r->id - 1
                                               : 0;
    if (page->n == r->limit) /* still newest first: the oldest is last */
      page->complete =
          !foreign && !gap_overlaps(s, page->ev[page->n - 1]->id, hi);
    else
      page->complete = !foreign && pruned == 0 && !gap_overlaps(s, 1, hi);
    if (cut) /* fewer rows than asked for, though there are more */
      page->complete = 0;
    for (size_t i = 0; i < page->n / 2; i++) { /* oldest first */
      struct wschat_event *t = page->ev[i];
      page->ev[i] = page->ev[page->n - 1 - i];
      page->ev[page->n - 1 - i] = t;
    }
  }
  if (s->cfg.post(s->cfg.post_user, wschat__history_deliver, page) != 0) {
    s->wst.reads_undelivered++;
    wschat__hsq_log_line(s, "a read's answer could not be posted to the loop");
    wschat__history_page_free(page);
  }
}

static void do_control(struct store *s, const struct rec *r) {
  if (r->op == OP_FLUSH) {
    r->w->next = s->waiters;
    s->waiters = r->w;
    if (s->in_txn)
      s->commit_now = 1;
    else
      finish_waiters(s, 0);
  } else if (r->op == OP_RESERVE) {
    s->reserve_target = umax(s->reserve_target, r->id);
    s->commit_now = 1;
  }
}

/* Takes the records the loop queued, in order. */
static size_t consume(struct store *s, size_t pos, size_t avail, size_t *end) {
  size_t done = 0;
  while (done < avail) {
    if (s->cap - pos < sizeof(struct rec)) { /* the loop wrapped here */
      done += s->cap - pos;
      pos = 0;
      continue;
    }
    const struct rec *r = (const struct rec *)(s->ring + pos);
    if (r->op == OP_PAD) {
      done += r->size;
      pos = 0;
      continue;
    }
    if (r->op == OP_APPEND)
      do_append(s, r);
    else if (r->op == OP_READ)
      do_read(s, r);
    else
      do_control(s, r);
    done += r->size;
    pos += r->size;
  }
  *end = pos;
  return done;
}

static void publish_stats(struct store *s) { /* under lock */
  size_t peak = s->st.queue_peak;
  uint64_t appended = s->st.appended, dropped = s->st.dropped;
  s->st = s->wst;
  s->st.queue_peak = peak;
  s->st.appended = appended;
  s->st.dropped = dropped;
}

void wschat__hsq_writer(void *arg) {
  struct store *s = arg;
  uv_mutex_lock(&s->lock);
  for (;;) {
    for (;;) { /* until there is something to do */
      if (s->stopping || s->kick || (!s->in_txn && s->used > 0))
        break;
      if (s->in_txn) {
        uint64_t now = uv_hrtime();
        if (now >= s->deadline)
          break;
        (void)uv_cond_timedwait(&s->work, &s->lock, s->deadline - now);
      } else {
        s->idle = 1;
        uv_cond_wait(&s->work, &s->lock);
        s->idle = 0;
      }
    }
    s->kick = 0;
    wschat__hsq_take_pending(s);
    int stopping = s->stopping;
    size_t avail = s->used, pos = s->tail, end = pos;
    uv_mutex_unlock(&s->lock);

    size_t done = consume(s, pos, avail, &end);
    if (s->in_txn && (s->commit_now || stopping || uv_hrtime() >= s->deadline))
      wschat__hsq_commit(s);
    if (s->reserve_target) {
      wschat__hsq_reserve(s, s->reserve_target);
      s->reserve_target = 0;
    }

    uv_mutex_lock(&s->lock);
    /* Only what was consumed moves the tail: with nothing taken (woken to
     * commit an idle batch), the loop may have found the ring empty
     * meanwhile and started it again at 0 (ring_take), and the old tail
     * would point the next round at bytes that are no record. */
    if (done > 0)
      s->tail = end;
    s->used -= done;
    publish_stats(s);
    for (struct waiter *w = s->finished, *next; w; w = next) {
      next = w->next; /* read before done: then w may vanish */
      w->done = 1;
    }
    s->finished = NULL;
    uv_cond_broadcast(&s->loop_cv); /* space, or a waiter's answer */
    if (stopping && s->used == 0 && !s->in_txn)
      break;
  }
  uv_mutex_unlock(&s->lock);
}
