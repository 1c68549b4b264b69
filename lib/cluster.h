/*
 * cluster: several chat-cli nodes as one chat, through Redis (--redis).
 * Split in four modules that share this header:
 *
 *   cluster.c          the two connections (commands, pipelined; and
 *                      SUBSCRIBE), reconnects with backoff, the scripts,
 *                      the 100 ms tick (heartbeat, reaping dead nodes,
 *                      held events), the counters for /metrics
 *   cluster_bus.c      the bus (bus.h): every event takes its id from
 *                      Redis (one script: INCR id, HINCRBY room seq, XADD,
 *                      PUBLISH); the ring of operations waiting for replies
 *   cluster_gate.c     per-room channels while a room has local members,
 *                      one order per room (the seq gate), gaps
 *   cluster_presence.c the presence (presence.h): a name registry in a
 *                      Redis hash, a local mirror of the other nodes'
 *                      members kept through a presence channel, reaping
 *   cluster_history.c  the history store (history.h) over Redis streams
 *
 * Threads: the loop only (hiredis's libuv adapter runs on it).
 *
 * Owns: both hiredis contexts (hiredis frees them after a disconnect), the
 * queue of operations waiting for Redis (one event reference each), the
 * per-room gates (their held events), the mirror, the tick timer. Never
 * owns members or rooms (the chat's); never blocks the loop; never queues
 * without bound (WSCHAT__CLUSTER_MAX_OPS, then events stay on this node).
 */
#ifndef WSCHAT_CLUSTER_H
#define WSCHAT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bus.h"
#include "cluster_codec.h"
#include "history.h"
#include "map.h"
#include "presence.h"

struct redisAsyncContext;
struct redisReply;
struct wschat__chat;
struct wschat__log;
struct wschat_server;
struct wschat_client;

enum {
  WSCHAT__CLUSTER_TICK_MS = 100,
  WSCHAT__CLUSTER_HEARTBEAT_MS = 1000, /* a node's key is refreshed */
  WSCHAT__CLUSTER_NODE_TTL_MS = 3000,  /* and expires without it */
  WSCHAT__CLUSTER_REAP_MS = 1000,      /* live nodes look for dead ones */
  WSCHAT__CLUSTER_GAP_MS = 300,   /* an event waits this long for one before */
  WSCHAT__CLUSTER_MAX_OPS = 65536, /* operations waiting for Redis */
  WSCHAT__CLUSTER_BACKOFF_MIN_MS = 100,
  WSCHAT__CLUSTER_BACKOFF_MAX_MS = 500,
  WSCHAT__CLUSTER_CONNECT_TIMEOUT_MS = 2000,
  WSCHAT__CLUSTER_LANES = 1024, /* local-only ids: one class per node */
  WSCHAT__CLUSTER_DYING = 8,     /* see dying[] */
};

/* Scripts, loaded at each connect (SCRIPT LOAD) and run by EVALSHA. */
enum {
  WSCHAT__SCRIPT_PUB = 0, /* a room event: id, seq, stream, channel */
  WSCHAT__SCRIPT_ID,      /* a direct event: an id (and a node channel) */
  WSCHAT__SCRIPT_CLAIM,   /* a name and its rooms, if no other node has it */
  WSCHAT__SCRIPT_RELEASE, /* a name given back */
  WSCHAT__SCRIPT_REAP,    /* dead nodes' names, once */
  WSCHAT__SCRIPT_HELLO,   /* at connect: epoch, id floor, gaps */
  WSCHAT__SCRIPT_READ,    /* a history read */
  WSCHAT__SCRIPTS
};

/* One operation waiting for Redis's reply, in the order sent. */
struct wschat__cluster_op {
  struct wschat_event *ev; /* one reference */
  uint64_t member;         /* local client id to deliver to (0: none) */
  uint64_t id, seq;        /* from the reply */
  uintptr_t no;            /* its number: the reply's privdata */
  uint8_t kind;            /* enum below */
  uint8_t variant;
  uint8_t wait;    /* a reply belongs to it */
  uint8_t replied; /* it came (or the connection failed: failed) */
  uint8_t failed;
  uint8_t first; /* the event's first operation: it gives the id */
  uint8_t remote_only; /* not for this node's members (a shutdown) */
};
enum { WSCHAT__OP_PUBLISH = 1, WSCHAT__OP_SEND, WSCHAT__OP_SEND_REMOTE };

/* A room this node has members in: its channel and its order. */
struct wschat__gate {
  char key[WSCHAT_ROOM_MAX + 1]; /* the room's name in lower case */
  uint64_t last;                 /* the room seq delivered last */
  uint64_t lastid;               /* and its event id */
  int synced;                    /* last is known (the HMGET came) */
  int filling;                   /* an XRANGE for a gap is on its way */
  uint64_t sync_lastid;          /* lastid when it was synced */
  uint64_t gen;                  /* the connection it was synced on */
  uint64_t wait_since;           /* loop ms an event began to wait; 0 */
  uint64_t empty_since;          /* loop ms the room has been empty; 0 */
  struct wschat__held_ev {
    uint64_t seq;
    struct wschat_event *ev; /* one reference */
  } *held;                   /* owned, sorted by seq */
  size_t nheld, capheld;
};

