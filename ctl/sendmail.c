#include "ctl/sendmail.h"

#include "config/config.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "maildir/folder.h"
#include "maildir/name.h"
#include "outbox/addr.h"
#include "outbox/message.h"
#include "outbox/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

/* The header arrives first and is read whole before anything is written:
 * it decides the envelope. */
#define HEADER_MAX (256 * 1024)

struct request {
	const char *account, *from, *full_name;
	bool headers;	  /* -t */
	bool ignore_dots; /* -i, -oi */
	struct addr_list rcpts;
};

static int usage(const char *why)
{
	fprintf(stderr,
		"mailferryctl sendmail: %s\n"
		"usage: mailferryctl sendmail [-a ACCOUNT] [-t] [-f FROM] [-F NAME] [-i|-oi] "
		"[--] [RECIPIENT...]\n",
		why);
	return EX_USAGE;
}

static int parse(int argc, char **argv, struct request *r)
{
	int ch;
	optind = 1;
	/* -o, -B, -N, -R and -V are sendmail's: mutt passes -oem and -B8BITMIME. */
	while ((ch = getopt(argc, argv, "+a:tf:F:io:B:N:R:V:")) != -1) {
		switch (ch) {
		case 'a':
			r->account = optarg;
			break;
		case 't':
			r->headers = true;
			break;
		case 'f':
			r->from = optarg;
			break;
		case 'F':
			r->full_name = optarg;
			break;
		case 'i':
			r->ignore_dots = true;
			break;
		case 'o':
			r->ignore_dots |= strcmp(optarg, "i") == 0;
			break;
		case 'B':
		case 'N':
		case 'R':
		case 'V':
			break;
		default:
			return usage("unknown option");
		}
	}
	for (int i = optind; i < argc; i++) {
		struct addr_list one = { 0 };
		addr_parse_list(&one, argv[i]);
		if (!one.n)
			return usage("not an address");
		for (size_t k = 0; k < one.n; k++)
			addr_add(&r->rcpts, one.v[k]);
		addr_list_free(&one);
	}
	if (!r->headers && !r->rcpts.n)
		return usage("no recipients (give them as arguments, or use -t)");
	return 0;
}

/* Whether the account's login names this address. */
static bool owns(const struct account_conf *a, const char *addr)
{
	const struct server_conf *s[] = { a->smtp ? &a->smtp->server : NULL,
					  a->imap ? &a->imap->server : NULL,
					  a->pop3 ? &a->pop3->server : NULL };
	for (size_t i = 0; i < 3; i++)
		if (s[i] && s[i]->user && strcasecmp(s[i]->user, addr) == 0)
			return true;
	return false;
}

/* -a, else the account whose login is the From address, else the only
 * account that can send. */
static const struct account_conf *choose(const struct config *cfg, const struct request *r,
					 const char *from)
{
	if (r->account)
		return config_find_account(cfg, r->account);
	const struct account_conf *only = NULL;
	size_t senders = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct account_conf *a = &cfg->accounts[i];
		if (!a->smtp)
			continue;
		if (from && owns(a, from))
			return a;
		only = a;
		senders++;
	}
	return senders == 1 ? only : NULL;
}

/* Reads stdin up to the end of the header (or of the input). */
static int read_header(struct buf *in, size_t *hdr_len)
{
	char chunk[8192];
	for (;;) {
		const char *end = in->data ? strstr(in->data, "\n\n") : NULL;
		const char *crlf = in->data ? strstr(in->data, "\n\r\n") : NULL;
		if (crlf && (!end || crlf < end))
			end = crlf;
		if (end) {
			*hdr_len = (size_t)(end - in->data) + 1;
			return 0;
		}
		if (in->len > HEADER_MAX)
			return -EMSGSIZE;
		ssize_t n = read(0, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			*hdr_len = in->len;
			return 0;
		}
		buf_append(in, chunk, (size_t)n);
	}
}

/* The address of the From field in hdr, if there is one. */
static char *header_from(const char *hdr, size_t len)
{
	for (size_t pos = 0; pos < len;) {
		const char *line = hdr + pos;
		size_t n = strcspn(line, "\n");
		if (n >= 5 && strncasecmp(line, "From:", 5) == 0) {
			struct buf v = { 0 };
			buf_append(&v, line + 5, n - 5);
			for (size_t k = pos + n + 1; k < len && (hdr[k] == ' ' || hdr[k] == '\t');) {
				size_t m = strcspn(hdr + k, "\n");
				buf_append(&v, hdr + k, m);
				k += m + 1;
			}
			struct addr_list one = { 0 };
			addr_parse_list(&one, buf_str(&v));
			char *addr = one.n ? xstrdup(one.v[0]) : NULL;
			addr_list_free(&one);
			buf_free(&v);
			return addr;
		}
		pos += n + 1;
	}
	return NULL;
}

/* Copies input to the file; without -i a line holding only "." ends it,
 * as sendmail has always read its input. */
struct copier {
	int fd;
	bool ignore_dots, line_start, held_dot, ended;
	struct buf out;
	int rc;
};

