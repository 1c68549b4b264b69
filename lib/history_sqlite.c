/*
 * history_sqlite: the SQLite store behind history.h.
 *
 * Two threads. The loop appends, asks for reads and takes ids; the writer
 * thread owns the SQLite connection (after open, before close) and does
 * every statement. Between them is one ring buffer of records (appends
 * with their strings copied in, reads, flushes, id reservations), in the
 * order the loop made them: so a read sees every append made before it.
 * The ring is bounded in bytes and allocated once; an append costs one
 * copy into it and no malloc.
 *
 * The writer keeps a transaction open for flush_ms from the first row it
 * takes (or less: a sync_full append, a flush, a reservation or close ends
 * it early), then prunes the rooms it touched and commits. Reads run on
 * the writer inside that transaction, so they see rows not yet committed.
 *
 * Ids: meta.ceiling is the highest id the loop may hand out; the writer
 * raises it a block ahead, synced (synchronous=FULL) before the loop may
 * use the new ids. A clean close records meta.next and meta.clean = 1; an
 * open after an unclean end starts one block above the ceiling (so ids
 * handed out beyond a reservation the disk refused are not reused either)
 * and records the ids between the last stored row and that start as a
 * gap: they may have reached clients and died with the process.
 *
 * Schema (version 1):
 *   meta(key TEXT PRIMARY KEY, value INTEGER)      epoch, ceiling, clean,
 *                                                  next, block, version
 *   events(id INTEGER PRIMARY KEY, ts, kind, room COLLATE NOCASE, sender,
 *          target, text BLOB, reason), index events_room_id(room, id)
 *   rooms(room PRIMARY KEY COLLATE NOCASE, pruned_upto)  retention's mark
 *   gaps(lo, hi)                                   ids that may be missing
 *
 * Owns: the store (struct store), its path copy, ring, gap list, room
 * counters (map entries and values), prepared statements, connection and
 * thread. Never owns the caller's events.
 */
#include "history.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "event.h"
#include "map.h"

enum { OP_PAD = 1, OP_APPEND, OP_READ, OP_FLUSH, OP_RESERVE };
enum { MAX_GAPS = 64, NSTR = 4 }; /* strings of a record: room from to reason */
enum { S_ROOM = 0, S_FROM, S_TO, S_REASON };
#define QUEUE_MIN ((size_t)1024)
#define QUEUE_MAX ((size_t)1 << 30)
#define RETRY_NS ((uint64_t)1000000000) /* a failed reservation: retry after   \
                                         */
#define LOG_EVERY_NS ((uint64_t)10000000000) /* lines about writes, at most */

/* Someone on the loop thread waiting for the writer (sync_full append,
 * flush). Lives on the waiter's stack; `next` is the writer's. */
struct waiter {
  struct waiter *next;
  int flush; /* a flush: also reports batches failed since the last one */
  int done;  /* guarded by lock */
  int err;   /* guarded by lock */
};

/* A record in the ring, followed by its strings (each with its NUL, then
 * the text's bytes). size is a multiple of 8 and counts everything. */
struct rec {
  size_t size;
  int op, kind;
  uint64_t id;      /* APPEND: the event's; READ: the query's; RESERVE: the
                       new ceiling */
  int64_t ts;       /* APPEND */
  uint64_t ns;      /* APPEND: uv_hrtime() when appended */
  uint64_t epoch;   /* READ */
  size_t limit;     /* READ */
  struct waiter *w; /* APPEND (sync_full), FLUSH */
  wschat__history_read_cb cb; /* READ */
  void *user;                 /* READ */
  uint32_t slen[NSTR];        /* strlen + 1, or 0 for NULL */
  size_t text_len;
  char data[];
};

struct gap {
  uint64_t lo, hi; /* ids lo..hi may be missing */
};

/* Rows of one room, as the writer counts them for retention. */
struct room_count {
  int64_t count;              /* -1: unknown, ask the database */
  struct room_count *touched; /* next room with rows in the open batch */
  int in_batch;
  char name[];
};

struct store {
  struct wschat__history base;       /* first: h is &store->base */
  struct wschat__history_config cfg; /* path points to path below */
  char *path;                        /* owned copy */
  uint64_t epoch;                    /* set by open, then read-only */

  /* The loop's. */
  uint64_t next;          /* the next id to hand out */
  uint64_t last_appended; /* the highest id appended */
  uint64_t reserve_asked; /* the ceiling last asked for */

