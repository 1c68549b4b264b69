/* json_view: see json_view.h. */
#include "json_view.h"

#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "frame.h"
#include "json_proto.h"
#include "utf8.h"

/* Bytes of a frame payload that are written on the stack first (one
 * serialization, one allocation: the frame's); longer ones are written
 * twice (once to measure). */
#define STACK_DUMP 4096

/* The bytes a lead byte says its UTF-8 sequence has (0: never a lead). */
static size_t seq_len(unsigned char c) {
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return 2;
  if (c >= 0xE0 && c <= 0xEF)
    return 3;
  if (c >= 0xF0 && c <= 0xF4)
    return 4;
  return 0;
}

/*
 * A JSON string of s[0..len) (NULL: null). Valid UTF-8 goes in as it is;
 * otherwise each byte that does not start a valid sequence becomes U+FFFD
 * (EF BF BD) in a temporary copy. A new reference, or NULL when out of
 * memory.
 */
static json_t *jstr(const char *s, size_t len) {
  if (s == NULL)
    return json_null();
  if (wschat__utf8_valid(s, len))
    return json_stringn_nocheck(s, len);
  char *fixed = malloc(3 * len); /* at most 3 bytes for each byte */
  if (fixed == NULL)
    return NULL;
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t k = seq_len((unsigned char)s[i]);
    if (k > 0 && k <= len - i && wschat__utf8_valid(s + i, k)) {
      memcpy(fixed + n, s + i, k);
      n += k;
      i += k;
    } else {
      memcpy(fixed + n, "\xEF\xBF\xBD", 3);
      n += 3;
      i++;
    }
  }
  json_t *v = json_stringn_nocheck(fixed, n);
  free(fixed);
  return v;
}

static json_t *jstrz(const char *s) { return jstr(s, s ? strlen(s) : 0); }

/* Sets o[key] = v, taking v's reference (also on failure: jansson drops
 * it). o may be NULL (out of memory earlier); any failure sets *failed. */
static void put(json_t *o, const char *key, json_t *v, int *failed) {
  if (json_object_set_new_nocheck(o, key, v) != 0)
    *failed = 1;
}

/* Sets o["ref"] when ref is not NULL (a reference of its own). */
static void put_ref(json_t *o, json_t *ref, int *failed) {
  if (ref != NULL && json_object_set_nocheck(o, "ref", ref) != 0)
    *failed = 1;
}

/* A new object whose first member is "type". */
static json_t *typed(const char *type, int *failed) {
  json_t *o = json_object();
  put(o, "type", json_string_nocheck(type), failed);
  return o;
}

/* Ids start at 1 and grow by one per event: they stay far below 2^53. */
static json_t *jid(uint64_t id) { return json_integer((json_int_t)id); }

/* The object of ev (see json_view.h), or NULL with *failed set. */
static json_t *event_obj(const struct wschat_event *ev, int *failed) {
  json_t *o;
  switch (ev->kind) {
  case WSCHAT_EVENT_MESSAGE:
  case WSCHAT_EVENT_ACTION:
    o = typed("message", failed);
    put(o, "id", jid(ev->id), failed);
    put(o, "room", jstrz(ev->room), failed);
    put(o, "from", jstrz(ev->from), failed);
    put(o, "text", jstr(ev->text, ev->text_len), failed);
    put(o, "ts", json_integer(ev->ts), failed);
    if (ev->kind == WSCHAT_EVENT_ACTION)
      put(o, "action", json_true(), failed);
    break;
  case WSCHAT_EVENT_JOIN:
  case WSCHAT_EVENT_LEAVE:
    o = typed(ev->kind == WSCHAT_EVENT_JOIN ? "join" : "leave", failed);
    put(o, "id", jid(ev->id), failed);
    put(o, "room", jstrz(ev->room), failed);
    put(o, "name", jstrz(ev->from), failed);
    put(o, "ts", json_integer(ev->ts), failed);
    if (ev->reason != NULL)
      put(o, "reason", jstrz(ev->reason), failed);
    break;
  case WSCHAT_EVENT_NICK:
    o = typed("nick", failed);
    put(o, "id", jid(ev->id), failed);
    put(o, "room", jstrz(ev->room), failed);
    put(o, "from", jstrz(ev->from), failed);
    put(o, "to", jstrz(ev->to), failed);
    put(o, "ts", json_integer(ev->ts), failed);
    break;
  case WSCHAT_EVENT_WHISPER:
    o = typed("whisper", failed);
    put(o, "id", jid(ev->id), failed);
    put(o, "from", jstrz(ev->from), failed);
    put(o, "to", jstrz(ev->to), failed);
    put(o, "text", jstr(ev->text, ev->text_len), failed);
    put(o, "ts", json_integer(ev->ts), failed);
    break;
  default: /* WSCHAT_EVENT_NOTICE */
    o = typed("notice", failed);
    put(o, "id", jid(ev->id), failed);
    if (ev->room != NULL)
      put(o, "room", jstrz(ev->room), failed);
    put(o, "text", jstr(ev->text, ev->text_len), failed);
    put(o, "ts", json_integer(ev->ts), failed);
    break;
  }
  return o;
}

