/*
 * ws: wslay glue, and the loop of the fast path. See ws.h.
 *
 * Bytes from the socket are first walked by the scanner (ws_codec.c), which
 * only reads frame headers (payload bytes are skipped over, never copied),
 * then handed to wslay through recv_cb. wslay's output (pongs, close frames) comes back
 * through send_cb and is queued like any other frame, so the order on the
 * wire is the order of the calls.
 * wslay never gets a frame header the scanner has not judged whole, nor a
 * close frame in pieces (w->held keeps those bytes meanwhile): it would
 * fail a bad header from its first bytes without a reason, and it checks a
 * close reason's UTF-8 right only in one read. So a stream gets the same
 * verdict whether it comes whole or a byte at a time.
 */
#include "ws.h"

#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "frame.h"
#include "utf8.h"
#include "ws_codec.h"

struct wschat__ws_call {
  const struct wschat__ws_cbs *cbs;
  void *user;
  const uint8_t *in; /* bytes being fed (not owned) */
  size_t in_len;
  const uint8_t *in2; /* and after them (not owned) */
  size_t in2_len;
  size_t max_message; /* the feed's limit (inflation's bound too) */
};

/* Makes call current for the length of a feed or close; calls nest (a
 * message's handler may close the connection). */
static struct wschat__ws_call *enter(struct wschat__ws *w,
                                     struct wschat__ws_call *call,
                                     const struct wschat__ws_cbs *cbs,
                                     void *user) {
  struct wschat__ws_call *outer = w->call;
  call->cbs = cbs;
  call->user = user;
  call->in = NULL;
  call->in_len = 0;
  call->in2 = NULL;
  call->in2_len = 0;
  call->max_message = 0;
  w->call = call;
  return outer;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user) {
  (void)flags;
  struct wschat__ws *w = user;
  struct wschat__ws_call *k = w->call;
  if (k->in_len == 0 && k->in2_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  /* both segments in one read: a close frame held back, then the rest of
   * it, reach wslay as one chunk */
  size_t n = len < k->in_len ? len : k->in_len;
  if (n) /* k->in may be NULL when only the held bytes are left */
    memcpy(buf, k->in, n);
  k->in += n;
  k->in_len -= n;
  size_t m = len - n < k->in2_len ? len - n : k->in2_len;
  if (m)
    memcpy(buf + n, k->in2, m);
  k->in2 += m;
  k->in2_len -= m;
  return (ssize_t)(n + m);
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user) {
  (void)flags;
  struct wschat__ws *w = user;
  if (w->swallow)
    return (ssize_t)len; /* wslay's pong: the connection sends its own */
  struct wschat__frame *f = wschat__frame_new(-1, data, len);
  if (f == NULL || w->call->cbs->push(w->call->user, f) != 0) {
    wschat__frame_unref(f);
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *user) {
  (void)ctx;
  struct wschat__ws *w = user;
  w->frame_ctrl = (a->opcode & 8) != 0;
  w->frame_fin = a->fin;
  w->frame_first = a->opcode != WSLAY_CONTINUATION_FRAME;
  w->frame_len = a->payload_length;
  w->frame_off = 0;
  if (!w->frame_ctrl && w->frame_first)
    w->buf_len = 0;
}

/* Data bytes of a data frame (wslay keeps control frames itself). A
 * one-frame message that arrives in one chunk is used where it lies, in
 * wslay's input buffer, until on_msg_recv (no copy, no allocation); any
 * other goes into the connection's reusable buffer. The scanner has already
 * refused anything over max_message, so the buffer stays within it. */
static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *a,
                           void *user) {
  struct wschat__ws *w = user;
  if (w->frame_ctrl || w->oom)
    return;
  if (w->frame_first && w->frame_fin && w->frame_off == 0 &&
      a->data_length == w->frame_len) {
    w->direct = a->data;
    w->direct_len = a->data_length;
    w->frame_off = a->data_length;
    return;
  }
  if (w->buf_len + a->data_length > w->buf_cap) {
    size_t cap = w->buf_cap ? w->buf_cap : 256;
    while (cap < w->buf_len + a->data_length)
      cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (b == NULL) {
      /* wslay still completes this message: on_msg_recv must not deliver
       * it, and ws_feed drops the connection. */
      wslay_event_shutdown_read(ctx);
      w->oom = 1;
      return;
    }
    w->buf = b;
    w->buf_cap = cap;
  }
  if (a->data_length)
    memcpy(w->buf + w->buf_len, a->data, a->data_length);
  w->buf_len += a->data_length;
  w->frame_off += a->data_length;
}

/* Inflates a compressed message in place of *msg (into the server's
 * buffer), checks it as UTF-8 if text. 0, or a close code with *why. */
static int inflate_message(struct wschat__ws *w, int opcode,
                           const uint8_t **msg, size_t *len, size_t max,
                           const char **why) {
  int code = wschat__deflate_inflate(w->z, *msg, *len, max, msg, len, why);
  if (code == 0 && opcode == WSLAY_TEXT_FRAME &&
      !wschat__utf8_valid((const char *)*msg, *len)) {
    code = 1007;
    *why = "invalid UTF-8";
  }
  return code;
}

/* Fails the connection from inside wslay's read: it reads no further. */
static void fail(wslay_event_context_ptr ctx, struct wschat__ws *w, int code,
                 const char *why) {
  wslay_event_shutdown_read(ctx);
  wslay_event_queue_close(ctx, (uint16_t)code, (const uint8_t *)why,
                          strlen(why));
  w->call->cbs->on_fail(w->call->user, code);
}

static void on_msg_recv(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_msg_recv_arg *arg,
                        void *user) {
  struct wschat__ws *w = user;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME: {
    if (w->oom)
      break;
    const uint8_t *msg = w->direct ? w->direct : w->buf;
    size_t len = w->direct ? w->direct_len : w->buf_len;
    w->direct = NULL;
    w->buf_len = 0;
    if ((arg->rsv & WSLAY_RSV1_BIT) && w->z != NULL) {
      const char *why;
      int code = inflate_message(w, arg->opcode, &msg, &len,
                                 w->call->max_message, &why);
      if (code != 0) {
        fail(ctx, w, code, why);
        break;
      }
    }
    if (w->call->cbs->is_open(w->call->user))
      w->call->cbs->on_message(w->call->user, arg->opcode, msg, len);
    break;
  }
  case WSLAY_CONNECTION_CLOSE:
    w->call->cbs->on_close(w->call->user,
                           arg->status_code ? arg->status_code : 1005);
    break;
  case WSLAY_PONG:
    w->call->cbs->on_pong(w->call->user);
    break;
  case WSLAY_PING:
    /* wslay has queued a pong (unless our close is queued): let it go
     * nowhere, and let the connection answer, at once (before anything
     * this same read produces after the ping) or, if an earlier pong is
     * still unsent, by replacing it: a peer that pings and never reads
     * holds at most two small frames, not one per ping. */
    w->swallow = 1;
    wslay_event_send(ctx);
    w->swallow = 0;
    if (!wslay_event_get_close_sent(ctx) && w->call->cbs->is_open(w->call->user))
      w->call->cbs->on_ping(w->call->user, arg->msg, arg->msg_length);
    break;
  default:
    break;
  }
}

