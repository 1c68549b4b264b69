/* map: see map.h. Chained buckets, FNV-1a over lower-cased bytes. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

struct wschat__map_entry {
  struct wschat__map_entry *next;
  const char *key;
  void *value;
  uint32_t hash;
};

static uint32_t hash_ci(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    h = (h ^ c) * 16777619u;
  }
  return h;
}

void wschat__map_init(struct wschat__map *m) {
  m->buckets = NULL;
  m->nbuckets = 0;
  m->count = 0;
}

void wschat__map_free(struct wschat__map *m) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    struct wschat__map_entry *e = m->buckets[i];
    while (e) {
      struct wschat__map_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  wschat__map_init(m);
}

static struct wschat__map_entry *find(const struct wschat__map *m,
                                      const char *key) {
  if (m->nbuckets == 0)
    return NULL;
  uint32_t h = hash_ci(key);
  for (struct wschat__map_entry *e = m->buckets[h & (m->nbuckets - 1)]; e;
       e = e->next)
    if (e->hash == h && strcasecmp(e->key, key) == 0)
      return e;
  return NULL;
}

void *wschat__map_get(const struct wschat__map *m, const char *key) {
  struct wschat__map_entry *e = find(m, key);
  return e ? e->value : NULL;
}

const char *wschat__map_key(const struct wschat__map *m, const char *key) {
  struct wschat__map_entry *e = find(m, key);
  return e ? e->key : NULL;
}

int wschat__map_rekey(struct wschat__map *m, const char *key,
                      const char *newkey) {
  struct wschat__map_entry *e = find(m, key);
  if (e == NULL)
    return -1;
  e->key = newkey;
  return 0;
}

static int grow(struct wschat__map *m) {
  size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
  struct wschat__map_entry **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return -1;
  for (size_t i = 0; i < m->nbuckets; i++) {
    struct wschat__map_entry *e = m->buckets[i];
    while (e) {
      struct wschat__map_entry *next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
  return 0;
}

int wschat__map_put(struct wschat__map *m, const char *key, void *value) {
  if (m->count >= m->nbuckets && grow(m) != 0 && m->nbuckets == 0)
    return -1;
  struct wschat__map_entry *e = malloc(sizeof(*e));
  if (e == NULL)
    return -1;
  e->key = key;
  e->value = value;
  e->hash = hash_ci(key);
  struct wschat__map_entry **slot = &m->buckets[e->hash & (m->nbuckets - 1)];
  e->next = *slot;
  *slot = e;
  m->count++;
  return 0;
}

void *wschat__map_del(struct wschat__map *m, const char *key) {
  if (m->nbuckets == 0)
    return NULL;
  uint32_t h = hash_ci(key);
  struct wschat__map_entry **p = &m->buckets[h & (m->nbuckets - 1)];
  for (; *p; p = &(*p)->next) {
    struct wschat__map_entry *e = *p;
    if (e->hash == h && strcasecmp(e->key, key) == 0) {
      void *v = e->value;
      *p = e->next;
      free(e);
      m->count--;
      return v;
    }
  }
  return NULL;
}

void wschat__map_each(const struct wschat__map *m,
                      void (*fn)(const char *key, void *value, void *arg),
                      void *arg) {
  for (size_t i = 0; i < m->nbuckets; i++)
    for (struct wschat__map_entry *e = m->buckets[i]; e; e = e->next)
      fn(e->key, e->value, arg);
}
