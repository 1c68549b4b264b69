/*
 * history: the store of room events (lines, /me, joins, leaves, renames),
 * so that they outlive the process: a joiner's replay, /history, and a
 * reconnecting client's "everything after id X". Whispers and notices are
 * never stored.
 *
 * The interface is an ops table behind struct wschat__history, like bus.h
 * and presence.h: history_sqlite.c is the built-in backend; another store
 * can take its place behind the same operations.
 *
 * Threads. One thread, "the loop", owns the store: it opens it, appends,
 * takes ids, asks for reads and closes it. The backend does its disk work
 * on threads of its own and hands read results back to the loop through
 * the config's post function. Only stats() may be called from any thread.
 *
 * The loop never waits on disk, with three stated exceptions that happen
 * at startup, at shutdown or by the operator's choice: open() (creates the
 * file, reserves the first block of ids), close() and flush() (write what
 * is queued), and append() in sync_full mode (returns once the row is
 * durable, so the caller can broadcast only what is stored).
 *
 * Ids. The store hands out the event ids (next_id()), so that they are
 * strictly increasing and never reused, also across restarts and after a
 * crash: it writes a ceiling to the database ahead of the ids it hands
 * out, a block at a time, and after an unclean shutdown it starts one
 * whole block above that ceiling. The one case this cannot cover: more
 * than a block and a half of ids handed out while the disk refuses the
 * reservations (stats: ids_unreserved), then a crash. Each database has
 * an epoch, a random
 * nonzero 64-bit number made when the file is created: a client that
 * knows (epoch, id) can tell "the database was reset" from "I missed
 * something".
 *
 * Honest reads. Rows can be missing for four reasons: retention pruned
 * them, the queue was full, the disk failed, or the process died before
 * its last batch was written. The store remembers each (per room for
 * pruning; as ranges of ids for the others) and a read says complete = 0
 * whenever a row it was asked for may be missing. It may say 0 when
 * nothing is missing (the ranges are kept coarse); never 1 when something
 * is.
 *
 * Owns: whatever its backend needs (SQLite: the connection, the writer
 * thread, the queue). Never owns the caller's events: append() copies.
 */
#ifndef WSCHAT_HISTORY_H
#define WSCHAT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "wschat.h"

struct wschat_event;
struct wschat__history;

/* Runs fn(NULL-or-server, arg) on the loop thread, soon; any thread may
 * call it. Returns 0, or nonzero if fn will never run (then arg is still
 * the caller's). The server's post queue fits: wschat__post(q, fn, arg, 0)
 * (see post.h). */
typedef int (*wschat__history_post_fn)(void *post_user, wschat_post_cb fn,
                                       void *arg);
/* One line (no newline) about a failure or a recovery, from any of the
 * store's threads. msg is valid during the call only. */
typedef void (*wschat__history_log_fn)(void *log_user, const char *msg);

/* The defaults (a 0 in the config means the default). */
enum {
  WSCHAT__HISTORY_FLUSH_MS = 100,
  WSCHAT__HISTORY_MAX_PER_ROOM = 10000,
  WSCHAT__HISTORY_QUEUE_BYTES = 8 << 20,
  WSCHAT__HISTORY_ID_BLOCK = 65536,
  WSCHAT__HISTORY_READ_MAX = 10000, /* rows in one read, at most */
  /* A page ends before its rows pass about this many bytes once rendered
   * (text plus strings plus 112 per row), whatever the limit: one answer
   * stays one message of at most about 1 MiB, which common clients accept
   * by default, and one reader cannot make the store render gigabytes.
   * Such a page says more = 1 and complete = 0. */
  WSCHAT__HISTORY_PAGE_BYTES = 768 << 10,
};

