/*
 * Unit tests: the SQLite history store (lib/history_sqlite.c) through its
 * interface (lib/history.h), on real database files in a fresh mkdtemp
 * folder per test (removed by the teardown).
 *
 * The test's own thread plays the loop: a small thread-safe queue stands
 * in for the server's post queue (stub_post), and read_sync() runs what
 * was posted until the answer arrives, checking that the callback runs on
 * this thread. Crash tests fork a child that writes through the store and
 * reports each acknowledged append through a pipe; the parent SIGKILLs it
 * mid-traffic, then reopens the file and counts what came back.
 */
#include <check.h>

#include "check_run.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "event.h"
#include "history.h"

/* ---- the stand-in loop ---- */

struct posted {
  struct posted *next;
  wschat_post_cb fn;
  void *arg;
};

static uv_mutex_t post_lock;
static uv_cond_t post_cv;
static struct posted *post_head, *post_tail; /* owned items */
static uv_thread_t loop_thread;
static int post_fail; /* 1: refuse posts (as a closed queue does) */

static int stub_post(void *user, wschat_post_cb fn, void *arg) {
  (void)user;
  struct posted *p = malloc(sizeof(*p));
  ck_assert_ptr_nonnull(p);
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  uv_mutex_lock(&post_lock);
  if (post_fail) {
    uv_mutex_unlock(&post_lock);
    free(p);
    return -1;
  }
  if (post_tail)
    post_tail->next = p;
  else
    post_head = p;
  post_tail = p;
  uv_cond_signal(&post_cv);
  uv_mutex_unlock(&post_lock);
  return 0;
}

/* Runs posted functions until *flag is set or ms pass. */
static void run_posts(const int *flag, unsigned ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  while (!*flag) {
    uv_mutex_lock(&post_lock);
    while (post_head == NULL) {
      uint64_t now = uv_hrtime();
      if (now >= end) {
        uv_mutex_unlock(&post_lock);
        return;
      }
      (void)uv_cond_timedwait(&post_cv, &post_lock, end - now);
    }
    struct posted *p = post_head;
    post_head = p->next;
    if (post_head == NULL)
      post_tail = NULL;
    uv_mutex_unlock(&post_lock);
    p->fn(NULL, p->arg);
    free(p);
  }
}

/* ---- logs ---- */

static char log_buf[4096];
static int log_lines;

static void capture_log(void *user, const char *msg) {
  (void)user;
  uv_mutex_lock(&post_lock);
  size_t len = strlen(log_buf);
  snprintf(log_buf + len, sizeof(log_buf) - len, "%s\n", msg);
  log_lines++;
  uv_mutex_unlock(&post_lock);
}

/* ---- the folder of one test ---- */

static char dir[64];

/* Removes the test's folder and its files (it has no subfolders). */
static void rm_dir(void) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/wschat-history-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  ck_assert_int_eq(uv_mutex_init(&post_lock), 0);
  ck_assert_int_eq(uv_cond_init(&post_cv), 0);
  post_head = post_tail = NULL;
  post_fail = 0;
  log_buf[0] = '\0';
  log_lines = 0;
  loop_thread = uv_thread_self();
}

static void teardown(void) {
  while (post_head) {
    struct posted *p = post_head;
    post_head = p->next;
    wschat__history_page_free(p->arg);
    free(p);
  }
  uv_cond_destroy(&post_cv);
  uv_mutex_destroy(&post_lock);
  rm_dir();
}

static char *db_path(const char *name) {
  static char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return path;
}

static struct wschat__history_config config(const char *name) {
  struct wschat__history_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.path = db_path(name);
  cfg.post = stub_post;
  cfg.log = capture_log;
  return cfg;
}

static struct wschat__history *
open_cfg(const struct wschat__history_config *c) {
  struct wschat__history *h = NULL;
  int r = wschat__history_sqlite_open(c, &h);
  ck_assert_msg(r == 0, "open: %d; log: %s", r, log_buf);
  ck_assert_ptr_nonnull(h);
  return h;
}

static struct wschat__history *open_db(const char *name) {
  struct wschat__history_config cfg = config(name);
  return open_cfg(&cfg);
}

/* ---- events ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends an event with the next id; returns the id (*r: the result). */
static uint64_t add_full(struct wschat__history *h, int kind, const char *room,
                         const char *from, const char *to, const char *text,
                         size_t len, const char *reason, int *r) {
  struct wschat_event *ev =
      wschat__event_new(kind, room, from, to, text, len, reason);
  ck_assert_ptr_nonnull(ev);
  ev->id = h->ops->next_id(h);
  ev->ts = now_ms();
  *r = h->ops->append(h, ev);
  uint64_t id = ev->id;
  wschat__event_unref(ev);
  return id;
}

/* A line said in room; asserts it was accepted. */
static uint64_t say(struct wschat__history *h, const char *room,
                    const char *text) {
  int r;
  uint64_t id = add_full(h, WSCHAT_EVENT_MESSAGE, room, "alice", NULL, text,
                         strlen(text), NULL, &r);
  ck_assert_int_eq(r, 0);
  return id;
}

/* ---- reads ---- */

struct answer {
  int got;
  struct wschat__history_page *page;
};

