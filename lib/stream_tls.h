/*
 * stream_tls: TLS (1.2 and 1.3, OpenSSL) as a stream (stream.h) over the
 * TCP one, so that conn, ws, http and the chat see plaintext and never
 * know. OpenSSL does no I/O here: a BIO of our own hands it the bytes of
 * the read at hand and takes what it writes; libuv does every read and
 * write, never blocking.
 *
 * Two parts:
 *  - struct wschat__tls (tls_ctx.c, tls_ctx.h: made, reloaded and freed
 *    there; this module only lends it its BIO method), one per server: the current SSL_CTX (a reload
 *    makes a new one; connections keep a reference to the one they were
 *    made with, OpenSSL counts them), the paths to read again, scratch
 *    buffers shared by every connection (ciphertext read, plaintext
 *    gathered, ciphertext written), the BIO method.
 *  - per connection (stream_tls.c): a TCP stream whose ops are swapped for the TLS ones
 *    and whose handle's data points to the connection's TLS state (the
 *    SSL object, ciphertext not yet taken by the socket: at most about
 *    64 KiB plus what the handshake writes; the conn's own background
 *    write in progress).
 *
 * Corking: a write of many buffers (a loop turn's frames) is gathered
 * into 16 KiB records, one SSL_write each, and the ciphertext of all of
 * them goes to the socket in one write.
 *
 * Never: blocks, reads a file outside wschat__tls_new()/reload(), or
 * keeps plaintext (what it decrypts is handed up at once; what it is
 * given to write stays the caller's until on_written).
 */
#ifndef WSCHAT_STREAM_TLS_H
#define WSCHAT_STREAM_TLS_H

#include <stddef.h>

#include "metrics.h"
#include "stream.h"

struct wschat__tls;
struct wschat__metrics;
struct wschat__log;



/* Turns the accepted TCP stream s into a TLS one (server side) with the
 * upcalls cbs. Returns 0, or -1 (no memory: s stays a TCP stream, the
 * caller closes it). */
int wschat__stream_tls_wrap(struct wschat__stream_tcp *s,
                            struct wschat__tls *t,
                            const struct wschat__stream_cbs *cbs);

#endif
