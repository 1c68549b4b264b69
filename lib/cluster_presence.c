/*
 * cluster_presence: the presence of a cluster node (see presence.h,
 * cluster.h).
 *
 * This node's names are kept by the in-process presence (cl->local), which
 * answers at once; each named member is also in the Redis hash
 * wschat:users (lower-case name -> "node\nName\nroom\nroom..."), written
 * only by the node that has it (the CLAIM script refuses a name another
 * node holds) and announced on the presence channel. Every node keeps a
 * mirror of the other nodes' entries (a snapshot by HGETALL at each
 * connect, then the channel's deltas), so find(), /users and /rooms are
 * answered synchronously from memory and the chat core stays as it is.
 *
 * A name is checked against the mirror before it is taken, so a name in
 * use on another node is refused at once; two nodes taking the same free
 * name within the channel's delay (about a millisecond) are told apart by
 * Redis: the later one's member is closed (1008) and counted.
 *
 * Dead nodes: every node refreshes wschat:hb:<node> (3 s TTL) each second
 * and runs the REAP script each second; the one run that finds a node's
 * key gone takes its names out and gets them back, and that node
 * publishes one leave event per room for each: every room is told once,
 * 3 to 4 s after the node stopped.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "chat.h"
#include "cluster.h"
#include "event.h"
#include "room.h"
#include "server.h"

static struct wschat__cluster *CL(struct wschat__presence *p) {
  return (struct wschat__cluster *)((char *)p -
                                    offsetof(struct wschat__cluster,
                                             presence));
}

static void presence_chan(const struct wschat__cluster *cl, char *out,
                          size_t cap) {
  snprintf(out, cap, "wschat:%d:presence", cl->url.db);
}

/* ---- the mirror ---- */

static void remote_free(struct wschat__remote *x) {
  free(x->ghost);
  free(x->rooms);
  free(x->val);
  free(x);
}

/* Parses "node\nName\nroom..." (len bytes) into a new entry. */
static struct wschat__remote *remote_new(const char *v, size_t len) {
  struct wschat__remote *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return NULL;
  x->val = malloc(len + 1);
  x->ghost = calloc(1, sizeof(*x->ghost));
  size_t parts = 1;
  for (size_t i = 0; i < len; i++)
    parts += v[i] == '\n';
  x->rooms = malloc(parts * sizeof(*x->rooms));
  if (x->val == NULL || x->ghost == NULL || x->rooms == NULL || parts < 2) {
    remote_free(x);
    return NULL;
  }
  memcpy(x->val, v, len);
  x->val[len] = '\0';
  char *save = NULL, *t = strtok_r(x->val, "\n", &save);
  x->node = t;
  t = strtok_r(NULL, "\n", &save);
  if (t == NULL || x->node == NULL || strlen(t) > WSCHAT_NAME_MAX) {
    remote_free(x);
    return NULL;
  }
  snprintf(x->ghost->name, sizeof(x->ghost->name), "%s", t);
  while ((t = strtok_r(NULL, "\n", &save)) != NULL)
    x->rooms[x->nrooms++] = t;
  return x;
}

static void mirror_del(struct wschat__cluster *cl, const char *key,
                       const char *node) {
  struct wschat__remote *x = wschat__map_get(&cl->remote, key);
  if (x == NULL || (node != NULL && strcmp(x->node, node) != 0))
    return;
  wschat__map_del(&cl->remote, key);
  remote_free(x);
}

static void mirror_set(struct wschat__cluster *cl, const char *v,
                       size_t len) {
  struct wschat__remote *x = remote_new(v, len);
  if (x == NULL)
    return;
  if (strcmp(x->node, cl->node) == 0) {
    remote_free(x);
    return;
  }
  mirror_del(cl, x->ghost->name, NULL);
  if (wschat__map_put(&cl->remote, x->ghost->name, x) != 0)
    remote_free(x);
}

static void apply(struct wschat__cluster *cl, const char *p, size_t len) {
  const char *sep = memchr(p, '\x1e', len);
  if (len < 2 || sep == NULL)
    return;
  if (p[0] == 'S') {
    mirror_set(cl, sep + 1, len - (size_t)(sep + 1 - p));
  } else if (p[0] == 'D') {
    char key[WSCHAT_NAME_MAX + 1], node[sizeof(cl->node)];
    size_t kl = (size_t)(sep - p - 1), nl = len - kl - 2;
    if (kl >= sizeof(key) || nl >= sizeof(node))
      return;
    memcpy(key, p + 1, kl);
    key[kl] = '\0';
    memcpy(node, sep + 1, nl);
    node[nl] = '\0';
    mirror_del(cl, key, node);
  }
}

