/*
 * Unit tests: the wschat.v1.json codecs. lib/json_view.c (events and the
 * other server objects, out) is checked against exact expected strings,
 * and each frame is also parsed back with jansson to check member types,
 * that it is one final text frame, and that its payload is valid UTF-8.
 * lib/json_proto.c (requests in) is fed every request type and, for every
 * error code it produces, concrete bad inputs. jansson's allocator is
 * swapped for a counting one (alloc_*), which shows that a too-deep
 * request is refused before jansson allocates anything, and lets the
 * out-of-memory tests fail the n-th allocation. Every test frees what it
 * made; the ASan build of this test checks that nothing leaks.
 */
#include <check.h>

#include "check_run.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "frame.h"
#include "json_proto.h"
#include "json_view.h"
#include "utf8.h"

#define TS 1700000000123LL

/* ---- jansson's allocator, counted and breakable ---- */

static size_t alloc_calls;
static long alloc_fail_at = -1; /* the call number that fails; -1: none */

static void *alloc_count(size_t n) {
  if (alloc_fail_at >= 0 && (long)alloc_calls >= alloc_fail_at)
    return NULL;
  alloc_calls++;
  return malloc(n);
}

static void alloc_setup(void) {
  alloc_calls = 0;
  alloc_fail_at = -1;
  json_set_alloc_funcs(alloc_count, free);
}

/* ---- helpers ---- */

static struct wschat_event *mkev(int kind, const char *room, const char *from,
                                 const char *to, const char *text,
                                 const char *reason) {
  struct wschat_event *ev = wschat__event_new(kind, room, from, to, text,
                                              text ? strlen(text) : 0, reason);
  ck_assert_ptr_nonnull(ev);
  ev->id = 7;
  ev->ts = TS;
  ev->client = 3;
  return ev;
}

/*
 * Checks f is one final, unmasked text frame whose payload is valid UTF-8
 * and valid JSON (a single object); returns the payload as a malloc'd
 * string (NUL-terminated; a NUL inside shows as the end) and sets *root to
 * the parsed object (the caller decrefs it). Drops the frame.
 */
static char *take(struct wschat__frame *f, json_t **root) {
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->refs, 1);
  ck_assert_uint_eq(f->data[0], 0x81);     /* FIN, text */
  ck_assert_uint_eq(f->data[1] & 0x80, 0); /* unmasked */
  size_t len;
  const uint8_t *p = wschat__frame_payload(f, &len);
  ck_assert_uint_eq((p - f->data) + len, f->len);
  ck_assert(wschat__utf8_valid((const char *)p, len));
  json_error_t err;
  json_t *o = json_loadb((const char *)p, len,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
  ck_assert_msg(o != NULL, "payload is not JSON: %s", err.text);
  ck_assert(json_is_object(o));
  char *s = malloc(len + 1);
  ck_assert_ptr_nonnull(s);
  memcpy(s, p, len);
  s[len] = '\0';
  wschat__frame_unref(f);
  if (root)
    *root = o;
  else
    json_decref(o);
  return s;
}

/* Asserts frame f's payload is exactly want (and valid; see take()). */
#define EXPECT_JSON(f, want)                                                   \
  do {                                                                         \
    char *got_ = take((f), NULL);                                              \
    ck_assert_str_eq(got_, (want));                                            \
    free(got_);                                                                \
  } while (0)

/* Renders ev (variant) and checks the payload is exactly want. */
static void expect_render(const struct wschat_event *ev, int variant,
                          const char *want) {
  EXPECT_JSON(wschat__json_render(ev, variant), want);
}

/* ---- events out ---- */

START_TEST(render_message) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, "hello", NULL);
  const char *want = "{\"type\":\"message\",\"id\":7,\"room\":\"dev\","
                     "\"from\":\"alice\",\"text\":\"hello\","
                     "\"ts\":1700000000123}";
  expect_render(ev, WSCHAT__TO_RECIPIENT, want);
  expect_render(ev, WSCHAT__TO_SENDER, want); /* the sender sees the same */
  json_t *o;
  free(take(wschat__json_render(ev, WSCHAT__TO_RECIPIENT), &o));
  ck_assert(json_is_integer(json_object_get(o, "id")));
  ck_assert(json_is_integer(json_object_get(o, "ts")));
  ck_assert_int_eq(json_integer_value(json_object_get(o, "ts")), TS);
  ck_assert(json_is_string(json_object_get(o, "text")));
  ck_assert_ptr_null(json_object_get(o, "action"));
  json_decref(o);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(render_action) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_ACTION, "dev", "alice", NULL, "waves", NULL);
  expect_render(ev, WSCHAT__TO_RECIPIENT,
                "{\"type\":\"message\",\"id\":7,\"room\":\"dev\","
                "\"from\":\"alice\",\"text\":\"waves\",\"ts\":1700000000123,"
                "\"action\":true}");
  json_t *o;
  free(take(wschat__json_render(ev, 0), &o));
  ck_assert(json_is_true(json_object_get(o, "action")));
  json_decref(o);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(render_join_leave) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_JOIN, "dev", "alice", NULL, NULL, NULL);
  expect_render(ev, 0,
                "{\"type\":\"join\",\"id\":7,\"room\":\"dev\","
                "\"name\":\"alice\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
  ev = mkev(WSCHAT_EVENT_LEAVE, "dev", "alice", NULL, NULL, NULL);
  expect_render(ev, 0,
                "{\"type\":\"leave\",\"id\":7,\"room\":\"dev\","
                "\"name\":\"alice\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
  ev = mkev(WSCHAT_EVENT_LEAVE, "dev", "alice", NULL, NULL, "gone \"fishing\"");
  expect_render(ev, 0,
                "{\"type\":\"leave\",\"id\":7,\"room\":\"dev\","
                "\"name\":\"alice\",\"ts\":1700000000123,"
                "\"reason\":\"gone \\\"fishing\\\"\"}");
  wschat__event_unref(ev);
}
END_TEST

START_TEST(render_nick) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_NICK, "lobby", "guest-1", "alice", NULL, NULL);
  expect_render(ev, 0,
                "{\"type\":\"nick\",\"id\":7,\"room\":\"lobby\","
                "\"from\":\"guest-1\",\"to\":\"alice\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
}
END_TEST

START_TEST(render_whisper) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_WHISPER, NULL, "alice", "bob", "psst", NULL);
  const char *want = "{\"type\":\"whisper\",\"id\":7,\"from\":\"alice\","
                     "\"to\":\"bob\",\"text\":\"psst\",\"ts\":1700000000123}";
  expect_render(ev, WSCHAT__TO_RECIPIENT, want);
  expect_render(ev, WSCHAT__TO_SENDER, want);
  wschat__event_unref(ev);
}
END_TEST

