/* Unit tests: permessage-deflate (lib/deflate.c): the negotiation of an
 * offer, the response, compressed frames (threshold, incompressible data,
 * each message on its own, the window asked for) and the bounded inflater
 * (the limit, the ratio bound, corrupt data). Inflation is checked with
 * zlib's own raw inflate, not with ours. */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "deflate.h"
#include "frame.h"

static int nego(const char *s, struct wschat__pmd *p) {
  memset(p, 0xAB, sizeof(*p)); /* an unaccepted offer leaves no trace */
  return wschat__pmd_negotiate(s, strlen(s), p);
}

START_TEST(negotiate_parameters) {
  struct wschat__pmd p;
  ck_assert_int_eq(nego("permessage-deflate", &p), 1);
  ck_assert_uint_eq(p.server_bits, 15);
  ck_assert_uint_eq(p.server_bits_asked, 0);
  ck_assert_uint_eq(p.client_bits, 0);
  ck_assert_uint_eq(p.client_nct, 0);
  ck_assert_uint_eq(p.server_nct, 0);
  ck_assert_int_eq(nego("permessage-deflate; client_max_window_bits", &p), 1);
  ck_assert_uint_eq(p.client_bits, 1);
  ck_assert_int_eq(nego("permessage-deflate;client_max_window_bits=9", &p), 1);
  ck_assert_uint_eq(p.client_bits, 9);
  ck_assert_int_eq(
      nego("permessage-deflate; server_max_window_bits=8;"
           " server_no_context_takeover ;client_no_context_takeover",
           &p),
      1);
  ck_assert_uint_eq(p.server_bits, 8);
  ck_assert_uint_eq(p.server_bits_asked, 1);
  ck_assert_uint_eq(p.server_nct, 1);
  ck_assert_uint_eq(p.client_nct, 1);
  ck_assert_uint_eq(wschat__pmd_key(&p), 1);
  ck_assert_int_eq(
      nego("permessage-deflate; server_max_window_bits=\"15\"", &p), 1);
  ck_assert_uint_eq(wschat__pmd_key(&p), WSCHAT__ZKEY_DEFAULT);
  ck_assert_int_eq(nego("PerMessage-Deflate; Server_Max_Window_Bits=10", &p),
                   1);
  ck_assert_uint_eq(p.server_bits, 10);
}
END_TEST

