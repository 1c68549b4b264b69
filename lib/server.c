/*
 * server: see server.h.
 *
 * One loop turn: timers (the sweep) -> prepare (flush what timers queued)
 * -> poll (reads: handshakes, messages, fan-out into queues) -> check
 * (flush every dirty client once: one writev each) -> close callbacks.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "conn.h"
#include "frame.h"
#include "utf8.h"

enum { POST_BROADCAST, POST_SHUTDOWN };

struct wschat__post {
  struct wschat__post *next;
  int kind;
  char *room; /* NULL: everyone */
  size_t len;
  char text[]; /* len bytes */
};

/* ---- connections ---- */

int wschat__server_add(struct wschat_server *srv, struct wschat_client *c) {
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
  c->idx = srv->nconns;
  srv->conns[srv->nconns++] = c;
  return 0;
}

static void server_remove(struct wschat_server *srv,
                          struct wschat_client *c) {
  if (c->idx >= srv->nconns || srv->conns[c->idx] != c)
    return;
  struct wschat_client *last = srv->conns[--srv->nconns];
  srv->conns[c->idx] = last;
  last->idx = c->idx;
}

void wschat__server_mark_dirty(struct wschat_server *srv,
                               struct wschat_client *c) {
  if (c->dirty)
    return;
  c->dirty = 1; /* each client at most once: the ring is large enough */
  srv->dirty[(srv->dirty_head + srv->ndirty++) % srv->conns_cap] = c;
}

static void close_handles(struct wschat_server *srv);

void wschat__server_conn_closed(struct wschat_server *srv,
                                struct wschat_client *c) {
  if (c->dirty)
    for (size_t i = 0; i < srv->ndirty; i++)
      if (srv->dirty[(srv->dirty_head + i) % srv->conns_cap] == c)
        srv->dirty[(srv->dirty_head + i) % srv->conns_cap] = NULL;
  server_remove(srv, c);
  if (srv->shutting_down == 1 && srv->nconns == 0)
    close_handles(srv);
}

/* Flushes every client that has output: once per loop turn. New clients
 * may become dirty while we go (a close tells a room): they are flushed in
 * the same pass. */
static void flush_dirty(struct wschat_server *srv) {
  while (srv->ndirty > 0) {
    struct wschat_client *c = srv->dirty[srv->dirty_head];
    srv->dirty_head = (srv->dirty_head + 1) % srv->conns_cap;
    srv->ndirty--;
    if (c == NULL)
      continue;
    c->dirty = 0;
    wschat__conn_flush(c);
  }
}

static void on_prepare(uv_prepare_t *h) { flush_dirty(h->data); }
static void on_check(uv_check_t *h) { flush_dirty(h->data); }

static void on_sweep(uv_timer_t *t) {
  struct wschat_server *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  for (size_t i = 0; i < srv->nconns; i++)
    wschat__conn_sweep(srv->conns[i], now);
}

static void on_connection(uv_stream_t *listener, int status) {
  struct wschat_server *srv = listener->data;
  if (status < 0 || srv->shutting_down)
    return;
  wschat__conn_accept(srv, listener);
}

/* ---- cross-thread requests ---- */

static void on_async(uv_async_t *a) {
  struct wschat_server *srv = a->data;
  uv_mutex_lock(&srv->post_lock);
  struct wschat__post *p = srv->post_head;
  srv->post_head = srv->post_tail = NULL;
  uv_mutex_unlock(&srv->post_lock);
  while (p) {
    struct wschat__post *next = p->next;
    if (p->kind == POST_BROADCAST)
      wschat_server_broadcast(srv, p->room, p->text, p->len, NULL);
    else
      wschat_server_shutdown(srv, NULL, NULL);
    free(p->room);
    free(p);
    p = next;
  }
}

static int post(struct wschat_server *srv, struct wschat__post *p) {
  uv_mutex_lock(&srv->post_lock);
  if (srv->post_closed) {
    uv_mutex_unlock(&srv->post_lock);
    free(p->room);
    free(p);
    return WSCHAT_ECLOSED;
  }
  p->next = NULL;
  if (srv->post_tail)
    srv->post_tail->next = p;
  else
    srv->post_head = p;
  srv->post_tail = p;
  uv_async_send(&srv->async);
  uv_mutex_unlock(&srv->post_lock);
  return 0;
}