START_TEST(render_notice) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_NOTICE, NULL, NULL, NULL, "* server restarts", NULL);
  expect_render(ev, 0,
                "{\"type\":\"notice\",\"id\":7,"
                "\"text\":\"* server restarts\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
  ev = mkev(WSCHAT_EVENT_NOTICE, "dev", NULL, NULL, "tea time", NULL);
  expect_render(ev, 0,
                "{\"type\":\"notice\",\"id\":7,\"room\":\"dev\","
                "\"text\":\"tea time\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
}
END_TEST

/* Quotes, backslashes, every kind of control character, DEL, a slash,
 * non-ASCII of 2, 3 and 4 bytes, U+2028: escaped where JSON says, as
 * they are elsewhere; read back, the text is the bytes that went in. */
START_TEST(render_escapes) {
  const char *text = "\"q\" \\ / \x01\x1f\t\n\r\b\f \x7f caf\xc3\xa9 "
                     "\xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 </script>";
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, text, NULL);
  expect_render(ev, 0,
                "{\"type\":\"message\",\"id\":7,\"room\":\"dev\","
                "\"from\":\"alice\",\"text\":\"\\\"q\\\" \\\\ / "
                "\\u0001\\u001F\\t\\n\\r\\b\\f \x7f caf\xc3\xa9 "
                "\xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 </script>\","
                "\"ts\":1700000000123}");
  json_t *o;
  free(take(wschat__json_render(ev, 0), &o));
  ck_assert_str_eq(json_string_value(json_object_get(o, "text")), text);
  json_decref(o);
  wschat__event_unref(ev);
}
END_TEST

/* A NUL inside a text (the chat counts bytes) is written \u0000. */
START_TEST(render_nul) {
  struct wschat_event *ev = wschat__event_new(WSCHAT_EVENT_MESSAGE, "dev", "a",
                                              NULL, "x\0y", 3, NULL);
  ck_assert_ptr_nonnull(ev);
  ev->id = 1;
  ev->ts = 2;
  expect_render(ev, 0,
                "{\"type\":\"message\",\"id\":1,\"room\":\"dev\",\"from\":"
                "\"a\",\"text\":\"x\\u0000y\",\"ts\":2}");
  json_t *o;
  free(take(wschat__json_render(ev, 0), &o));
  ck_assert_uint_eq(json_string_length(json_object_get(o, "text")), 3);
  json_decref(o);
  wschat__event_unref(ev);
}
END_TEST

/* Bytes that are not UTF-8 (a stray continuation, a cut sequence, an
 * overlong, a surrogate, 0xFF) come out as U+FFFD, one per bad byte. */
START_TEST(render_bad_utf8) {
  struct wschat_event *ev = mkev(WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL,
                                 "a\x80"
                                 "b\xc3"
                                 "c\xc0\xaf"
                                 "d\xed\xa0\x80"
                                 "e\xff\xc3\xa9",
                                 NULL);
  expect_render(ev, 0,
                "{\"type\":\"message\",\"id\":7,\"room\":\"dev\","
                "\"from\":\"alice\",\"text\":\"a\xef\xbf\xbd"
                "b\xef\xbf\xbd"
                "c\xef\xbf\xbd\xef\xbf\xbd"
                "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                "e\xef\xbf\xbd\xc3\xa9\",\"ts\":1700000000123}");
  wschat__event_unref(ev);
}
END_TEST

/* Long texts: a 16-bit length (past the stack buffer) and a 64-bit one. */
START_TEST(render_long) {
  static const size_t sizes[] = {5000, 70000};
  for (size_t k = 0; k < 2; k++) {
    size_t n = sizes[k];
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
      text[i] = i % 100 == 99 ? '\n' : (char)('a' + i % 26);
    text[n] = '\0';
    struct wschat_event *ev =
        mkev(WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, text, NULL);
    struct wschat__frame *f = wschat__json_render(ev, 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f->data[1] & 0x7F, n < 65536 - 200 ? 126 : 127);
    json_t *o;
    free(take(f, &o));
    ck_assert_str_eq(json_string_value(json_object_get(o, "text")), text);
    json_decref(o);
    wschat__event_unref(ev);
    free(text);
  }
}
END_TEST

/* A frame is built once: rendering is deterministic, and the one frame
 * serves both variants (the view may put it in both cache slots). */
START_TEST(render_once_for_all) {
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_WHISPER, NULL, "alice", "bob", "psst", NULL);
  alloc_setup();
  struct wschat__frame *a = wschat__json_render(ev, WSCHAT__TO_RECIPIENT);
  size_t calls = alloc_calls;
  ck_assert_uint_gt(calls, 0);
  struct wschat__frame *b = wschat__json_render(ev, WSCHAT__TO_SENDER);
  ck_assert_uint_eq(a->len, b->len);
  ck_assert_mem_eq(a->data, b->data, a->len);
  ck_assert_uint_eq(alloc_calls, 2 * calls); /* the tree only: no leftovers */
  wschat__frame_unref(b);
  free(take(a, NULL));
  wschat__event_unref(ev);
}
END_TEST

/* ---- other server objects out ---- */

START_TEST(build_welcome) {
  const char *rooms[] = {"lobby", "dev"};
  EXPECT_JSON(wschat__json_welcome("alice", "dev", rooms, 2, "e3b0c442"),
              "{\"type\":\"welcome\",\"name\":\"alice\",\"room\":\"dev\","
              "\"rooms\":[\"lobby\",\"dev\"],\"epoch\":\"e3b0c442\"}");
  EXPECT_JSON(wschat__json_welcome("guest-1", "lobby", rooms, 1, NULL),
              "{\"type\":\"welcome\",\"name\":\"guest-1\",\"room\":\"lobby\","
              "\"rooms\":[\"lobby\"],\"epoch\":null}");
}
END_TEST