static void flush_out(struct copier *c)
{
	for (size_t off = 0; off < c->out.len && c->rc == 0;) {
		ssize_t n = write(c->fd, c->out.data + off, c->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			c->rc = -errno;
		else
			off += (size_t)n;
	}
	buf_reset(&c->out);
}

static void copy(struct copier *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !c->ended; i++) {
		char ch = p[i];
		if (c->held_dot) {
			c->held_dot = false;
			if (ch == '\n' || (ch == '\r' && i + 1 < n && p[i + 1] == '\n')) {
				c->ended = true;
				break;
			}
			buf_putc(&c->out, '.');
		} else if (!c->ignore_dots && c->line_start && ch == '.') {
			c->held_dot = true;
			c->line_start = false;
			continue;
		}
		buf_putc(&c->out, ch);
		c->line_start = ch == '\n';
	}
	if (c->out.len > 65536)
		flush_out(c);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 || fsync(fd) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return rc;
}

static int fail(const char *what, int code)
{
	fprintf(stderr, "mailferryctl sendmail: %s\n", what);
	return code;
}

/* Writes the envelope, a From field when the message has none, then the
 * message; returns 0 or a negative errno. */
static int write_message(struct copier *c, const struct request *r, const char *envelope_from,
			 bool add_from, struct buf *head)
{
	struct buf env = { 0 };
	if (r->from)
		buf_printf(&env, OUTBOX_ENV_FROM ": <%s>\n", envelope_from);
	for (size_t i = 0; i < r->rcpts.n; i++)
		buf_printf(&env, OUTBOX_ENV_TO ": <%s>\n", r->rcpts.v[i]);
	if (r->headers && r->rcpts.n)
		buf_puts(&env, OUTBOX_ENV_HEADERS ": yes\n");
	if (add_from)
		buf_printf(&env, "From: %s%s<%s>\n", r->full_name ? r->full_name : "",
			   r->full_name ? " " : "", envelope_from);
	buf_append(&c->out, env.data, env.len);
	buf_free(&env);
	copy(c, head->data ? head->data : "", head->len);
	char chunk[65536];
	ssize_t n;
	while (!c->ended && c->rc == 0 && (n = read(0, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		copy(c, chunk, (size_t)n);
	}
	if (c->held_dot && !c->ended)
		buf_putc(&c->out, '.'); /* a "." at the very end, without its line end */
	flush_out(c);
	if (c->rc == 0 && fsync(c->fd) < 0)
		c->rc = -errno;
	return c->rc;
}

static int enqueue(const struct account_conf *a, const struct request *r, const char *from,
		   bool add_from, struct buf *head)
{
	char *dir = outbox_dir(a);
	struct err e;
	char base[MAILDIR_UNIQUE_MAX], msg[700];
	int code = 0;
	if (maildir_ensure(dir, &e) < 0) {
		snprintf(msg, sizeof(msg), "%s", e.msg);
		free(dir);
		return fail(msg, EX_CANTCREAT);
	}
	maildir_name_unique(base);
	char *tmp = xasprintf("%s/tmp/%s", dir, base), *dst = xasprintf("%s/new/%s", dir, base);
	char *newdir = xasprintf("%s/new", dir);
	struct copier c = { .ignore_dots = r->ignore_dots, .line_start = true };
	c.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = c.fd < 0 ? -errno : write_message(&c, r, from, add_from, head);
	if (c.fd >= 0 && close(c.fd) < 0 && rc == 0)
		rc = -errno;
	struct outbox_msg *check = NULL;
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", tmp, strerror(-rc));
		code = fail(msg, rc == -ENOSPC ? EX_TEMPFAIL : EX_IOERR);
	} else if (outbox_msg_open(tmp, &check, &e) < 0) {
		snprintf(msg, sizeof(msg), "the message cannot be sent: %s", e.msg);
		code = fail(msg, EX_DATAERR);
	} else if (rename(tmp, dst) < 0 || fsync_dir(newdir) < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", dst, strerror(errno));
		code = fail(msg, EX_IOERR);
	}
	outbox_msg_free(&check);
	buf_free(&c.out);
	if (code)
		unlink(tmp);
	free(tmp);
	free(dst);
	free(newdir);
	free(dir);
	return code;
}

int ctl_sendmail(const char *config_path, int argc, char **argv)
{
	struct request r = { 0 };
	int code = parse(argc, argv, &r);
	struct config *cfg = NULL;
	struct buf head = { 0 };
	char *path = config_path ? xstrdup(config_path) : config_default_path();
	char *hdr_from = NULL, msg[700];
	size_t hdr_len = 0;
	struct err e;
	if (code) {
	} else if (!path || config_load(path, &cfg, &e) < 0) {
		code = fail(path ? e.msg : "no config file (set HOME or use -c)", EX_CONFIG);
	} else if (read_header(&head, &hdr_len) < 0) {
		code = fail("cannot read the message's header from stdin", EX_DATAERR);
	} else {
		hdr_from = header_from(head.data ? head.data : "", hdr_len);
		const char *from = r.from ? r.from : hdr_from;
		const struct account_conf *a = choose(cfg, &r, from);
		if (!a || !a->smtp) {
			snprintf(msg, sizeof(msg), "%s%s%s",
				 r.account ? "no account that can send named " : "no account sends as ",
				 r.account ? r.account : from ? from : "(no From address)",
				 r.account ? "" : "; name one with -a ACCOUNT");
			code = fail(msg, EX_NOUSER);
		} else if (!from && !(from = strchr(a->smtp->server.user, '@') ? a->smtp->server.user
									   : NULL)) {
			code = fail("the message has no From and -f gives none", EX_DATAERR);
		} else {
			code = enqueue(a, &r, from, !hdr_from, &head);
		}
	}
	free(hdr_from);
	buf_free(&head);
	addr_list_free(&r.rcpts);
	config_free(&cfg);
	free(path);
	return code;
}
