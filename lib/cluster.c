/*
 * cluster: the Redis connections of a cluster node (see cluster.h): two
 * hiredis async contexts on the server's loop, one for commands (every
 * command is pipelined: nothing waits for a reply before the next is
 * sent) and one in SUBSCRIBE mode (RESP2 has no push on a command
 * connection). A lost connection drops both; they come back together
 * with backoff (100 ms doubling to 2 s), reload the scripts, say hello
 * (epoch, id floor, the outage's gap) and then the bus resubscribes and
 * the presence re-registers this node's names.
 *
 * Never waits: a command is sent or refused (-1: not up) at once.
 */
#include "cluster.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include "chat.h"
#include "event.h"
#include "log.h"
#include "server.h"

/* ---- the scripts ---- */

/* ARGV: room key, payload, maxlen, room channel, stored (1/0). */
static const char script_pub[] =
    "local id = redis.call('INCR', 'wschat:id')\n"
    "local rk = 'wschat:room:' .. ARGV[1]\n"
    "local seq = redis.call('HINCRBY', rk, 'seq', 1)\n"
    "redis.call('HSET', rk, 'id', id)\n"
    "redis.call('XADD', 'wschat:hist:' .. ARGV[1], 'MAXLEN', '~', ARGV[3],"
    " id .. '-0', 's', seq, 'k', ARGV[5], 'e', ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[4], id .. ':' .. seq .. ':' .. ARGV[2])\n"
    "return {id, seq}\n";

/* ARGV: node channel ('' : none), payload. */
static const char script_id[] =
    "local id = redis.call('INCR', 'wschat:id')\n"
    "if ARGV[1] ~= '' then\n"
    "  redis.call('PUBLISH', ARGV[1], id .. ':0:' .. ARGV[2])\n"
    "end\n"
    "return {id, 0}\n";

/* ARGV: lower name, node, value, presence channel. 1: ours; 0: another
 * node's. */
static const char script_claim[] =
    "local v = redis.call('HGET', 'wschat:users', ARGV[1])\n"
    "if v and string.sub(v, 1, #ARGV[2] + 1) ~= ARGV[2] .. '\\n' then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', 'wschat:users', ARGV[1], ARGV[3])\n"
    "redis.call('SADD', 'wschat:nodeusers:' .. ARGV[2], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[4], 'S' .. ARGV[1] .. '\\30' .. ARGV[3])\n"
    "return 1\n";

