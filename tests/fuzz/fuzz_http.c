/* tests/fuzz/fuzz_http.c -- libFuzzer target for lib/http.c.
 *
 * Input layout: byte 0 picks max_header_bytes (16 + 64 * b, so small limits
 * and the 431 path get exercised), bytes 1..8 are chunk sizes (0 means "all
 * that is left"), used in turn; the rest is the byte stream fed to
 * wschat__http_feed(). The same stream is also fed in one piece to a second
 * parser: the outcome must not depend on the chunking.
 *
 * Invariants checked (abort() on violation, whatever NDEBUG says):
 *  - a feed never consumes more than it was offered, and consumes all of it
 *    while the state stays INCOMPLETE;
 *  - FAILED has a known status and an error string, and no public pointers;
 *  - DONE ends on the header section's final LF, and every public pointer
 *    lies inside the storage the struct owns;
 *  - storage never grows past max_header_bytes, fields past the cap;
 *  - the response writers and the query decoder stay inside their buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CHECK(x)                                                                                 \
  do {                                                                                           \
    if (!(x))                                                                                    \
      abort();                                                                                   \
  } while (0)

enum { NCHUNKS = 8, HEADER_BYTES = 1 + NCHUNKS };

static int within(const struct wschat__http *h, const char *p, size_t len) {
  return p >= h->storage && len <= h->storage_len &&
         (size_t)(p - h->storage) <= h->storage_len - len;
}

static void check_header(const struct wschat__http *h, const char *name) {
  const struct wschat__http_header *hd = NULL;
  while ((hd = wschat__http_header_next(h, name, hd)) != NULL) {
    CHECK(within(h, hd->name, hd->name_len));
    CHECK(within(h, hd->value, hd->value_len));
  }
}

static void check_result(const struct wschat__http *h, const uint8_t *data, size_t consumed) {
  CHECK(h->storage_cap <= h->max_header_bytes);
  CHECK(h->storage_len <= h->storage_cap);
  CHECK(h->fed <= h->max_header_bytes);
  CHECK(h->nfields <= WSCHAT__HTTP_MAX_HEADERS);

  switch (wschat__http_state(h)) {
  case WSCHAT__HTTP_INCOMPLETE:
    CHECK(h->status == 0 && h->error == NULL);
    break;
  case WSCHAT__HTTP_FAILED: {
    char buf[512];
    size_t n;
    CHECK(h->status == 400 || h->status == 405 || h->status == 426 || h->status == 431 ||
          h->status == 500 || h->status == 505);
    CHECK(h->error != NULL && h->error[0] != '\0');
    CHECK(h->path == NULL && h->query == NULL && h->key == NULL && !h->is_upgrade);
    CHECK(wschat__http_header(h, "Host") == NULL);
    n = wschat__http_write_response(buf, sizeof(buf), h->status, h->error, 0);
    CHECK(n > 0 && n <= sizeof(buf));
    break;
  }
  case WSCHAT__HTTP_DONE: {
    char accept[29], buf[256], out[16];
    static const char *const names[] = {"name", "room", "", "a"};
    size_t i;
    CHECK(h->status == 0 && h->error == NULL);
    CHECK(consumed > 0 && data[consumed - 1] == '\n');
    CHECK(h->path != NULL && h->path_len > 0 && h->path[0] == '/');
    CHECK(within(h, h->path, h->path_len) || (h->path_len == 1));
    CHECK(h->query == NULL || within(h, h->query, h->query_len));
    if (h->is_upgrade) {
      CHECK(!h->is_head);
      CHECK(h->key_len == 24 && within(h, h->key, h->key_len));
      wschat__ws_accept(h->key, h->key_len, accept);
      CHECK(strlen(accept) == 28);
      CHECK(wschat__http_write_101(buf, sizeof(buf), accept, "chat") > 0);
    } else {
      CHECK(h->key == NULL && h->key_len == 0);
    }
    CHECK(wschat__http_header(h, "Host") != NULL);
    check_header(h, "Host");
    check_header(h, "Upgrade");
    check_header(h, "Connection");
    check_header(h, "Sec-WebSocket-Protocol");
    check_header(h, "X");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
      int r = wschat__http_query_param(h->query, h->query_len, names[i], out, sizeof(out));
      CHECK(r >= -2 && r < (int)sizeof(out));
      if (r >= 0)
        CHECK(out[r] == '\0' && strlen(out) == (size_t)r);
      r = wschat__http_query_param(h->query, h->query_len, names[i], out, 1);
      CHECK(r == -2 || r == -1 || (r == 0 && out[0] == '\0'));
    }
    break;
  }
  default:
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wschat__http chunked, whole;
  size_t limit, chunks[NCHUNKS], off = 0, consumed = 0, whole_used;
  const uint8_t *stream;
  size_t len, i = 0;

  if (size < HEADER_BYTES)
    return 0;
  limit = 16 + 64 * (size_t)data[0];
  for (i = 0; i < NCHUNKS; i++)
    chunks[i] = data[1 + i];
  stream = data + HEADER_BYTES;
  len = size - HEADER_BYTES;

  wschat__http_init(&chunked, limit);
  for (i = 0; off < len; i++) {
    size_t want = chunks[i % NCHUNKS] ? chunks[i % NCHUNKS] : len - off;
    size_t n = want < len - off ? want : len - off;
    size_t used = wschat__http_feed(&chunked, (const char *)stream + off, n);
    CHECK(used <= n);
    consumed += used;
    if (wschat__http_state(&chunked) != WSCHAT__HTTP_INCOMPLETE)
      break;
    CHECK(used == n);
    off += n;
  }
  /* Once finished, nothing more is taken. */
  if (wschat__http_state(&chunked) != WSCHAT__HTTP_INCOMPLETE && len > 0)
    CHECK(wschat__http_feed(&chunked, (const char *)stream, len) == 0);
  check_result(&chunked, stream, consumed);

  wschat__http_init(&whole, limit);
  whole_used = wschat__http_feed(&whole, (const char *)stream, len);
  check_result(&whole, stream, whole_used);
  CHECK(wschat__http_state(&whole) == wschat__http_state(&chunked));
  CHECK(whole.status == chunked.status);
  if (wschat__http_state(&whole) == WSCHAT__HTTP_DONE) {
    CHECK(whole_used == consumed);
    CHECK(whole.is_upgrade == chunked.is_upgrade && whole.path_len == chunked.path_len &&
          memcmp(whole.path, chunked.path, whole.path_len) == 0);
  }

  wschat__http_free(&chunked);
  wschat__http_free(&whole);
  return 0;
}
