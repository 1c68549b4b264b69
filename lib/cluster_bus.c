/*
 * cluster_bus: the bus of a cluster node (see bus.h, cluster.h).
 *
 * Every event takes its id from Redis: a room event through the PUB script
 * (INCR of the global id, HINCRBY of the room's seq, XADD to the room's
 * stream, PUBLISH to the room's channel, all at once: Redis runs one
 * script at a time, so the order of publication is the order of ids and
 * of seqs); a direct event (a whisper, a joiner's own notice) through the
 * ID script. Commands are pipelined; the operations wait in a ring, in
 * the order sent, and are finished in that order as their replies come.
 * The node that made an event delivers it to its members from the reply
 * (no hop through the channel) and ignores it when it comes back on the
 * channel (the payload names its node): never twice.
 *
 * The gate: each room with local members has the seq delivered last; an
 * event with a later seq waits (the reply and the channel are two
 * connections, so seq 6 may be read before seq 5) until the ones before
 * it came, or were read from the room's stream, or WSCHAT__CLUSTER_GAP_MS
 * passed (then they are a gap, counted). So every node delivers a room's
 * events in one order.
 *
 * A JSON typing notice is none of these: one PUBLISH of its own record on
 * the room's channel (no id, no seq, no gate, no ring), dropped while
 * Redis is away; the other nodes hand it to json_chat through typing_in.
 *
 * Without Redis (down, or the ring full) an event is delivered on this
 * node only, with an id above every id this node has seen; the range is
 * written to wschat:gaps when Redis is back, so that recovery over it
 * says complete = false.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "chat.h"
#include "cluster.h"
#include "event.h"
#include "server.h"

static struct wschat__cluster *CL(struct wschat__bus *b) {
  return (struct wschat__cluster *)b; /* the bus is its first member */
}

static void note_id(struct wschat__cluster *cl, uint64_t id) {
  if (id > cl->max_id)
    cl->max_id = id;
}

/* An id for an event that stays on this node: above every id seen here,
 * and in this node's own class modulo WSCHAT__CLUSTER_LANES (from its
 * id), so that two nodes cut off at once rarely give one id to two
 * events. */
static uint64_t local_id(struct wschat__cluster *cl) {
  uint64_t lanes = WSCHAT__CLUSTER_LANES, id = cl->max_id + 1;
  id += (cl->lane + lanes - id % lanes) % lanes;
  cl->max_id = id;
  if (cl->local_from == 0)
    cl->local_from = id;
  cl->id_floor = id;
  cl->st.local_only++;
  return id;
}

/* ---- local delivery ---- */

void wschat__cluster_deliver_room(struct wschat__cluster *cl,
                                  struct wschat_event *ev) {
  struct wschat__rooms *rs = &cl->chat->rooms;
  if (ev->room == NULL) {
    cl->deliver(cl->deliver_user, rs->all, rs->nall, ev, WSCHAT__TO_RECIPIENT,
                ev->skip);
    return;
  }
  struct wschat__room *r = wschat__room_find(rs, ev->room);
  if (r != NULL && r->n > 0)
    cl->deliver(cl->deliver_user, r->members, r->n, ev, WSCHAT__TO_RECIPIENT,
                ev->skip);
}

static void deliver_one(struct wschat__cluster *cl, struct wschat_event *ev,
                        uint64_t member, int variant) {
  struct wschat_client *c = wschat__server_client(cl->srv, member);
  if (c == NULL || !c->member.attached)
    return;
  struct wschat__member *m = &c->member;
  cl->deliver(cl->deliver_user, &m, 1, ev, variant, 0);
}

/* ---- messages from the channels ---- */

/* Another node's typing notice (its own comes back too: ignored). */
static void on_typing(struct wschat__cluster *cl, const char *p, size_t len) {
  struct wschat__wire_typing t;
  if (wschat__wire_typing_decode(p, len, &t) != 0 ||
      strcmp(t.origin, cl->node) == 0 || cl->typing_in == NULL)
    return;
  cl->typing_in(cl->typing_user, t.room, t.from);
}

