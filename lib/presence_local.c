/*
 * presence_local: the in-process presence (see presence.h): a map from
 * name to member and a map of reserved names (keys and values are the
 * stored copies).
 */
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "presence.h"
#include "room.h"
#include "wschat.h"

struct local {
  struct wschat__presence base;
  struct wschat__map names;    /* name -> member (key: the member's name) */
  struct wschat__map reserved; /* name -> its own malloc'd copy (owned) */
};

static struct local *L(struct wschat__presence *p) {
  return (struct local *)p;
}

static int claim(struct wschat__presence *p, const char *name,
                 struct wschat__member *m, int force) {
  struct local *l = L(p);
  struct wschat__member *o = wschat__map_get(&l->names, name);
  if (o != NULL && o != m)
    return WSCHAT_ENAMETAKEN;
  if (o == m)
    return 0;
  if (!force && wschat__map_get(&l->reserved, name) != NULL)
    return WSCHAT_ERESERVED;
  /* The key must outlive the entry: the member's own name buffer is
   * rewritten on rename, so keep a copy as the key. */
  char *key = strdup(name);
  if (key == NULL || wschat__map_put(&l->names, key, m) != 0) {
    free(key);
    return WSCHAT_ENOMEM;
  }
  return 0;
}

static void release(struct wschat__presence *p, const char *name,
                     struct wschat__member *m) {
  struct local *l = L(p);
  if (wschat__map_get(&l->names, name) != m)
    return;
  const char *key = wschat__map_key(&l->names, name);
  wschat__map_del(&l->names, name);
  free((char *)key);
}

static struct wschat__member *find(struct wschat__presence *p,
                                   const char *name) {
  return wschat__map_get(&L(p)->names, name);
}

static int reserve(struct wschat__presence *p, const char *name) {
  struct local *l = L(p);
  if (wschat__map_get(&l->reserved, name) != NULL)
    return WSCHAT_EEXIST;
  char *copy = strdup(name);
  if (copy == NULL || wschat__map_put(&l->reserved, copy, copy) != 0) {
    free(copy);
    return WSCHAT_ENOMEM;
  }
  return 0;
}

static int unreserve(struct wschat__presence *p, const char *name) {
  char *copy = wschat__map_del(&L(p)->reserved, name);
  if (copy == NULL)
    return WSCHAT_ENOTFOUND;
  free(copy);
  return 0;
}

static int reserved(struct wschat__presence *p, const char *name) {
  return wschat__map_get(&L(p)->reserved, name) != NULL;
}

static void noop(struct wschat__presence *p, struct wschat__room *room,
                 struct wschat__member *m) {
  (void)p;
  (void)room;
  (void)m;
}

static void free_key(const char *key, void *value, void *arg) {
  (void)value;
  (void)arg;
  free((char *)key);
}

static void local_free(struct wschat__presence *p) {
  struct local *l = L(p);
  wschat__map_each(&l->names, free_key, NULL);
  wschat__map_each(&l->reserved, free_key, NULL);
  wschat__map_free(&l->names);
  wschat__map_free(&l->reserved);
  free(l);
}

static const struct wschat__presence_ops local_ops = {
    claim, release, find, reserve, unreserve, reserved, noop, noop, local_free,
};

struct wschat__presence *wschat__presence_local_new(void) {
  struct local *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return NULL;
  l->base.ops = &local_ops;
  wschat__map_init(&l->names);
  wschat__map_init(&l->reserved);
  return &l->base;
}
