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
#include "history_sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"



void wschat__hsq_log_line(struct store *s, const char *fmt, ...) {
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

void wschat__hsq_take_pending(struct store *s) {
  for (size_t i = 0; i < s->npending; i++)
    wschat__hsq_gap_add(s->gaps, &s->ngaps, s->pending[i].lo, s->pending[i].hi);
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

const char *wschat__hsq_rec_str(const struct rec *r, int which) {
  if (r->slen[which] == 0)
    return NULL;
  const char *p = r->data;
  for (int i = 0; i < which; i++)
    p += r->slen[i];
  return p;
}

const char *wschat__hsq_rec_text(const struct rec *r) {
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

static void free_room(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  free(value);
}

/* Frees what open made (the thread has stopped or never started). */
static void destroy(struct store *s) {
  wschat__hsq_close_db(s);
  if (s->lock_fd >= 0)
    close(s->lock_fd);
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
  wschat__hsq_take_pending(s);
  int err = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!err)
    err = wschat__hsq_step_done(s, s->s_begin);
  if (!err && s->gaps_dirty)
    err = wschat__hsq_write_gaps(s);
  if (!err)
    err = wschat__hsq_meta_set(s, "next", s->next);
  if (!err)
    err = wschat__hsq_meta_set(s, "clean", 1);
  if (!err)
    err = wschat__hsq_step_done(s, s->s_commit);
  if (err) {
    if (!sqlite3_get_autocommit(s->db))
      (void)wschat__hsq_step_done(s, s->s_rollback);
    wschat__hsq_log_line(s,
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

/* One process per file: the ids, the retention counts and the gap list
 * are this process's alone. An flock() of our own (SQLite's locks are
 * fcntl() locks, which it never holds long, and which flock() does not
 * see); a process that is still closing gets two seconds to let go. */
static int lock_file(struct store *s) {
  s->lock_fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (s->lock_fd < 0)
    return -1;
  for (int i = 0; i < 40; i++) {
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

int wschat__history_sqlite_open(const struct wschat__history_config *cfg,
                                struct wschat__history **out) {
  *out = NULL;
  if (cfg == NULL || cfg->path == NULL || cfg->post == NULL)
    return WSCHAT_EINVAL;
  struct store *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return WSCHAT_ENOMEM;
  s->base.ops = &sqlite_ops;
  s->lock_fd = -1;
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
  if (rc == SQLITE_OK && lock_file(s) != 0) {
    what = "in use by another process (each server needs a history file of "
           "its own)";
    rc = SQLITE_BUSY;
  }
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
    rc = wschat__hsq_query_u64(s->db, "PRAGMA page_size", &page);
    if (rc == SQLITE_OK) {
      char sql[64];
      snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%llu",
               (unsigned long long)(cfg->max_bytes / (page ? page : 4096)));
      rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    }
  }
  if (rc == SQLITE_OK)
    rc = wschat__hsq_start(s, &what);
  if (rc == SQLITE_OK && !cfg->sync_full)
    rc = sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  if (rc == SQLITE_OK && uv_thread_create(&s->thread, wschat__hsq_writer, s) != 0) {
    what = "cannot start the writer thread";
    rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK) {
    wschat__hsq_log_line(s, "%s: %s: %s", s->path, what,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    if (s->db && !sqlite3_get_autocommit(s->db))
      (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    destroy(s);
    return rc == SQLITE_NOMEM ? WSCHAT_ENOMEM : WSCHAT_EIO;
  }
  *out = &s->base;
  return 0;
}
