/*
 * chat-cli: runs libwschat's chat (or, with --echo, an echo server) on
 * ws://HOST:PORT/. It only parses flags and calls the public API: anything
 * it does, an embedding program can do too.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <ini.h>
#include <jansson.h>
#include <uv.h>
#include <wschat.h>

#include "web.h"

struct flag {
  const char *name;
  const char *arg; /* NULL for a switch */
  const char *def;
  const char *help;
};

static const struct flag flags[] = {
    {"--host", "HOST", "127.0.0.1",
     "address to listen on (IPv4 or IPv6; 0.0.0.0 or :: for all)"},
    {"--port", "PORT", "8765", "TCP port (0 picks a free one)"},
    {"--echo", NULL, "off", "run a plain echo server instead of the chat"},
    {"--max-message", "BYTES", "1048576",
     "largest message accepted (larger: close 1009)"},
    {"--max-line", "BYTES", "65536",
     "longest chat line (text) a client may send; longer: \"! line too "
     "long\" (at most (max-message - 256) / 6)"},
    {"--rate", "N", "20",
     "chat messages a client may send a second (0: no flood control); "
     "over it: \"! slow down\", then close 1008"},
    {"--burst", "N", "40", "chat messages a client may send at once"},
    {"--origin", "URL", NULL,
     "allow browsers from this origin only, e.g. https://chat.example.com "
     "(repeatable; others get HTTP 403; without it, any origin)"},
    {"--jwt-secret", "SECRET", NULL,
     "require a JSON Web Token signed HS256 with SECRET (32+ bytes) on "
     "every connection (401, or close 4001 for browsers)"},
    {"--jwt-secret-file", "PATH", NULL,
     "the same, with the secret read from PATH (one trailing newline "
     "dropped): keeps it out of the process list"},
    {"--jwt-public-key", "PEM_FILE", NULL,
     "require a JSON Web Token signed RS256 or ES256 with the key whose "
     "public half is in PEM_FILE (may go with a secret)"},
    {"--max-output", "BYTES", "1048576",
     "output queued per client before it is closed as a slow consumer (1008)"},
    {"--max-output-total", "BYTES", "268435456",
     "output queued by all clients together; past it the largest queues "
     "are closed first (1008; 0: no ceiling)"},
    {"--max-connections", "N", "10000",
     "connections at once; past it HTTP 503 (0: no limit)"},
    {"--max-per-ip", "N", "64",
     "connections at once from one address; past it HTTP 429 (0: no limit)"},
    {"--message-timeout", "SECONDS", "30",
     "time a message may take to arrive whole (longer: close 1008)"},
    {"--no-deflate", NULL, "off",
     "never negotiate permessage-deflate (RFC 7692; by default a client "
     "that offers it gets it)"},
    {"--deflate-threshold", "BYTES", "128",
     "messages shorter than this go uncompressed to deflate clients"},
    {"--max-header", "BYTES", "8192",
     "largest HTTP request head (larger: HTTP 431)"},
    {"--handshake-timeout", "SECONDS", "10",
     "time allowed to complete the HTTP upgrade"},
    {"--ping-interval", "SECONDS", "20",
     "ping a peer after this much silence (each up to a quarter sooner, to "
     "spread pings)"},
    {"--ping-timeout", "SECONDS", "20",
     "close a peer that has not answered a ping by then (1011)"},
    {"--close-timeout", "SECONDS", "3",
     "wait this long for the peer's side of a close"},
    {"--max-rooms", "N", "20",
     "rooms one client may be in at once (through the C API; 1-1000)"},
    {"--quiet-room", "N", "500",
     "rooms above N members do not announce each join and leave (0: always "
     "announce)"},
    {"--history", "PATH", "wschat.db",
     "keep room history in this SQLite file (created if missing)"},
    {"--no-history", NULL, "off", "keep no history"},
    {"--history-replay", "N", "50",
     "events of a room replayed to a client that joins it (0-10000)"},
    {"--history-flush-ms", "MS", "100",
     "commit history this often (a crash loses at most this much)"},
    {"--history-sync", "MODE", "normal",
     "full: each message is on disk before anyone receives it"},
    {"--history-max-per-room", "N", "10000",
     "events kept per room (older ones are pruned)"},
    {"--redis", "URL", NULL,
     "cluster mode: share rooms, names, whispers and history with the other "
     "nodes on this Redis (redis://HOST:PORT[/DB]); history then lives in "
     "Redis (unless --no-history), see docs/CLUSTER.md"},
    {"--node-id", "ID", NULL,
     "this node's name in the cluster (default: host:pid:random)"},
    {"--drain-seconds", "S", "10",
     "on SIGTERM stop accepting, then close clients in batches over S "
     "seconds with 1012 (service restart) so they come back; a second "
     "SIGTERM closes the rest at once (1001); 0: all at once with 1001"},
    {"--log-level", "LEVEL", "info",
     "error, warn, info (listen, refusals, drain) or debug (also every "
     "connect and disconnect)"},
    {"--log-format", "FORMAT", "text",
     "text (key=value) or json (one object a line), on stderr"},
    {"--no-metrics", NULL, "off",
     "do not serve GET /metrics (Prometheus text format; by default anyone "
     "who can reach the port can read it)"},
    {"--tls-cert", "FILE", NULL,
     "serve TLS (wss:// and https://) with this PEM certificate chain "
     "(needs --tls-key); SIGHUP reads it and the key again"},
    {"--tls-key", "FILE", NULL, "the PEM private key of --tls-cert"},
    {"--tls-ca", "FILE", NULL,
     "require a client certificate signed by a CA in this PEM file "
     "(with --tls-cert)"},
    {"--config", "FILE", NULL,
     "read settings from this INI file first: KEY = VALUE lines named as "
     "the flags without --, e.g. rate = 10 (switches: echo = true); flags "
     "win over it; SIGHUP reads it again and applies what can change at "
     "run time (limits, origins, log level)"},
    {"--help", NULL, NULL, "show this help and exit"},
    {"--version", NULL, NULL, "show the version and exit"},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: chat-cli [options]\n\n"
          "A WebSocket chat server (libwschat %s). Open "
          "http://localhost:8765/ in a browser\nfor the chat page, or "
          "connect any WebSocket client, e.g. websocat\n"
          "ws://localhost:8765.\n\n"
          "options:\n",
          wschat_version_string());
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
    char left[48];
    snprintf(left, sizeof(left), "%s%s%s", flags[i].name,
             flags[i].arg ? " " : "", flags[i].arg ? flags[i].arg : "");
    fprintf(out, "  %-28s %s", left, flags[i].help);
    if (flags[i].def)
      fprintf(out, " (default: %s)", flags[i].def);
    fputc('\n', out);
  }
}

