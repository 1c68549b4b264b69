/* libFuzzer target: the chat command parser and the name rules
 * (lib/command.c), and the UTF-8 checker (lib/utf8.c) against a slow
 * reference decoder. Invariants: every slice lies inside the line, a
 * command's word starts with '/', and the two UTF-8 checkers agree. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "command.h"
#include "utf8.h"

static void inside(const char *line, size_t len, struct wschat__slice s) {
  assert(s.p >= line && s.p + s.len <= line + len);
}

/* Reference: decode each scalar the slow way (RFC 3629 table 4). */
static int ref_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t k;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c <= 0x7F) { i++; continue; }
    else if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c == 0xE0) { k = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) k = 2;
    else if (c == 0xED) { k = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) k = 2;
    else if (c == 0xF0) { k = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) k = 3;
    else if (c == 0xF4) { k = 3; hi = 0x8F; }
    else return 0;
    if (n - i <= k) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t j = 2; j <= k; j++)
      if (s[i + j] < 0x80 || s[i + j] > 0xBF) return 0;
    i += k + 1;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = (const char *)data;
  struct wschat__cmd c;
  wschat__cmd_parse(line, size, &c);
  inside(line, size, c.text);
  inside(line, size, c.word);
  inside(line, size, c.tail);
  inside(line, size, c.arg);
  inside(line, size, c.rest);
  if (c.kind != WSCHAT__CMD_LINE)
    assert(c.word.len >= 2 && c.word.p[0] == '/');
  else
    assert(c.text.len == size || (c.text.len == size - 1 && c.text.p == line + 1));
  int nv = wschat__name_valid(line, size), rv = wschat__room_valid(line, size);
  assert(!nv || rv || size > 64); /* a valid name is a valid room name */
  assert(wschat__utf8_valid(line, size) == ref_utf8(data, size));
  return 0;
}
