/* utf8: see utf8.h. A straight decoder; ASCII runs take the fast path. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

int wschat__utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    /* ASCII runs, eight bytes at a time. */
    while (len - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & UINT64_C(0x8080808080808080))
        break;
      i += 8;
    }
    if (i == len)
      break;
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (len - i <= n)
      return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += n + 1;
  }
  return 1;
}

size_t wschat__utf8_invisible(const unsigned char *p, size_t len) {
  if (len < 2)
    return 0;
  unsigned char c = p[0], b1 = p[1];
  if (c == 0xC2)
    return b1 <= 0x9F ? 2 : 0;
  if (c == 0xD8)
    return b1 == 0x9C ? 2 : 0;
  if (len < 3)
    return 0;
  unsigned char b2 = p[2];
  if (c == 0xE2 && b1 == 0x80)
    return (b2 >= 0x8B && b2 <= 0x8F) || (b2 >= 0xA8 && b2 <= 0xAE) ? 3 : 0;
  if (c == 0xE2 && b1 == 0x81)
    return b2 >= 0xA0 && b2 <= 0xAF ? 3 : 0;
  return c == 0xEF && b1 == 0xBB && b2 == 0xBF ? 3 : 0;
}
