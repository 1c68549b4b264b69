/* command: see command.h. */
#include "command.h"

#include <string.h>
#include <strings.h>

#include "wschat.h"

static int is_space(char c) { return c == ' ' || c == '\t'; }

static struct wschat__slice trim(const char *p, size_t len) {
  while (len > 0 && is_space(*p))
    p++, len--;
  while (len > 0 && is_space(p[len - 1]))
    len--;
  struct wschat__slice s = {p, len};
  return s;
}

static const struct {
  const char *word;
  enum wschat__cmd_kind kind;
} commands[] = {
    {"help", WSCHAT__CMD_HELP},   {"nick", WSCHAT__CMD_NICK},
    {"join", WSCHAT__CMD_JOIN},   {"leave", WSCHAT__CMD_LEAVE},
    {"part", WSCHAT__CMD_LEAVE},  {"rooms", WSCHAT__CMD_ROOMS},
    {"users", WSCHAT__CMD_USERS}, {"who", WSCHAT__CMD_USERS},
    {"whisper", WSCHAT__CMD_WHISPER}, {"w", WSCHAT__CMD_WHISPER},
    {"msg", WSCHAT__CMD_WHISPER}, {"me", WSCHAT__CMD_ME},
    {"quit", WSCHAT__CMD_QUIT},   {"history", WSCHAT__CMD_HISTORY},
};

void wschat__cmd_parse(const char *line, size_t len, struct wschat__cmd *out) {
  struct wschat__slice none = {line, 0};
  out->kind = WSCHAT__CMD_LINE;
  out->word = out->tail = out->arg = out->rest = none;
  out->text.p = line;
  out->text.len = len;
  if (len < 2 || line[0] != '/' || is_space(line[1]))
    return;
  if (line[1] == '/') { /* "//text" sends "/text" as a line */
    out->text.p = line + 1;
    out->text.len = len - 1;
    return;
  }
  size_t w = 1;
  while (w < len && !is_space(line[w]))
    w++;
  out->word.p = line;
  out->word.len = w;
  out->tail = trim(line + w, len - w);
  size_t a = 0;
  while (a < out->tail.len && !is_space(out->tail.p[a]))
    a++;
  out->arg.p = out->tail.p;
  out->arg.len = a;
  out->rest = trim(out->tail.p + a, out->tail.len - a);
  out->kind = WSCHAT__CMD_UNKNOWN;
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    const char *cw = commands[i].word;
    size_t n = 0;
    while (cw[n])
      n++;
    if (n == w - 1 && strncasecmp(cw, line + 1, n) == 0) {
      out->kind = commands[i].kind;
      break;
    }
  }
}

static int valid(const char *s, size_t len, size_t max, int dot) {
  if (len < 1 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_' || (dot && c == '.')))
      return 0;
  }
  return 1;
}

int wschat__name_valid(const char *s, size_t len) {
  return valid(s, len, 32, 0);
}

int wschat__room_valid(const char *s, size_t len) {
  return valid(s, len, 64, 1);
}

void wschat__cmd_public(const struct wschat__cmd *cmd,
                        struct wschat_command *out) {
  size_t n = cmd->word.len > 0 ? cmd->word.len - 1 : 0;
  if (n >= sizeof(out->name))
    n = sizeof(out->name) - 1;
  if (n)
    memcpy(out->name, cmd->word.p + 1, n);
  out->name[n] = '\0';
  out->args = cmd->tail;
  out->arg = cmd->arg;
  out->rest = cmd->rest;
}

/* ---- public accessors ---- */

const char *wschat_command_name(const struct wschat_command *cmd) {
  return cmd->name;
}

static const char *slice(struct wschat__slice s, size_t *len) {
  if (len)
    *len = s.len;
  return s.len ? s.p : "";
}

const char *wschat_command_args(const struct wschat_command *cmd,
                                size_t *len) {
  return slice(cmd->args, len);
}
const char *wschat_command_arg(const struct wschat_command *cmd, size_t *len) {
  return slice(cmd->arg, len);
}
const char *wschat_command_rest(const struct wschat_command *cmd,
                                size_t *len) {
  return slice(cmd->rest, len);
}
