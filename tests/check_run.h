/* The one runner of our Check unit tests: runs a suite, returns the exit
 * status (failure if any test failed). */
#ifndef WSCHAT_TEST_CHECK_RUN_H
#define WSCHAT_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int wschat_test_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
