/* tests/test_http.c -- unit tests for lib/http.c (the upgrade handshake).
 *
 * Every request is fed in several chunkings (whole, one byte at a time, every
 * two-way split), the way the wslay/nghttp2 tests script their input. Each
 * test is its own TCase, so one runs alone with CK_RUN_CASE=<name>.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_HDR 8192

static const char valid_req[] = "GET /chat?name=al%69ce&room=x#frag HTTP/1.1\r\n"
                                "Host: server.example.com\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Origin: http://example.com\r\n"
                                "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "\r\n";

/* Feeds len bytes in chunks of at most chunk bytes, checking on every call
 * that no more is consumed than offered and that only the last call of a
 * finished request consumes less. Returns the total consumed. */
static size_t feed_chunked(struct wschat__http *h, const char *data, size_t len, size_t chunk) {
  size_t off = 0;
  while (off < len && wschat__http_state(h) == WSCHAT__HTTP_INCOMPLETE) {
    size_t n = len - off < chunk ? len - off : chunk;
    size_t used = wschat__http_feed(h, data + off, n);
    ck_assert_uint_le(used, n);
    if (wschat__http_state(h) == WSCHAT__HTTP_INCOMPLETE)
      ck_assert_uint_eq(used, n);
    off += used;
    if (wschat__http_state(h) != WSCHAT__HTTP_INCOMPLETE)
      break;
  }
  return off;
}

static void check_valid(const struct wschat__http *h) {
  const struct wschat__http_header *hd;
  ck_assert_int_eq(wschat__http_state(h), WSCHAT__HTTP_DONE);
  ck_assert_int_eq(h->status, 0);
  ck_assert_ptr_null(h->error);
  ck_assert_int_eq(h->is_upgrade, 1);
  ck_assert_int_eq(h->is_head, 0);
  ck_assert_uint_eq(h->path_len, 5);
  ck_assert(memcmp(h->path, "/chat", 5) == 0);
  ck_assert_uint_eq(h->query_len, strlen("name=al%69ce&room=x"));
  ck_assert(memcmp(h->query, "name=al%69ce&room=x", h->query_len) == 0);
  ck_assert_uint_eq(h->key_len, 24);
  ck_assert(memcmp(h->key, "dGhlIHNhbXBsZSBub25jZQ==", 24) == 0);
  hd = wschat__http_header(h, "origin");
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->value_len, strlen("http://example.com"));
  ck_assert(memcmp(hd->value, "http://example.com", hd->value_len) == 0);
  ck_assert(wschat__http_header_has_token(h, "Sec-WebSocket-Protocol", "superchat"));
}

/* Runs one request through a fresh parser with the given chunk size. */
static void expect(const char *req, size_t chunk, int status) {
  struct wschat__http h;
  size_t len = strlen(req), used;
  wschat__http_init(&h, MAX_HDR);
  used = feed_chunked(&h, req, len, chunk);
  ck_assert_uint_le(used, len);
  if (status == 0) {
    ck_assert_msg(wschat__http_state(&h) == WSCHAT__HTTP_DONE, "expected DONE, got %d (%d %s)",
                  wschat__http_state(&h), h.status, h.error ? h.error : "");
    ck_assert_int_eq(h.status, 0);
  } else {
    ck_assert_msg(wschat__http_state(&h) == WSCHAT__HTTP_FAILED, "expected %d for: %s", status,
                  req);
    ck_assert_msg(h.status == status, "expected %d, got %d (%s) for: %s", status, h.status,
                  h.error, req);
    ck_assert_ptr_nonnull(h.error);
    ck_assert_ptr_null(wschat__http_header(&h, "Host"));
  }
  wschat__http_free(&h);
}

static void expect_all_chunkings(const char *req, int status) {
  expect(req, (size_t)-1, status);
  expect(req, 1, status);
  expect(req, 3, status);
}

/* ---- Sec-WebSocket-Accept --------------------------------------------- */

