/*
 * conn: one connection. See conn.h.
 *
 * Life of a connection: accept -> HTTP (the request is parsed; the layer
 * above answers it, or defers and answers later) -> OPEN (bytes go to ws,
 * whole messages up) -> CLOSING (close frame queued; the queue drains,
 * then shutdown(), then we wait for the peer's EOF or the close deadline)
 * -> DEAD (the stream closes; freed in on_closed). on_end runs exactly
 * once for a connection marked notify_end, when it stops being OPEN (or is
 * refused or dropped), whichever comes first.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "http.h"
#include "stream_tls.h"

static const struct wschat__stream_cbs stream_cbs;
static const struct wschat__ws_cbs ws_cbs;

/* The request while it is read, and the input that came after it while a
 * decision is deferred: allocated at accept, freed once the WebSocket is
 * open, so that an open connection carries none of it. */
struct req {
  struct wschat__http http; /* first: c->http points here */
  char *held;               /* owned */
  size_t held_len;
};

static struct req *R(struct wschat__conn *c) { return (struct req *)c->http; }

/* The stream is the first member of the conn. */
static struct wschat__conn *C(struct wschat__stream *s) {
  return (struct wschat__conn *)s;
}

static void free_req(struct wschat__conn *c) {
  if (c->http == NULL)
    return;
  wschat__http_free(c->http);
  free(R(c)->held);
  free(R(c));
  c->http = NULL;
}

static struct wschat__stream *S(struct wschat__conn *c) {
  return &c->stream.base;
}

static uint64_t now_ms(struct wschat__conn *c) { return uv_now(c->env->loop); }

static void mark_dirty(struct wschat__conn *c) {
  if (!c->dirty)
    c->env->cbs->mark_dirty(c);
}

/* Keeps the server's total of queued output in step with a change of c's
 * queue, whose cost was before (unsigned arithmetic: either direction). */
static void settle(struct wschat__conn *c, size_t before) {
  *c->env->queued_total -= before - wschat__outq_cost(&c->q);
}

/* More than this many pongs queued within one loop turn, and the peer
 * gets only the latest of the pings that follow until the flush. */
#define PONG_BURST 16

/* ---- lifecycle ---- */

void wschat__conn_release(struct wschat__conn *c) {
  *c->env->queued_total -= wschat__outq_cost(&c->q);
  wschat__outq_free(&c->q);
  wschat__frame_unref(c->pong);
  wschat__frame_unref(c->pong_next);
  c->pong = c->pong_next = NULL;
  wschat__ws_free(&c->ws);
  free_req(c);
}

/* Runs the end exactly once, if it is owed. */
static void end(struct wschat__conn *c, int code) {
  if (c->ended || !c->notify_end)
    return;
  c->ended = 1;
  if (c->upgraded) /* else an HTTP answer: counted as a refusal or not */
    wschat__metrics_close(c->env->metrics, code);
  c->env->cbs->on_end(c, code);
}

void wschat__conn_drop(struct wschat__conn *c, int code) {
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  c->state = WSCHAT__CONN_DEAD; /* hooks below see a closed client */
  end(c, code ? code : 1006);
  S(c)->ops->close(S(c));
}

/* Leaves OPEN for CLOSING: from now on nothing new is delivered. */
static void begin_closing(struct wschat__conn *c, int code) {
  c->state = WSCHAT__CONN_CLOSING;
  if (c->end_code == 0)
    c->end_code = (uint16_t)code;
  c->deadline_ms = now_ms(c) + c->env->close_timeout_ms;
  end(c, code);
}

static int push_copy(struct wschat__conn *c, int opcode, const void *data,
                     size_t n, int code);

void wschat__conn_close(struct wschat__conn *c, int code, const char *reason) {
  if (c->state == WSCHAT__CONN_HTTP) {
    wschat__conn_drop(c, code);
    return;
  }
  if (c->state != WSCHAT__CONN_OPEN)
    return;
  if (c->ws.ctx == NULL) {
    /* Idle (no wslay context): send the close frame ourselves rather than
     * build a context (about 9 KB) for one frame. Input is discarded from
     * now on; FIN follows the frame, then we wait for EOF or the deadline.
     * A shutdown of 19,000 idle clients needs no memory this way. */
    uint8_t payload[125];
    size_t n = wschat__ws_close_payload(payload, code, reason);
    if (push_copy(c, WSCHAT__OP_CLOSE, payload, n, 1011) != 0)
      return;
    c->ws.failed = 1;
    c->shut = 1;
    begin_closing(c, code);
    return;
  }
  if (wschat__ws_close(&c->ws, &ws_cbs, c, code, reason,
                       c->env->max_message) != 0) {
    wschat__conn_drop(c, 1011);
    return;
  }
  if (c->state == WSCHAT__CONN_OPEN)
    begin_closing(c, code);
}

