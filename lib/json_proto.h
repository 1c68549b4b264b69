/*
 * json_proto: the wschat.v1.json subprotocol, client side in
 * (docs/PROTOCOL.md). One WebSocket text message is one JSON object with a
 * "type"; wschat__json_parse() checks it completely (syntax, nesting,
 * types, ranges, lengths, name and room rules) and fills a request, or
 * says which of the protocol's stable error codes it earns. Also the
 * protocol's error vocabulary: the codes, their names, and the mapping
 * from the chat core's errors.
 *
 * Owns: each parsed request's JSON tree (freed by wschat__json_req_free()).
 * Pure: no sockets, no chat calls, no rendering (the server objects are
 * json_view.h's).
 */
#ifndef WSCHAT_JSON_PROTO_H
#define WSCHAT_JSON_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Request types, from the "type" member. */
enum wschat__json_type {
  WSCHAT__JREQ_NONE = 0, /* the parse failed before the type was known */
  WSCHAT__JREQ_MESSAGE,  /* text, room (optional) */
  WSCHAT__JREQ_JOIN,     /* room, since (optional), epoch (optional) */
  WSCHAT__JREQ_LEAVE,    /* room (optional) */
  WSCHAT__JREQ_NICK,     /* name */
  WSCHAT__JREQ_WHISPER,  /* to, text */
  WSCHAT__JREQ_USERS,    /* room (optional) */
  WSCHAT__JREQ_ROOMS,    /* nothing */
  WSCHAT__JREQ_HISTORY,  /* room, limit, before or after (optional) */
  WSCHAT__JREQ_TYPING,   /* room */
};

/* The error codes of the "error" object: stable, machine-readable; the
 * wire spelling is wschat__json_code_name(). The decoder produces the
 * first six and internal; the others answer what the chat core refuses
 * (wschat__json_code_of()) or what the server decides (rate_limited,
 * unavailable, forbidden). */
enum wschat__json_code {
  WSCHAT__JERR_NONE = 0,
  WSCHAT__JERR_BAD_JSON,     /* not JSON, not one object, a duplicate key,
                                nested too deeply */
  WSCHAT__JERR_UNKNOWN_TYPE, /* "type" is a string but no request's */
  WSCHAT__JERR_BAD_FIELD,    /* a member missing, mistyped, out of range,
                                empty where it may not be, or with U+0000 */
  WSCHAT__JERR_TOO_LONG,     /* a string over its limit (text, ref, epoch) */
  WSCHAT__JERR_INVALID_NAME, /* not 1-32 of A-Z a-z 0-9 - _ (nick, to) */
  WSCHAT__JERR_INVALID_ROOM, /* not 1-64 of A-Z a-z 0-9 - _ . */
  WSCHAT__JERR_NAME_TAKEN,
  WSCHAT__JERR_NAME_RESERVED,
  WSCHAT__JERR_NO_SUCH_USER,
  WSCHAT__JERR_NO_SUCH_ROOM,
  WSCHAT__JERR_NOT_MEMBER,
  WSCHAT__JERR_ALREADY_MEMBER,
  WSCHAT__JERR_TOO_MANY_ROOMS,
  WSCHAT__JERR_RATE_LIMITED,
  WSCHAT__JERR_UNAVAILABLE, /* e.g. history asked of a server without it */
  WSCHAT__JERR_INTERNAL,    /* out of memory or another server fault */
  WSCHAT__JERR_FORBIDDEN,   /* the client's token does not allow it (a room
                               outside its rooms; a rename) */
  WSCHAT__JERR_COUNT
};

/*
 * The wire name of code ("bad_json", ...): a static string. 0 and codes
 * out of range give "internal".
 */
const char *wschat__json_code_name(int code);

/*
 * The protocol code for a chat-core error (enum wschat_error: e.g.
 * WSCHAT_ENAMETAKEN gives WSCHAT__JERR_NAME_TAKEN). room_context says
 * whether a WSCHAT_ENOTFOUND was about a room (no_such_room) or a user
 * (no_such_user). 0 gives WSCHAT__JERR_NONE; anything unknown
 * WSCHAT__JERR_INTERNAL.
 */