static int fail(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "chat-cli: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, " (see chat-cli --help)\n");
  return 2;
}

static int parse_int(const char *s, long long lo, long long hi,
                     long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int parse_seconds(const char *s, long long *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 86400)
    return -1;
  *ms = (long long)(v * 1000 + 0.5);
  if (*ms < 1)
    *ms = 1;
  return 0;
}

/* The arguments parsed: argv[0], the --config file's settings as flags,
 * then the command line (from argv_from on). Owned: the array and the
 * strings from the file (from 1 to argv_from). */
struct args {
  int argc, argv_from, cap;
  char **argv;
};

static void args_free(struct args *a) {
  for (int i = 1; i < a->argv_from; i++)
    free(a->argv[i]);
  free(a->argv);
  memset(a, 0, sizeof(*a));
}

static int args_push(struct args *a, const char *s, int copy) {
  if (a->argc == a->cap) {
    int cap = a->cap ? a->cap * 2 : 32;
    char **v = realloc(a->argv, (size_t)cap * sizeof(*v));
    if (v == NULL)
      return -1;
    a->argv = v;
    a->cap = cap;
  }
  char *d = copy ? strdup(s) : (char *)s;
  if (d == NULL)
    return -1;
  a->argv[a->argc++] = d;
  return 0;
}

struct ini_ctx {
  struct args *a;
  char err[160];
};

/* One KEY = VALUE of the file: the flag --KEY with VALUE, or the switch
 * --KEY for a true value. Sections: none, or [chat-cli]. */
static int ini_entry(void *user, const char *section, const char *key,
                     const char *value) {
  struct ini_ctx *x = user;
  char flag[72];
  if (section[0] && strcmp(section, "chat-cli") != 0) {
    snprintf(x->err, sizeof(x->err), "unknown section [%s]", section);
    return 0;
  }
  snprintf(flag, sizeof(flag), "--%s", key);
  const struct flag *f = NULL;
  for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
    if (strcmp(flags[k].name, flag) == 0)
      f = &flags[k];
  if (f == NULL || strcmp(key, "config") == 0 || strcmp(key, "help") == 0 ||
      strcmp(key, "version") == 0) {
    snprintf(x->err, sizeof(x->err), "unknown setting %s", key);
    return 0;
  }
  if (f->arg == NULL) {
    int on = strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
             strcmp(value, "on") == 0 || strcmp(value, "1") == 0;
    int off = strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
              strcmp(value, "off") == 0 || strcmp(value, "0") == 0;
    if (!on && !off) {
      snprintf(x->err, sizeof(x->err), "%s takes true or false", key);
      return 0;
    }
    return !on || args_push(x->a, flag, 1) == 0;
  }
  return args_push(x->a, flag, 1) == 0 && args_push(x->a, value, 1) == 0;
}

/* The --config FILE of the command line, or NULL. */
static const char *config_path(int argc, char **argv) {
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--config=", 9) == 0)
      path = argv[i] + 9;
    else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      path = argv[++i];
  }
  return path;
}

/* argv[0], the file's settings, then the command line, into a. Returns 0,
 * or -1 after saying why on stderr. */
