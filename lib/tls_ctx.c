/*
 * tls_ctx: a server's TLS context (struct wschat__tls): the SSL_CTX made
 * from the certificate, key and CA files (TLS 1.2 and 1.3, no
 * renegotiation, no compression, ALPN http/1.1, client certificates when
 * a CA is given), made again by a reload, and the buffers its connections
 * share. Reads files only here (set_tls, reload); does no I/O on sockets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "metrics.h"
#include "tls_ctx.h"

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char h11[] = "\x08http/1.1";
  if (SSL_select_next_proto((unsigned char **)out, outlen, h11,
                            sizeof(h11) - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK; /* no ALPN rather than no connection */
}

static void err_text(char *err, size_t cap, const char *what,
                     const char *path) {
  unsigned long e = ERR_peek_last_error();
  const char *why = e ? ERR_reason_error_string(e) : NULL;
  snprintf(err, cap, "%s %s: %s", what, path, why ? why : "unusable");
  ERR_clear_error();
}

static SSL_CTX *make_ctx(const struct wschat__tls *t, char *err,
                         size_t cap) {
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    snprintf(err, cap, "no memory for a TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* TLS 1.2: forward secrecy and AEAD only (OpenSSL's defaults also allow
   * CBC with SHA-1 and SHA-384 MACs). TLS 1.3's suites are all AEAD. */
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    err_text(err, cap, "cipher list", "for TLS 1.2");
    goto fail;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* An idle connection gives its record buffers back. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"wschat", 6);
  /* No server-side session cache: resumption is by (stateless) tickets,
   * and a flood of TLS 1.2 handshakes cannot grow a cache (up to 20,480
   * sessions by default). */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
    err_text(err, cap, "certificate", t->cert);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
    err_text(err, cap, "key", t->key);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    err_text(err, cap, "key does not match the certificate:", t->key);
    goto fail;
  }
  if (t->ca != NULL) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      err_text(err, cap, "client CA", t->ca);
      goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    SSL_CTX_set_verify(ctx,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void wschat__tls_free(struct wschat__tls *t) {
  if (t == NULL)
    return;
  SSL_CTX_free(t->ctx);
  BIO_meth_free(t->bio_method);
  free(t->cert);
  free(t->key);
  free(t->ca);
  free(t->scratch.p);
  free(t);
}

int wschat__tls_new(struct wschat__tls **out, const char *cert,
                    const char *key, const char *ca,
                    struct wschat__metrics *metrics,
                    const struct wschat__log *log, char *err, size_t cap) {
  *out = NULL;
  struct wschat__tls *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -2;
  t->metrics = metrics;
  t->log = log;
  t->cert = strdup(cert);
  t->key = strdup(key);
  t->ca = dup_or_null(ca);
  if (t->cert == NULL || t->key == NULL || (ca && t->ca == NULL)) {
    wschat__tls_free(t);
    return -2;
  }
  t->ctx = make_ctx(t, err, cap);
  if (t->ctx == NULL) {
    wschat__tls_free(t);
    return -1;
  }
  *out = t;
  return 0;
}

int wschat__tls_reload(struct wschat__tls *t, char *err, size_t cap) {
  SSL_CTX *ctx = make_ctx(t, err, cap);
  if (ctx == NULL) {
    t->metrics->tls_reload_failures++;
    return -1;
  }
  SSL_CTX_free(t->ctx); /* connections made with it keep a reference */
  t->ctx = ctx;
  t->metrics->tls_reloads++;
  return 0;
}
