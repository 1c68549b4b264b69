/*
 * web: see web.h. Each answer carries:
 *  - the file's Content-Type, and X-Content-Type-Options: nosniff;
 *  - a Content-Security-Policy under which the page runs only its own
 *    script and style (nothing inline, no eval) and opens WebSockets only
 *    to the host it was loaded from. connect-src names ws:// and wss://
 *    of that host explicitly, because older browsers do not count
 *    WebSocket URLs as 'self';
 *  - an ETag of the file's bytes with Cache-Control: no-cache: a browser
 *    keeps its copy, asks each time, and gets 304 (no body) while the file
 *    is unchanged.
 */
#include "web.h"

#include <stdio.h>
#include <string.h>

#include "web_assets.h"

/* A Host header we are willing to copy into a header of our own: a name
 * or an address, and a port. Anything else gets the wider policy. */
static int plain_host(const char *h) {
  if (h[0] == '\0')
    return 0;
  for (const char *p = h; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || strchr(".-:[]", *p)))
      return 0;
  return 1;
}

/* Whether If-None-Match (a list of entity tags, or "*") names etag. Weak
 * tags (W/"...") match too: the comparison for GET is the weak one. */
static int etag_matches(const char *list, const char *etag) {
  size_t el = strlen(etag);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '*')
      return 1;
    if (strncmp(p, "W/", 2) == 0)
      p += 2;
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
      n--;
    if (n == el && memcmp(p, etag, el) == 0)
      return 1;
    if (end == NULL)
      break;
    p = end;
  }
  return 0;
}

static void serve(struct wschat_http_request *req, void *user) {
  const struct web_asset *a = user;
  char host[256], csp[1024], inm[1024];
  int n = wschat_http_header(req, "Host", host, sizeof(host));
  if (n > 0 && (size_t)n < sizeof(host) && plain_host(host))
    snprintf(csp, sizeof(csp),
             "default-src 'none'; script-src 'self'; style-src 'self'; "
             "connect-src 'self' ws://%s wss://%s; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'none'",
             host, host);
  else
    snprintf(csp, sizeof(csp),
             "default-src 'none'; script-src 'self'; style-src 'self'; "
             "connect-src 'self' ws: wss:; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'none'");
  wschat_http_add_header(req, "Content-Security-Policy", csp);
  wschat_http_add_header(req, "X-Content-Type-Options", "nosniff");
  wschat_http_add_header(req, "Referrer-Policy", "no-referrer");
  wschat_http_add_header(req, "Cache-Control", "no-cache");
  wschat_http_add_header(req, "ETag", a->etag);
  n = wschat_http_header(req, "If-None-Match", inm, sizeof(inm));
  if (n > 0 && (size_t)n < sizeof(inm) && etag_matches(inm, a->etag))
    wschat_http_respond(req, 304, NULL, NULL, 0);
  else
    wschat_http_respond(req, 200, a->type, a->data, a->len);
}

int web_register(struct wschat_server *srv) {
  for (size_t i = 0; i < web_assets_count; i++) {
    const struct web_asset *a = &web_assets[i];
    int r = wschat_server_route(srv, a->path, serve, (void *)a);
    if (r == 0 && strcmp(a->path, "/index.html") == 0)
      r = wschat_server_route(srv, "/", serve, (void *)a);
    if (r != 0)
      return r;
  }
  return 0;
}
