/*
 * server_metrics: the server's counters (metrics.h) and gauges rendered
 * in the Prometheus text format (wschat_server_metrics()), and the count
 * and log line of a refused connection. Server level: it reads the
 * server, while metrics.h, which the connections bump, knows none of it.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "deflate.h"
#include "log.h"
#include "server.h"

/* The text being written: what fits in buf, and the length of all of it. */
struct out {
  char *buf;
  size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  if (n <= 0)
    return;
  size_t k = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
  if (o->len < o->cap) {
    size_t room = o->cap - o->len;
    memcpy(o->buf + o->len, tmp, k < room ? k : room);
  }
  o->len += k;
}

/* HELP and TYPE of one metric family. */
static void family(struct out *o, const char *name, const char *type,
                   const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct out *o, const char *name, const char *type,
                const char *help, uint64_t v) {
  family(o, name, type, help);
  put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void cluster_line(void *o, const char *name, const char *type,
                         const char *help, uint64_t v) {
  one(o, name, type, help, v);
}

static const char *const refused_reason[WSCHAT__REFUSED_KINDS] = {
    "max_connections", "per_ip", "origin", "other"};

void wschat__metrics_refused(struct wschat__conn *c, int kind, int status) {
  c->env->metrics->refused[kind]++;
  if (!wschat__log_on(c->env->log, WSCHAT_LOG_INFO))
    return;
  char peer[64];
  wschat__conn_peer(c, peer, sizeof(peer));
  struct wschat_log_field f[] = {
      {"peer", peer, 0},
      {"status", NULL, status},
      {"reason", refused_reason[kind], 0},
  };
  wschat__log_event(c->env->log, WSCHAT_LOG_INFO, "refuse", f, 3);
}

size_t wschat_server_metrics(struct wschat_server *srv, char *buf, size_t cap) {
  struct out o = {buf, cap, 0};
  if (srv == NULL)
    return 0;
  const struct wschat__metrics *m = &srv->metrics;

  size_t state[3] = {0, 0, 0}; /* http, open, closing */
  for (size_t i = 0; i < srv->nconns; i++) {
    unsigned s = srv->conns[i]->conn.state;
    state[s == WSCHAT__CONN_HTTP ? 0 : s == WSCHAT__CONN_OPEN ? 1 : 2]++;
  }
  family(&o, "wschat_connections", "gauge",
         "Connections now, by state (http: before the upgrade or answering "
         "a plain request; open: WebSocket; closing).");
  put(&o, "wschat_connections{state=\"http\"} %zu\n", state[0]);
  put(&o, "wschat_connections{state=\"open\"} %zu\n", state[1]);
  put(&o, "wschat_connections{state=\"closing\"} %zu\n", state[2]);
  one(&o, "wschat_connections_accepted_total", "counter",
      "TCP connections accepted (WebSocket, plain HTTP and refused ones).",
      m->accepted);
  one(&o, "wschat_websockets_opened_total", "counter",
      "WebSocket upgrades answered 101.", m->upgraded);
  family(&o, "wschat_connections_refused_total", "counter",
         "Connections refused, by reason (max_connections: 503; per_ip: "
         "429; origin: 403; other: the application, a shutdown, a "
         "malformed request, no memory).");
  for (int k = 0; k < WSCHAT__REFUSED_KINDS; k++)
    put(&o, "wschat_connections_refused_total{reason=\"%s\"} %llu\n",
        refused_reason[k], (unsigned long long)m->refused[k]);
  one(&o, "wschat_rooms", "gauge",
      "Rooms that exist now (the lobby always does).",
      wschat_server_rooms(srv, NULL, NULL));
  one(&o, "wschat_messages_received_total", "counter",
      "Whole WebSocket messages received from clients.", m->msgs_in);
  one(&o, "wschat_messages_sent_total", "counter",
      "WebSocket data messages queued for clients (chat events, replies, "
      "echoes).",
      m->msgs_out);
  one(&o, "wschat_received_bytes_total", "counter",
      "Bytes read from client sockets.", m->bytes_in);
  one(&o, "wschat_sent_bytes_total", "counter",
      "Bytes written to client sockets.", m->bytes_out);
  one(&o, "wschat_deliveries_total", "counter",
      "Chat events queued for a room member (one per recipient).",
      m->deliveries);
  family(&o, "wschat_closes_total", "counter",
         "WebSocket connections ended, by close code sent or received "
         "(1006: dropped without a close).");
  static const int usual[] = {1000, 1001, 1006, 1008, 1009, 1011, 1012};
  for (int k = 0; k < WSCHAT__CLOSE_CODES; k++) {
    int shown = m->closes[k] != 0;
    for (size_t u = 0; u < sizeof(usual) / sizeof(usual[0]); u++)
      shown |= usual[u] == 1000 + k;
    if (shown)
      put(&o, "wschat_closes_total{code=\"%d\"} %llu\n", 1000 + k,
          (unsigned long long)m->closes[k]);
  }
  put(&o, "wschat_closes_total{code=\"other\"} %llu\n",
      (unsigned long long)m->closes[WSCHAT__CLOSE_CODES]);
  one(&o, "wschat_slow_consumer_closes_total", "counter",
      "Clients closed (1008) for output queued past --max-output, or as the "
      "largest queues past --max-output-total.",
      m->slow_consumer);
  one(&o, "wschat_rate_limit_closes_total", "counter",
      "Clients closed (1008) by flood control.", m->rate_limited);
  one(&o, "wschat_output_queued_bytes", "gauge",
      "Output queued for all clients, bytes (as counted against "
      "--max-output-total).",
      srv->queued_total);
  family(&o, "wschat_loop_lag_seconds", "gauge",
         "How late a 100 ms timer of the event loop fired: the last time "
         "and the most since start.");
  put(&o, "wschat_loop_lag_seconds{stat=\"last\"} %.6f\n",
      (double)m->lag_last_ns / 1e9);
  put(&o, "wschat_loop_lag_seconds{stat=\"max\"} %.6f\n",
      (double)m->lag_max_ns / 1e9);

  if (srv->sess.conn.tls != NULL) {
    one(&o, "wschat_tls_handshakes_total", "counter",
        "TLS handshakes that ended well.", m->tls_handshakes);
    family(&o, "wschat_tls_handshake_failures_total", "counter",
           "TLS handshakes that did not, by reason (http: a plain HTTP "
           "request, answered 400; protocol: not TLS or nothing in common; "
           "client_cert: missing, expired or untrusted; timeout: closed by "
           "the server before it ended; eof: the peer went away).");
    for (int k = 0; k < WSCHAT__TLS_FAIL_KINDS; k++)
      put(&o, "wschat_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
          wschat__tls_fail_names[k], (unsigned long long)m->tls_failures[k]);
    one(&o, "wschat_tls_renegotiations_refused_total", "counter",
        "TLS 1.2 renegotiations refused (each closes its connection).",
        m->tls_renegotiations);
    family(&o, "wschat_tls_reloads_total", "counter",
           "Reloads of the certificate and key (failed: the old ones stay).");
    put(&o, "wschat_tls_reloads_total{result=\"ok\"} %llu\n",
        (unsigned long long)m->tls_reloads);
    put(&o, "wschat_tls_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)m->tls_reload_failures);
  }
  if (srv->sess.conn.deflate != NULL) {
    const struct wschat__deflate_stats *z =
        wschat__deflate_stats(srv->sess.conn.deflate);
    one(&o, "wschat_deflate_frames_total", "counter",
        "Frames compressed (permessage-deflate): once per event, view and "
        "window however many clients share it, or once per reply.",
        z->compressed);
    family(&o, "wschat_deflate_bytes_total", "counter",
           "Payload bytes of those frames before (plain) and after "
           "(compressed) compression.");
    put(&o, "wschat_deflate_bytes_total{form=\"plain\"} %llu\n",
        (unsigned long long)z->plain_bytes);
    put(&o, "wschat_deflate_bytes_total{form=\"compressed\"} %llu\n",
        (unsigned long long)z->zbytes);
    one(&o, "wschat_inflated_messages_total", "counter",
        "Compressed messages from clients inflated.", z->inflated);
    one(&o, "wschat_inflate_refused_total", "counter",
        "Compressed messages from clients refused: past --max-message or the "
        "ratio bound once inflated (1009), corrupt or not UTF-8 (1007).",
        z->refused);
  }

  struct wschat_history_stats h;
  if (wschat_server_history_stats(srv, &h) == 0) {
    one(&o, "wschat_history_appended_total", "counter",
        "Events accepted for the history writer.", h.appended);
    one(&o, "wschat_history_written_total", "counter",
        "History rows committed.", h.written);
    one(&o, "wschat_history_dropped_total", "counter",
        "Events refused: the writer's queue was full.", h.dropped);
    one(&o, "wschat_history_write_errors_total", "counter",
        "Failed history inserts or commits.", h.write_errors);
    one(&o, "wschat_history_commits_total", "counter",
        "History transactions committed.", h.commits);
    one(&o, "wschat_history_queue_bytes", "gauge",
        "Bytes waiting for the history writer (its backlog).", h.queue_used);
    one(&o, "wschat_history_queue_peak_bytes", "gauge",
        "The most bytes that ever waited for the history writer.",
        h.queue_peak);
  }
  if (srv->cluster != NULL)
    wschat__cluster_metrics(srv->cluster, cluster_line, &o);
  if (o.len < cap)
    buf[o.len] = '\0';
  else if (cap > 0)
    buf[cap - 1] = '\0';
  return o.len;
}
