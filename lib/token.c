/*
 * token: see token.h.
 *
 * The check in order: the length, the three parts, the header (alg must
 * be the configured key's), the signature over "HEADER.PAYLOAD", and only
 * then the payload's claims: nothing in an unverified payload is looked
 * at beyond its decoding.
 */
#include "token.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"

/* ---- keys ---- */

int wschat__token_set_secret(struct wschat__token_keys *k, const void *secret,
                             size_t len) {
  unsigned char *copy = NULL;
  if (secret == NULL && len != 0)
    return WSCHAT_EINVAL;
  if (secret != NULL) {
    if (len < WSCHAT__TOKEN_SECRET_MIN || len > WSCHAT__TOKEN_SECRET_MAX)
      return WSCHAT_EINVAL;
    copy = malloc(len);
    if (copy == NULL)
      return WSCHAT_ENOMEM;
    memcpy(copy, secret, len);
  }
  if (k->secret != NULL) {
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
  }
  k->secret = copy;
  k->secret_len = copy ? len : 0;
  return 0;
}

int wschat__token_set_public_key(struct wschat__token_keys *k,
                                 const char *pem, size_t len) {
  EVP_PKEY *pkey = NULL;
  int alg = 0;
  if (pem != NULL) {
    if (len == 0 || len > 65536)
      return WSCHAT_EINVAL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
      return WSCHAT_ENOMEM;
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
      return WSCHAT_EINVAL;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA &&
        EVP_PKEY_get_bits(pkey) >= WSCHAT__TOKEN_RSA_MIN_BITS) {
      alg = WSCHAT__TOKEN_RS256;
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
      char group[64];
      size_t glen = 0;
      if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
          (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
        alg = WSCHAT__TOKEN_ES256;
    }
    if (alg == 0) {
      EVP_PKEY_free(pkey);
      return WSCHAT_EINVAL;
    }
  }
  EVP_PKEY_free(k->pkey);
  k->pkey = pkey;
  k->pkey_alg = alg;
  return 0;
}

void wschat__token_keys_free(struct wschat__token_keys *k) {
  wschat__token_set_secret(k, NULL, 0);
  EVP_PKEY_free(k->pkey);
  memset(k, 0, sizeof(*k));
}

/* ---- base64url ---- */

static int b64url_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '-')
    return 62;
  if (ch == '_')
    return 63;
  return -1;
}

/* Decodes len bytes of unpadded base64url into out (room for len * 3 / 4
 * bytes). Returns the decoded length, or -1: a character outside the
 * alphabet (padding included), a length that no encoding has (4n + 1), or
 * stray bits in the last character (a non-canonical encoding). */
static long b64url_decode(const char *in, size_t len, unsigned char *out) {
  if (len % 4 == 1)
    return -1;
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64url_value((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return -1;
  return (long)n;
}

/* Decodes a part that is one JSON object (no duplicate keys). */
static int decode_object(const char *in, size_t len, unsigned char *buf,
                         json_t **out) {
  long n = b64url_decode(in, len, buf);
  if (n <= 0)
    return WSCHAT__TOKEN_EMALFORMED;
  json_error_t jerr;
  json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
                         &jerr);
  if (j == NULL) /* jerr.text may quote the input: never shown */
    return WSCHAT__TOKEN_EMALFORMED;
  if (!json_is_object(j)) {
    json_decref(j);
    return WSCHAT__TOKEN_EMALFORMED;
  }
  *out = j;
  return 0;
}

/* ---- signatures ---- */

static int verify_hs256(const struct wschat__token_keys *k, const char *msg,
                        size_t len, const unsigned char *sig, size_t slen) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
           (const unsigned char *)msg, len, mac, &mlen) == NULL)
    return WSCHAT__TOKEN_ENOMEM;
  if (slen != mlen || CRYPTO_memcmp(mac, sig, mlen) != 0)
    return WSCHAT__TOKEN_ESIGNATURE;
  return 0;
}

/* JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 3.4); EVP
 * wants the DER of ECDSA-Sig-Value. */
static unsigned char *es256_der(const unsigned char *sig, size_t slen,
                                int *dlen) {
  if (slen != 64)
    return NULL;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  unsigned char *der = NULL;
  if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return NULL;
  }
  *dlen = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (*dlen <= 0) {
    OPENSSL_free(der);
    return NULL;
  }
  return der;
}

