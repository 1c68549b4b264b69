/* Unit tests: the frame-header scanner, unmasking and the fast path's frame
 * recognition (lib/ws_codec.c). Streams are fed whole, one byte at a time
 * and split at every point, and must give the same verdicts. */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws_codec.h"

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7 */

enum { LEN7 = 7, LEN16 = 16, LEN64 = 64 };

/* Writes a client frame into out: b0 (FIN, RSV, opcode), the length field
 * len in the given form (7, 16 or 64 bits; minimal or not, as asked), KEY
 * if masked, then n payload bytes (masked with KEY if masked; n may be less
 * than len to write a header and a partial payload). Returns its size. */
static size_t put(uint8_t *out, uint8_t b0, int masked, int form, uint64_t len,
                  const void *payload, size_t n) {
  size_t i = 0;
  out[i++] = b0;
  uint8_t m = masked ? 0x80 : 0;
  if (form == LEN7) {
    out[i++] = m | (uint8_t)len;
  } else if (form == LEN16) {
    out[i++] = m | 126;
    out[i++] = (uint8_t)(len >> 8);
    out[i++] = (uint8_t)len;
  } else {
    out[i++] = m | 127;
    for (int k = 7; k >= 0; k--)
      out[i++] = (uint8_t)(len >> (8 * k));
  }
  if (masked) {
    memcpy(out + i, KEY, 4);
    i += 4;
  }
  const uint8_t *pl = payload;
  for (size_t k = 0; k < n; k++)
    out[i + k] = pl ? (uint8_t)(pl[k] ^ (masked ? KEY[k & 3] : 0)) : 0;
  return i + n;
}

/* A masked frame with a minimal length and its whole payload. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n) {
  int form = n < 126 ? LEN7 : n <= 0xFFFF ? LEN16 : LEN64;
  return put(out, b0, 1, form, n, payload, n);
}

struct verdict {
  size_t ok; /* bytes fine to hand on, or the bad frame's offset */
  int code;
  const char *why;
};

/* Scans p[0..len) whole with a fresh scanner. */
static struct verdict scan_whole(const uint8_t *p, size_t len, uint64_t max,
                                 struct wschat__ws_scan *out) {
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  struct verdict v = {0, -1, NULL};
  v.ok = wschat__ws_scan(&s, p, len, max, &v.code, &v.why);
  if (out)
    *out = s;
  return v;
}

/* Scans p[0..len) in two calls split at k; the offset is made absolute. */
static struct verdict scan_split(const uint8_t *p, size_t len, size_t k,
                                 uint64_t max, struct wschat__ws_scan *out) {
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  struct verdict v = {0, -1, NULL};
  v.ok = wschat__ws_scan(&s, p, k, max, &v.code, &v.why);
  if (v.code == 0) {
    if (v.ok != k)
      ck_abort_msg("first call: %zu of %zu", v.ok, k);
    v.ok = k + wschat__ws_scan(&s, p + k, len - k, max, &v.code, &v.why);
  }
  if (out)
    *out = s;
  return v;
}

static void expect(const uint8_t *p, size_t len, uint64_t max, size_t at,
                   int code, const char *why) {
  struct verdict v = scan_whole(p, len, max, NULL);
  ck_assert_int_eq(v.code, code);
  ck_assert_uint_eq(v.ok, at);
  if (why)
    ck_assert_str_eq(v.why, why);
}

#define MAX 1000

