/* Unit tests: the room registry (lib/room.c) over the name map
 * (lib/map.c). Driven with plain calls; no sockets. */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "room.h"
#include "server.h"

static struct wschat_server *srv;

static void setup(void) {
  srv = calloc(1, sizeof(*srv));
  wschat__map_init(&srv->rooms);
  wschat__map_init(&srv->names);
}

static void teardown(void) {
  wschat__room_free_all(srv);
  wschat__map_free(&srv->names);
  free(srv);
}

static struct wschat_client *client(void) { return calloc(1, sizeof(struct wschat_client)); }

static void join(struct wschat_client *c, const char *room) {
  struct wschat__room *r = wschat__room_open(srv, room);
  ck_assert_ptr_nonnull(r);
  wschat__room_add(r, c);
}

START_TEST(join_and_leave) {
  struct wschat_client *a = client(), *b = client();
  join(a, "dev");
  join(b, "DEV"); /* case-insensitive: the same room */
  ck_assert_ptr_eq(a->room, b->room);
  ck_assert_str_eq(a->room->name, "dev"); /* spelled as first created */
  ck_assert_uint_eq(a->room->n, 2);
  wschat__room_remove(srv, a);
  ck_assert_ptr_null(a->room);
  ck_assert_uint_eq(b->room->n, 1);
  ck_assert_ptr_eq(b->room->members[b->room_idx], b);
  wschat__room_remove(srv, b);
  ck_assert_ptr_null(wschat__room_find(srv, "dev")); /* empty: gone */
  free(a);
  free(b);
}
END_TEST

START_TEST(lobby_stays) {
  struct wschat_client *a = client();
  join(a, "lobby");
  wschat__room_remove(srv, a);
  ck_assert_ptr_nonnull(wschat__room_find(srv, "Lobby"));
  free(a);
}
END_TEST

START_TEST(indexes_stay_right) {
  /* Swap-removal must keep every member's index right. */
  enum { N = 200 };
  struct wschat_client *c[N];
  for (int i = 0; i < N; i++) {
    c[i] = client();
    join(c[i], "big");
  }
  for (int i = 0; i < N; i += 3)
    wschat__room_remove(srv, c[i]);
  struct wschat__room *r = wschat__room_find(srv, "big");
  ck_assert_uint_eq(r->n, N - (N + 2) / 3);
  for (size_t k = 0; k < r->n; k++)
    ck_assert_uint_eq(r->members[k]->room_idx, k);
  for (int i = 0; i < N; i++) {
    if (i % 3)
      wschat__room_remove(srv, c[i]);
    free(c[i]);
  }
  ck_assert_ptr_null(wschat__room_find(srv, "big"));
}
END_TEST

START_TEST(sorted_listing) {
  struct wschat_client *a = client(), *b = client(), *d = client();
  join(a, "zeta");
  join(b, "Alpha");
  join(d, "lobby");
  size_t n;
  struct wschat__room **v = wschat__room_sorted(srv, &n);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(v[0]->name, "Alpha");
  ck_assert_str_eq(v[1]->name, "lobby");
  ck_assert_str_eq(v[2]->name, "zeta");
  free(v);
  wschat__room_remove(srv, a);
  wschat__room_remove(srv, b);
  wschat__room_remove(srv, d);
  free(a);
  free(b);
  free(d);
}
END_TEST

START_TEST(map_many) {
  /* The map grows and finds every key, caselessly; deletes are exact. */
  enum { N = 1000 };
  static char keys[N][16];
  struct wschat__map m;
  wschat__map_init(&m);
  for (int i = 0; i < N; i++) {
    snprintf(keys[i], sizeof(keys[i]), "Name-%d", i);
    ck_assert_int_eq(wschat__map_put(&m, keys[i], keys[i]), 0);
  }
  ck_assert_uint_eq(m.count, N);
  for (int i = 0; i < N; i++) {
    char k[16];
    snprintf(k, sizeof(k), "NAME-%d", i);
    ck_assert_ptr_eq(wschat__map_get(&m, k), keys[i]);
  }
  for (int i = 0; i < N; i += 2)
    ck_assert_ptr_eq(wschat__map_del(&m, keys[i]), keys[i]);
  for (int i = 0; i < N; i++)
    ck_assert_ptr_eq(wschat__map_get(&m, keys[i]), i % 2 ? keys[i] : NULL);
  ck_assert_ptr_null(wschat__map_del(&m, "absent"));
  wschat__map_free(&m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("room");
  TCase *tc = tcase_create("room");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, join_and_leave);
  tcase_add_test(tc, lobby_stays);
  tcase_add_test(tc, indexes_stay_right);
  tcase_add_test(tc, sorted_listing);
  tcase_add_test(tc, map_many);
  suite_add_tcase(s, tc);
  return wschat_test_run(s);
}
