/*
 * server: see server.h.
 *
 * One loop turn: timers (the sweep) -> prepare (flush what timers queued)
 * -> poll (reads: handshakes, messages, fan-out into queues) -> check
 * (flush every dirty client once: one writev each) -> close callbacks.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "deflate.h"
#include "frame.h"
#include "http.h"
#include "session.h"
#include "utf8.h"

/* ---- connections ---- */

static int server_add(struct wschat_server *srv, struct wschat_client *c) {
  if (srv->nconns == srv->conns_cap) {
    size_t cap = srv->conns_cap ? srv->conns_cap * 2 : 64;
    struct wschat_client **d = malloc(cap * sizeof(*d));
    if (d == NULL)
      return -1;
    void *v = realloc(srv->conns, cap * sizeof(*srv->conns));
    if (v == NULL) {
      free(d);
      return -1;
    }
    /* The ring, unrolled into the new array in order (it can only hold
     * entries once it has slots). */
    for (size_t i = 0; srv->conns_cap > 0 && i < srv->ndirty; i++)
      d[i] = srv->dirty[(srv->dirty_head + i) % srv->conns_cap];
    free(srv->dirty);
    srv->dirty = d;
    srv->dirty_head = 0;
    srv->conns = v;
    srv->conns_cap = cap;
  }
  c->idx = (uint32_t)srv->nconns;
  srv->conns[srv->nconns++] = c;
  return 0;
}

static void server_remove(struct wschat_server *srv, struct wschat_client *c) {
  if (c->idx >= srv->nconns || srv->conns[c->idx] != c)
    return;
  struct wschat_client *last = srv->conns[--srv->nconns];
  srv->conns[c->idx] = last;
  last->idx = c->idx;
}

struct wschat_client *wschat__server_client(struct wschat_server *srv,
                                            uint64_t id) {
  /* Linear: ids are kept by applications for rare lookups (a deferred
   * decision, a message from another thread), not per delivery. */
  for (size_t i = 0; i < srv->nconns; i++) {
    struct wschat_client *c = srv->conns[i];
    if (c->member.id == id && c->conn.notify_end && !c->conn.ended)
      return c;
  }
  return NULL;
}

static void mark_dirty(struct wschat__conn *conn) {
  struct wschat_client *c = wschat__client_of(conn);
  struct wschat_server *srv = c->srv;
  if (conn->dirty)
    return;
  conn->dirty = 1; /* each client at most once: the ring is large enough */
  srv->dirty[(srv->dirty_head + srv->ndirty++) % srv->conns_cap] = c;
}

static void over_total(struct wschat__conn *conn) {
  wschat__server_shed(wschat__client_of(conn)->srv);
}


static void on_closed(struct wschat__conn *conn) {
  struct wschat_client *c = wschat__client_of(conn);
  struct wschat_server *srv = c->srv;
  wschat__server_unadmit(srv, c);
  if (conn->dirty)
    for (size_t i = 0; i < srv->ndirty; i++)
      if (srv->dirty[(srv->dirty_head + i) % srv->conns_cap] == c)
        srv->dirty[(srv->dirty_head + i) % srv->conns_cap] = NULL;
  server_remove(srv, c);
  wschat__conn_release(conn);
  wschat__session_free(c);
  free(c);
  if (srv->sess.shutting_down == 1 && srv->nconns == 0)
    wschat__server_close_handles(srv);
}

/* ---- the log of connections ---- */

/* The request's path and the peer's address, kept by the session as
 * "path\0query\0peer\0" ("" before the request). */
static void path_and_peer(const struct wschat_client *c, const char **path,
                          const char **peer) {
  *path = *peer = "";
  if (c->path == NULL)
    return;
  *path = c->path;
  const char *query = *path + strlen(*path) + 1;
  *peer = query + strlen(query) + 1;
}

static void on_open(struct wschat__conn *conn) {
  struct wschat_client *c = wschat__client_of(conn);
  const struct wschat__log *log = &c->srv->log;
  if (!wschat__log_on(log, WSCHAT_LOG_DEBUG))
    return;
  const char *path, *peer;
  path_and_peer(c, &path, &peer);
  struct wschat_log_field f[] = {
      {"id", NULL, (int64_t)c->member.id},
      {"peer", peer, 0},
      {"path", path, 0},
  };
  wschat__log_event(log, WSCHAT_LOG_DEBUG, "connect", f, 3);
}

/* A WebSocket's end: a line at debug, or at warn for a close that says
 * the client (or the server's memory) failed. Then the session's end. */