START_TEST(build_users_rooms_typing) {
  const char *names[] = {"alice", "bob"};
  json_t *ref = json_string("r1");
  EXPECT_JSON(wschat__json_users("dev", names, 2, ref),
              "{\"type\":\"users\",\"room\":\"dev\","
              "\"users\":[\"alice\",\"bob\"],\"ref\":\"r1\"}");
  EXPECT_JSON(wschat__json_users(NULL, names, 0, NULL),
              "{\"type\":\"users\",\"users\":[]}");
  ck_assert_int_eq(ref->refcount, 1); /* borrowed, given back */
  json_decref(ref);

  struct wschat__json_room rooms[] = {{"dev", 1}, {"lobby", 12}};
  ref = json_integer(42);
  EXPECT_JSON(wschat__json_rooms(rooms, 2, ref),
              "{\"type\":\"rooms\",\"rooms\":[{\"name\":\"dev\",\"users\":1},"
              "{\"name\":\"lobby\",\"users\":12}],\"ref\":42}");
  json_decref(ref);

  EXPECT_JSON(wschat__json_typing("dev", "alice"),
              "{\"type\":\"typing\",\"room\":\"dev\",\"from\":\"alice\"}");
}
END_TEST

START_TEST(build_history) {
  struct wschat_event *a =
      mkev(WSCHAT_EVENT_MESSAGE, "dev", "alice", NULL, "one", NULL);
  struct wschat_event *b =
      mkev(WSCHAT_EVENT_ACTION, "dev", "bob", NULL, "waves", NULL);
  struct wschat_event *c =
      mkev(WSCHAT_EVENT_JOIN, "dev", "carol", NULL, NULL, NULL);
  b->id = 8;
  c->id = 9;
  const struct wschat_event *evs[] = {a, b, c};
  json_t *ref = json_string("h");
  struct wschat__frame *f = wschat__json_history("dev", evs, 3, 0, ref);
  json_decref(ref);
  json_t *o;
  char *s = take(f, &o);
  ck_assert_str_eq(
      s, "{\"type\":\"history\",\"room\":\"dev\",\"messages\":["
         "{\"type\":\"message\",\"id\":7,\"room\":\"dev\",\"from\":\"alice\","
         "\"text\":\"one\",\"ts\":1700000000123,\"history\":true},"
         "{\"type\":\"message\",\"id\":8,\"room\":\"dev\",\"from\":\"bob\","
         "\"text\":\"waves\",\"ts\":1700000000123,\"action\":true,"
         "\"history\":true},"
         "{\"type\":\"join\",\"id\":9,\"room\":\"dev\",\"name\":\"carol\","
         "\"ts\":1700000000123,\"history\":true}],"
         "\"complete\":false,\"ref\":\"h\"}");
  free(s);
  json_t *msgs = json_object_get(o, "messages");
  ck_assert(json_is_array(msgs));
  ck_assert_uint_eq(json_array_size(msgs), 3);
  for (size_t i = 0; i < 3; i++)
    ck_assert(
        json_is_true(json_object_get(json_array_get(msgs, i), "history")));
  ck_assert(json_is_false(json_object_get(o, "complete")));
  json_decref(o);
  EXPECT_JSON(wschat__json_history("dev", NULL, 0, 1, NULL),
              "{\"type\":\"history\",\"room\":\"dev\",\"messages\":[],"
              "\"complete\":true}");
  wschat__event_unref(a);
  wschat__event_unref(b);
  wschat__event_unref(c);
}
END_TEST

START_TEST(build_error) {
  EXPECT_JSON(
      wschat__json_error(WSCHAT__JERR_NAME_TAKEN, "name taken: bob", NULL),
      "{\"type\":\"error\",\"code\":\"name_taken\","
      "\"message\":\"name taken: bob\"}");
  EXPECT_JSON(wschat__json_error(WSCHAT__JERR_RATE_LIMITED, NULL, NULL),
              "{\"type\":\"error\",\"code\":\"rate_limited\","
              "\"message\":\"rate_limited\"}");
  EXPECT_JSON(wschat__json_error(999, "\xff", NULL),
              "{\"type\":\"error\",\"code\":\"internal\","
              "\"message\":\"\xef\xbf\xbd\"}");
}
END_TEST

START_TEST(code_names) {
  static const char *const want[] = {
      "internal",       "bad_json",       "unknown_type", "bad_field",
      "too_long",       "invalid_name",   "invalid_room", "name_taken",
      "name_reserved",  "no_such_user",   "no_such_room", "not_member",
      "already_member", "too_many_rooms", "rate_limited", "unavailable",
      "internal",       "forbidden"};
  ck_assert_uint_eq(sizeof(want) / sizeof(want[0]), WSCHAT__JERR_COUNT);
  for (int c = 0; c < WSCHAT__JERR_COUNT; c++)
    ck_assert_str_eq(wschat__json_code_name(c), want[c]);
  ck_assert_str_eq(wschat__json_code_name(-1), "internal");
  ck_assert_str_eq(wschat__json_code_name(WSCHAT__JERR_COUNT), "internal");

  ck_assert_int_eq(wschat__json_code_of(0, 0), WSCHAT__JERR_NONE);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_EINVAL, 0),
                   WSCHAT__JERR_BAD_FIELD);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENAME, 0),
                   WSCHAT__JERR_INVALID_NAME);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_EROOM, 0),
                   WSCHAT__JERR_INVALID_ROOM);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ETOOBIG, 0),
                   WSCHAT__JERR_TOO_LONG);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENAMETAKEN, 0),
                   WSCHAT__JERR_NAME_TAKEN);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ERESERVED, 0),
                   WSCHAT__JERR_NAME_RESERVED);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENOTFOUND, 0),
                   WSCHAT__JERR_NO_SUCH_USER);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENOTFOUND, 1),
                   WSCHAT__JERR_NO_SUCH_ROOM);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ESAMEROOM, 1),
                   WSCHAT__JERR_ALREADY_MEMBER);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENOTMEMBER, 1),
                   WSCHAT__JERR_NOT_MEMBER);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ETOOMANY, 1),
                   WSCHAT__JERR_TOO_MANY_ROOMS);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ENOMEM, 0),
                   WSCHAT__JERR_INTERNAL);
  ck_assert_int_eq(wschat__json_code_of(WSCHAT_ECLOSED, 0),
                   WSCHAT__JERR_INTERNAL);
}
END_TEST

/* ---- requests in ---- */

static int parse(const char *s, struct wschat__json_req *r) {
  return wschat__json_parse(s, strlen(s), r, NULL);
}

