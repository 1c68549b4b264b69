/*
 * log: see log.h.
 */
#include "log.h"

void wschat__log_event(const struct wschat__log *l, int level,
                       const char *event, const struct wschat_log_field *f,
                       size_t n) {
  if (wschat__log_on(l, level))
    l->cb(level, event, f, n, l->user);
}

const char *wschat_log_level_name(int level) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level <= WSCHAT_LOG_DEBUG ? names[level] : "?";
}
