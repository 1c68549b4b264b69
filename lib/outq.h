/*
 * outq: a connection's output queue: references to frames, in order,
 * written from the head. A broadcast adds one reference per recipient; no
 * frame is ever copied here.
 *
 * Owns: the slot array and one frame reference per queued slot. Never
 * writes to a socket (conn does that with the buffers outq_iov gives).
 */
#ifndef WSCHAT_OUTQ_H
#define WSCHAT_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "frame.h"

struct wschat__outq {
  struct wschat__frame **v; /* owned array; each slot owns one reference */
  uint32_t head, tail, cap; /* queued slots are [head, tail) */
  uint32_t off;             /* bytes of v[head] already written */
  size_t bytes;             /* bytes queued and not yet written */
  size_t inflight;          /* bytes handed to a pending write; a write is
                               pending exactly when this is not 0 */
};

/* What one queued slot costs beyond its frame's bytes, for the caps: the
 * slot pointer with the array's growth slack, and, for a frame made for
 * one client (a reply, a pong), its header and the allocator's overhead.
 * A broadcast frame shared by many queues costs less than this per queue;
 * a 2-byte pong costs about this much more than its 2 bytes. */
#define WSCHAT__OUTQ_SLOT 32

/* The slow side of wschat__outq_push(): makes room first. */
int wschat__outq_push_grow(struct wschat__outq *q, struct wschat__frame *f);

/* Appends f, taking the caller's reference. Returns 0 or -1 (no memory:
 * the reference is still the caller's). Inline: it runs once per delivery
 * of every broadcast. */
static inline int wschat__outq_push(struct wschat__outq *q,
                                    struct wschat__frame *f) {
  if (q->tail == q->cap)
    return wschat__outq_push_grow(q, f);
  q->v[q->tail++] = f;
  q->bytes += wschat__frame_len(f);
  return 0;
}
/* Drops n written bytes from the head. Inline, like wschat__outq_iov():
 * both run once per frame written. */
static inline void wschat__outq_consume(struct wschat__outq *q, size_t n) {
  q->bytes -= n;
  while (n > 0) {
    struct wschat__frame *f = q->v[q->head];
    size_t rest = f->len - q->off;
    if (n < rest) {
      q->off += (uint32_t)n;
      break;
    }
    n -= rest;
    q->off = 0;
    q->head++;
    wschat__frame_unref(f);
  }
  if (q->head == q->tail)
    q->head = q->tail = 0;
}
/* Drops every frame that no pending write needs (a slow consumer's
 * backlog); a partly written frame is kept so the stream stays whole. */
void wschat__outq_discard_unsent(struct wschat__outq *q);
/* Fills up to max buffers from the head; returns their total bytes and
 * stores their count in *n. */
static inline size_t wschat__outq_iov(const struct wschat__outq *q,
                                      uv_buf_t *iov, size_t max, size_t *nb) {
  size_t total = 0, n = 0;
  for (uint32_t i = q->head; i < q->tail && n < max; i++) {
    struct wschat__frame *f = q->v[i];
    uint32_t off = i == q->head ? q->off : 0;
    iov[n].base = (char *)f->data + off;
    iov[n++].len = f->len - off;
    total += f->len - off;
  }
  *nb = n;
  return total;
}
/* What the queue holds, as the caps judge it: its bytes plus
 * WSCHAT__OUTQ_SLOT per queued frame. Inline: one addition. */
static inline size_t wschat__outq_cost(const struct wschat__outq *q) {
  return q->bytes + (size_t)(q->tail - q->head) * WSCHAT__OUTQ_SLOT;
}
/* Bytes beyond the frame being written (what the kernel would not take
 * beyond it: one message larger than a cap is not a backlog by itself). */
size_t wschat__outq_backlog(const struct wschat__outq *q);
/* The backlog as the caps judge it: plus WSCHAT__OUTQ_SLOT per frame
 * behind the one being written. */
size_t wschat__outq_backlog_cost(const struct wschat__outq *q);
static inline int wschat__outq_empty(const struct wschat__outq *q) {
  return q->head == q->tail;
}
/* Gives back the slot array of an empty queue (idle connections). */
void wschat__outq_trim(struct wschat__outq *q);
/* Drops every reference and the array. */
void wschat__outq_free(struct wschat__outq *q);

#endif
