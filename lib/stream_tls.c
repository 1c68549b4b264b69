/* stream_tls: TLS over the TCP stream with OpenSSL. See stream_tls.h.
 *
 * Reading: libuv reads ciphertext into the server's shared buffer; our
 * BIO lends it to OpenSSL (no copy into a BIO of its own); the handshake
 * is driven, then SSL_read decrypts into the conn's buffer (its alloc
 * upcall) and each piece goes up at once. Every piece of a read is handed
 * up, even after the conn stopped reading (conn takes what it is given,
 * like the rest of a TCP read).
 *
 * Writing: the conn's try_write encrypts (up to TRY_LIMIT of plaintext,
 * in 16 KiB records) into the server's shared ciphertext buffer and tries
 * the socket once; what the socket does not take is copied into the
 * connection's own buffer and written in the background, and until it is
 * gone try_write takes nothing more (the conn then hands the rest to
 * write, which encrypts CHUNK at a time behind it). So the ciphertext a
 * connection holds is bounded (MAX_PENDING), and an idle one holds none.
 *
 * The shared ciphertext buffer is only ever used between the start of an
 * OpenSSL call and settle() right after it, never across an upcall, so
 * one connection's upcall cannot find it in use by another.
 */
#include "stream_tls.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "metrics.h"
#include "tls_ctx.h"

#define TLS_RECORD WSCHAT__TLS_RECORD
#define TRY_LIMIT (64 * 1024)    /* plaintext encrypted per try_write */
#define CHUNK (64 * 1024)        /* ... per step of a background write */
#define MAX_PENDING (1024 * 1024) /* ciphertext held: over it, fail */
#define CIN WSCHAT__TLS_CIN

const char *const wschat__tls_fail_names[WSCHAT__TLS_FAIL_KINDS] = {
    "http", "protocol", "client_cert", "timeout", "eof"};