START_TEST(nonminimal_lengths) {
  uint8_t b[64];
  size_t n = frame(b, 0x81, "ok", 2); /* a good frame first: offset 8 */
  ck_assert_uint_eq(n, 8);
  size_t m = put(b + n, 0x81, 1, LEN16, 125, NULL, 0);
  expect(b, n + m, MAX, n, 1002, "frame length not in its minimal form");
  m = put(b + n, 0x81, 1, LEN16, 0, NULL, 0);
  expect(b, n + m, MAX, n, 1002, "frame length not in its minimal form");
  m = put(b + n, 0x82, 1, LEN64, 0xFFFF, NULL, 0);
  expect(b, n + m, UINT64_MAX, n, 1002, "frame length not in its minimal form");
  m = put(b + n, 0x82, 1, LEN64, 3, NULL, 0);
  expect(b, n + m, UINT64_MAX, n, 1002, "frame length not in its minimal form");
  /* The smallest minimal forms pass (payload not yet arrived). */
  m = put(b + n, 0x81, 1, LEN16, 126, NULL, 0);
  expect(b, n + m, MAX, n + m, 0, NULL);
  m = put(b + n, 0x82, 1, LEN64, 0x10000, NULL, 0);
  expect(b, n + m, UINT64_MAX, n + m, 0, NULL);
}
END_TEST

START_TEST(control_frames) {
  uint8_t b[512];
  size_t n = frame(b, 0x89, "ping", 4);
  ck_assert_uint_eq(n, 10);
  /* A ping of 126 bytes, minimal 16-bit form: too big for control. */
  size_t m = put(b + n, 0x89, 1, LEN16, 126, NULL, 0);
  expect(b, n + m, MAX, n, 1002, "control frame over 125 bytes");
  m = put(b + n, 0x8A, 1, LEN64, 0x10000, NULL, 0);
  expect(b, n + m, MAX, n, 1002, "control frame over 125 bytes");
  /* 125 bytes is fine. */
  m = put(b + n, 0x8A, 1, LEN7, 125, NULL, 125);
  expect(b, n + m, MAX, n + m, 0, NULL);
  /* Control frames without FIN: close, ping, pong. */
  for (uint8_t op = 8; op <= 10; op++) {
    m = put(b + n, op, 1, LEN7, 0, NULL, 0);
    expect(b, n + m, MAX, n, 1002, "fragmented control frame");
  }
  /* Close: 1 byte is refused, 0 and 2 are fine. */
  m = put(b + n, 0x88, 1, LEN7, 1, "\x03", 1);
  expect(b, n + m, MAX, n, 1002, "close frame with a 1-byte payload");
  m = put(b + n, 0x88, 1, LEN7, 0, NULL, 0);
  expect(b, n + m, MAX, n + m, 0, NULL);
  m = put(b + n, 0x88, 1, LEN7, 2, "\x03\xe8", 2);
  expect(b, n + m, MAX, n + m, 0, NULL);
  /* A 1-byte ping is fine. */
  m = put(b + n, 0x89, 1, LEN7, 1, "x", 1);
  expect(b, n + m, MAX, n + m, 0, NULL);
}
END_TEST

/* Reserved bits: RSV1 only with deflate (s->deflate), on the first frame of
 * a data message; RSV2 and RSV3 never. */
static struct verdict scan_deflate(const uint8_t *p, size_t len, int deflate) {
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  s.deflate = (uint8_t)deflate;
  struct verdict v = {0, -1, NULL};
  v.ok = wschat__ws_scan(&s, p, len, MAX, &v.code, &v.why);
  return v;
}

