/* route: see route.h. */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"

#include "http.h"

#define MAX_HEADERS 16
#define MAX_HEADER_BYTES 4096

/* ---- extra headers ---- */

static int token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *const owned_by_handshake[] = {
    "upgrade",
    "connection",
    "content-length",
    "transfer-encoding",
};

int wschat__headers_add(struct wschat__headers *hs, const char *name,
                        const char *value) {
  if (name == NULL || value == NULL || name[0] == '\0')
    return WSCHAT_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  for (size_t i = 0; i < nl; i++)
    if (!token_char((unsigned char)name[i]))
      return WSCHAT_EINVAL;
  for (size_t i = 0; i < vl; i++) {
    unsigned char c = (unsigned char)value[i];
    if ((c < 0x20 && c != '\t') || c == 0x7F)
      return WSCHAT_EINVAL;
  }
  if (strncasecmp(name, "sec-websocket-", 14) == 0)
    return WSCHAT_EINVAL;
  for (size_t i = 0; i < sizeof(owned_by_handshake) / sizeof(char *); i++)
    if (strcasecmp(name, owned_by_handshake[i]) == 0)
      return WSCHAT_EINVAL;
  size_t add = nl + 2 + vl + 2;
  if (hs->n >= MAX_HEADERS || hs->len + add > MAX_HEADER_BYTES)
    return WSCHAT_ETOOMANY;
  char *b = realloc(hs->buf, hs->len + add + 1);
  if (b == NULL)
    return WSCHAT_ENOMEM;
  snprintf(b + hs->len, add + 1, "%s: %s\r\n", name, value);
  hs->buf = b;
  hs->len += add;
  hs->n++;
  return 0;
}

void wschat__headers_free(struct wschat__headers *hs) {
  free(hs->buf);
  memset(hs, 0, sizeof(*hs));
}

/* ---- routes ---- */

int wschat__routes_add(struct wschat__routes *rs, const char *path,
                       wschat_http_cb cb, void *user) {
  if (path == NULL || cb == NULL || path[0] != '/' || strlen(path) > 256)
    return WSCHAT_EINVAL;
  for (size_t i = 0; i < rs->n; i++)
    if (strcmp(rs->v[i].path, path) == 0)
      return WSCHAT_EEXIST;
  void *grown = wschat__grow(rs->v, rs->n, &rs->cap, sizeof(*rs->v), 4);
  if (grown == NULL)
    return WSCHAT_ENOMEM;
  rs->v = grown;
  char *copy = strdup(path);
  if (copy == NULL)
    return WSCHAT_ENOMEM;
  rs->v[rs->n].path = copy;
  rs->v[rs->n].len = strlen(copy);
  rs->v[rs->n].cb = cb;
  rs->v[rs->n++].user = user;
  return 0;
}

void wschat__routes_free(struct wschat__routes *rs) {
  for (size_t i = 0; i < rs->n; i++)
    free(rs->v[i].path);
  free(rs->v);
  memset(rs, 0, sizeof(*rs));
}

/* The longest route for path: exact, or a prefix ending in '/'. "/" is
 * exact only: as a prefix it would take every path, /healthz and every
 * 404 included, from an application that only wanted a home page. */
static const struct wschat__route *find(const struct wschat__routes *rs,
                                        const char *path, size_t len) {
  const struct wschat__route *best = NULL;
  for (size_t i = 0; i < rs->n; i++) {
    const struct wschat__route *r = &rs->v[i];
    int exact = r->len == len && memcmp(r->path, path, len) == 0;
    int prefix = r->len > 1 && r->path[r->len - 1] == '/' && r->len <= len &&
                 memcmp(r->path, path, r->len) == 0;
    if ((exact || prefix) &&
        (best == NULL || r->len > best->len || (exact && r->len == best->len)))
      best = r;
  }
  return best;
}

/* ---- one request ---- */

struct wschat_http_request {
  const struct wschat__http *http;
  char *path, *query; /* owned copies, NUL-terminated */
  struct wschat__headers headers;
  char *out; /* owned: the answer */
  size_t out_len;
  int status;
};

const char *wschat_http_method(const struct wschat_http_request *req) {
  return req->http->is_head ? "HEAD" : "GET";
}
const char *wschat_http_path(const struct wschat_http_request *req) {
  return req->path;
}
const char *wschat_http_query(const struct wschat_http_request *req) {
  return req->query;
}

int wschat_http_header(const struct wschat_http_request *req, const char *name,
                       char *buf, size_t cap) {
  if (name == NULL || (buf == NULL && cap > 0))
    return WSCHAT_EINVAL;
  int n = wschat__http_copy_header(req->http, name, buf, cap);
  return n < 0 ? WSCHAT_ENOTFOUND : n;
}

int wschat_http_add_header(struct wschat_http_request *req, const char *name,
                           const char *value) {
  if (req->out != NULL)
    return WSCHAT_ESTATE;
  return wschat__headers_add(&req->headers, name, value);
}

int wschat_http_respond(struct wschat_http_request *req, int status,
                        const char *content_type, const void *body,
                        size_t len) {
  if (status < 200 || status > 599 || (body == NULL && len > 0) ||
      ((status == 204 || status == 304) && len > 0) ||
      (content_type && strpbrk(content_type, "\r\n")))
    return WSCHAT_EINVAL;
  if (req->out != NULL)
    return WSCHAT_ESTATE;
  char head[8192];
  size_t hl = wschat__http_write_head(head, sizeof(head), status, content_type,
                                      len, req->headers.buf);
  if (hl == 0)
    return WSCHAT_EINVAL;
  size_t bl = req->http->is_head ? 0 : len;
  char *out = malloc(hl + bl);
  if (out == NULL)
    return WSCHAT_ENOMEM;
  memcpy(out, head, hl);
  if (bl)
    memcpy(out + hl, body, bl);
  req->out = out;
  req->out_len = hl + bl;
  req->status = status;
  return 0;
}

static char *copy_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    if (n)
      memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static int builtin(struct wschat_http_request *req, int status,
                   const char *body) {
  size_t bl = strlen(body);
  char text[512];
  snprintf(text, sizeof(text), "%s\n", body);
  return wschat_http_respond(req, status, NULL, text, bl + 1) == 0 ? status : 0;
}

int wschat__routes_serve(const struct wschat__routes *rs,
                         const struct wschat__http *h, char **out,
                         size_t *len) {
  struct wschat_http_request req;
  memset(&req, 0, sizeof(req));
  req.http = h;
  req.path = copy_n(h->path, h->path_len);
  req.query = copy_n(h->query ? h->query : "", h->query ? h->query_len : 0);
  int status = 0;
  if (req.path && req.query) {
    const struct wschat__route *r = find(rs, h->path, h->path_len);
    if (r != NULL) {
      r->cb(&req, r->user);
      if (req.out == NULL) {
        wschat__headers_free(&req.headers);
        status = builtin(&req, 500, "the application gave no answer");
      } else {
        status = req.status;
      }
    } else if (h->path_len == 8 && memcmp(h->path, "/healthz", 8) == 0) {
      status = builtin(&req, 200, "ok");
    } else if (h->path_len == 1 && h->path[0] == '/') {
      status = builtin(&req, 426,
                       "this is a WebSocket chat server: connect with a "
                       "WebSocket client (e.g. new "
                       "WebSocket(\"ws://HOST:PORT/\"))");
    } else {
      status = builtin(&req, 404, "not found");
    }
  }
  free(req.path);
  free(req.query);
  wschat__headers_free(&req.headers);
  *out = req.out;
  *len = req.out_len;
  return req.out ? status : 0;
}
