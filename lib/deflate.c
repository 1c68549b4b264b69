/*
 * deflate: see deflate.h.
 *
 * Compression: one raw deflate stream per window size (8-15 bits), reset
 * for each message, flushed with Z_SYNC_FLUSH and its 4-byte tail
 * 00 00 ff ff stripped (RFC 7692 7.2.1). zlib cannot make a raw stream
 * with an 8-bit window: a client that asks for one gets a 9-bit stream,
 * which fits, since zlib's deflate never reaches back further than its
 * window less MIN_LOOKAHEAD (262 bytes): 250 bytes in a 512-byte window
 * (tests/e2e/test_deflate.py inflates it with 256).
 * Inflation: one raw inflate stream with a 15-bit window (it reads any
 * smaller one), reset for each message, writing into a buffer grown by
 * doubling and never past the caller's limit + 1.
 */
#include "deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "frame.h"

/* ---- negotiation ---- */

static int tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

struct cur {
  const char *s;
  size_t i, len;
};

static void ows(struct cur *c) {
  while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t'))
    c->i++;
}

/* A token at c; returns its length (0: none). */
static size_t token(struct cur *c, const char **at) {
  *at = c->s + c->i;
  size_t n = 0;
  while (c->i < c->len && tchar(c->s[c->i])) {
    c->i++;
    n++;
  }
  return n;
}

/* A quoted-string at c (the opening quote at c->i) into v[0..cap): returns
 * its unescaped length, cap + 1 if longer, or -1 (unterminated). */
static long quoted(struct cur *c, char *v, size_t cap) {
  size_t n = 0;
  c->i++;
  while (c->i < c->len) {
    char ch = c->s[c->i++];
    if (ch == '"')
      return n > cap ? (long)cap + 1 : (long)n;
    if (ch == '\\') {
      if (c->i >= c->len)
        return -1;
      ch = c->s[c->i++];
    }
    if (n < cap)
      v[n] = ch;
    n++;
  }
  return -1;
}

/* Past the next ',' outside quotes (the rest of a broken element). */
static void skip_element(struct cur *c) {
  int q = 0;
  while (c->i < c->len) {
    char ch = c->s[c->i++];
    if (q && ch == '\\' && c->i < c->len)
      c->i++;
    else if (ch == '"')
      q = !q;
    else if (!q && ch == ',')
      return;
  }
}

/* "8".."15", no leading zero: the bits, or 0. */
static int window_bits(const char *v, size_t n) {
  if (n == 1 && v[0] >= '8' && v[0] <= '9')
    return v[0] - '0';
  if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return 10 + (v[1] - '0');
  return 0;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8 };

/* Applies one parameter to p; 0 makes the offer unacceptable. */
static int apply(struct wschat__pmd *p, unsigned *seen, const char *name,
                 size_t nl, int has_value, const char *v, size_t vl) {
  static const char *const names[] = {
      "server_no_context_takeover", "client_no_context_takeover",
      "server_max_window_bits", "client_max_window_bits"};
  int k = -1;
  for (int j = 0; j < 4; j++)
    if (strlen(names[j]) == nl && strncasecmp(names[j], name, nl) == 0)
      k = j;
  if (k < 0 || (*seen & (1u << k)))
    return 0; /* unknown or repeated */
  *seen |= 1u << k;
  int bits = has_value ? window_bits(v, vl) : 0;
  switch (k) {
  case 0:
  case 1:
    if (has_value)
      return 0;
    if (k == 0)
      p->server_nct = 1;
    else
      p->client_nct = 1;
    return 1;
  case 2:
    if (bits == 0)
      return 0;
    p->server_bits = (uint8_t)bits;
    p->server_bits_asked = 1;
    return 1;
  default:
    if (has_value && bits == 0)
      return 0;
    p->client_bits = has_value ? (uint8_t)bits : 1;
    return 1;
  }
}

