/*
 * bridge: the chat as a stream of events, for another program to consume.
 *
 *   bridge [PORT]     (default 8765; 0 picks a free port)
 *
 * Every event the chat delivers is printed on stdout as one JSON object
 * per line, flushed at once (pipe it to a logger, a search index, a
 * message queue):
 *
 *   {"id":7,"time":1764068400123,"kind":"message","room":"lobby",
 *    "from":"alice","client":1,"to":null,"text":"hi","reason":null}
 *
 * Two parts of the program watch the events, each with its own
 * wschat_server_watch() and knowing nothing of the other: the printer,
 * and a counter of lines per room that answers the registered command
 * /stats. The start line goes to stderr, so that stdout carries only
 * events. The server runs on the program's own loop (uv_default_loop()).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* for <uv.h> and strcasecmp under -std=c11 */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>
#include <wschat.h>

/* ---- part 1: every event as a JSON line ---- */

static const char *kind_name(enum wschat_event_kind k) {
  switch (k) {
  case WSCHAT_EVENT_MESSAGE: return "message";
  case WSCHAT_EVENT_ACTION: return "action";
  case WSCHAT_EVENT_JOIN: return "join";
  case WSCHAT_EVENT_LEAVE: return "leave";
  case WSCHAT_EVENT_NICK: return "nick";
  case WSCHAT_EVENT_WHISPER: return "whisper";
  case WSCHAT_EVENT_NOTICE: return "notice";
  }
  return "unknown"; /* a kind added by a newer library */
}

/* Prints s (len bytes) as a JSON string, or null. The library hands out
 * valid UTF-8, so only quotes, backslashes and controls need escaping. */
static void json_string(const char *s, size_t len) {
  if (s == NULL) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20 || ch == 0x7f)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static void json_field(const char *key, const char *s) {
  printf(",\"%s\":", key);
  json_string(s, s ? strlen(s) : 0);
}

static void print_event(struct wschat_server *srv,
                        const struct wschat_event *ev, void *user) {
  (void)srv;
  (void)user;
  size_t len;
  const char *text = wschat_event_text(ev, &len);
  /* The event and its strings are valid during this call only. */
  printf("{\"id\":%llu,\"time\":%lld,\"kind\":\"%s\"",
         (unsigned long long)wschat_event_id(ev),
         (long long)wschat_event_time(ev), kind_name(wschat_event_kind(ev)));
  json_field("room", wschat_event_room(ev));
  json_field("from", wschat_event_from(ev));
  printf(",\"client\":%llu", (unsigned long long)wschat_event_client(ev));
  json_field("to", wschat_event_to(ev));
  fputs(",\"text\":", stdout);
  json_string(text, len);
  json_field("reason", wschat_event_reason(ev));
  puts("}");
  fflush(stdout); /* one whole line at a time for the reader */
}

/* ---- part 2: lines said per room, and /stats ---- */

struct count {
  char room[WSCHAT_ROOM_MAX + 1];
  unsigned long lines;
};

struct stats {
  struct count *v; /* sorted by room name; owned here */
  size_t n;
};

static void count_event(struct wschat_server *srv,
                        const struct wschat_event *ev, void *user) {
  (void)srv;
  struct stats *st = user;
  enum wschat_event_kind k = wschat_event_kind(ev);
  const char *room = wschat_event_room(ev);
  if ((k != WSCHAT_EVENT_MESSAGE && k != WSCHAT_EVENT_ACTION) || room == NULL)
    return;
  size_t i = 0;
  int cmp = 1;
  while (i < st->n && (cmp = strcasecmp(st->v[i].room, room)) < 0)
    i++;
  if (i == st->n || cmp != 0) { /* a room not seen before: insert it at i */
    struct count *v = realloc(st->v, (st->n + 1) * sizeof(*v));
    if (v == NULL)
      return; /* out of memory: this line goes uncounted */
    st->v = v;
    memmove(&v[i + 1], &v[i], (st->n - i) * sizeof(*v));
    snprintf(v[i].room, sizeof(v[i].room), "%s", room);
    v[i].lines = 0;
    st->n++;
  }
  st->v[i].lines++;
}

/* "/stats": "* lines per room: dev 2, lobby 5" to the caller only. */
static int cmd_stats(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)cmd;
  struct stats *st = user;
  char line[1024];
  size_t at = (size_t)snprintf(line, sizeof(line), "* lines per room:");
  for (size_t i = 0; i < st->n && at < sizeof(line); i++)
    at += (size_t)snprintf(line + at, sizeof(line) - at, "%s %s %lu",
                           i ? "," : "", st->v[i].room, st->v[i].lines);
  if (st->n == 0)
    at = (size_t)snprintf(line, sizeof(line), "* no lines yet");
  wschat_client_send(c, line, at < sizeof(line) ? at : sizeof(line) - 1);
  return WSCHAT_DROP;
}

/* ---- start and stop ---- */

struct app {
  struct wschat_server *srv;
  uv_signal_t term, intr;
};

static void on_shutdown(struct wschat_server *srv, void *user) {
  (void)srv;
  struct app *app = user;
  uv_close((uv_handle_t *)&app->term, NULL);
  uv_close((uv_handle_t *)&app->intr, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  struct app *app = h->data;
  wschat_server_shutdown(app->srv, on_shutdown, app);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8765;
  struct app app = {.srv = NULL};
  struct stats stats = {.v = NULL, .n = 0};
  uv_loop_t *loop = uv_default_loop();
  signal(SIGPIPE, SIG_IGN);

  int r = wschat_server_new(loop, &app.srv);
  if (r != 0) {
    fprintf(stderr, "bridge: %s\n", wschat_strerror(r));
    return 1;
  }
  /* Watchers run in the order added; each gets its own user pointer. */
  r = wschat_server_watch(app.srv, print_event, NULL, NULL);
  if (r == 0)
    r = wschat_server_watch(app.srv, count_event, &stats, NULL);
  if (r == 0)
    r = wschat_server_add_command(app.srv, "stats",
                                  "- lines said per room since the start",
                                  cmd_stats, &stats);
  if (r == 0)
    r = wschat_server_listen(app.srv, "127.0.0.1", port);
  if (r != 0) {
    fprintf(stderr, "bridge: %s\n", wschat_strerror(r));
    uv_run(loop, UV_RUN_NOWAIT); /* lets a failed listener finish closing */
    wschat_server_free(app.srv);
    return 1;
  }
  uv_signal_init(loop, &app.term);
  uv_signal_init(loop, &app.intr);
  app.term.data = app.intr.data = &app;
  uv_signal_start(&app.term, on_signal, SIGTERM);
  uv_signal_start(&app.intr, on_signal, SIGINT);
  fprintf(stderr, "listening on ws://127.0.0.1:%d/\n",
          wschat_server_port(app.srv));

  uv_run(loop, UV_RUN_DEFAULT); /* ends when every handle is closed */
  int freed = wschat_server_free(app.srv);
  int closed = uv_loop_close(loop);
  free(stats.v);
  if (freed != 0 || closed != 0) {
    fprintf(stderr, "bridge: unclean exit (%s, loop %d)\n",
            wschat_strerror(freed), closed);
    return 1;
  }
  return 0;
}
