/*
 * event: one chat happening as data (a line, a /me, a join, a leave, a
 * rename, a whisper, a notice), reference-counted, with the frames built
 * from it for each view.
 *
 * Owns: the event's memory (struct and strings in one block) and one
 * reference to each frame in its cache. Never renders (that is a view's
 * job, see view.h), never touches sockets, never delivers.
 */
#ifndef WSCHAT_EVENT_H
#define WSCHAT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "deflate.h"
#include "wschat.h"

struct wschat__frame;

/* Views: how a client sees events: the plain protocol of the README, or
 * the wschat.v1.json subprotocol (docs/PROTOCOL.md). A member's view may
 * carry WSCHAT__VIEW_HELD: its deliveries wait behind a history read (see
 * replay.h), so no fast path that compares the view with a plain value
 * takes it. */
enum { WSCHAT__VIEW_TEXT = 0, WSCHAT__VIEW_JSON = 1, WSCHAT__VIEWS = 2 };
#define WSCHAT__VIEW_HELD 0x80u
#define WSCHAT__VIEW_MASK 0x7fu

/* Variants of one event within a view: the same whisper reads
 * "[whisper from A]" to its recipient and "[whisper to B]" to its sender. */
enum { WSCHAT__TO_RECIPIENT = 0, WSCHAT__TO_SENDER = 1, WSCHAT__VARIANTS = 2 };

struct wschat_event {
  uint32_t refs;
  uint8_t kind;   /* enum wschat_event_kind */
  uint64_t id;    /* set by the chat when it emits the event */
  int64_t ts;     /* ms since the Unix epoch, set with id */
  uint64_t client; /* the sender's client id; 0: the application */
  uint64_t skip;   /* room events: a client id that gets nothing (0: none) */
  uint64_t group;  /* NICK: the events of one rename share it */
  const char *room, *from, *to, *reason; /* in mem, or NULL */
  const char *text;                      /* in mem; "" if none */
  size_t text_len;
  /* The frame cache (each slot owns one reference), per compression key
   * (0: none; see deflate.h), view and variant. A compressed slot holds the
   * plain frame itself when compressing does not pay. */
  struct wschat__frame *frames[WSCHAT__ZKEYS][WSCHAT__VIEWS][WSCHAT__VARIANTS];
  char mem[];
};

/*
 * Makes an event of kind with copies of the strings (each may be NULL;
 * text may hold any bytes, len of them). The caller owns the one
 * reference returned. Returns NULL when out of memory.
 */
struct wschat_event *wschat__event_new(int kind, const char *room,
                                       const char *from, const char *to,
                                       const char *text, size_t len,
                                       const char *reason);

static inline struct wschat_event *wschat__event_ref(struct wschat_event *ev) {
  ev->refs++;
  return ev;
}

/* Drops a reference; the last one frees the event and its frames. */
void wschat__event_unref(struct wschat_event *ev);

#endif
