/*
 * post: one queue of function + argument from any thread to the loop
 * thread (a uv_async_t and a mutex). Every thread-safe call of the API
 * goes through it; calls run on the loop thread in the order they took
 * the lock.
 *
 * Owns: the async handle, the mutex and the queued items (not their
 * arguments: the posted function owns its argument).
 */
#ifndef WSCHAT_POST_H
#define WSCHAT_POST_H

#include <uv.h>

#include "wschat.h"

struct wschat__post;

struct wschat__post_queue {
  uv_async_t async;
  uv_mutex_t lock;
  struct wschat__post *head, *tail; /* guarded by lock */
  int closed;                       /* guarded by lock */
  int draining; /* guarded by lock: a shutdown has begun */
  int closing;  /* guarded by lock: the handle is closing (posts are still
                   taken, and run by its close callback) */
  uv_close_cb close_cb;
  struct wschat_server *srv;
};

/* Makes the mutex (closed: posts fail until wschat__post_open). Returns 0
 * or WSCHAT_ENOMEM. */
int wschat__post_init(struct wschat__post_queue *q, struct wschat_server *srv);
/* Starts the async handle on loop (unreferenced: it never keeps the loop
 * alive) and accepts posts. Returns 0 or WSCHAT_EIO. */
int wschat__post_open(struct wschat__post_queue *q, uv_loop_t *loop);
/* Any thread. Queues fn(srv, arg). Returns 0, WSCHAT_ENOMEM or
 * WSCHAT_ECLOSED (closed; or, with strict, a shutdown has begun). */
int wschat__post(struct wschat__post_queue *q, wschat_post_cb fn, void *arg,
                 int strict);
/* A shutdown has begun: strict posts fail from now on. */
void wschat__post_drain(struct wschat__post_queue *q);
/* Closes the async handle: what is posted until its close callback runs
 * (then, once), later posts are refused; close_cb follows. */
void wschat__post_close(struct wschat__post_queue *q, uv_close_cb close_cb);
/* Frees the mutex (after the handle closed, or if it never opened). */
void wschat__post_free(struct wschat__post_queue *q);

#endif
