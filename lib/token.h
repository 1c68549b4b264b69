/*
 * token: identity tokens (JSON Web Tokens, RFC 7519, in the JWS compact
 * form of RFC 7515): the keys a server trusts, and the check of one
 * token against them at a given time. HS256 (HMAC-SHA256 with a shared
 * secret), RS256 (RSASSA-PKCS1-v1_5 with SHA-256) and ES256 (ECDSA P-256
 * with SHA-256) through OpenSSL; the JSON through jansson.
 *
 * The rules (docs/PROTOCOL.md, "Identity"):
 * - at most WSCHAT__TOKEN_MAX bytes, three base64url parts without
 *   padding, canonical (no stray bits); header and payload JSON objects
 *   without duplicate keys;
 * - the header's "alg" names the key that checks it: HS256 only with the
 *   secret, RS256 only with an RSA public key, ES256 only with a P-256
 *   public key. "none", any other alg, and "crit" are refused; so is an
 *   HS256 token when only a public key is configured (alg confusion);
 * - claims: "exp" (required: a token that never expires is refused),
 *   "nbf" and "iat" (optional; WSCHAT__TOKEN_LEEWAY seconds of clock skew
 *   allowed for these two, none for exp), "name" or else "sub" (required,
 *   a valid user name), "rooms" (optional: an array of valid room names,
 *   at most WSCHAT__TOKEN_ROOMS; absent: any room).
 *
 * Owns: the keys' copies (secret bytes, the parsed public key) and each
 * checked token's rooms. Pure: no sockets, no libuv, no logging; a token's
 * bytes are never copied anywhere but into local decode buffers, and no
 * error text quotes them.
 */
#ifndef WSCHAT_TOKEN_H
#define WSCHAT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "wschat.h"

/* The longest token accepted, in bytes (as sent). */
#define WSCHAT__TOKEN_MAX 8192
/* The shortest HS256 secret accepted (RFC 7518 3.2: a key of at least
 * the hash's size). */
#define WSCHAT__TOKEN_SECRET_MIN 32
/* The longest secret accepted. */
#define WSCHAT__TOKEN_SECRET_MAX 4096
/* The shortest RSA key accepted, in bits. */
#define WSCHAT__TOKEN_RSA_MIN_BITS 2048
/* Clock skew allowed for nbf and iat, in seconds. */
#define WSCHAT__TOKEN_LEEWAY 5
/* The most rooms a token may list. */
#define WSCHAT__TOKEN_ROOMS 256

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* The keys a server trusts (zeroed: none). */
struct wschat__token_keys {
  unsigned char *secret; /* owned, or NULL */
  size_t secret_len;
  struct evp_pkey_st *pkey; /* owned, or NULL */
  int pkey_alg;             /* WSCHAT__TOKEN_RS256 or _ES256 */
};

enum { WSCHAT__TOKEN_HS256 = 1, WSCHAT__TOKEN_RS256, WSCHAT__TOKEN_ES256 };

/* Is any key configured? */
static inline int
wschat__token_keys_any(const struct wschat__token_keys *k) {
  return k->secret != NULL || k->pkey != NULL;
}

/* Replaces the secret with a copy of len bytes (secret NULL and len 0:
 * removes it). Returns 0, WSCHAT_EINVAL (shorter than
 * WSCHAT__TOKEN_SECRET_MIN or longer than WSCHAT__TOKEN_SECRET_MAX) or
 * WSCHAT_ENOMEM. */
int wschat__token_set_secret(struct wschat__token_keys *k, const void *secret,
                             size_t len);
/* Replaces the public key with the one in pem (len bytes of a PEM
 * "PUBLIC KEY", the SubjectPublicKeyInfo form; pem NULL: removes it). RSA
 * keys of at least WSCHAT__TOKEN_RSA_MIN_BITS verify RS256, P-256 keys
 * ES256. Returns 0, WSCHAT_EINVAL (not such a key) or WSCHAT_ENOMEM. */
int wschat__token_set_public_key(struct wschat__token_keys *k,
                                 const char *pem, size_t len);
/* Frees what k owns (the secret is wiped first); k is zeroed. */
void wschat__token_keys_free(struct wschat__token_keys *k);

/* Why a token was refused. */
enum wschat__token_err {
  WSCHAT__TOKEN_OK = 0,
  WSCHAT__TOKEN_EMALFORMED, /* not three base64url parts of JSON objects */
  WSCHAT__TOKEN_ETOOLONG,   /* over WSCHAT__TOKEN_MAX */
  WSCHAT__TOKEN_EALG,       /* alg none, unknown, or not the key's */
  WSCHAT__TOKEN_ESIGNATURE, /* the signature does not verify */
  WSCHAT__TOKEN_EEXPIRED,   /* exp is past */
  WSCHAT__TOKEN_ENOTYET,    /* nbf (or iat) is in the future */
  WSCHAT__TOKEN_ECLAIMS,    /* a claim missing, mistyped or invalid */
  WSCHAT__TOKEN_ENOMEM,
};

/* A checked token. */
struct wschat__token {
  char name[WSCHAT_NAME_MAX + 1];
  int64_t exp; /* seconds since the Unix epoch */
  /* The rooms the holder may join: any_room, or the nrooms names in
   * rooms (one owned block: the array, then the strings). */
  int any_room;
  size_t nrooms;
  char **rooms;
};

/*
 * Checks the len bytes of tok (not NUL-terminated) against keys at now
 * (seconds since the Unix epoch). On success fills out (free it with
 * wschat__token_free()); on failure out holds nothing to free. Returns
 * WSCHAT__TOKEN_OK or a wschat__token_err.
 */
int wschat__token_check(const struct wschat__token_keys *keys, const char *tok,
                        size_t len, int64_t now, struct wschat__token *out);
/* An English description of a wschat__token_err (static; never the
 * token's content). */
const char *wschat__token_strerror(int err);
/* May the holder of t join room (case-insensitive)? */
int wschat__token_room_allowed(const struct wschat__token *t,
                               const char *room);
/* Frees t's rooms; t may be zeroed or freed before. */
void wschat__token_free(struct wschat__token *t);

#endif
