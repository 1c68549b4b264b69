/*
 * bot: a chat bot that lives inside the server.
 *
 *   bot [PORT]     (default 8765; 0 picks a free port)
 *
 * Three parts of the API make a bot, none of them a central dispatcher:
 * - registered commands (wschat_server_add_command()): /roll and /kick,
 *   listed by /help with their help lines;
 * - a reserved name (wschat_server_reserve_name()): "dicebot" speaks
 *   through wschat_server_say() and no client can take the name;
 * - an event watcher (wschat_server_watch()): dicebot greets each join.
 *
 * The server runs on a loop of its own (wschat_server_new(NULL, ...));
 * the program adds two signal handles to that loop to shut down cleanly.
 * Then: websocat ws://localhost:8765, type "/roll 2d6" or "/help".
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* for <uv.h> under -std=c11 */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>
#include <wschat.h>

#define BOT "dicebot"

/* One line to one client ("! " lines are errors, as the chat's own). */
static void tell(struct wschat_client *c, const char *line) {
  wschat_client_send(c, line, strlen(line));
}

/* The value of the 1-4 digits in [s, end), or -1. */
static long number(const char *s, const char *end) {
  long v = 0;
  if (s == end || end - s > 4)
    return -1;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* "/roll [N]dM" or "/roll M": dicebot says the result in the caller's room. */
static int cmd_roll(struct wschat_client *c, const struct wschat_command *cmd,
                    void *user) {
  struct wschat_server *srv = user;
  size_t len;
  const char *args = wschat_command_args(cmd, &len); /* not NUL-terminated */
  long n = 1, sides = 6;
  if (len > 0) {
    const char *d = memchr(args, 'd', len);
    if (d != NULL && d != args)
      n = number(args, d);
    sides = number(d ? d + 1 : args, args + len);
  }
  if (n < 1 || n > 20 || sides < 2 || sides > 1000) {
    tell(c, "! usage: /roll [N]dM, e.g. /roll 2d6 (1-20 dice of 2-1000 sides)");
    return WSCHAT_DROP;
  }
  char line[256];
  int at = snprintf(line, sizeof(line), "%s rolls %ldd%ld:",
                    wschat_client_name(c), n, sides);
  long total = 0;
  for (long i = 0; i < n; i++) {
    long die = 1 + rand() % sides;
    total += die;
    at += snprintf(line + at, sizeof(line) - (size_t)at, "%s%ld",
                   i ? " + " : " ", die);
  }
  if (n > 1)
    at += snprintf(line + at, sizeof(line) - (size_t)at, " = %ld", total);
  /* Rendered to the room exactly like a client's line: "[ROOM] dicebot: ..." */
  wschat_server_say(srv, wschat_client_room(c), BOT, line, (size_t)at);
  return WSCHAT_DROP; /* handled: the chat does not answer "unknown command" */
}

/* "/kick NAME": closes NAME; its rooms see "* NAME left #ROOM (kicked by X)". */
static int cmd_kick(struct wschat_client *c, const struct wschat_command *cmd,
                    void *user) {
  struct wschat_server *srv = user;
  size_t len;
  const char *arg = wschat_command_arg(cmd, &len);
  char name[WSCHAT_NAME_MAX + 1], line[96];
  if (len == 0 || len > WSCHAT_NAME_MAX) {
    tell(c, "! usage: /kick NAME");
    return WSCHAT_DROP;
  }
  memcpy(name, arg, len);
  name[len] = '\0';
  struct wschat_client *victim = wschat_server_find_client(srv, name);
  if (victim == NULL) {
    snprintf(line, sizeof(line), "! no such user: %s", name);
    tell(c, line);
  } else if (victim == c) {
    tell(c, "! to leave, type /quit");
  } else {
    /* A real bot would check who may kick; this one lets anyone. The
     * reason goes into the close frame and into the leave notices. */
    snprintf(line, sizeof(line), "kicked by %s", wschat_client_name(c));
    wschat_client_close(victim, 1008, line);
  }
  return WSCHAT_DROP;
}

/* A watcher sees every event the chat delivers; this one greets joins. */
static void on_event(struct wschat_server *srv, const struct wschat_event *ev,
                     void *user) {
  (void)user;
  const char *room = wschat_event_room(ev), *who = wschat_event_from(ev);
  if (wschat_event_kind(ev) != WSCHAT_EVENT_JOIN || room == NULL || who == NULL)
    return;
  char line[160];
  int n = snprintf(line, sizeof(line), "welcome to #%s, %s! try /roll 2d6",
                   room, who);
  /* Its MESSAGE event reaches the watchers after this call returns. */
  wschat_server_say(srv, room, BOT, line, (size_t)n);
}

/* ---- start and stop ---- */

struct app {
  struct wschat_server *srv;
  uv_signal_t term, intr;
};

static void on_shutdown(struct wschat_server *srv, void *user) {
  (void)srv;
  struct app *app = user;
  /* Our handles on the server's loop: closed, so that the loop can end. */
  uv_close((uv_handle_t *)&app->term, NULL);
  uv_close((uv_handle_t *)&app->intr, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  struct app *app = h->data;
  /* A second signal during the shutdown gets WSCHAT_ESTATE: ignored. */
  wschat_server_shutdown(app->srv, on_shutdown, app);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8765;
  struct wschat_server *srv;
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)time(NULL));

  int r = wschat_server_new(NULL, &srv); /* NULL: a loop of its own */
  if (r != 0) {
    fprintf(stderr, "bot: %s\n", wschat_strerror(r));
    return 1;
  }
  r = wschat_server_reserve_name(srv, BOT);
  if (r == 0)
    r = wschat_server_add_command(srv, "roll",
                                  "[N]dM - roll N dice of M sides (default 1d6)",
                                  cmd_roll, srv);
  if (r == 0)
    r = wschat_server_add_command(srv, "kick", "NAME - disconnect NAME",
                                  cmd_kick, srv);
  if (r == 0)
    r = wschat_server_watch(srv, on_event, NULL, NULL);
  if (r == 0)
    r = wschat_server_listen(srv, "127.0.0.1", port);
  if (r != 0) {
    fprintf(stderr, "bot: %s\n", wschat_strerror(r));
    wschat_server_free(srv);
    return 1;
  }

  struct app app = {.srv = srv};
  uv_loop_t *loop = wschat_server_loop(srv);
  uv_signal_init(loop, &app.term);
  uv_signal_init(loop, &app.intr);
  app.term.data = app.intr.data = &app;
  uv_signal_start(&app.term, on_signal, SIGTERM);
  uv_signal_start(&app.intr, on_signal, SIGINT);
  printf("listening on ws://127.0.0.1:%d/\n", wschat_server_port(srv));
  fflush(stdout);

  r = wschat_server_run(srv); /* until the shutdown has finished */
  int freed = wschat_server_free(srv); /* also closes the server's loop */
  if (r != 0 || freed != 0) {
    fprintf(stderr, "bot: unclean exit (%s, %s)\n", wschat_strerror(r),
            wschat_strerror(freed));
    return 1;
  }
  return 0;
}
