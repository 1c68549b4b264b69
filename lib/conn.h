/*
 * conn: one client connection, from accept to close callback.
 *
 * Owns: the socket (uv_tcp_t), the HTTP handshake state while it lasts, the
 * wslay context (through ws), the output queue of frame references, and
 * the request path. Reads go through a buffer shared by the whole server
 * (handled synchronously, never kept); writes are corked: frames pile up
 * in the queue during a loop turn and the server flushes each dirty
 * connection once per turn with one writev of many buffers.
 * A connection is freed only in its close callback, after its disconnect
 * hook has run exactly once.
 */
#ifndef WSCHAT_CONN_H
#define WSCHAT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "frame.h"
#include "ws.h"

struct wschat__http;
struct wschat__room;

enum wschat__conn_state {
  WSCHAT__CONN_HTTP = 0, /* reading the upgrade request */
  WSCHAT__CONN_OPEN,     /* WebSocket open */
  WSCHAT__CONN_CLOSING,  /* close handshake or final flush under way */
  WSCHAT__CONN_DEAD,     /* uv_close called; freed in the close callback */
};

/* The output queue: frame references in order, written from head. */
struct wschat__outq {
  struct wschat__frame **v; /* owned array; each slot owns one reference */
  uint32_t head, tail, cap; /* queued slots are [head, tail) */
  uint32_t off;             /* bytes of v[head] already written */
  size_t bytes;             /* bytes queued and not yet written */
  size_t inflight;          /* bytes handed to a pending uv_write; a write
                               is pending exactly when this is not 0 */
};

struct wschat_client {
  uv_tcp_t tcp; /* tcp.data == this */
  struct wschat_server *srv;
  uint64_t id;
  uint8_t state;       /* enum wschat__conn_state */
  uint8_t dirty;       /* in the server's flush list */
  uint8_t in_connect;  /* inside the on_connect hook */
  uint8_t connected;   /* on_connect ran: on_disconnect is owed */
  uint8_t ended;       /* on_disconnect ran */
  uint8_t ping_out;    /* a ping is unanswered */
  uint8_t shut;        /* after the queue drains: shutdown, then close */
  uint16_t doom; /* close code to apply at the next flush (1008 slow
                   consumer, 1011 out of memory); nothing more is delivered */
  uint16_t reject_code;
  uint16_t end_code; /* close code sent or received */
  size_t idx;        /* index in the server's connection array */
  uint64_t since_ms; /* last bytes from the peer (or accept time) */
  uint64_t deadline_ms; /* handshake, ping or close deadline; 0 if none */
  struct wschat__http *http; /* owned, only while state == HTTP */
  char *reject_reason;       /* owned, set by wschat_client_reject() */
  char *path;                /* owned: "path\0query\0" */
  struct wschat__ws ws;
  struct wschat__outq q;
  char peer[48];
  /* chat */
  char name[33];
  struct wschat__room *room; /* not owned: the room registry owns rooms */
  size_t room_idx;           /* index in room->members */
  void *user_data;           /* the embedder's; never touched */
};

/* Accepts one pending connection from the listener. */
void wschat__conn_accept(struct wschat_server *srv, uv_stream_t *listener);

/* Appends a frame reference (takes the caller's reference) whatever the
 * state, for handshake answers and wslay's own frames. Returns 0 or -1. */
int wschat__conn_push_raw(struct wschat_client *c, struct wschat__frame *f);

/*
 * Delivers a data frame: adds a reference (the caller keeps its own) if the
 * client is open. Never changes memberships and never blocks anyone: the
 * flush closes a client whose unwritten backlog passes the output cap with
 * 1008 "slow consumer".
 */
void wschat__conn_deliver(struct wschat_client *c, struct wschat__frame *f);

/* Writes what is queued: one try_write of many buffers, then uv_write for
 * the rest. Called by the server once per loop turn for dirty clients. */
void wschat__conn_flush(struct wschat_client *c);

/* Starts a close handshake with code and reason (may be NULL). */
void wschat__conn_close(struct wschat_client *c, int code, const char *reason);

/* Closes the socket now (no handshake); code is reported to the hooks. */
void wschat__conn_drop(struct wschat_client *c, int code);

/* From ws: a complete message, a received close (code 1005 if none), a
 * pong. */
void wschat__conn_on_message(struct wschat_client *c, int opcode,
                             const uint8_t *msg, size_t len);
void wschat__conn_on_close(struct wschat_client *c, int code);
void wschat__conn_on_pong(struct wschat_client *c);

/* The periodic sweep: handshake, ping and close deadlines. */
void wschat__conn_sweep(struct wschat_client *c, uint64_t now);

#endif