int wschat__pmd_negotiate(const char *s, size_t len, struct wschat__pmd *out) {
  struct cur c = {s, 0, len};
  while (c.i < c.len) {
    ows(&c);
    if (c.i < c.len && c.s[c.i] == ',') {
      c.i++;
      continue; /* an empty element */
    }
    if (c.i >= c.len)
      break;
    const char *name;
    size_t nl = token(&c, &name);
    if (nl == 0) {
      skip_element(&c);
      continue;
    }
    struct wschat__pmd p = {.server_bits = 15};
    unsigned seen = 0;
    int ok = nl == 18 && strncasecmp(name, "permessage-deflate", 18) == 0;
    int broken = 0;
    ows(&c);
    while (!broken && c.i < c.len && c.s[c.i] == ';') {
      c.i++;
      ows(&c);
      const char *pn;
      size_t pl = token(&c, &pn);
      ows(&c);
      char v[16];
      size_t vl = 0;
      int has_value = 0;
      if (pl == 0) {
        broken = 1;
        break;
      }
      if (c.i < c.len && c.s[c.i] == '=') {
        c.i++;
        ows(&c);
        has_value = 1;
        if (c.i < c.len && c.s[c.i] == '"') {
          long q = quoted(&c, v, sizeof(v));
          if (q < 0) {
            broken = 1;
            break;
          }
          vl = (size_t)q;
          /* A quoted value must still be a token (RFC 6455 9.1). */
          for (size_t k = 0; k < vl && k < sizeof(v); k++)
            if (!tchar(v[k]))
              ok = 0;
          if (vl == 0)
            ok = 0;
        } else {
          const char *t;
          vl = token(&c, &t);
          if (vl == 0) {
            broken = 1;
            break;
          }
          memcpy(v, t, vl < sizeof(v) ? vl : sizeof(v));
        }
        ows(&c);
      }
      if (ok)
        ok = vl <= sizeof(v) &&
             apply(&p, &seen, pn, pl, has_value, v, vl < sizeof(v) ? vl : 0);
    }
    if (!broken && c.i < c.len && c.s[c.i] != ',')
      broken = 1;
    if (broken) {
      skip_element(&c);
      continue;
    }
    if (ok) {
      *out = p;
      return 1;
    }
  }
  return 0;
}

size_t wschat__pmd_response(const struct wschat__pmd *p, char *out,
                            size_t cap) {
  int n = snprintf(out, cap,
                   "permessage-deflate; server_no_context_takeover; "
                   "client_no_context_takeover");
  if (n < 0 || (size_t)n >= cap)
    return 0;
  size_t len = (size_t)n;
  if (p->server_bits_asked) {
    n = snprintf(out + len, cap - len, "; server_max_window_bits=%u",
                 p->server_bits);
    len += n > 0 ? (size_t)n : 0;
  }
  if (p->client_bits >= 8 && len < cap) {
    n = snprintf(out + len, cap - len, "; client_max_window_bits=%u",
                 p->client_bits);
    len += n > 0 ? (size_t)n : 0;
  }
  return len < cap ? len : 0;
}

/* ---- the shared streams ---- */

struct wschat__deflate {
  z_stream def[WSCHAT__ZKEYS]; /* [key]: initialised when def_ok[key] */
  uint8_t def_ok[WSCHAT__ZKEYS];
  z_stream inf; /* initialised when inf_ok */
  uint8_t inf_ok;
  size_t threshold;
  uint8_t *zbuf; /* owned: compressed output scratch */
  size_t zcap;
  uint8_t *ibuf; /* owned: the last inflated message */
  size_t icap;
  struct wschat__deflate_stats stats;
};

const struct wschat__deflate_stats *
wschat__deflate_stats(const struct wschat__deflate *z) {
  return &z->stats;
}

/* Scratch kept between messages up to this size; a larger one is freed
 * before the next message. */
#define KEEP_CAP ((size_t)64 << 10)