static void on_page(struct wschat__history_page *page, void *user) {
  struct answer *a = user;
  uv_thread_t self = uv_thread_self();
  ck_assert_msg(uv_thread_equal(&self, &loop_thread),
                "a read callback ran off the loop thread");
  a->page = page;
  a->got = 1;
}

static struct wschat__history_page *read_sync(struct wschat__history *h,
                                              int kind, const char *room,
                                              uint64_t id, uint64_t epoch,
                                              size_t limit) {
  struct wschat__history_query q = {kind, room, id, epoch, limit};
  struct answer a = {0, NULL};
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), 0);
  run_posts(&a.got, 5000);
  ck_assert_msg(a.got, "no answer to a read within 5 s");
  ck_assert_int_eq(a.page->err, 0);
  ck_assert(a.page->n <= limit);
  for (size_t i = 1; i < a.page->n; i++)
    ck_assert(a.page->ev[i - 1]->id < a.page->ev[i]->id);
  return a.page;
}

static struct wschat__history_page *last_n(struct wschat__history *h,
                                           const char *room, size_t n) {
  return read_sync(h, WSCHAT__HISTORY_LAST, room, 0, 0, n);
}

/* ---- tests ---- */

START_TEST(test_append_read_back) {
  struct wschat__history *h = open_db("a.db");
  int r;
  uint64_t ids[5];
  static const char bin[] = {'a', '\0', 'b', '\n'};
  ids[0] =
      add_full(h, WSCHAT_EVENT_JOIN, "dev", "alice", NULL, NULL, 0, NULL, &r);
  ck_assert_int_eq(r, 0);
  ids[1] = add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, bin,
                    sizeof(bin), NULL, &r);
  ck_assert_int_eq(r, 0);
  ids[2] = add_full(h, WSCHAT_EVENT_ACTION, "dev", "alice", NULL, "waves", 5,
                    NULL, &r);
  ck_assert_int_eq(r, 0);
  ids[3] =
      add_full(h, WSCHAT_EVENT_NICK, "dev", "alice", "al", NULL, 0, NULL, &r);
  ck_assert_int_eq(r, 0);
  ids[4] = add_full(h, WSCHAT_EVENT_LEAVE, "dev", "al", NULL, NULL, 0,
                    "gone fishing", &r);
  ck_assert_int_eq(r, 0);
  for (int i = 1; i < 5; i++)
    ck_assert(ids[i] > ids[i - 1]);

  /* Any case finds the room. */
  struct wschat__history_page *p = last_n(h, "DEV", 10);
  ck_assert_uint_eq(p->n, 5);
  ck_assert_int_eq(p->complete, 1);
  ck_assert_int_eq(p->more, 0);
  ck_assert_uint_eq(p->epoch, h->ops->epoch(h));
  ck_assert_uint_ne(p->epoch, 0);
  static const int kinds[] = {WSCHAT_EVENT_JOIN, WSCHAT_EVENT_MESSAGE,
                              WSCHAT_EVENT_ACTION, WSCHAT_EVENT_NICK,
                              WSCHAT_EVENT_LEAVE};
  for (int i = 0; i < 5; i++) {
    ck_assert_uint_eq(p->ev[i]->id, ids[i]);
    ck_assert_int_eq(p->ev[i]->kind, kinds[i]);
    ck_assert_str_eq(p->ev[i]->room, "dev");
    ck_assert(p->ev[i]->ts > 0 && p->ev[i]->ts <= now_ms());
  }
  ck_assert_uint_eq(p->ev[1]->text_len, sizeof(bin));
  ck_assert_mem_eq(p->ev[1]->text, bin, sizeof(bin));
  ck_assert_str_eq(p->ev[2]->text, "waves");
  ck_assert_str_eq(p->ev[3]->from, "alice");
  ck_assert_str_eq(p->ev[3]->to, "al");
  ck_assert_ptr_null(p->ev[2]->to);
  ck_assert_str_eq(p->ev[4]->reason, "gone fishing");
  ck_assert_ptr_null(p->ev[1]->reason);
  ck_assert_str_eq(p->ev[0]->text, "");
  wschat__history_page_free(p);

  p = last_n(h, "elsewhere", 10);
  ck_assert_uint_eq(p->n, 0);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);

  struct wschat__history_stats st;
  ck_assert_int_eq(h->ops->flush(h), 0);
  h->ops->stats(h, &st);
  ck_assert_uint_eq(st.appended, 5);
  ck_assert_uint_eq(st.written, 5);
  ck_assert_uint_eq(st.dropped, 0);
  ck_assert_uint_eq(st.write_errors, 0);
  ck_assert_uint_ge(st.commits, 1);
  h->ops->close(h);

  /* And from the file. */
  h = open_db("a.db");
  p = last_n(h, "dev", 10);
  ck_assert_uint_eq(p->n, 5);
  ck_assert_mem_eq(p->ev[1]->text, bin, sizeof(bin));
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_refused) {
  struct wschat__history *h = open_db("a.db");
  int r;
  add_full(h, WSCHAT_EVENT_WHISPER, NULL, "alice", "bob", "psst", 4, NULL, &r);
  ck_assert_int_eq(r, WSCHAT_EINVAL);
  add_full(h, WSCHAT_EVENT_WHISPER, "dev", "alice", "bob", "psst", 4, NULL, &r);
  ck_assert_int_eq(r, WSCHAT_EINVAL);
  add_full(h, WSCHAT_EVENT_NOTICE, "dev", NULL, NULL, "hi", 2, NULL, &r);
  ck_assert_int_eq(r, WSCHAT_EINVAL);
  add_full(h, WSCHAT_EVENT_MESSAGE, NULL, "alice", NULL, "x", 1, NULL, &r);
  ck_assert_int_eq(r, WSCHAT_EINVAL);

  /* Ids must grow. */
  uint64_t id = say(h, "dev", "one");
  struct wschat_event *ev = wschat__event_new(WSCHAT_EVENT_MESSAGE, "dev",
                                              "alice", NULL, "again", 5, NULL);
  ev->id = id;
  ck_assert_int_eq(h->ops->append(h, ev), WSCHAT_EINVAL);
  ev->id = 0;
  ck_assert_int_eq(h->ops->append(h, ev), WSCHAT_EINVAL);
  wschat__event_unref(ev);

  /* Bad reads. */
  struct wschat__history_query q = {WSCHAT__HISTORY_LAST, "dev", 0, 0, 0};
  struct answer a = {0, NULL};
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), WSCHAT_EINVAL);
  q.limit = WSCHAT__HISTORY_READ_MAX + 1;
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), WSCHAT_EINVAL);
  q.limit = 1;
  q.kind = 99;
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), WSCHAT_EINVAL);
  q.kind = WSCHAT__HISTORY_LAST;
  q.room = NULL;
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), WSCHAT_EINVAL);

  struct wschat__history_page *p = last_n(h, "dev", 10);
  ck_assert_uint_eq(p->n, 1);
  ck_assert_str_eq(p->ev[0]->text, "one");
  wschat__history_page_free(p);
  h->ops->close(h);

  struct wschat__history_config cfg = config("b.db");
  cfg.post = NULL;
  struct wschat__history *h2 = (void *)1;
  ck_assert_int_eq(wschat__history_sqlite_open(&cfg, &h2), WSCHAT_EINVAL);
  ck_assert_ptr_null(h2);
}
END_TEST

