/*
 * ws: the glue between a connection and wslay's event layer (RFC 6455
 * framing, fragmentation, UTF-8 fail-fast, ping/pong, close handshake).
 *
 * Owns: the connection's wslay context while it exists, and the state of
 * the frame header scanner (ws_codec.h) that runs in front of wslay. The
 * scanner catches what wslay answers too loosely (control frames over 125
 * bytes or fragmented, a close payload of 1 byte, a 64-bit length with its
 * top bit set: all 1002; a message over the limit: 1009 with a reason) and
 * knows where frames end, so an idle connection can give its wslay context
 * back (about 9 KB).
 * A fast path in front of both takes the common case, a whole, final,
 * masked text or binary frame at a frame boundary (recognised by
 * wschat__ws_fast_frame): it unmasks eight bytes at a time and checks UTF-8
 * with an ASCII fast path, where wslay works a byte at a time. Everything
 * else (control frames, fragments, partial or 64-bit-length frames, invalid
 * UTF-8, reserved bits) goes to wslay.
 * With permessage-deflate (w->z set), a message whose first frame has RSV1
 * is inflated whole once complete (deflate.h: bounded by max_message, 1009;
 * corrupt data, 1007), then checked as UTF-8 if text (1007) and handed up
 * like any other. A whole one-frame compressed message takes the fast path
 * too (wschat__ws_fast_frame_z), so it needs no wslay context either.
 * Never touches sockets and knows no connection: wslay's output, whole
 * messages, closes and pongs go up through struct wschat__ws_cbs.
 */
#ifndef WSCHAT_WS_H
#define WSCHAT_WS_H

#include <stddef.h>
#include <stdint.h>

#include <wslay/wslay.h>

#include "ws_codec.h"

struct wschat__frame;
struct wschat__deflate;

/* Upcalls to the connection; user is the one given to wschat__ws_init. */
struct wschat__ws_cbs {
  /* A whole text or binary message (valid during the call). */
  void (*on_message)(void *user, int opcode, const uint8_t *msg, size_t len);
  /* The peer's close frame arrived (code 1005 if it had none). */
  void (*on_close)(void *user, int code);
  /* We are failing the connection with code (1002, 1009: a close frame
   * with that code is queued). */
  void (*on_fail)(void *user, int code);
  void (*on_pong)(void *user);
  /* A ping arrived while our side may still send (never after our close
   * frame): the payload (at most 125 bytes, valid during the call) for
   * the pong. wslay's own pong is not sent: the connection answers, and
   * may answer only the latest of several pings (RFC 6455, 5.5.3). */
  void (*on_ping)(void *user, const uint8_t *payload, size_t len);
  /* Queues wslay's own output (takes the frame reference). 0 or -1. */
  int (*push)(void *user, struct wschat__frame *f);
  /* 1 while messages are still wanted (the connection is open). */
  int (*is_open)(void *user);
};

struct wschat__ws_call; /* ws.c: the upcalls and input of one call */

/* The most bytes held back from wslay: a close frame (2 + 4 + 125). */
#define WSCHAT__WS_HELD_MAX 131

struct wschat__ws {
  wslay_event_context_ptr ctx; /* owned; NULL while idle */
  /* While wschat__ws_feed() or _close() runs (wslay calls back only then):
   * its upcalls and the bytes being fed. Not stored per connection beyond
   * that: an idle connection keeps only what it must. */
  struct wschat__ws_call *call;
  /* where the peer's byte stream stands (frames, the message's size) */
  struct wschat__ws_scan scan;
  uint8_t failed; /* read side is done (error or close received) */
  uint8_t oom;    /* a message could not be assembled */
  uint8_t swallow; /* wslay's output is its pong: not sent */
  /* the data message being received (wslay runs without buffering) */
  uint8_t frame_ctrl, frame_fin, frame_first;
  uint64_t frame_len, frame_off;
  const uint8_t *direct; /* whole one-frame message inside wslay's buffer */
  size_t direct_len;
  /* owned (malloc'd when first needed, freed with the wslay context): the
   * bytes wslay has not been given yet, the last held_len of the stream: a
   * frame header the scanner has not judged whole, or a close frame not
   * yet whole (wslay checks a close reason's UTF-8 right only when it gets
   * the frame in one piece). So the verdict on any frame is the same
   * whether its bytes come at once or one at a time. */
  uint8_t *held;
  size_t held_len;
  uint8_t *buf; /* owned: a fragmented or chunked message, reused */
  size_t buf_len, buf_cap;
  /* not owned: the server's shared zlib streams, set (with scan.deflate)
   * when permessage-deflate was negotiated; NULL otherwise */
  struct wschat__deflate *z;
};

/*
 * Feeds bytes from the peer; messages over max_message fail with 1009.
 * Messages, pings and closes go up through cbs (with user), during this
 * call only. data is the server's read buffer: the fast path unmasks
 * frames in place. Returns 0, or -1 if the connection must be dropped
 * without a close handshake (out of memory).
 */
int wschat__ws_feed(struct wschat__ws *w, const struct wschat__ws_cbs *cbs,
                    void *user, uint8_t *data, size_t len, size_t max_message);

/*
 * Queues a close frame (code, reason of at most 123 bytes or NULL) unless
 * one was already queued, and pushes it to the output queue.
 * Returns 0, or -1 when out of memory.
 */
int wschat__ws_close(struct wschat__ws *w, const struct wschat__ws_cbs *cbs,
                     void *user, int code, const char *reason,
                     size_t max_message);

/*
 * Writes a close frame's payload (code, then reason cut to at most 123
 * bytes at a UTF-8 character boundary) into out; returns its length.
 */
size_t wschat__ws_close_payload(uint8_t out[125], int code,
                                const char *reason);

/* The close code this side sent (1006 if none was sent). */
int wschat__ws_code_sent(const struct wschat__ws *w);

/* 1 if wslay has sent its close frame. */
int wschat__ws_close_sent(const struct wschat__ws *w);
/* 1 if the read side is finished (close received or connection failed). */
int wschat__ws_read_done(const struct wschat__ws *w);

/* Frees the wslay context if the connection is between messages with
 * nothing pending; it is rebuilt when bytes arrive. */
void wschat__ws_trim(struct wschat__ws *w);

/* Frees everything (connection teardown). */
void wschat__ws_free(struct wschat__ws *w);

#endif
