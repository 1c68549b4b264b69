/*
 * chat: the chat core. Members enter with a name, join, leave and move
 * between rooms, rename, say lines, act, whisper; the application adds
 * notices and lines said as a name. Each of these becomes one event (id,
 * time, kind, room, sender, target, text, reason) that goes to the bus,
 * then to the watchers. Plain calls: no sockets, no libuv, no rendering.
 * Protocols (text_proto.c, later JSON) turn what clients send into these
 * calls and render the events; tests call them directly.
 *
 * Owns: the room registry, the presence backend, the bus, the watcher and
 * command tables, and the event ids. Never owns members: a member is
 * embedded in its client and must leave (wschat__chat_exit) before it is
 * freed.
 */
#ifndef WSCHAT_CHAT_H
#define WSCHAT_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "room.h"
#include "wschat.h"

struct wschat__presence;
struct wschat__history;

/* Called when m has just become a member of room, before anyone is told:
 * what m must get before the room's live traffic (a replay of its
 * history) is set up here. */
typedef void (*wschat__enter_fn)(void *user, struct wschat__member *m,
                                 const char *room);

struct wschat__watcher {
  wschat_event_cb cb; /* NULL: removed, compacted when safe */
  void *user;
  uint64_t handle;
};

struct wschat__command {
  char name[WSCHAT_NAME_MAX + 1]; /* lower case, without the '/' */
  char *help;                     /* owned, or NULL */
  wschat_command_cb cb;
  void *user;
};

struct wschat__chat {
  struct wschat__rooms rooms;
  struct wschat__presence *presence; /* owned */
  struct wschat__bus *bus;           /* owned */
  struct wschat_server *srv;         /* handed to watchers; may be NULL */
  /* The store of room events, or NULL: the server's (not owned). With
   * one, event ids come from it and every stored kind is appended before
   * it is published (so a sync_full store makes it durable first). */
  struct wschat__history *history;
  wschat__enter_fn on_enter;
  void *on_enter_user;
  /* 1 (a cluster bus): events are not stamped or stored here; the bus
   * gives each its id (and the store has it) later, then calls
   * wschat__chat_done(), which lets the watchers see it. */
  int deferred;
  /* Set with deferred: for a joiner's replay, the id of the last event of
   * room delivered here (at_sync: when the room's order was first known);
   * returns 1, or 0 if not known yet. */
  int (*live_upto)(void *user, const char *room, int at_sync, uint64_t *upto);
  void *live_user;
  /* Set in cluster mode (NULL: none): a rename first takes the name in
   * the cluster's registry; done(m, name, rc, arg) runs later on the loop
   * with rc 0 (the name is this node's now: rename) or
   * WSCHAT_ENAMETAKEN, and never if m is gone meanwhile (arg is then
   * given to drop(arg)). Returns 0, or an error (done never runs). */
  int (*claim_async)(void *user, struct wschat__member *m, const char *name,
                     void (*done)(struct wschat__member *m, const char *name,
                                  int rc, void *arg),
                     void (*drop)(void *arg), void *arg);
  void *claim_user;
  /* Set in cluster mode (NULL: none): before a client named at connect
   * enters, the registry is asked about name (the mirror then knows the
   * answer) and done(c) runs later on the loop if the client with that id
   * is still there. Returns 0, or nonzero (Redis is away: done never runs;
   * go on at once). */
  int (*name_check)(void *user, const char *name, uint64_t client,
                    void (*done)(struct wschat_client *c));
  /* Set in cluster mode (NULL: none): during a shutdown (silent_leaves)
   * the other nodes are still told of each leave; ev (the chat keeps its
   * reference) goes to them only, not to this node's members. */
  void (*remote_only)(void *user, struct wschat_event *ev);
  void *remote_user;
  /* Set in cluster mode (NULL: none): a JSON typing notice of from in
   * room, delivered here already, goes to the other nodes too (best
   * effort: dropped while Redis is away, never queued). */
  void (*typing_out)(void *user, const char *room, const char *from);
  void *typing_user;
  uint64_t next_event;  /* the id of the last event stamped (0: none) */
  uint64_t first_event; /* the id of the first one stamped (0: none) */
  uint64_t next_guest, next_group, next_watch;
  size_t max_rooms;  /* memberships per member */
  size_t quiet_room; /* rooms above this size are quiet; 0: never */
  int silent_leaves; /* shutting down: nobody is told of leaves */
  wschat_join_cb on_join;
  void *on_join_user;
  wschat_leave_cb on_leave;
  void *on_leave_user;
  struct wschat__watcher *watchers; /* owned array */
  size_t nwatchers, cap_watchers;
  int watching; /* inside a watcher: new events wait in pending */
  struct wschat_event **pending; /* owned array of owned references */
  size_t npending, cap_pending;
  struct wschat__command *commands; /* owned array */
  size_t ncommands, cap_commands;
};

