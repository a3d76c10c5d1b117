#include "maildir/digest.h"

#include "core/xalloc.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_CAP 16 /* longer field names are not Message-ID */
#define WS_CAP 4096 /* white space held back before it spills (see ws_spill) */

enum hstate {
	H_LINE_START, /* at the start of a header line */
	H_LINE_CR,    /* a CR at the start of a header line */
	H_NAME,       /* in a field name */
	H_VALUE,      /* in a field value (or a line without ':') */
	H_BODY,
	H_ENDED,
};

struct maildir_digest {
	enum hstate st;
	char name[NAME_CAP];
	size_t name_len; /* may exceed NAME_CAP: then it is not Message-ID */
	bool capturing;  /* in the first Message-ID field */
	bool have_id;
	char id[MAILDIR_MSGID_MAX];
	size_t id_len;
	/* The body hash: main covers the body up to its last byte that is not
	 * white space; white space after it waits in ws[] and, past WS_CAP, goes
	 * into tail (a copy of main), which becomes main when more text follows. */
	EVP_MD_CTX *main, *tail;
	bool in_tail;
	bool pending_cr; /* a CR ended the last piece: LF may follow */
	unsigned char ws[WS_CAP];
	size_t ws_len;
	/* Bytes for main, gathered so that SHA-256 is fed in large pieces rather
	 * than a word at a time (it cost a tenth of a bulk download's CPU). */
	unsigned char staged[8192];
	size_t staged_len;
};

static EVP_MD_CTX *hash_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		BUG("EVP_MD_CTX_new failed (out of memory)");
	return c;
}

static void hash_start(EVP_MD_CTX *c)
{
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		BUG("SHA-256 unavailable in libcrypto");
}

static void hash(EVP_MD_CTX *c, const void *p, size_t n)
{
	if (EVP_DigestUpdate(c, p, n) != 1)
		BUG("EVP_DigestUpdate failed");
}

static void main_flush(struct maildir_digest *d)
{
	if (d->staged_len)
		hash(d->main, d->staged, d->staged_len);
	d->staged_len = 0;
}

static void main_add(struct maildir_digest *d, const void *p, size_t n)
{
	if (d->staged_len + n > sizeof(d->staged))
		main_flush(d);
	if (n > sizeof(d->staged)) {
		hash(d->main, p, n);
		return;
	}
	memcpy(d->staged + d->staged_len, p, n);
	d->staged_len += n;
}

struct maildir_digest *maildir_digest_new(void)
{
	struct maildir_digest *d = xcalloc(1, sizeof(*d));
	d->main = hash_new();
	d->tail = hash_new();
	hash_start(d->main);
	return d;
}

static void end_field(struct maildir_digest *d)
{
	d->capturing = false;
}

static void start_value(struct maildir_digest *d)
{
	size_t n = d->name_len;
	while (n > 0 && n <= NAME_CAP && (d->name[n - 1] == ' ' || d->name[n - 1] == '\t'))
		n--;
	if (!d->have_id && n == 10 && strncasecmp(d->name, "Message-ID", 10) == 0) {
		d->have_id = true;
		d->capturing = true;
	}
}

static void id_putc(struct maildir_digest *d, char c)
{
	if (d->capturing && d->id_len < sizeof(d->id))
		d->id[d->id_len++] = c;
}

static void new_field(struct maildir_digest *d, char c)
{
	end_field(d);
	d->name_len = 0;
	d->st = H_NAME;
	d->name[d->name_len++] = c;
}

