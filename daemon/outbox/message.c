#include "outbox/message.h"

#include "core/buf.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header longer than this is not one a mail reader wrote. */
#define HEADER_MAX (256 * 1024)

struct range {
	uint64_t start, end;
};

struct drops {
	struct range *v;
	size_t n, cap;
	uint64_t bytes;
};

struct outbox_msg {
	int fd;
	uint64_t size;
	char *from, *id, *subject;
	struct addr_list rcpts;
	bool eight_bit, utf8_addresses;
	struct drops smtp, sent;
	/* reading */
	enum outbox_view view;
	uint64_t off;
	size_t next_drop;
};

static void drop(struct drops *d, uint64_t start, uint64_t end)
{
	d->v = xgrow(d->v, &d->cap, d->n + 1, sizeof(*d->v));
	d->v[d->n++] = (struct range){ start, end };
	d->bytes += end - start;
}

static char *trimmed(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	return xstrndup(p, n);
}

/* The value of a field, unfolded: line breaks inside it become spaces. */
static char *unfolded(const char *p, size_t n)
{
	char *v = trimmed(p, n);
	for (char *q = v; *q; q++)
		if (*q == '\r' || *q == '\n')
			*q = ' ';
	return v;
}

struct parsed {
	char *env_from;
	bool env_headers;
	struct addr_list env_to, from, hdr_rcpts;
};

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* One header field: name[0..nlen), its whole text at [start, end). */
static void take_field(struct outbox_msg *m, struct parsed *ps, const char *name, size_t nlen,
		       const char *value, size_t vlen, uint64_t start, uint64_t end)
{
	char *v = unfolded(value, vlen);
	if (name_is(name, nlen, OUTBOX_ENV_FROM)) {
		free(ps->env_from);
		struct addr_list one = { 0 };
		addr_add(&one, v);
		ps->env_from = xstrdup(one.n ? one.v[0] : "");
		addr_list_free(&one);
		drop(&m->smtp, start, end);
		drop(&m->sent, start, end);
	} else if (name_is(name, nlen, OUTBOX_ENV_TO)) {
		addr_parse_list(&ps->env_to, v);
		drop(&m->smtp, start, end);
		drop(&m->sent, start, end);
	} else if (name_is(name, nlen, OUTBOX_ENV_HEADERS)) {
		ps->env_headers = strcasecmp(v, "yes") == 0;
		drop(&m->smtp, start, end);
		drop(&m->sent, start, end);
	} else if (name_is(name, nlen, "From")) {
		addr_parse_list(&ps->from, v);
	} else if (name_is(name, nlen, "To") || name_is(name, nlen, "Cc")) {
		addr_parse_list(&ps->hdr_rcpts, v);
	} else if (name_is(name, nlen, "Bcc")) {
		addr_parse_list(&ps->hdr_rcpts, v);
		drop(&m->smtp, start, end);
	} else if (name_is(name, nlen, "Message-ID") && !m->id) {
		m->id = xstrdup(v);
	} else if (name_is(name, nlen, "Subject") && !m->subject) {
		m->subject = xstrdup(v);
	}
	free(v);
}

/* The header: hdr[0..len) holds it whole (up to and without the empty line). */
static int parse_header(struct outbox_msg *m, struct parsed *ps, const char *hdr, size_t len,
			struct err *e)
{
	size_t field = 0, lineno = 0;
	const char *name = NULL;
	size_t nlen = 0, colon = 0;
	for (size_t pos = 0; pos <= len; lineno++) {
		const char *nl = pos < len ? memchr(hdr + pos, '\n', len - pos) : NULL;
		size_t next = nl ? (size_t)(nl - hdr) + 1 : len;
		bool continuation = pos < len && (hdr[pos] == ' ' || hdr[pos] == '\t');
		if (!continuation && name) {
			take_field(m, ps, name, nlen, hdr + colon + 1, pos - colon - 1, field, pos);
			name = NULL;
		}
		if (pos == len)
			break;
		if (continuation) {
			if (!name)
				return err_set(e, -EINVAL, ERR_PERM,
					       "line %zu of the header continues nothing", lineno + 1);
		} else {
			size_t n = 0;
			while (pos + n < next && hdr[pos + n] > ' ' && hdr[pos + n] < 127 &&
			       hdr[pos + n] != ':')
				n++;
			if (n == 0 || hdr[pos + n] != ':')
				return err_set(e, -EINVAL, ERR_PERM,
					       "line %zu of the header is not a header field",
					       lineno + 1);
			name = hdr + pos, nlen = n, colon = pos + n, field = pos;
		}
		pos = next;
	}
	return 0;
}

