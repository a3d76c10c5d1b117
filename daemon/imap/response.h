/* One IMAP server response as a tree of values: what imap/parse.h produces
 * and the IMAP client walks. Every string in it is owned by the response and
 * freed with it by imap_response_free. Pure C: depends on core only. */
#ifndef MF_IMAP_RESPONSE_H
#define MF_IMAP_RESPONSE_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_value_type {
	IMAP_ATOM,   /* BODY[HEADER.FIELDS (MESSAGE-ID)], \Seen, 1:5,7, INBOX */
	IMAP_NUMBER, /* digits only, fits in 64 bits; the text is kept as well */
	IMAP_STRING, /* quoted string or literal kept in memory */
	IMAP_NIL,    /* NIL in any case; text "NIL" as sent */
	IMAP_LIST,   /* ( ... ) */
	IMAP_SINK,   /* a literal streamed to the sink: handle and size only */
};

struct imap_value {
	enum imap_value_type type;
	/* ATOM, NUMBER, NIL, STRING: bytes at str (a STRING may hold NULs);
	 * LIST: number of items; SINK: private. */
	size_t len;
	union {
		char *str;                /* NUL-terminated after len bytes */
		struct imap_value *items; /* LIST */
		void *handle;             /* SINK: what the sink's open returned */
	};
	uint64_t num; /* NUMBER: the value; SINK: the literal's size */
};

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED, /* "* ..." */
	IMAP_RESP_TAGGED,   /* "A12 OK ..." */
	IMAP_RESP_CONTINUE, /* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE, /* data, or a continuation */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_PREAUTH,
	IMAP_STATUS_BYE,
};

struct imap_response_priv;

/* Fields are read-only for callers. Which are set:
 *	untagged status  `* OK [UIDNEXT 44] Predicted`  name, status, code, code_args, text
 *	tagged           `A1 NO [TRYCREATE] No such`    tag, name, status, code..., text
 *	untagged data    `* 7 FETCH (UID 9)`            has_number, number, name, args
 *	continuation     `+ Ready` / `+ [ALERT] x`      code..., text (base64 stays in text) */
struct imap_response {
	enum imap_resp_kind kind;
	const char *tag; /* TAGGED only, else NULL */
	bool has_number;
	uint64_t number;         /* `* 23 EXISTS`, `* 7 FETCH` */
	const char *name;        /* upper-case: "OK", "FETCH", "LIST"; NULL for CONTINUE */
	enum imap_status status; /* OK/NO/BAD/PREAUTH/BYE responses */
	const char *code;        /* response code name, upper-case, or NULL */
	/* Code arguments as values; arguments that do not parse as values
	 * (a code is free text, RFC 9051 resp-text-code) are one STRING. */
	const struct imap_value *code_args;
	size_t ncode_args;
	const char *text; /* status and continuation: text after the code, "" if none */
	const struct imap_value *args; /* data: values after the name */
	size_t nargs;
	struct imap_response_priv *priv;
};

/* Accessors: each fails (NULL or false) for a NULL value or the wrong type. */

/* The atom's text. */
const char *imap_value_atom(const struct imap_value *v);
/* v is an atom equal to name, ignoring ASCII case. */
bool imap_value_atom_eq(const struct imap_value *v, const char *name);
bool imap_value_number(const struct imap_value *v, uint64_t *out);
/* A quoted string or in-memory literal; *len (if not NULL) gets its length. */
const char *imap_value_string(const struct imap_value *v, size_t *len);
/* An astring (RFC 3501): a STRING, or the text of an ATOM, NUMBER or NIL
 * (a mailbox may be called NIL). Also the way to read a sequence set. */
const char *imap_value_astring(const struct imap_value *v, size_t *len);
/* An nstring: NIL gives true with *s = NULL; a STRING gives true with its bytes. */
bool imap_value_nstring(const struct imap_value *v, const char **s, size_t *len);
bool imap_value_is_nil(const struct imap_value *v);
/* A list's items (*items is NULL for an empty list). */
bool imap_value_list(const struct imap_value *v, const struct imap_value **items, size_t *n);
/* A streamed literal: the handle the sink's open returned and the size. */
bool imap_value_sink(const struct imap_value *v, void **handle, uint64_t *size);

/* In a list of name-value pairs (FETCH items, STATUS items), the value after
 * the atom `name` (case-insensitive, exact otherwise: "BODY[]<0>", "UID"). */
const struct imap_value *imap_list_find(const struct imap_value *list, const char *name);
/* For `* n FETCH (...)`: imap_list_find on the item list; NULL otherwise. */
const struct imap_value *imap_response_fetch(const struct imap_response *r, const char *item);
/* r has a response code named code (case-insensitive). */
bool imap_response_code_is(const struct imap_response *r, const char *code);

/* Takes over the sink handle of SINK value v of r: the caller now finishes
 * or discards it, and imap_response_free will not abort it. Returns NULL if
 * v is not a sink of r or was taken already. */
void *imap_response_take_sink(struct imap_response *r, const struct imap_value *v);

/* The response as it came in, for logs and errors: at most about 200 bytes,
 * literal contents left out (only their {n} shows), control bytes as \xNN,
 * "..." when cut. */
const char *imap_response_line(const struct imap_response *r);

/* A canonical one-line rendering of the parsed tree, for traces and tests:
 * `* 7 FETCH (UID 9 BODY[] <sink 5>)`. Strings are quoted, with bytes outside
 * printable ASCII as \xNN. */
void imap_response_format(struct buf *b, const struct imap_response *r);
void imap_value_format(struct buf *b, const struct imap_value *v);

/* Frees r and everything in it; calls the sink's abort for every sink handle
 * not taken. NULL-safe, clears *r. */
void imap_response_free(struct imap_response **r);

#endif
