/*
 * text_proto: the plain-text protocol of README.md, client side in: a new
 * client's welcome, and each line or /command it sends, turned into calls
 * of the chat core. What the chat delivers is rendered by the text view
 * (view.h); the replies that only the sender sees ("! ..." errors, /help,
 * /rooms, /users) are written here and handed to io->reply.
 *
 * Owns nothing. Never touches sockets: io->reply and io->quit do that.
 */
#ifndef WSCHAT_TEXT_PROTO_H
#define WSCHAT_TEXT_PROTO_H

#include <stddef.h>

struct wschat__chat;
struct wschat__cmd;
struct wschat__member;

/* The most bytes of a /quit reason (what a close frame holds); longer ones
 * are cut at a character's start. */
#define WSCHAT__REASON_MAX 123

struct wschat__text_io {
  /* One message to m (server text: may hold several lines). */
  void (*reply)(void *user, struct wschat__member *m, const char *text,
                size_t len);
  /* /quit: m leaves the chat (the chat core is told already) and closes
   * with 1000 and reason (NULL or blanked text). */
  void (*quit)(void *user, struct wschat__member *m, const char *reason);
  /* /history N: the last n events of m's room, answered by the caller
   * later (NULL: no history). Returns 0, WSCHAT_ENOHISTORY, or another
   * error (the store is busy or out of memory). */
  int (*history)(void *user, struct wschat__member *m, unsigned n);
};

struct wschat__text {
  struct wschat__chat *chat;
  const struct wschat__text_io *io;
  void *user;
};

/*
 * A client is open: it enters the chat under name (set by the application;
 * NULL: ?name= from query, else guest-N) in room (the application's; NULL:
 * ?room=, else lobby), gets its welcome and any "! " line about what it
 * asked for, then its room is told. Returns 0 or WSCHAT_ENOMEM.
 */
int wschat__text_open(const struct wschat__text *t, struct wschat__member *m,
                      const char *query, const char *name, const char *room);

/* One line (valid UTF-8) from an open client. */
void wschat__text_line(const struct wschat__text *t, struct wschat__member *m,
                       const char *text, size_t len);
/* The same, parsed already (by wschat__cmd_parse(); the session parses
 * first, to know what the message costs in flood control). */
void wschat__text_command(const struct wschat__text *t,
                          struct wschat__member *m,
                          const struct wschat__cmd *cmd);

/* The help text (built-in commands, then the registered ones); a malloc'd
 * string the caller frees, or NULL when out of memory. */
char *wschat__text_help(const struct wschat__chat *ch);

#endif
