/* libFuzzer target: the whole incoming frame path of a connection
 * (lib/ws.c: the fast path, the frame-header scanner of lib/ws_codec.c,
 * then wslay's event layer), driven as lib/conn.c drives it but without a
 * socket: bytes in through wschat__ws_feed(), wslay's output (close frames)
 * out through the push upcall and the pongs asked for through on_ping, into
 * one byte stream.
 *
 * Input: byte 0 is the chunk size of the feeds (0: all at once), byte 1
 * the message limit (16 * b bytes), byte 2 the message after which the
 * application closes the connection from inside on_message, as /quit does
 * (0: never), byte 3 bit 0 whether the idle wslay context is given back
 * between feeds (wschat__ws_trim, as lib/conn.c does after a read) and
 * bit 1 whether permessage-deflate was negotiated (RSV1 messages are
 * inflated, lib/deflate.c, bounded by the limit); the rest is the client's
 * byte stream.
 *
 * Invariants (abort() whatever NDEBUG says):
 *  - a feed never fails (-1 is out of memory only);
 *  - a message is text or binary, within the limit, valid UTF-8 if text,
 *    and delivered only while the connection is open: never after the
 *    peer's close, our failure, or our own close;
 *  - on_close and on_fail are each called at most once, with a code a
 *    close frame may carry;
 *  - what goes out is a sequence of whole, final, unmasked control frames
 *    (pong or close, payload at most 125 bytes), at most one close, and
 *    nothing after it (RFC 6455 5.5.1);
 *  - the messages, the pongs, the close frame (its reason valid UTF-8)
 *    and the codes of on_close and on_fail are the same whether the
 *    stream comes whole, in the chunks of byte 0, or one byte at a time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "frame.h"
#include "utf8.h"
#include "ws.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

struct bytes {
  uint8_t *p;
  size_t len, cap;
};

static void add(struct bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    b->p = realloc(b->p, cap);
    CHECK(b->p != NULL);
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

struct peer {
  struct wschat__ws ws;
  size_t max;
  unsigned close_after; /* messages before the app closes (0: never) */
  unsigned nmsg;
  int open, closes, fails;
  int code; /* of on_close or on_fail */
  struct bytes msgs; /* op, length, bytes of every message */
  struct bytes out;  /* everything pushed */
};

static const struct wschat__ws_cbs cbs;

static void on_message(void *user, int op, const uint8_t *msg, size_t len) {
  struct peer *c = user;
  CHECK(c->open);
  CHECK(op == 1 || op == 2);
  CHECK(len <= c->max);
  if (op == 1)
    CHECK(wschat__utf8_valid((const char *)msg, len));
  uint8_t hdr[9];
  hdr[0] = (uint8_t)op;
  for (int i = 0; i < 8; i++)
    hdr[1 + i] = (uint8_t)((uint64_t)len >> (8 * i));
  add(&c->msgs, hdr, sizeof(hdr));
  add(&c->msgs, msg, len);
  if (++c->nmsg == c->close_after) {
    c->open = 0; /* what /quit does: close with 1000, nested in the feed */
    CHECK(wschat__ws_close(&c->ws, &cbs, c, 1000, "bye", c->max) == 0);
  }
}