static int verify_pkey(const struct wschat__token_keys *k, const char *msg,
                       size_t len, const unsigned char *sig, size_t slen) {
  unsigned char *der = NULL;
  int dlen = 0;
  if (k->pkey_alg == WSCHAT__TOKEN_ES256) {
    der = es256_der(sig, slen, &dlen);
    if (der == NULL)
      return WSCHAT__TOKEN_ESIGNATURE;
    sig = der;
    slen = (size_t)dlen;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = WSCHAT__TOKEN_ENOMEM;
  if (ctx != NULL &&
      EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1)
    rc = EVP_DigestVerify(ctx, sig, slen, (const unsigned char *)msg, len) == 1
             ? 0
             : WSCHAT__TOKEN_ESIGNATURE;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return rc;
}

/* The header: alg names a configured key; nothing we do not understand. */
static int header_alg(const struct wschat__token_keys *k, json_t *hdr,
                      int *alg_out) {
  json_t *a = json_object_get(hdr, "alg");
  const char *alg = json_string_value(a);
  json_t *typ = json_object_get(hdr, "typ");
  if (alg == NULL || json_string_length(a) != strlen(alg))
    return WSCHAT__TOKEN_EALG; /* absent, not a string, or with a U+0000 */
  if (json_object_get(hdr, "crit") != NULL)
    return WSCHAT__TOKEN_EALG; /* RFC 7515 4.1.11: we understand none */
  if (typ != NULL && !(json_is_string(typ) &&
                       strcasecmp(json_string_value(typ), "JWT") == 0))
    return WSCHAT__TOKEN_EMALFORMED;
  if (strcmp(alg, "HS256") == 0 && k->secret != NULL)
    *alg_out = WSCHAT__TOKEN_HS256;
  else if (strcmp(alg, "RS256") == 0 && k->pkey_alg == WSCHAT__TOKEN_RS256)
    *alg_out = WSCHAT__TOKEN_RS256;
  else if (strcmp(alg, "ES256") == 0 && k->pkey_alg == WSCHAT__TOKEN_ES256)
    *alg_out = WSCHAT__TOKEN_ES256;
  else
    return WSCHAT__TOKEN_EALG;
  return 0;
}

/* ---- claims ---- */

/* A NumericDate claim (seconds, maybe fractional) as whole seconds:
 * 1 if present and valid, 0 if absent, -1 if invalid. */
static int numeric_date(json_t *payload, const char *key, int64_t *out) {
  json_t *v = json_object_get(payload, key);
  if (v == NULL)
    return 0;
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= 0 && d < 1e15))
      return -1;
    *out = (int64_t)d; /* whole seconds (d is not negative) */
  } else {
    return -1;
  }
  return *out >= 0 && *out < (int64_t)1e15 ? 1 : -1;
}

static int claims(json_t *p, int64_t now, struct wschat__token *out) {
  int64_t exp = 0, nbf = 0, iat = 0;
  int has_exp = numeric_date(p, "exp", &exp);
  int has_nbf = numeric_date(p, "nbf", &nbf);
  int has_iat = numeric_date(p, "iat", &iat);
  if (has_exp != 1 || has_nbf < 0 || has_iat < 0)
    return WSCHAT__TOKEN_ECLAIMS;
  if (now >= exp)
    return WSCHAT__TOKEN_EEXPIRED;
  if ((has_nbf && nbf > now + WSCHAT__TOKEN_LEEWAY) ||
      (has_iat && iat > now + WSCHAT__TOKEN_LEEWAY))
    return WSCHAT__TOKEN_ENOTYET;

  json_t *name = json_object_get(p, "name");
  if (name == NULL)
    name = json_object_get(p, "sub");
  const char *s = json_string_value(name);
  size_t slen = s ? json_string_length(name) : 0;
  if (s == NULL || !wschat__name_valid(s, slen))
    return WSCHAT__TOKEN_ECLAIMS;

  json_t *rooms = json_object_get(p, "rooms");
  size_t n = 0, bytes = 0;
  if (rooms != NULL) {
    if (!json_is_array(rooms) || json_array_size(rooms) > WSCHAT__TOKEN_ROOMS)
      return WSCHAT__TOKEN_ECLAIMS;
    n = json_array_size(rooms);
    for (size_t i = 0; i < n; i++) {
      json_t *r = json_array_get(rooms, i);
      const char *rs = json_string_value(r);
      if (rs == NULL || !wschat__room_valid(rs, json_string_length(r)))
        return WSCHAT__TOKEN_ECLAIMS;
      bytes += json_string_length(r) + 1;
    }
  }
  memset(out, 0, sizeof(*out));
  memcpy(out->name, s, slen + 1);
  out->exp = exp;
  out->any_room = rooms == NULL;
  if (rooms != NULL && n > 0) {
    char **v = malloc(n * sizeof(char *) + bytes);
    if (v == NULL)
      return WSCHAT__TOKEN_ENOMEM;
    char *at = (char *)(v + n);
    for (size_t i = 0; i < n; i++) {
      json_t *r = json_array_get(rooms, i);
      v[i] = at;
      memcpy(at, json_string_value(r), json_string_length(r) + 1);
      at += json_string_length(r) + 1;
    }
    out->rooms = v;
    out->nrooms = n;
  }
  return 0;
}