static int ensure_ctx(struct wschat__ws *w, size_t max_message) {
  if (w->ctx != NULL)
    return 0;
  static const struct wslay_event_callbacks cbs = {
      recv_cb,        send_cb, NULL, on_frame_start,
      on_frame_chunk, NULL,    on_msg_recv,
  };
  if (wslay_event_context_server_init(&w->ctx, &cbs, w) != 0) {
    w->ctx = NULL;
    return -1;
  }
  wslay_event_config_set_no_buffering(w->ctx, 1);
  if (w->z != NULL)
    wslay_event_config_set_allowed_rsv_bits(w->ctx, WSLAY_RSV1_BIT);
  /* The scanner enforces the limit with a reason; this is a second fence. */
  wslay_event_config_set_max_recv_msg_length(w->ctx, max_message + 1);
  return 0;
}

/* Fails the connection from the fast path (a compressed message that does
 * not inflate, or not to valid text): a close frame with code and why
 * through wslay, and nothing more is read. */
static void fail_now(struct wschat__ws *w, int code, const char *why,
                     size_t max) {
  w->failed = 1;
  if (ensure_ctx(w, max) != 0) {
    w->oom = 1; /* feed() drops the connection */
    return;
  }
  fail(w->ctx, w, code, why);
  if (wslay_event_send(w->ctx) != 0)
    w->oom = 1;
}

