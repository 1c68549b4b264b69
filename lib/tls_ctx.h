/*
 * tls_ctx.h: what stream_tls.c (the connections) and tls_ctx.c (the
 * server's context) share inside the library, and nobody else: the
 * server's TLS state and the two OpenSSL hooks that reach a connection.
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
  BIO_METHOD *bio_method; /* owned */
  struct wschat__metrics *metrics;
  const struct wschat__log *log;
  char cin[WSCHAT__TLS_CIN];       /* ciphertext read (one read at a time) */
  char plain[WSCHAT__TLS_RECORD];  /* plaintext gathered into one record */
  struct wschat__tls_buf scratch;  /* ciphertext written, until settled */
};

/* stream_tls.c: a new BIO method for the connections' BIOs (the caller
 * owns it), and the info callback that notices a refused renegotiation. */
BIO_METHOD *wschat__tls_bio_method(void);
void wschat__tls_info_cb(const SSL *ssl, int where, int ret);

#endif