int wschat_server_post_broadcast(struct wschat_server *srv, const char *room,
                                 const char *text, size_t len) {
  if (srv == NULL || (text == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  struct wschat__post *p = malloc(sizeof(*p) + len);
  if (p == NULL)
    return WSCHAT_ENOMEM;
  p->kind = POST_BROADCAST;
  p->len = len;
  if (len)
    memcpy(p->text, text, len);
  p->room = room ? strdup(room) : NULL;
  if (room && p->room == NULL) {
    free(p);
    return WSCHAT_ENOMEM;
  }
  return post(srv, p);
}

int wschat_server_post_shutdown(struct wschat_server *srv) {
  struct wschat__post *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return WSCHAT_ENOMEM;
  p->kind = POST_SHUTDOWN;
  return post(srv, p);
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
  srv->mode = WSCHAT_MODE_CHAT;
  srv->max_message = 1 << 20;
  srv->max_output = 1 << 20;
  srv->max_header = 8192;
  srv->handshake_timeout_ms = 10000;
  srv->ping_interval_ms = 20000;
  srv->ping_timeout_ms = 20000;
  srv->close_timeout_ms = 3000;
  srv->backlog = 1024;
  wschat__map_init(&srv->names);
  wschat__map_init(&srv->rooms);
  srv->bus = wschat__bus_local_new(srv);
  srv->iov = malloc(WSCHAT__IOV * sizeof(uv_buf_t));
  srv->ping_frame = wschat__frame_new(WSCHAT__OP_PING, NULL, 0);
  if (srv->bus == NULL || srv->iov == NULL || srv->ping_frame == NULL ||
      uv_mutex_init(&srv->post_lock) != 0) {
    if (srv->bus)
      srv->bus->ops->free(srv->bus);
    free(srv->iov);
    wschat__frame_unref(srv->ping_frame);
    if (srv->owns_loop)
      uv_loop_close(&srv->own_loop);
    free(srv);
    return WSCHAT_ENOMEM;
  }
  srv->post_closed = 1; /* opens when listening */
  *out = srv;
  return 0;
}

int wschat_server_set_option(struct wschat_server *srv, enum wschat_option opt,
                             int64_t v) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  const int64_t day_ms = 86400000;
  switch (opt) {
  case WSCHAT_OPT_MODE:
    if (v != WSCHAT_MODE_CHAT && v != WSCHAT_MODE_ECHO)
      return WSCHAT_EINVAL;
    if (srv->listening)
      return WSCHAT_ESTATE; /* open clients are in one mode or the other */
    srv->mode = (int)v;
    return 0;
  case WSCHAT_OPT_MAX_MESSAGE:
    if (v < 1 || v > (int64_t)1 << 31)
      return WSCHAT_EINVAL;
    srv->max_message = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_OUTPUT:
    if (v < 1024 || v > (int64_t)1 << 40)
      return WSCHAT_EINVAL;
    srv->max_output = (size_t)v;
    return 0;
  case WSCHAT_OPT_MAX_HEADER:
    if (v < 256 || v > 1 << 20)
      return WSCHAT_EINVAL;
    srv->max_header = (size_t)v;
    return 0;
  case WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS:
  case WSCHAT_OPT_PING_INTERVAL_MS:
  case WSCHAT_OPT_PING_TIMEOUT_MS:
  case WSCHAT_OPT_CLOSE_TIMEOUT_MS:
    if (v < 1 || v > day_ms)
      return WSCHAT_EINVAL;
    if (opt == WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS)
      srv->handshake_timeout_ms = (uint64_t)v;
    else if (opt == WSCHAT_OPT_PING_INTERVAL_MS)
      srv->ping_interval_ms = (uint64_t)v;
    else if (opt == WSCHAT_OPT_PING_TIMEOUT_MS)
      srv->ping_timeout_ms = (uint64_t)v;
    else
      srv->close_timeout_ms = (uint64_t)v;
    return 0;
  case WSCHAT_OPT_BACKLOG:
    if (v < 1 || v > 65535)
      return WSCHAT_EINVAL;
    srv->backlog = (int)v;
    return 0;
  }
  return WSCHAT_EINVAL;
}

static void on_failed_listener_closed(uv_handle_t *h) {
  ((struct wschat_server *)h->data)->listener_closing = 0;
}

/* The sweep runs often enough to honour the shortest deadline within about
 * a quarter of it, and at least once a second. */
static uint64_t sweep_period(const struct wschat_server *srv) {
  uint64_t p = srv->ping_interval_ms;
  if (srv->ping_timeout_ms < p)
    p = srv->ping_timeout_ms;
  if (srv->handshake_timeout_ms < p)
    p = srv->handshake_timeout_ms;
  if (srv->close_timeout_ms < p)
    p = srv->close_timeout_ms;
  p /= 4;
  return p < 20 ? 20 : p > 1000 ? 1000 : p;
}

int wschat_server_listen(struct wschat_server *srv, const char *host,
                         int port) {
  if (srv == NULL || port < 0 || port > 65535)
    return WSCHAT_EINVAL;
  if (srv->listening || srv->shutting_down || srv->listener_closing)
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
  uv_async_init(srv->loop, &srv->async, on_async);
  srv->prepare.data = srv->check.data = srv->sweep.data = srv->async.data =
      srv;
  srv->handles_open += 4;
  uv_prepare_start(&srv->prepare, on_prepare);
  uv_check_start(&srv->check, on_check);
  uint64_t period = sweep_period(srv);
  uv_timer_start(&srv->sweep, on_sweep, period, period);
  uv_unref((uv_handle_t *)&srv->async);
  uv_mutex_lock(&srv->post_lock);
  srv->post_closed = 0;
  uv_mutex_unlock(&srv->post_lock);
  srv->listening = 1;
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

#define HOOK_SETTER(fn, type, field)                                           \
  void fn(struct wschat_server *srv, type cb, void *user) {                   \
    srv->field = cb;                                                           \
    srv->field##_user = user;                                                  \
  }
HOOK_SETTER(wschat_server_on_connect, wschat_connect_cb, on_connect)
HOOK_SETTER(wschat_server_on_disconnect, wschat_disconnect_cb, on_disconnect)
HOOK_SETTER(wschat_server_on_message, wschat_message_cb, on_message)
HOOK_SETTER(wschat_server_on_join, wschat_join_cb, on_join)
HOOK_SETTER(wschat_server_on_leave, wschat_leave_cb, on_leave)

/* ---- shutdown and free ---- */

static void on_handle_closed(uv_handle_t *h) {
  struct wschat_server *srv = h->data;
  if (--srv->handles_open == 0) {
    srv->shutting_down = 3;
    if (srv->on_shutdown)
      srv->on_shutdown(srv, srv->on_shutdown_user);
  }
}

/* Every client is gone: close our remaining handles. */
static void close_handles(struct wschat_server *srv) {
  srv->shutting_down = 2;
  uv_mutex_lock(&srv->post_lock);
  srv->post_closed = 1;
  uv_mutex_unlock(&srv->post_lock);
  on_async(&srv->async); /* drain what was posted; nothing more comes */
  uv_close((uv_handle_t *)&srv->prepare, on_handle_closed);
  uv_close((uv_handle_t *)&srv->check, on_handle_closed);
  uv_close((uv_handle_t *)&srv->sweep, on_handle_closed);
  uv_close((uv_handle_t *)&srv->async, on_handle_closed);
}

int wschat_server_shutdown(struct wschat_server *srv, wschat_shutdown_cb cb,
                           void *user) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (srv->shutting_down)
    return WSCHAT_ESTATE;
  srv->on_shutdown = cb;
  srv->on_shutdown_user = user;
  if (!srv->listening) {
    srv->shutting_down = 3;
    if (cb)
      cb(srv, user);
    return 0;
  }
  srv->shutting_down = 1;
  uv_mutex_lock(&srv->post_lock);
  srv->post_closed = 1; /* posts from now on are refused, not lost */
  uv_mutex_unlock(&srv->post_lock);
  uv_close(&srv->listener.handle, on_handle_closed);
  /* Clients leave the array only in close callbacks, so it stays whole. A
   * client inside its on_connect is answered 503 when that returns. */
  for (size_t i = 0; i < srv->nconns; i++) {
    struct wschat_client *c = srv->conns[i];
    if (c->in_connect)
      continue;
    if (c->state == WSCHAT__CONN_OPEN)
      wschat__conn_close(c, 1001, "server shutting down");
    else if (c->state == WSCHAT__CONN_HTTP)
      wschat__conn_drop(c, 1001);
  }
  if (srv->nconns == 0)
    close_handles(srv);
  return 0;
}

int wschat_server_free(struct wschat_server *srv) {
  if (srv == NULL)
    return 0;
  if (srv->nconns > 0 || srv->listener_closing ||
      (srv->listening && srv->shutting_down != 3))
    return WSCHAT_ESTATE;
  wschat__chat_free(srv);
  srv->bus->ops->free(srv->bus);
  wschat__frame_unref(srv->ping_frame);
  free(srv->iov);
  free(srv->conns);
  free(srv->dirty);
  uv_mutex_destroy(&srv->post_lock);
  if (srv->owns_loop) {
    uv_run(&srv->own_loop, UV_RUN_NOWAIT);
    uv_loop_close(&srv->own_loop);
  }
  free(srv);
  return 0;
}
