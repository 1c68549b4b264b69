/* cluster_codec: see cluster_codec.h. */
#include "cluster_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

/* ---- the URL ---- */

static int number(const char **s, long lo, long hi, int *out) {
  const char *p = *s;
  long v = 0;
  if (*p < '0' || *p > '9')
    return -1;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p++ - '0');
    if (v > hi)
      return -1;
  }
  if (v < lo)
    return -1;
  *out = (int)v;
  *s = p;
  return 0;
}

int wschat__redis_url_parse(const char *url, struct wschat__redis_url *out) {
  static const char scheme[] = "redis://";
  if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
    return -1;
  const char *p = url + sizeof(scheme) - 1, *end;
  if (*p == '[') { /* an IPv6 address */
    end = strchr(p, ']');
    if (end == NULL)
      return -1;
    p++;
  } else {
    end = p + strcspn(p, ":/");
  }
  size_t n = (size_t)(end - p);
  if (n == 0 || n >= sizeof(out->host) || memchr(p, '@', n) != NULL)
    return -1;
  memcpy(out->host, p, n);
  out->host[n] = '\0';
  p = *end == ']' ? end + 1 : end;
  out->port = 6379;
  out->db = 0;
  if (*p == ':') {
    p++;
    if (number(&p, 1, 65535, &out->port) != 0)
      return -1;
  }
  if (*p == '/' && p[1] != '\0') {
    p++;
    if (number(&p, 0, 65535, &out->db) != 0)
      return -1;
  } else if (*p == '/') {
    p++;
  }
  return *p == '\0' ? 0 : -1;
}

/* ---- events ---- */

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

size_t wschat__wire_size(const struct wschat_event *ev, const char *origin) {
  return WSCHAT__WIRE_FIXED + 5 * 2 + slen(origin) + slen(ev->room) +
         slen(ev->from) + slen(ev->to) + slen(ev->reason) + 4 + ev->text_len;
}

static char *put64(char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    *p++ = (char)(v >> (8 * i));
  return p;
}

static char *putstr(char *p, const char *s) {
  size_t n = s ? strlen(s) : 0xffff;
  p[0] = (char)(n & 0xff);
  p[1] = (char)(n >> 8);
  p += 2;
  if (s) {
    memcpy(p, s, n);
    p += n;
  }
  return p;
}

