/*
 * session_ident: identity, the part of the session that reads a client's
 * token (see session.h, "Identity", and token.h for the check itself).
 *
 * Where a token comes from, in this order (the first one found is the
 * one checked): an "Authorization: Bearer TOKEN" header; an offered
 * subprotocol "wschat.token.TOKEN" (browsers cannot set headers, but can
 * offer subprotocols; base64url and '.' are token characters, so a JWT
 * fits in one); a "token=TOKEN" query parameter. Whatever it came from,
 * the token is then taken out of what the application and logs can see
 * of the request: the subprotocol entry from wschat_client_protocols(),
 * the parameter from wschat_client_query(). It is never chosen as the
 * subprotocol and never written anywhere.
 *
 * Owns: each client's struct wschat__ident (its checked token and its
 * expiry timer), freed from the timer's close callback.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chat.h"
#include "http.h"
#include "presence.h"
#include "session_env.h"
#include "token.h"

struct wschat__ident {
  struct wschat__token token;
  uv_timer_t timer;          /* the expiry; timer.data is the client */
  uint8_t timer_on;          /* the timer was initialized */
  uint8_t reserved;          /* this client reserved token.name */
  struct wschat__chat *chat; /* for the reservation */
};

/* The subprotocol prefix that carries a token. */
#define TOKEN_PROTOCOL "wschat.token."
#define TOKEN_PROTOCOL_LEN (sizeof(TOKEN_PROTOCOL) - 1)

int wschat__ident_is_token_protocol(const char *p, size_t len) {
  return len >= TOKEN_PROTOCOL_LEN &&
         memcmp(p, TOKEN_PROTOCOL, TOKEN_PROTOCOL_LEN) == 0;
}

/* The token in an "Authorization: Bearer" header, or NULL. */
static const char *from_authorization(const struct wschat__http *h,
                                      size_t *len) {
  const struct wschat__http_header *p =
      wschat__http_header_next(h, "Authorization", NULL);
  if (p == NULL || p->value_len < 7 || strncasecmp(p->value, "Bearer ", 7))
    return NULL;
  const char *v = p->value + 7;
  size_t n = p->value_len - 7;
  while (n && *v == ' ')
    v++, n--;
  while (n && v[n - 1] == ' ')
    n--;
  *len = n;
  return v;
}

/* The token of the first offered "wschat.token.TOKEN" (a copy the
 * caller owns; NULL if none or out of memory). Every such entry is cut
 * out of the client's list of offered subprotocols. */
static char *from_protocols(struct wschat_client *c, size_t *len) {
  const char *p = c->hs->protocols;
  char *kept = malloc(2 * strlen(p) + 1), *tok = NULL;
  size_t k = 0;
  if (kept == NULL)
    return NULL;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *e = p;
    while (n && (*e == ' ' || *e == '\t'))
      e++, n--;
    while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
      n--;
    if (wschat__ident_is_token_protocol(e, n)) {
      if (tok == NULL && (tok = malloc(n - TOKEN_PROTOCOL_LEN + 1)) != NULL) {
        *len = n - TOKEN_PROTOCOL_LEN;
        memcpy(tok, e + TOKEN_PROTOCOL_LEN, *len);
        tok[*len] = '\0';
      }
    } else if (n) {
      if (k) {
        kept[k++] = ',';
        kept[k++] = ' ';
      }
      memcpy(kept + k, e, n);
      k += n;
    }
    if (end == NULL)
      break;
    p = end + 1;
  }
  kept[k] = '\0';
  free(c->hs->protocols);
  c->hs->protocols = kept;
  return tok;
}

/* Cuts every "token" parameter out of c's stored query (in place). */
static void strip_query(struct wschat_client *c) {
  char *q = c->path + strlen(c->path) + 1;
  size_t qlen = strlen(q);
  char *peer = q + qlen + 1;
  size_t i = 0;
  while (i < qlen) {
    size_t end = i;
    while (end < qlen && q[end] != '&')
      end++;
    if (end - i >= 5 && memcmp(q + i, "token", 5) == 0 &&
        (end - i == 5 || q[i + 5] == '=')) {
      size_t cut_to = end < qlen ? end + 1 : end;
      size_t cut_from = end < qlen || i == 0 ? i : i - 1;
      memmove(q + cut_from, q + cut_to, qlen - cut_to);
      qlen -= cut_to - cut_from;
      q[qlen] = '\0';
      i = cut_from;
      continue;
    }
    i = end + 1;
  }
  /* The peer followed the query: move it up behind the shorter one. */
  memmove(q + qlen + 1, peer, strlen(peer) + 1);
}