/* After ws handled input or output: finish when both closes are done. */
static void after_ws(struct wschat__conn *c) {
  if (c->state == WSCHAT__CONN_DEAD || !wschat__ws_read_done(&c->ws))
    return;
  if (c->state == WSCHAT__CONN_OPEN)
    begin_closing(c, c->end_code ? c->end_code : wschat__ws_code_sent(&c->ws));
  if (wschat__ws_close_sent(&c->ws) && !c->shut) {
    c->shut = 1;
    mark_dirty(c);
  }
}

/* ---- from ws ---- */

static void ws_on_message(void *user, int opcode, const uint8_t *msg,
                          size_t len) {
  struct wschat__conn *c = user;
  if (c->state == WSCHAT__CONN_OPEN) {
    c->env->metrics->msgs_in++;
    c->env->cbs->on_message(c, opcode, msg, len);
  }
}

static void ws_on_close(void *user, int code) {
  struct wschat__conn *c = user;
  if (c->state == WSCHAT__CONN_OPEN) {
    c->end_code = (uint16_t)code;
    begin_closing(c, code);
  }
}

static void ws_on_fail(void *user, int code) {
  struct wschat__conn *c = user;
  if (c->end_code == 0)
    c->end_code = (uint16_t)code;
}

static void ws_on_pong(void *user) { ((struct wschat__conn *)user)->ping_out = 0; }

/* Queues f as the pong (takes the caller's reference). */
static void queue_pong(struct wschat__conn *c, struct wschat__frame *f) {
  if (wschat__conn_push_raw(c, f) != 0) {
    wschat__frame_unref(f);
    wschat__conn_doom(c, 1011);
    return;
  }
  wschat__frame_unref(c->pong);
  c->pong = wschat__frame_ref(f); /* ours: refs > 1 while it is queued */
  if (c->pong_burst < 255)
    c->pong_burst++;
}

/* A ping: answered at once, unless the last pong is still queued and
 * either stayed unsent through a flush (the peer does not read) or this
 * turn has queued PONG_BURST already; then the answer waits in
 * c->pong_next, replaced by each later ping, until the last pong is
 * written (RFC 6455, 5.5.3: answering only the latest ping is allowed). */
static void ws_on_ping(void *user, const uint8_t *payload, size_t len) {
  struct wschat__conn *c = user;
  if (c->state != WSCHAT__CONN_OPEN || c->doom)
    return; /* nothing after our close frame */
  struct wschat__frame *f = wschat__frame_new(WSCHAT__OP_PONG, payload, len);
  if (f == NULL) {
    wschat__conn_doom(c, 1011);
    return;
  }
  int waiting = c->pong != NULL && c->pong->refs > 1;
  wschat__frame_unref(c->pong_next); /* superseded either way */
  c->pong_next = NULL;
  if (waiting && (c->pong_stuck || c->pong_burst >= PONG_BURST)) {
    c->pong_next = f;
    return;
  }
  queue_pong(c, f);
}

/* The waiting answer goes once the last pong is written, if c is still
 * open (never after our close frame). */
static void pong_promote(struct wschat__conn *c) {
  if (c->pong_next == NULL || c->pong->refs > 1)
    return;
  struct wschat__frame *f = c->pong_next;
  c->pong_next = NULL;
  if (c->state == WSCHAT__CONN_OPEN && !c->doom)
    queue_pong(c, f);
  else
    wschat__frame_unref(f);
}

static int ws_push(void *user, struct wschat__frame *f) {
  return wschat__conn_push_raw(user, f);
}

/* A doomed connection is read no further: nothing more from the read
 * buffer at hand is handled either. */
static int ws_is_open(void *user) {
  struct wschat__conn *c = user;
  return c->state == WSCHAT__CONN_OPEN && !c->doom;
}

