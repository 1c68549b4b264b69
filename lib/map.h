/*
 * map: a hash table from case-insensitive ASCII names to pointers, used for
 * the name registry and the room registry.
 *
 * Owns: its bucket array and its entries. Does not own keys or values: a key
 * must stay valid (and unchanged) while its entry is in the map; the usual
 * key is a name stored inside the value itself.
 */
#ifndef WSCHAT_MAP_H
#define WSCHAT_MAP_H

#include <stddef.h>

struct wschat__map_entry;

struct wschat__map {
  struct wschat__map_entry **buckets;
  size_t nbuckets; /* 0 or a power of two */
  size_t count;
};

void wschat__map_init(struct wschat__map *m);
/* Frees the table (not the keys or values). */
void wschat__map_free(struct wschat__map *m);
/* Returns the value for key (case-insensitive), or NULL. */
void *wschat__map_get(const struct wschat__map *m, const char *key);
/* Returns the stored key equal to key (case-insensitive), or NULL. */
const char *wschat__map_key(const struct wschat__map *m, const char *key);
/* Makes newkey (equal to key, case-insensitively) the stored key of
 * key's entry. Returns 0, or -1 if key is absent. */
int wschat__map_rekey(struct wschat__map *m, const char *key,
                      const char *newkey);
/* Adds key -> value (the key must not be present). Returns 0 or -1 (ENOMEM). */
int wschat__map_put(struct wschat__map *m, const char *key, void *value);
/* Removes key; returns its value, or NULL if absent. */
void *wschat__map_del(struct wschat__map *m, const char *key);
/* Calls fn for every entry; fn must not change the map. */
void wschat__map_each(const struct wschat__map *m,
                      void (*fn)(const char *key, void *value, void *arg),
                      void *arg);

#endif
