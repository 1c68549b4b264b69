/*
 * history_sqlite_int.h: what the two halves of the SQLite history store
 * share (private to lib/history_sqlite.c and lib/history_writer.c; see the
 * comment at the top of history_sqlite.c for the design).
 *
 * history_sqlite.c is the loop's side: the ring of records, the ops of
 * struct wschat__history, open and close. history_writer.c is the writer
 * thread's side: batches, retention, id reservations, reads, the gap list.
 * history_db.c sets the database up at open: schema, statements, epoch,
 * the id ceiling after a clean or unclean end.
 */
#ifndef WSCHAT_HISTORY_SQLITE_INT_H
#define WSCHAT_HISTORY_SQLITE_INT_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "history.h"
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
  int lock_fd; /* owned: holds flock(LOCK_EX) on the file, or -1 */
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


static inline struct store *S(struct wschat__history *h) {
  return (struct store *)h;
}

static inline uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* history_sqlite.c */
void wschat__hsq_log_line(struct store *s, const char *fmt, ...);
const char *wschat__hsq_rec_str(const struct rec *r, int which);
const char *wschat__hsq_rec_text(const struct rec *r);
void wschat__hsq_take_pending(struct store *s);

/* history_writer.c and history_db.c */
/* Finalizes the statements and closes the connection (close, or a failed
 * open). */
void wschat__hsq_close_db(struct store *s);
void wschat__hsq_commit(struct store *s);
void wschat__hsq_gap_add(struct gap *g, size_t *n, uint64_t lo, uint64_t hi);
int wschat__hsq_meta_set(struct store *s, const char *key, uint64_t v);
int wschat__hsq_query_u64(sqlite3 *db, const char *sql, uint64_t *v);
void wschat__hsq_reserve(struct store *s, uint64_t target);
int wschat__hsq_start(struct store *s, const char **what);
int wschat__hsq_step_done(struct store *s, sqlite3_stmt *st);
sqlite3_stmt **wschat__hsq_stmt_at(struct store *s, size_t i);
int wschat__hsq_write_gaps(struct store *s);
void wschat__hsq_writer(void *arg);

#endif
