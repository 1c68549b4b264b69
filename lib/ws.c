/*
 * ws: wslay glue and the frame header scanner. See ws.h.
 *
 * Bytes from the socket are first walked by scan(), which only reads frame
 * headers (payload bytes are skipped over, never copied), then handed to
 * wslay through recv_cb. wslay's output (pongs, close frames) comes back
 * through send_cb and is queued like any other frame, so the order on the
 * wire is the order of the calls.
 */
#include "ws.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user) {
  (void)flags;
  struct wschat__ws *w = user;
  if (w->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < w->in_len ? len : w->in_len;
  memcpy(buf, w->in, n);
  w->in += n;
  w->in_len -= n;
  return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user) {
  (void)flags;
  struct wschat__ws *w = user;
  struct wschat__frame *f = wschat__frame_new(-1, data, len);
  if (f == NULL || w->cbs->push(w->user, f) != 0) {
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

static void on_msg_recv(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_msg_recv_arg *arg,
                        void *user) {
  (void)ctx;
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
    if (w->cbs->is_open(w->user))
      w->cbs->on_message(w->user, arg->opcode, msg, len);
    break;
  }
  case WSLAY_CONNECTION_CLOSE:
    w->cbs->on_close(w->user, arg->status_code ? arg->status_code : 1005);
    break;
  case WSLAY_PONG:
    w->cbs->on_pong(w->user);
    break;
  case WSLAY_PING:
    /* wslay has queued the pong: send it now, so that it goes out before
     * anything this same read produces after the ping. */
    wslay_event_send(ctx);
    break;
  default:
    break;
  }
}

void wschat__ws_init(struct wschat__ws *w, const struct wschat__ws_cbs *cbs,
                     void *user) {
  w->cbs = cbs;
  w->user = user;
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
  /* scan() enforces the limit with a reason; this is a second fence. */
  wslay_event_config_set_max_recv_msg_length(w->ctx, max_message + 1);
  return 0;
}

/*
 * Walks frame headers in p[0..len). Returns how many bytes may go to wslay:
 * len, or the offset of a frame that must fail the connection, with *code
 * and *why set.
 */
static size_t scan(struct wschat__ws *w, const uint8_t *p, size_t len,
                   uint64_t max, int *code, const char **why) {
  size_t i = 0;
  while (i < len) {
    if (w->remaining > 0) {
      uint64_t take = len - i < w->remaining ? len - i : w->remaining;
      i += (size_t)take;
      w->remaining -= take;
      continue;
    }
    w->hdr[w->hlen++] = p[i++];
    if (w->hlen < 2)
      continue;
    uint8_t l7 = w->hdr[1] & 0x7F;
    size_t need = 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) +
                  ((w->hdr[1] & 0x80) ? 4u : 0u);
    if (w->hlen < need)
      continue;
    uint64_t plen = l7;
    if (l7 == 126)
      plen = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
    else if (l7 == 127)
      for (int k = 0; k < 8; k++)
        plen = (k ? plen << 8 : 0) | w->hdr[2 + k];
    int op = w->hdr[0] & 0x0F, fin = w->hdr[0] & 0x80;
    size_t start = i >= w->hlen ? i - w->hlen : 0;
    w->hlen = 0;
    *code = 1002;
    if ((l7 == 126 && plen < 126) || (l7 == 127 && plen <= 0xFFFF)) {
      /* RFC 6455 5.2: the minimal number of bytes MUST be used. */
      *why = "frame length not in its minimal form";
      return start;
    }
    if (op >= 8) {
      if (!fin) {
        *why = "fragmented control frame";
        return start;
      }
      if (plen > 125) {
        *why = "control frame over 125 bytes";
        return start;
      }
      if (op == 8 && plen == 1) {
        *why = "close frame with a 1-byte payload";
        return start;
      }
    } else if (plen >> 63) {
      *why = "invalid frame length";
      return start;
    } else if (op <= 2) {
      if (op != 0 && !w->in_frag)
        w->msg_len = 0;
      w->msg_len += plen;
      if (w->msg_len > max) {
        *code = 1009;
        *why = "message too big";
        return start;
      }
      if (op != 0)
        w->in_frag = !fin;
      else if (fin)
        w->in_frag = 0;
    }
    w->remaining = plen;
  }
  *code = 0;
  return len;
}

