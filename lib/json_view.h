/*
 * json_view: the wschat.v1.json subprotocol, server side out
 * (docs/PROTOCOL.md). An event becomes one JSON object in one text frame,
 * rendered once per event for every JSON recipient (the view caches it,
 * see view.h); the objects only one client gets (welcome, users, rooms,
 * history, error) and the ephemeral typing notice are built here too.
 *
 * Every object is built with jansson and written JSON_COMPACT, so all
 * escaping is jansson's; a string that is not valid UTF-8 (never expected:
 * the chat only takes valid text) has each bad byte replaced by U+FFFD, so
 * a frame is always valid UTF-8 and valid JSON. Object members come in a
 * fixed order, "type" first.
 *
 * Owns nothing: each function returns a new frame the caller owns (one
 * reference; wschat__frame_unref() drops it), or NULL when out of memory.
 * Strings and events passed in are read during the call only; a ref passed
 * in is borrowed (the builder takes and drops its own reference). Pure:
 * any thread, no shared state, no I/O.
 */
#ifndef WSCHAT_JSON_VIEW_H
#define WSCHAT_JSON_VIEW_H

#include <jansson.h>
#include <stddef.h>

struct wschat_event;
struct wschat__frame;

/*
 * The JSON view's rendering of ev: one server object (text frame),
 *
 *   MESSAGE  {"type":"message","id","room","from","text","ts"}
 *   ACTION   the same with "action":true last
 *   JOIN     {"type":"join","id","room","name","ts"}
 *   LEAVE    {"type":"leave","id","room","name","ts"} + "reason" if set
 *   NICK     {"type":"nick","id","room","from","to","ts"}
 *   WHISPER  {"type":"whisper","id","from","to","text","ts"}
 *   NOTICE   {"type":"notice","id","text","ts"}, "room" after "id" if set
 *
 * "ts" is ms since the Unix epoch. variant (WSCHAT__TO_*) changes
 * nothing: sender and recipient of a whisper get the same object.
 */
struct wschat__frame *wschat__json_render(const struct wschat_event *ev,
                                          int variant);

/*
 * {"type":"welcome","name","room","rooms":[...],"epoch"}: the client's
 * name, its current room, the nrooms rooms it is in (in the order given),
 * and the history store's epoch (NULL: null, no store).
 */
struct wschat__frame *wschat__json_welcome(const char *name, const char *room,
                                           const char *const *rooms,
                                           size_t nrooms, const char *epoch);

/*
 * {"type":"users","room","users":[names...],"ref"}: the n names in the
 * order given. room NULL (the whole server) leaves "room" out; ref NULL
 * leaves "ref" out.
 */
struct wschat__frame *wschat__json_users(const char *room,
                                         const char *const *names, size_t n,
                                         json_t *ref);

/* One room of a rooms reply. */
struct wschat__json_room {
  const char *name;
  size_t users; /* members */
};

/* {"type":"rooms","rooms":[{"name","users"}...],"ref"}: the n rooms in the
 * order given; ref NULL leaves "ref" out. */
struct wschat__frame *wschat__json_rooms(const struct wschat__json_room *rooms,
                                         size_t n, json_t *ref);

/* {"type":"typing","room","from"}: from is typing in room. */
struct wschat__frame *wschat__json_typing(const char *room, const char *from);

/*
 * {"type":"history","room","messages":[...],"complete","ref"}: each of the
 * n events rendered as wschat__json_render() does, with "history":true
 * added last, oldest first as given; complete (0 or 1) says whether
 * nothing asked for was missing. ref NULL leaves "ref" out.
 */
struct wschat__frame *
wschat__json_history(const char *room, const struct wschat_event *const *evs,
                     size_t n, int complete, json_t *ref);

/*
 * {"type":"error","code","message","ref"}: code is an enum
 * wschat__json_code (json_proto.h; written as its wire name), message a
 * human explanation (NULL: the code's name). ref (NULL: left out) is the
 * request's, e.g. wschat__json_req's ref after a failed parse.
 */
struct wschat__frame *wschat__json_error(int code, const char *message,
                                         json_t *ref);

#endif
