/* Unit tests: identity tokens (lib/token.c). Keys are made at test time
 * with OpenSSL; tokens are built and signed here, independently of the
 * code under test (only OpenSSL's primitives are shared). */
#include <check.h>

#include "check_run.h"
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test";
static const int64_t NOW = 1800000000;

/* ---- building tokens ---- */

static void b64url(const unsigned char *in, size_t len, char *out) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[o++] = abc[(v >> 18) & 63];
    out[o++] = abc[(v >> 12) & 63];
    if (i + 1 < len)
      out[o++] = abc[(v >> 6) & 63];
    if (i + 2 < len)
      out[o++] = abc[v & 63];
  }
  out[o] = '\0';
}

/* "b64(header).b64(payload)" into out. */
static void signing_input(const char *header, const char *payload,
                          char *out) {
  b64url((const unsigned char *)header, strlen(header), out);
  strcat(out, ".");
  b64url((const unsigned char *)payload, strlen(payload), out + strlen(out));
}

/* Appends ".b64(sig)". */
static void append_sig(char *tok, const unsigned char *sig, size_t len) {
  strcat(tok, ".");
  b64url(sig, len, tok + strlen(tok));
}

static char *hs256(const char *header, const char *payload, const void *key,
                   size_t klen) {
  char *tok = malloc(20000);
  signing_input(header, payload, tok);
  unsigned char mac[32];
  unsigned int mlen = 0;
  HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)tok, strlen(tok), mac,
       &mlen);
  append_sig(tok, mac, mlen);
  return tok;
}

static char *pkey_sign(const char *header, const char *payload, EVP_PKEY *k,
                       int es) {
  char *tok = malloc(20000);
  signing_input(header, payload, tok);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t slen = 0;
  ck_assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
  ck_assert(EVP_DigestSign(ctx, NULL, &slen, (unsigned char *)tok,
                           strlen(tok)) == 1);
  unsigned char *sig = malloc(slen);
  ck_assert(EVP_DigestSign(ctx, sig, &slen, (unsigned char *)tok,
                           strlen(tok)) == 1);
  EVP_MD_CTX_free(ctx);
  if (es) { /* DER -> r || s */
    const unsigned char *p = sig;
    ECDSA_SIG *e = d2i_ECDSA_SIG(NULL, &p, (long)slen);
    unsigned char raw[64];
    ck_assert(BN_bn2binpad(ECDSA_SIG_get0_r(e), raw, 32) == 32);
    ck_assert(BN_bn2binpad(ECDSA_SIG_get0_s(e), raw + 32, 32) == 32);
    ECDSA_SIG_free(e);
    append_sig(tok, raw, 64);
  } else {
    append_sig(tok, sig, slen);
  }
  free(sig);
  return tok;
}

