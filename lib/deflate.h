/*
 * deflate: permessage-deflate (RFC 7692): the negotiation of an offer, the
 * server's shared compressors and its shared inflater.
 *
 * Shared, not per connection: we always answer server_no_context_takeover
 * (each message we send is compressed on its own, so one compressed frame
 * serves every client that agreed the same parameters: the frame cache
 * keys on them, see event.h) and client_no_context_takeover (RFC 7692
 * 7.1.1.1 lets a server ask it even when not offered: each message a
 * client sends is inflated on its own, so no connection keeps a zlib
 * context or a window between messages). A connection with deflate
 * negotiated holds one byte (its key) and a pointer: an idle one costs no
 * zlib memory at all.
 *
 * Owns (struct wschat__deflate, one per server): one raw deflate stream per
 * window size asked for (created at first use, kept), one raw inflate
 * stream, and two scratch buffers: the compressed output of a frame being
 * built, and the last inflated message (at most max_message + 1 bytes);
 * either is shrunk back under 64 KiB before the next message after a large
 * one.
 * Must never: do I/O, keep a pointer to a caller's bytes past a call, or
 * grow an inflated message past the limit it is given. Loop thread only
 * (not thread-safe: one per server).
 */
#ifndef WSCHAT_DEFLATE_H
#define WSCHAT_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

struct wschat__frame;

/* The frame cache's compression keys: 0 no compression; 1-8 deflate with a
 * window of (key + 7) bits (8-15): the server_max_window_bits the client
 * asked for, 15 if none. Every other parameter is the same for everyone. */
#define WSCHAT__ZKEYS 9
#define WSCHAT__ZKEY_DEFAULT 8

/* Messages shorter than this are sent uncompressed by default: a chat line
 * of a few dozen bytes, compressed on its own (no context takeover), saves
 * a handful of bytes at best and costs a deflate call per message. */
#define WSCHAT__DEFLATE_THRESHOLD 128

/* The ratio bound: a message that inflates past WSCHAT__INFLATE_RATIO_FLOOR
 * bytes (1 MiB, the default max_message: it matters on a server that
 * allows more) must do so at most WSCHAT__INFLATE_RATIO times its
 * compressed size, else it fails with 1009. Deflate's ceiling is about
 * 1032:1, reached by a run of one byte: the classic bomb (a megabyte of
 * zeros in a kilobyte). Real data stays far below (text 3-10:1, JSON
 * 10-50:1, even 16 MiB of four characters repeated is 515:1), so the bound
 * refuses bombs, not content. Within the floor, max_message bounds the
 * memory whatever the ratio (a message of 1 MiB of one character is still
 * read and answered as the protocol says). */
#define WSCHAT__INFLATE_RATIO 1000
#define WSCHAT__INFLATE_RATIO_FLOOR ((size_t)1 << 20)

/* An accepted offer. */
struct wschat__pmd {
  uint8_t server_bits;       /* 8-15: our window (server_max_window_bits) */
  uint8_t server_bits_asked; /* the offer had server_max_window_bits */
  uint8_t client_bits;       /* 0: client_max_window_bits not offered;
                                1: offered without a value; 8-15 */
  uint8_t client_nct;        /* client_no_context_takeover was offered */
  uint8_t server_nct;        /* server_no_context_takeover was offered */
};

/*
 * Reads a Sec-WebSocket-Extensions value (several headers joined with
 * ", "), s[0..len), and picks the first acceptable permessage-deflate offer
 * (RFC 7692 5-7): an offer with an unknown or repeated parameter or an
 * invalid value is not acceptable (the next one is tried); other
 * extensions are skipped; a syntax error ends the offer it is in. Returns
 * 1 with *out set, or 0 (nothing acceptable: no extension is answered).
 * Does not keep s.
 */
int wschat__pmd_negotiate(const char *s, size_t len, struct wschat__pmd *out);

/* Writes the response's extension value for p ("permessage-deflate;
 * server_no_context_takeover; client_no_context_takeover..."), NUL-ended,
 * into out (cap >= 128). Returns its length. */
size_t wschat__pmd_response(const struct wschat__pmd *p, char *out, size_t cap);

/* The key of the frame cache for p (1-8). */
static inline unsigned wschat__pmd_key(const struct wschat__pmd *p) {
  return (unsigned)p->server_bits - 7u;
}

struct wschat__deflate; /* deflate.c */

/* Makes a server's shared state (no zlib memory yet). threshold: see
 * WSCHAT__DEFLATE_THRESHOLD. Returns NULL when out of memory. */
struct wschat__deflate *wschat__deflate_new(size_t threshold);
/* Frees it all (NULL: nothing). */
void wschat__deflate_free(struct wschat__deflate *z);
void wschat__deflate_set_threshold(struct wschat__deflate *z, size_t t);

/*
 * The frame to send for plain (an unmasked, final, uncompressed text or
 * binary frame) to clients of compression key (1-8): a new frame with RSV1
 * set and the payload compressed on its own, or, when the payload is
 * shorter than the threshold, compression does not make it smaller, or
 * memory runs out, plain itself. Either way the caller gets one new
 * reference (plain's own reference stays the caller's).
 */
struct wschat__frame *wschat__deflate_frame(struct wschat__deflate *z,
                                            unsigned key,
                                            struct wschat__frame *plain);

/*
 * For a frame built for one client (a reply, an echo): takes the caller's
 * reference to f and returns a reference to what to send instead (f for a
 * client without deflate, key 0).
 */
struct wschat__frame *wschat__deflate_own(struct wschat__deflate *z,
                                          unsigned key,
                                          struct wschat__frame *f);

/* What the streams did since the server started (for /metrics). */
struct wschat__deflate_stats {
  uint64_t compressed;   /* frames built compressed */
  uint64_t plain_bytes;  /* their payloads before */
  uint64_t zbytes;       /* and after compression */
  uint64_t inflated;     /* messages inflated */
  uint64_t refused;      /* messages refused (1007, 1009) */
};
const struct wschat__deflate_stats *
wschat__deflate_stats(const struct wschat__deflate *z);

/*
 * Inflates one message's compressed payload in[0..len) (the 4-byte tail
 * of RFC 7692 7.2.2 is added here) into the shared buffer, never holding
 * more than max + 1 bytes. Returns 0 with *out, *out_len set (valid until
 * the next call on z); or a close code with *why (a static string): 1009
 * "message too big" (past max after inflation) or "compression ratio too
 * high" (see WSCHAT__INFLATE_RATIO), 1007 "invalid compressed data", 1011
 * "out of memory".
 */
int wschat__deflate_inflate(struct wschat__deflate *z, const uint8_t *in,
                            size_t len, size_t max, const uint8_t **out,
                            size_t *out_len, const char **why);

#endif