START_TEST(accept_rfc_example) {
  char out[29];
  wschat__ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
  ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

/* ---- valid upgrades ---------------------------------------------------- */

START_TEST(upgrade_whole) {
  struct wschat__http h;
  size_t len = strlen(valid_req);
  wschat__http_init(&h, MAX_HDR);
  ck_assert_uint_eq(wschat__http_feed(&h, valid_req, len), len);
  check_valid(&h);
  /* Once DONE, nothing more is consumed. */
  ck_assert_uint_eq(wschat__http_feed(&h, "x", 1), 0);
  check_valid(&h);
  wschat__http_free(&h);
}
END_TEST

START_TEST(upgrade_one_byte_at_a_time) {
  struct wschat__http h;
  size_t i, len = strlen(valid_req);
  wschat__http_init(&h, MAX_HDR);
  for (i = 0; i < len; i++) {
    ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_INCOMPLETE);
    ck_assert_uint_eq(wschat__http_feed(&h, valid_req + i, 1), 1);
  }
  check_valid(&h);
  wschat__http_free(&h);
}
END_TEST

START_TEST(upgrade_every_split) {
  size_t k, len = strlen(valid_req);
  for (k = 0; k <= len; k++) {
    struct wschat__http h;
    size_t a;
    wschat__http_init(&h, MAX_HDR);
    a = wschat__http_feed(&h, valid_req, k);
    ck_assert_uint_eq(a, k);
    if (k < len) {
      ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_INCOMPLETE);
      ck_assert_uint_eq(wschat__http_feed(&h, valid_req + k, len - k), len - k);
    }
    check_valid(&h);
    wschat__http_free(&h);
  }
}
END_TEST

START_TEST(leftover_bytes_returned) {
  /* A WebSocket frame pipelined behind the handshake must not be eaten,
   * wherever the chunk boundary falls. */
  char buf[1024];
  const char frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  size_t req_len = strlen(valid_req), total, k;
  memcpy(buf, valid_req, req_len);
  memcpy(buf + req_len, frame, sizeof(frame) - 1);
  total = req_len + sizeof(frame) - 1;
  for (k = 0; k <= total; k++) {
    struct wschat__http h;
    size_t a, b = 0;
    wschat__http_init(&h, MAX_HDR);
    a = wschat__http_feed(&h, buf, k);
    if (wschat__http_state(&h) == WSCHAT__HTTP_INCOMPLETE)
      b = wschat__http_feed(&h, buf + a, total - a);
    check_valid(&h);
    ck_assert_uint_eq(a + b, req_len);
    wschat__http_free(&h);
  }
}
END_TEST

START_TEST(bare_lf_line_endings) {
  /* http_parser tolerates bare LF; the count must still end past the last LF. */
  static const char req[] = "GET / HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: upgrade\n"
                            "Sec-WebSocket-Version: 13\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\n"
                            "\nREST";
  struct wschat__http h;
  wschat__http_init(&h, MAX_HDR);
  ck_assert_uint_eq(wschat__http_feed(&h, req, strlen(req)), strlen(req) - 4);
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);
  ck_assert_int_eq(h.is_upgrade, 1);
  wschat__http_free(&h);
}
END_TEST

START_TEST(connection_and_upgrade_tokens) {
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
                       "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       0);
  /* Connection repeated over two fields; tokens with odd whitespace. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: foo/2 ,\t websocket \r\n"
                       "Connection: keep-alive\r\nConnection:  UPGRADE  \r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       0);
}
END_TEST

START_TEST(plain_get_and_head) {
  struct wschat__http h;
  static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n";
  static const char head[] = "HEAD /healthz?a=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char absolute[] = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";

  wschat__http_init(&h, MAX_HDR);
  ck_assert_uint_eq(wschat__http_feed(&h, get, strlen(get)), strlen(get));
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);
  ck_assert_int_eq(h.is_upgrade, 0);
  ck_assert_int_eq(h.is_head, 0);
  ck_assert_uint_eq(h.path_len, 8);
  ck_assert(memcmp(h.path, "/healthz", 8) == 0);
  ck_assert_ptr_null(h.query);
  ck_assert_ptr_null(h.key);
  wschat__http_free(&h);

  /* The struct may be re-inited after free. */
  wschat__http_init(&h, MAX_HDR);
  ck_assert_uint_eq(wschat__http_feed(&h, head, strlen(head)), strlen(head));
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);
  ck_assert_int_eq(h.is_upgrade, 0);
  ck_assert_int_eq(h.is_head, 1);
  ck_assert_uint_eq(h.query_len, 3);
  ck_assert(memcmp(h.query, "a=1", 3) == 0);
  wschat__http_free(&h);

  wschat__http_init(&h, MAX_HDR);
  ck_assert_uint_eq(wschat__http_feed(&h, absolute, strlen(absolute)), strlen(absolute));
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);
  ck_assert_uint_eq(h.path_len, 1);
  ck_assert_int_eq(h.path[0], '/');
  wschat__http_free(&h);

  /* Content-Length: 0 is not a body. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 0);
}
END_TEST

/* ---- failures ---------------------------------------------------------- */

