/* stream_tls: the TLS stream alone, under a test instead of a conn, on a
 * real loopback socket and a real libuv loop, against an OpenSSL client
 * driven by hand through a BIO pair, so that the test decides how the
 * ciphertext arrives: the handshake and a message one byte per TCP segment,
 * and what the server's writes become on the wire (records counted by the
 * client's message callback).
 *
 * Checks: plaintext up in order whatever the chunking; a corked write of
 * many small buffers is one record; a large write is 16 KiB records, part
 * at once (try_write) and the rest in the background (write, on_written);
 * shutdown sends close_notify (the client reads a clean end), close ends
 * in on_closed, and the loop closes with nothing left open. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include "check_run.h"
#include "log.h"
#include "metrics.h"
#include "stream_tls.h"
#include "tls_ctx.h"

static char cert_path[64], key_path[64];

/* A self-signed EC certificate for the server, written to two files. */
static void make_cert(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  ck_assert(k && x);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  ck_assert(X509_sign(x, k, EVP_sha256()) > 0);
  strcpy(cert_path, "/tmp/wschat-tls-cert-XXXXXX");
  strcpy(key_path, "/tmp/wschat-tls-key-XXXXXX");
  FILE *c = fdopen(mkstemp(cert_path), "w"), *kf = fdopen(mkstemp(key_path), "w");
  ck_assert(c && kf);
  ck_assert(PEM_write_X509(c, x) == 1);
  ck_assert(PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL) == 1);
  fclose(c);
  fclose(kf);
  X509_free(x);
  EVP_PKEY_free(k);
}

/* The server side: one stream, and what its upcalls saw. */
static struct wschat__stream_tcp srv;
static char rbuf[4096];
static char got[200000];
static size_t got_len;
static int read_err, written, written_status = 1, shut_status = 1, closed;
static int accepted;
static struct wschat__tls *tls;
static struct wschat__metrics metrics;
static struct wschat__log log_off;

static void up_alloc(struct wschat__stream *s, uv_buf_t *b) {
  (void)s;
  *b = uv_buf_init(rbuf, sizeof(rbuf));
}
static void up_read(struct wschat__stream *s, ssize_t n, char *data) {
  (void)s;
  if (n < 0) {
    read_err = (int)n;
    return;
  }
  ck_assert_uint_le(got_len + (size_t)n, sizeof(got));
  memcpy(got + got_len, data, (size_t)n);
  got_len += (size_t)n;
}
static void up_written(struct wschat__stream *s, int status) {
  (void)s;
  written++;
  written_status = status;
}
static void up_shutdown(struct wschat__stream *s, int status) {
  (void)s;
  shut_status = status;
}
static void up_closed(struct wschat__stream *s) {
  (void)s;
  closed++;
}
static const struct wschat__stream_cbs cbs = {up_alloc, up_read, up_written,
                                              up_shutdown, up_closed};

static void on_conn(uv_stream_t *l, int status) {
  ck_assert_int_eq(status, 0);
  ck_assert_int_eq(wschat__stream_tcp_accept(&srv, l->loop, l, &cbs), 0);
  ck_assert_int_eq(wschat__stream_tls_wrap(&srv, tls, &cbs), 0);
  ck_assert_int_eq(srv.base.ops->read_start(&srv.base), 0);
  accepted = 1;
}

/* The client: an SSL over a BIO pair whose other end the test moves to and
 * from a plain socket; records read are counted by type. */
static SSL *cli;
static BIO *net; /* the test's end of the pair */
static int fd;
static int app_records;

static void on_msg(int write_p, int version, int type, const void *buf,
                   size_t len, SSL *ssl, void *arg) {
  (void)version;
  (void)ssl;
  (void)arg;
  if (!write_p && type == SSL3_RT_HEADER && len >= 1 &&
      ((const unsigned char *)buf)[0] == SSL3_RT_APPLICATION_DATA)
    app_records++;
}

