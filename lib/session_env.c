/* session_env: see session_env.h. */
#include "session_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"
#include "http.h"

/* ---- the session's options ---- */

void wschat__session_env_init(struct wschat__session_env *env) {
  env->max_line = WSCHAT__MAX_LINE_DEFAULT;
  env->rate = WSCHAT__RATE_DEFAULT;
  env->burst = WSCHAT__BURST_DEFAULT;
}

void wschat__session_env_free(struct wschat__session_env *env) {
  for (size_t i = 0; i < env->norigins; i++)
    free(env->origins[i]);
  free(env->origins);
  env->origins = NULL;
  env->norigins = env->origins_cap = 0;
  wschat__token_keys_free(&env->keys);
}

int wschat__session_set_option(struct wschat__session_env *env, int opt,
                               int64_t v) {
  switch (opt) {
  case WSCHAT_OPT_MAX_LINE:
    if (v < 1 || v > (int64_t)1 << 31)
      return WSCHAT_EINVAL;
    env->max_line = (size_t)v;
    return 0;
  case WSCHAT_OPT_RATE:
    if (v < 0 || v > 1000000)
      return WSCHAT_EINVAL;
    env->rate = (uint32_t)v;
    return 0;
  case WSCHAT_OPT_BURST:
    if (v < 1 || v > 1000000)
      return WSCHAT_EINVAL;
    env->burst = (uint32_t)v;
    return 0;
  default:
    return WSCHAT_EINVAL;
  }
}

size_t wschat__session_line_max(const struct wschat__session_env *env) {
  size_t max = env->conn.max_message;
  size_t fits =
      max > WSCHAT__LINE_OVERHEAD + 6 ? (max - WSCHAT__LINE_OVERHEAD) / 6 : 1;
  return env->max_line < fits ? env->max_line : fits;
}

/* ---- the Origin allow-list ---- */

/* The most bytes of an allowed origin (a host name is at most 253). */
#define ORIGIN_MAX 255

int wschat__session_add_origin(struct wschat__session_env *env,
                               const char *origin) {
  if (origin == NULL)
    return WSCHAT_EINVAL;
  size_t len = strlen(origin);
  if (len > 1 && origin[len - 1] == '/')
    len--; /* "https://example.com/" is how people write it */
  const char *sep = memchr(origin, ':', len);
  int is_null = len == 4 && strncasecmp(origin, "null", 4) == 0;
  if (len == 0 || len > ORIGIN_MAX)
    return WSCHAT_EINVAL;
  if (!is_null &&
      (sep == NULL || sep == origin || len - (size_t)(sep - origin) < 4 ||
       sep[1] != '/' || sep[2] != '/' ||
       memchr(sep + 3, '/', len - (size_t)(sep + 3 - origin)) != NULL))
    return WSCHAT_EINVAL; /* not SCHEME://HOST[:PORT] */
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)origin[i] <= 0x20 || (unsigned char)origin[i] >= 0x7F)
      return WSCHAT_EINVAL;
  char **v = wschat__grow(env->origins, env->norigins, &env->origins_cap,
                          sizeof(*v), 4);
  if (v == NULL)
    return WSCHAT_ENOMEM;
  env->origins = v;
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return WSCHAT_ENOMEM;
  memcpy(copy, origin, len);
  copy[len] = '\0';
  env->origins[env->norigins++] = copy;
  return 0;
}

/* May this request be upgraded, as far as its Origin goes? Browsers send
 * their page's origin (RFC 6454: SCHEME://HOST[:PORT], or "null") with
 * every WebSocket upgrade; other clients usually send none. Without an
 * allow-list, or without an Origin header, yes; otherwise each Origin
 * header must be in the list (compared regardless of case, as scheme and
 * host are). */
int wschat__session_origin_allowed(const struct wschat__session_env *env,
                                   const struct wschat__http *h) {
  if (env->norigins == 0)
    return 1;
  const struct wschat__http_header *p = NULL;
  while ((p = wschat__http_header_next(h, "Origin", p))) {
    size_t i = 0;
    while (i < env->norigins &&
           !(strlen(env->origins[i]) == p->value_len &&
             strncasecmp(env->origins[i], p->value, p->value_len) == 0))
      i++;
    if (i == env->norigins)
      return 0;
  }
  return 1;
}

/* ---- flood control ---- */

/* The tighter buckets (a second, at once), on top of every message's. A
 * person changes room, name or whisper partner a few times a minute; a
 * script doing it a hundred times a second makes every room's members
 * read its joins and leaves. */
static const struct {
  uint32_t rate, burst;
} tight[WSCHAT__RATE_KINDS] = {
    [WSCHAT__RATE_JOIN] = {2, 10},
    [WSCHAT__RATE_NICK] = {1, 3},
    [WSCHAT__RATE_WHISPER] = {5, 10},
};

/* A client is closed on its third warning within this many ms, or when it
 * has sent this many bursts since its last warning. */
#define WARN_WINDOW_MS 10000
#define WARN_CLOSE 3
#define REFUSED_BURSTS 5

void wschat__session_rate_of(const struct wschat__session_env *env, int kind,
                             uint32_t *rate, uint32_t *burst) {
  *rate = kind == WSCHAT__RATE_ANY ? env->rate : tight[kind].rate;
  *burst = kind == WSCHAT__RATE_ANY ? env->burst : tight[kind].burst;
}

int wschat__session_admit(struct wschat_client *c, int kind) {
  const struct wschat__session_env *env = wschat__session_env(c);
  if (env->rate == 0)
    return WSCHAT__ADMIT;
  uint64_t now = uv_now(env->conn.loop);
  uint32_t rate, burst;
  wschat__session_rate_of(env, kind, &rate, &burst);
  uint8_t bit = (uint8_t)(1u << kind);
  if (wschat__bucket_take(&c->bucket[kind], rate, burst, now)) {
    c->warned &= (uint8_t)~bit;
    return WSCHAT__ADMIT;
  }
  if (c->warned & bit) {
    if (++c->refused < (uint32_t)REFUSED_BURSTS * env->burst)
      return WSCHAT__ADMIT_DROP;
  } else {
    if (c->warns == 0 || now - c->warn_at > WARN_WINDOW_MS) {
      c->warns = 0;
      c->warn_at = now;
    }
    c->warned |= bit;
    c->refused = 0;
    if (++c->warns < WARN_CLOSE)
      return WSCHAT__ADMIT_WARN;
  }
  wschat__conn_close(&c->conn, 1008, "rate limit");
  env->conn.metrics->rate_limited++;
  return WSCHAT__ADMIT_CLOSED;
}