#define UPG_TAIL                                                                                 \
  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                   \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

START_TEST(fail_400_malformed) {
  expect_all_chunkings("GARBAGE\r\n\r\n", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", 400);
  expect_all_chunkings("GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400);
  expect_all_chunkings("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  expect_all_chunkings("get / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  /* RFC 7230 3.2.4: no whitespace between field name and colon. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400);
  expect_all_chunkings("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  /* A non-strict http_parser takes any byte after the final CR as its LF. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\n\r\x81\x85", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\n\r X: y\r\n\r\n", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400);
}
END_TEST

START_TEST(fail_400_body) {
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n" UPG_TAIL, 400);
}
END_TEST

START_TEST(fail_400_host) {
  expect_all_chunkings("GET / HTTP/1.1\r\n" UPG_TAIL, 400);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  expect_all_chunkings("GET /healthz HTTP/1.1\r\n\r\n", 400);
}
END_TEST

START_TEST(fail_400_upgrade_rules) {
  /* Upgrade to something else. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       400);
  /* Upgrade: websocket without Connection: upgrade. */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: keep-alive\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       400);
  /* "upgrades" is not the token "upgrade". */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: upgrades\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       400);
}
END_TEST

START_TEST(fail_400_key) {
  static const char *const bad_keys[] = {
      NULL,                        /* missing */
      "",                          /* empty */
      "dGhlIHNhbXBsZSBub25jZQ=",   /* too short */
      "dGhlIHNhbXBsZSBub25jZQ===", /* too long */
      "dGhlIHNhbXBsZSBub25jZQAA",  /* 18 bytes, no padding */
      "dGhlIHNhbXBsZSBub25j*Q==",  /* not base64 */
      "dGhlIHNhbXBsZSBub25jZR==",  /* non-canonical trailing bits */
      "dGhlIHNhbXBsZSBub25jZQ=A",  /* bad padding */
      "c2l4dGVlbiBieXRlcyBsb25nIQ==", /* base64, but of 20 bytes */
  };
  char req[512];
  size_t i;
  for (i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
    if (bad_keys[i] == NULL)
      snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    else
      snprintf(req, sizeof(req),
               "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: %s\r\n\r\n",
               bad_keys[i]);
    expect_all_chunkings(req, 400);
  }
  /* Sent twice (RFC 6455 11.3.1: must not appear more than once). */
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\n"
                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" UPG_TAIL,
                       400);
}
END_TEST

START_TEST(fail_405_method) {
  expect_all_chunkings("POST / HTTP/1.1\r\nHost: x\r\n\r\n", 405);
  expect_all_chunkings("DELETE / HTTP/1.1\r\nHost: x\r\n" UPG_TAIL, 405);
  expect_all_chunkings("OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n", 405);
  /* HEAD is fine for a plain request, not for an upgrade. */
  expect_all_chunkings("HEAD / HTTP/1.1\r\nHost: x\r\n" UPG_TAIL, 405);
}
END_TEST

START_TEST(fail_426_version) {
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Version: 8\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       426);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Version: 13, 8\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       426);
  expect_all_chunkings("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                       426);
  {
    struct wschat__http h;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Version: 7\r\n\r\n";
    wschat__http_init(&h, MAX_HDR);
    wschat__http_feed(&h, req, strlen(req));
    ck_assert_int_eq(h.status, 426);
    ck_assert_ptr_nonnull(strstr(h.error, "13"));
    wschat__http_free(&h);
  }
}
END_TEST