struct wschat__history_config {
  const char *path; /* the database file; copied during open */
  /* Appends are written in one transaction every flush_ms (0: 100): a
   * crash (SIGKILL) loses at most what was appended in the last flush_ms
   * (plus the time one commit takes). */
  unsigned flush_ms;
  /* 1: append() returns only after its row is committed and synced to the
   * disk (SQLite synchronous=FULL). 0: batched, synchronous=NORMAL (a
   * committed row survives a process crash; a power cut may lose the last
   * commits). */
  int sync_full;
  size_t max_per_room; /* rows kept per room (0: 10,000; SIZE_MAX: all) */
  size_t queue_bytes;  /* the queue to the writer, in bytes (0: 8 MiB) */
  uint64_t id_block;   /* ids reserved at a time (0: 65,536) */
  /* The database may not grow past this many bytes (0: no limit); past
   * it, writes fail as on a full disk. */
  uint64_t max_bytes;
  wschat__history_post_fn post; /* required: how reads come back */
  void *post_user;
  wschat__history_log_fn log; /* NULL: lines go to stderr */
  void *log_user;
};

/* What reads ask for. Rows are always returned oldest first. */
enum wschat__history_query_kind {
  /* The newest `limit` rows of the room. */
  WSCHAT__HISTORY_LAST = 1,
  /* The newest `limit` rows with id < id: paging back from the oldest
   * row a client has. */
  WSCHAT__HISTORY_BEFORE,
  /* The oldest `limit` rows with id > id, if epoch is the store's epoch;
   * if it is not (the database was replaced), the newest `limit` rows
   * with complete = 0. For recovery: "everything after what I saw". */
  WSCHAT__HISTORY_AFTER,
};

struct wschat__history_query {
  int kind;         /* enum wschat__history_query_kind */
  const char *room; /* any case (rooms are case-insensitive); copied */
  uint64_t id;      /* BEFORE and AFTER */
  uint64_t epoch;   /* AFTER: the epoch the client knew */
  size_t limit;     /* 1 .. WSCHAT__HISTORY_READ_MAX */
};

/*
 * The answer to one read. Owned by the read callback from the moment it is
 * called: free it with wschat__history_page_free() on the loop thread.
 */
struct wschat__history_page {
  int err;        /* 0, or WSCHAT_EIO: the read failed (n = 0, complete = 0) */
  int complete;   /* 1: no row in the range asked for may be missing */
  int more;       /* 1: further stored rows exist beyond the ones returned
                     (older for LAST and BEFORE, newer for AFTER): ask again
                     from the first (or last) id to page */
  uint64_t epoch; /* the store's */
  size_t n;
  /* n events, id increasing; each is one reference owned by the page,
   * with kind, id, ts, room, from, to, text and reason as appended
   * (client, skip and group are 0). Take your own with
   * wschat__event_ref() to keep one past the page. */
  struct wschat_event **ev;
  /* private: the callback and its argument */
  void (*cb)(struct wschat__history_page *page, void *user);
  void *user;
};

/* Called on the loop thread (through the config's post) with a page that
 * it owns from then on. */
typedef void (*wschat__history_read_cb)(struct wschat__history_page *page,
                                        void *user);

/* Counters since open; a snapshot taken under the store's lock. */
struct wschat__history_stats {
  uint64_t appended;     /* appends accepted into the queue */
  uint64_t written;      /* rows committed */
  uint64_t dropped;      /* appends refused: queue full or bigger than it */
  uint64_t write_errors; /* failed inserts or commits (their batch is lost) */
  uint64_t rows_lost;    /* accepted rows that a failed batch lost */
  uint64_t read_errors;  /* reads answered with WSCHAT_EIO */
  uint64_t reads_undelivered; /* pages freed because post failed */
  uint64_t pruned;            /* rows deleted by retention */
  uint64_t commits;           /* transactions committed */
  uint64_t ids_unreserved;    /* ids handed out above the durable ceiling
                                 (the disk could not take a reservation) */
  size_t queue_used;          /* bytes waiting in the queue now */
  size_t queue_peak;          /* the most ever waiting */
  int last_error;             /* the last SQLite (extended) error code, or 0 */
};