struct wschat__deflate *wschat__deflate_new(size_t threshold) {
  struct wschat__deflate *z = calloc(1, sizeof(*z));
  if (z != NULL)
    z->threshold = threshold;
  return z;
}

void wschat__deflate_set_threshold(struct wschat__deflate *z, size_t t) {
  z->threshold = t;
}

void wschat__deflate_free(struct wschat__deflate *z) {
  if (z == NULL)
    return;
  for (unsigned k = 0; k < WSCHAT__ZKEYS; k++)
    if (z->def_ok[k])
      deflateEnd(&z->def[k]);
  if (z->inf_ok)
    inflateEnd(&z->inf);
  free(z->zbuf);
  free(z->ibuf);
  free(z);
}

/* The compressor for key, made at first use (memLevel 6: the hash table
 * that deflateReset clears for every message is 16 KiB, not 64). */
static z_stream *compressor(struct wschat__deflate *z, unsigned key) {
  if (key == 0 || key >= WSCHAT__ZKEYS)
    return NULL;
  if (!z->def_ok[key]) {
    int bits = (int)key + 7;
    z_stream *s = &z->def[key];
    memset(s, 0, sizeof(*s));
    if (deflateInit2(s, 6, Z_DEFLATED, bits == 8 ? -9 : -bits, 6,
                     Z_DEFAULT_STRATEGY) != Z_OK)
      return NULL;
    z->def_ok[key] = 1;
  }
  return &z->def[key];
}

/* Makes *buf hold at least need bytes (4 KiB at least, so that messages of
 * growing sizes do not reallocate each time), and no more than KEEP_CAP
 * when need is under it (a large buffer goes back after its message). */
static int reserve(uint8_t **buf, size_t *cap, size_t need) {
  if (*cap >= need && !(*cap > KEEP_CAP && need <= KEEP_CAP))
    return 0;
  if (need < 4096)
    need = 4096;
  free(*buf);
  *cap = 0;
  *buf = malloc(need);
  if (*buf == NULL)
    return -1;
  *cap = need;
  return 0;
}

struct wschat__frame *wschat__deflate_frame(struct wschat__deflate *z,
                                            unsigned key,
                                            struct wschat__frame *plain) {
  size_t len;
  const uint8_t *payload = wschat__frame_payload(plain, &len);
  int opcode = plain->data[0] & 0x0F;
  z_stream *s;
  if (z == NULL || len < z->threshold || len == 0 || len > UINT32_MAX ||
      (plain->data[0] & 0x70) ||
      (opcode != WSCHAT__OP_TEXT && opcode != WSCHAT__OP_BINARY) ||
      (s = compressor(z, key)) == NULL)
    return wschat__frame_ref(plain);
  size_t need = deflateBound(s, (uLong)len) + 16;
  if (reserve(&z->zbuf, &z->zcap, need) != 0 || deflateReset(s) != Z_OK)
    return wschat__frame_ref(plain);
  s->next_in = (Bytef *)(uintptr_t)payload;
  s->avail_in = (uInt)len;
  s->next_out = z->zbuf;
  s->avail_out = (uInt)need;
  int r = deflate(s, Z_SYNC_FLUSH);
  size_t n = need - s->avail_out;
  if (r != Z_OK || s->avail_in != 0 || s->avail_out == 0 || n < 4 ||
      memcmp(z->zbuf + n - 4, "\0\0\xff\xff", 4) != 0)
    return wschat__frame_ref(plain);
  n -= 4;
  if (n >= len)
    return wschat__frame_ref(plain); /* it does not pay */
  struct wschat__frame *f =
      wschat__frame_new(opcode | WSCHAT__FRAME_RSV1, z->zbuf, n);
  if (f == NULL)
    return wschat__frame_ref(plain);
  z->stats.compressed++;
  z->stats.plain_bytes += len;
  z->stats.zbytes += n;
  return f;
}

