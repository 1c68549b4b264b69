/* view: see view.h. */
#include "view.h"

#include "event.h"
#include "frame.h"
#include "room.h"

struct wschat__frame *wschat__view_frame(struct wschat__member *m,
                                         struct wschat_event *ev, int variant,
                                         int *oom) {
  int view = m->view < WSCHAT__VIEWS ? m->view : WSCHAT__VIEW_TEXT;
  *oom = 0;
  if (view == WSCHAT__VIEW_TEXT && ev->kind == WSCHAT_EVENT_NICK) {
    if (ev->group == m->nick_group)
      return NULL; /* already shown through another room */
    m->nick_group = ev->group;
  }
  struct wschat__frame **slot = &ev->frames[view][variant];
  if (*slot == NULL) {
    *slot = wschat__text_render(ev, variant);
    if (*slot == NULL)
      *oom = 1;
  }
  return *slot;
}
