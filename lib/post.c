/* post: see post.h. */
#include "post.h"

#include <stdlib.h>

struct wschat__post {
  struct wschat__post *next;
  wschat_post_cb fn;
  void *arg;
};

static void run_queued(struct wschat__post_queue *q) {
  uv_mutex_lock(&q->lock);
  struct wschat__post *p = q->head;
  q->head = q->tail = NULL;
  uv_mutex_unlock(&q->lock);
  while (p) {
    struct wschat__post *next = p->next;
    p->fn(q->srv, p->arg);
    free(p);
    p = next;
  }
}

static void on_async(uv_async_t *a) { run_queued(a->data); }

int wschat__post_init(struct wschat__post_queue *q,
                      struct wschat_server *srv) {
  q->head = q->tail = NULL;
  q->closed = 1;
  q->closing = 0;
  q->draining = 0;
  q->srv = srv;
  return uv_mutex_init(&q->lock) == 0 ? 0 : WSCHAT_ENOMEM;
}

int wschat__post_open(struct wschat__post_queue *q, uv_loop_t *loop) {
  if (uv_async_init(loop, &q->async, on_async) != 0)
    return WSCHAT_EIO;
  q->async.data = q;
  uv_unref((uv_handle_t *)&q->async);
  uv_mutex_lock(&q->lock);
  q->closed = 0;
  uv_mutex_unlock(&q->lock);
  return 0;
}

void wschat__post_drain(struct wschat__post_queue *q) {
  uv_mutex_lock(&q->lock);
  q->draining = 1;
  uv_mutex_unlock(&q->lock);
}

int wschat__post(struct wschat__post_queue *q, wschat_post_cb fn, void *arg,
                 int strict) {
  struct wschat__post *p = malloc(sizeof(*p));
  if (p == NULL)
    return WSCHAT_ENOMEM;
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  uv_mutex_lock(&q->lock);
  if (q->closed || (strict && q->draining)) {
    uv_mutex_unlock(&q->lock);
    free(p);
    return WSCHAT_ECLOSED;
  }
  if (q->tail)
    q->tail->next = p;
  else
    q->head = p;
  q->tail = p;
  if (!q->closing) /* a closing handle is not woken: its close runs it */
    uv_async_send(&q->async);
  uv_mutex_unlock(&q->lock);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct wschat__post_queue *q = h->data;
  uv_mutex_lock(&q->lock);
  q->closed = 1; /* from now on posts are refused, not lost */
  uv_mutex_unlock(&q->lock);
  run_queued(q); /* what was posted until now runs, once */
  q->close_cb(h);
}

void wschat__post_close(struct wschat__post_queue *q, uv_close_cb close_cb) {
  uv_mutex_lock(&q->lock);
  q->closing = 1;
  uv_mutex_unlock(&q->lock);
  run_queued(q);
  q->close_cb = close_cb;
  uv_close((uv_handle_t *)&q->async, on_closed);
}

void wschat__post_free(struct wschat__post_queue *q) {
  uv_mutex_destroy(&q->lock);
}