  /* Shared: the atomics, and everything below lock. */
  _Atomic uint64_t ceiling;           /* durable: ids up to it are reserved */
  _Atomic uint64_t reserve_done;      /* the last reservation attempted */
  _Atomic uint64_t reserve_failed_ns; /* uv_hrtime() of its failure, or 0 */
  _Atomic uint64_t ids_unreserved;
  uv_mutex_t lock;
  uv_cond_t work;    /* the writer waits for records or a kick */
  uv_cond_t loop_cv; /* the loop waits for queue space or a waiter */
  char *ring;        /* owned; cap bytes */
  size_t cap, head, tail, used;
  int kick;     /* the writer should look now, not at its deadline */
  int idle;     /* the writer waits with no batch open */
  int stopping; /* close() has begun */
  struct gap pending[MAX_GAPS]; /* ids the loop dropped, for the writer */
  size_t npending;
  struct wschat__history_stats st; /* the published counters */

  /* The writer's (and open's and close's, when no writer runs). */
  sqlite3 *db;
  sqlite3_stmt *s_ins, *s_cnt, *s_cut, *s_del, *s_mark, *s_pruned, *s_desc,
      *s_asc, *s_begin, *s_commit, *s_rollback, *s_meta, *s_gdel, *s_gins;
  struct wschat__map rooms;   /* name -> struct room_count (owned) */
  struct room_count *touched; /* rooms with rows in the open batch */
  struct gap gaps[MAX_GAPS];  /* sorted, disjoint */
  size_t ngaps;
  int gaps_dirty;    /* the table does not match gaps[] yet */
  int in_txn;        /* a batch is open */
  uint64_t deadline; /* uv_hrtime() when it must commit */
  uint64_t batch_first, batch_last, batch_rows;
  struct waiter *waiters;  /* for the open batch's commit */
  struct waiter *finished; /* answered, to be told at the end of the pass */
  int commit_now;
  uint64_t reserve_target; /* nonzero: reserve up to it after the commit */
  int failing;             /* the last write failed */
  uint64_t logged_ns;      /* uv_hrtime() of the last line about writes */
  int flush_err;           /* a batch failed since the last flush */
  uint64_t failed_batches;
  struct wschat__history_stats wst; /* the writer's counters */
  uv_thread_t thread;
};

static struct store *S(struct wschat__history *h) { return (struct store *)h; }

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

static void log_line(struct store *s, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  /* clang-14's analyzer does not see va_start above: a false positive. */
  vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  if (s->cfg.log)
    s->cfg.log(s->cfg.log_user, msg);
  else
    fprintf(stderr, "wschat: history: %s\n", msg);
}

/* ---- gaps: ranges of ids that may be missing ---- */

/* Adds lo..hi to a sorted, disjoint list of at most MAX_GAPS, merging what
 * touches it; when full, the two oldest merge (covering more is safe). */
