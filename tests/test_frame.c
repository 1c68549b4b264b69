/* Unit tests: frame encoding and reference counts (lib/frame.c) and the
 * UTF-8 validator (lib/utf8.c). */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"

static void check_header(size_t len, size_t hl, const uint8_t *want) {
  char *p = malloc(len + 1);
  ck_assert_ptr_nonnull(p);
  memset(p, 'x', len + 1); /* every byte set: GCC cannot see that len bytes
                              are all that is read */
  struct wschat__frame *f = wschat__frame_new(WSCHAT__OP_TEXT, p, len);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->len, hl + len);
  ck_assert_mem_eq(f->data, want, hl);
  size_t plen;
  const uint8_t *pl = wschat__frame_payload(f, &plen);
  ck_assert_uint_eq(plen, len);
  if (len)
    ck_assert_mem_eq(pl, p, len);
  wschat__frame_unref(f);
  free(p);
}

START_TEST(lengths) {
  check_header(0, 2, (const uint8_t[]){0x81, 0});
  check_header(125, 2, (const uint8_t[]){0x81, 125});
  check_header(126, 4, (const uint8_t[]){0x81, 126, 0, 126});
  check_header(65535, 4, (const uint8_t[]){0x81, 126, 0xFF, 0xFF});
  check_header(65536, 10, (const uint8_t[]){0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0});
}
END_TEST

START_TEST(parts_and_refs) {
  const char *parts[] = {"[lobby] ", "bob", ": ", "hi"};
  size_t lens[] = {8, 3, 2, 2};
  struct wschat__frame *f = wschat__frame_text_parts(parts, lens, 4);
  ck_assert_uint_eq(f->refs, 1);
  size_t n;
  const uint8_t *p = wschat__frame_payload(f, &n);
  ck_assert_uint_eq(n, 15);
  ck_assert_mem_eq(p, "[lobby] bob: hi", 15);
  wschat__frame_ref(f);
  ck_assert_uint_eq(f->refs, 2);
  wschat__frame_unref(f);
/* The inline unref may free f on some path, as far as GCC 12 can tell; it
 * cannot, with two references: this test is what checks that. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
  ck_assert_uint_eq(f->refs, 1);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
  wschat__frame_unref(f); /* freed: valgrind/ASan would see a leak or UAF */
}
END_TEST

START_TEST(raw_bytes) {
  struct wschat__frame *f = wschat__frame_new(-1, "\x88\x02\x03\xe8", 4);
  ck_assert_uint_eq(f->len, 4);
  ck_assert_mem_eq(f->data, "\x88\x02\x03\xe8", 4);
  wschat__frame_unref(f);
}
END_TEST

START_TEST(utf8) {
  static const struct {
    const char *s;
    int ok;
  } cases[] = {
      {"", 1},
      {"hello", 1},
      {"\xc3\xa9t\xc3\xa9", 1},              /* été */
      {"\xe2\x82\xac", 1},                   /* € */
      {"\xf0\x9f\x98\x80", 1},               /* U+1F600 */
      {"\xf4\x8f\xbf\xbf", 1},               /* U+10FFFF */
      {"\xf4\x90\x80\x80", 0},               /* above U+10FFFF */
      {"\xed\xa0\x80", 0},                   /* U+D800 surrogate */
      {"\xc0\xaf", 0},                       /* overlong / */
      {"\xe0\x80\xaf", 0},                   /* overlong, 3 bytes */
      {"\xf0\x80\x80\xaf", 0},               /* overlong, 4 bytes */
      {"\x80", 0},                           /* lone continuation */
      {"\xc3", 0},                           /* truncated */
      {"\xe2\x82", 0},                       /* truncated */
      {"\xff", 0},
      {"a\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1}, /* κόσμε */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(wschat__utf8_valid(cases[i].s, strlen(cases[i].s)) ==
                      cases[i].ok,
                  "case %zu", i);
  ck_assert(wschat__utf8_valid("a\0b", 3)); /* NUL is valid UTF-8 */
}
END_TEST

int main(void) {
  Suite *s = suite_create("frame");
  TCase *tc = tcase_create("frame");
  tcase_add_test(tc, lengths);
  tcase_add_test(tc, parts_and_refs);
  tcase_add_test(tc, raw_bytes);
  tcase_add_test(tc, utf8);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
