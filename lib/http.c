/* lib/http.c -- the HTTP/1.1 upgrade handshake, sans I/O. See http.h.
 *
 * How a request is read: http_parser does the tokenizing (request line,
 * header fields, obs-fold, Content-Length syntax). Its data callbacks hand us
 * pieces of the caller's buffer, which is gone after wschat__http_feed()
 * returns, so each piece is appended to h->storage and remembered as an
 * offset (storage moves when it grows). on_headers_complete returns 2, which
 * makes http_parser stop right after the final LF of the header section and
 * report exactly how far it got: that is how bytes that already belong to the
 * WebSocket stream are left to the caller. Only then (finish()) are the rules
 * of RFC 7230 and RFC 6455 section 4.2.1 applied, and offsets turned into the
 * public pointers.
 *
 * Memory bound: feed() never hands the parser more than max_header_bytes in
 * total, and storage only holds a subset of those bytes, so storage never
 * grows past max_header_bytes. The field array is capped at
 * WSCHAT__HTTP_MAX_HEADERS entries.
 */
#include "http.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* One header field while parsing (offsets into storage) and, after finish(),
 * its public view. */
struct wschat__http_field {
  size_t name_off;
  size_t name_len;
  size_t value_off;
  size_t value_len;
  struct wschat__http_header pub;
};

enum { LAST_NONE, LAST_URL, LAST_FIELD, LAST_VALUE, LAST_SKIPPED };

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define STORAGE_MIN 256
#define FIELDS_MIN 16

