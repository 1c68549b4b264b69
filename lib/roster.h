/*
 * roster: who is in the chat and which rooms exist, as the lists /users,
 * /users *, /rooms and the JSON users and rooms replies show: this
 * process's members and rooms, and (in cluster mode) the other nodes'
 * members from the presence's mirror (presence.h each_remote).
 *
 * Owns: nothing past a call: the arrays returned are the caller's (one
 * free), their strings point into members, rooms and the presence, valid
 * until the chat next changes.
 */
#ifndef WSCHAT_ROSTER_H
#define WSCHAT_ROSTER_H

#include <stddef.h>

struct wschat__chat;

struct wschat__roster_user {
  const char *name;
  const char *room; /* the current room */
};

struct wschat__roster_room {
  const char *name;
  size_t n; /* members, on every node */
};

/* The members in a room of room (NULL: everyone in some room), sorted by
 * name (case-insensitive); *n of them. NULL when out of memory. */
struct wschat__roster_user *wschat__roster_users(struct wschat__chat *ch,
                                                 const char *room, size_t *n);

/* Every room (this node's, and those other nodes' members are in), sorted
 * by name; *n of them. NULL when out of memory. */
struct wschat__roster_room *wschat__roster_rooms(struct wschat__chat *ch,
                                                 size_t *n);

#endif
