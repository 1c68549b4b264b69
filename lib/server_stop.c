/*
 * server_stop: the end of a server: shutdown (every client closed at once
 * with 1001), drain (in batches with 1012 over a time), then its handles,
 * the history store and the post queue closed; and free. See server.h.
 */
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "frame.h"
#include "server.h"
#include "tls_ctx.h"
#include "session.h"

/* ---- shutdown and free ---- */

void wschat__server_handle_done(struct wschat_server *srv) {
  if (--srv->handles_open == 0) {
    srv->sess.shutting_down = 3;
    if (srv->on_shutdown)
      srv->on_shutdown(srv, srv->on_shutdown_user);
  }
}

static void on_handle_closed(uv_handle_t *h) { wschat__server_handle_done(h->data); }

static void on_post_closed(uv_handle_t *h) {
  wschat__server_handle_done(((struct wschat__post_queue *)h->data)->srv);
}

/* Every client is gone: close our remaining handles. */
void wschat__server_close_handles(struct wschat_server *srv) {
  srv->sess.shutting_down = 2;
  uv_close((uv_handle_t *)&srv->prepare, on_handle_closed);
  uv_close((uv_handle_t *)&srv->check, on_handle_closed);
  uv_close((uv_handle_t *)&srv->sweep, on_handle_closed);
  uv_close((uv_handle_t *)&srv->lag, on_handle_closed);
  uv_close((uv_handle_t *)&srv->drain, on_handle_closed);
  wschat__server_cluster_close(srv);
  /* The store writes what it has; its answers to reads are posted. */
  wschat__server_close_history(srv);
  /* What was posted runs now; nothing more is taken. */
  if (srv->posts_open)
    wschat__post_close(&srv->posts, on_post_closed);
}

/* Closes every client at once: open ones with code and reason, deferred
 * ones answered 503, ones still sending their request dropped. Clients
 * leave the array only in close callbacks, so it stays whole. A client
 * inside its on_connect is answered 503 when that returns. */
static void close_all(struct wschat_server *srv, int code,
                      const char *reason) {
  for (size_t i = 0; i < srv->nconns; i++) {
    struct wschat_client *c = srv->conns[i];
    if (c->in_connect)
      continue;
    if (c->conn.state == WSCHAT__CONN_OPEN)
      wschat__conn_close(&c->conn, code, reason);
    else if (c->conn.state == WSCHAT__CONN_HTTP && c->deferred)
      wschat__session_decide(c);
    else if (c->conn.state == WSCHAT__CONN_HTTP)
      wschat__conn_drop(&c->conn, code);
  }
}

/* Stops listening and starts closing: the part shutdown and drain share.
 * Returns 1 if the server never listened (cb has run: nothing to do). */
static int begin_shutdown(struct wschat_server *srv, wschat_shutdown_cb cb,
                          void *user) {
  srv->on_shutdown = cb;
  srv->on_shutdown_user = user;
  if (!srv->listening) {
    srv->sess.shutting_down = 3;
    if (cb)
      cb(srv, user);
    return 1;
  }
  srv->sess.shutting_down = 1;
  srv->chat.silent_leaves = 1; /* nobody hears of each leave: O(n), not n^2 */
  uv_close(&srv->listener.handle, on_handle_closed);
  return 0;
}

int wschat_server_shutdown(struct wschat_server *srv, wschat_shutdown_cb cb,
                           void *user) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (srv->draining && srv->sess.shutting_down == 1) {
    /* During a drain: the rest now. */
    srv->draining = 0;
    uv_timer_stop(&srv->drain);
    if (cb) {
      srv->on_shutdown = cb;
      srv->on_shutdown_user = user;
    }
    struct wschat_log_field f[] = {{"clients", NULL, (int64_t)srv->nconns}};
    wschat__log_event(&srv->log, WSCHAT_LOG_INFO, "shutdown", f, 1);
    wschat__post_drain(&srv->posts);
    close_all(srv, 1001, "server shutting down");
    return 0;
  }
  if (srv->sess.shutting_down)
    return WSCHAT_ESTATE;
  if (begin_shutdown(srv, cb, user))
    return 0;
  struct wschat_log_field f[] = {{"clients", NULL, (int64_t)srv->nconns}};
  wschat__log_event(&srv->log, WSCHAT_LOG_INFO, "shutdown", f, 1);
  wschat__post_drain(&srv->posts);
  close_all(srv, 1001, "server shutting down");
  if (srv->nconns == 0)
    wschat__server_close_handles(srv);
  return 0;
}

