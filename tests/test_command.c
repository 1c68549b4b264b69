/* Unit tests: the chat command parser and the name rules (lib/command.c). */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "command.h"

static struct wschat__cmd parse(const char *line) {
  struct wschat__cmd c;
  wschat__cmd_parse(line, strlen(line), &c);
  return c;
}

static int eq(struct wschat__slice s, const char *want) {
  return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

START_TEST(plain_lines) {
  struct wschat__cmd c = parse("hello world");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_LINE);
  ck_assert(eq(c.text, "hello world"));
  c = parse("/");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_LINE);
  c = parse("/ spaced");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_LINE);
  c = parse("//etc/passwd is a path");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_LINE);
  ck_assert(eq(c.text, "/etc/passwd is a path"));
  c = parse("");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_LINE);
  ck_assert_uint_eq(c.text.len, 0);
}
END_TEST

START_TEST(every_command) {
  static const struct {
    const char *line;
    enum wschat__cmd_kind kind;
  } cases[] = {
      {"/help", WSCHAT__CMD_HELP},       {"/HELP", WSCHAT__CMD_HELP},
      {"/nick bob", WSCHAT__CMD_NICK},   {"/join dev", WSCHAT__CMD_JOIN},
      {"/leave", WSCHAT__CMD_LEAVE},     {"/rooms", WSCHAT__CMD_ROOMS},
      {"/users", WSCHAT__CMD_USERS},     {"/users *", WSCHAT__CMD_USERS},
      {"/whisper a b", WSCHAT__CMD_WHISPER}, {"/w a b", WSCHAT__CMD_WHISPER},
      {"/msg a b", WSCHAT__CMD_WHISPER}, {"/Msg a b", WSCHAT__CMD_WHISPER},
      {"/me waves", WSCHAT__CMD_ME},     {"/quit", WSCHAT__CMD_QUIT},
      {"/quit bye", WSCHAT__CMD_QUIT},   {"/foo", WSCHAT__CMD_UNKNOWN},
      {"/helpme", WSCHAT__CMD_UNKNOWN},  {"/wh a b", WSCHAT__CMD_UNKNOWN},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(parse(cases[i].line).kind == cases[i].kind, "%s",
                  cases[i].line);
}
END_TEST

START_TEST(arguments) {
  struct wschat__cmd c = parse("/whisper   bob   hi there  ");
  ck_assert(eq(c.word, "/whisper"));
  ck_assert(eq(c.arg, "bob"));
  ck_assert(eq(c.rest, "hi there"));
  ck_assert(eq(c.tail, "bob   hi there"));
  c = parse("/w bob");
  ck_assert(eq(c.arg, "bob"));
  ck_assert_uint_eq(c.rest.len, 0);
  c = parse("/quit\tgone fishing");
  ck_assert_int_eq(c.kind, WSCHAT__CMD_QUIT);
  ck_assert(eq(c.tail, "gone fishing"));
  c = parse("/foo bar");
  ck_assert(eq(c.word, "/foo"));
}
END_TEST

START_TEST(not_nul_terminated) {
  /* The parser must respect len: the byte after it is not part of it. */
  const char buf[] = "/join devXXXX";
  struct wschat__cmd c;
  wschat__cmd_parse(buf, 9, &c);
  ck_assert_int_eq(c.kind, WSCHAT__CMD_JOIN);
  ck_assert(eq(c.arg, "dev"));
}
END_TEST

START_TEST(names) {
  ck_assert(wschat__name_valid("a", 1));
  ck_assert(wschat__name_valid("Alice_-9", 8));
  ck_assert(wschat__name_valid("abcdefghijklmnopqrstuvwxyz012345", 32));
  ck_assert(!wschat__name_valid("abcdefghijklmnopqrstuvwxyz0123456", 33));
  ck_assert(!wschat__name_valid("", 0));
  ck_assert(!wschat__name_valid("a b", 3));
  ck_assert(!wschat__name_valid("a.b", 3));
  ck_assert(!wschat__name_valid("\xc3\xa9", 2));
  ck_assert(!wschat__name_valid("a\0b", 3));
}
END_TEST

START_TEST(rooms) {
  char r64[65], r65[66];
  memset(r64, 'r', 64);
  r64[64] = 0;
  memset(r65, 'r', 65);
  r65[65] = 0;
  ck_assert(wschat__room_valid("lobby", 5));
  ck_assert(wschat__room_valid("dev.ops-2_x", 11));
  ck_assert(wschat__room_valid(r64, 64));
  ck_assert(!wschat__room_valid(r65, 65));
  ck_assert(!wschat__room_valid("", 0));
  ck_assert(!wschat__room_valid("#dev", 4));
  ck_assert(!wschat__room_valid("a/b", 3));
}
END_TEST

int main(void) {
  Suite *s = suite_create("command");
  TCase *tc = tcase_create("command");
  tcase_add_test(tc, plain_lines);
  tcase_add_test(tc, every_command);
  tcase_add_test(tc, arguments);
  tcase_add_test(tc, not_nul_terminated);
  tcase_add_test(tc, names);
  tcase_add_test(tc, rooms);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