START_TEST(parse_message) {
  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"message\",\"text\":\"hi \\u00e9\"}", &r),
                   0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_MESSAGE);
  ck_assert_str_eq(r.text, "hi \xc3\xa9");
  ck_assert_uint_eq(r.text_len, 5);
  ck_assert_ptr_null(r.room);
  ck_assert_ptr_null(r.ref);
  ck_assert_int_eq(r.code, 0);
  ck_assert_str_eq(r.message, "");
  wschat__json_req_free(&r);
  /* A room; members in any order; whitespace; unknown members ignored. */
  ck_assert_int_eq(parse(" {\"room\" : \"dev.ops\", \"x\": [1, {\"y\": null}],"
                         " \"text\":\"a\\nb\", \"type\":\"message\"}\n",
                         &r),
                   0);
  ck_assert_str_eq(r.room, "dev.ops");
  ck_assert_str_eq(r.text, "a\nb");
  wschat__json_req_free(&r);
  /* null is the same as absent for an optional member. */
  ck_assert_int_eq(
      parse("{\"type\":\"message\",\"text\":\"x\",\"room\":null}", &r), 0);
  ck_assert_ptr_null(r.room);
  ck_assert_int_eq(r.action, 0);
  wschat__json_req_free(&r);
  wschat__json_req_free(&r); /* twice is fine */
  /* An action (a /me); false and null are a plain line; not a boolean is
   * bad_field. */
  ck_assert_int_eq(
      parse("{\"type\":\"message\",\"text\":\"waves\",\"action\":true}", &r),
      0);
  ck_assert_int_eq(r.action, 1);
  wschat__json_req_free(&r);
  ck_assert_int_eq(
      parse("{\"type\":\"message\",\"text\":\"x\",\"action\":false}", &r), 0);
  ck_assert_int_eq(r.action, 0);
  wschat__json_req_free(&r);
  ck_assert_int_eq(
      parse("{\"type\":\"message\",\"text\":\"x\",\"action\":1}", &r),
      WSCHAT__JERR_BAD_FIELD);
  wschat__json_req_free(&r);
}
END_TEST

START_TEST(parse_join) {
  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"dev\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_JOIN);
  ck_assert_str_eq(r.room, "dev");
  ck_assert_int_eq(r.has_since, 0);
  ck_assert_ptr_null(r.epoch);
  wschat__json_req_free(&r);
  ck_assert_int_eq(
      parse("{\"type\":\"join\",\"room\":\"dev\",\"since\":0}", &r), 0);
  ck_assert_int_eq(r.has_since, 1);
  ck_assert_uint_eq(r.since, 0);
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"dev\","
                         "\"since\":9007199254740991,\"epoch\":\"e3b0\"}",
                         &r),
                   0);
  ck_assert_int_eq(r.has_since, 1);
  ck_assert_uint_eq(r.since, 9007199254740991ULL);
  ck_assert_str_eq(r.epoch, "e3b0");
  wschat__json_req_free(&r);
}
END_TEST

START_TEST(parse_leave_users_rooms_typing) {
  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"leave\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_LEAVE);
  ck_assert_ptr_null(r.room);
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"leave\",\"room\":\"Dev\"}", &r), 0);
  ck_assert_str_eq(r.room, "Dev"); /* as sent: the chat folds case */
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"users\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_USERS);
  ck_assert_ptr_null(r.room);
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"users\",\"room\":\"lobby\"}", &r), 0);
  ck_assert_str_eq(r.room, "lobby");
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"rooms\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_ROOMS);
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"typing\",\"room\":\"dev\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_TYPING);
  ck_assert_str_eq(r.room, "dev");
  wschat__json_req_free(&r);
}
END_TEST

START_TEST(parse_nick_whisper) {
  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"nick\",\"name\":\"Alice_2-b\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_NICK);
  ck_assert_str_eq(r.name, "Alice_2-b");
  wschat__json_req_free(&r);
  ck_assert_int_eq(
      parse("{\"type\":\"whisper\",\"to\":\"bob\",\"text\":\"psst\"}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_WHISPER);
  ck_assert_str_eq(r.to, "bob");
  ck_assert_str_eq(r.text, "psst");
  ck_assert_uint_eq(r.text_len, 4);
  wschat__json_req_free(&r);
}
END_TEST

START_TEST(parse_history) {
  struct wschat__json_req r;
  ck_assert_int_eq(
      parse("{\"type\":\"history\",\"room\":\"dev\",\"limit\":50}", &r), 0);
  ck_assert_int_eq(r.type, WSCHAT__JREQ_HISTORY);
  ck_assert_str_eq(r.room, "dev");
  ck_assert_uint_eq(r.limit, 50);
  ck_assert_int_eq(r.has_before, 0);
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"history\",\"room\":\"dev\",\"limit\":500,"
                         "\"before\":1234}",
                         &r),
                   0);
  ck_assert_uint_eq(r.limit, 500);
  ck_assert_int_eq(r.has_before, 1);
  ck_assert_uint_eq(r.before, 1234);
  wschat__json_req_free(&r);
}
END_TEST