START_TEST(reserved_bits) {
  uint8_t b[256];
  size_t n = frame(b, 0xC1, "zz", 2); /* FIN, RSV1, text */
  struct verdict v = scan_deflate(b, n, 0);
  ck_assert_int_eq(v.code, 1002);
  ck_assert_str_eq(v.why, "RSV1 set without an extension");
  v = scan_deflate(b, n, 1);
  ck_assert_int_eq(v.code, 0);
  ck_assert_uint_eq(v.ok, n);
  /* a fragmented compressed message: RSV1 on the first frame only */
  n = frame(b, 0x42, "ab", 2);     /* RSV1, binary, no FIN */
  n += frame(b + n, 0x89, "p", 1); /* a ping between fragments */
  size_t k = n;
  n += frame(b + n, 0x80, "cd", 2); /* the last continuation */
  v = scan_deflate(b, n, 1);
  ck_assert_int_eq(v.code, 0);
  n = k + frame(b + k, 0xC0, "cd", 2); /* RSV1 on the continuation */
  v = scan_deflate(b, n, 1);
  ck_assert_int_eq(v.code, 1002);
  ck_assert_uint_eq(v.ok, k);
  ck_assert_str_eq(v.why, "RSV1 on a continuation frame");
  for (uint8_t op = 8; op <= 10; op++) {
    n = frame(b, (uint8_t)(0xC0 | op), op == 8 ? "\x03\xe8" : "",
              op == 8 ? 2 : 0);
    v = scan_deflate(b, n, 1);
    ck_assert_int_eq(v.code, 1002);
    ck_assert_str_eq(v.why, "RSV1 on a control frame");
  }
  static const uint8_t others[] = {0xA1, 0x91, 0xE1, 0xD1, 0xF1};
  for (size_t i = 0; i < sizeof(others); i++) {
    n = frame(b, others[i], "x", 1);
    for (int d = 0; d < 2; d++) {
      v = scan_deflate(b, n, d);
      ck_assert_int_eq(v.code, 1002);
      ck_assert_str_eq(v.why, "reserved bits set");
    }
  }
  /* the fast path never takes an RSV1 frame; the compressed one takes
   * only those (whole, final, masked), unmasked, not checked as UTF-8 */
  n = frame(b, 0xC1, "\xff\xfe", 2);
  int op;
  const uint8_t *pl;
  size_t plen;
  ck_assert_uint_eq(wschat__ws_fast_frame(b, n, MAX, &op, &pl, &plen), 0);
  ck_assert_uint_eq(wschat__ws_fast_frame_z(b, n, MAX, &op, &pl, &plen), n);
  ck_assert_int_eq(op, 1);
  ck_assert_uint_eq(plen, 2);
  ck_assert_mem_eq(pl, "\xff\xfe", 2);
  static const uint8_t notz[] = {0x81, 0x41, 0xE1, 0xD1, 0xC0, 0xC9};
  for (size_t i = 0; i < sizeof(notz); i++) {
    n = frame(b, notz[i], "ab", 2);
    ck_assert_uint_eq(wschat__ws_fast_frame_z(b, n, MAX, &op, &pl, &plen), 0);
  }
  n = frame(b, 0xC2, "abcdef", 6);
  ck_assert_uint_eq(wschat__ws_fast_frame_z(b, n - 1, MAX, &op, &pl, &plen), 0);
  ck_assert_uint_eq(wschat__ws_fast_frame_z(b, n, 5, &op, &pl, &plen), 0);
  ck_assert_uint_eq(wschat__ws_fast_frame_z(b, n, 6, &op, &pl, &plen), n);
  ck_assert_int_eq(op, 2);
}
END_TEST

START_TEST(top_bit_length) {
  uint8_t b[64];
  size_t n = frame(b, 0x82, "abc", 3);
  for (uint8_t b0 = 0x80; b0 <= 0x82; b0++) { /* continuation, text, bin */
    size_t m = put(b + n, b0, 1, LEN64, UINT64_C(1) << 63, NULL, 0);
    expect(b, n + m, UINT64_MAX, n, 1002, "invalid frame length");
    m = put(b + n, b0, 1, LEN64, UINT64_MAX, NULL, 0);
    expect(b, n + m, UINT64_MAX, n, 1002, "invalid frame length");
  }
  /* The largest legal length passes the scanner when the limit allows. */
  size_t m = put(b + n, 0x82, 1, LEN64, (UINT64_C(1) << 63) - 1, NULL, 0);
  expect(b, n + m, UINT64_MAX, n + m, 0, NULL);
}
END_TEST

