/*
 * presence_local: the in-process presence (see presence.h): a map from
 * name to member and a map of reserved names (keys and values are the
 * stored copies). A member's entry is keyed by the member's own name
 * buffer once it is named; a copy of the name is made only while a claim
 * is not yet settled (between claim and named: a rename claims the new
 * name while the buffer still holds the old one), so no name costs an
 * allocation for as long as its member lives.
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
  /* The key must outlive the entry: a copy until named() moves the entry
   * onto the member's own buffer. */
  char *key = strdup(name);
  if (key == NULL || wschat__map_put(&l->names, key, m) != 0) {
    free(key);
    return WSCHAT_ENOMEM;
  }
  return 0;
}

static void named(struct wschat__presence *p, struct wschat__member *m) {
  struct local *l = L(p);
  const char *key = wschat__map_key(&l->names, m->name);
  if (key == NULL || key == m->name ||
      wschat__map_get(&l->names, m->name) != m)
    return;
  wschat__map_rekey(&l->names, key, m->name);
  free((char *)key);
}

static void release(struct wschat__presence *p, const char *name,
                    struct wschat__member *m) {
  struct local *l = L(p);
  if (wschat__map_get(&l->names, name) != m)
    return;
  const char *key = wschat__map_key(&l->names, name);
  wschat__map_del(&l->names, name);
  if (key != m->name)
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

static void free_name_key(const char *key, void *value, void *arg) {
  (void)arg;
  if (key != ((struct wschat__member *)value)->name)
    free((char *)key);
}

static void local_free(struct wschat__presence *p) {
  struct local *l = L(p);
  wschat__map_each(&l->names, free_name_key, NULL);
  wschat__map_each(&l->reserved, free_key, NULL);
  wschat__map_free(&l->names);
  wschat__map_free(&l->reserved);
  free(l);
}

static const struct wschat__presence_ops local_ops = {
    claim,     named,    release, find, reserve,
    unreserve, reserved, noop,    noop, local_free, NULL,
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
