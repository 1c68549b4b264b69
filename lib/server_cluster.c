/*
 * server_cluster: a server as a cluster node (wschat_server_set_cluster):
 * the cluster's bus and presence take the place of the chat's local ones,
 * its Redis history becomes the server's store if asked, and the cluster
 * starts with the listener and closes with the server's handles.
 *
 * Owns: srv->cluster (freed in wschat_server_free(), after the chat).
 */
#include <string.h>

#include <openssl/rand.h>

#include "chat.h"
#include "cluster.h"
#include "json_chat.h"
#include "server.h"

static int live_upto(void *user, const char *room, int at_sync,
                     uint64_t *upto) {
  return wschat__cluster_live_upto(user, room, at_sync, upto);
}

static int claim_async(void *user, struct wschat__member *m, const char *name,
                       void (*done)(struct wschat__member *m,
                                    const char *name, int rc, void *arg),
                       void (*drop)(void *arg), void *arg) {
  return wschat__cluster_claim_async(user, m, name, done, drop, arg);
}

static int name_check(void *user, const char *name, uint64_t client,
                      void (*done)(struct wschat_client *c)) {
  return wschat__cluster_name_check(user, name, client, done);
}

static void remote_only(void *user, struct wschat_event *ev) {
  wschat__cluster_publish_remote(user, ev);
}

static void typing_out(void *user, const char *room, const char *from) {
  wschat__cluster_typing(user, room, from);
}

static void typing_in(void *user, const char *room, const char *from) {
  struct wschat_server *srv = user;
  wschat__json_typing_deliver(&srv->chat, room, from, NULL);
}

static int node_id_ok(const char *id) {
  if (id == NULL || id[0] == '\0')
    return 1;
  size_t n = strlen(id);
  if (n > 100)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)id[i] <= ' ' || id[i] == 0x7f)
      return 0;
  return 1;
}

int wschat_server_set_cluster(struct wschat_server *srv, const char *url,
                              const struct wschat_cluster_options *opt) {
  struct wschat__redis_url u;
  const char *node = opt ? opt->node_id : NULL;
  if (srv == NULL || wschat__redis_url_parse(url, &u) != 0 ||
      !node_id_ok(node))
    return WSCHAT_EINVAL;
  int history = opt != NULL && opt->history;
  if (srv->listening || srv->sess.shutting_down || srv->cluster != NULL ||
      (history && (srv->history != NULL || srv->history_closed)) ||
      srv->chat.rooms.nall > 0)
    return WSCHAT_ESTATE;
  struct wschat__cluster *cl =
      wschat__cluster_new(srv, url, node, opt ? opt->max_per_room : 0);
  if (cl == NULL)
    return WSCHAT_ENOMEM;
  struct wschat__chat *ch = &srv->chat;
  /* The chat's own bus and presence give way (nobody is in the chat). */
  cl->deliver = wschat__session_deliver;
  cl->deliver_user = srv;
  ch->bus->ops->free(ch->bus);
  ch->presence->ops->free(ch->presence);
  ch->bus = &cl->bus;
  ch->presence = &cl->presence;
  ch->deferred = 1;
  /* Guest numbers from a random start: two nodes naming a guest at the
   * same moment would otherwise pick the same free guest-N. */
  uint32_t r = 0;
  RAND_bytes((unsigned char *)&r, sizeof(r));
  ch->next_guest = 1000 + r % 9000000u;
  ch->live_upto = live_upto;
  ch->live_user = cl;
  ch->claim_async = claim_async;
  ch->claim_user = cl;
  ch->name_check = name_check;
  ch->remote_only = remote_only;
  ch->remote_user = cl;
  ch->typing_out = typing_out;
  ch->typing_user = cl;
  cl->typing_in = typing_in;
  cl->typing_user = srv;
  if (history) {
    cl->history_on = 1;
    srv->history = &cl->history;
    srv->history_builtin = 0;
    ch->history = &cl->history;
    ch->on_enter = wschat__session_on_enter;
    ch->on_enter_user = srv;
    srv->sess.history = &cl->history;
  }
  srv->cluster = cl;
  return 0;
}

void wschat__server_cluster_start(struct wschat_server *srv) {
  if (srv->cluster == NULL)
    return;
  srv->cluster->loop = srv->loop;
  if (wschat__cluster_start(srv->cluster) == 0)
    srv->handles_open++;
}

static void closed(void *user) { wschat__server_handle_done(user); }

void wschat__server_cluster_close(struct wschat_server *srv) {
  struct wschat__cluster *cl = srv->cluster;
  if (cl == NULL || !cl->tick_on)
    return;
  cl->on_closed = closed;
  cl->closed_user = srv;
  wschat__cluster_close(cl);
}

void wschat__server_cluster_free(struct wschat_server *srv) {
  struct wschat__cluster *cl = srv->cluster;
  if (cl == NULL)
    return;
  wschat__cluster_close(cl); /* never listened: no tick; connections */
  wschat__cluster_free(cl);
  srv->cluster = NULL;
}

void wschat__server_cluster_flush(struct wschat_server *srv) {
  wschat__cluster_flush(srv->cluster);
}
