/*
 * cluster_codec: what cluster nodes say to each other through Redis, as
 * bytes: the --redis URL, and a chat event in a compact binary form (not a
 * WebSocket frame: each node frames it once per view, as for its own
 * events). Pure functions, no Redis, no libuv: unit-tested alone
 * (tests/test_cluster_codec.c).
 *
 * The wire form of an event (little-endian):
 *   u8 version (1), u8 kind, u8 variant, u8 flags,
 *   i64 ts, u64 client, u64 skip, u64 group,
 *   five strings (origin node, room, from, to, reason), each a u16 length
 *   and its bytes (0xffff: NULL),
 *   u32 text length and the text.
 * Published messages put "ID:SEQ:" (decimal) before it: Redis assigns both
 * inside the publishing script, so they cannot be in the bytes the node
 * sent.
 *
 * A typing notice (JSON `typing`, ephemeral: no id, no seq, never stored)
 * goes on the room's channel as its own compact form, told apart from an
 * event by its first byte (an event's prefix starts with a digit):
 *   'T', u8 version (1), then three strings (origin node, room, from),
 *   each a u8 length (1..255) and its bytes, and nothing after them.
 *
 * Owns: nothing (the caller's buffers; decode returns a new event the
 * caller owns). Never touches a socket.
 */
#ifndef WSCHAT_CLUSTER_CODEC_H
#define WSCHAT_CLUSTER_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct wschat_event;

/* A parsed redis://HOST[:PORT][/DB] (port 6379 and db 0 when absent). */
struct wschat__redis_url {
  char host[256];
  int port;
  int db;
};

/* Returns 0, or -1 for anything else (no scheme, empty host, a port out of
 * 1..65535, a db out of 0..65535, junk after them). */
int wschat__redis_url_parse(const char *url, struct wschat__redis_url *out);

enum {
  WSCHAT__WIRE_VERSION = 1,
  WSCHAT__WIRE_FIXED = 36,
  WSCHAT__WIRE_TYPING = 'T', /* a typing notice's first byte */
};

/* The encoded size of ev with origin as its node (origin at most 255). */
size_t wschat__wire_size(const struct wschat_event *ev, const char *origin);

/* Writes ev into out (wschat__wire_size bytes) with variant and flags.
 * Returns the bytes written, or 0 if a string is longer than a u16. */
size_t wschat__wire_encode(const struct wschat_event *ev, const char *origin,
                           int variant, int flags, char *out, size_t cap);

/* What a decode tells besides the event. */
struct wschat__wire_meta {
  uint64_t id, seq; /* from the "ID:SEQ:" prefix (decode_msg), else 0 */
  int variant, flags;
  char origin[256];
};

/* Makes a new event (one reference, the caller's) from len bytes of the
 * wire form; NULL if they are malformed or memory is short. */
struct wschat_event *wschat__wire_decode(const char *p, size_t len,
                                         struct wschat__wire_meta *meta);

/* The same for a published message: "ID:SEQ:" then the wire form. */
struct wschat_event *wschat__wire_decode_msg(const char *p, size_t len,
                                             struct wschat__wire_meta *meta);

/* A typing notice as decoded (every string NUL-terminated, non-empty). */
struct wschat__wire_typing {
  char origin[256];
  char room[256];
  char from[256];
};

/* Writes the typing notice of from in room, by origin, into out (cap
 * bytes). Returns the bytes written, or 0 if a string is empty, longer
 * than 255 bytes, or out is too small. */
size_t wschat__wire_typing_encode(const char *origin, const char *room,
                                  const char *from, char *out, size_t cap);

/* Reads a typing notice from len bytes into out. Returns 0, or -1 if the
 * bytes are not exactly one well-formed notice (a string empty, holding a
 * NUL, cut short, or bytes left after the last). */
int wschat__wire_typing_decode(const char *p, size_t len,
                               struct wschat__wire_typing *out);

#endif
