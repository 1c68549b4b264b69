/*
 * session_deflate: permessage-deflate at the upgrade (RFC 7692): whether a
 * client's request gets it, the answer in the 101, and what it changes in
 * the client (its compression key for the frame cache, its inflater). See
 * session.h; the extension itself is deflate.c.
 *
 * Owns nothing: the headers string it makes is the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "http.h"
#include "session.h"

int wschat__session_deflate_agree(const struct wschat_client *c,
                                  struct wschat__pmd *p) {
  const struct wschat__conn_env *env = c->conn.env;
  if (!env->deflate_on || env->deflate == NULL)
    return 0;
  const struct wschat__http_header *x = NULL;
  while ((x = wschat__http_header_next(c->conn.http, "Sec-WebSocket-Extensions",
                                       x)))
    if (wschat__pmd_negotiate(x->value, x->value_len, p))
      return 1;
  return 0;
}

char *wschat__session_deflate_headers(const struct wschat_client *c,
                                      const struct wschat__pmd *p) {
  if (p == NULL)
    return NULL;
  char ext[160];
  size_t el = wschat__pmd_response(p, ext, sizeof(ext));
  const char *app = c->hs && c->hs->headers ? c->hs->headers : "";
  size_t n = sizeof("Sec-WebSocket-Extensions: \r\n") + el + strlen(app);
  char *out = el ? malloc(n) : NULL;
  if (out != NULL)
    snprintf(out, n, "Sec-WebSocket-Extensions: %s\r\n%s", ext, app);
  return out;
}

void wschat__session_deflate_apply(struct wschat_client *c,
                                   const struct wschat__pmd *p) {
  c->member.zkey = (uint8_t)wschat__pmd_key(p);
  c->conn.ws.z = c->conn.env->deflate;
  c->conn.ws.scan.deflate = 1;
}