static int args_load(struct args *a, const char *config, int argc,
                     char **argv) {
  memset(a, 0, sizeof(*a));
  if (args_push(a, argv[0], 0) != 0)
    return -1;
  a->argv_from = 1;
  if (config != NULL) {
    struct ini_ctx x = {a, ""};
    int line = ini_parse(config, ini_entry, &x);
    a->argv_from = a->argc;
    if (line != 0) {
      if (line < 0)
        fprintf(stderr, "chat-cli: cannot read --config %s\n", config);
      else
        fprintf(stderr, "chat-cli: %s:%d: %s\n", config, line,
                x.err[0] ? x.err : "not KEY = VALUE");
      args_free(a);
      return -1;
    }
  }
  for (int i = 1; i < argc; i++)
    if (args_push(a, argv[i], 0) != 0) {
      args_free(a);
      return -1;
    }
  return 0;
}

struct settings;

struct cli {
  uv_signal_t sigint, sigterm, sighup;
  struct wschat_server *srv;
  long long drain_ms;
  int signals; /* SIGINT and SIGTERM received */
  int tls;     /* --tls-cert given: SIGHUP reloads it */
  /* For SIGHUP: the command line, the file, and what they said last. */
  int argc;
  char **argv;
  const char *config;
  struct args args;
  struct settings *st;
};

static void on_shutdown_done(struct wschat_server *srv, void *user) {
  (void)srv;
  struct cli *cli = user;
  uv_close((uv_handle_t *)&cli->sigint, NULL);
  uv_close((uv_handle_t *)&cli->sigterm, NULL);
  uv_close((uv_handle_t *)&cli->sighup, NULL);
}

/* SIGTERM (a deploy): a drain over --drain-seconds. SIGINT (a person at a
 * terminal), or a second signal during a drain: every client now, 1001.
 * A signal after that: exit at once. */
static void on_signal(uv_signal_t *h, int signum) {
  struct cli *cli = h->data;
  int r;
  if (++cli->signals == 1 && signum == SIGTERM && cli->drain_ms > 0) {
    r = wschat_server_drain(cli->srv, (uint64_t)cli->drain_ms, on_shutdown_done,
                            cli);
  } else {
    r = wschat_server_shutdown(cli->srv, on_shutdown_done, cli);
  }
  if (r == WSCHAT_ESTATE) {
    fprintf(stderr, "chat-cli: another signal, exiting now\n");
    exit(1);
  }
}

/* ---- logs: one line an event on stderr ---- */

static int log_json; /* --log-format json */

/* The time as 2026-01-31T12:34:56.789Z. */
static void log_time(char *out, size_t cap) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* A text value as is, or quoted (with \" \\ and \xNN) when it has a
 * space, a quote, an '=' or a byte that is not printable ASCII. */
static void log_text_value(FILE *out, const char *v) {
  int plain = *v != '\0';
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p <= ' ' || *p >= 0x7F || *p == '"' || *p == '=' || *p == '\\')
      plain = 0;
  if (plain) {
    fputs(v, out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < ' ' || *p >= 0x7F)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static void log_line(int level, const char *event,
                     const struct wschat_log_field *f, size_t n, void *user) {
  (void)user;
  char ts[40];
  log_time(ts, sizeof(ts));
  if (log_json) {
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(wschat_log_level_name(level)));
    json_object_set_new(o, "event", json_string(event));
    for (size_t i = 0; i < n; i++) {
      json_t *v = f[i].str ? json_string(f[i].str) : json_integer(f[i].num);
      json_object_set_new(o, f[i].key, v ? v : json_string("?"));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL)
      fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(o);
    return;
  }
  /* One fprintf per line would interleave less, but stderr is unbuffered
   * anyway: build the line, then write it once. */
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m == NULL)
    return;
  fprintf(m, "%s %s %s", ts, wschat_log_level_name(level), event);
  for (size_t i = 0; i < n; i++) {
    fprintf(m, " %s=", f[i].key);
    if (f[i].str)
      log_text_value(m, f[i].str);
    else
      fprintf(m, "%lld", (long long)f[i].num);
  }
  fputc('\n', m);
  fclose(m);
  fwrite(buf, 1, len, stderr);
  free(buf);
}

static int parse_level(const char *s) {
  for (int l = WSCHAT_LOG_ERROR; l <= WSCHAT_LOG_DEBUG; l++)
    if (strcmp(s, wschat_log_level_name(l)) == 0)
      return l;
  return -1;
}

/* GET /metrics: the library's counters, as Prometheus scrapes them. */
static void serve_metrics(struct wschat_http_request *req, void *user) {
  struct wschat_server *srv = user;
  char small[16384], *buf = small;
  size_t n = wschat_server_metrics(srv, small, sizeof(small));
  if (n >= sizeof(small) && (buf = malloc(n + 1)) != NULL)
    n = wschat_server_metrics(srv, buf, n + 1);
  if (buf == NULL)
    wschat_http_respond(req, 500, NULL, "out of memory\n", 14);
  else
    wschat_http_respond(req, 200, "text/plain; version=0.0.4", buf, n);
  if (buf != small)
    free(buf);
}