/* Writes o (compact) into a new text frame and drops o. NULL when
 * anything failed (failed set, o NULL, out of memory). */
static struct wschat__frame *finish(json_t *o, int failed) {
  struct wschat__frame *f = NULL;
  if (o != NULL && !failed) {
    char stack[STACK_DUMP];
    size_t n = json_dumpb(o, stack, sizeof(stack), JSON_COMPACT);
    if (n > 0 && n <= sizeof(stack)) {
      f = wschat__frame_new(WSCHAT__OP_TEXT, stack, n);
    } else if (n > sizeof(stack)) {
      char *p = malloc(n);
      if (p != NULL && json_dumpb(o, p, n, JSON_COMPACT) == n)
        f = wschat__frame_new(WSCHAT__OP_TEXT, p, n);
      free(p);
    }
  }
  json_decref(o);
  return f;
}

struct wschat__frame *wschat__json_render(const struct wschat_event *ev,
                                          int variant) {
  (void)variant; /* one object for everyone */
  int failed = 0;
  json_t *o = event_obj(ev, &failed);
  return finish(o, failed);
}

/* An array of n strings, or NULL with *failed set. */
static json_t *str_array(const char *const *s, size_t n, int *failed) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(a, jstrz(s[i])) != 0)
      *failed = 1;
  return a;
}

struct wschat__frame *wschat__json_welcome(const char *name, const char *room,
                                           const char *const *rooms,
                                           size_t nrooms, const char *epoch) {
  int failed = 0;
  json_t *o = typed("welcome", &failed);
  put(o, "name", jstrz(name), &failed);
  put(o, "room", jstrz(room), &failed);
  put(o, "rooms", str_array(rooms, nrooms, &failed), &failed);
  put(o, "epoch", jstrz(epoch), &failed);
  return finish(o, failed);
}

struct wschat__frame *wschat__json_users(const char *room,
                                         const char *const *names, size_t n,
                                         json_t *ref) {
  int failed = 0;
  json_t *o = typed("users", &failed);
  if (room != NULL)
    put(o, "room", jstrz(room), &failed);
  put(o, "users", str_array(names, n, &failed), &failed);
  put_ref(o, ref, &failed);
  return finish(o, failed);
}

struct wschat__frame *wschat__json_rooms(const struct wschat__json_room *rooms,
                                         size_t n, json_t *ref) {
  int failed = 0;
  json_t *o = typed("rooms", &failed);
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_object();
    put(r, "name", jstrz(rooms[i].name), &failed);
    put(r, "users", json_integer((json_int_t)rooms[i].users), &failed);
    if (json_array_append_new(a, r) != 0)
      failed = 1;
  }
  put(o, "rooms", a, &failed);
  put_ref(o, ref, &failed);
  return finish(o, failed);
}

struct wschat__frame *wschat__json_typing(const char *room, const char *from) {
  int failed = 0;
  json_t *o = typed("typing", &failed);
  put(o, "room", jstrz(room), &failed);
  put(o, "from", jstrz(from), &failed);
  return finish(o, failed);
}

struct wschat__frame *
wschat__json_history(const char *room, const struct wschat_event *const *evs,
                     size_t n, int complete, json_t *ref) {
  int failed = 0;
  json_t *o = typed("history", &failed);
  put(o, "room", jstrz(room), &failed);
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *m = event_obj(evs[i], &failed);
    put(m, "history", json_true(), &failed);
    if (json_array_append_new(a, m) != 0)
      failed = 1;
  }
  put(o, "messages", a, &failed);
  put(o, "complete", json_boolean(complete), &failed);
  put_ref(o, ref, &failed);
  return finish(o, failed);
}

struct wschat__frame *wschat__json_error(int code, const char *message,
                                         json_t *ref) {
  int failed = 0;
  const char *name = wschat__json_code_name(code);
  json_t *o = typed("error", &failed);
  put(o, "code", json_string_nocheck(name), &failed);
  put(o, "message", jstrz(message ? message : name), &failed);
  put_ref(o, ref, &failed);
  return finish(o, failed);
}