START_TEST(fail_505_version) {
  expect_all_chunkings("GET / HTTP/1.0\r\nHost: x\r\n" UPG_TAIL, 505);
  expect_all_chunkings("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
  expect_all_chunkings("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
  expect_all_chunkings("GET /\r\n\r\n", 400); /* HTTP/0.9-style: no version */
}
END_TEST

START_TEST(fail_431_too_many_headers) {
  char req[4096];
  size_t off, i;
  off = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\n");
  for (i = 0; i < 99; i++)
    off += (size_t)snprintf(req + off, sizeof(req) - off, "X-%zu: y\r\n", i);
  snprintf(req + off, sizeof(req) - off, "\r\n");
  expect_all_chunkings(req, 0); /* exactly 100 fields */
  off += (size_t)snprintf(req + off, sizeof(req) - off, "X-last: y\r\n");
  snprintf(req + off, sizeof(req) - off, "\r\n");
  expect_all_chunkings(req, 431); /* 101 */
}
END_TEST

START_TEST(fail_431_huge_header_streamed) {
  /* 1 MiB header value fed in 7-byte chunks against a 1 KiB limit: fails as
   * soon as the limit is passed, and never holds more than the limit. */
  enum { LIMIT = 1024, CHUNK = 7 };
  static const char head[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ";
  char chunk[CHUNK];
  struct wschat__http h;
  size_t sent = 0;
  memset(chunk, 'a', sizeof(chunk));
  wschat__http_init(&h, LIMIT);
  ck_assert_uint_eq(wschat__http_feed(&h, head, strlen(head)), strlen(head));
  sent = strlen(head);
  while (wschat__http_state(&h) == WSCHAT__HTTP_INCOMPLETE && sent < (1u << 20)) {
    size_t used = wschat__http_feed(&h, chunk, CHUNK);
    ck_assert_uint_le(used, CHUNK);
    ck_assert_uint_le(h.storage_cap, LIMIT);
    sent += CHUNK;
  }
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
  ck_assert_int_eq(h.status, 431);
  ck_assert_uint_le(sent, LIMIT + CHUNK); /* detected within one chunk */
  ck_assert_uint_le(h.storage_cap, LIMIT);
  ck_assert_uint_le(h.fed, LIMIT);
  wschat__http_free(&h);
}
END_TEST

START_TEST(limit_is_inclusive) {
  /* A header section of exactly max_header_bytes passes; one byte less fails. */
  static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nLEFTOVER";
  size_t n = strlen(req) - strlen("LEFTOVER"), chunk;
  for (chunk = 1; chunk <= strlen(req); chunk++) {
    struct wschat__http h;
    wschat__http_init(&h, n);
    ck_assert_uint_eq(feed_chunked(&h, req, strlen(req), chunk), n);
    ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);
    wschat__http_free(&h);
    wschat__http_init(&h, n - 1);
    feed_chunked(&h, req, strlen(req), chunk);
    ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
    ck_assert_int_eq(h.status, 431);
    wschat__http_free(&h);
  }
}
END_TEST

START_TEST(fail_431_parser_limit) {
  /* Above http_parser's own 80 KiB limit its overflow also maps to 431. */
  size_t limit = 200 * 1024, len;
  char *req = malloc(limit);
  struct wschat__http h;
  ck_assert_ptr_nonnull(req);
  len = (size_t)snprintf(req, limit, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(req + len, 'a', 100 * 1024);
  len += 100 * 1024;
  wschat__http_init(&h, limit);
  feed_chunked(&h, req, len, 4096);
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
  ck_assert_int_eq(h.status, 431);
  wschat__http_free(&h);
  free(req);
}
END_TEST

START_TEST(failed_state_is_sticky) {
  struct wschat__http h;
  wschat__http_init(&h, MAX_HDR);
  wschat__http_feed(&h, "BREW / HTCPCP/1.0\r\n", 19);
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
  ck_assert_int_eq(h.status, 400);
  ck_assert_uint_eq(wschat__http_feed(&h, valid_req, strlen(valid_req)), 0);
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
  wschat__http_free(&h);
  wschat__http_free(&h); /* free twice is harmless */
}
END_TEST

/* ---- header lookup ----------------------------------------------------- */

START_TEST(header_lookup) {
  static const char req[] = "GET / HTTP/1.1\r\nhOsT: x\r\nX-Dup: first\r\nx-dup:   second  \r\n"
                            "X-Empty:\r\nX-Fold: a\r\n b\r\n\r\n";
  struct wschat__http h;
  const struct wschat__http_header *hd;
  wschat__http_init(&h, MAX_HDR);
  ck_assert_ptr_null(wschat__http_header(&h, "Host")); /* not DONE yet */
  feed_chunked(&h, req, strlen(req), 2);
  ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_DONE);

  hd = wschat__http_header(&h, "HOST");
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->name_len, 4);
  ck_assert(memcmp(hd->name, "hOsT", 4) == 0);
  ck_assert_uint_eq(hd->value_len, 1);

  hd = wschat__http_header(&h, "X-DUP");
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->value_len, 5);
  ck_assert(memcmp(hd->value, "first", 5) == 0);
  hd = wschat__http_header_next(&h, "x-dup", hd);
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->value_len, 6); /* whitespace trimmed */
  ck_assert(memcmp(hd->value, "second", 6) == 0);
  ck_assert_ptr_null(wschat__http_header_next(&h, "x-dup", hd));

  hd = wschat__http_header(&h, "x-empty");
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->value_len, 0);

  hd = wschat__http_header(&h, "x-fold");
  ck_assert_ptr_nonnull(hd);
  ck_assert_uint_eq(hd->value_len, 3);
  ck_assert(memcmp(hd->value, "a b", 3) == 0);

  ck_assert_ptr_null(wschat__http_header(&h, "X-Du"));
  ck_assert_ptr_null(wschat__http_header(&h, "X-Dupe"));
  ck_assert_ptr_null(wschat__http_header(&h, ""));
  wschat__http_free(&h);
}
END_TEST

