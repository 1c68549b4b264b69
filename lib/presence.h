/*
 * presence: who is in the chat by name. The chat core asks it to claim,
 * release and find names and to hold the application's reserved names,
 * and tells it of every membership change; it never asks a member's
 * socket anything. The in-process backend (presence_local.c) keeps a
 * registry in memory; a cluster backend (Redis) can take its place behind
 * the same operations.
 *
 * Owns: whatever its backend needs (the local one: two name maps). Never
 * owns members.
 */
#ifndef WSCHAT_PRESENCE_H
#define WSCHAT_PRESENCE_H

struct wschat__member;
struct wschat__room;
struct wschat__presence;

struct wschat__presence_ops {
  /* Gives name to m (a valid name). Returns 0, WSCHAT_ENAMETAKEN (another
   * member has it), WSCHAT_ERESERVED (reserved and !force) or
   * WSCHAT_ENOMEM. m->name is not changed here. */
  int (*claim)(struct wschat__presence *p, const char *name,
               struct wschat__member *m, int force);
  /* m->name now holds the name m claimed last (the chat core calls this
   * after writing it): the backend may keep m->name itself from now on
   * instead of a copy. */
  void (*named)(struct wschat__presence *p, struct wschat__member *m);
  /* Takes name from m (if m has it). */
  void (*release)(struct wschat__presence *p, const char *name,
                  struct wschat__member *m);
  /* The member called name (case-insensitive), or NULL. */
  struct wschat__member *(*find)(struct wschat__presence *p,
                                 const char *name);
  /* Reserved names: 0, WSCHAT_EEXIST / WSCHAT_ENOTFOUND, WSCHAT_ENOMEM. */
  int (*reserve)(struct wschat__presence *p, const char *name);
  int (*unreserve)(struct wschat__presence *p, const char *name);
  int (*reserved)(struct wschat__presence *p, const char *name);
  /* Membership changes, after they are made locally (a cluster backend
   * mirrors them; the local one has nothing to do). */
  void (*joined)(struct wschat__presence *p, struct wschat__room *room,
                 struct wschat__member *m);
  void (*left)(struct wschat__presence *p, struct wschat__room *room,
               struct wschat__member *m);
  void (*free)(struct wschat__presence *p);
  /* The members of other nodes (a cluster backend; NULL in the local
   * one): fn(arg, name, rooms, n) for each, rooms in joining order (the
   * last is the current room). For /users, /rooms and their JSON
   * replies; fn must not change the presence. */
  void (*each_remote)(struct wschat__presence *p,
                      void (*fn)(void *arg, const char *name,
                                 const char *const *rooms, size_t n),
                      void *arg);
};

struct wschat__presence {
  const struct wschat__presence_ops *ops;
};

/* The in-process presence; NULL when out of memory. */
struct wschat__presence *wschat__presence_local_new(void);

#endif
