/* roster: see roster.h. */
#include "roster.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "grow.h"
#include "presence.h"

struct users {
  struct wschat__roster_user *v;
  size_t n, cap;
  const char *room;
  int failed;
};

static void add_user(struct users *u, const char *name, const char *room) {
  void *g = wschat__grow(u->v, u->n, &u->cap, sizeof(*u->v), 16);
  if (g == NULL) {
    u->failed = 1;
    return;
  }
  u->v = g;
  u->v[u->n++] = (struct wschat__roster_user){name, room};
}

static void remote_user(void *arg, const char *name, const char *const *rooms,
                        size_t n) {
  struct users *u = arg;
  if (n == 0)
    return;
  if (u->room == NULL) {
    add_user(u, name, rooms[n - 1]);
    return;
  }
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(rooms[i], u->room) == 0) {
      add_user(u, name, rooms[n - 1]);
      return;
    }
}

static int by_name(const void *a, const void *b) {
  return strcasecmp(((const struct wschat__roster_user *)a)->name,
                    ((const struct wschat__roster_user *)b)->name);
}

struct wschat__roster_user *wschat__roster_users(struct wschat__chat *ch,
                                                 const char *room, size_t *n) {
  struct users u = {.room = room};
  struct wschat__member **src = ch->rooms.all;
  size_t cap = ch->rooms.nall;
  if (room != NULL) {
    struct wschat__room *r = wschat__room_find(&ch->rooms, room);
    src = r ? r->members : NULL;
    cap = r ? r->n : 0;
  }
  for (size_t i = 0; i < cap; i++)
    if (src[i]->nrooms > 0)
      add_user(&u, src[i]->name, wschat__member_room(src[i])->name);
  struct wschat__presence *p = ch->presence;
  if (p->ops->each_remote)
    p->ops->each_remote(p, remote_user, &u);
  if (u.failed || (u.v == NULL && (u.v = malloc(sizeof(*u.v))) == NULL)) {
    free(u.v);
    return NULL;
  }
  qsort(u.v, u.n, sizeof(*u.v), by_name);
  *n = u.n;
  return u.v;
}

struct rooms {
  struct wschat__roster_room *v;
  size_t n, cap;
  int failed;
};

static void count_room(struct rooms *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcasecmp(r->v[i].name, name) == 0) {
      r->v[i].n++;
      return;
    }
  void *g = wschat__grow(r->v, r->n, &r->cap, sizeof(*r->v), 16);
  if (g == NULL) {
    r->failed = 1;
    return;
  }
  r->v = g;
  r->v[r->n++] = (struct wschat__roster_room){name, 1};
}

static void remote_rooms(void *arg, const char *name, const char *const *rooms,
                         size_t n) {
  (void)name;
  for (size_t i = 0; i < n; i++)
    count_room(arg, rooms[i]);
}

static int by_room(const void *a, const void *b) {
  return strcasecmp(((const struct wschat__roster_room *)a)->name,
                    ((const struct wschat__roster_room *)b)->name);
}


struct wschat__roster_room *wschat__roster_rooms(struct wschat__chat *ch,
                                                 size_t *n) {
  struct rooms r = {0};
  size_t nl = 0;
  struct wschat__room **local = wschat__rooms_sorted(&ch->rooms, &nl);
  if (local == NULL && ch->rooms.map.count > 0)
    return NULL; /* NULL for rooms that exist: out of memory */
  for (size_t i = 0; local != NULL && i < nl && !r.failed; i++) {
    void *g = wschat__grow(r.v, r.n, &r.cap, sizeof(*r.v), 16);
    if (g == NULL) {
      r.failed = 1;
      break;
    }
    r.v = g;
    r.v[r.n++] = (struct wschat__roster_room){local[i]->name, local[i]->n};
  }
  free(local);
  struct wschat__presence *p = ch->presence;
  if (!r.failed && p->ops->each_remote)
    p->ops->each_remote(p, remote_rooms, &r);
  if (r.failed || (r.v == NULL && (r.v = malloc(sizeof(*r.v))) == NULL)) {
    free(r.v);
    return NULL;
  }
  qsort(r.v, r.n, sizeof(*r.v), by_room);
  *n = r.n;
  return r.v;
}
