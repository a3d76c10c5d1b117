/* Private to the imap parse library (parse.c, response.c): how a response
 * holds its memory and its sink handles. The client uses response.h only. */
#ifndef MF_IMAP_RESPONSE_PRIV_H
#define MF_IMAP_RESPONSE_PRIV_H

#include "imap/parse.h"
#include "imap/response.h"

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the response line kept for logs (imap_response_line). */
#define IMAP_LINE_EXCERPT 200

struct arena_block;

struct imap_response_priv {
	struct arena_block *blocks; /* everything the tree points to */
	struct imap_sink sink;      /* copy: abort for the handles not taken */
	void **handles;             /* every handle open returned; NULL once taken */
	size_t nhandles, hcap;
	char line[IMAP_LINE_EXCERPT + 8];
	size_t line_len;
	bool line_cut;
};

/* sink may be NULL. */
struct imap_response *imap_resp_new(const struct imap_sink *sink);
/* n bytes, 8-aligned, freed with the response; never NULL. */
void *imap_resp_alloc(struct imap_response *r, size_t n);
/* A NUL-terminated copy of p[0..n). */
char *imap_resp_strndup(struct imap_response *r, const char *p, size_t n);
/* Records a sink handle for abort; returns its index. */
size_t imap_resp_add_handle(struct imap_response *r, void *handle);
/* Adds p[0..n) (one line without its CRLF) to the line excerpt. */
void imap_resp_line_append(struct imap_response *r, const char *p, size_t n);

#endif