static int valid_code(int code) {
  return code == 1005 || (code >= 1000 && code <= 1003) ||
         (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

static void on_close(void *user, int code) {
  struct peer *c = user;
  CHECK(c->closes++ == 0);
  CHECK(valid_code(code));
  c->code = code;
  c->open = 0;
}

static void on_fail(void *user, int code) {
  struct peer *c = user;
  CHECK(c->fails++ == 0);
  CHECK(code == 1002 || code == 1009 || code == 1007);
  c->code = code;
  c->open = 0;
}

static void on_pong(void *user) { (void)user; }

static size_t close_at(const struct bytes *o);

/* A ping to answer: written to the output as the pong the connection
 * sends (ws.h: never after our close frame). */
static void on_ping(void *user, const uint8_t *payload, size_t len) {
  struct peer *c = user;
  CHECK(len <= 125);
  CHECK(close_at(&c->out) == c->out.len);
  uint8_t hdr[2] = {0x8A, (uint8_t)len};
  add(&c->out, hdr, 2);
  add(&c->out, payload, len);
}

static int push(void *user, struct wschat__frame *f) {
  struct peer *c = user;
  add(&c->out, f->data, f->len);
  wschat__frame_unref(f);
  return 0;
}

static int is_open(void *user) { return ((struct peer *)user)->open; }

static const struct wschat__ws_cbs cbs = {on_message, on_close, on_fail, on_pong,
                                          on_ping,    push,     is_open};

/* The output: whole unmasked final control frames, nothing after a close. */
static void check_output(const struct bytes *o) {
  size_t at = 0;
  int closed = 0;
  while (at < o->len) {
    CHECK(!closed);
    CHECK(o->len - at >= 2);
    uint8_t b0 = o->p[at], b1 = o->p[at + 1];
    CHECK(b0 == 0x88 || b0 == 0x8A); /* FIN, no RSV, close or pong */
    CHECK((b1 & 0x80) == 0);         /* unmasked */
    size_t n = b1 & 0x7F;
    CHECK(n <= 125);
    CHECK(o->len - at - 2 >= n);
    if (b0 == 0x88) {
      CHECK(n != 1);
      closed = 1;
    }
    at += 2 + n;
  }
}

/* Feeds stream[0..len) in chunks of `chunk` (0: at once); the peer is
 * left for the caller to compare and free. */
static struct wschat__deflate *shared_z; /* the server's, made once */

static void run(struct peer *c, const uint8_t *stream, size_t len, size_t chunk,
                size_t max, unsigned close_after, int trim, int deflate) {
  memset(c, 0, sizeof(*c));
  if (deflate) {
    if (shared_z == NULL)
      shared_z = wschat__deflate_new(0);
    CHECK(shared_z != NULL);
    c->ws.z = shared_z;
    c->ws.scan.deflate = 1;
  }
  c->max = max;
  c->close_after = close_after;
  c->open = 1;
  /* a heap copy: the fast path unmasks in place, and ASan sees any read
   * past the end of a feed */
  size_t at = 0;
  do {
    size_t n = chunk == 0 || len - at < chunk ? len - at : chunk;
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf != NULL);
    memcpy(buf, stream + at, n);
    CHECK(wschat__ws_feed(&c->ws, &cbs, c, buf, n, max) == 0);
    free(buf);
    if (trim)
      wschat__ws_trim(&c->ws);
    at += n;
  } while (at < len);
  check_output(&c->out);
  if (c->closes || c->fails)
    CHECK(wschat__ws_read_done(&c->ws));
}

static void done(struct peer *c) {
  wschat__ws_free(&c->ws);
  free(c->msgs.p);
  free(c->out.p);
}

/* Where the close frame starts in an output checked by check_output()
 * (o->len: none). */
static size_t close_at(const struct bytes *o) {
  size_t at = 0;
  while (at < o->len && o->p[at] != 0x88)
    at += 2 + (o->p[at + 1] & 0x7F);
  return at;
}

/* Our close frame at `at` carries no code or one that may be sent. */
static int sendable_close(const struct bytes *o, size_t at) {
  if (o->len - at == 2)
    return 1;
  int code = o->p[at + 2] << 8 | o->p[at + 3];
  return code != 1005 && code != 1006 && code != 1015 && valid_code(code);
}

/* The same messages, pongs and close frame, and the same upcalls: the
 * verdict on a stream does not depend on how its bytes are cut. (lib/ws.c
 * holds back a frame header until the scanner has judged it whole, and a
 * close frame until it is whole: wslay checks a close reason's UTF-8 right
 * only when it gets the frame in one piece, and fails a bad header from
 * its first bytes with an empty close. regress_close_bad_reason_echoed and
 * regress_ping_no_fin_bytewise in corpus_ws_feed/ differed before.) */
static void same(const struct peer *a, const struct peer *b) {
  CHECK(a->msgs.len == b->msgs.len);
  CHECK(a->msgs.len == 0 || memcmp(a->msgs.p, b->msgs.p, a->msgs.len) == 0);
  CHECK(a->out.len == b->out.len);
  CHECK(a->out.len == 0 || memcmp(a->out.p, b->out.p, a->out.len) == 0);
  CHECK(a->closes == b->closes && a->fails == b->fails);
  CHECK(a->code == b->code);
  size_t ca = close_at(&a->out);
  CHECK(ca == a->out.len || sendable_close(&a->out, ca));
  if (ca + 4 <= a->out.len)
    CHECK(wschat__utf8_valid((const char *)a->out.p + ca + 4,
                             a->out.len - ca - 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  size_t chunk = data[0];
  size_t max = 16u * (size_t)data[1];
  unsigned close_after = data[2];
  int trim = data[3] & 1, deflate = (data[3] >> 1) & 1;
  const uint8_t *stream = data + 4;
  size_t len = size - 4;

  struct peer whole, chunked, bytes;
  run(&whole, stream, len, 0, max, close_after, trim, deflate);
  run(&chunked, stream, len, chunk, max, close_after, trim, deflate);
  run(&bytes, stream, len, 1, max, close_after, trim, deflate);
  same(&whole, &chunked);
  same(&whole, &bytes);
  done(&whole);
  done(&chunked);
  done(&bytes);
  return 0;
}
