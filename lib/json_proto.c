/* json_proto: see json_proto.h. */
#include "json_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "command.h"
#include "wschat.h"

static const char *const code_names[WSCHAT__JERR_COUNT] = {
    [WSCHAT__JERR_NONE] = "internal",
    [WSCHAT__JERR_BAD_JSON] = "bad_json",
    [WSCHAT__JERR_UNKNOWN_TYPE] = "unknown_type",
    [WSCHAT__JERR_BAD_FIELD] = "bad_field",
    [WSCHAT__JERR_TOO_LONG] = "too_long",
    [WSCHAT__JERR_INVALID_NAME] = "invalid_name",
    [WSCHAT__JERR_INVALID_ROOM] = "invalid_room",
    [WSCHAT__JERR_NAME_TAKEN] = "name_taken",
    [WSCHAT__JERR_NAME_RESERVED] = "name_reserved",
    [WSCHAT__JERR_NO_SUCH_USER] = "no_such_user",
    [WSCHAT__JERR_NO_SUCH_ROOM] = "no_such_room",
    [WSCHAT__JERR_NOT_MEMBER] = "not_member",
    [WSCHAT__JERR_ALREADY_MEMBER] = "already_member",
    [WSCHAT__JERR_TOO_MANY_ROOMS] = "too_many_rooms",
    [WSCHAT__JERR_RATE_LIMITED] = "rate_limited",
    [WSCHAT__JERR_UNAVAILABLE] = "unavailable",
    [WSCHAT__JERR_INTERNAL] = "internal",
    [WSCHAT__JERR_FORBIDDEN] = "forbidden",
};

const char *wschat__json_code_name(int code) {
  if (code <= WSCHAT__JERR_NONE || code >= WSCHAT__JERR_COUNT)
    return code_names[WSCHAT__JERR_INTERNAL];
  return code_names[code];
}

int wschat__json_code_of(int wschat_err, int room_context) {
  switch (wschat_err) {
  case 0:
    return WSCHAT__JERR_NONE;
  case WSCHAT_EINVAL:
    return WSCHAT__JERR_BAD_FIELD;
  case WSCHAT_ENAME:
    return WSCHAT__JERR_INVALID_NAME;
  case WSCHAT_EROOM:
    return WSCHAT__JERR_INVALID_ROOM;
  case WSCHAT_ETOOBIG:
    return WSCHAT__JERR_TOO_LONG;
  case WSCHAT_ENAMETAKEN:
    return WSCHAT__JERR_NAME_TAKEN;
  case WSCHAT_ERESERVED:
    return WSCHAT__JERR_NAME_RESERVED;
  case WSCHAT_ENOTFOUND:
    return room_context ? WSCHAT__JERR_NO_SUCH_ROOM : WSCHAT__JERR_NO_SUCH_USER;
  case WSCHAT_ESAMEROOM:
    return WSCHAT__JERR_ALREADY_MEMBER;
  case WSCHAT_ENOTMEMBER:
    return WSCHAT__JERR_NOT_MEMBER;
  case WSCHAT_ETOOMANY:
    return WSCHAT__JERR_TOO_MANY_ROOMS;
  default:
    return WSCHAT__JERR_INTERNAL;
  }
}

void wschat__json_limits_default(struct wschat__json_limits *lim) {
  lim->max_text = 65536;
  lim->max_ref = 64;
  lim->max_depth = 16;
  lim->max_history = 500;
}

/* Records a failure; the message is kept to printable ASCII (anything
 * else, e.g. input bytes jansson quotes, becomes '?'). Returns code. */
__attribute__((format(printf, 3, 4))) static int
fail(struct wschat__json_req *out, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  /* clang-14's analyzer does not see va_start above: a false positive. */
  // NOLINTNEXTLINE(clang-analyzer-valist.*)
  vsnprintf(out->message, sizeof(out->message), fmt, ap);
  va_end(ap);
  for (char *p = out->message; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
      *p = '?';
  out->code = code;
  return code;
}

/*
 * 1 if no object or array in s[0..len) is nested deeper than max. A byte
 * scan that skips strings (and the character after each backslash in
 * them): exact for valid JSON, and anything else jansson rejects anyway.
 * It runs before jansson allocates a single node.
 */
static int depth_ok(const char *s, size_t len, size_t max) {
  size_t depth = 0;
  int in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        return 0;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return 1;
}

/* The member key of out's request, or NULL when absent or null. */
static json_t *member(const struct wschat__json_req *out, const char *key) {
  json_t *v = json_object_get(out->root, key);
  return json_is_null(v) ? NULL : v;
}

/* A string member: required or optional, 1..max bytes (max 0: any
 * length up to the input's). too_long names the code for an oversized
 * one. Returns 0 or the code recorded. */
static int get_string(struct wschat__json_req *out, const char *key,
                      int required, size_t max, const char **dst,
                      size_t *dst_len) {
  json_t *v = member(out, key);
  if (v == NULL)
    return required
               ? fail(out, WSCHAT__JERR_BAD_FIELD, "missing field \"%s\"", key)
               : 0;
  if (!json_is_string(v))
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"%s\" must be a string", key);
  size_t len = json_string_length(v);
  if (len == 0)
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"%s\" must not be empty", key);
  if (max > 0 && len > max)
    return fail(out, WSCHAT__JERR_TOO_LONG, "\"%s\" is longer than %zu bytes",
                key, max);
  if (strlen(json_string_value(v)) != len)
    return fail(out, WSCHAT__JERR_BAD_FIELD, "strings must not contain U+0000");
  *dst = json_string_value(v);
  if (dst_len)
    *dst_len = len;
  return 0;
}