void wschat__cluster_presence_msg(struct wschat__cluster *cl, const char *p,
                                  size_t len) {
  if (!cl->snapshot_pending) {
    apply(cl, p, len);
    return;
  }
  /* Kept, and applied again after the snapshot (they are whole values:
   * applying one twice is harmless, and the latest wins). */
  if (cl->ndeltas == cl->capdeltas) {
    size_t cap = cl->capdeltas ? cl->capdeltas * 2 : 16;
    void *v = realloc(cl->deltas, cap * sizeof(*cl->deltas));
    if (v == NULL)
      return;
    cl->deltas = v;
    cl->capdeltas = cap;
  }
  char *copy = malloc(len);
  if (copy == NULL)
    return;
  memcpy(copy, p, len);
  apply(cl, p, len);
  cl->deltas[cl->ndeltas++] = (struct wschat__delta){copy, len};
}

static void free_remote(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  remote_free(value);
}

static void on_snapshot(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = priv;
  redisReply *reply = r;
  (void)ac;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
    wschat__map_each(&cl->remote, free_remote, NULL);
    wschat__map_free(&cl->remote);
    wschat__map_init(&cl->remote);
    for (size_t i = 0; i + 1 < reply->elements; i += 2)
      if (reply->element[i + 1]->type == REDIS_REPLY_STRING)
        mirror_set(cl, reply->element[i + 1]->str,
                   reply->element[i + 1]->len);
  }
  cl->snapshot_pending = 0;
  for (size_t i = 0; i < cl->ndeltas; i++) {
    apply(cl, cl->deltas[i].p, cl->deltas[i].len);
    free(cl->deltas[i].p);
  }
  cl->ndeltas = 0;
}

/* ---- this node's entries ---- */

struct claim_ctx {
  struct wschat__cluster *cl;
  uint64_t member;
};

static void on_claimed(redisAsyncContext *ac, void *r, void *priv) {
  struct claim_ctx *x = priv;
  redisReply *reply = r;
  (void)ac;
  if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
      reply->integer == 0) {
    struct wschat_client *c = wschat__server_client(x->cl->srv, x->member);
    if (c != NULL && c->conn.state == WSCHAT__CONN_OPEN) {
      x->cl->st.name_conflicts++;
      wschat__cluster_log(x->cl, WSCHAT_LOG_WARN, "cluster_name_conflict",
                          c->member.name);
      wschat__conn_close(&c->conn, 1008, "name taken on another node");
    }
  }
  free(x);
}

/* Writes m's entry (name and rooms) to the registry. */
static void put_member(struct wschat__cluster *cl,
                       const struct wschat__member *m) {
  if (!cl->up || m->name[0] == '\0')
    return;
  char val[4096], key[WSCHAT_NAME_MAX + 1], chan[64];
  int n = snprintf(val, sizeof(val), "%s\n%s", cl->node, m->name);
  for (size_t i = 0; i < m->nrooms && n > 0 && (size_t)n < sizeof(val); i++)
    n += snprintf(val + n, sizeof(val) - (size_t)n, "\n%s",
                  m->rooms[i].room->name);
  if (n <= 0 || (size_t)n >= sizeof(val))
    return;
  wschat__cluster_lower(key, sizeof(key), m->name);
  presence_chan(cl, chan, sizeof(chan));
  struct claim_ctx *x = malloc(sizeof(*x));
  if (x == NULL)
    return;
  x->cl = cl;
  x->member = m->id;
  const char *a[] = {"EVALSHA", cl->sha[WSCHAT__SCRIPT_CLAIM], "0", key,
                     cl->node, val, chan};
  if (wschat__cluster_cmd(cl, on_claimed, x, 7, a, NULL) != 0)
    free(x);
  else
    wschat__cluster_flush(cl);
}

static void on_done(redisAsyncContext *ac, void *r, void *priv) {
  (void)ac;
  (void)r;
  (void)priv;
}

