/*
 * web: chat-cli's chat page (the files of web/, embedded at build time)
 * on the WebSocket port, through the public route API only.
 */
#ifndef CHAT_CLI_WEB_H
#define CHAT_CLI_WEB_H

#include <wschat.h>

/* Registers "/" (the page) and "/FILE" for each embedded file. Call
 * before listening. Returns 0 or the first wschat_server_route() error. */
int web_register(struct wschat_server *srv);

#endif