START_TEST(negotiate_declines) {
  static const char *const bad[] = {
      "",
      ",,,",
      "permessage-deflate; foo",
      "permessage-deflate; foo=bar",
      ("permessage-deflate; server_no_context_takeover; "
       "server_no_context_takeover"),
      "permessage-deflate; client_no_context_takeover=1",
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=",
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=08",
      "permessage-deflate; server_max_window_bits=1 5",
      "permessage-deflate; server_max_window_bits=\"1 5\"",
      "permessage-deflate; server_max_window_bits=\"\"",
      "permessage-deflate; server_max_window_bits=\"15",
      "permessage-deflate; client_max_window_bits=0",
      "permessage-deflate; client_max_window_bits=123456789012345678901",
      "permessage-deflate;",
      "permessage-deflate; ;",
      "permessage-deflate x",
      "permessage-deflatex",
      "x-webkit-deflate-frame",
      "deflate-stream; permessage-deflate",
      "\"permessage-deflate\"",
  };
  struct wschat__pmd p;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(nego(bad[i], &p) == 0, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(negotiate_first_acceptable) {
  struct wschat__pmd p;
  ck_assert_int_eq(nego("permessage-deflate; server_max_window_bits=7, "
                        "permessage-deflate; server_max_window_bits=11, "
                        "permessage-deflate",
                        &p),
                   1);
  ck_assert_uint_eq(p.server_bits, 11);
  /* a broken offer (a quoted comma, an unterminated one) ends at its comma */
  ck_assert_int_eq(nego("permessage-deflate; a=\"x,y\", permessage-deflate; "
                        "server_max_window_bits=12",
                        &p),
                   1);
  ck_assert_uint_eq(p.server_bits, 12);
  ck_assert_int_eq(nego("foo; bar=\"\\\"\", permessage-deflate", &p), 1);
  ck_assert_uint_eq(p.server_bits, 15);
  ck_assert_int_eq(
      nego("foo=, permessage-deflate; server_max_window_bits=9", &p), 1);
  ck_assert_uint_eq(p.server_bits, 9);
  ck_assert_int_eq(nego("permessage-deflate; server_max_window_bits=\"10", &p),
                   0);
}
END_TEST

START_TEST(response) {
  struct wschat__pmd p;
  char out[160];
  ck_assert_int_eq(nego("permessage-deflate", &p), 1);
  size_t n = wschat__pmd_response(&p, out, sizeof(out));
  ck_assert_str_eq(out, "permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover");
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_int_eq(nego("permessage-deflate; client_max_window_bits; "
                        "server_max_window_bits=9",
                        &p),
                   1);
  wschat__pmd_response(&p, out, sizeof(out));
  ck_assert_str_eq(out, "permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover; server_max_window_bits=9");
  ck_assert_int_eq(nego("permessage-deflate; client_max_window_bits=10", &p),
                   1);
  wschat__pmd_response(&p, out, sizeof(out));
  ck_assert_str_eq(out,
                   "permessage-deflate; server_no_context_takeover; "
                   "client_no_context_takeover; client_max_window_bits=10");
  ck_assert_uint_eq(wschat__pmd_response(&p, out, 20), 0); /* too small */
}
END_TEST

/* zlib's raw inflate of a compressed payload, strictly: one output byte at
 * a time, so that every distance is checked against the window of bits. */
static size_t zinflate(const uint8_t *in, size_t len, int bits, uint8_t *out,
                       size_t cap) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  ck_assert_int_eq(inflateInit2(&s, -bits), Z_OK);
  uint8_t *buf = malloc(len + 4);
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, in, len);
  memcpy(buf + len, "\0\0\xff\xff", 4);
  s.next_in = buf;
  s.avail_in = (uInt)(len + 4);
  size_t n = 0;
  while (n < cap) {
    s.next_out = out + n;
    s.avail_out = 1;
    int r = inflate(&s, Z_SYNC_FLUSH);
    ck_assert_msg(r == Z_OK || r == Z_BUF_ERROR, "zlib says %d", r);
    n += 1 - s.avail_out;
    if (s.avail_out == 1)
      break;
  }
  inflateEnd(&s);
  free(buf);
  return n;
}

/* Bytes with repeats at 400, 700 and 5000 bytes of distance. */
static size_t far_repeats(uint8_t *p) {
  uint32_t x = 12345;
  size_t n = 0;
  static const size_t sizes[] = {400, 700, 5000};
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < sizes[k]; i++) {
      x = x * 1103515245u + 12345u;
      p[n + i] = (uint8_t)(x >> 16);
    }
    memcpy(p + n + sizes[k], p + n, sizes[k]);
    n += 2 * sizes[k];
  }
  return n;
}

START_TEST(compress_frames) {
  struct wschat__deflate *z = wschat__deflate_new(WSCHAT__DEFLATE_THRESHOLD);
  ck_assert_ptr_nonnull(z);
  static uint8_t msg[20000], back[20000];
  size_t len = far_repeats(msg);
  for (size_t i = 0; i < 3000; i++)
    msg[len + i] = (uint8_t) "the quick brown fox "[i % 20];
  len += 3000;
  struct wschat__frame *plain = wschat__frame_new(WSCHAT__OP_BINARY, msg, len);
  ck_assert_ptr_nonnull(plain);
  for (unsigned key = 1; key < WSCHAT__ZKEYS; key++) {
    struct wschat__frame *f = wschat__deflate_frame(z, key, plain);
    ck_assert_ptr_ne(f, plain);
    ck_assert_uint_eq(f->data[0], 0x80 | 0x40 | WSCHAT__OP_BINARY);
    size_t zl;
    const uint8_t *zp = wschat__frame_payload(f, &zl);
    ck_assert_uint_lt(zl, len);
    /* the window asked for is enough, every time (no context kept) */
    for (int again = 0; again < 2; again++) {
      ck_assert_uint_eq(zinflate(zp, zl, (int)key + 7, back, sizeof(back)),
                        len);
      ck_assert_mem_eq(back, msg, len);
    }
    struct wschat__frame *g = wschat__deflate_frame(z, key, plain);
    size_t gl;
    const uint8_t *gp = wschat__frame_payload(g, &gl);
    ck_assert_uint_eq(gl, zl); /* each message compressed on its own */
    ck_assert_mem_eq(gp, zp, zl);
    wschat__frame_unref(g);
    wschat__frame_unref(f);
  }
  ck_assert_uint_eq(plain->refs, 1);
  wschat__frame_unref(plain);
  wschat__deflate_free(z);
}
END_TEST

