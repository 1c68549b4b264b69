/* text_proto: see text_proto.h. */
#include "text_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "command.h"
#include "http.h"
#include "presence.h"
#include "roster.h"
#include "room.h"
#include "utf8.h"

static void reply(const struct wschat__text *t, struct wschat__member *m,
                  const char *line) {
  t->io->reply(t->user, m, line, strlen(line));
}

/* A short formatted line to one client (names and rooms only, so it
 * fits; longer output is cut, never overflowed). */
__attribute__((format(printf, 3, 4))) static void
replyf(const struct wschat__text *t, struct wschat__member *m,
       const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  /* clang-14's analyzer does not see va_start above: a false positive. */
  vsnprintf(buf, sizeof(buf), fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  reply(t, m, buf);
}

/* A growable text buffer for listings. */
struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t len) {
  if (b->failed)
    return;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_send(const struct wschat__text *t, struct wschat__member *m,
                    struct sbuf *b) {
  if (!b->failed && b->p)
    t->io->reply(t->user, m, b->p, b->len);
  else
    reply(t, m, "! out of memory, try again");
  free(b->p);
}

/* Shows a user-supplied token safely inside an error line. */
static void shown(char *out, size_t cap, const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 4 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    out[n++] = (ch >= 0x20 && ch < 0x7F) ? (char)ch : '?';
  }
  if (len > 0 && n + 4 >= cap && n >= 3)
    memcpy(out + n - 3, "...", 3);
  out[n] = '\0';
}

static const char name_rule[] = "use 1-32 letters, digits, - or _";
static const char room_rule[] = "use 1-64 letters, digits, -, _ or .";

/* The "! " line for a name that could not be had. */
static void name_error(char *out, size_t cap, int r, const char *show) {
  if (r == WSCHAT_ENAMETAKEN)
    snprintf(out, cap, "! name already taken: %s", show);
  else if (r == WSCHAT_ERESERVED)
    snprintf(out, cap, "! name reserved: %s", show);
  else if (r == WSCHAT_ENOMEM)
    snprintf(out, cap, "! out of memory, try again");
  else
    snprintf(out, cap, "! invalid name: %s (%s)", show, name_rule);
}

int wschat__text_open(const struct wschat__text *t, struct wschat__member *m,
                      const char *query, const char *name, const char *room) {
  struct wschat__chat *ch = t->chat;
  size_t ql = query ? strlen(query) : 0;
  char want[128], errs[2][200], show[64], where[WSCHAT_ROOM_MAX + 1];
  int nerr = 0, r = WSCHAT_ENAME;

  if (name != NULL) {
    r = wschat__chat_enter(ch, m, name, 1);
    if (r != 0) {
      shown(show, sizeof(show), name, strlen(name));
      name_error(errs[nerr++], sizeof(errs[0]), r, show);
    }
  } else {
    int n = wschat__http_query_param(query, ql, "name", want, sizeof(want));
    if (n >= 0 || n == -2) {
      size_t len = n >= 0 ? (size_t)n : 0;
      shown(show, sizeof(show), want, len);
      r = n >= 0 && wschat__name_valid(want, len)
              ? wschat__chat_enter(ch, m, want, 0)
              : WSCHAT_ENAME;
      if (r != 0)
        name_error(errs[nerr++], sizeof(errs[0]), r, show);
    }
  }
  if (r != 0 && wschat__chat_enter(ch, m, NULL, 0) != 0)
    return WSCHAT_ENOMEM;

  snprintf(where, sizeof(where), "%s", room ? room : WSCHAT__LOBBY);
  if (room == NULL) {
    int n = wschat__http_query_param(query, ql, "room", want, sizeof(want));
    if (n >= 0 || n == -2) {
      size_t len = n >= 0 ? (size_t)n : 0;
      if (n >= 0 && wschat__room_valid(want, len)) {
        memcpy(where, want, len + 1);
      } else {
        shown(show, sizeof(show), want, len);
        snprintf(errs[nerr++], sizeof(errs[0]),
                 "! invalid room name: %s (%s)", show, room_rule);
      }
    }
  }
  /* The welcome names the room as it is spelled, which an existing room
   * decides; it must go out before the room is told. */
  struct wschat__room *r0 = wschat__room_find(&ch->rooms, where);
  replyf(t, m, "* welcome, %s! you are in #%s; type /help for commands",
         m->name, r0 ? r0->name : where);
  for (int i = 0; i < nerr; i++)
    reply(t, m, errs[i]);
  if (wschat__chat_join(ch, m, where, 0) != 0) {
    wschat__chat_exit(ch, m, NULL);
    return WSCHAT_ENOMEM;
  }
  return 0;
}

