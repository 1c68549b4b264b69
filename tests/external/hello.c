/* An outside program built against the *installed* libwschat with
 * pkg-config (see tests/install_test.sh): it creates a server on its own
 * loop, registers a command, a watcher and a route (symbols of 0.2),
 * opens the built-in history store at argv[1] (SQLite, through the
 * installed library), listens on a free port, and shuts down from a
 * wschat_server_post() callback run by wschat_server_run(); then frees
 * it.
 *
 *   hello HISTORY_FILE */
#include <stdio.h>
#include <string.h>

#include <wschat.h>

static void done(struct wschat_server *srv, void *user) {
  (void)srv;
  *(int *)user = 1;
}

/* Runs on the loop thread, from inside wschat_server_run(). */
static void stop(struct wschat_server *srv, void *arg) {
  if (wschat_server_shutdown(srv, done, arg) != 0)
    fprintf(stderr, "hello: shutdown refused\n");
}

static int cmd_hello(struct wschat_client *c, const struct wschat_command *cmd,
                     void *user) {
  (void)cmd;
  (void)user;
  wschat_client_send(c, "* hello", 7);
  return WSCHAT_DROP;
}

static void on_event(struct wschat_server *srv, const struct wschat_event *ev,
                     void *user) {
  (void)srv;
  (void)ev;
  (void)user;
}

static void route(struct wschat_http_request *req, void *user) {
  (void)user;
  wschat_http_respond(req, 200, NULL, "hello\n", 6);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hello HISTORY_FILE\n");
    return 2;
  }
  if (wschat_version() != WSCHAT_VERSION_NUM) {
    fprintf(stderr, "header and library disagree\n");
    return 1;
  }
  struct wschat_server *srv;
  int finished = 0;
  int r = wschat_server_new(NULL, &srv);
  if (r == 0)
    r = wschat_server_add_command(srv, "hello", "- says hello", cmd_hello,
                                  NULL);
  if (r == 0)
    r = wschat_server_watch(srv, on_event, NULL, NULL);
  if (r == 0)
    r = wschat_server_route(srv, "/hello", route, NULL);
  struct wschat_history_stats st;
  if (r == 0 && wschat_server_history_stats(srv, &st) != WSCHAT_ENOHISTORY)
    r = WSCHAT_EINVAL;
  if (r == 0) {
    struct wschat_history_options opt = {.path = argv[1]};
    r = wschat_server_open_history(srv, &opt);
  }
  if (r == 0)
    r = wschat_server_listen(srv, "127.0.0.1", 0);
  if (r == 0)
    r = wschat_server_post(srv, stop, &finished);
  if (r != 0) {
    fprintf(stderr, "hello: %s\n", wschat_strerror(r));
    return 1;
  }
  printf("libwschat %s listening on port %d\n", wschat_version_string(),
         wschat_server_port(srv));
  if (wschat_server_run(srv) != 0 || !finished ||
      wschat_server_history_stats(srv, &st) != 0 ||
      wschat_server_free(srv) != 0)
    return 1;
  return strcmp(wschat_strerror(WSCHAT_ENOMEM), "out of memory") != 0;
}