/* Another node's member, as the mirror knows it. */
struct wschat__remote {
  struct wschat__member *ghost; /* owned: what presence find() returns
                                   (client NULL, id 0, in no room) */
  char *val;                    /* owned: the registry value, split */
  const char *node;             /* in val */
  const char **rooms;           /* owned array into val; the last is
                                   the current room */
  size_t nrooms;
};

/* Counters for /metrics (loop thread). */
struct wschat__cluster_stats {
  uint64_t reconnects, published, received, dup_dropped, gaps, local_only,
      dropped, name_conflicts, reaped, outage_ms_total;
};

struct wschat__cluster {
  struct wschat__bus bus;           /* ops: cluster_bus.c */
  struct wschat__presence presence; /* ops: cluster_presence.c */
  struct wschat__history history;   /* ops: cluster_history.c */
  struct wschat_server *srv;        /* not owned */
  struct wschat__chat *chat;        /* not owned */
  uv_loop_t *loop;
  wschat__deliver_fn deliver;
  void *deliver_user;
  /* Another node's typing notice of from in room, for this node's JSON
   * members of room (server_cluster.c sets it; NULL: dropped). */
  void (*typing_in)(void *user, const char *room, const char *from);
  void *typing_user;
  struct wschat__redis_url url;
  char node[128];
  char node_chan[160]; /* wschat:n:<node> */
  size_t max_per_room; /* stream MAXLEN ~ */
  int history_on;      /* the history store is this cluster's */

  struct redisAsyncContext *cmd, *sub; /* NULL: not connected */
  /* Connections told to disconnect that hiredis has not freed yet (it
   * waits for their replies): freed by wschat__cluster_free() if still
   * here, so that no poll handle outlives the node. */
  struct redisAsyncContext *dying[WSCHAT__CLUSTER_DYING];
  int cmd_up, sub_up;  /* connected and set up */
  int up;              /* both: events go through Redis */
  uint64_t gen;        /* connections made so far */
  uint64_t next_try;   /* loop ms of the next connect attempt */
  unsigned backoff_ms;
  uint64_t connect_at; /* loop ms the attempt began (timeout) */
  uint64_t down_since; /* loop ms Redis went away; 0: up */
  uint64_t last_beat;
  int closing;
  char sha[WSCHAT__SCRIPTS][41];
  uv_timer_t tick;
  int tick_on; /* initialised and not closed */
  void (*on_closed)(void *user); /* the tick is closed (shutdown) */
  void *closed_user;

  uint64_t epoch;      /* wschat:epoch (0: not known yet) */
  uint64_t max_id;     /* the largest id seen or made here */
  uint64_t local_from; /* an outage's first local-only id (0: none) */
  uint64_t lane;       /* this node's class of local-only ids */
  uint64_t id_floor;   /* the last local-only id: nothing at or below it
                          is delivered here any more (ids never go back) */

  /* the bus */
  struct wschat__cluster_op *ops; /* a ring of capops (owned) */
  size_t head, nops, capops;
  uintptr_t next_no; /* the number of the next operation sent */
  struct wschat__map gates; /* lower room -> owned struct wschat__gate */

  /* the presence */
  struct wschat__presence *local; /* owned: this node's names */
  struct wschat__map remote;      /* lower name -> owned wschat__remote */
  int snapshot_pending;           /* deltas wait while HGETALL runs */
  struct wschat__delta {
    char *p; /* owned */
    size_t len;
  } *deltas; /* owned, while snapshot_pending */
  size_t ndeltas, capdeltas;
  uint64_t last_reap;

  /* Clients named at connect before the first connection to Redis came
   * up (owned array): they wait for it, at most
   * WSCHAT__CLUSTER_CONNECT_TIMEOUT_MS after start. */
  struct wschat__name_wait {
    uint64_t client;
    char name[WSCHAT_NAME_MAX + 1];
    void (*done)(struct wschat_client *c);
  } *waits;
  size_t nwaits, capwaits;
  uint64_t started_at; /* loop ms of start */

  struct wschat__cluster_stats st;
};

/* cluster.c */
struct wschat__cluster *wschat__cluster_new(struct wschat_server *srv,
                                            const char *url, const char *node,
                                            size_t max_per_room);
int wschat__cluster_start(struct wschat__cluster *cl);
void wschat__cluster_close(struct wschat__cluster *cl);
void wschat__cluster_free(struct wschat__cluster *cl);
uint64_t wschat__cluster_now(const struct wschat__cluster *cl);

/* A reply's number (an integer, or a string of digits); 0 for anything
 * else or no reply. */
uint64_t wschat__cluster_reply_u64(const struct redisReply *r);
void wschat__cluster_log(struct wschat__cluster *cl, int level,
                         const char *what, const char *detail);
/* Sends a command on the command connection; 0, or -1 (not up). */
int wschat__cluster_cmd(struct wschat__cluster *cl,
                        void (*fn)(struct redisAsyncContext *, void *, void *),
                        void *privdata, int argc, const char **argv,
                        const size_t *argvlen);