static int wbuf_add(struct wschat__tls_buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static void wbuf_free(struct wschat__tls_buf *b) {
  free(b->p);
  *b = (struct wschat__tls_buf){0};
}

/* One connection's TLS state (owned by the stream: freed at close). */
struct tconn {
  const struct wschat__stream_cbs *up; /* the conn's upcalls */
  struct wschat__tls *t; /* the server's (not owned; outlives us) */
  SSL *ssl;          /* owned; holds a reference to its SSL_CTX */
  const char *in;    /* ciphertext lent to OpenSSL during a read */
  size_t in_len;
  struct wschat__tls_buf *sink; /* where the BIO's writes go now */
  struct wschat__tls_buf out;   /* owned: ciphertext waiting behind fly */
  struct wschat__tls_buf fly;   /* owned: ciphertext being written (uv_write) */
  /* The conn's background write: a copy of its buffer array (owned; the
   * bytes stay the conn's), where encryption has got to. */
  uv_buf_t *pw;
  unsigned pw_n, pw_i;
  size_t pw_off;
  uint8_t pw_active;
  uint8_t hs_done;   /* the handshake ended well */
  uint8_t closing;   /* close() was called */
  uint8_t failed;    /* a fatal TLS error: no close_notify */
  uint8_t shut;      /* 1 wanted, 2 close_notify queued, 3 TCP shut */
  uint8_t counted;   /* the handshake's end was counted */
  uint8_t reneg;     /* the peer tried to renegotiate */
  uint8_t eof;       /* the peer went away (EOF, or a write met a reset) */
};

static struct wschat__stream_tcp *T(struct wschat__stream *s) {
  return (struct wschat__stream_tcp *)s;
}
static struct tconn *TC(struct wschat__stream *s) { return T(s)->tcp.data; }
static struct wschat__stream *S(uv_handle_t *h) {
  return (struct wschat__stream *)((char *)h -
                                   offsetof(struct wschat__stream_tcp, tcp));
}
static uv_stream_t *TCP(struct wschat__stream *s) {
  return (uv_stream_t *)&T(s)->tcp;
}

/* ---- the BIO: lends the read at hand, takes what OpenSSL writes ---- */

static int bio_write(BIO *b, const char *d, int n) {
  struct tconn *tc = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (n <= 0)
    return 0;
  if (tc->sink == NULL || wbuf_add(tc->sink, d, (size_t)n) != 0)
    return -1;
  return n;
}

static int bio_read(BIO *b, char *d, int n) {
  struct tconn *tc = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (tc->in_len == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t k = (size_t)n < tc->in_len ? (size_t)n : tc->in_len;
  memcpy(d, tc->in, k);
  tc->in += k;
  tc->in_len -= k;
  return (int)k;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  if (cmd == BIO_CTRL_FLUSH)
    return 1;
  if (cmd == BIO_CTRL_PENDING)
    return (long)((struct tconn *)BIO_get_data(b))->in_len;
  return 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* A TLS 1.2 client's renegotiation: OpenSSL refuses it (no_renegotiation
 * alert, SSL_OP_NO_RENEGOTIATION); we notice the alert and close. */
static void info_cb(const SSL *ssl, int where, int ret) {
  if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT &&
      (ret & 0xff) == SSL_AD_NO_RENEGOTIATION) {
    struct tconn *tc = SSL_get_app_data(ssl);
    if (tc != NULL)
      tc->reneg = 1;
  }
}

static BIO_METHOD *bio_method_new(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wschat");
  if (m != NULL) {
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
  }
  return m;
}

/* ---- counting and logging the handshake's end ---- */

static void log_tls(struct tconn *tc, struct wschat__stream *s, int level,
                    const char *event, const char *reason,
                    const char *detail) {
  if (!wschat__log_on(tc->t->log, level))
    return;
  char peer[64];
  wschat__stream_tcp_ops.peer(s, peer, sizeof(peer));
  struct wschat_log_field f[] = {
      {"peer", peer, 0}, {"reason", reason, 0}, {"detail", detail, 0}};
  wschat__log_event(tc->t->log, level, event, f, detail ? 3 : 2);
}

static void count_failure(struct tconn *tc, struct wschat__stream *s,
                          int kind, const char *detail) {
  if (tc->counted)
    return;
  tc->counted = 1;
  tc->t->metrics->tls_failures[kind]++;
  log_tls(tc, s, WSCHAT_LOG_INFO, "tls_handshake_failed",
          wschat__tls_fail_names[kind], detail);
}

/* Why the handshake failed, from OpenSSL's error queue and the client
 * certificate's verification. */
static int classify(struct tconn *tc, const char **detail) {
  unsigned long e = ERR_peek_last_error();
  int r = ERR_GET_REASON(e);
  long v = SSL_get_verify_result(tc->ssl);
  *detail = e ? ERR_reason_error_string(e) : NULL;
  if (r == SSL_R_HTTP_REQUEST || r == SSL_R_HTTPS_PROXY_REQUEST)
    return WSCHAT__TLS_FAIL_HTTP;
  if (v != X509_V_OK) {
    *detail = X509_verify_cert_error_string(v);
    return WSCHAT__TLS_FAIL_CLIENT_CERT;
  }
  if (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
      r == SSL_R_CERTIFICATE_VERIFY_FAILED)
    return WSCHAT__TLS_FAIL_CLIENT_CERT;
  return WSCHAT__TLS_FAIL_PROTOCOL;
}

/* ---- writing ciphertext ---- */

static void pump(struct tconn *tc, struct wschat__stream *s);

/* A write error that means the peer is gone (it reset or closed): a
 * handshake it cut short is then counted as eof, not as a stall. */
static void note_gone(struct tconn *tc, int err) {
  if (err == UV_EPIPE || err == UV_ECONNRESET)
    tc->eof = 1;
}

static void fly_cb(uv_write_t *req, int status) {
  struct wschat__stream *s = req->data;
  free(req);
  struct tconn *tc = TC(s);
  wbuf_free(&tc->fly);
  if (tc->closing)
    return;
  if (status < 0) {
    tc->failed = 1;
    note_gone(tc, status);
    if (tc->pw_active) {
      tc->pw_active = 0;
      tc->up->on_written(s, status);
    } else {
      tc->up->on_read(s, status, NULL);
    }
    return;
  }
  pump(tc, s);
}

/* Writes out in the background (it becomes fly). */
static int start_fly(struct tconn *tc, struct wschat__stream *s) {
  uv_write_t *req = malloc(sizeof(*req));
  if (req == NULL)
    return UV_ENOMEM;
  tc->fly = tc->out;
  tc->out = (struct wschat__tls_buf){0};
  req->data = s;
  uv_buf_t b = uv_buf_init(tc->fly.p, (unsigned)tc->fly.len);
  int r = uv_write(req, TCP(s), &b, 1, fly_cb);
  if (r != 0) {
    free(req);
    wbuf_free(&tc->fly);
  }
  return r;
}

/* Where OpenSSL's output goes: the shared buffer when nothing of this
 * connection waits (the usual case), else behind what waits. */
static void begin(struct tconn *tc) {
  tc->sink = tc->fly.len || tc->out.len ? &tc->out : &tc->t->scratch;
  ERR_clear_error();
}

/* After an OpenSSL call: what it wrote goes to the socket now (when it
 * went to the shared buffer), the rest in the background. Returns 0 or a
 * negative libuv error. */
static int settle(struct tconn *tc, struct wschat__stream *s) {
  struct wschat__tls_buf *sc = &tc->t->scratch;
  int r = 0;
  if (tc->sink == sc && sc->len > 0) {
    uv_buf_t b = uv_buf_init(sc->p, (unsigned)sc->len);
    int w = uv_try_write(TCP(s), &b, 1);
    if (w == UV_EAGAIN || w == UV_ENOSYS)
      w = 0;
    if (w < 0) {
      r = w;
      note_gone(tc, w);
    }
    else if ((size_t)w < sc->len &&
             wbuf_add(&tc->out, sc->p + w, sc->len - (size_t)w) != 0)
      r = UV_ENOMEM;
    sc->len = 0;
  }
  tc->sink = NULL;
  if (r == 0 && tc->out.len > 0 && tc->fly.len == 0)
    r = start_fly(tc, s);
  if (r == 0 && tc->out.len + tc->fly.len > MAX_PENDING)
    r = UV_ENOBUFS; /* a peer that makes us write and never reads */
  if (r != 0)
    tc->failed = 1;
  return r;
}

/* Encrypts plaintext of b[0..n) from (*i, *off), at most limit bytes, one
 * record per TLS_RECORD gathered. Returns the bytes taken, or -1. */
static long encrypt(struct tconn *tc, const uv_buf_t *b, unsigned n,
                    unsigned *i, size_t *off, size_t limit) {
  size_t done = 0;
  char *g = tc->t->plain;
  while (*i < n && done < limit) {
    size_t left = b[*i].len - *off, cap = limit - done;
    if (cap > TLS_RECORD)
      cap = TLS_RECORD;
    if (left >= cap || (*i + 1 == n && left > 0)) {
      /* A whole record's worth in one buffer (or the last piece): no
       * gathering, OpenSSL reads it where it is. */
      size_t k = left < cap ? left : cap;
      if (SSL_write(tc->ssl, b[*i].base + *off, (int)k) != (int)k)
        return -1;
      done += k;
      *off += k;
      if (*off == b[*i].len) {
        (*i)++;
        *off = 0;
      }
      continue;
    }
    size_t fill = 0;
    while (*i < n && fill < TLS_RECORD && done + fill < limit) {
      size_t k = b[*i].len - *off;
      if (k > TLS_RECORD - fill)
        k = TLS_RECORD - fill;
      if (k > limit - done - fill)
        k = limit - done - fill;
      memcpy(g + fill, b[*i].base + *off, k);
      fill += k;
      *off += k;
      if (*off == b[*i].len) {
        (*i)++;
        *off = 0;
      }
    }
    if (fill == 0)
      break;
    if (SSL_write(tc->ssl, g, (int)fill) != (int)fill)
      return -1;
    done += fill;
  }
  return (long)done;
}

/* Moves the background work on: ciphertext waiting, the conn's write,
 * close_notify and the TCP shutdown, in that order. */
static void shutdown_cb(uv_shutdown_t *req, int status) {
  struct wschat__stream *s = req->data;
  free(req);
  if (!TC(s)->closing)
    TC(s)->up->on_shutdown(s, status);
}

static void fail_up(struct tconn *tc, struct wschat__stream *s, int err) {
  tc->failed = 1;
  if (tc->pw_active) {
    tc->pw_active = 0;
    tc->up->on_written(s, err);
  } else {
    tc->up->on_read(s, err, NULL);
  }
}

static void pump(struct tconn *tc, struct wschat__stream *s) {
  if (tc->closing || tc->fly.len > 0)
    return;
  if (tc->out.len > 0) {
    int r = start_fly(tc, s);
    if (r != 0)
      fail_up(tc, s, r);
    return;
  }
  if (tc->pw_active) {
    if (!tc->hs_done)
      return; /* after the handshake (a refusal answered at accept) */
    if (tc->pw_i == tc->pw_n) {
      tc->pw_active = 0;
      free(tc->pw);
      tc->pw = NULL;
      tc->up->on_written(s, 0); /* may write again: pump runs from there */
      return;
    }
    tc->sink = &tc->out; /* written with uv_write: its callback is late */
    ERR_clear_error();
    long k = encrypt(tc, tc->pw, tc->pw_n, &tc->pw_i, &tc->pw_off, CHUNK);
    int r = k < 0 ? UV_EPROTO : settle(tc, s);
    if (r != 0)
      fail_up(tc, s, r);
    return;
  }
  if (tc->shut == 1) {
    tc->shut = 2;
    if (tc->hs_done && !tc->failed) {
      begin(tc);
      SSL_shutdown(tc->ssl); /* close_notify */
      int r = settle(tc, s);
      if (r != 0) {
        tc->up->on_shutdown(s, r);
        return;
      }
      if (tc->fly.len > 0)
        return; /* here again once it is written */
    }
  }
  if (tc->shut == 2) {
    tc->shut = 3;
    uv_shutdown_t *req = malloc(sizeof(*req));
    int r = req ? 0 : UV_ENOMEM;
    if (req != NULL) {
      req->data = s;
      r = uv_shutdown(req, TCP(s), shutdown_cb);
      if (r != 0)
        free(req);
    }
    if (r != 0)
      tc->up->on_shutdown(s, r);
  }
}

/* ---- the ops ---- */

static int try_write(struct wschat__stream *s, const uv_buf_t *b,
                     unsigned n) {
  struct tconn *tc = TC(s);
  if (tc->failed)
    return UV_EPIPE;
  if (!tc->hs_done || tc->fly.len || tc->out.len || tc->pw_active ||
      tc->shut)
    return 0; /* would block */
  unsigned i = 0;
  size_t off = 0;
  begin(tc);
  long k = encrypt(tc, b, n, &i, &off, TRY_LIMIT);
  int r = settle(tc, s);
  if (k < 0)
    return UV_EPROTO;
  return r < 0 ? r : (int)k;
}

static int write_(struct wschat__stream *s, const uv_buf_t *b, unsigned n) {
  struct tconn *tc = TC(s);
  if (tc->failed)
    return UV_EPIPE;
  if (tc->pw_active)
    return UV_EBUSY;
  uv_buf_t *pw = malloc(n * sizeof(*pw)); /* the conn's array is scratch */
  if (pw == NULL)
    return UV_ENOMEM;
  memcpy(pw, b, n * sizeof(*pw));
  tc->pw = pw;
  tc->pw_n = n;
  tc->pw_i = 0;
  tc->pw_off = 0;
  tc->pw_active = 1;
  if (tc->fly.len == 0 && tc->out.len == 0 && tc->hs_done) {
    /* Start now; on_written comes from uv_write's callback, later. */
    tc->sink = &tc->out;
    ERR_clear_error();
    long k = encrypt(tc, pw, n, &tc->pw_i, &tc->pw_off, CHUNK);
    int r = k < 0 ? UV_EPROTO : settle(tc, s);
    if (r != 0) {
      tc->pw_active = 0;
      free(tc->pw);
      tc->pw = NULL;
      return r;
    }
  }
  return 0;
}

static int shutdown_(struct wschat__stream *s) {
  struct tconn *tc = TC(s);
  if (tc->shut)
    return UV_EALREADY;
  tc->shut = 1;
  pump(tc, s);
  return 0;
}

static void close_cb(uv_handle_t *h) {
  struct wschat__stream *s = S(h);
  struct tconn *tc = TC(s);
  const struct wschat__stream_cbs *up = tc->up;
  SSL_free(tc->ssl);
  wbuf_free(&tc->out);
  wbuf_free(&tc->fly);
  free(tc->pw);
  free(tc);
  T(s)->tcp.data = NULL;
  up->on_closed(s);
}

static void close_(struct wschat__stream *s) {
  struct tconn *tc = TC(s);
  if (tc->closing)
    return;
  if (!tc->hs_done)
    count_failure(tc, s,
                  tc->eof ? WSCHAT__TLS_FAIL_EOF : WSCHAT__TLS_FAIL_TIMEOUT,
                  NULL);
  else if (!tc->failed && tc->shut < 2 && tc->fly.len == 0 &&
           tc->out.len == 0) {
    /* close_notify, if the socket takes it now (never waits). */
    begin(tc);
    SSL_shutdown(tc->ssl);
    settle(tc, s);
  }
  tc->closing = 1;
  uv_close((uv_handle_t *)TCP(s), close_cb);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  struct tconn *tc = TC(S(h));
  *buf = uv_buf_init(tc->t->cin, CIN);
}

#define HTTP_400_BODY "This port speaks TLS: use https:// or wss://.\n"
#define STR2(x) #x
#define STR(x) STR2(x)
#define HTTP_400_LEN 46 /* strlen(HTTP_400_BODY), checked below */
static const char http_400[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: " STR(HTTP_400_LEN) "\r\n"
    "Connection: close\r\n\r\n" HTTP_400_BODY;
_Static_assert(sizeof(HTTP_400_BODY) - 1 == HTTP_400_LEN,
               "Content-Length of the plain 400");

static void handshake_failed(struct tconn *tc, struct wschat__stream *s) {
  const char *detail;
  int kind = classify(tc, &detail);
  ERR_clear_error();
  tc->failed = 1;
  count_failure(tc, s, kind, detail);
  if (kind == WSCHAT__TLS_FAIL_HTTP) {
    /* A plain request: a plain answer, if the socket takes it now. */
    uv_buf_t b = uv_buf_init((char *)http_400, sizeof(http_400) - 1);
    uv_try_write(TCP(s), &b, 1);
  }
  tc->up->on_read(s, UV_EPROTO, NULL);
}

/* Drives the handshake, then decrypts and hands up all of the read. */
static void process(struct tconn *tc, struct wschat__stream *s) {
  if (!tc->hs_done) {
    begin(tc);
    int r = SSL_do_handshake(tc->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(tc->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
      settle(tc, s); /* the alert, if any */
      handshake_failed(tc, s);
      return;
    }
    int w = settle(tc, s); /* a reset right after its Finished: eof */
    if (w != 0) {
      tc->up->on_read(s, w, NULL);
      return;
    }
    if (r != 1)
      return;
    tc->hs_done = 1;
    tc->counted = 1;
    tc->t->metrics->tls_handshakes++;
    if (tc->pw_active)
      pump(tc, s); /* a write waited for the handshake */
  }
  for (;;) {
    uv_buf_t b;
    tc->up->alloc(s, &b);
    begin(tc);
    int r = SSL_read(tc->ssl, b.base, (int)b.len);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(tc->ssl, r);
    int w = settle(tc, s);
    if (tc->reneg) {
      tc->t->metrics->tls_renegotiations++;
      log_tls(tc, s, WSCHAT_LOG_INFO, "tls_refused", "renegotiation", NULL);
      tc->failed = 1;
      tc->up->on_read(s, UV_EPROTO, NULL);
      return;
    }
    if (w != 0) {
      tc->up->on_read(s, w, NULL);
      return;
    }
    if (r > 0) {
      tc->up->on_read(s, r, b.base);
      if (tc->closing)
        return;
      continue;
    }
    if (e == SSL_ERROR_WANT_READ)
      return;
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
      tc->up->on_read(s, UV_EOF, NULL);
      return;
    }
    tc->failed = 1;
    if (wschat__log_on(tc->t->log, WSCHAT_LOG_INFO)) {
      unsigned long x = ERR_peek_last_error();
      log_tls(tc, s, WSCHAT_LOG_INFO, "tls_error", "protocol",
              x ? ERR_reason_error_string(x) : NULL);
    }
    ERR_clear_error();
    tc->up->on_read(s, UV_EPROTO, NULL);
    return;
  }
}

static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  struct wschat__stream *s = S((uv_handle_t *)h);
  struct tconn *tc = TC(s);
  if (n == 0 || tc->closing)
    return;
  if (n < 0) {
    tc->eof = 1;
    tc->up->on_read(s, n, NULL);
    return;
  }
  if (tc->failed)
    return; /* waiting for the conn to close us */
  tc->in = buf->base;
  tc->in_len = (size_t)n;
  process(tc, s);
  tc->in = NULL;
  tc->in_len = 0;
}

static int read_start(struct wschat__stream *s) {
  return uv_read_start(TCP(s), alloc_cb, read_cb);
}

static int read_stop(struct wschat__stream *s) {
  return uv_read_stop(TCP(s));
}

static void peer(struct wschat__stream *s, char *out, size_t cap) {
  wschat__stream_tcp_ops.peer(s, out, cap);
}

static const struct wschat__stream_ops tls_ops = {
    read_start, read_stop, try_write, write_, shutdown_, close_, peer,
};

int wschat__stream_tls_wrap(struct wschat__stream_tcp *s,
                            struct wschat__tls *t,
                            const struct wschat__stream_cbs *cbs) {
  /* The BIO method, made once for the server (owned by t, tls_ctx.c). */
  if (t->bio_method == NULL && (t->bio_method = bio_method_new()) == NULL)
    return -1;
  struct tconn *tc = calloc(1, sizeof(*tc));
  if (tc == NULL)
    return -1;
  tc->up = cbs;
  tc->t = t;
  tc->ssl = SSL_new(t->ctx);
  BIO *bio = BIO_new(t->bio_method);
  if (tc->ssl == NULL || bio == NULL) {
    SSL_free(tc->ssl);
    BIO_free(bio);
    free(tc);
    return -1;
  }
  BIO_set_data(bio, tc);
  SSL_set_bio(tc->ssl, bio, bio); /* the SSL owns it (one reference) */
  SSL_set_app_data(tc->ssl, tc);
  SSL_set_info_callback(tc->ssl, info_cb);
  SSL_set_accept_state(tc->ssl);
  s->base.ops = &tls_ops;
  s->tcp.data = tc;
  return 0;
}