/* ---- query parameters --------------------------------------------------- */

START_TEST(query_params) {
  static const char q[] = "name=al%69ce&room=the+%41ttic&flag&empty=&bad=%zz&nul=%00&trunc=%4"
                          "&big=0123456789";
  char out[11];
  size_t ql = strlen(q);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "name", out, sizeof(out)), 5);
  ck_assert_str_eq(out, "alice");
  ck_assert_int_eq(wschat__http_query_param(q, ql, "room", out, sizeof(out)), 9);
  ck_assert_str_eq(out, "the Attic");
  ck_assert_int_eq(wschat__http_query_param(q, ql, "flag", out, sizeof(out)), 0);
  ck_assert_str_eq(out, "");
  ck_assert_int_eq(wschat__http_query_param(q, ql, "empty", out, sizeof(out)), 0);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "missing", out, sizeof(out)), -1);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "nam", out, sizeof(out)), -1);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "bad", out, sizeof(out)), -2);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "nul", out, sizeof(out)), -2);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "trunc", out, sizeof(out)), -2);
  /* 10 characters + NUL fit in 11 bytes, not in 10. */
  ck_assert_int_eq(wschat__http_query_param(q, ql, "big", out, sizeof(out)), 10);
  ck_assert_str_eq(out, "0123456789");
  ck_assert_int_eq(wschat__http_query_param(q, ql, "big", out, 10), -2);
  ck_assert_int_eq(wschat__http_query_param(q, ql, "name", out, 0), -2);
  ck_assert_int_eq(wschat__http_query_param(NULL, 0, "name", out, sizeof(out)), -1);
  /* query_len is honoured: "room" lies beyond the first 12 bytes. */
  ck_assert_int_eq(wschat__http_query_param(q, 12, "room", out, sizeof(out)), -1);
  ck_assert_int_eq(wschat__http_query_param(q, 12, "name", out, sizeof(out)), 5);
}
END_TEST

START_TEST(query_from_request) {
  struct wschat__http h;
  char out[32];
  wschat__http_init(&h, MAX_HDR);
  wschat__http_feed(&h, valid_req, strlen(valid_req));
  ck_assert_int_eq(wschat__http_query_param(h.query, h.query_len, "name", out, sizeof(out)), 5);
  ck_assert_str_eq(out, "alice");
  ck_assert_int_eq(wschat__http_query_param(h.query, h.query_len, "room", out, sizeof(out)), 1);
  ck_assert_str_eq(out, "x"); /* the #frag is not part of the query */
  wschat__http_free(&h);
}
END_TEST

