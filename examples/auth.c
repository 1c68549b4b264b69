/*
 * auth: token authentication, decided on another thread.
 *
 *   auth [PORT]     (default 8765; 0 picks a free port)
 *
 * A client shows a token in one of three ways:
 *   ws://localhost:8765/?token=alice-secret
 *   Sec-WebSocket-Protocol: wschat, token.alice-secret
 *       (a browser: new WebSocket(url, ["wschat", "token.alice-secret"]))
 *   Authorization: Bearer alice-secret
 *
 * on_connect finds the token, defers its answer (wschat_client_defer())
 * and starts a thread to check it, as a program would when the check asks
 * a database or an identity provider. The thread posts the verdict back
 * to the loop with wschat_server_post(), the only call of this API made
 * off the loop thread. Only the client's id crosses threads: the client
 * may hang up or time out meanwhile, and wschat_server_client() then
 * returns NULL. A good token names the client (wschat_client_set_name())
 * and lets it in (wschat_client_accept()); a bad or missing one gets
 * 401 with a WWW-Authenticate header.
 *
 * The server runs on the program's own loop (uv_default_loop()).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* for <uv.h>, nanosleep, strncasecmp */
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <uv.h>
#include <wschat.h>

#define TOKEN_MAX 128

/* The accounts: a stand-in for a real identity provider. The delay plays
 * its answer time; "slow-secret" plays a slow day. */
static const struct account {
  const char *token, *name;
  unsigned delay_ms;
} accounts[] = {
    {"alice-secret", "alice", 100},
    {"bob-secret", "bob", 100},
    {"slow-secret", "sloth", 2000},
};

/* A check on its way: made in on_connect, owned by the thread, then by
 * decide() once posted (or freed by the thread if the post fails). */
struct check {
  struct wschat_server *srv;
  uint64_t client_id; /* never the pointer: see decide() */
  char token[TOKEN_MAX];
  const char *name; /* the verdict: the account's name, or NULL */
};

/* Threads still running: main() waits for none before freeing srv, which
 * they use. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int running;

/* ---- on the loop thread: the verdict ---- */

static void decide(struct wschat_server *srv, void *arg) {
  struct check *ck = arg; /* ours now */
  struct wschat_client *c = wschat_server_client(srv, ck->client_id);
  if (c == NULL) {
    /* Gone: it hung up, timed out (503), or the server shut down. */
  } else if (ck->name == NULL) {
    wschat_client_add_header(c, "WWW-Authenticate",
                             "Bearer error=\"invalid_token\"");
    wschat_client_reject(c, 401, "bad token");
  } else if (wschat_client_set_name(c, ck->name) != 0) {
    wschat_client_reject(c, 409, "already connected"); /* name taken */
  } else {
    wschat_client_accept(c); /* the welcome greets it by its name */
  }
  free(ck);
}

/* ---- on a thread of its own: the check ---- */

static void *check_token(void *arg) {
  struct check *ck = arg;
  const struct account *found = NULL;
  for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++)
    if (strcmp(accounts[i].token, ck->token) == 0) /* a real check: in */
      found = &accounts[i];                        /* constant time */
  unsigned ms = found ? found->delay_ms : 100;
  struct timespec wait = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&wait, NULL);
  ck->name = found ? found->name : NULL;
  /* Thread-safe; decide() runs soon on the loop thread and owns ck. */
  if (wschat_server_post(ck->srv, decide, ck) != 0)
    free(ck); /* the server has shut down: nobody waits for the verdict */
  pthread_mutex_lock(&lock);
  if (--running == 0)
    pthread_cond_signal(&all_done);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* ---- on the loop thread: where is the token? ---- */

/* Copies the value of "token=" in a query ("a=1&token=xyz") into buf. */
static int token_from_query(const char *q, char *buf) {
  while (*q) {
    size_t n = strcspn(q, "&"); /* one "key=value" */
    if (n > 6 && strncmp(q, "token=", 6) == 0 && n - 6 < TOKEN_MAX) {
      memcpy(buf, q + 6, n - 6);
      buf[n - 6] = '\0';
      return 0;
    }
    q += n + (q[n] == '&');
  }
  return -1;
}

/* Finds "token.XYZ" among the offered subprotocols ("wschat, token.XYZ").
 * A browser that offers subprotocols fails unless the answer names one:
 * the answer names the first one that is not the token. */