static void del_member(struct wschat__cluster *cl, const char *name) {
  if (!cl->up)
    return;
  char key[WSCHAT_NAME_MAX + 1], chan[64];
  wschat__cluster_lower(key, sizeof(key), name);
  presence_chan(cl, chan, sizeof(chan));
  const char *a[] = {"EVALSHA", cl->sha[WSCHAT__SCRIPT_RELEASE], "0", key,
                     cl->node, chan};
  wschat__cluster_cmd(cl, on_done, NULL, 6, a, NULL);
}

/* ---- a rename, asked of the registry first ---- */

struct async_claim {
  struct wschat__cluster *cl;
  uint64_t member;
  char name[WSCHAT_NAME_MAX + 1];
  void (*done)(struct wschat__member *m, const char *name, int rc, void *arg);
  void (*drop)(void *arg);
  void *arg;
};

static void on_async_claimed(redisAsyncContext *ac, void *r, void *priv) {
  struct async_claim *x = priv;
  redisReply *reply = r;
  (void)ac;
  struct wschat_client *c = wschat__server_client(x->cl->srv, x->member);
  int ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
           reply->integer == 1;
  if (c == NULL || !c->member.attached) {
    if (ok) /* taken for a member that is gone: given back */
      del_member(x->cl, x->name);
    x->drop(x->arg);
  } else {
    /* no reply (Redis went away): the name is judged here alone */
    x->done(&c->member, x->name, ok || reply == NULL ? 0 : WSCHAT_ENAMETAKEN,
            x->arg);
  }
  free(x);
}

int wschat__cluster_claim_async(
    struct wschat__cluster *cl, struct wschat__member *m, const char *name,
    void (*done)(struct wschat__member *m, const char *name, int rc,
                 void *arg),
    void (*drop)(void *arg), void *arg) {
  if (strlen(name) > WSCHAT_NAME_MAX)
    return WSCHAT_ENAME;
  struct async_claim *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return WSCHAT_ENOMEM;
  x->cl = cl;
  x->member = m->id;
  memcpy(x->name, name, strlen(name) + 1);
  x->done = done;
  x->drop = drop;
  x->arg = arg;
  /* The entry as it will be: the new name, the same rooms. */
  char val[4096], key[WSCHAT_NAME_MAX + 1], chan[64];
  int n = snprintf(val, sizeof(val), "%s\n%s", cl->node, name);
  for (size_t i = 0; i < m->nrooms && n > 0 && (size_t)n < sizeof(val); i++)
    n += snprintf(val + n, sizeof(val) - (size_t)n, "\n%s",
                  m->rooms[i].room->name);
  wschat__cluster_lower(key, sizeof(key), name);
  presence_chan(cl, chan, sizeof(chan));
  const char *a[] = {"EVALSHA", cl->sha[WSCHAT__SCRIPT_CLAIM], "0", key,
                     cl->node, val, chan};
  if (n <= 0 || (size_t)n >= sizeof(val) ||
      wschat__cluster_cmd(cl, on_async_claimed, x, 7, a, NULL) != 0) {
    /* Redis is away: judged here alone, now */
    free(x);
    done(m, name, 0, arg);
  }
  return 0;
}

/* ---- a name asked for at connect ---- */

struct name_check {
  struct wschat__cluster *cl;
  uint64_t client;
  void (*done)(struct wschat_client *c);
};

static void on_name_checked(redisAsyncContext *ac, void *r, void *priv) {
  struct name_check *x = priv;
  redisReply *reply = r;
  (void)ac;
  /* Another node's entry goes into the mirror now (the channel may bring
   * it later); this node's own entries are its members' already. */
  if (reply != NULL && reply->type == REDIS_REPLY_STRING)
    mirror_set(x->cl, reply->str, reply->len);
  struct wschat_client *c = wschat__server_client(x->cl->srv, x->client);
  if (c != NULL)
    x->done(c);
  free(x);
}