/* ---- response writers: parse our own output back ----------------------- */

struct parsed {
  int status;
  char names[16][64];
  char values[16][128];
  int n;
  char body[256];
  size_t body_len;
  int skip_body;
  int complete;
  int last_was_value;
};

static int r_field(http_parser *p, const char *at, size_t len) {
  struct parsed *r = p->data;
  if (r->last_was_value || r->n == 0) {
    r->n++;
    r->last_was_value = 0;
  }
  strncat(r->names[r->n - 1], at, len);
  return 0;
}
static int r_value(http_parser *p, const char *at, size_t len) {
  struct parsed *r = p->data;
  r->last_was_value = 1;
  strncat(r->values[r->n - 1], at, len);
  return 0;
}
static int r_headers_complete(http_parser *p) {
  struct parsed *r = p->data;
  r->status = (int)p->status_code;
  return r->skip_body ? 1 : 0;
}
static int r_body(http_parser *p, const char *at, size_t len) {
  struct parsed *r = p->data;
  memcpy(r->body + r->body_len, at, len);
  r->body_len += len;
  return 0;
}
static int r_complete(http_parser *p) {
  ((struct parsed *)p->data)->complete = 1;
  return 0;
}

static size_t parse_response(const char *buf, size_t len, int skip_body, struct parsed *r) {
  http_parser p;
  http_parser_settings s;
  size_t used;
  memset(r, 0, sizeof(*r));
  r->skip_body = skip_body;
  http_parser_settings_init(&s);
  s.on_header_field = r_field;
  s.on_header_value = r_value;
  s.on_headers_complete = r_headers_complete;
  s.on_body = r_body;
  s.on_message_complete = r_complete;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = r;
  used = http_parser_execute(&p, &s, buf, len);
  ck_assert_int_eq(p.http_errno, HPE_OK);
  return used;
}

static int same_name(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
      return 0;
  }
  return *a == *b;
}

static const char *get(const struct parsed *r, const char *name) {
  int i;
  for (i = 0; i < r->n; i++) {
    if (same_name(r->names[i], name))
      return r->values[i];
  }
  return NULL;
}

