/*
 * frame: server-to-client WebSocket frames, encoded once and shared.
 * See frame.h. Frames are one malloc each (header and payload together);
 * the per-delivery cost of a broadcast is one reference, not one copy.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

static size_t header_len(size_t len) {
  return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

static void write_header(uint8_t *p, int opcode, size_t len) {
  p[0] = (uint8_t)(0x80 | (opcode & (0x0F | WSCHAT__FRAME_RSV1)));
  if (len < 126) {
    p[1] = (uint8_t)len;
  } else if (len <= 0xFFFF) {
    p[1] = 126;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
  } else {
    p[1] = 127;
    for (int i = 0; i < 8; i++)
      p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
}

static struct wschat__frame *alloc_frame(size_t total) {
  if (total > UINT32_MAX)
    return NULL;
  struct wschat__frame *f = malloc(sizeof(*f) + total);
  if (f == NULL)
    return NULL;
  f->refs = 1;
  f->len = (uint32_t)total;
  return f;
}

struct wschat__frame *wschat__frame_new(int opcode, const void *payload,
                                        size_t len) {
  size_t hl = opcode < 0 ? 0 : header_len(len);
  struct wschat__frame *f = alloc_frame(hl + len);
  if (f == NULL)
    return NULL;
  if (opcode >= 0)
    write_header(f->data, opcode, len);
  if (len > 0)
    memcpy(f->data + hl, payload, len);
  return f;
}

struct wschat__frame *wschat__frame_text_parts(const char *const *parts,
                                               const size_t *lens, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += lens[i];
  size_t hl = header_len(len);
  struct wschat__frame *f = alloc_frame(hl + len);
  if (f == NULL)
    return NULL;
  write_header(f->data, WSCHAT__OP_TEXT, len);
  uint8_t *p = f->data + hl;
  for (size_t i = 0; i < n; i++) {
    if (lens[i] > 0)
      memcpy(p, parts[i], lens[i]);
    p += lens[i];
  }
  return f;
}

const uint8_t *wschat__frame_payload(const struct wschat__frame *f,
                                     size_t *len) {
  uint8_t l7 = f->data[1] & 0x7F;
  size_t hl = l7 < 126 ? 2 : l7 == 126 ? 4 : 10;
  *len = f->len - hl;
  return f->data + hl;
}
