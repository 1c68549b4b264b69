/*
 * text_view: the plain-text protocol's rendering of events (README.md,
 * "The chat, as a user sees it"). One line per event:
 *
 *   MESSAGE  [ROOM] NAME: TEXT        ACTION   * NAME TEXT
 *   JOIN     * NAME joined #ROOM      LEAVE    * NAME left #ROOM[ (REASON)]
 *   NICK     * OLD is now known as NEW
 *   WHISPER  [whisper from NAME] TEXT   (to its sender: [whisper to NAME] TEXT)
 *   NOTICE   TEXT, exactly as the application gave it
 *
 * In every line but a notice, control characters are shown as spaces, so
 * nobody can forge a second line inside theirs, and so are the invisible
 * code points that can make a line read as something else
 * (wschat__utf8_invisible()). Owns nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "frame.h"
#include "utf8.h"
#include "view.h"

#define MAX_PARTS 8

struct parts {
  const char *p[MAX_PARTS];
  size_t l[MAX_PARTS];
  size_t n;
};

static void add(struct parts *ps, const char *s, size_t len) {
  ps->p[ps->n] = s;
  ps->l[ps->n++] = len;
}

static void adds(struct parts *ps, const char *s) {
  add(ps, s ? s : "", s ? strlen(s) : 0);
}

/* f's payload with each blanked code point as one space: a new frame (f is
 * released), or NULL when out of memory. Rare: only lines that hold one. */
static struct wschat__frame *compact(struct wschat__frame *f, const uint8_t *p,
                                     size_t len) {
  uint8_t *out = malloc(len ? len : 1);
  struct wschat__frame *g = NULL;
  if (out != NULL) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
      size_t k = p[i] >= 0xC2 ? wschat__utf8_invisible(p + i, len - i) : 0;
      out[n++] = k ? ' ' : p[i];
      i += k ? k : 1;
    }
    g = wschat__frame_new(WSCHAT__OP_TEXT, out, n);
    free(out);
  }
  wschat__frame_unref(f);
  return g;
}

struct wschat__frame *wschat__text_render(const struct wschat_event *ev,
                                          int variant) {
  struct parts ps = {.n = 0};
  switch (ev->kind) {
  case WSCHAT_EVENT_MESSAGE:
    adds(&ps, "[");
    adds(&ps, ev->room);
    adds(&ps, "] ");
    adds(&ps, ev->from);
    adds(&ps, ": ");
    break;
  case WSCHAT_EVENT_ACTION:
    adds(&ps, "* ");
    adds(&ps, ev->from);
    adds(&ps, " ");
    break;
  case WSCHAT_EVENT_JOIN:
  case WSCHAT_EVENT_LEAVE:
    adds(&ps, "* ");
    adds(&ps, ev->from);
    adds(&ps, ev->kind == WSCHAT_EVENT_JOIN ? " joined #" : " left #");
    adds(&ps, ev->room);
    if (ev->reason) {
      adds(&ps, " (");
      adds(&ps, ev->reason);
      adds(&ps, ")");
    }
    break;
  case WSCHAT_EVENT_NICK:
    adds(&ps, "* ");
    adds(&ps, ev->from);
    adds(&ps, " is now known as ");
    adds(&ps, ev->to);
    break;
  case WSCHAT_EVENT_WHISPER:
    adds(&ps, variant == WSCHAT__TO_SENDER ? "[whisper to " : "[whisper from ");
    adds(&ps, variant == WSCHAT__TO_SENDER ? ev->to : ev->from);
    adds(&ps, "] ");
    break;
  default: /* a notice: the application's text as it is */
    return wschat__frame_new(WSCHAT__OP_TEXT, ev->text, ev->text_len);
  }
  if (ev->kind != WSCHAT_EVENT_JOIN && ev->kind != WSCHAT_EVENT_LEAVE &&
      ev->kind != WSCHAT_EVENT_NICK)
    add(&ps, ev->text, ev->text_len);
  struct wschat__frame *f = wschat__frame_text_parts(ps.p, ps.l, ps.n);
  if (f != NULL) {
    size_t len;
    uint8_t *p = (uint8_t *)wschat__frame_payload(f, &len);
    int invisible = 0;
    for (size_t i = 0; i < len; i++) {
      if (p[i] < 0x20 || p[i] == 0x7F)
        p[i] = ' ';
      else if (p[i] >= 0xC2 && !invisible &&
               wschat__utf8_invisible(p + i, len - i))
        invisible = 1;
    }
    if (invisible)
      f = compact(f, p, len);
  }
  return f;
}