static int get_room(struct wschat__json_req *out, const char *key,
                    int required) {
  size_t len = 0;
  int r = get_string(out, key, required, 0, &out->room, &len);
  if (r == 0 && out->room != NULL && !wschat__room_valid(out->room, len)) {
    out->room = NULL;
    return fail(out, WSCHAT__JERR_INVALID_ROOM,
                "\"%s\" is not a valid room name (1-64 of A-Z a-z 0-9 - _ .)",
                key);
  }
  return r;
}

static int get_name(struct wschat__json_req *out, const char *key,
                    const char **dst) {
  size_t len = 0;
  int r = get_string(out, key, 1, 0, dst, &len);
  if (r == 0 && !wschat__name_valid(*dst, len)) {
    *dst = NULL;
    return fail(out, WSCHAT__JERR_INVALID_NAME,
                "\"%s\" is not a valid name (1-32 of A-Z a-z 0-9 - _)", key);
  }
  return r;
}

/* An optional boolean member (absent or null: 0). Returns 0 or the code
 * recorded. */
static int get_bool(struct wschat__json_req *out, const char *key, int *dst) {
  json_t *v = member(out, key);
  if (v == NULL)
    return 0;
  if (!json_is_boolean(v))
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"%s\" must be true or false",
                key);
  *dst = json_is_true(v);
  return 0;
}

/* An integer member in min..max. Returns 0 or the code recorded. */
static int get_int(struct wschat__json_req *out, const char *key, int required,
                   int64_t min, int64_t max, int64_t *dst, int *has) {
  json_t *v = member(out, key);
  if (v == NULL)
    return required
               ? fail(out, WSCHAT__JERR_BAD_FIELD, "missing field \"%s\"", key)
               : 0;
  if (!json_is_integer(v))
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"%s\" must be an integer", key);
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"%s\" must be %lld to %lld", key,
                (long long)min, (long long)max);
  *dst = n;
  if (has)
    *has = 1;
  return 0;
}

static const struct {
  const char *name;
  int type;
} types[] = {
    {"message", WSCHAT__JREQ_MESSAGE}, {"join", WSCHAT__JREQ_JOIN},
    {"leave", WSCHAT__JREQ_LEAVE},     {"nick", WSCHAT__JREQ_NICK},
    {"whisper", WSCHAT__JREQ_WHISPER}, {"users", WSCHAT__JREQ_USERS},
    {"rooms", WSCHAT__JREQ_ROOMS},     {"history", WSCHAT__JREQ_HISTORY},
    {"typing", WSCHAT__JREQ_TYPING},
};

/* The members of a request of type out->type, in the order of
 * docs/PROTOCOL.md; the first bad one decides. */
static int fields(struct wschat__json_req *out,
                  const struct wschat__json_limits *lim) {
  int64_t n = 0;
  int r;
  switch (out->type) {
  case WSCHAT__JREQ_MESSAGE:
    if ((r = get_string(out, "text", 1, lim->max_text, &out->text,
                        &out->text_len)) != 0)
      return r;
    if ((r = get_room(out, "room", 0)) != 0)
      return r;
    return get_bool(out, "action", &out->action);
  case WSCHAT__JREQ_JOIN:
    if ((r = get_room(out, "room", 1)) != 0)
      return r;
    if ((r = get_int(out, "since", 0, 0, WSCHAT__JSON_MAX_INT, &n,
                     &out->has_since)) != 0)
      return r;
    out->since = (uint64_t)n;
    return get_string(out, "epoch", 0, WSCHAT__JSON_MAX_EPOCH, &out->epoch,
                      NULL);
  case WSCHAT__JREQ_LEAVE:
  case WSCHAT__JREQ_USERS:
    return get_room(out, "room", 0);
  case WSCHAT__JREQ_NICK:
    return get_name(out, "name", &out->name);
  case WSCHAT__JREQ_WHISPER:
    if ((r = get_name(out, "to", &out->to)) != 0)
      return r;
    return get_string(out, "text", 1, lim->max_text, &out->text,
                      &out->text_len);
  case WSCHAT__JREQ_HISTORY:
    if ((r = get_room(out, "room", 1)) != 0)
      return r;
    if ((r = get_int(out, "limit", 1, 1, lim->max_history, &n, NULL)) != 0)
      return r;
    out->limit = (uint32_t)n;
    if ((r = get_int(out, "before", 0, 0, WSCHAT__JSON_MAX_INT, &n,
                     &out->has_before)) != 0)
      return r;
    out->before = (uint64_t)n;
    n = 0;
    if ((r = get_int(out, "after", 0, 0, WSCHAT__JSON_MAX_INT, &n,
                     &out->has_after)) != 0)
      return r;
    out->after = (uint64_t)n;
    if (out->has_before && out->has_after)
      return fail(out, WSCHAT__JERR_BAD_FIELD,
                  "\"before\" and \"after\" cannot both be given");
    return 0;
  case WSCHAT__JREQ_TYPING:
    return get_room(out, "room", 1);
  default: /* WSCHAT__JREQ_ROOMS */
    return 0;
  }
}

