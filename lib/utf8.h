/*
 * utf8: validation of UTF-8 text (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Pure function; fuzzable.
 */
#ifndef WSCHAT_UTF8_H
#define WSCHAT_UTF8_H

#include <stddef.h>

/* Returns 1 if s[0..len) is valid UTF-8, else 0. */
int wschat__utf8_valid(const char *s, size_t len);

#endif