START_TEST(test_epoch) {
  struct wschat__history *h = open_db("a.db");
  uint64_t e1 = h->ops->epoch(h);
  ck_assert_uint_ne(e1, 0);
  h->ops->close(h);
  h = open_db("a.db");
  ck_assert_uint_eq(h->ops->epoch(h), e1);
  h->ops->close(h);
  h = open_db("b.db");
  ck_assert_uint_ne(h->ops->epoch(h), e1);
  ck_assert_uint_ne(h->ops->epoch(h), 0);
  h->ops->close(h);
}
END_TEST

/* Ids across a clean reopen: continue after the last one handed out (also
 * ids that were never stored), no block is skipped. */
START_TEST(test_ids_reopen) {
  struct wschat__history_config cfg = config("a.db");
  cfg.id_block = 16;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t last = 0;
  for (int i = 0; i < 100; i++) { /* several blocks */
    uint64_t id = i % 3 ? h->ops->next_id(h) : say(h, "dev", "x");
    ck_assert(id > last);
    last = id;
  }
  ck_assert_int_eq(h->ops->flush(h), 0);
  h->ops->close(h);
  h = open_cfg(&cfg);
  uint64_t id = h->ops->next_id(h);
  ck_assert_uint_eq(id, last + 1);
  h->ops->close(h);
}
END_TEST

/* A child takes ids (the reservation runs ahead of them: a flush after
 * each waits for it) and dies by SIGKILL without closing. */
