/*
 * utf8: validation of UTF-8 text (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Pure function; fuzzable.
 */
#ifndef WSCHAT_UTF8_H
#define WSCHAT_UTF8_H

#include <stddef.h>

/* Returns 1 if s[0..len) is valid UTF-8, else 0. */
int wschat__utf8_valid(const char *s, size_t len);

/*
 * The length (2 or 3) of the code point that starts p[0..len), valid
 * UTF-8, if it is one the text view shows as a space, else 0. These can
 * make a line read as something it is not:
 *   U+0080-U+009F  C1 controls (U+0085 NEXT LINE among them)
 *   U+061C         ARABIC LETTER MARK (a bidi mark)
 *   U+200B-U+200F  zero width space, non-joiner, joiner; LRM, RLM
 *   U+2028-U+202E  line and paragraph separators; bidi embeddings and
 *                  overrides (LRE RLE PDF LRO RLO)
 *   U+2060-U+206F  word joiner, invisible operators, bidi isolates (LRI RLI
 *                  FSI PDI), deprecated format characters
 *   U+FEFF         zero width no-break space (a BOM)
 * (C0 controls and DEL, one byte each, are the caller's.)
 */
size_t wschat__utf8_invisible(const unsigned char *p, size_t len);

#endif
