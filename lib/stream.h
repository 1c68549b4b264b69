/*
 * stream: the seam between a connection and its transport. A connection
 * reads, writes (a try at once, then the rest in the background), shuts
 * down its sending side and closes through these operations only, so a
 * TLS stream (OpenSSL memory BIOs over the TCP one) can sit under it
 * without the WebSocket, HTTP or chat layers knowing.
 *
 * Owns: the transport's handle and requests (stream_tcp: the uv_tcp_t,
 * one uv_write_t or uv_shutdown_t while one is pending). Never parses,
 * never keeps what it read: each read is handed up at once.
 */
#ifndef WSCHAT_STREAM_H
#define WSCHAT_STREAM_H

#include <stddef.h>

#include <uv.h>

struct wschat__stream;

/* Upcalls, shared by every stream of one server. They get the stream
 * itself: its owner embeds it (first, or at a known offset) and finds
 * itself from it, so a stream stores no user pointer of its own. */
struct wschat__stream_cbs {
  /* A buffer to read into (valid until on_read returns). */
  void (*alloc)(struct wschat__stream *s, uv_buf_t *buf);
  /* n > 0 bytes arrived; n < 0: EOF (UV_EOF) or an error. */
  void (*on_read)(struct wschat__stream *s, ssize_t n, char *data);
  /* The background write finished (status 0 or negative). */
  void (*on_written)(struct wschat__stream *s, int status);
  /* The shutdown finished (status 0 or negative). */
  void (*on_shutdown)(struct wschat__stream *s, int status);
  /* The stream is closed: its memory may be freed now. */
  void (*on_closed)(struct wschat__stream *s);
};

struct wschat__stream_ops {
  int (*read_start)(struct wschat__stream *s);
  int (*read_stop)(struct wschat__stream *s);
  /* Writes what the transport takes now: the bytes written, 0 if none
   * (would block), or a negative libuv error. */
  int (*try_write)(struct wschat__stream *s, const uv_buf_t *b, unsigned n);
  /* Writes all of b in the background (the memory must stay valid until
   * on_written); one at a time. Returns 0 or a negative libuv error. */
  int (*write)(struct wschat__stream *s, const uv_buf_t *b, unsigned n);
  /* Ends the sending side once written; on_shutdown follows. */
  int (*shutdown)(struct wschat__stream *s);
  /* Closes; on_closed follows (always, exactly once). */
  void (*close)(struct wschat__stream *s);
  /* The peer's address as text ("1.2.3.4:5", "[::1]:5"). */
  void (*peer)(struct wschat__stream *s, char *out, size_t cap);
};

struct wschat__stream {
  const struct wschat__stream_ops *ops;
};

/* A TCP stream, embedded in whatever owns it. */
struct wschat__stream_tcp {
  struct wschat__stream base;
  uv_tcp_t tcp; /* tcp.data: the upcalls (struct wschat__stream_cbs); under
                 * TLS, stream_tls's state for the connection instead */
};

/* The TCP stream's operations (stream_tls reuses peer()). */
extern const struct wschat__stream_ops wschat__stream_tcp_ops;

/*
 * Accepts one pending connection from listener into s. Returns 0; or a
 * negative libuv error: if s's handle could be made (the error is from
 * uv_accept) it is closed and cbs->on_closed follows; if not
 * (UV_ENOMEM-like errors of uv_tcp_init), nothing follows and the caller
 * must refuse the pending connection.
 */
int wschat__stream_tcp_accept(struct wschat__stream_tcp *s, uv_loop_t *loop,
                              uv_stream_t *listener,
                              const struct wschat__stream_cbs *cbs);

/* A handle kept by the server for refusing connections when memory is
 * short. */
struct wschat__spare {
  uv_tcp_t tcp;
  int busy;     /* closing */
  int pending;  /* refusals that waited for it */
  uv_stream_t *listener; /* of the pending refusals */
};

/* Takes one pending connection off listener and closes it at once (when
 * there is no memory for a client): libuv stops polling a listener whose
 * pending connection was not accepted. */
void wschat__stream_tcp_refuse(uv_loop_t *loop, uv_stream_t *listener,
                               struct wschat__spare *spare);

#endif
