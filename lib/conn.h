/*
 * conn: one connection's life, from accept to close callback: the HTTP
 * request while it is read, the WebSocket framing after the upgrade (ws),
 * the output queue (outq), its cap (judged as output is queued) and its
 * corked writes, the answers to pings, deadlines (handshake, ping, close,
 * the time a message may take), the close handshake and the lingering
 * close.
 *
 * What it hands up, through the server's struct wschat__conn_cbs: a
 * complete HTTP request, each whole message, the end of the connection
 * (once), and the close callback. It knows no chat, no hook and no route:
 * the layer above (session.c) decides what a request gets and what a
 * message means.
 *
 * Owns: the stream (its handle), the HTTP parser state while it lasts,
 * input held back while a decision is deferred, the wslay context
 * (through ws) and the queue's frame references. Reads go into a buffer
 * shared by the whole server (handled at once, never kept). Writes are
 * corked: frames pile up in the queue during a loop turn and the server
 * flushes each dirty connection once per turn with one writev.
 */
#ifndef WSCHAT_CONN_H
#define WSCHAT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "frame.h"
#include "metrics.h"
#include "outq.h"
#include "stream.h"
#include "ws.h"

struct wschat__http;
struct wschat__frame;
struct wschat__log;
struct wschat__conn;
struct wschat__tls;
struct wschat__deflate;

enum wschat__conn_state {
  WSCHAT__CONN_HTTP = 0, /* reading the upgrade request, or deferred */
  WSCHAT__CONN_OPEN,     /* WebSocket open */
  WSCHAT__CONN_CLOSING,  /* close handshake or final flush under way */
  WSCHAT__CONN_DEAD,     /* closing the stream; freed in on_closed */
};

struct wschat__conn_cbs {
  /* The HTTP request is complete: c->http is DONE or FAILED. The upper
   * layer answers (conn_respond, conn_upgrade) or defers (neither: input
   * is then held and reading stops until it answers). */
  void (*on_request)(struct wschat__conn *c);
  /* A whole message from an open connection. */
  void (*on_message)(struct wschat__conn *c, int opcode, const uint8_t *msg,
                     size_t len);
  /* Once, when a connection marked c->notify_end stops being open (or
   * is refused, dropped or times out), with the close code sent or
   * received, or the HTTP status. */
  void (*on_end)(struct wschat__conn *c, int code);
  /* The stream is closed: free c now. */
  void (*on_closed)(struct wschat__conn *c);
  /* c was upgraded: it is a WebSocket now (for the log). */
  void (*on_open)(struct wschat__conn *c);
  /* c has output: flush it at the end of this loop turn. */
  void (*mark_dirty)(struct wschat__conn *c);
  /* The output queued by all connections passed max_output_total while
   * something was queued for c: close the largest queues (never here
   * inline: the caller may be walking a room, so closing means dooming). */
  void (*over_total)(struct wschat__conn *c);
};

/* What all connections of a server share (owned by the server). */
struct wschat__conn_env {
  uv_loop_t *loop;
  const struct wschat__conn_cbs *cbs;
  size_t max_message, max_output, max_header;
  /* Output queued by all connections (WSCHAT__OUTQ_SLOT per frame
   * included; a shared frame counts once per queue holding it), kept
   * exact by every change of a queue, and its ceiling. */
  size_t *queued_total;
  size_t max_output_total;
  struct wschat__metrics *metrics; /* the server's counters */
  const struct wschat__log *log;   /* the server's log callback */
  uint64_t handshake_timeout_ms, ping_interval_ms, ping_timeout_ms,
      close_timeout_ms;
  uint64_t message_timeout_ms; /* for a message to arrive whole; 0: none */
  char *rbuf; /* the shared read buffer */
  size_t rbuf_len;
  uv_buf_t *iov; /* scratch for writev, iov_max entries */
  size_t iov_max;
  char *gather; /* scratch: small frames copied into one write */
  size_t gather_len;
  struct wschat__frame *ping_frame; /* shared by all */
  /* TLS on every connection accepted (stream_tls); NULL: plain TCP. */
  struct wschat__tls *tls;
  /* permessage-deflate (deflate.h): the server's shared streams (owned by
   * the server, NULL if out of memory) and whether upgrades may
   * negotiate it (WSCHAT_OPT_DEFLATE, on by default) */
  struct wschat__deflate *deflate;
  int deflate_on;
};

struct wschat__conn {
  struct wschat__stream_tcp stream; /* first: the stream's user is c */
  const struct wschat__conn_env *env;
  uint8_t state;      /* enum wschat__conn_state */
  uint8_t dirty;      /* in the server's flush list */
  uint8_t notify_end; /* on_end is owed */
  uint8_t ended;      /* on_end ran */
  uint8_t ping_out;   /* a ping is unanswered */
  uint8_t shut;       /* after the queue drains: 1 shutdown, 2 done */
  uint8_t held_back;  /* a decision is deferred: reading stopped */
  uint8_t upgraded;   /* answered 101: the bytes are WebSocket frames */
  uint16_t doom; /* close code to apply at the next flush (1008 slow
                    consumer, 1011 out of memory); nothing more is queued
                    and nothing more is read */
  uint16_t end_code;    /* close code sent or received */
  uint8_t pong_burst;   /* pongs queued since the last flush */
  uint8_t pong_stuck;   /* c->pong stayed unsent through a flush */
  /* The queue next to the state and flags above: a delivery reads and
   * writes only these, in one or two cache lines per recipient. */
  struct wschat__outq q;
  uint64_t since_ms;    /* last bytes from the peer (or accept time) */
  uint64_t deadline_ms; /* handshake, ping or close deadline; 0 if none */
  uint64_t msg_since_ms; /* a message began arriving then; 0: between */
  struct wschat__http *http; /* owned while the request is decided (with
                                the input held back meanwhile) */
  /* Pongs (one reference each): the last one queued, while we keep it to
   * know whether it is still unsent (refs > 1); and the answer to the
   * latest ping, waiting for it to go. At most these two per connection
   * whatever the peer sends. */
  struct wschat__frame *pong, *pong_next;
  struct wschat__ws ws;
  uint64_t opened_ms; /* when it was upgraded (the log's duration) */
};