/* ---- commands ---- */

static const char help_text[] =
    "* commands:\n"
    "/help - this list\n"
    "/nick NAME - change your name (1-32 letters, digits, - or _)\n"
    "/join ROOM - leave your room and enter ROOM (created if new)\n"
    "/leave - go back to #lobby\n"
    "/rooms - the rooms and how many are in each\n"
    "/users - who is in your room; /users * - everybody\n"
    "/whisper NAME TEXT - a private message (also /w and /msg)\n"
    "/me ACTION - tell your room what you are doing\n"
    "/history [N] - the last N (50, at most 500) events of your room\n"
    "/quit [REASON] - leave the chat\n";
static const char help_tail[] =
    "Anything else is said to your room; start a line with // to say "
    "something that begins with /.";

char *wschat__text_help(const struct wschat__chat *ch) {
  struct sbuf b = {0};
  sb_adds(&b, help_text);
  for (size_t i = 0; i < ch->ncommands; i++) {
    sb_adds(&b, "/");
    sb_adds(&b, ch->commands[i].name);
    if (ch->commands[i].help) {
      sb_adds(&b, " ");
      sb_adds(&b, ch->commands[i].help);
    }
    sb_adds(&b, "\n");
  }
  sb_adds(&b, help_tail);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* What a rename would refuse at once (cluster mode checks this before it
 * asks the registry). */
static int nick_check(struct wschat__chat *ch, struct wschat__member *m,
                      const char *name) {
  if (!wschat__name_valid(name, strlen(name)))
    return WSCHAT_ENAME;
  struct wschat__presence *p = ch->presence;
  struct wschat__member *o = p->ops->find(p, name);
  if (o != NULL && o != m)
    return WSCHAT_ENAMETAKEN;
  if (o == NULL && p->ops->reserved(p, name))
    return WSCHAT_ERESERVED;
  return 0;
}

static void nick_done(struct wschat__member *m, const char *name, int rc,
                      void *arg) {
  const struct wschat__text *t = arg;
  char line[200], show[64];
  snprintf(show, sizeof(show), "%s", name);
  if (rc == 0)
    rc = wschat__chat_rename(t->chat, m, name);
  if (rc != 0) {
    name_error(line, sizeof(line), rc, show);
    reply(t, m, line);
  }
}

static void nick_drop(void *arg) { (void)arg; }

static void cmd_nick(const struct wschat__text *t, struct wschat__member *m,
                     const struct wschat__cmd *cmd) {
  char name[64], show[64], line[200];
  shown(show, sizeof(show), cmd->tail.p, cmd->tail.len);
  if (cmd->tail.len == 0) {
    reply(t, m, "! usage: /nick NAME");
    return;
  }
  if (cmd->tail.len >= sizeof(name)) {
    replyf(t, m, "! invalid name: %s (%s)", show, name_rule);
    return;
  }
  memcpy(name, cmd->tail.p, cmd->tail.len);
  name[cmd->tail.len] = '\0';
  if (strcmp(name, m->name) == 0) {
    replyf(t, m, "! you are already %s", m->name);
    return;
  }
  struct wschat__chat *ch = t->chat;
  if (ch->claim_async != NULL) { /* cluster mode: the registry first */
    int r = nick_check(ch, m, name);
    if (r == 0)
      r = ch->claim_async(ch->claim_user, m, name, nick_done, nick_drop,
                          (void *)t);
    if (r != 0) {
      name_error(line, sizeof(line), r, show);
      reply(t, m, line);
    }
    return;
  }
  int r = wschat__chat_rename(ch, m, name);
  if (r != 0) {
    name_error(line, sizeof(line), r, show);
    reply(t, m, line);
  }
}

static void cmd_join(const struct wschat__text *t, struct wschat__member *m,
                     struct wschat__slice room) {
  char name[WSCHAT_ROOM_MAX + 1], show[80];
  shown(show, sizeof(show), room.p, room.len);
  if (room.len == 0) {
    reply(t, m, "! usage: /join ROOM");
    return;
  }
  if (!wschat__room_valid(room.p, room.len)) {
    replyf(t, m, "! invalid room name: %s (%s)", show, room_rule);
    return;
  }
  memcpy(name, room.p, room.len);
  name[room.len] = '\0';
  struct wschat__room *cur = wschat__member_room(m);
  if (cur && strcasecmp(cur->name, name) == 0) {
    replyf(t, m, "! you are already in #%s", cur->name);
    return;
  }
  if (wschat__chat_move(t->chat, m, name) != 0)
    reply(t, m, "! out of memory, try again");
}

/* /history [N]: N from 1, at most 500 (more is capped), default 50. */
static void cmd_history(const struct wschat__text *t, struct wschat__member *m,
                        struct wschat__slice arg) {
  unsigned long n = 50;
  if (arg.len > 0) {
    n = 0;
    for (size_t i = 0; i < arg.len; i++) {
      if (arg.p[i] < '0' || arg.p[i] > '9' || n > 1000000) {
        n = 0;
        break;
      }
      n = n * 10 + (unsigned long)(arg.p[i] - '0');
    }
    if (n == 0) {
      reply(t, m, "! usage: /history [N] (1-500)");
      return;
    }
    if (n > 500)
      n = 500;
  }
  int r = t->io->history ? t->io->history(t->user, m, (unsigned)n)
                         : WSCHAT_ENOHISTORY;
  if (r == WSCHAT_ENOHISTORY)
    reply(t, m, "! history is off on this server");
  else if (r == WSCHAT_ETOOMANY)
    reply(t, m, "! the history store is busy, try again");
  else if (r != 0)
    reply(t, m, "! out of memory, try again");
}

/* /users and /rooms answer at most this many names a message: a bigger
 * list comes in pages ("/users * 2"), so that one command cannot queue
 * megabytes (flood control bounds how many are asked for). */
#define LIST_PAGE 200

/* The page of n items to show (from 1; 0: a bad page number), its first
 * item in *from and its end in *to. */
static size_t page_of(size_t n, unsigned long page, size_t *from,
                      size_t *to) {
  size_t pages = n ? (n + LIST_PAGE - 1) / LIST_PAGE : 1;
  if (page < 1 || page > pages)
    return 0;
  *from = (page - 1) * LIST_PAGE;
  *to = *from + LIST_PAGE < n ? *from + LIST_PAGE : n;
  return pages;
}

/* "; page P of Q (N in all): /CMD P+1 for more" after a paged list. */
static void sb_page(struct sbuf *b, unsigned long page, size_t pages,
                    size_t n, const char *cmd) {
  if (pages <= 1)
    return;
  char tail[160];
  if ((size_t)page < pages)
    snprintf(tail, sizeof(tail), " ... (page %lu of %zu, %zu in all: %s %lu "
             "for more)", page, pages, n, cmd, page + 1);
  else
    snprintf(tail, sizeof(tail), " (page %lu of %zu, %zu in all)", page,
             pages, n);
  sb_adds(b, tail);
}

/* A page number: 1 when absent, 0 when not a number from 1. */
static unsigned long page_arg(struct wschat__slice s) {
  if (s.len == 0)
    return 1;
  unsigned long v = 0;
  for (size_t i = 0; i < s.len; i++) {
    if (s.p[i] < '0' || s.p[i] > '9' || v > 100000000)
      return 0;
    v = v * 10 + (unsigned long)(s.p[i] - '0');
  }
  return v;
}

static void cmd_rooms(const struct wschat__text *t, struct wschat__member *m,
                      unsigned long page) {
  size_t n, from = 0, to = 0;
  struct wschat__roster_room *v = wschat__roster_rooms(t->chat, &n);
  if (v == NULL) {
    reply(t, m, "! out of memory, try again");
    return;
  }
  size_t pages = page_of(n, page, &from, &to);
  if (pages == 0) {
    free(v);
    reply(t, m, "! usage: /rooms [PAGE] (no such page)");
    return;
  }
  struct sbuf b = {0};
  sb_adds(&b, "* rooms:");
  for (size_t i = from; i < to; i++) {
    char count[32];
    snprintf(count, sizeof(count), " (%zu)", v[i].n);
    sb_adds(&b, i > from ? ", " : " ");
    sb_adds(&b, v[i].name);
    sb_adds(&b, count);
  }
  sb_page(&b, page, pages, n, "/rooms");
  free(v);
  sb_send(t, m, &b);
}

/* Members of every node (roster.h): the local ones, and in cluster mode
 * the other nodes' from the presence's mirror. */
static void cmd_users(const struct wschat__text *t, struct wschat__member *m,
                      int everybody, unsigned long page) {
  struct wschat__room *cur = wschat__member_room(m);
  size_t n = 0;
  struct wschat__roster_user *v =
      wschat__roster_users(t->chat, everybody ? NULL : cur->name, &n);
  if (v == NULL) {
    reply(t, m, "! out of memory, try again");
    return;
  }
  size_t from = 0, to = 0, pages = page_of(n, page, &from, &to);
  if (pages == 0) {
    free(v);
    reply(t, m, "! usage: /users or /users *");
    return;
  }
  struct sbuf b = {0};
  if (everybody) {
    sb_adds(&b, "* users:");
  } else {
    sb_adds(&b, "* users in #");
    sb_adds(&b, cur->name);
    sb_adds(&b, ":");
  }
  for (size_t i = from; i < to; i++) {
    sb_adds(&b, i > from ? ", " : " ");
    sb_adds(&b, v[i].name);
    if (everybody && v[i].room != NULL) {
      sb_adds(&b, " (#");
      sb_adds(&b, v[i].room);
      sb_adds(&b, ")");
    }
  }
  sb_page(&b, page, pages, n, everybody ? "/users *" : "/users");
  free(v);
  sb_send(t, m, &b);
}

static void cmd_whisper(const struct wschat__text *t, struct wschat__member *m,
                        const struct wschat__cmd *cmd) {
  char name[64], show[64];
  if (cmd->arg.len == 0 || cmd->rest.len == 0) {
    reply(t, m, "! usage: /whisper NAME TEXT");
    return;
  }
  shown(show, sizeof(show), cmd->arg.p, cmd->arg.len);
  int r = WSCHAT_ENOTFOUND;
  if (cmd->arg.len < sizeof(name)) {
    memcpy(name, cmd->arg.p, cmd->arg.len);
    name[cmd->arg.len] = '\0';
    r = wschat__chat_whisper(t->chat, m, name, cmd->rest.p, cmd->rest.len);
  }
  if (r == WSCHAT_ENOTFOUND)
    replyf(t, m, "! no such user: %s", show);
  else if (r != 0)
    reply(t, m, "! out of memory, try again");
}

static void cmd_quit(const struct wschat__text *t, struct wschat__member *m,
                     struct wschat__slice reason) {
  char *r = NULL;
  /* A reason goes into the leave notice and the close frame, which holds
   * 123 bytes: longer ones are cut there, at a character's start. */
  if (reason.len > WSCHAT__REASON_MAX) {
    reason.len = WSCHAT__REASON_MAX;
    while (reason.len > 0 &&
           ((unsigned char)reason.p[reason.len] & 0xC0) == 0x80)
      reason.len--;
  }
  if (reason.len > 0 && (r = malloc(reason.len + 1)) != NULL) {
    memcpy(r, reason.p, reason.len);
    r[reason.len] = '\0';
    for (size_t i = 0; i < reason.len; i++)
      if ((unsigned char)r[i] < 0x20 || r[i] == 0x7F)
        r[i] = ' ';
  }
  wschat__chat_exit(t->chat, m, r);
  t->io->quit(t->user, m, r);
  free(r);
}

/* A registered command, or "! unknown command". */
static void cmd_other(const struct wschat__text *t, struct wschat__member *m,
                      const struct wschat__cmd *cmd) {
  const struct wschat__command *reg = wschat__chat_find_command(
      t->chat, cmd->word.p + 1, cmd->word.len - 1);
  if (reg != NULL) {
    struct wschat_command pc;
    wschat__cmd_public(cmd, &pc);
    if (reg->cb(m->client, &pc, reg->user) == WSCHAT_DROP)
      return;
  }
  char word[40];
  shown(word, sizeof(word), cmd->word.p, cmd->word.len);
  replyf(t, m, "! unknown command %s, try /help", word);
}

/* Starts s[0..len) with word, regardless of case? */
static int starts(const char *s, size_t len, const char *word) {
  size_t n = strlen(word);
  return len >= n && strncasecmp(s, word, n) == 0;
}

/*
 * Would "* NAME ACTION" read exactly like a server notice? The text view's
 * notices in the "* NAME ..." form are "* NAME joined #ROOM", "* NAME left
 * #ROOM[ (REASON)]" and "* OLD is now known as NEW"; replies that only the
 * sender sees could be imitated by a client named after their first word:
 * "* users in #ROOM: ..." and "* no history in #ROOM". So an action is
 * refused when, after what the view shows as blank (spaces, controls, the
 * code points of wschat__utf8_invisible()), it starts with "joined #",
 * "left #" or "is now known as " (in any case), or with "in #" for a
 * client named users, "history in #" for one named no. (An application's
 * notices are its own text: it can reserve the names that would imitate
 * them.)
 */
static int forges_notice(const char *name, const char *p, size_t len) {
  for (;;) {
    const unsigned char *u = (const unsigned char *)p;
    size_t k = len > 0 && (*u <= 0x20 || *u == 0x7F)
                   ? 1
                   : wschat__utf8_invisible(u, len);
    if (k == 0)
      break;
    p += k, len -= k;
  }
  if (starts(p, len, "joined #") || starts(p, len, "left #") ||
      starts(p, len, "is now known as "))
    return 1;
  if (strcasecmp(name, "users") == 0 && starts(p, len, "in #"))
    return 1;
  return strcasecmp(name, "no") == 0 && starts(p, len, "history in #");
}

static int blank(const char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != ' ' && p[i] != '\t')
      return 0;
  return 1;
}