static const struct wschat__ws_cbs ws_cbs = {
    ws_on_message, ws_on_close, ws_on_fail, ws_on_pong,
    ws_on_ping,    ws_push,     ws_is_open,
};

/* ---- writing ---- */

int wschat__conn_push_raw(struct wschat__conn *c, struct wschat__frame *f) {
  if (wschat__outq_push(&c->q, f) != 0)
    return -1;
  *c->env->queued_total += f->len + WSCHAT__OUTQ_SLOT;
  mark_dirty(c);
  return 0;
}

/* Queues a copy of data as a frame of opcode (< 0: bytes as they are, e.g.
 * an HTTP response). On failure (n == 0 means the caller's formatting did
 * not fit, or no memory) the connection is dropped with code; returns -1. */
static int push_copy(struct wschat__conn *c, int opcode, const void *data,
                     size_t n, int code) {
  struct wschat__frame *f =
      n > 0 || opcode >= 0 ? wschat__frame_new(opcode, data, n) : NULL;
  if (f == NULL || wschat__conn_push_raw(c, f) != 0) {
    wschat__frame_unref(f);
    wschat__conn_drop(c, code);
    return -1;
  }
  return 0;
}

void wschat__conn_doom(struct wschat__conn *c, int code) {
  if (c->state != WSCHAT__CONN_OPEN || c->doom)
    return;
  c->doom = (uint16_t)code;
  if (code == 1008) /* a doom is 1008 only for a slow consumer */
    c->env->metrics->slow_consumer++;
  /* Read no more (the rest of the read at hand is dropped too, see
   * ws_is_open): a client over its cap gets no more chance to add. */
  S(c)->ops->read_stop(S(c));
  mark_dirty(c);
}

void wschat__conn_shed(struct wschat__conn *c, int code) {
  if (c->state != WSCHAT__CONN_OPEN || c->doom)
    return;
  wschat__conn_doom(c, code);
  size_t before = wschat__outq_cost(&c->q);
  wschat__outq_discard_unsent(&c->q);
  settle(c, before);
}

void wschat__conn_deliver_failed(struct wschat__conn *c,
                                 struct wschat__frame *f) {
  /* Out of memory: close at the flush, not here (we may be in the middle
   * of walking this client's room). */
  wschat__frame_unref(f); /* the reference taken for the queue */
  wschat__conn_doom(c, 1011);
}

void wschat__conn_write_now(struct wschat__conn *c) {
  if (c->state == WSCHAT__CONN_DEAD || c->q.inflight != 0)
    return; /* a background write is pending: the socket is full */
  struct wschat__stream *s = S(c);
  uv_buf_t *iov = c->env->iov;
  while (!wschat__outq_empty(&c->q)) {
    size_t nb, total = wschat__outq_iov(&c->q, iov, c->env->iov_max, &nb);
    int r = s->ops->try_write(s, iov, (unsigned)nb);
    if (r <= 0)
      return; /* full; or an error, which the flush meets again */
    size_t before = wschat__outq_cost(&c->q);
    c->env->metrics->bytes_out += (size_t)r;
    wschat__outq_consume(&c->q, (size_t)r);
    settle(c, before);
    if ((size_t)r < total)
      return;
  }
}

void wschat__conn_over_cap(struct wschat__conn *c) {
  const struct wschat__conn_env *env = c->env;
  if (wschat__outq_cost(&c->q) > env->max_output) {
    wschat__conn_write_now(c);
    if (wschat__outq_backlog_cost(&c->q) > env->max_output)
      wschat__conn_doom(c, 1008);
  }
  if (*env->queued_total > env->max_output_total)
    env->cbs->over_total(c);
}

/* The queue is empty and the close is done: send FIN, then wait for the
 * peer's EOF (on_read) or the close deadline (sweep), so that unread input
 * never turns our close into a reset. */
static void start_shutdown(struct wschat__conn *c) {
  if (c->shut == 2)
    return;
  c->shut = 2;
  if (S(c)->ops->shutdown(S(c)) != 0)
    wschat__conn_drop(c, c->end_code);
}

static void write_queue(struct wschat__conn *c);

static void on_written(struct wschat__stream *s, int status) {
  struct wschat__conn *c = C(s);
  if (c->state == WSCHAT__CONN_DEAD)
    return; /* on_closed frees the queue */
  if (status < 0) {
    wschat__conn_drop(c, c->end_code);
    return;
  }
  size_t before = wschat__outq_cost(&c->q);
  c->env->metrics->bytes_out += c->q.inflight;
  wschat__outq_consume(&c->q, c->q.inflight);
  c->q.inflight = 0;
  settle(c, before);
  wschat__conn_flush(c);
}