/* ARGV: lower name, node, presence channel. */
static const char script_release[] =
    "local v = redis.call('HGET', 'wschat:users', ARGV[1])\n"
    "if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\n' then\n"
    "  redis.call('HDEL', 'wschat:users', ARGV[1])\n"
    "  redis.call('SREM', 'wschat:nodeusers:' .. ARGV[2], ARGV[1])\n"
    "  redis.call('PUBLISH', ARGV[3], 'D' .. ARGV[1] .. '\\30' .. ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* ARGV: presence channel. Every node whose heartbeat key is gone is taken
 * out of wschat:nodes with its names, by whichever live node runs this
 * first (a script runs alone: exactly one gets each dead node's list). */
static const char script_reap[] =
    "local out = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', 'wschat:nodes')) do\n"
    "  if redis.call('EXISTS', 'wschat:hb:' .. n) == 0 then\n"
    "    redis.call('SREM', 'wschat:nodes', n)\n"
    "    local set = 'wschat:nodeusers:' .. n\n"
    "    for _, u in ipairs(redis.call('SMEMBERS', set)) do\n"
    "      local v = redis.call('HGET', 'wschat:users', u)\n"
    "      if v and string.sub(v, 1, #n + 1) == n .. '\\n' then\n"
    "        redis.call('HDEL', 'wschat:users', u)\n"
    "        redis.call('PUBLISH', ARGV[1], 'D' .. u .. '\\30' .. n)\n"
    "        table.insert(out, v)\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', set)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ARGV: epoch candidate, the largest id this node knows, an outage's
 * first and last local-only ids (0 0: none). Returns the epoch. */
static const char script_hello[] =
    "redis.call('SET', 'wschat:epoch', ARGV[1], 'NX')\n"
    "local cur = tonumber(redis.call('GET', 'wschat:id') or '0')\n"
    "if tonumber(ARGV[2]) > cur then\n"
    "  redis.call('SET', 'wschat:id', ARGV[2])\n"
    "end\n"
    "if ARGV[3] ~= '0' then\n"
    "  redis.call('ZADD', 'wschat:gaps', ARGV[4], ARGV[3] .. ':' .. ARGV[4])\n"
    "end\n"
    "return redis.call('GET', 'wschat:epoch')\n";

/* ARGV: room key, kind (last/before/after), id, limit. Returns
 * {entries, the seq of the entry at or before id (after: -1 unknown),
 * the room's seq, the end of the newest outage gap (0: none)}. */
static const char script_read[] =
    "local k = 'wschat:hist:' .. ARGV[1]\n"
    "local lim = tonumber(ARGV[4])\n"
    "local e\n"
    "if ARGV[2] == 'last' then\n"
    "  e = redis.call('XREVRANGE', k, '+', '-', 'COUNT', lim)\n"
    "elseif ARGV[2] == 'before' then\n"
    "  e = redis.call('XREVRANGE', k, '(' .. ARGV[3] .. '-0', '-', 'COUNT', lim)\n"
    "else\n"
    "  e = redis.call('XRANGE', k, '(' .. ARGV[3] .. '-0', '+', 'COUNT', lim)\n"
    "end\n"
    "local prev = -1\n"
    "if ARGV[2] == 'after' then\n"
    "  local p = redis.call('XREVRANGE', k, ARGV[3] .. '-0', '-', 'COUNT', 1)\n"
    "  if #p > 0 then prev = tonumber(p[1][2][2])\n"
    "  elseif tonumber(ARGV[3]) == 0 then prev = 0 end\n"
    "end\n"
    "local last = tonumber(redis.call('HGET', 'wschat:room:' .. ARGV[1], "
    "'seq') or '0')\n"
    "local g = redis.call('ZREVRANGE', 'wschat:gaps', 0, 0, 'WITHSCORES')\n"
    "local ge = 0\n"
    "if #g > 0 then ge = tonumber(g[2]) end\n"
    "return {e, prev, last, ge}\n";

static const char *const scripts[WSCHAT__SCRIPTS] = {
    script_pub,  script_id,    script_claim, script_release,
    script_reap, script_hello, script_read,
};

/* ---- helpers ---- */

void wschat__cluster_lower(char *out, size_t cap, const char *s) {
  size_t i = 0;
  for (; s[i] && i + 1 < cap; i++)
    out[i] = (char)tolower((unsigned char)s[i]);
  out[i] = '\0';
}

uint64_t wschat__cluster_now(const struct wschat__cluster *cl) {
  return uv_now(cl->loop);
}

void wschat__cluster_log(struct wschat__cluster *cl, int level,
                         const char *what, const char *detail) {
  struct wschat_log_field f[] = {{"redis", cl->url.host, 0},
                                 {"node", cl->node, 0},
                                 {"detail", detail ? detail : "", 0}};
  wschat__log_event(&cl->srv->log, level, what, f, 3);
}

int wschat__cluster_cmd(struct wschat__cluster *cl,
                        void (*fn)(struct redisAsyncContext *, void *, void *),
                        void *privdata, int argc, const char **argv,
                        const size_t *argvlen) {
  if (cl->cmd == NULL || !cl->up)
    return -1;
  return redisAsyncCommandArgv(cl->cmd, fn, privdata, argc, argv, argvlen) ==
                 REDIS_OK
             ? 0
             : -1;
}

void wschat__cluster_flush(struct wschat__cluster *cl) {
  if (cl->sub != NULL && cl->up)
    redisAsyncHandleWrite(cl->sub);
  if (cl->cmd != NULL && cl->up)
    redisAsyncHandleWrite(cl->cmd);
}

int wschat__cluster_sub(struct wschat__cluster *cl,
                        void (*fn)(struct redisAsyncContext *, void *, void *),
                        int argc, const char **argv, const size_t *argvlen) {
  if (cl->sub == NULL || !cl->sub_up)
    return -1;
  return redisAsyncCommandArgv(cl->sub, fn, cl, argc, argv, argvlen) ==
                 REDIS_OK
             ? 0
             : -1;
}

uint64_t wschat__cluster_reply_u64(const redisReply *r) {
  if (r == NULL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER)
    return (uint64_t)r->integer;
  if (r->type == REDIS_REPLY_STRING)
    return strtoull(r->str, NULL, 10);
  return 0;
}

/* ---- connecting ---- */

/* Keeps ac in dying[] until hiredis frees it; when the list is full it
 * stays untracked (hiredis still frees it when its replies come). */
static void note_dying(struct wschat__cluster *cl, redisAsyncContext *ac) {
  for (int i = 0; i < WSCHAT__CLUSTER_DYING; i++)
    if (cl->dying[i] == NULL) {
      cl->dying[i] = ac;
      return;
    }
}

static void forget_dying(struct wschat__cluster *cl,
                         const redisAsyncContext *ac) {
  for (int i = 0; i < WSCHAT__CLUSTER_DYING; i++)
    if (cl->dying[i] == ac)
      cl->dying[i] = NULL;
}

/* hiredis calls its adapter's cleanup on every path that frees a
 * context (a reply, an error, a timeout, a disconnect with nothing
 * pending): the one sure sign that it is gone. */
static void cleanup(void *privdata) {
  redisLibuvEvents *p = privdata;
  redisAsyncContext *ac = p->context;
  if (ac != NULL && ac->data != NULL)
    forget_dying(ac->data, ac);
  redisLibuvCleanup(privdata);
}

static void drop(struct wschat__cluster *cl) {
  /* Both go: they come back together. The callbacks of what was sent
   * run now with no reply (the bus answers them locally). */
  redisAsyncContext *a = cl->cmd, *b = cl->sub;
  cl->cmd = cl->sub = NULL;
  cl->cmd_up = cl->sub_up = 0;
  if (a) {
    note_dying(cl, a);
    redisAsyncDisconnect(a);
  }
  if (b) {
    note_dying(cl, b);
    redisAsyncDisconnect(b);
  }
}

void wschat__cluster_lost(struct wschat__cluster *cl) {
  int was = cl->up;
  cl->up = 0;
  uint64_t now = wschat__cluster_now(cl);
  if (was) {
    cl->down_since = now;
    wschat__cluster_log(cl, WSCHAT_LOG_WARN, "cluster_down",
                        "redis unreachable: serving local members only");
    wschat__cluster_bus_down(cl);
  }
  if (cl->cmd || cl->sub)
    drop(cl);
  if (!cl->closing) {
    cl->next_try = now + cl->backoff_ms;
    cl->backoff_ms = cl->backoff_ms * 2 > WSCHAT__CLUSTER_BACKOFF_MAX_MS
                         ? WSCHAT__CLUSTER_BACKOFF_MAX_MS
                         : cl->backoff_ms * 2;
  }
}

static void check_up(struct wschat__cluster *cl) {
  if (cl->up || !cl->cmd_up || !cl->sub_up)
    return;
  cl->up = 1;
  cl->backoff_ms = WSCHAT__CLUSTER_BACKOFF_MIN_MS;
  if (cl->down_since) {
    cl->st.outage_ms_total += wschat__cluster_now(cl) - cl->down_since;
    cl->down_since = 0;
  }
  cl->local_from = 0;
  cl->gen++;
  cl->st.reconnects += cl->gen > 1;
  wschat__cluster_log(cl, WSCHAT_LOG_INFO, "cluster_up",
                      cl->gen > 1 ? "reconnected" : "connected");
  wschat__cluster_bus_up(cl);
  wschat__cluster_presence_up(cl);
  if (cl->nwaits)
    wschat__cluster_release_waits(cl);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  struct wschat__cluster *cl = ac->data;
  (void)status;
  if (cl == NULL)
    return;
  forget_dying(cl, ac); /* hiredis frees it after this call */
  if (ac == cl->cmd)
    cl->cmd = NULL, cl->cmd_up = 0;
  else if (ac == cl->sub)
    cl->sub = NULL, cl->sub_up = 0;
  else
    return;
  wschat__cluster_lost(cl);
}

static void on_hello(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = priv;
  redisReply *reply = r;
  if (cl == NULL || ac != cl->cmd)
    return;
  if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
    wschat__cluster_log(cl, WSCHAT_LOG_ERROR, "cluster_error",
                        reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                  : "hello");
    wschat__cluster_lost(cl);
    return;
  }
  uint64_t e = strtoull(reply->str, NULL, 16);
  if (cl->epoch != 0 && e != cl->epoch)
    wschat__cluster_log(cl, WSCHAT_LOG_WARN, "cluster_epoch",
                        "redis lost its data: history starts again");
  cl->epoch = e;
  cl->cmd_up = 1;
  check_up(cl);
}