static void gap_add(struct gap *g, size_t *n, uint64_t lo, uint64_t hi) {
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
static void take_pending(struct store *s) {
  for (size_t i = 0; i < s->npending; i++)
    gap_add(s->gaps, &s->ngaps, s->pending[i].lo, s->pending[i].hi);
  if (s->npending)
    s->gaps_dirty = 1;
  s->npending = 0;
}

/* ---- the ring (under lock) ---- */

/* Finds room for need bytes (a multiple of 8). Returns the offset, or
 * SIZE_MAX if they do not fit now. */
static size_t ring_take(struct store *s, size_t need) {
  if (s->used == 0)
    s->head = s->tail = 0;
  if (need > s->cap - s->used)
    return SIZE_MAX;
  size_t at;
  if (s->head >= s->tail) { /* data in [tail, head): free at both ends */
    if (s->cap - s->head >= need) {
      at = s->head;
    } else if (s->tail >= need) {
      size_t waste = s->cap - s->head;
      if (waste >= sizeof(struct rec)) {
        struct rec *pad = (struct rec *)(s->ring + s->head);
        pad->op = OP_PAD;
        pad->size = waste;
      } /* else too short for a header: the reader skips it all the same */
      s->used += waste;
      at = 0;
    } else {
      return SIZE_MAX;
    }
  } else if (s->tail - s->head >= need) {
    at = s->head;
  } else {
    return SIZE_MAX;
  }
  s->head = at + need;
  s->used += need;
  if (s->used > s->st.queue_peak)
    s->st.queue_peak = s->used;
  return at;
}

static size_t rec_size(const size_t *slen, size_t text_len) {
  size_t n = sizeof(struct rec) + text_len;
  for (int i = 0; i < NSTR; i++)
    n += slen[i];
  return (n + 7) & ~(size_t)7;
}

static const char *rec_str(const struct rec *r, int which) {
  if (r->slen[which] == 0)
    return NULL;
  const char *p = r->data;
  for (int i = 0; i < which; i++)
    p += r->slen[i];
  return p;
}

static const char *rec_text(const struct rec *r) {
  const char *p = r->data;
  for (int i = 0; i < NSTR; i++)
    p += r->slen[i];
  return p;
}

/* Fills a record at offset at (under lock). strs[i] may be NULL. */
static struct rec *rec_fill(struct store *s, size_t at, size_t size, int op,
                            const char *const *strs, const size_t *slen,
                            const char *text, size_t text_len) {
  struct rec *r = (struct rec *)(s->ring + at);
  memset(r, 0, sizeof(*r));
  r->size = size;
  r->op = op;
  char *p = r->data;
  for (int i = 0; i < NSTR; i++) {
    r->slen[i] = (uint32_t)slen[i];
    if (slen[i]) {
      memcpy(p, strs[i], slen[i]);
      p += slen[i];
    }
  }
  if (text_len)
    memcpy(p, text, text_len);
  r->text_len = text_len;
  return r;
}

/* Wakes the writer if it would not look soon by itself (under lock). */
static void wake_writer(struct store *s, int urgent) {
  if (urgent || s->idle || s->used > s->cap / 2) {
    s->kick |= urgent || s->used > s->cap / 2;
    uv_cond_signal(&s->work);
  }
}

/* ---- the loop's operations ---- */

static int kind_stored(int kind) {
  return kind == WSCHAT_EVENT_MESSAGE || kind == WSCHAT_EVENT_ACTION ||
         kind == WSCHAT_EVENT_JOIN || kind == WSCHAT_EVENT_LEAVE ||
         kind == WSCHAT_EVENT_NICK;
}

/* The loop dropped id (under lock): one more id that may be missing. A
 * drop right after another drop extends its range. */
static void note_drop(struct store *s, uint64_t id) {
  s->st.dropped++;
  if (s->npending && s->pending[s->npending - 1].hi >= s->last_appended) {
    s->pending[s->npending - 1].hi = id;
    return;
  }
  if (s->npending == MAX_GAPS) { /* the writer is slow to take them */
    s->pending[s->npending - 1].hi = id;
    return;
  }
  s->pending[s->npending].lo = id;
  s->pending[s->npending].hi = id;
  s->npending++;
}

static int hs_append(struct wschat__history *h, const struct wschat_event *ev) {
  struct store *s = S(h);
  if (ev == NULL || !kind_stored(ev->kind) || ev->room == NULL || ev->id == 0 ||
      ev->id <= s->last_appended || ev->id > INT64_MAX)
    return WSCHAT_EINVAL;
  const char *strs[NSTR] = {ev->room, ev->from, ev->to, ev->reason};
  size_t slen[NSTR];
  for (int i = 0; i < NSTR; i++)
    slen[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
  size_t text_len = ev->text ? ev->text_len : 0;
  size_t size = rec_size(slen, text_len);
  struct waiter w = {NULL, 0, 0, 0};
  uv_mutex_lock(&s->lock);
  if (size > s->cap) {
    note_drop(s, ev->id);
    s->last_appended = ev->id;
    uv_mutex_unlock(&s->lock);
    return WSCHAT_ETOOBIG;
  }
  size_t at = ring_take(s, size);
  while (at == SIZE_MAX && s->cfg.sync_full) { /* it waits anyway */
    s->kick = 1;
    uv_cond_signal(&s->work);
    uv_cond_wait(&s->loop_cv, &s->lock);
    at = ring_take(s, size);
  }
  if (at == SIZE_MAX) {
    note_drop(s, ev->id);
    s->last_appended = ev->id;
    uv_mutex_unlock(&s->lock);
    return WSCHAT_ETOOMANY;
  }
  struct rec *r =
      rec_fill(s, at, size, OP_APPEND, strs, slen, ev->text, text_len);
  r->kind = ev->kind;
  r->id = ev->id;
  r->ts = ev->ts;
  r->ns = uv_hrtime(); /* its batch commits flush_ms after this */
  s->last_appended = ev->id;
  s->st.appended++;
  if (!s->cfg.sync_full) {
    wake_writer(s, 0);
    uv_mutex_unlock(&s->lock);
    return 0;
  }
  r->w = &w;
  wake_writer(s, 1);
  while (!w.done)
    uv_cond_wait(&s->loop_cv, &s->lock);
  uv_mutex_unlock(&s->lock);
  return w.err;
}

/* Queues a record with no strings and waits for it if w is set. Returns
 * 0, or WSCHAT_ETOOMANY (no room and !wait). */
static int queue_control(struct store *s, int op, uint64_t id,
                         struct waiter *w) {
  const char *strs[NSTR] = {NULL, NULL, NULL, NULL};
  size_t slen[NSTR] = {0, 0, 0, 0};
  size_t size = rec_size(slen, 0);
  uv_mutex_lock(&s->lock);
  size_t at = ring_take(s, size);
  while (at == SIZE_MAX && w) {
    s->kick = 1;
    uv_cond_signal(&s->work);
    uv_cond_wait(&s->loop_cv, &s->lock);
    at = ring_take(s, size);
  }
  if (at == SIZE_MAX) {
    uv_mutex_unlock(&s->lock);
    return WSCHAT_ETOOMANY;
  }
  struct rec *r = rec_fill(s, at, size, op, strs, slen, NULL, 0);
  r->id = id;
  r->w = w;
  wake_writer(s, 1);
  while (w && !w->done)
    uv_cond_wait(&s->loop_cv, &s->lock);
  uv_mutex_unlock(&s->lock);
  return w ? w->err : 0;
}

static uint64_t hs_next_id(struct wschat__history *h) {
  struct store *s = S(h);
  uint64_t id = s->next++;
  uint64_t ceiling = atomic_load(&s->ceiling);
  if (id > ceiling)
    atomic_fetch_add(&s->ids_unreserved, 1);
  uint64_t block = s->cfg.id_block;
  uint64_t left = ceiling > id ? ceiling - id : 0;
  if (left < block / 2 && atomic_load(&s->reserve_done) >= s->reserve_asked) {
    uint64_t failed = atomic_load(&s->reserve_failed_ns);
    if (failed && uv_hrtime() - failed < RETRY_NS)
      return id;
    uint64_t target = umax(ceiling, id) + block;
    if (queue_control(s, OP_RESERVE, target, NULL) == 0)
      s->reserve_asked = target;
  }
  return id;
}

static uint64_t hs_epoch(const struct wschat__history *h) {
  return ((const struct store *)h)->epoch;
}

static int hs_read(struct wschat__history *h,
                   const struct wschat__history_query *q,
                   wschat__history_read_cb cb, void *user) {
  struct store *s = S(h);
  if (q == NULL || cb == NULL || q->room == NULL || q->limit == 0 ||
      q->limit > WSCHAT__HISTORY_READ_MAX ||
      (q->kind != WSCHAT__HISTORY_LAST && q->kind != WSCHAT__HISTORY_BEFORE &&
       q->kind != WSCHAT__HISTORY_AFTER))
    return WSCHAT_EINVAL;
  const char *strs[NSTR] = {q->room, NULL, NULL, NULL};
  size_t slen[NSTR] = {strlen(q->room) + 1, 0, 0, 0};
  size_t size = rec_size(slen, 0);
  uv_mutex_lock(&s->lock);
  size_t at = ring_take(s, size);
  if (at == SIZE_MAX) {
    uv_mutex_unlock(&s->lock);
    return WSCHAT_ETOOMANY;
  }
  struct rec *r = rec_fill(s, at, size, OP_READ, strs, slen, NULL, 0);
  r->kind = q->kind;
  r->id = q->id;
  r->epoch = q->epoch;
  r->limit = q->limit;
  r->cb = cb;
  r->user = user;
  wake_writer(s, 1);
  uv_mutex_unlock(&s->lock);
  return 0;
}

static int hs_flush(struct wschat__history *h) {
  struct waiter w = {NULL, 1, 0, 0};
  return queue_control(S(h), OP_FLUSH, 0, &w);
}

static void hs_stats(struct wschat__history *h,
                     struct wschat__history_stats *out) {
  struct store *s = S(h);
  uv_mutex_lock(&s->lock);
  *out = s->st;
  out->queue_used = s->used;
  uv_mutex_unlock(&s->lock);
  out->ids_unreserved = atomic_load(&s->ids_unreserved);
}

/* ---- the writer ---- */

static int step_done(struct store *s, sqlite3_stmt *st) {
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
    (void)step_done(s, s->s_rollback);
  s->wst.write_errors++;
  s->wst.rows_lost += s->batch_rows;
  s->wst.last_error = rc;
  gap_add(s->gaps, &s->ngaps, lo, hi);
  s->gaps_dirty = 1;
  s->flush_err = 1;
  s->failed_batches++;
  s->failing = 1;
  uint64_t now = uv_hrtime();
  if (s->logged_ns == 0 || now - s->logged_ns >= LOG_EVERY_NS) {
    log_line(s,
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
    log_line(s, "%s: writes work again", s->path);
    s->logged_ns = now;
  }
  s->failing = 0;
}

static int bind_str(sqlite3_stmt *st, int i, const char *v) {
  return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC)
           : sqlite3_bind_null(st, i);
}

static void do_append(struct store *s, const struct rec *r) {
  const char *room = rec_str(r, S_ROOM);
  if (r->w) { /* answered with the batch, whatever becomes of it */
    r->w->next = s->waiters;
    s->waiters = r->w;
    s->commit_now = 1;
  }
  if (!s->in_txn) {
    int rc = step_done(s, s->s_begin);
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
    bind_str(st, 5, rec_str(r, S_FROM));
    bind_str(st, 6, rec_str(r, S_TO));
    sqlite3_bind_blob(st, 7, rec_text(r), (int)r->text_len, SQLITE_STATIC);
    bind_str(st, 8, rec_str(r, S_REASON));
    err = step_done(s, st);
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
  if ((err = step_done(s, s->s_del)) != 0)
    return err;
  int64_t n = sqlite3_changes(s->db);
  sqlite3_bind_text(s->s_mark, 1, rc->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->s_mark, 2, cut);
  if ((err = step_done(s, s->s_mark)) != 0)
    return err;
  rc->count -= n;
  s->wst.pruned += (uint64_t)n;
  return 0;
}

/* Rewrites the gaps table from gaps[] (inside a transaction). */
static int write_gaps(struct store *s) {
  int err = step_done(s, s->s_gdel);
  for (size_t i = 0; !err && i < s->ngaps; i++) {
    sqlite3_bind_int64(s->s_gins, 1, (sqlite3_int64)s->gaps[i].lo);
    sqlite3_bind_int64(s->s_gins, 2, (sqlite3_int64)s->gaps[i].hi);
    err = step_done(s, s->s_gins);
  }
  return err;
}

static void commit(struct store *s) {
  int err = 0;
  for (struct room_count *rc = s->touched; rc && !err; rc = rc->touched)
    err = prune(s, rc);
  if (!err && s->gaps_dirty)
    err = write_gaps(s);
  if (!err)
    err = step_done(s, s->s_commit);
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

static int meta_set(struct store *s, const char *key, uint64_t v) {
  sqlite3_bind_text(s->s_meta, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->s_meta, 2, (sqlite3_int64)v);
  return step_done(s, s->s_meta);
}

/* Raises the durable ceiling to target, synced (outside a batch). */
static void reserve(struct store *s, uint64_t target) {
  int err = 0;
  if (!s->cfg.sync_full)
    err = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!err)
    err = step_done(s, s->s_begin);
  if (!err)
    err = meta_set(s, "ceiling", target);
  if (!err && s->gaps_dirty && (err = write_gaps(s)) == 0)
    s->gaps_dirty = 0;
  if (!err)
    err = step_done(s, s->s_commit);
  if (err && !sqlite3_get_autocommit(s->db))
    (void)step_done(s, s->s_rollback);
  if (!s->cfg.sync_full)
    (void)sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  if (err) {
    s->wst.write_errors++;
    s->wst.last_error = err;
    log_line(s, "%s: cannot reserve ids: %s", s->path, sqlite3_errstr(err));
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
    log_line(s, "out of memory for a read");
    return;
  }
  page->cb = r->cb;
  page->user = r->user;
  page->epoch = s->epoch;
  const char *room = rec_str(r, S_ROOM);
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
    log_line(s, "%s: read failed: %s", s->path, sqlite3_errstr(err));
  } else if (kind == WSCHAT__HISTORY_AFTER) {
    /* Rows after id were asked for: all of them, or up to the last one
     * returned when there are more. */
    page->complete =
        pruned <= r->id &&
        !gap_overlaps(s, r->id + 1,
                      page->more ? page->ev[page->n - 1]->id : UINT64_MAX);
  } else {
    /* The newest `limit` rows below bound: if there are that many, from
     * the first returned; else every row of the room below bound. */
    uint64_t hi = kind == WSCHAT__HISTORY_LAST ? UINT64_MAX
                  : r->id > 0                  ? r->id - 1
                                               : 0;
    if (page->n == r->limit)
      page->complete = !foreign && !gap_overlaps(s, page->ev[0]->id, hi);
    else
      page->complete = !foreign && pruned == 0 && !gap_overlaps(s, 1, hi);
    for (size_t i = 0; i < page->n / 2; i++) { /* oldest first */
      struct wschat_event *t = page->ev[i];
      page->ev[i] = page->ev[page->n - 1 - i];
      page->ev[page->n - 1 - i] = t;
    }
  }
  if (s->cfg.post(s->cfg.post_user, wschat__history_deliver, page) != 0) {
    s->wst.reads_undelivered++;
    log_line(s, "a read's answer could not be posted to the loop");
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

static void writer(void *arg) {
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
    take_pending(s);
    int stopping = s->stopping;
    size_t avail = s->used, pos = s->tail, end = pos;
    uv_mutex_unlock(&s->lock);

    size_t done = consume(s, pos, avail, &end);
    if (s->in_txn && (s->commit_now || stopping || uv_hrtime() >= s->deadline))
      commit(s);
    if (s->reserve_target) {
      reserve(s, s->reserve_target);
      s->reserve_target = 0;
    }

    uv_mutex_lock(&s->lock);
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

/* ---- open and close ---- */

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " room TEXT NOT NULL COLLATE NOCASE, sender TEXT, target TEXT,"
    " text BLOB NOT NULL, reason TEXT);"
    "CREATE INDEX IF NOT EXISTS events_room_id ON events(room, id);"
    "CREATE TABLE IF NOT EXISTS rooms(room TEXT PRIMARY KEY COLLATE NOCASE,"
    " pruned_upto INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS gaps(lo INTEGER NOT NULL,"
    " hi INTEGER NOT NULL);";

struct stmt_def {
  size_t offset;
  const char *sql;
};

#define STMT(field, sql)                                                       \
  { offsetof(struct store, field), sql }
static const struct stmt_def stmts[] = {
    STMT(s_ins, "INSERT INTO events(id,ts,kind,room,sender,target,text,"
                "reason) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)"),
    STMT(s_cnt, "SELECT count(*) FROM events WHERE room=?1"),
    STMT(s_cut, "SELECT id FROM events WHERE room=?1 ORDER BY id"
                " LIMIT 1 OFFSET ?2"),
    STMT(s_del, "DELETE FROM events WHERE room=?1 AND id<=?2"),
    STMT(s_mark, "INSERT INTO rooms(room,pruned_upto) VALUES(?1,?2)"
                 " ON CONFLICT(room) DO UPDATE SET"
                 " pruned_upto=max(pruned_upto,excluded.pruned_upto)"),
    STMT(s_pruned, "SELECT pruned_upto FROM rooms WHERE room=?1"),
    STMT(s_desc, "SELECT id,ts,kind,room,sender,target,text,reason FROM"
                 " events WHERE room=?1 AND id<?2 ORDER BY id DESC LIMIT ?3"),
    STMT(s_asc, "SELECT id,ts,kind,room,sender,target,text,reason FROM"
                " events WHERE room=?1 AND id>?2 ORDER BY id ASC LIMIT ?3"),
    STMT(s_begin, "BEGIN"),
    STMT(s_commit, "COMMIT"),
    STMT(s_rollback, "ROLLBACK"),
    STMT(s_meta, "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)"),
    STMT(s_gdel, "DELETE FROM gaps"),
    STMT(s_gins, "INSERT INTO gaps(lo,hi) VALUES(?1,?2)"),
};

static sqlite3_stmt **stmt_at(struct store *s, size_t i) {
  return (sqlite3_stmt **)((char *)s + stmts[i].offset);
}

/* meta[key] into *v; 0 (found), 1 (absent) or an SQLite code. */
static int meta_get(sqlite3 *db, const char *key, uint64_t *v) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?1", -1,
                              &st, NULL);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *v = (uint64_t)sqlite3_column_int64(st, 0);
    rc = 0;
  } else if (rc == SQLITE_DONE) {
    rc = 1;
  }
  sqlite3_finalize(st);
  return rc;
}

static int query_u64(sqlite3 *db, const char *sql, uint64_t *v) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *v = (uint64_t)sqlite3_column_int64(st, 0);
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

static int load_gaps(struct store *s) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(s->db, "SELECT lo, hi FROM gaps", -1, &st, NULL);
  if (rc)
    return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    gap_add(s->gaps, &s->ngaps, (uint64_t)sqlite3_column_int64(st, 0),
            (uint64_t)sqlite3_column_int64(st, 1));
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : rc;
}

/* Reads the meta rows (making them for a new file), decides where ids
 * start, reserves the first block: one synced transaction. Returns 0 or
 * an SQLite code; *what says which step failed. */
static int start(struct store *s, const char **what) {
  sqlite3 *db = s->db;
  int rc;
  *what = "cannot create the schema";
  if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != 0)
    return rc;
  if ((rc = sqlite3_exec(db, schema, NULL, NULL, NULL)) != 0)
    return rc;
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    if ((rc =
             sqlite3_prepare_v3(db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                stmt_at(s, i), NULL)) != 0)
      return rc;
  *what = "cannot read the database";
  uint64_t epoch = 0, ceiling = 0, clean = 0, next = 0, block = 0, top = 0;
  if ((rc = meta_get(db, "epoch", &epoch)) > 1)
    return rc;
  int fresh = rc == 1;
  if (!fresh && ((rc = meta_get(db, "ceiling", &ceiling)) > 1 ||
                 (rc = meta_get(db, "clean", &clean)) > 1 ||
                 (rc = meta_get(db, "next", &next)) > 1 ||
                 (rc = meta_get(db, "block", &block)) > 1))
    return rc;
  if ((rc = query_u64(db, "SELECT coalesce(max(id), 0) FROM events", &top)))
    return rc;
  if ((rc = load_gaps(s)) != 0)
    return rc;
  while (fresh && epoch == 0) { /* random, nonzero, positive as INTEGER */
    sqlite3_randomness(sizeof(epoch), &epoch);
    epoch &= INT64_MAX;
  }
  uint64_t first;
  if (fresh) {
    first = top + 1;
  } else if (clean) {
    first = umax(next, top + 1);
  } else {
    /* Unclean: ids up to a block above the ceiling may have been handed
     * out; those above the last stored row may have reached clients. */
    first = umax(ceiling, top) + umax(block, s->cfg.id_block) + 1;
    gap_add(s->gaps, &s->ngaps, top + 1, first - 1);
    s->gaps_dirty = 1;
  }
  s->epoch = epoch;
  s->next = first;
  s->last_appended = first - 1;
  *what = "cannot write to the database";
  uint64_t ceil = first - 1 + s->cfg.id_block;
  if ((rc = meta_set(s, "epoch", epoch)) || (rc = meta_set(s, "version", 1)) ||
      (rc = meta_set(s, "ceiling", ceil)) || (rc = meta_set(s, "clean", 0)) ||
      (rc = meta_set(s, "block", s->cfg.id_block)))
    return rc;
  if (s->gaps_dirty && (rc = write_gaps(s)) != 0)
    return rc;
  if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != 0)
    return rc;
  s->gaps_dirty = 0;
  atomic_store(&s->ceiling, ceil);
  atomic_store(&s->reserve_done, ceil);
  s->reserve_asked = ceil;
  return 0;
}

