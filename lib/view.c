/* view: see view.h. */
#include "view.h"

#include "deflate.h"
#include "event.h"
#include "frame.h"
#include "json_view.h"
#include "room.h"

struct wschat__frame *wschat__view_frame(struct wschat__member *m,
                                         struct wschat_event *ev, int variant,
                                         struct wschat__deflate *z, int *oom) {
  unsigned v = m->view & WSCHAT__VIEW_MASK;
  int view = v < WSCHAT__VIEWS ? (int)v : WSCHAT__VIEW_TEXT;
  *oom = 0;
  if (view == WSCHAT__VIEW_TEXT && ev->kind == WSCHAT_EVENT_NICK) {
    if (ev->group == m->nick_group)
      return NULL; /* already shown through another room */
    m->nick_group = ev->group;
  }
  if (view == WSCHAT__VIEW_JSON)
    variant = WSCHAT__TO_RECIPIENT; /* one object for both ends */
  struct wschat__frame **slot = &ev->frames[0][view][variant];
  if (*slot == NULL) {
    *slot = view == WSCHAT__VIEW_JSON ? wschat__json_render(ev, variant)
                                      : wschat__text_render(ev, variant);
    if (*slot == NULL) {
      *oom = 1;
      return NULL;
    }
  }
  unsigned key = m->zkey;
  if (key == 0 || key >= WSCHAT__ZKEYS)
    return *slot;
  /* Compressed once per key, shared by every member with that key. */
  struct wschat__frame **zslot = &ev->frames[key][view][variant];
  if (*zslot == NULL)
    *zslot = wschat__deflate_frame(z, key, *slot);
  return *zslot;
}
