/*
 * room: the room registry and memberships. Owns the rooms (name and member
 * array); never touches sockets and never formats a line. A client is in
 * at most one room; the client records its room and its index there, so
 * joining and leaving are O(1).
 */
#ifndef WSCHAT_ROOM_H
#define WSCHAT_ROOM_H

#include <stddef.h>

struct wschat_server;
struct wschat_client;

#define WSCHAT__LOBBY "lobby"

struct wschat__room {
  char name[65];                  /* as first spelled; looked up caselessly */
  struct wschat_client **members; /* owned array; members are not owned */
  size_t n, cap;
};

/* Returns the room called name (case-insensitive), or NULL. */
struct wschat__room *wschat__room_find(struct wschat_server *srv,
                                       const char *name);
/* Returns the room called name, created if new, with room for one more
 * member reserved (so wschat__room_add cannot fail). NULL when out of
 * memory. name must be valid. */
struct wschat__room *wschat__room_open(struct wschat_server *srv,
                                       const char *name);
/* Adds c to room (after wschat__room_open). */
void wschat__room_add(struct wschat__room *room, struct wschat_client *c);
/* Takes c out of its room; an empty room other than lobby is freed. */
void wschat__room_remove(struct wschat_server *srv, struct wschat_client *c);
/* Returns a malloc'd array of every room sorted by name (caller frees the
 * array, not the rooms) and stores the count in *n; NULL when empty or out
 * of memory. */
struct wschat__room **wschat__room_sorted(struct wschat_server *srv,
                                          size_t *n);
/* Frees every room (server teardown). */
void wschat__room_free_all(struct wschat_server *srv);

#endif