/* Sets up a chat whose events are delivered through deliver(user, ...).
 * Returns 0 or WSCHAT_ENOMEM (nothing to free then). */
int wschat__chat_init(struct wschat__chat *ch, struct wschat_server *srv,
                      wschat__deliver_fn deliver, void *user);
/* A deferred event has its id (the bus calls it once per event, after
 * its delivery here): the watchers see it. */
void wschat__chat_done(struct wschat__chat *ch, struct wschat_event *ev);
/* Frees what the chat owns; every member must have left. */
void wschat__chat_free(struct wschat__chat *ch);

/*
 * m (id set, not in the chat) enters the chat with name (force: even a
 * reserved one), or with a new guest-N name if name is NULL. It is in no
 * room yet. Returns 0, WSCHAT_ENAME, WSCHAT_ENAMETAKEN, WSCHAT_ERESERVED or
 * WSCHAT_ENOMEM (m is then not in the chat).
 */
int wschat__chat_enter(struct wschat__chat *ch, struct wschat__member *m,
                       const char *name, int force);
/* m leaves every room (each is told, with reason, unless the chat is
 * shutting down; on_leave runs) and gives its name back. Safe to call for
 * a member that never entered, and more than once. m->exiting is set while
 * it runs. */
void wschat__chat_exit(struct wschat__chat *ch, struct wschat__member *m,
                       const char *reason);

/* Flags of wschat__chat_join() and wschat__chat_leave(): the member gets
 * its own join (leave) event too. */
enum { WSCHAT__JOIN_TELL_SELF = 1, WSCHAT__LEAVE_TELL_SELF = 1 };

/* m enters room (a valid name; created if new): see wschat_client_join().
 * Returns 0, WSCHAT_EROOM, WSCHAT_ESAMEROOM, WSCHAT_ETOOMANY or
 * WSCHAT_ENOMEM. */
int wschat__chat_join(struct wschat__chat *ch, struct wschat__member *m,
                      const char *room, int flags);
/* See wschat_client_leave(). With WSCHAT__LEAVE_TELL_SELF m gets its
 * leave event too, and its join of lobby if it lands there. */
int wschat__chat_leave(struct wschat__chat *ch, struct wschat__member *m,
                       const char *room, const char *reason, int flags);
/* See wschat_client_move(). */
int wschat__chat_move(struct wschat__chat *ch, struct wschat__member *m,
                      const char *room);
/* See wschat_client_rename(). */
int wschat__chat_rename(struct wschat__chat *ch, struct wschat__member *m,
                        const char *name);

/* A line (WSCHAT_EVENT_MESSAGE) or an action (WSCHAT_EVENT_ACTION) in m's
 * current room. Returns 0, WSCHAT_ENOTMEMBER (in no room) or
 * WSCHAT_ENOMEM. */
int wschat__chat_say(struct wschat__chat *ch, struct wschat__member *m,
                     int kind, const char *text, size_t len);
/* The same in room (NULL: the current room), which m must be in. Returns
 * 0, WSCHAT_EROOM, WSCHAT_ENOTMEMBER or WSCHAT_ENOMEM. */
int wschat__chat_say_in(struct wschat__chat *ch, struct wschat__member *m,
                        const char *room, int kind, const char *text,
                        size_t len);
/* A whisper to the member called to. Returns 0, WSCHAT_ENOTFOUND or
 * WSCHAT_ENOMEM. */
int wschat__chat_whisper(struct wschat__chat *ch, struct wschat__member *m,
                         const char *to, const char *text, size_t len);
/* A notice to room (NULL: everyone) except the client skip (0: none).
 * Returns 0, WSCHAT_ENOTFOUND or WSCHAT_ENOMEM. */
int wschat__chat_notice(struct wschat__chat *ch, const char *room,
                        const char *text, size_t len, uint64_t skip);
/* A line in room said as name by the application. Returns 0,
 * WSCHAT_ENOTFOUND or WSCHAT_ENOMEM. */
int wschat__chat_say_as(struct wschat__chat *ch, const char *room,
                        const char *name, const char *text, size_t len);

/* Watchers (see wschat_server_watch()). */
int wschat__chat_watch(struct wschat__chat *ch, wschat_event_cb cb,
                       void *user, uint64_t *handle);
int wschat__chat_unwatch(struct wschat__chat *ch, uint64_t handle);

/* Registered commands (see wschat_server_add_command()). find takes the
 * word without '/', len bytes, any case. */
int wschat__chat_add_command(struct wschat__chat *ch, const char *name,
                             const char *help, wschat_command_cb cb,
                             void *user);
int wschat__chat_remove_command(struct wschat__chat *ch, const char *name);
const struct wschat__command *
wschat__chat_find_command(const struct wschat__chat *ch, const char *word,
                          size_t len);

#endif
