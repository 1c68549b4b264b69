/*
 * grow: the one way a growing array gets room for one more element
 * (doubling), used by every such array of the chat model and the routes.
 * Owns nothing: the array stays its caller's.
 */
#ifndef WSCHAT_GROW_H
#define WSCHAT_GROW_H

#include <stdlib.h>

/*
 * v holds n of *cap elements of size bytes. Returns v, or v moved to a
 * bigger block (cap doubled; first if it was 0) when it was full; *cap is
 * updated. Returns NULL when out of memory: v is then unchanged and still
 * the caller's.
 */
static inline void *wschat__grow(void *v, size_t n, size_t *cap, size_t size,
                                 size_t first) {
  if (n < *cap)
    return v;
  size_t c = *cap ? *cap * 2 : first;
  void *p = realloc(v, c * size);
  if (p != NULL)
    *cap = c;
  return p;
}

#endif