static void unmask(uint8_t *p, size_t n, const uint8_t key[4]) {
  uint64_t k;
  memcpy(&k, key, 4);
  memcpy((uint8_t *)&k + 4, key, 4);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    v ^= k;
    memcpy(p + i, &v, 8);
  }
  for (; i < n; i++)
    p[i] ^= key[i & 3];
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
  while (len - pos >= 6 && w->cbs->is_open(w->user)) {
    uint8_t b0 = p[pos], b1 = p[pos + 1];
    int op = b0 & 0x0F;
    if ((b0 & 0xF0) != 0x80 || (op != 1 && op != 2) || !(b1 & 0x80))
      break;
    size_t plen = b1 & 0x7F, hl = 6;
    if (plen == 127)
      break;
    if (plen == 126) {
      if (len - pos < 8)
        break;
      plen = (size_t)p[pos + 2] << 8 | p[pos + 3];
      hl = 8;
      if (plen < 126)
        break; /* not minimal: the scanner fails it */
    }
    if (plen > max || len - pos - hl < plen)
      break;
    uint8_t *key = p + pos + hl - 4, *payload = p + pos + hl;
    unmask(payload, plen, key);
    if (op == 1 && !wschat__utf8_valid((const char *)payload, plen)) {
      unmask(payload, plen, key);
      break;
    }
    pos += hl + plen;
    w->cbs->on_message(w->user, op, payload, plen);
  }
  return pos;
}

int wschat__ws_feed(struct wschat__ws *w, uint8_t *data, size_t len,
                    size_t max_message) {
  if (w->failed)
    return 0; /* after a close or a failure, input is discarded */
  if (w->hlen == 0 && w->remaining == 0 && !w->in_frag) {
    size_t n = fast_path(w, data, len, max_message);
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
  int code = 0;
  const char *why = NULL;
  size_t ok = scan(w, data, len, max_message, &code, &why);
  w->in = data;
  w->in_len = ok;
  int r = wslay_event_recv(w->ctx);
  w->in = NULL;
  w->in_len = 0;
  if (r == WSLAY_ERR_NOMEM || w->oom)
    return -1;
  if (code != 0 && wslay_event_get_read_enabled(w->ctx)) {
    wslay_event_shutdown_read(w->ctx);
    wslay_event_queue_close(w->ctx, (uint16_t)code, (const uint8_t *)why,
                            strlen(why));
    w->cbs->on_fail(w->user, code);
  }
  if (r != 0 || !wslay_event_get_read_enabled(w->ctx))
    w->failed = 1;
  if (wslay_event_send(w->ctx) != 0)
    return -1;
  return 0;
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

int wschat__ws_close(struct wschat__ws *w, int code, const char *reason,
                     size_t max_message) {
  if (ensure_ctx(w, max_message) != 0)
    return -1;
  uint8_t payload[125];
  size_t n = wschat__ws_close_payload(payload, code, reason);
  wslay_event_queue_close(w->ctx, (uint16_t)code, payload + 2, n - 2);
  return wslay_event_send(w->ctx) == 0 ? 0 : -1;
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
  if (w->ctx == NULL || w->hlen != 0 || w->remaining != 0 || w->in_frag ||
      w->failed || wslay_event_want_write(w->ctx) ||
      wslay_event_get_close_sent(w->ctx))
    return;
  wslay_event_context_free(w->ctx);
  w->ctx = NULL;
  free(w->buf);
  w->buf = NULL;
  w->buf_len = w->buf_cap = 0;
}

void wschat__ws_free(struct wschat__ws *w) {
  wslay_event_context_free(w->ctx);
  w->ctx = NULL;
  free(w->buf);
  w->buf = NULL;
}
