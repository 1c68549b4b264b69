/* libFuzzer target: the WebSocket frame codec (lib/ws_codec.c).
 *
 * Input: byte 0 picks where the stream is split (len * b / 255), byte 1 the
 * message limit (16 * b bytes), the rest is a client's byte stream.
 * Invariants: the scanner's verdict (code, reason, offset of the bad frame)
 * and final state are the same fed whole, split in two and one byte at a
 * time (except that a bad header cut by a split is reported where the call
 * that completes it starts, as ws_codec.h says); the fast path, run over a copy
 * frame after frame, consumes no more than it is offered, returns a payload
 * inside its frame that is the input unmasked (valid UTF-8 for text), and
 * leaves a refused frame byte-identical; what it takes the scanner accepts, and
 * the fast path followed by the scanner (what lib/ws.c does) gives the
 * scanner's verdict on its own. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws_codec.h"

struct verdict {
  size_t ok; /* bytes accepted, or the absolute offset of the bad frame */
  int code;
  const char *why;
  struct wschat__ws_scan s;
};

/* Feeds p[0..len) to a fresh scanner: `first` bytes, then `step` bytes at a
 * time (0: all the rest), stopping at a violation. */
static struct verdict scan(const uint8_t *p, size_t len, uint64_t max,
                           size_t first, size_t step) {
  struct verdict v;
  memset(&v, 0, sizeof(v));
  size_t at = 0, n = first < len ? first : len;
  for (;;) {
    v.why = NULL;
    size_t r = wschat__ws_scan(&v.s, p + at, n, max, &v.code, &v.why);
    assert(v.code == 0 || v.code == 1002 || v.code == 1009);
    if (v.code != 0) {
      assert(r < n && v.why != NULL && v.why[0] != '\0');
      v.ok = at + r;
      return v;
    }
    assert(r == n);
    at += n;
    if (at == len)
      break;
    n = step == 0 || len - at < step ? len - at : step;
  }
  v.ok = len;
  return v;
}

static int same_state(const struct wschat__ws_scan *a,
                      const struct wschat__ws_scan *b) {
  return a->remaining == b->remaining && a->msg_len == b->msg_len &&
         a->hlen == b->hlen && a->in_frag == b->in_frag &&
         memcmp(a->hdr, b->hdr, a->hlen) == 0;
}

/* A chunked verdict against the whole one. A bad frame is reported where
 * its header starts, except that a header begun in an earlier call is
 * reported at offset 0 of the call that completes it: `at`. */
static void same_verdict(const struct verdict *whole, const struct verdict *v,
                         size_t at) {
  assert(v->code == whole->code);
  if (whole->code == 0) {
    assert(v->ok == whole->ok);
    assert(same_state(&v->s, &whole->s));
  } else {
    assert(strcmp(v->why, whole->why) == 0);
    assert(v->ok == at);
  }
}

/* The size of the frame header at p (complete: the scanner judged it). */
static size_t header_len(const uint8_t *p) {
  uint8_t l7 = p[1] & 0x7F;
  return 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) + (p[1] & 0x80 ? 4u : 0u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  const uint8_t *p = data + 2;
  size_t len = size - 2;
  size_t k = len * data[0] / 255;
  uint64_t max = 16u * (uint64_t)data[1];

  struct verdict whole = scan(p, len, max, len, 0);
  struct verdict split = scan(p, len, max, k, 0);
  struct verdict bytes = scan(p, len, max, 1, 1);
  size_t bad = whole.ok, hl = whole.code ? header_len(p + bad) : 0;
  same_verdict(&whole, &split, k > bad && k < bad + hl ? k : bad);
  same_verdict(&whole, &bytes, bad + hl - 1);

  /* The fast path over a copy (heap, so ASan sees any read past it). */
  uint8_t *buf = malloc(len ? len : 1);
  assert(buf != NULL);
  if (len)
    memcpy(buf, p, len);
  size_t pos = 0;
  for (;;) {
    int op = -1;
    const uint8_t *pl = NULL;
    size_t plen = 99;
    size_t n =
        wschat__ws_fast_frame(buf + pos, len - pos, max, &op, &pl, &plen);
    if (n == 0) {
      assert(op == -1 && pl == NULL && plen == 99);
      assert(len == pos || memcmp(buf + pos, p + pos, len - pos) == 0);
      break;
    }
    assert(n >= 6 && n <= len - pos);
    assert(op == 1 || op == 2);
    /* Only FIN, no RSV, masked, and a 7- or 16-bit length. */
    assert((p[pos] & 0xF0) == 0x80 && (p[pos] & 0x0F) == op);
    assert((p[pos + 1] & 0x80) && (p[pos + 1] & 0x7F) != 127);
    assert(plen <= max);
    assert(pl >= buf + pos + 6 && pl + plen == buf + pos + n);
    size_t at = (size_t)(pl - buf);
    assert(memcmp(buf + pos, p + pos, at - pos) == 0); /* header as it was */
    const uint8_t *key = p + at - 4;
    for (size_t i = 0; i < plen; i++)
      assert(pl[i] == (uint8_t)(p[at + i] ^ key[i & 3]));
    if (op == 1)
      assert(wschat__utf8_valid((const char *)pl, plen));
    pos += n;
  }
  free(buf);

  /* What the fast path took, the scanner takes, ending between messages;
   * the scanner then goes on from there as lib/ws.c has it do. */
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  int code = -1;
  const char *why = NULL;
  size_t r = wschat__ws_scan(&s, p, pos, max, &code, &why);
  assert(r == pos && code == 0);
  assert(wschat__ws_scan_between_messages(&s));
  assert(whole.code == 0 || whole.ok >= pos);
  r = wschat__ws_scan(&s, p + pos, len - pos, max, &code, &why);
  assert(code == whole.code && pos + r == whole.ok);
  return 0;
}