/* Writes what waits on the command connection now, not when the loop next
 * polls it (a name's claim must leave before the member's welcome). */
void wschat__cluster_flush(struct wschat__cluster *cl);
int wschat__cluster_sub(struct wschat__cluster *cl,
                        void (*fn)(struct redisAsyncContext *, void *, void *),
                        int argc, const char **argv, const size_t *argvlen);
/* The connection went down (or failed): local-only from now. */
void wschat__cluster_lost(struct wschat__cluster *cl);
/* Appends the cluster's lines to /metrics (see server_metrics.c). */
typedef void (*wschat__cluster_line_fn)(void *o, const char *name,
                                        const char *type, const char *help,
                                        uint64_t v);
void wschat__cluster_metrics(struct wschat__cluster *cl,
                             wschat__cluster_line_fn line, void *o);

/* cluster_bus.c */
void wschat__cluster_bus_init(struct wschat__cluster *cl);
void wschat__cluster_bus_up(struct wschat__cluster *cl);   /* resubscribe */
void wschat__cluster_bus_down(struct wschat__cluster *cl); /* fail ops */
void wschat__cluster_bus_tick(struct wschat__cluster *cl, uint64_t now);
void wschat__cluster_bus_free(struct wschat__cluster *cl);
/* A room event made here, without a local member: to every node. */
void wschat__cluster_publish(struct wschat__cluster *cl,
                             struct wschat_event *ev);
/* cluster_gate.c (the order per room): an event with its room seq, for
 * the room's members here; the gates again after a reconnect; the 100 ms
 * tick (gaps, unsubscribes); free. */
void wschat__cluster_gate_offer(struct wschat__cluster *cl, uint64_t seq,
                                struct wschat_event *ev);
void wschat__cluster_gates_up(struct wschat__cluster *cl);
/* The room's channel is subscribed (Redis confirmed it): catch up. */
void wschat__cluster_gate_subscribed(struct wschat__cluster *cl,
                                     const char *room);
void wschat__cluster_gates_tick(struct wschat__cluster *cl, uint64_t now);
void wschat__cluster_gates_free(struct wschat__cluster *cl);
/* cluster_bus.c: ev to this node's members of its room (everyone: no
 * room); a message on any of the node's channels (hiredis's callback). */
void wschat__cluster_deliver_room(struct wschat__cluster *cl,
                                  struct wschat_event *ev);
void wschat__cluster_on_msg(struct redisAsyncContext *ac, void *r,
                            void *priv);
/* A room has a local member (subscribe if new) / has none (unsubscribe
 * a second later if still none). */
void wschat__cluster_room_used(struct wschat__cluster *cl, const char *room);
void wschat__cluster_room_unused(struct wschat__cluster *cl,
                                 const char *room);
/* For a joiner's replay: the id of the room's last event delivered here
 * (at_sync: when the room's order was first known). Returns 1, or 0 if
 * not known yet. */
int wschat__cluster_live_upto(struct wschat__cluster *cl, const char *room,
                              int at_sync, uint64_t *upto);
/* Events waiting in every gate now. */
uint64_t wschat__cluster_held(struct wschat__cluster *cl);
/* A room event for the other nodes only (this node is shutting down). */
void wschat__cluster_publish_remote(struct wschat__cluster *cl,
                                    struct wschat_event *ev);
/* A typing notice of from in room for the other nodes: one PUBLISH on
 * the room's channel (no id, no seq, no stream, no gate: ephemeral and
 * unordered). Dropped while Redis is away; never queued. */
void wschat__cluster_typing(struct wschat__cluster *cl, const char *room,
                            const char *from);
/* The room's gate, by the room's name (any case), or NULL. */
struct wschat__gate *wschat__cluster_gate(struct wschat__cluster *cl,
                                          const char *room);

/* cluster_presence.c */
int wschat__cluster_presence_init(struct wschat__cluster *cl);
void wschat__cluster_presence_up(struct wschat__cluster *cl);
void wschat__cluster_presence_tick(struct wschat__cluster *cl, uint64_t now);
/* The first connection is up, or never came in time (up = 0): clients
 * waiting to be named go on. */
void wschat__cluster_release_waits(struct wschat__cluster *cl);
void wschat__cluster_presence_free(struct wschat__cluster *cl);
/* See struct wschat__chat's claim_async. */
int wschat__cluster_claim_async(
    struct wschat__cluster *cl, struct wschat__member *m, const char *name,
    void (*done)(struct wschat__member *m, const char *name, int rc,
                 void *arg),
    void (*drop)(void *arg), void *arg);
/* See struct wschat__chat's name_check. */
int wschat__cluster_name_check(struct wschat__cluster *cl, const char *name,
                               uint64_t client,
                               void (*done)(struct wschat_client *c));
/* A message on the presence channel. */
void wschat__cluster_presence_msg(struct wschat__cluster *cl, const char *p,
                                  size_t len);

/* cluster_history.c */
void wschat__cluster_history_init(struct wschat__cluster *cl);

/* Lower-cases s into out (cap bytes). */
void wschat__cluster_lower(char *out, size_t cap, const char *s);

#endif