int wschat__cluster_name_check(struct wschat__cluster *cl, const char *name,
                               uint64_t client,
                               void (*done)(struct wschat_client *c)) {
  if (!cl->up) {
    /* Just started: the registry will be there in a moment (a node that
     * lost Redis later judges names alone, at once). */
    if (cl->gen > 0 || strlen(name) > WSCHAT_NAME_MAX ||
        wschat__cluster_now(cl) - cl->started_at >
            WSCHAT__CLUSTER_CONNECT_TIMEOUT_MS)
      return -1;
    if (cl->nwaits == cl->capwaits) {
      size_t cap = cl->capwaits ? cl->capwaits * 2 : 16;
      void *v = realloc(cl->waits, cap * sizeof(*cl->waits));
      if (v == NULL)
        return -1;
      cl->waits = v;
      cl->capwaits = cap;
    }
    struct wschat__name_wait *w = &cl->waits[cl->nwaits++];
    w->client = client;
    memcpy(w->name, name, strlen(name) + 1);
    w->done = done;
    return 0;
  }
  if (name[0] == '\0')
    return -1; /* a guest: nothing to ask */
  struct name_check *x = malloc(sizeof(*x));
  if (x == NULL)
    return WSCHAT_ENOMEM;
  x->cl = cl;
  x->client = client;
  x->done = done;
  char key[WSCHAT_NAME_MAX + 1];
  wschat__cluster_lower(key, sizeof(key), name);
  const char *a[] = {"HGET", "wschat:users", key};
  if (wschat__cluster_cmd(cl, on_name_checked, x, 3, a, NULL) != 0) {
    free(x);
    return -1;
  }
  return 0;
}

/* ---- the ops ---- */

static int claim(struct wschat__presence *p, const char *name,
                 struct wschat__member *m, int force) {
  struct wschat__cluster *cl = CL(p);
  if (wschat__map_get(&cl->remote, name) != NULL)
    return WSCHAT_ENAMETAKEN;
  return cl->local->ops->claim(cl->local, name, m, force);
}

static void named(struct wschat__presence *p, struct wschat__member *m) {
  struct wschat__cluster *cl = CL(p);
  cl->local->ops->named(cl->local, m);
  put_member(cl, m);
}

static void release(struct wschat__presence *p, const char *name,
                    struct wschat__member *m) {
  struct wschat__cluster *cl = CL(p);
  if (cl->local->ops->find(cl->local, name) != m)
    return;
  cl->local->ops->release(cl->local, name, m);
  del_member(cl, name);
}

static struct wschat__member *find(struct wschat__presence *p,
                                   const char *name) {
  struct wschat__cluster *cl = CL(p);
  struct wschat__member *m = cl->local->ops->find(cl->local, name);
  if (m != NULL)
    return m;
  struct wschat__remote *x = wschat__map_get(&cl->remote, name);
  return x ? x->ghost : NULL;
}

static int reserve(struct wschat__presence *p, const char *name) {
  return CL(p)->local->ops->reserve(CL(p)->local, name);
}
static int unreserve(struct wschat__presence *p, const char *name) {
  return CL(p)->local->ops->unreserve(CL(p)->local, name);
}
static int reserved(struct wschat__presence *p, const char *name) {
  return CL(p)->local->ops->reserved(CL(p)->local, name);
}

/* A membership changed: the registry follows while m has its name (an
 * exiting member gave it back first: nothing is written for it). */
static void changed(struct wschat__cluster *cl, struct wschat__member *m) {
  if (m->name[0] && cl->local->ops->find(cl->local, m->name) == m)
    put_member(cl, m);
}

static void joined(struct wschat__presence *p, struct wschat__room *room,
                   struct wschat__member *m) {
  struct wschat__cluster *cl = CL(p);
  wschat__cluster_room_used(cl, room->name);
  changed(cl, m);
}

static void left(struct wschat__presence *p, struct wschat__room *room,
                 struct wschat__member *m) {
  struct wschat__cluster *cl = CL(p);
  if (room->n == 0)
    wschat__cluster_room_unused(cl, room->name);
  changed(cl, m);
}

static void presence_free(struct wschat__presence *p) {
  (void)p; /* the cluster frees itself */
}

struct each_ctx {
  void (*fn)(void *arg, const char *name, const char *const *rooms, size_t n);
  void *arg;
};

static void each_one(const char *key, void *value, void *arg) {
  (void)key;
  struct wschat__remote *x = value;
  struct each_ctx *e = arg;
  e->fn(e->arg, x->ghost->name, x->rooms, x->nrooms);
}

static void each_remote(struct wschat__presence *p,
                        void (*fn)(void *arg, const char *name,
                                   const char *const *rooms, size_t n),
                        void *arg) {
  struct each_ctx e = {fn, arg};
  wschat__map_each(&CL(p)->remote, each_one, &e);
}

