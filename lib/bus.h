/*
 * bus: where events go. The chat publishes events, never frames: a room
 * event reaches every member of its room (but the one it skips), a notice
 * without a room reaches every member of the chat, and a direct delivery
 * (a whisper, a joiner's own notice in a quiet room) reaches one member.
 * bus_local delivers to this process's members; a cluster backend (Redis)
 * can also carry events to other nodes and deliver theirs.
 *
 * Owns: whatever its backend needs. Never takes the caller's reference to
 * an event: each delivery that keeps it adds its own.
 */
#ifndef WSCHAT_BUS_H
#define WSCHAT_BUS_H

#include <stddef.h>
#include <stdint.h>

struct wschat_event;
struct wschat__member;
struct wschat__rooms;
struct wschat__bus;

/* Puts ev into the queue of each of the n members m[0..n) but the one
 * whose id is skip (0: none), as the variant (WSCHAT__TO_*) each member's
 * view shows. One call per fan-out, not per member: the loop over the
 * members is the hot path of a broadcast and stays in one function. */
typedef void (*wschat__deliver_fn)(void *user, struct wschat__member *const *m,
                                   size_t n, struct wschat_event *ev,
                                   int variant, uint64_t skip);

struct wschat__bus_ops {
  /* ev->room set: every member of that room but ev->skip; NULL: every
   * member. A room that does not exist gets nothing. */
  void (*publish)(struct wschat__bus *bus, struct wschat_event *ev);
  /* One member. */
  void (*send)(struct wschat__bus *bus, struct wschat_event *ev,
               struct wschat__member *m, int variant);
  void (*free)(struct wschat__bus *bus);
};

struct wschat__bus {
  const struct wschat__bus_ops *ops;
};

/* The in-process bus over a room registry (not owned; it must outlive the
 * bus); deliver does the last step. NULL when out of memory. */
struct wschat__bus *wschat__bus_local_new(const struct wschat__rooms *rooms,
                                          wschat__deliver_fn deliver,
                                          void *user);

#endif