/* Drops the extra reference deflate_frame() returned with f itself (an
 * unref GCC would think could be after a free). */
static void same_frame(struct wschat__frame *got, struct wschat__frame *f) {
  ck_assert_ptr_eq(got, f);
  ck_assert_uint_eq(f->refs, 2);
  f->refs--;
}

START_TEST(compress_skips) {
  struct wschat__deflate *z = wschat__deflate_new(100);
  uint8_t msg[400];
  memset(msg, 'a', sizeof(msg));
  /* under the threshold: the same frame, one more reference */
  struct wschat__frame *s = wschat__frame_new(WSCHAT__OP_TEXT, msg, 99);
  same_frame(wschat__deflate_frame(z, WSCHAT__ZKEY_DEFAULT, s), s);
  wschat__frame_unref(s);
  /* at it: compressed */
  struct wschat__frame *t = wschat__frame_new(WSCHAT__OP_TEXT, msg, 100);
  struct wschat__frame *tz = wschat__deflate_frame(z, WSCHAT__ZKEY_DEFAULT, t);
  ck_assert_ptr_ne(tz, t);
  ck_assert_uint_eq(tz->data[0], 0xC1);
  wschat__frame_unref(tz);
  /* key 0 and z NULL: never */
  same_frame(wschat__deflate_frame(z, 0, t), t);
  same_frame(wschat__deflate_frame(NULL, 8, t), t);
  wschat__frame_unref(t);
  /* incompressible: the plain frame */
  uint32_t x = 7;
  for (size_t i = 0; i < sizeof(msg); i++) {
    x = x * 1103515245u + 12345u;
    msg[i] = (uint8_t)(x >> 16);
  }
  struct wschat__frame *r = wschat__frame_new(WSCHAT__OP_BINARY, msg, 400);
  same_frame(wschat__deflate_frame(z, WSCHAT__ZKEY_DEFAULT, r), r);
  wschat__frame_unref(r);
  /* control frames and already compressed frames are left alone */
  struct wschat__frame *p = wschat__frame_new(WSCHAT__OP_PING, msg, 120);
  same_frame(wschat__deflate_frame(z, WSCHAT__ZKEY_DEFAULT, p), p);
  wschat__frame_unref(p);
  /* deflate_own takes the reference */
  memset(msg, 'b', sizeof(msg));
  struct wschat__frame *o = wschat__frame_new(WSCHAT__OP_TEXT, msg, 300);
  struct wschat__frame *oz = wschat__deflate_own(z, WSCHAT__ZKEY_DEFAULT, o);
  ck_assert_ptr_ne(oz, o);
  ck_assert_uint_eq(oz->refs, 1);
  wschat__frame_unref(oz); /* o is gone with the call */
  wschat__deflate_set_threshold(z, 0);
  struct wschat__frame *e = wschat__frame_new(WSCHAT__OP_TEXT, "", 0);
  same_frame(wschat__deflate_frame(z, WSCHAT__ZKEY_DEFAULT, e), e);
  wschat__frame_unref(e);
  wschat__deflate_free(z);
}
END_TEST

/* A raw deflate stream of in, as a client sends it (tail stripped). */
static size_t zcompress(const uint8_t *in, size_t len, uint8_t *out,
                        size_t cap) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY),
                   Z_OK);
  s.next_in = (Bytef *)(uintptr_t)in;
  s.avail_in = (uInt)len;
  s.next_out = out;
  s.avail_out = (uInt)cap;
  ck_assert_int_eq(deflate(&s, Z_SYNC_FLUSH), Z_OK);
  size_t n = cap - s.avail_out;
  deflateEnd(&s);
  ck_assert_uint_ge(n, 4);
  return n - 4;
}