struct wschat__history_ops {
  /*
   * Queues a copy of ev (kind, id, ts, room, from, to, text, reason) to be
   * written; does not take a reference. Loop thread. ev->id must be
   * greater than every id appended before (ids from next_id() are).
   * Without sync_full it never waits on disk: when the queue is full the
   * row is dropped, counted and remembered as missing (the loop must never
   * wait; a full queue means the disk cannot keep up, and waiting would
   * stop the chat instead of losing history that reads then report as
   * incomplete). With sync_full it returns once the row is durable,
   * waiting for queue space if it must.
   * Returns 0, WSCHAT_EINVAL (a whisper, a notice, no room, or an id not
   * above the last), WSCHAT_ETOOMANY (queue full: dropped), WSCHAT_ETOOBIG
   * (bigger than the whole queue: dropped) or WSCHAT_EIO (sync_full: the
   * write failed, the row is not stored).
   */
  int (*append)(struct wschat__history *h, const struct wschat_event *ev);
  /*
   * The next event id: strictly increasing, never handed out before by
   * this database. Loop thread; never waits (when the reserved block runs
   * half out, the writer reserves the next one in the background). Every
   * event the chat makes takes its id here, stored or not.
   */
  uint64_t (*next_id)(struct wschat__history *h);
  /* The database's epoch (nonzero, stable across reopens). Any thread. */
  uint64_t (*epoch)(const struct wschat__history *h);
  /*
   * Queues the read q (copied; q->room need not outlive the call). The
   * read sees every append made before it; it runs off the loop thread and
   * cb(page, user) runs later on the loop thread, through the config's
   * post (if post fails the page is freed, counted, and cb never runs).
   * Loop thread. Reads queued before close() are answered; their callbacks
   * may run after close() returned (they do not touch the store).
   * Returns 0, WSCHAT_EINVAL (bad kind, room NULL, limit 0 or over
   * WSCHAT__HISTORY_READ_MAX) or WSCHAT_ETOOMANY (queue full: cb never
   * runs; ask again later).
   */
  int (*read)(struct wschat__history *h, const struct wschat__history_query *q,
              wschat__history_read_cb cb, void *user);
  /*
   * Waits until everything appended so far is committed (and pruned).
   * Loop thread; waits on disk: for shutdown and tests.
   * Returns 0 or WSCHAT_EIO (a batch failed since the last flush).
   */
  int (*flush)(struct wschat__history *h);
  /* Copies the counters into out. Any thread. */
  void (*stats)(struct wschat__history *h, struct wschat__history_stats *out);
  /*
   * Writes everything queued, answers queued reads, marks the database
   * cleanly closed, stops the threads and frees h. Loop thread; waits on
   * disk. h is invalid afterwards.
   */
  void (*close)(struct wschat__history *h);
};

struct wschat__history {
  const struct wschat__history_ops *ops;
};

/*
 * Opens (or creates) the SQLite store at cfg->path, in WAL mode, reserves
 * the first block of ids and starts the writer thread; *out is owned by
 * the caller, who gives it back with close(). Loop thread (at startup: it
 * waits on disk). A failure is also logged with the path and the reason.
 * Returns 0, WSCHAT_EINVAL (no path or no post), WSCHAT_ENOMEM or
 * WSCHAT_EIO (the file cannot be opened, created or written).
 */
int wschat__history_sqlite_open(const struct wschat__history_config *cfg,
                                struct wschat__history **out);

/* Frees a page (NULL: nothing) and drops its references to its events.
 * The loop thread (event reference counts are not atomic); the store's
 * own threads may use it only on a page nobody else has seen. */
void wschat__history_page_free(struct wschat__history_page *page);

/* For backends: the function a backend posts with a finished page as arg;
 * on the loop thread it calls page->cb(page, page->user). */
void wschat__history_deliver(struct wschat_server *srv, void *arg);

#endif