static void on_end(struct wschat__conn *conn, int code) {
  struct wschat_client *c = wschat__client_of(conn);
  const struct wschat__log *log = &c->srv->log;
  int level = code == 1002 || code == 1007 || code == 1008 || code == 1009 ||
                      code == 1011
                  ? WSCHAT_LOG_WARN
                  : WSCHAT_LOG_DEBUG;
  if (conn->upgraded && wschat__log_on(log, level)) {
    const char *path, *peer;
    path_and_peer(c, &path, &peer);
    struct wschat_log_field f[] = {
        {"id", NULL, (int64_t)c->member.id},
        {"peer", peer, 0},
        {"code", NULL, code},
        {"duration_ms", NULL,
         (int64_t)(uv_now(c->srv->loop) - conn->opened_ms)},
    };
    wschat__log_event(log, level, "disconnect", f, 4);
  }
  wschat__session_on_end(conn, code);
}

void wschat_server_set_log(struct wschat_server *srv, wschat_log_cb cb,
                           void *user, int level) {
  if (srv == NULL)
    return;
  srv->log.cb = cb;
  srv->log.user = user;
  srv->log.level = level;
}

static const struct wschat__conn_cbs conn_cbs = {
    wschat__session_on_request,
    wschat__session_on_message,
    on_end,
    on_closed,
    on_open,
    mark_dirty,
    over_total,
};

/* Flushes every client that has output: once per loop turn. New clients
 * may become dirty while we go (a close tells a room): they are flushed in
 * the same pass. */
static void flush_dirty(struct wschat_server *srv) {
  /* Cluster mode: what this turn asked of Redis is written first, so that
   * a client never hears of its own join or message before Redis does. */
  if (srv->cluster != NULL)
    wschat__server_cluster_flush(srv);
  if (srv->queued_total > srv->sess.conn.max_output_total)
    wschat__server_shed(srv); /* what was queued without a check (pongs, closes) */
  while (srv->ndirty > 0) {
    struct wschat_client *c = srv->dirty[srv->dirty_head];
    srv->dirty_head = (srv->dirty_head + 1) % srv->conns_cap;
    srv->ndirty--;
    if (c == NULL)
      continue;
    c->conn.dirty = 0;
    wschat__conn_flush(&c->conn);
  }
}

static void on_prepare(uv_prepare_t *h) { flush_dirty(h->data); }
static void on_check(uv_check_t *h) { flush_dirty(h->data); }

static void on_sweep(uv_timer_t *t) {
  struct wschat_server *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  for (size_t i = 0; i < srv->nconns; i++)
    wschat__conn_sweep(&srv->conns[i]->conn, now);
}

/* Loop lag: the lag timer is due every LAG_PERIOD_MS; how much later than
 * that it runs is the time the loop spent on something else (a long
 * callback, a burst of input) before it could get to the timer. */
#define LAG_PERIOD_MS 100

static void on_lag(uv_timer_t *t) {
  struct wschat_server *srv = t->data;
  struct wschat__metrics *m = &srv->metrics;
  uint64_t hr = uv_hrtime();
  if (m->lag_prev_hr != 0) {
    uint64_t due = m->lag_prev_hr + (uint64_t)LAG_PERIOD_MS * 1000000;
    m->lag_last_ns = hr > due ? hr - due : 0;
    if (m->lag_last_ns > m->lag_max_ns)
      m->lag_max_ns = m->lag_last_ns;
  }
  m->lag_prev_hr = hr;
}

static void on_connection(uv_stream_t *listener, int status) {
  struct wschat_server *srv = listener->data;
  if (status < 0)
    return;
  struct wschat_client *c = calloc(1, sizeof(*c));
  if (c == NULL || srv->sess.shutting_down || server_add(srv, c) != 0) {
    /* Take the connection off the listener anyway: libuv polls it again
     * only once it is accepted. */
    free(c);
    srv->metrics.accepted++;
    srv->metrics.refused[WSCHAT__REFUSED_OTHER]++;
    wschat__stream_tcp_refuse(srv->loop, listener, &srv->spare);
    return;
  }
  srv->metrics.accepted++;
  c->srv = srv;
  c->member.id = ++srv->next_id;
  c->member.client = c;
  int closing;
  if (wschat__conn_accept(&c->conn, &srv->sess.conn, listener, &closing) != 0) {
    if (!closing) {
      server_remove(srv, c);
      free(c);
      srv->metrics.refused[WSCHAT__REFUSED_OTHER]++;
      wschat__stream_tcp_refuse(srv->loop, listener, &srv->spare);
    }
    return; /* on_closed frees it */
  }
  wschat__server_admit(srv, c);
}

