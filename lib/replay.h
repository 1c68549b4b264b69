/*
 * replay: history reads on behalf of one client, and the order of what the
 * client gets around them. A joiner must get the room's replay before the
 * room's live traffic, with no gap and no duplicate: the read is queued
 * before the join is told (it sees every append made before it), and from
 * then on everything for the client waits, in order, behind the read's
 * answer (the client is "held": WSCHAT__VIEW_HELD on its member's view,
 * which keeps it off the delivery fast path). When the answer comes, the
 * history goes out, then what waited, and the hold ends.
 *
 * A read that only answers a request (JSON history, /history) holds
 * nothing: its answer goes out when it comes.
 *
 * Owns: each client's held queue (frames, one reference each) and its
 * outstanding reads until they are answered; a read whose client is gone
 * is freed when its answer comes.
 */
#ifndef WSCHAT_REPLAY_H
#define WSCHAT_REPLAY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct wschat_client;
struct wschat__frame;
struct wschat__history_query;

/* Reads one client may have in flight: requests (JSON history,
 * /history), and all reads (requests and the replays of its joins, one
 * per join). A client over either gets no new read: a request is refused
 * (rate_limited, or the text protocol's "busy"), a join goes on with an
 * empty replay marked incomplete. Each read can cost the store and the
 * loop thousands of rows, so this is what keeps one client that asks
 * without reading from taking the store and the loop from everyone. */
enum {
  WSCHAT__REPLAY_MAX_ASKED = 4,
  WSCHAT__REPLAY_MAX_READS = 32,
};

/* Why a read is made, which decides how its answer is written. */
enum {
  WSCHAT__REPLAY_JOIN = 1, /* a joiner's replay or recovery: ordered */
  WSCHAT__REPLAY_ASKED,    /* a JSON history request or /history */
};

/*
 * Queues the read q for client c. A JOIN read holds c's deliveries until
 * its answer is sent. ref (JSON only; NULL: none) is echoed in the answer
 * (the read takes its own reference). Loop thread.
 * Returns 0, WSCHAT_ENOHISTORY (the server has no history store),
 * WSCHAT_ETOOMANY (c is at one of the limits above, or the store's queue
 * is full), the store's WSCHAT_EINVAL, or WSCHAT_ENOMEM.
 */
int wschat__replay_start(struct wschat_client *c,
                         const struct wschat__history_query *q, int why,
                         json_t *ref);

/* Nonzero if c may make one more request read (it is under both limits
 * above). */
int wschat__replay_can_ask(const struct wschat_client *c);

/* Sends f (the caller keeps its reference) to c: now, or after what holds
 * c. A held queue over the client's output limit dooms it with 1008. */
void wschat__replay_send(struct wschat_client *c, struct wschat__frame *f);

/* c is being freed: its reads forget it, its held queue is dropped. */
void wschat__replay_detach(struct wschat_client *c);

/* The store's epoch as the protocols write it (16 hex digits) into
 * out[17]; "" without a store. */
void wschat__replay_epoch(const struct wschat_client *c, char out[17]);

/* A client's epoch string back to the number (0: not one of ours). */
uint64_t wschat__replay_parse_epoch(const char *s);

#endif