void wschat__cluster_on_msg(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = priv;
  redisReply *reply = r;
  (void)ac;
  if (cl == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements != 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
      reply->element[1]->type != REDIS_REPLY_STRING)
    return;
  if (strcmp(reply->element[0]->str, "subscribe") == 0) {
    const char *k = reply->element[1]->str + 7; /* after "wschat:" */
    while (*k >= '0' && *k <= '9')
      k++;
    if (strncmp(k, ":r:", 3) == 0)
      wschat__cluster_gate_subscribed(cl, k + 3);
    return;
  }
  if (strcmp(reply->element[0]->str, "message") != 0)
    return;
  const redisReply *chan = reply->element[1], *msg = reply->element[2];
  if (msg->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
    return;
  const char *c = strchr(chan->str + 7, ':'); /* after "wschat:<db>" */
  if (c == NULL)
    return;
  if (strncmp(c, ":presence", 9) == 0) {
    wschat__cluster_presence_msg(cl, msg->str, msg->len);
    return;
  }
  if (msg->len > 0 && msg->str[0] == WSCHAT__WIRE_TYPING) {
    if (strncmp(c, ":r:", 3) == 0)
      on_typing(cl, msg->str, msg->len);
    return;
  }
  struct wschat__wire_meta meta;
  struct wschat_event *ev = wschat__wire_decode_msg(msg->str, msg->len, &meta);
  if (ev == NULL)
    return;
  note_id(cl, ev->id);
  ev->skip = 0; /* client ids are per node: nobody here is skipped */
  if (strcmp(meta.origin, cl->node) != 0) {
    cl->st.received++;
    if (strncmp(c, ":r:", 3) == 0 && ev->room != NULL) {
      wschat__cluster_gate_offer(cl, meta.seq, ev);
    } else if (ev->id <= cl->id_floor) {
      cl->st.gaps++; /* see gate_deliver */
    } else if (strncmp(c, ":n:", 3) == 0 && ev->to != NULL) {
      struct wschat__member *m =
          cl->local->ops->find(cl->local, ev->to);
      if (m != NULL)
        deliver_one(cl, ev, m->id, meta.variant);
    } else if (strncmp(c, ":all", 4) == 0) {
      wschat__cluster_deliver_room(cl, ev);
    }
  }
  wschat__event_unref(ev);
}

/* ---- the ring of operations ---- */

static struct wschat__cluster_op *op_at(struct wschat__cluster *cl, size_t i) {
  return &cl->ops[(cl->head + i) % cl->capops];
}

static struct wschat__cluster_op *push(struct wschat__cluster *cl,
                                       struct wschat_event *ev, int kind) {
  if (cl->nops == cl->capops) {
    size_t cap = cl->capops ? cl->capops * 2 : 64;
    struct wschat__cluster_op *v = malloc(cap * sizeof(*v));
    if (v == NULL)
      return NULL;
    for (size_t i = 0; i < cl->nops; i++)
      v[i] = *op_at(cl, i);
    free(cl->ops);
    cl->ops = v;
    cl->capops = cap;
    cl->head = 0;
  }
  struct wschat__cluster_op *o = op_at(cl, cl->nops++);
  memset(o, 0, sizeof(*o));
  o->ev = wschat__event_ref(ev);
  o->kind = (uint8_t)kind;
  return o;
}

static void finish(struct wschat__cluster *cl, struct wschat__cluster_op *o) {
  struct wschat_event *ev = o->ev;
  if (o->first) {
    if (o->failed) {
      ev->id = local_id(cl);
    } else {
      ev->id = o->id;
      note_id(cl, o->id);
      cl->st.published++;
    }
  }
  if (o->remote_only) {
    /* nobody here */
  } else if (o->kind == WSCHAT__OP_PUBLISH) {
    if (o->failed || ev->room == NULL)
      wschat__cluster_deliver_room(cl, ev);
    else
      wschat__cluster_gate_offer(cl, o->seq, ev);
  } else if (o->kind == WSCHAT__OP_SEND && o->member) {
    deliver_one(cl, ev, o->member, o->variant);
  }
  if (o->first)
    wschat__chat_done(cl->chat, ev);
}

/* Finishes the operations at the head that are ready, in order. */
static void advance(struct wschat__cluster *cl) {
  while (cl->nops > 0) {
    struct wschat__cluster_op *o = op_at(cl, 0);
    if (o->wait && !o->replied)
      return;
    struct wschat__cluster_op copy = *o;
    cl->head = (cl->head + 1) % cl->capops;
    cl->nops--;
    finish(cl, &copy); /* may push: the copy is safe */
    wschat__event_unref(copy.ev);
  }
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = ac->data;
  redisReply *reply = r;
  uintptr_t no = (uintptr_t)priv;
  if (cl == NULL)
    return;
  for (size_t i = 0; i < cl->nops; i++) {
    struct wschat__cluster_op *o = op_at(cl, i);
    if (!o->wait || o->no != no)
      continue;
    o->replied = 1;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2) {
      o->id = wschat__cluster_reply_u64(reply->element[0]);
      o->seq = wschat__cluster_reply_u64(reply->element[1]);
    } else {
      o->failed = 1;
      if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        wschat__cluster_log(cl, WSCHAT_LOG_WARN, "cluster_error", reply->str);
    }
    break;
  }
  advance(cl);
}