START_TEST(test_ids_crash) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ne(pid, -1);
  if (pid == 0) {
    close(fds[0]);
    struct wschat__history_config cfg = config("a.db");
    cfg.id_block = 16;
    struct wschat__history *h = NULL;
    if (wschat__history_sqlite_open(&cfg, &h) != 0)
      _exit(1);
    uint64_t last = 0;
    for (int i = 0; i < 100; i++) {
      last = i % 4 ? h->ops->next_id(h) : say(h, "dev", "x");
      if (h->ops->flush(h) != 0)
        _exit(1);
    }
    struct wschat__history_stats st;
    h->ops->stats(h, &st);
    uint64_t report[2] = {last, st.ids_unreserved};
    if (write(fds[1], report, sizeof(report)) != sizeof(report))
      _exit(1);
    kill(getpid(), SIGKILL);
    _exit(1);
  }
  close(fds[1]);
  uint64_t report[2] = {0, 0};
  ck_assert_int_eq(read(fds[0], report, sizeof(report)), sizeof(report));
  close(fds[0]);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ck_assert_uint_eq(report[1], 0); /* every id was reserved in time */
  ck_assert_uint_ge(report[0], 100);

  struct wschat__history *h = open_db("a.db");
  uint64_t first = h->ops->next_id(h);
  ck_assert_msg(first > report[0], "id %llu reused (last before: %llu)",
                (unsigned long long)first, (unsigned long long)report[0]);
  /* An unclean end skips a whole block above the ceiling, which was at
   * least last + 8 (a refill is asked for when fewer than 8 are left). */
  ck_assert_uint_ge(first, report[0] + 8 + 16 + 1);
  struct wschat__history_page *p = last_n(h, "dev", 100);
  ck_assert_uint_eq(p->n, 25);
  /* The ids after the last stored row may have reached clients and died
   * with the child: a read that covers them is not complete. */
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_last_n) {
  struct wschat__history *h = open_db("a.db");
  uint64_t a[30], b[5];
  char text[16];
  for (int i = 0, j = 0; i < 30; i++) {
    snprintf(text, sizeof(text), "a%d", i);
    a[i] = say(h, "a", text);
    if (i % 6 == 0)
      b[j++] = say(h, "b", "b");
  }
  struct wschat__history_page *p = last_n(h, "a", 10);
  ck_assert_uint_eq(p->n, 10);
  ck_assert_int_eq(p->more, 1);
  ck_assert_int_eq(p->complete, 1);
  for (int i = 0; i < 10; i++)
    ck_assert_uint_eq(p->ev[i]->id, a[20 + i]);
  ck_assert_str_eq(p->ev[9]->text, "a29");
  wschat__history_page_free(p);
  p = last_n(h, "b", 100);
  ck_assert_uint_eq(p->n, 5);
  ck_assert_int_eq(p->more, 0);
  ck_assert_int_eq(p->complete, 1);
  for (int i = 0; i < 5; i++)
    ck_assert_uint_eq(p->ev[i]->id, b[i]);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_before_paging) {
  struct wschat__history *h = open_db("a.db");
  uint64_t ids[25];
  for (int i = 0; i < 25; i++) {
    ids[i] = say(h, "dev", "x");
    say(h, "other", "y");
  }
  ck_assert_int_eq(h->ops->flush(h), 0);
  uint64_t before = UINT64_MAX;
  size_t got = 25;
  static const size_t sizes[] = {10, 10, 5};
  for (int page = 0; page < 3; page++) {
    struct wschat__history_page *p =
        read_sync(h, WSCHAT__HISTORY_BEFORE, "dev", before, 0, 10);
    ck_assert_uint_eq(p->n, sizes[page]);
    ck_assert_int_eq(p->more, page < 2);
    ck_assert_int_eq(p->complete, 1);
    for (size_t i = 0; i < p->n; i++)
      ck_assert_uint_eq(p->ev[i]->id, ids[got - p->n + i]);
    got -= p->n;
    before = p->ev[0]->id;
    wschat__history_page_free(p);
  }
  ck_assert_uint_eq(got, 0);
  struct wschat__history_page *p =
      read_sync(h, WSCHAT__HISTORY_BEFORE, "dev", ids[0], 0, 10);
  ck_assert_uint_eq(p->n, 0);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

/* A page stops short of WSCHAT__HISTORY_PAGE_BYTES whatever its limit:
 * more is set, and a LAST page that is short says it is incomplete. */
START_TEST(test_page_bytes) {
  struct wschat__history *h = open_db("b.db");
  uint64_t epoch = h->ops->epoch(h);
  size_t big = 60 * 1024, n = 3 * WSCHAT__HISTORY_PAGE_BYTES / big;
  char *text = malloc(big);
  ck_assert_ptr_nonnull(text);
  memset(text, 'x', big);
  uint64_t first = 0;
  for (size_t i = 0; i < n; i++) {
    int r;
    uint64_t id = add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL,
                           text, big, NULL, &r);
    ck_assert_int_eq(r, 0);
    if (i == 0)
      first = id;
  }
  free(text);
  struct wschat__history_page *p = last_n(h, "dev", n);
  ck_assert_uint_gt(p->n, 0);
  ck_assert_uint_lt(p->n, n);
  ck_assert_uint_le(p->n * big, WSCHAT__HISTORY_PAGE_BYTES);
  ck_assert_int_eq(p->more, 1);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", first - 1, epoch, n);
  ck_assert_uint_gt(p->n, 0);
  ck_assert_uint_lt(p->n, n);
  ck_assert_uint_eq(p->ev[0]->id, first);
  ck_assert_int_eq(p->more, 1);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_after) {
  struct wschat__history_config cfg = config("a.db");
  cfg.max_per_room = 10;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t epoch = h->ops->epoch(h);
  uint64_t ids[8];
  for (int i = 0; i < 8; i++)
    ids[i] = say(h, "dev", "x");

  struct wschat__history_page *p =
      read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[2], epoch, 100);
  ck_assert_uint_eq(p->n, 5);
  ck_assert_uint_eq(p->ev[0]->id, ids[3]);
  ck_assert_int_eq(p->complete, 1);
  ck_assert_int_eq(p->more, 0);
  wschat__history_page_free(p);

  /* Paged: the oldest first, more set. */
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[2], epoch, 2);
  ck_assert_uint_eq(p->n, 2);
  ck_assert_uint_eq(p->ev[0]->id, ids[3]);
  ck_assert_uint_eq(p->ev[1]->id, ids[4]);
  ck_assert_int_eq(p->more, 1);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);

  /* Nothing new. */
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[7], epoch, 100);
  ck_assert_uint_eq(p->n, 0);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);

  /* Another epoch: the newest rows, and complete = 0. */
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[2], epoch ^ 1, 3);
  ck_assert_uint_eq(p->n, 3);
  ck_assert_uint_eq(p->ev[2]->id, ids[7]);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);

  /* Prune (10 kept), then ask after an id whose successors are gone. */
  uint64_t more[10];
  for (int i = 0; i < 10; i++)
    more[i] = say(h, "dev", "y");
  ck_assert_int_eq(h->ops->flush(h), 0);
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[2], epoch, 100);
  ck_assert_uint_eq(p->n, 10);
  ck_assert_uint_eq(p->ev[0]->id, more[0]);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  /* After the newest pruned row: all there. */
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", ids[7], epoch, 100);
  ck_assert_uint_eq(p->n, 10);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_retention) {
  struct wschat__history_config cfg = config("a.db");
  cfg.max_per_room = 10;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t a[25];
  for (int i = 0; i < 25; i++) {
    a[i] = say(h, "a", "x");
    if (i < 3)
      say(h, "b", "y");
  }
  ck_assert_int_eq(h->ops->flush(h), 0);
  struct wschat__history_page *p = last_n(h, "a", 100);
  ck_assert_uint_eq(p->n, 10);
  ck_assert_uint_eq(p->ev[0]->id, a[15]);
  ck_assert_int_eq(p->complete, 0); /* 100 asked for, 15 pruned */
  ck_assert_int_eq(p->more, 0);
  wschat__history_page_free(p);
  p = last_n(h, "a", 10);
  ck_assert_int_eq(p->complete, 1); /* the last 10 are all there */
  wschat__history_page_free(p);
  p = last_n(h, "b", 100);
  ck_assert_uint_eq(p->n, 3);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  ck_assert_uint_eq(st.pruned, 15);
  h->ops->close(h);

  /* The counts come back from the file. */
  h = open_cfg(&cfg);
  for (int i = 0; i < 5; i++)
    say(h, "A", "z");
  ck_assert_int_eq(h->ops->flush(h), 0);
  p = last_n(h, "a", 100);
  ck_assert_uint_eq(p->n, 10);
  ck_assert_uint_eq(p->ev[0]->id, a[20]);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

/* A read sees every append before it, committed or not; a clean close
 * writes everything. */
START_TEST(test_read_sees_queue_close_flushes) {
  struct wschat__history_config cfg = config("a.db");
  cfg.flush_ms = 60000;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t id = 0;
  for (int i = 0; i < 50; i++)
    id = say(h, "dev", "x");
  struct wschat__history_page *p = last_n(h, "dev", 1);
  ck_assert_uint_eq(p->n, 1);
  ck_assert_uint_eq(p->ev[0]->id, id);
  wschat__history_page_free(p);
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  ck_assert_uint_eq(st.written, 0); /* the batch is still open */
  h->ops->close(h);
  h = open_cfg(&cfg);
  p = last_n(h, "dev", 100);
  ck_assert_uint_eq(p->n, 50);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  ck_assert_uint_eq(h->ops->next_id(h), id + 1);
  h->ops->close(h);
}
END_TEST

/* A read whose answer cannot be posted is freed and counted. */
START_TEST(test_post_fails) {
  struct wschat__history *h = open_db("a.db");
  say(h, "dev", "x");
  post_fail = 1;
  struct wschat__history_query q = {WSCHAT__HISTORY_LAST, "dev", 0, 0, 5};
  struct answer a = {0, NULL};
  ck_assert_int_eq(h->ops->read(h, &q, on_page, &a), 0);
  ck_assert_int_eq(h->ops->flush(h), 0); /* the read ran before it */
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  ck_assert_uint_eq(st.reads_undelivered, 1);
  ck_assert_int_eq(a.got, 0);
  h->ops->close(h);
}
END_TEST

START_TEST(test_queue_full) {
  struct wschat__history_config cfg = config("a.db");
  cfg.queue_bytes = 1024;
  cfg.max_per_room = SIZE_MAX;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t epoch = h->ops->epoch(h);
  uint64_t before = say(h, "dev", "x");
  char big[2048];
  memset(big, 'b', sizeof(big));
  int r;
  uint64_t dropped = add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL,
                              big, sizeof(big), NULL, &r);
  ck_assert_int_eq(r, WSCHAT_ETOOBIG);
  uint64_t after = say(h, "dev", "y");
  struct wschat__history_page *p =
      read_sync(h, WSCHAT__HISTORY_AFTER, "dev", before, epoch, 100);
  ck_assert_uint_eq(p->n, 1);
  ck_assert_uint_eq(p->ev[0]->id, after);
  ck_assert_int_eq(p->complete, 0); /* `dropped` is missing */
  wschat__history_page_free(p);
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", dropped, epoch, 100);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);

  /* A flood into a small queue: every append is either queued and then
   * written, or dropped and counted. */
  int n = 8000, ok = 0, full = 0;
  for (int i = 0; i < n; i++) {
    add_full(h, WSCHAT_EVENT_MESSAGE, "flood", "alice", NULL, "0123456789", 10,
             NULL, &r);
    ck_assert(r == 0 || r == WSCHAT_ETOOMANY);
    ok += r == 0;
    full += r == WSCHAT_ETOOMANY;
  }
  ck_assert_int_eq(h->ops->flush(h), 0);
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  ck_assert_uint_eq(st.dropped, (uint64_t)full + 1);
  ck_assert_uint_eq(st.appended, (uint64_t)ok + 2);
  ck_assert_uint_eq(st.written, st.appended);
  ck_assert_uint_le(st.queue_peak, 1024);
  if (full) { /* a read from the start of the flood says what it lost */
    p = read_sync(h, WSCHAT__HISTORY_AFTER, "flood", after, epoch, 10000);
    ck_assert_uint_eq(p->n, (size_t)ok);
    ck_assert_int_eq(p->complete, 0);
    wschat__history_page_free(p);
  }
  h->ops->close(h);
}
END_TEST

