/*
 * view: what a member sees of an event. Each view (the text protocol now,
 * JSON next) renders an event into one frame, at most once per event,
 * view and variant, lazily: the frame is cached on the event and shared by
 * every recipient of that view, so a room where nobody uses a view never
 * renders it.
 *
 * Owns nothing: frames belong to the event's cache (the caller adds its
 * own reference to keep one).
 */
#ifndef WSCHAT_VIEW_H
#define WSCHAT_VIEW_H

struct wschat_event;
struct wschat__frame;
struct wschat__member;
struct wschat__deflate;

/*
 * The frame m gets for ev (variant WSCHAT__TO_*), compressed once per
 * compression key with z (the server's, see deflate.h) for a member with
 * permessage-deflate (m->zkey), or NULL: if m's view
 * shows nothing for it (*oom stays 0; e.g. the text view shows one notice
 * per rename, however many rooms m shares with the renamed member), or when
 * out of memory (*oom set to 1).
 */
struct wschat__frame *wschat__view_frame(struct wschat__member *m,
                                         struct wschat_event *ev, int variant,
                                         struct wschat__deflate *z, int *oom);

/* The text view's rendering of ev (a new frame the caller owns; NULL when
 * out of memory). */
struct wschat__frame *wschat__text_render(const struct wschat_event *ev,
                                          int variant);

#endif
