/*
 * history_db: the SQLite history store's database (see history_sqlite.c
 * for the design): the schema, the prepared statements, and setting up a
 * file at open (WAL, epoch, id ceiling after a clean or unclean end, the
 * gap list). Runs before the writer thread starts.
 */
#include "history_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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

sqlite3_stmt **wschat__hsq_stmt_at(struct store *s, size_t i) {
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

int wschat__hsq_query_u64(sqlite3 *db, const char *sql, uint64_t *v) {
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
    wschat__hsq_gap_add(s->gaps, &s->ngaps, (uint64_t)sqlite3_column_int64(st, 0),
            (uint64_t)sqlite3_column_int64(st, 1));
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : rc;
}

/* Reads the meta rows (making them for a new file), decides where ids
 * wschat__hsq_start, reserves the first block: one synced transaction. Returns 0 or
 * an SQLite code; *what says which step failed. */
int wschat__hsq_start(struct store *s, const char **what) {
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
                                wschat__hsq_stmt_at(s, i), NULL)) != 0)
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
  if ((rc = wschat__hsq_query_u64(db, "SELECT coalesce(max(id), 0) FROM events", &top)))
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
    wschat__hsq_gap_add(s->gaps, &s->ngaps, top + 1, first - 1);
    s->gaps_dirty = 1;
  }
  s->epoch = epoch;
  s->next = first;
  s->last_appended = first - 1;
  *what = "cannot write to the database";
  uint64_t ceil = first - 1 + s->cfg.id_block;
  if ((rc = wschat__hsq_meta_set(s, "epoch", epoch)) || (rc = wschat__hsq_meta_set(s, "version", 1)) ||
      (rc = wschat__hsq_meta_set(s, "ceiling", ceil)) || (rc = wschat__hsq_meta_set(s, "clean", 0)) ||
      (rc = wschat__hsq_meta_set(s, "block", s->cfg.id_block)))
    return rc;
  if (s->gaps_dirty && (rc = wschat__hsq_write_gaps(s)) != 0)
    return rc;
  if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != 0)
    return rc;
  s->gaps_dirty = 0;
  atomic_store(&s->ceiling, ceil);
  atomic_store(&s->reserve_done, ceil);
  s->reserve_asked = ceil;
  return 0;
}

void wschat__hsq_close_db(struct store *s) {
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(*wschat__hsq_stmt_at(s, i));
  if (s->db && sqlite3_close(s->db) != SQLITE_OK)
    wschat__hsq_log_line(s, "%s: close: %s", s->path, sqlite3_errmsg(s->db));
}
