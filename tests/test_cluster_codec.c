/* Unit tests: what cluster nodes say to each other (lib/cluster_codec.c):
 * the --redis URL and the wire form of an event. */
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

int main(void) {
  Suite *s = suite_create("cluster_codec");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, urls_that_parse);
  tcase_add_test(tc, urls_that_do_not);
  tcase_add_test(tc, an_event_round_trips);
  tcase_add_test(tc, a_published_message_carries_id_and_seq);
  tcase_add_test(tc, junk_is_refused);
  tcase_add_test(tc, too_long_is_not_encoded);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