static int token_from_protocols(struct wschat_client *c, char *buf) {
  char list[512], *save = NULL;
  const char *other = NULL;
  int found = -1;
  snprintf(list, sizeof(list), "%s", wschat_client_protocols(c));
  for (char *p = strtok_r(list, ", ", &save); p;
       p = strtok_r(NULL, ", ", &save)) {
    if (found != 0 && strncmp(p, "token.", 6) == 0 &&
        strlen(p + 6) < TOKEN_MAX) {
      strcpy(buf, p + 6);
      found = 0;
    } else if (other == NULL) {
      other = p;
    }
  }
  if (found == 0 && other != NULL)
    wschat_client_set_protocol(c, other); /* copied */
  return found;
}

static int token_from_header(struct wschat_client *c, char *buf) {
  char value[7 + TOKEN_MAX]; /* "Bearer " + the token + NUL */
  int n = wschat_client_header(c, "Authorization", value, sizeof(value));
  if (n <= 7 || (size_t)n >= sizeof(value) || strncasecmp(value, "Bearer ", 7))
    return -1; /* absent, too long (n is then the length), or not Bearer */
  memcpy(buf, value + 7, (size_t)n - 7 + 1);
  return 0;
}

static int on_connect(struct wschat_client *c, void *user) {
  struct wschat_server *srv = user;
  char token[TOKEN_MAX];
  if (token_from_query(wschat_client_query(c), token) != 0 &&
      token_from_protocols(c, token) != 0 &&
      token_from_header(c, token) != 0) {
    wschat_client_add_header(c, "WWW-Authenticate", "Bearer");
    wschat_client_reject(c, 401, "token required");
    return 0;
  }
  struct check *ck = malloc(sizeof(*ck));
  pthread_t tid;
  if (ck == NULL) {
    wschat_client_reject(c, 503, "try again");
    return 0;
  }
  *ck = (struct check){.srv = srv, .client_id = wschat_client_id(c)};
  memcpy(ck->token, token, sizeof(token));
  /* One thread per check keeps the example short; a real program would
   * queue checks to a pool (uv_queue_work(), or its own). */
  pthread_mutex_lock(&lock);
  running++;
  pthread_mutex_unlock(&lock);
  if (pthread_create(&tid, NULL, check_token, ck) != 0) {
    pthread_mutex_lock(&lock);
    running--;
    pthread_mutex_unlock(&lock);
    free(ck);
    wschat_client_reject(c, 503, "try again");
    return 0;
  }
  pthread_detach(tid);
  /* The answer waits for decide(), which runs on this thread: never
   * before this hook has returned. */
  wschat_client_defer(c);
  return 0;
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
  /* Clients still waiting for a verdict are answered 503. */
  wschat_server_shutdown(app->srv, on_shutdown, app);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8765;
  struct app app = {.srv = NULL};
  uv_loop_t *loop = uv_default_loop();
  signal(SIGPIPE, SIG_IGN);

  int r = wschat_server_new(loop, &app.srv);
  if (r == 0) {
    wschat_server_on_connect(app.srv, on_connect, app.srv);
    r = wschat_server_listen(app.srv, "127.0.0.1", port);
  }
  if (r != 0) {
    fprintf(stderr, "auth: %s\n", wschat_strerror(r));
    return 1;
  }
  uv_signal_init(loop, &app.term);
  uv_signal_init(loop, &app.intr);
  app.term.data = app.intr.data = &app;
  uv_signal_start(&app.term, on_signal, SIGTERM);
  uv_signal_start(&app.intr, on_signal, SIGINT);
  printf("listening on ws://127.0.0.1:%d/\n", wschat_server_port(app.srv));
  fflush(stdout);

  uv_run(loop, UV_RUN_DEFAULT); /* ends when every handle is closed */
  pthread_mutex_lock(&lock); /* checks still sleeping: their posts fail */
  while (running > 0)
    pthread_cond_wait(&all_done, &lock);
  pthread_mutex_unlock(&lock);
  int freed = wschat_server_free(app.srv);
  int closed = uv_loop_close(loop);
  if (freed != 0 || closed != 0) {
    fprintf(stderr, "auth: unclean exit (%s, loop %d)\n",
            wschat_strerror(freed), closed);
    return 1;
  }
  return 0;
}
