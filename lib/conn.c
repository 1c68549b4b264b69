/*
 * conn: one client connection. See conn.h.
 *
 * Life of a connection: accept -> HTTP (the handshake module parses the
 * request; on_connect may refuse) -> OPEN (bytes go to ws, messages to the
 * echo or chat handling) -> CLOSING (close frame queued; the queue drains,
 * then shutdown(), then we wait for the peer's EOF or the close deadline)
 * -> DEAD (uv_close; freed in close_cb). on_disconnect runs exactly once,
 * when the client stops being OPEN (or is dropped), whichever comes first.
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "http.h"
#include "server.h"
#include "utf8.h"

struct wschat_message {
  const char *text;
  size_t len;
  size_t max; /* the server's max_message */
  int binary;
  char *replaced; /* owned, from wschat_message_replace() */
};

/* ---- the output queue ---- */

static int outq_push(struct wschat__outq *q, struct wschat__frame *f) {
  if (q->tail == q->cap) {
    if (q->head > 0) {
      memmove(q->v, q->v + q->head, (q->tail - q->head) * sizeof(*q->v));
      q->tail -= q->head;
      q->head = 0;
    } else {
      uint32_t cap = q->cap ? q->cap * 2 : 8;
      void *v = realloc(q->v, cap * sizeof(*q->v));
      if (v == NULL)
        return -1;
      q->v = v;
      q->cap = cap;
    }
  }
  q->v[q->tail++] = f;
  q->bytes += f->len;
  return 0;
}

/* Drops n written bytes from the head of the queue. */
static void outq_consume(struct wschat__outq *q, size_t n) {
  q->bytes -= n;
  while (n > 0) {
    struct wschat__frame *f = q->v[q->head];
    size_t rest = f->len - q->off;
    if (n < rest) {
      q->off += (uint32_t)n;
      break;
    }
    n -= rest;
    q->off = 0;
    q->head++;
    wschat__frame_unref(f);
  }
  if (q->head == q->tail)
    q->head = q->tail = 0;
}

/* Drops every frame that no pending write needs (a slow consumer's
 * backlog). A partly written frame is kept so the stream stays whole. */
static void outq_discard_unsent(struct wschat__outq *q) {
  size_t acc = 0;
  uint32_t i = q->head;
  while (i < q->tail && (acc < q->inflight || (i == q->head && q->off > 0))) {
    acc += q->v[i]->len - (i == q->head ? q->off : 0);
    i++;
  }
  for (uint32_t k = i; k < q->tail; k++)
    wschat__frame_unref(q->v[k]);
  q->tail = i;
  q->bytes = acc;
}

static void outq_free(struct wschat__outq *q) {
  for (uint32_t i = q->head; i < q->tail; i++)
    wschat__frame_unref(q->v[i]);
  free(q->v);
  memset(q, 0, sizeof(*q));
}

/* ---- lifecycle ---- */

static int push_copy(struct wschat_client *c, int opcode, const void *data,
                     size_t n, int code);

static void on_close_cb(uv_handle_t *h) {
  struct wschat_client *c = h->data;
  wschat__server_conn_closed(c->srv, c);
  outq_free(&c->q);
  wschat__ws_free(c);
  if (c->http) {
    wschat__http_free(c->http);
    free(c->http);
  }
  free(c->path);
  free(c->reject_reason);
  free(c);
}

/* Runs the disconnect side exactly once: chat leave, then the hook. */
static void end(struct wschat_client *c, int code) {
  if (c->ended || !c->connected)
    return;
  c->ended = 1;
  struct wschat_server *srv = c->srv;
  if (srv->mode == WSCHAT_MODE_CHAT)
    wschat__chat_detach(c, NULL);
  if (srv->on_disconnect)
    srv->on_disconnect(c, code, srv->on_disconnect_user);
}

void wschat__conn_drop(struct wschat_client *c, int code) {
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  c->state = WSCHAT__CONN_DEAD; /* hooks below see a closed client */
  end(c, code ? code : 1006);
  uv_close((uv_handle_t *)&c->tcp, on_close_cb);
}