static int stored_kind(const struct wschat_event *ev) {
  return ev->room != NULL && ev->kind != WSCHAT_EVENT_NOTICE &&
         ev->kind != WSCHAT_EVENT_WHISPER;
}

/* Sends the script for ev's first operation. Returns 0 or -1. */
static int send_script(struct wschat__cluster *cl, struct wschat_event *ev,
                       int script, const char *chan, int variant) {
  char stack[2048], *buf = stack;
  size_t need = wschat__wire_size(ev, cl->node);
  if (need > sizeof(stack) && (buf = malloc(need)) == NULL)
    return -1;
  size_t n = wschat__wire_encode(ev, cl->node, variant, stored_kind(ev), buf,
                                 need);
  int rc = -1;
  if (n > 0 && cl->sha[script][0]) {
    char key[WSCHAT_ROOM_MAX + 1] = "", max[24];
    snprintf(max, sizeof(max), "%zu", cl->max_per_room);
    if (ev->room)
      wschat__cluster_lower(key, sizeof(key), ev->room);
    if (script == WSCHAT__SCRIPT_PUB) {
      const char *a[] = {"EVALSHA", cl->sha[script], "0", key, buf, max, chan,
                         stored_kind(ev) ? "1" : "0"};
      size_t l[] = {7, 40, 1, strlen(key), n, strlen(max), strlen(chan), 1};
      rc = wschat__cluster_cmd(cl, on_reply, (void *)cl->next_no, 8, a, l);
    } else {
      const char *a[] = {"EVALSHA", cl->sha[script], "0", chan, buf};
      size_t l[] = {7, 40, 1, strlen(chan), chan[0] ? n : 0};
      rc = wschat__cluster_cmd(cl, on_reply, (void *)cl->next_no, 5, a, l);
    }
  }
  if (buf != stack)
    free(buf);
  return rc;
}

static int can_queue(const struct wschat__cluster *cl) {
  return cl->up && cl->nops < WSCHAT__CLUSTER_MAX_OPS;
}

static void bus_publish(struct wschat__bus *bus, struct wschat_event *ev) {
  struct wschat__cluster *cl = CL(bus);
  char chan[WSCHAT_ROOM_MAX + 40], key[WSCHAT_ROOM_MAX + 1] = "";
  int script = WSCHAT__SCRIPT_PUB;
  if (ev->room) {
    wschat__cluster_lower(key, sizeof(key), ev->room);
    snprintf(chan, sizeof(chan), "wschat:%d:r:%s", cl->url.db, key);
  } else {
    snprintf(chan, sizeof(chan), "wschat:%d:all", cl->url.db);
    script = WSCHAT__SCRIPT_ID;
  }
  if (!cl->up)
    ; /* local below */
  else if (!can_queue(cl))
    cl->st.dropped++;
  else if (send_script(cl, ev, script, chan, 0) == 0) {
    struct wschat__cluster_op *o = push(cl, ev, WSCHAT__OP_PUBLISH);
    if (o != NULL) {
      o->wait = o->first = 1;
      o->no = cl->next_no++;
      return;
    }
    cl->next_no++; /* its reply finds no operation */
    /* out of memory after sending: its reply finds another op or none;
     * this one stays local */
  }
  ev->id = local_id(cl);
  wschat__cluster_deliver_room(cl, ev);
  wschat__chat_done(cl->chat, ev);
}

void wschat__cluster_publish(struct wschat__cluster *cl,
                             struct wschat_event *ev) {
  bus_publish(&cl->bus, ev);
}

void wschat__cluster_publish_remote(struct wschat__cluster *cl,
                                    struct wschat_event *ev) {
  char chan[WSCHAT_ROOM_MAX + 40], key[WSCHAT_ROOM_MAX + 1];
  if (ev->room == NULL || !can_queue(cl)) {
    ev->id = local_id(cl); /* nobody to tell: the watchers see it */
    wschat__chat_done(cl->chat, ev);
    return;
  }
  wschat__cluster_lower(key, sizeof(key), ev->room);
  snprintf(chan, sizeof(chan), "wschat:%d:r:%s", cl->url.db, key);
  if (send_script(cl, ev, WSCHAT__SCRIPT_PUB, chan, 0) == 0) {
    struct wschat__cluster_op *o = push(cl, ev, WSCHAT__OP_PUBLISH);
    if (o != NULL) {
      o->wait = o->first = o->remote_only = 1;
      o->no = cl->next_no++;
      return;
    }
    cl->next_no++;
  }
  ev->id = local_id(cl);
  wschat__chat_done(cl->chat, ev);
}