/* Raise the open-file limit to the hard limit: each client is one fd. */
/* Reads a small file (a secret, a PEM key) into a malloc'd buffer of
 * *len bytes plus a NUL; NULL (errno set) if it cannot, or is over 64 KiB. */
static char *read_small_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = malloc(65537);
  size_t n = buf ? fread(buf, 1, 65537, f) : 0;
  int bad = buf == NULL || ferror(f) || n > 65536;
  fclose(f);
  if (bad) {
    int err = buf == NULL ? ENOMEM : EFBIG;
    free(buf);
    errno = err;
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Sets the server's identity keys from the flags. Returns 0, or 2 after
 * saying why on stderr (never printing the secret). */
static int set_identity(struct wschat_server *srv, const char *secret,
                        const char *secret_file, const char *key_file) {
  size_t len = 0;
  char *owned = NULL;
  if (secret_file != NULL) {
    if ((owned = read_small_file(secret_file, &len)) == NULL) {
      fprintf(stderr, "chat-cli: cannot read --jwt-secret-file %s: %s\n",
              secret_file, strerror(errno));
      return 2;
    }
    if (len && owned[len - 1] == '\n')
      len--;
    if (len && owned[len - 1] == '\r')
      len--;
    secret = owned;
  } else if (secret != NULL) {
    len = strlen(secret);
  }
  if (secret != NULL &&
      wschat_server_set_jwt_secret(srv, secret, len) != 0) {
    fprintf(stderr, "chat-cli: the JWT secret must be 32 to 4096 bytes "
                    "(it is %zu)\n",
            len);
    free(owned);
    return 2;
  }
  free(owned);
  if (key_file != NULL) {
    char *pem = read_small_file(key_file, &len);
    if (pem == NULL) {
      fprintf(stderr, "chat-cli: cannot read --jwt-public-key %s: %s\n",
              key_file, strerror(errno));
      return 2;
    }
    int r = wschat_server_set_jwt_public_key(srv, pem, len);
    free(pem);
    if (r != 0) {
      fprintf(stderr,
              "chat-cli: --jwt-public-key %s: not a PEM public key of RSA "
              "(2048 bits or more) or EC P-256 (%s)\n",
              key_file, wschat_strerror(r));
      return 2;
    }
  }
  return 0;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Every setting, from the flags' defaults, the --config file and the
 * command line, in that order: the last one wins. */
struct settings {
  const char *host;
  long long port;
  struct {
    long long value;
    enum wschat_option opt;
    const char *name; /* the flag */
  } opts[32];
  int nopts, echo;
  const char *origins[64];
  int norigins;
  int argv_from;     /* where the command line begins in argv */
  int origins_reset; /* the command line gave --origin */
  struct wschat_history_options hist;
  int history, metrics;
  long long drain_ms;
  int log_level, log_json;
  const char *jwt_secret, *jwt_secret_file, *jwt_key;
  const char *tls_cert, *tls_key, *tls_ca;
  const char *redis, *node_id; /* cluster mode (NULL: none) */
};

/* Parses argv into st (set to its defaults first). Returns -1 to go on,
 * or the exit status (after --help, --version or an error on stderr). */
static int parse(struct settings *st, int argc, char **argv) {
  static const struct settings defaults = {
      .host = "127.0.0.1",
      .port = 8765,
      .hist = {.path = "wschat.db"},
      .history = 1,
      .metrics = 1,
      .drain_ms = 10000,
      .log_level = WSCHAT_LOG_INFO,
  };
  int argv_from = st->argv_from;
  *st = defaults;
  st->argv_from = argv_from;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    char name[64];
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof(name))
      return fail("unknown option %s%s", a, "");
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    const struct flag *f = NULL;
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
      if (strcmp(flags[k].name, name) == 0)
        f = &flags[k];
    if (f == NULL)
      return fail("unknown option %s%s", name, "");
    if (f->arg) {
      if (eq)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return fail("%s needs a value (%s)", name, f->arg);
    } else if (eq) {
      return fail("%s takes no value%s", name, "");
    }
    long long v;
    if (strcmp(name, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(name, "--version") == 0) {
      printf("chat-cli %s\n", wschat_version_string());
      return 0;
    } else if (strcmp(name, "--echo") == 0) {
      st->echo = 1;
    } else if (strcmp(name, "--host") == 0) {
      st->host = val;
    } else if (strcmp(name, "--config") == 0) {
      /* read before (see main) */
    } else if (strcmp(name, "--origin") == 0) {
      if (i >= st->argv_from && !st->origins_reset) {
        st->norigins = 0; /* the command line's list replaces the file's */
        st->origins_reset = 1;
      }
      if (st->norigins == (int)(sizeof(st->origins) / sizeof(st->origins[0])))
        return fail("too many --origin flags (at most 64)%s%s", "", "");
      st->origins[st->norigins++] = val;
    } else if (strcmp(name, "--jwt-secret") == 0) {
      st->jwt_secret = val;
    } else if (strcmp(name, "--jwt-secret-file") == 0) {
      st->jwt_secret_file = val;
    } else if (strcmp(name, "--jwt-public-key") == 0) {
      st->jwt_key = val;
    } else if (strcmp(name, "--tls-cert") == 0) {
      st->tls_cert = val;
    } else if (strcmp(name, "--tls-key") == 0) {
      st->tls_key = val;
    } else if (strcmp(name, "--tls-ca") == 0) {
      st->tls_ca = val;
    } else if (strcmp(name, "--history") == 0) {
      if (val[0] == '\0')
        return fail("--history needs a file name%s%s", "", "");
      st->hist.path = val;
      st->history = 1;
    } else if (strcmp(name, "--redis") == 0) {
      if (strncmp(val, "redis://", 8) != 0 || val[8] == '\0')
        return fail("invalid --redis %s (expected redis://HOST:PORT[/DB])%s",
                    val, "");
      st->redis = val;
    } else if (strcmp(name, "--node-id") == 0) {
      st->node_id = val;
    } else if (strcmp(name, "--no-history") == 0) {
      st->history = 0;
    } else if (strcmp(name, "--no-metrics") == 0) {
      st->metrics = 0;
    } else if (strcmp(name, "--log-level") == 0) {
      if ((st->log_level = parse_level(val)) < 0)
        return fail("invalid --log-level %s (expected error, warn, info or "
                    "debug)%s",
                    val, "");
    } else if (strcmp(name, "--log-format") == 0) {
      if (strcmp(val, "text") != 0 && strcmp(val, "json") != 0)
        return fail("invalid --log-format %s (expected text or json)%s", val,
                    "");
      st->log_json = strcmp(val, "json") == 0;
    } else if (strcmp(name, "--drain-seconds") == 0) {
      if (strcmp(val, "0") != 0 && parse_seconds(val, &st->drain_ms) != 0)
        return fail("invalid --drain-seconds %s (expected seconds, 0 for "
                    "none)%s",
                    val, "");
      if (strcmp(val, "0") == 0)
        st->drain_ms = 0;
    } else if (strcmp(name, "--history-flush-ms") == 0) {
      if (parse_int(val, 1, 60000, &v) != 0)
        return fail("invalid --history-flush-ms %s (expected 1-60000)%s", val,
                    "");
      st->hist.flush_ms = (unsigned)v;
    } else if (strcmp(name, "--history-sync") == 0) {
      if (strcmp(val, "full") != 0 && strcmp(val, "normal") != 0)
        return fail("invalid --history-sync %s (expected full or normal)%s",
                    val, "");
      st->hist.sync_full = strcmp(val, "full") == 0;
    } else if (strcmp(name, "--history-max-per-room") == 0) {
      if (parse_int(val, 1, LLONG_MAX, &v) != 0)
        return fail("invalid --history-max-per-room %s (expected a number "
                    "from 1)%s",
                    val, "");
      st->hist.max_per_room = (size_t)v;
    } else if (strcmp(name, "--port") == 0) {
      if (parse_int(val, 0, 65535, &st->port) != 0)
        return fail("invalid --port %s (expected 0-65535)%s", val, "");
    } else {
      enum wschat_option opt;
      int seconds = 1;
      long long lo = 1;
      if (strcmp(name, "--max-rooms") == 0)
        opt = WSCHAT_OPT_MAX_ROOMS, seconds = 0;
      else if (strcmp(name, "--no-deflate") == 0)
        opt = WSCHAT_OPT_DEFLATE, seconds = 0, lo = 0, val = "0";
      else if (strcmp(name, "--deflate-threshold") == 0)
        opt = WSCHAT_OPT_DEFLATE_THRESHOLD, seconds = 0, lo = 0;
      else if (strcmp(name, "--history-replay") == 0)
        opt = WSCHAT_OPT_HISTORY_REPLAY, seconds = 0, lo = 0;
      else if (strcmp(name, "--quiet-room") == 0)
        opt = WSCHAT_OPT_QUIET_ROOM, seconds = 0, lo = 0;
      else if (strcmp(name, "--max-message") == 0)
        opt = WSCHAT_OPT_MAX_MESSAGE, seconds = 0;
      else if (strcmp(name, "--max-line") == 0)
        opt = WSCHAT_OPT_MAX_LINE, seconds = 0;
      else if (strcmp(name, "--rate") == 0)
        opt = WSCHAT_OPT_RATE, seconds = 0, lo = 0;
      else if (strcmp(name, "--burst") == 0)
        opt = WSCHAT_OPT_BURST, seconds = 0;
      else if (strcmp(name, "--max-output") == 0)
        opt = WSCHAT_OPT_MAX_OUTPUT, seconds = 0;
      else if (strcmp(name, "--max-output-total") == 0)
        opt = WSCHAT_OPT_MAX_OUTPUT_TOTAL, seconds = 0, lo = 0;
      else if (strcmp(name, "--max-connections") == 0)
        opt = WSCHAT_OPT_MAX_CONNECTIONS, seconds = 0, lo = 0;
      else if (strcmp(name, "--max-per-ip") == 0)
        opt = WSCHAT_OPT_MAX_PER_IP, seconds = 0, lo = 0;
      else if (strcmp(name, "--message-timeout") == 0)
        opt = WSCHAT_OPT_MESSAGE_TIMEOUT_MS;
      else if (strcmp(name, "--max-header") == 0)
        opt = WSCHAT_OPT_MAX_HEADER, seconds = 0;
      else if (strcmp(name, "--handshake-timeout") == 0)
        opt = WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS;
      else if (strcmp(name, "--ping-interval") == 0)
        opt = WSCHAT_OPT_PING_INTERVAL_MS;
      else if (strcmp(name, "--ping-timeout") == 0)
        opt = WSCHAT_OPT_PING_TIMEOUT_MS;
      else
        opt = WSCHAT_OPT_CLOSE_TIMEOUT_MS;
      if (seconds ? parse_seconds(val, &v) != 0
                  : parse_int(val, lo, LLONG_MAX, &v) != 0)
        return fail(seconds ? "invalid %s %s (expected seconds > 0)"
                            : "invalid %s %s (expected a number)",
                    name, val);
      int k = 0; /* a repeated flag: the last one wins */
      while (k < st->nopts && st->opts[k].opt != opt)
        k++;
      st->opts[k].opt = opt;
      st->opts[k].value = v;
      st->opts[k].name = f->name;
      if (k == st->nopts)
        st->nopts++;
    }
  }

  return -1;
}

/* ---- SIGHUP: the file again ---- */

static void log_change(const char *setting, const char *old, const char *now,
                       int restart) {
  struct wschat_log_field f[] = {
      {"setting", setting, 0}, {"old", old, 0}, {"new", now, 0}};
  if (restart) {
    struct wschat_log_field g[] = {f[0], {"needs", "restart", 0}};
    log_line(WSCHAT_LOG_WARN, "reload", g, 2, NULL);
    return;
  }
  log_line(WSCHAT_LOG_INFO, "reload", f, 3, NULL);
}

/* An option's value in st, or its flag's default. */
static long long opt_value(const struct settings *st, enum wschat_option opt,
                           const char *flag) {
  for (int i = 0; i < st->nopts; i++)
    if (st->opts[i].opt == opt)
      return st->opts[i].value;
  if (opt == WSCHAT_OPT_DEFLATE)
    return 1; /* a switch (--no-deflate): not given, deflate is on */
  const struct flag *f = NULL;
  for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
    if (strcmp(flags[k].name, flag) == 0)
      f = &flags[k];
  if (f == NULL || f->def == NULL)
    return -1;
  struct settings d = {.argv_from = 1};
  char *av[] = {"chat-cli", (char *)flag, (char *)f->def, NULL};
  if (parse(&d, 3, av) >= 0 || d.nopts != 1)
    return -1;
  return d.opts[0].value;
}

static void join_origins(const struct settings *st, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < st->norigins && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "",
                          st->origins[i]);
}