/* Regression: a read of the newest `limit` rows that found that many
 * checked for missing ids only above the newest row it returned (the
 * first, in the descending scan), so a row dropped between the rows it
 * returned went unreported: complete = 1 with a hole in the page. */
START_TEST(test_gap_inside_a_full_page) {
  struct wschat__history_config cfg = config("a.db");
  cfg.queue_bytes = 1024;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t first = say(h, "dev", "a");
  char big[2048];
  memset(big, 'b', sizeof(big));
  int r;
  uint64_t dropped = add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL,
                              big, sizeof(big), NULL, &r);
  ck_assert_int_eq(r, WSCHAT_ETOOBIG);
  uint64_t last = say(h, "dev", "y");
  ck_assert_uint_lt(first, dropped);
  ck_assert_uint_lt(dropped, last);
  struct wschat__history_page *p = last_n(h, "dev", 2);
  ck_assert_uint_eq(p->n, 2);
  ck_assert_uint_eq(p->ev[0]->id, first);
  ck_assert_uint_eq(p->ev[1]->id, last);
  ck_assert_int_eq(p->complete, 0); /* `dropped` lies between them */
  wschat__history_page_free(p);
  p = read_sync(h, WSCHAT__HISTORY_BEFORE, "dev", last + 1, 0, 2);
  ck_assert_uint_eq(p->n, 2);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  p = last_n(h, "dev", 1); /* only `last`: nothing missing in its range */
  ck_assert_uint_eq(p->n, 1);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

