/* room: see room.h. */
#include "room.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"

static void room_free(struct wschat__room *r) {
  free(r->members);
  free(r);
}

int wschat__rooms_init(struct wschat__rooms *rs) {
  memset(rs, 0, sizeof(*rs));
  wschat__map_init(&rs->map);
  struct wschat__room *lobby = wschat__room_open(rs, WSCHAT__LOBBY);
  if (lobby == NULL) {
    wschat__map_free(&rs->map); /* its buckets may be there already */
    return WSCHAT_ENOMEM;
  }
  lobby->keep = 1;
  return 0;
}

static void free_one(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  room_free(value);
}

void wschat__rooms_free(struct wschat__rooms *rs) {
  wschat__map_each(&rs->map, free_one, NULL);
  wschat__map_free(&rs->map);
  free(rs->all);
  rs->all = NULL;
  rs->nall = rs->cap_all = 0;
}

int wschat__rooms_attach(struct wschat__rooms *rs, struct wschat__member *m) {
  void *grown =
      wschat__grow(rs->all, rs->nall, &rs->cap_all, sizeof(*rs->all), 64);
  if (grown == NULL)
    return WSCHAT_ENOMEM;
  rs->all = grown;
  m->all_idx = (uint32_t)rs->nall;
  rs->all[rs->nall++] = m;
  m->attached = 1;
  return 0;
}

void wschat__rooms_detach(struct wschat__rooms *rs, struct wschat__member *m) {
  if (!m->attached)
    return;
  struct wschat__member *last = rs->all[--rs->nall];
  rs->all[m->all_idx] = last;
  last->all_idx = m->all_idx;
  m->attached = 0;
}

struct wschat__room *wschat__room_find(const struct wschat__rooms *rs,
                                       const char *name) {
  return wschat__map_get(&rs->map, name);
}

struct wschat__room *wschat__room_open(struct wschat__rooms *rs,
                                       const char *name) {
  struct wschat__room *r = wschat__room_find(rs, name);
  if (r != NULL)
    return r;
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  size_t len = strlen(name);
  memcpy(r->name, name, len < WSCHAT_ROOM_MAX ? len : WSCHAT_ROOM_MAX);
  if (wschat__map_put(&rs->map, r->name, r) != 0) {
    free(r);
    return NULL;
  }
  return r;
}

int wschat__room_reap(struct wschat__rooms *rs, struct wschat__room *r) {
  if (r->n > 0 || r->keep)
    return 0;
  wschat__map_del(&rs->map, r->name);
  room_free(r);
  return 1;
}

int wschat__room_add(struct wschat__room *r, struct wschat__member *m) {
  void *grown = wschat__grow(r->members, r->n, &r->cap, sizeof(*r->members), 4);
  if (grown == NULL)
    return WSCHAT_ENOMEM;
  r->members = grown;
  if (m->nrooms == m->cap_rooms) {
    if (m->cap_rooms == 0) { /* the first room lives in the member */
      m->rooms = &m->one;
      m->cap_rooms = 1;
    } else {
      uint16_t cap = (uint16_t)(m->cap_rooms * 2);
      struct wschat__membership *v = m->rooms == &m->one
                                         ? malloc(cap * sizeof(*v))
                                         : realloc(m->rooms, cap * sizeof(*v));
      if (v == NULL)
        return WSCHAT_ENOMEM;
      if (m->rooms == &m->one)
        v[0] = m->one;
      m->rooms = v;
      m->cap_rooms = cap;
    }
  }
  m->rooms[m->nrooms].room = r;
  m->rooms[m->nrooms].typing_ms = 0;
  m->rooms[m->nrooms++].idx = r->n;
  r->members[r->n++] = m;
  return 0;
}

int wschat__member_index(const struct wschat__member *m,
                         const struct wschat__room *room) {
  for (int i = 0; i < m->nrooms; i++)
    if (m->rooms[i].room == room)
      return i;
  return -1;
}

void wschat__room_remove(struct wschat__room *r, struct wschat__member *m) {
  int k = wschat__member_index(m, r);
  if (k < 0)
    return;
  size_t idx = m->rooms[k].idx;
  /* The room's last member takes the freed slot. */
  struct wschat__member *last = r->members[--r->n];
  r->members[idx] = last;
  if (last != m)
    last->rooms[wschat__member_index(last, r)].idx = idx;
  /* m's memberships keep their joining order. */
  memmove(m->rooms + k, m->rooms + k + 1,
          (size_t)(m->nrooms - k - 1) * sizeof(*m->rooms));
  m->nrooms--;
  if (r->n < r->cap / 4 && r->cap > 16) {
    void *v = realloc(r->members, (r->cap / 2) * sizeof(*r->members));
    if (v != NULL) {
      r->members = v;
      r->cap /= 2;
    }
  }
}

void wschat__member_free(struct wschat__member *m) {
  if (m->rooms != &m->one)
    free(m->rooms);
  m->rooms = NULL;
  m->nrooms = m->cap_rooms = 0;
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

struct wschat__room **wschat__rooms_sorted(const struct wschat__rooms *rs,
                                           size_t *n) {
  struct sorted s = {NULL, 0};
  *n = 0;
  if (rs->map.count == 0 ||
      (s.v = malloc(rs->map.count * sizeof(*s.v))) == NULL)
    return NULL;
  wschat__map_each(&rs->map, collect, &s);
  qsort(s.v, s.n, sizeof(*s.v), by_name);
  *n = s.n;
  return s.v;
}