static uint64_t now_ms(struct wschat_client *c) {
  return uv_now(c->srv->loop);
}

/* Leaves OPEN for CLOSING: from now on nothing new is delivered. */
static void begin_closing(struct wschat_client *c, int code) {
  c->state = WSCHAT__CONN_CLOSING;
  if (c->end_code == 0)
    c->end_code = (uint16_t)code;
  c->deadline_ms = now_ms(c) + c->srv->close_timeout_ms;
  end(c, code);
}

void wschat__conn_close(struct wschat_client *c, int code, const char *reason) {
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
  if (wschat__ws_close(c, code, reason) != 0) {
    wschat__conn_drop(c, 1011);
    return;
  }
  if (c->state == WSCHAT__CONN_OPEN)
    begin_closing(c, code);
}

/* After ws handled input or output: finish when both closes are done. */
static void after_ws(struct wschat_client *c) {
  if (c->state == WSCHAT__CONN_DEAD || !wschat__ws_read_done(c))
    return;
  if (c->state == WSCHAT__CONN_OPEN)
    begin_closing(c, c->end_code ? c->end_code : wschat__ws_code_sent(c));
  if (wschat__ws_close_sent(c) && !c->shut) {
    c->shut = 1;
    wschat__server_mark_dirty(c->srv, c);
  }
}

void wschat__conn_on_close(struct wschat_client *c, int code) {
  if (c->state == WSCHAT__CONN_OPEN) {
    c->end_code = (uint16_t)code;
    begin_closing(c, code);
  }
}

void wschat__conn_on_pong(struct wschat_client *c) { c->ping_out = 0; }

/* ---- writing ---- */

int wschat__conn_push_raw(struct wschat_client *c, struct wschat__frame *f) {
  if (outq_push(&c->q, f) != 0)
    return -1;
  if (!c->dirty)
    wschat__server_mark_dirty(c->srv, c);
  return 0;
}

/* Queues a copy of data as a frame of opcode (< 0: bytes as they are, e.g.
 * an HTTP response). On failure (n == 0 means the caller's formatting did
 * not fit, or no memory) the client is dropped with code; returns -1. */
static int push_copy(struct wschat_client *c, int opcode, const void *data,
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

void wschat__conn_deliver(struct wschat_client *c, struct wschat__frame *f) {
  /* No cap check here: within a loop turn a fast reader may be handed more
   * than the cap, which the kernel then takes at once. The flush judges. */
  if (c->state != WSCHAT__CONN_OPEN || c->doom)
    return;
  if (outq_push(&c->q, wschat__frame_ref(f)) != 0) {
    /* Out of memory: close at the flush, not here (we may be in the middle
     * of walking this client's room). */
    wschat__frame_unref(f);
    c->doom = 1011;
  }
  wschat__server_mark_dirty(c->srv, c);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  struct wschat_client *c = req->data;
  free(req);
  if (status < 0 && c->state != WSCHAT__CONN_DEAD)
    wschat__conn_drop(c, c->end_code);
}

/* The queue is empty and the close is done: send FIN, then wait for the
 * peer's EOF (read_cb) or the close deadline (sweep), so that unread input
 * never turns our close into a reset. */
static void start_shutdown(struct wschat_client *c) {
  if (c->shut == 2)
    return;
  c->shut = 2;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) {
    wschat__conn_drop(c, c->end_code);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    free(req);
    wschat__conn_drop(c, c->end_code);
  }
}

static size_t fill_iov(struct wschat_client *c, uv_buf_t *iov, size_t *nb) {
  struct wschat__outq *q = &c->q;
  size_t total = 0, n = 0;
  for (uint32_t i = q->head; i < q->tail && n < WSCHAT__IOV; i++) {
    struct wschat__frame *f = q->v[i];
    uint32_t off = i == q->head ? q->off : 0;
    iov[n++] = uv_buf_init((char *)f->data + off, f->len - off);
    total += f->len - off;
  }
  *nb = n;
  return total;
}