void wschat__text_line(const struct wschat__text *t, struct wschat__member *m,
                       const char *text, size_t len) {
  struct wschat__cmd cmd;
  wschat__cmd_parse(text, len, &cmd);
  wschat__text_command(t, m, &cmd);
}

void wschat__text_command(const struct wschat__text *t,
                          struct wschat__member *m,
                          const struct wschat__cmd *c) {
  struct wschat__cmd cmd = *c;
  if (wschat__member_room(m) == NULL && cmd.kind != WSCHAT__CMD_QUIT &&
      cmd.kind != WSCHAT__CMD_JOIN && cmd.kind != WSCHAT__CMD_HELP) {
    reply(t, m, "! you are in no room: /join one");
    return;
  }
  switch (cmd.kind) {
  case WSCHAT__CMD_LINE:
    if (blank(cmd.text.p, cmd.text.len))
      return; /* an empty line says nothing */
    if (wschat__chat_say(t->chat, m, WSCHAT_EVENT_MESSAGE, cmd.text.p,
                         cmd.text.len) != 0)
      reply(t, m, "! out of memory, try again");
    return;
  case WSCHAT__CMD_HELP: {
    char *help = wschat__text_help(t->chat);
    reply(t, m, help ? help : "! out of memory, try again");
    free(help);
    return;
  }
  case WSCHAT__CMD_NICK:
    cmd_nick(t, m, &cmd);
    return;
  case WSCHAT__CMD_JOIN:
    cmd_join(t, m, cmd.tail);
    return;
  case WSCHAT__CMD_LEAVE: {
    struct wschat__slice lobby = {WSCHAT__LOBBY, sizeof(WSCHAT__LOBBY) - 1};
    cmd_join(t, m, lobby);
    return;
  }
  case WSCHAT__CMD_ROOMS:
    if (page_arg(cmd.tail) == 0)
      reply(t, m, "! usage: /rooms [PAGE]");
    else
      cmd_rooms(t, m, page_arg(cmd.tail));
    return;
  case WSCHAT__CMD_USERS: {
    int all = cmd.arg.len == 1 && cmd.arg.p[0] == '*';
    struct wschat__slice p = all ? cmd.rest : cmd.tail;
    if (page_arg(p) == 0 || (all && memchr(p.p, ' ', p.len)))
      reply(t, m, "! usage: /users or /users *");
    else
      cmd_users(t, m, all, page_arg(p));
    return;
  }
  case WSCHAT__CMD_WHISPER:
    cmd_whisper(t, m, &cmd);
    return;
  case WSCHAT__CMD_ME:
    if (cmd.tail.len == 0) {
      reply(t, m, "! usage: /me ACTION");
      return;
    }
    if (forges_notice(m->name, cmd.tail.p, cmd.tail.len)) {
      reply(t, m,
            "! that action would read like a server notice: say it "
            "another way");
      return;
    }
    if (wschat__chat_say(t->chat, m, WSCHAT_EVENT_ACTION, cmd.tail.p,
                         cmd.tail.len) != 0)
      reply(t, m, "! out of memory, try again");
    return;
  case WSCHAT__CMD_QUIT:
    cmd_quit(t, m, cmd.tail);
    return;
  case WSCHAT__CMD_HISTORY:
    cmd_history(t, m, cmd.tail);
    return;
  case WSCHAT__CMD_UNKNOWN:
  default:
    cmd_other(t, m, &cmd);
    return;
  }
}