START_TEST(too_big_single) {
  static uint8_t b[400];
  size_t n = frame(b, 0x81, "hi", 2);
  size_t m = put(b + n, 0x82, 1, LEN16, 301, NULL, 301);
  expect(b, n + m, 300, n, 1009, "message too big");
  /* Decided at the header: no payload byte needed. */
  expect(b, n + 8, 300, n, 1009, "message too big");
  m = put(b + n, 0x82, 1, LEN16, 300, NULL, 300);
  expect(b, n + m, 300, n + m, 0, NULL);
  m = put(b + n, 0x81, 1, LEN7, 3, "abc", 3);
  expect(b, n + m, 2, n, 1009, "message too big");
}
END_TEST

START_TEST(too_big_fragments) {
  uint8_t b[256];
  size_t n = put(b, 0x01, 1, LEN7, 60, NULL, 60);         /* text, no FIN */
  size_t n2 = put(b + n, 0x00, 1, LEN7, 30, NULL, 30);    /* continuation */
  size_t h = put(b + n + n2, 0x80, 1, LEN7, 11, NULL, 0); /* header only */
  /* 60 + 30 + 11 > 100, decided at the last header, before its payload. */
  expect(b, n + n2 + h, 100, n + n2, 1009, "message too big");
  /* 60 + 30 + 10 = 100 is fine, and ends the message. */
  size_t m = put(b + n + n2, 0x80, 1, LEN7, 10, NULL, 10);
  struct wschat__ws_scan s;
  struct verdict v = scan_whole(b, n + n2 + m, 100, &s);
  ck_assert_int_eq(v.code, 0);
  ck_assert_uint_eq(v.ok, n + n2 + m);
  ck_assert_uint_eq(s.msg_len, 100);
  ck_assert(wschat__ws_scan_between_messages(&s));
  /* A new message starts from zero: 100 more bytes are fine too. */
  size_t m2 = put(b + n + n2 + m, 0x82, 1, LEN7, 100, NULL, 100);
  expect(b, n + n2 + m + m2, 100, n + n2 + m + m2, 0, NULL);
}
END_TEST

START_TEST(ping_between_fragments) {
  uint8_t b[128];
  size_t n = put(b, 0x01, 1, LEN7, 3, "abc", 3);
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  int code = -1;
  const char *why = NULL;
  ck_assert_uint_eq(wschat__ws_scan(&s, b, n, 10, &code, &why), n);
  ck_assert_int_eq(code, 0);
  ck_assert(!wschat__ws_scan_between_messages(&s)); /* inside a message */
  size_t p = frame(b + n, 0x89, "pingpong", 8);     /* does not count */
  ck_assert_uint_eq(wschat__ws_scan(&s, b + n, p, 10, &code, &why), p);
  ck_assert_int_eq(code, 0);
  ck_assert(!wschat__ws_scan_between_messages(&s));
  ck_assert_uint_eq(s.msg_len, 3);
  size_t e = put(b + n + p, 0x80, 1, LEN7, 7, "defghij", 7);
  ck_assert_uint_eq(wschat__ws_scan(&s, b + n + p, e - 1, 10, &code, &why),
                    e - 1); /* all but the last payload byte */
  ck_assert_int_eq(code, 0);
  ck_assert(!wschat__ws_scan_between_messages(&s)); /* mid-frame */
  ck_assert_uint_eq(s.remaining, 1);
  ck_assert_uint_eq(wschat__ws_scan(&s, b + n + p + e - 1, 1, 10, &code, &why),
                    1);
  ck_assert_int_eq(code, 0);
  ck_assert(wschat__ws_scan_between_messages(&s));
  ck_assert_uint_eq(s.msg_len, 10);
}
END_TEST

