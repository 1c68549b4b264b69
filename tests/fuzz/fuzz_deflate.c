/* libFuzzer target: permessage-deflate (lib/deflate.c).
 *
 * Input: byte 0 chooses what the rest is.
 *  - even: a Sec-WebSocket-Extensions value for wschat__pmd_negotiate().
 *    Invariants: an accepted offer has windows in range and a key of 1-8;
 *    its response fits, and read back as an offer it is accepted with the
 *    same windows (the response is a valid offer of the same parameters).
 *  - odd: a compressed message for wschat__deflate_inflate(), byte 1 the
 *    limit (64 * b bytes). Invariants: never more than the limit out; a
 *    refusal is 1007, 1009 or 1011; what inflates, compressed again by
 *    wschat__deflate_frame() with the window of byte 2 and inflated again,
 *    comes back the same.
 * abort() whatever NDEBUG says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "frame.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static void negotiate(const uint8_t *p, size_t n) {
  struct wschat__pmd a, b;
  if (!wschat__pmd_negotiate((const char *)p, n, &a))
    return;
  CHECK(a.server_bits >= 8 && a.server_bits <= 15);
  CHECK(a.client_bits <= 1 || (a.client_bits >= 8 && a.client_bits <= 15));
  unsigned key = wschat__pmd_key(&a);
  CHECK(key >= 1 && key < WSCHAT__ZKEYS);
  char out[160];
  size_t len = wschat__pmd_response(&a, out, sizeof(out));
  CHECK(len > 0 && len == strlen(out));
  CHECK(wschat__pmd_negotiate(out, len, &b) == 1);
  CHECK(b.server_nct && b.client_nct);
  CHECK(b.server_bits == a.server_bits);
  CHECK(b.server_bits_asked == a.server_bits_asked);
  CHECK(b.client_bits == (a.client_bits >= 8 ? a.client_bits : 0));
}

static struct wschat__deflate *z, *z2;

static void inflate_one(const uint8_t *p, size_t n, size_t max, unsigned key) {
  const uint8_t *out;
  size_t len;
  const char *why;
  int r = wschat__deflate_inflate(z, p, n, max, &out, &len, &why);
  if (r != 0) {
    CHECK(r == 1007 || r == 1009 || r == 1011);
    CHECK(why != NULL && why[0] != '\0');
    return;
  }
  CHECK(len <= max);
  struct wschat__frame *plain = wschat__frame_new(WSCHAT__OP_BINARY, out, len);
  CHECK(plain != NULL);
  struct wschat__frame *f = wschat__deflate_frame(z2, key, plain);
  CHECK(f != NULL);
  size_t zl;
  const uint8_t *zp = wschat__frame_payload(f, &zl);
  if (f != plain) {
    CHECK(f->data[0] == 0xC2);
    CHECK(zl < len);
    const uint8_t *back;
    size_t bl;
    /* z2's own inflater: out (in z's buffer) must stay intact meanwhile */
    CHECK(wschat__deflate_inflate(z2, zp, zl, len, &back, &bl, &why) == 0);
    CHECK(bl == len && memcmp(back, out, len) == 0);
  } else {
    CHECK(zl == len);
  }
  wschat__frame_unref(f);
  wschat__frame_unref(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  if ((data[0] & 1) == 0) {
    negotiate(data + 1, size - 1);
    return 0;
  }
  if (z == NULL) {
    z = wschat__deflate_new(0);
    z2 = wschat__deflate_new(0);
    CHECK(z != NULL && z2 != NULL);
  }
  inflate_one(data + 3, size - 3, 64u * (size_t)data[1] + 1,
              1u + data[2] % (WSCHAT__ZKEYS - 1));
  return 0;
}
