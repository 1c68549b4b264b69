/*
 * cluster_gate: one order per room on a cluster node (see cluster.h).
 * Each room with local members has a gate: its channel (subscribed while
 * the room has members here, unsubscribed a second after the last left),
 * the room seq delivered last, and the events that wait for an earlier
 * one. The reply of this node's own script and the channel are two
 * connections, so seq 6 may be read before seq 5: 6 waits. What does not
 * come within WSCHAT__CLUSTER_GAP_MS is read from the room's stream
 * (XRANGE); what is not there either is a gap, counted, and passed.
 *
 * Owns: the gates (cl->gates) and one reference to each event waiting in
 * one. Never delivers but through wschat__cluster_deliver_room().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "chat.h"
#include "cluster.h"
#include "event.h"

struct wschat__gate *wschat__cluster_gate(struct wschat__cluster *cl,
                                          const char *room) {
  return wschat__map_get(&cl->gates, room);
}

static void gate_deliver(struct wschat__cluster *cl, struct wschat__gate *g,
                         uint64_t seq, struct wschat_event *ev) {
  g->last = seq;
  g->lastid = ev->id;
  if (ev->id <= cl->id_floor) {
    /* Another node's event with an id this node already gave an event of
     * its own while Redis was away: delivering it would take ids back.
     * A gap (recovery over the outage says so). */
    cl->st.gaps++;
    return;
  }
  wschat__cluster_deliver_room(cl, ev);
}

/* Delivers what waits in order from last + 1. */
static void gate_release(struct wschat__cluster *cl, struct wschat__gate *g) {
  size_t k = 0;
  while (k < g->nheld && g->held[k].seq <= g->last + 1) {
    if (g->held[k].seq == g->last + 1)
      gate_deliver(cl, g, g->held[k].seq, g->held[k].ev);
    else
      cl->st.dup_dropped++;
    wschat__event_unref(g->held[k].ev);
    k++;
  }
  if (k) {
    memmove(g->held, g->held + k, (g->nheld - k) * sizeof(*g->held));
    g->nheld -= k;
    /* progress: what waits now waits from now */
    g->wait_since = g->nheld ? wschat__cluster_now(cl) : 0;
  } else if (g->nheld && g->wait_since == 0) {
    g->wait_since = wschat__cluster_now(cl);
  }
}

static void gate_hold(struct wschat__cluster *cl, struct wschat__gate *g,
                      uint64_t seq, struct wschat_event *ev) {
  size_t i = g->nheld;
  while (i > 0 && g->held[i - 1].seq > seq)
    i--;
  if (i > 0 && g->held[i - 1].seq == seq) {
    cl->st.dup_dropped++;
    return;
  }
  if (g->nheld == g->capheld) {
    size_t cap = g->capheld ? g->capheld * 2 : 8;
    void *p = realloc(g->held, cap * sizeof(*g->held));
    if (p == NULL) {
      cl->st.gaps++; /* out of memory: this one is lost here */
      return;
    }
    g->held = p;
    g->capheld = cap;
  }
  memmove(g->held + i + 1, g->held + i, (g->nheld - i) * sizeof(*g->held));
  g->held[i].seq = seq;
  g->held[i].ev = wschat__event_ref(ev);
  g->nheld++;
  if (g->wait_since == 0)
    g->wait_since = wschat__cluster_now(cl);
}

/* A room event (seq from Redis) for the room's local members. */
void wschat__cluster_gate_offer(struct wschat__cluster *cl, uint64_t seq,
                                struct wschat_event *ev) {
  struct wschat__gate *g = wschat__cluster_gate(cl, ev->room);
  if (g == NULL)
    return; /* no member here (any more) */
  if (g->synced && seq <= g->last) {
    cl->st.dup_dropped++;
    return;
  }
  if (g->synced && seq == g->last + 1 && g->nheld == 0) {
    gate_deliver(cl, g, seq, ev);
    return;
  }
  gate_hold(cl, g, seq, ev);
  if (g->synced)
    gate_release(cl, g);
}

static void on_sync(redisAsyncContext *ac, void *r, void *priv);

static void gate_sync(struct wschat__cluster *cl, struct wschat__gate *g) {
  char key[WSCHAT_ROOM_MAX + 40];
  snprintf(key, sizeof(key), "wschat:room:%s", g->key);
  const char *a[] = {"HMGET", key, "seq", "id"};
  char *name = strdup(g->key);
  if (name == NULL ||
      wschat__cluster_cmd(cl, on_sync, name, 4, a, NULL) != 0)
    free(name);
}

