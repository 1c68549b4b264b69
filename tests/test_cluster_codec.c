/* Unit tests: what cluster nodes say to each other (lib/cluster_codec.c):
 * the --redis URL, the wire form of an event and of a typing notice. */
#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_codec.h"
#include "event.h"

START_TEST(urls_that_parse) {
  struct wschat__redis_url u;
  ck_assert_int_eq(wschat__redis_url_parse("redis://127.0.0.1:6380", &u), 0);
  ck_assert_str_eq(u.host, "127.0.0.1");
  ck_assert_int_eq(u.port, 6380);
  ck_assert_int_eq(u.db, 0);
  ck_assert_int_eq(wschat__redis_url_parse("redis://cache.local:1/15", &u), 0);
  ck_assert_str_eq(u.host, "cache.local");
  ck_assert_int_eq(u.port, 1);
  ck_assert_int_eq(u.db, 15);
  ck_assert_int_eq(wschat__redis_url_parse("redis://h", &u), 0);
  ck_assert_int_eq(u.port, 6379);
  ck_assert_int_eq(wschat__redis_url_parse("redis://h/", &u), 0);
  ck_assert_int_eq(u.db, 0);
  ck_assert_int_eq(wschat__redis_url_parse("redis://[::1]:7000/2", &u), 0);
  ck_assert_str_eq(u.host, "::1");
  ck_assert_int_eq(u.port, 7000);
  ck_assert_int_eq(u.db, 2);
}
END_TEST

START_TEST(urls_that_do_not) {
  static const char *const bad[] = {
      NULL,
      "",
      "http://127.0.0.1:6379",
      "redis://",
      "redis://:6379",
      "redis://h:0",
      "redis://h:65536",
      "redis://h:port",
      "redis://h:6379/x",
      "redis://h:6379/1/2",
      "redis://h:6379/70000",
      "redis://user:pw@h:6379",
      "redis://[::1",
      "rediss://h:6379",
  };
  struct wschat__redis_url u;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(wschat__redis_url_parse(bad[i], &u) != 0, "accepted %s",
                  bad[i] ? bad[i] : "NULL");
}
END_TEST

static struct wschat_event *sample(void) {
  static const char text[] = "h\xc3\xa9llo\0with a zero";
  struct wschat_event *ev =
      wschat__event_new(WSCHAT_EVENT_LEAVE, "Dev", "alice", NULL, text,
                        sizeof(text) - 1, "gone fishing");
  ck_assert_ptr_nonnull(ev);
  ev->ts = 1733400000123;
  ev->client = 42;
  ev->skip = 7;
  ev->group = 99;
  return ev;
}

