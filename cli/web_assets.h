/*
 * web_assets: the files of web/, as byte arrays compiled into chat-cli.
 * The table is generated at build time by web/embed.py (web_assets.c in
 * the build directory); this header is its only interface.
 */
#ifndef CHAT_CLI_WEB_ASSETS_H
#define CHAT_CLI_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
  const char *path;          /* "/app.js": the file's name under "/" */
  const char *type;          /* its Content-Type */
  const unsigned char *data; /* its bytes (static) */
  size_t len;
  const char *etag; /* "\"...\"": a hash of the bytes, quoted */
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

#endif
