/* stream_tcp: the plain TCP stream (see stream.h) on a libuv uv_tcp_t. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

static struct wschat__stream_tcp *T(struct wschat__stream *s) {
  return (struct wschat__stream_tcp *)s;
}

/* The stream around a handle, and its upcalls. */
static struct wschat__stream *S(uv_handle_t *h) {
  return (struct wschat__stream *)((char *)h -
                                   offsetof(struct wschat__stream_tcp, tcp));
}

static const struct wschat__stream_cbs *CB(struct wschat__stream *s) {
  return T(s)->tcp.data;
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  struct wschat__stream *s = S(h);
  CB(s)->alloc(s, buf);
}

static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  struct wschat__stream *s = S((uv_handle_t *)h);
  if (n != 0)
    CB(s)->on_read(s, n, buf->base);
}

static int read_start(struct wschat__stream *s) {
  return uv_read_start((uv_stream_t *)&T(s)->tcp, alloc_cb, read_cb);
}

static int read_stop(struct wschat__stream *s) {
  return uv_read_stop((uv_stream_t *)&T(s)->tcp);
}

static int try_write(struct wschat__stream *s, const uv_buf_t *b,
                     unsigned n) {
  int r = uv_try_write((uv_stream_t *)&T(s)->tcp, b, n);
  return r == UV_EAGAIN || r == UV_ENOSYS ? 0 : r;
}

static void write_cb(uv_write_t *req, int status) {
  struct wschat__stream *s = req->data;
  free(req);
  CB(s)->on_written(s, status);
}

static int write_(struct wschat__stream *s, const uv_buf_t *b, unsigned n) {
  /* One request per background write, freed in write_cb: most writes
   * finish at once in try_write, and an idle client keeps nothing. */
  uv_write_t *req = malloc(sizeof(*req));
  if (req == NULL)
    return UV_ENOMEM;
  req->data = s;
  int r = uv_write(req, (uv_stream_t *)&T(s)->tcp, b, n, write_cb);
  if (r != 0)
    free(req);
  return r;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  struct wschat__stream *s = req->data;
  free(req);
  CB(s)->on_shutdown(s, status);
}

static int shutdown_(struct wschat__stream *s) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL)
    return UV_ENOMEM;
  req->data = s;
  int r = uv_shutdown(req, (uv_stream_t *)&T(s)->tcp, shutdown_cb);
  if (r != 0)
    free(req);
  return r;
}

static void close_cb(uv_handle_t *h) {
  struct wschat__stream *s = S(h);
  CB(s)->on_closed(s);
}

static void close_(struct wschat__stream *s) {
  uv_close((uv_handle_t *)&T(s)->tcp, close_cb);
}

static void peer(struct wschat__stream *s, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&T(s)->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
           port);
}

const struct wschat__stream_ops wschat__stream_tcp_ops = {
    read_start, read_stop, try_write, write_, shutdown_, close_, peer,
};

int wschat__stream_tcp_accept(struct wschat__stream_tcp *s, uv_loop_t *loop,
                              uv_stream_t *listener,
                              const struct wschat__stream_cbs *cbs) {
  s->base.ops = &wschat__stream_tcp_ops;
  int r = uv_tcp_init(loop, &s->tcp);
  s->tcp.data = (void *)cbs; /* (uv_tcp_init keeps data as it is) */
  if (r != 0)
    return r; /* no handle: nothing to close, and no on_closed; the caller
                 refuses the pending connection */
  r = uv_accept(listener, (uv_stream_t *)&s->tcp);
  if (r != 0) {
    close_(&s->base);
    return r;
  }
  uv_tcp_nodelay(&s->tcp, 1);
  return 0;
}

static void free_handle(uv_handle_t *h) { free(h); }

static void spare_closed(uv_handle_t *h) {
  struct wschat__spare *spare = h->data;
  spare->busy = 0;
  /* A connection refused while the spare was busy is still pending on the
   * listener, which libuv no longer polls: take it now. */
  if (spare->pending > 0 && !uv_is_closing((uv_handle_t *)spare->listener)) {
    spare->pending--;
    wschat__stream_tcp_refuse(h->loop, spare->listener, spare);
  } else {
    spare->pending = 0;
  }
}

void wschat__stream_tcp_refuse(uv_loop_t *loop, uv_stream_t *listener,
                               struct wschat__spare *spare) {
  /* libuv stops polling a listener until uv_accept() takes the pending
   * connection, so take it even when it cannot be served: into a small
   * handle of its own, or, when even that cannot be had, into the spare. */
  uv_tcp_t *t = malloc(sizeof(*t));
  uv_close_cb done = free_handle;
  if (t == NULL) {
    if (spare->busy) { /* taken when the spare is free again */
      spare->pending++;
      spare->listener = listener;
      return;
    }
    t = &spare->tcp;
    t->data = spare;
    done = spare_closed;
  }
  if (uv_tcp_init(loop, t) != 0) {
    if (done == free_handle)
      free(t);
    return;
  }
  if (t == &spare->tcp)
    spare->busy = 1;
  uv_accept(listener, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, done);
}