START_TEST(write_101) {
  char buf[512], accept[29];
  struct parsed r;
  size_t n, cap;
  wschat__ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
  n = wschat__http_write_101(buf, sizeof(buf), accept, NULL);
  ck_assert_uint_gt(n, 0);
  ck_assert_uint_eq(parse_response(buf, n, 0, &r), n);
  ck_assert_int_eq(r.status, 101);
  ck_assert_str_eq(get(&r, "Upgrade"), "websocket");
  ck_assert_str_eq(get(&r, "Connection"), "Upgrade");
  ck_assert_str_eq(get(&r, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  ck_assert_ptr_null(get(&r, "Sec-WebSocket-Protocol"));
  ck_assert(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);

  n = wschat__http_write_101(buf, sizeof(buf), accept, "chat");
  ck_assert_uint_eq(parse_response(buf, n, 0, &r), n);
  ck_assert_str_eq(get(&r, "Sec-WebSocket-Protocol"), "chat");
  /* Every capacity short of n fails cleanly; n itself is enough. */
  for (cap = 0; cap < n; cap++)
    ck_assert_uint_eq(wschat__http_write_101(buf, cap, accept, "chat"), 0);
  ck_assert_uint_eq(wschat__http_write_101(buf, n, accept, "chat"), n);
  /* Header injection is refused. */
  ck_assert_uint_eq(wschat__http_write_101(buf, sizeof(buf), accept, "chat\r\nX: y"), 0);
}
END_TEST

START_TEST(write_responses) {
  static const int statuses[] = {200, 400, 404, 405, 426, 431, 500, 505};
  char buf[512], expect_body[128];
  struct parsed r;
  size_t i, n, cap;
  for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
    int st = statuses[i];
    n = wschat__http_write_response(buf, sizeof(buf), st, "some text", 0);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(parse_response(buf, n, 0, &r), n);
    ck_assert_int_eq(r.complete, 1);
    ck_assert_int_eq(r.status, st);
    ck_assert_str_eq(get(&r, "Content-Type"), "text/plain; charset=utf-8");
    ck_assert_str_eq(get(&r, "Connection"), "close");
    ck_assert_str_eq(get(&r, "Content-Length"), "10");
    ck_assert_uint_eq(r.body_len, 10);
    ck_assert(memcmp(r.body, "some text\n", 10) == 0);
    if (st == 405)
      ck_assert_str_eq(get(&r, "Allow"), "GET");
    else
      ck_assert_ptr_null(get(&r, "Allow"));
    if (st == 426) {
      ck_assert_str_eq(get(&r, "Sec-WebSocket-Version"), "13");
      ck_assert_str_eq(get(&r, "Upgrade"), "websocket");
    } else {
      ck_assert_ptr_null(get(&r, "Upgrade"));
    }
    for (cap = 0; cap < n; cap++)
      ck_assert_uint_eq(wschat__http_write_response(buf, cap, st, "some text", 0), 0);

    /* HEAD: same Content-Length, no body. */
    n = wschat__http_write_response(buf, sizeof(buf), st, "some text", 1);
    ck_assert_uint_eq(parse_response(buf, n, 1, &r), n);
    ck_assert_str_eq(get(&r, "Content-Length"), "10");
    ck_assert_uint_eq(r.body_len, 0);
    ck_assert(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
  }
  /* Reason phrase, and NULL body = reason phrase. */
  n = wschat__http_write_response(buf, sizeof(buf), 431, NULL, 0);
  ck_assert(strncmp(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
  ck_assert_uint_eq(parse_response(buf, n, 0, &r), n);
  snprintf(expect_body, sizeof(expect_body), "Request Header Fields Too Large\n");
  ck_assert_uint_eq(r.body_len, strlen(expect_body));
  ck_assert(memcmp(r.body, expect_body, r.body_len) == 0);
  ck_assert_uint_eq(wschat__http_write_response(buf, sizeof(buf), 99, "x", 0), 0);
  ck_assert_uint_eq(wschat__http_write_response(buf, sizeof(buf), 600, "x", 0), 0);
}
END_TEST

START_TEST(error_response_for_each_failure) {
  /* What the server will do: a failed handshake's status and error string
   * make a well-formed response. */
  static const char *const reqs[] = {
      "GARBAGE\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
  };
  size_t i;
  for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    struct wschat__http h;
    struct parsed r;
    char buf[512];
    size_t n;
    wschat__http_init(&h, MAX_HDR);
    wschat__http_feed(&h, reqs[i], strlen(reqs[i]));
    ck_assert_int_eq(wschat__http_state(&h), WSCHAT__HTTP_FAILED);
    n = wschat__http_write_response(buf, sizeof(buf), h.status, h.error, 0);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(parse_response(buf, n, 0, &r), n);
    ck_assert_int_eq(r.status, h.status);
    ck_assert_uint_eq(r.body_len, strlen(h.error) + 1);
    wschat__http_free(&h);
  }
}
END_TEST

static Suite *http_suite(void) {
  Suite *s = suite_create("http");
#define ADD(fn)                                                                                  \
  do {                                                                                           \
    TCase *tc = tcase_create(#fn);                                                               \
    tcase_add_test(tc, fn);                                                                      \
    suite_add_tcase(s, tc);                                                                      \
  } while (0)
  ADD(accept_rfc_example);
  ADD(upgrade_whole);
  ADD(upgrade_one_byte_at_a_time);
  ADD(upgrade_every_split);
  ADD(leftover_bytes_returned);
  ADD(bare_lf_line_endings);
  ADD(connection_and_upgrade_tokens);
  ADD(plain_get_and_head);
  ADD(fail_400_malformed);
  ADD(fail_400_body);
  ADD(fail_400_host);
  ADD(fail_400_upgrade_rules);
  ADD(fail_400_key);
  ADD(fail_405_method);
  ADD(fail_426_version);
  ADD(fail_505_version);
  ADD(fail_431_too_many_headers);
  ADD(fail_431_huge_header_streamed);
  ADD(limit_is_inclusive);
  ADD(fail_431_parser_limit);
  ADD(failed_state_is_sticky);
  ADD(header_lookup);
  ADD(query_params);
  ADD(query_from_request);
  ADD(write_101);
  ADD(write_responses);
  ADD(error_response_for_each_failure);
#undef ADD
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(http_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
