/*
 * log: structured events for the application's log callback
 * (wschat_server_set_log()): an event name and key/value fields, at a
 * level. The library never writes to stderr through it and never formats
 * a line itself: the callback renders (chat-cli: text or JSON lines).
 *
 * Owns nothing. Cost when an event is below the level: one comparison
 * (wschat__log_on()); fields are only built after it.
 */
#ifndef WSCHAT_LOG_H
#define WSCHAT_LOG_H

#include <stddef.h>

#include "wschat.h"

struct wschat__log {
  wschat_log_cb cb; /* NULL: no logging */
  void *user;
  int level; /* enum wschat_log_level: events up to it are passed on */
};

static inline int wschat__log_on(const struct wschat__log *l, int level) {
  return l->cb != NULL && level <= l->level;
}

/* Passes one event on (if its level is on). fields: n of them. */
void wschat__log_event(const struct wschat__log *l, int level,
                       const char *event, const struct wschat_log_field *f,
                       size_t n);

#endif
