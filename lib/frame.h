/*
 * frame: server-to-client WebSocket frames, encoded once and shared.
 *
 * Owns: the frame memory (header and payload in one block) and its reference
 * count. A broadcast builds one frame and every recipient's output queue
 * holds a reference; the last unref frees it. Never does I/O, never copies a
 * payload twice.
 */
#ifndef WSCHAT_FRAME_H
#define WSCHAT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum {
  WSCHAT__OP_CONT = 0x0,
  WSCHAT__OP_TEXT = 0x1,
  WSCHAT__OP_BINARY = 0x2,
  WSCHAT__OP_CLOSE = 0x8,
  WSCHAT__OP_PING = 0x9,
  WSCHAT__OP_PONG = 0xA,
  /* Or'd into an opcode given to wschat__frame_new(): RSV1 set, the
   * payload is compressed (permessage-deflate, see deflate.h). */
  WSCHAT__FRAME_RSV1 = 0x40,
};

struct wschat__frame {
  uint32_t refs; /* owners: every queue slot holding it, plus builders */
  uint32_t len;  /* bytes in data (header + payload) */
  uint8_t data[];
};

/*
 * Builds an unmasked, final frame of opcode around payload (copied), or,
 * with opcode < 0, wraps payload bytes as they are (already framed bytes,
 * e.g. wslay's own output). opcode may carry WSCHAT__FRAME_RSV1. The caller
 * owns the one reference returned. payload may be NULL when len is 0. Returns
 * NULL when out of memory.
 */
struct wschat__frame *wschat__frame_new(int opcode, const void *payload,
                                        size_t len);

/*
 * Like wschat__frame_new() for a text frame whose payload is the
 * concatenation of n parts (so "[room] name: " and the text need no
 * temporary buffer). Returns NULL when out of memory.
 */
struct wschat__frame *wschat__frame_text_parts(const char *const *parts,
                                               const size_t *lens, size_t n);

static inline struct wschat__frame *wschat__frame_ref(struct wschat__frame *f) {
  f->refs++;
  return f;
}

static inline size_t wschat__frame_len(const struct wschat__frame *f) {
  return f->len;
}

/* Drops one reference; frees the frame when it was the last (NULL: does
 * nothing). Inline: it runs once per frame written. */
static inline void wschat__frame_unref(struct wschat__frame *f) {
  if (f != NULL && --f->refs == 0)
    free(f);
}

/* Returns the payload of a frame built by wschat__frame_new(opcode >= 0). */
const uint8_t *wschat__frame_payload(const struct wschat__frame *f,
                                     size_t *len);

#endif