static char *pem_of(EVP_PKEY *k) {
  BIO *b = BIO_new(BIO_s_mem());
  ck_assert(PEM_write_bio_PUBKEY(b, k) == 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *pem = malloc((size_t)n + 1);
  memcpy(pem, data, (size_t)n);
  pem[n] = '\0';
  BIO_free(b);
  return pem;
}

static char payload_buf[16384];
static const char *claims_exp(const char *extra, int64_t exp) {
  snprintf(payload_buf, sizeof(payload_buf),
           "{\"sub\":\"alice\",\"exp\":%lld%s%s}", (long long)exp,
           extra[0] ? "," : "", extra);
  return payload_buf;
}
static const char *claims(const char *extra) {
  return claims_exp(extra, NOW + 600);
}

static const char HS[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char RS[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
static const char ES[] = "{\"alg\":\"ES256\"}";

static struct wschat__token_keys secret_keys(void) {
  struct wschat__token_keys k = {0};
  ck_assert_int_eq(wschat__token_set_secret(&k, SECRET, strlen(SECRET)), 0);
  return k;
}

static int check(const struct wschat__token_keys *k, const char *tok,
                 struct wschat__token *t) {
  struct wschat__token tmp;
  int rc = wschat__token_check(k, tok, strlen(tok), NOW, t ? t : &tmp);
  if (!t && rc == 0)
    wschat__token_free(&tmp);
  return rc;
}

/* ---- HS256 ---- */

START_TEST(hs256_good) {
  struct wschat__token_keys k = secret_keys();
  char *tok = hs256(HS, claims("\"iat\":1799999990"), SECRET, strlen(SECRET));
  struct wschat__token t;
  ck_assert_int_eq(check(&k, tok, &t), 0);
  ck_assert_str_eq(t.name, "alice");
  ck_assert_int_eq(t.exp, NOW + 600);
  ck_assert(t.any_room);
  ck_assert(wschat__token_room_allowed(&t, "anything"));
  wschat__token_free(&t);
  free(tok);
  /* name wins over sub; rooms restrict */
  tok = hs256(HS, claims("\"name\":\"Bob_2\",\"rooms\":[\"dev\",\"ops.x\"]"),
              SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, tok, &t), 0);
  ck_assert_str_eq(t.name, "Bob_2");
  ck_assert(!t.any_room);
  ck_assert_uint_eq(t.nrooms, 2);
  ck_assert(wschat__token_room_allowed(&t, "DEV"));
  ck_assert(wschat__token_room_allowed(&t, "ops.x"));
  ck_assert(!wschat__token_room_allowed(&t, "lobby"));
  wschat__token_free(&t);
  free(tok);
  /* an empty list: no room */
  tok = hs256(HS, claims("\"rooms\":[]"), SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, tok, &t), 0);
  ck_assert(!t.any_room && !wschat__token_room_allowed(&t, "dev"));
  wschat__token_free(&t);
  free(tok);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(hs256_bad_signature) {
  struct wschat__token_keys k = secret_keys();
  const char other[] = "another secret of thirty-two bytes!!";
  char *tok = hs256(HS, claims(""), other, strlen(other));
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  /* a changed payload under the old signature */
  tok = hs256(HS, claims(""), SECRET, strlen(SECRET));
  char *dot = strchr(tok, '.');
  char forged[20000];
  signing_input(HS, "{\"sub\":\"admin\",\"exp\":1900000000}", forged);
  strcat(forged, strrchr(tok, '.'));
  (void)dot;
  ck_assert_int_eq(check(&k, forged, NULL), WSCHAT__TOKEN_ESIGNATURE);
  /* a truncated signature */
  tok[strlen(tok) - 2] = '\0';
  ck_assert_int_ne(check(&k, tok, NULL), 0);
  free(tok);
  /* no signature at all */
  signing_input(HS, claims(""), forged);
  strcat(forged, ".");
  ck_assert_int_eq(check(&k, forged, NULL), WSCHAT__TOKEN_EMALFORMED);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(alg_none_and_unknown) {
  struct wschat__token_keys k = secret_keys();
  char tok[20000];
  signing_input("{\"alg\":\"none\"}", claims(""), tok);
  strcat(tok, ".");
  ck_assert_int_ne(check(&k, tok, NULL), 0);
  strcat(tok, "AAAA");
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EALG);
  char *t2 = hs256("{\"alg\":\"none\"}", claims(""), SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, t2, NULL), WSCHAT__TOKEN_EALG);
  free(t2);
  static const char *const headers[] = {
      "{\"alg\":\"HS384\"}", "{\"alg\":\"hs256\"}", "{}", "{\"alg\":256}",
      "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
  };
  for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
    t2 = hs256(headers[i], claims(""), SECRET, strlen(SECRET));
    ck_assert_msg(check(&k, t2, NULL) == WSCHAT__TOKEN_EALG, "%s", headers[i]);
    free(t2);
  }
  /* U+0000 in JSON strings: refused (jansson without JSON_ALLOW_NUL) */
  t2 = hs256("{\"alg\":\"HS256\\u0000x\"}", claims(""), SECRET,
             strlen(SECRET));
  ck_assert_int_ne(check(&k, t2, NULL), 0);
  free(t2);
  t2 = hs256(HS, "{\"sub\":\"a\\u0000b\",\"exp\":1900000000}", SECRET,
             strlen(SECRET));
  ck_assert_int_ne(check(&k, t2, NULL), 0);
  free(t2);
  t2 = hs256("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", claims(""), SECRET,
             strlen(SECRET));
  ck_assert_int_ne(check(&k, t2, NULL), 0);
  free(t2);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(times) {
  struct wschat__token_keys k = secret_keys();
  struct {
    const char *payload;
    int want;
  } cases[] = {
      {"{\"sub\":\"a\",\"exp\":1800000000}", WSCHAT__TOKEN_EEXPIRED},
      {"{\"sub\":\"a\",\"exp\":1799999999}", WSCHAT__TOKEN_EEXPIRED},
      {"{\"sub\":\"a\",\"exp\":1800000001}", 0},
      {"{\"sub\":\"a\",\"exp\":1800000000.5}", WSCHAT__TOKEN_EEXPIRED},
      {"{\"sub\":\"a\",\"exp\":1800000600.5}", 0},
      {"{\"sub\":\"a\"}", WSCHAT__TOKEN_ECLAIMS}, /* exp is required */
      {"{\"sub\":\"a\",\"exp\":\"1900000000\"}", WSCHAT__TOKEN_ECLAIMS},
      {"{\"sub\":\"a\",\"exp\":-1}", WSCHAT__TOKEN_ECLAIMS},
      {"{\"sub\":\"a\",\"exp\":1e300}", WSCHAT__TOKEN_ECLAIMS},
      {"{\"sub\":\"a\",\"exp\":1900000000,\"nbf\":1800000100}",
       WSCHAT__TOKEN_ENOTYET},
      {"{\"sub\":\"a\",\"exp\":1900000000,\"nbf\":1800000005}", 0},
      {"{\"sub\":\"a\",\"exp\":1900000000,\"nbf\":null}",
       WSCHAT__TOKEN_ECLAIMS},
      {"{\"sub\":\"a\",\"exp\":1900000000,\"iat\":1800000100}",
       WSCHAT__TOKEN_ENOTYET},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *tok = hs256(HS, cases[i].payload, SECRET, strlen(SECRET));
    ck_assert_msg(check(&k, tok, NULL) == cases[i].want, "%s -> %d",
                  cases[i].payload, check(&k, tok, NULL));
    free(tok);
  }
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(bad_claims) {
  struct wschat__token_keys k = secret_keys();
  static const char *const payloads[] = {
      "{\"exp\":1900000000}",                       /* no name */
      "{\"sub\":\"\",\"exp\":1900000000}",          /* empty */
      "{\"sub\":\"auth0|123\",\"exp\":1900000000}", /* not a valid name */
      "{\"sub\":\"abcdefghijabcdefghijabcdefghijabc\",\"exp\":1900000000}",
      "{\"sub\":7,\"exp\":1900000000}",
      "{\"name\":\"bad name\",\"sub\":\"good\",\"exp\":1900000000}",
      "{\"sub\":\"a\",\"exp\":1900000000,\"rooms\":\"dev\"}",
      "{\"sub\":\"a\",\"exp\":1900000000,\"rooms\":[\"d e v\"]}",
      "{\"sub\":\"a\",\"exp\":1900000000,\"rooms\":[1]}",
  };
  for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
    char *tok = hs256(HS, payloads[i], SECRET, strlen(SECRET));
    ck_assert_msg(check(&k, tok, NULL) == WSCHAT__TOKEN_ECLAIMS, "%s",
                  payloads[i]);
    free(tok);
  }
  /* too many rooms */
  char big[4096] = "{\"sub\":\"a\",\"exp\":1900000000,\"rooms\":[";
  for (int i = 0; i <= WSCHAT__TOKEN_ROOMS; i++)
    strcat(big, i ? ",\"r\"" : "\"r\"");
  strcat(big, "]}");
  char *tok = hs256(HS, big, SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ECLAIMS);
  free(tok);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(bad_encoding) {
  struct wschat__token_keys k = secret_keys();
  char *good = hs256(HS, claims(""), SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, good, NULL), 0);
  static const char *const bad[] = {
      "", ".", "..", "...", "a.b", "a.b.c.d", "e30.e30.AAAA", "!!!.e30.AAAA",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(check(&k, bad[i], NULL) == WSCHAT__TOKEN_EMALFORMED ||
                      check(&k, bad[i], NULL) == WSCHAT__TOKEN_EALG,
                  "%s", bad[i]);
  /* padding, standard base64 characters, a space, stray bits */
  char tok[20000];
  snprintf(tok, sizeof(tok), "%s=", good);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EMALFORMED);
  strcpy(tok, good);
  tok[3] = '+';
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EMALFORMED);
  strcpy(tok, good);
  tok[strlen(tok) - 5] = ' ';
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EMALFORMED);
  /* 43 characters carry 32 bytes and 2 bits that must be zero */
  strcpy(tok, good);
  char *last = tok + strlen(tok) - 1;
  *last = *last == 'A' ? 'B' : (*last == 'B' ? 'C' : 'B');
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EMALFORMED);
  /* not JSON, not an object, duplicate keys */
  static const char *const payloads[] = {
      "not json", "[1,2]", "\"sub\"",
      "{\"sub\":\"alice\",\"exp\":1900000000,\"sub\":\"bob\"}",
      "{\"sub\":\"alice\",\"exp\":1900000000", "",
  };
  for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
    char *t2 = hs256(HS, payloads[i], SECRET, strlen(SECRET));
    ck_assert_msg(check(&k, t2, NULL) == WSCHAT__TOKEN_EMALFORMED, "%s",
                  payloads[i]);
    free(t2);
  }
  char *t2 = hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims(""), SECRET,
                   strlen(SECRET));
  ck_assert_int_eq(check(&k, t2, NULL), WSCHAT__TOKEN_EMALFORMED);
  free(t2);
  /* the length is respected: a good token with bytes after len */
  struct wschat__token t;
  strcpy(tok, good);
  strcat(tok, "xyz");
  ck_assert_int_eq(wschat__token_check(&k, tok, strlen(good), NOW, &t), 0);
  wschat__token_free(&t);
  free(good);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(oversized) {
  struct wschat__token_keys k = secret_keys();
  char pad[WSCHAT__TOKEN_MAX];
  memset(pad, 'x', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  char extra[WSCHAT__TOKEN_MAX + 32];
  snprintf(extra, sizeof(extra), "\"pad\":\"%s\"", pad);
  char *tok = hs256(HS, claims(extra), SECRET, strlen(SECRET));
  ck_assert_uint_gt(strlen(tok), WSCHAT__TOKEN_MAX);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ETOOLONG);
  free(tok);
  /* just under the limit is fine */
  pad[WSCHAT__TOKEN_MAX * 3 / 4 - 200] = '\0';
  snprintf(extra, sizeof(extra), "\"pad\":\"%s\"", pad);
  tok = hs256(HS, claims(extra), SECRET, strlen(SECRET));
  ck_assert_uint_le(strlen(tok), WSCHAT__TOKEN_MAX);
  ck_assert_int_eq(check(&k, tok, NULL), 0);
  free(tok);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(secrets) {
  struct wschat__token_keys k = {0};
  ck_assert_int_eq(wschat__token_set_secret(&k, "short", 5), WSCHAT_EINVAL);
  ck_assert_int_eq(wschat__token_set_secret(&k, NULL, 3), WSCHAT_EINVAL);
  ck_assert(!wschat__token_keys_any(&k));
  /* nothing configured: every token is refused */
  char *tok = hs256(HS, claims(""), SECRET, strlen(SECRET));
  ck_assert_int_ne(check(&k, tok, NULL), 0);
  ck_assert_int_eq(wschat__token_set_secret(&k, SECRET, strlen(SECRET)), 0);
  ck_assert_int_eq(check(&k, tok, NULL), 0);
  ck_assert_int_eq(wschat__token_set_secret(&k, NULL, 0), 0);
  ck_assert_int_ne(check(&k, tok, NULL), 0);
  ck_assert_int_eq(wschat__token_set_public_key(&k, "garbage", 7),
                   WSCHAT_EINVAL);
  free(tok);
  wschat__token_keys_free(&k);
}
END_TEST

/* ---- RS256 and ES256 ---- */

START_TEST(rs256) {
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  ck_assert_ptr_nonnull(rsa);
  char *pem = pem_of(rsa);
  struct wschat__token_keys k = {0};
  ck_assert_int_eq(wschat__token_set_public_key(&k, pem, strlen(pem)), 0);
  char *tok = pkey_sign(RS, claims("\"rooms\":[\"dev\"]"), rsa, 0);
  struct wschat__token t;
  ck_assert_int_eq(check(&k, tok, &t), 0);
  ck_assert_str_eq(t.name, "alice");
  wschat__token_free(&t);
  /* a flipped bit in the signature */
  char *sig = strrchr(tok, '.') + 5;
  *sig = *sig == 'A' ? 'B' : 'A';
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  /* alg confusion: HS256 with the public key's PEM as the HMAC secret */
  tok = hs256(HS, claims(""), pem, strlen(pem));
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EALG);
  free(tok);
  /* an RS256 header on an ES256 key's signature, and the other way */
  tok = pkey_sign(ES, claims(""), rsa, 0);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EALG);
  free(tok);
  /* another RSA key's signature */
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  tok = pkey_sign(RS, claims(""), other, 0);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  /* with both a secret and the key, each alg goes to its own key */
  ck_assert_int_eq(wschat__token_set_secret(&k, SECRET, strlen(SECRET)), 0);
  tok = hs256(HS, claims(""), SECRET, strlen(SECRET));
  ck_assert_int_eq(check(&k, tok, NULL), 0);
  free(tok);
  tok = hs256(HS, claims(""), pem, strlen(pem));
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  tok = pkey_sign(RS, claims(""), rsa, 0);
  ck_assert_int_eq(check(&k, tok, NULL), 0);
  free(tok);
  /* a small RSA key is refused */
  EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  char *spem = pem_of(small);
  ck_assert_int_eq(wschat__token_set_public_key(&k, spem, strlen(spem)),
                   WSCHAT_EINVAL);
  free(spem);
  EVP_PKEY_free(small);
  EVP_PKEY_free(other);
  EVP_PKEY_free(rsa);
  free(pem);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(es256) {
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  ck_assert_ptr_nonnull(ec);
  char *pem = pem_of(ec);
  struct wschat__token_keys k = {0};
  ck_assert_int_eq(wschat__token_set_public_key(&k, pem, strlen(pem)), 0);
  for (int i = 0; i < 20; i++) { /* r and s of every length */
    char *tok = pkey_sign(ES, claims(""), ec, 1);
    ck_assert_int_eq(check(&k, tok, NULL), 0);
    free(tok);
  }
  /* the DER signature, as a careless signer would send it */
  char *tok = pkey_sign(ES, claims(""), ec, 0);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  /* r || s with s changed */
  tok = pkey_sign(ES, claims(""), ec, 1);
  char *sig = strrchr(tok, '.') + 50;
  *sig = *sig == 'A' ? 'B' : 'A';
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_ESIGNATURE);
  free(tok);
  /* all zeros */
  char zero[20000];
  unsigned char z[64] = {0};
  signing_input(ES, claims(""), zero);
  append_sig(zero, z, 64);
  ck_assert_int_eq(check(&k, zero, NULL), WSCHAT__TOKEN_ESIGNATURE);
  /* alg confusion: HS256 with the PEM as secret; RS256 header */
  tok = hs256(HS, claims(""), pem, strlen(pem));
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EALG);
  free(tok);
  tok = pkey_sign(RS, claims(""), ec, 1);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EALG);
  free(tok);
  /* expired, with a good signature */
  tok = pkey_sign(ES, claims_exp("", NOW - 1), ec, 1);
  ck_assert_int_eq(check(&k, tok, NULL), WSCHAT__TOKEN_EEXPIRED);
  free(tok);
  /* another curve is refused as a key */
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  char *p384pem = pem_of(p384);
  ck_assert_int_eq(wschat__token_set_public_key(&k, p384pem, strlen(p384pem)),
                   WSCHAT_EINVAL);
  free(p384pem);
  EVP_PKEY_free(p384);
  EVP_PKEY_free(ec);
  free(pem);
  wschat__token_keys_free(&k);
}
END_TEST

START_TEST(strerror_never_null) {
  for (int i = -1; i < 12; i++)
    ck_assert_ptr_nonnull(wschat__token_strerror(i));
  ck_assert_str_eq(wschat__token_strerror(WSCHAT__TOKEN_EEXPIRED),
                   "token expired");
}
END_TEST

int main(void) {
  Suite *s = suite_create("token");
  TCase *tc = tcase_create("token");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, hs256_good);
  tcase_add_test(tc, hs256_bad_signature);
  tcase_add_test(tc, alg_none_and_unknown);
  tcase_add_test(tc, times);
  tcase_add_test(tc, bad_claims);
  tcase_add_test(tc, bad_encoding);
  tcase_add_test(tc, oversized);
  tcase_add_test(tc, secrets);
  tcase_add_test(tc, rs256);
  tcase_add_test(tc, es256);
  tcase_add_test(tc, strerror_never_null);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