static void free_room(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  free(value);
}

/* Frees what open made (the thread has stopped or never started). */
static void destroy(struct store *s) {
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(*stmt_at(s, i));
  if (s->db && sqlite3_close(s->db) != SQLITE_OK)
    log_line(s, "%s: close: %s", s->path, sqlite3_errmsg(s->db));
  wschat__map_each(&s->rooms, free_room, NULL);
  wschat__map_free(&s->rooms);
  uv_cond_destroy(&s->loop_cv);
  uv_cond_destroy(&s->work);
  uv_mutex_destroy(&s->lock);
  free(s->ring);
  free(s->path);
  free(s);
}

static void hs_close(struct wschat__history *h) {
  struct store *s = S(h);
  uv_mutex_lock(&s->lock);
  s->stopping = 1;
  uv_cond_signal(&s->work);
  uv_mutex_unlock(&s->lock);
  uv_thread_join(&s->thread);
  /* Everything queued is written (or counted as lost). A clean mark lets
   * the next open start at `next` instead of a block above the ceiling. */
  take_pending(s);
  int err = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!err)
    err = step_done(s, s->s_begin);
  if (!err && s->gaps_dirty)
    err = write_gaps(s);
  if (!err)
    err = meta_set(s, "next", s->next);
  if (!err)
    err = meta_set(s, "clean", 1);
  if (!err)
    err = step_done(s, s->s_commit);
  if (err) {
    if (!sqlite3_get_autocommit(s->db))
      (void)step_done(s, s->s_rollback);
    log_line(s,
             "%s: cannot mark the database closed: %s (the next open "
             "skips a block of ids)",
             s->path, sqlite3_errstr(err));
  }
  destroy(s);
}