/* Every code the decoder gives, each from concrete inputs. */
static const struct {
  const char *in;
  int code;
} bad[] = {
    /* bad_json: not JSON, not one object, a duplicate key */
    {"", WSCHAT__JERR_BAD_JSON},
    {"   ", WSCHAT__JERR_BAD_JSON},
    {"{", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"rooms\",}", WSCHAT__JERR_BAD_JSON},
    {"{'type':'rooms'}", WSCHAT__JERR_BAD_JSON},
    {"hello", WSCHAT__JERR_BAD_JSON},
    {"/join dev", WSCHAT__JERR_BAD_JSON},
    {"[]", WSCHAT__JERR_BAD_JSON},
    {"[{\"type\":\"rooms\"}]", WSCHAT__JERR_BAD_JSON},
    {"42", WSCHAT__JERR_BAD_JSON},
    {"\"rooms\"", WSCHAT__JERR_BAD_JSON},
    {"null", WSCHAT__JERR_BAD_JSON},
    {"true", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"rooms\"}{\"type\":\"rooms\"}", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"rooms\"} x", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"rooms\",\"type\":\"users\"}", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"message\",\"text\":\"a\xff\"}", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"message\",\"text\":\"\\ud800\"}", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"message\",\"text\":\"a\nb\"}", WSCHAT__JERR_BAD_JSON},
    {"{\"type\":\"rooms\",\"x\":NaN}", WSCHAT__JERR_BAD_JSON},
    /* unknown_type */
    {"{\"type\":\"shout\"}", WSCHAT__JERR_UNKNOWN_TYPE},
    {"{\"type\":\"MESSAGE\",\"text\":\"x\"}", WSCHAT__JERR_UNKNOWN_TYPE},
    {"{\"type\":\"\"}", WSCHAT__JERR_UNKNOWN_TYPE},
    {"{\"type\":\"welcome\"}", WSCHAT__JERR_UNKNOWN_TYPE},
    /* bad_field: missing, mistyped, empty, out of range, U+0000 */
    {"{}", WSCHAT__JERR_BAD_FIELD},
    {"{\"text\":\"hi\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":null}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":5}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":[\"rooms\"]}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":null}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":5}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":\"\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":{}}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":\"x\",\"room\":7}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":\"x\",\"room\":\"\"}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\":\"a\\u0000b\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"message\",\"text\\u0000\":\"a\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":[]}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":-1}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":1.5}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":1e3}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":\"12\"}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":9007199254740992}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"since\":99999999999999999999}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"epoch\":5}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"join\",\"room\":\"dev\",\"epoch\":\"\"}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"nick\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"nick\",\"name\":true}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"whisper\",\"to\":\"bob\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"whisper\",\"text\":\"x\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"whisper\",\"to\":[\"bob\"],\"text\":\"x\"}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"users\",\"room\":false}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"room\":\"dev\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"limit\":5}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"room\":\"dev\",\"limit\":0}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"room\":\"dev\",\"limit\":501}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"room\":\"dev\",\"limit\":true}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"history\",\"room\":\"dev\",\"limit\":5,\"before\":-5}",
     WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"typing\"}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"rooms\",\"ref\":{}}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"rooms\",\"ref\":true}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"rooms\",\"ref\":[1]}", WSCHAT__JERR_BAD_FIELD},
    {"{\"type\":\"rooms\",\"x\":1e999}", WSCHAT__JERR_BAD_FIELD},
    /* too_long: ref over 64 bytes, epoch over 64 (text: see parse_limits) */
    {"{\"type\":\"rooms\",\"ref\":\"0123456789012345678901234567890123456789"
     "01234567890123456789012345\"}",
     WSCHAT__JERR_TOO_LONG},
    {"{\"type\":\"join\",\"room\":\"dev\",\"epoch\":\"012345678901234567890123"
     "45678901234567890123456789012345678901234\"}",
     WSCHAT__JERR_TOO_LONG},
    /* invalid_name, invalid_room */
    {"{\"type\":\"nick\",\"name\":\"bad name\"}", WSCHAT__JERR_INVALID_NAME},
    {"{\"type\":\"nick\",\"name\":\"caf\xc3\xa9\"}", WSCHAT__JERR_INVALID_NAME},
    {"{\"type\":\"nick\",\"name\":\"a.b\"}", WSCHAT__JERR_INVALID_NAME},
    {"{\"type\":\"nick\",\"name\":\"abcdefghijklmnopqrstuvwxyz0123456\"}",
     WSCHAT__JERR_INVALID_NAME},
    {"{\"type\":\"whisper\",\"to\":\"b@b\",\"text\":\"x\"}",
     WSCHAT__JERR_INVALID_NAME},
    {"{\"type\":\"message\",\"text\":\"x\",\"room\":\"no spaces\"}",
     WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"join\",\"room\":\"#dev\"}", WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"join\",\"room\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdef"
     "ghijklmnopqrstuvwxyz012\"}",
     WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"leave\",\"room\":\"a/b\"}", WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"users\",\"room\":\"*\"}", WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"history\",\"room\":\"a b\",\"limit\":1}",
     WSCHAT__JERR_INVALID_ROOM},
    {"{\"type\":\"typing\",\"room\":\"\\t\"}", WSCHAT__JERR_INVALID_ROOM},
};

START_TEST(parse_bad) {
  const char *in = bad[_i].in;
  struct wschat__json_req r;
  int got = wschat__json_parse(in, strlen(in), &r, NULL);
  ck_assert_msg(got == bad[_i].code, "input %d %s: got %s (%s), want %s", _i,
                in, wschat__json_code_name(got), r.message,
                wschat__json_code_name(bad[_i].code));
  ck_assert_int_eq(r.code, got);
  ck_assert_uint_gt(strlen(r.message), 0);
  for (const char *p = r.message; *p; p++) /* printable ASCII */
    ck_assert(*p >= 0x20 && *p <= 0x7E);
  /* The error object for it is valid JSON, with the code's name. */
  json_t *o;
  free(take(wschat__json_error(r.code, r.message, r.ref), &o));
  ck_assert_str_eq(json_string_value(json_object_get(o, "code")),
                   wschat__json_code_name(bad[_i].code));
  ck_assert_str_eq(json_string_value(json_object_get(o, "message")), r.message);
  json_decref(o);
  wschat__json_req_free(&r);
}
END_TEST

/* Input need not be NUL-terminated, and may hold a NUL byte itself. */
START_TEST(parse_lengths) {
  struct wschat__json_req r;
  const char in[] = "{\"type\":\"rooms\"}garbage";
  ck_assert_int_eq(wschat__json_parse(in, 16, &r, NULL), 0);
  wschat__json_req_free(&r);
  ck_assert_int_eq(wschat__json_parse(in, 17, &r, NULL), WSCHAT__JERR_BAD_JSON);
  wschat__json_req_free(&r);
  ck_assert_int_eq(wschat__json_parse("{\"type\":\"rooms\"}\0", 17, &r, NULL),
                   WSCHAT__JERR_BAD_JSON);
  wschat__json_req_free(&r);
}
END_TEST

/* The limits are parameters: text bytes, ref bytes, depth, history. */
START_TEST(parse_limits) {
  struct wschat__json_limits lim;
  wschat__json_limits_default(&lim);
  ck_assert_uint_eq(lim.max_text, 65536);
  ck_assert_uint_eq(lim.max_ref, 64);
  ck_assert_uint_eq(lim.max_depth, 16);
  ck_assert_uint_eq(lim.max_history, 500);
  lim.max_text = 4;
  lim.max_ref = 2;
  lim.max_history = 10;
  struct wschat__json_req r;
  const char *s = "{\"type\":\"message\",\"text\":\"abcd\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim), 0);
  wschat__json_req_free(&r);
  s = "{\"type\":\"message\",\"text\":\"abcde\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim),
                   WSCHAT__JERR_TOO_LONG);
  wschat__json_req_free(&r);
  /* bytes, not characters: two of two bytes is 4, fits; \u escapes count
   * as what they decode to */
  s = "{\"type\":\"message\",\"text\":\"\\u00e9\\u00e9\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim), 0);
  wschat__json_req_free(&r);
  s = "{\"type\":\"whisper\",\"to\":\"bob\",\"text\":"
      "\"\xe2\x82\xac\xe2\x82\xac\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim),
                   WSCHAT__JERR_TOO_LONG);
  wschat__json_req_free(&r);
  s = "{\"type\":\"rooms\",\"ref\":\"ab\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim), 0);
  wschat__json_req_free(&r);
  s = "{\"type\":\"rooms\",\"ref\":\"abc\"}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim),
                   WSCHAT__JERR_TOO_LONG);
  ck_assert_ptr_null(r.ref); /* an oversized ref is not echoed */
  wschat__json_req_free(&r);
  s = "{\"type\":\"history\",\"room\":\"dev\",\"limit\":10}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim), 0);
  wschat__json_req_free(&r);
  s = "{\"type\":\"history\",\"room\":\"dev\",\"limit\":11}";
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, &lim),
                   WSCHAT__JERR_BAD_FIELD);
  wschat__json_req_free(&r);
  /* the default text limit */
  char *big = malloc(65536 + 64);
  ck_assert_ptr_nonnull(big);
  int n = sprintf(big, "{\"type\":\"message\",\"text\":\"");
  memset(big + n, 'x', 65536);
  memcpy(big + n + 65536, "\"}", 3);
  ck_assert_int_eq(wschat__json_parse(big, strlen(big), &r, NULL), 0);
  ck_assert_uint_eq(r.text_len, 65536);
  wschat__json_req_free(&r);
  memcpy(big + n + 65536, "x\"}", 4);
  ck_assert_int_eq(wschat__json_parse(big, strlen(big), &r, NULL),
                   WSCHAT__JERR_TOO_LONG);
  wschat__json_req_free(&r);
  free(big);
}
END_TEST