/*
 * The fast path: dispatches the whole, final, masked, rsv-free text and
 * binary frames (7- or 16-bit length, within max_message) at the front of
 * p, while the connection is open and between messages. Returns the bytes
 * it consumed; the rest goes through the scanner and wslay. Invalid UTF-8
 * is masked back and left to wslay, which fails the connection with 1007.
 */
static size_t fast_path(struct wschat__ws *w, uint8_t *p, size_t len,
                        size_t max) {
  size_t pos = 0;
  const struct wschat__ws_cbs *cbs = w->call->cbs;
  void *user = w->call->user;
  while (cbs->is_open(user)) {
    int op;
    const uint8_t *payload;
    size_t plen;
    size_t n = wschat__ws_fast_frame(p + pos, len - pos, max, &op, &payload,
                                     &plen);
    if (n == 0 && w->z != NULL && pos < len && (p[pos] & 0x40)) {
      /* a compressed message, whole: inflated here, no wslay context */
      n = wschat__ws_fast_frame_z(p + pos, len - pos, max, &op, &payload,
                                  &plen);
      const char *why;
      int code = n ? inflate_message(w, op, &payload, &plen, max, &why) : 0;
      if (code != 0) {
        fail_now(w, code, why, max);
        return pos + n;
      }
    }
    if (n == 0)
      break;
    pos += n;
    cbs->on_message(user, op, payload, plen);
  }
  return pos;
}

/* Hands wslay the bytes [from, from + n) of w->held[0..pre) ++ data. */
static int recv_part(struct wschat__ws *w, size_t pre, const uint8_t *data,
                     size_t from, size_t n) {
  struct wschat__ws_call *k = w->call;
  size_t a = from < pre ? pre - from : 0;
  if (a > n)
    a = n;
  k->in = a ? w->held + from : NULL;
  k->in_len = a;
  k->in2 = data + (from + a > pre ? from + a - pre : 0);
  k->in2_len = n - a;
  int r = wslay_event_recv(w->ctx);
  k->in = k->in2 = NULL;
  k->in_len = k->in2_len = 0;
  return r;
}

static int feed(struct wschat__ws *w, uint8_t *data, size_t len,
                size_t max_message) {
  if (w->failed)
    return 0; /* after a close or a failure, input is discarded */
  if (wschat__ws_scan_between_messages(&w->scan)) {
    size_t n = fast_path(w, data, len, max_message);
    if (w->oom)
      return -1;
    data += n;
    len -= n;
    /* A message may have closed the connection: nothing after our close
     * is read (an idle close set failed; a wslay close still reads the
     * peer's close frame). */
    if (len == 0 || w->failed)
      return 0;
  }
  if (ensure_ctx(w, max_message) != 0)
    return -1;
  w->call->max_message = max_message;
  int code = 0;
  const char *why = NULL;
  size_t pre = w->held_len;
  w->scan.stop_at_close = 1;
  size_t ok = wschat__ws_scan(&w->scan, data, len, max_message, &code, &why);
  /* wslay gets held ++ data[0..ok) but the last `keep` bytes: a header
   * not judged yet, or a close frame not yet whole; a whole close frame
   * goes on its own, in one piece */
  size_t keep = 0;
  int close_whole = 0;
  if (code != 0 && ok == 0)
    pre = 0; /* the bad frame began in what was held: wslay never sees it */
  else if (code == 0 && w->scan.close_len > 0) {
    keep = w->scan.close_len;
    close_whole = w->scan.close_done;
  } else if (code == 0)
    keep = w->scan.hlen;
  size_t give = pre + ok - keep;
  int r = recv_part(w, pre, data, 0, give);
  if (r == 0 && close_whole && wslay_event_get_read_enabled(w->ctx))
    r = recv_part(w, pre, data, give, keep);
  if (keep > 0 && !close_whole) {
    uint8_t tmp[WSCHAT__WS_HELD_MAX];
    for (size_t i = 0; i < keep; i++) {
      size_t at = give + i;
      tmp[i] = at < pre ? w->held[at] : data[at - pre];
    }
    if (w->held == NULL && (w->held = malloc(WSCHAT__WS_HELD_MAX)) == NULL)
      return -1;
    memcpy(w->held, tmp, keep);
  }
  w->held_len = close_whole ? 0 : keep;
  if (r == WSLAY_ERR_NOMEM || w->oom)
    return -1;
  if (code != 0 && wslay_event_get_read_enabled(w->ctx)) {
    wslay_event_shutdown_read(w->ctx);
    wslay_event_queue_close(w->ctx, (uint16_t)code, (const uint8_t *)why,
                            strlen(why));
    w->call->cbs->on_fail(w->call->user, code);
  }
  if (r != 0 || !wslay_event_get_read_enabled(w->ctx))
    w->failed = 1;
  if (wslay_event_send(w->ctx) != 0)
    return -1;
  return 0;
}

