/*
 * bus: where room fan-out goes. A publish reaches every member of a room
 * (or every client) that the bus knows of. bus_local delivers to this
 * process's members; a Redis bus (cluster mode, later) will also relay to
 * other nodes and deliver what they publish.
 *
 * Owns: whatever its backend needs. A publish never takes the caller's
 * frame reference: each delivery adds its own.
 */
#ifndef WSCHAT_BUS_H
#define WSCHAT_BUS_H

struct wschat_server;
struct wschat_client;
struct wschat__frame;

struct wschat__bus;

struct wschat__bus_ops {
  /* Deliver f to every member of room (NULL: every chat client), except
   * skip (may be NULL). Returns 0 or a negative wschat error. */
  int (*publish)(struct wschat__bus *bus, const char *room,
                 struct wschat__frame *f, const struct wschat_client *skip);
  void (*free)(struct wschat__bus *bus);
};

struct wschat__bus {
  const struct wschat__bus_ops *ops;
  struct wschat_server *srv;
};

/* The in-process bus; returns NULL when out of memory. */
struct wschat__bus *wschat__bus_local_new(struct wschat_server *srv);

#endif
