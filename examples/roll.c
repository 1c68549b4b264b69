/*
 * roll: libwschat embedded in a program that owns its libuv loop.
 *
 * The program runs the chat on its own loop beside its own timer, adds a
 * /roll command through the on_message hook, and announces the time to
 * every room through wschat_server_broadcast() on that timer.
 *
 *   roll [PORT] [ANNOUNCE_MS]     (defaults: 8765, 30000)
 *
 * Then: websocat ws://localhost:PORT, type "/roll" or "/roll 20".
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

struct app {
  uv_loop_t *loop;
  uv_timer_t announce;
  uv_signal_t sigterm, sigint;
  struct wschat_server *srv;
  unsigned long ticks;
};

/* "/roll [SIDES]": handled here; the built-in chat never sees it. */
static int on_message(struct wschat_client *c, struct wschat_message *m,
                      void *user) {
  (void)user;
  size_t len;
  const char *text = wschat_message_text(m, &len);
  if (wschat_message_is_binary(m) || len < 5 || strncmp(text, "/roll", 5) != 0 ||
      (len > 5 && text[5] != ' '))
    return WSCHAT_PASS;
  char arg[16] = "";
  if (len > 6 && len - 6 < sizeof(arg))
    memcpy(arg, text + 6, len - 6);
  long sides = arg[0] ? strtol(arg, NULL, 10) : 6;
  if (sides < 2 || sides > 1000) {
    const char *err = "! usage: /roll [SIDES] (2 to 1000)";
    wschat_client_send(c, err, strlen(err));
    return WSCHAT_DROP;
  }
  char line[128];
  int n = snprintf(line, sizeof(line), "* %s rolls a d%ld: %ld",
                   wschat_client_name(c), sides, 1 + rand() % sides);
  wschat_server_broadcast(wschat_client_get_data(c), wschat_client_room(c),
                          line, (size_t)n, NULL);
  return WSCHAT_DROP;
}

/* Remember the server in each client, for on_message above. */
static int on_connect(struct wschat_client *c, void *user) {
  wschat_client_set_data(c, user);
  return 0;
}

static void on_announce(uv_timer_t *t) {
  struct app *app = t->data;
  char line[64];
  int n = snprintf(line, sizeof(line), "* announcement #%lu from the host",
                   ++app->ticks);
  wschat_server_broadcast(app->srv, NULL, line, (size_t)n, NULL);
}

static void on_shutdown(struct wschat_server *srv, void *user) {
  (void)srv;
  struct app *app = user;
  uv_close((uv_handle_t *)&app->announce, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  struct app *app = h->data;
  wschat_server_shutdown(app->srv, on_shutdown, app);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8765;
  uint64_t every = argc > 2 ? strtoull(argv[2], NULL, 10) : 30000;
  struct app app = {.loop = uv_default_loop()};
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)time(NULL));

  int r = wschat_server_new(app.loop, &app.srv);
  if (r == 0) {
    wschat_server_on_connect(app.srv, on_connect, app.srv);
    wschat_server_on_message(app.srv, on_message, NULL);
    r = wschat_server_listen(app.srv, "127.0.0.1", port);
  }
  if (r != 0) {
    fprintf(stderr, "roll: %s\n", wschat_strerror(r));
    return 1;
  }
  uv_timer_init(app.loop, &app.announce);
  app.announce.data = &app;
  uv_timer_start(&app.announce, on_announce, every, every);
  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_init(app.loop, &app.sigint);
  app.sigterm.data = app.sigint.data = &app;
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  printf("listening on ws://127.0.0.1:%d/\n", wschat_server_port(app.srv));
  fflush(stdout);

  uv_run(app.loop, UV_RUN_DEFAULT); /* ends when everything is closed */
  r = wschat_server_free(app.srv);
  int closed = uv_loop_close(app.loop);
  if (r != 0 || closed != 0) {
    fprintf(stderr, "roll: unclean exit (%s, loop %d)\n", wschat_strerror(r),
            closed);
    return 1;
  }
  return 0;
}
