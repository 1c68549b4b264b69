/* lib/http.h -- the HTTP/1.1 side of the WebSocket opening handshake, sans I/O.
 *
 * What this module owns: one request's header section while it is being read
 * (a copy of the request-target, header names and header values, in a buffer it
 * allocates and frees), and the decision about that request: a valid WebSocket
 * upgrade (RFC 6455 section 4.2.1), a plain GET/HEAD, or a failure with the
 * HTTP status to answer with. It also formats the responses the server sends
 * back (101, and plain-text error/status responses) into caller buffers.
 *
 * What it must never do: touch sockets, libuv or any other I/O; keep a pointer
 * into a buffer passed to wschat__http_feed() after the call returns; buffer
 * more than max_header_bytes of one request; consume a byte past the header
 * section (those bytes are WebSocket frames and belong to the caller).
 *
 * Threading: no global state; a struct wschat__http may be used by one thread
 * at a time. All functions here are internal to libwschat.
 */
#ifndef WSCHAT_LIB_HTTP_H
#define WSCHAT_LIB_HTTP_H

#include <stddef.h>

#include <http_parser.h>

/* Defaults the server may use for wschat__http_init(). */
#define WSCHAT__HTTP_DEFAULT_MAX_HEADER_BYTES 8192
/* Most header fields one request may carry; one more fails with 431. */
#define WSCHAT__HTTP_MAX_HEADERS 100

enum wschat__http_state {
  WSCHAT__HTTP_INCOMPLETE = 0,
  WSCHAT__HTTP_DONE = 1,
  WSCHAT__HTTP_FAILED = -1
};

/* One header field as received. name/value are NOT NUL-terminated; value has
 * leading and trailing whitespace removed. Both point into the storage of the
 * struct wschat__http they came from. */
struct wschat__http_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

struct wschat__http_field; /* private, defined in http.c */

struct wschat__http {
  /* Public, meaningful once the state is DONE (status/error: once FAILED).
   * Pointers point into storage owned by this struct and stay valid until
   * wschat__http_free(); none of them is NUL-terminated. */
  int status;        /* FAILED: the status to answer with (400, 405, 426, 431,
                        505; 500 if memory ran out); 0 otherwise */
  const char *error; /* FAILED: short static reason, e.g. "missing Host" */
  int is_upgrade;    /* 1: valid WebSocket upgrade; 0: plain GET/HEAD */
  int is_head;       /* method was HEAD (plain requests only) */
  const char *path;  /* request-target path without query/fragment; for an */
  size_t path_len;   /* absolute-form target with no path: the static "/" */
  const char *query; /* after '?', without '#...'; NULL/0 if there is none */
  size_t query_len;
  const char *key; /* Sec-WebSocket-Key, validated (base64 of 16 bytes) */
  size_t key_len;  /* 24 when is_upgrade, 0 otherwise */

  /* Private. */
  http_parser parser;
  enum wschat__http_state state;
  size_t max_header_bytes;
  size_t fed;           /* header-section bytes handed to the parser so far */
  char *storage;        /* owned: malloc'd, grows, never above max_header_bytes */
  size_t storage_len;
  size_t storage_cap;
  struct wschat__http_field *fields; /* owned: malloc'd, at most MAX_HEADERS */
  size_t nfields;
  size_t fields_cap;
  size_t url_off; /* request-target as an offset/length into storage */
  size_t url_len;
  int last_cb;          /* which data callback ran last (field/value/url) */
  size_t extra_fields;  /* fields past WSCHAT__HTTP_MAX_HEADERS: counted, not kept */
  int headers_complete; /* the parser reached the end of the header section */
  int cb_status;        /* failure raised inside a callback (431/500) */
  const char *cb_error;
};

/* Prepares h to read one request. Allocates nothing; call wschat__http_free()
 * once bytes have been fed (calling it anyway is always safe).
 * max_header_bytes bounds the whole header section, request line and final
 * empty line included; a longer one fails with 431. */
void wschat__http_init(struct wschat__http *h, size_t max_header_bytes);

/* Feeds bytes as they arrive, in any chunking (one byte at a time works).
 * Does not take ownership of data and keeps no pointer into it (what it needs
 * is copied into h's storage).
 * Returns how many bytes of data were consumed. When the state becomes DONE
 * the return value is the offset just past the header section's final empty
 * line: data[ret..len) belongs to the WebSocket stream and is left to the
 * caller. In states DONE and FAILED it consumes nothing and returns 0.
 * Check wschat__http_state() after every call. */