static void write_cb(uv_write_t *req, int status) {
  struct wschat_client *c = req->data;
  free(req);
  if (c->state == WSCHAT__CONN_DEAD)
    return; /* close_cb frees the queue */
  if (status < 0) {
    wschat__conn_drop(c, c->end_code);
    return;
  }
  outq_consume(&c->q, c->q.inflight);
  c->q.inflight = 0;
  wschat__conn_flush(c);
}

/* What the kernel would not take, beyond the frame being written (so one
 * message larger than the cap is not by itself a slow consumer). */
static size_t backlog(const struct wschat__outq *q) {
  if (q->head == q->tail)
    return 0;
  return q->bytes - (q->v[q->head]->len - q->off);
}

static void write_queue(struct wschat_client *c);

void wschat__conn_flush(struct wschat_client *c) {
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  if (c->q.inflight == 0)
    write_queue(c);
  if (c->state == WSCHAT__CONN_DEAD)
    return;
  if (c->state != WSCHAT__CONN_OPEN)
    return;
  if (!c->doom && backlog(&c->q) > c->srv->max_output)
    c->doom = 1008;
  if (c->doom) {
    /* Over the cap (or out of memory): drop the backlog (nobody else waits
     * for it) and close; the close frame waits behind what the kernel
     * already has. */
    outq_discard_unsent(&c->q);
    wschat__conn_close(c, c->doom,
                       c->doom == 1008 ? "slow consumer" : "out of memory");
    c->shut = 1; /* do not wait for a peer that does not read */
    if (c->q.inflight == 0)
      write_queue(c);
  }
}

/* One writev of everything queued (up to WSCHAT__IOV frames at a time);
 * what the socket does not take goes to uv_write and write_cb. */
static void write_queue(struct wschat_client *c) {
  uv_buf_t *iov = c->srv->iov;
  while (c->q.head < c->q.tail) {
    size_t nb, total = fill_iov(c, iov, &nb);
    int r = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)nb);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
      r = 0;
    if (r < 0) {
      wschat__conn_drop(c, c->end_code);
      return;
    }
    outq_consume(&c->q, (size_t)r);
    if ((size_t)r == total)
      continue;
    /* The socket is full: hand the rest to libuv and wait for write_cb. */
    total = fill_iov(c, iov, &nb);
    uv_write_t *req = malloc(sizeof(*req));
    if (req == NULL) {
      wschat__conn_drop(c, 1011);
      return;
    }
    req->data = c;
    if (uv_write(req, (uv_stream_t *)&c->tcp, iov, (unsigned)nb, write_cb) !=
        0) {
      free(req);
      wschat__conn_drop(c, c->end_code);
      return;
    }
    c->q.inflight = total;
    return;
  }
  if (c->shut)
    start_shutdown(c);
}

/* ---- reading ---- */

static void respond(struct wschat_client *c, int status, const char *body,
                    int head_only) {
  char buf[1024];
  size_t n = wschat__http_write_response(buf, sizeof(buf), status, body,
                                         head_only);
  if (push_copy(c, -1, buf, n, status) != 0)
    return;
  c->state = WSCHAT__CONN_CLOSING;
  c->end_code = (uint16_t)status;
  c->shut = 1;
  c->deadline_ms = now_ms(c) + c->srv->close_timeout_ms;
  end(c, status);
}

static void feed(struct wschat_client *c, uint8_t *data, size_t len) {
  if (wschat__ws_feed(c, data, len) != 0) {
    wschat__conn_drop(c, 1011);
    return;
  }
  after_ws(c);
}

static int save_path(struct wschat_client *c, const struct wschat__http *h) {
  size_t qlen = h->query ? h->query_len : 0;
  c->path = malloc(h->path_len + qlen + 2);
  if (c->path == NULL)
    return -1;
  memcpy(c->path, h->path, h->path_len);
  c->path[h->path_len] = '\0';
  if (qlen)
    memcpy(c->path + h->path_len + 1, h->query, qlen);
  c->path[h->path_len + 1 + qlen] = '\0';
  return 0;
}

