/* outq: see outq.h. */
#include "outq.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

int wschat__outq_push_grow(struct wschat__outq *q, struct wschat__frame *f) {
  if (q->tail == q->cap) {
    if (q->head > 0) {
      memmove(q->v, q->v + q->head, (q->tail - q->head) * sizeof(*q->v));
      q->tail -= q->head;
      q->head = 0;
    } else {
      uint32_t cap = q->cap ? q->cap * 2 : 8;
      void *v = realloc(q->v, cap * sizeof(*q->v));
      if (v == NULL)
        return -1;
      q->v = v;
      q->cap = cap;
    }
  }
  q->v[q->tail++] = f;
  q->bytes += f->len;
  return 0;
}


void wschat__outq_discard_unsent(struct wschat__outq *q) {
  size_t acc = 0;
  uint32_t i = q->head;
  while (i < q->tail && (acc < q->inflight || (i == q->head && q->off > 0))) {
    acc += q->v[i]->len - (i == q->head ? q->off : 0);
    i++;
  }
  for (uint32_t k = i; k < q->tail; k++)
    wschat__frame_unref(q->v[k]);
  q->tail = i;
  q->bytes = acc;
}


size_t wschat__outq_backlog(const struct wschat__outq *q) {
  if (q->head == q->tail)
    return 0;
  return q->bytes - (q->v[q->head]->len - q->off);
}

size_t wschat__outq_backlog_cost(const struct wschat__outq *q) {
  if (q->head == q->tail)
    return 0;
  return wschat__outq_backlog(q) +
         (size_t)(q->tail - q->head - 1) * WSCHAT__OUTQ_SLOT;
}

void wschat__outq_trim(struct wschat__outq *q) {
  if (q->head != q->tail || q->inflight != 0)
    return;
  free(q->v);
  q->v = NULL;
  q->cap = q->head = q->tail = 0;
}

void wschat__outq_free(struct wschat__outq *q) {
  for (uint32_t i = q->head; i < q->tail; i++)
    wschat__frame_unref(q->v[i]);
  free(q->v);
  memset(q, 0, sizeof(*q));
}