START_TEST(test_unwritable) {
  /* A folder where the file should be; a folder that does not exist. */
  struct wschat__history_config cfg = config("");
  struct wschat__history *h = (void *)1;
  ck_assert_int_eq(wschat__history_sqlite_open(&cfg, &h), WSCHAT_EIO);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(log_buf, dir) != NULL, "log: %s", log_buf);
  log_buf[0] = '\0';
  cfg = config("no/such/folder.db");
  ck_assert_int_eq(wschat__history_sqlite_open(&cfg, &h), WSCHAT_EIO);
  ck_assert_msg(strstr(log_buf, "no/such/folder.db") != NULL, "log: %s",
                log_buf);

  /* A read-only file (root writes anyway: then this part says nothing). */
  h = open_db("ro.db");
  say(h, "dev", "x");
  h->ops->close(h);
  ck_assert_int_eq(chmod(db_path("ro.db"), 0444), 0);
  ck_assert_int_eq(chmod(dir, 0555), 0);
  if (geteuid() != 0) {
    log_buf[0] = '\0';
    cfg = config("ro.db");
    ck_assert_int_eq(wschat__history_sqlite_open(&cfg, &h), WSCHAT_EIO);
    ck_assert_msg(strstr(log_buf, "ro.db") != NULL, "log: %s", log_buf);
  }
  ck_assert_int_eq(chmod(dir, 0700), 0);
}
END_TEST

/* The disk fills up (a size cap does the same): writes fail, are counted
 * and logged once; reads still answer and do not claim completeness; the
 * store closes without a crash. */
