/*
 * server: the listener, the set of connections, options, the flush of
 * corked output once per loop turn, the one sweep timer shared by all
 * connections, and shutdown.
 *
 * Owns: its handles (listener, prepare, check, sweep timer, the post
 * queue's async), the connection array (the clients themselves own their
 * memory until their close callback), the chat (rooms, names, bus), the
 * HTTP routes, the shared read buffer and the shared ping frame. Runs on
 * the caller's uv_loop_t, or on a loop of its own.
 */
#ifndef WSCHAT_SERVER_H
#define WSCHAT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "chat.h"
#include "conn.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "post.h"
#include "route.h"
#include "session.h"
#include "stream.h"
#include "text_proto.h"
#include "wschat.h"

#define WSCHAT__READ_BUF (64 * 1024)
#define WSCHAT__IOV 1024
#define WSCHAT__GATHER (16 * 1024)
#define WSCHAT__DRAIN_TICK_MS 100

struct wschat_server {
  uv_loop_t *loop;
  uv_loop_t own_loop; /* used when the caller passed no loop */
  int owns_loop;
  union {
    uv_tcp_t tcp;
    uv_handle_t handle;
  } listener;
  uv_prepare_t prepare; /* flush before the loop blocks */
  uv_check_t check;     /* flush after I/O callbacks */
  uv_timer_t sweep;
  uv_timer_t lag;             /* measures the loop's lateness (metrics) */
  uv_timer_t drain;           /* closes the next batch of a drain */
  struct wschat__spare spare; /* refuses connections when memory is short */
  int listening;
  int listener_closing; /* a failed listen's handle is still closing */
  int handles_open;     /* handles not yet closed (shutdown) */
  int port;

  int backlog;
  /* Shared by every client: limits, timeouts, buffers (sess.conn), the
   * mode, the shutdown state (sess.shutting_down: 1 closing clients, 2
   * closing handles, 3 done) and the client hooks. */
  struct wschat__session_env sess;

  wschat_shutdown_cb on_shutdown;
  void *on_shutdown_user;
  /* A drain (wschat_server_drain()): batches 1..drain_batches, one every
   * WSCHAT__DRAIN_TICK_MS; after batch k, k/drain_batches of the clients
   * open at its start (drain_total) are closed (drain_closed so far). */
  int draining;
  unsigned drain_batch, drain_batches;
  size_t drain_total, drain_closed;

  /* connections */
  struct wschat_client **conns; /* owned array; not the clients */
  size_t nconns, conns_cap;
  /* Limits on connections, judged at accept (0: none), and what they
   * count: clients not refused, and clients per peer address (a map from
   * the address as text to an owned struct wschat__peer_count). */
  size_t max_connections, max_per_ip;
  size_t nadmitted, nrefusing;
  struct wschat__map peers;
  /* Output queued by every client (see struct wschat__conn_env) and
   * whether the largest queues are being closed right now. */
  size_t queued_total;
  int shedding;
  struct wschat__metrics metrics; /* counters (metrics.h) */
  struct wschat__log log;         /* the application's log callback */
  uint64_t next_id;
  /* Clients to flush, a ring of conns_cap slots (owned): a client is in
   * it at most once at a time, so it never overflows and marking never
   * fails. A closed client's slot is set to NULL. */
  struct wschat_client **dirty;
  size_t dirty_head, ndirty;

  struct wschat__chat chat;
  struct wschat__text text; /* the text protocol over chat */
  struct wschat__routes routes;
  struct wschat__post_queue posts;
  int posts_open; /* its async handle is open */

  /* The history store (owned; NULL: none, or closed at shutdown). */
  struct wschat__history *history;
  int history_builtin; /* SQLite: it has counters */
  int history_closed;
  struct wschat_history_stats history_last; /* the counters at close */

  /* Cluster mode (server_cluster.c; NULL: none): owned, freed after the
   * chat (its bus and presence are the chat's). */
  struct wschat__cluster *cluster;

  char rbuf[WSCHAT__READ_BUF]; /* the shared read buffer */
  char wbuf[WSCHAT__GATHER];   /* the shared gather buffer for writes */
};

/* Writes and closes the history store, if any (shutdown, free). */
void wschat__server_close_history(struct wschat_server *srv);

/* server_limits.c: a new connection is counted, or refused (503: the
 * server is full; 429: its address has max_per_ip already) and answered
 * at once; unadmit() uncounts it when it goes. shed() closes the largest
 * queues (1008) while all queued output is over max_output_total (dooms
 * only: safe while a room is walked). */
void wschat__server_admit(struct wschat_server *srv, struct wschat_client *c);
void wschat__server_unadmit(struct wschat_server *srv, struct wschat_client *c);
void wschat__server_shed(struct wschat_server *srv);

/* server_stop.c: every client is gone (shutting down): closes the
 * server's remaining handles; on_shutdown runs when the last is closed. */
void wschat__server_close_handles(struct wschat_server *srv);
/* One of the server's handles is closed (the last: on_shutdown runs). */
void wschat__server_handle_done(struct wschat_server *srv);

/* server_cluster.c: the cluster starts with the listener and closes with
 * the handles (one of handles_open until it is closed). */
void wschat__server_cluster_start(struct wschat_server *srv);
void wschat__server_cluster_close(struct wschat_server *srv);
void wschat__server_cluster_free(struct wschat_server *srv);
/* Writes the commands queued for Redis this loop turn (before the
 * clients' output). */
void wschat__server_cluster_flush(struct wschat_server *srv);

/* The client with id, or NULL. */
struct wschat_client *wschat__server_client(struct wschat_server *srv,
                                            uint64_t id);

#endif
