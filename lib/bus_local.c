/*
 * bus_local: the in-process fan-out. A publish walks the room's member
 * array (or every connection) and appends one reference to the shared
 * frame to each member's output queue: no copy, no allocation per
 * delivery. Delivery never changes memberships (a slow consumer is only
 * marked here and closed at flush time), so the walk is safe.
 */
#include <stdlib.h>

#include "bus.h"
#include "conn.h"
#include "room.h"
#include "server.h"

static int local_publish(struct wschat__bus *bus, const char *room,
                         struct wschat__frame *f,
                         const struct wschat_client *skip) {
  struct wschat_server *srv = bus->srv;
  if (room == NULL) {
    for (size_t i = 0; i < srv->nconns; i++)
      if (srv->conns[i] != skip)
        wschat__conn_deliver(srv->conns[i], f);
    return 0;
  }
  struct wschat__room *r = wschat__room_find(srv, room);
  if (r == NULL)
    return WSCHAT_ENOTFOUND;
  struct wschat_client **m = r->members;
  for (size_t i = 0, n = r->n; i < n; i++)
    if (m[i] != skip)
      wschat__conn_deliver(m[i], f);
  return 0;
}

static void local_free(struct wschat__bus *bus) { free(bus); }

static const struct wschat__bus_ops local_ops = {local_publish, local_free};

struct wschat__bus *wschat__bus_local_new(struct wschat_server *srv) {
  struct wschat__bus *bus = malloc(sizeof(*bus));
  if (bus == NULL)
    return NULL;
  bus->ops = &local_ops;
  bus->srv = srv;
  return bus;
}