/* A valid stream of every kind of frame, with where each message ends. */
static size_t valid_stream(uint8_t *b, size_t *ends, size_t *nends) {
  static uint8_t big[70000];
  size_t n = 0, e = 0;
  n += frame(b + n, 0x81, "hello", 5);
  ends[e++] = n;
  n += frame(b + n, 0x82, big, 300); /* 16-bit length */
  ends[e++] = n;
  n += frame(b + n, 0x89, "", 0);
  ends[e++] = n;
  n += put(b + n, 0x01, 1, LEN7, 2, "ab", 2);
  n += frame(b + n, 0x8A, "p", 1); /* pong between fragments */
  n += put(b + n, 0x00, 1, LEN16, 200, big, 200);
  n += put(b + n, 0x80, 1, LEN7, 0, NULL, 0);
  ends[e++] = n;
  n += frame(b + n, 0x82, big, sizeof(big)); /* 64-bit length */
  ends[e++] = n;
  n += frame(b + n, 0x81, "", 0);
  ends[e++] = n;
  n += frame(b + n, 0x88,
             "\x03\xe8"
             "bye",
             5);
  ends[e++] = n;
  *nends = e;
  return n;
}

/* (Plain comparisons: a Check assertion per byte of a 70 KB stream is
 * slow, as each one reports its position to the runner.) */
static int same_state(const struct wschat__ws_scan *a,
                      const struct wschat__ws_scan *b) {
  return a->remaining == b->remaining && a->msg_len == b->msg_len &&
         a->hlen == b->hlen && a->in_frag == b->in_frag &&
         memcmp(a->hdr, b->hdr, a->hlen) == 0;
}

START_TEST(chunking_valid) {
  static uint8_t b[80000];
  size_t ends[16], nends;
  size_t len = valid_stream(b, ends, &nends);
  ck_assert_uint_eq(nends, 7);
  struct wschat__ws_scan whole;
  struct verdict v = scan_whole(b, len, 100000, &whole);
  ck_assert_int_eq(v.code, 0);
  ck_assert_uint_eq(v.ok, len);
  ck_assert(wschat__ws_scan_between_messages(&whole));
  ck_assert_uint_eq(whole.msg_len, 0); /* the last data message's */

  /* One byte at a time: between messages exactly at each message's end. */
  struct wschat__ws_scan s;
  memset(&s, 0, sizeof(s));
  size_t e = 0;
  for (size_t i = 0; i < len; i++) {
    int code = -1;
    const char *why = NULL;
    size_t ok = wschat__ws_scan(&s, b + i, 1, 100000, &code, &why);
    int at_end = e < nends && ends[e] == i + 1;
    if (ok != 1 || code != 0 || wschat__ws_scan_between_messages(&s) != at_end)
      ck_abort_msg("byte %zu: ok %zu code %d", i, ok, code);
    e += (size_t)at_end;
  }
  ck_assert_uint_eq(e, nends);
  ck_assert(same_state(&s, &whole));

  /* Every split point. */
  for (size_t k = 0; k <= len; k++) {
    struct verdict w = scan_split(b, len, k, 100000, &s);
    if (w.code != 0 || w.ok != len || !same_state(&s, &whole))
      ck_abort_msg("split at %zu: ok %zu code %d", k, w.ok, w.code);
  }
}
END_TEST

START_TEST(chunking_invalid) {
  uint8_t b[256];
  size_t n = 0;
  n += frame(b + n, 0x81, "hello", 5);
  n += put(b + n, 0x01, 1, LEN7, 2, "ab", 2);
  n += frame(b + n, 0x89, "x", 1);
  size_t bad = n;
  n += put(b + n, 0x80, 1, LEN16, 200, NULL, 200); /* 2 + 200 > 50 */
  struct verdict whole = scan_whole(b, n, 50, NULL);
  ck_assert_int_eq(whole.code, 1009);
  ck_assert_uint_eq(whole.ok, bad);
  /* A header split between the calls is reported at offset 0 of the
   * second: k, made absolute. */
  for (size_t k = 0; k <= n; k++) {
    struct verdict v = scan_split(b, n, k, 50, NULL);
    ck_assert_int_eq(v.code, 1009);
    ck_assert_str_eq(v.why, "message too big");
    ck_assert_uint_eq(v.ok, k > bad && k < bad + 8 ? k : bad);
  }
  /* The same with a 1002 in a ping's header. */
  n = bad;
  n += put(b + n, 0x89, 1, LEN16, 126, NULL, 0);
  for (size_t k = 0; k <= n; k++) {
    struct verdict v = scan_split(b, n, k, 50, NULL);
    ck_assert_int_eq(v.code, 1002);
    ck_assert_str_eq(v.why, "control frame over 125 bytes");
    ck_assert_uint_eq(v.ok, k > bad && k < bad + 8 ? k : bad);
  }
}
END_TEST