/* ---- the check ---- */

int wschat__token_check(const struct wschat__token_keys *keys, const char *tok,
                        size_t len, int64_t now, struct wschat__token *out) {
  memset(out, 0, sizeof(*out));
  if (len > WSCHAT__TOKEN_MAX)
    return WSCHAT__TOKEN_ETOOLONG;
  if (tok == NULL || len == 0 || !wschat__token_keys_any(keys))
    return WSCHAT__TOKEN_EMALFORMED;
  const char *dot1 = memchr(tok, '.', len);
  const char *dot2 =
      dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
  if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)))
    return WSCHAT__TOKEN_EMALFORMED;
  size_t hlen = (size_t)(dot1 - tok), plen = (size_t)(dot2 - dot1 - 1);
  size_t slen = len - (size_t)(dot2 + 1 - tok);
  /* Each part decodes to at most 3/4 of the token: one buffer on the
   * stack serves every part. */
  unsigned char buf[WSCHAT__TOKEN_MAX * 3 / 4 + 4];
  json_t *hdr = NULL, *payload = NULL;
  int rc = decode_object(tok, hlen, buf, &hdr);
  if (rc != 0)
    return rc;
  int alg = 0;
  rc = header_alg(keys, hdr, &alg);
  json_decref(hdr);
  if (rc != 0)
    return rc;
  long sn = b64url_decode(dot2 + 1, slen, buf);
  if (sn <= 0)
    return WSCHAT__TOKEN_EMALFORMED;
  size_t signed_len = (size_t)(dot2 - tok);
  rc = alg == WSCHAT__TOKEN_HS256
           ? verify_hs256(keys, tok, signed_len, buf, (size_t)sn)
           : verify_pkey(keys, tok, signed_len, buf, (size_t)sn);
  OPENSSL_cleanse(buf, (size_t)sn);
  if (rc != 0)
    return rc;
  rc = decode_object(dot1 + 1, plen, buf, &payload);
  if (rc != 0)
    return rc;
  rc = claims(payload, now, out);
  json_decref(payload);
  OPENSSL_cleanse(buf, sizeof(buf));
  return rc;
}

const char *wschat__token_strerror(int err) {
  switch (err) {
  case WSCHAT__TOKEN_OK: return "ok";
  case WSCHAT__TOKEN_EMALFORMED: return "token malformed";
  case WSCHAT__TOKEN_ETOOLONG: return "token too long";
  case WSCHAT__TOKEN_EALG: return "token algorithm not accepted";
  case WSCHAT__TOKEN_ESIGNATURE: return "token signature invalid";
  case WSCHAT__TOKEN_EEXPIRED: return "token expired";
  case WSCHAT__TOKEN_ENOTYET: return "token not yet valid";
  case WSCHAT__TOKEN_ECLAIMS: return "token claims invalid";
  case WSCHAT__TOKEN_ENOMEM: return "out of memory";
  default: return "token invalid";
  }
}

int wschat__token_room_allowed(const struct wschat__token *t,
                               const char *room) {
  if (t->any_room)
    return 1;
  for (size_t i = 0; i < t->nrooms; i++)
    if (strcasecmp(t->rooms[i], room) == 0)
      return 1;
  return 0;
}

void wschat__token_free(struct wschat__token *t) {
  free(t->rooms);
  t->rooms = NULL;
  t->nrooms = 0;
}