size_t wschat__http_feed(struct wschat__http *h, const char *data, size_t len);

enum wschat__http_state wschat__http_state(const struct wschat__http *h);

/* Case-insensitive lookup of a header (name is NUL-terminated) once DONE.
 * Returns the first field with that name, or NULL if absent or not DONE.
 * The result is owned by h and valid until wschat__http_free(). */
const struct wschat__http_header *wschat__http_header(const struct wschat__http *h,
                                                      const char *name);

/* Like wschat__http_header(), but returns the next field with that name after
 * prev (prev NULL: the first). Iterates repeated headers. */
const struct wschat__http_header *wschat__http_header_next(
    const struct wschat__http *h, const char *name,
    const struct wschat__http_header *prev);

/* 1 if any field called name holds token (case-insensitive) in its
 * comma-separated list, e.g. ("Connection", "upgrade") for
 * "Connection: keep-alive, Upgrade"; 0 otherwise. For the server's
 * Sec-WebSocket-Protocol negotiation, too. */
int wschat__http_header_has_token(const struct wschat__http *h, const char *name,
                                  const char *token);

/* Copies header name's first value (case-insensitive) into buf as a
 * NUL-terminated string, snprintf-like: returns the value's length; if it
 * is >= cap nothing was copied (buf holds "" when cap > 0). Returns -1 if
 * the header is absent. */
int wschat__http_copy_header(const struct wschat__http *h, const char *name,
                             char *buf, size_t cap);

/* Frees what h owns; every pointer obtained from h becomes invalid. h may then
 * be re-inited with wschat__http_init(). */
void wschat__http_free(struct wschat__http *h);

/* Computes Sec-WebSocket-Accept for a key:
 * base64(SHA1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters,
 * NUL-terminated, into out. Does not keep key. If libcrypto fails (out of
 * memory), out is the empty string. */
void wschat__ws_accept(const char *key, size_t key_len, char out[29]);

/* Writes a complete "HTTP/1.1 101 Switching Protocols" response (Upgrade,
 * Connection, Sec-WebSocket-Accept, and Sec-WebSocket-Protocol: proto when
 * proto != NULL) into buf, not NUL-terminated. accept and proto are copied.
 * Returns the bytes written, or 0 if cap is too small or accept/proto contain
 * CR or LF. */
size_t wschat__http_write_101(char *buf, size_t cap, const char *accept, const char *proto);

/* Like wschat__http_write_101(), with extra header lines (each
 * "Name: value\r\n", already checked; NULL for none) before the end. */
size_t wschat__http_write_upgrade(char *buf, size_t cap, const char *accept, const char *proto,
                                  const char *extra);

/* Writes the status line and headers of a response whose body (body_len
 * bytes, sent by the caller after them) is of Content-Type type (NULL:
 * text/plain; charset=utf-8), with Connection: close, the headers the
 * RFCs ask for (as wschat__http_write_response()) and extra header lines
 * (or NULL), through the empty line. Returns the bytes written, or 0 if
 * cap is too small or status is not in 100..599. */
size_t wschat__http_write_head(char *buf, size_t cap, int status, const char *type,
                               size_t body_len, const char *extra);

/* Writes a complete response: status line with the standard reason phrase,
 * Content-Type: text/plain; charset=utf-8, Content-Length, Connection: close,
 * the headers the RFCs ask for (405: Allow: GET; 426: Sec-WebSocket-Version: 13
 * and Upgrade: websocket), and the body: body + "\n" (body NULL: the reason
 * phrase). head_only omits the body but keeps its Content-Length.
 * body is copied and may hold any text. Returns the bytes written (not
 * NUL-terminated), or 0 if cap is too small or status is not in 100..599. */
size_t wschat__http_write_response(char *buf, size_t cap, int status, const char *body,
                                   int head_only);

/* Finds parameter name in a query string ("name=al%69ce&room=x"), decodes
 * %XX and '+' into out and NUL-terminates it. A parameter without '=' has the
 * empty value. Names are compared byte for byte, undecoded.
 * Returns the decoded length; -1 if absent (or query is NULL); -2 if the value
 * plus its NUL does not fit in cap, has a bad %-escape, or decodes to a NUL
 * byte. */
int wschat__http_query_param(const char *query, size_t query_len, const char *name, char *out,
                             size_t cap);

#endif /* WSCHAT_LIB_HTTP_H */