/* Accepts one pending connection into c (zeroed by the caller).
 * Returns 0; or -1, after which on_closed follows if c's handle exists
 * (*closing set) and otherwise the caller frees c. */
int wschat__conn_accept(struct wschat__conn *c,
                        const struct wschat__conn_env *env,
                        uv_stream_t *listener, int *closing);

/* Answers the HTTP request with these bytes (a whole response) and
 * closes once they are written; on_end(status) if owed. */
void wschat__conn_respond(struct wschat__conn *c, int status,
                          const char *bytes, size_t n);
/* Answers with the 101 bytes given and opens the WebSocket; input held
 * back meanwhile is fed now. Returns 0, or -1 if the connection was
 * dropped (no memory). */
int wschat__conn_upgrade(struct wschat__conn *c, const char *bytes, size_t n);

/* After a deferred upgrade and whatever the upper layer sent first (the
 * welcome): feeds the input that arrived while the decision waited. */
void wschat__conn_resume(struct wschat__conn *c);

/* Appends a frame reference (takes the caller's reference) whatever the
 * state, for wslay's own frames. Returns 0 or -1. */
int wschat__conn_push_raw(struct wschat__conn *c, struct wschat__frame *f);

/* The slow side of wschat__conn_deliver(): no memory for the queue. */
void wschat__conn_deliver_failed(struct wschat__conn *c,
                                 struct wschat__frame *f);

/* The slow side of wschat__conn_deliver(): c's queue passed its cap, or
 * all queues passed theirs. A queue over its cap is first offered to the
 * socket (a fast reader handed a burst within one loop turn takes it at
 * once); what the kernel does not take beyond the frame being written is
 * a backlog, and over the cap it dooms c (1008 "slow consumer": c is
 * neither read nor sent to any more, and closed at the flush). Over the
 * total, the server closes the largest queues first. */
void wschat__conn_over_cap(struct wschat__conn *c);

/* Delivers a data frame: adds a reference (the caller keeps its own) if
 * the connection is open. Never blocks anyone: the cap is judged here, as
 * output is queued (see wschat__conn_over_cap()), and again at the flush.
 * Inline: it runs once per recipient of every broadcast; beyond the push,
 * its cost is one addition to the server's total, one increment of its
 * count of messages sent, and two comparisons. */
static inline void wschat__conn_deliver(struct wschat__conn *c,
                                        struct wschat__frame *f) {
  if (c->state != WSCHAT__CONN_OPEN || c->doom)
    return;
  if (wschat__outq_push(&c->q, wschat__frame_ref(f)) != 0) {
    wschat__conn_deliver_failed(c, f);
    return;
  }
  const struct wschat__conn_env *env = c->env;
  env->metrics->msgs_out++;
  size_t total = *env->queued_total += f->len + WSCHAT__OUTQ_SLOT;
  if (wschat__outq_cost(&c->q) > env->max_output ||
      total > env->max_output_total)
    wschat__conn_over_cap(c);
  if (!c->dirty)
    env->cbs->mark_dirty(c);
}

/* Marks an open connection for closing with code at the next flush
 * (never closes it here: the caller may be walking a room). */
void wschat__conn_doom(struct wschat__conn *c, int code);

/* Writes what is queued: one try of many buffers, then a background write
 * of the rest. Called once per loop turn for dirty connections. */
void wschat__conn_flush(struct wschat__conn *c);

/* Starts a close handshake with code and reason (may be NULL). */
void wschat__conn_close(struct wschat__conn *c, int code, const char *reason);

/* Closes the stream now (no handshake); code is reported to on_end. */
void wschat__conn_drop(struct wschat__conn *c, int code);

/* The periodic sweep: handshake, ping and close deadlines; trimming of
 * idle connections. */
void wschat__conn_sweep(struct wschat__conn *c, uint64_t now);

/* Dooms c with code (as wschat__conn_doom()) and drops its unsent
 * backlog now, so that its memory is given back at once (the server's
 * shedding of the largest queues). */
void wschat__conn_shed(struct wschat__conn *c, int code);

/* Writes what the socket takes now from c's queue, without waiting and
 * without closing anything (safe while a room is walked). */
void wschat__conn_write_now(struct wschat__conn *c);

/* Frees what c owns (from on_closed, before freeing c). */
void wschat__conn_release(struct wschat__conn *c);

/* The peer's address as text. */
void wschat__conn_peer(struct wschat__conn *c, char *out, size_t cap);

#endif