/* Moves ciphertext: the client's output to the socket (chunk bytes per
 * send, the loop run between them), the socket's input to the client. */
static void shuttle(uv_loop_t *loop, size_t chunk) {
  char b[65536];
  int n;
  while ((n = BIO_read(net, b, (int)sizeof(b))) > 0)
    for (int off = 0; off < n;) {
      size_t k = (size_t)(n - off) < chunk ? (size_t)(n - off) : chunk;
      ssize_t w = send(fd, b + off, k, 0);

      ck_assert_int_gt((int)w, 0);
      off += (int)w;
      uv_run(loop, UV_RUN_NOWAIT);
    }
  uv_run(loop, UV_RUN_NOWAIT);
  ssize_t r;
  size_t room;
  while ((room = BIO_ctrl_get_write_guarantee(net)) > 0 &&
         (r = recv(fd, b, room < sizeof(b) ? room : sizeof(b), MSG_DONTWAIT)) > 0)
    ck_assert_int_eq(BIO_write(net, b, (int)r), (int)r);
}

/* Reads plaintext from the client until want bytes came (or 5 s). */
static size_t client_read(uv_loop_t *loop, char *out, size_t want) {
  size_t have = 0;
  uint64_t end = uv_hrtime() + 5000000000u;
  while (have < want && uv_hrtime() < end) {
    shuttle(loop, 65536);
    int n = SSL_read(cli, out + have, (int)(want - have));
    if (n > 0)
      have += (size_t)n;
  }
  return have;
}

