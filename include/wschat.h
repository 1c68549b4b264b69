/*
 * wschat.h: the public API of libwschat, an embeddable WebSocket (RFC 6455)
 * chat server on libuv.
 *
 * Concepts: a server (struct wschat_server) runs on a libuv loop, accepts
 * clients (struct wschat_client), puts them in rooms and delivers lines.
 * Hooks let the embedding program watch and steer every step.
 *
 * Conventions, for every function below:
 * - Threads: every function must be called on the loop thread, except those
 *   marked "thread-safe".
 * - Ownership: strings passed in are copied unless said otherwise; strings
 *   returned are owned by the library and valid as the comment says.
 * - Errors: functions returning int return 0 on success or a negative
 *   enum wschat_error value. An error never leaves an object half-changed:
 *   after any error the object is as it was before the call.
 * - Structs: there are no public structs; everything is opaque and set with
 *   functions, so new options never change the ABI.
 */
#ifndef WSCHAT_H
#define WSCHAT_H

#include <stddef.h>
#include <stdint.h>

/* libuv's loop type (uv_loop_t is a typedef of it). Declared here so that
 * this header does not pull in <uv.h> and its feature-macro needs; pass
 * your uv_loop_t pointer as it is. */
struct uv_loop_s;

#ifdef __cplusplus
extern "C" {
#endif

/* The version, read by meson from here: keep the three lines as they are. */
#define WSCHAT_VERSION_MAJOR 0
#define WSCHAT_VERSION_MINOR 2
#define WSCHAT_VERSION_PATCH 0

#define WSCHAT_VERSION_NUM                                                     \
  ((WSCHAT_VERSION_MAJOR << 16) | (WSCHAT_VERSION_MINOR << 8) |                \
   WSCHAT_VERSION_PATCH)

#if defined(WSCHAT_BUILDING) && defined(__GNUC__)
#define WSCHAT_EXTERN __attribute__((visibility("default")))
#else
#define WSCHAT_EXTERN
#endif

struct wschat_server;
struct wschat_client;
struct wschat_message;
struct wschat_event;
struct wschat_command;
struct wschat_http_request;

/* Longest user name and room name, in bytes (ASCII). Buffers for a name
 * need WSCHAT_NAME_MAX + 1 bytes. */
#define WSCHAT_NAME_MAX 32
#define WSCHAT_ROOM_MAX 64

/* Error codes: negative, grouped by tens. */
enum wschat_error {
  WSCHAT_OK = 0,
  /* the caller's input */
  WSCHAT_EINVAL = -1,       /* an argument is invalid */
  WSCHAT_ENAME = -2,        /* not a valid user name (1-32 of A-Z a-z 0-9 - _) */
  WSCHAT_EROOM = -3,        /* not a valid room name (1-64 of A-Z a-z 0-9 - _ .) */
  WSCHAT_ETOOBIG = -4,      /* a message over the configured maximum */
  /* the state of things */
  WSCHAT_ENAMETAKEN = -10,  /* the name is used by another client */
  WSCHAT_ENOTFOUND = -11,   /* no such client or room */
  WSCHAT_ECLOSED = -12,     /* the client is closing or closed */
  WSCHAT_ESTATE = -13,      /* not allowed now (e.g. listen twice) */
  WSCHAT_ESAMEROOM = -14,   /* the client is already in that room */
  WSCHAT_ENOTOPEN = -15,    /* the client is not open yet (still in its
                               handshake or its on_connect is deferred) */
  WSCHAT_ETOOMANY = -16,    /* over a limit: rooms per client */
  WSCHAT_EEXIST = -17,      /* already registered (a command, a route) */
  WSCHAT_ERESERVED = -18,   /* the name is reserved by the application */
  WSCHAT_ENOTMEMBER = -19,  /* the client is not in that room */
  /* the system */
  WSCHAT_ENOMEM = -20,      /* out of memory */
  WSCHAT_EIO = -21,         /* a libuv or socket error (see the log line) */
  WSCHAT_EADDR = -22,       /* the address could not be resolved or bound */
  WSCHAT_ENOHISTORY = -23,  /* the server keeps no history */
  WSCHAT_ETLS = -24,        /* a TLS certificate, key or CA file is
                               unusable (see the log line) */
};

/* Returns a static English description of an error code; never NULL. */
WSCHAT_EXTERN const char *wschat_strerror(int err);

/* Returns WSCHAT_VERSION_NUM of the library actually linked. */
WSCHAT_EXTERN unsigned wschat_version(void);
/* Returns the version as a static string "MAJOR.MINOR.PATCH". */
WSCHAT_EXTERN const char *wschat_version_string(void);

/* ---------------------------------------------------------------------- */
/* Server                                                                  */

/* What the server does with messages. */
enum wschat_mode {
  WSCHAT_MODE_CHAT = 0, /* the chat: names, rooms, commands (default) */
  WSCHAT_MODE_ECHO = 1, /* every message is sent back with its opcode */
};

/* Numeric options, set with wschat_server_set_option(). */
enum wschat_option {
  WSCHAT_OPT_MODE = 1,              /* enum wschat_mode; default CHAT; only
                                       before listening */
  WSCHAT_OPT_MAX_MESSAGE,           /* bytes per message in; default 1 MiB */
  WSCHAT_OPT_MAX_OUTPUT,            /* bytes queued out per client (each
                                       frame counts 32 bytes more), judged
                                       as output is queued: past it (beyond
                                       what the socket takes) the client is
                                       read no further and closed 1008;
                                       default 1 MiB */
  WSCHAT_OPT_MAX_HEADER,            /* bytes of HTTP request head; 8192 */
  WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS,  /* to send the upgrade request and, if
                                       on_connect deferred, to decide;
                                       default 10000 */
  WSCHAT_OPT_PING_INTERVAL_MS,      /* ping after this much silence (each
                                       client up to 1/4 sooner); 20000 */
  WSCHAT_OPT_PING_TIMEOUT_MS,       /* close if no answer by then; 20000 */
  WSCHAT_OPT_CLOSE_TIMEOUT_MS,      /* wait for the peer's close; 3000 */
  WSCHAT_OPT_BACKLOG,               /* listen() backlog; default 1024 */
  WSCHAT_OPT_MAX_ROOMS,             /* rooms one client may be in at once
                                       (1-1000); default 20 */
  WSCHAT_OPT_QUIET_ROOM,            /* above this many members a room no
                                       longer announces each join and leave
                                       to every member (the joiner still
                                       sees its own); 0: always announce;
                                       default 500 */
  WSCHAT_OPT_HISTORY_REPLAY,        /* with a history store: the last
                                       events of a room a joiner gets
                                       (0-10,000); default 50 */
  WSCHAT_OPT_MAX_LINE,              /* bytes of chat text in one message (a
                                       text client's whole message, a JSON
                                       "text"); longer: "! line too long"
                                       or too_long. Never more than renders
                                       within MAX_MESSAGE: (MAX_MESSAGE -
                                       256) / 6. 1 to 2^31; default 65536 */
  WSCHAT_OPT_RATE,                  /* flood control: chat messages a client
                                       may send a second (0-1,000,000; 0:
                                       no flood control at all); default 20.
                                       Over it a message is dropped: the
                                       client is warned once ("! slow down"
                                       or rate_limited) and closed with 1008
                                       "rate limit" if it keeps going (the
                                       third warning within 10 s, or 5
                                       bursts sent since the last warning).
                                       Joins and leaves (2 a second, 10 at
                                       once), renames (1, 3) and whispers
                                       (5, 10) have tighter buckets too. The
                                       on_message hook sees every message
                                       first; one it drops costs nothing */
  WSCHAT_OPT_BURST,                 /* flood control: messages a client may
                                       send at once (1-1,000,000); 40 */
  WSCHAT_OPT_MAX_CONNECTIONS,       /* connections at once; past it a new
                                       one is answered HTTP 503 and closed
                                       (open ones are unaffected); 0: no
                                       limit; default 10,000 */
  WSCHAT_OPT_MAX_PER_IP,            /* connections at once from one peer
                                       address; past it HTTP 429; 0: no
                                       limit; default 64 */
  WSCHAT_OPT_MAX_OUTPUT_TOTAL,      /* bytes queued out by all clients
                                       together (a broadcast counts once
                                       per recipient; each queued frame
                                       counts 32 bytes more); past it the
                                       largest queues are closed first
                                       with 1008; 0: no ceiling; default
                                       256 MiB */
  WSCHAT_OPT_MESSAGE_TIMEOUT_MS,    /* a message (all its frames) must
                                       arrive within this long of its first
                                       byte, else close 1008; 0: no limit;
                                       default 30000 */
  WSCHAT_OPT_DEFLATE,               /* 1: permessage-deflate (RFC 7692) is
                                       negotiated with clients that offer
                                       it; 0: never (no extension is
                                       answered). Default 1 */
  WSCHAT_OPT_DEFLATE_THRESHOLD,     /* messages shorter than this many bytes
                                       are sent uncompressed to deflate
                                       clients (0 to 2^31); default 128 */
};

/*
 * Creates a server on loop (the caller's loop: the server adds handles to
 * it and never runs it), or, if loop is NULL, on a loop of its own that
 * wschat_server_run() runs. Stores the new server in *out.
 * Ownership: the caller owns *out and frees it with wschat_server_free().
 * Returns 0, WSCHAT_EINVAL (out is NULL) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_new(struct uv_loop_s *loop,
                                    struct wschat_server **out);

/*
 * Sets a numeric option (see enum wschat_option). Options are read when
 * they are needed; set them before wschat_server_listen() (a changed limit
 * applies to what happens next, never to what is already queued).
 * Returns 0, WSCHAT_EINVAL (unknown option or value out of range) or
 * WSCHAT_ESTATE (WSCHAT_OPT_MODE once listening).
 */
WSCHAT_EXTERN int wschat_server_set_option(struct wschat_server *srv,
                                           enum wschat_option opt,
                                           int64_t value);

/*
 * Adds origin to the Origin allow-list: once it has one entry, a WebSocket
 * upgrade request that carries an Origin header (every browser sends its
 * page's) whose value is not in the list is answered 403 "origin not
 * allowed", before on_connect (the application never hears of it: no
 * on_connect, no on_disconnect). Requests without an Origin header (most
 * non-browser clients) are not affected. Without any entry, every origin is
 * allowed (the default): a page on any site can then connect, so a server
 * meant for one site's pages should list it. origin is SCHEME://HOST[:PORT]
 * as a browser sends it (e.g. "https://chat.example.com"; a trailing '/' is
 * dropped), or "null"; compared regardless of case. Copies origin.
 * Thread: the loop's (or before it runs); applies to requests decided after.
 * Returns 0, WSCHAT_EINVAL (srv NULL, or origin not of that form, or over
 * 255 bytes) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_add_origin(struct wschat_server *srv,
                                           const char *origin);

/* Empties the Origin allow-list (any origin may connect again until one is
 * added): with wschat_server_add_origin(), a new list at run time (a
 * reload). Clients already open stay. Loop thread only. */
WSCHAT_EXTERN void wschat_server_clear_origins(struct wschat_server *srv);

/*
 * Identity: JSON Web Tokens (RFC 7519). Once a key is set, every WebSocket
 * upgrade must carry a valid token, before on_connect (docs/PROTOCOL.md,
 * "Identity"): in an "Authorization: Bearer TOKEN" header, in an offered
 * subprotocol "wschat.token.TOKEN" (what a browser can send), or in
 * ?token=TOKEN. A request without one, or with a bad or expired one, is
 * answered 401 with WWW-Authenticate (the application never hears of it:
 * no on_connect, no on_disconnect); a browser's (a request with an Origin
 * header) is upgraded and closed at once with 4001 and the reason, which a
 * browser can read. A token is signed with HS256 (the secret), RS256 or
 * ES256 (the public key); its header's alg must name a key that is set,
 * so "none" and an HS256 token made with the public key are refused. Its
 * claims: exp (required), nbf and iat (optional; 5 s of clock skew),
 * name, or else sub: the client's name (a valid name; ?name= is ignored,
 * the name is reserved while the client is connected, a second connection
 * with it is refused 409 or closed 4009, and the client cannot rename
 * itself: "! forbidden", or the JSON error forbidden); rooms (optional: an
 * array of room names the client may join; absent: any; lobby is always
 * allowed, as every client lands there). When exp passes, the client is
 * closed with 4003 "token expired": get a new token and reconnect. In
 * on_connect, wschat_client_name() already returns the token's name; the
 * application may still name the client otherwise there, and its
 * own calls (wschat_client_join(), _rename()) are not restricted. Plain
 * HTTP requests (GET /healthz, routes) need no token. The token is never
 * logged, is cut out of wschat_client_query() and wschat_client_protocols(),
 * and is never chosen as the subprotocol.
 */

/*
 * Sets the HS256 secret: len bytes (32 to 4096: RFC 7518 asks for at least
 * the hash's 32), copied; secret NULL with len 0 removes it (then, without
 * a public key, no token is needed any more). May be set together with a
 * public key; each token's alg picks which one checks it.
 * Thread: the loop's (or before it runs); applies to requests decided
 * after the call.
 * Returns 0, WSCHAT_EINVAL (srv NULL, or len out of range) or
 * WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_set_jwt_secret(struct wschat_server *srv,
                                               const void *secret,
                                               size_t len);

/*
 * Sets the public key that checks RS256 (an RSA key of at least 2048 bits)
 * or ES256 (a P-256 key) tokens: pem holds len bytes of a PEM
 * "-----BEGIN PUBLIC KEY-----" block (`openssl pkey -pubout` writes one);
 * parsed and kept, pem is not. pem NULL removes the key. One public key at
 * a time: a second call replaces the first.
 * Thread: the loop's (or before it runs); applies to requests decided
 * after the call.
 * Returns 0, WSCHAT_EINVAL (srv NULL; not such a key: a certificate, a
 * private key, another curve, a short RSA key) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_set_jwt_public_key(struct wschat_server *srv,
                                                   const char *pem,
                                                   size_t len);

/*
 * Starts listening on host (an IPv4 or IPv6 literal, e.g. "127.0.0.1",
 * "0.0.0.0", "::1", "::"; NULL means "127.0.0.1") and port (0 picks a free
 * one; see wschat_server_port()). Does not take ownership of host.
 * Returns 0, WSCHAT_EINVAL (port out of range), WSCHAT_EADDR (bad host, or
 * bind failed), WSCHAT_ESTATE
 * (already listening, shut down, or the handle of a failed listen is still
 * closing) or WSCHAT_EIO. After a failure on the caller's loop, let the
 * loop run once (uv_run(loop, UV_RUN_NOWAIT)) before listening again or
 * calling wschat_server_free().
 */
WSCHAT_EXTERN int wschat_server_listen(struct wschat_server *srv,
                                       const char *host, int port);

/* Returns the port the server listens on, or 0 if it does not listen. */
WSCHAT_EXTERN int wschat_server_port(const struct wschat_server *srv);

/* Returns the loop the server runs on (its own one if created with NULL). */
WSCHAT_EXTERN struct uv_loop_s *
wschat_server_loop(const struct wschat_server *srv);

/*
 * Serves TLS on the listener: every connection speaks TLS 1.2 or 1.3
 * (TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 only; no
 * renegotiation, no compression; ALPN "http/1.1"), so clients use wss:// and https:// (the routes, e.g. a web
 * page, are served over it too). cert_path: a PEM file, the server's
 * certificate first, then any intermediates; key_path: its PEM private key
 * (not encrypted); ca_path: NULL, or a PEM file of CA certificates: every
 * client must then present a certificate signed by one of them (a client
 * without one, or with an expired or untrusted one, is closed in the
 * handshake).
 *
 * Reads the files now and copies the paths (for wschat_server_reload_tls()).
 * A handshake must end within WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS, as the
 * HTTP request after it. Handshake failures are counted in
 * wschat_server_metrics() (wschat_tls_handshake_failures_total{reason})
 * and logged (info, "tls_handshake_failed").
 *
 * Before wschat_server_listen() only; once only. Loop thread.
 * Returns:
 *  - 0
 *  - WSCHAT_EINVAL: srv, cert_path or key_path is NULL
 *  - WSCHAT_ESTATE: already listening, or TLS is already set
 *  - WSCHAT_ETLS: a file cannot be read or parsed, or the key does not
 *    match the certificate (the reason is logged at error level)
 *  - WSCHAT_ENOMEM
 */
WSCHAT_EXTERN int wschat_server_set_tls(struct wschat_server *srv,
                                        const char *cert_path,
                                        const char *key_path,
                                        const char *ca_path);

/*
 * Reads the files given to wschat_server_set_tls() again (a renewed
 * certificate): connections accepted from now on use them; open ones keep
 * the ones they started with (the old context is freed with the last of
 * them). On failure the current certificate and key stay in use, and the
 * reason is logged at error level ("tls_reload").
 *
 * Loop thread only (from another thread: through wschat_server_post()).
 * Returns 0, WSCHAT_EINVAL (srv NULL), WSCHAT_ESTATE (no TLS set) or
 * WSCHAT_ETLS (a file is unusable, or no memory for the new context: the
 * log line says which).
 */
WSCHAT_EXTERN int wschat_server_reload_tls(struct wschat_server *srv);

/*
 * Runs the server's own loop until wschat_server_shutdown() completes.
 * Only for a server created with a NULL loop.
 * Returns 0, WSCHAT_ESTATE (the server runs on the caller's loop) or
 * WSCHAT_EIO.
 */
WSCHAT_EXTERN int wschat_server_run(struct wschat_server *srv);

/* Called once when a shutdown has finished: every client is gone and the
 * server holds no handle that keeps the loop alive. */
typedef void (*wschat_shutdown_cb)(struct wschat_server *srv, void *user);

/*
 * Starts a graceful shutdown: stops listening, sends every client a close
 * frame with 1001 "server shutting down", flushes, and closes each client
 * when its close handshake completes or after the close timeout. Rooms are
 * not told of each leave (the hooks still run). A client whose on_connect
 * was deferred is answered 503. Calls cb (if not NULL) once at the end.
 * During a drain (wschat_server_drain()), closes the clients left at once
 * (1001) and returns 0.
 * Returns 0 or WSCHAT_ESTATE (already shutting down).
 */
WSCHAT_EXTERN int wschat_server_shutdown(struct wschat_server *srv,
                                         wschat_shutdown_cb cb, void *user);

/* ---------------------------------------------------------------------- */
/* Logs: structured events (listen, connect, disconnect, refuse, drain,
 * shutdown), each an event name and fields, handed to the application's
 * callback, which renders them (chat-cli writes text or JSON lines to
 * stderr). Nothing is logged without a callback. */

enum wschat_log_level {
  WSCHAT_LOG_ERROR = 0, /* the server cannot do what it should */
  WSCHAT_LOG_WARN,      /* a client closed for misbehaving (1002, 1007,
                           1008, 1009), out of memory (1011) */
  WSCHAT_LOG_INFO,      /* listen, refusals, drain, shutdown */
  WSCHAT_LOG_DEBUG,     /* every connect and disconnect */
};

/* One field of an event: a string (str not NULL) or a number (num). */
struct wschat_log_field {
  const char *key;
  const char *str;
  int64_t num;
};

/*
 * The events, and their fields (always in this order):
 * - "listen" (info): host, port.
 * - "connect" (debug): id, peer, path.
 * - "disconnect" (debug; warn for the codes above): id, peer, code,
 *   duration_ms.
 * - "refuse" (info): peer, status, reason ("max_connections", "per_ip",
 *   "origin", "other").
 * - "drain" (info): clients, ms. "shutdown" (info): clients.
 * The pointers are valid during the call only. Called on the loop thread.
 */
typedef void (*wschat_log_cb)(int level, const char *event,
                              const struct wschat_log_field *fields,
                              size_t nfields, void *user);

/*
 * Sets the log callback (NULL: none) and the most detailed level passed
 * to it (an enum wschat_log_level; events above it cost one comparison).
 * May be called at any time, e.g. to change the level. Loop thread only.
 */
WSCHAT_EXTERN void wschat_server_set_log(struct wschat_server *srv,
                                         wschat_log_cb cb, void *user,
                                         int level);

/* "error", "warn", "info" or "debug" ("?" for another number). */
WSCHAT_EXTERN const char *wschat_log_level_name(int level);

/*
 * Starts a drain, for deploys without a reconnect storm: stops listening
 * at once (new connections are refused), then closes the open clients in
 * batches spread evenly over ms milliseconds (a batch every 100 ms, the
 * last at ms), each with close code 1012 "service restart" (RFC 6455's
 * "come back later": a JSON client reconnects and resumes with since).
 * Until its batch, a client chats as usual; rooms are not told of each
 * leave. An upgrade request that is deferred, or completes during the
 * drain, is answered 503; plain HTTP requests (a scrape of /metrics) are
 * answered. Ends like wschat_server_shutdown(): cb (if not NULL) runs
 * once, when every client is gone and the server holds no handle.
 *
 * wschat_server_shutdown() during a drain closes the clients left at once
 * with 1001 (its cb, if not NULL, replaces this one). ms 0 is
 * wschat_server_shutdown(srv, cb, user). Embedders that only call
 * wschat_server_shutdown() keep its behaviour: a drain is never implied.
 *
 * Loop thread only. Returns 0, WSCHAT_EINVAL (ms over a day) or
 * WSCHAT_ESTATE (already draining or shutting down).
 */
WSCHAT_EXTERN int wschat_server_drain(struct wschat_server *srv, uint64_t ms,
                                      wschat_shutdown_cb cb, void *user);

/*
 * Writes the server's counters and gauges in the Prometheus text
 * exposition format, version 0.0.4 (serve it with the content type
 * "text/plain; version=0.0.4"): connections (now, by state; accepted;
 * WebSocket upgrades; refused, by reason), rooms, messages and bytes in
 * and out, deliveries of chat events, closes by code, slow-consumer and
 * rate-limit closes, queued output, the loop's lag, and the history
 * writer's counters when a store is open. Every metric name starts with
 * "wschat_"; the list and the meaning of each are in the HELP lines.
 *
 * Writes at most cap bytes into buf (NUL-terminated when cap > 0; buf may
 * be NULL when cap is 0) and returns the length of the whole text, not
 * counting the NUL: if that is cap or more, the text was cut; call again
 * with a larger buffer (16 KiB is ample). It never allocates.
 *
 * The counters are exact and cost one increment each where they happen.
 * Loop thread only (like the counters it reads). chat-cli serves it on
 * GET /metrics through wschat_server_route().
 */
WSCHAT_EXTERN size_t wschat_server_metrics(struct wschat_server *srv,
                                           char *buf, size_t cap);

/*
 * Frees a server. Call it after the shutdown callback has run (or if the
 * server never listened). Closes and frees its own loop, if any.
 * Returns 0 or WSCHAT_ESTATE (clients still open: shut down first).
 */
WSCHAT_EXTERN int wschat_server_free(struct wschat_server *srv);

/* ---------------------------------------------------------------------- */
/* Other threads. Only the three functions below may be called from a
 * thread other than the loop's. None of them is async-signal-safe: they
 * allocate and take a mutex. From a signal handler, let the loop watch the
 * signal instead (a uv_signal_t, as chat-cli does) or write to a pipe that
 * the loop reads. */

/* A function to run on the loop thread (see wschat_server_post()). */
typedef void (*wschat_post_cb)(struct wschat_server *srv, void *arg);

/*
 * Thread-safe. Runs fn(srv, arg) on the loop thread, soon, in the order of
 * the calls (from one thread; calls from different threads are ordered as
 * they took the lock). fn may call any function of this API. Does not
 * touch arg: fn owns it from then on.
 * If the server shuts down first, fn still runs exactly once, while the
 * shutdown finishes (so arg is never leaked); after the shutdown has
 * finished, the call fails and fn never runs.
 * Returns 0, WSCHAT_EINVAL (srv or fn is NULL), WSCHAT_ENOMEM or
 * WSCHAT_ECLOSED (not listening yet, or the shutdown has finished).
 */
WSCHAT_EXTERN int wschat_server_post(struct wschat_server *srv,
                                     wschat_post_cb fn, void *arg);

/*
 * Thread-safe. wschat_server_broadcast(srv, room, text, len, NULL) on the
 * loop thread, through wschat_server_post(). Copies room and text.
 * Returns 0, WSCHAT_EINVAL (invalid UTF-8), WSCHAT_EROOM (not a valid room
 * name), WSCHAT_ENOMEM or WSCHAT_ECLOSED (not listening yet, or a shutdown
 * has begun). A valid room that does not exist when the post runs gets
 * nothing.
 */
WSCHAT_EXTERN int wschat_server_post_broadcast(struct wschat_server *srv,
                                               const char *room,
                                               const char *text, size_t len);

/*
 * Thread-safe. wschat_server_shutdown(srv, NULL, NULL) on the loop thread,
 * through wschat_server_post(). Returns 0, WSCHAT_ENOMEM or WSCHAT_ECLOSED.
 */
WSCHAT_EXTERN int wschat_server_post_shutdown(struct wschat_server *srv);

/* ---------------------------------------------------------------------- */
/* Hooks. Every connection that completes its HTTP upgrade request gets
 * exactly one on_connect and then exactly one on_disconnect, whatever
 * happens. Hooks run on the loop thread; they may call any function here,
 * including closing the client they are called for.
 *
 * Several parts of one program: on_connect, on_message and on_disconnect
 * are single hooks (one gatekeeper decides who comes in and what a raw
 * message becomes; setting one again replaces it). Everything else is open
 * to many parts at once without a central dispatcher: each part adds its
 * own watchers (wschat_server_watch(): every event the chat delivers) and
 * its own commands (wschat_server_add_command()). on_join and on_leave are
 * kept for simple programs; watchers see the same joins and leaves. */

/*
 * Called when a valid upgrade request arrived, before the answer is sent.
 * The client has no name or room yet; wschat_client_path(), _query(),
 * _header() and _protocols() tell what it asked for. From here the hook
 * may: refuse it (wschat_client_reject()), name it and choose its room
 * (wschat_client_set_name(), wschat_client_set_room()), choose a
 * subprotocol (wschat_client_set_protocol()), add response headers
 * (wschat_client_add_header()), or decide later (wschat_client_defer()).
 * Return value: ignored (return 0).
 */
typedef int (*wschat_connect_cb)(struct wschat_client *client, void *user);

/*
 * Called once when a client is gone (or is going: its socket may still be
 * flushing), with the close code sent or received (1006 if the connection
 * dropped without one; the HTTP status if it was refused with one). In
 * chat mode the client has already left its rooms (after on_leave).
 * Sending to it from here returns WSCHAT_ECLOSED. The client pointer is
 * invalid after this returns (its id is never reused).
 */
typedef void (*wschat_disconnect_cb)(struct wschat_client *client, int code,
                                     void *user);

/* What an on_message hook or a command decides. */
enum wschat_verdict {
  WSCHAT_PASS = 0, /* carry on: built-in handling (possibly of replaced text) */
  WSCHAT_DROP = 1, /* stop here: the hook handled the message or dropped it */
};

/*
 * Called for every message from a client (every chat line and command in
 * chat mode, every message in echo mode) before the built-in handling and
 * before registered commands. wschat_message_text() reads it,
 * wschat_message_command() gives it parsed as a command,
 * wschat_message_replace() changes it.
 * In chat mode the limits come after the hook, in this order: flood control
 * (WSCHAT_OPT_RATE: a message the hook drops costs the client nothing; one
 * it passes takes a token, and may then be dropped), then the line length
 * (WSCHAT_OPT_MAX_LINE, on the replaced text if the hook replaced it). So
 * the hook sees every message, floods included, and must be cheap.
 * Returns enum wschat_verdict.
 */
typedef int (*wschat_message_cb)(struct wschat_client *client,
                                 struct wschat_message *msg, void *user);

/* Called after a client entered a room (chat mode). */
typedef void (*wschat_join_cb)(struct wschat_client *client, const char *room,
                               void *user);
/* Called after a client left a room (chat mode); reason may be NULL. */
typedef void (*wschat_leave_cb)(struct wschat_client *client, const char *room,
                                const char *reason, void *user);

/* Set a hook (NULL removes it). user is passed back untouched. */
WSCHAT_EXTERN void wschat_server_on_connect(struct wschat_server *srv,
                                            wschat_connect_cb cb, void *user);
WSCHAT_EXTERN void wschat_server_on_disconnect(struct wschat_server *srv,
                                               wschat_disconnect_cb cb,
                                               void *user);
WSCHAT_EXTERN void wschat_server_on_message(struct wschat_server *srv,
                                            wschat_message_cb cb, void *user);
WSCHAT_EXTERN void wschat_server_on_join(struct wschat_server *srv,
                                         wschat_join_cb cb, void *user);
WSCHAT_EXTERN void wschat_server_on_leave(struct wschat_server *srv,
                                          wschat_leave_cb cb, void *user);

/* ---------------------------------------------------------------------- */
/* Events: everything the chat delivers, as data. The plain-text protocol
 * is one rendering of them; every event has a server-assigned id, strictly
 * increasing within a server, and a time. */

enum wschat_event_kind {
  WSCHAT_EVENT_MESSAGE = 1, /* a line said in a room (by a client, or by
                               the application as a name: a bot) */
  WSCHAT_EVENT_ACTION,      /* "/me waves" in a room */
  WSCHAT_EVENT_JOIN,        /* a client entered a room */
  WSCHAT_EVENT_LEAVE,       /* a client left a room; reason may be set */
  WSCHAT_EVENT_NICK,        /* a client was renamed: from -> to; one event
                               per room it is in */
  WSCHAT_EVENT_WHISPER,     /* a private message from -> to (no room) */
  WSCHAT_EVENT_NOTICE,      /* text from the application or the server, to
                               a room or (room NULL) to everyone */
};

/*
 * Called after the chat delivered an event (it is in every recipient's
 * queue). Also called for events with no recipient (a join into a quiet
 * room is seen by the joiner only; a whisper is seen by two). The event
 * and its strings are valid during the call only. A watcher may call any
 * function of this API; events it causes are watched after this one.
 */
typedef void (*wschat_event_cb)(struct wschat_server *srv,
                                const struct wschat_event *ev, void *user);

/*
 * Adds a watcher of every event; several may watch, in the order added.
 * Stores a handle for wschat_server_unwatch() in *handle (may be NULL).
 * Returns 0, WSCHAT_EINVAL (cb is NULL) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_watch(struct wschat_server *srv,
                                      wschat_event_cb cb, void *user,
                                      uint64_t *handle);
/* Removes a watcher (also from inside a watcher). Returns 0 or
 * WSCHAT_ENOTFOUND. */
WSCHAT_EXTERN int wschat_server_unwatch(struct wschat_server *srv,
                                        uint64_t handle);

/* The event's kind, id (from 1, strictly increasing) and time (ms since
 * the Unix epoch, from the wall clock when the event was made). */
WSCHAT_EXTERN enum wschat_event_kind
wschat_event_kind(const struct wschat_event *ev);
WSCHAT_EXTERN uint64_t wschat_event_id(const struct wschat_event *ev);
WSCHAT_EXTERN int64_t wschat_event_time(const struct wschat_event *ev);
/* The room (NULL: a whisper, or a notice to everyone). */
WSCHAT_EXTERN const char *wschat_event_room(const struct wschat_event *ev);
/* The sender's name (NICK: the old name; NOTICE: NULL). */
WSCHAT_EXTERN const char *wschat_event_from(const struct wschat_event *ev);
/* The sender's client id; 0 when the application made the event. */
WSCHAT_EXTERN uint64_t wschat_event_client(const struct wschat_event *ev);
/* WHISPER: the recipient's name; NICK: the new name; else NULL. */
WSCHAT_EXTERN const char *wschat_event_to(const struct wschat_event *ev);
/* MESSAGE, ACTION, WHISPER, NOTICE: the text (valid UTF-8, as sent:
 * control characters are blanked only where the text protocol shows it);
 * else "" with length 0. len may be NULL. */
WSCHAT_EXTERN const char *wschat_event_text(const struct wschat_event *ev,
                                            size_t *len);
/* LEAVE: the reason ("/quit REASON", a kick's reason) or NULL. */
WSCHAT_EXTERN const char *wschat_event_reason(const struct wschat_event *ev);

/* ---------------------------------------------------------------------- */
/* History: the store of room events (lines, /me, joins, leaves, renames;
 * never whispers or notices). With a store, event ids come from it (so
 * they never repeat, across restarts and crashes), every room event is
 * appended before it is delivered, a joiner gets the room's last events
 * (WSCHAT_OPT_HISTORY_REPLAY) before live traffic, and clients may ask for
 * more (/history, the JSON "history" request, recovery with ?since=). The
 * built-in store is SQLite; an application may plug in its own. */

/* What wschat_server_open_history() opens. */
struct wschat_history_options {
  const char *path;    /* the SQLite file, created if missing; copied */
  unsigned flush_ms;   /* appends are committed every flush_ms (0: 100):
                          a crash loses at most the last flush_ms */
  int sync_full;       /* 1: each append is durable before the event is
                          delivered (slower; nothing delivered is lost) */
  size_t max_per_room; /* rows kept per room (0: 10,000; SIZE_MAX: all) */
};

/*
 * Opens (or creates) the built-in SQLite store at opt->path for srv: WAL
 * mode, writes batched off the loop thread. One process per file: a file
 * another process holds is refused after two seconds. Before
 * wschat_server_listen() only (ids come from the store from the first
 * event on). Loop thread; waits on disk. The server owns the store and
 * closes it at shutdown (everything accepted is written) or in
 * wschat_server_free().
 * Returns 0, WSCHAT_EINVAL (no path), WSCHAT_ESTATE (listening, or a
 * store is set already), WSCHAT_ENOMEM or WSCHAT_EIO (the file cannot be
 * opened, created or written, or is in use: a line on stderr says why).
 */
WSCHAT_EXTERN int
wschat_server_open_history(struct wschat_server *srv,
                           const struct wschat_history_options *opt);

/* Counters of the store since it was opened (the built-in store's; a
 * custom store reports zeros). */
struct wschat_history_stats {
  uint64_t appended;     /* events accepted for writing */
  uint64_t written;      /* rows committed */
  uint64_t dropped;      /* refused: the writer's queue was full */
  uint64_t write_errors; /* failed inserts or commits */
  uint64_t rows_lost;    /* accepted rows that a failed write lost */
  uint64_t read_errors;  /* reads that failed */
  uint64_t pruned;       /* rows removed by max_per_room */
  uint64_t commits;      /* transactions */
  size_t queue_used;     /* bytes waiting for the writer now */
  size_t queue_peak;     /* the most that ever waited */
};

/* Copies the store's counters into out (also after the server shut down:
 * the last ones). Any thread while the server lives. Returns 0 or
 * WSCHAT_ENOHISTORY. */
WSCHAT_EXTERN int wschat_server_history_stats(struct wschat_server *srv,
                                              struct wschat_history_stats *out);

/*
 * The answer to wschat_server_read_history(), on the loop thread: the n
 * events (oldest first; valid during the call only, with the accessors
 * above), complete (1: nothing asked for is missing; 0: pruned, lost or
 * unreadable rows, or err), err (0 or WSCHAT_EIO).
 */
typedef void (*wschat_history_cb)(struct wschat_server *srv, const char *room,
                                  const struct wschat_event *const *events,
                                  size_t n, int complete, int err,
                                  void *user);

/*
 * Reads the last limit (1-10,000) stored events of room with an id below
 * before (0: the newest), without waiting on disk: cb runs later on the
 * loop thread (during shutdown at the latest). Loop thread, while the
 * server listens (the answer comes back through its post queue).
 * Returns 0, WSCHAT_EINVAL, WSCHAT_EROOM, WSCHAT_ENOHISTORY, WSCHAT_ESTATE
 * (not listening, or shut down), WSCHAT_ETOOMANY (the store is busy: try
 * later) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_read_history(struct wschat_server *srv,
                                             const char *room, size_t limit,
                                             uint64_t before,
                                             wschat_history_cb cb, void *user);

/* ---- a store of the application's ---- */

/* What a store is asked to read (rows oldest first in the reply). */
enum wschat_history_query_kind {
  WSCHAT_HISTORY_LAST = 1, /* the newest limit rows of room */
  WSCHAT_HISTORY_BEFORE,   /* the newest limit rows with id < id */
  WSCHAT_HISTORY_AFTER,    /* the oldest limit rows with id > id, if epoch
                              is the store's; else the newest, incomplete */
};

struct wschat_history_query {
  int kind;         /* enum wschat_history_query_kind */
  const char *room; /* valid during the read call only */
  uint64_t id;
  uint64_t epoch;
  size_t limit; /* 1-10,000 */
};

/* A read in progress: filled with wschat_history_reply_add(), finished
 * with wschat_history_reply_end(). Owned by the server. */
struct wschat_history_reply;

/*
 * A store of the application's (every function is called on the loop
 * thread; store is the application's pointer).
 * - append: keep a copy of ev (kind, id, time, room, from, to, text,
 *   reason); never wait long (the loop waits). Return 0 or an error (the
 *   event is still delivered; the store must then answer reads of that
 *   range with complete = 0).
 * - next_id: a new event id, above every id this store handed out before,
 *   ever (restarts included).
 * - epoch: nonzero, changes only when the stored rows are no longer the
 *   ones the ids were handed out with (a new database).
 * - read: answer q through reply, now or later (the reply is the store's
 *   until wschat_history_reply_end()). Return 0, or an error: then the
 *   reply must not be used.
 * - close: called once, at shutdown or in wschat_server_free(); store is
 *   not used again. Replies it has not ended by then must not be ended
 *   afterwards: the server ends them as failed reads.
 */
struct wschat_history_store {
  int (*append)(void *store, const struct wschat_event *ev);
  uint64_t (*next_id)(void *store);
  uint64_t (*epoch)(void *store);
  int (*read)(void *store, const struct wschat_history_query *q,
              struct wschat_history_reply *reply);
  void (*close)(void *store);
};

/*
 * Makes ops (copied) with store the server's history, instead of the
 * built-in one. Before wschat_server_listen() only. Loop thread.
 * Returns 0, WSCHAT_EINVAL (a NULL operation), WSCHAT_ESTATE or
 * WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int
wschat_server_set_history_store(struct wschat_server *srv,
                                const struct wschat_history_store *ops,
                                void *store);

/* Adds one stored event to a reply (oldest first; strings copied; text
 * len bytes of valid UTF-8). Loop thread. Returns 0, WSCHAT_EINVAL (a
 * whisper or notice, no room or an invalid one, a string that is not
 * valid UTF-8) or WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_history_reply_add(
    struct wschat_history_reply *reply, enum wschat_event_kind kind,
    uint64_t id, int64_t time_ms, const char *room, const char *from,
    const char *to, const char *text, size_t len, const char *reason);
/* Ends a reply: complete says that no row asked for is missing; more
 * that further rows exist beyond those given; err is 0 or WSCHAT_EIO (the
 * read failed). The reply is freed at once; its answer reaches the
 * reader on a later turn of the loop (so a store may end a reply inside
 * its read()). Loop thread (from another thread, post it with
 * wschat_server_post()). */
WSCHAT_EXTERN void wschat_history_reply_end(struct wschat_history_reply *reply,
                                            int complete, int more, int err);

/* ---------------------------------------------------------------------- */
/* Commands. An application adds "/NAME ARGS" commands; /help lists them
 * after the built-in ones. Built-in names and aliases (help nick join
 * leave part rooms users who whisper w msg me quit) cannot be taken. */

/*
 * Called on the loop thread for "/NAME ..." from a client, after
 * on_message passed it. wschat_command_*() read the command (valid during
 * the call). Return WSCHAT_DROP when handled; WSCHAT_PASS lets the chat
 * answer "! unknown command".
 */
typedef int (*wschat_command_cb)(struct wschat_client *client,
                                 const struct wschat_command *cmd, void *user);

/*
 * Registers /name (1-32 of a-z 0-9 - _, without the slash; matched
 * case-insensitively) with a help line shown by /help as "/name HELP"
 * (help may be NULL; copied). Returns 0, WSCHAT_EINVAL (bad name or cb
 * NULL, or help over 200 bytes or with a control character), WSCHAT_EEXIST
 * (a built-in or already registered) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_add_command(struct wschat_server *srv,
                                            const char *name, const char *help,
                                            wschat_command_cb cb, void *user);
/* Unregisters /name. Returns 0 or WSCHAT_ENOTFOUND. */
WSCHAT_EXTERN int wschat_server_remove_command(struct wschat_server *srv,
                                               const char *name);

/* The command word without the slash, as typed (NUL-terminated). */
WSCHAT_EXTERN const char *wschat_command_name(const struct wschat_command *cmd);
/* Everything after the word, trimmed (not NUL-terminated; len may be NULL). */
WSCHAT_EXTERN const char *wschat_command_args(const struct wschat_command *cmd,
                                             size_t *len);
/* The first word of the arguments and what follows it, trimmed (not
 * NUL-terminated); "" with length 0 if absent. */
WSCHAT_EXTERN const char *wschat_command_arg(const struct wschat_command *cmd,
                                            size_t *len);
WSCHAT_EXTERN const char *wschat_command_rest(const struct wschat_command *cmd,
                                             size_t *len);

/* ---------------------------------------------------------------------- */
/* Messages (valid only during the on_message call) */

/* Returns the message's bytes (not NUL-terminated) and stores the length
 * in *len. The bytes of a text message are valid UTF-8. */
WSCHAT_EXTERN const char *wschat_message_text(const struct wschat_message *msg,
                                              size_t *len);
/* Returns 1 for a binary message, 0 for text. */
WSCHAT_EXTERN int wschat_message_is_binary(const struct wschat_message *msg);
/*
 * Returns the message parsed as a chat command ("/join dev": name "join",
 * args "dev"), or NULL if it is not one (a plain line, "//text", binary,
 * echo mode). Valid during the on_message call, until
 * wschat_message_replace().
 */
WSCHAT_EXTERN const struct wschat_command *
wschat_message_command(struct wschat_message *msg);
/*
 * Replaces the text that the built-in handling will see (copies text).
 * E.g. rewrite "/shrug" into a plain line.
 * Returns 0, WSCHAT_EINVAL (text is not valid UTF-8), WSCHAT_ETOOBIG (over
 * WSCHAT_OPT_MAX_MESSAGE) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_message_replace(struct wschat_message *msg,
                                         const char *text, size_t len);

/* ---------------------------------------------------------------------- */
/* Clients. A client pointer is valid from on_connect to the end of its
 * on_disconnect; to keep a client across callbacks or threads, keep its id
 * and look it up with wschat_server_client(). */

/* Returns the client's unique id (counting from 1 per server; never 0,
 * never reused). */
WSCHAT_EXTERN uint64_t wschat_client_id(const struct wschat_client *client);
/* Returns the connected client with that id, or NULL (gone, or never
 * was). Clients still in their handshake (on_connect, deferred) count.
 * Cost: a walk of the connections (about 20 us at 19,000): for keeping a
 * client across threads and callbacks, not for every message. */
WSCHAT_EXTERN struct wschat_client *
wschat_server_client(struct wschat_server *srv, uint64_t id);
/* Returns the client's name (NUL-terminated; "" before it joins the chat,
 * or the name set in on_connect). Valid until it is renamed or gone. */
WSCHAT_EXTERN const char *wschat_client_name(const struct wschat_client *client);
/* Returns the client's current room (the one the text protocol shows: the
 * one it joined last), or NULL if it is in none. Valid until its rooms
 * change or it is gone. */
WSCHAT_EXTERN const char *wschat_client_room(const struct wschat_client *client);
/* Returns the peer address as text ("127.0.0.1:53211", "[::1]:5000"). */
WSCHAT_EXTERN const char *wschat_client_peer(const struct wschat_client *client);
/* Returns the request path ("/chat") and query ("name=bob", or "" if none;
 * with identity, any token= parameter cut out); valid until the client is
 * gone. */
WSCHAT_EXTERN const char *wschat_client_path(const struct wschat_client *client);
WSCHAT_EXTERN const char *wschat_client_query(const struct wschat_client *client);
/* Returns the negotiated subprotocol, or "" if none (valid until gone). */
WSCHAT_EXTERN const char *
wschat_client_protocol(const struct wschat_client *client);
/*
 * Copies the request header name (case-insensitive; the first one if it is
 * repeated) into buf as a NUL-terminated string. Only until the client is
 * open (in on_connect and while deferred).
 * Returns the value's length, like snprintf: if it is >= cap, nothing was
 * copied (buf holds "" when cap > 0): call again with a buffer of at least
 * that length + 1. Errors: WSCHAT_ENOTFOUND (no such header), WSCHAT_EINVAL
 * (name NULL, or buf NULL with cap > 0), WSCHAT_ESTATE (already open).
 */
WSCHAT_EXTERN int wschat_client_header(const struct wschat_client *client,
                                       const char *name, char *buf,
                                       size_t cap);

/* Attach and read back a pointer of the caller's; the library never touches
 * it. Free what it points to in on_disconnect. */
WSCHAT_EXTERN void wschat_client_set_data(struct wschat_client *client,
                                          void *data);
WSCHAT_EXTERN void *wschat_client_get_data(const struct wschat_client *client);

/* ---- deciding on a new client (in on_connect, or while deferred) ---- */

/*
 * Refuse the client. code 400-599 answers the request with that HTTP
 * status and reason (plus a newline) as the body; a close code (1000, 1001,
 * 1008, 1011 or 3000-4999) accepts the upgrade and then closes with that
 * code and reason (for browsers, which cannot see an HTTP status). reason
 * may be NULL, else valid UTF-8 of at most 123 bytes; copied. Headers
 * added with wschat_client_add_header() go with the answer (e.g.
 * WWW-Authenticate with a 401).
 * In on_connect the answer is sent when the hook returns; while deferred,
 * at once (on_disconnect runs from inside this call).
 * Returns 0, WSCHAT_EINVAL (bad code or reason), WSCHAT_ESTATE (not in
 * on_connect and not deferred) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_reject(struct wschat_client *client, int code,
                                       const char *reason);

/*
 * Only in on_connect: decide later. The answer waits (reading from the
 * client stops) until wschat_client_accept() or wschat_client_reject() is
 * called on the loop thread, e.g. from a wschat_server_post() callback
 * after a token was checked elsewhere. Keep the client's id, not the
 * pointer, across threads. If no decision comes within
 * WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS, the client is answered 503 and
 * disconnected (on_disconnect with 503).
 * Returns 0 or WSCHAT_ESTATE (not in on_connect).
 */
WSCHAT_EXTERN int wschat_client_defer(struct wschat_client *client);

/*
 * Accepts a deferred client: the upgrade is answered and the client joins
 * the chat (with the name and room set, if any) as if on_connect had just
 * returned. Called inside on_connect after wschat_client_defer(), it takes
 * the deferral back (so does wschat_client_reject()): the answer goes when
 * the hook returns. Returns 0 or WSCHAT_ESTATE (not deferred).
 */
WSCHAT_EXTERN int wschat_client_accept(struct wschat_client *client);

/*
 * In on_connect or while deferred: the client's name in the chat (instead
 * of ?name= or guest-N), e.g. from a checked token; wschat_client_name()
 * returns it from now on. Reserved names may be given this way. Copied.
 * The name is taken when the client is accepted: if another client took
 * it meanwhile, this one gets guest-N and a "! name already taken" line.
 * Returns 0, WSCHAT_ENAME, WSCHAT_ENAMETAKEN (a connected client has it),
 * WSCHAT_ESTATE (the client is already open) or WSCHAT_EINVAL.
 */
WSCHAT_EXTERN int wschat_client_set_name(struct wschat_client *client,
                                         const char *name);
/*
 * In on_connect or while deferred: the room the client starts in (instead
 * of ?room= or lobby). Copied. Returns 0, WSCHAT_EROOM or WSCHAT_ESTATE.
 */
WSCHAT_EXTERN int wschat_client_set_room(struct wschat_client *client,
                                         const char *room);

/*
 * The Sec-WebSocket-Protocol values the client offered, in its order, as
 * one comma-separated list exactly as sent ("" if none; with identity, the
 * "wschat.token." entry cut out); valid until the client is open.
 */
WSCHAT_EXTERN const char *
wschat_client_protocols(const struct wschat_client *client);
/*
 * In on_connect or while deferred: answer the upgrade with subprotocol
 * proto, which must be one the client offered (NULL: none). Copied.
 * Returns 0, WSCHAT_EINVAL (not offered), WSCHAT_ESTATE or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_set_protocol(struct wschat_client *client,
                                             const char *proto);
/*
 * In on_connect or while deferred: adds "name: value" to the answer (the
 * 101, or the refusal). name is a header token, value printable text
 * without CR or LF; at most 16 headers and 4 KiB in all. Copied. Headers the
 * handshake owns (Upgrade, Connection, Sec-WebSocket-*, Content-Length)
 * are refused.
 * Returns 0, WSCHAT_EINVAL, WSCHAT_ETOOMANY, WSCHAT_ESTATE or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_add_header(struct wschat_client *client,
                                           const char *name,
                                           const char *value);

/* ---- talking to a client ---- */

/*
 * Sends a text message to one client (copies text; must be valid UTF-8).
 * With a history store, it goes out after the replay of a room the client
 * is joining, like the room's own traffic (so a greeting from on_join
 * follows the join).
 * Returns 0, WSCHAT_ENOTOPEN (still in its handshake), WSCHAT_ECLOSED,
 * WSCHAT_EINVAL (invalid UTF-8) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_send(struct wschat_client *client,
                                     const char *text, size_t len);
/* Same as wschat_client_send() with a binary message (no UTF-8 check). */
WSCHAT_EXTERN int wschat_client_send_binary(struct wschat_client *client,
                                            const void *data, size_t len);

/*
 * Starts closing a client with code (1000, 1001, 1008, 1011 or 3000-4999)
 * and reason (NULL, or valid UTF-8 of at most 123 bytes; copied). The
 * client's rooms see "* NAME left #ROOM (REASON)" when a reason is given
 * (a kick). on_disconnect follows (from inside this call). In on_connect
 * or while deferred, this is wschat_client_reject().
 * Returns 0, WSCHAT_EINVAL or WSCHAT_ECLOSED (already closing).
 */
WSCHAT_EXTERN int wschat_client_close(struct wschat_client *client, int code,
                                      const char *reason);

/* Looks a connected client up by name (case-insensitive); NULL if none. */
WSCHAT_EXTERN struct wschat_client *
wschat_server_find_client(struct wschat_server *srv, const char *name);

/* ---------------------------------------------------------------------- */
/* Chat: rooms and names (chat mode). A client may be in several rooms at
 * once (WSCHAT_OPT_MAX_ROOMS). Its current room is the one it joined last;
 * the text protocol shows one room at a time (/join moves, a line goes to
 * the current room). */

/*
 * Broadcasts a notice (text as it is) to every member of room (NULL: every
 * chat client), except skip (may be NULL). The message is framed once and
 * shared by every recipient; watchers see a NOTICE event. Copies text.
 * Returns 0, WSCHAT_EROOM (not a valid room name), WSCHAT_ENOTFOUND (no
 * such room), WSCHAT_EINVAL (invalid UTF-8, srv NULL) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_broadcast(struct wschat_server *srv,
                                          const char *room, const char *text,
                                          size_t len,
                                          const struct wschat_client *skip);

/*
 * Says a line in room as name, rendered exactly like a client's line
 * ("[ROOM] NAME: TEXT"): for bots. name need not be a connected client;
 * reserve it (wschat_server_reserve_name()) so that no client takes it.
 * Copies everything. Returns 0, WSCHAT_ENAME, WSCHAT_EROOM,
 * WSCHAT_ENOTFOUND (no such room), WSCHAT_EINVAL (invalid UTF-8) or
 * WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_say(struct wschat_server *srv,
                                    const char *room, const char *name,
                                    const char *text, size_t len);

/*
 * Reserves a name: no client can take it (?name=, /nick, rename), except
 * through wschat_client_set_name(). A client that has it already keeps it.
 * Returns 0, WSCHAT_ENAME, WSCHAT_EEXIST (already reserved) or
 * WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_reserve_name(struct wschat_server *srv,
                                             const char *name);
/* Releases a reserved name. Returns 0 or WSCHAT_ENOTFOUND. */
WSCHAT_EXTERN int wschat_server_release_name(struct wschat_server *srv,
                                             const char *name);

/*
 * keep 1: creates room if new and keeps it while empty (an application's
 * room). keep 0: lets it go again (it disappears when empty; lobby always
 * stays). Returns 0, WSCHAT_EROOM, WSCHAT_ENOTFOUND (keep 0, no such room)
 * or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_keep_room(struct wschat_server *srv,
                                          const char *room, int keep);

/*
 * Adds a membership: the client enters room (created if new) and stays in
 * its other rooms; room becomes its current room. The room sees the join
 * notice (unless it is quiet), then on_join runs.
 * Returns 0, WSCHAT_EROOM, WSCHAT_ESAMEROOM (already a member),
 * WSCHAT_ETOOMANY (WSCHAT_OPT_MAX_ROOMS), WSCHAT_ENOTOPEN, WSCHAT_ECLOSED,
 * WSCHAT_ESTATE (echo mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_join(struct wschat_client *client,
                                     const char *room);

/*
 * Leaves room (NULL: the current room); the room sees the leave notice
 * with reason (may be NULL; copied), then on_leave runs. A client that
 * leaves its last room is put back in lobby (lobby sees it join); leaving
 * lobby when it is the only room does nothing and returns 0. Its current
 * room becomes the one it joined last of those left.
 * Returns 0, WSCHAT_EROOM, WSCHAT_ENOTMEMBER, WSCHAT_ENOTOPEN,
 * WSCHAT_ECLOSED, WSCHAT_ESTATE (echo mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_leave(struct wschat_client *client,
                                      const char *room, const char *reason);

/*
 * What /join does: leaves the current room and enters room (created if
 * new); both rooms see the usual notices, then on_leave and on_join run
 * (after the move is complete). Other memberships stay. If the client is
 * already in room (not its current one), room becomes its current room and
 * only the old room is told.
 * Returns 0, WSCHAT_EROOM, WSCHAT_ESAMEROOM, WSCHAT_ENOTOPEN,
 * WSCHAT_ECLOSED, WSCHAT_ESTATE (echo mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_move(struct wschat_client *client,
                                     const char *room);

/*
 * Renames a client; each of its rooms sees "* OLD is now known as NEW"
 * (each member once). Returns 0, WSCHAT_ENAME, WSCHAT_ENAMETAKEN,
 * WSCHAT_ERESERVED, WSCHAT_ENOTOPEN, WSCHAT_ECLOSED, WSCHAT_ESTATE (echo
 * mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_rename(struct wschat_client *client,
                                       const char *name);

/* Visitor of rooms: name and member count. Return nonzero to stop. */
typedef int (*wschat_room_visit_cb)(const char *room, size_t members,
                                    void *user);
/* Visitor of clients. Return nonzero to stop. */
typedef int (*wschat_client_visit_cb)(struct wschat_client *client, void *user);

/*
 * Calls cb (if not NULL) for every room a client is in, in the order it
 * joined them (the current room last). Returns the number visited (with
 * cb NULL: the number of rooms).
 */
WSCHAT_EXTERN size_t wschat_client_rooms(const struct wschat_client *client,
                                         wschat_room_visit_cb cb, void *user);

/*
 * Calls cb (if not NULL) for every room, sorted by name. The visitor must
 * not change rooms or memberships. Returns the number of rooms visited
 * (with cb NULL: the number of rooms).
 */
WSCHAT_EXTERN size_t wschat_server_rooms(struct wschat_server *srv,
                                         wschat_room_visit_cb cb, void *user);
/*
 * Calls cb (if not NULL) for every member of room (NULL: every chat
 * client), in no set order. The visitor must not change rooms or
 * memberships. Returns the number visited (with cb NULL: the number of
 * members), or 0 if there is no such room.
 */
WSCHAT_EXTERN size_t wschat_server_members(struct wschat_server *srv,
                                           const char *room,
                                           wschat_client_visit_cb cb,
                                           void *user);

/* ---------------------------------------------------------------------- */
/* HTTP on the WebSocket port: plain requests (not upgrades) to registered
 * paths are answered by the application. Built in: GET /healthz (200 ok);
 * GET / answers 426 unless a route takes it (chat-cli's web page does);
 * anything else 404. */

/*
 * Called on the loop thread for a plain GET or HEAD request to a registered
 * path. It must answer before it returns, with wschat_http_respond() (else
 * the client gets 500). The request is valid during the call only.
 */
typedef void (*wschat_http_cb)(struct wschat_http_request *req, void *user);

/*
 * Registers path: exact ("/metrics"), or a prefix when it ends in '/'
 * ("/static/" takes "/static/app.js"); the longest match wins. "/" is
 * exact: it takes the root only, not every path. A route may take "/"
 * and "/healthz" (replacing the built-in answers). Copied.
 * Returns 0, WSCHAT_EINVAL (path not starting with '/', or over 256
 * bytes), WSCHAT_EEXIST or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_route(struct wschat_server *srv,
                                      const char *path, wschat_http_cb cb,
                                      void *user);

/* The request's method ("GET" or "HEAD"), path, and query ("" if none). */
WSCHAT_EXTERN const char *
wschat_http_method(const struct wschat_http_request *req);
WSCHAT_EXTERN const char *
wschat_http_path(const struct wschat_http_request *req);
WSCHAT_EXTERN const char *
wschat_http_query(const struct wschat_http_request *req);
/* A request header, as wschat_client_header() (same returns). */
WSCHAT_EXTERN int wschat_http_header(const struct wschat_http_request *req,
                                     const char *name, char *buf, size_t cap);
/* Adds a response header (same rules as wschat_client_add_header()). */
WSCHAT_EXTERN int wschat_http_add_header(struct wschat_http_request *req,
                                         const char *name, const char *value);
/*
 * Answers with status (200-599), content_type (NULL: text/plain;
 * charset=utf-8) and body (copied; for HEAD only its length is sent). The
 * connection closes after the answer. 204 and 304 (e.g. to a request whose
 * If-None-Match names the ETag you send) have no body: len must be 0, and
 * the answer has no Content-Length, and no Content-Type unless you give
 * one.
 * Returns 0, WSCHAT_EINVAL (also: a body with 204 or 304), WSCHAT_ESTATE
 * (already answered) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_http_respond(struct wschat_http_request *req,
                                      int status, const char *content_type,
                                      const void *body, size_t len);

/* ---------------------------------------------------------------------- */
/* Cluster mode: several servers (nodes) share rooms, presence, whispers
 * and history through Redis (docs/CLUSTER.md). Every event takes its id
 * from Redis (strictly increasing cluster-wide, one order per room); a
 * node subscribes to a room's channel while it has members there. Without
 * Redis a node goes on serving its own members (events stay on it) and
 * reconnects with backoff. */

struct wschat_cluster_options {
  const char *node_id; /* this node's name in Redis (copied; at most 100
                          bytes, no spaces); NULL or "": host:pid:random */
  int history;         /* 1: room history in Redis streams becomes the
                          server's store (recovery works on every node) */
  size_t max_per_room; /* history: entries kept per room, about (MAXLEN ~;
                          0: 10,000) */
};

/*
 * Makes srv a node of the cluster on the Redis server at url
 * ("redis://HOST:PORT[/DB]", copied). Before wschat_server_listen() only,
 * and not with another history store (with opt->history). The node
 * connects when it listens, and never waits for Redis on the loop: if
 * Redis is not there yet, it serves its own members and keeps trying.
 * opt may be NULL (no history, a made-up node id). Loop thread. The
 * server owns what this makes (freed with it).
 * Returns 0, WSCHAT_EINVAL (not such a URL, a bad node id), WSCHAT_ESTATE
 * (listening, a cluster or a history store set already) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int
wschat_server_set_cluster(struct wschat_server *srv, const char *url,
                          const struct wschat_cluster_options *opt);

#ifdef __cplusplus
}
#endif
#endif /* WSCHAT_H */
