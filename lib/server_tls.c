/*
 * server_tls: the public calls that turn TLS on for a server and reload
 * its certificate (wschat_server_set_tls(), wschat_server_reload_tls()).
 * The TLS itself is stream_tls; the server owns its state
 * (srv->sess.conn.tls) and frees it in wschat_server_free().
 */
#include "log.h"
#include "server.h"
#include "tls_ctx.h"

static void log_error(struct wschat_server *srv, const char *event,
                      const char *why) {
  struct wschat_log_field f[] = {{"error", why, 0}};
  wschat__log_event(&srv->log, WSCHAT_LOG_ERROR, event, f, 1);
}

int wschat_server_set_tls(struct wschat_server *srv, const char *cert_path,
                          const char *key_path, const char *ca_path) {
  if (srv == NULL || cert_path == NULL || key_path == NULL)
    return WSCHAT_EINVAL;
  if (srv->listening || srv->sess.conn.tls != NULL ||
      srv->sess.shutting_down)
    return WSCHAT_ESTATE;
  char err[512];
  int r = wschat__tls_new(&srv->sess.conn.tls, cert_path, key_path, ca_path,
                          &srv->metrics, &srv->log, err, sizeof(err));
  if (r == -2)
    return WSCHAT_ENOMEM;
  if (r != 0) {
    log_error(srv, "tls", err);
    return WSCHAT_ETLS;
  }
  return 0;
}

int wschat_server_reload_tls(struct wschat_server *srv) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (srv->sess.conn.tls == NULL)
    return WSCHAT_ESTATE;
  char err[512];
  if (wschat__tls_reload(srv->sess.conn.tls, err, sizeof(err)) != 0) {
    log_error(srv, "tls_reload", err);
    return WSCHAT_ETLS;
  }
  struct wschat_log_field f[] = {{"result", "ok", 0}};
  wschat__log_event(&srv->log, WSCHAT_LOG_INFO, "tls_reload", f, 1);
  return 0;
}
