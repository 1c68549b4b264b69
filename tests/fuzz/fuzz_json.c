/* libFuzzer target: the wschat.v1.json request decoder (lib/json_proto.c)
 * and the server objects built from what it returns (lib/json_view.c).
 * The input is one client message, decoded under the default limits and
 * under tight ones. Invariants: the return is the code recorded; a
 * failure has a printable-ASCII explanation; a success has exactly the
 * members its type promises, each within its limit and rule (valid UTF-8,
 * no NUL, names and rooms valid); what passes the tight limits passes the
 * default ones as the same request; the error object for any outcome is
 * valid JSON and UTF-8 with the right code and the ref echoed unchanged;
 * and an event carrying the input's bytes (UTF-8 or not) or a decoded
 * text renders to valid JSON that gives the text back. */
#include <assert.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "command.h"
#include "event.h"
#include "frame.h"
#include "json_proto.h"
#include "json_view.h"
#include "utf8.h"

/* A frame's payload parsed back: one valid-UTF-8 JSON object (a new
 * reference). Drops the frame. */
static json_t *reparse(struct wschat__frame *f) {
  assert(f != NULL);
  size_t len;
  const uint8_t *p = wschat__frame_payload(f, &len);
  assert(f->data[0] == 0x81);
  assert(wschat__utf8_valid((const char *)p, len));
  json_t *o = json_loadb((const char *)p, len,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
  assert(o != NULL && json_is_object(o));
  wschat__frame_unref(f);
  return o;
}

static void check_str(const char *s, size_t max) {
  assert(s != NULL);
  size_t len = strlen(s);
  assert(len >= 1 && (max == 0 || len <= max));
  assert(wschat__utf8_valid(s, len));
}

static void check(const struct wschat__json_req *r, int got,
                  const struct wschat__json_limits *lim) {
  assert(got == r->code);
  assert(got >= 0 && got < WSCHAT__JERR_COUNT);
  if (got != 0) {
    assert(r->message[0] != '\0');
    for (const char *p = r->message; *p; p++)
      assert(*p >= 0x20 && *p <= 0x7E);
  } else {
    assert(r->message[0] == '\0' && r->root != NULL);
    int t = r->type;
    assert(t > WSCHAT__JREQ_NONE && t <= WSCHAT__JREQ_TYPING);
    int has_text = t == WSCHAT__JREQ_MESSAGE || t == WSCHAT__JREQ_WHISPER;
    assert(has_text == (r->text != NULL));
    if (has_text) {
      check_str(r->text, lim->max_text);
      assert(strlen(r->text) == r->text_len);
    }
    if (t == WSCHAT__JREQ_JOIN || t == WSCHAT__JREQ_HISTORY ||
        t == WSCHAT__JREQ_TYPING)
      assert(r->room != NULL);
    if (r->room)
      assert(wschat__room_valid(r->room, strlen(r->room)));
    assert((t == WSCHAT__JREQ_NICK) == (r->name != NULL));
    if (r->name)
      assert(wschat__name_valid(r->name, strlen(r->name)));
    assert((t == WSCHAT__JREQ_WHISPER) == (r->to != NULL));
    if (r->to)
      assert(wschat__name_valid(r->to, strlen(r->to)));
    if (r->epoch)
      check_str(r->epoch, WSCHAT__JSON_MAX_EPOCH);
    assert(!r->has_since || r->since <= (uint64_t)WSCHAT__JSON_MAX_INT);
    assert(!r->has_before || r->before <= (uint64_t)WSCHAT__JSON_MAX_INT);
    assert((t == WSCHAT__JREQ_HISTORY) == (r->limit != 0));
    assert(r->limit <= lim->max_history);
  }
  if (r->ref != NULL) {
    assert(
        json_is_number(r->ref) ||
        (json_is_string(r->ref) && json_string_length(r->ref) <= lim->max_ref));
  }
  /* The error object for this outcome. */
  json_t *o = reparse(wschat__json_error(got, r->message, r->ref));
  assert(strcmp(json_string_value(json_object_get(o, "code")),
                wschat__json_code_name(got)) == 0);
  json_t *ref = json_object_get(o, "ref");
  assert((ref == NULL) == (r->ref == NULL));
  if (ref != NULL) {
    assert(json_typeof(ref) == json_typeof(r->ref));
    if (json_is_real(ref)) /* echoed as the same double */
      assert(json_real_value(ref) == json_real_value(r->ref));
    else
      assert(json_equal(ref, r->ref));
  }
  json_decref(o);
}

/* An event with text (len bytes, anything) renders to JSON that gives the
 * text back when it was UTF-8. */
static void render(const char *text, size_t len) {
  struct wschat_event *ev = wschat__event_new(WSCHAT_EVENT_MESSAGE, "dev",
                                              "alice", NULL, text, len, NULL);
  if (ev == NULL)
    return;
  ev->id = 1;
  ev->ts = 1;
  json_t *o = reparse(wschat__json_render(ev, WSCHAT__TO_RECIPIENT));
  json_t *t = json_object_get(o, "text");
  assert(json_is_string(t));
  if (wschat__utf8_valid(text, len))
    assert(json_string_length(t) == len &&
           memcmp(json_string_value(t), text, len) == 0);
  json_decref(o);
  wschat__event_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  struct wschat__json_limits def, tight;
  wschat__json_limits_default(&def);
  tight.max_text = 8;
  tight.max_ref = 4;
  tight.max_depth = 2;
  tight.max_history = 5;

  struct wschat__json_req a, b;
  int ga = wschat__json_parse(in, size, &a, &def);
  check(&a, ga, &def);
  int gb = wschat__json_parse(in, size, &b, &tight);
  check(&b, gb, &tight);
  if (gb == 0) {
    assert(ga == 0 && a.type == b.type);
    assert((a.text == NULL) == (b.text == NULL));
    if (a.text)
      assert(a.text_len == b.text_len && !memcmp(a.text, b.text, a.text_len));
  }
  if (ga == 0 && a.text != NULL)
    render(a.text, a.text_len);
  wschat__json_req_free(&a);
  wschat__json_req_free(&b);
  render(in, size);
  return 0;
}
