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
#define WSCHAT_VERSION_MINOR 1
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
  /* the system */
  WSCHAT_ENOMEM = -20,      /* out of memory */
  WSCHAT_EIO = -21,         /* a libuv or socket error (see the log line) */
  WSCHAT_EADDR = -22,       /* the address could not be resolved or bound */
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

/* Numeric options, set with wschat_server_set_option() before listening. */
enum wschat_option {
  WSCHAT_OPT_MODE = 1,              /* enum wschat_mode; default CHAT */
  WSCHAT_OPT_MAX_MESSAGE,           /* bytes per message in; default 1 MiB */
  WSCHAT_OPT_MAX_OUTPUT,            /* bytes queued out per client; 1 MiB */
  WSCHAT_OPT_MAX_HEADER,            /* bytes of HTTP request head; 8192 */
  WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS,  /* default 10000 */
  WSCHAT_OPT_PING_INTERVAL_MS,      /* ping after this much silence (each
                                       client up to 1/4 sooner); 20000 */
  WSCHAT_OPT_PING_TIMEOUT_MS,       /* close if no answer by then; 20000 */
  WSCHAT_OPT_CLOSE_TIMEOUT_MS,      /* wait for the peer's close; 3000 */
  WSCHAT_OPT_BACKLOG,               /* listen() backlog; default 1024 */
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
 * they are needed; set them before wschat_server_listen().
 * Returns 0, WSCHAT_EINVAL (unknown option or value out of range) or
 * WSCHAT_ESTATE (WSCHAT_OPT_MODE once listening).
 */
WSCHAT_EXTERN int wschat_server_set_option(struct wschat_server *srv,
                                           enum wschat_option opt,
                                           int64_t value);

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
 * not told of each leave (the hooks still run). Calls cb (if not NULL)
 * once at the end. A second call does nothing.
 * Returns 0 or WSCHAT_ESTATE (already shutting down).
 */
WSCHAT_EXTERN int wschat_server_shutdown(struct wschat_server *srv,
                                         wschat_shutdown_cb cb, void *user);

/*
 * Frees a server. Call it after the shutdown callback has run (or if the
 * server never listened). Closes and frees its own loop, if any.
 * Returns 0 or WSCHAT_ESTATE (clients still open: shut down first).
 */
WSCHAT_EXTERN int wschat_server_free(struct wschat_server *srv);

/*
 * Thread-safe. Broadcasts a text message to a room (NULL: everyone) from
 * any thread. Copies text; the message is delivered on the loop thread,
 * in the order of the calls.
 * Returns 0, WSCHAT_EINVAL (invalid UTF-8), WSCHAT_ENOMEM or WSCHAT_ECLOSED
 * (not listening yet, or a shutdown has begun).
 */
WSCHAT_EXTERN int wschat_server_post_broadcast(struct wschat_server *srv,
                                               const char *room,
                                               const char *text, size_t len);

/*
 * Thread-safe. Asks the loop thread to start wschat_server_shutdown(srv,
 * NULL, NULL); for signal handlers of your own and worker threads.
 * Returns 0 or WSCHAT_ECLOSED.
 */
WSCHAT_EXTERN int wschat_server_post_shutdown(struct wschat_server *srv);

/* ---------------------------------------------------------------------- */
/* Hooks. Every connection that completes its HTTP upgrade request gets
 * exactly one on_connect and then exactly one on_disconnect, whatever
 * happens. Hooks run on the loop thread; they may call any function here,
 * including closing the client they are called for. */

/*
 * Called when a valid upgrade request arrived, before the answer is sent.
 * The client has no name or room yet; wschat_client_path(), _query() and
 * _header() tell what it asked for. To refuse it, call
 * wschat_client_reject() from here. Return value: ignored (return 0).
 */
typedef int (*wschat_connect_cb)(struct wschat_client *client, void *user);

/*
 * Called once when a client is gone (or is going: its socket may still be
 * flushing), with the close code sent or received (1006 if the connection
 * dropped without one; the HTTP status if it was refused with one in
 * on_connect). In chat mode the client has already left its room (after
 * on_leave). Sending to it from here returns WSCHAT_ECLOSED. The client
 * pointer is invalid after this returns.
 */
typedef void (*wschat_disconnect_cb)(struct wschat_client *client, int code,
                                     void *user);

/* What an on_message hook decides. */
enum wschat_verdict {
  WSCHAT_PASS = 0, /* carry on: built-in handling (possibly of replaced text) */
  WSCHAT_DROP = 1, /* stop here: the hook handled the message or dropped it */
};

/*
 * Called for every message from a client (every chat line and command in
 * chat mode, every message in echo mode) before the built-in handling.
 * wschat_message_text() reads it, wschat_message_replace() changes it.
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
/* Messages (valid only during the on_message call) */

/* Returns the message's bytes (not NUL-terminated) and stores the length
 * in *len. The bytes of a text message are valid UTF-8. */
WSCHAT_EXTERN const char *wschat_message_text(const struct wschat_message *msg,
                                              size_t *len);
/* Returns 1 for a binary message, 0 for text. */
WSCHAT_EXTERN int wschat_message_is_binary(const struct wschat_message *msg);
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
 * on_disconnect. */

/* Returns the client's unique id (counting from 1 per server). */
WSCHAT_EXTERN uint64_t wschat_client_id(const struct wschat_client *client);
/* Returns the client's name (NUL-terminated; "" before it joins the chat).
 * Valid until the client is renamed or gone. */
WSCHAT_EXTERN const char *wschat_client_name(const struct wschat_client *client);
/* Returns the client's room name, or NULL if it is in none. Valid until it
 * changes room or is gone. */
WSCHAT_EXTERN const char *wschat_client_room(const struct wschat_client *client);
/* Returns the peer address as text ("127.0.0.1:53211", "[::1]:5000"). */
WSCHAT_EXTERN const char *wschat_client_peer(const struct wschat_client *client);
/* Returns the request path ("/chat") and query ("name=bob", or "" if none);
 * valid until the client is gone. */
WSCHAT_EXTERN const char *wschat_client_path(const struct wschat_client *client);
WSCHAT_EXTERN const char *wschat_client_query(const struct wschat_client *client);
/*
 * Copies the request header name (case-insensitive) into buf (NUL-ended).
 * Only during on_connect. Returns its length, WSCHAT_ENOTFOUND, or
 * WSCHAT_EINVAL (does not fit, or not in on_connect).
 */
WSCHAT_EXTERN int wschat_client_header(const struct wschat_client *client,
                                       const char *name, char *buf,
                                       size_t cap);

/* Attach and read back a pointer of the caller's; the library never touches
 * it. Free what it points to in on_disconnect. */
WSCHAT_EXTERN void wschat_client_set_data(struct wschat_client *client,
                                          void *data);
WSCHAT_EXTERN void *wschat_client_get_data(const struct wschat_client *client);

/*
 * Only in on_connect: refuse the client. code 400-599 answers the request
 * with that HTTP status and reason (plus a newline) as the body; a close code (1000, 1001,
 * 1008, 1011 or 3000-4999) accepts the upgrade and then closes with that
 * code and reason (for browsers, which cannot see an HTTP status). reason
 * may be NULL, else valid UTF-8 of at most 123 bytes; copied.
 * Returns 0, WSCHAT_EINVAL (bad code or reason), WSCHAT_ESTATE (not in
 * on_connect) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_reject(struct wschat_client *client, int code,
                                       const char *reason);

/*
 * Sends a text message to one client (copies text; must be valid UTF-8).
 * Returns 0, WSCHAT_ECLOSED, WSCHAT_EINVAL (invalid UTF-8) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_send(struct wschat_client *client,
                                     const char *text, size_t len);
/* Same as wschat_client_send() with a binary message (no UTF-8 check). */
WSCHAT_EXTERN int wschat_client_send_binary(struct wschat_client *client,
                                            const void *data, size_t len);

/*
 * Starts closing a client with code (1000, 1001, 1008, 1011 or 3000-4999)
 * and reason (NULL, or valid UTF-8 of at most 123 bytes; copied).
 * on_disconnect follows (from inside this call).
 * Returns 0, WSCHAT_EINVAL or WSCHAT_ECLOSED (already closing).
 */
WSCHAT_EXTERN int wschat_client_close(struct wschat_client *client, int code,
                                      const char *reason);

/* Looks a connected client up by name (case-insensitive); NULL if none. */
WSCHAT_EXTERN struct wschat_client *
wschat_server_find_client(struct wschat_server *srv, const char *name);

/* ---------------------------------------------------------------------- */
/* Chat: rooms and names (chat mode) */

/*
 * Broadcasts a text message to every member of room (NULL: every client of
 * the server), except skip (may be NULL). The message is framed once and
 * shared by every recipient. Copies text.
 * Returns 0, WSCHAT_ENOTFOUND (no such room), WSCHAT_EINVAL (invalid
 * UTF-8) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_server_broadcast(struct wschat_server *srv,
                                          const char *room, const char *text,
                                          size_t len,
                                          const struct wschat_client *skip);

/*
 * Moves a client into room (created if new), leaving its current room;
 * both rooms see the usual notices, then on_leave and on_join run (after
 * the move is complete).
 * Returns 0, WSCHAT_EROOM, WSCHAT_ESAMEROOM, WSCHAT_ECLOSED, WSCHAT_ESTATE
 * (echo mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_join(struct wschat_client *client,
                                     const char *room);

/* Moves a client back to "lobby", like /leave. Same returns as join. */
WSCHAT_EXTERN int wschat_client_leave(struct wschat_client *client);

/*
 * Renames a client; its room sees "* OLD is now known as NEW".
 * Returns 0, WSCHAT_ENAME, WSCHAT_ENAMETAKEN, WSCHAT_ECLOSED, WSCHAT_ESTATE
 * (echo mode) or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_client_rename(struct wschat_client *client,
                                       const char *name);

/* Visitor of rooms: name and member count. Return nonzero to stop. */
typedef int (*wschat_room_visit_cb)(const char *room, size_t members,
                                    void *user);
/* Visitor of clients. Return nonzero to stop. */
typedef int (*wschat_client_visit_cb)(struct wschat_client *client, void *user);

/*
 * Calls cb for every room, sorted by name. The visitor must not change
 * rooms or memberships. Returns the number of rooms visited.
 */
WSCHAT_EXTERN size_t wschat_server_rooms(struct wschat_server *srv,
                                         wschat_room_visit_cb cb, void *user);
/*
 * Calls cb for every member of room (NULL: every chat client), in no set
 * order. The visitor must not change rooms or memberships. Returns the number
 * visited, or 0 if there is no such room.
 */
WSCHAT_EXTERN size_t wschat_server_members(struct wschat_server *srv,
                                           const char *room,
                                           wschat_client_visit_cb cb,
                                           void *user);

#ifdef __cplusplus
}
#endif
#endif /* WSCHAT_H */
