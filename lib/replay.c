/* replay: see replay.h. */
#include "replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "event.h"
#include "frame.h"
#include "grow.h"
#include "history.h"
#include "json_proto.h"
#include "json_view.h"
#include "session_env.h"
#include "view.h"

/* One read in flight. Owned by the store's callback once queued: freed
 * when its answer has been written (or when it comes for a client that is
 * gone). While the client lives it is also on the client's list. */
struct wschat__read {
  struct wschat_client *c; /* NULL: the client is gone */
  struct wschat__read *next;
  int why;
  int kind; /* the query's (enum wschat__history_query_kind) */
  int done; /* answered: frames hold the answer */
  /* JOIN: the last event id made before the read; anything newer in the
   * answer was (or will be) delivered live, so it is left out. */
  uint64_t upto;
  int upto_late; /* a cluster room not in order yet: upto comes later */
  int cluster;   /* upto is the room's, from the cluster's gate */
  struct wschat__frame **frames; /* owned (one reference each) */
  size_t nframes;
  json_t *ref; /* owned reference, or NULL */
  char room[WSCHAT_ROOM_MAX + 1];
};

/* What waits for a held client, in order: a frame, or a JOIN read (whose
 * answer goes out in its place). */
struct held_item {
  struct wschat__frame *f; /* owned reference, or NULL for a read */
  struct wschat__read *r;
};

struct wschat__held {
  struct held_item *items; /* a ring of cap */
  size_t head, n, cap;
  size_t bytes; /* of the frames waiting */
};

static void read_free(struct wschat__read *r) {
  for (size_t i = 0; i < r->nframes; i++)
    wschat__frame_unref(r->frames[i]);
  free(r->frames);
  if (r->ref)
    json_decref(r->ref);
  free(r);
}

static int client_open(const struct wschat_client *c) {
  return c->conn.state == WSCHAT__CONN_OPEN && !c->conn.doom;
}

static int hold_push(struct wschat_client *c, struct wschat__frame *f,
                     struct wschat__read *r) {
  struct wschat__held *h = c->held;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 16;
    struct held_item *items = malloc(cap * sizeof(*items));
    if (items == NULL)
      return -1;
    for (size_t i = 0; i < h->n; i++)
      items[i] = h->items[(h->head + i) % h->cap];
    free(h->items);
    h->items = items;
    h->head = 0;
    h->cap = cap;
  }
  h->items[(h->head + h->n) % h->cap] = (struct held_item){f, r};
  h->n++;
  if (f)
    h->bytes += wschat__frame_len(f);
  return 0;
}

static void held_free(struct wschat_client *c) {
  struct wschat__held *h = c->held;
  if (h == NULL)
    return;
  for (size_t i = 0; i < h->n; i++)
    wschat__frame_unref(h->items[(h->head + i) % h->cap].f);
  free(h->items);
  free(h);
  c->held = NULL;
  c->member.view &= (uint8_t)WSCHAT__VIEW_MASK;
}

void wschat__replay_send(struct wschat_client *c, struct wschat__frame *f) {
  if (c->held == NULL) {
    wschat__conn_deliver(&c->conn, f);
    return;
  }
  if (!client_open(c))
    return;
  if (hold_push(c, wschat__frame_ref(f), NULL) != 0) {
    wschat__frame_unref(f);
    wschat__conn_doom(&c->conn, 1011);
    return;
  }
  if (c->held->bytes > wschat__session_env(c)->conn.max_output)
    wschat__conn_doom(&c->conn, 1008); /* closed as a slow consumer */
}

/* Sends what waits, up to the first read not answered yet; the hold ends
 * when nothing is left. */
static void drain(struct wschat_client *c) {
  struct wschat__held *h = c->held;
  while (h->n > 0) {
    struct held_item *it = &h->items[h->head];
    if (it->r != NULL && !it->r->done)
      return;
    if (it->f != NULL) {
      wschat__conn_deliver(&c->conn, it->f);
      h->bytes -= wschat__frame_len(it->f);
      wschat__frame_unref(it->f);
    } else if (it->r != NULL) { /* an item is a frame or a read */
      for (size_t i = 0; i < it->r->nframes; i++)
        wschat__conn_deliver(&c->conn, it->r->frames[i]);
      read_free(it->r);
    }
    h->head = (h->head + 1) % h->cap;
    h->n--;
  }
  held_free(c);
}

static void link_read(struct wschat_client *c, struct wschat__read *r) {
  r->next = c->reads;
  c->reads = r;
  c->nreads++;
  if (r->why == WSCHAT__REPLAY_ASKED)
    c->nasked++;
}