/* ---- cross-thread requests ---- */

int wschat_server_post(struct wschat_server *srv, wschat_post_cb fn,
                       void *arg) {
  if (srv == NULL || fn == NULL)
    return WSCHAT_EINVAL;
  return wschat__post(&srv->posts, fn, arg, 0);
}

struct broadcast {
  char *room; /* NULL: everyone */
  size_t len;
  char text[]; /* len bytes */
};

static void run_broadcast(struct wschat_server *srv, void *arg) {
  struct broadcast *b = arg;
  wschat_server_broadcast(srv, b->room, b->text, b->len, NULL);
  free(b->room);
  free(b);
}

int wschat_server_post_broadcast(struct wschat_server *srv, const char *room,
                                 const char *text, size_t len) {
  if (srv == NULL || (text == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (room && !wschat__room_valid(room, strlen(room)))
    return WSCHAT_EROOM;
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  struct broadcast *b = malloc(sizeof(*b) + len);
  if (b == NULL)
    return WSCHAT_ENOMEM;
  b->len = len;
  if (len)
    memcpy(b->text, text, len);
  b->room = room ? strdup(room) : NULL;
  if (room && b->room == NULL) {
    free(b);
    return WSCHAT_ENOMEM;
  }
  int r = wschat__post(&srv->posts, run_broadcast, b, 1);
  if (r != 0) {
    free(b->room);
    free(b);
  }
  return r;
}

static void run_shutdown(struct wschat_server *srv, void *arg) {
  (void)arg;
  wschat_server_shutdown(srv, NULL, NULL);
}

int wschat_server_post_shutdown(struct wschat_server *srv) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  return wschat__post(&srv->posts, run_shutdown, NULL, 1);
}

/* ---- create, configure, listen ---- */

int wschat_server_new(uv_loop_t *loop, struct wschat_server **out) {
  if (out == NULL)
    return WSCHAT_EINVAL;
  *out = NULL;
  struct wschat_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return WSCHAT_ENOMEM;
  if (loop == NULL) {
    if (uv_loop_init(&srv->own_loop) != 0) {
      free(srv);
      return WSCHAT_ENOMEM;
    }
    srv->owns_loop = 1;
    loop = &srv->own_loop;
  }
  srv->loop = loop;
  srv->sess.mode = WSCHAT_MODE_CHAT;
  srv->backlog = 1024;
  struct wschat__conn_env *env = &srv->sess.conn;
  env->loop = loop;
  env->cbs = &conn_cbs;
  env->max_message = 1 << 20;
  env->max_output = 1 << 20;
  env->max_header = 8192;
  env->queued_total = &srv->queued_total;
  env->metrics = &srv->metrics;
  env->log = &srv->log;
  env->max_output_total = (size_t)256 << 20;
  env->message_timeout_ms = 30000;
  srv->max_connections = 10000;
  srv->max_per_ip = 64;
  wschat__map_init(&srv->peers);
  env->handshake_timeout_ms = 10000;
  env->ping_interval_ms = 20000;
  env->ping_timeout_ms = 20000;
  env->close_timeout_ms = 3000;
  env->rbuf = srv->rbuf;
  env->rbuf_len = sizeof(srv->rbuf);
  env->iov_max = WSCHAT__IOV;
  env->gather = srv->wbuf;
  env->gather_len = sizeof(srv->wbuf);
  env->iov = malloc(WSCHAT__IOV * sizeof(uv_buf_t));
  env->ping_frame = wschat__frame_new(WSCHAT__OP_PING, NULL, 0);
  env->deflate = wschat__deflate_new(WSCHAT__DEFLATE_THRESHOLD);
  env->deflate_on = 1;
  int chat_ok = wschat__chat_init(&srv->chat, srv, wschat__session_deliver,
                                  srv) == 0;
  int post_ok = wschat__post_init(&srv->posts, srv) == 0;
  if (env->iov == NULL || env->ping_frame == NULL || env->deflate == NULL ||
      !chat_ok || !post_ok) {
    if (chat_ok)
      wschat__chat_free(&srv->chat);
    if (post_ok)
      wschat__post_free(&srv->posts);
    free(env->iov);
    wschat__frame_unref(env->ping_frame);
    wschat__deflate_free(env->deflate);
    if (srv->owns_loop)
      uv_loop_close(&srv->own_loop);
    free(srv);
    return WSCHAT_ENOMEM;
  }
  static const struct wschat__text_io text_io = {
      wschat__session_reply, wschat__session_quit, wschat__session_history};
  srv->text.chat = &srv->chat;
  srv->text.io = &text_io;
  srv->text.user = srv;
  srv->sess.chat = &srv->chat;
  srv->sess.text = &srv->text;
  srv->sess.routes = &srv->routes;
  srv->sess.replay = 50;
  wschat__session_env_init(&srv->sess);
  *out = srv;
  return 0;
}

int wschat_server_set_option(struct wschat_server *srv, enum wschat_option opt,
                             int64_t v) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  const int64_t day_ms = 86400000;
  struct wschat__conn_env *env = &srv->sess.conn;
  switch (opt) {
  case WSCHAT_OPT_MODE:
    if (v != WSCHAT_MODE_CHAT && v != WSCHAT_MODE_ECHO)
      return WSCHAT_EINVAL;
    if (srv->listening)
      return WSCHAT_ESTATE; /* open clients are in one mode or the other */
    srv->sess.mode = (int)v;
    return 0;
  case WSCHAT_OPT_MAX_MESSAGE:
    if (v < 1 || v > (int64_t)1 << 31)
      return WSCHAT_EINVAL;
    env->max_message = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_OUTPUT:
    if (v < 1024 || v > (int64_t)1 << 40)
      return WSCHAT_EINVAL;
    env->max_output = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_HEADER:
    if (v < 256 || v > 1 << 20)
      return WSCHAT_EINVAL;
    env->max_header = (size_t)v;
    return 0;
  case WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS:
  case WSCHAT_OPT_PING_INTERVAL_MS:
  case WSCHAT_OPT_PING_TIMEOUT_MS:
  case WSCHAT_OPT_CLOSE_TIMEOUT_MS:
    if (v < 1 || v > day_ms)
      return WSCHAT_EINVAL;
    if (opt == WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS)
      env->handshake_timeout_ms = (uint64_t)v;
    else if (opt == WSCHAT_OPT_PING_INTERVAL_MS)
      env->ping_interval_ms = (uint64_t)v;
    else if (opt == WSCHAT_OPT_PING_TIMEOUT_MS)
      env->ping_timeout_ms = (uint64_t)v;
    else
      env->close_timeout_ms = (uint64_t)v;
    return 0;
  case WSCHAT_OPT_BACKLOG:
    if (v < 1 || v > 65535)
      return WSCHAT_EINVAL;
    srv->backlog = (int)v;
    return 0;
  case WSCHAT_OPT_MAX_ROOMS:
    if (v < 1 || v > 1000)
      return WSCHAT_EINVAL;
    srv->chat.max_rooms = (size_t)v;
    return 0;
  case WSCHAT_OPT_QUIET_ROOM:
    if (v < 0 || v > (int64_t)1 << 40)
      return WSCHAT_EINVAL;
    srv->chat.quiet_room = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_CONNECTIONS:
  case WSCHAT_OPT_MAX_PER_IP:
    if (v < 0 || v > (int64_t)1 << 30)
      return WSCHAT_EINVAL;
    if (opt == WSCHAT_OPT_MAX_CONNECTIONS)
      srv->max_connections = (size_t)v;
    else
      srv->max_per_ip = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_OUTPUT_TOTAL:
    if (v != 0 && (v < 1024 || v > (int64_t)1 << 46))
      return WSCHAT_EINVAL;
    env->max_output_total = v ? (size_t)v : SIZE_MAX;
    return 0;
  case WSCHAT_OPT_MESSAGE_TIMEOUT_MS:
    if (v < 0 || v > day_ms)
      return WSCHAT_EINVAL;
    env->message_timeout_ms = (uint64_t)v;
    return 0;
  case WSCHAT_OPT_DEFLATE:
    if (v != 0 && v != 1)
      return WSCHAT_EINVAL;
    env->deflate_on = (int)v;
    return 0;
  case WSCHAT_OPT_DEFLATE_THRESHOLD:
    if (v < 0 || v > (int64_t)1 << 31)
      return WSCHAT_EINVAL;
    wschat__deflate_set_threshold(env->deflate, (size_t)v);
    return 0;
  case WSCHAT_OPT_HISTORY_REPLAY:
    if (v < 0 || v > 10000)
      return WSCHAT_EINVAL;
    srv->sess.replay = (unsigned)v;
    return 0;
  default: /* the chat's limits (line, rate): the session's */
    return wschat__session_set_option(&srv->sess, opt, v);
  }
}