static void open_ws(struct wschat_client *c) {
  struct wschat_server *srv = c->srv;
  char accept[29], buf[512];
  wschat__ws_accept(c->http->key, c->http->key_len, accept);
  size_t n = accept[0] ? wschat__http_write_101(buf, sizeof(buf), accept, NULL)
                       : 0;
  if (push_copy(c, -1, buf, n, 1011) != 0)
    return;
  wschat__http_free(c->http);
  free(c->http);
  c->http = NULL;
  c->state = WSCHAT__CONN_OPEN;
  c->deadline_ms = 0;
  if (c->reject_code) {
    wschat__conn_close(c, c->reject_code, c->reject_reason);
    return;
  }
  if (srv->mode == WSCHAT_MODE_CHAT && wschat__chat_open(c) != 0)
    wschat__conn_close(c, 1011, "out of memory");
}

static void plain_request(struct wschat_client *c) {
  const struct wschat__http *h = c->http;
  int head = h->is_head;
  if (h->path_len == 8 && memcmp(h->path, "/healthz", 8) == 0)
    respond(c, 200, "ok", head);
  else if (h->path_len == 1 && h->path[0] == '/')
    respond(c, 426,
            "this is a WebSocket chat server: connect with a WebSocket "
            "client (e.g. new WebSocket(\"ws://HOST:PORT/\"))",
            head);
  else
    respond(c, 404, "not found", head);
}

static void handshake(struct wschat_client *c, char *data, size_t len) {
  struct wschat_server *srv = c->srv;
  size_t used = wschat__http_feed(c->http, data, len);
  enum wschat__http_state st = wschat__http_state(c->http);
  if (st == WSCHAT__HTTP_INCOMPLETE)
    return;
  if (st == WSCHAT__HTTP_FAILED) {
    respond(c, c->http->status, c->http->error, 0);
    return;
  }
  if (!c->http->is_upgrade) {
    plain_request(c);
    return;
  }
  if (save_path(c, c->http) != 0) {
    respond(c, 500, "out of memory", 0);
    return;
  }
  c->connected = 1;
  if (srv->on_connect) {
    c->in_connect = 1;
    srv->on_connect(c, srv->on_connect_user);
    c->in_connect = 0;
  }
  if (c->state != WSCHAT__CONN_HTTP)
    return;
  if (srv->shutting_down) { /* on_connect started a shutdown */
    respond(c, 503, "server shutting down", 0);
    return;
  }
  if (c->reject_code >= 400 && c->reject_code <= 599) { /* HTTP status */
    respond(c, c->reject_code,
            c->reject_reason ? c->reject_reason : "connection refused", 0);
    return;
  }
  open_ws(c);
  if (c->state == WSCHAT__CONN_OPEN && used < len)
    feed(c, (uint8_t *)data + used, len - used);
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  struct wschat_client *c = h->data;
  /* One buffer for the whole server: input is handled before the next
   * read, and everything that must outlive the call is copied. */
  *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct wschat_client *c = s->data;
  if (n == 0 || c->state == WSCHAT__CONN_DEAD)
    return;
  if (n < 0) {
    wschat__conn_drop(c, c->state == WSCHAT__CONN_CLOSING ? c->end_code : 1006);
    return;
  }
  c->since_ms = now_ms(c);
  c->ping_out = 0; /* any byte from the peer proves it is alive */
  if (c->state == WSCHAT__CONN_OPEN)
    c->deadline_ms = 0;
  if (c->state == WSCHAT__CONN_HTTP)
    handshake(c, buf->base, (size_t)n);
  else if (c->state == WSCHAT__CONN_OPEN ||
           (c->state == WSCHAT__CONN_CLOSING && c->http == NULL))
    feed(c, (uint8_t *)buf->base, (size_t)n);
}