struct wschat__frame *wschat__deflate_own(struct wschat__deflate *z,
                                          unsigned key,
                                          struct wschat__frame *f) {
  if (z == NULL || key == 0 || f == NULL)
    return f;
  struct wschat__frame *g = wschat__deflate_frame(z, key, f);
  if (g == f) {
    f->refs--; /* the one deflate_frame added: f goes on as it came */
    return f;
  }
  wschat__frame_unref(f);
  return g;
}

static int inflate_into(struct wschat__deflate *z, const uint8_t *in,
                        size_t len, size_t max, const uint8_t **out,
                        size_t *out_len, const char **why) {
  static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
  z_stream *s = &z->inf;
  *why = "out of memory";
  if (!z->inf_ok) {
    memset(s, 0, sizeof(*s));
    if (inflateInit2(s, -15) != Z_OK)
      return 1011;
    z->inf_ok = 1;
  } else if (inflateReset(s) != Z_OK) {
    return 1011;
  }
  size_t limit = max + 1; /* one byte past max tells a message too big */
  size_t cap = limit < 4096 ? limit : 4096;
  if (len > UINT32_MAX / 2 || reserve(&z->ibuf, &z->icap, cap) != 0)
    return 1011;
  cap = z->icap < limit ? z->icap : limit;
  size_t produced = 0;
  int stage = 0;
  s->next_in = (Bytef *)(uintptr_t)in;
  s->avail_in = (uInt)len;
  for (;;) {
    if (produced == cap) {
      if (cap >= limit) {
        *why = "message too big";
        return 1009;
      }
      size_t ncap = cap * 2 < limit ? cap * 2 : limit;
      uint8_t *b = realloc(z->ibuf, ncap);
      if (b == NULL)
        return 1011;
      z->ibuf = b;
      z->icap = cap = ncap;
    }
    size_t room = cap - produced;
    if (room > UINT32_MAX)
      room = UINT32_MAX;
    s->next_out = z->ibuf + produced;
    s->avail_out = (uInt)room;
    int r = inflate(s, Z_SYNC_FLUSH);
    produced += room - s->avail_out;
    if (produced > max) {
      *why = "message too big";
      return 1009;
    }
    if (produced > WSCHAT__INFLATE_RATIO_FLOOR &&
        produced / WSCHAT__INFLATE_RATIO > len) {
      *why = "compression ratio too high";
      return 1009;
    }
    if (r == Z_STREAM_END) {
      if (stage == 0 && s->avail_in > 0)
        break; /* data after the final block */
      goto done;
    }
    if (r == Z_MEM_ERROR)
      return 1011;
    if (r != Z_OK && r != Z_BUF_ERROR)
      break;
    if (s->avail_in == 0) {
      if (stage == 0) {
        stage = 1;
        s->next_in = (Bytef *)(uintptr_t)tail;
        s->avail_in = sizeof(tail);
        continue;
      }
      if (s->avail_out > 0)
        goto done; /* all input read, all output given */
    } else if (s->avail_out > 0) {
      break; /* no progress with input and room left */
    }
  }
  *why = "invalid compressed data";
  return 1007;
done:
  if (produced == z->icap) { /* room for a NUL after it, as a courtesy */
    uint8_t *b = realloc(z->ibuf, produced + 1);
    if (b == NULL)
      return 1011;
    z->ibuf = b;
    z->icap = produced + 1;
  }
  z->ibuf[produced] = '\0';
  *out = z->ibuf;
  *out_len = produced;
  return 0;
}

int wschat__deflate_inflate(struct wschat__deflate *z, const uint8_t *in,
                            size_t len, size_t max, const uint8_t **out,
                            size_t *out_len, const char **why) {
  int r = inflate_into(z, in, len, max, out, out_len, why);
  if (r == 0)
    z->stats.inflated++;
  else if (r != 1011)
    z->stats.refused++;
  return r;
}