static void unlink_read(struct wschat_client *c, struct wschat__read *r) {
  for (struct wschat__read **p = &c->reads; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      c->nreads--;
      if (r->why == WSCHAT__REPLAY_ASKED)
        c->nasked--;
      return;
    }
}

int wschat__replay_can_ask(const struct wschat_client *c) {
  return c->nasked < WSCHAT__REPLAY_MAX_ASKED &&
         c->nreads < WSCHAT__REPLAY_MAX_READS;
}

/* ---- answers ---- */

static int add_frame(struct wschat__read *r, struct wschat__frame *f,
                     size_t *cap) {
  if (f == NULL)
    return -1;
  struct wschat__frame **v =
      wschat__grow(r->frames, r->nframes, cap, sizeof(*r->frames), 8);
  if (v == NULL) {
    wschat__frame_unref(f);
    return -1;
  }
  r->frames = v;
  r->frames[r->nframes++] = f;
  return 0;
}

static int add_line(struct wschat__read *r, size_t *cap, const char *fmt,
                    const char *room) {
  char line[160];
  snprintf(line, sizeof(line), fmt, room);
  return add_frame(r, wschat__frame_new(WSCHAT__OP_TEXT, line, strlen(line)),
                   cap);
}

/* The text protocol's answer: each event as its live line after
 * "[history] ", then a line if something is missing. */
static int text_answer(struct wschat__read *r,
                       const struct wschat__history_page *page) {
  static const char mark[] = "[history] ";
  size_t cap = 0;
  if (page->err != 0)
    return add_line(r, &cap, "! history of #%s could not be read", r->room);
  for (size_t i = 0; i < page->n; i++) {
    struct wschat__frame *live =
        wschat__text_render(page->ev[i], WSCHAT__TO_RECIPIENT);
    if (live == NULL)
      return -1;
    size_t len;
    const char *text = (const char *)wschat__frame_payload(live, &len);
    const char *parts[2] = {mark, text};
    size_t lens[2] = {sizeof(mark) - 1, len};
    struct wschat__frame *f = wschat__frame_text_parts(parts, lens, 2);
    wschat__frame_unref(live);
    if (add_frame(r, f, &cap) != 0)
      return -1;
  }
  if (page->n == 0 && r->why == WSCHAT__REPLAY_ASKED)
    return add_line(r, &cap, "* no history in #%s", r->room);
  if (!page->complete)
    return add_line(r, &cap, "! some history of #%s is missing", r->room);
  return 0;
}

static int json_answer(struct wschat__read *r,
                       const struct wschat__history_page *page) {
  size_t cap = 0;
  if (page->err != 0 && r->why == WSCHAT__REPLAY_ASKED)
    return add_frame(r,
                     wschat__json_error(WSCHAT__JERR_INTERNAL,
                                        "history could not be read", r->ref),
                     &cap);
  /* Recovery asks for everything after an id: rows left for a next page
   * are missing from its answer. Requests ask for a limit. */
  int complete = page->err == 0 && page->complete &&
                 !(r->why == WSCHAT__REPLAY_JOIN &&
                   r->kind == WSCHAT__HISTORY_AFTER && page->more);
  return add_frame(r,
                   wschat__json_history(
                       r->room, (const struct wschat_event *const *)page->ev,
                       page->n, complete, r->ref),
                   &cap);
}

static void on_page(struct wschat__history_page *page, void *user) {
  struct wschat__read *r = user;
  struct wschat_client *c = r->c;
  if (c == NULL) {
    wschat__history_page_free(page);
    read_free(r);
    return;
  }
  unlink_read(c, r);
  /* A store that answers later may see appends made after the read was
   * asked for (ours does not; an application's may): those events reach
   * a joiner live, after its replay, and must not come twice. */
  uint64_t upto = r->upto;
  struct wschat__chat *ch = wschat__session_env(c)->chat;
  if (r->upto_late &&
      ch->live_upto(ch->live_user, r->room, 1, &upto) == 0)
    upto = UINT64_MAX; /* never ordered: nothing came live */
  if (r->cluster) {
    /* upto is the room's own */
  } else if (upto == 0) { /* asked before this process made any event: every
                      event it made since is newer than the read */
    uint64_t first = wschat__session_env(c)->chat->first_event;
    upto = first ? first - 1 : UINT64_MAX;
  }
  while (r->why == WSCHAT__REPLAY_JOIN && page->n > 0 &&
         page->ev[page->n - 1]->id > upto)
    wschat__event_unref(page->ev[--page->n]);
  int json = (c->member.view & WSCHAT__VIEW_MASK) == WSCHAT__VIEW_JSON;
  int rc = !client_open(c) ? 0 /* nobody will read it: not rendered */
           : json          ? json_answer(r, page)
                           : text_answer(r, page);
  wschat__history_page_free(page);
  for (size_t i = 0; i < r->nframes; i++)
    r->frames[i] = wschat__session_own(c, r->frames[i]);
  if (rc != 0)
    wschat__conn_doom(&c->conn, 1011); /* out of memory */
  r->done = 1;
  if (r->why == WSCHAT__REPLAY_JOIN && c->held != NULL) {
    drain(c); /* r is freed there, in its turn */
    return;
  }
  for (size_t i = 0; i < r->nframes; i++)
    wschat__replay_send(c, r->frames[i]);
  read_free(r);
}