static void on_shutdown(struct wschat__stream *s, int status) {
  struct wschat__conn *c = C(s);
  if (status < 0 && c->state != WSCHAT__CONN_DEAD)
    wschat__conn_drop(c, c->end_code);
}

void wschat__conn_flush(struct wschat__conn *c) {
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  if (c->q.inflight == 0)
    write_queue(c);
  c->pong_burst = 0;
  c->pong_stuck = c->pong != NULL && c->pong->refs > 1;
  if (c->state != WSCHAT__CONN_OPEN)
    return;
  if (!c->doom &&
      wschat__outq_backlog_cost(&c->q) > c->env->max_output)
    wschat__conn_doom(c, 1008);
  if (c->doom) {
    /* Over the cap (or out of memory): drop the backlog (nobody else waits
     * for it) and close; the close frame waits behind what the kernel
     * already has. */
    size_t before = wschat__outq_cost(&c->q);
    wschat__outq_discard_unsent(&c->q);
    settle(c, before);
    wschat__conn_close(c, c->doom,
                       c->doom == 1008 ? "slow consumer" : "out of memory");
    c->shut = 1; /* do not wait for a peer that does not read */
    if (c->state == WSCHAT__CONN_CLOSING)
      S(c)->ops->read_start(S(c)); /* again: to see the peer's close */
    if (c->q.inflight == 0 && c->state != WSCHAT__CONN_DEAD)
      write_queue(c);
  }
}

/* One writev of everything queued (up to iov_max frames at a time); what
 * the socket does not take is written in the background. */
static void write_queue(struct wschat__conn *c) {
  uv_buf_t *iov = c->env->iov;
  struct wschat__stream *s = S(c);
  for (;;) {
    pong_promote(c);
    if (wschat__outq_empty(&c->q))
      break;
    size_t nb, total = wschat__outq_iov(&c->q, iov, c->env->iov_max, &nb);
    uv_buf_t one;
    const uv_buf_t *bufs = iov;
    if (nb > 1 && total <= c->env->gather_len) {
      /* Many small frames (a busy room: one per message of the turn):
       * gathered into one buffer, the kernel copies one segment instead of
       * walking many. The frames stay shared and queued; only the bytes
       * handed to this one write are copied, into a buffer of the server. */
      char *at = c->env->gather;
      for (size_t i = 0; i < nb; i++) {
        memcpy(at, iov[i].base, iov[i].len);
        at += iov[i].len;
      }
      one = uv_buf_init(c->env->gather, (unsigned)total);
      bufs = &one;
      nb = 1;
    }
    int r = s->ops->try_write(s, bufs, (unsigned)nb);
    if (r < 0) {
      wschat__conn_drop(c, c->end_code);
      return;
    }
    size_t before = wschat__outq_cost(&c->q);
    c->env->metrics->bytes_out += (size_t)r;
    wschat__outq_consume(&c->q, (size_t)r);
    settle(c, before);
    if ((size_t)r == total)
      continue;
    /* The socket is full: the rest goes in the background. */
    total = wschat__outq_iov(&c->q, iov, c->env->iov_max, &nb);
    if (s->ops->write(s, iov, (unsigned)nb) != 0) {
      wschat__conn_drop(c, c->end_code ? c->end_code : 1011);
      return;
    }
    c->q.inflight = total;
    return;
  }
  if (c->shut)
    start_shutdown(c);
}

/* ---- answering the request ---- */

void wschat__conn_respond(struct wschat__conn *c, int status,
                          const char *bytes, size_t n) {
  if (c->state != WSCHAT__CONN_HTTP)
    return;
  if (push_copy(c, -1, bytes, n, status) != 0)
    return;
  if (c->held_back)
    S(c)->ops->read_start(S(c)); /* to see the peer's EOF */
  c->held_back = 0;
  c->state = WSCHAT__CONN_CLOSING;
  c->end_code = (uint16_t)status;
  c->shut = 1;
  c->deadline_ms = now_ms(c) + c->env->close_timeout_ms;
  end(c, status);
}