static int same_str(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void reload(struct cli *cli) {
  struct args na;
  struct settings *ns = calloc(1, sizeof(*ns));
  if (ns == NULL || args_load(&na, cli->config, cli->argc, cli->argv) != 0) {
    struct wschat_log_field f[] = {{"error", "cannot read the file", 0}};
    log_line(WSCHAT_LOG_ERROR, "reload", f, 1, NULL);
    free(ns);
    return;
  }
  ns->argv_from = na.argv_from;
  if (parse(ns, na.argc, na.argv) >= 0) {
    struct wschat_log_field f[] = {{"error", "invalid settings, kept", 0}};
    log_line(WSCHAT_LOG_ERROR, "reload", f, 1, NULL);
    args_free(&na);
    free(ns);
    return;
  }
  struct settings *os = cli->st;
  char a[1024], b[1024];
  /* The options: every one either names, at its value or its default. */
  for (int pass = 0; pass < 2; pass++) {
    const struct settings *from = pass ? os : ns;
    for (int i = 0; i < from->nopts; i++) {
      enum wschat_option opt = from->opts[i].opt;
      const char *name = from->opts[i].name;
      int seen = 0; /* the second pass: options only the old ones had */
      for (int k = 0; pass && k < ns->nopts; k++)
        seen |= ns->opts[k].opt == opt;
      if (seen)
        continue;
      long long ov = opt_value(os, opt, name), nv = opt_value(ns, opt, name);
      if (ov == nv)
        continue;
      snprintf(a, sizeof(a), "%lld", ov);
      snprintf(b, sizeof(b), "%lld", nv);
      if (wschat_server_set_option(cli->srv, opt, nv) != 0) {
        struct wschat_log_field f[] = {{"setting", name + 2, 0},
                                       {"error", "out of range, kept", 0}};
        log_line(WSCHAT_LOG_ERROR, "reload", f, 2, NULL);
        for (int k = 0; k < ns->nopts; k++) /* what runs is what is kept */
          if (ns->opts[k].opt == opt)
            ns->opts[k].value = ov;
        continue;
      }
      log_change(name + 2, a, b, 0);
    }
  }
  join_origins(os, a, sizeof(a));
  join_origins(ns, b, sizeof(b));
  if (strcmp(a, b) != 0) {
    wschat_server_clear_origins(cli->srv);
    for (int i = 0; i < ns->norigins; i++)
      if (wschat_server_add_origin(cli->srv, ns->origins[i]) != 0) {
        struct wschat_log_field f[] = {{"setting", "origin", 0},
                                       {"error", ns->origins[i], 0}};
        log_line(WSCHAT_LOG_ERROR, "reload", f, 2, NULL);
      }
    log_change("origin", a, b, 0);
  }
  if (ns->log_level != os->log_level) {
    wschat_server_set_log(cli->srv, log_line, NULL, ns->log_level);
    log_change("log-level", wschat_log_level_name(os->log_level),
               wschat_log_level_name(ns->log_level), 0);
  }
  if (ns->log_json != os->log_json) {
    log_json = ns->log_json;
    log_change("log-format", os->log_json ? "json" : "text",
               ns->log_json ? "json" : "text", 0);
  }
  if (ns->drain_ms != os->drain_ms) {
    snprintf(a, sizeof(a), "%lld", os->drain_ms);
    snprintf(b, sizeof(b), "%lld", ns->drain_ms);
    cli->drain_ms = ns->drain_ms;
    log_change("drain-seconds (ms)", a, b, 0);
  }
  /* What only a restart changes. */
  if (strcmp(ns->host, os->host) != 0)
    log_change("host", os->host, ns->host, 1);
  if (ns->port != os->port)
    log_change("port", "", "", 1);
  if (ns->echo != os->echo)
    log_change("echo", "", "", 1);
  if (ns->metrics != os->metrics)
    log_change("no-metrics", "", "", 1);
  if (!same_str(ns->tls_cert, os->tls_cert) ||
      !same_str(ns->tls_key, os->tls_key) || !same_str(ns->tls_ca, os->tls_ca))
    log_change("tls-cert, tls-key or tls-ca", "", "", 1);
  if (ns->history != os->history || strcmp(ns->hist.path, os->hist.path) ||
      ns->hist.flush_ms != os->hist.flush_ms ||
      ns->hist.sync_full != os->hist.sync_full ||
      ns->hist.max_per_room != os->hist.max_per_room)
    log_change("history", "", "", 1);
  args_free(&cli->args);
  cli->args = na;
  free(os);
  cli->st = ns;
}

static void on_hup(uv_signal_t *h, int signum) {
  (void)signum;
  struct cli *cli = h->data;
  if (cli->config != NULL)
    reload(cli);
  /* A renewed certificate: the files named at start are read again (the
   * library logs the outcome; on failure the old ones stay). */
  if (cli->tls)
    wschat_server_reload_tls(cli->srv);
}

int main(int argc, char **argv) {
  static struct cli cli;
  struct settings *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return 1;
  cli.st = st; /* reachable from here on, whatever return comes */
  cli.argc = argc;
  cli.argv = argv;
  cli.config = config_path(argc, argv);
  if (args_load(&cli.args, cli.config, argc, argv) != 0)
    return 2;
  st->argv_from = cli.args.argv_from;
  int r = parse(st, cli.args.argc, cli.args.argv);
  if (r >= 0) {
    args_free(&cli.args);
    free(st);
    return r;
  }
  cli.drain_ms = st->drain_ms;
  log_json = st->log_json;
  const char *host = st->host;
  long long port = st->port;
  int echo = st->echo, history = st->history;
  struct wschat_history_options hist = st->hist;

  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  r = wschat_server_new(NULL, &cli.srv);
  if (r != 0) {
    fprintf(stderr, "chat-cli: %s\n", wschat_strerror(r));
    return 1;
  }
  wschat_server_set_log(cli.srv, log_line, NULL, st->log_level);
  if (echo)
    wschat_server_set_option(cli.srv, WSCHAT_OPT_MODE, WSCHAT_MODE_ECHO);
  for (int i = 0; i < st->nopts; i++)
    if (wschat_server_set_option(cli.srv, st->opts[i].opt, st->opts[i].value) !=
        0) {
      fprintf(stderr, "chat-cli: a value is out of range (see chat-cli "
                      "--help)\n");
      wschat_server_free(cli.srv);
      return 2;
    }
  for (int i = 0; i < st->norigins; i++)
    if (wschat_server_add_origin(cli.srv, st->origins[i]) != 0) {
      fprintf(stderr,
              "chat-cli: invalid --origin %s (expected SCHEME://HOST[:PORT], "
              "e.g. https://chat.example.com) (see chat-cli --help)\n",
              st->origins[i]);
      wschat_server_free(cli.srv);
      return 2;
    }
  if (st->jwt_secret != NULL && st->jwt_secret_file != NULL) {
    fprintf(stderr, "chat-cli: give --jwt-secret or --jwt-secret-file, not "
                    "both\n");
    wschat_server_free(cli.srv);
    return 2;
  }
  if ((r = set_identity(cli.srv, st->jwt_secret, st->jwt_secret_file,
                        st->jwt_key)) != 0) {
    wschat_server_free(cli.srv);
    return r;
  }
  if ((st->tls_cert != NULL) != (st->tls_key != NULL) ||
      (st->tls_ca != NULL && st->tls_cert == NULL)) {
    fprintf(stderr, "chat-cli: --tls-cert and --tls-key go together (and "
                    "--tls-ca needs them)\n");
    wschat_server_free(cli.srv);
    return 2;
  }
  if (st->tls_cert != NULL &&
      (r = wschat_server_set_tls(cli.srv, st->tls_cert, st->tls_key,
                                 st->tls_ca)) != 0) {
    fprintf(stderr, "chat-cli: cannot serve TLS with %s and %s: %s\n",
            st->tls_cert, st->tls_key, wschat_strerror(r));
    wschat_server_free(cli.srv);
    return 1;
  }
  cli.tls = st->tls_cert != NULL;
  if (st->redis != NULL && !echo) {
    struct wschat_cluster_options co = {
        .node_id = st->node_id,
        .history = history,
        .max_per_room = hist.max_per_room,
    };
    if ((r = wschat_server_set_cluster(cli.srv, st->redis, &co)) != 0) {
      fprintf(stderr, "chat-cli: --redis %s: %s\n", st->redis,
              r == WSCHAT_EINVAL ? "invalid URL or --node-id"
                                 : wschat_strerror(r));
      wschat_server_free(cli.srv);
      return 2;
    }
    history = 0; /* in Redis: no SQLite file */
  }
  if (history && !echo &&
      (r = wschat_server_open_history(cli.srv, &hist)) != 0) {
    /* The store said why on stderr. The chat is worth more than its
     * history: it runs without, and says so. */
    fprintf(stderr,
            "chat-cli: running WITHOUT history: %s: %s (give each server "
            "its own --history PATH, or --no-history)\n",
            hist.path, wschat_strerror(r));
    history = 0;
  }
  /* The chat page on GET / (web/, compiled in); the echo server has none. */
  if (!echo && (r = web_register(cli.srv)) != 0) {
    fprintf(stderr, "chat-cli: cannot serve the web page: %s\n",
            wschat_strerror(r));
    wschat_server_free(cli.srv);
    return 1;
  }
  if (st->metrics && (r = wschat_server_route(cli.srv, "/metrics",
                                              serve_metrics, cli.srv)) != 0) {
    fprintf(stderr, "chat-cli: cannot serve /metrics: %s\n",
            wschat_strerror(r));
    wschat_server_free(cli.srv);
    return 1;
  }
  r = wschat_server_listen(cli.srv, host, (int)port);
  if (r != 0) {
    fprintf(stderr, "chat-cli: cannot listen on %s port %lld: %s\n", host,
            port, wschat_strerror(r));
    wschat_server_free(cli.srv);
    return r == WSCHAT_EADDR && strchr(host, '.') == NULL &&
                   strchr(host, ':') == NULL
               ? 2
               : 1;
  }
  uv_loop_t *loop = wschat_server_loop(cli.srv);
  uv_signal_init(loop, &cli.sigint);
  uv_signal_init(loop, &cli.sigterm);
  uv_signal_init(loop, &cli.sighup);
  cli.sigint.data = cli.sigterm.data = cli.sighup.data = &cli;
  uv_signal_start(&cli.sighup, on_hup, SIGHUP);
  uv_signal_start(&cli.sigint, on_signal, SIGINT);
  uv_signal_start(&cli.sigterm, on_signal, SIGTERM);
  printf(strchr(host, ':') ? "listening on %s://[%s]:%d/\n"
                           : "listening on %s://%s:%d/\n",
         cli.tls ? "wss" : "ws", host, wschat_server_port(cli.srv));
  fflush(stdout);
  r = wschat_server_run(cli.srv);
  struct wschat_history_stats hs;
  if (history && !echo && wschat_server_history_stats(cli.srv, &hs) == 0)
    fprintf(stderr,
            "history: appended=%llu written=%llu dropped=%llu "
            "write_errors=%llu queue_peak=%zu commits=%llu\n",
            (unsigned long long)hs.appended, (unsigned long long)hs.written,
            (unsigned long long)hs.dropped,
            (unsigned long long)hs.write_errors, hs.queue_peak,
            (unsigned long long)hs.commits);
  wschat_server_free(cli.srv);
  args_free(&cli.args);
  free(cli.st);
  return r == 0 ? 0 : 1;
}