/* "{...,"x":" + k brackets: depth 1 + k. */
static char *nested(size_t k, char open, char close) {
  char *s = malloc(k * 2 + 64);
  ck_assert_ptr_nonnull(s);
  size_t n = (size_t)sprintf(s, "{\"type\":\"rooms\",\"x\":");
  memset(s + n, open, k);
  memset(s + n + k, close, k);
  memcpy(s + n + 2 * k, "}", 2);
  return s;
}

START_TEST(parse_depth) {
  struct wschat__json_req r;
  char *s = nested(15, '[', ']'); /* 16 deep: the default's most */
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, NULL), 0);
  wschat__json_req_free(&r);
  free(s);
  s = nested(16, '[', ']');
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, NULL),
                   WSCHAT__JERR_BAD_JSON);
  ck_assert_str_eq(r.message, "nested deeper than 16 levels");
  wschat__json_req_free(&r);
  free(s);
  /* Brackets inside strings do not count, escaped quotes included. */
  const char *q = "{\"type\":\"rooms\",\"x\":\"[[[[[[[[[[[[[[[[[[[[\","
                  "\"y\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[\\\\\",\"z\":[[1]]}";
  ck_assert_int_eq(wschat__json_parse(q, strlen(q), &r, NULL), 0);
  wschat__json_req_free(&r);
  /* A smaller bound. */
  struct wschat__json_limits lim;
  wschat__json_limits_default(&lim);
  lim.max_depth = 1;
  q = "{\"type\":\"rooms\",\"x\":[]}";
  ck_assert_int_eq(wschat__json_parse(q, strlen(q), &r, &lim),
                   WSCHAT__JERR_BAD_JSON);
  wschat__json_req_free(&r);
  q = "{\"type\":\"rooms\",\"x\":\"[]\"}";
  ck_assert_int_eq(wschat__json_parse(q, strlen(q), &r, &lim), 0);
  wschat__json_req_free(&r);
}
END_TEST

/* A million-deep request is refused by the scan: jansson allocates
 * nothing for it. */
START_TEST(parse_deep_allocates_nothing) {
  alloc_setup();
  size_t k = 1000000;
  char *s = nested(k, '{', '}'); /* not even valid: the scan comes first */
  struct wschat__json_req r;
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, NULL),
                   WSCHAT__JERR_BAD_JSON);
  ck_assert_uint_eq(alloc_calls, 0);
  wschat__json_req_free(&r);
  free(s);
  s = nested(k, '[', ']');
  ck_assert_int_eq(wschat__json_parse(s, strlen(s), &r, NULL),
                   WSCHAT__JERR_BAD_JSON);
  ck_assert_uint_eq(alloc_calls, 0);
  wschat__json_req_free(&r);
  free(s);
}
END_TEST

/* ref: a string or a number, echoed in the error or the reply; read
 * before the type, so errors after it carry it. */
START_TEST(parse_ref_echo) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"{\"type\":\"shout\",\"ref\":\"abc\"}",
       "{\"type\":\"error\",\"code\":\"unknown_type\",\"message\":\"unknown "
       "type; known: message, join, leave, nick, whisper, users, rooms, "
       "history, typing\",\"ref\":\"abc\"}"},
      {"{\"ref\":42,\"type\":\"message\"}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"missing "
       "field \\\"text\\\"\",\"ref\":42}"},
      {"{\"type\":\"nick\",\"name\":\"a b\",\"ref\":-7}",
       "{\"type\":\"error\",\"code\":\"invalid_name\",\"message\":\"\\\"name\\"
       "\" is not a valid name (1-32 of A-Z a-z 0-9 - _)\",\"ref\":-7}"},
      {"{\"type\":\"join\",\"ref\":\"\\\"q\\u00e9\\\"\"}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"missing "
       "field \\\"room\\\"\",\"ref\":\"\\\"q\xc3\xa9\\\"\"}"},
      {"{\"type\":\"join\",\"ref\":1.5}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"missing "
       "field \\\"room\\\"\",\"ref\":1.5}"},
      {"{\"type\":\"join\",\"ref\":null}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"missing "
       "field \\\"room\\\"\"}"},
      {"{\"type\":\"join\",\"ref\":\"\"}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"missing "
       "field \\\"room\\\"\",\"ref\":\"\"}"},
      /* U+0000 in a member: refused, the ref still read and echoed (not
       * when the ref itself holds it, nor "type", which would otherwise
       * match "message" up to its NUL). */
      {"{\"type\":\"message\",\"text\":\"a\\u0000b\",\"ref\":\"m\"}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"strings "
       "must not contain U+0000\",\"ref\":\"m\"}"},
      {"{\"type\":\"message\\u0000x\",\"text\":\"a\",\"ref\":1}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"strings "
       "must not contain U+0000\",\"ref\":1}"},
      {"{\"type\":\"rooms\",\"ref\":\"a\\u0000\"}",
       "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"strings "
       "must not contain U+0000\"}"},
      /* Unparsable: no ref to echo. */
      {"{\"ref\":\"abc\",",
       "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"invalid JSON: "
       "string or '}' expected near end of file\"}"},
      {"{\"ref\":\"abc\",\"ref\":\"abc\"}",
       "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"invalid JSON: "
       "duplicate object key near '\\\"ref\\\"'\"}"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct wschat__json_req r;
    ck_assert_int_ne(parse(cases[i].in, &r), 0);
    EXPECT_JSON(wschat__json_error(r.code, r.message, r.ref), cases[i].want);
    wschat__json_req_free(&r);
  }
  /* A good request's ref, for its reply. */
  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"users\",\"ref\":\"u1\"}", &r), 0);
  EXPECT_JSON(wschat__json_users("dev", NULL, 0, r.ref),
              "{\"type\":\"users\",\"room\":\"dev\",\"users\":[],"
              "\"ref\":\"u1\"}");
  wschat__json_req_free(&r);
  ck_assert_int_eq(parse("{\"type\":\"rooms\",\"ref\":9007199254740993}", &r),
                   0);
  EXPECT_JSON(wschat__json_rooms(NULL, 0, r.ref),
              "{\"type\":\"rooms\",\"rooms\":[],\"ref\":9007199254740993}");
  wschat__json_req_free(&r);
}
END_TEST