static void on_failed_listener_closed(uv_handle_t *h) {
  ((struct wschat_server *)h->data)->listener_closing = 0;
}

/* The sweep runs often enough to honour the shortest deadline within about
 * a quarter of it, and at least once a second. */
static uint64_t sweep_period(const struct wschat_server *srv) {
  const struct wschat__conn_env *env = &srv->sess.conn;
  uint64_t p = env->ping_interval_ms;
  if (env->ping_timeout_ms < p)
    p = env->ping_timeout_ms;
  if (env->handshake_timeout_ms < p)
    p = env->handshake_timeout_ms;
  if (env->close_timeout_ms < p)
    p = env->close_timeout_ms;
  if (env->message_timeout_ms && env->message_timeout_ms < p)
    p = env->message_timeout_ms;
  p /= 4;
  return p < 20 ? 20 : p > 1000 ? 1000 : p;
}

int wschat_server_listen(struct wschat_server *srv, const char *host,
                         int port) {
  if (srv == NULL || port < 0 || port > 65535)
    return WSCHAT_EINVAL;
  if (srv->listening || srv->sess.shutting_down || srv->listener_closing)
    return WSCHAT_ESTATE;
  if (host == NULL)
    host = "127.0.0.1";
  struct sockaddr_storage addr;
  if (strchr(host, ':') != NULL) {
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
      return WSCHAT_EADDR;
  } else if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0) {
    return WSCHAT_EADDR;
  }
  if (uv_tcp_init(srv->loop, &srv->listener.tcp) != 0)
    return WSCHAT_EIO;
  srv->listener.tcp.data = srv;
  srv->handles_open = 1;
  int r = uv_tcp_bind(&srv->listener.tcp, (struct sockaddr *)&addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&srv->listener.tcp, srv->backlog,
                  on_connection);
  if (r != 0) {
    srv->handles_open = 0;
    srv->listener_closing = 1;
    uv_close(&srv->listener.handle, on_failed_listener_closed);
    if (srv->owns_loop)
      uv_run(srv->loop, UV_RUN_NOWAIT);
    return WSCHAT_EADDR;
  }
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&bound, &len);
  srv->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);

  uv_prepare_init(srv->loop, &srv->prepare);
  uv_check_init(srv->loop, &srv->check);
  uv_timer_init(srv->loop, &srv->sweep);
  uv_timer_init(srv->loop, &srv->lag);
  uv_timer_init(srv->loop, &srv->drain);
  srv->prepare.data = srv->check.data = srv->sweep.data = srv->lag.data =
      srv->drain.data = srv;
  srv->handles_open += 5;
  if (wschat__post_open(&srv->posts, srv->loop) == 0) {
    srv->posts_open = 1;
    srv->handles_open++;
  }
  uv_prepare_start(&srv->prepare, on_prepare);
  uv_check_start(&srv->check, on_check);
  uint64_t period = sweep_period(srv);
  uv_timer_start(&srv->sweep, on_sweep, period, period);
  uv_timer_start(&srv->lag, on_lag, LAG_PERIOD_MS, LAG_PERIOD_MS);
  srv->listening = 1;
  wschat__server_cluster_start(srv);
  struct wschat_log_field f[] = {{"host", host, 0}, {"port", NULL, srv->port}};
  wschat__log_event(&srv->log, WSCHAT_LOG_INFO, "listen", f, 2);
  return 0;
}

