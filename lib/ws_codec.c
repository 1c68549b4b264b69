/* ws_codec: frame-header scanner, unmasking, fast-path frames. See
 * ws_codec.h. */
#include "ws_codec.h"

#include <string.h>

#include "utf8.h"

size_t wschat__ws_scan(struct wschat__ws_scan *s, const uint8_t *p, size_t len,
                       uint64_t max_message, int *code, const char **why) {
  size_t i = 0;
  if (s->close_done) {
    *code = 0;
    return 0;
  }
  while (i < len) {
    if (s->remaining > 0) {
      uint64_t take = len - i < s->remaining ? len - i : s->remaining;
      i += (size_t)take;
      s->remaining -= take;
      if (s->close_len > 0) {
        s->close_len = (uint8_t)(s->close_len + take); /* <= 125 */
        if (s->remaining == 0 && s->stop_at_close) {
          s->close_done = 1;
          break;
        }
      }
      continue;
    }
    if (s->hlen == 0)
      s->close_len = 0;
    s->hdr[s->hlen++] = p[i++];
    if ((s->hdr[0] & 0x0F) == 8)
      s->close_len = s->hlen;
    if (s->hlen < 2)
      continue;
    uint8_t l7 = s->hdr[1] & 0x7F;
    size_t need = 2u +
                  (l7 == 126   ? 2u
                   : l7 == 127 ? 8u
                               : 0u) +
                  ((s->hdr[1] & 0x80) ? 4u : 0u);
    if (s->hlen < need)
      continue;
    uint64_t plen = l7;
    if (l7 == 126)
      plen = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
    else if (l7 == 127)
      for (int k = 0; k < 8; k++)
        plen = (k ? plen << 8 : 0) | s->hdr[2 + k];
    int op = s->hdr[0] & 0x0F, fin = s->hdr[0] & 0x80;
    size_t start = i >= s->hlen ? i - s->hlen : 0;
    s->hlen = 0;
    *code = 1002;
    if (s->hdr[0] & 0x70) {
      /* RSV1 only for the first frame of a compressed data message, and
       * only with permessage-deflate; RSV2 and RSV3 never. */
      *why = (s->hdr[0] & 0x30) ? "reserved bits set"
             : !s->deflate      ? "RSV1 set without an extension"
             : op >= 8          ? "RSV1 on a control frame"
             : op == 0          ? "RSV1 on a continuation frame"
                                : NULL;
      if (*why != NULL)
        return start;
    }
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
      if (!s->in_frag)
        s->msg_len = 0; /* a new message (or a stray continuation, which
                           wslay fails: not counted on the last one's) */
      s->msg_len += plen;
      if (s->msg_len > max_message) {
        *code = 1009;
        *why = "message too big";
        return start;
      }
      if (op != 0)
        s->in_frag = !fin;
      else if (fin)
        s->in_frag = 0;
    }
    s->remaining = plen;
    if (op == 8 && plen == 0 && s->stop_at_close) {
      s->close_done = 1;
      break;
    }
  }
  *code = 0;
  return i;
}

int wschat__ws_scan_between_messages(const struct wschat__ws_scan *s) {
  return s->hlen == 0 && s->remaining == 0 && !s->in_frag;
}

void wschat__ws_unmask(uint8_t *p, size_t n, const uint8_t key[4]) {
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

/* Both fast paths: top is the FIN and RSV bits the frame must have (0x80
 * plain, 0xC0 compressed: no UTF-8 check, its payload is not text yet). */
static size_t fast(uint8_t *p, size_t len, uint64_t max_message, int *opcode,
                   const uint8_t **payload, size_t *payload_len, uint8_t top) {
  if (len < 6)
    return 0;
  uint8_t b0 = p[0], b1 = p[1];
  int op = b0 & 0x0F;
  if ((b0 & 0xF0) != top || (op != 1 && op != 2) || !(b1 & 0x80))
    return 0;
  size_t plen = b1 & 0x7F, hl = 6;
  if (plen == 127)
    return 0;
  if (plen == 126) {
    if (len < 8)
      return 0;
    plen = (size_t)p[2] << 8 | p[3];
    hl = 8;
    if (plen < 126)
      return 0; /* not minimal: the scanner fails it */
  }
  if (plen > max_message || len - hl < plen)
    return 0;
  uint8_t *key = p + hl - 4, *pl = p + hl;
  wschat__ws_unmask(pl, plen, key);
  if (op == 1 && top == 0x80 && !wschat__utf8_valid((const char *)pl, plen)) {
    wschat__ws_unmask(pl, plen, key);
    return 0;
  }
  *opcode = op;
  *payload = pl;
  *payload_len = plen;
  return hl + plen;
}

size_t wschat__ws_fast_frame(uint8_t *p, size_t len, uint64_t max_message,
                             int *opcode, const uint8_t **payload,
                             size_t *payload_len) {
  return fast(p, len, max_message, opcode, payload, payload_len, 0x80);
}

size_t wschat__ws_fast_frame_z(uint8_t *p, size_t len, uint64_t max_message,
                               int *opcode, const uint8_t **payload,
                               size_t *payload_len) {
  return fast(p, len, max_message, opcode, payload, payload_len, 0xC0);
}