/* ---- small string helpers -------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

/* Case-insensitive comparison of a counted string with a NUL-terminated one. */
static int ieq(const char *a, size_t alen, const char *b) {
  size_t i;
  for (i = 0; i < alen; i++) {
    if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
  }
  return b[alen] == '\0';
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* 1 if the comma-separated list s[0..len) holds token, case-insensitively. */
static int list_has_token(const char *s, size_t len, const char *token) {
  size_t i = 0;
  while (i < len) {
    size_t start = i, end;
    while (i < len && s[i] != ',')
      i++;
    end = i;
    while (start < end && is_ows(s[start]))
      start++;
    while (end > start && is_ows(s[end - 1]))
      end--;
    if (ieq(s + start, end - start, token))
      return 1;
    i++; /* skip the comma */
  }
  return 0;
}

/* ---- http_parser callbacks: copy pieces into storage ------------------ */

static struct wschat__http *self(http_parser *p) { return (struct wschat__http *)p->data; }

/* Records a failure found inside a callback; the non-zero return makes
 * http_parser stop, and feed() reports this status instead of a generic 400. */
static int raise_failure(struct wschat__http *h, int status, const char *error) {
  h->cb_status = status;
  h->cb_error = error;
  return -1;
}

/* Appends at[0..len) to storage, growing it (never past max_header_bytes). */
static int store(struct wschat__http *h, const char *at, size_t len) {
  if (len > h->storage_cap - h->storage_len) {
    size_t need = h->storage_len + len;
    size_t cap = h->storage_cap ? h->storage_cap : STORAGE_MIN;
    char *grown;
    /* Cannot happen (storage holds a subset of the bytes fed, and feed() caps
     * those), but the bound is this module's promise, so it is checked. */
    if (need > h->max_header_bytes)
      return raise_failure(h, 431, "header section too large");
    while (cap < need)
      cap = cap > h->max_header_bytes / 2 ? h->max_header_bytes : cap * 2;
    if (cap > h->max_header_bytes)
      cap = h->max_header_bytes;
    grown = realloc(h->storage, cap);
    if (grown == NULL)
      return raise_failure(h, 500, "out of memory");
    h->storage = grown;
    h->storage_cap = cap;
  }
  memcpy(h->storage + h->storage_len, at, len);
  h->storage_len += len;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct wschat__http *h = self(p);
  if (h->last_cb != LAST_URL) {
    h->last_cb = LAST_URL;
    h->url_off = h->storage_len;
    h->url_len = 0;
  }
  h->url_len += len;
  return len ? store(h, at, len) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  struct wschat__http *h = self(p);
  struct wschat__http_field *f;
  if (h->last_cb == LAST_SKIPPED)
    return 0; /* fields past the limit are not kept */
  if (h->last_cb != LAST_FIELD) { /* a new field begins */
    if (h->nfields == WSCHAT__HTTP_MAX_HEADERS) {
      /* Past the limit: count it, keep nothing, and answer 431 only when
       * the whole header section has parsed (on_headers_complete). Failing
       * here would depend on where the chunks of input happen to end: fed
       * whole, http_parser reports a field only once its name is complete,
       * so a malformed line after it gives 400 first (found by the fuzzer). */
      h->extra_fields++;
      h->last_cb = LAST_SKIPPED;
      return 0;
    }
    if (h->nfields == h->fields_cap) {
      size_t cap = h->fields_cap ? h->fields_cap * 2 : FIELDS_MIN;
      struct wschat__http_field *grown;
      if (cap > WSCHAT__HTTP_MAX_HEADERS)
        cap = WSCHAT__HTTP_MAX_HEADERS;
      grown = realloc(h->fields, cap * sizeof(*grown));
      if (grown == NULL)
        return raise_failure(h, 500, "out of memory");
      h->fields = grown;
      h->fields_cap = cap;
    }
    f = &h->fields[h->nfields++];
    memset(f, 0, sizeof(*f));
    f->name_off = h->storage_len;
    h->last_cb = LAST_FIELD;
  }
  f = &h->fields[h->nfields - 1];
  f->name_len += len;
  return len ? store(h, at, len) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  struct wschat__http *h = self(p);
  struct wschat__http_field *f;
  if (h->last_cb == LAST_SKIPPED)
    return 0; /* the value of a field past the limit */
  if (h->nfields == 0) /* http_parser always reports a name first */
    return raise_failure(h, 400, "header value without a name");
  f = &h->fields[h->nfields - 1];
  if (h->last_cb != LAST_VALUE) {
    f->value_off = h->storage_len;
    f->value_len = 0;
    h->last_cb = LAST_VALUE;
  }
  /* An obs-fold continuation arrives as another piece starting with the
   * folding whitespace, so appending it replaces the CRLF by that whitespace,
   * as RFC 7230 section 3.2.4 allows. */
  f->value_len += len;
  return len ? store(h, at, len) : 0;
}

static int on_headers_complete(http_parser *p) {
  if (self(p)->extra_fields > 0)
    return raise_failure(self(p), 431, "too many header fields");
  self(p)->headers_complete = 1;
  /* 2 = "no body, and the rest of the stream is not HTTP": http_parser
   * returns from execute just past the final LF. */
  return 2;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

/* ---- the decision ----------------------------------------------------- */

static void fail(struct wschat__http *h, int status, const char *error) {
  h->state = WSCHAT__HTTP_FAILED;
  h->status = status;
  h->error = error;
  h->is_upgrade = 0;
  h->is_head = 0;
  h->path = NULL;
  h->path_len = 0;
  h->query = NULL;
  h->query_len = 0;
  h->key = NULL;
  h->key_len = 0;
}

/* Lookup that works during finish(), before the state is DONE. */
static const struct wschat__http_header *find_header(const struct wschat__http *h,
                                                     const char *name,
                                                     const struct wschat__http_header *prev) {
  size_t i = 0;
  if (prev != NULL) {
    /* prev is the pub member of one of our fields; find which one. */
    while (i < h->nfields && &h->fields[i].pub != prev)
      i++;
    i++;
  }
  for (; i < h->nfields; i++) {
    const struct wschat__http_header *hd = &h->fields[i].pub;
    if (ieq(hd->name, hd->name_len, name))
      return hd;
  }
  return NULL;
}

static int has_token(const struct wschat__http *h, const char *name, const char *token) {
  const struct wschat__http_header *hd = NULL;
  while ((hd = find_header(h, name, hd)) != NULL) {
    if (list_has_token(hd->value, hd->value_len, token))
      return 1;
  }
  return 0;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* 1 if s is canonical base64 of exactly 16 bytes: 22 alphabet characters, the
 * last carrying 2 data bits (its 4 low bits zero), then "==". */
static int valid_ws_key(const char *s, size_t len) {
  size_t i;
  if (len != 24 || s[22] != '=' || s[23] != '=')
    return 0;
  for (i = 0; i < 22; i++) {
    if (b64_value(s[i]) < 0)
      return 0;
  }
  return (b64_value(s[21]) & 0x0f) == 0;
}

/* Turns offsets into public pointers and applies the request rules. */
static void finish(struct wschat__http *h) {
  const http_parser *p = &h->parser;
  const struct wschat__http_header *host, *upgrade, *version, *key;
  struct http_parser_url u;
  const char *url;
  size_t i;
  int bad_name = 0;

  for (i = 0; i < h->nfields; i++) {
    struct wschat__http_field *f = &h->fields[i];
    const char *v = h->storage + f->value_off;
    size_t vlen = f->value_len;
    while (vlen > 0 && is_ows(v[0])) {
      v++;
      vlen--;
    }
    while (vlen > 0 && is_ows(v[vlen - 1]))
      vlen--;
    f->pub.name = h->storage + f->name_off;
    f->pub.name_len = f->name_len;
    f->pub.value = v;
    f->pub.value_len = vlen;
    /* http_parser lets "Host : x" (and a leading-whitespace first line)
     * through as a name containing whitespace; RFC 7230 3.2.4 says 400. */
    if (memchr(f->pub.name, ' ', f->name_len) || memchr(f->pub.name, '\t', f->name_len))
      bad_name = 1;
  }
  if (bad_name) {
    fail(h, 400, "whitespace in a header field name");
    return;
  }

  if (p->http_major == 0 && p->http_minor == 9) {
    /* "GET /" with no version: not an HTTP/1.x request line at all. */
    fail(h, 400, "missing HTTP version in the request line");
    return;
  }
  if (p->http_major != 1 || p->http_minor != 1) {
    fail(h, 505, "unsupported HTTP version (only HTTP/1.1)");
    return;
  }
  if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
    fail(h, 405, "method not allowed (use GET)");
    return;
  }
  if (((p->flags & F_CONTENTLENGTH) && p->content_length > 0) ||
      find_header(h, "Transfer-Encoding", NULL) != NULL) {
    fail(h, 400, "request has a body");
    return;
  }

  /* Request-target: origin-form ("/path?q") or absolute-form
   * ("http://host/path?q", RFC 7230 section 5.3.2); nothing else for GET. */
  http_parser_url_init(&u);
  if (h->url_len == 0) {
    fail(h, 400, "bad request-target");
    return;
  }
  url = h->storage + h->url_off;
  if (http_parser_parse_url(url, h->url_len, 0, &u) != 0) {
    fail(h, 400, "bad request-target");
    return;
  }
  if (u.field_set & (1u << UF_PATH)) {
    h->path = url + u.field_data[UF_PATH].off;
    h->path_len = u.field_data[UF_PATH].len;
    if (h->path_len == 0 || h->path[0] != '/') {
      fail(h, 400, "bad request-target");
      return;
    }
  } else if (u.field_set & (1u << UF_HOST)) {
    h->path = "/";
    h->path_len = 1;
  } else {
    fail(h, 400, "bad request-target");
    return;
  }
  if (u.field_set & (1u << UF_QUERY)) {
    h->query = url + u.field_data[UF_QUERY].off;
    h->query_len = u.field_data[UF_QUERY].len;
  }

  host = find_header(h, "Host", NULL);
  if (host == NULL) {
    fail(h, 400, "missing Host");
    return;
  }
  if (find_header(h, "Host", host) != NULL) {
    fail(h, 400, "more than one Host");
    return;
  }

  upgrade = find_header(h, "Upgrade", NULL);
  if (upgrade == NULL) { /* a plain GET or HEAD: the server decides */
    h->is_head = p->method == HTTP_HEAD;
    h->state = WSCHAT__HTTP_DONE;
    return;
  }
  if (!has_token(h, "Upgrade", "websocket")) {
    fail(h, 400, "unsupported Upgrade (only websocket)");
    return;
  }
  if (p->method != HTTP_GET) {
    fail(h, 405, "a WebSocket upgrade must use GET");
    return;
  }
  if (!has_token(h, "Connection", "upgrade")) {
    fail(h, 400, "Upgrade: websocket without Connection: Upgrade");
    return;
  }
  version = find_header(h, "Sec-WebSocket-Version", NULL);
  if (version == NULL || find_header(h, "Sec-WebSocket-Version", version) != NULL ||
      version->value_len != 2 || memcmp(version->value, "13", 2) != 0) {
    fail(h, 426, "unsupported Sec-WebSocket-Version (only 13)");
    return;
  }
  key = find_header(h, "Sec-WebSocket-Key", NULL);
  if (key == NULL) {
    fail(h, 400, "missing Sec-WebSocket-Key");
    return;
  }
  if (find_header(h, "Sec-WebSocket-Key", key) != NULL) {
    fail(h, 400, "more than one Sec-WebSocket-Key");
    return;
  }
  if (!valid_ws_key(key->value, key->value_len)) {
    fail(h, 400, "invalid Sec-WebSocket-Key (must be base64 of 16 bytes)");
    return;
  }
  h->key = key->value;
  h->key_len = key->value_len;
  h->is_upgrade = 1;
  h->state = WSCHAT__HTTP_DONE;
}

/* ---- public entry points --------------------------------------------- */

void wschat__http_init(struct wschat__http *h, size_t max_header_bytes) {
  memset(h, 0, sizeof(*h));
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  h->max_header_bytes = max_header_bytes;
  h->state = WSCHAT__HTTP_INCOMPLETE;
}

size_t wschat__http_feed(struct wschat__http *h, const char *data, size_t len) {
  size_t room, n, used = 0;
  enum http_errno err;

  if (h->state != WSCHAT__HTTP_INCOMPLETE || len == 0)
    return 0;
  h->parser.data = h; /* in case the struct was moved since init */

  /* Never let the header section grow past the limit: hand the parser at
   * most what is left of it. If that was not enough to finish, and more bytes
   * are waiting, the section is too large. */
  room = h->max_header_bytes - h->fed;
  n = len < room ? len : room;
  if (n > 0)
    used = http_parser_execute(&h->parser, &parser_settings, data, n);
  h->fed += used;

  if (h->headers_complete) {
    /* Built without HTTP_PARSER_STRICT (as distributions ship it),
     * http_parser takes any byte after the final CR as the LF. That byte
     * might be the first of a WebSocket frame, so insist on a real LF. */
    if (used == 0 || data[used - 1] != '\n')
      fail(h, 400, "header section does not end with CRLF CRLF");
    else
      finish(h);
    return used;
  }
  err = HTTP_PARSER_ERRNO(&h->parser);
  if (err != HPE_OK) {
    if (h->cb_status != 0)
      fail(h, h->cb_status, h->cb_error);
    else if (err == HPE_HEADER_OVERFLOW) /* http_parser's own 80 KiB limit */
      fail(h, 431, "header section too large");
    else
      fail(h, 400, http_errno_description(err));
    return used;
  }
  if (used != n) { /* not expected from http_parser without an error */
    fail(h, 400, "malformed request");
    return used;
  }
  if (len > n)
    fail(h, 431, "header section too large");
  return used;
}

enum wschat__http_state wschat__http_state(const struct wschat__http *h) { return h->state; }

const struct wschat__http_header *wschat__http_header(const struct wschat__http *h,
                                                      const char *name) {
  return wschat__http_header_next(h, name, NULL);
}

const struct wschat__http_header *wschat__http_header_next(
    const struct wschat__http *h, const char *name, const struct wschat__http_header *prev) {
  if (h->state != WSCHAT__HTTP_DONE)
    return NULL;
  return find_header(h, name, prev);
}

int wschat__http_header_has_token(const struct wschat__http *h, const char *name,
                                  const char *token) {
  if (h->state != WSCHAT__HTTP_DONE)
    return 0;
  return has_token(h, name, token);
}

int wschat__http_copy_header(const struct wschat__http *h, const char *name,
                             char *buf, size_t cap) {
  const struct wschat__http_header *f = wschat__http_header(h, name);
  if (f == NULL)
    return -1;
  if (f->value_len < cap) {
    memcpy(buf, f->value, f->value_len);
    buf[f->value_len] = '\0';
  } else if (cap > 0) {
    buf[0] = '\0';
  }
  return (int)f->value_len;
}

void wschat__http_free(struct wschat__http *h) {
  free(h->storage);
  free(h->fields);
  memset(h, 0, sizeof(*h));
}

void wschat__ws_accept(const char *key, size_t key_len, char out[29]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  int ok;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new(); /* freed below */

  out[0] = '\0';
  if (ctx == NULL)
    return;
  ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, key, key_len) &&
       EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) &&
       EVP_DigestFinal_ex(ctx, md, &md_len);
  EVP_MD_CTX_free(ctx);
  if (!ok || md_len != 20)
    return;
  /* 20 bytes -> 28 characters plus the NUL EVP_EncodeBlock writes. */
  EVP_EncodeBlock((unsigned char *)out, md, 20);
}

