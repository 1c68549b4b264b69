/*
 * chat: what lines and commands mean. Names, the welcome, join and leave
 * notices, /commands, whispers. Renders each event once as a text frame and
 * hands it to the bus; never touches sockets or wslay.
 *
 * Owns: the name registry entries of its clients (srv->names); rooms are
 * owned by the room module.
 */
#ifndef WSCHAT_CHAT_H
#define WSCHAT_CHAT_H

#include <stddef.h>

struct wschat_client;
struct wschat_server;

/* A client just became OPEN: name it, put it in its room, welcome it and
 * tell the room. Returns 0, or -1 when out of memory. */
int wschat__chat_open(struct wschat_client *c);
/* One line of text (valid UTF-8) from an open client. */
void wschat__chat_line(struct wschat_client *c, const char *text, size_t len);
/* The client is leaving the chat (reason may be NULL): leave its room (the
 * room is told once), free its name. Safe to call more than once. */
void wschat__chat_detach(struct wschat_client *c, const char *reason);
/* Sends one line to one client. */
void wschat__chat_reply(struct wschat_client *c, const char *line);
/* Frees the chat's registries (server teardown). */
void wschat__chat_free(struct wschat_server *srv);

#endif