/* Reads the file once: the header (bounded) and whether it has 8-bit bytes. */
static int read_file(struct outbox_msg *m, struct buf *hdr, struct err *e)
{
	char chunk[65536];
	bool in_header = true;
	ssize_t n;
	while ((n = read(m->fd, chunk, sizeof(chunk))) > 0) {
		for (ssize_t i = 0; i < n && !m->eight_bit; i++)
			m->eight_bit = (unsigned char)chunk[i] > 127;
		if (!in_header)
			continue;
		buf_append(hdr, chunk, (size_t)n);
		char *end = strstr(hdr->data, "\n\n");
		char *crlf = strstr(hdr->data, "\n\r\n");
		if (crlf && (!end || crlf < end))
			end = crlf;
		if (end) {
			hdr->len = (size_t)(end - hdr->data) + 1;
			hdr->data[hdr->len] = '\0';
			in_header = false;
		} else if (hdr->len > HEADER_MAX) {
			return err_set(e, -EINVAL, ERR_PERM, "the header is longer than %d bytes",
				       HEADER_MAX);
		}
	}
	if (n < 0)
		return err_set(e, -errno, ERR_LOCAL, "cannot read: %s", strerror(errno));
	return memchr(hdr->data ? hdr->data : "", '\0', hdr->len)
		       ? err_set(e, -EINVAL, ERR_PERM, "the header holds a NUL byte")
		       : 0;
}

static int settle(struct outbox_msg *m, struct parsed *ps, struct err *e)
{
	if (!ps->from.n)
		return err_set(e, -EINVAL, ERR_PERM, "it has no From address");
	m->from = xstrdup(ps->env_from ? ps->env_from : ps->from.v[0]);
	for (size_t i = 0; i < ps->env_to.n; i++)
		addr_add(&m->rcpts, ps->env_to.v[i]);
	for (size_t i = 0; (!ps->env_to.n || ps->env_headers) && i < ps->hdr_rcpts.n; i++)
		addr_add(&m->rcpts, ps->hdr_rcpts.v[i]);
	if (!m->rcpts.n)
		return err_set(e, -EINVAL, ERR_PERM,
			       "it has no recipient (no envelope recipients, no To, Cc or Bcc)");
	m->utf8_addresses = addr_is_utf8(m->from);
	for (size_t i = 0; i < m->rcpts.n; i++)
		m->utf8_addresses |= addr_is_utf8(m->rcpts.v[i]);
	return 0;
}

int outbox_msg_open(const char *path, struct outbox_msg **out, struct err *e)
{
	struct outbox_msg *m = xcalloc(1, sizeof(*m));
	struct parsed ps = { 0 };
	struct buf hdr = { 0 };
	struct stat st;
	int rc;
	m->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0 || fstat(m->fd, &st) < 0)
		rc = err_set(e, -errno, ERR_LOCAL, "cannot open: %s", strerror(errno));
	else {
		m->size = (uint64_t)st.st_size;
		rc = read_file(m, &hdr, e);
	}
	if (rc == 0)
		rc = parse_header(m, &ps, buf_str(&hdr), hdr.len, e);
	if (rc == 0)
		rc = settle(m, &ps, e);
	free(ps.env_from);
	addr_list_free(&ps.env_to);
	addr_list_free(&ps.from);
	addr_list_free(&ps.hdr_rcpts);
	buf_free(&hdr);
	if (rc < 0) {
		outbox_msg_free(&m);
		return rc;
	}
	*out = m;
	return 0;
}

void outbox_msg_free(struct outbox_msg **mp)
{
	struct outbox_msg *m = *mp;
	if (!m)
		return;
	*mp = NULL;
	if (m->fd >= 0)
		close(m->fd);
	free(m->from);
	free(m->id);
	free(m->subject);
	addr_list_free(&m->rcpts);
	free(m->smtp.v);
	free(m->sent.v);
	free(m);
}

const char *outbox_msg_from(const struct outbox_msg *m)
{
	return m->from;
}

const struct addr_list *outbox_msg_rcpts(const struct outbox_msg *m)
{
	return &m->rcpts;
}

const char *outbox_msg_id(const struct outbox_msg *m)
{
	return m->id ? m->id : "";
}

const char *outbox_msg_subject(const struct outbox_msg *m)
{
	return m->subject ? m->subject : "";
}

bool outbox_msg_eight_bit(const struct outbox_msg *m)
{
	return m->eight_bit;
}

bool outbox_msg_utf8_addresses(const struct outbox_msg *m)
{
	return m->utf8_addresses;
}

uint64_t outbox_msg_size(const struct outbox_msg *m, enum outbox_view view)
{
	return m->size - (view == OUTBOX_FOR_SMTP ? m->smtp.bytes : m->sent.bytes);
}

void outbox_msg_rewind(struct outbox_msg *m)
{
	m->off = 0;
	m->next_drop = 0;
}

ssize_t outbox_msg_read(struct outbox_msg *m, enum outbox_view view, char *buf, size_t len,
			struct err *e)
{
	const struct drops *d = view == OUTBOX_FOR_SMTP ? &m->smtp : &m->sent;
	if (m->view != view)
		outbox_msg_rewind(m), m->view = view;
	while (m->next_drop < d->n && m->off >= d->v[m->next_drop].start) {
		if (m->off < d->v[m->next_drop].end)
			m->off = d->v[m->next_drop].end;
		m->next_drop++;
	}
	uint64_t limit = m->next_drop < d->n ? d->v[m->next_drop].start : m->size;
	if (m->off >= limit)
		return 0;
	size_t want = limit - m->off < len ? (size_t)(limit - m->off) : len;
	ssize_t n = pread(m->fd, buf, want, (off_t)m->off);
	if (n < 0)
		return err_set(e, -errno, ERR_LOCAL, "cannot read: %s", strerror(errno));
	if (n == 0)
		return err_set(e, -EIO, ERR_LOCAL, "the file shrank while being sent");
	m->off += (uint64_t)n;
	return n;
}
