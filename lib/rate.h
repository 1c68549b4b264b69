/*
 * rate: a token bucket for flood control, as plain arithmetic on a loop
 * time in ms (the caller passes uv_now()): no clock, no allocation, O(1).
 *
 * A bucket holds up to burst tokens and gains rate tokens a second; each
 * message takes one. It is kept as the tokens used (a level that drains at
 * the rate), in thousandths, so that a zeroed bucket is a full one and
 * rates below one a millisecond lose nothing to rounding.
 */
#ifndef WSCHAT_RATE_H
#define WSCHAT_RATE_H

#include <stdint.h>

struct wschat__bucket {
  uint64_t at;    /* loop time (ms) it was last drained to */
  uint64_t level; /* tokens used, in thousandths */
};

/* Takes one token from b at now (rate tokens a second, burst at most):
 * returns 1, or 0 when b is empty (then nothing is taken). now must not go
 * back in time (a loop time does not). */
static inline int wschat__bucket_take(struct wschat__bucket *b, uint32_t rate,
                                      uint32_t burst, uint64_t now) {
  uint64_t elapsed = now - b->at;
  if (elapsed > 3600000) /* an hour refills any bucket; and no overflow */
    elapsed = 3600000;
  uint64_t drained = elapsed * rate; /* ms x tokens/s = thousandths */
  b->level = b->level > drained ? b->level - drained : 0;
  b->at = now;
  if (b->level + 1000 > (uint64_t)burst * 1000)
    return 0;
  b->level += 1000;
  return 1;
}

#endif
