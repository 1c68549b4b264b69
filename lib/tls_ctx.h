/*
 * tls_ctx.h: the server's TLS state, made, reloaded and freed by
 * tls_ctx.c (for server_tls.c) and read by stream_tls.c (the connections),
 * which sits above it and never the other way round (the BIO method and
 * the renegotiation callback are stream_tls's own).
 */
#ifndef WSCHAT_TLS_CTX_H
#define WSCHAT_TLS_CTX_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#define WSCHAT__TLS_RECORD 16384   /* plaintext per SSL_write: one record */
#define WSCHAT__TLS_CIN (64 * 1024) /* the shared ciphertext read buffer */

struct wschat__metrics;
struct wschat__log;

/* A growing byte buffer (owned p). */
struct wschat__tls_buf {
  char *p;
  size_t len, cap;
};

/* One per server (owned by it; wschat__tls_new()). */
struct wschat__tls {
  SSL_CTX *ctx; /* the current one (our reference) */
  char *cert, *key, *ca; /* owned copies of the paths */
  BIO_METHOD *bio_method; /* owned; made by stream_tls at its first wrap */
  struct wschat__metrics *metrics;
  const struct wschat__log *log;
  char cin[WSCHAT__TLS_CIN];       /* ciphertext read (one read at a time) */
  char plain[WSCHAT__TLS_RECORD];  /* plaintext gathered into one record */
  struct wschat__tls_buf scratch;  /* ciphertext written, until settled */
};

/* Makes the server's TLS state and reads cert (PEM chain), key (PEM) and
 * ca (PEM, or NULL: no client certificates asked for); copies the paths.
 * metrics and log stay the server's. Returns 0 and *out (owned by the
 * caller, wschat__tls_free()); -1 if a file is unusable (why, in err);
 * -2 for no memory. */
int wschat__tls_new(struct wschat__tls **out, const char *cert,
                    const char *key, const char *ca,
                    struct wschat__metrics *metrics,
                    const struct wschat__log *log, char *err, size_t cap);

/* Reads the files again into a new context for new connections; open
 * ones keep the old context until they close. Returns 0, or -1 (why, in
 * err) keeping the current context. */
int wschat__tls_reload(struct wschat__tls *t, char *err, size_t cap);

/* Frees the server's state (every TLS connection is closed by then). */
void wschat__tls_free(struct wschat__tls *t);

#endif