int wschat__ws_feed(struct wschat__ws *w, const struct wschat__ws_cbs *cbs,
                    void *user, uint8_t *data, size_t len, size_t max_message) {
  struct wschat__ws_call call;
  struct wschat__ws_call *outer = enter(w, &call, cbs, user);
  int r = feed(w, data, len, max_message);
  w->call = outer;
  return r;
}

size_t wschat__ws_close_payload(uint8_t out[125], int code,
                                const char *reason) {
  size_t rlen = reason ? strlen(reason) : 0;
  if (rlen > 123) {
    rlen = 123;
    while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80)
      rlen--; /* do not cut a character in two */
  }
  out[0] = (uint8_t)(code >> 8);
  out[1] = (uint8_t)code;
  if (rlen)
    memcpy(out + 2, reason, rlen);
  return 2 + rlen;
}

int wschat__ws_close(struct wschat__ws *w, const struct wschat__ws_cbs *cbs,
                     void *user, int code, const char *reason,
                     size_t max_message) {
  if (ensure_ctx(w, max_message) != 0)
    return -1;
  struct wschat__ws_call call;
  struct wschat__ws_call *outer = enter(w, &call, cbs, user);
  uint8_t payload[125];
  size_t n = wschat__ws_close_payload(payload, code, reason);
  wslay_event_queue_close(w->ctx, (uint16_t)code, payload + 2, n - 2);
  int r = wslay_event_send(w->ctx) == 0 ? 0 : -1;
  w->call = outer;
  return r;
}

int wschat__ws_code_sent(const struct wschat__ws *w) {
  if (w->ctx == NULL || !wslay_event_get_close_sent(w->ctx))
    return 1006;
  return wslay_event_get_status_code_sent(w->ctx);
}

int wschat__ws_close_sent(const struct wschat__ws *w) {
  return w->ctx != NULL && wslay_event_get_close_sent(w->ctx);
}

int wschat__ws_read_done(const struct wschat__ws *w) {
  return w->failed ||
         (w->ctx != NULL && !wslay_event_get_read_enabled(w->ctx));
}

void wschat__ws_trim(struct wschat__ws *w) {
  if (w->ctx == NULL || !wschat__ws_scan_between_messages(&w->scan) ||
      w->failed || wslay_event_want_write(w->ctx) ||
      wslay_event_get_close_sent(w->ctx))
    return;
  wslay_event_context_free(w->ctx);
  w->ctx = NULL;
  free(w->buf);
  w->buf = NULL;
  w->buf_len = w->buf_cap = 0;
  free(w->held);
  w->held = NULL;
  w->held_len = 0;
}

void wschat__ws_free(struct wschat__ws *w) {
  wslay_event_context_free(w->ctx);
  w->ctx = NULL;
  free(w->buf);
  w->buf = NULL;
  free(w->held);
  w->held = NULL;
  w->held_len = 0;
}
