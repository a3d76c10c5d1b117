#include "sync/pattern.h"

#include <string.h>
#include <strings.h>

static bool match(const char *p, const char *s, char delim)
{
	for (; *p; p++) {
		if (*p == '*' || *p == '%') {
			/* Try every length for the wildcard; '%' may not cross a delimiter. */
			for (const char *t = s;; t++) {
				if (match(p + 1, t, delim))
					return true;
				if (!*t || (*p == '%' && delim && *t == delim))
					return false;
			}
		}
		if (*p != *s)
			return false;
		s++;
	}
	return *s == '\0';
}

/* RFC 3501 5.1: INBOX is case-insensitive, also as the first level of a path. */
static bool match_name(const char *p, const char *name, char delim)
{
	if (strncasecmp(p, "INBOX", 5) == 0 && (p[5] == '\0' || p[5] == delim) &&
	    strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == delim))
		return match(p + 5, name + 5, delim);
	return match(p, name, delim);
}

bool pattern_selects(char *const *patterns, const char *name, char delim)
{
	bool selected = false;
	for (char *const *p = patterns; p && *p; p++) {
		bool negate = (*p)[0] == '!';
		if (match_name(*p + negate, name, delim))
			selected = !negate;
	}
	return selected;
}