static const struct wschat__history_ops sqlite_ops = {
    .append = hs_append,
    .next_id = hs_next_id,
    .epoch = hs_epoch,
    .read = hs_read,
    .flush = hs_flush,
    .stats = hs_stats,
    .close = hs_close,
};

int wschat__history_sqlite_open(const struct wschat__history_config *cfg,
                                struct wschat__history **out) {
  *out = NULL;
  if (cfg == NULL || cfg->path == NULL || cfg->post == NULL)
    return WSCHAT_EINVAL;
  struct store *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return WSCHAT_ENOMEM;
  s->base.ops = &sqlite_ops;
  s->cfg = *cfg;
  if (s->cfg.flush_ms == 0)
    s->cfg.flush_ms = WSCHAT__HISTORY_FLUSH_MS;
  if (s->cfg.max_per_room == 0)
    s->cfg.max_per_room = WSCHAT__HISTORY_MAX_PER_ROOM;
  if (s->cfg.queue_bytes == 0)
    s->cfg.queue_bytes = WSCHAT__HISTORY_QUEUE_BYTES;
  if (s->cfg.id_block == 0)
    s->cfg.id_block = WSCHAT__HISTORY_ID_BLOCK;
  if (s->cfg.max_per_room > INT64_MAX)
    s->cfg.max_per_room = INT64_MAX;
  size_t cap = s->cfg.queue_bytes;
  cap = cap < QUEUE_MIN ? QUEUE_MIN : cap > QUEUE_MAX ? QUEUE_MAX : cap;
  s->cap = cap & ~(size_t)7;
  wschat__map_init(&s->rooms);
  s->path = strdup(cfg->path);
  s->ring = malloc(s->cap);
  int uv_ok = 0;
  if (s->path && s->ring && uv_mutex_init(&s->lock) == 0) {
    uv_ok = 1;
    if (uv_cond_init(&s->work) == 0) {
      uv_ok = 2;
      if (uv_cond_init(&s->loop_cv) == 0)
        uv_ok = 3;
    }
  }
  if (uv_ok != 3) {
    if (uv_ok >= 2)
      uv_cond_destroy(&s->work);
    if (uv_ok >= 1)
      uv_mutex_destroy(&s->lock);
    free(s->ring);
    free(s->path);
    free(s);
    return WSCHAT_ENOMEM;
  }
  s->cfg.path = s->path;

  const char *what = "cannot open";
  int rc = sqlite3_open_v2(
      s->path, &s->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 2000);
    what = "cannot use WAL mode";
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) /* the mode in force: "wal", or the old one */
        rc = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0
                 ? SQLITE_OK
                 : SQLITE_READONLY;
    }
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (rc == SQLITE_OK && cfg->max_bytes) { /* a cap, as a full disk */
    uint64_t page = 0;
    rc = query_u64(s->db, "PRAGMA page_size", &page);
    if (rc == SQLITE_OK) {
      char sql[64];
      snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%llu",
               (unsigned long long)(cfg->max_bytes / (page ? page : 4096)));
      rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    }
  }
  if (rc == SQLITE_OK)
    rc = start(s, &what);
  if (rc == SQLITE_OK && !cfg->sync_full)
    rc = sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  if (rc == SQLITE_OK && uv_thread_create(&s->thread, writer, s) != 0) {
    what = "cannot start the writer thread";
    rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK) {
    log_line(s, "%s: %s: %s", s->path, what,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    if (s->db && !sqlite3_get_autocommit(s->db))
      (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    destroy(s);
    return rc == SQLITE_NOMEM ? WSCHAT_ENOMEM : WSCHAT_EIO;
  }
  *out = &s->base;
  return 0;
}