void wschat__conn_accept(struct wschat_server *srv, uv_stream_t *listener) {
  struct wschat_client *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return; /* the kernel keeps it queued; we retry on the next one */
  c->srv = srv;
  c->tcp.data = c;
  if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->state = WSCHAT__CONN_DEAD; /* until it is fully set up */
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
      wschat__server_add(srv, c) != 0) {
    c->srv = srv;
    uv_close((uv_handle_t *)&c->tcp, on_close_cb);
    return;
  }
  c->http = malloc(sizeof(*c->http));
  if (c->http == NULL) {
    uv_close((uv_handle_t *)&c->tcp, on_close_cb);
    return;
  }
  wschat__http_init(c->http, srv->max_header);
  c->state = WSCHAT__CONN_HTTP;
  c->id = ++srv->next_id;
  c->since_ms = uv_now(srv->loop);
  c->deadline_ms = c->since_ms + srv->handshake_timeout_ms;
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(c->peer, sizeof(c->peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
           ip, port);
  if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
    wschat__conn_drop(c, 1006);
}

/* ---- the sweep ---- */

void wschat__conn_sweep(struct wschat_client *c, uint64_t now) {
  struct wschat_server *srv = c->srv;
  switch (c->state) {
  case WSCHAT__CONN_HTTP:
    if (now >= c->deadline_ms)
      wschat__conn_drop(c, 1006);
    break;
  case WSCHAT__CONN_OPEN:
    if (c->ping_out) {
      if (now >= c->deadline_ms) {
        wschat__conn_close(c, 1011, "ping timeout");
        c->shut = 1; /* a silent peer will not answer our close either */
      }
    } else if (now - c->since_ms >=
               srv->ping_interval_ms -
                   (c->id * 2654435761u) % (srv->ping_interval_ms / 4 + 1)) {
      /* Each client pings a little early, by up to a quarter of the
       * interval (fixed per client), so that clients that joined together
       * are not all pinged in the same loop turn. */
      if (wschat__conn_push_raw(c, wschat__frame_ref(srv->ping_frame)) != 0) {
        wschat__frame_unref(srv->ping_frame);
        break;
      }
      c->ping_out = 1;
      c->deadline_ms = now + srv->ping_timeout_ms;
    }
    if (now - c->since_ms >= 1000 && c->q.head == c->q.tail && c->q.inflight == 0) {
      /* Idle: give back the wslay context and the queue array. */
      wschat__ws_trim(c);
      free(c->q.v);
      c->q.v = NULL;
      c->q.cap = c->q.head = c->q.tail = 0;
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

/* ---- on a message ---- */

void wschat__conn_on_message(struct wschat_client *c, int opcode,
                             const uint8_t *msg, size_t len) {
  struct wschat_server *srv = c->srv;
  if (c->state != WSCHAT__CONN_OPEN)
    return;
  struct wschat_message m = {(const char *)msg, len, srv->max_message,
                             opcode == WSCHAT__OP_BINARY, NULL};
  if (m.text == NULL)
    m.text = "";
  if (srv->on_message &&
      srv->on_message(c, &m, srv->on_message_user) == WSCHAT_DROP) {
    free(m.replaced);
    return;
  }
  if (c->state != WSCHAT__CONN_OPEN) {
    free(m.replaced);
    return;
  }
  if (srv->mode == WSCHAT_MODE_ECHO) {
    struct wschat__frame *f = wschat__frame_new(opcode, m.text, m.len);
    if (f == NULL) {
      wschat__conn_close(c, 1011, "out of memory");
    } else {
      wschat__conn_deliver(c, f);
      wschat__frame_unref(f);
    }
  } else if (m.binary) {
    wschat__chat_reply(c, "! binary messages are not supported");
  } else {
    wschat__chat_line(c, m.text, m.len);
  }
  free(m.replaced);
}

/* ---- public: messages ---- */

const char *wschat_message_text(const struct wschat_message *msg,
                                size_t *len) {
  if (len)
    *len = msg->len;
  return msg->text;
}

int wschat_message_is_binary(const struct wschat_message *msg) {
  return msg->binary;
}

int wschat_message_replace(struct wschat_message *msg, const char *text,
                           size_t len) {
  if (text == NULL && len > 0)
    return WSCHAT_EINVAL;
  if (len > msg->max)
    return WSCHAT_ETOOBIG;
  if (!msg->binary && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return WSCHAT_ENOMEM;
  if (len)
    memcpy(copy, text, len);
  copy[len] = '\0';
  free(msg->replaced);
  msg->replaced = copy;
  msg->text = copy;
  msg->len = len;
  return 0;
}

/* ---- public: clients ---- */

uint64_t wschat_client_id(const struct wschat_client *c) { return c->id; }
const char *wschat_client_name(const struct wschat_client *c) {
  return c->name;
}
const char *wschat_client_peer(const struct wschat_client *c) {
  return c->peer;
}
const char *wschat_client_path(const struct wschat_client *c) {
  return c->path ? c->path : "";
}
const char *wschat_client_query(const struct wschat_client *c) {
  return c->path ? c->path + strlen(c->path) + 1 : "";
}
void wschat_client_set_data(struct wschat_client *c, void *data) {
  c->user_data = data;
}
void *wschat_client_get_data(const struct wschat_client *c) {
  return c->user_data;
}

int wschat_client_header(const struct wschat_client *c, const char *name,
                         char *buf, size_t cap) {
  if (!c->in_connect || c->http == NULL || name == NULL || buf == NULL)
    return WSCHAT_EINVAL;
  const struct wschat__http_header *h = wschat__http_header(c->http, name);
  if (h == NULL)
    return WSCHAT_ENOTFOUND;
  if (h->value_len >= cap)
    return WSCHAT_EINVAL;
  memcpy(buf, h->value, h->value_len);
  buf[h->value_len] = '\0';
  return (int)h->value_len;
}

static int valid_close_code(int code) {
  return code == 1000 || code == 1001 || code == 1008 || code == 1011 ||
         (code >= 3000 && code <= 4999);
}

int wschat_client_reject(struct wschat_client *c, int code,
                         const char *reason) {
  if (!c->in_connect)
    return WSCHAT_ESTATE;
  if (!(code >= 400 && code <= 599) && !valid_close_code(code))
    return WSCHAT_EINVAL;
  if (reason && (strlen(reason) > 123 ||
                 !wschat__utf8_valid(reason, strlen(reason))))
    return WSCHAT_EINVAL;
  char *copy = NULL;
  if (reason && (copy = strdup(reason)) == NULL)
    return WSCHAT_ENOMEM;
  free(c->reject_reason);
  c->reject_reason = copy;
  c->reject_code = (uint16_t)code;
  return 0;
}

static int send_frame(struct wschat_client *c, int opcode, const void *data,
                      size_t len) {
  if (c->state != WSCHAT__CONN_OPEN)
    return WSCHAT_ECLOSED;
  if (data == NULL && len > 0)
    return WSCHAT_EINVAL;
  struct wschat__frame *f = wschat__frame_new(opcode, data, len);
  if (f == NULL)
    return WSCHAT_ENOMEM;
  wschat__conn_deliver(c, f);
  wschat__frame_unref(f);
  return 0;
}

int wschat_client_send(struct wschat_client *c, const char *text, size_t len) {
  if (text && !wschat__utf8_valid(text, len))
    return WSCHAT_EINVAL;
  return send_frame(c, WSCHAT__OP_TEXT, text, len);
}

int wschat_client_send_binary(struct wschat_client *c, const void *data,
                              size_t len) {
  return send_frame(c, WSCHAT__OP_BINARY, data, len);
}

int wschat_client_close(struct wschat_client *c, int code,
                        const char *reason) {
  if (!valid_close_code(code) ||
      (reason && (strlen(reason) > 123 ||
                  !wschat__utf8_valid(reason, strlen(reason)))))
    return WSCHAT_EINVAL;
  if (c->state == WSCHAT__CONN_CLOSING || c->state == WSCHAT__CONN_DEAD)
    return WSCHAT_ECLOSED;
  if (c->in_connect)
    return wschat_client_reject(c, code, reason);
  wschat__conn_close(c, code, reason);
  return 0;
}
