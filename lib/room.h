/*
 * room: the room registry and memberships, as sets. A member may be in
 * several rooms; each room keeps an array of its members and each member
 * an array of its memberships (room and index there), so joining and
 * leaving are O(1) in the room's size. The registry also keeps every
 * member of the chat (for broadcasts to everyone).
 *
 * Owns: the rooms (name, member array) and both membership arrays. Never
 * touches sockets, never formats a line, never delivers: struct
 * wschat__member is the chat's view of a client, embedded in whatever owns
 * the client.
 */
#ifndef WSCHAT_ROOM_H
#define WSCHAT_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "map.h"
#include "wschat.h"

#define WSCHAT__LOBBY "lobby"

struct wschat__member;

struct wschat__room {
  char name[WSCHAT_ROOM_MAX + 1]; /* as first spelled; looked up caselessly */
  uint8_t keep;                   /* kept while empty (lobby, the app's) */
  struct wschat__member **members; /* owned array; members are not owned */
  size_t n, cap;
};

struct wschat__membership {
  struct wschat__room *room; /* not owned */
  size_t idx;                /* index in room->members */
  uint64_t typing_ms;        /* the last typing notice sent (loop ms) */
};

struct wschat__member {
  /* The first line holds what every delivery reads: id and view. */
  uint64_t id;                      /* the client id (never 0) */
  uint8_t view;                     /* WSCHAT__VIEW_* */
  uint8_t zkey;                     /* compression key (deflate.h); 0 */
  uint8_t attached;                 /* in the chat (in all[]) */
  uint8_t exiting;                  /* inside wschat__chat_exit */
  uint32_t all_idx;                 /* index in the registry's all[] */
  uint64_t nick_group;              /* the last rename shown (text view) */
  struct wschat__membership *rooms; /* in joining order: the last one is
                                       the current room; points at one
                                       until a second room (then owned) */
  struct wschat__membership one;    /* the first room, without a malloc */
  struct wschat_client *client;     /* the public handle, never read here */
  uint16_t nrooms, cap_rooms;
  char name[WSCHAT_NAME_MAX + 1];   /* "" until named */
};

struct wschat__rooms {
  struct wschat__map map;          /* name -> struct wschat__room (owned) */
  struct wschat__member **all;     /* owned array: every attached member */
  size_t nall, cap_all;
};

/* Makes the registry with lobby in it. Returns 0 or WSCHAT_ENOMEM. */
int wschat__rooms_init(struct wschat__rooms *rs);
/* Frees every room and the arrays (members' own arrays are theirs). */
void wschat__rooms_free(struct wschat__rooms *rs);

/* Adds m to all[] / takes it out. add returns 0 or WSCHAT_ENOMEM. */
int wschat__rooms_attach(struct wschat__rooms *rs, struct wschat__member *m);
void wschat__rooms_detach(struct wschat__rooms *rs, struct wschat__member *m);

/* Returns the room called name (case-insensitive), or NULL. */
struct wschat__room *wschat__room_find(const struct wschat__rooms *rs,
                                       const char *name);
/* Returns the room called name (a valid name), created if new; NULL when
 * out of memory. A new room that nobody joins must be given to
 * wschat__room_reap(). */
struct wschat__room *wschat__room_open(struct wschat__rooms *rs,
                                       const char *name);
/* Frees room if it is empty and not kept. Returns 1 if it was freed. */
int wschat__room_reap(struct wschat__rooms *rs, struct wschat__room *room);

/* Adds m to room (not a member yet) as its newest membership. Returns 0
 * or WSCHAT_ENOMEM (nothing changed). */
int wschat__room_add(struct wschat__room *room, struct wschat__member *m);
/* Index of room in m->rooms, or -1 if m is not a member. */
int wschat__member_index(const struct wschat__member *m,
                         const struct wschat__room *room);
/* Takes m out of room (a member); does not reap the room. */
void wschat__room_remove(struct wschat__room *room, struct wschat__member *m);
/* m's current room (the newest membership), or NULL. */
static inline struct wschat__room *
wschat__member_room(const struct wschat__member *m) {
  return m->nrooms ? m->rooms[m->nrooms - 1].room : NULL;
}
/* Frees m's membership array (m must be in no room). */
void wschat__member_free(struct wschat__member *m);

/* Returns a malloc'd array of every room sorted by name (the caller frees
 * the array, not the rooms) and stores the count in *n; NULL when empty
 * or out of memory. */
struct wschat__room **wschat__rooms_sorted(const struct wschat__rooms *rs,
                                           size_t *n);

#endif