START_TEST(inflate_bounded) {
  struct wschat__deflate *z = wschat__deflate_new(0);
  size_t big = 3u << 20;
  uint8_t *src = calloc(1, big), *zbuf = malloc(big);
  ck_assert_ptr_nonnull(src);
  ck_assert_ptr_nonnull(zbuf);
  for (size_t i = 0; i < 100000; i++)
    src[i] = (uint8_t) "lorem ipsum dolor sit amet "[i % 27];
  size_t zl = zcompress(src, 100000, zbuf, big);
  const uint8_t *out;
  size_t ol;
  const char *why;
  /* exactly at the limit: fine; one byte under: 1009 */
  ck_assert_int_eq(
      wschat__deflate_inflate(z, zbuf, zl, 100000, &out, &ol, &why), 0);
  ck_assert_uint_eq(ol, 100000);
  ck_assert_mem_eq(out, src, 100000);
  ck_assert_int_eq(wschat__deflate_inflate(z, zbuf, zl, 99999, &out, &ol, &why),
                   1009);
  ck_assert_str_eq(why, "message too big");
  /* the same stream again: the context was reset */
  ck_assert_int_eq(
      wschat__deflate_inflate(z, zbuf, zl, 1 << 20, &out, &ol, &why), 0);
  ck_assert_uint_eq(ol, 100000);
  /* an empty message */
  size_t el = zcompress(src, 0, zbuf, big);
  ck_assert_int_eq(wschat__deflate_inflate(z, zbuf, el, 10, &out, &ol, &why),
                   0);
  ck_assert_uint_eq(ol, 0);
  /* a bomb: 3 MiB of zeros in about 3 KiB, under a 4 MiB limit: the ratio */
  memset(src, 0, big);
  zl = zcompress(src, big, zbuf, big);
  ck_assert_uint_lt(zl, big / WSCHAT__INFLATE_RATIO);
  ck_assert_int_eq(
      wschat__deflate_inflate(z, zbuf, zl, 4u << 20, &out, &ol, &why), 1009);
  ck_assert_str_eq(why, "compression ratio too high");
  /* corrupt data: 1007 (a reserved block type, then garbage) */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x00, 0x12};
  ck_assert_int_eq(
      wschat__deflate_inflate(z, junk, sizeof(junk), 1000, &out, &ol, &why),
      1007);
  ck_assert_str_eq(why, "invalid compressed data");
  /* and it still works afterwards */
  memcpy(src, "hello", 5);
  zl = zcompress(src, 5, zbuf, big);
  ck_assert_int_eq(wschat__deflate_inflate(z, zbuf, zl, 10, &out, &ol, &why),
                   0);
  ck_assert_uint_eq(ol, 5);
  ck_assert_mem_eq(out, "hello", 5);
  free(src);
  free(zbuf);
  wschat__deflate_free(z);
}
END_TEST

START_TEST(inflate_final_block) {
  /* a client may end its message with a final block (BFINAL): fine; bytes
   * after it are not */
  struct wschat__deflate *z = wschat__deflate_new(0);
  uint8_t buf[64];
  z_stream s;
  memset(&s, 0, sizeof(s));
  ck_assert_int_eq(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  s.next_in = (Bytef *)"final";
  s.avail_in = 5;
  s.next_out = buf;
  s.avail_out = sizeof(buf);
  ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
  size_t n = sizeof(buf) - s.avail_out;
  deflateEnd(&s);
  const uint8_t *out;
  size_t ol;
  const char *why;
  ck_assert_int_eq(wschat__deflate_inflate(z, buf, n, 100, &out, &ol, &why), 0);
  ck_assert_uint_eq(ol, 5);
  buf[n] = 0x42;
  ck_assert_int_eq(wschat__deflate_inflate(z, buf, n + 1, 100, &out, &ol, &why),
                   1007);
  wschat__deflate_free(z);
}
END_TEST

int main(void) {
  Suite *s = suite_create("deflate");
  TCase *tc = tcase_create("deflate");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, negotiate_parameters);
  tcase_add_test(tc, negotiate_declines);
  tcase_add_test(tc, negotiate_first_acceptable);
  tcase_add_test(tc, response);
  tcase_add_test(tc, compress_frames);
  tcase_add_test(tc, compress_skips);
  tcase_add_test(tc, inflate_bounded);
  tcase_add_test(tc, inflate_final_block);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
