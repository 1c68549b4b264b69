/* event: see event.h. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

static size_t len0(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *put(char **p, const char *s, size_t n) {
  if (s == NULL)
    return NULL;
  char *at = *p;
  memcpy(at, s, n);
  *p += n;
  return at;
}

struct wschat_event *wschat__event_new(int kind, const char *room,
                                       const char *from, const char *to,
                                       const char *text, size_t len,
                                       const char *reason) {
  size_t lr = len0(room), lf = len0(from), lt = len0(to), lre = len0(reason);
  if (text == NULL)
    len = 0;
  struct wschat_event *ev =
      malloc(sizeof(*ev) + lr + lf + lt + lre + len + 1);
  if (ev == NULL)
    return NULL;
  memset(ev, 0, sizeof(*ev));
  ev->refs = 1;
  ev->kind = (uint8_t)kind;
  char *p = ev->mem;
  ev->room = put(&p, room, lr);
  ev->from = put(&p, from, lf);
  ev->to = put(&p, to, lt);
  ev->reason = put(&p, reason, lre);
  if (len)
    memcpy(p, text, len);
  p[len] = '\0';
  ev->text = p;
  ev->text_len = len;
  return ev;
}

void wschat__event_unref(struct wschat_event *ev) {
  if (ev == NULL || --ev->refs > 0)
    return;
  for (int z = 0; z < WSCHAT__ZKEYS; z++)
    for (int v = 0; v < WSCHAT__VIEWS; v++)
      for (int k = 0; k < WSCHAT__VARIANTS; k++)
        wschat__frame_unref(ev->frames[z][v][k]);
  free(ev);
}

/* ---- public accessors ---- */

enum wschat_event_kind wschat_event_kind(const struct wschat_event *ev) {
  return (enum wschat_event_kind)ev->kind;
}
uint64_t wschat_event_id(const struct wschat_event *ev) { return ev->id; }
int64_t wschat_event_time(const struct wschat_event *ev) { return ev->ts; }
const char *wschat_event_room(const struct wschat_event *ev) {
  return ev->room;
}
const char *wschat_event_from(const struct wschat_event *ev) {
  return ev->from;
}
uint64_t wschat_event_client(const struct wschat_event *ev) {
  return ev->client;
}
const char *wschat_event_to(const struct wschat_event *ev) { return ev->to; }
const char *wschat_event_text(const struct wschat_event *ev, size_t *len) {
  if (len)
    *len = ev->text_len;
  return ev->text;
}
const char *wschat_event_reason(const struct wschat_event *ev) {
  return ev->reason;
}