START_TEST(unmask_reference) {
  uint8_t key[4] = {0x01, 0x80, 0xfe, 0x5a};
  for (size_t off = 0; off < 8; off++) {
    for (size_t n = 0; n <= 40; n++) {
      uint8_t buf[64], want[64], orig[64];
      for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 37 + off * 11 + n);
      memcpy(orig, buf, sizeof(buf));
      memcpy(want, buf, sizeof(buf));
      for (size_t i = 0; i < n; i++)
        want[off + i] ^= key[i & 3];
      wschat__ws_unmask(buf + off, n, key);
      ck_assert_msg(memcmp(buf, want, sizeof(buf)) == 0, "off %zu n %zu", off,
                    n); /* bytes around it untouched too */
      wschat__ws_unmask(buf + off, n, key);
      ck_assert_mem_eq(buf, orig, sizeof(buf));
    }
  }
  /* One concrete value: "Hello" masked in RFC 6455 5.7. */
  uint8_t m[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
  wschat__ws_unmask(m, 5, KEY);
  ck_assert_mem_eq(m, "Hello", 5);
}
END_TEST

struct taken {
  size_t n;
  int op;
  const uint8_t *payload;
  size_t len;
};

static struct taken fast(uint8_t *p, size_t len, uint64_t max) {
  struct taken t = {0, -1, NULL, 12345};
  t.n = wschat__ws_fast_frame(p, len, max, &t.op, &t.payload, &t.len);
  return t;
}

START_TEST(fast_takes) {
  static uint8_t b[70000];
  /* RFC 6455 5.7's masked "Hello". */
  static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                  0x7f, 0x9f, 0x4d, 0x51, 0x58};
  memcpy(b, hello, sizeof(hello));
  b[11] = 0x89; /* a ping follows: not part of this frame */
  struct taken t = fast(b, 12, MAX);
  ck_assert_uint_eq(t.n, 11);
  ck_assert_int_eq(t.op, 1);
  ck_assert_ptr_eq(t.payload, b + 6);
  ck_assert_uint_eq(t.len, 5);
  ck_assert_mem_eq(b + 6, "Hello", 5);
  ck_assert_uint_eq(b[11], 0x89);

  /* Binary, 16-bit length, exactly at the limit, bytes not UTF-8. */
  uint8_t pl[300];
  for (size_t i = 0; i < sizeof(pl); i++)
    pl[i] = (uint8_t)(0xff - i);
  size_t n = frame(b, 0x82, pl, 300);
  ck_assert_uint_eq(n, 308);
  t = fast(b, n, 300);
  ck_assert_uint_eq(t.n, 308);
  ck_assert_int_eq(t.op, 2);
  ck_assert_ptr_eq(t.payload, b + 8);
  ck_assert_uint_eq(t.len, 300);
  ck_assert_mem_eq(t.payload, pl, 300);

  /* An empty text frame, with a limit of 0. */
  n = frame(b, 0x81, NULL, 0);
  ck_assert_uint_eq(n, 6);
  t = fast(b, n, 0);
  ck_assert_uint_eq(t.n, 6);
  ck_assert_int_eq(t.op, 1);
  ck_assert_uint_eq(t.len, 0);
  /* The largest 16-bit text frame, with multi-byte characters. */
  static uint8_t text[65535];
  memset(text, 'a', sizeof(text));
  memcpy(text + 1000, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
  n = frame(b, 0x81, text, sizeof(text));
  t = fast(b, n, 65535);
  ck_assert_uint_eq(t.n, 8 + 65535);
  ck_assert_int_eq(t.op, 1);
  ck_assert_mem_eq(t.payload, text, sizeof(text));
}
END_TEST