START_TEST(tls_stream) {
  make_cert();
  char err[256];
  ck_assert_int_eq(wschat__tls_new(&tls, cert_path, key_path, NULL, &metrics,
                                   &log_off, err, sizeof(err)),
                   0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t listener;
  uv_tcp_init(&loop, &listener);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  ck_assert_int_eq(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&listener, 4, on_conn), 0);
  int al = sizeof(a);
  uv_tcp_getsockname(&listener, (struct sockaddr *)&a, &al);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  int one_ = 1; /* each byte its own segment, at once */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_, sizeof(one_));
  while (!accepted)
    uv_run(&loop, UV_RUN_ONCE);

  SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
  cli = SSL_new(cctx);
  BIO *inner;
  ck_assert(BIO_new_bio_pair(&inner, 1 << 20, &net, 1 << 20) == 1);
  SSL_set_bio(cli, inner, inner);
  SSL_set_connect_state(cli);
  SSL_set_msg_callback(cli, on_msg);
  static const unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_set_alpn_protos(cli, alpn, sizeof(alpn) - 1);

  /* The handshake, the client's flights one byte per segment. */
  uint64_t end = uv_hrtime() + 5000000000u;
  while (SSL_do_handshake(cli) != 1 && uv_hrtime() < end)
    shuttle(&loop, 1);
  ck_assert_int_eq(SSL_is_init_finished(cli), 1);
  char none;
  shuttle(&loop, 65536); /* the session tickets, read before counting */
  ck_assert_int_eq(SSL_read(cli, &none, 1), -1);
  const unsigned char *sel;
  unsigned sel_len;
  SSL_get0_alpn_selected(cli, &sel, &sel_len);
  ck_assert_int_eq((int)sel_len, 8);
  ck_assert(memcmp(sel, "http/1.1", 8) == 0);

  /* Client to server: 3000 bytes in two records, one byte per segment. */
  char msg[3000];
  for (size_t i = 0; i < sizeof(msg); i++)
    msg[i] = (char)('a' + i % 26);
  ck_assert_int_eq(SSL_write(cli, msg, 1000), 1000);
  ck_assert_int_eq(SSL_write(cli, msg + 1000, 2000), 2000);
  shuttle(&loop, 1);
  end = uv_hrtime() + 5000000000u;
  while (got_len < sizeof(msg) && uv_hrtime() < end)
    uv_run(&loop, UV_RUN_NOWAIT);
  ck_assert_msg(got_len == sizeof(msg), "got %zu, read_err %d, hs %d, fail proto %d eof %d", got_len, read_err, (int)metrics.tls_handshakes, (int)metrics.tls_failures[WSCHAT__TLS_FAIL_PROTOCOL], (int)metrics.tls_failures[WSCHAT__TLS_FAIL_EOF]);
  ck_assert(memcmp(got, msg, sizeof(msg)) == 0);
  ck_assert_int_eq(metrics.tls_handshakes, 1);

  /* Server to client, corked: 100 frames of 100 bytes, one record. */
  static char frames[100][100];
  uv_buf_t iov[100];
  for (int i = 0; i < 100; i++) {
    memset(frames[i], 'A' + i % 26, sizeof(frames[i]));
    iov[i] = uv_buf_init(frames[i], sizeof(frames[i]));
  }
  struct wschat__stream *s = &srv.base;
  app_records = 0;
  ck_assert_int_eq(s->ops->try_write(s, iov, 100), 10000);
  static char back[200000];
  ck_assert_uint_eq(client_read(&loop, back, 10000), 10000);
  for (int i = 0; i < 100; i++)
    ck_assert(memcmp(back + i * 100, frames[i], 100) == 0);
  ck_assert_int_eq(app_records, 1);

  /* 100,000 bytes in 50 buffers: 64 KiB at once, the rest in the
   * background; 16 KiB records (7 of them), then on_written. */
  static char big[100000];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (char)(i * 7);
  uv_buf_t biov[50];
  for (int i = 0; i < 50; i++)
    biov[i] = uv_buf_init(big + i * 2000, 2000);
  app_records = 0;
  int r = s->ops->try_write(s, biov, 50);
  ck_assert_int_eq(r, 65536); /* 32 buffers and 1536 bytes of the 33rd */
  uv_buf_t rest[18];
  rest[0] = uv_buf_init(big + 65536, 2000 - 1536);
  memcpy(rest + 1, biov + 33, 17 * sizeof(uv_buf_t));
  ck_assert_int_eq(s->ops->write(s, rest, 18), 0);
  ck_assert_int_eq(written, 0); /* never from inside write() */
  ck_assert_uint_eq(client_read(&loop, back, sizeof(big)), sizeof(big));
  ck_assert(memcmp(back, big, sizeof(big)) == 0);
  end = uv_hrtime() + 5000000000u;
  while (written == 0 && uv_hrtime() < end)
    uv_run(&loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(written, 1);
  ck_assert_int_eq(written_status, 0);
  ck_assert_int_eq(app_records, 4 + 3); /* 4 x 16 KiB; 16384, 16384, 1696 */

  /* shutdown: close_notify, then the TCP FIN; close: on_closed. */
  ck_assert_int_eq(s->ops->shutdown(s), 0);
  char one;
  end = uv_hrtime() + 5000000000u;
  int n;
  while ((n = SSL_read(cli, &one, 1)) <= 0 &&
         SSL_get_error(cli, n) == SSL_ERROR_WANT_READ && uv_hrtime() < end)
    shuttle(&loop, 65536);
  ck_assert_int_eq(SSL_get_error(cli, n), SSL_ERROR_ZERO_RETURN);
  end = uv_hrtime() + 5000000000u;
  while (shut_status == 1 && uv_hrtime() < end)
    uv_run(&loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(shut_status, 0);
  ck_assert_int_eq(read_err, 0);
  s->ops->close(s);
  uv_close((uv_handle_t *)&listener, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(closed, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  SSL_free(cli);
  BIO_free(net);
  SSL_CTX_free(cctx);
  close(fd);
  wschat__tls_free(tls);
  unlink(cert_path);
  unlink(key_path);
}
END_TEST

int main(void) {
  Suite *s = suite_create("stream_tls");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, tls_stream);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