int wschat__json_parse(const char *text, size_t len,
                       struct wschat__json_req *out,
                       const struct wschat__json_limits *lim) {
  struct wschat__json_limits def;
  if (lim == NULL) {
    wschat__json_limits_default(&def);
    lim = &def;
  }
  memset(out, 0, sizeof(*out));
  if (!depth_ok(text, len, lim->max_depth))
    return fail(out, WSCHAT__JERR_BAD_JSON, "nested deeper than %zu levels",
                lim->max_depth);
  /* jansson leaves err untouched on some out-of-memory paths, and its
   * code is read from the last byte of err.text: start from zeros
   * (json_error_unknown). */
  json_error_t err;
  memset(&err, 0, sizeof(err));
  /* U+0000 is let through the parse and refused member by member (the
   * strings we use), so that the request's ref can still be echoed. */
  out->root = json_loadb(
      text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
      &err);
  if (out->root == NULL) {
    switch (json_error_code(&err)) {
    case json_error_out_of_memory:
      return fail(out, WSCHAT__JERR_INTERNAL, "out of memory");
    case json_error_unknown:
      /* err untouched: no parse error was found, an allocation failed
       * (jansson 2.14 sets nothing when it cannot add a member, an array
       * item or a value). The client did nothing wrong. */
      if (err.text[0] == '\0')
        return fail(out, WSCHAT__JERR_INTERNAL, "out of memory");
      return fail(out, WSCHAT__JERR_BAD_JSON, "invalid JSON: %s", err.text);
    case json_error_numeric_overflow:
      return fail(out, WSCHAT__JERR_BAD_FIELD, "number out of range: %s",
                  err.text);
    case json_error_null_character:
    case json_error_null_byte_in_key:
      return fail(out, WSCHAT__JERR_BAD_FIELD,
                  "strings must not contain U+0000");
    default:
      return fail(out, WSCHAT__JERR_BAD_JSON, "invalid JSON: %s", err.text);
    }
  }
  if (!json_is_object(out->root))
    return fail(out, WSCHAT__JERR_BAD_JSON, "a request is one JSON object");

  json_t *ref = member(out, "ref");
  if (ref != NULL) {
    if (json_is_string(ref)) {
      if (json_string_length(ref) > lim->max_ref)
        return fail(out, WSCHAT__JERR_TOO_LONG,
                    "\"ref\" is longer than %zu bytes", lim->max_ref);
      if (strlen(json_string_value(ref)) != json_string_length(ref))
        return fail(out, WSCHAT__JERR_BAD_FIELD,
                    "strings must not contain U+0000");
    } else if (!json_is_number(ref)) {
      return fail(out, WSCHAT__JERR_BAD_FIELD,
                  "\"ref\" must be a string or a number");
    }
    out->ref = ref;
  }

  json_t *type = json_object_get(out->root, "type");
  if (type == NULL)
    return fail(out, WSCHAT__JERR_BAD_FIELD, "missing field \"type\"");
  if (!json_is_string(type))
    return fail(out, WSCHAT__JERR_BAD_FIELD, "\"type\" must be a string");
  if (strlen(json_string_value(type)) != json_string_length(type))
    return fail(out, WSCHAT__JERR_BAD_FIELD, "strings must not contain U+0000");
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(json_string_value(type), types[i].name) == 0)
      out->type = types[i].type;
  if (out->type == WSCHAT__JREQ_NONE)
    return fail(out, WSCHAT__JERR_UNKNOWN_TYPE,
                "unknown type; known: message, join, leave, nick, whisper, "
                "users, rooms, history, typing");
  return fields(out, lim);
}

void wschat__json_req_free(struct wschat__json_req *out) {
  json_decref(out->root); /* NULL is fine */
  memset(out, 0, sizeof(*out));
}