void wschat__cluster_typing(struct wschat__cluster *cl, const char *room,
                            const char *from) {
  char chan[WSCHAT_ROOM_MAX + 40], key[WSCHAT_ROOM_MAX + 1], msg[800];
  if (!cl->up)
    return; /* ephemeral: never queued for later */
  size_t n = wschat__wire_typing_encode(cl->node, room, from, msg,
                                        sizeof(msg));
  if (n == 0)
    return;
  wschat__cluster_lower(key, sizeof(key), room);
  snprintf(chan, sizeof(chan), "wschat:%d:r:%s", cl->url.db, key);
  const char *a[] = {"PUBLISH", chan, msg};
  size_t l[] = {7, strlen(chan), n};
  (void)wschat__cluster_cmd(cl, NULL, NULL, 3, a, l); /* no reply wanted */
}

static const char *remote_node(struct wschat__cluster *cl,
                               const struct wschat__member *m) {
  struct wschat__remote *x = wschat__map_get(&cl->remote, m->name);
  return x ? x->node : NULL;
}

static void bus_send(struct wschat__bus *bus, struct wschat_event *ev,
                     struct wschat__member *m, int variant) {
  struct wschat__cluster *cl = CL(bus);
  int ghost = m != NULL && m->client == NULL;
  int follow = cl->nops > 0 && op_at(cl, cl->nops - 1)->ev == ev;
  if (follow) { /* after the event's first operation, in order */
    struct wschat__cluster_op *o = push(cl, ev, WSCHAT__OP_SEND);
    if (o != NULL) {
      o->member = ghost || m == NULL ? 0 : m->id;
      o->variant = (uint8_t)variant;
    }
    return;
  }
  if (ev->id != 0) { /* stamped already (local): deliver now */
    if (m != NULL && !ghost)
      deliver_one(cl, ev, m->id, variant);
    return;
  }
  if (can_queue(cl)) {
    char chan[300] = "";
    const char *node = ghost ? remote_node(cl, m) : NULL;
    if (node)
      snprintf(chan, sizeof(chan), "wschat:%d:n:%s", cl->url.db, node);
    if (send_script(cl, ev, WSCHAT__SCRIPT_ID, chan, variant) == 0) {
      struct wschat__cluster_op *o =
          push(cl, ev, ghost ? WSCHAT__OP_SEND_REMOTE : WSCHAT__OP_SEND);
      if (o != NULL) {
        o->wait = o->first = 1;
        o->no = cl->next_no++;
        o->member = ghost || m == NULL ? 0 : m->id;
        o->variant = (uint8_t)variant;
        return;
      }
      cl->next_no++;
    }
  }
  ev->id = local_id(cl);
  if (m != NULL && !ghost)
    deliver_one(cl, ev, m->id, variant);
  else if (ghost)
    cl->st.dropped++; /* another node's member, out of reach */
  wschat__chat_done(cl->chat, ev);
}

static void bus_free(struct wschat__bus *bus) {
  (void)bus; /* the cluster frees itself (wschat__cluster_free) */
}

static const struct wschat__bus_ops cluster_bus_ops = {bus_publish, bus_send,
                                                       bus_free};

/* ---- life ---- */

void wschat__cluster_bus_init(struct wschat__cluster *cl) {
  cl->bus.ops = &cluster_bus_ops;
  wschat__map_init(&cl->gates);
}

void wschat__cluster_bus_up(struct wschat__cluster *cl) {
  char a1[64], a2[64];
  snprintf(a1, sizeof(a1), "wschat:%d:presence", cl->url.db);
  snprintf(a2, sizeof(a2), "wschat:%d:all", cl->url.db);
  const char *a[] = {"SUBSCRIBE", a1, a2, cl->node_chan};
  wschat__cluster_sub(cl, wschat__cluster_on_msg, 4, a, NULL);
  wschat__cluster_gates_up(cl);
}

void wschat__cluster_bus_down(struct wschat__cluster *cl) {
  /* What waits for a reply is delivered here now, in order, as if
   * refused (a reply may never come: a connection dropped before hiredis
   * saw it fail keeps its callbacks). A late reply finds no operation of
   * its number and is ignored. The gates start again when Redis is back;
   * what waited in them is a gap. */
  for (size_t i = 0; i < cl->nops; i++) {
    struct wschat__cluster_op *o = op_at(cl, i);
    if (o->wait && !o->replied)
      o->replied = o->failed = 1;
  }
  advance(cl);
}

void wschat__cluster_bus_free(struct wschat__cluster *cl) {
  for (size_t i = 0; i < cl->nops; i++)
    wschat__event_unref(op_at(cl, i)->ev);
  free(cl->ops);
  cl->ops = NULL;
  cl->nops = 0;
  wschat__cluster_gates_free(cl);
}

void wschat__cluster_bus_tick(struct wschat__cluster *cl, uint64_t now) {
  wschat__cluster_gates_tick(cl, now);
}