int wschat_server_port(const struct wschat_server *srv) {
  return srv && srv->listening ? srv->port : 0;
}

uv_loop_t *wschat_server_loop(const struct wschat_server *srv) {
  return srv->loop;
}

int wschat_server_run(struct wschat_server *srv) {
  if (srv == NULL || !srv->owns_loop)
    return WSCHAT_ESTATE;
  return uv_run(srv->loop, UV_RUN_DEFAULT) < 0 ? WSCHAT_EIO : 0;
}

/* ---- hooks ---- */

#define HOOK_SETTER(fn, type, field, user_field)                               \
  void fn(struct wschat_server *srv, type cb, void *user) {                   \
    srv->field = cb;                                                           \
    srv->user_field = user;                                                    \
  }
HOOK_SETTER(wschat_server_on_connect, wschat_connect_cb, sess.on_connect,
            sess.on_connect_user)
HOOK_SETTER(wschat_server_on_disconnect, wschat_disconnect_cb,
            sess.on_disconnect, sess.on_disconnect_user)
HOOK_SETTER(wschat_server_on_message, wschat_message_cb, sess.on_message,
            sess.on_message_user)
HOOK_SETTER(wschat_server_on_join, wschat_join_cb, chat.on_join,
            chat.on_join_user)
HOOK_SETTER(wschat_server_on_leave, wschat_leave_cb, chat.on_leave,
            chat.on_leave_user)