static void feed(struct wschat__conn *c, uint8_t *data, size_t len) {
  if (wschat__ws_feed(&c->ws, &ws_cbs, c, data, len, c->env->max_message) !=
      0) {
    wschat__conn_drop(c, 1011);
    return;
  }
  /* The clock of a message that has begun and not ended (the sweep
   * closes it after message_timeout_ms). */
  if (wschat__ws_scan_between_messages(&c->ws.scan))
    c->msg_since_ms = 0;
  else if (c->msg_since_ms == 0)
    c->msg_since_ms = now_ms(c) ? now_ms(c) : 1; /* 0 means "between" */
  after_ws(c);
}

int wschat__conn_upgrade(struct wschat__conn *c, const char *bytes,
                         size_t n) {
  if (c->state != WSCHAT__CONN_HTTP)
    return -1;
  if (push_copy(c, -1, bytes, n, 1011) != 0)
    return -1;
  if (R(c)->held_len == 0)
    free_req(c); /* else wschat__conn_resume() feeds the input, then frees */
  c->state = WSCHAT__CONN_OPEN;
  c->upgraded = 1;
  c->env->metrics->upgraded++;
  c->opened_ms = now_ms(c);
  c->env->cbs->on_open(c);
  c->deadline_ms = 0;
  if (c->held_back) {
    c->held_back = 0;
    if (S(c)->ops->read_start(S(c)) != 0) {
      wschat__conn_drop(c, 1006);
      return -1;
    }
  }
  return 0;
}

/* After the upper layer saw the request: input that came with it goes to
 * the WebSocket now, or waits for a deferred decision. */
static void after_request(struct wschat__conn *c, char *rest, size_t len) {
  if (c->state == WSCHAT__CONN_HTTP) { /* deferred */
    if (!c->held_back) {
      c->held_back = 1;
      S(c)->ops->read_stop(S(c));
    }
    struct req *r = R(c);
    if (len > 0) {
      char *h = realloc(r->held, r->held_len + len);
      if (h == NULL) {
        wschat__conn_drop(c, 1011);
        return;
      }
      memcpy(h + r->held_len, rest, len);
      r->held = h;
      r->held_len += len;
    }
    return;
  }
  if (len > 0 && c->state == WSCHAT__CONN_OPEN)
    feed(c, (uint8_t *)rest, len);
}

void wschat__conn_resume(struct wschat__conn *c) {
  if (c->http == NULL || !c->upgraded)
    return; /* not upgraded (an HTTP answer keeps its request to the end) */
  char *h = R(c)->held;
  size_t hl = R(c)->held_len;
  R(c)->held = NULL;
  free_req(c);
  if (hl > 0 && c->state == WSCHAT__CONN_OPEN)
    feed(c, (uint8_t *)h, hl);
  free(h);
}

static void handshake(struct wschat__conn *c, char *data, size_t len) {
  size_t used = wschat__http_feed(c->http, data, len);
  if (wschat__http_state(c->http) == WSCHAT__HTTP_INCOMPLETE)
    return;
  c->env->cbs->on_request(c);
  after_request(c, data + used, len - used);
}

/* ---- reading ---- */

static void alloc_buf(struct wschat__stream *s, uv_buf_t *buf) {
  struct wschat__conn *c = C(s);
  /* One buffer for the whole server: input is handled before the next
   * read, and everything that must outlive the call is copied. */
  *buf = uv_buf_init(c->env->rbuf, (unsigned)c->env->rbuf_len);
}

static void on_read(struct wschat__stream *s, ssize_t n, char *data) {
  struct wschat__conn *c = C(s);
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  if (n < 0) {
    wschat__conn_drop(c, c->state == WSCHAT__CONN_CLOSING ? c->end_code : 1006);
    return;
  }
  c->env->metrics->bytes_in += (size_t)n;
  c->since_ms = now_ms(c);
  c->ping_out = 0; /* any byte from the peer proves it is alive */
  if (c->state == WSCHAT__CONN_OPEN)
    c->deadline_ms = 0;
  if (c->state == WSCHAT__CONN_HTTP) {
    if (c->held_back) /* a deferred request: hold (read stops soon) */
      after_request(c, data, (size_t)n);
    else
      handshake(c, data, (size_t)n);
  } else if (c->state == WSCHAT__CONN_OPEN ||
             (c->state == WSCHAT__CONN_CLOSING && c->upgraded)) {
    feed(c, (uint8_t *)data, (size_t)n);
  }
}

