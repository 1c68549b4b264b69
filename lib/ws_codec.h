/*
 * ws_codec: the pure part of reading RFC 6455 frames from a client, in
 * front of wslay: an incremental frame-header scanner, unmasking, and the
 * fast path's recognition of one whole text or binary frame.
 *
 * Owns: nothing but the scanner state the caller embeds (struct
 * wschat__ws_scan, no pointers in it). Must never: allocate, do I/O, call
 * back, know about libuv, wslay, a client or a server, or keep a pointer to
 * the bytes it is given. Every function works on the caller's buffer for the
 * duration of the call only; all may be called from any thread on distinct
 * state. Fuzzed by tests/fuzz/fuzz_ws.c.
 */
#ifndef WSCHAT_WS_CODEC_H
#define WSCHAT_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The scanner's state between calls. Zero it to start (a new connection is
 * at a frame boundary, between messages). */
struct wschat__ws_scan {
  uint64_t remaining; /* payload bytes left in the current frame */
  uint64_t msg_len;   /* bytes of the data message in progress */
  uint8_t hdr[14];    /* a frame header being collected */
  uint8_t hlen;
  uint8_t in_frag; /* a fragmented data message is in progress */
  uint8_t deflate; /* permessage-deflate negotiated: RSV1 allowed on the
                      first frame of a data message (set by the caller) */
  uint8_t stop_at_close; /* set by the caller: the scan ends just past a
                            whole close frame and reads nothing more */
  uint8_t close_len; /* bytes (header and payload) of the close frame in
                        progress or, with stop_at_close, just ended (at
                        most 131: it is a control frame); 0 in any other */
  uint8_t close_done; /* with stop_at_close: a whole close frame was read */
};

/*
 * Walks the frame headers in p[0..len), the next bytes from the client;
 * payload bytes are skipped over, never read. Catches what wslay answers too
 * loosely or without a reason, with *code 1002: a length not in its minimal
 * form, a control frame that is fragmented or over 125 bytes, a close frame
 * with a 1-byte payload, a 64-bit length with its top bit set, RSV2 or
 * RSV3, RSV1 unless s->deflate is set or on a control or continuation
 * frame; and with
 * *code 1009 a data message over max_message bytes (the sum of its
 * fragments, decided as each header completes, before its payload).
 * *why is a static string.
 *
 * Returns how many bytes are fine to hand on, with *code 0: len (with
 * s->stop_at_close, the offset just past a whole close frame if one ends
 * in p, and 0 once one has: nothing after a close frame is read). Or, on a
 * violation, the offset in p of the bad frame's first byte (0 if its header
 * began in an earlier call) with *code and *why set; the state is then
 * meaningless and the stream must end. Does not take ownership of p.
 */
size_t wschat__ws_scan(struct wschat__ws_scan *s, const uint8_t *p, size_t len,
                       uint64_t max_message, int *code, const char **why);

/* 1 if the scanner is at a frame boundary and not inside a fragmented data
 * message (a client is between messages), else 0. */
int wschat__ws_scan_between_messages(const struct wschat__ws_scan *s);

/* XORs p[0..n) in place with the 4-byte masking key (RFC 6455 5.3), eight
 * bytes at a time. Applying it twice gives the bytes back. */
void wschat__ws_unmask(uint8_t *p, size_t n, const uint8_t key[4]);

/*
 * The fast path: recognises one whole, final (FIN), masked, RSV-free text or
 * binary frame with a 7- or minimal 16-bit length of at most max_message
 * bytes at the front of p[0..len), which must start at a frame boundary
 * between messages. Unmasks its payload in place and, for text, checks that
 * it is valid UTF-8.
 *
 * Returns the frame's size in bytes (header and payload; at least 6), with
 * *opcode 1 (text) or 2 (binary) and *payload, *payload_len set: the payload
 * lies inside p and ends where the frame does. Or returns 0 ("not taken",
 * outputs untouched) and leaves p byte-for-byte as it was, masked: anything
 * else, including a partial frame or invalid UTF-8 (unmasked, then masked
 * back, so that the slow path fails it with 1007), is for the slow path.
 * Does not take ownership of p.
 */
size_t wschat__ws_fast_frame(uint8_t *p, size_t len, uint64_t max_message,
                             int *opcode, const uint8_t **payload,
                             size_t *payload_len);

/*
 * The same for a compressed message (permessage-deflate): one whole, final,
 * masked text or binary frame with RSV1 set (and RSV2, RSV3 clear), its
 * payload unmasked in place and not checked as UTF-8 (it is compressed:
 * the caller inflates it, then checks). Only for a connection that
 * negotiated the extension. Returns as wschat__ws_fast_frame().
 */
size_t wschat__ws_fast_frame_z(uint8_t *p, size_t len, uint64_t max_message,
                               int *opcode, const uint8_t **payload,
                               size_t *payload_len);

#endif
