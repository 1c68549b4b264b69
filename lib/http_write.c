/*
 * http_write: the HTTP responses the server sends (101, status answers
 * with a body, the head of an application's answer), written into caller
 * buffers, sans I/O. Declared in http.h. Owns nothing.
 */
#include <string.h>

#include "http.h"

/* ---- response writers ------------------------------------------------- */

/* A bounded appender: once something does not fit, everything after is
 * dropped and ok stays 0. */
struct out {
  char *buf;
  size_t cap;
  size_t len;
  int ok;
};

static void put_n(struct out *o, const char *s, size_t n) {
  if (!o->ok || n > o->cap - o->len) {
    o->ok = 0;
    return;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static void put(struct out *o, const char *s) { put_n(o, s, strlen(s)); }

static void put_uint(struct out *o, size_t v) {
  char digits[24];
  size_t i = sizeof(digits);
  do {
    digits[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  put_n(o, digits + i, sizeof(digits) - i);
}

static int has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

size_t wschat__http_write_101(char *buf, size_t cap, const char *accept, const char *proto) {
  return wschat__http_write_upgrade(buf, cap, accept, proto, NULL);
}

size_t wschat__http_write_upgrade(char *buf, size_t cap, const char *accept, const char *proto,
                                  const char *extra) {
  struct out o = {buf, cap, 0, 1};
  if (accept == NULL || has_crlf(accept) || (proto != NULL && has_crlf(proto)))
    return 0;
  put(&o, "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Accept: ");
  put(&o, accept);
  put(&o, "\r\n");
  if (proto != NULL) {
    put(&o, "Sec-WebSocket-Protocol: ");
    put(&o, proto);
    put(&o, "\r\n");
  }
  if (extra != NULL)
    put(&o, extra);
  put(&o, "\r\n");
  return o.ok ? o.len : 0;
}

size_t wschat__http_write_response(char *buf, size_t cap, int status, const char *body,
                                   int head_only) {
  struct out o = {buf, cap, 0, 1};
  const char *reason;
  if (status < 100 || status > 599)
    return 0;
  reason = http_status_str((enum http_status)status);
  if (body == NULL)
    body = reason;
  put(&o, "HTTP/1.1 ");
  put_uint(&o, (size_t)status);
  put(&o, " ");
  put(&o, reason);
  put(&o, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  put_uint(&o, strlen(body) + 1);
  put(&o, "\r\nConnection: close\r\n");
  if (status == 405)
    put(&o, "Allow: GET\r\n");
  if (status == 426)
    put(&o, "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n");
  put(&o, "\r\n");
  if (!head_only) {
    put(&o, body);
    put(&o, "\n");
  }
  return o.ok ? o.len : 0;
}

size_t wschat__http_write_head(char *buf, size_t cap, int status, const char *type,
                               size_t body_len, const char *extra) {
  struct out o = {buf, cap, 0, 1};
  if (status < 100 || status > 599)
    return 0;
  put(&o, "HTTP/1.1 ");
  put_uint(&o, (size_t)status);
  put(&o, " ");
  put(&o, http_status_str((enum http_status)status));
  put(&o, "\r\n");
  /* 204 and 304 have no body (RFC 9110 15.3.5, 15.4.5): no Content-Length
   * (a 304's would have to be the full representation's), and no type
   * unless the caller gives one. */
  if (status != 204 && status != 304) {
    put(&o, "Content-Type: ");
    put(&o, type ? type : "text/plain; charset=utf-8");
    put(&o, "\r\nContent-Length: ");
    put_uint(&o, body_len);
    put(&o, "\r\n");
  } else if (type != NULL) {
    put(&o, "Content-Type: ");
    put(&o, type);
    put(&o, "\r\n");
  }
  put(&o, "Connection: close\r\n");
  if (status == 405)
    put(&o, "Allow: GET\r\n");
  if (status == 426)
    put(&o, "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n");
  if (extra != NULL)
    put(&o, extra);
  put(&o, "\r\n");
  return o.ok ? o.len : 0;
}
