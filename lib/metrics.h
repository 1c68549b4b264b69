/*
 * metrics: the server's counters (rendered in the Prometheus text format,
 * version 0.0.4, by server_metrics.c).
 *
 * The counters are plain integers bumped on the loop thread where things
 * happen (conn.c: bytes, messages, closes, slow consumers; session.c:
 * deliveries, refusals by origin, rate-limit closes; server.c: accepts,
 * refusals by limit, loop lag). No atomics, no locks: everything that
 * writes or reads them runs on the loop thread. The rendering reads the
 * server's gauges (connections, rooms, queued output, the history
 * writer's counters) at the moment it is called.
 *
 * Owns nothing: struct wschat__metrics lives inside the server, and
 * connections reach it through their env.
 */
#ifndef WSCHAT_METRICS_H
#define WSCHAT_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct wschat_server;
struct wschat__conn;

/* Why a connection was refused (the label "reason"). */
enum {
  WSCHAT__REFUSED_MAX_CONNECTIONS = 0, /* 503: --max-connections */
  WSCHAT__REFUSED_PER_IP,              /* 429: --max-per-ip */
  WSCHAT__REFUSED_ORIGIN,              /* 403: not on the allow-list */
  WSCHAT__REFUSED_OTHER, /* the application, a shutdown, a malformed
                            request, no memory */
  WSCHAT__REFUSED_KINDS
};

/* Why a TLS handshake failed (the label "reason" of
 * wschat_tls_handshake_failures_total). */
enum {
  WSCHAT__TLS_FAIL_HTTP = 0,   /* a plain HTTP request (answered 400) */
  WSCHAT__TLS_FAIL_PROTOCOL,   /* not TLS, or nothing in common */
  WSCHAT__TLS_FAIL_CLIENT_CERT, /* missing, expired or untrusted */
  WSCHAT__TLS_FAIL_TIMEOUT,    /* closed by us before it ended (the
                                  handshake timeout, a shutdown) */
  WSCHAT__TLS_FAIL_EOF,        /* the peer went away */
  WSCHAT__TLS_FAIL_KINDS
};
/* (defined in stream_tls.c) */
extern const char *const wschat__tls_fail_names[WSCHAT__TLS_FAIL_KINDS];

/* Close codes counted one by one: 1000..1000+WSCHAT__CLOSE_CODES-1; any
 * other (4000-4999 of applications, ...) as "other". */
#define WSCHAT__CLOSE_CODES 16

struct wschat__metrics {
  uint64_t accepted; /* TCP connections taken off the listener */
  uint64_t upgraded; /* WebSocket connections opened (101 sent) */
  uint64_t refused[WSCHAT__REFUSED_KINDS];
  uint64_t msgs_in;    /* whole messages received (data frames) */
  uint64_t msgs_out;   /* data frames queued for clients */
  uint64_t bytes_in;   /* read from sockets */
  uint64_t bytes_out;  /* written to sockets */
  uint64_t deliveries; /* chat events queued for a member */
  uint64_t closes[WSCHAT__CLOSE_CODES + 1]; /* the last: other codes */
  uint64_t slow_consumer; /* closed: over --max-output or the total */
  uint64_t rate_limited;  /* closed: flood control (1008 "rate limit") */
  /* TLS (stream_tls.c): handshakes that ended well, and failed ones by
   * reason; renegotiations refused (each closes its connection); reloads
   * of the certificate and key. */
  uint64_t tls_handshakes, tls_failures[WSCHAT__TLS_FAIL_KINDS];
  uint64_t tls_renegotiations, tls_reloads, tls_reload_failures;
  /* Loop lag: how late a 100 ms repeating timer fired, in nanoseconds. */
  uint64_t lag_last_ns, lag_max_ns, lag_prev_hr;
};

/* Counts a WebSocket connection's end with code. */
static inline void wschat__metrics_close(struct wschat__metrics *m, int code) {
  unsigned k = (unsigned)(code - 1000);
  m->closes[k < WSCHAT__CLOSE_CODES ? k : WSCHAT__CLOSE_CODES]++;
}

/* Counts a refusal of c (kind: WSCHAT__REFUSED_*, answered status) and
 * logs it ("refuse", info). */
void wschat__metrics_refused(struct wschat__conn *c, int kind, int status);

#endif