size_t wschat__wire_encode(const struct wschat_event *ev, const char *origin,
                           int variant, int flags, char *out, size_t cap) {
  const char *s[5] = {origin, ev->room, ev->from, ev->to, ev->reason};
  size_t need = wschat__wire_size(ev, origin);
  if (need > cap || ev->text_len > 0xffffffffu)
    return 0;
  for (int i = 0; i < 5; i++)
    if (s[i] && strlen(s[i]) >= 0xffff)
      return 0;
  char *p = out;
  *p++ = WSCHAT__WIRE_VERSION;
  *p++ = (char)ev->kind;
  *p++ = (char)variant;
  *p++ = (char)flags;
  p = put64(p, (uint64_t)ev->ts);
  p = put64(p, ev->client);
  p = put64(p, ev->skip);
  p = put64(p, ev->group);
  for (int i = 0; i < 5; i++)
    p = putstr(p, s[i]);
  uint32_t tl = (uint32_t)ev->text_len;
  for (int i = 0; i < 4; i++)
    *p++ = (char)(tl >> (8 * i));
  memcpy(p, ev->text, ev->text_len);
  p += ev->text_len;
  return (size_t)(p - out);
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

struct wschat_event *wschat__wire_decode(const char *p, size_t len,
                                         struct wschat__wire_meta *meta) {
  const unsigned char *u = (const unsigned char *)p, *end = u + len;
  if (len < WSCHAT__WIRE_FIXED || u[0] != WSCHAT__WIRE_VERSION)
    return NULL;
  int kind = u[1];
  if (kind < WSCHAT_EVENT_MESSAGE || kind > WSCHAT_EVENT_NOTICE)
    return NULL;
  meta->variant = u[2];
  meta->flags = u[3];
  int64_t ts = (int64_t)get64(u + 4);
  uint64_t client = get64(u + 12), skip = get64(u + 20), group = get64(u + 28);
  u += WSCHAT__WIRE_FIXED;
  char s[5][1024]; /* every valid string fits (reasons: 123 bytes) */
  int null[5];
  for (int i = 0; i < 5; i++) {
    if (end - u < 2)
      return NULL;
    size_t n = (size_t)u[0] | (size_t)u[1] << 8;
    u += 2;
    null[i] = n == 0xffff;
    if (null[i])
      n = 0;
    if (n >= sizeof(s[i]) || (size_t)(end - u) < n || memchr(u, 0, n))
      return NULL;
    memcpy(s[i], u, n);
    s[i][n] = '\0';
    u += n;
  }
  if (end - u < 4 || null[0])
    return NULL;
  size_t tl = (size_t)u[0] | (size_t)u[1] << 8 | (size_t)u[2] << 16 |
              (size_t)u[3] << 24;
  u += 4;
  if ((size_t)(end - u) != tl)
    return NULL;
  size_t ol = strlen(s[0]);
  if (ol >= sizeof(meta->origin))
    return NULL;
  memcpy(meta->origin, s[0], ol + 1);
  struct wschat_event *ev = wschat__event_new(
      kind, null[1] ? NULL : s[1], null[2] ? NULL : s[2],
      null[3] ? NULL : s[3], (const char *)u, tl, null[4] ? NULL : s[4]);
  if (ev == NULL)
    return NULL;
  ev->ts = ts;
  ev->client = client;
  ev->skip = skip;
  ev->group = group;
  return ev;
}

static int prefix(const char **p, const char *end, uint64_t *out) {
  uint64_t v = 0;
  const char *s = *p;
  if (s == end || *s < '0' || *s > '9')
    return -1;
  while (s < end && *s >= '0' && *s <= '9') {
    if (v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*s++ - '0');
  }
  if (s == end || *s != ':')
    return -1;
  *p = s + 1;
  *out = v;
  return 0;
}

struct wschat_event *wschat__wire_decode_msg(const char *p, size_t len,
                                             struct wschat__wire_meta *meta) {
  const char *end = p + len;
  uint64_t id, seq;
  if (prefix(&p, end, &id) != 0 || prefix(&p, end, &seq) != 0)
    return NULL;
  struct wschat_event *ev = wschat__wire_decode(p, (size_t)(end - p), meta);
  if (ev == NULL)
    return NULL;
  ev->id = id;
  meta->id = id;
  meta->seq = seq;
  return ev;
}

/* ---- typing notices ---- */

size_t wschat__wire_typing_encode(const char *origin, const char *room,
                                  const char *from, char *out, size_t cap) {
  const char *s[3] = {origin, room, from};
  size_t need = 2;
  for (int i = 0; i < 3; i++) {
    size_t n = slen(s[i]);
    if (n == 0 || n > 255)
      return 0;
    need += 1 + n;
  }
  if (need > cap)
    return 0;
  char *p = out;
  *p++ = WSCHAT__WIRE_TYPING;
  *p++ = WSCHAT__WIRE_VERSION;
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(s[i]);
    *p++ = (char)n;
    memcpy(p, s[i], n);
    p += n;
  }
  return (size_t)(p - out);
}

int wschat__wire_typing_decode(const char *p, size_t len,
                               struct wschat__wire_typing *out) {
  const unsigned char *u = (const unsigned char *)p, *end = u + len;
  char *s[3] = {out->origin, out->room, out->from};
  if (len < 2 || u[0] != WSCHAT__WIRE_TYPING || u[1] != WSCHAT__WIRE_VERSION)
    return -1;
  u += 2;
  for (int i = 0; i < 3; i++) {
    if (u == end)
      return -1;
    size_t n = *u++;
    if (n == 0 || (size_t)(end - u) < n || memchr(u, 0, n) != NULL)
      return -1;
    memcpy(s[i], u, n);
    s[i][n] = '\0';
    u += n;
  }
  return u == end ? 0 : -1;
}
