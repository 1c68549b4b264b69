/* history: what every backend shares (see history.h): pages. */
#include "history.h"

#include <stdlib.h>

#include "event.h"

void wschat__history_page_free(struct wschat__history_page *page) {
  if (page == NULL)
    return;
  for (size_t i = 0; i < page->n; i++)
    wschat__event_unref(page->ev[i]);
  free(page->ev);
  free(page);
}

void wschat__history_deliver(struct wschat_server *srv, void *arg) {
  (void)srv;
  struct wschat__history_page *page = arg;
  page->cb(page, page->user);
}