START_TEST(an_event_round_trips) {
  struct wschat_event *ev = sample();
  size_t n = wschat__wire_size(ev, "node-1");
  char *buf = malloc(n);
  ck_assert_uint_eq(wschat__wire_encode(ev, "node-1", 1, 1, buf, n), n);
  struct wschat__wire_meta meta;
  struct wschat_event *back = wschat__wire_decode(buf, n, &meta);
  ck_assert_ptr_nonnull(back);
  ck_assert_int_eq(back->kind, WSCHAT_EVENT_LEAVE);
  ck_assert_str_eq(back->room, "Dev");
  ck_assert_str_eq(back->from, "alice");
  ck_assert_ptr_null(back->to);
  ck_assert_str_eq(back->reason, "gone fishing");
  ck_assert_uint_eq(back->text_len, ev->text_len);
  ck_assert_mem_eq(back->text, ev->text, ev->text_len);
  ck_assert_int_eq(back->ts, ev->ts);
  ck_assert_uint_eq(back->client, 42);
  ck_assert_uint_eq(back->skip, 7);
  ck_assert_uint_eq(back->group, 99);
  ck_assert_str_eq(meta.origin, "node-1");
  ck_assert_int_eq(meta.variant, 1);
  ck_assert_int_eq(meta.flags, 1);
  wschat__event_unref(back);
  /* Every shorter prefix, and one byte more, is refused. */
  for (size_t k = 0; k < n; k++) {
    back = wschat__wire_decode(buf, k, &meta);
    ck_assert_msg(back == NULL, "a prefix of %zu bytes decoded", k);
  }
  char *more = malloc(n + 1);
  memcpy(more, buf, n);
  more[n] = 'x';
  ck_assert_ptr_null(wschat__wire_decode(more, n + 1, &meta));
  free(more);
  free(buf);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(a_published_message_carries_id_and_seq) {
  struct wschat_event *ev = sample();
  size_t n = wschat__wire_size(ev, "n");
  char *buf = malloc(n + 64);
  int p = snprintf(buf, 64, "%llu:%llu:", 9007199254740991ULL, 12ULL);
  ck_assert_uint_eq(wschat__wire_encode(ev, "n", 0, 0, buf + p, n), n);
  struct wschat__wire_meta meta;
  struct wschat_event *back =
      wschat__wire_decode_msg(buf, (size_t)p + n, &meta);
  ck_assert_ptr_nonnull(back);
  ck_assert_uint_eq(back->id, 9007199254740991ULL);
  ck_assert_uint_eq(meta.seq, 12);
  wschat__event_unref(back);
  /* without the prefix, or with a broken one */
  ck_assert_ptr_null(wschat__wire_decode_msg(buf + p, n, &meta));
  buf[1] = 'x';
  ck_assert_ptr_null(wschat__wire_decode_msg(buf, (size_t)p + n, &meta));
  free(buf);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(junk_is_refused) {
  struct wschat__wire_meta meta;
  char junk[256];
  ck_assert_ptr_null(wschat__wire_decode("", 0, &meta));
  memset(junk, 0, sizeof(junk));
  ck_assert_ptr_null(wschat__wire_decode(junk, sizeof(junk), &meta));
  /* a valid head with a kind out of range */
  struct wschat_event *ev = sample();
  size_t n = wschat__wire_size(ev, "n");
  char *buf = malloc(n);
  wschat__wire_encode(ev, "n", 0, 0, buf, n);
  buf[1] = 99;
  ck_assert_ptr_null(wschat__wire_decode(buf, n, &meta));
  /* a string length past the end */
  buf[1] = WSCHAT_EVENT_MESSAGE;
  buf[WSCHAT__WIRE_FIXED] = (char)0xfe;
  ck_assert_ptr_null(wschat__wire_decode(buf, n, &meta));
  free(buf);
  /* srand-free pseudo-random bytes: never a crash */
  unsigned x = 12345;
  for (int round = 0; round < 2000; round++) {
    size_t len = (size_t)(x % sizeof(junk));
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      junk[i] = (char)(x >> 16);
    }
    junk[0] = WSCHAT__WIRE_VERSION;
    struct wschat_event *e = wschat__wire_decode(junk, len, &meta);
    wschat__event_unref(e);
  }
  wschat__event_unref(ev);
}
END_TEST

START_TEST(too_long_is_not_encoded) {
  struct wschat_event *ev = sample();
  char small[8];
  ck_assert_uint_eq(wschat__wire_encode(ev, "n", 0, 0, small, sizeof(small)),
                    0);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(a_typing_notice_round_trips) {
  char buf[800];
  size_t n = wschat__wire_typing_encode("node-1", "Dev", "alice", buf,
                                        sizeof(buf));
  ck_assert_uint_eq(n, 2 + 1 + 6 + 1 + 3 + 1 + 5);
  ck_assert_int_eq(buf[0], 'T');
  ck_assert_int_eq(buf[1], WSCHAT__WIRE_VERSION);
  struct wschat__wire_typing t;
  ck_assert_int_eq(wschat__wire_typing_decode(buf, n, &t), 0);
  ck_assert_str_eq(t.origin, "node-1");
  ck_assert_str_eq(t.room, "Dev");
  ck_assert_str_eq(t.from, "alice");
  /* strings of 255 bytes are the longest */
  char big[256];
  memset(big, 'x', 255);
  big[255] = '\0';
  n = wschat__wire_typing_encode(big, big, big, buf, sizeof(buf));
  ck_assert_uint_eq(n, 2 + 3 * 256);
  ck_assert_int_eq(wschat__wire_typing_decode(buf, n, &t), 0);
  ck_assert_str_eq(t.from, big);
  /* an event's decoder refuses it (and the typing decoder an event's
   * published form): they never pass for each other */
  struct wschat__wire_meta meta;
  ck_assert_ptr_null(wschat__wire_decode_msg(buf, n, &meta));
  ck_assert_int_eq(wschat__wire_typing_decode("1:1:x", 5, &t), -1);
}
END_TEST

START_TEST(typing_that_cannot_be_encoded) {
  char buf[800], big[300];
  memset(big, 'x', 256);
  big[256] = '\0';
  ck_assert_uint_eq(wschat__wire_typing_encode("", "r", "a", buf, sizeof(buf)),
                    0);
  ck_assert_uint_eq(wschat__wire_typing_encode("n", "", "a", buf, sizeof(buf)),
                    0);
  ck_assert_uint_eq(wschat__wire_typing_encode("n", "r", "", buf, sizeof(buf)),
                    0);
  ck_assert_uint_eq(
      wschat__wire_typing_encode("n", "r", NULL, buf, sizeof(buf)), 0);
  ck_assert_uint_eq(wschat__wire_typing_encode("n", big, "a", buf, sizeof(buf)),
                    0);
  ck_assert_uint_eq(wschat__wire_typing_encode("n", "r", "a", buf, 7), 0);
  ck_assert_uint_eq(wschat__wire_typing_encode("n", "r", "a", buf, 8), 8);
}
END_TEST

START_TEST(typing_junk_is_refused) {
  struct wschat__wire_typing t;
  char good[64];
  size_t n = wschat__wire_typing_encode("n1", "dev", "bob", good, sizeof(good));
  ck_assert_uint_gt(n, 0);
  /* every cut of a good notice */
  for (size_t len = 0; len < n; len++)
    ck_assert_int_eq(wschat__wire_typing_decode(good, len, &t), -1);
  /* a byte after it */
  char more[65];
  memcpy(more, good, n);
  more[n] = 'x';
  ck_assert_int_eq(wschat__wire_typing_decode(more, n + 1, &t), -1);
  static const struct {
    const char *p;
    size_t len;
  } bad[] = {
      {"", 0},
      {"T", 1},
      {"T\x02\x01n\x01r\x01" "a", 8},       /* another version */
      {"X\x01\x01n\x01r\x01" "a", 8},       /* not a typing notice */
      {"T\x01\x00\x01r\x01" "a", 7},        /* an empty origin */
      {"T\x01\x01n\x00\x01" "a", 7},        /* an empty room */
      {"T\x01\x01n\x01r\x00", 7},           /* an empty name */
      {"T\x01\x01n\x01r\x05" "a", 8},       /* a name cut short */
      {"T\x01\x01n\x03r\0r\x01" "a", 10},   /* a NUL in the room */
      {"T\x01\xffn", 4},                    /* a length past the end */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(wschat__wire_typing_decode(bad[i].p, bad[i].len, &t) == -1,
                  "junk %zu accepted", i);
  /* random bytes behind a valid head: refused or decoded, never more */
  srand(11);
  for (int round = 0; round < 2000; round++) {
    char junk[40];
    size_t len = 2 + (size_t)rand() % 38;
    for (size_t i = 0; i < len; i++)
      junk[i] = (char)(rand() % 8); /* small: lengths that fit, and NULs */
    junk[0] = 'T';
    junk[1] = WSCHAT__WIRE_VERSION;
    if (wschat__wire_typing_decode(junk, len, &t) == 0) {
      ck_assert_uint_eq(strlen(t.origin) + strlen(t.room) + strlen(t.from) + 5,
                        len);
    }
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("cluster_codec");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, urls_that_parse);
  tcase_add_test(tc, urls_that_do_not);
  tcase_add_test(tc, an_event_round_trips);
  tcase_add_test(tc, a_published_message_carries_id_and_seq);
  tcase_add_test(tc, junk_is_refused);
  tcase_add_test(tc, too_long_is_not_encoded);
  tcase_add_test(tc, a_typing_notice_round_trips);
  tcase_add_test(tc, typing_that_cannot_be_encoded);
  tcase_add_test(tc, typing_junk_is_refused);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