int wschat__json_code_of(int wschat_err, int room_context);

/* Bounds the decoder enforces (wschat__json_limits_default() fills them). */
struct wschat__json_limits {
  size_t max_text;      /* bytes of a text (message, whisper): too_long */
  size_t max_ref;       /* bytes of a string ref: too_long */
  size_t max_depth;     /* nesting of objects and arrays, the request
                           object counting 1: bad_json, found by a scan of
                           the bytes before anything is allocated */
  uint32_t max_history; /* history's largest limit: bad_field above */
};

/* The defaults: max_text 65536, max_ref 64, max_depth 16, max_history
 * 500. */
void wschat__json_limits_default(struct wschat__json_limits *lim);

/* Most bytes of an epoch (an opaque string); too_long above. */
#define WSCHAT__JSON_MAX_EPOCH 64
/* Integers in requests (since, before) are 0 .. 2^53 - 1, the integers a
 * JavaScript number holds exactly; bad_field outside. */
#define WSCHAT__JSON_MAX_INT ((int64_t)9007199254740991)

/*
 * One decoded request. Every string is NUL-terminated, valid UTF-8 without
 * U+0000, and points into root: valid until wschat__json_req_free(). A
 * member the request type does not have, or an optional one the client left
 * out (or sent as null), is NULL (strings) or 0 with its has_ flag 0.
 */
struct wschat__json_req {
  int type;         /* enum wschat__json_type: set once "type" is read, so
                       also when a later member fails */
  const char *text; /* message, whisper: 1..max_text bytes */
  size_t text_len;
  const char *room;  /* a valid room name (message, join, leave, users,
                        history, typing) */
  const char *name;  /* nick: a valid user name */
  const char *to;    /* whisper: a valid user name */
  const char *epoch; /* join: 1..WSCHAT__JSON_MAX_EPOCH bytes */
  uint64_t since;    /* join, when has_since */
  uint64_t before;   /* history, when has_before */
  uint64_t after;    /* history, when has_after (never with before) */
  uint32_t limit;    /* history: 1..max_history */
  int has_since, has_before, has_after;
  int action; /* message: "action": true, a /me */
  json_t *ref; /* the client's ref (a string of at most max_ref bytes, or a
                  number), to echo; NULL if none. Borrowed from root: the
                  builders of json_view.h take their own reference. */
  int code;    /* on failure: enum wschat__json_code, else 0 */
  char message[160]; /* on failure: a human explanation in printable
                        ASCII (jansson's own, for bad_json, with any other
                        byte shown as '?'), else "" */
  json_t *root;      /* owned: the parsed tree, or NULL */
};

/*
 * Decodes one client message, text[0..len) (need not be NUL-terminated;
 * not kept), under lim (NULL: the defaults). Does not take ownership of
 * anything; fills out completely (out's old contents are not looked at:
 * free a previous request first). On failure out->code and out->message
 * say why, and out->ref holds the request's ref if it was read before the
 * failure (a well-formed ref of an object that fails later is echoed; an
 * unparsable message has none). Loop thread or any thread: no shared
 * state.
 * Whatever it returns, call wschat__json_req_free(out) once afterwards.
 * Returns 0 (out->type set) or the error code (> 0, also in out->code):
 * WSCHAT__JERR_BAD_JSON, _UNKNOWN_TYPE, _BAD_FIELD, _TOO_LONG,
 * _INVALID_NAME, _INVALID_ROOM, or _INTERNAL (out of memory; jansson
 * reports some of its allocation failures as syntax errors, so bad_json
 * is possible then too).
 */
int wschat__json_parse(const char *text, size_t len,
                       struct wschat__json_req *out,
                       const struct wschat__json_limits *lim);

/* Frees what out owns (its tree: every string in it and its ref become
 * invalid) and clears it. Safe on a cleared request and twice. */
void wschat__json_req_free(struct wschat__json_req *out);

#endif