static const struct wschat__presence_ops cluster_presence_ops = {
    claim,     named,    release, find, reserve,       unreserve,
    reserved,  joined,   left,    presence_free, each_remote,
};

/* ---- reaping dead nodes ---- */

static void tell_gone(struct wschat__cluster *cl, const char *v, size_t len) {
  struct wschat__remote *x = remote_new(v, len);
  if (x == NULL)
    return;
  cl->st.reaped++;
  for (size_t i = 0; i < x->nrooms; i++) {
    struct wschat_event *ev =
        wschat__event_new(WSCHAT_EVENT_LEAVE, x->rooms[i], x->ghost->name,
                          NULL, NULL, 0, "node lost");
    if (ev == NULL)
      break;
    ev->ts = (int64_t)uv_now(cl->loop); /* replaced below */
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) == 0)
      ev->ts = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    wschat__cluster_publish(cl, ev);
    wschat__event_unref(ev);
  }
  remote_free(x);
}

static void on_reaped(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = priv;
  redisReply *reply = r;
  (void)ac;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
    return;
  for (size_t i = 0; i < reply->elements; i++)
    if (reply->element[i]->type == REDIS_REPLY_STRING)
      tell_gone(cl, reply->element[i]->str, reply->element[i]->len);
}

void wschat__cluster_presence_tick(struct wschat__cluster *cl, uint64_t now) {
  if (!cl->up || now - cl->last_reap < WSCHAT__CLUSTER_REAP_MS)
    return;
  cl->last_reap = now;
  char chan[64];
  presence_chan(cl, chan, sizeof(chan));
  const char *a[] = {"EVALSHA", cl->sha[WSCHAT__SCRIPT_REAP], "0", chan};
  wschat__cluster_cmd(cl, on_reaped, cl, 4, a, NULL);
}

/* ---- life ---- */

void wschat__cluster_presence_up(struct wschat__cluster *cl) {
  /* This node again: its heartbeat first (a reap must not take it), then
   * its names (a name another node took meanwhile closes its member
   * here), then everyone else's. */
  cl->last_beat = 0;
  char key[200], ttl[16];
  snprintf(key, sizeof(key), "wschat:hb:%s", cl->node);
  snprintf(ttl, sizeof(ttl), "%d", WSCHAT__CLUSTER_NODE_TTL_MS);
  const char *hb[] = {"SET", key, "1", "PX", ttl};
  wschat__cluster_cmd(cl, on_done, NULL, 5, hb, NULL);
  const char *add[] = {"SADD", "wschat:nodes", cl->node};
  wschat__cluster_cmd(cl, on_done, NULL, 3, add, NULL);
  struct wschat__rooms *rs = &cl->chat->rooms;
  for (size_t i = 0; i < rs->nall; i++)
    changed(cl, rs->all[i]);
  cl->snapshot_pending = 1;
  const char *all[] = {"HGETALL", "wschat:users"};
  if (wschat__cluster_cmd(cl, on_snapshot, cl, 2, all, NULL) != 0)
    cl->snapshot_pending = 0;
}

int wschat__cluster_presence_init(struct wschat__cluster *cl) {
  cl->presence.ops = &cluster_presence_ops;
  wschat__map_init(&cl->remote);
  cl->local = wschat__presence_local_new();
  return cl->local ? 0 : WSCHAT_ENOMEM;
}

void wschat__cluster_presence_free(struct wschat__cluster *cl) {
  wschat__map_each(&cl->remote, free_remote, NULL);
  wschat__map_free(&cl->remote);
  for (size_t i = 0; i < cl->ndeltas; i++)
    free(cl->deltas[i].p);
  free(cl->deltas);
  free(cl->waits);
  cl->waits = NULL;
  cl->nwaits = 0;
  if (cl->local)
    cl->local->ops->free(cl->local);
  cl->local = NULL;
}

void wschat__cluster_release_waits(struct wschat__cluster *cl) {
  size_t n = cl->nwaits;
  struct wschat__name_wait *w = cl->waits;
  cl->waits = NULL;
  cl->nwaits = cl->capwaits = 0;
  for (size_t i = 0; i < n; i++)
    if (!cl->up ||
        wschat__cluster_name_check(cl, w[i].name, w[i].client, w[i].done) !=
            0) {
      struct wschat_client *c = wschat__server_client(cl->srv, w[i].client);
      if (c != NULL)
        w[i].done(c);
    }
  free(w);
}