/* ---- query strings ---------------------------------------------------- */

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)lower((unsigned char)c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes s[0..len) into out (cap bytes, NUL included). */
static int query_decode(const char *s, size_t len, char *out, size_t cap) {
  size_t i, o = 0;
  for (i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      int hi, lo;
      if (len - i < 3)
        return -2;
      hi = hex_value(s[i + 1]);
      lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return -2;
      c = hi * 16 + lo;
      i += 2;
    }
    if (cap < 2 || o > cap - 2) /* room for this byte and the NUL */
      return -2;
    out[o++] = (char)c;
  }
  if (cap == 0 || o > INT_MAX)
    return -2;
  out[o] = '\0';
  return (int)o;
}

int wschat__http_query_param(const char *query, size_t query_len, const char *name, char *out,
                             size_t cap) {
  size_t i = 0, name_len;
  if (query == NULL || name == NULL)
    return -1;
  name_len = strlen(name);
  while (i < query_len) {
    size_t end = i, eq;
    while (end < query_len && query[end] != '&')
      end++;
    eq = i;
    while (eq < end && query[eq] != '=')
      eq++;
    if (eq - i == name_len && memcmp(query + i, name, name_len) == 0)
      return eq < end ? query_decode(query + eq + 1, end - eq - 1, out, cap)
                      : query_decode("", 0, out, cap);
    i = end + 1;
  }
  return -1;
}
