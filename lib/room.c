/* room: see room.h. */
#include "room.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "server.h"

struct wschat__room *wschat__room_find(struct wschat_server *srv,
                                       const char *name) {
  return wschat__map_get(&srv->rooms, name);
}

static void room_free(struct wschat__room *r);

struct wschat__room *wschat__room_open(struct wschat_server *srv,
                                       const char *name) {
  struct wschat__room *r = wschat__room_find(srv, name);
  int created = r == NULL;
  if (created) {
    r = calloc(1, sizeof(*r));
    if (r == NULL)
      return NULL;
    size_t len = strlen(name);
    memcpy(r->name, name, len < 64 ? len : 64);
    if (wschat__map_put(&srv->rooms, r->name, r) != 0) {
      free(r);
      return NULL;
    }
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4;
    void *m = realloc(r->members, cap * sizeof(*r->members));
    if (m == NULL) {
      if (created) { /* leave the registry as it was */
        wschat__map_del(&srv->rooms, r->name);
        room_free(r);
      }
      return NULL;
    }
    r->members = m;
    r->cap = cap;
  }
  return r;
}

void wschat__room_add(struct wschat__room *room, struct wschat_client *c) {
  c->room = room;
  c->room_idx = room->n;
  room->members[room->n++] = c;
}

static void room_free(struct wschat__room *r) {
  free(r->members);
  free(r);
}

void wschat__room_remove(struct wschat_server *srv, struct wschat_client *c) {
  struct wschat__room *r = c->room;
  if (r == NULL)
    return;
  struct wschat_client *last = r->members[--r->n];
  r->members[c->room_idx] = last;
  last->room_idx = c->room_idx;
  c->room = NULL;
  if (r->n == 0 && strcasecmp(r->name, WSCHAT__LOBBY) != 0) {
    wschat__map_del(&srv->rooms, r->name);
    room_free(r);
  } else if (r->n < r->cap / 4 && r->cap > 16) {
    void *m = realloc(r->members, (r->cap / 2) * sizeof(*r->members));
    if (m != NULL) {
      r->members = m;
      r->cap /= 2;
    }
  }
}

struct sorted {
  struct wschat__room **v;
  size_t n;
};

static void collect(const char *key, void *value, void *arg) {
  (void)key;
  struct sorted *s = arg;
  s->v[s->n++] = value;
}

static int by_name(const void *a, const void *b) {
  return strcasecmp((*(struct wschat__room *const *)a)->name,
                    (*(struct wschat__room *const *)b)->name);
}

struct wschat__room **wschat__room_sorted(struct wschat_server *srv,
                                          size_t *n) {
  struct sorted s = {NULL, 0};
  *n = 0;
  if (srv->rooms.count == 0 ||
      (s.v = malloc(srv->rooms.count * sizeof(*s.v))) == NULL)
    return NULL;
  wschat__map_each(&srv->rooms, collect, &s);
  qsort(s.v, s.n, sizeof(*s.v), by_name);
  *n = s.n;
  return s.v;
}

static void free_one(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  room_free(value);
}

void wschat__room_free_all(struct wschat_server *srv) {
  wschat__map_each(&srv->rooms, free_one, NULL);
  wschat__map_free(&srv->rooms);
}