static void on_closed(struct wschat__stream *s) {
  struct wschat__conn *c = C(s);
  c->env->cbs->on_closed(c);
}

static const struct wschat__stream_cbs stream_cbs = {
    alloc_buf, on_read, on_written, on_shutdown, on_closed,
};

int wschat__conn_accept(struct wschat__conn *c,
                        const struct wschat__conn_env *env,
                        uv_stream_t *listener, int *closing) {
  c->env = env;
  c->state = WSCHAT__CONN_DEAD; /* until it is fully set up */
  *closing = 0;
  int r = wschat__stream_tcp_accept(&c->stream, env->loop, listener,
                                    &stream_cbs);
  if (r != 0) {
    *closing = c->stream.tcp.type == UV_TCP; /* the handle exists */
    return -1;
  }
  if (env->tls != NULL &&
      wschat__stream_tls_wrap(&c->stream, env->tls, &stream_cbs) != 0) {
    *closing = 1;
    S(c)->ops->close(S(c));
    return -1;
  }
  struct req *rq = calloc(1, sizeof(*rq));
  c->http = rq ? &rq->http : NULL;
  if (c->http == NULL) {
    *closing = 1;
    S(c)->ops->close(S(c));
    return -1;
  }
  wschat__http_init(c->http, env->max_header);
  c->state = WSCHAT__CONN_HTTP;
  c->since_ms = uv_now(env->loop);
  c->deadline_ms = c->since_ms + env->handshake_timeout_ms;
  if (S(c)->ops->read_start(S(c)) != 0) {
    *closing = 1;
    wschat__conn_drop(c, 1006);
    return -1;
  }
  return 0;
}

void wschat__conn_peer(struct wschat__conn *c, char *out, size_t cap) {
  S(c)->ops->peer(S(c), out, cap);
}

/* ---- the sweep ---- */

void wschat__conn_sweep(struct wschat__conn *c, uint64_t now) {
  const struct wschat__conn_env *env = c->env;
  switch (c->state) {
  case WSCHAT__CONN_HTTP:
    if (now < c->deadline_ms)
      break;
    if (c->notify_end) { /* on_connect deferred and nothing was decided */
      char buf[256];
      size_t n = wschat__http_write_response(
          buf, sizeof(buf), 503, "no decision in time, try again", 0);
      wschat__conn_respond(c, 503, buf, n);
    } else {
      wschat__conn_drop(c, 1006);
    }
    break;
  case WSCHAT__CONN_OPEN:
    if (c->msg_since_ms && env->message_timeout_ms &&
        now >= c->msg_since_ms + env->message_timeout_ms) {
      /* A message trickling in (kept alive by pings or single bytes)
       * holds its buffer: it has message_timeout_ms to arrive whole. */
      wschat__conn_close(c, 1008, "message took too long");
      c->shut = 1;
      break;
    }
    if (c->ping_out) {
      if (now >= c->deadline_ms) {
        wschat__conn_close(c, 1011, "ping timeout");
        c->shut = 1; /* a silent peer will not answer our close either */
      }
    } else if (now - c->since_ms >=
               env->ping_interval_ms -
                   (((uintptr_t)c >> 4) * 2654435761u) %
                       (env->ping_interval_ms / 4 + 1)) {
      /* Each client pings a little early, by up to a quarter of the
       * interval (fixed per client), so that clients that joined together
       * are not all pinged in the same loop turn. */
      if (wschat__conn_push_raw(c, wschat__frame_ref(env->ping_frame)) != 0) {
        wschat__frame_unref(env->ping_frame);
        break;
      }
      c->ping_out = 1;
      c->deadline_ms = now + env->ping_timeout_ms;
    }
    if (now - c->since_ms >= 1000 && wschat__outq_empty(&c->q) &&
        c->q.inflight == 0) {
      /* Idle: give back the wslay context and the queue array. */
      wschat__ws_trim(&c->ws);
      wschat__outq_trim(&c->q);
      if (c->pong != NULL && c->pong->refs == 1 && c->pong_next == NULL) {
        wschat__frame_unref(c->pong);
        c->pong = NULL;
      }
    }
    break;
  case WSCHAT__CONN_CLOSING:
    if (c->deadline_ms && now >= c->deadline_ms)
      wschat__conn_drop(c, c->end_code);
    break;
  default:
    break;
  }
}
