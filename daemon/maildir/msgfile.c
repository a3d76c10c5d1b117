#include "maildir/msgfile.h"

#include "core/xalloc.h"
#include "maildir/internal.h"
#include "maildir/name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSPECT_CHUNK (64 * 1024)

enum pass_mode { PASS_NONE, PASS_RAW, PASS_CRLF };

struct maildir_msg {
	struct maildir *m; /* borrowed */
	char *file;        /* owned, for messages */
	bool in_new;
	int fd;
	uint64_t size, crlf_size;
	bool inspected;
	struct timespec mtime;
	/* The current pass: */
	enum pass_mode mode;
	uint64_t pos; /* raw bytes consumed */
	uint64_t out; /* bytes handed out (crlf pass) */
	bool prev_cr; /* the last raw byte consumed was CR */
};

int maildir_msg_open(struct maildir_msg **out, struct maildir *m, bool in_new, const char *file,
		     struct err *e)
{
	*out = NULL;
	struct maildir_name nm;
	const char *sub = maildir_sub_name(maildir_sub_of(in_new));
	if (maildir_name_parse(file, &nm) < 0)
		return err_set(e, -EINVAL, ERR_LOCAL, "%s: \"%s\" is not a message file name",
			       m->label, file);
	int fd = openat(m->fd[maildir_sub_of(in_new)], file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return err_set(e, -ENOENT, ERR_LOCAL,
			       "%s: message %s/%s was renamed or removed meanwhile", m->label, sub,
			       file);
	if (fd < 0)
		return maildir_fs_error(e, -errno, m->label, "opening %s/%s", sub, file);
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EINVAL;
	if (rc < 0) {
		close(fd);
		return maildir_fs_error(e, rc, m->label, "opening %s/%s", sub, file);
	}
	struct maildir_msg *r = xcalloc(1, sizeof(*r));
	r->m = m;
	r->file = xstrdup(file);
	r->in_new = in_new;
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	r->mtime = st.st_mtim;
	*out = r;
	return 0;
}

void maildir_msg_free(struct maildir_msg **pr)
{
	struct maildir_msg *r = *pr;
	if (!r)
		return;
	close(r->fd);
	free(r->file);
	free(r);
	*pr = NULL;
}

uint64_t maildir_msg_size(const struct maildir_msg *r)
{
	return r->size;
}

struct timespec maildir_msg_mtime(const struct maildir_msg *r)
{
	return r->mtime;
}

void maildir_msg_rewind(struct maildir_msg *r)
{
	r->mode = PASS_NONE;
	r->pos = 0;
	r->out = 0;
	r->prev_cr = false;
}

static int changed(const struct maildir_msg *r, struct err *e)
{
	return err_set(e, -EIO, ERR_LOCAL, "%s: message %s/%s changed while being read",
		       r->m->label, maildir_sub_name(maildir_sub_of(r->in_new)), r->file);
}

/* Reads up to want raw bytes at the current position; 0 only at the end of
 * what the size at open promised. */
static ssize_t read_raw(struct maildir_msg *r, void *buf, size_t want, struct err *e)
{
	if (r->size - r->pos < want)
		want = (size_t)(r->size - r->pos);
	if (want == 0)
		return 0;
	ssize_t n;
	do
		n = pread(r->fd, buf, want, (off_t)r->pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return maildir_fs_error(e, -errno, r->m->label, "reading %s/%s",
					maildir_sub_name(maildir_sub_of(r->in_new)), r->file);
	if (n == 0)
		return changed(r, e);
	r->pos += (uint64_t)n;
	return n;
}

/* Counts the LFs of p[0..n) not preceded by CR, carrying *prev_cr across pieces. */
static uint64_t bare_lfs(const unsigned char *p, size_t n, bool *prev_cr)
{
	uint64_t count = 0;
	const unsigned char *lf = p, *end = p + n;
	while ((lf = memchr(lf, '\n', (size_t)(end - lf)))) {
		bool cr = lf > p ? lf[-1] == '\r' : *prev_cr;
		count += !cr;
		lf++;
	}
	if (n)
		*prev_cr = p[n - 1] == '\r';
	return count;
}

int maildir_msg_inspect(struct maildir_msg *r, struct maildir_ident *id, uint64_t *crlf_size,
			struct err *e)
{
	maildir_msg_rewind(r);
	unsigned char *buf = xmalloc(INSPECT_CHUNK);
	struct maildir_digest *d = maildir_digest_new();
	uint64_t extra = 0;
	bool prev_cr = false;
	ssize_t n;
	while ((n = read_raw(r, buf, INSPECT_CHUNK, e)) > 0) {
		maildir_digest_feed(d, buf, (size_t)n);
		extra += bare_lfs(buf, (size_t)n, &prev_cr);
	}
	if (n == 0) {
		r->crlf_size = r->size + extra;
		r->inspected = true;
		struct maildir_ident tmp;
		maildir_digest_end(d, id ? id : &tmp);
		if (crlf_size)
			*crlf_size = r->crlf_size;
	}
	maildir_digest_free(&d);
	free(buf);
	maildir_msg_rewind(r);
	return n < 0 ? (int)n : 0;
}

/* The CRLF pass: raw bytes are read into the end of buf and expanded
 * towards its start; with at most len/2 raw bytes the output never
 * overtakes the input still to be read. */
static ssize_t read_crlf(struct maildir_msg *r, unsigned char *buf, size_t len, struct err *e)
{
	BUG_ON(!r->inspected || len < 2);
	if (r->pos == r->size)
		return r->out == r->crlf_size ? 0 : changed(r, e);
	size_t k = len / 2;
	unsigned char *src = buf + len - k;
	ssize_t n = read_raw(r, src, k, e);
	if (n <= 0)
		return n;
	size_t o = 0;
	for (size_t i = 0; i < (size_t)n; i++) {
		if (src[i] == '\n' && !r->prev_cr)
			buf[o++] = '\r';
		buf[o++] = src[i];
		r->prev_cr = src[i] == '\r';
	}
	if (o > r->crlf_size - r->out)
		return changed(r, e);
	r->out += o;
	return (ssize_t)o;
}

ssize_t maildir_msg_read(struct maildir_msg *r, void *buf, size_t len, bool crlf, struct err *e)
{
	enum pass_mode mode = crlf ? PASS_CRLF : PASS_RAW;
	BUG_ON(r->mode != PASS_NONE && r->mode != mode);
	r->mode = mode;
	return crlf ? read_crlf(r, buf, len, e) : read_raw(r, buf, len, e);
}