/* One batch of a drain: enough open clients closed (1012) that batch k of
 * n has closed floor(k/n) of those open when the drain began (so 2 clients
 * over 3 s go at 1.5 s and 3 s, not at 0.1 s); the last batch closes
 * everyone left, as a shutdown does. */
static void on_drain(uv_timer_t *t) {
  struct wschat_server *srv = t->data;
  if (!srv->draining)
    return;
  unsigned k = ++srv->drain_batch;
  if (k >= srv->drain_batches) {
    srv->draining = 0;
    uv_timer_stop(&srv->drain);
    wschat__post_drain(&srv->posts);
    close_all(srv, 1012, "service restart");
    return;
  }
  size_t target =
      (size_t)(srv->drain_total * (uint64_t)k / srv->drain_batches);
  /* From the end: a client that goes is replaced by the last one, so the
   * ones before i are never skipped. */
  for (size_t i = srv->nconns; i > 0 && srv->drain_closed < target; i--) {
    struct wschat_client *c = srv->conns[i - 1];
    if (c->conn.state != WSCHAT__CONN_OPEN || c->in_connect)
      continue;
    wschat__conn_close(&c->conn, 1012, "service restart");
    srv->drain_closed++;
  }
}

int wschat_server_drain(struct wschat_server *srv, uint64_t ms,
                        wschat_shutdown_cb cb, void *user) {
  if (srv == NULL || ms > 86400000)
    return WSCHAT_EINVAL;
  if (ms == 0)
    return wschat_server_shutdown(srv, cb, user);
  if (srv->sess.shutting_down)
    return WSCHAT_ESTATE;
  if (begin_shutdown(srv, cb, user))
    return 0;
  /* The deferred are answered 503 now; a request still on its way is
   * answered 503 when it is whole (a plain one, e.g. a scrape of
   * /metrics, is answered as usual). */
  for (size_t i = 0; i < srv->nconns; i++) {
    struct wschat_client *c = srv->conns[i];
    if (c->conn.state == WSCHAT__CONN_HTTP && c->deferred && !c->in_connect)
      wschat__session_decide(c);
  }
  if (srv->nconns == 0) {
    wschat__server_close_handles(srv);
    return 0;
  }
  srv->draining = 1;
  srv->drain_batch = 0;
  srv->drain_batches = (unsigned)(ms / WSCHAT__DRAIN_TICK_MS);
  if (srv->drain_batches == 0)
    srv->drain_batches = 1;
  srv->drain_total = 0;
  srv->drain_closed = 0;
  for (size_t i = 0; i < srv->nconns; i++)
    srv->drain_total += srv->conns[i]->conn.state == WSCHAT__CONN_OPEN;
  struct wschat_log_field f[] = {{"clients", NULL, (int64_t)srv->drain_total},
                                 {"ms", NULL, (int64_t)ms}};
  wschat__log_event(&srv->log, WSCHAT_LOG_INFO, "drain", f, 2);
  uint64_t tick = ms / srv->drain_batches;
  uv_timer_start(&srv->drain, on_drain, tick, tick);
  return 0;
}

int wschat_server_free(struct wschat_server *srv) {
  if (srv == NULL)
    return 0;
  if (srv->nconns > 0 || srv->listener_closing ||
      (srv->listening && srv->sess.shutting_down != 3))
    return WSCHAT_ESTATE;
  wschat__server_close_history(srv); /* never listened */
  wschat__chat_free(&srv->chat);
  wschat__server_cluster_free(srv);
  wschat__routes_free(&srv->routes);
  wschat__post_free(&srv->posts);
  wschat__session_env_free(&srv->sess);
  wschat__map_free(&srv->peers); /* empty: every client is gone */
  wschat__frame_unref(srv->sess.conn.ping_frame);
  wschat__deflate_free(srv->sess.conn.deflate);
  free(srv->sess.conn.iov);
  wschat__tls_free(srv->sess.conn.tls);
  free(srv->conns);
  free(srv->dirty);
  if (srv->owns_loop) {
    uv_run(&srv->own_loop, UV_RUN_NOWAIT);
    uv_loop_close(&srv->own_loop);
  }
  free(srv);
  return 0;
}