static void header_byte(struct maildir_digest *d, char c)
{
	switch (d->st) {
	case H_LINE_START:
		if (c == '\n' || c == '\r') {
			d->st = c == '\n' ? H_BODY : H_LINE_CR;
		} else if (c == ' ' || c == '\t') {
			d->st = H_VALUE; /* a folded line: unfolding keeps the white space */
			id_putc(d, c);
		} else {
			new_field(d, c);
		}
		break;
	case H_LINE_CR:
		if (c == '\n') {
			d->st = H_BODY;
		} else {
			new_field(d, '\r');
			header_byte(d, c);
		}
		break;
	case H_NAME:
		if (c == ':') {
			start_value(d);
			d->st = H_VALUE;
		} else if (c == '\n') {
			d->st = H_LINE_START;
		} else if (d->name_len++ < NAME_CAP) {
			d->name[d->name_len - 1] = c;
		}
		break;
	case H_VALUE:
		if (c == '\n') {
			if (d->capturing && d->id_len && d->id[d->id_len - 1] == '\r')
				d->id_len--;
			d->st = H_LINE_START;
		} else {
			id_putc(d, c);
		}
		break;
	case H_BODY:
	case H_ENDED:
		BUG("header_byte in state %d", d->st);
	}
	if (d->st == H_BODY)
		end_field(d);
}

static void ws_spill(struct maildir_digest *d)
{
	if (!d->in_tail) {
		main_flush(d);
		if (EVP_MD_CTX_copy_ex(d->tail, d->main) != 1)
			BUG("EVP_MD_CTX_copy_ex failed");
		d->in_tail = true;
	}
	hash(d->tail, d->ws, d->ws_len);
	d->ws_len = 0;
}

static void ws_add(struct maildir_digest *d, unsigned char c)
{
	if (d->ws_len == WS_CAP)
		ws_spill(d);
	d->ws[d->ws_len++] = c;
}

/* Text follows: the white space held back is inside the body after all. */
static void ws_flush(struct maildir_digest *d)
{
	if (d->in_tail) {
		hash(d->tail, d->ws, d->ws_len);
		EVP_MD_CTX *t = d->main;
		d->main = d->tail;
		d->tail = t;
		d->in_tail = false;
	} else if (d->ws_len) {
		main_add(d, d->ws, d->ws_len);
	}
	d->ws_len = 0;
}

static bool body_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void body_feed(struct maildir_digest *d, const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (d->pending_cr) {
			d->pending_cr = false;
			bool crlf = p[i] == '\n';
			ws_add(d, crlf ? '\n' : '\r');
			i += crlf;
			continue;
		}
		size_t j = i;
		while (j < n && !body_ws(p[j]))
			j++;
		if (j > i) {
			ws_flush(d);
			main_add(d, p + i, j - i);
			i = j;
			continue;
		}
		if (p[i] == '\r')
			d->pending_cr = true;
		else
			ws_add(d, p[i]);
		i++;
	}
}

void maildir_digest_feed(struct maildir_digest *d, const void *p, size_t len)
{
	BUG_ON(d->st == H_ENDED);
	const unsigned char *s = p;
	size_t i = 0;
	while (i < len && d->st != H_BODY)
		header_byte(d, (char)s[i++]);
	if (i < len)
		body_feed(d, s + i, len - i);
}

static bool hdr_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void maildir_digest_end(struct maildir_digest *d, struct maildir_ident *out)
{
	BUG_ON(d->st == H_ENDED);
	d->st = H_ENDED;
	size_t a = 0, b = d->id_len;
	while (a < b && hdr_ws(d->id[a]))
		a++;
	while (b > a && hdr_ws(d->id[b - 1]))
		b--;
	memcpy(out->message_id, d->id + a, b - a);
	out->message_id[b - a] = '\0';
	/* White space still held back (ws[], tail) is the ignored end of the body. */
	main_flush(d);
	if (EVP_DigestFinal_ex(d->main, out->body_hash, NULL) != 1)
		BUG("EVP_DigestFinal_ex failed");
}

void maildir_digest_free(struct maildir_digest **pd)
{
	struct maildir_digest *d = *pd;
	if (!d)
		return;
	EVP_MD_CTX_free(d->main);
	EVP_MD_CTX_free(d->tail);
	free(d);
	*pd = NULL;
}

void maildir_ident_hash_hex(const struct maildir_ident *id, char out[2 * MAILDIR_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < MAILDIR_HASH_LEN; i++) {
		out[2 * i] = hex[id->body_hash[i] >> 4];
		out[2 * i + 1] = hex[id->body_hash[i] & 15];
	}
	out[2 * MAILDIR_HASH_LEN] = '\0';
}