START_TEST(test_disk_full) {
  struct wschat__history_config cfg = config("a.db");
  cfg.max_bytes = 256 * 1024;
  cfg.flush_ms = 10;
  struct wschat__history *h = open_cfg(&cfg);
  uint64_t epoch = h->ops->epoch(h);
  uint64_t first = say(h, "dev", "first");
  ck_assert_int_eq(h->ops->flush(h), 0);
  char text[4000];
  memset(text, 't', sizeof(text));
  int r, failed = 0;
  for (int i = 0; i < 400 && !failed; i++) {
    for (int j = 0; j < 10; j++) {
      add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, text,
               sizeof(text), NULL, &r);
      ck_assert_int_eq(r, 0);
    }
    failed = h->ops->flush(h) != 0;
  }
  ck_assert_msg(failed, "256 KiB took 16 MB");
  struct wschat__history_stats st;
  h->ops->stats(h, &st);
  ck_assert_uint_ge(st.write_errors, 1);
  ck_assert_uint_ge(st.rows_lost, 1);
  ck_assert_int_ne(st.last_error, 0);
  ck_assert_uint_eq(st.written + st.rows_lost, st.appended);
  ck_assert_msg(strstr(log_buf, "write failed") != NULL, "log: %s", log_buf);

  /* More of the same: counted, not logged again within 10 s (a single
   * row may still fit here and there). */
  int lines = log_lines;
  uint64_t errors = st.write_errors;
  for (int i = 0; i < 20; i++) {
    for (int j = 0; j < 10; j++) {
      add_full(h, WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, text,
               sizeof(text), NULL, &r);
      ck_assert_int_eq(r, 0);
    }
    (void)h->ops->flush(h);
  }
  h->ops->stats(h, &st);
  ck_assert_uint_ge(st.write_errors, errors + 10);
  ck_assert_int_eq(log_lines, lines);

  struct wschat__history_page *p =
      read_sync(h, WSCHAT__HISTORY_AFTER, "dev", first, epoch, 10000);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  h->ops->close(h);

  /* Reopened without the cap: what was lost is still known as lost. */
  cfg.max_bytes = 0;
  h = open_cfg(&cfg);
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", first, epoch, 10000);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  uint64_t later = say(h, "dev", "later");
  p = read_sync(h, WSCHAT__HISTORY_AFTER, "dev", later - 1, epoch, 10000);
  ck_assert_uint_eq(p->n, 1);
  ck_assert_int_eq(p->complete, 1);
  wschat__history_page_free(p);
  h->ops->close(h);
}
END_TEST

/* ---- crash tests: a child appends and is SIGKILLed mid-traffic ---- */

struct ack {
  uint64_t id;
  uint64_t ns; /* uv_hrtime() when append returned (the clock is shared
                  by every process) */
};

/* The child: appends to "crash.db" until killed (or 10 s), writing one
 * ack per accepted append. */
static void child_appends(int fd, int sync_full) {
  struct wschat__history_config cfg = config("crash.db");
  cfg.sync_full = sync_full;
  cfg.log = NULL;
  struct wschat__history *h = NULL;
  if (wschat__history_sqlite_open(&cfg, &h) != 0)
    _exit(1);
  uint64_t end = uv_hrtime() + 10 * (uint64_t)1000000000;
  for (unsigned i = 0; uv_hrtime() < end; i++) {
    struct wschat_event *ev = wschat__event_new(
        WSCHAT_EVENT_MESSAGE, i % 2 ? "a" : "b", "alice", NULL,
        "some text of a typical length for a chat line", 46, NULL);
    if (ev == NULL)
      _exit(1);
    ev->id = h->ops->next_id(h);
    ev->ts = now_ms();
    int r = h->ops->append(h, ev);
    struct ack ack = {ev->id, uv_hrtime()};
    wschat__event_unref(ev);
    if (r == 0 && write(fd, &ack, sizeof(ack)) != sizeof(ack))
      _exit(1);
    if (i % 64 == 0) { /* traffic, not a flood: about 20,000 a second */
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  _exit(2);
}

/* Runs the child for run_ms, kills it, returns the acks (owned by the
 * caller) and the time of the kill. */
static struct ack *crash_run(int sync_full, unsigned run_ms, size_t *nacks,
                             uint64_t *kill_ns) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ne(pid, -1);
  if (pid == 0) {
    close(fds[0]);
    child_appends(fds[1], sync_full);
  }
  close(fds[1]);
  size_t cap = 1 << 16, n = 0;
  struct ack *acks = malloc(cap * sizeof(*acks));
  ck_assert_ptr_nonnull(acks);
  ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  uint64_t start = uv_hrtime(), kill_at = 0;
  for (;;) {
    if (!kill_at && uv_hrtime() - start >= (uint64_t)run_ms * 1000000u) {
      kill_at = uv_hrtime();
      ck_assert_int_eq(kill(pid, SIGKILL), 0);
    }
    if (n == cap) {
      cap *= 2;
      acks = realloc(acks, cap * sizeof(*acks));
      ck_assert_ptr_nonnull(acks);
    }
    ssize_t got = read(fds[0], (char *)(acks + n), sizeof(*acks));
    if (got == 0)
      break; /* the child is dead and the pipe is drained */
    if (got < 0) {
      ck_assert_int_eq(errno, EAGAIN);
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      continue;
    }
    ck_assert_int_eq(got, sizeof(*acks)); /* writes under PIPE_BUF */
    n++;
  }
  close(fds[0]);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                "the child ended by itself (status %d)", status);
  *nacks = n;
  *kill_ns = kill_at;
  return acks;
}

/* Every row of the file, oldest first: an owned array of ids. */
static uint64_t *stored_ids(struct wschat__history *h, const char *room,
                            size_t *n) {
  size_t cap = 1024, got = 0;
  uint64_t *ids = malloc(cap * sizeof(*ids)), after = 0;
  ck_assert_ptr_nonnull(ids);
  for (;;) {
    struct wschat__history_page *p =
        read_sync(h, WSCHAT__HISTORY_AFTER, room, after, h->ops->epoch(h),
                  WSCHAT__HISTORY_READ_MAX);
    for (size_t i = 0; i < p->n; i++) {
      if (got == cap) {
        cap *= 2;
        ids = realloc(ids, cap * sizeof(*ids));
        ck_assert_ptr_nonnull(ids);
      }
      ck_assert(got == 0 || ids[got - 1] < p->ev[i]->id);
      ids[got++] = p->ev[i]->id;
    }
    int more = p->more;
    if (p->n)
      after = p->ev[p->n - 1]->id;
    wschat__history_page_free(p);
    if (!more)
      break;
  }
  *n = got;
  return ids;
}