/* jansson's messages can quote input bytes: shown as '?'. */
START_TEST(parse_message_ascii) {
  struct wschat__json_req r;
  ck_assert_int_eq(parse("\xc3\xa9", &r), WSCHAT__JERR_BAD_JSON);
  for (const char *p = r.message; *p; p++)
    ck_assert(*p >= 0x20 && *p <= 0x7E);
  ck_assert_ptr_nonnull(strchr(r.message, '?'));
  wschat__json_req_free(&r);
}
END_TEST

/* Out of memory in jansson at every step: parse says internal (or, where
 * jansson's lexer reports it as a syntax error, bad_json) and frees what it
 * had; a builder returns NULL. Nothing leaks (ASan build). */
START_TEST(out_of_memory) {
  const char *in = "{\"type\":\"join\",\"room\":\"dev\",\"since\":5,"
                   "\"epoch\":\"e\",\"ref\":\"abc\"}";
  int done = 0;
  for (long n = 0; !done; n++) {
    alloc_setup();
    alloc_fail_at = n;
    struct wschat__json_req r;
    int got = parse(in, &r);
    if (got == 0) {
      done = 1;
      ck_assert_str_eq(r.room, "dev");
    } else {
      ck_assert_msg(got == WSCHAT__JERR_INTERNAL ||
                        got == WSCHAT__JERR_BAD_JSON,
                    "failing allocation %ld: %s %s", n,
                    wschat__json_code_name(got), r.message);
    }
    wschat__json_req_free(&r);
  }
  struct wschat_event *ev =
      mkev(WSCHAT_EVENT_LEAVE, "dev", "alice", NULL, NULL, "bye");
  const struct wschat_event *evs[] = {ev, ev};
  const char *rooms[] = {"lobby", "dev"};
  struct wschat__json_room rc[] = {{"dev", 2}};
  for (int which = 0; which < 7; which++) {
    done = 0;
    for (long n = 0; !done; n++) {
      alloc_setup();
      alloc_fail_at = n;
      json_t *ref = NULL;
      struct wschat__frame *f = NULL;
      switch (which) {
      case 0:
        f = wschat__json_render(ev, 0);
        break;
      case 1:
        f = wschat__json_welcome("alice", "dev", rooms, 2, "e");
        break;
      case 2:
        f = wschat__json_users("dev", rooms, 2, NULL);
        break;
      case 3:
        f = wschat__json_rooms(rc, 1, NULL);
        break;
      case 4:
        f = wschat__json_typing("dev", "alice");
        break;
      case 5:
        f = wschat__json_history("dev", evs, 2, 1, NULL);
        break;
      default:
        alloc_fail_at = -1;
        ref = json_string("r");
        alloc_fail_at = (long)alloc_calls + n;
        f = wschat__json_error(WSCHAT__JERR_BAD_FIELD, "m", ref);
        break;
      }
      alloc_fail_at = -1;
      if (f != NULL) {
        done = 1;
        free(take(f, NULL));
      }
      if (ref != NULL) {
        ck_assert_int_eq(ref->refcount, 1);
        json_decref(ref);
      }
    }
  }
  wschat__event_unref(ev);
}
END_TEST

/* The example session of docs/PROTOCOL.md (section 2.7), byte for byte:
 * what the codecs make of its requests and events. */
static struct wschat_event *at(int kind, uint64_t id, int64_t ts,
                               const char *room, const char *from,
                               const char *to, const char *text) {
  struct wschat_event *ev = mkev(kind, room, from, to, text, NULL);
  ev->id = id;
  ev->ts = ts;
  return ev;
}