/* Expects the frame in p[0..len) to be refused and left as it was. */
static void refused(uint8_t *p, size_t len, uint64_t max, const char *what) {
  uint8_t *copy = malloc(len ? len : 1);
  ck_assert_ptr_nonnull(copy);
  memcpy(copy, p, len);
  struct taken t = fast(p, len, max);
  ck_assert_msg(t.n == 0, "%s: taken", what);
  ck_assert_msg(t.op == -1 && t.payload == NULL && t.len == 12345,
                "%s: outputs written", what);
  ck_assert_msg(memcmp(p, copy, len) == 0, "%s: bytes changed", what);
  free(copy);
}

START_TEST(fast_refuses) {
  static uint8_t b[70000];
  size_t n;
  n = put(b, 0x01, 1, LEN7, 3, "abc", 3);
  refused(b, n, MAX, "text without FIN");
  n = put(b, 0x00, 1, LEN7, 3, "abc", 3);
  refused(b, n, MAX, "continuation");
  n = put(b, 0x80, 1, LEN7, 3, "abc", 3);
  refused(b, n, MAX, "final continuation");
  n = put(b, 0x81, 0, LEN7, 3, "abc", 3);
  refused(b, n, MAX, "unmasked");
  /* Followed by more bytes, so that it would be long enough if masked. */
  n = put(b, 0x82, 0, LEN7, 3, "abc", 3);
  memset(b + n, 0, 8);
  refused(b, n + 8, MAX, "unmasked, more bytes after");
  n = put(b, 0x82, 0, LEN16, 200, NULL, 200);
  memset(b + n, 0, 8);
  refused(b, n + 8, MAX, "unmasked 16-bit");
  for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
    n = put(b, (uint8_t)(0x81 | rsv), 1, LEN7, 3, "abc", 3);
    refused(b, n, MAX, "RSV set");
  }
  n = put(b, 0x82, 1, LEN64, 0x10000, NULL, 0x10000);
  refused(b, n, UINT64_MAX, "64-bit length");
  n = put(b, 0x82, 1, LEN16, 125, NULL, 125);
  refused(b, n, MAX, "non-minimal 16-bit length");
  n = frame(b, 0x82, "abcd", 4);
  refused(b, n, 3, "over the limit");
  n = frame(b, 0x82, NULL, 1001);
  refused(b, n, MAX, "16-bit over the limit");
  n = frame(b, 0x89, "ping", 4);
  refused(b, n, MAX, "ping");
  n = frame(b, 0x88, "\x03\xe8", 2);
  refused(b, n, MAX, "close");
  n = frame(b, 0x83, "abc", 3);
  refused(b, n, MAX, "reserved opcode");
  /* Every partial frame, 7- and 16-bit. */
  n = frame(b, 0x81, "hello", 5);
  for (size_t k = 0; k < n; k++)
    refused(b, k, MAX, "partial 7-bit");
  n = frame(b, 0x82, NULL, 130);
  for (size_t k = 0; k < n; k++)
    refused(b, k, MAX, "partial 16-bit");
  /* Invalid UTF-8: unmasked, checked, masked back. */
  static const char *bad[] = {"\xff", "ab\xc3", "\xed\xa0\x80",
                              "0123456789\xc0\xaf", "\xf4\x90\x80\x80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    n = frame(b, 0x81, bad[i], strlen(bad[i]));
    refused(b, n, MAX, bad[i]);
    b[0] = 0x82; /* the same bytes as binary are taken */
    struct taken t = fast(b, n, MAX);
    ck_assert_uint_eq(t.n, n);
    ck_assert_int_eq(t.op, 2);
    ck_assert_mem_eq(t.payload, bad[i], strlen(bad[i]));
  }
}
END_TEST

