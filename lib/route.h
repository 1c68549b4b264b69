/*
 * route: plain HTTP on the WebSocket port. The application registers
 * paths (exact, or prefixes ending in '/'); a plain GET or HEAD is
 * answered by its route, or by the built-in answers (/healthz 200, /
 * 426, anything else 404). Also the checked list of extra response
 * headers shared with the upgrade answer.
 *
 * Owns: the route table (copies of the paths), and while a request is
 * answered, its copies and its answer. Never touches sockets: the answer
 * is bytes for the caller to send.
 */
#ifndef WSCHAT_ROUTE_H
#define WSCHAT_ROUTE_H

#include <stddef.h>

#include "wschat.h"

struct wschat__http;

struct wschat__route {
  char *path; /* owned */
  size_t len;
  wschat_http_cb cb;
  void *user;
};

struct wschat__routes {
  struct wschat__route *v; /* owned array */
  size_t n, cap;
};

/* Extra response headers: "Name: value\r\n" lines, checked. */
struct wschat__headers {
  char *buf; /* owned */
  size_t len;
  int n;
};

/* Adds a header (see wschat_client_add_header()). Returns 0,
 * WSCHAT_EINVAL, WSCHAT_ETOOMANY or WSCHAT_ENOMEM. */
int wschat__headers_add(struct wschat__headers *hs, const char *name,
                        const char *value);
void wschat__headers_free(struct wschat__headers *hs);

int wschat__routes_add(struct wschat__routes *rs, const char *path,
                       wschat_http_cb cb, void *user);
void wschat__routes_free(struct wschat__routes *rs);

/*
 * Answers the plain request h (DONE, not an upgrade): a route's answer or
 * the built-in one. Stores a malloc'd response (head and body) in *out
 * (the caller frees it) and its length in *len; returns the status, or 0
 * when out of memory (*out NULL).
 */
int wschat__routes_serve(const struct wschat__routes *rs,
                         const struct wschat__http *h, char **out,
                         size_t *len);

#endif
