/*
 * bus_local: the in-process fan-out. A publish hands the room's member
 * array (or every member) to the delivery, which queues one reference to
 * the frame built for each member's view:
 * no copy and no allocation per delivery. Delivery never changes
 * memberships (a slow consumer is only marked, and closed at flush time),
 * so the walk is safe.
 */
#include <stdlib.h>

#include "bus.h"
#include "event.h"
#include "room.h"

struct local {
  struct wschat__bus base;
  const struct wschat__rooms *rooms;
  wschat__deliver_fn deliver;
  void *user;
};

static void local_publish(struct wschat__bus *bus, struct wschat_event *ev) {
  struct local *l = (struct local *)bus;
  struct wschat__member **m;
  size_t n;
  if (ev->room == NULL) {
    m = l->rooms->all;
    n = l->rooms->nall;
  } else {
    struct wschat__room *r = wschat__room_find(l->rooms, ev->room);
    if (r == NULL)
      return;
    m = r->members;
    n = r->n;
  }
  l->deliver(l->user, m, n, ev, WSCHAT__TO_RECIPIENT, ev->skip);
}

static void local_send(struct wschat__bus *bus, struct wschat_event *ev,
                       struct wschat__member *m, int variant) {
  struct local *l = (struct local *)bus;
  l->deliver(l->user, &m, 1, ev, variant, 0);
}

static void local_free(struct wschat__bus *bus) { free(bus); }

static const struct wschat__bus_ops local_ops = {local_publish, local_send,
                                                 local_free};

struct wschat__bus *wschat__bus_local_new(const struct wschat__rooms *rooms,
                                          wschat__deliver_fn deliver,
                                          void *user) {
  struct local *l = malloc(sizeof(*l));
  if (l == NULL)
    return NULL;
  l->base.ops = &local_ops;
  l->rooms = rooms;
  l->deliver = deliver;
  l->user = user;
  return &l->base;
}
