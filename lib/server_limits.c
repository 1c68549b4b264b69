/*
 * server_limits: the server's limits on connections (--max-connections,
 * --max-per-ip: refused with 503 or 429 before any request) and on the
 * output queued by all of them together (--max-output-total: the largest
 * queues are closed first). See server.h for the calls.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "server.h"

/* ---- limits on connections ---- */

/* How many clients of one peer address are admitted. */
struct wschat__peer_count {
  size_t n;
  char addr[INET6_ADDRSTRLEN]; /* the key in srv->peers */
};

/* At most this many refusals (their HTTP answer being written) at once;
 * past it a connection over a limit is closed without an answer. */
#define REFUSING_MAX 1024

/* The address of c's peer, without the port: the unit of the per-address
 * limit. */
static void peer_addr(struct wschat_client *c, char *out, size_t cap) {
  char peer[INET6_ADDRSTRLEN + 16];
  wschat__conn_peer(&c->conn, peer, sizeof(peer));
  char *colon = strrchr(peer, ':');
  if (colon != NULL)
    *colon = '\0';
  const char *a = peer;
  if (*a == '[') {
    a++;
    size_t n = strlen(a);
    if (n > 0 && a[n - 1] == ']')
      peer[n] = '\0'; /* the ']' (a starts one byte into peer) */
  }
  size_t n = strlen(a);
  if (n >= cap)
    n = cap - 1;
  memcpy(out, a, n);
  out[n] = '\0';
}

/* Answers a connection over a limit at once, before its request: an HTTP
 * status and close. No hook runs: it never made a request. */
static void refuse(struct wschat_server *srv, struct wschat_client *c,
                   int status, const char *why) {
  wschat__metrics_refused(&c->conn,
                          status == 503 ? WSCHAT__REFUSED_MAX_CONNECTIONS
                                        : WSCHAT__REFUSED_PER_IP,
                          status);
  if (srv->nrefusing >= REFUSING_MAX) {
    wschat__conn_drop(&c->conn, status);
    return;
  }
  c->admission = 2;
  srv->nrefusing++;
  char buf[256];
  size_t n = wschat__http_write_response(buf, sizeof(buf), status, why, 0);
  wschat__conn_respond(&c->conn, status, buf, n);
}

/* A new connection: counted, or refused with 503 (the server is full) or
 * 429 (its address has max_per_ip already). */
void wschat__server_admit(struct wschat_server *srv, struct wschat_client *c) {
  if (srv->max_connections && srv->nadmitted >= srv->max_connections) {
    refuse(srv, c, 503, "too many connections, try again later");
    return;
  }
  struct wschat__peer_count *p = NULL;
  if (srv->max_per_ip) {
    char addr[INET6_ADDRSTRLEN];
    peer_addr(c, addr, sizeof(addr));
    p = wschat__map_get(&srv->peers, addr);
    if (p != NULL && p->n >= srv->max_per_ip) {
      refuse(srv, c, 429, "too many connections from your address");
      return;
    }
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
      memcpy(p->addr, addr, sizeof(p->addr));
      if (wschat__map_put(&srv->peers, p->addr, p) != 0) {
        free(p); /* no memory: this one is not counted by address */
        p = NULL;
      }
    }
    if (p != NULL)
      p->n++;
  }
  c->peer = p;
  c->admission = 1;
  srv->nadmitted++;
}

void wschat__server_unadmit(struct wschat_server *srv,
                            struct wschat_client *c) {
  if (c->admission == 2)
    srv->nrefusing--;
  if (c->admission != 1)
    return;
  srv->nadmitted--;
  struct wschat__peer_count *p = c->peer;
  if (p != NULL && --p->n == 0) {
    wschat__map_del(&srv->peers, p->addr);
    free(p);
  }
  c->peer = NULL;
  c->admission = 0;
}

/* ---- the ceiling on queued output ---- */

/* The output queued by all clients passed max_output_total: the largest
 * queues are closed first (1008), each after the socket took what it
 * could (a fast reader handed a burst is not a slow one), until the total
 * is an eighth under the ceiling. Dooms only: safe while a room is
 * walked. */
void wschat__server_shed(struct wschat_server *srv) {
  const struct wschat__conn_env *env = &srv->sess.conn;
  if (srv->shedding)
    return;
  srv->shedding = 1;
  size_t low = env->max_output_total - env->max_output_total / 8;
  while (srv->queued_total > low) {
    struct wschat__conn *big = NULL;
    size_t most = 0;
    for (size_t i = 0; i < srv->nconns; i++) {
      struct wschat__conn *k = &srv->conns[i]->conn;
      size_t cost = wschat__outq_cost(&k->q);
      if (k->state == WSCHAT__CONN_OPEN && !k->doom && cost > most) {
        most = cost;
        big = k;
      }
    }
    if (big == NULL)
      break;
    wschat__conn_write_now(big); /* each turn empties or closes one */
    if (!wschat__outq_empty(&big->q))
      wschat__conn_shed(big, 1008);
  }
  srv->shedding = 0;
}