static int has_id(const uint64_t *ids, size_t n, uint64_t id) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ids[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && ids[lo] == id;
}

/* Checks the file after a crash: every ack older than the bound (ns
 * before the kill) is stored, ids were strictly increasing, and new ids
 * are above every acked one. Returns how many acks were within the bound
 * and lost (allowed); *oldest_ns: the age at the kill of the oldest. */
static size_t crash_check(const struct ack *acks, size_t n, size_t min_n,
                          uint64_t kill_ns, uint64_t bound_ns,
                          uint64_t *oldest_ns) {
  ck_assert_uint_ge(n, min_n); /* it was mid-traffic */
  struct wschat__history_config cfg = config("crash.db");
  cfg.max_per_room = SIZE_MAX;
  struct wschat__history *h = open_cfg(&cfg);
  size_t na, nb;
  uint64_t *a = stored_ids(h, "a", &na), *b = stored_ids(h, "b", &nb);
  ck_assert_uint_le(na + nb, n + 1); /* the last may be stored, unacked */
  size_t lost_recent = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert(i == 0 || acks[i - 1].id < acks[i].id);
    int stored = has_id(a, na, acks[i].id) || has_id(b, nb, acks[i].id);
    if (stored)
      continue;
    ck_assert_msg(acks[i].ns + bound_ns > kill_ns,
                  "id %llu acknowledged %.1f ms before the kill is lost",
                  (unsigned long long)acks[i].id,
                  (double)(kill_ns - acks[i].ns) / 1e6);
    if (lost_recent++ == 0)
      *oldest_ns = kill_ns > acks[i].ns ? kill_ns - acks[i].ns : 0;
  }
  uint64_t next = h->ops->next_id(h);
  ck_assert_msg(next > acks[n - 1].id, "id %llu reused",
                (unsigned long long)next);
  /* After a crash the store does not claim complete what follows the last
   * stored row: it may have reached clients and died. */
  ck_assert_uint_gt(na, 0);
  struct wschat__history_page *p =
      read_sync(h, WSCHAT__HISTORY_AFTER, "a", a[na - 1], h->ops->epoch(h), 10);
  ck_assert_uint_eq(p->n, 0);
  ck_assert_int_eq(p->complete, 0);
  wschat__history_page_free(p);
  free(a);
  free(b);
  h->ops->close(h);
  return lost_recent;
}

START_TEST(test_crash_default_flush) {
  size_t n;
  uint64_t kill_ns;
  struct ack *acks = crash_run(0, 700, &n, &kill_ns);
  /* The stated bound: flush_ms after the append, plus the time one commit
   * of about 100 ms of rows takes (here 5-50 ms). The slack is wider than
   * that: in the ASan build on 2 CPUs shared with other builds, the
   * writer thread was seen to wait 280 ms for a CPU. A writer that commits
   * only every 500 ms or later still fails. */
  uint64_t bound = (uint64_t)(WSCHAT__HISTORY_FLUSH_MS + 400) * 1000000u;
  uint64_t oldest = 0;
  size_t lost = crash_check(acks, n, 1000, kill_ns, bound, &oldest);
  fprintf(stderr,
          "crash (flush %d ms): %zu acks, %zu lost, the oldest %.1f ms "
          "before the kill\n",
          WSCHAT__HISTORY_FLUSH_MS, n, lost, (double)oldest / 1e6);
  free(acks);
}
END_TEST

START_TEST(test_crash_sync_full) {
  size_t n;
  uint64_t kill_ns;
  struct ack *acks = crash_run(1, 700, &n, &kill_ns);
  uint64_t oldest = 0;
  size_t lost = crash_check(acks, n, 20, kill_ns, 0, &oldest); /* none */
  ck_assert_uint_eq(lost, 0);
  free(acks);
}
END_TEST

int main(void) {
  Suite *s = suite_create("history");
  TCase *tc = tcase_create("store");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_append_read_back);
  tcase_add_test(tc, test_refused);
  tcase_add_test(tc, test_epoch);
  tcase_add_test(tc, test_ids_reopen);
  tcase_add_test(tc, test_ids_crash);
  tcase_add_test(tc, test_last_n);
  tcase_add_test(tc, test_before_paging);
  tcase_add_test(tc, test_after);
  tcase_add_test(tc, test_page_bytes);
  tcase_add_test(tc, test_retention);
  tcase_add_test(tc, test_read_sees_queue_close_flushes);
  tcase_add_test(tc, test_post_fails);
  tcase_add_test(tc, test_queue_full);
  tcase_add_test(tc, test_gap_inside_a_full_page);
  tcase_add_test(tc, test_unwritable);
  tcase_add_test(tc, test_disk_full);
  tcase_add_test(tc, test_crash_default_flush);
  tcase_add_test(tc, test_crash_sync_full);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