static void on_loaded(redisAsyncContext *ac, void *r, void *priv) {
  struct wschat__cluster *cl = ac->data;
  redisReply *reply = r;
  size_t k = (size_t)(uintptr_t)priv;
  if (cl == NULL || ac != cl->cmd || reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
    memcpy(cl->sha[k], reply->str, 41);
  else
    wschat__cluster_log(cl, WSCHAT_LOG_ERROR, "cluster_error",
                        reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : "SCRIPT LOAD");
}

static void on_ignore(redisAsyncContext *ac, void *r, void *priv) {
  (void)ac;
  (void)r;
  (void)priv;
}

static void setup_cmd(struct wschat__cluster *cl) {
  redisAsyncContext *ac = cl->cmd;
  if (cl->url.db != 0)
    redisAsyncCommand(ac, on_ignore, NULL, "SELECT %d", cl->url.db);
  for (size_t k = 0; k < WSCHAT__SCRIPTS; k++)
    redisAsyncCommand(ac, on_loaded, (void *)(uintptr_t)k, "SCRIPT LOAD %s",
                      scripts[k]);
  uint64_t cand = 0;
  while (cand == 0 && RAND_bytes((unsigned char *)&cand, sizeof(cand)) == 1)
    ;
  char e[17], mx[24], a[24], b[24];
  snprintf(e, sizeof(e), "%016llx", (unsigned long long)(cand ? cand : 1));
  snprintf(mx, sizeof(mx), "%llu", (unsigned long long)cl->max_id);
  snprintf(a, sizeof(a), "%llu", (unsigned long long)cl->local_from);
  snprintf(b, sizeof(b), "%llu",
           (unsigned long long)(cl->local_from ? cl->max_id : 0));
  redisAsyncCommand(ac, on_hello, cl, "EVAL %s 0 %s %s %s %s", script_hello,
                    e, mx, a, b);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  struct wschat__cluster *cl = ac->data;
  if (cl == NULL)
    return;
  if (status != REDIS_OK) {
    /* hiredis frees ac after this callback */
    forget_dying(cl, ac);
    if (ac == cl->cmd)
      cl->cmd = NULL;
    else if (ac == cl->sub)
      cl->sub = NULL;
    wschat__cluster_lost(cl);
    return;
  }
  if (ac == cl->cmd) {
    setup_cmd(cl);
  } else if (ac == cl->sub) {
    cl->sub_up = 1;
    check_up(cl);
  }
}

static redisAsyncContext *open_one(struct wschat__cluster *cl) {
  redisAsyncContext *ac = redisAsyncConnect(cl->url.host, cl->url.port);
  if (ac == NULL)
    return NULL;
  if (ac->err || redisLibuvAttach(ac, cl->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = cl;
  ac->ev.cleanup = cleanup;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

static void try_connect(struct wschat__cluster *cl, uint64_t now) {
  cl->connect_at = now;
  cl->cmd = open_one(cl);
  cl->sub = cl->cmd ? open_one(cl) : NULL;
  if (cl->cmd == NULL || cl->sub == NULL) {
    if (cl->cmd) {
      cl->cmd->data = NULL;
      redisAsyncFree(cl->cmd);
      cl->cmd = NULL;
    }
    wschat__cluster_lost(cl);
  }
}

/* ---- the tick ---- */

static void beat(struct wschat__cluster *cl) {
  char key[200], ttl[16];
  snprintf(key, sizeof(key), "wschat:hb:%s", cl->node);
  snprintf(ttl, sizeof(ttl), "%d", WSCHAT__CLUSTER_NODE_TTL_MS);
  const char *a[] = {"SET", key, "1", "PX", ttl};
  wschat__cluster_cmd(cl, on_ignore, NULL, 5, a, NULL);
  const char *b[] = {"SADD", "wschat:nodes", cl->node};
  wschat__cluster_cmd(cl, on_ignore, NULL, 3, b, NULL);
}

static void on_tick(uv_timer_t *t) {
  struct wschat__cluster *cl = t->data;
  uint64_t now = wschat__cluster_now(cl);
  if (cl->closing)
    return;
  if (cl->cmd == NULL && cl->sub == NULL && now >= cl->next_try)
    try_connect(cl, now);
  else if (!cl->up && (cl->cmd || cl->sub) &&
           now - cl->connect_at > WSCHAT__CLUSTER_CONNECT_TIMEOUT_MS)
    wschat__cluster_lost(cl); /* a connect or hello that never came */
  if (cl->up && now - cl->last_beat >= WSCHAT__CLUSTER_HEARTBEAT_MS) {
    cl->last_beat = now;
    beat(cl);
  }
  if (cl->nwaits && !cl->up &&
      now - cl->started_at > WSCHAT__CLUSTER_CONNECT_TIMEOUT_MS)
    wschat__cluster_release_waits(cl); /* Redis is not there: alone */
  wschat__cluster_bus_tick(cl, now);
  wschat__cluster_presence_tick(cl, now);
}

/* ---- life ---- */

struct wschat__cluster *wschat__cluster_new(struct wschat_server *srv,
                                            const char *url, const char *node,
                                            size_t max_per_room) {
  struct wschat__cluster *cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return NULL;
  if (wschat__redis_url_parse(url, &cl->url) != 0) {
    free(cl);
    return NULL;
  }
  cl->srv = srv;
  cl->chat = &srv->chat;
  cl->loop = srv->loop;
  cl->max_per_room = max_per_room ? max_per_room
                                  : WSCHAT__HISTORY_MAX_PER_ROOM;
  if (node && node[0]) {
    snprintf(cl->node, sizeof(cl->node), "%s", node);
  } else {
    char host[64] = "node";
    size_t hl = sizeof(host);
    uv_os_gethostname(host, &hl);
    unsigned r = 0;
    RAND_bytes((unsigned char *)&r, sizeof(r));
    snprintf(cl->node, sizeof(cl->node), "%s:%d:%08x", host,
             (int)uv_os_getpid(), r);
  }
  snprintf(cl->node_chan, sizeof(cl->node_chan), "wschat:%d:n:%s",
           cl->url.db, cl->node);
  uint64_t h = 1469598103934665603ull; /* FNV-1a of the node id */
  for (const char *p = cl->node; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  cl->lane = h % WSCHAT__CLUSTER_LANES;
  cl->backoff_ms = WSCHAT__CLUSTER_BACKOFF_MIN_MS;
  wschat__cluster_bus_init(cl);
  wschat__cluster_history_init(cl);
  if (wschat__cluster_presence_init(cl) != 0) {
    wschat__cluster_free(cl);
    return NULL;
  }
  return cl;
}

int wschat__cluster_start(struct wschat__cluster *cl) {
  if (uv_timer_init(cl->loop, &cl->tick) != 0)
    return WSCHAT_ENOMEM;
  cl->tick.data = cl;
  cl->tick_on = 1;
  cl->started_at = wschat__cluster_now(cl);
  uv_timer_start(&cl->tick, on_tick, 0, WSCHAT__CLUSTER_TICK_MS);
  return 0;
}

static void on_tick_closed(uv_handle_t *h) {
  struct wschat__cluster *cl = h->data;
  cl->tick.data = NULL;
  if (cl->on_closed)
    cl->on_closed(cl->closed_user);
}

void wschat__cluster_close(struct wschat__cluster *cl) {
  if (cl == NULL || cl->closing)
    return;
  /* Its names go as its members exit (RELEASE); the key goes now, so
   * that a node that died during a shutdown is reaped at once. */
  if (cl->up) {
    char key[200];
    snprintf(key, sizeof(key), "wschat:hb:%s", cl->node);
    const char *d[] = {"DEL", key};
    wschat__cluster_cmd(cl, on_ignore, NULL, 2, d, NULL);
  }
  /* What is queued (the leaves of a shutdown, the DEL) leaves now: the
   * connections are freed below, with whatever they still hold. */
  wschat__cluster_flush(cl);
  cl->closing = 1;
  cl->up = 0;
  if (cl->nwaits)
    wschat__cluster_release_waits(cl);
  wschat__cluster_bus_down(cl);
  /* Disconnect writes what is queued (the DEL) before closing. */
  drop(cl);
  if (cl->tick_on) {
    cl->tick_on = 0;
    uv_timer_stop(&cl->tick);
    uv_close((uv_handle_t *)&cl->tick, on_tick_closed);
  }
}

void wschat__cluster_free(struct wschat__cluster *cl) {
  if (cl == NULL)
    return;
  /* A connection still waiting for replies when the loop ran out of
   * work (its poll stopped) would keep its handle open for good, and the
   * loop could not be closed: free it now (its callbacks get no reply;
   * hiredis closes its handle, which the caller's loop finishes). */
  for (int i = 0; i < WSCHAT__CLUSTER_DYING; i++) {
    redisAsyncContext *ac = cl->dying[i];
    if (ac != NULL) {
      cl->dying[i] = NULL;
      ac->data = NULL;
      redisAsyncFree(ac);
    }
  }
  wschat__cluster_bus_free(cl);
  wschat__cluster_presence_free(cl);
  free(cl);
}

void wschat__cluster_metrics(struct wschat__cluster *cl,
                             wschat__cluster_line_fn line, void *o) {
  uint64_t now = wschat__cluster_now(cl);
  uint64_t out = cl->st.outage_ms_total +
                 (cl->down_since ? now - cl->down_since : 0);
  line(o, "wschat_cluster_up", "gauge",
       "1 while this node's Redis connections are up (0: local only).",
       (uint64_t)cl->up);
  line(o, "wschat_cluster_reconnects_total", "counter",
       "Times the Redis connections came back after a loss.",
       cl->st.reconnects);
  line(o, "wschat_cluster_outage_seconds_total", "counter",
       "Seconds without Redis since start.", out / 1000);
  line(o, "wschat_cluster_published_total", "counter",
       "Events this node sent through Redis.", cl->st.published);
  line(o, "wschat_cluster_received_total", "counter",
       "Events from other nodes delivered here.", cl->st.received);
  line(o, "wschat_cluster_local_only_total", "counter",
       "Events delivered on this node only (Redis down or the queue full).",
       cl->st.local_only);
  line(o, "wschat_cluster_gaps_total", "counter",
       "Room events this node never got (skipped after a wait).",
       cl->st.gaps);
  line(o, "wschat_cluster_duplicates_dropped_total", "counter",
       "Room events received twice and delivered once.", cl->st.dup_dropped);
  line(o, "wschat_cluster_name_conflicts_total", "counter",
       "Local members closed: another node took their name first.",
       cl->st.name_conflicts);
  line(o, "wschat_cluster_reaped_total", "counter",
       "Members of dead nodes removed by this node.", cl->st.reaped);
  line(o, "wschat_cluster_held_events", "gauge",
       "Room events waiting here for an earlier one (the order).",
       wschat__cluster_held(cl));
  line(o, "wschat_cluster_pending_ops", "gauge",
       "Operations waiting for Redis's reply.", cl->nops);
}
