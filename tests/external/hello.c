/* An outside program built against the *installed* libwschat with
 * pkg-config (see tests/install_test.sh): it creates a server on its own
 * loop, listens on a free port, shuts down and frees it. */
#include <stdio.h>
#include <string.h>

#include <wschat.h>

static void done(struct wschat_server *srv, void *user) {
  (void)srv;
  *(int *)user = 1;
}

int main(void) {
  if (wschat_version() != WSCHAT_VERSION_NUM) {
    fprintf(stderr, "header and library disagree\n");
    return 1;
  }
  struct wschat_server *srv;
  int r = wschat_server_new(NULL, &srv);
  if (r == 0)
    r = wschat_server_listen(srv, "127.0.0.1", 0);
  if (r != 0) {
    fprintf(stderr, "hello: %s\n", wschat_strerror(r));
    return 1;
  }
  int finished = 0;
  printf("libwschat %s listening on port %d\n", wschat_version_string(),
         wschat_server_port(srv));
  wschat_server_shutdown(srv, done, &finished);
  if (wschat_server_run(srv) != 0 || !finished ||
      wschat_server_free(srv) != 0)
    return 1;
  return strcmp(wschat_strerror(WSCHAT_ENOMEM), "out of memory") != 0;
}
