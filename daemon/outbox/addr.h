/* Email addresses out of header fields (RFC 5322 section 3.4): an address
 * list such as `Ann <ann@example.org>, "Doe, Bob" <bob@example.org>,
 * carl@example.org, friends: dee@example.org;` gives its addr-specs
 * (ann@example.org, bob@example.org, ...). Display names, comments, groups
 * and folding are understood; what is not an address is skipped, not
 * guessed at. Pure C. */
#ifndef MF_OUTBOX_ADDR_H
#define MF_OUTBOX_ADDR_H

#include <stdbool.h>
#include <stddef.h>

struct addr_list {
	char **v; /* owned, NULL-terminated */
	size_t n, cap;
};

/* Appends the addresses of the field value s (unfolded or not) to list,
 * skipping ones already in it (compared case-insensitively). */
void addr_parse_list(struct addr_list *list, const char *s);
/* Appends one address (trimmed; <> removed) unless it is there already. */
void addr_add(struct addr_list *list, const char *addr);
void addr_list_free(struct addr_list *list);
/* Whether addr looks like local@domain with no space or control character. */
bool addr_valid(const char *addr);
/* Whether addr has a byte above 127 (it needs SMTPUTF8). */
bool addr_is_utf8(const char *addr);

#endif