/* ---- reads ---- */

int wschat__replay_start(struct wschat_client *c,
                         const struct wschat__history_query *q, int why,
                         json_t *ref) {
  struct wschat__history *h = wschat__session_env(c)->history;
  if (h == NULL)
    return WSCHAT_ENOHISTORY;
  if (c->nreads >= WSCHAT__REPLAY_MAX_READS ||
      (why == WSCHAT__REPLAY_ASKED && !wschat__replay_can_ask(c)))
    return WSCHAT_ETOOMANY;
  struct wschat__read *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return WSCHAT_ENOMEM;
  r->c = c;
  r->why = why;
  r->kind = q->kind;
  struct wschat__chat *ch = wschat__session_env(c)->chat;
  r->upto = ch->next_event;
  if (ch->live_upto != NULL) {
    r->cluster = 1;
    r->upto_late = ch->live_upto(ch->live_user, q->room, 0, &r->upto) == 0;
  }
  r->ref = ref ? json_incref(ref) : NULL;
  snprintf(r->room, sizeof(r->room), "%s", q->room);
  int ordered = why == WSCHAT__REPLAY_JOIN;
  if (ordered && c->held == NULL) {
    c->held = calloc(1, sizeof(*c->held));
    if (c->held == NULL) {
      read_free(r);
      return WSCHAT_ENOMEM;
    }
    c->member.view |= WSCHAT__VIEW_HELD;
  }
  if (ordered && hold_push(c, NULL, r) != 0) {
    if (c->held->n == 0)
      held_free(c);
    read_free(r);
    return WSCHAT_ENOMEM;
  }
  /* On the list before the store sees it: a store may answer from inside
   * read() (an application's may), and then r is unlinked and freed
   * before read() returns; after a 0, r is not touched again here. */
  link_read(c, r);
  int rc = h->ops->read(h, q, on_page, r);
  if (rc != 0) { /* refused: on_page never ran, r is still ours */
    unlink_read(c, r);
    if (ordered) { /* r is the newest item: take it back */
      c->held->n--;
      if (c->held->n == 0)
        held_free(c);
    }
    read_free(r);
    return rc;
  }
  return 0;
}

void wschat__replay_detach(struct wschat_client *c) {
  for (struct wschat__read *r = c->reads; r; r = r->next)
    r->c = NULL; /* freed when its answer comes */
  c->reads = NULL;
  c->nreads = c->nasked = 0;
  if (c->held != NULL) {
    /* Reads in the queue are on the list too: only frames are dropped. */
    struct wschat__held *h = c->held;
    for (size_t i = 0; i < h->n; i++) {
      struct held_item *it = &h->items[(h->head + i) % h->cap];
      if (it->r != NULL && it->r->done)
        read_free(it->r); /* answered, waiting behind another */
    }
    held_free(c);
  }
}

void wschat__replay_epoch(const struct wschat_client *c, char out[17]) {
  struct wschat__history *h = wschat__session_env(c)->history;
  out[0] = '\0';
  if (h != NULL)
    snprintf(out, 17, "%016llx", (unsigned long long)h->ops->epoch(h));
}

uint64_t wschat__replay_parse_epoch(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 16)
    return 0;
  uint64_t v = 0;
  for (; *s; s++) {
    int d;
    if (*s >= '0' && *s <= '9')
      d = *s - '0';
    else if (*s >= 'a' && *s <= 'f')
      d = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'F')
      d = *s - 'A' + 10;
    else
      return 0;
    v = v << 4 | (uint64_t)d;
  }
  return v;
}
