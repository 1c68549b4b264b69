/*
 * server: the listener, the set of connections, options, hooks, the flush
 * of corked output once per loop turn, the one sweep timer shared by all
 * connections, cross-thread requests, and shutdown.
 *
 * Owns: its handles (listener, prepare, check, sweep timer, async), the
 * connection array (the connections themselves own their memory until their
 * close callback), the room registry and name registry (through chat), the
 * bus, the shared read buffer and the shared ping frame. Runs on the
 * caller's uv_loop_t, or on a loop of its own.
 */
#ifndef WSCHAT_SERVER_H
#define WSCHAT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bus.h"
#include "map.h"
#include "wschat.h"

#define WSCHAT__READ_BUF (64 * 1024)

struct wschat__post; /* a cross-thread request (server.c) */

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
  uv_async_t async;
  int listening;
  int listener_closing; /* a failed listen's handle is still closing */
  int shutting_down;
  int handles_open; /* handles not yet closed (shutdown) */
  int port;

  /* options */
  int mode;
  size_t max_message, max_output, max_header;
  uint64_t handshake_timeout_ms, ping_interval_ms, ping_timeout_ms,
      close_timeout_ms;
  int backlog;

  /* hooks */
  wschat_connect_cb on_connect;
  void *on_connect_user;
  wschat_disconnect_cb on_disconnect;
  void *on_disconnect_user;
  wschat_message_cb on_message;
  void *on_message_user;
  wschat_join_cb on_join;
  void *on_join_user;
  wschat_leave_cb on_leave;
  void *on_leave_user;
  wschat_shutdown_cb on_shutdown;
  void *on_shutdown_user;

  /* connections */
  struct wschat_client **conns; /* owned array; not the clients */
  size_t nconns, conns_cap;
  uint64_t next_id;
  /* Clients to flush, a ring of conns_cap slots (owned): a client is in
   * it at most once at a time, so it never overflows and marking never
   * fails. A closed client's slot is set to NULL. */
  struct wschat_client **dirty;
  size_t dirty_head, ndirty;
  uv_buf_t *iov; /* owned scratch for writev, WSCHAT__IOV entries */

  /* chat */
  struct wschat__map names; /* name -> client */
  struct wschat__map rooms; /* room name -> struct wschat__room */
  uint64_t next_guest;
  struct wschat__bus *bus; /* owned */

  /* cross-thread requests, guarded by post_lock */
  uv_mutex_t post_lock;
  struct wschat__post *post_head, *post_tail;
  int post_closed;

  struct wschat__frame *ping_frame; /* owned reference, shared by all */
  char rbuf[WSCHAT__READ_BUF];      /* the shared read buffer */
};

#define WSCHAT__IOV 1024

/* Adds c to the connection array (it leaves in wschat__server_conn_closed). */
int wschat__server_add(struct wschat_server *srv, struct wschat_client *c);
/* Marks c for flushing at the end of this loop turn. */
void wschat__server_mark_dirty(struct wschat_server *srv,
                               struct wschat_client *c);
/* Called from a client's close callback. */
void wschat__server_conn_closed(struct wschat_server *srv,
                                struct wschat_client *c);

#endif