START_TEST(doc_example_session) {
  const char *rooms1[] = {"dev"};
  EXPECT_JSON(wschat__json_welcome("alice", "dev", rooms1, 1, "5f0c9a2e"),
              "{\"type\":\"welcome\",\"name\":\"alice\",\"room\":\"dev\","
              "\"rooms\":[\"dev\"],\"epoch\":\"5f0c9a2e\"}");
  struct wschat_event *h41 = at(WSCHAT_EVENT_MESSAGE, 41, 1700000000000LL,
                                "dev", "bob", NULL, "anyone?");
  struct wschat_event *j42 =
      at(WSCHAT_EVENT_JOIN, 42, 1700000001000LL, "dev", "alice", NULL, NULL);
  const struct wschat_event *one[] = {h41};
  EXPECT_JSON(
      wschat__json_history("dev", one, 1, 1, NULL),
      "{\"type\":\"history\",\"room\":\"dev\",\"messages\":[{\"type\":"
      "\"message\",\"id\":41,\"room\":\"dev\",\"from\":\"bob\",\"text\":"
      "\"anyone?\",\"ts\":1700000000000,\"history\":true}],"
      "\"complete\":true}");
  expect_render(j42, 0,
                "{\"type\":\"join\",\"id\":42,\"room\":\"dev\",\"name\":"
                "\"alice\",\"ts\":1700000001000}");

  struct wschat__json_req r;
  ck_assert_int_eq(parse("{\"type\":\"message\",\"text\":\"hi bob\"}", &r), 0);
  struct wschat_event *ev = at(WSCHAT_EVENT_MESSAGE, 43, 1700000002000LL, "dev",
                               "alice", NULL, r.text);
  wschat__json_req_free(&r);
  expect_render(ev, 0,
                "{\"type\":\"message\",\"id\":43,\"room\":\"dev\",\"from\":"
                "\"alice\",\"text\":\"hi bob\",\"ts\":1700000002000}");
  wschat__event_unref(ev);

  ck_assert_int_eq(parse("{\"type\":\"typing\",\"room\":\"dev\"}", &r), 0);
  EXPECT_JSON(wschat__json_typing(r.room, "alice"),
              "{\"type\":\"typing\",\"room\":\"dev\",\"from\":\"alice\"}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(
      parse("{\"type\":\"whisper\",\"to\":\"bob\",\"text\":\"psst\"}", &r), 0);
  ev = at(WSCHAT_EVENT_WHISPER, 46, 1700000005000LL, NULL, "alice", r.to,
          r.text);
  wschat__json_req_free(&r);
  expect_render(ev, WSCHAT__TO_SENDER,
                "{\"type\":\"whisper\",\"id\":46,\"from\":\"alice\",\"to\":"
                "\"bob\",\"text\":\"psst\",\"ts\":1700000005000}");
  wschat__event_unref(ev);

  ck_assert_int_eq(parse("{\"type\":\"users\",\"room\":\"dev\",\"ref\":7}", &r),
                   0);
  const char *names[] = {"alice", "bob"};
  EXPECT_JSON(wschat__json_users(r.room, names, 2, r.ref),
              "{\"type\":\"users\",\"room\":\"dev\",\"users\":[\"alice\","
              "\"bob\"],\"ref\":7}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(parse("{\"type\":\"rooms\"}", &r), 0);
  struct wschat__json_room rooms[] = {{"dev", 2}, {"lobby", 0}, {"ops", 1}};
  EXPECT_JSON(wschat__json_rooms(rooms, 3, r.ref),
              "{\"type\":\"rooms\",\"rooms\":[{\"name\":\"dev\",\"users\":2},"
              "{\"name\":\"lobby\",\"users\":0},{\"name\":\"ops\",\"users\":1}"
              "]}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(parse("{\"type\":\"history\",\"room\":\"dev\",\"limit\":2,"
                         "\"before\":43,\"ref\":\"h\"}",
                         &r),
                   0);
  ck_assert_uint_eq(r.limit, 2);
  ck_assert_uint_eq(r.before, 43);
  const struct wschat_event *two[] = {h41, j42};
  EXPECT_JSON(
      wschat__json_history(r.room, two, 2, 1, r.ref),
      "{\"type\":\"history\",\"room\":\"dev\",\"messages\":[{\"type\":"
      "\"message\",\"id\":41,\"room\":\"dev\",\"from\":\"bob\",\"text\":"
      "\"anyone?\",\"ts\":1700000000000,\"history\":true},{\"type\":"
      "\"join\",\"id\":42,\"room\":\"dev\",\"name\":\"alice\",\"ts\":"
      "1700000001000,\"history\":true}],\"complete\":true,\"ref\":\"h\"}");
  wschat__json_req_free(&r);

  ev = at(WSCHAT_EVENT_NICK, 47, 1700000006000LL, "dev", "bob", "robert", NULL);
  expect_render(
      ev, 0,
      "{\"type\":\"nick\",\"id\":47,\"room\":\"dev\",\"from\":\"bob\","
      "\"to\":\"robert\",\"ts\":1700000006000}");
  wschat__event_unref(ev);

  ck_assert_int_eq(
      parse("{\"type\":\"nick\",\"name\":\"robert\",\"ref\":\"n\"}", &r), 0);
  EXPECT_JSON(wschat__json_error(wschat__json_code_of(WSCHAT_ENAMETAKEN, 0),
                                 "name already taken: robert", r.ref),
              "{\"type\":\"error\",\"code\":\"name_taken\",\"message\":\"name "
              "already taken: robert\",\"ref\":\"n\"}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(
      parse("{\"type\":\"shout\",\"text\":\"hey\",\"ref\":\"s\"}", &r),
      WSCHAT__JERR_UNKNOWN_TYPE);
  EXPECT_JSON(wschat__json_error(r.code, r.message, r.ref),
              "{\"type\":\"error\",\"code\":\"unknown_type\",\"message\":"
              "\"unknown type; known: message, join, leave, nick, whisper, "
              "users, rooms, history, typing\",\"ref\":\"s\"}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(parse("{\"type\":\"message\",\"text\":", &r),
                   WSCHAT__JERR_BAD_JSON);
  EXPECT_JSON(wschat__json_error(r.code, r.message, r.ref),
              "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":"
              "\"invalid JSON: unexpected token near end of file\"}");
  wschat__json_req_free(&r);

  ck_assert_int_eq(parse("{\"type\":\"leave\",\"room\":\"ops\"}", &r), 0);
  ev = at(WSCHAT_EVENT_LEAVE, 48, 1700000007000LL, r.room, "alice", NULL, NULL);
  wschat__json_req_free(&r);
  expect_render(ev, 0,
                "{\"type\":\"leave\",\"id\":48,\"room\":\"ops\",\"name\":"
                "\"alice\",\"ts\":1700000007000}");
  wschat__event_unref(ev);
  wschat__event_unref(h41);
  wschat__event_unref(j42);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("json");
  TCase *tc = tcase_create("view");
  tcase_add_test(tc, render_message);
  tcase_add_test(tc, render_action);
  tcase_add_test(tc, render_join_leave);
  tcase_add_test(tc, render_nick);
  tcase_add_test(tc, render_whisper);
  tcase_add_test(tc, render_notice);
  tcase_add_test(tc, render_escapes);
  tcase_add_test(tc, render_nul);
  tcase_add_test(tc, render_bad_utf8);
  tcase_add_test(tc, render_long);
  tcase_add_test(tc, render_once_for_all);
  tcase_add_test(tc, build_welcome);
  tcase_add_test(tc, build_users_rooms_typing);
  tcase_add_test(tc, build_history);
  tcase_add_test(tc, build_error);
  tcase_add_test(tc, code_names);
  suite_add_tcase(s, tc);
  tc = tcase_create("proto");
  tcase_add_test(tc, parse_message);
  tcase_add_test(tc, parse_join);
  tcase_add_test(tc, parse_leave_users_rooms_typing);
  tcase_add_test(tc, parse_nick_whisper);
  tcase_add_test(tc, parse_history);
  tcase_add_loop_test(tc, parse_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
  tcase_add_test(tc, parse_lengths);
  tcase_add_test(tc, parse_limits);
  tcase_add_test(tc, parse_depth);
  tcase_add_test(tc, parse_deep_allocates_nothing);
  tcase_add_test(tc, parse_ref_echo);
  tcase_add_test(tc, parse_message_ascii);
  tcase_add_test(tc, out_of_memory);
  tcase_add_test(tc, doc_example_session);
  tcase_set_timeout(tc, 30);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return wschat_test_run(suite()); }
