/* libFuzzer target: the token check (lib/token.c).
 *
 * Input layout: byte 0 picks the mode.
 * - even: the rest is a token as a client sends it, checked against an
 *   HS256 secret and a P-256 public key (a random token almost never has
 *   a valid signature, so this exercises the length, split, base64url,
 *   header and signature paths);
 * - odd: the rest is "HEADER\0PAYLOAD" (two JSON texts, as the fuzzer
 *   likes), which the target encodes and signs with the secret itself, so
 *   that the claims are parsed too.
 * Invariants: a success has a valid name, an exp after now, and rooms
 * that are valid room names; a failure has a description; nothing leaks
 * (ASan). */
#include <assert.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "token.h"

static const char SECRET[] = "fuzzing-secret-of-at-least-32-bytes!";
static const int64_t NOW = 1800000000;
static struct wschat__token_keys keys;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  assert(wschat__token_set_secret(&keys, SECRET, strlen(SECRET)) == 0);
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  BIO *b = BIO_new(BIO_s_mem());
  assert(ec && b && PEM_write_bio_PUBKEY(b, ec) == 1);
  char *pem;
  long n = BIO_get_mem_data(b, &pem);
  assert(wschat__token_set_public_key(&keys, pem, (size_t)n) == 0);
  BIO_free(b);
  EVP_PKEY_free(ec);
  return 0;
}

static size_t b64url(const uint8_t *in, size_t len, char *out) {
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
  return o;
}

static void check(const char *tok, size_t len) {
  struct wschat__token t;
  int rc = wschat__token_check(&keys, tok, len, NOW, &t);
  assert(wschat__token_strerror(rc) != NULL);
  if (rc != WSCHAT__TOKEN_OK)
    return;
  assert(wschat__name_valid(t.name, strlen(t.name)));
  assert(t.exp > NOW);
  assert(t.any_room ? t.nrooms == 0 : 1);
  for (size_t i = 0; i < t.nrooms; i++) {
    assert(wschat__room_valid(t.rooms[i], strlen(t.rooms[i])));
    assert(wschat__token_room_allowed(&t, t.rooms[i]));
  }
  wschat__token_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 3 * WSCHAT__TOKEN_MAX)
    return 0;
  uint8_t mode = data[0];
  data++, size--;
  if (!(mode & 1)) {
    char *copy = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    memcpy(copy, data, size);
    check(copy, size);
    free(copy);
    return 0;
  }
  const uint8_t *nul = memchr(data, 0, size);
  size_t hlen = nul ? (size_t)(nul - data) : size;
  size_t plen = nul ? size - hlen - 1 : 0;
  char *tok = malloc(2 * size + 64);
  size_t n = b64url(data, hlen, tok);
  tok[n++] = '.';
  n += b64url(nul ? nul + 1 : data, plen, tok + n);
  unsigned char mac[32];
  unsigned int mlen = 0;
  HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, n,
       mac, &mlen);
  tok[n++] = '.';
  n += b64url(mac, mlen, tok + n);
  check(tok, n);
  free(tok);
  return 0;
}