static void on_sync(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = ac->data;
  redisReply *reply = r;
  char *name = priv;
  struct wschat__gate *g = cl ? wschat__cluster_gate(cl, name) : NULL;
  free(name);
  if (g == NULL || g->synced || reply == NULL ||
      reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return;
  g->synced = 1;
  g->gen = cl->gen;
  g->last = wschat__cluster_reply_u64(reply->element[0]);
  g->lastid = wschat__cluster_reply_u64(reply->element[1]);
  g->sync_lastid = g->lastid;
  gate_release(cl, g);
}

static void subscribe(struct wschat__cluster *cl, struct wschat__gate *g,
                      int on) {
  char chan[WSCHAT_ROOM_MAX + 40];
  snprintf(chan, sizeof(chan), "wschat:%d:r:%s", cl->url.db, g->key);
  const char *a[] = {on ? "SUBSCRIBE" : "UNSUBSCRIBE", chan};
  wschat__cluster_sub(cl, wschat__cluster_on_msg, 2, a, NULL);
  if (on)
    gate_sync(cl, g);
}

static void gate_free(struct wschat__gate *g) {
  for (size_t i = 0; i < g->nheld; i++)
    wschat__event_unref(g->held[i].ev);
  free(g->held);
  free(g);
}

void wschat__cluster_room_used(struct wschat__cluster *cl, const char *room) {
  struct wschat__gate *g = wschat__cluster_gate(cl, room);
  if (g != NULL) {
    g->empty_since = 0;
    return;
  }
  g = calloc(1, sizeof(*g));
  if (g == NULL)
    return;
  wschat__cluster_lower(g->key, sizeof(g->key), room);
  if (wschat__map_put(&cl->gates, g->key, g) != 0) {
    free(g);
    return;
  }
  if (cl->up)
    subscribe(cl, g, 1);
}

void wschat__cluster_room_unused(struct wschat__cluster *cl,
                                 const char *room) {
  struct wschat__gate *g = wschat__cluster_gate(cl, room);
  if (g != NULL && g->empty_since == 0)
    g->empty_since = wschat__cluster_now(cl) | 1;
}

/* ---- stream reads that fill a gap ---- */

static void offer_entries(struct wschat__cluster *cl, const redisReply *e);

static void on_fill(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = ac->data;
  char *name = priv;
  redisReply *reply = r;
  struct wschat__gate *g = cl ? wschat__cluster_gate(cl, name) : NULL;
  free(name);
  if (g == NULL)
    return;
  g->filling = 0;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
    offer_entries(cl, reply);
  if (g->nheld > 0 && g->held[0].seq > g->last + 1) {
    cl->st.gaps += g->held[0].seq - g->last - 1;
    g->last = g->held[0].seq - 1;
    gate_release(cl, g);
  }
}

static void fill(struct wschat__cluster *cl, struct wschat__gate *g) {
  char key[WSCHAT_ROOM_MAX + 40], from[32], to[32];
  snprintf(key, sizeof(key), "wschat:hist:%s", g->key);
  snprintf(from, sizeof(from), "(%llu-0", (unsigned long long)g->lastid);
  snprintf(to, sizeof(to), "(%llu-0", (unsigned long long)g->held[0].ev->id);
  const char *a[] = {"XRANGE", key, from, to, "COUNT", "10000"};
  char *name = strdup(g->key);
  if (name != NULL && wschat__cluster_cmd(cl, on_fill, name, 6, a, NULL) == 0) {
    g->filling = 1;
    return;
  }
  free(name);
  cl->st.gaps += g->held[0].seq - g->last - 1;
  g->last = g->held[0].seq - 1;
  gate_release(cl, g);
}

/* ---- catching up once the channel is there ---- */

/* The SUBSCRIBE was confirmed: from now on the channel brings every event
 * of the room. What was published between the sync and this moment (the
 * two connections are not ordered) is read from the stream: the room's
 * seq now, and if it is past the last delivered, the entries after it. */
static void on_catchup(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = ac->data;
  char *name = priv;
  redisReply *reply = r;
  struct wschat__gate *g = cl ? wschat__cluster_gate(cl, name) : NULL;
  free(name);
  if (g == NULL || !g->synced || g->filling || reply == NULL ||
      reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return;
  uint64_t seq = wschat__cluster_reply_u64(reply->element[0]);
  if (seq <= g->last)
    return; /* nothing missed */
  char key[WSCHAT_ROOM_MAX + 40], from[32], count[24];
  snprintf(key, sizeof(key), "wschat:hist:%s", g->key);
  snprintf(from, sizeof(from), "(%llu-0", (unsigned long long)g->lastid);
  snprintf(count, sizeof(count), "%llu",
           (unsigned long long)(seq - g->last));
  const char *a[] = {"XRANGE", key, from, "+", "COUNT", count};
  char *copy = strdup(g->key);
  if (copy != NULL && wschat__cluster_cmd(cl, on_fill, copy, 6, a, NULL) == 0)
    g->filling = 1;
  else
    free(copy);
}

void wschat__cluster_gate_subscribed(struct wschat__cluster *cl,
                                     const char *room) {
  struct wschat__gate *g = wschat__cluster_gate(cl, room);
  if (g == NULL)
    return;
  char key[WSCHAT_ROOM_MAX + 40];
  snprintf(key, sizeof(key), "wschat:room:%s", g->key);
  const char *a[] = {"HMGET", key, "seq", "id"};
  char *name = strdup(g->key);
  if (name == NULL || wschat__cluster_cmd(cl, on_catchup, name, 4, a, NULL) != 0)
    free(name);
}

/* Stream entries [id, [s, seq, k, kind, e, payload]] into their gates. */
static void offer_entries(struct wschat__cluster *cl, const redisReply *e) {
  for (size_t i = 0; i < e->elements; i++) {
    const redisReply *x = e->element[i];
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
        x->element[1]->type != REDIS_REPLY_ARRAY ||
        x->element[1]->elements != 6)
      continue;
    const redisReply *f = x->element[1];
    struct wschat__wire_meta meta;
    struct wschat_event *ev =
        wschat__wire_decode(f->element[5]->str, f->element[5]->len, &meta);
    if (ev == NULL)
      continue;
    ev->id = strtoull(x->element[0]->str, NULL, 10);
    ev->skip = 0; /* client ids are per node: nobody here is skipped */
    wschat__cluster_gate_offer(cl, wschat__cluster_reply_u64(f->element[1]), ev);
    wschat__event_unref(ev);
  }
}

/* ---- life ---- */

static void resub(const char *key, void *value, void *arg) {
  (void)key;
  struct wschat__gate *g = value;
  struct wschat__cluster *cl = arg;
  /* seqs of before the loss mean nothing now (Redis may have lost them) */
  for (size_t i = 0; i < g->nheld; i++)
    wschat__event_unref(g->held[i].ev);
  cl->st.gaps += g->nheld;
  g->nheld = 0;
  g->wait_since = 0;
  g->synced = 0;
  g->filling = 0;
  subscribe(cl, g, 1);
}

void wschat__cluster_gates_up(struct wschat__cluster *cl) {
  wschat__map_each(&cl->gates, resub, cl);
}

struct tick_ctx {
  struct wschat__cluster *cl;
  uint64_t now;
  struct wschat__gate *gone[64];
  size_t ngone;
};

static void tick_gate(const char *key, void *value, void *arg) {
  (void)key;
  struct tick_ctx *t = arg;
  struct wschat__gate *g = value;
  struct wschat__cluster *cl = t->cl;
  if (g->empty_since && t->now - g->empty_since > 1000 &&
      t->ngone < sizeof(t->gone) / sizeof(t->gone[0])) {
    t->gone[t->ngone++] = g;
    return;
  }
  if (!cl->up || g->filling || g->nheld == 0 || g->wait_since == 0 ||
      t->now - g->wait_since < WSCHAT__CLUSTER_GAP_MS)
    return;
  if (!g->synced) {
    /* no sync came: start from what waits */
    g->synced = 1;
    g->last = g->held[0].seq - 1;
    gate_release(cl, g);
    return;
  }
  fill(cl, g);
}

void wschat__cluster_gates_tick(struct wschat__cluster *cl, uint64_t now) {
  struct tick_ctx t = {.cl = cl, .now = now};
  wschat__map_each(&cl->gates, tick_gate, &t);
  for (size_t i = 0; i < t.ngone; i++) {
    struct wschat__gate *g = t.gone[i];
    if (wschat__room_find(&cl->chat->rooms, g->key) != NULL &&
        wschat__room_find(&cl->chat->rooms, g->key)->n > 0) {
      g->empty_since = 0;
      continue;
    }
    subscribe(cl, g, 0);
    wschat__map_del(&cl->gates, g->key);
    gate_free(g);
  }
}

static void free_gate(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  gate_free(value);
}

void wschat__cluster_gates_free(struct wschat__cluster *cl) {
  wschat__map_each(&cl->gates, free_gate, NULL);
  wschat__map_free(&cl->gates);
}

/* ---- what the replay asks ---- */

int wschat__cluster_live_upto(struct wschat__cluster *cl, const char *room,
                              int at_sync, uint64_t *upto) {
  struct wschat__gate *g = wschat__cluster_gate(cl, room);
  if (g == NULL)
    return 0;
  if (!g->synced && !at_sync)
    return 0;
  *upto = at_sync ? g->sync_lastid : g->lastid;
  return 1;
}

static void count_held(const char *key, void *value, void *arg) {
  (void)key;
  *(uint64_t *)arg += ((struct wschat__gate *)value)->nheld;
}

uint64_t wschat__cluster_held(struct wschat__cluster *cl) {
  uint64_t n = 0;
  wschat__map_each(&cl->gates, count_held, &n);
  return n;
}