/* What the fast path takes, the scanner accepts, ending between messages. */
START_TEST(fast_agrees_with_scan) {
  uint8_t b[512];
  size_t n = 0;
  n += frame(b + n, 0x81, "one", 3);
  n += frame(b + n, 0x82, "\x00\x01", 2);
  n += frame(b + n, 0x81, NULL, 0);
  uint8_t copy[512];
  memcpy(copy, b, n);
  size_t pos = 0, frames = 0;
  struct taken t;
  while ((t = fast(b + pos, n - pos, MAX)).n != 0) {
    pos += t.n;
    frames++;
  }
  ck_assert_uint_eq(frames, 3);
  ck_assert_uint_eq(pos, n);
  struct wschat__ws_scan s;
  struct verdict v = scan_whole(copy, n, MAX, &s);
  ck_assert_int_eq(v.code, 0);
  ck_assert(wschat__ws_scan_between_messages(&s));
}
END_TEST

/* With stop_at_close, the scan ends just past a whole close frame and
 * counts its bytes, cut anywhere; nothing after it is read. */
START_TEST(stop_at_close) {
  uint8_t b[64];
  size_t n = frame(b, 0x81, "hi", 2);
  size_t c = frame(b + n, 0x88, "\x03\xe8ok", 4);
  size_t t = frame(b + n + c, 0x81, "after", 5);
  for (size_t cut = 0; cut <= n + c + t; cut++) {
    struct wschat__ws_scan s;
    memset(&s, 0, sizeof(s));
    s.stop_at_close = 1;
    int code = -1;
    const char *why = NULL;
    size_t ok = wschat__ws_scan(&s, b, cut, 10, &code, &why);
    ck_assert_int_eq(code, 0);
    if (cut < n + c) {
      ck_assert_uint_eq(ok, cut);
      ck_assert_uint_eq(s.close_len, cut > n ? cut - n : 0);
      ck_assert(!s.close_done);
      ok += wschat__ws_scan(&s, b + cut, n + c + t - cut, 10, &code, &why);
    }
    ck_assert_int_eq(code, 0);
    ck_assert_uint_eq(ok, n + c);
    ck_assert_uint_eq(s.close_len, c);
    ck_assert(s.close_done);
    ck_assert_uint_eq(wschat__ws_scan(&s, b + n + c, t, 10, &code, &why), 0);
  }
}
END_TEST

/* A continuation frame with no message to continue is not counted on top
 * of the last message's size (wslay fails it with 1002 either way). */
START_TEST(stray_continuation_size) {
  uint8_t b[64];
  size_t n = frame(b, 0x81, "12345678", 8);
  n += frame(b + n, 0x80, "12345678", 8);
  struct wschat__ws_scan s;
  struct verdict v = scan_whole(b, n, 10, &s);
  ck_assert_int_eq(v.code, 0);
  ck_assert_uint_eq(v.ok, n);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ws_codec");
  TCase *tc = tcase_create("ws_codec");
  tcase_add_test(tc, nonminimal_lengths);
  tcase_add_test(tc, control_frames);
  tcase_add_test(tc, top_bit_length);
  tcase_add_test(tc, reserved_bits);
  tcase_add_test(tc, too_big_single);
  tcase_add_test(tc, too_big_fragments);
  tcase_add_test(tc, ping_between_fragments);
  tcase_add_test(tc, chunking_valid);
  tcase_add_test(tc, chunking_invalid);
  tcase_add_test(tc, unmask_reference);
  tcase_add_test(tc, fast_takes);
  tcase_add_test(tc, fast_refuses);
  tcase_add_test(tc, fast_agrees_with_scan);
  tcase_add_test(tc, stop_at_close);
  tcase_add_test(tc, stray_continuation_size);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
