/*
 * command: the chat's command-line parser and the name rules. Pure
 * functions over buffers (no allocation, no I/O); slices point into the
 * line that was parsed.
 */
#ifndef WSCHAT_COMMAND_H
#define WSCHAT_COMMAND_H

#include <stddef.h>

enum wschat__cmd_kind {
  WSCHAT__CMD_LINE = 0, /* a plain chat line (text = the line) */
  WSCHAT__CMD_HELP,
  WSCHAT__CMD_NICK,
  WSCHAT__CMD_JOIN,
  WSCHAT__CMD_LEAVE,
  WSCHAT__CMD_ROOMS,
  WSCHAT__CMD_USERS,
  WSCHAT__CMD_WHISPER, /* also /w and /msg */
  WSCHAT__CMD_ME,
  WSCHAT__CMD_QUIT,
  WSCHAT__CMD_HISTORY, /* /history [N] */
  WSCHAT__CMD_UNKNOWN, /* word = the unknown command, with its '/' */
};

struct wschat__slice {
  const char *p;
  size_t len;
};

struct wschat__cmd {
  enum wschat__cmd_kind kind;
  struct wschat__slice word; /* "/join" as typed; empty for a line */
  struct wschat__slice tail; /* everything after the word, trimmed */
  struct wschat__slice arg;  /* the first word of tail */
  struct wschat__slice rest; /* tail after arg, trimmed */
  struct wschat__slice text; /* for a line: the text ("//x" gives "/x") */
};

/* A command as the public API shows it (struct wschat_command is opaque
 * in wschat.h): the word without its '/', NUL-terminated (cut at 63
 * bytes), and slices into the parsed line. */
struct wschat_command {
  char name[64];
  struct wschat__slice args, arg, rest;
};

/* Fills out from a parsed command (any kind but WSCHAT__CMD_LINE). */
void wschat__cmd_public(const struct wschat__cmd *cmd,
                        struct wschat_command *out);

/* Parses one line. Never fails: anything that is not a command is a line. */
void wschat__cmd_parse(const char *line, size_t len, struct wschat__cmd *out);

/* 1 if s is a valid user name: 1-32 of A-Z a-z 0-9 - _. */
int wschat__name_valid(const char *s, size_t len);
/* 1 if s is a valid room name: 1-64 of A-Z a-z 0-9 - _ . */
int wschat__room_valid(const char *s, size_t len);

#endif