int wschat__ident_request(struct wschat_client *c, const char **why) {
  const struct wschat__session_env *env = wschat__session_env(c);
  const struct wschat__http *h = c->conn.http;
  size_t len = 0;
  char *owned = NULL;
  char qbuf[WSCHAT__TOKEN_MAX + 2];
  const char *tok = from_authorization(h, &len);
  /* Both cut out in any case: what is not checked is not kept either. */
  char *proto = from_protocols(c, &len);
  if (tok == NULL && proto != NULL)
    tok = owned = proto;
  else
    free(proto);
  const char *query = c->path + strlen(c->path) + 1;
  int qn = wschat__http_query_param(query, strlen(query), "token", qbuf,
                                    sizeof(qbuf));
  if (tok == NULL && qn >= 0) {
    tok = qbuf;
    len = (size_t)qn;
  }
  if (tok == NULL && qn == -2) {
    *why = "token too long or malformed";
    return -1;
  }
  strip_query(c);
  if (tok == NULL) {
    *why = "token required";
    return -1;
  }
  struct wschat__ident *id = calloc(1, sizeof(*id));
  if (id == NULL) {
    free(owned);
    *why = "out of memory";
    return -1;
  }
  int rc = wschat__token_check(&env->keys, tok, len, (int64_t)time(NULL),
                               &id->token);
  free(owned);
  if (rc != WSCHAT__TOKEN_OK) {
    free(id);
    *why = wschat__token_strerror(rc);
    return -1;
  }
  id->chat = env->chat;
  c->ident = id;
  /* The name is the token's (?name= is not read); the room is ?room= if
   * the token allows it, else lobby. */
  memcpy(c->hs->name, id->token.name, sizeof(c->hs->name));
  if (!id->token.any_room) {
    char room[WSCHAT_ROOM_MAX + 1];
    int n = wschat__http_query_param(query, strlen(query), "room", room,
                                     sizeof(room));
    if (n >= 0 && !wschat__ident_may_join(c, room)) {
      memcpy(c->hs->room, WSCHAT__LOBBY, sizeof(WSCHAT__LOBBY));
      c->ident_start_refused = 1;
    }
  }
  return 0;
}

int wschat__ident_may_join(const struct wschat_client *c, const char *room) {
  return c->ident == NULL || strcasecmp(room, WSCHAT__LOBBY) == 0 ||
         wschat__token_room_allowed(&c->ident->token, room);
}

int wschat__ident_claim(struct wschat_client *c) {
  struct wschat__ident *id = c->ident;
  if (id == NULL || strcmp(c->hs->name, id->token.name) != 0 ||
      wschat__session_env(c)->mode != WSCHAT_MODE_CHAT)
    return 0; /* on_connect named it otherwise (the application decides),
                 or an echo server, which has no names */
  struct wschat__presence *p = id->chat->presence;
  if (p->ops->find(p, id->token.name) != NULL)
    return -1;
  if (!p->ops->reserved(p, id->token.name) &&
      p->ops->reserve(p, id->token.name) == 0)
    id->reserved = 1;
  return 0;
}

static void expired(uv_timer_t *t) {
  struct wschat_client *c = t->data;
  if (c != NULL && c->conn.state == WSCHAT__CONN_OPEN)
    wschat__conn_close(&c->conn, WSCHAT__CLOSE_TOKEN_EXPIRED, "token expired");
}

void wschat__ident_opened(struct wschat_client *c) {
  struct wschat__ident *id = c->ident;
  if (id == NULL || c->conn.state != WSCHAT__CONN_OPEN)
    return;
  uv_loop_t *loop = wschat__session_env(c)->conn.loop;
  int64_t now_ms = (int64_t)time(NULL) * 1000;
  int64_t left = id->token.exp * 1000 - now_ms;
  if (uv_timer_init(loop, &id->timer) != 0)
    return;
  id->timer_on = 1;
  id->timer.data = c;
  uv_unref((uv_handle_t *)&id->timer); /* the connection keeps the loop */
  uv_timer_start(&id->timer, expired, left > 0 ? (uint64_t)left : 0, 0);
}

static void ident_closed(uv_handle_t *h) {
  struct wschat__ident *id =
      (struct wschat__ident *)((char *)h - offsetof(struct wschat__ident,
                                                    timer));
  wschat__token_free(&id->token);
  free(id);
}

void wschat__ident_free(struct wschat_client *c) {
  struct wschat__ident *id = c->ident;
  if (id == NULL)
    return;
  c->ident = NULL;
  if (id->reserved) {
    struct wschat__presence *p = id->chat->presence;
    p->ops->unreserve(p, id->token.name);
  }
  if (id->timer_on) {
    id->timer.data = NULL;
    uv_close((uv_handle_t *)&id->timer, ident_closed);
    return;
  }
  wschat__token_free(&id->token);
  free(id);
}
